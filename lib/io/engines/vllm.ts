/**
 * vLLM-style records -> the canonical schema (ecosystem.md section 2.1, "vLLM offline API").
 *
 * One JSON line per rollout, as a user writes it from vLLM's Python objects:
 *   prompt_token_ids[P]                        RequestOutput.prompt_token_ids of the student request
 *   outputs[0].token_ids[T]                    CompletionOutput.token_ids: the sampled response y
 *   outputs[0].logprobs[T]                     CompletionOutput.logprobs: per position a dict
 *                                              {"<id>": {"logprob", "rank", "decoded_token"}} holding the top-k
 *                                              PLUS the chosen token when it is outside the top-k (k + 1 entries);
 *                                              rank is the 1-based vocabulary rank. A bare number as the value is
 *                                              read as the log-prob (rank then unknown; order by log-prob).
 *   teacher_prompt_logprobs[P + T]             the teacher's RequestOutput.prompt_logprobs for prompt + response
 *                                              (prompt_logprobs=k): entry 0 is None (no token before the first);
 *                                              entry P + t scores response token t (it holds y_t, plus the top-k)
 *   teacher_prompt_token_ids[P + T]?           the ids the teacher scored (checked against y by the doctor)
 *   sample_id?, step?, mask?, reward?, teacher_id?, student_lp_train?
 *
 * Conversions: student_lp[t] = logprobs[t][y_t].logprob; teacher_lp[t] = teacher_prompt_logprobs[P + t][y_t];
 * top-k = the entries in rank order (ties: higher log-prob, then lower id); a position with more than k entries
 * holds the chosen token as an extra one (outside the top-k, though its rank can still be <= k when it ties the
 * k-th: vLLM ranks the chosen token by count of strictly larger log-probs), which is dropped from the top-k
 * (logged as 'extra_chosen_entry'); 0-based ranks are shifted to 1-based (logged: a conversion bug upstream).
 * k is meta.k when given, else inferred from the entry counts (inferK).
 */
import type { DumpSequence } from '../schema';
import { assembleSequence, describe, Fields, topkFromLists, type AdapterContext, type Obj } from './common';

interface Entry {
  id: number;
  lp: number;
  rank: number | null;
}

function entriesOf(f: Fields, v: unknown, name: string): Entry[] {
  const d = f.object(v, name);
  const out: Entry[] = [];
  for (const [key, val] of Object.entries(d)) {
    const id = Number(key);
    if (!Number.isInteger(id)) throw f.error(`${name} has key ${JSON.stringify(key)}; keys must be token ids (vLLM's dict[int, Logprob])`);
    if (typeof val === 'number' || val === null) {
      out.push({ id, lp: val === null ? NaN : val, rank: null });
      continue;
    }
    const o = f.object(val, `${name}[${key}]`);
    const lp = o.logprob;
    if (typeof lp !== 'number' && lp !== null) throw f.error(`${name}[${key}].logprob must be a number, got ${describe(lp)}`);
    const rank = o.rank;
    if (rank !== undefined && rank !== null && (typeof rank !== 'number' || !Number.isInteger(rank))) throw f.error(`${name}[${key}].rank must be an integer, got ${describe(rank)}`);
    out.push({ id, lp: lp === null ? NaN : lp, rank: rank === undefined || rank === null ? null : rank });
  }
  return out;
}

/**
 * Infers k from the entry counts: a position holds k entries when the chosen token is inside the top-k and k + 1
 * when it is not, so two counts c and c + 1 give k = c. With one count c everywhere, k = c unless the chosen
 * token is the last-ranked entry at most positions (then it is the extra entry: k = c - 1). Null when no
 * position has entries.
 */
function inferK(positions: { entries: Entry[]; chosen: number }[]): number | null {
  const counts = new Set(positions.filter((p) => p.entries.length > 0).map((p) => p.entries.length));
  if (counts.size === 0) return null;
  const sorted = [...counts].sort((a, b) => a - b);
  if (sorted.length >= 2) return sorted[0];
  const c = sorted[0];
  let last = 0;
  let n = 0;
  for (const { entries, chosen } of positions) {
    if (entries.length === 0) continue;
    n++;
    const maxRank = Math.max(...entries.map((e) => e.rank ?? 0));
    const ch = entries.find((e) => e.id === chosen);
    if (ch && ch.rank !== null && ch.rank === maxRank && ch.rank > c - 1) last++;
  }
  return last > n / 2 ? c - 1 : c;
}

/** The top-k rows of positions (entries in rank order, chosen-token extra dropped) and the chosen log-probs. */
function convertPositions(f: Fields, ctx: AdapterContext, side: 'student' | 'teacher', positions: { entries: Entry[]; chosen: number }[]) {
  const T = positions.length;
  const chosenLp = new Float64Array(T);
  let zeroBased = false;
  for (const p of positions) for (const e of p.entries) if (e.rank === 0) zeroBased = true;
  if (zeroBased) {
    ctx.conversions.add(`${side}_zero_based_rank`, `${side} ranks start at 0; vLLM ranks are 1-based, so they were shifted by +1 (a conversion upstream used 0-based ranks)`, f.id);
    for (const p of positions) for (const e of p.entries) if (e.rank !== null) e.rank += 1;
  }
  const stateKey = `${side}K`;
  let k = ctx.meta.k ?? (ctx.state[stateKey] as number | undefined) ?? inferK(positions);
  if (k === null) {
    const widths = positions.filter((p) => p.entries.length > 0).map((p) => p.entries.length);
    k = widths.length > 0 ? Math.min(...widths) : 1;
    ctx.conversions.add(`${side}_k_ambiguous`, `${side} top-k width could not be inferred (the chosen token is the last-ranked entry everywhere) and meta.k is missing; assumed k = the smallest number of entries`, f.id);
  }
  ctx.state[stateKey] = k;
  const rows = positions.map(({ entries, chosen }, t) => {
    if (entries.length === 0) {
      chosenLp[t] = NaN; // a None entry: nothing was scored here
      return [];
    }
    const c = entries.find((e) => e.id === chosen);
    if (!c) throw f.error(`${side} log-probs at response position ${t} lack the sampled token ${chosen} (vLLM always includes it)`);
    chosenLp[t] = c.lp;
    // more than k entries: the chosen token is the extra one (its rank may still be <= k when it ties the k-th)
    const rest = entries.length > k! ? entries.filter((e) => e !== c) : entries;
    const ranked = rest.every((e) => e.rank !== null);
    const sorted = rest.slice().sort((a, b) => (ranked ? a.rank! - b.rank! : 0) || b.lp - a.lp || a.id - b.id);
    const top = sorted.slice(0, k!);
    if (top.length < entries.length) ctx.conversions.add(`${side}_extra_chosen_entry`, `${side}: the (k+1)-th entry (the chosen token, outside the top-k) was dropped from the top-k; its log-prob is the sampled-token log-prob`, `${f.id} position ${t}`, entries.length - top.length);
    return top.map((e) => ({ id: e.id, lp: e.lp }));
  });
  return { chosenLp, topk: topkFromLists(rows, k) };
}

export function vllmAdapter(raw: unknown, origin: string, fallbackId: string, ctx: AdapterContext): DumpSequence {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${origin}: a vLLM record must be a JSON object, got ${describe(raw)}`);
  const f = new Fields(raw as Obj, origin, fallbackId);
  const o = f.obj;
  if (o.prompt_token_ids === undefined) throw f.error("missing 'prompt_token_ids' (RequestOutput.prompt_token_ids): needed to find the response span of the teacher's prompt_logprobs");
  const prompt = f.ints(o.prompt_token_ids, 'prompt_token_ids');
  const outputs = f.array(o.outputs, 'outputs');
  if (outputs.length === 0) throw f.error('outputs is empty');
  const out = f.object(outputs[0], 'outputs[0]');
  const y = f.ints(out.token_ids, 'outputs[0].token_ids');
  const T = y.length;
  const P = prompt.length;
  const studentLps = f.array(out.logprobs, 'outputs[0].logprobs (request logprobs=k)');
  if (studentLps.length !== T) throw f.error(`outputs[0].logprobs has ${studentLps.length} positions but outputs[0].token_ids has ${T}`);
  const student = convertPositions(f, ctx, 'student', studentLps.map((v, t) => ({ entries: entriesOf(f, v, `outputs[0].logprobs[${t}]`), chosen: y[t] })));

  const tpl = f.array(o.teacher_prompt_logprobs, "teacher_prompt_logprobs (the teacher's prompt_logprobs on prompt + response)");
  if (tpl.length !== P + T) {
    throw f.error(`teacher_prompt_logprobs has ${tpl.length} entries; expected prompt (${P}) + response (${T}) = ${P + T}${tpl.length === T ? ' (it looks like the response span only: keep the full prompt_logprobs list)' : tpl.length === P + T - 1 ? " (one fewer: was the first None already dropped? keep vLLM's list as returned)" : ''}`);
  }
  if (tpl[0] === null) ctx.conversions.add('first_position_none', "the teacher's prompt_logprobs[0] is None (no token precedes the first); the response span starts at index prompt_len", f.id);
  const teacherIds = o.teacher_prompt_token_ids === undefined ? null : f.ints(o.teacher_prompt_token_ids, 'teacher_prompt_token_ids');
  if (teacherIds && teacherIds.length !== P + T) throw f.error(`teacher_prompt_token_ids has ${teacherIds.length} entries; expected prompt (${P}) + response (${T}) = ${P + T}`);
  const teacherPositions: { entries: Entry[]; chosen: number }[] = [];
  const teacherLp = new Float64Array(T);
  let teacherNone = false;
  for (let t = 0; t < T; t++) {
    const v = tpl[P + t];
    if (v === null) {
      teacherNone = true;
      teacherPositions.push({ entries: [], chosen: y[t] });
      continue;
    }
    teacherPositions.push({ entries: entriesOf(f, v, `teacher_prompt_logprobs[${P + t}]`), chosen: teacherIds ? teacherIds[P + t] : y[t] });
  }
  const teacher = convertPositions(f, ctx, 'teacher', teacherPositions);
  teacherLp.set(teacher.chosenLp);
  if (teacherNone) ctx.conversions.add('none_inside_response', "a teacher prompt_logprobs entry inside the response span is None: its teacher_lp is NaN (prompt_len 0, or a shifted span)", f.id);

  return assembleSequence(f, ctx, origin, T, {
    promptLen: P,
    responseIds: y,
    studentLp: student.chosenLp,
    teacherLp,
    studentTopk: student.topk,
    teacherTopk: teacher.topk,
    teacherResponseIds: teacherIds ? teacherIds.slice(P) : null,
  });
}
