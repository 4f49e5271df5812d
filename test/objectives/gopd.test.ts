import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { GOPD_DEFAULTS } from '../../lib/objectives/gopd';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction, TeacherTopK } from '../../lib/objectives/types';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn, sampledTeacher } from '../helpers';
import { rowLogSoftmax64 } from '../../lib/analysis/values';

function run(batch: DistillBatch, options: Record<string, unknown>, reduction: Reduction = 'token-mean') {
  const out = objectiveLossAndGrad('gopd', batch, options, reduction);
  const grad = Array.from(out.grad_NV.dataSync());
  out.grad_NV.dispose();
  return { ...out, grad };
}

describe('gopd: hand-checkable', () => {
  // logits [0, 0] -> pS = (1/2, 1/2), y = 0, log pS = -ln 2; log pT = -0.5, log pRef = -1, lambda = 2:
  //   A = 2(-0.5) + (1 - 2)(-1) - (-ln 2) = ln 2,  l = -A log pS = (ln 2)^2 = 0.480453
  //   dl/dz = -A (onehot - pS) = -ln 2 * (1/2, -1/2) = (-0.346574, 0.346574)
  // A second token (masked out) must contribute nothing.
  it('lambda = 2 on one token', () => {
    const z = tf.tensor2d([[0, 0], [3, -1]]);
    const batch: DistillBatch = {
      studentLogits_NV: z,
      tokens_N: new Int32Array([0, 1]),
      mask_N: new Float32Array([1, 0]),
      teacher: sampledTeacher([-0.5, -7]),
      refLogprobs_N: new Float32Array([-1, -9]),
    };
    const out = run(batch, { lambda: 2 }, 'token-mean');
    expectAllclose([out.loss], [0.480453], { atol: 1e-6 });
    expectAllclose(out.perToken_N, [0.480453, 0], { atol: 1e-6 });
    expectAllclose(out.grad, [-0.346574, 0.346574, 0, 0], { atol: 1e-6 });
    expectAllclose([out.metrics['adv/mean'], out.metrics['adv/neg_share'], out.metrics['reward/teacher_ref']], [0.693147, 0, 0.5], { atol: 1e-6 });
    z.dispose();
  });
  // lambda = 1 (OPD): A = -0.5 + ln 2 = 0.193147, l = 0.193147 * ln 2 = 0.133879; no reference needed
  it('lambda = 1 needs no reference', () => {
    const z = tf.tensor2d([[0, 0]]);
    const batch: DistillBatch = { studentLogits_NV: z, tokens_N: new Int32Array([0]), mask_N: new Float32Array([1]), teacher: sampledTeacher([-0.5]) };
    const out = run(batch, { lambda: 1 }, 'sum');
    expectAllclose([out.loss], [0.133879], { atol: 1e-6 });
    expectAllclose(out.grad, [-0.0965736, 0.0965736], { atol: 1e-6 });
    expect(out.metrics['reward/teacher_ref']).toBeUndefined();
    z.dispose();
  });
  it('defaults to the ExOPD recipe lambda = 1.25', () => {
    expect(GOPD_DEFAULTS.lambda).toBe(1.25);
  });
});

describe('gopd: identities', () => {
  const N = 9;
  const V = 6;
  const zData = randn(N * V, 101, 2);
  const tData = randn(N * V, 102, 2);
  const tokens_N = randInts(N, V, 103);
  const mask_N = new Float32Array([0, 1, 1, 1, 0, 1, 1, 1, 1]);
  const ref_N = Float32Array.from(randn(N, 104), (x) => -Math.abs(x) * 2);
  const logpS = rowLogSoftmax64(zData, N, V);
  const logpT = rowLogSoftmax64(tData, N, V);
  const make = (extra: Partial<DistillBatch> = {}): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(zData, [N, V]),
    tokens_N,
    mask_N,
    teacher: { logits_NV: tf.tensor2d(tData, [N, V]) },
    refLogprobs_N: ref_N,
    ...extra,
  });

  it('lambda = 1 is OPD: l = -(log pT - log pS) log pS, with or without a reference', () => {
    const expected = new Float64Array(N);
    const gradExpected = new Float64Array(N * V);
    let count = 0;
    for (let i = 0; i < N; i++) count += mask_N[i];
    for (let i = 0; i < N; i++) {
      const y = tokens_N[i];
      const a = logpT[i * V + y] - logpS[i * V + y];
      expected[i] = mask_N[i] * -a * logpS[i * V + y];
      for (let j = 0; j < V; j++) gradExpected[i * V + j] = (mask_N[i] / count) * -a * ((j === y ? 1 : 0) - Math.exp(logpS[i * V + j]));
    }
    const withRef = run(make(), { lambda: 1 });
    const noRef = run(make({ refLogprobs_N: undefined }), { lambda: 1 });
    expectAllclose(withRef.perToken_N, expected, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(withRef.grad, gradExpected, { rtol: 1e-5, atol: 1e-7 });
    expect(Array.from(noRef.perToken_N)).toEqual(Array.from(withRef.perToken_N));
    expect(noRef.grad).toEqual(withRef.grad);
  });

  it('lambda = 0 distils the reference: equals lambda = 1 with the reference as the teacher', () => {
    const zero = run(make(), { lambda: 0 });
    const refAsTeacher = run(make({ teacher: sampledTeacher(ref_N) }), { lambda: 1 });
    expectAllclose(zero.perToken_N, refAsTeacher.perToken_N, { rtol: 1e-6, atol: 1e-7 });
    expectAllclose(zero.grad, refAsTeacher.grad, { rtol: 1e-6, atol: 1e-8 });
    expectAllclose([zero.loss], [refAsTeacher.loss], { rtol: 1e-6 });
  });

  it('is affine in lambda: l(2.5) = l(0) + 2.5 (l(1) - l(0)), for loss, per-token and gradient', () => {
    const l0 = run(make(), { lambda: 0 });
    const l1 = run(make(), { lambda: 1 });
    const l25 = run(make(), { lambda: 2.5 });
    const aff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (x, i) => x + 2.5 * (b[i] - x));
    expectAllclose(l25.perToken_N, aff(l0.perToken_N, l1.perToken_N), { rtol: 1e-5, atol: 1e-5 });
    expectAllclose(l25.grad, aff(l0.grad, l1.grad), { rtol: 1e-5, atol: 1e-6 });
    expectAllclose([l25.loss], aff([l0.loss], [l1.loss]), { rtol: 1e-5 });
    expectAllclose([l25.metrics['adv/mean']], aff([l0.metrics['adv/mean']], [l1.metrics['adv/mean']]), { rtol: 1e-5 });
  });

  it('full teacher logits and a top-K dump give the same numbers', () => {
    const lpT_N = new Float32Array(N);
    for (let i = 0; i < N; i++) lpT_N[i] = logpT[i * V + tokens_N[i]];
    const full = run(make(), { lambda: 1.25 });
    const dump = run(make({ teacher: sampledTeacher(lpT_N) }), { lambda: 1.25 });
    expectAllclose(dump.perToken_N, full.perToken_N, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(dump.grad, full.grad, { rtol: 1e-5, atol: 1e-7 });
  });

  // With every token y of one context enumerated (one row each, same logits), sum_y pS(y) grad l(y) is the exact
  // expected gradient; it must equal grad_z sum_v pS(v) [log pS(v) - lambda log pT(v) - (1 - lambda) log pRef(v)],
  // i.e. the reverse KL to the unnormalised target pT^lambda pRef^(1 - lambda) (methods.md section 4's optimum).
  it('the expected gradient is the gradient of KL(pS || pT^lambda pRef^(1-lambda))', () => {
    const v = 5;
    const zRow = randn(v, 111, 1);
    const lpT = rowLogSoftmax64(randn(v, 112, 1), 1, v);
    const lpR = rowLogSoftmax64(randn(v, 113, 1), 1, v);
    const lambda = 1.7;
    const zAll = new Float32Array(v * v);
    for (let y = 0; y < v; y++) zAll.set(zRow, y * v);
    const batch: DistillBatch = {
      studentLogits_NV: tf.tensor2d(zAll, [v, v]),
      tokens_N: Int32Array.from({ length: v }, (_, y) => y),
      mask_N: new Float32Array(v).fill(1),
      teacher: sampledTeacher(lpT),
      refLogprobs_N: Float32Array.from(lpR),
    };
    const out = run(batch, { lambda }, 'sum');
    const pS = rowLogSoftmax64(zRow, 1, v).map(Math.exp);
    const expectedPg = new Float64Array(v);
    for (let y = 0; y < v; y++) for (let j = 0; j < v; j++) expectedPg[j] += pS[y] * out.grad[y * v + j];
    const target = tf.tensor1d(Array.from(lpT, (t, j) => lambda * t + (1 - lambda) * lpR[j]));
    const exact = tf.grad((z: tf.Tensor) => {
      const lp = tf.logSoftmax(z);
      return tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, target)));
    })(tf.tensor1d(zRow));
    expectAllclose(expectedPg, exact.dataSync(), { rtol: 1e-4, atol: 1e-6 });
    expect(Math.max(...Array.from(exact.dataSync(), Math.abs))).toBeGreaterThan(1e-2);
    tf.dispose([target, exact, batch.studentLogits_NV]);
  });

  it('an all-zero mask gives loss 0 and gradient 0', () => {
    for (const reduction of ['token-mean', 'seq-mean-token-mean', 'sum'] as Reduction[]) {
      const out = run(make({ mask_N: new Float32Array(N), seqIds_N: new Int32Array(N) }), {}, reduction);
      expect(out.loss).toBe(0);
      expect(out.grad.every((g) => g === 0)).toBe(true);
      expect(Array.from(out.perToken_N).every((x) => x === 0)).toBe(true);
    }
  });
});

interface GopdCase {
  name: string;
  N: number;
  V: number;
  lambda: number;
  reduction: Reduction;
  logits: number[];
  teacherLogits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  refLogprobs: number[];
  teacherSampled: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
}

describe('gopd: PyTorch float64 fixtures (test/fixtures/gen_gopd.py)', () => {
  const doc = loadFixture<GopdCase>('gopd');
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
          refLogprobs_N: Float32Array.from(c.refLogprobs),
          teacher: form === 'full' ? { logits_NV: t } : sampledTeacher(c.teacherSampled),
        };
        const out = run(batch, { lambda: c.lambda }, c.reduction);
        // float32 vs float64. Measured worst |ts - torch| / (|torch| + 1e-3) over all cases: 1.5e-6 (the +-1e4
        // logits included: per-token losses up to 2e8 agree to 1.5e-7 relative).
        const tol = { rtol: 1e-5, atol: 1e-7 };
        expectAllclose([out.loss], [c.loss], { ...tol, label: 'loss' });
        expectAllclose(out.perToken_N, c.perToken, { ...tol, label: 'perToken' });
        expectAllclose(out.grad, c.grad, { ...tol, label: 'grad' });
        for (const key of Object.keys(c.metrics)) expectAllclose([out.metrics[key]], [c.metrics[key]], { ...tol, label: key });
        tf.dispose([z, t]);
      });
    }
  }
});

describe('gopd: memory and errors', () => {
  const N = 6;
  const V = 5;
  const make = (): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(randn(N * V, 201), [N, V]),
    tokens_N: randInts(N, V, 202),
    mask_N: new Float32Array([0, 1, 1, 1, 1, 1]),
    teacher: { logits_NV: tf.tensor2d(randn(N * V, 203), [N, V]) },
    refLogprobs_N: new Float32Array(N).fill(-1.5),
  });

  it('does not leak tensors (loss and loss + gradient)', () => {
    const batch = make();
    expectNoLeak(() => computeObjective('gopd', batch, {}).loss.dispose());
    expectNoLeak(() => objectiveLossAndGrad('gopd', batch, { lambda: 1 }).grad_NV.dispose());
    tf.dispose([batch.studentLogits_NV, (batch.teacher as { logits_NV: tf.Tensor }).logits_NV]);
  });

  it('rejects bad input with a clear message', () => {
    const batch = make();
    expect(() => computeObjective('gopd', { ...batch, refLogprobs_N: undefined })).toThrow(/gopd: lambda = 1.25 needs batch.refLogprobs_N/);
    expect(() => computeObjective('gopd', { ...batch, refLogprobs_N: undefined }, { lambda: 0 })).toThrow(/refLogprobs_N/);
    for (const lambda of [-0.1, NaN, Infinity, '2']) {
      expect(() => computeObjective('gopd', batch, { lambda })).toThrow(/gopd: option lambda must be a finite number >= 0/);
    }
    expect(() => computeObjective('gopd', { ...batch, teacher: undefined })).toThrow(/gopd: batch.teacher is required/);
    expect(() => computeObjective('gopd', { ...batch, refLogprobs_N: new Float32Array(2) })).toThrow(/refLogprobs_N must have length 6/);
    expect(() => computeObjective('gopd', batch, { lamda: 1 })).toThrow(/unknown option 'lamda'/);
    tf.dispose([batch.studentLogits_NV, (batch.teacher as { logits_NV: tf.Tensor }).logits_NV]);
  });
});
