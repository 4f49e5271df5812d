/**
 * Sample rollout dumps generated from the simulation, in every supported format (`opdlab sample-dumps`;
 * committed under data/dumps/).
 *
 *   1. a student (lib/sim/student.ts) warmed up with `warmupSteps` of SFT on teacher samples of the math task
 *      (Adam, token-mean NLL, lib/sim/nll.ts), so its distribution is near the teacher's but not equal;
 *   2. rollouts from the KV-cached sampler (temperature 1, no truncation): student_lp = the sampler's recorded
 *      log q(y_t) (decode path, float32), student_lp_train = log pS(y_t) recomputed by a full forward pass
 *      (the same maths, another order of float32 operations: a small, realistic gap);
 *   3. the exact teacher's rows (lib/sim/teacher.ts scoreResponses): teacher_lp, its top-K, its entropy;
 *      the student's full-pass rows give its top-K and entropy. Top-K: lib/probs topKRows (ties: lower id).
 *
 * Engine-style variants carry the same rollouts in the engines' conventions (engines/*.ts): vLLM (logprob dicts
 * with 1-based ranks and the extra chosen-token entry; prompt_logprobs with None first), SGLang (triples with a
 * null first input log-prob), tinker (NaN first prompt log-prob written as Python's bare NaN; top-K requested at
 * K + 2 so the last two slots of every row are the sentinels (0, -99999)). The simulation's teacher is defined on
 * response prefixes only: engine fields for PROMPT positions (which the adapters skip) hold the prompt token with
 * log-prob -ln V as a stand-in.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { topKRows } from '../probs/topk';
import { packBatch, responseTokens } from '../sim/batch';
import { responseNll } from '../sim/nll';
import { sample } from '../sim/sampler';
import { Student } from '../sim/student';
import { createTask } from '../sim/tasks';
import { sampleTeacher, scoreResponses } from '../sim/teacher';
import { tok, VOCAB } from '../sim/vocab';
import { NAN_MARK } from './json';
import { writeJsonl, writeJsonRecords } from './jsonl';
import { writeNpyDump, writeSafetensorsDump } from './packed';
import { writeParquetDump } from './parquet';
import { emptyMeta, type DumpMeta, type DumpSequence } from './schema';
import { TINKER_SENTINEL_ID, TINKER_SENTINEL_LP } from './engines/tinker';

export interface SimulatedDumpOptions {
  /** Rollouts. Default 48. */
  sequences: number;
  /** SFT warm-up steps before sampling. Default 300. */
  warmupSteps: number;
  /** SFT batch size. Default 32. */
  batchSize: number;
  /** Adam learning rate. Default 3e-3. */
  lr: number;
  /** Top-K width of the dumped student and teacher top-K. Default 8. */
  k: number;
  seed: number;
}

export const DEFAULT_SIMULATED_DUMP: Readonly<SimulatedDumpOptions> = { sequences: 48, warmupSteps: 300, batchSize: 32, lr: 3e-3, k: 8, seed: 0 };

export interface SimulatedDump {
  meta: DumpMeta;
  sequences: DumpSequence[];
  /** The prompt of each sequence (engine-style records need it). */
  prompts: Int32Array[];
  /** Full log-prob rows per sequence, [T * V] (engine records need vocabulary ranks). */
  studentRows: Float32Array[];
  teacherRows: Float32Array[];
}

const f32 = Math.fround;

/** Row-wise log-softmax of [rows, V] float32 logits, in float64 then rounded to float32. */
function logSoftmaxRows(z: Float32Array, rows: number, V: number): Float32Array {
  const out = new Float32Array(rows * V);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, z[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(z[r * V + v] - m);
    const lse = m + Math.log(s);
    for (let v = 0; v < V; v++) out[r * V + v] = z[r * V + v] - lse;
  }
  return out;
}

function entropyRow(lp: Float32Array, off: number, V: number): number {
  let h = 0;
  for (let v = 0; v < V; v++) {
    const p = Math.exp(lp[off + v]);
    if (p > 0) h -= p * lp[off + v];
  }
  return h;
}

/** Rollouts of a briefly warmed-up student on the math task, scored by the exact teacher (file header). */
export function simulateDump(options: Partial<SimulatedDumpOptions> = {}): SimulatedDump {
  const o: SimulatedDumpOptions = { ...DEFAULT_SIMULATED_DUMP };
  for (const [k, v] of Object.entries(options)) {
    if (!(k in DEFAULT_SIMULATED_DUMP)) throw new Error(`simulateDump: unknown option '${k}' (known: ${Object.keys(DEFAULT_SIMULATED_DUMP).join(', ')})`);
    if (v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  }
  for (const k of ['sequences', 'batchSize', 'k'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`simulateDump: ${k} must be a positive integer, got ${o[k]}`);
  if (!Number.isInteger(o.warmupSteps) || o.warmupSteps < 0) throw new Error(`simulateDump: warmupSteps must be a non-negative integer, got ${o.warmupSteps}`);
  const task = createTask('math');
  const V = task.vocab.size;
  const student = new Student({ seed: o.seed });
  const opt = tf.train.adam(o.lr);
  try {
    for (let step = 0; step < o.warmupSteps; step++) {
      const prompts = task.samplePrompts('train', o.batchSize, o.seed * 100_003 + step);
      const ys = sampleTeacher(task, prompts, o.seed * 7919 + step);
      const batch = packBatch(prompts.map((p) => p.tokens), ys);
      opt.minimize(() => responseNll(student, batch), false, student.variables);
    }
    const prompts = task.samplePrompts('test', o.sequences, o.seed + 1);
    const roll = sample(student, prompts.map((p) => p.tokens), { temperature: 1, topP: 1, topK: 0, seed: o.seed + 2 });
    const { B, R } = roll;
    const logits = tf.tidy(() => student.responseLogits(roll).dataSync() as Float32Array); // [B R, V]
    const lpS = logSoftmaxRows(logits, B * R, V);
    const ys = responseTokens(roll);
    const lpT = scoreResponses(task, prompts, ys, R);
    const topS = topKRows(lpS, B * R, V, o.k);
    const topT = topKRows(lpT, B * R, V, o.k);
    const sequences: DumpSequence[] = [];
    const studentRows: Float32Array[] = [];
    const teacherRows: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const T = roll.responseLength_B[b];
      const rows = Array.from({ length: T }, (_, t) => b * R + t);
      const y = Int32Array.from(rows, (n) => ys[n]);
      const f = (fn: (n: number, t: number) => number) => Float64Array.from(rows, (n, t) => f32(fn(n, t)));
      const topk = (tk: { ids_NK: Int32Array; values_NK: Float32Array }) => ({
        k: o.k,
        ids: Int32Array.from({ length: T * o.k }, (_, q) => tk.ids_NK[rows[Math.floor(q / o.k)] * o.k + (q % o.k)]),
        lp: Float64Array.from({ length: T * o.k }, (_, q) => tk.values_NK[rows[Math.floor(q / o.k)] * o.k + (q % o.k)]),
      });
      sequences.push({
        sampleId: String(b),
        step: 0,
        promptLen: prompts[b].tokens.length,
        responseIds: y,
        mask: Uint8Array.from(rows, (n) => roll.mask_BR[n]),
        studentLp: f((n) => roll.samplerLogprobs_BR[n]),
        studentLpTrain: f((n, t) => lpS[n * V + y[t]]),
        teacherLp: f((n, t) => lpT[n * V + y[t]]),
        studentTopk: topk(topS),
        teacherTopk: topk(topT),
        studentEntropy: f((n) => entropyRow(lpS, n * V, V)),
        teacherEntropy: f((n) => entropyRow(lpT, n * V, V)),
        tokenKl: null,
        teacherResponseIds: y.slice(),
        reward: task.verify(prompts[b], y) ? 1 : 0,
        teacherId: null,
        origin: `simulation sequence ${b}`,
      });
      studentRows.push(lpS.slice(b * R * V, (b * R + T) * V));
      teacherRows.push(lpT.slice(b * R * V, (b * R + T) * V));
    }
    const specials = [tok.pad, tok.bos, tok.eos, tok.sep, ...['<call>', '</call>', '<arg>', 'C', 'S', '=', '=r'].map((t) => VOCAB.id(t))];
    const meta = emptyMeta({
      source: 'opdlab-sim',
      vocabSizeStudent: V,
      vocabSizeTeacher: V,
      tokenizerStudent: 'opdlab-sim-v1',
      tokenizerTeacher: 'opdlab-sim-v1',
      rendererStudent: 'opdlab-sim',
      rendererTeacher: 'opdlab-sim',
      sampler: { temperature: 1, topP: 1, topK: 0, logprobsMode: 'raw' },
      teacher: { temperature: 1, topP: 1, topK: 0, logprobsMode: 'raw' },
      dtype: 'float32',
      framework: 'opdlab',
      klDirection: 'reverse',
      k: o.k,
      eosId: tok.eos,
      padId: tok.pad,
      specialIds: specials,
      extra: { task: 'math', warmup_steps: o.warmupSteps, seed: o.seed },
    });
    return { meta, sequences, prompts: prompts.map((p) => p.tokens), studentRows, teacherRows };
  } finally {
    opt.dispose();
    student.dispose();
  }
}

/** 1 + the number of entries of row [off, off + V) strictly above entry v (vLLM's 1-based vocabulary rank). */
function vocabRank(lp: Float32Array, off: number, V: number, v: number): number {
  let r = 1;
  for (let u = 0; u < V; u++) if (lp[off + u] > lp[off + v]) r++;
  return r;
}

const round = (x: number) => Number(x.toPrecision(9));

/** vLLM-style records (engines/vllm.ts). */
export function vllmRecords(d: SimulatedDump, count: number): unknown[] {
  const V = d.meta.vocabSizeStudent!;
  const k = d.meta.k!;
  const stand = round(-Math.log(V));
  return d.sequences.slice(0, count).map((s, i) => {
    const T = s.responseIds.length;
    const prompt = d.prompts[i];
    const dict = (rows: Float32Array, t: number, chosen: number, chosenLp: number) => {
      const out: Record<string, { logprob: number; rank: number; decoded_token: string }> = {};
      const top = topKRows(rows.subarray(t * V, (t + 1) * V), 1, V, k);
      top.ids_NK.forEach((id, q) => (out[id] = { logprob: round(top.values_NK[q]), rank: q + 1, decoded_token: VOCAB.tokens[id] }));
      if (!(chosen in out)) out[chosen] = { logprob: round(chosenLp), rank: vocabRank(rows, t * V, V, chosen), decoded_token: VOCAB.tokens[chosen] };
      else out[chosen].logprob = round(chosenLp);
      return out;
    };
    const teacherPrompt = [null, ...Array.from(prompt.slice(1), (id) => ({ [id]: { logprob: stand, rank: 1, decoded_token: VOCAB.tokens[id] } }))];
    return {
      sample_id: s.sampleId,
      prompt_token_ids: Array.from(prompt),
      outputs: [{ token_ids: Array.from(s.responseIds), logprobs: Array.from({ length: T }, (_, t) => dict(d.studentRows[i], t, s.responseIds[t], s.studentLp[t])) }],
      teacher_prompt_logprobs: [...teacherPrompt, ...Array.from({ length: T }, (_, t) => dict(d.teacherRows[i], t, s.responseIds[t], s.teacherLp[t]))],
      teacher_prompt_token_ids: [...Array.from(prompt), ...Array.from(s.responseIds)],
      student_lp_train: Array.from(s.studentLpTrain!, round),
      reward: s.reward,
    };
  });
}

/** SGLang-style records (engines/sglang.ts). */
export function sglangRecords(d: SimulatedDump, count: number): unknown[] {
  const V = d.meta.vocabSizeStudent!;
  const k = d.meta.k!;
  const stand = round(-Math.log(V));
  return d.sequences.slice(0, count).map((s, i) => {
    const T = s.responseIds.length;
    const prompt = d.prompts[i];
    const tops = (rows: Float32Array, t: number) => {
      const top = topKRows(rows.subarray(t * V, (t + 1) * V), 1, V, k);
      return Array.from(top.ids_NK, (id, q) => [round(top.values_NK[q]), id, null]);
    };
    return {
      sample_id: s.sampleId,
      input_ids: Array.from(prompt),
      meta_info: {
        output_token_logprobs: Array.from({ length: T }, (_, t) => [round(s.studentLp[t]), s.responseIds[t], null]),
        output_top_logprobs: Array.from({ length: T }, (_, t) => tops(d.studentRows[i], t)),
        prompt_tokens: prompt.length,
        completion_tokens: T,
        finish_reason: { type: s.responseIds[T - 1] === d.meta.eosId ? 'stop' : 'length' },
      },
      teacher_meta_info: {
        input_token_logprobs: [[null, prompt[0], null], ...Array.from(prompt.slice(1), (id) => [stand, id, null]), ...Array.from({ length: T }, (_, t) => [round(s.teacherLp[t]), s.responseIds[t], null])],
        input_top_logprobs: [null, ...Array.from(prompt.slice(1), (id) => [[stand, id, null]]), ...Array.from({ length: T }, (_, t) => tops(d.teacherRows[i], t))],
      },
      student_lp_train: Array.from(s.studentLpTrain!, round),
      reward: s.reward,
    };
  });
}

/** tinker-style records (engines/tinker.ts): top-K requested at k + 2, so two sentinel slots per row. */
export function tinkerRecords(d: SimulatedDump, count: number): unknown[] {
  const k = d.meta.k!;
  const V = d.meta.vocabSizeStudent!;
  const stand = round(-Math.log(V));
  const kk = k + 2;
  const sentinels = (n: number) => ({ ids: Array<number>(n).fill(TINKER_SENTINEL_ID), lp: Array<number>(n).fill(TINKER_SENTINEL_LP) });
  return d.sequences.slice(0, count).map((s, i) => {
    const T = s.responseIds.length;
    const prompt = d.prompts[i];
    const tk = s.teacherTopk!;
    const idRows: number[][] = [];
    const lpRows: number[][] = [];
    const first = sentinels(kk);
    idRows.push(first.ids);
    lpRows.push(first.lp);
    for (let p = 1; p < prompt.length; p++) {
      const rest = sentinels(kk - 1);
      idRows.push([prompt[p], ...rest.ids]);
      lpRows.push([stand, ...rest.lp]);
    }
    for (let t = 0; t < T; t++) {
      const rest = sentinels(kk - k);
      idRows.push([...Array.from(tk.ids.subarray(t * k, (t + 1) * k)), ...rest.ids]);
      lpRows.push([...Array.from(tk.lp.subarray(t * k, (t + 1) * k), round), ...rest.lp]);
    }
    return {
      sample_id: s.sampleId,
      prompt_tokens: Array.from(prompt),
      sequence: { tokens: Array.from(s.responseIds), logprobs: Array.from(s.studentLp, round), stop_reason: s.responseIds[T - 1] === d.meta.eosId ? 'stop' : 'length' },
      teacher: {
        prompt_logprobs: [NAN_MARK, ...Array(prompt.length - 1).fill(stand), ...Array.from(s.teacherLp, round)],
        topk_prompt_logprobs: { token_ids: idRows, logprobs: lpRows },
        tokens: [...Array.from(prompt), ...Array.from(s.responseIds)],
      },
      reward: s.reward,
    };
  });
}

export interface SampleDumpFiles {
  dir: string;
  files: string[];
}

/** Writes every sample dump into `dir` (data/dumps in the repository). */
export async function writeSampleDumps(dir: string, options: Partial<SimulatedDumpOptions> = {}, engineSequences = 12): Promise<SampleDumpFiles> {
  const d = simulateDump(options);
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const at = (name: string) => {
    files.push(name);
    return join(dir, name);
  };
  await writeJsonl(at('sample.jsonl'), d.meta, d.sequences);
  await writeParquetDump(at('sample.parquet'), d.meta, d.sequences);
  writeSafetensorsDump(at('sample.safetensors'), d.meta, d.sequences, { floatDType: 'f32' });
  writeSafetensorsDump(at('sample_bf16.safetensors'), { ...d.meta, dtype: 'bfloat16' }, d.sequences, { floatDType: 'bf16' });
  rmSync(join(dir, 'sample_npy'), { recursive: true, force: true });
  writeNpyDump(at('sample_npy'), d.meta, d.sequences, { floatDType: 'f32' });
  const engineMeta = (source: string, mode: string) => emptyMeta({ ...d.meta, source, sampler: { ...d.meta.sampler, logprobsMode: mode }, teacher: { ...d.meta.teacher, logprobsMode: mode } });
  await writeJsonRecords(at('vllm.jsonl'), engineMeta('vllm', 'raw'), vllmRecords(d, engineSequences));
  await writeJsonRecords(at('sglang.jsonl'), engineMeta('sglang', 'processed'), sglangRecords(d, engineSequences));
  await writeJsonRecords(at('tinker.jsonl'), engineMeta('tinker', 'raw'), tinkerRecords(d, engineSequences));
  return { dir, files };
}
