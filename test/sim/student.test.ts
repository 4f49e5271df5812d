/**
 * The student transformer (lib/sim/student.ts), its kernels (lib/sim/kernels.ts) and the SFT loss (nll.ts):
 * PyTorch reference (forward, loss, every gradient), identities of the custom-gradient ops against tfjs autodiff,
 * padding invariance and causality, KV-cached decoding against the full pass, determinism, leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { packBatch, type SeqBatch } from '../../lib/sim/batch';
import { attentionForward, causalAttention, expandCache, linear } from '../../lib/sim/kernels';
import { responseNll } from '../../lib/sim/nll';
import { sample } from '../../lib/sim/sampler';
import { gatherRows, initialWeights, parameterSpecs, resolveStudentConfig, Student, type StudentConfig } from '../../lib/sim/student';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randn } from '../helpers';

interface StudentCase {
  config: StudentConfig;
  P: number;
  R: number;
  B: number;
  tokens_BT: number[];
  start_B: number[];
  mask_BR: number[];
  weights: Record<string, number[]>;
  responseLogits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

function fixtureBatch(c: StudentCase): SeqBatch {
  const responseLength_B = new Int32Array(c.B);
  for (let b = 0; b < c.B; b++) for (let t = 0; t < c.R; t++) responseLength_B[b] += c.mask_BR[b * c.R + t];
  return {
    B: c.B, P: c.P, R: c.R,
    tokens_BT: Int32Array.from(c.tokens_BT), start_B: Int32Array.from(c.start_B),
    mask_BR: Float32Array.from(c.mask_BR), responseLength_B,
  };
}

describe('Student vs the PyTorch reference (test/fixtures/gen_sim_student.py)', () => {
  const doc = loadFixture<StudentCase>('sim_student');
  it.each(doc.cases.map((c, i) => [i, c] as const))('case %i: response logits, NLL and every gradient (rtol 1e-4, atol 2e-5)', (_i, c) => {
    const weights = new Map(Object.entries(c.weights).map(([k, v]) => [k, Float32Array.from(v)]));
    const student = new Student(c.config, weights);
    const batch = fixtureBatch(c);
    const logits = student.responseLogits(batch);
    expectAllclose(logits.dataSync(), c.responseLogits, { rtol: 1e-4, atol: 2e-5, label: 'response logits' });
    logits.dispose();
    const { value, grads } = tf.variableGrads(() => responseNll(student, batch), student.variables);
    expectAllclose([value.dataSync()[0]], [c.loss], { rtol: 1e-5, label: 'loss' });
    student.variables.forEach((v, i) => {
      expectAllclose(grads[v.name].dataSync(), c.grads[student.names[i]], { rtol: 1e-4, atol: 2e-5, label: `grad ${student.names[i]}` });
    });
    tf.dispose([value, ...Object.values(grads)]);
    student.dispose();
  });
});

describe('custom-gradient ops equal tfjs autodiff of the composed ops', () => {
  it('linear (bias, relu, no bias) forward and gradients', () => {
    const x = tf.tensor2d(randn(5 * 4, 1), [5, 4]);
    const w = tf.tensor2d(randn(4 * 3, 2), [4, 3]);
    const b = tf.tensor1d(randn(3, 3));
    const up = tf.tensor2d(randn(15, 4), [5, 3]);
    for (const [act, bias] of [['linear', b], ['relu', b], ['linear', null]] as const) {
      const ours = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(linear(xx as tf.Tensor2D, ww as tf.Tensor2D, bias ? (bb as tf.Tensor1D) : null, act), up));
      const ref = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
        let y = tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D) as tf.Tensor;
        if (bias) y = tf.add(y, bb);
        if (act === 'relu') y = tf.relu(y);
        return tf.sum(tf.mul(y, up));
      };
      const args = bias ? [x, w, b] : [x, w];
      const g1 = tf.grads((...t: tf.Tensor[]) => ours(t[0], t[1], t[2] ?? b))(args);
      const g2 = tf.grads((...t: tf.Tensor[]) => ref(t[0], t[1], t[2] ?? b))(args);
      expect(g1.length).toBe(args.length);
      expectAllclose(ours(x, w, b).dataSync(), ref(x, w, b).dataSync(), { rtol: 1e-5, label: `${act} value` });
      g1.forEach((g, i) => expectAllclose(g.dataSync(), g2[i].dataSync(), { rtol: 1e-5, atol: 1e-6, label: `${act} grad ${i}` }));
    }
  });

  it('causal attention with left padding: forward and gradient on valid rows; padding rows give 0', () => {
    const B = 3, T = 6, H = 2, D = 8, dh = 4;
    const start_B = Int32Array.from([0, 2, 5]);
    const qkv = tf.tensor2d(randn(B * T * 3 * D, 7), [B * T, 3 * D]);
    const valid = new Float32Array(B * T * D);
    for (let b = 0; b < B; b++) for (let t = start_B[b]; t < T; t++) valid.fill(1, (b * T + t) * D, (b * T + t + 1) * D);
    const validT = tf.tensor2d(valid, [B * T, D]);
    const up = tf.mul(tf.tensor2d(randn(B * T * D, 8), [B * T, D]), validT);
    const mask = new Float32Array(B * T * T);
    for (let b = 0; b < B; b++) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) if (j > i || j < start_B[b]) mask[(b * T + i) * T + j] = -1e9;
    const maskT = tf.tensor4d(mask, [B, 1, T, T]);
    const reference = (x: tf.Tensor) => {
      const [q, k, v] = tf.split(x, 3, 1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, dh]), [0, 2, 1, 3]));
      const s = tf.add(tf.div(tf.matMul(q, k, false, true), Math.sqrt(dh)), maskT);
      return tf.reshape(tf.transpose(tf.matMul(tf.softmax(s), v), [0, 2, 1, 3]), [B * T, D]);
    };
    const shape = { B, T, heads: H, width: D, start_B };
    const ours = causalAttention(qkv, shape);
    expectAllclose(tf.mul(ours, validT).dataSync(), tf.mul(reference(qkv), validT).dataSync(), { rtol: 1e-5, atol: 1e-6, label: 'forward' });
    // padding query rows are exactly 0
    const o = ours.dataSync();
    for (let i = 0; i < o.length; i++) if (valid[i] === 0) expect(o[i]).toBe(0);
    const g1 = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(causalAttention(x as tf.Tensor2D, shape), up)))(qkv);
    const g2 = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(reference(x), up)))(qkv);
    expectAllclose(g1.dataSync(), g2.dataSync(), { rtol: 1e-4, atol: 1e-6, label: 'gradient' });
    // the plain-JS forward used by prefill is the same function
    expectAllclose(attentionForward(qkv.dataSync() as Float32Array, shape).out, o, { rtol: 0, atol: 0 });
  });

  it('gatherRows: value and gradient with repeated ids equal the one-hot matMul ones', () => {
    const table = tf.tensor2d(randn(5 * 3, 4), [5, 3]);
    const ids = Int32Array.from([4, 1, 4, 0, 4]);
    const up = tf.tensor2d(randn(5 * 3, 5), [5, 3]);
    const oneHot = tf.oneHot(tf.tensor1d(ids, 'int32'), 5).toFloat();
    const ours = (t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t as tf.Tensor2D, ids), up));
    const ref = (t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(oneHot as tf.Tensor2D, t as tf.Tensor2D), up));
    expectAllclose(gatherRows(table, ids).dataSync(), tf.matMul(oneHot as tf.Tensor2D, table).dataSync(), { rtol: 1e-6 });
    expectAllclose(tf.grad(ours)(table).dataSync(), tf.grad(ref)(table).dataSync(), { rtol: 1e-5, atol: 1e-6 });
    // row 4 was used three times: its gradient is the sum of three upstream rows (hand check on column 0)
    const u = up.dataSync();
    expect(tf.grad(ours)(table).dataSync()[4 * 3]).toBeCloseTo(u[0] + u[6] + u[12], 5);
  });
});

const SMALL: Partial<StudentConfig> = { vocabSize: 40, context: 16, layers: 2, width: 16, heads: 2, mlpRatio: 2, seed: 3, initStd: 0.3 };

describe('padding invariance and causality', () => {
  it("a row's response logits do not depend on its left padding", () => {
    const s = new Student(SMALL);
    const prompt = [1, 9, 12, 3];
    const resp = [20, 21, 22, 2];
    const a = packBatch([prompt], [resp]);
    const b = packBatch([prompt, [1, 3]], [resp, [5]], { P: 7 });
    const la = s.responseLogits(a).dataSync();
    const lb = s.responseLogits(b).dataSync().slice(0, la.length);
    expectAllclose(lb, la, { rtol: 1e-5, atol: 1e-5 });
    s.dispose();
  });

  it('changing response token t changes only the rows after t', () => {
    const s = new Student(SMALL);
    const a = s.responseLogits(packBatch([[1, 9, 3]], [[20, 21, 22, 23, 2]])).dataSync();
    const b = s.responseLogits(packBatch([[1, 9, 3]], [[20, 21, 30, 23, 2]])).dataSync();
    const V = 40;
    for (let t = 0; t < 5; t++) {
      const ra = Array.from(a.slice(t * V, (t + 1) * V));
      const rb = Array.from(b.slice(t * V, (t + 1) * V));
      if (t <= 2) expect(rb, `row ${t}`).toEqual(ra);
      else expect(rb, `row ${t}`).not.toEqual(ra);
    }
    s.dispose();
  });
});

describe('KV-cached sampling gives the full pass distributions', () => {
  it('logits recorded while decoding == responseLogits of the sampled batch (prompts of different lengths)', () => {
    const s = new Student({ ...SMALL, context: 24 });
    const prompts = [[1, 5, 6, 7, 3], [1, 8, 3], [1, 5, 6, 7, 3], [1, 3]];
    const r = sample(s, prompts, { maxNewTokens: 12, seed: 5, recordLogits: true, stopToken: 2, bannedTokens: [0, 1] });
    const full = s.responseLogits(r);
    const logp = tf.logSoftmax(full);
    const fullData = full.dataSync();
    const lpData = logp.dataSync();
    const V = 40;
    let rows = 0;
    for (let n = 0; n < r.B * r.R; n++) {
      if (!r.mask_BR[n]) continue;
      rows++;
      expectAllclose(r.logits_BRV!.subarray(n * V, (n + 1) * V), fullData.subarray(n * V, (n + 1) * V), { rtol: 1e-4, atol: 1e-4, label: `row ${n}` });
      const y = r.tokens_BT[Math.floor(n / r.R) * (r.P + r.R) + r.P + (n % r.R)];
      expectAllclose([r.rawLogprobs_BR[n]], [lpData[n * V + y]], { atol: 1e-4, label: `raw log-prob row ${n}` });
    }
    expect(rows).toBeGreaterThan(20);
    tf.dispose([full, logp]);
    s.dispose();
  });
});

describe('row-wise decoding: a row does not depend on the other rows of the batch', () => {
  const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
  it('prefill of repeated prompts == prefill of each prompt once, fanned out by expandCache (bit-equal)', () => {
    const s = new Student({ ...SMALL, context: 24 });
    const V = 40;
    const P = 5;
    const prompts_BP = Int32Array.from([1, 5, 6, 7, 3, 0, 0, 1, 8, 3, 1, 5, 6, 7, 3]); // rows 0 and 2 equal
    const start_B = Int32Array.from([0, 2, 0]);
    const all = s.prefill(prompts_BP, 3, P, start_B, 10);
    const once = s.prefill(prompts_BP.subarray(0, 2 * P), 2, P, start_B.subarray(0, 2), 10);
    const fanned = expandCache(once.cache, Int32Array.from([0, 1, 0]));
    expect(fanned.B).toBe(3);
    expect(Array.from(fanned.start_B)).toEqual([0, 2, 0]);
    for (let l = 0; l < 2; l++) {
      expect(bits(fanned.k[l])).toEqual(bits(all.cache.k[l]));
      expect(bits(fanned.v[l])).toEqual(bits(all.cache.v[l]));
    }
    expect(bits(all.logits_BV.subarray(0, V))).toEqual(bits(once.logits_BV.subarray(0, V)));
    expect(bits(all.logits_BV.subarray(2 * V, 3 * V))).toEqual(bits(once.logits_BV.subarray(0, V)));
    // decoding the fanned-out cache continues exactly as the full one
    const next = Int32Array.from([9, 10, 11]);
    expect(bits(s.decode(fanned, next))).toEqual(bits(s.decode(all.cache, next)));
    s.dispose();
  });

  it('decode on a subset of rows == those rows of the full decode (bit-equal), and leaves other rows untouched', () => {
    const s = new Student({ ...SMALL, context: 24 });
    const V = 40;
    const B = 6;
    const P = 3;
    const prompts_BP = Int32Array.from({ length: B * P }, (_, i) => 3 + ((i * 7) % 30));
    const start_B = new Int32Array(B);
    const full = s.prefill(prompts_BP, B, P, start_B, 8);
    const part = s.prefill(prompts_BP, B, P, start_B, 8);
    const tokens = Int32Array.from([4, 5, 6, 7, 8, 9]);
    const rows = Int32Array.from([1, 2, 4]);
    const a = s.decode(full.cache, tokens);
    const b = s.decode(part.cache, Int32Array.from(rows, (r) => tokens[r]), rows);
    expect(b.length).toBe(rows.length * V);
    rows.forEach((r, i) => expect(bits(b.subarray(i * V, (i + 1) * V))).toEqual(bits(a.subarray(r * V, (r + 1) * V))));
    // a second step on the same rows still matches: their cache columns were written
    const a2 = s.decode(full.cache, tokens);
    const b2 = s.decode(part.cache, Int32Array.from(rows, (r) => tokens[r]), rows);
    rows.forEach((r, i) => expect(bits(b2.subarray(i * V, (i + 1) * V))).toEqual(bits(a2.subarray(r * V, (r + 1) * V))));
    // rows left out were not written (column P of row 0 is still zero)
    const D = s.config.width;
    expect(part.cache.k[0].subarray(P * D, (P + 1) * D).every((x) => x === 0)).toBe(true);
    expect(() => s.decode(part.cache, Int32Array.from([1, 1]), Int32Array.from([2, 1]))).toThrow(/rows must be increasing cache rows in \[0, 6\), found 1 at 1/);
    expect(() => s.decode(part.cache, Int32Array.from([1]), Int32Array.from([1, 2]))).toThrow(/tokens must hold one id per fed row \(2\), got 1/);
    expect(() => expandCache(part.cache, Int32Array.from([0, 6]))).toThrow(/rows must be in \[0, 6\), found 6/);
    s.dispose();
  });
});

describe('seeded initialisation and determinism', () => {
  it('same seed -> identical weights; another seed -> different; GPT-2 scales', () => {
    const a = new Student({ seed: 7 });
    const b = new Student({ seed: 7 });
    const c = new Student({ seed: 8 });
    const wa = a.getWeights();
    const wb = b.getWeights();
    const wc = c.getWeights();
    for (const [k, v] of wa) expect(Array.from(wb.get(k)!)).toEqual(Array.from(v));
    expect(Array.from(wc.get('tokEmb')!.slice(0, 20))).not.toEqual(Array.from(wa.get('tokEmb')!.slice(0, 20)));
    for (const [k, v] of initialWeights(resolveStudentConfig({ seed: 7 }))) expect(Array.from(wa.get(k)!)).toEqual(Array.from(v));
    const std = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
    expect(std(wa.get('tokEmb')!)).toBeCloseTo(0.02, 3);
    expect(std(wa.get('h0.attn.wo')!)).toBeCloseTo(0.02 / 2, 3); // 1 / sqrt(2 L), L = 2
    expect(Array.from(new Set(wa.get('h1.ln2.g')!))).toEqual([1]);
    expect(Array.from(new Set(wa.get('h1.mlp.b1')!))).toEqual([0]);
    expect(a.parameterCount()).toBe(parameterSpecs(a.config).reduce((n, p) => n + p.shape.reduce((x, y) => x * y, 1), 0));
    [a, b, c].forEach((s) => s.dispose());
  });

  it('same sampling seed -> identical samples and log-probs; another seed -> different samples', () => {
    const s = new Student(SMALL);
    const prompts = Array.from({ length: 6 }, () => [1, 7, 3]);
    const o = { maxNewTokens: 10, stopToken: 2, bannedTokens: [0, 1] };
    const r1 = sample(s, prompts, { ...o, seed: 1 });
    const r2 = sample(s, prompts, { ...o, seed: 1 });
    const r3 = sample(s, prompts, { ...o, seed: 2 });
    expect(Array.from(r2.tokens_BT)).toEqual(Array.from(r1.tokens_BT));
    expect(Array.from(r2.samplerLogprobs_BR)).toEqual(Array.from(r1.samplerLogprobs_BR));
    expect(Array.from(r3.tokens_BT)).not.toEqual(Array.from(r1.tokens_BT));
    s.dispose();
  });
});

describe('training wiring', () => {
  it('a few Adam steps on a fixed batch lower the NLL', () => {
    const s = new Student(SMALL);
    const batch = packBatch([[1, 5, 3], [1, 6, 3]], [[10, 11, 12, 2], [13, 14, 2]]);
    const opt = tf.train.adam(3e-2);
    const nll = () => {
      const l = responseNll(s, batch);
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const before = nll();
    for (let i = 0; i < 15; i++) opt.minimize(() => responseNll(s, batch), false, s.variables);
    expect(nll()).toBeLessThan(before * 0.5);
    opt.dispose();
    s.dispose();
  });

  it('leaks no tensors (construction, forward, responseLogits, gradient step, sampling)', () => {
    const s = new Student(SMALL);
    const batch = packBatch([[1, 5, 3], [1, 6, 3]], [[10, 11, 12, 2], [13, 14, 2]]);
    const opt = tf.train.adam(1e-3);
    opt.minimize(() => responseNll(s, batch), false, s.variables);
    expectNoLeak(() => new Student(SMALL).dispose());
    expectNoLeak(() => {
      s.forward(Int32Array.from([1, 5, 6, 7]), 1, 4).dispose();
      s.responseLogits(batch).dispose();
      opt.minimize(() => responseNll(s, batch), false, s.variables);
      sample(s, [[1, 5, 3]], { maxNewTokens: 5, seed: 1 });
    });
    opt.dispose();
    s.dispose();
  });
});

describe('errors name the argument', () => {
  it('rejects bad configs, ids and lengths', () => {
    expect(() => new Student({ width: 66, heads: 4 })).toThrow(/width \(66\) must be divisible by heads \(4\)/);
    expect(() => new Student({ depth: 3 } as never)).toThrow(/unknown option 'depth'/);
    const s = new Student(SMALL);
    expect(() => s.forward(Int32Array.from([1, 99]), 1, 2)).toThrow(/tokens must be ids in \[0, 40\), found 99 at row 0, column 1/);
    expect(() => s.forward(Int32Array.from(new Array(20).fill(1)), 1, 20)).toThrow(/past the context \(16\)/);
    expect(() => sample(s, [[1, 3]], { maxNewTokens: 40 })).toThrow(/maxNewTokens must be in \[1, 15\]/);
    s.dispose();
    expect(() => s.forward(Int32Array.from([1]), 1, 1)).toThrow(/disposed/);
  });
});
