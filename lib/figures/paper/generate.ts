/**
 * The generator of data/figures/c1c2.json (claims C1 and C2): runs the simulation once per seed (seeds 0, 1, 2 in
 * full mode: lib/figures/sweeps.ts modeSeeds, so OPDLAB_PAPER_SEEDS / `reproduce --seeds` apply); figures only read
 * the file. Per seed, independently (the config's seed sets the warm-up, the rollouts and the probe set):
 *
 *   1. the warm-up student of the default config at that seed (SFT on teacher samples; cached under <cacheRoot>/_warmup/)
 *   2. `batches` batches of student rollouts (the default config's prompts x rollouts, temperature 1), as training
 *      step 1..batches would draw them (lib/train/step.ts prepareBatch), scored by the exact teacher
 *   3. per masked-in token: A = log pT(y) - log pS(y)                                  -> advantages  (C1)
 *      at every A < 0 position: blackHole() with OPD and forward KL (GKD beta = 0)     -> blackHole   (C2)
 *   4. from the same warm-up student, `trackerSteps` training steps of OPD and of forward KL (the default config
 *      otherwise), with the teacher's top token tracked on the fixed probe set every `trackEvery` steps
 *                                                                                      -> tracker     (C2)
 * Every number is rounded to 6 significant digits to keep the committed file small.
 */
import * as tf from '@tensorflow/tfjs';
import { blackHole } from '../../analysis/blackhole';
import { TeacherTopTracker } from '../../analysis/tracker';
import type { DistillBatch } from '../../objectives/types';
import { tokenLogprobs } from '../../probs/gather';
import { Student } from '../../sim/student';
import { createTask } from '../../sim/tasks';
import { DEFAULT_CONFIG, deriveConfig, resolveConfig, type Config } from '../../train/config';
import { codeVersion } from '../../train/runKey';
import { createAdam } from '../../train/optimizer';
import { buildProbeSet, distillStep, prepareBatch, probeMetrics, type ProbeSet, type StepContext } from '../../train/step';
import { warmupStudent } from '../../train/warmup';
import type { BlackHolePoints, C1C2Data, C1C2Seed, TrackerSeries } from '../data';
import { figureDataPath, writeFigureData } from '../data';

export interface C1C2GenerateOptions {
  /** Config seeds, each measured on its own warm-up student. Default [0, 1, 2] (the paper specs' seeds). */
  seeds: number[];
  /** Rollout batches measured for the advantages and the black hole. Default 16. */
  batches: number;
  /** Training steps of each tracked method (0 = no tracker). Default 100 (the default config's distill.steps). */
  trackerSteps: number;
  /** Probe the teacher's top token every this many steps. Default 5. */
  trackEvery: number;
  /** SFT steps of the warm-up student. Default: the default config's (DEFAULT_CONFIG.warmup.steps). */
  warmupSteps: number;
  /** Folder holding the warm-up cache. Default 'runs'. */
  cacheRoot: string;
  /** Output file; null = do not write. Default data/figures/c1c2.json. */
  out: string | null;
  log: (line: string) => void;
}

export const DEFAULT_C1C2_GENERATE: Readonly<Omit<C1C2GenerateOptions, 'out' | 'log'>> = { seeds: [0, 1, 2], batches: 16, trackerSteps: 100, trackEvery: 5, warmupSteps: DEFAULT_CONFIG.warmup.steps, cacheRoot: 'runs' };

const r6 = (x: number): number => (Number.isFinite(x) ? Number(x.toPrecision(6)) : x);

const TRACKED: { label: string; method: string; objective: Record<string, unknown> }[] = [
  { label: 'opd', method: 'opd', objective: {} },
  { label: 'forwardKL', method: 'gkd', objective: { beta: 0 } },
];

function measure(config: Config, student: Student, probe: ProbeSet, batches: number): { advantages: number[]; bh: BlackHolePoints } {
  const task = createTask(config.task.name, config.task.options as never);
  const optimizer = createAdam(config.distill.lr); // prepareBatch does not step it; StepContext needs one
  const tracker = new TeacherTopTracker();
  const advantages: number[] = [];
  const bh: BlackHolePoints = { advantage: [], pS: [], pT: [], rank: [], opd: [], forwardKL: [], opdRatio: [], forwardKLRatio: [] };
  try {
    for (let s = 1; s <= batches; s++) {
      const ctx: StepContext = { config, phase: 'distill', task, student, optimizer, ref: null, probe, tracker };
      const prepared = prepareBatch(ctx, s);
      try {
        const V = student.config.vocabSize;
        const { tokens_N, mask_N } = prepared.fields;
        const N = tokens_N.length;
        tf.tidy(() => {
          const z = student.responseLogits(prepared.batch);
          const t = tf.tensor2d(prepared.teacherLogp_NV, [N, V]);
          const logpS = tokenLogprobs(tf.logSoftmax(z) as tf.Tensor2D, tokens_N).dataSync();
          for (let n = 0; n < N; n++) if (mask_N[n] !== 0) advantages.push(r6(prepared.teacherLogp_NV[n * V + tokens_N[n]] - logpS[n]));
          const exact: DistillBatch = { ...prepared.fields, studentLogits_NV: z, teacher: { logits_NV: t } };
          const m = blackHole(exact, { objectives: [{ name: 'opd' }, { name: 'gkd', label: 'forwardKL', options: { beta: 0 } }] });
          const [o, f] = m.objectives;
          for (let p = 0; p < m.position_P.length; p++) {
            bh.advantage.push(r6(m.advantage_P[p]));
            bh.pS.push(r6(m.pSVStar_P[p]));
            bh.pT.push(r6(m.pTVStar_P[p]));
            bh.rank.push(m.rankVStar_P[p]);
            bh.opd.push(r6(o.updateVStar_P[p]));
            bh.forwardKL.push(r6(f.updateVStar_P[p]));
            bh.opdRatio.push(r6(o.promotionRatio_P[p]));
            bh.forwardKLRatio.push(r6(f.promotionRatio_P[p]));
          }
        });
      } finally {
        prepared.dispose();
      }
    }
  } finally {
    optimizer.dispose();
  }
  return { advantages, bh };
}

function track(input: { seed: number; cacheRoot: string }, weights: Map<string, Float32Array>, probe: ProbeSet, steps: number, every: number, t: (typeof TRACKED)[number]): TrackerSeries {
  const config = resolveConfig({ seed: input.seed, distill: { method: t.method, objective: t.objective }, out: { root: input.cacheRoot } });
  const derived = deriveConfig(config);
  const task = createTask(config.task.name, config.task.options as never);
  const student = new Student(derived.studentConfig, weights);
  const optimizer = createAdam(config.distill.lr);
  const tracker = new TeacherTopTracker();
  const series: TrackerSeries = { step: [], pSTop: [], rankTop: [], fracTop1: [] };
  const record = (s: number) => {
    const m = probeMetrics(student, probe, tracker, s);
    series.step.push(s);
    series.pSTop.push(r6(m['blackhole/probe_ps_top_mean']));
    series.rankTop.push(r6(m['blackhole/probe_rank_top_mean']));
    series.fracTop1.push(r6(m['blackhole/probe_frac_top1']));
  };
  try {
    record(0);
    series.pTTopMean = r6(tracker.rows.reduce((a, r) => a + r.pTTop, 0) / tracker.rows.length);
    for (let s = 1; s <= steps; s++) {
      distillStep({ config, phase: 'distill', task, student, optimizer, ref: null, probe, tracker }, s, false);
      if (s % every === 0 || s === steps) record(s);
    }
  } finally {
    student.dispose();
    optimizer.dispose();
  }
  return series;
}

/** The measurements of one seed (steps 1-4 of the file header). */
async function measureSeed(o: C1C2GenerateOptions, seed: number): Promise<{ entry: C1C2Seed; config: Config }> {
  const config = resolveConfig({ seed, warmup: { steps: o.warmupSteps }, distill: { method: 'opd' }, out: { root: o.cacheRoot } });
  const derived = deriveConfig(config);
  const task = createTask(config.task.name, config.task.options as never);
  const warm = await warmupStudent(config, derived);
  o.log(`seed ${seed}: warm-up student ${warm.key} (${warm.cached ? 'cached' : `trained, ${warm.seconds.toFixed(1)} s`}, final SFT loss ${warm.finalLoss.toFixed(4)})`);
  try {
    const probe = buildProbeSet(task, config.analysis.probes, config.seed);
    const { advantages, bh } = measure(config, warm.student, probe, o.batches);
    o.log(`seed ${seed}: measured ${advantages.length} tokens, ${bh.pS.length} black-hole positions (A < 0)`);
    let tracker: Record<string, TrackerSeries> | undefined;
    if (o.trackerSteps > 0) {
      tracker = {};
      const weights = warm.student.getWeights();
      for (const t of TRACKED) {
        tracker[t.label] = track({ seed, cacheRoot: o.cacheRoot }, weights, probe, o.trackerSteps, o.trackEvery, t);
        o.log(`seed ${seed}: tracked ${t.label}: ${o.trackerSteps} steps`);
      }
    }
    const entry: C1C2Seed = {
      seed,
      warmup: { key: warm.key, steps: config.warmup.steps, batch: config.warmup.batch, finalLoss: r6(warm.finalLoss) },
      advantages,
      blackHole: bh,
      ...(tracker ? { tracker } : {}),
    };
    return { entry, config };
  } finally {
    warm.student.dispose();
  }
}

/** Runs the simulation once per seed and returns (and writes, unless out is null) the C1/C2 data (file header). */
export async function generateC1C2Data(options: Partial<C1C2GenerateOptions> = {}): Promise<C1C2Data> {
  const o: C1C2GenerateOptions = { ...DEFAULT_C1C2_GENERATE, out: figureDataPath('c1c2.json'), log: () => undefined, ...options };
  for (const k of ['batches', 'trackEvery'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`generateC1C2Data: ${k} must be an integer >= 1, got ${o[k]}`);
  if (!Number.isInteger(o.trackerSteps) || o.trackerSteps < 0) throw new Error(`generateC1C2Data: trackerSteps must be an integer >= 0, got ${o.trackerSteps}`);
  if (!Array.isArray(o.seeds) || o.seeds.length === 0 || o.seeds.some((s) => !Number.isInteger(s) || s < 0) || new Set(o.seeds).size !== o.seeds.length) {
    throw new Error(`generateC1C2Data: seeds must be a non-empty list of distinct integers >= 0, got ${JSON.stringify(o.seeds)}`);
  }
  const t0 = Date.now();
  const seeds: C1C2Seed[] = [];
  let config: Config | null = null;
  for (const seed of o.seeds) {
    const r = await measureSeed(o, seed);
    seeds.push(r.entry);
    config ??= r.config;
  }
  const c = config!;
  const data: C1C2Data = {
    source: {
      command: 'opdlab figures --generate c1c2',
      generator: 'lib/figures/paper/generate.ts',
      code: codeVersion(),
      seeds: o.seeds,
      warmup: { steps: c.warmup.steps, batch: c.warmup.batch },
      task: c.task,
      rollouts: { batches: o.batches, promptsPerBatch: c.distill.prompts, rolloutsPerPrompt: c.distill.rollouts, temperature: c.distill.temperature },
      tracker: { steps: o.trackerSteps, every: o.trackEvery, lr: c.distill.lr, probes: c.analysis.probes, methods: TRACKED },
      teacher: 'exact (full log-probs)',
      blackHoleStep: 1,
      seconds: r6((Date.now() - t0) / 1000),
      createdAt: new Date().toISOString(),
    },
    seeds,
  };
  if (o.out) {
    writeFigureData(o.out, data);
    o.log(`wrote ${o.out}`);
  }
  return data;
}
