/**
 * A sweep worker: a Node process forked by the runner (lib/sweep/runner.ts) for ONE cell, then gone. A fresh
 * process per cell costs well under a second, and buys isolation: no TensorFlow.js state, leaked tensor or wasm
 * heap growth of one cell can reach the next, so a cell's metrics do not depend on which cells ran before it in
 * the same process (and a resumed sweep equals an uninterrupted one).
 *
 * Protocol (IPC):  runner -> {type: 'run', job: JobRef, cell: {key, name, config, runDir}}  |  {type: 'abort', why}
 *                  worker -> {type: 'progress', fraction, note}  |  {type: 'result', metrics}  |  {type: 'error', error}
 * The worker never writes the cell's outcome (result.json, status): the runner does, after checking the metrics
 * and that it still holds the cell's lock. If the runner dies (kill -9), the IPC channel closes and the worker exits
 * at once (or at the job's next progress report, if the job is busy), so no orphan keeps writing into the folder.
 */
import { abortError, checkMetrics, loadJob, type JobRef } from './job';

interface RunMessage {
  type: 'run';
  job: JobRef;
  cell: { key: string; name: string; config: unknown; runDir: string };
}
type FromRunner = RunMessage | { type: 'abort'; why?: string };

const controller = new AbortController();
let lastProgress = 0;

function send(message: unknown): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) process.exit(3);
    process.send(message, undefined, {}, () => resolve());
  });
}

function errorOf(e: unknown): { name: string; message: string; stack?: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message, stack: err.stack };
}

async function runCell(m: RunMessage): Promise<void> {
  try {
    const job = loadJob(m.job);
    const metrics = await job.run(m.cell.config, m.cell.runDir, {
      signal: controller.signal,
      progress(fraction: number, note?: string) {
        if (!process.connected) process.exit(3); // the runner is gone
        if (controller.signal.aborted) throw abortError();
        const now = Date.now();
        if (now - lastProgress < 200 && fraction < 1) return;
        lastProgress = now;
        process.send?.({ type: 'progress', fraction, note });
      },
    });
    await send({ type: 'result', metrics: checkMetrics(metrics) });
  } catch (e) {
    await send({ type: 'error', error: errorOf(e) });
  }
  process.exit(0);
}

if (!process.send) {
  console.error('opdlab sweep worker: start me with child_process.fork from the sweep runner');
  process.exit(2);
}
process.on('disconnect', () => process.exit(3));
process.on('message', (m: FromRunner) => {
  if (m.type === 'run') void runCell(m);
  else if (m.type === 'abort') controller.abort(abortError(m.why));
});
