/**
 * The dump doctor: every check stays quiet (pass) on the clean sample dump and fires on a copy built to trip it;
 * the streamed doctor agrees with the in-memory one whatever the chunk size.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { doctorDump, doctorSource } from '../../lib/io/analyse';
import { sequenceOfChunk } from '../../lib/io/chunk';
import type { CheckResult, DoctorReport } from '../../lib/io/doctor';
import { floatToBf16, bf16ToFloat } from '../../lib/io/dtype';
import { dumpFromSequences, loadDump, openDump, type Dump } from '../../lib/io/reader';
import type { DumpMeta, DumpSequence } from '../../lib/io/schema';

const DUMPS = join(__dirname, '..', '..', 'data', 'dumps');
let clean: Dump;

beforeAll(async () => {
  clean = await loadDump(join(DUMPS, 'sample.jsonl'));
});

/** Deep copies of the clean sequences, to mutate. */
function copies(): DumpSequence[] {
  return Array.from({ length: clean.chunk.S }, (_, s) => {
    const v = sequenceOfChunk(clean.chunk, s);
    const t = (x: DumpSequence['studentTopk']) => (x ? { k: x.k, ids: x.ids.slice(), lp: x.lp.slice() } : null);
    return {
      ...v,
      responseIds: v.responseIds.slice(), mask: v.mask.slice(), studentLp: v.studentLp.slice(), teacherLp: v.teacherLp.slice(),
      studentLpTrain: v.studentLpTrain!.slice(), studentEntropy: v.studentEntropy!.slice(), teacherEntropy: v.teacherEntropy!.slice(),
      teacherResponseIds: v.teacherResponseIds!.slice(), studentTopk: t(v.studentTopk), teacherTopk: t(v.teacherTopk),
    };
  });
}

function run(seqs: DumpSequence[], meta: Partial<DumpMeta> = {}): DoctorReport {
  return doctorDump(dumpFromSequences({ ...clean.meta, ...meta }, seqs));
}

const check = (r: DoctorReport, id: string): CheckResult => r.checks.find((c) => c.id === id)!;

describe('clean dumps', () => {
  it('every check passes on the clean sample dump, with the numbers it states', () => {
    const r = doctorDump(clean);
    expect(r.checks.map((c) => [c.id, c.status])).toEqual(r.checks.map((c) => [c.id, 'pass']));
    expect(r.ok).toBe(true);
    expect(r.sequences).toBe(48);
    expect(check(r, 'alignment').counts.teacher_match_shift_0).toBe(check(r, 'alignment').counts.teacher_eligible_shift_0);
    expect(check(r, 'eos_mask').counts.mask_frac).toBe(1);
  });

  it('the engine-style samples pass too (adapters fix their quirks), with the conversions reported', async () => {
    for (const f of ['vllm.jsonl', 'sglang.jsonl', 'tinker.jsonl']) {
      const d = await loadDump(join(DUMPS, f));
      const r = doctorDump(d);
      expect(r.checks.filter((c) => c.status === 'fail' || c.status === 'warn').map((c) => c.id), f).toEqual([]);
    }
    const tinker = doctorDump(await loadDump(join(DUMPS, 'tinker.jsonl')));
    expect(check(tinker, 'topk_sentinels').counts.converted_topk_sentinel).toBeGreaterThan(0);
    expect(check(tinker, 'topk_sentinels').summary).toMatch(/tinker sentinel slots/);
  });

  it('streamed doctor = in-memory doctor, for any chunk size', async () => {
    const whole = doctorDump(clean);
    for (const tokens of [1, 50, 1 << 20]) {
      const streamed = await doctorSource(await openDump(join(DUMPS, 'sample.jsonl')), {}, tokens);
      expect(streamed.checks.map((c) => [c.id, c.status, c.counts])).toEqual(whole.checks.map((c) => [c.id, c.status, c.counts]));
    }
  });
});

describe('each check fires on a dump built to trip it', () => {
  it('vocab: mismatched sizes (critical), ids out of range (critical), sizes not recorded (warn)', () => {
    let r = run(copies(), { vocabSizeTeacher: 257 });
    expect(check(r, 'vocab').status).toBe('fail');
    expect(r.ok).toBe(false);
    expect(r.criticalFailures).toContain('vocab');
    const s = copies();
    s[3].responseIds[2] = 300;
    s[3].teacherResponseIds![2] = 300;
    r = run(s);
    expect(check(r, 'vocab').status).toBe('fail');
    expect(check(r, 'vocab').counts.ids_out_of_range).toBe(1);
    expect(check(r, 'vocab').examples[0]).toMatch(/position 2: response id 300 outside \[0, 256\)/);
    r = run(copies(), { vocabSizeStudent: undefined, vocabSizeTeacher: undefined });
    expect(check(r, 'vocab').status).toBe('warn');
    expect(r.ok).toBe(true);
  });

  it('teacher_ids: the teacher scored other tokens (critical); not recorded -> skip', () => {
    const s = copies();
    s[5].teacherResponseIds![4] += 1;
    s[9].teacherResponseIds![0] += 1;
    let r = run(s);
    expect(check(r, 'teacher_ids').status).toBe('fail');
    expect(check(r, 'teacher_ids').counts).toMatchObject({ sequences_mismatched: 2, positions_mismatched: 2 });
    expect(r.criticalFailures).toContain('teacher_ids');
    r = run(copies().map((x) => ({ ...x, teacherResponseIds: null })));
    expect(check(r, 'teacher_ids').status).toBe('skip');
  });

  it('alignment: teacher arrays shifted by one position (critical), via the top-K test', () => {
    const s = copies().map((x) => {
      const T = x.responseIds.length;
      const K = x.teacherTopk!.k;
      const lp = x.teacherLp.slice();
      const ids = x.teacherTopk!.ids.slice();
      const tl = x.teacherTopk!.lp.slice();
      // the span [prompt_len + 1, prompt_len + 1 + T): index t holds the teacher's row for token t + 1
      for (let t = 0; t + 1 < T; t++) {
        lp[t] = x.teacherLp[t + 1];
        ids.set(x.teacherTopk!.ids.subarray((t + 1) * K, (t + 2) * K), t * K);
        tl.set(x.teacherTopk!.lp.subarray((t + 1) * K, (t + 2) * K), t * K);
      }
      return { ...x, teacherLp: lp, teacherTopk: { k: K, ids, lp: tl } };
    });
    const r = run(s);
    const a = check(r, 'alignment');
    expect(a.status).toBe('fail');
    expect(a.summary).toMatch(/teacher top-K row t matches teacher_lp\[t\] on token t\+1/);
    expect(r.criticalFailures).toContain('alignment');
  });

  it("alignment: the first position's None/NaN inside the response span (critical)", () => {
    const s = copies();
    for (const x of s) x.teacherLp[0] = NaN;
    const r = run(s);
    expect(check(r, 'alignment').status).toBe('fail');
    expect(check(r, 'alignment').counts.nan_at_first_position).toBe(48);
    expect(check(r, 'non_finite').status).toBe('fail');
  });

  it('alignment without top-K: a shifted teacher_lp is flagged by the correlation test (warn), an aligned one is not', () => {
    const noTopk = copies().map((x) => ({ ...x, teacherTopk: null, studentTopk: null }));
    expect(check(run(noTopk), 'alignment').status).toBe('pass');
    const shifted = noTopk.map((x) => {
      const lp = x.teacherLp.slice();
      for (let t = x.responseIds.length - 1; t > 0; t--) lp[t] = x.teacherLp[t - 1]; // index t scores token t - 1
      return { ...x, teacherLp: lp };
    });
    const a = check(run(shifted), 'alignment');
    expect(a.status).toBe('warn');
    expect(a.summary).toMatch(/correlates better with the student's log-prob of token t-1/);
  });

  it('eos_mask: EOS masked out when pad == eos (fail, not critical); tokens after EOS masked in (warn); unknown eos (skip)', () => {
    const s = copies();
    let masked = 0;
    for (const x of s) {
      const T = x.responseIds.length;
      if (x.responseIds[T - 1] === 2) {
        x.mask[T - 1] = 0;
        masked++;
      }
    }
    let r = run(s, { padId: 2, eosId: 2 });
    expect(check(r, 'eos_mask').status).toBe('fail');
    expect(check(r, 'eos_mask').counts.eos_masked_out).toBe(masked);
    expect(check(r, 'eos_mask').summary).toMatch(/pad_id == eos_id == 2/);
    expect(r.ok).toBe(true); // not critical: the figures still describe what was trained
    expect(check(run(copies(), { padId: 2, eosId: 2 }), 'eos_mask').status).toBe('pass');
    const after = copies();
    const x = after.find((q) => q.responseIds[q.responseIds.length - 1] === 2)!;
    x.responseIds[0] = 2; // an EOS early on, with mask-1 tokens after it
    x.teacherResponseIds![0] = 2;
    expect(check(run(after), 'eos_mask').status).toBe('warn');
    expect(check(run(copies(), { eosId: undefined }), 'eos_mask').status).toBe('skip');
  });

  it('sampling_meta: differing temperatures, missing fields, processed + truncation (warn)', () => {
    let c = check(run(copies(), { teacher: { temperature: 0.6, logprobsMode: 'raw' } }), 'sampling_meta');
    expect(c.status).toBe('warn');
    expect(c.summary).toMatch(/sampler temperature 1 != teacher temperature 0.6/);
    c = check(run(copies(), { sampler: undefined }), 'sampling_meta');
    expect(c.summary).toMatch(/not recorded: sampler.temperature, sampler.logprobs_mode/);
    c = check(run(copies(), { sampler: { temperature: 1, topP: 0.9, topK: 0, logprobsMode: 'processed' } }), 'sampling_meta');
    expect(c.summary).toMatch(/'processed' with top_p\/top_k truncation/);
  });

  it('topk_sentinels: sentinel slots and duplicate ids (warn); no top-K (skip)', () => {
    const s = copies();
    const K = 8;
    for (const x of s.slice(0, 4)) {
      x.teacherTopk!.ids[K - 1] = 0;
      x.teacherTopk!.lp[K - 1] = -99999;
    }
    let c = check(run(s), 'topk_sentinels');
    expect(c.status).toBe('warn');
    expect(c.counts.teacher_sentinel_like).toBe(4);
    const d = copies();
    d[0].studentTopk!.ids[1] = d[0].studentTopk!.ids[0];
    c = check(run(d), 'topk_sentinels');
    expect(c.counts.student_duplicate_ids).toBe(1);
    expect(check(run(copies().map((x) => ({ ...x, teacherTopk: null, studentTopk: null }))), 'topk_sentinels').status).toBe('skip');
  });

  it('teacher_exact_zero: exact 0.0 teacher log-probs (warn)', () => {
    const s = copies();
    s[1].teacherLp[2] = 0;
    s[2].teacherLp[0] = 0;
    const c = check(run(s), 'teacher_exact_zero');
    expect(c.status).toBe('warn');
    expect(c.counts.exact_zero).toBe(2);
  });

  it('non_finite: NaN / -inf at masked-in positions (critical); at masked-out positions it is fine', () => {
    const s = copies();
    s[4].studentLp[3] = NaN;
    s[6].studentEntropy![1] = -Infinity;
    let r = run(s);
    expect(check(r, 'non_finite').status).toBe('fail');
    expect(check(r, 'non_finite').counts).toMatchObject({ student_lp: 1, student_entropy: 1 });
    expect(r.criticalFailures).toContain('non_finite');
    const m = copies();
    m[4].mask[3] = 0;
    m[4].studentLp[3] = NaN;
    r = run(m);
    expect(check(r, 'non_finite').status).toBe('pass');
    expect(check(r, 'non_finite').summary).toMatch(/1 non-finite values sit at masked-out positions/);
  });

  it('value_ranges: log-probs above 0 and top-K mass above 1 (critical), negative KL and bf16 (warn)', () => {
    const s = copies();
    s[0].teacherLp[1] = 0.7; // a logit, not a log-prob
    let r = run(s);
    expect(check(r, 'value_ranges').status).toBe('fail');
    expect(check(r, 'value_ranges').counts.logprob_above_0).toBe(1);
    expect(r.criticalFailures).toContain('value_ranges');
    const m = copies();
    m[2].teacherTopk!.lp[0] = -0.01;
    m[2].teacherTopk!.lp[1] = -0.02;
    expect(check(run(m), 'value_ranges').counts.teacher_topk_mass_above_1).toBe(1);
    const kl = copies().map((x) => ({ ...x, tokenKl: Float64Array.from(x.teacherLp, (_, i) => (i === 0 ? -0.05 : 0.1)) }));
    const c = check(run(kl), 'value_ranges');
    expect(c.status).toBe('warn');
    expect(c.counts.negative_kl).toBe(48);
    const bf = copies().map((x) => ({ ...x, teacherLp: x.teacherLp.map((v) => bf16ToFloat(floatToBf16(v))) }));
    expect(check(run(bf), 'value_ranges').summary).toMatch(/100% of teacher log-probs are exactly bfloat16 values/);
  });

  it('sampler_vs_recomputed: large gaps and exact zeros (warn)', () => {
    const s = copies();
    let n = 0;
    for (const x of s) for (let i = 0; i < x.studentLp.length; i += 5) { x.studentLp[i] += 0.5; n++; }
    let c = check(run(s), 'sampler_vs_recomputed');
    expect(c.status).toBe('warn');
    expect(c.counts.gap_above_threshold).toBe(n);
    const z = copies();
    for (const x of z) for (let i = 0; i < x.studentLp.length; i += 3) x.studentLp[i] = 0;
    c = check(run(z.map((x) => ({ ...x, studentLpTrain: null }))), 'sampler_vs_recomputed');
    expect(c.status).toBe('warn');
    expect(c.summary).toMatch(/exactly 0 \(tinker-cookbook #396/);
  });
});
