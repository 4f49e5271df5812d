/**
 * The packed (CSR-style) layout of a dump in named arrays, shared by safetensors files and .npy directories
 * (ecosystem.md section 2.3, "ragged arrays packed CSR-style"):
 *
 *   offsets[S + 1]                       sequence s owns tokens offsets[s] .. offsets[s + 1] - 1 (offsets[0] = 0)
 *   response_ids[N], mask[N], student_lp[N], teacher_lp[N]                          required
 *   student_lp_train[N], student_entropy[N], teacher_entropy[N], token_kl[N], teacher_response_ids[N]   optional
 *   student_topk_ids[N, K], student_topk_lp[N, K], teacher_topk_ids[N, K], teacher_topk_lp[N, K]        optional
 *   sample_id[S], step[S], prompt_len[S], reward[S]                                  optional per-sequence arrays
 *                                        (none: -1 in step and prompt_len, NaN in reward)
 *
 * Run metadata: safetensors __metadata__["opdlab_meta"] (a JSON string); a .npy directory's meta.json.
 * Float arrays may be float64, float32, float16 or bfloat16 (widened exactly); ids any integer type.
 * Sequences are read in batches with positioned reads, so memory holds one batch whatever the file size.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DType } from './dtype';
import { NpyFile, writeNpy } from './npy';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from './safetensors';
import { checkSequenceLengths, metaToJson, parseMeta, type DumpMeta, type DumpSequence, type TopKArrays } from './schema';
import { ConversionLog, type DumpSource } from './source';

/** Named arrays read by rows. */
export interface ArrayStore {
  path: string;
  bytes: number;
  names(): string[];
  shape(name: string): number[];
  readRows(name: string, r0: number, r1: number): Float64Array;
  close(): void;
}

export const TOKEN_ARRAYS = ['response_ids', 'mask', 'student_lp', 'teacher_lp', 'student_lp_train', 'student_entropy', 'teacher_entropy', 'token_kl', 'teacher_response_ids'] as const;
export const TOPK_ARRAYS = ['student_topk_ids', 'student_topk_lp', 'teacher_topk_ids', 'teacher_topk_lp'] as const;
export const SEQUENCE_ARRAYS = ['sample_id', 'step', 'prompt_len', 'reward'] as const;
const KNOWN = new Set<string>(['offsets', ...TOKEN_ARRAYS, ...TOPK_ARRAYS, ...SEQUENCE_ARRAYS]);

export function safetensorsStore(path: string): { store: ArrayStore; metaRaw: unknown } {
  const f = new SafetensorsFile(path);
  let metaRaw: unknown = undefined;
  if (f.metadata.opdlab_meta !== undefined) {
    try {
      metaRaw = JSON.parse(f.metadata.opdlab_meta);
    } catch (e) {
      throw new Error(`${path}: __metadata__.opdlab_meta is not valid JSON (${(e as Error).message})`);
    }
  }
  return {
    metaRaw,
    store: {
      path,
      bytes: f.bytes,
      names: () => [...f.tensors.keys()],
      shape: (n) => f.info(n).shape,
      readRows: (n, a, b) => f.readRows(n, a, b),
      close: () => f.close(),
    },
  };
}

export function npyDirStore(dir: string): { store: ArrayStore; metaRaw: unknown } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory of .npy files`);
  const files = new Map<string, NpyFile>();
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.npy')) continue;
    const f = new NpyFile(join(dir, name));
    files.set(name.slice(0, -4), f);
    bytes += f.bytes;
  }
  if (files.size === 0) throw new Error(`${dir}: holds no .npy files`);
  const metaPath = join(dir, 'meta.json');
  let metaRaw: unknown = undefined;
  if (existsSync(metaPath)) {
    try {
      metaRaw = JSON.parse(readFileSync(metaPath, 'utf8'));
    } catch (e) {
      throw new Error(`${metaPath}: invalid JSON (${(e as Error).message})`);
    }
  }
  const get = (n: string) => {
    const f = files.get(n);
    if (!f) throw new Error(`${dir}: no ${n}.npy`);
    return f;
  };
  return {
    metaRaw,
    store: {
      path: dir,
      bytes,
      names: () => [...files.keys()],
      shape: (n) => get(n).header.shape,
      readRows: (n, a, b) => get(n).readRows(a, b),
      close: () => files.forEach((f) => f.close()),
    },
  };
}

function toInt32(where: string, name: string, v: Float64Array): Int32Array {
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!Number.isInteger(x) || x < -2147483648 || x > 2147483647) throw new Error(`${where}: ${name}[${i}] = ${x} is not an integer token id`);
    out[i] = x;
  }
  return out;
}

/** A DumpSource over a store in the packed layout; sequences are read `batch` at a time. */
export function packedSource(store: ArrayStore, metaRaw: unknown, format: 'safetensors' | 'npy', metaOverride: Partial<DumpMeta> = {}, batchTokens = 1 << 18): DumpSource {
  const where = store.path;
  const names = new Set(store.names());
  for (const n of names) if (!KNOWN.has(n)) throw new Error(`${where}: unknown array '${n}' (the packed layout knows: ${[...KNOWN].join(', ')})`);
  for (const req of ['offsets', 'response_ids', 'mask', 'student_lp', 'teacher_lp']) {
    if (!names.has(req)) throw new Error(`${where}: missing required array '${req}'${req === 'mask' ? ' (masks are explicit, never inferred)' : ''}`);
  }
  const offShape = store.shape('offsets');
  if (offShape.length !== 1 || offShape[0] < 1) throw new Error(`${where}: offsets must be 1-D [S + 1], got shape [${offShape.join(', ')}]`);
  const offsets = store.readRows('offsets', 0, offShape[0]);
  const S = offsets.length - 1;
  const N = offsets[S];
  if (offsets[0] !== 0) throw new Error(`${where}: offsets[0] must be 0, got ${offsets[0]}`);
  for (let s = 0; s < S; s++) {
    if (!Number.isInteger(offsets[s + 1]) || offsets[s + 1] < offsets[s]) throw new Error(`${where}: offsets must be non-decreasing integers; offsets[${s + 1}] = ${offsets[s + 1]} after ${offsets[s]}`);
  }
  for (const n of TOKEN_ARRAYS) {
    if (!names.has(n)) continue;
    const sh = store.shape(n);
    if (sh.length !== 1 || sh[0] !== N) throw new Error(`${where}: ${n} must have shape [${N}] (offsets[S] tokens), got [${sh.join(', ')}]${sh[0] === N + S ? ' (N + S: one extra entry per sequence, e.g. an unsliced first position?)' : ''}`);
  }
  const topkWidth: Record<string, number> = {};
  for (const side of ['student', 'teacher']) {
    const a = `${side}_topk_ids`;
    const b = `${side}_topk_lp`;
    if (names.has(a) !== names.has(b)) throw new Error(`${where}: ${a} and ${b} come together; only one is present`);
    if (!names.has(a)) continue;
    const sa = store.shape(a);
    const sb = store.shape(b);
    if (sa.length !== 2 || sa[0] !== N || sb.length !== 2 || sb[0] !== N || sa[1] !== sb[1]) throw new Error(`${where}: ${a} and ${b} must both have shape [${N}, K], got [${sa.join(', ')}] and [${sb.join(', ')}]`);
    topkWidth[side] = sa[1];
  }
  for (const n of SEQUENCE_ARRAYS) {
    if (!names.has(n)) continue;
    const sh = store.shape(n);
    if (sh.length !== 1 || sh[0] !== S) throw new Error(`${where}: ${n} must have shape [${S}] (one per sequence), got [${sh.join(', ')}]`);
  }
  const fileMeta = parseMeta(metaRaw, `${where} meta`);
  const meta: DumpMeta = { ...fileMeta, ...metaOverride, extra: { ...fileMeta.extra, ...(metaOverride.extra ?? {}) } };
  const perSeq: Record<string, Float64Array | null> = {};
  for (const n of SEQUENCE_ARRAYS) perSeq[n] = names.has(n) ? store.readRows(n, 0, S) : null;

  return {
    path: where,
    format,
    meta,
    conversions: new ConversionLog(),
    bytes: store.bytes,
    async *sequences(): AsyncGenerator<DumpSequence> {
      let s0 = 0;
      while (s0 < S) {
        let s1 = s0 + 1;
        while (s1 < S && offsets[s1 + 1] - offsets[s0] <= batchTokens) s1++;
        const t0 = offsets[s0];
        const t1 = offsets[s1];
        const read = (n: string) => (names.has(n) ? store.readRows(n, t0, t1) : null);
        const ids = toInt32(where, 'response_ids', read('response_ids')!);
        const maskV = read('mask')!;
        const studentLp = read('student_lp')!;
        const teacherLp = read('teacher_lp')!;
        const opt: Record<string, Float64Array | null> = {};
        for (const n of ['student_lp_train', 'student_entropy', 'teacher_entropy', 'token_kl']) opt[n] = read(n);
        const tIds = read('teacher_response_ids');
        const teacherIds = tIds ? toInt32(where, 'teacher_response_ids', tIds) : null;
        const topk: Record<string, { k: number; ids: Int32Array; lp: Float64Array } | null> = {};
        for (const side of ['student', 'teacher']) {
          const k = topkWidth[side];
          topk[side] = k === undefined ? null : { k, ids: toInt32(where, `${side}_topk_ids`, read(`${side}_topk_ids`)!), lp: read(`${side}_topk_lp`)! };
        }
        for (let s = s0; s < s1; s++) {
          const a = offsets[s] - t0;
          const b = offsets[s + 1] - t0;
          const mask = new Uint8Array(b - a);
          for (let i = a; i < b; i++) {
            const m = maskV[i];
            if (m !== 0 && m !== 1) throw new Error(`${where}: mask[${offsets[s] + i - a}] must be 0 or 1, got ${m}`);
            mask[i - a] = m;
          }
          const sub = (x: Float64Array | null) => (x ? x.slice(a, b) : null);
          const subTopk = (t: { k: number; ids: Int32Array; lp: Float64Array } | null): TopKArrays | null => (t ? { k: t.k, ids: t.ids.slice(a * t.k, b * t.k), lp: t.lp.slice(a * t.k, b * t.k) } : null);
          const num = (n: string) => {
            const v = perSeq[n]?.[s];
            if (v === undefined || Number.isNaN(v)) return null;
            return (n === 'step' || n === 'prompt_len') && v < 0 ? null : v; // -1 = none in integer arrays
          };
          const sid = num('sample_id');
          const seq: DumpSequence = {
            sampleId: sid === null ? `#${s}` : String(sid),
            step: num('step'),
            promptLen: num('prompt_len'),
            responseIds: ids.slice(a, b),
            mask,
            studentLp: studentLp.slice(a, b),
            studentLpTrain: sub(opt.student_lp_train),
            teacherLp: teacherLp.slice(a, b),
            studentTopk: subTopk(topk.student),
            teacherTopk: subTopk(topk.teacher),
            studentEntropy: sub(opt.student_entropy),
            teacherEntropy: sub(opt.teacher_entropy),
            tokenKl: sub(opt.token_kl),
            teacherResponseIds: teacherIds ? teacherIds.slice(a, b) : null,
            reward: num('reward'),
            teacherId: null,
            origin: `${where} sequence ${s}`,
          };
          checkSequenceLengths(seq);
          yield seq;
        }
        s0 = s1;
      }
    },
  };
}

export interface PackedWriteOptions {
  /** dtype of log-probs and entropies. Default 'f32'. */
  floatDType: DType;
  /** dtype of token ids. Default 'i32'. */
  idDType: DType;
}

/** The arrays of the packed layout for a list of sequences (all must carry the same optional fields). */
export function packedArrays(sequences: DumpSequence[], options: Partial<PackedWriteOptions> = {}): TensorToWrite[] {
  const o: PackedWriteOptions = { floatDType: 'f32', idDType: 'i32', ...options };
  if (sequences.length === 0) throw new Error('packedArrays: no sequences');
  const S = sequences.length;
  const offsets = new Float64Array(S + 1);
  sequences.forEach((s, i) => (offsets[i + 1] = offsets[i] + s.responseIds.length));
  const N = offsets[S];
  const first = sequences[0];
  const out: TensorToWrite[] = [{ name: 'offsets', dtype: 'i64', shape: [S + 1], values: offsets }];
  const cat = (get: (s: DumpSequence) => ArrayLike<number> | null, name: string): Float64Array => {
    const v = new Float64Array(N);
    sequences.forEach((s, i) => {
      const a = get(s);
      if (!a) throw new Error(`packedArrays: sequence ${s.sampleId} lacks ${name}, which the first sequence has`);
      v.set(a, offsets[i]);
    });
    return v;
  };
  const token = (name: string, get: (s: DumpSequence) => ArrayLike<number> | null, dtype: DType) => {
    if (get(first) === null) return;
    out.push({ name, dtype, shape: [N], values: cat(get, name) });
  };
  token('response_ids', (s) => s.responseIds, o.idDType);
  token('mask', (s) => s.mask, 'u8');
  token('student_lp', (s) => s.studentLp, o.floatDType);
  token('teacher_lp', (s) => s.teacherLp, o.floatDType);
  token('student_lp_train', (s) => s.studentLpTrain, o.floatDType);
  token('student_entropy', (s) => s.studentEntropy, o.floatDType);
  token('teacher_entropy', (s) => s.teacherEntropy, o.floatDType);
  token('token_kl', (s) => s.tokenKl, o.floatDType);
  token('teacher_response_ids', (s) => s.teacherResponseIds, o.idDType);
  for (const side of ['student', 'teacher'] as const) {
    const get = (s: DumpSequence) => (side === 'student' ? s.studentTopk : s.teacherTopk);
    const t0 = get(first);
    if (!t0) continue;
    const k = Math.max(...sequences.map((s) => get(s)?.k ?? 0));
    const ids = new Float64Array(N * k).fill(-1);
    const lp = new Float64Array(N * k).fill(-Infinity);
    sequences.forEach((s, i) => {
      const t = get(s);
      if (!t) throw new Error(`packedArrays: sequence ${s.sampleId} lacks ${side} top-K, which the first sequence has`);
      const T = s.responseIds.length;
      for (let r = 0; r < T; r++) {
        for (let j = 0; j < t.k; j++) {
          ids[(offsets[i] + r) * k + j] = t.ids[r * t.k + j];
          lp[(offsets[i] + r) * k + j] = t.lp[r * t.k + j];
        }
      }
    });
    out.push({ name: `${side}_topk_ids`, dtype: o.idDType, shape: [N, k], values: ids });
    out.push({ name: `${side}_topk_lp`, dtype: o.floatDType, shape: [N, k], values: lp });
  }
  const numericIds = sequences.every((s) => /^-?\d+$/.test(s.sampleId));
  if (numericIds) out.push({ name: 'sample_id', dtype: 'i64', shape: [S], values: sequences.map((s) => Number(s.sampleId)) });
  if (sequences.some((s) => s.step !== null)) out.push({ name: 'step', dtype: 'i64', shape: [S], values: sequences.map((s) => s.step ?? -1) });
  if (sequences.some((s) => s.promptLen !== null)) out.push({ name: 'prompt_len', dtype: 'i64', shape: [S], values: sequences.map((s) => s.promptLen ?? -1) });
  if (sequences.some((s) => s.reward !== null)) out.push({ name: 'reward', dtype: 'f32', shape: [S], values: sequences.map((s) => s.reward ?? NaN) });
  return out;
}

export function writeSafetensorsDump(path: string, meta: DumpMeta, sequences: DumpSequence[], options: Partial<PackedWriteOptions> = {}): void {
  writeSafetensors(path, packedArrays(sequences, options), { format: 'opdlab-packed-v1', opdlab_meta: JSON.stringify(metaToJson(meta)) });
}

export function writeNpyDump(dir: string, meta: DumpMeta, sequences: DumpSequence[], options: Partial<PackedWriteOptions> = {}): void {
  mkdirSync(dir, { recursive: true });
  for (const t of packedArrays(sequences, options)) writeNpy(join(dir, `${t.name}.npy`), t.dtype, t.shape, t.values);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(metaToJson(meta), null, 1) + '\n');
}
