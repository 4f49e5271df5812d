/**
 * Figures: the shared theme (theme.ts), every output path (paths.ts), standalone and report HTML (html.ts),
 * and rendering to JSON / HTML / PNG / SVG with one headless browser (render.ts).
 */
export * from './theme';
export * from './paths';
export * from './html';
export * from './render';
