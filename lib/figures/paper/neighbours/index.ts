/**
 * The neighbours' figure group (claims C14-C18): data file (data.ts), simulation measurements (simulate.ts) and
 * figures (figures.ts). `opdlab reproduce --only neighbours` makes data/figures/neighbours.json and draws them.
 */
export * from './data';
export * from './figures';
export * from './simulate';
