/**
 * The one plotly theme of every opdlab figure: layout, font, figure size, and a fixed colour / dash / marker per
 * method, so a method looks the same in every figure of the paper (style.md item 11; pysr's `matplotlibrc`).
 *
 * Colours: Okabe & Ito's colour-blind-safe palette (https://jfly.uni-koeln.de/color/) for the AOPD family and
 * the main baselines, plus three darker hues for the remaining methods; OPD, the baseline every figure compares
 * against, is grey. Dashes and markers differ as well, so a greyscale print still tells methods apart.
 *
 * Font: plotly's default family is "Open Sans", verdana, arial, sans-serif; on Debian none of these exists
 * unless fonts-liberation is installed (which maps Arial to Liberation Sans), so the same figure comes out in
 * Liberation Sans on one machine and DejaVu Sans (wider) on another. The theme names Liberation Sans
 * explicitly (metric-compatible with Arial, so the SVG looks alike where Arial is the fallback), and the
 * renderer requires fonts-liberation (lib/figures/render.ts).
 */

/** A plotly trace (plotly.js's own types are not a dependency; the JSON is what matters). */
export type PlotlyTrace = Record<string, unknown>;
/** A plotly layout. */
export type PlotlyLayout = Record<string, unknown>;
/** What `figures/<name>.json` holds: plotly's {data, layout} (plus an optional plotly config for the HTML). */
export interface PlotlyFigure {
  data: PlotlyTrace[];
  layout?: PlotlyLayout;
  config?: Record<string, unknown>;
}

/** Every method a figure may show, by its registry / sweep name. */
export const METHODS = ['opd', 'aopd', 'aopd-zero', 'aopd-acc', 'gkd', 'seqkd', 'gopd', 'opdplus', 'topk-rkl', 'scope'] as const;
export type MethodName = (typeof METHODS)[number];

export interface MethodStyle {
  /** Legend label. */
  label: string;
  /** Line and marker colour (#rrggbb). */
  colour: string;
  /** plotly line.dash. */
  dash: 'solid' | 'dash' | 'dot' | 'dashdot' | 'longdash' | 'longdashdot';
  /** plotly marker.symbol. */
  symbol: string;
}

export const METHOD_STYLES: Readonly<Record<MethodName, Readonly<MethodStyle>>> = {
  opd: { label: 'OPD', colour: '#555555', dash: 'dash', symbol: 'circle-open' },
  aopd: { label: 'AOPD', colour: '#D55E00', dash: 'solid', symbol: 'circle' },
  'aopd-zero': { label: 'AOPD-Zero', colour: '#E69F00', dash: 'solid', symbol: 'diamond' },
  'aopd-acc': { label: 'AOPD (acc.-filtered)', colour: '#CC79A7', dash: 'solid', symbol: 'square' },
  gkd: { label: 'GKD', colour: '#0072B2', dash: 'dot', symbol: 'triangle-up' },
  seqkd: { label: 'SeqKD', colour: '#56B4E9', dash: 'dot', symbol: 'triangle-down' },
  gopd: { label: 'G-OPD', colour: '#009E73', dash: 'dashdot', symbol: 'x' },
  opdplus: { label: 'OPD+', colour: '#7E2F8E', dash: 'dashdot', symbol: 'cross' },
  'topk-rkl': { label: 'Top-K RKL', colour: '#8C564B', dash: 'longdash', symbol: 'star' },
  scope: { label: 'SCOPE', colour: '#9A8700', dash: 'longdashdot', symbol: 'hexagon' },
};

export function isMethodName(name: string): name is MethodName {
  return (METHODS as readonly string[]).includes(name);
}

/** The fixed style of a method; unknown names throw (a typo must not silently get another colour). */
export function methodStyle(method: string): Readonly<MethodStyle> {
  if (!isMethodName(method)) throw new Error(`methodStyle: unknown method ${JSON.stringify(method)}; known: ${METHODS.join(', ')}`);
  return METHOD_STYLES[method];
}

/** Colours for series that are not methods (eta values, seeds, token classes), in order; cycles. */
export const SERIES_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#555555', '#9A8700'] as const;

export function seriesColour(index: number): string {
  if (!Number.isInteger(index) || index < 0) throw new Error(`seriesColour: index must be a non-negative integer, got ${index}`);
  return SERIES_COLOURS[index % SERIES_COLOURS.length];
}

/**
 * Colours by role, for figures that show one run's quantities rather than methods (the dump report,
 * lib/report/analyzeFigures.ts): student vs teacher, signs of the advantage, neutral ink and grid.
 */
export const COLORS = {
  student: '#0072B2',
  teacher: '#D55E00',
  positive: '#009E73',
  negative: '#CC79A7',
  zero: '#999999',
  neutral: '#777777',
  ink: '#222222',
  grid: '#BBBBBB',
} as const;

/** The font of every figure (see the header for why Liberation Sans). */
export const FONT = { family: 'Liberation Sans, Arial, sans-serif', size: 13, color: '#222222' } as const;

/** Default image size in CSS pixels (PNG is written at `scale` times this). */
export const FIGURE_SIZE = { width: 720, height: 450 } as const;

/** A trace in a method's fixed style; `trace` fields win except colour (always the method's). */
export function methodTrace(method: string, trace: PlotlyTrace): PlotlyTrace {
  const s = methodStyle(method);
  const line = { width: 2, dash: s.dash, ...((trace.line as object) ?? {}), color: s.colour };
  const marker = { symbol: s.symbol, size: 7, ...((trace.marker as object) ?? {}), color: s.colour };
  return { name: s.label, legendgroup: method, ...trace, line, marker };
}

export interface LayoutOptions {
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Log-scaled axes. */
  xLog?: boolean;
  yLog?: boolean;
  /** Extra layout fields, merged last (axis objects are merged one level deep). */
  extra?: PlotlyLayout;
}

function axis(title: string | undefined, log: boolean | undefined): Record<string, unknown> {
  return {
    title: { text: title ?? '' },
    type: log ? 'log' : '-',
    showline: true,
    linecolor: '#444444',
    linewidth: 1,
    mirror: false,
    ticks: 'outside',
    tickcolor: '#444444',
    gridcolor: '#E6E6E6',
    zeroline: false,
    automargin: true,
  };
}

/** The shared layout: white background, light grid, outside ticks, legend on the right, the theme font. */
export function baseLayout(options: LayoutOptions = {}): PlotlyLayout {
  const layout: PlotlyLayout = {
    font: { ...FONT },
    paper_bgcolor: '#FFFFFF',
    plot_bgcolor: '#FFFFFF',
    colorway: [...SERIES_COLOURS],
    margin: { l: 70, r: 20, t: options.title ? 50 : 20, b: 60 },
    legend: { bgcolor: 'rgba(255,255,255,0.8)', borderwidth: 0 },
    hovermode: 'closest',
    xaxis: axis(options.xTitle, options.xLog),
    yaxis: axis(options.yTitle, options.yLog),
  };
  if (options.title) layout.title = { text: options.title, x: 0.02, xanchor: 'left' };
  for (const [key, value] of Object.entries(options.extra ?? {})) {
    const current = layout[key];
    const isObj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    layout[key] = isObj(current) && isObj(value) ? { ...(current as object), ...(value as object) } : value;
  }
  return layout;
}

/** `baseLayout` with a title and extra layout fields (axes merged one level deep): `themed('Title', { yaxis: {...} })`. */
export function themed(title: string, extra: PlotlyLayout = {}): PlotlyLayout {
  return baseLayout({ title, extra });
}
