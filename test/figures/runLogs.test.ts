/** lib/figures/runLogs.ts: the run-folder log readers every data generator uses. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { distillRows, evalRows, r5, readJsonl, runLog } from '../../lib/figures/runLogs';

const dir = mkdtempSync(join(tmpdir(), 'opdlab-runlogs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const lines = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n\n';
writeFileSync(
  join(dir, 'metrics.jsonl'),
  lines([
    { step: 1, phase: 'distill', 'grad/param_norm': 1.234567, ratio: 0.5 },
    { step: 2, phase: 'distill', 'grad/param_norm': 2 },
    { step: 3, phase: 'continual', 'grad/param_norm': 3 },
  ]),
);
writeFileSync(join(dir, 'eval.jsonl'), lines([{ step: 0, task: 'math', 'eval/pass@1': 0.1 }, { step: 0, task: 'tool', 'eval/pass@1': 0.7 }, { step: 10, 'eval/pass@1': 0.2 }]));

describe('run logs', () => {
  it('reads the rows, keeps the chosen phase or task, rounds to 5 significant digits', () => {
    expect(readJsonl(join(dir, 'metrics.jsonl'))).toHaveLength(3);
    const m = distillRows(dir);
    expect(m.steps()).toEqual([1, 2]);
    expect(m.series('grad/param_norm')).toEqual([1.2346, 2]);
    expect(m.has('ratio')).toBe(true);
    expect(m.has('nope')).toBe(false);
    expect(evalRows(dir).series('eval/pass@1')).toEqual([0.1, 0.2]); // a row without a task counts as math
    expect(evalRows(dir, 'tool').steps()).toEqual([0]);
    expect(runLog(dir, 'metrics.jsonl', (r) => r.phase === 'continual').series('grad/param_norm')).toEqual([3]);
    expect(r5(Math.PI)).toBe(3.1416);
    expect(r5(Infinity)).toBe(Infinity);
  });

  it('a missing number names the file, the step and the key', () => {
    expect(() => distillRows(dir).series('ratio')).toThrow(/metrics\.jsonl: step 2 has no number 'ratio'/);
  });
});
