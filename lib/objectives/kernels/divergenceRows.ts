/**
 * Fused row kernels for divergences between a student row and a teacher row (gkd, topk-rkl): per row in plain JS
 * with float64 accumulation, the per-token value l_n (unweighted) and its analytic gradient with respect to the
 * student LOGITS, written as w_n d l_n / d z_nv (w_N the reduction weights) into the gradient's memory. The
 * full-vocabulary JSD (step 1 + 3 below on every column) runs in lib/kernels (jsdRows: rows.c, WebAssembly SIMD).
 *
 * Notation for one row: a_v = z_v / tau, x_v = a_v - logsumexp(a) (student log-probs), q_v = exp(x_v). The loss is
 * F(x_C), a function of the student's log-prob "columns" c in C (the full vocabulary, a support S of ids s_c, or
 * S plus a tail bucket); y_c are the teacher's columns (detached), P_c = exp(y_c), Q_c = exp(x_c).
 * g_c := dF/dx_c. Derivation of the gradient, step by step:
 *
 * 1. JSD_beta on the columns (GKD Eq. 1; TRL generalized_jsd_loss), M = beta P + (1 - beta) Q:
 *      beta = 0:  F = sum_c P_c (y_c - x_c)                                  g_c = -P_c
 *      beta = 1:  F = sum_c Q_c (x_c - y_c)                                  g_c = Q_c (x_c - y_c + 1)
 *      0 < beta < 1: F = beta sum P (y - log M) + (1 - beta) sum Q (x - log M), with d log M_c / d x_c =
 *        (1 - beta) Q_c / M_c, so
 *        g_c = -beta P_c (1-beta) Q_c / M_c + (1-beta) [Q_c (x_c - log M_c) + Q_c] - (1-beta) Q_c (1-beta) Q_c / M_c
 *            = (1-beta) Q_c (x_c - log M_c) + (1-beta) Q_c [1 - (beta P_c + (1-beta) Q_c) / M_c]
 *            = (1-beta) Q_c (x_c - log M_c)                                  (Liger-Kernel jsd.py's dX)
 *
 * 2. Truncated reverse KL renormalised on the support (topk-rkl, Revisiting OPD): F = sum_c Qh_c dc_c with
 *    d_c = xh_c - yh_c and dc_c = clamp(d_c, -clip, clip) (dc = d without clipping); Qh = exp(xh):
 *        g_c = Qh_c dc_c + Qh_c 1[|d_c| <= clip]         (= Qh_c (d_c + 1) without clipping; the clamp's
 *                                                          derivative is 1 inside, boundary included, 0 outside)
 *
 * 3. Chain through the map from logits to columns (then d/dz = (1/tau) d/da):
 *    - full vocabulary, or support with norm 'none': x_c = a_{s_c} - lse(a), dx_c/da_v = 1[v = s_c] - q_v:
 *          dF/da_v = g_v 1[v in S] - q_v sum_c g_c
 *    - support with norm 'both': xh_c = a_{s_c} - lse_{u in S}(a_u), dxh_c/da_v = 1[v = s_c] - Qh_v 1[v in S]:
 *          dF/da_{s_c} = g_c - Qh_c sum_c' g_c',   0 off the support (renormalisation cancels the full lse)
 *      (for topk-rkl without clipping: sum g = F + 1, so dF/da_{s_c} = Qh_c (d_c - F))
 *    - 'tailBucket': the extra column is x_T = log sum_{v not in S} q_v = lse_{v not in S}(a) - lse(a), with
 *      dx_T/da_v = 1[v not in S] q_v / Q_T - q_v, so
 *          dF/da_v = g_v 1[v in S] + g_T 1[v not in S] q_v / Q_T - q_v (sum_{c in S} g_c + g_T)
 *
 * Numerics: exponentials are taken once per element (softmax into a reused Float64 scratch row); a column whose
 * probability underflows to 0 contributes 0 (the limit p log p -> 0), never NaN; the student's tail bucket is
 * computed in log space (off-support logsumexp) when its mass underflows in the softmax. Rows with w_N = 0 are
 * skipped (zero loss and a zero gradient row).
 */
import * as tf from '@tensorflow/tfjs';
import { rowKernels } from '../../kernels';
import type { SupportNorm } from '../../probs/topk';

/** The row kernels' outputs: per-token values (unweighted) and per-row metric values (0 on skipped rows). */
export interface DivergenceRows {
  /** [N] l_n. */
  perToken_N: Float32Array;
  /** [N] student entropy -sum_v q_v log q_v at the loss temperature (JSD kernels only). */
  entropy_N: Float32Array;
  /** [N] student mass on the support, sum_{v in S} q_v (support kernels only). */
  studentMass_N: Float32Array;
  /** [N] number of support entries whose log-ratio was clamped (topk-rkl with clip > 0). */
  clipped_N: Int32Array;
}

function emptyRows(rows: number): DivergenceRows {
  return {
    perToken_N: new Float32Array(rows),
    entropy_N: new Float32Array(rows),
    studentMass_N: new Float32Array(rows),
    clipped_N: new Int32Array(rows),
  };
}

/**
 * Softmax of row `base..base+vocab` of z, scaled by invTau, into q (offset 0); returns logsumexp(z / tau).
 * One exponential per element.
 */
export function rowSoftmaxScaled(z: Float32Array, base: number, vocab: number, invTau: number, q: Float64Array): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) {
    const a = z[base + v] * invTau;
    if (a > max) max = a;
  }
  let sum = 0;
  for (let v = 0; v < vocab; v++) {
    const e = Math.exp(z[base + v] * invTau - max);
    q[v] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let v = 0; v < vocab; v++) q[v] *= inv;
  return max + Math.log(sum);
}

/**
 * One column of JSD_beta (step 1 above): returns the column's loss term and writes g_c = dF/dx_c to g[c].
 * x must be finite; y may be -Infinity (P = 0).
 */
function jsdColumn(beta: number, x: number, y: number, g: Float64Array, c: number): number {
  const P = Math.exp(y);
  const Q = Math.exp(x);
  if (beta === 0) {
    g[c] = -P;
    return P > 0 ? P * (y - x) : 0;
  }
  if (beta === 1) {
    if (Q === 0) {
      g[c] = 0;
      return 0;
    }
    const t = Q * (x - y);
    g[c] = t + Q;
    return t;
  }
  const M = beta * P + (1 - beta) * Q;
  if (!(M > 0)) {
    g[c] = 0;
    return 0;
  }
  const logM = Math.log(M);
  const gs = Q > 0 ? (1 - beta) * Q * (x - logM) : 0;
  g[c] = gs;
  return (P > 0 ? beta * P * (y - logM) : 0) + gs;
}

/**
 * JSD_beta per row on a support: ids_NK [N * K] (the teacher's top-K ids), teacher columns y_NC [N * C] already
 * normalised as `norm` says (C = K, or K + 1 for 'tailBucket' when K < V: last column = teacher tail log-mass).
 * With 'tailBucket' and K = V the tail is empty and dropped (C = K). Gradient w.r.t. z (step 3), times w_N[n], into
 * grad_NV.
 */
export function jsdSupportRows(
  z_NV: Float32Array,
  rows: number,
  vocab: number,
  ids_NK: Int32Array,
  k: number,
  y_NC: ArrayLike<number>,
  norm: SupportNorm,
  beta: number,
  temperature: number,
  w_N: ArrayLike<number>,
  grad_NV: Float32Array,
): DivergenceRows {
  const tail = norm === 'tailBucket' && k < vocab;
  const cols = tail ? k + 1 : k;
  if (y_NC.length !== rows * cols) throw new Error(`jsdSupportRows: teacher columns must hold N * ${cols} entries, got ${y_NC.length}`);
  const out = emptyRows(rows);
  const { perToken_N, entropy_N, studentMass_N } = out;
  const invTau = 1 / temperature;
  const q = new Float64Array(vocab); // student probs (full vocabulary)
  const r = new Float64Array(vocab); // q_v / Q_T off the support (tail bucket)
  const inS = new Uint8Array(vocab); // support membership of the current row
  const x = new Float64Array(cols); // student columns
  const g = new Float64Array(cols); // dF/dx_c
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    grad_NV.fill(0, base, base + vocab);
    if (w_N[n] === 0) continue;
    const sBase = n * k;
    const scale = w_N[n] * invTau; // d/dz = (1 / tau) d/da, times the reduction weight
    const lse = rowSoftmaxScaled(z_NV, base, vocab, invTau, q);
    let qx = 0;
    for (let v = 0; v < vocab; v++) qx += q[v] * (z_NV[base + v] * invTau - lse);
    entropy_N[n] = -qx;
    let mass = 0;
    for (let c = 0; c < k; c++) {
      const id = ids_NK[sBase + c];
      mass += q[id];
      inS[id] = 1;
    }
    studentMass_N[n] = mass;

    // student columns
    if (norm === 'both') {
      let maxS = -Infinity;
      for (let c = 0; c < k; c++) maxS = Math.max(maxS, z_NV[base + ids_NK[sBase + c]] * invTau);
      let sumS = 0;
      for (let c = 0; c < k; c++) sumS += Math.exp(z_NV[base + ids_NK[sBase + c]] * invTau - maxS);
      const lseS = maxS + Math.log(sumS);
      for (let c = 0; c < k; c++) x[c] = z_NV[base + ids_NK[sBase + c]] * invTau - lseS;
    } else {
      for (let c = 0; c < k; c++) x[c] = z_NV[base + ids_NK[sBase + c]] * invTau - lse;
    }
    if (tail) {
      let off = 0;
      for (let v = 0; v < vocab; v++) if (inS[v] === 0) off += q[v];
      if (off > 1e-250) {
        x[k] = Math.log(off);
        const inv = 1 / off;
        for (let v = 0; v < vocab; v++) r[v] = inS[v] === 0 ? q[v] * inv : 0;
      } else {
        // off-support mass underflowed in the softmax: redo it in log space around the off-support max
        let maxOff = -Infinity;
        for (let v = 0; v < vocab; v++) if (inS[v] === 0) maxOff = Math.max(maxOff, z_NV[base + v] * invTau);
        let sumOff = 0;
        for (let v = 0; v < vocab; v++) {
          const e = inS[v] === 0 ? Math.exp(z_NV[base + v] * invTau - maxOff) : 0;
          r[v] = e;
          sumOff += e;
        }
        for (let v = 0; v < vocab; v++) r[v] /= sumOff;
        x[k] = maxOff + Math.log(sumOff) - lse;
      }
    }

    // columns: loss and dF/dx_c
    let loss = 0;
    let gSum = 0;
    const yBase = n * cols;
    for (let c = 0; c < cols; c++) {
      loss += jsdColumn(beta, x[c], y_NC[yBase + c], g, c);
      gSum += g[c];
    }
    perToken_N[n] = loss;

    // chain to the logits
    if (norm === 'both') {
      for (let c = 0; c < k; c++) grad_NV[base + ids_NK[sBase + c]] += (g[c] - Math.exp(x[c]) * gSum) * scale;
    } else {
      if (tail) {
        const gT = g[k];
        for (let v = 0; v < vocab; v++) grad_NV[base + v] = (gT * r[v] - q[v] * gSum) * scale;
      } else {
        for (let v = 0; v < vocab; v++) grad_NV[base + v] = -q[v] * gSum * scale;
      }
      for (let c = 0; c < k; c++) grad_NV[base + ids_NK[sBase + c]] += g[c] * scale;
    }
    for (let c = 0; c < k; c++) inS[ids_NK[sBase + c]] = 0;
  }
  return out;
}

/**
 * Truncated reverse KL renormalised on a support (topk-rkl; step 2 and 'both' in step 3), tau = 1:
 *   l_n = sum_{c < width_n} Qh_c clamp(xh_c - yh_c),  xh = log-softmax of the student logits on the support.
 * ids_NC [N * C]: support ids per row, of which the first width_N[n] are used; yh_NC [N * C]: the teacher's
 * log-probs renormalised on those same columns. clip = 0 means no clamp. The gradient, times w_N[n], goes to
 * grad_NV (zero off the support). studentMass_N is the student's full-vocabulary mass on the used support, from
 * lse_N, the student's full-row logsumexp.
 */
export function rklSupportRows(
  z_NV: Float32Array,
  rows: number,
  vocab: number,
  ids_NC: Int32Array,
  cols: number,
  width_N: ArrayLike<number>,
  yh_NC: ArrayLike<number>,
  clip: number,
  w_N: ArrayLike<number>,
  lse_N: ArrayLike<number>,
  grad_NV: Float32Array,
): DivergenceRows {
  const out = emptyRows(rows);
  const { perToken_N, studentMass_N, clipped_N } = out;
  const e = new Float64Array(cols); // exp(a_c - max_S)
  const g = new Float64Array(cols); // dF/dxh_c
  const qh = new Float64Array(cols); // Qh_c
  // the support's logits of every row in one SIMD gather (one by one here, each would be a cache miss)
  const zS_NC = new Float32Array(rows * cols);
  rowKernels().gatherRows(z_NV, rows, vocab, ids_NC, cols, zS_NC); // NV -> NC
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    grad_NV.fill(0, base, base + vocab);
    if (w_N[n] === 0) continue;
    const cBase = n * cols;
    const width = width_N[n];
    let maxS = -Infinity;
    for (let c = 0; c < width; c++) maxS = Math.max(maxS, zS_NC[cBase + c]);
    let sumS = 0;
    for (let c = 0; c < width; c++) {
      const ec = Math.exp(zS_NC[cBase + c] - maxS);
      e[c] = ec;
      sumS += ec;
    }
    const lseS = maxS + Math.log(sumS);
    let loss = 0;
    let gSum = 0;
    let clipped = 0;
    for (let c = 0; c < width; c++) {
      const q = e[c] / sumS;
      const d = zS_NC[cBase + c] - lseS - yh_NC[cBase + c];
      let dc = d;
      let inside = 1;
      if (clip > 0 && (d > clip || d < -clip)) {
        dc = d > 0 ? clip : -clip;
        inside = 0;
        clipped++;
      }
      const gc = q * (dc + inside);
      qh[c] = q;
      g[c] = gc;
      loss += q * dc;
      gSum += gc;
    }
    perToken_N[n] = loss;
    clipped_N[n] = clipped;
    studentMass_N[n] = Math.exp(lseS - lse_N[n]);
    const w = w_N[n];
    for (let c = 0; c < width; c++) grad_NV[base + ids_NC[cBase + c]] += w * (g[c] - qh[c] * gSum);
  }
  return out;
}

/** The teacher's top-K support read from full logits, in float64 (see teacherSupportFromLogits). */
export interface TeacherSupportRows {
  k: number;
  /** [N * K] top-K ids by teacher logit, descending (ties to the lower id, as topKRows). */
  ids_NK: Int32Array;
  /** [N * K] full-vocabulary teacher log-probs at the temperature, log softmax(t / tau) at the ids. */
  logp_NK: Float64Array;
  /** [N] logsumexp(t / tau) of each row. */
  lse_N: Float64Array;
  /** [N] log of the teacher's mass off the support (exact, log space; -Infinity when K = V); null unless asked. */
  tail_N: Float64Array | null;
  /** [N] the teacher's log-probs at the asked ids (sampledIds_N); null unless asked. */
  sampled_N: Float64Array | null;
}

/**
 * The teacher's top-K support from its full logits t_NV [N, V] at temperature tau, read in place (lib/kernels: the
 * SIMD top-K on the logits, ties to the lower id, and the row logsumexp). Selecting on logits (not on float32
 * log-probs) keeps the order exact, and the log-probs are formed in float64 from the logits, so renormalised
 * values are exact even where full-vocabulary log-probs are ~-1e4 (float32 would lose ~1e-3 there).
 * withTail adds the exact off-support log-mass (log space, one more exponential per element, in JS);
 * sampledIds_N adds the log-probs at those ids (sampled_N). Runs on the kernel arena: call it before fusedLoss.
 */
export function teacherSupportFromLogits(
  teacher_NV: tf.Tensor2D,
  k: number,
  temperature: number,
  withTail: boolean,
  sampledIds_N?: Int32Array,
): TeacherSupportRows {
  const [rows, vocab] = teacher_NV.shape;
  const invTau = 1 / temperature;
  const kernels = rowKernels();
  const arena = kernels.arena(rows * (8 * k + 8) + 1024, rows * vocab * 4);
  const t_NV = arena.load(teacher_NV);
  const ids = arena.i32(rows * k);
  const top = arena.f32(rows * k);
  const lse = arena.f64(rows);
  kernels.topKRows(t_NV, rows, vocab, k, ids, top, lse, invTau); // NV -> NK (the order of t / tau: tau > 0), N
  const ids_NK = Int32Array.from(ids);
  const lse_N = Float64Array.from(lse);
  const logp_NK = new Float64Array(rows * k);
  for (let i = 0; i < rows * k; i++) logp_NK[i] = top[i] * invTau - lse_N[Math.floor(i / k)];
  let sampled_N: Float64Array | null = null;
  if (sampledIds_N) {
    const t_N = new Float32Array(rows);
    kernels.gatherRows(t_NV, rows, vocab, sampledIds_N, 1, t_N); // NV -> N: the logits at the asked ids
    sampled_N = Float64Array.from(t_N, (t, n) => t * invTau - lse_N[n]);
  }
  const tail_N = withTail ? new Float64Array(rows) : null;
  const inS = new Uint8Array(vocab);
  for (let n = 0; tail_N && n < rows; n++) {
    const base = n * vocab;
    for (let c = 0; c < k; c++) inS[ids_NK[n * k + c]] = 1;
    let maxOff = -Infinity;
    for (let v = 0; v < vocab; v++) if (inS[v] === 0 && t_NV[base + v] * invTau > maxOff) maxOff = t_NV[base + v] * invTau;
    let sumOff = 0;
    if (maxOff > -Infinity) for (let v = 0; v < vocab; v++) if (inS[v] === 0) sumOff += Math.exp(t_NV[base + v] * invTau - maxOff);
    tail_N[n] = maxOff > -Infinity ? maxOff + Math.log(sumOff) - lse_N[n] : -Infinity;
    for (let c = 0; c < k; c++) inS[ids_NK[n * k + c]] = 0;
  }
  return { k, ids_NK, logp_NK, lse_N, tail_N, sampled_N };
}

/**
 * Teacher columns on a support from its full-vocabulary log-probs logp_NK [N * K] (float64 out, row stride
 * C = K, or K + 1 for 'tailBucket' with K < V):
 *   none: unchanged;  both: minus their logsumexp;  tailBucket: plus the tail log-mass as column K — tail_N when
 *   given (exact, from full logits), else log(1 - sum exp) floored at log(1e-30) like lib/probs log1mexp's clamp
 *   (a dump whose top-K mass rounds to >= 1 gets a 1e-30 tail). The tail is dropped when K = V (it is empty).
 */
export function teacherColumns(
  logp_NK: ArrayLike<number>,
  rows: number,
  k: number,
  vocab: number,
  norm: SupportNorm,
  tail_N?: ArrayLike<number>,
): Float64Array {
  const tail = norm === 'tailBucket' && k < vocab;
  const cols = tail ? k + 1 : k;
  const y = new Float64Array(rows * cols);
  const floor = Math.log(1e-30);
  for (let n = 0; n < rows; n++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logp_NK[n * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logp_NK[n * k + c] - max);
    const lse = max + Math.log(sum);
    const shift = norm === 'both' ? lse : 0;
    for (let c = 0; c < k; c++) y[n * cols + c] = logp_NK[n * k + c] - shift;
    if (tail) {
      if (tail_N) {
        y[n * cols + k] = tail_N[n];
      } else {
        // log(1 - e^lse): expm1 form near 0, log1p form below -ln 2 (Maechler 2012)
        const t = lse >= 0 ? -Infinity : lse > -Math.LN2 ? Math.log(-Math.expm1(lse)) : Math.log1p(-Math.exp(lse));
        y[n * cols + k] = Math.max(t, floor);
      }
    }
  }
  return y;
}
