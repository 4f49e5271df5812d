/**
 * Dump statistics: (a) a hand-checked two-sequence dump, (b) identities of the one-pass summaries (Pebay merge
 * = one pass = simple-statistics; the sketch's quantiles within their stated bound), (c) streaming vs the
 * in-memory lib/analysis results on the sample dump (exact keys equal, approximate keys within their bounds),
 * and the dump-side top-K and black-hole statistics against lib/analysis's topKDiagnostics and blackHole on
 * the same simulated rollouts with full logits, (d) no tensor leaks in the simulation-backed generator.
 */
import * as tf from '@tensorflow/tfjs';
import { quantileSorted, sampleKurtosis, sampleSkewness, sampleStandardDeviation } from 'simple-statistics';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { blackHole } from '../../lib/analysis/blackhole';
import { hillEstimator } from '../../lib/analysis/tails';
import { topKDiagnostics } from '../../lib/analysis/topkDiagnostics';
import '../../lib/objectives/opd';
import type { DistillBatch } from '../../lib/objectives/types';
import { analyseDump, analyseSource } from '../../lib/io/analyse';
import { chunks } from '../../lib/io/chunk';
import { dumpFromSequences, loadDump, openDump, type Dump } from '../../lib/io/reader';
import { simulateDump } from '../../lib/io/sampleDumps';
import { emptyMeta, type DumpSequence } from '../../lib/io/schema';
import { Moments, QuantileSketch } from '../../lib/io/sketch';
import { DumpStats } from '../../lib/io/stats';
import { expectAllclose, expectNoLeak, randn, rng } from '../helpers';

const DUMPS = join(__dirname, '..', '..', 'data', 'dumps');
const L = Math.log;

/** Two sequences with hand-picked probabilities (worked out in the comments below). */
function handDump(): Dump {
  const topk = (rows: [number, number][][]) => ({ k: 2, ids: Int32Array.from(rows.flat().map((e) => e[0])), lp: Float64Array.from(rows.flat().map((e) => L(e[1]))) });
  const seq = (id: string, y: number[], mask: number[], pT: number[], pS: number[], tTop: [number, number][][], sTop: [number, number][][]): DumpSequence => ({
    sampleId: id, step: null, promptLen: null, responseIds: Int32Array.from(y), mask: Uint8Array.from(mask),
    studentLp: Float64Array.from(pS, L), studentLpTrain: Float64Array.from(pS, L), teacherLp: Float64Array.from(pT, L),
    studentTopk: topk(sTop), teacherTopk: topk(tTop), studentEntropy: null, teacherEntropy: null, tokenKl: null, teacherResponseIds: null,
    reward: null, teacherId: null, origin: id,
  });
  return dumpFromSequences(emptyMeta({ vocabSizeStudent: 16, vocabSizeTeacher: 16 }), [
    // A: y = 5, 6, (2 masked out); A_t = ln(.5/.25) = ln 2, ln(.2/.4) = -ln 2
    seq('A', [5, 6, 2], [1, 1, 0], [0.5, 0.2, 0.1], [0.25, 0.4, 0.1], [[[5, 0.5], [9, 0.3]], [[9, 0.6], [6, 0.2]], [[2, 0.1], [3, 0.1]]], [[[9, 0.5], [5, 0.25]], [[6, 0.4], [9, 0.3]], [[2, 0.1], [3, 0.1]]]),
    // B: y = 7, 2; A_t = 0, ln 8
    seq('B', [7, 2], [1, 1], [0.9, 0.8], [0.9, 0.1], [[[7, 0.9], [3, 0.05]], [[2, 0.8], [4, 0.1]]], [[[7, 0.9], [3, 0.06]], [[4, 0.7], [8, 0.15]]]),
  ]);
}

describe('a hand-checked dump', () => {
  it('advantages, intervention, positions, top-K, black hole', () => {
    for (const a of [analyseDump(handDump()), (() => { const s = new DumpStats(handDump().meta); s.add(handDump().chunk); return s.finish(); })()]) {
      const m = a.metrics;
      expect(m['dump/masked_in']).toBe(4);
      expect(m['adv/mean']).toBeCloseTo((3 * L(2)) / 4, 12); // (ln2 - ln2 + 0 + 3 ln2) / 4
      expect([m['adv/frac_neg'], m['adv/frac_zero'], m['adv/frac_pos']]).toEqual([0.25, 0.25, 0.5]);
      // d = pT - pS = .25, -.2, 0, .7: eta = 0 takes -.2 (A <= -0.05) and 0 (the zero band)
      expect([m['intervention/ratio'], m['intervention/ratio_negative'], m['intervention/ratio_zero_band'], m['intervention/ratio_positive']]).toEqual([0.5, 0.25, 0.25, 0]);
      const g = (eta: number) => a.intervention.ratio_G[a.intervention.eta_G.findIndex((e) => Math.abs(e - eta) < 1e-12)];
      expect([g(-0.25), g(-0.2), g(0.25), g(0.65), g(0.75)]).toEqual([0, 0.25, 0.75, 0.75, 1]);
      expectAllclose(a.advantage.byPosition.mean, [L(2) / 2, L(2)], { rtol: 1e-12, atol: 0 });
      // teacher mass .8 .8 .95 .9; overlap 1 1 1 1/2; student mass on the teacher's top-2 .75 .7 .96 .8 (row B1 via the sampled token)
      expect(m['topk/teacher_mass']).toBeCloseTo(0.8625, 12);
      expect(m['topk/teacher_tail_mass']).toBeCloseTo(0.1375, 12);
      expect(m['topk/overlap_ratio']).toBeCloseTo(0.875, 12);
      expect(m['topk/student_mass']).toBeCloseTo(0.8025, 12);
      expect(m['topk/student_mass_coverage']).toBe(1);
      // truncated forward KL < 0 only at B0: .9 ln 1 + .05 ln(.05/.06) < 0
      expect(m['topk/clamp_frac']).toBe(0.25);
      expectAllclose(a.topk!.kSweep.teacherMass_K, [0.7, 0.8625], { rtol: 1e-12, atol: 0 });
      expectAllclose(a.topk!.kSweep.overlap_K!, [0.25, 0.875], { rtol: 1e-12, atol: 0 });
      // black hole: only A1 (A = -ln 2, y = 6): v* = 9, pT .6, pS .3 (student rank 2), OPD update ln2 * .3,
      // forward KL .6 - .3, AOPD top-K .6 - .8 * .3, OPD promotion ratio .3 / max_{v != 6} pS = 1
      expect(m['blackhole/count']).toBe(1);
      expect(m['blackhole/frac_negative']).toBe(0.25);
      expect(m['blackhole/pt_vstar_mean']).toBeCloseTo(0.6, 12);
      expect(m['blackhole/ps_vstar_mean_known']).toBeCloseTo(0.3, 12);
      expect(m['blackhole/rank_vstar_mean_known']).toBe(2);
      expect(m['blackhole/opd/update_vstar_mean_known']).toBeCloseTo(L(2) * 0.3, 12);
      expect(m['blackhole/fkl/update_vstar_mean_known']).toBeCloseTo(0.3, 12);
      expect(m['blackhole/aopd_topk/update_vstar_mean_known']).toBeCloseTo(0.36, 12);
      expect(m['blackhole/opd/promotion_ratio_mean_known']).toBeCloseTo(1, 12);
    }
  });
});

describe('one-pass summaries', () => {
  it('Moments: one pass = merged chunks = simple-statistics (sample std, skewness, kurtosis)', () => {
    const x = Array.from(randn(5000, 3, 2), (v, i) => (i % 7 === 0 ? -Math.exp(v) : v));
    const one = new Moments();
    x.forEach((v) => one.add(v));
    const merged = new Moments();
    for (let i = 0; i < x.length; i += 333) {
      const part = new Moments();
      x.slice(i, i + 333).forEach((v) => part.add(v));
      merged.merge(part);
    }
    for (const m of [one, merged]) {
      expect(m.n).toBe(5000);
      expect(m.mean).toBeCloseTo(x.reduce((a, b) => a + b, 0) / x.length, 12);
      expect(m.std()).toBeCloseTo(sampleStandardDeviation(x), 11);
      expect(m.skewness()).toBeCloseTo(sampleSkewness(x), 9);
      expect(m.excessKurtosis()).toBeCloseTo(sampleKurtosis(x), 8);
    }
  });

  it('QuantileSketch: quantiles within |q_hat - q| <= rel (|q| + c); Hill close to the exact estimate', () => {
    const r = rng(11);
    const x = Array.from({ length: 20000 }, () => (r() < 0.2 ? 0 : r() < 0.7 ? -Math.exp(3 * (r() - 0.3)) * (r() * 5) : r() * 0.3));
    const sk = new QuantileSketch();
    x.forEach((v) => sk.add(v));
    const sorted = x.slice().sort((a, b) => a - b);
    const rel = sk.relativeBound();
    expect(rel).toBeCloseTo(Math.pow(10, 1 / 4000) - 1, 15);
    for (const p of [0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
      const q = quantileSorted(sorted, p);
      expect(Math.abs(sk.quantile(p, sorted[0], sorted[sorted.length - 1]) - q), `p = ${p}`).toBeLessThanOrEqual(rel * (Math.abs(q) + 0.01) * (1 + 1e-9) + 1e-15);
    }
    const neg = x.filter((v) => v < 0).map((v) => -v);
    const k = Math.floor(0.05 * x.length);
    const exact = hillEstimator(neg, k);
    const approx = sk.hill('neg', k, neg.length);
    expect(approx.k).toBe(exact.k);
    expect(Math.abs(approx.xi - exact.xi)).toBeLessThan(3e-3);
  });
});

describe('streaming vs in-memory (lib/analysis) on the sample dump', () => {
  let dump: Dump;
  beforeAll(async () => {
    dump = await loadDump(join(DUMPS, 'sample.jsonl'));
  });

  it('exact keys agree to rounding; approximate keys within their stated bounds; histograms count the same', async () => {
    const exact = analyseDump(dump);
    expect(exact.mode).toBe('exact');
    expect(exact.approximate).toEqual({});
    const src = await openDump(join(DUMPS, 'sample.jsonl'));
    const stats = new DumpStats(src.meta);
    let n = 0;
    for await (const c of chunks(src, 64)) {
      stats.add(c);
      n++;
    }
    expect(n).toBeGreaterThan(5); // several chunks
    const s = stats.finish();
    expect(s.mode).toBe('streaming');
    expect(Object.keys(s.approximate).length).toBeGreaterThan(10);
    expect(Object.keys(s.metrics).sort()).toEqual(Object.keys(exact.metrics).sort());
    for (const [k, e] of Object.entries(exact.metrics)) {
      const v = s.metrics[k];
      if (Number.isNaN(e)) {
        expect(Number.isNaN(v), k).toBe(true);
        continue;
      }
      const bound = s.approximate[k];
      if (!bound) expect(Math.abs(v - e), k).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(e)));
      else if (/\/q[\d.]+$/.test(k)) expect(Math.abs(v - e), k).toBeLessThanOrEqual(5.76e-4 * (Math.abs(e) + 0.01) + 1e-12);
      else if (/hill_/.test(k)) expect(Math.abs(v - e), k).toBeLessThan(5e-3);
      else if (/tail_spread_ratio/.test(k)) {
        // (q50 - q01) / (q99 - q50) with each quantile within its bound d_q: first-order propagation
        const pre = k.slice(0, -'tail_spread_ratio'.length);
        const [q01, q50, q99] = ['q01', 'q50', 'q99'].map((q) => exact.metrics[pre + q]);
        const d = (q: number) => 5.76e-4 * (Math.abs(q) + 0.01);
        const R = q99 - q50;
        expect(Math.abs(v - e), k).toBeLessThanOrEqual(1.01 * ((d(q50) + d(q01)) / R + (Math.abs(e) * (d(q99) + d(q50))) / R) + 1e-12);
      }
      else expect(v, k).toBe(e); // black-hole medians: the reservoir (2000) holds every point here
    }
    const hs = s.advantage.histogram;
    const he = exact.advantage.histogram;
    expectAllclose(hs.axisEdges, he.axisEdges, { rtol: 0, atol: 1e-12 });
    let moved = 0;
    for (let i = 0; i < he.counts.length; i++) moved += Math.abs(hs.counts[i] - he.counts[i]);
    expect(moved).toBeLessThanOrEqual(2); // a value within float rounding of an edge may land next door
    expect(hs.counts.reduce((a, b) => a + b, 0) + hs.underflow + hs.overflow).toBe(dump.chunk.N);
    expectAllclose(s.intervention.ratio_G, exact.intervention.ratio_G, { rtol: 0, atol: 0 });
  });

  it('analyseSource (doctor + statistics in one pass) = the pieces run separately', async () => {
    const r = await analyseSource(await openDump(join(DUMPS, 'sample.parquet')), { tokensPerChunk: 100 });
    expect(r.doctor.ok).toBe(true);
    expect(r.analysisError).toBeNull();
    expect(r.analysis!.metrics['adv/mean']).toBeCloseTo(analyseDump(dump).metrics['adv/mean'], 7);
  });

  it("the advantage uses student_lp_train when recorded ('auto'), the sampler's on request", () => {
    expect(analyseDump(dump).studentLpSource).toBe('train');
    const a = analyseDump(dump, { studentLp: 'sampler' });
    expect(a.studentLpSource).toBe('sampler');
    const c = dump.chunk;
    let sum = 0;
    for (let i = 0; i < c.N; i++) sum += c.teacherLp[i] - c.studentLp[i];
    expect(a.metrics['adv/mean']).toBeCloseTo(sum / c.N, 12);
  });
});

describe('dump-side top-K and black hole = lib/analysis with full logits, on simulated rollouts', () => {
  it('teacher mass, overlap, gap exact; student mass within the bounds; v*, pT(v*), pS(v*), ranks per position', () => {
    const K = 4;
    const sim = simulateDump({ sequences: 6, warmupSteps: 3, batchSize: 8, k: K, seed: 3 });
    const V = sim.meta.vocabSizeStudent!;
    const dump = dumpFromSequences(sim.meta, sim.sequences);
    const c = dump.chunk;
    const N = c.N;
    const rows = new Float32Array(N * V);
    let p = 0;
    for (const r of sim.studentRows) { rows.set(r, p); p += r.length; }
    const batch: DistillBatch = {
      studentLogits_NV: tf.tensor2d(rows, [N, V]),
      tokens_N: c.responseIds,
      mask_N: Float32Array.from(c.mask),
      teacher: { k: K, topkIds_NK: c.teacherTopk!.ids, topkLogprobs_NK: Float32Array.from(c.teacherTopk!.lp), sampledLogprobs_N: Float32Array.from(c.teacherLp) },
    };
    try {
      const lib = topKDiagnostics(batch, K).metrics;
      const a = analyseDump(dump, { studentLp: 'train' });
      const m = a.metrics;
      expect(m['topk/teacher_mass']).toBeCloseTo(lib['topk/teacher_mass'], 6);
      expect(m['topk/teacher_tail_mass']).toBeCloseTo(lib['topk/teacher_tail_mass'], 6);
      expect(m['topk/overlap_ratio']).toBeCloseTo(lib['topk/overlap_ratio'], 12);
      expect(m['topk/teacher_student_gap']).toBeCloseTo(lib['topk/teacher_student_gap'], 5);
      expect(m['topk/student_mass_lower']).toBeLessThanOrEqual(lib['topk/student_mass'] + 1e-6);
      expect(m['topk/student_mass_upper']).toBeGreaterThanOrEqual(lib['topk/student_mass'] - 1e-6);
      const bh = blackHole(batch, { objectives: [{ name: 'opd' }] });
      expect(m['blackhole/count']).toBe(bh.metrics['blackhole/count']);
      expect(m['blackhole/pt_vstar_mean']).toBeCloseTo(bh.metrics['blackhole/pt_vstar_mean'], 6);
      const P = a.blackhole!.points;
      expect(P.advantage.length).toBe(bh.position_P.length);
      let known = 0;
      for (let i = 0; i < P.advantage.length; i++) {
        expect(P.pT[i]).toBeCloseTo(bh.pTVStar_P[i], 6);
        if (P.known[i]) {
          known++;
          expect(P.pS[i]).toBeCloseTo(bh.pSVStar_P[i], 5);
          expect(P.rank[i]).toBe(bh.rankVStar_P[i]);
        } else {
          expect(bh.pSVStar_P[i]).toBeLessThanOrEqual(P.pS[i] * (1 + 1e-5));
          expect(bh.rankVStar_P[i]).toBeGreaterThan(K);
        }
      }
      expect(known).toBeGreaterThan(0);
    } finally {
      batch.studentLogits_NV.dispose();
    }
  });

  it('the generator leaks no tensors', () => {
    expectNoLeak(() => {
      simulateDump({ sequences: 2, warmupSteps: 1, batchSize: 4, k: 2 });
    });
  });
});
