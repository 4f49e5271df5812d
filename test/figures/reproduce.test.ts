/**
 * `opdlab reproduce --quick` end to end (lib/figures/reproduce.ts): every registered data generator trains its tiny
 * runs, writes its data file, and every figure drawn from those files comes out as JSON + HTML (images are covered
 * by render.test.ts); a second call reuses every run. Runs in a temporary folder, never over data/ or figures/.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateInParallel, reproduce, reproduceOptions } from '../../lib/figures/reproduce';
import { DATA_GENERATORS, getGenerator } from '../../lib/figures/paper/generators';
import { PAPER_FIGURES } from '../../lib/figures/paper';
import { findRunDir, interleaveByWarmup, modeSeeds, PAPER_SEEDS_ENV, paperCells, quickInput } from '../../lib/figures/sweeps';

const dir = mkdtempSync(join(tmpdir(), 'opdlab-reproduce-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const paths = { runsRoot: join(dir, 'runs'), dataDir: join(dir, 'data'), outDir: join(dir, 'figures') };

describe('quick mode', () => {
  it('quickInput shrinks a run but keeps the experiment (warm-up ordering, continual stage)', () => {
    const q = quickInput({ warmup: { steps: 100 }, distill: { method: 'gkd', objective: { beta: 0.5 } }, continual: { steps: 100 } });
    expect(q).toMatchObject({ warmup: { steps: 10 }, distill: { method: 'gkd', objective: { beta: 0.5 }, steps: 6 }, continual: { steps: 6 } });
    expect((quickInput({}).warmup as { steps: number }).steps).toBe(70);
    expect(quickInput({}).continual).toBeUndefined();
  });

  it('the run order starts one cell of every warm-up before the second of any, longer warm-ups first', () => {
    const cell = (name: string, seed: number, steps: number) => ({ name, config: { ...paperCells('dynamics', 'quick')[0].config, seed, warmup: { ...paperCells('dynamics', 'quick')[0].config.warmup, steps } } });
    const order = interleaveByWarmup([cell('a0', 0, 5), cell('b0', 0, 5), cell('a1', 1, 5), cell('c0', 0, 7), cell('b1', 1, 5)]).map((c) => c.name);
    expect(order).toEqual(['c0', 'a0', 'a1', 'b0', 'b1']);
  });

  it('OPDLAB_PAPER_SEEDS sets the seeds of the full mode, and a bad value is named', () => {
    const before = process.env[PAPER_SEEDS_ENV];
    try {
      process.env[PAPER_SEEDS_ENV] = '5';
      expect(modeSeeds('full')).toEqual([0, 1, 2, 3, 4]);
      expect(new Set(paperCells('dynamics', 'full').map((c) => c.config.seed))).toEqual(new Set([0, 1, 2, 3, 4]));
      expect(modeSeeds('quick')).toEqual([0]);
      process.env[PAPER_SEEDS_ENV] = 'two';
      expect(() => modeSeeds('full')).toThrow(/OPDLAB_PAPER_SEEDS must be an integer >= 1 \(seeds per cell\), got 'two'/);
    } finally {
      if (before === undefined) delete process.env[PAPER_SEEDS_ENV];
      else process.env[PAPER_SEEDS_ENV] = before;
    }
    expect(modeSeeds('full')).toEqual([0, 1, 2]);
  });

  it('every spec a generator names expands in both modes; the full mode has 3 seeds per setting', () => {
    for (const g of DATA_GENERATORS) {
      for (const s of g.specs) {
        const full = paperCells(s, 'full');
        const quick = paperCells(s, 'quick');
        expect(full.length).toBe(3 * quick.length);
        expect(new Set(full.map((c) => c.config.seed))).toEqual(new Set([0, 1, 2]));
      }
    }
  });

  it(
    'reproduce --quick makes every data file and figure, and reuses its runs the second time',
    async () => {
      const lines: string[] = [];
      const r = await reproduce({ mode: 'quick', ...paths, images: false, progress: 'none', log: (l) => lines.push(l) });
      expect(r.generators).toEqual(DATA_GENERATORS.map((g) => g.name));
      expect(r.runs.trained).toBe(r.runs.total);
      for (const g of DATA_GENERATORS) expect(existsSync(join(paths.dataDir, g.dataFile)), g.dataFile).toBe(true);
      expect(r.figures.sort()).toEqual(PAPER_FIGURES.map((f) => f.name).sort());
      for (const f of r.figures) {
        const spec = JSON.parse(readFileSync(join(paths.outDir, `${f}.json`), 'utf8')) as { data: unknown[] };
        expect(spec.data.length, f).toBeGreaterThan(0);
        expect(existsSync(join(paths.outDir, `${f}.html`))).toBe(true);
      }
      const record = JSON.parse(readFileSync(join(paths.dataDir, 'reproduce.json'), 'utf8')) as { mode: string; seconds: { total: number } };
      expect(record.mode).toBe('quick');
      expect(record.seconds.total).toBeGreaterThan(0);
      // every run is found by key
      for (const g of DATA_GENERATORS) for (const s of g.specs) for (const c of paperCells(s, 'quick')) expect(findRunDir(paths.runsRoot, c.key), c.name).not.toBeNull();
      const again = await reproduce({ mode: 'quick', ...paths, onlyRuns: true, progress: 'none' });
      expect(again.runs).toEqual({ total: r.runs.total, cached: r.runs.total, trained: 0 });
    },
    600_000,
  );

  it('a generator that fails in its process is named, with its own message, and the others still finish', async () => {
    const lines: string[] = [];
    const empty = join(dir, 'empty');
    const o = reproduceOptions({ mode: 'quick', runsRoot: join(empty, 'runs'), dataDir: join(empty, 'data'), outDir: join(empty, 'figures'), log: (l) => lines.push(l) });
    await expect(generateInParallel([getGenerator('dynamics'), getGenerator('ablations')], o)).rejects.toThrow(/data generator\(s\) failed: (dynamics, ablations|ablations, dynamics)/);
    const text = lines.join('\n');
    expect(text).toMatch(/\[dynamics\] FAILED \(exit 1\): .*dynamics/);
    expect(text).toMatch(/\[ablations\] FAILED \(exit 1\)/);
    expect(existsSync(join(empty, 'data', 'dynamics.json'))).toBe(false);
  });

  it('an unknown generator is named', async () => {
    await expect(reproduce({ mode: 'quick', ...paths, only: ['nope'] })).rejects.toThrow(/unknown data generator 'nope'; known: c1c2, dynamics/);
  });
});
