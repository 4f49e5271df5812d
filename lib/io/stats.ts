/**
 * The diagnostics of a dump, accumulated in one pass over token chunks (bounded memory), with the same metric
 * keys as lib/analysis (docs/metrics.md) plus dump-only ones (docs/dumps.md).
 *
 *   A_t = teacher_lp[t] - lS[t]        lS = student_lp_train when recorded ('auto'), else the sampler's student_lp
 *   d_t = exp(teacher_lp[t]) - exp(lS[t])                              (AOPD Eq. 9, intervention ratio over eta)
 *
 * over masked-in tokens with finite values (non-finite ones are skipped and counted: the doctor fails on them).
 *
 * Exact in streaming mode (up to float64 rounding): counts, means, std / skewness / kurtosis (Pebay moments,
 * sketch.ts), min, max, frac_neg|pos|zero, neg_mean|pos_mean, frac_abs_lt_EPS, the intervention curve on the
 * fixed eta grid, entropy summaries, per-position means, top-K masses / overlap / clamp rate, black-hole means,
 * sampler gaps, rewards, and every histogram on fixed or pre-aligned edges.
 * Approximate in streaming mode: quantiles (adv/qNN, tail_spread_ratio) and Hill tail indices, from a symlog
 * sketch with |x_hat - x| <= 5.8e-4 (|x| + 0.01); black-hole medians (from a reservoir sample). `approximate`
 * in the result lists every such key with its bound; `analyseDump` (analyse.ts) recomputes them exactly with
 * lib/analysis when the dump fits in memory.
 *
 * Top-K from a dump: the student's probabilities on the teacher's top-K S_t are known only where the student's
 * own top-K (or the sampled token) covers them. Where it does not, topk/student_mass_lower counts the known
 * part and topk/student_mass_upper adds (unknown count) x (the student's smallest top-K probability): a bound,
 * since every token outside the student's top-K is at most that likely. topk/student_mass and topk/clamp_frac
 * are reported over fully covered rows, with their coverage. Black hole: v* = argmax_{v != y} pT(v) over the
 * teacher's top-K; pS(v*) and its rank are exact when v* is in the student's top-K, and otherwise bounded.
 */
import { keyNumber } from '../analysis/values';
import { quantileKey } from '../analysis/advantages';
import type { TokenChunk } from './chunk';
import { Moments, QuantileSketch, type SketchOptions } from './sketch';
import type { DumpMeta } from './schema';
import { mulberry32 as prng } from '../util/prng';

export interface DumpStatsOptions {
  /** Which student log-prob defines A: 'auto' = student_lp_train when recorded, else the sampler's. Default 'auto'. */
  studentLp: 'auto' | 'sampler' | 'train';
  /** Zero-band half-widths (adv/frac_abs_lt_EPS). Default [1e-3, 1e-2, 1e-1]. */
  eps: number[];
  /** Quantile levels. Default [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]. */
  quantiles: number[];
  /** Hill k = floor(hillFraction n). Default 0.05. */
  hillFraction: number;
  /** eta grid of the intervention curve (ascending). Default -1 .. 1 step 0.05 (41 points). */
  etaGrid: number[];
  /** |A| < zeroEps is the zero band of the intervention split. Default 0.05. */
  zeroEps: number;
  /** Relative-position bins. Default 5. */
  positionBins: number;
  /** Absolute position edges over masked-in tokens. Default [0, 8, 32, 128, 512, Infinity]. */
  positionEdges: number[];
  /** Per-position mean curve length (positions beyond are pooled into the last). Default 1024. */
  maxPosition: number;
  /** Symlog axis of advantage histograms and sketches (c). Default 0.01. */
  linthresh: number;
  /** Sketch resolution (bins per decade-unit of t). Default 2000. */
  sketchBinsPerUnit: number;
  /** Display histogram bin width on the t axis (a multiple of 1 / sketchBinsPerUnit). Default 0.05. */
  displayBinWidth: number;
  /** Black-hole points kept for the scatter in streaming mode (reservoir sample). Default 2000. */
  reservoir: number;
  /** Seed of the reservoir sample. Default 0. */
  seed: number;
  /** Special/template token ids for the class split; default the run metadata's special_ids. */
  specialIds: number[] | null;
  /** Keep every black-hole point (exact mode) instead of a reservoir. Default false. */
  keepAllPoints: boolean;
}

export const DEFAULT_DUMP_STATS: Readonly<DumpStatsOptions> = {
  studentLp: 'auto',
  eps: [1e-3, 1e-2, 1e-1],
  quantiles: [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99],
  hillFraction: 0.05,
  etaGrid: Array.from({ length: 41 }, (_, i) => Number((-1 + i * 0.05).toFixed(2))),
  zeroEps: 0.05,
  positionBins: 5,
  positionEdges: [0, 8, 32, 128, 512, Infinity],
  maxPosition: 1024,
  linthresh: 0.01,
  sketchBinsPerUnit: 2000,
  displayBinWidth: 0.05,
  reservoir: 2000,
  seed: 0,
  specialIds: null,
  keepAllPoints: false,
};

export function resolveDumpStatsOptions(given: Partial<DumpStatsOptions> = {}): DumpStatsOptions {
  const o: DumpStatsOptions = { ...DEFAULT_DUMP_STATS };
  for (const [k, v] of Object.entries(given)) {
    if (!(k in DEFAULT_DUMP_STATS)) throw new Error(`dump statistics: unknown option '${k}'; known options: ${Object.keys(DEFAULT_DUMP_STATS).join(', ')}`);
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  if (!['auto', 'sampler', 'train'].includes(o.studentLp)) throw new Error(`dump statistics: studentLp must be 'auto', 'sampler' or 'train', got '${o.studentLp}'`);
  for (let i = 1; i < o.etaGrid.length; i++) if (!(o.etaGrid[i] > o.etaGrid[i - 1])) throw new Error('dump statistics: etaGrid must be strictly increasing');
  if (!(o.zeroEps > 0)) throw new Error(`dump statistics: zeroEps must be > 0, got ${o.zeroEps}`);
  if (!Number.isInteger(o.positionBins) || o.positionBins < 1) throw new Error(`dump statistics: positionBins must be a positive integer, got ${o.positionBins}`);
  const per = o.displayBinWidth * o.sketchBinsPerUnit;
  if (Math.abs(per - Math.round(per)) > 1e-9 || per < 1) throw new Error(`dump statistics: displayBinWidth must be a multiple of 1 / sketchBinsPerUnit, got ${o.displayBinWidth}`);
  return o;
}

/** c of the symlog axis of sampler-vs-recomputed gaps (resolves gaps down to ~1e-7 nats). */
export const GAP_LINTHRESH = 1e-7;

/** A histogram on explicit edges (data units), numpy's convention, with under/overflow. */
export interface FixedHistogram {
  edges: Float64Array;
  counts: Float64Array;
  underflow: number;
  overflow: number;
}

function fixedHistogram(lo: number, hi: number, bins: number): FixedHistogram & { add(x: number): void } {
  const edges = Float64Array.from({ length: bins + 1 }, (_, i) => lo + (i * (hi - lo)) / bins);
  const h = {
    edges,
    counts: new Float64Array(bins),
    underflow: 0,
    overflow: 0,
    add(x: number) {
      if (x < lo) h.underflow++;
      else if (x > hi) h.overflow++;
      else h.counts[Math.min(bins - 1, Math.floor(((x - lo) / (hi - lo)) * bins))]++;
    },
  };
  return h;
}

/** Statistics of one set of values (overall, a position bin, a token class). */
class ValueGroup {
  readonly m = new Moments();
  readonly sketch: QuantileSketch;
  neg = 0;
  pos = 0;
  negSum = 0;
  posSum = 0;
  readonly band: Float64Array;
  // values of the current chunk, summarised together in flush() (two-pass moments, then a Pebay merge)
  private buf = new Float64Array(1024);
  private bins = new Int32Array(1024);
  private n = 0;

  constructor(readonly label: string, readonly split: 'all' | 'position' | 'class' | 'relpos', private readonly eps: number[], sketch: Partial<SketchOptions>) {
    this.sketch = new QuantileSketch(sketch);
    this.band = new Float64Array(eps.length);
  }

  /** Queues x, whose sketch bin is b (sketch.binOf(x)). */
  push(x: number, b: number): void {
    if (this.n === this.buf.length) {
      const nb = new Float64Array(this.n * 2);
      nb.set(this.buf);
      this.buf = nb;
      const bb = new Int32Array(this.n * 2);
      bb.set(this.bins);
      this.bins = bb;
    }
    this.buf[this.n] = x;
    this.bins[this.n++] = b;
  }

  add(x: number): void {
    this.push(x, this.sketch.binOf(x));
  }

  /** Folds the queued values into the summaries. */
  flush(): void {
    const n = this.n;
    if (n === 0) return;
    const v = this.buf;
    this.m.merge(Moments.fromBatch(v, n));
    const eps = this.eps;
    const E = eps.length;
    const counts = this.sketch.counts;
    const bins = this.bins;
    let neg = 0, pos = 0, negSum = 0, posSum = 0, inRange = 0;
    // the default three zero bands in locals (the hot path); any other number of bands in the general loop
    const e0 = E > 0 ? eps[0] : -1, e1 = E > 1 ? eps[1] : -1, e2 = E > 2 ? eps[2] : -1;
    let b0 = 0, b1 = 0, b2 = 0;
    for (let i = 0; i < n; i++) {
      const x = v[i];
      const b = bins[i];
      if (b >= 0) {
        counts[b]++;
        inRange++;
      } else this.sketch.addBin(x, b);
      let a = x;
      if (x < 0) { neg++; negSum += x; a = -x; }
      else if (x > 0) { pos++; posSum += x; }
      if (a < e0) b0++;
      if (a < e1) b1++;
      if (a < e2) b2++;
      for (let e = 3; e < E; e++) if (a < eps[e]) this.band[e]++;
    }
    this.sketch.n += inRange;
    this.neg += neg;
    this.pos += pos;
    this.negSum += negSum;
    this.posSum += posSum;
    if (E > 0) this.band[0] += b0;
    if (E > 1) this.band[1] += b1;
    if (E > 2) this.band[2] += b2;
    this.n = 0;
  }

  /** The adv/-style metrics under `prefix`; approximate keys recorded in `approx`. */
  metrics(prefix: string, o: DumpStatsOptions, notes: string[], approx: Record<string, string>, bound: string): Record<string, number> {
    const out: Record<string, number> = {};
    const put = (k: string, v: number) => (out[prefix + k] = v);
    const n = this.m.n;
    put('count', n);
    if (n === 0) {
      for (const k of ['mean', 'std', 'skewness', 'excess_kurtosis', 'min', 'max', 'frac_neg', 'frac_pos', 'frac_zero', 'neg_mean', 'pos_mean', 'hill_neg', 'hill_pos', 'tail_spread_ratio']) put(k, NaN);
      for (const q of o.quantiles) put(quantileKey(q), NaN);
      for (const e of o.eps) put(`frac_abs_lt_${keyNumber(e)}`, NaN);
      put('hill_neg_k', 0);
      put('hill_pos_k', 0);
      notes.push(`${prefix}*: no tokens in this group, so its statistics are NaN (count 0)`);
      return out;
    }
    put('mean', this.m.mean);
    put('min', this.m.min);
    put('max', this.m.max);
    put('std', this.m.std());
    if (n < 2) notes.push(`${prefix}std is NaN: the sample standard deviation (ddof 1) needs >= 2 values (count ${n})`);
    const constant = this.m.min === this.m.max;
    put('skewness', constant ? NaN : this.m.skewness());
    if (n < 3 || constant) notes.push(`${prefix}skewness is NaN: needs >= 3 values that are not all equal (count ${n})`);
    put('excess_kurtosis', constant ? NaN : this.m.excessKurtosis());
    if (n < 4 || constant) notes.push(`${prefix}excess_kurtosis is NaN: needs >= 4 values that are not all equal (count ${n})`);
    put('frac_neg', this.neg / n);
    put('frac_pos', this.pos / n);
    put('frac_zero', (n - this.neg - this.pos) / n);
    put('neg_mean', this.neg > 0 ? this.negSum / this.neg : NaN);
    put('pos_mean', this.pos > 0 ? this.posSum / this.pos : NaN);
    if (this.neg === 0) notes.push(`${prefix}neg_mean is NaN: no token has A < 0`);
    if (this.pos === 0) notes.push(`${prefix}pos_mean is NaN: no token has A > 0`);
    o.eps.forEach((e, i) => put(`frac_abs_lt_${keyNumber(e)}`, this.band[i] / n));
    const q = (p: number) => this.sketch.quantile(p, this.m.min, this.m.max);
    for (const p of o.quantiles) {
      put(quantileKey(p), q(p));
      approx[prefix + quantileKey(p)] = bound;
    }
    const k = Math.floor(o.hillFraction * n);
    for (const [side, size] of [['neg', this.neg], ['pos', this.pos]] as const) {
      const h = this.sketch.hill(side, k, size);
      put(`hill_${side}`, h.xi);
      put(`hill_${side}_k`, h.k);
      approx[`${prefix}hill_${side}`] = 'sketch: the k most extreme values at their bin centres (|ln x_hat - ln x| <= 5.8e-4 for |x| >> 0.01)';
      if (Number.isNaN(h.xi)) notes.push(`${prefix}hill_${side} is NaN: k = ${k} (requested) clamped to tail size - 1 = ${size - 1} leaves k < 1`);
    }
    const q01 = q(0.01), q50 = q(0.5), q99 = q(0.99);
    const right = q99 - q50;
    put('tail_spread_ratio', right > 0 ? (q50 - q01) / right : NaN);
    approx[`${prefix}tail_spread_ratio`] = bound;
    if (!(right > 0)) notes.push(`${prefix}tail_spread_ratio is NaN: q99 - q50 = 0`);
    return out;
  }
}

/** Black-hole points (one per measured position). */
export interface BlackHolePoints {
  /** A at the position. */
  advantage: Float64Array;
  /** pT(v*). */
  pT: Float64Array;
  /** pS(v*) when known, else its upper bound (the student's smallest top-K probability). */
  pS: Float64Array;
  /** 1 = pS exact (v* in the student's top-K), 0 = upper bound. */
  known: Uint8Array;
  /** Student rank of v* when known, else 0 (= beyond the student's top-K). */
  rank: Int32Array;
}

export interface DumpAnalysis {
  /** 'exact': every statistic exact (analyseDump); 'streaming': the keys in `approximate` are approximate. */
  mode: 'exact' | 'streaming';
  /** Which student log-prob defined A. */
  studentLpSource: 'train' | 'sampler';
  metrics: Record<string, number>;
  /** Approximate metric keys -> the bound or method (empty in exact mode). */
  approximate: Record<string, string>;
  notes: string[];
  advantage: {
    /** Symlog-axis histogram (display bins). */
    histogram: { axisEdges: Float64Array; edges: Float64Array; counts: Float64Array; underflow: number; overflow: number; linthresh: number };
    groups: { split: 'relpos' | 'position' | 'class'; label: string; count: number; mean: number; fracNeg: number; quantiles: Float64Array; counts: Float64Array }[];
    quantileLevels: Float64Array;
    /** Mean A, count and share negative per masked-in position index (the last index pools the rest). */
    byPosition: { mean: Float64Array; count: Float64Array; fracNeg: Float64Array };
    /** Per training step (when the dump has several): step, count, mean, share negative. */
    bySteps: { step: Float64Array; count: Float64Array; mean: Float64Array; fracNeg: Float64Array };
    /** Per teacher_id (when recorded). */
    byTeacher: { teacherId: string[]; count: Float64Array; mean: Float64Array };
  };
  intervention: { eta_G: Float64Array; ratio_G: Float64Array; zeroBand_G: Float64Array; negative_G: Float64Array; positive_G: Float64Array };
  entropy: { student: FixedHistogram | null; teacher: FixedHistogram | null };
  samplerGap: { histogram: { axisEdges: Float64Array; edges: Float64Array; counts: Float64Array; underflow: number; overflow: number; linthresh: number } } | null;
  topk: {
    k: number;
    kSweep: { k_K: Int32Array; teacherMass_K: Float64Array; studentOwnMass_K: Float64Array | null; overlap_K: Float64Array | null };
    teacherMass: FixedHistogram;
    studentMassLower: FixedHistogram | null;
    /** count of tokens with overlap j (j = 0 .. K). */
    overlapCounts: Float64Array | null;
  } | null;
  blackhole: { points: BlackHolePoints; sampled: boolean } | null;
}

/** One-pass accumulator of a dump's diagnostics (see the header). */
export class DumpStats {
  readonly o: DumpStatsOptions;
  private readonly sketchOpts: Partial<SketchOptions>;
  private readonly special: Set<number> | null;
  /** special ids as a lookup table (1 = special), for the per-token class split. */
  private specialTable: Uint8Array | null = null;
  private source: 'train' | 'sampler' | null = null;
  private sequences = 0;
  private tokens = 0;
  private maskedIn = 0;
  private skipped = 0;
  private readonly all: ValueGroup;
  private readonly relpos: ValueGroup[];
  private readonly pos: ValueGroup[];
  private readonly cls: ValueGroup[] | null;
  private readonly posSum: Float64Array;
  private readonly posCount: Float64Array;
  private readonly posNeg: Float64Array;
  private readonly steps = new Map<number, { n: number; sum: number; neg: number }>();
  private readonly teachers = new Map<string, { n: number; sum: number }>();
  // intervention: counts of tokens whose first grid index with d <= eta_g is g, by part
  private readonly ivZero: Float64Array;
  private readonly ivNeg: Float64Array;
  private readonly ivPos: Float64Array;
  private ivBand = 0;
  // entropy
  private readonly entS = new Moments();
  private readonly entT = new Moments();
  private readonly entGap = new Moments();
  private entHistS: ReturnType<typeof fixedHistogram> | null = null;
  private entHistT: ReturnType<typeof fixedHistogram> | null = null;
  // sampler vs recomputed
  private readonly gap: ValueGroup;
  private gapSeen = false;
  private samplerZero = 0;
  private gapAbove = 0;
  private gapAbsMax = 0;
  // rewards
  private readonly reward = new Moments();
  private rewardPos = 0;
  // top-K
  private tk: {
    K: number; KS: number; n: number; massSum: number; massMin: number; massMax: number; tailSum: number;
    prefix: Float64Array; ownPrefix: Float64Array | null; ownSum: number; overlapIdx: Float64Array | null; overlapSum: number; overlapCounts: Float64Array | null;
    lowerSum: number; upperSum: number; complete: number; completeMassSum: number; completeTailSum: number; clamp: number; sampledIn: number;
    massHist: ReturnType<typeof fixedHistogram>; lowerHist: ReturnType<typeof fixedHistogram> | null;
  } | null = null;
  // black hole
  private bh = { count: 0, noVStar: 0, ptSum: 0, known: 0, psSum: 0, psUpperSum: 0, rankSum: 0, top1: 0, opdSum: 0, promoSum: 0, promoN: 0, fklSum: 0, aopdSum: 0, negWithTopk: 0 };
  private bhPoints: { adv: number[]; pT: number[]; pS: number[]; known: number[]; rank: number[] } = { adv: [], pT: [], pS: [], known: [], rank: [] };
  private bhSeen = 0;
  private readonly rand: () => number;
  private vocab: number | null;
  private widerRows = false;

  constructor(readonly meta: DumpMeta, options: Partial<DumpStatsOptions> = {}) {
    this.o = resolveDumpStatsOptions(options);
    this.sketchOpts = { linthresh: this.o.linthresh, binsPerUnit: this.o.sketchBinsPerUnit };
    const ids = this.o.specialIds ?? meta.specialIds ?? null;
    this.special = ids ? new Set(ids) : null;
    if (ids && ids.length > 0) {
      this.specialTable = new Uint8Array(Math.max(...ids) + 1);
      for (const id of ids) if (id >= 0) this.specialTable[id] = 1;
    } else if (ids) this.specialTable = new Uint8Array(0);
    const g = (label: string, split: ValueGroup['split']) => new ValueGroup(label, split, this.o.eps, this.sketchOpts);
    this.all = g('all', 'all');
    const B = this.o.positionBins;
    this.relpos = Array.from({ length: B }, (_, b) => g(`relpos=${keyNumber(b / B)}-${keyNumber((b + 1) / B)}`, 'relpos'));
    const e = this.o.positionEdges;
    this.pos = Array.from({ length: e.length - 1 }, (_, b) => g(`pos=${keyNumber(e[b])}-${e[b + 1] === Infinity ? 'inf' : keyNumber(e[b + 1])}`, 'position'));
    this.cls = this.special ? [g('special', 'class'), g('content', 'class')] : null;
    const P = this.o.maxPosition;
    this.posSum = new Float64Array(P);
    this.posCount = new Float64Array(P);
    this.posNeg = new Float64Array(P);
    const G = this.o.etaGrid.length;
    this.ivZero = new Float64Array(G + 1);
    this.ivNeg = new Float64Array(G + 1);
    this.ivPos = new Float64Array(G + 1);
    // sampler gaps are tiny (float32 rounding: ~1e-5 nats): a finer symlog axis than the advantages'
    this.gap = new ValueGroup('sampler_gap', 'all', this.o.eps, { binsPerUnit: this.o.sketchBinsPerUnit, linthresh: GAP_LINTHRESH, tMax: 13 });
    this.rand = prng(this.o.seed);
    const vs = meta.vocabSizeStudent ?? meta.vocabSizeTeacher;
    this.vocab = vs ?? null;
  }

  add(c: TokenChunk): void {
    if (this.source === null) {
      const wantTrain = this.o.studentLp === 'train' || (this.o.studentLp === 'auto' && c.studentLpTrain !== null);
      if (wantTrain && !c.studentLpTrain) throw new Error("dump statistics: studentLp 'train' asked for, but the dump has no student_lp_train");
      this.source = wantTrain ? 'train' : 'sampler';
    }
    const lS = this.source === 'train' ? c.studentLpTrain! : c.studentLp;
    const lT = c.teacherLp;
    const o = this.o;
    const B = o.positionBins;
    const edges = o.positionEdges;
    const P = o.maxPosition;
    const grid = o.etaGrid;
    const G = grid.length;
    this.sequences += c.S;
    this.tokens += c.N;
    if (c.studentEntropy && !this.entHistS) this.entHistS = fixedHistogram(0, this.entropyMax(), 60);
    if (c.teacherEntropy && !this.entHistT) this.entHistT = fixedHistogram(0, this.entropyMax(), 60);
    if (c.teacherTopk) this.initTopk(c);

    const sk = this.all.sketch;
    const gapSk = this.gap.sketch;
    const cls = this.cls;
    const specialTable = this.specialTable;
    for (let s = 0; s < c.S; s++) {
      const a = c.offsets[s];
      const b = c.offsets[s + 1];
      let L = 0;
      for (let i = a; i < b; i++) if (c.mask[i] !== 0) L++;
      const r = c.rewards[s];
      if (!Number.isNaN(r)) {
        this.reward.add(r);
        if (r > 0) this.rewardPos++;
      }
      let seqN = 0, seqSum = 0, seqNeg = 0;
      let j = 0;
      let e = 0; // absolute-position group of masked-in position j (positions only increase)
      for (let i = a; i < b; i++) {
        if (c.mask[i] === 0) continue;
        this.maskedIn++;
        const jj = j++;
        const x = lT[i] - lS[i];
        if (!(x - x === 0)) {
          this.skipped++; // NaN or infinite
          continue;
        }
        const bin = sk.binOf(x);
        this.all.push(x, bin);
        this.relpos[Math.floor((jj * B) / L)].push(x, bin);
        while (e + 1 < edges.length && jj >= edges[e + 1]) e++;
        if (e + 1 < edges.length) this.pos[e].push(x, bin);
        if (cls) {
          const y = c.responseIds[i];
          cls[y >= 0 && y < specialTable!.length && specialTable![y] === 1 ? 0 : 1].push(x, bin);
        }
        const p = jj < P ? jj : P - 1;
        this.posSum[p] += x;
        this.posCount[p]++;
        seqN++;
        seqSum += x;
        if (x < 0) {
          this.posNeg[p]++;
          seqNeg++;
        }
        // intervention: first grid index g with d <= eta_g (G = none)
        const d = Math.exp(lT[i]) - Math.exp(lS[i]);
        let lo = 0, hi = G;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (d <= grid[mid]) hi = mid;
          else lo = mid + 1;
        }
        const ax = x < 0 ? -x : x;
        if (ax < o.zeroEps) { this.ivZero[lo]++; this.ivBand++; }
        else if (x < 0) this.ivNeg[lo]++;
        else this.ivPos[lo]++;
        // entropy
        if (c.studentEntropy) {
          const h = c.studentEntropy[i];
          if (Number.isFinite(h)) { this.entS.add(h); this.entHistS!.add(h); }
          if (c.teacherEntropy && Number.isFinite(h) && Number.isFinite(c.teacherEntropy[i])) this.entGap.add(h - c.teacherEntropy[i]);
        }
        if (c.teacherEntropy) {
          const h = c.teacherEntropy[i];
          if (Number.isFinite(h)) { this.entT.add(h); this.entHistT!.add(h); }
        }
        // sampler vs recomputed
        if (c.studentLp[i] === 0) this.samplerZero++;
        if (c.studentLpTrain) {
          const dg = c.studentLp[i] - c.studentLpTrain[i];
          if (dg - dg === 0) {
            this.gapSeen = true;
            this.gap.push(dg, gapSk.binOf(dg));
            const adg = dg < 0 ? -dg : dg;
            if (adg > 0.1) this.gapAbove++;
            if (adg > this.gapAbsMax) this.gapAbsMax = adg;
          }
        }
        if (c.teacherTopk) this.addTopk(c, i, x, lS[i]);
      }
      const step = c.steps[s];
      if (!Number.isNaN(step) && seqN > 0) {
        let st = this.steps.get(step);
        if (!st) this.steps.set(step, (st = { n: 0, sum: 0, neg: 0 }));
        st.n += seqN;
        st.sum += seqSum;
        st.neg += seqNeg;
      }
      const tid = c.teacherIds[s];
      if (tid !== null && seqN > 0) {
        let tt = this.teachers.get(tid);
        if (!tt) this.teachers.set(tid, (tt = { n: 0, sum: 0 }));
        tt.n += seqN;
        tt.sum += seqSum;
      }
    }
    for (const g of this.groups()) g.flush();
  }

  private groups(): ValueGroup[] {
    return [this.all, ...this.relpos, ...this.pos, ...(this.cls ?? []), this.gap];
  }

  private entropyMax(): number {
    return this.vocab ? Math.log(this.vocab) : 12;
  }

  private initTopk(c: TokenChunk): void {
    const K = c.teacherTopk!.k;
    const KS = c.studentTopk ? c.studentTopk.k : 0;
    if (this.tk) {
      if (K > this.tk.K || KS > this.tk.KS) this.widerRows = true; // the K sweep stays at the first chunk's widths
      return;
    }
    const Ko = Math.min(K, KS);
    this.tk = {
      K, KS, n: 0, massSum: 0, massMin: Infinity, massMax: -Infinity, tailSum: 0,
      prefix: new Float64Array(K), ownPrefix: KS ? new Float64Array(KS) : null, ownSum: 0,
      overlapIdx: KS ? new Float64Array(Ko) : null, overlapSum: 0, overlapCounts: KS ? new Float64Array(Ko + 1) : null,
      lowerSum: 0, upperSum: 0, complete: 0, completeMassSum: 0, completeTailSum: 0, clamp: 0, sampledIn: 0,
      massHist: fixedHistogram(0, 1, 50), lowerHist: KS ? fixedHistogram(0, 1, 50) : null,
    };
  }

  // row scratch (sorted valid entries)
  private tIds = new Int32Array(0);
  private tLp = new Float64Array(0);
  private sIds = new Int32Array(0);
  private sLp = new Float64Array(0);

  /** Valid entries of row i sorted by log-prob, descending (ties: lower id); returns their count. */
  private sortedRow(ids: Int32Array, lp: Float64Array, K: number, i: number, side: 't' | 's'): number {
    if ((side === 't' ? this.tIds : this.sIds).length < K) {
      if (side === 't') { this.tIds = new Int32Array(K); this.tLp = new Float64Array(K); }
      else { this.sIds = new Int32Array(K); this.sLp = new Float64Array(K); }
    }
    const oi = side === 't' ? this.tIds : this.sIds;
    const ol = side === 't' ? this.tLp : this.sLp;
    let n = 0;
    let sorted = true;
    for (let q = 0; q < K; q++) {
      const id = ids[i * K + q];
      const v = lp[i * K + q];
      if (id < 0 || !(v > -Infinity)) continue;
      if (n > 0 && (v > ol[n - 1] || (v === ol[n - 1] && id < oi[n - 1]))) sorted = false;
      oi[n] = id;
      ol[n] = v;
      n++;
    }
    if (!sorted) {
      const idx = Array.from({ length: n }, (_, q) => q).sort((x, y) => ol[y] - ol[x] || oi[x] - oi[y]);
      const ci = idx.map((q) => oi[q]);
      const cl = idx.map((q) => ol[q]);
      for (let q = 0; q < n; q++) { oi[q] = ci[q]; ol[q] = cl[q]; }
    }
    return n;
  }

  private addTopk(c: TokenChunk, i: number, A: number, lSy: number): void {
    const tk = this.tk!;
    const T = c.teacherTopk!;
    const nT = this.sortedRow(T.ids, T.lp, T.k, i, 't');
    const S = c.studentTopk;
    const nS = S ? this.sortedRow(S.ids, S.lp, S.k, i, 's') : 0;
    const y = c.responseIds[i];
    tk.n++;
    // teacher mass and its prefix sums (K sweep)
    let mass = 0;
    for (let q = 0; q < nT; q++) {
      mass += Math.exp(this.tLp[q]);
      if (q < tk.K) tk.prefix[q] += mass;
    }
    for (let q = nT; q < tk.K; q++) tk.prefix[q] += mass;
    tk.massSum += mass;
    tk.massMin = Math.min(tk.massMin, mass);
    tk.massMax = Math.max(tk.massMax, mass);
    tk.tailSum += Math.max(0, 1 - mass);
    tk.massHist.add(mass);
    let yIn = false;
    for (let q = 0; q < nT; q++) if (this.tIds[q] === y) yIn = true;
    if (yIn) tk.sampledIn++;
    // student side
    let pMinS = NaN;
    if (S) {
      let own = 0;
      for (let q = 0; q < nS; q++) {
        own += Math.exp(this.sLp[q]);
        if (q < tk.KS) tk.ownPrefix![q] += own;
      }
      for (let q = nS; q < tk.KS; q++) tk.ownPrefix![q] += own;
      tk.ownSum += own;
      pMinS = nS > 0 ? Math.exp(this.sLp[nS - 1]) : NaN;
      // overlap at every K' and student mass on the teacher's top-K
      const Ko = tk.overlapIdx!.length;
      let both = 0;
      let lower = 0, unknown = 0, fkl = 0;
      for (let q = 0; q < nT; q++) {
        const v = this.tIds[q];
        let r = -1;
        for (let u = 0; u < nS; u++) if (this.sIds[u] === v) { r = u; break; }
        if (r >= 0) {
          const idx = Math.max(q, r);
          if (idx < Ko) tk.overlapIdx![idx]++;
          if (q < Ko && r < Ko) both++;
        }
        const lsv = r >= 0 ? this.sLp[r] : v === y ? lSy : NaN;
        if (Number.isNaN(lsv)) unknown++;
        else {
          lower += Math.exp(lsv);
          fkl += Math.exp(this.tLp[q]) * (this.tLp[q] - lsv);
        }
      }
      tk.overlapCounts![both]++;
      tk.overlapSum += both / Ko;
      const upper = Math.min(1, lower + unknown * (Number.isNaN(pMinS) ? 1 : pMinS));
      tk.lowerSum += lower;
      tk.upperSum += upper;
      tk.lowerHist!.add(lower);
      if (unknown === 0) {
        tk.complete++;
        tk.completeMassSum += lower;
        tk.completeTailSum += Math.max(0, 1 - lower);
        if (fkl < 0) tk.clamp++;
      }
    }
    // black hole at A < 0
    if (!(A < 0)) return;
    const bh = this.bh;
    bh.negWithTopk++;
    let vq = -1;
    for (let q = 0; q < nT; q++) if (this.tIds[q] !== y) { vq = q; break; } // sorted: the first non-y is the argmax (ties: lower id)
    if (vq < 0) {
      bh.noVStar++;
      return;
    }
    const vStar = this.tIds[vq];
    const pT = Math.exp(this.tLp[vq]);
    bh.count++;
    bh.ptSum += pT;
    let pS = NaN;
    let rank = 0;
    let known = 0;
    if (S) {
      for (let u = 0; u < nS; u++) {
        if (this.sIds[u] === vStar) {
          pS = Math.exp(this.sLp[u]);
          let rk = 1;
          for (let w = 0; w < nS; w++) if (this.sLp[w] > this.sLp[u]) rk++;
          rank = rk;
          known = 1;
          break;
        }
      }
      const psBound = known ? pS : Number.isNaN(pMinS) ? 1 : pMinS;
      bh.psUpperSum += psBound;
      if (known) {
        bh.known++;
        bh.psSum += pS;
        bh.rankSum += rank;
        if (rank === 1) bh.top1++;
        bh.opdSum += -A * pS;
        bh.fklSum += pT - pS;
        // teacher mass over its top-K (the aopd un-normalised imitation branch)
        let m = 0;
        for (let q = 0; q < nT; q++) m += Math.exp(this.tLp[q]);
        bh.aopdSum += pT - m * pS;
        let maxOther = -Infinity;
        for (let u = 0; u < nS; u++) if (this.sIds[u] !== y && this.sLp[u] > maxOther) maxOther = this.sLp[u];
        if (maxOther > -Infinity) {
          bh.promoSum += pS / Math.exp(maxOther);
          bh.promoN++;
        }
      }
      this.keepPoint(A, pT, psBound, known, rank);
    } else this.keepPoint(A, pT, NaN, 0, 0);
  }

  private keepPoint(a: number, pT: number, pS: number, known: number, rank: number): void {
    const P = this.bhPoints;
    this.bhSeen++;
    if (this.o.keepAllPoints || P.adv.length < this.o.reservoir) {
      P.adv.push(a); P.pT.push(pT); P.pS.push(pS); P.known.push(known); P.rank.push(rank);
      return;
    }
    const j = Math.floor(this.rand() * this.bhSeen);
    if (j < this.o.reservoir) {
      P.adv[j] = a; P.pT[j] = pT; P.pS[j] = pS; P.known[j] = known; P.rank[j] = rank;
    }
  }

  /** The t-axis display range covering [min, max] in steps of displayBinWidth (max never on the last edge). */
  displayRange(min: number, max: number, c = this.o.linthresh, tMax = 6.5): [number, number] {
    const w = this.o.displayBinWidth;
    const t = (x: number) => (x >= 0 ? Math.log10(1 + x / c) : -Math.log10(1 - x / c));
    let t0 = Math.max(-tMax, Math.floor(t(min) / w) * w);
    let t1 = Math.min(tMax, Math.floor(t(max) / w) * w + w);
    if (!(t1 > t0)) { t0 = -w; t1 = w; }
    return [Number(t0.toFixed(10)), Number(t1.toFixed(10))];
  }

  finish(): DumpAnalysis {
    const o = this.o;
    const metrics: Record<string, number> = {};
    const notes: string[] = [];
    const approx: Record<string, string> = {};
    const bound = `sketch quantile: |q_hat - q| <= ${this.all.sketch.relativeBound().toExponential(1)} (|q| + ${o.linthresh})`;
    if (this.maskedIn === 0) throw new Error(this.tokens === 0 ? 'dump statistics: no tokens (the dump is empty)' : `dump statistics: all ${this.tokens} tokens are masked out (mask has no 1s); a statistic over zero tokens is undefined`);
    if (this.all.m.n === 0) throw new Error(`dump statistics: none of the ${this.maskedIn} masked-in tokens has a finite advantage (teacher_lp - student log-prob); run the doctor`);
    metrics['dump/sequences'] = this.sequences;
    metrics['dump/tokens'] = this.tokens;
    metrics['dump/masked_in'] = this.maskedIn;
    metrics['dump/mask_frac'] = this.maskedIn / this.tokens;
    metrics['dump/mean_response_length'] = this.tokens / this.sequences;
    metrics['dump/skipped_non_finite'] = this.skipped;
    if (this.skipped > 0) notes.push(`${this.skipped} masked-in tokens with a non-finite advantage were skipped (the doctor's non_finite check fails on them)`);
    Object.assign(metrics, this.all.metrics('adv/', o, notes, approx, bound));
    const groups: DumpAnalysis['advantage']['groups'] = [];
    const [t0, t1] = this.displayRange(this.all.m.min, this.all.m.max);
    const hist = this.all.sketch.rebin(t0, t1, o.displayBinWidth);
    for (const g of [...this.relpos, ...this.pos, ...(this.cls ?? [])]) {
      Object.assign(metrics, g.metrics(`adv/${g.label}/`, o, notes, approx, bound));
      groups.push({
        split: g.split as 'relpos' | 'position' | 'class',
        label: g.label,
        count: g.m.n,
        mean: g.m.n ? g.m.mean : NaN,
        fracNeg: g.m.n ? g.neg / g.m.n : NaN,
        quantiles: Float64Array.from(o.quantiles, (p) => (g.m.n ? g.sketch.quantile(p, g.m.min, g.m.max) : NaN)),
        counts: g.sketch.rebin(t0, t1, o.displayBinWidth).counts,
      });
    }
    if (!this.cls) notes.push('no special_ids in the run metadata (or options): the gap by token class (special/template vs content) is not computed');
    // intervention: ratio(eta_g) = share with first index <= g
    const G = o.etaGrid.length;
    const n = this.all.m.n;
    const iv = { eta_G: Float64Array.from(o.etaGrid), ratio_G: new Float64Array(G), zeroBand_G: new Float64Array(G), negative_G: new Float64Array(G), positive_G: new Float64Array(G) };
    let cz = 0, cn = 0, cp = 0;
    for (let g = 0; g < G; g++) {
      cz += this.ivZero[g]; cn += this.ivNeg[g]; cp += this.ivPos[g];
      iv.zeroBand_G[g] = cz / n;
      iv.negative_G[g] = cn / n;
      iv.positive_G[g] = cp / n;
      iv.ratio_G[g] = (cz + cn + cp) / n;
    }
    const g0 = o.etaGrid.indexOf(0);
    if (g0 >= 0) {
      metrics['intervention/ratio'] = iv.ratio_G[g0];
      metrics['intervention/ratio_zero_band'] = iv.zeroBand_G[g0];
      metrics['intervention/ratio_negative'] = iv.negative_G[g0];
      metrics['intervention/ratio_positive'] = iv.positive_G[g0];
      metrics['intervention/eta'] = 0;
    } else notes.push('the eta grid lacks 0: intervention/ratio (eta = 0, standard AOPD) is not reported');
    metrics['intervention/aopd_zero_ratio'] = this.ivBand / n;
    metrics['intervention/zero_eps'] = o.zeroEps;
    metrics['intervention/count'] = n;
    // per position / step / teacher
    const byPosition = {
      mean: Float64Array.from(this.posSum, (s, p) => (this.posCount[p] ? s / this.posCount[p] : NaN)),
      count: Float64Array.from(this.posCount),
      fracNeg: Float64Array.from(this.posNeg, (s, p) => (this.posCount[p] ? s / this.posCount[p] : NaN)),
    };
    let last = byPosition.count.length;
    while (last > 1 && byPosition.count[last - 1] === 0) last--;
    for (const k of ['mean', 'count', 'fracNeg'] as const) byPosition[k] = byPosition[k].slice(0, last);
    const steps = [...this.steps.keys()].sort((a, b) => a - b);
    const bySteps = {
      step: Float64Array.from(steps),
      count: Float64Array.from(steps, (s) => this.steps.get(s)!.n),
      mean: Float64Array.from(steps, (s) => this.steps.get(s)!.sum / this.steps.get(s)!.n),
      fracNeg: Float64Array.from(steps, (s) => this.steps.get(s)!.neg / this.steps.get(s)!.n),
    };
    const tids = [...this.teachers.keys()].sort();
    const byTeacher = { teacherId: tids, count: Float64Array.from(tids, (t) => this.teachers.get(t)!.n), mean: Float64Array.from(tids, (t) => this.teachers.get(t)!.sum / this.teachers.get(t)!.n) };
    for (let i = 0; i < tids.length; i++) {
      metrics[`adv/teacher=${tids[i]}/count`] = byTeacher.count[i];
      metrics[`adv/teacher=${tids[i]}/mean`] = byTeacher.mean[i];
    }
    // entropy
    const ent = (m: Moments, side: string) => {
      metrics[`entropy/${side}_mean`] = m.mean;
      metrics[`entropy/${side}_std`] = m.std();
      metrics[`entropy/${side}_min`] = m.min;
      metrics[`entropy/${side}_max`] = m.max;
    };
    if (this.entS.n > 0) ent(this.entS, 'student');
    if (this.entT.n > 0) ent(this.entT, 'teacher');
    if (this.entGap.n > 0) metrics['entropy/gap_mean'] = this.entGap.mean;
    if (this.entS.n === 0 && this.entT.n === 0) notes.push('no per-token entropies in the dump (student_entropy / teacher_entropy): entropy figures are not drawn');
    // sampler vs recomputed
    metrics['sampler/frac_exact_zero'] = this.samplerZero / n;
    let samplerGap: DumpAnalysis['samplerGap'] = null;
    if (this.gapSeen) {
      const gm = this.gap.m;
      metrics['sampler/gap_mean'] = gm.mean;
      metrics['sampler/gap_abs_max'] = this.gapAbsMax;
      metrics['sampler/gap_std'] = gm.std();
      metrics['sampler/frac_gap_gt_0.1'] = this.gapAbove / gm.n;
      const [a, b] = this.displayRange(gm.min, gm.max, GAP_LINTHRESH, 13);
      samplerGap = { histogram: { ...this.gap.sketch.rebin(a, b, o.displayBinWidth), linthresh: GAP_LINTHRESH } };
    }
    // rewards
    if (this.reward.n > 0) {
      metrics['reward/count'] = this.reward.n;
      metrics['reward/mean'] = this.reward.mean;
      metrics['reward/std'] = this.reward.std();
      metrics['reward/frac_positive'] = this.rewardPos / this.reward.n;
    }
    // top-K
    let topk: DumpAnalysis['topk'] = null;
    const tk = this.tk;
    if (tk && tk.n > 0) {
      metrics['topk/k'] = tk.K;
      metrics['topk/teacher_mass'] = tk.massSum / tk.n;
      metrics['topk/teacher_mass_min'] = tk.massMin;
      metrics['topk/teacher_mass_max'] = tk.massMax;
      metrics['topk/teacher_tail_mass'] = tk.tailSum / tk.n;
      metrics['topk/sampled_in_teacher_topk'] = tk.sampledIn / tk.n;
      metrics['topk/teacher_student_gap'] = this.all.m.mean;
      let overlap_K: Float64Array | null = null;
      if (tk.ownPrefix) {
        const Ko = tk.overlapIdx!.length;
        metrics['topk/overlap_ratio'] = tk.overlapSum / tk.n;
        metrics['topk/overlap_k'] = Ko;
        metrics['topk/student_topk_mass'] = tk.ownSum / tk.n;
        metrics['topk/student_mass_lower'] = tk.lowerSum / tk.n;
        metrics['topk/student_mass_upper'] = tk.upperSum / tk.n;
        metrics['topk/student_mass_coverage'] = tk.complete / tk.n;
        if (tk.complete === tk.n) {
          metrics['topk/student_mass'] = tk.lowerSum / tk.n;
          metrics['topk/student_tail_mass'] = tk.completeTailSum / tk.n;
          metrics['topk/clamp_frac'] = tk.clamp / tk.n;
        } else {
          notes.push(`topk/student_mass: the student's log-probs on the teacher's top-K are known in ${tk.complete} of ${tk.n} rows (the rest fall outside the student's top-${tk.KS}); reported as bounds topk/student_mass_lower / _upper`);
          if (tk.complete > 0) {
            metrics['topk/student_mass_covered_rows'] = tk.completeMassSum / tk.complete;
            metrics['topk/clamp_frac_covered_rows'] = tk.clamp / tk.complete;
          }
        }
        overlap_K = new Float64Array(Ko);
        let acc = 0;
        for (let k = 0; k < Ko; k++) {
          acc += tk.overlapIdx![k];
          overlap_K[k] = acc / ((k + 1) * tk.n);
        }
      } else notes.push('no student top-K in the dump: overlap, student mass and black-hole student probabilities are not computed');
      topk = {
        k: tk.K,
        kSweep: {
          k_K: Int32Array.from({ length: tk.K }, (_, k) => k + 1),
          teacherMass_K: Float64Array.from(tk.prefix, (s) => s / tk.n),
          studentOwnMass_K: tk.ownPrefix ? Float64Array.from(tk.ownPrefix, (s) => s / tk.n) : null,
          overlap_K,
        },
        teacherMass: { edges: tk.massHist.edges, counts: tk.massHist.counts, underflow: tk.massHist.underflow, overflow: tk.massHist.overflow },
        studentMassLower: tk.lowerHist ? { edges: tk.lowerHist.edges, counts: tk.lowerHist.counts, underflow: tk.lowerHist.underflow, overflow: tk.lowerHist.overflow } : null,
        overlapCounts: tk.overlapCounts,
      };
      if (this.widerRows) notes.push(`some later rows have a wider top-K than the first chunk's (teacher ${tk.K}, student ${tk.KS}): the K sweep stops at those widths; masses use every entry`);
    } else notes.push('no teacher top-K in the dump: top-K and black-hole diagnostics are not computed');
    // black hole
    let blackhole: DumpAnalysis['blackhole'] = null;
    const bh = this.bh;
    if (tk && tk.n > 0) {
      metrics['blackhole/count'] = bh.count;
      metrics['blackhole/frac_negative'] = bh.negWithTopk / tk.n;
      metrics['blackhole/pt_vstar_mean'] = bh.count ? bh.ptSum / bh.count : NaN;
      if (bh.noVStar > 0) notes.push(`blackhole: ${bh.noVStar} positions with A < 0 have a teacher top-K holding only the sampled token (no v*)`);
      if (tk.ownPrefix) {
        const K = bh.known;
        metrics['blackhole/vstar_in_student_topk_frac'] = bh.count ? K / bh.count : NaN;
        metrics['blackhole/frac_vstar_outside_student_topk'] = bh.count ? 1 - K / bh.count : NaN;
        metrics['blackhole/ps_vstar_mean_known'] = K ? bh.psSum / K : NaN;
        metrics['blackhole/ps_vstar_mean_upper'] = bh.count ? bh.psUpperSum / bh.count : NaN;
        metrics['blackhole/rank_vstar_mean_known'] = K ? bh.rankSum / K : NaN;
        metrics['blackhole/frac_vstar_student_top1'] = bh.count ? bh.top1 / bh.count : NaN;
        metrics['blackhole/opd/update_vstar_mean_known'] = K ? bh.opdSum / K : NaN;
        metrics['blackhole/opd/promotion_ratio_mean_known'] = bh.promoN ? bh.promoSum / bh.promoN : NaN;
        metrics['blackhole/fkl/update_vstar_mean_known'] = K ? bh.fklSum / K : NaN;
        metrics['blackhole/aopd_topk/update_vstar_mean_known'] = K ? bh.aopdSum / K : NaN;
        const P = this.bhPoints;
        const ps = P.pS.filter((_, q) => P.known[q] === 1).sort((a, b) => a - b);
        const rk = P.rank.filter((_, q) => P.known[q] === 1).sort((a, b) => a - b);
        const med = (x: number[]) => (x.length === 0 ? NaN : x.length % 2 ? x[x.length >> 1] : (x[x.length / 2 - 1] + x[x.length / 2]) / 2);
        metrics['blackhole/ps_vstar_median_known'] = med(ps);
        metrics['blackhole/rank_vstar_median_known'] = med(rk);
        const sampled = !o.keepAllPoints && this.bhSeen > o.reservoir;
        if (sampled) {
          approx['blackhole/ps_vstar_median_known'] = `median of a reservoir sample of ${o.reservoir} of ${this.bhSeen} positions`;
          approx['blackhole/rank_vstar_median_known'] = approx['blackhole/ps_vstar_median_known'];
        }
      }
      const P = this.bhPoints;
      blackhole = {
        sampled: !o.keepAllPoints && this.bhSeen > o.reservoir,
        points: { advantage: Float64Array.from(P.adv), pT: Float64Array.from(P.pT), pS: Float64Array.from(P.pS), known: Uint8Array.from(P.known), rank: Int32Array.from(P.rank) },
      };
    }
    return {
      mode: 'streaming',
      studentLpSource: this.source ?? 'sampler',
      metrics,
      approximate: approx,
      notes,
      advantage: { histogram: { ...hist, linthresh: o.linthresh }, groups, quantileLevels: Float64Array.from(o.quantiles), byPosition, bySteps, byTeacher },
      intervention: iv,
      entropy: {
        student: this.entHistS ? { edges: this.entHistS.edges, counts: this.entHistS.counts, underflow: this.entHistS.underflow, overflow: this.entHistS.overflow } : null,
        teacher: this.entHistT ? { edges: this.entHistT.edges, counts: this.entHistT.counts, underflow: this.entHistT.underflow, overflow: this.entHistT.overflow } : null,
      },
      samplerGap,
      topk,
      blackhole,
    };
  }
}
