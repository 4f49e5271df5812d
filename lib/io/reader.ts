/**
 * Opening a dump whatever its format, and loading a small one whole.
 *
 *   openDump(path)   a DumpSource: the format from `format` or guessed (a directory -> .npy directory;
 *                    .safetensors; .parquet / .pq; .jsonl / .ndjson / .json (.gz) -> canonical JSONL, or an
 *                    engine style (vllm, sglang, tinker) recognised from the first record's keys; otherwise the
 *                    first bytes: PAR1, '{')
 *   loadDump(path)   openDump, then every sequence packed into one TokenChunk (for dumps that fit in memory;
 *                    analyse larger ones in streaming mode, stats.ts)
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { packChunk, type TokenChunk } from './chunk';
import { openJsonl, type JsonlFormat } from './jsonl';
import { npyDirStore, packedSource, safetensorsStore } from './packed';
import { openParquet } from './parquet';
import type { DumpMeta, DumpSequence } from './schema';
import { DUMP_FORMATS, type Conversion, type DumpFormat, type DumpSource } from './source';

export interface OpenOptions {
  /** The format; default: guessed (file header). */
  format?: DumpFormat;
  /** Run metadata merged over the file's own (e.g. from a --meta file). */
  meta?: Partial<DumpMeta>;
}

function sniff(path: string): string {
  const fd = openSync(path, 'r');
  const b = Buffer.alloc(8);
  const n = readSync(fd, b, 0, 8, 0);
  closeSync(fd);
  return b.subarray(0, n).toString('latin1');
}

/** The format a path is read as when none is given (file header). */
export function guessFormat(path: string): DumpFormat {
  if (!existsSync(path)) throw new Error(`${path}: no such file or directory`);
  if (statSync(path).isDirectory()) return 'npy';
  const lower = path.toLowerCase();
  if (lower.endsWith('.safetensors')) return 'safetensors';
  if (lower.endsWith('.parquet') || lower.endsWith('.pq')) return 'parquet';
  if (/\.(jsonl|ndjson|json)(\.gz)?$/.test(lower)) return 'jsonl';
  if (lower.endsWith('.npy')) throw new Error(`${path}: a single .npy holds one array; a dump is a directory of .npy files in the packed layout (packed.ts), or use parseNpy / NpyFile for one array`);
  const head = sniff(path);
  if (head.startsWith('PAR1')) return 'parquet';
  if (head.startsWith('\x93NUMPY')) throw new Error(`${path}: a single .npy file is one array, not a dump`);
  if (/^\s*[{[]/.test(head) || head.startsWith('\x1f\x8b')) return 'jsonl';
  return 'safetensors';
}

export async function openDump(path: string, options: OpenOptions = {}): Promise<DumpSource> {
  if (options.format !== undefined && !DUMP_FORMATS.includes(options.format)) throw new Error(`openDump: format must be one of ${DUMP_FORMATS.join(', ')}, got '${options.format}'`);
  const guessed = guessFormat(path);
  const format = options.format ?? guessed;
  switch (format) {
    case 'safetensors': {
      const { store, metaRaw } = safetensorsStore(path);
      return packedSource(store, metaRaw, 'safetensors', options.meta);
    }
    case 'npy': {
      const { store, metaRaw } = npyDirStore(path);
      return packedSource(store, metaRaw, 'npy', options.meta);
    }
    case 'parquet':
      return openParquet(path, options.meta);
    default:
      return openJsonl(path, { format: options.format as JsonlFormat | undefined, meta: options.meta });
  }
}

/** A whole dump in memory. */
export interface Dump {
  path: string;
  format: DumpFormat;
  meta: DumpMeta;
  conversions: Record<string, Conversion>;
  bytes: number;
  /** Every sequence, packed. */
  chunk: TokenChunk;
}

/** Reads every sequence of a dump into memory (small dumps; see stats.ts for streaming). */
export async function loadDump(path: string, options: OpenOptions = {}): Promise<Dump> {
  const source = await openDump(path, options);
  const seqs: DumpSequence[] = [];
  for await (const s of source.sequences()) seqs.push(s);
  if (seqs.length === 0) throw new Error(`${path}: the dump holds no sequences`);
  return { path, format: source.format, meta: source.meta, conversions: source.conversions.toJSON(), bytes: source.bytes, chunk: packChunk(seqs) };
}

/** A dump built in memory (tests, notebooks, the sample generator) from sequences. */
export function dumpFromSequences(meta: DumpMeta, seqs: DumpSequence[], path = '(memory)'): Dump {
  if (seqs.length === 0) throw new Error('dumpFromSequences: no sequences');
  return { path, format: 'jsonl', meta, conversions: {}, bytes: 0, chunk: packChunk(seqs) };
}
