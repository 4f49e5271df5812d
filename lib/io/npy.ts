/**
 * NumPy .npy files (format versions 1.0, 2.0, 3.0; numpy/lib/format.py):
 *
 *   bytes 0-5   magic "\x93NUMPY"          byte 6-7   major, minor version
 *   v1: u16 LE header length; v2/v3: u32 LE     then the header: a Python dict literal
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }  padded with spaces to a 64-byte boundary and '\n'
 *   then the raw data, C order (or Fortran order when fortran_order is True)
 *
 * descr: '<f8' '<f4' '<f2' (float16, widened), '<i8' '<i4' '<i2' '|i1' '<u8' '<u4' '<u2' '|u1' '|b1', big-endian
 * '>' variants, and bfloat16: ml_dtypes arrays saved with np.save get descr '<V2' (a 2-byte void: numpy has no
 * bfloat16 character code, jax-ml/ml_dtypes#41), so a 2-byte void is read as bfloat16 unless `void2` says
 * 'error'; the descr 'bfloat16' (written by hand-made headers) is accepted too. Fortran order is accepted for
 * 1-D arrays only (where it is the same layout).
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import { decodeInto, DTYPE_BYTES, encode, type DType } from './dtype';

export interface NpyHeader {
  dtype: DType;
  littleEndian: boolean;
  shape: number[];
  fortranOrder: boolean;
  /** Byte offset of the data. */
  dataOffset: number;
  /** The descr as written. */
  descr: string;
}

export interface NpyOptions {
  /** How to read a 2-byte void descr ('<V2', '|V2'): as bfloat16 (ml_dtypes' np.save) or an error. Default 'bfloat16'. */
  void2: 'bfloat16' | 'error';
}

const DESCR: Record<string, DType> = { f8: 'f64', f4: 'f32', f2: 'f16', i8: 'i64', i4: 'i32', i2: 'i16', i1: 'i8', u8: 'u64', u4: 'u32', u2: 'u16', u1: 'u8', b1: 'bool' };

function parseDescr(descr: string, what: string, options: NpyOptions): { dtype: DType; littleEndian: boolean } {
  if (descr === 'bfloat16') return { dtype: 'bf16', littleEndian: true };
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) throw new Error(`${what}: unsupported dtype descr '${descr}' (structured or object arrays are not dumps)`);
  const [, order, kind, size] = m;
  if (kind === 'V' && size === '2') {
    if (options.void2 === 'error') throw new Error(`${what}: descr '${descr}' is a 2-byte void (bfloat16 from ml_dtypes?); pass void2: 'bfloat16' to read it as bfloat16`);
    return { dtype: 'bf16', littleEndian: order !== '>' };
  }
  const dtype = DESCR[`${kind}${size}`];
  if (!dtype) throw new Error(`${what}: unsupported dtype descr '${descr}'`);
  return { dtype, littleEndian: order !== '>' };
}

/** Parses the header from the first bytes of a file (at least 10 + header length bytes). */
export function parseNpyHeader(head: Uint8Array, fileBytes: number, what: string, options: Partial<NpyOptions> = {}): NpyHeader {
  const o: NpyOptions = { void2: 'bfloat16', ...options };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (head.length < 10 || magic.some((b, i) => head[i] !== b)) throw new Error(`${what}: not a .npy file (missing the \\x93NUMPY magic)`);
  const major = head[6];
  if (major < 1 || major > 3) throw new Error(`${what}: unsupported .npy version ${major}.${head[7]}`);
  const dv = new DataView(head.buffer, head.byteOffset, head.length);
  const lenBytes = major === 1 ? 2 : 4;
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenBytes;
  if (start + hlen > head.length) throw new Error(`${what}: the header says ${hlen} bytes but the file ends first (truncated?)`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(head.subarray(start, start + hlen));
  const descrM = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortM = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descrM || !fortM || !shapeM) throw new Error(`${what}: malformed .npy header ${JSON.stringify(text.trim())}`);
  const shape = shapeM[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const n = Number(s.replace(/L$/, ''));
    if (!Number.isInteger(n) || n < 0) throw new Error(`${what}: bad shape entry '${s}' in header`);
    return n;
  });
  const { dtype, littleEndian } = parseDescr(descrM[1], what, o);
  const header: NpyHeader = { dtype, littleEndian, shape, fortranOrder: fortM[1] === 'True', dataOffset: start + hlen, descr: descrM[1] };
  if (header.fortranOrder && shape.filter((d) => d > 1).length > 1) throw new Error(`${what}: fortran_order arrays with more than one dimension are not supported; save with np.ascontiguousarray`);
  const need = header.dataOffset + shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  if (fileBytes < need) throw new Error(`${what}: truncated: shape (${shape.join(', ')}) of ${descrM[1]} needs ${need} bytes, the file has ${fileBytes}`);
  return header;
}

/** A whole .npy from memory: values as float64 (exact widening), shape, dtype. */
export function parseNpy(bytes: Uint8Array, what = 'npy', options: Partial<NpyOptions> = {}): { header: NpyHeader; data: Float64Array } {
  const h = parseNpyHeader(bytes, bytes.length, what, options);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(count);
  decodeInto(bytes, h.dataOffset, h.dtype, count, data, 0, h.littleEndian, what);
  return { header: h, data };
}

/** An open .npy file read by rows (first dimension), without loading it whole. */
export class NpyFile {
  readonly header: NpyHeader;
  readonly bytes: number;
  private fd: number;
  private readonly rowElems: number;

  constructor(readonly path: string, options: Partial<NpyOptions> = {}) {
    try {
      this.fd = openSync(path, 'r');
    } catch {
      throw new Error(`${path}: no such file`);
    }
    this.bytes = fstatSync(this.fd).size;
    const probe = Buffer.alloc(Math.min(this.bytes, 12));
    readSync(this.fd, probe, 0, probe.length, 0);
    let headBytes = 0;
    if (probe.length >= 10) headBytes = probe[6] === 1 ? 10 + probe.readUInt16LE(8) : 12 + (probe.length >= 12 ? probe.readUInt32LE(8) : 0);
    const head = Buffer.alloc(Math.min(this.bytes, Math.max(headBytes, 12)));
    readSync(this.fd, head, 0, head.length, 0);
    this.header = parseNpyHeader(head, this.bytes, path, options);
    this.rowElems = this.header.shape.slice(1).reduce((a, b) => a * b, 1);
  }

  get rows(): number {
    return this.header.shape.length === 0 ? 1 : this.header.shape[0];
  }

  readRows(r0: number, r1: number): Float64Array {
    const n = (r1 - r0) * this.rowElems;
    const size = DTYPE_BYTES[this.header.dtype];
    const buf = Buffer.alloc(n * size);
    const got = readSync(this.fd, buf, 0, buf.length, this.header.dataOffset + r0 * this.rowElems * size);
    if (got !== buf.length) throw new Error(`${this.path}: truncated while reading rows ${r0}..${r1}`);
    const out = new Float64Array(n);
    decodeInto(buf, 0, this.header.dtype, n, out, 0, this.header.littleEndian, this.path);
    return out;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

const NPY_DESCR: Partial<Record<DType, string>> = { f64: '<f8', f32: '<f4', f16: '<f2', i64: '<i8', i32: '<i4', i16: '<i2', i8: '|i1', u64: '<u8', u32: '<u4', u16: '<u2', u8: '|u1', bool: '|b1', bf16: '<V2' };

/** Bytes of a .npy (version 1.0; bf16 written as '<V2' like ml_dtypes). */
export function encodeNpy(dtype: DType, shape: number[], values: ArrayLike<number>): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`encodeNpy: shape (${shape.join(', ')}) needs ${count} values, got ${values.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${NPY_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + count * DTYPE_BYTES[dtype]);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(encode(values, dtype), 10 + header.length);
  return out;
}

export function writeNpy(path: string, dtype: DType, shape: number[], values: ArrayLike<number>): void {
  writeFileSync(path, encodeNpy(dtype, shape, values));
}
