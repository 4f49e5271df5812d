/**
 * Run folders (architecture.md "Run folders and metrics"):
 *
 *   <root>/<sweep>/<runKey>/
 *     config.json     the full resolved config
 *     meta.json       run key, warm-up key, code version (package, git commit), package versions, backend, seed
 *     metrics.jsonl   one JSON object per training step: {step, phase, <namespaced keys>} (docs/metrics.md)
 *     eval.jsonl      one JSON object per evaluation and task: {step, phase, task, eval/...}
 *     summary.json    written once the run is done
 *     status          'running' | 'stopped' | 'failed' | 'done' (first line; a failure's message follows)
 *     checkpoint/     the last checkpoint (lib/sim/checkpoint.ts layout + the trainer's state in extra)
 *
 * Every whole-file write goes to a temporary name and is renamed over the target (atomic on one filesystem). The
 * JSONL logs are appended one line per write; on resume they are cut back to the checkpoint's step (a partly
 * written last line included), so a resumed run's logs equal an uninterrupted run's. A folder is never reused
 * silently: `ifExists` decides ('raise' | 'resume' | 'delete').
 * NaN and +-Infinity are written as null (JSON has no such numbers).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { IfExists } from './config';

export type RunStatus = 'running' | 'stopped' | 'failed' | 'done';

export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** JSON with NaN / Infinity as null and typed arrays as lists. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_k, v) => {
      if (typeof v === 'number' && !Number.isFinite(v)) return null;
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      return v;
    },
    indent,
  );
}

export function writeJson(file: string, value: unknown): void {
  writeAtomic(file, `${toJson(value, 2)}\n`);
}

export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** The rows of a JSONL file; a last line without its newline (an interrupted append) is dropped. */
export function readJsonl<T = Record<string, unknown>>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as T);
}

export function appendJsonl(file: string, row: unknown): void {
  fs.appendFileSync(file, `${toJson(row)}\n`);
}

/** Keep only rows with step <= maxStep (rewritten atomically). */
export function truncateJsonl(file: string, maxStep: number): void {
  const rows = readJsonl<{ step: number }>(file).filter((r) => r.step <= maxStep);
  writeAtomic(file, rows.map((r) => `${toJson(r)}\n`).join(''));
}

export function readStatus(dir: string): RunStatus | null {
  const file = path.join(dir, 'status');
  if (!fs.existsSync(file)) return null;
  return fs.readFileSync(file, 'utf8').split('\n')[0].trim() as RunStatus;
}

export function writeStatus(dir: string, status: RunStatus, message?: string): void {
  writeAtomic(path.join(dir, 'status'), message ? `${status}\n${message}\n` : `${status}\n`);
}

export interface OpenedFolder {
  dir: string;
  /** 'new': created empty; 'resume': exists and is to be continued (or is done). */
  mode: 'new' | 'resume';
  /** Status found in an existing folder. */
  previous: RunStatus | null;
}

/**
 * Create or reopen the run folder `dir` according to `ifExists`. 'raise' throws if it exists; 'delete' removes it
 * and starts empty; 'resume' keeps it.
 */
export function openRunFolder(dir: string, ifExists: IfExists): OpenedFolder {
  if (fs.existsSync(dir)) {
    const previous = readStatus(dir);
    if (ifExists === 'raise') {
      throw new Error(`run folder ${dir} already exists (status: ${previous ?? 'unknown'}); set out.ifExists to 'resume' to continue it or 'delete' to start over`);
    }
    if (ifExists === 'resume') return { dir, mode: 'resume', previous };
    fs.rmSync(dir, { recursive: true, force: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  return { dir, mode: 'new', previous: null };
}
