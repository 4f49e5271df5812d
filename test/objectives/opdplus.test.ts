import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/gopd';
import { OPDPLUS_DEFAULTS } from '../../lib/objectives/opdplus';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction, TeacherTopK } from '../../lib/objectives/types';
import { F_DIVERGENCES, fDivergence, fDivergenceRows, unbiasedWeight, type FDivergenceName } from '../../lib/probs/fdivergences';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn, sampledTeacher } from '../helpers';
import { rowLogSoftmax64 } from '../../lib/analysis/values';

function run(name: string, batch: DistillBatch, options: Record<string, unknown>, reduction: Reduction = 'token-mean') {
  const out = objectiveLossAndGrad(name, batch, options, reduction);
  const grad = Array.from(out.grad_NV.dataSync());
  out.grad_NV.dispose();
  return { ...out, grad };
}

describe('opdplus: hand-checkable', () => {
  // logits [0, 0] -> pS = 1/2, y = 0, log pT(y) = 0 -> u = pT/pS = 2. Sum reduction: l = -w log pS = w ln 2 and
  // dl/dz = -w (1 - 1/2, -1/2) = (-w/2, +w/2). Weights at u = 2:
  //   unbiased w_f(2): reverseKL ln 2 - 1 = -0.306853, forwardKL u = 2, jsd 1/2 ln(3/2) = 0.202733,
  //                    totalVariation 1/2, chiSquared u^2 - 1 = 3, hellinger sqrt(2) - 1 = 0.414214
  //   stopGrad -f(2):  reverseKL ln 2, forwardKL -2 ln 2, jsd -1/2 (2 ln 2 - 3 ln(3/2)) = -0.084950,
  //                    totalVariation -1/2, chiSquared -1, hellinger -(sqrt(2) - 1)^2 = -0.171573
  const table: Record<FDivergenceName, [number, number]> = {
    reverseKL: [-0.306853, 0.693147],
    forwardKL: [2, -1.386294],
    jsd: [0.202733, -0.08495],
    totalVariation: [0.5, -0.5],
    chiSquared: [3, -1],
    hellinger: [0.414214, -0.171573],
  };
  for (const divergence of F_DIVERGENCES) {
    it(`${divergence} at u = 2`, () => {
      const z = tf.tensor2d([[0, 0]]);
      const batch: DistillBatch = { studentLogits_NV: z, tokens_N: new Int32Array([0]), mask_N: new Float32Array([1]), teacher: sampledTeacher([0]) };
      table[divergence].forEach((w, i) => {
        const out = run('opdplus', batch, { divergence, weight: i === 0 ? 'unbiased' : 'stopGrad' }, 'sum');
        expectAllclose([out.loss], [w * Math.LN2], { atol: 2e-6 });
        expectAllclose(out.grad, [-w / 2, w / 2], { atol: 2e-6 });
        expectAllclose([out.metrics['adv/mean'], out.metrics['adv/max'], out.metrics['clip/fraction']], [w, w, 0], { atol: 2e-6 });
      });
      z.dispose();
    });
  }

  // Clamp: token 0 as above (log u = ln 2 = 0.693 > 0.5 -> clamped to 0.5: forwardKL w = e^0.5 = 1.648721,
  // l = 1.648721 ln 2 = 1.142807); token 1: logits [0, 0], y = 1, log pT = ln 0.6 -> log u = ln 1.2 = 0.182
  // (not clamped: w = 1.2, l = 1.2 ln 2 = 0.831777); token 2 is masked out (huge log u, not counted).
  it('clamps log u and reports the clipped share of masked tokens', () => {
    const z = tf.tensor2d([[0, 0], [0, 0], [0, 9]]);
    const batch: DistillBatch = {
      studentLogits_NV: z,
      tokens_N: new Int32Array([0, 1, 0]),
      mask_N: new Float32Array([1, 1, 0]),
      teacher: sampledTeacher([0, Math.log(0.6), 0]),
    };
    const out = run('opdplus', batch, { divergence: 'forwardKL', clampLogU: 0.5 }, 'sum');
    expectAllclose(out.perToken_N, [1.142807, 0.831777, 0], { atol: 2e-6 });
    expectAllclose([out.loss], [1.142807 + 0.831777], { atol: 4e-6 });
    expectAllclose([out.metrics['clip/fraction'], out.metrics['adv/max'], out.metrics['adv/mean']], [0.5, 1.648721, 1.424361], { atol: 2e-6 });
    z.dispose();
  });

  it('defaults: forwardKL, unbiased, log u clamped to +-6', () => {
    expect(OPDPLUS_DEFAULTS).toEqual({ divergence: 'forwardKL', weight: 'unbiased', clampLogU: 6 });
  });
});

describe('opdplus: identities', () => {
  const N = 9;
  const V = 6;
  const zData = randn(N * V, 301, 1.5);
  const tData = randn(N * V, 302, 1.5);
  const tokens_N = randInts(N, V, 303);
  const mask_N = new Float32Array([1, 1, 0, 1, 1, 1, 1, 0, 1]);
  const make = (extra: Partial<DistillBatch> = {}): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(zData, [N, V]),
    tokens_N,
    mask_N,
    teacher: { logits_NV: tf.tensor2d(tData, [N, V]) },
    ...extra,
  });

  it("the closed-form weight equals -f(u) + u f'(u) for every f (lib/probs/fdivergences.ts)", () => {
    const logu = tf.tensor1d([-3, -1, -0.2, 0.1, 0.7, 2, 3]);
    for (const name of F_DIVERGENCES) {
      const d = fDivergence(name);
      const viaTerms = tf.tidy(() => tf.add(tf.neg(d.f(logu)), d.uFprime(logu)).dataSync());
      const closed = tf.tidy(() => unbiasedWeight(name, logu).dataSync());
      expectAllclose(closed, viaTerms, { rtol: 1e-5, atol: 1e-5, label: name });
    }
    logu.dispose();
  });

  it('reverseKL: unbiased = stopGrad - 1, so l_unbiased = l_stopGrad + log pS', () => {
    const unb = run('opdplus', make(), { divergence: 'reverseKL', weight: 'unbiased', clampLogU: 0 });
    const sg = run('opdplus', make(), { divergence: 'reverseKL', weight: 'stopGrad', clampLogU: 0 });
    const logpS = rowLogSoftmax64(zData, N, V);
    expectAllclose(unb.perToken_N, Array.from(sg.perToken_N, (l, i) => l + mask_N[i] * logpS[i * V + tokens_N[i]]), { rtol: 1e-5, atol: 1e-6 });
    expectAllclose([unb.metrics['adv/mean']], [sg.metrics['adv/mean'] - 1], { rtol: 1e-6, atol: 1e-6 });
  });

  it('reverseKL stopGrad is plain OPD (gopd with lambda = 1)', () => {
    const sg = run('opdplus', make(), { divergence: 'reverseKL', weight: 'stopGrad', clampLogU: 0 });
    const opd = run('gopd', make(), { lambda: 1 });
    expectAllclose(sg.perToken_N, opd.perToken_N, { rtol: 1e-6, atol: 1e-7 });
    expectAllclose(sg.grad, opd.grad, { rtol: 1e-6, atol: 1e-8 });
  });

  // u = 1 on every sampled token (teacher log-prob = student log-prob): stopGrad -f(1) = 0 for every f;
  // unbiased w = f'(1): reverseKL -1, forwardKL +1, the others 0.
  it('at u = 1 the weights are -f(1) = 0 and f\'(1)', () => {
    const logpS = rowLogSoftmax64(zData, N, V);
    const teacher = sampledTeacher(Array.from(tokens_N, (y, i) => logpS[i * V + y]));
    const fPrime1: Record<FDivergenceName, number> = { reverseKL: -1, forwardKL: 1, jsd: 0, totalVariation: 0, chiSquared: 0, hellinger: 0 };
    for (const divergence of F_DIVERGENCES) {
      const unb = computeObjective('opdplus', make({ teacher }), { divergence, weight: 'unbiased' });
      const sg = computeObjective('opdplus', make({ teacher }), { divergence, weight: 'stopGrad' });
      expectAllclose([unb.metrics['adv/mean'], sg.metrics['adv/mean']], [fPrime1[divergence], 0], { atol: 1e-5, label: divergence });
      tf.dispose([unb.loss, sg.loss]);
    }
  });

  it('clampLogU = 0 and a clamp above every |log u| agree; clip/fraction counts masked tokens only', () => {
    const off = run('opdplus', make(), { clampLogU: 0 });
    const wide = run('opdplus', make(), { clampLogU: 100 });
    expect(off.grad).toEqual(wide.grad);
    expect(off.metrics['clip/fraction']).toBe(0);
    const tight = computeObjective('opdplus', make(), { clampLogU: 1e-3 });
    expect(tight.metrics['clip/fraction']).toBe(1); // every masked |log u| > 1e-3 here
    expect(tight.perToken_N[2]).toBe(0);
    tight.loss.dispose();
  });

  it('an all-zero mask gives loss 0 and gradient 0', () => {
    for (const reduction of ['token-mean', 'seq-mean-token-mean', 'sum'] as Reduction[]) {
      const out = run('opdplus', make({ mask_N: new Float32Array(N), seqIds_N: new Int32Array(N) }), { divergence: 'chiSquared' }, reduction);
      expect(out.loss).toBe(0);
      expect(out.grad.every((g) => g === 0)).toBe(true);
    }
  });
});

// Claim C14. One context per row block: row (c, y) holds context c's logits and sampled token y, so with the sum
// reduction sum_y pS_c(y) grad_row(c, y) is the exact expected policy gradient E_{y~pS}[-w(y) grad log pS(y)].
// Unbiased: it equals grad_z D_f(pT || pS) for every f. stopGrad: it equals grad D_f + E[u f'(u) grad log pS],
// which vanishes only for reverseKL (u f'(u) = -1 is constant and E[grad log pS] = 0).
describe('opdplus: expected policy gradient = grad D_f (claim C14)', () => {
  interface C14 {
    contexts: number;
    V: number;
    logits: number[];
    teacherLogits: number[];
    gradDf: Record<FDivergenceName, number[]>;
    gradStopGrad: Record<FDivergenceName, number[]>;
  }
  const c14 = loadFixture<unknown>('opdplus').meta.c14 as C14;
  const C = c14.contexts;
  const v = c14.V;
  const logpS = rowLogSoftmax64(c14.logits, C, v);
  const logpT = rowLogSoftmax64(c14.teacherLogits, C, v);
  // u f'(u) written out per f (independent of lib/probs/fdivergences.ts)
  const uFprime: Record<FDivergenceName, (u: number) => number> = {
    reverseKL: () => -1,
    forwardKL: (u) => u * (Math.log(u) + 1),
    jsd: (u) => 0.5 * u * (Math.log(u) - Math.log((1 + u) / 2)),
    totalVariation: (u) => 0.5 * u * Math.sign(u - 1),
    chiSquared: (u) => 2 * u * (u - 1),
    hellinger: (u) => u - Math.sqrt(u),
  };

  function expectedPg(divergence: FDivergenceName, weight: 'unbiased' | 'stopGrad'): Float64Array {
    const zAll = new Float32Array(C * v * v);
    const tAll = new Float32Array(C * v * v);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < v; y++) {
        zAll.set(c14.logits.slice(c * v, (c + 1) * v), (c * v + y) * v);
        tAll.set(c14.teacherLogits.slice(c * v, (c + 1) * v), (c * v + y) * v);
      }
    }
    const z = tf.tensor2d(zAll, [C * v, v]);
    const t = tf.tensor2d(tAll, [C * v, v]);
    const batch: DistillBatch = {
      studentLogits_NV: z,
      tokens_N: Int32Array.from({ length: C * v }, (_, i) => i % v),
      mask_N: new Float32Array(C * v).fill(1),
      teacher: { logits_NV: t },
    };
    const out = run('opdplus', batch, { divergence, weight, clampLogU: 0 }, 'sum');
    tf.dispose([z, t]);
    const pg = new Float64Array(C * v);
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < v; y++) {
        const p = Math.exp(logpS[c * v + y]);
        for (let j = 0; j < v; j++) pg[c * v + j] += p * out.grad[(c * v + y) * v + j];
      }
    }
    return pg;
  }

  /** grad_z sum_c D_f(pT_c || pS_c) by tfjs autodiff of lib/probs fDivergenceRows. */
  function gradDfTfjs(divergence: FDivergenceName): Float32Array {
    return tf.tidy(() => {
      const lpT = tf.logSoftmax(tf.tensor2d(c14.teacherLogits, [C, v])) as tf.Tensor2D;
      const g = tf.grad((z: tf.Tensor) => tf.sum(fDivergenceRows(divergence, lpT, tf.logSoftmax(z) as tf.Tensor2D)));
      return g(tf.tensor2d(c14.logits, [C, v])).dataSync() as Float32Array;
    });
  }

  for (const divergence of F_DIVERGENCES) {
    it(`${divergence}: unbiased matches grad D_f (PyTorch float64 and tfjs autodiff)`, () => {
      const pg = expectedPg(divergence, 'unbiased');
      const scale = Math.max(...c14.gradDf[divergence].map(Math.abs));
      expect(scale).toBeGreaterThan(1e-2); // a non-trivial gradient
      expectAllclose(pg, c14.gradDf[divergence], { rtol: 1e-4, atol: 1e-6 * scale, label: 'vs torch' });
      expectAllclose(pg, gradDfTfjs(divergence), { rtol: 1e-4, atol: 1e-6 * scale, label: 'vs tfjs' });
    });

    it(`${divergence}: stopGrad ${divergence === 'reverseKL' ? 'also matches' : 'is biased by exactly E[u f\'(u) grad log pS]'}`, () => {
      const pg = expectedPg(divergence, 'stopGrad');
      const gradDf = c14.gradDf[divergence];
      expectAllclose(pg, c14.gradStopGrad[divergence], { rtol: 1e-4, atol: 1e-6, label: 'vs torch stopGrad' });
      // bias_c = sum_y pS(y) u_y f'(u_y) (onehot_y - pS)
      const bias = new Float64Array(C * v);
      for (let c = 0; c < C; c++) {
        for (let y = 0; y < v; y++) {
          const p = Math.exp(logpS[c * v + y]);
          const k = p * uFprime[divergence](Math.exp(logpT[c * v + y] - logpS[c * v + y]));
          for (let j = 0; j < v; j++) bias[c * v + j] += k * ((j === y ? 1 : 0) - Math.exp(logpS[c * v + j]));
        }
      }
      expectAllclose(pg, Array.from(gradDf, (g, i) => g + bias[i]), { rtol: 1e-4, atol: 1e-6, label: 'grad D_f + bias' });
      const biasNorm = Math.hypot(...bias);
      if (divergence === 'reverseKL') {
        expect(biasNorm).toBeLessThan(1e-12);
        expectAllclose(pg, gradDf, { rtol: 1e-4, atol: 1e-6 });
      } else {
        expect(biasNorm / Math.hypot(...gradDf)).toBeGreaterThan(0.05);
        expect(() => expectAllclose(pg, gradDf, { rtol: 1e-2, atol: 1e-3 })).toThrow();
      }
    });
  }
});

interface OpdPlusCase {
  name: string;
  N: number;
  V: number;
  divergence: FDivergenceName;
  weight: 'unbiased' | 'stopGrad';
  clampLogU: number;
  reduction: Reduction;
  logits: number[];
  teacherLogits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  teacherSampled: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
}

describe('opdplus: PyTorch float64 fixtures (test/fixtures/gen_opdplus.py)', () => {
  const doc = loadFixture<OpdPlusCase>('opdplus');
  for (const c of doc.cases) {
    for (const form of ['full', 'topk'] as const) {
      it(`${c.name} (${form} teacher)`, () => {
        const z = tf.tensor2d(c.logits, [c.N, c.V]);
        const t = tf.tensor2d(c.teacherLogits, [c.N, c.V]);
        const batch: DistillBatch = {
          studentLogits_NV: z,
          tokens_N: Int32Array.from(c.tokens),
          mask_N: Float32Array.from(c.mask),
          seqIds_N: Int32Array.from(c.seqIds),
          teacher: form === 'full' ? { logits_NV: t } : sampledTeacher(c.teacherSampled),
        };
        const out = run('opdplus', batch, { divergence: c.divergence, weight: c.weight, clampLogU: c.clampLogU }, c.reduction);
        // float32 vs float64; measured worst |ts - torch| / (|torch| + 1e-3): 1.1e-5 on ordinary logits (jsd's
        // -f(u) is O((u - 1)^2) near u = 1, a float32 cancellation in f), 5.2e-4 with +-1e4 logits: log-probs near
        // -1e4 have a float32 resolution of ~1e-3, and log u is a difference of two of them (inherent to float32
        // inputs; the top-K form's float32 sampled log-probs have the same resolution).
        const tol = c.name.startsWith('extreme') ? { rtol: 1e-3, atol: 1e-6 } : { rtol: 2e-5, atol: 1e-6 };
        expectAllclose([out.loss], [c.loss], { ...tol, label: 'loss' });
        expectAllclose(out.perToken_N, c.perToken, { ...tol, label: 'perToken' });
        expectAllclose(out.grad, c.grad, { ...tol, label: 'grad' });
        for (const key of Object.keys(c.metrics)) expectAllclose([out.metrics[key]], [c.metrics[key]], { ...tol, label: key });
        tf.dispose([z, t]);
      });
    }
  }
});

describe('opdplus: memory and errors', () => {
  const N = 6;
  const V = 5;
  const make = (): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(randn(N * V, 401), [N, V]),
    tokens_N: randInts(N, V, 402),
    mask_N: new Float32Array([0, 1, 1, 1, 1, 1]),
    teacher: { logits_NV: tf.tensor2d(randn(N * V, 403), [N, V]) },
  });
  const free = (b: DistillBatch) => tf.dispose([b.studentLogits_NV, (b.teacher as { logits_NV: tf.Tensor }).logits_NV]);

  it('does not leak tensors (loss and loss + gradient)', () => {
    const batch = make();
    expectNoLeak(() => computeObjective('opdplus', batch, { divergence: 'jsd' }).loss.dispose());
    expectNoLeak(() => objectiveLossAndGrad('opdplus', batch, { weight: 'stopGrad' }).grad_NV.dispose());
    free(batch);
  });

  it('rejects bad input with a clear message', () => {
    const batch = make();
    expect(() => computeObjective('opdplus', batch, { divergence: 'kl' })).toThrow(
      /opdplus: option divergence must be one of reverseKL, forwardKL, jsd, totalVariation, chiSquared, hellinger, got 'kl'/,
    );
    expect(() => computeObjective('opdplus', batch, { weight: 'biased' })).toThrow(/opdplus: option weight must be one of unbiased, stopGrad/);
    for (const clampLogU of [-1, NaN, Infinity]) {
      expect(() => computeObjective('opdplus', batch, { clampLogU })).toThrow(/opdplus: option clampLogU must be a finite number >= 0/);
    }
    expect(() => computeObjective('opdplus', { ...batch, teacher: undefined })).toThrow(/opdplus: batch.teacher is required/);
    free(batch);
  });

  it('an overflowing unclamped advantage is an error naming clampLogU, not a silent Infinity', () => {
    const z = tf.tensor2d([[0, 1e4]]);
    const batch: DistillBatch = { studentLogits_NV: z, tokens_N: new Int32Array([0]), mask_N: new Float32Array([1]), teacher: sampledTeacher([0]) };
    expect(() => computeObjective('opdplus', batch, { divergence: 'forwardKL', clampLogU: 0 })).toThrow(/not finite at token 0.*clampLogU > 0/);
    const clamped = computeObjective('opdplus', batch, { divergence: 'forwardKL' });
    expect(clamped.metrics['clip/fraction']).toBe(1);
    expect(Number.isFinite(clamped.loss.dataSync()[0])).toBe(true);
    clamped.loss.dispose();
    z.dispose();
  });
});
