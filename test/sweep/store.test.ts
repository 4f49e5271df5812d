import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, writeFileAtomic } from '../../lib/sweep/atomic';
import { checkMetrics } from '../../lib/sweep/job';
import { acquireLock, hostIdentity, ownsLock, readLock, refreshLock, releaseLock, setLockWorker, staleReason, type LockInfo } from '../../lib/sweep/lock';
import { SweepStore, type CellResult } from '../../lib/sweep/store';
import { tempDir } from './helpers';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = tempDir('store');
  dirs.push(d);
  return d;
}
/** A pid that existed and is gone. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}
function lockInfo(over: Partial<LockInfo>): LockInfo {
  const now = new Date().toISOString();
  return { host: hostIdentity(), pid: process.pid, workerPid: null, startedAt: now, heartbeat: now, token: 'feedfeedfeedfeed', owner: 'test', ...over };
}

describe('locks', () => {
  it('O_EXCL: one holder at a time; release frees the cell', () => {
    const file = path.join(tmp(), 'k.lock');
    const a = acquireLock(file, 'A');
    expect(a.ok).toBe(true);
    const b = acquireLock(file, 'B');
    expect(b).toMatchObject({ ok: false, holder: { owner: 'A', pid: process.pid } });
    if (!a.ok) throw new Error('unreachable');
    expect(ownsLock(a.lock)).toBe(true);
    releaseLock(a.lock);
    expect(fs.existsSync(file)).toBe(false);
    expect(acquireLock(file, 'B').ok).toBe(true);
  });

  it('a lock whose holder pids are dead on this host is taken over at once', () => {
    const file = path.join(tmp(), 'k.lock');
    const gone = lockInfo({ pid: deadPid(), workerPid: deadPid() });
    expect(isAlive(gone.pid)).toBe(false);
    fs.writeFileSync(file, JSON.stringify(gone));
    expect(staleReason(gone)).toMatch(/is dead on this host/);
    const r = acquireLock(file, 'B');
    expect(r).toMatchObject({ ok: true, tookOver: { token: gone.token } });
    expect((readLock(file) as LockInfo).owner).toBe('B');
  });

  it('the same hostname in another PID namespace (another container) is another host', () => {
    expect(hostIdentity().startsWith(os.hostname())).toBe(true);
    const otherContainer = lockInfo({ host: `${os.hostname()} (pid ns 1)`, pid: deadPid() });
    if (hostIdentity() !== os.hostname()) expect(staleReason(otherContainer)).toBeNull();
  });

  it('a live worker keeps the lock even when its runner is dead', () => {
    const info = lockInfo({ pid: deadPid(), workerPid: process.pid });
    expect(staleReason(info)).toBeNull();
  });

  it('another host: stale only by heartbeat age (its pids cannot be checked from here)', () => {
    const fresh = lockInfo({ host: 'elsewhere', pid: deadPid() });
    expect(staleReason(fresh)).toBeNull();
    const old = lockInfo({ host: 'elsewhere', heartbeat: new Date(Date.now() - 10 * 60_000).toISOString() });
    expect(staleReason(old)).toMatch(/no heartbeat for 60\d s \(threshold 120 s\)/);
    expect(staleReason(old, { staleAfterMs: 3_600_000, host: hostIdentity(), isAlive, now: Date.now })).toBeNull();
    const file = path.join(tmp(), 'k.lock');
    fs.writeFileSync(file, JSON.stringify(fresh));
    expect(acquireLock(file, 'B')).toMatchObject({ ok: false, holder: { host: 'elsewhere' } });
    fs.writeFileSync(file, JSON.stringify(old));
    expect(acquireLock(file, 'B')).toMatchObject({ ok: false }); // the heartbeat is the file's mtime, not the JSON
    const past = new Date(Date.now() - 10 * 60_000);
    fs.utimesSync(file, past, past);
    expect(Math.abs(Date.parse((readLock(file) as LockInfo).heartbeat) - past.getTime())).toBeLessThanOrEqual(2); // mtime rounding
    expect(acquireLock(file, 'B')).toMatchObject({ ok: true });
  });

  it('a lock file being written (unparseable) is respected while young, taken over when old', () => {
    const file = path.join(tmp(), 'k.lock');
    fs.writeFileSync(file, '{"host":"x",');
    expect(acquireLock(file, 'B')).toMatchObject({ ok: false, reason: 'lock file is being written' });
    const past = new Date(Date.now() - 10 * 60_000);
    fs.utimesSync(file, past, past);
    expect(acquireLock(file, 'B')).toMatchObject({ ok: true, tookOver: null });
  });

  it('a holder whose lock was taken over finds out at its next heartbeat and cannot release the new one', () => {
    const file = path.join(tmp(), 'k.lock');
    const a = acquireLock(file, 'A');
    if (!a.ok) throw new Error('acquire failed');
    expect(setLockWorker(a.lock, 123)).toBe(true);
    expect((readLock(file) as LockInfo).workerPid).toBe(123);
    // a heartbeat moves the mtime and never rewrites the content (so it cannot undo a takeover)
    const before = fs.readFileSync(file, 'utf8');
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(file, past, past);
    expect(refreshLock(a.lock)).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(Date.now() - fs.statSync(file).mtimeMs).toBeLessThan(5_000);
    fs.writeFileSync(file, JSON.stringify(lockInfo({ token: 'othertoken000000', owner: 'B' })));
    expect(refreshLock(a.lock)).toBe(false);
    expect(ownsLock(a.lock)).toBe(false);
    releaseLock(a.lock);
    expect((readLock(file) as LockInfo).owner).toBe('B');
  });

  it('a stale lock stolen twice in a row still ends with exactly one holder', () => {
    const file = path.join(tmp(), 'k.lock');
    fs.writeFileSync(file, JSON.stringify(lockInfo({ pid: deadPid() })));
    const first = acquireLock(file, 'B');
    const second = acquireLock(file, 'C');
    expect([first.ok, second.ok]).toEqual([true, false]);
    expect(fs.existsSync(`${file}.steal`)).toBe(false);
  });
});

function result(key: string, metrics: Record<string, number | null> = { 'final/score': 1.5 }): CellResult {
  return { key, cell: 'x=1', metrics, startedAt: 't0', finishedAt: 't1', seconds: 2, host: 'h', pid: 1 };
}
const KEY = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

describe('cell state from the files alone', () => {
  it('missing -> running (own lock) -> done', () => {
    const store = new SweepStore(tmp(), 's');
    store.ensure();
    expect(store.inspect(KEY).state).toBe('missing');
    const lock = acquireLock(store.lockFile(KEY), 'me');
    if (!lock.ok) throw new Error('lock');
    store.markRunning(KEY, { cell: 'x=1' });
    expect(store.inspect(KEY).state).toBe('running');
    store.markDone(result(KEY));
    releaseLock(lock.lock);
    const s = store.inspect(KEY);
    expect(s.state).toBe('done');
    expect(s.result?.metrics).toEqual({ 'final/score': 1.5 });
    expect(fs.readFileSync(path.join(store.cellDir(KEY), 'status'), 'utf8')).toMatch(/^done\nsha256:[0-9a-f]{64}\n$/);
    expect(store.results([KEY, OTHER]).size).toBe(1);
  });

  it('a result.json cut short (at many lengths) never reads as done', () => {
    const store = new SweepStore(tmp(), 's');
    store.ensure();
    store.markRunning(KEY, {});
    store.markDone(result(KEY));
    const file = path.join(store.cellDir(KEY), 'result.json');
    const full = fs.readFileSync(file);
    const cuts = [...Array(full.length).keys()].filter((n) => n < 16 || n % 11 === 0 || n >= full.length - 4);
    for (const n of cuts) {
      fs.writeFileSync(file, full.subarray(0, n));
      const s = store.inspect(KEY);
      expect(s.state, `cut at ${n} bytes`).toBe('corrupt');
      expect(s.detail).toMatch(/does not match the digest in status/);
    }
    fs.writeFileSync(file, full);
    expect(store.inspect(KEY).state).toBe('done');
  });

  it('edited, foreign, trainer-only and missing results are corrupt, each with its reason', () => {
    const store = new SweepStore(tmp(), 's');
    store.ensure();
    const dir = store.cellDir(KEY);
    store.markRunning(KEY, {});
    store.markDone(result(KEY));
    const file = path.join(dir, 'result.json');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('1.5', '2.5')); // valid JSON, other bytes
    expect(store.inspect(KEY)).toMatchObject({ state: 'corrupt', detail: expect.stringMatching(/digest/) });

    store.markRunning(OTHER, {});
    store.markDone(result(OTHER)); // written into OTHER's folder, copied over KEY's below
    for (const f of ['result.json', 'status']) fs.copyFileSync(path.join(store.cellDir(OTHER), f), path.join(dir, f));
    expect(store.inspect(KEY)).toMatchObject({ state: 'corrupt', detail: expect.stringMatching(/belongs to key bbbbbbbbbbbb/) });

    fs.writeFileSync(path.join(dir, 'status'), 'done\n'); // the trainer's own 'done', before the runner recorded the result
    expect(store.inspect(KEY)).toMatchObject({ state: 'corrupt', detail: expect.stringMatching(/without the runner's digest/) });

    store.markDone(result(KEY));
    fs.rmSync(file);
    expect(store.inspect(KEY)).toMatchObject({ state: 'corrupt', detail: expect.stringMatching(/result.json is missing/) });
  });

  it('failed cells keep their error and stack and are never results; interrupted ones are not either', () => {
    const store = new SweepStore(tmp(), 's');
    store.ensure();
    store.markRunning(KEY, {});
    const err = new Error('boom at step 3');
    store.markFailed(KEY, { cell: 'x=1', error: { name: err.name, message: err.message, stack: err.stack } });
    expect(store.inspect(KEY)).toMatchObject({ state: 'failed', detail: 'boom at step 3' });
    const saved = JSON.parse(fs.readFileSync(path.join(store.cellDir(KEY), 'error.json'), 'utf8'));
    expect(saved.error.stack).toMatch(/boom at step 3\n\s+at /);
    expect(store.results([KEY]).size).toBe(0);

    store.markRunning(OTHER, {});
    expect(store.inspect(OTHER).state).toBe('interrupted'); // status running, no live lock
    store.markInterrupted(OTHER, 'worker killed');
    expect(store.inspect(OTHER)).toMatchObject({ state: 'interrupted', detail: expect.stringMatching(/status 'interrupted'/) });
    // a rerun clears the old outcome files before anything else
    store.markRunning(KEY, {});
    expect(fs.existsSync(path.join(store.cellDir(KEY), 'error.json'))).toBe(false);
  });

  it('the ledger is append-only and a torn last line is skipped', () => {
    const store = new SweepStore(tmp(), 's');
    store.ensure();
    store.log({ event: 'start', key: KEY, cell: 'x=1' });
    store.log({ event: 'done', key: KEY, cell: 'x=1' });
    fs.appendFileSync(store.ledger, '{"t":"2026-01-01","event":"sta');
    expect(store.readLedger().map((e) => e.event)).toEqual(['start', 'done']);
  });
});

describe('atomic writes and metric checks', () => {
  it('writeFileAtomic replaces the file and leaves no temporary file', () => {
    const d = tmp();
    const f = path.join(d, 'x.json');
    writeFileAtomic(f, 'one');
    writeFileAtomic(f, 'two');
    expect(fs.readFileSync(f, 'utf8')).toBe('two');
    expect(fs.readdirSync(d)).toEqual(['x.json']);
  });

  it('metrics must be numbers; non-finite ones are stored as null', () => {
    expect(checkMetrics({ a: 1, b: NaN, c: Infinity, d: null })).toEqual({ a: 1, b: null, c: null, d: null });
    expect(() => checkMetrics({ a: '1' })).toThrow(/metric 'a' = "1"; metrics must be numbers/);
    expect(() => checkMetrics([1])).toThrow(/instead of an object of metrics/);
  });
});
