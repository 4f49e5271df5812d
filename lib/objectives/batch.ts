/**
 * Checking a DistillBatch and reading the teacher in whichever form it was given.
 */
import * as tf from '@tensorflow/tfjs';
import { gatherColumns, tokenLogprobs } from '../probs/gather';
import { teacherTopK, topKRows, type TopK } from '../probs/topk';
import {
  assertFiniteArray,
  assertFiniteTensor,
  assertIdsInRange,
  assertIntInRange,
  assertLength,
  assertMask,
} from '../probs/validate';
import { isTeacherFull, type DistillBatch, type Objective, type Requirement, type TeacherTopK } from './types';

/**
 * Validates shapes, ids, masks and finiteness for objective `op`; `needs` adds the objective's own inputs.
 * Errors name the objective and the argument (and the first bad position for non-finite values).
 */
export function validateBatch(op: string, batch: DistillBatch, needs: readonly Requirement[], teacherForms: Objective['teacherForms']): void {
  const logits = batch.studentLogits_NV;
  if (!logits || logits.rank !== 2) throw new Error(`${op}: batch.studentLogits_NV must be a rank-2 tensor [N, V], got ${logits ? `rank ${logits.rank}` : 'nothing'}`);
  const [n, vocab] = logits.shape;
  assertFiniteTensor(op, 'batch.studentLogits_NV', logits);
  if (!(batch.tokens_N instanceof Int32Array)) throw new Error(`${op}: batch.tokens_N must be an Int32Array of ${n} token ids`);
  assertLength(op, 'batch.tokens_N', batch.tokens_N, n);
  assertIdsInRange(op, 'batch.tokens_N', batch.tokens_N, vocab);
  assertMask(op, 'batch.mask_N', batch.mask_N, n);

  const t = batch.teacher;
  const needsTeacher = needs.some((r) => r === 'teacherSampled' || r === 'teacherTopK' || r === 'teacherFull');
  if (!t) {
    if (needsTeacher) throw new Error(`${op}: batch.teacher is required (full logits_NV, or k/topkIds_NK/topkLogprobs_NK/sampledLogprobs_N)`);
  } else if (isTeacherFull(t)) {
    if (!teacherForms.includes('full')) throw new Error(`${op}: needs the teacher as top-K arrays, got full logits`);
    if (t.logits_NV.rank !== 2 || t.logits_NV.shape[0] !== n || t.logits_NV.shape[1] !== vocab) {
      throw new Error(`${op}: batch.teacher.logits_NV must have shape [${n}, ${vocab}] like the student logits (same vocabulary), got [${t.logits_NV.shape}]`);
    }
    assertFiniteTensor(op, 'batch.teacher.logits_NV', t.logits_NV);
  } else {
    if (!teacherForms.includes('topk')) {
      throw new Error(`${op}: needs the teacher's full logits (batch.teacher.logits_NV [N, V]); top-K arrays are not enough for its maths`);
    }
    assertIntInRange(op, 'batch.teacher.k', t.k, 1, vocab);
    assertLength(op, 'batch.teacher.topkIds_NK', t.topkIds_NK, n * t.k);
    assertLength(op, 'batch.teacher.topkLogprobs_NK', t.topkLogprobs_NK, n * t.k);
    assertIdsInRange(op, 'batch.teacher.topkIds_NK', t.topkIds_NK, vocab, t.k);
    assertFiniteArray(op, 'batch.teacher.topkLogprobs_NK', t.topkLogprobs_NK, t.k);
    assertLength(op, 'batch.teacher.sampledLogprobs_N', t.sampledLogprobs_N, n);
    assertFiniteArray(op, 'batch.teacher.sampledLogprobs_N', t.sampledLogprobs_N);
  }
  const optional: [Requirement, keyof DistillBatch][] = [
    ['samplerLogprobs', 'samplerLogprobs_N'],
    ['refLogprobs', 'refLogprobs_N'],
  ];
  for (const [need, key] of optional) {
    const arr = batch[key] as Float32Array | undefined;
    if (needs.includes(need) && !arr) throw new Error(`${op}: needs batch.${key} ([N] log-probs)`);
    if (arr) {
      assertLength(op, `batch.${key}`, arr, n);
      assertFiniteArray(op, `batch.${key}`, arr);
    }
  }
  const seqIds = batch.seqIds_N;
  if (needs.includes('seqIds') && !seqIds) throw new Error(`${op}: needs batch.seqIds_N (a sequence id per token)`);
  let sequences = 0;
  if (seqIds) {
    assertLength(op, 'batch.seqIds_N', seqIds, n);
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const s = seqIds[i];
      if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: batch.seqIds_N must hold integers >= 0, found ${s} at index ${i}`);
      if (i > 0 && s !== seqIds[i - 1] && seen.has(s)) {
        throw new Error(`${op}: batch.seqIds_N must keep each sequence's tokens contiguous; sequence ${s} resumes at index ${i}`);
      }
      seen.add(s);
      sequences = Math.max(sequences, s + 1);
    }
  }
  for (const [need, key] of [['reward', 'reward_S'], ['group', 'group_S']] as const) {
    const arr = batch[key];
    if (needs.includes(need) && !arr) throw new Error(`${op}: needs batch.${key} (one value per sequence)`);
    if (arr) {
      if (!seqIds) throw new Error(`${op}: batch.${key} is per sequence, so batch.seqIds_N is needed too`);
      if (arr.length < sequences) throw new Error(`${op}: batch.${key} must have one entry per sequence (${sequences}), got ${arr.length}`);
      assertFiniteArray(op, `batch.${key}`, arr);
    }
  }
}

function requireTeacher(batch: DistillBatch) {
  if (!batch.teacher) throw new Error('batch.teacher is required by this objective');
  return batch.teacher;
}

/** [N] log pT(y_t), from full teacher logits or the dump's sampled log-probs (plain array, detached). */
export function teacherSampledLogprobs(batch: DistillBatch): Float32Array {
  const t = requireTeacher(batch);
  if (!isTeacherFull(t)) return t.sampledLogprobs_N;
  return tf.tidy(() => tokenLogprobs(tf.logSoftmax(t.logits_NV) as tf.Tensor2D, batch.tokens_N).dataSync() as Float32Array);
}

/**
 * The batch with its teacher in the form a dump has (its top-k ids and log-probs, sorted, plus the sampled token's
 * log-prob), read from full logits by one tfjs log-softmax, a gather at y_t and the plain-JS top-k of its rows. The
 * composed reference paths (fused = false) read a full teacher this way, so that they run no lib/kernels code, as a
 * plain composition of tfjs ops would; the fused paths read full logits in place. A dump is returned as it is.
 */
export function withTeacherAsDump(batch: DistillBatch, k: number): DistillBatch {
  const t = requireTeacher(batch);
  if (!isTeacherFull(t)) return batch;
  assertIntInRange('withTeacherAsDump', 'k', k, 1, t.logits_NV.shape[1]);
  const logpT_NV = tf.logSoftmax(t.logits_NV) as tf.Tensor2D;
  try {
    const top = teacherTopK(logpT_NV, k);
    const sampled = tf.tidy(() => tokenLogprobs(logpT_NV, batch.tokens_N).dataSync() as Float32Array);
    const dump: TeacherTopK = { k, topkIds_NK: top.ids_NK, topkLogprobs_NK: top.values_NK, sampledLogprobs_N: sampled };
    return { ...batch, teacher: dump };
  } finally {
    logpT_NV.dispose();
  }
}

/**
 * The teacher's top-K support with full-vocabulary teacher log-probs, sorted descending.
 * From full logits any k in [1, V] works; from top-K arrays k must be <= the dump's K.
 */
export function teacherSupport(batch: DistillBatch, k: number): TopK {
  const t = requireTeacher(batch);
  const [n, vocab] = batch.studentLogits_NV.shape;
  if (isTeacherFull(t)) {
    assertIntInRange('teacherSupport', 'topK', k, 1, vocab);
    const logpT = tf.logSoftmax(t.logits_NV) as tf.Tensor2D;
    try {
      return teacherTopK(logpT, k);
    } finally {
      logpT.dispose();
    }
  }
  if (k > t.k) throw new Error(`teacherSupport: topK = ${k} exceeds the teacher's top-K width in the batch (k = ${t.k})`);
  assertIntInRange('teacherSupport', 'topK', k, 1, vocab);
  // sort each dump row (dumps may be unsorted) and keep the first k
  const sorted = topKRows(t.topkLogprobs_NK, n, t.k, t.k);
  const ids_NK = new Int32Array(n * k);
  const values_NK = new Float32Array(n * k);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) {
      ids_NK[r * k + j] = t.topkIds_NK[r * t.k + sorted.ids_NK[r * t.k + j]];
      values_NK[r * k + j] = sorted.values_NK[r * t.k + j];
    }
  }
  return { rows: n, k, ids_NK, values_NK };
}

/** Student log-probs at the support's ids, gathered from a full-vocabulary log-softmax (differentiable). */
export function studentOnSupport(logpS_NV: tf.Tensor2D, support: TopK): tf.Tensor2D {
  return gatherColumns(logpS_NV, support.ids_NK, support.k);
}

/** The objective's options merged over its defaults; unknown keys are rejected by name. */
export function resolveOptions<O extends object>(op: string, defaults: Readonly<O>, given: Partial<O> | undefined): O {
  const merged = { ...defaults } as O;
  if (!given) return merged;
  for (const key of Object.keys(given)) {
    if (!(key in defaults)) {
      throw new Error(`${op}: unknown option '${key}'; known options: ${Object.keys(defaults).join(', ')}`);
    }
    const value = (given as Record<string, unknown>)[key];
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  return merged;
}
