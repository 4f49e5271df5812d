/**
 * A job is what runs one cell of a sweep. The runner knows nothing else about training:
 *
 *   name           shown in sweep.json and cell.json
 *   codeVersion()  what the key depends on besides the config (package version, hash of the training sources)
 *   validate(x)    resolve a cell's config input and reject a bad one with a message naming the field
 *   key(config)    the run key (the cell's folder name); default sha256(canonicalJson({job, config, code}))
 *   run(config, runDir, ctx) -> metrics   the cell's final scalar metrics; throws on failure, stops on ctx.signal
 *
 * Workers are separate Node processes (lib/sweep/worker.ts), so a job travels as a module path and an export name
 * (JobRef) and is loaded in the worker; built-in jobs are named ('distill', the trainer, by default; 'test-sleep',
 * the runner's own test job) and live in the built library next to this file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { canonicalJson, packageRoot, sha256 } from '../train/runKey';

/** Final scalar metrics of a cell; null stands for a non-finite value (JSON has no NaN). */
export type Metrics = Record<string, number | null>;

export interface JobContext {
  /** Aborted when the runner stops (Ctrl-C, SIGTERM from SLURM, a lost lock): stop soon and throw. */
  signal: AbortSignal;
  /** Report progress in [0, 1] with an optional short note; shown on the cell's progress line. */
  progress(fraction: number, note?: string): void;
}

export interface Job<C = unknown> {
  name: string;
  /** JSON-serialisable; part of the default key. */
  codeVersion(): unknown;
  /** Resolve and validate a cell's config input; throw an Error naming the bad field. */
  validate(input: unknown): C;
  /** The run key; must depend on everything that can change the metrics. */
  key?(config: C): string;
  run(config: C, runDir: string, ctx: JobContext): Promise<Metrics>;
}

/** Where a job lives: an absolute path to a CommonJS module and the export holding the Job. */
export interface JobRef {
  module: string;
  export: string;
  /** The built-in name it was given by, if any. */
  name?: string;
}

/** Built-in jobs, as module paths relative to the built library folder (dist/lib). */
export const BUILTIN_JOBS: Readonly<Record<string, { module: string; export: string; description: string }>> = {
  distill: { module: 'sweep/distillJob', export: 'distillJob', description: 'the trainer: lib/train run(config) (what `opdlab run` calls)' },
  'test-sleep': { module: 'sweep/testing/sleepJob', export: 'sleepJob', description: 'TEST JOB: sleeps, returns metrics computed from its config (runner tests)' },
};

/** The built library folder (dist/lib), with a clear error when it has not been built. */
export function builtLibDir(): string {
  const dir = path.join(packageRoot(), 'dist', 'lib');
  if (!fs.existsSync(path.join(dir, 'sweep', 'worker.js'))) {
    throw new Error(`sweep: ${path.join(dir, 'sweep', 'worker.js')} does not exist; build first (\`npm run build\`)`);
  }
  return dir;
}

/**
 * A job named by the spec or the CLI: a built-in name ('distill'), or `path/to/module.js#exportName` / an object
 * {module, export} (a path relative to `cwd`; the export defaults to 'job').
 */
export function resolveJobRef(spec: unknown, cwd: string = process.cwd()): JobRef {
  if (typeof spec === 'string' && spec in BUILTIN_JOBS) {
    const b = BUILTIN_JOBS[spec];
    return { module: path.join(builtLibDir(), `${b.module}.js`), export: b.export, name: spec };
  }
  let module: unknown;
  let exp: unknown = 'job';
  if (typeof spec === 'string') {
    const hash = spec.lastIndexOf('#');
    module = hash >= 0 ? spec.slice(0, hash) : spec;
    if (hash >= 0) exp = spec.slice(hash + 1);
  } else if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
    const o = spec as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'module' && k !== 'export') throw new Error(`job: unknown key '${k}' (known: module, export)`);
    module = o.module;
    if (o.export !== undefined) exp = o.export;
  }
  if (typeof module !== 'string' || module.length === 0 || typeof exp !== 'string' || exp.length === 0) {
    throw new Error(`job must be a built-in name (${Object.keys(BUILTIN_JOBS).join(', ')}), 'module.js#export' or {module, export}; got ${JSON.stringify(spec)}`);
  }
  const abs = path.resolve(cwd, module);
  if (!fs.existsSync(abs) && !fs.existsSync(`${abs}.js`)) throw new Error(`job module ${abs} does not exist`);
  return { module: abs, export: exp };
}

/** Load a job (in the runner for validate/key, in the worker for run); checks its shape. */
export function loadJob(ref: JobRef): Job {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require(ref.module) as Record<string, unknown>;
  const job = mod[ref.export] as Job | undefined;
  if (!job || typeof job !== 'object' || typeof job.run !== 'function' || typeof job.validate !== 'function' || typeof job.codeVersion !== 'function' || typeof job.name !== 'string') {
    throw new Error(`job: ${ref.module} has no export '${ref.export}' with name, codeVersion(), validate() and run()`);
  }
  return job;
}

/** The cell's run key: the job's own, or sha256 of the canonical {job, config, code}. */
export function jobKey<C>(job: Job<C>, config: C): string {
  const key = job.key ? job.key(config) : sha256(canonicalJson({ job: job.name, config, code: job.codeVersion() }));
  if (!/^[A-Za-z0-9._-]{8,128}$/.test(key) || key.startsWith('.')) throw new Error(`job '${job.name}': key '${key}' is not a folder name of 8-128 letters, digits, '.', '_', '-'`);
  return key;
}

/** Throws unless `metrics` is an object of numbers or null; non-finite numbers become null. */
export function checkMetrics(metrics: unknown): Metrics {
  if (!metrics || typeof metrics !== 'object' || Array.isArray(metrics)) throw new Error(`job returned ${JSON.stringify(metrics)} instead of an object of metrics`);
  const out: Metrics = {};
  for (const [k, v] of Object.entries(metrics as Record<string, unknown>)) {
    if (v === null || (typeof v === 'number' && !Number.isFinite(v))) out[k] = null;
    else if (typeof v === 'number') out[k] = v;
    else throw new Error(`job returned metric '${k}' = ${JSON.stringify(v)}; metrics must be numbers`);
  }
  return out;
}

/** An Error for a stopped cell, recognised by name across the worker boundary. */
export function abortError(why = 'the sweep runner stopped this cell'): Error {
  const e = new Error(why);
  e.name = 'AbortError';
  return e;
}
