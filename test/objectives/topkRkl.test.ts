/**
 * topk-rkl (lib/objectives/topkRkl.ts): hand-checked values, identities and limits (K = 1 is zero, K = V is the
 * full reverse KL), fused == composed, PyTorch fixtures (test/fixtures/gen_topk_rkl.py), leaks and bad input.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/topkRkl';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import { reductionWeights, type DistillBatch, type Reduction, type TeacherTopK } from '../../lib/objectives/types';
import { klStudentTeacher } from '../../lib/probs/divergences';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn } from '../helpers';
import { disposeBatch } from '../../lib/objectives/synthetic';

const N = 6;
const V = 11;
const MASK = new Float32Array([1, 1, 0, 1, 1, 1]);

interface Run {
  loss: number;
  grad: Float32Array;
  perToken: Float32Array;
  metrics: Record<string, number>;
}

function batchOf(student: ArrayLike<number>, teacher: ArrayLike<number>, rows: number, vocab: number, mask = MASK, tokens?: Int32Array): DistillBatch {
  return {
    studentLogits_NV: tf.tensor2d(Float32Array.from(student), [rows, vocab]),
    tokens_N: tokens ?? randInts(rows, vocab, 78),
    mask_N: mask,
    seqIds_N: Int32Array.from({ length: rows }, (_, i) => (i < rows / 2 ? 0 : 1)),
    teacher: { logits_NV: tf.tensor2d(Float32Array.from(teacher), [rows, vocab]) },
  };
}

function run(batch: DistillBatch, options: Record<string, unknown>, reduction: Reduction = 'token-mean'): Run {
  const r = objectiveLossAndGrad('topk-rkl', batch, options, reduction);
  const grad = Float32Array.from(r.grad_NV.dataSync());
  r.grad_NV.dispose();
  return { loss: r.loss, grad, perToken: r.perToken_N, metrics: r.metrics };
}

/** A top-K dump (temperature 1) of full teacher logits, each row listed in reversed (unsorted) order. */
function dumpOf(teacher: Float32Array, rows: number, vocab: number, k: number, tokens: Int32Array): TeacherTopK {
  const ids = new Int32Array(rows * k);
  const lp = new Float32Array(rows * k);
  const sampled = new Float32Array(rows);
  for (let n = 0; n < rows; n++) {
    const row = Array.from(teacher.slice(n * vocab, (n + 1) * vocab));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    const order = row.map((_, v) => v).sort((a, b) => row[b] - row[a] || a - b).slice(0, k).reverse();
    order.forEach((v, c) => {
      ids[n * k + c] = v;
      lp[n * k + c] = row[v] - lse;
    });
    sampled[n] = row[tokens[n]] - lse;
  }
  return { k, topkIds_NK: ids, topkLogprobs_NK: lp, sampledLogprobs_N: sampled };
}

function extreme(x: Float32Array, seed: number): Float32Array {
  const r = randn(x.length, seed);
  return Float32Array.from(x, (v, i) => (Math.abs(r[i]) > 1.15 ? (r[i] > 0 ? 1e4 : -1e4) : v));
}

const maxAbs = (xs: ArrayLike<number>) => Math.max(1e-2, ...Array.from(xs, Math.abs));

/** Fused vs composed; extreme (+-1e4) inputs at the float32 reference's resolution (see gkd.test.ts). */
function expectSame(a: Run, b: Run, label: string, extremeInputs = false): void {
  const rtol = extremeInputs ? 1e-3 : 1e-5;
  const atol = extremeInputs ? 2e-3 : 1e-6;
  expectAllclose([a.loss], [b.loss], { rtol, atol, label: `${label}: loss` });
  expectAllclose(a.perToken, b.perToken, { rtol, atol, label: `${label}: perToken` });
  expectAllclose(a.grad, b.grad, { rtol, atol: (extremeInputs ? 1e-3 : 1e-5) * maxAbs(b.grad), label: `${label}: grad` });
}

/** Full reverse KL(pS || pT) per token and its token-mean gradient, by tfjs autodiff (independent of the objective). */
function fullReverseKl(batch: DistillBatch, mask: Float32Array): { perToken: Float32Array; grad: Float32Array } {
  const w = tf.tensor1d(reductionWeights(mask, 'token-mean'));
  const logpT = tf.logSoftmax((batch.teacher as { logits_NV: tf.Tensor2D }).logits_NV) as tf.Tensor2D;
  const f = (z: tf.Tensor) => tf.sum(tf.mul(w, klStudentTeacher(logpT, tf.logSoftmax(z) as tf.Tensor2D)));
  const g = tf.grad(f)(batch.studentLogits_NV);
  const kl = klStudentTeacher(logpT, tf.logSoftmax(batch.studentLogits_NV) as tf.Tensor2D);
  const out = { perToken: Float32Array.from(kl.dataSync(), (x, i) => x * mask[i]), grad: Float32Array.from(g.dataSync()) };
  tf.dispose([w, logpT, g, kl]);
  return out;
}

describe('topk-rkl: hand-checked values (one token, V = 3)', () => {
  // teacher logits [ln 3, 0, -5]: top-2 = {0, 1}, pT^ = [3/4, 1/4]; student logits [0, 0, 7]: pS^ = [1/2, 1/2]
  const teacher = [Math.log(3), 0, -5];
  const student = [0, 0, 7];
  const one = new Float32Array([1]);
  for (const fused of [true, false]) {
    const tag = fused ? 'fused' : 'composed';
    it(`K = 2 (${tag})`, () => {
      // l = 1/2 ln(1/2 / 3/4) + 1/2 ln(1/2 / 1/4) = 1/2 ln(4/3); grad_v = pS^_v (ln(pS^_v / pT^_v) - l) on S, 0 off S
      const l = 0.5 * Math.log(4 / 3);
      const batch = batchOf(student, teacher, 1, 3, one, new Int32Array([0]));
      const r = run(batch, { topK: 2, fused });
      expectAllclose([r.loss], [l], { rtol: 1e-6 });
      expectAllclose(r.grad, [0.5 * (Math.log(2 / 3) - l), 0.5 * (Math.log(2) - l), 0], { rtol: 1e-5, atol: 1e-7 });
      expectAllclose([r.metrics['loss/topk_rkl']], [l], { rtol: 1e-6 });
      // masses on the support, full-vocabulary normalised: student 2 / (2 + e^7), teacher 4 / (4 + e^-5)
      expectAllclose([r.metrics['topk/student_mass'], r.metrics['topk/teacher_mass']], [2 / (2 + Math.exp(7)), 4 / (4 + Math.exp(-5))], { rtol: 1e-5 });
      // the student's own top-2 is {2, 0} (0 before 1 on the tie): one of two inside the teacher's top-2
      expect(r.metrics['topk/overlap']).toBe(0.5);
      expect(r.metrics['mask/special_dropped']).toBe(0);
      expect(r.metrics['clip/fraction']).toBeUndefined();
      disposeBatch(batch);
    });
    it(`K = 2, clipLogRatio 0.3 (${tag})`, () => {
      // log-ratios ln(2/3) = -0.405 and ln 2 = 0.693 both clamp to -0.3 / +0.3: l = 1/2 (-0.3) + 1/2 (0.3) = 0;
      // dF/dx^_c = pS^_c * clamp(d_c) (the clamp's own derivative is 0) = [-0.15, 0.15], sum 0 -> grad [-0.15, 0.15, 0]
      const batch = batchOf(student, teacher, 1, 3, one, new Int32Array([0]));
      const r = run(batch, { topK: 2, clipLogRatio: 0.3, fused });
      expectAllclose([r.loss], [0], { atol: 1e-7 });
      expectAllclose(r.grad, [-0.15, 0.15, 0], { rtol: 1e-5, atol: 1e-7 });
      expect(r.metrics['clip/fraction']).toBe(1);
      disposeBatch(batch);
    });
    it(`K = 2 with tail sampling of the missing token = the full reverse KL (${tag})`, () => {
      // y_t = 2 lies outside the top-2, so S = {0, 1, 2} = the whole vocabulary: l = KL(pS || pT)
      const batch = batchOf(student, teacher, 1, 3, one, new Int32Array([2]));
      const ref = fullReverseKl(batch, one);
      const r = run(batch, { topK: 2, tailSampling: true, fused });
      expectAllclose(r.perToken, ref.perToken, { rtol: 1e-5 });
      expectAllclose(r.grad, ref.grad, { rtol: 1e-4, atol: 1e-7 });
      // without tail sampling (or with y_t inside the top-2) the support stays {0, 1}
      expectAllclose([run(batch, { topK: 2, fused }).loss], [0.5 * Math.log(4 / 3)], { rtol: 1e-6 });
      disposeBatch(batch);
    });
  }
});

describe('topk-rkl: identities and limits', () => {
  const s = randn(N * V, 1, 2);
  const t = randn(N * V, 2, 2);
  for (const [kind, zs, zt] of [['random', s, t], ['extreme', extreme(s, 3), extreme(t, 4)]] as const) {
    it(`K = 1 gives identically zero loss and gradient (${kind})`, () => {
      const batch = batchOf(zs, zt, N, V);
      for (const fused of [true, false]) {
        const r = run(batch, { topK: 1, fused });
        expect(r.loss).toBe(0);
        expect(r.grad.every((x) => x === 0)).toBe(true);
        expect(r.perToken.every((x) => x === 0)).toBe(true);
      }
      disposeBatch(batch);
    });
  }

  it('K = V is the full reverse KL(pS || pT): per token and gradient', () => {
    const batch = batchOf(s, t, N, V);
    const ref = fullReverseKl(batch, MASK);
    for (const fused of [true, false]) {
      const r = run(batch, { topK: V, fused });
      expectAllclose(r.perToken, ref.perToken, { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(r.grad, ref.grad, { rtol: 1e-4, atol: 1e-6 });
      expect(r.metrics['topk/overlap']).toBe(1);
      expectAllclose([r.metrics['topk/student_mass'], r.metrics['topk/teacher_mass']], [1, 1], { rtol: 1e-6 });
    }
    disposeBatch(batch);
  });

  it('identical student and teacher give zero loss and gradient (with and without tail sampling)', () => {
    const batch = batchOf(s, s, N, V);
    for (const o of [{ topK: 4 }, { topK: 3, tailSampling: true }, { topK: 4, clipLogRatio: 0.2 }]) {
      for (const fused of [true, false]) {
        const r = run(batch, { ...o, fused });
        expectAllclose([r.loss], [0], { atol: 1e-6, label: JSON.stringify(o) });
        expectAllclose(r.grad, new Float32Array(N * V), { atol: 1e-6, label: JSON.stringify(o) });
      }
    }
    disposeBatch(batch);
  });

  it('a clip wider than every log-ratio changes nothing, and reports clip/fraction 0', () => {
    const batch = batchOf(s, t, N, V);
    for (const fused of [true, false]) {
      const plain = run(batch, { topK: 4, fused });
      const wide = run(batch, { topK: 4, clipLogRatio: 1e6, fused });
      expectSame(wide, plain, `fused ${fused}`);
      expect(wide.metrics['clip/fraction']).toBe(0);
    }
    disposeBatch(batch);
  });

  it('special tokens: the first occurrence per sequence among loss tokens is dropped from the mask', () => {
    // sequence 0 = positions 0..2, sequence 1 = 3..5; position 0 is a prompt token (mask 0) holding id 4
    const tokens = new Int32Array([4, 4, 4, 6, 4, 6]);
    const mask = new Float32Array([0, 1, 1, 1, 1, 1]);
    const batch = batchOf(s, t, N, V, mask, tokens);
    // expected mask': seq 0 drops position 1 (the prompt's 4 does not count), seq 1 drops 3 (id 6) and 4 (id 4)
    const manual = new Float32Array([0, 0, 1, 0, 0, 1]);
    for (const fused of [true, false]) {
      const r = run(batch, { topK: 4, specialTokenIds: [4, 6], fused });
      const ref = run({ ...batch, mask_N: manual }, { topK: 4, fused });
      expectSame(r, ref, `fused ${fused}`);
      expect(r.metrics['mask/special_dropped']).toBe(3);
      expect(Array.from(r.perToken, (x) => x !== 0)).toEqual([false, false, true, false, false, true]);
    }
    disposeBatch(batch);
  });

  it('an all-zero mask gives loss 0 and gradient 0, never NaN', () => {
    const batch = batchOf(extreme(s, 5), t, N, V, new Float32Array(N));
    for (const o of [{ topK: 4 }, { topK: 3, tailSampling: true, clipLogRatio: 0.5 }]) {
      for (const fused of [true, false]) {
        const r = run(batch, { ...o, fused });
        expect(r.loss).toBe(0);
        expect(r.grad.every((x) => x === 0)).toBe(true);
        expect(r.metrics['topk/overlap']).toBe(0);
      }
    }
    disposeBatch(batch);
  });

  it('a top-K dump gives the same result as the full teacher (tail sampling reads its sampled log-probs)', () => {
    const full = batchOf(s, t, N, V);
    const dump = { ...full, teacher: dumpOf(t, N, V, 6, full.tokens_N) };
    for (const o of [{ topK: 4 }, { topK: 6, tailSampling: true }, { topK: 3, clipLogRatio: 0.4, tailSampling: true }]) {
      for (const fused of [true, false]) {
        const a = run(full, { ...o, fused });
        const b = run(dump, { ...o, fused });
        expectSame(a, b, JSON.stringify(o));
        for (const key of Object.keys(a.metrics)) expectAllclose([b.metrics[key]], [a.metrics[key]], { rtol: 1e-5, label: key });
      }
    }
    disposeBatch(full);
  });
});

describe('topk-rkl: fused kernel == composed reference', () => {
  const inputs: { kind: string; s: Float32Array; t: Float32Array; extreme: boolean }[] = [
    { kind: 'random', s: randn(N * V, 11, 2), t: randn(N * V, 12, 2), extreme: false },
    { kind: 'near-tie student', s: Float32Array.from(randn(N * V, 13, 1e-3), (x) => 1 + x), t: randn(N * V, 12, 2), extreme: false },
    { kind: 'extreme (+-1e4)', s: extreme(randn(N * V, 11, 2), 14), t: extreme(randn(N * V, 12, 2), 15), extreme: true },
  ];
  for (const inp of inputs) {
    it(`${inp.kind}: K in {1, 3, V} x tail sampling x clip x special tokens x reduction`, () => {
      const batch = batchOf(inp.s, inp.t, N, V);
      for (const topK of [1, 3, V]) {
        for (const tailSampling of [false, true]) {
          for (const clipLogRatio of [0, 0.4]) {
            for (const specialTokenIds of [[], [batch.tokens_N[1]]]) {
              for (const reduction of ['token-mean', 'seq-mean-token-mean'] as const) {
                const o = { topK, tailSampling, clipLogRatio, specialTokenIds };
                const a = run(batch, { ...o, fused: true }, reduction);
                const b = run(batch, { ...o, fused: false }, reduction);
                expectSame(a, b, `${inp.kind} ${JSON.stringify(o)} ${reduction}`, inp.extreme);
                expect(Object.keys(a.metrics).sort()).toEqual(Object.keys(b.metrics).sort());
                for (const key of Object.keys(b.metrics)) expectAllclose([a.metrics[key]], [b.metrics[key]], { rtol: inp.extreme ? 1e-3 : 1e-5, atol: 1e-6, label: key });
              }
            }
          }
        }
      }
      disposeBatch(batch);
    });
  }
});

interface RklCase {
  name: string;
  N: number;
  V: number;
  topK: number;
  tailSampling: boolean;
  specialTokenIds: number[];
  clipLogRatio: number;
  reduction: Reduction;
  logits: number[];
  teacherLogits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
}

describe('topk-rkl: PyTorch float64 fixtures (test/fixtures/gen_topk_rkl.py)', () => {
  const fixture = loadFixture<RklCase>('topk_rkl');
  it('has the cases the conventions ask for', () => {
    const names = fixture.cases.map((c) => c.name).join('\n');
    for (const want of ['extreme', 'near-tie', 'all-masked', 'top1', 'topV', 'tail sampling', 'clip', 'special']) expect(names).toContain(want);
  });
  for (const c of fixture.cases) {
    const extremeInputs = c.name.includes('extreme');
    for (const fused of [true, false]) {
      it(`${c.name} (${fused ? 'fused' : 'composed'})`, () => {
        const batch: DistillBatch = {
          studentLogits_NV: tf.tensor2d(Float32Array.from(c.logits), [c.N, c.V]),
          tokens_N: Int32Array.from(c.tokens),
          mask_N: Float32Array.from(c.mask),
          seqIds_N: Int32Array.from(c.seqIds),
          teacher: { logits_NV: tf.tensor2d(Float32Array.from(c.teacherLogits), [c.N, c.V]) },
        };
        const r = run(batch, { topK: c.topK, tailSampling: c.tailSampling, specialTokenIds: c.specialTokenIds, clipLogRatio: c.clipLogRatio, fused }, c.reduction);
        // fused: float64 kernel, float32 outputs; composed: float32 throughout (loose only on +-1e4 inputs)
        const rtol = !fused && extremeInputs ? 1e-3 : 1e-5;
        const atol = !fused && extremeInputs ? 2e-3 : 1e-6;
        expectAllclose([r.loss], [c.loss], { rtol, atol, label: 'loss' });
        expectAllclose(r.perToken, c.perToken, { rtol, atol, label: 'perToken' });
        expectAllclose(r.grad, c.grad, { rtol, atol: (!fused && extremeInputs ? 1e-3 : 1e-5) * maxAbs(c.grad) + 1e-8, label: 'grad' });
        expect(Object.keys(r.metrics).sort()).toEqual(Object.keys(c.metrics).sort());
        for (const [key, value] of Object.entries(c.metrics)) expectAllclose([r.metrics[key]], [value], { rtol: key === 'loss/topk_rkl' ? rtol : 1e-5, atol: 1e-6, label: key });
        disposeBatch(batch);
      });
    }
  }
});

describe('topk-rkl: tensor leaks', () => {
  it('leaks no tensor (fused / composed, full teacher / dump, tail sampling, clip, special tokens)', () => {
    const batch = batchOf(randn(N * V, 21, 2), randn(N * V, 22, 2), N, V);
    const dump = { ...batch, teacher: dumpOf(randn(N * V, 22, 2), N, V, 5, batch.tokens_N) };
    for (const fused of [true, false]) {
      for (const o of [{ topK: 4 }, { topK: 3, tailSampling: true, clipLogRatio: 0.3, specialTokenIds: [1, 2] }]) {
        expectNoLeak(() => run(batch, { ...o, fused }));
        expectNoLeak(() => run(dump, { ...o, fused }));
        expectNoLeak(() => computeObjective('topk-rkl', batch, { ...o, fused }).loss.dispose());
      }
    }
    disposeBatch(batch);
  });
});

describe('topk-rkl: bad input gets a clear error', () => {
  const s = randn(N * V, 31, 1);
  const t = randn(N * V, 32, 1);
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['topK 0', { topK: 0 }, /option topK must be an integer in \[1, 11\] \(V\), got 0/],
    ['topK > V', { topK: V + 1 }, /option topK must be an integer in \[1, 11\] \(V\), got 12/],
    ['the default topK 32 on a small vocabulary', {}, /option topK must be an integer in \[1, 11\] \(V\), got 32/],
    ['clipLogRatio < 0', { topK: 3, clipLogRatio: -1 }, /option clipLogRatio must be a finite number >= 0/],
    ['tailSampling not a boolean', { topK: 3, tailSampling: 1 }, /option tailSampling must be a boolean/],
    ['special id out of range', { topK: 3, specialTokenIds: [V] }, /option specialTokenIds must be an array of token ids in \[0, 11\)/],
    ['unknown option', { beta: 0.5 }, /unknown option 'beta'/],
  ];
  for (const [name, options, message] of bad) {
    it(name, () => {
      const batch = batchOf(s, t, N, V);
      expect(() => computeObjective('topk-rkl', batch, options)).toThrow(message);
      disposeBatch(batch);
    });
  }
  it('specialTokenIds without seqIds_N, a K above the dump width, NaN logits, no teacher', () => {
    const batch = batchOf(s, t, N, V);
    expect(() => computeObjective('topk-rkl', { ...batch, seqIds_N: undefined }, { topK: 3, specialTokenIds: [1] })).toThrow(/specialTokenIds needs batch.seqIds_N/);
    const dump = { ...batch, teacher: dumpOf(t, N, V, 4, batch.tokens_N) };
    expect(() => computeObjective('topk-rkl', dump, { topK: 5 })).toThrow(/option topK = 5 exceeds the top-K teacher's width k = 4/);
    expect(() => computeObjective('topk-rkl', { ...batch, teacher: undefined }, { topK: 3 })).toThrow(/batch.teacher is required/);
    disposeBatch(batch);
    const x = Float32Array.from(s);
    x[7] = NaN;
    const nan = batchOf(x, t, N, V);
    expect(() => computeObjective('topk-rkl', nan, { topK: 3 })).toThrow(/batch.studentLogits_NV must be finite, found NaN at row 0, column 7/);
    disposeBatch(nan);
  });
});
