/**
 * Token chunks: several sequences packed into flat per-token arrays (the columnar form the doctor and the
 * statistics read). A dump is processed as a stream of chunks of about `tokensPerChunk` tokens, so memory holds
 * one chunk; `loadDump` (reader.ts) packs a whole dump into one chunk.
 *
 * Shapes: S sequences, N tokens; sequence s owns tokens offsets[s] .. offsets[s + 1] - 1. Top-K arrays are
 * [N * K] with K the widest row among the chunk's sequences (narrower rows padded with id -1, -Infinity).
 */
import type { DumpSequence, TopKArrays } from './schema';
import type { DumpSource } from './source';

export interface TokenChunk {
  S: number;
  N: number;
  /** [S + 1] token offsets of each sequence within the chunk. */
  offsets: Int32Array;
  sampleIds: string[];
  origins: string[];
  /** [S] per-sequence scalars, NaN = not recorded. */
  steps: Float64Array;
  promptLens: Float64Array;
  rewards: Float64Array;
  teacherIds: (string | null)[];
  responseIds: Int32Array;
  mask: Uint8Array;
  studentLp: Float64Array;
  studentLpTrain: Float64Array | null;
  teacherLp: Float64Array;
  studentTopk: TopKArrays | null;
  teacherTopk: TopKArrays | null;
  studentEntropy: Float64Array | null;
  teacherEntropy: Float64Array | null;
  tokenKl: Float64Array | null;
  teacherResponseIds: Int32Array | null;
}

function catFloat(seqs: DumpSequence[], N: number, get: (s: DumpSequence) => Float64Array | null): Float64Array | null {
  if (seqs.length === 0 || get(seqs[0]) === null) return null;
  const out = new Float64Array(N);
  let p = 0;
  for (const s of seqs) {
    const a = get(s)!;
    out.set(a, p);
    p += a.length;
  }
  return out;
}

function catTopk(seqs: DumpSequence[], N: number, get: (s: DumpSequence) => TopKArrays | null): TopKArrays | null {
  if (seqs.length === 0 || get(seqs[0]) === null) return null;
  let k = 0;
  for (const s of seqs) k = Math.max(k, get(s)!.k);
  const ids = new Int32Array(N * k).fill(-1);
  const lp = new Float64Array(N * k).fill(-Infinity);
  let p = 0;
  for (const s of seqs) {
    const t = get(s)!;
    const T = s.responseIds.length;
    if (t.k === k) {
      ids.set(t.ids, p * k);
      lp.set(t.lp, p * k);
    } else {
      for (let r = 0; r < T; r++) {
        ids.set(t.ids.subarray(r * t.k, (r + 1) * t.k), (p + r) * k);
        lp.set(t.lp.subarray(r * t.k, (r + 1) * t.k), (p + r) * k);
      }
    }
    p += T;
  }
  return { k, ids, lp };
}

/** Packs sequences (which carry the same optional fields) into one chunk. */
export function packChunk(seqs: DumpSequence[]): TokenChunk {
  const S = seqs.length;
  const offsets = new Int32Array(S + 1);
  for (let i = 0; i < S; i++) offsets[i + 1] = offsets[i] + seqs[i].responseIds.length;
  const N = offsets[S];
  const responseIds = new Int32Array(N);
  const mask = new Uint8Array(N);
  const studentLp = new Float64Array(N);
  const teacherLp = new Float64Array(N);
  seqs.forEach((s, i) => {
    responseIds.set(s.responseIds, offsets[i]);
    mask.set(s.mask, offsets[i]);
    studentLp.set(s.studentLp, offsets[i]);
    teacherLp.set(s.teacherLp, offsets[i]);
  });
  let teacherResponseIds: Int32Array | null = null;
  if (S > 0 && seqs[0].teacherResponseIds) {
    teacherResponseIds = new Int32Array(N);
    seqs.forEach((s, i) => teacherResponseIds!.set(s.teacherResponseIds!, offsets[i]));
  }
  const nan = (v: number | null) => (v === null ? NaN : v);
  return {
    S,
    N,
    offsets,
    sampleIds: seqs.map((s) => s.sampleId),
    origins: seqs.map((s) => s.origin),
    steps: Float64Array.from(seqs, (s) => nan(s.step)),
    promptLens: Float64Array.from(seqs, (s) => nan(s.promptLen)),
    rewards: Float64Array.from(seqs, (s) => nan(s.reward)),
    teacherIds: seqs.map((s) => s.teacherId),
    responseIds,
    mask,
    studentLp,
    studentLpTrain: catFloat(seqs, N, (s) => s.studentLpTrain),
    teacherLp,
    studentTopk: catTopk(seqs, N, (s) => s.studentTopk),
    teacherTopk: catTopk(seqs, N, (s) => s.teacherTopk),
    studentEntropy: catFloat(seqs, N, (s) => s.studentEntropy),
    teacherEntropy: catFloat(seqs, N, (s) => s.teacherEntropy),
    tokenKl: catFloat(seqs, N, (s) => s.tokenKl),
    teacherResponseIds,
  };
}

/** The source's sequences as chunks of at least `tokensPerChunk` tokens (the last may be smaller). */
export async function* chunks(source: DumpSource, tokensPerChunk = 1 << 16): AsyncGenerator<TokenChunk> {
  let buf: DumpSequence[] = [];
  let tokens = 0;
  for await (const s of source.sequences()) {
    buf.push(s);
    tokens += s.responseIds.length;
    if (tokens >= tokensPerChunk) {
      yield packChunk(buf);
      buf = [];
      tokens = 0;
    }
  }
  if (buf.length > 0) yield packChunk(buf);
}

/** One sequence of a chunk back as its own arrays (views), for inspection in notebooks. */
export function sequenceOfChunk(c: TokenChunk, s: number): DumpSequence {
  if (!(s >= 0 && s < c.S)) throw new Error(`sequenceOfChunk: s must be in [0, ${c.S}), got ${s}`);
  const a = c.offsets[s];
  const b = c.offsets[s + 1];
  const f = (x: Float64Array | null) => (x ? x.subarray(a, b) : null);
  const t = (x: TopKArrays | null) => (x ? { k: x.k, ids: x.ids.subarray(a * x.k, b * x.k), lp: x.lp.subarray(a * x.k, b * x.k) } : null);
  const n = (v: number) => (Number.isNaN(v) ? null : v);
  return {
    sampleId: c.sampleIds[s],
    step: n(c.steps[s]),
    promptLen: n(c.promptLens[s]),
    responseIds: c.responseIds.subarray(a, b),
    mask: c.mask.subarray(a, b),
    studentLp: c.studentLp.subarray(a, b),
    studentLpTrain: f(c.studentLpTrain),
    teacherLp: c.teacherLp.subarray(a, b),
    studentTopk: t(c.studentTopk),
    teacherTopk: t(c.teacherTopk),
    studentEntropy: f(c.studentEntropy),
    teacherEntropy: f(c.teacherEntropy),
    tokenKl: f(c.tokenKl),
    teacherResponseIds: c.teacherResponseIds ? c.teacherResponseIds.subarray(a, b) : null,
    reward: n(c.rewards[s]),
    teacherId: c.teacherIds[s],
    origin: c.origins[s],
  };
}
