/**
 * The data generators of the paper figures: each makes one file data/figures/<dataFile> that figures read
 * (figures never train). A generator either collects the finished runs of built-in sweep specs (`specs`, trained
 * first by `opdlab reproduce`, found by run key through lib/figures/sweeps.ts) or runs the simulation itself
 * (`specs` empty, e.g. c1c2).
 *
 *   c1c2       C1, C2                 each seed's warm-up student: rollouts, black hole, tracker (simulation, modeSeeds)
 *   dynamics   C5, C7, C8             specs/dynamics.json: opd / aopd / gkd curves
 *   ablations  C4, C6, C10-C13        specs eta, beta, topk, location: the AOPD ablations (paper/ablations/data.ts)
 *   neighbours C14-C18                specs/neighbours.json runs + exact gradients, estimator variance, G-OPD rewards,
 *                                     PROPS sampling error on each seed's warm-up student (paper/neighbours/data.ts)
 *   initcontinual C3, C8, C9         specs init + continual: weak vs strong warm-up, continual tool stage (paper/initcontinual/)
 *
 * `opdlab reproduce` = for each generator: train its specs' missing runs, generate its data file, then draw every
 * figure (lib/figures/reproduce.ts). `opdlab figures --generate <name>` runs one generator on existing runs.
 */
import { initBackend } from '../../backend';
import { modeSeeds, type ReproduceMode } from '../sweeps';
import { generateC1C2Data } from './generate';
import { generateDynamicsData } from './generateDynamics';
import { generateAblationsData } from './ablations/data';
import { generateNeighboursData } from './neighbours/data';
import { generateInitContinualData } from './initcontinual/data';

export interface GenerateContext {
  /** 'full' = the committed results (3 seeds), 'quick' = the tiny version the tests run. */
  mode: ReproduceMode;
  /** Folder holding the sweeps (runs/ by default). */
  runsRoot: string;
  /** Where to write the data file (data/figures/<dataFile> by default). */
  out: string;
  log: (line: string) => void;
}

export interface DataGenerator {
  /** `--generate <name>`, `reproduce --only <name>`. */
  name: string;
  /** File under data/figures/. */
  dataFile: string;
  /** Claims (claims.md) its figures show. */
  claims: string[];
  /** Built-in specs whose runs it reads (trained first by reproduce); [] = it runs the simulation itself. */
  specs: string[];
  /** It runs the simulation itself (tens of seconds; the others only read runs): reproduce starts these first. */
  simulates: boolean;
  generate(ctx: GenerateContext): Promise<void>;
}

export const DATA_GENERATORS: DataGenerator[] = [
  {
    name: 'c1c2',
    dataFile: 'c1c2.json',
    claims: ['C1', 'C2'],
    specs: [],
    simulates: true,
    async generate(ctx) {
      await initBackend({ quiet: true }); // the simulation's numbers depend on the backend: always the one reproduce uses
      const quick = ctx.mode === 'quick' ? { batches: 2, trackerSteps: 6, trackEvery: 3, warmupSteps: 70 } : {};
      await generateC1C2Data({ ...quick, seeds: modeSeeds(ctx.mode), cacheRoot: ctx.runsRoot, out: ctx.out, log: ctx.log });
    },
  },
  {
    name: 'dynamics',
    dataFile: 'dynamics.json',
    claims: ['C5', 'C7', 'C8'],
    specs: ['dynamics'],
    simulates: false,
    async generate(ctx) {
      generateDynamicsData({ mode: ctx.mode, runsRoot: ctx.runsRoot, out: ctx.out, log: ctx.log });
    },
  },
  {
    name: 'ablations',
    dataFile: 'ablations.json',
    claims: ['C4', 'C6', 'C10', 'C11', 'C12', 'C13'],
    specs: ['eta', 'beta', 'topk', 'location'],
    simulates: false,
    async generate(ctx) {
      generateAblationsData({ mode: ctx.mode, runsRoot: ctx.runsRoot, out: ctx.out, log: ctx.log });
    },
  },
  {
    name: 'neighbours',
    dataFile: 'neighbours.json',
    claims: ['C14', 'C15', 'C16', 'C17', 'C18'],
    specs: ['neighbours'],
    simulates: true,
    async generate(ctx) {
      await initBackend({ quiet: true }); // as c1c2: its simulation half ran on tfjs's cpu backend from `figures --generate` before
      await generateNeighboursData({ mode: ctx.mode, runsRoot: ctx.runsRoot, out: ctx.out, log: ctx.log });
    },
  },
  {
    name: 'initcontinual',
    dataFile: 'initcontinual.json',
    claims: ['C3', 'C8', 'C9'],
    specs: ['init', 'continual'],
    simulates: false,
    async generate(ctx) {
      generateInitContinualData({ mode: ctx.mode, runsRoot: ctx.runsRoot, out: ctx.out, log: ctx.log });
    },
  },
];

/** A registered generator by name; the error lists the known ones. */
export function getGenerator(name: string): DataGenerator {
  const g = DATA_GENERATORS.find((x) => x.name === name);
  if (!g) throw new Error(`unknown data generator '${name}'; known: ${DATA_GENERATORS.map((x) => x.name).join(', ')}`);
  return g;
}
