/**
 * The teacher's top-K support and normalisation on it.
 *
 *   S_t = TopK_v pT(v | c_t),  |S_t| = K                           (AOPD Eq. 6; Revisiting-OPD "Teacher-TopK")
 *   none:       log p(v) for v in S_t, unchanged (sums to the captured mass m_t <= 1)
 *   both:       log p^(v) = log p(v) - logsumexp_{u in S_t} log p(u)    (renormalised on the support)
 *   tailBucket: the K support entries plus one bucket log(1 - sum_{u in S_t} p(u))  -> K + 1 entries
 *
 * Top-K selection runs outside tfjs on the detached teacher (tf.topk crashes the wasm backend on [512 x 32768]):
 * topKRows in plain JS here, a SIMD threshold scan in the fused objectives (lib/kernels).
 * Ties are broken towards the lower token id, so the support is deterministic.
 */
import * as tf from '@tensorflow/tfjs';
import { topKRowsInto } from '../kernels';
import { log1mexp } from './logSoftmax';
import { assertIntInRange, assertLength } from './validate';

export type SupportNorm = 'none' | 'both' | 'tailBucket';
export const SUPPORT_NORMS: readonly SupportNorm[] = ['none', 'both', 'tailBucket'];

/** A per-row top-K: ids and values row-major [N * K], sorted by value, descending. */
export interface TopK {
  rows: number;
  k: number;
  ids_NK: Int32Array;
  values_NK: Float32Array;
}

/**
 * Top-K of each row of a row-major [rows, vocab] array. O(V log K) per row, plain JS (lib/kernels topKRowsInto:
 * the fallback of the SIMD top-K that the fused objectives run on arena views, with the same order and ties).
 */
export function topKRows(values: ArrayLike<number>, rows: number, vocab: number, k: number): TopK {
  assertIntInRange('topKRows', 'k', k, 1, vocab);
  assertLength('topKRows', 'values', values, rows * vocab); // else missing entries read as undefined, silently
  const ids_NK = new Int32Array(rows * k);
  const values_NK = new Float32Array(rows * k);
  topKRowsInto(values, rows, vocab, k, ids_NK, values_NK);
  return { rows, k, ids_NK, values_NK };
}

/** The teacher's top-K support from full teacher log-probs (or logits: the order is the same) [N, V]. */
export function teacherTopK(teacher_NV: tf.Tensor2D, k: number): TopK {
  const [rows, vocab] = teacher_NV.shape;
  assertIntInRange('teacherTopK', 'k', k, 1, vocab);
  return topKRows(teacher_NV.dataSync(), rows, vocab, k);
}

/**
 * Normalise support log-probs logp_NK [N, K] (gathered from a full-vocabulary log-softmax) on the support.
 * Returns [N, K] for none / both and [N, K + 1] for tailBucket (the last column is the tail bucket).
 */
export function normaliseOnSupport(logp_NK: tf.Tensor2D, norm: SupportNorm): tf.Tensor2D {
  return tf.tidy(() => {
    switch (norm) {
      case 'none':
        return tf.clone(logp_NK);
      case 'both':
        return tf.sub(logp_NK, tf.logSumExp(logp_NK, 1, true)) as tf.Tensor2D;
      case 'tailBucket': {
        const tail_N1 = log1mexp(tf.logSumExp(logp_NK, 1, true));
        return tf.concat([logp_NK, tail_N1], 1) as tf.Tensor2D;
      }
      default:
        throw new Error(`normaliseOnSupport: norm must be one of ${SUPPORT_NORMS.join(', ')}, got '${norm as string}'`);
    }
  });
}
