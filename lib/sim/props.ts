/**
 * PROPS as a token-level behaviour policy, and the sampling error it is meant to lower.
 *
 * PROPS (Corrado & Hanna, "On-Policy Policy Gradient Reinforcement Learning Without On-Policy Sampling",
 * arXiv 2311.08290; methods.md section 8): collect data with a behaviour policy that raises the probability of
 * actions under-sampled so far relative to the target policy, so the empirical distribution of the collected data
 * matches the target better than i.i.d. on-policy sampling does. Its behaviour update minimises, over the data D
 * seen in a state s, L(phi) = sum_{a in D} clip(pi_phi(a|s) / pi_theta(a|s), 1 - eps, 1 + eps) (PPO's clipped
 * loss with advantage -1 on every observed action). For a softmax over logits z at phi = theta,
 *
 *   -dL/dz_v = n pi(v|s) - c(v) =: d_s(v)       n = samples seen in s, c(v) = how often v was among them
 *
 * so one gradient step of size lambda tilts the target by exp(lambda d_s(v)) (ROS is this single unclipped
 * step). Our token-level adaptation:
 *
 *   q(v | s) = q0(v | s) w_s(v) / sum_u q0(u | s) w_s(u),     w_s(v) = exp(clip(lambda d_s(v), log(1 - eps), log(1 + eps)))
 *
 * with q0 the sampler's target distribution (temperature / top-k / top-p applied; exactly pS at the defaults) and
 * the clip bounding each token's ratio before renormalisation, as PROPS' clip bounds pi_phi / pi_theta.
 * The state s ("scope"):
 *   'context'  the exact context (prompt and response prefix). Rows of a batch that share a context (several
 *              rollouts of one prompt, while their prefixes agree) are sampled one after another, each row
 *              tilted by the deficit d_s of the rows before it. This is tabular PROPS with a buffer of the current
 *              batch: it acts where rollouts branch.
 *   'batch'    one state for the whole batch: d accumulates sum_n (q0_n(v) - 1[y_n = v]) over every token sampled so
 *              far (all rows, all earlier positions), lowering the error of the batch's token histogram.
 * The sampler records log q(y) as its log-prob (the behaviour policy), so importance weights pS / q stay exact.
 * Defaults (lambda = 1, eps = 0.3 as in the PROPS code) are not tuned per method.
 *
 * samplingError: for tokens y_n sampled at contexts c_n with target distributions q0_n,
 *   tvMarginal      = 1/2 sum_v | (1/N) sum_n 1[y_n = v] - (1/N) sum_n q0_n(v) |
 *   tvContext       = sum_c (n_c / N) TV(empirical_c, q0_c)      over the distinct contexts c (n_c visits each)
 *   tvSharedContext = the same over contexts visited at least twice (where a behaviour policy can act)
 * The PROPS paper measures sampling error as a KL between the empirical and the target policy per state; TV is
 * used here because it stays finite for unvisited tokens.
 */

export type PropsScope = 'context' | 'batch';
export const PROPS_SCOPES: readonly PropsScope[] = ['context', 'batch'];

export interface PropsOptions {
  /** lambda: step size of the tilt exp(lambda d(v)) (0 = plain on-policy sampling). */
  strength: number;
  /** eps: each token's ratio q / q0 is clipped to [1 - eps, 1 + eps] before renormalising. */
  clip: number;
  /** Which samples share a deficit (see header). */
  scope: PropsScope;
}

export const DEFAULT_PROPS: Readonly<PropsOptions> = { strength: 1, clip: 0.3, scope: 'context' };

export function resolveProps(options: Partial<PropsOptions> = {}): PropsOptions {
  const out = { ...DEFAULT_PROPS };
  for (const key of Object.keys(options)) {
    if (!(key in DEFAULT_PROPS)) throw new Error(`props: unknown option '${key}' (known: ${Object.keys(DEFAULT_PROPS).join(', ')})`);
  }
  Object.assign(out, Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)));
  if (!(out.strength >= 0) || !Number.isFinite(out.strength)) throw new Error(`props: strength must be a finite number >= 0, got ${out.strength}`);
  if (!(out.clip >= 0 && out.clip < 1)) throw new Error(`props: clip must be a number in [0, 1), got ${out.clip}`);
  if (!PROPS_SCOPES.includes(out.scope)) throw new Error(`props: scope must be one of ${PROPS_SCOPES.join(', ')}, got '${out.scope as string}'`);
  return out;
}

/** The running deficits d_s(v) of one batch being sampled. */
export class PropsState {
  private readonly deficits = new Map<number, Float64Array>();
  readonly options: PropsOptions;

  constructor(readonly vocabSize: number, options: Partial<PropsOptions> = {}) {
    this.options = resolveProps(options);
  }

  private key(contextId: number): number {
    return this.options.scope === 'batch' ? 0 : contextId;
  }

  /** d_s for a context (undefined before the first sample in its state). */
  deficit(contextId: number): Float64Array | undefined {
    return this.deficits.get(this.key(contextId));
  }

  /**
   * The behaviour distribution q for target q0 at a context, written into `out` (may alias q0).
   * Tokens with q0 = 0 keep q = 0.
   */
  tilt(q0: ArrayLike<number>, contextId: number, out: Float64Array): void {
    const V = this.vocabSize;
    const d = this.deficits.get(this.key(contextId));
    const { strength, clip } = this.options;
    if (!d || strength === 0) {
      if (out !== q0) for (let v = 0; v < V; v++) out[v] = q0[v];
      return;
    }
    const lo = Math.log(1 - clip);
    const hi = Math.log(1 + clip);
    let z = 0;
    for (let v = 0; v < V; v++) {
      const p = q0[v];
      if (p <= 0) {
        out[v] = 0;
        continue;
      }
      let a = strength * d[v];
      if (a < lo) a = lo;
      else if (a > hi) a = hi;
      const w = p * Math.exp(a);
      out[v] = w;
      z += w;
    }
    for (let v = 0; v < V; v++) out[v] /= z;
  }

  /** Record that token y was sampled at a context whose target was q0: d_s += q0 - onehot(y). */
  observe(q0: ArrayLike<number>, contextId: number, y: number): void {
    const k = this.key(contextId);
    let d = this.deficits.get(k);
    if (!d) {
      d = new Float64Array(this.vocabSize);
      this.deficits.set(k, d);
    }
    for (let v = 0; v < this.vocabSize; v++) d[v] += q0[v];
    d[y] -= 1;
  }
}

export interface SamplingErrorInput {
  vocabSize: number;
  /** [N] sampled tokens. */
  tokens_N: ArrayLike<number>;
  /** [N * V] the target distribution each token was meant to be drawn from (rows sum to 1). */
  targetProbs_NV: ArrayLike<number>;
  /** [N] context id of each token (equal ids = same context, so the same target); optional. */
  contextIds_N?: ArrayLike<number>;
  /** [N] 1 = count this token, 0 = skip (padding); default all 1. */
  mask_N?: ArrayLike<number>;
}

export interface SamplingError {
  tvMarginal: number;
  /** NaN without contextIds_N. */
  tvContext: number;
  /** NaN when no context was visited twice. */
  tvSharedContext: number;
  /** Tokens counted. */
  tokens: number;
  /** Distinct contexts among them. */
  contexts: number;
  /** Contexts visited at least twice. */
  sharedContexts: number;
}

/** Sampling error of a collected batch against its target policy (formulas in the header). */
export function samplingError(input: SamplingErrorInput): SamplingError {
  const { vocabSize: V, tokens_N, targetProbs_NV, contextIds_N, mask_N } = input;
  const N = tokens_N.length;
  if (!Number.isInteger(V) || V < 1) throw new Error(`samplingError: vocabSize must be a positive integer, got ${V}`);
  if (targetProbs_NV.length !== N * V) throw new Error(`samplingError: targetProbs_NV must have length N * V = ${N * V}, got ${targetProbs_NV.length}`);
  if (contextIds_N && contextIds_N.length !== N) throw new Error(`samplingError: contextIds_N must have length N = ${N}, got ${contextIds_N.length}`);
  if (mask_N && mask_N.length !== N) throw new Error(`samplingError: mask_N must have length N = ${N}, got ${mask_N.length}`);
  const emp = new Float64Array(V);
  const tgt = new Float64Array(V);
  const groups = new Map<number, { n: number; emp: Float64Array; tgt: Float64Array }>();
  let count = 0;
  for (let n = 0; n < N; n++) {
    if (mask_N && mask_N[n] === 0) continue;
    const y = tokens_N[n];
    if (!(Number.isInteger(y) && y >= 0 && y < V)) throw new Error(`samplingError: tokens_N must hold ids in [0, ${V}), found ${y} at index ${n}`);
    count++;
    emp[y] += 1;
    for (let v = 0; v < V; v++) tgt[v] += targetProbs_NV[n * V + v];
    if (contextIds_N) {
      const c = contextIds_N[n];
      let g = groups.get(c);
      if (!g) {
        g = { n: 0, emp: new Float64Array(V), tgt: new Float64Array(V) };
        groups.set(c, g);
      }
      g.n++;
      g.emp[y] += 1;
      for (let v = 0; v < V; v++) g.tgt[v] += targetProbs_NV[n * V + v];
    }
  }
  const tv = (a: Float64Array, b: Float64Array, na: number) => {
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.abs(a[v] / na - b[v] / na);
    return s / 2;
  };
  const tvMarginal = count > 0 ? tv(emp, tgt, count) : NaN;
  let tvContext = NaN;
  let tvShared = NaN;
  let shared = 0;
  if (contextIds_N && count > 0) {
    let all = 0;
    let sharedSum = 0;
    let sharedTokens = 0;
    for (const g of groups.values()) {
      const e = tv(g.emp, g.tgt, g.n);
      all += g.n * e;
      if (g.n >= 2) {
        shared++;
        sharedSum += g.n * e;
        sharedTokens += g.n;
      }
    }
    tvContext = all / count;
    tvShared = sharedTokens > 0 ? sharedSum / sharedTokens : NaN;
  }
  return { tvMarginal, tvContext, tvSharedContext: tvShared, tokens: count, contexts: contextIds_N ? groups.size : 0, sharedContexts: shared };
}
