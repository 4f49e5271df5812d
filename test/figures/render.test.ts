/**
 * Figure rendering end to end: one headless Chromium draws a themed two-method figure to PNG and SVG; the files
 * are checked by independent readers (test/figures/png.ts for PNG pixels, Python's xml.etree for the SVG),
 * and the HTML is opened offline (every non-file request aborted) to check that the inlined bundle draws it.
 *
 * Chromium and fonts-liberation are installed by .ci/run; as root the test installs them itself, and a
 * developer without root and without them gets a skip that names the apt-get line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, chromiumPath, ensureRenderPackages, figureData, figureHtml, figureJson, Renderer, renderNeeds, writeFigureFiles } from '../../lib/figures/render';
import { baseLayout, METHOD_STYLES, methodTrace, type PlotlyFigure } from '../../lib/figures/theme';
import { isRoot, missingSystemPackages, aptInstallLine } from '../../lib/util/system';
import { countColour, decodePng, hasPngSignature } from './png';

const missing = missingSystemPackages(renderNeeds());
const skipReason = missing.length > 0 && !isRoot() ? `figure rendering needs: ${aptInstallLine(missing.map((m) => m.package))}` : '';
if (skipReason) console.warn(`SKIPPED test/figures/render.test.ts: ${skipReason}`);

const W = 400;
const H = 300;
const fig: PlotlyFigure = {
  data: [
    methodTrace('opd', { type: 'scatter', mode: 'lines', x: [0, 1, 2, 3, 4], y: [1.0, 0.8, 0.7, 0.65, 0.62] }),
    methodTrace('aopd', { type: 'scatter', mode: 'lines', x: [0, 1, 2, 3, 4], y: new Float32Array([1.0, 0.6, 0.4, 0.3, 0.25]), line: { width: 6 } }),
  ],
  layout: baseLayout({ title: 'Loss by method', xTitle: 'training step', yTitle: 'loss (nats)' }),
};

/** The text of every <text> element, parsed by Python's XML parser (it raises on malformed XML). */
function svgTexts(path: string): string[] {
  const py = `import sys, json, xml.etree.ElementTree as E
root = E.parse(sys.argv[1]).getroot()
assert root.tag == '{http://www.w3.org/2000/svg}svg', root.tag
print(json.dumps(["".join(t.itertext()) for t in root.iter('{http://www.w3.org/2000/svg}text')]))`;
  const r = spawnSync('/usr/bin/python3', ['-c', py, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`SVG did not parse: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

describe.skipIf(skipReason !== '')('Renderer (headless Chromium)', () => {
  let renderer: Renderer;
  let dir: string;

  beforeAll(async () => {
    ensureRenderPackages({ install: true }); // no-op when present; installs as root (CI), else throws the apt line
    dir = mkdtempSync(join(tmpdir(), 'opdlab-fig-test-'));
    renderer = await Renderer.open();
    console.log(`renderer: Chromium ${renderer.version}, open (browser start + plotly.js load) ${renderer.openMs} ms`);
  });

  afterAll(async () => {
    await renderer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes json, html, png and svg; PNG has the signature, scaled size and the method colours', async () => {
    const r = await renderer.render(fig, 'smoke', { dir, width: W, height: H, scale: 2 });
    console.log(`render 'smoke' ms: ${JSON.stringify(r.ms)}`);
    expect(Object.keys(r.files).sort()).toEqual(['html', 'json', 'png', 'svg']);
    for (const [format, path] of Object.entries(r.files)) expect(path).toBe(join(dir, `smoke.${format}`));

    const bytes = readFileSync(r.files.png!);
    expect(hasPngSignature(bytes)).toBe(true);
    const png = decodePng(bytes);
    expect([png.width, png.height]).toEqual([2 * W, 2 * H]);
    // the 6-px-wide AOPD line (x2 scale) covers many pixels in its exact colour; OPD's grey dashed line fewer
    expect(countColour(png, METHOD_STYLES.aopd.colour, 10)).toBeGreaterThan(500);
    expect(countColour(png, METHOD_STYLES.opd.colour, 10)).toBeGreaterThan(50);
    // and most of the image is the white background
    expect(countColour(png, '#ffffff', 0)).toBeGreaterThan(0.5 * png.width * png.height);
  });

  it('SVG parses and carries the title, both axis titles, the legend labels and the theme colour', () => {
    const path = join(dir, 'smoke.svg');
    const texts = svgTexts(path);
    for (const t of ['Loss by method', 'training step', 'loss (nats)', 'OPD', 'AOPD']) expect(texts).toContain(t);
    const svg = readFileSync(path, 'utf8');
    expect(svg).toMatch(/^<svg[^>]*width="400"[^>]*height="300"/);
    expect(svg).toContain('rgb(213, 94, 0)'); // METHOD_STYLES.aopd.colour #D55E00 as plotly writes it
    expect(svg).toContain('Liberation Sans');
  });

  it('JSON is the plotly {data, layout} with typed arrays as plain arrays', () => {
    const json = JSON.parse(readFileSync(join(dir, 'smoke.json'), 'utf8'));
    expect(Object.keys(json).sort()).toEqual(['data', 'layout']);
    expect(json.data[1].y).toEqual([1.0, 0.6, 0.4, 0.3, 0.25].map((v) => Math.fround(v)));
    expect(json.layout.xaxis.title.text).toBe('training step');
    expect(json).toEqual({ data: figureData(fig).data, layout: figureData(fig).layout });
  });

  it('HTML inlines plotly.js (no script src at all) and draws the figure with the network cut off', async () => {
    const html = readFileSync(join(dir, 'smoke.html'), 'utf8');
    const bundle = readFileSync(require.resolve('plotly.js-dist-min/plotly.min.js'), 'utf8');
    expect(html).toContain(bundle.slice(0, 2000));
    expect(html.length).toBeGreaterThan(bundle.length);
    expect(html).not.toMatch(/<script[^>]*\bsrc\s*=/i);
    expect(html).not.toMatch(/<link[^>]*\bhref\s*=\s*["']?https?:/i);

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: chromiumPath(), args: [...CHROMIUM_ARGS] });
    try {
      const page = await browser.newPage();
      const blocked: string[] = [];
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
        blocked.push(url);
        return route.abort();
      });
      await page.goto(`file://${join(dir, 'smoke.html')}`, { waitUntil: 'load' });
      await page.waitForSelector('#figure .main-svg', { timeout: 30_000 });
      const titles = await page.$$eval('#figure text.xtitle, #figure text.ytitle', (els) => els.map((e) => e.textContent));
      expect(titles).toEqual(['training step', 'loss (nats)']);
      expect(blocked).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('svg()/png() give images in memory; a second figure reuses the same browser', async () => {
    const t0 = Date.now();
    const svg = await renderer.svg(fig, { width: 320, height: 200 });
    const png = await renderer.png(fig, { width: 320, height: 200, scale: 1 });
    console.log(`second figure in memory (svg + png): ${Date.now() - t0} ms`);
    expect(svg).toMatch(/^<svg[^>]*width="320"[^>]*height="200"/);
    expect([decodePng(png).width, decodePng(png).height]).toEqual([320, 200]);
  });

  it('a bad trace fails with the figure name; bad sizes and names are refused before drawing', async () => {
    await expect(renderer.render({ data: [{ type: 'scatter', x: [1], y: [1] }] }, 'ok', { dir, formats: ['svg'], width: -5 })).rejects.toThrow(/width must be a positive number/);
    await expect(renderer.render(fig, '../escape', { dir })).rejects.toThrow(/figure name must match/);
    await expect(renderer.render({ layout: {} } as unknown as PlotlyFigure, 'x', { dir })).rejects.toThrow(/data array/);
    await expect(renderer.render(fig, 'x', { dir, formats: ['pdf' as 'png'] })).rejects.toThrow(/formats: each must be one of/);
  });

  it('close() is idempotent and later calls are refused (runs last: closes the shared renderer)', async () => {
    await renderer.close();
    await renderer.close();
    await expect(renderer.svg(fig)).rejects.toThrow(/already closed/);
  });
});

describe('figure files without a browser', () => {
  it('writeFigureFiles writes json and html only, and refuses png/svg', () => {
    const dir = mkdtempSync(join(tmpdir(), 'opdlab-fig-nobrowser-'));
    try {
      const r = writeFigureFiles(fig, 'plain', { dir });
      expect(Object.keys(r.files).sort()).toEqual(['html', 'json']);
      expect(readFileSync(r.files.json!, 'utf8')).toBe(figureJson(fig));
      expect(() => writeFigureFiles(fig, 'plain', { dir, formats: ['png'] })).toThrow(/need a browser: use Renderer.render/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('NaN and Infinity become null (plotly gaps); JSON in the HTML cannot close the script element', () => {
    const f: PlotlyFigure = { data: [{ type: 'scatter', x: [0, 1, 2], y: [1, NaN, Infinity], name: '</script><b>' }] };
    expect(figureData(f).data[0].y).toEqual([1, null, null]);
    const html = figureHtml(f, 'a<b');
    expect(html).toContain('<title>a&lt;b</title>');
    expect(html).not.toContain('</script><b>');
  });
});
