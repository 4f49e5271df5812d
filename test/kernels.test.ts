import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsKernels, rowKernels, tensorFromView, type RowKernels } from '../lib/kernels';
import { ROWS_WASM_BASE64 } from '../lib/kernels/rowsWasm';
import { expectAllclose, expectNoLeak, randn } from './helpers';

/** float64 references */
function lseRef(z: ArrayLike<number>, rows: number, v: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, z[n * v + j]);
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(z[n * v + j] - m);
    out.push(m + Math.log(s));
  }
  return out;
}

const wasm = rowKernels();

describe('row kernels', () => {
  it('selects the wasm SIMD kernels by default', () => {
    expect(wasm.name).toBe('wasm-simd');
  });

  it('hand-checkable: logsumexp and softmax of [0, ln 3] are ln 4 and [1/4, 3/4]', () => {
    for (const k of [wasm, jsKernels]) {
      const a = k.arena(1024);
      const z = a.f32(2);
      z.set([0, Math.log(3)]);
      const p = a.f32(2);
      const lse = a.f64(1);
      k.softmaxRows(z, 1, 2, p, lse);
      expectAllclose(p, [0.25, 0.75], { rtol: 2e-7, label: k.name });
      expectAllclose(lse, [Math.log(4)], { rtol: 1e-7, label: k.name });
    }
  });

  // odd vocabulary sizes exercise the SIMD tail; +-1e4 the clamping; equal entries the ties
  for (const [rows, v, scale] of [[7, 13, 3], [3, 4096 + 3, 5], [2, 5, 1e4]] as const) {
    it(`wasm and JS agree with float64 references (${rows} x ${v}, scale ${scale})`, () => {
      const src = randn(rows * v, rows * 31 + v, scale);
      src[0] = src[1];
      const results = ([wasm, jsKernels] as RowKernels[]).map((k) => {
        const a = k.arena(rows * v * 4 * 6 + rows * 8 * 3);
        const z = a.f32(rows * v);
        z.set(src);
        const lse = a.f64(rows);
        const lse2 = a.f64(rows);
        const p = a.f32(rows * v);
        const ls = a.f32(rows * v);
        const c = a.f32(rows);
        for (let n = 0; n < rows; n++) c[n] = n - 1.5;
        const g = a.f32(rows * v);
        k.logsumexpRows(z, rows, v, lse);
        k.softmaxRows(z, rows, v, p, lse2);
        k.shiftRows(z, lse, rows, v, ls);
        k.scaleRows(p, c, rows, v, g);
        return { lse: Array.from(lse), lse2: Array.from(lse2), p: Array.from(p), ls: Array.from(ls), g: Array.from(g) };
      });
      const ref = lseRef(src, rows, v);
      for (const r of results) {
        expectAllclose(r.lse, ref, { rtol: 1e-6, atol: 1e-6, label: 'lse' });
        expectAllclose(r.lse2, ref, { rtol: 1e-6, atol: 1e-6, label: 'lse (softmax)' });
        const pRef = Array.from(src, (x, i) => Math.exp(x - ref[Math.floor(i / v)]));
        // float32 shifted logits: relative error about |z - max| * 6e-8, plus the polynomial's 2 ulp
        expectAllclose(r.p, pRef, { rtol: 1e-5, atol: 1e-30, label: 'softmax' });
        expectAllclose(r.ls, Array.from(src, (x, i) => x - ref[Math.floor(i / v)]), { rtol: 1e-6, atol: 1e-4, label: 'log-softmax' });
        expectAllclose(r.g, pRef.map((x, i) => (Math.floor(i / v) - 1.5) * x), { rtol: 1e-5, atol: 1e-30, label: 'scale' });
      }
    });
  }

  it('full-vocabulary JSD rows match autodiff of the composed formula, wasm and JS', () => {
    const rows = 5;
    const v = 11;
    const zs = randn(rows * v, 5, 2);
    const zt = randn(rows * v, 6, 2);
    const beta = 0.3;
    // composed reference with tfjs autodiff
    const [lossRef, gradRef] = tf.tidy(() => {
      const t = tf.logSoftmax(tf.tensor2d(zt, [rows, v]));
      const f = (z: tf.Tensor) => {
        const s = tf.logSoftmax(z);
        const logM = tf.log(tf.add(tf.mul(beta, tf.exp(t)), tf.mul(1 - beta, tf.exp(s))));
        return tf.add(tf.mul(beta, tf.sum(tf.mul(tf.exp(t), tf.sub(t, logM)), 1)), tf.mul(1 - beta, tf.sum(tf.mul(tf.exp(s), tf.sub(s, logM)), 1)));
      };
      const z = tf.tensor2d(zs, [rows, v]);
      return [f(z).dataSync(), tf.grad((x: tf.Tensor) => tf.sum(f(x)))(z).dataSync()];
    });
    for (const k of [wasm, jsKernels]) {
      const a = k.arena(rows * v * 4 * 8 + 1024);
      const z = a.f32(rows * v);
      z.set(zs);
      const t = a.f32(rows * v);
      t.set(zt);
      const lseS = a.f64(rows);
      const lseT = a.f64(rows);
      k.logsumexpRows(z, rows, v, lseS);
      k.logsumexpRows(t, rows, v, lseT);
      const logS = a.f32(rows * v);
      const logT = a.f32(rows * v);
      k.shiftRows(z, lseS, rows, v, logS);
      k.shiftRows(t, lseT, rows, v, logT);
      const loss = a.f32(rows);
      const g = a.f32(rows * v);
      k.jsdRows(logS, logT, beta, rows, v, loss, g);
      expectAllclose(loss, lossRef, { rtol: 1e-5, atol: 1e-6, label: `${k.name} jsd loss` });
      expectAllclose(g, gradRef, { rtol: 1e-4, atol: 1e-6, label: `${k.name} jsd grad` });
    }
  });

  it('refuses arrays that are not views of its arena', () => {
    expect(() => wasm.logsumexpRows(new Float32Array(4), 1, 4, new Float64Array(1))).toThrow(/view from the current kernel arena/);
  });

  it('loads tensors into the arena and back without leaking', () => {
    const t = tf.tensor2d(randn(12, 9), [3, 4]);
    expectNoLeak(() => {
      const a = wasm.arena(1024);
      const v = a.load(t);
      const back = tensorFromView(v, [3, 4]);
      expectAllclose(back.dataSync(), t.dataSync(), { rtol: 0, atol: 0 });
      back.dispose();
    });
    t.dispose();
  });
});

const hasClang = spawnSync('clang', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('wasm-ld', ['--version'], { stdio: 'ignore' }).status === 0;
describe.skipIf(!hasClang)('committed rows.wasm', () => {
  it('matches a fresh build of rows.c', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdlab-kernels-'));
    try {
      for (const f of ['rows.c', 'build.sh']) copyFileSync(join(__dirname, '..', 'lib', 'kernels', f), join(dir, f));
      const r = spawnSync('bash', [join(dir, 'build.sh')], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(dir, 'rows.wasm')).toString('base64')).toBe(ROWS_WASM_BASE64);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
