/**
 * Importing this module registers every objective. Add new objective files here.
 */
export * from './types';
export * from './batch';
export * from './registry';
export * from './fused';
export * from './synthetic';
export * from './check';
