/**
 * seqkd — sequence-level knowledge distillation: maximum likelihood on teacher-generated tokens (SFT on teacher
 * outputs).
 *
 *   l_t  = -log pS(y_t) = logsumexp_v z_tv - z_{t, y_t}         (y = the given, teacher-generated tokens)
 *   loss = sum_t w_t l_t,  w = reductionWeights(mask, reduction, seqIds)
 *   dl_t / dz_tv = pS(v) - 1[v = y_t]
 *
 * Source: Kim & Rush, EMNLP 2016, "Sequence-Level Knowledge Distillation", the word-level NLL on the teacher's
 * beam-search output (methods.md section 9, [paper, standard]).
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable), tokens_N [N] (the teacher's tokens), mask_N [N].
 * No teacher distribution is read: batch.teacher may be absent.
 *
 * Conventions: no fused kernel (the composed path is one logsumexp and one gather). TRL's `seq_kd=True` differs
 * (the teacher samples and the JSD loss is kept): use gkd for that. Metrics: `loss/nll` = the reduced loss;
 * `ppl/student` = exp(token-mean NLL over masked tokens), 1 when no token is masked in.
 */
import * as tf from '@tensorflow/tfjs';
import { gatherColumns } from '../probs/gather';
import { registerObjective } from './registry';
import { reductionWeights } from './types';

/** seqkd has no options (the reduction is the caller's argument). */
export type SeqkdOptions = Record<string, never>;

export const SEQKD_DEFAULTS: SeqkdOptions = {};

export const seqkd = registerObjective<SeqkdOptions>({
  name: 'seqkd',
  summary: 'SeqKD: negative log-likelihood of the student on teacher-generated tokens (no teacher distribution needed)',
  formula: 'l_t = -log pS(y_t) on teacher-generated y',
  source: 'Kim & Rush 2016 (Sequence-Level Knowledge Distillation), EMNLP',
  needs: [],
  teacherForms: ['full', 'topk'],
  defaults: SEQKD_DEFAULTS,
  fused: false,
  gradientOf: 'loss',
  compute(batch, _options, reduction) {
    const z = batch.studentLogits_NV;
    const rows = z.shape[0];
    const mask_N = batch.mask_N;
    const weights_N = reductionWeights(mask_N, reduction, batch.seqIds_N);
    const nll = tf.sub(tf.logSumExp(z, 1), tf.reshape(gatherColumns(z, batch.tokens_N, 1), [rows])) as tf.Tensor1D; // NV -> N
    const loss = tf.sum(tf.mul(nll, tf.tensor1d(weights_N))) as tf.Scalar;
    const perToken_N = Float32Array.from(nll.dataSync());
    let sum = 0;
    let count = 0;
    for (let n = 0; n < rows; n++) {
      if (mask_N[n] === 0) {
        perToken_N[n] = 0;
        continue;
      }
      sum += perToken_N[n];
      count++;
    }
    return {
      loss,
      perToken_N,
      metrics: { 'loss/nll': loss.dataSync()[0], 'ppl/student': Math.exp(count > 0 ? sum / count : 0) },
    };
  },
});
