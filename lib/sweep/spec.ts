/**
 * Sweeps are data (style.md item 8): a JSON spec = a base config + axes, expanded into cells {name, values, config,
 * key}; every cell runs the same job (by default the trainer's run(config), as `opdlab run`).
 *
 *   {
 *     "name": "eta",                              folder name under --out; [A-Za-z0-9._-], not starting with '_' or '.'
 *     "description": "...", "claims": ["C13"],    for people (optional)
 *     "job": "distill",                           built-in name or "module.js#export" / {module, export} (default distill)
 *     "base": { ...config input... },             what every cell starts from (default {})
 *     "axes": {
 *       "distill.objective.eta": [-1, -0.5, 0],   values set at the path named by the axis
 *       "K": {"path": "distill.objective.topK", "values": [4, 16]},              a short axis name for a path
 *       "method": {"values": {"opd": {"distill.method": "opd"},                   labelled bundles of dotted paths
 *                             "gkd": {"distill.method": "gkd", "distill.objective": {"beta": 0.5}}}}
 *     },
 *     "seeds": 5,                                 shorthand for an axis "seed" at path "seed" with values 0..4 (or a list)
 *     "seedAxis": "seed",                         the axis the summary averages over (default "seed")
 *     "metrics": ["final/math/pass@1"]            metrics the printed summary shows first (optional)
 *   }
 *
 * Setting a value: when the existing value and the new one are both plain objects they are merged (the new one
 * wins, recursively); otherwise the new value replaces the old. Bundles apply their paths in order.
 * Cells: the cartesian product of the axes with the seed axis outermost (all settings at seed 0 first, for early
 * signal), then the axes in the order written, the last fastest. A cell's name is `axis=label,...` in axis order.
 * Every cell is validated by the job (a bad value is reported with the cell and the field); two cells with the same
 * run key are an error (an axis that cannot change the outcome).
 */
import * as fs from 'fs';
import * as path from 'path';
import { canonicalJson, packageRoot } from '../train/runKey';
import { jobKey, type Job } from './job';

export interface AxisObject {
  path?: string;
  values: unknown[] | Record<string, unknown>;
}

export interface SweepSpec {
  name: string;
  description?: string;
  claims?: string[];
  job?: string | { module: string; export?: string };
  base?: Record<string, unknown>;
  axes: Record<string, unknown[] | AxisObject>;
  seeds?: number | number[];
  seedAxis?: string;
  metrics?: string[];
}

export interface AxisLevel {
  label: string;
  /** The value set at `path`, or for a bundle a map of dotted paths to values. */
  value: unknown;
}

export interface Axis {
  name: string;
  /** Dotted config path; null for a bundle axis. */
  path: string | null;
  levels: AxisLevel[];
}

export interface Cell<C = unknown> {
  /** Position in the expansion order. */
  index: number;
  /** `axis=label,...` */
  name: string;
  /** Axis name -> level label. */
  values: Record<string, string>;
  /** The config input given to the job (base with the axis values applied). */
  input: Record<string, unknown>;
  /** The job's validated config. */
  config: C;
  key: string;
}

const SPEC_KEYS = ['name', 'description', 'claims', 'job', 'base', 'axes', 'seeds', 'seedAxis', 'metrics', '$schema', 'comment'];
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const PATH_RE = /^[A-Za-z_$][A-Za-z0-9_$@-]*(\.[A-Za-z_$][A-Za-z0-9_$@-]*)*$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Set `value` at the dotted `dotted` path of `target` (merging plain objects); creates objects on the way. */
export function applyAt(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) {
    if (o[p] === undefined || o[p] === null) o[p] = {};
    if (!isPlainObject(o[p])) throw new Error(`cannot set '${dotted}': '${p}' holds ${JSON.stringify(o[p])}, not an object`);
    o = o[p] as Record<string, unknown>;
  }
  const leaf = parts[parts.length - 1];
  o[leaf] = isPlainObject(o[leaf]) && isPlainObject(value) ? deepMerge(o[leaf] as Record<string, unknown>, value) : clone(value);
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = clone(a);
  for (const [k, v] of Object.entries(b)) out[k] = isPlainObject(out[k]) && isPlainObject(v) ? deepMerge(out[k] as Record<string, unknown>, v) : clone(v);
  return out;
}

function labelOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return canonicalJson(v);
}

/** Check a parsed spec's shape; every message starts with `spec '<name>'` and names the field. */
export function checkSpec(raw: unknown, source = 'spec'): SweepSpec {
  const where = (field: string) => `${source}: ${field}`;
  if (!isPlainObject(raw)) throw new Error(`${source}: must be a JSON object, got ${JSON.stringify(raw)}`);
  for (const k of Object.keys(raw)) if (!SPEC_KEYS.includes(k)) throw new Error(`${where(k)}: unknown key (known keys: ${SPEC_KEYS.filter((x) => !x.startsWith('$') && x !== 'comment').join(', ')})`);
  const s = raw as Record<string, unknown>;
  if (typeof s.name !== 'string' || !NAME_RE.test(s.name)) throw new Error(`${where('name')} must be a folder name of letters, digits, '.', '_', '-' (not starting with '.', '_' or '-'), got ${JSON.stringify(s.name)}`);
  if (s.description !== undefined && typeof s.description !== 'string') throw new Error(`${where('description')} must be a string`);
  for (const k of ['claims', 'metrics']) {
    if (s[k] !== undefined && !(Array.isArray(s[k]) && (s[k] as unknown[]).every((x) => typeof x === 'string'))) throw new Error(`${where(k)} must be a list of strings, got ${JSON.stringify(s[k])}`);
  }
  if (s.base !== undefined && !isPlainObject(s.base)) throw new Error(`${where('base')} must be an object (a config input), got ${JSON.stringify(s.base)}`);
  if (!isPlainObject(s.axes)) throw new Error(`${where('axes')} must be an object of axis name -> values, got ${JSON.stringify(s.axes)}`);
  if (s.seeds !== undefined) {
    const ok = (typeof s.seeds === 'number' && Number.isInteger(s.seeds) && s.seeds >= 1) || (Array.isArray(s.seeds) && s.seeds.length > 0 && s.seeds.every((x) => Number.isInteger(x) && (x as number) >= 0));
    if (!ok) throw new Error(`${where('seeds')} must be a count >= 1 or a non-empty list of integers >= 0, got ${JSON.stringify(s.seeds)}`);
  }
  if (s.seedAxis !== undefined && typeof s.seedAxis !== 'string') throw new Error(`${where('seedAxis')} must be an axis name, got ${JSON.stringify(s.seedAxis)}`);
  return s as unknown as SweepSpec;
}

/** The axes of a checked spec, `seeds` shorthand included (last in the written order, outermost in expansion). */
export function specAxes(spec: SweepSpec, source = `spec '${spec.name}'`): Axis[] {
  const axes: Axis[] = [];
  const entries = Object.entries(spec.axes);
  const seedAxis = spec.seedAxis ?? 'seed';
  if (spec.seeds !== undefined) {
    if (seedAxis in spec.axes) throw new Error(`${source}: seeds is given and axes.${seedAxis} too; use one`);
    const list = typeof spec.seeds === 'number' ? Array.from({ length: spec.seeds }, (_, i) => i) : spec.seeds;
    entries.push([seedAxis, { path: 'seed', values: list }]);
  }
  if (entries.length === 0) throw new Error(`${source}: axes is empty (a sweep needs at least one axis; use "seeds": 1 for a single run)`);
  for (const [name, def] of entries) {
    const field = `axes.${name}`;
    if (!/^[A-Za-z0-9_@.$-]+$/.test(name)) throw new Error(`${source}: ${field}: an axis name may hold letters, digits and _ @ . $ - only`);
    let axisPath: string | null = name;
    let values: unknown = def;
    if (isPlainObject(def)) {
      for (const k of Object.keys(def)) if (k !== 'path' && k !== 'values') throw new Error(`${source}: ${field}.${k}: unknown key (an axis object has path and values)`);
      values = def.values;
      if (def.path !== undefined && typeof def.path !== 'string') throw new Error(`${source}: ${field}.path must be a dotted config path, got ${JSON.stringify(def.path)}`);
      axisPath = (def.path as string | undefined) ?? (Array.isArray(values) ? name : null);
    }
    if (axisPath !== null && !PATH_RE.test(axisPath)) throw new Error(`${source}: ${field}${isPlainObject(def) ? '.path' : ''}: '${axisPath}' is not a dotted config path`);
    const levels: AxisLevel[] = [];
    if (Array.isArray(values)) {
      if (values.length === 0) throw new Error(`${source}: ${field} has no values`);
      for (const v of values) levels.push({ label: labelOf(v), value: v });
    } else if (isPlainObject(values)) {
      if (Object.keys(values).length === 0) throw new Error(`${source}: ${field}.values has no entries`);
      for (const [label, v] of Object.entries(values)) {
        if (axisPath === null) {
          if (!isPlainObject(v)) throw new Error(`${source}: ${field}.values.${label} must be an object of dotted config paths -> values (a bundle), got ${JSON.stringify(v)}`);
          for (const p of Object.keys(v)) if (!PATH_RE.test(p)) throw new Error(`${source}: ${field}.values.${label}: '${p}' is not a dotted config path`);
        }
        levels.push({ label, value: v });
      }
    } else {
      throw new Error(`${source}: ${field} must be a non-empty list of values, or {path?, values: list | {label: value}}, got ${JSON.stringify(values)}`);
    }
    const seen = new Map<string, number>();
    levels.forEach((l, i) => {
      if (seen.has(l.label)) throw new Error(`${source}: ${field}: values ${seen.get(l.label)} and ${i} have the same label '${l.label}'`);
      seen.set(l.label, i);
    });
    axes.push({ name, path: axisPath, levels });
  }
  return axes;
}

/** Expansion order: the seed axis outermost, then the written order; the last axis varies fastest. */
function expansionOrder(axes: Axis[], seedAxis: string): Axis[] {
  const seed = axes.filter((a) => a.name === seedAxis);
  return [...seed, ...axes.filter((a) => a.name !== seedAxis)];
}

/** The cell inputs of a spec, before the job validates them (no job needed: used by --dry-run tooling and tests). */
export function cellInputs(spec: SweepSpec, overrides: Record<string, unknown> = {}): Omit<Cell, 'config' | 'key'>[] {
  const source = `spec '${spec.name}'`;
  const axes = specAxes(spec, source);
  const seedAxis = spec.seedAxis ?? 'seed';
  const order = expansionOrder(axes, seedAxis);
  const base = clone(spec.base ?? {});
  for (const [p, v] of Object.entries(overrides)) applyAt(base, p, v);
  const out: Omit<Cell, 'config' | 'key'>[] = [];
  const idx = order.map(() => 0);
  const total = order.reduce((n, a) => n * a.levels.length, 1);
  for (let c = 0; c < total; c++) {
    const input = clone(base);
    const values: Record<string, string> = {};
    for (const axis of axes) {
      const level = axis.levels[idx[order.indexOf(axis)]];
      values[axis.name] = level.label;
      try {
        if (axis.path !== null) applyAt(input, axis.path, level.value);
        else for (const [p, v] of Object.entries(level.value as Record<string, unknown>)) applyAt(input, p, v);
      } catch (e) {
        throw new Error(`${source}: axes.${axis.name} = ${level.label}: ${(e as Error).message}`);
      }
    }
    out.push({ index: c, name: axes.map((a) => `${a.name}=${values[a.name]}`).join(','), values, input });
    for (let j = order.length - 1; j >= 0; j--) {
      idx[j]++;
      if (idx[j] < order[j].levels.length) break;
      idx[j] = 0;
    }
  }
  return out;
}

/** Expand a spec into validated, keyed cells; throws naming the cell and the field, or the two cells sharing a key. */
export function expandSpec<C>(spec: SweepSpec, job: Job<C>, overrides: Record<string, unknown> = {}): Cell<C>[] {
  const source = `spec '${spec.name}'`;
  const byKey = new Map<string, string>();
  return cellInputs(spec, overrides).map((c) => {
    let config: C;
    try {
      config = job.validate(c.input);
    } catch (e) {
      throw new Error(`${source}: cell '${c.name}': ${(e as Error).message}`);
    }
    const key = jobKey(job, config);
    const other = byKey.get(key);
    if (other !== undefined) throw new Error(`${source}: cells '${other}' and '${c.name}' have the same run key ${key.slice(0, 12)} (an axis that does not change the outcome)`);
    byKey.set(key, c.name);
    return { ...c, config, key };
  });
}

/** The folder of the built-in specs (specs/ at the package root). */
export function builtinSpecDir(): string {
  return path.join(packageRoot(), 'specs');
}

export function listBuiltinSpecs(): { name: string; file: string; description: string }[] {
  const dir = builtinSpecDir();
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = path.join(dir, f);
      const s = JSON.parse(fs.readFileSync(file, 'utf8')) as SweepSpec;
      return { name: f.replace(/\.json$/, ''), file, description: s.description ?? '' };
    });
}

/** Read a spec from a file path, or a built-in spec by name (specs/<name>.json). */
export function loadSpec(nameOrPath: string, cwd: string = process.cwd()): { spec: SweepSpec; file: string } {
  const direct = path.resolve(cwd, nameOrPath);
  const builtin = path.join(builtinSpecDir(), `${nameOrPath}.json`);
  const file = fs.existsSync(direct) && fs.statSync(direct).isFile() ? direct : fs.existsSync(builtin) ? builtin : null;
  if (!file) {
    const names = listBuiltinSpecs().map((s) => s.name);
    throw new Error(`sweep: no spec file '${nameOrPath}' and no built-in spec of that name (built-in: ${names.join(', ') || 'none'})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`sweep: ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return { spec: checkSpec(raw, `spec ${path.relative(cwd, file) || file}`), file };
}
