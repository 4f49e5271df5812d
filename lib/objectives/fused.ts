/**
 * Fused kernels: one pass over each row of student logits computes the per-token loss l_n and its analytic
 * gradient g_nv = d l_n / d z_nv (lib/kernels SIMD passes plus O(K)-per-row JS), and `fusedLoss` wires the pair
 * into autodiff with tf.customGrad:
 *
 *   loss = sum_n w_n l_n,      d loss / d z_nv = w_n g_nv      (w_N from `reductionWeights`)
 *
 * The kernel writes w_n g_nv straight into the gradient tensor's memory (on the tfjs wasm heap: no copy, the
 * weights folded into its per-row coefficients) and reads the logits where they lie. The composed tfjs-op
 * version of every fused objective stays as the reference, and tests hold the two equal.
 * Row helpers below are shared by JS kernels (log-softmax, softmax into a buffer).
 */
import * as tf from '@tensorflow/tfjs';
import { rowKernels, type Arena, type RowKernels } from '../kernels';

/**
 * The row kernel's context: the O(N x V) primitives (WebAssembly SIMD or JS, lib/kernels), the arena (scratch
 * views; views of other tensors with arena.load), the gradient's memory and the weights.
 */
export interface KernelContext {
  kernels: RowKernels;
  arena: Arena;
  /**
   * [N * V] the gradient tensor's memory (uninitialised): the kernel writes w_n d l_n / d z_nv to every row, zeros
   * where w_n = 0.
   */
  grad_NV: Float32Array;
  /** [N] the reduction weights w_n as an arena view (readable by the SIMD kernels). */
  w_N: Float32Array;
}

/**
 * A row kernel: reads z [N * V] (never writes it: it may be the input tensor's own memory), fills ctx.grad_NV and
 * returns the per-token loss [N], unweighted, as a plain array (not an arena view).
 */
export type RowKernel = (z_NV: Float32Array, rows: number, vocab: number, ctx: KernelContext) => Float32Array;

export interface FusedLossOptions {
  /** Arena bytes the kernel takes with f32 / f64 / i32 beyond 32 [N] float64 arrays. Default 0. */
  scratchBytes?: number;
  /** Bytes of the further tensors the kernel reads with arena.load (room for copies off the tfjs wasm heap). Default 0. */
  loadBytes?: number;
}

/** dy = 1 (the loss is the function differentiated): the gradient is the answer as it stands. */
function isOne(dy: tf.Tensor): boolean {
  return dy.size === 1 && dy.dataSync()[0] === 1;
}

/**
 * Gradients kept for a backward pass that has not claimed them yet, with the tape that recorded them. A loss taken
 * under a tape but never differentiated (a metric inside tf.variableGrads, say) leaves one here; it is released at
 * the next fusedLoss call once its tape has ended (tfjs has no hook for that moment itself).
 */
const unclaimed = new Set<{ tape: unknown; gradient: tf.Tensor }>();

function releaseUnclaimed(): void {
  const tape = tf.engine().state.activeTape;
  for (const u of unclaimed) {
    if (u.tape === tape) continue;
    u.gradient.dispose();
    unclaimed.delete(u);
  }
}

/**
 * Run `kernel` on the student logits and return the weighted scalar loss, differentiable through customGrad.
 * The kernel runs once, in the forward pass, writing the gradient into a tensor's memory. Under a gradient tape
 * that tensor is kept for the backward pass, which hands it out as the gradient (an alias, no copy) when dy = 1 and
 * scales it by dy otherwise; tfjs's own `save` would copy it (an [N, V] clone per call). Without a tape the
 * gradient tensor is dropped with the forward scope. Masked tokens (w_n = 0) get zero loss and zero gradient.
 */
export function fusedLoss(
  studentLogits_NV: tf.Tensor2D,
  weights_N: Float32Array,
  kernel: RowKernel,
  options: FusedLossOptions = {},
): { loss: tf.Scalar; perToken_N: Float32Array } {
  const [rows, vocab] = studentLogits_NV.shape;
  releaseUnclaimed();
  const taping = tf.engine().isTapeOn(); // asked here: inside the op's forward function the tape is paused
  let perToken_N: Float32Array = new Float32Array(rows);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const z = args[0] as tf.Tensor;
    const kernels = rowKernels();
    const logitBytes = rows * vocab * 4;
    const arena = kernels.arena(rows * 8 * 32 + 4096 + (options.scratchBytes ?? 0), 2 * logitBytes + (options.loadBytes ?? 0));
    const grad = arena.output([rows, vocab]); // first: allocating on the tfjs heap may move it
    const zView = arena.load(z);
    const w_N = arena.f32(rows);
    w_N.set(weights_N);
    perToken_N = Float32Array.from(kernel(zView, rows, vocab, { kernels, arena, grad_NV: grad.values, w_N }));
    let total = 0;
    for (let n = 0; n < rows; n++) {
      if (weights_N[n] === 0) perToken_N[n] = 0;
      else total += weights_N[n] * perToken_N[n];
    }
    // arena views are dead from here on (the tensors below allocate)
    const gradient = grad.toTensor();
    const entry = { tape: tf.engine().state.activeTape, gradient };
    if (taping) {
      tf.keep(gradient);
      unclaimed.add(entry);
    }
    return {
      value: tf.scalar(total),
      gradFunc: (dy: tf.Tensor) => {
        unclaimed.delete(entry);
        // an alias (tfjs reshape shares the data) or dy * g, tracked by the backward scope like any gradient
        const out = isOne(dy) ? tf.reshape(gradient, [rows, vocab]) : tf.mul(dy, gradient);
        gradient.dispose();
        return out;
      },
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
