import * as tf from '@tensorflow/tfjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstNonFiniteOf, jsKernels, rowKernels, setRowKernels, tensorFromView, type RowKernels } from '../lib/kernels';
import { ROWS_WASM_BASE64 } from '../lib/kernels/rowsWasm';
import { topKRows } from '../lib/probs/topk';
import { expectAllclose, expectNoLeak, randn, rng } from './helpers';

/** float64 references */
function lseRef(z: ArrayLike<number>, rows: number, v: number, scale = 1): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, scale * z[n * v + j]);
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(scale * z[n * v + j] - m);
    out.push(m + Math.log(s));
  }
  return out;
}

/** Top-k by a full sort: value descending, then id ascending. */
function bruteTopK(z: ArrayLike<number>, rows: number, v: number, k: number): { ids: number[]; values: number[] } {
  const ids: number[] = [];
  const values: number[] = [];
  for (let n = 0; n < rows; n++) {
    const order = Array.from({ length: v }, (_, j) => j).sort((a, b) => z[n * v + b] - z[n * v + a] || a - b);
    for (const j of order.slice(0, k)) {
      ids.push(j);
      values.push(z[n * v + j]);
    }
  }
  return { ids, values };
}

/** Full-vocabulary JSD_beta at temperature tau in float64: loss, entropy and w * dloss/dz by the closed form. */
function jsdRef(zs: ArrayLike<number>, zt: ArrayLike<number>, w: ArrayLike<number>, rows: number, v: number, tau: number, beta: number) {
  const loss: number[] = [];
  const entropy: number[] = [];
  const grad: number[] = [];
  for (let n = 0; n < rows; n++) {
    const x = Array.from({ length: v }, (_, j) => zs[n * v + j] / tau);
    const y = Array.from({ length: v }, (_, j) => zt[n * v + j] / tau);
    const lx = lseRef(x, 1, v)[0];
    const ly = lseRef(y, 1, v)[0];
    const ls = x.map((a) => a - lx);
    const lt = y.map((a) => a - ly);
    const q = ls.map(Math.exp);
    const p = lt.map(Math.exp);
    let f = 0;
    const dx: number[] = [];
    for (let j = 0; j < v; j++) {
      if (beta === 0) {
        f += p[j] * (lt[j] - ls[j]);
        dx.push(-p[j]);
      } else if (beta === 1) {
        f += q[j] * (ls[j] - lt[j]);
        dx.push(q[j] * (ls[j] - lt[j] + 1));
      } else {
        const lm = Math.log(beta * p[j] + (1 - beta) * q[j]);
        f += beta * p[j] * (lt[j] - lm) + (1 - beta) * q[j] * (ls[j] - lm);
        dx.push((1 - beta) * q[j] * (ls[j] - lm));
      }
    }
    const sum = dx.reduce((a, b) => a + b, 0);
    loss.push(w[n] === 0 ? 0 : f);
    entropy.push(w[n] === 0 ? 0 : -q.reduce((a, qj, j) => a + qj * ls[j], 0));
    for (let j = 0; j < v; j++) grad.push((w[n] * (dx[j] - q[j] * sum)) / tau);
  }
  return { loss, entropy, grad };
}

/** Rows with ties: values on a coarse grid (many equal entries) and one constant row. */
function tiedRows(rows: number, v: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = Float32Array.from({ length: rows * v }, () => Math.floor(r() * 7) - 3);
  out.fill(0.5, 0, v); // row 0: all equal
  return out;
}

/** The SIMD kernels whatever OPDLAB_KERNELS says: these tests hold both implementations to the references. */
function simdKernels(): RowKernels {
  const want = process.env.OPDLAB_KERNELS;
  delete process.env.OPDLAB_KERNELS;
  try {
    return rowKernels();
  } finally {
    if (want !== undefined) process.env.OPDLAB_KERNELS = want;
  }
}

const wasm = simdKernels();
const both: RowKernels[] = [wasm, jsKernels];

describe('row kernels', () => {
  it('selects the wasm SIMD kernels by default (zero-copy on the tfjs wasm heap), the JS ones with OPDLAB_KERNELS=js', () => {
    expect(wasm.name).toBe('wasm-simd');
    if (tf.getBackend() === 'wasm') expect(wasm.zeroCopy).toBe(true);
    expect(rowKernels().name).toBe(process.env.OPDLAB_KERNELS === 'js' ? 'js' : 'wasm-simd');
  });

  it('hand-checkable: logsumexp and softmax of [0, ln 3] are ln 4 and [1/4, 3/4]', () => {
    for (const k of both) {
      const a = k.arena(1024);
      const z = a.f32(2);
      z.set([0, Math.log(3)]);
      const p = a.f32(2);
      const lse = a.f64(1);
      k.softmaxRows(z, 1, 2, p, lse);
      expectAllclose(p, [0.25, 0.75], { rtol: 2e-7, label: k.name });
      expectAllclose(lse, [Math.log(4)], { rtol: 1e-7, label: k.name });
      // expRows: e = exp(z - max) = [1/3, 1], max = ln 3, sum = 4/3
      const e = a.f32(2);
      const max = a.f32(1);
      const sum = a.f64(1);
      k.expRows(z, 1, 2, e, max, sum);
      expectAllclose(e, [1 / 3, 1], { rtol: 2e-7, label: `${k.name} expRows` });
      expectAllclose([max[0], sum[0]], [Math.log(3), 4 / 3], { rtol: 1e-7, label: `${k.name} expRows stats` });
      // scale 2: logsumexp(2 z) = ln(1 + 9) = ln 10
      k.logsumexpRows(z, 1, 2, lse, 2);
      expectAllclose(lse, [Math.log(10)], { rtol: 1e-7, label: `${k.name} scaled lse` });
    }
  });

  it('hand-checkable: top-2 of [1, 3, 3, 2] and [0, 5, 5, 5] keeps the lower id on ties; first non-finite value', () => {
    for (const k of both) {
      const a = k.arena(1024);
      const z = a.f32(8);
      z.set([1, 3, 3, 2, 0, 5, 5, 5]);
      const ids = a.i32(4);
      const values = a.f32(4);
      const lse = a.f64(2);
      k.topKRows(z, 2, 4, 2, ids, values, lse);
      expect(Array.from(ids), k.name).toEqual([1, 2, 1, 2]);
      expect(Array.from(values), k.name).toEqual([3, 3, 5, 5]);
      expectAllclose(lse, [Math.log(Math.E + 2 * Math.exp(3) + Math.exp(2)), Math.log(1 + 3 * Math.exp(5))], { rtol: 1e-7, label: k.name });
      const x = a.f32(5);
      x.set([1, -2, NaN, Infinity, 0]);
      expect(k.firstNonFinite(x), k.name).toBe(2);
      x[2] = 7;
      expect(k.firstNonFinite(x), k.name).toBe(3);
      x[3] = -1e38;
      expect(k.firstNonFinite(x), k.name).toBe(-1);
    }
  });

  it('hand-checkable: JSD at beta 0 is KL(pT || pS), pT = [1/2, 1/2], pS = [1/4, 3/4]', () => {
    for (const k of both) {
      const a = k.arena(1024);
      const z = a.f32(2);
      z.set([0, Math.log(3)]);
      const t = a.f32(2);
      t.set([0, 0]);
      const w = a.f32(1);
      w[0] = 1;
      const loss = a.f32(1);
      const entropy = a.f32(1);
      const g = a.f32(2);
      k.jsdRows(z, t, w, 1, 2, 1, 0, loss, entropy, g);
      // 1/2 ln 2 + 1/2 ln(2/3) = 1/2 ln(4/3); gradient pS - pT = [-1/4, 1/4]; entropy -(1/4 ln 1/4 + 3/4 ln 3/4)
      expectAllclose(loss, [0.5 * Math.log(4 / 3)], { rtol: 1e-6, label: k.name });
      expectAllclose(g, [-0.25, 0.25], { rtol: 1e-6, label: k.name });
      expectAllclose(entropy, [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))], { rtol: 1e-6, label: k.name });
    }
  });

  // odd vocabulary sizes exercise the SIMD tails; +-1e4 the clamping; equal entries the ties
  for (const [rows, v, scale] of [[7, 13, 3], [3, 4096 + 3, 5], [2, 5, 1e4], [4, 33, 2]] as const) {
    it(`wasm and JS agree with float64 references (${rows} x ${v}, scale ${scale})`, () => {
      const src = randn(rows * v, rows * 31 + v, scale);
      src[0] = src[1];
      const results = both.map((k) => {
        const a = k.arena(rows * v * 4 * 6 + rows * 8 * 8);
        const z = a.f32(rows * v);
        z.set(src);
        const lse = a.f64(rows);
        const lse2 = a.f64(rows);
        const lse3 = a.f64(rows);
        const p = a.f32(rows * v);
        const ls = a.f32(rows * v);
        const c = a.f32(rows);
        for (let n = 0; n < rows; n++) c[n] = n - 1.5;
        const g = a.f32(rows * v);
        const e = a.f32(rows * v);
        const max = a.f32(rows);
        const sum = a.f64(rows);
        k.logsumexpRows(z, rows, v, lse);
        k.logsumexpRows(z, rows, v, lse3, 0.7);
        k.softmaxRows(z, rows, v, p, lse2);
        k.shiftRows(z, lse, rows, v, ls);
        k.scaleRows(p, c, rows, v, g);
        k.expRows(z, rows, v, e, max, sum);
        const e0 = Array.from(e);
        k.scaleRows(e, c, rows, v, e); // in place
        return {
          lse: Array.from(lse), lse2: Array.from(lse2), lse3: Array.from(lse3), p: Array.from(p), ls: Array.from(ls), g: Array.from(g),
          e: Array.from(e), e0, max: Array.from(max), sum: Array.from(sum),
        };
      });
      const ref = lseRef(src, rows, v);
      for (const r of results) {
        expectAllclose(r.lse, ref, { rtol: 1e-6, atol: 1e-6, label: 'lse' });
        expectAllclose(r.lse2, ref, { rtol: 1e-6, atol: 1e-6, label: 'lse (softmax)' });
        expectAllclose(r.lse3, lseRef(src, rows, v, 0.7), { rtol: 1e-6, atol: 1e-6, label: 'lse (scale 0.7)' });
        const pRef = Array.from(src, (x, i) => Math.exp(x - ref[Math.floor(i / v)]));
        // float32 shifted logits: relative error about |z - max| * 6e-8, plus the polynomial's ulp
        expectAllclose(r.p, pRef, { rtol: 1e-5, atol: 1e-30, label: 'softmax' });
        expectAllclose(r.ls, Array.from(src, (x, i) => x - ref[Math.floor(i / v)]), { rtol: 1e-6, atol: 1e-4, label: 'log-softmax' });
        expectAllclose(r.g, pRef.map((x, i) => (Math.floor(i / v) - 1.5) * x), { rtol: 1e-5, atol: 1e-30, label: 'scale' });
        const maxRef = Array.from({ length: rows }, (_, n) => Math.max(...Array.from(src.subarray(n * v, (n + 1) * v))));
        expect(r.max, 'expRows max').toEqual(maxRef);
        const eRef = Array.from(src, (x, i) => Math.exp(x - maxRef[Math.floor(i / v)]));
        expectAllclose(r.e0, eRef, { rtol: 1e-5, atol: 1e-30, label: 'expRows e' });
        expectAllclose(r.e, eRef.map((x, i) => (Math.floor(i / v) - 1.5) * x), { rtol: 1e-5, atol: 1e-30, label: 'expRows e scaled in place' });
        expectAllclose(r.sum, maxRef.map((m, n) => Math.exp(ref[n] - m)), { rtol: 1e-6, label: 'expRows sum' });
      }
    });
  }

  it('exp keeps about 1 ulp over [-87, 0] and flushes below 2^-126 to 0', () => {
    const n = 40001;
    const src = Float32Array.from({ length: n }, (_, i) => -87 + (87 * i) / (n - 1));
    const a = wasm.arena(n * 8 + 1024);
    const z = a.f32(n + 1);
    z.set(src);
    z[n] = 0; // the row maximum: e = exp(z - 0)
    const e = a.f32(n + 1);
    wasm.expRows(z, 1, n + 1, e, a.f32(1), a.f64(1));
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(e[i] - Math.exp(src[i])) / Math.exp(src[i]));
    expect(worst).toBeLessThan(1.5 * 2 ** -23); // 1.5 ulp of the result
    z.set([-88, -100, -1e4, -3e38, 0]);
    wasm.expRows(z, 1, 5, e, a.f32(1), a.f64(1));
    expect(Array.from(e.subarray(1, 5))).toEqual([0, 0, 0, 1]);
    expect(e[0]).toBeLessThan(2 ** -126);
  });

  it('logsumexp (exponentials only summed, a polynomial one degree lower): within 2e-7 per term plus the float32 sums', () => {
    // rows [0, a_1 .. a_4], a_j uniform in [-87, 0]: lse = log(1 + sum e^a); an error of 1.8e-7 per term moves it by
    // at most 1.8e-7 (sum e^a) / (1 + sum e^a), float32 partial sums of <= 5 terms by at most 4 * 2^-24
    const rows = 3000;
    const v = 5;
    const r = rng(11);
    const src = Float32Array.from({ length: rows * v }, (_, i) => (i % v === 0 ? 0 : -87 * r()));
    for (const k of both) {
      const a = k.arena(rows * v * 4 + rows * 8 + 1024);
      const z = a.f32(rows * v);
      z.set(src);
      const lse = a.f64(rows);
      k.logsumexpRows(z, rows, v, lse);
      for (let n = 0; n < rows; n++) {
        let tail = 0;
        for (let j = 1; j < v; j++) tail += Math.exp(src[n * v + j]);
        const ref = Math.log1p(tail);
        const bound = (1.8e-7 * tail) / (1 + tail) + 4 * 2 ** -24 + 1e-15;
        if (!(Math.abs(lse[n] - ref) <= bound)) throw new Error(`${k.name} row ${n}: lse ${lse[n]} vs ${ref} (bound ${bound})`);
      }
    }
  });

  for (const [rows, v, seed] of [[5, 300, 1], [3, 4099, 2], [2, 70, 3], [2, 4096, 4]] as const) {
    it(`top-K: wasm == JS == a full sort, ties to the lower id (${rows} x ${v})`, () => {
      for (const src of [randn(rows * v, seed), tiedRows(rows, v, seed)]) {
        for (const k of [1, 3, 16, 32, 64, 65, v]) {
          if (k > v) continue;
          const ref = bruteTopK(src, rows, v, k);
          const js = topKRows(src, rows, v, k);
          expect(Array.from(js.ids_NK), `topKRows k ${k}`).toEqual(ref.ids);
          for (const kern of both) {
            const a = kern.arena(rows * v * 4 + rows * k * 8 + rows * 8 + 1024);
            const z = a.f32(rows * v);
            z.set(src);
            const ids = a.i32(rows * k);
            const values = a.f32(rows * k);
            const lse = a.f64(rows);
            kern.topKRows(z, rows, v, k, ids, values, lse, 1.3);
            expect(Array.from(ids), `${kern.name} k ${k}`).toEqual(ref.ids);
            expect(Array.from(values), `${kern.name} k ${k}`).toEqual(ref.values.map(Math.fround));
            expectAllclose(lse, lseRef(src, rows, v, 1.3), { rtol: 1e-6, atol: 1e-6, label: `${kern.name} k ${k} lse` });
          }
        }
      }
    });
  }

  it('first non-finite value: wasm == JS at every position of a long array (SIMD blocks and tail)', () => {
    const n = 203;
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of [0, 3, 63, 64, 127, 150, 199, 202]) {
        const src = randn(n, at + 7, 1e30); // huge but finite values are fine
        src[at] = bad;
        if (at + 9 < n) src[at + 9] = NaN; // a later one does not hide the first
        for (const k of both) {
          const x = k.arena(n * 4 + 64).f32(n);
          x.set(src);
          expect(k.firstNonFinite(x), `${k.name} ${bad} at ${at}`).toBe(at);
        }
      }
    }
    const ok = tf.tensor2d(randn(12, 4), [3, 4]);
    const bad = tf.tensor2d([1, 2, 3, 4, 5, NaN], [2, 3]);
    expect(firstNonFiniteOf(ok)).toBe(-1);
    expect(firstNonFiniteOf(bad)).toBe(5);
    expectNoLeak(() => firstNonFiniteOf(bad));
    tf.dispose([ok, bad]);
  });

  it('row scan: the first non-finite value of [rows, V] data, else every row maximum (wasm == JS == a plain max)', () => {
    for (const [rows, v] of [[5, 37], [3, 4099], [2, 16]] as const) {
      const src = randn(rows * v, v, 3);
      src[v + 5] = 9; // row 1's maximum, mid-row
      src[rows * v - 1] = 11; // the last row's, in the tail
      const ref = Array.from({ length: rows }, (_, n) => Math.max(...Array.from(src.subarray(n * v, (n + 1) * v))));
      for (const k of both) {
        const a = k.arena(rows * v * 4 + 1024);
        const x = a.f32(rows * v);
        x.set(src);
        const max = new Float32Array(rows);
        expect(k.scanRows(x, rows, v, max), `${k.name} ${rows} x ${v}`).toBe(-1);
        expect(Array.from(max), `${k.name} ${rows} x ${v} maxima`).toEqual(ref.map(Math.fround));
        for (const at of [0, v - 1, v + 3, rows * v - 1]) {
          const keep = x[at];
          x[at] = at % 2 ? NaN : -Infinity;
          expect(k.scanRows(x, rows, v, max), `${k.name} bad at ${at}`).toBe(at);
          x[at] = keep;
        }
        x[1] = 3e38; // finite values whose sum overflows: still finite
        x[2] = 3e38;
        expect(k.scanRows(x, rows, v, max), `${k.name} overflowing sums`).toBe(-1);
        expect(max[0]).toBe(Math.fround(3e38));
      }
    }
  });

  it('validation\'s scan leaves the row maxima for the kernels (Arena.rowMaxOf), which then skip their max pass', () => {
    const rows = 4;
    const v = 45;
    const src = randn(rows * v, 9, 2);
    const t = tf.tensor2d(src, [rows, v]);
    const other = tf.tensor2d(src, [rows, v]); // the same values, never scanned
    const ref = lseRef(src, rows, v);
    for (const k of both) {
      setRowKernels(k);
      try {
        expect(firstNonFiniteOf(t)).toBe(-1);
        const a = k.arena(rows * v * 8 + 1024, 2 * rows * v * 4);
        const z = a.load(t);
        const known = a.rowMaxOf(z, rows, v);
        expect(known && Array.from(known), k.name).toEqual(Array.from({ length: rows }, (_, n) => Math.max(...Array.from(src.subarray(n * v, (n + 1) * v)))).map(Math.fround));
        expect(a.rowMaxOf(z, v, rows), `${k.name} other shape`).toBeNull();
        expect(a.rowMaxOf(a.load(other), rows, v), `${k.name} unscanned`).toBeNull();
        const max = a.f32(rows);
        max.set(known!);
        const lse = a.f64(rows);
        k.logsumexpRows(z, rows, v, lse, 1, max);
        expectAllclose(lse, ref, { rtol: 1e-6, atol: 1e-6, label: `${k.name} lse from known maxima` });
        const e = a.f32(rows * v);
        const sum = a.f64(rows);
        k.expRows(z, rows, v, e, max, sum, true);
        expectAllclose(Array.from(sum, (s, n) => max[n] + Math.log(s)), ref, { rtol: 1e-6, atol: 1e-6, label: `${k.name} expRows from known maxima` });
      } finally {
        setRowKernels(null);
      }
    }
    const bad = tf.tensor2d([1, NaN, 3, 4], [2, 2]);
    expect(firstNonFiniteOf(bad)).toBe(1);
    const a = wasm.arena(1024, 1024);
    expect(a.rowMaxOf(a.load(bad), 2, 2), 'no maxima from a failed scan').toBeNull();
    const zt = a.load(t);
    t.dispose();
    expect(a.rowMaxOf(zt, rows, v), 'none after dispose').toBeNull();
    tf.dispose([other, bad]);
  });

  for (const [rows, v] of [[5, 11], [3, 1029]] as const) {
    it(`full-vocabulary JSD rows: wasm == JS == float64 closed form, every beta end, temperature, weights (${rows} x ${v})`, () => {
      const zs = randn(rows * v, 5 + v, 2);
      const zt = randn(rows * v, 6 + v, 2);
      const wv = Float32Array.from({ length: rows }, (_, n) => (n === 1 ? 0 : 0.5 + n));
      for (const beta of [0, 0.3, 1]) {
        for (const tau of [1, 0.7]) {
          const ref = jsdRef(zs, zt, wv, rows, v, tau, beta);
          for (const k of both) {
            const a = k.arena(rows * v * 4 * 4 + 1024);
            const z = a.f32(rows * v);
            z.set(zs);
            const t = a.f32(rows * v);
            t.set(zt);
            const w = a.f32(rows);
            w.set(wv);
            const loss = a.f32(rows);
            const entropy = a.f32(rows);
            const g = a.f32(rows * v);
            g.fill(NaN); // every entry must be written, zero rows included
            k.jsdRows(z, t, w, rows, v, 1 / tau, beta, loss, entropy, g);
            const label = `${k.name} beta ${beta} tau ${tau}`;
            expectAllclose(loss, ref.loss, { rtol: 1e-5, atol: 1e-6, label: `${label} loss` });
            expectAllclose(entropy, ref.entropy, { rtol: 1e-5, atol: 1e-6, label: `${label} entropy` });
            expectAllclose(g, ref.grad, { rtol: 1e-4, atol: 1e-7, label: `${label} grad` });
          }
        }
      }
    });
  }

  it('full-vocabulary JSD rows match autodiff of the composed formula (tfjs), wasm and JS', () => {
    const rows = 5;
    const v = 11;
    const zs = randn(rows * v, 5, 2);
    const zt = randn(rows * v, 6, 2);
    const beta = 0.3;
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
    for (const k of both) {
      const a = k.arena(rows * v * 4 * 8 + 1024);
      const z = a.f32(rows * v);
      z.set(zs);
      const t = a.f32(rows * v);
      t.set(zt);
      const w = a.f32(rows).fill(1);
      const loss = a.f32(rows);
      const g = a.f32(rows * v);
      k.jsdRows(z, t, w, rows, v, 1, beta, loss, a.f32(rows), g);
      expectAllclose(loss, lossRef, { rtol: 1e-5, atol: 1e-6, label: `${k.name} jsd loss` });
      expectAllclose(g, gradRef, { rtol: 1e-4, atol: 1e-6, label: `${k.name} jsd grad` });
    }
  });

  it('gathers the asked entries of each row (hand-checkable), wasm == JS, and refuses ids out of range', () => {
    const rows = 3;
    const v = 70;
    const src = Float32Array.from({ length: rows * v }, (_, i) => i + 0.5); // entry (n, c) holds n * 70 + c + 0.5
    const idsSrc = [0, 69, 5, 5, 1, 68, 33, 0, 2];
    for (const k of both) {
      const a = k.arena(rows * v * 4 + 1024);
      const z = a.f32(rows * v);
      z.set(src);
      const ids = a.i32(rows * 3);
      ids.set(idsSrc);
      const out = a.f32(rows * 3);
      k.gatherRows(z, rows, v, ids, 3, out);
      expect(Array.from(out), k.name).toEqual([0.5, 69.5, 5.5, 75.5, 71.5, 138.5, 173.5, 140.5, 142.5]);
      // ids and out as plain arrays (copied through the SIMD module's own block), and rows wider than that block
      const plain = new Float32Array(rows * 3);
      k.gatherRows(z, rows, v, Int32Array.from(idsSrc), 3, plain);
      expect(Array.from(plain), `${k.name} plain arrays`).toEqual(Array.from(out));
      plain.fill(0);
      k.gatherRows(Float32Array.from(src), rows, v, Int32Array.from(idsSrc), 3, plain); // logits not in the arena
      expect(Array.from(plain), `${k.name} plain logits`).toEqual(Array.from(out));
      const wideCols = 40000;
      const wideIds = Int32Array.from({ length: rows * wideCols }, (_, i) => (i * 7) % v);
      const wide = new Float32Array(rows * wideCols);
      k.gatherRows(z, rows, v, wideIds, wideCols, wide);
      expect(wide[rows * wideCols - 1], `${k.name} wide`).toBe(src[(rows - 1) * v + wideIds[rows * wideCols - 1]]);
      expect(wide[12345], `${k.name} wide`).toBe(src[wideIds[12345]]);
      ids[4] = v;
      expect(() => k.gatherRows(z, rows, v, ids, 3, out), k.name).toThrow(/ids must lie in \[0, 70\), got 70 at 4/);
      ids[4] = -1;
      expect(() => k.gatherRows(z, rows, v, ids, 3, out), k.name).toThrow(/got -1 at 4/);
    }
  });

  it('refuses arrays that are not views of its arena', () => {
    expect(() => wasm.logsumexpRows(new Float32Array(4), 1, 4, new Float64Array(1))).toThrow(/view from the current kernel arena/);
  });

  it('loads tensors in place (zero-copy on the tfjs wasm heap), fills outputs, and leaks nothing', () => {
    const t = tf.tensor2d(randn(12, 9), [3, 4]);
    for (const k of both) {
      expectNoLeak(() => {
        const a = k.arena(1024, 1024);
        const out = a.output([3, 4]);
        const v = a.load(t);
        if (k.zeroCopy) expect(v.buffer).toBe(out.values.buffer);
        out.values.set(v.map((x) => 2 * x));
        const doubled = out.toTensor();
        expectAllclose(doubled.dataSync(), Array.from(t.dataSync(), (x) => 2 * x), { rtol: 0, atol: 0 });
        const back = tensorFromView(v, [3, 4]);
        expectAllclose(back.dataSync(), t.dataSync(), { rtol: 0, atol: 0 });
        tf.dispose([doubled, back]);
        if (k.zeroCopy) {
          // an allocation on the heap may move it: output() after a view is refused
          const b = k.arena(1024);
          b.f32(4);
          expect(() => b.output([2, 2])).toThrow(/before any other view/);
        }
      });
    }
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
