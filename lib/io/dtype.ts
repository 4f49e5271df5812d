/**
 * Element types of the binary formats and their decoding to float64 (exact for every type here: float16 and
 * bfloat16 are widened bit-exactly, 64-bit integers are exact up to 2^53 and rejected beyond).
 *
 *   bfloat16   the top 16 bits of a float32: value = float32 from bits (b << 16)
 *   float16    IEEE 754 binary16: sign, 5-bit exponent (bias 15), 10-bit mantissa; subnormals, inf and NaN kept
 */

export type DType = 'f64' | 'f32' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u64' | 'u32' | 'u16' | 'u8' | 'bool';

export const DTYPE_BYTES: Record<DType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u64: 8, u32: 4, u16: 2, u8: 1, bool: 1 };

export function isFloatDType(d: DType): boolean {
  return d === 'f64' || d === 'f32' || d === 'f16' || d === 'bf16';
}

let HALF_TABLE: Float32Array | null = null;

/** binary16 bits -> value. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24; // zero and subnormals: m * 2^-14 * 2^-10
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
  }
  return HALF_TABLE;
}

/** Nearest binary16 bits of a value (round half to even), for writers and tests. */
export function floatToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const s = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return s | 0x7c00;
  if (a >= 65520) return s | 0x7c00; // rounds to infinity
  if (a < 2 ** -24 / 2) return s;
  let e = Math.floor(Math.log2(a));
  if (e < -14) {
    // subnormal: units of 2^-24
    const m = roundHalfEven(a / 2 ** -24);
    return s | m; // m may reach 1024 = the smallest normal, which is the right encoding
  }
  let m = a / 2 ** e - 1; // in [0, 1)
  let mi = roundHalfEven(m * 1024);
  if (mi === 1024) {
    mi = 0;
    e += 1;
  }
  if (e > 15) return s | 0x7c00;
  return s | ((e + 15) << 10) | mi;
  function roundHalfEven(v: number): number {
    const f = Math.floor(v);
    const r = v - f;
    if (r > 0.5) return f + 1;
    if (r < 0.5) return f;
    return f % 2 === 0 ? f : f + 1;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Nearest bfloat16 bits of a value (round half to even on the float32 bits). */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (Number.isNaN(x)) return 0x7fc0;
  const lsb = (b >>> 16) & 1;
  return ((b + 0x7fff + lsb) >>> 16) & 0xffff;
}

export function bf16ToFloat(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

/**
 * Decodes `count` elements of `dtype` from `bytes` (starting at byte `offset`) into `out` (float64) at `outOffset`.
 * `littleEndian` false handles numpy's '>' descriptors. 64-bit integers beyond 2^53 throw (`what` names them).
 */
export function decodeInto(bytes: Uint8Array, offset: number, dtype: DType, count: number, out: Float64Array, outOffset: number, littleEndian: boolean, what: string): void {
  const n = DTYPE_BYTES[dtype];
  const aligned = littleEndian && (bytes.byteOffset + offset) % n === 0;
  if (aligned) {
    const buf = bytes.buffer;
    const start = bytes.byteOffset + offset;
    switch (dtype) {
      case 'f64': out.set(new Float64Array(buf, start, count), outOffset); return;
      case 'f32': out.set(new Float32Array(buf, start, count), outOffset); return;
      case 'i32': out.set(new Int32Array(buf, start, count), outOffset); return;
      case 'u32': out.set(new Uint32Array(buf, start, count), outOffset); return;
      case 'i16': out.set(new Int16Array(buf, start, count), outOffset); return;
      case 'u16': out.set(new Uint16Array(buf, start, count), outOffset); return;
      case 'i8': out.set(new Int8Array(buf, start, count), outOffset); return;
      case 'u8': case 'bool': out.set(new Uint8Array(buf, start, count), outOffset); return;
      case 'bf16': {
        const h = new Uint16Array(buf, start, count);
        const w = new Uint32Array(count);
        for (let i = 0; i < count; i++) w[i] = h[i] << 16;
        out.set(new Float32Array(w.buffer), outOffset);
        return;
      }
      case 'f16': {
        const h = new Uint16Array(buf, start, count);
        const t = halfTable();
        for (let i = 0; i < count; i++) out[outOffset + i] = t[h[i]];
        return;
      }
      default:
        break; // 64-bit integers below
    }
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, count * n);
  const le = littleEndian;
  for (let i = 0; i < count; i++) {
    const p = i * n;
    let v: number;
    switch (dtype) {
      case 'f64': v = dv.getFloat64(p, le); break;
      case 'f32': v = dv.getFloat32(p, le); break;
      case 'f16': v = halfToFloat(dv.getUint16(p, le)); break;
      case 'bf16': v = bf16ToFloat(dv.getUint16(p, le)); break;
      case 'i64': case 'u64': {
        const big = dtype === 'i64' ? dv.getBigInt64(p, le) : dv.getBigUint64(p, le);
        if (big > 9007199254740991n || big < -9007199254740991n) throw new Error(`${what}: 64-bit integer ${big} at element ${i} exceeds 2^53 and cannot be read exactly`);
        v = Number(big);
        break;
      }
      case 'i32': v = dv.getInt32(p, le); break;
      case 'u32': v = dv.getUint32(p, le); break;
      case 'i16': v = dv.getInt16(p, le); break;
      case 'u16': v = dv.getUint16(p, le); break;
      case 'i8': v = dv.getInt8(p); break;
      default: v = dv.getUint8(p); break;
    }
    out[outOffset + i] = v;
  }
}

/** Encodes float64 values as little-endian `dtype` bytes (writers; values must fit the type). */
export function encode(values: ArrayLike<number>, dtype: DType): Uint8Array {
  const count = values.length;
  const n = DTYPE_BYTES[dtype];
  const out = new Uint8Array(count * n);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    const p = i * n;
    switch (dtype) {
      case 'f64': dv.setFloat64(p, v, true); break;
      case 'f32': dv.setFloat32(p, v, true); break;
      case 'f16': dv.setUint16(p, floatToHalf(v), true); break;
      case 'bf16': dv.setUint16(p, floatToBf16(v), true); break;
      case 'i64': dv.setBigInt64(p, BigInt(v), true); break;
      case 'u64': dv.setBigUint64(p, BigInt(v), true); break;
      case 'i32': dv.setInt32(p, v, true); break;
      case 'u32': dv.setUint32(p, v, true); break;
      case 'i16': dv.setInt16(p, v, true); break;
      case 'u16': dv.setUint16(p, v, true); break;
      case 'i8': dv.setInt8(p, v); break;
      default: dv.setUint8(p, v); break;
    }
  }
  return out;
}
