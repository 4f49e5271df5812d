/**
 * PROPS behaviour policy and sampling error (lib/sim/props.ts), alone and inside the sampler.
 */
import { describe, expect, it } from 'vitest';
import { PropsState, resolveProps, samplingError } from '../../lib/sim/props';
import { Rng } from '../../lib/sim/rng';
import { sample } from '../../lib/sim/sampler';
import { Student } from '../../lib/sim/student';
import { expectAllclose } from '../helpers';

describe('PropsState.tilt (hand-checked)', () => {
  const q0 = [0.5, 0.3, 0.2];
  it('after one draw of token 0: d = [-0.5, 0.3, 0.2]; clipped ratios [0.7, 1.3, e^0.2], renormalised', () => {
    const st = new PropsState(3, { strength: 1, clip: 0.3 });
    const q = new Float64Array(3);
    st.tilt(q0, 0, q);
    expect(Array.from(q)).toEqual(q0); // nothing observed yet: q = q0
    st.observe(q0, 0, 0);
    expectAllclose(Array.from(st.deficit(0)!), [-0.5, 0.3, 0.2], { rtol: 1e-12 });
    st.tilt(q0, 0, q);
    expectAllclose(Array.from(q), [0.355589673513, 0.396228493343, 0.248181833144], { rtol: 1e-9 });
  });

  it('with a small step no clip is active: q ~ q0 exp(0.1 d)', () => {
    const st = new PropsState(3, { strength: 0.1, clip: 0.3 });
    st.observe(q0, 0, 0);
    const q = new Float64Array(3);
    st.tilt(q0, 0, q);
    expectAllclose(Array.from(q), [0.481006146391, 0.312640642714, 0.206353210895], { rtol: 1e-9 });
  });

  it('deficits add up per context; scope batch shares one deficit across contexts', () => {
    const st = new PropsState(3, { scope: 'context' });
    st.observe(q0, 0, 0);
    st.observe(q0, 0, 1);
    st.observe(q0, 5, 2);
    expectAllclose(Array.from(st.deficit(0)!), [0, -0.4, 0.4], { atol: 1e-12 });
    expect(st.deficit(1)).toBeUndefined();
    const sb = new PropsState(3, { scope: 'batch' });
    sb.observe(q0, 0, 0);
    sb.observe(q0, 5, 1);
    expectAllclose(Array.from(sb.deficit(123)!), [0, -0.4, 0.4], { atol: 1e-12 });
  });

  it('keeps zero-probability tokens at zero and rejects bad options', () => {
    const st = new PropsState(3, { strength: 5, clip: 0.9 });
    st.observe([0.5, 0.5, 0], 0, 0);
    const q = new Float64Array(3);
    st.tilt([0.5, 0.5, 0], 0, q);
    expect(q[2]).toBe(0);
    expectAllclose([q[0] + q[1]], [1], { rtol: 1e-12 });
    expect(() => resolveProps({ clip: 1 })).toThrow(/clip must be a number in \[0, 1\)/);
    expect(() => resolveProps({ scope: 'row' } as never)).toThrow(/scope must be one of context, batch/);
    expect(() => resolveProps({ lambda: 1 } as never)).toThrow(/unknown option 'lambda'/);
  });
});

describe('samplingError (hand-checked)', () => {
  it('marginal, per-context and shared-context TV', () => {
    const target = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
    // tokens 0, 0, 1 against [0.5, 0.5]: empirical [2/3, 1/3], TV = 1/6
    const same = samplingError({ vocabSize: 2, tokens_N: [0, 0, 1], targetProbs_NV: target, contextIds_N: [7, 7, 7] });
    expectAllclose([same.tvMarginal, same.tvContext, same.tvSharedContext], [1 / 6, 1 / 6, 1 / 6], { rtol: 1e-12 });
    expect([same.tokens, same.contexts, same.sharedContexts]).toEqual([3, 1, 1]);
    // three different contexts, one visit each: each TV(onehot, [0.5, 0.5]) = 0.5; nothing shared
    const apart = samplingError({ vocabSize: 2, tokens_N: [0, 0, 1], targetProbs_NV: target, contextIds_N: [1, 2, 3] });
    expectAllclose([apart.tvMarginal, apart.tvContext], [1 / 6, 0.5], { rtol: 1e-12 });
    expect(apart.tvSharedContext).toBeNaN();
    // the mask drops the third token: empirical [1, 0] -> TV 0.5
    const masked = samplingError({ vocabSize: 2, tokens_N: [0, 0, 1], targetProbs_NV: target, mask_N: [1, 1, 0] });
    expectAllclose([masked.tvMarginal], [0.5], { rtol: 1e-12 });
    expect(masked.tvContext).toBeNaN();
    expect(() => samplingError({ vocabSize: 2, tokens_N: [0, 2], targetProbs_NV: [1, 0, 1, 0] })).toThrow(/tokens_N must hold ids in \[0, 2\), found 2 at index 1/);
  });
});

/** Mean per-context TV of G draws in one context from q0, with a PROPS behaviour or not, over `reps` seeds. */
function meanError(q0: number[], G: number, reps: number, props: { strength: number; clip: number } | null): number {
  let total = 0;
  for (let r = 0; r < reps; r++) {
    const rng = new Rng(1000 + r);
    const st = props ? new PropsState(q0.length, props) : null;
    const q = new Float64Array(q0.length);
    const tokens: number[] = [];
    for (let g = 0; g < G; g++) {
      if (st) st.tilt(q0, 0, q);
      const y = rng.categorical(st ? q : q0);
      st?.observe(q0, 0, y);
      tokens.push(y);
    }
    total += samplingError({ vocabSize: q0.length, tokens_N: tokens, targetProbs_NV: tokens.flatMap(() => q0), contextIds_N: tokens.map(() => 0) }).tvContext;
  }
  return total / reps;
}

describe('PROPS lowers sampling error relative to on-policy sampling', () => {
  it('in one context (5 tokens, 8 draws, 1500 seeds): default and stronger settings', () => {
    const q0 = [0.4, 0.25, 0.15, 0.12, 0.08];
    const plain = meanError(q0, 8, 1500, null);
    const props = meanError(q0, 8, 1500, { strength: 1, clip: 0.3 });
    const strong = meanError(q0, 8, 1500, { strength: 3, clip: 0.6 });
    // measured: 0.267 plain, 0.210 default, 0.156 strong; the mean's standard error is about 0.003
    expect(props).toBeLessThan(plain - 0.03);
    expect(strong).toBeLessThan(props - 0.03);
    expect(meanError(q0, 8, 300, { strength: 0, clip: 0.3 })).toBe(meanError(q0, 8, 300, null));
  });

  it('inside the sampler: 4 prompts x 8 rollouts from a student (shared contexts); equal samples at strength 0', () => {
    const s = new Student({ vocabSize: 40, context: 12, layers: 1, width: 16, heads: 2, mlpRatio: 2, seed: 2, initStd: 1 });
    const prompts = [[1, 7, 3], [1, 8, 3], [1, 9, 3], [1, 10, 3]].flatMap((p) => Array.from({ length: 8 }, () => p));
    const base = { maxNewTokens: 4, stopToken: null, recordTargetProbs: true } as const;
    const zero = sample(s, prompts, { ...base, seed: 1, props: { strength: 0 } });
    expect(Array.from(zero.tokens_BT)).toEqual(Array.from(sample(s, prompts, { ...base, seed: 1 }).tokens_BT));
    const seeds = 16;
    const shared = (props: { strength: number; clip: number } | null) => {
      let total = 0;
      for (let seed = 0; seed < seeds; seed++) {
        const r = sample(s, prompts, { ...base, seed, props });
        const tokens_N = Array.from({ length: r.B * r.R }, (_, n) => r.tokens_BT[Math.floor(n / r.R) * (r.P + r.R) + r.P + (n % r.R)]);
        total += samplingError({ vocabSize: 40, tokens_N, targetProbs_NV: r.targetProbs_BRV!, contextIds_N: r.contextIds_BR, mask_N: r.mask_BR }).tvSharedContext;
      }
      return total / seeds;
    };
    const plain = shared(null);
    // measured: 0.333 plain, 0.315 default (strength 1, clip 0.3), 0.294 strong (strength 3, clip 0.6)
    expect(shared({ strength: 1, clip: 0.3 })).toBeLessThan(plain - 0.01);
    expect(shared({ strength: 3, clip: 0.6 })).toBeLessThan(plain - 0.025);
    s.dispose();
  });

  it("scope 'batch' lowers the error of the batch's token histogram (tvMarginal)", () => {
    const s = new Student({ vocabSize: 40, context: 12, layers: 1, width: 16, heads: 2, mlpRatio: 2, seed: 2, initStd: 1 });
    const prompts = [[1, 7, 3], [1, 8, 3], [1, 9, 3], [1, 10, 3]].flatMap((p) => Array.from({ length: 8 }, () => p));
    const marginal = (props: { strength: number; clip: number; scope: 'batch' } | null) => {
      let total = 0;
      for (let seed = 0; seed < 16; seed++) {
        const r = sample(s, prompts, { maxNewTokens: 4, stopToken: null, recordTargetProbs: true, seed, props });
        const tokens_N = Array.from({ length: r.B * r.R }, (_, n) => r.tokens_BT[Math.floor(n / r.R) * (r.P + r.R) + r.P + (n % r.R)]);
        total += samplingError({ vocabSize: 40, tokens_N, targetProbs_NV: r.targetProbs_BRV!, mask_N: r.mask_BR }).tvMarginal / 16;
      }
      return total;
    };
    // measured: 0.134 plain, 0.097 with strength 1, clip 0.3
    expect(marginal({ strength: 1, clip: 0.3, scope: 'batch' })).toBeLessThan(marginal(null) - 0.02);
    s.dispose();
  });

  it('the sampler records log q of the tilted distribution (recomputed here from its deficits)', () => {
    const s = new Student({ vocabSize: 40, context: 12, layers: 1, width: 16, heads: 2, mlpRatio: 2, seed: 2, initStd: 0.6 });
    const prompts = Array.from({ length: 6 }, () => [1, 7, 3]);
    const r = sample(s, prompts, { maxNewTokens: 3, stopToken: null, recordTargetProbs: true, seed: 3, props: { strength: 2, clip: 0.5 } });
    const V = 40;
    const st = new PropsState(V, { strength: 2, clip: 0.5 });
    const q = new Float64Array(V);
    let tilted = 0;
    for (let t = 0; t < r.R; t++) {
      for (let b = 0; b < r.B; b++) {
        const n = b * r.R + t;
        const q0 = r.targetProbs_BRV!.subarray(n * V, (n + 1) * V);
        const y = r.tokens_BT[b * (r.P + r.R) + r.P + t];
        st.tilt(q0, r.contextIds_BR[n], q);
        expectAllclose([r.samplerLogprobs_BR[n]], [Math.log(q[y])], { rtol: 1e-5, label: `row ${b} t ${t}` });
        if (Math.abs(Math.log(q[y]) - Math.log(q0[y])) > 1e-3) tilted++;
        st.observe(q0, r.contextIds_BR[n], y);
      }
    }
    expect(tilted).toBeGreaterThan(3);
    s.dispose();
  });
});
