/**
 * The default sweep job: one training run of lib/train, exactly what `opdlab run` does (style.md item 8).
 *
 *   validate(input) = resolveConfig(input)            (typed Config, documented defaults, unknown keys rejected)
 *   key(config)     = runKey(config)                  (sha256 of the outcome config + package version + git commit)
 *   run(config, <root>/<sweep>/<key>) = train run(config with out = {root, sweep, ifExists: 'resume'}).summary.metrics
 *
 * `out` and `stopAfter` belong to the runner (where the folder goes, whether it is interrupted), so a spec may not
 * set them. With ifExists 'resume' a cell whose worker was killed continues from the trainer's last checkpoint, and
 * one the trainer finished (status done, summary.json) is returned as is. The runner and the workers load this
 * module (and with it lib/train) only when a spec names the distill job.
 */
import * as path from 'path';
import { initBackend } from '../backend';
import { resolveConfig, type Config } from '../train/config';
import { run as trainRun } from '../train/run';
import { codeVersion, runKey } from '../train/runKey';
import { abortError, type Job, type JobContext, type Metrics } from './job';

export const distillJob: Job<Config> = {
  name: 'distill',
  codeVersion: () => codeVersion(),
  validate(input: unknown): Config {
    if (input && typeof input === 'object' && !Array.isArray(input)) {
      for (const k of ['out', 'stopAfter']) {
        if (k in input) throw new Error(`config: ${k} is set by the sweep runner (--out, interruption); remove it from the spec`);
      }
    }
    return resolveConfig(input as never);
  },
  key: (config: Config) => runKey(config),
  async run(config: Config, runDir: string, ctx: JobContext): Promise<Metrics> {
    await initBackend({ quiet: true });
    const sweepDir = path.dirname(runDir);
    const input: Config = { ...config, out: { root: path.dirname(sweepDir), sweep: path.basename(sweepDir), ifExists: 'resume' } };
    const steps = config.warmup.steps + config.distill.steps + (config.continual?.steps ?? 0);
    const result = await trainRun(input, {
      onProgress: (e) => {
        if (ctx.signal.aborted) throw abortError();
        const done = e.stage === 'warmup' ? e.step : config.warmup.steps + e.step;
        ctx.progress(steps > 0 ? done / steps : 1, e.stage === 'warmup' ? `warm-up ${e.step}/${e.total}` : `${e.phase} ${e.step}/${e.total}`);
      },
    });
    if (path.resolve(result.dir) !== path.resolve(runDir)) {
      throw new Error(`distill job: the trainer wrote ${result.dir}, the runner expected ${runDir} (run keys disagree)`);
    }
    if (result.status !== 'done' || !result.summary) throw new Error(`distill job: the run ended with status '${result.status}'`);
    return result.summary.metrics;
  },
};
