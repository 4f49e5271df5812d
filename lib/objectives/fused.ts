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
import { rowKernels, tensorFromView, type Arena, type RowKernels } from '../kernels';

/** What a row kernel produces: per-token loss [N] and gradient [N * V] (row-major), both unweighted. */
export interface FusedRows {
  perToken_N: Float32Array;
  grad_NV: Float32Array;
}

/**
 * The row kernel's context: the O(N x V) primitives (WebAssembly SIMD or JS, lib/kernels) and an arena already
 * holding the student logits. Kernels allocate their [N, V] buffers from `arena` (reused across calls, no page
 * faults) and may return arena views; fusedLoss copies what must outlive the call.
 */
export interface KernelContext {
  kernels: RowKernels;
  arena: Arena;
}

export type RowKernel = (z_NV: Float32Array, rows: number, vocab: number, ctx: KernelContext) => FusedRows;

/**
 * Run `kernel` on the student logits and return the weighted scalar loss, differentiable through customGrad.
 * The kernel runs once, in the forward pass; the backward pass only scales the stored gradient by dy.
 * Masked tokens (w_n = 0) get zero loss and zero gradient whatever the kernel wrote.
 * The arena holds the logits plus `arenaLogitBuffers` more [N, V] float32 buffers and 32 float64 [N] arrays.
 */
export function fusedLoss(
  studentLogits_NV: tf.Tensor2D,
  weights_N: Float32Array,
  kernel: RowKernel,
  arenaLogitBuffers = 3,
): { loss: tf.Scalar; perToken_N: Float32Array } {
  const [rows, vocab] = studentLogits_NV.shape;
  let perToken_N: Float32Array = new Float32Array(rows);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const z = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const kernels = rowKernels();
    const arena = kernels.arena(rows * vocab * 4 * (1 + arenaLogitBuffers) + rows * 8 * 32 + 4096);
    const zView = arena.load(z);
    const w_N = arena.f32(rows);
    w_N.set(weights_N);
    const out = kernel(zView, rows, vocab, { kernels, arena });
    perToken_N = Float32Array.from(out.perToken_N);
    let total = 0;
    const g = out.grad_NV;
    for (let n = 0; n < rows; n++) {
      if (weights_N[n] === 0) {
        perToken_N[n] = 0;
        g.fill(0, n * vocab, (n + 1) * vocab);
      } else {
        total += weights_N[n] * perToken_N[n];
      }
    }
    if (g.buffer === zView.buffer) {
      kernels.scaleRows(g, w_N, rows, vocab, g); // in place, SIMD
    } else {
      for (let n = 0; n < rows; n++) {
        const w = weights_N[n];
        if (w !== 1) for (let v = n * vocab; v < (n + 1) * vocab; v++) g[v] *= w;
      }
    }
    const grad = tensorFromView(g, [rows, vocab]);
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
