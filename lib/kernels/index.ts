/**
 * Row kernels: the O(N x V) passes of the fused objectives (finiteness scan, row logsumexp, exponentials,
 * softmax, scaled copies, log-softmax, top-K, full-vocabulary JSD), in WebAssembly SIMD (rows.c -> rows.wasm,
 * embedded in rowsWasm.ts) with a plain-JS fallback computing the same maths in float64. Objective kernels do
 * their O(K)-per-row work in JS on top of these.
 *
 * Memory. Kernels work on views handed out by an `Arena`:
 *   - tfjs wasm backend (the default): the SIMD module runs on tfjs's own heap. `arena.load(t)` is the tensor's
 *     memory itself (zero-copy: never write to it), `arena.output(shape)` a new tensor whose memory the kernels
 *     fill in place, and scratch comes from one block malloc'ed from that heap, reused across calls. The JS
 *     kernels use the same zero-copy views.
 *   - any other tfjs backend: the SIMD module has its own memory (the JS kernels an ArrayBuffer) and load/output
 *     copy.
 * `arena(bytes, copyBytes)` resets the arena and invalidates every view handed out before. A view of the tfjs
 * heap also dies when anything allocates there (a tfjs op, arena(), output()): call output() before taking other
 * views, and run no tfjs op while using them. Arrays passed to a SIMD kernel must be views of its memory.
 *
 * Selection: wasm SIMD when WebAssembly SIMD is available; `OPDLAB_KERNELS=js` forces the JS kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { ROWS_WASM_BASE64 } from './rowsWasm';

/** A tensor being written by kernels: fill `values` (a fresh view on each read), then take `toTensor()` once. */
export interface OutputBuffer {
  readonly values: Float32Array;
  /** The filled values as a tensor: the same memory on the tfjs wasm heap, a copy elsewhere. */
  toTensor(): tf.Tensor;
}

export interface Arena {
  /** A float32 view of n elements (uninitialised). */
  f32(n: number): Float32Array;
  /** A float64 view of n elements (uninitialised). */
  f64(n: number): Float64Array;
  /** An int32 view of n elements (uninitialised). */
  i32(n: number): Int32Array;
  /** A float32 tensor's data for the kernels to READ: its own memory on the tfjs wasm heap, else a copy. */
  load(t: tf.Tensor): Float32Array;
  /** A new float32 tensor of `shape` for the kernels to fill (call before taking any other view). */
  output(shape: number[]): OutputBuffer;
  /**
   * The row maxima of the tensor whose load() gave `view`, read as [rows, vocab], when validation's finiteness scan
   * (firstNonFiniteOf) took them; else null. Kernels given them skip their max pass.
   */
  rowMaxOf(view: Float32Array, rows: number, vocab: number): Float32Array | null;
}

export interface RowKernels {
  readonly name: 'wasm-simd' | 'js';
  /** True where load() and output() are zero-copy (the tfjs wasm heap). */
  readonly zeroCopy: boolean;
  /**
   * Reset the arena to hold `bytes` of views (f32 / f64 / i32), plus `copyBytes` for load() and output(), which
   * take arena space only where they copy; invalidates earlier views.
   */
  arena(bytes: number, copyBytes?: number): Arena;
  /** A float32 tensor's data in place, readable by these kernels without an arena, or null where that needs a copy. */
  inPlace(t: tf.Tensor): Float32Array | null;
  /** Index of the first NaN or +-Infinity in x, or -1. */
  firstNonFinite(x: Float32Array): number;
  /**
   * Index of the first NaN or +-Infinity in x read as [rows, vocab], or -1; then (only then) max_N[n] = max_v x[n, v]
   * (max_N any array of rows entries).
   */
  scanRows(x: Float32Array, rows: number, vocab: number, max_N: Float32Array): number;
  /** lse[n] = logsumexp_v (scale z[n, v]), scale > 0 (default 1); max_N: the row maxima if known (Arena.rowMaxOf). */
  logsumexpRows(z: Float32Array, rows: number, vocab: number, lse: Float64Array, scale?: number, max_N?: Float32Array | null): void;
  /**
   * e[n, v] = exp(z[n, v] - max_n); max_N[n] = max_v z[n, v]; sum_N[n] = sum_v e[n, v] (lse = max + log sum). With
   * maxKnown, max_N already holds the row maxima (Arena.rowMaxOf) and is only read.
   */
  expRows(z: Float32Array, rows: number, vocab: number, e: Float32Array, max_N: Float32Array, sum_N: Float64Array, maxKnown?: boolean): void;
  /** p[n, :] = softmax(z[n, :]); lse[n] = logsumexp_v z[n, v]. */
  softmaxRows(z: Float32Array, rows: number, vocab: number, p: Float32Array, lse: Float64Array): void;
  /** out[n, v] = z[n, v] - shift[n] (log-softmax when shift = lse). */
  shiftRows(z: Float32Array, shift: Float64Array, rows: number, vocab: number, out: Float32Array): void;
  /** g[n, v] = c[n] * p[n, v] (g may be p). */
  scaleRows(p: Float32Array, c: Float32Array, rows: number, vocab: number, g: Float32Array): void;
  /**
   * Top-k of each row, 1 <= k <= vocab: ids / values [rows * k], descending, ties to the lower id. With `lse` also
   * lse[n] = logsumexp_v (scale z[n, v]), scale > 0 (default 1), cheaper than a separate logsumexpRows (the top-1
   * value is the row maximum).
   */
  topKRows(z: Float32Array, rows: number, vocab: number, k: number, ids: Int32Array, values: Float32Array, lse?: Float64Array, scale?: number): void;
  /**
   * Full-vocabulary JSD(beta), beta in [0, 1], between pS = softmax(z / tau) and pT = softmax(t / tau) (invTau = 1 / tau)
   * from the LOGITS: loss[n] (unweighted), entropy[n] = -sum pS log pS, g[n, :] = w[n] d loss[n] / d z[n, :]; rows
   * with w[n] = 0 get 0 everywhere. See rows.c for the formulas.
   */
  jsdRows(
    z: Float32Array, t: Float32Array, w: Float32Array, rows: number, vocab: number, invTau: number, beta: number,
    loss: Float32Array, entropy: Float32Array, g: Float32Array,
  ): void;
  /**
   * out[n * cols + c] = z[n * vocab + ids[n * cols + c]]: the few entries of each row a kernel needs, gathered in one
   * pass (read one by one from JS after a full pass over the rows, each costs a cache miss; the SIMD module keeps many
   * loads in flight). Any arrays: ids and out are copied through a block of the SIMD module's own (no arena space
   * taken, no view invalidated); z is read in place when it is a view for these kernels (arena, load, inPlace), else
   * gathered in JS.
   */
  gatherRows(z: Float32Array, rows: number, vocab: number, ids: Int32Array, cols: number, out: Float32Array): void;
}

const ALIGN = 16;
const PAGE = 65536;
/** The SIMD module's shadow stack on the tfjs heap (its kernels use about a kilobyte of it). */
const STACK_BYTES = 64 * 1024;
/** A block of the SIMD module's memory, allocated with it, through which gatherRows copies ids and values. */
const GATHER_BYTES = 256 * 1024;

const alignUp = (x: number) => Math.ceil(x / ALIGN) * ALIGN;

// ---------------------------------------------------------------------------------------------------------------
// memory: the tfjs wasm heap, or a buffer of our own

/** The parts of the tfjs wasm backend used here (tfjs-backend-wasm 4.x). */
interface WasmBackendLike {
  wasm: {
    _malloc(bytes: number): number;
    _free(ptr: number): void;
    HEAPU8: Uint8Array;
    asm?: { memory?: unknown };
    wasmMemory?: unknown;
  };
  dataIdMap: { has(dataId: object): boolean };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

/** The tfjs wasm backend in use and its memory, or null (another backend, or one whose heap is not reachable). */
interface TfjsHeap {
  backend: WasmBackendLike;
  memory: WebAssembly.Memory;
}

function tfjsHeap(): TfjsHeap | null {
  if (tf.getBackend() !== 'wasm') return null;
  const backend = tf.backend() as unknown as Partial<WasmBackendLike>;
  const wasm = backend.wasm;
  if (!wasm || typeof wasm._malloc !== 'function' || typeof backend.makeOutput !== 'function' || typeof backend.typedArrayFromHeap !== 'function') return null;
  const memory = wasm.asm?.memory ?? wasm.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory) || memory.buffer !== wasm.HEAPU8.buffer) return null;
  return { backend: backend as WasmBackendLike, memory };
}

function checkFloat32(t: tf.Tensor, what: string): void {
  if (t.dtype !== 'float32') throw new Error(`kernel arena: ${what} needs a float32 tensor, got ${t.dtype}`);
}

/** A float32 tensor's memory on the tfjs wasm heap (zero-copy). */
function heapView(heap: TfjsHeap, t: tf.Tensor): Float32Array {
  checkFloat32(t, 'a heap view');
  if (!heap.backend.dataIdMap.has(t.dataId)) throw new Error('kernel arena: the tensor does not live on the current tfjs wasm backend');
  return heap.backend.typedArrayFromHeap({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
}

/** Zero-copy view of a tensor's data on the tfjs wasm backend; a plain dataSync elsewhere (read-only either way). */
function readFloat32(t: tf.Tensor): Float32Array {
  const heap = tfjsHeap();
  if (heap && t.dtype === 'float32' && heap.backend.dataIdMap.has(t.dataId)) return heapView(heap, t);
  return t.dataSync() as Float32Array;
}

/**
 * Row maxima taken by firstNonFiniteOf (validation's finiteness scan), by tensor data id. Tensor data never changes
 * in tfjs (an op makes a new data id; Variable.assign moves the variable to its new value's id), so an entry holds for
 * as long as its data id lives; the WeakMap drops it with the data id.
 */
const rowMaxCache = new WeakMap<object, { rows: number; vocab: number; max_N: Float32Array }>();

/** Which tensor each view handed out by an arena's load() shows (by byte offset), for Arena.rowMaxOf. */
class LoadedViews {
  private byOffset = new Map<number, tf.Tensor>();
  clear(): void {
    this.byOffset.clear();
  }
  add(view: Float32Array, t: tf.Tensor): Float32Array {
    this.byOffset.set(view.byteOffset, t);
    return view;
  }
  rowMaxOf(view: Float32Array, rows: number, vocab: number): Float32Array | null {
    const t = this.byOffset.get(view.byteOffset);
    if (!t || t.isDisposed || t.size !== view.length || view.length !== rows * vocab) return null;
    const entry = rowMaxCache.get(t.dataId);
    return entry && entry.rows === rows && entry.vocab === vocab ? entry.max_N : null;
  }
}

/** Scratch in one block malloc'ed from the tfjs wasm heap; load() and output() are zero-copy. */
class HeapArena implements Arena {
  private block = 0;
  private blockBytes = 0;
  private offset = 0;
  private viewsOut = false;
  private readonly loaded = new LoadedViews();
  constructor(private readonly heap: TfjsHeap) {}

  reset(bytes: number): this {
    this.loaded.clear();
    const need = bytes + ALIGN;
    if (this.blockBytes < need) {
      if (this.block) this.heap.backend.wasm._free(this.block);
      this.block = 0;
      this.blockBytes = 0;
      const size = Math.ceil(need * 1.25);
      const ptr = this.heap.backend.wasm._malloc(size) >>> 0;
      if (!ptr) throw new Error(`kernel arena: could not allocate ${size} bytes on the tfjs wasm heap`);
      this.block = ptr;
      this.blockBytes = size;
    }
    this.offset = alignUp(this.block);
    this.viewsOut = false;
    return this;
  }
  private take(bytes: number): number {
    const at = this.offset;
    this.offset = alignUp(at + bytes);
    if (this.offset > this.block + this.blockBytes) throw new Error(`kernel arena: ${this.offset - this.block} bytes needed, ${this.blockBytes} reserved`);
    this.viewsOut = true;
    return at;
  }
  f32(n: number): Float32Array {
    return new Float32Array(this.heap.memory.buffer, this.take(4 * n), n);
  }
  f64(n: number): Float64Array {
    return new Float64Array(this.heap.memory.buffer, this.take(8 * n), n);
  }
  i32(n: number): Int32Array {
    return new Int32Array(this.heap.memory.buffer, this.take(4 * n), n);
  }
  load(t: tf.Tensor): Float32Array {
    this.viewsOut = true;
    return this.loaded.add(heapView(this.heap, t), t);
  }
  rowMaxOf(view: Float32Array, rows: number, vocab: number): Float32Array | null {
    return this.loaded.rowMaxOf(view, rows, vocab);
  }
  output(shape: number[]): OutputBuffer {
    // allocating on the heap may grow it, which detaches every view taken before
    if (this.viewsOut) throw new Error('kernel arena: output() must come before any other view (allocating may move the heap)');
    const heap = this.heap;
    const tensor = tf.engine().makeTensorFromTensorInfo(heap.backend.makeOutput(shape, 'float32'));
    return {
      get values() {
        return heapView(heap, tensor);
      },
      toTensor: () => tensor,
    };
  }
}

/** Scratch and copies in a buffer of our own: the SIMD module's memory (above its stack), or an ArrayBuffer. */
class BufferArena implements Arena {
  private buffer: ArrayBuffer;
  private offset = 0;
  private start = 0;
  private readonly loaded = new LoadedViews();
  /** `memory` null: a plain ArrayBuffer (JS kernels); else the module's memory from `base` (its __heap_base) up. */
  constructor(private readonly memory: WebAssembly.Memory | null, private readonly base = 0) {
    this.buffer = memory ? memory.buffer : new ArrayBuffer(0);
  }
  reset(bytes: number): this {
    this.loaded.clear();
    const need = this.base + bytes + 64 * ALIGN;
    if (this.memory) {
      const have = this.memory.buffer.byteLength;
      if (have < need) this.memory.grow(Math.ceil((need - have) / PAGE));
      this.buffer = this.memory.buffer;
    } else if (this.buffer.byteLength < need) {
      this.buffer = new ArrayBuffer(Math.ceil(need * 1.25));
    }
    this.start = alignUp(this.base);
    this.offset = this.start;
    return this;
  }
  private take(bytes: number): number {
    const at = this.offset;
    this.offset = alignUp(at + bytes);
    if (this.offset > this.buffer.byteLength) throw new Error(`kernel arena: ${this.offset - this.start} bytes needed, ${this.buffer.byteLength - this.start} reserved`);
    return at;
  }
  f32(n: number): Float32Array {
    return new Float32Array(this.buffer, this.take(4 * n), n);
  }
  f64(n: number): Float64Array {
    return new Float64Array(this.buffer, this.take(8 * n), n);
  }
  i32(n: number): Int32Array {
    return new Int32Array(this.buffer, this.take(4 * n), n);
  }
  load(t: tf.Tensor): Float32Array {
    checkFloat32(t, 'load()');
    const v = this.f32(t.size);
    v.set(readFloat32(t));
    return this.loaded.add(v, t);
  }
  rowMaxOf(view: Float32Array, rows: number, vocab: number): Float32Array | null {
    return this.loaded.rowMaxOf(view, rows, vocab);
  }
  output(shape: number[]): OutputBuffer {
    const values = this.f32(shape.reduce((a, b) => a * b, 1));
    return { values, toTensor: () => tensorFromView(values, shape) };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// plain JS (float64 arithmetic on float32 arrays)

function jsRowMax(z: ArrayLike<number>, base: number, vocab: number): number {
  let m = -Infinity;
  for (let v = 0; v < vocab; v++) if (z[base + v] > m) m = z[base + v];
  return m;
}

/**
 * Top-k of each row of a row-major [rows, vocab] array into ids_NK / values_NK (descending, ties to the lower id),
 * 1 <= k <= vocab, O(V log k) per row: a min-heap of the best k seen so far, whose root ranks lowest ("below" =
 * smaller value, or equal value with a larger id). The JS kernel, and lib/probs/topk.ts topKRows.
 */
export function topKRowsInto(values: ArrayLike<number>, rows: number, vocab: number, k: number, ids_NK: Int32Array, values_NK: Float32Array): void {
  const heapIds = new Int32Array(k);
  const heapVals = new Float64Array(k);
  const below = (a: number, b: number) => heapVals[a] < heapVals[b] || (heapVals[a] === heapVals[b] && heapIds[a] > heapIds[b]);
  const swap = (a: number, b: number) => {
    const ti = heapIds[a]; heapIds[a] = heapIds[b]; heapIds[b] = ti;
    const tv = heapVals[a]; heapVals[a] = heapVals[b]; heapVals[b] = tv;
  };
  const siftDown = (i: number, size: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < size && below(l, m)) m = l;
      if (r < size && below(r, m)) m = r;
      if (m === i) return;
      swap(i, m);
      i = m;
    }
  };
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    let size = 0;
    for (let v = 0; v < vocab; v++) {
      const x = values[base + v];
      if (size < k) {
        heapIds[size] = v; heapVals[size] = x;
        let i = size++;
        while (i > 0) {
          const p = (i - 1) >> 1;
          if (!below(i, p)) break;
          swap(i, p);
          i = p;
        }
      } else if (x > heapVals[0]) { // equal values keep the earlier (lower) id
        heapIds[0] = v; heapVals[0] = x;
        siftDown(0, size);
      }
    }
    // pop lowest-ranked first into the tail, giving a descending order
    for (let j = k - 1; j >= 0; j--) {
      ids_NK[n * k + j] = heapIds[0];
      values_NK[n * k + j] = heapVals[0];
      size--;
      if (size > 0) {
        heapIds[0] = heapIds[size]; heapVals[0] = heapVals[size];
        siftDown(0, size);
      }
    }
  }
}

/** The same JSD row maths as rows.c's jsd_rows, in float64 (dF/dx kept in g between the two passes). */
function jsJsdRows(
  z: Float32Array, t: Float32Array, w: Float32Array, rows: number, vocab: number, invTau: number, beta: number,
  loss: Float32Array, entropy: Float32Array, g: Float32Array,
): void {
  const b1 = 1 - beta;
  for (let n = 0; n < rows; n++) {
    const base = n * vocab;
    if (w[n] === 0) {
      g.fill(0, base, base + vocab);
      loss[n] = 0;
      entropy[n] = 0;
      continue;
    }
    const mz = jsRowMax(z, base, vocab);
    const mt = jsRowMax(t, base, vocab);
    let sz = 0;
    let st = 0;
    for (let v = 0; v < vocab; v++) {
      sz += Math.exp((z[base + v] - mz) * invTau);
      st += Math.exp((t[base + v] - mt) * invTau);
    }
    const lz = Math.log(sz);
    const lt = Math.log(st);
    let total = 0;
    let gsum = 0;
    let qx = 0;
    for (let v = 0; v < vocab; v++) {
      const x = (z[base + v] - mz) * invTau - lz;
      const y = (t[base + v] - mt) * invTau - lt;
      const q = Math.exp(x);
      const p = Math.exp(y);
      let dx: number;
      if (beta === 0) {
        dx = -p;
        total += p > 0 ? p * (y - x) : 0;
      } else if (beta === 1) {
        const term = q * (x - y);
        dx = term + q;
        total += term;
      } else {
        const m = beta * p + b1 * q;
        if (m > 0) {
          const lm = Math.log(m);
          dx = b1 * q * (x - lm);
          total += (p > 0 ? beta * p * (y - lm) : 0) + dx;
        } else {
          dx = 0;
        }
      }
      g[base + v] = dx;
      gsum += dx;
      qx += q * x;
    }
    loss[n] = total;
    entropy[n] = -qx;
    const scale = w[n] * invTau;
    for (let v = 0; v < vocab; v++) g[base + v] = (g[base + v] - Math.exp((z[base + v] - mz) * invTau - lz) * gsum) * scale;
  }
}

/** Checks gatherRows' ids (the SIMD kernel would read whatever lies at an id out of range). */
function checkGatherIds(ids: Int32Array, rows: number, vocab: number, cols: number): void {
  if (ids.length < rows * cols) throw new Error(`row kernel gatherRows: ids must hold rows * cols = ${rows * cols} entries, got ${ids.length}`);
  for (let i = 0; i < rows * cols; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < vocab)) throw new Error(`row kernel gatherRows: ids must lie in [0, ${vocab}), got ${id} at ${i}`);
  }
}

/** The plain-JS implementations (they accept any arrays, not only arena views). */
const jsFunctions: Omit<RowKernels, 'name' | 'zeroCopy' | 'arena' | 'inPlace'> = {
  firstNonFinite(x) {
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
    return -1;
  },
  scanRows(x, rows, vocab, max_N) {
    const bad = jsFunctions.firstNonFinite(x.subarray(0, rows * vocab));
    if (bad >= 0) return bad;
    for (let n = 0; n < rows; n++) max_N[n] = jsRowMax(x, n * vocab, vocab);
    return -1;
  },
  logsumexpRows(z, rows, vocab, lse, scale = 1, max_N = null) {
    for (let n = 0; n < rows; n++) {
      const base = n * vocab;
      const m = max_N ? max_N[n] : jsRowMax(z, base, vocab);
      let s = 0;
      for (let v = 0; v < vocab; v++) s += Math.exp((z[base + v] - m) * scale);
      lse[n] = m * scale + Math.log(s);
    }
  },
  expRows(z, rows, vocab, e, max_N, sum_N, maxKnown = false) {
    for (let n = 0; n < rows; n++) {
      const base = n * vocab;
      const m = maxKnown ? max_N[n] : jsRowMax(z, base, vocab);
      let s = 0;
      for (let v = 0; v < vocab; v++) {
        const x = Math.exp(z[base + v] - m);
        e[base + v] = x;
        s += x;
      }
      max_N[n] = m;
      sum_N[n] = s;
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
  topKRows(z, rows, vocab, k, ids, values, lse, scale = 1) {
    topKRowsInto(z, rows, vocab, k, ids, values);
    if (lse) jsFunctions.logsumexpRows(z, rows, vocab, lse, scale);
  },
  jsdRows: jsJsdRows,
  gatherRows(z, rows, vocab, ids, cols, out) {
    checkGatherIds(ids, rows, vocab, cols);
    for (let n = 0; n < rows; n++) for (let c = 0; c < cols; c++) out[n * cols + c] = z[n * vocab + ids[n * cols + c]];
  },
};

/** The plain-JS kernels: zero-copy views on the tfjs wasm heap, an ArrayBuffer arena elsewhere. */
export const jsKernels: RowKernels = (() => {
  const own = new BufferArena(null);
  const onHeap = new WeakMap<object, HeapArena>();
  return {
    name: 'js',
    get zeroCopy() {
      return tfjsHeap() !== null;
    },
    arena(bytes: number, copyBytes = 0) {
      const heap = tfjsHeap();
      if (!heap) return own.reset(bytes + copyBytes);
      let arena = onHeap.get(heap.backend);
      if (!arena) onHeap.set(heap.backend, (arena = new HeapArena(heap)));
      return arena.reset(bytes);
    },
    inPlace: (t) => (t.dtype === 'float32' ? readFloat32(t) : null),
    ...jsFunctions,
  };
})();

// ---------------------------------------------------------------------------------------------------------------
// WebAssembly SIMD

interface RowsExports {
  __stack_pointer: WebAssembly.Global;
  __heap_base: WebAssembly.Global;
  first_nonfinite(x: number, n: number): number;
  scan_rows(x: number, rows: number, vocab: number, max: number): number;
  logsumexp_rows(z: number, lse: number, scale: number, rows: number, vocab: number, given: number): void;
  exp_rows(z: number, e: number, max: number, sum: number, rows: number, vocab: number, given: number): void;
  softmax_rows(z: number, p: number, lse: number, rows: number, vocab: number): void;
  shift_rows(z: number, shift: number, out: number, rows: number, vocab: number): void;
  scale_rows(p: number, c: number, g: number, rows: number, vocab: number): void;
  topk_rows(z: number, ids: number, values: number, lse: number, scale: number, rows: number, vocab: number, k: number): void;
  jsd_rows(z: number, t: number, w: number, invTau: number, beta: number, loss: number, entropy: number, g: number, rows: number, vocab: number): void;
  gather_rows(z: number, ids: number, out: number, rows: number, vocab: number, cols: number): void;
}

/** Section ids of a wasm binary, in order. */
function wasmSectionIds(bytes: Uint8Array): number[] {
  const ids: number[] = [];
  let i = 8; // magic + version
  while (i < bytes.length) {
    const id = bytes[i++];
    let size = 0;
    let shift = 0;
    let b: number;
    do {
      b = bytes[i++];
      size += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    ids.push(id);
    i += size;
  }
  return ids;
}

const DATA_SECTION = 11;
let rowsModule: WebAssembly.Module | null = null;

/** The compiled rows.wasm (checked to have no data segment, so it can run on the tfjs heap). */
function compiledRows(): WebAssembly.Module {
  if (rowsModule) return rowsModule;
  const bytes = Buffer.from(ROWS_WASM_BASE64, 'base64');
  if (wasmSectionIds(bytes).includes(DATA_SECTION)) {
    throw new Error('rows.wasm has a data segment (static data in rows.c), which would overwrite the tfjs heap; remove it');
  }
  return (rowsModule = new WebAssembly.Module(bytes));
}

/** The SIMD kernels on `memory`: the tfjs wasm heap (heap given) or a memory of their own. */
function createWasmKernels(heap: TfjsHeap | null): RowKernels {
  const memory = heap ? heap.memory : new WebAssembly.Memory({ initial: 4 });
  const instance = new WebAssembly.Instance(compiledRows(), { env: { memory } });
  const x = instance.exports as unknown as RowsExports;
  let arena: HeapArena | BufferArena;
  let gatherBlock: number;
  if (heap) {
    // the module's shadow stack (below __heap_base in its own layout) would overlap tfjs's data: move it into a
    // block of the tfjs heap (the stack grows down from the block's end); the gather block next to it
    const stack = heap.backend.wasm._malloc(STACK_BYTES + GATHER_BYTES + ALIGN) >>> 0;
    if (!stack) throw new Error('wasm row kernels: could not allocate their stack on the tfjs heap');
    x.__stack_pointer.value = Math.floor((stack + STACK_BYTES) / ALIGN) * ALIGN;
    gatherBlock = alignUp(stack + STACK_BYTES);
    arena = new HeapArena(heap);
  } else {
    gatherBlock = alignUp(x.__heap_base.value as number);
    arena = new BufferArena(memory, gatherBlock + GATHER_BYTES);
  }
  const ptr = (view: Float32Array | Float64Array | Int32Array, arg: string) => {
    if (view.buffer !== memory.buffer) throw new Error(`wasm row kernel: ${arg} must be a view from the current kernel arena`);
    return view.byteOffset;
  };
  return {
    name: 'wasm-simd',
    zeroCopy: heap !== null,
    arena(bytes: number, copyBytes = 0) {
      return arena instanceof HeapArena ? arena.reset(bytes) : arena.reset(bytes + copyBytes);
    },
    inPlace(t) {
      return heap && t.dtype === 'float32' && heap.backend.dataIdMap.has(t.dataId) ? heapView(heap, t) : null;
    },
    firstNonFinite(v) {
      return x.first_nonfinite(ptr(v, 'x'), v.length);
    },
    scanRows(v, rows, vocab, max_N) {
      const at = ptr(v, 'x');
      // the maxima through the gather block, as many rows at a time as fit
      const step = GATHER_BYTES / 4;
      for (let n = 0; n < rows; n += step) {
        const count = Math.min(step, rows - n);
        const bad = x.scan_rows(at + n * vocab * 4, count, vocab, gatherBlock);
        if (bad >= 0) return n * vocab + bad;
        max_N.set(new Float32Array(memory.buffer, gatherBlock, count), n);
      }
      return -1;
    },
    logsumexpRows(z, rows, vocab, lse, scale = 1, max_N = null) {
      x.logsumexp_rows(ptr(z, 'z'), ptr(lse, 'lse'), scale, rows, vocab, max_N ? ptr(max_N, 'max_N') : 0);
    },
    expRows(z, rows, vocab, e, max_N, sum_N, maxKnown = false) {
      x.exp_rows(ptr(z, 'z'), ptr(e, 'e'), ptr(max_N, 'max_N'), ptr(sum_N, 'sum_N'), rows, vocab, maxKnown ? 1 : 0);
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
    topKRows(z, rows, vocab, k, ids, values, lse, scale = 1) {
      if (!Number.isInteger(k) || k < 1 || k > vocab) throw new Error(`wasm row kernel topKRows: k must be an integer in [1, ${vocab}], got ${k}`);
      x.topk_rows(ptr(z, 'z'), ptr(ids, 'ids'), ptr(values, 'values'), lse ? ptr(lse, 'lse') : 0, scale, rows, vocab, k);
    },
    jsdRows(z, t, w, rows, vocab, invTau, beta, loss, entropy, g) {
      x.jsd_rows(ptr(z, 'z'), ptr(t, 't'), ptr(w, 'w'), invTau, beta, ptr(loss, 'loss'), ptr(entropy, 'entropy'), ptr(g, 'g'), rows, vocab);
    },
    gatherRows(z, rows, vocab, ids, cols, out) {
      checkGatherIds(ids, rows, vocab, cols);
      if (out.length < rows * cols) throw new Error(`wasm row kernel gatherRows: out must hold rows * cols = ${rows * cols} entries, got ${out.length}`);
      if (z.buffer !== memory.buffer || 8 * cols > GATHER_BYTES) {
        // logits elsewhere (a plain array), or rows too wide for the block: one by one in JS
        jsFunctions.gatherRows(z, rows, vocab, ids, cols, out);
        return;
      }
      const zAt = z.byteOffset;
      if (ids.buffer === memory.buffer && out.buffer === memory.buffer) {
        x.gather_rows(zAt, ids.byteOffset, out.byteOffset, rows, vocab, cols);
        return;
      }
      // through the gather block, as many rows at a time as fit (their ids, then room for their values)
      const step = Math.floor(GATHER_BYTES / (8 * Math.max(cols, 1)));
      for (let n = 0; n < rows; n += step) {
        const count = Math.min(step, rows - n);
        const values = gatherBlock + 4 * count * cols;
        new Int32Array(memory.buffer, gatherBlock, count * cols).set(ids.subarray(n * cols, (n + count) * cols));
        x.gather_rows(zAt + n * vocab * 4, gatherBlock, values, count, vocab, cols);
        out.set(new Float32Array(memory.buffer, values, count * cols), n * cols);
      }
    },
  };
}

let forced: RowKernels | null = null;
let simdFailed: string | null = null;
let ownMemoryKernels: RowKernels | null = null;
const heapKernels = new WeakMap<object, RowKernels>();

function wantedKernels(): 'js' | 'wasm' | undefined {
  const want = process.env.OPDLAB_KERNELS?.trim();
  if (want && want !== 'js' && want !== 'wasm') throw new Error(`OPDLAB_KERNELS must be 'wasm' or 'js', got '${want}'`);
  return want as 'js' | 'wasm' | undefined;
}

/**
 * The row kernels in use: wasm SIMD (on the tfjs wasm heap when that is the backend) unless OPDLAB_KERNELS=js or
 * WebAssembly SIMD is unavailable.
 */
export function rowKernels(): RowKernels {
  if (forced) return forced;
  const want = wantedKernels();
  if (want === 'js' || simdFailed) return jsKernels;
  try {
    const heap = tfjsHeap();
    if (heap) {
      let k = heapKernels.get(heap.backend);
      if (!k) {
        try {
          k = createWasmKernels(heap);
        } catch {
          // e.g. a tfjs build whose heap is a SharedArrayBuffer: run on a memory of our own, with copies
          k = ownMemoryKernels ??= createWasmKernels(null);
        }
        heapKernels.set(heap.backend, k);
      }
      return k;
    }
    return (ownMemoryKernels ??= createWasmKernels(null));
  } catch (e) {
    if (want === 'wasm') throw new Error(`OPDLAB_KERNELS=wasm, but the SIMD module failed to load: ${(e as Error).message}`);
    simdFailed = (e as Error).message;
    return jsKernels;
  }
}

/** Use these kernels from now on (null: back to the automatic choice); tests compare the implementations. */
export function setRowKernels(k: RowKernels | null): void {
  forced = k;
}

/**
 * Index of the first NaN or +-Infinity in a float32 tensor, or -1: a SIMD scan in place on the tfjs wasm heap,
 * else a JS scan of its data. Touches no arena. A finite tensor of rank >= 2, read as [rows, last dimension], also
 * leaves its row maxima for the kernels (Arena.rowMaxOf), taken in the same read of the data.
 */
export function firstNonFiniteOf(t: tf.Tensor): number {
  const k = rowKernels();
  const inPlace = k.inPlace(t);
  const view = inPlace ?? readFloat32(t);
  const scan = inPlace ? k : jsFunctions;
  if (t.rank < 2 || t.size === 0) return scan.firstNonFinite(view);
  const vocab = t.shape[t.rank - 1];
  const rows = t.size / vocab;
  const max_N = new Float32Array(rows);
  const bad = scan.scanRows(view, rows, vocab, max_N);
  if (bad < 0) rowMaxCache.set(t.dataId, { rows, vocab, max_N });
  return bad;
}

/**
 * A float32 tensor holding a copy of `values` (e.g. an arena view): on the wasm backend it is allocated on the
 * tfjs heap and filled with one memcpy; elsewhere it goes through tf.tensor.
 */
export function tensorFromView(values: Float32Array, shape: number[]): tf.Tensor {
  const heap = tfjsHeap();
  if (heap) {
    const onHeap = values.buffer === heap.memory.buffer;
    const { byteOffset, length } = values;
    const info = heap.backend.makeOutput(shape, 'float32');
    // the allocation may have grown the heap, detaching a view of it: take the source view again
    const source = onHeap ? new Float32Array(heap.memory.buffer, byteOffset, length) : values;
    heap.backend.typedArrayFromHeap(info).set(source);
    return tf.engine().makeTensorFromTensorInfo(info);
  }
  return tf.tensor(values.slice(), shape, 'float32');
}
