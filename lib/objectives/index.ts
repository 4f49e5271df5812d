/**
 * Importing this module registers every objective. Add new objective files here.
 */
export * from './types';
export * from './batch';
export * from './registry';
export * from './fused';
export * from './synthetic';
export * from './check';
// every objective registers itself on import
export * from './opd';
export * from './aopd';
export * from './gkd';
export * from './seqkd';
export * from './gopd';
export * from './opdplus';
export * from './topkRkl';
export * from './scope';
