/**
 * The figures of initialisation strength and continual learning (claims C3, C8, C9), drawn from
 * data/figures/initcontinual.json (./data.ts), and the numbers FINDINGS.md quotes from them.
 *
 *   fig2cWarmupStrength      C3  AOPD Fig. 2c: left, OPD's math pass@1 over distillation after the weak and the strong
 *                                warm-up (specs/init.json); right, tool pass@1 over the whole continual run (math stage,
 *                                then the tool stage after the dashed line) for OPD from each warm-up (specs/continual.json)
 *   table1InitStrength       C8  AOPD Table 1: final (step 100) math pass@1 / pass@4 / pass@8 per method, weak vs strong
 *                                warm-up, as grouped bars with 95% CI error bars (one panel per k)
 *   fig10WeakInitCurves      C8  AOPD Fig. 10: pass@1 over distillation per method, weak warm-up (left) and strong (right)
 *   table2ContinualLearning  C9  AOPD Table 2: per method, math pass@1 at the end of the math stage (step S) and after the
 *                                tool stage (S + C), and tool pass@1 at the same two points, grouped bars with 95% CIs
 *
 * Curves: line = mean over seeds, band = min to max over seeds. Intervals: 95% CI half-width of the mean over seeds,
 * t_{0.975, n-1} s / sqrt(n) (`seedStats`); NaN with one seed (quick mode), drawn as no error bar. Differences
 * (gain = final - initial, drop = before - after, AOPD - OPD) are taken per seed first (the arms of a seed share
 * the warm-up student), then averaged.
 */
import { baseLayout, methodStyle, seriesColour, type PlotlyFigure, type PlotlyTrace } from '../../theme';
import { seedBand, seedStats } from '../generateDynamics';
import { CONTINUAL_ARMS, INIT_METHODS, INIT_WARMUPS, type ContinualArm, type InitArm, type InitContinualData } from './data';

export interface IcArmStyle {
  label: string;
  colour: string;
  dash: string;
  symbol: string;
}

/** Style of an arm label: a registry method, 'exopd' (G-OPD's colour) or 'opd-weak' (OPD's colour, dotted). */
export function icArmStyle(arm: string): IcArmStyle {
  if (arm === 'exopd') return { ...methodStyle('gopd'), label: 'ExOPD (G-OPD λ 1.25)' };
  if (arm === 'opd-weak') return { ...methodStyle('opd'), label: 'OPD, weak warm-up', dash: 'dot' };
  return { ...methodStyle(arm) };
}

const WARMUP_LABEL: Record<string, string> = { weak: 'weak warm-up', strong: 'strong warm-up' };
const warmupLabel = (w: string, steps?: number): string => `${WARMUP_LABEL[w] ?? w}${steps !== undefined ? ` (${steps} SFT steps)` : ''}`;
const warmupColour = (w: string): string => seriesColour(w === 'weak' ? 1 : 0);

function rgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

const finite = (xs: number[]): (number | null)[] => xs.map((x) => (Number.isFinite(x) ? x : null));

/** Band (max, then min filled to it) and mean line of per-seed series. */
export function seedBandTraces(label: string, style: { colour: string; dash: string }, x: readonly number[], perSeed: readonly (readonly number[])[], axes: { xaxis?: string; yaxis?: string; showlegend?: boolean; group?: string } = {}): PlotlyTrace[] {
  const b = seedBand(perSeed);
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  const group = axes.group ?? label;
  return [
    { type: 'scatter', mode: 'lines', name: `${label} max over seeds`, legendgroup: group, x: [...x], y: b.max, line: { width: 0, color: style.colour }, showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${label} min over seeds`, legendgroup: group, x: [...x], y: b.min, line: { width: 0, color: style.colour }, fill: 'tonexty', fillcolor: rgba(style.colour, 0.15), showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines+markers', name: `${label} (mean of ${perSeed.length} seeds)`, legendgroup: group, x: [...x], y: b.mean, line: { width: 2, color: style.colour, dash: style.dash }, marker: { size: 5, color: style.colour }, showlegend: axes.showlegend ?? true, ...ax },
  ];
}

/** Methods of a warm-up in the fixed order opd, exopd, gkd, aopd, then the rest. */
function orderedArms(names: string[], order: readonly string[]): string[] {
  return [...order.filter((m) => names.includes(m)), ...names.filter((m) => !order.includes(m))];
}

function warmups(d: Pick<InitContinualData, 'init'>): string[] {
  return orderedArms(Object.keys(d.init), INIT_WARMUPS);
}

const last = (s: readonly number[]): number => s[s.length - 1];

function put(out: Record<string, number>, key: string, values: number[]): void {
  const s = seedStats(values);
  out[key] = s.mean;
  out[`${key}_ci95`] = s.ci95;
}

/** Value of each seed's series at evaluation step `step` (throws when the step was not evaluated). */
export function atStep(steps: readonly number[], perSeed: readonly (readonly number[])[], step: number, where: string): number[] {
  const i = steps.indexOf(step);
  if (i < 0) throw new Error(`${where}: no evaluation at step ${step} (steps ${steps.join(',')})`);
  return perSeed.map((s) => s[i]);
}

/** The paired per-seed difference a - b (same seeds in the same order). */
function paired(a: number[], b: number[], seedsA: number[], seedsB: number[], where: string): number[] {
  if (seedsA.join() !== seedsB.join()) throw new Error(`${where}: the arms have different seeds (${seedsA.join(',')} vs ${seedsB.join(',')})`);
  return a.map((x, i) => x - b[i]);
}

// ---------------------------------------------------------------------------------------------------------------
// C8: Table 1 and Fig. 10

/** Numbers C8 quotes for the weak / strong comparison (keys c8/init_<warmup>_*). */
export function c8InitNumbers(d: Pick<InitContinualData, 'init'>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of warmups(d)) {
    const arms = d.init[w];
    for (const m of orderedArms(Object.keys(arms), INIT_METHODS)) {
      const a = arms[m];
      for (const k of ['pass1', 'pass4', 'pass8'] as const) put(out, `c8/init_${w}_${k}_final_${m}`, a[k].map(last));
      put(out, `c8/init_${w}_pass1_gain_${m}`, a.pass1.map((s) => last(s) - s[0]));
      const band = seedBand(a.pass1);
      const min = Math.min(...band.mean);
      out[`c8/init_${w}_pass1_initial_${m}`] = band.mean[0];
      out[`c8/init_${w}_pass1_min_${m}`] = min;
      out[`c8/init_${w}_pass1_min_step_${m}`] = a.evalStep[band.mean.indexOf(min)];
      out[`c8/init_${w}_pass1_dip_${m}`] = band.mean[0] - min;
    }
    if (arms.aopd && arms.opd) put(out, `c8/init_${w}_pass1_aopd_minus_opd`, paired(arms.aopd.pass1.map(last), arms.opd.pass1.map(last), arms.aopd.seeds, arms.opd.seeds, `c8 ${w}`));
  }
  return out;
}

function panelDomains(n: number, gap = 0.07): [number, number][] {
  const w = (1 - gap * (n - 1)) / n;
  return Array.from({ length: n }, (_, i) => [i * (w + gap), i * (w + gap) + w] as [number, number]);
}

/** Table 1 as grouped bars (file header). */
export function table1InitStrength(d: Pick<InitContinualData, 'init'>): PlotlyFigure {
  const ws = warmups(d);
  const methods = orderedArms([...new Set(ws.flatMap((w) => Object.keys(d.init[w])))], INIT_METHODS);
  const labels = methods.map((m) => icArmStyle(m).label);
  const ks = [1, 4, 8] as const;
  const doms = panelDomains(ks.length);
  const data: PlotlyTrace[] = [];
  ks.forEach((k, p) => {
    const axes = p === 0 ? {} : { xaxis: `x${p + 1}`, yaxis: `y${p + 1}` };
    for (const w of ws) {
      const stats = methods.map((m) => (d.init[w][m] ? seedStats(d.init[w][m][`pass${k}`].map(last)) : null));
      const n = Math.min(...methods.filter((m) => d.init[w][m]).map((m) => d.init[w][m].seeds.length));
      const steps = Object.values(d.init[w])[0].warmupSteps;
      data.push({
        type: 'bar',
        name: `${warmupLabel(w, steps)}, mean of ${n} seeds`,
        legendgroup: w,
        showlegend: p === 0,
        x: labels,
        y: stats.map((s) => (s ? s.mean : null)),
        error_y: { type: 'data', array: finite(stats.map((s) => (s ? s.ci95 : NaN))), visible: true, color: '#333333', thickness: 1.2, width: 4 },
        marker: { color: warmupColour(w) },
        ...axes,
      });
    }
  });
  const base = baseLayout({ title: 'Final math accuracy by initialisation strength (AOPD Table 1)<br><sub>bars: mean over seeds at the last step; error bars: 95% CI of the mean</sub>', yTitle: 'pass@1 (held-out math)' });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const layout: Record<string, unknown> = { ...base, barmode: 'group', bargap: 0.25, width: 1000, height: 460, margin: { l: 70, r: 20, t: 80, b: 110 }, legend: { orientation: 'h', x: 0, y: -0.2, xanchor: 'left', yanchor: 'top' } };
  ks.forEach((k, p) => {
    const sx = p === 0 ? '' : String(p + 1);
    layout[`xaxis${sx}`] = { ...ax, domain: doms[p], anchor: `y${sx}`, title: { text: '' } };
    layout[`yaxis${sx}`] = { ...ay, anchor: `x${sx}`, rangemode: 'tozero', title: { text: `pass@${k} (held-out math)` } };
  });
  return { data, layout };
}

/** Fig. 10: pass@1 curves per method, one panel per warm-up (file header). */
export function fig10WeakInitCurves(d: Pick<InitContinualData, 'init'>): PlotlyFigure {
  const ws = warmups(d);
  const doms = panelDomains(ws.length, 0.1);
  const data: PlotlyTrace[] = [];
  ws.forEach((w, p) => {
    const axes = p === 0 ? {} : { xaxis: `x${p + 1}`, yaxis: `y${p + 1}` };
    for (const m of orderedArms(Object.keys(d.init[w]), INIT_METHODS)) {
      const a = d.init[w][m];
      const s = icArmStyle(m);
      data.push(...seedBandTraces(s.label, s, a.evalStep, a.pass1, { ...axes, showlegend: p === 0, group: m }));
    }
  });
  const n = Math.min(...ws.flatMap((w) => Object.values(d.init[w]).map((a) => a.seeds.length)));
  const base = baseLayout({ title: `Accuracy over distillation by initialisation (AOPD Fig. 10)<br><sub>line: mean over ${n} seeds; band: min to max over seeds</sub>`, xTitle: 'distillation step' });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const layout: Record<string, unknown> = { ...base, width: 960, height: 480, margin: { l: 70, r: 20, t: 80, b: 130 }, legend: { orientation: 'h', x: 0, y: -0.25, xanchor: 'left', yanchor: 'top' } };
  ws.forEach((w, p) => {
    const sx = p === 0 ? '' : String(p + 1);
    const steps = Object.values(d.init[w])[0].warmupSteps;
    layout[`xaxis${sx}`] = { ...ax, domain: doms[p], anchor: `y${sx}`, title: { text: `distillation step — ${warmupLabel(w, steps)}` } };
    // one y range for both panels, so a floor at 0 after the weak warm-up is not blown up to fill its panel
    layout[`yaxis${sx}`] = { ...ay, anchor: `x${sx}`, rangemode: 'tozero', ...(p > 0 ? { matches: 'y' } : {}), title: { text: p === 0 ? 'pass@1 (held-out math)' : '' } };
  });
  return { data, layout };
}

// ---------------------------------------------------------------------------------------------------------------
// C9: Table 2

/** The points of a continual arm: step 0, the end of the math stage S, the end of the tool stage S + C. */
export function continualPoints(a: ContinualArm, where: string) {
  const S = a.distillSteps;
  const end = S + a.continualSteps;
  return {
    mathStart: atStep(a.mathStep, a.mathPass1, 0, `${where} math`),
    mathBefore: atStep(a.mathStep, a.mathPass1, S, `${where} math`),
    mathAfter: atStep(a.mathStep, a.mathPass1, end, `${where} math`),
    math8Before: atStep(a.mathStep, a.mathPass8, S, `${where} math`),
    math8After: atStep(a.mathStep, a.mathPass8, end, `${where} math`),
    toolStart: atStep(a.toolStep, a.toolPass1, 0, `${where} tool`),
    toolBefore: atStep(a.toolStep, a.toolPass1, S, `${where} tool`),
    toolAfter: atStep(a.toolStep, a.toolPass1, end, `${where} tool`),
  };
}

/** Numbers C9 quotes (keys c9/*, one set per continual arm). */
export function c9Numbers(d: Pick<InitContinualData, 'continual'>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const arm of orderedArms(Object.keys(d.continual), CONTINUAL_ARMS)) {
    const p = continualPoints(d.continual[arm], `c9 ${arm}`);
    put(out, `c9/math_pass1_start_${arm}`, p.mathStart);
    put(out, `c9/math_pass1_before_${arm}`, p.mathBefore);
    put(out, `c9/math_pass1_after_${arm}`, p.mathAfter);
    put(out, `c9/math_pass1_drop_${arm}`, p.mathBefore.map((b, i) => b - p.mathAfter[i]));
    put(out, `c9/math_pass8_before_${arm}`, p.math8Before);
    put(out, `c9/math_pass8_after_${arm}`, p.math8After);
    const before = seedStats(p.mathBefore).mean;
    out[`c9/math_retention_${arm}`] = before > 0 ? seedStats(p.mathAfter).mean / before : NaN;
    put(out, `c9/tool_pass1_start_${arm}`, p.toolStart);
    put(out, `c9/tool_pass1_before_${arm}`, p.toolBefore);
    put(out, `c9/tool_pass1_after_${arm}`, p.toolAfter);
    put(out, `c9/tool_pass1_gain_${arm}`, p.toolAfter.map((a, i) => a - p.toolBefore[i]));
  }
  return out;
}

/** Table 2 as grouped bars (file header); the strong-warm-up arms only (opd-weak belongs to Fig. 2c). */
export function table2ContinualLearning(d: Pick<InitContinualData, 'continual'>): PlotlyFigure {
  const arms = orderedArms(Object.keys(d.continual), CONTINUAL_ARMS).filter((a) => a !== 'opd-weak');
  if (arms.length === 0) throw new Error('table2ContinualLearning: no continual arm from the strong warm-up');
  const labels = arms.map((m) => icArmStyle(m).label);
  const pts = arms.map((a) => continualPoints(d.continual[a], `table2 ${a}`));
  const first = d.continual[arms[0]];
  const S = first.distillSteps;
  const end = S + first.continualSteps;
  const n = Math.min(...arms.map((a) => d.continual[a].seeds.length));
  const bars = (name: string, colour: string, values: number[][], axes: Record<string, string>, showlegend: boolean, group: string): PlotlyTrace => {
    const st = values.map((v) => seedStats(v));
    return {
      type: 'bar', name, legendgroup: group, showlegend, x: labels, y: st.map((s) => s.mean),
      error_y: { type: 'data', array: finite(st.map((s) => s.ci95)), visible: true, color: '#333333', thickness: 1.2, width: 4 },
      marker: { color: colour }, ...axes,
    };
  };
  const data: PlotlyTrace[] = [
    bars(`after the math stage (step ${S})`, seriesColour(0), pts.map((p) => p.mathBefore), {}, true, 'before'),
    bars(`after the tool stage (step ${end})`, seriesColour(1), pts.map((p) => p.mathAfter), {}, true, 'after'),
    bars(`after the math stage (step ${S})`, seriesColour(0), pts.map((p) => p.toolBefore), { xaxis: 'x2', yaxis: 'y2' }, false, 'before'),
    bars(`after the tool stage (step ${end})`, seriesColour(1), pts.map((p) => p.toolAfter), { xaxis: 'x2', yaxis: 'y2' }, false, 'after'),
  ];
  const base = baseLayout({ title: `Continual learning: math kept vs tool success (AOPD Table 2)<br><sub>${S} math steps, then ${first.continualSteps} tool steps with the same method; bars: mean of ${n} seeds; error bars: 95% CI</sub>` });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const doms = panelDomains(2, 0.1);
  return {
    data,
    layout: {
      ...base,
      barmode: 'group',
      bargap: 0.25,
      xaxis: { ...ax, domain: doms[0], title: { text: '' } },
      yaxis: { ...ay, rangemode: 'tozero', title: { text: 'math pass@1 (held-out)' } },
      xaxis2: { ...ax, domain: doms[1], anchor: 'y2', title: { text: '' } },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'tool-call success pass@1 (held-out)' } },
      legend: { orientation: 'h', x: 0, y: -0.18, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 100 },
      width: 900,
      height: 460,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// C3: Fig. 2c

/** Numbers C3 quotes (keys c3/*): OPD's math gain by warm-up (init), and the continual stage from each warm-up. */
export function c3Numbers(d: InitContinualData): Record<string, number> {
  const out: Record<string, number> = {};
  for (const w of warmups(d)) {
    const a: InitArm | undefined = d.init[w].opd;
    if (!a) continue;
    put(out, `c3/opd_math_pass1_initial_${w}`, a.pass1.map((s) => s[0]));
    put(out, `c3/opd_math_pass1_final_${w}`, a.pass1.map(last));
    put(out, `c3/opd_math_pass1_gain_${w}`, a.pass1.map((s) => last(s) - s[0]));
  }
  for (const [arm, w] of [['opd', 'strong'], ['opd-weak', 'weak']] as const) {
    const a = d.continual[arm];
    if (!a) continue;
    const p = continualPoints(a, `c3 ${arm}`);
    put(out, `c3/continual_tool_pass1_start_${w}`, p.toolStart);
    put(out, `c3/continual_tool_pass1_before_${w}`, p.toolBefore);
    put(out, `c3/continual_tool_pass1_after_${w}`, p.toolAfter);
    put(out, `c3/continual_tool_pass1_gain_${w}`, p.toolAfter.map((x, i) => x - p.toolBefore[i]));
    put(out, `c3/continual_math_pass1_before_${w}`, p.mathBefore);
    put(out, `c3/continual_math_pass1_after_${w}`, p.mathAfter);
  }
  return out;
}

/** Fig. 2c (file header). */
export function fig2cWarmupStrength(d: InitContinualData): PlotlyFigure {
  const data: PlotlyTrace[] = [];
  for (const w of warmups(d)) {
    const a = d.init[w].opd;
    if (!a) continue;
    data.push(...seedBandTraces(`OPD, ${warmupLabel(w, a.warmupSteps)}`, { colour: warmupColour(w), dash: 'solid' }, a.evalStep, a.pass1, { group: w }));
  }
  if (data.length === 0) throw new Error('fig2cWarmupStrength: no OPD arm in init');
  const shapes: Record<string, unknown>[] = [];
  let S: number | null = null;
  for (const [arm, w] of [['opd', 'strong'], ['opd-weak', 'weak']] as const) {
    const a = d.continual[arm];
    if (!a) continue;
    S = a.distillSteps;
    data.push(...seedBandTraces(`OPD, ${warmupLabel(w, a.warmupSteps)}`, { colour: warmupColour(w), dash: 'solid' }, a.toolStep, a.toolPass1, { xaxis: 'x2', yaxis: 'y2', showlegend: false, group: w }));
  }
  if (S !== null) shapes.push({ type: 'line', xref: 'x2', yref: 'y2 domain', x0: S, x1: S, y0: 0, y1: 1, line: { color: '#888888', dash: 'dash', width: 1 } });
  const mathSteps = Math.max(...warmups(d).map((w) => (d.init[w].opd ? last(d.init[w].opd.evalStep) : 0)));
  const base = baseLayout({ title: `OPD by warm-up strength (AOPD Fig. 2c)<br><sub>left: math distillation (${mathSteps} steps); right: the continual run, tool task after the dashed line; line: mean over seeds, band: min to max</sub>` });
  const ax = base.xaxis as Record<string, unknown>;
  const ay = base.yaxis as Record<string, unknown>;
  const doms = panelDomains(2, 0.1);
  return {
    data,
    layout: {
      ...base,
      shapes,
      xaxis: { ...ax, domain: doms[0], title: { text: 'distillation step (math)' } },
      yaxis: { ...ay, rangemode: 'tozero', title: { text: 'math pass@1 (held-out)' } },
      xaxis2: { ...ax, domain: doms[1], anchor: 'y2', title: { text: 'step of the continual run (math, then tool)' } },
      yaxis2: { ...ay, anchor: 'x2', rangemode: 'tozero', title: { text: 'tool-call success pass@1 (held-out)' } },
      legend: { orientation: 'h', x: 0, y: -0.22, xanchor: 'left', yanchor: 'top' },
      margin: { l: 70, r: 20, t: 80, b: 110 },
      width: 960,
      height: 460,
    },
  };
}
