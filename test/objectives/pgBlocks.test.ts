/**
 * studentRowsInBlocks (lib/objectives/kernels/pg.ts), the block-at-a-time driver behind fused opd (gamma = 0) and
 * aopd, must give the same bits as the one-pass studentRows + writeRows it replaces there: the same per-row
 * statistics (max, sum, lse), the same gradient rows and sparse entries, for blocks that split the rows unevenly
 * (V = 16384: 4 rows a block, 10 rows = 4 + 4 + 2), a masked-out row, a row whose settle reads its exponentials
 * (as aopd's tailBucket does), with the SIMD and the plain-JS row kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { jsKernels, rowKernels, setRowKernels, type RowKernels } from '../../lib/kernels';
import { setDenseRow, setEntry, studentRows, studentRowsInBlocks, writeRows, type StudentRows } from '../../lib/objectives/kernels/pg';
import { expectNoLeak, randInts, randn } from '../helpers';

const N = 10;
const V = 16384; // 256 KiB blocks of 64 KiB rows: 4 rows each, the last block 2
const K = 5;

/** Deterministic per-row coefficients and entries; row 3 left zero (masked); odd rows read their exponentials. */
function settleRow(s: StudentRows, n: number, ids_NK: Int32Array, seen: number[]): void {
  if (n === 3) return;
  let offSum = 0;
  if (n % 2 === 1) for (let v = 0; v < V; v += 97) offSum += s.g[n * V + v]; // reads e = exp(z - max) of the row
  seen[n] = offSum;
  setDenseRow(s, n, 0.25 * (n + 1) - s.lse_N[n] / 10);
  for (let j = 0; j < K; j++) setEntry(s, n, ids_NK[n * K + j], Math.exp(s.zS_NK![n * K + j] - s.lse_N[n]) - j);
}

function run(kernels: RowKernels, blocked: boolean, zT: tf.Tensor2D, ids_NK: Int32Array) {
  const arena = kernels.arena(N * 8 * 32 + 4096, 2 * N * V * 4);
  const grad = arena.output([N, V]);
  const z = arena.load(zT);
  const seen: number[] = new Array(N).fill(0);
  let s: StudentRows;
  if (blocked) {
    s = studentRowsInBlocks(kernels, arena, z, grad.values, N, V, { ids_NK, k: K }, (row, from, to) => {
      for (let n = from; n < to; n++) settleRow(row, n, ids_NK, seen);
    });
  } else {
    s = studentRows(kernels, arena, z, grad.values, N, V, { ids_NK, k: K });
    for (let n = 0; n < N; n++) settleRow(s, n, ids_NK, seen);
    writeRows(s);
  }
  const out = { lse: Float64Array.from(s.lse_N), sum: Float64Array.from(s.sum_N), seen, g: Float32Array.from(grad.values) };
  grad.toTensor().dispose();
  return out;
}

describe('studentRowsInBlocks', () => {
  afterEach(() => setRowKernels(null));
  for (const which of ['simd', 'js'] as const) {
    it(`gives the bits of studentRows + writeRows (${which} kernels)`, () => {
      const kernels = which === 'js' ? jsKernels : rowKernels();
      setRowKernels(kernels);
      const zT = tf.tensor2d(randn(N * V, 11, 3), [N, V]);
      const ids_NK = randInts(N * K, V, 12);
      const a = run(kernels, false, zT, ids_NK);
      const b = run(kernels, true, zT, ids_NK);
      zT.dispose();
      expect(Buffer.from(b.lse.buffer).equals(Buffer.from(a.lse.buffer))).toBe(true);
      expect(Buffer.from(b.sum.buffer).equals(Buffer.from(a.sum.buffer))).toBe(true);
      expect(b.seen).toEqual(a.seen);
      expect(Buffer.from(b.g.buffer).equals(Buffer.from(a.g.buffer))).toBe(true);
      // not vacuous: the masked row is zero, the others carry their dense part and entries
      expect(a.g.subarray(3 * V, 4 * V).every((x) => x === 0)).toBe(true);
      expect(a.g.subarray(9 * V, 10 * V).some((x) => x !== 0)).toBe(true);
      expect(a.seen[1]).toBeGreaterThan(0);
    });
  }

  it('leaks no tensor', () => {
    const zT = tf.tensor2d(randn(N * V, 13, 2), [N, V]);
    const ids_NK = randInts(N * K, V, 14);
    expectNoLeak(() => run(rowKernels(), true, zT, ids_NK));
    zT.dispose();
  });
});
