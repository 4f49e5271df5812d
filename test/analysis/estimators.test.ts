/**
 * lib/analysis/estimators.ts (C14, C15) and lib/analysis/samplingKl.ts (C18): hand-worked cases, identities
 * (the unbiased weight gives the true gradient for every f; stopGrad only for reverse KL), the PyTorch reference
 * of test/fixtures/gen_opdplus.py (meta.c14: grad D_f and the exact expected stop-gradient gradient by autograd,
 * float64), agreement with the opdplus objective enumerated over tokens, the streamed moments and the paired bias
 * against hand sums, PROPS' sampling error by hand, bad input, and no tensor leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { cosine, EstimatorMoments, fDivergenceGradients, pairedBias, relativeError } from '../../lib/analysis/estimators';
import { samplingKl } from '../../lib/analysis/samplingKl';
import { objectiveLossAndGrad } from '../../lib/objectives/registry';
import '../../lib/objectives';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randn } from '../helpers';

const mat = (data: ArrayLike<number>, rows: number, cols: number) => ({ data, rows, cols });

describe('fDivergenceGradients', () => {
  // pS = (1/2, 1/2) (logits 0, 0), pT = (0.8, 0.2): u = (1.6, 0.4)
  const z = mat([0, 0], 1, 2);
  const t = mat([Math.log(0.8), Math.log(0.2)], 1, 2);

  it('reverse KL by hand: d KL(pS||pT)/dz = pS (g - E g), g = 1 - ln u, i.e. -/+ ln(4)/4; stopGrad = unbiased = true', () => {
    const g = fDivergenceGradients(z, t, undefined, { divergence: 'reverseKL' });
    expectAllclose(g.true_NV, [-Math.log(4) / 4, Math.log(4) / 4], { rtol: 1e-5 });
    expectAllclose(g.expected.unbiased, g.true_NV, { rtol: 1e-5 });
    expectAllclose(g.expected.stopGrad, g.true_NV, { rtol: 1e-5 });
  });

  it('forward KL by hand: true = -(pT - pS) = (-0.3, 0.3); stopGrad (w = -u ln u) = (+0.27963, -0.27963), the opposite direction', () => {
    const g = fDivergenceGradients(z, t, undefined, { divergence: 'forwardKL' });
    expectAllclose(g.true_NV, [-0.3, 0.3], { rtol: 1e-5 });
    expectAllclose(g.expected.unbiased, [-0.3, 0.3], { rtol: 1e-5 });
    // E_j = -p_j w_j + p_j sum p w, w = (-1.6 ln 1.6, -0.4 ln 0.4)
    const w = [-1.6 * Math.log(1.6), -0.4 * Math.log(0.4)];
    const pw = 0.5 * (w[0] + w[1]);
    expectAllclose(g.expected.stopGrad, [-0.5 * w[0] + 0.5 * pw, -0.5 * w[1] + 0.5 * pw], { rtol: 1e-5 });
    expect(g.expected.stopGrad[0]).toBeCloseTo(0.27963, 4);
    expect(cosine(g.expected.stopGrad, g.true_NV)).toBeCloseTo(-1, 6);
    expect(relativeError(g.expected.unbiased, g.true_NV)).toBeLessThan(1e-5);
  });

  it('matches the PyTorch float64 reference (gen_opdplus.py meta.c14) for every f', () => {
    const c = loadFixture('opdplus').meta.c14 as { contexts: number; V: number; logits: number[]; teacherLogits: number[]; gradDf: Record<string, number[]>; gradStopGrad: Record<string, number[]> };
    for (const div of Object.keys(c.gradDf)) {
      const g = fDivergenceGradients(mat(c.logits, c.contexts, c.V), mat(c.teacherLogits, c.contexts, c.V), undefined, { divergence: div as never });
      expectAllclose(g.true_NV, c.gradDf[div], { rtol: 1e-4, atol: 1e-6, label: `${div} true` });
      expectAllclose(g.expected.unbiased, c.gradDf[div], { rtol: 1e-4, atol: 1e-6, label: `${div} unbiased` });
      expectAllclose(g.expected.stopGrad, c.gradStopGrad[div], { rtol: 1e-4, atol: 1e-6, label: `${div} stopGrad` });
    }
  });

  it('equals the opdplus objective gradient averaged over every token y ~ pS (the surrogate the trainer uses), clamp included', () => {
    const N = 4, V = 6;
    const zs = randn(N * V, 3, 1.5);
    const ts = randn(N * V, 4, 2);
    const mask = Float32Array.from([1, 0, 1, 1]);
    for (const divergence of ['forwardKL', 'jsd'] as const) {
      for (const clampLogU of [0, 0.7]) {
        const g = fDivergenceGradients(mat(zs, N, V), mat(ts, N, V), mask, { divergence, clampLogU });
        for (const weight of ['stopGrad', 'unbiased'] as const) {
          const expected = new Float64Array(N * V);
          tf.tidy(() => {
            const pS = tf.softmax(tf.tensor2d(zs, [N, V])).dataSync();
            for (let y = 0; y < V; y++) {
              const batch = { studentLogits_NV: tf.tensor2d(zs, [N, V]), tokens_N: new Int32Array(N).fill(y), mask_N: mask, teacher: { logits_NV: tf.tensor2d(ts, [N, V]) } };
              const r = objectiveLossAndGrad('opdplus', batch, { divergence, weight, clampLogU }, 'sum');
              const gy = r.grad_NV.dataSync();
              for (let n = 0; n < N; n++) for (let v = 0; v < V; v++) expected[n * V + v] += pS[n * V + y] * gy[n * V + v];
            }
          });
          expectAllclose(g.expected[weight], expected, { rtol: 1e-4, atol: 1e-6, label: `${divergence} ${weight} clamp ${clampLogU}` });
          for (let v = 0; v < V; v++) expect(g.expected[weight][1 * V + v]).toBe(0); // masked row
        }
        if (clampLogU === 0) expectAllclose(g.expected.unbiased, g.true_NV, { rtol: 1e-4, atol: 1e-6 });
        expect(relativeError(g.expected.stopGrad, g.true_NV)).toBeGreaterThan(0.05);
      }
    }
  });

  it('rejects bad input naming the argument, and leaks no tensor', () => {
    expect(() => fDivergenceGradients(z, mat([0, 0, 0], 1, 3))).toThrow(/same shape/);
    expect(() => fDivergenceGradients(z, t, undefined, { divergence: 'kl' as never })).toThrow(/divergence must be one of/);
    expect(() => fDivergenceGradients(z, t, undefined, { clampLogU: -1 })).toThrow(/clampLogU/);
    expectNoLeak(() => void fDivergenceGradients(mat(randn(12, 1), 3, 4), mat(randn(12, 2), 3, 4), undefined, { divergence: 'jsd' }));
  });
});

describe('EstimatorMoments and pairedBias', () => {
  it('matches hand sums: draws (1,0), (3,0), (2,3): mean (2,1), total variance (2+2+4)/2 = 4', () => {
    const m = new EstimatorMoments(2);
    for (const g of [[1, 0], [3, 0], [2, 3]]) m.add(g);
    expect(m.count).toBe(3);
    expectAllclose(m.mean(), [2, 1]);
    expect(m.totalVariance()).toBeCloseTo(4, 12);
    expect(m.meanNormSq()).toBeCloseTo(5, 12);
    const one = new EstimatorMoments(1);
    one.add([2]);
    expect(one.totalVariance()).toBeNaN();
  });

  it('paired bias: plug-in ||dbar||^2 minus tr Cov(d)/M; an estimator against itself has zero bias', () => {
    const d = new EstimatorMoments(2);
    for (const g of [[1, 0], [3, 0], [2, 3]]) d.add(g);
    const b = pairedBias(d);
    expect(b.plugInSq).toBeCloseTo(5, 12);
    expect(b.noiseSq).toBeCloseTo(4 / 3, 12);
    expect(b.biasSq).toBeCloseTo(5 - 4 / 3, 12);
    const zero = new EstimatorMoments(3);
    zero.add([0, 0, 0]);
    zero.add([0, 0, 0]);
    expect(pairedBias(zero).biasSq).toBe(0);
  });

  it('the bias estimate is unbiased: noisy draws around a known offset recover ||offset||^2 on average', () => {
    // d_i = offset + noise, offset (0.3, -0.4): ||offset||^2 = 0.25; 400 repeats of M = 5 draws
    let acc = 0;
    const noise = randn(400 * 5 * 2, 9, 1);
    for (let r = 0; r < 400; r++) {
      const d = new EstimatorMoments(2);
      for (let i = 0; i < 5; i++) d.add([0.3 + noise[(r * 5 + i) * 2], -0.4 + noise[(r * 5 + i) * 2 + 1]]);
      acc += pairedBias(d).biasSq;
    }
    expect(acc / 400).toBeGreaterThan(0.25 - 0.1);
    expect(acc / 400).toBeLessThan(0.25 + 0.1);
  });

  it('rejects bad draws naming the problem', () => {
    const m = new EstimatorMoments(2);
    expect(() => m.add([1])).toThrow(/length dim = 2/);
    expect(() => m.add([1, NaN])).toThrow(/finite/);
    expect(() => new EstimatorMoments(0)).toThrow(/dim/);
    expect(() => m.mean()).toThrow(/no draw/);
    expect(() => pairedBias(m)).toThrow(/at least 2/);
    expect(() => cosine([1], [1, 2])).toThrow(/same length/);
    expect(cosine([0, 0], [1, 2])).toBeNaN();
  });
});

describe('samplingKl (PROPS sampling error)', () => {
  // context 7 visited twice (tokens 0, 0; target (1/2, 1/2)): KL = ln 2; context 9 once (token 1; target (3/4, 1/4)): KL = ln 4
  const input = { vocabSize: 2, tokens_N: [0, 0, 1, 1], targetProbs_NV: [0.5, 0.5, 0.5, 0.5, 0.75, 0.25, 0.1, 0.9], contextIds_N: [7, 7, 9, 3], mask_N: [1, 1, 1, 0] };

  it('matches a hand computation per context, shared contexts and the marginal', () => {
    const s = samplingKl(input);
    expect(s.tokens).toBe(3);
    expect(s.contexts).toBe(2);
    expect(s.sharedContexts).toBe(1);
    expect(s.sharedTokens).toBe(2);
    expect(s.context).toBeCloseTo((2 * Math.log(2) + Math.log(4)) / 3, 12);
    expect(s.shared).toBeCloseTo(Math.log(2), 12);
    // histogram (2/3, 1/3) against the mean target (1.75/3, 1.25/3)
    expect(s.marginal).toBeCloseTo((2 / 3) * Math.log((2 / 3) / (1.75 / 3)) + (1 / 3) * Math.log((1 / 3) / (1.25 / 3)), 12);
  });

  it('is zero when every context holds exactly its target (two visits split 1:1 on a (1/2, 1/2) target)', () => {
    const s = samplingKl({ vocabSize: 2, tokens_N: [0, 1], targetProbs_NV: [0.5, 0.5, 0.5, 0.5], contextIds_N: [1, 1] });
    expect(s.context).toBe(0);
    expect(s.shared).toBe(0);
    expect(s.marginal).toBe(0);
    expect(samplingKl({ ...input, contextIds_N: [1, 2, 3, 4] }).shared).toBeNaN();
  });

  it('rejects bad input naming the argument', () => {
    expect(() => samplingKl({ ...input, targetProbs_NV: [0.5] })).toThrow(/targetProbs_NV/);
    expect(() => samplingKl({ ...input, contextIds_N: [1] })).toThrow(/contextIds_N/);
    expect(() => samplingKl({ ...input, tokens_N: [0, 0, 5, 1] })).toThrow(/tokens_N/);
    expect(() => samplingKl({ ...input, mask_N: [0, 0, 0, 0] })).toThrow(/no token/);
    expect(() => samplingKl({ ...input, targetProbs_NV: [1, 0, 1, 0, 1, 0, 1, 0] })).toThrow(/must cover the data/);
  });
});
