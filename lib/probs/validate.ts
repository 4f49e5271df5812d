/**
 * Input checks shared by every op and objective. Each error names the op, the argument and what was expected,
 * and for non-finite values the first bad position, so a bad batch never turns into a silent NaN.
 */
import * as tf from '@tensorflow/tfjs';
import { firstNonFiniteOf } from '../kernels';

export type NumericArray = Float32Array | Float64Array | Int32Array | number[];

/** Throws unless `shape` equals `expected` (use -1 for "any size" in one dimension). */
export function assertShape(op: string, arg: string, shape: readonly number[], expected: readonly number[]): void {
  const ok = shape.length === expected.length && shape.every((d, i) => expected[i] === -1 || d === expected[i]);
  if (!ok) {
    const want = expected.map((d) => (d === -1 ? '*' : String(d))).join(', ');
    throw new Error(`${op}: ${arg} must have shape [${want}], got [${shape.join(', ')}]`);
  }
}

/** Throws with the first non-finite value's position in a row-major array of the given row width. */
export function assertFiniteArray(op: string, arg: string, values: ArrayLike<number>, rowWidth = 0): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      const where = rowWidth > 0 ? `row ${Math.floor(i / rowWidth)}, column ${i % rowWidth}` : `index ${i}`;
      throw new Error(`${op}: ${arg} must be finite, found ${v} at ${where}`);
    }
  }
}

/** Checks a tensor for NaN or +-Infinity; the error gives the first bad [row, column]. */
export function assertFiniteTensor(op: string, arg: string, t: tf.Tensor): void {
  // float32: one scan of the data where it lies (lib/kernels: SIMD on the tfjs wasm heap, no tensor made);
  // other dtypes: one backend pass (IsFinite + All). The element-wise scan only runs to locate a bad value.
  const allFinite = t.dtype === 'float32' ? firstNonFiniteOf(t) < 0 : tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0]);
  if (allFinite) return;
  const width = t.rank >= 2 ? t.shape[t.rank - 1] : 0;
  assertFiniteArray(op, arg, t.dataSync() as Float32Array, width);
}

/** Token ids must be integers in [0, vocab). */
export function assertIdsInRange(op: string, arg: string, ids: ArrayLike<number>, vocab: number, rowWidth = 0): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      const where = rowWidth > 0 ? `row ${Math.floor(i / rowWidth)}, column ${i % rowWidth}` : `index ${i}`;
      throw new Error(`${op}: ${arg} must hold token ids in [0, ${vocab}), found ${id} at ${where}`);
    }
  }
}

/** A number in [lo, hi]. */
export function assertInRange(op: string, arg: string, value: number, lo: number, hi: number): void {
  if (typeof value !== 'number' || Number.isNaN(value) || value < lo || value > hi) {
    throw new Error(`${op}: ${arg} must be a number in [${lo}, ${hi}], got ${value}`);
  }
}

/** An integer in [lo, hi]. */
export function assertIntInRange(op: string, arg: string, value: number, lo: number, hi: number): void {
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw new Error(`${op}: ${arg} must be an integer in [${lo}, ${hi}], got ${value}`);
  }
}

/** Masks are explicit 0/1 arrays; anything else is an error (padding is never inferred). */
export function assertMask(op: string, arg: string, mask: ArrayLike<number>, length: number): void {
  if (mask.length !== length) throw new Error(`${op}: ${arg} must have length ${length}, got ${mask.length}`);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && mask[i] !== 1) throw new Error(`${op}: ${arg} must hold only 0 or 1, found ${mask[i]} at index ${i}`);
  }
}

export function assertLength(op: string, arg: string, values: ArrayLike<number>, length: number): void {
  if (values.length !== length) throw new Error(`${op}: ${arg} must have length ${length}, got ${values.length}`);
}
