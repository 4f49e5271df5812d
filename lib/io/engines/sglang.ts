/**
 * SGLang-style records -> the canonical schema (ecosystem.md section 2.1, "SGLang native /generate").
 *
 * One JSON line per rollout, from two /generate responses:
 *   input_ids[P]                                   the student prompt
 *   meta_info.output_token_logprobs[T]             student sampling (return_logprob): [logprob, token_id, text|null]
 *   meta_info.output_top_logprobs[T]?              (top_logprobs_num = k): per position a list of [logprob, id, text]
 *   teacher_meta_info.input_token_logprobs         the teacher's scoring pass on prompt + response (max_new_tokens 0,
 *                                                  return_logprob, logprob_start_len = s, default 0):
 *                                                  P + T - s triples [logprob|null, id, text]; the first logprob is
 *                                                  null (nothing precedes the first scored token when s = 0)
 *   teacher_meta_info.input_top_logprobs?          same positions; the first entry is null
 *   logprob_start_len?                             s (default 0); response token t sits at index P + t - s
 *   sample_id?, step?, mask?, reward?, teacher_id?, student_lp_train?
 *
 * Conversions: student_lp[t] = output_token_logprobs[t][0]; response_ids from its ids; teacher_lp[t] =
 * input_token_logprobs[P + t - s][0] and teacher_response_ids from its ids (the doctor compares them with the
 * response); top-K rows sorted by log-prob, descending (ties: lower id). SGLang log-probs are processed
 * (after temperature; and its prefill log-probs ignore temperature, slime #2319): record meta logprobs_mode.
 */
import type { DumpSequence } from '../schema';
import { assembleSequence, describe, Fields, topkFromLists, widest, type AdapterContext, type Obj } from './common';

/** [logprob|null, id, text?] -> {lp, id}. */
function triple(f: Fields, v: unknown, name: string): { lp: number; id: number } {
  const a = f.array(v, name);
  if (a.length < 2) throw f.error(`${name} must be [logprob, token_id, text], got ${describe(v)}`);
  const [lp, id] = a;
  if (typeof lp !== 'number' && lp !== null) throw f.error(`${name}[0] (logprob) must be a number or null, got ${describe(lp)}`);
  if (typeof id !== 'number' || !Number.isInteger(id)) throw f.error(`${name}[1] (token_id) must be an integer, got ${describe(id)}`);
  return { lp: lp === null ? NaN : lp, id };
}

function topRows(f: Fields, v: unknown, name: string, from: number, T: number): { id: number; lp: number }[][] {
  const a = f.array(v, name);
  const rows: { id: number; lp: number }[][] = [];
  for (let t = 0; t < T; t++) {
    const r = a[from + t];
    if (r === null || r === undefined) {
      rows.push([]);
      continue;
    }
    rows.push(f.array(r, `${name}[${from + t}]`).map((e, j) => triple(f, e, `${name}[${from + t}][${j}]`)).sort((x, y) => y.lp - x.lp || x.id - y.id));
  }
  return rows;
}

export function sglangAdapter(raw: unknown, origin: string, fallbackId: string, ctx: AdapterContext): DumpSequence {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${origin}: an SGLang record must be a JSON object, got ${describe(raw)}`);
  const f = new Fields(raw as Obj, origin, fallbackId);
  const o = f.obj;
  if (o.input_ids === undefined) throw f.error("missing 'input_ids' (the prompt): needed to find the response span of the teacher's input_token_logprobs");
  const P = f.ints(o.input_ids, 'input_ids').length;
  const mi = f.object(o.meta_info, 'meta_info (the student /generate response)');
  const out = f.array(mi.output_token_logprobs, 'meta_info.output_token_logprobs').map((v, t) => triple(f, v, `meta_info.output_token_logprobs[${t}]`));
  const T = out.length;
  const y = Int32Array.from(out, (e) => e.id);
  const studentLp = Float64Array.from(out, (e) => e.lp);
  let studentTopk = null;
  if (mi.output_top_logprobs !== undefined && mi.output_top_logprobs !== null) {
    const rows = topRows(f, mi.output_top_logprobs, 'meta_info.output_top_logprobs', 0, T);
    studentTopk = topkFromLists(rows, ctx.meta.k ?? widest(rows));
  }

  const tm = f.object(o.teacher_meta_info, "teacher_meta_info (the teacher's /generate response on prompt + response)");
  const s = f.optInt('logprob_start_len') ?? 0;
  if (s < 0 || s > P) throw f.error(`logprob_start_len must be in [0, ${P}] (the prompt length), got ${s}`);
  const itl = f.array(tm.input_token_logprobs, 'teacher_meta_info.input_token_logprobs');
  if (itl.length !== P + T - s) {
    throw f.error(`teacher_meta_info.input_token_logprobs has ${itl.length} entries; expected prompt (${P}) + response (${T}) - logprob_start_len (${s}) = ${P + T - s}`);
  }
  if (itl.length > 0) {
    const first = triple(f, itl[0], 'teacher_meta_info.input_token_logprobs[0]');
    if (Number.isNaN(first.lp)) ctx.conversions.add('first_position_null', "the teacher's input_token_logprobs[0][0] is null (nothing precedes the first scored token); the response span starts at index prompt_len - logprob_start_len", f.id);
  }
  const tri = Array.from({ length: T }, (_, t) => triple(f, itl[P - s + t], `teacher_meta_info.input_token_logprobs[${P - s + t}]`));
  const teacherLp = Float64Array.from(tri, (e) => e.lp);
  const teacherResponseIds = Int32Array.from(tri, (e) => e.id);
  let teacherTopk = null;
  if (tm.input_top_logprobs !== undefined && tm.input_top_logprobs !== null) {
    const rows = topRows(f, tm.input_top_logprobs, 'teacher_meta_info.input_top_logprobs', P - s, T);
    teacherTopk = topkFromLists(rows, ctx.meta.k ?? widest(rows));
  }
  return assembleSequence(f, ctx, origin, T, {
    promptLen: P,
    responseIds: y,
    studentLp,
    teacherLp,
    studentTopk,
    teacherTopk,
    teacherResponseIds,
  });
}
