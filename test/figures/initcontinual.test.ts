/**
 * The initialisation-strength and continual-learning figures (claims C3, C8, C9; lib/figures/paper/initcontinual/):
 * each figure's traces and axis titles on a small fixed input, the quoted numbers worked by hand, the reader's and
 * the generator's messages when data or runs are missing, and the committed data file (when present) reading and
 * drawing.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { figureDataPath } from '../../lib/figures/data';
import {
  c3Numbers, c8InitNumbers, c9Numbers, fig10WeakInitCurves, fig2cWarmupStrength, generateInitContinualData, icArmStyle,
  readInitContinualData, table1InitStrength, table2ContinualLearning, type ContinualArm, type InitArm, type InitContinualData,
} from '../../lib/figures/paper';
import { paperCells } from '../../lib/figures/sweeps';
import { methodStyle, type PlotlyTrace } from '../../lib/figures/theme';

// 3 seeds, evaluations at steps 0, 50, 100; the arm's values are shifted by `off`
function initArm(off: number, warmupSteps: number): InitArm {
  return {
    seeds: [0, 1, 2],
    runKeys: ['a', 'b', 'c'],
    warmupSteps,
    evalStep: [0, 50, 100],
    pass1: [[0.1, 0.05, 0.2], [0.1, 0.05, 0.3], [0.1, 0.05, 0.4]].map((s) => s.map((x) => x + off)),
    pass4: [[0.3, 0.3, 0.3], [0.3, 0.3, 0.3], [0.3, 0.3, 0.3]],
    pass8: [[0.5, 0.5, 0.5], [0.5, 0.5, 0.6], [0.5, 0.5, 0.7]],
  };
}

// S = 20 math steps, C = 30 tool steps; math at 0, 10, 20, 30, 40, 50; tool at 0, 20, 30, 40, 50
function contArm(method: string, warmupSteps: number, toolEnd: number[]): ContinualArm {
  return {
    seeds: [0, 1, 2],
    runKeys: ['a', 'b', 'c'],
    method,
    warmupSteps,
    distillSteps: 20,
    continualSteps: 30,
    mathStep: [0, 10, 20, 30, 40, 50],
    mathPass1: [[0.1, 0.1, 0.2, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.1, 0.1, 0.05], [0.1, 0.1, 0.2, 0.1, 0.1, 0]],
    mathPass8: [[0.4, 0.4, 0.5, 0.4, 0.4, 0.3], [0.4, 0.4, 0.5, 0.4, 0.4, 0.3], [0.4, 0.4, 0.5, 0.4, 0.4, 0.3]],
    toolStep: [0, 20, 30, 40, 50],
    toolPass1: toolEnd.map((e) => [0.2, 0.2, 0.25, 0.3, e]),
    toolPass8: toolEnd.map(() => [0.6, 0.6, 0.7, 0.7, 0.8]),
  };
}

const DATA: InitContinualData = {
  source: {},
  init: {
    weak: { opd: initArm(0, 100), exopd: initArm(0.01, 100), gkd: initArm(0.02, 100), aopd: initArm(0.03, 100) },
    strong: { opd: initArm(0.1, 300), exopd: initArm(0.11, 300), gkd: initArm(0.12, 300), aopd: initArm(0.13, 300) },
  },
  continual: {
    opd: contArm('opd', 300, [0.3, 0.4, 0.5]),
    exopd: contArm('gopd', 300, [0.3, 0.3, 0.3]),
    gkd: contArm('gkd', 300, [0.3, 0.3, 0.3]),
    aopd: contArm('aopd', 300, [0.6, 0.6, 0.6]),
    'opd-weak': contArm('opd', 100, [0, 0, 0]),
  },
};

const dir = mkdtempSync(join(tmpdir(), 'opdlab-initcontinual-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const names = (data: PlotlyTrace[]) => data.map((t) => t.name as string);
const title = (axis: unknown) => (axis as { title: { text: string } }).title.text;
const round = (xs: unknown) => (xs as number[]).map((v) => Number(v.toFixed(12)));

describe('styles', () => {
  it('exopd takes G-OPD colour with its own label; opd-weak is OPD dotted; unknown arms throw', () => {
    expect(icArmStyle('exopd').colour).toBe(methodStyle('gopd').colour);
    expect(icArmStyle('exopd').label).toMatch(/ExOPD/);
    expect(icArmStyle('opd-weak')).toMatchObject({ colour: methodStyle('opd').colour, dash: 'dot' });
    expect(() => icArmStyle('nope')).toThrow(/unknown method/);
  });
});

describe('figures', () => {
  it('table1InitStrength: per panel (pass@1/4/8) one bar trace per warm-up over the four methods, CIs as error bars', () => {
    const f = table1InitStrength(DATA);
    expect(f.data).toHaveLength(6);
    expect(names(f.data).slice(0, 2)).toEqual(['weak warm-up (100 SFT steps), mean of 3 seeds', 'strong warm-up (300 SFT steps), mean of 3 seeds']);
    expect(f.data[0].x).toEqual(['OPD', 'ExOPD (G-OPD λ 1.25)', 'GKD', 'AOPD']);
    // weak pass@1 final: 0.2, 0.3, 0.4 + off -> means 0.3, 0.31, 0.32, 0.33
    expect(round(f.data[0].y)).toEqual([0.3, 0.31, 0.32, 0.33]);
    const ci = (f.data[0].error_y as { array: number[] }).array;
    expect(ci[0]).toBeCloseTo((4.303 * 0.1) / Math.sqrt(3), 12);
    expect(f.data[4].xaxis).toBe('x3');
    expect(round(f.data[4].y)).toEqual([0.6, 0.6, 0.6, 0.6]); // pass@8 final 0.5, 0.6, 0.7
    expect(f.layout!.barmode).toBe('group');
    expect(title(f.layout!.yaxis)).toBe('pass@1 (held-out math)');
    expect(title(f.layout!.yaxis3)).toBe('pass@8 (held-out math)');
    expect(f.data.filter((t) => t.showlegend).length).toBe(2);
  });

  it('table1InitStrength with one seed: CIs become null (no error bar), no throw', () => {
    const one: InitContinualData = { ...DATA, init: { weak: { opd: { ...initArm(0, 100), seeds: [0], runKeys: ['a'], pass1: [[0.1, 0.1, 0.2]], pass4: [[0.2, 0.2, 0.2]], pass8: [[0.3, 0.3, 0.3]] } } } };
    const f = table1InitStrength(one);
    expect((f.data[0].error_y as { array: unknown[] }).array).toEqual([null]);
    expect(Number.isNaN(c8InitNumbers(one)['c8/init_weak_pass1_final_opd_ci95'])).toBe(true);
  });

  it('fig10WeakInitCurves: one band + mean per method, weak panel left, strong on x2/y2', () => {
    const f = fig10WeakInitCurves(DATA);
    expect(f.data).toHaveLength(24);
    const means = f.data.filter((t) => String(t.name).includes('mean of'));
    expect(means.map((t) => t.name).slice(0, 4)).toEqual(['OPD (mean of 3 seeds)', 'ExOPD (G-OPD λ 1.25) (mean of 3 seeds)', 'GKD (mean of 3 seeds)', 'AOPD (mean of 3 seeds)']);
    expect(round(means[0].y)).toEqual([0.1, 0.05, 0.3]);
    expect(means[4].xaxis).toBe('x2');
    expect(means[4].showlegend).toBe(false);
    expect(round(f.data[0].y)).toEqual([0.1, 0.05, 0.4]); // max band of weak OPD
    expect(title(f.layout!.xaxis)).toMatch(/weak warm-up \(100 SFT steps\)/);
    expect(title(f.layout!.xaxis2)).toMatch(/strong warm-up \(300 SFT steps\)/);
    expect(title(f.layout!.yaxis)).toBe('pass@1 (held-out math)');
    expect((f.layout!.yaxis2 as { matches: string }).matches).toBe('y');
  });

  it('table2ContinualLearning: math and tool panels, before (step S) / after (S + C) bars, opd-weak left out', () => {
    const f = table2ContinualLearning(DATA);
    expect(f.data).toHaveLength(4);
    expect(f.data[0].x).toEqual(['OPD', 'ExOPD (G-OPD λ 1.25)', 'GKD', 'AOPD']);
    expect(names(f.data)).toEqual(['after the math stage (step 20)', 'after the tool stage (step 50)', 'after the math stage (step 20)', 'after the tool stage (step 50)']);
    expect(round(f.data[0].y)).toEqual([0.2, 0.2, 0.2, 0.2]);
    expect(round(f.data[1].y)).toEqual([0.05, 0.05, 0.05, 0.05]); // (0.1 + 0.05 + 0) / 3
    expect(round(f.data[3].y)).toEqual([0.4, 0.3, 0.3, 0.6]);
    expect(f.data[3].yaxis).toBe('y2');
    expect(title(f.layout!.yaxis)).toMatch(/math pass@1/);
    expect(title(f.layout!.yaxis2)).toMatch(/tool-call success/);
  });

  it('fig2cWarmupStrength: OPD weak/strong math curves left, tool curves of opd and opd-weak right, a line at S', () => {
    const f = fig2cWarmupStrength(DATA);
    expect(f.data).toHaveLength(12);
    const means = f.data.filter((t) => String(t.name).includes('mean of'));
    expect(means.map((t) => t.name)).toEqual([
      'OPD, weak warm-up (100 SFT steps) (mean of 3 seeds)', 'OPD, strong warm-up (300 SFT steps) (mean of 3 seeds)',
      'OPD, strong warm-up (300 SFT steps) (mean of 3 seeds)', 'OPD, weak warm-up (100 SFT steps) (mean of 3 seeds)',
    ]);
    expect(means[2].x).toEqual([0, 20, 30, 40, 50]);
    expect(round(means[2].y)).toEqual([0.2, 0.2, 0.25, 0.3, 0.4]);
    expect(means[2].yaxis).toBe('y2');
    expect((f.layout!.shapes as { x0: number }[])[0].x0).toBe(20);
    expect((f.layout!.title as { text: string }).text).toMatch(/math distillation \(100 steps\)/);
    expect(title(f.layout!.yaxis2)).toMatch(/tool-call success/);
  });
});

describe('numbers', () => {
  it('c8 (weak vs strong) matches hand computations', () => {
    const n = c8InitNumbers(DATA);
    expect(n['c8/init_weak_pass1_final_opd']).toBeCloseTo(0.3, 12);
    expect(n['c8/init_strong_pass1_final_aopd']).toBeCloseTo(0.43, 12);
    expect(n['c8/init_weak_pass1_final_opd_ci95']).toBeCloseTo((4.303 * 0.1) / Math.sqrt(3), 12);
    expect(n['c8/init_weak_pass8_final_gkd']).toBeCloseTo(0.6, 12);
    expect(n['c8/init_weak_pass4_final_gkd_ci95']).toBe(0);
    // gain per seed: 0.1, 0.2, 0.3 -> 0.2
    expect(n['c8/init_weak_pass1_gain_opd']).toBeCloseTo(0.2, 12);
    expect(n['c8/init_weak_pass1_initial_opd']).toBeCloseTo(0.1, 12);
    expect(n['c8/init_weak_pass1_min_opd']).toBeCloseTo(0.05, 12);
    expect(n['c8/init_weak_pass1_min_step_opd']).toBe(50);
    expect(n['c8/init_weak_pass1_dip_opd']).toBeCloseTo(0.05, 12);
    // aopd - opd per seed: 0.03 each -> 0.03 with no spread
    expect(n['c8/init_strong_pass1_aopd_minus_opd']).toBeCloseTo(0.03, 12);
    expect(n['c8/init_strong_pass1_aopd_minus_opd_ci95']).toBeCloseTo(0, 12);
  });

  it('c9 matches hand computations', () => {
    const n = c9Numbers(DATA);
    expect(n['c9/math_pass1_before_opd']).toBeCloseTo(0.2, 12);
    expect(n['c9/math_pass1_after_opd']).toBeCloseTo(0.05, 12);
    expect(n['c9/math_pass1_drop_opd']).toBeCloseTo(0.15, 12);
    // after: 0.1, 0.05, 0 -> s = 0.05
    expect(n['c9/math_pass1_after_opd_ci95']).toBeCloseTo((4.303 * 0.05) / Math.sqrt(3), 12);
    expect(n['c9/math_retention_opd']).toBeCloseTo(0.25, 12);
    expect(n['c9/math_pass8_after_aopd']).toBeCloseTo(0.3, 12);
    expect(n['c9/tool_pass1_start_opd']).toBeCloseTo(0.2, 12);
    expect(n['c9/tool_pass1_after_opd']).toBeCloseTo(0.4, 12);
    expect(n['c9/tool_pass1_gain_aopd']).toBeCloseTo(0.4, 12);
    expect(n['c9/tool_pass1_after_opd-weak']).toBe(0);
  });

  it('c3 matches hand computations', () => {
    const n = c3Numbers(DATA);
    expect(n['c3/opd_math_pass1_gain_weak']).toBeCloseTo(0.2, 12);
    expect(n['c3/opd_math_pass1_final_strong']).toBeCloseTo(0.4, 12);
    expect(n['c3/continual_tool_pass1_after_strong']).toBeCloseTo(0.4, 12);
    expect(n['c3/continual_tool_pass1_gain_strong']).toBeCloseTo(0.2, 12);
    expect(n['c3/continual_tool_pass1_after_weak']).toBe(0);
    expect(n['c3/continual_tool_pass1_gain_weak']).toBeCloseTo(-0.2, 12);
  });
});

describe('data and runs', () => {
  it('a missing data file names the reproduce command; a bad one names the field', () => {
    expect(() => readInitContinualData(join(dir, 'nowhere', 'initcontinual.json'))).toThrow(/initcontinual\.json is missing; make it with: .*opdlab\.js reproduce --only initcontinual/);
    const p = join(dir, 'bad.json');
    writeFileSync(p, JSON.stringify({ ...DATA, init: { weak: { opd: { ...initArm(0, 100), pass4: [[0.1, 0.2, 0.3], [0.1]] } } } }));
    expect(() => readInitContinualData(p)).toThrow(/init\.weak\.opd\.pass4 must hold one series per seed \(3\)/);
    writeFileSync(p, JSON.stringify({ ...DATA, continual: { opd: { ...contArm('opd', 300, [0, 0, 0]), distillSteps: 25 } } }));
    expect(() => readInitContinualData(p)).toThrow(/continual\.opd: no evaluation at the end of the math stage \(step 25\)/);
    writeFileSync(p, '{');
    expect(() => readInitContinualData(p)).toThrow(/not valid JSON/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify(DATA));
    expect(Object.keys(readInitContinualData(ok).continual)).toEqual(['opd', 'exopd', 'gkd', 'aopd', 'opd-weak']);
  });

  it('the generator names the reproduce command when runs are missing', () => {
    expect(() => generateInitContinualData({ runsRoot: join(dir, 'runs'), out: null })).toThrow(/spec 'init' \(full\): 24 of 24 runs are not finished .*Make them with: .*reproduce --only-runs --specs init/);
  });

  it('the specs: init strong OPD is the dynamics OPD run; continual is one global setting with a tool prior', () => {
    const dyn = new Set(paperCells('dynamics', 'full').map((c) => c.key));
    expect(paperCells('init', 'full').filter((c) => dyn.has(c.key)).map((c) => c.name)).toEqual([
      'warmup=strong,method=opd,seed=0', 'warmup=strong,method=opd,seed=1', 'warmup=strong,method=opd,seed=2',
    ]);
    const cont = paperCells('continual', 'full');
    expect(cont).toHaveLength(15);
    for (const c of cont) {
      expect(c.config.warmup.continualShare).toBe(0.5);
      expect(c.config.continual).toMatchObject({ steps: 30, task: { name: 'tool', options: { maxItems: 1, maxNumber: 9 } } });
      expect(c.config.warmup.steps).toBe(c.values.method === 'opd-weak' ? 300 : 700);
    }
  });

  it.runIf(existsSync(figureDataPath('initcontinual.json')))('the committed data/figures/initcontinual.json reads and draws', () => {
    const d = readInitContinualData(figureDataPath('initcontinual.json'));
    expect(Object.keys(d.init).sort()).toEqual(['strong', 'weak']);
    for (const arms of Object.values(d.init)) for (const a of Object.values(arms)) expect(a.seeds).toHaveLength(3);
    for (const a of Object.values(d.continual)) expect(a.seeds).toHaveLength(3);
    expect(table1InitStrength(d).data).toHaveLength(6);
    expect(table2ContinualLearning(d).data).toHaveLength(4);
  });
});
