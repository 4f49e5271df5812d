/**
 * Self-checks of every registered objective, run by `opdlab objectives` and `npm run reproduce`:
 *   - fused vs composed: the fused kernel's logit gradient against the composed tfjs-autodiff reference;
 *   - finite differences: for objectives whose gradient is the gradient of the loss value ('loss'), a central
 *     difference along random directions against <grad, d>;
 *   - finiteness and leaks: no NaN in loss or gradient, tf.memory().numTensors unchanged.
 * Policy-gradient surrogates ('surrogate') are checked against PyTorch fixtures in the test suite instead.
 */
import * as tf from '@tensorflow/tfjs';
import { listObjectives, objectiveLossAndGrad } from './registry';
import { disposeBatch, mulberry32, syntheticBatch } from './synthetic';
import type { Objective } from './types';

export interface ObjectiveCheck {
  name: string;
  summary: string;
  source: string;
  fusedKernel: boolean;
  gradientOf: 'loss' | 'surrogate';
  /** max |grad_fused - grad_composed| over the batch; null without a fused kernel. */
  fusedVsComposed: number | null;
  /** max relative error of directional finite differences; null for surrogates. */
  finiteDifference: number | null;
  leaked: number;
  ok: boolean;
  error?: string;
}

const VOCAB = 12;
const TOKENS = 16;

/** Options that make an objective's defaults fit the small check batch (top-K no wider than the vocabulary). */
function fitOptions(objective: Objective<any>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const d = objective.defaults as Record<string, unknown>;
  if (typeof d.topK === 'number' && d.topK > 0) o.topK = Math.min(d.topK as number, 5);
  return o;
}

export function checkObjective(objective: Objective<any>, seed = 7): ObjectiveCheck {
  const gradientOf = objective.gradientOf ?? 'surrogate';
  const result: ObjectiveCheck = {
    name: objective.name,
    summary: objective.summary,
    source: objective.source,
    fusedKernel: objective.fused,
    gradientOf,
    fusedVsComposed: null,
    finiteDifference: null,
    leaked: 0,
    ok: false,
  };
  const batch = syntheticBatch({ tokens: TOKENS, vocab: VOCAB, sequences: 4, seed, scale: 1.5 });
  const before = tf.memory().numTensors;
  try {
    const options = fitOptions(objective);
    const main = objectiveLossAndGrad(objective.name, batch, options, 'token-mean');
    const g = main.grad_NV.dataSync();
    main.grad_NV.dispose();
    if (!Number.isFinite(main.loss) || g.some((x) => !Number.isFinite(x))) throw new Error('non-finite loss or gradient');
    if (objective.fused) {
      const ref = objectiveLossAndGrad(objective.name, batch, { ...options, fused: false }, 'token-mean');
      const gr = ref.grad_NV.dataSync();
      ref.grad_NV.dispose();
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - gr[i]));
      result.fusedVsComposed = worst;
    }
    if (gradientOf === 'loss') {
      const r = mulberry32(seed + 1);
      const z0 = batch.studentLogits_NV.dataSync();
      let worst = 0;
      const h = 1e-2;
      for (let trial = 0; trial < 3; trial++) {
        const d = new Float32Array(z0.length);
        for (let i = 0; i < d.length; i++) d[i] = r() * 2 - 1;
        let analytic = 0;
        for (let i = 0; i < d.length; i++) analytic += g[i] * d[i];
        const at = (sign: number) => {
          const z = tf.tensor2d(z0.map((x, i) => x + sign * h * d[i]), batch.studentLogits_NV.shape);
          try {
            return objectiveLossAndGrad(objective.name, { ...batch, studentLogits_NV: z }, options, 'token-mean');
          } finally {
            z.dispose();
          }
        };
        const plus = at(1);
        const minus = at(-1);
        plus.grad_NV.dispose();
        minus.grad_NV.dispose();
        const numeric = (plus.loss - minus.loss) / (2 * h);
        worst = Math.max(worst, Math.abs(numeric - analytic) / Math.max(1e-3, Math.abs(analytic)));
      }
      result.finiteDifference = worst;
    }
    result.leaked = tf.memory().numTensors - before;
    result.ok =
      result.leaked === 0 &&
      (result.fusedVsComposed === null || result.fusedVsComposed < 1e-4) &&
      (result.finiteDifference === null || result.finiteDifference < 2e-2);
  } catch (e) {
    result.error = (e as Error).message;
    result.ok = false;
  } finally {
    disposeBatch(batch);
  }
  return result;
}

export function checkAllObjectives(): ObjectiveCheck[] {
  return listObjectives().map((o) => checkObjective(o));
}
