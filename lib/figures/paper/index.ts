/**
 * The registered paper figures: each draws from cached data (lib/figures/data.ts) and quotes numbers into
 * figures/numbers.json (style.md item 11). `drawPaperFigures` is what `opdlab figures` runs; it never trains.
 *
 *   fig2aAdvantageDistribution   claim C1   data/figures/c1c2.json
 *   fig2bExplorationBlackHole    claim C2   data/figures/c1c2.json
 *   fig4aGradientNorm            claim C5   data/figures/dynamics.json
 *   fig5Entropy                  claim C7   data/figures/dynamics.json
 *   fig6TrainingCurves           claim C8   data/figures/dynamics.json
 *   fig3JsdFamilyDynamics        claim C4   data/figures/ablations.json
 *   fig4bcInterventionRatio      claim C6   data/figures/ablations.json
 *   fig7BetaAccuracy             claim C10  data/figures/ablations.json
 *   fig8abTopK                   claim C11  data/figures/ablations.json
 *   fig8cInterventionLocation    claim C12  data/figures/ablations.json
 *   fig11EtaAblation             claim C13  data/figures/ablations.json
 *   opdplusBias                  claim C14  data/figures/neighbours.json
 *   revisitingVariance           claim C15  data/figures/neighbours.json
 *   scopeVsOpd                   claim C16  data/figures/neighbours.json
 *   gopdRewardScale              claim C17  data/figures/neighbours.json
 *   propsSamplingError           claim C18  data/figures/neighbours.json
 *   fig2cWarmupStrength          claim C3   data/figures/initcontinual.json
 *   table1InitStrength           claim C8   data/figures/initcontinual.json
 *   fig10WeakInitCurves          claim C8   data/figures/initcontinual.json
 *   table2ContinualLearning      claim C9   data/figures/initcontinual.json
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { figureDataPath, readC1C2Data } from '../data';
import { projectPaths } from '../paths';
import { Renderer, writeFigureFiles } from '../render';
import type { PlotlyFigure } from '../theme';
import { c1Numbers, fig2aAdvantageDistribution } from './fig2a';
import { c2Numbers, fig2bExplorationBlackHole } from './fig2b';
import { c5Numbers, fig4aGradientNorm } from './fig4a';
import { c7Numbers, fig5Entropy } from './fig5';
import { c8Numbers, fig6TrainingCurves } from './fig6';
import { readDynamicsData } from './generateDynamics';
import * as ablations from './ablations';
import * as neighbours from './neighbours';
import * as initcontinual from './initcontinual';

export * from './fig2a';
export * from './fig2b';
export * from './fig4a';
export * from './fig5';
export * from './fig6';
export * from './generateDynamics';
export * from './ablations';
export * from './neighbours';
export * from './initcontinual';

export interface PaperFigure {
  /** File stem under figures/ (the exported function's name). */
  name: string;
  claim: string;
  /** data/figures/<file> it reads. */
  dataFile: string;
  /** The spec and the numbers it quotes, from the data file at `path`. */
  make(path: string): { figure: PlotlyFigure; numbers: Record<string, number> };
}

export const PAPER_FIGURES: readonly PaperFigure[] = [
  {
    name: 'fig2aAdvantageDistribution',
    claim: 'C1',
    dataFile: 'c1c2.json',
    make(path) {
      const d = readC1C2Data(path);
      return { figure: fig2aAdvantageDistribution({ seeds: d.seeds }), numbers: c1Numbers({ seeds: d.seeds }) };
    },
  },
  {
    name: 'fig2bExplorationBlackHole',
    claim: 'C2',
    dataFile: 'c1c2.json',
    make(path) {
      const d = readC1C2Data(path);
      return { figure: fig2bExplorationBlackHole({ seeds: d.seeds }), numbers: c2Numbers({ seeds: d.seeds }) };
    },
  },
  {
    name: 'fig4aGradientNorm',
    claim: 'C5',
    dataFile: 'dynamics.json',
    make(path) {
      const d = readDynamicsData(path).methods;
      return { figure: fig4aGradientNorm(d), numbers: c5Numbers(d) };
    },
  },
  {
    name: 'fig5Entropy',
    claim: 'C7',
    dataFile: 'dynamics.json',
    make(path) {
      const d = readDynamicsData(path).methods;
      return { figure: fig5Entropy(d), numbers: c7Numbers(d) };
    },
  },
  {
    name: 'fig6TrainingCurves',
    claim: 'C8',
    dataFile: 'dynamics.json',
    make(path) {
      const d = readDynamicsData(path).methods;
      return { figure: fig6TrainingCurves(d), numbers: c8Numbers(d) };
    },
  },
  {
    name: 'fig3JsdFamilyDynamics',
    claim: 'C4',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig3JsdFamilyDynamics(d), numbers: ablations.c4Numbers(d) };
    },
  },
  {
    name: 'fig4bcInterventionRatio',
    claim: 'C6',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig4bcInterventionRatio(d), numbers: ablations.c6Numbers(d) };
    },
  },
  {
    name: 'fig7BetaAccuracy',
    claim: 'C10',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig7BetaAccuracy(d), numbers: ablations.c10Numbers(d) };
    },
  },
  {
    name: 'fig8abTopK',
    claim: 'C11',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig8abTopK(d), numbers: ablations.c11Numbers(d) };
    },
  },
  {
    name: 'fig8cInterventionLocation',
    claim: 'C12',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig8cInterventionLocation(d), numbers: ablations.c12Numbers(d) };
    },
  },
  {
    name: 'fig11EtaAblation',
    claim: 'C13',
    dataFile: 'ablations.json',
    make(path) {
      const d = ablations.readAblationsData(path);
      return { figure: ablations.fig11EtaAblation(d), numbers: ablations.c13Numbers(d) };
    },
  },
  {
    name: 'opdplusBias',
    claim: 'C14',
    dataFile: 'neighbours.json',
    make(path) {
      const d = neighbours.readNeighboursData(path);
      return { figure: neighbours.opdplusBias(d), numbers: neighbours.c14Numbers(d) };
    },
  },
  {
    name: 'revisitingVariance',
    claim: 'C15',
    dataFile: 'neighbours.json',
    make(path) {
      const d = neighbours.readNeighboursData(path);
      return { figure: neighbours.revisitingVariance(d), numbers: neighbours.c15Numbers(d) };
    },
  },
  {
    name: 'scopeVsOpd',
    claim: 'C16',
    dataFile: 'neighbours.json',
    make(path) {
      const d = neighbours.readNeighboursData(path);
      return { figure: neighbours.scopeVsOpd(d), numbers: neighbours.c16Numbers(d) };
    },
  },
  {
    name: 'gopdRewardScale',
    claim: 'C17',
    dataFile: 'neighbours.json',
    make(path) {
      const d = neighbours.readNeighboursData(path);
      return { figure: neighbours.gopdRewardScale(d), numbers: neighbours.c17Numbers(d) };
    },
  },
  {
    name: 'propsSamplingError',
    claim: 'C18',
    dataFile: 'neighbours.json',
    make(path) {
      const d = neighbours.readNeighboursData(path);
      return { figure: neighbours.propsSamplingError(d), numbers: neighbours.c18Numbers(d) };
    },
  },
  {
    name: 'fig2cWarmupStrength',
    claim: 'C3',
    dataFile: 'initcontinual.json',
    make(path) {
      const d = initcontinual.readInitContinualData(path);
      return { figure: initcontinual.fig2cWarmupStrength(d), numbers: initcontinual.c3Numbers(d) };
    },
  },
  {
    name: 'table1InitStrength',
    claim: 'C8',
    dataFile: 'initcontinual.json',
    make(path) {
      const d = initcontinual.readInitContinualData(path);
      return { figure: initcontinual.table1InitStrength(d), numbers: initcontinual.c8InitNumbers(d) };
    },
  },
  {
    name: 'fig10WeakInitCurves',
    claim: 'C8',
    dataFile: 'initcontinual.json',
    make(path) {
      const d = initcontinual.readInitContinualData(path);
      return { figure: initcontinual.fig10WeakInitCurves(d), numbers: {} };
    },
  },
  {
    name: 'table2ContinualLearning',
    claim: 'C9',
    dataFile: 'initcontinual.json',
    make(path) {
      const d = initcontinual.readInitContinualData(path);
      return { figure: initcontinual.table2ContinualLearning(d), numbers: initcontinual.c9Numbers(d) };
    },
  },
];

export interface DrawOptions {
  /** Only these figure names. Default all. */
  only?: string[];
  /** Repository root (data/ and figures/ under it). Default repoRoot(). */
  root?: string;
  /** Folder of the data files. Default <root>/data/figures. */
  dataDir?: string;
  /** Output folder. Default <root>/figures. */
  outDir?: string;
  /** Also PNG and SVG (headless Chromium). Default true. */
  images?: boolean;
  /** Progress lines. Default none. */
  log?: (line: string) => void;
}

export interface DrawResult {
  names: string[];
  /** The numbers written (merged into numbers.json). */
  numbers: Record<string, number>;
  numbersPath: string;
}

/** Every registered figure (or `only`) from data/figures/ to <outDir>/<name>.{json,html,png,svg}, plus numbers.json. */
export async function drawPaperFigures(options: DrawOptions = {}): Promise<DrawResult> {
  const paths = projectPaths(options.root);
  const outDir = options.outDir ?? paths.figures;
  const known = PAPER_FIGURES.map((f) => f.name);
  for (const n of options.only ?? []) if (!known.includes(n)) throw new Error(`figures: unknown figure '${n}'; known: ${known.join(', ')}`);
  const chosen = PAPER_FIGURES.filter((f) => !options.only || options.only.length === 0 || options.only.includes(f.name));
  const made = chosen.map((f) => ({ f, ...f.make(options.dataDir ? join(options.dataDir, f.dataFile) : figureDataPath(f.dataFile, paths.root)) }));
  const numbers: Record<string, number> = {};
  for (const m of made) Object.assign(numbers, m.numbers);
  const renderer = options.images === false ? null : await Renderer.open();
  try {
    for (const m of made) {
      if (renderer) await renderer.render(m.figure, m.f.name, { dir: outDir });
      else writeFigureFiles(m.figure, m.f.name, { dir: outDir });
      options.log?.(`${m.f.name} (${m.f.claim}) -> ${join(outDir, m.f.name)}.{${renderer ? 'json,html,png,svg' : 'json,html'}}`);
    }
  } finally {
    await renderer?.close();
  }
  // merge: `--only` must not drop the numbers of the other figures
  const numbersPath = join(outDir, 'numbers.json');
  const previous = existsSync(numbersPath) ? (JSON.parse(readFileSync(numbersPath, 'utf8')) as Record<string, number>) : {};
  const merged = { ...previous, ...numbers };
  const sorted = Object.fromEntries(Object.keys(merged).sort().map((k) => [k, merged[k]]));
  mkdirSync(dirname(numbersPath), { recursive: true });
  const tmp = `${numbersPath}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(sorted, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1)}\n`);
  renameSync(tmp, numbersPath);
  options.log?.(`numbers -> ${numbersPath}`);
  return { names: made.map((m) => m.f.name), numbers, numbersPath };
}
export * from './generate';
