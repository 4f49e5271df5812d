/** Notebook support: the headless runner (run.ts) and what cells use besides the library (display.ts). */
export * from './display';
export * from './run';
