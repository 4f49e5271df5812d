/**
 * The sweep runner: plan which cells to run, then run them on a pool of worker processes (one per core by default),
 * each cell under a lock, recording every outcome in the cell's folder and the ledger (lib/sweep/store.ts).
 *
 *   plan:  for each cell (in this shard, lib/sweep/shard.ts): done -> skip; failed -> skip unless retryFailed;
 *          locked by a live holder -> running elsewhere; corrupt / interrupted / missing -> run.
 *   run:   take the next cell; re-read its state; acquire its lock (lib/sweep/lock.ts); re-read again under the lock
 *          (another shard may have finished it meanwhile: exactly once); status 'running'; fork a worker
 *          (lib/sweep/worker.ts) that runs the job; on its result, check the lock is still ours, then result.json and
 *          status 'done' (last); on its error, error.json (message and stack) and status 'failed'; if the worker
 *          dies, status 'interrupted' (rerun by the next invocation). Heartbeats refresh every held lock.
 *   stop:  SIGINT / SIGTERM (SLURM sends SIGTERM before its kill): stop starting cells, abort the running ones,
 *          SIGKILL any still alive after graceMs (at once on a second signal), record them as interrupted,
 *          release the locks; exit code 130.
 *   kill -9 of the runner: nothing more is written; the workers see the IPC channel close and exit; the locks name a
 *          dead pid, so the next runner on this host takes them over at once (elsewhere: after staleAfterMs).
 */
import { fork, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeJsonAtomic } from './atomic';
import { builtLibDir, checkMetrics, type Job, type JobRef, type Metrics } from './job';
import { acquireLock, DEFAULT_LOCK_OPTIONS, ownsLock, refreshLock, releaseLock, setLockWorker, type HeldLock, type LockOptions } from './lock';
import { BarProgress, EtaClock, LineProgress, type ProgressCounts, type ProgressView } from './progress';
import { shardKeys, type Shard } from './shard';
import type { Cell, SweepSpec } from './spec';
import { SweepStore, type CellStatus } from './store';
import { mulberry32 } from '../util/prng';
import { CODE_VERSION_ENV } from '../train/runKey';

export type PlanAction = 'done' | 'run' | 'failed' | 'running-elsewhere' | 'other-shard';

export interface PlanRow {
  cell: Cell;
  status: CellStatus;
  inShard: boolean;
  action: PlanAction;
}

export interface PlanOptions {
  shard?: Shard | null;
  retryFailed?: boolean;
  steal?: boolean;
  lock?: Partial<LockOptions>;
}

/** What each cell would do now (the --dry-run table, and the runner's first queue). */
export function planSweep(store: SweepStore, cells: Cell[], o: PlanOptions = {}): PlanRow[] {
  const mine = shardKeys(cells.map((c) => c.key), o.shard ?? null);
  const lockOptions = { ...DEFAULT_LOCK_OPTIONS, ...o.lock };
  return cells.map((cell) => {
    const status = store.inspect(cell.key, lockOptions);
    const inShard = mine.has(cell.key);
    let action: PlanAction;
    if (status.state === 'done') action = 'done';
    else if (status.state === 'running') action = 'running-elsewhere';
    else if (status.state === 'failed' && !o.retryFailed) action = 'failed';
    else action = inShard || o.steal ? 'run' : 'other-shard';
    return { cell, status, inShard, action };
  });
}

export interface SweepOptions extends PlanOptions {
  spec: SweepSpec;
  specFile?: string;
  job: Job;
  jobRef: JobRef;
  cells: Cell[];
  /** Folder holding the sweeps. Default 'runs'. */
  out?: string;
  /** Parallel worker processes. Default: one per core. */
  workers?: number;
  /** 'grid' = expansion order (seed-major); 'random' = shuffled with orderSeed. Default 'grid'. */
  order?: 'grid' | 'random';
  orderSeed?: number;
  /** Lock heartbeat period. Default 10 000 ms. */
  heartbeatMs?: number;
  /** After an abort, SIGKILL workers still alive after this. Default 5 000 ms. */
  graceMs?: number;
  /** 'auto' = bars on a TTY, lines otherwise. Default 'auto'. */
  progress?: 'auto' | 'bars' | 'lines' | 'none';
  /** Where line output goes. Default stderr. */
  write?: (line: string) => void;
  /** Install SIGINT/SIGTERM handlers that stop the sweep cleanly (the CLI does). Default false. */
  handleSignals?: boolean;
  /** Extra node arguments for the workers (e.g. --max-old-space-size=8192). Default []. */
  nodeArgs?: string[];
}

export interface SweepOutcome {
  /** Cells this invocation finished, failed, or lost to an interruption (names). */
  done: string[];
  failed: string[];
  interrupted: string[];
  /** Cells of this shard held by another runner when this one looked. */
  elsewhere: string[];
  /** Cells of this shard not done at the end (failed, interrupted, elsewhere, or never started). */
  notDone: string[];
  /** True when stopped by a signal or abort(). */
  aborted: boolean;
}

interface Active {
  cell: Cell;
  lock: HeldLock;
  child: ChildProcess | null;
  startedAt: string;
  t0: number;
  settled: boolean;
  aborted: boolean;
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * The run order: 'grid' keeps the expansion order (seed-major: every setting at seed 0 first, for early signal);
 * 'random' is a Fisher-Yates shuffle seeded by `seed` (the same on every machine, so shards agree).
 */
export function orderCells<T>(cells: readonly T[], order: 'grid' | 'random', seed: string): T[] {
  const list = [...cells];
  if (order === 'random') {
    const rand = mulberry32(hashString(seed));
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [list[i], list[j]] = [list[j], list[i]];
    }
  }
  return list;
}

/** The workers' environment: ours, plus the trainer's code version when the job is keyed by one (runKey.ts CODE_VERSION_ENV). */
function workerEnv(code: unknown): NodeJS.ProcessEnv {
  const c = code as { version?: unknown; source?: unknown } | null;
  if (!c || typeof c.version !== 'string' || typeof c.source !== 'string') return process.env;
  return { ...process.env, [CODE_VERSION_ENV]: JSON.stringify({ version: c.version, source: c.source }) };
}

export function workerScript(): string {
  return path.join(builtLibDir(), 'sweep', 'worker.js');
}

/** Runs the sweep; resolves when every cell of the queue has an outcome (or the sweep was stopped). */
export class SweepRunner {
  readonly store: SweepStore;
  private readonly o: SweepOptions;
  private readonly lockOptions: LockOptions;
  private queue: Cell[] = [];
  private active = new Map<string, Active>();
  private stopping = false;
  private outcome: SweepOutcome = { done: [], failed: [], interrupted: [], elsewhere: [], notDone: [], aborted: false };
  private counts: ProgressCounts = { total: 0, done: 0, failed: 0, interrupted: 0, running: 0 };
  private view: ProgressView;
  private clock: EtaClock;
  private owner: string;
  private finish: (() => void) | null = null;
  private fatal: Error | null = null;
  /** The keys of this shard. */
  private readonly mine: Set<string>;

  constructor(options: SweepOptions) {
    this.o = options;
    this.store = new SweepStore(options.out ?? 'runs', options.spec.name);
    this.lockOptions = { ...DEFAULT_LOCK_OPTIONS, ...options.lock };
    this.mine = shardKeys(options.cells.map((c) => c.key), options.shard ?? null);
    const workers = Math.max(1, options.workers ?? os.availableParallelism());
    const prior = [...this.store.results(options.cells.map((c) => c.key)).values()].map((r) => r.seconds);
    this.clock = new EtaClock(workers, prior);
    const shard = options.shard ? ` shard ${options.shard.index}/${options.shard.count}` : '';
    this.owner = `opdlab sweep ${options.spec.name}${shard} on ${os.hostname()}:${process.pid}`;
    const mode = options.progress ?? 'auto';
    const write = options.write ?? ((l: string) => process.stderr.write(`${l}\n`));
    const notStarted = () => this.queue.length;
    this.view =
      mode === 'bars' || (mode === 'auto' && process.stderr.isTTY && !options.write)
        ? new BarProgress(this.clock, notStarted)
        : mode === 'none'
          ? new LineProgress(this.clock, notStarted, () => undefined)
          : new LineProgress(this.clock, notStarted, write);
  }

  private get workers(): number {
    return Math.max(1, this.o.workers ?? os.availableParallelism());
  }

  /** Stop: no new cells, abort the running ones (then SIGKILL after graceMs). */
  abort(why = 'stopped'): void {
    if (this.stopping) return;
    this.stopping = true;
    this.outcome.aborted = true;
    this.view.message(`sweep: ${why}; stopping ${this.active.size} running cell(s)`);
    for (const a of this.active.values()) this.abortCell(a, why);
    this.maybeFinish();
  }

  private killAll(): void {
    for (const a of this.active.values()) if (a.child && a.child.exitCode === null) a.child.kill('SIGKILL');
  }

  private abortCell(a: Active, why: string): void {
    a.aborted = true;
    if (a.child && a.child.connected) a.child.send({ type: 'abort', why });
    const child = a.child;
    setTimeout(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, this.o.graceMs ?? 5000).unref();
  }

  async run(): Promise<SweepOutcome> {
    workerScript(); // fails now, with the fix, when dist/ is not built
    this.store.ensure();
    const { spec, cells, job, jobRef } = this.o;
    writeJsonAtomic(path.join(this.store.dir, 'sweep.json'), {
      name: spec.name,
      specFile: this.o.specFile ?? null,
      spec,
      job: { name: job.name, module: jobRef.module, export: jobRef.export, code: job.codeVersion() },
      cells: cells.map((c) => ({ index: c.index, name: c.name, key: c.key, values: c.values })),
    });
    const plan = planSweep(this.store, cells, this.o);
    const own = orderCells(plan.filter((r) => r.inShard && r.action === 'run').map((r) => r.cell), this.o.order ?? 'grid', `${spec.name}:${this.o.orderSeed ?? 0}`);
    const others = orderCells(plan.filter((r) => !r.inShard && r.action === 'run').map((r) => r.cell), this.o.order ?? 'grid', `${spec.name}:${this.o.orderSeed ?? 0}:others`);
    this.queue = [...own, ...others];
    for (const r of plan) if (r.action === 'running-elsewhere' && r.inShard) this.outcome.elsewhere.push(r.cell.name);
    this.store.log({ event: 'sweep-start', sweep: spec.name, owner: this.owner, cells: cells.length, queued: this.queue.length, shard: this.o.shard ?? null });
    const count = (a: string) => plan.filter((r) => r.inShard && r.action === a).length;
    this.view.message(
      `sweep ${spec.name}: ${cells.length} cells${this.o.shard ? `, shard ${this.o.shard.index}/${this.o.shard.count} (${this.o.shard.source}) has ${plan.filter((r) => r.inShard).length}` : ''}: ` +
        `${count('done')} done, ${count('failed')} failed${this.o.retryFailed ? '' : ' (--retry-failed reruns them)'}, ${count('running-elsewhere')} running elsewhere, ` +
        `${own.length} to run${others.length ? ` + ${others.length} of other shards (--steal)` : ''} on ${Math.min(this.workers, Math.max(1, this.queue.length))} worker(s)`,
    );
    this.counts.total = this.queue.length;
    this.view.start(this.counts);

    // a second signal does not wait for the jobs to stop
    const onSignal = (sig: NodeJS.Signals) => (this.stopping ? this.killAll() : this.abort(`received ${sig}`));
    if (this.o.handleSignals) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    const heartbeat = setInterval(() => this.heartbeat(), this.o.heartbeatMs ?? 10_000);
    heartbeat.unref();
    try {
      await new Promise<void>((resolve) => {
        this.finish = resolve;
        this.fill();
        this.maybeFinish();
      });
    } finally {
      clearInterval(heartbeat);
      if (this.o.handleSignals) {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      this.view.stop();
    }
    const after = planSweep(this.store, cells, { ...this.o, steal: false });
    this.outcome.notDone = after.filter((r) => r.inShard && r.action !== 'done').map((r) => r.cell.name);
    this.store.log({ event: 'sweep-end', sweep: spec.name, owner: this.owner, done: this.outcome.done.length, failed: this.outcome.failed.length, interrupted: this.outcome.interrupted.length, aborted: this.outcome.aborted });
    if (this.fatal) throw this.fatal;
    return this.outcome;
  }

  private maybeFinish(): void {
    if (this.active.size === 0 && (this.stopping || this.queue.length === 0)) this.finish?.();
  }

  private heartbeat(): void {
    for (const a of this.active.values()) {
      if (a.settled) continue;
      if (!refreshLock(a.lock)) {
        this.store.log({ event: 'lock-lost', key: a.cell.key, cell: a.cell.name });
        this.view.message(`lost the lock of ${a.cell.name} (another runner took it over as stale); stopping it here`);
        this.abortCell(a, 'lock lost');
      }
    }
  }

  /** Start cells while there are free workers and cells to run. */
  private fill(): void {
    while (!this.stopping && this.active.size < this.workers && this.queue.length > 0) {
      const cell = this.queue.shift()!;
      try {
        this.tryStart(cell);
      } catch (e) {
        // the filesystem or fork failed: stop cleanly (locks released, running cells interrupted), then report it
        this.fatal ??= e as Error;
        this.abort(`error: ${(e as Error).message}`);
      }
    }
  }

  private tryStart(cell: Cell): void {
    const first = this.store.inspect(cell.key, this.lockOptions);
    if (first.state === 'done') return this.skipped(cell, 'done meanwhile');
    if (first.state === 'running') return this.elsewhere(cell, first.detail);
    if (first.state === 'failed' && !this.o.retryFailed) return this.skipped(cell, 'failed meanwhile');
    const got = acquireLock(this.store.lockFile(cell.key), this.owner, this.lockOptions);
    if (!got.ok) return this.elsewhere(cell, got.reason);
    if (got.tookOver) this.store.log({ event: 'lock-taken-over', key: cell.key, cell: cell.name, from: got.tookOver });
    // under the lock: someone may have finished (or failed) it between our first look and the lock
    const now = this.store.inspect(cell.key, { ...this.lockOptions, isAlive: () => false, staleAfterMs: -1 });
    if (now.state === 'done' || (now.state === 'failed' && !this.o.retryFailed)) {
      releaseLock(got.lock);
      return this.skipped(cell, `${now.state} meanwhile`);
    }
    if (now.state === 'corrupt') {
      this.store.log({ event: 'corrupt', key: cell.key, cell: cell.name, detail: now.detail });
      this.view.message(`corrupt result in ${cell.name} [${cell.key.slice(0, 12)}]: ${now.detail}; rerunning`);
    }
    try {
      this.launch(cell, got.lock);
    } catch (e) {
      const a = this.active.get(cell.key);
      if (a && !a.child) {
        this.active.delete(cell.key);
        this.interrupt(a, `could not start: ${(e as Error).message}`);
      } else if (!a) {
        releaseLock(got.lock);
      }
      throw e;
    }
  }

  private skipped(cell: Cell, why: string): void {
    this.counts.total--;
    this.view.message(`skip ${cell.name}: ${why}`);
  }

  private elsewhere(cell: Cell, why: string): void {
    this.counts.total--;
    if (this.mine.has(cell.key)) this.outcome.elsewhere.push(cell.name);
    this.view.message(`skip ${cell.name}: running elsewhere (${why})`);
  }

  private launch(cell: Cell, lock: HeldLock): void {
    const runDir = this.store.cellDir(cell.key);
    const startedAt = new Date().toISOString();
    this.store.markRunning(cell.key, {
      sweep: this.o.spec.name,
      cell: cell.name,
      index: cell.index,
      values: cell.values,
      key: cell.key,
      job: { name: this.o.job.name, module: this.o.jobRef.module, export: this.o.jobRef.export },
      input: cell.input,
    });
    this.store.log({ event: 'start', key: cell.key, cell: cell.name, owner: this.owner });
    const a: Active = { cell, lock, child: null, startedAt, t0: Date.now(), settled: false, aborted: false };
    this.active.set(cell.key, a);
    this.counts.running++;
    this.clock.begin(cell.key);
    this.view.cellStarted(cell.key, cell.name);

    const logFd = fs.openSync(path.join(runDir, 'worker.log'), 'a');
    let child: ChildProcess;
    try {
      child = fork(workerScript(), [], { stdio: ['ignore', logFd, logFd, 'ipc'], execArgv: this.o.nodeArgs ?? [], env: workerEnv(this.o.job.codeVersion()) });
    } finally {
      fs.closeSync(logFd);
    }
    a.child = child;
    setLockWorker(lock, child.pid ?? null);
    child.on('message', (m: { type: string; fraction?: number; note?: string; metrics?: unknown; error?: { name: string; message: string; stack?: string } }) => {
      if (m.type === 'progress') this.view.cellProgress(cell.key, m.fraction ?? 0, m.note);
      else if (m.type === 'result') this.succeed(a, m.metrics);
      else if (m.type === 'error' && m.error) {
        if (m.error.name === 'AbortError' || a.aborted) this.interrupt(a, `aborted: ${m.error.message}`);
        else this.fail(a, m.error);
      }
    });
    child.on('error', (e) => {
      if (!a.settled) this.fail(a, { name: e.name, message: `worker process error: ${e.message}`, stack: e.stack });
    });
    child.on('close', (code, signal) => {
      if (!a.settled) {
        const tail = tailOf(path.join(runDir, 'worker.log'));
        if (signal === 'SIGKILL' || signal === 'SIGTERM' || signal === 'SIGINT' || signal === 'SIGHUP' || a.aborted || code === 3) {
          this.interrupt(a, `worker ${child.pid} ended by ${signal ?? `exit code ${code}`}`);
        } else {
          this.fail(a, { name: 'WorkerExit', message: `worker ${child.pid} exited (${signal ?? `code ${code}`}) without a result${tail ? `; worker.log ends:\n${tail}` : ''}` });
        }
      }
      this.active.delete(cell.key);
      this.fill();
      this.maybeFinish();
    });
    child.send({ type: 'run', job: this.o.jobRef, cell: { key: cell.key, name: cell.name, config: cell.config, runDir } });
  }

  private settle(a: Active): boolean {
    if (a.settled) return false;
    a.settled = true;
    this.counts.running--;
    return true;
  }

  private succeed(a: Active, raw: unknown): void {
    let metrics: Metrics;
    try {
      metrics = checkMetrics(raw);
    } catch (e) {
      return this.fail(a, { name: 'InvalidMetrics', message: (e as Error).message });
    }
    if (!ownsLock(a.lock)) {
      // another runner took the cell over while we thought it ours; its result will stand
      this.store.log({ event: 'lock-lost', key: a.cell.key, cell: a.cell.name, at: 'finish' });
      return this.interrupt(a, 'finished after losing the lock; result not recorded');
    }
    if (!this.settle(a)) return;
    const seconds = this.clock.end(a.cell.key, true);
    this.store.markDone({ key: a.cell.key, cell: a.cell.name, metrics, startedAt: a.startedAt, finishedAt: new Date().toISOString(), seconds, host: os.hostname(), pid: process.pid });
    this.store.log({ event: 'done', key: a.cell.key, cell: a.cell.name, seconds });
    releaseLock(a.lock);
    this.outcome.done.push(a.cell.name);
    this.counts.done++;
    this.view.cellEnded(a.cell.key, a.cell.name, 'done', `${seconds.toFixed(1)}s`, this.counts);
  }

  private fail(a: Active, error: { name: string; message: string; stack?: string }): void {
    if (!this.settle(a)) return;
    const seconds = this.clock.end(a.cell.key, false);
    if (ownsLock(a.lock)) {
      this.store.markFailed(a.cell.key, { cell: a.cell.name, error, startedAt: a.startedAt, finishedAt: new Date().toISOString(), seconds, host: os.hostname(), pid: process.pid });
      releaseLock(a.lock);
    }
    this.store.log({ event: 'failed', key: a.cell.key, cell: a.cell.name, error: error.message.split('\n')[0] });
    this.outcome.failed.push(a.cell.name);
    this.counts.failed++;
    this.view.cellEnded(a.cell.key, a.cell.name, 'failed', `${error.message.split('\n')[0]} (see ${path.join(this.store.cellDir(a.cell.key), 'error.json')})`, this.counts);
  }

  private interrupt(a: Active, why: string): void {
    if (!this.settle(a)) return;
    this.clock.end(a.cell.key, false);
    if (ownsLock(a.lock)) {
      this.store.markInterrupted(a.cell.key, why);
      releaseLock(a.lock);
    }
    this.store.log({ event: 'interrupted', key: a.cell.key, cell: a.cell.name, why });
    this.outcome.interrupted.push(a.cell.name);
    this.counts.interrupted++;
    this.view.cellEnded(a.cell.key, a.cell.name, 'interrupted', `${why} (rerun the same command to resume)`, this.counts);
  }
}

function tailOf(file: string, bytes = 2000): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

export function runSweep(options: SweepOptions): Promise<SweepOutcome> {
  return new SweepRunner(options).run();
}
