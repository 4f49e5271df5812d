/**
 * Initialisation strength and continual learning (claims C3, C8, C9): data file (./data.ts) and figures
 * (./figures.ts: fig2cWarmupStrength, table1InitStrength, fig10WeakInitCurves, table2ContinualLearning).
 */
export * from './data';
export * from './figures';
