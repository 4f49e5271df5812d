/**
 * Ablation sweeps: specs as data (spec.ts), run keys and jobs (job.ts), the worker pool and its locks
 * (runner.ts, worker.ts, lock.ts), the sweep folder (store.ts), shards (shard.ts), summary tables (summary.ts,
 * stats.ts). `opdlab sweep` is cli.ts.
 */
export * from './atomic';
export * from './job';
export * from './lock';
export * from './progress';
export * from './runner';
export * from './shard';
export * from './spec';
export * from './stats';
export * from './store';
export * from './summary';
export { sweepCommand, parseSets, writeSummary, SWEEP_DEFAULTS } from './cli';
