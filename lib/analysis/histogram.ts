/**
 * Histograms of per-token values (advantages, log-ratios) on a linear or symmetric-log axis.
 *
 *   axis transform   t(x) = x                                   ('linear')
 *                    t(x) = sign(x) log10(1 + |x| / c)           ('symlog', c = linthresh; inverse
 *                                                                  x = sign(t) c (10^|t| - 1))
 *   bins             equal width on the t axis, numpy.histogram's convention: [e_0, e_1), ..., [e_{B-1}, e_B]
 *                    (last bin closed); values below e_0 / above e_B are counted as underflow / overflow, never
 *                    dropped silently.
 *   bin count rules  (numpy.histogram_bin_edges, computed on t(x) of the values inside the range)
 *                    'fd'       width h = 2 IQR n^(-1/3),  B = ceil((hi - lo) / h), B = 1 if h = 0
 *                    'sturges'  width h = (max - min) / (log2 n + 1),  B = ceil((hi - lo) / h)
 *                    capped at `maxBins` (heavy tails make FD bins tiny: the cap is noted, not hidden)
 *   range            [lo, hi] = the option, or the data's min and max on the t axis; lo = hi widens to
 *                    [lo - 0.5, hi + 0.5] on the t axis (numpy's rule).
 *
 * The symlog axis is the smooth variant (no kink at +-c); it is linear with slope 1 / (c ln 10) near 0 and
 * logarithmic for |x| >> c, so the spike of advantages at 0 and the long negative tail fit one plot.
 */
import { quantileSorted } from 'simple-statistics';
import { assertFiniteArray, assertIntInRange } from '../probs/validate';

export type HistogramScale = 'linear' | 'symlog';

export interface HistogramOptions {
  /** A bin count, or a rule on the t axis: 'fd' (Freedman-Diaconis) or 'sturges'. Default 'fd'. */
  bins: number | 'fd' | 'sturges';
  /** Explicit ascending edges in data units (>= 2 entries); overrides `bins` and `range`. Default null. */
  edges: number[] | null;
  /** [lo, hi] in data units, or null for the data's min and max. Default null. */
  range: [number, number] | null;
  /** Axis on which bins are equal width. Default 'linear'. */
  scale: HistogramScale;
  /** c in the symlog transform (the width of the near-linear region around 0). Default 0.01. */
  linthresh: number;
  /** Upper bound on the number of bins a rule may choose. Default 200. */
  maxBins: number;
}

export const DEFAULT_HISTOGRAM_OPTIONS: Readonly<HistogramOptions> = {
  bins: 'fd',
  edges: null,
  range: null,
  scale: 'linear',
  linthresh: 0.01,
  maxBins: 200,
};

export interface Histogram {
  /** [B + 1] bin edges in data units. */
  edges: Float64Array;
  /** [B + 1] bin edges on the plotting axis: t(edges) (equal to `edges` on a linear axis). */
  axisEdges: Float64Array;
  /** [B] counts per bin. */
  counts: Float64Array;
  /** [B] counts / total (total includes under- and overflow). */
  frac: Float64Array;
  /** Values below the first edge / above the last edge. */
  underflow: number;
  overflow: number;
  /** All values binned (sum of counts + underflow + overflow). */
  total: number;
  scale: HistogramScale;
  linthresh: number;
  /** Why the bins are what they are when a rule was capped or a range widened; empty otherwise. */
  notes: string[];
}

/** The axis transform t(x). */
export function axisTransform(x: number, scale: HistogramScale, linthresh: number): number {
  if (scale === 'linear') return x;
  return Math.sign(x) * Math.log10(1 + Math.abs(x) / linthresh);
}

/** Its inverse x(t). */
export function axisInverse(t: number, scale: HistogramScale, linthresh: number): number {
  if (scale === 'linear') return t;
  return Math.sign(t) * linthresh * (Math.pow(10, Math.abs(t)) - 1);
}

export function resolveHistogramOptions(op: string, given: Partial<HistogramOptions> | undefined): HistogramOptions {
  const o: HistogramOptions = { ...DEFAULT_HISTOGRAM_OPTIONS };
  for (const [k, v] of Object.entries(given ?? {})) {
    if (!(k in DEFAULT_HISTOGRAM_OPTIONS)) {
      throw new Error(`${op}: unknown histogram option '${k}'; known options: ${Object.keys(DEFAULT_HISTOGRAM_OPTIONS).join(', ')}`);
    }
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  if (o.scale !== 'linear' && o.scale !== 'symlog') throw new Error(`${op}: histogram.scale must be 'linear' or 'symlog', got '${o.scale as string}'`);
  if (!(o.linthresh > 0) || !Number.isFinite(o.linthresh)) throw new Error(`${op}: histogram.linthresh must be a finite number > 0, got ${o.linthresh}`);
  assertIntInRange(op, 'histogram.maxBins', o.maxBins, 1, 1_000_000);
  if (typeof o.bins === 'number') assertIntInRange(op, 'histogram.bins', o.bins, 1, 1_000_000);
  else if (o.bins !== 'fd' && o.bins !== 'sturges') throw new Error(`${op}: histogram.bins must be a positive integer, 'fd' or 'sturges', got '${o.bins as string}'`);
  if (o.edges) {
    assertFiniteArray(op, 'histogram.edges', o.edges);
    if (o.edges.length < 2) throw new Error(`${op}: histogram.edges needs at least 2 entries, got ${o.edges.length}`);
    for (let i = 1; i < o.edges.length; i++) {
      if (!(o.edges[i] > o.edges[i - 1])) throw new Error(`${op}: histogram.edges must be strictly increasing, found ${o.edges[i - 1]} then ${o.edges[i]} at index ${i}`);
    }
  }
  if (o.range) {
    const [lo, hi] = o.range;
    if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(hi >= lo)) throw new Error(`${op}: histogram.range must be finite [lo, hi] with lo <= hi, got [${lo}, ${hi}]`);
  }
  return o;
}

/** Bin edges on both axes; one set can be shared by several histograms (position bins, token classes). */
export interface HistogramBins {
  edges: Float64Array;
  axisEdges: Float64Array;
  scale: HistogramScale;
  linthresh: number;
  notes: string[];
}

/** The bins that `histogram` would use for these values (finite, data units). */
export function histogramBins(values: ArrayLike<number>, options: HistogramOptions): HistogramBins {
  const { scale, linthresh } = options;
  const notes: string[] = [];
  if (options.edges) {
    const edges = Float64Array.from(options.edges);
    return { edges, axisEdges: edges.map((e) => axisTransform(e, scale, linthresh)), scale, linthresh, notes };
  }
  const t: number[] = [];
  let lo: number;
  let hi: number;
  if (options.range) {
    lo = axisTransform(options.range[0], scale, linthresh);
    hi = axisTransform(options.range[1], scale, linthresh);
    for (let i = 0; i < values.length; i++) {
      const ti = axisTransform(values[i], scale, linthresh);
      if (ti >= lo && ti <= hi) t.push(ti);
    }
  } else {
    for (let i = 0; i < values.length; i++) t.push(axisTransform(values[i], scale, linthresh));
    lo = Infinity;
    hi = -Infinity;
    for (const ti of t) {
      if (ti < lo) lo = ti;
      if (ti > hi) hi = ti;
    }
    if (t.length === 0) {
      lo = 0;
      hi = 0;
    }
  }
  if (lo === hi) {
    notes.push(`histogram: range [${lo}, ${hi}] has zero width on the axis; widened by 0.5 each side`);
    lo -= 0.5;
    hi += 0.5;
  }
  let bins: number;
  if (typeof options.bins === 'number') bins = options.bins;
  else {
    let width = 0;
    if (t.length > 0) {
      t.sort((a, b) => a - b);
      if (options.bins === 'fd') {
        const iqr = quantileSorted(t, 0.75) - quantileSorted(t, 0.25);
        width = (2 * iqr) / Math.cbrt(t.length);
      } else {
        width = (t[t.length - 1] - t[0]) / (Math.log2(t.length) + 1);
      }
    }
    bins = width > 0 ? Math.ceil((hi - lo) / width) : 1;
    if (bins > options.maxBins) {
      notes.push(`histogram: rule '${options.bins}' asked for ${bins} bins; capped at maxBins = ${options.maxBins}`);
      bins = options.maxBins;
    }
  }
  const axisEdges = new Float64Array(bins + 1);
  for (let i = 0; i < bins; i++) axisEdges[i] = lo + (i * (hi - lo)) / bins;
  axisEdges[bins] = hi;
  const edges = scale === 'linear' ? Float64Array.from(axisEdges) : axisEdges.map((e) => axisInverse(e, scale, linthresh));
  return { edges, axisEdges, scale, linthresh, notes };
}

/**
 * Counts on given bins: [e_i, e_{i+1}) on the t axis, last bin closed, under/overflow counted.
 * `values` are in data units and finite.
 */
export function histogramOnBins(values: ArrayLike<number>, b: HistogramBins): Histogram {
  const { axisEdges, scale, linthresh } = b;
  const bins = axisEdges.length - 1;
  const counts = new Float64Array(bins);
  let underflow = 0;
  let overflow = 0;
  const first = axisEdges[0];
  const last = axisEdges[bins];
  for (let i = 0; i < values.length; i++) {
    const t = axisTransform(values[i], scale, linthresh);
    if (t < first) underflow++;
    else if (t > last) overflow++;
    else if (t === last) counts[bins - 1]++;
    else {
      // largest j with axisEdges[j] <= t
      let a = 0;
      let b = bins;
      while (b - a > 1) {
        const m = (a + b) >> 1;
        if (axisEdges[m] <= t) a = m;
        else b = m;
      }
      counts[a]++;
    }
  }
  const total = values.length;
  const frac = counts.map((c) => (total > 0 ? c / total : 0));
  return {
    edges: Float64Array.from(b.edges),
    axisEdges: Float64Array.from(axisEdges),
    counts, frac, underflow, overflow, total, scale, linthresh,
    notes: [...b.notes],
  };
}

/** Histogram of finite values in data units (see the file header for every rule). */
export function histogram(values: ArrayLike<number>, options: Partial<HistogramOptions> = {}): Histogram {
  const o = resolveHistogramOptions('histogram', options);
  assertFiniteArray('histogram', 'values', values);
  return histogramOnBins(values, histogramBins(values, o));
}
