/**
 * lib/probs: the distribution ops every objective is built from. Each op is tested four ways (style.md section 6):
 *   (a) a hand-checkable case with literal values (the arithmetic is in the comment next to it);
 *   (b) identities and limits (normalisation, temperature, endpoints, symmetries, bounds, gradients);
 *   (c) PyTorch float64 reference values from test/fixtures/gen_probs.py (inputs rounded to float32), with the
 *       tolerances stated where they are used;
 *   (d) tensor-leak checks (expectNoLeak), gradients included;
 * plus bad input: every error message is matched by a regex that names the op and the argument.
 *
 * The ops compute in float32 on the wasm backend; references are float64, so tolerances are a few float32 ulps
 * of the values involved (rtol 1e-5) plus an absolute floor for values that are exactly or nearly 0.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { jsd, klStudentTeacher, klTeacherStudent } from '../lib/probs/divergences';
import { entropy } from '../lib/probs/entropy';
import {
  F_DIVERGENCES,
  fDivergence,
  fDivergenceRows,
  stopGradAdvantage,
  unbiasedWeight,
  type FDivergenceName,
} from '../lib/probs/fdivergences';
import { gatherColumns, tokenLogprobs } from '../lib/probs/gather';
import { log1mexp, logSoftmax, probsFromLogprobs } from '../lib/probs/logSoftmax';
import { normaliseOnSupport, SUPPORT_NORMS, teacherTopK, topKRows, type SupportNorm } from '../lib/probs/topk';
import {
  assertFiniteArray,
  assertFiniteTensor,
  assertIdsInRange,
  assertInRange,
  assertIntInRange,
  assertLength,
  assertMask,
  assertShape,
} from '../lib/probs/validate';
import { loadFixture } from './fixtures';
import { expectAllclose, expectNoLeak, randInts, randn } from './helpers';

// ---------------------------------------------------------------------------------------------------------------
// helpers

const LN2 = Math.LN2;

/** Runs `make` in a tidy and returns a copy of the result's values (the result is disposed). */
function vals(make: () => tf.Tensor): Float32Array {
  const t = tf.tidy(make);
  const out = Float32Array.from(t.dataSync());
  t.dispose();
  return out;
}

function t2(data: ArrayLike<number>, rows: number, cols: number): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from(data), [rows, cols]);
}

/** Gradient of sum(c * f(x)) w.r.t. x (c broadcast against f's output), as a plain array. */
function gradOf(f: (x: tf.Tensor2D) => tf.Tensor, x: tf.Tensor2D, c?: tf.Tensor): Float32Array {
  return vals(() => tf.grad((z: tf.Tensor) => tf.sum(c ? tf.mul(f(z as tf.Tensor2D), c) : f(z as tf.Tensor2D)))(x));
}

/** Float64 log-softmax of one row. */
function logSoftmax64(row: ArrayLike<number>, tau = 1): number[] {
  const z = Array.from(row, (x) => x / tau);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
  return z.map((x) => x - lse);
}

/** Float64 logsumexp of each row of a row-major array. */
function rowLse(x: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let n = 0; n < rows; n++) {
    const row = Array.from(x).slice(n * cols, (n + 1) * cols);
    const m = Math.max(...row);
    out.push(m === -Infinity ? -Infinity : m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)));
  }
  return out;
}

/** Rows of random log-probs [rows, cols] (float32 log-softmax of scaled normals). */
function randLogp(rows: number, cols: number, seed: number, scale = 1.5): tf.Tensor2D {
  return tf.tidy(() => tf.logSoftmax(t2(randn(rows * cols, seed, scale), rows, cols)) as tf.Tensor2D);
}

/** Binary entropy H_b(beta) = beta log(1 / beta) + (1 - beta) log(1 / (1 - beta)) (0 at the ends). */
function binaryEntropy(beta: number): number {
  const h = (x: number) => (x === 0 ? 0 : -x * Math.log(x));
  return h(beta) + h(1 - beta);
}

// ---------------------------------------------------------------------------------------------------------------
// fixtures (test/fixtures/gen_probs.py)

interface Case {
  op: string;
  name?: string;
  set?: 'moderate' | 'mixed';
  rows: number;
  cols: number;
  k: number;
  tau: number;
  beta: number | null;
  norm: SupportNorm;
  logits: number[];
  teacher: number[];
  x: number[];
  a: number[];
  ids: number[];
  w: number[];
  c: number[];
  values: number[];
  topValues: number[];
  logp: number[];
  value: number[];
  grad: number[];
  gradLogits: number[];
  gradLogp: number[];
  logu: number[];
  f: number[];
  uFprime: number[];
  weight: number[];
}

const fixture = loadFixture<Case>('probs');
const casesOf = (op: string): Case[] => {
  const cs = fixture.cases.filter((c) => c.op === op);
  if (cs.length === 0) throw new Error(`probs.json has no '${op}' cases: regenerate with /usr/bin/python3 test/fixtures/gen_probs.py`);
  return cs;
};

describe('probs fixture', () => {
  it('was written by gen_probs.py and holds every op', () => {
    expect(fixture.generator).toBe('test/fixtures/gen_probs.py');
    for (const op of ['logSoftmax', 'log1mexp', 'gather', 'topk', 'support', 'entropy', 'divergence', 'fscalar', 'frows']) {
      expect(casesOf(op).length, op).toBeGreaterThan(0);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('logSoftmax', () => {
  it('(a) hand-checked: p proportional to 1:2:3 and a uniform row; tau = 2 on doubled logits gives the same', () => {
    // z = [0, ln 2, ln 3]: p = [1, 2, 3] / 6, log p = [ln(1/6), ln(1/3), ln(1/2)] = [-1.7917595, -1.0986123, -0.6931472]
    // z = [0, 0, 0]: log p = ln(1/3) = -1.0986123 everywhere
    const expected = [-1.7917595, -1.0986123, -0.6931472, -1.0986123, -1.0986123, -1.0986123];
    const z = t2([0, Math.log(2), Math.log(3), 0, 0, 0], 2, 3);
    const z2 = t2([0, 2 * Math.log(2), 2 * Math.log(3), 0, 0, 0], 2, 3);
    expectAllclose(vals(() => logSoftmax(z)), expected, { atol: 1e-6 });
    expectAllclose(vals(() => logSoftmax(z2, 2)), expected, { atol: 1e-6 }); // z / tau = [0, ln 2, ln 3]
    expectAllclose(vals(() => probsFromLogprobs(logSoftmax(z))), [1 / 6, 1 / 3, 1 / 2, 1 / 3, 1 / 3, 1 / 3], { atol: 1e-7 });
    tf.dispose([z, z2]);
  });

  it('(b) rows logsumexp to 0 and probabilities sum to 1, extremes (+-1e4), ties and every tau included', () => {
    const c = casesOf('logSoftmax')[0];
    const z = t2(c.logits, c.rows, c.cols);
    for (const tau of [0.5, 1, 2, 7.5]) {
      const lp = vals(() => logSoftmax(z, tau));
      expectAllclose(rowLse(lp, c.rows, c.cols), new Array(c.rows).fill(0), { atol: 2e-6, label: `lse tau ${tau}` });
      const sums = vals(() => tf.sum(probsFromLogprobs(logSoftmax(z, tau)), 1));
      expectAllclose(sums, new Array(c.rows).fill(1), { atol: 2e-6, label: `sum tau ${tau}` });
      expect(lp.every((v) => Number.isFinite(v) && v <= 0)).toBe(true);
    }
    z.dispose();
  });

  it('(b) equals log(softmax), is shift invariant, and tau divides the logits', () => {
    const z = t2(randn(4 * 9, 5, 2), 4, 9);
    const ls = vals(() => logSoftmax(z));
    expectAllclose(ls, vals(() => tf.log(tf.softmax(z))), { rtol: 1e-5, atol: 1e-6, label: 'log(softmax)' });
    expectAllclose(vals(() => logSoftmax(tf.add(z, 100) as tf.Tensor2D)), ls, { rtol: 1e-4, atol: 2e-5, label: 'shift' });
    for (const tau of [0.5, 2, 3]) {
      expectAllclose(vals(() => logSoftmax(z, tau)), vals(() => logSoftmax(tf.div(z, tau) as tf.Tensor2D)), { rtol: 1e-6, atol: 1e-7 });
      // float64 reference of row 0 at this tau
      expectAllclose(vals(() => logSoftmax(z, tau)).slice(0, 9), logSoftmax64(z.dataSync().slice(0, 9), tau), { rtol: 1e-5, atol: 1e-6 });
    }
    z.dispose();
  });

  it('(b) tau -> large gives the uniform distribution, tau -> 0 the argmax one-hot', () => {
    const z = t2(randn(3 * 6, 9, 3), 3, 6);
    // |z / tau| <= ~1e-5 for tau = 1e6, so log p = -ln 6 = -1.7917595 to ~1e-5
    expectAllclose(vals(() => logSoftmax(z, 1e6)), new Array(18).fill(-Math.log(6)), { atol: 2e-5 });
    const cold = vals(() => logSoftmax(z, 1e-3));
    const zz = z.dataSync();
    for (let n = 0; n < 3; n++) {
      const row = Array.from(zz.slice(n * 6, n * 6 + 6));
      const arg = row.indexOf(Math.max(...row));
      for (let v = 0; v < 6; v++) {
        if (v === arg) expect(Math.abs(cold[n * 6 + v])).toBeLessThan(1e-6);
        else expect(cold[n * 6 + v]).toBeLessThan(-20); // gaps of >= 0.02 / 1e-3
      }
    }
    z.dispose();
  });

  it('(b) the gradient of any loss sums to 0 over each row (shift invariance) and scales as 1 / tau', () => {
    const z = t2(randn(3 * 5, 13), 3, 5);
    const w = t2(randn(3 * 5, 14), 3, 5);
    const g1 = gradOf((x) => logSoftmax(x), z, w);
    const g2 = gradOf((x) => logSoftmax(x, 2), tf.mul(z, 2) as tf.Tensor2D, w); // same log p; d/dz scales by 1/2
    expectAllclose(g2, Array.from(g1, (g) => g / 2), { rtol: 1e-5, atol: 1e-6 });
    for (let n = 0; n < 3; n++) expect(Math.abs(g1.slice(n * 5, n * 5 + 5).reduce((s, v) => s + v, 0))).toBeLessThan(1e-5);
    tf.dispose([z, w]);
  });

  it('(c) matches PyTorch log_softmax(z / tau) and its gradient at tau = 0.5, 1, 2 (rtol 1e-5, atol 1e-5)', () => {
    for (const c of casesOf('logSoftmax')) {
      const z = t2(c.logits, c.rows, c.cols);
      const w = t2(c.w, c.rows, c.cols);
      expectAllclose(vals(() => logSoftmax(z, c.tau)), c.logp, { rtol: 1e-5, atol: 1e-5, label: `logp tau ${c.tau}` });
      expectAllclose(gradOf((x) => logSoftmax(x, c.tau), z, w), c.grad, { rtol: 1e-4, atol: 1e-5, label: `grad tau ${c.tau}` });
      tf.dispose([z, w]);
    }
  });

  it('(d) leaks no tensor (values and gradient, tau = 1 and tau != 1)', () => {
    const z = t2(randn(12, 3), 3, 4);
    for (const tau of [1, 0.7]) {
      expectNoLeak(() => logSoftmax(z, tau).dispose());
      expectNoLeak(() => tf.grad((x: tf.Tensor) => tf.sum(logSoftmax(x as tf.Tensor2D, tau)))(z).dispose());
    }
    z.dispose();
  });

  it('(e) rejects temperature <= 0, NaN or infinite, naming the temperature', () => {
    const z = t2([1, 2], 1, 2);
    for (const tau of [0, -1, NaN, Infinity, -Infinity]) {
      expect(() => logSoftmax(z, tau)).toThrow(/logSoftmax: temperature must be a finite number > 0, got/);
    }
    z.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('log1mexp', () => {
  /** float64 log(1 - e^a) (Maechler 2012) and its derivative -1 / expm1(-a). */
  const ref = (a: number) => (a > -LN2 ? Math.log(-Math.expm1(a)) : Math.log1p(-Math.exp(a)));
  const dref = (a: number) => -1 / Math.expm1(-a);

  it('(a) hand-checked values and gradients', () => {
    // a = -ln 2:     log(1 - 1/2) = -ln 2 = -0.6931472;  d/da = -1 / (e^{ln 2} - 1) = -1
    // a = ln(1/4):   log(3/4) = -0.2876821;             d/da = -1 / (4 - 1) = -1/3
    // a = ln(3/4):   log(1/4) = -1.3862944;             d/da = -1 / (4/3 - 1) = -3
    const a = tf.tensor1d([-LN2, Math.log(0.25), Math.log(0.75)]);
    expectAllclose(vals(() => log1mexp(a)), [-0.6931472, -0.2876821, -1.3862944], { rtol: 1e-6 });
    expectAllclose(vals(() => tf.grad((x) => tf.sum(log1mexp(x)))(a)), [-1, -1 / 3, -3], { rtol: 2e-6 });
    a.dispose();
  });

  it('(b) is accurate relative to float64 Math.log1p / Math.expm1 near 0 and for very negative inputs', () => {
    // both sides of the -ln 2 switch; down to -1e4 (value -e^a underflows float32 below about -103)
    const grid = [-1e-29, -1e-20, -1e-12, -1e-7, -1e-4, -0.01, -0.3, -0.69, -0.7, -1, -2, -5, -10, -15, -17, -20, -30, -50, -80, -1e4];
    const a = tf.tensor1d(grid);
    const a32 = a.dataSync();
    const v = vals(() => log1mexp(a));
    const g = vals(() => tf.grad((x) => tf.sum(log1mexp(x)))(a));
    // relative accuracy (atol only below float32's normal range): log1p(-e^a) ~ -e^a must keep its digits at a << 0
    expectAllclose(v, Array.from(a32, ref), { rtol: 2e-6, atol: 1e-37, label: 'log1mexp' });
    expectAllclose(g, Array.from(a32, dref), { rtol: 2e-6, atol: 1e-37, label: 'd log1mexp' });
    a.dispose();
  });

  it('(b) clamps a >= -1e-30 to log(1e-30) = -69.0775528 with zero gradient; a = -inf gives 0', () => {
    const a = tf.tensor1d([0, 1, -1e-31, -Infinity]);
    expectAllclose(vals(() => log1mexp(a)), [-69.0775528, -69.0775528, -69.0775528, 0], { rtol: 1e-6 });
    const g = vals(() => tf.grad((x) => tf.sum(log1mexp(x)))(a));
    expect(Array.from(g, Math.abs)).toEqual([0, 0, 0, 0]);
    a.dispose();
  });

  it('(c) matches the PyTorch float64 values and autograd gradient (rtol 2e-6)', () => {
    const c = casesOf('log1mexp')[0];
    const a = tf.tensor1d(c.a);
    expectAllclose(vals(() => log1mexp(a)), c.value, { rtol: 2e-6, atol: 1e-37, label: 'value' });
    expectAllclose(vals(() => tf.grad((x) => tf.sum(log1mexp(x)))(a)), c.grad, { rtol: 2e-6, atol: 1e-37, label: 'grad' });
    a.dispose();
  });

  it('(d) leaks no tensor (value and gradient)', () => {
    const a = tf.tensor1d([-0.1, -3, 0, -50]);
    expectNoLeak(() => log1mexp(a).dispose());
    expectNoLeak(() => tf.grad((x) => tf.sum(log1mexp(x)))(a).dispose());
    a.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('gatherColumns / tokenLogprobs', () => {
  it('(a) hand-checked gather and a gradient where duplicate ids add', () => {
    // x = [[1, 2, 3], [4, 5, 6]], ids = [[2, 2], [0, 1]] -> [[3, 3], [4, 5]]
    // upstream W = [[1, 10], [100, 1000]]: row 0 column 2 gets 1 + 10 = 11; row 1: column 0 100, column 1 1000
    const x = t2([1, 2, 3, 4, 5, 6], 2, 3);
    const w = t2([1, 10, 100, 1000], 2, 2);
    expect(Array.from(vals(() => gatherColumns(x, [2, 2, 0, 1], 2)))).toEqual([3, 3, 4, 5]);
    expect(Array.from(gradOf((z) => gatherColumns(z, [2, 2, 0, 1], 2), x, w))).toEqual([0, 0, 11, 100, 1000, 0]);
    // tokenLogprobs picks one column per row: tokens [1, 2] -> [2, 6]; its gradient is the one-hot of the tokens
    expect(Array.from(vals(() => tokenLogprobs(x, [1, 2])))).toEqual([2, 6]);
    expect(Array.from(gradOf((z) => tokenLogprobs(z, [1, 2]), x))).toEqual([0, 1, 0, 0, 0, 1]);
    expect(gatherColumns(x, [2, 2, 0, 1], 2).shape).toEqual([2, 2]);
    tf.dispose([x, w]);
  });

  it('(b) the gradient equals a one-hot scatter of the upstream gradient, duplicates summed', () => {
    const rows = 5, vocab = 7, k = 6; // K > V / 2 forces duplicates
    const ids = randInts(rows * k, vocab, 3);
    const x = t2(randn(rows * vocab, 4), rows, vocab);
    const w = t2(randn(rows * k, 5), rows, k);
    const wd = w.dataSync();
    const xd = x.dataSync();
    const expectedGrad = new Float64Array(rows * vocab);
    const expectedVal: number[] = [];
    for (let n = 0; n < rows; n++) {
      for (let j = 0; j < k; j++) {
        expectedGrad[n * vocab + ids[n * k + j]] += wd[n * k + j];
        expectedVal.push(xd[n * vocab + ids[n * k + j]]);
      }
    }
    expect(new Set(Array.from(ids.slice(0, k))).size).toBeLessThan(k); // the first row really has a duplicate
    expect(Array.from(vals(() => gatherColumns(x, ids, k)))).toEqual(expectedVal);
    expectAllclose(gradOf((z) => gatherColumns(z, ids, k), x, w), expectedGrad, { rtol: 1e-6, atol: 1e-7 });
    tf.dispose([x, w]);
  });

  it('(c) matches torch.gather and its autograd gradient (exact up to float32 sums: rtol 1e-6)', () => {
    for (const c of casesOf('gather')) {
      const x = t2(c.x, c.rows, c.cols);
      const w = t2(c.w, c.rows, c.k);
      expectAllclose(vals(() => gatherColumns(x, c.ids, c.k)), c.value, { rtol: 0, atol: 0, label: `value K ${c.k}` });
      expectAllclose(gradOf((z) => gatherColumns(z, c.ids, c.k), x, w), c.grad, { rtol: 1e-6, atol: 1e-7, label: `grad K ${c.k}` });
      if (c.k === 1) {
        const wv = tf.tensor1d(c.w);
        expectAllclose(vals(() => tokenLogprobs(x, c.ids)), c.value, { rtol: 0, atol: 0, label: 'tokenLogprobs' });
        expectAllclose(gradOf((z) => tokenLogprobs(z, c.ids), x, wv), c.grad, { rtol: 1e-6, atol: 1e-7, label: 'tokenLogprobs grad' });
        wv.dispose();
      }
      tf.dispose([x, w]);
    }
  });

  it('(d) leaks no tensor (values and gradients)', () => {
    const x = t2(randn(12, 1), 3, 4);
    expectNoLeak(() => gatherColumns(x, [0, 1, 2, 3, 0, 0], 2).dispose());
    expectNoLeak(() => tf.grad((z: tf.Tensor) => tf.sum(gatherColumns(z as tf.Tensor2D, [0, 1, 2, 3, 0, 0], 2)))(x).dispose());
    expectNoLeak(() => tokenLogprobs(x, [3, 0, 1]).dispose());
    expectNoLeak(() => tf.grad((z: tf.Tensor) => tf.sum(tokenLogprobs(z as tf.Tensor2D, [3, 0, 1])))(x).dispose());
    x.dispose();
  });

  it('(e) rejects wrong id counts, out-of-range, negative, non-integer or NaN ids, and a non-integer K', () => {
    const x = t2(randn(6, 2), 2, 3);
    expect(() => gatherColumns(x, [0, 1, 2], 2)).toThrow(/gatherColumns: ids must hold N \* K = 2 \* 2 = 4 entries, got 3/);
    expect(() => gatherColumns(x, [0, 1, 3, 0], 2)).toThrow(/gatherColumns: ids must hold token ids in \[0, 3\), found 3 at row 1, column 0/);
    expect(() => gatherColumns(x, [0, -1, 2, 0], 2)).toThrow(/gatherColumns: ids .* found -1 at row 0, column 1/);
    expect(() => gatherColumns(x, [0, 1, 2, 0.5], 2)).toThrow(/gatherColumns: ids .* found 0.5 at row 1, column 1/);
    expect(() => gatherColumns(x, [NaN, 1, 2, 0], 2)).toThrow(/gatherColumns: ids .* found NaN at row 0, column 0/);
    expect(() => gatherColumns(x, [0, 1, 2], 1.5)).toThrow(/gatherColumns: k must be an integer/);
    expect(() => tokenLogprobs(x, [0])).toThrow(/tokenLogprobs: tokens must have one id per row \(2\), got 1/);
    expect(() => tokenLogprobs(x, [0, 3])).toThrow(/tokenLogprobs: tokens must hold token ids in \[0, 3\), found 3 at index 1/);
    expect(() => tokenLogprobs(x, [1.5, 0])).toThrow(/tokenLogprobs: tokens .* found 1.5 at index 0/);
    x.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('topKRows / teacherTopK', () => {
  /** Reference: a stable sort of each row by (-value, id). */
  function bruteTopK(values: ArrayLike<number>, rows: number, vocab: number, k: number): number[] {
    const out: number[] = [];
    for (let n = 0; n < rows; n++) {
      const row = Array.from(values).slice(n * vocab, (n + 1) * vocab);
      const order = row.map((_, v) => v).sort((a, b) => (row[b] - row[a]) || a - b);
      out.push(...order.slice(0, k));
    }
    return out;
  }

  it('(a) hand-checked: descending, ties to the lower id, -inf last', () => {
    // row 0 [1, 3, 3, 2]: the two 3s tie -> ids 1, 2;  row 1 [0, 5, 5, 5]: three-way tie -> ids 1, 2
    const r = topKRows([1, 3, 3, 2, 0, 5, 5, 5], 2, 4, 2);
    expect(Array.from(r.ids_NK)).toEqual([1, 2, 1, 2]);
    expect(Array.from(r.values_NK)).toEqual([3, 3, 5, 5]);
    expect([r.rows, r.k]).toEqual([2, 2]);
    // K = V with -inf entries (masked vocabulary): [-inf, 1, -inf, 0] -> 1 (id 1), 0 (id 3), then the -infs by id
    const f = topKRows([-Infinity, 1, -Infinity, 0], 1, 4, 4);
    expect(Array.from(f.ids_NK)).toEqual([1, 3, 0, 2]);
    expect(Array.from(f.values_NK)).toEqual([1, 0, -Infinity, -Infinity]);
  });

  it('(b) a 1-ulp near-tie goes to the larger value, whatever its id', () => {
    const up = Math.fround(1 + 2 ** -23); // the float32 after 1
    const r = topKRows(Float32Array.from([1, 1, up, 1]), 1, 4, 2);
    expect(Array.from(r.ids_NK)).toEqual([2, 0]);
  });

  it('(b) equals a stable sort by (-value, id) for every K in [1, V]; K = 1 is the first argmax, K = V a full sort', () => {
    const rows = 6, vocab = 9;
    const values = Float32Array.from(randInts(rows * vocab, 4, 17)); // values in {0..3}: many ties
    for (let k = 1; k <= vocab; k++) {
      const r = topKRows(values, rows, vocab, k);
      expect(Array.from(r.ids_NK), `K ${k}`).toEqual(bruteTopK(values, rows, vocab, k));
      expect(Array.from(r.values_NK), `K ${k} values`).toEqual(Array.from(r.ids_NK, (id, i) => values[Math.floor(i / k) * vocab + id]));
    }
    const argmax = topKRows(values, rows, vocab, 1);
    for (let n = 0; n < rows; n++) {
      const row = Array.from(values.slice(n * vocab, (n + 1) * vocab));
      expect(argmax.ids_NK[n]).toBe(row.indexOf(Math.max(...row)));
    }
    const full = topKRows(values, rows, vocab, vocab);
    for (let n = 0; n < rows; n++) expect(new Set(Array.from(full.ids_NK.slice(n * vocab, (n + 1) * vocab))).size).toBe(vocab);
    // continuous values (no ties) as well
    const cont = randn(rows * vocab, 19);
    expect(Array.from(topKRows(cont, rows, vocab, 4).ids_NK)).toEqual(bruteTopK(cont, rows, vocab, 4));
  });

  it('(b) teacherTopK reads the tensor and gives the same support as topKRows', () => {
    const t = t2(randn(4 * 10, 23), 4, 10);
    const a = teacherTopK(t, 3);
    const b = topKRows(t.dataSync(), 4, 10, 3);
    expect(Array.from(a.ids_NK)).toEqual(Array.from(b.ids_NK));
    expect(Array.from(a.values_NK)).toEqual(Array.from(b.values_NK));
    expectNoLeak(() => teacherTopK(t, 3));
    t.dispose();
  });

  it('(c) matches the reference order on extremes, ties, 1-ulp near-ties and a uniform row, K = 1, 3, V', () => {
    for (const c of casesOf('topk')) {
      const r = topKRows(Float32Array.from(c.values), c.rows, c.cols, c.k);
      expect(Array.from(r.ids_NK), `K ${c.k}`).toEqual(c.ids);
      expect(Array.from(r.values_NK), `K ${c.k}`).toEqual(c.topValues);
      const t = t2(c.values, c.rows, c.cols);
      expect(Array.from(teacherTopK(t, c.k).ids_NK)).toEqual(c.ids);
      t.dispose();
    }
  });

  it('(e) rejects K outside [1, V] or non-integer, and values of the wrong length', () => {
    for (const k of [0, 5, 1.5, NaN, -1]) {
      expect(() => topKRows([1, 2, 3, 4], 1, 4, k)).toThrow(/topKRows: k must be an integer in \[1, 4\], got/);
    }
    const t = t2([1, 2, 3, 4], 1, 4);
    expect(() => teacherTopK(t, 0)).toThrow(/teacherTopK: k must be an integer in \[1, 4\], got 0/);
    expect(() => teacherTopK(t, 5)).toThrow(/teacherTopK: k must be an integer in \[1, 4\], got 5/);
    t.dispose();
    expect(() => topKRows([1, 2, 3], 2, 2, 1)).toThrow(/topKRows: values must have length 4, got 3/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('normaliseOnSupport', () => {
  it('(a) hand-checked none / both / tailBucket', () => {
    // p = [1/2, 1/4, 1/4], support = the first two: log p(S) = [ln 1/2, ln 1/4] = [-0.6931472, -1.3862944]
    // both: renormalised by 3/4 -> [ln 2/3, ln 1/3] = [-0.4054651, -1.0986123]
    // tailBucket: plus log(1 - 3/4) = ln 1/4 = -1.3862944
    const lp = t2([Math.log(0.5), Math.log(0.25)], 1, 2);
    expectAllclose(vals(() => normaliseOnSupport(lp, 'none')), [-0.6931472, -1.3862944], { rtol: 1e-6 });
    expectAllclose(vals(() => normaliseOnSupport(lp, 'both')), [-0.4054651, -1.0986123], { rtol: 1e-6 });
    expectAllclose(vals(() => normaliseOnSupport(lp, 'tailBucket')), [-0.6931472, -1.3862944, -1.3862944], { rtol: 1e-6 });
    lp.dispose();
  });

  it("(b) 'both' rows sum to 1 and 'tailBucket' rows (K + 1 entries) sum to 1, for every K < V", () => {
    const rows = 4, vocab = 9;
    const z = t2(randn(rows * vocab, 29, 2), rows, vocab);
    const lp = logSoftmax(z);
    for (let k = 1; k <= vocab; k++) {
      const s = teacherTopK(lp, k);
      const both = vals(() => tf.sum(tf.exp(normaliseOnSupport(gatherColumns(lp, s.ids_NK, k), 'both')), 1));
      expectAllclose(both, new Array(rows).fill(1), { atol: 2e-6, label: `both K ${k}` });
      const none = vals(() => normaliseOnSupport(gatherColumns(lp, s.ids_NK, k), 'none'));
      expect(Array.from(none)).toEqual(Array.from(vals(() => gatherColumns(lp, s.ids_NK, k)))); // unchanged
      if (k < vocab) {
        const tb = normaliseOnSupport(gatherColumns(lp, s.ids_NK, k), 'tailBucket');
        expect(tb.shape).toEqual([rows, k + 1]);
        expectAllclose(vals(() => tf.sum(tf.exp(tb), 1)), new Array(rows).fill(1), { atol: 2e-6, label: `tail K ${k}` });
        tb.dispose();
      }
    }
    tf.dispose([z, lp]);
  });

  it("(b) K = 1 'both' is identically 0 with zero gradient", () => {
    const z = t2(randn(3 * 5, 31), 3, 5);
    const ids = [4, 0, 2];
    expect(Array.from(vals(() => normaliseOnSupport(gatherColumns(logSoftmax(z), ids, 1), 'both')))).toEqual([0, 0, 0]);
    const g = gradOf((x) => normaliseOnSupport(gatherColumns(logSoftmax(x), ids, 1), 'both'), z, t2([1, 2, 3], 3, 1));
    expect(Math.max(...Array.from(g, Math.abs))).toBe(0);
    z.dispose();
  });

  it("(b) K = V 'tailBucket': the empty tail is clamped (not -inf) and the gradient stays finite", () => {
    // The support's float32 logsumexp is 0 up to rounding. log1mexp clamps it to <= -1e-30, so the tail is
    // log(1e-30) = -69.0775528 when the support sums to >= 1 in float32 (then no gradient flows through it), and
    // otherwise the log of the rounding residual (around log 6e-8 = -16.6): never -inf, always negligible mass.
    const exact = t2([Math.log(0.5), Math.log(0.5)], 1, 2); // sums to exactly 1
    expectAllclose(vals(() => normaliseOnSupport(exact, 'tailBucket')), [-LN2, -LN2, -69.0775528], { rtol: 1e-6 });
    exact.dispose();
    const rows = 6, vocab = 8;
    const z = t2(randn(rows * vocab, 37, 3), rows, vocab);
    const ids = topKRows(z.dataSync(), rows, vocab, vocab).ids_NK;
    const f = (x: tf.Tensor2D) => normaliseOnSupport(gatherColumns(logSoftmax(x), ids, vocab), 'tailBucket');
    const out = vals(() => f(z));
    for (let n = 0; n < rows; n++) {
      const tail = out[n * (vocab + 1) + vocab];
      expect(tail, `row ${n}`).toBeLessThan(-13); // mass < 2.3e-6
      expect(tail, `row ${n}`).toBeGreaterThanOrEqual(-69.08);
    }
    expectAllclose(vals(() => tf.sum(tf.exp(f(z)), 1)), new Array(rows).fill(1), { atol: 3e-6 });
    const w = t2(randn(rows * (vocab + 1), 38), rows, vocab + 1);
    const g = gradOf(f, z, w);
    expect(g.every(Number.isFinite)).toBe(true);
    tf.dispose([z, w]);
  });

  it('(c) matches PyTorch through log_softmax(z / tau) and the teacher top-K gather, with gradients (rtol 1e-5, atol 1e-5)', () => {
    // 'both' is invariant to a per-row shift, so it may be fed the gathered z / tau instead of log-probs (as gkd.ts
    // does). On the +-1e4 rows that route is required at this tolerance: float32 log p = z / tau - lse rounds to
    // ~2e-3 at |log p| ~ 2e4, and renormalising a support of mass e^-2e4 keeps that absolute error.
    for (const c of casesOf('support')) {
      const z = t2(c.logits, c.rows, c.cols);
      const width = c.norm === 'tailBucket' ? c.k + 1 : c.k;
      const w = t2(c.w, c.rows, width);
      const viaLogp = (x: tf.Tensor2D) => normaliseOnSupport(gatherColumns(logSoftmax(x, c.tau), c.ids, c.k), c.norm);
      const viaLogits = (x: tf.Tensor2D) => normaliseOnSupport(gatherColumns(tf.div(x, c.tau) as tf.Tensor2D, c.ids, c.k), c.norm);
      const routes = c.norm !== 'both' ? [viaLogp] : c.set === 'mixed' ? [viaLogits] : [viaLogp, viaLogits];
      for (const f of routes) {
        const label = `${c.set} ${c.norm} K ${c.k} tau ${c.tau}${f === viaLogits ? ' (logits)' : ''}`;
        expectAllclose(vals(() => f(z)), c.value, { rtol: 1e-5, atol: 1e-5, label });
        expectAllclose(gradOf(f, z, w), c.grad, { rtol: 1e-4, atol: 1e-5, label: `${label} grad` });
      }
      tf.dispose([z, w]);
    }
  });

  it('(d) leaks no tensor (values and gradients, every norm)', () => {
    const z = t2(randn(12, 41), 3, 4);
    for (const norm of SUPPORT_NORMS) {
      const lp = logSoftmax(z);
      const g = gatherColumns(lp, [0, 1, 2, 3, 1, 0], 2);
      expectNoLeak(() => normaliseOnSupport(g, norm).dispose());
      expectNoLeak(() =>
        tf.grad((x: tf.Tensor) => tf.sum(normaliseOnSupport(gatherColumns(logSoftmax(x as tf.Tensor2D), [0, 1, 2, 3, 1, 0], 2), norm)))(z).dispose(),
      );
      tf.dispose([lp, g]);
    }
    z.dispose();
  });

  it('(e) rejects an unknown norm, naming the argument', () => {
    const lp = t2([-1, -2], 1, 2);
    expect(() => normaliseOnSupport(lp, 'tail' as SupportNorm)).toThrow(/normaliseOnSupport: norm must be one of none, both, tailBucket, got 'tail'/);
    lp.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('entropy', () => {
  it('(a) hand-checked: p = [1/2, 1/4, 1/4] and a uniform row of 4', () => {
    // H = 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2 = 1.0397208;  uniform over 4: ln 4 = 1.3862944
    const lp = t2([Math.log(0.5), Math.log(0.25), Math.log(0.25)], 1, 3);
    const u = t2([-Math.log(4), -Math.log(4), -Math.log(4), -Math.log(4)], 1, 4);
    expectAllclose(vals(() => entropy(lp)), [1.0397208], { rtol: 1e-6 });
    expectAllclose(vals(() => entropy(u)), [1.3862944], { rtol: 1e-6 });
    tf.dispose([lp, u]);
  });

  it('(b) uniform gives log V, a one-hot ~ 0, anything else lies in [0, log V]', () => {
    for (const vocab of [2, 7, 100, 1000]) {
      const u = tf.tidy(() => logSoftmax(tf.zeros([2, vocab]) as tf.Tensor2D));
      expectAllclose(vals(() => entropy(u)), [Math.log(vocab), Math.log(vocab)], { rtol: 1e-5, label: `V ${vocab}` });
      u.dispose();
    }
    const oneHot = t2([0, -1e4, -1e4, -1e4, -1e4, 0, -1e4, -1e4], 2, 4); // logits; log p = [0, -1e4, ...]
    const h1 = vals(() => entropy(logSoftmax(oneHot)));
    expect(Math.max(...Array.from(h1, Math.abs))).toBeLessThan(1e-6);
    const lp = randLogp(8, 6, 43, 3);
    const h = vals(() => entropy(lp));
    expect(h.every((x) => x >= -1e-6 && x <= Math.log(6) + 1e-6)).toBe(true);
    tf.dispose([oneHot, lp]);
  });

  it('(c) matches PyTorch -sum p log p of log_softmax(z / tau) and its gradient (rtol 1e-5, atol 1e-5)', () => {
    for (const c of casesOf('entropy')) {
      const z = t2(c.logits, c.rows, c.cols);
      const cn = tf.tensor1d(c.c);
      expectAllclose(vals(() => entropy(logSoftmax(z, c.tau))), c.value, { rtol: 1e-5, atol: 1e-5, label: `H tau ${c.tau}` });
      expectAllclose(gradOf((x) => entropy(logSoftmax(x, c.tau)), z, cn), c.grad, { rtol: 1e-4, atol: 1e-5, label: `grad tau ${c.tau}` });
      tf.dispose([z, cn]);
    }
  });

  it('(d) leaks no tensor (value and gradient)', () => {
    const lp = randLogp(3, 5, 47);
    expectNoLeak(() => entropy(lp).dispose());
    expectNoLeak(() => tf.grad((x: tf.Tensor) => tf.sum(entropy(x as tf.Tensor2D)))(lp).dispose());
    lp.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('klTeacherStudent / klStudentTeacher / jsd', () => {
  const logpOf = (p: number[][]) => t2(p.flat().map(Math.log), p.length, p[0].length);

  it('(a) hand-checked KLs and JSD on pT = [1/2, 1/2], pS = [1/4, 3/4]', () => {
    // KL(T||S) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3) = 0.1438410
    // KL(S||T) = 1/4 ln(1/2) + 3/4 ln(3/2) = -0.1732868 + 0.3040988 = 0.1308120
    // beta = 1/2: M = [3/8, 5/8]; KL(T||M) = 1/2 ln(4/3) + 1/2 ln(4/5) = 1/2 ln(16/15) = 0.0322693
    //   KL(S||M) = 1/4 ln(2/3) + 3/4 ln(6/5) = -0.1013663 + 0.1367412 = 0.0353749; jsd = (0.0322693 + 0.0353749) / 2 = 0.0338221
    // beta = 0.1: M = [0.275, 0.725]: 0.1 KL(T||M) + 0.9 KL(S||M) = 0.1 * 0.1147815 + 0.9 * 0.0014156 = 0.0127524
    const T = logpOf([[0.5, 0.5]]);
    const S = logpOf([[0.25, 0.75]]);
    expectAllclose(vals(() => klTeacherStudent(T, S)), [0.143841], { rtol: 2e-6 });
    expectAllclose(vals(() => klStudentTeacher(T, S)), [0.130812], { rtol: 2e-6 });
    expectAllclose(vals(() => jsd(T, S, 0.5)), [0.0338221], { rtol: 5e-6 });
    expectAllclose(vals(() => jsd(T, S, 0.1)), [0.0127524], { rtol: 5e-6 });
    tf.dispose([T, S]);
  });

  it('(a) disjoint supports reach the bound: jsd(beta) = H_b(beta), e.g. ln 2 = 0.6931472 at beta = 1/2', () => {
    // T = one-hot at 0, S = one-hot at 1 (logits +-1e4): M(0) = beta, M(1) = 1 - beta, so
    // KL(T||M) = ln(1 / beta), KL(S||M) = ln(1 / (1 - beta)) and jsd = beta ln(1/beta) + (1 - beta) ln(1/(1 - beta))
    const T = tf.tidy(() => logSoftmax(t2([1e4, -1e4, -1e4], 1, 3)));
    const S = tf.tidy(() => logSoftmax(t2([-1e4, 1e4, -1e4], 1, 3)));
    expectAllclose(vals(() => jsd(T, S, 0.5)), [0.6931472], { rtol: 1e-6 });
    for (const beta of [0.01, 0.1, 0.3, 0.9, 0.99]) {
      expectAllclose(vals(() => jsd(T, S, beta)), [binaryEntropy(beta)], { rtol: 1e-5, label: `beta ${beta}` });
    }
    // so a bound min(ln 1/beta, ln 1/(1 - beta)) would be wrong for this weighted JSD: at beta = 0.1 it is
    // ln(10/9) = 0.1053605, while the disjoint pair reaches H_b(0.1) = 0.3250830
    expect(vals(() => jsd(T, S, 0.1))[0]).toBeGreaterThan(Math.min(Math.log(10), Math.log(10 / 9)) + 0.2);
    tf.dispose([T, S]);
  });

  it('(b) beta = 0 and beta = 1 are bitwise the two KLs', () => {
    const T = randLogp(4, 5, 2);
    const S = randLogp(4, 5, 3);
    expect(Array.from(vals(() => jsd(T, S, 0)))).toEqual(Array.from(vals(() => klTeacherStudent(T, S))));
    expect(Array.from(vals(() => jsd(T, S, 1)))).toEqual(Array.from(vals(() => klStudentTeacher(T, S))));
    // and so are their gradients w.r.t. the student log-probs
    expect(Array.from(gradOf((x) => jsd(T, x, 0), S))).toEqual(Array.from(gradOf((x) => klTeacherStudent(T, x), S)));
    expect(Array.from(gradOf((x) => jsd(T, x, 1), S))).toEqual(Array.from(gradOf((x) => klStudentTeacher(T, x), S)));
    tf.dispose([T, S]);
  });

  it('(b) jsd is symmetric under (beta, T, S) -> (1 - beta, S, T); the KLs swap under T <-> S', () => {
    const T = randLogp(5, 6, 5, 2);
    const S = randLogp(5, 6, 6, 2);
    for (const beta of [0, 0.1, 0.25, 0.5, 0.9, 1]) {
      expectAllclose(vals(() => jsd(T, S, beta)), vals(() => jsd(S, T, 1 - beta)), { rtol: 1e-6, atol: 1e-7, label: `beta ${beta}` });
    }
    expect(Array.from(vals(() => klTeacherStudent(T, S)))).toEqual(Array.from(vals(() => klStudentTeacher(S, T))));
    tf.dispose([T, S]);
  });

  it('(b) 0 <= jsd(beta) <= H_b(beta) <= ln 2 and KL >= 0, on random, wide and extreme rows', () => {
    // M >= beta pT pointwise, so pT / M <= 1 / beta and KL(T||M) <= ln(1/beta); likewise KL(S||M) <= ln(1/(1-beta)).
    // Hence jsd <= beta ln(1/beta) + (1 - beta) ln(1/(1-beta)) = H_b(beta) <= ln 2 (equality for disjoint supports).
    const c = casesOf('divergence')[0];
    const sets: [tf.Tensor2D, tf.Tensor2D][] = [
      [randLogp(6, 8, 7), randLogp(6, 8, 8)],
      [randLogp(6, 8, 9, 6), randLogp(6, 8, 10, 6)],
      [logSoftmax(t2(c.teacher, c.rows, c.cols)), logSoftmax(t2(c.logits, c.rows, c.cols))], // +-1e4 rows
    ];
    for (const [T, S] of sets) {
      for (const beta of [0.01, 0.1, 0.5, 0.9, 0.99]) {
        const j = vals(() => jsd(T, S, beta));
        for (const x of j) {
          expect(x).toBeGreaterThanOrEqual(-1e-6);
          expect(x).toBeLessThanOrEqual(binaryEntropy(beta) * (1 + 1e-5) + 1e-6);
        }
      }
      for (const x of vals(() => klTeacherStudent(T, S))) expect(x).toBeGreaterThanOrEqual(-1e-6);
      for (const x of vals(() => klStudentTeacher(T, S))) expect(x).toBeGreaterThanOrEqual(-1e-6);
    }
    tf.dispose(sets.flat());
  });

  it('(b) small beta: jsd / beta -> KL(T||S) (error O(beta)); beta -> 1: jsd / (1 - beta) -> KL(S||T)', () => {
    // JSD_beta = beta KL(T||S) + O(beta^2) (expand log M = log pS + log(1 + beta (pT - pS) / pS)); so the error of
    // jsd / beta shrinks about tenfold per tenfold smaller beta. Mirror image at beta -> 1.
    const T = randLogp(4, 6, 11);
    const S = randLogp(4, 6, 12);
    const kts = vals(() => klTeacherStudent(T, S));
    const kst = vals(() => klStudentTeacher(T, S));
    const err = (beta: number, ref: Float32Array, scale: number) =>
      Array.from(vals(() => jsd(T, S, beta)), (j, i) => Math.abs(j / scale - ref[i]));
    const e2 = err(1e-2, kts, 1e-2);
    const e3 = err(1e-3, kts, 1e-3);
    const f2 = err(1 - 1e-2, kst, 1e-2);
    const f3 = err(1 - 1e-3, kst, 1e-3);
    for (let n = 0; n < 4; n++) {
      expect(e3[n] / kts[n], `row ${n} relative error at beta 1e-3`).toBeLessThan(0.02);
      expect(e3[n], `row ${n}`).toBeLessThan(0.2 * e2[n] + 1e-4); // linear convergence (float32 floor ~1e-4)
      expect(f3[n] / kst[n], `row ${n} relative error at beta 1 - 1e-3`).toBeLessThan(0.02);
      expect(f3[n], `row ${n}`).toBeLessThan(0.2 * f2[n] + 1e-4);
    }
    tf.dispose([T, S]);
  });

  it('(b) identical inputs give 0 for every divergence, and zero gradient', () => {
    const P = randLogp(4, 7, 13, 3);
    expect(Array.from(vals(() => klTeacherStudent(P, P)))).toEqual([0, 0, 0, 0]);
    expect(Array.from(vals(() => klStudentTeacher(P, P)))).toEqual([0, 0, 0, 0]);
    for (const beta of [0.1, 0.5, 0.9]) {
      expectAllclose(vals(() => jsd(P, P, beta)), [0, 0, 0, 0], { atol: 1e-6, label: `jsd ${beta}` });
      expectAllclose(gradOf((x) => jsd(P, x, beta), P), new Array(28).fill(0), { atol: 1e-6 });
    }
    P.dispose();
  });

  it('(b) gradients w.r.t. the student log-probs have the closed forms -pT, pS (log pS - log pT + 1), (1 - beta) pS (log pS - log M)', () => {
    const T = randLogp(3, 5, 14);
    const S = randLogp(3, 5, 15);
    const t = T.dataSync(), s = S.dataSync();
    expectAllclose(gradOf((x) => klTeacherStudent(T, x), S), Array.from(t, (v) => -Math.exp(v)), { rtol: 1e-6, atol: 1e-7 });
    expectAllclose(gradOf((x) => klStudentTeacher(T, x), S), Array.from(s, (v, i) => Math.exp(v) * (v - t[i] + 1)), { rtol: 1e-5, atol: 1e-6 });
    for (const beta of [0.1, 0.5, 0.9]) {
      // Liger's dX for the generalised JSD (methods.md section 3): the M-dependence cancels
      const expected = Array.from(s, (v, i) => (1 - beta) * Math.exp(v) * (v - Math.log(beta * Math.exp(t[i]) + (1 - beta) * Math.exp(v))));
      expectAllclose(gradOf((x) => jsd(T, x, beta), S), expected, { rtol: 1e-5, atol: 1e-6, label: `beta ${beta}` });
    }
    tf.dispose([T, S]);
  });

  it('(c) match PyTorch values and gradients w.r.t. logits and log-probs: tau 0.5/1/2, beta 0/0.1/0.5/0.9/1, +-1e4 rows', () => {
    // values up to 2e4 (the +-1e4 rows): rtol 1e-5 is a few float32 ulps; gradients rtol 1e-4, atol 1e-5
    for (const c of casesOf('divergence')) {
      const label = `${c.name} beta ${c.beta} tau ${c.tau}`;
      const T = tf.tidy(() => logSoftmax(t2(c.teacher, c.rows, c.cols), c.tau));
      const z = t2(c.logits, c.rows, c.cols);
      const cn = tf.tensor1d(c.c);
      const d = (lt: tf.Tensor2D, ls: tf.Tensor2D) =>
        c.name === 'klTeacherStudent' ? klTeacherStudent(lt, ls) : c.name === 'klStudentTeacher' ? klStudentTeacher(lt, ls) : jsd(lt, ls, c.beta as number);
      expectAllclose(vals(() => d(T, logSoftmax(z, c.tau))), c.value, { rtol: 1e-5, atol: 1e-5, label });
      expectAllclose(gradOf((x) => d(T, logSoftmax(x, c.tau)), z, cn), c.gradLogits, { rtol: 1e-4, atol: 1e-5, label: `${label} d/dz` });
      const S = logSoftmax(z, c.tau);
      expectAllclose(gradOf((x) => d(T, x), S, cn), c.gradLogp, { rtol: 1e-4, atol: 1e-5, label: `${label} d/dlogp` });
      tf.dispose([T, z, cn, S]);
    }
  });

  it('(d) leaks no tensor (values and gradients, endpoints and interior)', () => {
    const T = randLogp(3, 4, 16);
    const S = randLogp(3, 4, 17);
    const ops: [string, (x: tf.Tensor2D) => tf.Tensor][] = [
      ['klTeacherStudent', (x) => klTeacherStudent(T, x)],
      ['klStudentTeacher', (x) => klStudentTeacher(T, x)],
      ...[0, 0.3, 1].map((b) => [`jsd ${b}`, (x: tf.Tensor2D) => jsd(T, x, b)] as [string, (x: tf.Tensor2D) => tf.Tensor]),
    ];
    for (const [, f] of ops) {
      expectNoLeak(() => f(S).dispose());
      expectNoLeak(() => tf.grad((x: tf.Tensor) => tf.sum(f(x as tf.Tensor2D)))(S).dispose());
    }
    tf.dispose([T, S]);
  });

  it('(e) rejects beta outside [0, 1] or NaN, and teacher/student shapes that differ', () => {
    const T = randLogp(2, 3, 18);
    const S = randLogp(2, 3, 19);
    const S4 = randLogp(2, 4, 20);
    const S1 = randLogp(1, 3, 21);
    for (const beta of [-0.1, 1.1, NaN, Infinity]) {
      expect(() => jsd(T, S, beta)).toThrow(/jsd: beta must be a number in \[0, 1\], got/);
    }
    expect(() => klTeacherStudent(T, S4)).toThrow(/klTeacherStudent: teacher and student log-probs must have the same shape, got \[2,3\] and \[2,4\]/);
    expect(() => klStudentTeacher(T, S1)).toThrow(/klStudentTeacher: teacher and student log-probs must have the same shape, got \[2,3\] and \[1,3\]/);
    for (const beta of [0, 0.5, 1]) {
      expect(() => jsd(T, S4, beta)).toThrow(/jsd: teacher and student log-probs must have the same shape/);
    }
    tf.dispose([T, S, S4, S1]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('f-divergences (fdivergences.ts)', () => {
  const names = F_DIVERGENCES;
  const apply = (name: FDivergenceName, which: 'f' | 'uFprime' | 'weight', logu: number[]) => {
    const x = tf.tensor1d(logu);
    const out = vals(() => fDivergence(name)[which](x));
    x.dispose();
    return out;
  };

  it('(a) hand-checked f, u f\'(u) and w_f at u = 2 (log u = ln 2)', () => {
    // reverseKL: f = -ln 2 = -0.6931472, u f' = -1, w = ln 2 - 1 = -0.3068528
    // forwardKL: f = 2 ln 2 = 1.3862944, u f' = 2 (ln 2 + 1) = 3.3862944, w = u = 2
    // jsd: f = 1/2 [2 ln 2 - 3 ln(3/2)] = 0.0849495, u f' = 1/2 * 2 [ln 2 - ln(3/2)] = ln(4/3) = 0.2876821,
    //      w = 1/2 ln(3/2) = 0.2027326 (= -0.0849495 + 0.2876821)
    // totalVariation: f = 1/2 |2 - 1| = 0.5, u f' = 1/2 * 2 = 1, w = 0.5
    // chiSquared: f = (2 - 1)^2 = 1, u f' = 2 * 2 * (2 - 1) = 4, w = u^2 - 1 = 3
    // hellinger: f = (sqrt 2 - 1)^2 = 3 - 2 sqrt 2 = 0.1715729, u f' = 2 - sqrt 2 = 0.5857864, w = sqrt 2 - 1 = 0.4142136
    const expected: Record<FDivergenceName, [number, number, number]> = {
      reverseKL: [-0.6931472, -1, -0.3068528],
      forwardKL: [1.3862944, 3.3862944, 2],
      jsd: [0.0849495, 0.2876821, 0.2027326],
      totalVariation: [0.5, 1, 0.5],
      chiSquared: [1, 4, 3],
      hellinger: [0.1715729, 0.5857864, 0.4142136],
    };
    for (const name of names) {
      const [f, uf, w] = expected[name];
      expectAllclose(apply(name, 'f', [LN2]), [f], { rtol: 5e-6, label: `${name} f` });
      expectAllclose(apply(name, 'uFprime', [LN2]), [uf], { rtol: 5e-6, label: `${name} uf'` });
      expectAllclose(apply(name, 'weight', [LN2]), [w], { rtol: 5e-6, label: `${name} w` });
      const x = tf.tensor1d([LN2]);
      expectAllclose(vals(() => stopGradAdvantage(name, x)), [-f], { rtol: 5e-6, label: `${name} -f` });
      expectAllclose(vals(() => unbiasedWeight(name, x)), [w], { rtol: 5e-6, label: `${name} w_f` });
      x.dispose();
    }
  });

  it('(b) at u = 1 every f is 0; unbiasedWeight = -f + u f\' for moderate log u; stopGradAdvantage = -f', () => {
    const grid = [-5, -2, -0.5, -0.1, 0.1, 0.5, 2, 5];
    for (const name of names) {
      expectAllclose(apply(name, 'f', [0]), [0], { atol: 1e-7, label: `${name} f(1)` });
      const f = apply(name, 'f', grid);
      const uf = apply(name, 'uFprime', grid);
      const x = tf.tensor1d(grid);
      expectAllclose(vals(() => unbiasedWeight(name, x)), Array.from(f, (v, i) => -v + uf[i]), { rtol: 1e-5, atol: 2e-6, label: name });
      expectAllclose(vals(() => stopGradAdvantage(name, x)), Array.from(f, (v) => -v), { rtol: 0, atol: 0, label: name });
      x.dispose();
    }
  });

  it('(b) the closed-form weights stay finite and take their limits at extreme log u (|log u| = 30, 80)', () => {
    // limits of w_f: reverseKL log u - 1; forwardKL u; jsd 1/2 (log u - ln 2) as u -> inf and -1/2 ln 2 as u -> 0;
    // totalVariation +-1/2; chiSquared u^2 - 1 (-> -1); hellinger sqrt(u) - 1 (-> -1)
    const grid = [-80, -30, 30, 80];
    const expected: Record<FDivergenceName, number[]> = {
      reverseKL: [-81, -31, 29, 79],
      forwardKL: grid.map(Math.exp),
      jsd: [-LN2 / 2, -LN2 / 2, (30 - LN2) / 2, (80 - LN2) / 2],
      totalVariation: [-0.5, -0.5, 0.5, 0.5],
      chiSquared: [-1, -1, Math.exp(60), Infinity], // e^160 overflows float32 (the true value is not representable)
      hellinger: [-1, Math.expm1(-15), Math.expm1(15), Math.expm1(40)],
    };
    for (const name of names) {
      expectAllclose(apply(name, 'weight', grid), expected[name], { rtol: 1e-5, atol: 1e-6, label: name });
    }
  });

  it('(b) fDivergenceRows: reverseKL = KL(S||T), forwardKL = KL(T||S), jsd = jsd(0.5); chi^2, Hellinger, TV = direct sums', () => {
    const T = randLogp(5, 8, 51);
    const S = randLogp(5, 8, 52);
    const tol = { rtol: 1e-5, atol: 1e-6 };
    expectAllclose(vals(() => fDivergenceRows('reverseKL', T, S)), vals(() => klStudentTeacher(T, S)), { ...tol, label: 'rkl' });
    expectAllclose(vals(() => fDivergenceRows('forwardKL', T, S)), vals(() => klTeacherStudent(T, S)), { ...tol, label: 'fkl' });
    expectAllclose(vals(() => fDivergenceRows('jsd', T, S)), vals(() => jsd(T, S, 0.5)), { ...tol, label: 'jsd' });
    const pt = Array.from(T.dataSync(), Math.exp);
    const ps = Array.from(S.dataSync(), Math.exp);
    const rowSum = (term: (a: number, b: number) => number) =>
      [0, 1, 2, 3, 4].map((n) => pt.slice(n * 8, n * 8 + 8).reduce((s, a, v) => s + term(a, ps[n * 8 + v]), 0));
    expectAllclose(vals(() => fDivergenceRows('chiSquared', T, S)), rowSum((a, b) => (a - b) ** 2 / b), { ...tol, label: 'chi2' });
    expectAllclose(vals(() => fDivergenceRows('hellinger', T, S)), rowSum((a, b) => (Math.sqrt(a) - Math.sqrt(b)) ** 2), { ...tol, label: 'hellinger' });
    expectAllclose(vals(() => fDivergenceRows('totalVariation', T, S)), rowSum((a, b) => 0.5 * Math.abs(a - b)), { ...tol, label: 'tv' });
    for (const name of names) {
      expectAllclose(vals(() => fDivergenceRows(name, S, S)), [0, 0, 0, 0, 0], { atol: 1e-6, label: `${name} identical` });
      for (const x of vals(() => fDivergenceRows(name, T, S))) expect(x, name).toBeGreaterThanOrEqual(-1e-6);
    }
    tf.dispose([T, S]);
  });

  it('(c) f, u f\' (PyTorch autograd) and w_f match on log u in [-20, 20] (rtol 2e-5, atol 1e-6)', () => {
    // f at |log u| = 20 cancels (jsd: u ln u - (1 + u) ln((1 + u) / 2), about 30 : 1), hence rtol 2e-5, not 1e-5
    for (const c of casesOf('fscalar')) {
      const name = c.name as FDivergenceName;
      expectAllclose(apply(name, 'f', c.logu), c.f, { rtol: 2e-5, atol: 1e-6, label: `${name} f` });
      expectAllclose(apply(name, 'uFprime', c.logu), c.uFprime, { rtol: 2e-5, atol: 1e-6, label: `${name} uf'` });
      expectAllclose(apply(name, 'weight', c.logu), c.weight, { rtol: 2e-5, atol: 1e-6, label: `${name} w` });
      const x = tf.tensor1d(c.logu);
      expectAllclose(vals(() => unbiasedWeight(name, x)), c.weight, { rtol: 2e-5, atol: 1e-6, label: `${name} unbiasedWeight` });
      expectAllclose(vals(() => stopGradAdvantage(name, x)), c.f.map((v) => -v), { rtol: 2e-5, atol: 1e-6, label: `${name} -f` });
      x.dispose();
    }
  });

  it('(c) fDivergenceRows = sum pS f(pT / pS) and its gradient w.r.t. the student logits match PyTorch (rtol 1e-5 / 1e-4)', () => {
    for (const c of casesOf('frows')) {
      const name = c.name as FDivergenceName;
      const T = tf.tidy(() => logSoftmax(t2(c.teacher, c.rows, c.cols), c.tau));
      const z = t2(c.logits, c.rows, c.cols);
      const cn = tf.tensor1d(c.c);
      const f = (x: tf.Tensor2D) => fDivergenceRows(name, T, logSoftmax(x, c.tau));
      expectAllclose(vals(() => f(z)), c.value, { rtol: 1e-5, atol: 1e-6, label: `${name} tau ${c.tau}` });
      expectAllclose(gradOf(f, z, cn), c.grad, { rtol: 1e-4, atol: 1e-5, label: `${name} tau ${c.tau} grad` });
      tf.dispose([T, z, cn]);
    }
  });

  it('(d) leaks no tensor (f, uFprime, weight, advantages, rows and their gradients)', () => {
    const x = tf.tensor1d([-3, -0.2, 0, 0.7, 4]);
    const T = randLogp(2, 4, 53);
    const S = randLogp(2, 4, 54);
    for (const name of names) {
      const d = fDivergence(name);
      expectNoLeak(() => d.f(x).dispose());
      expectNoLeak(() => d.uFprime(x).dispose());
      expectNoLeak(() => d.weight(x).dispose());
      expectNoLeak(() => stopGradAdvantage(name, x).dispose());
      expectNoLeak(() => unbiasedWeight(name, x).dispose());
      expectNoLeak(() => fDivergenceRows(name, T, S).dispose());
      expectNoLeak(() => tf.grad((s: tf.Tensor) => tf.sum(fDivergenceRows(name, T, s as tf.Tensor2D)))(S).dispose());
    }
    tf.dispose([x, T, S]);
  });

  it('(e) rejects an unknown name and teacher/student shapes that differ', () => {
    const T = randLogp(2, 3, 55);
    const S1 = randLogp(1, 3, 56);
    const x = tf.tensor1d([0]);
    expect(() => fDivergence('kl' as FDivergenceName)).toThrow(/fDivergence: name must be one of reverseKL, forwardKL, jsd, totalVariation, chiSquared, hellinger, got 'kl'/);
    expect(() => stopGradAdvantage('js' as FDivergenceName, x)).toThrow(/fDivergence: name must be one of/);
    expect(() => fDivergenceRows('chiSquared', T, S1)).toThrow(/fDivergenceRows: teacher and student log-probs must have the same shape, got \[2,3\] and \[1,3\]/);
    tf.dispose([T, S1, x]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
describe('validate.ts helpers', () => {
  it('assertShape accepts matching shapes (with -1 wildcards) and names op, argument and both shapes', () => {
    expect(() => assertShape('op', 'x', [2, 5], [2, -1])).not.toThrow();
    expect(() => assertShape('op', 'x', [3], [2, -1])).toThrow(/op: x must have shape \[2, \*\], got \[3\]/);
    expect(() => assertShape('op', 'logits_NV', [2, 4], [2, 5])).toThrow(/op: logits_NV must have shape \[2, 5\], got \[2, 4\]/);
  });

  it('assertFiniteArray gives the first bad row and column (or index)', () => {
    expect(() => assertFiniteArray('op', 'x', [1, -2, 3e38, -1e4])).not.toThrow();
    expect(() => assertFiniteArray('op', 'logits', [0, 1, 2, 3, 4, NaN, Infinity], 3)).toThrow(/op: logits must be finite, found NaN at row 1, column 2/);
    expect(() => assertFiniteArray('op', 'lp', [0, -Infinity, NaN])).toThrow(/op: lp must be finite, found -Infinity at index 1/);
  });

  it('assertFiniteTensor finds the first NaN / inf position of a tensor without leaking', () => {
    const bad = t2([0, 1, 2, 3, 4, NaN], 2, 3);
    const inf = tf.tensor1d([0, Infinity]);
    const ok = t2([1e4, -1e4, 0, 1], 2, 2);
    expect(() => assertFiniteTensor('gkd', 'batch.studentLogits_NV', bad)).toThrow(/gkd: batch.studentLogits_NV must be finite, found NaN at row 1, column 2/);
    expect(() => assertFiniteTensor('op', 'x', inf)).toThrow(/op: x must be finite, found Infinity at index 1/);
    expect(() => assertFiniteTensor('op', 'x', ok)).not.toThrow();
    expectNoLeak(() => assertFiniteTensor('op', 'x', ok));
    expectNoLeak(() => expect(() => assertFiniteTensor('op', 'x', bad)).toThrow());
    tf.dispose([bad, inf, ok]);
  });

  it('assertIdsInRange rejects out-of-range, negative, non-integer and NaN ids, with the position', () => {
    expect(() => assertIdsInRange('op', 'ids', [0, 4, 2], 5)).not.toThrow();
    expect(() => assertIdsInRange('op', 'ids', [0, 5], 5)).toThrow(/op: ids must hold token ids in \[0, 5\), found 5 at index 1/);
    expect(() => assertIdsInRange('op', 'ids', [0, 1, 2, -1], 5, 2)).toThrow(/op: ids .* found -1 at row 1, column 1/);
    expect(() => assertIdsInRange('op', 'ids', [2.5], 5)).toThrow(/op: ids .* found 2.5 at index 0/);
    expect(() => assertIdsInRange('op', 'ids', [NaN], 5)).toThrow(/op: ids .* found NaN at index 0/);
  });

  it('assertInRange / assertIntInRange: inclusive bounds, NaN rejected, integers required', () => {
    expect(() => assertInRange('jsd', 'beta', 0, 0, 1)).not.toThrow();
    expect(() => assertInRange('jsd', 'beta', 1, 0, 1)).not.toThrow();
    expect(() => assertInRange('jsd', 'beta', 1.0001, 0, 1)).toThrow(/jsd: beta must be a number in \[0, 1\], got 1.0001/);
    expect(() => assertInRange('jsd', 'beta', NaN, 0, 1)).toThrow(/jsd: beta must be a number in \[0, 1\], got NaN/);
    expect(() => assertInRange('jsd', 'beta', '0.5' as unknown as number, 0, 1)).toThrow(/jsd: beta must be a number/);
    expect(() => assertIntInRange('op', 'k', 1, 1, 3)).not.toThrow();
    expect(() => assertIntInRange('op', 'k', 3, 1, 3)).not.toThrow();
    expect(() => assertIntInRange('op', 'k', 2.5, 1, 3)).toThrow(/op: k must be an integer in \[1, 3\], got 2.5/);
    expect(() => assertIntInRange('op', 'k', 4, 1, 3)).toThrow(/op: k must be an integer in \[1, 3\], got 4/);
    expect(() => assertIntInRange('op', 'k', NaN, 1, 3)).toThrow(/op: k must be an integer in \[1, 3\], got NaN/);
  });

  it('assertMask accepts only 0/1 of the right length; assertLength checks lengths', () => {
    expect(() => assertMask('op', 'mask_N', new Float32Array([1, 0, 1]), 3)).not.toThrow();
    expect(() => assertMask('op', 'mask_N', [1, 0], 3)).toThrow(/op: mask_N must have length 3, got 2/);
    for (const [bad, shown] of [[0.5, '0.5'], [2, '2'], [-1, '-1'], [NaN, 'NaN']] as [number, string][]) {
      expect(() => assertMask('op', 'mask_N', [1, 0, bad], 3)).toThrow(new RegExp(`op: mask_N must hold only 0 or 1, found ${shown} at index 2`));
    }
    expect(() => assertLength('op', 'tokens_N', [1, 2, 3], 3)).not.toThrow();
    expect(() => assertLength('op', 'tokens_N', new Int32Array(2), 3)).toThrow(/op: tokens_N must have length 3, got 2/);
  });
});
