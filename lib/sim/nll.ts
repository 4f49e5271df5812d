/**
 * The SFT / warm-up loss on a packed batch (batch.ts layout):
 *
 *   L = - (1 / sum_n m_n) sum_n m_n log pS(y_n | prompt, y_<n)        n over the B * R response rows
 *
 * token-mean over the response mask (the reduction objectives call 'token-mean'). The token gather is the
 * wasm-safe one from lib/probs (tf.gather's gradient does not exist on wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { tokenLogprobs } from '../probs/gather';
import { responseTokens, type SeqBatch } from './batch';
import type { Student } from './student';

export function responseNll(student: Student, batch: SeqBatch): tf.Scalar {
  return tf.tidy(() => {
    const logp_NV = tf.logSoftmax(student.responseLogits(batch)) as tf.Tensor2D; // [B R, V]
    const lp_N = tokenLogprobs(logp_NV, responseTokens(batch)); // [B R]
    let count = 0;
    for (let i = 0; i < batch.mask_BR.length; i++) count += batch.mask_BR[i];
    if (count === 0) return tf.mul(tf.sum(lp_N), 0) as tf.Scalar;
    return tf.div(tf.neg(tf.sum(tf.mul(lp_N, tf.tensor1d(batch.mask_BR)))), count) as tf.Scalar;
  });
}
