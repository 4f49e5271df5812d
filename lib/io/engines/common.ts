/**
 * Plumbing shared by the engine adapters (vllm.ts, sglang.ts, tinker.ts): typed access to parsed JSON with
 * errors that name the record and the field, and the fields every adapter passes through unchanged.
 */
import { checkSequenceLengths, recordError, type DumpMeta, type DumpSequence, type TopKArrays } from '../schema';
import type { ConversionLog } from '../source';

export type Obj = Record<string, unknown>;

export interface AdapterContext {
  meta: DumpMeta;
  conversions: ConversionLog;
  /** State an adapter keeps across records (e.g. a top-K width inferred from earlier records). */
  state: Record<string, unknown>;
}

export type Adapter = (raw: unknown, origin: string, fallbackId: string, ctx: AdapterContext) => DumpSequence;

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export class Fields {
  readonly id: string;
  constructor(readonly obj: Obj, readonly origin: string, fallbackId: string) {
    const raw = obj.sample_id;
    if (raw !== undefined && typeof raw !== 'string' && typeof raw !== 'number') throw new Error(`${origin}: sample_id must be a string or number, got ${describe(raw)}`);
    this.id = raw === undefined ? fallbackId : String(raw);
  }

  error(message: string): Error {
    return recordError(this.origin, this.id, message);
  }

  object(v: unknown, name: string): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw this.error(`${name} must be an object, got ${describe(v)}`);
    return v as Obj;
  }

  array(v: unknown, name: string): unknown[] {
    if (!Array.isArray(v)) throw this.error(`${name} must be an array, got ${describe(v)}`);
    return v;
  }

  ints(v: unknown, name: string): Int32Array {
    const a = this.array(v, name);
    const out = new Int32Array(a.length);
    a.forEach((x, i) => {
      if (typeof x !== 'number' || !Number.isInteger(x)) throw this.error(`${name}[${i}] must be an integer token id, got ${describe(x)}`);
      out[i] = x;
    });
    return out;
  }

  /** Numbers; null (and a missing value) -> NaN. */
  floats(v: unknown, name: string): Float64Array {
    const a = this.array(v, name);
    const out = new Float64Array(a.length);
    a.forEach((x, i) => {
      if (typeof x === 'number') out[i] = x;
      else if (x === null) out[i] = NaN;
      else throw this.error(`${name}[${i}] must be a number or null, got ${describe(x)}`);
    });
    return out;
  }

  optFloats(name: string): Float64Array | null {
    const v = this.obj[name];
    return v === undefined || v === null ? null : this.floats(v, name);
  }

  /** The explicit mask when the record has one, else all ones over the engine's generated tokens (noted). */
  mask(T: number, conversions: ConversionLog): Uint8Array {
    const v = this.obj.mask;
    if (v === undefined || v === null) {
      conversions.add('mask_from_response_span', 'no mask in the record: every generated token counts (the engine returns only response tokens; add "mask" to exclude any)', this.id);
      return new Uint8Array(T).fill(1);
    }
    const a = this.array(v, 'mask');
    const out = new Uint8Array(a.length);
    a.forEach((x, i) => {
      if (x === 1 || x === true) out[i] = 1;
      else if (x !== 0 && x !== false) throw this.error(`mask[${i}] must be 0 or 1, got ${describe(x)}`);
    });
    return out;
  }

  optInt(name: string): number | null {
    const v = this.obj[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.error(`${name} must be an integer, got ${describe(v)}`);
    return v;
  }

  reward(): number | null {
    const v = this.obj.reward;
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' && typeof v !== 'boolean') throw this.error(`reward must be a number, got ${describe(v)}`);
    return Number(v);
  }

  teacherId(): string | null {
    const v = this.obj.teacher_id;
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw this.error(`teacher_id must be a string, got ${describe(v)}`);
    return v;
  }
}

/** A [T * k] top-K from per-position lists of (id, lp), already in the order to keep; short rows padded. */
export function topkFromLists(rows: { id: number; lp: number }[][], k: number): TopKArrays {
  const T = rows.length;
  const ids = new Int32Array(T * k).fill(-1);
  const lp = new Float64Array(T * k).fill(-Infinity);
  rows.forEach((r, t) => {
    for (let j = 0; j < Math.min(k, r.length); j++) {
      ids[t * k + j] = r[j].id;
      lp[t * k + j] = r[j].lp;
    }
  });
  return { k, ids, lp };
}

/** The widest row. */
export function widest(rows: { id: number; lp: number }[][]): number {
  return rows.reduce((m, r) => Math.max(m, r.length), 0);
}

/** The fields an engine adapter works out itself; the rest of a sequence is read the same way for every engine. */
export type SequenceCore = Pick<
  DumpSequence,
  'promptLen' | 'responseIds' | 'studentLp' | 'teacherLp' | 'studentTopk' | 'teacherTopk' | 'teacherResponseIds'
>;

/**
 * A canonical sequence from an adapter's core plus the optional canonical fields (step, mask, recomputed student
 * log-probs, entropies, token KL, reward, teacher id) read from the record; lengths are checked.
 */
export function assembleSequence(f: Fields, ctx: AdapterContext, origin: string, responseLength: number, core: SequenceCore): DumpSequence {
  const seq: DumpSequence = {
    sampleId: f.id,
    step: f.optInt('step'),
    promptLen: core.promptLen,
    responseIds: core.responseIds,
    mask: f.mask(responseLength, ctx.conversions),
    studentLp: core.studentLp,
    studentLpTrain: f.optFloats('student_lp_train'),
    teacherLp: core.teacherLp,
    studentTopk: core.studentTopk,
    teacherTopk: core.teacherTopk,
    studentEntropy: f.optFloats('student_entropy'),
    teacherEntropy: f.optFloats('teacher_entropy'),
    tokenKl: f.optFloats('token_kl'),
    teacherResponseIds: core.teacherResponseIds,
    reward: f.reward(),
    teacherId: f.teacherId(),
    origin,
  };
  checkSequenceLengths(seq);
  return seq;
}
