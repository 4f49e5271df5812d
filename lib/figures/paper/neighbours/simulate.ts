/**
 * The simulation half of the neighbours' data (claims C14, C15, C17, C18): measurements on each seed's warm-up
 * student (the student every training arm of specs/neighbours.json starts from), no training.
 *
 *   opdplus   (C14) `batches` rollout batches (the run's prompts x rollouts, as training steps 1.. draw them);
 *             per divergence f in reverseKL, forwardKL, jsd: the true gradient of sum_n D_f,n and the EXACT expected
 *             gradient (over the token at every position, prefixes fixed) of the sampled-token surrogate with the
 *             stop-gradient weight -f(u) and with OPD+'s weight -f(u) + u f'(u) (clampLogU 0: the exact comparison;
 *             and at opdplus's training default 6), lib/analysis/estimators.ts fDivergenceGradients. Compared in
 *             logit space ([N, V], all masked-in positions) and in parameter space (J^T g through the student):
 *             cosine and relative error ||E g_sur - g|| / ||g||, per seed the mean over batches.
 *   variance  (C15) one fixed prompt set (the run's prompts x rollouts), `varianceBatches` independent rollout
 *             batches from the same student; per batch the parameter gradient of OPD with gamma 0 (token-level) and
 *             gamma 1 (sequence-level return-to-go, an unbiased estimator of the sequence-level reverse-KL gradient)
 *             with reduction 'sum' / B (sum over each sequence's tokens, mean over sequences). Per seed: total
 *             variance tr Cov of each, their means' norms, and the squared bias of gamma 0 against E[gamma 1]
 *             (paired, noise-corrected: lib/analysis/estimators.ts pairedBias). The exact sequence-level gradient
 *             would need every response (256^15 per prompt): the large-sample mean of gamma 1 stands in for it.
 *   gopd      (C17) on the opdplus batches, per token: G-OPD's reward r = lambda (log pT - log pRef) and advantage
 *             A = lambda log pT + (1 - lambda) log pRef - log pS at lambda = 1.25 for three references: the warm-up
 *             student (G-OPD's default: the student's initial model; here also the current student, so
 *             A = lambda (log pT - log pS)), the "teacher's base" (reward correction; simulated as the same teacher
 *             with 5 times its digit error rate: a teacher before the training that sharpened it), and the untrained
 *             student (seeded initial weights). Histogram of r per reference (all seeds), per seed: mean and std of
 *             r, mean A, share of tokens whose advantage sign differs from the default reference's.
 *   props     (C18) the variance prompt set, `propsBatches` batches per behaviour (on-policy, PROPS with scope
 *             'context' = the training arm's default, PROPS with scope 'batch') with common sampling seeds; PROPS'
 *             sampling error KL(pi_D || pi_theta) per context, over shared contexts and of the marginal
 *             (lib/analysis/samplingKl.ts), and the shared-context total variation (lib/sim/props.ts samplingError).
 */
import * as tf from '@tensorflow/tfjs';
import { cosine, EstimatorMoments, fDivergenceGradients, pairedBias, relativeError } from '../../../analysis/estimators';
import { samplingKl } from '../../../analysis/samplingKl';
import { computeObjective } from '../../../objectives/registry';
import type { DistillBatch } from '../../../objectives/types';
import type { FDivergenceName } from '../../../probs/fdivergences';
import { tokenLogprobs } from '../../../probs/gather';
import { responseTokens, type SeqBatch } from '../../../sim/batch';
import { DEFAULT_PROPS, samplingError, type PropsOptions } from '../../../sim/props';
import { deriveSeed } from '../../../sim/rng';
import { sample } from '../../../sim/sampler';
import { Student } from '../../../sim/student';
import { createTask } from '../../../sim/tasks';
import { DEFAULT_MATH } from '../../../sim/tasks/math';
import type { Prompt, Task } from '../../../sim/tasks/types';
import { scoreResponses } from '../../../sim/teacher';
import { deriveConfig, type Config } from '../../../train/config';
import { createAdam } from '../../../train/optimizer';
import { buildProbeSet, prepareBatch, type StepContext } from '../../../train/step';
import { warmupStudent } from '../../../train/warmup';
import { TeacherTopTracker } from '../../../analysis/tracker';

export const OPDPLUS_DIVERGENCES: readonly FDivergenceName[] = ['reverseKL', 'forwardKL', 'jsd'];
/** stopGrad and unbiased without a clamp (the exact comparison), unbiased at opdplus's default clamp 6. */
export const OPDPLUS_WEIGHTS = ['stopGrad', 'unbiased', 'unbiasedClamp6'] as const;
export type OpdplusWeightLabel = (typeof OPDPLUS_WEIGHTS)[number];
export const GOPD_LAMBDA = 1.25;
export const GOPD_REFS = ['warmupStudent', 'teacherBase', 'untrainedStudent'] as const;
export type GopdRef = (typeof GOPD_REFS)[number];
/** The teacher's base in the reward-correction comparison: the same teacher with this many times its digit error. */
export const TEACHER_BASE_ERROR_FACTOR = 5;
export const PROPS_ARMS = ['onPolicy', 'propsContext', 'propsBatch'] as const;
export type PropsArm = (typeof PROPS_ARMS)[number];
/** Reward histogram bins: [-12, 12] in steps of 0.5 (values outside land in the end bins). */
export const REWARD_EDGES = Array.from({ length: 49 }, (_, i) => -12 + i * 0.5);

export interface SimulateOptions {
  /** Rollout batches of the exact-gradient (C14) and reward (C17) measurements per seed. */
  batches: number;
  /** Rollout batches of the variance measurement (C15) per seed. */
  varianceBatches: number;
  /** Batches per behaviour of the sampling-error measurement (C18) per seed. */
  propsBatches: number;
  log: (line: string) => void;
}

export interface OpdplusPoint {
  cosLogit: number;
  relLogit: number;
  cosParam: number;
  relParam: number;
}

/** Per seed results (one value per measured quantity). */
export interface SeedMeasurements {
  seed: number;
  warmupKey: string;
  tokens: number;
  opdplus: Record<string, Record<OpdplusWeightLabel, OpdplusPoint>>;
  variance: { batches: number; params: number; varTok: number; varSeq: number; meanNormSqTok: number; meanNormSqSeq: number; biasSqTok: number; biasNoiseSq: number; cosMeans: number };
  gopd: { histogram: Record<GopdRef, number[]>; rewardMean: Record<GopdRef, number>; rewardStd: Record<GopdRef, number>; advMean: Record<GopdRef, number>; advNegShare: Record<GopdRef, number>; signFlip: Record<GopdRef, number>; tokens: number };
  props: Record<PropsArm, { kl: number; klShared: number; klMarginal: number; tvShared: number; sharedTokenShare: number }>;
}

/** Parameter gradient J^T g of sum(z * g) through the student's response logits, flattened (float64). */
function parameterGradient(student: Student, batch: SeqBatch, g_NV: Float64Array): Float64Array {
  return flatGrads(student, () => tf.sum(tf.mul(student.responseLogits(batch), tf.tensor2d(Float32Array.from(g_NV), [g_NV.length / student.config.vocabSize, student.config.vocabSize]))) as tf.Scalar);
}

function flatGrads(student: Student, f: () => tf.Scalar): Float64Array {
  const { value, grads } = tf.variableGrads(f, student.variables);
  try {
    const out = new Float64Array(student.parameterCount());
    let o = 0;
    for (const v of student.variables) {
      const d = grads[v.name].dataSync();
      for (let i = 0; i < d.length; i++) out[o + i] = d[i];
      o += d.length;
    }
    return out;
  } finally {
    tf.dispose([value, ...Object.values(grads)]);
  }
}

function maskedRows(x: Float64Array, mask: ArrayLike<number>, V: number): Float64Array {
  const keep: number[] = [];
  for (let n = 0; n < mask.length; n++) if (mask[n] !== 0) for (let v = 0; v < V; v++) keep.push(x[n * V + v]);
  return Float64Array.from(keep);
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function histogramCounts(values: number[], edges: readonly number[]): number[] {
  const counts = new Array(edges.length - 1).fill(0);
  const w = edges[1] - edges[0];
  for (const x of values) {
    const i = Math.min(edges.length - 2, Math.max(0, Math.floor((x - edges[0]) / w)));
    counts[i]++;
  }
  return counts;
}

function rolloutPrompts(task: Task<Prompt>, config: Config): Prompt[] {
  const prompts = task.samplePrompts('train', config.distill.prompts, deriveSeed(config.seed, 'neighbours', 'fixed-prompts'));
  return prompts.flatMap((p) => Array.from({ length: config.distill.rollouts }, () => p));
}

function measureOpdplusAndGopd(config: Config, task: Task<Prompt>, student: Student, untrained: Student, o: SimulateOptions): Pick<SeedMeasurements, 'opdplus' | 'gopd' | 'tokens'> {
  const V = student.config.vocabSize;
  const base = createTask(config.task.name, { ...(config.task.options as object), digitError: TEACHER_BASE_ERROR_FACTOR * ((config.task.options as { digitError?: number }).digitError ?? DEFAULT_MATH.digitError) } as never);
  const optimizer = createAdam(config.distill.lr); // StepContext needs one; prepareBatch does not step it
  const probe = buildProbeSet(task, 1, config.seed);
  const acc: Record<string, Record<OpdplusWeightLabel, OpdplusPoint[]>> = {};
  const rewards: Record<GopdRef, number[]> = { warmupStudent: [], teacherBase: [], untrainedStudent: [] };
  const advs: Record<GopdRef, number[]> = { warmupStudent: [], teacherBase: [], untrainedStudent: [] };
  let tokens = 0;
  try {
    for (let s = 1; s <= o.batches; s++) {
      const ctx: StepContext = { config: { ...config, distill: { ...config.distill, method: 'opd' } }, phase: 'distill', task, student, optimizer, ref: null, probe, tracker: new TeacherTopTracker() };
      const prepared = prepareBatch(ctx, s);
      try {
        const { batch } = prepared;
        const { tokens_N, mask_N } = prepared.fields;
        const N = tokens_N.length;
        const zData = tf.tidy(() => student.responseLogits(batch).dataSync() as Float32Array);
        const t = { data: prepared.teacherLogp_NV, rows: N, cols: V };
        const z = { data: zData, rows: N, cols: V };
        for (const div of OPDPLUS_DIVERGENCES) {
          const exact = fDivergenceGradients(z, t, mask_N, { divergence: div, clampLogU: 0 });
          const clamped = fDivergenceGradients(z, t, mask_N, { divergence: div, clampLogU: 6 });
          const sur: Record<OpdplusWeightLabel, Float64Array> = { stopGrad: exact.expected.stopGrad, unbiased: exact.expected.unbiased, unbiasedClamp6: clamped.expected.unbiased };
          const trueLogit = maskedRows(exact.true_NV, mask_N, V);
          const trueParam = parameterGradient(student, batch, exact.true_NV);
          acc[div] ??= { stopGrad: [], unbiased: [], unbiasedClamp6: [] };
          for (const w of OPDPLUS_WEIGHTS) {
            const p = parameterGradient(student, batch, sur[w]);
            const l = maskedRows(sur[w], mask_N, V);
            acc[div][w].push({ cosLogit: cosine(l, trueLogit), relLogit: relativeError(l, trueLogit), cosParam: cosine(p, trueParam), relParam: relativeError(p, trueParam) });
          }
        }
        // G-OPD rewards: log pRef(y_t) under each reference, on the masked-in tokens
        const lpS = tf.tidy(() => tokenLogprobs(tf.logSoftmax(tf.tensor2d(zData, [N, V])) as tf.Tensor2D, tokens_N).dataSync() as Float32Array);
        const lpU = tf.tidy(() => tokenLogprobs(tf.logSoftmax(untrained.responseLogits(batch)) as tf.Tensor2D, tokens_N).dataSync() as Float32Array);
        const rows = task.samplePrompts('train', config.distill.prompts, deriveSeed(config.seed, 'distill', 'prompts', s)).flatMap((p) => Array.from({ length: config.distill.rollouts }, () => p));
        const check = scoreResponses(task, rows, tokens_N, batch.R);
        if (check.some((x, i) => x !== prepared.teacherLogp_NV[i])) throw new Error('neighbours: the reconstructed prompts of a batch do not match prepareBatch (lib/train/step.ts changed its prompt seeds?)');
        const baseLogp = scoreResponses(base, rows, tokens_N, batch.R);
        for (let n = 0; n < N; n++) {
          if (mask_N[n] === 0) continue;
          tokens++;
          const lpT = prepared.teacherLogp_NV[n * V + tokens_N[n]];
          const ref: Record<GopdRef, number> = { warmupStudent: lpS[n], teacherBase: baseLogp[n * V + tokens_N[n]], untrainedStudent: lpU[n] };
          for (const r of GOPD_REFS) {
            rewards[r].push(GOPD_LAMBDA * (lpT - ref[r]));
            advs[r].push(GOPD_LAMBDA * lpT + (1 - GOPD_LAMBDA) * ref[r] - lpS[n]);
          }
        }
      } finally {
        prepared.dispose();
      }
    }
  } finally {
    optimizer.dispose();
  }
  const opdplus: SeedMeasurements['opdplus'] = {};
  for (const [div, byW] of Object.entries(acc)) {
    opdplus[div] = {} as Record<OpdplusWeightLabel, OpdplusPoint>;
    for (const w of OPDPLUS_WEIGHTS) {
      const pts = byW[w];
      opdplus[div][w] = { cosLogit: mean(pts.map((p) => p.cosLogit)), relLogit: mean(pts.map((p) => p.relLogit)), cosParam: mean(pts.map((p) => p.cosParam)), relParam: mean(pts.map((p) => p.relParam)) };
    }
  }
  const gopd = { histogram: {}, rewardMean: {}, rewardStd: {}, advMean: {}, advNegShare: {}, signFlip: {}, tokens } as SeedMeasurements['gopd'];
  for (const r of GOPD_REFS) {
    const x = rewards[r];
    const m = mean(x);
    gopd.histogram[r] = histogramCounts(x, REWARD_EDGES);
    gopd.rewardMean[r] = m;
    gopd.rewardStd[r] = Math.sqrt(x.reduce((a, v) => a + (v - m) ** 2, 0) / Math.max(1, x.length - 1));
    gopd.advMean[r] = mean(advs[r]);
    gopd.advNegShare[r] = advs[r].filter((a) => a < 0).length / advs[r].length;
    gopd.signFlip[r] = advs[r].filter((a, i) => Math.sign(a) !== Math.sign(advs.warmupStudent[i])).length / advs[r].length;
  }
  return { opdplus, gopd, tokens };
}

function measureVariance(config: Config, task: Task<Prompt>, student: Student, o: SimulateOptions): SeedMeasurements['variance'] {
  const rows = rolloutPrompts(task, config);
  const P = student.parameterCount();
  const tok = new EstimatorMoments(P);
  const seq = new EstimatorMoments(P);
  const diff = new EstimatorMoments(P);
  const d = config.distill;
  for (let i = 0; i < o.varianceBatches; i++) {
    const r = sample(student, rows.map((p) => p.tokens), { maxNewTokens: task.maxResponseLength, temperature: d.temperature, topP: d.topP, topK: d.topK, seed: deriveSeed(config.seed, 'neighbours', 'variance', i) });
    const tokens_N = responseTokens(r);
    const N = r.B * r.R;
    const V = student.config.vocabSize;
    const teacherLogp = scoreResponses(task, rows, tokens_N, r.R);
    const seqIds_N = Int32Array.from({ length: N }, (_, n) => Math.floor(n / r.R));
    const t = tf.tensor2d(teacherLogp, [N, V]);
    let grads: Float64Array[];
    try {
      grads = [0, 1].map((gamma) =>
        flatGrads(student, () => {
          const batch: DistillBatch = { studentLogits_NV: student.responseLogits(r), tokens_N, mask_N: r.mask_BR, seqIds_N, teacher: { logits_NV: t } };
          return tf.div(computeObjective('opd', batch, { gamma }, 'sum').loss, r.B) as tf.Scalar;
        }),
      );
    } finally {
      t.dispose();
    }
    tok.add(grads[0]);
    seq.add(grads[1]);
    diff.add(grads[0].map((x, j) => x - grads[1][j]));
  }
  const b = pairedBias(diff);
  return {
    batches: o.varianceBatches,
    params: P,
    varTok: tok.totalVariance(),
    varSeq: seq.totalVariance(),
    meanNormSqTok: tok.meanNormSq(),
    meanNormSqSeq: seq.meanNormSq(),
    biasSqTok: b.biasSq,
    biasNoiseSq: b.noiseSq,
    cosMeans: cosine(tok.mean(), seq.mean()),
  };
}

function measureProps(config: Config, task: Task<Prompt>, student: Student, o: SimulateOptions): SeedMeasurements['props'] {
  const rows = rolloutPrompts(task, config);
  const d = config.distill;
  const V = student.config.vocabSize;
  const behaviours: Record<PropsArm, Partial<PropsOptions> | null> = { onPolicy: null, propsContext: { ...DEFAULT_PROPS }, propsBatch: { ...DEFAULT_PROPS, scope: 'batch' } };
  const out = {} as SeedMeasurements['props'];
  for (const arm of PROPS_ARMS) {
    const kl: number[] = [], shared: number[] = [], marginal: number[] = [], tv: number[] = [], share: number[] = [];
    for (let i = 0; i < o.propsBatches; i++) {
      const r = sample(student, rows.map((p) => p.tokens), { maxNewTokens: task.maxResponseLength, temperature: d.temperature, topP: d.topP, topK: d.topK, seed: deriveSeed(config.seed, 'neighbours', 'props', i), props: behaviours[arm], recordTargetProbs: true });
      const input = { vocabSize: V, tokens_N: responseTokens(r), targetProbs_NV: r.targetProbs_BRV!, contextIds_N: r.contextIds_BR, mask_N: r.mask_BR };
      const s = samplingKl(input);
      kl.push(s.context);
      shared.push(s.shared);
      marginal.push(s.marginal);
      share.push(s.sharedTokens / s.tokens);
      tv.push(samplingError(input).tvSharedContext);
    }
    out[arm] = { kl: mean(kl), klShared: mean(shared), klMarginal: mean(marginal), tvShared: mean(tv), sharedTokenShare: mean(share) };
  }
  return out;
}

/** All measurements for one seed, from the warm-up student of `config` (cached under config.out.root/_warmup). */
export async function measureSeed(config: Config, o: SimulateOptions): Promise<SeedMeasurements> {
  const derived = deriveConfig(config);
  const task = createTask(config.task.name, config.task.options as never);
  const warm = await warmupStudent(config, derived);
  o.log(`seed ${config.seed}: warm-up student ${warm.key.slice(0, 12)} (${warm.cached ? 'cached' : `trained, ${warm.seconds.toFixed(1)} s`})`);
  const untrained = new Student(derived.studentConfig);
  try {
    const t0 = performance.now();
    const a = measureOpdplusAndGopd(config, task, warm.student, untrained, o);
    const t1 = performance.now();
    const variance = measureVariance(config, task, warm.student, o);
    const t2 = performance.now();
    const props = measureProps(config, task, warm.student, o);
    const t3 = performance.now();
    o.log(`seed ${config.seed}: exact gradients + rewards ${((t1 - t0) / 1000).toFixed(1)} s, variance ${((t2 - t1) / 1000).toFixed(1)} s, sampling error ${((t3 - t2) / 1000).toFixed(1)} s`);
    return { seed: config.seed, warmupKey: warm.key, ...a, variance, props };
  } finally {
    warm.student.dispose();
    untrained.dispose();
  }
}
