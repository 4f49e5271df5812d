/**
 * Sampling error as PROPS defines it (claim C18): the KL divergence from the empirical policy of the collected data
 * to the target policy,
 *
 *   SE = D_KL(pi_D || pi_theta) = (1/N) sum_n [ log pi_D(y_n | s_n) - log pi_theta(y_n | s_n) ]
 *
 * where pi_D is the maximum-likelihood policy fitted to the data. Corrado & Hanna, "On-Policy Policy Gradient
 * Reinforcement Learning Without On-Policy Sampling", arXiv 2311.08290; code NicholasCorrado/PROPS
 * ppo_discrete.py `compute_se` (fits pi_D by MLE on the buffer, then averages log pi_D - log pi_theta over it).
 * For a tabular state the MLE is the count share, so with states = token contexts (prompt and response prefix):
 *
 *   context     SE = sum_c (n_c / N) KL(emp_c || q0_c),   emp_c(v) = (# v sampled at c) / n_c
 *   shared      the same over the contexts visited at least twice, weighted by their visits (a single visit gives
 *               KL = -log q0(y), which no behaviour policy that starts on-policy can change)
 *   marginal    KL( (1/N) sum_n 1[y_n = .]  ||  (1/N) sum_n q0_n(.) ): one state for the whole batch
 *
 * q0_n is the target distribution the token was meant to come from (the sampler's targetProbs: the student at the
 * sampling temperature / truncation). Rows with equal context ids must have equal targets (the first is used).
 * A sampled token with target probability 0 makes the KL infinite: an error (the target does not cover the data).
 * lib/sim/props.ts `samplingError` gives the total-variation versions of the same quantities.
 */
import { assertLength } from '../probs/validate';

export interface SamplingKlInput {
  vocabSize: number;
  /** [N] sampled tokens. */
  tokens_N: ArrayLike<number>;
  /** [N * V] target distribution of each token (rows sum to 1). */
  targetProbs_NV: ArrayLike<number>;
  /** [N] context id of each token (equal ids = the same state). */
  contextIds_N: ArrayLike<number>;
  /** [N] 1 = count, 0 = skip (padding). Default all 1. */
  mask_N?: ArrayLike<number>;
}

export interface SamplingKl {
  /** Visit-weighted KL over all contexts (nats). */
  context: number;
  /** Visit-weighted KL over contexts visited >= 2 times (NaN when none). */
  shared: number;
  /** KL of the batch's token histogram to its mean target. */
  marginal: number;
  tokens: number;
  contexts: number;
  sharedContexts: number;
  /** Tokens at shared contexts. */
  sharedTokens: number;
}

function klCounts(op: string, counts: Map<number, number>, n: number, target: (v: number) => number): number {
  let kl = 0;
  for (const [v, c] of counts) {
    const q = target(v);
    if (!(q > 0)) throw new Error(`${op}: token ${v} was sampled where its target probability is ${q}; the target must cover the data`);
    const p = c / n;
    kl += p * Math.log(p / q);
  }
  return Math.max(0, kl);
}

/** PROPS' sampling error of a collected batch against its target policy (header). */
export function samplingKl(input: SamplingKlInput): SamplingKl {
  const op = 'samplingKl';
  const { vocabSize: V, tokens_N, targetProbs_NV, contextIds_N, mask_N } = input;
  if (!Number.isInteger(V) || V < 1) throw new Error(`${op}: vocabSize must be a positive integer, got ${V}`);
  const N = tokens_N.length;
  assertLength(op, 'targetProbs_NV', targetProbs_NV, N * V);
  assertLength(op, 'contextIds_N', contextIds_N, N);
  if (mask_N) assertLength(op, 'mask_N', mask_N, N);
  const groups = new Map<number, { first: number; n: number; counts: Map<number, number> }>();
  const marginal = new Map<number, number>();
  const meanTarget = new Float64Array(V);
  let count = 0;
  for (let n = 0; n < N; n++) {
    if (mask_N && mask_N[n] === 0) continue;
    const y = tokens_N[n];
    if (!(Number.isInteger(y) && y >= 0 && y < V)) throw new Error(`${op}: tokens_N must hold ids in [0, ${V}), found ${y} at index ${n}`);
    count++;
    const c = contextIds_N[n];
    let g = groups.get(c);
    if (!g) groups.set(c, (g = { first: n, n: 0, counts: new Map() }));
    g.n++;
    g.counts.set(y, (g.counts.get(y) ?? 0) + 1);
    marginal.set(y, (marginal.get(y) ?? 0) + 1);
    for (let v = 0; v < V; v++) meanTarget[v] += targetProbs_NV[n * V + v];
  }
  if (count === 0) throw new Error(`${op}: no token is masked in (mask_N is all 0 or N = 0)`);
  let all = 0, shared = 0, sharedTokens = 0, sharedContexts = 0;
  for (const g of groups.values()) {
    const kl = klCounts(op, g.counts, g.n, (v) => targetProbs_NV[g.first * V + v]);
    all += g.n * kl;
    if (g.n >= 2) {
      shared += g.n * kl;
      sharedTokens += g.n;
      sharedContexts++;
    }
  }
  return {
    context: all / count,
    shared: sharedTokens > 0 ? shared / sharedTokens : NaN,
    marginal: klCounts(op, marginal, count, (v) => meanTarget[v] / count),
    tokens: count,
    contexts: groups.size,
    sharedContexts,
    sharedTokens,
  };
}
