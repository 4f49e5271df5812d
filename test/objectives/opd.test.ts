import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import '../../lib/objectives/opd';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch, Reduction, TeacherTopK } from '../../lib/objectives/types';
import { topKRows } from '../../lib/probs/topk';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randInts, randn } from '../helpers';

interface Run {
  loss: number;
  grad: Float32Array;
  perToken_N: Float32Array;
  metrics: Record<string, number>;
}

function run(name: string, batch: DistillBatch, options: Record<string, unknown> = {}, reduction: Reduction = 'token-mean'): Run {
  const r = objectiveLossAndGrad(name, batch, options, reduction);
  const grad = r.grad_NV.dataSync().slice() as Float32Array;
  r.grad_NV.dispose();
  return { loss: r.loss, grad, perToken_N: r.perToken_N, metrics: r.metrics };
}

/** The same teacher as a top-K dump (what real runs store): its top-k plus the sampled token's log-prob. */
function topkTeacher(teacherLogits_NV: tf.Tensor2D, tokens_N: Int32Array, k: number): TeacherTopK {
  const [n, vocab] = teacherLogits_NV.shape;
  const lp = tf.tidy(() => tf.logSoftmax(teacherLogits_NV).dataSync() as Float32Array);
  const top = topKRows(lp, n, vocab, k);
  return { k, topkIds_NK: top.ids_NK, topkLogprobs_NK: top.values_NK, sampledLogprobs_N: Float32Array.from(tokens_N, (t, i) => lp[i * vocab + t]) };
}

const LN2 = Math.LN2;
const LN3 = Math.log(3);

describe('opd: hand-checkable case (V = 3, one token)', () => {
  // student z = (0, 0, ln 2): pS = (1/4, 1/4, 1/2); teacher (ln 3, ln 2, 0): pT = (1/2, 1/3, 1/6); y = 2.
  // log pS(y) = -ln 2, log pT(y) = -ln 6, so A = -ln 6 + ln 2 = -ln 3 = -1.0986123.
  const make = (extra: Partial<DistillBatch> = {}): DistillBatch => ({
    studentLogits_NV: tf.tensor2d([[0, 0, LN2]]),
    tokens_N: Int32Array.from([2]),
    mask_N: Float32Array.from([1]),
    teacher: { logits_NV: tf.tensor2d([[LN3, LN2, 0]]) },
    ...extra,
  });

  for (const fused of [true, false]) {
    it(`PG loss, gradient and metrics (fused ${fused})`, () => {
      const r = run('opd', make(), { fused });
      // l = -A log pS(y) = ln 3 * (-ln 2) = -1.0986123 * 0.6931472 = -0.7615000
      expectAllclose([r.loss], [-0.7615000], { atol: 1e-6 });
      expectAllclose(r.perToken_N, [-0.7615000], { atol: 1e-6 });
      // d l / d z = A (p - e_y) = -ln 3 * (1/4, 1/4, -1/2) = (-0.2746531, -0.2746531, 0.5493061)
      expectAllclose(r.grad, [-0.2746531, -0.2746531, 0.5493061], { atol: 1e-6 });
      expectAllclose([r.metrics['adv/mean'], r.metrics['adv/neg_share'], r.metrics['adv/zero_share']], [-1.0986123, 1, 0], { atol: 1e-6 });
      // teacher_kl = log pS(y) - log pT(y) = -ln 2 + ln 6 = ln 3
      expectAllclose([r.metrics.teacher_kl, r.metrics['loss/pg']], [1.0986123, -0.7615000], { atol: 1e-6 });
    });

    it(`importance ratio and sampler advantage (fused ${fused})`, () => {
      // sampler said q(y) = 1/4 while pS(y) = 1/2: rho = 2; l = -A rho = 2 ln 3 = 2.1972246, gradient doubles
      const stale = make({ samplerLogprobs_N: Float32Array.from([Math.log(0.25)]) });
      const is = run('opd', stale, { fused, importanceRatio: true });
      expectAllclose([is.loss], [2.1972246], { atol: 1e-6 });
      expectAllclose(is.grad, [-0.5493061, -0.5493061, 1.0986123], { atol: 1e-6 });
      expectAllclose([is.metrics['is/ratio_mean']], [2], { atol: 1e-6 });
      // on-policy (q = pS): rho = 1, loss -A = ln 3 and the same gradient as the PG loss
      const onPolicy = run('opd', make({ samplerLogprobs_N: Float32Array.from([-LN2]) }), { fused, importanceRatio: true });
      expectAllclose([onPolicy.loss], [1.0986123], { atol: 1e-6 });
      expectAllclose(onPolicy.grad, [-0.2746531, -0.2746531, 0.5493061], { atol: 1e-6 });
      // advantage from the sampler: A = log pT(y) - log q(y) = -ln 6 + ln 4 = ln(2/3) = -0.4054651
      // l = -A log pS(y) = 0.4054651 * (-0.6931472) = -0.2810470; grad = A (p - e_y)
      const sampler = run('opd', stale, { fused, advantageFrom: 'sampler' });
      expectAllclose([sampler.loss], [-0.2810470], { atol: 1e-6 });
      expectAllclose(sampler.grad, [-0.1013663, -0.1013663, 0.2027326], { atol: 1e-6 });
      expectAllclose([sampler.metrics.teacher_kl], [Math.log(6) - Math.log(4)], { atol: 1e-6 });
    });

    it(`discounted advantages (fused ${fused})`, () => {
      // the same row twice in one sequence, r = -ln 3 each, gamma = 0.5:
      // A_1 = r + 0.5 r = -1.6479184, A_2 = r = -1.0986123; l_t = -A_t (-ln 2)
      const b: DistillBatch = {
        studentLogits_NV: tf.tensor2d([[0, 0, LN2], [0, 0, LN2]]),
        tokens_N: Int32Array.from([2, 2]),
        mask_N: Float32Array.from([1, 1]),
        teacher: { logits_NV: tf.tensor2d([[LN3, LN2, 0], [LN3, LN2, 0]]) },
        seqIds_N: Int32Array.from([0, 0]),
      };
      const r = run('opd', b, { fused, gamma: 0.5 }, 'sum');
      // -1.6479184 * 0.6931472 = -1.1422500 ; -1.0986123 * 0.6931472 = -0.7615000
      expectAllclose(r.perToken_N, [-1.1422500, -0.7615000], { atol: 1e-6 });
      expectAllclose([r.loss], [-1.9037500], { atol: 1e-6 });
      // two sequences: no discounting across the boundary
      const split = run('opd', { ...b, seqIds_N: Int32Array.from([0, 1]) }, { fused, gamma: 0.5 }, 'sum');
      expectAllclose(split.perToken_N, [-0.7615000, -0.7615000], { atol: 1e-6 });
    });
  }
});

type OpdFixtureRun = { options: Record<string, unknown>; reduction: Reduction; loss: number; perToken: number[]; grad: number[] };
type OpdFixtureCase = {
  name: string; N: number; V: number; studentLogits: number[]; teacherLogits: number[]; tokens: number[]; mask: number[];
  seqIds: number[]; samplerLogprobs: number[]; runs: OpdFixtureRun[];
};

describe('opd: PyTorch float64 reference (test/fixtures/gen_opd.py)', () => {
  const doc = loadFixture<OpdFixtureCase>('opd');
  for (const c of doc.cases) {
    it(`case '${c.name}': fused and composed, full and top-K teacher`, () => {
      const tokens = Int32Array.from(c.tokens);
      const teacherLogits = tf.tensor2d(c.teacherLogits, [c.N, c.V]);
      const base: DistillBatch = {
        studentLogits_NV: tf.tensor2d(c.studentLogits, [c.N, c.V]),
        tokens_N: tokens,
        mask_N: Float32Array.from(c.mask),
        teacher: { logits_NV: teacherLogits },
        seqIds_N: Int32Array.from(c.seqIds),
        samplerLogprobs_N: Float32Array.from(c.samplerLogprobs),
      };
      const dump = { ...base, teacher: topkTeacher(teacherLogits, tokens, 2) };
      for (const ref of c.runs) {
        for (const batch of [base, dump]) {
          for (const fused of [true, false]) {
            const label = `${c.name} ${JSON.stringify(ref.options)} ${ref.reduction} fused=${fused}`;
            const r = run('opd', batch, { ...ref.options, fused }, ref.reduction);
            // float32 inputs and arithmetic against float64: rtol 1e-5, atol 1e-6. One documented exception:
            // the composed importance ratio exp(log pS(y) - log q(y)) at log pS(y) ~ -1e4, where a float32
            // log-prob has an ulp of 1e-3, so the ratio is only good to ~1e-3 (the fused kernel is float64)
            const rtol = !fused && ref.options.importanceRatio && c.name === 'extreme' ? 2e-3 : 1e-5;
            expectAllclose([r.loss], [ref.loss], { rtol, atol: 1e-6, label: `${label} loss` });
            expectAllclose(r.perToken_N, ref.perToken, { rtol, atol: 1e-6, label: `${label} perToken` });
            expectAllclose(r.grad, ref.grad, { rtol, atol: 1e-6, label: `${label} grad` });
          }
        }
      }
      tf.dispose([base.studentLogits_NV, teacherLogits]);
    });
  }
});

function randomBatch(n: number, vocab: number, seed: number, extreme = false): DistillBatch {
  const z = randn(n * vocab, seed, 2);
  const tokens = randInts(n, vocab, seed + 1);
  if (extreme) {
    z[0 * vocab + tokens[0]] = 1e4;
    z[1 * vocab + ((tokens[1] + 1) % vocab)] = 1e4;
    z[2 * vocab + tokens[2]] = -1e4;
    z[3 * vocab + 5] = -1e4;
  }
  const seqIds = Int32Array.from({ length: n }, (_, i) => Math.floor((i * 3) / n));
  const mask = Float32Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 0 : 1));
  const studentLogits_NV = tf.tensor2d(z, [n, vocab]);
  const lpS = tf.tidy(() => tf.logSoftmax(studentLogits_NV).dataSync());
  const noise = randn(n, seed + 3, 0.1);
  return {
    studentLogits_NV,
    tokens_N: tokens,
    mask_N: mask,
    teacher: { logits_NV: tf.tensor2d(randn(n * vocab, seed + 2, 2), [n, vocab]) },
    seqIds_N: seqIds,
    samplerLogprobs_N: Float32Array.from(tokens, (t, i) => lpS[i * vocab + t] + noise[i]),
  };
}

describe('opd: identities and limits', () => {
  it('fused equals composed on random and extreme inputs, every option and reduction', () => {
    for (const extreme of [false, true]) {
      const batch = randomBatch(12, 40, 7, extreme);
      for (const options of [{}, { gamma: 0.7 }, { gamma: 1 }, { advantageFrom: 'sampler' }, { importanceRatio: true }, { importanceRatio: true, advantageFrom: 'sampler', gamma: 0.3 }]) {
        for (const reduction of ['token-mean', 'seq-mean-token-mean', 'sum'] as Reduction[]) {
          const a = run('opd', batch, { ...options, fused: true }, reduction);
          const b = run('opd', batch, { ...options, fused: false }, reduction);
          const label = `${JSON.stringify(options)} ${reduction} extreme=${extreme}`;
          // the composed importance ratio at log pS(y) ~ -1e4 is float32-limited to ~1e-3 (see the fixture test)
          const rtol = extreme && 'importanceRatio' in options ? 2e-3 : 1e-5;
          expectAllclose([a.loss], [b.loss], { rtol, atol: 1e-6, label });
          expectAllclose(a.perToken_N, b.perToken_N, { rtol, atol: 1e-6, label });
          expectAllclose(a.grad, b.grad, { rtol, atol: 1e-7, label });
          expect(Object.keys(a.metrics).sort()).toEqual(Object.keys(b.metrics).sort());
          for (const key of Object.keys(a.metrics)) expectAllclose([a.metrics[key]], [b.metrics[key]], { rtol, atol: 1e-6, label: `${label} ${key}` });
        }
      }
    }
  });

  it('teacher = student gives zero advantage, zero loss and zero gradient', () => {
    // up to rounding: the teacher's log-softmax (lib/kernels logsumexp) and the student's (tfjs, or the SIMD
    // softmax in the fused kernel) are separate float32 computations (~1e-7 apart; gamma = 1 sums ~8 of them)
    const batch = randomBatch(8, 20, 11);
    const same = { ...batch, teacher: { logits_NV: batch.studentLogits_NV } };
    for (const fused of [true, false]) {
      for (const gamma of [0, 1]) {
        const r = run('opd', same, { fused, gamma });
        const atol = 5e-6;
        expectAllclose([r.loss], [0], { atol, rtol: 0 });
        expect(r.metrics['adv/zero_share']).toBe(1);
        expectAllclose(r.grad, new Float32Array(r.grad.length), { atol, rtol: 0 });
      }
    }
  });

  it('the importance-ratio loss has the PG gradient on-policy (q = pS)', () => {
    const batch = randomBatch(10, 30, 5);
    const lpS = tf.tidy(() => tf.logSoftmax(batch.studentLogits_NV).dataSync());
    const onPolicy = { ...batch, samplerLogprobs_N: Float32Array.from(batch.tokens_N, (t, i) => lpS[i * 30 + t]) };
    for (const fused of [true, false]) {
      const pg = run('opd', onPolicy, { fused });
      const is = run('opd', onPolicy, { fused, importanceRatio: true });
      expectAllclose(is.grad, pg.grad, { rtol: 1e-5, atol: 1e-7 });
      expectAllclose([is.metrics['is/ratio_mean']], [1], { atol: 1e-6 });
    }
  });

  it('the top-K teacher dump gives the same result as full teacher logits (up to float32 rounding)', () => {
    const batch = randomBatch(10, 30, 9);
    const dump = { ...batch, teacher: topkTeacher((batch.teacher as { logits_NV: tf.Tensor2D }).logits_NV, batch.tokens_N, 4) };
    for (const fused of [true, false]) {
      const a = run('opd', batch, { fused, gamma: 0.5 }, 'sum');
      const b = run('opd', dump, { fused, gamma: 0.5 }, 'sum');
      expectAllclose([b.loss], [a.loss], { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(b.perToken_N, a.perToken_N, { rtol: 1e-5, atol: 1e-6 });
      expectAllclose(b.grad, a.grad, { rtol: 1e-5, atol: 1e-6 });
    }
  });

  it('an all-zero mask gives loss 0 and gradient 0 (no NaN) for every reduction', () => {
    const batch = { ...randomBatch(6, 10, 3, true), mask_N: new Float32Array(6) };
    for (const fused of [true, false]) {
      for (const reduction of ['token-mean', 'seq-mean-token-mean', 'sum'] as Reduction[]) {
        for (const options of [{}, { gamma: 1 }, { importanceRatio: true }]) {
          const r = run('opd', batch, { ...options, fused }, reduction);
          expect(r.loss).toBe(0);
          expect(r.grad.every((g) => g === 0)).toBe(true);
          expect(r.perToken_N.every((g) => g === 0)).toBe(true);
          expect(Object.values(r.metrics).every((m) => Number.isFinite(m))).toBe(true);
        }
      }
    }
  });
});

describe('opd: bad input', () => {
  const batch = randomBatch(4, 6, 1);
  it('names the first non-finite student logit', () => {
    const z = randn(24, 2);
    z[1 * 6 + 2] = NaN;
    expect(() => computeObjective('opd', { ...batch, studentLogits_NV: tf.tensor2d(z, [4, 6]) })).toThrow(/studentLogits_NV must be finite, found NaN at row 1, column 2/);
  });
  it('rejects bad options and missing inputs by name', () => {
    expect(() => computeObjective('opd', batch, { gamma: 1.5 })).toThrow(/opd: option gamma must be a number in \[0, 1\]/);
    expect(() => computeObjective('opd', batch, { gamma: -0.1 })).toThrow(/option gamma/);
    expect(() => computeObjective('opd', { ...batch, seqIds_N: undefined }, { gamma: 0.5 })).toThrow(/gamma > 0 needs batch.seqIds_N/);
    expect(() => computeObjective('opd', { ...batch, samplerLogprobs_N: undefined }, { advantageFrom: 'sampler' })).toThrow(/samplerLogprobs_N/);
    expect(() => computeObjective('opd', { ...batch, samplerLogprobs_N: undefined }, { importanceRatio: true })).toThrow(/samplerLogprobs_N/);
    expect(() => computeObjective('opd', batch, { advantageFrom: 'teacher' })).toThrow(/option advantageFrom must be 'student' or 'sampler'/);
    expect(() => computeObjective('opd', batch, { eta: 0 })).toThrow(/unknown option 'eta'/);
  });
  it('rejects token ids out of range and a teacher with another vocabulary', () => {
    expect(() => computeObjective('opd', { ...batch, tokens_N: Int32Array.from([0, 1, 6, 2]) })).toThrow(/tokens_N must hold token ids in \[0, 6\), found 6 at index 2/);
    expect(() => computeObjective('opd', { ...batch, teacher: { logits_NV: tf.zeros([4, 7]) as tf.Tensor2D } })).toThrow(/same vocabulary/);
  });
});

describe('opd: no tensor leaks', () => {
  const batch = randomBatch(6, 12, 4);
  for (const fused of [true, false]) {
    it(`fused ${fused}`, () => {
      for (const options of [{}, { gamma: 0.5, importanceRatio: true }]) {
        expectNoLeak(() => objectiveLossAndGrad('opd', batch, { ...options, fused }).grad_NV.dispose());
        expectNoLeak(() => computeObjective('opd', batch, { ...options, fused }).loss.dispose());
      }
    });
  }
});
