/**
 * Batched, KV-cached sampling from the student, recording the sampler's log-probs.
 *
 * At each response position t of row b, from the student's logits z (one batched forward per position):
 *   raw           log pS(v) = z_v - logsumexp(z)                                     (T = 1, no truncation)
 *   target q0     softmax(z / temperature) restricted to: not banned, in the top-k (ties at the k-th logit kept),
 *                 and in the nucleus (the most likely tokens whose mass first reaches topP, ties at the edge
 *                 kept), renormalised; the order is temperature -> top-k -> top-p, as in HF transformers
 *   behaviour q   q0, or PROPS' tilt of q0 (props.ts) when `props` is set
 *   y_t ~ q       inverse CDF with one seeded uniform per active row and position
 * and records log q(y_t) (samplerLogprobs: the distribution actually sampled, for importance weights and
 * tinker-style advantages) and log pS(y_t) at T = 1 (rawLogprobs).
 *
 * Special tokens: `bannedTokens` (default <pad>, <bos>) are never sampled; `stopToken` (<eos>) ends a row and is
 * part of its response (mask 1). Rows that reach maxNewTokens without it are unfinished (finished_B = 0).
 * Finished rows are no longer fed; their remaining response positions stay <pad> with mask 0.
 *
 * Cost: each distinct prompt is prefilled once (kernels.ts expandCache fans its cache row out to the rows that
 * repeat it), and each decode step feeds only the rows still sampling, one per distinct prefix (context id; the
 * others copy its new cache column and logits). None of this changes a bit of the result, since every op of the
 * student is row-wise (test/sim/student.test.ts, test/sim/sampler.test.ts).
 *
 * Output layout: batch.ts SeqBatch (prompts left-padded to P, responses at columns P .. P + R - 1, R = the
 * longest response produced, at most maxNewTokens), plus per response position the context id (rows with equal
 * ids had identical prompt and prefix at that position).
 * Deterministic in (weights, prompts, options, seed) on a given backend.
 */
import { type SeqBatch } from './batch';
import { PropsState, type PropsOptions } from './props';
import { deriveSeed, Rng } from './rng';
import { allRows, cacheCopyColumn, expandCache } from './kernels';
import type { KVCache, Student } from './student';
import { tok } from './vocab';

export interface SampleOptions {
  /** Divides the logits before truncation (1 = the model's distribution). */
  temperature: number;
  /** Nucleus mass (1 = off). */
  topP: number;
  /** Keep the k most likely tokens (0 = off). */
  topK: number;
  /** Most response tokens per row (default: what fits the student's context, P + R - 1 <= context). */
  maxNewTokens?: number;
  /** Ends a row; kept in the response (null: rows always run to maxNewTokens, e.g. for benchmarks). */
  stopToken: number | null;
  /** Never sampled (their raw log-probs are still part of pS). */
  bannedTokens: readonly number[];
  /** Seed of the sampling uniforms. */
  seed: number;
  /** PROPS behaviour policy options (props.ts), or null for plain on-policy sampling. */
  props: Partial<PropsOptions> | null;
  /** Also return the target rows q0 [B R V] (for samplingError). */
  recordTargetProbs: boolean;
  /** Also return the raw logits rows [B R V]. */
  recordLogits: boolean;
}

export const DEFAULT_SAMPLE: Readonly<SampleOptions> = {
  temperature: 1,
  topP: 1,
  topK: 0,
  stopToken: tok.eos,
  bannedTokens: [tok.pad, tok.bos],
  seed: 0,
  props: null,
  recordTargetProbs: false,
  recordLogits: false,
};

export interface Rollouts extends SeqBatch {
  /** [B R] log q(y_t) of the behaviour distribution actually sampled from; 0 where mask is 0. */
  samplerLogprobs_BR: Float32Array;
  /** [B R] log pS(y_t) at temperature 1 without truncation; 0 where mask is 0. */
  rawLogprobs_BR: Float32Array;
  /** [B] 1 if the row ended with the stop token. */
  finished_B: Uint8Array;
  /** [B R] context id of each response position (-1 where mask is 0). */
  contextIds_BR: Int32Array;
  /** [B R V] target q0 rows, if recordTargetProbs (0 rows where mask is 0). */
  targetProbs_BRV?: Float32Array;
  /** [B R V] raw logits rows, if recordLogits. */
  logits_BRV?: Float32Array;
  /** The resolved options used. */
  options: SampleOptions;
}

export function resolveSampleOptions(options: Partial<SampleOptions> = {}): SampleOptions {
  const o = { ...DEFAULT_SAMPLE } as SampleOptions;
  for (const key of Object.keys(options)) {
    if (!(key in DEFAULT_SAMPLE) && key !== 'maxNewTokens') throw new Error(`sample: unknown option '${key}' (known: maxNewTokens, ${Object.keys(DEFAULT_SAMPLE).join(', ')})`);
    const v = (options as Record<string, unknown>)[key];
    if (v !== undefined) (o as unknown as Record<string, unknown>)[key] = v;
  }
  if (!(o.temperature > 0) || !Number.isFinite(o.temperature)) throw new Error(`sample: temperature must be a finite number > 0, got ${o.temperature}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`sample: topP must be a number in (0, 1], got ${o.topP}`);
  if (!Number.isInteger(o.topK) || o.topK < 0) throw new Error(`sample: topK must be a non-negative integer (0 = off), got ${o.topK}`);
  if (o.maxNewTokens !== undefined && (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)) throw new Error(`sample: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  if (!Number.isFinite(o.seed)) throw new Error(`sample: seed must be a finite number, got ${o.seed}`);
  if (o.stopToken !== null && o.bannedTokens.includes(o.stopToken)) throw new Error(`sample: stopToken ${o.stopToken} must not be banned`);
  return o;
}

/**
 * Turns one row of logits into the target q0 (see header). Writes q0 into `q0` (float64 [V]) and returns the raw
 * log-normaliser logsumexp(z) for T = 1 log-probs. `scratch` is a float32 [V] work buffer.
 */
export function targetDistribution(z: ArrayLike<number>, o: SampleOptions, banned: Uint8Array, q0: Float64Array, scratch: Float32Array): number {
  const V = q0.length;
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (z[v] > max) max = z[v];
  // q0 holds exp(z - max) until it is overwritten below (reused there when temperature and maximum agree)
  let sum = 0;
  for (let v = 0; v < V; v++) {
    const e = Math.exp(z[v] - max);
    q0[v] = e;
    sum += e;
  }
  const rawLse = max + Math.log(sum);
  const invT = 1 / o.temperature;
  // processed logits, banned -> -inf
  let m2 = -Infinity;
  for (let v = 0; v < V; v++) {
    const x = banned[v] ? -Infinity : z[v] * invT;
    scratch[v] = x;
    if (x > m2) m2 = x;
  }
  if (m2 === -Infinity) throw new Error('sample: every token is banned');
  let kth = -Infinity;
  if (o.topK > 0 && o.topK < V) {
    const sorted = Float32Array.from(scratch).sort(); // ascending; -inf first
    kth = sorted[V - o.topK];
  }
  let z2 = 0;
  const sameMax = m2 === max;
  for (let v = 0; v < V; v++) {
    const x = scratch[v];
    // exp(x - m2) is exactly the stored exp(z - max) when x = z (temperature 1, float32 logits) and m2 = max
    const p = x === -Infinity || x < kth ? 0 : sameMax && x === z[v] ? q0[v] : Math.exp(x - m2);
    q0[v] = p;
    z2 += p;
  }
  for (let v = 0; v < V; v++) q0[v] /= z2;
  if (o.topP < 1) {
    for (let v = 0; v < V; v++) scratch[v] = q0[v];
    const sorted = scratch.sort(); // ascending
    let acc = 0;
    let edge = 0;
    for (let i = V - 1; i >= 0; i--) {
      acc += sorted[i];
      edge = sorted[i];
      if (acc >= o.topP) break;
    }
    let z3 = 0;
    for (let v = 0; v < V; v++) {
      // compare in float32, as the sort did, so ties at the edge are kept
      if (Math.fround(q0[v]) < edge) q0[v] = 0;
      z3 += q0[v];
    }
    for (let v = 0; v < V; v++) q0[v] /= z3;
  }
  return rawLse;
}

/**
 * Sample responses for `prompts` (token arrays, <bos> ... <sep>), one row per prompt (repeat a prompt for
 * several rollouts of it).
 */
export function sample(student: Student, prompts: readonly ArrayLike<number>[], options: Partial<SampleOptions> = {}): Rollouts {
  const o = resolveSampleOptions(options);
  const V = student.config.vocabSize;
  const B = prompts.length;
  if (B === 0) throw new Error('sample: prompts must not be empty');
  const P = Math.max(...prompts.map((p) => p.length));
  if (Math.min(...prompts.map((p) => p.length)) < 1) throw new Error('sample: every prompt needs at least one token');
  const fit = student.config.context - P + 1;
  const R = o.maxNewTokens ?? fit;
  if (R < 1 || R > fit) throw new Error(`sample: maxNewTokens must be in [1, ${fit}] (prompt width ${P}, context ${student.config.context}), got ${R}`);
  for (const id of o.stopToken === null ? o.bannedTokens : [o.stopToken, ...o.bannedTokens]) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`sample: special token ids must be in [0, ${V}), got ${id}`);
  }
  const banned = new Uint8Array(V);
  for (const id of o.bannedTokens) banned[id] = 1;

  const T = P + R;
  const tokens_BT = new Int32Array(B * T).fill(tok.pad);
  const start_B = new Int32Array(B);
  const prompts_BP = new Int32Array(B * P).fill(tok.pad);
  for (let b = 0; b < B; b++) {
    const p = prompts[b];
    start_B[b] = P - p.length;
    for (let i = 0; i < p.length; i++) {
      tokens_BT[b * T + start_B[b] + i] = p[i];
      prompts_BP[b * P + start_B[b] + i] = p[i];
    }
  }
  const mask_BR = new Float32Array(B * R);
  const responseLength_B = new Int32Array(B);
  const samplerLogprobs_BR = new Float32Array(B * R);
  const rawLogprobs_BR = new Float32Array(B * R);
  const finished_B = new Uint8Array(B);
  const contextIds_BR = new Int32Array(B * R).fill(-1);
  const targetProbs_BRV = o.recordTargetProbs ? new Float32Array(B * R * V) : undefined;
  const logits_BRV = o.recordLogits ? new Float32Array(B * R * V) : undefined;

  const rng = new Rng(deriveSeed(o.seed, 'student-sample'));
  const props = o.props ? new PropsState(V, o.props) : null;
  const q0 = new Float64Array(V);
  const q = new Float64Array(V);
  const scratch = new Float32Array(V);

  // context ids: equal prompts share an id; a context's child after token y gets one id per (parent, y)
  const ids = new Map<string, number>();
  const idOf = (key: string) => {
    let id = ids.get(key);
    if (id === undefined) {
      id = ids.size;
      ids.set(key, id);
    }
    return id;
  };
  const context = new Int32Array(B);
  for (let b = 0; b < B; b++) context[b] = idOf(`p:${Array.from(prompts[b]).join(',')}`);

  // each distinct prompt is prefilled once and its cache row fanned out to every row that repeats it (a row's
  // outputs do not depend on the other rows of the batch, so this changes no bit of the samples)
  const uniqueOf = new Map<number, number>(); // prompt context id -> its row among the distinct prompts
  const uniqueOf_B = Int32Array.from(context, (cid) => {
    if (!uniqueOf.has(cid)) uniqueOf.set(cid, uniqueOf.size);
    return uniqueOf.get(cid)!;
  });
  const U = uniqueOf.size;
  const uniquePrompts_UP = new Int32Array(U * P);
  const uniqueStart_U = new Int32Array(U);
  uniqueOf_B.forEach((u, b) => {
    uniquePrompts_UP.set(prompts_BP.subarray(b * P, (b + 1) * P), u * P);
    uniqueStart_U[u] = start_B[b];
  });
  const prefilled = student.prefill(uniquePrompts_UP, U, P, uniqueStart_U, T - 1);
  const cache = U === B ? prefilled.cache : expandCache(prefilled.cache, uniqueOf_B);
  // logits_AV: one row per active row (rows fed to the last decode, in increasing order)
  let logits_AV = prefilled.logits_BV;
  let rows = allRows(B);
  if (U !== B) {
    logits_AV = new Float32Array(B * V);
    uniqueOf_B.forEach((u, b) => logits_AV.set(prefilled.logits_BV.subarray(u * V, (u + 1) * V), b * V));
  }
  for (let t = 0; t < R; t++) {
    const next_A = new Int32Array(rows.length);
    for (let a = 0; a < rows.length; a++) {
      const b = rows[a];
      const z = logits_AV.subarray(a * V, (a + 1) * V);
      const lse = targetDistribution(z, o, banned, q0, scratch);
      const cid = context[b];
      if (props) props.tilt(q0, cid, q);
      const dist = props ? q : q0;
      const y = rng.categorical(dist, V);
      if (props) props.observe(q0, cid, y);
      const n = b * R + t;
      samplerLogprobs_BR[n] = Math.log(dist[y]);
      rawLogprobs_BR[n] = z[y] - lse;
      mask_BR[n] = 1;
      contextIds_BR[n] = cid;
      if (targetProbs_BRV) for (let v = 0; v < V; v++) targetProbs_BRV[n * V + v] = q0[v];
      if (logits_BRV) logits_BRV.set(z, n * V);
      tokens_BT[b * T + P + t] = y;
      responseLength_B[b] = t + 1;
      next_A[a] = y;
      context[b] = idOf(`${cid}:${y}`);
      if (y === o.stopToken) finished_B[b] = 1;
    }
    const keep = rows.filter((b) => !finished_B[b]);
    if (keep.length === 0 || t === R - 1) break;
    const next_B = new Int32Array(B);
    rows.forEach((b, a) => (next_B[b] = next_A[a]));
    rows = keep;
    logits_AV = decodeShared(student, cache, rows, next_B, context, V);
  }
  // R becomes the longest response produced: the trainer's forward pass never pays for all-padding columns
  const Rn = Math.max(1, ...Array.from(responseLength_B));
  const trim = <A extends Float32Array | Int32Array>(a: A, width: number, keep: number): A => {
    if (keep === width) return a;
    const out = new (a.constructor as new (n: number) => A)(B * keep);
    for (let b = 0; b < B; b++) out.set(a.subarray(b * width, b * width + keep), b * keep);
    return out;
  };
  const trimRows = (a: Float32Array | undefined) => (a && Rn < R ? trimRowsBy(a, B, R, Rn, V) : a);
  return {
    B, P, R: Rn,
    tokens_BT: trim(tokens_BT, T, P + Rn),
    start_B, mask_BR: trim(mask_BR, R, Rn), responseLength_B,
    samplerLogprobs_BR: trim(samplerLogprobs_BR, R, Rn), rawLogprobs_BR: trim(rawLogprobs_BR, R, Rn), finished_B,
    contextIds_BR: trim(contextIds_BR, R, Rn), targetProbs_BRV: trimRows(targetProbs_BRV), logits_BRV: trimRows(logits_BRV), options: o,
  };
}

/**
 * One decode step of the cache rows `rows` (increasing), row b fed next_B[b]; returns their logits [A, V]. Rows
 * with equal context ids hold the same prompt and prefix, so their keys, values and logits are equal: only the
 * first row of each context is computed, and its new cache column and logits are copied to the others.
 */
function decodeShared(student: Student, cache: KVCache, rows: Int32Array, next_B: Int32Array, context_B: Int32Array, V: number): Float32Array {
  const A = rows.length;
  const slotOf = new Map<number, number>(); // context id -> index among the computed rows
  const computed: number[] = [];
  const slot_A = Int32Array.from(rows, (b) => {
    let slot = slotOf.get(context_B[b]);
    if (slot === undefined) {
      slot = computed.length;
      slotOf.set(context_B[b], slot);
      computed.push(b);
    }
    return slot;
  });
  const computedRows = Int32Array.from(computed);
  const logits_CV = student.decode(cache, Int32Array.from(computed, (b) => next_B[b]), computedRows);
  if (computed.length === A) return logits_CV;
  const from: number[] = [];
  const to: number[] = [];
  const logits_AV = new Float32Array(A * V);
  rows.forEach((b, a) => {
    const slot = slot_A[a];
    logits_AV.set(logits_CV.subarray(slot * V, (slot + 1) * V), a * V);
    if (computed[slot] !== b) {
      from.push(computed[slot]);
      to.push(b);
    }
  });
  cacheCopyColumn(cache, cache.length - 1, Int32Array.from(from), Int32Array.from(to));
  return logits_AV;
}

/** Keep the first Rn of R positions per row of a [B, R, V] array. */
function trimRowsBy(a: Float32Array, B: number, R: number, Rn: number, V: number): Float32Array {
  const out = new Float32Array(B * Rn * V);
  for (let b = 0; b < B; b++) out.set(a.subarray(b * R * V, (b * R + Rn) * V), b * Rn * V);
  return out;
}
