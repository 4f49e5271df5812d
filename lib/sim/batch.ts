/**
 * The layout every batch of (prompt, response) sequences uses in the simulation: prompts left-padded to a common
 * width P, responses right-padded to a common width R, T = P + R columns.
 *
 *   row b:  <pad> x start_b | prompt_b (P - start_b tokens) | y_b,0 ... y_b,L_b-1 | <pad> x (R - L_b)
 *           columns 0 .. P - 1                                columns P .. P + R - 1
 *
 * Response token t of row b sits at column P + t for every row, and the student predicts it from column
 * P + t - 1, so the [B * R] response rows line up with the teacher rows of teacher.ts (row b * R + t) and with
 * objectives' DistillBatch (N = B * R, mask_N = mask_BR). Positions count from each row's first prompt token,
 * and attention never looks at the left padding, so a row's logits do not depend on how much padding it has.
 * Masks are explicit (architecture.md): mask_BR is 1 on response tokens up to and including <eos>.
 */
import { tok } from './vocab';

export interface SeqBatch {
  /** Rows. */
  B: number;
  /** Prompt width (columns 0 .. P - 1). */
  P: number;
  /** Response width (columns P .. P + R - 1). */
  R: number;
  /** [B * (P + R)] token ids, row-major. */
  tokens_BT: Int32Array;
  /** [B] the column of each row's first prompt token (its amount of left padding). */
  start_B: Int32Array;
  /** [B * R] 1 on response tokens (through <eos>), 0 on padding. */
  mask_BR: Float32Array;
  /** [B] response tokens per row, <eos> included. */
  responseLength_B: Int32Array;
}

/**
 * Pack prompts and responses into the layout above.
 * @param P response start column (default: the longest prompt); R response width (default: longest response).
 */
export function packBatch(prompts: readonly ArrayLike<number>[], responses: readonly ArrayLike<number>[], options: { P?: number; R?: number } = {}): SeqBatch {
  const B = prompts.length;
  if (responses.length !== B) throw new Error(`packBatch: need one response per prompt (${B}), got ${responses.length}`);
  if (B === 0) throw new Error('packBatch: prompts must not be empty');
  const longestPrompt = Math.max(...prompts.map((p) => p.length));
  const longestResponse = Math.max(...responses.map((r) => r.length));
  const P = options.P ?? longestPrompt;
  const R = options.R ?? longestResponse;
  if (!Number.isInteger(P) || P < longestPrompt) throw new Error(`packBatch: P must be an integer >= the longest prompt (${longestPrompt}), got ${P}`);
  if (!Number.isInteger(R) || R < longestResponse || R < 1) throw new Error(`packBatch: R must be an integer >= max(1, the longest response (${longestResponse})), got ${R}`);
  const T = P + R;
  const tokens_BT = new Int32Array(B * T).fill(tok.pad);
  const start_B = new Int32Array(B);
  const mask_BR = new Float32Array(B * R);
  const responseLength_B = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const p = prompts[b];
    const y = responses[b];
    if (p.length < 1) throw new Error(`packBatch: prompt ${b} is empty`);
    start_B[b] = P - p.length;
    for (let i = 0; i < p.length; i++) tokens_BT[b * T + start_B[b] + i] = p[i];
    for (let t = 0; t < y.length; t++) {
      tokens_BT[b * T + P + t] = y[t];
      mask_BR[b * R + t] = 1;
    }
    responseLength_B[b] = y.length;
  }
  return { B, P, R, tokens_BT, start_B, mask_BR, responseLength_B };
}

/** [B * R] the response tokens (padding where mask_BR is 0). */
export function responseTokens(batch: SeqBatch): Int32Array {
  const { B, P, R, tokens_BT } = batch;
  const T = P + R;
  const out = new Int32Array(B * R);
  for (let b = 0; b < B; b++) out.set(tokens_BT.subarray(b * T + P, b * T + T), b * R);
  return out;
}

/** The response of row b (its first responseLength_B[b] tokens). */
export function responseOf(batch: SeqBatch, b: number): Int32Array {
  const T = batch.P + batch.R;
  return batch.tokens_BT.slice(b * T + batch.P, b * T + batch.P + batch.responseLength_B[b]);
}

/** Checks the invariants of a SeqBatch, naming the op. */
export function validateSeqBatch(op: string, batch: SeqBatch, vocabSize: number): void {
  const { B, P, R, tokens_BT, start_B, mask_BR, responseLength_B } = batch;
  for (const [name, v] of [['B', B], ['P', P], ['R', R]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: batch.${name} must be a positive integer, got ${v}`);
  }
  const T = P + R;
  if (tokens_BT.length !== B * T) throw new Error(`${op}: batch.tokens_BT must have length B * (P + R) = ${B * T}, got ${tokens_BT.length}`);
  if (start_B.length !== B) throw new Error(`${op}: batch.start_B must have length B = ${B}, got ${start_B.length}`);
  if (mask_BR.length !== B * R) throw new Error(`${op}: batch.mask_BR must have length B * R = ${B * R}, got ${mask_BR.length}`);
  if (responseLength_B.length !== B) throw new Error(`${op}: batch.responseLength_B must have length B = ${B}, got ${responseLength_B.length}`);
  for (let b = 0; b < B; b++) {
    if (!(start_B[b] >= 0 && start_B[b] < P)) throw new Error(`${op}: batch.start_B[${b}] must be in [0, P = ${P}), got ${start_B[b]}`);
  }
  for (let i = 0; i < tokens_BT.length; i++) {
    const v = tokens_BT[i];
    if (!Number.isInteger(v) || v < 0 || v >= vocabSize) throw new Error(`${op}: batch.tokens_BT must hold ids in [0, ${vocabSize}), found ${v} at row ${Math.floor(i / T)}, column ${i % T}`);
  }
}
