/**
 * gkd (lib/objectives/gkd.ts): hand-checked values, identities and limits, fused == composed, PyTorch fixtures
 * (test/fixtures/gen_gkd.py), tensor leaks and bad input.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/gkd';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction, TeacherTopK } from '../../lib/objectives/types';
import { klStudentTeacher, klTeacherStudent } from '../../lib/probs/divergences';
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

function batchOf(student: ArrayLike<number>, teacher: ArrayLike<number>, rows: number, vocab: number, mask = MASK): DistillBatch {
  return {
    studentLogits_NV: tf.tensor2d(Float32Array.from(student), [rows, vocab]),
    tokens_N: randInts(rows, vocab, 77),
    mask_N: mask,
    seqIds_N: Int32Array.from({ length: rows }, (_, i) => (i < rows / 2 ? 0 : 1)),
    teacher: { logits_NV: tf.tensor2d(Float32Array.from(teacher), [rows, vocab]) },
  };
}

function run(batch: DistillBatch, options: Record<string, unknown>, reduction: Reduction = 'token-mean'): Run {
  const r = objectiveLossAndGrad('gkd', batch, options, reduction);
  const grad = Float32Array.from(r.grad_NV.dataSync());
  r.grad_NV.dispose();
  return { loss: r.loss, grad, perToken: r.perToken_N, metrics: r.metrics };
}

/** A top-K dump (temperature 1) of a full teacher's logits, rows listed in reversed (unsorted) order. */
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

/** About a quarter of the entries replaced by +-1e4, the rest ordinary. */
function extreme(x: Float32Array, seed: number): Float32Array {
  const r = randn(x.length, seed);
  return Float32Array.from(x, (v, i) => (Math.abs(r[i]) > 1.15 ? (r[i] > 0 ? 1e4 : -1e4) : v));
}

const maxAbs = (xs: ArrayLike<number>) => Math.max(1e-2, ...Array.from(xs, Math.abs));

/**
 * Fused vs composed. The composed path is float32 throughout: with +-1e4 logits its log-probs carry ~ulp(1e4)
 * = 1e-3 absolute error, i.e. ~1e-3 relative error in support probabilities, which the loss multiplies by
 * log-ratios of size ~1e4; extreme cases are compared at that resolution (rtol 1e-3). The fused float64 kernel
 * is held to 1e-5 against PyTorch float64 on extreme inputs in the fixture tests below.
 */
function expectSame(a: Run, b: Run, label: string, extremeInputs = false): void {
  const rtol = extremeInputs ? 1e-3 : 1e-5;
  const atol = extremeInputs ? 2e-3 : 1e-6;
  expectAllclose([a.loss], [b.loss], { rtol, atol, label: `${label}: loss` });
  expectAllclose(a.perToken, b.perToken, { rtol, atol, label: `${label}: perToken` });
  expectAllclose(a.grad, b.grad, { rtol, atol: (extremeInputs ? 1e-3 : 1e-5) * maxAbs(b.grad), label: `${label}: grad` });
}

describe('gkd: hand-checked values (one token, V = 2 or 3)', () => {
  // teacher pT = [1/2, 1/2] (logits 0, 0), student pS = [1/4, 3/4] (logits 0, ln 3)
  const L3 = Math.log(3);
  const cases: { name: string; options: Record<string, unknown>; student: number[]; loss: number; grad: number[] }[] = [];
  // beta = 0: KL(T||S) = 1/2 ln(1/2 / 1/4) + 1/2 ln(1/2 / 3/4) = 1/2 ln(4/3); grad = pS - pT = [-1/4, 1/4]
  cases.push({ name: 'beta 0', options: { beta: 0 }, student: [0, L3], loss: 0.5 * Math.log(4 / 3), grad: [-0.25, 0.25] });
  // beta = 1: KL(S||T) = 1/4 ln(1/2) + 3/4 ln(3/2); grad_v = pS_v (ln(pS_v / pT_v) - KL)
  const r1 = 0.25 * Math.log(0.5) + 0.75 * Math.log(1.5);
  cases.push({ name: 'beta 1', options: { beta: 1 }, student: [0, L3], loss: r1, grad: [0.25 * (Math.log(0.5) - r1), 0.75 * (Math.log(1.5) - r1)] });
  // beta = 1/2: M = [3/8, 5/8]; JSD = 1/2 [1/2 ln(4/3) + 1/2 ln(4/5)] + 1/2 [1/4 ln(2/3) + 3/4 ln(6/5)]
  // dF/dx_v = 1/2 pS_v ln(pS_v / M_v) = [1/8 ln(2/3), 3/8 ln(6/5)]; grad_v = dF/dx_v - pS_v sum_u dF/dx_u
  const j = 0.5 * (0.5 * Math.log(4 / 3) + 0.5 * Math.log(4 / 5)) + 0.5 * (0.25 * Math.log(2 / 3) + 0.75 * Math.log(6 / 5));
  const g = [0.125 * Math.log(2 / 3), 0.375 * Math.log(6 / 5)];
  cases.push({ name: 'beta 1/2', options: { beta: 0.5 }, student: [0, L3], loss: j, grad: [g[0] - 0.25 * (g[0] + g[1]), g[1] - 0.75 * (g[0] + g[1])] });
  // temperature 2 on logits [0, 2 ln 3]: the same pS, so the same loss; the gradient is divided by tau
  cases.push({ name: 'beta 0, tau 2', options: { beta: 0, temperature: 2 }, student: [0, 2 * L3], loss: 0.5 * Math.log(4 / 3), grad: [-0.125, 0.125] });
  for (const c of cases) {
    for (const fused of [true, false]) {
      it(`${c.name} (${fused ? 'fused' : 'composed'})`, () => {
        const batch = batchOf(c.student, [0, 0], 1, 2, new Float32Array([1]));
        const r = run(batch, { ...c.options, fused });
        expectAllclose([r.loss], [c.loss], { rtol: 1e-6, atol: 1e-7 });
        expectAllclose(r.perToken, [c.loss], { rtol: 1e-6, atol: 1e-7 });
        expectAllclose(r.grad, c.grad, { rtol: 1e-5, atol: 1e-7 });
        expect(r.metrics['loss/gkd']).toBeCloseTo(c.loss, 6);
        disposeBatch(batch);
      });
    }
  }
  for (const fused of [true, false]) {
    it(`top-2 support, 'both', beta 0 (${fused ? 'fused' : 'composed'})`, () => {
      // teacher logits [ln 3, 0, -5]: top-2 = {0, 1}, renormalised pT^ = [3/4, 1/4]
      // student logits [0, 0, 7]: renormalised on {0, 1}, pS^ = [1/2, 1/2]
      // KL(T^||S^) = 3/4 ln(3/2) + 1/4 ln(1/2); grad on the support = pS^ - pT^ = [-1/4, 1/4], 0 at id 2
      const batch = batchOf([0, 0, 7], [L3, 0, -5], 1, 3, new Float32Array([1]));
      const r = run(batch, { beta: 0, topK: 2, supportNorm: 'both', fused });
      expectAllclose([r.loss], [0.75 * Math.log(1.5) + 0.25 * Math.log(0.5)], { rtol: 1e-6, atol: 1e-7 });
      expectAllclose(r.grad, [-0.25, 0.25, 0], { rtol: 1e-5, atol: 1e-7 });
      expectAllclose([r.metrics['topk/student_mass'], r.metrics['topk/teacher_mass']], [2 / (2 + Math.exp(7)), 4 / (4 + Math.exp(-5))], { rtol: 1e-5 });
      disposeBatch(batch);
    });
  }
});

describe('gkd: identities and limits', () => {
  const s = randn(N * V, 1, 2);
  const t = randn(N * V, 2, 2);

  for (const fused of [true, false]) {
    it(`beta = 0 is exactly KL(T||S) and beta = 1 exactly KL(S||T) per token (${fused ? 'fused' : 'composed'})`, () => {
      const batch = batchOf(s, t, N, V);
      const logpS = tf.logSoftmax(batch.studentLogits_NV) as tf.Tensor2D;
      const logpT = tf.logSoftmax((batch.teacher as { logits_NV: tf.Tensor2D }).logits_NV) as tf.Tensor2D;
      const fwd = Float32Array.from(klTeacherStudent(logpT, logpS).dataSync(), (x, i) => x * MASK[i]);
      const rev = Float32Array.from(klStudentTeacher(logpT, logpS).dataSync(), (x, i) => x * MASK[i]);
      expectAllclose(run(batch, { beta: 0, fused }).perToken, fwd, { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(run(batch, { beta: 1, fused }).perToken, rev, { rtol: 1e-5, atol: 1e-6 });
      tf.dispose([logpS, logpT]);
      disposeBatch(batch);
    });
  }

  it('identical student and teacher give zero loss and zero gradient (every beta; full vocabulary, both, tailBucket)', () => {
    const batch = batchOf(s, s, N, V);
    for (const beta of [0, 0.3, 1]) {
      for (const o of [{ topK: 0 }, { topK: 4, supportNorm: 'both' }, { topK: 4, supportNorm: 'tailBucket' }, { topK: 1, supportNorm: 'both' }]) {
        for (const fused of [true, false]) {
          const r = run(batch, { beta, ...o, fused });
          const label = `beta ${beta} ${JSON.stringify(o)} fused ${fused}`;
          expectAllclose([r.loss], [0], { atol: 1e-6, label });
          expectAllclose(r.grad, new Float32Array(N * V), { atol: 1e-6, label });
        }
      }
    }
    disposeBatch(batch);
  });

  it("'none' (sub-normalised support): zero loss at identity, but the end KLs still push mass onto the support", () => {
    // beta = 0: F = sum_S pT (log pT - log pS) with full-vocabulary log-probs; at pS = pT, dF/dz_v = pS_v m - pT_v 1[v in S]
    // (m = mass on S), nonzero: the truncated, un-normalised KL is not minimised at pS = pT (methods.md 10.3)
    const batch = batchOf(s, s, N, V);
    for (const fused of [true, false]) {
      const r = run(batch, { beta: 0, topK: 4, supportNorm: 'none', fused });
      expectAllclose([r.loss], [0], { atol: 1e-6 });
      expect(maxAbs(r.grad)).toBeGreaterThan(1e-2);
      const mid = run(batch, { beta: 0.5, topK: 4, supportNorm: 'none', fused });
      expectAllclose(mid.grad, new Float32Array(N * V), { atol: 1e-6 }); // interior: log M = log pT at identity
    }
    disposeBatch(batch);
  });

  it("K = V with 'both' equals the full-vocabulary divergence (loss, perToken, gradient)", () => {
    const batch = batchOf(s, t, N, V);
    for (const beta of [0, 0.5, 1]) {
      for (const fused of [true, false]) {
        expectSame(run(batch, { beta, topK: V, supportNorm: 'both', fused }), run(batch, { beta, topK: 0, fused }), `beta ${beta} fused ${fused}`);
      }
    }
    disposeBatch(batch);
  });

  it('jsd_beta(T, S) == jsd_{1-beta}(S, T) with the roles swapped (full vocabulary)', () => {
    const ab = batchOf(s, t, N, V);
    const ba = batchOf(t, s, N, V);
    for (const beta of [0, 0.2, 0.5, 0.9]) {
      const x = run(ab, { beta });
      const y = run(ba, { beta: 1 - beta });
      expectAllclose(x.perToken, y.perToken, { rtol: 1e-5, atol: 1e-7, label: `beta ${beta}` });
      expectAllclose([x.loss], [y.loss], { rtol: 1e-5, label: `beta ${beta}` });
    }
    disposeBatch(ab);
    disposeBatch(ba);
  });

  it('the interior is a scaled divergence: JSD_beta / beta -> KL(T||S) and JSD_beta / (1 - beta) -> KL(S||T)', () => {
    // JSD_beta = beta KL(T||S) + O(beta^2) (and symmetrically at 1); moderate logits keep the O(beta^2) term small
    const batch = batchOf(randn(N * V, 5, 1), randn(N * V, 6, 1), N, V);
    const fwd = run(batch, { beta: 0 }).loss;
    const rev = run(batch, { beta: 1 }).loss;
    const eps = 1e-5;
    expectAllclose([run(batch, { beta: eps }).loss / eps], [fwd], { rtol: 1e-3 });
    expectAllclose([run(batch, { beta: 1 - eps }).loss / eps], [rev], { rtol: 1e-3 });
    // so the loss jumps at the ends: beta = eps is ~eps times beta = 0 (TRL / ms-swift behaviour, kept)
    expect(run(batch, { beta: eps }).loss).toBeLessThan(1e-3 * fwd);
    disposeBatch(batch);
  });

  it('temperature: loss(z, t; tau) = loss(z / tau, t / tau; 1) and grad(z; tau) = grad(z / tau; 1) / tau', () => {
    const tau = 0.7;
    const hot = batchOf(s, t, N, V);
    const cold = batchOf(Float32Array.from(s, (x) => x / tau), Float32Array.from(t, (x) => x / tau), N, V);
    for (const o of [{ topK: 0 }, { topK: 4, supportNorm: 'none' }, { topK: 4, supportNorm: 'tailBucket' }, { topK: 3, supportNorm: 'both' }]) {
      for (const fused of [true, false]) {
        const a = run(hot, { ...o, beta: 0.4, temperature: tau, fused });
        const b = run(cold, { ...o, beta: 0.4, fused });
        expectAllclose([a.loss], [b.loss], { rtol: 1e-5, label: JSON.stringify(o) });
        expectAllclose(a.grad, Float32Array.from(b.grad, (x) => x / tau), { rtol: 1e-4, atol: 1e-6, label: JSON.stringify(o) });
      }
    }
    disposeBatch(hot);
    disposeBatch(cold);
  });

  it('a top-K dump gives the same result as the full teacher on the same support', () => {
    const full = batchOf(s, t, N, V);
    const dump = { ...batchOf(s, t, N, V), teacher: dumpOf(t, N, V, 5, full.tokens_N) };
    for (const o of [{ topK: 4, supportNorm: 'both' }, { topK: 5, supportNorm: 'none' }, { topK: 3, supportNorm: 'tailBucket' }]) {
      for (const fused of [true, false]) {
        const a = run(full, { ...o, beta: 0.5, fused });
        const b = run(dump, { ...o, beta: 0.5, fused });
        expectAllclose([a.loss], [b.loss], { rtol: 1e-5, label: JSON.stringify(o) });
        expectAllclose(a.grad, b.grad, { rtol: 1e-4, atol: 1e-6, label: JSON.stringify(o) });
        expectAllclose([a.metrics['topk/teacher_mass']], [b.metrics['topk/teacher_mass']], { rtol: 1e-5 });
      }
    }
    // at temperature != 1 the dump supports 'both' (exact) and does not report a teacher mass
    const a = run(full, { topK: 4, temperature: 1.7, fused: true });
    const b = run(dump, { topK: 4, temperature: 1.7, fused: true });
    expectAllclose(a.grad, b.grad, { rtol: 1e-4, atol: 1e-6 });
    expect(b.metrics['topk/teacher_mass']).toBeUndefined();
    disposeBatch(full);
    dump.studentLogits_NV.dispose();
  });

  it('an all-zero mask gives loss 0 and gradient 0, never NaN', () => {
    const batch = batchOf(extreme(s, 3), t, N, V, new Float32Array(N));
    for (const o of [{ topK: 0 }, { topK: 4, supportNorm: 'tailBucket' }, { topK: 4, supportNorm: 'both' }]) {
      for (const fused of [true, false]) {
        const r = run(batch, { ...o, fused });
        expect(r.loss).toBe(0);
        expect(r.grad.every((x) => x === 0)).toBe(true);
        expect(Array.from(r.perToken)).toEqual(new Array(N).fill(0));
      }
    }
    disposeBatch(batch);
  });

  it("reduction 'sum' is token-mean times the number of masked tokens", () => {
    const batch = batchOf(s, t, N, V);
    const mean = run(batch, { topK: 4 }, 'token-mean');
    const sum = run(batch, { topK: 4 }, 'sum');
    expectAllclose([sum.loss], [mean.loss * 5], { rtol: 1e-6 });
    expectAllclose(sum.grad, Float32Array.from(mean.grad, (x) => x * 5), { rtol: 1e-5, atol: 1e-8 });
    disposeBatch(batch);
  });
});

describe('gkd: fused kernel == composed reference', () => {
  const inputs: { kind: string; s: Float32Array; t: Float32Array; extreme: boolean }[] = [
    { kind: 'random', s: randn(N * V, 11, 2), t: randn(N * V, 12, 2), extreme: false },
    { kind: 'near-tie student', s: Float32Array.from(randn(N * V, 13, 1e-3), (x) => 1 + x), t: randn(N * V, 12, 2), extreme: false },
    { kind: 'extreme (+-1e4)', s: extreme(randn(N * V, 11, 2), 14), t: extreme(randn(N * V, 12, 2), 15), extreme: true },
  ];
  for (const inp of inputs) {
    it(`${inp.kind}: every beta, temperature, topK in {0, 1, 4, V} and support norm`, () => {
      const batch = batchOf(inp.s, inp.t, N, V);
      for (const beta of [0, 0.25, 0.5, 1]) {
        for (const temperature of [1, 0.6]) {
          for (const topK of [0, 1, 4, V]) {
            for (const supportNorm of topK === 0 ? ['both'] : ['none', 'both', 'tailBucket']) {
              const o = { beta, temperature, topK, supportNorm };
              const a = run(batch, { ...o, fused: true });
              const b = run(batch, { ...o, fused: false });
              expectSame(a, b, `${inp.kind} ${JSON.stringify(o)}`, inp.extreme);
              // the composed path reads a full teacher in float32 too (tfjs log-softmax): at +-1e4 its log-probs round
              // to ~1e-3, as the student's do
              const tol = inp.extreme ? { rtol: 1e-3, atol: 2e-3 } : { rtol: 1e-4, atol: 1e-5 };
              for (const key of Object.keys(b.metrics)) expectAllclose([a.metrics[key]], [b.metrics[key]], { ...tol, label: key });
            }
          }
        }
      }
      disposeBatch(batch);
    });
  }
  it("reductions 'seq-mean-token-mean' and 'sum' agree too", () => {
    const batch = batchOf(inputs[0].s, inputs[0].t, N, V);
    for (const reduction of ['seq-mean-token-mean', 'sum'] as const) {
      for (const o of [{ topK: 0 }, { topK: 3, supportNorm: 'tailBucket' }]) {
        expectSame(run(batch, { ...o, fused: true }, reduction), run(batch, { ...o, fused: false }, reduction), `${reduction} ${JSON.stringify(o)}`);
      }
    }
    disposeBatch(batch);
  });
});

interface GkdCase {
  name: string;
  N: number;
  V: number;
  beta: number;
  temperature: number;
  topK: number;
  supportNorm: string;
  reduction: Reduction;
  form: 'full' | 'topk';
  fusedOnly: boolean;
  logits: number[];
  teacherLogits: number[];
  mask: number[];
  seqIds: number[];
  loss: number;
  perToken: number[];
  grad: number[];
  metrics: Record<string, number>;
  k?: number;
  topkIds?: number[];
  topkLogprobs?: number[];
  tokens?: number[];
  sampledLogprobs?: number[];
}

describe('gkd: PyTorch float64 fixtures (test/fixtures/gen_gkd.py)', () => {
  const fixture = loadFixture<GkdCase>('gkd');
  it('has the cases the conventions ask for', () => {
    const names = fixture.cases.map((c) => c.name).join('\n');
    for (const want of ['extreme', 'near-tie', 'all-masked', 'top1', 'topV', 'dump']) expect(names).toContain(want);
  });
  for (const c of fixture.cases) {
    const extremeInputs = c.name.includes('extreme');
    for (const fused of [true, false]) {
      if (!fused && c.fusedOnly) continue;
      it(`${c.name} (${fused ? 'fused' : 'composed'})`, () => {
        const mask = Float32Array.from(c.mask);
        const batch: DistillBatch = {
          studentLogits_NV: tf.tensor2d(Float32Array.from(c.logits), [c.N, c.V]),
          tokens_N: c.tokens ? Int32Array.from(c.tokens) : new Int32Array(c.N),
          mask_N: mask,
          seqIds_N: Int32Array.from(c.seqIds),
        };
        const teacherLogits = tf.tensor2d(Float32Array.from(c.teacherLogits), [c.N, c.V]);
        batch.teacher =
          c.form === 'topk'
            ? { k: c.k!, topkIds_NK: Int32Array.from(c.topkIds!), topkLogprobs_NK: Float32Array.from(c.topkLogprobs!), sampledLogprobs_N: Float32Array.from(c.sampledLogprobs!) }
            : { logits_NV: teacherLogits };
        const r = run(batch, { beta: c.beta, temperature: c.temperature, topK: c.topK, supportNorm: c.supportNorm, fused }, c.reduction);
        // fused: float64 kernel, float32 outputs; composed: float32 throughout (see expectSame)
        const rtol = fused ? 1e-5 : extremeInputs ? 1e-3 : 1e-5;
        const atol = fused ? 1e-6 : extremeInputs ? 2e-3 : 1e-6;
        expectAllclose([r.loss], [c.loss], { rtol, atol, label: 'loss' });
        expectAllclose(r.perToken, c.perToken, { rtol, atol, label: 'perToken' });
        expectAllclose(r.grad, c.grad, { rtol, atol: (fused ? 1e-5 : extremeInputs ? 1e-3 : 1e-5) * maxAbs(c.grad) + (fused ? 1e-9 : 1e-7), label: 'grad' });
        for (const [key, value] of Object.entries(c.metrics)) {
          if (key === 'topk/teacher_mass' && c.form === 'topk' && c.temperature !== 1) {
            expect(r.metrics[key]).toBeUndefined();
            continue;
          }
          expectAllclose([r.metrics[key]], [value], { rtol: 1e-5, atol: 1e-6, label: key });
        }
        batch.studentLogits_NV.dispose();
        teacherLogits.dispose();
      });
    }
  }
});

describe('gkd: tensor leaks', () => {
  it('leaks no tensor on any path (full / support, full teacher / dump, fused / composed)', () => {
    const batch = batchOf(randn(N * V, 21, 2), randn(N * V, 22, 2), N, V);
    const dump = { ...batch, teacher: dumpOf(randn(N * V, 22, 2), N, V, 5, batch.tokens_N) };
    for (const fused of [true, false]) {
      for (const o of [{ topK: 0 }, { topK: 4, supportNorm: 'none' }, { topK: 4, supportNorm: 'tailBucket' }, { topK: V, supportNorm: 'tailBucket' }]) {
        expectNoLeak(() => run(batch, { ...o, fused }));
        expectNoLeak(() => computeObjective('gkd', batch, { ...o, fused }).loss.dispose());
      }
      expectNoLeak(() => run(dump, { topK: 4, temperature: 2, fused }));
    }
    disposeBatch(batch);
  });
});

describe('gkd: bad input gets a clear error', () => {
  const s = randn(N * V, 31, 1);
  const t = randn(N * V, 32, 1);
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['beta < 0', { beta: -0.1 }, /option beta must be a number in \[0, 1\], got -0.1/],
    ['beta > 1', { beta: 1.5 }, /option beta must be a number in \[0, 1\], got 1.5/],
    ['beta NaN', { beta: NaN }, /option beta/],
    ['topK > V', { topK: V + 1 }, /option topK must be an integer in \[0, 11\].*got 12/],
    ['topK < 0', { topK: -1 }, /option topK must be an integer/],
    ['topK not an integer', { topK: 2.5 }, /option topK must be an integer/],
    ['temperature 0', { temperature: 0 }, /option temperature must be a finite number > 0, got 0/],
    ['temperature < 0', { temperature: -1 }, /option temperature must be a finite number > 0/],
    ['unknown support norm', { topK: 3, supportNorm: 'teacher' }, /option supportNorm must be one of none, both, tailBucket/],
    ['unknown option', { lambda: 1 }, /unknown option 'lambda'/],
  ];
  for (const [name, options, message] of bad) {
    it(name, () => {
      const batch = batchOf(s, t, N, V);
      expect(() => computeObjective('gkd', batch, options)).toThrow(message);
      disposeBatch(batch);
    });
  }
  it('NaN student logits name the argument and position', () => {
    const x = Float32Array.from(s);
    x[2 * V + 3] = NaN;
    const batch = batchOf(x, t, N, V);
    expect(() => computeObjective('gkd', batch)).toThrow(/batch.studentLogits_NV must be finite, found NaN at row 2, column 3/);
    disposeBatch(batch);
  });
  it('a top-K teacher: full-vocabulary gkd, K larger than the dump, and temperature with a non-renormalised support', () => {
    const batch = batchOf(s, t, N, V);
    const dump = { ...batch, teacher: dumpOf(t, N, V, 4, batch.tokens_N) };
    expect(() => computeObjective('gkd', dump, {})).toThrow(/topK = 0 \(full vocabulary\) needs the teacher's full logits/);
    expect(() => computeObjective('gkd', dump, { topK: 5 })).toThrow(/option topK = 5 exceeds the top-K teacher's width k = 4/);
    expect(() => computeObjective('gkd', dump, { topK: 4, temperature: 2, supportNorm: 'none' })).toThrow(/works only with supportNorm 'both'/);
    expect(() => computeObjective('gkd', { ...batch, teacher: undefined })).toThrow(/batch.teacher is required/);
    disposeBatch(batch);
  });
});
