/**
 * Means and confidence intervals over seeds (simple-statistics for the moments).
 *
 *   mean m = (1/n) sum x_i;   sd s = sqrt( sum (x_i - m)^2 / (n - 1) )   (sample sd, Bessel's correction)
 *   95% CI = m +- t_{0.975, n-1} s / sqrt(n)        (Student t; undefined for n < 2, reported as NaN)
 *
 * simple-statistics has no Student-t quantile, so it is computed here from the t CDF
 *   F(t; nu) = 1 - I_{nu / (nu + t^2)}(nu/2, 1/2) / 2   for t >= 0,   F(-t) = 1 - F(t)
 * with I_x(a, b) the regularised incomplete beta function (continued fraction, modified Lentz; Numerical Recipes
 * 3rd ed. section 6.4 `betacf`), inverted by bisection to double precision. Checked against the closed forms
 * nu = 1 (Cauchy: tan(pi (p - 1/2))) and nu = 2 ((2p - 1) / sqrt(2 p (1 - p))) and table values (test/sweep/stats.test.ts).
 */
import { gammaln, mean, sampleStandardDeviation } from 'simple-statistics';

function betacf(a: number, b: number, x: number): number {
  const FPMIN = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < FPMIN) d = FPMIN;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = 1 + aa / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularised incomplete beta I_x(a, b), a, b > 0, x in [0, 1]. */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new Error(`incompleteBeta: a and b must be > 0, got a = ${a}, b = ${b}`);
  if (!(x >= 0 && x <= 1)) throw new Error(`incompleteBeta: x must be in [0, 1], got ${x}`);
  if (x === 0 || x === 1) return x;
  const lnFront = gammaln(a + b) - gammaln(a) - gammaln(b) + a * Math.log(x) + b * Math.log(1 - x);
  const front = Math.exp(lnFront);
  return x < (a + 1) / (a + b + 2) ? (front * betacf(a, b, x)) / a : 1 - (front * betacf(b, a, 1 - x)) / b;
}

/** Student-t CDF F(t; df). */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: df must be > 0, got ${df}`);
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Student-t quantile: the t with F(t; df) = p, p in (0, 1). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new Error(`studentTQuantile: df must be > 0, got ${df}`);
  if (p === 0.5) return 0;
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-15 * hi; i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

export interface MeanCI {
  n: number;
  mean: number;
  /** Sample standard deviation (NaN for n < 2). */
  sd: number;
  /** Half-width of the confidence interval (NaN for n < 2). */
  halfWidth: number;
  low: number;
  high: number;
}

/** Mean and two-sided `level` confidence interval (Student t) of finite values. */
export function meanCI(values: readonly number[], level = 0.95): MeanCI {
  if (!(level > 0 && level < 1)) throw new Error(`meanCI: level must be in (0, 1), got ${level}`);
  for (const v of values) if (!Number.isFinite(v)) throw new Error(`meanCI: values must be finite, got ${v}`);
  const n = values.length;
  if (n === 0) return { n, mean: NaN, sd: NaN, halfWidth: NaN, low: NaN, high: NaN };
  const m = mean(values as number[]);
  if (n < 2) return { n, mean: m, sd: NaN, halfWidth: NaN, low: NaN, high: NaN };
  const sd = sampleStandardDeviation(values as number[]);
  const halfWidth = (studentTQuantile(0.5 + level / 2, n - 1) * sd) / Math.sqrt(n);
  return { n, mean: m, sd, halfWidth, low: m - halfWidth, high: m + halfWidth };
}
