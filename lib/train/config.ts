/**
 * The one typed configuration of a training run: `Config`, `DEFAULT_CONFIG` (one documented default per field),
 * `resolveConfig` (merge a partial over the defaults, reject unknown keys at any depth, validate every field with
 * a message that names it, fill in the task's and the objective's full option objects) and `deriveConfig` (every
 * value computed from the config, in one place).
 *
 * A run is: warm-up (SFT on teacher samples, W steps) -> distillation (S steps, any registered objective) ->
 * optionally a continual stage (C more steps of the same method on a second task). Steps are counted globally:
 * distillation is steps 1..S, the continual stage S+1..S+C; step 0 is the warm-up student.
 *
 * Open option objects (task.options, distill.objective, distill.props) are checked by their owners (the task
 * class, the objective registry, PROPS) and stored fully resolved, so config.json lists every value used and
 * two spellings of the same run (`{}` and `{digits: 2}`) get the same run key.
 */
import { getObjective, listObjectives } from '../objectives/registry';
import { resolveOptions } from '../objectives/batch';
import { REDUCTIONS, type Reduction } from '../objectives/types';
import { DEFAULT_PROPS, resolveProps, type PropsOptions } from '../sim/props';
import { DEFAULT_STUDENT, resolveStudentConfig, type StudentConfig } from '../sim/student';
import { createTask, TASK_NAMES, type TaskName } from '../sim/tasks';
import '../objectives'; // registers every objective

/** A task and its options (the task's own config object; `{}` = its defaults, see lib/sim/tasks). */
export interface TaskSpec {
  /** 'math' (column addition) or 'tool' (tool calls). */
  name: TaskName;
  /** Options of the task class (MathConfig / ToolConfig); stored fully resolved. Default {} (the task's defaults, e.g. math digits 2). */
  options: Record<string, unknown>;
}

/** The student's shape; its seed is the run seed and its vocabulary the task's (deriveConfig). */
export type StudentShape = Omit<StudentConfig, 'seed' | 'vocabSize'>;

export interface WarmupConfig {
  /** W: SFT steps on teacher samples before distillation; small = weak initialisation, large = strong; 0 = the random student. Default 700 (pass@1 about 0.5 on 2-digit math: a competent student, as in the paper's setting; 300 steps, pass@1 about 0.1, is the weak initialisation of specs/init.json, where every forward-KL method collapses: FINDINGS.md P1). */
  steps: number;
  /** Teacher samples (one per prompt) per SFT step. Default 32. */
  batch: number;
  /** Adam learning rate of the warm-up. Default 1e-3. */
  lr: number;
  /** Temperature of the teacher when it samples the SFT data (1 = the teacher itself). Default 1. */
  temperature: number;
  /** Share of each warm-up batch drawn from the continual stage's task instead (rounded, at least one main-task sample; needs `continual`): the prior exposure to the second domain that a pretrained model has. Default 0. */
  continualShare: number;
}

export type TeacherForm = 'full' | 'topk';
export const TEACHER_FORMS: readonly TeacherForm[] = ['full', 'topk'];
export type Behaviour = 'on-policy' | 'props';
export const BEHAVIOURS: readonly Behaviour[] = ['on-policy', 'props'];

export interface DistillConfig {
  /** The objective, by registry name: opd, aopd, aopd-zero, aopd-acc, aopd-random, gkd, seqkd, gopd, opdplus, topk-rkl, scope. Default 'aopd'. */
  method: string;
  /** The objective's options (lib/objectives/<method>.ts); stored fully resolved. Default {} (the objective's defaults). */
  objective: Record<string, unknown>;
  /** How per-token losses are reduced: token-mean, seq-mean-token-mean, sum. Default 'token-mean'. */
  reduction: Reduction;
  /** S: distillation steps. Default 100. */
  steps: number;
  /** P: prompts per step. Default 8. */
  prompts: number;
  /** G: rollouts per prompt (the group). Default 4. */
  rollouts: number;
  /** Adam learning rate. Default 1e-4 (1e-4 lifts a weak student steadily; 2e-3 collapsed it). */
  lr: number;
  /** Sampling temperature of the rollouts. Default 1. */
  temperature: number;
  /** Nucleus mass of the rollouts (1 = off). Default 1. */
  topP: number;
  /** Top-k truncation of the rollouts (0 = off). Default 0. */
  topK: number;
  /** How the objective sees the teacher: 'full' log-probs, or 'topk' (its top teacherTopK per position plus log pT(y_t), as real dumps hold it). Default 'full'. */
  teacherForm: TeacherForm;
  /** Width K of the teacher's top-K when teacherForm is 'topk' (must cover the objective's own topK). Default 32. */
  teacherTopK: number;
  /** 'on-policy' sampling from the student, or 'props' (PROPS behaviour policy, lib/sim/props.ts). Default 'on-policy'. */
  behaviour: Behaviour;
  /** PROPS options when behaviour is 'props'; stored fully resolved. Default {strength 1, clip 0.3, scope 'context'}. */
  props: PropsOptions;
}

export interface EvalConfig {
  /** Evaluate every this many steps (also at step 0 and at the end of each stage). Default 10. */
  every: number;
  /** Held-out (test split) prompts per evaluation. Default 64. */
  prompts: number;
  /** n: samples per prompt; pass@k is reported for k in 1, 2, 4, 8 up to n. Default 8. */
  samples: number;
  /** Sampling temperature of the evaluation. Default 1. */
  temperature: number;
  /** Nucleus mass of the evaluation samples (1 = off). Default 1. */
  topP: number;
}

export interface ContinualConfig {
  /** C: steps of the continual stage (same method and objective options, fresh Adam). Default 100. */
  steps: number;
  /** The second task. Default {name 'tool', options {}}. */
  task: TaskSpec;
  /** Adam learning rate of the stage; null = distill.lr. Default null. */
  lr: number | null;
}

export interface AnalysisConfig {
  /** Compute the heavier analysis metrics (topk/, grad/ token and batch norms, blackhole/) every this many steps; loss, rollout, adv/, entropy/ and intervention/ metrics are logged every step. Default 5. */
  every: number;
  /** Prompts of the fixed black-hole probe set (teacher responses on held-out prompts; every response position is a probe). Default 8. */
  probes: number;
  /** K of the topk/ diagnostics. Default 16. */
  topK: number;
}

export type IfExists = 'raise' | 'resume' | 'delete';
export const IF_EXISTS: readonly IfExists[] = ['raise', 'resume', 'delete'];

export interface OutConfig {
  /** Folder holding the sweeps (and _warmup/, the warm-up cache). Default 'runs'. */
  root: string;
  /** Sweep name: runs go to <root>/<sweep>/<runKey>/. Default 'default'. */
  sweep: string;
  /** When the run folder exists: 'raise' an error, 'resume' it (from its last checkpoint; a finished run is returned as is), or 'delete' it and start over. Default 'raise'. */
  ifExists: IfExists;
}

export interface Config {
  /** Seed of everything (student initialisation, prompts, samples); same seed and backend give identical metrics. Default 0. */
  seed: number;
  /** The distillation task. Default {name 'math', options {}} (2-digit addition). */
  task: TaskSpec;
  /** The student transformer's shape. Default lib/sim/student.ts DEFAULT_STUDENT (2 layers, width 64, 4 heads, context 48). */
  student: StudentShape;
  warmup: WarmupConfig;
  distill: DistillConfig;
  eval: EvalConfig;
  /** The continual stage, or null for none. Default null. */
  continual: ContinualConfig | null;
  analysis: AnalysisConfig;
  /** Save a checkpoint (weights, Adam state, step) every this many steps; 0 = never. Default 25. Does not change results. */
  checkpointEvery: number;
  out: OutConfig;
  /** Test hook: stop (status 'stopped') after this global step, as if interrupted; null = run to the end. Default null. Does not change results. */
  stopAfter: number | null;
}

const { seed: _seed, vocabSize: _vocab, ...STUDENT_SHAPE } = DEFAULT_STUDENT;

export const DEFAULT_CONTINUAL: Readonly<ContinualConfig> = { steps: 100, task: { name: 'tool', options: {} }, lr: null };

export const DEFAULT_CONFIG: Readonly<Config> = {
  seed: 0,
  task: { name: 'math', options: {} },
  student: STUDENT_SHAPE,
  warmup: { steps: 700, batch: 32, lr: 1e-3, temperature: 1, continualShare: 0 },
  distill: {
    method: 'aopd',
    objective: {},
    reduction: 'token-mean',
    steps: 100,
    prompts: 8,
    rollouts: 4,
    lr: 1e-4,
    temperature: 1,
    topP: 1,
    topK: 0,
    teacherForm: 'full',
    teacherTopK: 32,
    behaviour: 'on-policy',
    props: { ...DEFAULT_PROPS },
  },
  eval: { every: 10, prompts: 64, samples: 8, temperature: 1, topP: 1 },
  continual: null,
  analysis: { every: 5, probes: 8, topK: 16 },
  checkpointEvery: 25,
  out: { root: 'runs', sweep: 'default', ifExists: 'raise' },
  stopAfter: null,
};

/** Every field optional at every depth (what callers and the CLI pass). */
export type ConfigInput = {
  [K in keyof Config]?: Config[K] extends object | null ? DeepPartial<Config[K]> : Config[K];
};
export type DeepPartial<T> = T extends null ? null : T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

// ---------------------------------------------------------------------------------------------------------------
// validation helpers: every message names the field by its dotted path

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function fail(path: string, what: string, got: unknown): never {
  throw new Error(`config: ${path} must be ${what}, got ${show(got)}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Throws on a key of `given` that `known` does not have. */
function checkKeys(path: string, given: Record<string, unknown>, known: object): void {
  for (const key of Object.keys(given)) {
    if (!(key in known)) {
      const where = path ? `${path}.${key}` : key;
      throw new Error(`config: unknown key '${where}' (known keys${path ? ` of ${path}` : ''}: ${Object.keys(known).join(', ')})`);
    }
  }
}

/** Shallow merge of a section after checking its keys; `given` must be an object (or undefined). */
function section<T extends object>(path: string, defaults: Readonly<T>, given: unknown): T {
  if (given === undefined) return { ...defaults };
  if (!isPlainObject(given)) fail(path, 'an object', given);
  checkKeys(path, given, defaults);
  const out = { ...defaults } as Record<string, unknown>;
  for (const [k, v] of Object.entries(given)) if (v !== undefined) out[k] = v;
  return out as T;
}

function num(path: string, v: unknown, cond: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !cond(v)) fail(path, what, v);
  return v;
}
const positive = (path: string, v: unknown) => num(path, v, (x) => x > 0, 'a number > 0');
const posInt = (path: string, v: unknown) => num(path, v, (x) => Number.isInteger(x) && x >= 1, 'an integer >= 1');
const nonNegInt = (path: string, v: unknown) => num(path, v, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0');
const unitInterval = (path: string, v: unknown) => num(path, v, (x) => x > 0 && x <= 1, 'a number in (0, 1]');

function oneOf<T extends string>(path: string, v: unknown, options: readonly T[]): T {
  if (typeof v !== 'string' || !options.includes(v as T)) fail(path, `one of ${options.join(', ')}`, v);
  return v as T;
}

function nonEmptyString(path: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) fail(path, 'a non-empty string', v);
  return v;
}

/** Calls `f`, rewriting its error as one about the field at `path`. */
function owned<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new Error(`config: ${path}: ${(e as Error).message}`);
  }
}

function resolveTask(path: string, given: unknown, defaults: TaskSpec): TaskSpec {
  const spec = section(path, defaults, given);
  const name = oneOf(`${path}.name`, spec.name, TASK_NAMES);
  // options default to {} whatever the default task's options were (they belong to that task)
  const options = given !== undefined && isPlainObject(given) && 'options' in given ? given.options : name === defaults.name ? defaults.options : {};
  if (!isPlainObject(options)) fail(`${path}.options`, 'an object', options);
  const task = owned(`${path}.options`, () => createTask(name, options as never));
  return { name, options: JSON.parse(JSON.stringify(task.config)) as Record<string, unknown> };
}

/**
 * Merge `input` over DEFAULT_CONFIG and validate. Unknown keys throw at any depth (`config: unknown key
 * 'distill.lrr' ...`); bad values throw naming the field (`config: distill.lr must be a number > 0, got -1`).
 * Returns a complete, JSON-serialisable config with the task's and objective's options filled in.
 */
export function resolveConfig(input: ConfigInput | Config = {}): Config {
  if (!isPlainObject(input)) fail('config', 'an object', input);
  const given = input as Record<string, unknown>;
  checkKeys('', given, DEFAULT_CONFIG);
  const d = DEFAULT_CONFIG;

  const seed = num('seed', given.seed ?? d.seed, (x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32, 'an integer in [0, 2^32)');
  const task = resolveTask('task', given.task, d.task);

  const studentIn = section('student', d.student, given.student);
  const studentFull = owned('student', () => resolveStudentConfig({ ...studentIn, seed }));
  const student: StudentShape = {
    context: studentFull.context,
    layers: studentFull.layers,
    width: studentFull.width,
    heads: studentFull.heads,
    mlpRatio: studentFull.mlpRatio,
    initStd: studentFull.initStd,
  };

  const w = section('warmup', d.warmup, given.warmup);
  const warmup: WarmupConfig = {
    steps: nonNegInt('warmup.steps', w.steps),
    batch: posInt('warmup.batch', w.batch),
    lr: positive('warmup.lr', w.lr),
    temperature: positive('warmup.temperature', w.temperature),
    continualShare: num('warmup.continualShare', w.continualShare, (x) => x >= 0 && x < 1, 'a number in [0, 1)'),
  };

  const ds = section('distill', d.distill, given.distill);
  const names = listObjectives().map((o) => o.name);
  const method = oneOf('distill.method', ds.method, names);
  if (!isPlainObject(ds.objective)) fail('distill.objective', 'an object', ds.objective);
  const objective = owned('distill.objective', () => resolveOptions(method, getObjective(method).defaults, ds.objective as Record<string, unknown>)) as Record<string, unknown>;
  if (!isPlainObject(ds.props)) fail('distill.props', 'an object', ds.props);
  const props = owned('distill.props', () => resolveProps(ds.props as Partial<PropsOptions>));
  const distill: DistillConfig = {
    method,
    objective,
    reduction: oneOf('distill.reduction', ds.reduction, REDUCTIONS),
    steps: nonNegInt('distill.steps', ds.steps),
    prompts: posInt('distill.prompts', ds.prompts),
    rollouts: posInt('distill.rollouts', ds.rollouts),
    lr: positive('distill.lr', ds.lr),
    temperature: positive('distill.temperature', ds.temperature),
    topP: unitInterval('distill.topP', ds.topP),
    topK: nonNegInt('distill.topK', ds.topK),
    teacherForm: oneOf('distill.teacherForm', ds.teacherForm, TEACHER_FORMS),
    teacherTopK: posInt('distill.teacherTopK', ds.teacherTopK),
    behaviour: oneOf('distill.behaviour', ds.behaviour, BEHAVIOURS),
    props,
  };
  const V = studentFull.vocabSize;
  if (distill.teacherTopK > V) fail('distill.teacherTopK', `an integer in [1, ${V}] (the vocabulary)`, distill.teacherTopK);
  if (distill.teacherForm === 'topk') {
    const k = objective.topK;
    if (typeof k === 'number' && k === 0) fail(`distill.objective.topK`, `in [1, distill.teacherTopK = ${distill.teacherTopK}] with teacherForm 'topk' (0 = full vocabulary needs teacherForm 'full')`, k);
    if (typeof k === 'number' && k > distill.teacherTopK) fail('distill.teacherTopK', `>= distill.objective.topK = ${k} with teacherForm 'topk'`, distill.teacherTopK);
  }

  const ev = section('eval', d.eval, given.eval);
  const evalCfg: EvalConfig = {
    every: posInt('eval.every', ev.every),
    prompts: posInt('eval.prompts', ev.prompts),
    samples: posInt('eval.samples', ev.samples),
    temperature: positive('eval.temperature', ev.temperature),
    topP: unitInterval('eval.topP', ev.topP),
  };

  let continual: ContinualConfig | null = null;
  const cIn = 'continual' in given ? given.continual : d.continual;
  if (cIn !== null && cIn !== undefined) {
    const c = section('continual', DEFAULT_CONTINUAL, cIn);
    continual = {
      steps: nonNegInt('continual.steps', c.steps),
      task: resolveTask('continual.task', (cIn as Record<string, unknown>).task, DEFAULT_CONTINUAL.task),
      lr: c.lr === null ? null : positive('continual.lr', c.lr),
    };
  }

  if (warmup.continualShare > 0 && !continual) fail('warmup.continualShare', '0 without a continual stage (continual is null)', warmup.continualShare);

  const an = section('analysis', d.analysis, given.analysis);
  const analysis: AnalysisConfig = {
    every: posInt('analysis.every', an.every),
    probes: posInt('analysis.probes', an.probes),
    topK: num('analysis.topK', an.topK, (x) => Number.isInteger(x) && x >= 1 && x <= V, `an integer in [1, ${V}]`),
  };

  const o = section('out', d.out, given.out);
  const out: OutConfig = {
    root: nonEmptyString('out.root', o.root),
    sweep: nonEmptyString('out.sweep', o.sweep),
    ifExists: oneOf('out.ifExists', o.ifExists, IF_EXISTS),
  };
  if (!/^[A-Za-z0-9._-]+$/.test(out.sweep) || out.sweep.startsWith('_') || out.sweep === '.' || out.sweep === '..') {
    fail('out.sweep', "a folder name of letters, digits, '.', '_', '-' not starting with '_' (reserved for _warmup)", out.sweep);
  }

  const config: Config = {
    seed,
    task,
    student,
    warmup,
    distill,
    eval: evalCfg,
    continual,
    analysis,
    checkpointEvery: nonNegInt('checkpointEvery', given.checkpointEvery ?? d.checkpointEvery),
    out,
    stopAfter: given.stopAfter === undefined || given.stopAfter === null ? null : nonNegInt('stopAfter', given.stopAfter),
  };
  deriveConfig(config); // context fits every task
  return config;
}

/** Values computed from a resolved config (the only place they are computed). */
export interface Derived {
  /** The student's full config: the shape, the run seed, the task vocabulary. */
  studentConfig: StudentConfig;
  /** B = P * G rollouts per step. */
  rowsPerStep: number;
  /** S + C. */
  totalSteps: number;
  /** The continual stage's Adam learning rate. */
  continualLr: number | null;
  /** Global steps with an evaluation, ascending (0, every `eval.every`, the end of each stage). */
  evalSteps: number[];
  /** k of pass@k: powers of two up to min(8, eval.samples). */
  passKs: number[];
}

export function deriveConfig(config: Config): Derived {
  const main = createTask(config.task.name, config.task.options as never);
  const studentConfig: StudentConfig = { ...config.student, seed: config.seed, vocabSize: main.vocab.size };
  const tasks = [{ path: 'task', t: main }];
  if (config.continual) tasks.push({ path: 'continual.task', t: createTask(config.continual.task.name, config.continual.task.options as never) });
  for (const { path, t } of tasks) {
    const need = t.maxPromptLength + t.maxResponseLength - 1;
    if (need > config.student.context) {
      fail('student.context', `>= ${need} (${path} '${t.name}': prompts up to ${t.maxPromptLength} tokens + responses up to ${t.maxResponseLength} - 1)`, config.student.context);
    }
    if (t.vocab.size !== studentConfig.vocabSize) fail(`${path}.name`, `a task on the same vocabulary (${studentConfig.vocabSize} tokens)`, t.name);
  }
  const S = config.distill.steps;
  const C = config.continual?.steps ?? 0;
  const totalSteps = S + C;
  const evalSet = new Set<number>([0, S, totalSteps]);
  for (let s = config.eval.every; s < totalSteps; s += config.eval.every) evalSet.add(s);
  const passKs = [1, 2, 4, 8].filter((k) => k <= config.eval.samples);
  return {
    studentConfig,
    rowsPerStep: config.distill.prompts * config.distill.rollouts,
    totalSteps,
    continualLr: config.continual ? config.continual.lr ?? config.distill.lr : null,
    evalSteps: [...evalSet].sort((a, b) => a - b),
    passKs,
  };
}

/**
 * Set a dotted path (`distill.objective.eta`) in a plain config object, creating objects on the way (for
 * `--set key=value` and CLI flags). Unknown keys are left for resolveConfig to reject with its message.
 */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  if (parts.some((p) => p.length === 0)) throw new Error(`config: bad key path '${path}'`);
  let o = target;
  for (const p of parts.slice(0, -1)) {
    if (o[p] === null || o[p] === undefined) o[p] = {};
    if (!isPlainObject(o[p])) throw new Error(`config: cannot set '${path}': '${p}' is not an object`);
    o = o[p] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]] = value;
}
