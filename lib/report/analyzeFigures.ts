/**
 * Figure specs of the dump report (`opdlab analyze`): plain plotly {data, layout} objects built from a
 * DumpAnalysis (lib/io/stats.ts), one function per figure. The advantage axis is the symlog axis of the
 * histograms, t(x) = sign(x) log10(1 + |x| / c), with tick labels in nats.
 */
import { axisTransform } from '../analysis/histogram';
import { COLORS, themed, type PlotlyFigure } from '../figures/theme';
import type { DumpAnalysis, FixedHistogram } from '../io/stats';

const arr = (x: ArrayLike<number>) => Array.from(x, (v) => (Number.isFinite(v) ? v : null));

/** Tick values (t) and labels (nats) of a symlog axis between t0 and t1. */
function symlogTicks(t0: number, t1: number, c: number): { tickvals: number[]; ticktext: string[] } {
  const vals: number[] = [0];
  for (let e = -9; e <= 6; e++) for (const s of [-1, 1]) vals.push(s * 10 ** e);
  // no ticks inside the near-linear band (0 < |x| < c): they would crowd the label of 0
  const inRange = vals.filter((x) => x === 0 || Math.abs(x) >= c * 0.999).map((x) => ({ x, t: axisTransform(x, 'symlog', c) })).filter((v) => v.t >= t0 - 1e-9 && v.t <= t1 + 1e-9).sort((a, b) => a.t - b.t);
  return { tickvals: inRange.map((v) => v.t), ticktext: inRange.map((v) => (v.x === 0 ? '0' : Math.abs(v.x) >= 1e-3 && Math.abs(v.x) < 1e4 ? String(v.x) : v.x.toExponential(0))) };
}

const centres = (edges: ArrayLike<number>) => Array.from({ length: edges.length - 1 }, (_, i) => (edges[i] + edges[i + 1]) / 2);

/** Per-token advantage histogram on the symlog axis, with q01 / q50 / q99 marked. */
export function advantageHistogramFigure(a: DumpAnalysis): PlotlyFigure {
  const h = a.advantage.histogram;
  const c = h.linthresh;
  const t0 = h.axisEdges[0];
  const t1 = h.axisEdges[h.axisEdges.length - 1];
  const m = a.metrics;
  const lines = (['q01', 'q50', 'q99'] as const).map((q) => ({ q, t: axisTransform(m[`adv/${q}`], 'symlog', c) }));
  return {
    data: [{ type: 'bar', x: centres(h.axisEdges), y: arr(h.counts), width: h.axisEdges[1] - h.axisEdges[0], marker: { color: COLORS.student }, name: 'tokens', hovertemplate: 'A in [%{customdata[0]:.3g}, %{customdata[1]:.3g}): %{y}<extra></extra>', customdata: centres(h.axisEdges).map((_, i) => [h.edges[i], h.edges[i + 1]]) }],
    layout: themed('Per-token advantage A = log pT(y) - log pS(y)', {
      bargap: 0,
      xaxis: { title: { text: `A (nats, symlog axis, c = ${c})` }, range: [t0, t1], ...symlogTicks(t0, t1, c) },
      yaxis: { title: { text: 'tokens' }, type: 'log', dtick: 1 },
      shapes: lines.map((l) => ({ type: 'line', x0: l.t, x1: l.t, yref: 'paper', y0: 0, y1: 1, line: { color: l.q === 'q50' ? COLORS.ink : COLORS.zero, dash: 'dot', width: 1 } })),
      annotations: [
        ...lines.map((l) => ({ x: l.t, yref: 'paper', y: 1.02, text: l.q, showarrow: false, font: { size: 10 } })),
        { xref: 'paper', yref: 'paper', x: 0.99, y: 0.97, xanchor: 'right', showarrow: false, align: 'right', text: `A < 0: ${(100 * m['adv/frac_neg']).toFixed(1)}%, |A| < 0.01: ${(100 * m['adv/frac_abs_lt_0.01']).toFixed(1)}%<br>mean ${m['adv/mean'].toPrecision(3)}, tail spread ${Number.isFinite(m['adv/tail_spread_ratio']) ? m['adv/tail_spread_ratio'].toPrecision(3) : 'n/a'}` },
      ],
      showlegend: false,
    }),
  };
}

/** Share of each relative-position bin's tokens per advantage bin (rows sum to 1): where in the response the mass sits. */
export function advantagePositionHeatmapFigure(a: DumpAnalysis): PlotlyFigure {
  const h = a.advantage.histogram;
  const groups = a.advantage.groups.filter((g) => g.split === 'relpos');
  const z = groups.map((g) => {
    const tot = g.count || 1;
    return Array.from(g.counts, (v) => v / tot);
  });
  const t0 = h.axisEdges[0];
  const t1 = h.axisEdges[h.axisEdges.length - 1];
  return {
    data: [{ type: 'heatmap', x: centres(h.axisEdges), y: groups.map((g) => g.label.replace('relpos=', '')), z, colorscale: [[0, '#f7fbff'], [0.5, '#6baed6'], [1, '#08306b']], colorbar: { title: { text: 'share' } }, hovertemplate: 'position %{y}, A bin %{x:.2f}: %{z:.3f}<extra></extra>' }],
    layout: themed('Advantage by relative position in the response', {
      xaxis: { title: { text: `A (nats, symlog axis)` }, range: [t0, t1], ...symlogTicks(t0, t1, h.linthresh) },
      yaxis: { title: { text: 'relative position (j / L)' } },
    }),
  };
}

/** Teacher-student gap (mean A and share A < 0) per masked-in position index. */
export function gapByPositionFigure(a: DumpAnalysis): PlotlyFigure {
  const p = a.advantage.byPosition;
  const x = Array.from({ length: p.mean.length }, (_, i) => i);
  return {
    data: [
      { type: 'scatter', mode: 'lines', x, y: arr(p.mean), name: 'mean A', line: { color: COLORS.student } },
      { type: 'scatter', mode: 'lines', x, y: arr(p.fracNeg), name: 'share A < 0', yaxis: 'y2', line: { color: COLORS.negative, dash: 'dot' } },
      { type: 'bar', x, y: arr(p.count), name: 'tokens', yaxis: 'y3', marker: { color: COLORS.grid }, opacity: 0.6 },
    ],
    layout: themed('Teacher-student gap by position (gkd/teacher_student_gap per position)', {
      xaxis: { title: { text: 'position j in the response (masked-in tokens; the last pools the rest)' }, domain: [0, 0.88] },
      yaxis: { title: { text: 'mean A (nats)' } },
      yaxis2: { title: { text: 'share A < 0' }, overlaying: 'y', side: 'right', range: [0, 1], showgrid: false },
      yaxis3: { overlaying: 'y', side: 'right', position: 0.98, showgrid: false, showticklabels: false, rangemode: 'tozero' },
    }),
  };
}

/** Mean A with its quartiles per group: absolute position bins and token classes. */
export function gapByGroupFigure(a: DumpAnalysis): PlotlyFigure {
  const lv = Array.from(a.advantage.quantileLevels);
  const i25 = lv.indexOf(0.25), i50 = lv.indexOf(0.5), i75 = lv.indexOf(0.75);
  const traces: Record<string, unknown>[] = [];
  for (const [split, name, color] of [['position', 'position bins', COLORS.student], ['class', 'token class', COLORS.teacher]] as const) {
    const gs = a.advantage.groups.filter((g) => g.split === split && g.count > 0);
    if (gs.length === 0) continue;
    traces.push({ type: 'bar', name: `${name}: mean`, x: gs.map((g) => g.label), y: gs.map((g) => g.mean), marker: { color }, text: gs.map((g) => `n=${g.count}`), textposition: 'outside' });
    if (i25 >= 0 && i50 >= 0 && i75 >= 0) {
      traces.push({
        type: 'scatter', mode: 'markers', name: `${name}: median (bars: q25-q75)`, x: gs.map((g) => g.label), y: gs.map((g) => g.quantiles[i50]),
        marker: { color: COLORS.ink, symbol: 'diamond', size: 8 },
        error_y: { type: 'data', symmetric: false, array: gs.map((g) => g.quantiles[i75] - g.quantiles[i50]), arrayminus: gs.map((g) => g.quantiles[i50] - g.quantiles[i25]), color: COLORS.ink },
      });
    }
  }
  return { data: traces, layout: themed('Teacher-student gap by position bin and token class', { yaxis: { title: { text: 'A (nats)' } }, xaxis: { title: { text: 'group' } } }) };
}

/** AOPD intervention ratio and its parts over eta (AOPD Eq. 9). */
export function interventionFigure(a: DumpAnalysis): PlotlyFigure {
  const iv = a.intervention;
  const eta = arr(iv.eta_G);
  const zeroEps = a.metrics['intervention/zero_eps'];
  return {
    data: [
      { type: 'scatter', mode: 'lines', x: eta, y: arr(iv.negative_G), name: `A <= -${zeroEps}`, stackgroup: 'one', line: { color: COLORS.negative } },
      { type: 'scatter', mode: 'lines', x: eta, y: arr(iv.zeroBand_G), name: `|A| < ${zeroEps}`, stackgroup: 'one', line: { color: COLORS.zero } },
      { type: 'scatter', mode: 'lines', x: eta, y: arr(iv.positive_G), name: `A >= ${zeroEps}`, stackgroup: 'one', line: { color: COLORS.positive } },
      { type: 'scatter', mode: 'lines', x: eta, y: arr(iv.ratio_G), name: 'intervention ratio', line: { color: COLORS.ink, width: 2 } },
    ],
    layout: themed('AOPD intervention ratio: share of tokens with pT(y) - pS(y) <= eta', {
      xaxis: { title: { text: 'eta (-1 = OPD everywhere, 0 = standard AOPD, 1 = top-K forward KL everywhere)' } },
      yaxis: { title: { text: 'share of masked-in tokens' }, range: [0, 1] },
      shapes: [{ type: 'line', x0: 0, x1: 0, yref: 'paper', y0: 0, y1: 1, line: { color: COLORS.zero, dash: 'dot', width: 1 } }],
    }),
  };
}

function histTrace(h: FixedHistogram, name: string, color: string): Record<string, unknown> {
  return { type: 'bar', x: centres(h.edges), y: arr(h.counts), name, width: h.edges[1] - h.edges[0], marker: { color }, opacity: 0.6 };
}

/** Per-token entropy histograms, student and teacher. */
export function entropyFigure(a: DumpAnalysis): PlotlyFigure | null {
  const { student, teacher } = a.entropy;
  if (!student && !teacher) return null;
  const data = [student ? histTrace(student, 'student', COLORS.student) : null, teacher ? histTrace(teacher, 'teacher', COLORS.teacher) : null].filter((x) => x) as Record<string, unknown>[];
  return { data, layout: themed('Per-token entropy (nats)', { barmode: 'overlay', bargap: 0, xaxis: { title: { text: 'entropy H (nats)' } }, yaxis: { title: { text: 'tokens' } } }) };
}

/** The K sweep: teacher mass, student own-top-K mass and overlap against K. */
export function topkSweepFigure(a: DumpAnalysis): PlotlyFigure | null {
  if (!a.topk) return null;
  const s = a.topk.kSweep;
  const k = Array.from(s.k_K);
  const data: Record<string, unknown>[] = [{ type: 'scatter', mode: 'lines+markers', x: k, y: arr(s.teacherMass_K), name: 'teacher mass on its top-K', line: { color: COLORS.teacher } }];
  if (s.studentOwnMass_K) data.push({ type: 'scatter', mode: 'lines+markers', x: k, y: arr(s.studentOwnMass_K), name: 'student mass on its own top-K', line: { color: COLORS.student } });
  if (s.overlap_K) data.push({ type: 'scatter', mode: 'lines+markers', x: k.slice(0, s.overlap_K.length), y: arr(s.overlap_K), name: 'top-K overlap ratio', line: { color: COLORS.positive, dash: 'dash' } });
  return { data, layout: themed('Top-K sweep: mass captured and overlap against K', { xaxis: { title: { text: 'K' }, dtick: 1 }, yaxis: { title: { text: 'mean over masked-in tokens' }, range: [0, 1.02] } }) };
}

/** Histogram of the teacher's top-K mass and the (lower bound of the) student's mass on it. */
export function topkMassFigure(a: DumpAnalysis): PlotlyFigure | null {
  if (!a.topk) return null;
  const data = [histTrace(a.topk.teacherMass, 'teacher mass on its top-K', COLORS.teacher)];
  if (a.topk.studentMassLower) data.push(histTrace(a.topk.studentMassLower, 'student mass on the teacher top-K (known part: a lower bound)', COLORS.student));
  return { data, layout: themed(`Mass on the teacher's top-${a.topk.k}`, { barmode: 'overlay', bargap: 0, xaxis: { title: { text: 'probability mass' }, range: [0, 1] }, yaxis: { title: { text: 'tokens' } } }) };
}

/** Black hole: updates on v* (the teacher's preferred unsampled token) against the student's pS(v*), at A < 0. */
export function blackHoleFigure(a: DumpAnalysis): PlotlyFigure | null {
  if (!a.blackhole) return null;
  const P = a.blackhole.points;
  const idx = Array.from({ length: P.advantage.length }, (_, i) => i).filter((i) => Number.isFinite(P.pS[i]) && P.pS[i] > 0);
  if (idx.length === 0) {
    return {
      data: [{ type: 'histogram', x: Array.from(P.pT), marker: { color: COLORS.teacher }, name: 'pT(v*)' }],
      layout: themed("Black hole: teacher's preferred unsampled token v* at A < 0 (no student top-K: pS(v*) unknown)", { xaxis: { title: { text: 'pT(v*)' } }, yaxis: { title: { text: 'positions' } } }),
    };
  }
  const known = idx.filter((i) => P.known[i] === 1);
  const bound = idx.filter((i) => P.known[i] === 0);
  const pts = (ix: number[], f: (i: number) => number) => ix.map(f);
  const opd = (i: number) => -P.advantage[i] * P.pS[i];
  const fkl = (i: number) => P.pT[i] - P.pS[i];
  const data: Record<string, unknown>[] = [
    { type: 'scatter', mode: 'markers', x: pts(known, (i) => P.pS[i]), y: pts(known, fkl), name: 'forward KL: pT(v*) - pS(v*)', marker: { color: COLORS.teacher, size: 5, opacity: 0.6 } },
    { type: 'scatter', mode: 'markers', x: pts(known, (i) => P.pS[i]), y: pts(known, opd), name: 'OPD: -A pS(v*)', marker: { color: COLORS.student, size: 5, opacity: 0.6 } },
  ];
  if (bound.length > 0) {
    data.push({ type: 'scatter', mode: 'markers', x: pts(bound, (i) => P.pS[i]), y: pts(bound, opd), name: 'OPD, v* outside the student top-K (pS(v*) at its upper bound)', marker: { color: COLORS.student, size: 6, symbol: 'triangle-left-open', opacity: 0.6 } });
  }
  return {
    data,
    layout: themed(`Black hole: logit update on v* at A < 0 (${a.blackhole.sampled ? 'reservoir sample of ' : ''}${P.advantage.length} positions)`, {
      xaxis: { title: { text: "student probability pS(v*) of the teacher's preferred unsampled token" }, type: 'log' },
      yaxis: { title: { text: 'update on v* per unit step (analytic, docs/metrics.md)' } },
    }),
  };
}

/** Sampler vs recomputed student log-prob: histogram of student_lp - student_lp_train. */
export function samplerGapFigure(a: DumpAnalysis): PlotlyFigure | null {
  if (!a.samplerGap) return null;
  const h = a.samplerGap.histogram;
  const t0 = h.axisEdges[0];
  const t1 = h.axisEdges[h.axisEdges.length - 1];
  return {
    data: [{ type: 'bar', x: centres(h.axisEdges), y: arr(h.counts), width: h.axisEdges[1] - h.axisEdges[0], marker: { color: COLORS.neutral }, name: 'tokens' }],
    layout: themed('Sampler vs recomputed student log-prob (student_lp - student_lp_train)', {
      bargap: 0,
      xaxis: { title: { text: 'gap (nats, symlog axis)' }, range: [t0, t1], ...symlogTicks(t0, t1, h.linthresh) },
      yaxis: { title: { text: 'tokens' }, type: 'log', dtick: 1 },
      showlegend: false,
    }),
  };
}

/** Mean A and share A < 0 per training step (dumps spanning several steps). */
export function stepsFigure(a: DumpAnalysis): PlotlyFigure | null {
  const s = a.advantage.bySteps;
  if (s.step.length < 2) return null;
  return {
    data: [
      { type: 'scatter', mode: 'lines+markers', x: arr(s.step), y: arr(s.mean), name: 'mean A', line: { color: COLORS.student } },
      { type: 'scatter', mode: 'lines+markers', x: arr(s.step), y: arr(s.fracNeg), name: 'share A < 0', yaxis: 'y2', line: { color: COLORS.negative, dash: 'dot' } },
    ],
    layout: themed('Advantage over training steps', { xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'mean A' } }, yaxis2: { title: { text: 'share A < 0' }, overlaying: 'y', side: 'right', range: [0, 1], showgrid: false } }),
  };
}

/** Every figure of the report that the analysis supports, by name. */
export function dumpFigures(a: DumpAnalysis): Record<string, PlotlyFigure> {
  const out: Record<string, PlotlyFigure | null> = {
    advantage_histogram: advantageHistogramFigure(a),
    advantage_position_heatmap: advantagePositionHeatmapFigure(a),
    gap_by_position: gapByPositionFigure(a),
    gap_by_group: gapByGroupFigure(a),
    intervention_curve: interventionFigure(a),
    entropy: entropyFigure(a),
    topk_sweep: topkSweepFigure(a),
    topk_mass: topkMassFigure(a),
    black_hole: blackHoleFigure(a),
    sampler_gap: samplerGapFigure(a),
    steps: stepsFigure(a),
  };
  return Object.fromEntries(Object.entries(out).filter(([, f]) => f !== null)) as Record<string, PlotlyFigure>;
}
