/**
 * Save / load of the student's weights and Adam state (lib/sim/checkpoint.ts).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { packBatch } from '../../lib/sim/batch';
import { loadCheckpoint, saveCheckpoint } from '../../lib/sim/checkpoint';
import { responseNll } from '../../lib/sim/nll';
import { Student, type StudentConfig } from '../../lib/sim/student';

const SMALL: Partial<StudentConfig> = { vocabSize: 30, context: 12, layers: 2, width: 8, heads: 2, mlpRatio: 2, seed: 4 };
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'opdlab-ckpt-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const batch = packBatch([[1, 5, 3], [1, 6, 7, 3]], [[10, 11, 2], [12, 2]]);
const step = (s: Student, opt: tf.Optimizer) => opt.minimize(() => responseNll(s, batch), false, s.variables);
const weightsOf = (s: Student) => [...s.getWeights().entries()].map(([k, v]) => [k, Array.from(v)] as const);

describe('checkpoint round trip', () => {
  it('restores weights, Adam hyper-parameters, step count and moments; training continues identically', async () => {
    const a = new Student(SMALL);
    const optA = tf.train.adam(0.01, 0.8, 0.95, 1e-6);
    for (let i = 0; i < 3; i++) step(a, optA);
    const dir = path.join(root, 'a');
    await saveCheckpoint(dir, a, optA, { step: 3, note: 'x' });
    expect(fs.readdirSync(dir).sort()).toEqual(['optimizer.bin', 'optimizer.json', 'student.bin', 'student.json']);

    const before = tf.memory().numTensors;
    const { student: b, optimizer: optB, extra } = await loadCheckpoint(dir);
    expect(extra).toEqual({ step: 3, note: 'x' });
    expect(b.config).toEqual(a.config);
    expect(weightsOf(b)).toEqual(weightsOf(a));
    expect(optB!.getConfig()).toEqual(optA.getConfig());
    const [wa, wb] = [await optA.getWeights(), await optB!.getWeights()];
    expect(wb.length).toBe(1 + 2 * a.variables.length);
    expect(Array.from(wb[0].tensor.dataSync())).toEqual([3]);
    for (let i = 1; i < wa.length; i++) expect(Array.from(wb[i].tensor.dataSync()), `slot ${i}`).toEqual(Array.from(wa[i].tensor.dataSync()));
    tf.dispose([wa[0].tensor, wb[0].tensor]);

    for (let i = 0; i < 2; i++) {
      step(a, optA);
      step(b, optB!);
    }
    // bias corrections are rebuilt as beta^(t + 1) by tfjs' setWeights rather than by repeated products, so allow
    // float32 rounding (here the weights come out bitwise equal)
    const [xa, xb] = [a.getWeights(), b.getWeights()];
    for (const [k, v] of xa) {
      const w = xb.get(k)!;
      for (let i = 0; i < v.length; i++) expect(Math.abs(w[i] - v[i]), `${k}[${i}]`).toBeLessThan(1e-6 + 1e-5 * Math.abs(v[i]));
    }
    b.dispose();
    optB!.dispose();
    expect(tf.memory().numTensors).toBe(before);
    a.dispose();
    optA.dispose();
  });

  it('saves a student without an optimiser (and removes a stale optimiser file), and before any step', async () => {
    const a = new Student(SMALL);
    const dir = path.join(root, 'b');
    await saveCheckpoint(dir, a, tf.train.adam(0.01));
    expect(fs.existsSync(path.join(dir, 'optimizer.json'))).toBe(true);
    await saveCheckpoint(dir, a);
    expect(fs.existsSync(path.join(dir, 'optimizer.json'))).toBe(false);
    const { student, optimizer } = await loadCheckpoint(dir);
    expect(optimizer).toBeNull();
    expect(weightsOf(student)).toEqual(weightsOf(a));
    const fresh = tf.train.adam(0.01);
    await saveCheckpoint(dir, a, fresh);
    const again = await loadCheckpoint(dir);
    step(again.student, again.optimizer!); // lazily creates the moments, as a fresh optimiser would
    [a, student, again.student].forEach((s) => s.dispose());
    again.optimizer!.dispose();
    fresh.dispose();
  });

  it('refuses an optimiser that was not run on exactly student.variables, and damaged folders', async () => {
    const a = new Student(SMALL);
    const opt = tf.train.adam(0.01);
    opt.minimize(() => responseNll(a, batch), false, a.variables.slice().reverse());
    await expect(saveCheckpoint(path.join(root, 'c'), a, opt)).rejects.toThrow(/optimise exactly student.variables/);
    await expect(loadCheckpoint(path.join(root, 'nothing'))).rejects.toThrow(/student.json does not exist/);
    const dir = path.join(root, 'd');
    await saveCheckpoint(dir, a);
    fs.writeFileSync(path.join(dir, 'student.bin'), Buffer.alloc(8));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/student.bin must hold \d+ float32 values/);
    a.dispose();
    opt.dispose();
  });
});
