/**
 * Timings of the simulation's hot paths, for `opdlab bench` and the README (all in ms, median of `reps` runs
 * after `warmup` runs, on the active TensorFlow.js backend):
 *
 *   forwardBackwardMs  mean next-token cross-entropy of [B x T] tokens, forward and gradients of every weight
 *   sampleMs           KV-cached sampling of B sequences x T new tokens after a promptLength-token prompt
 *   decodeStepMs       sampleMs / T: the cost per sampled position of that batch (prefill included)
 *   teacherScoreMs     exact math-teacher log-probs for a [B x T] response batch (plain JS)
 *   kernelsPerDecodeStep  tfjs kernels one decode step dispatches (tf.profile)
 */
import * as tf from '@tensorflow/tfjs';
import { packBatch } from './batch';
import { responseNll } from './nll';
import { Rng } from './rng';
import { sample } from './sampler';
import { Student, type StudentConfig } from './student';
import { MathTask } from './tasks/math';
import { scoreResponses, sampleTeacher } from './teacher';
import { tok } from './vocab';

export interface StudentBenchOptions {
  B: number;
  T: number;
  promptLength: number;
  reps: number;
  warmup: number;
  student: Partial<StudentConfig>;
}

export const DEFAULT_STUDENT_BENCH: Readonly<StudentBenchOptions> = { B: 32, T: 40, promptLength: 8, reps: 5, warmup: 2, student: {} };

export interface StudentBench {
  backend: string;
  parameters: number;
  forwardBackwardMs: number;
  sampleMs: number;
  decodeStepMs: number;
  teacherScoreMs: number;
  kernelsPerDecodeStep: number;
  options: StudentBenchOptions;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function time(reps: number, warmup: number, fn: (i: number) => void): number {
  for (let i = 0; i < warmup; i++) fn(-1 - i);
  const xs: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn(i);
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

export async function benchStudent(options: Partial<StudentBenchOptions> = {}): Promise<StudentBench> {
  const o = { ...DEFAULT_STUDENT_BENCH, ...options };
  const { B, T, promptLength, reps, warmup } = o;
  const student = new Student({ ...o.student, context: Math.max(o.student.context ?? 48, promptLength + T, T + 1) });
  const V = student.config.vocabSize;
  const rng = new Rng(12345);
  try {
    const ce = packBatch(
      Array.from({ length: B }, () => Int32Array.of(tok.bos)),
      Array.from({ length: B }, () => Int32Array.from({ length: T }, () => 2 + rng.int(V - 2))),
    );
    const forwardBackwardMs = time(reps, warmup, () => {
      const { value, grads } = tf.variableGrads(() => responseNll(student, ce), student.variables);
      value.dataSync();
      tf.dispose([value, ...Object.values(grads)]);
    });
    const prompts = Array.from({ length: B }, () => Int32Array.from({ length: promptLength }, (_, i) => (i === 0 ? tok.bos : 7 + rng.int(10))));
    const sampleMs = time(reps, warmup, (i) => {
      sample(student, prompts, { maxNewTokens: T, stopToken: null, seed: i });
    });
    const cacheRun = student.prefill(new Int32Array(B * promptLength).fill(tok.bos), B, promptLength, new Int32Array(B), promptLength + 1);
    const profile = await tf.profile(() => {
      student.decode(cacheRun.cache, new Int32Array(B).fill(tok.bos));
    });
    const task = new MathTask({ digits: 3 });
    const mathPrompts = task.samplePrompts('train', B, 1);
    const teacherSamples = sampleTeacher(task, mathPrompts, 2);
    const responses = new Int32Array(B * T);
    teacherSamples.forEach((y, b) => responses.set(y.subarray(0, T), b * T));
    const buffer = new Float32Array(B * T * V);
    const teacherScoreMs = time(reps, warmup, () => scoreResponses(task, mathPrompts, responses, T, buffer));
    return {
      backend: tf.getBackend(),
      parameters: student.parameterCount(),
      forwardBackwardMs,
      sampleMs,
      decodeStepMs: sampleMs / T,
      teacherScoreMs,
      kernelsPerDecodeStep: profile.kernels.length,
      options: o,
    };
  } finally {
    student.dispose();
  }
}
