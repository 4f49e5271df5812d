/**
 * `run(config)`: one training run from config to run folder (what the CLI's `opdlab run` and the sweep runner call).
 *
 *   1. resolve the config, compute its run key, open <root>/<sweep>/<runKey>/ per out.ifExists
 *   2. warm-up student: from the cache <root>/_warmup/<warmupKey>/ or trained (warmup.ts)
 *   3. evaluate at step 0 (once per warm-up: cached in its folder, warmupEval); distillation steps 1..S on the task (step.ts); evaluations at derived.evalSteps
 *   4. optional continual stage: steps S+1..S+C of the same method on continual.task with a fresh Adam; the first
 *      task is still evaluated (retention) next to the second (its success rate)
 *   5. summary.json, status 'done'
 *
 * Checkpoints every checkpointEvery steps hold the student's weights, Adam's moments and step count, and the
 * trainer's state: the global step, the phase, and the counters behind the time/ metrics. No RNG state needs
 * saving beyond the step: every random draw comes from a stream seeded by (seed, phase, purpose, step) (lib/sim
 * rng.ts deriveSeed), so step s draws the same numbers whether or not the run was interrupted before it. The
 * checkpoint records that (`rng`) for readers. Resuming cuts metrics.jsonl and eval.jsonl back to the checkpoint's
 * step and continues; the result equals an uninterrupted run's (test/train/run.test.ts), except the time/ keys.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { TeacherTopTracker } from '../analysis/tracker';
import { selectBackend } from '../backend';
import { loadCheckpoint, saveCheckpoint } from '../sim/checkpoint';
import { deriveSeed } from '../sim/rng';
import { Student } from '../sim/student';
import { createTask, type Prompt, type Task } from '../sim/tasks';
import { deriveConfig, resolveConfig, type Config, type ConfigInput, type Derived } from './config';
import { evaluate, type EvalResult } from './evaluate';
import { createAdam } from './optimizer';
import {
  appendJsonl, openRunFolder, readJson, readJsonl, truncateJsonl, writeJson, writeStatus, type RunStatus,
} from './runFolder';
import { canonicalJson, codeVersion, gitCommit, packageRoot, runKey, sha256, warmupKey } from './runKey';
import { buildProbeSet, distillStep, type Phase, type StepContext } from './step';
import { warmupStudent } from './warmup';

export type ProgressEvent =
  | { stage: 'warmup'; step: number; total: number; loss: number }
  | { stage: 'train'; phase: Phase; step: number; total: number; loss: number; pass1: number | null };

export interface RunHooks {
  /** Called after every warm-up step and every training step. */
  onProgress?: (event: ProgressEvent) => void;
}

export interface Summary {
  runKey: string;
  warmupKey: string;
  method: string;
  seed: number;
  steps: { warmup: number; distill: number; continual: number };
  /** Flat namespaced scalars (docs/metrics.md "Summary"). */
  metrics: Record<string, number>;
}

export interface RunResult {
  dir: string;
  runKey: string;
  config: Config;
  status: RunStatus;
  /** summary.json's content once the run is done; null when it stopped early. */
  summary: Summary | null;
}

/** Counters behind the time/ metrics; carried through checkpoints so a resumed run reports the whole run. */
interface Counters {
  warmupSeconds: number;
  warmupTokens: number;
  trainSeconds: number;
  trainTokens: number;
  evalSeconds: number;
  evalTokens: number;
  /** Wall seconds of earlier segments (before the last resume). */
  wallSeconds: number;
}

interface TrainerState {
  step: number;
  phase: Phase;
  rng: { seed: number; scheme: string };
  counters: Counters;
}

const CHECKPOINT = 'checkpoint';

/** Replace <dir>/checkpoint as a whole: write checkpoint.new, move the old one aside, rename, delete the old. */
async function saveRunCheckpoint(dir: string, student: Student, optimizer: tf.AdamOptimizer, state: TrainerState): Promise<void> {
  const target = path.join(dir, CHECKPOINT);
  const fresh = `${target}.new`;
  const old = `${target}.old`;
  fs.rmSync(fresh, { recursive: true, force: true });
  await saveCheckpoint(fresh, student, optimizer, { trainer: state });
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(target)) fs.renameSync(target, old);
  fs.renameSync(fresh, target);
  fs.rmSync(old, { recursive: true, force: true });
}

/** The last complete checkpoint (checkpoint/, or checkpoint.old/ if the process died between the two renames). */
function findCheckpoint(dir: string): string | null {
  for (const name of [CHECKPOINT, `${CHECKPOINT}.old`]) {
    const p = path.join(dir, name);
    if (fs.existsSync(path.join(p, 'student.json')) && fs.existsSync(path.join(p, 'optimizer.json'))) return p;
  }
  return null;
}

function packageVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['@tensorflow/tfjs', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm']) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      out[name] = 'unknown';
    }
  }
  return out;
}

function evalPrompts(config: Config, task: Task<Prompt>): Prompt[] {
  return task.samplePrompts('test', config.eval.prompts, deriveSeed(config.seed, 'eval', 'prompts', task.name));
}

/**
 * The step-0 evaluation is a function of the warm-up student, the task, the evaluation settings and the seed
 * only, so it is computed once per warm-up and kept in the warm-up's cache folder (eval0/<sha256 of `id`>.json):
 * every method trained from the same warm-up reads it instead of sampling the same 512 responses again.
 */
function warmupEval(warmDir: string, id: Record<string, unknown>, compute: () => Pick<EvalResult, 'metrics' | 'tokens'>): Pick<EvalResult, 'metrics' | 'tokens'> {
  const file = path.join(warmDir, 'eval0', `${sha256(canonicalJson(id))}.json`);
  if (fs.existsSync(file)) {
    const cached = readJson<{ id: unknown; metrics: Record<string, number>; tokens: number }>(file);
    if (canonicalJson(cached.id) === canonicalJson(id)) return cached;
  }
  const r = compute();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeJson(file, { id, metrics: r.metrics, tokens: r.tokens });
  return r;
}

/** Run (or resume) one training run; see the file header. */
export async function run(input: ConfigInput | Config = {}, hooks: RunHooks = {}): Promise<RunResult> {
  const config = resolveConfig(input);
  const derived = deriveConfig(config);
  const key = runKey(config);
  const dir = path.join(config.out.root, config.out.sweep, key);
  const opened = openRunFolder(dir, config.out.ifExists);
  const files = {
    config: path.join(dir, 'config.json'),
    meta: path.join(dir, 'meta.json'),
    metrics: path.join(dir, 'metrics.jsonl'),
    eval: path.join(dir, 'eval.jsonl'),
    summary: path.join(dir, 'summary.json'),
  };
  if (opened.mode === 'resume' && opened.previous === 'done' && fs.existsSync(files.summary)) {
    return { dir, runKey: key, config, status: 'done', summary: readJson<Summary>(files.summary) };
  }
  const backend = selectBackend();
  const meta = fs.existsSync(files.meta)
    ? readJson<Record<string, unknown> & { resumes: unknown[] }>(files.meta)
    : {
        runKey: key,
        code: { ...codeVersion(), commit: gitCommit(packageRoot()) },
        packages: packageVersions(),
        backend: { name: tf.getBackend(), selected: backend.name, reason: backend.reason },
        node: process.version,
        seed: config.seed,
        startedAt: new Date().toISOString(),
        resumes: [] as unknown[],
      };
  if (meta.runKey !== key) throw new Error(`run: ${files.meta} belongs to run ${String(meta.runKey)}, not ${key}`);
  if (!fs.existsSync(files.config)) writeJson(files.config, config);
  writeStatus(dir, 'running');
  try {
    return await train(config, derived, key, dir, files, meta, opened.mode === 'resume', hooks);
  } catch (e) {
    writeStatus(dir, 'failed', (e as Error).stack ?? String(e));
    throw e;
  }
}

async function train(
  config: Config,
  derived: Derived,
  key: string,
  dir: string,
  files: Record<'config' | 'meta' | 'metrics' | 'eval' | 'summary', string>,
  meta: Record<string, unknown> & { resumes: unknown[] },
  reopened: boolean,
  hooks: RunHooks,
): Promise<RunResult> {
  const wall0 = performance.now();
  const S = config.distill.steps;
  const total = derived.totalSteps;
  const mainTask = createTask(config.task.name, config.task.options as never);
  const contTask = config.continual ? createTask(config.continual.task.name, config.continual.task.options as never) : null;
  const prompts = new Map<Task<Prompt>, Prompt[]>([[mainTask, evalPrompts(config, mainTask)]]);
  if (contTask) prompts.set(contTask, evalPrompts(config, contTask));

  // everything holding tensors, disposed in the finally below whatever happens
  const held: { student: Student | null; optimizer: tf.AdamOptimizer | null; ref: Student | null } = { student: null, optimizer: null, ref: null };
  try {
    const ckptDir = findCheckpoint(dir);
    const gopd = config.distill.method === 'gopd';
    const warm = !ckptDir || gopd ? await warmupStudent(config, derived, (p) => hooks.onProgress?.({ stage: 'warmup', ...p })) : null;
    if (warm) {
      held.student = warm.student;
      meta.warmup = { key: warm.key, cached: warm.cached, dir: warm.dir, finalLoss: warm.finalLoss };
    }
    if (warm && gopd) held.ref = new Student(derived.studentConfig, warm.student.getWeights());
    let optimizerPhase: Phase = 'distill';
    let startStep = 1;
    let counters: Counters;
    if (ckptDir) {
      held.student?.dispose();
      held.student = null;
      const ck = await loadCheckpoint(ckptDir);
      held.student = ck.student;
      held.optimizer = ck.optimizer;
      const state = ck.extra.trainer as TrainerState;
      if (!ck.optimizer || !state) throw new Error(`run: checkpoint ${ckptDir} lacks the optimiser or the trainer state`);
      optimizerPhase = state.phase;
      startStep = state.step + 1;
      counters = state.counters;
      truncateJsonl(files.metrics, state.step);
      truncateJsonl(files.eval, state.step);
      meta.resumes.push({ at: new Date().toISOString(), fromStep: state.step });
    } else {
      held.optimizer = createAdam(config.distill.lr);
      counters = { warmupSeconds: warm!.seconds, warmupTokens: warm!.tokens, trainSeconds: 0, trainTokens: 0, evalSeconds: 0, evalTokens: 0, wallSeconds: 0 };
      truncateJsonl(files.metrics, -1);
      truncateJsonl(files.eval, -1);
      if (reopened) meta.resumes.push({ at: new Date().toISOString(), fromStep: 0 });
    }
    writeJson(files.meta, meta);
    const student = held.student!;

    const tracker = new TeacherTopTracker();
    const probe = buildProbeSet(mainTask, config.analysis.probes, config.seed);
    const evalSteps = new Set(derived.evalSteps);
    let lastPass1: number | null = startStep === 1 ? null : lastEvalPass1(files.eval, mainTask.name);
    const doEval = (step: number, phase: Phase | 'warmup') => {
      const tasks = [mainTask];
      if (contTask && (step === 0 || step >= S)) tasks.push(contTask);
      for (const task of tasks) {
        const t0 = performance.now();
        const options = {
          samples: config.eval.samples,
          ks: derived.passKs,
          temperature: config.eval.temperature,
          topP: config.eval.topP,
          seed: deriveSeed(config.seed, 'eval', 'sample', task.name),
        };
        const compute = () => evaluate(student, task, prompts.get(task)!, options);
        const r = step === 0 && warm?.dir ? warmupEval(warm.dir, { task: task.name, taskOptions: task.config, prompts: config.eval.prompts, options }, compute) : compute();
        const seconds = (performance.now() - t0) / 1000;
        counters.evalSeconds += seconds;
        counters.evalTokens += r.tokens;
        appendJsonl(files.eval, { step, phase, task: task.name, ...r.metrics, 'time/eval_s': seconds });
        if (task === mainTask) lastPass1 = r.metrics['eval/pass@1'];
      }
    };
    // this segment's wall time (warm-up included) is added to the earlier segments'
    const withWall = (): Counters => ({ ...counters, wallSeconds: counters.wallSeconds + (performance.now() - wall0) / 1000 });
    const stop = (): RunResult => {
      writeStatus(dir, 'stopped', `stopAfter = ${config.stopAfter}`);
      return { dir, runKey: key, config, status: 'stopped', summary: null };
    };

    if (startStep === 1) doEval(0, 'warmup');
    if (config.stopAfter !== null && config.stopAfter < startStep && startStep <= total) return stop();
    for (let s = startStep; s <= total; s++) {
      const phase: Phase = s <= S ? 'distill' : 'continual';
      if (phase !== optimizerPhase) {
        held.optimizer!.dispose();
        held.optimizer = createAdam(derived.continualLr!);
        optimizerPhase = phase;
      }
      const optimizer = held.optimizer!;
      const ctx: StepContext = { config, phase, task: phase === 'distill' ? mainTask : contTask!, student, optimizer, ref: held.ref, probe, tracker };
      const t0 = performance.now();
      const res = distillStep(ctx, s, s % config.analysis.every === 0);
      counters.trainSeconds += (performance.now() - t0) / 1000;
      counters.trainTokens += res.tokens;
      appendJsonl(files.metrics, { step: s, phase, ...res.metrics });
      if (evalSteps.has(s)) doEval(s, phase);
      hooks.onProgress?.({ stage: 'train', phase, step: s, total, loss: res.metrics['loss/objective'], pass1: lastPass1 });
      if (s < total && config.checkpointEvery > 0 && s % config.checkpointEvery === 0) {
        await saveRunCheckpoint(dir, student, optimizer, { step: s, phase, rng: { seed: config.seed, scheme: 'deriveSeed(seed, phase, purpose, step)' }, counters: withWall() });
      }
      if (config.stopAfter !== null && s >= config.stopAfter && s < total) return stop();
    }
    const summary = summarise(config, key, files, mainTask, contTask, withWall());
    writeJson(files.summary, summary);
    writeStatus(dir, 'done');
    fs.rmSync(path.join(dir, CHECKPOINT), { recursive: true, force: true });
    return { dir, runKey: key, config, status: 'done', summary };
  } finally {
    held.student?.dispose();
    held.optimizer?.dispose();
    held.ref?.dispose();
  }
}

function lastEvalPass1(file: string, task: string): number | null {
  const rows = readJsonl<{ task: string; 'eval/pass@1': number }>(file).filter((r) => r.task === task);
  return rows.length ? rows[rows.length - 1]['eval/pass@1'] : null;
}

function summarise(config: Config, key: string, files: Record<'metrics' | 'eval', string>, mainTask: Task<Prompt>, contTask: Task<Prompt> | null, c: Counters): Summary {
  const evals = readJsonl<Record<string, number | string>>(files.eval);
  const S = config.distill.steps;
  const at = (task: string, pick: (rows: Record<string, number | string>[]) => Record<string, number | string> | undefined) =>
    pick(evals.filter((r) => r.task === task));
  const metrics: Record<string, number> = {};
  const copy = (prefix: string, row: Record<string, number | string> | undefined) => {
    if (!row) return;
    for (const [k, v] of Object.entries(row)) if (k.startsWith('eval/') && typeof v === 'number') metrics[`${prefix}/${k.slice(5)}`] = v;
  };
  const main = mainTask.name;
  copy(`initial/${main}`, at(main, (r) => r.find((x) => x.step === 0)));
  copy(`final/${main}`, at(main, (r) => r[r.length - 1]));
  const train = readJsonl<Record<string, number | string>>(files.metrics);
  const tail = train.slice(Math.floor(train.length * 0.9));
  if (tail.length) metrics['final/loss_objective_tail_mean'] = tail.reduce((a, r) => a + Number(r['loss/objective'] ?? NaN), 0) / tail.length;
  if (contTask && config.continual) {
    const cont = contTask.name;
    const mainBefore = at(main, (r) => r.find((x) => x.step === S))?.['eval/pass@1'] as number | undefined;
    const mainAfter = at(main, (r) => r[r.length - 1])?.['eval/pass@1'] as number | undefined;
    const contBefore = at(cont, (r) => r.find((x) => x.step === S))?.['eval/pass@1'] as number | undefined;
    copy(`final/${cont}`, at(cont, (r) => r[r.length - 1]));
    const contAfter = metrics[`final/${cont}/pass@1`];
    if (mainBefore !== undefined && mainAfter !== undefined) {
      metrics[`continual/${main}_pass@1_before`] = mainBefore;
      metrics[`continual/${main}_pass@1_after`] = mainAfter;
      metrics['continual/retention'] = mainBefore > 0 ? mainAfter / mainBefore : NaN;
    }
    if (contBefore !== undefined && contAfter !== undefined) {
      metrics[`continual/${cont}_pass@1_before`] = contBefore;
      metrics[`continual/${cont}_pass@1_after`] = contAfter;
    }
  }
  const tokens = c.warmupTokens + c.trainTokens + c.evalTokens;
  metrics['time/total_s'] = c.wallSeconds;
  metrics['time/warmup_s'] = c.warmupSeconds;
  metrics['time/train_s'] = c.trainSeconds;
  metrics['time/eval_s'] = c.evalSeconds;
  metrics['time/tokens'] = tokens;
  metrics['time/tokens_per_s'] = c.wallSeconds > 0 ? tokens / c.wallSeconds : NaN;
  metrics['time/train_tokens_per_s'] = c.trainSeconds > 0 ? c.trainTokens / c.trainSeconds : NaN;
  return {
    runKey: key,
    warmupKey: warmupKey(config),
    method: config.distill.method,
    seed: config.seed,
    steps: { warmup: config.warmup.steps, distill: S, continual: config.continual?.steps ?? 0 },
    metrics,
  };
}
