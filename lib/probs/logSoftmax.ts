/**
 * Log-softmax with temperature:  log p(v) = z_v / tau - logsumexp_u(z_u / tau).
 * Shapes: logits_NV [N, V] -> logp_NV [N, V]. Differentiable (the composed reference path).
 */
import * as tf from '@tensorflow/tfjs';
import { assertInRange } from './validate';

export function logSoftmax(logits_NV: tf.Tensor2D, temperature = 1): tf.Tensor2D {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`logSoftmax: temperature must be a finite number > 0, got ${temperature}`);
  }
  return tf.tidy(() => tf.logSoftmax(temperature === 1 ? logits_NV : tf.div(logits_NV, temperature)) as tf.Tensor2D);
}

/** softmax rows from log-probs. */
export function probsFromLogprobs(logp: tf.Tensor): tf.Tensor {
  return tf.exp(logp);
}

/** log(1 - exp(a)) for a <= 0, accurate at both ends (Maechler 2012). */
export function log1mexp(a: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const aClamped = tf.minimum(a, 0);
    const nearZero = tf.greater(aClamped, -Math.LN2);
    // Both branches are evaluated; clamp their inputs so neither produces NaN in the branch not taken.
    const viaExpm1 = tf.log(tf.neg(tf.expm1(tf.minimum(aClamped, -1e-30))));
    const viaLog1p = tf.log1p(tf.neg(tf.exp(aClamped)));
    return tf.where(nearZero, viaExpm1, viaLog1p);
  });
}

