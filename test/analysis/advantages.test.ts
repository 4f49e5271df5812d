import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { advantageStats, quantileKey, specialMaskFromIds } from '../../lib/analysis/advantages';
import { axisInverse, axisTransform, histogram } from '../../lib/analysis/histogram';
import { hillEstimator } from '../../lib/analysis/tails';
import { toPlain } from '../../lib/analysis/values';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randn, rng } from '../helpers';

interface HistRef { edges: number[]; axisEdges: number[]; counts: number[]; underflow: number; overflow: number }
interface AdvCase {
  kind: 'advantages';
  advantages: number[];
  mask: number[];
  seqIds: number[];
  special: number[];
  metrics: Record<string, number>;
  histFd: HistRef;
  histSymlogFd: HistRef;
  histSturges: HistRef;
  histFixed: HistRef;
  histEdges: HistRef;
  histSymlogFixed: HistRef;
}

const fixture = loadFixture<AdvCase>('analysis');
const ref = fixture.cases.find((c) => c.kind === 'advantages')!;

describe('advantageStats: hand-checkable', () => {
  // A = [-4, -1, 0, 0.5, 2], n = 5:
  //   mean = -2.5 / 5 = -0.5; deviations -3.5, -0.5, 0.5, 1, 2.5; sum of squares 20 -> std (ddof 1) = sqrt(5)
  //   m2 = 4, m3 = (-42.875 - 0.125 + 0.125 + 1 + 15.625) / 5 = -5.25, m4 = 190.25 / 5 = 38.05
  //   G1 = sqrt(5 * 4) / 3 * (-5.25 / 4^1.5) = -0.9782797; G2 = 4 / (3 * 2) * (6 (38.05 / 16 - 3) + 6) = 1.5125
  //   sorted, linear quantiles at (n - 1) p: q01 = -4 + 0.04 * 3 = -3.88, q05 = -3.4, q25 = -1, q50 = 0,
  //   q75 = 0.5, q95 = 0.5 + 0.8 * 1.5 = 1.7, q99 = 1.94; tail_spread_ratio = (0 + 3.88) / 1.94 = 2
  //   neg part {-4, -1}: mean -2.5; pos part {0.5, 2}: mean 1.25; |A| < 0.6: {0, 0.5}; |A| < 1: the same
  //   Hill with k = 1: neg ln(4 / 1), pos ln(2 / 0.5), both ln 4 = 1.3862944
  // A sixth, masked-out token holds NaN and must not be read.
  it('five values', () => {
    const s = advantageStats(
      { advantages_N: new Float32Array([-4, -1, 0, 0.5, 2, NaN]), mask_N: new Float32Array([1, 1, 1, 1, 1, 0]) },
      { eps: [0.6, 1, 1.5], hillK: 1, histogram: { bins: 4, range: [-4, 4] } },
    );
    const m = s.metrics;
    const expected: Record<string, number> = {
      'adv/count': 5, 'adv/mean': -0.5, 'adv/std': 2.2360680, 'adv/skewness': -0.9782797, 'adv/excess_kurtosis': 1.5125,
      'adv/min': -4, 'adv/max': 2, 'adv/q01': -3.88, 'adv/q05': -3.4, 'adv/q25': -1, 'adv/q50': 0, 'adv/q75': 0.5,
      'adv/q95': 1.7, 'adv/q99': 1.94, 'adv/frac_neg': 0.4, 'adv/frac_pos': 0.4, 'adv/frac_zero': 0.2,
      'adv/neg_mean': -2.5, 'adv/pos_mean': 1.25, 'adv/frac_abs_lt_0.6': 0.4, 'adv/frac_abs_lt_1': 0.4,
      'adv/frac_abs_lt_1.5': 0.6, 'adv/hill_neg': 1.3862944, 'adv/hill_neg_k': 1, 'adv/hill_pos': 1.3862944,
      'adv/hill_pos_k': 1, 'adv/tail_spread_ratio': 2,
    };
    for (const [k, v] of Object.entries(expected)) expectAllclose([m[k]], [v], { atol: 1e-6, label: k });
    // bins of width 2 on [-4, 4]: [-4,-2) holds -4; [-2,0) holds -1; [0,2) holds 0, 0.5; [2,4] holds 2
    expect(Array.from(s.histogram.counts)).toEqual([1, 1, 2, 1]);
    expect(Array.from(s.histogram.edges)).toEqual([-4, -2, 0, 2, 4]);
    expect(Array.from(s.quantiles.values)).toEqual([m['adv/q01'], m['adv/q05'], m['adv/q25'], m['adv/q50'], m['adv/q75'], m['adv/q95'], m['adv/q99']]);
    expectAllclose(s.zeroBand.frac, [0.4, 0.4, 0.6]);
    expect(s.groups).toEqual([]);
    expect(s.notes).toEqual([]);
  });

  // Tail [8, 4, 2, 1]: k = 2 -> (ln 8 + ln 4) / 2 - ln 2 = 1.5 ln 2; k = 3 -> (ln 8 + ln 4 + ln 2) / 3 - ln 1 = 2 ln 2;
  // k = 5 is clamped to m - 1 = 3. Zeros and negatives are not part of the tail.
  it('Hill estimator', () => {
    expectAllclose([hillEstimator([1, 8, 2, 4, 0, -3], 2).xi], [1.0397208], { atol: 1e-7 });
    expect(hillEstimator([1, 8, 2, 4], 5)).toEqual({ xi: hillEstimator([1, 8, 2, 4], 3).xi, k: 3, tailSize: 4 });
    expectAllclose([hillEstimator([1, 8, 2, 4], 3).xi], [1.3862944], { atol: 1e-7 });
    expect(hillEstimator([5], 3)).toEqual({ xi: NaN, k: 0, tailSize: 1 });
  });

  it('quantile keys', () => {
    expect([0.01, 0.05, 0.5, 0.99, 1, 0.999, 0.005].map(quantileKey)).toEqual(['q01', 'q05', 'q50', 'q99', 'q100', 'q99.9', 'q0.5']);
  });

  // Two sequences: [p, a, b, c, d] and [p, e, f]: p masked (prompt). Relative bins B = 2: sequence 0 has L = 4,
  // j = 0, 1 -> bin 0, j = 2, 3 -> bin 1; sequence 1 has L = 2, j = 0 -> bin 0, j = 1 -> bin 1.
  it('splits by relative position, absolute position and class', () => {
    const adv = new Float32Array([9, 1, 2, 3, 4, 9, 5, 6]);
    const mask = new Float32Array([0, 1, 1, 1, 1, 0, 1, 1]);
    const seqIds = new Int32Array([0, 0, 0, 0, 0, 1, 1, 1]);
    const special = specialMaskFromIds([7, 1, 1, 1, 2, 7, 1, 2], [2]); // the last token of each sequence
    const s = advantageStats({ advantages_N: adv, mask_N: mask, seqIds_N: seqIds, special_N: special }, { positionBins: 2 });
    expect(s.groups.map((g) => [g.label, g.count])).toEqual([['relpos=0-0.5', 3], ['relpos=0.5-1', 3], ['special', 2], ['content', 4]]);
    expectAllclose([s.metrics['adv/relpos=0-0.5/mean'], s.metrics['adv/relpos=0.5-1/mean'], s.metrics['adv/special/mean'], s.metrics['adv/content/mean']],
      [(1 + 2 + 5) / 3, (3 + 4 + 6) / 3, (4 + 6) / 2, (1 + 2 + 3 + 5) / 4]);
    const a = advantageStats({ advantages_N: adv, mask_N: mask, seqIds_N: seqIds }, { positionEdges: [0, 1, 3, Infinity] });
    expect(a.groups.map((g) => [g.label, g.count])).toEqual([['pos=0-1', 2], ['pos=1-3', 3], ['pos=3-inf', 1]]);
    expectAllclose([a.metrics['adv/pos=0-1/mean'], a.metrics['adv/pos=1-3/mean'], a.metrics['adv/pos=3-inf/mean']], [3, (2 + 3 + 6) / 3, 4]);
    // the single-token group: std/skewness/kurtosis are NaN and the notes say why
    expect(a.metrics['adv/pos=3-inf/std']).toBeNaN();
    expect(a.notes.some((n) => n.startsWith('adv/pos=3-inf/std is NaN'))).toBe(true);
    // group histograms share the overall edges
    for (const g of a.groups) expect(Array.from(g.histogram.edges)).toEqual(Array.from(a.histogram.edges));
  });
});

describe('advantageStats: identities and limits', () => {
  it('a sample and its mirror image: skewness 0, symmetric quantiles, equal parts', () => {
    const x = randn(500, 3, 2);
    const both = Float32Array.from([...x, ...x.map((v) => -v)]);
    const m = advantageStats({ advantages_N: both }).metrics;
    expectAllclose([m['adv/mean'], m['adv/skewness'], m['adv/q50']], [0, 0, 0], { atol: 1e-9 });
    expectAllclose([m['adv/q01']], [-m['adv/q99']], { rtol: 1e-12 });
    expectAllclose([m['adv/neg_mean'], m['adv/frac_neg'], m['adv/hill_neg']], [-m['adv/pos_mean'], m['adv/frac_pos'], m['adv/hill_pos']], { rtol: 1e-12 });
  });

  it('skewness and kurtosis are invariant to a x + b (a > 0); std scales by a', () => {
    const x = Float64Array.from(randn(300, 5), (v) => Math.exp(v)); // log-normal: skewed
    const y = x.map((v) => 3 * v - 7);
    const mx = advantageStats({ advantages_N: x }).metrics;
    const my = advantageStats({ advantages_N: y }).metrics;
    expectAllclose([my['adv/skewness'], my['adv/excess_kurtosis'], my['adv/std']], [mx['adv/skewness'], mx['adv/excess_kurtosis'], 3 * mx['adv/std']], { rtol: 1e-9 });
    expect(mx['adv/skewness']).toBeGreaterThan(1);
  });

  it('Hill recovers xi = 1/alpha on a Pareto(alpha = 2) sample', () => {
    const r = rng(17);
    const x = Float64Array.from({ length: 20000 }, () => -Math.pow(1 - r(), -1 / 2)); // a negative Pareto tail
    const m = advantageStats({ advantages_N: x }, { hillK: 1000 }).metrics;
    expect(m['adv/hill_neg_k']).toBe(1000);
    expect(Math.abs(m['adv/hill_neg'] - 0.5)).toBeLessThan(0.05); // sd about xi / sqrt(k) = 0.016
    expect(m['adv/hill_pos']).toBeNaN(); // no positive tail
  });

  it('histogram: nothing is dropped; symlog edges invert', () => {
    const x = Float64Array.from(randn(400, 9, 3));
    const h = histogram(x, { bins: 10, range: [-2, 2] });
    expect(h.counts.reduce((a, c) => a + c, 0) + h.underflow + h.overflow).toBe(400);
    expect(h.underflow).toBeGreaterThan(0);
    expect(h.overflow).toBeGreaterThan(0);
    const s = histogram(x, { scale: 'symlog', linthresh: 0.1, bins: 12 });
    expect(s.counts.reduce((a, c) => a + c, 0)).toBe(400);
    expectAllclose(s.edges.map((e) => axisTransform(e, 'symlog', 0.1)), s.axisEdges, { rtol: 1e-12, atol: 1e-12 });
    for (const t of [-2.5, -0.3, 0, 0.01, 1.7]) expectAllclose([axisTransform(axisInverse(t, 'symlog', 0.1), 'symlog', 0.1)], [t], { atol: 1e-12 });
    // constant data: zero-width range widened by 0.5 each side, with a note
    const c = histogram([1, 1, 1], { bins: 2 });
    expect(Array.from(c.edges)).toEqual([0.5, 1, 1.5]);
    expect(Array.from(c.counts)).toEqual([0, 3]);
    expect(c.notes[0]).toMatch(/zero width/);
  });

  it('toPlain makes JSON-ready objects', () => {
    expect(toPlain({ a: new Float64Array([1, NaN]), b: { c: Infinity, d: 2 } })).toEqual({ a: [1, null], b: { c: null, d: 2 } });
  });
});

describe('advantageStats: NumPy reference (test/fixtures/gen_analysis.py)', () => {
  const s = advantageStats(
    { advantages_N: ref.advantages, mask_N: ref.mask, seqIds_N: ref.seqIds, special_N: ref.special },
    { positionBins: 5 },
  );
  const s2 = advantageStats({ advantages_N: ref.advantages, mask_N: ref.mask, seqIds_N: ref.seqIds }, { positionEdges: [0, 8, 32, Infinity] });
  const all = { ...s.metrics, ...s2.metrics };

  it('every overall and group metric', () => {
    const keys = Object.keys(ref.metrics);
    expect(keys.length).toBeGreaterThan(150);
    for (const k of keys) {
      expect(all[k], `missing ${k}`).toBeDefined();
      expectAllclose([all[k]], [ref.metrics[k]], { rtol: 1e-9, atol: 1e-12, label: k });
    }
    // the C1 shape: a spike at 0 and a heavier negative tail
    expect(all['adv/skewness']).toBeLessThan(0);
    expect(all['adv/hill_neg']).toBeGreaterThan(all['adv/hill_pos']);
  });

  it('histograms (FD, Sturges, fixed, explicit edges, symlog)', () => {
    const x = ref.advantages.filter((_, i) => ref.mask[i] === 1);
    const cases: [HistRef, Parameters<typeof histogram>[1]][] = [
      [ref.histFd, { bins: 'fd' }],
      [ref.histSymlogFd, { bins: 'fd', scale: 'symlog', linthresh: 0.01 }],
      [ref.histSturges, { bins: 'sturges' }],
      [ref.histFixed, { bins: 20, range: [-3, 1] }],
      [ref.histEdges, { edges: [-2, -1, -0.1, -0.01, 0, 0.01, 0.1, 0.3] }],
      [ref.histSymlogFixed, { bins: 24, scale: 'symlog', linthresh: 0.05 }],
    ];
    for (const [want, opts] of cases) {
      const h = histogram(x, opts);
      const label = JSON.stringify(opts);
      expectAllclose(h.axisEdges, want.axisEdges, { rtol: 1e-9, atol: 1e-12, label: `${label} axisEdges` });
      expectAllclose(h.edges, want.edges, { rtol: 1e-9, atol: 1e-12, label: `${label} edges` });
      expect(Array.from(h.counts), label).toEqual(want.counts);
      expect([h.underflow, h.overflow], label).toEqual([want.underflow, want.overflow]);
    }
    expect(histogram(x, { bins: 'fd' }).notes[0]).toMatch(/capped at maxBins = 200/);
    expect(s.histogram.counts.length).toBe(200);
  });
});

describe('advantageStats: bad input', () => {
  it('errors name the argument', () => {
    expect(() => advantageStats({ advantages_N: [] })).toThrow(/advantageStats: no tokens \(the input is empty\)/);
    expect(() => advantageStats({ advantages_N: [1, 2], mask_N: [0, 0] })).toThrow(/all 2 tokens are masked out/);
    expect(() => advantageStats({ advantages_N: [1, NaN, 2] })).toThrow(/advantages_N must be finite at masked-in positions, found NaN at index 1/);
    expect(() => advantageStats({ advantages_N: [1, 2], mask_N: [1, 0.5] })).toThrow(/mask_N must hold only 0 or 1/);
    expect(() => advantageStats({ advantages_N: [1, 2], mask_N: [1] })).toThrow(/mask_N must have length 2/);
    expect(() => advantageStats({ advantages_N: [1, 2] }, { epsilon: [1] } as never)).toThrow(/unknown option 'epsilon'/);
    expect(() => advantageStats({ advantages_N: [1, 2] }, { histogram: { bins: 'auto' as never } })).toThrow(/histogram.bins must be/);
    expect(() => advantageStats({ advantages_N: [1, 2], seqIds_N: [0, 1, 0] })).toThrow(/seqIds_N must have length 2/);
    expect(() => advantageStats({ advantages_N: [1, 2, 3], seqIds_N: [0, 1, 0] })).toThrow(/sequence 0 resumes at index 2/);
    expect(() => advantageStats({ advantages_N: tf.zeros([2, 2]) as never })).toThrow(/must be a rank-1 tensor/);
  });

  it('a group with no tokens is NaN with a note, never silently', () => {
    const s = advantageStats({ advantages_N: [1, -2, 3], special_N: [0, 0, 0] });
    expect(s.metrics['adv/special/count']).toBe(0);
    expect(s.metrics['adv/special/mean']).toBeNaN();
    expect(s.notes).toContain('adv/special/*: no tokens in this group, so its statistics are NaN (count 0)');
    expect(s.metrics['adv/content/mean']).toBeCloseTo(2 / 3, 12);
  });
});

describe('advantageStats: memory', () => {
  it('reads a tensor without leaking', () => {
    const a = tf.tensor1d(randn(64, 1));
    expectNoLeak(() => {
      advantageStats({ advantages_N: a });
    });
    a.dispose();
  });
});
