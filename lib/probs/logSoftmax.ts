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
    // log1p(x), x = -e^a, by Goldberg's x log(w) / (w - 1), w = 1 + x (w - 1 is exact; = x where w rounds to 1):
    // the wasm backend's Log1p is log(1 + x), which loses relative accuracy below a ~ -5 and returns 0 instead of
    // -e^a below a ~ -17 (test/probs.test.ts compares with Math.log1p).
    const x1 = tf.neg(tf.exp(aClamped));
    const w = tf.add(x1, 1);
    const viaLog1p = tf.where(tf.equal(w, 1), x1, tf.div(tf.mul(x1, tf.log(w)), tf.sub(w, 1)));
    return {
      value: tf.where(nearZero, viaExpm1, viaLog1p),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.where(tf.less(saved[0], -1e-30), tf.div(dy, tf.neg(tf.expm1(tf.neg(saved[0])))), tf.zerosLike(dy)),
    };
  });
  return tf.tidy(() => op(a));
}

