/**
 * The neighbours' figure group, claims C14-C18 (lib/figures/paper/neighbours/): each figure on a small fixed
 * hand-made data set (traces, axes, titles), the quoted numbers worked by hand, the reader's errors naming the
 * command, the spec's free arms (the same run keys as specs/dynamics.json's opd and specs/init.json's strong ExOPD),
 * G-OPD at lambda 1 being OPD exactly (why the spec has no such arm), and the committed data file drawing.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { figureDataPath } from '../../lib/figures/data';
import {
  neighbourArmStyle, c14Numbers, c15Numbers, c16Numbers, c17Numbers, c18Numbers, generateNeighboursData, gopdRewardScale, opdplusBias,
  pairedFinalDiff, propsSamplingError, readNeighboursData, revisitingVariance, scopeVsOpd, type NeighboursData, type SeedMeasurements,
} from '../../lib/figures/paper/neighbours';
import { GOPD_REFS, OPDPLUS_DIVERGENCES, OPDPLUS_WEIGHTS, PROPS_ARMS, REWARD_EDGES } from '../../lib/figures/paper/neighbours/simulate';
import { paperCells } from '../../lib/figures/sweeps';
import { runKey } from '../../lib/train/runKey';
import type { MethodCurves } from '../../lib/figures/paper/generateDynamics';
import { objectiveLossAndGrad } from '../../lib/objectives/registry';
import '../../lib/objectives';
import { expectAllclose, randInts, randn } from '../helpers';

const ARMS = ['opd', 'opdplus-fkl', 'opdplus-fkl-stopgrad', 'opdplus-jsd', 'opdplus-jsd-stopgrad', 'topk-rkl-topp0.9', 'opd-topp0.9', 'scope', 'exopd-lambda1.25', 'opd-props'];

// 2 seeds, 3 evaluations (steps 0, 5, 10); arm i ends at pass@1 0.1 + 0.01 i (seed 0) and 0.1 + 0.01 i + 0.02 (seed 1)
function curves(i: number): MethodCurves {
  const end = 0.1 + 0.01 * i;
  return {
    seeds: [0, 1],
    runKeys: ['k0', 'k1'],
    trainStep: [1, 2],
    gradNorm: [[1, 1], [2, 2]],
    entropy: [[0.5, 0.6], [0.5, 0.7]],
    evalStep: [0, 5, 10],
    pass1: [[0.1, 0.1, end], [0.1, 0.12, end + 0.02]],
    pass4: [[0.2, 0.2, 0.2], [0.2, 0.2, 0.2]],
    pass8: [[0.3, 0.4, 0.5 + 0.01 * i], [0.3, 0.4, 0.5 + 0.01 * i]],
  };
}

function seed(s: number): SeedMeasurements {
  const opdplus: SeedMeasurements['opdplus'] = {};
  for (const div of OPDPLUS_DIVERGENCES) {
    opdplus[div] = {
      stopGrad: div === 'reverseKL' ? { cosLogit: 1, relLogit: 1e-7, cosParam: 1, relParam: 1e-7 } : { cosLogit: -0.9 + 0.2 * s, relLogit: 3, cosParam: -0.9 + 0.2 * s, relParam: 3 + s },
      unbiased: { cosLogit: 1, relLogit: 1e-7, cosParam: 1, relParam: 2e-7 },
      unbiasedClamp6: { cosLogit: 0.99, relLogit: 0.01, cosParam: 0.99, relParam: 0.02 },
    };
  }
  const hist = (shift: number) => REWARD_EDGES.slice(0, -1).map((_, i) => (i === 24 + shift ? 10 : 0));
  return {
    seed: s,
    warmupKey: `w${s}`,
    tokens: 10,
    opdplus,
    // seed 0: var 100 / 1000 (ratio 10), seed 1: 200 / 4000 (ratio 20)
    variance: { batches: 8, params: 4, varTok: 100 * (s + 1), varSeq: 1000 * (s + 1) ** 2, meanNormSqTok: 50, meanNormSqSeq: 400, biasSqTok: 36, biasNoiseSq: 5, cosMeans: 0.9 },
    gopd: {
      histogram: { warmupStudent: hist(-2), teacherBase: hist(0), untrainedStudent: hist(4) },
      rewardMean: { warmupStudent: -1, teacherBase: 0, untrainedStudent: 2 + s },
      rewardStd: { warmupStudent: 2, teacherBase: 0.1, untrainedStudent: 3 },
      advMean: { warmupStudent: -1, teacherBase: -0.8, untrainedStudent: -1.2 },
      advNegShare: { warmupStudent: 0.6, teacherBase: 0.6, untrainedStudent: 0.7 },
      signFlip: { warmupStudent: 0, teacherBase: 0.1, untrainedStudent: 0.2 },
      tokens: 10,
    },
    props: {
      onPolicy: { kl: 2, klShared: 1, klMarginal: 0.5, tvShared: 0.4, sharedTokenShare: 0.3 },
      propsContext: { kl: 1.9, klShared: 0.5 + 0.1 * s, klMarginal: 0.5, tvShared: 0.3, sharedTokenShare: 0.3 },
      propsBatch: { kl: 2, klShared: 1, klMarginal: 0.25, tvShared: 0.4, sharedTokenShare: 0.3 },
    },
  };
}

const DATA: NeighboursData = {
  source: { mode: 'test' },
  runs: Object.fromEntries(ARMS.map((a, i) => [a, curves(i)])),
  simulation: { lambda: 1.25, refs: GOPD_REFS, rewardEdges: REWARD_EDGES, divergences: OPDPLUS_DIVERGENCES, weights: OPDPLUS_WEIGHTS, propsArms: PROPS_ARMS, seeds: [seed(0), seed(1)] },
};

const T1 = 12.706; // t_{0.975, 1}: two seeds
const dir = mkdtempSync(join(tmpdir(), 'opdlab-neighbours-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
type Trace = Record<string, unknown>;
const names = (data: Trace[]) => data.map((t) => t.name as string);
const title = (axis: unknown) => (axis as { title: { text: string } }).title.text;

describe('neighbours figures', () => {
  it('opdplusBias: cosine and relative-error bars per weight over the three divergences, then pass@1 of the five arms', () => {
    const f = opdplusBias(DATA);
    const bars = f.data.filter((t) => t.type === 'bar');
    expect(bars).toHaveLength(6); // 3 weights x (cosine, relative error)
    expect(bars[0].x).toEqual(['reverse KL', 'forward KL', 'JSD (½)']);
    // stopGrad cosine: reverse KL 1, forward KL mean(-0.9, -0.7) = -0.8
    expect((bars[0].y as number[])[0]).toBe(1);
    expect((bars[0].y as number[])[1]).toBeCloseTo(-0.8, 12);
    expect((bars[0].error_y as { array: number[] }).array[1]).toBeCloseTo((T1 * Math.sqrt(0.02)) / Math.sqrt(2), 10);
    expect(bars[1].yaxis).toBe('y2');
    const means = f.data.filter((t) => String(t.name).includes('(mean of 2 seeds)'));
    expect(means.map((t) => t.name)).toEqual(['OPD', 'OPD+ forward KL (unbiased)', 'forward KL, stop-gradient', 'OPD+ JSD (unbiased)', 'JSD, stop-gradient'].map((n) => `${n} (mean of 2 seeds)`));
    expect(means.every((t) => t.xaxis === 'x3' && t.yaxis === 'y3')).toBe(true);
    expect(title(f.layout!.yaxis)).toMatch(/cosine/);
    expect(f.layout!.yaxis2).toMatchObject({ type: 'log' });
    expect(title(f.layout!.xaxis3)).toBe('training step');
  });

  it('revisitingVariance: variance, bias and mean-norm bars for gamma 0 and 1 (no bias bar for gamma 1), and three arms', () => {
    const f = revisitingVariance(DATA);
    const [tok, seq, floor] = f.data.filter((t) => t.type === 'bar');
    expect((floor.y as number[])[1]).toBe(5); // the bias estimate's noise floor tr Cov(d) / M
    expect(tok.y).toEqual([150, 36, 50]);
    expect((seq.y as number[])[0]).toBe(2500);
    expect((seq.y as number[])[1]).toBeNaN();
    expect(names(f.data).filter((n) => n.includes('mean of'))).toEqual(['OPD (mean of 2 seeds)', 'OPD, top-p 0.9 (mean of 2 seeds)', 'Top-K RKL, top-p 0.9 (mean of 2 seeds)']);
    expect(f.layout!.yaxis).toMatchObject({ type: 'log' });
  });

  it('scopeVsOpd: avg@8 and pass@8 panels; gopdRewardScale: curves and one normalised histogram per reference; propsSamplingError: three behaviours', () => {
    const s = scopeVsOpd(DATA);
    expect(s.data.filter((t) => String(t.name).includes('mean of')).map((t) => [t.name, t.yaxis ?? 'y'])).toEqual([
      ['OPD (mean of 2 seeds)', 'y'], ['OPD (mean of 2 seeds)', 'y2'], ['SCOPE (mean of 2 seeds)', 'y'], ['SCOPE (mean of 2 seeds)', 'y2'],
    ]);
    expect(title(s.layout!.yaxis)).toMatch(/avg@8/);
    const g = gopdRewardScale(DATA);
    const hists = g.data.filter((t) => String(t.name).startsWith('reward, reference'));
    expect(hists).toHaveLength(3);
    // each seed puts all 10 tokens in bin 24 + shift: the teacherBase histogram is 1 at bin 24 (reward 0 to 0.5)
    expect((hists[1].y as number[])[24]).toBe(1);
    expect((hists[1].x as number[])[24]).toBe(0.25);
    expect((hists[0].y as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    const p = propsSamplingError(DATA);
    const bars = p.data.filter((t) => t.type === 'bar');
    expect(names(bars)).toEqual(['on-policy sampling', 'PROPS, per context (training default)', 'PROPS, one state per batch']);
    expect((bars[1].y as number[])[1]).toBeCloseTo(0.55, 12);
    expect(neighbourArmStyle('opd-props').label).toBe('OPD + PROPS sampling');
    expect(() => neighbourArmStyle('nope')).toThrow(/unknown arm 'nope'/);
  });

  it('numbers match hand computations', () => {
    const n14 = c14Numbers(DATA);
    expect(n14['c14/cos_param_forwardKL_stopGrad']).toBeCloseTo(-0.8, 12);
    expect(n14['c14/relerr_param_forwardKL_stopGrad']).toBeCloseTo(3.5, 12);
    expect(n14['c14/cos_param_reverseKL_stopGrad']).toBe(1);
    expect(n14['c14/cos_param_reverseKL_stopGrad_ci95']).toBe(0);
    // arm i ends at 0.1 + 0.01 i (+0.02 on seed 1): opdplus-fkl (i = 1) mean 0.12; minus fkl-stopgrad (i = 2): -0.01 on both seeds
    expect(n14['c14/pass1_final_opdplus-fkl']).toBeCloseTo(0.12, 12);
    expect(n14['c14/pass1_diff_fkl_unbiased_minus_stopgrad']).toBeCloseTo(-0.01, 12);
    expect(n14['c14/pass1_diff_fkl_unbiased_minus_stopgrad_ci95']).toBeCloseTo(0, 12);
    expect(n14['c14/pass1_initial']).toBeCloseTo(0.1, 12);
    const n15 = c15Numbers(DATA);
    expect(n15['c15/var_ratio_seq_over_tok']).toBeCloseTo(15, 12); // ratios 10 and 20
    expect(n15['c15/var_ratio_seq_over_tok_ci95']).toBeCloseTo((T1 * Math.sqrt(50)) / Math.sqrt(2), 10);
    expect(n15['c15/bias_rel_tok']).toBeCloseTo(Math.sqrt(36 / 400), 12);
    expect(n15['c15/mse_ratio_tok_over_seq']).toBeCloseTo(((36 + 100) / 1000 + (36 + 200) / 4000) / 2, 12);
    expect(n15['c15/pass1_diff_topk_minus_opd_topp']).toBeCloseTo(-0.01, 12); // topk i = 5, opd-topp i = 6
    const n16 = c16Numbers(DATA);
    expect(n16['c16/pass1_diff_scope_minus_opd']).toBeCloseTo(0.07, 12);
    expect(n16['c16/pass8_diff_scope_minus_opd']).toBeCloseTo(0.07, 12);
    expect(n16['c16/pass1_late_mean_opd']).toBeCloseTo(((0.1 + 0.1) / 2 + (0.12 + 0.12) / 2) / 2, 12);
    const n17 = c17Numbers(DATA);
    expect(n17['c17/reward_mean_untrainedStudent']).toBeCloseTo(2.5, 12);
    expect(n17['c17/sign_flip_teacherBase']).toBeCloseTo(0.1, 12);
    expect(n17['c17/pass1_diff_exopd_minus_opd']).toBeCloseTo(0.08, 12);
    const n18 = c18Numbers(DATA);
    expect(n18['c18/kl_shared_ratio_propsContext_over_onPolicy']).toBeCloseTo(0.55, 12);
    expect(n18['c18/kl_marginal_ratio_propsBatch_over_onPolicy']).toBeCloseTo(0.5, 12);
    expect(n18['c18/pass1_diff_props_minus_opd']).toBeCloseTo(0.09, 12);
  });

  it('one seed (quick mode) gives NaN intervals and still draws', () => {
    const one: NeighboursData = { ...DATA, runs: Object.fromEntries(Object.entries(DATA.runs).map(([a, c]) => [a, { ...c, seeds: [0], runKeys: ['k0'], gradNorm: [c.gradNorm[0]], entropy: [c.entropy[0]], pass1: [c.pass1[0]], pass4: [c.pass4[0]], pass8: [c.pass8[0]] }])), simulation: { ...DATA.simulation, seeds: [seed(0)] } };
    expect(c15Numbers(one)['c15/var_tok_ci95']).toBeNaN();
    for (const f of [opdplusBias, revisitingVariance, scopeVsOpd, gopdRewardScale, propsSamplingError]) expect(f(one).data.length).toBeGreaterThan(0);
  });

  it('pairedFinalDiff pairs by seed, not by position', () => {
    const a = curves(0);
    const b = { ...curves(3), seeds: [1, 0], pass1: [curves(3).pass1[1], curves(3).pass1[0]] };
    expectAllclose(pairedFinalDiff(a, b), [-0.03, -0.03]);
  });
});

describe('neighbours data file', () => {
  it('a missing, bad or incomplete file names the command that makes it', () => {
    expect(() => readNeighboursData(join(dir, 'none.json'))).toThrow(/missing; make it with: npm run build && node dist\/bin\/opdlab.js reproduce --only neighbours/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{');
    expect(() => readNeighboursData(bad)).toThrow(/not valid JSON.*reproduce --only neighbours/);
    const partial = join(dir, 'partial.json');
    writeFileSync(partial, JSON.stringify({ ...DATA, simulation: { ...DATA.simulation, seeds: [{ ...seed(0), props: {} }] } }));
    expect(() => readNeighboursData(partial)).toThrow(/lacks props.onPolicy.*reproduce --only neighbours/);
    const ragged = join(dir, 'ragged.json');
    writeFileSync(ragged, JSON.stringify({ ...DATA, runs: { opd: { ...curves(0), pass1: [[0.1]] } } }));
    expect(() => readNeighboursData(ragged)).toThrow(/runs.opd.pass1 must hold one series per seed/);
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, JSON.stringify(DATA));
    expect(readNeighboursData(ok).simulation.seeds).toHaveLength(2);
  });

  it('the generator names the reproduce command when runs are missing', async () => {
    await expect(generateNeighboursData({ runsRoot: join(dir, 'no-runs'), mode: 'quick', out: null })).rejects.toThrow(/reproduce --quick --only-runs --specs neighbours/);
  });

  it('the committed data/figures/neighbours.json reads and draws every figure', () => {
    const path = figureDataPath('neighbours.json');
    expect(existsSync(path), `${path} is committed (make it with reproduce --only neighbours)`).toBe(true);
    const d = readNeighboursData(path);
    expect(d.simulation.seeds.length).toBeGreaterThanOrEqual(3);
    for (const f of [opdplusBias, revisitingVariance, scopeVsOpd, gopdRewardScale, propsSamplingError]) expect(f(d).data.length).toBeGreaterThan(0);
    for (const n of [c14Numbers, c15Numbers, c16Numbers, c17Numbers, c18Numbers]) expect(Object.keys(n(d)).length).toBeGreaterThan(5);
  });
});

describe('specs/neighbours.json', () => {
  it('OPD is the same run as specs/dynamics.json\'s; ExOPD is specs/init.json\'s exopd arm up to the warm-up length', () => {
    const seed0 = (spec: string) => paperCells(spec, 'full').filter((c) => Number(c.values.seed) === 0);
    const ours = seed0('neighbours');
    const opd = ours.find((c) => c.values.method === 'opd')!;
    expect(opd.key).toBe(seed0('dynamics').find((c) => c.values.method === 'opd')!.key);
    // same objective options and every other setting: init's exopd cell at our warm-up length has our run key, so the
    // arm is free whenever init trains that warm-up length (its 'strong' level when both use the default)
    const exopd = ours.find((c) => c.values.method === 'exopd-lambda1.25')!;
    const init = seed0('init').find((c) => c.values.method === 'exopd')!;
    expect(runKey({ ...init.config, warmup: { ...init.config.warmup, steps: exopd.config.warmup.steps } })).toBe(exopd.key);
    expect(runKey({ ...init.config, warmup: { ...init.config.warmup, steps: exopd.config.warmup.steps + 1 } })).not.toBe(exopd.key);
    const arms = new Set(paperCells('neighbours', 'full').map((c) => c.values.method));
    expect([...arms].sort()).toEqual([...ARMS].sort());
  });

  it('G-OPD at lambda 1 is OPD (loss and logit gradient equal to float32 rounding), so the spec has no gopd-lambda1 arm', () => {
    const N = 6, V = 5;
    const z = randn(N * V, 21, 1.5);
    const t = randn(N * V, 22, 2);
    const batch = () => ({ studentLogits_NV: tf.tensor2d(z, [N, V]), tokens_N: randInts(N, V, 23), mask_N: Float32Array.from([1, 1, 0, 1, 1, 1]), seqIds_N: Int32Array.from([0, 0, 0, 1, 1, 1]), teacher: { logits_NV: tf.tensor2d(t, [N, V]) } });
    tf.tidy(() => {
      const g = objectiveLossAndGrad('gopd', batch(), { lambda: 1 }, 'token-mean');
      const o = objectiveLossAndGrad('opd', batch(), {}, 'token-mean');
      expect(Math.abs(g.loss - o.loss)).toBeLessThan(1e-6 * Math.abs(o.loss)); // float32 rounding of two code paths
      expectAllclose(g.grad_NV.dataSync(), o.grad_NV.dataSync(), { rtol: 1e-5, atol: 1e-7 });
      const e = objectiveLossAndGrad('gopd', { ...batch(), refLogprobs_N: new Float32Array(N).fill(-1) }, { lambda: 1.25 }, 'token-mean');
      expect(Math.abs(e.loss - o.loss)).toBeGreaterThan(1e-3); // lambda 1.25 differs
    });
  });
});
