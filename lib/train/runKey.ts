/**
 * Run keys: the identity of a run's outcome, so a sweep can key its cells by it and skip what is done.
 *
 *   runKey(config)    = sha256( canonicalJson({ config: outcomeConfig(config), code: codeVersion() }) )   hex
 *   warmupKey(config) = sha256( canonicalJson({ warmup: { seed, task, student, warmup, continualTask }, code }) )
 *
 * canonicalJson: JSON with object keys sorted at every depth, no whitespace, numbers as JavaScript prints them
 * (so 1e-4 and 0.0001 are the same number); undefined members dropped; NaN/Infinity rejected.
 * outcomeConfig: the resolved config without the fields that cannot change a result: `out` (where the folder
 * goes and what to do if it exists), `checkpointEvery` (resuming is exact, test/train/run.test.ts) and `stopAfter`
 * (the interruption hook). Everything else, the evaluation and analysis settings included, changes what is
 * logged, hence the key.
 * codeVersion: the package version and `source`, a sha256 over the code a run executes: every .ts file under lib/
 * except the folders that never run inside training (figures/, report/, notebooks/, io/, sweep/), path and
 * content, in sorted order (the built dist/lib/*.js files when the TypeScript sources are not shipped). So an edit
 * to the simulation, trainer, objectives, kernels or analysis gives new keys (uncommitted edits included), while a
 * commit that only touches docs, data, figures or tests keeps every cached run and warm-up valid. `commit` (HEAD,
 * read from .git directly, no git process) is recorded for people but is not part of the key.
 * The backend is not part of the key (it is recorded in meta.json): runs on different backends agree only up to
 * float rounding, and a sweep may mix them.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Config } from './config';

/** Key-sorted, whitespace-free JSON (the hash input). */
export function canonicalJson(value: unknown): string {
  const walk = (v: unknown, where: string): string => {
    if (v === null) return 'null';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new Error(`canonicalJson: ${where} is ${v}; only finite numbers have a canonical form`);
      return JSON.stringify(v);
    }
    if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
    if (Array.isArray(v)) return `[${v.map((x, i) => walk(x, `${where}[${i}]`)).join(',')}]`;
    if (typeof v === 'object') {
      const entries = Object.keys(v as object)
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${walk((v as Record<string, unknown>)[k], `${where}.${k}`)}`);
      return `{${entries.join(',')}}`;
    }
    throw new Error(`canonicalJson: ${where} has type ${typeof v}, which JSON cannot hold`);
  };
  return walk(value, 'value');
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface CodeVersion {
  /** package.json version. */
  version: string;
  /** sha256 hex of the training-relevant sources (header). */
  source: string;
}

/** Folders under lib/ whose code never runs inside a training run (not hashed into `source`). */
export const NON_TRAINING_DIRS: readonly string[] = ['figures', 'report', 'notebooks', 'io', 'sweep'];

/** The folder with opdlab's package.json (works from lib/ and from the built dist/lib/). */
export function packageRoot(start = __dirname): string {
  let dir = start;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string };
      if (pkg.name === 'opdlab') return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`packageRoot: no opdlab package.json above ${start}`);
    dir = up;
  }
}

/** HEAD's commit, read from the .git folder (or the gitdir a .git file points to); null if there is none. */
export function gitCommit(root: string): string | null {
  try {
    let gitDir = path.join(root, '.git');
    if (fs.statSync(gitDir).isFile()) {
      const m = /^gitdir:\s*(.+)\s*$/m.exec(fs.readFileSync(gitDir, 'utf8'));
      if (!m) return null;
      gitDir = path.resolve(root, m[1]);
    }
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref:\s*(.+)$/.exec(head)?.[1];
    if (!ref) return null;
    // a worktree keeps refs in the common dir
    const common = fs.existsSync(path.join(gitDir, 'commondir')) ? path.resolve(gitDir, fs.readFileSync(path.join(gitDir, 'commondir'), 'utf8').trim()) : gitDir;
    for (const dir of [gitDir, common]) {
      const file = path.join(dir, ref);
      if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
    }
    const packed = path.join(common, 'packed-refs');
    if (fs.existsSync(packed)) {
      for (const line of fs.readFileSync(packed, 'utf8').split('\n')) {
        const [sha, name] = line.trim().split(' ');
        if (name === ref && /^[0-9a-f]{40}$/.test(sha)) return sha;
      }
    }
    return null;
  } catch {
    return null;
  }
}

/** sha256 over (relative path, content) of every training-relevant source file under `libDir` with extension `ext`. */
export function sourceHash(libDir: string, ext: '.ts' | '.js'): string {
  const files: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (!(rel === '' && NON_TRAINING_DIRS.includes(e.name))) walk(path.join(dir, e.name), r);
      } else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts')) files.push(r);
    }
  };
  walk(libDir, '');
  if (files.length === 0) throw new Error(`codeVersion: no ${ext} files under ${libDir}`);
  const h = createHash('sha256');
  for (const f of files.sort()) h.update(`${f}\0`).update(fs.readFileSync(path.join(libDir, f))).update('\0');
  return h.digest('hex');
}

let cachedVersion: CodeVersion | null = null;

/**
 * Environment variable through which the sweep runner hands its code version to its worker processes (JSON), so
 * a source edit while a sweep runs cannot make a worker's run key disagree with the runner's.
 */
export const CODE_VERSION_ENV = 'OPDLAB_CODE_VERSION';

/** The package version and the hash of the training-relevant sources (header); computed once per process. */
export function codeVersion(): CodeVersion {
  const given = process.env[CODE_VERSION_ENV];
  if (!cachedVersion && given) {
    const v = JSON.parse(given) as Partial<CodeVersion>;
    if (typeof v.version !== 'string' || typeof v.source !== 'string') throw new Error(`${CODE_VERSION_ENV} must be JSON {version, source}, got ${given}`);
    cachedVersion = { version: v.version, source: v.source };
  }
  if (!cachedVersion) {
    const root = packageRoot();
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    const ts = path.join(root, 'lib');
    const source = fs.existsSync(path.join(ts, 'train', 'runKey.ts')) ? sourceHash(ts, '.ts') : sourceHash(path.join(root, 'dist', 'lib'), '.js');
    cachedVersion = { version: pkg.version, source };
  }
  return cachedVersion;
}

/** The config without the fields that cannot change the outcome (header). */
export function outcomeConfig(config: Config): Omit<Config, 'out' | 'checkpointEvery' | 'stopAfter'> {
  const { out: _out, checkpointEvery: _c, stopAfter: _s, ...rest } = config;
  return rest;
}

/** sha256 hex of the outcome-affecting config and the code version; `config` must be resolved (resolveConfig). */
export function runKey(config: Config, code: CodeVersion = codeVersion()): string {
  return sha256(canonicalJson({ config: outcomeConfig(config), code }));
}

/** What the warm-up student depends on: several methods from the same initialisation share it. */
export function warmupKey(config: Config, code: CodeVersion = codeVersion()): string {
  return sha256(canonicalJson({ warmup: warmupInputs(config), code }));
}

/** The config fields the warm-up depends on (the continual task only when part of the warm-up batch is drawn from it). */
export function warmupInputs(config: Config): Record<string, unknown> {
  const { seed, task, student, warmup } = config;
  return { seed, task, student, warmup, continualTask: warmup.continualShare > 0 ? config.continual!.task : null };
}
