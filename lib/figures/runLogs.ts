/**
 * Reading a finished run folder's logs for the data generators (lib/figures/paper/*): metrics.jsonl (one row per
 * training step: `step`, `phase`, metric keys) and eval.jsonl (one row per evaluation: `step`, `task`, eval/pass@k
 * ...), docs/metrics.md. A missing number is an error naming the file, the step and the key, never a silent gap.
 * Numbers are rounded to 5 significant digits (r5): the committed data files stay small and diff well.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** `x` to 5 significant digits (non-finite values unchanged). */
export const r5 = (x: number): number => (Number.isFinite(x) ? Number(x.toPrecision(5)) : x);

/** The JSON rows of a .jsonl file (blank lines skipped). */
export function readJsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface RunLog {
  /** The kept rows, in file order. */
  rows: Record<string, unknown>[];
  /** `step` of every kept row. */
  steps(): number[];
  /** True when the first kept row has a number under `key` (a metric the method logs). */
  has(key: string): boolean;
  /** `key` of every kept row, r5-rounded; throws naming the file, the step and the key where one is missing. */
  series(key: string): number[];
}

/** The rows of `<dir>/<file>` that `keep` accepts, with typed column readers (header). */
export function runLog(dir: string, file: 'metrics.jsonl' | 'eval.jsonl', keep: (row: Record<string, unknown>) => boolean): RunLog {
  const path = join(dir, file);
  const rows = readJsonl(path).filter(keep);
  return {
    rows,
    steps: () => rows.map((r) => Number(r.step)),
    has: (key) => rows.length > 0 && typeof rows[0][key] === 'number',
    series: (key) =>
      rows.map((r) => {
        const v = r[key];
        if (typeof v !== 'number') throw new Error(`${path}: step ${String(r.step)} has no number '${key}'`);
        return r5(v);
      }),
  };
}

/** The distillation-phase rows of metrics.jsonl. */
export const distillRows = (dir: string): RunLog => runLog(dir, 'metrics.jsonl', (r) => r.phase === 'distill');

/** The evaluations of `task` in eval.jsonl ('math' also matches rows without a task: older runs). */
export const evalRows = (dir: string, task = 'math'): RunLog => runLog(dir, 'eval.jsonl', (r) => r.task === task || (task === 'math' && r.task === undefined));
