/**
 * Cached inputs of the paper figures (style.md item 11: figures never train). Each figure reads a small committed
 * JSON file under data/figures/ (written once by its generator, lib/figures/paper/generate.ts) or, for training
 * curves, a run folder's metrics.jsonl. A missing file is an error that names the command that makes it.
 *
 *   data/figures/c1c2.json   claims C1 (AOPD Fig. 2a) and C2 (Fig. 2b), per seed (`seeds[i]`, seeds 0, 1, 2 in full
 *                            mode): per-token advantages A = log pT(y) - log pS(y) on rollouts of that seed's warm-up
 *                            student, black-hole measurements at the A < 0 positions, and the teacher's top token
 *                            under the student over OPD / forward-KL steps (`opdlab figures --generate c1c2`)
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { projectPaths } from './paths';

/** Black-hole measurements at the positions with A < 0 (lib/analysis/blackhole.ts), one entry per position. */
export interface BlackHolePoints {
  /** A = log pT(y) - log pS(y) at the position (< 0). */
  advantage: number[];
  /** Student prior pS(v*) of the teacher-preferred unsampled token v*. */
  pS: number[];
  /** pT(v*). */
  pT: number[];
  /** Student rank of v* (1 = the student's top token). */
  rank: number[];
  /** Delta z_{v*} = -step dL/dz_{v*} (step 1, reduction 'sum') under OPD. */
  opd: number[];
  /** The same under forward KL (GKD, beta = 0, full vocabulary). */
  forwardKL: number[];
  /** Promotion ratio Delta z_{v*} / max_v Delta z_v under each objective. */
  opdRatio: number[];
  forwardKLRatio: number[];
}

/** The teacher's top token under the student on a fixed probe set, mean over probes, per training step. */
export interface TrackerSeries {
  step: number[];
  /** Mean pS(teacher's top token). */
  pSTop: number[];
  /** Mean student rank of the teacher's top token. */
  rankTop: number[];
  /** Share of probes where the student's top token is the teacher's. */
  fracTop1: number[];
  /** Mean pT(teacher's top token) over the probes (fixed, the level the student would reach by matching pT). */
  pTTopMean?: number;
}

/** The C1/C2 measurements of one seed (its own warm-up student, rollouts and probe set). */
export interface C1C2Seed {
  /** Config seed. */
  seed: number;
  /** The seed's warm-up student: run key, SFT steps and batch, final SFT loss. */
  warmup?: Record<string, unknown>;
  /** Per-token advantages on student rollouts (masked-in tokens only). */
  advantages: number[];
  blackHole: BlackHolePoints;
  /** Tracker series per method label ('opd', 'forwardKL'); absent when not measured. */
  tracker?: Record<string, TrackerSeries>;
}

export interface C1C2Data {
  /** How the data were made: command, seeds, config values, counts, date. */
  source: Record<string, unknown>;
  /** One entry per seed, in seed order; every seed has the same tracker methods and steps. */
  seeds: C1C2Seed[];
}

/** The command that writes data/figures/<file>. */
export const DATA_COMMANDS: Readonly<Record<string, string>> = {
  'c1c2.json': 'npm run build && node dist/bin/opdlab.js figures --generate c1c2',
};

/** data/figures/<file>. */
export function figureDataPath(file: string, root?: string): string {
  return join(projectPaths(root).data, 'figures', file);
}

/**
 * Reads a committed figure-data file; a missing or unreadable file throws naming the command that makes it
 * (`command`, else DATA_COMMANDS by file name).
 */
export function readFigureData<T>(path: string, command?: string): T {
  const file = path.split(/[\\/]/).pop() ?? path;
  const cmd = command ?? DATA_COMMANDS[file] ?? 'the generator in lib/figures/paper/generate.ts';
  if (!existsSync(path)) throw new Error(`figure data ${path} is missing; make it with: ${cmd}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    throw new Error(`figure data ${path} is not valid JSON (${(e as Error).message}); regenerate it with: ${cmd}`);
  }
}

/** Writes a figure-data file as one line of JSON: its folder made, a temporary file renamed over it (readers never see a part). */
export function writeFigureData(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(data)}\n`);
  renameSync(tmp, path);
}

function checkNumbers(where: string, name: string, x: unknown, length?: number): void {
  if (!Array.isArray(x) || x.some((v) => typeof v !== 'number')) throw new Error(`${where}: '${name}' must be an array of numbers`);
  if (length !== undefined && x.length !== length) throw new Error(`${where}: '${name}' has ${x.length} entries, expected ${length} (${name.includes('.tracker.') ? 'one per step' : 'one per position'})`);
}

/**
 * data/figures/c1c2.json (or `path`), checked: a non-empty `seeds` array of distinct integer seeds, each with its
 * advantages, one black-hole entry per position in every field, and tracker series of one length per method; every
 * seed has the same tracker methods and steps (the figures band them over seeds). Errors name the field.
 */
export function readC1C2Data(path: string = figureDataPath('c1c2.json')): C1C2Data {
  const d = readFigureData<C1C2Data>(path);
  checkC1C2Data(d, `figure data ${path}`);
  return d;
}

/** The checks of readC1C2Data on data in memory; `where` starts each error message. */
export function checkC1C2Data(d: C1C2Data, where = 'c1c2 data'): void {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!Array.isArray(d?.seeds) || d.seeds.length === 0) fail(`'seeds' must be a non-empty array (one entry per seed), got ${Array.isArray(d?.seeds) ? 'an empty array' : typeof d?.seeds}`);
  const seen = new Set<number>();
  let trackerShape: string | null = null;
  d.seeds.forEach((s, i) => {
    const at = `seeds[${i}]`;
    if (typeof s !== 'object' || s === null) fail(`'${at}' must be an object`);
    if (!Number.isInteger(s.seed)) fail(`'${at}.seed' must be an integer, got ${JSON.stringify(s.seed)}`);
    if (seen.has(s.seed)) fail(`'${at}.seed' repeats seed ${s.seed}`);
    seen.add(s.seed);
    checkNumbers(where, `${at}.advantages`, s.advantages);
    if (typeof s.blackHole !== 'object' || s.blackHole === null) fail(`'${at}.blackHole' is missing`);
    const P = Array.isArray(s.blackHole.pS) ? s.blackHole.pS.length : undefined;
    for (const k of ['advantage', 'pS', 'pT', 'rank', 'opd', 'forwardKL', 'opdRatio', 'forwardKLRatio'] as const) checkNumbers(where, `${at}.blackHole.${k}`, s.blackHole[k], P);
    if (s.tracker !== undefined && (typeof s.tracker !== 'object' || s.tracker === null)) fail(`'${at}.tracker' must be an object (method -> series)`);
    for (const [m, t] of Object.entries(s.tracker ?? {})) {
      checkNumbers(where, `${at}.tracker.${m}.step`, t?.step);
      for (const k of ['pSTop', 'rankTop', 'fracTop1'] as const) checkNumbers(where, `${at}.tracker.${m}.${k}`, t[k], t.step.length);
    }
    const shape = JSON.stringify(Object.keys(s.tracker ?? {}).sort().map((m) => [m, s.tracker![m].step]));
    if (trackerShape === null) trackerShape = shape;
    else if (shape !== trackerShape) fail(`'${at}.tracker' has other methods or steps than seeds[0].tracker (the figures band the series over seeds)`);
  });
}

/**
 * The tracker series of a run folder: the blackhole/probe_* keys of runs/<sweep>/<runKey>/metrics.jsonl (logged
 * every analysis.every steps by lib/train/step.ts). Throws when the file is missing or holds no probe rows.
 */
export function trackerFromRun(runDir: string): TrackerSeries {
  const file = join(runDir, 'metrics.jsonl');
  if (!existsSync(file)) throw new Error(`trackerFromRun: ${file} is missing; make the run with: node dist/bin/opdlab.js run ...`);
  const out: TrackerSeries = { step: [], pSTop: [], rankTop: [], fracTop1: [] };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as Record<string, number>;
    if (typeof r['blackhole/probe_ps_top_mean'] !== 'number') continue;
    out.step.push(r.step);
    out.pSTop.push(r['blackhole/probe_ps_top_mean']);
    out.rankTop.push(r['blackhole/probe_rank_top_mean']);
    out.fracTop1.push(r['blackhole/probe_frac_top1']);
  }
  if (out.step.length === 0) throw new Error(`trackerFromRun: ${file} has no blackhole/probe_* rows (analysis.every too large?)`);
  return out;
}
