/**
 * One on-policy distillation step of the simulation's student, timed by part (the opdlab side of the student
 * benchmark; the PyTorch side is bench/reference/student.py, the table is bench/studentRun.ts):
 *
 *   sampling    y ~ pS(. | prompt), KV-cached (lib/sim/sampler.ts `sample`: prefill, then one batched decode
 *               per position), for B = P x G rows (P prompts, G rollouts each), R new tokens per row
 *   forward     z = student.responseLogits(rollouts)                      [B R, V] (the training pass)
 *   loss        opd (lib/objectives/opd.ts, fused):  A_t = sg[log pT(y_t) - log pS(y_t)],
 *               l_t = -A_t log pS(y_t), token-mean over the response mask
 *   backward    tf.variableGrads over every student parameter
 *   optimiser   tf.train.adam(lr, 0.9, 0.999, 1e-8).applyGradients
 *
 * The teacher is a fixed random logits tensor [B R, V] (N(0, 2^2)), made once outside the timed region, so the
 * task's teacher is not part of the timing; the loss still reads log pT(y_t) from it (a log-softmax of its rows).
 * Rows never stop early (stopToken null), so every step samples and trains on exactly B x R tokens and both
 * implementations do the same work. Prompts are `promptLength` tokens: <bos> then random ids.
 *
 *   node dist/bench/student.js <config> <reps> [warmup]
 * prints one JSON line: the median milliseconds of each part over `reps` steps after `warmup` steps.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import '../lib/objectives';
import { computeObjective } from '../lib/objectives/registry';
import { responseTokens } from '../lib/sim/batch';
import { Rng } from '../lib/sim/rng';
import { sample } from '../lib/sim/sampler';
import { Student } from '../lib/sim/student';
import { tok } from '../lib/sim/vocab';
import { distillBenchConfig, median, type DistillBenchConfig } from './studentConfigs';

export { DISTILL_BENCH_CONFIGS, distillBenchConfig, type DistillBenchConfig } from './studentConfigs';

/** Milliseconds of one step, by part. */
export interface DistillStepTimes {
  sampleMs: number;
  forwardBackwardMs: number;
  optimiserMs: number;
  stepMs: number;
}

/** A student, its Adam optimiser, the prompts and the fixed random teacher of one benchmark configuration. */
export class DistillStepBench {
  readonly student: Student;
  readonly rows: number;
  private readonly prompts: Int32Array[];
  private readonly teacher_NV: tf.Tensor2D;
  private readonly optimizer: tf.AdamOptimizer;

  constructor(readonly config: DistillBenchConfig, seed = 0) {
    this.student = new Student({ ...config.student, seed });
    const V = this.student.config.vocabSize;
    const rng = new Rng(seed + 1);
    const distinct = Array.from({ length: config.prompts }, () =>
      Int32Array.from({ length: config.promptLength }, (_, i) => (i === 0 ? tok.bos : 4 + rng.int(V - 4))),
    );
    this.prompts = distinct.flatMap((p) => Array.from({ length: config.group }, () => p));
    this.rows = this.prompts.length;
    const n = this.rows * config.responseLength * V;
    const teacher = new Float32Array(n);
    for (let i = 0; i < n; i++) teacher[i] = 2 * rng.normal();
    this.teacher_NV = tf.tensor2d(teacher, [this.rows * config.responseLength, V]);
    this.optimizer = tf.train.adam(config.learningRate, 0.9, 0.999, 1e-8);
  }

  /** Tokens one step samples and trains on (B x R). */
  get tokensPerStep(): number {
    return this.rows * this.config.responseLength;
  }

  /** One distillation step; returns its loss and the time of each part. */
  step(seed: number): DistillStepTimes & { loss: number } {
    const t0 = performance.now();
    const rollouts = sample(this.student, this.prompts, { maxNewTokens: this.config.responseLength, stopToken: null, seed });
    const t1 = performance.now();
    const tokens_N = responseTokens(rollouts);
    const { value, grads } = tf.variableGrads(
      () =>
        computeObjective('opd', {
          studentLogits_NV: this.student.responseLogits(rollouts),
          tokens_N,
          mask_N: rollouts.mask_BR,
          teacher: { logits_NV: this.teacher_NV },
        }).loss,
      this.student.variables,
    );
    const loss = value.dataSync()[0];
    const t2 = performance.now();
    this.optimizer.applyGradients(grads as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
    // wasm runs ops synchronously; reading one updated weight makes the timing independent of that
    this.student.variables[this.student.variables.length - 1].dataSync();
    const t3 = performance.now();
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, sampleMs: t1 - t0, forwardBackwardMs: t2 - t1, optimiserMs: t3 - t2, stepMs: t3 - t0 };
  }

  dispose(): void {
    this.student.dispose();
    this.teacher_NV.dispose();
    this.optimizer.dispose();
  }
}

/** Median time of each part over `reps` steps after `warmup` steps. */
export function benchDistillStep(config: DistillBenchConfig, reps: number, warmup: number): DistillStepTimes & { loss: number; tokensPerStep: number; parameters: number } {
  const bench = new DistillStepBench(config);
  try {
    for (let i = 0; i < warmup; i++) bench.step(1000 + i);
    const runs = Array.from({ length: reps }, (_, i) => bench.step(i));
    const part = (k: keyof DistillStepTimes) => median(runs.map((r) => r[k]));
    return {
      sampleMs: part('sampleMs'),
      forwardBackwardMs: part('forwardBackwardMs'),
      optimiserMs: part('optimiserMs'),
      stepMs: part('stepMs'),
      loss: runs[runs.length - 1].loss,
      tokensPerStep: bench.tokensPerStep,
      parameters: bench.student.parameterCount(),
    };
  } finally {
    bench.dispose();
  }
}

async function main(): Promise<void> {
  const [name, repsArg, warmupArg] = process.argv.slice(2);
  const config = distillBenchConfig(name ?? 'default');
  const info = await initBackend({ quiet: true });
  const out = benchDistillStep(config, Number(repsArg ?? 5), Number(warmupArg ?? 2));
  console.log(JSON.stringify({ config: config.name, backend: info.active, ...out, leakedTensors: tf.memory().numTensors }));
}

if (require.main === module) {
  main().catch((e) => {
    console.log(JSON.stringify({ error: (e as Error).message }));
    process.exit(1);
  });
}
