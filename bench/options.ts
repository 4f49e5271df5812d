/** Options each benchmarked objective runs with (the same maths as bench/reference/objectives.py). */
export const BENCH_OPTIONS: Record<string, Record<string, unknown>> = {
  opd: {},
  aopd: { topK: 16, eta: 0, beta: 0, supportNorm: 'none' },
  gkd: { beta: 0.5, topK: 0 },
  'topk-rkl': { topK: 32 },
};

/** The fused hot paths and the shapes the Core issue benchmarks them at. */
export const BENCH_OBJECTIVES = ['opd', 'aopd', 'gkd', 'topk-rkl'];
export const BENCH_SHAPES: [number, number][] = [
  [2048, 4096],
  [512, 32768],
];
