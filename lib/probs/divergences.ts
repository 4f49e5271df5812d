/**
 * Divergences between teacher and student rows, named by direction, computed in log space.
 *
 *   klTeacherStudent = KL(pT || pS) = sum_v pT(v) [log pT(v) - log pS(v)]      forward KL, mode-covering
 *   klStudentTeacher = KL(pS || pT) = sum_v pS(v) [log pS(v) - log pT(v)]      reverse KL, mode-seeking
 *   jsd(beta)        = beta KL(pT || M) + (1 - beta) KL(pS || M),  M = beta pT + (1 - beta) pS
 *                      (GKD, Agarwal et al. 2024, Eq. 1, as implemented by TRL `generalized_jsd_loss`)
 *                      beta = 0 is exactly klTeacherStudent and beta = 1 exactly klStudentTeacher. Note the
 *                      interior is a *scaled* divergence (about beta KL(T||S) near 0), so it jumps at both ends.
 *
 * Inputs are rows of log-probs [N, K] over the same columns (a full vocabulary, or a support); the student side
 * is differentiable. log M uses logsumexp, never log of a mean of probabilities (Liger #769). Output [N].
 */
import * as tf from '@tensorflow/tfjs';
import { assertInRange } from './validate';

function checkPair(op: string, logpT: tf.Tensor2D, logpS: tf.Tensor2D): void {
  if (logpT.shape.join() !== logpS.shape.join()) {
    throw new Error(`${op}: teacher and student log-probs must have the same shape, got [${logpT.shape}] and [${logpS.shape}]`);
  }
}

/** Forward KL(pT || pS) per row. */
export function klTeacherStudent(logpT_NK: tf.Tensor2D, logpS_NK: tf.Tensor2D): tf.Tensor1D {
  checkPair('klTeacherStudent', logpT_NK, logpS_NK);
  return tf.tidy(() => tf.sum(tf.mul(tf.exp(logpT_NK), tf.sub(logpT_NK, logpS_NK)), 1) as tf.Tensor1D);
}

/** Reverse KL(pS || pT) per row. */
export function klStudentTeacher(logpT_NK: tf.Tensor2D, logpS_NK: tf.Tensor2D): tf.Tensor1D {
  checkPair('klStudentTeacher', logpT_NK, logpS_NK);
  return tf.tidy(() => tf.sum(tf.mul(tf.exp(logpS_NK), tf.sub(logpS_NK, logpT_NK)), 1) as tf.Tensor1D);
}

/** Generalised JSD(beta) per row; beta = 0 forward KL, beta = 1 reverse KL (exact at both ends). */
export function jsd(logpT_NK: tf.Tensor2D, logpS_NK: tf.Tensor2D, beta: number): tf.Tensor1D {
  assertInRange('jsd', 'beta', beta, 0, 1);
  checkPair('jsd', logpT_NK, logpS_NK); // before the endpoints, so the error names jsd
  if (beta === 0) return klTeacherStudent(logpT_NK, logpS_NK);
  if (beta === 1) return klStudentTeacher(logpT_NK, logpS_NK);
  return tf.tidy(() => {
    const logM = tf.logSumExp(tf.stack([tf.add(logpT_NK, Math.log(beta)), tf.add(logpS_NK, Math.log(1 - beta))]), 0);
    const klTM = tf.sum(tf.mul(tf.exp(logpT_NK), tf.sub(logpT_NK, logM)), 1);
    const klSM = tf.sum(tf.mul(tf.exp(logpS_NK), tf.sub(logpS_NK, logM)), 1);
    return tf.add(tf.mul(klTM, beta), tf.mul(klSM, 1 - beta)) as tf.Tensor1D;
  });
}
