/**
 * The figure theme (one fixed style per method) and the output paths.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkFigureName, figurePath, projectPaths, repoRoot } from '../../lib/figures/paths';
import { baseLayout, COLORS, FONT, METHODS, METHOD_STYLES, methodStyle, methodTrace, seriesColour, SERIES_COLOURS, themed } from '../../lib/figures/theme';

describe('method styles', () => {
  it('cover exactly the ten methods of the issue, each with its own colour, label and dash+marker', () => {
    expect([...METHODS].sort()).toEqual(['aopd', 'aopd-acc', 'aopd-zero', 'gkd', 'gopd', 'opd', 'opdplus', 'scope', 'seqkd', 'topk-rkl']);
    expect(Object.keys(METHOD_STYLES).sort()).toEqual([...METHODS].sort());
    const styles = METHODS.map((m) => METHOD_STYLES[m]);
    for (const s of styles) expect(s.colour).toMatch(/^#[0-9A-F]{6}$/);
    expect(new Set(styles.map((s) => s.colour.toUpperCase())).size).toBe(METHODS.length);
    expect(new Set(styles.map((s) => s.label)).size).toBe(METHODS.length);
    expect(new Set(styles.map((s) => `${s.dash}/${s.symbol}`)).size).toBe(METHODS.length);
  });

  it('fixed values: OPD grey dashed, AOPD Okabe-Ito vermillion solid', () => {
    expect(methodStyle('opd')).toEqual({ label: 'OPD', colour: '#555555', dash: 'dash', symbol: 'circle-open' });
    expect(methodStyle('aopd').colour).toBe('#D55E00');
    expect(methodStyle('aopd').dash).toBe('solid');
  });

  it('colours are distinguishable: every pair differs by at least 60 in summed |RGB| difference', () => {
    const rgb = (h: string) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
    for (let i = 0; i < METHODS.length; i++)
      for (let j = i + 1; j < METHODS.length; j++) {
        const a = rgb(METHOD_STYLES[METHODS[i]].colour);
        const b = rgb(METHOD_STYLES[METHODS[j]].colour);
        const d = a.reduce((s, v, k) => s + Math.abs(v - b[k]), 0);
        expect(d, `${METHODS[i]} vs ${METHODS[j]}`).toBeGreaterThanOrEqual(60);
      }
  });

  it('unknown methods throw and list the known names', () => {
    expect(() => methodStyle('apod')).toThrow(/unknown method "apod"; known: opd, aopd/);
    expect(() => methodTrace('OPD', {})).toThrow(/unknown method "OPD"/);
  });

  it('methodTrace applies the style, keeps the trace fields, and never lets the colour be overridden', () => {
    const t = methodTrace('gkd', { x: [1, 2], y: [3, 4], line: { width: 4, color: '#000000' }, name: 'GKD (beta=0.5)' });
    expect(t).toMatchObject({ x: [1, 2], y: [3, 4], name: 'GKD (beta=0.5)', legendgroup: 'gkd' });
    expect(t.line).toEqual({ width: 4, dash: 'dot', color: '#0072B2' });
    expect(t.marker).toEqual({ symbol: 'triangle-up', size: 7, color: '#0072B2' });
    expect(methodTrace('scope', {}).name).toBe('SCOPE');
  });

  it('seriesColour cycles through the series palette and refuses bad indices', () => {
    expect(seriesColour(0)).toBe(SERIES_COLOURS[0]);
    expect(seriesColour(SERIES_COLOURS.length + 1)).toBe(SERIES_COLOURS[1]);
    expect(() => seriesColour(-1)).toThrow(/non-negative integer/);
  });
});

describe('layout', () => {
  it('baseLayout: theme font, axis titles, log axes, title only when given', () => {
    const l = baseLayout({ xTitle: 'step', yTitle: 'KL', yLog: true }) as Record<string, any>;
    expect(l.font).toEqual(FONT);
    expect(l.font.family.split(',')[0]).toBe('Liberation Sans');
    expect(l.xaxis.title.text).toBe('step');
    expect(l.xaxis.type).toBe('-');
    expect(l.yaxis.type).toBe('log');
    expect(l.title).toBeUndefined();
    expect((baseLayout({ title: 'T' }) as any).title.text).toBe('T');
  });

  it('extra fields merge axes one level deep and replace everything else', () => {
    const l = baseLayout({ xTitle: 'step', extra: { xaxis: { range: [0, 5] }, yaxis2: { overlaying: 'y' }, showlegend: false } }) as Record<string, any>;
    expect(l.xaxis.range).toEqual([0, 5]);
    expect(l.xaxis.title.text).toBe('step'); // kept from the theme
    expect(l.xaxis.ticks).toBe('outside');
    expect(l.yaxis2).toEqual({ overlaying: 'y' });
    expect(l.showlegend).toBe(false);
  });

  it('themed(title, extra) is baseLayout with a title (the dump report uses it with COLORS)', () => {
    expect(themed('A', { yaxis: { range: [0, 1] } })).toEqual(baseLayout({ title: 'A', extra: { yaxis: { range: [0, 1] } } }));
    expect(COLORS.student).not.toBe(COLORS.teacher);
  });
});

describe('paths', () => {
  it('repoRoot is the folder whose package.json is opdlab (here: the checkout this test runs from)', () => {
    const root = repoRoot();
    expect(root).toBe(resolve(__dirname, '..', '..'));
    expect(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).name).toBe('opdlab');
  });

  it('all outputs sit under the root: figures/<name>.<format>, figures/numbers.json, data/, runs/notebooks/', () => {
    const p = projectPaths('/r');
    expect(p).toEqual({
      root: '/r',
      figures: '/r/figures',
      numbers: '/r/figures/numbers.json',
      data: '/r/data',
      runs: '/r/runs',
      notebooks: '/r/notebooks',
      notebookOutputs: '/r/runs/notebooks',
    });
    expect(figurePath('fig3EntropyVsStep', 'svg', '/r/figures')).toBe('/r/figures/fig3EntropyVsStep.svg');
    expect(figurePath('fig1', 'png')).toBe(join(repoRoot(), 'figures', 'fig1.png'));
  });

  it('OPDLAB_ROOT overrides the root', () => {
    const before = process.env.OPDLAB_ROOT;
    process.env.OPDLAB_ROOT = '/elsewhere';
    try {
      expect(projectPaths().figures).toBe('/elsewhere/figures');
    } finally {
      if (before === undefined) delete process.env.OPDLAB_ROOT;
      else process.env.OPDLAB_ROOT = before;
    }
    expect(existsSync(join(projectPaths().root, 'package.json'))).toBe(true);
  });

  it('names must be plain file stems; numbers is reserved; formats are the four', () => {
    for (const bad of ['', '../x', 'a/b', '.hidden', 'x.', 'a b', 'numbers']) expect(() => checkFigureName(bad), bad).toThrow(/figure name/);
    expect(() => checkFigureName('fig4b_eta-0.5')).not.toThrow();
    expect(() => figurePath('x', 'pdf' as 'png')).toThrow(/figure format must be one of json, html, png, svg, got "pdf"/);
  });
});
