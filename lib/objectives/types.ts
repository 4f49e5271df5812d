/**
 * The batch every objective reads, what every objective returns, and how losses are reduced.
 *
 * Shapes (CONTRIBUTING.md glossary): N tokens (all sequences packed, in order), V vocabulary, K top-K width,
 * S sequences. Per-token data that is never differentiated are plain typed arrays; the two [N, V] arrays are
 * tensors. Only `studentLogits_NV` receives gradients.
 */
import * as tf from '@tensorflow/tfjs';

/** How per-token losses become the scalar loss (methods.md section 10.1). */
export type Reduction = 'token-mean' | 'seq-mean-token-mean' | 'sum';
export const REDUCTIONS: readonly Reduction[] = ['token-mean', 'seq-mean-token-mean', 'sum'];

/** The teacher as full logits: everything (log-probs of any token, any top-K) can be derived. */
export interface TeacherFull {
  logits_NV: tf.Tensor2D;
}

/**
 * The teacher as real dumps hold it: its top-K per position (sorted or not) plus the log-prob of each sampled
 * token (which may lie outside the top-K).
 */
export interface TeacherTopK {
  /** K, the width of each row of the two arrays below. */
  k: number;
  /** Row-major [N * K] token ids of the teacher's top-K at each position. */
  topkIds_NK: Int32Array;
  /** Row-major [N * K] teacher log-probs (full-vocabulary normalised) of those ids. */
  topkLogprobs_NK: Float32Array;
  /** [N] teacher log-prob of the sampled token y_t. */
  sampledLogprobs_N: Float32Array;
}

export type Teacher = TeacherFull | TeacherTopK;

export function isTeacherFull(t: Teacher): t is TeacherFull {
  return (t as TeacherFull).logits_NV !== undefined;
}

export interface DistillBatch {
  /** [N, V] student logits at temperature 1; the only differentiable input. */
  studentLogits_NV: tf.Tensor2D;
  /** [N] sampled token ids y_t. */
  tokens_N: Int32Array;
  /** [N] 1 = the token is in the loss (a response token), 0 = not (prompt, padding). Never inferred. */
  mask_N: Float32Array;
  /** The teacher; optional only for objectives that need none (seqkd trains on given teacher sequences). */
  teacher?: Teacher;
  /** [N] the sampler's recorded log q(y_t) (importance ratio pi_theta / q; tinker's advantage). */
  samplerLogprobs_N?: Float32Array;
  /** [N] a reference model's log pRef(y_t) (G-OPD). */
  refLogprobs_N?: Float32Array;
  /** [N] sequence index in [0, S) of each token; a sequence's tokens are contiguous and in order. */
  seqIds_N?: Int32Array;
  /** [S] reward of each sequence; correct means reward > 0 (accuracy-filtered AOPD, SCOPE). */
  reward_S?: Float32Array;
  /** [S] prompt-group id of each sequence (SCOPE's group normalisation). */
  group_S?: Int32Array;
}

/** Inputs an objective may need beyond logits, tokens and mask; listed by each objective as `needs`. */
export type Requirement =
  | 'teacherSampled' // log pT(y_t): from full logits or TeacherTopK.sampledLogprobs_N
  | 'teacherTopK' // the teacher's top-K: from full logits or TeacherTopK
  | 'teacherFull' // full teacher logits only
  | 'samplerLogprobs'
  | 'refLogprobs'
  | 'seqIds'
  | 'reward'
  | 'group';

export interface ObjectiveOutput {
  /** The reduced loss; differentiable with respect to studentLogits_NV. */
  loss: tf.Scalar;
  /** [N] per-token loss before reduction (0 where masked), detached. */
  perToken_N: Float32Array;
  /** Namespaced scalars, e.g. `intervention/ratio`, `adv/mean` (docs/metrics.md). */
  metrics: Record<string, number>;
}

/** One registered objective. `O` is its options object, every field with a documented default. */
export interface Objective<O extends object = Record<string, unknown>> {
  name: string;
  /** One line for tables and `--help`. */
  summary: string;
  /** The formula in plain text, as in the file header. */
  formula: string;
  /** Paper and equation number. */
  source: string;
  needs: readonly Requirement[];
  /** Which teacher forms the maths allows. */
  teacherForms: readonly ('full' | 'topk')[];
  defaults: Readonly<O>;
  /** Whether a fused one-pass kernel exists (selected with the `fused` option where present). */
  fused: boolean;
  /**
   * What the gradient is the gradient of: 'loss' = the loss value itself (a direct divergence, checkable by
   * finite differences); 'surrogate' = a policy-gradient surrogate whose advantage is detached, so the loss
   * value's own derivative differs (default when absent).
   */
  gradientOf?: 'loss' | 'surrogate';
  compute(batch: DistillBatch, options: O, reduction: Reduction): ObjectiveOutput;
}

/**
 * The reduction as per-token weights w_N, so that loss = sum_n w_n l_n (masked tokens get 0):
 *   token-mean:          w_n = m_n / sum_u m_u
 *   seq-mean-token-mean: w_n = m_n / (|y_s(n)| * S'),  |y_s| masked length of n's sequence, S' sequences with |y_s| > 0
 *   sum:                 w_n = m_n
 * An all-zero mask gives all-zero weights (loss 0, gradient 0), never NaN.
 */
export function reductionWeights(mask_N: Float32Array, reduction: Reduction, seqIds_N?: Int32Array): Float32Array {
  const n = mask_N.length;
  const w = new Float32Array(n);
  if (reduction === 'sum') {
    w.set(mask_N);
    return w;
  }
  if (reduction === 'token-mean') {
    let count = 0;
    for (let i = 0; i < n; i++) count += mask_N[i];
    if (count > 0) for (let i = 0; i < n; i++) w[i] = mask_N[i] / count;
    return w;
  }
  if (reduction === 'seq-mean-token-mean') {
    if (!seqIds_N) throw new Error(`reduction 'seq-mean-token-mean' needs batch.seqIds_N (a sequence id per token)`);
    const lengths = new Map<number, number>();
    for (let i = 0; i < n; i++) if (mask_N[i] > 0) lengths.set(seqIds_N[i], (lengths.get(seqIds_N[i]) ?? 0) + mask_N[i]);
    const seqs = lengths.size;
    for (let i = 0; i < n; i++) if (mask_N[i] > 0) w[i] = mask_N[i] / (lengths.get(seqIds_N[i])! * seqs);
    return w;
  }
  throw new Error(`reduction must be one of ${REDUCTIONS.join(', ')}, got '${reduction as string}'`);
}
