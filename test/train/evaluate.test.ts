import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { evaluate, passAtK } from '../../lib/train';
import { Student, createTask, type Prompt, type Task } from '../../lib/sim';
import { loadFixture } from '../fixtures';
import { expectAllclose } from '../helpers';

describe('passAtK (unbiased estimator)', () => {
  it('hand-checked values', () => {
    // n = 4, c = 1, k = 2: 1 - C(3, 2) / C(4, 2) = 1 - 3 / 6
    expect(passAtK(4, 1, 2)).toBeCloseTo(0.5, 15);
    // n = 5, c = 2, k = 3: 1 - C(3, 3) / C(5, 3) = 1 - 1 / 10
    expect(passAtK(5, 2, 3)).toBeCloseTo(0.9, 15);
    // n = 8, c = 2, k = 4: 1 - C(6, 4) / C(8, 4) = 1 - 15 / 70
    expect(passAtK(8, 2, 4)).toBeCloseTo(55 / 70, 15);
  });

  it('limits: pass@1 = c / n, none correct = 0, n - c < k = 1, increasing in k up to n - c', () => {
    for (const [n, c] of [[8, 3], [16, 5], [3, 1]]) expect(passAtK(n, c, 1)).toBeCloseTo(c / n, 14);
    expect(passAtK(8, 0, 8)).toBe(0);
    expect(passAtK(8, 5, 4)).toBe(1);
    expect(passAtK(8, 8, 1)).toBe(1);
    let prev = 0;
    for (const k of [1, 2, 3, 4, 5, 6]) {
      const v = passAtK(8, 2, k);
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
    expect(passAtK(8, 2, 7)).toBe(1);
  });

  it('equals the probability that a random k-subset holds a correct sample (enumeration)', () => {
    const n = 6;
    for (let c = 0; c <= n; c++) {
      for (let k = 1; k <= n; k++) {
        let hit = 0;
        let all = 0;
        for (let mask = 0; mask < 1 << n; mask++) {
          if (popcount(mask) !== k) continue;
          all++;
          if ((mask & ((1 << c) - 1)) !== 0) hit++; // samples 0..c-1 are the correct ones
        }
        expect(passAtK(n, c, k)).toBeCloseTo(hit / all, 14);
      }
    }
  });

  it('matches exact rational reference values (test/fixtures/gen_passk.py)', () => {
    const fx = loadFixture<{ n: number; c: number; k: number; pass_at_k: number }>('passk');
    expect(fx.cases.length).toBeGreaterThan(100);
    expectAllclose(fx.cases.map((x) => passAtK(x.n, x.c, x.k)), fx.cases.map((x) => x.pass_at_k), { rtol: 1e-12, atol: 1e-14, label: 'pass@k' });
  });

  it('rejects bad arguments by name', () => {
    expect(() => passAtK(0, 0, 1)).toThrow('passAtK: n must be an integer >= 1, got 0');
    expect(() => passAtK(4, 5, 1)).toThrow('passAtK: c must be an integer in [0, n = 4], got 5');
    expect(() => passAtK(4, 1, 5)).toThrow('passAtK: k must be an integer in [1, n = 4], got 5');
  });
});

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

/** The math task with its verifier replaced (to pin what evaluate counts). */
function withVerifier(task: Task<Prompt>, verify: (p: Prompt, y: ArrayLike<number>) => boolean): Task<Prompt> {
  return Object.assign(Object.create(Object.getPrototypeOf(task)) as Task<Prompt>, task, { verify });
}

describe('evaluate', () => {
  const task = createTask('math', { digits: 1 });
  const prompts = task.samplePrompts('test', 3, 1);
  const opts = { samples: 4, ks: [1, 2, 4], temperature: 1, topP: 1, seed: 5 };

  it('counts the verifier per prompt and reports pass@k, avg@n and the response statistics', () => {
    const student = new Student({ layers: 1, width: 16, heads: 2, context: 16, vocabSize: task.vocab.size });
    // every response correct -> all ones; none -> all zeros
    const yes = evaluate(student, withVerifier(task, () => true), prompts, opts);
    expect(Array.from(yes.correct_P)).toEqual([4, 4, 4]);
    expect(yes.metrics).toMatchObject({ 'eval/pass@1': 1, 'eval/pass@2': 1, 'eval/pass@4': 1, 'eval/avg@4': 1, 'eval/pass@1_stderr': 0 });
    const no = evaluate(student, withVerifier(task, () => false), prompts, opts);
    expect(no.metrics['eval/pass@4']).toBe(0);
    // a verifier that accepts exactly the first two samples of the first prompt: c = [2, 0, 0]
    let calls = 0;
    const some = evaluate(student, withVerifier(task, () => calls++ < 2), prompts, opts);
    expect(Array.from(some.correct_P)).toEqual([2, 0, 0]);
    expect(some.metrics['eval/pass@1']).toBeCloseTo(2 / 4 / 3, 14);
    expect(some.metrics['eval/pass@2']).toBeCloseTo((1 - 1 / 6) / 3, 14);
    expect(some.metrics['eval/avg@4']).toBeCloseTo(1 / 6, 14);
    // sample std over prompts of c / n = [0.5, 0, 0]: sqrt(((1/3)^2 + 2 (1/6)^2) / 2) / sqrt(3)
    expect(some.metrics['eval/pass@1_stderr']).toBeCloseTo(Math.sqrt((1 / 9 + 2 / 36) / 2) / Math.sqrt(3), 14);
    expect(some.metrics['eval/length_mean']).toBeGreaterThan(0);
    expect(some.metrics['eval/finished_frac']).toBeGreaterThanOrEqual(0);
    expect(some.tokens).toBeCloseTo(some.metrics['eval/length_mean'] * 12, 8);
    // deterministic in the seed
    expect(evaluate(student, task, prompts, opts).metrics).toEqual(evaluate(student, task, prompts, opts).metrics);
    const before = tf.memory().numTensors;
    evaluate(student, task, prompts, opts);
    expect(tf.memory().numTensors).toBe(before);
    student.dispose();
  });

  it('rejects k above the sample count', () => {
    const student = new Student({ layers: 1, width: 16, heads: 2, context: 16, vocabSize: task.vocab.size });
    expect(() => evaluate(student, task, prompts, { ...opts, ks: [8] })).toThrow(/every k must be an integer in \[1, samples = 4\], got 8/);
    expect(() => evaluate(student, task, [], opts)).toThrow(/prompts must not be empty/);
    student.dispose();
  });
});
