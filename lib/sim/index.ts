/**
 * The simulation: tasks with exact teachers and verifiers, the student transformer, its samplers, PROPS.
 *
 *   tasks/      Task interface, math and tool tasks, createTask registry        (what is learned, and the truth)
 *   teacher     batch scoring, teacher sampling, teacher accuracy, valid paths  (the exact teacher in bulk)
 *   vocab       the shared 256-token vocabulary
 *   batch       the [B, P + R] left-padded sequence layout every batch uses
 *   student     the causal transformer (seeded init, full pass, KV-cached decode)
 *   kernels     its wasm-friendly ops: linear (XNNPACK-only gradient), JS causal attention
 *   nll         the SFT cross-entropy on a batch
 *   sampler     batched KV-cached sampling with temperature / top-k / top-p / PROPS, recording log-probs
 *   props       PROPS behaviour policy and samplingError
 *   checkpoint  save / load weights and Adam state
 *   rng         the seeded PRNG
 *   bench       timings of the hot paths
 */
export * from './rng';
export * from './vocab';
export * from './tasks';
export * from './teacher';
export * from './batch';
export * from './student';
export * from './kernels';
export * from './nll';
export * from './props';
export * from './sampler';
export * from './checkpoint';
export * from './bench';
