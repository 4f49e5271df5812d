/**
 * The paper figures of claims C1 and C2 (lib/figures/paper): specs from small fixed inputs with hand-worked
 * numbers (one seed, and three seeds with a hand-worked 95% CI over the seeds), the data reader's errors, `drawPaperFigures` writing figures and numbers.json from a data folder,
 * and one paper figure rendered to PNG and SVG in headless Chromium (skipped, with the apt-get line, where the
 * browser is missing and the test is not root; test/figures/render.test.ts explains the pattern).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { figureDataPath, readC1C2Data, type C1C2Data } from '../../lib/figures/data';
import { c1Numbers, c1SeedNumbers, c2Numbers, c2SeedNumbers, drawPaperFigures, fig2aAdvantageDistribution, fig2bExplorationBlackHole, PAPER_FIGURES } from '../../lib/figures/paper';
import { ensureRenderPackages, Renderer, renderNeeds } from '../../lib/figures/render';
import { methodStyle, type PlotlyTrace } from '../../lib/figures/theme';
import { aptInstallLine, isRoot, missingSystemPackages } from '../../lib/util/system';
import { countColour, decodePng, hasPngSignature } from './png';

// 10 advantages: 4 negative, 3 exact zeros, 3 positive; |A| < 0.01 holds for 0, 0, 0, 0.001 -> 0.4
const ADV = [-5, -2, -1, -0.5, 0, 0, 0, 0.001, 0.2, 0.5];

// 3 black-hole positions; OPD's update is -A pS, forward KL's pT - pS (worked by hand)
const BH = {
  advantage: [-1, -2, -0.5],
  pS: [0.001, 0.1, 0.5],
  pT: [0.6, 0.3, 0.2],
  rank: [5, 2, 1],
  opd: [0.001, 0.2, 0.25],
  forwardKL: [0.599, 0.2, -0.3],
  opdRatio: [0.01, 0.5, 1],
  forwardKLRatio: [1, 0.6, 0],
};
const TRACKER = {
  opd: { step: [0, 5, 10], pSTop: [0.5, 0.52, 0.55], rankTop: [2, 1.8, 1.5], fracTop1: [0.5, 0.6, 0.7] },
  forwardKL: { step: [0, 5, 10], pSTop: [0.5, 0.6, 0.7], rankTop: [2, 1.5, 1.2], fracTop1: [0.5, 0.7, 0.9], pTTopMean: 0.8 },
};

// Three seeds, worked by hand. Advantages: seed 1 moves one zero out of the band (0 -> 0.05), seed 2 moves -0.5
// into it (-0.5 -> 0.005): zero-band shares 0.4, 0.3, 0.5 -> mean 0.4, s = 0.1, 95% CI t_{0.975,2} s / sqrt(3)
// = 4.303 * 0.1 / 1.7320508 = 0.248434; A < 0 shares 0.4, 0.4, 0.3.
const ADV1 = [-5, -2, -1, -0.5, 0, 0, 0.05, 0.001, 0.2, 0.5];
const ADV2 = [-5, -2, -1, 0.005, 0, 0, 0, 0.001, 0.2, 0.5];
// Trackers: OPD's last pS(top) 0.55, 0.6, 0.5 -> mean 0.55, s = 0.05, CI 4.303 * 0.05 / sqrt(3) = 0.124217;
// teacher levels 0.8, 0.7, 0.9 -> 0.8.
const tracker3 = (opd: number[], fkl: number[], pT: number) => ({
  opd: { ...TRACKER.opd, pSTop: opd },
  forwardKL: { ...TRACKER.forwardKL, pSTop: fkl, pTTopMean: pT },
});
const SEEDS3 = [
  { seed: 0, advantages: ADV, blackHole: BH, tracker: TRACKER },
  { seed: 1, advantages: ADV1, blackHole: { ...BH, opd: [0.002, 0.2, 0.25] }, tracker: tracker3([0.4, 0.5, 0.6], [0.5, 0.5, 0.5], 0.7) },
  { seed: 2, advantages: ADV2, blackHole: BH, tracker: tracker3([0.6, 0.54, 0.5], [0.5, 0.4, 0.3], 0.9) },
];
const CI3 = (s: number) => (4.303 * s) / Math.sqrt(3);

const axisTitle = (layout: Record<string, unknown>, axis: string) => ((layout[axis] as { title: { text: string } }).title.text);
const named = (data: PlotlyTrace[], name: string) => data.find((t) => t.name === name);

describe('fig2aAdvantageDistribution (C1)', () => {
  it('draws the histogram, the zero band and the quantiles with the convention in the axis title', () => {
    const fig = fig2aAdvantageDistribution({ seeds: [{ seed: 0, advantages: ADV }] });
    const layout = fig.layout!;
    expect(axisTitle(layout, 'xaxis')).toContain('A = log pT(y) - log pS(y)');
    expect(axisTitle(layout, 'xaxis')).toContain('symmetric-log');
    expect(axisTitle(layout, 'yaxis')).toBe('share of tokens');
    const bars = fig.data.filter((t) => t.type === 'bar');
    expect(bars).toHaveLength(1);
    // every value lies inside the data range, so the shares sum to 1
    expect((bars[0].y as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(fig.data.map((t) => t.name)).toEqual(expect.arrayContaining(['zero band |A| < 0.01', 'A < 0 (teacher dislikes y)', 'A > 0 (teacher prefers y)']));
    const notes = (layout.annotations as { text: string }[]).map((a) => a.text);
    expect(notes.some((t) => t.includes('|A| &lt; 0.01: 40.0% of 10 tokens'))).toBe(true);
    expect(notes.some((t) => t.startsWith('q01 = '))).toBe(true);
    expect(notes.some((t) => t.startsWith('q99 = '))).toBe(true);
    // the zero band is a shaded rectangle symmetric about 0 on the symlog axis
    const rect = (layout.shapes as { type: string; x0: number; x1: number }[]).find((s) => s.type === 'rect')!;
    expect(rect.x0).toBeCloseTo(-rect.x1, 15);
    expect(rect.x1).toBeCloseTo(Math.log10(2), 12); // t(0.01) = log10(1 + 0.01 / 0.01) with linthresh 0.01
  });

  it('c1Numbers: hand-worked shares and quantiles', () => {
    const n = c1Numbers({ seeds: [{ seed: 0, advantages: ADV }] });
    expect(n['c1/tokens']).toBe(10);
    expect(n['c1/zero_band_share']).toBeCloseTo(0.4, 15);
    expect(n['c1/zero_band_share_eps_0.1']).toBeCloseTo(0.4, 15);
    expect(n['c1/zero_band_share_eps_0.001']).toBeCloseTo(0.3, 15);
    expect(n['c1/frac_neg']).toBeCloseTo(0.4, 15);
    expect(n['c1/frac_pos']).toBeCloseTo(0.3, 15);
    expect(n['c1/q50']).toBe(0);
    // numpy 'linear': h = (n - 1) q = 0.09 -> -5 + 0.09 (-2 - -5) = -4.73; q99: h = 8.91 -> 0.2 + 0.91 (0.3) = 0.473
    expect(n['c1/q01']).toBeCloseTo(-4.73, 12);
    expect(n['c1/q99']).toBeCloseTo(0.473, 12);
    expect(n['c1/skewness']).toBeLessThan(0); // the long left tail
    // mirroring the data flips the sign of the skewness and swaps the tails
    const m = c1Numbers({ seeds: [{ seed: 0, advantages: ADV.map((a) => -a) }] });
    expect(m['c1/skewness']).toBeCloseTo(-n['c1/skewness'], 12);
    expect(m['c1/q99']).toBeCloseTo(-n['c1/q01'], 12);
    // one seed: the numbers are that seed's (c1SeedNumbers), the interval undefined
    expect(n['c1/q01']).toBe(c1SeedNumbers(ADV)['c1/q01']);
    expect(n['c1/zero_band_share_ci95']).toBeNaN();
    expect(n['c1/seeds']).toBe(1);
  });

  it('c1Numbers over 3 seeds: mean and hand-worked 95% CI, settings kept as they are', () => {
    const n = c1Numbers({ seeds: SEEDS3 });
    expect(c1SeedNumbers(ADV1)['c1/zero_band_share']).toBeCloseTo(0.3, 15);
    expect(c1SeedNumbers(ADV2)['c1/zero_band_share']).toBeCloseTo(0.5, 15);
    expect(n['c1/zero_band_share']).toBeCloseTo(0.4, 14);
    expect(n['c1/zero_band_share_ci95']).toBeCloseTo(0.248434, 5);
    expect(n['c1/frac_neg']).toBeCloseTo(11 / 30, 14);
    // s of (0.4, 0.4, 0.3) = 0.057735
    expect(n['c1/frac_neg_ci95']).toBeCloseTo(CI3(0.0577350269), 6);
    expect(n['c1/tokens']).toBe(10);
    expect(n['c1/tokens_ci95']).toBe(0);
    expect(n['c1/tokens_total']).toBe(30);
    expect(n['c1/seeds']).toBe(3);
    expect(n['c1/zero_band_eps']).toBe(0.01);
    expect(n).not.toHaveProperty(['c1/zero_band_eps_ci95']);
    // the mean of the per-seed q01, not the pooled q01
    const q = [ADV, ADV1, ADV2].map((a) => c1SeedNumbers(a)['c1/q01']);
    expect(n['c1/q01']).toBeCloseTo((q[0] + q[1] + q[2]) / 3, 12);
  });

  it('3 seeds: pooled bars, one outline per seed on the same bins, mean +- CI in the note', () => {
    const fig = fig2aAdvantageDistribution({ seeds: SEEDS3 });
    const bars = fig.data.find((t) => t.type === 'bar')!;
    const lines = ['seed 0', 'seed 1', 'seed 2'].map((name) => named(fig.data, name)!);
    for (const l of lines) {
      expect(l.x).toEqual(bars.x);
      expect((l.y as number[]).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
    // equal token counts: the pooled share of each bin is the mean of the seeds' shares
    (bars.y as number[]).forEach((y, i) => expect(y).toBeCloseTo(lines.reduce((a, l) => a + (l.y as number[])[i], 0) / 3, 12));
    const notes = (fig.layout!.annotations as { text: string }[]).map((a) => a.text);
    expect(notes.some((t) => t.includes('|A| &lt; 0.01: 40.0 ± 24.8% of 30 tokens, 3 seeds pooled'))).toBe(true);
    expect(axisTitle(fig.layout!, 'yaxis')).toBe('share of tokens');
  });

  it('rejects too few values and a bad eps, naming the argument', () => {
    expect(() => fig2aAdvantageDistribution({ seeds: [{ seed: 0, advantages: [1, 2] }] })).toThrow(/seeds\[0\]\.advantages needs at least 4 values/);
    expect(() => fig2aAdvantageDistribution({ seeds: [{ seed: 0, advantages: ADV }], eps: 0 })).toThrow(/eps must be > 0/);
    expect(() => c1Numbers({ seeds: [] })).toThrow(/seeds must hold at least one seed/);
  });
});

describe('fig2bExplorationBlackHole (C2)', () => {
  it('draws the analytic OPD and forward-KL lines and the measured points on log axes', () => {
    const fig = fig2bExplorationBlackHole({ seeds: [{ seed: 0, blackHole: BH }] });
    const layout = fig.layout!;
    expect(axisTitle(layout, 'xaxis')).toBe('student prior pS(v*) (log axis)');
    expect(axisTitle(layout, 'yaxis')).toBe('update of v* per unit step, Δz = -step ∂L/∂z');
    expect((layout.xaxis as { type: string }).type).toBe('log');
    expect(layout.xaxis2).toBeUndefined();
    const opdLine = named(fig.data, 'OPD (reverse-KL policy gradient): -A·pS(v*)')!;
    const fklLine = named(fig.data, 'forward KL (GKD β = 0): pT(v*) - pS(v*)')!;
    // lines at the medians A = -1 and pT = 0.3: OPD y = pS, forward KL y = 0.3 - pS
    const xs = opdLine.x as number[];
    (opdLine.y as number[]).forEach((y, i) => expect(y).toBeCloseTo(xs[i], 12));
    (fklLine.y as number[]).forEach((y, i) => expect(y).toBeCloseTo(0.3 - xs[i], 12));
    expect(named(fig.data, 'OPD, measured')!.y).toEqual([0.001, 0.2, 0.25]);
    // the negative forward-KL update cannot sit on a log axis: dropped and counted in the note
    expect(named(fig.data, 'forward KL, measured')!.y).toEqual([0.599, 0.2]);
    expect((layout.annotations as { text: string }[])[0].text).toContain('forward KL 1)');
  });

  it('adds the tracker panel when the input has it: mean over seeds with a min..max band', () => {
    const fig = fig2bExplorationBlackHole({ seeds: SEEDS3 });
    expect(axisTitle(fig.layout!, 'xaxis2')).toBe('training step');
    expect(axisTitle(fig.layout!, 'yaxis2')).toContain("pS(teacher's top token)");
    const panel = fig.data.filter((t) => t.yaxis === 'y2');
    // per method: max band edge, min band edge (filled to it), mean line; then the teacher's level
    const ys = panel.map((t) => (t.y as number[]).map((v) => Number(v.toFixed(12))));
    expect(ys).toEqual([[0.6, 0.54, 0.6], [0.4, 0.5, 0.5], [0.5, 0.52, 0.55], [0.5, 0.6, 0.7], [0.5, 0.4, 0.3], [0.5, 0.5, 0.5], [0.8, 0.8]]);
    const opdMean = named(fig.data, 'OPD (reverse-KL policy gradient): pS(teacher top) on probes (mean of 3 seeds)')!;
    expect(opdMean.x).toEqual([0, 5, 10]);
    expect(panel[1].fill).toBe('tonexty');
    expect(panel[6].x).toEqual([0, 10]);
    expect(named(fig.data, 'teacher: pT(its top token) on probes')).toBeDefined();
    expect(panel[5].line).toMatchObject({ color: methodStyle('gkd').colour });
    // the left panel pools the seeds' positions: 9 OPD points
    expect((named(fig.data, 'OPD, measured')!.y as number[]).length).toBe(9);
    expect((fig.layout!.annotations as { text: string }[])[0].text).toContain('9 positions with A < 0 (3 seeds pooled)');
  });

  it('c2Numbers: hand-worked ratios, medians and tracker ends', () => {
    const n = c2Numbers({ seeds: [{ seed: 0, blackHole: BH, tracker: TRACKER }] });
    expect(n['c2/positions']).toBe(3);
    expect(n['c2/low_prior_positions']).toBe(1); // pS < 0.01
    expect(n['c2/low_prior_fkl_over_opd_update_median']).toBeCloseTo(599, 9); // 0.599 / 0.001
    expect(n['c2/fkl_over_opd_update_median']).toBeCloseTo(1, 12); // median of 599, 1, -1.2
    expect(n['c2/opd_update_over_abs_a_ps_median']).toBeCloseTo(1, 12);
    expect(n['c2/opd_promotion_ratio_mean']).toBeCloseTo(1.51 / 3, 12);
    expect(n['c2/ps_vstar_median']).toBe(0.1);
    expect(n['c2/tracker_forwardKL_ps_top_last']).toBe(0.7);
    expect(n['c2/tracker_opd_rank_top_first']).toBe(2);
    expect(n['c2/tracker_pt_top_mean']).toBe(0.8);
    expect(n['c2/tracker_forwardKL_ps_top_change']).toBeCloseTo(0.2, 14);
    expect(n['c2/tracker_forwardKL_minus_opd_ps_top_last']).toBeCloseTo(0.15, 14);
    expect(n['c2/tracker_opd_frac_top1_first']).toBe(0.5);
    // an update exactly proportional to the prior has log-log slope 1; a constant one slope 0
    const prop = { ...BH, opd: BH.pS.map((p) => 0.3 * p) };
    expect(c2SeedNumbers({ blackHole: prop })['c2/opd_update_loglog_slope']).toBeCloseTo(1, 12);
    expect(c2SeedNumbers({ blackHole: { ...BH, opd: [0.2, 0.2, 0.2] } })['c2/opd_update_loglog_slope']).toBeCloseTo(0, 12);
  });

  it('c2Numbers over 3 seeds: mean and hand-worked 95% CI; the step counts kept as they are', () => {
    const n = c2Numbers({ seeds: SEEDS3 });
    expect(n['c2/seeds']).toBe(3);
    expect(n['c2/positions']).toBe(3);
    expect(n['c2/positions_ci95']).toBe(0);
    expect(n['c2/positions_total']).toBe(9);
    expect(n['c2/tracker_opd_ps_top_last']).toBeCloseTo(0.55, 14);
    expect(n['c2/tracker_opd_ps_top_last_ci95']).toBeCloseTo(0.124217, 5);
    expect(n['c2/tracker_pt_top_mean']).toBeCloseTo(0.8, 14);
    expect(n['c2/tracker_pt_top_mean_ci95']).toBeCloseTo(CI3(0.1), 12);
    // paired per seed: OPD's change 0.05, 0.2, -0.1 -> mean 0.05, s = 0.15; forward KL - OPD at the end
    // 0.7 - 0.55, 0.5 - 0.6, 0.3 - 0.5 = 0.15, -0.1, -0.2 -> mean -0.05
    expect(n['c2/tracker_opd_ps_top_change']).toBeCloseTo(0.05, 14);
    expect(n['c2/tracker_opd_ps_top_change_ci95']).toBeCloseTo(CI3(0.15), 12);
    expect(n['c2/tracker_forwardKL_minus_opd_ps_top_last']).toBeCloseTo(-0.05, 14);
    expect(n['c2/tracker_opd_steps']).toBe(10);
    expect(n).not.toHaveProperty(['c2/tracker_opd_steps_ci95']);
    // low-prior ratio per seed: 0.599 / 0.001 = 599, 0.599 / 0.002 = 299.5, 599 -> mean 1497.5 / 3; for values
    // (a, b, a) s^2 = (a - b)^2 / 3, so s = 299.5 / sqrt(3) and the CI 4.303 * 299.5 / 3 = 429.5828
    expect(n['c2/low_prior_fkl_over_opd_update_median']).toBeCloseTo(1497.5 / 3, 9);
    expect(n['c2/low_prior_fkl_over_opd_update_median_ci95']).toBeCloseTo((4.303 * 299.5) / 3, 9);
  });

  it('rejects ragged or empty measurements and unequal trackers, naming the field', () => {
    expect(() => fig2bExplorationBlackHole({ seeds: [{ seed: 0, blackHole: { ...BH, opd: [1] } }] })).toThrow(/seeds\[0\]\.blackHole\.opd must hold one number per position \(3\)/);
    const empty = Object.fromEntries(Object.keys(BH).map((k) => [k, []])) as unknown as typeof BH;
    expect(() => fig2bExplorationBlackHole({ seeds: [{ seed: 0, blackHole: empty }] })).toThrow(/no positions/);
    expect(() => c2Numbers({ seeds: [SEEDS3[0], { ...SEEDS3[1], tracker: { opd: TRACKER.opd } as never }] })).toThrow(/seeds\[1\]\.tracker has other methods or steps than seeds\[0\]/);
    expect(() => fig2bExplorationBlackHole({ seeds: [] })).toThrow(/seeds must hold at least one/);
  });
});

describe('figure data and drawPaperFigures', () => {
  let dir: string;
  const data: C1C2Data = { source: { test: true }, seeds: SEEDS3 };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'opdlab-paper-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing data file names the command that makes it', () => {
    expect(() => readC1C2Data(join(dir, 'nowhere', 'c1c2.json'))).toThrow(/c1c2\.json is missing; make it with: .*opdlab\.js figures --generate c1c2/);
  });

  it('a malformed data file names the field', () => {
    const p = join(dir, 'bad.json');
    const bad = (patch: (d: C1C2Data) => unknown, re: RegExp) => {
      const d = JSON.parse(JSON.stringify(data)) as C1C2Data;
      patch(d);
      writeFileSync(p, JSON.stringify(d));
      expect(() => readC1C2Data(p)).toThrow(re);
    };
    writeFileSync(p, JSON.stringify(data));
    expect(readC1C2Data(p).seeds.map((s) => s.seed)).toEqual([0, 1, 2]);
    bad((d) => (d.seeds[1].blackHole.pT = [0.1]), /'seeds\[1\]\.blackHole\.pT' has 1 entries, expected 3 \(one per position\)/);
    bad((d) => (d.seeds[2].advantages = ['x' as never]), /'seeds\[2\]\.advantages' must be an array of numbers/);
    bad((d) => (d.seeds[0].tracker!.opd.pSTop = [0.5, 0.5]), /'seeds\[0\]\.tracker\.opd\.pSTop' has 2 entries, expected 3 \(one per step\)/);
    bad((d) => (d.seeds[2].tracker!.opd.step = [0, 5, 11]), /'seeds\[2\]\.tracker' has other methods or steps than seeds\[0\]\.tracker/);
    bad((d) => (d.seeds[1].seed = 0), /'seeds\[1\]\.seed' repeats seed 0/);
    bad((d) => (d.seeds[1].seed = 1.5), /'seeds\[1\]\.seed' must be an integer/);
    bad((d) => delete (d as Partial<C1C2Data>).seeds, /'seeds' must be a non-empty array/);
    bad((d) => (d.seeds = []), /'seeds' must be a non-empty array \(one entry per seed\), got an empty array/);
    writeFileSync(p, '{ not json');
    expect(() => readC1C2Data(p)).toThrow(/not valid JSON/);
  });

  it('writes every registered figure and numbers.json with the quoted keys; --only keeps the other numbers', async () => {
    const dataDir = join(dir, 'data');
    const outDir = join(dir, 'figures');
    require('node:fs').mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'c1c2.json'), JSON.stringify(data));
    // every other figure (tested on fixed inputs in its own test file) draws from its committed data file
    for (const f of new Set(PAPER_FIGURES.map((x) => x.dataFile))) if (f !== 'c1c2.json') require('node:fs').copyFileSync(figureDataPath(f), join(dataDir, f));
    const r = await drawPaperFigures({ dataDir, outDir, images: false });
    expect(r.names).toEqual(PAPER_FIGURES.map((f) => f.name));
    for (const name of r.names) for (const ext of ['json', 'html']) expect(existsSync(join(outDir, `${name}.${ext}`))).toBe(true);
    const spec = JSON.parse(readFileSync(join(outDir, 'fig2aAdvantageDistribution.json'), 'utf8'));
    expect(Object.keys(spec).sort()).toEqual(['data', 'layout']);
    const numbers = JSON.parse(readFileSync(r.numbersPath, 'utf8')) as Record<string, number>;
    const keys = ['c1/zero_band_share', 'c1/skewness', 'c1/q01', 'c1/q05', 'c1/q95', 'c1/q99', 'c1/hill_neg', 'c1/hill_pos',
      'c2/opd_promotion_ratio_mean', 'c2/forward_kl_promotion_ratio_mean', 'c2/fkl_over_opd_update_median', 'c2/low_prior_fkl_over_opd_update_median',
      'c2/tracker_opd_ps_top_last', 'c2/tracker_forwardKL_ps_top_last'];
    for (const k of keys) {
      expect(numbers, k).toHaveProperty([k]);
      expect(numbers, `${k}_ci95`).toHaveProperty([`${k}_ci95`]);
    }
    expect(numbers['c1/zero_band_share']).toBeCloseTo(0.4, 14);
    expect(numbers['c1/zero_band_share_ci95']).toBeCloseTo(0.248434, 5);
    expect(numbers['c2/seeds']).toBe(3);
    const r2 = await drawPaperFigures({ dataDir, outDir, images: false, only: ['fig2bExplorationBlackHole'] });
    expect(r2.names).toEqual(['fig2bExplorationBlackHole']);
    expect(JSON.parse(readFileSync(r.numbersPath, 'utf8'))).toHaveProperty(['c1/zero_band_share']);
    await expect(drawPaperFigures({ dataDir, outDir, images: false, only: ['fig9'] })).rejects.toThrow(/unknown figure 'fig9'/);
    await expect(drawPaperFigures({ dataDir: join(dir, 'empty'), outDir, images: false })).rejects.toThrow(/--generate c1c2/);
  });

  it('the committed data/figures/c1c2.json reads and draws', () => {
    const path = figureDataPath('c1c2.json');
    expect(existsSync(path), `${path} is committed`).toBe(true);
    const d = readC1C2Data(path);
    // the committed results: seeds 0, 1, 2 (sweeps.ts PAPER_SEEDS), each its own warm-up student
    expect(d.seeds.map((s) => s.seed)).toEqual([0, 1, 2]);
    expect(new Set(d.seeds.map((s) => s.warmup?.key)).size).toBe(3);
    for (const s of d.seeds) {
      expect(s.advantages.length).toBeGreaterThan(1000);
      expect(s.blackHole.pS.length).toBeGreaterThan(100);
      // the measured OPD update is -A pS(v*) at every position (AOPD Eq. 5), up to the file's 6 digits
      expect(c2SeedNumbers(s)['c2/opd_update_over_abs_a_ps_median']).toBeCloseTo(1, 4);
    }
    expect(fig2aAdvantageDistribution({ seeds: d.seeds }).data.length).toBe(4 + 3);
    expect(statSync(path).size).toBeLessThan(3e6);
  });
});

const missing = missingSystemPackages(renderNeeds());
const skipReason = missing.length > 0 && !isRoot() ? `figure rendering needs: ${aptInstallLine(missing.map((m) => m.package))}` : '';
if (skipReason) console.warn(`SKIPPED rendering in test/figures/paper.test.ts: ${skipReason}`);

describe.skipIf(skipReason !== '')('a paper figure to PNG and SVG (headless Chromium)', () => {
  let renderer: Renderer;
  let dir: string;
  beforeAll(async () => {
    ensureRenderPackages({ install: true });
    dir = mkdtempSync(join(tmpdir(), 'opdlab-paper-render-'));
    renderer = await Renderer.open();
  });
  afterAll(async () => {
    await renderer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fig2b: PNG at the layout size with the forward-KL colour, SVG with the axis titles', async () => {
    const fig = fig2bExplorationBlackHole({ seeds: SEEDS3 });
    const r = await renderer.render(fig, 'fig2bExplorationBlackHole', { dir, scale: 1 });
    const png = decodePng(readFileSync(r.files.png!));
    expect(hasPngSignature(readFileSync(r.files.png!))).toBe(true);
    expect([png.width, png.height]).toEqual([fig.layout!.width, fig.layout!.height]);
    expect(countColour(png, methodStyle('gkd').colour, 10)).toBeGreaterThan(100);
    const py = `import sys, json, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
print(json.dumps(["".join(t.itertext()) for t in root.iter('{http://www.w3.org/2000/svg}text')]))`;
    const out = spawnSync('/usr/bin/python3', ['-c', py, r.files.svg!], { encoding: 'utf8' });
    expect(out.status, out.stderr).toBe(0);
    const texts = JSON.parse(out.stdout) as string[];
    for (const t of ['student prior pS(v*) (log axis)', 'update of v* per unit step, Δz = -step ∂L/∂z', 'training step']) expect(texts).toContain(t);
  });
});
