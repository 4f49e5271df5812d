/**
 * load -> doctor -> diagnostics, in two modes with the same result type:
 *
 *   doctorDump(dump), analyseDump(dump)   a dump in memory (loadDump): the advantage statistics, intervention curve
 *                                         and entropy summaries come from lib/analysis itself (advantageStats,
 *                                         interventionCurve, interventionStats, summariseEntropy), so every
 *                                         number is exact and identical to the simulation's; the dump-only parts
 *                                         (top-K from dumps, black hole, per-position curves, sampler gap) from
 *                                         DumpStats, which is exact for them.
 *   analyseSource(source)                 a dump of any size, one streamed pass feeding the doctor and DumpStats
 *                                         (stats.ts lists which keys are then approximate, with their bounds).
 */
import { advantageStats, type AdvantageStats } from '../analysis/advantages';
import { summariseEntropy } from '../analysis/entropyStats';
import { interventionCurve, interventionStats } from '../analysis/intervention';
import { chunks, type TokenChunk } from './chunk';
import { DumpDoctor, type DoctorOptions, type DoctorReport } from './doctor';
import type { Dump } from './reader';
import type { DumpSource } from './source';
import { DumpStats, resolveDumpStatsOptions, type DumpAnalysis, type DumpStatsOptions } from './stats';

export interface AnalyseOptions {
  stats: Partial<DumpStatsOptions>;
  doctor: Partial<DoctorOptions>;
  /** Tokens per chunk in streaming mode. Default 65536. */
  tokensPerChunk: number;
}

/** The doctor on a dump in memory. */
export function doctorDump(dump: Dump, options: Partial<DoctorOptions> = {}): DoctorReport {
  const d = new DumpDoctor(dump.meta, options);
  d.add(dump.chunk);
  return d.finish(dump.conversions);
}

/** Per-token inputs of lib/analysis from a chunk: A, the student log-prob used, mask (finite only), seq ids, classes. */
export function analysisInputs(c: TokenChunk, source: 'train' | 'sampler', specialIds: number[] | null) {
  const lS = source === 'train' ? c.studentLpTrain! : c.studentLp;
  const advantages_N = new Float64Array(c.N);
  const mask_N = new Uint8Array(c.N);
  const seqIds_N = new Int32Array(c.N);
  for (let s = 0; s < c.S; s++) for (let i = c.offsets[s]; i < c.offsets[s + 1]; i++) seqIds_N[i] = s;
  for (let i = 0; i < c.N; i++) {
    const a = c.teacherLp[i] - lS[i];
    advantages_N[i] = a;
    mask_N[i] = c.mask[i] !== 0 && Number.isFinite(a) ? 1 : 0;
  }
  let special_N: Uint8Array | undefined;
  if (specialIds) {
    const set = new Set(specialIds);
    special_N = Uint8Array.from(c.responseIds, (y) => (set.has(y) ? 1 : 0));
  }
  return { advantages_N, studentLp_N: lS, mask_N, seqIds_N, special_N };
}

/**
 * Every diagnostic of a dump in memory, exact (file header). The result has mode 'exact' and no approximate
 * keys; its histograms use the same display edges as streaming mode.
 */
export function analyseDump(dump: Dump, options: Partial<DumpStatsOptions> = {}): DumpAnalysis {
  const o = resolveDumpStatsOptions({ ...options, keepAllPoints: true });
  const stats = new DumpStats(dump.meta, o);
  stats.add(dump.chunk);
  const r = stats.finish();
  const c = dump.chunk;
  const specialIds = o.specialIds ?? dump.meta.specialIds ?? null;
  const inp = analysisInputs(c, r.studentLpSource, specialIds);
  const base = { eps: o.eps, quantiles: o.quantiles, hillFraction: o.hillFraction, histogram: { edges: Array.from(r.advantage.histogram.edges), scale: 'symlog' as const, linthresh: o.linthresh } };
  const input = { advantages_N: inp.advantages_N, mask_N: inp.mask_N, seqIds_N: inp.seqIds_N, special_N: inp.special_N };
  const rel = advantageStats(input, { ...base, positionBins: o.positionBins });
  const abs = advantageStats({ ...input, special_N: undefined }, { ...base, positionEdges: o.positionEdges });
  // replace every adv/ key with lib/analysis's exact value
  for (const k of Object.keys(r.metrics)) if (k.startsWith('adv/') && !k.startsWith('adv/teacher=')) delete r.metrics[k];
  Object.assign(r.metrics, abs.metrics, rel.metrics);
  const groupOf = (st: AdvantageStats, label: string) => st.groups.find((g) => g.label === label);
  for (const g of r.advantage.groups) {
    const lg = groupOf(g.split === 'position' ? abs : rel, g.label);
    if (!lg) throw new Error(`analyseDump: lib/analysis has no group '${g.label}' (labels must agree)`);
    g.count = lg.count;
    g.mean = r.metrics[`adv/${g.label}/mean`];
    g.fracNeg = r.metrics[`adv/${g.label}/frac_neg`];
    g.quantiles = Float64Array.from(lg.quantiles);
    g.counts = Float64Array.from(lg.histogram.counts);
  }
  const h = rel.histogram;
  r.advantage.histogram = { axisEdges: Float64Array.from(h.axisEdges), edges: Float64Array.from(h.edges), counts: Float64Array.from(h.counts), underflow: h.underflow, overflow: h.overflow, linthresh: o.linthresh };
  const notes = new Set(r.notes.filter((n) => !n.startsWith('adv/')));
  for (const n of [...rel.notes, ...abs.notes]) notes.add(n);
  r.notes = [...notes];
  // intervention
  const ivInput = { teacherLogprobs_N: c.teacherLp, studentLogprobs_N: inp.studentLp_N, mask_N: inp.mask_N };
  const curve = interventionCurve(ivInput, o.etaGrid, o.zeroEps);
  r.intervention = { eta_G: curve.eta_G, ratio_G: curve.ratio_G, zeroBand_G: curve.zeroBand_G, negative_G: curve.negative_G, positive_G: curve.positive_G };
  Object.assign(r.metrics, interventionStats(ivInput, { eta: 0, zeroEps: o.zeroEps }).metrics);
  // entropy
  for (const [side, arr] of [['student', c.studentEntropy], ['teacher', c.teacherEntropy]] as const) {
    if (!arr) continue;
    const m = Uint8Array.from(arr, (h2, i) => (inp.mask_N[i] && Number.isFinite(h2) ? 1 : 0));
    if (m.some((x) => x === 1)) Object.assign(r.metrics, summariseEntropy(arr, m, side, r.notes));
  }
  r.mode = 'exact';
  r.approximate = {};
  return r;
}

/** One streamed pass: the doctor and the statistics together (the statistics are null if they cannot be computed). */
export async function analyseSource(source: DumpSource, options: Partial<AnalyseOptions> = {}): Promise<{ doctor: DoctorReport; analysis: DumpAnalysis | null; analysisError: string | null }> {
  const doctor = new DumpDoctor(source.meta, options.doctor ?? {});
  const stats = new DumpStats(source.meta, options.stats ?? {});
  let error: string | null = null;
  for await (const c of chunks(source, options.tokensPerChunk ?? 1 << 16)) {
    doctor.add(c);
    if (error === null) {
      try {
        stats.add(c);
      } catch (e) {
        error = (e as Error).message;
      }
    }
  }
  const report = doctor.finish(source.conversions.toJSON());
  let analysis: DumpAnalysis | null = null;
  if (error === null) {
    try {
      analysis = stats.finish();
    } catch (e) {
      error = (e as Error).message;
    }
  }
  return { doctor: report, analysis, analysisError: error };
}

/** Doctor only, streamed. */
export async function doctorSource(source: DumpSource, options: Partial<DoctorOptions> = {}, tokensPerChunk = 1 << 16): Promise<DoctorReport> {
  const d = new DumpDoctor(source.meta, options);
  for await (const c of chunks(source, tokensPerChunk)) d.add(c);
  return d.finish(source.conversions.toJSON());
}
