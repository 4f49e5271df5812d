/**
 * Objectives are registered by name; `computeObjective` is the one way to run any of them.
 */
import * as tf from '@tensorflow/tfjs';
import { resolveOptions, validateBatch } from './batch';
import { REDUCTIONS, type DistillBatch, type Objective, type ObjectiveOutput, type Reduction } from './types';

const REGISTRY = new Map<string, Objective<any>>();

export function registerObjective<O extends object>(objective: Objective<O>): Objective<O> {
  if (REGISTRY.has(objective.name)) throw new Error(`registerObjective: '${objective.name}' is already registered`);
  REGISTRY.set(objective.name, objective as Objective<any>);
  return objective;
}

export function getObjective(name: string): Objective<any> {
  const o = REGISTRY.get(name);
  if (!o) throw new Error(`unknown objective '${name}'; registered: ${[...REGISTRY.keys()].join(', ')}`);
  return o;
}

export function listObjectives(): Objective<any>[] {
  return [...REGISTRY.values()];
}

/**
 * Validate the batch, merge options over the objective's defaults (unknown keys throw) and compute.
 * Runs inside tf.tidy: only the returned loss tensor survives.
 */
export function computeObjective(
  name: string,
  batch: DistillBatch,
  options: Record<string, unknown> = {},
  reduction: Reduction = 'token-mean',
): ObjectiveOutput {
  const objective = getObjective(name);
  if (!REDUCTIONS.includes(reduction)) throw new Error(`${name}: reduction must be one of ${REDUCTIONS.join(', ')}, got '${reduction}'`);
  const opts = resolveOptions(name, objective.defaults, options);
  validateBatch(name, batch, objective.needs, objective.teacherForms);
  let out: ObjectiveOutput | undefined;
  const loss = tf.tidy(() => {
    out = objective.compute(batch, opts, reduction);
    return out.loss;
  });
  return { ...out!, loss };
}

/** Loss value, d loss / d studentLogits_NV, per-token loss and metrics in one call (the gradient tensor is the caller's). */
export function objectiveLossAndGrad(
  name: string,
  batch: DistillBatch,
  options: Record<string, unknown> = {},
  reduction: Reduction = 'token-mean',
): { loss: number; grad_NV: tf.Tensor2D; perToken_N: Float32Array; metrics: Record<string, number> } {
  let perToken_N: Float32Array = new Float32Array(0);
  let metrics: Record<string, number> = {};
  const f = (z: tf.Tensor) => {
    const out = computeObjective(name, { ...batch, studentLogits_NV: z as tf.Tensor2D }, options, reduction);
    perToken_N = out.perToken_N;
    metrics = out.metrics;
    return out.loss;
  };
  const { value, grad } = tf.valueAndGrad(f)(batch.studentLogits_NV);
  const loss = value.dataSync()[0];
  value.dispose();
  return { loss, grad_NV: grad as tf.Tensor2D, perToken_N, metrics };
}
