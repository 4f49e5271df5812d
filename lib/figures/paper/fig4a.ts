/**
 * AOPD Fig. 4a (claim C5): the parameter-space gradient norm ||dL/dtheta||_2 (metrics.jsonl grad/param_norm,
 * before Adam) over training for OPD, AOPD and GKD; line = mean over seeds, shaded band = min to max over seeds
 * (`seedBand`, lib/figures/paper/generateDynamics.ts). The claim reads off the figure as AOPD's curve lying well
 * below OPD's throughout. Numbers: `c5Numbers` (per seed the mean over all steps and over the last 10% of steps;
 * then mean and 95% CI half-width over seeds, t_{0.975, n-1} s / sqrt(n)).
 *
 * Also the shared trace builder of the dynamics figures (`bandTraces`).
 */
import { methodStyle, methodTrace, baseLayout, type PlotlyFigure, type PlotlyTrace } from '../theme';
import { seedBand, seedStats, tailMeans, type MethodCurves } from './generateDynamics';

/** The curves a dynamics figure needs: method name -> curves (DynamicsData.methods). */
export type DynamicsInput = Record<string, MethodCurves>;

/** Share of the last steps averaged for the "final" numbers. */
export const FINAL_FRAC = 0.1;

function rgba(hex: string, alpha: number): string {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

/** Band (max, then min filled to it) and mean line of one method, on axes `xaxis` / `yaxis` (default x / y). */
export function bandTraces(method: string, x: readonly number[], perSeed: readonly (readonly number[])[], axes: { xaxis?: string; yaxis?: string; showlegend?: boolean; suffix?: string } = {}): PlotlyTrace[] {
  const b = seedBand(perSeed);
  const s = methodStyle(method);
  const ax = { ...(axes.xaxis ? { xaxis: axes.xaxis } : {}), ...(axes.yaxis ? { yaxis: axes.yaxis } : {}) };
  const showlegend = axes.showlegend ?? true;
  return [
    { type: 'scatter', mode: 'lines', name: `${s.label} max over seeds`, legendgroup: method, x: [...x], y: b.max, line: { width: 0, color: s.colour }, showlegend: false, hoverinfo: 'skip', ...ax },
    { type: 'scatter', mode: 'lines', name: `${s.label} min over seeds`, legendgroup: method, x: [...x], y: b.min, line: { width: 0, color: s.colour }, fill: 'tonexty', fillcolor: rgba(s.colour, 0.18), showlegend: false, hoverinfo: 'skip', ...ax },
    methodTrace(method, { type: 'scatter', mode: 'lines', name: `${s.label}${axes.suffix ?? ''} (mean of ${perSeed.length} seeds)`, x: [...x], y: b.mean, showlegend, ...ax }),
  ];
}

/** Methods in the input, in the fixed order opd, aopd, gkd, then the rest. */
export function orderedMethods(input: DynamicsInput): string[] {
  const order = ['opd', 'aopd', 'gkd'];
  const names = Object.keys(input);
  if (names.length === 0) throw new Error('dynamics figure: input holds no method');
  return [...order.filter((m) => names.includes(m)), ...names.filter((m) => !order.includes(m))];
}

export function bandNote(input: DynamicsInput): string {
  const n = Math.min(...Object.values(input).map((c) => c.seeds.length));
  return `line: mean over ${n} seeds; band: min to max over seeds`;
}

function put(out: Record<string, number>, key: string, values: number[]): void {
  const s = seedStats(values);
  out[key] = s.mean;
  out[`${key}_ci95`] = s.ci95;
}

/** Numbers C5 quotes (keys under c5/). */
export function c5Numbers(input: DynamicsInput): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of orderedMethods(input)) {
    put(out, `c5/gradnorm_mean_${m}`, tailMeans(input[m].gradNorm, 1));
    put(out, `c5/gradnorm_final_${m}`, tailMeans(input[m].gradNorm, FINAL_FRAC));
  }
  if (input.aopd && input.opd) out['c5/gradnorm_mean_ratio_aopd_over_opd'] = out['c5/gradnorm_mean_aopd'] / out['c5/gradnorm_mean_opd'];
  return out;
}

const LOG_TICKS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500];

/** The Fig. 4a plotly spec (file header). */
export function fig4aGradientNorm(input: DynamicsInput): PlotlyFigure {
  const data = orderedMethods(input).flatMap((m) => bandTraces(m, input[m].trainStep, input[m].gradNorm));
  return {
    data,
    layout: baseLayout({
      title: `Gradient norm over training (AOPD Fig. 4a)<br><sub>${bandNote(input)}</sub>`,
      xTitle: 'training step',
      yTitle: 'gradient norm ||dL/dθ||₂ (before Adam)',
      yLog: true,
      extra: {
        // 1-2-5 ticks with full labels (plotly's default log ticks label 20 as a small '2')
        yaxis: { tickvals: LOG_TICKS, ticktext: LOG_TICKS.map(String) },
        margin: { l: 70, r: 20, t: 70, b: 60 },
      },
    }),
  };
}
