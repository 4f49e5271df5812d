/**
 * JSONL dumps, streamed line by line (plain or .gz): canonical records (schema.ts) or engine-style records
 * through an adapter (engines/). An optional first line {"__meta__": {...}} holds the run metadata.
 *
 * Errors name the file and the line: a broken JSON line, a missing field, mismatched lengths, a truncated last
 * line. Nothing is skipped silently.
 */
import { createWriteStream, statSync } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import { sglangAdapter } from './engines/sglang';
import { tinkerAdapter } from './engines/tinker';
import { vllmAdapter } from './engines/vllm';
import type { Adapter, AdapterContext } from './engines/common';
import { parseJsonText, recordFromSequence, sequenceFromRecord, stringifyJson } from './json';
import { isGzip, readLines } from './lines';
import { checkSameFields, fieldSetOf, metaToJson, parseMeta, type DumpMeta, type DumpSequence, type FieldSet } from './schema';
import { ConversionLog, type DumpFormat, type DumpSource } from './source';

export type JsonlFormat = Extract<DumpFormat, 'jsonl' | 'vllm' | 'sglang' | 'tinker'>;

const ADAPTERS: Record<Exclude<JsonlFormat, 'jsonl'>, Adapter> = { vllm: vllmAdapter, sglang: sglangAdapter, tinker: tinkerAdapter };

export const META_KEY = '__meta__';

/** The first record line (after an optional meta line), parsed, for format detection; null for an empty file. */
export async function peekJsonl(path: string): Promise<{ meta: unknown; first: unknown | null }> {
  let meta: unknown = undefined;
  for await (const l of readLines(path)) {
    const v = parseJsonText(l.text, `${path} line ${l.line}`, l.unterminated);
    if (meta === undefined && v && typeof v === 'object' && !Array.isArray(v) && META_KEY in (v as object)) {
      meta = (v as Record<string, unknown>)[META_KEY];
      continue;
    }
    return { meta, first: v };
  }
  return { meta, first: null };
}

/** Guesses the record style from a parsed record's keys. */
export function detectJsonlFormat(first: unknown): JsonlFormat {
  if (!first || typeof first !== 'object' || Array.isArray(first)) return 'jsonl';
  const o = first as Record<string, unknown>;
  if ('outputs' in o && 'prompt_token_ids' in o) return 'vllm';
  if ('meta_info' in o && 'input_ids' in o) return 'sglang';
  if ('sequence' in o && 'prompt_tokens' in o) return 'tinker';
  return 'jsonl';
}

export interface JsonlOpenOptions {
  /** Record style; default: detected from the first record. */
  format?: JsonlFormat;
  /** Metadata to use over (merged on top of) the file's own. */
  meta?: Partial<DumpMeta>;
}

export async function openJsonl(path: string, options: JsonlOpenOptions = {}): Promise<DumpSource> {
  let bytes: number;
  try {
    bytes = statSync(path).size;
  } catch {
    throw new Error(`${path}: no such file`);
  }
  const peek = await peekJsonl(path);
  if (peek.first === null) throw new Error(`${path}: the dump holds no records${peek.meta !== undefined ? ' (only the __meta__ line)' : ''}`);
  const format = options.format ?? detectJsonlFormat(peek.first);
  const fileMeta = parseMeta(peek.meta, `${path} ${META_KEY}`);
  const meta: DumpMeta = { ...fileMeta, ...options.meta, extra: { ...fileMeta.extra, ...(options.meta?.extra ?? {}) } };
  const conversions = new ConversionLog();
  const adapter = format === 'jsonl' ? null : ADAPTERS[format];
  if (format !== 'jsonl' && !adapter) throw new Error(`openJsonl: unknown format '${format}'`);
  return {
    path,
    format,
    meta,
    conversions,
    bytes,
    async *sequences(): AsyncGenerator<DumpSequence> {
      conversions.entries.clear();
      const ctx: AdapterContext = { meta, conversions, state: {} };
      let n = 0;
      let fields: FieldSet | null = null;
      let firstOrigin = '';
      let sawMeta = false;
      for await (const l of readLines(path)) {
        const origin = `${path} line ${l.line}`;
        const v = parseJsonText(l.text, origin, l.unterminated);
        if (!sawMeta && n === 0 && v && typeof v === 'object' && !Array.isArray(v) && META_KEY in (v as object)) {
          sawMeta = true;
          continue;
        }
        const seq = adapter ? adapter(v, origin, `#${n}`, ctx) : sequenceFromRecord(v, origin, `#${n}`);
        if (fields === null) {
          fields = fieldSetOf(seq);
          firstOrigin = origin;
        } else checkSameFields(fields, firstOrigin, seq);
        n++;
        yield seq;
      }
    },
  };
}

/** Writes sequences as canonical JSONL (a __meta__ line first); .gz paths are gzip-compressed. */
export async function writeJsonl(path: string, meta: DumpMeta, sequences: Iterable<DumpSequence> | AsyncIterable<DumpSequence>, digits = 9): Promise<void> {
  const file = createWriteStream(path);
  const gz = isGzip(path) ? createGzip() : null;
  if (gz) gz.pipe(file);
  const out = gz ?? file;
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await write(stringifyJson({ [META_KEY]: metaToJson(meta) }) + '\n');
  for await (const s of sequences as AsyncIterable<DumpSequence>) await write(stringifyJson(recordFromSequence(s, digits)) + '\n');
  out.end();
  await once(file, 'finish');
}

/** Engine-style JSONL (the generator's records are plain objects already in the engine's shape). */
export async function writeJsonRecords(path: string, meta: DumpMeta | null, records: Iterable<unknown>): Promise<void> {
  const file = createWriteStream(path);
  const write = async (text: string) => {
    if (!file.write(text)) await once(file, 'drain');
  };
  if (meta) await write(stringifyJson({ [META_KEY]: metaToJson(meta) }) + '\n');
  for (const r of records) await write(stringifyJson(r) + '\n');
  file.end();
  await once(file, 'finish');
}
