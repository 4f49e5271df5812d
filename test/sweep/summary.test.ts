import { describe, expect, it } from 'vitest';
import { defaultProbe } from '../../lib/backend';
import { loadFixture } from '../fixtures';
import { expectAllclose } from '../helpers';
import type { Cell } from '../../lib/sweep/spec';
import { meanCI, studentTCdf, studentTQuantile } from '../../lib/sweep/stats';
import type { CellResult } from '../../lib/sweep/store';
import { formatSummary, summarise, toCsv } from '../../lib/sweep/summary';

// closed forms: df = 1 is the Cauchy distribution, df = 2 has an explicit quantile
const cauchy = (p: number) => Math.tan(Math.PI * (p - 0.5));
const t2 = (p: number) => (2 * p - 1) / Math.sqrt(2 * p * (1 - p));

describe('Student t quantile', () => {
  it('matches the closed forms for df = 1 and df = 2', () => {
    for (const p of [0.55, 0.8, 0.95, 0.975, 0.995, 0.9999, 0.1, 0.025]) {
      expect(studentTQuantile(p, 1)).toBeCloseTo(cauchy(p), 9);
      expect(studentTQuantile(p, 2)).toBeCloseTo(t2(p), 10);
    }
    // the textbook values, by hand: t_{0.975,1} = tan(0.475 pi) = 12.7062..., t_{0.975,2} = 0.95 / sqrt(0.04875) = 4.3026...
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706204736, 8);
    expect(studentTQuantile(0.975, 2)).toBeCloseTo(4.302652730, 8);
  });

  it('inverts the CDF, is odd around p = 1/2 and tends to the normal quantile', () => {
    for (const df of [1, 3, 9.5, 40]) {
      for (const p of [0.6, 0.975, 0.999]) {
        const t = studentTQuantile(p, df);
        expect(studentTCdf(t, df)).toBeCloseTo(p, 12);
        expect(studentTQuantile(1 - p, df)).toBeCloseTo(-t, 10);
        expect(studentTCdf(-t, df)).toBeCloseTo(1 - p, 12);
      }
    }
    expect(studentTQuantile(0.5, 7)).toBe(0);
    expect(studentTQuantile(0.975, 1e7)).toBeCloseTo(1.959963985, 6);
    expect(studentTQuantile(0.975, 3)).toBeGreaterThan(studentTQuantile(0.975, 4));
  });

  it('matches mpmath (test/fixtures/gen_sweep_stats.py, 40 digits) to rtol 1e-10', () => {
    const { quantiles } = loadFixture<{ quantiles: { df: number; p: number; t: number }[] }>('sweep_stats').cases[0];
    expect(quantiles.length).toBe(72);
    expectAllclose(quantiles.map((q) => studentTQuantile(q.p, q.df)), quantiles.map((q) => q.t), { rtol: 1e-10, atol: 0 });
  });

  it('rejects p outside (0, 1) and df <= 0, naming the argument', () => {
    expect(() => studentTQuantile(1, 3)).toThrow(/studentTQuantile: p must be in \(0, 1\), got 1/);
    expect(() => studentTQuantile(0.9, 0)).toThrow(/studentTQuantile: df must be > 0, got 0/);
    expect(() => meanCI([1, NaN])).toThrow(/meanCI: values must be finite, got NaN/);
  });
});

describe('meanCI', () => {
  it('by hand: [1, 2, 4] -> mean 7/3, sd sqrt(7/3), half-width t_{0.975,2} sqrt(7/3) / sqrt(3)', () => {
    const r = meanCI([1, 2, 4]);
    expect(r.n).toBe(3);
    expect(r.mean).toBeCloseTo(7 / 3, 14);
    expect(r.sd).toBeCloseTo(Math.sqrt(7 / 3), 14); // squared deviations 16/9 + 1/9 + 25/9 = 42/9, / (n - 1) = 7/3
    const hw = (4.302652729749462 * Math.sqrt(7 / 3)) / Math.sqrt(3);
    expect(r.halfWidth).toBeCloseTo(hw, 9);
    expect(r.low).toBeCloseTo(7 / 3 - hw, 9);
    expect(r.high).toBeCloseTo(7 / 3 + hw, 9);
  });

  it('n = 1 has a mean and no interval; n = 0 has neither; equal values have a zero-width interval', () => {
    expect(meanCI([5])).toMatchObject({ n: 1, mean: 5 });
    expect(meanCI([5]).halfWidth).toBeNaN();
    expect(meanCI([]).mean).toBeNaN();
    expect(meanCI([2, 2, 2])).toMatchObject({ n: 3, mean: 2, sd: 0, halfWidth: 0, low: 2, high: 2 });
  });

  it('matches torch mean/std and mpmath t (fixture) to rtol 1e-10', () => {
    const { samples } = loadFixture<{ samples: { values: number[]; n: number; mean: number; sd: number; halfWidth: number }[] }>('sweep_stats').cases[0];
    for (const s of samples) {
      const r = meanCI(s.values);
      expect(r.n).toBe(s.n);
      expectAllclose([r.mean, r.sd, r.halfWidth], [s.mean, s.sd, s.halfWidth], { rtol: 1e-10, atol: 1e-15 });
    }
  });
});

function cell(index: number, eta: string, seed: string, key: string): Cell {
  return { index, name: `eta=${eta},seed=${seed}`, values: { eta, seed }, input: {}, config: {}, key };
}
function result(key: string, metrics: Record<string, number | null>): CellResult {
  return { key, cell: key, metrics, startedAt: '', finishedAt: '', seconds: 1, host: 'h', pid: 1 };
}

describe('summary table', () => {
  // eta=0: score 1, 2, 4 and loss 0.5 x3; eta=1: score 3, 5 (the third seed unfinished), loss 0.25 and null
  const cells = [cell(0, '0', '0', 'a0'), cell(1, '1', '0', 'b0'), cell(2, '0', '1', 'a1'), cell(3, '1', '1', 'b1'), cell(4, '0', '2', 'a2'), cell(5, '1', '2', 'b2')];
  const results = new Map<string, CellResult>([
    ['a0', result('a0', { score: 1, loss: 0.5 })],
    ['a1', result('a1', { score: 2, loss: 0.5 })],
    ['a2', result('a2', { score: 4, loss: 0.5 })],
    ['b0', result('b0', { score: 3, loss: 0.25 })],
    ['b1', result('b1', { score: 5, loss: null })],
  ]);

  it('groups by every axis but the seed and matches the hand computation', () => {
    const s = summarise(cells, results, 'seed');
    expect(s.axes).toEqual(['eta']);
    expect(s.metrics).toEqual(['loss', 'score']);
    expect(s.groups).toEqual([
      { group: { eta: '0' }, cells: 3, done: 3 },
      { group: { eta: '1' }, cells: 3, done: 2 },
    ]);
    const row = (eta: string, metric: string) => s.rows.find((r) => r.group.eta === eta && r.metric === metric)!;
    expect(row('0', 'score')).toMatchObject({ n: 3 });
    expect(row('0', 'score').mean).toBeCloseTo(7 / 3, 14);
    expect(row('0', 'score').halfWidth).toBeCloseTo((t2(0.975) * Math.sqrt(7 / 3)) / Math.sqrt(3), 9);
    expect(row('0', 'loss')).toMatchObject({ n: 3, mean: 0.5, sd: 0, halfWidth: 0 });
    // score of eta=1: [3, 5]: mean 4, sd sqrt(2), half-width t_{0.975,1} sqrt(2) / sqrt(2) = tan(0.475 pi)
    expect(row('1', 'score')).toMatchObject({ n: 2, mean: 4 });
    expect(row('1', 'score').sd).toBeCloseTo(Math.SQRT2, 14);
    expect(row('1', 'score').halfWidth).toBeCloseTo(cauchy(0.975), 8);
    // loss of eta=1: the null (non-finite) value is left out: n = 1, no interval
    expect(row('1', 'loss')).toMatchObject({ n: 1, mean: 0.25 });
    expect(row('1', 'loss').halfWidth).toBeNaN();
  });

  it('writes a CSV with one row per group and metric, NaN as empty', () => {
    const csv = toCsv(summarise(cells, results, 'seed')).split('\r\n');
    expect(csv[0]).toBe('eta,metric,n,mean,sd,ci95_low,ci95_high');
    expect(csv).toHaveLength(6); // header, 4 rows, final empty line
    expect(csv[1]).toBe('0,loss,3,0.5,0,0.5,0.5');
    expect(csv[3]).toBe('1,loss,1,0.25,,,');
    const f = csv[4].split(',');
    expect(f.slice(0, 3)).toEqual(['1', 'score', '2']);
    expect(Number(f[3])).toBe(4);
    expect(Number(f[5])).toBeCloseTo(4 - cauchy(0.975), 8);
    expect(Number(f[6])).toBeCloseTo(4 + cauchy(0.975), 8);
  });

  it('quotes labels holding commas and quotes (danfojs toCSV would not)', () => {
    const odd = [{ ...cell(0, '{"a":1,"b":2}', '0', 'k'), values: { method: '{"a":1,"b":2}', seed: '0' } }];
    const csv = toCsv(summarise(odd, new Map([['k', result('k', { m: 1 })]]), 'seed'));
    expect(csv.split('\r\n')[1]).toBe('"{""a"":1,""b"":2}",m,1,1,,,');
  });

  it('prints one row per group with mean ± half-width (n)', () => {
    const text = formatSummary(summarise(cells, results, 'seed'), ['score']);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^eta\s+done\s+score \(95% CI, n\)$/);
    expect(lines[2]).toMatch(/^0\s+3\/3\s+2\.333 ± 3\.795 \(3\)$/);
    expect(lines[3]).toMatch(/^1\s+2\/3\s+4 ± 12\.71 \(2\)$/);
  });

  it('with only a seed axis there is one group; with no results, empty rows', () => {
    const only = cells.slice(0, 1).map((c) => ({ ...c, values: { seed: '0' } }));
    const s = summarise(only, results, 'seed');
    expect(s.axes).toEqual([]);
    expect(s.rows.map((r) => [r.metric, r.n, r.mean])).toEqual([['loss', 1, 0.5], ['score', 1, 1]]);
    expect(summarise(cells, new Map(), 'seed').rows).toEqual([]);
  });
});

describe('danfojs-node install', () => {
  // its package.json override aliases @tensorflow/tfjs-node to plain tfjs; lib/backend.ts must not take that for
  // native TensorFlow (before the fix every process tried the 'tensorflow' backend and failed to start)
  const alias = (() => {
    try {
      return (require('@tensorflow/tfjs-node/package.json') as { name: string }).name !== '@tensorflow/tfjs-node';
    } catch {
      return false;
    }
  })();
  it.skipIf(!alias)('the @tensorflow/tfjs-node alias is not a native backend', () => {
    expect(() => require.resolve('@tensorflow/tfjs-node')).not.toThrow();
    expect(defaultProbe('@tensorflow/tfjs-node')).toBe(false);
    expect(defaultProbe('@tensorflow/tfjs-backend-wasm')).toBe(true);
    expect(defaultProbe('no-such-module-here')).toBe(false);
  });
});
