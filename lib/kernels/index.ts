/**
 * Row kernels: the O(N x V) passes of the fused objectives (row logsumexp, softmax, scaled copies, log-softmax,
 * full-vocabulary JSD), in WebAssembly SIMD (rows.c -> rows.wasm, embedded in rowsWasm.ts) with an identical
 * plain-JS fallback. Objective kernels do their O(K)-per-row work in JS on top of these.
 *
 * Memory: kernels work in an `Arena`, one growable buffer reused across calls (the wasm module's own memory, or
 * an ArrayBuffer for JS). `arena(bytes)` resets it; every view handed out before is invalid afterwards. Arrays
 * passed to a wasm kernel must be views from the current arena.
 *
 * Selection: wasm SIMD when WebAssembly SIMD is available; `OPDLAB_KERNELS=js` forces the JS kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { ROWS_WASM_BASE64 } from './rowsWasm';

export interface Arena {
  /** A float32 view of n elements (uninitialised). */
  f32(n: number): Float32Array;
  /** A float64 view of n elements (uninitialised). */
  f64(n: number): Float64Array;
  /** The tensor's float32 data copied into the arena. */
  load(t: tf.Tensor): Float32Array;
}

export interface RowKernels {
  readonly name: 'wasm-simd' | 'js';
  /** Reset the arena to hold at least `bytes` (plus alignment); invalidates earlier views. */
  arena(bytes: number): Arena;
  /** lse[n] = logsumexp_v z[n, v]. */
  logsumexpRows(z: Float32Array, rows: number, vocab: number, lse: Float64Array): void;
  /** p[n, :] = softmax(z[n, :]); lse[n] = logsumexp_v z[n, v]. */
  softmaxRows(z: Float32Array, rows: number, vocab: number, p: Float32Array, lse: Float64Array): void;
  /** out[n, v] = z[n, v] - shift[n] (log-softmax when shift = lse). */
  shiftRows(z: Float32Array, shift: Float64Array, rows: number, vocab: number, out: Float32Array): void;
  /** g[n, v] = c[n] * p[n, v]. */
  scaleRows(p: Float32Array, c: Float32Array, rows: number, vocab: number, g: Float32Array): void;
  /**
   * Full-vocabulary JSD(beta), 0 < beta < 1, from log-softmax rows: loss[n] and g[n, :] = d loss[n] / d z[n, :]
   * (through the student's log-softmax). See rows.c for the formula.
   */
  jsdRows(logS: Float32Array, logT: Float32Array, beta: number, rows: number, vocab: number, loss: Float32Array, g: Float32Array): void;
}

const ALIGN = 16;

// ---------------------------------------------------------------------------------------------------------------
// plain JS

class JsArena implements Arena {
  private buffer = new ArrayBuffer(0);
  private offset = 0;
  reset(bytes: number): void {
    if (this.buffer.byteLength < bytes) this.buffer = new ArrayBuffer(Math.ceil(bytes * 1.25));
    this.offset = 0;
  }
  private take(bytes: number): number {
    const at = this.offset;
    this.offset = Math.ceil((at + bytes) / ALIGN) * ALIGN;
    if (this.offset > this.buffer.byteLength) throw new Error(`kernel arena: ${this.offset} bytes needed, ${this.buffer.byteLength} reserved`);
    return at;
  }
  f32(n: number): Float32Array {
    return new Float32Array(this.buffer, this.take(4 * n), n);
  }
  f64(n: number): Float64Array {
    return new Float64Array(this.buffer, this.take(8 * n), n);
  }
  load(t: tf.Tensor): Float32Array {
    const v = this.f32(t.size);
    v.set(t.dataSync() as Float32Array);
    return v;
  }
}

function jsRowMax(z: Float32Array, base: number, vocab: number): number {
  let m = -Infinity;
  for (let v = 0; v < vocab; v++) if (z[base + v] > m) m = z[base + v];
  return m;
}

export const jsKernels: RowKernels = (() => {
  const arena = new JsArena();
  return {
    name: 'js',
    arena(bytes: number) {
      arena.reset(bytes);
      return arena;
    },
    logsumexpRows(z, rows, vocab, lse) {
      for (let n = 0; n < rows; n++) {
        const base = n * vocab;
        const m = jsRowMax(z, base, vocab);
        let s = 0;
        for (let v = 0; v < vocab; v++) s += Math.exp(z[base + v] - m);
        lse[n] = m + Math.log(s);
      }
    },
    softmaxRows(z, rows, vocab, p, lse) {
      for (let n = 0; n < rows; n++) {
        const base = n * vocab;
        const m = jsRowMax(z, base, vocab);
        let s = 0;
        for (let v = 0; v < vocab; v++) {
          const e = Math.exp(z[base + v] - m);
          p[base + v] = e;
          s += e;
        }
        const inv = 1 / s;
        for (let v = 0; v < vocab; v++) p[base + v] *= inv;
        lse[n] = m + Math.log(s);
      }
    },
    shiftRows(z, shift, rows, vocab, out) {
      for (let n = 0; n < rows; n++) {
        const base = n * vocab;
        const s = shift[n];
        for (let v = 0; v < vocab; v++) out[base + v] = z[base + v] - s;
      }
    },
    scaleRows(p, c, rows, vocab, g) {
      for (let n = 0; n < rows; n++) {
        const base = n * vocab;
        const k = c[n];
        for (let v = 0; v < vocab; v++) g[base + v] = k * p[base + v];
      }
    },
    jsdRows(logS, logT, beta, rows, vocab, loss, g) {
      for (let n = 0; n < rows; n++) {
        const base = n * vocab;
        let total = 0;
        let gsum = 0;
        for (let v = 0; v < vocab; v++) {
          const x = logS[base + v];
          const y = logT[base + v];
          const ps = Math.exp(x);
          const pt = Math.exp(y);
          const lm = Math.log(beta * pt + (1 - beta) * ps);
          const dx = (1 - beta) * ps * (x - lm);
          total += beta * pt * (y - lm) + dx;
          g[base + v] = dx;
          gsum += dx;
        }
        loss[n] = total;
        for (let v = 0; v < vocab; v++) g[base + v] -= Math.exp(logS[base + v]) * gsum;
      }
    },
  };
})();

// ---------------------------------------------------------------------------------------------------------------
// WebAssembly SIMD

interface RowsExports {
  logsumexp_rows(z: number, lse: number, rows: number, vocab: number): void;
  softmax_rows(z: number, p: number, lse: number, rows: number, vocab: number): void;
  shift_rows(z: number, shift: number, out: number, rows: number, vocab: number): void;
  scale_rows(p: number, c: number, g: number, rows: number, vocab: number): void;
  jsd_rows(logS: number, logT: number, beta: number, loss: number, g: number, rows: number, vocab: number): void;
}

const PAGE = 65536;

class WasmArena implements Arena {
  private offset = 0;
  /** `base`: the module's __heap_base; below it lie its stack and static data. */
  constructor(private readonly memory: WebAssembly.Memory, private readonly base: number) {}
  reset(bytes: number): void {
    const need = this.base + bytes + 64 * ALIGN;
    const have = this.memory.buffer.byteLength;
    if (have < need) this.memory.grow(Math.ceil((need - have) / PAGE));
    this.offset = Math.ceil(this.base / ALIGN) * ALIGN;
  }
  private take(bytes: number): number {
    const at = this.offset;
    this.offset = Math.ceil((at + bytes) / ALIGN) * ALIGN;
    if (this.offset > this.memory.buffer.byteLength) {
      throw new Error(`kernel arena: ${this.offset} bytes needed, ${this.memory.buffer.byteLength} reserved`);
    }
    return at;
  }
  f32(n: number): Float32Array {
    return new Float32Array(this.memory.buffer, this.take(4 * n), n);
  }
  f64(n: number): Float64Array {
    return new Float64Array(this.memory.buffer, this.take(8 * n), n);
  }
  load(t: tf.Tensor): Float32Array {
    const v = this.f32(t.size);
    v.set(readFloat32(t));
    return v;
  }
}

/** Zero-copy view of a tensor's data on the tfjs wasm backend; a plain dataSync elsewhere. */
function readFloat32(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (info: tf.TensorInfo) => Float32Array };
  if (tf.getBackend() === 'wasm' && typeof backend.typedArrayFromHeap === 'function' && t.dtype === 'float32') {
    return backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  }
  return t.dataSync() as Float32Array;
}

function createWasmKernels(): RowKernels {
  const module = new WebAssembly.Module(Buffer.from(ROWS_WASM_BASE64, 'base64'));
  const memory = new WebAssembly.Memory({ initial: 4 });
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const x = instance.exports as unknown as RowsExports;
  const arena = new WasmArena(memory, (instance.exports.__heap_base as WebAssembly.Global).value as number);
  const ptr = (view: Float32Array | Float64Array, arg: string) => {
    if (view.buffer !== memory.buffer) throw new Error(`wasm row kernel: ${arg} must be a view from the current kernel arena`);
    return view.byteOffset;
  };
  return {
    name: 'wasm-simd',
    arena(bytesNeeded: number) {
      arena.reset(bytesNeeded);
      return arena;
    },
    logsumexpRows(z, rows, vocab, lse) {
      x.logsumexp_rows(ptr(z, 'z'), ptr(lse, 'lse'), rows, vocab);
    },
    softmaxRows(z, rows, vocab, p, lse) {
      x.softmax_rows(ptr(z, 'z'), ptr(p, 'p'), ptr(lse, 'lse'), rows, vocab);
    },
    shiftRows(z, shift, rows, vocab, out) {
      x.shift_rows(ptr(z, 'z'), ptr(shift, 'shift'), ptr(out, 'out'), rows, vocab);
    },
    scaleRows(p, c, rows, vocab, g) {
      x.scale_rows(ptr(p, 'p'), ptr(c, 'c'), ptr(g, 'g'), rows, vocab);
    },
    jsdRows(logS, logT, beta, rows, vocab, loss, g) {
      x.jsd_rows(ptr(logS, 'logS'), ptr(logT, 'logT'), beta, ptr(loss, 'loss'), ptr(g, 'g'), rows, vocab);
    },
  };
}

let selected: RowKernels | null = null;

/** The row kernels in use: wasm SIMD unless OPDLAB_KERNELS=js or WebAssembly SIMD is unavailable. */
export function rowKernels(): RowKernels {
  if (selected) return selected;
  const want = process.env.OPDLAB_KERNELS?.trim();
  if (want && want !== 'js' && want !== 'wasm') throw new Error(`OPDLAB_KERNELS must be 'wasm' or 'js', got '${want}'`);
  if (want === 'js') return (selected = jsKernels);
  try {
    selected = createWasmKernels();
  } catch (e) {
    if (want === 'wasm') throw new Error(`OPDLAB_KERNELS=wasm, but the SIMD module failed to load: ${(e as Error).message}`);
    selected = jsKernels;
  }
  return selected;
}

/** Use these kernels from now on (tests compare the two implementations). */
export function setRowKernels(k: RowKernels): void {
  selected = k;
}

/**
 * A float32 tensor holding a copy of `values` (e.g. an arena view): on the wasm backend it is allocated on the
 * tfjs heap and filled with one memcpy; elsewhere it goes through tf.tensor.
 */
export function tensorFromView(values: Float32Array, shape: number[]): tf.Tensor {
  const backend = tf.backend() as unknown as {
    makeOutput?: (shape: number[], dtype: 'float32') => tf.TensorInfo;
    typedArrayFromHeap?: (info: tf.TensorInfo) => Float32Array;
  };
  if (tf.getBackend() === 'wasm' && backend.makeOutput && backend.typedArrayFromHeap) {
    const info = backend.makeOutput(shape, 'float32');
    backend.typedArrayFromHeap(info).set(values);
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  return tf.tensor(values.slice(), shape, 'float32');
}
