/**
 * safetensors files (huggingface/safetensors format):
 *
 *   bytes 0-7        N, u64 little-endian: the header size
 *   bytes 8..8+N     JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}
 *                    (padded with spaces); offsets are relative to the start of the data
 *   then             the data: little-endian, C order, tensors back to back
 *
 * dtypes read: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL (F16 and BF16 widened exactly to float64).
 * Tensors are read by rows (first dimension) with positioned reads, so a file larger than memory streams.
 * Every inconsistency is an error naming the file and tensor: offsets that overlap or run past the end of the
 * file (a truncated download), a byte size that does not match dtype x shape, an unknown dtype.
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { decodeInto, DTYPE_BYTES, encode, type DType } from './dtype';

const ST_DTYPES: Record<string, DType> = { F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16', I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', U64: 'u64', U32: 'u32', U16: 'u16', U8: 'u8', BOOL: 'bool' };
const ST_NAMES: Record<DType, string> = Object.fromEntries(Object.entries(ST_DTYPES).map(([k, v]) => [v, k])) as Record<DType, string>;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

/** Largest header we accept (the format's own reader caps it at 100 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  readonly bytes: number;
  private fd: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch {
      throw new Error(`${path}: no such file`);
    }
    this.bytes = fstatSync(this.fd).size;
    if (this.bytes < 8) throw this.fail(`too short (${this.bytes} bytes) to hold the 8-byte header size: not a safetensors file, or truncated`);
    const lenBuf = Buffer.alloc(8);
    readSync(this.fd, lenBuf, 0, 8, 0);
    const n = Number(lenBuf.readBigUInt64LE(0));
    if (n > MAX_HEADER) throw this.fail(`header size ${n} is implausible (> 100 MB): not a safetensors file`);
    if (8 + n > this.bytes) throw this.fail(`the header needs ${n} bytes but the file ends after ${this.bytes - 8}: truncated`);
    const hb = Buffer.alloc(n);
    readSync(this.fd, hb, 0, n, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(hb.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw this.fail(`the JSON header does not parse (${(e as Error).message}): not a safetensors file, or corrupt`);
    }
    const dataStart = 8 + n;
    const spans: [number, number, string][] = [];
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') {
        for (const [k, s] of Object.entries((v ?? {}) as Record<string, unknown>)) {
          if (typeof s !== 'string') throw this.fail(`__metadata__.${k} must be a string (safetensors metadata is a str -> str map)`);
          this.metadata[k] = s;
        }
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = typeof t.dtype === 'string' ? ST_DTYPES[t.dtype] : undefined;
      if (!dtype) throw this.fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(t.dtype)} (supported: ${Object.keys(ST_DTYPES).join(', ')})`);
      if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) throw this.fail(`tensor '${name}' has a bad shape ${JSON.stringify(t.shape)}`);
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !Number.isInteger(off[0]) || !Number.isInteger(off[1]) || off[1] < off[0]) throw this.fail(`tensor '${name}' has bad data_offsets ${JSON.stringify(off)}`);
      const shape = t.shape as number[];
      const need = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
      if (off[1] - off[0] !== need) throw this.fail(`tensor '${name}': data_offsets span ${off[1] - off[0]} bytes but ${t.dtype} x [${shape.join(', ')}] needs ${need}`);
      const begin = dataStart + off[0];
      const end = dataStart + off[1];
      if (end > this.bytes) throw this.fail(`tensor '${name}' ends at byte ${end} but the file has ${this.bytes}: truncated`);
      spans.push([begin, end, name]);
      this.tensors.set(name, { name, dtype, shape, begin, end });
    }
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) if (spans[i][0] < spans[i - 1][1]) throw this.fail(`tensors '${spans[i - 1][2]}' and '${spans[i][2]}' overlap`);
  }

  private fail(msg: string): Error {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    return new Error(`${this.path}: ${msg}`);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor '${name}' (tensors: ${[...this.tensors.keys()].join(', ')})`);
    return t;
  }

  /** Rows [r0, r1) of a tensor (first dimension), decoded to float64. */
  readRows(name: string, r0: number, r1: number): Float64Array {
    const t = this.info(name);
    const rows = t.shape.length === 0 ? 1 : t.shape[0];
    if (!(r0 >= 0 && r1 >= r0 && r1 <= rows)) throw new Error(`${this.path}: rows ${r0}..${r1} out of range for '${name}' with ${rows} rows`);
    const rowElems = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const size = DTYPE_BYTES[t.dtype];
    const n = (r1 - r0) * rowElems;
    const buf = Buffer.alloc(n * size);
    const got = readSync(this.fd, buf, 0, buf.length, t.begin + r0 * rowElems * size);
    if (got !== buf.length) throw new Error(`${this.path}: truncated while reading '${name}'`);
    const out = new Float64Array(n);
    decodeInto(buf, 0, t.dtype, n, out, 0, true, `${this.path} '${name}'`);
    return out;
  }

  /** A whole tensor. */
  read(name: string): Float64Array {
    const t = this.info(name);
    return this.readRows(name, 0, t.shape.length === 0 ? 1 : t.shape[0]);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  values: ArrayLike<number>;
}

/** Bytes of a safetensors file (tensors in the given order; header padded to 8 bytes). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.values.length !== count) throw new Error(`encodeSafetensors: '${t.name}' has shape [${t.shape.join(', ')}] (${count} values) but ${t.values.length} values`);
    const data = encode(t.values, t.dtype);
    header[t.name] = { dtype: ST_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + data.length] };
    datas.push(data);
    offset += data.length;
  }
  const raw = new TextEncoder().encode(JSON.stringify(header));
  const hb = new Uint8Array(raw.length + ((8 - (raw.length % 8)) % 8)).fill(0x20); // pad with spaces to 8 bytes
  hb.set(raw);
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const d of datas) {
    out.set(d, p);
    p += d.length;
  }
  return out;
}

export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata: Record<string, string> = {}): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}
