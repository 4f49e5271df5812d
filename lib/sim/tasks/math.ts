/**
 * The "math" task: column addition of `operands` numbers of `digits` digits each, with a worked chain of column
 * steps. `digits` is the difficulty knob (more columns, more places to slip).
 *
 *   prompt     <bos> 4 7 3 + 2 8 9 <sep>
 *   responses  (the teacher spreads mass over all of these; every one is correct)
 *     carry chain   C 3 9 2 1  C 7 8 6 1  C 4 2 7 0  = 7 6 2 <eos>
 *                   C a b r k: the column's operand digits a, b (copied from the prompt, right to left), then
 *                   the result digit r and the carry k of a + b + (previous carry)
 *     sum chain     S 3 9 1 2  S 7 8 1 6  S 4 2 0 7  = 7 6 2 <eos>
 *                   S a b t u: the same digits, then the column sum 10 t + u (tens first)
 *     mixed chain   any step may use either format
 *     reversed      ... =r 2 6 7 <eos>                         the answer least-significant digit first
 *     direct        = 7 6 2 <eos>   or   =r 2 6 7 <eos>        no chain (the teacher errs more often this way)
 * With more operands a step copies one digit per operand (C a b c r k).
 *
 * The exact teacher, for every prefix (the final mix with the tail is in common.ts):
 *   start        C 0.50, S 0.30, = 0.12, =r 0.08 (direct)                          (startMix)
 *   after a step next step in the same format 0.9 / the other 0.1 (switchFormat); after the last column
 *                = 0.55, =r 0.45 (reverseAnswer)
 *   a digit      the correct digit 1 - e, e split: half on the typical mistake, the rest on +-1 (addDigit):
 *                 copied operand digit   e = eps copyErrorFactor; mistake: the same operand's digit in the
 *                                        neighbouring column
 *                 result / carry digit   e = eps h,  h = 1 + [carry in > 0] + [column sum >= 10]; mistake: the
 *                                        carry forgotten (result digit) or the carry off by one (carry digit)
 *                 answer after a chain   e = eps copyErrorFactor (copying the chain), no typical mistake
 *                 direct answer          e = eps directErrorFactor h_i, mistake: that column's carry forgotten
 *   after the answer   <eos>
 * So a path's chance of being correct falls with `digits`; `teacherAccuracy` in teacher.ts measures it.
 *
 * Off its own distribution the teacher continues consistently from what was written: a step adds the digits as
 * copied (even if miscopied) and the carry as written; a wrong result digit is copied into the answer; a step in
 * the sum format takes its tens digit as the carry; an answer started before the chain is complete is answered
 * directly (from the true sum); tokens that fit no phase are skipped. Each such deviation raises `confusion`,
 * which flattens the distribution (common.ts). Deterministic in (config, prompt).
 *
 * The verifier is a separate parser (not the cursor): a response is correct iff it is either a complete chain of
 * exactly `digits` steps, each with the true operand digits and the true result digits in its own format, or no
 * chain, followed by = (or =r) and the true sum in that order, then <eos> as the last token. It checks the chain
 * as well as the answer: a worked solution with a wrong step is wrong.
 */
import { tok, VOCAB, type Vocab } from '../vocab';
import {
  addDigit, checkFraction, checkNoise, CursorBase, DEFAULT_NOISE, resolveConfig, samplePromptsOfSplit, splitOfKey,
  type SparseDist, type TeacherNoise,
} from './common';
import type { Prompt, Split, Task, TeacherCursor } from './types';

export interface MathConfig {
  /**
   * Digits per operand: the difficulty knob (1-12; the default student context of 48 fits up to 5 with 2
   * operands). Default 2: the default student learns it within the 60 s training budget (3 takes about 4x the
   * warm-up steps for a similar pass@1).
   */
  digits: number;
  /** Numbers to add (2-9). */
  operands: number;
  /** eps: the teacher's error rate at an easy chain digit (hardness 1). */
  digitError: number;
  /** How the teacher starts: carry chain, sum chain, direct answer, direct reversed answer (normalised). */
  startMix: { carry: number; sum: number; direct: number; directReversed: number };
  /** Probability that the next step switches to the other step format. */
  switchFormat: number;
  /** After a chain: probability of the reversed answer (=r). */
  reverseAnswer: number;
  /** Direct answers: per-digit error eps * this * hardness. */
  directErrorFactor: number;
  /** Copying (operand digits into a step, the chain into the answer): per-digit error eps * this. */
  copyErrorFactor: number;
  /** Share of prompts (by a hash of the problem) in the test split. */
  testFraction: number;
  /** The teacher's tail and degradation off its own distribution. */
  noise: TeacherNoise;
}

export const DEFAULT_MATH: Readonly<MathConfig> = {
  digits: 2,
  operands: 2,
  digitError: 0.006,
  startMix: { carry: 0.5, sum: 0.3, direct: 0.12, directReversed: 0.08 },
  switchFormat: 0.1,
  reverseAnswer: 0.45,
  directErrorFactor: 4,
  copyErrorFactor: 0.3,
  testFraction: 0.1,
  noise: DEFAULT_NOISE,
};

export interface MathPrompt extends Prompt {
  /** The operands (as numbers). */
  operands: number[];
  /** Each operand's digits, least significant first: operandDigits[operand][column]. */
  operandDigits: number[][];
  /** Column sums of the operand digits, least-significant column first (no carries). */
  colSums: Int32Array;
  /** The true sum's digits, least significant first. */
  sumDigits: number[];
  /** The true carry into each column (and out of the last one at index digits). */
  carries: Int32Array;
}

const enum Phase { Start, Copy, Digit1, Digit2, Next, Answer, End, Done }
const FMT_CARRY = 0;
const FMT_SUM = 1;

function digitsLE(x: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(x % 10);
    x = Math.floor(x / 10);
  }
  return out;
}

function sumDigitsLE(sum: number): number[] {
  if (sum === 0) return [0];
  const out: number[] = [];
  while (sum > 0) {
    out.push(sum % 10);
    sum = Math.floor(sum / 10);
  }
  return out;
}

export class MathTask implements Task<MathPrompt> {
  readonly name = 'math';
  readonly vocab: Vocab = VOCAB;
  readonly config: Readonly<MathConfig>;
  readonly maxPromptLength: number;
  readonly maxResponseLength: number;
  private readonly startProbs: number[];
  private readonly markerSet: number[];

  constructor(options: Partial<MathConfig> = {}) {
    const c = resolveConfig('MathTask', DEFAULT_MATH, options);
    if (!Number.isInteger(c.digits) || c.digits < 1 || c.digits > 12) throw new Error(`MathTask: digits must be an integer in [1, 12], got ${c.digits}`);
    if (!Number.isInteger(c.operands) || c.operands < 2 || c.operands > 9) throw new Error(`MathTask: operands must be an integer in [2, 9], got ${c.operands}`);
    for (const k of ['digitError', 'switchFormat', 'reverseAnswer', 'testFraction'] as const) checkFraction('MathTask', k, c[k]);
    for (const k of ['directErrorFactor', 'copyErrorFactor'] as const) {
      if (!(c[k] >= 0)) throw new Error(`MathTask: ${k} must be a number >= 0, got ${c[k]}`);
    }
    if (c.digitError * c.directErrorFactor * 3 > 0.9) throw new Error(`MathTask: digitError * directErrorFactor * 3 must stay below 0.9 (an error rate), got ${c.digitError * c.directErrorFactor * 3}`);
    const mix = c.startMix;
    const m = [mix.carry, mix.sum, mix.direct, mix.directReversed];
    if (m.some((x) => !(x >= 0)) || !(m[0] + m[1] + m[2] + m[3] > 0)) throw new Error(`MathTask: startMix must hold non-negative numbers with a positive sum, got ${JSON.stringify(mix)}`);
    checkNoise('MathTask', c.noise);
    this.config = c;
    const z = m[0] + m[1] + m[2] + m[3];
    this.startProbs = m.map((x) => x / z);
    const D = c.digits;
    this.maxPromptLength = c.operands * (D + 1) + 1;
    // chain of D steps (marker, one digit per operand, two result digits), answer marker, at most D + 1 answer
    // digits (operands <= 9), <eos>
    this.maxResponseLength = D * (3 + c.operands) + 1 + (D + 1) + 1;
    this.markerSet = [tok.stepCarry, tok.stepSum, tok.answer, tok.answerRev];
  }

  /** The prompt for given operands (each must have exactly `digits` digits). */
  makePrompt(operands: number[]): MathPrompt {
    const { digits: D, operands: n } = this.config;
    if (operands.length !== n) throw new Error(`MathTask.makePrompt: expected ${n} operands, got ${operands.length}`);
    const lo = D === 1 ? 0 : 10 ** (D - 1);
    for (const x of operands) {
      if (!Number.isInteger(x) || x < lo || x >= 10 ** D) throw new Error(`MathTask.makePrompt: operands must be integers with ${D} digits, got ${x}`);
    }
    const operandDigits = operands.map((x) => digitsLE(x, D));
    const colSums = new Int32Array(D);
    for (const ds of operandDigits) ds.forEach((d, j) => (colSums[j] += d));
    const carries = new Int32Array(D + 1);
    for (let j = 0; j < D; j++) carries[j + 1] = Math.floor((colSums[j] + carries[j]) / 10);
    const sum = operands.reduce((a, b) => a + b, 0);
    const tokens: number[] = [tok.bos];
    operands.forEach((x, i) => {
      if (i > 0) tokens.push(tok.plus);
      for (const d of digitsLE(x, D).reverse()) tokens.push(tok.digit(d));
    });
    tokens.push(tok.sep);
    return { tokens: Int32Array.from(tokens), key: operands.join('+'), operands: operands.slice(), operandDigits, colSums, sumDigits: sumDigitsLE(sum), carries };
  }

  samplePrompts(split: Split, n: number, seed: number): MathPrompt[] {
    const { digits: D, operands } = this.config;
    const lo = D === 1 ? 0 : 10 ** (D - 1);
    const span = 10 ** D - lo;
    return samplePromptsOfSplit(this.name, split, n, seed, this.config.testFraction, (rng) =>
      this.makePrompt(Array.from({ length: operands }, () => lo + rng.int(span))),
    );
  }

  splitOf(prompt: MathPrompt): Split {
    return splitOfKey(prompt.key, this.config.testFraction);
  }

  describe(prompt: MathPrompt): string {
    return `${prompt.operands.join(' + ')} = ${prompt.operands.reduce((a, b) => a + b, 0)}`;
  }

  cursor(prompt: MathPrompt): TeacherCursor {
    return new MathCursor(this, prompt);
  }

  /** @internal used by the cursor */
  startDistribution(): readonly number[] {
    return this.startProbs;
  }

  /** @internal */
  markers(): readonly number[] {
    return this.markerSet;
  }

  verify(prompt: MathPrompt, response: ArrayLike<number>): boolean {
    const { digits: D, operands: n } = this.config;
    const stepLength = 3 + n;
    const len = response.length;
    let i = 0;
    let carry = 0;
    let steps = 0;
    while (i < len && (response[i] === tok.stepCarry || response[i] === tok.stepSum)) {
      if (steps >= D || i + stepLength > len) return false;
      for (let k = 0; k < n; k++) if (tok.digitOf(response[i + 1 + k]) !== prompt.operandDigits[k][steps]) return false;
      const a = tok.digitOf(response[i + 1 + n]);
      const b = tok.digitOf(response[i + 2 + n]);
      const s = prompt.colSums[steps] + carry;
      const [wantA, wantB] = response[i] === tok.stepCarry ? [s % 10, Math.floor(s / 10)] : [Math.floor(s / 10), s % 10];
      if (a !== wantA || b !== wantB) return false;
      carry = Math.floor(s / 10);
      steps++;
      i += stepLength;
    }
    if (steps !== 0 && steps !== D) return false;
    if (i >= len || (response[i] !== tok.answer && response[i] !== tok.answerRev)) return false;
    const reversed = response[i] === tok.answerRev;
    i++;
    const want = reversed ? prompt.sumDigits : prompt.sumDigits.slice().reverse();
    if (len - i !== want.length + 1) return false;
    for (let j = 0; j < want.length; j++) if (tok.digitOf(response[i + j]) !== want[j]) return false;
    return response[len - 1] === tok.eos;
  }
}

class MathCursor extends CursorBase {
  private phase = Phase.Start;
  private fmt = FMT_CARRY;
  private col = 0;
  /** Carry into `col` as written so far. */
  private carryIn = 0;
  /** Operand digits written in the current step so far. */
  private copies: number[] = [];
  /** Sum format: the tens digit written in the current step (the carry out). */
  private pendingTens = 0;
  /** Result digit written for each column. */
  private written: number[] = [];
  /** Expected answer digits in writing order, with the typical mistake and error rate per digit. */
  private ans: { digit: number; mistake: number; e: number }[] = [];
  private ansPos = 0;

  constructor(private readonly task: MathTask, private readonly prompt: MathPrompt) {
    super(task.vocab, task.config.noise);
  }

  private get cfg(): Readonly<MathConfig> {
    return this.task.config;
  }

  /** The column's digits as copied into the step (the teacher adds what was written). */
  private copiedSum(): number {
    let s = 0;
    for (const d of this.copies) s += d;
    return s;
  }

  /** The two result digits the current step should hold, given the copies and carry as written: [first, second]. */
  private stepDigits(): [number, number] {
    const s = this.copiedSum() + this.carryIn;
    return this.fmt === FMT_CARRY ? [s % 10, Math.floor(s / 10)] : [Math.floor(s / 10), s % 10];
  }

  private stepError(): number {
    const s = this.copiedSum() + this.carryIn;
    return this.cfg.digitError * (1 + (this.carryIn > 0 ? 1 : 0) + (s >= 10 ? 1 : 0));
  }

  /** The operand digit the next copy should hold, and its typical mistake (the neighbouring column's digit). */
  private copyTarget(): [number, number] {
    const ds = this.prompt.operandDigits[this.copies.length];
    const j = this.col;
    return [ds[j], j + 1 < ds.length ? ds[j + 1] : j > 0 ? ds[j - 1] : -1];
  }

  /** Typical mistakes for the two result digits: [first, second]. */
  private stepMistakes(): [number, number] {
    const raw = this.copiedSum();
    const s = raw + this.carryIn;
    const forgotUnit = this.carryIn > 0 ? raw % 10 : -1;
    const k = Math.floor(s / 10);
    const offByOne = k > 0 ? k - 1 : k + 1;
    return this.fmt === FMT_CARRY ? [forgotUnit, offByOne] : [offByOne, forgotUnit];
  }

  private startAnswer(reversed: boolean, direct: boolean): void {
    const p = this.prompt;
    const eps = this.cfg.digitError;
    let le: { digit: number; mistake: number; e: number }[];
    if (direct) {
      le = p.sumDigits.map((digit, i) => {
        if (i >= this.cfg.digits) return { digit, mistake: -1, e: eps * this.cfg.directErrorFactor };
        const s = p.colSums[i] + p.carries[i];
        const h = 1 + (p.carries[i] > 0 ? 1 : 0) + (s >= 10 ? 1 : 0);
        return { digit, mistake: p.carries[i] > 0 ? p.colSums[i] % 10 : -1, e: eps * this.cfg.directErrorFactor * h };
      });
    } else {
      const digits = this.written.slice();
      if (this.carryIn > 0) digits.push(this.carryIn);
      le = digits.map((digit) => ({ digit, mistake: -1, e: eps * this.cfg.copyErrorFactor }));
    }
    this.ans = reversed ? le : le.reverse();
    this.ansPos = 0;
    this.phase = this.ans.length > 0 ? Phase.Answer : Phase.End;
  }

  protected active(dist: SparseDist): void {
    const digit = (d: number) => tok.digit(d);
    switch (this.phase) {
      case Phase.Start: {
        const [c, s, a, r] = this.task.startDistribution();
        dist.add(tok.stepCarry, c);
        dist.add(tok.stepSum, s);
        dist.add(tok.answer, a);
        dist.add(tok.answerRev, r);
        return;
      }
      case Phase.Next:
        if (this.col < this.cfg.digits) {
          const sw = this.cfg.switchFormat;
          dist.add(this.fmt === FMT_CARRY ? tok.stepCarry : tok.stepSum, 1 - sw);
          dist.add(this.fmt === FMT_CARRY ? tok.stepSum : tok.stepCarry, sw);
        } else {
          dist.add(tok.answer, 1 - this.cfg.reverseAnswer);
          dist.add(tok.answerRev, this.cfg.reverseAnswer);
        }
        return;
      case Phase.Copy: {
        const [want, mistake] = this.copyTarget();
        addDigit(dist, digit, want, this.cfg.digitError * this.cfg.copyErrorFactor, mistake);
        return;
      }
      case Phase.Digit1:
      case Phase.Digit2: {
        const which = this.phase === Phase.Digit1 ? 0 : 1;
        addDigit(dist, digit, this.stepDigits()[which], this.stepError(), this.stepMistakes()[which]);
        return;
      }
      case Phase.Answer: {
        const a = this.ans[this.ansPos];
        addDigit(dist, digit, a.digit, a.e, a.mistake);
        return;
      }
      case Phase.End:
      case Phase.Done:
        dist.add(tok.eos, 1);
        return;
    }
  }

  protected plausible(): readonly number[] {
    switch (this.phase) {
      case Phase.Start:
      case Phase.Next:
        return this.task.markers();
      case Phase.End:
        return END_PLAUSIBLE;
      default:
        return this.vocab.groups.digits;
    }
  }

  protected phaseCode(): number {
    return this.phase;
  }

  valid(): number[] {
    switch (this.phase) {
      case Phase.Start:
        return [tok.stepCarry, tok.stepSum, tok.answer, tok.answerRev].sort((a, b) => a - b);
      case Phase.Next:
        return this.col < this.cfg.digits ? [tok.stepCarry, tok.stepSum].sort((a, b) => a - b) : [tok.answer, tok.answerRev].sort((a, b) => a - b);
      case Phase.Copy:
        return [tok.digit(this.copyTarget()[0])];
      case Phase.Digit1:
        return [tok.digit(this.stepDigits()[0])];
      case Phase.Digit2:
        return [tok.digit(this.stepDigits()[1])];
      case Phase.Answer:
        return [tok.digit(this.ans[this.ansPos].digit)];
      case Phase.End:
        return [tok.eos];
      case Phase.Done:
        return [];
    }
  }

  push(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocab.size) throw new Error(`MathCursor.push: token must be an id in [0, ${this.vocab.size}), got ${token}`);
    this.position++;
    if (this.phase === Phase.Done) return;
    if (token === tok.eos) {
      if (this.phase !== Phase.End) this.confusion++;
      this.phase = Phase.Done;
      this.done = true;
      return;
    }
    const d = tok.digitOf(token);
    const isStep = token === tok.stepCarry || token === tok.stepSum;
    const isAnswer = token === tok.answer || token === tok.answerRev;
    switch (this.phase) {
      case Phase.Start:
        if (isStep) this.beginStep(token);
        else if (isAnswer) this.startAnswer(token === tok.answerRev, true);
        else this.confusion++;
        return;
      case Phase.Next:
        if (isStep && this.col < this.cfg.digits) this.beginStep(token);
        else if (isAnswer) {
          const complete = this.col === this.cfg.digits;
          if (!complete) this.confusion++; // an early answer: the teacher answers from the true sum
          this.startAnswer(token === tok.answerRev, !complete);
        } else this.confusion++;
        return;
      case Phase.Copy:
        if (d < 0) {
          this.confusion++;
          return;
        }
        if (d !== this.copyTarget()[0]) this.confusion++;
        this.copies.push(d);
        if (this.copies.length === this.cfg.operands) this.phase = Phase.Digit1;
        return;
      case Phase.Digit1: {
        if (d < 0) {
          this.confusion++;
          return;
        }
        if (d !== this.stepDigits()[0]) this.confusion++;
        if (this.fmt === FMT_CARRY) this.written[this.col] = d;
        else this.pendingTens = d;
        this.phase = Phase.Digit2;
        return;
      }
      case Phase.Digit2: {
        if (d < 0) {
          this.confusion++;
          return;
        }
        if (d !== this.stepDigits()[1]) this.confusion++;
        let carryOut: number;
        if (this.fmt === FMT_CARRY) carryOut = d;
        else {
          this.written[this.col] = d;
          carryOut = this.pendingTens;
        }
        this.carryIn = carryOut;
        this.col++;
        this.phase = Phase.Next;
        return;
      }
      case Phase.Answer:
        if (d < 0) {
          this.confusion++;
          return;
        }
        if (d !== this.ans[this.ansPos].digit) this.confusion++;
        this.ansPos++;
        if (this.ansPos === this.ans.length) this.phase = Phase.End;
        return;
      case Phase.End:
        this.confusion++;
        return;
    }
  }

  private beginStep(token: number): void {
    this.fmt = token === tok.stepCarry ? FMT_CARRY : FMT_SUM;
    this.copies = [];
    this.phase = Phase.Copy;
  }

  clone(): TeacherCursor {
    const c = new MathCursor(this.task, this.prompt);
    this.copyBaseTo(c);
    c.phase = this.phase;
    c.fmt = this.fmt;
    c.col = this.col;
    c.carryIn = this.carryIn;
    c.pendingTens = this.pendingTens;
    c.copies = this.copies.slice();
    c.written = this.written.slice();
    c.ans = this.ans.slice();
    c.ansPos = this.ansPos;
    return c;
  }
}

const END_PLAUSIBLE: readonly number[] = [tok.eos, ...VOCAB.groups.digits];
