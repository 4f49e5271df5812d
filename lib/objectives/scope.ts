/**
 * SCOPE: correctness-routed, perplexity-weighted on-policy distillation.
 *
 * Sequences i (batch.seqIds_N) with verifier reward R_i (batch.reward_S) in prompt groups (batch.group_S).
 * Correct means R_i > 0. Over each sequence's masked tokens (|y_i| of them):
 *   meanLogpT_i = (1/|y_i|) sum_t log pT(y_t),   meanLogpS_i = (1/|y_i|) sum_t sg[log pS(y_t)]
 * Weights are detached and normalised by a softmax within the same prompt group AND correctness subset:
 *   wrong   (R_i = 0): w_i^tea = softmax_j( +meanLogpT_j / tau )_i = PPL_T(y_i)^(-1/tau) / sum_j PPL_T^(-1/tau)
 *   correct (R_i > 0): w_i^stu = softmax_j( -meanLogpS_j / tau )_i = PPL_S(y_i)^(+1/tau) / sum_j ...   ('paper')
 *                      w_i^stu = softmax_j( +meanLogpS_j / tau )_i                                    ('code')
 *   weightNorm 'sum': each subset's weights sum to 1 (paper; a single-member subset gets 1);
 *              'mean': multiplied by the subset size, so they average 1 (the public code).
 * Per token t of sequence i:
 *   wrong:   l_t = w_i^tea * ( -A_t log pS(y_t) ),   A_t = sg[log pT(y_t) - log pS(y_t)]   (teacher path, OPD)
 *   correct: l_t = w_i^stu * ( -log pS(y_t) )                                            (student path, MLE)
 * Both are l_t = -A'_t log pS(y_t) with a detached A' (lib/objectives/pg.ts); loss = sum_t w_t^red l_t.
 *
 * Source: Zheng et al. 2026, "SCOPE", arXiv 2604.10688 v2, Eq. (1)-(6) as quoted by a tutorial (methods.md
 * section 7, [paper-via-2nd]); code machine981/SCOPE `_compute_scope_dual_path_weights` ([code]). Unverified in
 * the PDF. The public scripts (STUDENT_PATH_PPL_POSITIVE=True) up-weight LOW student perplexity, opposite to the
 * paper's Eq. 4 and the config comment: the default here is the paper ('paper'); 'code' reproduces the repo.
 *
 * Inputs: batch.studentLogits_NV [N, V] (differentiable), tokens_N, mask_N, seqIds_N [N], reward_S [S],
 * group_S [S], the teacher (full logits or top-K dump: only log pT(y_t) is read).
 *
 * Metrics: scope/correct_share (share of sequences with a masked token that are correct), scope/w_tea_max and
 * scope/w_stu_max (largest weight of each path; 0 if the path is empty), loss/teacher_path and loss/student_path
 * (each path's share of the reduced loss; they add up to the loss).
 *
 * Deliberate deviations: the paper/code use importance ratios rho = pi_theta / pi_old (PPO surrogate on the
 * teacher path); on-policy their gradient is the policy gradient used here. The reduction is the caller's choice:
 * the paper sums tokens within a trajectory ('sum'), the code uses token-mean. Sequences with no masked token
 * take no part in the softmax (they contribute nothing to the loss).
 */
import { teacherSampledLogprobs } from './batch';
import { pgLoss, studentSampledLogprobs } from './pg';
import { registerObjective } from './registry';
import { reductionWeights } from './types';

export type ScopeDirection = 'paper' | 'code';
export type ScopeWeightNorm = 'sum' | 'mean';
const DIRECTIONS: readonly ScopeDirection[] = ['paper', 'code'];
const NORMS: readonly ScopeWeightNorm[] = ['sum', 'mean'];

export interface ScopeOptions {
  /** Softmax temperature over length-normalised mean log-probs; > 0. Default 1 (the paper; 0.5 and 2 were worse). */
  tau: number;
  /** 'paper': w^stu ∝ PPL_S^(1/tau) (high student perplexity up-weighted); 'code': ∝ PPL_S^(-1/tau) as the repo's scripts. Default 'paper'. */
  studentWeightDirection: ScopeDirection;
  /** 'sum': subset weights sum to 1 (paper); 'mean': they average 1 (code). Default 'sum'. */
  weightNorm: ScopeWeightNorm;
}

export const SCOPE_DEFAULTS: ScopeOptions = { tau: 1, studentWeightDirection: 'paper', weightNorm: 'sum' };

/** Detached per-sequence weights: softmax of `logit_S` within each subset key ('' = not in any subset: weight 0). */
function subsetSoftmax(logit_S: Float64Array, key_S: string[], norm: ScopeWeightNorm): Float64Array {
  const members = new Map<string, number[]>();
  key_S.forEach((k, s) => {
    if (k === '') return;
    if (!members.has(k)) members.set(k, []);
    members.get(k)!.push(s);
  });
  const w_S = new Float64Array(logit_S.length);
  for (const seqs of members.values()) {
    let max = -Infinity;
    for (const s of seqs) max = Math.max(max, logit_S[s]);
    let sum = 0;
    for (const s of seqs) sum += Math.exp(logit_S[s] - max);
    const scale = norm === 'mean' ? seqs.length : 1;
    for (const s of seqs) w_S[s] = (scale * Math.exp(logit_S[s] - max)) / sum;
  }
  return w_S;
}

export const scope = registerObjective<ScopeOptions>({
  name: 'scope',
  summary: 'SCOPE: teacher-PPL-weighted OPD on wrong rollouts, student-PPL-weighted MLE on correct ones (group softmax)',
  formula:
    'wrong: l_t = w_i^tea (-sg[log pT - log pS] log pS(y_t)), w^tea = softmax(+meanLogpT/tau); correct: l_t = w_i^stu (-log pS(y_t)), w^stu = softmax(-meanLogpS/tau); softmax per (group, correctness)',
  source: 'Zheng et al. 2026, arXiv 2604.10688 v2, Eq. (1)-(6) (via a tutorial; code machine981/SCOPE)',
  needs: ['teacherSampled', 'seqIds', 'reward', 'group'],
  teacherForms: ['full', 'topk'],
  defaults: SCOPE_DEFAULTS,
  fused: false,
  gradientOf: 'surrogate',
  compute(batch, options, reduction) {
    const { tau, studentWeightDirection, weightNorm } = options;
    if (typeof tau !== 'number' || !Number.isFinite(tau) || tau <= 0) throw new Error(`scope: option tau must be a finite number > 0, got ${String(tau)}`);
    if (!DIRECTIONS.includes(studentWeightDirection)) {
      throw new Error(`scope: option studentWeightDirection must be one of ${DIRECTIONS.join(', ')}, got '${String(studentWeightDirection)}'`);
    }
    if (!NORMS.includes(weightNorm)) throw new Error(`scope: option weightNorm must be one of ${NORMS.join(', ')}, got '${String(weightNorm)}'`);
    const seqIds_N = batch.seqIds_N!;
    const reward_S = batch.reward_S!;
    const group_S = batch.group_S!;
    const mask_N = batch.mask_N;
    const n = mask_N.length;
    const logpT_N = teacherSampledLogprobs(batch);
    const { logpS_N, values_N: logpSv_N } = studentSampledLogprobs(batch.studentLogits_NV, batch.tokens_N);

    // per-sequence masked means of the detached log-probs
    let sequences = 0;
    for (let i = 0; i < n; i++) sequences = Math.max(sequences, seqIds_N[i] + 1);
    const count_S = new Float64Array(sequences);
    const sumT_S = new Float64Array(sequences);
    const sumS_S = new Float64Array(sequences);
    for (let i = 0; i < n; i++) {
      if (mask_N[i] === 0) continue;
      const s = seqIds_N[i];
      count_S[s]++;
      sumT_S[s] += logpT_N[i];
      sumS_S[s] += logpSv_N[i];
    }
    const correct = (s: number) => reward_S[s] > 0;
    const sign = studentWeightDirection === 'paper' ? -1 : 1;
    const teaLogit_S = new Float64Array(sequences);
    const stuLogit_S = new Float64Array(sequences);
    const teaKey_S: string[] = [];
    const stuKey_S: string[] = [];
    let present = 0;
    let correctCount = 0;
    for (let s = 0; s < sequences; s++) {
      teaKey_S.push('');
      stuKey_S.push('');
      if (count_S[s] === 0) continue;
      present++;
      if (correct(s)) {
        correctCount++;
        stuKey_S[s] = String(group_S[s]);
        stuLogit_S[s] = (sign * sumS_S[s]) / count_S[s] / tau;
      } else {
        teaKey_S[s] = String(group_S[s]);
        teaLogit_S[s] = sumT_S[s] / count_S[s] / tau;
      }
    }
    const wTea_S = subsetSoftmax(teaLogit_S, teaKey_S, weightNorm);
    const wStu_S = subsetSoftmax(stuLogit_S, stuKey_S, weightNorm);

    // the detached coefficient A'_t of -A'_t log pS(y_t)
    const adv_N = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = seqIds_N[i];
      adv_N[i] = correct(s) ? wStu_S[s] : wTea_S[s] * (logpT_N[i] - logpSv_N[i]);
    }
    const weights_N = reductionWeights(mask_N, reduction, seqIds_N);
    const { loss, perToken_N } = pgLoss(logpS_N, logpSv_N, adv_N, weights_N, mask_N);

    let teacherPath = 0;
    let studentPath = 0;
    for (let i = 0; i < n; i++) {
      if (correct(seqIds_N[i])) studentPath += weights_N[i] * perToken_N[i];
      else teacherPath += weights_N[i] * perToken_N[i];
    }
    let wTeaMax = 0;
    let wStuMax = 0;
    for (let s = 0; s < sequences; s++) {
      wTeaMax = Math.max(wTeaMax, wTea_S[s]);
      wStuMax = Math.max(wStuMax, wStu_S[s]);
    }
    return {
      loss,
      perToken_N,
      metrics: {
        'scope/correct_share': present > 0 ? correctCount / present : 0,
        'scope/w_tea_max': wTeaMax,
        'scope/w_stu_max': wStuMax,
        'loss/teacher_path': teacherPath,
        'loss/student_path': studentPath,
      },
    };
  },
});
