/**
 * fusedLoss plumbing (lib/objectives/fused.ts): the gradient tensor written by the kernel is handed to the
 * backward pass without a copy; dy != 1 scales it; two fused losses in one tape add up; a loss taken under a tape
 * but never differentiated releases its gradient at the next call; nothing leaks. The composed references run no
 * kernel code beyond validation's finiteness scan.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { rowKernels, setRowKernels, type RowKernels } from '../../lib/kernels';
import '../../lib/objectives';
import { computeObjective, objectiveLossAndGrad } from '../../lib/objectives/registry';
import type { DistillBatch } from '../../lib/objectives/types';
import { expectAllclose, randInts, randn } from '../helpers';

const N = 6;
const V = 13;

function batchWith(z: tf.Tensor2D, teacher: tf.Tensor2D): DistillBatch {
  return {
    studentLogits_NV: z,
    tokens_N: randInts(N, V, 3),
    mask_N: Float32Array.from([1, 1, 0, 1, 1, 1]),
    teacher: { logits_NV: teacher },
  };
}

describe('fusedLoss', () => {
  const z = tf.tensor2d(randn(N * V, 1, 2), [N, V]);
  const teacher = tf.tensor2d(randn(N * V, 2, 2), [N, V]);
  const batch = batchWith(z, teacher);
  const objectives: [string, Record<string, unknown>][] = [['opd', {}], ['aopd', { topK: 4 }], ['gkd', { beta: 0.5 }], ['topk-rkl', { topK: 4 }]];

  for (const [name, options] of objectives) {
    it(`${name}: dy != 1 scales the gradient; two fused losses in one tape add up`, () => {
      const ref = objectiveLossAndGrad(name, batch, options);
      const g1 = ref.grad_NV.dataSync().slice();
      ref.grad_NV.dispose();
      const loss = (x: tf.Tensor) => computeObjective(name, { ...batch, studentLogits_NV: x as tf.Tensor2D }, options).loss;
      const scaled = tf.grad((x: tf.Tensor) => tf.mul(-2.5, loss(x)))(z);
      expectAllclose(scaled.dataSync(), Array.from(g1, (g) => -2.5 * g), { rtol: 1e-6, atol: 1e-9 });
      const summed = tf.grad((x: tf.Tensor) => tf.add(loss(x), loss(x)))(z);
      expectAllclose(summed.dataSync(), Array.from(g1, (g) => 2 * g), { rtol: 1e-6, atol: 1e-9 });
      tf.dispose([scaled, summed]);
    });
  }

  it('leaks nothing with or without a tape, and releases a gradient no backward pass claimed', () => {
    const before = tf.memory().numTensors;
    for (const [name, options] of objectives) {
      computeObjective(name, batch, options).loss.dispose();
      const r = objectiveLossAndGrad(name, batch, options);
      r.grad_NV.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    // a fused loss computed under a tape but not part of what is differentiated (a metric, say)
    const x = tf.variable(z);
    const { value, grads } = tf.variableGrads(() => {
      const metric = computeObjective('opd', { ...batch, studentLogits_NV: x as unknown as tf.Tensor2D }).loss;
      metric.dispose();
      return tf.sum(tf.square(x)) as tf.Scalar;
    }, [x]);
    tf.dispose([value, grads[x.name]]);
    expect(tf.memory().numTensors).toBe(before + 2); // the variable, and the unclaimed gradient kept for its backward
    computeObjective('opd', batch).loss.dispose(); // the next call: that tape is over, the gradient goes
    expect(tf.memory().numTensors).toBe(before + 1);
    x.dispose();
  });

  it('the composed references (fused = false) read a full teacher with tfjs ops: no kernel runs but validation\'s scan', () => {
    const real = rowKernels();
    const used: string[] = [];
    // validation's finiteness scan (firstNonFiniteOf) may use the kernels; every other method is recorded
    const allowed = new Set(['name', 'zeroCopy', 'inPlace', 'firstNonFinite', 'scanRows']);
    const spy = new Proxy(real, {
      get(target, key, receiver) {
        if (typeof key === 'string' && !allowed.has(key)) used.push(key);
        return Reflect.get(target, key, receiver);
      },
    }) as RowKernels;
    setRowKernels(spy);
    try {
      const more = [['topk-rkl', { topK: 4, tailSampling: true }], ['aopd', { topK: 4, supportNorm: 'tailBucket' }], ['gkd', { topK: 4, supportNorm: 'tailBucket', temperature: 0.7 }], ['gkd', { topK: 4, supportNorm: 'none' }]];
      for (const [name, options] of [...objectives, ...more] as [string, Record<string, unknown>][]) {
        used.length = 0;
        objectiveLossAndGrad(name, batch, { ...options, fused: false }).grad_NV.dispose();
        expect(used, `${name} composed`).toEqual([]);
        objectiveLossAndGrad(name, batch, options).grad_NV.dispose();
        expect(used.length, `${name} fused (the spy sees kernel calls)`).toBeGreaterThan(0);
      }
    } finally {
      setRowKernels(null);
    }
  });
});
