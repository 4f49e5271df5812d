/**
 * Bias and variance of gradient estimators (claims C14 OPD+, C15 Revisiting OPD).
 *
 * 1. Exact expected gradient of a sampled-token policy-gradient surrogate against the true gradient of the
 *    divergence it stands for (OPD+, methods.md section 5). Per position n with student logits z_n, pS = softmax(z_n),
 *    u_v = pT(v) / pS(v) (log u clamped to [-c, c] when clampLogU = c > 0, as lib/objectives/opdplus.ts does):
 *
 *      true      D_f,n = sum_v pS(v) f(u_v)                    (= KL(pS || pT) for reverseKL, KL(pT || pS) for forwardKL)
 *                g_n   = d D_f,n / d z_n                        (tfjs autodiff of lib/probs fdivergenceRows)
 *      surrogate l_n(y) = -w(u_y) log pS(y)   with w = -f (stopGrad) or w = -f + u f' (unbiased, OPD+)
 *                E_{y ~ pS}[ d l_n(y) / d z_n,j ] = -pS(j) w_j + pS(j) sum_v pS(v) w_v          (closed form)
 *
 *    The expectation is over the token at every position with the prefixes held fixed (the batch's rollouts), so it
 *    is exact: no sampling noise. Unbiased means equal to g_n; for reverse KL stopGrad = unbiased + 1 and the
 *    constant has zero expected score, so both are unbiased there (Zhao et al. 2026, arXiv 2606.01039).
 *
 * 2. Moments of a vector-valued estimator over repeated batches (streamed, float64):
 *      mean  gbar = (1/M) sum_i g_i,     total variance  tr Cov = (1/(M-1)) sum_i ||g_i - gbar||^2
 *    and for paired estimators a, b on the same batches, with d_i = a_i - b_i, an unbiased estimate of the squared
 *    bias of a relative to E[b]:   ||E a - E b||^2  ~=  ||dbar||^2 - tr Cov(d) / M
 *    (E||dbar||^2 = ||E d||^2 + tr Cov(d) / M). Revisiting OPD (Fu et al. 2026, arXiv 2603.25562, methods.md
 *    section 6): the token-level estimator (gamma 0) trades the sequence-level estimator's variance for bias.
 */
import * as tf from '@tensorflow/tfjs';
import { F_DIVERGENCES, fDivergenceRows, stopGradAdvantage, unbiasedWeight, type FDivergenceName } from '../probs/fdivergences';
import { readMatrix, resolveMask, rowLogSoftmax64, type Matrix } from './values';

export type SurrogateWeight = 'stopGrad' | 'unbiased';
export const SURROGATE_WEIGHTS: readonly SurrogateWeight[] = ['stopGrad', 'unbiased'];

export interface FDivergenceGradientOptions {
  /** The f of D_f(pT || pS) (lib/probs/fdivergences.ts). Default 'forwardKL'. */
  divergence: FDivergenceName;
  /** Clamp of log u in the surrogate's weight, as opdplus's clampLogU; 0 = none (the exact comparison). Default 0. */
  clampLogU: number;
}

export interface FDivergenceGradients {
  /** [N * V] d (sum_n m_n D_f,n) / d z (row-major; masked rows are 0). */
  true_NV: Float64Array;
  /** [N * V] the exact expected surrogate gradient per weight (masked rows are 0). */
  expected: Record<SurrogateWeight, Float64Array>;
  rows: number;
  cols: number;
}

/** True and expected-surrogate logit gradients of one f-divergence on a batch of positions (header, part 1). */
export function fDivergenceGradients(
  studentLogits_NV: Matrix,
  teacherLogp_NV: Matrix,
  mask_N?: ArrayLike<number>,
  options: Partial<FDivergenceGradientOptions> = {},
): FDivergenceGradients {
  const op = 'fDivergenceGradients';
  const o: FDivergenceGradientOptions = { divergence: 'forwardKL', clampLogU: 0, ...options };
  if (!F_DIVERGENCES.includes(o.divergence)) throw new Error(`${op}: divergence must be one of ${F_DIVERGENCES.join(', ')}, got '${String(o.divergence)}'`);
  if (!(o.clampLogU >= 0) || !Number.isFinite(o.clampLogU)) throw new Error(`${op}: clampLogU must be a finite number >= 0, got ${o.clampLogU}`);
  const z = readMatrix(op, 'studentLogits_NV', studentLogits_NV);
  const t = readMatrix(op, 'teacherLogp_NV', teacherLogp_NV);
  if (z.rows !== t.rows || z.cols !== t.cols) {
    throw new Error(`${op}: studentLogits_NV [${z.rows}, ${z.cols}] and teacherLogp_NV [${t.rows}, ${t.cols}] must have the same shape`);
  }
  const { rows: N, cols: V } = z;
  const mask = resolveMask(op, mask_N, N);
  const logpS = rowLogSoftmax64(z.data, N, V);
  // teacher rows as log-probabilities (normalised here, so raw logits are accepted too)
  const logpT = rowLogSoftmax64(t.data, N, V);

  const true_NV = new Float64Array(N * V);
  tf.tidy(() => {
    const zT = tf.tensor2d(Float32Array.from(z.data), [N, V]);
    const lpT = tf.tensor2d(Float32Array.from(logpT), [N, V]);
    const m = tf.tensor1d(Float32Array.from(mask, (x) => (x !== 0 ? 1 : 0)));
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(m, fDivergenceRows(o.divergence, lpT, tf.logSoftmax(x as tf.Tensor2D) as tf.Tensor2D))))(zT);
    true_NV.set(g.dataSync());
  });

  const logu = new Float32Array(N * V);
  for (let i = 0; i < N * V; i++) {
    let lu = logpT[i] - logpS[i];
    if (o.clampLogU > 0 && Math.abs(lu) > o.clampLogU) lu = Math.sign(lu) * o.clampLogU;
    logu[i] = lu;
  }
  const expected = {} as Record<SurrogateWeight, Float64Array>;
  for (const weight of SURROGATE_WEIGHTS) {
    const w = tf.tidy(() => {
      const lu = tf.tensor2d(logu, [N, V]);
      return (weight === 'unbiased' ? unbiasedWeight(o.divergence, lu) : stopGradAdvantage(o.divergence, lu)).dataSync() as Float32Array;
    });
    const e = new Float64Array(N * V);
    for (let n = 0; n < N; n++) {
      if (mask[n] === 0) continue;
      let pw = 0;
      for (let v = 0; v < V; v++) {
        const p = Math.exp(logpS[n * V + v]);
        const wv = w[n * V + v];
        if (p > 0 && !Number.isFinite(wv)) throw new Error(`${op}: the ${weight} ${o.divergence} weight is not finite at row ${n}, token ${v}; set clampLogU > 0`);
        if (p > 0) pw += p * wv;
      }
      for (let v = 0; v < V; v++) {
        const p = Math.exp(logpS[n * V + v]);
        e[n * V + v] = p > 0 ? -p * w[n * V + v] + p * pw : 0;
      }
    }
    expected[weight] = e;
  }
  return { true_NV, expected, rows: N, cols: V };
}

/** Cosine similarity of two vectors (NaN when either is zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`cosine: vectors must have the same length, got ${a.length} and ${b.length}`);
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : NaN;
}

/** ||a - b|| / ||b|| (NaN when b is zero). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relativeError: vectors must have the same length, got ${a.length} and ${b.length}`);
  let dd = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    dd += (a[i] - b[i]) ** 2;
    bb += b[i] * b[i];
  }
  return bb > 0 ? Math.sqrt(dd / bb) : NaN;
}

/** Streamed mean and total variance of a vector estimator over repeated draws (header, part 2). */
export class EstimatorMoments {
  private readonly sum: Float64Array;
  private sumSq = 0;
  private n = 0;

  constructor(readonly dim: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`EstimatorMoments: dim must be a positive integer, got ${dim}`);
    this.sum = new Float64Array(dim);
  }

  /** One draw g_i (length dim, finite). */
  add(g: ArrayLike<number>): void {
    if (g.length !== this.dim) throw new Error(`EstimatorMoments.add: the draw must have length dim = ${this.dim}, got ${g.length}`);
    let s = 0;
    for (let i = 0; i < this.dim; i++) {
      const x = g[i];
      if (!Number.isFinite(x)) throw new Error(`EstimatorMoments.add: the draw must be finite, found ${x} at index ${i}`);
      this.sum[i] += x;
      s += x * x;
    }
    this.sumSq += s;
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** gbar (a copy). */
  mean(): Float64Array {
    if (this.n === 0) throw new Error('EstimatorMoments.mean: no draw added');
    return this.sum.map((x) => x / this.n);
  }

  /** tr Cov = (sum ||g_i||^2 - M ||gbar||^2) / (M - 1); NaN for one draw. */
  totalVariance(): number {
    if (this.n < 2) return NaN;
    let m2 = 0;
    for (let i = 0; i < this.dim; i++) m2 += (this.sum[i] / this.n) ** 2;
    return Math.max(0, (this.sumSq - this.n * m2) / (this.n - 1));
  }

  /** ||gbar||^2. */
  meanNormSq(): number {
    let m2 = 0;
    for (let i = 0; i < this.dim; i++) m2 += (this.sum[i] / this.n) ** 2;
    return m2;
  }
}

export interface PairedBias {
  /** Unbiased estimate of ||E a - E b||^2 (may come out below 0 when the bias is within the noise). */
  biasSq: number;
  /** ||dbar||^2, the plug-in (biased upwards by tr Cov(d) / M). */
  plugInSq: number;
  /** tr Cov(d) / M: the noise floor of the plug-in. */
  noiseSq: number;
}

/** Squared bias of estimator a against the mean of b from paired draws d_i = a_i - b_i (header, part 2). */
export function pairedBias(diff: EstimatorMoments): PairedBias {
  if (diff.count < 2) throw new Error(`pairedBias: needs at least 2 paired draws, got ${diff.count}`);
  const plugInSq = diff.meanNormSq();
  const noiseSq = diff.totalVariance() / diff.count;
  return { biasSq: plugInSq - noiseSq, plugInSq, noiseSq };
}
