/**
 * AOPD Fig. 2b (claim C2): the exploration black hole.
 *
 * At a position with A = log pT(y) - log pS(y) < 0, the update of the teacher-preferred unsampled token v*
 * (Delta z = -step dL/dz, step 1, lib/analysis/blackhole.ts):
 *   OPD (policy gradient, AOPD Eq. 4-5)      Delta z_{v*} = -A pS(v*)          proportional to the prior pS(v*)
 *   forward KL (full vocabulary, Eq. 12)     Delta z_{v*} = pT(v*) - pS(v*)     whatever the prior
 * Left panel: both analytic lines against pS(v*) (log x-axis; A and pT(v*) at the medians over the positions of
 * every seed, pooled) with the measured updates at every A < 0 position of every seed's student rollouts as points
 * (pooled). Right panel (when the input has it): the teacher's top token under the student on each seed's fixed
 * probe set over training steps, for OPD and forward KL: the mean over seeds as a line, min..max over seeds as a
 * band (seriesBandTraces, as the other curve figures), the teacher's own level as the mean over seeds.
 * Numbers: `c2SeedNumbers` per seed, `c2Numbers` = their mean over seeds and 95% CI half-width (key_ci95).
 */
import { blackHoleCurves, logGrid } from '../../analysis/blackhole';
import type { BlackHolePoints, TrackerSeries } from '../data';
import { baseLayout, methodStyle, seriesColour, type PlotlyFigure, type PlotlyTrace } from '../theme';
import { plural, seriesBandTraces } from './ablations/common';
import { numbersOverSeeds } from './fig2a';

/** The measurements of one seed. */
export interface Fig2bSeed {
  seed: number;
  blackHole: BlackHolePoints;
  /** Probe-set series per method: 'opd' and/or 'forwardKL'; every seed has the same methods and steps, or none. */
  tracker?: Record<string, TrackerSeries>;
}

export interface Fig2bInput {
  /** One entry per seed (data/figures/c1c2.json `seeds` fits as is). */
  seeds: readonly Fig2bSeed[];
  /** Most measured points drawn per objective (evenly thinned over the pooled positions; numbers use all). Default 1500. */
  maxPoints?: number;
}

const FKL = { label: 'forward KL (GKD β = 0)', colour: methodStyle('gkd').colour };
const OPD = { label: 'OPD (reverse-KL policy gradient)', colour: methodStyle('opd').colour };

function median(x: readonly number[]): number {
  if (x.length === 0) return NaN;
  const s = [...x].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function mean(x: readonly number[]): number {
  return x.length ? x.reduce((a, v) => a + v, 0) / x.length : NaN;
}

/** Least-squares slope of log10 y on log10 x over the pairs with x, y > 0. */
function logLogSlope(x: readonly number[], y: readonly number[]): number {
  const px: number[] = [];
  const py: number[] = [];
  x.forEach((v, i) => {
    if (v > 0 && y[i] > 0) { px.push(Math.log10(v)); py.push(Math.log10(y[i])); }
  });
  if (px.length < 2) return NaN;
  const mx = mean(px);
  const my = mean(py);
  let sxy = 0, sxx = 0;
  for (let i = 0; i < px.length; i++) { sxy += (px[i] - mx) * (py[i] - my); sxx += (px[i] - mx) ** 2; }
  return sxx > 0 ? sxy / sxx : NaN;
}

function check(op: string, b: BlackHolePoints, at = 'blackHole'): number {
  if (typeof b !== 'object' || b === null) throw new Error(`${op}: ${at} is missing`);
  const P = b.pS?.length ?? 0;
  for (const k of ['advantage', 'pS', 'pT', 'rank', 'opd', 'forwardKL', 'opdRatio', 'forwardKLRatio'] as const) {
    if (!Array.isArray(b[k]) || b[k].length !== P) throw new Error(`${op}: ${at}.${k} must hold one number per position (${P}), got ${Array.isArray(b[k]) ? b[k].length : typeof b[k]}`);
  }
  if (P === 0) throw new Error(`${op}: ${at} has no positions (no token with A < 0)`);
  return P;
}

/** Every seed checked; the tracker methods and steps equal over seeds (or no tracker at all). Returns the seed count. */
function checkSeeds(op: string, seeds: readonly Fig2bSeed[]): number {
  if (!Array.isArray(seeds) || seeds.length === 0) throw new Error(`${op}: seeds must hold at least one seed's measurements, got ${Array.isArray(seeds) ? 0 : typeof seeds}`);
  const shape = (s: Fig2bSeed) => JSON.stringify(Object.keys(s.tracker ?? {}).sort().map((m) => [m, s.tracker![m].step]));
  seeds.forEach((s, i) => {
    check(op, s.blackHole, `seeds[${i}].blackHole`);
    const tr: Record<string, TrackerSeries> = s.tracker ?? {};
    for (const m of Object.keys(tr)) {
      const t = tr[m];
      if (!Array.isArray(t?.step)) throw new Error(`${op}: seeds[${i}].tracker.${m}.step must be an array of steps`);
      for (const k of ['pSTop', 'rankTop', 'fracTop1'] as const) {
        if (!Array.isArray(t[k]) || t[k].length !== t.step.length) throw new Error(`${op}: seeds[${i}].tracker.${m}.${k} must hold one number per step (${t.step.length})`);
      }
    }
    if (i > 0 && shape(s) !== shape(seeds[0])) throw new Error(`${op}: seeds[${i}].tracker has other methods or steps than seeds[0].tracker`);
  });
  return seeds.length;
}

/** The positions of every seed, concatenated field by field. */
export function pooledBlackHole(seeds: readonly Fig2bSeed[]): BlackHolePoints {
  const keys = ['advantage', 'pS', 'pT', 'rank', 'opd', 'forwardKL', 'opdRatio', 'forwardKLRatio'] as const;
  const out = Object.fromEntries(keys.map((k) => [k, seeds.flatMap((s) => s.blackHole[k])])) as unknown as BlackHolePoints;
  return out;
}

/**
 * Numbers C2 quotes for one seed (keys under c2/): mean promotion ratios, the forward-KL / OPD update ratio at v*
 * (median over positions, and over the low-prior positions pS(v*) < 0.01), the log-log slope of the OPD update
 * against pS(v*) (1 = proportional), and the tracker's first and last probe values per method, the change of
 * pS(teacher's top token) over training per method (last - first) and forward KL's last value minus OPD's (both
 * start from the same warm-up student, so per seed these are paired differences).
 */
export function c2SeedNumbers(input: Omit<Fig2bSeed, 'seed'>): Record<string, number> {
  const b = input.blackHole;
  const P = check('c2SeedNumbers', b);
  const idx = Array.from({ length: P }, (_, i) => i);
  const low = idx.filter((i) => b.pS[i] < 0.01);
  const ratio = (is: number[]) => median(is.filter((i) => b.opd[i] > 0).map((i) => b.forwardKL[i] / b.opd[i]));
  const out: Record<string, number> = {
    'c2/positions': P,
    'c2/ps_vstar_median': median(b.pS),
    'c2/pt_vstar_median': median(b.pT),
    'c2/rank_vstar_median': median(b.rank),
    'c2/advantage_median': median(b.advantage),
    'c2/opd_promotion_ratio_mean': mean(b.opdRatio),
    'c2/forward_kl_promotion_ratio_mean': mean(b.forwardKLRatio),
    'c2/opd_update_vstar_mean': mean(b.opd),
    'c2/forward_kl_update_vstar_mean': mean(b.forwardKL),
    'c2/fkl_over_opd_update_median': ratio(idx),
    'c2/low_prior_positions': low.length,
    'c2/low_prior_opd_update_mean': mean(low.map((i) => b.opd[i])),
    'c2/low_prior_forward_kl_update_mean': mean(low.map((i) => b.forwardKL[i])),
    'c2/low_prior_fkl_over_opd_update_median': ratio(low),
    'c2/opd_update_loglog_slope': logLogSlope(b.pS, b.opd),
    'c2/opd_update_over_abs_a_ps_median': median(idx.map((i) => b.opd[i] / (-b.advantage[i] * b.pS[i]))),
  };
  for (const [m, s] of Object.entries(input.tracker ?? {})) {
    const last = s.step.length - 1;
    if (last < 0) continue;
    out[`c2/tracker_${m}_steps`] = s.step[last];
    out[`c2/tracker_${m}_ps_top_first`] = s.pSTop[0];
    out[`c2/tracker_${m}_ps_top_last`] = s.pSTop[last];
    out[`c2/tracker_${m}_rank_top_first`] = s.rankTop[0];
    out[`c2/tracker_${m}_rank_top_last`] = s.rankTop[last];
    out[`c2/tracker_${m}_frac_top1_first`] = s.fracTop1[0];
    out[`c2/tracker_${m}_frac_top1_last`] = s.fracTop1[last];
    out[`c2/tracker_${m}_ps_top_change`] = s.pSTop[last] - s.pSTop[0];
    if (typeof s.pTTopMean === 'number') out['c2/tracker_pt_top_mean'] = s.pTTopMean;
  }
  const t = input.tracker;
  if (t?.opd?.step.length && t?.forwardKL?.step.length) {
    out['c2/tracker_forwardKL_minus_opd_ps_top_last'] = t.forwardKL.pSTop[t.forwardKL.step.length - 1] - t.opd.pSTop[t.opd.step.length - 1];
  }
  return out;
}

/**
 * Numbers C2 quotes (keys under c2/): `c2SeedNumbers` of every seed, then the mean over seeds under the same key
 * and the 95% CI half-width under key_ci95 (c2/tracker_<method>_steps as they are); plus c2/seeds and
 * c2/positions_total (all seeds' A < 0 positions).
 */
export function c2Numbers(input: Fig2bInput): Record<string, number> {
  checkSeeds('c2Numbers', input.seeds);
  const perSeed = input.seeds.map((s) => c2SeedNumbers(s));
  return {
    ...numbersOverSeeds('c2Numbers', perSeed, (k) => /^c2\/tracker_.*_steps$/.test(k)),
    'c2/seeds': perSeed.length,
    'c2/positions_total': perSeed.reduce((a, r) => a + r['c2/positions'], 0),
  };
}

function thin(P: number, max: number): number[] {
  if (P <= max) return Array.from({ length: P }, (_, i) => i);
  return Array.from({ length: max }, (_, j) => Math.floor((j * P) / max));
}

/** The Fig. 2b plotly spec (file header). */
export function fig2bExplorationBlackHole(input: Fig2bInput): PlotlyFigure {
  const op = 'fig2bExplorationBlackHole';
  const S = checkSeeds(op, input.seeds);
  const b = pooledBlackHole(input.seeds);
  const P = b.pS.length;
  const A = median(b.advantage);
  const pT = median(b.pT);
  const minPS = Math.max(1e-8, Math.min(...b.pS.filter((p) => p > 0)));
  const grid = logGrid(Math.min(1e-4, minPS / 2), 1, 61);
  const curves = blackHoleCurves({ pS_G: grid, advantage: A, pT });
  // log y-axis: a proportional update is a slope-1 line there; non-positive updates cannot be drawn (counted below)
  const pick = thin(P, input.maxPoints ?? 1500);
  const positive = (ys: readonly number[]) => pick.filter((i) => ys[i] > 0);
  const opdPick = positive(b.opd);
  const fklPick = positive(b.forwardKL);
  const dropped = { opd: b.opd.filter((v) => !(v > 0)).length, fkl: b.forwardKL.filter((v) => !(v > 0)).length };
  const tracker = Object.keys(input.seeds[0].tracker ?? {}).length > 0 ? input.seeds[0].tracker! : null;
  const xRight = tracker ? 0.55 : 1;
  const yPos = [...b.opd, ...b.forwardKL].filter((v) => v > 0);
  const yLo = Math.log10(Math.max(1e-8, Math.min(...yPos))) - 0.2;
  const yHi = Math.log10(Math.max(...yPos)) + 0.2;
  const data: PlotlyTrace[] = [
    { type: 'scatter', mode: 'lines', name: `${OPD.label}: -A·pS(v*)`, legendgroup: 'opd', x: Array.from(grid), y: Array.from(curves.opd_G), line: { color: OPD.colour, width: 2.5, dash: 'dash' } },
    { type: 'scatter', mode: 'lines', name: `${FKL.label}: pT(v*) - pS(v*)`, legendgroup: 'fkl', x: Array.from(grid), y: Array.from(curves.forwardKL_G), line: { color: FKL.colour, width: 2.5 } },
    { type: 'scatter', mode: 'markers', name: 'OPD, measured', legendgroup: 'opd', x: opdPick.map((i) => b.pS[i]), y: opdPick.map((i) => b.opd[i]), marker: { color: OPD.colour, size: 4, opacity: 0.45, symbol: 'circle-open' } },
    { type: 'scatter', mode: 'markers', name: 'forward KL, measured', legendgroup: 'fkl', x: fklPick.map((i) => b.pS[i]), y: fklPick.map((i) => b.forwardKL[i]), marker: { color: FKL.colour, size: 4, opacity: 0.45 } },
  ];
  const extra: Record<string, unknown> = {
    xaxis: { domain: [0, xRight], type: 'log', exponentformat: 'power', dtick: 1 },
    legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top', font: { size: 11 } },
    yaxis: { type: 'log', exponentformat: 'power', range: [yLo, yHi], dtick: 1 },
    margin: { l: 80, r: 20, t: 70, b: 150 },
    width: tracker ? 1000 : 720,
    height: 560,
    annotations: [
      { x: 0.01, y: 1.0, xref: 'paper', yref: 'paper', xanchor: 'left', yanchor: 'bottom', showarrow: false, font: { size: 11 },
        text: `lines at the measured medians A = ${A.toPrecision(3)}, pT(v*) = ${pT.toPrecision(3)}; points: ${P} positions with A < 0${S > 1 ? ` (${plural(S, 'seed')} pooled)` : ''} (Δz ≤ 0 not drawn on the log axis: OPD ${dropped.opd}, forward KL ${dropped.fkl})` },
    ],
  };
  if (tracker) {
    let j = 0;
    for (const [m, s] of Object.entries(tracker)) {
      const style = m === 'opd' ? OPD : m === 'forwardKL' ? FKL : { label: m, colour: seriesColour(j) };
      j++;
      const perSeed = input.seeds.map((x) => x.tracker![m].pSTop);
      data.push(...seriesBandTraces({ label: `${style.label}: pS(teacher top) on probes`, colour: style.colour, dash: m === 'opd' ? 'dash' : 'solid', group: `tracker-${m}` }, s.step, perSeed, { xaxis: 'x2', yaxis: 'y2' }));
    }
    // the teacher's level: per seed pTTopMean of the first method that has it, mean over the seeds
    const pTs = input.seeds.map((x) => Object.values(x.tracker ?? {}).find((t) => typeof t.pTTopMean === 'number')?.pTTopMean).filter((v): v is number => v !== undefined);
    const pTTop = pTs.length ? pTs.reduce((a, v) => a + v, 0) / pTs.length : undefined;
    const steps = Object.values(tracker).flatMap((s) => s.step);
    if (pTTop !== undefined && steps.length) {
      data.push({ type: 'scatter', mode: 'lines', name: "teacher: pT(its top token) on probes", xaxis: 'x2', yaxis: 'y2', x: [Math.min(...steps), Math.max(...steps)], y: [pTTop, pTTop], line: { color: '#222222', width: 1.5, dash: 'dot' } });
    }
    const ax = baseLayout({ xTitle: 'training step', yTitle: "mean pS(teacher's top token) on probes" }) as Record<string, Record<string, unknown>>;
    extra.xaxis2 = { ...ax.xaxis, domain: [0.7, 1], anchor: 'y2' };
    extra.yaxis2 = { ...ax.yaxis, anchor: 'x2', rangemode: 'tozero' };
  }
  return {
    data,
    layout: baseLayout({
      title: `Exploration black hole: update of the teacher-preferred unsampled token v* (AOPD Fig. 2b)${S > 1 ? `, ${plural(S, 'seed')}` : ''}`,
      yLog: true,
      xTitle: 'student prior pS(v*) (log axis)',
      yTitle: 'update of v* per unit step, Δz = -step ∂L/∂z',
      xLog: true,
      extra,
    }),
  };
}
