/**
 * The canonical per-sequence rollout schema (ecosystem.md section 2.3) and its run metadata.
 *
 * One record per sampled sequence; T = its number of response tokens, K = a top-K width:
 *   sample_id, step, prompt_len                        identity and where the response starts
 *   response_ids[T], mask[T]                           sampled ids y_t and the explicit 0/1 loss mask
 *   student_lp[T]                                      log q(y_t): the SAMPLER's log-prob (as the engine returned it)
 *   student_lp_train[T]?                               log pS(y_t) recomputed by the trainer
 *   teacher_lp[T]                                      log pT(y_t | prompt, y_<t): index t scores token t
 *   student_topk_ids[T][K]?, student_topk_lp[T][K]?    the student's top-K per position
 *   teacher_topk_ids[T][K]?, teacher_topk_lp[T][K]?    the teacher's top-K per position
 *   student_entropy[T]?, teacher_entropy[T]?           per-token entropies (nats)
 *   token_kl[T]?                                       a per-token divergence as the trainer logged it (any direction)
 *   teacher_response_ids[T]?                           the ids the teacher scored (to check they equal response_ids)
 *   reward?, teacher_id?
 *
 * Run metadata (one object per dump; JSONL: a first line {"__meta__": {...}}; Parquet: key-value metadata
 * "opdlab_meta"; safetensors: __metadata__["opdlab_meta"]; .npy directory: meta.json):
 *   vocab_size_s, vocab_size_t (the model config's vocab_size, never the tokenizer length: TRL #2215),
 *   tokenizer_s|t, renderer_s|t, sampler and teacher {temperature, top_p, top_k, logprobs_mode},
 *   dtype, framework, framework_version, kl_direction, beta, k, eos_id, pad_id, special_ids, source.
 *
 * In memory, log-probs are Float64Array (binary float32/bf16/f16 inputs are widened exactly). A missing value
 * (JSON null, an engine's first-position None) is NaN; the doctor reports it wherever the mask is 1. An empty
 * top-K slot (a shorter row, an engine sentinel an adapter recognised) is id -1 with log-prob -Infinity.
 * Masks are never inferred from values or pad ids (architecture.md); a record without a mask is an error.
 */

/** Sampling settings of the sampler or of the teacher's scoring pass. */
export interface SamplingSettings {
  temperature?: number;
  topP?: number;
  /** 0 = off. */
  topK?: number;
  /** 'raw' (vLLM default raw_logprobs: before temperature and truncation) or 'processed' (after them; SGLang). */
  logprobsMode?: string;
}

export interface DumpMeta {
  /** Where the dump came from: 'opdlab-sim', 'vllm', 'sglang', 'tinker', 'verl', ... */
  source?: string;
  /** The student's and the teacher's config.vocab_size. */
  vocabSizeStudent?: number;
  vocabSizeTeacher?: number;
  tokenizerStudent?: string;
  tokenizerTeacher?: string;
  rendererStudent?: string;
  rendererTeacher?: string;
  sampler?: SamplingSettings;
  teacher?: SamplingSettings;
  /** dtype the log-probs were computed in (e.g. 'bfloat16', 'float32'). */
  dtype?: string;
  framework?: string;
  frameworkVersion?: string;
  /** 'forward' | 'reverse' | 'jsd' ... as the run used it. */
  klDirection?: string;
  beta?: number;
  /** Top-K width requested from the engine. */
  k?: number;
  eosId?: number;
  padId?: number;
  /** Special / template token ids (the token-class split of the gap figures). */
  specialIds?: number[];
  /** Keys this schema does not know, kept as given. */
  extra: Record<string, unknown>;
}

/** One top-K array of a sequence: ids and log-probs row-major [T * k]; empty slots are id -1, lp -Infinity. */
export interface TopKArrays {
  k: number;
  ids: Int32Array;
  lp: Float64Array;
}

export interface DumpSequence {
  sampleId: string;
  step: number | null;
  promptLen: number | null;
  responseIds: Int32Array;
  mask: Uint8Array;
  studentLp: Float64Array;
  studentLpTrain: Float64Array | null;
  teacherLp: Float64Array;
  studentTopk: TopKArrays | null;
  teacherTopk: TopKArrays | null;
  studentEntropy: Float64Array | null;
  teacherEntropy: Float64Array | null;
  tokenKl: Float64Array | null;
  teacherResponseIds: Int32Array | null;
  reward: number | null;
  teacherId: string | null;
  /** Where the record came from, for messages: 'line 12', 'row 3', 'sequence 7'. */
  origin: string;
}

/** The optional per-token fields, by their file names. */
export const OPTIONAL_TOKEN_FIELDS = ['student_lp_train', 'student_entropy', 'teacher_entropy', 'token_kl', 'teacher_response_ids'] as const;
export const TOPK_FIELDS = ['student_topk', 'teacher_topk'] as const;

/** Meta keys: file name (snake_case) -> DumpMeta key. */
const META_KEYS: Record<string, keyof DumpMeta> = {
  source: 'source',
  vocab_size_s: 'vocabSizeStudent',
  vocab_size_student: 'vocabSizeStudent',
  vocab_size_t: 'vocabSizeTeacher',
  vocab_size_teacher: 'vocabSizeTeacher',
  tokenizer_s: 'tokenizerStudent',
  tokenizer_t: 'tokenizerTeacher',
  renderer_s: 'rendererStudent',
  renderer_t: 'rendererTeacher',
  sampler: 'sampler',
  teacher: 'teacher',
  dtype: 'dtype',
  framework: 'framework',
  framework_version: 'frameworkVersion',
  kl_direction: 'klDirection',
  beta: 'beta',
  k: 'k',
  eos_id: 'eosId',
  pad_id: 'padId',
  special_ids: 'specialIds',
};

const NUMBER_META: (keyof DumpMeta)[] = ['vocabSizeStudent', 'vocabSizeTeacher', 'beta', 'k', 'eosId', 'padId'];
const INT_META: (keyof DumpMeta)[] = ['vocabSizeStudent', 'vocabSizeTeacher', 'k', 'eosId', 'padId'];

/** vLLM's mode names -> ours ('raw_logprobs' -> 'raw'); other values pass through. */
export function normaliseLogprobsMode(mode: string): string {
  const m = mode.toLowerCase();
  if (m === 'raw_logprobs') return 'raw';
  if (m === 'processed_logprobs') return 'processed';
  return m;
}

function parseSampling(where: string, key: string, v: unknown): SamplingSettings {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: meta.${key} must be an object {temperature, top_p, top_k, logprobs_mode}, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  const out: SamplingSettings = {};
  const num = (name: string): number | undefined => {
    const x = o[name];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`${where}: meta.${key}.${name} must be a finite number, got ${JSON.stringify(x)}`);
    return x;
  };
  out.temperature = num('temperature');
  out.topP = num('top_p') ?? num('topP');
  out.topK = num('top_k') ?? num('topK');
  const mode = o.logprobs_mode ?? o.logprobsMode;
  if (mode !== undefined && mode !== null) {
    if (typeof mode !== 'string') throw new Error(`${where}: meta.${key}.logprobs_mode must be a string, got ${JSON.stringify(mode)}`);
    out.logprobsMode = normaliseLogprobsMode(mode);
  }
  for (const k of Object.keys(out) as (keyof SamplingSettings)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** Reads run metadata written with the file names above; unknown keys go to `extra`. */
export function parseMeta(raw: unknown, where = 'meta'): DumpMeta {
  const meta: DumpMeta = { extra: {} };
  if (raw === undefined || raw === null) return meta;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where}: run metadata must be a JSON object, got ${JSON.stringify(raw).slice(0, 80)}`);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = META_KEYS[k];
    if (!key) {
      meta.extra[k] = v;
      continue;
    }
    if (v === null || v === undefined) continue;
    if (key === 'sampler' || key === 'teacher') meta[key] = parseSampling(where, k, v);
    else if (key === 'specialIds') {
      if (!Array.isArray(v) || v.some((x) => !Number.isInteger(x))) throw new Error(`${where}: meta.special_ids must be an array of integer token ids, got ${JSON.stringify(v).slice(0, 80)}`);
      meta.specialIds = v as number[];
    } else if (NUMBER_META.includes(key)) {
      if (typeof v !== 'number' || !Number.isFinite(v) || (INT_META.includes(key) && !Number.isInteger(v))) {
        throw new Error(`${where}: meta.${k} must be a${INT_META.includes(key) ? 'n integer' : ' finite number'}, got ${JSON.stringify(v)}`);
      }
      (meta as unknown as Record<string, unknown>)[key] = v;
    } else {
      if (typeof v !== 'string') throw new Error(`${where}: meta.${k} must be a string, got ${JSON.stringify(v)}`);
      (meta as unknown as Record<string, unknown>)[key] = v;
    }
  }
  return meta;
}

/** The file form (snake_case) of run metadata, for writers. */
export function metaToJson(meta: DumpMeta): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const first = new Map<keyof DumpMeta, string>();
  for (const [file, key] of Object.entries(META_KEYS)) if (!first.has(key)) first.set(key, file);
  for (const [key, file] of first) {
    const v = meta[key];
    if (v === undefined) continue;
    if (key === 'sampler' || key === 'teacher') {
      const s = v as SamplingSettings;
      const o: Record<string, unknown> = {};
      if (s.temperature !== undefined) o.temperature = s.temperature;
      if (s.topP !== undefined) o.top_p = s.topP;
      if (s.topK !== undefined) o.top_k = s.topK;
      if (s.logprobsMode !== undefined) o.logprobs_mode = s.logprobsMode;
      out[file] = o;
    } else out[file] = v;
  }
  return { ...out, ...meta.extra };
}

/** Throws a reader error naming the record and the field. */
export function recordError(origin: string, sampleId: string | null, message: string): Error {
  return new Error(`${origin}${sampleId !== null ? ` (sample_id ${JSON.stringify(sampleId)})` : ''}: ${message}`);
}

/** Checks that a sequence's per-token arrays agree in length; names the field and the record. */
export function checkSequenceLengths(s: DumpSequence): void {
  const T = s.responseIds.length;
  const hint = (n: number) =>
    n === T + 1
      ? ' (one more than response_ids: a full-sequence array whose first entry is the engine\'s None/NaN? drop it, e.g. teacher_lp[1:], or slice the response span [prompt_len:])'
      : n === T - 1
        ? ' (one fewer than response_ids: an array shifted by one position?)'
        : '';
  const check = (name: string, n: number | undefined) => {
    if (n !== undefined && n !== T) throw recordError(s.origin, s.sampleId, `${name} has ${n} entries but response_ids has ${T}${hint(n)}`);
  };
  check('mask', s.mask.length);
  check('student_lp', s.studentLp.length);
  check('teacher_lp', s.teacherLp.length);
  check('student_lp_train', s.studentLpTrain?.length);
  check('student_entropy', s.studentEntropy?.length);
  check('teacher_entropy', s.teacherEntropy?.length);
  check('token_kl', s.tokenKl?.length);
  check('teacher_response_ids', s.teacherResponseIds?.length);
  for (const [name, t] of [['student_topk', s.studentTopk], ['teacher_topk', s.teacherTopk]] as const) {
    if (t && t.ids.length !== T * t.k) throw recordError(s.origin, s.sampleId, `${name}_ids must have ${T} rows of ${t.k}, got ${t.ids.length / t.k} rows`);
    if (t && t.lp.length !== t.ids.length) throw recordError(s.origin, s.sampleId, `${name}_lp and ${name}_ids must have the same shape`);
  }
}

/** Which optional fields a sequence carries (the first sequence of a dump fixes this for the rest). */
export interface FieldSet {
  studentLpTrain: boolean;
  studentTopk: boolean;
  teacherTopk: boolean;
  studentEntropy: boolean;
  teacherEntropy: boolean;
  tokenKl: boolean;
  teacherResponseIds: boolean;
  reward: boolean;
}

export function fieldSetOf(s: DumpSequence): FieldSet {
  return {
    studentLpTrain: s.studentLpTrain !== null,
    studentTopk: s.studentTopk !== null,
    teacherTopk: s.teacherTopk !== null,
    studentEntropy: s.studentEntropy !== null,
    teacherEntropy: s.teacherEntropy !== null,
    tokenKl: s.tokenKl !== null,
    teacherResponseIds: s.teacherResponseIds !== null,
    reward: s.reward !== null,
  };
}

const FIELD_FILE_NAMES: Record<keyof FieldSet, string> = {
  studentLpTrain: 'student_lp_train',
  studentTopk: 'student_topk_ids/_lp',
  teacherTopk: 'teacher_topk_ids/_lp',
  studentEntropy: 'student_entropy',
  teacherEntropy: 'teacher_entropy',
  tokenKl: 'token_kl',
  teacherResponseIds: 'teacher_response_ids',
  reward: 'reward',
};

/** Every sequence must carry the same optional per-token fields as the first (a mixed dump is an error). */
export function checkSameFields(first: FieldSet, firstOrigin: string, s: DumpSequence): void {
  const f = fieldSetOf(s);
  for (const k of Object.keys(first) as (keyof FieldSet)[]) {
    if (k === 'reward') continue; // a per-sequence scalar may be missing (null) in some records
    if (first[k] !== f[k]) {
      throw recordError(s.origin, s.sampleId, `${f[k] ? 'has' : 'lacks'} ${FIELD_FILE_NAMES[k]}, which the first record (${firstOrigin}) ${first[k] ? 'has' : 'lacks'}; every record must carry the same fields`);
    }
  }
}

/** The run metadata every sample dump of the toolkit carries about itself, filled from a partial. */
export function emptyMeta(partial: Partial<DumpMeta> = {}): DumpMeta {
  return { extra: {}, ...partial };
}
