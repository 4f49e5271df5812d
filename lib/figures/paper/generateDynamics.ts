/**
 * Training dynamics of OPD, AOPD and GKD (claims C5, C7, C8; AOPD Fig. 4a, 5, 6): the data file, its reader,
 * its generator and the seed band every dynamics figure draws.
 *
 *   data/figures/dynamics.json  per method, per seed (0, 1, 2), per step, read from the run folders of the built-in
 *                               sweep specs/dynamics.json (runs/dynamics/<runKey>/):
 *       metrics.jsonl  grad/param_norm (||dL/dtheta||_2 before Adam), entropy/student_mean (nats, on the step's
 *                      rollouts), objective/intervention/ratio (aopd only)
 *       eval.jsonl     eval/pass@1, eval/pass@4, eval/pass@8 (math task; step 0 = the warm-up student)
 *   Every number is rounded to 5 significant digits (100 steps x 9 runs: no downsampling needed).
 *
 * Seed band (`seedBand`): at every step the mean over seeds, the min and max over seeds (the band the figures
 * shade), and the 95% confidence half-width of the mean, t_{0.975, n-1} s / sqrt(n), s the sample standard
 * deviation (ddof 1) over the n seeds (t_{0.975, 2} = 4.303 for 3 seeds; Student's t table).
 *
 *   opdlab sweep specs/dynamics.json --workers 2     # the 9 runs (about 5 min on 2 cores)
 *   opdlab figures --generate dynamics                # this file's generator, then draws
 */
import { figureDataPath, readFigureData, writeFigureData } from '../data';
import { projectPaths } from '../paths';
import { reproduceCommand, requirePaperRuns, type PaperRun, type ReproduceMode } from '../sweeps';
import { distillRows, evalRows } from '../runLogs';
import { codeVersion } from '../../train/runKey';

export const DYNAMICS_METHODS = ['opd', 'aopd', 'gkd'] as const;
export const DYNAMICS_SWEEP_COMMAND = 'npm run build && node dist/bin/opdlab.js sweep specs/dynamics.json --workers 2';
export const DYNAMICS_DATA_COMMAND = 'node dist/bin/opdlab.js figures --generate dynamics';

/** Curves of one method: `step` shared by the seeds, one array per seed in `<series>[seed index]`. */
export interface MethodCurves {
  seeds: number[];
  runKeys: string[];
  /** Training steps 1..S. */
  trainStep: number[];
  gradNorm: number[][];
  entropy: number[][];
  /** objective/intervention/ratio (AOPD only; absent otherwise). */
  interventionRatio?: number[][];
  /** Evaluation steps (0 = warm-up student). */
  evalStep: number[];
  pass1: number[][];
  pass4: number[][];
  pass8: number[][];
}

export interface DynamicsData {
  source: Record<string, unknown>;
  methods: Record<string, MethodCurves>;
}

export type TrainSeries = 'gradNorm' | 'entropy' | 'interventionRatio';
export type EvalSeries = 'pass1' | 'pass4' | 'pass8';

/** Two-sided 95% Student t quantiles t_{0.975, df}, df = 1..10 (standard table); 1.96 beyond. */
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

export function t975(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new Error(`t975: df must be an integer >= 1, got ${df}`);
  return df <= T975.length ? T975[df - 1] : 1.96;
}

export interface SeedStats {
  mean: number;
  min: number;
  max: number;
  /** 95% CI half-width of the mean (NaN for one seed). */
  ci95: number;
}

/** Mean, min, max and 95% CI half-width of the mean over the values (one per seed). */
export function seedStats(values: readonly number[]): SeedStats {
  const n = values.length;
  if (n === 0) throw new Error('seedStats: values must hold at least one number');
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const ci95 = n < 2 ? NaN : (t975(n - 1) * Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1))) / Math.sqrt(n);
  return { mean, min: Math.min(...values), max: Math.max(...values), ci95 };
}

export interface SeedBand {
  mean: number[];
  min: number[];
  max: number[];
  ci95: number[];
}

/** `seedStats` at every step of per-seed series (all the same length). */
export function seedBand(perSeed: readonly (readonly number[])[]): SeedBand {
  if (perSeed.length === 0) throw new Error('seedBand: perSeed must hold at least one series');
  const T = perSeed[0].length;
  perSeed.forEach((s, i) => {
    if (s.length !== T) throw new Error(`seedBand: series ${i} has ${s.length} steps, expected ${T} (as series 0)`);
  });
  const out: SeedBand = { mean: [], min: [], max: [], ci95: [] };
  for (let t = 0; t < T; t++) {
    const s = seedStats(perSeed.map((x) => x[t]));
    out.mean.push(s.mean);
    out.min.push(s.min);
    out.max.push(s.max);
    out.ci95.push(s.ci95);
  }
  return out;
}

/** Per-seed mean of each series over its last `frac` share of entries (at least one). */
export function tailMeans(perSeed: readonly (readonly number[])[], frac: number): number[] {
  return perSeed.map((s) => {
    const k = Math.max(1, Math.round(s.length * frac));
    const tail = s.slice(s.length - k);
    return tail.reduce((a, b) => a + b, 0) / tail.length;
  });
}

/** data/figures/dynamics.json (or `path`), checked: every method has equal-length series per seed. */
export function readDynamicsData(path: string = figureDataPath('dynamics.json')): DynamicsData {
  const d = readFigureData<DynamicsData>(path, `${DYNAMICS_SWEEP_COMMAND} && ${DYNAMICS_DATA_COMMAND}`);
  if (!d.methods || typeof d.methods !== 'object' || Object.keys(d.methods).length === 0) throw new Error(`figure data ${path}: 'methods' is missing or empty`);
  for (const [m, c] of Object.entries(d.methods)) checkCurves(`figure data ${path}: methods.${m}`, c);
  return d;
}

function checkCurves(where: string, c: MethodCurves): void {
  const S = c.seeds?.length ?? 0;
  if (S === 0) throw new Error(`${where}: 'seeds' is empty`);
  const check = (name: string, xs: number[][] | undefined, len: number) => {
    if (!Array.isArray(xs) || xs.length !== S) throw new Error(`${where}.${name} must hold one series per seed (${S})`);
    xs.forEach((x, i) => {
      if (!Array.isArray(x) || x.length !== len) throw new Error(`${where}.${name}[${i}] has ${x?.length} entries, expected ${len} (one per step)`);
    });
  };
  check('gradNorm', c.gradNorm, c.trainStep.length);
  check('entropy', c.entropy, c.trainStep.length);
  if (c.interventionRatio) check('interventionRatio', c.interventionRatio, c.trainStep.length);
  for (const k of ['pass1', 'pass4', 'pass8'] as const) check(k, c[k], c.evalStep.length);
}

/** The series of one finished run folder (metrics.jsonl, eval.jsonl). */
export function readRunCurves(dir: string): { trainStep: number[]; gradNorm: number[]; entropy: number[]; interventionRatio: number[] | null; evalStep: number[]; pass1: number[]; pass4: number[]; pass8: number[] } {
  const m = distillRows(dir);
  const e = evalRows(dir);
  const ratio = 'objective/intervention/ratio';
  return {
    trainStep: m.steps(),
    gradNorm: m.series('grad/param_norm'),
    entropy: m.series('entropy/student_mean'),
    interventionRatio: m.has(ratio) ? m.series(ratio) : null,
    evalStep: e.steps(),
    pass1: e.series('eval/pass@1'),
    pass4: e.series('eval/pass@4'),
    pass8: e.series('eval/pass@8'),
  };
}

/**
 * The runs grouped by the value of axis `axis` (one MethodCurves per value, one series per seed, in run order);
 * every run of a group must log the same steps as the group's first (`who` names the caller in that error).
 */
export function collectMethodCurves(runs: readonly PaperRun[], axis: string, who: string, log: (line: string) => void = () => undefined): Record<string, MethodCurves> {
  const groups: Record<string, MethodCurves> = {};
  for (const { cell: c, dir } of runs) {
    const name = c.values[axis];
    const r = readRunCurves(dir);
    const m = (groups[name] ??= { seeds: [], runKeys: [], trainStep: r.trainStep, gradNorm: [], entropy: [], evalStep: r.evalStep, pass1: [], pass4: [], pass8: [] });
    if (r.trainStep.join() !== m.trainStep.join() || r.evalStep.join() !== m.evalStep.join()) throw new Error(`${who}: run ${c.name} logged other steps than the first seed of ${name}`);
    m.seeds.push(Number(c.values.seed));
    m.runKeys.push(c.key);
    m.gradNorm.push(r.gradNorm);
    m.entropy.push(r.entropy);
    if (r.interventionRatio) (m.interventionRatio ??= []).push(r.interventionRatio);
    m.pass1.push(r.pass1);
    m.pass4.push(r.pass4);
    m.pass8.push(r.pass8);
    log(`read ${c.name}: ${r.trainStep.length} steps, ${r.evalStep.length} evaluations`);
  }
  return groups;
}

export interface DynamicsGenerateOptions {
  /** Folder holding the sweeps. Default <root>/runs. */
  runsRoot: string;
  /** 'full' (3 seeds, the committed data) or 'quick' (lib/figures/sweeps.ts). Default 'full'. */
  mode: ReproduceMode;
  /** Output file; null = do not write. Default data/figures/dynamics.json. */
  out: string | null;
  log: (line: string) => void;
}

/**
 * Collects the curves of the finished runs of specs/dynamics.json into data/figures/dynamics.json (file header).
 * Runs are found by the run keys the spec expands to now (lib/figures/sweeps.ts); missing or unfinished runs are an
 * error naming the command that makes them.
 */
export function generateDynamicsData(options: Partial<DynamicsGenerateOptions> = {}): DynamicsData {
  const paths = projectPaths();
  const o: DynamicsGenerateOptions = { runsRoot: paths.runs, mode: 'full', out: figureDataPath('dynamics.json'), log: () => undefined, ...options };
  const runs = requirePaperRuns('dynamics', o.mode, o.runsRoot);
  const cells = runs.map((r) => r.cell);
  const methods = collectMethodCurves(runs, 'method', 'generateDynamicsData', o.log);
  const first = cells[0].config;
  const data: DynamicsData = {
    source: {
      command: reproduceCommand(o.mode, ['dynamics']),
      mode: o.mode,
      generator: 'lib/figures/paper/generateDynamics.ts',
      spec: 'specs/dynamics.json',
      code: codeVersion(),
      task: first.task.name,
      warmupSteps: first.warmup.steps,
      distill: { steps: first.distill.steps, prompts: first.distill.prompts, rollouts: first.distill.rollouts, lr: first.distill.lr },
      eval: first.eval,
      createdAt: new Date().toISOString(),
    },
    methods,
  };
  for (const [m, c] of Object.entries(methods)) checkCurves(`generateDynamicsData: ${m}`, c);
  if (o.out) {
    writeFigureData(o.out, data);
    o.log(`wrote ${o.out}`);
  }
  return data;
}
