/**
 * Top-K diagnostics under the names practitioners log (ecosystem.md section 1 items 5-6: verl
 * `distillation/{teacher_mass,student_mass,teacher_tail_mass,student_tail_mass,overlap_ratio}`, verl RFC #7856
 * clamp rate, ms-swift `gkd/topk_overlap` and `gkd/teacher_student_gap`).
 *
 * With S_t = the teacher's top-K at position t (lib/probs/topk: sorted, ties to the lower id) and full-vocabulary
 * log-probs on both sides, per token:
 *   teacher_mass_t       = sum_{v in S_t} pT(v)                   (verl teacher_mass)
 *   student_mass_t       = sum_{v in S_t} pS(v)                   (verl student_mass: student mass on the teacher's top-K)
 *   teacher_tail_mass_t  = max(0, 1 - teacher_mass_t)             (clamped at 0 against rounding only)
 *   student_tail_mass_t  = max(0, 1 - student_mass_t)
 *   overlap_t            = |S_t intersect TopK_v pS(v)| / K       (verl overlap_ratio, ms-swift gkd/topk_overlap)
 *   truncated_fkl_t      = sum_{v in S_t} pT(v) [log pT(v) - log pS(v)]   (un-normalised; can be < 0, verl #7856)
 *   clamped_t            = 1[truncated_fkl_t < 0]                 (what clamp_min(0) would zero out)
 *   gap_t                = log pT(y_t) - log pS(y_t)              (ms-swift gkd/teacher_student_gap; tinker's
 *                                                                  teacher_kl is its negative)
 * Metrics, means over masked-in tokens: topk/teacher_mass (+ _min, _max), topk/student_mass (+ _min, _max),
 * topk/teacher_tail_mass, topk/student_tail_mass, topk/overlap_ratio, topk/clamp_frac, topk/teacher_student_gap,
 * and topk/k. `topKSweep` repeats them over several K (the K-sweep figure).
 */
import { teacherSampledLogprobs, teacherSupport, validateBatch } from '../objectives/batch';
import type { DistillBatch } from '../objectives/types';
import { topKRows } from '../probs/topk';
import { assertIntInRange } from '../probs/validate';
import { maskCount, requireTokens, rowLogSoftmax64 } from './values';

export interface TopKDiagnostics {
  k: number;
  /** Per token [N] (every row; the metrics average the masked-in ones). */
  teacherMass_N: Float64Array;
  studentMass_N: Float64Array;
  overlap_N: Float64Array;
  truncatedFkl_N: Float64Array;
  gap_N: Float64Array;
  metrics: Record<string, number>;
}

/** Top-K diagnostics of a batch at one K (file header). The teacher may be full logits or top-K arrays. */
export function topKDiagnostics(batch: DistillBatch, k: number): TopKDiagnostics {
  const op = 'topKDiagnostics';
  validateBatch(op, batch, ['teacherTopK', 'teacherSampled'], ['full', 'topk']);
  const [n, vocab] = batch.studentLogits_NV.shape;
  assertIntInRange(op, 'k', k, 1, vocab);
  const count = maskCount(batch.mask_N);
  requireTokens(op, count, n);
  const support = teacherSupport(batch, k);
  const zS = batch.studentLogits_NV.dataSync();
  const logpS = rowLogSoftmax64(zS, n, vocab);
  const studentTop = topKRows(zS, n, vocab, k);
  const logpTy = teacherSampledLogprobs(batch);

  const teacherMass_N = new Float64Array(n);
  const studentMass_N = new Float64Array(n);
  const overlap_N = new Float64Array(n);
  const truncatedFkl_N = new Float64Array(n);
  const gap_N = new Float64Array(n);
  const inStudentTop = new Set<number>();
  for (let r = 0; r < n; r++) {
    inStudentTop.clear();
    for (let j = 0; j < k; j++) inStudentTop.add(studentTop.ids_NK[r * k + j]);
    let mT = 0, mS = 0, fkl = 0, both = 0;
    for (let j = 0; j < k; j++) {
      const v = support.ids_NK[r * k + j];
      const lT = support.values_NK[r * k + j];
      const lS = logpS[r * vocab + v];
      const pT = Math.exp(lT);
      mT += pT;
      mS += Math.exp(lS);
      fkl += pT * (lT - lS);
      if (inStudentTop.has(v)) both++;
    }
    teacherMass_N[r] = mT;
    studentMass_N[r] = mS;
    overlap_N[r] = both / k;
    truncatedFkl_N[r] = fkl;
    gap_N[r] = logpTy[r] - logpS[r * vocab + batch.tokens_N[r]];
  }

  const m = batch.mask_N;
  const meanOf = (x: Float64Array, f: (v: number) => number = (v) => v) => {
    let s = 0;
    for (let r = 0; r < n; r++) if (m[r] !== 0) s += f(x[r]);
    return s / count;
  };
  const extreme = (x: Float64Array, pick: (a: number, b: number) => number, init: number) => {
    let e = init;
    for (let r = 0; r < n; r++) if (m[r] !== 0) e = pick(e, x[r]);
    return e;
  };
  const metrics: Record<string, number> = {
    'topk/k': k,
    'topk/teacher_mass': meanOf(teacherMass_N),
    'topk/teacher_mass_min': extreme(teacherMass_N, Math.min, Infinity),
    'topk/teacher_mass_max': extreme(teacherMass_N, Math.max, -Infinity),
    'topk/student_mass': meanOf(studentMass_N),
    'topk/student_mass_min': extreme(studentMass_N, Math.min, Infinity),
    'topk/student_mass_max': extreme(studentMass_N, Math.max, -Infinity),
    'topk/teacher_tail_mass': meanOf(teacherMass_N, (v) => Math.max(0, 1 - v)),
    'topk/student_tail_mass': meanOf(studentMass_N, (v) => Math.max(0, 1 - v)),
    'topk/overlap_ratio': meanOf(overlap_N),
    'topk/clamp_frac': meanOf(truncatedFkl_N, (v) => (v < 0 ? 1 : 0)),
    'topk/teacher_student_gap': meanOf(gap_N),
  };
  return { k, teacherMass_N, studentMass_N, overlap_N, truncatedFkl_N, gap_N, metrics };
}

/** The topk/ metrics over several K: one array per metric key, aligned with k_K. */
export function topKSweep(batch: DistillBatch, ks: number[]): { k_K: Int32Array; metrics: Record<string, Float64Array> } {
  if (!Array.isArray(ks) || ks.length === 0) throw new Error('topKSweep: ks must be a non-empty array of K values');
  const metrics: Record<string, Float64Array> = {};
  ks.forEach((k, i) => {
    const d = topKDiagnostics(batch, k);
    for (const [key, value] of Object.entries(d.metrics)) {
      if (!metrics[key]) metrics[key] = new Float64Array(ks.length);
      metrics[key][i] = value;
    }
  });
  return { k_K: Int32Array.from(ks), metrics };
}
