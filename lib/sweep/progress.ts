/**
 * What the runner shows while it works: an overall bar (cells done / to run, running, failed, ETA) and one line per
 * running cell (its name, progress and the job's note). On a terminal through cli-progress; otherwise (SLURM logs,
 * pipes, tests) one plain line per event, so logs stay readable.
 *
 *   ETA = (cells not started * mean cell time + sum over running cells of max(0, mean - elapsed)) / workers
 *   mean cell time: cells finished by this runner, else the `seconds` of the sweep's earlier results, else unknown.
 */
import * as cliProgress from 'cli-progress';

export interface ProgressCounts {
  total: number;
  done: number;
  failed: number;
  interrupted: number;
  running: number;
}

export interface ProgressView {
  start(counts: ProgressCounts): void;
  cellStarted(key: string, name: string): void;
  cellProgress(key: string, fraction: number, note?: string): void;
  cellEnded(key: string, name: string, outcome: 'done' | 'failed' | 'interrupted' | 'skipped', detail: string, counts: ProgressCounts): void;
  message(line: string): void;
  stop(): void;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Keeps the durations and running cells the ETA needs. */
export class EtaClock {
  private durations: number[] = [];
  private started = new Map<string, number>();
  constructor(private workers: number, private prior: number[] = [], private now: () => number = () => Date.now()) {}
  begin(key: string): void {
    this.started.set(key, this.now());
  }
  end(key: string, recordDuration: boolean): number {
    const t0 = this.started.get(key) ?? this.now();
    this.started.delete(key);
    const s = (this.now() - t0) / 1000;
    if (recordDuration) this.durations.push(s);
    return s;
  }
  mean(): number | null {
    const d = this.durations.length ? this.durations : this.prior;
    return d.length ? d.reduce((a, b) => a + b, 0) / d.length : null;
  }
  /** Seconds until the cells not yet started and the running ones are done; null when unknown. */
  eta(notStarted: number): number | null {
    const m = this.mean();
    if (m === null) return null;
    let work = notStarted * m;
    for (const t0 of this.started.values()) work += Math.max(0, m - (this.now() - t0) / 1000);
    return work / Math.max(1, Math.min(this.workers, notStarted + this.started.size));
  }
}

function summaryLine(c: ProgressCounts, eta: string): string {
  return `${c.done}/${c.total} done, ${c.running} running, ${c.failed} failed${c.interrupted ? `, ${c.interrupted} interrupted` : ''}, ETA ${eta}`;
}

/** Plain lines (non-TTY). */
export class LineProgress implements ProgressView {
  constructor(private clock: EtaClock, private notStarted: () => number, private write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)) {}
  start(c: ProgressCounts): void {
    this.write(`sweep: ${c.total} cells to run`);
  }
  cellStarted(key: string, name: string): void {
    this.write(`start  ${name} [${key.slice(0, 12)}]`);
  }
  cellProgress(): void {
    // per-step progress would flood a log file; the start/end lines carry the ETA
  }
  cellEnded(key: string, name: string, outcome: string, detail: string, c: ProgressCounts): void {
    const eta = this.clock.eta(this.notStarted());
    this.write(`${outcome.padEnd(6)} ${name} [${key.slice(0, 12)}] ${detail} | ${summaryLine(c, eta === null ? '?' : formatDuration(eta))}`);
  }
  message(line: string): void {
    this.write(line);
  }
  stop(): void {}
}

/** cli-progress bars (TTY). */
export class BarProgress implements ProgressView {
  private multi: cliProgress.MultiBar;
  private overall: cliProgress.SingleBar | null = null;
  private cells = new Map<string, cliProgress.SingleBar>();
  private counts: ProgressCounts = { total: 0, done: 0, failed: 0, interrupted: 0, running: 0 };
  private timer: NodeJS.Timeout | null = null;
  constructor(private clock: EtaClock, private notStarted: () => number, stream: NodeJS.WritableStream = process.stderr) {
    this.multi = new cliProgress.MultiBar(
      { format: '{label} |{bar}| {value}/{total} {info}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, barsize: 30, stream, autopadding: true },
      cliProgress.Presets.shades_classic,
    );
  }
  private info(): string {
    const c = this.counts;
    const eta = this.clock.eta(this.notStarted());
    return `| ${c.running} running | ${c.failed} failed${c.interrupted ? ` | ${c.interrupted} interrupted` : ''} | ETA ${eta === null ? '?' : formatDuration(eta)}`;
  }
  start(c: ProgressCounts): void {
    this.counts = { ...c };
    this.overall = this.multi.create(c.total, 0, { label: 'sweep'.padEnd(28), info: this.info() });
    this.timer = setInterval(() => this.overall?.update({ info: this.info() }), 1000);
    this.timer.unref();
  }
  cellStarted(key: string, name: string): void {
    this.counts.running++;
    const label = name.length > 28 ? `${name.slice(0, 27)}…` : name.padEnd(28);
    this.cells.set(key, this.multi.create(100, 0, { label, info: '' }, { format: '{label} |{bar}| {percentage}% {info}' }));
    this.overall?.update({ info: this.info() });
  }
  cellProgress(key: string, fraction: number, note?: string): void {
    this.cells.get(key)?.update(Math.round(Math.max(0, Math.min(1, fraction)) * 100), { info: note ?? '' });
  }
  cellEnded(key: string, name: string, outcome: string, detail: string, c: ProgressCounts): void {
    const bar = this.cells.get(key);
    if (bar) this.multi.remove(bar);
    this.cells.delete(key);
    this.counts = { ...c };
    if (outcome !== 'done' && outcome !== 'skipped') this.multi.log(`${outcome}: ${name} ${detail}\n`);
    this.overall?.update(c.done, { info: this.info() });
  }
  message(line: string): void {
    this.multi.log(`${line}\n`);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.multi.stop();
  }
}
