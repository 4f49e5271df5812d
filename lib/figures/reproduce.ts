/**
 * `opdlab reproduce` (what `npm run reproduce` runs): every paper figure from an empty cache.
 *
 *   1. train    the runs of every built-in spec the data generators read (lib/figures/sweeps.ts: 3 seeds per cell,
 *               deduplicated by run key, cache-aware: finished runs anywhere under the runs root are reused)
 *   2. generate each data generator (lib/figures/paper/generators.ts) -> <dataDir>/<file>.json, in forked
 *               processes side by side (generateWorker.ts; `workers` at a time)
 *   3. draw     every figure from those files -> <outDir>/<name>.{json,html,png,svg} and numbers.json
 *   4. record   <dataDir>/reproduce.json: mode, seconds per phase, runs trained and reused (the README quotes it)
 *
 * Modes: 'full' writes data/figures/ and figures/ of the repository (the committed results); 'quick' (--quick, the
 * tests) trains tiny runs into runs-quick/ and writes its data and figures there, never over the committed ones.
 * Interrupting is safe: finished runs stay finished, and the next call trains only what is missing.
 */
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeJsonAtomic } from '../sweep/atomic';
import { builtLibDir } from '../sweep/job';
import { projectPaths } from './paths';
import { drawPaperFigures, PAPER_FIGURES } from './paper';
import { DATA_GENERATORS, getGenerator, type DataGenerator } from './paper/generators';
import { runPaperCells, type ReproduceMode } from './sweeps';

export interface ReproduceOptions {
  mode: ReproduceMode;
  /** Repository root. Default projectPaths().root. */
  root: string;
  /** Sweeps folder. Default <root>/runs (full), <root>/runs-quick/runs (quick). */
  runsRoot: string;
  /** Data files. Default <root>/data/figures (full), <root>/runs-quick/data (quick). */
  dataDir: string;
  /** Figures. Default <root>/figures (full), <root>/runs-quick/figures (quick). */
  outDir: string;
  /** Only these generators (and the figures drawn from their files). Default all. */
  only: string[] | null;
  /** Stop after training (no data files, no figures). Default false. */
  onlyRuns: boolean;
  /** Specs to train when onlyRuns (default: those of the chosen generators). */
  specs: string[] | null;
  /** Worker processes for training. Default 2. */
  workers: number;
  /** PNG and SVG too (headless Chromium). Default true. */
  images: boolean;
  progress: 'auto' | 'bars' | 'lines' | 'none';
  log: (line: string) => void;
  handleSignals: boolean;
}

export interface ReproduceResult {
  generators: string[];
  figures: string[];
  runs: { total: number; cached: number; trained: number };
  seconds: { train: number; generate: number; draw: number; total: number };
  dataDir: string;
  outDir: string;
}

/** Defaults of `reproduceOptions` for a mode (header). */
export function reproduceOptions(partial: Partial<ReproduceOptions> = {}): ReproduceOptions {
  const mode = partial.mode ?? 'full';
  const root = partial.root ?? projectPaths().root;
  const quickDir = path.join(root, 'runs-quick');
  return {
    mode,
    root,
    runsRoot: mode === 'full' ? path.join(root, 'runs') : path.join(quickDir, 'runs'),
    dataDir: mode === 'full' ? path.join(root, 'data', 'figures') : path.join(quickDir, 'data'),
    outDir: mode === 'full' ? path.join(root, 'figures') : path.join(quickDir, 'figures'),
    only: null,
    onlyRuns: false,
    specs: null,
    workers: 2,
    images: true,
    progress: 'auto',
    log: () => undefined,
    handleSignals: false,
    ...partial,
  };
}

const secondsSince = (t0: number): number => Math.round((performance.now() - t0) / 100) / 10;

/**
 * Runs the generators in forked processes (generateWorker.ts), at most o.workers at a time, those that run the
 * simulation themselves (`simulates`) first; each log line is prefixed with its generator's name. Rejects, after the
 * running ones end, with every failed generator named.
 */
export async function generateInParallel(generators: readonly DataGenerator[], o: ReproduceOptions): Promise<void> {
  const queue = [...generators].sort((a, b) => Number(b.simulates) - Number(a.simulates));
  const worker = path.join(builtLibDir(), 'figures', 'generateWorker.js');
  const failed: string[] = [];
  const runOne = (g: DataGenerator): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const out = path.join(o.dataDir, g.dataFile);
      o.log(`      [${g.name}] -> ${out}`);
      const child = fork(worker, [JSON.stringify({ name: g.name, mode: o.mode, runsRoot: o.runsRoot, out })], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      let rest = ''; // a line not yet ended by its newline
      child.stdout!.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString('utf8')).split('\n');
        rest = parts.pop()!;
        for (const line of parts) o.log(`      [${g.name}] ${line}`);
      });
      const stderr: string[] = [];
      child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
      child.on('close', (code, signal) => {
        if (rest) o.log(`      [${g.name}] ${rest}`);
        if (code === 0) o.log(`      [${g.name}] done in ${secondsSince(t0)} s`);
        else {
          failed.push(g.name);
          o.log(`      [${g.name}] FAILED (${signal ?? `exit ${code}`}): ${stderr.join('').trim()}`);
        }
        resolve();
      });
    });
  const lanes = Array.from({ length: Math.min(o.workers, queue.length) }, async () => {
    for (let g = queue.shift(); g; g = queue.shift()) await runOne(g);
  });
  await Promise.all(lanes);
  if (failed.length > 0) throw new Error(`reproduce: data generator(s) failed: ${failed.join(', ')} (their errors are above; \`opdlab figures --generate <name>\` reruns one)`);
}

export async function reproduce(partial: Partial<ReproduceOptions> = {}): Promise<ReproduceResult> {
  const o = reproduceOptions(partial);
  if (!Number.isInteger(o.workers) || o.workers < 1) throw new Error(`reproduce: workers must be an integer >= 1, got ${o.workers}`);
  const generators: DataGenerator[] = o.only ? o.only.map(getGenerator) : DATA_GENERATORS;
  const specs = o.specs ?? [...new Set(generators.flatMap((g) => g.specs))];
  const t0 = performance.now();

  o.log(`[1/3] training the runs of ${specs.length ? specs.join(', ') : 'no spec'} (${o.mode}) under ${o.runsRoot}`);
  const runs = await runPaperCells({ specs, mode: o.mode, runsRoot: o.runsRoot, workers: o.workers, progress: o.progress, write: o.log, handleSignals: o.handleSignals });
  o.log(`      ${runs.total} distinct runs: ${runs.cached} reused, ${runs.done} trained${runs.failed.length ? `, ${runs.failed.length} FAILED: ${runs.failed.join(', ')}` : ''}`);
  if (runs.aborted) throw new Error('reproduce: interrupted while training; run the same command again to continue (finished runs are kept)');
  if (runs.failed.length > 0) throw new Error(`reproduce: ${runs.failed.length} runs failed (error.json in each run folder under ${o.runsRoot}/paper): ${runs.failed.join(', ')}`);
  const tTrain = secondsSince(t0);
  const result: ReproduceResult = {
    generators: [],
    figures: [],
    runs: { total: runs.total, cached: runs.cached, trained: runs.done },
    seconds: { train: tTrain, generate: 0, draw: 0, total: tTrain },
    dataDir: o.dataDir,
    outDir: o.outDir,
  };
  if (o.onlyRuns) return result;

  const t1 = performance.now();
  fs.mkdirSync(o.dataDir, { recursive: true });
  o.log(`[2/3] ${generators.length} data generators -> ${o.dataDir} (${Math.min(o.workers, generators.length)} processes; simulation-heavy ones first)`);
  await generateInParallel(generators, o);
  result.generators = generators.map((g) => g.name);
  result.seconds.generate = secondsSince(t1);

  const t2 = performance.now();
  const files = new Set(generators.map((g) => g.dataFile));
  const figures = PAPER_FIGURES.filter((f) => files.has(f.dataFile)).map((f) => f.name);
  o.log(`[3/3] drawing ${figures.length} figures -> ${o.outDir}`);
  // `only: []` would mean every figure to drawPaperFigures: draw nothing when these generators feed no figure
  const drawn = figures.length === 0 ? { names: [] } : await drawPaperFigures({ root: o.root, dataDir: o.dataDir, outDir: o.outDir, only: figures, images: o.images, log: (l) => o.log(`      ${l}`) });
  result.figures = drawn.names;
  result.seconds.draw = secondsSince(t2);
  result.seconds.total = secondsSince(t0);
  writeJsonAtomic(path.join(o.dataDir, 'reproduce.json'), {
    mode: o.mode,
    generators: result.generators,
    figures: result.figures,
    runs: result.runs,
    seconds: result.seconds,
    workers: o.workers,
    cpus: (await import('node:os')).availableParallelism(),
    createdAt: new Date().toISOString(),
  });
  o.log(`done in ${result.seconds.total} s (train ${result.seconds.train}, generate ${result.seconds.generate}, draw ${result.seconds.draw})`);
  return result;
}
