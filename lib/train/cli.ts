/**
 * `opdlab run` arguments -> a config input (resolveConfig then validates it). Applied in this order, later wins:
 *
 *   --config <file.json>        a (partial) config as JSON
 *   --<flag> <value>            the named flags below (also --flag=value)
 *   --<objective option> <v>    any option of the chosen method's objective, case-insensitive, kebab or camel
 *                               case: --eta 0, --topk 16 (aopd's topK), --beta 0.5, --lambda 1.25, --eps-zero 0.1
 *   --set <path>=<value>        any field by dotted path: --set distill.objective.supportNorm=both (repeatable)
 *
 * Values are parsed as JSON when they parse (numbers, true/false, null, {...}, [...]) and kept as strings
 * otherwise. Sampling top-k is --sample-top-k (plain --topk is the objective's support size, as in the papers).
 */
import * as fs from 'fs';
import { getObjective } from '../objectives/registry';
import { DEFAULT_CONFIG, setPath, type ConfigInput } from './config';

/** Named flags and the config field each sets. */
export const RUN_FLAGS: Readonly<Record<string, string>> = {
  seed: 'seed',
  task: 'task.name',
  digits: 'task.options.digits',
  method: 'distill.method',
  steps: 'distill.steps',
  prompts: 'distill.prompts',
  rollouts: 'distill.rollouts',
  lr: 'distill.lr',
  temperature: 'distill.temperature',
  'top-p': 'distill.topP',
  'sample-top-k': 'distill.topK',
  reduction: 'distill.reduction',
  'teacher-form': 'distill.teacherForm',
  'teacher-top-k': 'distill.teacherTopK',
  behaviour: 'distill.behaviour',
  'warmup-steps': 'warmup.steps',
  'warmup-batch': 'warmup.batch',
  'warmup-lr': 'warmup.lr',
  'eval-every': 'eval.every',
  'eval-prompts': 'eval.prompts',
  'eval-samples': 'eval.samples',
  'eval-temperature': 'eval.temperature',
  'continual-steps': 'continual.steps',
  'analysis-every': 'analysis.every',
  'checkpoint-every': 'checkpointEvery',
  root: 'out.root',
  sweep: 'out.sweep',
  'if-exists': 'out.ifExists',
  'stop-after': 'stopAfter',
};

export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const normalise = (name: string) => name.replace(/-/g, '').toLowerCase();

/** Turn `opdlab run` arguments into a config input (header). Unknown flags throw, listing what is known. */
export function parseRunArgs(args: readonly string[]): ConfigInput {
  // split into [flag, value] pairs first
  const pairs: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) throw new Error(`opdlab run: unexpected argument '${a}' (flags look like --name value)`);
    const eq = a.indexOf('=');
    if (eq > 2 && a.slice(2, eq) !== 'set') {
      pairs.push([a.slice(2, eq), a.slice(eq + 1)]);
      continue;
    }
    if (a.startsWith('--set=')) {
      pairs.push(['set', a.slice(6)]);
      continue;
    }
    const value = args[i + 1];
    if (value === undefined) throw new Error(`opdlab run: ${a} needs a value`);
    pairs.push([a.slice(2), value]);
    i++;
  }
  const out: Record<string, unknown> = {};
  const config = pairs.filter(([f]) => f === 'config');
  for (const [, file] of config) {
    const text = fs.readFileSync(file, 'utf8');
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`opdlab run: --config ${file} must hold a JSON object`);
    Object.assign(out, parsed);
  }
  const sets: [string, unknown][] = [];
  for (const [flag, value] of pairs) {
    if (flag === 'config') continue;
    if (flag === 'set') {
      const eq = value.indexOf('=');
      if (eq < 1) throw new Error(`opdlab run: --set needs key=value, got '${value}'`);
      sets.push([value.slice(0, eq), parseValue(value.slice(eq + 1))]);
      continue;
    }
    const field = RUN_FLAGS[flag];
    if (field) {
      setPath(out, field, parseValue(value));
      continue;
    }
    sets.push([`@objective:${flag}`, parseValue(value)]);
  }
  // objective options need the method, which any of the above may have set
  const distill = (out.distill ?? {}) as Record<string, unknown>;
  const methodSet = sets.find(([k]) => k === 'distill.method');
  const method = String(methodSet?.[1] ?? distill.method ?? DEFAULT_CONFIG.distill.method);
  const defaults = getObjective(method).defaults as Record<string, unknown>;
  for (const [k, v] of sets) {
    if (!k.startsWith('@objective:')) {
      setPath(out, k, v);
      continue;
    }
    const flag = k.slice('@objective:'.length);
    const option = Object.keys(defaults).find((o) => normalise(o) === normalise(flag));
    if (!option) {
      throw new Error(
        `opdlab run: unknown flag --${flag}; flags: ${Object.keys(RUN_FLAGS).map((f) => `--${f}`).join(', ')}, --config, --set; ` +
          `options of ${method}: ${Object.keys(defaults).map((o) => `--${o}`).join(', ') || '(none)'}`,
      );
    }
    setPath(out, `distill.objective.${option}`, v);
  }
  return out as ConfigInput;
}
