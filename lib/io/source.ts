/**
 * What every reader returns: a dump's run metadata and its sequences as an async stream, read lazily so a dump
 * larger than memory can be processed chunk by chunk (chunk.ts), plus a log of the conversions an engine adapter
 * made (the doctor reports them).
 */
import type { DumpMeta, DumpSequence } from './schema';

export type DumpFormat = 'jsonl' | 'parquet' | 'safetensors' | 'npy' | 'vllm' | 'sglang' | 'tinker';
export const DUMP_FORMATS: readonly DumpFormat[] = ['jsonl', 'parquet', 'safetensors', 'npy', 'vllm', 'sglang', 'tinker'];

/** One kind of conversion an adapter made, with how often and an example. */
export interface Conversion {
  count: number;
  /** What was converted and why (one sentence). */
  note: string;
  examples: string[];
}

/** Conversions by key, e.g. 'first_position_none', 'topk_sentinel', 'extra_chosen_entry', 'zero_based_rank'. */
export class ConversionLog {
  readonly entries = new Map<string, Conversion>();

  add(key: string, note: string, example?: string, count = 1): void {
    let c = this.entries.get(key);
    if (!c) {
      c = { count: 0, note, examples: [] };
      this.entries.set(key, c);
    }
    c.count += count;
    if (example !== undefined && c.examples.length < 3) c.examples.push(example);
  }

  toJSON(): Record<string, Conversion> {
    return Object.fromEntries(this.entries);
  }
}

export interface DumpSource {
  /** The path given. */
  path: string;
  format: DumpFormat;
  meta: DumpMeta;
  /** Filled while `sequences()` runs; complete once it has finished. */
  conversions: ConversionLog;
  /** Bytes on disk (for the streaming decision). */
  bytes: number;
  /** The sequences in file order; each call starts again from the beginning. */
  sequences(): AsyncGenerator<DumpSequence>;
}
