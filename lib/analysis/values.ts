/**
 * Plumbing shared by lib/analysis: reading per-token values (typed arrays, number[] or tensors) as float64,
 * keeping only masked-in tokens, and turning results into JSON.
 *
 * Conventions every analysis function follows (docs/metrics.md, "Bad input"):
 * - a mask is an explicit 0/1 array of the same length (never inferred from values);
 * - values at masked-out positions are never read, so padding may hold anything (-inf, NaN);
 * - a NaN or +-Infinity at a masked-in position is an error naming the op, the argument and the index;
 * - a top-level statistic over zero tokens (empty input, all masked) is an error; a sub-group (a position bin,
 *   a token class) with too few tokens gets NaN for the statistics it cannot define, and the result's `notes`
 *   say which and why, so a NaN is never silent.
 */
import * as tf from '@tensorflow/tfjs';
import { assertLength, assertMask } from '../probs/validate';

/** Per-token values: a typed array, a number[] or a rank-1 tensor. */
export type PerTokenValues = ArrayLike<number> | tf.Tensor;

/** A row-major matrix given as a tensor or as plain data with its shape. */
export type Matrix = tf.Tensor2D | { data: ArrayLike<number>; rows: number; cols: number };

/** The values of a rank-1 tensor or array-like, as a plain array-like (one synchronous read for tensors). */
export function readValues(op: string, arg: string, x: PerTokenValues): ArrayLike<number> {
  if (x instanceof tf.Tensor) {
    if (x.rank !== 1) throw new Error(`${op}: ${arg} must be a rank-1 tensor [N], got rank ${x.rank} [${x.shape}]`);
    return x.dataSync() as Float32Array;
  }
  if (x === null || x === undefined || typeof (x as ArrayLike<number>).length !== 'number') {
    throw new Error(`${op}: ${arg} must be a typed array, number[] or rank-1 tensor of per-token values`);
  }
  return x;
}

/** A matrix's data, rows and columns (one synchronous read for tensors). */
export function readMatrix(op: string, arg: string, m: Matrix): { data: ArrayLike<number>; rows: number; cols: number } {
  if (m instanceof tf.Tensor) {
    if (m.rank !== 2) throw new Error(`${op}: ${arg} must be a rank-2 tensor [N, V], got rank ${m.rank}`);
    return { data: m.dataSync() as Float32Array, rows: m.shape[0], cols: m.shape[1] };
  }
  if (!m || typeof m.rows !== 'number' || typeof m.cols !== 'number' || !m.data) {
    throw new Error(`${op}: ${arg} must be a rank-2 tensor or { data, rows, cols }`);
  }
  assertLength(op, `${arg}.data`, m.data, m.rows * m.cols);
  return m;
}

/** The mask as given, checked (0/1, right length), or all ones when absent. */
export function resolveMask(op: string, mask_N: ArrayLike<number> | undefined, n: number): ArrayLike<number> {
  if (mask_N === undefined) return new Float32Array(n).fill(1);
  assertMask(op, 'mask_N', mask_N, n);
  return mask_N;
}

/** Throws at the first masked-in non-finite value. */
export function assertFiniteMasked(op: string, arg: string, values: ArrayLike<number>, mask: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (mask[i] !== 0 && !Number.isFinite(values[i])) {
      throw new Error(`${op}: ${arg} must be finite at masked-in positions, found ${values[i]} at index ${i}`);
    }
  }
}

/** Number of masked-in tokens. */
export function maskCount(mask: ArrayLike<number>): number {
  let c = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) c++;
  return c;
}

/** Throws the standard "nothing left after masking" error. */
export function requireTokens(op: string, count: number, total: number): void {
  if (count === 0) {
    throw new Error(
      total === 0
        ? `${op}: no tokens (the input is empty); a statistic over zero tokens is undefined`
        : `${op}: all ${total} tokens are masked out (mask_N has no 1s); a statistic over zero tokens is undefined`,
    );
  }
}

/** The masked-in values as float64, after checking mask and finiteness. */
export function maskedValues(op: string, arg: string, x: PerTokenValues, mask_N?: ArrayLike<number>): Float64Array {
  const values = readValues(op, arg, x);
  const mask = resolveMask(op, mask_N, values.length);
  assertFiniteMasked(op, arg, values, mask);
  const out = new Float64Array(maskCount(mask));
  let j = 0;
  for (let i = 0; i < values.length; i++) if (mask[i] !== 0) out[j++] = values[i];
  return out;
}

/** Mean of a float64 array (NaN when empty; callers guard and note). */
export function mean64(x: ArrayLike<number>): number {
  if (x.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}

/** Row-wise log-softmax of row-major [rows, vocab] data in float64. */
export function rowLogSoftmax64(data: ArrayLike<number>, rows: number, vocab: number): Float64Array {
  const out = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const base = r * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) if (data[base + v] > max) max = data[base + v];
    let s = 0;
    for (let v = 0; v < vocab; v++) s += Math.exp(data[base + v] - max);
    const lse = max + Math.log(s);
    for (let v = 0; v < vocab; v++) out[base + v] = data[base + v] - lse;
  }
  return out;
}

/** 1 + the number of entries of row `base..base+vocab` strictly greater than row[base + v]. */
export function rankInRow(row: ArrayLike<number>, base: number, vocab: number, v: number): number {
  const x = row[base + v];
  let r = 1;
  for (let u = 0; u < vocab; u++) if (row[base + u] > x) r++;
  return r;
}

/**
 * A JSON-ready deep copy: typed arrays become number[], NaN and +-Infinity become null (what JSON.stringify
 * would write anyway, made explicit so the caller sees it).
 */
export function toPlain(x: unknown): unknown {
  if (typeof x === 'number') return Number.isFinite(x) ? x : null;
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>, (v) => toPlain(v));
  if (Array.isArray(x)) return x.map(toPlain);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = toPlain(v);
    return out;
  }
  return x;
}

/** Formats a threshold for a metric key: 0.01 -> "0.01", 1e-3 -> "0.001", -0.5 -> "-0.5". */
export function keyNumber(x: number): string {
  return String(Number(x.toPrecision(6)));
}
