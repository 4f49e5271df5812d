/**
 * The training-dynamics figures of claims C5, C7, C8 (lib/figures/paper/fig4a.ts, fig5.ts, fig6.ts and
 * generateDynamics.ts): the seed band against a hand computation, each figure's traces and axis titles on a small
 * fixed input, the quoted numbers worked by hand, and the clear errors when data or runs are missing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { figureDataPath } from '../../lib/figures/data';
import {
  c5Numbers, c7Numbers, c8Numbers, fig4aGradientNorm, fig5Entropy, fig6TrainingCurves, generateDynamicsData,
  readDynamicsData, seedBand, seedStats, t975, type DynamicsData, type MethodCurves,
} from '../../lib/figures/paper';
import { methodStyle, type PlotlyTrace } from '../../lib/figures/theme';

// 3 seeds x 4 training steps x 3 evaluations per method; method m's values are offset by `off`
function curves(off: number, ratio: boolean): MethodCurves {
  const c: MethodCurves = {
    seeds: [0, 1, 2],
    runKeys: ['a', 'b', 'c'],
    trainStep: [1, 2, 3, 4],
    gradNorm: [[1, 2, 3, 4], [2, 2, 2, 2], [6, 2, 1, 0].map((x) => x)].map((s) => s.map((x) => x + off)),
    entropy: [[0.5, 0.5, 0.5, 1], [0.5, 0.5, 0.5, 2], [0.5, 0.5, 0.5, 6]].map((s) => s.map((x) => x + off)),
    evalStep: [0, 10, 20],
    pass1: [[0.1, 0.05, 0.2], [0.1, 0.05, 0.3], [0.1, 0.05, 0.4]].map((s) => s.map((x) => x + off / 100)),
    pass4: [[0.2, 0.2, 0.2], [0.2, 0.2, 0.2], [0.2, 0.2, 0.2]],
    pass8: [[0.4, 0.5, 0.6], [0.4, 0.5, 0.6], [0.4, 0.5, 0.6]],
  };
  if (ratio) c.interventionRatio = [[0.4, 0.4, 0.3, 0.3], [0.4, 0.4, 0.3, 0.3], [0.4, 0.4, 0.3, 0.3]];
  return c;
}
const INPUT = { opd: curves(0, false), aopd: curves(1, true), gkd: curves(2, false) };

const dir = mkdtempSync(join(tmpdir(), 'opdlab-dynamics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const traceNames = (data: PlotlyTrace[]) => data.map((t) => t.name as string);
const title = (axis: unknown) => ((axis as { title: { text: string } }).title.text);

describe('seed band', () => {
  it('matches a hand computation: mean, min, max and the t-based 95% half-width', () => {
    // values 1, 2, 6: mean 3; deviations -2, -1, 3 -> s^2 = (4 + 1 + 9) / 2 = 7; half-width t_{0.975,2} sqrt(7) / sqrt(3)
    const s = seedStats([1, 2, 6]);
    expect(s.mean).toBe(3);
    expect(s.min).toBe(1);
    expect(s.max).toBe(6);
    expect(s.ci95).toBeCloseTo(4.303 * Math.sqrt(7 / 3), 12);
    expect(s.ci95).toBeCloseTo(6.5729, 3);
    expect(seedStats([5]).ci95).toBeNaN();
    expect(t975(2)).toBe(4.303);
    expect(t975(100)).toBe(1.96);
    const b = seedBand([[1, 0], [2, 0], [6, 0]]);
    expect(b.mean).toEqual([3, 0]);
    expect(b.min).toEqual([1, 0]);
    expect(b.max).toEqual([6, 0]);
    expect(b.ci95[1]).toBe(0); // identical seeds: no spread
  });

  it('rejects ragged or empty input, naming what was expected', () => {
    expect(() => seedBand([[1, 2], [1]])).toThrow(/series 1 has 1 steps, expected 2/);
    expect(() => seedBand([])).toThrow(/at least one series/);
    expect(() => seedStats([])).toThrow(/at least one number/);
  });
});

describe('figures', () => {
  it('fig4aGradientNorm: band + mean per method in the method colours, log y axis, titles', () => {
    const f = fig4aGradientNorm(INPUT);
    expect(f.data).toHaveLength(9);
    expect(traceNames(f.data).filter((n) => n.includes('mean of'))).toEqual(['OPD (mean of 3 seeds)', 'AOPD (mean of 3 seeds)', 'GKD (mean of 3 seeds)']);
    const opd = f.data.slice(0, 3);
    expect(opd[0].y).toEqual([6, 2, 3, 4]); // max over seeds per step
    expect(opd[1].y).toEqual([1, 2, 1, 0]); // min
    expect(opd[1].fill).toBe('tonexty');
    expect(opd[2].y).toEqual([3, 2, 2, 2]); // mean: (1+2+6)/3, (2+2+2)/3, (3+2+1)/3, (4+2+0)/3
    expect((opd[2].line as { color: string }).color).toBe(methodStyle('opd').colour);
    expect(title(f.layout!.xaxis)).toBe('training step');
    expect(title(f.layout!.yaxis)).toMatch(/gradient norm/);
    expect((f.layout!.yaxis as { type: string }).type).toBe('log');
    expect((f.layout!.title as { text: string }).text).toMatch(/mean over 3 seeds; band: min to max over seeds/);
  });

  it('fig5Entropy: one band + mean per method, entropy axis', () => {
    const f = fig5Entropy(INPUT);
    expect(f.data).toHaveLength(9);
    expect(f.data[5].y).toEqual([1.5, 1.5, 1.5, 4]); // aopd (offset 1): mean of 2, 3, 7 at the last step
    expect(title(f.layout!.yaxis)).toMatch(/entropy.*nats/);
    expect(title(f.layout!.xaxis)).toBe('training step');
  });

  it('fig6TrainingCurves: pass@1 panel and pass@8 panel on the second axes', () => {
    const f = fig6TrainingCurves(INPUT);
    expect(f.data).toHaveLength(18);
    expect(f.data.slice(0, 9).every((t) => t.xaxis === undefined)).toBe(true);
    expect(f.data.slice(9).every((t) => t.xaxis === 'x2' && t.yaxis === 'y2' && t.showlegend === false)).toBe(true);
    expect(f.data[2].x).toEqual([0, 10, 20]);
    expect((f.data[2].y as number[]).map((v) => Number(v.toFixed(12)))).toEqual([0.1, 0.05, 0.3]);
    expect(title(f.layout!.yaxis)).toBe('pass@1 (held-out math)');
    expect(title(f.layout!.yaxis2)).toBe('pass@8 (held-out math)');
    expect(title(f.layout!.xaxis2)).toBe('training step');
  });
});

describe('numbers', () => {
  it('c5, c7, c8 match hand computations', () => {
    const n5 = c5Numbers(INPUT);
    // opd per-seed means over all steps: 2.5, 2, 2.25 -> 2.25; aopd is +1 -> 3.25
    expect(n5['c5/gradnorm_mean_opd']).toBeCloseTo(2.25, 12);
    expect(n5['c5/gradnorm_mean_aopd']).toBeCloseTo(3.25, 12);
    expect(n5['c5/gradnorm_mean_ratio_aopd_over_opd']).toBeCloseTo(3.25 / 2.25, 12);
    // per-seed spread 2.5, 2, 2.25: s^2 = (0.0625 + 0.0625 + 0) / 2 = 0.0625 -> s = 0.25
    expect(n5['c5/gradnorm_mean_opd_ci95']).toBeCloseTo((4.303 * 0.25) / Math.sqrt(3), 12);
    // final = last 10% of 4 steps = the last step: 4, 2, 0 -> 2
    expect(n5['c5/gradnorm_final_opd']).toBeCloseTo(2, 12);
    const n7 = c7Numbers(INPUT);
    expect(n7['c7/entropy_final_opd']).toBeCloseTo(3, 12); // last step 1, 2, 6
    expect(n7['c7/entropy_final_opd_ci95']).toBeCloseTo(4.303 * Math.sqrt(7 / 3), 12);
    expect(n7['c7/entropy_final_gkd']).toBeCloseTo(5, 12);
    expect(n7['c7/entropy_first_aopd']).toBeCloseTo(1.5, 12);
    const n8 = c8Numbers(INPUT);
    expect(n8['c8/pass1_final_opd']).toBeCloseTo(0.3, 12);
    expect(n8['c8/pass1_final_opd_ci95']).toBeCloseTo((4.303 * 0.1) / Math.sqrt(3), 12);
    expect(n8['c8/pass1_initial_opd']).toBeCloseTo(0.1, 12);
    expect(n8['c8/pass1_min_opd']).toBeCloseTo(0.05, 12);
    expect(n8['c8/pass1_min_step_opd']).toBe(10);
    expect(n8['c8/pass8_final_gkd']).toBeCloseTo(0.6, 12);
    expect(n8['c8/pass8_final_gkd_ci95']).toBe(0);
  });
});

describe('data and runs', () => {
  it('a missing data file names the sweep and the generate command; a bad one names the field', () => {
    expect(() => readDynamicsData(join(dir, 'nowhere', 'dynamics.json'))).toThrow(/dynamics\.json is missing; make it with: .*opdlab\.js sweep specs\/dynamics\.json .*figures --generate dynamics/);
    const p = join(dir, 'bad.json');
    const bad: DynamicsData = { source: {}, methods: { opd: { ...curves(0, false), entropy: [[1, 2, 3, 4], [1]] } } };
    writeFileSync(p, JSON.stringify(bad));
    expect(() => readDynamicsData(p)).toThrow(/methods\.opd\.entropy must hold one series per seed \(3\)/);
    writeFileSync(p, '{');
    expect(() => readDynamicsData(p)).toThrow(/not valid JSON/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify({ source: {}, methods: INPUT }));
    expect(Object.keys(readDynamicsData(ok).methods)).toEqual(['opd', 'aopd', 'gkd']);
  });

  it('the generator names the sweep command when runs are missing', () => {
    expect(() => generateDynamicsData({ runsRoot: join(dir, 'runs'), out: null })).toThrow(/spec 'dynamics' \(full\): 9 of 9 runs are not finished .*method=opd,seed=0.*Make them with: .*opdlab\.js reproduce --only-runs --specs dynamics/);
  });

  it('the committed data/figures/dynamics.json reads and draws', () => {
    const d = readDynamicsData(figureDataPath('dynamics.json'));
    expect(Object.keys(d.methods).sort()).toEqual(['aopd', 'gkd', 'opd']);
    for (const c of Object.values(d.methods)) expect(c.seeds).toHaveLength(3);
    expect(d.methods.aopd.interventionRatio).toHaveLength(3);
    expect(fig6TrainingCurves(d.methods).data).toHaveLength(18);
  });
});
