/**
 * Every method's update moves the student the way its objective says, on one fixed batch built exactly as the
 * trainer builds it (prepareBatch / applyUpdate in lib/train/step.ts):
 *
 *   all methods:  the first update is a descent step of the objective: <dL/dz(theta_0), z(theta_1) - z(theta_0)> < 0
 *                 (to first order Delta z = J Delta theta and Adam's first step is -lr g / (|g| + eps), so the inner
 *                 product is -lr sum_i g_i^2 / (|g_i| + eps) < 0; a sign error or a misaligned batch breaks it);
 *   and, where the objective's gradient is the gradient of a known function of the student, that function falls
 *   over several updates on the same batch:
 *     gkd, topk-rkl, seqkd   the loss itself (gradientOf 'loss')
 *     opd, gopd              mean_t 1/2 A_t^2, A_t = log pT(y_t) [lambda-mixed with log pRef] - log pS(y_t):
 *                            -A_t grad log pS(y_t) = grad (1/2 A_t^2) with A detached
 *     opdplus (forwardKL)    mean_t F(log u_t), F' = w = u (the unbiased weight of forward KL), clamp |log u| <= 6
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { TeacherTopTracker } from '../../lib/analysis';
import { computeObjective, listObjectives, objectiveLossAndGrad } from '../../lib/objectives';
import { Student, createTask, packBatch, responseNll, sampleTeacher } from '../../lib/sim';
import { expectAllclose } from '../helpers';
import { applyUpdate, buildProbeSet, createAdam, deriveConfig, prepareBatch, resolveConfig, type PreparedBatch, type StepContext } from '../../lib/train';

const task = createTask('math', { digits: 1 });

/** A briefly SFT'd tiny student (so rollouts mix right and wrong answers), shared as weights. */
const warmWeights = (() => {
  const s = new Student({ layers: 1, width: 16, heads: 2, context: 16, vocabSize: task.vocab.size, seed: 1 });
  const opt = createAdam(1e-2);
  for (let i = 0; i < 30; i++) {
    const prompts = task.samplePrompts('train', 8, 100 + i);
    const batch = packBatch(prompts.map((p) => p.tokens), sampleTeacher(task, prompts, 200 + i));
    opt.minimize(() => responseNll(s, batch), false, s.variables);
  }
  opt.dispose();
  const w = s.getWeights();
  s.dispose();
  return w;
})();

function context(method: string, lr: number): StepContext {
  const config = resolveConfig({
    seed: 5,
    task: { name: 'math', options: { digits: 1 } },
    student: { layers: 1, width: 16, heads: 2, context: 16 },
    distill: { method, prompts: 4, rollouts: 4, lr },
  });
  const sc = deriveConfig(config).studentConfig;
  return {
    config,
    phase: 'distill',
    task,
    student: new Student(sc, warmWeights),
    optimizer: createAdam(lr),
    ref: method === 'gopd' ? new Student(sc, warmWeights) : null,
    probe: buildProbeSet(task, 1, 5),
    tracker: new TeacherTopTracker(),
  };
}

function dispose(ctx: StepContext, prepared: PreparedBatch): void {
  prepared.dispose();
  ctx.student.dispose();
  ctx.ref?.dispose();
  ctx.optimizer.dispose();
}

function logits(ctx: StepContext, prepared: PreparedBatch): Float32Array {
  const z = ctx.student.responseLogits(prepared.batch);
  const out = z.dataSync() as Float32Array;
  z.dispose();
  return out;
}

/** Masked means of a per-token function of log pS(y_t) and log pT(y_t) (and the reference). */
function maskedMean(ctx: StepContext, prepared: PreparedBatch, f: (logpS: number, logpT: number, ref: number) => number): number {
  const z = logits(ctx, prepared);
  const { tokens_N, mask_N, refLogprobs_N } = prepared.fields;
  const V = task.vocab.size;
  let s = 0;
  let n = 0;
  for (let i = 0; i < tokens_N.length; i++) {
    if (!mask_N[i]) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, z[i * V + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[i * V + v] - max);
    const logpS = z[i * V + tokens_N[i]] - max - Math.log(sum);
    s += f(logpS, prepared.teacherLogp_NV[i * V + tokens_N[i]], refLogprobs_N ? refLogprobs_N[i] : NaN);
    n++;
  }
  return s / n;
}

const METHODS = ['opd', 'aopd', 'aopd-zero', 'aopd-acc', 'aopd-random', 'gkd', 'seqkd', 'gopd', 'opdplus', 'topk-rkl', 'scope'];

describe('every registered method', () => {
  it('is covered here', () => {
    expect(listObjectives().map((o) => o.name).sort()).toEqual([...METHODS].sort());
  });

  for (const method of METHODS) {
    it(`${method}: the first update is a descent step of its objective on the batch`, () => {
      const ctx = context(method, 1e-4);
      const prepared = prepareBatch(ctx, 1);
      const { options, reduction } = { options: ctx.config.distill.objective, reduction: ctx.config.distill.reduction };
      const z0 = logits(ctx, prepared);
      const N = z0.length / task.vocab.size;
      const zt = tf.tensor2d(z0, [N, task.vocab.size]);
      const { grad_NV } = objectiveLossAndGrad(method, { ...prepared.fields, studentLogits_NV: zt }, options, reduction);
      const g = grad_NV.dataSync();
      tf.dispose([zt, grad_NV]);
      const update = applyUpdate(ctx, prepared);
      expectAllclose(update.logits_NV, z0, { rtol: 0, atol: 1e-5, label: "the loss saw theta_0's logits" });
      const z1 = logits(ctx, prepared);
      let inner = 0;
      let gNorm = 0;
      for (let i = 0; i < g.length; i++) {
        inner += g[i] * (z1[i] - z0[i]);
        gNorm += g[i] * g[i];
      }
      expect(gNorm, 'the objective has a gradient on this batch').toBeGreaterThan(0);
      expect(inner).toBeLessThan(0);
      expect(Number.isFinite(update.metrics['loss/objective'])).toBe(true);
      expect(update.metrics['grad/param_norm']).toBeGreaterThan(0);
      // after the first update (which creates Adam's moment variables) an update leaks no tensor
      const before = tf.memory().numTensors;
      applyUpdate(ctx, prepared);
      expect(tf.memory().numTensors, 'applyUpdate leaks no tensor').toBe(before);
      dispose(ctx, prepared);
    });
  }

  const F_OPDPLUS = (x: number) => (x > 6 ? Math.exp(6) * (1 + x - 6) : x < -6 ? Math.exp(-6) * (1 + x + 6) : Math.exp(x));
  const implied: Record<string, (ctx: StepContext, p: PreparedBatch) => number> = {
    gkd: (ctx, p) => objectiveValue(ctx, p),
    'topk-rkl': (ctx, p) => objectiveValue(ctx, p),
    seqkd: (ctx, p) => objectiveValue(ctx, p),
    opd: (ctx, p) => maskedMean(ctx, p, (s, t) => 0.5 * (t - s) ** 2),
    gopd: (ctx, p) => maskedMean(ctx, p, (s, t, ref) => 0.5 * (1.25 * t - 0.25 * ref - s) ** 2),
    opdplus: (ctx, p) => maskedMean(ctx, p, (s, t) => F_OPDPLUS(t - s)),
  };
  for (const [method, value] of Object.entries(implied)) {
    it(`${method}: the function its gradient descends falls over 10 updates on one batch`, () => {
      const ctx = context(method, 3e-3);
      const prepared = prepareBatch(ctx, 1);
      const first = value(ctx, prepared);
      for (let i = 0; i < 10; i++) applyUpdate(ctx, prepared);
      const last = value(ctx, prepared);
      expect(last).toBeLessThan(first * 0.97);
      dispose(ctx, prepared);
    });
  }
});

function objectiveValue(ctx: StepContext, prepared: PreparedBatch): number {
  const z = ctx.student.responseLogits(prepared.batch);
  const out = computeObjective(ctx.config.distill.method, { ...prepared.fields, studentLogits_NV: z }, ctx.config.distill.objective, ctx.config.distill.reduction);
  const v = out.loss.dataSync()[0];
  tf.dispose([z, out.loss]);
  return v;
}
