/**
 * Figures to files: `figures/<name>.json` (plotly {data, layout}), `.html` (plotly.js inlined, works offline),
 * and `.png` / `.svg` drawn by plotly.js itself in headless Chromium.
 *
 * plotly.js is browser-only (plotly.js #6719: it needs getBoundingClientRect and friends), so images come from
 * `Plotly.toImage` in a page of Debian's Chromium driven by playwright-core (which downloads no browser):
 *
 *   const r = await Renderer.open();          // one browser for all figures: ~0.7 s start + 2-3 s plotly.js load
 *   await r.render(fig, 'fig3EntropyVsStep'); // json + html + png + svg: ~0.1-0.3 s per PNG, ~0.05-0.15 s per SVG
 *   await r.close();
 *
 * JSON and HTML need no browser (`writeFigureFiles`), so the figure step can write them and leave images to the
 * headless-browser step (style.md item 11). The bundle comes from the local plotly.js-dist-min (no CDN), and the
 * browser runs with networking features off; the page only loads local files.
 *
 * System packages: Chromium, and fonts-liberation for the theme's font (theme.ts explains why). `Renderer.open`
 * only checks them and throws with the exact apt-get line; `ensureRenderPackages` (used by the CLI and CI, never
 * on import) installs them when running as root.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { checkSystemPackages, ensureSystemPackages, type EnsureOptions, type SystemNeed } from '../util/system';
import { escapeHtml, plotlyBundle, scriptJson } from './html';
import { checkFigureName, figurePath, FIGURE_FORMATS, projectPaths, type FigureFormat } from './paths';
import { FIGURE_SIZE, type PlotlyFigure } from './theme';

/** The Chromium binary: OPDLAB_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env.OPDLAB_CHROMIUM || '/usr/bin/chromium';
}

/**
 * Flags for a quiet, offline headless browser. playwright adds --headless and a fresh temporary
 * --user-data-dir of its own (deleted on close), so no profile is shared between runs.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox', // root in containers has no usable sandbox
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

const LIBERATION_SANS = '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf';

/** What figure images need from Debian. */
export function renderNeeds(): SystemNeed[] {
  return [
    { package: 'chromium', why: `headless browser for PNG/SVG, expected at ${chromiumPath()}`, present: () => existsSync(chromiumPath()) },
    { package: 'fonts-liberation', why: 'the figure font, Liberation Sans (stable text metrics)', present: () => existsSync(LIBERATION_SANS) },
  ];
}

/** For the CLI and CI: install Chromium and the fonts when missing (as root), else throw with the apt-get line. */
export function ensureRenderPackages(options: EnsureOptions = {}): string[] {
  return ensureSystemPackages(renderNeeds(), 'rendering figures to PNG/SVG', options);
}

/** A figure as plain JSON data: typed arrays become arrays, NaN and +-Infinity become null (plotly's gaps). */
export function figureData(figure: PlotlyFigure): PlotlyFigure {
  checkFigure(figure);
  const plain = JSON.parse(
    JSON.stringify(figure, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<number>) : v)),
  ) as PlotlyFigure;
  return { data: plain.data, layout: plain.layout ?? {}, ...(plain.config ? { config: plain.config } : {}) };
}

function checkFigure(figure: PlotlyFigure): void {
  if (typeof figure !== 'object' || figure === null || !Array.isArray(figure.data))
    throw new Error(`figure must be a plotly {data: trace[], layout?: {...}} object, got ${figure === null ? 'null' : typeof figure}${figure && !Array.isArray((figure as PlotlyFigure).data) ? ' without a data array' : ''}`);
  if (figure.layout !== undefined && (typeof figure.layout !== 'object' || figure.layout === null || Array.isArray(figure.layout)))
    throw new Error('figure.layout must be an object when given');
}

/** `figures/<name>.json` text: {data, layout} pretty-printed. */
export function figureJson(figure: PlotlyFigure): string {
  const { data, layout } = figureData(figure);
  return `${JSON.stringify({ data, layout }, null, 1)}\n`;
}

/** A standalone page with plotly.js inlined: opens offline, in any browser, from a file. */
export function figureHtml(figure: PlotlyFigure, title = 'figure'): string {
  const fig = figureData(figure);
  const config = { responsive: true, displaylogo: false, ...(fig.config ?? {}) };
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>html, body { margin: 0; background: #fff; } #figure { width: 100%; max-width: 1000px; min-height: 420px; }</style>
<script>${plotlyBundle()}</script>
</head><body>
<div id="figure"></div>
<script>
const FIG = ${scriptJson({ data: fig.data, layout: fig.layout })};
Plotly.newPlot('figure', FIG.data, FIG.layout, ${scriptJson(config)});
</script>
</body></html>
`;
}

/** Writes `text` to `path` atomically (temp file in the same folder + rename); creates the folder. */
function writeAtomic(path: string, content: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

export interface WriteOptions {
  /** Output folder. Default figures/ (paths.ts). */
  dir?: string;
  /** Which formats. Default all four for `Renderer.render`, json + html for `writeFigureFiles`. */
  formats?: readonly FigureFormat[];
  /** CSS pixels of the image; default the figure's layout.width/height, else theme FIGURE_SIZE. */
  width?: number;
  height?: number;
  /** PNG pixel-density multiplier. Default 2 (a 720x450 figure gives a 1440x900 PNG). */
  scale?: number;
}

export interface RenderResult {
  name: string;
  /** The file written per format. */
  files: Partial<Record<FigureFormat, string>>;
  /** Milliseconds per format (png/svg: the browser's Plotly.toImage plus the write). */
  ms: Partial<Record<FigureFormat, number>>;
}

function checkFormats(formats: readonly FigureFormat[]): void {
  for (const f of formats)
    if (!(FIGURE_FORMATS as readonly string[]).includes(f)) throw new Error(`formats: each must be one of ${FIGURE_FORMATS.join(', ')}, got ${JSON.stringify(f)}`);
}

/** JSON and HTML only (no browser). */
export function writeFigureFiles(figure: PlotlyFigure, name: string, options: WriteOptions = {}): RenderResult {
  checkFigureName(name);
  const formats = options.formats ?? ['json', 'html'];
  checkFormats(formats);
  const bad = formats.filter((f) => f === 'png' || f === 'svg');
  if (bad.length) throw new Error(`writeFigureFiles writes json and html only; ${bad.join(', ')} need a browser: use Renderer.render`);
  const dir = options.dir ?? projectPaths().figures;
  const result: RenderResult = { name, files: {}, ms: {} };
  for (const format of formats) {
    const t0 = Date.now();
    const path = figurePath(name, format, dir);
    writeAtomic(path, format === 'json' ? figureJson(figure) : figureHtml(figure, name));
    result.files[format] = path;
    result.ms[format] = Date.now() - t0;
  }
  return result;
}

export interface RendererOptions {
  /** Chromium binary. Default chromiumPath(). */
  executablePath?: string;
  /** Milliseconds to wait for the browser to start (a cold start on a busy machine took 23 s). Default 90000. */
  launchTimeoutMs?: number;
}

export interface ImageOptions {
  width?: number;
  height?: number;
  /** PNG only. Default 2. */
  scale?: number;
}

function imageSize(figure: PlotlyFigure, options: ImageOptions): { width: number; height: number; scale: number } {
  const layout = figure.layout ?? {};
  const width = options.width ?? (typeof layout.width === 'number' ? layout.width : FIGURE_SIZE.width);
  const height = options.height ?? (typeof layout.height === 'number' ? layout.height : FIGURE_SIZE.height);
  const scale = options.scale ?? 2;
  for (const [k, v] of Object.entries({ width, height, scale }))
    if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new Error(`image ${k} must be a positive number, got ${v}`);
  if (width * scale > 8000 || height * scale > 8000) throw new Error(`image ${width}x${height} at scale ${scale} is over 8000 pixels a side`);
  return { width, height, scale };
}

/**
 * One headless Chromium with one page that has plotly.js loaded; every figure is drawn there in turn.
 * Not safe for concurrent calls on one instance (the calls queue).
 */
export class Renderer {
  /** Milliseconds from `open()` to a page with plotly.js ready (browser start + bundle load). */
  readonly openMs: number;
  /** Chromium version string. */
  readonly version: string;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly browser: Browser,
    private readonly page: Page,
    private readonly pageDir: string,
    openMs: number,
  ) {
    this.openMs = openMs;
    this.version = browser.version();
  }

  /** Starts the browser and loads plotly.js into a page. Throws with the apt-get line when Chromium or the fonts are missing. */
  static async open(options: RendererOptions = {}): Promise<Renderer> {
    const t0 = Date.now();
    const executablePath = options.executablePath ?? chromiumPath();
    checkSystemPackages(
      renderNeeds().map((n) => (n.package === 'chromium' ? { ...n, present: () => existsSync(executablePath) } : n)),
      'rendering figures to PNG/SVG',
    );
    const { chromium } = await import('playwright-core');
    let browser: Browser;
    try {
      browser = await chromium.launch({ executablePath, headless: true, args: [...CHROMIUM_ARGS], timeout: options.launchTimeoutMs ?? 90_000 });
    } catch (e) {
      throw new Error(`Renderer: Chromium at ${executablePath} did not start: ${(e as Error).message.split('\n')[0]}`);
    }
    // The page is a local file that loads the bundle from node_modules by file URL: nothing crosses the
    // DevTools pipe but the figures, and nothing is fetched from a network.
    const pageDir = mkdtempSync(join(tmpdir(), 'opdlab-render-'));
    try {
      const bundlePath = require.resolve('plotly.js-dist-min/plotly.min.js');
      const index = join(pageDir, 'index.html');
      writeFileSync(index, `<!DOCTYPE html><html><head><meta charset="utf-8"><script src="${pathToFileURL(bundlePath).href}"></script></head><body></body></html>`);
      const page = await browser.newPage();
      await page.goto(pathToFileURL(index).href, { waitUntil: 'load', timeout: 120_000 });
      const ok = await page.evaluate(() => typeof (globalThis as unknown as { Plotly?: unknown }).Plotly === 'object');
      if (!ok) throw new Error('plotly.js did not load in the page');
      return new Renderer(browser, page, pageDir, Date.now() - t0);
    } catch (e) {
      await browser.close().catch(() => undefined);
      rmSync(pageDir, { recursive: true, force: true });
      throw new Error(`Renderer: ${(e as Error).message}`);
    }
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('Renderer: already closed'));
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private toImage(figure: PlotlyFigure, format: 'png' | 'svg', options: ImageOptions): Promise<string> {
    const fig = figureData(figure);
    const size = imageSize(fig, options);
    return this.serial(() =>
      this.page.evaluate(
        async ({ fig, format, size }) => {
          const P = (globalThis as unknown as { Plotly: { toImage: (f: unknown, o: unknown) => Promise<string> } }).Plotly;
          // imageDataOnly: base64 for PNG, the SVG text itself for SVG
          return P.toImage({ data: fig.data, layout: fig.layout }, { format, width: size.width, height: size.height, scale: format === 'png' ? size.scale : 1, imageDataOnly: true });
        },
        { fig, format, size },
      ),
    );
  }

  /** PNG bytes (`width*scale` x `height*scale` pixels). */
  async png(figure: PlotlyFigure, options: ImageOptions = {}): Promise<Buffer> {
    return Buffer.from(await this.toImage(figure, 'png', options), 'base64');
  }

  /** SVG text. */
  async svg(figure: PlotlyFigure, options: ImageOptions = {}): Promise<string> {
    return this.toImage(figure, 'svg', options);
  }

  /** Writes `<dir>/<name>.{json,html,png,svg}` (or `options.formats`). */
  async render(figure: PlotlyFigure, name: string, options: WriteOptions = {}): Promise<RenderResult> {
    checkFigureName(name);
    const formats = options.formats ?? FIGURE_FORMATS;
    checkFormats(formats);
    const dir = options.dir ?? projectPaths().figures;
    const result = writeFigureFiles(figure, name, { dir, formats: formats.filter((f) => f === 'json' || f === 'html') });
    for (const format of formats) {
      if (format !== 'png' && format !== 'svg') continue;
      const t0 = Date.now();
      let content: string | Buffer;
      try {
        content = format === 'png' ? await this.png(figure, options) : await this.svg(figure, options);
      } catch (e) {
        throw new Error(`figure '${name}': Plotly.toImage (${format}) failed: ${(e as Error).message.split('\n')[0]}`);
      }
      const path = figurePath(name, format, dir);
      writeAtomic(path, content);
      result.files[format] = path;
      result.ms[format] = Date.now() - t0;
    }
    return result;
  }

  /** Closes the browser (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.browser.close().catch(() => undefined);
    rmSync(this.pageDir, { recursive: true, force: true });
  }
}
