/**
 * A sweep's folder and the state of each cell, read from the files alone (no coordinator, so any number of runners
 * on a shared filesystem agree):
 *
 *   <out>/<sweep>/
 *     sweep.json            the spec, the job and the cells {name, key} of the last start (for readers, e.g. figures)
 *     ledger.jsonl          append-only state transitions {t, event, key, cell, host, pid, ...} (history, not truth)
 *     summary.csv           the summary table (lib/sweep/summary.ts)
 *     .locks/<key>.lock     who runs the cell now (lib/sweep/lock.ts)
 *     <key>/                the run folder, shared with the job (the trainer writes config.json, metrics.jsonl, ...)
 *       cell.json           the runner's record: sweep, cell name, axis values, key, job, config input
 *       worker.log          the worker's stdout and stderr
 *       result.json         {key, cell, metrics, startedAt, finishedAt, seconds, host, pid}   on success
 *       error.json          {key, cell, error: {name, message, stack}, ...}                     on failure
 *       status              first line running | done | failed | interrupted (the trainer's vocabulary plus one);
 *                           after 'done' the runner writes `sha256:<hex of result.json>` on the second line
 *
 * A cell is done only when status says done with the digest of a result.json whose bytes match it, whose key is
 * the cell's, and whose metrics are numbers or null. Anything else is not done: status written by the trainer
 * alone, a truncated or edited result.json, a digest mismatch ('corrupt', rerun with a ledger note). Every write is
 * temp + rename, and status is written last, so a `kill -9` at any point leaves a state that reads as not done.
 * A failed cell is never cached as a success: it stays 'failed' (with its error and stack) until --retry-failed.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { appendLine, readJsonFile, writeFileAtomic, writeJsonAtomic } from './atomic';
import { checkMetrics, type Metrics } from './job';
import { readLock, staleReason, type LockInfo, type LockOptions, DEFAULT_LOCK_OPTIONS } from './lock';

export type CellState = 'done' | 'failed' | 'corrupt' | 'interrupted' | 'running' | 'missing';

export interface CellResult {
  key: string;
  cell: string;
  metrics: Metrics;
  startedAt: string;
  finishedAt: string;
  seconds: number;
  host: string;
  pid: number;
}

export interface CellStatus {
  state: CellState;
  /** Why (corrupt: what is wrong; failed: the error message; running: the lock holder). */
  detail: string;
  result?: CellResult;
  holder?: LockInfo;
}

export interface LedgerEvent {
  t: string;
  event: 'sweep-start' | 'start' | 'done' | 'failed' | 'interrupted' | 'corrupt' | 'lock-taken-over' | 'lock-lost' | 'sweep-end';
  key?: string;
  cell?: string;
  host: string;
  pid: number;
  [extra: string]: unknown;
}

export class SweepStore {
  readonly dir: string;
  constructor(outRoot: string, readonly sweep: string) {
    this.dir = path.resolve(outRoot, sweep);
  }
  get ledger(): string {
    return path.join(this.dir, 'ledger.jsonl');
  }
  get locksDir(): string {
    return path.join(this.dir, '.locks');
  }
  cellDir(key: string): string {
    return path.join(this.dir, key);
  }
  lockFile(key: string): string {
    return path.join(this.locksDir, `${key}.lock`);
  }
  ensure(): void {
    fs.mkdirSync(this.locksDir, { recursive: true });
  }

  log(event: Omit<LedgerEvent, 't' | 'host' | 'pid'>): void {
    appendLine(this.ledger, JSON.stringify({ t: new Date().toISOString(), host: os.hostname(), pid: process.pid, ...event }));
  }

  /** The ledger's events; lines that do not parse (an append cut by a crash, NFS interleaving) are skipped. */
  readLedger(): LedgerEvent[] {
    if (!fs.existsSync(this.ledger)) return [];
    const out: LedgerEvent[] = [];
    for (const line of fs.readFileSync(this.ledger, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as LedgerEvent);
      } catch {
        // a partial line: history only, the cell folders are the truth
      }
    }
    return out;
  }

  /** The state of one cell; `lock` options decide whether a lock file counts as held. */
  inspect(key: string, lockOptions: LockOptions = DEFAULT_LOCK_OPTIONS): CellStatus {
    const dir = this.cellDir(key);
    const status = readStatusFile(dir);
    if (status?.state === 'done') {
      const check = readResult(dir, key, status.digest);
      if ('result' in check) return { state: 'done', detail: `${check.result.seconds.toFixed(1)} s`, result: check.result };
      const held = this.holder(key, lockOptions);
      if (held) return { state: 'running', detail: `${held.owner} (pid ${held.pid} on ${held.host})`, holder: held };
      return { state: 'corrupt', detail: check.error };
    }
    const held = this.holder(key, lockOptions);
    if (held) return { state: 'running', detail: `${held.owner} (pid ${held.pid} on ${held.host})`, holder: held };
    if (status === null) return { state: 'missing', detail: '' };
    if (status.state === 'failed') {
      const e = readJsonFile(path.join(dir, 'error.json'));
      const msg = e && 'value' in e ? String((e.value as { error?: { message?: string } })?.error?.message ?? '') : '';
      return { state: 'failed', detail: msg || status.rest || 'failed' };
    }
    return { state: 'interrupted', detail: `status '${status.state}' and no live lock` };
  }

  /** The live holder of the cell's lock, if any. */
  holder(key: string, lockOptions: LockOptions = DEFAULT_LOCK_OPTIONS): LockInfo | null {
    const info = readLock(this.lockFile(key));
    if (info === null || info === 'unreadable') {
      if (info === 'unreadable') {
        try {
          if (lockOptions.now() - fs.statSync(this.lockFile(key)).mtimeMs <= lockOptions.staleAfterMs) {
            return { host: '?', pid: 0, workerPid: null, startedAt: '', heartbeat: '', token: '', owner: 'a runner writing its lock' };
          }
        } catch {
          return null;
        }
      }
      return null;
    }
    return staleReason(info, lockOptions) === null ? info : null;
  }

  /** Start of a (re)run: status 'running' first (so an old 'done' no longer counts), then clear old outcomes. */
  markRunning(key: string, cellRecord: unknown): void {
    const dir = this.cellDir(key);
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, 'status'), 'running\n');
    for (const f of ['result.json', 'error.json']) fs.rmSync(path.join(dir, f), { force: true });
    for (const f of fs.readdirSync(dir)) if (/\.tmp-\d+-[0-9a-f]+$/.test(f)) fs.rmSync(path.join(dir, f), { force: true });
    writeJsonAtomic(path.join(dir, 'cell.json'), cellRecord);
  }

  /** Success: result.json, then status 'done' + its digest (last). */
  markDone(result: CellResult): void {
    const dir = this.cellDir(result.key);
    const text = `${JSON.stringify(result, null, 2)}\n`;
    writeFileAtomic(path.join(dir, 'result.json'), text);
    writeFileAtomic(path.join(dir, 'status'), `done\nsha256:${digest(text)}\n`);
  }

  markFailed(key: string, record: { cell: string; error: { name: string; message: string; stack?: string }; [k: string]: unknown }): void {
    const dir = this.cellDir(key);
    fs.mkdirSync(dir, { recursive: true });
    writeJsonAtomic(path.join(dir, 'error.json'), { key, ...record });
    writeFileAtomic(path.join(dir, 'status'), `failed\n${record.error.message.split('\n')[0]}\n`);
  }

  markInterrupted(key: string, why: string): void {
    const dir = this.cellDir(key);
    if (!fs.existsSync(dir)) return;
    const s = readStatusFile(dir);
    if (s?.state === 'done' && 'result' in readResult(dir, key, s.digest)) return;
    writeFileAtomic(path.join(dir, 'status'), `interrupted\n${why}\n`);
  }

  /** Valid results of the given keys (the summary's input). */
  results(keys: string[]): Map<string, CellResult> {
    const out = new Map<string, CellResult>();
    for (const key of keys) {
      const s = readStatusFile(this.cellDir(key));
      if (s?.state !== 'done') continue;
      const r = readResult(this.cellDir(key), key, s.digest);
      if ('result' in r) out.set(key, r.result);
    }
    return out;
  }
}

export function digest(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function readStatusFile(dir: string): { state: string; digest: string | null; rest: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, 'status'), 'utf8');
  } catch {
    return null;
  }
  const [first, ...rest] = text.split('\n');
  const m = /^sha256:([0-9a-f]{64})$/.exec((rest[0] ?? '').trim());
  return { state: first.trim(), digest: m ? m[1] : null, rest: rest.join('\n').trim() };
}

/** result.json checked against the status digest, the key and the metrics' types. */
export function readResult(dir: string, key: string, expectedDigest: string | null): { result: CellResult } | { error: string } {
  if (expectedDigest === null) return { error: "status 'done' without the runner's digest (the job finished, the runner did not record it)" };
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path.join(dir, 'result.json'));
  } catch {
    return { error: "status 'done' but result.json is missing" };
  }
  if (digest(bytes) !== expectedDigest) return { error: `result.json (${bytes.length} bytes) does not match the digest in status (truncated or edited)` };
  let r: CellResult;
  try {
    r = JSON.parse(bytes.toString('utf8')) as CellResult;
  } catch (e) {
    return { error: `result.json is not valid JSON: ${(e as Error).message}` };
  }
  if (!r || r.key !== key) return { error: `result.json belongs to key ${String(r?.key).slice(0, 12)}, not ${key.slice(0, 12)}` };
  try {
    const m = checkMetrics(r.metrics);
    if (Object.values(m).some((v, i) => v !== Object.values(r.metrics)[i])) throw new Error('non-finite values stored as numbers');
  } catch (e) {
    return { error: `result.json: ${(e as Error).message}` };
  }
  if (typeof r.seconds !== 'number') return { error: 'result.json has no seconds' };
  return { result: r };
}
