/**
 * Initialisation strength and continual learning (claims C3, C8, C9; AOPD Fig. 2c, Table 1, Fig. 10, Table 2): the
 * data file, its reader and its generator.
 *
 *   data/figures/initcontinual.json, read from the finished runs of two built-in sweep specs (3 seeds each):
 *     init        specs/init.json: warm-up {weak 300, strong 700 SFT steps (the default)} x method {opd, exopd (gopd lambda
 *                 1.25), gkd (top-32), aopd (top-32)}, 100 distillation steps on math. Per arm and seed the math
 *                 evaluations (eval.jsonl, task math): pass@1, pass@4, pass@8 at every evaluation step (0 = the
 *                 warm-up student). Table 1 = the last evaluation, Fig. 10 = the pass@1 curves.
 *     continual   specs/continual.json: S math distillation steps, then C steps of the same method on the tool
 *                 task (warm-up with a share of tool samples, see the spec's comment); arms opd, exopd, gkd, aopd
 *                 (strong warm-up) and opd-weak (OPD from the weak warm-up, C3). Per arm and seed: math pass@1 /
 *                 pass@8 at every evaluation, tool pass@1 / pass@8 at the evaluations with a tool row (step 0, S,
 *                 and every evaluation of the continual stage).
 *   Numbers are rounded to 5 significant digits.
 *
 *   npm run build && node dist/bin/opdlab.js reproduce --only initcontinual      # trains what is missing, writes, draws
 */
import { join } from 'node:path';
import { codeVersion } from '../../../train/runKey';
import { figureDataPath, readFigureData, writeFigureData } from '../../data';
import { projectPaths } from '../../paths';
import { requirePaperRuns, type ReproduceMode } from '../../sweeps';
import { evalRows } from '../../runLogs';

export const INIT_METHODS = ['opd', 'exopd', 'gkd', 'aopd'] as const;
export const INIT_WARMUPS = ['weak', 'strong'] as const;
export type InitWarmup = (typeof INIT_WARMUPS)[number];
/** Arms of specs/continual.json: the four methods from the strong warm-up, and OPD from the weak one. */
export const CONTINUAL_ARMS = ['opd', 'exopd', 'gkd', 'aopd', 'opd-weak'] as const;

export const INITCONTINUAL_COMMAND = 'npm run build && node dist/bin/opdlab.js reproduce --only initcontinual';

/** Math evaluations of one arm of specs/init.json: one series per seed. */
export interface InitArm {
  seeds: number[];
  runKeys: string[];
  warmupSteps: number;
  /** Evaluation steps (0 = the warm-up student). */
  evalStep: number[];
  pass1: number[][];
  pass4: number[][];
  pass8: number[][];
}

/** One arm of specs/continual.json: one series per seed. */
export interface ContinualArm {
  seeds: number[];
  runKeys: string[];
  /** Registry name of the objective. */
  method: string;
  warmupSteps: number;
  /** S: last step of the math stage; C: steps of the tool stage (steps S+1..S+C). */
  distillSteps: number;
  continualSteps: number;
  mathStep: number[];
  mathPass1: number[][];
  mathPass8: number[][];
  toolStep: number[];
  toolPass1: number[][];
  toolPass8: number[][];
}

export interface InitContinualData {
  source: Record<string, unknown>;
  /** warm-up label -> method label -> arm. */
  init: Record<string, Record<string, InitArm>>;
  /** arm label -> arm. */
  continual: Record<string, ContinualArm>;
}

/** The evaluations of task `task` in a finished run folder: steps and the named pass@k series. */
export function readEvalSeries(dir: string, task: string, ks: readonly number[]): { step: number[]; pass: Record<number, number[]> } {
  const e = evalRows(dir, task);
  if (e.rows.length === 0) throw new Error(`${join(dir, 'eval.jsonl')}: no evaluation of task '${task}'`);
  const pass: Record<number, number[]> = {};
  for (const k of ks) pass[k] = e.series(`eval/pass@${k}`);
  return { step: e.steps(), pass };
}

function checkSeries(where: string, name: string, xs: unknown, seeds: number, len: number): void {
  if (!Array.isArray(xs) || xs.length !== seeds) throw new Error(`${where}.${name} must hold one series per seed (${seeds})`);
  xs.forEach((x, i) => {
    if (!Array.isArray(x) || x.length !== len) throw new Error(`${where}.${name}[${i}] has ${(x as unknown[] | undefined)?.length} entries, expected ${len} (one per evaluation)`);
  });
}

function checkInitArm(where: string, a: InitArm): void {
  const n = a.seeds?.length ?? 0;
  if (n === 0) throw new Error(`${where}: 'seeds' is empty`);
  if (!Array.isArray(a.evalStep) || a.evalStep.length === 0) throw new Error(`${where}: 'evalStep' is empty`);
  for (const k of ['pass1', 'pass4', 'pass8'] as const) checkSeries(where, k, a[k], n, a.evalStep.length);
}

function checkContinualArm(where: string, a: ContinualArm): void {
  const n = a.seeds?.length ?? 0;
  if (n === 0) throw new Error(`${where}: 'seeds' is empty`);
  for (const k of ['mathStep', 'toolStep'] as const) if (!Array.isArray(a[k]) || a[k].length === 0) throw new Error(`${where}: '${k}' is empty`);
  checkSeries(where, 'mathPass1', a.mathPass1, n, a.mathStep.length);
  checkSeries(where, 'mathPass8', a.mathPass8, n, a.mathStep.length);
  checkSeries(where, 'toolPass1', a.toolPass1, n, a.toolStep.length);
  checkSeries(where, 'toolPass8', a.toolPass8, n, a.toolStep.length);
  if (!a.mathStep.includes(a.distillSteps) || !a.toolStep.includes(a.distillSteps)) throw new Error(`${where}: no evaluation at the end of the math stage (step ${a.distillSteps})`);
}

/** Checks a parsed data object (shape and series lengths); throws naming the field. */
export function checkInitContinualData(where: string, d: InitContinualData): void {
  if (!d.init || typeof d.init !== 'object' || Object.keys(d.init).length === 0) throw new Error(`${where}: 'init' is missing or empty`);
  for (const [w, arms] of Object.entries(d.init)) {
    if (!arms || Object.keys(arms).length === 0) throw new Error(`${where}: init.${w} holds no method`);
    for (const [m, a] of Object.entries(arms)) checkInitArm(`${where}: init.${w}.${m}`, a);
  }
  if (!d.continual || typeof d.continual !== 'object' || Object.keys(d.continual).length === 0) throw new Error(`${where}: 'continual' is missing or empty`);
  for (const [m, a] of Object.entries(d.continual)) checkContinualArm(`${where}: continual.${m}`, a);
}

/** data/figures/initcontinual.json (or `path`), checked. */
export function readInitContinualData(path: string = figureDataPath('initcontinual.json')): InitContinualData {
  const d = readFigureData<InitContinualData>(path, INITCONTINUAL_COMMAND);
  checkInitContinualData(`figure data ${path}`, d);
  return d;
}

export interface InitContinualGenerateOptions {
  /** Folder holding the sweeps. Default <root>/runs. */
  runsRoot: string;
  /** 'full' (3 seeds, the committed data) or 'quick' (lib/figures/sweeps.ts). Default 'full'. */
  mode: ReproduceMode;
  /** Output file; null = do not write. Default data/figures/initcontinual.json. */
  out: string | null;
  log: (line: string) => void;
}

function sameSteps(where: string, a: number[], b: number[]): void {
  if (a.join() !== b.join()) throw new Error(`generateInitContinualData: ${where} logged other evaluation steps (${b.join(',')}) than its first seed (${a.join(',')})`);
}

/** Collects the finished runs of specs/init.json and specs/continual.json into data/figures/initcontinual.json. */
export function generateInitContinualData(options: Partial<InitContinualGenerateOptions> = {}): InitContinualData {
  const o: InitContinualGenerateOptions = { runsRoot: projectPaths().runs, mode: 'full', out: figureDataPath('initcontinual.json'), log: () => undefined, ...options };
  const initRuns = requirePaperRuns('init', o.mode, o.runsRoot);
  const contRuns = requirePaperRuns('continual', o.mode, o.runsRoot);

  const init: Record<string, Record<string, InitArm>> = {};
  for (const { cell: c, dir } of initRuns) {
    const w = c.values.warmup;
    const m = c.values.method;
    const r = readEvalSeries(dir, 'math', [1, 4, 8]);
    const arms = (init[w] ??= {});
    const a = (arms[m] ??= { seeds: [], runKeys: [], warmupSteps: c.config.warmup.steps, evalStep: r.step, pass1: [], pass4: [], pass8: [] });
    sameSteps(`init ${w}/${m}`, a.evalStep, r.step);
    a.seeds.push(Number(c.values.seed));
    a.runKeys.push(c.key);
    a.pass1.push(r.pass[1]);
    a.pass4.push(r.pass[4]);
    a.pass8.push(r.pass[8]);
    o.log(`read init ${c.name}: ${r.step.length} evaluations`);
  }

  const continual: Record<string, ContinualArm> = {};
  for (const { cell: c, dir } of contRuns) {
    const arm = c.values.method;
    const cfg = c.config;
    const math = readEvalSeries(dir, 'math', [1, 8]);
    const tool = readEvalSeries(dir, cfg.continual!.task.name, [1, 8]);
    const a = (continual[arm] ??= {
      seeds: [], runKeys: [], method: cfg.distill.method, warmupSteps: cfg.warmup.steps, distillSteps: cfg.distill.steps, continualSteps: cfg.continual!.steps,
      mathStep: math.step, mathPass1: [], mathPass8: [], toolStep: tool.step, toolPass1: [], toolPass8: [],
    });
    sameSteps(`continual ${arm} (math)`, a.mathStep, math.step);
    sameSteps(`continual ${arm} (tool)`, a.toolStep, tool.step);
    a.seeds.push(Number(c.values.seed));
    a.runKeys.push(c.key);
    a.mathPass1.push(math.pass[1]);
    a.mathPass8.push(math.pass[8]);
    a.toolPass1.push(tool.pass[1]);
    a.toolPass8.push(tool.pass[8]);
    o.log(`read continual ${c.name}: ${math.step.length} math and ${tool.step.length} tool evaluations`);
  }

  const ic = initRuns[0].cell.config;
  const cc = contRuns.find((r) => r.cell.values.method === 'opd')?.cell.config ?? contRuns[0].cell.config;
  const data: InitContinualData = {
    source: {
      command: `${INITCONTINUAL_COMMAND}${o.mode === 'quick' ? ' --quick' : ''}`,
      mode: o.mode,
      generator: 'lib/figures/paper/initcontinual/data.ts',
      specs: ['specs/init.json', 'specs/continual.json'],
      code: codeVersion(),
      init: {
        task: ic.task.name,
        warmupSteps: Object.fromEntries(Object.entries(init).map(([w, arms]) => [w, Object.values(arms)[0].warmupSteps])),
        distill: { steps: ic.distill.steps, prompts: ic.distill.prompts, rollouts: ic.distill.rollouts, lr: ic.distill.lr },
        eval: ic.eval,
      },
      continual: {
        warmup: cc.warmup,
        distill: { steps: cc.distill.steps, lr: cc.distill.lr },
        continual: cc.continual,
        eval: cc.eval,
      },
      createdAt: new Date().toISOString(),
    },
    init,
    continual,
  };
  checkInitContinualData('generateInitContinualData', data);
  if (o.out) {
    writeFigureData(o.out, data);
    o.log(`wrote ${o.out}`);
  }
  return data;
}
