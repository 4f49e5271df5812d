/**
 * opdlab: the library. `import * as opd from 'opdlab'` (or from dist/lib in a notebook) gives every module.
 */
export * from './backend';
export * as probs from './probs';
export * as objectives from './objectives';
export { computeObjective, objectiveLossAndGrad, getObjective, listObjectives } from './objectives/registry';
export * as analysis from './analysis';
export * as io from './io';
export * as kernels from './kernels';
export * as train from './train';
export * as figures from './figures';
export * as notebooks from './notebooks';
export * as report from './report/analyze';
