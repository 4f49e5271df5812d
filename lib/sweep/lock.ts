/**
 * Cell locks on a shared folder: two runners (or two shards of a SLURM array) never run the same cell at once, and
 * a crashed holder does not block the cell for ever.
 *
 *   acquire:  open(<key>.lock, O_CREAT | O_EXCL) and write {host, pid, workerPid, startedAt, token, owner}.
 *             O_EXCL creation is atomic on local disks and on NFSv3+ (the Optuna/W&B duplicate-cell reports in
 *             ecosystem.md section 4 come from samplers that had no such step).
 *   refresh:  every heartbeatMs the holder checks the token is still its own (one that finds another token has
 *             lost the lock and must stop the cell), then sets the file's mtime to now: the heartbeat is the mtime.
 *             The content is never rewritten by a heartbeat, so a heartbeat racing a takeover cannot put the old
 *             holder's token back (it can only touch the new holder's file, which is harmless). The worker pid is
 *             written once, right after the fork, milliseconds after the lock was created.
 *   stale:    the heartbeat is older than staleAfterMs (any host; assumes clocks agree to well within that), or the
 *             holder is on this host and neither its pid nor its worker's pid is alive (a `kill -9`ed runner is
 *             taken over at once, without waiting for the threshold).
 *   steal:    a stale lock is removed under a short-lived guard file (<key>.lock.steal, O_EXCL) after re-reading it
 *             and checking it is still the same stale lock; then acquisition starts over with O_EXCL, so of two
 *             runners that find the same stale lock, one gets the cell. A guard older than GUARD_STALE_MS (its
 *             owner died in the few microseconds it exists) is removed.
 *   release:  unlink, only if the token is still ours.
 */
import * as fs from 'fs';
import * as os from 'os';
import { randomBytes } from 'crypto';
import { isAlive, readJsonFile, writeFileAtomic } from './atomic';

export interface LockInfo {
  /** The holder's machine (hostIdentity(): hostname and PID namespace). */
  host: string;
  /** The runner process holding the lock. */
  pid: number;
  /** The worker process running the cell, once forked. */
  workerPid: number | null;
  /** ISO time of acquisition. */
  startedAt: string;
  /** ISO time of the last refresh: the lock file's mtime (filled in by readLock). */
  heartbeat: string;
  /** Random id of this acquisition (who owns the file now). */
  token: string;
  /** Free text for people: the shard and command that hold it. */
  owner: string;
}

export interface LockOptions {
  /** A heartbeat older than this makes the lock stale. Default 120 000 ms. */
  staleAfterMs: number;
  /** This machine's identity (default hostIdentity()). */
  host: string;
  /** Liveness probe (default: signal 0). */
  isAlive: (pid: number) => boolean;
  /** Clock (default Date.now). */
  now: () => number;
}

/**
 * This machine as lock files name it: the hostname, plus the PID namespace where Linux exposes it, so that two
 * containers sharing a hostname (and a folder) never judge each other's pids.
 */
export function hostIdentity(): string {
  try {
    const ns = /\[(\d+)\]/.exec(fs.readlinkSync('/proc/self/ns/pid'));
    return ns ? `${os.hostname()} (pid ns ${ns[1]})` : os.hostname();
  } catch {
    return os.hostname();
  }
}

export const DEFAULT_LOCK_OPTIONS: Readonly<LockOptions> = {
  staleAfterMs: 120_000,
  host: hostIdentity(),
  isAlive,
  now: () => Date.now(),
};

const GUARD_STALE_MS = 30_000;

export interface HeldLock {
  file: string;
  info: LockInfo;
}

export type AcquireResult = { ok: true; lock: HeldLock; tookOver: LockInfo | null } | { ok: false; holder: LockInfo | null; reason: string };

/** The lock's content; null when absent; 'unreadable' while being written or when corrupt. */
export function readLock(file: string): LockInfo | 'unreadable' | null {
  const r = readJsonFile(file);
  if (r === null) return null;
  if ('error' in r) return 'unreadable';
  const v = r.value as Partial<LockInfo>;
  if (!v || typeof v.host !== 'string' || typeof v.pid !== 'number' || typeof v.token !== 'string') return 'unreadable';
  let mtimeMs: number;
  try {
    mtimeMs = fs.statSync(file).mtimeMs;
  } catch {
    return null; // removed between the read and the stat
  }
  return { ...(v as LockInfo), heartbeat: new Date(mtimeMs).toISOString() };
}

/** Why the lock is stale, or null when its holder counts as alive. */
export function staleReason(info: LockInfo, o: LockOptions = DEFAULT_LOCK_OPTIONS): string | null {
  const age = o.now() - Date.parse(info.heartbeat);
  if (!Number.isFinite(age)) return `heartbeat '${info.heartbeat}' is not a time`;
  if (age > o.staleAfterMs) return `no heartbeat for ${Math.round(age / 1000)} s (threshold ${Math.round(o.staleAfterMs / 1000)} s)`;
  if (info.host === o.host) {
    const pids = [info.pid, ...(info.workerPid ? [info.workerPid] : [])];
    if (pids.every((p) => !o.isAlive(p))) return `holder pid ${pids.join('/')} is dead on this host`;
  }
  return null;
}

function fileAgeMs(file: string, o: LockOptions): number {
  try {
    return o.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function createExclusive(file: string, info: Omit<LockInfo, 'heartbeat'>): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    fs.writeFileSync(fd, JSON.stringify(info));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

export function acquireLock(file: string, owner: string, options: Partial<LockOptions> = {}): AcquireResult {
  const o: LockOptions = { ...DEFAULT_LOCK_OPTIONS, ...options };
  const stamp = new Date(o.now()).toISOString();
  const info: LockInfo = { host: o.host, pid: process.pid, workerPid: null, startedAt: stamp, heartbeat: stamp, token: randomBytes(8).toString('hex'), owner };
  // the heartbeat lives in the file's mtime; the JSON keeps the creation time only
  const { heartbeat: _h, ...content } = info;
  if (createExclusive(file, content)) return { ok: true, lock: { file, info }, tookOver: null };

  const current = readLock(file);
  if (current === null) {
    // released between our attempt and the read: one more try, no loop
    return createExclusive(file, content) ? { ok: true, lock: { file, info }, tookOver: null } : { ok: false, holder: null, reason: 'contended' };
  }
  if (current === 'unreadable') {
    // being written right now, or left half-written by a crash during creation
    if (fileAgeMs(file, o) <= o.staleAfterMs) return { ok: false, holder: null, reason: 'lock file is being written' };
  } else {
    const why = staleReason(current, o);
    if (why === null) return { ok: false, holder: current, reason: `held by ${current.owner} (pid ${current.pid} on ${current.host})` };
  }

  const guard = `${file}.steal`;
  if (!createExclusive(guard, content)) {
    if (fileAgeMs(guard, o) > GUARD_STALE_MS) fs.rmSync(guard, { force: true });
    return { ok: false, holder: current === 'unreadable' ? null : current, reason: 'another runner is taking over this stale lock' };
  }
  try {
    const again = readLock(file);
    const same = again === 'unreadable' ? current === 'unreadable' : again !== null && current !== 'unreadable' && again.token === current.token;
    if (!same) return { ok: false, holder: again === 'unreadable' ? null : again, reason: 'contended' };
    fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
  if (!createExclusive(file, content)) return { ok: false, holder: null, reason: 'contended' };
  return { ok: true, lock: { file, info }, tookOver: current === 'unreadable' ? null : current };
}

/** Heartbeat (the file's mtime := now); false when the lock is no longer ours. */
export function refreshLock(lock: HeldLock, now: () => number = Date.now): boolean {
  const current = readLock(lock.file);
  if (current === null || current === 'unreadable' || current.token !== lock.info.token) return false;
  const t = new Date(now());
  try {
    fs.utimesSync(lock.file, t, t);
  } catch {
    return false; // removed since the read: not ours any more
  }
  lock.info = { ...lock.info, heartbeat: t.toISOString() };
  return true;
}

/** Record the worker's pid in the lock (once, right after the fork); false when the lock is no longer ours. */
export function setLockWorker(lock: HeldLock, workerPid: number | null): boolean {
  const current = readLock(lock.file);
  if (current === null || current === 'unreadable' || current.token !== lock.info.token) return false;
  lock.info = { ...lock.info, workerPid };
  const { heartbeat: _h, ...content } = lock.info;
  writeFileAtomic(lock.file, JSON.stringify(content));
  return true;
}

/** Is the lock still ours (same token)? */
export function ownsLock(lock: HeldLock): boolean {
  const current = readLock(lock.file);
  return current !== null && current !== 'unreadable' && current.token === lock.info.token;
}

export function releaseLock(lock: HeldLock): void {
  if (ownsLock(lock)) fs.rmSync(lock.file, { force: true });
}
