/**
 * The sampler (lib/sim/sampler.ts): the processed distribution (temperature, top-k, top-p, bans) by hand, the
 * sampled frequencies against it, the recorded log-probs, special-token handling, context ids, leaks.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { resolveSampleOptions, sample, targetDistribution } from '../../lib/sim/sampler';
import { Student, type StudentConfig } from '../../lib/sim/student';
import { responseOf } from '../../lib/sim/batch';
import { expectAllclose, expectNoLeak } from '../helpers';

function q0Of(z: number[], options: Parameters<typeof resolveSampleOptions>[0], banned: number[] = []): { q: number[]; lse: number } {
  const V = z.length;
  const b = new Uint8Array(V);
  for (const i of banned) b[i] = 1;
  const q = new Float64Array(V);
  const lse = targetDistribution(z, resolveSampleOptions(options), b, q, new Float32Array(V));
  return { q: Array.from(q), lse };
}

describe('targetDistribution (hand-checked, z = log [1, 2, 3, 4])', () => {
  const z = [1, 2, 3, 4].map(Math.log);
  it('temperature 1: the softmax, and the raw normaliser log 10', () => {
    const { q, lse } = q0Of(z, {});
    expectAllclose(q, [0.1, 0.2, 0.3, 0.4], { rtol: 1e-6 });
    expectAllclose([lse], [Math.log(10)], { rtol: 1e-6 });
  });
  it('temperature 2: proportional to sqrt([1, 2, 3, 4])', () => {
    expectAllclose(q0Of(z, { temperature: 2 }).q, [0.1627, 0.23009, 0.281807, 0.325403], { rtol: 2e-4 });
  });
  it('top-k 2 and nucleus 0.6 both keep {3, 4}; nucleus 0.4 keeps {4}; nucleus 0.75 keeps {2, 3, 4}', () => {
    expectAllclose(q0Of(z, { topK: 2 }).q, [0, 0, 3 / 7, 4 / 7], { rtol: 1e-6 });
    expectAllclose(q0Of(z, { topP: 0.6 }).q, [0, 0, 3 / 7, 4 / 7], { rtol: 1e-6 });
    expectAllclose(q0Of(z, { topP: 0.4 }).q, [0, 0, 0, 1], { rtol: 1e-6 });
    expectAllclose(q0Of(z, { topP: 0.75 }).q, [0, 2 / 9, 3 / 9, 4 / 9], { rtol: 1e-6 });
  });
  it('banned tokens get 0 (the raw normaliser still counts them); ties at the top-k edge are kept', () => {
    const { q, lse } = q0Of(z, {}, [3]);
    expectAllclose(q, [1 / 6, 2 / 6, 3 / 6, 0], { rtol: 1e-6 });
    expectAllclose([lse], [Math.log(10)], { rtol: 1e-6 });
    expectAllclose(q0Of([0, 0, 0, Math.log(2)], { topK: 2 }).q, [0.2, 0.2, 0.2, 0.4], { rtol: 1e-6 });
  });
});

const SMALL: Partial<StudentConfig> = { vocabSize: 40, context: 20, layers: 1, width: 16, heads: 2, mlpRatio: 2, seed: 5, initStd: 0.5 };

describe('sample', () => {
  it('draws first tokens with the frequencies of the target distribution (3000 rows)', () => {
    const s = new Student(SMALL);
    const N = 3000;
    const r = sample(s, Array.from({ length: N }, () => [1, 7, 3]), { maxNewTokens: 1, temperature: 1.5, topK: 12, seed: 3, recordTargetProbs: true });
    const V = 40;
    const q = r.targetProbs_BRV!.subarray(0, V);
    const counts = new Float64Array(V);
    for (let b = 0; b < N; b++) counts[r.tokens_BT[b * (r.P + r.R) + r.P]]++;
    let support = 0;
    for (let v = 0; v < V; v++) {
      if (q[v] === 0) expect(counts[v], `token ${v} outside the top-k was sampled`).toBe(0);
      else support++;
      const se = Math.sqrt((q[v] * (1 - q[v])) / N);
      expect(Math.abs(counts[v] / N - q[v]), `token ${v}`).toBeLessThan(4.5 * se + 1e-9);
    }
    expect(support).toBe(12);
    s.dispose();
  });

  it('records log q0(y) as the sampler log-prob and log pS(y) at T = 1 as the raw log-prob', () => {
    const s = new Student(SMALL);
    const r = sample(s, [[1, 7, 3], [1, 8, 9, 3]], { maxNewTokens: 8, temperature: 0.7, topP: 0.9, seed: 4, recordTargetProbs: true, recordLogits: true });
    const V = 40;
    let checked = 0;
    for (let n = 0; n < r.B * r.R; n++) {
      if (!r.mask_BR[n]) {
        expect(r.samplerLogprobs_BR[n]).toBe(0);
        continue;
      }
      const y = r.tokens_BT[Math.floor(n / r.R) * (r.P + r.R) + r.P + (n % r.R)];
      expectAllclose([r.samplerLogprobs_BR[n]], [Math.log(r.targetProbs_BRV![n * V + y])], { rtol: 1e-5 });
      const z = Array.from(r.logits_BRV!.subarray(n * V, (n + 1) * V));
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
      expectAllclose([r.rawLogprobs_BR[n]], [z[y] - lse], { rtol: 1e-5, atol: 1e-6 });
      checked++;
    }
    expect(checked).toBeGreaterThan(8);
    s.dispose();
  });

  it('top-k 1 is greedy decoding with sampler log-prob 0', () => {
    const s = new Student(SMALL);
    const r = sample(s, [[1, 7, 3]], { maxNewTokens: 6, topK: 1, seed: 9, recordLogits: true, stopToken: null });
    const V = 40;
    for (let t = 0; t < 6; t++) {
      const z = Array.from(r.logits_BRV!.subarray(t * V, (t + 1) * V));
      const allowed = z.map((x, v) => (v === 0 || v === 1 ? -Infinity : x)); // default bans <pad>, <bos>
      expect(r.tokens_BT[r.P + t]).toBe(allowed.indexOf(Math.max(...allowed)));
      expect(r.samplerLogprobs_BR[t]).toBe(0);
    }
    s.dispose();
  });

  it('stops rows at the stop token (kept, mask 1), pads after it, never samples banned tokens', () => {
    const s = new Student({ ...SMALL, seed: 11 });
    const stop = 9;
    const banned = [0, 1, 4, 5, 6];
    const r = sample(s, Array.from({ length: 40 }, (_, i) => [1, 10 + (i % 5), 3]), { maxNewTokens: 12, stopToken: stop, bannedTokens: banned, seed: 2 });
    let finished = 0;
    for (let b = 0; b < r.B; b++) {
      const y = Array.from(responseOf(r, b));
      const L = r.responseLength_B[b];
      expect(y.length).toBe(L);
      for (const t of y) expect(banned).not.toContain(t);
      const stopAt = y.indexOf(stop);
      if (r.finished_B[b]) {
        finished++;
        expect(stopAt).toBe(L - 1);
      } else {
        expect(stopAt).toBe(-1);
        expect(L).toBe(12);
      }
      for (let t = 0; t < r.R; t++) {
        expect(r.mask_BR[b * r.R + t]).toBe(t < L ? 1 : 0);
        if (t >= L) expect(r.tokens_BT[b * (r.P + r.R) + r.P + t]).toBe(0);
      }
    }
    expect(finished).toBeGreaterThan(0);
    expect(finished).toBeLessThan(40);
    s.dispose();
  });

  it('trims R to the longest response when every row stops early', () => {
    const s = new Student(SMALL);
    const prompts = Array.from({ length: 3 }, () => [1, 7, 3]);
    const greedy = sample(s, prompts, { topK: 1, maxNewTokens: 6, stopToken: null, recordLogits: true });
    const first = greedy.tokens_BT[greedy.P];
    const r = sample(s, prompts, { topK: 1, maxNewTokens: 6, stopToken: first, recordLogits: true, recordTargetProbs: true });
    expect([r.R, r.tokens_BT.length, r.mask_BR.length, r.logits_BRV!.length, r.targetProbs_BRV!.length]).toEqual([1, 3 * (r.P + 1), 3, 3 * 40, 3 * 40]);
    expect(Array.from(r.finished_B)).toEqual([1, 1, 1]);
    expect(Array.from(r.logits_BRV!.subarray(0, 40))).toEqual(Array.from(greedy.logits_BRV!.subarray(0, 40)));
    s.dispose();
  });

  it('context ids: equal prompt and prefix <=> equal id', () => {
    const s = new Student(SMALL);
    const r = sample(s, [[1, 7, 3], [1, 7, 3], [1, 8, 3], [1, 7, 3]], { maxNewTokens: 5, seed: 1, stopToken: null });
    const key = (b: number, t: number) => `${b % 4 === 2 ? 'p8' : 'p7'}|${Array.from(r.tokens_BT.subarray(b * (r.P + r.R) + r.P, b * (r.P + r.R) + r.P + t)).join(',')}`;
    for (let t = 0; t < 5; t++) {
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          expect(r.contextIds_BR[a * r.R + t] === r.contextIds_BR[b * r.R + t], `t ${t} rows ${a} ${b}`).toBe(key(a, t) === key(b, t));
        }
      }
    }
    expect(r.contextIds_BR[0]).toBe(r.contextIds_BR[r.R]); // rows 0 and 1 share the prompt
    s.dispose();
  });

  it('leaks no tensors', () => {
    const s = new Student(SMALL);
    expectNoLeak(() => {
      sample(s, [[1, 7, 3], [1, 3]], { maxNewTokens: 6, seed: 1, props: { strength: 1 } });
    });
    expect(tf.memory().numTensors).toBeGreaterThan(0);
    s.dispose();
  });

  it('rejects bad options', () => {
    expect(() => resolveSampleOptions({ topP: 0 })).toThrow(/topP must be a number in \(0, 1\]/);
    expect(() => resolveSampleOptions({ temperature: 0 })).toThrow(/temperature must be a finite number > 0/);
    expect(() => resolveSampleOptions({ topk: 3 } as never)).toThrow(/unknown option 'topk'/);
    expect(() => resolveSampleOptions({ stopToken: 0 })).toThrow(/stopToken 0 must not be banned/);
    expect(() => resolveSampleOptions({ topK: 1.5 })).toThrow(/topK must be a non-negative integer/);
  });
});

describe('shared work changes no bit (prefill once per prompt, one decode per distinct prefix, finished rows left out)', () => {
  it('recorded logits == a plain prefill + decode of every row with the sampled tokens, bit for bit', () => {
    const s = new Student({ vocabSize: 40, context: 20, layers: 2, width: 16, heads: 2, mlpRatio: 2, seed: 11, initStd: 0.5 });
    const V = 40;
    // repeated prompts and a low temperature: many rows share prefixes
    const prompts = [[1, 5, 6, 3], [1, 5, 6, 3], [1, 8, 3], [1, 5, 6, 3], [1, 8, 3], [1, 9, 9, 9, 3]];
    // stop on the token this student samples most, so that rows finish at different lengths
    const probe = sample(s, prompts, { maxNewTokens: 10, seed: 4, temperature: 0.3, stopToken: null, bannedTokens: [0, 1] });
    const counts = new Map<number, number>();
    for (let b = 0; b < probe.B; b++) for (let t = 0; t < probe.R; t++) {
      const y = probe.tokens_BT[b * (probe.P + probe.R) + probe.P + t];
      counts.set(y, (counts.get(y) ?? 0) + 1);
    }
    const stopToken = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    const r = sample(s, prompts, { maxNewTokens: 10, seed: 4, temperature: 0.3, recordLogits: true, stopToken, bannedTokens: [0, 1] });
    const { B, P, R } = r;
    const T = P + R;
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
    const prompts_BP = new Int32Array(B * P);
    for (let b = 0; b < B; b++) prompts_BP.set(r.tokens_BT.subarray(b * T, b * T + P), b * P);
    const ref = s.prefill(prompts_BP, B, P, r.start_B, T - 1);
    let logits = ref.logits_BV;
    let shared = 0;
    for (let t = 0; t < R; t++) {
      for (let b = 0; b < B; b++) {
        if (!r.mask_BR[b * R + t]) continue;
        const n = b * R + t;
        expect(bits(r.logits_BRV!.subarray(n * V, (n + 1) * V)), `row ${b} position ${t}`).toEqual(bits(logits.subarray(b * V, (b + 1) * V)));
        if (r.contextIds_BR.subarray(0, B * R).some((c, m) => m !== n && m % R === t && c === r.contextIds_BR[n])) shared++;
      }
      if (t < R - 1) logits = s.decode(ref.cache, Int32Array.from({ length: B }, (_, b) => r.tokens_BT[b * T + P + t]));
    }
    expect(shared, 'positions whose prefix another row shares').toBeGreaterThan(10);
    expect(Array.from(r.finished_B).some((f, b) => f && r.responseLength_B[b] < R), 'a row that finished early').toBe(true);
    s.dispose();
  });
});

