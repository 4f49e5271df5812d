/**
 * Fused kernels: one pass over each row of student logits computes the per-token loss l_n and its analytic
 * gradient g_nv = d l_n / d z_nv, in plain JS on Float32Arrays, and `fusedLoss` wires the pair into autodiff
 * with tf.customGrad:
 *
 *   loss = sum_n w_n l_n,      d loss / d z_nv = w_n g_nv      (w_N from `reductionWeights`)
 *
 * The composed tfjs-op version of every fused objective stays as the reference, and tests hold the two equal.
 * Row helpers below are shared by every kernel (log-softmax, softmax into a buffer).
 */
import * as tf from '@tensorflow/tfjs';

/** What a row kernel produces: per-token loss [N] and gradient [N * V] (row-major), both unweighted. */
export interface FusedRows {
  perToken_N: Float32Array;
  grad_NV: Float32Array;
}

/**
 * Run `kernel` on the student logits and return the weighted scalar loss, differentiable through customGrad.
 * The kernel runs once, in the forward pass; the backward pass only scales the stored gradient by dy.
 * Masked tokens (w_n = 0) get zero loss and zero gradient whatever the kernel wrote.
 */
export function fusedLoss(
  studentLogits_NV: tf.Tensor2D,
  weights_N: Float32Array,
  kernel: (z_NV: Float32Array, rows: number, vocab: number) => FusedRows,
): { loss: tf.Scalar; perToken_N: Float32Array } {
  const [rows, vocab] = studentLogits_NV.shape;
  let perToken_N: Float32Array = new Float32Array(rows);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const z = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const out = kernel(z.dataSync() as Float32Array, rows, vocab);
    perToken_N = out.perToken_N;
    let total = 0;
    const g = out.grad_NV;
    for (let n = 0; n < rows; n++) {
      const w = weights_N[n];
      const base = n * vocab;
      if (w === 0) {
        perToken_N[n] = 0;
        g.fill(0, base, base + vocab);
        continue;
      }
      total += w * perToken_N[n];
      for (let v = 0; v < vocab; v++) g[base + v] *= w;
    }
    const grad = tf.tensor2d(g, [rows, vocab]);
    save([grad]);
    return {
      value: tf.scalar(total),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, saved[0]),
    };
  });
  const loss = op(studentLogits_NV) as tf.Scalar;
  return { loss, perToken_N };
}

/**
 * Log-softmax of row `base .. base + vocab` of `z` into `out` (same offsets); returns logsumexp of the row.
 * Computed in float64 for the reduction, stored as float32.
 */
export function rowLogSoftmax(z: Float32Array, base: number, vocab: number, out: Float32Array | Float64Array): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (z[base + v] > max) max = z[base + v];
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(z[base + v] - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < vocab; v++) out[base + v] = z[base + v] - lse;
  return lse;
}

/**
 * Softmax of one row into `p` (offset 0), returning logsumexp. `p` is a scratch buffer of length >= vocab;
 * the exponentials are computed once and reused for the normalisation.
 */
export function rowSoftmax(z: Float32Array, base: number, vocab: number, p: Float64Array): number {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) if (z[base + v] > max) max = z[base + v];
  let sum = 0;
  for (let v = 0; v < vocab; v++) {
    const e = Math.exp(z[base + v] - max);
    p[v] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let v = 0; v < vocab; v++) p[v] *= inv;
  return max + Math.log(sum);
}
