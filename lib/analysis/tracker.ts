/**
 * Tracking the teacher's top token under the student over training (claim C2, "measured in training").
 *
 * For a fixed probe set of prefixes (the caller feeds the same R probe rows every step):
 *   top_r        = argmax_v pT(v | probe r)                      (ties: lower id)
 *   pS_top       = pS(top_r | probe r)
 *   rank_top     = 1 + #{u : pS(u) > pS(top_r)}                  (1 = the student already agrees)
 *   studentTop   = argmax_v pS(v | probe r), and its probability
 * Inputs may be logits or log-probs: each row is log-softmaxed (which leaves log-probs unchanged).
 *
 * Per `record` call, `summariseProbeRows` gives blackhole/probe_ps_top_mean, blackhole/probe_rank_top_mean,
 * blackhole/probe_rank_top_median and blackhole/probe_frac_top1.
 */
import { rankInRow, readMatrix, rowLogSoftmax64, type Matrix } from './values';

export interface ProbeRow {
  step: number;
  /** Probe index r (row of the inputs). */
  probe: number;
  /** The teacher's top token. */
  teacherTop: number;
  pTTop: number;
  pSTop: number;
  /** Student rank of the teacher's top token (1 = student's top). */
  rankTop: number;
  /** The student's own top token and its probability. */
  studentTop: number;
  pSStudentTop: number;
}

function argmaxRow(x: ArrayLike<number>, base: number, vocab: number): number {
  let best = 0;
  for (let v = 1; v < vocab; v++) if (x[base + v] > x[base + best]) best = v;
  return best;
}

/** Stateful: keeps every recorded row; the probe count and vocabulary are fixed by the first call. */
export class TeacherTopTracker {
  readonly rows: ProbeRow[] = [];
  private shape: [number, number] | null = null;

  /** Records one training step; returns that step's rows (one per probe). */
  record(step: number, studentLogp_NV: Matrix, teacherLogp_NV: Matrix): ProbeRow[] {
    const op = 'TeacherTopTracker.record';
    if (!Number.isFinite(step)) throw new Error(`${op}: step must be a finite number, got ${step}`);
    const s = readMatrix(op, 'studentLogp_NV', studentLogp_NV);
    const t = readMatrix(op, 'teacherLogp_NV', teacherLogp_NV);
    if (s.rows !== t.rows || s.cols !== t.cols) throw new Error(`${op}: student and teacher must have the same shape, got [${s.rows}, ${s.cols}] and [${t.rows}, ${t.cols}]`);
    if (s.rows === 0 || s.cols === 0) throw new Error(`${op}: the probe set is empty (shape [${s.rows}, ${s.cols}])`);
    if (this.shape && (this.shape[0] !== s.rows || this.shape[1] !== s.cols)) {
      throw new Error(`${op}: the probe set must stay fixed: first call had [${this.shape}], this one [${s.rows}, ${s.cols}]`);
    }
    // -inf is a legal log-prob (a token with probability 0); NaN and +inf are not
    for (const [arg, m] of [['studentLogp_NV', s], ['teacherLogp_NV', t]] as const) {
      for (let i = 0; i < m.data.length; i++) {
        if (Number.isNaN(m.data[i]) || m.data[i] === Infinity) {
          throw new Error(`${op}: ${arg} must hold finite values or -Infinity, found ${m.data[i]} at row ${Math.floor(i / m.cols)}, column ${i % m.cols}`);
        }
      }
    }
    this.shape = [s.rows, s.cols];
    const vocab = s.cols;
    const logpS = rowLogSoftmax64(s.data, s.rows, vocab);
    const logpT = rowLogSoftmax64(t.data, t.rows, vocab);
    const out: ProbeRow[] = [];
    for (let r = 0; r < s.rows; r++) {
      const base = r * vocab;
      if (!Number.isFinite(logpS[base + argmaxRow(logpS, base, vocab)]) || !Number.isFinite(logpT[base + argmaxRow(logpT, base, vocab)])) {
        throw new Error(`${op}: probe row ${r} has no finite entry`);
      }
      const top = argmaxRow(logpT, base, vocab);
      const sTop = argmaxRow(logpS, base, vocab);
      out.push({
        step,
        probe: r,
        teacherTop: top,
        pTTop: Math.exp(logpT[base + top]),
        pSTop: Math.exp(logpS[base + top]),
        rankTop: rankInRow(logpS, base, vocab, top),
        studentTop: sTop,
        pSStudentTop: Math.exp(logpS[base + sTop]),
      });
    }
    this.rows.push(...out);
    return out;
  }

  /** Every recorded row as columns [R_total], for figures and tables. */
  columns(): { step: Float64Array; probe: Int32Array; teacherTop: Int32Array; pTTop: Float64Array; pSTop: Float64Array; rankTop: Int32Array; studentTop: Int32Array; pSStudentTop: Float64Array } {
    const r = this.rows;
    return {
      step: Float64Array.from(r, (x) => x.step),
      probe: Int32Array.from(r, (x) => x.probe),
      teacherTop: Int32Array.from(r, (x) => x.teacherTop),
      pTTop: Float64Array.from(r, (x) => x.pTTop),
      pSTop: Float64Array.from(r, (x) => x.pSTop),
      rankTop: Int32Array.from(r, (x) => x.rankTop),
      studentTop: Int32Array.from(r, (x) => x.studentTop),
      pSStudentTop: Float64Array.from(r, (x) => x.pSStudentTop),
    };
  }
}

/** blackhole/probe_* scalars of one step's rows (throws on an empty list). */
export function summariseProbeRows(rows: ProbeRow[]): Record<string, number> {
  if (rows.length === 0) throw new Error('summariseProbeRows: no rows (record at least one probe first)');
  const ranks = rows.map((x) => x.rankTop).sort((a, b) => a - b);
  const m = ranks.length >> 1;
  return {
    'blackhole/probe_ps_top_mean': rows.reduce((a, x) => a + x.pSTop, 0) / rows.length,
    'blackhole/probe_rank_top_mean': ranks.reduce((a, x) => a + x, 0) / rows.length,
    'blackhole/probe_rank_top_median': ranks.length % 2 ? ranks[m] : (ranks[m - 1] + ranks[m]) / 2,
    'blackhole/probe_frac_top1': rows.filter((x) => x.rankTop === 1).length / rows.length,
  };
}
