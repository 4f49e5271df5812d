/**
 * The student's two hot ops, written for the wasm backend's cost model (measured on this project's machines):
 * an XNNPACK 2-D matMul [1280 x 64] x [64 x 192] takes 1.2 ms, but the same product with transposeA or
 * transposeB set, or any batched (rank 3+) matMul, falls to a generic kernel about 12x slower, and tf.matMul's
 * gradient uses exactly those flags. So:
 *
 * linear(x, W, b, act):  y = act(x W + b)                                   x [N, I], W [I, O], b [O]
 *   backward  g = dy * act'(y);  dx = g (W^T);  dW = (x^T) g;  db = sum_n g     (explicit transposes, then plain
 *   matMuls, so every product runs in XNNPACK).
 *
 * causalAttention(qkv):  per row b, head h, query column i >= start_b:
 *   s_ij = (q_i . k_j) / sqrt(dh)   for start_b <= j <= i;   p_ij = softmax_j(s_ij);   o_i = sum_j p_ij v_j
 *   backward  dp_ij = do_i . v_j;  ds_ij = p_ij (dp_ij - sum_j' p_ij' dp_ij');
 *             dq_i = sum_j ds_ij k_j / sqrt(dh);  dk_j = sum_i ds_ij q_i / sqrt(dh);  dv_j = sum_i p_ij do_i
 *   (the standard softmax-attention gradient, e.g. Dao et al. 2022, FlashAttention, Alg. 2 without tiling).
 *   Query columns before start_b (left padding) output 0 and pass no gradient. One JS pass over Float32Arrays
 *   on qkv [B T, 3D] -> o [B T, D] replaces reshape, transpose, unstack, two batched matMuls, scale, mask and
 *   softmax (and their gradients), and skips the masked half of the scores.
 *
 * attendOne: the same attention for one new column per row against a KV cache held in JS arrays (sampling).
 */
import * as tf from '@tensorflow/tfjs';

export type Activation = 'linear' | 'relu';

/** act(x W + b) with an XNNPACK-friendly gradient (see header). `b` may be null (no bias). */
export function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D | null, activation: Activation = 'linear'): tf.Tensor2D {
  if (x.shape[1] !== w.shape[0]) throw new Error(`linear: x [${x.shape}] and W [${w.shape}] do not chain (x columns must equal W rows)`);
  if (b && b.shape[0] !== w.shape[1]) throw new Error(`linear: bias must have ${w.shape[1]} entries, got ${b.shape[0]}`);
  const relu = activation === 'relu';
  if (b) {
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [xi, wi, bi] = args as tf.Tensor[];
      const save = args[3] as tf.GradSaveFunc;
      const y = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, bias: bi, activation });
      save([xi, wi, y]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [xs, ws, ys] = saved as tf.Tensor2D[];
          const g = relu ? tf.mul(dy, tf.step(ys)) : dy;
          return [tf.matMul(g as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g as tf.Tensor2D), tf.sum(g, 0)];
        },
      };
    });
    return op(x, w, b) as tf.Tensor2D;
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi] = args as tf.Tensor[];
    const save = args[2] as tf.GradSaveFunc;
    const y = tf.fused.matMul({ a: xi as tf.Tensor2D, b: wi as tf.Tensor2D, activation });
    save([xi, wi, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws, ys] = saved as tf.Tensor2D[];
        const g = relu ? tf.mul(dy, tf.step(ys)) : dy;
        return [tf.matMul(g as tf.Tensor2D, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g as tf.Tensor2D)];
      },
    };
  });
  return op(x, w) as tf.Tensor2D;
}

export interface AttentionShape {
  B: number;
  T: number;
  heads: number;
  /** D = heads * dh. */
  width: number;
  /** [B] first attended column of each row. */
  start_B: Int32Array;
}

/**
 * Forward pass in JS. qkv: row-major [B T, 3D] (q | k | v, head h at columns h dh .. (h + 1) dh of each third).
 * Returns o [B T, D] and the attention probabilities p [B, H, T, T] (kept for the backward pass).
 * Inner loops over the head dimension are unrolled by 4 (with a remainder loop): about 2x faster in V8.
 */
export function attentionForward(qkv: Float32Array, s: AttentionShape): { out: Float32Array; probs: Float32Array } {
  const { B, T, heads: H, width: D, start_B } = s;
  const dh = D / H;
  const F = 3 * D;
  const scale = 1 / Math.sqrt(dh);
  const out = new Float32Array(B * T * D);
  const probs = new Float32Array(B * H * T * T);
  const sc = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    const s0 = start_B[b];
    for (let h = 0; h < H; h++) {
      const qo = h * dh;
      const ko = D + h * dh;
      const vo = 2 * D + h * dh;
      for (let i = s0; i < T; i++) {
        const qRow = (b * T + i) * F + qo;
        let max = -Infinity;
        for (let j = s0; j <= i; j++) {
          const kRow = (b * T + j) * F + ko;
          let d0 = 0, d1 = 0, d2 = 0, d3 = 0;
          let d = 0;
          for (; d + 3 < dh; d += 4) {
            d0 += qkv[qRow + d] * qkv[kRow + d];
            d1 += qkv[qRow + d + 1] * qkv[kRow + d + 1];
            d2 += qkv[qRow + d + 2] * qkv[kRow + d + 2];
            d3 += qkv[qRow + d + 3] * qkv[kRow + d + 3];
          }
          for (; d < dh; d++) d0 += qkv[qRow + d] * qkv[kRow + d];
          const x = (d0 + d1 + d2 + d3) * scale;
          sc[j] = x;
          if (x > max) max = x;
        }
        let z = 0;
        for (let j = s0; j <= i; j++) {
          const e = Math.exp(sc[j] - max);
          sc[j] = e;
          z += e;
        }
        const inv = 1 / z;
        const pRow = ((b * H + h) * T + i) * T;
        for (let j = s0; j <= i; j++) {
          sc[j] *= inv;
          probs[pRow + j] = sc[j];
        }
        const oRow = (b * T + i) * D + qo;
        let d = 0;
        for (; d + 3 < dh; d += 4) {
          let o0 = 0, o1 = 0, o2 = 0, o3 = 0;
          for (let j = s0; j <= i; j++) {
            const p = sc[j];
            const v = (b * T + j) * F + vo + d;
            o0 += p * qkv[v];
            o1 += p * qkv[v + 1];
            o2 += p * qkv[v + 2];
            o3 += p * qkv[v + 3];
          }
          out[oRow + d] = o0;
          out[oRow + d + 1] = o1;
          out[oRow + d + 2] = o2;
          out[oRow + d + 3] = o3;
        }
        for (; d < dh; d++) {
          let o0 = 0;
          for (let j = s0; j <= i; j++) o0 += sc[j] * qkv[(b * T + j) * F + vo + d];
          out[oRow + d] = o0;
        }
      }
    }
  }
  return { out, probs };
}

/** Backward pass in JS: d qkv [B T, 3D] from d o [B T, D] (formulas in the header; loops unrolled by 4). */
export function attentionBackward(qkv: Float32Array, probs: Float32Array, dOut: Float32Array, s: AttentionShape): Float32Array {
  const { B, T, heads: H, width: D, start_B } = s;
  const dh = D / H;
  const F = 3 * D;
  const scale = 1 / Math.sqrt(dh);
  const dqkv = new Float32Array(B * T * F);
  const dp = new Float64Array(T);
  const g = new Float64Array(dh);
  const dq = new Float64Array(dh);
  const q = new Float64Array(dh);
  for (let b = 0; b < B; b++) {
    const s0 = start_B[b];
    for (let h = 0; h < H; h++) {
      const qo = h * dh;
      const ko = D + h * dh;
      const vo = 2 * D + h * dh;
      for (let i = s0; i < T; i++) {
        const oRow = (b * T + i) * D + qo;
        const pRow = ((b * H + h) * T + i) * T;
        const qRow = (b * T + i) * F + qo;
        for (let d = 0; d < dh; d++) {
          g[d] = dOut[oRow + d];
          q[d] = qkv[qRow + d] * scale;
          dq[d] = 0;
        }
        // dp_ij = do_i . v_j and dv_j += p_ij do_i
        let sum = 0;
        for (let j = s0; j <= i; j++) {
          const vRow = (b * T + j) * F + vo;
          const p = probs[pRow + j];
          let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
          let d = 0;
          for (; d + 3 < dh; d += 4) {
            a0 += g[d] * qkv[vRow + d];
            a1 += g[d + 1] * qkv[vRow + d + 1];
            a2 += g[d + 2] * qkv[vRow + d + 2];
            a3 += g[d + 3] * qkv[vRow + d + 3];
            dqkv[vRow + d] += p * g[d];
            dqkv[vRow + d + 1] += p * g[d + 1];
            dqkv[vRow + d + 2] += p * g[d + 2];
            dqkv[vRow + d + 3] += p * g[d + 3];
          }
          for (; d < dh; d++) {
            a0 += g[d] * qkv[vRow + d];
            dqkv[vRow + d] += p * g[d];
          }
          const dot = a0 + a1 + a2 + a3;
          dp[j] = dot;
          sum += p * dot;
        }
        // ds_ij = p_ij (dp_ij - sum); dq_i += ds k_j / sqrt(dh); dk_j += ds q_i / sqrt(dh)
        for (let j = s0; j <= i; j++) {
          const ds = probs[pRow + j] * (dp[j] - sum);
          if (ds === 0) continue;
          const kRow = (b * T + j) * F + ko;
          const dss = ds * scale;
          let d = 0;
          for (; d + 3 < dh; d += 4) {
            dq[d] += dss * qkv[kRow + d];
            dq[d + 1] += dss * qkv[kRow + d + 1];
            dq[d + 2] += dss * qkv[kRow + d + 2];
            dq[d + 3] += dss * qkv[kRow + d + 3];
            dqkv[kRow + d] += ds * q[d];
            dqkv[kRow + d + 1] += ds * q[d + 1];
            dqkv[kRow + d + 2] += ds * q[d + 2];
            dqkv[kRow + d + 3] += ds * q[d + 3];
          }
          for (; d < dh; d++) {
            dq[d] += dss * qkv[kRow + d];
            dqkv[kRow + d] += ds * q[d];
          }
        }
        for (let d = 0; d < dh; d++) dqkv[qRow + d] += dq[d];
      }
    }
  }
  return dqkv;
}

/** Masked causal multi-head attention on qkv [B T, 3D] -> [B T, D], differentiable (JS kernel, see header). */
export function causalAttention(qkv: tf.Tensor2D, s: AttentionShape): tf.Tensor2D {
  const { B, T, width: D } = s;
  if (qkv.shape[0] !== B * T || qkv.shape[1] !== 3 * D) throw new Error(`causalAttention: qkv must have shape [B T, 3D] = [${B * T}, ${3 * D}], got [${qkv.shape}]`);
  if (D % s.heads !== 0) throw new Error(`causalAttention: width ${D} must be divisible by heads ${s.heads}`);
  if (s.start_B.length !== B) throw new Error(`causalAttention: start_B must have length B = ${B}, got ${s.start_B.length}`);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D;
    const data = x.dataSync() as Float32Array;
    const { out, probs } = attentionForward(data, s);
    return {
      value: tf.tensor2d(out, [B * T, D]),
      gradFunc: (dy: tf.Tensor) => tf.tensor2d(attentionBackward(data, probs, dy.dataSync() as Float32Array, s), [B * T, 3 * D]),
    };
  });
  return op(qkv) as tf.Tensor2D;
}

/** A KV cache in JS arrays: keys and values of every column, [B, C, D] each per layer. */
export interface JsKVCache {
  B: number;
  /** C: capacity in columns. */
  capacity: number;
  width: number;
  heads: number;
  /** Columns filled so far. */
  length: number;
  start_B: Int32Array;
  /** Per layer, [B * C * D]. */
  k: Float32Array[];
  v: Float32Array[];
}

export function createJsCache(layers: number, B: number, capacity: number, width: number, heads: number, start_B: Int32Array): JsKVCache {
  return {
    B, capacity, width, heads, length: 0, start_B: start_B.slice(),
    k: Array.from({ length: layers }, () => new Float32Array(B * capacity * width)),
    v: Array.from({ length: layers }, () => new Float32Array(B * capacity * width)),
  };
}

/** Copy keys and values of `T` new columns (qkv [B T, 3D]) into layer `l` of the cache at columns col0 ... */
export function cacheWrite(cache: JsKVCache, l: number, qkv: Float32Array, col0: number, T: number): void {
  const { B, capacity: C, width: D } = cache;
  if (col0 + T > C) throw new Error(`cacheWrite: columns ${col0}..${col0 + T - 1} exceed the cache capacity ${C}`);
  const K = cache.k[l];
  const Vc = cache.v[l];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const src = (b * T + t) * 3 * D;
      const dst = (b * C + col0 + t) * D;
      K.set(qkv.subarray(src + D, src + 2 * D), dst);
      Vc.set(qkv.subarray(src + 2 * D, src + 3 * D), dst);
    }
  }
}

/** All rows 0 .. B - 1 (the default row list of the one-column kernels below). */
export function allRows(B: number): Int32Array {
  return Int32Array.from({ length: B }, (_, b) => b);
}

/** Copy the keys and values of one new column of the cache rows `rows` (qkv [A, 3D], A = rows.length) into layer `l` at column `col`. */
export function cacheWriteRows(cache: JsKVCache, l: number, qkv: Float32Array, col: number, rows: Int32Array): void {
  const { capacity: C, width: D } = cache;
  if (col >= C) throw new Error(`cacheWriteRows: column ${col} exceeds the cache capacity ${C}`);
  const K = cache.k[l];
  const Vc = cache.v[l];
  for (let a = 0; a < rows.length; a++) {
    const src = a * 3 * D;
    const dst = (rows[a] * C + col) * D;
    K.set(qkv.subarray(src + D, src + 2 * D), dst);
    Vc.set(qkv.subarray(src + 2 * D, src + 3 * D), dst);
  }
}

/** Copy column `col` of cache row from[i] to row to[i] in every layer (keys and values). */
export function cacheCopyColumn(cache: JsKVCache, col: number, from: Int32Array, to: Int32Array): void {
  const { B, capacity: C, width: D } = cache;
  if (from.length !== to.length) throw new Error(`cacheCopyColumn: from and to must have the same length, got ${from.length} and ${to.length}`);
  if (!(col >= 0 && col < C)) throw new Error(`cacheCopyColumn: col must be in [0, ${C}), got ${col}`);
  for (let i = 0; i < from.length; i++) {
    const f = from[i];
    const t = to[i];
    if (!(f >= 0 && f < B && t >= 0 && t < B)) throw new Error(`cacheCopyColumn: rows must be in [0, ${B}), got ${f} -> ${t}`);
    const src = (f * C + col) * D;
    const dst = (t * C + col) * D;
    for (let l = 0; l < cache.k.length; l++) {
      cache.k[l].copyWithin(dst, src, src + D);
      cache.v[l].copyWithin(dst, src, src + D);
    }
  }
}

/**
 * A cache of B' = rows.length rows whose row i is a copy of row rows[i] of `cache` (columns 0 .. length - 1):
 * prompts prefilled once are fanned out to all their rollouts.
 */
export function expandCache<Cache extends JsKVCache>(cache: Cache, rows: Int32Array): Cache {
  const { B, capacity: C, width: D, length } = cache;
  for (const r of rows) if (!(r >= 0 && r < B)) throw new Error(`expandCache: rows must be in [0, ${B}), found ${r}`);
  const copy = (src: Float32Array) => {
    const out = new Float32Array(rows.length * C * D);
    rows.forEach((r, i) => out.set(src.subarray(r * C * D, (r * C + length) * D), i * C * D));
    return out;
  };
  return { ...cache, B: rows.length, start_B: Int32Array.from(rows, (r) => cache.start_B[r]), k: cache.k.map(copy), v: cache.v.map(copy) };
}

/**
 * Attention of one new column per row (at column `col`, already written into the cache) over columns
 * start_b .. col of layer `l`, for the cache rows `rows`: qkv [A, 3D] -> o [A, D] (A = rows.length).
 * Arithmetic: scores and softmax in float64, the output accumulated in float32 (one rounding per added value).
 */
export function attendOne(cache: JsKVCache, l: number, qkv: Float32Array, col: number, rows: Int32Array = allRows(cache.B)): Float32Array {
  const { capacity: C, width: D, heads: H, start_B } = cache;
  const dh = D / H;
  const scale = 1 / Math.sqrt(dh);
  const K = cache.k[l];
  const Vc = cache.v[l];
  const A = rows.length;
  const out = new Float32Array(A * D);
  const sc = new Float64Array(col + 1);
  const q = new Float64Array(dh);
  for (let a = 0; a < A; a++) {
    const b = rows[a];
    const s0 = start_B[b];
    if (col < s0) continue;
    for (let h = 0; h < H; h++) {
      const q0 = a * 3 * D + h * dh;
      for (let d = 0; d < dh; d++) q[d] = qkv[q0 + d];
      let max = -Infinity;
      for (let j = s0; j <= col; j++) {
        const kRow = (b * C + j) * D + h * dh;
        let dot = 0;
        for (let d = 0; d < dh; d++) dot += q[d] * K[kRow + d];
        const s = dot * scale;
        sc[j] = s;
        if (s > max) max = s;
      }
      let z = 0;
      for (let j = s0; j <= col; j++) {
        const e = Math.exp(sc[j] - max);
        sc[j] = e;
        z += e;
      }
      const o = a * D + h * dh;
      for (let j = s0; j <= col; j++) {
        const p = sc[j] / z;
        const vRow = (b * C + j) * D + h * dh;
        for (let d = 0; d < dh; d++) out[o + d] += p * Vc[vRow + d];
      }
    }
  }
  return out;
}
