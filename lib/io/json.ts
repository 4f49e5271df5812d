/**
 * JSON values of one dump line, and canonical records (schema.ts) from parsed JSON.
 *
 * Python's json module writes NaN, Infinity and -Infinity as bare words (tinker's prompt_logprobs start with a
 * NaN), which JSON.parse rejects. `parseJsonText` first tries JSON.parse; only when that fails and such a word
 * appears outside a string does it parse again with those words read as the numbers they name. Any other
 * syntax error is reported with the line it came from and, for a last line without a newline, a hint that the
 * file may be truncated.
 */
import { checkSequenceLengths, recordError, type DumpSequence, type TopKArrays } from './schema';

// JSON text of marker strings (the escape \u0000 is written out: a raw control character is invalid JSON)
const NAN = '"\\u0000NaN"';
const INF = '"\\u0000Inf"';
const NINF = '"\\u0000-Inf"';

/** Replaces bare NaN / Infinity / -Infinity outside strings by marker strings; null when there are none. */
function markNonFinite(text: string): string | null {
  let out = '';
  let last = 0;
  let inString = false;
  let found = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 34) {
      inString = true;
      continue;
    }
    let word: string | null = null;
    let marker = '';
    if (c === 78 && text.startsWith('NaN', i)) { word = 'NaN'; marker = NAN; }
    else if (c === 73 && text.startsWith('Infinity', i)) { word = 'Infinity'; marker = INF; }
    else if (c === 45 && text.startsWith('-Infinity', i)) { word = '-Infinity'; marker = NINF; }
    if (word) {
      out += text.slice(last, i) + marker;
      i += word.length - 1;
      last = i + 1;
      found = true;
    }
  }
  return found ? out + text.slice(last) : null;
}

function reviveNonFinite(_key: string, v: unknown): unknown {
  if (typeof v === 'string' && v.charCodeAt(0) === 0) {
    if (v === '\u0000NaN') return NaN;
    if (v === '\u0000Inf') return Infinity;
    if (v === '\u0000-Inf') return -Infinity;
  }
  return v;
}

/**
 * Parses one JSON text (a dump line). `where` names it in errors ("dump.jsonl line 12"); `truncated` adds the
 * hint for a final line that did not end with a newline.
 */
export function parseJsonText(text: string, where: string, truncated = false): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const marked = markNonFinite(text);
    if (marked !== null) {
      try {
        return JSON.parse(marked, reviveNonFinite);
      } catch {
        // fall through to the original error
      }
    }
    const hint = truncated ? ' (this last line has no newline: the file looks truncated)' : '';
    throw new Error(`${where}: invalid JSON: ${(e as Error).message}${hint}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// canonical records

type Obj = Record<string, unknown>;

function floatArray(origin: string, id: string | null, name: string, v: unknown): Float64Array {
  if (!Array.isArray(v)) throw recordError(origin, id, `${name} must be an array of numbers, got ${describe(v)}`);
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x === 'number') out[i] = x;
    else if (x === null) out[i] = NaN;
    else throw recordError(origin, id, `${name}[${i}] must be a number or null, got ${describe(x)}`);
  }
  return out;
}

function intArray(origin: string, id: string | null, name: string, v: unknown): Int32Array {
  if (!Array.isArray(v)) throw recordError(origin, id, `${name} must be an array of integer token ids, got ${describe(v)}`);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isInteger(x)) throw recordError(origin, id, `${name}[${i}] must be an integer token id, got ${describe(x)}`);
    out[i] = x;
  }
  return out;
}

function maskArray(origin: string, id: string | null, v: unknown): Uint8Array {
  if (!Array.isArray(v)) throw recordError(origin, id, `mask must be an array of 0/1 (masks are explicit, never inferred), got ${describe(v)}`);
  const out = new Uint8Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x === 1 || x === true) out[i] = 1;
    else if (x !== 0 && x !== false) throw recordError(origin, id, `mask[${i}] must be 0 or 1, got ${describe(x)}`);
  }
  return out;
}

/** Ragged [T][<=K] rows -> [T * K] with K the widest row; empty slots id -1, lp -Infinity. */
export function topkFromRows(origin: string, id: string | null, name: string, idsRaw: unknown, lpRaw: unknown): TopKArrays {
  if (!Array.isArray(idsRaw)) throw recordError(origin, id, `${name}_ids must be an array of rows [T][K], got ${describe(idsRaw)}`);
  if (!Array.isArray(lpRaw)) throw recordError(origin, id, `${name}_lp must be an array of rows [T][K], got ${describe(lpRaw)}`);
  if (idsRaw.length !== lpRaw.length) throw recordError(origin, id, `${name}_ids has ${idsRaw.length} rows but ${name}_lp has ${lpRaw.length}`);
  let k = 0;
  for (let t = 0; t < idsRaw.length; t++) {
    const r = idsRaw[t];
    const l = lpRaw[t];
    if (!Array.isArray(r) || !Array.isArray(l)) throw recordError(origin, id, `${name}_ids[${t}] and ${name}_lp[${t}] must be arrays, got ${describe(r)} and ${describe(l)}`);
    if (r.length !== l.length) throw recordError(origin, id, `${name}_ids[${t}] has ${r.length} entries but ${name}_lp[${t}] has ${l.length}`);
    if (r.length > k) k = r.length;
  }
  const T = idsRaw.length;
  const ids = new Int32Array(T * k).fill(-1);
  const lp = new Float64Array(T * k).fill(-Infinity);
  for (let t = 0; t < T; t++) {
    const r = idsRaw[t] as unknown[];
    const l = lpRaw[t] as unknown[];
    for (let j = 0; j < r.length; j++) {
      const x = r[j];
      const y = l[j];
      if (typeof x !== 'number' || !Number.isInteger(x)) throw recordError(origin, id, `${name}_ids[${t}][${j}] must be an integer token id, got ${describe(x)}`);
      if (typeof y !== 'number' && y !== null) throw recordError(origin, id, `${name}_lp[${t}][${j}] must be a number or null, got ${describe(y)}`);
      ids[t * k + j] = x;
      lp[t * k + j] = y === null ? NaN : y;
    }
  }
  return { k, ids, lp };
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Keys a canonical record may hold (anything else is an error: a typo should not silently drop a field). */
const RECORD_KEYS = new Set([
  'sample_id', 'step', 'prompt_len', 'response_ids', 'mask', 'student_lp', 'student_lp_train', 'teacher_lp',
  'student_topk_ids', 'student_topk_lp', 'teacher_topk_ids', 'teacher_topk_lp', 'student_entropy', 'teacher_entropy',
  'token_kl', 'teacher_response_ids', 'reward', 'teacher_id', 'extra',
]);

/** A canonical record (schema.ts, file names) -> DumpSequence, with every error naming `origin` and the field. */
export function sequenceFromRecord(raw: unknown, origin: string, fallbackId: string): DumpSequence {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${origin}: a record must be a JSON object, got ${describe(raw)}`);
  const r = raw as Obj;
  const idRaw = r.sample_id;
  if (idRaw !== undefined && typeof idRaw !== 'string' && typeof idRaw !== 'number') throw new Error(`${origin}: sample_id must be a string or number, got ${describe(idRaw)}`);
  const id = idRaw === undefined ? fallbackId : String(idRaw);
  for (const k of Object.keys(r)) {
    if (!RECORD_KEYS.has(k)) throw recordError(origin, id, `unknown field '${k}' (canonical fields: ${[...RECORD_KEYS].join(', ')}; engine-style dumps need --format vllm|sglang|tinker)`);
  }
  for (const req of ['response_ids', 'mask', 'student_lp', 'teacher_lp']) {
    if (r[req] === undefined) throw recordError(origin, id, `missing required field '${req}'${req === 'mask' ? ' (masks are explicit, never inferred from pad ids or values)' : ''}`);
  }
  const optInt = (name: string): number | null => {
    const v = r[name];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw recordError(origin, id, `${name} must be an integer, got ${describe(v)}`);
    return v;
  };
  const optFloats = (name: string) => (r[name] === undefined || r[name] === null ? null : floatArray(origin, id, name, r[name]));
  const topk = (side: 'student' | 'teacher'): TopKArrays | null => {
    const a = r[`${side}_topk_ids`];
    const b = r[`${side}_topk_lp`];
    if ((a === undefined || a === null) && (b === undefined || b === null)) return null;
    if (a === undefined || a === null || b === undefined || b === null) throw recordError(origin, id, `${side}_topk_ids and ${side}_topk_lp come together; only one is present`);
    return topkFromRows(origin, id, `${side}_topk`, a, b);
  };
  let reward: number | null = null;
  if (r.reward !== undefined && r.reward !== null) {
    if (typeof r.reward !== 'number' && typeof r.reward !== 'boolean') throw recordError(origin, id, `reward must be a number, got ${describe(r.reward)}`);
    reward = Number(r.reward);
  }
  if (r.teacher_id !== undefined && r.teacher_id !== null && typeof r.teacher_id !== 'string') throw recordError(origin, id, `teacher_id must be a string, got ${describe(r.teacher_id)}`);
  const seq: DumpSequence = {
    sampleId: id,
    step: optInt('step'),
    promptLen: optInt('prompt_len'),
    responseIds: intArray(origin, id, 'response_ids', r.response_ids),
    mask: maskArray(origin, id, r.mask),
    studentLp: floatArray(origin, id, 'student_lp', r.student_lp),
    studentLpTrain: optFloats('student_lp_train'),
    teacherLp: floatArray(origin, id, 'teacher_lp', r.teacher_lp),
    studentTopk: topk('student'),
    teacherTopk: topk('teacher'),
    studentEntropy: optFloats('student_entropy'),
    teacherEntropy: optFloats('teacher_entropy'),
    tokenKl: optFloats('token_kl'),
    teacherResponseIds: r.teacher_response_ids === undefined || r.teacher_response_ids === null ? null : intArray(origin, id, 'teacher_response_ids', r.teacher_response_ids),
    reward,
    teacherId: (r.teacher_id as string | undefined) ?? null,
    origin,
  };
  checkSequenceLengths(seq);
  return seq;
}

/** Marker strings for +-Infinity and NaN in values built for `stringifyJson` (written as Python's bare words). */
export const POS_INF_MARK = '\u0000+Infinity';
export const NEG_INF_MARK = '\u0000-Infinity';
export const NAN_MARK = '\u0000NaN';

/**
 * A number for JSON output: NaN -> null (a missing value), +-Infinity -> a marker that `stringifyJson` writes as
 * Python's bare word; finite values rounded to `digits` significant digits (9 keeps float32 exact), 0 = as is.
 */
function jsonNumber(x: number, digits: number): number | null | string {
  if (Number.isNaN(x)) return null;
  if (x === Infinity) return POS_INF_MARK;
  if (x === -Infinity) return NEG_INF_MARK;
  return digits > 0 ? Number(x.toPrecision(digits)) : x;
}

/** DumpSequence -> a canonical record (plain JSON value). NaN -> null; -Infinity top-K slots are dropped (ragged rows). */
export function recordFromSequence(s: DumpSequence, digits = 9): Obj {
  const floats = (a: Float64Array) => Array.from(a, (x) => jsonNumber(x, digits));
  const rows = (t: TopKArrays) => {
    const ids: number[][] = [];
    const lp: (number | null | string)[][] = [];
    const T = t.k === 0 ? 0 : t.ids.length / t.k;
    for (let i = 0; i < T; i++) {
      const ri: number[] = [];
      const rl: (number | null | string)[] = [];
      for (let j = 0; j < t.k; j++) {
        const v = t.ids[i * t.k + j];
        if (v === -1 && t.lp[i * t.k + j] === -Infinity) continue;
        ri.push(v);
        rl.push(jsonNumber(t.lp[i * t.k + j], digits));
      }
      ids.push(ri);
      lp.push(rl);
    }
    return { ids, lp };
  };
  const o: Obj = { sample_id: s.sampleId };
  if (s.step !== null) o.step = s.step;
  if (s.promptLen !== null) o.prompt_len = s.promptLen;
  o.response_ids = Array.from(s.responseIds);
  o.mask = Array.from(s.mask);
  o.student_lp = floats(s.studentLp);
  if (s.studentLpTrain) o.student_lp_train = floats(s.studentLpTrain);
  o.teacher_lp = floats(s.teacherLp);
  for (const [side, t] of [['student', s.studentTopk], ['teacher', s.teacherTopk]] as const) {
    if (!t) continue;
    const { ids, lp } = rows(t);
    o[`${side}_topk_ids`] = ids;
    o[`${side}_topk_lp`] = lp;
  }
  if (s.studentEntropy) o.student_entropy = floats(s.studentEntropy);
  if (s.teacherEntropy) o.teacher_entropy = floats(s.teacherEntropy);
  if (s.tokenKl) o.token_kl = floats(s.tokenKl);
  if (s.teacherResponseIds) o.teacher_response_ids = Array.from(s.teacherResponseIds);
  if (s.reward !== null) o.reward = s.reward;
  if (s.teacherId !== null) o.teacher_id = s.teacherId;
  return o;
}

/** JSON text of a value built with the markers above: they become the bare words Python's json writes. */
export function stringifyJson(value: unknown): string {
  return JSON.stringify(value).replace(/"\\u0000([+-]Infinity|NaN)"/g, (_m, w: string) => (w === '+Infinity' ? 'Infinity' : w));
}
