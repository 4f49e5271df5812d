/**
 * Advantage statistics: the measuring equipment behind AOPD Fig. 2a (claim C1: OPD's advantage peaks sharply at
 * 0 and has a much heavier negative than positive tail).
 *
 *   A_t = log pT(y_t) - log pS(y_t)     (methods.md section 1 / AOPD Eq. 1; any per-token values work)
 *
 * Over the masked-in tokens (mask_N = 1), with n = their count and x_(1) <= ... <= x_(n) sorted:
 *   adv/mean               (1/n) sum x
 *   adv/std                sample standard deviation, ddof = 1:  sqrt( sum (x - mean)^2 / (n - 1) )     n >= 2
 *   adv/skewness           adjusted Fisher-Pearson G1 = sqrt(n (n-1)) / (n-2) * m3 / m2^(3/2)            n >= 3
 *                          (m_r = (1/n) sum (x - mean)^r; simple-statistics sampleSkewness, scipy bias=False)
 *   adv/excess_kurtosis    G2 = (n-1) / ((n-2)(n-3)) * ((n+1) m4 / m2^2 - 3 (n-1))                      n >= 4
 *                          (simple-statistics sampleKurtosis, scipy kurtosis(fisher=True, bias=False))
 *                          skewness and kurtosis are NaN for constant data (m2 = 0)
 *   adv/qNN                quantile at level NN/100, linear interpolation (numpy 'linear', R type 7)
 *   adv/frac_neg|pos|zero  share of tokens with A < 0, A > 0, A = 0 exactly
 *   adv/neg_mean|pos_mean  mean of A over the tokens with A < 0 (resp. A > 0): the conditional mean of each part;
 *                          E[min(A, 0)] = frac_neg * neg_mean
 *   adv/frac_abs_lt_EPS    share of tokens with |A| < EPS (the zero band), one key per eps
 *   adv/hill_neg|pos       Hill estimate xi of the negative tail (X = -A, A < 0) and of the positive tail; k stated
 *                          in adv/hill_neg_k|pos_k (tails.ts for the estimator and the k rule)
 *   adv/tail_spread_ratio  (q50 - q01) / (q99 - q50): > 1 when the left tail reaches further than the right
 *
 * The same statistics are computed per group, with the group in the key: by relative position in the sequence
 * (`adv/relpos=0-0.2/mean`, position j of L response tokens is in bin floor(j B / L)), or by absolute position
 * edges (`adv/pos=0-8/mean`), and by token class (`adv/special/mean`, `adv/content/mean`). Group histograms share
 * the overall histogram's edges, so they stack into a position x value heatmap.
 */
import { mean, quantileSorted, sampleKurtosis, sampleSkewness, sampleStandardDeviation } from 'simple-statistics';
import { assertIntInRange, assertInRange, assertLength, assertMask } from '../probs/validate';
import { histogramBins, histogramOnBins, resolveHistogramOptions, type Histogram, type HistogramOptions } from './histogram';
import { hillEstimator, hillK } from './tails';
import { assertFiniteMasked, keyNumber, maskCount, readValues, requireTokens, resolveMask, type PerTokenValues } from './values';

export interface AdvantageInput {
  /** [N] per-token advantages (or any per-token values). */
  advantages_N: PerTokenValues;
  /** [N] 1 = the token counts, 0 = not (prompt, padding). Default: every token counts. */
  mask_N?: ArrayLike<number>;
  /** [N] sequence id per token, each sequence contiguous; needed for the split by position. */
  seqIds_N?: ArrayLike<number>;
  /** [N] 1 = special/template token, 0 = content token; needed for the split by class. */
  special_N?: ArrayLike<number>;
}

export interface AdvantageStatsOptions {
  /** Zero-band half-widths: one `adv/frac_abs_lt_EPS` per entry. Default [1e-3, 1e-2, 1e-1]. */
  eps: number[];
  /** Quantile levels in [0, 1]. Default [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]. */
  quantiles: number[];
  /** Histogram bins and axis (histogram.ts). Default: FD rule on a linear axis, at most 200 bins. */
  histogram: Partial<HistogramOptions>;
  /** Hill k = floor(hillFraction * n) unless hillK is set. Default 0.05. */
  hillFraction: number;
  /** A fixed Hill k (before clamping to each tail's size minus one). Default null (use hillFraction). */
  hillK: number | null;
  /** Relative-position bins for the position split (needs seqIds_N). Default 5. */
  positionBins: number;
  /** Absolute position edges [e_0 = 0, e_1, ..., Infinity allowed] instead of relative bins. Default null. */
  positionEdges: number[] | null;
}

export const DEFAULT_ADVANTAGE_STATS_OPTIONS: Readonly<AdvantageStatsOptions> = {
  eps: [1e-3, 1e-2, 1e-1],
  quantiles: [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99],
  histogram: {},
  hillFraction: 0.05,
  hillK: null,
  positionBins: 5,
  positionEdges: null,
};

export interface AdvantageGroup {
  split: 'position' | 'class';
  /** e.g. 'relpos=0-0.2', 'pos=8-32', 'special', 'content'. */
  label: string;
  /** The key prefix of this group's metrics, e.g. 'adv/special/'. */
  prefix: string;
  count: number;
  /** Quantiles at options.quantiles (NaN when the group is empty). */
  quantiles: Float64Array;
  /** Histogram on the overall histogram's edges. */
  histogram: Histogram;
}

export interface AdvantageStats {
  /** Every scalar, overall (`adv/...`) and per group (`adv/<group>/...`), keyed by metric name. */
  metrics: Record<string, number>;
  histogram: Histogram;
  quantiles: { levels: Float64Array; values: Float64Array };
  zeroBand: { eps: Float64Array; frac: Float64Array };
  /** Position groups (in order) then class groups; empty when seqIds_N / special_N were not given. */
  groups: AdvantageGroup[];
  /** Every statistic that is NaN and why, and every histogram note. */
  notes: string[];
}

/** 'q01', 'q50', 'q99', 'q100', 'q99.9', 'q0.5'. */
export function quantileKey(level: number): string {
  const pct = Number((level * 100).toPrecision(10));
  return Number.isInteger(pct) ? `q${String(pct).padStart(2, '0')}` : `q${keyNumber(pct)}`;
}

function resolveOptions(given: Partial<AdvantageStatsOptions> | undefined): AdvantageStatsOptions {
  const op = 'advantageStats';
  const o: AdvantageStatsOptions = { ...DEFAULT_ADVANTAGE_STATS_OPTIONS };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!(k in DEFAULT_ADVANTAGE_STATS_OPTIONS)) {
      throw new Error(`${op}: unknown option '${k}'; known options: ${Object.keys(DEFAULT_ADVANTAGE_STATS_OPTIONS).join(', ')}`);
    }
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  for (const e of o.eps) if (!(e > 0) || !Number.isFinite(e)) throw new Error(`${op}: eps entries must be finite numbers > 0, got ${e}`);
  for (const q of o.quantiles) assertInRange(op, 'quantiles entry', q, 0, 1);
  assertInRange(op, 'hillFraction', o.hillFraction, 0, 1);
  if (o.hillK !== null) assertIntInRange(op, 'hillK', o.hillK, 1, Number.MAX_SAFE_INTEGER);
  assertIntInRange(op, 'positionBins', o.positionBins, 1, 1_000_000);
  if (o.positionEdges) {
    const e = o.positionEdges;
    if (e.length < 2) throw new Error(`${op}: positionEdges needs at least 2 entries, got ${e.length}`);
    for (let i = 0; i < e.length; i++) {
      if (Number.isNaN(e[i]) || e[i] < 0 || (i > 0 && !(e[i] > e[i - 1]))) {
        throw new Error(`${op}: positionEdges must be >= 0 and strictly increasing, got [${e.join(', ')}]`);
      }
    }
  }
  return o;
}

/**
 * The statistics of one set of values (unsorted, finite), written into `metrics` under `prefix`.
 * Returns the quantile values. Undefined statistics are NaN and explained in `notes`.
 */
function summarise(x: Float64Array, prefix: string, o: AdvantageStatsOptions, metrics: Record<string, number>, notes: string[]): Float64Array {
  const n = x.length;
  const put = (key: string, value: number) => {
    metrics[prefix + key] = value;
  };
  put('count', n);
  const sorted = Float64Array.from(x).sort();
  const arr = Array.from(sorted);
  const quantiles = Float64Array.from(o.quantiles, (q) => (n > 0 ? quantileSorted(arr, q) : NaN));
  o.quantiles.forEach((q, i) => put(quantileKey(q), quantiles[i]));
  if (n === 0) {
    for (const key of ['mean', 'std', 'skewness', 'excess_kurtosis', 'min', 'max', 'frac_neg', 'frac_pos', 'frac_zero', 'neg_mean', 'pos_mean',
      'hill_neg', 'hill_pos', 'tail_spread_ratio']) put(key, NaN);
    for (const e of o.eps) put(`frac_abs_lt_${keyNumber(e)}`, NaN);
    put('hill_neg_k', 0);
    put('hill_pos_k', 0);
    notes.push(`${prefix}*: no tokens in this group, so its statistics are NaN (count 0)`);
    return quantiles;
  }
  const constant = sorted[0] === sorted[n - 1];
  put('mean', mean(arr));
  put('min', sorted[0]);
  put('max', sorted[n - 1]);
  if (n >= 2) put('std', sampleStandardDeviation(arr));
  else {
    put('std', NaN);
    notes.push(`${prefix}std is NaN: the sample standard deviation (ddof 1) needs >= 2 values (count ${n})`);
  }
  if (n >= 3 && !constant) put('skewness', sampleSkewness(arr));
  else {
    put('skewness', NaN);
    notes.push(`${prefix}skewness is NaN: needs >= 3 values that are not all equal (count ${n})`);
  }
  if (n >= 4 && !constant) put('excess_kurtosis', sampleKurtosis(arr));
  else {
    put('excess_kurtosis', NaN);
    notes.push(`${prefix}excess_kurtosis is NaN: needs >= 4 values that are not all equal (count ${n})`);
  }

  let nNeg = 0, nPos = 0, sNeg = 0, sPos = 0;
  const negTail: number[] = [];
  const posTail: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v < 0) { nNeg++; sNeg += v; negTail.push(-v); }
    else if (v > 0) { nPos++; sPos += v; posTail.push(v); }
  }
  put('frac_neg', nNeg / n);
  put('frac_pos', nPos / n);
  put('frac_zero', (n - nNeg - nPos) / n);
  put('neg_mean', nNeg > 0 ? sNeg / nNeg : NaN);
  put('pos_mean', nPos > 0 ? sPos / nPos : NaN);
  if (nNeg === 0) notes.push(`${prefix}neg_mean is NaN: no token has A < 0`);
  if (nPos === 0) notes.push(`${prefix}pos_mean is NaN: no token has A > 0`);
  for (const e of o.eps) {
    let c = 0;
    for (let i = 0; i < n; i++) if (Math.abs(x[i]) < e) c++;
    put(`frac_abs_lt_${keyNumber(e)}`, c / n);
  }
  const k = hillK(n, o.hillFraction, o.hillK);
  for (const [side, tail] of [['neg', negTail], ['pos', posTail]] as const) {
    const h = hillEstimator(tail, k);
    put(`hill_${side}`, h.xi);
    put(`hill_${side}_k`, h.k);
    if (Number.isNaN(h.xi)) {
      notes.push(`${prefix}hill_${side} is NaN: k = ${k} (requested) clamped to tail size - 1 = ${h.tailSize - 1} leaves k < 1`);
    }
  }
  const q01 = quantileSorted(arr, 0.01);
  const q50 = quantileSorted(arr, 0.5);
  const q99 = quantileSorted(arr, 0.99);
  const right = q99 - q50;
  put('tail_spread_ratio', right > 0 ? (q50 - q01) / right : NaN);
  if (!(right > 0)) notes.push(`${prefix}tail_spread_ratio is NaN: q99 - q50 = 0`);
  return quantiles;
}

/** Position of each masked-in token within its sequence's masked-in tokens (j) and that count (L); -1 elsewhere. */
function responsePositions(op: string, seqIds_N: ArrayLike<number>, mask: ArrayLike<number>): { pos: Int32Array; len: Int32Array } {
  const n = mask.length;
  assertLength(op, 'seqIds_N', seqIds_N, n);
  const pos = new Int32Array(n).fill(-1);
  const len = new Int32Array(n).fill(-1);
  const seen = new Set<number>();
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n) {
      const s = seqIds_N[i];
      if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: seqIds_N must hold integers >= 0, found ${s} at index ${i}`);
      if (i > 0 && s === seqIds_N[i - 1]) continue;
      if (seen.has(s)) throw new Error(`${op}: seqIds_N must keep each sequence's tokens contiguous; sequence ${s} resumes at index ${i}`);
      seen.add(s);
    }
    // close the run [start, i)
    let j = 0;
    for (let u = start; u < i; u++) if (mask[u] !== 0) pos[u] = j++;
    for (let u = start; u < i; u++) if (mask[u] !== 0) len[u] = j;
    start = i;
  }
  return { pos, len };
}

/** Statistics of per-token advantages over the masked-in tokens, overall and per group (file header). */
export function advantageStats(input: AdvantageInput, options: Partial<AdvantageStatsOptions> = {}): AdvantageStats {
  const op = 'advantageStats';
  const o = resolveOptions(options);
  const histOpts = resolveHistogramOptions(op, o.histogram);
  const values = readValues(op, 'advantages_N', input.advantages_N);
  const n = values.length;
  const mask = resolveMask(op, input.mask_N, n);
  assertFiniteMasked(op, 'advantages_N', values, mask);
  const count = maskCount(mask);
  requireTokens(op, count, n);

  const pick = (keep: (i: number) => boolean): Float64Array => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (mask[i] !== 0 && keep(i)) out.push(values[i]);
    return Float64Array.from(out);
  };
  const all = pick(() => true);
  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  const bins = histogramBins(all, histOpts);
  const hist = histogramOnBins(all, bins);
  notes.push(...hist.notes);
  const quantiles = summarise(all, 'adv/', o, metrics, notes);
  const zeroFrac = Float64Array.from(o.eps, (e) => metrics[`adv/frac_abs_lt_${keyNumber(e)}`]);

  const groups: AdvantageGroup[] = [];
  const addGroup = (split: AdvantageGroup['split'], label: string, values: Float64Array) => {
    const prefix = `adv/${label}/`;
    const q = summarise(values, prefix, o, metrics, notes);
    groups.push({ split, label, prefix, count: values.length, quantiles: q, histogram: histogramOnBins(values, bins) });
  };
  if (input.seqIds_N) {
    const { pos, len } = responsePositions(op, input.seqIds_N, mask);
    if (o.positionEdges) {
      const e = o.positionEdges;
      for (let b = 0; b + 1 < e.length; b++) {
        addGroup('position', `pos=${keyNumber(e[b])}-${e[b + 1] === Infinity ? 'inf' : keyNumber(e[b + 1])}`, pick((i) => pos[i] >= e[b] && pos[i] < e[b + 1]));
      }
    } else {
      const B = o.positionBins;
      for (let b = 0; b < B; b++) {
        addGroup('position', `relpos=${keyNumber(b / B)}-${keyNumber((b + 1) / B)}`, pick((i) => Math.floor((pos[i] * B) / len[i]) === b));
      }
    }
  }
  if (input.special_N) {
    assertMask(op, 'special_N (1 = special token, 0 = content)', input.special_N, n);
    const special = input.special_N;
    addGroup('class', 'special', pick((i) => special[i] !== 0));
    addGroup('class', 'content', pick((i) => special[i] === 0));
  }
  return {
    metrics,
    histogram: hist,
    quantiles: { levels: Float64Array.from(o.quantiles), values: quantiles },
    zeroBand: { eps: Float64Array.from(o.eps), frac: zeroFrac },
    groups,
    notes,
  };
}

/** [N] 1 where tokens_N[i] is one of `specialIds`, else 0: the `special_N` input from a list of special ids. */
export function specialMaskFromIds(tokens_N: ArrayLike<number>, specialIds: Iterable<number>): Float32Array {
  const set = new Set(specialIds);
  return Float32Array.from({ length: tokens_N.length }, (_, i) => (set.has(tokens_N[i]) ? 1 : 0));
}
