export * from './validate';
export * from './logSoftmax';
export * from './gather';
export * from './topk';
export * from './entropy';
export * from './divergences';
export * from './fdivergences';
