/**
 * The student benchmark compares like with like: bench/reference/student.py (PyTorch, float32) loaded with
 * opdlab's weights computes the same numbers as lib/sim/student.ts for the pieces bench/student.ts times:
 *   - logits of the full causal pass on left-padded rows, and the response logits of the training pass
 *   - KV-cached decoding (prefill, then one token per row), teacher-forced on the same tokens
 *   - the OPD loss (A = sg[log pT(y) - log pS(y)], token-mean of -A log pS(y)) and every parameter's gradient
 *   - the weights after one Adam step (lr 1e-3, betas 0.9 / 0.999, eps 1e-8)
 * Both sides are float32 with different operation orders, hence the tolerances below (logits to 1e-5).
 * Runs only where /usr/bin/python3 imports torch (Debian's python3-torch).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../../lib/objectives';
import { computeObjective } from '../../lib/objectives/registry';
import { packBatch, responseTokens, type SeqBatch } from '../../lib/sim/batch';
import { Student, type StudentConfig } from '../../lib/sim/student';
import { DistillStepBench } from '../../bench/student';
import { expectAllclose, expectNoLeak, randn } from '../helpers';

const PY = '/usr/bin/python3';
const SCRIPT = join(__dirname, '..', '..', 'bench', 'reference', 'student.py');
const torchAvailable = existsSync(PY) && spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

// the benchmark's default architecture (2 layers, width 64, 4 heads, vocab 256), a short context, and a larger
// initialisation than training's 0.02 so that logits spread over several units and 1e-5 is a real tolerance
const CONFIG: StudentConfig = { vocabSize: 256, context: 16, layers: 2, width: 64, heads: 4, mlpRatio: 4, initStd: 0.2, seed: 11 };
const LR = 1e-3;

interface PyOut {
  logits_BTV: number[];
  decodeLogits_RBV: number[];
  responseLogits_NV: number[];
  loss: number;
  grads: Record<string, number[]>;
  weightsAfterStep: Record<string, number[]>;
}

/** Left-padded prompts of different lengths, responses of different lengths (masked tails). */
function parityBatch(): SeqBatch {
  const prompts = [[1, 40, 41, 42, 43], [1, 50, 51], [1, 60, 61, 62], [1, 70]];
  const responses = [[100, 101, 102, 103, 104, 2], [110, 111, 112, 2], [120, 121, 122, 123, 124, 125], [2]];
  return packBatch(prompts, responses);
}

/** opdlab's side of everything the Python script computes. */
function opdlabSide(student: Student, batch: SeqBatch, teacher_NV: tf.Tensor2D) {
  const { B, P, R, tokens_BT, start_B } = batch;
  const T = P + R;
  const V = CONFIG.vocabSize;
  const full = student.forward(tokens_BT, B, T, start_B);
  const logits_BTV = full.dataSync().slice() as Float32Array;
  full.dispose();
  const resp = student.responseLogits(batch);
  const responseLogits_NV = resp.dataSync().slice() as Float32Array;
  resp.dispose();
  // teacher-forced KV-cached decoding, laid out [R, B, V] like the Python side
  const prompts_BP = new Int32Array(B * P);
  for (let b = 0; b < B; b++) prompts_BP.set(tokens_BT.subarray(b * T, b * T + P), b * P);
  const decodeLogits_RBV = new Float32Array(R * B * V);
  const { logits_BV, cache } = student.prefill(prompts_BP, B, P, start_B, T - 1);
  decodeLogits_RBV.set(logits_BV, 0);
  for (let t = 0; t < R - 1; t++) {
    const next = Int32Array.from({ length: B }, (_, b) => tokens_BT[b * T + P + t]);
    decodeLogits_RBV.set(student.decode(cache, next), (t + 1) * B * V);
  }
  const { value, grads } = tf.variableGrads(
    () =>
      computeObjective('opd', {
        studentLogits_NV: student.responseLogits(batch),
        tokens_N: responseTokens(batch),
        mask_N: batch.mask_BR,
        teacher: { logits_NV: teacher_NV },
      }).loss,
    student.variables,
  );
  const loss = value.dataSync()[0];
  const gradArrays = new Map(student.variables.map((v, i) => [student.names[i], grads[v.name].dataSync().slice() as Float32Array]));
  const optimizer = tf.train.adam(LR, 0.9, 0.999, 1e-8);
  optimizer.applyGradients(grads as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
  optimizer.dispose();
  tf.dispose([value, ...Object.values(grads)]);
  return { logits_BTV, responseLogits_NV, decodeLogits_RBV, loss, grads: gradArrays, weightsAfterStep: student.getWeights() };
}

describe.skipIf(!torchAvailable)('student benchmark parity: opdlab vs bench/reference/student.py (PyTorch float32)', () => {
  let dir = '';
  let weights0: Map<string, Float32Array>;
  let ts: ReturnType<typeof opdlabSide>;
  let py: PyOut;
  const batch = parityBatch();
  const V = CONFIG.vocabSize;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'opdlab-student-parity-'));
    const student = new Student(CONFIG);
    weights0 = student.getWeights();
    const teacher = randn(batch.B * batch.R * V, 7, 2);
    const teacher_NV = tf.tensor2d(teacher, [batch.B * batch.R, V]);
    ts = opdlabSide(student, batch, teacher_NV);
    teacher_NV.dispose();
    student.dispose();
    const input = {
      config: CONFIG,
      weights: Object.fromEntries([...weights0].map(([k, v]) => [k, Array.from(v)])),
      B: batch.B, P: batch.P, R: batch.R,
      tokens_BT: Array.from(batch.tokens_BT), start_B: Array.from(batch.start_B), mask_BR: Array.from(batch.mask_BR),
      teacher_NV: Array.from(teacher),
      learningRate: LR,
    };
    writeFileSync(join(dir, 'in.json'), JSON.stringify(input));
    const r = spawnSync(PY, [SCRIPT, 'parity', join(dir, 'in.json'), join(dir, 'out.json')], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (r.status !== 0) throw new Error(`bench/reference/student.py parity failed: ${r.stderr}`);
    py = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as PyOut;
  });

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the inputs make the comparison meaningful: padded rows, masked tails, logits spread over several units', () => {
    expect(Array.from(batch.start_B)).toEqual([0, 2, 1, 3]);
    expect(Array.from(batch.mask_BR).filter((m) => m === 0).length).toBe(7);
    let sq = 0;
    for (const z of ts.responseLogits_NV) sq += z * z;
    expect(Math.sqrt(sq / ts.responseLogits_NV.length)).toBeGreaterThan(0.5);
  });

  it('full-pass logits [B, T, V] agree to 1e-5 (padding columns included)', () => {
    expectAllclose(ts.logits_BTV, py.logits_BTV, { rtol: 1e-5, atol: 1e-5, label: 'full-pass logits' });
  });

  it('response logits [B R, V] of the training pass agree to 1e-5', () => {
    expectAllclose(ts.responseLogits_NV, py.responseLogits_NV, { rtol: 1e-5, atol: 1e-5, label: 'response logits' });
  });

  it('KV-cached decode logits agree across implementations and with the training pass', () => {
    expectAllclose(ts.decodeLogits_RBV, py.decodeLogits_RBV, { rtol: 1e-5, atol: 1e-5, label: 'decode logits' });
    // decode step t of row b predicts response token t: the same row as responseLogits b R + t
    const { B, R } = batch;
    const fromDecode = new Float32Array(B * R * V);
    for (let t = 0; t < R; t++) for (let b = 0; b < B; b++) fromDecode.set(py.decodeLogits_RBV.slice((t * B + b) * V, (t * B + b + 1) * V), (b * R + t) * V);
    expectAllclose(fromDecode, py.responseLogits_NV, { rtol: 1e-5, atol: 1e-5, label: 'python decode vs python training pass' });
  });

  it('OPD loss and the gradient of every parameter agree (loss rtol 1e-5; gradients rtol 1e-3, atol 1e-6)', () => {
    expect(Number.isFinite(py.loss)).toBe(true);
    expectAllclose([ts.loss], [py.loss], { rtol: 1e-5, atol: 1e-6, label: 'loss' });
    expect(Object.keys(py.grads).sort()).toEqual([...ts.grads.keys()].sort());
    let largest = 0;
    for (const [name, g] of ts.grads) {
      expectAllclose(g, py.grads[name], { rtol: 1e-3, atol: 1e-6, label: `grad ${name}` });
      for (const x of g) largest = Math.max(largest, Math.abs(x));
    }
    expect(largest).toBeGreaterThan(1e-3);
  });

  it('the key bias gets no gradient on either side (softmax is shift invariant along the keys of a query)', () => {
    // s_ij = q_i . (k_j + b) = q_i . k_j + q_i . b: the same shift for every key j, so d loss / d b_k = 0
    const D = CONFIG.width;
    for (let l = 0; l < CONFIG.layers; l++) {
      const name = `h${l}.attn.bqkv`;
      const g = ts.grads.get(name)!;
      for (let i = D; i < 2 * D; i++) {
        expect(Math.abs(g[i])).toBeLessThan(1e-7);
        expect(Math.abs(py.grads[name][i])).toBeLessThan(1e-7);
      }
    }
  });

  it('one Adam step moves the weights by the same amounts (atol 1e-6 on steps of up to lr = 1e-3)', () => {
    // Adam's first step is lr g / (|g| + eps) ~ lr sign(g): where the true gradient is 0 (the key bias above, rows
    // of tokens absent from the batch) each side's rounding noise picks the sign, so there only |step| <= lr holds
    let moved = 0;
    let compared = 0;
    for (const [name, w] of ts.weightsAfterStep) {
      const w0 = weights0.get(name)!;
      const g = py.grads[name];
      const wPy = py.weightsAfterStep[name];
      const signal: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (Math.abs(g[i]) > 1e-6) signal.push(i);
        else {
          expect(Math.abs(w[i] - w0[i]), `${name}[${i}] opdlab step`).toBeLessThanOrEqual(1.001 * LR);
          expect(Math.abs(wPy[i] - w0[i]), `${name}[${i}] pytorch step`).toBeLessThanOrEqual(1.001 * LR);
        }
        moved = Math.max(moved, Math.abs(w[i] - w0[i]));
      }
      expectAllclose(signal.map((i) => w[i]), signal.map((i) => wPy[i]), { rtol: 0, atol: 1e-6, label: `weights after Adam ${name}` });
      compared += signal.length;
    }
    expect(compared).toBeGreaterThan(0.5 * [...weights0.values()].reduce((a, w) => a + w.length, 0));
    expect(moved).toBeGreaterThan(0.9 * LR);
  });

  it('opdlab side leaks no tensor', () => {
    const teacher_NV = tf.tensor2d(randn(batch.B * batch.R * V, 8, 2), [batch.B * batch.R, V]);
    const student = new Student(CONFIG);
    expectNoLeak(() => {
      opdlabSide(student, batch, teacher_NV);
    });
    student.dispose();
    teacher_NV.dispose();
  });
});

describe('bench/student.ts DistillStepBench', () => {
  const tiny = {
    name: 'tiny',
    student: { vocabSize: 32, context: 8, layers: 1, width: 8, heads: 2, mlpRatio: 2 },
    prompts: 2, group: 2, promptLength: 3, responseLength: 5, learningRate: 1e-2,
  };

  it('samples B x R tokens per step, trains, and changes the weights', () => {
    const bench = new DistillStepBench(tiny);
    expect(bench.rows).toBe(4);
    expect(bench.tokensPerStep).toBe(20);
    const before = bench.student.getWeights().get('wout')!;
    const r = bench.step(0);
    expect(Number.isFinite(r.loss)).toBe(true);
    for (const k of ['sampleMs', 'forwardBackwardMs', 'optimiserMs'] as const) expect(r[k]).toBeGreaterThanOrEqual(0);
    expect(r.stepMs).toBeGreaterThanOrEqual(r.sampleMs + r.forwardBackwardMs);
    const after = bench.student.getWeights().get('wout')!;
    let diff = 0;
    for (let i = 0; i < after.length; i++) diff = Math.max(diff, Math.abs(after[i] - before[i]));
    expect(diff).toBeGreaterThan(0);
    bench.dispose();
  });

  it('steps leak no tensor', () => {
    const bench = new DistillStepBench(tiny);
    expectNoLeak(() => {
      bench.step(1);
    });
    bench.dispose();
  });
});
