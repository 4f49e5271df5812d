/**
 * The teacher's distribution, shared by every task: a sparse "active" distribution from the task's state machine
 * (the valid continuations plus calibrated plausible mistakes), flattened as the teacher gets confused, mixed with
 * a fixed background over the whole vocabulary:
 *
 *   a_t(v)       task state machine: valid tokens (mass split across alternatives) + error tokens; sum_v a_t = 1
 *   lam_d        = 1 - (1 - rho)^d                         d = confusion (deviations from a correct path so far)
 *   a'_t(v)      = (1 - lam_d) a_t(v) + lam_d / |Pl_t| 1[v in Pl_t]     Pl_t = plausible tokens of the phase
 *   beta_d       = min(betaMax, beta (1 + g d))
 *   pT(v | c_t)  = (1 - beta_d) a'_t(v) + beta_d b_r(v)
 *
 * b_r is a background distribution over all V tokens: 80% of its mass on the distractor tokens with Zipf weights
 * 1/(rank + 1) in a seeded order, 20% spread evenly over every other token; r = one of 8 seeded orders, picked by
 * position and phase, so the ranking of the tail varies along a response. Every token has pT > 0, so log pT is
 * finite everywhere (objectives take log pT of any sampled token).
 *
 * Off the teacher's own distribution (d > 0) its guidance degrades the way a real teacher's does: it keeps
 * following its (possibly wrong) state, e.g. it continues consistently from a wrong digit, but spreads more mass
 * over merely plausible tokens and over the tail. Tokens that do not fit the grammar at all are skipped (the state
 * does not change) and count as deviations.
 *
 * Only the active entries need a log per row; the background row is a precomputed log template plus a constant,
 * so scoring [32 x 40] prefixes costs a copy of 256 floats per row.
 */
import { deriveSeed, hashString, Rng } from '../rng';
import type { Vocab } from '../vocab';
import type { Prompt, Split, TeacherCursor } from './types';

/** How the teacher's tail and degradation look; shared by every task. */
export interface TeacherNoise {
  /** beta: background (tail) mass at a position on a correct path. */
  backgroundMass: number;
  /** rho: per deviation, the share of the active mass moved to a uniform over the phase's plausible tokens. */
  degradeRate: number;
  /** g: the background mass grows as beta (1 + g d) with confusion d ... */
  backgroundGrowth: number;
  /** ... up to this cap. */
  maxBackground: number;
}

export const DEFAULT_NOISE: Readonly<TeacherNoise> = {
  backgroundMass: 1e-3,
  degradeRate: 0.25,
  backgroundGrowth: 3,
  maxBackground: 0.05,
};

export function checkNoise(op: string, n: TeacherNoise): void {
  const check = (name: keyof TeacherNoise, lo: number, hi: number) => {
    const v = n[name];
    if (typeof v !== 'number' || !(v >= lo && v <= hi)) throw new Error(`${op}: noise.${name} must be a number in [${lo}, ${hi}], got ${v}`);
  };
  check('backgroundMass', 1e-12, 0.5);
  check('degradeRate', 0, 1);
  check('backgroundGrowth', 0, 1e6);
  check('maxBackground', n.backgroundMass, 0.9);
}

const ROTATIONS = 8;
const DISTRACTOR_SHARE = 0.8;

interface Background {
  /** [R][V] probabilities b_r(v) (float64). */
  probs: Float64Array[];
  /** [R][V] log b_r(v). */
  logs: Float32Array[];
}

const backgrounds = new WeakMap<Vocab, Background>();

/** The background templates b_r for a vocabulary (built once, seeded, independent of any run seed). */
export function backgroundFor(vocab: Vocab): Background {
  const cached = backgrounds.get(vocab);
  if (cached) return cached;
  const V = vocab.size;
  const distractors = vocab.groups.distractors;
  const isDistractor = new Uint8Array(V);
  for (const d of distractors) isDistractor[d] = 1;
  const others = V - distractors.length;
  const probs: Float64Array[] = [];
  const logs: Float32Array[] = [];
  for (let r = 0; r < ROTATIONS; r++) {
    const order = new Rng(deriveSeed(0x7a11, 'background', r)).shuffle([...distractors]);
    const p = new Float64Array(V);
    let z = 0;
    for (let j = 0; j < order.length; j++) z += 1 / (j + 1);
    for (let j = 0; j < order.length; j++) p[order[j]] = (DISTRACTOR_SHARE / (j + 1)) / z;
    for (let v = 0; v < V; v++) if (!isDistractor[v]) p[v] = (1 - DISTRACTOR_SHARE) / others;
    const l = new Float32Array(V);
    for (let v = 0; v < V; v++) l[v] = Math.log(p[v]);
    probs.push(p);
    logs.push(l);
  }
  const bg = { probs, logs };
  backgrounds.set(vocab, bg);
  return bg;
}

/** A small sparse distribution: ids with probabilities; adding an id twice adds the mass. */
export class SparseDist {
  ids: number[] = [];
  probs: number[] = [];
  clear(): void {
    this.ids.length = 0;
    this.probs.length = 0;
  }
  add(id: number, p: number): void {
    if (p <= 0) return;
    const i = this.ids.indexOf(id);
    if (i >= 0) this.probs[i] += p;
    else {
      this.ids.push(id);
      this.probs.push(p);
    }
  }
  total(): number {
    let s = 0;
    for (const p of this.probs) s += p;
    return s;
  }
}

/**
 * Spreads mass around a correct digit: 1 - e on `correct`; of e, half on the typical `mistake` (when there is one
 * and it differs from `correct`) and the rest evenly on the neighbours correct +- 1 (mod 10).
 */
export function addDigit(dist: SparseDist, digitToken: (d: number) => number, correct: number, e: number, mistake = -1): void {
  dist.add(digitToken(correct), 1 - e);
  if (e <= 0) return;
  const up = (correct + 1) % 10;
  const down = (correct + 9) % 10;
  if (mistake >= 0 && mistake <= 9 && mistake !== correct) {
    dist.add(digitToken(mistake), e / 2);
    dist.add(digitToken(up), e / 4);
    dist.add(digitToken(down), e / 4);
  } else {
    dist.add(digitToken(up), e / 2);
    dist.add(digitToken(down), e / 2);
  }
}

/**
 * The part every task's cursor shares: confusion bookkeeping and the row fill (formula in the header).
 * A task implements `active` (its a_t), `plausible` (Pl_t), `phaseCode`, `valid`, `push` and `clone`.
 */
export abstract class CursorBase implements TeacherCursor {
  position = 0;
  confusion = 0;
  done = false;
  private readonly scratch = new SparseDist();

  constructor(protected readonly vocab: Vocab, protected readonly noise: TeacherNoise) {}

  /** Fill `dist` with a_t (must sum to 1). */
  protected abstract active(dist: SparseDist): void;
  /** Pl_t: the tokens a confused teacher spreads mass over at this phase. */
  protected abstract plausible(): readonly number[];
  /** A small integer naming the phase (picks the background rotation). */
  protected abstract phaseCode(): number;
  abstract valid(): number[];
  abstract push(token: number): void;
  abstract clone(): TeacherCursor;

  /** The active distribution a'_t after flattening (ids, probs), for tests and diagnostics. */
  activeDistribution(): { ids: number[]; probs: number[] } {
    const d = this.scratch;
    d.clear();
    this.active(d);
    if (this.confusion > 0 && !this.done) {
      const lam = 1 - Math.pow(1 - this.noise.degradeRate, this.confusion);
      for (let i = 0; i < d.probs.length; i++) d.probs[i] *= 1 - lam;
      const pl = this.plausible();
      for (const id of pl) d.add(id, lam / pl.length);
    }
    return { ids: d.ids.slice(), probs: d.probs.slice() };
  }

  /** The background mass beta_d at the current confusion. */
  backgroundMass(): number {
    const n = this.noise;
    return Math.min(n.maxBackground, n.backgroundMass * (1 + n.backgroundGrowth * this.confusion));
  }

  logprobs(out: Float32Array, offset = 0): void {
    const V = this.vocab.size;
    if (offset < 0 || offset + V > out.length) throw new Error(`TeacherCursor.logprobs: out has no room for [${offset}, ${offset + V})`);
    const { ids, probs } = this.activeDistribution();
    const beta = this.backgroundMass();
    const bg = backgroundFor(this.vocab);
    const r = (this.position * 3 + this.phaseCode()) % ROTATIONS;
    const logBg = bg.logs[r];
    const pBg = bg.probs[r];
    const logBeta = Math.log(beta);
    for (let v = 0; v < V; v++) out[offset + v] = logBeta + logBg[v];
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      out[offset + v] = Math.log((1 - beta) * probs[i] + beta * pBg[v]);
    }
  }

  /** Copies the shared state into a clone. */
  protected copyBaseTo(c: CursorBase): void {
    c.position = this.position;
    c.confusion = this.confusion;
    c.done = this.done;
  }
}

/** The split of a prompt key: test iff FNV-1a(key) mod 1000 < 1000 testFraction. */
export function splitOfKey(key: string, testFraction: number): Split {
  return hashString(key) % 1000 < Math.round(testFraction * 1000) ? 'test' : 'train';
}

/**
 * n prompts of a split by rejection from `draw` (which must use only the given Rng). Throws, naming the task, if
 * the split looks empty (no hit in 1000 n draws).
 */
export function samplePromptsOfSplit<P extends Prompt>(
  task: string,
  split: Split,
  n: number,
  seed: number,
  testFraction: number,
  draw: (rng: Rng) => P,
): P[] {
  if (split !== 'train' && split !== 'test') throw new Error(`${task}.samplePrompts: split must be 'train' or 'test', got '${split as string}'`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${task}.samplePrompts: n must be a non-negative integer, got ${n}`);
  const rng = new Rng(deriveSeed(seed, task, 'prompts', split));
  const out: P[] = [];
  const limit = 1000 * Math.max(n, 1);
  for (let tries = 0; out.length < n; tries++) {
    if (tries >= limit) throw new Error(`${task}.samplePrompts: found only ${out.length} of ${n} '${split}' prompts in ${limit} draws (testFraction ${testFraction})`);
    const p = draw(rng);
    if (splitOfKey(p.key, testFraction) === split) out.push(p);
  }
  return out;
}

export function checkFraction(op: string, name: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${op}: ${name} must be a number in [0, 1], got ${v}`);
}

/** Merge user options over defaults, rejecting unknown keys (style.md 5). */
export function resolveConfig<C extends object>(op: string, defaults: Readonly<C>, given: Partial<C> | undefined): C {
  const out = { ...defaults } as C;
  if (!given) return out;
  for (const key of Object.keys(given)) {
    if (!(key in defaults)) throw new Error(`${op}: unknown option '${key}' (known: ${Object.keys(defaults).join(', ')})`);
    const v = (given as Record<string, unknown>)[key];
    if (v === undefined) continue;
    const d = (defaults as Record<string, unknown>)[key];
    (out as Record<string, unknown>)[key] =
      d !== null && typeof d === 'object' && !Array.isArray(d) ? resolveConfig(`${op}.${key}`, d as object, v as object) : v;
  }
  return out;
}
