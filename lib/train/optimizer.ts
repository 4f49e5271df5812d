/**
 * Adam steps that resume bit-exactly from a checkpoint.
 *
 *   m_t = b1 m_{t-1} + (1 - b1) g_t,  v_t = b2 v_{t-1} + (1 - b2) g_t^2
 *   w_t = w_{t-1} - lr (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)            (Kingma & Ba 2015, Alg. 1)
 *
 * tfjs's AdamOptimizer keeps b1^t and b2^t as float32 variables multiplied by b each step, but after
 * `setWeights` (what lib/sim/checkpoint.ts loadCheckpoint uses) it recomputes them as pow(b, t + 1): the two
 * differ in the last bits, so a resumed run would drift from an uninterrupted one. `adamStep` therefore sets
 * both from the iteration count (b^(t + 1) in float64, rounded once to float32) before every update, the same
 * way in a fresh and in a restored optimizer. This writes two private fields of tfjs 4.22's AdamOptimizer
 * (`accBeta1`, `accBeta2`); the resume test in test/train/run.test.ts fails if that ever stops working.
 *
 * Gradients are applied as a list in `student.variables` order (Adam's slots are positional; checkpoint.ts).
 */
import * as tf from '@tensorflow/tfjs';

interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  beta1: number;
  beta2: number;
  iterations: number;
}

export function createAdam(lr: number): tf.AdamOptimizer {
  return tf.train.adam(lr, 0.9, 0.999);
}

/** One Adam update of `variables` with `grads` (same order, same length). */
export function adamStep(optimizer: tf.AdamOptimizer, variables: readonly tf.Variable[], grads: readonly tf.Tensor[]): void {
  if (grads.length !== variables.length) throw new Error(`adamStep: need one gradient per variable (${variables.length}), got ${grads.length}`);
  const internals = optimizer as unknown as AdamInternals;
  if (!(internals.accBeta1 instanceof tf.Variable) || !(internals.accBeta2 instanceof tf.Variable)) {
    throw new Error('adamStep: this tfjs AdamOptimizer has no accBeta1/accBeta2 variables; the exact-resume fix needs updating');
  }
  const t = internals.iterations;
  tf.tidy(() => {
    internals.accBeta1.assign(tf.scalar(Math.pow(internals.beta1, t + 1)));
    internals.accBeta2.assign(tf.scalar(Math.pow(internals.beta2, t + 1)));
  });
  optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: grads[i] })));
}
