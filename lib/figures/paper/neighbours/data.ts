/**
 * The neighbours' data file (claims C14-C18; papers 002-004): data/figures/neighbours.json, its generator and reader.
 *
 *   runs        per arm of specs/neighbours.json, per seed (0, 1, 2 in full mode): the training curves of its run
 *               folder (lib/figures/paper/generateDynamics.ts readRunCurves: grad/param_norm, entropy/student_mean,
 *               eval pass@1/4/8 on the math task; step 0 = the warm-up student). Arms: opd, opdplus-fkl(-stopgrad),
 *               opdplus-jsd(-stopgrad), topk-rkl-topp0.9, opd-topp0.9, scope, exopd-lambda1.25, opd-props.
 *   simulation  per seed, measurements on the same seed's warm-up student (simulate.ts header): the exact OPD+
 *               gradient comparison (C14), the token- vs sequence-level gradient variance and bias (C15), G-OPD's
 *               reward under three reference models (C17), PROPS' sampling error (C18).
 * Numbers are rounded to 5 significant digits. One command makes it (trains what is missing, then measures):
 *
 *   npm run build && node dist/bin/opdlab.js reproduce --only neighbours
 */
import { figureDataPath, readFigureData, writeFigureData } from '../../data';
import { paperCells, requirePaperRuns, type ReproduceMode } from '../../sweeps';
import { codeVersion } from '../../../train/runKey';
import { collectMethodCurves, type MethodCurves } from '../generateDynamics';
import { GOPD_LAMBDA, GOPD_REFS, measureSeed, OPDPLUS_DIVERGENCES, OPDPLUS_WEIGHTS, PROPS_ARMS, REWARD_EDGES, TEACHER_BASE_ERROR_FACTOR, type SeedMeasurements } from './simulate';

export const NEIGHBOURS_SPEC = 'neighbours';
export const NEIGHBOURS_COMMAND = 'npm run build && node dist/bin/opdlab.js reproduce --only neighbours';

/** Measurement sizes per mode (full: about 30 s for 3 seeds on one core). */
export const SIMULATE_SIZES: Readonly<Record<ReproduceMode, { batches: number; varianceBatches: number; propsBatches: number }>> = {
  full: { batches: 3, varianceBatches: 32, propsBatches: 16 },
  quick: { batches: 1, varianceBatches: 3, propsBatches: 2 },
};

export interface NeighboursData {
  source: Record<string, unknown>;
  /** Arm name (the spec's method axis value) -> curves, one series per seed. */
  runs: Record<string, MethodCurves>;
  simulation: {
    lambda: number;
    refs: readonly string[];
    rewardEdges: number[];
    divergences: readonly string[];
    weights: readonly string[];
    propsArms: readonly string[];
    seeds: SeedMeasurements[];
  };
}

function round(x: unknown): unknown {
  if (typeof x === 'number') return Number.isFinite(x) ? Number(x.toPrecision(5)) : x;
  if (Array.isArray(x)) return x.map(round);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, round(v)]));
  return x;
}

export interface NeighboursGenerateOptions {
  runsRoot: string;
  mode: ReproduceMode;
  /** Output file; null = do not write. Default data/figures/neighbours.json. */
  out: string | null;
  log: (line: string) => void;
}

/** Collects the runs of specs/neighbours.json and measures the warm-up students (file header). */
export async function generateNeighboursData(options: Partial<NeighboursGenerateOptions> & { runsRoot: string }): Promise<NeighboursData> {
  const o: NeighboursGenerateOptions = { mode: 'full', out: figureDataPath('neighbours.json'), log: () => undefined, ...options };
  const t0 = Date.now();
  const runs = collectMethodCurves(requirePaperRuns(NEIGHBOURS_SPEC, o.mode, o.runsRoot), 'method', 'generateNeighboursData');
  o.log(`read ${Object.keys(runs).length} arms x ${Object.values(runs)[0]?.seeds.length ?? 0} seeds`);
  // the warm-up students the arms start from: the opd cell of each seed (its warm-up config, quick or full)
  const opdCells = paperCells(NEIGHBOURS_SPEC, o.mode).filter((c) => c.values.method === 'opd');
  const sizes = SIMULATE_SIZES[o.mode];
  const seeds: SeedMeasurements[] = [];
  for (const c of opdCells) {
    const config = { ...c.config, out: { ...c.config.out, root: o.runsRoot } };
    seeds.push(await measureSeed(config, { ...sizes, log: o.log }));
  }
  const first = opdCells[0].config;
  const data: NeighboursData = {
    source: {
      command: NEIGHBOURS_COMMAND.replace('reproduce', o.mode === 'quick' ? 'reproduce --quick' : 'reproduce'),
      mode: o.mode,
      generator: 'lib/figures/paper/neighbours/data.ts (simulation: neighbours/simulate.ts)',
      spec: 'specs/neighbours.json',
      code: codeVersion(),
      task: first.task.name,
      warmup: { steps: first.warmup.steps, batch: first.warmup.batch },
      distill: { steps: first.distill.steps, prompts: first.distill.prompts, rollouts: first.distill.rollouts, lr: first.distill.lr, temperature: first.distill.temperature },
      eval: first.eval,
      simulation: { ...sizes, gopdLambda: GOPD_LAMBDA, teacherBaseErrorFactor: TEACHER_BASE_ERROR_FACTOR, opdplusClamp: 'stopGrad and unbiased: none; unbiasedClamp6: log u clamped to +-6 (opdplus default)', varianceReduction: "sum over tokens / B sequences", props: 'lib/sim/props.ts DEFAULT_PROPS (strength 1, clip 0.3), scope context (training default) and batch' },
      seconds: Math.round((Date.now() - t0) / 100) / 10,
      createdAt: new Date().toISOString(),
    },
    runs: round(runs) as Record<string, MethodCurves>,
    simulation: {
      lambda: GOPD_LAMBDA,
      refs: GOPD_REFS,
      rewardEdges: REWARD_EDGES,
      divergences: OPDPLUS_DIVERGENCES,
      weights: OPDPLUS_WEIGHTS,
      propsArms: PROPS_ARMS,
      seeds: round(seeds) as SeedMeasurements[],
    },
  };
  checkNeighboursData('generateNeighboursData', data);
  if (o.out) {
    writeFigureData(o.out, data);
    o.log(`wrote ${o.out}`);
  }
  return data;
}

function checkNeighboursData(where: string, d: NeighboursData): void {
  if (!d.runs || typeof d.runs !== 'object' || Object.keys(d.runs).length === 0) throw new Error(`${where}: 'runs' is missing or empty`);
  for (const [arm, c] of Object.entries(d.runs)) {
    const S = c.seeds?.length ?? 0;
    if (S === 0) throw new Error(`${where}: runs.${arm}.seeds is empty`);
    for (const k of ['pass1', 'pass4', 'pass8'] as const) {
      if (!Array.isArray(c[k]) || c[k].length !== S || c[k].some((x) => x.length !== c.evalStep.length)) throw new Error(`${where}: runs.${arm}.${k} must hold one series per seed (${S}) of ${c.evalStep.length} evaluations`);
    }
    for (const k of ['gradNorm', 'entropy'] as const) {
      if (!Array.isArray(c[k]) || c[k].length !== S || c[k].some((x) => x.length !== c.trainStep.length)) throw new Error(`${where}: runs.${arm}.${k} must hold one series per seed (${S}) of ${c.trainStep.length} steps`);
    }
  }
  const sim = d.simulation;
  if (!sim || !Array.isArray(sim.seeds) || sim.seeds.length === 0) throw new Error(`${where}: 'simulation.seeds' is missing or empty`);
  for (const s of sim.seeds) {
    for (const div of sim.divergences) for (const w of sim.weights) if (!s.opdplus?.[div]?.[w as never]) throw new Error(`${where}: simulation seed ${s.seed} lacks opdplus.${div}.${w}`);
    if (!s.variance || typeof s.variance.varTok !== 'number') throw new Error(`${where}: simulation seed ${s.seed} lacks variance`);
    const hist = (s.gopd?.histogram ?? {}) as Record<string, number[] | undefined>;
    for (const r of sim.refs) if (!Array.isArray(hist[r]) || hist[r]!.length !== sim.rewardEdges.length - 1) throw new Error(`${where}: simulation seed ${s.seed} lacks the gopd histogram of ${r}`);
    for (const a of sim.propsArms) if (!s.props?.[a as never]) throw new Error(`${where}: simulation seed ${s.seed} lacks props.${a}`);
  }
}

/** data/figures/neighbours.json (or `path`), checked; a missing or bad file names the command that makes it. */
export function readNeighboursData(path: string = figureDataPath('neighbours.json')): NeighboursData {
  const d = readFigureData<NeighboursData>(path, NEIGHBOURS_COMMAND);
  try {
    checkNeighboursData(`figure data ${path}`, d);
  } catch (e) {
    throw new Error(`${(e as Error).message}; regenerate it with: ${NEIGHBOURS_COMMAND}`);
  }
  return d;
}
