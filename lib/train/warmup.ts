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
 * depends only on (seed, task, student, warmup, the continual task when shared, code version), so it is cached under <root>/_warmup/<warmupKey>/ (a checkpoint
 * without optimiser state, warmup.json with the loss curve summary, metrics.jsonl with `loss/sft` per step) and
 * reused by every run, whatever its method, that starts from the same warm-up. A cache folder is built under a
 * temporary name and renamed into place, so a concurrent worker either finds it complete or not at all.
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
import { appendJsonl, readJson, toJson, writeAtomic, writeJson } from './runFolder';
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
  seconds: number;
  tokens: number;
}

export function warmupDir(root: string, key: string): string {
  return path.join(root, '_warmup', key);
}

/** SFT W steps from the seeded initialisation (no caching). */
export function trainWarmup(config: Config, derived: Derived, onStep?: (p: WarmupProgress) => void): { student: Student; losses: Float64Array; tokens: number } {
  const { seed, warmup } = config;
  const task = createTask(config.task.name, config.task.options as never);
  const second = config.continual && warmup.continualShare > 0 ? createTask(config.continual.task.name, config.continual.task.options as never) : null;
  const fromSecond = second ? Math.min(Math.round(warmup.batch * warmup.continualShare), warmup.batch - 1) : 0; // keep one main-task sample
  const student = new Student(derived.studentConfig);
  const optimizer = createAdam(warmup.lr);
  const losses = new Float64Array(warmup.steps);
  let tokens = 0;
  try {
    for (let i = 1; i <= warmup.steps; i++) {
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
    }
  } catch (e) {
    student.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
  return { student, losses, tokens };
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
    return await trainAndCache(config, derived, key, dir, done, onStep);
  } finally {
    claim.release();
  }
}

async function trainAndCache(config: Config, derived: Derived, key: string, dir: string, done: string, onStep?: (p: WarmupProgress) => void): Promise<WarmupResult> {
  const t0 = performance.now();
  const { student, losses, tokens } = trainWarmup(config, derived, onStep);
  const seconds = (performance.now() - t0) / 1000;
  const finalLoss = tailMean(losses);
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp, { recursive: true });
  await saveCheckpoint(tmp, student, null, { warmupKey: key, steps: config.warmup.steps });
  writeAtomic(path.join(tmp, 'metrics.jsonl'), '');
  losses.forEach((l, i) => appendJsonl(path.join(tmp, 'metrics.jsonl'), { step: i + 1, 'loss/sft': l }));
  const info: WarmupFile = { key, warmup: warmupInputs(config), finalLoss, seconds, tokens };
  writeJson(path.join(tmp, 'warmup.json'), JSON.parse(toJson(info)));
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    // another worker finished the same warm-up first: identical by construction, keep theirs
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(done)) throw e;
  }
  return { student, key, dir, cached: false, seconds, tokens, finalLoss };
}
