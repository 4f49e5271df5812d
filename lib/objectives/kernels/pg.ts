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
 * The O(N x V) passes run in lib/kernels (WebAssembly SIMD, or JS): the row softmax of every row once, then
 * per row a scaled copy g = c p of the softmax plus O(1) or O(K) fix-ups in JS.
 */
import { rowKernels, type RowKernels } from '../../kernels';
import { topKRows, type TopK } from '../../probs/topk';
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
 * good to about K float32 ulps (~1e-7). Full logits take one logsumexp (or softmax, for the tail) pass in
 * lib/kernels instead of a tfjs log-softmax per call: log pT(v) = zT_v - lse, the top-k ranked on the logits
 * (the same order), and the tail summed directly over the off-support probabilities.
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
  const arena = kernels.arena(rows * vocab * 4 * (tail ? 2 : 1) + rows * 8 + 1024);
  const zT = arena.load(t.logits_NV);
  const lse_N = arena.f64(rows);
  const pT = tail ? arena.f32(rows * vocab) : null;
  if (pT) kernels.softmaxRows(zT, rows, vocab, pT, lse_N);
  else kernels.logsumexpRows(zT, rows, vocab, lse_N);
  const lpT_N = new Float32Array(rows);
  for (let n = 0; n < rows; n++) lpT_N[n] = zT[n * vocab + batch.tokens_N[n]] - lse_N[n];
  if (k <= 0) return { lpT_N, support: null, tail_N: null };
  const support = topKRows(zT, rows, vocab, k);
  for (let i = 0; i < rows * k; i++) support.values_NK[i] -= lse_N[Math.floor(i / k)];
  let tail_N: Float64Array | null = null;
  if (pT) {
    tail_N = new Float64Array(rows);
    const inSupport = new Uint8Array(vocab);
    for (let n = 0; n < rows; n++) {
      const base = n * vocab;
      for (let j = 0; j < k; j++) inSupport[support.ids_NK[n * k + j]] = 1;
      let mass = 0;
      for (let v = 0; v < vocab; v++) if (inSupport[v] === 0) mass += pT[base + v];
      for (let j = 0; j < k; j++) inSupport[support.ids_NK[n * k + j]] = 0;
      tail_N[n] = mass;
    }
  }
  return { lpT_N, support, tail_N };
}

/**
 * g[n, :] = c p[n, :] through the SIMD kernel (cN[n] = c; p, g and cN are views from the current kernel arena).
 */
export function scaleRow(kernels: RowKernels, p: Float32Array, g: Float32Array, cN: Float32Array, n: number, vocab: number, c: number): void {
  const base = n * vocab;
  cN[n] = c;
  kernels.scaleRows(p.subarray(base, base + vocab), cN.subarray(n, n + 1), 1, vocab, g.subarray(base, base + vocab));
}

/**
 * Per-token PG loss of row n and its analytic gradient written to g[n, :] (see the header): l = -w A log pS(y),
 * or -w A rho with the importance ratio. p = the row softmax, lpSy = z_y - lse. Returns the loss; `logq` is
 * read only when `importanceRatio` is true.
 */
export function pgRow(
  kernels: RowKernels,
  p: Float32Array,
  g: Float32Array,
  cN: Float32Array,
  n: number,
  vocab: number,
  y: number,
  advantage: number,
  lpSy: number,
  logq: number,
  importanceRatio: boolean,
  weight: number,
): number {
  let loss: number;
  let c: number; // d l / d z_v = c (p_v - 1[v = y])
  if (importanceRatio) {
    const rho = Math.exp(lpSy - logq);
    loss = -weight * advantage * rho;
    c = weight * advantage * rho;
  } else {
    loss = -weight * advantage * lpSy;
    c = weight * advantage;
  }
  scaleRow(kernels, p, g, cN, n, vocab, c);
  g[n * vocab + y] = c * (p[n * vocab + y] - 1);
  return loss;
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
