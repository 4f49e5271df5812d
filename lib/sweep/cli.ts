/**
 * `opdlab sweep SPEC`: the command's logic (bin/opdlab.ts only parses flags and calls `sweepCommand`).
 *
 *   opdlab sweep eta --dry-run                 the cells, their run keys and state (done / failed / to run ...)
 *   opdlab sweep eta --workers 4               run what is missing on 4 worker processes, then the summary
 *   opdlab sweep specs/my.json --shard 3/10    one shard (also from SLURM / Kubernetes variables)
 *   opdlab sweep eta --retry-failed            failed cells run again (they are never taken as results)
 *   opdlab sweep eta --summary-only            print and write summary.csv from the finished cells
 *
 * SLURM job array (results on a shared folder; resubmitting runs only what is missing):
 *   sbatch --array=0-31%8 --wrap 'npx opdlab sweep eta --out /shared/runs --workers 1'
 * Kubernetes Indexed Job: completionMode Indexed, completions 32, env OPDLAB_SHARD_COUNT=32, same command.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatTable } from '../util/table';
import { writeFileAtomic } from './atomic';
import { BUILTIN_JOBS, loadJob, resolveJobRef } from './job';
import { planSweep, runSweep, type PlanRow } from './runner';
import { resolveShard } from './shard';
import { expandSpec, listBuiltinSpecs, loadSpec, type Cell, type SweepSpec } from './spec';
import { SweepStore } from './store';
import { formatSummary, summarise, toCsv } from './summary';

export interface SweepCommandOptions {
  list?: boolean;
  dryRun?: boolean;
  workers?: string;
  shard?: string;
  steal?: boolean;
  retryFailed?: boolean;
  out?: string;
  order?: string;
  orderSeed?: string;
  set?: string[];
  job?: string;
  staleAfter?: string;
  heartbeat?: string;
  summaryOnly?: boolean;
  summary?: boolean;
  progress?: string;
}

export const SWEEP_DEFAULTS = { out: 'runs', staleAfterSeconds: 120, heartbeatSeconds: 10 };

function positiveNumber(flag: string, v: string | undefined, integer: boolean): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) throw new Error(`${flag} must be ${integer ? 'an integer >= 1' : 'a number > 0'}, got '${v}'`);
  return x;
}

/** `--set a.b=1` pairs; the value is JSON when it parses, else a string. */
export function parseSets(sets: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set must be path=value (e.g. distill.steps=20), got '${s}'`);
    const raw = s.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[s.slice(0, eq)] = value;
  }
  return out;
}

function printPlan(rows: PlanRow[], sharded: boolean, print: (s: string) => void): void {
  const table = rows.map((r) => [
    r.cell.index,
    r.cell.name,
    r.cell.key.slice(0, 12),
    r.status.state,
    r.action === 'run' ? (r.inShard ? 'run' : 'run (steal)') : r.action === 'failed' ? 'skip (--retry-failed)' : r.action === 'done' ? 'skip' : r.action,
    r.status.detail.split('\n')[0].slice(0, 60),
  ]);
  print(formatTable(['#', 'cell', 'key', 'state', sharded ? 'this shard' : 'action', 'detail'], table));
  const by = (s: string) => rows.filter((r) => r.status.state === s).length;
  print(
    `${rows.length} cells: ${by('done')} done, ${by('failed')} failed, ${by('running')} running elsewhere, ${by('corrupt')} corrupt, ` +
      `${by('interrupted')} interrupted, ${by('missing')} missing; ${rows.filter((r) => r.action === 'run').length} would run` +
      (sharded ? ` in this shard (${rows.filter((r) => r.inShard).length} cells)` : ''),
  );
}

/** Summary of the whole sweep from its finished cells: printed, and written to <sweep>/summary.csv. */
export function writeSummary(store: SweepStore, spec: SweepSpec, cells: Cell[], print: (s: string) => void): boolean {
  const results = store.results(cells.map((c) => c.key));
  if (results.size === 0) {
    print(`summary: no finished cells yet in ${store.dir}`);
    return false;
  }
  const summary = summarise(cells, results, spec.seedAxis ?? 'seed');
  const file = path.join(store.dir, 'summary.csv');
  writeFileAtomic(file, toCsv(summary));
  print(`\nsummary of ${spec.name} (${results.size}/${cells.length} cells finished; mean ± 95% CI half-width (n) over ${summary.seedAxis}):`);
  print(formatSummary(summary, spec.metrics ?? []));
  print(`written ${file}`);
  return true;
}

/** Runs the command; returns the exit code (0: every cell of this shard done; 1: some not; 130: stopped). */
export async function sweepCommand(specArg: string | undefined, o: SweepCommandOptions, print: (s: string) => void = (s) => console.log(s)): Promise<number> {
  if (o.list || !specArg) {
    const specs = listBuiltinSpecs();
    print(formatTable(['spec', 'description'], specs.map((s) => [s.name, s.description])));
    print(`\njobs: ${Object.entries(BUILTIN_JOBS).map(([k, v]) => `${k} (${v.description})`).join('; ')}`);
    if (!specArg && !o.list) print('\nusage: opdlab sweep <spec name or file.json> [--dry-run] [--workers N] [--shard i/n] ...');
    return 0;
  }
  const { spec, file } = loadSpec(specArg);
  const jobRef = o.job !== undefined ? resolveJobRef(o.job) : resolveJobRef(spec.job ?? 'distill', path.dirname(file));
  const job = loadJob(jobRef);
  const cells = expandSpec(spec, job, parseSets(o.set));
  const shard = resolveShard(o.shard);
  const out = o.out ?? SWEEP_DEFAULTS.out;
  const store = new SweepStore(out, spec.name);
  const lock = { staleAfterMs: 1000 * (positiveNumber('--stale-after', o.staleAfter, false) ?? SWEEP_DEFAULTS.staleAfterSeconds) };
  const heartbeatMs = 1000 * (positiveNumber('--heartbeat', o.heartbeat, false) ?? SWEEP_DEFAULTS.heartbeatSeconds);
  if (lock.staleAfterMs < 3 * heartbeatMs) throw new Error(`--stale-after (${lock.staleAfterMs / 1000} s) must be at least 3 x --heartbeat (${heartbeatMs / 1000} s), or live locks would be taken over`);
  const workers = positiveNumber('--workers', o.workers, true) ?? os.availableParallelism();
  if (o.order !== undefined && o.order !== 'grid' && o.order !== 'random') throw new Error(`--order must be grid or random, got '${o.order}'`);

  if (o.dryRun) {
    print(`sweep ${spec.name} (${path.relative(process.cwd(), file) || file}), job ${job.name}, folder ${store.dir}${shard ? `, shard ${shard.index}/${shard.count} (${shard.source})` : ''}`);
    printPlan(planSweep(store, cells, { shard, retryFailed: o.retryFailed, steal: o.steal, lock }), shard !== null, print);
    return 0;
  }
  if (o.summaryOnly) return writeSummary(store, spec, cells, print) ? 0 : 1;

  fs.mkdirSync(store.dir, { recursive: true });
  const outcome = await runSweep({
    spec,
    specFile: file,
    job,
    jobRef,
    cells,
    out,
    workers,
    shard,
    steal: o.steal,
    retryFailed: o.retryFailed,
    order: (o.order as 'grid' | 'random' | undefined) ?? 'grid',
    orderSeed: o.orderSeed !== undefined ? Number(o.orderSeed) : 0,
    heartbeatMs,
    lock,
    progress: (o.progress as 'auto' | 'bars' | 'lines' | 'none' | undefined) ?? 'auto',
    handleSignals: true,
  });
  if (o.summary !== false) writeSummary(store, spec, cells, print);
  const line = (label: string, names: string[]) => names.length && print(`${label} (${names.length}): ${names.slice(0, 20).join('  ')}${names.length > 20 ? '  ...' : ''}`);
  print(`\nthis run: ${outcome.done.length} done, ${outcome.failed.length} failed, ${outcome.interrupted.length} interrupted`);
  line('failed, error.json in each cell folder; --retry-failed runs them again', outcome.failed);
  line('running elsewhere', outcome.elsewhere);
  line('not done in this shard (run the same command again to resume)', outcome.notDone);
  if (outcome.aborted) return 130;
  return outcome.notDone.length > 0 ? 1 : 0;
}
