/**
 * Student and teacher entropy per token and per batch (claims C4, C7: entropy surges/collapses; AOPD > GKD > OPD).
 *
 *   H_n = - sum_v p_n(v) log p_n(v)      (nats; p = softmax(z / temperature); lib/probs/entropy)
 *
 * Summaries over the masked-in tokens, for side in {student, teacher}:
 *   entropy/<side>_mean, entropy/<side>_std (sample, ddof 1; NaN with a note for one token),
 *   entropy/<side>_min, entropy/<side>_max, and entropy/gap_mean = mean(H_student - H_teacher).
 * Names follow OPSD PR #9 (`student_token_entropy`) and TRL's `entropy` (ecosystem.md section 1 item 6).
 */
import * as tf from '@tensorflow/tfjs';
import { sampleStandardDeviation } from 'simple-statistics';
import { entropy } from '../probs/entropy';
import { logSoftmax } from '../probs/logSoftmax';
import { assertFiniteTensor } from '../probs/validate';
import { maskedValues, mean64, readValues, requireTokens, resolveMask, type PerTokenValues } from './values';

export interface EntropyInput {
  /** [N, V] student logits. */
  studentLogits_NV: tf.Tensor2D;
  /** [N, V] teacher logits (optional). */
  teacherLogits_NV?: tf.Tensor2D;
  /** [N] 0/1; default all ones. */
  mask_N?: ArrayLike<number>;
  /** Temperature of both softmaxes. Default 1. */
  temperature?: number;
}

export interface EntropyStats {
  /** [N] student entropy per token (all rows; masked rows too, for plotting). */
  studentEntropy_N: Float32Array;
  /** [N] teacher entropy per token, when the teacher was given. */
  teacherEntropy_N?: Float32Array;
  metrics: Record<string, number>;
  notes: string[];
}

/** Per-token entropy [N] of logits [N, V] at a temperature (tidy; returns plain values). */
export function tokenEntropy(logits_NV: tf.Tensor2D, temperature = 1): Float32Array {
  return tf.tidy(() => entropy(logSoftmax(logits_NV, temperature)).dataSync() as Float32Array);
}

/** entropy/<side>_{mean,std,min,max} of precomputed per-token entropies (e.g. from a dump). */
export function summariseEntropy(entropy_N: PerTokenValues, mask_N: ArrayLike<number> | undefined, side: string, notes: string[] = []): Record<string, number> {
  const op = 'summariseEntropy';
  const values = readValues(op, `${side} entropy`, entropy_N);
  const x = maskedValues(op, `${side} entropy`, values, mask_N);
  requireTokens(op, x.length, values.length);
  let min = Infinity;
  let max = -Infinity;
  for (const v of x) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  let std = NaN;
  if (x.length >= 2) std = sampleStandardDeviation(Array.from(x));
  else notes.push(`entropy/${side}_std is NaN: the sample standard deviation (ddof 1) needs >= 2 tokens (count ${x.length})`);
  return {
    [`entropy/${side}_mean`]: mean64(x),
    [`entropy/${side}_std`]: std,
    [`entropy/${side}_min`]: min,
    [`entropy/${side}_max`]: max,
  };
}

/** Per-token entropies and their batch summary (file header). */
export function entropyStats(input: EntropyInput): EntropyStats {
  const op = 'entropyStats';
  const { studentLogits_NV, teacherLogits_NV } = input;
  if (!studentLogits_NV || studentLogits_NV.rank !== 2) throw new Error(`${op}: studentLogits_NV must be a rank-2 tensor [N, V]`);
  const [n, vocab] = studentLogits_NV.shape;
  if (teacherLogits_NV && (teacherLogits_NV.rank !== 2 || teacherLogits_NV.shape[0] !== n || teacherLogits_NV.shape[1] !== vocab)) {
    throw new Error(`${op}: teacherLogits_NV must have shape [${n}, ${vocab}] like the student logits, got [${teacherLogits_NV.shape}]`);
  }
  const mask = resolveMask(op, input.mask_N, n);
  assertFiniteTensor(op, 'studentLogits_NV', studentLogits_NV);
  if (teacherLogits_NV) assertFiniteTensor(op, 'teacherLogits_NV', teacherLogits_NV);
  const temperature = input.temperature ?? 1;
  const notes: string[] = [];
  const studentEntropy_N = tokenEntropy(studentLogits_NV, temperature);
  const metrics = summariseEntropy(studentEntropy_N, mask, 'student', notes);
  let teacherEntropy_N: Float32Array | undefined;
  if (teacherLogits_NV) {
    teacherEntropy_N = tokenEntropy(teacherLogits_NV, temperature);
    Object.assign(metrics, summariseEntropy(teacherEntropy_N, mask, 'teacher', notes));
    const gap = Float64Array.from(studentEntropy_N, (h, i) => h - teacherEntropy_N![i]);
    metrics['entropy/gap_mean'] = mean64(maskedValues(op, 'entropy gap', gap, mask));
  }
  return { studentEntropy_N, teacherEntropy_N, metrics, notes };
}
