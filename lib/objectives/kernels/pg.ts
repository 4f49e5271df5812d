/**
 * Shared pieces of the fused row kernels for the policy-gradient (PG) branch. `opd` and the PG branch of
 * `aopd` call exactly these functions with the same arguments, so aopd at eta = -1 equals opd to the last digit.
 *
 *   advantage     r_t = log pT(y_t) - log pS(y_t)  (or log q(y_t), the sampler's),  detached
 *                 A_t = r_t (gamma = 0);  A_t = sum_{k >= t, same sequence} gamma^(k - t) m_k r_k (gamma > 0)
 *   PG loss       l_t = -w A_t log pS(y_t)               d l_t / d z_v = w A_t (p_v - 1[v = y_t])
 *   IS loss       l_t = -w A_t rho_t,  rho_t = exp(log pS(y_t) - log q(y_t))
 *                                                        d l_t / d z_v = w A_t rho_t (p_v - 1[v = y_t])
 * (d log pS(y) / d z_v = 1[v = y] - p_v, methods.md section 0; w is a branch weight, 1 for opd.)
 *
 * The O(N x V) passes run in lib/kernels (WebAssembly SIMD, or JS): the exponentials e = exp(z - max) of every
 * row once, written into the gradient's own memory; per row JS then settles a dense coefficient (the row becomes
 * g = (w c / s) e = w c p, s = sum e) and O(1) or O(K) sparse entries, and one more SIMD pass scales the rows in
 * place before the sparse entries are written over them. Where each row's coefficients depend on that row only
 * (opd at gamma = 0, aopd), studentRowsInBlocks runs these steps a block of rows at a time, so the scaling pass
 * reads the block from cache instead of the whole gradient from memory (same per-row arithmetic, same bits). The row maxima come from validation's finiteness scan
 * where it took them (Arena.rowMaxOf: no max pass of their own), and the few logits a row needs afterwards (at y_t,
 * on the support) from one SIMD gather rather than one cache miss each.
 */
import { rowKernels, type Arena, type RowKernels } from '../../kernels';
import type { TopK } from '../../probs/topk';
import { teacherSampledLogprobs, teacherSupport } from '../batch';
import { isTeacherFull, type DistillBatch } from '../types';

/** The teacher's detached inputs: log pT(y_t) and, when asked, its top-k support and off-support mass. */
export interface TeacherInputs {
  /** [N] log pT(y_t). */
  lpT_N: Float32Array;
  /** Top-k ids and full-vocabulary log-probs, sorted descending (ties to the lower id); null for k = 0. */
  support: TopK | null;
  /** [N] the teacher's mass off the support, sum_{v not in S} pT(v) (only when `tail` was asked; else null). */
  tail_N: Float64Array | null;
}

/**
 * Reads the teacher once for both paths of opd and aopd (so they see identical numbers). A top-K dump is read
 * as teacherSampledLogprobs / teacherSupport read it, and its tail mass is all it can give: max(1 - sum_S pT, 0),
 * good to about K float32 ulps (~1e-7). Full logits are read in place (lib/kernels) instead of through a tfjs
 * log-softmax: one logsumexp pass, log pT(v) = zT_v - lse, the top-k ranked on the logits (the same order, SIMD
 * threshold scan) and, for the tail, the off-support exponentials summed directly.
 */
export function teacherLogprobs(batch: DistillBatch, k: number, tail = false): TeacherInputs {
  const t = batch.teacher;
  if (!t || !isTeacherFull(t)) {
    const lpT_N = teacherSampledLogprobs(batch);
    if (k <= 0) return { lpT_N, support: null, tail_N: null };
    const support = teacherSupport(batch, k);
    let tail_N: Float64Array | null = null;
    if (tail) {
      const vocab = batch.studentLogits_NV.shape[1];
      tail_N = new Float64Array(support.rows);
      for (let n = 0; n < support.rows && k < vocab; n++) {
        let mass = 0;
        for (let j = 0; j < k; j++) mass += Math.exp(support.values_NK[n * k + j]);
        tail_N[n] = Math.max(1 - mass, 0);
      }
    }
    return { lpT_N, support, tail_N };
  }
  const [rows, vocab] = t.logits_NV.shape;
  const kernels = rowKernels();
  // arena views die at the next arena() call (fusedLoss): everything needed is copied out below
  const scratch = rows * 12 + Math.max(k, 0) * rows * 8 + (tail ? rows * (vocab * 4 + 12) : 0) + 1024;
  const arena = kernels.arena(scratch, rows * vocab * 4);
  const zT = arena.load(t.logits_NV);
  const lse_N = arena.f64(rows);
  const ids = arena.i32(rows * Math.max(k, 0));
  const values = arena.f32(rows * Math.max(k, 0));
  if (k > 0) kernels.topKRows(zT, rows, vocab, k, ids, values, lse_N); // NV -> NK, N (the top-1 is the row max)
  else {
    // the row maxima from validation's finiteness scan where it took them (no max pass here), else computed
    const known = arena.rowMaxOf(zT, rows, vocab);
    const max_N = known ? arena.f32(rows) : null;
    if (max_N) max_N.set(known!);
    kernels.logsumexpRows(zT, rows, vocab, lse_N, 1, max_N); // NV -> N (the same numbers as the line above)
  }
  const lpT_N = new Float32Array(rows);
  kernels.gatherRows(zT, rows, vocab, batch.tokens_N, 1, lpT_N); // NV -> N: the logit at y_t (one SIMD gather)
  for (let n = 0; n < rows; n++) lpT_N[n] = lpT_N[n] - lse_N[n];
  if (k <= 0) return { lpT_N, support: null, tail_N: null };
  const support: TopK = { rows, k, ids_NK: Int32Array.from(ids), values_NK: new Float32Array(rows * k) };
  for (let i = 0; i < rows * k; i++) support.values_NK[i] = values[i] - lse_N[Math.floor(i / k)];
  let tail_N: Float64Array | null = null;
  if (tail) {
    // off-support mass sum_{v not in S} e_v / s, e = exp(zT - max), summed directly (1 - sum_S pT would cancel)
    const e = arena.f32(rows * vocab);
    const max_N = arena.f32(rows);
    const sum_N = arena.f64(rows);
    const known = arena.rowMaxOf(zT, rows, vocab);
    if (known) max_N.set(known);
    kernels.expRows(zT, rows, vocab, e, max_N, sum_N, known !== null);
    tail_N = new Float64Array(rows);
    const inSupport = new Uint8Array(vocab);
    for (let n = 0; n < rows; n++) {
      const base = n * vocab;
      for (let j = 0; j < k; j++) inSupport[support.ids_NK[n * k + j]] = 1;
      let mass = 0;
      for (let v = 0; v < vocab; v++) if (inSupport[v] === 0) mass += e[base + v];
      for (let j = 0; j < k; j++) inSupport[support.ids_NK[n * k + j]] = 0;
      tail_N[n] = mass / sum_N[n];
    }
  }
  return { lpT_N, support, tail_N };
}

/**
 * The student's rows as the fused kernels of opd and aopd build their gradient: g is the gradient's memory, holding
 * e = exp(z - max) until `writeRows`; sum_N = sum_v e, lse_N = max + log sum. Each row gets a dense coefficient
 * (setDenseRow: row n becomes a p) and sparse entries (setEntry) written over the dense part.
 */
export interface StudentRows {
  kernels: RowKernels;
  z: Float32Array;
  g: Float32Array;
  sum_N: Float64Array;
  lse_N: Float64Array;
  vocab: number;
  /** [N * K] z at each row's support ids (studentRows' `support`), gathered in one SIMD pass; null without one. */
  zS_NK: Float32Array | null;
  /** [N] the scale of each row's exponentials (arena view: read by the SIMD pass); 0 until set. */
  dense_N: Float32Array;
  /** Sparse entries: flat indices into g and their values (the first `entries`), written after the dense pass. */
  entryAt: Int32Array;
  entryValue: Float64Array;
  entries: number;
}

/**
 * The per-row buffers of the exponential pass: max_N (filled with validation's row maxima when its scan took them:
 * `known`), sum_N, and with `support` the logits on it, zS_NK (gathered now: reading them one by one after the
 * pass would cost a cache miss each).
 */
function rowBuffers(kernels: RowKernels, arena: Arena, z: Float32Array, rows: number, vocab: number, support?: { ids_NK: Int32Array; k: number }) {
  const max_N = arena.f32(rows);
  const sum_N = arena.f64(rows);
  const maxima = arena.rowMaxOf(z, rows, vocab);
  if (maxima) max_N.set(maxima);
  let zS_NK: Float32Array | null = null;
  if (support) {
    zS_NK = new Float32Array(rows * support.k);
    kernels.gatherRows(z, rows, vocab, support.ids_NK, support.k, zS_NK); // NV -> NK
  }
  return { max_N, sum_N, known: maxima !== null, zS_NK };
}

/**
 * The exponential pass of `StudentRows` over the logits z (e into the gradient's memory g); with `support` (K ids per
 * row) also the logits there, zS_NK (reading them one by one after the pass would cost a cache miss each).
 */
export function studentRows(
  kernels: RowKernels,
  arena: Arena,
  z: Float32Array,
  g: Float32Array,
  rows: number,
  vocab: number,
  support?: { ids_NK: Int32Array; k: number },
): StudentRows {
  const { max_N, sum_N, known, zS_NK } = rowBuffers(kernels, arena, z, rows, vocab, support);
  kernels.expRows(z, rows, vocab, g, max_N, sum_N, known); // NV -> NV (e), N, N
  const lse_N = new Float64Array(rows);
  for (let n = 0; n < rows; n++) lse_N[n] = max_N[n] + Math.log(sum_N[n]);
  const dense_N = arena.f32(rows).fill(0);
  // room for one entry per row (the PG rows); setEntry grows it for more
  return { kernels, z, g, sum_N, lse_N, vocab, zS_NK, dense_N, entryAt: new Int32Array(rows + 16), entryValue: new Float64Array(rows + 16), entries: 0 };
}

/** Bytes of gradient rows settled at a time by `studentRowsInBlocks`: a block stays in the L2 cache between its passes. */
const BLOCK_BYTES = 256 * 1024;

/**
 * The rows of `StudentRows` settled and written a block of rows at a time: for each block the exponential pass
 * (e into g), then `settle(s, from, to)` (the caller's per-row work: setDenseRow / setEntry / setPgRow on rows
 * from .. to - 1, reading s.lse_N, s.sum_N, s.zS_NK and the block's exponentials in g), then the block's scaling
 * and sparse entries, while the block is still in cache. The same per-row arithmetic as studentRows + writeRows
 * (every row's numbers are its own), so the gradient is bit-identical; it saves the separate scaling pass over the
 * whole gradient. Only for coefficients that depend on their own row (not on later rows, as a discounted sum does).
 */
export function studentRowsInBlocks(
  kernels: RowKernels,
  arena: Arena,
  z: Float32Array,
  g: Float32Array,
  rows: number,
  vocab: number,
  support: { ids_NK: Int32Array; k: number } | undefined,
  settle: (s: StudentRows, from: number, to: number) => void,
): StudentRows {
  const { max_N, sum_N, known, zS_NK } = rowBuffers(kernels, arena, z, rows, vocab, support);
  const dense_N = arena.f32(rows).fill(0);
  const perEntry = support ? support.k + 1 : 1;
  const step = Math.max(1, Math.floor(BLOCK_BYTES / (4 * vocab)));
  const s: StudentRows = {
    kernels, z, g, sum_N, lse_N: new Float64Array(rows), vocab, zS_NK, dense_N,
    entryAt: new Int32Array(step * perEntry + 16), entryValue: new Float64Array(step * perEntry + 16), entries: 0,
  };
  for (let from = 0; from < rows; from += step) {
    const to = Math.min(rows, from + step);
    const span = (to - from) * vocab;
    const gBlock = g.subarray(from * vocab, from * vocab + span);
    // NV -> NV (e), N, N for the block's rows
    kernels.expRows(z.subarray(from * vocab, from * vocab + span), to - from, vocab, gBlock, max_N.subarray(from, to), sum_N.subarray(from, to), known);
    for (let n = from; n < to; n++) s.lse_N[n] = max_N[n] + Math.log(sum_N[n]);
    settle(s, from, to);
    kernels.scaleRows(gBlock, dense_N.subarray(from, to), to - from, vocab, gBlock); // the block, in place
    for (let i = 0; i < s.entries; i++) g[s.entryAt[i]] = s.entryValue[i];
    s.entries = 0;
  }
  return s;
}

/** Row n of the gradient = a p_v (plus its sparse entries): the row's exponentials will be scaled by a / s. */
export function setDenseRow(s: StudentRows, n: number, a: number): void {
  s.dense_N[n] = a / s.sum_N[n];
}

/** g[n, v] = value over the dense part (n, v the row and column). */
export function setEntry(s: StudentRows, n: number, v: number, value: number): void {
  if (s.entries === s.entryAt.length) {
    const at = new Int32Array(2 * s.entries);
    at.set(s.entryAt);
    const values = new Float64Array(2 * s.entries);
    values.set(s.entryValue);
    s.entryAt = at;
    s.entryValue = values;
  }
  s.entryAt[s.entries] = n * s.vocab + v;
  s.entryValue[s.entries++] = value;
}

/** Writes every row: one SIMD pass g = dense_N[n] e over all rows, then the sparse entries. */
export function writeRows(s: StudentRows): void {
  const rows = s.dense_N.length;
  s.kernels.scaleRows(s.g, s.dense_N, rows, s.vocab, s.g); // NV -> NV, in place
  for (let i = 0; i < s.entries; i++) s.g[s.entryAt[i]] = s.entryValue[i];
}

/**
 * PG loss of one token and its gradient coefficient c (see the header): l = -w A log pS(y), or -w A rho with the
 * importance ratio; d l / d z_v = c (p_v - 1[v = y]). `logq` is read only when `importanceRatio` is true.
 */
export function pgTerms(advantage: number, lpSy: number, logq: number, importanceRatio: boolean, weight: number): { loss: number; c: number } {
  if (importanceRatio) {
    const rho = Math.exp(lpSy - logq);
    return { loss: -weight * advantage * rho, c: weight * advantage * rho };
  }
  return { loss: -weight * advantage * lpSy, c: weight * advantage };
}

/**
 * Row n of the gradient of a PG token, scaled by the reduction weight: w c (p_v - 1[v = y]) with wc = w c; the
 * entry at y in float64 from lpSy = log pS(y), so it does not cancel in float32.
 */
export function setPgRow(s: StudentRows, n: number, y: number, wc: number, lpSy: number): void {
  setDenseRow(s, n, wc);
  setEntry(s, n, y, wc * (Math.exp(lpSy) - 1));
}

/**
 * Advantages A_N from per-token rewards r_N (masked tokens contribute 0): r itself for gamma = 0, else the
 * discounted future sum within each sequence, A_t = sum_{k >= t, seq(k) = seq(t)} gamma^(k - t) m_k r_k.
 * The exponent counts positions (tinker's discounted_future_sum over the token sequence, where non-action
 * tokens carry 0); in a single-turn rollout the masked tokens are contiguous and both readings agree.
 * Masked-out positions get A = 0 (their weight is 0 anyway).
 */
export function discountedAdvantages(r_N: ArrayLike<number>, mask_N: Float32Array, gamma: number, seqIds_N?: Int32Array): Float64Array {
  const n = r_N.length;
  const a = new Float64Array(n);
  if (gamma === 0) {
    for (let i = 0; i < n; i++) a[i] = mask_N[i] > 0 ? r_N[i] : 0;
    return a;
  }
  if (!seqIds_N) throw new Error('discountedAdvantages: gamma > 0 needs seqIds_N (a sequence id per token)');
  let acc = 0;
  for (let i = n - 1; i >= 0; i--) {
    if (i === n - 1 || seqIds_N[i] !== seqIds_N[i + 1]) acc = 0;
    acc = (mask_N[i] > 0 ? r_N[i] : 0) + gamma * acc;
    a[i] = mask_N[i] > 0 ? acc : 0;
  }
  return a;
}

/**
 * Advantage metrics over masked tokens: adv/mean, adv/neg_share (A < 0), adv/zero_share (|A| < 1e-3), and
 * teacher_kl = mean of (log pS - log pT) with the log pS used in the advantage (tinker's `teacher_kl`).
 * Empty masks give 0.
 */
export function advantageMetrics(
  advantage_N: ArrayLike<number>,
  lpAdv_N: ArrayLike<number>,
  lpT_N: ArrayLike<number>,
  mask_N: Float32Array,
): Record<string, number> {
  let count = 0, sum = 0, neg = 0, zero = 0, kl = 0;
  for (let i = 0; i < mask_N.length; i++) {
    if (mask_N[i] === 0) continue;
    const a = advantage_N[i];
    count++;
    sum += a;
    if (a < 0) neg++;
    if (Math.abs(a) < 1e-3) zero++;
    kl += lpAdv_N[i] - lpT_N[i];
  }
  const d = count > 0 ? count : 1;
  return { 'adv/mean': sum / d, 'adv/neg_share': neg / d, 'adv/zero_share': zero / d, teacher_kl: kl / d };
}
