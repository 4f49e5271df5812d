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

/**
 * log(1 - exp(a)) for a <= 0, accurate at both ends (Maechler 2012). a is clamped to <= -1e-30 (value
 * log(1e-30) = -69.08 there, gradient 0 where clamped).
 * Differentiable through a custom gradient d/da = -1 / expm1(-a): autodiff through the branch select would
 * reach `greater`, which has no gradient in tfjs ("gradient function not found for Greater").
 */
export function log1mexp(a: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const aClamped = tf.minimum(x, -1e-30);
    save([aClamped]);
    const nearZero = tf.greater(aClamped, -Math.LN2);
    // Both branches are evaluated; their inputs are clamped so neither produces NaN in the branch not taken.
    const viaExpm1 = tf.log(tf.neg(tf.expm1(aClamped)));
    const viaLog1p = tf.log1p(tf.neg(tf.exp(aClamped)));
    return {
      value: tf.where(nearZero, viaExpm1, viaLog1p),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.where(tf.less(saved[0], -1e-30), tf.div(dy, tf.neg(tf.expm1(tf.neg(saved[0])))), tf.zerosLike(dy)),
    };
  });
  return tf.tidy(() => op(a));
}

