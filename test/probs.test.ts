import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { gatherColumns, tokenLogprobs } from '../lib/probs/gather';
import { klStudentTeacher, klTeacherStudent, jsd } from '../lib/probs/divergences';
import { topKRows } from '../lib/probs/topk';
import { expectAllclose, expectNoLeak, randn } from './helpers';

describe('gatherColumns', () => {
  it('gathers and scatters gradients (wasm-safe)', () => {
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const g = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(gatherColumns(z as tf.Tensor2D, [2, 2, 0, 1], 2), tf.tensor2d([[1, 10], [100, 1000]]))));
    expectAllclose(gatherColumns(x, [2, 2, 0, 1], 2).dataSync(), [3, 3, 4, 5]);
    expectAllclose(g(x).dataSync(), [0, 0, 11, 100, 1000, 0]);
    expectAllclose(tokenLogprobs(x, [1, 2]).dataSync(), [2, 6]);
  });
  it('does not leak', () => {
    const x = tf.tensor2d(randn(12, 1), [3, 4]);
    expectNoLeak(() => tf.grad((z: tf.Tensor) => tf.sum(gatherColumns(z as tf.Tensor2D, [0, 1, 2, 3, 0, 1], 2)))(x).dispose());
  });
});

describe('jsd', () => {
  it('is exact at both ends', () => {
    const t = tf.logSoftmax(tf.tensor2d(randn(20, 2), [4, 5])) as tf.Tensor2D;
    const s = tf.logSoftmax(tf.tensor2d(randn(20, 3), [4, 5])) as tf.Tensor2D;
    expect(Array.from(jsd(t, s, 0).dataSync())).toEqual(Array.from(klTeacherStudent(t, s).dataSync()));
    expect(Array.from(jsd(t, s, 1).dataSync())).toEqual(Array.from(klStudentTeacher(t, s).dataSync()));
  });
});

describe('topKRows', () => {
  it('sorts descending and breaks ties to the lower id', () => {
    const r = topKRows([1, 3, 3, 2, 0, 5, 5, 5], 2, 4, 2);
    expect(Array.from(r.ids_NK)).toEqual([1, 2, 1, 2]);
    expect(Array.from(r.values_NK)).toEqual([3, 3, 5, 5]);
  });
});
