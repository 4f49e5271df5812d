/**
 * Round trips: the committed sample dumps (data/dumps, written by `opdlab sample-dumps`) read back to the same
 * sequences in every format; engine-style dumps (vLLM, SGLang, tinker quirks) convert to the canonical data;
 * our writers round-trip through our readers; JSON quirks (bare NaN, null, ragged top-K, gzip) read as documented.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TokenChunk } from '../../lib/io/chunk';
import { writeJsonl } from '../../lib/io/jsonl';
import { writeNpyDump, writeSafetensorsDump } from '../../lib/io/packed';
import { writeParquetDump } from '../../lib/io/parquet';
import { loadDump, openDump, type Dump } from '../../lib/io/reader';
import { sequenceOfChunk } from '../../lib/io/chunk';
import { doctorDump } from '../../lib/io/analyse';
import { writeSampleDumps } from '../../lib/io/sampleDumps';
import { expectAllclose } from '../helpers';

const DUMPS = join(__dirname, '..', '..', 'data', 'dumps');
const tmp = () => mkdtempSync(join(tmpdir(), 'opdlab-rt-'));

function expectSameChunk(a: TokenChunk, b: TokenChunk, rtol: number, label: string, S = a.S): void {
  const N = a.offsets[S];
  expect(Array.from(b.offsets.subarray(0, S + 1)), `${label}: offsets`).toEqual(Array.from(a.offsets.subarray(0, S + 1)));
  expect(b.sampleIds.slice(0, S), `${label}: sample ids`).toEqual(a.sampleIds.slice(0, S));
  expect(Array.from(b.responseIds.subarray(0, N)), `${label}: ids`).toEqual(Array.from(a.responseIds.subarray(0, N)));
  expect(Array.from(b.mask.subarray(0, N)), `${label}: mask`).toEqual(Array.from(a.mask.subarray(0, N)));
  const f = (x: Float64Array | null, y: Float64Array | null, name: string) => {
    expect(y === null, `${label}: ${name} presence`).toBe(x === null);
    if (x && y) expectAllclose(y.subarray(0, N), x.subarray(0, N), { rtol, atol: 1e-12, label: `${label}: ${name}` });
  };
  f(a.studentLp, b.studentLp, 'student_lp');
  f(a.teacherLp, b.teacherLp, 'teacher_lp');
  f(a.studentLpTrain, b.studentLpTrain, 'student_lp_train');
  f(a.studentEntropy, b.studentEntropy, 'student_entropy');
  f(a.teacherEntropy, b.teacherEntropy, 'teacher_entropy');
  for (const side of ['studentTopk', 'teacherTopk'] as const) {
    const x = a[side];
    const y = b[side];
    expect(y === null, `${label}: ${side} presence`).toBe(x === null);
    if (!x || !y) continue;
    expect(y.k, `${label}: ${side}.k`).toBe(x.k);
    expect(Array.from(y.ids.subarray(0, N * x.k)), `${label}: ${side} ids`).toEqual(Array.from(x.ids.subarray(0, N * x.k)));
    expectAllclose(y.lp.subarray(0, N * x.k), x.lp.subarray(0, N * x.k), { rtol, atol: 1e-12, label: `${label}: ${side} lp` });
  }
  expect(Array.from(b.rewards.subarray(0, S)), `${label}: rewards`).toEqual(Array.from(a.rewards.subarray(0, S)));
  expect(Array.from(b.promptLens.subarray(0, S)), `${label}: prompt_len`).toEqual(Array.from(a.promptLens.subarray(0, S)));
}

let ref: Dump;
beforeAll(async () => {
  ref = await loadDump(join(DUMPS, 'sample.safetensors'));
});

describe('committed sample dumps agree across formats', () => {
  it('the reference holds what the generator promises (48 sequences, K = 8, every optional field)', () => {
    const c = ref.chunk;
    expect(c.S).toBe(48);
    expect(c.teacherTopk?.k).toBe(8);
    expect(c.studentTopk?.k).toBe(8);
    expect(c.studentLpTrain && c.studentEntropy && c.teacherEntropy && c.teacherResponseIds).toBeTruthy();
    expect(ref.meta.vocabSizeStudent).toBe(256);
    expect(ref.meta.sampler).toEqual({ temperature: 1, topP: 1, topK: 0, logprobsMode: 'raw' });
    // float32 data: every value is a float32
    for (const v of c.teacherLp) expect(Math.fround(v)).toBe(v);
  });

  for (const [file, rtol] of [['sample.jsonl', 1e-8], ['sample.parquet', 0], ['sample_npy', 0], ['sample_bf16.safetensors', 2 ** -8]] as const) {
    it(`${file} reads to the same sequences (rtol ${rtol})`, async () => {
      const d = await loadDump(join(DUMPS, file));
      expect(d.meta.eosId).toBe(2);
      if (file === 'sample_bf16.safetensors') {
        expect(d.meta.dtype).toBe('bfloat16');
        // bf16 log-probs: the nearest bfloat16 of each float32 value, exactly
        for (let i = 0; i < d.chunk.N; i++) expect(d.chunk.teacherLp[i]).toBe(Math.fround(d.chunk.teacherLp[i]));
      }
      expectSameChunk(ref.chunk, d.chunk, rtol, file);
    });
  }

  for (const [file, format] of [['vllm.jsonl', 'vllm'], ['sglang.jsonl', 'sglang'], ['tinker.jsonl', 'tinker']] as const) {
    it(`${file}: the ${format} adapter recovers the canonical sequences`, async () => {
      const d = await loadDump(join(DUMPS, file));
      expect(d.format).toBe(format);
      const c = d.chunk;
      expect(c.S).toBe(12);
      const N = c.N;
      expect(Array.from(c.responseIds)).toEqual(Array.from(ref.chunk.responseIds.subarray(0, N)));
      expect(Array.from(c.teacherResponseIds!)).toEqual(Array.from(ref.chunk.responseIds.subarray(0, N)));
      expectAllclose(c.studentLp, ref.chunk.studentLp.subarray(0, N), { rtol: 1e-8, atol: 0, label: 'student_lp' });
      expectAllclose(c.teacherLp, ref.chunk.teacherLp.subarray(0, N), { rtol: 1e-8, atol: 0, label: 'teacher_lp' });
      const K = 8;
      const t = c.teacherTopk!;
      // tinker asked for K + 2: its two sentinel slots per row became empty slots
      expect(t.k).toBe(format === 'tinker' ? K + 2 : K);
      for (let i = 0; i < N; i++) {
        for (let j = 0; j < K; j++) {
          expect(t.ids[i * t.k + j]).toBe(ref.chunk.teacherTopk!.ids[i * K + j]);
          expect(t.lp[i * t.k + j]).toBeCloseTo(ref.chunk.teacherTopk!.lp[i * K + j], 7);
        }
        for (let j = K; j < t.k; j++) expect([t.ids[i * t.k + j], t.lp[i * t.k + j]]).toEqual([-1, -Infinity]);
      }
      if (format !== 'tinker') {
        expect(Array.from(c.studentTopk!.ids)).toEqual(Array.from(ref.chunk.studentTopk!.ids.subarray(0, N * K)));
        expectAllclose(c.studentLpTrain!, ref.chunk.studentLpTrain!.subarray(0, N), { rtol: 1e-8, atol: 0 });
      }
      // what each adapter converted, counted
      const conv = d.conversions;
      if (format === 'vllm') {
        expect(conv.first_position_none.count).toBe(12);
        // the chosen token outside the top-K comes as a (K+1)-th entry exactly where the sampled id is not in the ref top-K
        let outside = 0;
        for (let i = 0; i < N; i++) if (!Array.from(ref.chunk.studentTopk!.ids.subarray(i * K, (i + 1) * K)).includes(c.responseIds[i])) outside++;
        expect(conv.student_extra_chosen_entry?.count ?? 0).toBe(outside);
      }
      if (format === 'sglang') expect(conv.first_position_null.count).toBe(12);
      if (format === 'tinker') {
        expect(conv.first_position_nan.count).toBe(12);
        expect(conv.topk_sentinel.count).toBe(2 * N);
      }
    });
  }
});

describe('writers round-trip through the readers', () => {
  it('JSONL (plain and .gz), Parquet (double), safetensors (f64), .npy directory', async () => {
    const dir = tmp();
    const seqs = Array.from({ length: ref.chunk.S }, (_, s) => sequenceOfChunk(ref.chunk, s));
    await writeJsonl(join(dir, 'a.jsonl'), ref.meta, seqs, 0);
    await writeJsonl(join(dir, 'a.jsonl.gz'), ref.meta, seqs, 0);
    await writeParquetDump(join(dir, 'a.parquet'), ref.meta, seqs, { double: true, rowGroupSize: 10 });
    writeSafetensorsDump(join(dir, 'a.safetensors'), ref.meta, seqs, { floatDType: 'f64' });
    writeNpyDump(join(dir, 'a_npy'), ref.meta, seqs, { floatDType: 'f64', idDType: 'i64' });
    for (const f of ['a.jsonl', 'a.jsonl.gz', 'a.parquet', 'a.safetensors', 'a_npy']) {
      const d = await loadDump(join(dir, f));
      expectSameChunk(ref.chunk, d.chunk, 0, f);
      expect(d.meta).toEqual(ref.meta);
    }
  });

  it('streams in several chunks / row groups / batches the same sequences as a whole load', async () => {
    const dir = tmp();
    const seqs = Array.from({ length: ref.chunk.S }, (_, s) => sequenceOfChunk(ref.chunk, s));
    await writeParquetDump(join(dir, 'g.parquet'), ref.meta, seqs, { rowGroupSize: 7 });
    const src = await openDump(join(dir, 'g.parquet'));
    const ids: string[] = [];
    for await (const s of src.sequences()) ids.push(s.sampleId);
    expect(ids).toEqual(ref.chunk.sampleIds);
  });
});

describe('the sample-dump generator (opdlab sample-dumps)', () => {
  it('writes every format; each reads back to the same rollouts and passes the doctor', async () => {
    const dir = tmp();
    const r = await writeSampleDumps(dir, { sequences: 3, warmupSteps: 1, batchSize: 4, k: 3 }, 2);
    expect(r.files).toEqual(['sample.jsonl', 'sample.parquet', 'sample.safetensors', 'sample_bf16.safetensors', 'sample_npy', 'vllm.jsonl', 'sglang.jsonl', 'tinker.jsonl']);
    const base = await loadDump(join(dir, 'sample.safetensors'));
    expect(base.chunk.S).toBe(3);
    for (const f of r.files) {
      const d = await loadDump(join(dir, f));
      const bad = doctorDump(d).checks.filter((c) => c.status === 'fail' || (c.status === 'warn' && !(f === 'sample_bf16.safetensors' && c.id === 'value_ranges')));
      expect(bad.map((c) => `${c.id}: ${c.summary}`), f).toEqual([]);
      const n = d.chunk.N;
      expect(Array.from(d.chunk.responseIds), f).toEqual(Array.from(base.chunk.responseIds.subarray(0, n)));
    }
  });
});

describe('JSON quirks', () => {
  it("Python's bare NaN / -Infinity, nulls, ragged top-K rows and booleans in the mask", async () => {
    const dir = tmp();
    const lines = [
      '{"__meta__": {"vocab_size_s": 10, "vocab_size_t": 10, "sampler": {"temperature": 0.7, "logprobs_mode": "processed_logprobs"}, "custom_key": [1, 2]}}',
      '{"sample_id": 5, "response_ids": [1, 2, 3], "mask": [true, 1, false], "student_lp": [-0.5, null, -1], "teacher_lp": [NaN, -0.25, -Infinity],' +
        ' "teacher_topk_ids": [[1, 4], [2], []], "teacher_topk_lp": [[-0.1, -2.5], [-0.25], []], "reward": true}',
    ];
    writeFileSync(join(dir, 'q.jsonl'), lines.join('\n')); // no final newline on a complete line is fine
    const d = await loadDump(join(dir, 'q.jsonl'));
    const c = d.chunk;
    expect(d.meta.sampler).toEqual({ temperature: 0.7, logprobsMode: 'processed' });
    expect(d.meta.extra).toEqual({ custom_key: [1, 2] });
    expect(c.sampleIds).toEqual(['5']);
    expect(Array.from(c.mask)).toEqual([1, 1, 0]);
    expect(Number.isNaN(c.studentLp[1])).toBe(true);
    expect(Number.isNaN(c.teacherLp[0])).toBe(true);
    expect(c.teacherLp[2]).toBe(-Infinity);
    expect(c.teacherTopk!.k).toBe(2);
    expect(Array.from(c.teacherTopk!.ids)).toEqual([1, 4, 2, -1, -1, -1]);
    expect(Array.from(c.teacherTopk!.lp)).toEqual([-0.1, -2.5, -0.25, -Infinity, -Infinity, -Infinity]);
    expect(c.rewards[0]).toBe(1);
  });

  it('gzip JSONL written by another tool reads the same', async () => {
    const dir = tmp();
    const text = '{"response_ids": [3], "mask": [1], "student_lp": [-0.5], "teacher_lp": [-0.4]}\n';
    writeFileSync(join(dir, 'z.jsonl.gz'), gzipSync(text));
    const d = await loadDump(join(dir, 'z.jsonl.gz'));
    expect(d.chunk.sampleIds).toEqual(['#0']);
    expect(d.chunk.teacherLp[0]).toBe(-0.4);
  });
});
