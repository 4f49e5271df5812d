import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/gopd';
import { SCOPE_DEFAULTS } from '../../lib/objectives/scope';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction, TeacherTopK } from '../../lib/objectives/types';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn, sampledTeacher } from '../helpers';
import { rowLogSoftmax64 } from '../../lib/analysis/values';

function run(name: string, batch: DistillBatch, options: Record<string, unknown>, reduction: Reduction = 'sum') {
  const out = objectiveLossAndGrad(name, batch, options, reduction);
  const grad = Array.from(out.grad_NV.dataSync());
  out.grad_NV.dispose();
  return { ...out, grad };
}

describe('scope: hand-checkable', () => {
  // V = 2, one loss token per sequence (sequence 0 also has a masked prompt token with an absurd teacher log-prob
  // that must not enter its mean), sum reduction, tau = 1:
  //   seq 0 wrong,   group 0: logits [ln 3, 0], y = 0 -> log pS = ln 3/4;  log pT = ln 1/2
  //   seq 1 wrong,   group 0: logits [0, 0],    y = 0 -> log pS = ln 1/2;  log pT = ln 1/4
  //   seq 2 correct, group 0: logits [0, 0],    y = 0 -> log pS = ln 1/2
  //   seq 3 correct, group 0: logits [ln 3, 0], y = 0 -> log pS = ln 3/4
  //   seq 4 correct, group 1 (alone): logits [0, 0], y = 1 -> log pS = ln 1/2, weight 1
  // w^tea = softmax(ln 1/2, ln 1/4) = (2/3, 1/3): the higher teacher perplexity gets less.
  // w^stu paper = softmax(-ln 1/2, -ln 3/4) = (2, 4/3) / (10/3) = (0.6, 0.4): the higher student perplexity gets more.
  // w^stu code  = softmax(ln 1/2, ln 3/4) = (0.4, 0.6).
  //   l0 = 2/3 (-ln(2/3) ln(3/4)) = -0.077763,  l1 = 1/3 (-(ln 1/4 - ln 1/2) ln 1/2) = -(ln 2)^2 / 3 = -0.160151
  //   l2 = 0.6 ln 2 = 0.415888,  l3 = 0.4 (-ln 3/4) = 0.115073,  l4 = ln 2 = 0.693147
  //   d l0 / dz = -(2/3 ln(2/3)) (onehot - (3/4, 1/4)) = (0.067578, -0.067578); d l2 / dz = -0.6 (1/2, -1/2)
  const z = [[0, 0], [Math.log(3), 0], [0, 0], [0, 0], [Math.log(3), 0], [0, 0]];
  const make = (): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(z),
    tokens_N: new Int32Array([1, 0, 0, 0, 0, 1]),
    mask_N: new Float32Array([0, 1, 1, 1, 1, 1]),
    seqIds_N: new Int32Array([0, 0, 1, 2, 3, 4]),
    reward_S: new Float32Array([0, 0, 1, 1, 1]),
    group_S: new Int32Array([0, 0, 0, 0, 1]),
    teacher: sampledTeacher([-30, Math.log(0.5), Math.log(0.25), -1, -1, -1]),
  });

  it("paper direction, weights summing to 1", () => {
    const b = make();
    const out = run('scope', b, {});
    expectAllclose(out.perToken_N, [0, -0.077763, -0.160151, 0.415888, 0.115073, 0.693147], { atol: 2e-6 });
    expectAllclose([out.loss], [0.986194], { atol: 4e-6 });
    expectAllclose(out.grad.slice(2, 4), [0.067578, -0.067578], { atol: 2e-6 });
    expectAllclose(out.grad.slice(6, 8), [-0.3, 0.3], { atol: 2e-6 });
    expectAllclose(out.grad.slice(10, 12), [0.5, -0.5], { atol: 2e-6 });
    expectAllclose(out.grad.slice(0, 2), [0, 0]);
    const m = out.metrics;
    expectAllclose(
      [m['scope/correct_share'], m['scope/w_tea_max'], m['scope/w_stu_max'], m['loss/teacher_path'], m['loss/student_path']],
      [0.6, 2 / 3, 1, -0.237914, 1.224108],
      { atol: 4e-6 },
    );
    b.studentLogits_NV.dispose();
  });

  it("code direction swaps the two student weights: l2 = 0.4 ln 2, l3 = 0.6 (-ln 3/4)", () => {
    const b = make();
    const out = run('scope', b, { studentWeightDirection: 'code' });
    expectAllclose(out.perToken_N, [0, -0.077763, -0.160151, 0.277259, 0.172609, 0.693147], { atol: 2e-6 });
    b.studentLogits_NV.dispose();
  });

  it("weightNorm 'mean' multiplies each subset's weights by its size (the singleton stays 1)", () => {
    const b = make();
    const out = run('scope', b, { weightNorm: 'mean' });
    expectAllclose(out.perToken_N, [0, -0.155527, -0.320302, 0.831777, 0.230146, 0.693147], { atol: 2e-6 });
    expect(out.metrics['scope/w_tea_max']).toBeCloseTo(4 / 3, 6);
    b.studentLogits_NV.dispose();
  });

  it('defaults: tau 1, paper direction, weights summing to 1', () => {
    expect(SCOPE_DEFAULTS).toEqual({ tau: 1, studentWeightDirection: 'paper', weightNorm: 'sum' });
  });
});

describe('scope: identities', () => {
  // 6 sequences of 3 tokens (first token a prompt token), V = 5
  const S = 6;
  const L = 3;
  const N = S * L;
  const V = 5;
  const zData = randn(N * V, 501, 1.5);
  const tData = randn(N * V, 502, 1.5);
  const tokens_N = randInts(N, V, 503);
  const seqIds_N = Int32Array.from({ length: N }, (_, i) => Math.floor(i / L));
  const mask_N = Float32Array.from({ length: N }, (_, i) => (i % L === 0 ? 0 : 1));
  const logpS = rowLogSoftmax64(zData, N, V);
  const logpT = rowLogSoftmax64(tData, N, V);
  const make = (reward: number[], group: number[], extra: Partial<DistillBatch> = {}): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(zData, [N, V]),
    tokens_N,
    mask_N,
    seqIds_N,
    reward_S: Float32Array.from(reward),
    group_S: Int32Array.from(group),
    teacher: { logits_NV: tf.tensor2d(tData, [N, V]) },
    ...extra,
  });
  const lpS = (i: number) => logpS[i * V + tokens_N[i]];
  const lpT = (i: number) => logpT[i * V + tokens_N[i]];
  /** Per-sequence weight read back from the per-token loss of a correct sequence: l = -w log pS. */
  const studentWeight = (perToken: ArrayLike<number>, s: number) => -perToken[s * L + 1] / lpS(s * L + 1);
  const meanLogpS = (s: number) => (lpS(s * L + 1) + lpS(s * L + 2)) / 2;

  it('single-member subsets get weight 1: wrong = OPD (gopd lambda = 1), correct = NLL -log pS', () => {
    const reward = [0, 1, 0, 1, 0.5, -1];
    for (const weightNorm of ['sum', 'mean']) {
      const out = run('scope', make(reward, [0, 1, 2, 3, 4, 5]), { weightNorm });
      const opd = run('gopd', make(reward, [0, 1, 2, 3, 4, 5]), { lambda: 1 });
      for (let i = 0; i < N; i++) {
        const correct = reward[seqIds_N[i]] > 0;
        const expected = mask_N[i] * (correct ? -lpS(i) : opd.perToken_N[i]);
        expectAllclose([out.perToken_N[i]], [expected], { rtol: 1e-5, atol: 1e-6, label: `token ${i}` });
      }
      expect(out.metrics['scope/w_tea_max']).toBeCloseTo(1, 6);
      expect(out.metrics['scope/w_stu_max']).toBeCloseTo(1, 6);
    }
  });

  it('paper weights follow PPL_S^(1/tau); the code direction reverses the order', () => {
    const reward = [1, 1, 1, 1, 0, 0];
    const group = [0, 0, 0, 0, 1, 1];
    for (const tau of [0.5, 1, 2]) {
      const paper = computeObjective('scope', make(reward, group), { tau });
      const code = computeObjective('scope', make(reward, group), { tau, studentWeightDirection: 'code' });
      const wp = [0, 1, 2, 3].map((s) => studentWeight(paper.perToken_N, s));
      const wc = [0, 1, 2, 3].map((s) => studentWeight(code.perToken_N, s));
      // w_i / w_j = exp(-(m_i - m_j) / tau) (paper) and exp(+(m_i - m_j) / tau) (code), m = mean log pS
      for (const [i, j] of [[0, 1], [1, 2], [2, 3], [0, 3]]) {
        expectAllclose([wp[i] / wp[j]], [Math.exp(-(meanLogpS(i) - meanLogpS(j)) / tau)], { rtol: 1e-4 });
        expectAllclose([wc[i] / wc[j]], [Math.exp((meanLogpS(i) - meanLogpS(j)) / tau)], { rtol: 1e-4 });
      }
      expectAllclose([wp.reduce((a, b) => a + b), wc.reduce((a, b) => a + b)], [1, 1], { rtol: 1e-5 });
      const rank = (w: number[]) => [0, 1, 2, 3].sort((a, b) => w[b] - w[a]);
      expect(rank(wc)).toEqual(rank(wp).reverse());
      tf.dispose([paper.loss, code.loss]);
    }
  });

  it('teacher weights follow PPL_T^(-1/tau): the higher teacher perplexity is down-weighted', () => {
    const out = computeObjective('scope', make([0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]), { tau: 0.7 });
    const meanLogpT = (s: number) => (lpT(s * L + 1) + lpT(s * L + 2)) / 2;
    // read w^tea back from l = -w A log pS with A = log pT - log pS
    const w = [0, 1].map((s) => -out.perToken_N[s * L + 1] / ((lpT(s * L + 1) - lpS(s * L + 1)) * lpS(s * L + 1)));
    expectAllclose(w, [0, 1].map((s) => Math.exp(meanLogpT(s) / 0.7) / (Math.exp(meanLogpT(0) / 0.7) + Math.exp(meanLogpT(1) / 0.7))), { rtol: 1e-4 });
    out.loss.dispose();
  });

  it("'mean' = 'sum' times the subset size; the path losses add up to the loss", () => {
    const reward = [1, 0, 1, 0, 1, 1];
    const group = [0, 0, 0, 0, 0, 1]; // subsets: correct {0, 2, 4}, wrong {1, 3}, correct {5}
    const size = [3, 2, 3, 2, 3, 1];
    const sum = run('scope', make(reward, group), {}, 'token-mean');
    const mean = run('scope', make(reward, group), { weightNorm: 'mean' }, 'token-mean');
    expectAllclose(mean.perToken_N, Array.from(sum.perToken_N, (l, i) => l * size[seqIds_N[i]]), { rtol: 1e-5, atol: 1e-7 });
    for (const out of [sum, mean]) {
      expectAllclose([out.metrics['loss/teacher_path'] + out.metrics['loss/student_path']], [out.loss], { rtol: 1e-5, atol: 1e-7 });
    }
  });

  it('tau -> infinity gives uniform weights, tau -> 0 puts all weight on the extreme member', () => {
    const reward = [1, 1, 1, 1, 0, 0];
    const group = [0, 0, 0, 0, 1, 1];
    const flat = computeObjective('scope', make(reward, group), { tau: 1e6 });
    expectAllclose([0, 1, 2, 3].map((s) => studentWeight(flat.perToken_N, s)), [0.25, 0.25, 0.25, 0.25], { rtol: 1e-4 });
    const sharp = computeObjective('scope', make(reward, group), { tau: 1e-4 });
    const lowest = [0, 1, 2, 3].reduce((a, b) => (meanLogpS(b) < meanLogpS(a) ? b : a)); // highest student PPL
    expectAllclose([0, 1, 2, 3].map((s) => studentWeight(sharp.perToken_N, s)), [0, 1, 2, 3].map((s) => (s === lowest ? 1 : 0)), { atol: 1e-6 });
    tf.dispose([flat.loss, sharp.loss]);
  });

  it('masked tokens do not enter the weights; a fully masked sequence takes no part in the softmax', () => {
    const reward = [0, 0, 0, 1, 1, 1];
    const group = [0, 0, 0, 0, 0, 0];
    const base = run('scope', make(reward, group), {});
    // change the teacher and the student at the masked prompt tokens only
    const z2 = Float32Array.from(zData);
    const t2 = Float32Array.from(tData);
    for (let s = 0; s < S; s++) for (let j = 0; j < V; j++) {
      z2[s * L * V + j] += 3 * (j - 2);
      t2[s * L * V + j] -= 2 * j;
    }
    const moved = run('scope', make(reward, group, { studentLogits_NV: tf.tensor2d(z2, [N, V]), teacher: { logits_NV: tf.tensor2d(t2, [N, V]) } }), {});
    expectAllclose(moved.perToken_N, base.perToken_N, { rtol: 1e-6, atol: 1e-7 });
    // sequence 2 fully masked: the wrong subset is then {0, 1} only, exactly as if sequence 2 were absent
    const m2 = Float32Array.from(mask_N, (m, i) => (seqIds_N[i] === 2 ? 0 : m));
    const gone = run('scope', make(reward, group, { mask_N: m2 }), {});
    const pair = run('scope', make([0, 0, 1, 1, 1, 1], [0, 0, 7, 0, 0, 0], { mask_N: m2 }), {}); // seq 2 moved away
    expectAllclose(gone.perToken_N, pair.perToken_N, { rtol: 1e-6, atol: 1e-7 });
    expect(gone.metrics['scope/correct_share']).toBeCloseTo(3 / 5, 6);
  });

  it('an all-zero mask gives loss 0, gradient 0 and zero metrics', () => {
    for (const reduction of ['token-mean', 'seq-mean-token-mean', 'sum'] as Reduction[]) {
      const out = run('scope', make([1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1], { mask_N: new Float32Array(N) }), {}, reduction);
      expect(out.loss).toBe(0);
      expect(out.grad.every((g) => g === 0)).toBe(true);
      expect(Object.values(out.metrics).every((x) => x === 0)).toBe(true);
    }
  });
});

interface ScopeCase {
  name: string;
  N: number;
  V: number;
  tau: number;
  studentWeightDirection: 'paper' | 'code';
  weightNorm: 'sum' | 'mean';
  reduction: Reduction;
  logits: number[];
  teacherLogits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  reward: number[];
  group: number[];
  teacherSampled: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
}

describe('scope: PyTorch float64 fixtures (test/fixtures/gen_scope.py)', () => {
  const doc = loadFixture<ScopeCase>('scope');
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
          reward_S: Float32Array.from(c.reward),
          group_S: Int32Array.from(c.group),
          teacher: form === 'full' ? { logits_NV: t } : sampledTeacher(c.teacherSampled),
        };
        const options = { tau: c.tau, studentWeightDirection: c.studentWeightDirection, weightNorm: c.weightNorm };
        const out = run('scope', batch, options, c.reduction);
        // float32 vs float64; measured worst |ts - torch| / (|torch| + 1e-3) over all cases: 9.7e-7
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

describe('scope: memory and errors', () => {
  const N = 8;
  const V = 5;
  const make = (): DistillBatch => ({
    studentLogits_NV: tf.tensor2d(randn(N * V, 601), [N, V]),
    tokens_N: randInts(N, V, 602),
    mask_N: new Float32Array([0, 1, 1, 1, 0, 1, 1, 1]),
    seqIds_N: new Int32Array([0, 0, 0, 0, 1, 1, 1, 1]),
    reward_S: new Float32Array([1, 0]),
    group_S: new Int32Array([0, 0]),
    teacher: { logits_NV: tf.tensor2d(randn(N * V, 603), [N, V]) },
  });
  const free = (b: DistillBatch) => tf.dispose([b.studentLogits_NV, (b.teacher as { logits_NV: tf.Tensor }).logits_NV]);

  it('does not leak tensors (loss and loss + gradient)', () => {
    const batch = make();
    expectNoLeak(() => computeObjective('scope', batch, {}).loss.dispose());
    expectNoLeak(() => objectiveLossAndGrad('scope', batch, { weightNorm: 'mean' }, 'sum').grad_NV.dispose());
    free(batch);
  });

  it('rejects bad input with a clear message', () => {
    const batch = make();
    expect(() => computeObjective('scope', { ...batch, reward_S: undefined })).toThrow(/scope: needs batch.reward_S \(one value per sequence\)/);
    expect(() => computeObjective('scope', { ...batch, group_S: undefined })).toThrow(/scope: needs batch.group_S/);
    expect(() => computeObjective('scope', { ...batch, seqIds_N: undefined })).toThrow(/scope: needs batch.seqIds_N/);
    expect(() => computeObjective('scope', { ...batch, reward_S: new Float32Array([1]) })).toThrow(/batch.reward_S must have one entry per sequence \(2\)/);
    for (const tau of [0, -1, NaN, Infinity]) {
      expect(() => computeObjective('scope', batch, { tau })).toThrow(/scope: option tau must be a finite number > 0/);
    }
    expect(() => computeObjective('scope', batch, { studentWeightDirection: 'up' })).toThrow(/scope: option studentWeightDirection must be one of paper, code/);
    expect(() => computeObjective('scope', batch, { weightNorm: 'max' })).toThrow(/scope: option weightNorm must be one of sum, mean/);
    expect(() => computeObjective('scope', { ...batch, teacher: undefined })).toThrow(/scope: batch.teacher is required/);
    free(batch);
  });
});
