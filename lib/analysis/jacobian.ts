/**
 * The softmax Jacobian and the logit update an objective makes at each position.
 *
 *   J(z) = d p / d z = diag(p) - p p^T,     J_uv = p_u (1[u = v] - p_v)        (AOPD Eq. 4, the standard identity)
 *   rows and columns of J sum to 0 (softmax is invariant to adding a constant to every logit); J is symmetric.
 *   d log p(a) / d z_v = 1[v = a] - p_v
 *
 *   Logit update (sign convention used throughout lib/analysis and docs/metrics.md):
 *     Delta z = -step * dL/dz          one plain gradient-descent step of size `step` on the logits
 *   With reduction 'sum', L = sum_n m_n l_n, so row n of dL/dz is d l_n / d z_n for every token-local objective:
 *   row n of Delta z is exactly "what this objective does to position n" (no 1/N or 1/|y| scaling mixed in).
 *   Objectives that couple tokens (sequence weights, group normalisation) give the total gradient reaching row n.
 *
 *   Policy gradient on the sampled token (OPD, l = -A log pS(y)):   Delta z_v = step * A * (1[v = y] - pS(v))
 *     so for A < 0 every unsampled v rises by step * |A| * pS(v): in proportion to the student's own prior (Eq. 5).
 *   Forward KL over the full vocabulary, l = KL(pT || pS):          Delta z_v = step * (pT(v) - pS(v))   (Eq. 12)
 */
import * as tf from '@tensorflow/tfjs';
import { objectiveLossAndGrad } from '../objectives/registry';
import type { DistillBatch, Reduction } from '../objectives/types';
import { assertFiniteArray, assertIntInRange } from '../probs/validate';

/** Largest V for which `softmaxJacobian` builds the [N, V, V] tensor (N V^2 floats). */
export const JACOBIAN_MAX_VOCAB = 4096;

/** J = diag(p) - p p^T for each row of logits [N, V] -> [N, V, V]. */
export function softmaxJacobian(logits_NV: tf.Tensor2D): tf.Tensor3D {
  if (!logits_NV || logits_NV.rank !== 2) throw new Error(`softmaxJacobian: logits_NV must be a rank-2 tensor [N, V]`);
  const [n, vocab] = logits_NV.shape;
  if (vocab > JACOBIAN_MAX_VOCAB) {
    throw new Error(`softmaxJacobian: V = ${vocab} would need N * V^2 = ${n * vocab * vocab} floats; use V <= ${JACOBIAN_MAX_VOCAB} or logitUpdate (never materialises J)`);
  }
  return tf.tidy(() => {
    const p_NV = tf.softmax(logits_NV);
    const diag_NVV = tf.mul(tf.expandDims(p_NV, 2), tf.expandDims(tf.eye(vocab), 0)); // NV -> NVV
    const outer_NVV = tf.mul(tf.expandDims(p_NV, 2), tf.expandDims(p_NV, 1)); // p_u p_v
    return tf.sub(diag_NVV, outer_NVV) as tf.Tensor3D;
  });
}

/**
 * The analytic policy-gradient update of one position (Eq. 4): Delta z_v = step * A * (1[v = y] - p(v)).
 * p: the student's probabilities over the vocabulary; returns [V].
 */
export function policyGradientUpdate(p_V: ArrayLike<number>, sampled: number, advantage: number, step = 1): Float64Array {
  assertIntInRange('policyGradientUpdate', 'sampled', sampled, 0, p_V.length - 1);
  const out = new Float64Array(p_V.length);
  for (let v = 0; v < p_V.length; v++) out[v] = step * advantage * ((v === sampled ? 1 : 0) - p_V[v]);
  return out;
}

/** The analytic full-vocabulary forward-KL update of one position (Eq. 12): Delta z_v = step * (pT(v) - pS(v)). */
export function forwardKLUpdate(pT_V: ArrayLike<number>, pS_V: ArrayLike<number>, step = 1): Float64Array {
  if (pT_V.length !== pS_V.length) throw new Error(`forwardKLUpdate: pT_V and pS_V must have the same length, got ${pT_V.length} and ${pS_V.length}`);
  return Float64Array.from(pT_V, (t, v) => step * (t - pS_V[v]));
}

export interface LogitUpdateOptions {
  /** Step size of the gradient-descent step on the logits. Default 1. */
  step: number;
  /** Reduction handed to the objective. Default 'sum' (row n = position n's own update; see the header). */
  reduction: Reduction;
}

export interface LogitUpdate {
  /** The objective's registered name. */
  objective: string;
  rows: number;
  vocab: number;
  step: number;
  reduction: Reduction;
  /** The reduced loss value. */
  loss: number;
  /** [N * V] row-major Delta z = -step * dL/dz. Masked rows are 0. */
  update_NV: Float32Array;
}

/**
 * Delta z = -step * dL/dz for any registered objective, from the registry's exact gradients
 * (objectiveLossAndGrad). Options are the objective's own (unknown keys throw there).
 */
export function logitUpdate(
  name: string,
  batch: DistillBatch,
  objectiveOptions: Record<string, unknown> = {},
  options: Partial<LogitUpdateOptions> = {},
): LogitUpdate {
  const step = options.step ?? 1;
  const reduction = options.reduction ?? 'sum';
  if (!Number.isFinite(step)) throw new Error(`logitUpdate: step must be a finite number, got ${step}`);
  const out = objectiveLossAndGrad(name, batch, objectiveOptions, reduction);
  let grad: Float32Array;
  try {
    grad = out.grad_NV.dataSync() as Float32Array;
  } finally {
    out.grad_NV.dispose();
  }
  const [rows, vocab] = batch.studentLogits_NV.shape;
  const update_NV = new Float32Array(rows * vocab);
  for (let i = 0; i < update_NV.length; i++) update_NV[i] = grad[i] === 0 ? 0 : -step * grad[i];
  assertFiniteArray(`logitUpdate(${name})`, 'dL/dz', update_NV, vocab);
  return { objective: name, rows, vocab, step, reduction, loss: out.loss, update_NV };
}
