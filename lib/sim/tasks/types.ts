/**
 * What a simulated task is: a vocabulary, a prompt distribution with deterministic train/test splits, a verifier
 * for complete responses, and an exact teacher pT(. | prompt, response prefix) defined for every prefix.
 *
 * The teacher is exposed as an incremental cursor (one per sequence): `logprobs` writes the full [V] row of
 * log pT at the current prefix, `push` advances by one response token. Scoring a batch walks each sequence once
 * (O(T) per sequence, no re-parsing); `teacher.ts` has the batch helpers built on it.
 *
 * A response is the list of sampled tokens after the prompt, including the terminating <eos> when there is one.
 */
import type { Vocab } from '../vocab';

export type Split = 'train' | 'test';
export const SPLITS: readonly Split[] = ['train', 'test'];

/** A prompt: the tokens the model sees, plus task-specific fields in subtypes. */
export interface Prompt {
  /** <bos> ... <sep>: what the student is conditioned on. */
  tokens: Int32Array;
  /** Canonical text of the problem (e.g. "473+289"); decides the split and identifies the prompt. */
  key: string;
}

/** The teacher at one sequence: log pT(. | prompt, prefix) for the prefix pushed so far. */
export interface TeacherCursor {
  /** Response tokens pushed so far. */
  readonly position: number;
  /** True once <eos> has been pushed. */
  readonly done: boolean;
  /**
   * Deviations from the teacher's own correct paths so far: wrong digits or values, tokens that do not fit the
   * grammar, an early end. 0 on every correct path; the teacher's guidance flattens as it grows.
   */
  readonly confusion: number;
  /** Writes log pT(v | prompt, prefix) for v in [0, V) into out[offset, offset + V). Every entry is finite. */
  logprobs(out: Float32Array, offset?: number): void;
  /**
   * The continuations the teacher means as correct from its current state (ascending ids); empty once done.
   * While confusion is 0, a response is verified correct iff every token was in this set when it was pushed and
   * the response ends right after its <eos>.
   */
  valid(): number[];
  /** Advance by one response token (any id in [0, V)). */
  push(token: number): void;
  /** An independent copy of this cursor. */
  clone(): TeacherCursor;
}

export interface Task<P extends Prompt = Prompt> {
  /** 'math' or 'tool' (the registry name). */
  readonly name: string;
  readonly vocab: Vocab;
  /** The task's resolved configuration (JSON-serialisable; goes into run folders). */
  readonly config: Readonly<object>;
  /** Longest prompt the task produces (tokens, <bos> and <sep> included). */
  readonly maxPromptLength: number;
  /** Longest correct response (tokens, <eos> included); samplers stop there. */
  readonly maxResponseLength: number;
  /**
   * n prompts of the split, drawn i.i.d. (with replacement) from the task's prompt distribution restricted to
   * that split; deterministic in (config, split, n, seed).
   */
  samplePrompts(split: Split, n: number, seed: number): P[];
  /** Which split a prompt belongs to: a fixed function of its key, so the splits never overlap. */
  splitOf(prompt: P): Split;
  /** A fresh teacher cursor at the empty response. */
  cursor(prompt: P): TeacherCursor;
  /** True iff the response is a complete correct solution (ends with its single <eos>). */
  verify(prompt: P, response: ArrayLike<number>): boolean;
  /** Human-readable problem and reference answer, e.g. "473 + 289 = 762". */
  describe(prompt: P): string;
}
