/**
 * Batch helpers over a task's exact teacher (tasks/types.ts TeacherCursor):
 *
 *   scoreResponses    out[(b R + t) V + v] = log pT(v | prompt_b, y_b,<t)     for t < R      [B * R, V]
 *   teacherLogprobs   log pT(. | prompt, prefix) for one prefix                                [V]
 *   sampleTeacher     y ~ pT(. | prompt) token by token (optionally at a temperature), up to <eos>
 *   teacherAccuracy   share of teacher samples the verifier accepts (the teacher's pass@1)
 *   validResponses    every response the teacher counts as correct (depth-first over cursor.valid())
 *
 * Rows follow the layout of a sampled batch (sampler.ts): response token t of row b is row b * R + t, and the
 * teacher row at t conditions on the response tokens before t. Rows past a response's <eos> are the teacher's
 * after-the-end distribution (mass on <eos>); callers mask them out.
 */
import { deriveSeed, Rng } from './rng';
import type { Prompt, Task } from './tasks/types';

export function teacherLogprobs<P extends Prompt>(task: Task<P>, prompt: P, prefix: ArrayLike<number>): Float32Array {
  const c = task.cursor(prompt);
  for (let i = 0; i < prefix.length; i++) c.push(prefix[i]);
  const out = new Float32Array(task.vocab.size);
  c.logprobs(out, 0);
  return out;
}

/**
 * Teacher log-probs for every response position of a padded batch.
 * @param responses_BR row-major [B * R] response tokens (anything after <eos> is ignored by the teacher).
 * @param out          optional [B * R * V] buffer to fill (reused across steps to avoid allocation).
 */
export function scoreResponses<P extends Prompt>(task: Task<P>, prompts: readonly P[], responses_BR: ArrayLike<number>, R: number, out?: Float32Array): Float32Array {
  const B = prompts.length;
  const V = task.vocab.size;
  if (!Number.isInteger(R) || R < 0) throw new Error(`scoreResponses: R must be a non-negative integer, got ${R}`);
  if (responses_BR.length !== B * R) throw new Error(`scoreResponses: responses must hold B * R = ${B} * ${R} = ${B * R} tokens, got ${responses_BR.length}`);
  const rows = out ?? new Float32Array(B * R * V);
  if (rows.length !== B * R * V) throw new Error(`scoreResponses: out must have length B * R * V = ${B * R * V}, got ${rows.length}`);
  for (let b = 0; b < B; b++) {
    const c = task.cursor(prompts[b]);
    for (let t = 0; t < R; t++) {
      c.logprobs(rows, (b * R + t) * V);
      c.push(responses_BR[b * R + t]);
    }
  }
  return rows;
}

export interface TeacherSampleOptions {
  /** Sampling temperature on the teacher's log-probs (1 = the teacher itself). */
  temperature: number;
  /** Most tokens per response (default: the task's maxResponseLength). */
  maxLength?: number;
}

/** One response per prompt sampled from the teacher, <eos> included when reached; deterministic in seed. */
export function sampleTeacher<P extends Prompt>(task: Task<P>, prompts: readonly P[], seed: number, options: Partial<TeacherSampleOptions> = {}): Int32Array[] {
  const temperature = options.temperature ?? 1;
  const maxLength = options.maxLength ?? task.maxResponseLength;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`sampleTeacher: temperature must be a finite number > 0, got ${temperature}`);
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new Error(`sampleTeacher: maxLength must be a positive integer, got ${maxLength}`);
  const V = task.vocab.size;
  const eos = task.vocab.id('<eos>');
  const rng = new Rng(deriveSeed(seed, task.name, 'teacher-samples'));
  const logp = new Float32Array(V);
  const w = new Float64Array(V);
  return prompts.map((prompt) => {
    const c = task.cursor(prompt);
    const out: number[] = [];
    while (out.length < maxLength) {
      c.logprobs(logp, 0);
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (logp[v] > max) max = logp[v];
      for (let v = 0; v < V; v++) w[v] = Math.exp((logp[v] - max) / temperature);
      const y = rng.categorical(w, V);
      out.push(y);
      c.push(y);
      if (y === eos) break;
    }
    return Int32Array.from(out);
  });
}

export interface AccuracyEstimate {
  /** Share of samples the verifier accepts. */
  accuracy: number;
  /** Binomial standard error sqrt(a (1 - a) / n). */
  stderr: number;
  n: number;
}

/** The teacher's pass@1 on the given prompts, `samplesPerPrompt` samples each. */
export function teacherAccuracy<P extends Prompt>(task: Task<P>, prompts: readonly P[], seed: number, samplesPerPrompt = 1): AccuracyEstimate {
  if (!Number.isInteger(samplesPerPrompt) || samplesPerPrompt < 1) throw new Error(`teacherAccuracy: samplesPerPrompt must be a positive integer, got ${samplesPerPrompt}`);
  const repeated = prompts.flatMap((p) => Array.from({ length: samplesPerPrompt }, () => p));
  const samples = sampleTeacher(task, repeated, seed);
  let ok = 0;
  samples.forEach((y, i) => {
    if (task.verify(repeated[i], y)) ok++;
  });
  const n = samples.length;
  const a = n > 0 ? ok / n : NaN;
  return { accuracy: a, stderr: Math.sqrt((a * (1 - a)) / n), n };
}

/** Every response the teacher means as correct for a prompt (depth-first over valid()); throws past `limit`. */
export function validResponses<P extends Prompt>(task: Task<P>, prompt: P, limit = 10_000): Int32Array[] {
  const out: Int32Array[] = [];
  const walk = (c: ReturnType<Task<P>['cursor']>, prefix: number[]) => {
    if (c.done) {
      if (out.length >= limit) throw new Error(`validResponses: more than ${limit} valid responses`);
      out.push(Int32Array.from(prefix));
      return;
    }
    if (prefix.length > task.maxResponseLength) throw new Error(`validResponses: a valid path exceeds maxResponseLength ${task.maxResponseLength}`);
    for (const y of c.valid()) {
      const next = c.clone();
      next.push(y);
      walk(next, [...prefix, y]);
    }
  };
  walk(task.cursor(prompt), []);
  return out;
}
