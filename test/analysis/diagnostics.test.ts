import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { entropyStats, summariseEntropy } from '../../lib/analysis/entropyStats';
import { gradientNorms, gradientStats } from '../../lib/analysis/gradients';
import { interventionCurve, interventionStats, sampledLogprobsFromBatch } from '../../lib/analysis/intervention';
import { topKDiagnostics, topKSweep } from '../../lib/analysis/topkDiagnostics';
import '../../lib/objectives/opd';
import type { DistillBatch } from '../../lib/objectives/types';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randn } from '../helpers';
import { disposeBatch } from '../../lib/objectives/synthetic';

const fixture = loadFixture<any>('analysis');
const upd = fixture.cases.find((c: { kind: string }) => c.kind === 'updates');

const lp = (rows: number[][]) => tf.tensor2d(rows.map((r) => r.map(Math.log)));

function fixtureBatch(): DistillBatch {
  return {
    studentLogits_NV: tf.tensor2d(upd.logits, [upd.N, upd.V]),
    tokens_N: Int32Array.from(upd.tokens),
    mask_N: Float32Array.from(upd.mask),
    seqIds_N: Int32Array.from(upd.seqIds),
    teacher: { logits_NV: tf.tensor2d(upd.teacherLogits, [upd.N, upd.V]) },
  };
}

describe('entropyStats', () => {
  // rows: uniform over 4 -> ln 4 = 1.3862944; (1/2, 1/4, 1/8, 1/8) -> 1/2 ln 2 + 1/4 ln 4 + 2/8 ln 8 = 1.75 ln 2 = 1.2130076;
  // a third row is masked out. Teacher: (1/2, 1/2, 0+, 0+) ~ ln 2 and uniform.
  // student mean (1.3862944 + 1.2130076) / 2 = 1.2996510; std (ddof 1) = |1.3862944 - 1.2130076| / sqrt 2 = 0.1225323
  it('hand-checkable', () => {
    const s = lp([[0.25, 0.25, 0.25, 0.25], [0.5, 0.25, 0.125, 0.125], [0.97, 0.01, 0.01, 0.01]]);
    const t = tf.tensor2d([[0, 0, -1e4, -1e4], [0, 0, 0, 0], [0, 0, 0, 0]]);
    const e = entropyStats({ studentLogits_NV: s, teacherLogits_NV: t, mask_N: [1, 1, 0] });
    expectAllclose(e.studentEntropy_N.slice(0, 2), [1.3862944, 1.2130076], { atol: 1e-6 });
    expectAllclose(e.teacherEntropy_N!.slice(0, 2), [0.6931472, 1.3862944], { atol: 1e-6 });
    const m = e.metrics;
    expectAllclose(
      [m['entropy/student_mean'], m['entropy/student_std'], m['entropy/student_min'], m['entropy/student_max'], m['entropy/teacher_mean'], m['entropy/gap_mean']],
      [1.2996510, 0.1225323, 1.2130076, 1.3862944, 1.0397208, (1.3862944 - 0.6931472 + 1.2130076 - 1.3862944) / 2],
      { atol: 1e-6 },
    );
    // temperature 2 flattens: entropy rises towards ln 4
    const hot = entropyStats({ studentLogits_NV: s, temperature: 2, mask_N: [1, 1, 0] });
    expect(hot.studentEntropy_N[1]).toBeGreaterThan(e.studentEntropy_N[1]);
    expect(hot.teacherEntropy_N).toBeUndefined();
    tf.dispose([s, t]);
  });

  it('matches PyTorch (T = 1 and T = 2)', () => {
    const b = fixtureBatch();
    const t = (b.teacher as { logits_NV: tf.Tensor2D }).logits_NV;
    const e = entropyStats({ studentLogits_NV: b.studentLogits_NV, teacherLogits_NV: t, mask_N: b.mask_N });
    expectAllclose(e.studentEntropy_N, upd.entropy.student, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(e.teacherEntropy_N!, upd.entropy.teacher, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose([e.metrics['entropy/student_mean'], e.metrics['entropy/student_std'], e.metrics['entropy/teacher_mean'], e.metrics['entropy/gap_mean']],
      [upd.entropy.studentMean, upd.entropy.studentStd, upd.entropy.teacherMean, upd.entropy.gapMean], { rtol: 1e-5, atol: 1e-6 });
    const hot = entropyStats({ studentLogits_NV: b.studentLogits_NV, teacherLogits_NV: t, temperature: 2 });
    expectAllclose(hot.studentEntropy_N, upd.entropy.studentT2, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(hot.teacherEntropy_N!, upd.entropy.teacherT2, { rtol: 1e-5, atol: 1e-6 });
    disposeBatch(b);
  });

  it('bad input, one token, memory', () => {
    const s = tf.tensor2d([[0, 1], [NaN, 0]]);
    expect(() => entropyStats({ studentLogits_NV: s })).toThrow(/studentLogits_NV must be finite, found NaN at row 1, column 0/);
    expect(() => entropyStats({ studentLogits_NV: s, mask_N: [0, 0] })).toThrow(/finite/);
    expect(() => summariseEntropy([1, 2], [0, 0], 'student')).toThrow(/all 2 tokens are masked out/);
    const notes: string[] = [];
    expect(summariseEntropy([0.5], undefined, 'student', notes)['entropy/student_std']).toBeNaN();
    expect(notes[0]).toMatch(/entropy\/student_std is NaN: .* needs >= 2 tokens/);
    const z = tf.tensor2d(randn(20, 1), [4, 5]);
    expectNoLeak(() => {
      entropyStats({ studentLogits_NV: z, teacherLogits_NV: z });
    });
    tf.dispose([s, z]);
  });
});

describe('gradient norms', () => {
  // rows (3, 4) -> 5, (NaN, 0) masked out (never read), (1, 0) -> 1; sequences {0, 1} and {2}
  //   token mean 3, sample variance ((5 - 3)^2 + (1 - 3)^2) / 1 = 8, std 2.8284271; batch norm sqrt(25 + 1) = 5.0990195
  //   sequence norms sqrt(25) = 5 and 1: mean 3, variance 8
  it('hand-checkable from a given gradient', () => {
    const g = gradientNorms({ data: [3, 4, NaN, 0, 1, 0], rows: 3, cols: 2 }, [1, 0, 1], [0, 0, 1]);
    expect(Array.from(g.tokenNorm_N)).toEqual([5, 0, 1]);
    expectAllclose(
      [g.metrics['grad/token_norm_mean'], g.metrics['grad/token_norm_var'], g.metrics['grad/token_norm_std'], g.metrics['grad/batch_norm'], g.metrics['grad/token_norm_max'], g.metrics['grad/seq_norm_mean'], g.metrics['grad/seq_norm_var']],
      [3, 8, 2.8284271, 5.0990195, 5, 3, 8],
      { atol: 1e-7 },
    );
  });

  // The black-hole example: pS = (0.6, 0.1, 0.3), pT = (0.2, 0.5, 0.3).
  //   row 0, y = 0, A = -ln 3: g = -A (e_0 - pS) = ln 3 (0.4, -0.1, -0.3), norm ln 3 sqrt(0.26) = 0.5601845
  //   row 1, y = 1, A = ln 5:  g = -ln 5 (e_1 - pS) = ln 5 (0.6, -0.9, 0.3), norm ln 5 sqrt(1.26) = 1.8065896
  //   token-mean over 2 tokens: batch norm sqrt(0.5601845^2 + 1.8065896^2) / 2 = 0.9457236
  it('hand-checkable through the registry (opd)', () => {
    const b: DistillBatch = {
      studentLogits_NV: lp([[0.6, 0.1, 0.3], [0.6, 0.1, 0.3]]),
      tokens_N: new Int32Array([0, 1]),
      mask_N: new Float32Array([1, 1]),
      teacher: { logits_NV: lp([[0.2, 0.5, 0.3], [0.2, 0.5, 0.3]]) },
    };
    const g = gradientStats('opd', b);
    expectAllclose(g.tokenNorm_N, [0.5601845, 1.8065896], { atol: 1e-6 });
    expectAllclose([g.metrics['grad/batch_norm']], [0.9457236], { atol: 1e-6 });
    expect(g.reduction).toBe('token-mean');
    expectAllclose([gradientStats('opd', b, {}, 'sum').metrics['grad/batch_norm']], [0.9457236 * 2], { atol: 1e-6 });
    disposeBatch(b);
  });

  it('matches PyTorch', () => {
    const b = fixtureBatch();
    const g = gradientStats('opd', b);
    const r = upd.gradNorms;
    expectAllclose(g.tokenNorm_N, r.token.map((x: number, i: number) => (upd.mask[i] ? x : 0)), { rtol: 1e-5, atol: 1e-7 });
    expectAllclose([g.metrics['grad/token_norm_mean'], g.metrics['grad/token_norm_var'], g.metrics['grad/batch_norm'], g.metrics['grad/seq_norm_var']],
      [r.tokenMean, r.tokenVar, r.batchNormTokenMean, r.seqVar], { rtol: 1e-5, atol: 1e-8 });
    expectAllclose(g.seqNorm_S!, r.seq, { rtol: 1e-5 });
    disposeBatch(b);
  });

  it('bad input and memory', () => {
    expect(() => gradientNorms({ data: [1, NaN], rows: 1, cols: 2 })).toThrow(/grad_NV must be finite, found NaN at row 0, column 1/);
    expect(() => gradientNorms({ data: [1, 2], rows: 1, cols: 2 }, [0])).toThrow(/all 1 tokens are masked out/);
    expect(() => gradientNorms({ data: [1, 2, 3], rows: 1, cols: 2 })).toThrow(/grad_NV.data must have length 2/);
    const one = gradientNorms({ data: [1, 2], rows: 1, cols: 2 });
    expect(one.metrics['grad/token_norm_var']).toBeNaN();
    expect(one.notes[0]).toMatch(/need >= 2 masked-in tokens/);
    const b = fixtureBatch();
    expectNoLeak(() => {
      gradientStats('opd', b);
    });
    disposeBatch(b);
  });
});

describe('intervention ratio', () => {
  // pT(y) = (0.2, 0.5, 0.3, 0.4), pS(y) = (0.6, 0.1, 0.3, 0.38): d = (-0.4, 0.4, 0, 0.02),
  // A = (-ln 3, ln 5, 0, ln(0.4/0.38) = 0.0512933); zero band |A| < 0.05 holds token 2 only.
  //   eta = 0: M = (1, 0, 1, 0): ratio 1/2 = zero band 1/4 (token 2) + negative 1/4 (token 0)
  //   eta = 0.05: token 3 joins, in the positive region (A >= 0.05): ratio 3/4, positive 1/4
  //   eta = -1: ratio 0 (OPD); eta = 1: ratio 1
  const input = { teacherLogprobs_N: [0.2, 0.5, 0.3, 0.4].map(Math.log), studentLogprobs_N: [0.6, 0.1, 0.3, 0.38].map(Math.log) };
  it('hand-checkable', () => {
    const s = interventionStats(input);
    expect(Array.from(s.mask_N)).toEqual([1, 0, 1, 0]);
    const m = s.metrics;
    expect([m['intervention/ratio'], m['intervention/ratio_zero_band'], m['intervention/ratio_negative'], m['intervention/ratio_positive'], m['intervention/aopd_zero_ratio']])
      .toEqual([0.5, 0.25, 0.25, 0, 0.25]);
    const p = interventionStats(input, { eta: 0.05 }).metrics;
    expect([p['intervention/ratio'], p['intervention/ratio_positive']]).toEqual([0.75, 0.25]);
    const c = interventionCurve(input, [-1, 0, 0.05, 1]);
    expect(Array.from(c.ratio_G)).toEqual([0, 0.5, 0.75, 1]);
    // masked-out tokens are neither counted nor read
    const masked = interventionStats({ ...input, teacherLogprobs_N: [...input.teacherLogprobs_N, NaN], studentLogprobs_N: [...input.studentLogprobs_N, 0], mask_N: [1, 1, 1, 1, 0] });
    expect(masked.metrics['intervention/ratio']).toBe(0.5);
    expect(masked.mask_N[4]).toBe(0);
  });

  it('parts add up; the ratio is non-decreasing in eta; eta = 0 is exactly A <= 0 (PyTorch reference)', () => {
    const b = fixtureBatch();
    const input2 = sampledLogprobsFromBatch(b);
    const c = interventionCurve(input2, upd.intervention.eta);
    const r = upd.intervention;
    expectAllclose(c.ratio_G, r.ratio, { atol: 1e-12 });
    expectAllclose(c.zeroBand_G, r.zero, { atol: 1e-12 });
    expectAllclose(c.negative_G, r.negative, { atol: 1e-12 });
    expectAllclose(c.positive_G, r.positive, { atol: 1e-12 });
    const grid = interventionCurve(input2);
    expect(grid.eta_G.length).toBe(41);
    for (let g = 0; g < 41; g++) {
      expectAllclose([grid.zeroBand_G[g] + grid.negative_G[g] + grid.positive_G[g]], [grid.ratio_G[g]], { atol: 1e-12 });
      if (g > 0) expect(grid.ratio_G[g]).toBeGreaterThanOrEqual(grid.ratio_G[g - 1]);
    }
    expect([grid.ratio_G[0], grid.ratio_G[40]]).toEqual([0, 1]);
    const s = interventionStats(input2, { eta: 0 });
    let nonPos = 0, count = 0;
    for (let i = 0; i < upd.N; i++) {
      if (!upd.mask[i]) continue;
      count++;
      if (Number(input2.teacherLogprobs_N[i as never]) - Number(input2.studentLogprobs_N[i as never]) <= 0) nonPos++;
    }
    expect(s.metrics['intervention/ratio']).toBe(nonPos / count);
    disposeBatch(b);
  });

  it('bad input and memory', () => {
    expect(() => interventionStats({ teacherLogprobs_N: [-1], studentLogprobs_N: [-1, -2] })).toThrow(/studentLogprobs_N must have length 1/);
    expect(() => interventionStats({ teacherLogprobs_N: [-1, NaN], studentLogprobs_N: [-1, -2] })).toThrow(/teacherLogprobs_N must be finite at masked-in positions, found NaN at index 1/);
    expect(() => interventionStats({ teacherLogprobs_N: [], studentLogprobs_N: [] })).toThrow(/no tokens/);
    expect(() => interventionStats(input, { eta: NaN })).toThrow(/eta must be a finite number/);
    expect(() => interventionStats(input, { zeroEps: 0 })).toThrow(/zeroEps must be a finite number > 0/);
    const b = fixtureBatch();
    expectNoLeak(() => {
      interventionStats(sampledLogprobsFromBatch(b));
    });
    disposeBatch(b);
  });
});

describe('top-K diagnostics', () => {
  // Teacher pT = (0.5, 0.3, 0.15, 0.05) on both rows; K = 2 -> S = {0, 1}, teacher mass 0.8.
  //   row 0: pS = (0.1, 0.4, 0.4, 0.1), y = 1: student mass 0.5; student top-2 {1, 2} (tie -> lower ids) -> overlap 1/2;
  //          truncated FKL 0.5 ln 5 + 0.3 ln 0.75 = 0.7184143 > 0; gap ln 0.3 - ln 0.4 = -0.2876821
  //   row 1: pS = (0.6, 0.38, 0.01, 0.01), y = 0: student mass 0.98; overlap 1;
  //          truncated FKL 0.5 ln(5/6) + 0.3 ln(0.3/0.38) = -0.1620774 < 0 -> clamped; gap ln(0.5/0.6) = -0.1823216
  //   means: student mass 0.74, student tail 0.26, teacher tail 0.2, overlap 0.75, clamp 0.5, gap -0.2350018
  it('hand-checkable', () => {
    const b: DistillBatch = {
      studentLogits_NV: lp([[0.1, 0.4, 0.4, 0.1], [0.6, 0.38, 0.01, 0.01]]),
      tokens_N: new Int32Array([1, 0]),
      mask_N: new Float32Array([1, 1]),
      teacher: { logits_NV: lp([[0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.15, 0.05]]) },
    };
    const d = topKDiagnostics(b, 2);
    const m = d.metrics;
    const want: Record<string, number> = {
      'topk/k': 2, 'topk/teacher_mass': 0.8, 'topk/teacher_mass_min': 0.8, 'topk/student_mass': 0.74, 'topk/student_mass_min': 0.5,
      'topk/student_mass_max': 0.98, 'topk/teacher_tail_mass': 0.2, 'topk/student_tail_mass': 0.26, 'topk/overlap_ratio': 0.75,
      'topk/clamp_frac': 0.5, 'topk/teacher_student_gap': -0.2350018,
    };
    for (const [k, v] of Object.entries(want)) expectAllclose([m[k]], [v], { atol: 1e-6, label: k });
    expectAllclose(d.truncatedFkl_N, [0.7184143, -0.1620774], { atol: 1e-6 });
    disposeBatch(b);
  });

  it('matches PyTorch; a top-K teacher gives the same numbers as the full one', () => {
    const b = fixtureBatch();
    const r = upd.topk;
    const d = topKDiagnostics(b, r.k);
    for (const [k, v] of Object.entries(r.metrics as Record<string, number>)) expectAllclose([d.metrics[k]], [v], { rtol: 1e-5, atol: 1e-6, label: k });
    const dump: DistillBatch = { ...b, teacher: { k: r.k, topkIds_NK: Int32Array.from(r.teacherIds), topkLogprobs_NK: Float32Array.from(r.teacherLogprobs), sampledLogprobs_N: Float32Array.from(r.teacherSampled) } };
    const e = topKDiagnostics(dump, r.k);
    for (const [k, v] of Object.entries(d.metrics)) expectAllclose([e.metrics[k]], [v], { rtol: 1e-5, atol: 1e-6, label: `dump ${k}` });
    disposeBatch(b);
  });

  it('K sweep: masses grow with K; K = V captures everything', () => {
    const b = fixtureBatch();
    const s = topKSweep(b, [1, 2, 4, upd.V]);
    const tm = s.metrics['topk/teacher_mass'];
    for (let i = 1; i < 4; i++) expect(tm[i]).toBeGreaterThanOrEqual(tm[i - 1]);
    expectAllclose([tm[3], s.metrics['topk/student_mass'][3], s.metrics['topk/overlap_ratio'][3], s.metrics['topk/clamp_frac'][3], s.metrics['topk/teacher_tail_mass'][3]], [1, 1, 1, 0, 0], { atol: 1e-6 });
    expect(Array.from(s.k_K)).toEqual([1, 2, 4, upd.V]);
    disposeBatch(b);
  });

  it('bad input and memory', () => {
    const b = fixtureBatch();
    expect(() => topKDiagnostics(b, upd.V + 1)).toThrow(/topKDiagnostics: k must be an integer in \[1, 9\], got 10/);
    expect(() => topKDiagnostics({ ...b, mask_N: new Float32Array(upd.N) }, 2)).toThrow(/all 12 tokens are masked out/);
    expect(() => topKSweep(b, [])).toThrow(/non-empty/);
    expectNoLeak(() => {
      topKDiagnostics(b, 3);
    });
    disposeBatch(b);
  });
});
