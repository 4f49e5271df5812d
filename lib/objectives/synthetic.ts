/**
 * A seeded synthetic DistillBatch with every optional field filled, for gradient checks, benchmarks,
 * notebooks and examples. Student and teacher logits are correlated Gaussians (the teacher = the student plus
 * noise, scaled), tokens are sampled from the student, sequences are contiguous runs, rewards alternate.
 */
import * as tf from '@tensorflow/tfjs';
import { withTeacherAsDump } from './batch';
import type { DistillBatch } from './types';
import { mulberry32 } from '../util/prng';

export { mulberry32 };

export interface SyntheticBatchConfig {
  /** Tokens N (all sequences packed). */
  tokens: number;
  /** Vocabulary V. */
  vocab: number;
  /** Sequences S (N is split into S contiguous runs). Default 4. */
  sequences?: number;
  /** Prompt groups (sequence s belongs to group s mod groups). Default 2. */
  groups?: number;
  /** Logit scale of the student (larger = peakier). Default 2. */
  scale?: number;
  /** Teacher = student + noise * N(0, 1), in logits. Default 1. */
  teacherNoise?: number;
  /** Also give the teacher as top-K arrays of this width (0 = full logits only). Default 0. */
  teacherTopK?: number;
  /** Fraction of tokens masked out (as a prompt prefix of each sequence). Default 0.25. */
  promptShare?: number;
  seed?: number;
}

function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/**
 * Builds the batch. The caller owns (and disposes) the two logits tensors: `studentLogits_NV` and, when present,
 * `teacher.logits_NV` (use `disposeBatch`).
 */
export function syntheticBatch(config: SyntheticBatchConfig): DistillBatch & { teacherTopKForm?: DistillBatch['teacher'] } {
  const n = config.tokens;
  const v = config.vocab;
  const sequences = Math.min(config.sequences ?? 4, n);
  const groups = config.groups ?? 2;
  const scale = config.scale ?? 2;
  const noise = config.teacherNoise ?? 1;
  const r = mulberry32(config.seed ?? 1);
  const zs = new Float32Array(n * v);
  const zt = new Float32Array(n * v);
  for (let i = 0; i < n * v; i++) {
    zs[i] = scale * gaussian(r);
    zt[i] = zs[i] + noise * scale * gaussian(r);
  }
  // sample y_t from the student (float64 softmax), record its log-prob as the sampler's
  const tokens_N = new Int32Array(n);
  const samplerLogprobs_N = new Float32Array(n);
  const refLogprobs_N = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let u = 0; u < v; u++) max = Math.max(max, zs[i * v + u]);
    let sum = 0;
    for (let u = 0; u < v; u++) sum += Math.exp(zs[i * v + u] - max);
    let x = r() * sum;
    let pick = v - 1;
    for (let u = 0; u < v; u++) {
      x -= Math.exp(zs[i * v + u] - max);
      if (x <= 0) {
        pick = u;
        break;
      }
    }
    tokens_N[i] = pick;
    samplerLogprobs_N[i] = zs[i * v + pick] - max - Math.log(sum);
    refLogprobs_N[i] = samplerLogprobs_N[i] + 0.3 * gaussian(r);
  }
  const seqIds_N = new Int32Array(n);
  const mask_N = new Float32Array(n);
  const per = Math.ceil(n / sequences);
  for (let i = 0; i < n; i++) seqIds_N[i] = Math.min(Math.floor(i / per), sequences - 1);
  const promptShare = config.promptShare ?? 0.25;
  for (let s = 0; s < sequences; s++) {
    const start = s * per;
    const end = Math.min(n, start + per);
    const prompt = Math.floor((end - start) * promptShare);
    for (let i = start + prompt; i < end; i++) mask_N[i] = 1;
  }
  const reward_S = new Float32Array(sequences);
  const group_S = new Int32Array(sequences);
  for (let s = 0; s < sequences; s++) {
    reward_S[s] = s % 2 === 0 ? 1 : 0;
    group_S[s] = s % groups;
  }
  const teacherLogits = tf.tensor2d(zt, [n, v]);
  const batch: DistillBatch & { teacherTopKForm?: DistillBatch['teacher'] } = {
    studentLogits_NV: tf.tensor2d(zs, [n, v]),
    tokens_N,
    mask_N,
    teacher: { logits_NV: teacherLogits },
    samplerLogprobs_N,
    refLogprobs_N,
    seqIds_N,
    reward_S,
    group_S,
  };
  const k = config.teacherTopK ?? 0;
  if (k > 0) batch.teacherTopKForm = withTeacherAsDump(batch, k).teacher;
  return batch;
}

/** Disposes the tensors a DistillBatch holds. */
export function disposeBatch(batch: DistillBatch): void {
  batch.studentLogits_NV.dispose();
  const t = batch.teacher as { logits_NV?: tf.Tensor } | undefined;
  t?.logits_NV?.dispose();
}
