/**
 * Evaluation on held-out prompts: n samples per prompt from the student, each checked by the task's verifier.
 *
 *   pass@k (one prompt, c of n samples correct) = 1 - C(n - c, k) / C(n, k)       (unbiased; Chen et al. 2021,
 *                                                = 1 - prod_{i = n-c+1}^{n} (1 - k / i)   "Evaluating Large Language
 *                                                  (the product form, stable for any n; 1 when n - c < k)   Models
 *                                                                                            Trained on Code", Eq. 1)
 *   eval/pass@k   = mean over prompts of pass@k, for k in 1, 2, 4, 8 (k <= n)
 *   eval/avg@n    = mean over prompts of c / n: the mean accuracy of n samples (SCOPE's avg@k with k = n). It
 *                   equals eval/pass@1 by construction (the unbiased pass@1 is c / n); logged under both names.
 *   eval/pass@1_stderr = sample standard deviation over prompts of c / n, divided by sqrt(prompts)
 *   eval/length_mean   = mean response length (tokens, <eos> included); eval/finished_frac = share ending in <eos>
 *
 * Samples use the student's sampler (temperature, top-p from the config) with one seed; rows are the prompts,
 * each repeated n times, in one batched call.
 */
import { responseOf } from '../sim/batch';
import { sample } from '../sim/sampler';
import type { Student } from '../sim/student';
import type { Prompt, Task } from '../sim/tasks/types';

/** The unbiased pass@k estimator for one prompt with c correct among n samples. */
export function passAtK(n: number, c: number, k: number): number {
  if (!Number.isInteger(n) || n < 1) throw new Error(`passAtK: n must be an integer >= 1, got ${n}`);
  if (!Number.isInteger(c) || c < 0 || c > n) throw new Error(`passAtK: c must be an integer in [0, n = ${n}], got ${c}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`passAtK: k must be an integer in [1, n = ${n}], got ${k}`);
  if (n - c < k) return 1;
  let miss = 1;
  for (let i = n - c + 1; i <= n; i++) miss *= 1 - k / i;
  return 1 - miss;
}

export interface EvalOptions {
  /** n samples per prompt. */
  samples: number;
  /** k values of pass@k (each <= samples). */
  ks: number[];
  temperature: number;
  topP: number;
  /** Seed of the sampling uniforms. */
  seed: number;
}

export interface EvalResult {
  /** eval/pass@k, eval/avg@n, eval/pass@1_stderr, eval/length_mean, eval/finished_frac. */
  metrics: Record<string, number>;
  /** [prompts] correct samples per prompt. */
  correct_P: Int32Array;
  /** Sampled tokens (response positions) in the evaluation. */
  tokens: number;
}

export function evaluate<P extends Prompt>(student: Student, task: Task<P>, prompts: readonly P[], o: EvalOptions): EvalResult {
  const n = o.samples;
  if (prompts.length === 0) throw new Error('evaluate: prompts must not be empty');
  for (const k of o.ks) if (!(Number.isInteger(k) && k >= 1 && k <= n)) throw new Error(`evaluate: every k must be an integer in [1, samples = ${n}], got ${k}`);
  const rows = prompts.flatMap((p) => Array.from({ length: n }, () => p));
  const r = sample(student, rows.map((p) => p.tokens), {
    maxNewTokens: task.maxResponseLength,
    temperature: o.temperature,
    topP: o.topP,
    seed: o.seed,
  });
  const correct_P = new Int32Array(prompts.length);
  let length = 0;
  let finished = 0;
  rows.forEach((p, b) => {
    if (task.verify(p, responseOf(r, b))) correct_P[Math.floor(b / n)]++;
    length += r.responseLength_B[b];
    finished += r.finished_B[b];
  });
  const P = prompts.length;
  const metrics: Record<string, number> = {};
  for (const k of o.ks) {
    let s = 0;
    for (let i = 0; i < P; i++) s += passAtK(n, correct_P[i], k);
    metrics[`eval/pass@${k}`] = s / P;
  }
  const acc = Array.from(correct_P, (c) => c / n);
  const mean = acc.reduce((a, x) => a + x, 0) / P;
  metrics[`eval/avg@${n}`] = mean;
  metrics['eval/pass@1_stderr'] = P > 1 ? Math.sqrt(acc.reduce((a, x) => a + (x - mean) ** 2, 0) / (P - 1) / P) : NaN;
  metrics['eval/length_mean'] = length / rows.length;
  metrics['eval/finished_frac'] = finished / rows.length;
  return { metrics, correct_P, tokens: length };
}
