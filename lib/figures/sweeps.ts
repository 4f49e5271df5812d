/**
 * The runs behind the paper figures: which cells of the built-in sweep specs (specs/*.json) `opdlab reproduce`
 * trains, in which mode, and where a data generator finds each finished run.
 *
 *   mode 'full'   every spec at PAPER_SEEDS = 3 seeds (0, 1, 2), the spec's own settings: what the committed
 *                 data/figures/*.json and figures/ are drawn from
 *   mode 'quick'  one seed and tiny runs (quickInput: warm-up steps / 10, 6 distillation and 6 continual steps,
 *                 4 prompts, small evaluations): exercises every generator and figure in under a minute (tests)
 *
 * A cell is identified by its run key (lib/train/runKey.ts), so the same configuration named by several specs
 * (AOPD at eta 0 is in dynamics, eta, beta, topk, location and neighbours) trains once. `runPaperCells` runs the
 * cells not yet finished anywhere under the runs root in one sweep folder, `<runsRoot>/paper/<key>`; `findRunDir`
 * looks there first and then in every other sweep folder, so `opdlab sweep specs/eta.json` runs count too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { distillJob } from '../sweep/distillJob';
import { resolveJobRef } from '../sweep/job';
import { runSweep } from '../sweep/runner';
import { cellInputs, loadSpec, type Cell, type SweepSpec } from '../sweep/spec';
import { DEFAULT_CONFIG, type Config } from '../train/config';
import { warmupKey } from '../train/runKey';

export type ReproduceMode = 'full' | 'quick';
export const REPRODUCE_MODES: readonly ReproduceMode[] = ['full', 'quick'];

/** Seeds per cell of the committed results (claims.md: at least 3). */
export const PAPER_SEEDS = 3;
/** The sweep folder (under the runs root) that `runPaperCells` trains into. */
export const PAPER_SWEEP = 'paper';

/**
 * Environment variable overriding PAPER_SEEDS for the whole process (`opdlab reproduce --seeds N` sets it): every
 * spec's cells, and so every generator's data and figure, then use seeds 0..N-1 (the committed results use 3).
 */
export const PAPER_SEEDS_ENV = 'OPDLAB_PAPER_SEEDS';

/** Seeds per cell in each mode (full: 0..PAPER_SEEDS-1, or OPDLAB_PAPER_SEEDS; quick: 0). */
export function modeSeeds(mode: ReproduceMode): number[] {
  if (mode === 'quick') return [0];
  const raw = process.env[PAPER_SEEDS_ENV];
  const n = raw === undefined || raw === '' ? PAPER_SEEDS : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${PAPER_SEEDS_ENV} must be an integer >= 1 (seeds per cell), got '${raw}'`);
  return Array.from({ length: n }, (_, i) => i);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * The quick version of a cell's config input: the same experiment, tiny. Warm-up steps are divided by 10
 * (so a weak/strong axis stays ordered; the default 700 -> 70), 6 distillation steps of 4 prompts, 6 continual steps,
 * evaluation every 3 steps on 8 prompts x 8 samples, heavy analysis every 3 steps on 2 probes.
 */
export function quickInput(input: Record<string, unknown>): Record<string, unknown> {
  const out = JSON.parse(JSON.stringify(input)) as Record<string, unknown>;
  const section = (k: string): Record<string, unknown> => (isObject(out[k]) ? (out[k] as Record<string, unknown>) : (out[k] = {}) as Record<string, unknown>);
  const warmup = section('warmup');
  warmup.steps = Math.max(1, Math.round((typeof warmup.steps === 'number' ? warmup.steps : DEFAULT_CONFIG.warmup.steps) / 10));
  warmup.batch = 16;
  Object.assign(section('distill'), { steps: 6, prompts: 4 });
  out.eval = { ...(isObject(out.eval) ? out.eval : {}), every: 3, prompts: 8, samples: 8 };
  out.analysis = { ...(isObject(out.analysis) ? out.analysis : {}), every: 3, probes: 2 };
  if (isObject(out.continual)) (out.continual as Record<string, unknown>).steps = 6;
  return out;
}

/** A built-in spec by name (specs/<name>.json). */
export function paperSpec(name: string): SweepSpec {
  return loadSpec(name).spec;
}

/**
 * The cells of built-in spec `name` in `mode`: the spec's axes at the mode's seeds, validated and keyed as the sweep
 * runner does (so `opdlab sweep specs/<name>.json` with `--set`-free settings and these seeds finds the same keys).
 */
export function paperCells(name: string, mode: ReproduceMode): Cell<Config>[] {
  const spec = { ...paperSpec(name), seeds: modeSeeds(mode) };
  const seen = new Map<string, string>();
  return cellInputs(spec).map((c) => {
    const input = mode === 'quick' ? quickInput(c.input) : c.input;
    let config: Config;
    try {
      config = distillJob.validate(input);
    } catch (e) {
      throw new Error(`spec '${name}': cell '${c.name}': ${(e as Error).message}`);
    }
    const key = distillJob.key!(config);
    const other = seen.get(key);
    if (other !== undefined) throw new Error(`spec '${name}': cells '${other}' and '${c.name}' have the same run key in ${mode} mode`);
    seen.set(key, c.name);
    return { ...c, input, config, key };
  });
}

function statusOf(dir: string): string {
  const f = path.join(dir, 'status');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n')[0].trim() : 'missing';
}

/** The folder of the finished run with this key under `runsRoot` (the paper sweep first, then any sweep), or null. */
export function findRunDir(runsRoot: string, key: string): string | null {
  if (!fs.existsSync(runsRoot)) return null;
  const sweeps = fs
    .readdirSync(runsRoot, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('_') && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort((a, b) => (a === PAPER_SWEEP ? -1 : b === PAPER_SWEEP ? 1 : a.localeCompare(b)));
  for (const s of sweeps) {
    const dir = path.join(runsRoot, s, key);
    if (statusOf(dir) === 'done') return dir;
  }
  return null;
}

/** The command that trains the runs of `specs` (what a missing-run message names). */
export function reproduceCommand(mode: ReproduceMode, specs: readonly string[]): string {
  return `npm run build && node dist/bin/opdlab.js reproduce${mode === 'quick' ? ' --quick' : ''} --only-runs --specs ${specs.join(',')}`;
}

export interface PaperRun {
  cell: Cell<Config>;
  /** The finished run folder (config.json, metrics.jsonl, eval.jsonl, summary.json). */
  dir: string;
}

/**
 * Every cell of spec `name` in `mode` with its finished run folder; throws when any is missing, naming the cells
 * and the command that makes them.
 */
export function requirePaperRuns(name: string, mode: ReproduceMode, runsRoot: string): PaperRun[] {
  const cells = paperCells(name, mode);
  const runs: PaperRun[] = [];
  const missing: string[] = [];
  for (const cell of cells) {
    const dir = findRunDir(runsRoot, cell.key);
    if (dir) runs.push({ cell, dir });
    else missing.push(cell.name);
  }
  if (missing.length > 0) {
    throw new Error(
      `spec '${name}' (${mode}): ${missing.length} of ${cells.length} runs are not finished under ${runsRoot}: ${missing.slice(0, 8).join('; ')}${missing.length > 8 ? '; ...' : ''}. Make them with: ${reproduceCommand(mode, [name])}`,
    );
  }
  return runs;
}

export interface RunPaperCellsOptions {
  specs: readonly string[];
  mode: ReproduceMode;
  runsRoot: string;
  /** Worker processes. Default 2. */
  workers?: number;
  /** Progress display of the sweep runner. Default 'auto'. */
  progress?: 'auto' | 'bars' | 'lines' | 'none';
  write?: (line: string) => void;
  /** Stop cleanly on SIGINT / SIGTERM (the CLI). Default false. */
  handleSignals?: boolean;
}

export interface RunPaperCellsResult {
  /** Distinct runs the specs need. */
  total: number;
  /** Already finished before this call. */
  cached: number;
  /** Trained now / failed now. */
  done: number;
  failed: string[];
  aborted: boolean;
}

/**
 * The run order: round-robin over warm-up students (one cell of each warm-up in turn), so the workers start by
 * training different warm-ups instead of waiting on the same one (lib/train/warmup.ts trains each once; the others
 * wait for it). Longer warm-ups go first (stable, otherwise first-seen order): a shorter warm-up of the same
 * settings is then a cached snapshot of a longer one, not trained again (warmup.ts WARMUP_SNAPSHOT_EVERY).
 */
export function interleaveByWarmup<T extends { config: Config }>(cells: readonly T[]): T[] {
  const groups = new Map<string, T[]>();
  for (const c of cells) {
    const k = c.config.warmup.steps === 0 ? 'none' : warmupKey(c.config);
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(c);
  }
  const queues = [...groups.values()].sort((a, b) => b[0].config.warmup.steps - a[0].config.warmup.steps);
  const out: T[] = [];
  for (let i = 0; out.length < cells.length; i++) for (const q of queues) if (i < q.length) out.push(q[i]);
  return out;
}

/** Trains every run the specs need that is not finished anywhere under the runs root (module header). */
export async function runPaperCells(o: RunPaperCellsOptions): Promise<RunPaperCellsResult> {
  const byKey = new Map<string, Cell<Config>>();
  for (const name of o.specs) {
    for (const c of paperCells(name, o.mode)) if (!byKey.has(c.key)) byKey.set(c.key, { ...c, name: `${name}:${c.name}` });
  }
  const all = [...byKey.values()];
  const todo = interleaveByWarmup(all.filter((c) => findRunDir(o.runsRoot, c.key) === null)).map((c, index) => ({ ...c, index }));
  const result: RunPaperCellsResult = { total: all.length, cached: all.length - todo.length, done: 0, failed: [], aborted: false };
  if (todo.length === 0) return result;
  fs.mkdirSync(path.join(o.runsRoot, PAPER_SWEEP), { recursive: true });
  const spec: SweepSpec = { name: PAPER_SWEEP, description: `the runs of opdlab reproduce (${o.mode}): ${o.specs.join(', ')}`, axes: {} };
  const outcome = await runSweep({
    spec,
    job: distillJob as never,
    jobRef: resolveJobRef('distill'),
    cells: todo as never,
    out: o.runsRoot,
    workers: o.workers ?? 2,
    retryFailed: true,
    progress: o.progress ?? 'auto',
    write: o.write,
    handleSignals: o.handleSignals ?? false,
  });
  result.done = outcome.done.length;
  result.failed = outcome.failed;
  result.aborted = outcome.aborted;
  return result;
}
