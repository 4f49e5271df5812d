/**
 * The dump report: `opdlab analyze DUMP --out DIR` = load -> doctor -> diagnostics -> report.
 *
 *   DIR/report.html       self-contained page (plotly inlined): doctor table, figures, metrics, notes
 *   DIR/summary.json      dump info, doctor checks, every metric (NaN -> null), approximate keys, notes
 *   DIR/figures/*.json    each figure's plotly {data, layout} spec (for other renderers)
 *
 * The doctor runs first; a critical failure stops the report (DoctorFailure, nothing written) unless `force`,
 * and a forced report says so at the top of the page and in summary.json. Files are written into a temporary
 * sibling folder and renamed into place at the end, so an error midway never leaves a report that looks
 * complete; an existing DIR is never overwritten unless `overwrite`.
 *
 * Mode: a dump up to `streamingThresholdBytes` on disk (or `streaming: 'off'`) is loaded whole and analysed
 * exactly (lib/io/analyse.ts analyseDump); a larger one is streamed in bounded memory (analyseSource) and the
 * report lists the approximate keys with their bounds.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { toPlain } from '../analysis/values';
import { escapeHtml, renderHtml, type HtmlPage, type HtmlSection } from '../figures/html';
import type { PlotlyFigure } from '../figures/theme';
import { analyseDump, analyseSource, doctorDump } from '../io/analyse';
import { formatDoctorReport, type DoctorOptions, type DoctorReport } from '../io/doctor';
import { loadDump, openDump, type OpenOptions } from '../io/reader';
import { metaToJson, type DumpMeta } from '../io/schema';
import type { Conversion, DumpFormat } from '../io/source';
import type { DumpAnalysis, DumpStatsOptions } from '../io/stats';
import { dumpFigures } from './analyzeFigures';

/** Thrown when the doctor finds a critical failure and the report was not forced. */
export class DoctorFailure extends Error {
  constructor(readonly report: DoctorReport) {
    super(formatDoctorReport(report));
    this.name = 'DoctorFailure';
  }
}

export interface DumpInfo {
  path: string;
  format: DumpFormat;
  bytes: number;
  meta: DumpMeta;
  conversions: Record<string, Conversion>;
}

export interface ReportInput {
  dump: DumpInfo;
  doctor: DoctorReport;
  analysis: DumpAnalysis;
  /** True when the report was produced despite a critical doctor failure. */
  forced: boolean;
}

export interface AnalyzeOptions {
  format?: DumpFormat;
  /** Run metadata merged over the file's own. */
  meta?: Partial<DumpMeta>;
  /** Write the report even when a critical doctor check fails. Default false. */
  force: boolean;
  /** Replace an existing output folder. Default false. */
  overwrite: boolean;
  /** 'auto': stream dumps larger than streamingThresholdBytes; 'on' / 'off' force a mode. Default 'auto'. */
  streaming: 'auto' | 'on' | 'off';
  /** Default 256 MiB. */
  streamingThresholdBytes: number;
  stats: Partial<DumpStatsOptions>;
  doctor: Partial<DoctorOptions>;
}

export const DEFAULT_ANALYZE: Readonly<AnalyzeOptions> = {
  force: false,
  overwrite: false,
  streaming: 'auto',
  streamingThresholdBytes: 256 * 1024 * 1024,
  stats: {},
  doctor: {},
};

const fmt = (x: number) => (x === undefined ? '' : !Number.isFinite(x) ? String(x) : Number.isInteger(x) ? String(x) : Math.abs(x) < 1e-3 || Math.abs(x) >= 1e6 ? x.toExponential(3) : Number(x.toPrecision(5)).toString());

/** The JSON summary (plain JSON: NaN and Infinity become null). */
export function buildSummary(input: ReportInput, figureNames: string[]): Record<string, unknown> {
  const { dump, doctor, analysis } = input;
  return toPlain({
    report: 'opdlab analyze',
    dump: { path: dump.path, format: dump.format, bytes: dump.bytes, sequences: doctor.sequences, tokens: doctor.tokens, meta: metaToJson(dump.meta), conversions: dump.conversions },
    forced: input.forced,
    doctor: { ok: doctor.ok, critical_failures: doctor.criticalFailures, checks: doctor.checks },
    mode: analysis.mode,
    student_lp_source: analysis.studentLpSource,
    metrics: analysis.metrics,
    approximate: analysis.approximate,
    notes: analysis.notes,
    figures: figureNames,
  }) as Record<string, unknown>;
}

function doctorTable(r: DoctorReport): string {
  const rows = r.checks.map((c) => {
    const ex = c.examples.slice(0, 3).map((e) => `<br><small>e.g. ${escapeHtml(e)}</small>`).join('');
    const fix = c.hint && c.status !== 'pass' && c.status !== 'skip' ? `<br><small>fix: ${escapeHtml(c.hint)}</small>` : '';
    return `<tr><td class="${c.status}">${c.status.toUpperCase()}</td><td><code>${escapeHtml(c.id)}</code>${c.critical ? ' <small>(critical)</small>' : ''}<br><small>${escapeHtml(c.title)}</small></td><td>${escapeHtml(c.summary)}${ex}${fix}</td></tr>`;
  });
  return `<table><tr><th>status</th><th>check</th><th>finding</th></tr>${rows.join('')}</table>`;
}

/** Overall metrics in a table; per-group keys (adv/<group>/...) in a collapsed second table. */
function metricsTable(a: DumpAnalysis): string {
  const row = (k: string) => {
    const approx = a.approximate[k];
    return `<tr><td><code>${escapeHtml(k)}</code></td><td class="num">${escapeHtml(fmt(a.metrics[k]))}</td><td>${approx ? `approximate: ${escapeHtml(approx)}` : 'exact'}</td></tr>`;
  };
  const head = '<tr><th>metric</th><th>value</th><th>estimate</th></tr>';
  const keys = Object.keys(a.metrics).sort();
  const grouped = (k: string) => /^adv\/[^/]+\//.test(k);
  const main = keys.filter((k) => !grouped(k));
  const groups = keys.filter(grouped);
  return `<table>${head}${main.map(row).join('')}</table>` + (groups.length ? `<details><summary>per-group advantage statistics (${groups.length} keys)</summary><table>${head}${groups.map(row).join('')}</table></details>` : '');
}

const CAPTIONS: Record<string, string> = {
  advantage_histogram: 'Counts per bin of A over masked-in tokens on a symmetric-log axis (fine bins near 0, decades in the tails; log count axis). OPD advantages typically spike at 0 and have a long negative tail (AOPD Fig. 2a).',
  advantage_position_heatmap: 'Each row is a fifth of the response (by masked-in position j / L); colours are the share of that row\'s tokens in each advantage bin.',
  gap_by_position: 'Mean A and share of negative A at each masked-in position index (bars: token counts). A gap concentrated early points to the first tokens (position bias of OPD).',
  gap_by_group: 'Mean A per absolute-position bin and per token class (special/template ids from the run metadata vs content), with median and quartiles. A special-token gap far from the content gap points to a template or renderer mismatch (tinker-cookbook #796).',
  intervention_curve: 'Share of tokens AOPD would switch to imitation, 1[pT(y) - pS(y) <= eta], split by the sign of A (zero band |A| < zero_eps).',
  entropy: 'Per-token entropies as recorded in the dump.',
  topk_sweep: 'Teacher mass captured by its top-K, student mass on its own top-K, and the overlap of the two top-K sets, against K (the K-sweep figure, ecosystem.md section 1 item 5).',
  topk_mass: "Per-token teacher mass on its top-K, and the student's mass on the same tokens where the dump's student top-K covers them (a lower bound elsewhere).",
  black_hole: "At A < 0, v* = the teacher's most likely token other than the sampled one. OPD's update on v* is -A pS(v*): tiny when the student gives v* little mass (the exploration black hole); forward KL's is pT(v*) - pS(v*).",
  sampler_gap: "Sampler log-prob minus the trainer's recomputed log-prob of the same token (tinker-cookbook #396); non-zero means importance ratios and tinker-style advantages see another distribution.",
  steps: 'Advantage statistics per training step recorded in the dump.',
};

const SECTIONS: [string, string[]][] = [
  ['Advantages and the teacher-student gap', ['advantage_histogram', 'advantage_position_heatmap', 'gap_by_position', 'gap_by_group', 'steps']],
  ['AOPD intervention ratio', ['intervention_curve']],
  ['Entropy', ['entropy']],
  ['Top-K diagnostics', ['topk_sweep', 'topk_mass']],
  ['Exploration black hole', ['black_hole']],
  ['Sampler vs recomputed log-probs', ['sampler_gap']],
];

/** The HTML page of a report. */
export function buildReportPage(input: ReportInput, figures: Record<string, PlotlyFigure>): HtmlPage {
  const { dump, doctor, analysis } = input;
  const warns = doctor.checks.filter((c) => c.status === 'warn').length;
  const banner = input.forced && !doctor.ok
    ? `<div class="banner bad"><b>FORCED REPORT.</b> The dump doctor found critical failures (${doctor.criticalFailures.map(escapeHtml).join(', ')}): the figures below are drawn from data the doctor says is wrong. Fix the dump before drawing conclusions.</div>`
    : doctor.ok && warns === 0
      ? '<div class="banner ok">The dump doctor found no problem.</div>'
      : `<div class="banner note">The dump doctor passed with ${warns} warning(s): read them before the figures.</div>`;
  const modeText = analysis.mode === 'exact'
    ? 'every statistic is exact (the dump was loaded whole; advantage statistics from lib/analysis)'
    : `streamed in bounded memory; ${Object.keys(analysis.approximate).length} statistics are approximate (marked in the metrics table with their bounds)`;
  const info = [
    ['path', escapeHtml(dump.path)],
    ['format', escapeHtml(dump.format)],
    ['sequences / tokens', `${doctor.sequences} / ${doctor.tokens} (${fmt(analysis.metrics['dump/masked_in'])} masked in)`],
    ['advantage uses', analysis.studentLpSource === 'train' ? 'student_lp_train (recomputed by the trainer)' : "student_lp (the sampler's log-prob)"],
    ['mode', escapeHtml(modeText)],
    ['run metadata', `<code style="word-break: break-all">${escapeHtml(JSON.stringify(metaToJson(dump.meta)))}</code>`],
  ];
  if (Object.keys(dump.conversions).length > 0) info.push(['engine conversions', Object.entries(dump.conversions).map(([k, c]) => `<code>${escapeHtml(k)}</code> x${c.count}: ${escapeHtml(c.note)}`).join('<br>')]);
  const sections: HtmlSection[] = [
    { title: 'Dump', html: `<table>${info.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>` },
    { title: 'Dump doctor', html: doctorTable(doctor) },
  ];
  for (const [title, names] of SECTIONS) {
    const figs = names.filter((n) => figures[n]).map((n) => ({ id: `fig-${n}`, figure: figures[n], caption: CAPTIONS[n] }));
    if (figs.length > 0) sections.push({ title, figures: figs });
  }
  sections.push({ title: 'Metrics', html: `<p>Keys and estimators: docs/metrics.md (lib/analysis keys) and docs/dumps.md (dump-only keys).</p>${metricsTable(analysis)}` });
  if (analysis.notes.length > 0) sections.push({ title: 'Notes', html: `<ul>${analysis.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>` });
  return { title: `opdlab dump report: ${basename(dump.path)}`, intro: banner, sections };
}

/** Writes report.html, summary.json and figures/*.json into `outDir` atomically (see the header). */
export function writeAnalysisReport(outDir: string, input: ReportInput, options: { overwrite?: boolean } = {}): { files: string[]; summary: Record<string, unknown> } {
  const out = resolve(outDir);
  if (existsSync(out) && !options.overwrite) throw new Error(`${outDir} already exists; pass overwrite (--overwrite) to replace it`);
  const figures = dumpFigures(input.analysis);
  const summary = buildSummary(input, Object.keys(figures));
  const html = renderHtml(buildReportPage(input, figures));
  const tmp = join(dirname(out), `.${basename(out)}.partial-${process.pid}-${Date.now()}`);
  mkdirSync(join(tmp, 'figures'), { recursive: true });
  try {
    writeFileSync(join(tmp, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
    for (const [name, f] of Object.entries(figures)) writeFileSync(join(tmp, 'figures', `${name}.json`), JSON.stringify(toPlain(f)) + '\n');
    writeFileSync(join(tmp, 'report.html'), html);
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { files: ['report.html', 'summary.json', ...Object.keys(figures).map((n) => `figures/${n}.json`)], summary };
}

/** load -> doctor -> diagnostics -> report, for a dump on disk (what `opdlab analyze` runs). */
export async function analyzeDumpToDir(path: string, outDir: string, options: Partial<AnalyzeOptions> = {}): Promise<{ doctor: DoctorReport; analysis: DumpAnalysis; files: string[]; summary: Record<string, unknown> }> {
  const o: AnalyzeOptions = { ...DEFAULT_ANALYZE, ...options };
  if (existsSync(outDir) && !o.overwrite) throw new Error(`${outDir} already exists; pass --overwrite to replace it`);
  const open: OpenOptions = { format: o.format, meta: o.meta };
  const source = await openDump(path, open);
  const streaming = o.streaming === 'on' || (o.streaming === 'auto' && source.bytes > o.streamingThresholdBytes);
  let doctor: DoctorReport;
  let analysis: DumpAnalysis;
  let info: DumpInfo;
  if (streaming) {
    const r = await analyseSource(source, { stats: o.stats, doctor: o.doctor });
    doctor = r.doctor;
    if (!doctor.ok && !o.force) throw new DoctorFailure(doctor);
    if (!r.analysis) throw new Error(`${path}: the diagnostics could not be computed: ${r.analysisError}`);
    analysis = r.analysis;
    info = { path, format: source.format, bytes: source.bytes, meta: source.meta, conversions: source.conversions.toJSON() };
  } else {
    const dump = await loadDump(path, open);
    doctor = doctorDump(dump, o.doctor);
    if (!doctor.ok && !o.force) throw new DoctorFailure(doctor);
    analysis = analyseDump(dump, o.stats);
    info = { path, format: dump.format, bytes: dump.bytes, meta: dump.meta, conversions: dump.conversions };
  }
  const forced = !doctor.ok;
  const { files, summary } = writeAnalysisReport(outDir, { dump: info, doctor, analysis, forced }, { overwrite: o.overwrite });
  return { doctor, analysis, files, summary };
}
