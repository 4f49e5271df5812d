/**
 * Crash-safe file primitives of the sweep runner.
 *
 *   writeFileAtomic(file, data):  write <file>.tmp-<pid>-<random>, fsync it, rename it over <file>, fsync the folder.
 *     A reader sees the old content or the new, never a part (rename(2) is atomic on one filesystem, NFS included);
 *     a `kill -9` at any moment leaves at worst a stray temp file, which no reader looks at.
 *   appendLine(file, line):       one write(2) with O_APPEND (atomic against other appenders on a local disk for
 *     lines shorter than the pipe buffer; on NFS appends can interleave, so readers of the ledger skip bad lines).
 *   isAlive(pid):                 signal 0 probe: ESRCH = gone, EPERM = alive under another user.
 *
 * The trainer has its own writeAtomic (lib/train/runFolder.ts); this one adds the fsyncs, because a result the
 * runner calls finished must survive a machine crash, not only a process crash.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncDir(path.dirname(file));
}

/** fsync a folder so a rename in it is durable; some filesystems refuse, which is harmless. */
export function syncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // EISDIR/EINVAL/EPERM on some platforms and network filesystems: durability is then the server's business
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** JSON with NaN and +-Infinity as null (JSON has no such numbers), two-space indent, final newline. */
export function toJsonText(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, toJsonText(value));
}

/** Parse a JSON file; `null` when it is missing, `{error}` when it does not parse. */
export function readJsonFile(file: string): { value: unknown } | { error: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return { error: `${path.basename(file)}: ${(e as Error).message}` };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: `${path.basename(file)} is not valid JSON (${text.length} bytes): ${(e as Error).message}` };
  }
}

export function appendLine(file: string, line: string): void {
  fs.appendFileSync(file, line.endsWith('\n') ? line : `${line}\n`);
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // a zombie (exited, not yet reaped: common for orphans in containers whose PID 1 does not reap) answers signal 0
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc (macOS): trust signal 0
  }
}
