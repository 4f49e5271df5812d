/**
 * Shannon entropy of each row:  H(p) = - sum_v p(v) log p(v)   (nats).
 * Shapes: logp_NV [N, V] (log-probs, full vocabulary) -> [N].
 */
import * as tf from '@tensorflow/tfjs';

export function entropy(logp_NV: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(tf.exp(logp_NV), logp_NV), 1)) as tf.Tensor1D);
}
