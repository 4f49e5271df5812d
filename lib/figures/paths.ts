/**
 * Every path the figures and notebooks read or write, in one place (style.md item 11; pysr's `paths.py`).
 *
 *   figures/<name>.json     plotly {data, layout}
 *   figures/<name>.html     the figure with plotly.js inlined (works offline)
 *   figures/<name>.png      PNG (headless Chromium)
 *   figures/<name>.svg      SVG (headless Chromium)
 *   figures/numbers.json    numbers quoted in prose
 *   data/                   small committed inputs (sample dumps, cached results figures are drawn from)
 *   runs/                   run folders (git-ignored); figures read them, never write them
 *   notebooks/NN_topic.ipynb, executed copies in runs/notebooks/
 *
 * The repository root is found by walking up from this file to the package.json named `opdlab`, so the same
 * code works from lib/ (vitest), dist/lib/ (the CLI, notebooks) and an installed package. `OPDLAB_ROOT`
 * overrides it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const FIGURE_FORMATS = ['json', 'html', 'png', 'svg'] as const;
export type FigureFormat = (typeof FIGURE_FORMATS)[number];

export interface ProjectPaths {
  /** Repository (package) root. */
  root: string;
  /** Generated figures: <name>.{json,html,png,svg} and numbers.json. */
  figures: string;
  /** figures/numbers.json: numbers quoted in prose. */
  numbers: string;
  /** Small committed inputs. */
  data: string;
  /** Run folders (git-ignored). */
  runs: string;
  /** The notebooks (NN_topic.ipynb). */
  notebooks: string;
  /** Executed copies of the notebooks (git-ignored, under runs/). */
  notebookOutputs: string;
}

let cachedRoot: string | null = null;

/** The repository root: OPDLAB_ROOT, else the nearest ancestor of this file whose package.json is `opdlab`. */
export function repoRoot(): string {
  if (process.env.OPDLAB_ROOT) return resolve(process.env.OPDLAB_ROOT);
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'opdlab') return (cachedRoot = dir);
      } catch {
        // an unreadable package.json is not ours: keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`repoRoot: no package.json named 'opdlab' above ${__dirname}; set OPDLAB_ROOT`);
    dir = parent;
  }
}

export function projectPaths(root: string = repoRoot()): ProjectPaths {
  const figures = join(root, 'figures');
  const runs = join(root, 'runs');
  return {
    root,
    figures,
    numbers: join(figures, 'numbers.json'),
    data: join(root, 'data'),
    runs,
    notebooks: join(root, 'notebooks'),
    notebookOutputs: join(runs, 'notebooks'),
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Throws unless `name` is a plain file stem (letters, digits, `_ . -`; no folders, no extension games). */
export function checkFigureName(name: string): void {
  if (typeof name !== 'string' || !NAME.test(name) || name.endsWith('.'))
    throw new Error(`figure name must match ${NAME} (a file stem such as 'fig3EntropyVsStep'), got ${JSON.stringify(name)}`);
  if (name === 'numbers') throw new Error(`figure name 'numbers' is reserved for figures/numbers.json`);
}

/** `<dir>/<name>.<format>`; `dir` defaults to figures/. */
export function figurePath(name: string, format: FigureFormat, dir: string = projectPaths().figures): string {
  checkFigureName(name);
  if (!(FIGURE_FORMATS as readonly string[]).includes(format))
    throw new Error(`figure format must be one of ${FIGURE_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  return join(dir, `${name}.${format}`);
}
