/**
 * Shared test helpers: allclose matchers, seeded random arrays, and the tensor-leak check.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import type { TeacherTopK } from '../lib/objectives/types';

/** Asserts |a - b| <= atol + rtol |b| elementwise, reporting the worst index. */
export function expectAllclose(actual: ArrayLike<number>, expected: ArrayLike<number>, opts: { rtol?: number; atol?: number; label?: string } = {}): void {
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-6;
  expect(actual.length, `${opts.label ?? 'allclose'}: length`).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const b = expected[i];
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (!(Number.isNaN(a) && Number.isNaN(b))) throw new Error(`${opts.label ?? 'allclose'}: NaN mismatch at ${i}: ${a} vs ${b}`);
      continue;
    }
    if (a === b) continue;
    const excess = Math.abs(a - b) - (atol + rtol * Math.abs(b));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(`${opts.label ?? 'allclose'}: mismatch at index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Mulberry32: a small seeded PRNG for reproducible test inputs. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller) scaled by `scale`. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function randInts(n: number, hi: number, seed: number): Int32Array {
  const r = rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(r() * hi);
  return out;
}

/**
 * Tensor-leak check: runs `fn` once to warm up (kernels, caches), then again and asserts that
 * tf.memory().numTensors is unchanged. `fn` must dispose whatever tensors it returns.
 */
export function expectNoLeak(fn: () => void): void {
  fn();
  const before = tf.memory().numTensors;
  fn();
  expect(tf.memory().numTensors, 'tensor leak: numTensors changed after warm-up').toBe(before);
}

/** A top-K teacher dump carrying only log pT(y_t) (the top-K arrays are a dummy k = 1), for sampled-token objectives. */
export function sampledTeacher(logpT_N: ArrayLike<number>): TeacherTopK {
  const n = logpT_N.length;
  return { k: 1, topkIds_NK: new Int32Array(n), topkLogprobs_NK: new Float32Array(n), sampledLogprobs_N: Float32Array.from(logpT_N) };
}
