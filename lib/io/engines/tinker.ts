/**
 * tinker-style records -> the canonical schema (ecosystem.md section 2.2, "tinker / tinker-cookbook").
 *
 * One JSON line per rollout (Python's json writes NaN as a bare word; the reader accepts it):
 *   prompt_tokens[P]                               the student prompt (ModelInput tokens)
 *   sequence.tokens[T], sequence.logprobs[T]       SampledSequence: the response and the sampler's log-probs
 *   teacher.prompt_logprobs[P + T]                 compute_logprobs / prompt_logprobs on prompt + response:
 *                                                  float32 with NaN (or null) at position 0
 *   teacher.topk_prompt_logprobs?                  TopkPromptLogprobs {token_ids [P+T][k], logprobs [P+T][k]};
 *                                                  empty slots hold the sentinels token_id 0, logprob -99999.0
 *   teacher.tokens[P + T]?                         the ids the teacher scored (checked by the doctor)
 *   sample_id?, step?, mask?, reward?, teacher_id?, student_lp_train?
 *
 * Conversions: teacher_lp[t] = prompt_logprobs[P + t] (the cookbook's teacher_lp[1:] aligned to the response);
 * sentinel slots (id 0 with log-prob <= -99999 + 0.5) become empty slots (id -1, -Infinity), logged as
 * 'topk_sentinel'. Nothing else is changed: a NaN inside the response span stays NaN for the doctor.
 */
import type { DumpSequence } from '../schema';
import { assembleSequence, describe, Fields, type AdapterContext, type Obj } from './common';

/** tinker's empty-slot markers (TopkPromptLogprobs docs). */
export const TINKER_SENTINEL_ID = 0;
export const TINKER_SENTINEL_LP = -99999;

export function tinkerAdapter(raw: unknown, origin: string, fallbackId: string, ctx: AdapterContext): DumpSequence {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${origin}: a tinker record must be a JSON object, got ${describe(raw)}`);
  const f = new Fields(raw as Obj, origin, fallbackId);
  const o = f.obj;
  if (o.prompt_tokens === undefined) throw f.error("missing 'prompt_tokens': needed to find the response span of the teacher's prompt_logprobs");
  const P = f.ints(o.prompt_tokens, 'prompt_tokens').length;
  const sq = f.object(o.sequence, 'sequence (SampledSequence)');
  const y = f.ints(sq.tokens, 'sequence.tokens');
  const T = y.length;
  const studentLp = f.floats(sq.logprobs, 'sequence.logprobs');
  if (studentLp.length !== T) throw f.error(`sequence.logprobs has ${studentLp.length} entries but sequence.tokens has ${T}`);
  const te = f.object(o.teacher, 'teacher');
  const pl = f.floats(te.prompt_logprobs, 'teacher.prompt_logprobs');
  if (pl.length !== P + T) {
    throw f.error(`teacher.prompt_logprobs has ${pl.length} entries; expected prompt (${P}) + response (${T}) = ${P + T}${pl.length === P + T - 1 ? ' (one fewer: was it already sliced with [1:]? keep the full list)' : ''}`);
  }
  if (pl.length > 0 && Number.isNaN(pl[0])) ctx.conversions.add('first_position_nan', "the teacher's prompt_logprobs[0] is NaN (nothing precedes the first token); the response span starts at index prompt_len", f.id);
  const teacherLp = pl.slice(P);
  let teacherResponseIds: Int32Array | null = null;
  if (te.tokens !== undefined) {
    const ids = f.ints(te.tokens, 'teacher.tokens');
    if (ids.length !== P + T) throw f.error(`teacher.tokens has ${ids.length} entries; expected prompt (${P}) + response (${T}) = ${P + T}`);
    teacherResponseIds = ids.slice(P);
  }
  let teacherTopk = null;
  if (te.topk_prompt_logprobs !== undefined && te.topk_prompt_logprobs !== null) {
    const tk = f.object(te.topk_prompt_logprobs, 'teacher.topk_prompt_logprobs');
    const idRows = f.array(tk.token_ids, 'teacher.topk_prompt_logprobs.token_ids');
    const lpRows = f.array(tk.logprobs, 'teacher.topk_prompt_logprobs.logprobs');
    if (idRows.length !== P + T || lpRows.length !== P + T) throw f.error(`teacher.topk_prompt_logprobs must have prompt + response = ${P + T} rows, got ${idRows.length} token_ids and ${lpRows.length} logprobs rows`);
    let k = 0;
    for (let t = P; t < P + T; t++) k = Math.max(k, f.array(idRows[t], `teacher.topk_prompt_logprobs.token_ids[${t}]`).length);
    const ids = new Int32Array(T * k).fill(-1);
    const lp = new Float64Array(T * k).fill(-Infinity);
    let sentinels = 0;
    for (let t = 0; t < T; t++) {
      const ri = f.ints(idRows[P + t], `teacher.topk_prompt_logprobs.token_ids[${P + t}]`);
      const rl = f.floats(lpRows[P + t], `teacher.topk_prompt_logprobs.logprobs[${P + t}]`);
      if (ri.length !== rl.length) throw f.error(`teacher.topk_prompt_logprobs row ${P + t} has ${ri.length} token_ids but ${rl.length} logprobs`);
      for (let j = 0; j < ri.length; j++) {
        if (ri[j] === TINKER_SENTINEL_ID && rl[j] <= TINKER_SENTINEL_LP + 0.5) {
          sentinels++;
          continue;
        }
        ids[t * k + j] = ri[j];
        lp[t * k + j] = rl[j];
      }
    }
    if (sentinels > 0) ctx.conversions.add('topk_sentinel', `tinker sentinel slots (token_id ${TINKER_SENTINEL_ID}, logprob ${TINKER_SENTINEL_LP}) became empty top-K slots`, f.id, sentinels);
    teacherTopk = { k, ids, lp };
  }
  return assembleSequence(f, ctx, origin, T, {
    promptLen: P,
    responseIds: y,
    studentLp,
    teacherLp,
    studentTopk: null,
    teacherTopk,
    teacherResponseIds,
  });
}
