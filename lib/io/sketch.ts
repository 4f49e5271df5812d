/**
 * One-pass, mergeable summaries for streaming a dump in bounded memory.
 *
 * Moments (exact up to float64 rounding): count n, mean, and central sums M2, M3, M4 are merged chunk by chunk
 * with Pebay's pairwise update (Pebay 2008, "Formulas for robust, one-pass parallel computation of covariances
 * and arbitrary-order statistical moments", SAND2008-6212, Eq. 2.1-2.4), so
 *   sample std          sqrt(M2 / (n - 1))
 *   sample skewness     G1 = sqrt(n (n - 1)) / (n - 2) * sqrt(n) M3 / M2^(3/2)
 *   sample ex. kurtosis G2 = (n - 1) / ((n - 2)(n - 3)) * ((n + 1) n M4 / M2^2 - 3 (n - 1))
 * agree with simple-statistics' in-memory estimators (lib/analysis/advantages.ts).
 *
 * Quantile sketch (approximate, with a stated bound): a histogram with B bins per unit on the symlog axis
 *   t(x) = sign(x) log10(1 + |x| / c)                 (c = linthresh, 0.01 by default, as lib/analysis uses)
 * over t in [-tMax, tMax]; values beyond count as underflow / overflow (their exact extremes are kept).
 * Order statistic x_(j) is estimated by the t-centre of the bin holding it; for x inside the range
 *   |x_hat - x| <= (10^(1 / (2B)) - 1) (|x| + c)       (= 5.8e-4 (|x| + c) for B = 2000),
 * and a quantile (linear interpolation between order statistics, numpy's default) inherits that bound.
 * The bins align with any display bin width that is a multiple of 1/B, so display histograms re-binned from the
 * sketch count exactly what lib/analysis's histogram counts on the same edges.
 */
import { axisInverse, axisTransform } from '../analysis/histogram';

export class Moments {
  n = 0;
  mean = 0;
  m2 = 0;
  m3 = 0;
  m4 = 0;
  min = Infinity;
  max = -Infinity;

  /** Adds one value (Welford-Terriberry update). */
  add(x: number): void {
    const n1 = this.n;
    const n = n1 + 1;
    const delta = x - this.mean;
    const dn = delta / n;
    const dn2 = dn * dn;
    const term1 = delta * dn * n1;
    this.mean += dn;
    this.m4 += term1 * dn2 * (n * n - 3 * n + 3) + 6 * dn2 * this.m2 - 4 * dn * this.m3;
    this.m3 += term1 * dn * (n - 2) - 3 * dn * this.m2;
    this.m2 += term1;
    this.n = n;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  /** Merges another summary into this one (Pebay Eq. 2.1-2.4). */
  merge(b: Moments): void {
    if (b.n === 0) return;
    if (this.n === 0) {
      Object.assign(this, { n: b.n, mean: b.mean, m2: b.m2, m3: b.m3, m4: b.m4, min: b.min, max: b.max });
      return;
    }
    const na = this.n, nb = b.n, n = na + nb;
    const d = b.mean - this.mean;
    const d2 = d * d, d3 = d2 * d, d4 = d2 * d2;
    const m2 = this.m2 + b.m2 + (d2 * na * nb) / n;
    const m3 = this.m3 + b.m3 + (d3 * na * nb * (na - nb)) / (n * n) + (3 * d * (na * b.m2 - nb * this.m2)) / n;
    const m4 = this.m4 + b.m4 + (d4 * na * nb * (na * na - na * nb + nb * nb)) / (n * n * n)
      + (6 * d2 * (na * na * b.m2 + nb * nb * this.m2)) / (n * n) + (4 * d * (na * b.m3 - nb * this.m3)) / n;
    this.mean += (d * nb) / n;
    this.m2 = m2;
    this.m3 = m3;
    this.m4 = m4;
    this.n = n;
    this.min = Math.min(this.min, b.min);
    this.max = Math.max(this.max, b.max);
  }

  /** Summary of values[0 .. n) by two passes (mean, then central sums): exact up to rounding. */
  static fromBatch(values: Float64Array, n: number): Moments {
    const m = new Moments();
    if (n === 0) return m;
    let sum = 0, min = Infinity, max = -Infinity;
    for (let i = 0; i < n; i++) {
      const x = values[i];
      sum += x;
      if (x < min) min = x;
      if (x > max) max = x;
    }
    const mean = sum / n;
    let s2 = 0, s3 = 0, s4 = 0, s1 = 0;
    for (let i = 0; i < n; i++) {
      const d = values[i] - mean;
      const d2 = d * d;
      s1 += d;
      s2 += d2;
      s3 += d2 * d;
      s4 += d2 * d2;
    }
    // one correction step for the rounding of the mean (the compensated two-pass algorithm)
    const corr = s1 / n;
    m.n = n;
    m.mean = mean + corr;
    m.m2 = s2 - s1 * corr;
    m.m3 = s3 - 3 * corr * s2 + 2 * n * corr * corr * corr;
    m.m4 = s4 - 4 * corr * s3 + 6 * corr * corr * s2 - 3 * n * corr ** 4;
    m.min = min;
    m.max = max;
    return m;
  }

  std(): number {
    return this.n >= 2 ? Math.sqrt(this.m2 / (this.n - 1)) : NaN;
  }

  skewness(): number {
    const n = this.n;
    if (n < 3 || this.m2 === 0) return NaN;
    const g1 = (Math.sqrt(n) * this.m3) / Math.pow(this.m2, 1.5);
    return (Math.sqrt(n * (n - 1)) / (n - 2)) * g1;
  }

  excessKurtosis(): number {
    const n = this.n;
    if (n < 4 || this.m2 === 0) return NaN;
    return ((n - 1) / ((n - 2) * (n - 3))) * (((n + 1) * n * this.m4) / (this.m2 * this.m2) - 3 * (n - 1));
  }
}

export interface SketchOptions {
  /** c of the symlog axis. Default 0.01. */
  linthresh: number;
  /** Bins per unit of t (t is in decades of |x| / c). Default 2000. */
  binsPerUnit: number;
  /** Half-range of t; a multiple of 1 / binsPerUnit. Default 6.5 (|x| up to about 3e4 with c = 0.01). */
  tMax: number;
}

export const DEFAULT_SKETCH: Readonly<SketchOptions> = { linthresh: 0.01, binsPerUnit: 2000, tMax: 6.5 };

export class QuantileSketch {
  readonly o: SketchOptions;
  readonly counts: Float64Array;
  underflow = 0;
  overflow = 0;
  /** Exact extremes and sum of ln|x| of the out-of-range values (for the Hill estimate). */
  underMin = Infinity;
  overMax = -Infinity;
  underLogSum = 0;
  overLogSum = 0;
  n = 0;
  private readonly bins: number;

  constructor(options: Partial<SketchOptions> = {}) {
    this.o = { ...DEFAULT_SKETCH, ...options };
    this.bins = Math.round(2 * this.o.tMax * this.o.binsPerUnit);
    this.counts = new Float64Array(this.bins);
  }

  /** The bound on |x_hat - x| for a value x inside the range: rel * (|x| + c). */
  relativeBound(): number {
    return Math.pow(10, 1 / (2 * this.o.binsPerUnit)) - 1;
  }

  /** Bin index of x, or -1 below / -2 above the range (add it with addBin). */
  binOf(x: number): number {
    const c = this.o.linthresh;
    const t = x >= 0 ? Math.log10(1 + x / c) : -Math.log10(1 - x / c);
    if (t < -this.o.tMax) return -1;
    if (t > this.o.tMax) return -2;
    const b = Math.floor((t + this.o.tMax) * this.o.binsPerUnit);
    return b >= this.bins ? this.bins - 1 : b;
  }

  /** Adds x whose bin binOf(x) is b. */
  addBin(x: number, b: number): void {
    this.n++;
    if (b >= 0) this.counts[b]++;
    else if (b === -1) {
      this.underflow++;
      if (x < this.underMin) this.underMin = x;
      this.underLogSum += Math.log(-x);
    } else {
      this.overflow++;
      if (x > this.overMax) this.overMax = x;
      this.overLogSum += Math.log(x);
    }
  }

  add(x: number): void {
    this.n++;
    const c = this.o.linthresh;
    const t = x >= 0 ? Math.log10(1 + x / c) : -Math.log10(1 - x / c);
    if (t < -this.o.tMax) {
      this.underflow++;
      if (x < this.underMin) this.underMin = x;
      this.underLogSum += Math.log(-x);
      return;
    }
    if (t > this.o.tMax) {
      this.overflow++;
      if (x > this.overMax) this.overMax = x;
      this.overLogSum += Math.log(x);
      return;
    }
    let b = Math.floor((t + this.o.tMax) * this.o.binsPerUnit);
    if (b >= this.bins) b = this.bins - 1;
    this.counts[b]++;
  }

  merge(s: QuantileSketch): void {
    for (let i = 0; i < this.bins; i++) this.counts[i] += s.counts[i];
    this.underflow += s.underflow;
    this.overflow += s.overflow;
    this.underMin = Math.min(this.underMin, s.underMin);
    this.overMax = Math.max(this.overMax, s.overMax);
    this.underLogSum += s.underLogSum;
    this.overLogSum += s.overLogSum;
    this.n += s.n;
  }

  /** Data value of bin b's centre on the t axis. */
  binValue(b: number): number {
    const t = -this.o.tMax + (b + 0.5) / this.o.binsPerUnit;
    return axisInverse(t, 'symlog', this.o.linthresh);
  }

  /** Estimate of the j-th order statistic (0-based); `exactMin` / `exactMax` answer for out-of-range ranks. */
  orderStatistic(j: number, exactMin: number, exactMax: number): number {
    if (j < this.underflow) return j === 0 ? exactMin : this.underMin; // all we keep below the range
    let acc = this.underflow;
    for (let b = 0; b < this.bins; b++) {
      acc += this.counts[b];
      if (j < acc) return Math.min(Math.max(this.binValue(b), exactMin), exactMax);
    }
    return exactMax;
  }

  /** Quantile at level p in [0, 1] by linear interpolation between order statistics (numpy 'linear'). */
  quantile(p: number, exactMin: number, exactMax: number): number {
    if (this.n === 0) return NaN;
    const h = (this.n - 1) * p;
    const lo = Math.floor(h);
    const a = this.orderStatistic(lo, exactMin, exactMax);
    if (h === lo) return a;
    const b = this.orderStatistic(lo + 1, exactMin, exactMax);
    return a + (h - lo) * (b - a);
  }

  /**
   * Hill estimate of the tail on one side (lib/analysis/tails.ts), from the sketch: the k largest |x| on that
   * side are taken at their bin centres (exact ln|x| sums for out-of-range values). Returns NaN when k < 1.
   */
  hill(side: 'neg' | 'pos', requestedK: number, tailSize: number): { xi: number; k: number } {
    const k = Math.min(requestedK, tailSize - 1);
    if (k < 1) return { xi: NaN, k: 0 };
    let taken = 0;
    let logSum = 0;
    for (const [count, logValue] of this.tailGroups(side)) {
      if (taken === k) return { xi: logSum / k - logValue, k }; // ln X_(k+1): the next group's value
      const use = Math.min(count, k - taken);
      logSum += use * logValue;
      taken += use;
      if (taken === k && count > use) return { xi: logSum / k - logValue, k };
    }
    return { xi: NaN, k: 0 };
  }

  /** (count, ln|x|) of one tail's values from the most extreme inwards: out-of-range values first (their mean ln). */
  private *tailGroups(side: 'neg' | 'pos'): Generator<[number, number]> {
    const outCount = side === 'neg' ? this.underflow : this.overflow;
    if (outCount > 0) yield [outCount, (side === 'neg' ? this.underLogSum : this.overLogSum) / outCount];
    const mid = this.bins / 2; // t = 0 is a bin edge: bins >= mid hold x >= 0
    if (side === 'neg') {
      for (let b = 0; b < mid; b++) if (this.counts[b] > 0) yield [this.counts[b], Math.log(-this.binValue(b))];
    } else {
      for (let b = this.bins - 1; b >= mid; b--) {
        const x = this.binValue(b);
        if (this.counts[b] > 0 && x > 0) yield [this.counts[b], Math.log(x)];
      }
    }
  }

  /** Counts on display bins of width `w` (a multiple of 1 / binsPerUnit) over t in [t0, t1] (multiples of w). */
  rebin(t0: number, t1: number, w: number): { axisEdges: Float64Array; edges: Float64Array; counts: Float64Array; underflow: number; overflow: number } {
    const per = Math.round(w * this.o.binsPerUnit);
    const nb = Math.round((t1 - t0) / w);
    const first = Math.round((t0 + this.o.tMax) * this.o.binsPerUnit);
    const counts = new Float64Array(nb);
    let under = this.underflow;
    let over = this.overflow;
    for (let b = 0; b < this.bins; b++) {
      const c = this.counts[b];
      if (c === 0) continue;
      const d = Math.floor((b - first) / per);
      if (d < 0) under += c;
      else if (d >= nb) over += c;
      else counts[d] += c;
    }
    const axisEdges = Float64Array.from({ length: nb + 1 }, (_, i) => t0 + i * w);
    const edges = axisEdges.map((t) => axisInverse(t, 'symlog', this.o.linthresh));
    return { axisEdges, edges, counts, underflow: under, overflow: over };
  }
}

/** t(x) on the sketch's axis (re-exported for display-range choices). */
export function symlogT(x: number, linthresh: number): number {
  return axisTransform(x, 'symlog', linthresh);
}
