/**
 * The AOPD ablation figures (claims C4, C6, C10-C13; lib/figures/paper/ablations/): setting names, the seed
 * statistics, every figure's traces and axes on a small fixed input, the quoted numbers worked by hand, the zero-band
 * summary, and the clear errors when the data file or the runs are missing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { figureDataPath } from '../../lib/figures/data';
import {
  bandShares, c10Numbers, c11Numbers, c12Numbers, c13Numbers, c4Numbers, c6Numbers, earlyEvalIndices, fig11EtaAblation,
  fig3JsdFamilyDynamics, fig4bcInterventionRatio, fig7BetaAccuracy, fig8abTopK, fig8cInterventionLocation, generateAblationsData,
  headMeans, logRoughness, pairedDiff, readAblationsData, valueSlug, variantId, variantLabel, zeroBandSummary,
  type AblationsData, type VariantRuns,
} from '../../lib/figures/paper';
import { AOPD_DEFAULTS } from '../../lib/objectives/aopd';
import { methodStyle, type PlotlyTrace } from '../../lib/figures/theme';

const T = 4.303; // t_{0.975, 2}
const STEPS = Array.from({ length: 10 }, (_, i) => i + 1);

interface Make {
  /** Final pass@1 per seed (evaluation at step 10). */
  final: number[];
  /** pass@1 at step 3 per seed (the only early evaluation: 3 <= 0.3 * 10). */
  early?: number[];
  /** Intervention ratio, linear from the first to the last step (same for every seed); null = none (opd). */
  ratio?: [number, number] | null;
  gradNorm?: number[];
  entropy?: number[];
}

function variant(id: string, method: string, options: Record<string, unknown>, m: Make): VariantRuns {
  const seeds = [0, 1, 2];
  const ratio = m.ratio === undefined ? [0.5, 0.5] : m.ratio;
  const v: VariantRuns = {
    id,
    method,
    options,
    seeds,
    runKeys: ['k0', 'k1', 'k2'],
    trainStep: STEPS,
    gradNorm: seeds.map(() => m.gradNorm ?? STEPS.map(() => 1)),
    entropy: seeds.map(() => m.entropy ?? STEPS.map(() => 1)),
    zeroShare: seeds.map(() => STEPS.map(() => 0.3)),
    zeroImitated: seeds.map(() => STEPS.map(() => 0.1)),
    evalStep: [0, 3, 6, 10],
    pass1: seeds.map((_, i) => [0.1, (m.early ?? [0.2, 0.2, 0.2])[i], 0.1, m.final[i]]),
    pass8: seeds.map((_, i) => [0.5, 0.5, 0.5, m.final[i] + 0.4]),
  };
  if (ratio) v.interventionRatio = seeds.map(() => STEPS.map((t) => ratio[0] + ((ratio[1] - ratio[0]) * (t - 1)) / 9));
  return v;
}

const E = Math.E;
const VARIANTS: VariantRuns[] = [
  variant('aopd', 'aopd', {}, { final: [0.1, 0.2, 0.3], ratio: [0.6, 0.4] }),
  variant('aopd beta=1', 'aopd', { beta: 1 }, {
    final: [0, 0.05, 0.1],
    ratio: [0.5, 0.1],
    gradNorm: STEPS.map((t) => (t % 2 === 1 ? 1 : E)),
    entropy: STEPS.map((t) => (t === 3 ? 3 : 1)),
  }),
  variant('aopd eta=-0.1', 'aopd', { eta: -0.1 }, { final: [0.05, 0.1, 0.15], ratio: [0.12, 0.04] }),
  variant('aopd eta=-0.3', 'aopd', { eta: -0.3 }, { final: [0.1, 0.1, 0.1], ratio: [0.02, 0] }),
  variant('aopd topK=4', 'aopd', { topK: 4 }, { final: [0.05, 0.05, 0.05], early: [0.3, 0.3, 0.3] }),
  variant('aopd-acc', 'aopd-acc', {}, { final: [0.15, 0.15, 0.15], ratio: [0.3, 0.3] }),
  variant('aopd-zero', 'aopd-zero', {}, { final: [0.2, 0.25, 0.3], ratio: [0.2, 0.3] }),
  variant('opd', 'opd', {}, { final: [0.1, 0.12, 0.14], ratio: null }),
];
const DATA: AblationsData = {
  source: {},
  variants: Object.fromEntries(VARIANTS.map((v) => [v.id, v])),
  axes: {
    eta: [{ value: 0, variant: 'aopd' }, { value: -0.1, variant: 'aopd eta=-0.1' }, { value: -0.3, variant: 'aopd eta=-0.3' }],
    beta: [{ value: 0, variant: 'aopd' }, { value: 1, variant: 'aopd beta=1' }],
    topk: [{ value: 4, variant: 'aopd topK=4' }, { value: 16, variant: 'aopd' }],
    location: [
      { value: 'aopd', variant: 'aopd' },
      { value: 'aopd-acc', variant: 'aopd-acc' },
      { value: 'aopd-zero', variant: 'aopd-zero' },
      { value: 'aopd-eta-0.1', variant: 'aopd eta=-0.1' },
      { value: 'opd', variant: 'opd' },
    ],
  },
};

const dir = mkdtempSync(join(tmpdir(), 'opdlab-ablations-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const names = (data: PlotlyTrace[]) => data.map((t) => t.name as string);
const title = (axis: unknown) => (axis as { title: { text: string } }).title.text;
const ci = (s: number) => (T * s) / Math.sqrt(3);

describe('settings and statistics', () => {
  it('names a setting by its method and its non-default options', () => {
    expect(variantId('aopd', { ...AOPD_DEFAULTS })).toBe('aopd');
    expect(variantId('aopd', { ...AOPD_DEFAULTS, eta: -0.1 })).toBe('aopd eta=-0.1');
    expect(variantId('aopd', { ...AOPD_DEFAULTS, topK: 4, beta: 0.5 })).toBe('aopd beta=0.5 topK=4');
    expect(variantLabel({ method: 'aopd', options: { eta: -0.1 } })).toBe('AOPD η = -0.1');
    expect(variantLabel({ method: 'aopd-zero', options: {} })).toBe('AOPD-Zero');
    expect(valueSlug('eta', -0.3)).toBe('eta-0.3');
    expect(valueSlug('topk', 64)).toBe('K64');
    expect(valueSlug('beta', 0.5)).toBe('beta0.5');
    expect(valueSlug('location', 'aopd-eta-0.1')).toBe('eta-0.1');
  });

  it('head means, paired differences, early evaluations and log roughness by hand', () => {
    expect(headMeans([[1, 2, 3, 4], [4, 4, 0, 0]], 0.5)).toEqual([1.5, 4]);
    const a = DATA.variants.aopd;
    const b = { ...DATA.variants.opd, seeds: [2, 0, 5] };
    expect(pairedDiff(a, [1, 2, 3], b, [10, 20, 30])).toEqual([1 - 20, 3 - 10]); // seed 0: 1 - 20, seed 2: 3 - 10
    expect(() => pairedDiff(a, [1, 2, 3], { ...b, seeds: [7, 8, 9] }, [1, 2, 3])).toThrow(/share no seed/);
    expect(earlyEvalIndices(a)).toEqual([1]); // steps 0, 3, 6, 10: only 3 is in (0, 3]
    expect(earlyEvalIndices({ trainStep: [1, 2, 3, 4, 5, 6], evalStep: [0, 3, 6] })).toEqual([1]); // none <= 1.8: the first after 0
    // |log e - log 1| = 1 at each of the 9 steps
    expect(logRoughness([STEPS.map((t) => (t % 2 === 1 ? 1 : E))])[0]).toBeCloseTo(1, 12);
    expect(logRoughness([[2, 2, 2]])).toEqual([0]);
  });
});

describe('numbers', () => {
  it('C10: final pass@1 per beta, the paired difference to beta 0, references', () => {
    const n = c10Numbers(DATA);
    expect(n['c10/pass1_final_beta0']).toBeCloseTo(0.2, 12);
    expect(n['c10/pass1_final_beta0_ci95']).toBeCloseTo(ci(0.1), 12); // 0.1, 0.2, 0.3: s = 0.1
    expect(n['c10/pass1_final_beta1']).toBeCloseTo(0.05, 12);
    // per seed 0 - 0.1, 0.05 - 0.2, 0.1 - 0.3 = -0.1, -0.15, -0.2: mean -0.15, s = 0.05
    expect(n['c10/pass1_final_diff_beta1_minus_beta0']).toBeCloseTo(-0.15, 12);
    expect(n['c10/pass1_final_diff_beta1_minus_beta0_ci95']).toBeCloseTo(ci(0.05), 12);
    expect(n['c10/pass8_final_beta0']).toBeCloseTo(0.6, 12);
    expect(n['c10/pass1_initial']).toBeCloseTo(0.1, 12);
    expect(n['c10/pass1_final_opd']).toBeCloseTo(0.12, 12);
    // mean over the evaluations after step 0 (steps 3, 6, 10): per seed (0.2 + 0.1 + final) / 3
    expect(n['c10/pass1_mean_beta0']).toBeCloseTo((0.3 + 0.2) / 3, 12);
    expect(n['c10/pass1_mean_beta0_ci95']).toBeCloseTo(ci(0.1 / 3), 12);
    expect(n['c10/pass1_mean_diff_beta1_minus_beta0']).toBeCloseTo(-0.15 / 3, 12);
  });

  it('C4: gradient-norm roughness, entropy peak, intervention ratio per beta', () => {
    const n = c4Numbers(DATA);
    expect(n['c4/gradnorm_roughness_beta0']).toBe(0);
    expect(n['c4/gradnorm_roughness_beta1']).toBeCloseTo(1, 12);
    expect(n['c4/gradnorm_roughness_beta1_ci95']).toBe(0);
    expect(n['c4/gradnorm_mean_beta1']).toBeCloseTo((5 + 5 * E) / 10, 12);
    expect(n['c4/entropy_peak_beta1']).toBe(3);
    expect(n['c4/entropy_peak_step_beta1']).toBe(3);
    expect(n['c4/entropy_final_beta1']).toBe(1);
    expect(n['c4/ratio_initial_beta1']).toBeCloseTo(0.5, 12);
    expect(n['c4/ratio_final_beta1']).toBeCloseTo(0.1, 12);
    expect(n['c4/pass1_final_beta1']).toBeCloseTo(0.05, 12);
  });

  it('C11: final and early pass@1 per K, and the K extremes compared', () => {
    const n = c11Numbers(DATA);
    expect(n['c11/pass1_final_K4']).toBeCloseTo(0.05, 12);
    expect(n['c11/pass1_early_K4']).toBeCloseTo(0.3, 12);
    expect(n['c11/pass1_early_gain_K4']).toBeCloseTo(0.2, 12); // 0.3 - step 0's 0.1
    expect(n['c11/pass1_early_K16']).toBeCloseTo(0.2, 12);
    expect(n['c11/pass1_mean_K4']).toBeCloseTo((0.3 + 0.1 + 0.05) / 3, 12);
    expect(n['c11/pass1_early_diff_K4_minus_K16']).toBeCloseTo(0.1, 12);
    expect(n['c11/pass1_final_diff_K16_minus_K4']).toBeCloseTo(0.15, 12);
  });

  it('C12: final pass@1 per location and how many neighbouring pairs of the claimed order hold', () => {
    const n = c12Numbers(DATA);
    expect(n['c12/pass1_final_aopd-zero']).toBeCloseTo(0.25, 12);
    expect(n['c12/pass1_final_eta-0.1']).toBeCloseTo(0.1, 12);
    expect(n['c12/ratio_mean_opd']).toBe(0);
    expect(n['c12/pass1_mean_aopd-acc']).toBeCloseTo((0.2 + 0.1 + 0.15) / 3, 12);
    expect(n['c12/ratio_mean_aopd']).toBeCloseTo(0.5, 12);
    // means 0.2 > 0.15 (holds), 0.15 < 0.25, 0.25 > 0.1 (holds), 0.1 < 0.12
    expect(n['c12/pass1_final_diff_aopd_minus_aopd-acc']).toBeCloseTo(0.05, 12);
    expect(n['c12/pass1_final_diff_eta-0.1_minus_opd']).toBeCloseTo(-0.02, 12);
    expect(n['c12/pass1_final_diff_eta-0.1_minus_opd_ci95']).toBeCloseTo(ci(0.03), 12); // -0.05, -0.02, 0.01: s = 0.03
    expect(n['c12/claimed_pairs']).toBe(4);
    expect(n['c12/claimed_pairs_holding']).toBe(2);
  });

  it('C13: pass@1 and intervention ratio per eta, the largest eta below 10%', () => {
    const n = c13Numbers(DATA);
    expect(n['c13/pass1_final_eta0']).toBeCloseTo(0.2, 12);
    expect(n['c13/pass1_final_diff_eta-0.3_minus_eta0']).toBeCloseTo(-0.1, 12);
    expect(n['c13/ratio_mean_eta-0.1']).toBeCloseTo(0.08, 12);
    expect(n['c13/ratio_final_eta-0.1']).toBeCloseTo(0.04, 12);
    expect(n['c13/ratio_mean_eta-0.3']).toBeCloseTo(0.01, 12);
    expect(n['c13/eta_first_below_10pct']).toBe(-0.1);
    expect(n['c13/pass1_final_opd']).toBeCloseTo(0.12, 12);
    expect(n['c13/pass1_mean_opd']).toBeCloseTo((0.2 + 0.1 + 0.12) / 3, 12);
    expect(n['c13/pass1_mean_eta-0.3']).toBeCloseTo((0.2 + 0.1 + 0.1) / 3, 12);
  });

  it('C6: intervention ratio change over training, AOPD-Zero and the negative eta against OPD', () => {
    const n = c6Numbers(DATA);
    expect(n['c6/ratio_initial_aopd-zero']).toBeCloseTo(0.2, 12);
    expect(n['c6/ratio_final_aopd-zero']).toBeCloseTo(0.3, 12);
    expect(n['c6/ratio_change_aopd-zero']).toBeCloseTo(0.1, 12);
    expect(n['c6/ratio_change_aopd']).toBeCloseTo(-0.2, 12);
    expect(n['c6/ratio_mean_eta-0.1']).toBeCloseTo(0.08, 12);
    expect(n['c6/pass1_final_diff_aopd-zero_minus_opd']).toBeCloseTo(0.13, 12); // 0.1, 0.13, 0.16
    expect(n['c6/pass1_final_diff_aopd-zero_minus_opd_ci95']).toBeCloseTo(ci(0.03), 12);
    expect(n['c6/pass1_final_opd']).toBeCloseTo(0.12, 12);
    expect(n['c6/pass1_mean_diff_aopd-zero_minus_opd']).toBeCloseTo(0.13 / 3, 12);
  });

  it('zero band: static shares by hand; per-variant summary uses the right imitated share', () => {
    expect(bandShares([0, 0.02, -0.04, 0.2, -3], [0.01, 0.05, 1])).toEqual([
      { eps: 0.01, share: 0.2 },
      { eps: 0.05, share: 0.6 },
      { eps: 1, share: 0.8 },
    ]);
    expect(() => bandShares([])).toThrow(/at least one value/);
    const rows = Object.fromEntries(zeroBandSummary(DATA).map((r) => [r.variant, r]));
    expect(rows.opd.imitatedInBand).toBe(0);
    expect(rows['aopd-zero'].imitatedInBand).toBeCloseTo(0.25, 12); // its whole ratio, mean of 0.2 -> 0.3
    expect(rows['aopd-zero'].bandCovered).toBeCloseTo(0.25 / 0.3, 12);
    expect(rows.aopd.imitatedInBand).toBeCloseTo(0.1, 12);
    expect(rows.aopd.exact).toBe(true);
    expect(rows['aopd-acc'].exact).toBe(false);
    expect(rows.aopd.zeroShareInitial).toBeCloseTo(0.3, 12);
  });
});

describe('figures', () => {
  it('fig3JsdFamilyDynamics: three panels (log gradient norm, entropy, ratio), one band + mean per beta', () => {
    const f = fig3JsdFamilyDynamics(DATA);
    expect(f.data).toHaveLength(2 * 3 * 3);
    expect(names(f.data).filter((n) => n.includes('mean of'))).toEqual([
      'β = 0 (forward KL) (mean of 3 seeds)', 'β = 0 (forward KL) (mean of 3 seeds)', 'β = 0 (forward KL) (mean of 3 seeds)',
      'β = 1 (reverse KL) (mean of 3 seeds)', 'β = 1 (reverse KL) (mean of 3 seeds)', 'β = 1 (reverse KL) (mean of 3 seeds)',
    ]);
    const entropyMean = f.data.find((t) => t.xaxis === 'x2' && (t.name as string).startsWith('β = 1') && (t.name as string).includes('mean'))!;
    expect(entropyMean.y).toEqual(STEPS.map((t) => (t === 3 ? 3 : 1)));
    expect((f.layout!.yaxis as { type: string }).type).toBe('log');
    expect(title(f.layout!.yaxis)).toMatch(/gradient norm/);
    expect(title(f.layout!.yaxis2)).toMatch(/entropy/);
    expect(title(f.layout!.yaxis3)).toMatch(/intervention ratio/);
    expect(title(f.layout!.xaxis3)).toBe('training step');
  });

  it('fig7BetaAccuracy: mean +- CI per beta, seeds as points, warm-up and OPD references', () => {
    const f = fig7BetaAccuracy(DATA);
    expect(f.data).toHaveLength(3 + 3 + 2);
    const pts = f.data.find((t) => (t.name as string).startsWith('AOPD, final pass@1 (mean'))!;
    expect(pts.x).toEqual([0, 1]);
    expect((pts.y as number[]).map((y) => Number(y.toFixed(12)))).toEqual([0.2, 0.05]);
    expect((pts.error_y as { array: number[] }).array[0]).toBeCloseTo(ci(0.1), 12);
    const seeds = f.data.find((t) => t.name === 'AOPD, final pass@1: seeds')!;
    expect(seeds.x).toEqual([0, 0, 0, 1, 1, 1]);
    const opd = f.data.find((t) => (t.name as string).startsWith('OPD, final (mean'))!;
    expect((opd.y as number[])[0]).toBeCloseTo(0.12, 12);
    expect((opd.line as { color: string }).color).toBe(methodStyle('opd').colour);
    expect(title(f.layout!.xaxis)).toMatch(/β/);
    expect(title(f.layout!.yaxis)).toMatch(/pass@1/);
  });

  it('fig8abTopK: final pass@1 against K on a log axis, pass@1 curves per K with the early window', () => {
    const f = fig8abTopK(DATA);
    expect(f.data).toHaveLength(2 + 2 * 3);
    expect(f.data[0].x).toEqual([4, 16]);
    expect((f.layout!.xaxis as { type: string }).type).toBe('log');
    const curves = f.data.filter((t) => t.xaxis === 'x2' && (t.name as string).includes('mean of'));
    expect(names(curves)).toEqual(['K = 4 (mean of 3 seeds)', 'K = 16 (mean of 3 seeds)']);
    expect(curves[0].x).toEqual([0, 3, 6, 10]);
    expect((f.layout!.shapes as { x1: number }[])[0].x1).toBe(3);
    expect(title(f.layout!.xaxis2)).toBe('training step');
  });

  it('fig8cInterventionLocation: bars in the claimed order with the method colours', () => {
    const f = fig8cInterventionLocation(DATA);
    expect(f.data).toHaveLength(4);
    const bars = f.data[0];
    expect(bars.type).toBe('bar');
    expect(bars.x).toEqual(['AOPD', 'AOPD (acc.-filtered)', 'AOPD-Zero', 'AOPD η = -0.1', 'OPD']);
    expect((bars.y as number[]).map((y) => Number(y.toFixed(12)))).toEqual([0.2, 0.15, 0.25, 0.1, 0.12]);
    expect((bars.marker as { color: string[] }).color[0]).toBe(methodStyle('aopd').colour);
    expect((f.data[2].y as number[]).map((y) => Number(y.toFixed(12)))).toEqual([0.5, 0.3, 0.25, 0.08, 0]);
    expect(title(f.layout!.yaxis2)).toMatch(/intervention ratio/);
  });

  it('fig11EtaAblation: pass@1 and ratio against eta, OPD as the eta = -1 reference, the 10% level', () => {
    const f = fig11EtaAblation(DATA);
    expect(f.data).toHaveLength(3 + 2 + 2 + 2 + 1);
    const opd = f.data.find((t) => (t.name as string).startsWith('OPD (η = −1)') && (t.name as string).includes('mean'))!;
    expect(opd.x).toEqual([-1.05, 0.05]);
    const ratio = f.data.find((t) => (t.name as string).startsWith('intervention ratio, mean over training (mean'))!;
    expect(ratio.x).toEqual([0, -0.1, -0.3]);
    expect((ratio.y as number[]).map((y) => Number(y.toFixed(12)))).toEqual([0.5, 0.08, 0.01]);
    expect(f.data[f.data.length - 1].y).toEqual([0.1, 0.1]);
    expect(title(f.layout!.xaxis)).toBe('η');
    expect(title(f.layout!.yaxis2)).toMatch(/intervention ratio/);
  });

  it('fig4bcInterventionRatio: ratio curves of AOPD, AOPD-Zero, eta -0.1; pass@1 of AOPD-Zero, eta -0.1, OPD', () => {
    const f = fig4bcInterventionRatio(DATA);
    expect(f.data).toHaveLength(18);
    const left = f.data.filter((t) => t.xaxis === undefined && (t.name as string).includes('mean of'));
    expect(names(left)).toEqual(['AOPD (mean of 3 seeds)', 'AOPD-Zero (mean of 3 seeds)', 'AOPD η = -0.1 (mean of 3 seeds)']);
    const right = f.data.filter((t) => t.xaxis === 'x2' && (t.name as string).includes('mean of'));
    expect(right.map((t) => t.showlegend)).toEqual([false, false, true]); // AOPD-Zero and eta -0.1 are already in the legend
    expect(right[2].x).toEqual([0, 3, 6, 10]);
    expect(title(f.layout!.yaxis2)).toBe('pass@1 (held-out math)');
  });
});

describe('data and runs', () => {
  it('a missing data file names the command; a bad one names the field', () => {
    expect(() => readAblationsData(join(dir, 'nowhere', 'ablations.json'))).toThrow(/ablations\.json is missing; make it with: npm run build && node dist\/bin\/opdlab\.js reproduce --only ablations/);
    const p = join(dir, 'bad.json');
    writeFileSync(p, JSON.stringify({ ...DATA, variants: { ...DATA.variants, opd: { ...DATA.variants.opd, pass1: [[0.1]] } } }));
    expect(() => readAblationsData(p)).toThrow(/variants\['opd'\]\.pass1 must hold one series per seed \(3\)/);
    writeFileSync(p, JSON.stringify({ ...DATA, axes: { ...DATA.axes, beta: [{ value: 0.5, variant: 'aopd beta=0.5' }] } }));
    expect(() => readAblationsData(p)).toThrow(/axes\.beta names variant 'aopd beta=0\.5'/);
    writeFileSync(p, '{');
    expect(() => readAblationsData(p)).toThrow(/not valid JSON.*reproduce --only ablations/);
    writeFileSync(p, JSON.stringify(DATA));
    expect(Object.keys(readAblationsData(p).variants)).toHaveLength(8);
  });

  it('the generator names the spec and the command when runs are missing', () => {
    expect(() => generateAblationsData({ runsRoot: join(dir, 'runs'), out: null })).toThrow(/spec 'eta' \(full\): \d+ of \d+ runs are not finished .*Make them with: .*reproduce --only-runs --specs eta/);
  });

  it('the committed data/figures/ablations.json reads and draws every figure', () => {
    const d = readAblationsData(figureDataPath('ablations.json'));
    expect(d.source.mode).toBe('full');
    for (const v of Object.values(d.variants)) expect(v.seeds).toHaveLength(3);
    expect(d.variants.opd).toBeDefined();
    for (const f of [fig3JsdFamilyDynamics, fig4bcInterventionRatio, fig7BetaAccuracy, fig8abTopK, fig8cInterventionLocation, fig11EtaAblation]) {
      expect(f(d).data.length, f.name).toBeGreaterThan(0);
    }
    for (const n of [c4Numbers, c6Numbers, c10Numbers, c11Numbers, c12Numbers, c13Numbers]) expect(Object.keys(n(d)).length).toBeGreaterThan(0);
  });
});
