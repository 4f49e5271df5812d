/**
 * One distillation step and its analysis metrics.
 *
 *   prompts   x_1..x_P ~ train split (seeded by phase and step); rows = each prompt G times, B = P G
 *   rollouts  y_b ~ student (temperature / top-p / top-k, or the PROPS behaviour policy)   [seqkd: y_b ~ teacher]
 *   reward    r_b = 1[verify(x_b, y_b)]                                                   (aopd-acc, scope, logs)
 *   teacher   log pT(. | x_b, y_b,<t) for every response position                          [B R, V]
 *             teacherForm 'full': the rows as logits; 'topk': its top-K ids and log-probs + log pT(y_t)
 *   ref       log pRef(y_t) from the frozen warm-up student (gopd only)
 *   update    L = objective(studentLogits [B R, V], ...) with the configured reduction; one Adam step on
 *             every student parameter
 * DistillBatch fields: tokens_N = responses (N = B R, row b R + t), mask_N = the sampler's mask, seqIds_N = b,
 * reward_S = r_b, group_S = the prompt index (SCOPE groups rollouts of one prompt), samplerLogprobs_N = the
 * sampler's log q(y_t) (absent for seqkd: the teacher sampled).
 *
 * Metrics (docs/metrics.md, section "Training runs"), measured on the step's batch with the student's logits
 * before the update and the exact teacher (full log-probs, whatever teacherForm the objective sees):
 *   every step             loss/objective, objective/<key> (the objective's own metrics), grad/param_norm,
 *                          rollout/*, time/*, adv/ (advantageStats), entropy/ (entropyStats), intervention/
 *                          (interventionStats at the method's eta or 0)                         about 10 ms
 *   every analysis.every   topk/ (topKDiagnostics at analysis.topK), grad/ (gradientStats: two more objective
 *                          passes), blackhole/<method>/ (blackHole with the method's own update), blackhole/probe_*
 *                          (TeacherTopTracker on a fixed probe set, after the update)                about 60 ms
 */
import * as tf from '@tensorflow/tfjs';
import { advantageStats } from '../analysis/advantages';
import { blackHole } from '../analysis/blackhole';
import { entropyStats } from '../analysis/entropyStats';
import { gradientStats } from '../analysis/gradients';
import { interventionStats } from '../analysis/intervention';
import { topKDiagnostics } from '../analysis/topkDiagnostics';
import { summariseProbeRows, type TeacherTopTracker } from '../analysis/tracker';
import { computeObjective } from '../objectives/registry';
import type { DistillBatch, Teacher } from '../objectives/types';
import { tokenLogprobs } from '../probs/gather';
import { topKRows } from '../probs/topk';
import { packBatch, responseOf, responseTokens, type SeqBatch } from '../sim/batch';
import { deriveSeed } from '../sim/rng';
import { sample, type Rollouts } from '../sim/sampler';
import type { Student } from '../sim/student';
import type { Prompt, Task } from '../sim/tasks/types';
import { sampleTeacher, scoreResponses } from '../sim/teacher';
import type { Config } from './config';
import { adamStep } from './optimizer';

export type Phase = 'distill' | 'continual';

/** A fixed set of teacher-written prefixes on held-out prompts (the black-hole probe set). */
export interface ProbeSet {
  batch: SeqBatch;
  /** Row indices (b R + t) of the masked-in positions. */
  rows: Int32Array;
  /** [rows, V] teacher log-probs at those positions. */
  teacherLogp: Float32Array;
}

export function buildProbeSet(task: Task<Prompt>, count: number, seed: number): ProbeSet {
  const prompts = task.samplePrompts('test', count, deriveSeed(seed, 'probe', 'prompts'));
  const ys = sampleTeacher(task, prompts, deriveSeed(seed, 'probe', 'teacher'));
  const batch = packBatch(prompts.map((p) => p.tokens), ys);
  const V = task.vocab.size;
  const all = scoreResponses(task, prompts, responseTokens(batch), batch.R);
  const rows = Int32Array.from(Array.from(batch.mask_BR.keys()).filter((n) => batch.mask_BR[n] > 0));
  const teacherLogp = new Float32Array(rows.length * V);
  rows.forEach((n, i) => teacherLogp.set(all.subarray(n * V, (n + 1) * V), i * V));
  return { batch, rows, teacherLogp };
}

/** blackhole/probe_* for the student now. */
export function probeMetrics(student: Student, probe: ProbeSet, tracker: TeacherTopTracker, step: number): Record<string, number> {
  const V = student.config.vocabSize;
  const z = tf.tidy(() => student.responseLogits(probe.batch));
  const all = z.dataSync() as Float32Array;
  z.dispose();
  const rows = new Float32Array(probe.rows.length * V);
  probe.rows.forEach((n, i) => rows.set(all.subarray(n * V, (n + 1) * V), i * V));
  const m = { rows: probe.rows.length, cols: V };
  return summariseProbeRows(tracker.record(step, { data: rows, ...m }, { data: probe.teacherLogp, ...m }));
}

export interface StepContext {
  config: Config;
  phase: Phase;
  task: Task<Prompt>;
  student: Student;
  optimizer: tf.AdamOptimizer;
  /** The frozen warm-up student (gopd's reference model), or null. */
  ref: Student | null;
  probe: ProbeSet;
  tracker: TeacherTopTracker;
}

export interface StepResult {
  metrics: Record<string, number>;
  /** Response tokens in the batch (masked in). */
  tokens: number;
}

function teacherOf(form: Config['distill']['teacherForm'], K: number, logp_NV: Float32Array, tokens_N: Int32Array, V: number): { teacher: Teacher; dispose: () => void } {
  const N = tokens_N.length;
  if (form === 'full') {
    const logits_NV = tf.tensor2d(logp_NV, [N, V]);
    return { teacher: { logits_NV }, dispose: () => logits_NV.dispose() };
  }
  const top = topKRows(logp_NV, N, V, K);
  const sampledLogprobs_N = Float32Array.from(tokens_N, (y, n) => logp_NV[n * V + y]);
  return { teacher: { k: K, topkIds_NK: top.ids_NK, topkLogprobs_NK: top.values_NK, sampledLogprobs_N }, dispose: () => undefined };
}

/** A step's batch, ready for the objective: rollouts, rewards, the teacher's rows and the DistillBatch fields. */
export interface PreparedBatch {
  batch: SeqBatch;
  /** [B] the verifier's reward of each row. */
  reward_S: Float32Array;
  /** [B R, V] exact teacher log-probs at every response position. */
  teacherLogp_NV: Float32Array;
  /** Every DistillBatch field but the student's logits (the teacher in the configured form). */
  fields: Omit<DistillBatch, 'studentLogits_NV'>;
  /** Frees the teacher tensor (teacherForm 'full'). */
  dispose: () => void;
  /** Seconds spent sampling, and scoring with the teacher. */
  sampleSeconds: number;
  scoreSeconds: number;
}

/** Prompts, rollouts (or teacher samples for seqkd), rewards and teacher rows for global step `step`. */
export function prepareBatch(ctx: StepContext, step: number): PreparedBatch {
  const { config, phase, task, student } = ctx;
  const d = config.distill;
  const V = student.config.vocabSize;
  const t0 = performance.now();
  const prompts = task.samplePrompts('train', d.prompts, deriveSeed(config.seed, phase, 'prompts', step));
  const rows = prompts.flatMap((p) => Array.from({ length: d.rollouts }, () => p));
  let batch: SeqBatch;
  let samplerLogprobs_N: Float32Array | undefined;
  if (d.method === 'seqkd') {
    const ys = sampleTeacher(task, rows, deriveSeed(config.seed, phase, 'teacher', step));
    batch = packBatch(rows.map((p) => p.tokens), ys);
  } else {
    const r = sample(student, rows.map((p) => p.tokens), {
      maxNewTokens: task.maxResponseLength,
      temperature: d.temperature,
      topP: d.topP,
      topK: d.topK,
      seed: deriveSeed(config.seed, phase, 'sample', step),
      props: d.behaviour === 'props' ? d.props : null,
    });
    batch = r;
    samplerLogprobs_N = r.samplerLogprobs_BR;
  }
  const t1 = performance.now();
  const { B, R } = batch;
  const N = B * R;
  const tokens_N = responseTokens(batch);
  const reward_S = Float32Array.from(rows, (p, b) => (task.verify(p, responseOf(batch, b)) ? 1 : 0));
  const teacherLogp_NV = scoreResponses(task, rows, tokens_N, R);
  const seqIds_N = Int32Array.from({ length: N }, (_, n) => Math.floor(n / R));
  const group_S = Int32Array.from({ length: B }, (_, b) => Math.floor(b / d.rollouts));
  let refLogprobs_N: Float32Array | undefined;
  if (d.method === 'gopd') {
    if (!ctx.ref) throw new Error('prepareBatch: gopd needs the reference model (ctx.ref, the frozen warm-up student)');
    const ref = ctx.ref;
    refLogprobs_N = tf.tidy(() => tokenLogprobs(tf.logSoftmax(ref.responseLogits(batch)) as tf.Tensor2D, tokens_N).dataSync() as Float32Array);
  }
  const teacher = teacherOf(d.teacherForm, d.teacherTopK, teacherLogp_NV, tokens_N, V);
  return {
    batch,
    reward_S,
    teacherLogp_NV,
    fields: { tokens_N, mask_N: batch.mask_BR, teacher: teacher.teacher, samplerLogprobs_N, refLogprobs_N, seqIds_N, reward_S, group_S },
    dispose: teacher.dispose,
    sampleSeconds: (t1 - t0) / 1000,
    scoreSeconds: (performance.now() - t1) / 1000,
  };
}

export interface UpdateResult {
  /** loss/objective, objective/<key>, grad/param_norm. */
  metrics: Record<string, number>;
  /** [B R, V] the student's logits before the update (row-major copy). */
  logits_NV: Float32Array;
}

/** The objective on the prepared batch and one Adam step on every student parameter. */
export function applyUpdate(ctx: StepContext, prepared: PreparedBatch): UpdateResult {
  const { student, optimizer } = ctx;
  const { method, objective: options, reduction } = ctx.config.distill;
  let objectiveMetrics: Record<string, number> = {};
  let logits_NV = new Float32Array(0);
  const metrics: Record<string, number> = {};
  const { value, grads } = tf.variableGrads(() => {
    const z = student.responseLogits(prepared.batch);
    logits_NV = (z.dataSync() as Float32Array).slice();
    const out = computeObjective(method, { ...prepared.fields, studentLogits_NV: z }, options, reduction);
    objectiveMetrics = out.metrics;
    return out.loss;
  }, student.variables);
  const list = student.variables.map((v) => grads[v.name]);
  try {
    metrics['loss/objective'] = value.dataSync()[0];
    const norm = tf.tidy(() => tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g))))));
    metrics['grad/param_norm'] = norm.dataSync()[0];
    norm.dispose();
    adamStep(optimizer, student.variables, list);
  } finally {
    tf.dispose([value, ...list]);
  }
  for (const [k, v] of Object.entries(objectiveMetrics)) metrics[`objective/${k}`] = v;
  return { metrics, logits_NV };
}

/** One training step at global step `step` (file header); `heavy`: also the every-analysis.every-steps metrics. */
export function distillStep(ctx: StepContext, step: number, heavy: boolean): StepResult {
  const t0 = performance.now();
  const prepared = prepareBatch(ctx, step);
  const { batch, reward_S } = prepared;
  const { B, R } = batch;
  const N = B * R;
  const V = ctx.student.config.vocabSize;
  const metrics: Record<string, number> = {};
  let tUpdate = 0;
  try {
    const t1 = performance.now();
    const update = applyUpdate(ctx, prepared);
    tUpdate = (performance.now() - t1) / 1000;
    Object.assign(metrics, update.metrics);
    let tokens = 0;
    let length = 0;
    for (let b = 0; b < B; b++) length += batch.responseLength_B[b];
    for (let n = 0; n < N; n++) tokens += batch.mask_BR[n];
    metrics['rollout/correct_frac'] = reward_S.reduce((a, x) => a + x, 0) / B;
    metrics['rollout/length_mean'] = length / B;
    metrics['rollout/tokens'] = tokens;
    if ('finished_B' in batch) metrics['rollout/finished_frac'] = (batch as Rollouts).finished_B.reduce((a, x) => a + x, 0) / B;
    const t2 = performance.now();
    Object.assign(metrics, analysisMetrics(ctx, step, heavy, prepared.fields, update.logits_NV, prepared.teacherLogp_NV, N, V));
    metrics['time/sample_s'] = prepared.sampleSeconds;
    metrics['time/score_s'] = prepared.scoreSeconds;
    metrics['time/update_s'] = tUpdate;
    metrics['time/analysis_s'] = (performance.now() - t2) / 1000;
    metrics['time/step_s'] = (performance.now() - t0) / 1000;
    return { metrics, tokens };
  } finally {
    prepared.dispose();
  }
}

function analysisMetrics(
  ctx: StepContext,
  step: number,
  heavy: boolean,
  training: Omit<DistillBatch, 'studentLogits_NV'>,
  logits_NV: Float32Array,
  teacherLogp_NV: Float32Array,
  N: number,
  V: number,
): Record<string, number> {
  const { method, objective: options, reduction } = ctx.config.distill;
  const out: Record<string, number> = {};
  tf.tidy(() => {
    const z = tf.tensor2d(logits_NV, [N, V]);
    const t = tf.tensor2d(teacherLogp_NV, [N, V]);
    const logpS = tokenLogprobs(tf.logSoftmax(z) as tf.Tensor2D, training.tokens_N).dataSync();
    const logpT = Float32Array.from(training.tokens_N, (y, n) => teacherLogp_NV[n * V + y]);
    const adv_N = Float64Array.from(logpT, (x, n) => x - logpS[n]);
    Object.assign(out, advantageStats({ advantages_N: adv_N, mask_N: training.mask_N }).metrics);
    Object.assign(out, entropyStats({ studentLogits_NV: z, teacherLogits_NV: t, mask_N: training.mask_N }).metrics);
    const eta = typeof options.eta === 'number' ? options.eta : 0;
    const zeroEps = typeof options.epsZero === 'number' && options.epsZero > 0 ? options.epsZero : 0.05;
    Object.assign(out, interventionStats({ teacherLogprobs_N: logpT, studentLogprobs_N: logpS, mask_N: training.mask_N }, { eta, zeroEps }).metrics);
    if (!heavy) return;
    const exact: DistillBatch = { ...training, studentLogits_NV: z, teacher: { logits_NV: t } };
    Object.assign(out, topKDiagnostics(exact, ctx.config.analysis.topK).metrics);
    // gradients as the objective sees the batch (its teacher form), at the pre-update logits
    Object.assign(out, gradientStats(method, { ...training, studentLogits_NV: z }, options, reduction).metrics);
    Object.assign(out, blackHole(exact, { objectives: [{ name: method, options }] }).metrics);
  });
  if (heavy) Object.assign(out, probeMetrics(ctx.student, ctx.probe, ctx.tracker, step));
  return out;
}
