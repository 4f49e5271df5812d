/**
 * TEST JOB - not for experiments. The sweep runner's tests run cells with it instead of the trainer, so they are
 * fast, deterministic and independent of lib/train. It lives in lib/ only because workers are plain Node processes
 * that load the built dist/lib/sweep/testing/sleepJob.js.
 *
 * Config (unknown keys rejected, every field checked):
 *   value   number, required      seed    integer >= 0, default 0
 *   sleepMs integer >= 0, default 50 (split over `steps` sleeps, each abortable)
 *   steps   integer >= 1, default 4
 *   label   string, optional (lets a spec bundle a non-numeric setting)
 * Metrics (hand-checkable): final/score = value + 0.1 seed;  final/loss = 1 / (1 + value^2) + 0.01 seed^2;
 *   final/steps = steps.  Writes metrics.jsonl (one row per step) and config.json into the run folder.
 * Test hooks from the environment (not part of the key):
 *   OPDLAB_TESTJOB_TRACE=<file>   append "<runKey> <pid> start|end" lines (to count executions across processes)
 *   OPDLAB_TESTJOB_FAIL=<v1,v2>   throw for cells whose value is listed
 */
import * as fs from 'fs';
import * as path from 'path';
import { abortError, type Job, type JobContext, type Metrics } from '../job';

export interface SleepConfig {
  value: number;
  seed: number;
  sleepMs: number;
  steps: number;
  label?: string;
}

const KEYS = ['value', 'seed', 'sleepMs', 'steps', 'label'];

function validate(input: unknown): SleepConfig {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new Error(`config: must be an object, got ${JSON.stringify(input)}`);
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) throw new Error(`config: unknown key '${k}' (known keys: ${KEYS.join(', ')})`);
  const num = (k: string, v: unknown, ok: (x: number) => boolean, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw new Error(`config: ${k} must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const config: SleepConfig = {
    value: num('value', o.value, () => true, 'a finite number'),
    seed: num('seed', o.seed ?? 0, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0'),
    sleepMs: num('sleepMs', o.sleepMs ?? 50, (x) => Number.isInteger(x) && x >= 0, 'an integer >= 0'),
    steps: num('steps', o.steps ?? 4, (x) => Number.isInteger(x) && x >= 1, 'an integer >= 1'),
  };
  if (o.label !== undefined) {
    if (typeof o.label !== 'string') throw new Error(`config: label must be a string, got ${JSON.stringify(o.label)}`);
    config.label = o.label;
  }
  return config;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const reason = () => (signal.reason instanceof Error ? signal.reason : abortError());
    if (signal.aborted) return reject(reason());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(reason());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function trace(runDir: string, what: string): void {
  const file = process.env.OPDLAB_TESTJOB_TRACE;
  if (file) fs.appendFileSync(file, `${path.basename(runDir)} ${process.pid} ${what}\n`);
}

export function sleepMetrics(c: SleepConfig): Metrics {
  return {
    'final/score': c.value + 0.1 * c.seed,
    'final/loss': 1 / (1 + c.value * c.value) + 0.01 * c.seed * c.seed,
    'final/steps': c.steps,
  };
}

export const sleepJob: Job<SleepConfig> = {
  name: 'test-sleep',
  codeVersion: () => ({ job: 'test-sleep', version: 1 }),
  validate,
  async run(config: SleepConfig, runDir: string, ctx: JobContext): Promise<Metrics> {
    trace(runDir, 'start');
    fs.writeFileSync(path.join(runDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    const log = path.join(runDir, 'metrics.jsonl');
    fs.writeFileSync(log, '');
    const failing = (process.env.OPDLAB_TESTJOB_FAIL ?? '').split(',').filter(Boolean).map(Number);
    for (let s = 1; s <= config.steps; s++) {
      await sleep(config.sleepMs / config.steps, ctx.signal);
      fs.appendFileSync(log, `${JSON.stringify({ step: s, 'loss/test': 1 / s })}\n`);
      ctx.progress(s / config.steps, `step ${s}/${config.steps}`);
      if (failing.includes(config.value) && s === Math.ceil(config.steps / 2)) throw new Error(`test job: value ${config.value} is listed in OPDLAB_TESTJOB_FAIL`);
    }
    trace(runDir, 'end');
    return sleepMetrics(config);
  },
};
