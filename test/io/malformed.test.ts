/**
 * Malformed input gets a clear error naming the file, the line / row / tensor and the field, and never a
 * partial report that looks complete: broken JSON lines, truncated files, missing fields, mismatched lengths,
 * mixed records; `analyze` writes nothing on an error or a critical doctor failure unless forced.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDump } from '../../lib/io/reader';
import { encodeSafetensors } from '../../lib/io/safetensors';
import { analyzeDumpToDir, DoctorFailure } from '../../lib/report/analyze';

const DUMPS = join(__dirname, '..', '..', 'data', 'dumps');
const tmp = () => mkdtempSync(join(tmpdir(), 'opdlab-bad-'));
const good = (id: number, T = 3) => JSON.stringify({ sample_id: id, response_ids: Array(T).fill(5), mask: Array(T).fill(1), student_lp: Array(T).fill(-0.5), teacher_lp: Array(T).fill(-0.4) });

function jsonl(lines: string[], end = '\n'): string {
  const dir = tmp();
  const p = join(dir, 'd.jsonl');
  writeFileSync(p, lines.join('\n') + end);
  return p;
}

describe('JSONL errors name the line and the field', () => {
  it('a broken JSON line reports its line number', async () => {
    const p = jsonl([good(0), good(1), '{"sample_id": 2, "response_ids": [1, 2', good(3)]);
    await expect(loadDump(p)).rejects.toThrow(/d\.jsonl line 3: invalid JSON/);
  });

  it('a truncated last line (no newline) is called out as a likely truncated file', async () => {
    const p = jsonl([good(0), good(1), '{"sample_id": 2, "response_ids": [5, 5, 5], "mask": [1, 1'], '');
    await expect(loadDump(p)).rejects.toThrow(/line 3: invalid JSON.*no newline: the file looks truncated/);
  });

  it('missing fields, including the mask (never inferred)', async () => {
    await expect(loadDump(jsonl([good(0), '{"response_ids": [1], "mask": [1], "student_lp": [-1]}']))).rejects.toThrow(/line 2 \(sample_id "#1"\): missing required field 'teacher_lp'/);
    await expect(loadDump(jsonl(['{"response_ids": [1], "student_lp": [-1], "teacher_lp": [-1]}']))).rejects.toThrow(/missing required field 'mask' \(masks are explicit/);
  });

  it('mismatched lengths name both fields, with the off-by-one hint', async () => {
    const p = jsonl([good(0), '{"sample_id": "x", "response_ids": [1, 2, 3], "mask": [1, 1, 1], "student_lp": [-1, -1, -1], "teacher_lp": [null, -1, -1, -1]}']);
    await expect(loadDump(p)).rejects.toThrow(/line 2 \(sample_id "x"\): teacher_lp has 4 entries but response_ids has 3 \(one more than response_ids: .*teacher_lp\[1:\]/);
    const q = jsonl(['{"response_ids": [1, 2], "mask": [1, 1], "student_lp": [-1, -1], "teacher_lp": [-1, -1], "teacher_topk_ids": [[1, 2], [3]], "teacher_topk_lp": [[-1, -2], [-1, -2]]}']);
    await expect(loadDump(q)).rejects.toThrow(/teacher_topk_ids\[1\] has 1 entries but teacher_topk_lp\[1\] has 2/);
  });

  it('wrong types, non-0/1 masks, unknown fields (a typo) and records with different fields', async () => {
    await expect(loadDump(jsonl(['{"response_ids": [1.5], "mask": [1], "student_lp": [-1], "teacher_lp": [-1]}']))).rejects.toThrow(/response_ids\[0\] must be an integer token id, got 1.5/);
    await expect(loadDump(jsonl(['{"response_ids": [1], "mask": [2], "student_lp": [-1], "teacher_lp": [-1]}']))).rejects.toThrow(/mask\[0\] must be 0 or 1, got 2/);
    await expect(loadDump(jsonl(['{"response_ids": [1], "mask": [1], "student_lp": [-1], "teacher_lp": [-1], "teacher_lps": [-1]}']))).rejects.toThrow(/unknown field 'teacher_lps'/);
    const mixed = jsonl([good(0), '{"response_ids": [1], "mask": [1], "student_lp": [-1], "teacher_lp": [-1], "student_lp_train": [-1]}']);
    await expect(loadDump(mixed)).rejects.toThrow(/line 2 .*has student_lp_train, which the first record \(.*line 1\) lacks/);
    await expect(loadDump(jsonl(['{"__meta__": {"vocab_size_s": "big"}}', good(0)]))).rejects.toThrow(/meta.vocab_size_s must be an integer, got "big"/);
    await expect(loadDump(jsonl(['{"__meta__": {}}']))).rejects.toThrow(/holds no records \(only the __meta__ line\)/);
  });

  it('engine-style records: wrong span lengths are explained', async () => {
    const rec = JSON.parse(readFileSync(join(DUMPS, 'vllm.jsonl'), 'utf8').split('\n')[1]);
    rec.teacher_prompt_logprobs = rec.teacher_prompt_logprobs.slice(1); // someone dropped the None already
    const p = jsonl([JSON.stringify(rec)]);
    await expect(loadDump(p, { format: 'vllm' })).rejects.toThrow(/teacher_prompt_logprobs has \d+ entries; expected prompt \(\d+\) \+ response \(\d+\) = \d+ \(one fewer: was the first None already dropped/);
    const t = JSON.parse(readFileSync(join(DUMPS, 'tinker.jsonl'), 'utf8').split('\n')[1].replace(/\bNaN\b/g, 'null'));
    delete t.prompt_tokens;
    await expect(loadDump(jsonl([JSON.stringify(t)]), { format: 'tinker' })).rejects.toThrow(/missing 'prompt_tokens'/);
  });
});

describe('binary and Parquet dumps: truncated or inconsistent files', () => {
  it('a truncated Parquet file (footer lost) is an error, not an empty dump', async () => {
    const bytes = readFileSync(join(DUMPS, 'sample.parquet'));
    const dir = tmp();
    writeFileSync(join(dir, 'cut.parquet'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(loadDump(join(dir, 'cut.parquet'))).rejects.toThrow(/cut\.parquet: not a readable Parquet file .*truncated/);
  });

  it('a truncated safetensors dump is an error naming the tensor', async () => {
    const bytes = readFileSync(join(DUMPS, 'sample.safetensors'));
    const dir = tmp();
    writeFileSync(join(dir, 'cut.safetensors'), bytes.subarray(0, bytes.length - 100));
    await expect(loadDump(join(dir, 'cut.safetensors'))).rejects.toThrow(/tensor '\w+' ends at byte \d+ but the file has \d+: truncated/);
  });

  it('packed layout: missing arrays, wrong shapes, bad offsets, non-0/1 masks', async () => {
    const dir = tmp();
    const base = [
      { name: 'offsets', dtype: 'i64' as const, shape: [3], values: [0, 2, 3] },
      { name: 'response_ids', dtype: 'i32' as const, shape: [3], values: [1, 2, 3] },
      { name: 'mask', dtype: 'u8' as const, shape: [3], values: [1, 1, 1] },
      { name: 'student_lp', dtype: 'f32' as const, shape: [3], values: [-1, -1, -1] },
      { name: 'teacher_lp', dtype: 'f32' as const, shape: [3], values: [-1, -1, -1] },
    ];
    const write = (name: string, tensors: typeof base) => {
      writeFileSync(join(dir, name), encodeSafetensors(tensors));
      return join(dir, name);
    };
    expect((await loadDump(write('ok.safetensors', base))).chunk.N).toBe(3);
    await expect(loadDump(write('nomask.safetensors', base.filter((t) => t.name !== 'mask')))).rejects.toThrow(/missing required array 'mask'/);
    await expect(loadDump(write('shape.safetensors', base.map((t) => (t.name === 'teacher_lp' ? { ...t, shape: [5], values: [0, -1, -1, 0, -1] } : t))))).rejects.toThrow(/teacher_lp must have shape \[3\] .* got \[5\] \(N \+ S: one extra entry per sequence/);
    await expect(loadDump(write('off.safetensors', base.map((t) => (t.name === 'offsets' ? { ...t, values: [0, 3, 2] } : t))))).rejects.toThrow(/offsets must be non-decreasing/);
    await expect(loadDump(write('m.safetensors', base.map((t) => (t.name === 'mask' ? { ...t, values: [1, 3, 1] } : t))))).rejects.toThrow(/mask\[1\] must be 0 or 1, got 3/);
    await expect(loadDump(write('x.safetensors', [...base, { name: 'logits', dtype: 'f32' as const, shape: [1], values: [0] }]))).rejects.toThrow(/unknown array 'logits'/);
  });

  it('a single .npy is not a dump; a missing path is named', async () => {
    await expect(loadDump(join(__dirname, 'fixtures', 'f4.npy'))).rejects.toThrow(/a single \.npy holds one array/);
    await expect(loadDump(join(tmp(), 'nope.jsonl'))).rejects.toThrow(/nope\.jsonl: no such file/);
  });
});

describe('analyze never leaves a partial report', () => {
  it('an error on the last line: nothing written', async () => {
    const lines = readFileSync(join(DUMPS, 'sample.jsonl'), 'utf8').trim().split('\n');
    const p = jsonl([...lines, lines[5].slice(0, 40)]);
    const out = join(tmp(), 'report');
    await expect(analyzeDumpToDir(p, out)).rejects.toThrow(/line 50: invalid JSON/);
    expect(existsSync(out)).toBe(false);
    await expect(analyzeDumpToDir(p, join(tmp(), 'r2'), { streaming: 'on' })).rejects.toThrow(/line 50: invalid JSON/);
  });

  it('a critical doctor failure: DoctorFailure, nothing written; --force writes a report that says so', async () => {
    const lines = readFileSync(join(DUMPS, 'sample.jsonl'), 'utf8').trim().split('\n');
    const meta = JSON.parse(lines[0]);
    meta.__meta__.vocab_size_t = 151936;
    const p = jsonl([JSON.stringify(meta), ...lines.slice(1)]);
    const parent = tmp();
    const out = join(parent, 'report');
    const err = await analyzeDumpToDir(p, out).catch((e) => e);
    expect(err).toBeInstanceOf(DoctorFailure);
    expect((err as DoctorFailure).report.criticalFailures).toEqual(['vocab']);
    expect(readdirSync(parent)).toEqual([]);
    const r = await analyzeDumpToDir(p, out, { force: true });
    expect(r.summary.forced).toBe(true);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.includes('FORCED REPORT')).toBe(true);
    expect(readdirSync(parent)).toEqual(['report']); // no temporary folder left behind
  });

  it('an existing output folder is not overwritten without overwrite', async () => {
    const out = tmp();
    writeFileSync(join(out, 'keep.txt'), 'mine');
    await expect(analyzeDumpToDir(join(DUMPS, 'sample.jsonl'), out)).rejects.toThrow(/already exists; pass --overwrite/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
  });
});
