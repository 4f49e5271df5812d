/**
 * The configurations of the student distillation-step benchmark (bench/student.ts, bench/studentRun.ts,
 * bench/reference/student.py reads the same object as JSON). No TensorFlow.js import, so the runner stays light.
 */
import type { StudentConfig } from '../lib/sim/student';

export interface DistillBenchConfig {
  /** Name used on the command line and in the table. */
  name: string;
  /** The student (unset fields take lib/sim/student.ts DEFAULT_STUDENT). */
  student: Partial<StudentConfig>;
  /** Distinct prompts per step. */
  prompts: number;
  /** Rollouts per prompt (B = prompts * group rows). */
  group: number;
  /** Prompt tokens (<bos> + random ids). */
  promptLength: number;
  /** New tokens per row (R). */
  responseLength: number;
  /** Adam's learning rate. */
  learningRate: number;
}

/** The trainer's defaults (lib/train/config.ts: student shape, 8 prompts x 4 rollouts, distill lr 1e-4) with
 * OPD as the objective, and a wider, deeper student to show scaling. Context 48 = prompt 8 + response 40. */
export const DISTILL_BENCH_CONFIGS: DistillBenchConfig[] = [
  {
    name: 'default',
    student: { vocabSize: 256, context: 48, layers: 2, width: 64, heads: 4, mlpRatio: 4 },
    prompts: 8,
    group: 4,
    promptLength: 8,
    responseLength: 40,
    learningRate: 1e-4,
  },
  {
    name: 'wide',
    student: { vocabSize: 256, context: 48, layers: 4, width: 128, heads: 4, mlpRatio: 4 },
    prompts: 8,
    group: 4,
    promptLength: 8,
    responseLength: 40,
    learningRate: 1e-4,
  },
];

export function distillBenchConfig(name: string): DistillBenchConfig {
  const c = DISTILL_BENCH_CONFIGS.find((x) => x.name === name);
  if (!c) throw new Error(`student bench: unknown config '${name}' (known: ${DISTILL_BENCH_CONFIGS.map((x) => x.name).join(', ')})`);
  return c;
}

export function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

