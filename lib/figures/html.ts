/**
 * A self-contained HTML page of plotly figures: the plotly.js bundle (plotly.js-dist-min, from node_modules) is
 * inlined, so the page works offline and never reaches a CDN. Sections hold text (trusted HTML built by the
 * caller, with `escapeHtml` for anything from data) and figures (theme.ts PlotlyFigure specs).
 */
import { readFileSync } from 'node:fs';
import type { PlotlyFigure } from './theme';

export interface HtmlFigure {
  /** DOM id (letters, digits, '-', '_'). */
  id: string;
  figure: PlotlyFigure;
  /** One or two sentences under the figure: what it shows and how to read it. */
  caption?: string;
}

export interface HtmlSection {
  title: string;
  /** HTML placed before the figures. */
  html?: string;
  figures?: HtmlFigure[];
}

export interface HtmlPage {
  title: string;
  /** HTML under the title. */
  intro?: string;
  sections: HtmlSection[];
}

let bundle: string | null = null;

/** The minified plotly.js bundle's source (read once). */
export function plotlyBundle(): string {
  if (bundle === null) {
    let path: string;
    try {
      path = require.resolve('plotly.js-dist-min/plotly.min.js');
    } catch {
      throw new Error('figures: the npm package plotly.js-dist-min is not installed (npm install plotly.js-dist-min)');
    }
    // a literal '</script' inside the inlined code would end the <script> element early
    bundle = readFileSync(path, 'utf8').replace(/<\/script/gi, '<\\/script');
  }
  return bundle;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON for a <script> block: '<' escaped so no '</script>' can end it early; NaN/Infinity -> null. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v)).replace(/</g, '\\u003c');
}

const CSS = `
body { font-family: Helvetica, Arial, sans-serif; color: #222; max-width: 1100px; margin: 24px auto; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: bold; } .warn { color: #9a6700; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; } .skip { color: #777; font-weight: bold; }
.banner { padding: 10px 14px; border-radius: 4px; margin: 12px 0; }
.banner.bad { background: #ffebe9; border: 1px solid #cf222e; } .banner.ok { background: #dafbe1; border: 1px solid #1a7f37; }
.banner.note { background: #fff8c5; border: 1px solid #9a6700; }
.caption { font-size: 13px; color: #555; margin: 0 0 18px 0; max-width: 760px; }
code { background: #f4f4f4; padding: 0 3px; }
`;

/** The whole page as one string. */
export function renderHtml(page: HtmlPage): string {
  const figs: { id: string; figure: PlotlyFigure }[] = [];
  const body: string[] = [`<h1>${escapeHtml(page.title)}</h1>`];
  if (page.intro) body.push(page.intro);
  for (const s of page.sections) {
    body.push(`<h2>${escapeHtml(s.title)}</h2>`);
    if (s.html) body.push(s.html);
    for (const f of s.figures ?? []) {
      if (!/^[A-Za-z][\w-]*$/.test(f.id)) throw new Error(`renderHtml: figure id '${f.id}' must be letters, digits, '-' or '_'`);
      body.push(`<div id="${f.id}" class="figure"></div>`);
      if (f.caption) body.push(`<p class="caption">${escapeHtml(f.caption)}</p>`);
      figs.push({ id: f.id, figure: f.figure });
    }
  }
  const draw = figs.map((f) => `Plotly.newPlot(${JSON.stringify(f.id)}, FIGS[${JSON.stringify(f.id)}].data, FIGS[${JSON.stringify(f.id)}].layout, {responsive: true, displaylogo: false});`).join('\n');
  const specs = scriptJson(Object.fromEntries(figs.map((f) => [f.id, f.figure])));
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(page.title)}</title>
<style>${CSS}</style>
<script>${plotlyBundle()}</script>
</head><body>
${body.join('\n')}
<script>
const FIGS = ${specs};
${draw}
</script>
</body></html>
`;
}
