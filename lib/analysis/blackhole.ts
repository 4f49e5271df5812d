/**
 * The exploration black hole (AOPD Eq. 4-5 vs Eq. 12; claim C2).
 *
 * At each masked-in position with A = log pT(y) - log pS(y) < 0:
 *   v*            = argmax_{v != y} pT(v)     the teacher-preferred unsampled token (ties: lower id)
 *   pS(v*), pT(v*), and rank_S(v*) = 1 + #{u : pS(u) > pS(v*)}   (1 = the student's top token; tied tokens share
 *                                                                  the best rank)
 *   for each objective o:  Delta z^o = -step * dL_o/dz  with reduction 'sum' (jacobian.ts), and
 *     update_vstar     = Delta z^o_{v*}
 *     max_update       = max_v Delta z^o_v   (>= 0: a softmax loss's gradient row sums to 0)
 *     promotion_ratio  = update_vstar / max_update,  defined as 0 when the row is all zero (nothing is promoted)
 *
 * Analytic curves against the student prior pS(v*) (for v* != y), to draw next to the measured points:
 *   OPD (policy gradient, Eq. 5)                 Delta z_{v*} = -step * A * pS(v*)        (= step |A| pS(v*) for A < 0)
 *   forward KL, full vocabulary (Eq. 12)         Delta z_{v*} = step * (pT(v*) - pS(v*))
 *   forward KL on the teacher's top-K, un-normalised (AOPD imitation branch, methods.md section 2, v* in S_t):
 *                                                Delta z_{v*} = step * (pT(v*) - m_t pS(v*)),  m_t = sum_{S_t} pT
 *
 * The advantage used to select positions is recomputed from the current student logits and the teacher
 * (full logits, or the top-K form's sampledLogprobs_N); an objective's own advantage (e.g. with sampler
 * log-probs) only enters through the update it produces.
 */
import { validateBatch } from '../objectives/batch';
import { isTeacherFull, type DistillBatch } from '../objectives/types';
import { assertFiniteArray, assertInRange } from '../probs/validate';
import { logitUpdate } from './jacobian';
import { maskCount, mean64, rankInRow, requireTokens, rowLogSoftmax64 } from './values';

export interface BlackHoleObjective {
  /** Registered objective name. */
  name: string;
  /** Metric label; default the name (use e.g. 'aopd_eta=-0.5' to compare settings of one objective). */
  label?: string;
  /** The objective's options (its defaults otherwise). */
  options?: Record<string, unknown>;
}

export interface BlackHoleOptions {
  /** Objectives whose updates are measured. Default [{ name: 'opd' }, { name: 'aopd' }]. */
  objectives: BlackHoleObjective[];
  /** Step size in Delta z = -step dL/dz. Default 1. */
  step: number;
}

export const DEFAULT_BLACK_HOLE_OPTIONS: Readonly<BlackHoleOptions> = {
  objectives: [{ name: 'opd' }, { name: 'aopd' }],
  step: 1,
};

export interface BlackHoleObjectiveResult {
  label: string;
  name: string;
  /** [P] Delta z at v*. */
  updateVStar_P: Float64Array;
  /** [P] max_v Delta z_v at the position. */
  maxUpdate_P: Float64Array;
  /** [P] updateVStar / maxUpdate (0 where the row is all zero). */
  promotionRatio_P: Float64Array;
}

export interface BlackHoleMeasurement {
  /** [P] row index n of each measured position (masked in, A < 0), ascending. */
  position_P: Int32Array;
  /** [P] A = log pT(y) - log pS(y). */
  advantage_P: Float64Array;
  /** [P] sampled token y. */
  sampled_P: Int32Array;
  /** [P] v*. */
  vStar_P: Int32Array;
  pSVStar_P: Float64Array;
  pTVStar_P: Float64Array;
  /** [P] student rank of v* (1 = the student's top token). */
  rankVStar_P: Int32Array;
  objectives: BlackHoleObjectiveResult[];
  /** blackhole/... scalars (docs/metrics.md). */
  metrics: Record<string, number>;
  notes: string[];
}

function median(x: Float64Array): number {
  if (x.length === 0) return NaN;
  const s = Float64Array.from(x).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Measure the black hole on a batch (file header). The teacher may be full logits or top-K arrays (K >= 2). */
export function blackHole(batch: DistillBatch, options: Partial<BlackHoleOptions> = {}): BlackHoleMeasurement {
  const op = 'blackHole';
  const o: BlackHoleOptions = { ...DEFAULT_BLACK_HOLE_OPTIONS, ...options };
  for (const k of Object.keys(options)) {
    if (!(k in DEFAULT_BLACK_HOLE_OPTIONS)) throw new Error(`${op}: unknown option '${k}'; known options: ${Object.keys(DEFAULT_BLACK_HOLE_OPTIONS).join(', ')}`);
  }
  if (!Number.isFinite(o.step) || o.step <= 0) throw new Error(`${op}: step must be a finite number > 0, got ${o.step}`);
  if (!Array.isArray(o.objectives)) throw new Error(`${op}: objectives must be an array of { name, label?, options? }`);
  validateBatch(op, batch, ['teacherSampled', 'teacherTopK'], ['full', 'topk']);
  const teacher = batch.teacher!;
  const [n, vocab] = batch.studentLogits_NV.shape;
  requireTokens(op, maskCount(batch.mask_N), n);
  const labels = o.objectives.map((ob) => ob.label ?? ob.name);
  if (new Set(labels).size !== labels.length) throw new Error(`${op}: objective labels must be unique, got ${labels.join(', ')}`);

  const logpS = rowLogSoftmax64(batch.studentLogits_NV.dataSync(), n, vocab);
  const full = isTeacherFull(teacher);
  const logpT = full ? rowLogSoftmax64(teacher.logits_NV.dataSync(), n, vocab) : null;
  if (!full && teacher.k < 2) throw new Error(`${op}: a top-K teacher needs k >= 2 to name the best unsampled token, got k = ${teacher.k}`);

  const position: number[] = [];
  const adv: number[] = [];
  const vStar: number[] = [];
  const logpTVStar: number[] = [];
  for (let r = 0; r < n; r++) {
    if (batch.mask_N[r] === 0) continue;
    const y = batch.tokens_N[r];
    const lT = full ? logpT![r * vocab + y] : teacher.sampledLogprobs_N[r];
    const a = lT - logpS[r * vocab + y];
    if (!(a < 0)) continue;
    let best = -1;
    let bestVal = -Infinity;
    if (full) {
      for (let v = 0; v < vocab; v++) {
        if (v === y) continue;
        const x = logpT![r * vocab + v];
        if (best < 0 || x > bestVal) { best = v; bestVal = x; }
      }
    } else {
      for (let j = 0; j < teacher.k; j++) {
        const v = teacher.topkIds_NK[r * teacher.k + j];
        const x = teacher.topkLogprobs_NK[r * teacher.k + j];
        if (v === y) continue;
        if (best < 0 || x > bestVal || (x === bestVal && v < best)) { best = v; bestVal = x; }
      }
    }
    if (best < 0) throw new Error(`${op}: the teacher's top-K at row ${r} holds only the sampled token; cannot name v*`);
    position.push(r);
    adv.push(a);
    vStar.push(best);
    logpTVStar.push(bestVal);
  }
  const P = position.length;
  const position_P = Int32Array.from(position);
  const vStar_P = Int32Array.from(vStar);
  const pSVStar_P = Float64Array.from(position, (r, i) => Math.exp(logpS[r * vocab + vStar[i]]));
  const pTVStar_P = Float64Array.from(logpTVStar, Math.exp);
  const rankVStar_P = Int32Array.from(position, (r, i) => rankInRow(logpS, r * vocab, vocab, vStar[i]));

  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  metrics['blackhole/count'] = P;
  metrics['blackhole/frac_negative'] = P / maskCount(batch.mask_N);
  metrics['blackhole/ps_vstar_mean'] = mean64(pSVStar_P);
  metrics['blackhole/ps_vstar_median'] = median(pSVStar_P);
  metrics['blackhole/pt_vstar_mean'] = mean64(pTVStar_P);
  const ranks = Float64Array.from(rankVStar_P);
  metrics['blackhole/rank_vstar_mean'] = mean64(ranks);
  metrics['blackhole/rank_vstar_median'] = median(ranks);
  metrics['blackhole/frac_vstar_student_top1'] = P > 0 ? ranks.filter((x) => x === 1).length / P : NaN;
  if (P === 0) notes.push('blackhole/*: no masked-in position has A < 0, so every mean and median is NaN (count 0)');

  const objectives: BlackHoleObjectiveResult[] = o.objectives.map((ob, i) => {
    const label = labels[i];
    const upd = logitUpdate(ob.name, batch, ob.options ?? {}, { step: o.step, reduction: 'sum' }).update_NV;
    const updateVStar_P = new Float64Array(P);
    const maxUpdate_P = new Float64Array(P);
    const promotionRatio_P = new Float64Array(P);
    for (let p = 0; p < P; p++) {
      const base = position_P[p] * vocab;
      let max = -Infinity;
      let allZero = true;
      for (let v = 0; v < vocab; v++) {
        const d = upd[base + v];
        if (d > max) max = d;
        if (d !== 0) allZero = false;
      }
      updateVStar_P[p] = upd[base + vStar_P[p]];
      maxUpdate_P[p] = max;
      promotionRatio_P[p] = allZero || !(max > 0) ? 0 : updateVStar_P[p] / max;
    }
    metrics[`blackhole/${label}/update_vstar_mean`] = mean64(updateVStar_P);
    metrics[`blackhole/${label}/promotion_ratio_mean`] = mean64(promotionRatio_P);
    metrics[`blackhole/${label}/promotion_ratio_median`] = median(promotionRatio_P);
    return { label, name: ob.name, updateVStar_P, maxUpdate_P, promotionRatio_P };
  });
  return { position_P, advantage_P: Float64Array.from(adv), sampled_P: Int32Array.from(position, (r) => batch.tokens_N[r]), vStar_P, pSVStar_P, pTVStar_P, rankVStar_P, objectives, metrics, notes };
}

export interface BlackHoleCurveOptions {
  /** Grid of student priors pS(v*). Default 41 points log-spaced over [1e-4, 1] (10 per decade). */
  pS_G: ArrayLike<number>;
  /** The advantage A at the position (A < 0 for the black hole). Default -1. */
  advantage: number;
  /** pT(v*): one number for the whole curve, or one per grid point. Default 0.5. */
  pT: number | ArrayLike<number>;
  /** m_t = teacher mass on its top-K (1 = full vocabulary). Default 1. */
  teacherMass: number;
  /** Step size. Default 1. */
  step: number;
}

export interface BlackHoleCurves {
  pS_G: Float64Array;
  /** [G] OPD: -step * A * pS. */
  opd_G: Float64Array;
  /** [G] full-vocabulary forward KL: step * (pT - pS). */
  forwardKL_G: Float64Array;
  /** [G] top-K forward KL, un-normalised: step * (pT - m pS). */
  topkForwardKL_G: Float64Array;
}

/** Log-spaced grid of `points` values from lo to hi inclusive. */
export function logGrid(lo: number, hi: number, points: number): Float64Array {
  if (!(lo > 0) || !(hi > lo) || !Number.isInteger(points) || points < 2) {
    throw new Error(`logGrid: need 0 < lo < hi and an integer points >= 2, got lo ${lo}, hi ${hi}, points ${points}`);
  }
  const a = Math.log10(lo);
  const b = Math.log10(hi);
  return Float64Array.from({ length: points }, (_, i) => (i === 0 ? lo : i === points - 1 ? hi : Math.pow(10, a + ((b - a) * i) / (points - 1))));
}

/** The analytic updates of v* against its student prior (file header). */
export function blackHoleCurves(options: Partial<BlackHoleCurveOptions> = {}): BlackHoleCurves {
  const op = 'blackHoleCurves';
  const pS_G = Float64Array.from(options.pS_G ?? logGrid(1e-4, 1, 41));
  const A = options.advantage ?? -1;
  const m = options.teacherMass ?? 1;
  const step = options.step ?? 1;
  const pT = options.pT ?? 0.5;
  assertFiniteArray(op, 'pS_G', pS_G);
  for (const p of pS_G) assertInRange(op, 'pS_G entry', p, 0, 1);
  if (!Number.isFinite(A)) throw new Error(`${op}: advantage must be finite, got ${A}`);
  assertInRange(op, 'teacherMass', m, 0, 1);
  if (!Number.isFinite(step)) throw new Error(`${op}: step must be finite, got ${step}`);
  const pTAt = (i: number): number => (typeof pT === 'number' ? pT : pT[i]);
  if (typeof pT !== 'number' && pT.length !== pS_G.length) throw new Error(`${op}: pT must be one number or one per grid point (${pS_G.length}), got ${pT.length}`);
  for (let i = 0; i < pS_G.length; i++) assertInRange(op, 'pT', pTAt(i), 0, 1);
  return {
    pS_G,
    opd_G: pS_G.map((p) => -step * A * p),
    forwardKL_G: pS_G.map((p, i) => step * (pTAt(i) - p)),
    topkForwardKL_G: pS_G.map((p, i) => step * (pTAt(i) - m * p)),
  };
}
