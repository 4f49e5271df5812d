/**
 * Helpers of the sweep runner tests: the built CLI (workers are plain Node processes running dist/), temp folders,
 * the test job's trace file, polling.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'dist', 'bin', 'opdlab.js');

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (entry.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Throws a clear message unless dist/ holds a build of the current lib/sweep and bin sources. */
export function requireBuiltDist(): void {
  const needed = ['dist/bin/opdlab.js', 'dist/lib/sweep/worker.js', 'dist/lib/sweep/testing/sleepJob.js', 'dist/lib/sweep/cli.js'];
  for (const f of needed) {
    if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`sweep tests need the built library: ${f} is missing; run \`npm run build\` (npm test builds first)`);
  }
  const src = Math.max(newestMtime(path.join(ROOT, 'lib', 'sweep'), '.ts'), fs.statSync(path.join(ROOT, 'bin', 'opdlab.ts')).mtimeMs);
  const built = Math.min(...needed.map((f) => fs.statSync(path.join(ROOT, f)).mtimeMs), newestMtime(path.join(ROOT, 'dist', 'lib', 'sweep'), '.js'));
  if (built < src - 1000) throw new Error('sweep tests: dist/ is older than lib/sweep or bin/opdlab.ts; run `npm run build` (npm test builds first)');
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `opdlab-${prefix}-`));
}

export function writeSpec(dir: string, spec: Record<string, unknown>): string {
  const file = path.join(dir, `${String(spec.name)}.json`);
  fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `opdlab <args>` to completion. */
export function cli(args: string[], env: Record<string, string> = {}, cwd = ROOT): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env: { ...cleanEnv(), ...env }, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start `opdlab <args>` in the background. */
export function cliAsync(args: string[], env: Record<string, string> = {}, cwd = ROOT): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

/** The environment without shard variables a CI runner might carry. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(SLURM_|JOB_COMPLETION_INDEX|JOB_COMPLETIONS|OPDLAB_SHARD_COUNT|OPDLAB_TESTJOB_|VITEST|NODE_OPTIONS)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** Trace lines of the test job: key -> number of 'start' and 'end' lines. */
export function readTrace(file: string): Map<string, { start: number; end: number }> {
  const out = new Map<string, { start: number; end: number }>();
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const [key, , what] = line.trim().split(' ');
    if (!key) continue;
    const e = out.get(key) ?? { start: 0, end: 0 };
    if (what === 'start') e.start++;
    if (what === 'end') e.end++;
    out.set(key, e);
  }
  return out;
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000, everyMs = 25): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}
