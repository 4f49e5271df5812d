/**
 * lib/train: warm-up SFT, the distillation loop, evaluation (pass@k), the continual stage, run folders.
 *
 *   config      Config, DEFAULT_CONFIG, resolveConfig (unknown keys and bad values rejected), deriveConfig
 *   runKey      canonicalJson, runKey(config), warmupKey(config), codeVersion
 *   run         run(config): warm-up -> distillation -> continual stage -> run folder; resumable
 *   warmup      SFT on teacher samples, cached under <root>/_warmup/<key>/
 *   step        one distillation step and its analysis metrics
 *   evaluate    pass@k (unbiased), avg@n on held-out prompts
 *   optimizer   Adam steps that resume bit-exactly
 *   runFolder   atomic writes, JSONL logs, status, ifExists
 *   cli         `opdlab run` flags -> config
 */
export * from './config';
export * from './runKey';
export * from './run';
export * from './warmup';
export * from './step';
export * from './evaluate';
export * from './optimizer';
export * from './runFolder';
export * from './cli';
