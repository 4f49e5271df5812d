/**
 * topk-rkl — truncated REVERSE KL on the teacher's top-K support, renormalised on both sides ("Teacher-TopK"
 * local support matching of Revisiting OPD):
 *
 *   S_t    = TopK_v pT(v | c_t)                      (+ y_t when tailSampling and y_t is outside the top-K)
 *   pS^(v) = pS(v) / sum_{u in S_t} pS(u),  pT^(v) = pT(v) / sum_{u in S_t} pT(u)        (v in S_t)
 *   l_t    = sum_{v in S_t} pS^(v) [log pS^(v) - log pT^(v)]      = KL(pS^ || pT^), a direct differentiable loss
 *            (gradient through both pS^ and log pS^; with clipLogRatio = c the log-ratio is clamped to [-c, c])
 *   loss   = sum_t w_t l_t,  w = reductionWeights(mask', reduction, seqIds),  mask' = mask minus special tokens
 *
 * Source: Fu et al. 2026, "Revisiting On-Policy Distillation", arXiv 2603.25562 v2, L_LSM (methods.md section 6,
 * [code] hhh675597/revisiting_opd core_algos.py compute_memory_efficient_kl 'full_reverse' + dp_actor.py
 * _compute_opd_kl_mask, [2nd] for the paper's equation, whose number is unverified). K = 32 is the paper's value.
 * K = 1 gives identically zero loss and gradient (pS^ = pT^ = 1; Rethinking-OPD issue #15).
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable, temperature 1), tokens_N [N], mask_N [N], the teacher
 * (full logits or a top-K dump with k >= topK; tailSampling also reads log pT(y_t)), seqIds_N [N] when
 * specialTokenIds is non-empty.
 *
 * Deliberate deviations / conventions:
 *   - tailSampling here ADDS y_t to the support (renormalising over K + 1 entries with the teacher's log pT(y_t)),
 *     as this project's spec defines it. The repo's `kl_use_tail_sampling` instead adds a separate sampled
 *     policy-gradient term for y_t outside the *student's* top-K; that variant is not implemented.
 *   - specialTokenIds: the first occurrence of each id among a sequence's loss tokens (mask 1) is dropped; the
 *     repo scans the whole response row (including tokens its loss mask already excludes).
 *   - Metrics are token-means over mask' tokens: topk/teacher_mass and topk/student_mass are full-vocabulary
 *     masses on the support used (tail token included), topk/overlap = |student top-K ∩ teacher top-K| / K;
 *     mask/special_dropped is a count of tokens; clip/fraction (clipLogRatio > 0) = share of support entries
 *     clamped.
 */
import * as tf from '@tensorflow/tfjs';
import { klStudentTeacher } from '../probs/divergences';
import { gatherColumns } from '../probs/gather';
import { normaliseOnSupport, topKRows } from '../probs/topk';
import { teacherSampledLogprobs, teacherSupport, withTeacherAsDump } from './batch';
import { fusedLoss, type RowKernel } from './fused';
import { rklSupportRows, teacherSupportFromLogits, type DivergenceRows } from './kernels/divergenceRows';
import { maskedMean } from './pg';
import { registerObjective } from './registry';
import { isTeacherFull, reductionWeights, type DistillBatch, type ObjectiveOutput } from './types';

export interface TopkRklOptions {
  /** Support width K in [1, V] (<= the dump's k for a top-K teacher). Default 32 (the paper's). */
  topK: number;
  /** Add the sampled token y_t to the support where it lies outside the teacher's top-K. Default false. */
  tailSampling: boolean;
  /** Token ids whose first occurrence in each sequence's loss tokens is dropped from the mask (needs seqIds_N). Default []. */
  specialTokenIds: number[];
  /** Clamp log pS^ - log pT^ to [-c, c] (the repo's clip_log_ratio); 0 = off. Default 0. */
  clipLogRatio: number;
  /** Fused kernel (SIMD passes in lib/kernels, the K support entries in JS) (true) or the composed tfjs-op reference (false). Default true. */
  fused: boolean;
}

export const TOPK_RKL_DEFAULTS: TopkRklOptions = { topK: 32, tailSampling: false, specialTokenIds: [], clipLogRatio: 0, fused: true };

/** Bias added to unused support columns in the composed path: their probability is exactly 0 and no NaN arises. */
const UNUSED_COLUMN = -1e9;

function checkOptions(o: TopkRklOptions, batch: DistillBatch): void {
  const vocab = batch.studentLogits_NV.shape[1];
  const t = batch.teacher!;
  const hi = isTeacherFull(t) ? vocab : Math.min(vocab, t.k);
  if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > vocab) throw new Error(`topk-rkl: option topK must be an integer in [1, ${vocab}] (V), got ${String(o.topK)}`);
  if (o.topK > hi) throw new Error(`topk-rkl: option topK = ${o.topK} exceeds the top-K teacher's width k = ${hi}`);
  if (typeof o.tailSampling !== 'boolean') throw new Error(`topk-rkl: option tailSampling must be a boolean, got ${String(o.tailSampling)}`);
  if (typeof o.fused !== 'boolean') throw new Error(`topk-rkl: option fused must be a boolean, got ${String(o.fused)}`);
  if (typeof o.clipLogRatio !== 'number' || !Number.isFinite(o.clipLogRatio) || o.clipLogRatio < 0) {
    throw new Error(`topk-rkl: option clipLogRatio must be a finite number >= 0 (0 = off), got ${String(o.clipLogRatio)}`);
  }
  if (!Array.isArray(o.specialTokenIds) || o.specialTokenIds.some((id) => !Number.isInteger(id) || id < 0 || id >= vocab)) {
    throw new Error(`topk-rkl: option specialTokenIds must be an array of token ids in [0, ${vocab}), got ${JSON.stringify(o.specialTokenIds)}`);
  }
  if (o.specialTokenIds.length > 0 && !batch.seqIds_N) {
    throw new Error('topk-rkl: option specialTokenIds needs batch.seqIds_N (a sequence id per token) to find each sequence\'s first occurrence');
  }
}

/**
 * mask' = mask with the first occurrence (among mask-1 tokens) of each special id in each sequence set to 0.
 * Sequences are contiguous runs of seqIds_N (validateBatch checks this).
 */
export function dropFirstSpecialTokens(tokens_N: Int32Array, mask_N: Float32Array, seqIds_N: Int32Array | undefined, ids: readonly number[]): { mask_N: Float32Array; dropped: number } {
  const out = Float32Array.from(mask_N);
  if (ids.length === 0 || !seqIds_N) return { mask_N: out, dropped: 0 };
  const special = new Set(ids);
  const seen = new Set<number>();
  let dropped = 0;
  for (let i = 0; i < tokens_N.length; i++) {
    if (i > 0 && seqIds_N[i] !== seqIds_N[i - 1]) seen.clear();
    if (mask_N[i] === 0 || !special.has(tokens_N[i]) || seen.has(tokens_N[i])) continue;
    seen.add(tokens_N[i]);
    out[i] = 0;
    dropped++;
  }
  return { mask_N: out, dropped };
}

/**
 * The support per row: teacher top-K (sorted), optionally + y_t, with the teacher's full-vocabulary log-probs on
 * it (fused, full logits: float64 from the logits in place; else the dump's values, or for the composed path the
 * float32 values of a tfjs log-softmax). Unused extra columns repeat y_t and are excluded
 * by width_N (fused) or a -1e9 bias (composed).
 */
function buildSupport(batch: DistillBatch, k: number, tailSampling: boolean, fused: boolean) {
  const rows = batch.studentLogits_NV.shape[0];
  const t = batch.teacher!;
  let topIds_NK: Int32Array;
  let topLogp_NK: ArrayLike<number>;
  let sampled_N: ArrayLike<number> | undefined;
  if (isTeacherFull(t) && fused) {
    const s = teacherSupportFromLogits(t.logits_NV, k, 1, false, tailSampling ? batch.tokens_N : undefined);
    topIds_NK = s.ids_NK;
    topLogp_NK = s.logp_NK;
    if (tailSampling) sampled_N = s.sampled_N!;
  } else {
    // a dump, or (composed path) full logits read through tfjs ops into a dump's form
    const dumped = withTeacherAsDump(batch, k);
    const s = teacherSupport(dumped, k);
    topIds_NK = s.ids_NK;
    topLogp_NK = s.values_NK;
    if (tailSampling) sampled_N = teacherSampledLogprobs(dumped);
  }
  const cols = tailSampling ? k + 1 : k;
  const ids_NC = new Int32Array(rows * cols);
  const y_NC = new Float64Array(rows * cols);
  const width_N = new Int32Array(rows).fill(k);
  for (let n = 0; n < rows; n++) {
    let inTop = false;
    for (let c = 0; c < k; c++) {
      ids_NC[n * cols + c] = topIds_NK[n * k + c];
      y_NC[n * cols + c] = topLogp_NK[n * k + c];
      if (topIds_NK[n * k + c] === batch.tokens_N[n]) inTop = true;
    }
    if (sampled_N) {
      ids_NC[n * cols + k] = batch.tokens_N[n];
      y_NC[n * cols + k] = inTop ? y_NC[n * cols] : sampled_N[n];
      if (!inTop) width_N[n] = k + 1;
    }
  }
  return { cols, ids_NC, y_NC, width_N, teacherIds_NK: topIds_NK };
}

/** yh = y - logsumexp(y) over the first width_N[n] columns of each row (float64). */
function renormaliseTeacher(y_NC: Float64Array, rows: number, cols: number, width_N: Int32Array): Float64Array {
  const yh = new Float64Array(y_NC.length);
  for (let n = 0; n < rows; n++) {
    const b = n * cols;
    let max = -Infinity;
    for (let c = 0; c < width_N[n]; c++) max = Math.max(max, y_NC[b + c]);
    let sum = 0;
    for (let c = 0; c < width_N[n]; c++) sum += Math.exp(y_NC[b + c] - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c < width_N[n]; c++) yh[b + c] = y_NC[b + c] - lse;
  }
  return yh;
}

/** Share of each row's student top-K ids (studentIds_NK, e.g. topKRows' ids) that lie in the teacher's top-K ids. */
function overlapShare(studentIds_NK: Int32Array, rows: number, vocab: number, k: number, teacherIds_NK: Int32Array): Float32Array {
  const out = new Float32Array(rows);
  const inT = new Uint8Array(vocab);
  for (let n = 0; n < rows; n++) {
    for (let c = 0; c < k; c++) inT[teacherIds_NK[n * k + c]] = 1;
    let hits = 0;
    for (let c = 0; c < k; c++) hits += inT[studentIds_NK[n * k + c]];
    out[n] = hits / k;
    for (let c = 0; c < k; c++) inT[teacherIds_NK[n * k + c]] = 0;
  }
  return out;
}

function computeTopkRkl(batch: DistillBatch, o: TopkRklOptions, mask_N: Float32Array, weights_N: Float32Array): ObjectiveOutput {
  const z = batch.studentLogits_NV;
  const [rows, vocab] = z.shape;
  const k = o.topK;
  const clip = o.clipLogRatio;
  const s = buildSupport(batch, k, o.tailSampling, o.fused);
  const metrics: Record<string, number> = {};
  const massT_N = new Float32Array(rows);
  for (let n = 0; n < rows; n++) for (let c = 0; c < s.width_N[n]; c++) massT_N[n] += Math.exp(s.y_NC[n * s.cols + c]);
  metrics['topk/teacher_mass'] = maskedMean(massT_N, mask_N);
  let loss: tf.Scalar;
  let perToken_N: Float32Array;
  let overlap_N: Float32Array | undefined;
  let clipped = 0;

  // the teacher's side is detached data: renormalised once in float64, shared by both paths
  const yh_NC = renormaliseTeacher(s.y_NC, rows, s.cols, s.width_N);
  if (o.fused) {
    let out: DivergenceRows | undefined;
    const kernel: RowKernel = (z_NV, r, v, { kernels, arena, grad_NV, w_N }) => {
      // metrics from SIMD passes over the student's row: its top-K (overlap) and logsumexp (mass on the support)
      const studentIds = arena.i32(r * k);
      const lse_N = arena.f64(r);
      kernels.topKRows(z_NV, r, v, k, studentIds, arena.f32(r * k), lse_N); // NV -> NK, N
      overlap_N = overlapShare(studentIds, r, v, k, s.teacherIds_NK);
      out = rklSupportRows(z_NV, r, v, s.ids_NC, s.cols, s.width_N, yh_NC, clip, w_N, lse_N, grad_NV);
      return out.perToken_N;
    };
    ({ loss, perToken_N } = fusedLoss(z, weights_N, kernel, { scratchBytes: rows * k * 8 }));
    metrics['topk/student_mass'] = maskedMean(out!.studentMass_N, mask_N);
    for (let n = 0; n < rows; n++) if (mask_N[n] !== 0) clipped += out!.clipped_N[n];
  } else {
    const bias_NC = new Float32Array(rows * s.cols);
    for (let n = 0; n < rows; n++) for (let c = s.width_N[n]; c < s.cols; c++) bias_NC[n * s.cols + c] = UNUSED_COLUMN;
    const bias = tf.tensor2d(bias_NC, [rows, s.cols]);
    // renormalise the gathered logits directly (exact in float32 even where full-vocabulary log-probs are ~-1e4)
    const zS_NC = gatherColumns(z, s.ids_NC, s.cols); // NV -> NC
    const xh = normaliseOnSupport(tf.add(zS_NC, bias) as tf.Tensor2D, 'both');
    const yh = tf.tensor2d(Float32Array.from(yh_NC), [rows, s.cols]); // unused columns hold 0 (their pS^ is 0)
    let perToken: tf.Tensor1D;
    if (clip > 0) {
      const d = tf.sub(xh, yh);
      perToken = tf.sum(tf.mul(tf.exp(xh), tf.clipByValue(d, -clip, clip)), 1) as tf.Tensor1D;
      const dv = d.dataSync();
      for (let n = 0; n < rows; n++) {
        if (mask_N[n] === 0) continue;
        for (let c = 0; c < s.width_N[n]; c++) if (Math.abs(dv[n * s.cols + c]) > clip) clipped++;
      }
    } else {
      perToken = klStudentTeacher(yh, xh);
    }
    perToken_N = Float32Array.from(perToken.dataSync());
    for (let n = 0; n < rows; n++) if (mask_N[n] === 0) perToken_N[n] = 0;
    loss = tf.sum(tf.mul(perToken, tf.tensor1d(weights_N))) as tf.Scalar;
    const massS = tf.sum(tf.mul(tf.exp(tf.sub(zS_NC, tf.logSumExp(z, 1, true))), tf.equal(bias, 0)), 1).dataSync();
    metrics['topk/student_mass'] = maskedMean(massS, mask_N);
    overlap_N = overlapShare(topKRows(z.dataSync(), rows, vocab, k).ids_NK, rows, vocab, k, s.teacherIds_NK);
  }
  metrics['topk/overlap'] = maskedMean(overlap_N!, mask_N);
  if (clip > 0) {
    let entries = 0;
    for (let n = 0; n < rows; n++) if (mask_N[n] !== 0) entries += s.width_N[n];
    metrics['clip/fraction'] = entries > 0 ? clipped / entries : 0;
  }
  metrics['loss/topk_rkl'] = loss.dataSync()[0];
  return { loss, perToken_N, metrics };
}

export const topkRkl = registerObjective<TopkRklOptions>({
  name: 'topk-rkl',
  summary: 'Revisiting-OPD Teacher-TopK: reverse KL(pS^ || pT^) renormalised on the teacher\'s top-K support',
  formula: 'l_t = sum_{v in TopK(pT)} pS^(v) [log pS^(v) - log pT^(v)], both renormalised on the support',
  source: 'Fu et al. 2026 (Revisiting OPD), arXiv 2603.25562 v2, L_LSM; code hhh675597/revisiting_opd',
  // tailSampling also reads log pT(y_t) and specialTokenIds needs seqIds_N (both checked in compute)
  needs: ['teacherTopK'],
  teacherForms: ['full', 'topk'],
  defaults: TOPK_RKL_DEFAULTS,
  fused: true,
  gradientOf: 'loss',
  compute(batch, options, reduction) {
    checkOptions(options, batch);
    const { mask_N, dropped } = dropFirstSpecialTokens(batch.tokens_N, batch.mask_N, batch.seqIds_N, options.specialTokenIds);
    const weights_N = reductionWeights(mask_N, reduction, batch.seqIds_N);
    const out = computeTopkRkl(batch, options, mask_N, weights_N);
    out.metrics['mask/special_dropped'] = dropped;
    return out;
  },
});
