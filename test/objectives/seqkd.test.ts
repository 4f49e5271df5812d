/**
 * seqkd (lib/objectives/seqkd.ts): hand-checked values, identities, PyTorch fixtures (test/fixtures/gen_seqkd.py),
 * leaks and bad input. seqkd needs no teacher.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/seqkd';
import { computeObjective, getObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction } from '../../lib/objectives/types';
import { tokenLogprobs } from '../../lib/probs/gather';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn } from '../helpers';

function run(batch: DistillBatch, reduction: Reduction = 'token-mean') {
  const r = objectiveLossAndGrad('seqkd', batch, {}, reduction);
  const grad = Float32Array.from(r.grad_NV.dataSync());
  r.grad_NV.dispose();
  return { loss: r.loss, grad, perToken: r.perToken_N, metrics: r.metrics };
}

describe('seqkd: hand-checked values', () => {
  it('two tokens, no teacher in the batch', () => {
    // logits [0, 0, ln 2] -> pS = [1/4, 1/4, 1/2] in both rows; tokens 2 and 0: NLL = ln 2 and ln 4
    // token-mean loss = (ln 2 + ln 4) / 2 = 1.5 ln 2; grad = (pS - onehot) / 2; ppl = exp(1.5 ln 2) = 2^1.5
    const L2 = Math.log(2);
    const batch: DistillBatch = {
      studentLogits_NV: tf.tensor2d([0, 0, L2, 0, 0, L2], [2, 3]),
      tokens_N: new Int32Array([2, 0]),
      mask_N: new Float32Array([1, 1]),
    };
    const r = run(batch);
    expectAllclose([r.loss], [1.5 * L2], { rtol: 1e-6 });
    expectAllclose(r.perToken, [L2, 2 * L2], { rtol: 1e-6 });
    expectAllclose(r.grad, [0.125, 0.125, -0.25, -0.375, 0.125, 0.25], { rtol: 1e-5, atol: 1e-7 });
    expectAllclose([r.metrics['loss/nll'], r.metrics['ppl/student']], [1.5 * L2, Math.pow(2, 1.5)], { rtol: 1e-6 });
    // 'sum' adds the two NLLs; a masked token contributes nothing
    expectAllclose([run(batch, 'sum').loss], [3 * L2], { rtol: 1e-6 });
    const masked = run({ ...batch, mask_N: new Float32Array([1, 0]) });
    expectAllclose([masked.loss], [L2], { rtol: 1e-6 });
    expectAllclose(masked.perToken, [L2, 0]);
    expectAllclose(masked.grad, [0.25, 0.25, -0.5, 0, 0, 0], { rtol: 1e-5, atol: 1e-7 });
    batch.studentLogits_NV.dispose();
  });
});

describe('seqkd: identities', () => {
  const N = 7;
  const V = 9;
  it('per-token loss is -log pS(y_t) (lib/probs tokenLogprobs), with or without a teacher in the batch', () => {
    const z = tf.tensor2d(randn(N * V, 1, 3), [N, V]);
    const tokens = randInts(N, V, 2);
    const mask = new Float32Array([1, 1, 1, 0, 1, 1, 1]);
    const ref = tf.tidy(() => tf.neg(tokenLogprobs(tf.logSoftmax(z) as tf.Tensor2D, tokens)).dataSync());
    const teacherLogits = tf.tensor2d(randn(N * V, 3), [N, V]);
    for (const teacher of [undefined, { logits_NV: teacherLogits }]) {
      const r = run({ studentLogits_NV: z, tokens_N: tokens, mask_N: mask, teacher });
      expectAllclose(r.perToken, Float32Array.from(ref, (x, i) => x * mask[i]), { rtol: 1e-6, atol: 1e-6 });
    }
    tf.dispose([z, teacherLogits]);
  });
  it('the gradient of each row sums to zero and is pS - onehot(y) times the weight', () => {
    const z = tf.tensor2d(randn(N * V, 4, 2), [N, V]);
    const tokens = randInts(N, V, 5);
    const mask = new Float32Array(N).fill(1);
    const r = run({ studentLogits_NV: z, tokens_N: tokens, mask_N: mask }, 'sum');
    const p = tf.tidy(() => tf.softmax(z).dataSync());
    const want = Float32Array.from(p, (x, i) => x - (tokens[Math.floor(i / V)] === i % V ? 1 : 0));
    expectAllclose(r.grad, want, { rtol: 1e-5, atol: 1e-7 });
    z.dispose();
  });
  it('an all-zero mask gives loss 0, gradient 0 and ppl 1', () => {
    const z = tf.tensor2d(randn(N * V, 6, 2), [N, V]);
    const r = run({ studentLogits_NV: z, tokens_N: randInts(N, V, 7), mask_N: new Float32Array(N) });
    expect(r.loss).toBe(0);
    expect(r.grad.every((x) => x === 0)).toBe(true);
    expect(r.metrics['ppl/student']).toBe(1);
    z.dispose();
  });
  it('is registered without a fused kernel and as a direct loss', () => {
    const o = getObjective('seqkd');
    expect(o.fused).toBe(false);
    expect(o.needs).toEqual([]);
    expect(o.gradientOf).toBe('loss');
  });
});

interface SeqkdCase {
  name: string;
  N: number;
  V: number;
  reduction: Reduction;
  logits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
}

describe('seqkd: PyTorch float64 fixtures (test/fixtures/gen_seqkd.py)', () => {
  const fixture = loadFixture<SeqkdCase>('seqkd');
  for (const c of fixture.cases) {
    it(c.name, () => {
      const batch: DistillBatch = {
        studentLogits_NV: tf.tensor2d(Float32Array.from(c.logits), [c.N, c.V]),
        tokens_N: Int32Array.from(c.tokens),
        mask_N: Float32Array.from(c.mask),
        seqIds_N: Int32Array.from(c.seqIds),
      };
      const r = run(batch, c.reduction);
      // float32 path: rtol 1e-5; on +-1e4 logits the NLL is ~1e4 and float32 resolves it to ~1e-3
      const atol = c.name.includes('extreme') ? 2e-3 : 1e-6;
      expectAllclose([r.loss], [c.loss], { rtol: 1e-5, atol, label: 'loss' });
      expectAllclose(r.perToken, c.perToken, { rtol: 1e-5, atol, label: 'perToken' });
      expectAllclose(r.grad, c.grad, { rtol: 1e-5, atol: 1e-7, label: 'grad' });
      expectAllclose([r.metrics['loss/nll']], [c.metrics['loss/nll']], { rtol: 1e-5, atol, label: 'loss/nll' });
      expectAllclose([r.metrics['ppl/student']], [c.metrics['ppl/student']], { rtol: 1e-4, label: 'ppl/student' });
      batch.studentLogits_NV.dispose();
    });
  }
});

describe('seqkd: leaks and bad input', () => {
  it('leaks no tensor', () => {
    const z = tf.tensor2d(randn(5 * 8, 8), [5, 8]);
    const batch = { studentLogits_NV: z, tokens_N: randInts(5, 8, 9), mask_N: new Float32Array([0, 1, 1, 1, 1]), seqIds_N: new Int32Array([0, 0, 1, 1, 1]) };
    expectNoLeak(() => run(batch, 'seq-mean-token-mean'));
    expectNoLeak(() => computeObjective('seqkd', batch).loss.dispose());
    z.dispose();
  });
  it('rejects options, NaN logits and out-of-range tokens by name', () => {
    const x = randn(3 * 4, 10);
    const ok = { studentLogits_NV: tf.tensor2d(x, [3, 4]), tokens_N: new Int32Array([0, 1, 2]), mask_N: new Float32Array([1, 1, 1]) };
    expect(() => computeObjective('seqkd', ok, { fused: true })).toThrow(/seqkd: unknown option 'fused'/);
    expect(() => computeObjective('seqkd', { ...ok, tokens_N: new Int32Array([0, 4, 1]) })).toThrow(/batch.tokens_N must hold token ids in \[0, 4\), found 4 at index 1/);
    x[5] = NaN;
    const nan = { ...ok, studentLogits_NV: tf.tensor2d(x, [3, 4]) };
    expect(() => computeObjective('seqkd', nan)).toThrow(/seqkd: batch.studentLogits_NV must be finite, found NaN at row 1, column 1/);
    tf.dispose([ok.studentLogits_NV, nan.studentLogits_NV]);
  });
});
