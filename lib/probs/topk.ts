/**
 * The teacher's top-K support and normalisation on it.
 *
 *   S_t = TopK_v pT(v | c_t),  |S_t| = K                           (AOPD Eq. 6; Revisiting-OPD "Teacher-TopK")
 *   none:       log p(v) for v in S_t, unchanged (sums to the captured mass m_t <= 1)
 *   both:       log p^(v) = log p(v) - logsumexp_{u in S_t} log p(u)    (renormalised on the support)
 *   tailBucket: the K support entries plus one bucket log(1 - sum_{u in S_t} p(u))  -> K + 1 entries
 *
 * Top-K selection runs in plain JS on the detached teacher: tf.topk crashes the wasm backend on [512 x 32768].
 * Ties are broken towards the lower token id, so the support is deterministic.
 */
import * as tf from '@tensorflow/tfjs';
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

/** Top-K of each row of a row-major [rows, vocab] array. O(V log K) per row. */
export function topKRows(values: ArrayLike<number>, rows: number, vocab: number, k: number): TopK {
  assertIntInRange('topKRows', 'k', k, 1, vocab);
  assertLength('topKRows', 'values', values, rows * vocab); // else missing entries read as undefined, silently
  const ids_NK = new Int32Array(rows * k);
  const values_NK = new Float32Array(rows * k);
  const heapIds = new Int32Array(k);
  const heapVals = new Float64Array(k);
  // a min-heap of the best k seen so far; "worse" = smaller value, or equal value with a larger id
  const worse = (a: number, b: number) => heapVals[a] < heapVals[b] || (heapVals[a] === heapVals[b] && heapIds[a] > heapIds[b]);
  const swap = (a: number, b: number) => {
    const ti = heapIds[a]; heapIds[a] = heapIds[b]; heapIds[b] = ti;
    const tv = heapVals[a]; heapVals[a] = heapVals[b]; heapVals[b] = tv;
  };
  const siftDown = (i: number, size: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < size && worse(l, m)) m = l;
      if (r < size && worse(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    let size = 0;
    for (let v = 0; v < vocab; v++) {
      const x = values[base + v];
      if (size < k) {
        heapIds[size] = v; heapVals[size] = x;
        let i = size++;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!worse(i, p)) break;
          swap(i, p);
          i = p;
        }
      } else if (x > heapVals[0]) { // equal values keep the earlier (lower) id
        heapIds[0] = v; heapVals[0] = x;
        siftDown(0, size);
      }
    }
    // pop worst-first into the tail, giving a descending order
    for (let j = k - 1; j >= 0; j--) {
      ids_NK[n * k + j] = heapIds[0];
      values_NK[n * k + j] = heapVals[0];
      size--;
      if (size > 0) {
        heapIds[0] = heapIds[size]; heapVals[0] = heapVals[size];
        siftDown(0, size);
      }
    }
  }
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
