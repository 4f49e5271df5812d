/**
 * The AOPD ablations (claims C4, C6, C10, C11, C12, C13; AOPD Fig. 3/9, 4b/4c, 7, 8a/8b, 8c, 11): the data file,
 * its reader and its generator.
 *
 *   data/figures/ablations.json  read from the finished runs of the built-in specs eta, beta, topk and location
 *                                (3 seeds each; cells shared by run key: the default AOPD run is the eta = 0,
 *                                beta = 0, K = 16 and location 'aopd' cell, and the same runs as specs/dynamics.json)
 *     variants   one entry per distinct setting (`variantId`: the method, plus every objective option that differs
 *                from the method's defaults, e.g. 'aopd', 'aopd eta=-0.1', 'aopd beta=0.5', 'aopd topK=4',
 *                'aopd-zero', 'opd'); per seed, per step:
 *         metrics.jsonl  grad/param_norm, entropy/student_mean, objective/intervention/ratio (the share of
 *                        masked-in tokens on the imitation branch; absent for opd), intervention/aopd_zero_ratio
 *                        (share with |A| < 0.05: the zero-advantage band), intervention/ratio_zero_band (share of
 *                        all tokens that the eta rule M = 1[pT(y) - pS(y) <= eta] sends to imitation inside the band,
 *                        eta = the method's, 0 when it has none; lib/analysis/intervention.ts)
 *         eval.jsonl     eval/pass@1, eval/pass@8 (math task; step 0 = the warm-up student)
 *     axes       per spec, its axis values in spec order and the variant each one is (`value` a number for eta,
 *                beta, K; the spec's label for location)
 *   Every number is rounded to 5 significant digits.
 *
 * OPD is the eta = -1 end of the eta axis (lib/objectives/aopd.ts etaRule: eta = -1 imitates nothing), so it is not
 * trained as `aopd eta=-1`: the figures take the 'opd' variant (location's and dynamics' runs) as that reference.
 *
 *   npm run build && node dist/bin/opdlab.js reproduce --only ablations     # trains what is missing, then this
 */
import { join } from 'node:path';
import { getObjective } from '../../../objectives/registry';
import { canonicalJson, codeVersion } from '../../../train/runKey';
import { figureDataPath, readFigureData, writeFigureData } from '../../data';
import { projectPaths } from '../../paths';
import { requirePaperRuns, type ReproduceMode } from '../../sweeps';
import { distillRows, evalRows } from '../../runLogs';

/** The specs the generator reads, in the order of `AblationsData.axes`. */
export const ABLATION_SPECS = ['eta', 'beta', 'topk', 'location'] as const;
export type AblationSpec = (typeof ABLATION_SPECS)[number];

/** The command that makes data/figures/ablations.json (trains the missing runs first). */
export function ablationsCommand(mode: ReproduceMode = 'full'): string {
  return `npm run build && node dist/bin/opdlab.js reproduce${mode === 'quick' ? ' --quick' : ''} --only ablations`;
}

/** The runs of one setting: per seed, per step. */
export interface VariantRuns {
  /** `variantId` of the setting. */
  id: string;
  method: string;
  /** The objective options that differ from the method's defaults (the rest are the defaults). */
  options: Record<string, unknown>;
  seeds: number[];
  runKeys: string[];
  /** Training steps 1..S. */
  trainStep: number[];
  gradNorm: number[][];
  entropy: number[][];
  /** objective/intervention/ratio (absent for methods without an imitation branch). */
  interventionRatio?: number[][];
  /** intervention/aopd_zero_ratio: share of tokens with |A| < zeroEps (0.05). */
  zeroShare: number[][];
  /** intervention/ratio_zero_band: share of tokens imitated by the eta rule inside the band (header). */
  zeroImitated: number[][];
  /** Evaluation steps (0 = warm-up student). */
  evalStep: number[];
  pass1: number[][];
  pass8: number[][];
}

export interface AxisPoint {
  /** The axis value: eta, beta or K (numbers), or the location spec's label. */
  value: number | string;
  /** Key into `AblationsData.variants`. */
  variant: string;
}

export interface AblationsData {
  source: Record<string, unknown>;
  variants: Record<string, VariantRuns>;
  axes: Record<AblationSpec, AxisPoint[]>;
}


/**
 * The name of a setting: the method, then `name=value` for each objective option that differs from the method's
 * defaults, in sorted order: `variantId('aopd', {...AOPD_DEFAULTS, eta: -0.1})` = 'aopd eta=-0.1'.
 */
export function variantId(method: string, objective: Record<string, unknown>): string {
  const diff = nonDefaultOptions(method, objective);
  const parts = Object.keys(diff)
    .sort()
    .map((k) => `${k}=${typeof diff[k] === 'object' ? canonicalJson(diff[k]) : String(diff[k])}`);
  return [method, ...parts].join(' ');
}

/** The options of a resolved objective that differ from the method's registered defaults. */
export function nonDefaultOptions(method: string, objective: Record<string, unknown>): Record<string, unknown> {
  const defaults = getObjective(method).defaults as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(objective)) if (canonicalJson(v) !== canonicalJson(defaults[k])) out[k] = v;
  return out;
}

function checkVariant(where: string, v: VariantRuns): void {
  const S = v.seeds?.length ?? 0;
  if (S === 0) throw new Error(`${where}: 'seeds' is empty`);
  if (!Array.isArray(v.trainStep) || !Array.isArray(v.evalStep)) throw new Error(`${where}: 'trainStep' and 'evalStep' must be arrays`);
  const check = (name: string, xs: number[][] | undefined, len: number) => {
    if (!Array.isArray(xs) || xs.length !== S) throw new Error(`${where}.${name} must hold one series per seed (${S})`);
    xs.forEach((x, i) => {
      if (!Array.isArray(x) || x.length !== len) throw new Error(`${where}.${name}[${i}] has ${x?.length} entries, expected ${len} (one per step)`);
    });
  };
  for (const k of ['gradNorm', 'entropy', 'zeroShare', 'zeroImitated'] as const) check(k, v[k], v.trainStep.length);
  if (v.interventionRatio !== undefined) check('interventionRatio', v.interventionRatio, v.trainStep.length);
  for (const k of ['pass1', 'pass8'] as const) check(k, v[k], v.evalStep.length);
}

function checkData(where: string, d: AblationsData): void {
  if (!d.variants || typeof d.variants !== 'object' || Object.keys(d.variants).length === 0) throw new Error(`${where}: 'variants' is missing or empty`);
  for (const [id, v] of Object.entries(d.variants)) checkVariant(`${where}: variants['${id}']`, v);
  if (!d.axes || typeof d.axes !== 'object') throw new Error(`${where}: 'axes' is missing`);
  for (const s of ABLATION_SPECS) {
    const a = d.axes[s];
    if (!Array.isArray(a) || a.length === 0) throw new Error(`${where}: axes.${s} is missing or empty`);
    for (const p of a) if (!d.variants[p.variant]) throw new Error(`${where}: axes.${s} names variant '${p.variant}', which 'variants' does not hold`);
  }
}

/** data/figures/ablations.json (or `path`), checked: every variant has one equal-length series per seed, every axis point a variant. */
export function readAblationsData(path: string = figureDataPath('ablations.json')): AblationsData {
  const d = readFigureData<AblationsData>(path, ablationsCommand());
  checkData(`figure data ${path}`, d);
  return d;
}

export interface AblationRunSeries {
  trainStep: number[];
  gradNorm: number[];
  entropy: number[];
  interventionRatio: number[] | null;
  zeroShare: number[];
  zeroImitated: number[];
  evalStep: number[];
  pass1: number[];
  pass8: number[];
}

/** The series of one finished run folder (metrics.jsonl distill rows, eval.jsonl math rows). */
export function readAblationRun(dir: string): AblationRunSeries {
  const m = distillRows(dir);
  if (m.rows.length === 0) throw new Error(`${join(dir, 'metrics.jsonl')}: no distillation step logged`);
  const e = evalRows(dir);
  const ratio = 'objective/intervention/ratio';
  return {
    trainStep: m.steps(),
    gradNorm: m.series('grad/param_norm'),
    entropy: m.series('entropy/student_mean'),
    interventionRatio: m.has(ratio) ? m.series(ratio) : null,
    zeroShare: m.series('intervention/aopd_zero_ratio'),
    zeroImitated: m.series('intervention/ratio_zero_band'),
    evalStep: e.steps(),
    pass1: e.series('eval/pass@1'),
    pass8: e.series('eval/pass@8'),
  };
}

export interface AblationsGenerateOptions {
  /** Folder holding the sweeps. Default <root>/runs. */
  runsRoot: string;
  /** 'full' (3 seeds, the committed data) or 'quick' (lib/figures/sweeps.ts). Default 'full'. */
  mode: ReproduceMode;
  /** Output file; null = do not write. Default data/figures/ablations.json. */
  out: string | null;
  log: (line: string) => void;
}

function axisValue(spec: AblationSpec, label: string): number | string {
  if (spec === 'location') return label;
  const v = Number(label);
  if (!Number.isFinite(v)) throw new Error(`generateAblationsData: spec '${spec}' has the non-numeric axis label '${label}'`);
  return v;
}

/**
 * Collects the finished runs of specs eta, beta, topk and location into data/figures/ablations.json (file header).
 * Runs are found by the run keys the specs expand to now; a missing run is an error naming the command that makes it.
 */
export function generateAblationsData(options: Partial<AblationsGenerateOptions> = {}): AblationsData {
  const o: AblationsGenerateOptions = { runsRoot: projectPaths().runs, mode: 'full', out: figureDataPath('ablations.json'), log: () => undefined, ...options };
  const variants: Record<string, VariantRuns> = {};
  const axes = {} as Record<AblationSpec, AxisPoint[]>;
  const keyOf = new Map<string, string>(); // `${variant}#${seed}` -> run key
  let first: Record<string, unknown> | null = null;
  for (const spec of ABLATION_SPECS) {
    const runs = requirePaperRuns(spec, o.mode, o.runsRoot);
    const points: AxisPoint[] = [];
    for (const { cell, dir } of runs) {
      const c = cell.config;
      const id = variantId(c.distill.method, c.distill.objective);
      const axisName = Object.keys(cell.values).find((k) => k !== 'seed');
      if (axisName === undefined) throw new Error(`generateAblationsData: spec '${spec}' has no axis besides the seed`);
      const value = axisValue(spec, cell.values[axisName]);
      if (!points.some((p) => p.value === value)) points.push({ value, variant: id });
      else if (!points.some((p) => p.value === value && p.variant === id)) throw new Error(`generateAblationsData: spec '${spec}' value ${String(value)} names two settings`);
      const seed = c.seed;
      const k = `${id}#${seed}`;
      const known = keyOf.get(k);
      if (known !== undefined) {
        if (known !== cell.key) throw new Error(`generateAblationsData: ${spec}:${cell.name} is setting '${id}' at seed ${seed} but its run key differs from another spec's cell of that setting (the specs' base configs must agree)`);
        continue; // shared run, already read
      }
      keyOf.set(k, cell.key);
      first ??= c as unknown as Record<string, unknown>;
      const r = readAblationRun(dir);
      const v = (variants[id] ??= {
        id,
        method: c.distill.method,
        options: nonDefaultOptions(c.distill.method, c.distill.objective),
        seeds: [],
        runKeys: [],
        trainStep: r.trainStep,
        gradNorm: [],
        entropy: [],
        zeroShare: [],
        zeroImitated: [],
        evalStep: r.evalStep,
        pass1: [],
        pass8: [],
      });
      if (r.trainStep.join() !== v.trainStep.join() || r.evalStep.join() !== v.evalStep.join()) throw new Error(`generateAblationsData: run ${spec}:${cell.name} logged other steps than the first seed of '${id}'`);
      v.seeds.push(seed);
      v.runKeys.push(cell.key);
      v.gradNorm.push(r.gradNorm);
      v.entropy.push(r.entropy);
      if (r.interventionRatio) (v.interventionRatio ??= []).push(r.interventionRatio);
      v.zeroShare.push(r.zeroShare);
      v.zeroImitated.push(r.zeroImitated);
      v.pass1.push(r.pass1);
      v.pass8.push(r.pass8);
      o.log(`read ${spec}:${cell.name} as '${id}' seed ${seed}: ${r.trainStep.length} steps, ${r.evalStep.length} evaluations`);
    }
    axes[spec] = points;
  }
  const c = first as unknown as { task: { name: string }; warmup: { steps: number }; distill: { steps: number; prompts: number; rollouts: number; lr: number }; eval: unknown };
  const data: AblationsData = {
    source: {
      command: ablationsCommand(o.mode),
      mode: o.mode,
      generator: 'lib/figures/paper/ablations/data.ts',
      specs: ABLATION_SPECS.map((s) => `specs/${s}.json`),
      code: codeVersion(),
      task: c.task.name,
      warmupSteps: c.warmup.steps,
      distill: { steps: c.distill.steps, prompts: c.distill.prompts, rollouts: c.distill.rollouts, lr: c.distill.lr },
      aopdDefaults: getObjective('aopd').defaults,
      eval: c.eval,
      createdAt: new Date().toISOString(),
    },
    variants,
    axes,
  };
  checkData('generateAblationsData', data);
  if (o.out) {
    writeFigureData(o.out, data);
    o.log(`wrote ${o.out}: ${Object.keys(variants).length} settings, ${keyOf.size} runs`);
  }
  return data;
}
