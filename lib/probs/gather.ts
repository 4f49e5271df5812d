/**
 * Differentiable, wasm-safe gathers of per-row columns.
 *
 *   gatherColumns(x_NV, ids_NK)[n, k] = x_NV[n, ids_NK[n, k]]
 *   tokenLogprobs(logp_NV, tokens_N)[n] = logp_NV[n, tokens_N[n]]
 *
 * The wasm backend has no UnsortedSegmentSum kernel, which tf.gather's gradient needs, and `gather` with
 * batchDims = 1 crashes on large inputs. So the forward pass is a flat gather at n * V + id, and the gradient is
 * a ScatterNd (which wasm has) of the upstream gradient back to those flat positions.
 */
import * as tf from '@tensorflow/tfjs';
import { assertIdsInRange, assertIntInRange } from './validate';

/** Row-major flat indices n * V + ids[n, k] as an int32 tensor [N * K]. */
function flatIndices(ids: ArrayLike<number>, rows: number, k: number, vocab: number): tf.Tensor1D {
  const flat = new Int32Array(rows * k);
  for (let n = 0; n < rows; n++) for (let j = 0; j < k; j++) flat[n * k + j] = n * vocab + ids[n * k + j];
  return tf.tensor1d(flat, 'int32');
}

/**
 * x_NV [N, V] (differentiable), ids_NK row-major [N * K] token ids -> [N, K].
 * Duplicate ids in a row are allowed; their gradients add up.
 */
export function gatherColumns(x_NV: tf.Tensor2D, ids_NK: ArrayLike<number>, k: number): tf.Tensor2D {
  const [rows, vocab] = x_NV.shape;
  assertIntInRange('gatherColumns', 'k', k, 1, Number.MAX_SAFE_INTEGER); // K may exceed V (duplicate ids)
  if (ids_NK.length !== rows * k) {
    throw new Error(`gatherColumns: ids must hold N * K = ${rows} * ${k} = ${rows * k} entries, got ${ids_NK.length}`);
  }
  assertIdsInRange('gatherColumns', 'ids', ids_NK, vocab, k);
  return tf.tidy(() => {
    const flat = flatIndices(ids_NK, rows, k, vocab);
    const gather = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const x = args[0] as tf.Tensor;
      const save = args[1] as tf.GradSaveFunc;
      save([flat]);
      const value = tf.reshape(tf.gather(tf.reshape(x, [rows * vocab]), flat), [rows, k]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.reshape(tf.scatterND(tf.expandDims(saved[0], 1), tf.reshape(dy, [rows * k]), [rows * vocab]), [rows, vocab]);
      return { value, gradFunc };
    });
    return gather(x_NV) as tf.Tensor2D;
  });
}

/** logp_NV [N, V], tokens_N [N] -> [N]: the log-prob of each row's given token. */
export function tokenLogprobs(logp_NV: tf.Tensor2D, tokens_N: ArrayLike<number>): tf.Tensor1D {
  if (tokens_N.length !== logp_NV.shape[0]) {
    throw new Error(`tokenLogprobs: tokens must have one id per row (${logp_NV.shape[0]}), got ${tokens_N.length}`);
  }
  assertIdsInRange('tokenLogprobs', 'tokens', tokens_N, logp_NV.shape[1]); // else the error would name gatherColumns' ids
  return tf.tidy(() => tf.reshape(gatherColumns(logp_NV, tokens_N, 1), [logp_NV.shape[0]]) as tf.Tensor1D);
}
