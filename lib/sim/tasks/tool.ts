/**
 * The "tool-call" task (the continual-learning stage): emit a structured call whose arguments are copied or
 * transformed from the prompt. Same vocabulary as the math task.
 *
 *   prompt     <bos> sort raven apple iris 1 2 <sep>            intent, 1-maxItems distinct entities, a number
 *   response   <call> fn:sort <arg> k:items apple iris raven <arg> k:n 1 2 </call> <eos>
 *              <call> fn:sort <arg> k:n 1 2 <arg> k:items apple iris raven </call> <eos>   (either order)
 *
 *   intent  function     items value            n value
 *   find    fn:search    copied                 copied
 *   sort    fn:sort      sorted (by name)       copied
 *   rev     fn:reverse   reversed               copied
 *   inc     fn:count     copied                 n + 1
 *   dbl     fn:scale     copied                 2 n
 *
 * The exact teacher: <call> 1; the function 1 - fnError (the rest spread over the other functions); the first
 * key k:items 0.6 / k:n 0.4 (itemsFirst); each value token 1 - e with e = itemError or numberError, times
 * transformErrorFactor when the value is transformed; half of e goes to the typical mistake (the untransformed
 * token at that position) when there is one, the rest to the other prompt entities (items) or to +-1 (digits);
 * then </call>, <eos>. The final mix with the tail is in common.ts.
 *
 * Off its own distribution the teacher continues consistently: after a wrong function it fills in the arguments
 * of the function written; a wrong value token still advances the value; a value cut short by <arg> or </call>
 * counts as given; tokens that fit no phase are skipped. Each deviation raises `confusion` (flatter guidance).
 *
 * The verifier (a separate parser) accepts exactly: <call>, the right function, each of the two keys once in
 * either order with its exact value, </call>, <eos> as the last token.
 */
import { ENTITIES, tok, TOOL_FUNCTIONS, TOOL_INTENTS, TOOL_KEYS, VOCAB, type Vocab } from '../vocab';
import {
  addDigit, checkFraction, checkNoise, CursorBase, DEFAULT_NOISE, resolveConfig, samplePromptsOfSplit, splitOfKey,
  type SparseDist, type TeacherNoise,
} from './common';
import type { Prompt, Split, Task, TeacherCursor } from './types';

export interface ToolConfig {
  /** Fewest entities in a prompt. */
  minItems: number;
  /** Most entities in a prompt: the difficulty knob (1-8). */
  maxItems: number;
  /** The number argument is drawn uniformly from [1, maxNumber]. */
  maxNumber: number;
  /** The teacher's chance of naming a wrong function. */
  fnError: number;
  /** Per-entity error of the items value when copied. */
  itemError: number;
  /** Per-digit error of the n value when copied. */
  numberError: number;
  /** Transformed values (sorted, reversed, n + 1, 2 n) err this many times more. */
  transformErrorFactor: number;
  /** Probability that the teacher gives k:items before k:n. */
  itemsFirst: number;
  /** Share of prompts (by a hash of the problem) in the test split. */
  testFraction: number;
  /** The teacher's tail and degradation off its own distribution. */
  noise: TeacherNoise;
}

export const DEFAULT_TOOL: Readonly<ToolConfig> = {
  minItems: 1,
  maxItems: 3,
  maxNumber: 99,
  fnError: 0.01,
  itemError: 0.008,
  numberError: 0.008,
  transformErrorFactor: 2,
  itemsFirst: 0.6,
  testFraction: 0.1,
  noise: DEFAULT_NOISE,
};

export interface ToolPrompt extends Prompt {
  /** Index of the intent (and of the right function) in TOOL_INTENTS / TOOL_FUNCTIONS. */
  intent: number;
  /** Entity token ids, in prompt order. */
  items: number[];
  number: number;
}

type Transform = 'copy' | 'sort' | 'reverse' | 'inc' | 'dbl';
const ITEM_TRANSFORM: readonly Transform[] = ['copy', 'sort', 'reverse', 'copy', 'copy'];
const NUMBER_TRANSFORM: readonly Transform[] = ['copy', 'copy', 'copy', 'inc', 'dbl'];

const FN_IDS = TOOL_FUNCTIONS.map((f) => VOCAB.id(f));
const INTENT_IDS = TOOL_INTENTS.map((f) => VOCAB.id(f));
const KEY_ITEMS = VOCAB.id(TOOL_KEYS[0]);
const KEY_N = VOCAB.id(TOOL_KEYS[1]);
const ENTITY_IDS = ENTITIES.map((e) => VOCAB.id(e));

function numberDigits(x: number): number[] {
  return String(x).split('').map(Number);
}

function transformItems(items: number[], t: Transform): number[] {
  if (t === 'sort') return items.slice().sort((a, b) => a - b);
  if (t === 'reverse') return items.slice().reverse();
  return items.slice();
}

function transformNumber(n: number, t: Transform): number {
  return t === 'inc' ? n + 1 : t === 'dbl' ? 2 * n : n;
}

/** Value tokens of both keys for a function index: [items tokens, n tokens]. */
function targetsFor(prompt: ToolPrompt, fn: number): [number[], number[]] {
  return [transformItems(prompt.items, ITEM_TRANSFORM[fn]), numberDigits(transformNumber(prompt.number, NUMBER_TRANSFORM[fn])).map((d) => tok.digit(d))];
}

export class ToolTask implements Task<ToolPrompt> {
  readonly name = 'tool';
  readonly vocab: Vocab = VOCAB;
  readonly config: Readonly<ToolConfig>;
  readonly maxPromptLength: number;
  readonly maxResponseLength: number;

  constructor(options: Partial<ToolConfig> = {}) {
    const c = resolveConfig('ToolTask', DEFAULT_TOOL, options);
    if (!Number.isInteger(c.maxItems) || c.maxItems < 1 || c.maxItems > 8) throw new Error(`ToolTask: maxItems must be an integer in [1, 8], got ${c.maxItems}`);
    if (!Number.isInteger(c.minItems) || c.minItems < 1 || c.minItems > c.maxItems) throw new Error(`ToolTask: minItems must be an integer in [1, maxItems = ${c.maxItems}], got ${c.minItems}`);
    if (!Number.isInteger(c.maxNumber) || c.maxNumber < 1 || c.maxNumber > 999) throw new Error(`ToolTask: maxNumber must be an integer in [1, 999], got ${c.maxNumber}`);
    for (const k of ['fnError', 'itemError', 'numberError', 'itemsFirst', 'testFraction'] as const) checkFraction('ToolTask', k, c[k]);
    if (!(c.transformErrorFactor >= 0) || c.transformErrorFactor * Math.max(c.itemError, c.numberError) > 0.9) {
      throw new Error(`ToolTask: transformErrorFactor must be >= 0 and keep error rates below 0.9, got ${c.transformErrorFactor}`);
    }
    checkNoise('ToolTask', c.noise);
    this.config = c;
    const numDigits = String(c.maxNumber).length;
    this.maxPromptLength = 3 + c.maxItems + numDigits;
    this.maxResponseLength = 2 + 4 + c.maxItems + String(Math.max(2 * c.maxNumber, c.maxNumber + 1)).length + 2;
  }

  /** The prompt for an intent name, entity names (distinct) and a number. */
  makePrompt(intent: string, items: string[], number: number): ToolPrompt {
    const c = this.config;
    const i = (TOOL_INTENTS as readonly string[]).indexOf(intent);
    if (i < 0) throw new Error(`ToolTask.makePrompt: intent must be one of ${TOOL_INTENTS.join(', ')}, got '${intent}'`);
    if (items.length < c.minItems || items.length > c.maxItems) throw new Error(`ToolTask.makePrompt: expected ${c.minItems}-${c.maxItems} items, got ${items.length}`);
    const ids = items.map((e) => {
      if (!(ENTITIES as readonly string[]).includes(e)) throw new Error(`ToolTask.makePrompt: unknown entity '${e}'`);
      return VOCAB.id(e);
    });
    if (new Set(ids).size !== ids.length) throw new Error(`ToolTask.makePrompt: items must be distinct, got ${items.join(' ')}`);
    if (!Number.isInteger(number) || number < 1 || number > c.maxNumber) throw new Error(`ToolTask.makePrompt: number must be an integer in [1, ${c.maxNumber}], got ${number}`);
    const tokens = [tok.bos, INTENT_IDS[i], ...ids, ...numberDigits(number).map((d) => tok.digit(d)), tok.sep];
    return { tokens: Int32Array.from(tokens), key: `${intent}:${items.join(',')}:${number}`, intent: i, items: ids, number };
  }

  samplePrompts(split: Split, n: number, seed: number): ToolPrompt[] {
    const c = this.config;
    return samplePromptsOfSplit(this.name, split, n, seed, c.testFraction, (rng) => {
      const intent = TOOL_INTENTS[rng.int(TOOL_INTENTS.length)];
      const m = c.minItems + rng.int(c.maxItems - c.minItems + 1);
      const items = rng.shuffle([...ENTITIES]).slice(0, m);
      return this.makePrompt(intent, items, 1 + rng.int(c.maxNumber));
    });
  }

  splitOf(prompt: ToolPrompt): Split {
    return splitOfKey(prompt.key, this.config.testFraction);
  }

  describe(prompt: ToolPrompt): string {
    const [items, n] = targetsFor(prompt, prompt.intent);
    return `${VOCAB.decode(prompt.tokens.subarray(1, prompt.tokens.length - 1))} -> ${TOOL_FUNCTIONS[prompt.intent]}(items=${VOCAB.decode(items)}, n=${VOCAB.decode(n).replace(/ /g, '')})`;
  }

  cursor(prompt: ToolPrompt): TeacherCursor {
    return new ToolCursor(this, prompt);
  }

  verify(prompt: ToolPrompt, response: ArrayLike<number>): boolean {
    const n = response.length;
    if (n < 4 || response[0] !== tok.call || response[1] !== FN_IDS[prompt.intent]) return false;
    const targets = targetsFor(prompt, prompt.intent);
    const seen = [false, false];
    let i = 2;
    while (i < n && response[i] === tok.arg) {
      const key = response[i + 1] === KEY_ITEMS ? 0 : response[i + 1] === KEY_N ? 1 : -1;
      if (key < 0 || seen[key]) return false;
      seen[key] = true;
      i += 2;
      const start = i;
      while (i < n && response[i] !== tok.arg && response[i] !== tok.endCall) i++;
      const value = Array.from({ length: i - start }, (_, j) => response[start + j]);
      const want = targets[key as 0 | 1];
      if (value.length !== want.length || value.some((v, j) => v !== want[j])) return false;
    }
    return seen[0] && seen[1] && i === n - 2 && response[i] === tok.endCall && response[i + 1] === tok.eos;
  }
}

const enum Phase { Start, Fn, ArgOrEnd, Key, Value, End, Done }

const MARKERS: readonly number[] = [tok.call, tok.endCall, tok.arg, tok.eos];

class ToolCursor extends CursorBase {
  private phase = Phase.Start;
  /** The function as written (index into FN_IDS); decides the targets. */
  private fn: number;
  private targets: [number[], number[]];
  private keysDone = [false, false];
  private key = 0;
  private valPos = 0;

  constructor(private readonly task: ToolTask, private readonly prompt: ToolPrompt) {
    super(task.vocab, task.config.noise);
    this.fn = prompt.intent;
    this.targets = targetsFor(prompt, prompt.intent);
  }

  private remaining(): number[] {
    const out: number[] = [];
    if (!this.keysDone[0]) out.push(0);
    if (!this.keysDone[1]) out.push(1);
    return out;
  }

  protected active(dist: SparseDist): void {
    const c = this.task.config;
    switch (this.phase) {
      case Phase.Start:
        dist.add(tok.call, 1);
        return;
      case Phase.Fn: {
        const right = this.prompt.intent;
        dist.add(FN_IDS[right], 1 - c.fnError);
        for (let f = 0; f < FN_IDS.length; f++) if (f !== right) dist.add(FN_IDS[f], c.fnError / (FN_IDS.length - 1));
        return;
      }
      case Phase.ArgOrEnd:
        dist.add(this.remaining().length > 0 ? tok.arg : tok.endCall, 1);
        return;
      case Phase.Key: {
        const rem = this.remaining();
        if (rem.length === 2) {
          dist.add(KEY_ITEMS, c.itemsFirst);
          dist.add(KEY_N, 1 - c.itemsFirst);
        } else dist.add(rem[0] === 0 ? KEY_ITEMS : KEY_N, 1);
        return;
      }
      case Phase.Value: {
        const want = this.targets[this.key][this.valPos];
        if (this.key === 0) {
          const transformed = ITEM_TRANSFORM[this.fn] !== 'copy';
          const e = c.itemError * (transformed ? c.transformErrorFactor : 1);
          const mistake = transformed ? this.prompt.items[this.valPos] ?? -1 : -1;
          addEntity(dist, want, e, mistake, this.prompt.items);
        } else {
          const transformed = NUMBER_TRANSFORM[this.fn] !== 'copy';
          const e = c.numberError * (transformed ? c.transformErrorFactor : 1);
          const plain = numberDigits(this.prompt.number);
          const target = this.targets[1];
          const mistake = transformed && plain.length === target.length ? plain[this.valPos] : -1;
          addDigit(dist, (d) => tok.digit(d), tok.digitOf(want), e, mistake);
        }
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
      case Phase.Fn:
        return FN_IDS;
      case Phase.Key:
        return [KEY_ITEMS, KEY_N];
      case Phase.Value:
        return this.key === 0 ? this.prompt.items : this.vocab.groups.digits;
      default:
        return MARKERS;
    }
  }

  protected phaseCode(): number {
    return this.phase;
  }

  valid(): number[] {
    switch (this.phase) {
      case Phase.Start:
        return [tok.call];
      case Phase.Fn:
        return [FN_IDS[this.prompt.intent]];
      case Phase.ArgOrEnd:
        return [this.remaining().length > 0 ? tok.arg : tok.endCall];
      case Phase.Key:
        return this.remaining().map((k) => (k === 0 ? KEY_ITEMS : KEY_N)).sort((a, b) => a - b);
      case Phase.Value:
        return [this.targets[this.key][this.valPos]];
      case Phase.End:
        return [tok.eos];
      case Phase.Done:
        return [];
    }
  }

  push(token: number): void {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocab.size) throw new Error(`ToolCursor.push: token must be an id in [0, ${this.vocab.size}), got ${token}`);
    this.position++;
    if (this.phase === Phase.Done) return;
    if (token === tok.eos) {
      if (this.phase !== Phase.End) this.confusion++;
      this.phase = Phase.Done;
      this.done = true;
      return;
    }
    switch (this.phase) {
      case Phase.Start:
        if (token === tok.call) this.phase = Phase.Fn;
        else this.confusion++;
        return;
      case Phase.Fn: {
        const f = FN_IDS.indexOf(token);
        if (f < 0) {
          this.confusion++;
          return;
        }
        if (f !== this.prompt.intent) {
          this.confusion++;
          this.fn = f;
          this.targets = targetsFor(this.prompt, f);
        }
        this.phase = Phase.ArgOrEnd;
        return;
      }
      case Phase.ArgOrEnd:
        this.pushStructure(token);
        return;
      case Phase.Key: {
        const k = token === KEY_ITEMS ? 0 : token === KEY_N ? 1 : -1;
        if (k < 0 || this.keysDone[k]) {
          this.confusion++;
          return;
        }
        this.key = k;
        this.valPos = 0;
        this.phase = Phase.Value;
        return;
      }
      case Phase.Value: {
        if (token === tok.arg || token === tok.endCall) {
          // the value was cut short: take it as given and read the marker
          this.confusion++;
          this.keysDone[this.key] = true;
          this.phase = Phase.ArgOrEnd;
          this.pushStructure(token);
          return;
        }
        const rightKind = this.key === 0 ? ENTITY_IDS.includes(token) : tok.digitOf(token) >= 0;
        if (!rightKind) {
          this.confusion++;
          return;
        }
        if (token !== this.targets[this.key][this.valPos]) this.confusion++;
        this.valPos++;
        if (this.valPos === this.targets[this.key].length) {
          this.keysDone[this.key] = true;
          this.phase = Phase.ArgOrEnd;
        }
        return;
      }
      case Phase.End:
        this.confusion++;
        return;
    }
  }

  /** <arg> or </call> where the teacher expects one of them. */
  private pushStructure(token: number): void {
    const left = this.remaining().length;
    if (token === tok.arg && left > 0) this.phase = Phase.Key;
    else if (token === tok.endCall) {
      if (left > 0) this.confusion++; // missing arguments
      this.phase = Phase.End;
    } else this.confusion++;
  }

  clone(): TeacherCursor {
    const c = new ToolCursor(this.task, this.prompt);
    this.copyBaseTo(c);
    c.phase = this.phase;
    c.fn = this.fn;
    c.targets = [this.targets[0].slice(), this.targets[1].slice()];
    c.keysDone = this.keysDone.slice();
    c.key = this.key;
    c.valPos = this.valPos;
    return c;
  }
}

/**
 * Mass around a correct entity: 1 - e on `correct`; of e, half on `mistake` (if any, and different), the rest
 * evenly on the other prompt entities; with no other candidate, on the neighbouring entities in the vocabulary.
 */
function addEntity(dist: SparseDist, correct: number, e: number, mistake: number, promptItems: readonly number[]): void {
  dist.add(correct, 1 - e);
  if (e <= 0) return;
  const hasMistake = mistake >= 0 && mistake !== correct;
  const others = promptItems.filter((x) => x !== correct && x !== mistake);
  let rest = e;
  if (hasMistake) {
    if (others.length === 0) {
      dist.add(mistake, e);
      return;
    }
    dist.add(mistake, e / 2);
    rest = e / 2;
  }
  if (others.length > 0) {
    for (const o of others) dist.add(o, rest / others.length);
    return;
  }
  const i = ENTITY_IDS.indexOf(correct);
  const n = ENTITY_IDS.length;
  dist.add(ENTITY_IDS[(i + 1) % n], rest / 2);
  dist.add(ENTITY_IDS[(i + n - 1) % n], rest / 2);
}
