/**
 * Parquet dumps, read with hyparquet (pure JS) one row group at a time, so memory holds one row group.
 *
 * One row per sequence, columns named as the canonical record fields (schema.ts): list<...> columns for the
 * per-token arrays (response_ids, mask, student_lp, ...), list<list<...>> for the top-K arrays
 * ([T][K], as pandas/pyarrow write nested lists); a flat list of T * K values is accepted too (K = its length / T).
 * Scalars: sample_id, step, prompt_len, reward, teacher_id. INT64 values (BigInt in hyparquet) are converted to
 * numbers, exact up to 2^53. Run metadata: the file's key-value metadata "opdlab_meta" (a JSON string).
 *
 * hyparquet and hyparquet-writer are ES modules; they are loaded on first use (Node >= 20.19 requires ES modules
 * from CommonJS), so the rest of lib/io loads even where they cannot.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { sequenceFromRecord } from './json';
import { checkSameFields, fieldSetOf, metaToJson, parseMeta, type DumpMeta, type DumpSequence, type FieldSet } from './schema';
import { ConversionLog, type DumpSource } from './source';

/** An AsyncBuffer over a file with positioned reads (hyparquet reads the footer, then column chunks). */
function fileBuffer(path: string): { buffer: AsyncBuffer; close: () => void; bytes: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new Error(`${path}: no such file`);
  }
  const bytes = fstatSync(fd).size;
  return {
    bytes,
    close: () => closeSync(fd),
    buffer: {
      byteLength: bytes,
      slice(start: number, end?: number): ArrayBuffer {
        const e = end ?? bytes;
        const buf = Buffer.alloc(Math.max(0, e - start));
        readSync(fd, buf, 0, buf.length, start);
        return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
      },
    },
  };
}

/** BigInt -> number (exact to 2^53), typed arrays -> plain arrays, recursively. */
function plain(v: unknown, where: string): unknown {
  if (typeof v === 'bigint') {
    if (v > 9007199254740991n || v < -9007199254740991n) throw new Error(`${where}: integer ${v} exceeds 2^53`);
    return Number(v);
  }
  if (Array.isArray(v)) {
    let hasBig = false;
    let nested = false;
    for (const x of v) {
      if (typeof x === 'bigint') hasBig = true;
      else if (x !== null && typeof x === 'object') nested = true;
    }
    return hasBig || nested ? v.map((x) => plain(x, where)) : v;
  }
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => plain(x, where));
  return v;
}

/** A flat top-K column of T * K values -> rows, given T. */
function unflatten(v: unknown, T: number, name: string, where: string): unknown {
  if (!Array.isArray(v) || v.length === 0 || Array.isArray(v[0])) return v;
  if (T === 0 || v.length % T !== 0) throw new Error(`${where}: ${name} is a flat list of ${v.length} values, not a multiple of T = ${T} response tokens`);
  const k = v.length / T;
  return Array.from({ length: T }, (_, t) => v.slice(t * k, (t + 1) * k));
}

export async function openParquet(path: string, metaOverride: Partial<DumpMeta> = {}): Promise<DumpSource> {
  const { parquetMetadataAsync, parquetReadObjects } = await import('hyparquet');
  const probe = fileBuffer(path);
  let md: FileMetaData;
  try {
    md = await parquetMetadataAsync(probe.buffer);
  } catch (e) {
    probe.close();
    throw new Error(`${path}: not a readable Parquet file (${(e as Error).message}); a truncated file loses its footer`);
  }
  probe.close();
  let metaRaw: unknown = undefined;
  const kv = md.key_value_metadata?.find((x) => x.key === 'opdlab_meta');
  if (kv?.value) {
    try {
      metaRaw = JSON.parse(kv.value);
    } catch (e) {
      throw new Error(`${path}: key-value metadata opdlab_meta is not valid JSON (${(e as Error).message})`);
    }
  }
  const fileMeta = parseMeta(metaRaw, `${path} opdlab_meta`);
  const meta: DumpMeta = { ...fileMeta, ...metaOverride, extra: { ...fileMeta.extra, ...(metaOverride.extra ?? {}) } };
  const rowGroups = md.row_groups.map((g) => Number(g.num_rows));
  return {
    path,
    format: 'parquet',
    meta,
    conversions: new ConversionLog(),
    bytes: probe.bytes,
    async *sequences(): AsyncGenerator<DumpSequence> {
      const f = fileBuffer(path);
      let fields: FieldSet | null = null;
      let firstOrigin = '';
      try {
        let row = 0;
        for (const n of rowGroups) {
          let rows: Record<string, unknown>[];
          try {
            rows = (await parquetReadObjects({ file: f.buffer, metadata: md, rowStart: row, rowEnd: row + n })) as Record<string, unknown>[];
          } catch (e) {
            throw new Error(`${path}: failed to read rows ${row}..${row + n} (${(e as Error).message}); the file may be truncated or corrupt`);
          }
          for (let i = 0; i < rows.length; i++) {
            const origin = `${path} row ${row + i}`;
            const rec: Record<string, unknown> = {};
            for (const [k, v] of Object.entries(rows[i])) rec[k] = plain(v, `${origin} ${k}`);
            const T = Array.isArray(rec.response_ids) ? rec.response_ids.length : 0;
            for (const k of ['student_topk_ids', 'student_topk_lp', 'teacher_topk_ids', 'teacher_topk_lp']) if (k in rec) rec[k] = unflatten(rec[k], T, k, origin);
            for (const k of Object.keys(rec)) if (rec[k] === null || rec[k] === undefined) delete rec[k];
            const seq = sequenceFromRecord(rec, origin, `#${row + i}`);
            if (fields === null) {
              fields = fieldSetOf(seq);
              firstOrigin = origin;
            } else checkSameFields(fields, firstOrigin, seq);
            yield seq;
          }
          row += n;
        }
      } finally {
        f.close();
      }
    },
  };
}

type Schema = Record<string, unknown>[];

const listOf = (name: string, type: string): Schema => [
  { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type, repetition_type: 'OPTIONAL' },
];
const listOfLists = (name: string, type: string): Schema => [
  { name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', type, repetition_type: 'OPTIONAL' },
];

/**
 * Writes sequences as a canonical Parquet dump (list<float> per-token columns, FLOAT by default, DOUBLE with
 * `double`; top-K as list<list<>>; empty top-K slots dropped so rows are ragged like the JSONL form).
 */
export async function writeParquetDump(path: string, meta: DumpMeta, sequences: DumpSequence[], options: { double?: boolean; rowGroupSize?: number } = {}): Promise<void> {
  const { parquetWriteBuffer } = await import('hyparquet-writer');
  if (sequences.length === 0) throw new Error('writeParquetDump: no sequences');
  const ft = options.double ? 'DOUBLE' : 'FLOAT';
  const first = sequences[0];
  const schema: Schema = [];
  const columnData: { name: string; data: unknown[] }[] = [];
  const col = (name: string, s: Schema, data: unknown[]) => {
    schema.push(...s);
    columnData.push({ name, data });
  };
  const floats = (a: Float64Array) => Array.from(a);
  col('sample_id', [{ name: 'sample_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' }], sequences.map((s) => s.sampleId));
  if (sequences.some((s) => s.step !== null)) col('step', [{ name: 'step', type: 'INT64', repetition_type: 'OPTIONAL' }], sequences.map((s) => (s.step === null ? null : BigInt(s.step))));
  if (sequences.some((s) => s.promptLen !== null)) col('prompt_len', [{ name: 'prompt_len', type: 'INT32', repetition_type: 'OPTIONAL' }], sequences.map((s) => s.promptLen));
  col('response_ids', listOf('response_ids', 'INT32'), sequences.map((s) => Array.from(s.responseIds)));
  col('mask', listOf('mask', 'INT32'), sequences.map((s) => Array.from(s.mask)));
  col('student_lp', listOf('student_lp', ft), sequences.map((s) => floats(s.studentLp)));
  if (first.studentLpTrain) col('student_lp_train', listOf('student_lp_train', ft), sequences.map((s) => floats(s.studentLpTrain!)));
  col('teacher_lp', listOf('teacher_lp', ft), sequences.map((s) => floats(s.teacherLp)));
  for (const side of ['student', 'teacher'] as const) {
    const get = (s: DumpSequence) => (side === 'student' ? s.studentTopk : s.teacherTopk);
    if (!get(first)) continue;
    const rows = (s: DumpSequence, which: 'ids' | 'lp') => {
      const t = get(s)!;
      const T = s.responseIds.length;
      return Array.from({ length: T }, (_, r) => {
        const out: number[] = [];
        for (let j = 0; j < t.k; j++) {
          if (t.ids[r * t.k + j] === -1 && t.lp[r * t.k + j] === -Infinity) continue;
          out.push(which === 'ids' ? t.ids[r * t.k + j] : t.lp[r * t.k + j]);
        }
        return out;
      });
    };
    col(`${side}_topk_ids`, listOfLists(`${side}_topk_ids`, 'INT32'), sequences.map((s) => rows(s, 'ids')));
    col(`${side}_topk_lp`, listOfLists(`${side}_topk_lp`, ft), sequences.map((s) => rows(s, 'lp')));
  }
  if (first.studentEntropy) col('student_entropy', listOf('student_entropy', ft), sequences.map((s) => floats(s.studentEntropy!)));
  if (first.teacherEntropy) col('teacher_entropy', listOf('teacher_entropy', ft), sequences.map((s) => floats(s.teacherEntropy!)));
  if (first.tokenKl) col('token_kl', listOf('token_kl', ft), sequences.map((s) => floats(s.tokenKl!)));
  if (first.teacherResponseIds) col('teacher_response_ids', listOf('teacher_response_ids', 'INT32'), sequences.map((s) => Array.from(s.teacherResponseIds!)));
  if (sequences.some((s) => s.reward !== null)) col('reward', [{ name: 'reward', type: 'DOUBLE', repetition_type: 'OPTIONAL' }], sequences.map((s) => s.reward));
  if (sequences.some((s) => s.teacherId !== null)) col('teacher_id', [{ name: 'teacher_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }], sequences.map((s) => s.teacherId));
  const buf = parquetWriteBuffer({
    columnData: columnData as never,
    schema: [{ name: 'root', num_children: columnData.length }, ...schema] as never,
    kvMetadata: [{ key: 'opdlab_meta', value: JSON.stringify(metaToJson(meta)) }],
    rowGroupSize: options.rowGroupSize ?? 1_000_000,
  });
  writeFileSync(path, new Uint8Array(buf));
}
