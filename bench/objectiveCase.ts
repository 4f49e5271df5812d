/**
 * One benchmark case in a fresh process (so peak memory is this case's alone):
 *   node dist/bench/objectiveCase.js <objective> <N> <V> <fused|composed> <reps>
 * Prints one JSON line: median milliseconds for loss + student-logit gradient, and peak memory.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import '../lib/objectives';
import { objectiveLossAndGrad } from '../lib/objectives/registry';
import { disposeBatch, syntheticBatch } from '../lib/objectives/synthetic';
import { BENCH_OPTIONS } from './options';

async function main(): Promise<void> {
  const [name, nArg, vArg, mode, repsArg] = process.argv.slice(2);
  const n = Number(nArg);
  const v = Number(vArg);
  const reps = Number(repsArg ?? 5);
  const info = await initBackend({ quiet: true });
  const batch = syntheticBatch({ tokens: n, vocab: v, sequences: 16, seed: 3, promptShare: 0 });
  const options = { ...(BENCH_OPTIONS[name] ?? {}), fused: mode === 'fused' };
  const baseRss = process.memoryUsage().rss;
  const times: number[] = [];
  let loss = 0;
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    const out = objectiveLossAndGrad(name, batch, options, 'token-mean');
    out.grad_NV.dataSync(); // force completion
    const dt = performance.now() - t0;
    loss = out.loss;
    out.grad_NV.dispose();
    if (r > 0) times.push(dt); // the first call warms up kernels and allocations
  }
  times.sort((a, b) => a - b);
  const maxRss = process.resourceUsage().maxRSS * 1024;
  disposeBatch(batch);
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
      peakGrowthBytes: maxRss - baseRss,
      peakOverLogits: (maxRss - baseRss) / logitsBytes,
      leakedTensors: tf.memory().numTensors,
    }),
  );
}

main().catch((e) => {
  console.log(JSON.stringify({ error: (e as Error).message }));
  process.exit(1);
});
