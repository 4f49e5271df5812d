/**
 * lib/analysis: the measuring equipment behind the advantage, black-hole, entropy, gradient, intervention and
 * top-K figures. Every function takes tensors or plain typed arrays of per-token values, so the simulation's
 * trainer and the rollout-dump analyser share it. Metric keys and their estimators: docs/metrics.md.
 */
export * from './values';
export * from './histogram';
export * from './tails';
export * from './advantages';
export * from './jacobian';
export * from './blackhole';
export * from './tracker';
export * from './entropyStats';
export * from './gradients';
export * from './intervention';
export * from './topkDiagnostics';
