/**
 * Tasks, exact teachers and verifiers (lib/sim/tasks, lib/sim/teacher.ts, lib/sim/vocab.ts).
 * Hand-checked probabilities use the formulas in the headers of tasks/common.ts, math.ts and tool.ts:
 * pT(v) = (1 - beta) a(v) + beta b(v), beta = 1e-3, b(v) = 0.2 / 65 for the 65 non-distractor tokens.
 */
import { describe, expect, it } from 'vitest';
import { MathTask, ToolTask, createTask, type MathPrompt, type Prompt, type Task, type ToolPrompt } from '../../lib/sim/tasks';
import { sampleTeacher, scoreResponses, teacherAccuracy, teacherLogprobs, validResponses } from '../../lib/sim/teacher';
import { tok, VOCAB } from '../../lib/sim/vocab';
import { Rng } from '../../lib/sim/rng';
import { expectAllclose } from '../helpers';

const V = VOCAB.size;
const enc = (s: string) => Array.from(VOCAB.encode(s));
const prob = (logp: Float32Array, token: string) => Math.exp(logp[VOCAB.id(token)]);

function expectNormalised(logp: Float32Array, label: string) {
  let sum = 0;
  for (let v = 0; v < V; v++) {
    if (!Number.isFinite(logp[v])) throw new Error(`${label}: log-prob of ${VOCAB.tokens[v]} is ${logp[v]}`);
    sum += Math.exp(logp[v]);
  }
  expect(Math.abs(sum - 1), `${label}: sum ${sum}`).toBeLessThan(2e-6);
}

describe('vocab', () => {
  it('has 256 unique tokens, fixed specials, and 191 distractors', () => {
    expect(VOCAB.size).toBe(256);
    expect(new Set(VOCAB.tokens).size).toBe(256);
    expect([tok.pad, tok.bos, tok.eos, tok.sep]).toEqual([0, 1, 2, 3]);
    expect(VOCAB.groups.distractors.length).toBe(191);
    expect(VOCAB.decode(VOCAB.encode('<bos> 4 7 + 8 5 <sep>'))).toBe('<bos> 4 7 + 8 5 <sep>');
    expect(() => VOCAB.id('nope')).toThrow(/unknown token 'nope'/);
    const used = new Set([...VOCAB.groups.specials, ...VOCAB.groups.digits, ...VOCAB.groups.entities, ...VOCAB.groups.functions]);
    for (const d of VOCAB.groups.distractors) expect(used.has(d)).toBe(false);
  });
});

describe('math teacher: hand-checked distributions (47 + 85, digits 2)', () => {
  const task = new MathTask({ digits: 2 });
  const p = task.makePrompt([47, 85]);

  it('builds the prompt and the answer', () => {
    expect(VOCAB.decode(p.tokens)).toBe('<bos> 4 7 + 8 5 <sep>');
    expect(task.describe(p)).toBe('47 + 85 = 132');
  });

  it('spreads the start over the four formats', () => {
    const lp = teacherLogprobs(task, p, []);
    expectAllclose([prob(lp, 'C'), prob(lp, 'S'), prob(lp, '='), prob(lp, '=r')], [0.49950307692, 0.29970307692, 0.11988307692, 0.07992307692], { rtol: 1e-5 });
  });

  it('puts calibrated error mass on the digits of a step', () => {
    // copying operand 1's digit 7: e = 0.006 * 0.3, half on the neighbouring column's 4, a quarter on 8 and on 6
    let lp = teacherLogprobs(task, p, enc('C'));
    expectAllclose([prob(lp, '7'), prob(lp, '4'), prob(lp, '8')], [0.99720487692, 0.00090217692, 0.00045262692], { rtol: 1e-5 });
    // column 0: 7 + 5 = 12, no carry in: hardness 2, e = 0.012 split on +-1
    lp = teacherLogprobs(task, p, enc('C 7 5'));
    expectAllclose([prob(lp, '2'), prob(lp, '3'), prob(lp, '1')], [0.98701507692, 0.00599707692, 0.00599707692], { rtol: 1e-5 });
    // carry digit 1: typical mistake 0 gets e/2, +-1 get e/4 each (0 twice)
    lp = teacherLogprobs(task, p, enc('C 7 5 2'));
    expectAllclose([prob(lp, '1'), prob(lp, '0'), prob(lp, '2')], [0.98701507692, 0.00899407692, 0.00300007692], { rtol: 1e-5 });
    lp = teacherLogprobs(task, p, enc('C 7 5 2 1'));
    expectAllclose([prob(lp, 'C'), prob(lp, 'S')], [0.999 * 0.9 + 1e-3 * 0.2 / 65, 0.999 * 0.1 + 1e-3 * 0.2 / 65], { rtol: 1e-5 });
    // column 1 in the sum format: 4 + 8 + 1 = 13, hardness 3, e = 0.018; tens 1, mistake 0 (carry off by one)
    lp = teacherLogprobs(task, p, enc('C 7 5 2 1 S 4 8'));
    expectAllclose([prob(lp, '1'), prob(lp, '0'), prob(lp, '2')], [0.98102107692, 0.01348957692, 0.00449857692], { rtol: 1e-5 });
  });

  it('continues consistently from a wrong result digit, with flatter guidance', () => {
    const c = task.cursor(p);
    for (const t of enc('C 7 5 3 1 C 4 8')) c.push(t);
    expect(c.confusion).toBe(1);
    // lam = 0.25 of the mass goes uniform over digits, beta = 1e-3 (1 + 3) = 4e-3; 4 + 8 + 1 = 13, mistake 2
    const lp = new Float32Array(V);
    c.logprobs(lp);
    expectAllclose([prob(lp, '3'), prob(lp, '2'), prob(lp, '7')], [0.75846630769, 0.03499680769, 0.02491230769], { rtol: 1e-5 });
    for (const t of enc('3 1 =')) c.push(t);
    // the written result digits were 3 and 3, carry 1: the teacher answers 133
    const answer: string[] = [];
    while (!c.done) {
      const [y] = c.valid();
      answer.push(VOCAB.tokens[y]);
      c.push(y);
    }
    expect(answer.join(' ')).toBe('1 3 3 <eos>');
    expect(c.confusion).toBe(1);
  });

  it('adds the digits as copied, and carries a wrong carry into the next column', () => {
    const miscopied = task.cursor(p);
    for (const t of enc('C 7 6')) miscopied.push(t);
    expect(miscopied.confusion).toBe(1);
    expect(miscopied.valid().map((y) => VOCAB.tokens[y])).toEqual(['3']); // 7 + 6 = 13
    const c = task.cursor(p);
    for (const t of enc('C 7 5 2 0 C 4 8')) c.push(t);
    expect(c.valid().map((y) => VOCAB.tokens[y])).toEqual(['2']); // 4 + 8 + 0 = 12
    for (const t of enc('2 1 =')) c.push(t);
    expect(c.valid().map((y) => VOCAB.tokens[y])).toEqual(['1']);
    for (const t of enc('1')) c.push(t);
    expect(c.valid().map((y) => VOCAB.tokens[y])).toEqual(['2']); // answer 122
  });

  it('skips tokens that fit no phase, and answers an early = from the true sum', () => {
    const c = task.cursor(p);
    for (const t of enc('C x000')) c.push(t);
    expect(c.confusion).toBe(1);
    expect(c.valid().map((y) => VOCAB.tokens[y])).toEqual(['7']);
    const d = task.cursor(p);
    for (const t of enc('C 7 5 2 1 =')) d.push(t);
    expect(d.confusion).toBe(1);
    expect(d.valid().map((y) => VOCAB.tokens[y])).toEqual(['1']);
    d.push(VOCAB.id('1'));
    expect(d.valid().map((y) => VOCAB.tokens[y])).toEqual(['3']);
  });

  it('enumerates the valid paths: 2 formats per step x 2 answer orders + 2 direct answers', () => {
    const paths = validResponses(task, p).map((y) => VOCAB.decode(y));
    expect(paths.length).toBe(2 * 2 * 2 + 2);
    expect(paths).toContain('C 7 5 2 1 C 4 8 3 1 = 1 3 2 <eos>');
    expect(paths).toContain('S 7 5 1 2 C 4 8 3 1 =r 2 3 1 <eos>');
    expect(paths).toContain('S 7 5 1 2 S 4 8 1 3 = 1 3 2 <eos>');
    expect(paths).toContain('=r 2 3 1 <eos>');
    expect(task.maxResponseLength).toBe(2 * 5 + 1 + 3 + 1);
  });

  it('copies one digit per operand with three operands', () => {
    const t3 = new MathTask({ digits: 1, operands: 3 });
    const q = t3.makePrompt([9, 8, 7]);
    expect(VOCAB.decode(q.tokens)).toBe('<bos> 9 + 8 + 7 <sep>');
    expect(validResponses(t3, q).map((y) => VOCAB.decode(y))).toContain('C 9 8 7 4 2 = 2 4 <eos>');
  });
});

describe('tool teacher: hand-checked distributions', () => {
  const task = new ToolTask();
  const p = task.makePrompt('sort', ['raven', 'apple', 'iris'], 12);

  it('describes the call and its two argument orders', () => {
    expect(task.describe(p)).toBe('sort raven apple iris 1 2 -> fn:sort(items=apple iris raven, n=12)');
    const paths = validResponses(task, p).map((y) => VOCAB.decode(y));
    expect(paths.sort()).toEqual([
      '<call> fn:sort <arg> k:items apple iris raven <arg> k:n 1 2 </call> <eos>',
      '<call> fn:sort <arg> k:n 1 2 <arg> k:items apple iris raven </call> <eos>',
    ]);
  });

  it('splits the first key 0.6 / 0.4 and errs towards the untransformed item', () => {
    let lp = teacherLogprobs(task, p, enc('<call> fn:sort <arg>'));
    expectAllclose([prob(lp, 'k:items'), prob(lp, 'k:n')], [0.59940307692, 0.39960307692], { rtol: 1e-5 });
    lp = teacherLogprobs(task, p, enc('<call> fn:sort <arg> k:items'));
    // sorted list starts with apple; e = 0.008 * 2; half to raven (prompt order), half to iris (the other item)
    expectAllclose([prob(lp, 'apple'), prob(lp, 'raven'), prob(lp, 'iris')], [0.98301907692, 0.00799507692, 0.00799507692], { rtol: 1e-5 });
  });

  it('fills in the arguments of a wrong function consistently', () => {
    const c = task.cursor(p);
    for (const t of enc('<call> fn:reverse <arg> k:items')) c.push(t);
    expect(c.confusion).toBe(1);
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const [y] = c.valid();
      got.push(VOCAB.tokens[y]);
      c.push(y);
    }
    expect(got).toEqual(['iris', 'apple', 'raven']); // reversed prompt order
  });

  it('n + 1 and 2 n transforms', () => {
    const inc = task.makePrompt('inc', ['nova'], 99);
    expect(validResponses(task, inc).map((y) => VOCAB.decode(y))).toContain('<call> fn:count <arg> k:items nova <arg> k:n 1 0 0 </call> <eos>');
    const dbl = task.makePrompt('dbl', ['nova', 'jade'], 57);
    expect(validResponses(task, dbl).map((y) => VOCAB.decode(y))).toContain('<call> fn:scale <arg> k:n 1 1 4 <arg> k:items nova jade </call> <eos>');
  });
});

/** A cursor-side judgement: every token was a valid continuation, no deviation, ends right after <eos>. */
function cursorAccepts(task: Task<Prompt>, prompt: Prompt, y: ArrayLike<number>): boolean {
  const c = task.cursor(prompt);
  for (let i = 0; i < y.length; i++) {
    if (c.done || !c.valid().includes(y[i])) return false;
    c.push(y[i]);
  }
  return c.done && c.confusion === 0;
}

const TASKS: [string, Task<Prompt>][] = [
  ['math d1', createTask('math', { digits: 1 })],
  ['math d3', createTask('math', { digits: 3 })],
  ['math d2 x3 operands', createTask('math', { digits: 2, operands: 3 })],
  ['tool', createTask('tool', {})],
  ['tool maxItems 5', createTask('tool', { maxItems: 5 })],
];

describe.each(TASKS)('%s: verifier and teacher agree', (_name, task) => {
  const prompts = task.samplePrompts('train', 12, 7);

  it('accepts every teacher-valid path and rejects every single-token corruption of it', () => {
    const rng = new Rng(3);
    for (const p of prompts.slice(0, 6)) {
      const paths = validResponses(task, p);
      expect(paths.length).toBeGreaterThanOrEqual(2);
      for (const y of paths) {
        expect(task.verify(p, y), VOCAB.decode(y)).toBe(true);
        expect(y.length).toBeLessThanOrEqual(task.maxResponseLength);
        const c = task.cursor(p);
        for (let i = 0; i < y.length; i++) {
          const valid = c.valid();
          let bad = rng.int(V);
          while (valid.includes(bad)) bad = rng.int(V);
          const corrupted = y.slice();
          corrupted[i] = bad;
          expect(task.verify(p, corrupted), `${VOCAB.decode(corrupted)}`).toBe(false);
          c.push(y[i]);
        }
        expect(task.verify(p, y.subarray(0, y.length - 1)), 'without <eos>').toBe(false);
        expect(task.verify(p, Int32Array.from([...y, tok.eos])), 'extra token').toBe(false);
      }
    }
  });

  it('verifier == cursor judgement on noisy teacher samples (temperature 1 to 3) and random tokens', () => {
    const rng = new Rng(11);
    const seen = [0, 0];
    for (const [r, temperature] of [1, 1.3, 1.6, 2, 3].entries()) {
      const ys = sampleTeacher(task, prompts, 100 + r, { temperature });
      ys.forEach((y, i) => {
        const v = task.verify(prompts[i], y);
        expect(v, VOCAB.decode(y)).toBe(cursorAccepts(task, prompts[i], y));
        seen[v ? 1 : 0]++;
      });
    }
    for (const p of prompts) {
      const y = Int32Array.from({ length: 1 + rng.int(task.maxResponseLength) }, () => rng.int(V));
      expect(task.verify(p, y)).toBe(cursorAccepts(task, p, y));
    }
    expect(seen[0], 'rejected responses compared').toBeGreaterThan(5);
    expect(seen[1], 'accepted responses compared').toBeGreaterThan(5);
  });

  it('teacher rows are finite and sum to one on and off its distribution', () => {
    const rng = new Rng(5);
    const lp = new Float32Array(V);
    for (const p of prompts.slice(0, 4)) {
      const paths = validResponses(task, p);
      const onPath = paths[rng.int(paths.length)];
      const random = Int32Array.from({ length: 12 }, () => rng.int(V));
      const wrongDigits = onPath.map((y) => (tok.digitOf(y) >= 0 ? tok.digit((tok.digitOf(y) + 1) % 10) : y));
      for (const y of [onPath, random, wrongDigits, Int32Array.from([...onPath, tok.eos, 5, 6])]) {
        const c = task.cursor(p);
        for (let i = 0; i <= y.length; i++) {
          c.logprobs(lp);
          expectNormalised(lp, `${task.name} ${VOCAB.decode(y.subarray(0, i))}`);
          if (i < y.length) c.push(y[i]);
        }
      }
    }
  });

  it('batched scoring equals per-prefix scoring', () => {
    const R = 9;
    const ys = sampleTeacher(task, prompts.slice(0, 3), 1);
    const resp = new Int32Array(3 * R);
    ys.forEach((y, b) => resp.set(y.subarray(0, R), b * R));
    const rows = scoreResponses(task, prompts.slice(0, 3), resp, R);
    for (let b = 0; b < 3; b++) {
      for (let t = 0; t < R; t++) {
        const single = teacherLogprobs(task, prompts[b], resp.subarray(b * R, b * R + t));
        expect(Array.from(rows.subarray((b * R + t) * V, (b * R + t + 1) * V))).toEqual(Array.from(single));
      }
    }
  });
});

describe('prompts and splits', () => {
  it('are deterministic in the seed, disjoint across splits, about testFraction of the space', () => {
    const task = new MathTask({ digits: 3 });
    const a = task.samplePrompts('train', 50, 1).map((p) => p.key);
    expect(task.samplePrompts('train', 50, 1).map((p) => p.key)).toEqual(a);
    expect(task.samplePrompts('train', 50, 2).map((p) => p.key)).not.toEqual(a);
    const test = task.samplePrompts('test', 200, 1);
    const train = new Set(task.samplePrompts('train', 2000, 1).map((p) => p.key));
    for (const p of test) {
      expect(train.has(p.key)).toBe(false);
      expect(task.splitOf(p)).toBe('test');
    }
    // the split of uniformly drawn operands is test about 10% of the time
    const rng = new Rng(9);
    let t = 0;
    for (let i = 0; i < 4000; i++) if (task.splitOf(task.makePrompt([100 + rng.int(900), 100 + rng.int(900)])) === 'test') t++;
    expect(t / 4000).toBeGreaterThan(0.085);
    expect(t / 4000).toBeLessThan(0.115);
    const tool = new ToolTask();
    for (const p of tool.samplePrompts('test', 30, 4)) expect(tool.splitOf(p as ToolPrompt)).toBe('test');
  });

  it('rejects bad options with clear errors', () => {
    expect(() => new MathTask({ digits: 0 })).toThrow(/digits must be an integer in \[1, 12\]/);
    expect(() => new MathTask({ digitz: 3 } as never)).toThrow(/unknown option 'digitz'/);
    expect(() => new ToolTask({ minItems: 4, maxItems: 3 })).toThrow(/minItems must be an integer in \[1, maxItems = 3\]/);
    expect(() => createTask('chess' as never)).toThrow(/name must be one of math, tool/);
    expect(() => new MathTask().samplePrompts('dev' as never, 1, 0)).toThrow(/split must be 'train' or 'test'/);
    expect(() => new MathTask({ digits: 2 }).makePrompt([5, 10])).toThrow(/operands must be integers with 2 digits/);
  });
});

describe('teacher accuracy (sampled from the teacher, checked by the verifier)', () => {
  it('math: 85-95% at the default difficulty (2 digits) and at 3, falling with digits', () => {
    const acc = (digits?: number) => {
      const task = new MathTask(digits ? { digits } : {});
      return teacherAccuracy(task, task.samplePrompts('train', 800, 21), 22);
    };
    const byDefault = acc();
    const d3 = acc(3);
    const d5 = acc(5);
    for (const a of [byDefault, d3]) {
      expect(a.accuracy).toBeGreaterThan(0.85);
      expect(a.accuracy).toBeLessThan(0.95);
    }
    expect(byDefault.accuracy - d5.accuracy).toBeGreaterThan(3 * Math.hypot(byDefault.stderr, d5.stderr));
  });

  it('tool: 85-95% at the default difficulty', () => {
    const task = new ToolTask();
    const a = teacherAccuracy(task, task.samplePrompts('train', 800, 21), 22);
    expect(a.accuracy).toBeGreaterThan(0.85);
    expect(a.accuracy).toBeLessThan(0.97);
  });

  it('the teacher uses several paths: no single path holds most of its mass', () => {
    const task = new MathTask({ digits: 3 });
    const [p] = task.samplePrompts('train', 1, 3) as MathPrompt[];
    const ys = sampleTeacher(task, Array.from({ length: 300 }, () => p), 4);
    const counts = new Map<string, number>();
    for (const y of ys) counts.set(VOCAB.decode(y), (counts.get(VOCAB.decode(y)) ?? 0) + 1);
    expect(counts.size).toBeGreaterThanOrEqual(6);
    expect(Math.max(...counts.values()) / 300).toBeLessThan(0.4);
  });
});

describe('scoring speed', () => {
  it('scores a [32 x 40] response batch in a few ms (plain JS)', () => {
    const task = new MathTask({ digits: 4 });
    const prompts = task.samplePrompts('train', 32, 1);
    const R = 40;
    const resp = new Int32Array(32 * R);
    sampleTeacher(task, prompts, 2).forEach((y, b) => resp.set(y, b * R));
    const out = new Float32Array(32 * R * V);
    for (let i = 0; i < 3; i++) scoreResponses(task, prompts, resp, R, out);
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) scoreResponses(task, prompts, resp, R, out);
    const ms = (performance.now() - t0) / 10;
    expect(ms).toBeLessThan(40); // about 2 ms unloaded; generous for a loaded 2-core machine
  });
});
