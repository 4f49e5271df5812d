/**
 * Notebooks run headless: every notebooks/*.ipynb executes under the tslab kernel in Debian's Jupyter without a
 * cell error, 00_smoke shows its table and PNG, and the runner catches what tslab reports only as stderr
 * (a type error), an aborted tail, a cell timeout and a late uncaught exception.
 *
 * Needs `npm run build` first (notebooks import dist/lib; `npm test` builds). Jupyter, the tslab kernelspec,
 * Chromium and the fonts are installed by .ci/run; as root the test installs them itself, and a developer without root and without
 * them gets a skip that names the fix.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../lib/figures/paths';
import { METHOD_STYLES } from '../../lib/figures/theme';
import { htmlTable, quick } from '../../lib/notebooks/display';
import { ensureNotebookTools, formatNotebookResults, inspectExecutedNotebook, listNotebooks, notebookToolProblems, runNotebook, runNotebooks, withoutRunnerMetadata, type NotebookResult } from '../../lib/notebooks/run';
import { aptInstallLine, isRoot, missingSystemPackages } from '../../lib/util/system';
import { ensureRenderPackages, renderNeeds } from '../../lib/figures/render';
import { countColour, decodePng } from '../figures/png';

const root = repoRoot();
// 00_smoke draws a figure, so the notebooks need Chromium and the fonts as well
const missingRender = missingSystemPackages(renderNeeds());
const problems = [...notebookToolProblems(root), ...(missingRender.length ? [`figures need: ${aptInstallLine(missingRender.map((m) => m.package))}`] : [])];
const skipReason = problems.length > 0 && !isRoot() ? problems.join('; ') : '';
if (skipReason) console.warn(`SKIPPED notebook execution in test/notebooks/notebooks.test.ts: ${skipReason}`);

type Cell = Parameters<typeof inspectExecutedNotebook>[0]['cells'] extends (infer C)[] | undefined ? C : never;
const code = (source: string, status?: string, outputs: Cell['outputs'] = [], execution?: Record<string, string>): Cell => ({
  cell_type: 'code',
  source,
  outputs,
  metadata: { ...(status ? { opdlab: { status } } : {}), ...(execution ? { execution } : {}) },
});
const stderr = (text: string) => ({ output_type: 'stream', name: 'stderr', text });

describe('inspectExecutedNotebook (executed-notebook JSON, no Jupyter)', () => {
  it('all ok: no errors; per-cell seconds from the timing metadata; markdown and empty cells skipped', () => {
    const r = inspectExecutedNotebook({
      cells: [
        { cell_type: 'markdown', source: '# title' },
        code('const a = 1;', 'ok', [], { 'iopub.status.busy': '2026-01-01T00:00:01.000Z', 'iopub.status.idle': '2026-01-01T00:00:03.500Z' }),
        code('   ', undefined),
        code('console.error("a warning");', 'ok', [stderr('a warning\n')]),
      ],
    });
    expect(r.errors).toEqual([]);
    expect(r.cells).toEqual([
      { index: 1, status: 'ok', seconds: 2.5 },
      { index: 3, status: 'ok', seconds: null },
    ]);
  });

  it('status error names the cell and carries tslab stderr; only the first abort after it is reported', () => {
    const r = inspectExecutedNotebook({
      cells: [
        code('const ok = 1;', 'ok'),
        code("\nconst x: number = 'a';", 'error', [stderr("1:7 - Type 'string' is not assignable to type 'number'.\n")]),
        code('next()', 'abort'),
        code('again()', 'abort'),
      ],
    });
    expect(r.errors).toEqual([`cell 1 (const x: number = 'a';) failed: 1:7 - Type 'string' is not assignable to type 'number'.`]);
    expect(r.cells.map((c) => c.status)).toEqual(['ok', 'error', 'abort', 'abort']);
  });

  it('error outputs, uncaught exceptions in stderr, aborts without a prior error and cells never run are errors', () => {
    const r = inspectExecutedNotebook({
      cells: [
        code('a()', 'ok', [{ output_type: 'error', ename: 'TypeError', evalue: 'a is not a function' }]),
        code('b()', 'ok', [stderr('UncaughtException: Error: late\n    at Timeout._onTimeout (evalmachine.<anonymous>:3:26)\n')]),
        code('c()', 'abort'),
        code('d()'),
      ],
    });
    expect(r.errors).toEqual([
      'cell 0 (a()) raised TypeError: a is not a function',
      'cell 1 (b()) reported an uncaught error: UncaughtException: Error: late |     at Timeout._onTimeout (evalmachine.<anonymous>:3:26)',
      'cell 2 (c()) was aborted by the kernel',
      'cell 3 (d()) did not run',
    ]);
  });

  it('withoutRunnerMetadata keeps outputs and other metadata, drops reply status and timing', () => {
    const cell = { ...code('x', 'ok', [stderr('w')], { 'iopub.status.busy': 'a' }), metadata: { opdlab: { status: 'ok' }, execution: { 'iopub.status.busy': 'a' }, tags: ['keep'] } };
    const nb = { cells: [cell, { cell_type: 'markdown', source: '# t' }], metadata: { kernelspec: { name: 'tslab' } } };
    const clean = withoutRunnerMetadata(nb);
    expect(clean.cells[0]).toEqual({ cell_type: 'code', source: 'x', outputs: [stderr('w')], metadata: { tags: ['keep'] } });
    expect(clean.cells[1]).toEqual(nb.cells[1]);
    expect(clean.metadata).toEqual(nb.metadata);
    expect(cell.metadata.opdlab).toEqual({ status: 'ok' }); // the input is not modified
  });

  it('refuses what is not a notebook', () => {
    expect(() => inspectExecutedNotebook({} as never)).toThrow(/not a notebook/);
  });
});

describe('notebook display helpers', () => {
  it('htmlTable escapes text, formats numbers, and checks row widths', () => {
    expect(htmlTable(['k', 'v'], [['<a>', 0.000012345], ['b', 2]])).toBe(
      '<table><thead><tr><th>k</th><th>v</th></tr></thead><tbody>' +
        '<tr><td style="text-align:left">&lt;a&gt;</td><td style="text-align:right">1.23e-5</td></tr>' +
        '<tr><td style="text-align:left">b</td><td style="text-align:right">2</td></tr></tbody></table>',
    );
    expect(() => htmlTable(['a', 'b'], [['x']])).toThrow(/row 0 has 1 cells, expected 2/);
  });

  it('quick(q, full) follows OPDLAB_QUICK', () => {
    const before = process.env.OPDLAB_QUICK;
    try {
      process.env.OPDLAB_QUICK = '1';
      expect(quick(2, 2000)).toBe(2);
      process.env.OPDLAB_QUICK = '0';
      expect(quick(2, 2000)).toBe(2000);
    } finally {
      if (before === undefined) delete process.env.OPDLAB_QUICK;
      else process.env.OPDLAB_QUICK = before;
    }
  });
});

function notebookJson(sources: string[]): string {
  return JSON.stringify({
    cells: sources.map((s, i) => ({ cell_type: 'code', execution_count: null, id: `c${i}`, metadata: {}, outputs: [], source: s })),
    metadata: { kernelspec: { display_name: 'TypeScript', language: 'typescript', name: 'tslab' } },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

// nine notebooks in quick mode take several minutes on 2 cores next to the other test files: a wider limit than the default 120 s
describe.skipIf(skipReason !== '')('notebooks run headless (tslab kernel, Debian Jupyter)', { timeout: 900_000 }, () => {
  let out: string;
  // The runs start together in beforeAll (each is its own nbconvert + kernel) and the tests await them.
  let all: Promise<NotebookResult[]>;
  let failing: Promise<[NotebookResult, NotebookResult]>;
  let t0 = 0;

  beforeAll(() => {
    // no-op when ready; as root (CI) installs Jupyter and registers the kernelspec
    ensureRenderPackages({ install: true });
    ensureNotebookTools({ install: true, root });
    if (!existsSync(join(root, 'dist', 'lib', 'index.js'))) throw new Error('dist/lib is not built: run `npm run build` (npm test builds first); notebooks import the built library');
    out = mkdtempSync(join(tmpdir(), 'opdlab-nb-test-'));
    t0 = Date.now();
    all = runNotebooks({ outDir: join(out, 'all'), timeoutSec: 300 });
    const dir = join(out, 'bad');
    mkdirSync(dir);
    const typeError = join(dir, 'type_error.ipynb');
    writeFileSync(
      typeError,
      notebookJson([
        // a child that outlives the kernel (and shares its stderr): the runner must neither wait for it nor leave it behind
        "import { spawn } from 'child_process';\nconst child = spawn('sleep', ['300'], { detached: true, stdio: 'inherit' });\nchild.unref();\nconsole.log(`quick=${process.env.OPDLAB_QUICK} pid=${child.pid}`);",
        "const x: number = 'a';",
        "console.log('never');",
      ]),
    );
    const slow = join(dir, 'slow.ipynb');
    writeFileSync(slow, notebookJson(['await new Promise((r) => setTimeout(r, 120_000));']));
    failing = Promise.all([
      runNotebook(typeError, { outDir: join(dir, 'out'), root, quick: false, timeoutSec: 120 }),
      runNotebook(slow, { outDir: join(dir, 'out'), root, timeoutSec: 3 }),
    ]);
    // keep an early rejection from being reported as unhandled before a test awaits it
    all.catch(() => undefined);
    failing.catch(() => undefined);
  });

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('every notebooks/*.ipynb executes without a cell error', async () => {
    const results = await all;
    console.log(`all notebooks (alongside the failing ones) after ${Date.now() - t0} ms:\n${formatNotebookResults(results)}`);
    const notebooks = listNotebooks();
    expect(notebooks.map((n) => basename(n))).toContain('00_smoke.ipynb');
    expect(results.map((r) => r.notebook)).toEqual(notebooks);
    for (const r of results) {
      expect(r.errors, basename(r.notebook)).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.cells.every((c) => c.status === 'ok')).toBe(true);
    }
  });

  it('00_smoke shows the AOPD table and a PNG of the figure in the theme colour, with quick settings on', async () => {
    await all;
    const nb = JSON.parse(readFileSync(join(out, 'all', '00_smoke.ipynb'), 'utf8'));
    const outputs = nb.cells.flatMap((c: { outputs?: unknown[] }) => c.outputs ?? []) as { output_type: string; name?: string; text?: string[]; data?: Record<string, string | string[]> }[];
    const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : v ?? '');
    expect(outputs.filter((o) => o.name === 'stdout').map((o) => text(o.text)).join('')).toMatch(/quick settings: true/);
    const html = outputs.map((o) => text(o.data?.['text/html'])).join('');
    expect(html).toMatch(/<table><caption>AOPD on a synthetic batch<\/caption>/);
    expect(html).toContain('intervention/ratio');
    const pngs = outputs.filter((o) => o.data?.['image/png']);
    expect(pngs).toHaveLength(1);
    const png = decodePng(Buffer.from(text(pngs[0].data!['image/png']), 'base64'));
    expect([png.width, png.height]).toEqual([1280, 640]); // 640 x 320 at scale 2
    expect(countColour(png, METHOD_STYLES.aopd.colour, 10)).toBeGreaterThan(300);
  });

  it("a type error fails the run with tslab's message and aborts the rest; leftover processes are killed", async () => {
    const [bad] = await failing;
    console.log(`type-error notebook ${bad.seconds.toFixed(1)} s`);
    expect(bad.ok).toBe(false);
    expect(bad.cells.map((c) => c.status)).toEqual(['ok', 'error', 'abort']);
    expect(bad.errors[0]).toMatch(/^cell 1 \(const x: number = 'a';\) failed: 1:7 - Type 'string' is not assignable to type 'number'/);
    const executed = JSON.parse(readFileSync(bad.executed!, 'utf8'));
    const printed = executed.cells[0].outputs[0].text.join('') as string;
    expect(printed).toMatch(/^quick=0 pid=\d+\n$/);
    const pid = Number(/pid=(\d+)/.exec(printed)![1]);
    expect(bad.warnings.join('\n')).toMatch(/killed [1-9]\d* process\(es\) of the run/);
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(bad.seconds).toBeLessThan(100); // not the 300 s of the sleep holding stderr open
  });

  it('a cell past the timeout fails the run with nbclient\'s CellTimeoutError', async () => {
    const [, late] = await failing;
    console.log(`timeout notebook ${late.seconds.toFixed(1)} s (limit 3 s per cell)`);
    expect(late.ok).toBe(false);
    expect(late.errors.join('\n')).toMatch(/CellTimeoutError: A cell timed out while it was being executed, after 3 seconds/);
    expect(late.seconds).toBeLessThan(60);
  });

  it('refuses bad arguments before starting Jupyter', async () => {
    await expect(runNotebooks({ notebooks: ['nope.ipynb'] })).rejects.toThrow(/no such file nope.ipynb/);
    await expect(runNotebooks({ notebooks: ['x.txt'] })).rejects.toThrow(/expected .ipynb files/);
    await expect(runNotebooks({ timeoutSec: 0 })).rejects.toThrow(/timeoutSec must be a positive number/);
  });
});
