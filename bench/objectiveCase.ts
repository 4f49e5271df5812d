/**
 * One benchmark case in a fresh process (so peak memory is this case's alone):
 *   node dist/bench/objectiveCase.js <objective> <N> <V> <fused|composed|composed-student> <reps> [warmup]
 * Prints one JSON line: median milliseconds for loss + student-logit gradient, and peak memory.
 *   fused             the fused kernels, reading the full teacher logits in place
 *   composed          the composed tfjs-op reference (fused = false), the teacher's log-softmax, top-K and gather
 *                     included, as in the PyTorch reference
 *   composed-student  the same with the teacher handed over as a ready dump (top-K and sampled log-probs made
 *                     before the clock starts): the student's side alone (not for full-vocabulary gkd)
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';
import { initBackend } from '../lib/backend';
import '../lib/objectives';
import { withTeacherAsDump } from '../lib/objectives/batch';
import { objectiveLossAndGrad } from '../lib/objectives/registry';
import { disposeBatch, syntheticBatch } from '../lib/objectives/synthetic';
import { BENCH_OPTIONS } from './options';

const SYNCHRONOUS_BACKENDS = ['wasm', 'cpu', 'tensorflow'];

/**
 * Peak resident memory from here on: on Linux the kernel's high-water mark (VmHWM) is reset to the current RSS
 * (writing 5 to /proc/self/clear_refs), so building the batch does not count; elsewhere the lifetime maxRSS.
 */
function peakMeter(): () => number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc(); // the batch's JS arrays are garbage by now (run.ts starts this process with --expose-gc)
  const base = process.memoryUsage().rss;
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024 - base;
  } catch {
    return () => process.resourceUsage().maxRSS * 1024 - base;
  }
}

async function main(): Promise<void> {
  const [name, nArg, vArg, mode, repsArg, warmupArg] = process.argv.slice(2);
  const n = Number(nArg);
  const v = Number(vArg);
  const reps = Number(repsArg ?? 5);
  // untimed first calls: wasm code tiers up (Liftoff -> TurboFan) and the heap settles over the first few
  const warmup = Math.max(1, Number(warmupArg ?? 1));
  const info = await initBackend({ quiet: true });
  if (!['fused', 'composed', 'composed-student'].includes(mode)) throw new Error(`mode must be fused, composed or composed-student, got '${mode}'`);
  const full = syntheticBatch({ tokens: n, vocab: v, sequences: 16, seed: 3, promptShare: 0 });
  const options = { ...(BENCH_OPTIONS[name] ?? {}), fused: mode === 'fused' };
  const topK = Number((options as { topK?: number }).topK ?? 0);
  if (mode === 'composed-student' && name === 'gkd' && topK === 0) throw new Error('full-vocabulary gkd needs the full teacher logits');
  // opd reads only the sampled log-probs of a dump (its top-1 is unused)
  const batch = mode === 'composed-student' ? withTeacherAsDump(full, Math.max(topK, 1)) : full;
  const peakGrowth = peakMeter();
  const times: number[] = [];
  let loss = 0;
  for (let r = 0; r < reps + warmup; r++) {
    const t0 = performance.now();
    const out = objectiveLossAndGrad(name, batch, options, 'token-mean');
    // The gradient stays a tensor on the backend, as PyTorch's z.grad does (reading it all back would time a copy
    // that neither side needs). wasm, cpu and tensorflow run synchronously: the call is complete when it returns;
    // on an asynchronous backend (webgl, webgpu) read it to wait for the device.
    if (!SYNCHRONOUS_BACKENDS.includes(info.active)) out.grad_NV.dataSync();
    const dt = performance.now() - t0;
    loss = out.loss;
    out.grad_NV.dispose();
    if (r >= warmup) times.push(dt); // the first calls warm up kernels and allocations
  }
  times.sort((a, b) => a - b);
  const peakGrowthBytes = peakGrowth();
  disposeBatch(full);
  const logitsBytes = n * v * 4;
  console.log(
    JSON.stringify({
      objective: name,
      n,
      v,
      mode,
      backend: info.active,
      ms: times[Math.floor(times.length / 2)],
      loss,
      peakGrowthBytes,
      peakOverLogits: peakGrowthBytes / logitsBytes,
      leakedTensors: tf.memory().numTensors,
    }),
  );
}

main().catch((e) => {
  console.log(JSON.stringify({ error: (e as Error).message }));
  process.exit(1);
});
