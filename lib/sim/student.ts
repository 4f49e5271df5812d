/**
 * The student: a small pre-LayerNorm causal transformer (GPT-2 layout, Radford et al. 2019; nanoGPT) in
 * TensorFlow.js core ops, with seeded initialisation and a KV cache for sampling.
 *
 *   x_0        = E[y_t] + Pos[t - start_b]                                    E [V, D], Pos [C, D]
 *   a          = softmax(q k^T / sqrt(dh) + M) v   per head, q k v = LN1(x) Wqkv + bqkv (one fused [D, 3D] matMul)
 *   x          = x + a Wo + bo
 *   x          = x + relu(LN2(x) W1 + b1) W2 + b2                              W1 [D, mlpRatio D]
 *   logits     = LNf(x) Wout                                                   Wout [D, V] (untied, no bias)
 *   M[b, i, j] = 0 if start_b <= j <= i, else -1e9 (causal, and never attends to left padding)
 *
 * Shapes: B rows, T columns, D width, H heads, dh = D / H, V vocabulary, C context. The residual stream is kept
 * as [B T, D] so every projection is one 2-D XNNPACK matMul with bias and ReLU fused (kernels.ts `linear`, whose
 * gradient avoids wasm's slow transposed matMul), and attention over all heads is one JS kernel on the fused
 * [B T, 3D] qkv (kernels.ts `causalAttention`: no per-head loops of ops, no batched matMul, no mask tensor).
 *
 * Sampling: `prefill` runs the prompts [B, P] through the same maths (inference ops) and fills a KV cache; each
 * `decode` step then feeds one token per row for all the rows still sampling at once (`rows`). tfjs op dispatch
 * costs about 20 us per op on wasm, so a decode step keeps only the projections as tfjs ops (4 per layer + the unembedding) and does the
 * embedding, LayerNorms, residual adds and attention over the cached keys/values (JS arrays [B, C, D] per layer,
 * kernels.ts `attendOne`) in JS on a snapshot of the small weights. Tests hold the decoded logits equal to the
 * full pass.
 *
 * Embeddings use tf.gather forward with a ScatterND gradient (tf.gather's own gradient needs UnsortedSegmentSum,
 * which the wasm backend lacks; ScatterND adds duplicate indices).
 *
 * Initialisation (GPT-2): weights N(0, initStd^2), the two residual projections Wo, W2 scaled by 1/sqrt(2 L),
 * biases 0, LayerNorm gains 1; drawn from rng.ts in the fixed order of `parameterSpecs`, so the same seed gives
 * the same weights on any backend.
 */
import * as tf from '@tensorflow/tfjs';
import { validateSeqBatch, type SeqBatch } from './batch';
import { deriveSeed, Rng } from './rng';
import { allRows, attendOne, attentionForward, cacheWrite, cacheWriteRows, causalAttention, createJsCache, linear, type JsKVCache } from './kernels';
import { VOCAB_SIZE } from './vocab';

export interface StudentConfig {
  /** V: vocabulary size (the shared simulation vocabulary has 256). */
  vocabSize: number;
  /** C: most columns (prompt + response - 1) one forward pass may see; sizes the position table. */
  context: number;
  /** L: transformer blocks. */
  layers: number;
  /** D: residual width. */
  width: number;
  /** H: attention heads (D must divide by H). */
  heads: number;
  /** MLP hidden width = mlpRatio * D. */
  mlpRatio: number;
  /** Standard deviation of the normal initialisation. */
  initStd: number;
  /** Seed of the initialisation. */
  seed: number;
}

export const DEFAULT_STUDENT: Readonly<StudentConfig> = {
  vocabSize: VOCAB_SIZE,
  context: 48,
  layers: 2,
  width: 64,
  heads: 4,
  mlpRatio: 4,
  initStd: 0.02,
  seed: 0,
};

export function resolveStudentConfig(options: Partial<StudentConfig> = {}): StudentConfig {
  const c = { ...DEFAULT_STUDENT } as StudentConfig;
  for (const key of Object.keys(options)) {
    if (!(key in DEFAULT_STUDENT)) throw new Error(`Student: unknown option '${key}' (known: ${Object.keys(DEFAULT_STUDENT).join(', ')})`);
    const v = (options as Record<string, unknown>)[key];
    if (v !== undefined) (c as unknown as Record<string, unknown>)[key] = v;
  }
  const int = (name: keyof StudentConfig, lo: number, hi: number) => {
    const v = c[name];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new Error(`Student: ${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  int('vocabSize', 2, 1 << 20);
  int('context', 2, 1 << 16);
  int('layers', 1, 64);
  int('width', 1, 1 << 14);
  int('heads', 1, 1 << 10);
  int('mlpRatio', 1, 64);
  if (c.width % c.heads !== 0) throw new Error(`Student: width (${c.width}) must be divisible by heads (${c.heads})`);
  if (!(c.initStd > 0) || !Number.isFinite(c.initStd)) throw new Error(`Student: initStd must be a finite number > 0, got ${c.initStd}`);
  if (!Number.isFinite(c.seed)) throw new Error(`Student: seed must be a finite number, got ${c.seed}`);
  return c;
}

/** A parameter's canonical name, shape and initialiser. */
export interface ParameterSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'residual' | 'zeros' | 'ones';
}

/** Every parameter in canonical order (the order of `Student.variables`, checkpoints and Adam's slots). */
export function parameterSpecs(c: StudentConfig): ParameterSpec[] {
  const D = c.width;
  const M = c.mlpRatio * D;
  const specs: ParameterSpec[] = [
    { name: 'tokEmb', shape: [c.vocabSize, D], init: 'normal' },
    { name: 'posEmb', shape: [c.context, D], init: 'normal' },
  ];
  for (let l = 0; l < c.layers; l++) {
    specs.push(
      { name: `h${l}.ln1.g`, shape: [D], init: 'ones' },
      { name: `h${l}.ln1.b`, shape: [D], init: 'zeros' },
      { name: `h${l}.attn.wqkv`, shape: [D, 3 * D], init: 'normal' },
      { name: `h${l}.attn.bqkv`, shape: [3 * D], init: 'zeros' },
      { name: `h${l}.attn.wo`, shape: [D, D], init: 'residual' },
      { name: `h${l}.attn.bo`, shape: [D], init: 'zeros' },
      { name: `h${l}.ln2.g`, shape: [D], init: 'ones' },
      { name: `h${l}.ln2.b`, shape: [D], init: 'zeros' },
      { name: `h${l}.mlp.w1`, shape: [D, M], init: 'normal' },
      { name: `h${l}.mlp.b1`, shape: [M], init: 'zeros' },
      { name: `h${l}.mlp.w2`, shape: [M, D], init: 'residual' },
      { name: `h${l}.mlp.b2`, shape: [D], init: 'zeros' },
    );
  }
  specs.push(
    { name: 'lnf.g', shape: [D], init: 'ones' },
    { name: 'lnf.b', shape: [D], init: 'zeros' },
    { name: 'wout', shape: [D, c.vocabSize], init: 'normal' },
  );
  return specs;
}

/** The seeded initial values of every parameter, in canonical order. */
export function initialWeights(c: StudentConfig): Map<string, Float32Array> {
  const rng = new Rng(deriveSeed(c.seed, 'student-init'));
  const residualScale = 1 / Math.sqrt(2 * c.layers);
  const out = new Map<string, Float32Array>();
  for (const s of parameterSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n);
    if (s.init === 'ones') w.fill(1);
    else if (s.init === 'normal' || s.init === 'residual') {
      const std = c.initStd * (s.init === 'residual' ? residualScale : 1);
      for (let i = 0; i < n; i++) w[i] = std * rng.normal();
    }
    out.set(s.name, w);
  }
  return out;
}

/** Rows of `table` [V, D] at `ids`, differentiable on wasm (gather forward, ScatterND backward). */
export function gatherRows(table: tf.Tensor2D, ids: Int32Array): tf.Tensor2D {
  const [V, D] = table.shape;
  return tf.tidy(() => {
    const idx = tf.tensor1d(ids, 'int32');
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const t = args[0] as tf.Tensor2D;
      const save = args[1] as tf.GradSaveFunc;
      save([idx]);
      return {
        value: tf.gather(t, idx),
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(tf.expandDims(saved[0], 1), dy, [V, D]),
      };
    });
    return op(table) as tf.Tensor2D;
  });
}

const LN_EPS = 1e-5;

function layerNorm(x: tf.Tensor2D, g: tf.Variable, b: tf.Variable): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))), g), b) as tf.Tensor2D;
}

const as2d = (v: tf.Variable) => v as unknown as tf.Tensor2D;
const as1d = (v: tf.Variable) => v as unknown as tf.Tensor1D;

interface Block {
  ln1g: tf.Variable; ln1b: tf.Variable; wqkv: tf.Variable; bqkv: tf.Variable; wo: tf.Variable; bo: tf.Variable;
  ln2g: tf.Variable; ln2b: tf.Variable; w1: tf.Variable; b1: tf.Variable; w2: tf.Variable; b2: tf.Variable;
}

/** Small parameters copied to JS at prefill, so a decode step runs embedding and LayerNorms without ops. */
interface InferenceParams {
  tokEmb: Float32Array;
  posEmb: Float32Array;
  /** Per layer: ln1.g, ln1.b, ln2.g, ln2.b. */
  ln: Float32Array[][];
  lnf: Float32Array[];
}

/** Keys and values of every layer for the columns seen so far (JS arrays, kernels.ts), plus a weight snapshot. */
export interface KVCache extends JsKVCache {
  params: InferenceParams;
}

/** LayerNorm of each row of x [N, D] in JS (population variance, as tf.moments). */
function layerNormJs(x: Float32Array, N: number, D: number, g: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(N * D);
  for (let n = 0; n < N; n++) {
    const o = n * D;
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[o + d];
    mean /= D;
    let v = 0;
    for (let d = 0; d < D; d++) {
      const c = x[o + d] - mean;
      v += c * c;
    }
    const inv = 1 / Math.sqrt(v / D + LN_EPS);
    for (let d = 0; d < D; d++) out[o + d] = (x[o + d] - mean) * inv * g[d] + b[d];
  }
  return out;
}

let instances = 0;

export class Student {
  readonly config: Readonly<StudentConfig>;
  /** Every parameter, in canonical order (pass exactly this list to optimisers). */
  readonly variables: tf.Variable[];
  /** Canonical names, aligned with `variables`. */
  readonly names: string[];
  private readonly tokEmb: tf.Variable;
  private readonly posEmb: tf.Variable;
  private readonly blocks: Block[] = [];
  private readonly lnfG: tf.Variable;
  private readonly lnfB: tf.Variable;
  private readonly wout: tf.Variable;
  private disposed = false;

  /** A student with seeded initial weights, or with the given weights (canonical name -> values). */
  constructor(options: Partial<StudentConfig> = {}, weights?: Map<string, Float32Array>) {
    const c = resolveStudentConfig(options);
    this.config = Object.freeze(c);
    const specs = parameterSpecs(c);
    const values = weights ?? initialWeights(c);
    const prefix = `student${instances++}`;
    this.names = specs.map((s) => s.name);
    this.variables = specs.map((s) => {
      const w = values.get(s.name);
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (!w) throw new Error(`Student: weights lack '${s.name}'`);
      if (w.length !== n) throw new Error(`Student: weights '${s.name}' must have ${n} values (shape [${s.shape.join(', ')}]), got ${w.length}`);
      // tidy disposes the initial tensor (the variable keeps its data), so disposing the student frees everything
      return tf.tidy(() => tf.variable(tf.tensor(w, s.shape, 'float32'), true, `${prefix}/${s.name}`));
    });
    if (weights) for (const k of weights.keys()) if (!this.names.includes(k)) throw new Error(`Student: weights hold unknown parameter '${k}'`);
    const byName = (n: string) => this.variables[this.names.indexOf(n)];
    this.tokEmb = byName('tokEmb');
    this.posEmb = byName('posEmb');
    for (let l = 0; l < c.layers; l++) {
      const p = (n: string) => byName(`h${l}.${n}`);
      this.blocks.push({
        ln1g: p('ln1.g'), ln1b: p('ln1.b'), wqkv: p('attn.wqkv'), bqkv: p('attn.bqkv'), wo: p('attn.wo'), bo: p('attn.bo'),
        ln2g: p('ln2.g'), ln2b: p('ln2.b'), w1: p('mlp.w1'), b1: p('mlp.b1'), w2: p('mlp.w2'), b2: p('mlp.b2'),
      });
    }
    this.lnfG = byName('lnf.g');
    this.lnfB = byName('lnf.b');
    this.wout = byName('wout');
  }

  /** Number of scalar parameters. */
  parameterCount(): number {
    return this.variables.reduce((a, v) => a + v.size, 0);
  }

  /** Current weights by canonical name (copies). */
  getWeights(): Map<string, Float32Array> {
    this.assertAlive('getWeights');
    const out = new Map<string, Float32Array>();
    this.variables.forEach((v, i) => out.set(this.names[i], (v.dataSync() as Float32Array).slice()));
    return out;
  }

  /** Overwrite weights (every canonical name must be present with the right size). */
  setWeights(weights: Map<string, Float32Array>): void {
    this.assertAlive('setWeights');
    this.variables.forEach((v, i) => {
      const w = weights.get(this.names[i]);
      if (!w) throw new Error(`Student.setWeights: weights lack '${this.names[i]}'`);
      if (w.length !== v.size) throw new Error(`Student.setWeights: '${this.names[i]}' must have ${v.size} values, got ${w.length}`);
      tf.tidy(() => v.assign(tf.tensor(w, v.shape, 'float32')));
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.variables) v.dispose();
  }

  private assertAlive(op: string): void {
    if (this.disposed) throw new Error(`Student.${op}: the student has been disposed`);
  }

  /** Column -> position id (columns before a row's start get 0; their outputs are never used). */
  private positions(B: number, col0: number, T: number, start_B: Int32Array): Int32Array {
    const C = this.config.context;
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const p = col0 + t - start_B[b];
        if (p >= C) throw new Error(`Student: column ${col0 + t} of row ${b} is position ${p}, past the context (${C})`);
        pos[b * T + t] = p < 0 ? 0 : p;
      }
    }
    return pos;
  }

  /** x_0 = E[ids] + Pos[positions]: [B T, D]. */
  private embed(ids: Int32Array, pos: Int32Array): tf.Tensor2D {
    return tf.add(gatherRows(this.tokEmb as unknown as tf.Tensor2D, ids), gatherRows(this.posEmb as unknown as tf.Tensor2D, pos)) as tf.Tensor2D;
  }

  /**
   * One block on x [B Tq, D] for columns 0 .. Tq - 1. Without a cache: the differentiable training pass. With a
   * cache (prefill): inference ops, and the keys and values are also written into layer l of the cache.
   */
  private block(blk: Block, x: tf.Tensor2D, B: number, Tq: number, start_B: Int32Array, cache: { c: KVCache; l: number } | null): tf.Tensor2D {
    const { width: D, heads } = this.config;
    // without a cache this is the differentiable training pass (custom gradients); with one, inference
    const lin = cache
      ? (a: tf.Tensor2D, w: tf.Variable, bias: tf.Variable | null, activation: 'linear' | 'relu' = 'linear') =>
          tf.fused.matMul({ a, b: as2d(w), bias: bias ?? undefined, activation }) as tf.Tensor2D
      : (a: tf.Tensor2D, w: tf.Variable, bias: tf.Variable | null, activation: 'linear' | 'relu' = 'linear') =>
          linear(a, as2d(w), bias ? as1d(bias) : null, activation);
    const h = layerNorm(x, blk.ln1g, blk.ln1b);
    const qkv = lin(h, blk.wqkv, blk.bqkv); // [B Tq, 3D]
    let att: tf.Tensor2D; // [B Tq, D]
    if (!cache) att = causalAttention(qkv, { B, T: Tq, heads, width: D, start_B });
    else {
      const data = qkv.dataSync() as Float32Array;
      cacheWrite(cache.c, cache.l, data, 0, Tq);
      att = tf.tensor2d(attentionForward(data, { B, T: Tq, heads, width: D, start_B }).out, [B * Tq, D]);
    }
    const x1 = tf.add(x, lin(att, blk.wo, blk.bo)) as tf.Tensor2D;
    const h2 = layerNorm(x1, blk.ln2g, blk.ln2b);
    const mlp = lin(lin(h2, blk.w1, blk.b1, 'relu'), blk.w2, blk.b2);
    return tf.add(x1, mlp) as tf.Tensor2D;
  }

  private unembed(x: tf.Tensor2D): tf.Tensor2D {
    return linear(layerNorm(x, this.lnfG, this.lnfB), as2d(this.wout), null);
  }

  private checkIds(op: string, ids: Int32Array, width: number): void {
    const V = this.config.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!(id >= 0 && id < V && Number.isInteger(id))) throw new Error(`Student.${op}: tokens must be ids in [0, ${V}), found ${id} at row ${Math.floor(i / width)}, column ${i % width}`);
    }
  }

  /** The residual stream after every block for columns 0 .. T - 1: [B T, D]. */
  private hidden(tokens_BT: Int32Array, B: number, T: number, start_B: Int32Array): tf.Tensor2D {
    this.checkIds('forward', tokens_BT, T);
    let x = this.embed(tokens_BT, this.positions(B, 0, T, start_B));
    for (const blk of this.blocks) x = this.block(blk, x, B, T, start_B, null);
    return x;
  }

  /**
   * Logits at every column: [B, T, V]; logits[b, t] predicts column t + 1.
   * @param tokens_BT row-major [B * T]; start_B [B] left padding per row (default all 0).
   */
  forward(tokens_BT: Int32Array, B: number, T: number, start_B?: Int32Array): tf.Tensor3D {
    this.assertAlive('forward');
    if (tokens_BT.length !== B * T) throw new Error(`Student.forward: tokens must hold B * T = ${B * T} ids, got ${tokens_BT.length}`);
    const start = start_B ?? new Int32Array(B);
    if (start.length !== B) throw new Error(`Student.forward: start_B must have length B = ${B}, got ${start.length}`);
    return tf.tidy(() => tf.reshape(this.unembed(this.hidden(tokens_BT, B, T, start)), [B, T, this.config.vocabSize]) as tf.Tensor3D);
  }

  /**
   * Logits predicting each response token of a packed batch: [B R, V], row b R + t predicts response token t
   * (from column P + t - 1). Only the needed columns are unembedded. Differentiable in the weights.
   */
  responseLogits(batch: SeqBatch): tf.Tensor2D {
    this.assertAlive('responseLogits');
    validateSeqBatch('Student.responseLogits', batch, this.config.vocabSize);
    const { B, P, R, tokens_BT, start_B } = batch;
    const T = P + R;
    const Tin = T - 1; // the last column's own prediction is never needed
    const D = this.config.width;
    const input = new Int32Array(B * Tin);
    for (let b = 0; b < B; b++) input.set(tokens_BT.subarray(b * T, b * T + Tin), b * Tin);
    return tf.tidy(() => {
      const x = tf.reshape(this.hidden(input, B, Tin, start_B), [B, Tin, D]);
      const rows = tf.reshape(tf.slice(x, [0, P - 1, 0], [B, R, D]), [B * R, D]) as tf.Tensor2D; // [B, Tin, D] -> [B R, D]
      return this.unembed(rows);
    });
  }

  /**
   * Start a KV cache on left-padded prompts [B, P] with room for `capacity` columns (prompt + new tokens) and
   * return the logits for column P [B * V] (row-major plain array). The cache lives in JS arrays (no tensors to
   * dispose) and holds a snapshot of the small weights: do not update the weights while decoding with it.
   */
  prefill(prompts_BP: Int32Array, B: number, P: number, start_B: Int32Array, capacity: number): { logits_BV: Float32Array; cache: KVCache } {
    this.assertAlive('prefill');
    const { width: D, heads, layers } = this.config;
    if (prompts_BP.length !== B * P) throw new Error(`Student.prefill: prompts must hold B * P = ${B * P} ids, got ${prompts_BP.length}`);
    if (start_B.length !== B) throw new Error(`Student.prefill: start_B must have length B = ${B}, got ${start_B.length}`);
    if (!Number.isInteger(capacity) || capacity < P) throw new Error(`Student.prefill: capacity must be an integer >= P = ${P}, got ${capacity}`);
    this.checkIds('prefill', prompts_BP, P);
    const data = (v: tf.Variable) => (v.dataSync() as Float32Array).slice();
    const params: InferenceParams = {
      tokEmb: data(this.tokEmb),
      posEmb: data(this.posEmb),
      ln: this.blocks.map((b) => [data(b.ln1g), data(b.ln1b), data(b.ln2g), data(b.ln2b)]),
      lnf: [data(this.lnfG), data(this.lnfB)],
    };
    const cache: KVCache = { ...createJsCache(layers, B, capacity, D, heads, start_B), params };
    const logits = tf.tidy(() => {
      let x = this.embed(prompts_BP, this.positions(B, 0, P, start_B));
      this.blocks.forEach((blk, l) => {
        x = this.block(blk, x, B, P, start_B, { c: cache, l });
      });
      const last = tf.reshape(tf.slice(tf.reshape(x, [B, P, D]), [0, P - 1, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
      return this.unembed(last);
    });
    const logits_BV = logits.dataSync() as Float32Array;
    logits.dispose();
    cache.length = P;
    return { logits_BV, cache };
  }

  /**
   * Feed one token per row at column cache.length; returns logits for the next column [A * V]; grows the cache.
   * `rows` (default all B) are the cache rows fed (A = rows.length; tokens_A aligns with it): rows that have
   * finished sampling are simply left out, and their columns are never written. A row's logits do not depend on
   * which other rows are fed (every op is row-wise; test/sim/student.test.ts holds them bit-equal).
   * Same maths as the full pass, arranged for op count: embedding, LayerNorms, residual adds and attention run
   * in JS on the snapshot; only the four projections per layer and the unembedding are tfjs ops (16 per step).
   */
  decode(cache: KVCache, tokens_A: Int32Array, rows: Int32Array = allRows(cache.B)): Float32Array {
    this.assertAlive('decode');
    const A = rows.length;
    const { width: D, context: C } = this.config;
    if (tokens_A.length !== A) throw new Error(`Student.decode: tokens must hold one id per fed row (${A}), got ${tokens_A.length}`);
    if (A === 0) throw new Error('Student.decode: rows must not be empty');
    for (let a = 0; a < A; a++) {
      const b = rows[a];
      if (!(b >= 0 && b < cache.B) || (a > 0 && b <= rows[a - 1])) throw new Error(`Student.decode: rows must be increasing cache rows in [0, ${cache.B}), found ${b} at ${a}`);
    }
    this.checkIds('decode', tokens_A, 1);
    const col = cache.length;
    if (col >= cache.capacity) throw new Error(`Student.decode: the cache is full (${cache.capacity} columns)`);
    const { tokEmb, posEmb, ln, lnf } = cache.params;
    const x = new Float32Array(A * D);
    for (let a = 0; a < A; a++) {
      const b = rows[a];
      const p = col - cache.start_B[b];
      if (p >= C) throw new Error(`Student.decode: column ${col} of row ${b} is position ${p}, past the context (${C})`);
      const te = tokens_A[a] * D;
      const pe = (p < 0 ? 0 : p) * D;
      for (let d = 0; d < D; d++) x[a * D + d] = tokEmb[te + d] + posEmb[pe + d];
    }
    const project = (h: Float32Array, fn: (t: tf.Tensor2D) => tf.Tensor) => {
      const y = tf.tidy(() => fn(tf.tensor2d(h, [A, h.length / A])));
      const out = y.dataSync() as Float32Array;
      y.dispose();
      return out;
    };
    const addInto = (acc: Float32Array, y: Float32Array) => {
      for (let i = 0; i < acc.length; i++) acc[i] += y[i];
    };
    this.blocks.forEach((blk, l) => {
      const [g1, b1, g2, b2] = ln[l];
      const qkv = project(layerNormJs(x, A, D, g1, b1), (h) => tf.fused.matMul({ a: h, b: as2d(blk.wqkv), bias: blk.bqkv }));
      cacheWriteRows(cache, l, qkv, col, rows);
      const att = attendOne(cache, l, qkv, col, rows);
      addInto(x, project(att, (a) => tf.fused.matMul({ a, b: as2d(blk.wo), bias: blk.bo })));
      const mlp = project(layerNormJs(x, A, D, g2, b2), (h) =>
        tf.fused.matMul({ a: tf.fused.matMul({ a: h, b: as2d(blk.w1), bias: blk.b1, activation: 'relu' }), b: as2d(blk.w2), bias: blk.b2 }),
      );
      addInto(x, mlp);
    });
    const logits_AV = project(layerNormJs(x, A, D, lnf[0], lnf[1]), (h) => tf.matMul(h, as2d(this.wout)));
    cache.length = col + 1;
    return logits_AV;
  }
}
