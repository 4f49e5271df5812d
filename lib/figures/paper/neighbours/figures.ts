/**
 * The neighbours' figures (claims C14-C18), drawn from data/figures/neighbours.json (data.ts) only:
 *
 *   opdplusBias          C14  OPD+ (Zhao et al. 2026): cosine and relative error of the exact expected surrogate
 *                             gradient against the true gradient of D_f, per divergence and weight (parameter space;
 *                             bars = mean over seeds, error bars = 95% CI); pass@1 over training of the unbiased
 *                             and stop-gradient forward-KL / JSD arms against OPD
 *   revisitingVariance   C15  Revisiting OPD (Fu et al. 2026): total variance of the token-level (gamma 0) and
 *                             sequence-level (gamma 1) gradient estimators, gamma 0's squared bias, the squared
 *                             norms of the means; pass@1 over training of top-K reverse KL with top-p 0.9 rollouts,
 *                             OPD with the same rollouts, and OPD
 *   scopeVsOpd           C16  SCOPE (Zheng et al. 2026): avg@8 (= pass@1 from 8 samples) and pass@8 over training
 *   gopdRewardScale      C17  G-OPD (Yang et al. 2026): pass@1 of ExOPD (lambda 1.25) against OPD; the per-token
 *                             reward lambda (log pT - log pRef) under three reference models (histograms)
 *   propsSamplingError   C18  PROPS (Corrado & Hanna): sampling error KL(pi_D || pi_theta) of on-policy and PROPS
 *                             batches; pass@1 over training of OPD with and without the PROPS behaviour policy
 *
 * Curves: line = mean over seeds, band = min to max over seeds. Intervals: 95% CI half-width of the mean over seeds,
 * t_{0.975, n-1} s / sqrt(n) (seedStats); paired differences between arms use the same seed's warm-up student.
 * `<claim>Numbers` return the numbers FINDINGS.md quotes (keys c14/..c18/, each with a _ci95 twin).
 */
import { baseLayout, methodStyle, type PlotlyFigure, type PlotlyTrace } from '../../theme';
import { seedBand, seedStats, type MethodCurves } from '../generateDynamics';
import type { NeighboursData } from './data';
import type { GopdRef, OpdplusWeightLabel, PropsArm } from './simulate';

export interface NeighbourArmStyle {
  label: string;
  colour: string;
  dash: string;
}

/** Each training arm's look (method colours from the theme; variants of one method differ by dash). */
export const NEIGHBOUR_ARM_STYLES: Readonly<Record<string, NeighbourArmStyle>> = {
  opd: { label: 'OPD', colour: methodStyle('opd').colour, dash: 'dash' },
  'opdplus-fkl': { label: 'OPD+ forward KL (unbiased)', colour: methodStyle('opdplus').colour, dash: 'solid' },
  'opdplus-fkl-stopgrad': { label: 'forward KL, stop-gradient', colour: '#CC79A7', dash: 'dot' },
  'opdplus-jsd': { label: 'OPD+ JSD (unbiased)', colour: '#0072B2', dash: 'solid' },
  'opdplus-jsd-stopgrad': { label: 'JSD, stop-gradient', colour: '#56B4E9', dash: 'dot' },
  'topk-rkl-topp0.9': { label: 'Top-K RKL, top-p 0.9', colour: methodStyle('topk-rkl').colour, dash: 'solid' },
  'opd-topp0.9': { label: 'OPD, top-p 0.9', colour: '#E69F00', dash: 'dot' },
  scope: { label: 'SCOPE', colour: methodStyle('scope').colour, dash: 'solid' },
  'exopd-lambda1.25': { label: 'ExOPD (λ = 1.25)', colour: methodStyle('gopd').colour, dash: 'solid' },
  'opd-props': { label: 'OPD + PROPS sampling', colour: '#D55E00', dash: 'solid' },
};

export function neighbourArmStyle(arm: string): NeighbourArmStyle {
  const s = NEIGHBOUR_ARM_STYLES[arm];
  if (!s) throw new Error(`neighbours figure: unknown arm '${arm}'; known: ${Object.keys(NEIGHBOUR_ARM_STYLES).join(', ')}`);
  return s;
}

const DIV_LABELS: Record<string, string> = { reverseKL: 'reverse KL', forwardKL: 'forward KL', jsd: 'JSD (½)' };
const WEIGHT_STYLES: Record<OpdplusWeightLabel, { label: string; colour: string }> = {
  stopGrad: { label: 'stop-gradient weight −f(u)', colour: '#CC79A7' },
  unbiased: { label: 'OPD+ weight −f(u) + u f′(u)', colour: '#7E2F8E' },
  unbiasedClamp6: { label: 'OPD+ weight, log u clamped to ±6', colour: '#009E73' },
};
const REF_STYLES: Record<GopdRef, { label: string; colour: string }> = {
  warmupStudent: { label: 'warm-up student (G-OPD default)', colour: '#555555' },
  teacherBase: { label: "teacher's base (reward correction)", colour: '#009E73' },
  untrainedStudent: { label: 'untrained student', colour: '#D55E00' },
};
const PROPS_STYLES: Record<PropsArm, { label: string; colour: string }> = {
  onPolicy: { label: 'on-policy sampling', colour: '#555555' },
  propsContext: { label: 'PROPS, per context (training default)', colour: '#D55E00' },
  propsBatch: { label: 'PROPS, one state per batch', colour: '#E69F00' },
};

function rgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

interface Axes { xaxis?: string; yaxis?: string; showlegend?: boolean }

/** Band (min to max over seeds) and mean line of one arm. */
export function neighbourBandTraces(arm: string, x: readonly number[], perSeed: readonly (readonly number[])[], axes: Axes = {}): PlotlyTrace[] {
  const b = seedBand(perSeed);
  const s = neighbourArmStyle(arm);
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  return [
    { type: 'scatter', mode: 'lines', name: `${s.label} max over seeds`, legendgroup: arm, x: [...x], y: b.max, line: { width: 0, color: s.colour }, showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${s.label} min over seeds`, legendgroup: arm, x: [...x], y: b.min, line: { width: 0, color: s.colour }, fill: 'tonexty', fillcolor: rgba(s.colour, 0.15), showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines+markers', name: `${s.label} (mean of ${perSeed.length} seeds)`, legendgroup: arm, x: [...x], y: b.mean, line: { width: 2, dash: s.dash, color: s.colour }, marker: { size: 5, color: s.colour }, showlegend: axes.showlegend ?? true, ...ax },
  ];
}

function bar(name: string, colour: string, x: string[], values: number[][], axes: Axes = {}): PlotlyTrace {
  const stats = values.map(seedStats);
  return {
    type: 'bar', name, x, y: stats.map((s) => s.mean), marker: { color: colour },
    error_y: { type: 'data', array: stats.map((s) => s.ci95), visible: true, color: '#222222', thickness: 1.2, width: 4 },
    legendgroup: name, showlegend: axes.showlegend ?? true,
    ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}),
  };
}

/** Side-by-side panels: layout axes xaxis..xaxisK / yaxis..yaxisK with titles (panel i anchored to its y axis). */
function panelLayout(title: string, panels: { x: string; y: string; yLog?: boolean; yRange?: number[]; xType?: string }[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const base = baseLayout({ title });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const gap = 0.08;
  const w = (1 - gap * (panels.length - 1)) / panels.length;
  const layout: Record<string, unknown> = { ...base, barmode: 'group', legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' }, margin: { l: 80, r: 20, t: 100, b: 170 }, width: 540 * panels.length, height: 580 };
  panels.forEach((p, i) => {
    const k = i === 0 ? '' : String(i + 1);
    layout[`xaxis${k}`] = { ...ax, domain: [i * (w + gap), i * (w + gap) + w], anchor: `y${k}`, title: { text: p.x }, tickangle: 0, ...(p.xType ? { type: p.xType } : {}) };
    layout[`yaxis${k}`] = { ...ay, anchor: `x${k}`, title: { text: p.y }, type: p.yLog ? 'log' : '-', ...(p.yRange ? { range: p.yRange } : { rangemode: p.yLog ? undefined : 'tozero' }) };
  });
  return { ...layout, ...extra };
}

const final = (c: MethodCurves, k: 'pass1' | 'pass4' | 'pass8' = 'pass1') => c[k].map((s) => s[s.length - 1]);

function requireArms(d: NeighboursData, arms: string[], figure: string): void {
  for (const a of arms) if (!d.runs[a]) throw new Error(`${figure}: the data file has no runs of arm '${a}' (specs/neighbours.json); regenerate it`);
}

function put(out: Record<string, number>, key: string, values: number[]): void {
  const s = seedStats(values);
  out[key] = s.mean;
  out[`${key}_ci95`] = s.ci95;
}

/** Per-seed differences a - b of the final pass@k, paired by seed. */
export function pairedFinalDiff(a: MethodCurves, b: MethodCurves, k: 'pass1' | 'pass8' = 'pass1'): number[] {
  const fb = final(b, k);
  return final(a, k).map((x, i) => {
    const j = b.seeds.indexOf(a.seeds[i]);
    if (j < 0) throw new Error(`pairedFinalDiff: seed ${a.seeds[i]} has no run in the other arm`);
    return x - fb[j];
  });
}

function trainingNumbers(out: Record<string, number>, claim: string, d: NeighboursData, arms: string[]): void {
  for (const a of arms) {
    put(out, `${claim}/pass1_final_${a}`, final(d.runs[a]));
    put(out, `${claim}/pass8_final_${a}`, final(d.runs[a], 'pass8'));
  }
  out[`${claim}/pass1_initial`] = seedStats(d.runs[arms[0]].pass1.map((s) => s[0])).mean;
}

// ---------------------------------------------------------------------------------------------------------- C14

const C14_ARMS = ['opd', 'opdplus-fkl', 'opdplus-fkl-stopgrad', 'opdplus-jsd', 'opdplus-jsd-stopgrad'];

export function c14Numbers(d: NeighboursData): Record<string, number> {
  const out: Record<string, number> = {};
  const sim = d.simulation;
  for (const div of sim.divergences) {
    for (const w of sim.weights as OpdplusWeightLabel[]) {
      const pts = sim.seeds.map((s) => s.opdplus[div][w]);
      put(out, `c14/cos_param_${div}_${w}`, pts.map((p) => p.cosParam));
      put(out, `c14/relerr_param_${div}_${w}`, pts.map((p) => p.relParam));
      put(out, `c14/cos_logit_${div}_${w}`, pts.map((p) => p.cosLogit));
      put(out, `c14/relerr_logit_${div}_${w}`, pts.map((p) => p.relLogit));
    }
  }
  requireArms(d, C14_ARMS, 'opdplusBias');
  trainingNumbers(out, 'c14', d, C14_ARMS);
  put(out, 'c14/pass1_diff_fkl_unbiased_minus_stopgrad', pairedFinalDiff(d.runs['opdplus-fkl'], d.runs['opdplus-fkl-stopgrad']));
  put(out, 'c14/pass1_diff_jsd_unbiased_minus_stopgrad', pairedFinalDiff(d.runs['opdplus-jsd'], d.runs['opdplus-jsd-stopgrad']));
  return out;
}

/** C14 figure (file header). */
export function opdplusBias(d: NeighboursData): PlotlyFigure {
  requireArms(d, C14_ARMS, 'opdplusBias');
  const sim = d.simulation;
  const x = sim.divergences.map((v) => DIV_LABELS[v] ?? v);
  const data: PlotlyTrace[] = [];
  for (const w of sim.weights as OpdplusWeightLabel[]) {
    const st = WEIGHT_STYLES[w];
    data.push(bar(st.label, st.colour, x, sim.divergences.map((div) => sim.seeds.map((s) => s.opdplus[div][w].cosParam))));
    data.push(bar(st.label, st.colour, x, sim.divergences.map((div) => sim.seeds.map((s) => s.opdplus[div][w].relParam)), { xaxis: 'x2', yaxis: 'y2', showlegend: false }));
  }
  for (const a of C14_ARMS) data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass1, { xaxis: 'x3', yaxis: 'y3' }));
  const n = sim.seeds.length;
  return {
    data,
    layout: panelLayout(`OPD+ (C14): is the stop-gradient advantage biased?<br><sub>exact expected surrogate gradient E[g_sur] vs the true gradient g of D_f, parameter space, ${n} seed(s)' warm-up students (bars: mean, 95% CI over seeds)<br>training: line = mean, band = min to max over seeds</sub>`, [
      { x: 'divergence', y: 'cosine to the true gradient', yRange: [-1.1, 1.1] },
      { x: 'divergence', y: 'relative error ‖E[g_sur] − g‖ / ‖g‖', yLog: true },
      { x: 'training step', y: 'pass@1 (held-out math)' },
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------------- C15

const C15_ARMS = ['opd', 'opd-topp0.9', 'topk-rkl-topp0.9'];

export function c15Numbers(d: NeighboursData): Record<string, number> {
  const out: Record<string, number> = {};
  const v = d.simulation.seeds.map((s) => s.variance);
  put(out, 'c15/var_tok', v.map((x) => x.varTok));
  put(out, 'c15/var_seq', v.map((x) => x.varSeq));
  put(out, 'c15/var_ratio_seq_over_tok', v.map((x) => x.varSeq / x.varTok));
  put(out, 'c15/mean_normsq_tok', v.map((x) => x.meanNormSqTok));
  put(out, 'c15/mean_normsq_seq', v.map((x) => x.meanNormSqSeq));
  put(out, 'c15/bias_sq_tok', v.map((x) => x.biasSqTok));
  put(out, 'c15/bias_noise_sq', v.map((x) => x.biasNoiseSq));
  put(out, 'c15/bias_rel_tok', v.map((x) => Math.sqrt(Math.max(0, x.biasSqTok) / x.meanNormSqSeq)));
  put(out, 'c15/cos_means', v.map((x) => x.cosMeans));
  // single-batch mean squared error against E[gamma 1]: gamma 0 = bias^2 + var, gamma 1 = var
  put(out, 'c15/mse_ratio_tok_over_seq', v.map((x) => (Math.max(0, x.biasSqTok) + x.varTok) / x.varSeq));
  put(out, 'c15/noise_to_signal_tok', v.map((x) => x.varTok / x.meanNormSqTok));
  put(out, 'c15/noise_to_signal_seq', v.map((x) => x.varSeq / x.meanNormSqSeq));
  out['c15/batches'] = v[0].batches;
  requireArms(d, C15_ARMS, 'revisitingVariance');
  trainingNumbers(out, 'c15', d, C15_ARMS);
  put(out, 'c15/pass1_diff_topk_minus_opd_topp', pairedFinalDiff(d.runs['topk-rkl-topp0.9'], d.runs['opd-topp0.9']));
  put(out, 'c15/pass1_diff_topk_minus_opd', pairedFinalDiff(d.runs['topk-rkl-topp0.9'], d.runs.opd));
  return out;
}

/** C15 figure (file header). */
export function revisitingVariance(d: NeighboursData): PlotlyFigure {
  requireArms(d, C15_ARMS, 'revisitingVariance');
  const v = d.simulation.seeds.map((s) => s.variance);
  const x = ['variance tr Cov', 'bias² vs E[γ = 1]', '‖mean‖²'];
  const data: PlotlyTrace[] = [
    bar('token-level OPD (γ = 0)', '#555555', x, [v.map((s) => s.varTok), v.map((s) => Math.max(0, s.biasSqTok)), v.map((s) => s.meanNormSqTok)]),
    bar('sequence-level reverse KL (γ = 1)', '#8C564B', x, [v.map((s) => s.varSeq), v.map(() => NaN), v.map((s) => s.meanNormSqSeq)]),
    bar('noise floor of the bias estimate, tr Cov(γ0 − γ1) / M', '#BBBBBB', x, [v.map(() => NaN), v.map((s) => s.biasNoiseSq), v.map(() => NaN)]),
  ];
  for (const a of C15_ARMS) data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass1, { xaxis: 'x2', yaxis: 'y2' }));
  return {
    data,
    layout: panelLayout(`Revisiting OPD (C15): token-level vs sequence-level gradient estimator<br><sub>parameter gradients over ${v[0].batches} rollout batches of one prompt set per seed (bars: mean, 95% CI over ${v.length} seed(s))<br>training: line = mean, band = min to max over seeds</sub>`, [
      { x: '', y: 'squared norm (per-sequence gradient)', yLog: true },
      { x: 'training step', y: 'pass@1 (held-out math)' },
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------------- C16

const C16_ARMS = ['opd', 'scope'];

export function c16Numbers(d: NeighboursData): Record<string, number> {
  requireArms(d, C16_ARMS, 'scopeVsOpd');
  const out: Record<string, number> = {};
  trainingNumbers(out, 'c16', d, C16_ARMS);
  put(out, 'c16/pass1_diff_scope_minus_opd', pairedFinalDiff(d.runs.scope, d.runs.opd));
  put(out, 'c16/pass8_diff_scope_minus_opd', pairedFinalDiff(d.runs.scope, d.runs.opd, 'pass8'));
  // the mean over the evaluations of the second half, a steadier summary than the last point
  const late = (c: MethodCurves) => c.pass1.map((s) => { const h = s.slice(Math.floor(s.length / 2)); return h.reduce((a, b) => a + b, 0) / h.length; });
  put(out, 'c16/pass1_late_mean_scope', late(d.runs.scope));
  put(out, 'c16/pass1_late_mean_opd', late(d.runs.opd));
  return out;
}

/** C16 figure (file header). */
export function scopeVsOpd(d: NeighboursData): PlotlyFigure {
  requireArms(d, C16_ARMS, 'scopeVsOpd');
  const data: PlotlyTrace[] = [];
  for (const a of C16_ARMS) {
    data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass1));
    data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass8, { xaxis: 'x2', yaxis: 'y2', showlegend: false }));
  }
  return {
    data,
    layout: panelLayout(`SCOPE vs OPD (C16)<br><sub>avg@8 = mean accuracy of 8 samples per held-out prompt<br>line = mean, band = min to max over ${d.runs.opd.seeds.length} seed(s)</sub>`, [
      { x: 'training step', y: 'avg@8 = pass@1 (held-out math)' },
      { x: 'training step', y: 'pass@8 (held-out math)' },
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------------- C17

const C17_ARMS = ['opd', 'exopd-lambda1.25'];

export function c17Numbers(d: NeighboursData): Record<string, number> {
  requireArms(d, C17_ARMS, 'gopdRewardScale');
  const out: Record<string, number> = {};
  trainingNumbers(out, 'c17', d, C17_ARMS);
  put(out, 'c17/pass1_diff_exopd_minus_opd', pairedFinalDiff(d.runs['exopd-lambda1.25'], d.runs.opd));
  const g = d.simulation.seeds.map((s) => s.gopd);
  for (const r of d.simulation.refs as GopdRef[]) {
    put(out, `c17/reward_mean_${r}`, g.map((x) => x.rewardMean[r]));
    put(out, `c17/reward_std_${r}`, g.map((x) => x.rewardStd[r]));
    put(out, `c17/adv_mean_${r}`, g.map((x) => x.advMean[r]));
    put(out, `c17/adv_neg_share_${r}`, g.map((x) => x.advNegShare[r]));
    put(out, `c17/sign_flip_${r}`, g.map((x) => x.signFlip[r]));
  }
  out['c17/lambda'] = d.simulation.lambda;
  return out;
}

/** C17 figure (file header). */
export function gopdRewardScale(d: NeighboursData): PlotlyFigure {
  requireArms(d, C17_ARMS, 'gopdRewardScale');
  const data: PlotlyTrace[] = [];
  for (const a of C17_ARMS) data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass1));
  const e = d.simulation.rewardEdges;
  const mids = e.slice(0, -1).map((x, i) => (x + e[i + 1]) / 2);
  for (const r of d.simulation.refs as GopdRef[]) {
    const counts = mids.map((_, i) => d.simulation.seeds.reduce((a, s) => a + s.gopd.histogram[r][i], 0));
    const total = counts.reduce((a, b) => a + b, 0);
    data.push({ type: 'scatter', mode: 'lines', line: { shape: 'hvh', width: 2, color: REF_STYLES[r].colour }, name: `reward, reference: ${REF_STYLES[r].label}`, x: mids, y: counts.map((c) => (total > 0 ? c / total : 0)), xaxis: 'x2', yaxis: 'y2' });
  }
  return {
    data,
    layout: panelLayout(`G-OPD (C17): reward scale λ = ${d.simulation.lambda} and the reference model<br><sub>left: line = mean, band = min to max over seeds<br>right: per-token reward λ (log pT − log pRef) on the warm-up students' rollouts, all seeds (end bins hold the tails)</sub>`, [
      { x: 'training step', y: 'pass@1 (held-out math)' },
      { x: 'reward λ (log pT(y) − log pRef(y))', y: 'share of tokens (bin width 0.5)', yLog: true },
    ]),
  };
}

// ---------------------------------------------------------------------------------------------------------- C18

const C18_ARMS = ['opd', 'opd-props'];

export function c18Numbers(d: NeighboursData): Record<string, number> {
  requireArms(d, C18_ARMS, 'propsSamplingError');
  const out: Record<string, number> = {};
  const p = d.simulation.seeds.map((s) => s.props);
  for (const a of d.simulation.propsArms as PropsArm[]) {
    put(out, `c18/kl_context_${a}`, p.map((x) => x[a].kl));
    put(out, `c18/kl_shared_${a}`, p.map((x) => x[a].klShared));
    put(out, `c18/kl_marginal_${a}`, p.map((x) => x[a].klMarginal));
    put(out, `c18/tv_shared_${a}`, p.map((x) => x[a].tvShared));
    put(out, `c18/shared_token_share_${a}`, p.map((x) => x[a].sharedTokenShare));
  }
  put(out, 'c18/kl_shared_ratio_propsContext_over_onPolicy', p.map((x) => x.propsContext.klShared / x.onPolicy.klShared));
  put(out, 'c18/kl_marginal_ratio_propsBatch_over_onPolicy', p.map((x) => x.propsBatch.klMarginal / x.onPolicy.klMarginal));
  trainingNumbers(out, 'c18', d, C18_ARMS);
  put(out, 'c18/pass1_diff_props_minus_opd', pairedFinalDiff(d.runs['opd-props'], d.runs.opd));
  return out;
}

/** C18 figure (file header). */
export function propsSamplingError(d: NeighboursData): PlotlyFigure {
  requireArms(d, C18_ARMS, 'propsSamplingError');
  const p = d.simulation.seeds.map((s) => s.props);
  const x = ['all contexts', 'shared contexts', 'batch marginal'];
  const data: PlotlyTrace[] = (d.simulation.propsArms as PropsArm[]).map((a) => bar(PROPS_STYLES[a].label, PROPS_STYLES[a].colour, x, [p.map((s) => s[a].kl), p.map((s) => s[a].klShared), p.map((s) => s[a].klMarginal)]));
  for (const a of C18_ARMS) data.push(...neighbourBandTraces(a, d.runs[a].evalStep, d.runs[a].pass1, { xaxis: 'x2', yaxis: 'y2' }));
  return {
    data,
    layout: panelLayout(`PROPS (C18): sampling error of the collected tokens<br><sub>KL(π_D ‖ π_θ), π_D = the count MLE per state (PROPS' definition); mean over batches, 95% CI over ${p.length} seed(s)<br>training: line = mean, band = min to max over seeds</sub>`, [
      { x: 'state', y: 'sampling error KL(π_D ‖ π_θ) (nats)' },
      { x: 'training step', y: 'pass@1 (held-out math)' },
    ]),
  };
}
