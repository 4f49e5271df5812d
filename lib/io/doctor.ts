/**
 * The dump doctor (ecosystem.md section 2.4): checks a dump before any figure is drawn. Each check reports
 * pass, warn or fail (or skip when the dump lacks what it needs) with counts and a few examples; a failure of a
 * `critical` check means the figures would be wrong (not just surprising), and the report refuses to run
 * unless forced. It is one pass over token chunks, so it runs on dumps larger than memory.
 *
 *   vocab                 recorded vocab sizes agree (config.vocab_size, TRL #2215); every id in [0, V)       critical
 *   teacher_ids           the ids the teacher scored equal the response ids (renderer / template mismatch,
 *                         tinker-cookbook #796; a teacher server returning other tokens, ms-swift #9671)         critical
 *   alignment             index t scores token t: (a) a NaN/None teacher_lp at response position 0 is the
 *                         engine's first-prompt-position None leaking in; (b) where the teacher's top-K row t
 *                         holds token y_{t+s}, its log-prob equals teacher_lp[t] for s = 0 only (the same for
 *                         the student's top-K and student_lp); (c) without top-K, teacher_lp[t] should correlate
 *                         best with the student's log-prob of the same token (a weak signal: warn only)          critical
 *   eos_mask              with pad == eos, EOS must stay in the loss mask ("the student never learns to stop",
 *                         TRL #6357); tokens after EOS should be masked out
 *   sampling_meta         sampler and teacher temperature and logprobs_mode recorded; warns when they differ
 *                         (KL(pT || q_T) vs KL(pT || q_1), verl #5592) and on top-p/top-k renormalised
 *                         processed log-probs (a log S offset, vLLM RFC #42259)
 *   topk_sentinels        sentinel slots (-99999, id 0: tinker) left in the data, duplicate ids in a row, and what
 *                         the engine adapter converted (extra chosen-token entries, 0-based ranks)
 *   teacher_exact_zero    teacher log-probs exactly 0.0 (template tokens after re-rendering, rllm #356; P = 1 is
 *                         legal, LightRFT #43, so a warning)
 *   non_finite            NaN or +-Infinity where the mask is 1 (padding may hold anything: never read)       critical
 *   value_ranges          log-probs above 0, top-K mass above 1 (logits instead of log-probs?)                critical
 *                         negative entropy or per-token KL, and bfloat16-quantised log-probs (ms-swift #10175): warn
 *   sampler_vs_recomputed sampler vs recomputed student log-prob gap and the share of exact zeros
 *                         (tinker-cookbook #396)
 */
import type { TokenChunk } from './chunk';
import { bf16ToFloat, floatToBf16 } from './dtype';
import type { DumpMeta } from './schema';
import type { Conversion } from './source';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** A failure of this check stops the report (unless forced). */
  critical: boolean;
  /** One line: what was found. */
  summary: string;
  counts: Record<string, number>;
  /** Up to `maxExamples` concrete cases: sample id, where, what. */
  examples: string[];
  /** What to do about it (failures and warnings). */
  hint: string | null;
}

export interface DoctorReport {
  checks: CheckResult[];
  /** False when a critical check failed. */
  ok: boolean;
  criticalFailures: string[];
  sequences: number;
  tokens: number;
}

export interface DoctorOptions {
  /** Examples kept per check. Default 5. */
  maxExamples: number;
  /** |a - b| <= atol + rtol |b| counts as the same log-prob in the alignment check. Default 1e-3 / 1e-3. */
  alignAtol: number;
  alignRtol: number;
  /** Fewest matching candidates for the top-K alignment test to decide. Default 20. */
  alignMinEligible: number;
  /** |student_lp - student_lp_train| above this counts as a gap. Default 0.1 nats. */
  gapThreshold: number;
  /** Warn when more than this share of tokens has a gap above gapThreshold. Default 0.05. */
  gapWarnFrac: number;
  /** Warn when more than this share of sampler log-probs is exactly 0. Default 0.05. */
  zeroWarnFrac: number;
  /** Warn on bf16-looking log-probs when at least this share is exactly bf16-representable (n >= 100). Default 0.98. */
  bf16Frac: number;
}

export const DEFAULT_DOCTOR: Readonly<DoctorOptions> = {
  maxExamples: 5,
  alignAtol: 1e-3,
  alignRtol: 1e-3,
  alignMinEligible: 20,
  gapThreshold: 0.1,
  gapWarnFrac: 0.05,
  zeroWarnFrac: 0.05,
  bf16Frac: 0.98,
};

/** Counters with examples. */
class Tally {
  readonly counts: Record<string, number> = {};
  readonly examples: string[] = [];
  constructor(private readonly max: number) {}
  inc(key: string, by = 1): void {
    this.counts[key] = (this.counts[key] ?? 0) + by;
  }
  example(text: string): void {
    if (this.examples.length < this.max) this.examples.push(text);
  }
}

/** Pearson-correlation sums. */
class Corr {
  n = 0; sx = 0; sy = 0; sxx = 0; syy = 0; sxy = 0;
  add(x: number, y: number): void {
    this.n++; this.sx += x; this.sy += y; this.sxx += x * x; this.syy += y * y; this.sxy += x * y;
  }
  value(): number {
    const n = this.n;
    if (n < 3) return NaN;
    const cov = this.sxy - (this.sx * this.sy) / n;
    const vx = this.sxx - (this.sx * this.sx) / n;
    const vy = this.syy - (this.sy * this.sy) / n;
    return vx > 0 && vy > 0 ? cov / Math.sqrt(vx * vy) : NaN;
  }
}

const SHIFTS = [-1, 0, 1] as const;

const fmt = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x));
const pct = (x: number) => `${Number((100 * x).toPrecision(3))}%`;

/** One pass of checks over chunks; `finish` turns the tallies into a report. */
export class DumpDoctor {
  private readonly o: DoctorOptions;
  private sequences = 0;
  private tokens = 0;
  private maskedIn = 0;
  private readonly t: Record<string, Tally> = {};
  private readonly align = { teacher: SHIFTS.map(() => ({ eligible: 0, match: 0 })), student: SHIFTS.map(() => ({ eligible: 0, match: 0 })) };
  private readonly corr = SHIFTS.map(() => new Corr());
  private maxId = -1;
  private gapAbsSum = 0;
  private gapAbsMax = 0;
  private gapCount = 0;
  private bf16Exact = 0;
  private bf16Checked = 0;
  private hasTeacherTopk = false;
  private hasStudentTopk = false;
  private hasTrain = false;
  private hasTeacherIds = false;
  private sentinelTopkLp = 0;

  constructor(readonly meta: DumpMeta, options: Partial<DoctorOptions> = {}) {
    this.o = { ...DEFAULT_DOCTOR, ...options };
    for (const id of ['vocab', 'teacher_ids', 'alignment', 'eos_mask', 'topk_sentinels', 'teacher_exact_zero', 'non_finite', 'value_ranges', 'sampler_vs_recomputed']) this.t[id] = new Tally(this.o.maxExamples);
  }

  private where(c: TokenChunk, s: number, pos: number): string {
    return `sample ${JSON.stringify(c.sampleIds[s])} (${c.origins[s]}) position ${pos}`;
  }

  add(c: TokenChunk): void {
    this.sequences += c.S;
    this.tokens += c.N;
    if (c.teacherTopk) this.hasTeacherTopk = true;
    if (c.studentTopk) this.hasStudentTopk = true;
    if (c.studentLpTrain) this.hasTrain = true;
    if (c.teacherResponseIds) this.hasTeacherIds = true;
    const V = this.vocabBound();
    const eos = this.meta.eosId;
    const tv = this.t.vocab, ti = this.t.teacher_ids, ta = this.t.alignment, te = this.t.eos_mask;
    const tz = this.t.teacher_exact_zero, tn = this.t.non_finite, tr = this.t.value_ranges, tg = this.t.sampler_vs_recomputed, tk = this.t.topk_sentinels;
    const floatFields: [string, Float64Array | null][] = [['teacher_lp', c.teacherLp], ['student_lp', c.studentLp], ['student_lp_train', c.studentLpTrain], ['student_entropy', c.studentEntropy], ['teacher_entropy', c.teacherEntropy], ['token_kl', c.tokenKl]];

    for (let s = 0; s < c.S; s++) {
      const a = c.offsets[s];
      const b = c.offsets[s + 1];
      let idMismatch = -1;
      let shiftedIds = 0;
      let eosAt = -1;
      for (let i = a; i < b; i++) {
        const pos = i - a;
        const y = c.responseIds[i];
        const m = c.mask[i];
        if (y > this.maxId) this.maxId = y;
        if (y < 0 || (V !== null && y >= V)) {
          tv.inc('ids_out_of_range');
          tv.example(`${this.where(c, s, pos)}: response id ${y} outside [0, ${V ?? '?'})`);
        }
        if (c.teacherResponseIds) {
          const yt = c.teacherResponseIds[i];
          if (yt !== y) {
            ti.inc('positions_mismatched');
            if (idMismatch < 0) idMismatch = pos;
            if (i + 1 < b && yt === c.responseIds[i + 1]) shiftedIds++;
          }
        }
        // EOS
        if (eos !== undefined && y === eos) {
          if (eosAt < 0) {
            eosAt = pos;
            te.inc('sequences_with_eos');
            if (m === 0) {
              te.inc('eos_masked_out');
              te.example(`${this.where(c, s, pos)}: EOS (id ${eos}) has mask 0`);
            }
          }
        } else if (eosAt >= 0 && m !== 0) {
          te.inc('tokens_after_eos_masked_in');
        }
        if (m === 0) {
          for (let f = 0; f < floatFields.length; f++) {
            const arr = floatFields[f][1];
            if (arr && !(arr[i] - arr[i] === 0)) tn.inc(`masked_out_${floatFields[f][0]}`);
          }
          continue;
        }
        this.maskedIn++;
        // non-finite at masked-in positions
        for (let f = 0; f < floatFields.length; f++) {
          const arr = floatFields[f][1];
          if (arr && !(arr[i] - arr[i] === 0)) {
            const name = floatFields[f][0];
            tn.inc(name);
            tn.example(`${this.where(c, s, pos)}: ${name} = ${arr[i]} with mask 1`);
          }
        }
        const lT = c.teacherLp[i];
        const lS = c.studentLp[i];
        if (pos === 0 && Number.isNaN(lT)) ta.inc('nan_at_first_position');
        if (lT === 0) {
          tz.inc('exact_zero');
          tz.example(`${this.where(c, s, pos)}: teacher_lp = 0.0 (token ${y})`);
        }
        // log-probs above 0
        const lTr = c.studentLpTrain ? c.studentLpTrain[i] : NaN;
        if (lT > 1e-6 || lS > 1e-6 || lTr > 1e-6) {
          for (const [name, v] of [['teacher_lp', lT], ['student_lp', lS], ['student_lp_train', lTr]] as const) {
            if (v > 1e-3) {
              tr.inc('logprob_above_0');
              tr.example(`${this.where(c, s, pos)}: ${name} = ${fmt(v)} > 0 (not a log-probability)`);
            } else if (v > 1e-6) tr.inc('logprob_slightly_above_0');
          }
        }
        if ((c.studentEntropy && c.studentEntropy[i] < -1e-6) || (c.teacherEntropy && c.teacherEntropy[i] < -1e-6)) {
          for (const [name, arr] of [['student_entropy', c.studentEntropy], ['teacher_entropy', c.teacherEntropy]] as const) {
            if (arr && arr[i] < -1e-6) {
              tr.inc('negative_entropy');
              tr.example(`${this.where(c, s, pos)}: ${name} = ${fmt(arr[i])} < 0`);
            }
          }
        }
        if (c.tokenKl && c.tokenKl[i] < -1e-6) {
          tr.inc('negative_kl');
          if (!(tr.counts.min_kl <= c.tokenKl[i])) tr.counts.min_kl = c.tokenKl[i];
          tr.example(`${this.where(c, s, pos)}: token_kl = ${fmt(c.tokenKl[i])} < 0`);
        }
        // a sample is enough to recognise bf16-quantised values (a float32 value is bf16-exact with chance 2^-16)
        if (this.bf16Checked < 100_000 && Number.isFinite(lT) && lT !== 0) {
          this.bf16Checked++;
          if (bf16ToFloat(floatToBf16(lT)) === lT) this.bf16Exact++;
        }
        // sampler vs recomputed
        if (lS === 0) tg.inc('sampler_exact_zero');
        if (c.studentLpTrain) {
          const d = lS - c.studentLpTrain[i];
          if (Number.isFinite(d)) {
            const ad = Math.abs(d);
            this.gapAbsSum += ad;
            this.gapCount++;
            if (ad > this.gapAbsMax) this.gapAbsMax = ad;
            if (ad > this.o.gapThreshold) {
              tg.inc('gap_above_threshold');
              tg.example(`${this.where(c, s, pos)}: student_lp ${fmt(lS)} vs student_lp_train ${fmt(c.studentLpTrain[i])}`);
            }
          }
        }
        // alignment, correlation form: teacher_lp[t] vs the student's log-prob of token t + s
        for (let k = 0; k < SHIFTS.length; k++) {
          const j = i + SHIFTS[k];
          if (j < a || j >= b || c.mask[j] === 0) continue;
          const x = lT;
          const yv = c.studentLpTrain ? c.studentLpTrain[j] : c.studentLp[j];
          if (Number.isFinite(x) && Number.isFinite(yv)) this.corr[k].add(x, yv);
        }
        // alignment, top-K form
        if (c.teacherTopk || c.studentTopk) for (const [side, topk, lp] of [['teacher', c.teacherTopk, c.teacherLp], ['student', c.studentTopk, c.studentLp]] as const) {
          if (!topk) continue;
          const K = topk.k;
          for (let k = 0; k < SHIFTS.length; k++) {
            const j = i + SHIFTS[k];
            if (j < a || j >= b) continue;
            const target = c.responseIds[j];
            for (let q = 0; q < K; q++) {
              if (topk.ids[i * K + q] !== target) continue;
              const acc = this.align[side][k];
              acc.eligible++;
              const v = topk.lp[i * K + q];
              const close = (ref: number) => Math.abs(v - ref) <= this.o.alignAtol + this.o.alignRtol * Math.abs(ref);
              // the student's top-K may come from the sampler's pass or the trainer's: either log-prob counts
              if (close(lp[i]) || (side === 'student' && c.studentLpTrain !== null && close(c.studentLpTrain[i]))) acc.match++;
              break;
            }
          }
        }
      }
      if (idMismatch >= 0) {
        ti.inc('sequences_mismatched');
        if (shiftedIds > 0) ti.inc('positions_shifted_by_one', shiftedIds);
        const i = a + idMismatch;
        ti.example(`${this.where(c, s, idMismatch)}: response id ${c.responseIds[i]}, teacher scored ${c.teacherResponseIds![i]}`);
      }
    }
    // top-K content (every row, masked or not: ids must be valid everywhere they are given)
    for (const [side, topk] of [['teacher', c.teacherTopk], ['student', c.studentTopk]] as const) {
      if (!topk) continue;
      const K = topk.k;
      for (let i = 0; i < c.N; i++) {
        let mass = 0;
        for (let q = 0; q < K; q++) {
          const id = topk.ids[i * K + q];
          const v = topk.lp[i * K + q];
          if (id === -1 && v === -Infinity) {
            tk.inc(`${side}_empty_slots`);
            continue;
          }
          if (id > this.maxId) this.maxId = id;
          if (id < 0 || (V !== null && id >= V)) {
            tv.inc('ids_out_of_range');
            tv.example(`${side} top-K row ${i} of ${c.origins[this.seqOf(c, i)]}: id ${id} outside [0, ${V ?? '?'})`);
          }
          if (v <= -1e4 && Number.isFinite(v)) {
            tk.inc(`${side}_sentinel_like`);
            this.sentinelTopkLp++;
            tk.example(`${side} top-K of ${c.origins[this.seqOf(c, i)]} position ${i - c.offsets[this.seqOf(c, i)]}: (id ${id}, log-prob ${v}) looks like an empty-slot sentinel`);
          }
          if (Number.isNaN(v) && c.mask[i] !== 0) {
            tn.inc(`${side}_topk_lp`);
            tn.example(`${side} top-K of ${c.origins[this.seqOf(c, i)]} position ${i - c.offsets[this.seqOf(c, i)]}: log-prob NaN`);
          }
          if (v > 1e-3) tr.inc('logprob_above_0');
          if (Number.isFinite(v)) mass += Math.exp(v);
          for (let r = 0; r < q; r++) {
            if (topk.ids[i * K + r] === id) {
              tk.inc(`${side}_duplicate_ids`);
              break;
            }
          }
        }
        if (mass > 1 + 1e-3 && c.mask[i] !== 0) {
          tr.inc(`${side}_topk_mass_above_1`);
          tr.example(`${side} top-K of ${c.origins[this.seqOf(c, i)]} position ${i - c.offsets[this.seqOf(c, i)]}: sum exp(log-prob) = ${fmt(mass)} > 1`);
        }
      }
    }
  }

  private seqOf(c: TokenChunk, i: number): number {
    let lo = 0, hi = c.S - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (c.offsets[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private vocabBound(): number | null {
    const { vocabSizeStudent: vs, vocabSizeTeacher: vt } = this.meta;
    if (vs === undefined && vt === undefined) return null;
    return Math.min(vs ?? Infinity, vt ?? Infinity);
  }

  finish(conversions: Record<string, Conversion> = {}): DoctorReport {
    const checks: CheckResult[] = [
      this.checkVocab(),
      this.checkTeacherIds(),
      this.checkAlignment(conversions),
      this.checkEos(),
      this.checkSamplingMeta(),
      this.checkTopk(conversions),
      this.checkExactZero(),
      this.checkNonFinite(),
      this.checkRanges(),
      this.checkSamplerGap(),
    ];
    const criticalFailures = checks.filter((c) => c.critical && c.status === 'fail').map((c) => c.id);
    return { checks, ok: criticalFailures.length === 0, criticalFailures, sequences: this.sequences, tokens: this.tokens };
  }

  private result(id: string, title: string, status: CheckStatus, critical: boolean, summary: string, hint: string | null, extraCounts: Record<string, number> = {}): CheckResult {
    const t = this.t[id];
    return { id, title, status, critical, summary, counts: { ...(t?.counts ?? {}), ...extraCounts }, examples: t ? [...t.examples] : [], hint: status === 'pass' || status === 'skip' ? null : hint };
  }

  private checkVocab(): CheckResult {
    const { vocabSizeStudent: vs, vocabSizeTeacher: vt } = this.meta;
    const out = this.t.vocab.counts.ids_out_of_range ?? 0;
    const extra = { max_id_seen: this.maxId, ...(vs !== undefined ? { vocab_size_s: vs } : {}), ...(vt !== undefined ? { vocab_size_t: vt } : {}) };
    if (vs !== undefined && vt !== undefined && vs !== vt) {
      return this.result('vocab', 'vocabulary sizes and token ids', 'fail', true, `student vocab_size ${vs} != teacher vocab_size ${vt}: per-token distributions over the vocabulary do not line up${out ? `; ${out} ids out of range` : ''}`,
        'token-level KL needs one vocabulary (TRL #2215: compare config.vocab_size, not the tokenizer length); a cross-tokenizer pair needs byte-offset alignment (GOLD), not this report', extra);
    }
    if (out > 0) {
      return this.result('vocab', 'vocabulary sizes and token ids', 'fail', true, `${out} token ids outside [0, ${this.vocabBound() ?? '?'})`, 'ids past the vocabulary mean another tokenizer or a corrupt dump; check vocab_size_s / vocab_size_t and the id columns', extra);
    }
    if (vs === undefined || vt === undefined) {
      return this.result('vocab', 'vocabulary sizes and token ids', 'warn', true, `vocab_size_${vs === undefined ? 's' : 't'}${vs === undefined && vt === undefined ? ' and vocab_size_t are' : ' is'} not recorded: cannot check the two vocabularies match (largest id seen: ${this.maxId})`,
        "record both models' config.vocab_size in the run metadata (vocab_size_s, vocab_size_t)", extra);
    }
    return this.result('vocab', 'vocabulary sizes and token ids', 'pass', true, `vocab_size ${vs} on both sides; every id in range (largest ${this.maxId})`, null, extra);
  }

  private checkTeacherIds(): CheckResult {
    const title = 'teacher scored the same tokens';
    if (!this.hasTeacherIds) return this.result('teacher_ids', title, 'skip', true, 'teacher_response_ids not recorded: cannot check the teacher scored the response ids', 'record the ids the teacher scored (its prompt_token_ids / input_token_logprobs ids) as teacher_response_ids');
    const n = this.t.teacher_ids.counts.sequences_mismatched ?? 0;
    if (n > 0) {
      const shifted = this.t.teacher_ids.counts.positions_shifted_by_one ?? 0;
      return this.result('teacher_ids', title, 'fail', true, `${n} of ${this.sequences} sequences: the teacher scored other tokens than the student sampled (${this.t.teacher_ids.counts.positions_mismatched} positions${shifted ? `, ${shifted} of them the next token: an off-by-one shift` : ''})`,
        'a different chat template / renderer for the teacher re-tokenises the response (tinker-cookbook #796: +0.287 nats/token bias); score the exact student ids with the teacher');
    }
    return this.result('teacher_ids', title, 'pass', true, `the teacher scored exactly the response ids in all ${this.sequences} sequences`, null);
  }

  private checkAlignment(conversions: Record<string, Conversion>): CheckResult {
    const title = 'off-by-one alignment (index t scores token t)';
    const nanFirst = this.t.alignment.counts.nan_at_first_position ?? 0;
    const parts: string[] = [];
    let status: CheckStatus = 'pass';
    const worse = (s: CheckStatus) => {
      const order = { pass: 0, skip: 0, warn: 1, fail: 2 };
      if (order[s] > order[status]) status = s;
    };
    const rateText = (side: 'teacher' | 'student') => this.align[side].map((r, k) => `s=${SHIFTS[k] > 0 ? '+' : ''}${SHIFTS[k]}: ${r.eligible ? pct(r.match / r.eligible) : '-'} of ${r.eligible}`).join(', ');
    const extra: Record<string, number> = {};
    if (nanFirst > 0) {
      worse('fail');
      parts.push(`${nanFirst} sequences have teacher_lp NaN/None at response position 0 (the first prompt position's None/NaN inside the response span: shifted by one)`);
    }
    let decided = false;
    for (const side of ['teacher', 'student'] as const) {
      if (side === 'teacher' ? !this.hasTeacherTopk : !this.hasStudentTopk) continue;
      const r = this.align[side];
      r.forEach((x, k) => {
        extra[`${side}_eligible_shift_${SHIFTS[k]}`] = x.eligible;
        extra[`${side}_match_shift_${SHIFTS[k]}`] = x.match;
      });
      const rate = r.map((x) => (x.eligible >= this.o.alignMinEligible ? x.match / x.eligible : NaN));
      const r0 = rate[1];
      const shifted = [0, 2].filter((k) => rate[k] >= 0.9 && !(r0 >= 0.5));
      const lpName = side === 'teacher' ? 'teacher_lp' : 'student_lp';
      if (shifted.length > 0) {
        worse('fail');
        decided = true;
        parts.push(`${side} top-K row t matches ${lpName}[t] on token t${SHIFTS[shifted[0]] > 0 ? '+' : ''}${SHIFTS[shifted[0]]}, not on token t (${rateText(side)})`);
      } else if (r0 >= 0.9) {
        decided = true;
        parts.push(`${side} top-K agrees with ${lpName} on the same token (${rateText(side)})`);
      } else if (Number.isFinite(r0)) {
        worse('warn');
        decided = true;
        parts.push(`${side} top-K entry of the sampled token differs from ${lpName} in ${pct(1 - r0)} of ${r[1].eligible} positions (${rateText(side)}): different passes, temperatures or modes?`);
      } else parts.push(`${side} top-K: too few positions where the sampled token is in the top-K to decide (${rateText(side)})`);
    }
    if (!decided) {
      const cs = this.corr.map((c) => c.value());
      cs.forEach((v, k) => (extra[`corr_shift_${SHIFTS[k]}`] = v));
      const best = [0, 2].find((k) => cs[k] > 0.3 && cs[k] > cs[1] + 0.1);
      if (best !== undefined) {
        worse('warn');
        parts.push(`teacher_lp[t] correlates better with the student's log-prob of token t${SHIFTS[best] > 0 ? '+' : ''}${SHIFTS[best]} (${fmt(cs[best])}) than of token t (${fmt(cs[1])}): a shifted span?`);
      } else if (Number.isFinite(cs[1])) parts.push(`no top-K to test with; teacher/student log-prob correlation is highest without a shift (s=-1: ${fmt(cs[0])}, 0: ${fmt(cs[1])}, +1: ${fmt(cs[2])})`);
      else parts.push('no top-K and too few tokens to test alignment');
    }
    const conv = ['first_position_none', 'first_position_null', 'first_position_nan'].map((k) => conversions[k]).filter((x) => x);
    if (conv.length > 0) parts.push(`adapter dropped the engine's first-position None/null/NaN in ${conv.reduce((a, c) => a + c.count, 0)} sequences`);
    if (conversions.none_inside_response) worse('fail');
    return this.result('alignment', title, status, true, parts.join('; '),
      "index t must hold log p(y_t | prompt, y_<t): vLLM prompt_logprobs[0] is None, SGLang input_token_logprobs[0][0] is null, tinker prompt_logprobs[0] is NaN, and the tinker cookbook uses teacher_lp[1:]; slice the response span as [prompt_len : prompt_len + T] of the full-sequence array", extra);
  }

  private checkEos(): CheckResult {
    const title = 'EOS inside the mask (pad == eos)';
    const { eosId, padId } = this.meta;
    const extra = { masked_in: this.maskedIn, tokens: this.tokens, mask_frac: this.tokens ? this.maskedIn / this.tokens : NaN };
    if (eosId === undefined) return this.result('eos_mask', title, 'skip', false, 'eos_id not recorded: cannot check that EOS stays in the loss mask', 'record eos_id and pad_id in the run metadata', extra);
    const c = this.t.eos_mask.counts;
    const withEos = c.sequences_with_eos ?? 0;
    const masked = c.eos_masked_out ?? 0;
    const after = c.tokens_after_eos_masked_in ?? 0;
    const same = padId !== undefined && padId === eosId;
    const coverage = `${withEos} of ${this.sequences} sequences end with EOS`;
    if (masked > 0) {
      return this.result('eos_mask', title, same ? 'fail' : 'warn', false, `${coverage}; in ${masked} of them EOS has mask 0${same ? ` (pad_id == eos_id == ${eosId}: padding was masked by id, which masks EOS too)` : ''}`,
        'keep EOS in the loss mask, otherwise the student never learns to stop (TRL #6357); build masks from lengths, never from the pad id', extra);
    }
    if (after > 0) return this.result('eos_mask', title, 'warn', false, `${coverage}; ${after} tokens after an EOS have mask 1`, 'tokens after EOS are padding and should be masked out (TRL #2058)', extra);
    return this.result('eos_mask', title, 'pass', false, `${coverage}; EOS always in the mask${same ? ' (pad_id == eos_id, handled)' : ''}; ${pct(extra.mask_frac)} of tokens masked in`, null, extra);
  }

  private checkSamplingMeta(): CheckResult {
    const title = 'temperatures and logprobs mode';
    const s = this.meta.sampler ?? {};
    const t = this.meta.teacher ?? {};
    const missing: string[] = [];
    if (s.temperature === undefined) missing.push('sampler.temperature');
    if (s.logprobsMode === undefined) missing.push('sampler.logprobs_mode');
    if (t.temperature === undefined) missing.push('teacher.temperature');
    if (t.logprobsMode === undefined) missing.push('teacher.logprobs_mode');
    const warnings: string[] = [];
    if (s.temperature !== undefined && t.temperature !== undefined && s.temperature !== t.temperature) {
      warnings.push(`sampler temperature ${s.temperature} != teacher temperature ${t.temperature}: the KL is against a student at another temperature (KL(pT || q_T) vs KL(pT || q_1)); fine if deliberate (verl #5592)`);
    }
    for (const [who, x] of [['sampler', s], ['teacher', t]] as const) {
      const truncated = (x.topP !== undefined && x.topP < 1) || (x.topK !== undefined && x.topK > 0);
      if (x.logprobsMode === 'processed' && truncated) warnings.push(`${who} log-probs are 'processed' with top_p/top_k truncation: renormalised over the kept support, a log S offset in every ratio (vLLM RFC #42259)`);
      if (x.logprobsMode === 'raw' && x.temperature !== undefined && x.temperature !== 1) warnings.push(`${who} log-probs are 'raw' but the temperature is ${x.temperature}: they are log p at T = 1, not of the distribution sampled`);
    }
    const desc = `sampler {T ${s.temperature ?? '?'}, top_p ${s.topP ?? '?'}, top_k ${s.topK ?? '?'}, ${s.logprobsMode ?? '?'}}, teacher {T ${t.temperature ?? '?'}, ${t.logprobsMode ?? '?'}}`;
    if (missing.length > 0) warnings.unshift(`not recorded: ${missing.join(', ')}`);
    if (warnings.length > 0) return this.result('sampling_meta', title, 'warn', false, `${desc}. ${warnings.join('. ')}`, 'record sampler and teacher {temperature, top_p, top_k, logprobs_mode} with the dump (slime #2085: a teacher scored at temperature 0; SGLang prefill log-probs ignore temperature, slime #2319)');
    return this.result('sampling_meta', title, 'pass', false, `${desc}: recorded and consistent`, null);
  }

  private checkTopk(conversions: Record<string, Conversion>): CheckResult {
    const title = 'top-K sentinels and engine conventions';
    if (!this.hasTeacherTopk && !this.hasStudentTopk) return this.result('topk_sentinels', title, 'skip', false, 'no top-K arrays in the dump', null);
    const c = this.t.topk_sentinels.counts;
    const parts: string[] = [];
    let status: CheckStatus = 'pass';
    const sentinels = (c.teacher_sentinel_like ?? 0) + (c.student_sentinel_like ?? 0);
    const dups = (c.teacher_duplicate_ids ?? 0) + (c.student_duplicate_ids ?? 0);
    if (sentinels > 0) {
      status = 'warn';
      parts.push(`${sentinels} top-K slots hold sentinel-like log-probs (<= -1e4, e.g. tinker's -99999 with id 0): they are empty slots, not tokens`);
    }
    if (dups > 0) {
      status = 'warn';
      parts.push(`${dups} rows repeat a token id (repeated sentinel ids, or an extra chosen-token entry appended twice?)`);
    }
    const extra: Record<string, number> = {};
    for (const [key, conv] of Object.entries(conversions)) {
      if (!/sentinel|extra_chosen|rank|k_ambiguous/.test(key)) continue;
      extra[`converted_${key}`] = conv.count;
      parts.push(`adapter: ${conv.note} (${conv.count}x)`);
      if (/zero_based_rank|k_ambiguous/.test(key)) status = 'warn';
    }
    const empty = (c.teacher_empty_slots ?? 0) + (c.student_empty_slots ?? 0);
    if (empty > 0) parts.push(`${empty} empty slots (shorter rows)`);
    if (parts.length === 0) parts.push('no sentinels, no duplicate ids');
    return this.result('topk_sentinels', title, status, false, parts.join('; '), "drop sentinel slots (tinker: token_id 0 with logprob -99999; read the dump with --format tinker) and vLLM's extra chosen-token entry (k + 1 entries; ranks are 1-based)", extra);
  }

  private checkExactZero(): CheckResult {
    const n = this.t.teacher_exact_zero.counts.exact_zero ?? 0;
    const title = 'teacher log-probs exactly 0.0';
    if (n > 0) {
      return this.result('teacher_exact_zero', title, 'warn', false, `${n} masked-in tokens (${pct(n / Math.max(1, this.maskedIn))}) have teacher_lp exactly 0.0`,
        'exact zeros are typical of template tokens re-rendered for the teacher (rllm #356) or of a zero used as padding; P = 1 is legal, so mask by position, never by value (LightRFT #43)', { frac: n / Math.max(1, this.maskedIn) });
    }
    return this.result('teacher_exact_zero', title, 'pass', false, 'no masked-in teacher log-prob is exactly 0.0', null);
  }

  private checkNonFinite(): CheckResult {
    const c = this.t.non_finite.counts;
    const inside = Object.entries(c).filter(([k]) => !k.startsWith('masked_out_'));
    const outside = Object.entries(c).filter(([k]) => k.startsWith('masked_out_')).reduce((a, [, v]) => a + v, 0);
    const title = 'NaN or infinite values where the mask is 1';
    const note = outside > 0 ? `; ${outside} non-finite values sit at masked-out positions (never read: fine)` : '';
    if (inside.length > 0) {
      return this.result('non_finite', title, 'fail', true, `${inside.map(([k, v]) => `${k}: ${v}`).join(', ')} non-finite values at masked-in positions${note}`,
        'a NaN/-inf log-prob at a counted token is usually padding or a first-position None inside the span; fix the mask or the span (masks come from lengths, never from values)');
    }
    return this.result('non_finite', title, 'pass', true, `every masked-in value is finite${note}`, null);
  }

  private checkRanges(): CheckResult {
    const c = this.t.value_ranges.counts;
    const title = 'log-probs <= 0, top-K mass <= 1, KL >= 0, precision';
    const fails: string[] = [];
    const warns: string[] = [];
    if (c.logprob_above_0) fails.push(`${c.logprob_above_0} log-probs above 1e-3 (logits stored instead of log-probs? NeMo RL dumps top-K logits)`);
    for (const side of ['teacher', 'student']) if (c[`${side}_topk_mass_above_1`]) fails.push(`${c[`${side}_topk_mass_above_1`]} ${side} top-K rows with total probability above 1`);
    if (c.logprob_slightly_above_0) warns.push(`${c.logprob_slightly_above_0} log-probs in (1e-6, 1e-3]: rounding in low precision?`);
    if (c.negative_entropy) warns.push(`${c.negative_entropy} negative entropies`);
    if (c.negative_kl) warns.push(`${c.negative_kl} negative per-token KL values (min ${fmt(c.min_kl)}): bf16 teacher logits give negative KL/JSD; promote to float32 (ms-swift #10175)`);
    const bf16Share = this.bf16Checked > 0 ? this.bf16Exact / this.bf16Checked : NaN;
    if (this.bf16Checked >= 100 && bf16Share >= this.o.bf16Frac) warns.push(`${pct(bf16Share)} of teacher log-probs are exactly bfloat16 values: computed in bf16 (relative error up to 0.4 %)${this.meta.dtype ? ` (meta dtype: ${this.meta.dtype})` : ''}`);
    const extra = { bf16_share: bf16Share };
    if (fails.length > 0) return this.result('value_ranges', title, 'fail', true, [...fails, ...warns].join('; '), 'store log-probabilities (log-softmax of the logits at the recorded temperature), in float32', extra);
    if (warns.length > 0) return this.result('value_ranges', title, 'warn', true, warns.join('; '), 'compute log-softmax and divergences in float32 (ms-swift #10175: bf16 teacher logits gave negative JSD)', extra);
    return this.result('value_ranges', title, 'pass', true, 'log-probs <= 0, top-K masses <= 1, no negative entropy or KL, no sign of bf16 quantisation', null, extra);
  }

  private checkSamplerGap(): CheckResult {
    const title = 'sampler vs recomputed student log-prob';
    const c = this.t.sampler_vs_recomputed.counts;
    const zeros = c.sampler_exact_zero ?? 0;
    const zeroFrac = zeros / Math.max(1, this.maskedIn);
    const s = this.meta.sampler ?? {};
    const truncated = (s.topP !== undefined && s.topP < 1) || (s.topK !== undefined && s.topK > 0);
    const expected = (s.temperature !== undefined && s.temperature !== 1) || (s.logprobsMode === 'processed' && truncated) ? ` (expected to differ: the sampler's log-probs are ${s.logprobsMode ?? '?'} at T ${s.temperature ?? '?'})` : '';
    const extra: Record<string, number> = { sampler_exact_zero_frac: zeroFrac };
    const warns: string[] = [];
    if (zeroFrac > this.o.zeroWarnFrac) warns.push(`${pct(zeroFrac)} of sampler log-probs are exactly 0 (tinker-cookbook #396: sampler log-probs had much lower entropy and many exact zeros; recompute them)`);
    if (!this.hasTrain) {
      if (warns.length > 0) return this.result('sampler_vs_recomputed', title, 'warn', false, warns.join('; '), 'recompute the student log-probs with the trainer (compute_logprobs) and store them as student_lp_train', extra);
      return this.result('sampler_vs_recomputed', title, 'pass', false, 'only sampler log-probs recorded (student_lp); the advantage uses them, tinker-style', null, extra);
    }
    const mean = this.gapCount ? this.gapAbsSum / this.gapCount : NaN;
    const above = c.gap_above_threshold ?? 0;
    const frac = above / Math.max(1, this.gapCount);
    Object.assign(extra, { gap_abs_mean: mean, gap_abs_max: this.gapAbsMax, gap_above_frac: frac });
    if (frac > this.o.gapWarnFrac) warns.push(`${pct(frac)} of tokens differ by more than ${this.o.gapThreshold} nats between student_lp and student_lp_train (mean |gap| ${fmt(mean)}, max ${fmt(this.gapAbsMax)})${expected}`);
    if (warns.length > 0) return this.result('sampler_vs_recomputed', title, 'warn', false, warns.join('; '), 'a large sampler/trainer gap biases importance ratios and tinker-style advantages: check precision, temperature and logprobs mode of the sampler', extra);
    return this.result('sampler_vs_recomputed', title, 'pass', false, `mean |student_lp - student_lp_train| = ${fmt(mean)}, max ${fmt(this.gapAbsMax)}; ${pct(zeroFrac)} exact zeros${expected}`, null, extra);
  }
}

/** Runs the doctor over chunks (one pass). */
export function doctorChunks(meta: DumpMeta, chunkList: Iterable<TokenChunk>, conversions: Record<string, Conversion> = {}, options: Partial<DoctorOptions> = {}): DoctorReport {
  const d = new DumpDoctor(meta, options);
  for (const c of chunkList) d.add(c);
  return d.finish(conversions);
}

/** Plain-text table of a doctor report (the CLI prints it). */
export function formatDoctorReport(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };
  const lines = [`dump doctor: ${r.sequences} sequences, ${r.tokens} tokens`];
  for (const c of r.checks) {
    lines.push(`  ${mark[c.status]}  ${c.id.padEnd(22)} ${c.summary}`);
    for (const e of c.examples.slice(0, 3)) lines.push(`          e.g. ${e}`);
    if (c.hint && c.status !== 'pass') lines.push(`          fix: ${c.hint}`);
  }
  lines.push(r.ok ? 'no critical failure' : `CRITICAL: ${r.criticalFailures.join(', ')} failed; figures drawn from this dump would be wrong (use --force to draw them anyway)`);
  return lines.join('\n');
}
