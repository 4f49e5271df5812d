/**
 * The one vocabulary every simulated task and the student share (V = 256 tokens).
 *
 *   ids 0-3     specials  <pad> <bos> <eos> <sep>
 *   ids 4-6     tool-call markers  <call> </call> <arg>
 *   ids 7-16    digits 0-9
 *   then        math tokens (step markers C and S, answer markers = and =r; tasks/math.ts),
 *               operators, tool intents, function names, argument keys, entity words,
 *   the rest    distractors: plausible filler words, then numbered fillers up to V. No task ever needs them;
 *               the exact teachers give them small non-zero mass (see tasks/common.ts), so a top-K of 4 to 32
 *               over the teacher cuts into a real tail.
 *
 * The layout is fixed: ids are part of saved checkpoints and fixtures. Append-only changes must keep V.
 */

export const VOCAB_SIZE = 256;

const SPECIALS = ['<pad>', '<bos>', '<eos>', '<sep>'] as const;
const TOOL_MARKERS = ['<call>', '</call>', '<arg>'] as const;
const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
/** Math steps: C a b r k = "column digits a, b; result r, carry k"; S a b t u = "column digits; sum 10 t + u";
 * '=' answer, '=r' answer written least-significant digit first. */
const MATH = ['C', 'S', '=', '=r'] as const;
const OPERATORS = ['+', '-', '*', '(', ')', ',', ':', '.'] as const;
/** Tool task: what the user asks for (prompt side) and the function that does it (response side). */
export const TOOL_INTENTS = ['find', 'sort', 'rev', 'inc', 'dbl'] as const;
export const TOOL_FUNCTIONS = ['fn:search', 'fn:sort', 'fn:reverse', 'fn:count', 'fn:scale'] as const;
export const TOOL_KEYS = ['k:items', 'k:n'] as const;
/** Entity words for tool arguments; alphabetical, so sorting by id is sorting by name. */
export const ENTITIES = [
  'apple', 'berlin', 'cairo', 'delta', 'eagle', 'falcon', 'garnet', 'harbor', 'iris', 'jade', 'kilo', 'lemon',
  'maple', 'nova', 'onyx', 'pearl', 'quartz', 'raven', 'sierra', 'tango', 'umber', 'violet', 'willow', 'zephyr',
] as const;
const FILLER_WORDS = [
  'the', 'a', 'so', 'then', 'wait', 'hmm', 'answer', 'step', 'first', 'next', 'total', 'is', 'of', 'and', 'we',
  'carry', 'sum', 'digit', 'number', 'result', 'ok', 'check', 'let', 'now', 'thus', 'therefore', 'hence',
  'because', 'maybe', 'note', 'write', 'call', 'tool', 'value', 'list', 'item', 'args', 'done', 'yes', 'no',
  'add', 'plus', 'equals', 'column', 'left', 'right', 'again', 'verify', 'final', 'compute',
] as const;

export interface Vocab {
  /** V, the number of tokens. */
  size: number;
  /** tokens[id] = the token's text. */
  tokens: readonly string[];
  /** Token id by text; throws on an unknown token. */
  id(text: string): number;
  /** Ids of named groups, for tasks and tests. */
  groups: {
    specials: readonly number[];
    digits: readonly number[];
    entities: readonly number[];
    intents: readonly number[];
    functions: readonly number[];
    keys: readonly number[];
    /** Tokens no task ever needs (the teacher's tail). */
    distractors: readonly number[];
  };
  /** Space-separated text of ids (unknown ids shown as #id). */
  decode(ids: ArrayLike<number>): string;
  /** Ids of space-separated tokens. */
  encode(text: string): Int32Array;
}

function buildVocab(): Vocab {
  const tokens: string[] = [
    ...SPECIALS, ...TOOL_MARKERS, ...DIGITS, ...MATH, ...OPERATORS, ...TOOL_INTENTS, ...TOOL_FUNCTIONS, ...TOOL_KEYS, ...ENTITIES,
  ];
  const firstDistractor = tokens.length;
  tokens.push(...FILLER_WORDS);
  for (let i = 0; tokens.length < VOCAB_SIZE; i++) tokens.push(`x${String(i).padStart(3, '0')}`);
  const index = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (index.has(t)) throw new Error(`vocab: duplicate token '${t}'`);
    index.set(t, i);
  });
  const id = (text: string): number => {
    const v = index.get(text);
    if (v === undefined) throw new Error(`vocab: unknown token '${text}'`);
    return v;
  };
  const range = (lo: number, hi: number) => Array.from({ length: hi - lo }, (_, i) => lo + i);
  return {
    size: tokens.length,
    tokens,
    id,
    groups: {
      specials: SPECIALS.map(id),
      digits: DIGITS.map(id),
      entities: ENTITIES.map(id),
      intents: TOOL_INTENTS.map(id),
      functions: TOOL_FUNCTIONS.map(id),
      keys: TOOL_KEYS.map(id),
      distractors: range(firstDistractor, tokens.length),
    },
    decode: (ids) => Array.from(ids, (i) => tokens[i] ?? `#${i}`).join(' '),
    encode: (text) => Int32Array.from(text.trim().split(/\s+/).filter((s) => s.length > 0).map(id)),
  };
}

/** The shared vocabulary. */
export const VOCAB: Vocab = buildVocab();

/** Fixed ids used everywhere (tok.digit(d) for digits). */
export const tok = {
  pad: VOCAB.id('<pad>'),
  bos: VOCAB.id('<bos>'),
  eos: VOCAB.id('<eos>'),
  sep: VOCAB.id('<sep>'),
  call: VOCAB.id('<call>'),
  endCall: VOCAB.id('</call>'),
  arg: VOCAB.id('<arg>'),
  plus: VOCAB.id('+'),
  stepCarry: VOCAB.id('C'),
  stepSum: VOCAB.id('S'),
  answer: VOCAB.id('='),
  answerRev: VOCAB.id('=r'),
  digit0: VOCAB.id('0'),
  digit(d: number): number {
    if (!Number.isInteger(d) || d < 0 || d > 9) throw new Error(`tok.digit: d must be an integer in [0, 9], got ${d}`);
    return this.digit0 + d;
  },
  /** The digit a token stands for, or -1. */
  digitOf(id: number): number {
    const d = id - this.digit0;
    return d >= 0 && d <= 9 ? d : -1;
  },
};
