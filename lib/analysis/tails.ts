/**
 * Tail heaviness: the Hill estimator of the extreme-value index, one tail at a time.
 *
 *   X_(1) >= X_(2) >= ... >= X_(m) > 0   the m positive values of the tail, sorted descending
 *   xi_hat(k) = (1/k) sum_{i=1..k} ln X_(i) - ln X_(k+1),     1 <= k <= m - 1
 *
 * (Hill 1975, "A simple general approach to inference about the tail of a distribution", Ann. Statist. 3(5).)
 * For a Pareto-type tail P(X > x) ~ x^(-alpha), xi_hat estimates xi = 1/alpha: larger is heavier, and a
 * light (exponential or bounded) tail gives xi_hat near 0 for large samples. It is computed on one side of 0:
 * the negative tail uses X = -A over the tokens with A < 0, the positive tail X = A over the tokens with A > 0.
 *
 * k, stated: `k` if given, otherwise floor(fraction * n) with n the number of values the statistic is over
 * (both tails of a sample use the same k), then clamped to m - 1 (the tail's own size minus one). k < 1 after
 * clamping leaves the estimate undefined (NaN, with a note). The k actually used is returned with every estimate.
 */

export interface HillEstimate {
  /** xi_hat, the extreme-value index (1 / tail exponent); NaN when undefined. */
  xi: number;
  /** The k used (0 when undefined). */
  k: number;
  /** m, the number of strictly positive tail values available. */
  tailSize: number;
}

/**
 * Hill estimate from the positive values of `tail` (zeros and negatives are ignored: they are not in this tail).
 * `requestedK` is the k before clamping to m - 1.
 */
export function hillEstimator(tail: ArrayLike<number>, requestedK: number): HillEstimate {
  if (!Number.isInteger(requestedK) || requestedK < 0) throw new Error(`hillEstimator: k must be an integer >= 0, got ${requestedK}`);
  const xs: number[] = [];
  for (let i = 0; i < tail.length; i++) {
    const x = tail[i];
    if (Number.isNaN(x) || x === Infinity) throw new Error(`hillEstimator: tail values must be finite, found ${x} at index ${i}`);
    if (x > 0) xs.push(x);
  }
  const m = xs.length;
  const k = Math.min(requestedK, m - 1);
  if (k < 1) return { xi: NaN, k: 0, tailSize: m };
  xs.sort((a, b) => b - a);
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.log(xs[i]);
  return { xi: s / k - Math.log(xs[k]), k, tailSize: m };
}

/** k = floor(fraction * n), or `fixedK` when given (before clamping to each tail's size). */
export function hillK(n: number, fraction: number, fixedK: number | null): number {
  if (fixedK !== null) return fixedK;
  return Math.floor(fraction * n);
}
