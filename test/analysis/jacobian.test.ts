import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { blackHole, blackHoleCurves, logGrid } from '../../lib/analysis/blackhole';
import { forwardKLUpdate, logitUpdate, policyGradientUpdate, softmaxJacobian } from '../../lib/analysis/jacobian';
import { summariseProbeRows, TeacherTopTracker } from '../../lib/analysis/tracker';
import '../../lib/objectives/aopd';
import '../../lib/objectives/gkd';
import '../../lib/objectives/opd';
import type { DistillBatch } from '../../lib/objectives/types';
import { loadFixture } from '../fixtures';
import { expectAllclose, expectNoLeak, randn } from '../helpers';
import { disposeBatch } from '../../lib/objectives/synthetic';

interface UpdateCase {
  kind: 'updates';
  N: number;
  V: number;
  step: number;
  logits: number[];
  teacherLogits: number[];
  tokens: number[];
  mask: number[];
  seqIds: number[];
  opd: number[];
  fkl: number[];
  aopd_k4: number[];
  blackhole: {
    positions: number[]; advantage: number[]; vStar: number[]; rank: number[]; pSVStar: number[]; pTVStar: number[];
    opd: { updateVStar: number[]; promotionRatio: number[] }; fkl: { updateVStar: number[]; promotionRatio: number[] };
    aopd_k4: { updateVStar: number[]; promotionRatio: number[] };
  };
  tracker: { teacher: number[]; steps: { step: number; student: number[]; teacherTop: number[]; pSTop: number[]; rankTop: number[] }[] };
}
interface JacobianCase { kind: 'jacobian'; logits: number[]; N: number; V: number; jacobian: number[] }

const fixture = loadFixture<any>('analysis');
const upd = fixture.cases.find((c: { kind: string }) => c.kind === 'updates') as UpdateCase;
const jac = fixture.cases.find((c: { kind: string }) => c.kind === 'jacobian') as JacobianCase;

const FKL = { name: 'gkd', label: 'fkl', options: { beta: 0, topK: 0 } };

function fixtureBatch(c: UpdateCase): DistillBatch {
  return {
    studentLogits_NV: tf.tensor2d(c.logits, [c.N, c.V]),
    tokens_N: Int32Array.from(c.tokens),
    mask_N: Float32Array.from(c.mask),
    seqIds_N: Int32Array.from(c.seqIds),
    teacher: { logits_NV: tf.tensor2d(c.teacherLogits, [c.N, c.V]) },
  };
}

/** A random on-policy-like batch with a full teacher. */
function randomBatch(n: number, v: number, seed: number): DistillBatch {
  const zs = randn(n * v, seed, 2);
  const zt = Float32Array.from(randn(n * v, seed + 1, 2), (x, i) => x + zs[i]);
  const tokens = Int32Array.from({ length: n }, (_, i) => (i * 7 + seed) % v);
  const mask = Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1));
  return { studentLogits_NV: tf.tensor2d(zs, [n, v]), tokens_N: tokens, mask_N: mask, teacher: { logits_NV: tf.tensor2d(zt, [n, v]) } };
}

function softmaxRows(z: ArrayLike<number>, n: number, v: number): Float64Array {
  const p = new Float64Array(n * v);
  for (let r = 0; r < n; r++) {
    let max = -Infinity;
    for (let j = 0; j < v; j++) max = Math.max(max, z[r * v + j]);
    let s = 0;
    for (let j = 0; j < v; j++) s += Math.exp(z[r * v + j] - max);
    for (let j = 0; j < v; j++) p[r * v + j] = Math.exp(z[r * v + j] - max) / s;
  }
  return p;
}

describe('softmaxJacobian', () => {
  // logits [0, ln 3] -> p = (1/4, 3/4): J = diag(p) - p p^T = [[3/16, -3/16], [-3/16, 3/16]]
  it('hand-checkable', () => {
    const z = tf.tensor2d([[0, Math.log(3)], [0, 0]]);
    const j = softmaxJacobian(z);
    expect(j.shape).toEqual([2, 2, 2]);
    expectAllclose(j.dataSync(), [0.1875, -0.1875, -0.1875, 0.1875, 0.25, -0.25, -0.25, 0.25], { atol: 1e-7 });
    tf.dispose([z, j]);
  });

  it('rows (and columns) sum to zero, J is symmetric, diag = p (1 - p)', () => {
    const z = tf.tensor2d(randn(4 * 6, 3, 2), [4, 6]);
    const j = softmaxJacobian(z).arraySync() as number[][][];
    const p = softmaxRows(z.dataSync(), 4, 6);
    for (let n = 0; n < 4; n++) {
      for (let u = 0; u < 6; u++) {
        expect(Math.abs(j[n][u].reduce((a, x) => a + x, 0))).toBeLessThan(1e-7);
        expectAllclose([j[n][u][u]], [p[n * 6 + u] * (1 - p[n * 6 + u])], { atol: 1e-7 });
        for (let v = 0; v < 6; v++) expect(j[n][u][v]).toBe(j[n][v][u]);
      }
    }
    z.dispose();
  });

  it('matches torch.autograd.functional.jacobian', () => {
    const z = tf.tensor2d(jac.logits, [jac.N, jac.V]);
    const j = softmaxJacobian(z);
    expectAllclose(j.dataSync(), jac.jacobian, { rtol: 1e-5, atol: 1e-7 });
    tf.dispose([z, j]);
  });

  it('refuses a vocabulary that would not fit, and does not leak', () => {
    const big = tf.zeros([1, 5000]) as tf.Tensor2D;
    expect(() => softmaxJacobian(big)).toThrow(/V = 5000 would need/);
    big.dispose();
    const z = tf.tensor2d(randn(12, 1), [3, 4]);
    expectNoLeak(() => softmaxJacobian(z).dispose());
    z.dispose();
  });
});

describe('logit updates and the black hole: hand-checkable', () => {
  // One position, V = 3. Student pS = (0.6, 0.1, 0.3), teacher pT = (0.2, 0.5, 0.3), sampled y = 0:
  //   A = ln 0.2 - ln 0.6 = -ln 3 = -1.0986123; v* = argmax_{v != 0} pT = 1; pS(v*) = 0.1, pT(v*) = 0.5;
  //   student rank of v*: tokens 0 (0.6) and 2 (0.3) are above it -> rank 3.
  //   OPD (Eq. 4-5), step 1: Delta z = A (e_0 - pS) = ln 3 * (-0.4, 0.1, 0.3) = (-0.4394449, 0.1098612, 0.3295837)
  //     update at v* = -A pS(v*) = 0.1098612; the largest update is token 2's 0.3295837 -> promotion ratio 1/3.
  //   Forward KL (gkd beta 0, full vocabulary, Eq. 12): Delta z = pT - pS = (-0.4, 0.4, 0) -> v* gets 0.4, ratio 1.
  //   AOPD (eta 0, top-2 support {1, 2}, m = 0.8, un-normalised): Delta z_v = pT(v) 1[v in S] - m pS(v)
  //     = (-0.48, 0.42, 0.06) -> v* gets 0.42, ratio 1.
  // Row 1 (y = 1: A = ln 5 > 0) and row 2 (masked out) are not measured.
  const lp = (p: number[]) => p.map(Math.log);
  const batch = (): DistillBatch => ({
    studentLogits_NV: tf.tensor2d([lp([0.6, 0.1, 0.3]), lp([0.6, 0.1, 0.3]), lp([0.6, 0.1, 0.3])]),
    tokens_N: new Int32Array([0, 1, 0]),
    mask_N: new Float32Array([1, 1, 0]),
    teacher: { logits_NV: tf.tensor2d([lp([0.2, 0.5, 0.3]), lp([0.2, 0.5, 0.3]), lp([0.2, 0.5, 0.3])]) },
  });

  it('logitUpdate per objective', () => {
    const b = batch();
    expectAllclose(logitUpdate('opd', b).update_NV.slice(0, 3), [-0.4394449, 0.1098612, 0.3295837], { atol: 1e-6 });
    expectAllclose(logitUpdate('gkd', b, { beta: 0, topK: 0 }).update_NV.slice(0, 3), [-0.4, 0.4, 0], { atol: 1e-6 });
    expectAllclose(logitUpdate('aopd', b, { topK: 2 }).update_NV.slice(0, 3), [-0.48, 0.42, 0.06], { atol: 1e-6 });
    // step scales; the masked row is exactly 0
    const half = logitUpdate('opd', b, {}, { step: 0.5 });
    expectAllclose(half.update_NV.slice(0, 3), [-0.2197225, 0.0549306, 0.1647918], { atol: 1e-6 });
    expect(Array.from(half.update_NV.slice(6, 9))).toEqual([0, 0, 0]);
    expect(half.reduction).toBe('sum');
    disposeBatch(b);
  });

  it('blackHole', () => {
    const b = batch();
    const m = blackHole(b, { objectives: [{ name: 'opd' }, FKL, { name: 'aopd', options: { topK: 2 } }] });
    expect(Array.from(m.position_P)).toEqual([0]);
    expect(Array.from(m.vStar_P)).toEqual([1]);
    expect(Array.from(m.rankVStar_P)).toEqual([3]);
    expectAllclose([m.advantage_P[0], m.pSVStar_P[0], m.pTVStar_P[0]], [-1.0986123, 0.1, 0.5], { atol: 1e-6 });
    const [o, f, a] = m.objectives;
    expectAllclose([o.updateVStar_P[0], o.maxUpdate_P[0], o.promotionRatio_P[0]], [0.1098612, 0.3295837, 1 / 3], { atol: 1e-6 });
    expectAllclose([f.updateVStar_P[0], f.promotionRatio_P[0]], [0.4, 1], { atol: 1e-6 });
    expectAllclose([a.updateVStar_P[0], a.promotionRatio_P[0]], [0.42, 1], { atol: 1e-6 });
    expect(m.metrics['blackhole/count']).toBe(1);
    expectAllclose([m.metrics['blackhole/frac_negative'], m.metrics['blackhole/opd/promotion_ratio_mean'], m.metrics['blackhole/fkl/update_vstar_mean']], [0.5, 1 / 3, 0.4], { atol: 1e-6 });
    disposeBatch(b);
  });

  // A = -2, pT = 0.6, m = 0.8, step 0.5 at pS = 0, 0.1, 0.5:
  //   OPD 0.5 * 2 * pS = (0, 0.1, 0.5); forward KL 0.5 (0.6 - pS) = (0.3, 0.25, 0.05); top-K 0.5 (0.6 - 0.8 pS) = (0.3, 0.26, 0.1)
  it('analytic curves', () => {
    const c = blackHoleCurves({ pS_G: [0, 0.1, 0.5], advantage: -2, pT: 0.6, teacherMass: 0.8, step: 0.5 });
    expectAllclose(c.opd_G, [0, 0.1, 0.5], { atol: 1e-12 });
    expectAllclose(c.forwardKL_G, [0.3, 0.25, 0.05], { atol: 1e-12 });
    expectAllclose(c.topkForwardKL_G, [0.3, 0.26, 0.1], { atol: 1e-12 });
    const g = logGrid(1e-4, 1, 41);
    expect([g.length, g[0], g[40]]).toEqual([41, 1e-4, 1]);
    expectAllclose([g[10], g[20]], [1e-3, 1e-2], { rtol: 1e-12 });
  });
});

describe('logit updates: identities', () => {
  it("OPD's update on v* is -A pS(v*) step, its row is Eq. 4, and the measured points lie on the analytic curve", () => {
    const b = randomBatch(30, 11, 5);
    const step = 0.3;
    const m = blackHole(b, { objectives: [{ name: 'opd' }, FKL], step });
    expect(m.position_P.length).toBeGreaterThan(5);
    const [o, f] = m.objectives;
    const z = b.studentLogits_NV.dataSync();
    const pS = softmaxRows(z, 30, 11);
    const pT = softmaxRows((b.teacher as { logits_NV: tf.Tensor2D }).logits_NV.dataSync(), 30, 11);
    const rows = logitUpdate('opd', b, {}, { step }).update_NV;
    for (let p = 0; p < m.position_P.length; p++) {
      const r = m.position_P[p];
      const A = m.advantage_P[p];
      expect(A).toBeLessThan(0);
      expectAllclose([o.updateVStar_P[p]], [-A * m.pSVStar_P[p] * step], { rtol: 1e-4, atol: 1e-7 });
      expectAllclose([f.updateVStar_P[p]], [(m.pTVStar_P[p] - m.pSVStar_P[p]) * step], { rtol: 1e-4, atol: 1e-7 });
      const curve = blackHoleCurves({ pS_G: [m.pSVStar_P[p]], advantage: A, pT: m.pTVStar_P[p], step });
      expectAllclose([o.updateVStar_P[p], f.updateVStar_P[p]], [curve.opd_G[0], curve.forwardKL_G[0]], { rtol: 1e-4, atol: 1e-7 });
      // the whole row: Eq. 4
      const want = policyGradientUpdate(pS.subarray(r * 11, (r + 1) * 11), b.tokens_N[r], A, step);
      expectAllclose(rows.subarray(r * 11, (r + 1) * 11), want, { rtol: 1e-4, atol: 1e-6 });
      // OPD's promotion ratio = pS(v*) / max_{v != y} pS(v): the student's own prior decides
      let maxOther = 0;
      for (let v = 0; v < 11; v++) if (v !== b.tokens_N[r]) maxOther = Math.max(maxOther, pS[r * 11 + v]);
      expectAllclose([o.promotionRatio_P[p]], [m.pSVStar_P[p] / maxOther], { rtol: 1e-4 });
      expect(o.promotionRatio_P[p]).toBeLessThanOrEqual(1 + 1e-6);
    }
    // forward KL over the full vocabulary: every masked-in row is step (pT - pS) (Eq. 12)
    const fkl = logitUpdate('gkd', b, { beta: 0, topK: 0 }, { step }).update_NV;
    for (let r = 0; r < 30; r++) {
      const want = b.mask_N[r] ? forwardKLUpdate(pT.subarray(r * 11, (r + 1) * 11), pS.subarray(r * 11, (r + 1) * 11), step) : new Float64Array(11);
      expectAllclose(fkl.subarray(r * 11, (r + 1) * 11), want, { rtol: 1e-4, atol: 1e-6 });
    }
    disposeBatch(b);
  });

  it('every update row sums to 0; aopd at eta = -1 is opd, at eta = 1 with K = V is forward KL', () => {
    const b = randomBatch(20, 7, 9);
    const opd = logitUpdate('opd', b).update_NV;
    const fkl = logitUpdate('gkd', b, { beta: 0, topK: 0 }).update_NV;
    const aopd = logitUpdate('aopd', b, { topK: 3 }).update_NV;
    for (const u of [opd, fkl, aopd]) {
      for (let r = 0; r < 20; r++) expect(Math.abs(u.subarray(r * 7, (r + 1) * 7).reduce((a, x) => a + x, 0))).toBeLessThan(1e-6);
    }
    expectAllclose(logitUpdate('aopd', b, { eta: -1, topK: 3 }).update_NV, opd, { rtol: 1e-5, atol: 1e-7 });
    expectAllclose(logitUpdate('aopd', b, { eta: 1, topK: 7 }).update_NV, fkl, { rtol: 1e-5, atol: 1e-7 });
    disposeBatch(b);
  });
});

describe('logit updates and the black hole: PyTorch reference', () => {
  it('updates of opd, forward KL and aopd (K = 4), reduction sum', () => {
    const b = fixtureBatch(upd);
    const tol = { rtol: 1e-4, atol: 1e-6 };
    expectAllclose(logitUpdate('opd', b, {}, { step: upd.step }).update_NV, upd.opd, { ...tol, label: 'opd' });
    expectAllclose(logitUpdate('gkd', b, { beta: 0, topK: 0 }, { step: upd.step }).update_NV, upd.fkl, { ...tol, label: 'fkl' });
    expectAllclose(logitUpdate('aopd', b, { topK: 4 }, { step: upd.step }).update_NV, upd.aopd_k4, { ...tol, label: 'aopd' });
    disposeBatch(b);
  });

  it('v*, rank, probabilities, updates at v* and promotion ratios', () => {
    const b = fixtureBatch(upd);
    const m = blackHole(b, { step: upd.step, objectives: [{ name: 'opd' }, FKL, { name: 'aopd', label: 'aopd_k4', options: { topK: 4 } }] });
    const r = upd.blackhole;
    expect(Array.from(m.position_P)).toEqual(r.positions);
    expect(Array.from(m.vStar_P)).toEqual(r.vStar);
    expect(Array.from(m.rankVStar_P)).toEqual(r.rank);
    expectAllclose(m.advantage_P, r.advantage, { rtol: 1e-5, atol: 1e-6 });
    expectAllclose(m.pSVStar_P, r.pSVStar, { rtol: 1e-5, atol: 1e-7 });
    expectAllclose(m.pTVStar_P, r.pTVStar, { rtol: 1e-5, atol: 1e-7 });
    for (const o of m.objectives) {
      const want = r[o.label as 'opd' | 'fkl' | 'aopd_k4'];
      expectAllclose(o.updateVStar_P, want.updateVStar, { rtol: 1e-4, atol: 1e-6, label: o.label });
      expectAllclose(o.promotionRatio_P, want.promotionRatio, { rtol: 1e-4, atol: 1e-6, label: o.label });
    }
    disposeBatch(b);
  });

  it('a top-K teacher gives the same v* as the full teacher', () => {
    const b = fixtureBatch(upd);
    const k = 4;
    const lpT = tf.tidy(() => tf.logSoftmax((b.teacher as { logits_NV: tf.Tensor2D }).logits_NV).arraySync() as number[][]);
    const ids = new Int32Array(upd.N * k);
    const vals = new Float32Array(upd.N * k);
    lpT.forEach((row, n) => {
      const order = row.map((x, v) => [x, v]).sort((a, c) => c[0] - a[0]).slice(0, k);
      order.reverse().forEach(([x, v], j) => { ids[n * k + j] = v; vals[n * k + j] = x; }); // unsorted (ascending) on purpose
    });
    const sampled = Float32Array.from(lpT.map((row, n) => row[upd.tokens[n]]));
    const topk: DistillBatch = { ...b, teacher: { k, topkIds_NK: ids, topkLogprobs_NK: vals, sampledLogprobs_N: sampled } };
    const m = blackHole(topk, { objectives: [{ name: 'opd' }] });
    expect(Array.from(m.vStar_P)).toEqual(upd.blackhole.vStar);
    expectAllclose(m.pTVStar_P, upd.blackhole.pTVStar, { rtol: 1e-5 });
    disposeBatch(b);
  });
});

describe('TeacherTopTracker', () => {
  // Probes (V = 3). Teacher rows pT = (0.2, 0.5, 0.3) and (0.6, 0.3, 0.1): top tokens 1 and 0.
  // Step 0: student (0.6, 0.1, 0.3): pS(1) = 0.1, two tokens above -> rank 3; student (0.3, 0.3, 0.4): pS(0) = 0.3,
  //   only token 2 is strictly above (token 1 ties) -> rank 2. Summary: ps_top_mean 0.2, rank mean 2.5, frac_top1 0.
  // Step 5: the student equals the teacher -> ranks 1, 1; ps_top_mean (0.5 + 0.6) / 2 = 0.55; frac_top1 1.
  it('hand-checkable, with logits or log-probs and -inf', () => {
    const lp = (rows: number[][]) => ({ data: rows.flat().map(Math.log), rows: rows.length, cols: 3 });
    const teacher = lp([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]]);
    const t = new TeacherTopTracker();
    const r0 = t.record(0, lp([[0.6, 0.1, 0.3], [0.3, 0.3, 0.4]]), teacher);
    expect(r0.map((r) => [r.probe, r.teacherTop, r.rankTop, r.studentTop])).toEqual([[0, 1, 3, 0], [1, 0, 2, 2]]);
    expectAllclose(r0.map((r) => r.pSTop), [0.1, 0.3], { atol: 1e-12 });
    expectAllclose(r0.map((r) => r.pTTop), [0.5, 0.6], { atol: 1e-12 });
    const s0 = summariseProbeRows(r0);
    expectAllclose([s0['blackhole/probe_ps_top_mean'], s0['blackhole/probe_rank_top_mean'], s0['blackhole/probe_rank_top_median'], s0['blackhole/probe_frac_top1']], [0.2, 2.5, 2.5, 0]);
    // logits shifted by a constant give the same rows
    const shifted = { ...teacher, data: teacher.data.map((x) => x + 3) };
    const r1 = t.record(5, shifted, tf.tensor2d(teacher.data, [2, 3]));
    expect(r1.map((r) => r.rankTop)).toEqual([1, 1]);
    expectAllclose([summariseProbeRows(r1)['blackhole/probe_ps_top_mean']], [0.55], { atol: 1e-12 });
    expect(t.rows.length).toBe(4);
    expect(Array.from(t.columns().step)).toEqual([0, 0, 5, 5]);
    // a probability-0 token (-inf log-prob) is legal
    const r2 = t.record(6, { data: [-Infinity, 0, -Infinity, Math.log(0.5), Math.log(0.5), -Infinity], rows: 2, cols: 3 }, teacher);
    expect(r2.map((r) => r.rankTop)).toEqual([1, 1]);
  });

  it('matches the PyTorch reference over two steps', () => {
    const t = new TeacherTopTracker();
    for (const s of upd.tracker.steps) {
      const student = tf.tensor2d(s.student, [4, upd.V]);
      const rows = t.record(s.step, student, { data: upd.tracker.teacher, rows: 4, cols: upd.V });
      student.dispose();
      expect(rows.map((r) => r.teacherTop)).toEqual(s.teacherTop);
      expect(rows.map((r) => r.rankTop)).toEqual(s.rankTop);
      expectAllclose(rows.map((r) => r.pSTop), s.pSTop, { rtol: 1e-6 });
    }
  });

  it('bad input', () => {
    const t = new TeacherTopTracker();
    const ok = { data: [0, 0, 0, 0], rows: 2, cols: 2 };
    t.record(0, ok, ok);
    expect(() => t.record(1, { data: [0, 0, 0], rows: 1, cols: 3 }, { data: [0, 0, 0], rows: 1, cols: 3 })).toThrow(/probe set must stay fixed/);
    expect(() => t.record(1, { data: [0, NaN, 0, 0], rows: 2, cols: 2 }, ok)).toThrow(/studentLogp_NV must hold finite values or -Infinity, found NaN at row 0, column 1/);
    expect(() => t.record(1, ok, { data: [0, 0], rows: 1, cols: 2 })).toThrow(/same shape/);
    expect(() => t.record(NaN, ok, ok)).toThrow(/step must be a finite number/);
    expect(() => summariseProbeRows([])).toThrow(/no rows/);
  });

  it('does not leak', () => {
    const s = tf.tensor2d(randn(8, 2), [2, 4]);
    const te = tf.tensor2d(randn(8, 3), [2, 4]);
    const t = new TeacherTopTracker();
    expectNoLeak(() => {
      t.record(0, s, te);
    });
    tf.dispose([s, te]);
  });
});

describe('black hole: bad input and memory', () => {
  it('errors', () => {
    const b = randomBatch(5, 4, 1);
    expect(() => blackHole({ ...b, mask_N: new Float32Array(5) }, { objectives: [{ name: 'opd' }] })).toThrow(/blackHole: all 5 tokens are masked out/);
    expect(() => blackHole(b, { objectives: [{ name: 'opd' }, { name: 'opd' }] })).toThrow(/labels must be unique/);
    expect(() => blackHole(b, { objectives: [{ name: 'nope' }] })).toThrow(/unknown objective 'nope'/);
    expect(() => blackHole(b, { steps: 1 } as never)).toThrow(/unknown option 'steps'/);
    expect(() => blackHole(b, { step: 0 })).toThrow(/step must be a finite number > 0/);
    const nan = tf.tensor2d([NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [5, 4]);
    expect(() => blackHole({ ...b, studentLogits_NV: nan })).toThrow(/studentLogits_NV must be finite, found NaN at row 0, column 0/);
    expect(() => blackHoleCurves({ pS_G: [0.5, 1.5] })).toThrow(/pS_G entry must be a number in \[0, 1\]/);
    expect(() => blackHoleCurves({ pT: [0.5] })).toThrow(/one per grid point \(41\)/);
    nan.dispose();
    disposeBatch(b);
  });

  it('no position with A < 0: count 0 and a note, not a silent NaN', () => {
    // student = teacher -> A = 0 everywhere
    const z = tf.tensor2d(randn(12, 4), [3, 4]);
    const b: DistillBatch = { studentLogits_NV: z, tokens_N: new Int32Array([0, 1, 2]), mask_N: new Float32Array([1, 1, 1]), teacher: { logits_NV: z } };
    const m = blackHole(b, { objectives: [{ name: 'opd' }] });
    expect(m.metrics['blackhole/count']).toBe(0);
    expect(m.metrics['blackhole/ps_vstar_mean']).toBeNaN();
    expect(m.notes[0]).toMatch(/no masked-in position has A < 0/);
    z.dispose();
  });

  it('logitUpdate and blackHole do not leak', () => {
    const b = randomBatch(10, 6, 3);
    expectNoLeak(() => {
      logitUpdate('aopd', b, { topK: 3 });
      blackHole(b, { objectives: [{ name: 'opd' }, { name: 'aopd', options: { topK: 3 } }] });
    });
    disposeBatch(b);
  });
});
