/**
 * Warm-up: supervised fine-tuning (SFT) of the fresh student on teacher samples, W steps.
 *
 *   step i = 1..W:  x_1..x_B ~ train prompts (seeded by i),  y_b ~ pT(. | x_b) at warmup.temperature,
 *                   L = -(1 / sum m) sum_{b,t} m_bt log pS(y_bt | x_b, y_b,<t)      (lib/sim/nll.ts, token-mean)
 *                   one Adam step (lr = warmup.lr) on every student parameter
 *
 * W small gives a weak initialisation, W large a strong one (claim C3 varies it). With warmup.continualShare > 0
 * that share of every batch (rounded) is drawn from the continual stage's task instead: the prior exposure to the
 * second domain a pretrained model has, without which a continual stage starts from zero success. The result
 * depends only on (seed, task, student, warmup, the continual task when shared, code version), so it is cached
 * under <root>/_warmup/<warmupKey>/ (a checkpoint with Adam's state, warmup.json with the loss curve summary,
 * metrics.jsonl with `loss/sft` per step) and reused by every run, whatever its method, that starts from the same
 * warm-up. A cache folder is built under a temporary name and renamed into place, so a concurrent worker either
 * finds it complete or not at all.
 *
 * Shorter warm-ups are prefixes of longer ones (step i draws from streams seeded by i, the learning rate is
 * constant, Adam resumes bit-exactly: optimizer.ts). So a warm-up in training also caches itself every
 * WARMUP_SNAPSHOT_EVERY steps as the warm-up of that length, and a warm-up of W steps that is not cached continues
 * from the longest cached one of the same settings on that grid: the 300-step (weak) and 700-step (default)
 * students of a seed cost 700 steps, not 1000, in whichever order they are asked for. Either path gives the same
 * bits (test/train/warmup.test.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { packBatch } from '../sim/batch';
import { loadCheckpoint, saveCheckpoint } from '../sim/checkpoint';
import { responseNll } from '../sim/nll';
import { deriveSeed } from '../sim/rng';
import { Student } from '../sim/student';
import { createTask } from '../sim/tasks';
import { sampleTeacher } from '../sim/teacher';
import type { Config, Derived } from './config';
import { adamStep, createAdam } from './optimizer';
import { readJson, readJsonl, toJson, writeAtomic, writeJson } from './runFolder';
import { warmupInputs, warmupKey } from './runKey';

export interface WarmupProgress {
  step: number;
  total: number;
  loss: number;
}

export interface WarmupResult {
  /** The warmed-up student (the caller owns and disposes it). */
  student: Student;
  key: string;
  /** The cache folder, or null when W = 0 (nothing to cache). */
  dir: string | null;
  /** True when the student was loaded from the cache. */
  cached: boolean;
  /** Seconds spent training (0 when cached). */
  seconds: number;
  /** Response tokens trained on (0 when cached). */
  tokens: number;
  /** Mean `loss/sft` over the last 10% of steps (from the cache's warmup.json when cached); NaN when W = 0. */
  finalLoss: number;
}

interface WarmupFile {
  key: string;
  warmup: Record<string, unknown>;
  finalLoss: number;
  /** Seconds this process spent training it (steps continuedFrom + 1 .. W). */
  seconds: number;
  /** Response tokens of steps 1..W. */
  tokens: number;
  /** The cached warm-up length it was continued from (0: trained from the initialisation). */
  continuedFrom?: number;
}

export function warmupDir(root: string, key: string): string {
  return path.join(root, '_warmup', key);
}

/** A warm-up every this many steps caches its state as the warm-up of that length (file header). */
export const WARMUP_SNAPSHOT_EVERY = 100;

/** The state of a warm-up after `step` steps: where a longer one continues, and what a snapshot holds. */
export interface WarmupState {
  step: number;
  student: Student;
  optimizer: tf.AdamOptimizer;
  /** loss/sft of steps 1..step. */
  losses: Float64Array;
  /** Response tokens trained on in steps 1..step. */
  tokens: number;
}

/**
 * SFT up to W = config.warmup.steps from the seeded initialisation, or from `from` (the same warm-up's state after
 * fewer steps). `snapshot` is awaited after every step that is a multiple of WARMUP_SNAPSHOT_EVERY below W. No
 * caching here; the caller owns (and disposes) the returned student and optimiser.
 */
export async function trainWarmup(
  config: Config,
  derived: Derived,
  onStep?: (p: WarmupProgress) => void,
  from: WarmupState | null = null,
  snapshot?: (state: WarmupState) => Promise<void>,
): Promise<WarmupState> {
  const { seed, warmup } = config;
  if (from && !(from.step >= 0 && from.step <= warmup.steps)) throw new Error(`trainWarmup: from.step must be in [0, ${warmup.steps}], got ${from.step}`);
  const task = createTask(config.task.name, config.task.options as never);
  const second = config.continual && warmup.continualShare > 0 ? createTask(config.continual.task.name, config.continual.task.options as never) : null;
  const fromSecond = second ? Math.min(Math.round(warmup.batch * warmup.continualShare), warmup.batch - 1) : 0; // keep one main-task sample
  const student = from ? from.student : new Student(derived.studentConfig);
  const optimizer = from ? from.optimizer : createAdam(warmup.lr);
  const losses = new Float64Array(warmup.steps);
  if (from) losses.set(from.losses.subarray(0, from.step));
  let tokens = from ? from.tokens : 0;
  try {
    for (let i = (from?.step ?? 0) + 1; i <= warmup.steps; i++) {
      const prompts = task.samplePrompts('train', warmup.batch - fromSecond, deriveSeed(seed, 'warmup', 'prompts', i));
      const ys = sampleTeacher(task, prompts, deriveSeed(seed, 'warmup', 'teacher', i), { temperature: warmup.temperature });
      const tokens_B = prompts.map((p) => p.tokens);
      if (second && fromSecond > 0) {
        const more = second.samplePrompts('train', fromSecond, deriveSeed(seed, 'warmup', 'prompts', second.name, i));
        ys.push(...sampleTeacher(second, more, deriveSeed(seed, 'warmup', 'teacher', second.name, i), { temperature: warmup.temperature }));
        tokens_B.push(...more.map((p) => p.tokens));
      }
      const batch = packBatch(tokens_B, ys);
      for (const y of ys) tokens += y.length;
      const { value, grads } = tf.variableGrads(() => responseNll(student, batch), student.variables);
      losses[i - 1] = value.dataSync()[0];
      adamStep(optimizer, student.variables, student.variables.map((v) => grads[v.name]));
      tf.dispose([value, ...Object.values(grads)]);
      onStep?.({ step: i, total: warmup.steps, loss: losses[i - 1] });
      if (snapshot && i < warmup.steps && i % WARMUP_SNAPSHOT_EVERY === 0) await snapshot({ step: i, student, optimizer, losses: losses.subarray(0, i), tokens });
    }
  } catch (e) {
    student.dispose();
    optimizer.dispose();
    throw e;
  }
  return { step: warmup.steps, student, optimizer, losses, tokens };
}

/** The same config with a warm-up of `steps` steps. */
function withSteps(config: Config, steps: number): Config {
  return { ...config, warmup: { ...config.warmup, steps } };
}

function tailMean(x: Float64Array): number {
  if (x.length === 0) return NaN;
  const from = Math.floor(x.length * 0.9);
  const tail = x.subarray(Math.min(from, x.length - 1));
  return tail.reduce((a, v) => a + v, 0) / tail.length;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Claims the right to train warm-up `dir` (an O_EXCL `<dir>.lock` holding our pid). While another live process
 * holds it, waits for that process to finish (its warmup.json appears) and returns false: the caller loads the
 * cache instead of training the same student twice (two sweep workers starting two methods of one seed). A lock
 * whose process is gone is taken over.
 */
async function claimWarmup(dir: string, done: string, pollMs = 250): Promise<{ claimed: boolean; release: () => void }> {
  const lock = `${dir}.lock`;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  for (;;) {
    if (fs.existsSync(done)) return { claimed: false, release: () => undefined };
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return { claimed: true, release: () => fs.rmSync(lock, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder = NaN;
    try {
      holder = Number(fs.readFileSync(lock, 'utf8').trim());
    } catch {
      continue; // released between our open and read
    }
    if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
      fs.rmSync(lock, { force: true }); // its process died: take over
      continue;
    }
    await new Promise((r) => setTimeout(r, pollMs)); // being written (or the pid not written yet)
  }
}

/**
 * The warm-up student for `config`: from <root>/_warmup/<key>/ when present, else trained and cached. Concurrent
 * callers for the same key train it once (claimWarmup); the others wait and load it.
 */
export async function warmupStudent(config: Config, derived: Derived, onStep?: (p: WarmupProgress) => void): Promise<WarmupResult> {
  const key = warmupKey(config);
  if (config.warmup.steps === 0) {
    return { student: new Student(derived.studentConfig), key, dir: null, cached: false, seconds: 0, tokens: 0, finalLoss: NaN };
  }
  const dir = warmupDir(config.out.root, key);
  const done = path.join(dir, 'warmup.json');
  const claim = await claimWarmup(dir, done);
  if (!claim.claimed) {
    const { student } = await loadCheckpoint(dir);
    const info = readJson<WarmupFile>(done);
    return { student, key, dir, cached: true, seconds: 0, tokens: 0, finalLoss: info.finalLoss ?? NaN };
  }
  try {
    return await trainAndCache(config, derived, key, dir, onStep);
  } finally {
    claim.release();
  }
}

/** The longest cached warm-up of the same settings on the snapshot grid, shorter than config.warmup.steps, with its Adam state; null if none. */
async function longestCachedPrefix(config: Config): Promise<WarmupState | null> {
  for (let s = Math.floor((config.warmup.steps - 1) / WARMUP_SNAPSHOT_EVERY) * WARMUP_SNAPSHOT_EVERY; s > 0; s -= WARMUP_SNAPSHOT_EVERY) {
    const dir = warmupDir(config.out.root, warmupKey(withSteps(config, s)));
    if (!fs.existsSync(path.join(dir, 'warmup.json')) || !fs.existsSync(path.join(dir, 'optimizer.json'))) continue;
    const { student, optimizer } = await loadCheckpoint(dir);
    if (!optimizer) {
      student.dispose();
      continue;
    }
    const rows = readJsonl<{ step: number; 'loss/sft': number }>(path.join(dir, 'metrics.jsonl'));
    const info = readJson<WarmupFile>(path.join(dir, 'warmup.json'));
    if (rows.length !== s || rows.some((r, i) => r.step !== i + 1)) {
      student.dispose();
      optimizer.dispose();
      throw new Error(`warm-up cache ${dir}: metrics.jsonl must hold the loss of steps 1..${s}; delete the folder to retrain it`);
    }
    return { step: s, student, optimizer, losses: Float64Array.from(rows, (r) => r['loss/sft']), tokens: info.tokens };
  }
  return null;
}

/** Write the warm-up state as the cache folder of its length (built under a temporary name, then renamed; kept if another process wrote it first). */
async function writeWarmupCache(config: Config, state: WarmupState, seconds: number, continuedFrom: number): Promise<{ key: string; dir: string; finalLoss: number }> {
  const c = withSteps(config, state.step);
  const key = warmupKey(c);
  const dir = warmupDir(config.out.root, key);
  const finalLoss = tailMean(state.losses.subarray(0, state.step));
  if (fs.existsSync(path.join(dir, 'warmup.json'))) return { key, dir, finalLoss };
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  await saveCheckpoint(tmp, state.student, state.optimizer, { warmupKey: key, steps: state.step });
  writeAtomic(path.join(tmp, 'metrics.jsonl'), Array.from(state.losses.subarray(0, state.step), (l, i) => `${toJson({ step: i + 1, 'loss/sft': l })}\n`).join(''));
  const info: WarmupFile = { key, warmup: warmupInputs(c), finalLoss, seconds, tokens: state.tokens, continuedFrom };
  writeJson(path.join(tmp, 'warmup.json'), JSON.parse(toJson(info)));
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    // another worker finished the same warm-up first: identical by construction, keep theirs
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, 'warmup.json'))) throw e;
  }
  return { key, dir, finalLoss };
}

async function trainAndCache(config: Config, derived: Derived, key: string, dir: string, onStep?: (p: WarmupProgress) => void): Promise<WarmupResult> {
  const t0 = performance.now();
  const from = await longestCachedPrefix(config);
  const continuedFrom = from?.step ?? 0;
  const state = await trainWarmup(config, derived, onStep, from, (snap) => writeWarmupCache(config, snap, (performance.now() - t0) / 1000, continuedFrom).then(() => undefined));
  try {
    const seconds = (performance.now() - t0) / 1000;
    const written = await writeWarmupCache(config, state, seconds, continuedFrom);
    if (written.key !== key || written.dir !== dir) throw new Error(`warm-up cache: wrote ${written.dir}, expected ${dir}`);
    return { student: state.student, key, dir, cached: false, seconds, tokens: state.tokens - (from?.tokens ?? 0), finalLoss: written.finalLoss };
  } catch (e) {
    state.student.dispose();
    throw e;
  } finally {
    state.optimizer.dispose();
  }
}
