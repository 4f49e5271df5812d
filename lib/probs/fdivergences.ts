/**
 * f-divergences on the token-level density ratio u = pT / pS (OPD+, Zhao et al. 2026, Table 1 in the notes'
 * reading; re-derived in methods.md section 5):
 *
 *   D_f(pT || pS) = E_{y ~ pS}[ f(u(y)) ],   u = pT(y) / pS(y),   log u = log pT(y) - log pS(y)
 *
 *   name          f(u)                                   u f'(u)                     w_f(u) = -f(u) + u f'(u)
 *   reverseKL     -ln u               (= KL(pS || pT))   -1                          ln u - 1
 *   forwardKL     u ln u              (= KL(pT || pS))   u (ln u + 1)                u
 *   jsd           1/2 [u ln u - (1+u) ln((1+u)/2)]       1/2 u [ln u - ln((1+u)/2)]  1/2 ln((1+u)/2)
 *   totalVariation 1/2 |u - 1|                           1/2 u sign(u - 1)           1/2 sign(u - 1)
 *   chiSquared    (u - 1)^2           (Pearson)          2 u (u - 1)                 u^2 - 1
 *   hellinger     (sqrt(u) - 1)^2     (squared)          u - sqrt(u)                 sqrt(u) - 1
 *
 * Every function takes log u (a tensor, any shape) and returns the same shape. Stop-gradient OPD uses the
 * advantage -f(u); OPD+'s unbiased policy-gradient weight is w_f(u).
 */
import * as tf from '@tensorflow/tfjs';

export type FDivergenceName = 'reverseKL' | 'forwardKL' | 'jsd' | 'totalVariation' | 'chiSquared' | 'hellinger';
export const F_DIVERGENCES: readonly FDivergenceName[] = ['reverseKL', 'forwardKL', 'jsd', 'totalVariation', 'chiSquared', 'hellinger'];

export interface FDivergence {
  /** f(u) as a function of log u. */
  f(logu: tf.Tensor): tf.Tensor;
  /** u f'(u) as a function of log u. */
  uFprime(logu: tf.Tensor): tf.Tensor;
  /**
   * w_f(u) = -f(u) + u f'(u) in closed form (the table above). Computing it as the difference of the two terms
   * above cancels catastrophically in float32 for large u (jsd, totalVariation, hellinger at log u > ~10).
   */
  weight(logu: tf.Tensor): tf.Tensor;
}

/** log((1 + u) / 2) = softplus(log u) - ln 2, stable for any log u. */
const logMid = (logu: tf.Tensor) => tf.sub(tf.softplus(logu), Math.LN2);

const DIVERGENCES: Record<FDivergenceName, FDivergence> = {
  reverseKL: {
    f: (logu) => tf.neg(logu),
    uFprime: (logu) => tf.fill(logu.shape, -1),
    weight: (logu) => tf.sub(logu, 1),
  },
  forwardKL: {
    f: (logu) => tf.mul(tf.exp(logu), logu),
    uFprime: (logu) => tf.mul(tf.exp(logu), tf.add(logu, 1)),
    weight: (logu) => tf.exp(logu),
  },
  jsd: {
    f: (logu) => {
      const u = tf.exp(logu);
      return tf.mul(0.5, tf.sub(tf.mul(u, logu), tf.mul(tf.add(u, 1), logMid(logu))));
    },
    uFprime: (logu) => tf.mul(0.5, tf.mul(tf.exp(logu), tf.sub(logu, logMid(logu)))),
    weight: (logu) => tf.mul(0.5, logMid(logu)),
  },
  totalVariation: {
    f: (logu) => tf.mul(0.5, tf.abs(tf.sub(tf.exp(logu), 1))),
    uFprime: (logu) => tf.mul(0.5, tf.mul(tf.exp(logu), tf.sign(logu))),
    weight: (logu) => tf.mul(0.5, tf.sign(logu)),
  },
  chiSquared: {
    f: (logu) => tf.square(tf.sub(tf.exp(logu), 1)),
    uFprime: (logu) => {
      const u = tf.exp(logu);
      return tf.mul(2, tf.mul(u, tf.sub(u, 1)));
    },
    weight: (logu) => tf.expm1(tf.mul(2, logu)),
  },
  hellinger: {
    f: (logu) => tf.square(tf.sub(tf.exp(tf.mul(0.5, logu)), 1)),
    uFprime: (logu) => tf.sub(tf.exp(logu), tf.exp(tf.mul(0.5, logu))),
    weight: (logu) => tf.expm1(tf.mul(0.5, logu)),
  },
};

/** Each method runs in its own tf.tidy, so calling one outside a tidy leaks no intermediate tensor. */
const TIDIED = Object.fromEntries(
  F_DIVERGENCES.map((name) => {
    const d = DIVERGENCES[name];
    const f: FDivergence = {
      f: (logu) => tf.tidy(() => d.f(logu)),
      uFprime: (logu) => tf.tidy(() => d.uFprime(logu)),
      weight: (logu) => tf.tidy(() => d.weight(logu)),
    };
    return [name, f];
  }),
) as Record<FDivergenceName, FDivergence>;

export function fDivergence(name: FDivergenceName): FDivergence {
  const d = Object.prototype.hasOwnProperty.call(TIDIED, name) ? TIDIED[name] : undefined;
  if (!d) throw new Error(`fDivergence: name must be one of ${F_DIVERGENCES.join(', ')}, got '${name}'`);
  return d;
}

/** -f(u): the stop-gradient ("biased" for every f but reverse KL) OPD advantage. */
export function stopGradAdvantage(name: FDivergenceName, logu: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.neg(fDivergence(name).f(logu)));
}

/** w_f(u) = -f(u) + u f'(u): OPD+'s unbiased policy-gradient weight (closed form, stable for any log u). */
export function unbiasedWeight(name: FDivergenceName, logu: tf.Tensor): tf.Tensor {
  return tf.tidy(() => fDivergence(name).weight(logu));
}

/** Full-distribution D_f(pT || pS) = sum_v pS(v) f(pT(v) / pS(v)) per row, for identities against the KLs. */
export function fDivergenceRows(name: FDivergenceName, logpT_NV: tf.Tensor2D, logpS_NV: tf.Tensor2D): tf.Tensor1D {
  if (logpT_NV.shape.join() !== logpS_NV.shape.join()) { // else tf broadcasts [1, V] against [N, V] silently
    throw new Error(`fDivergenceRows: teacher and student log-probs must have the same shape, got [${logpT_NV.shape}] and [${logpS_NV.shape}]`);
  }
  return tf.tidy(() => tf.sum(tf.mul(tf.exp(logpS_NV), fDivergence(name).f(tf.sub(logpT_NV, logpS_NV))), 1) as tf.Tensor1D);
}
