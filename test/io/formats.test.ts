/**
 * Binary formats: .npy and safetensors parsers against files written by numpy / a hand-made encoder with
 * PyTorch bfloat16 (test/io/fixtures/gen_io_fixtures.py), hand-checked float16 / bfloat16 widening, round
 * trips through our writers, and clear errors on truncated or malformed files.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16ToFloat, decodeInto, encode, floatToBf16, floatToHalf, halfToFloat, type DType } from '../../lib/io/dtype';
import { encodeNpy, NpyFile, parseNpy } from '../../lib/io/npy';
import { encodeSafetensors, SafetensorsFile } from '../../lib/io/safetensors';
import { expectAllclose } from '../helpers';

const FIX = join(__dirname, 'fixtures');
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8'));
const num = (v: number | string) => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : (v as number));
const tmp = () => mkdtempSync(join(tmpdir(), 'opdlab-io-'));

describe('float16 and bfloat16 widening (hand-checked bit patterns)', () => {
  it('binary16: normal, subnormal, zero, inf, NaN', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x3555)).toBe(0.333251953125); // 1.0101010101b x 2^-2
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(halfToFloat(0x0400)).toBe(2 ** -14); // smallest normal
    expect(Object.is(halfToFloat(0x8000), -0)).toBe(true);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });

  it('bfloat16 is the top half of float32 bits', () => {
    expect(bf16ToFloat(0x3f80)).toBe(1);
    expect(bf16ToFloat(0xbf00)).toBe(-0.5);
    expect(bf16ToFloat(0x4049)).toBe(3.140625); // 1.1001001b x 2^1
    expect(bf16ToFloat(0x7f80)).toBe(Infinity);
  });

  it('encoders round to nearest, ties to even, and invert the decoders', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie -> even mantissa 0
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even mantissa 2
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds to inf
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    for (let h = 0; h < 65536; h += 7) {
      const x = halfToFloat(h);
      if (Number.isNaN(x)) continue;
      expect(floatToHalf(x)).toBe(h);
      expect(floatToBf16(bf16ToFloat(h))).toBe(h & 0xffff);
    }
  });

  it('encode / decodeInto round-trip every dtype (little and big endian views)', () => {
    const vals: Record<DType, number[]> = {
      f64: [Math.PI, -1e-300, 0], f32: [Math.fround(0.1), -3], f16: [0.5, -1.75], bf16: [1, -0.5], i64: [-(2 ** 40), 7], u64: [2 ** 50, 0],
      i32: [-5, 2 ** 31 - 1], u32: [2 ** 32 - 1, 0], i16: [-32768, 5], u16: [65535, 1], i8: [-128, 127], u8: [255, 0], bool: [1, 0],
    };
    for (const [d, v] of Object.entries(vals) as [DType, number[]][]) {
      const bytes = encode(v, d);
      const out = new Float64Array(v.length);
      decodeInto(bytes, 0, d, v.length, out, 0, true, d);
      expect(Array.from(out), d).toEqual(v);
      // unaligned start takes the DataView path
      const shifted = new Uint8Array(bytes.length + 1);
      shifted.set(bytes, 1);
      const out2 = new Float64Array(v.length);
      decodeInto(shifted, 1, d, v.length, out2, 0, true, d);
      expect(Array.from(out2), `${d} unaligned`).toEqual(v);
    }
  });

  it('64-bit integers beyond 2^53 are an error, not a silent rounding', () => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, 2n ** 60n, true);
    expect(() => decodeInto(b, 0, 'i64', 1, new Float64Array(1), 0, true, 'ids')).toThrow(/exceeds 2\^53/);
  });
});

describe('.npy against numpy-written files', () => {
  for (const name of Object.keys(expected.npy)) {
    it(`${name}.npy`, () => {
      const e = expected.npy[name];
      const { header, data } = parseNpy(readFileSync(join(FIX, `${name}.npy`)), name);
      expect(header.shape).toEqual(e.shape);
      expectAllclose(data, e.values.map(num), { rtol: 0, atol: 0, label: name });
      // row reads agree with the whole-file parse
      const f = new NpyFile(join(FIX, `${name}.npy`));
      if (e.shape.length > 0) expectAllclose(f.readRows(0, f.rows), data, { rtol: 0, atol: 0 });
      f.close();
    });
  }

  it("a 2-byte void descr is read as bfloat16 (ml_dtypes), or refused when asked", () => {
    const bytes = readFileSync(join(FIX, 'bf16_v2.npy'));
    expect(parseNpy(bytes, 'bf16').header.dtype).toBe('bf16');
    expect(() => parseNpy(bytes, 'bf16', { void2: 'error' })).toThrow(/2-byte void/);
  });

  it('our writer round-trips every dtype and numpy-style headers align data to 64 bytes', () => {
    for (const d of ['f64', 'f32', 'f16', 'bf16', 'i64', 'i32', 'u8'] as DType[]) {
      const v = d.startsWith('f') || d === 'bf16' ? [0.5, -2, 1024, 0.25, -0.125, 3] : [1, -2, 3, 4, 5, 6].map((x) => (d === 'u8' ? Math.abs(x) : x));
      const bytes = encodeNpy(d, [2, 3], v);
      const { header, data } = parseNpy(bytes);
      expect(header.dataOffset % 64).toBe(0);
      expect(header.shape).toEqual([2, 3]);
      expect(Array.from(data)).toEqual(v);
    }
  });

  it('truncated and malformed files give clear errors', () => {
    const good = readFileSync(join(FIX, 'f4.npy'));
    expect(() => parseNpy(good.subarray(0, good.length - 5), 'f4')).toThrow(/truncated: shape \(3, 4\) of <f4 needs 176 bytes, the file has 171/);
    expect(() => parseNpy(good.subarray(0, 20), 'f4')).toThrow(/header says .* file ends first/);
    expect(() => parseNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 'x')).toThrow(/not a \.npy file/);
    const fortran = Buffer.from(good);
    fortran.write("'fortran_order': True ", fortran.indexOf("'fortran_order': False"), 'latin1');
    expect(() => parseNpy(fortran, 'fort')).toThrow(/fortran_order arrays with more than one dimension/);
    const dir = tmp();
    writeFileSync(join(dir, 'cut.npy'), good.subarray(0, 140)); // header (128 bytes) intact, data cut
    expect(() => new NpyFile(join(dir, 'cut.npy'))).toThrow(/cut\.npy: truncated/);
  });
});

describe('safetensors against a hand-written file (spec encoder, PyTorch bf16)', () => {
  const path = join(FIX, 'mixed.safetensors');

  it('reads every tensor, dtype and the metadata', () => {
    const f = new SafetensorsFile(path);
    expect(f.metadata).toEqual(expected.safetensors_metadata);
    for (const [name, e] of Object.entries(expected.safetensors) as [string, { shape: number[]; values: (number | string)[] }][]) {
      expect(f.info(name).shape).toEqual(e.shape);
      expectAllclose(f.read(name), e.values.map(num), { rtol: 0, atol: 0, label: name });
    }
    // row ranges
    expectAllclose(f.readRows('a_f32', 1, 2), expected.safetensors.a_f32.values.slice(3, 6), { rtol: 0, atol: 0 });
    f.close();
  });

  it('our writer round-trips and pads the header to 8 bytes', () => {
    const bytes = encodeSafetensors([{ name: 'x', dtype: 'bf16', shape: [3], values: [1, -0.5, 2] }, { name: 'y', dtype: 'i64', shape: [2, 1], values: [5, -6] }], { note: 'ünïcode' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const dir = tmp();
    writeFileSync(join(dir, 'a.safetensors'), bytes);
    const f = new SafetensorsFile(join(dir, 'a.safetensors'));
    expect(Array.from(f.read('x'))).toEqual([1, -0.5, 2]);
    expect(Array.from(f.read('y'))).toEqual([5, -6]);
    expect(f.metadata.note).toBe('ünïcode');
    f.close();
  });

  it('truncated, overlapping and inconsistent files give clear errors', () => {
    const good = readFileSync(path);
    const dir = tmp();
    const w = (name: string, b: Uint8Array) => {
      writeFileSync(join(dir, name), b);
      return join(dir, name);
    };
    expect(() => new SafetensorsFile(w('cut.safetensors', good.subarray(0, good.length - 10)))).toThrow(/ends at byte \d+ but the file has \d+: truncated/);
    expect(() => new SafetensorsFile(w('tiny.safetensors', good.subarray(0, 5)))).toThrow(/too short/);
    expect(() => new SafetensorsFile(w('head.safetensors', good.subarray(0, 40)))).toThrow(/header needs \d+ bytes .* truncated/);
    const bad = encodeSafetensors([{ name: 'x', dtype: 'f32', shape: [2], values: [1, 2] }]);
    const text = Buffer.from(bad).toString('latin1').replace('"shape":[2]', '"shape":[3]');
    expect(() => new SafetensorsFile(w('size.safetensors', Buffer.from(text, 'latin1')))).toThrow(/data_offsets span 8 bytes but F32 x \[3\] needs 12/);
    const dt = Buffer.from(bad).toString('latin1').replace('"F32"', '"C64"');
    expect(() => new SafetensorsFile(w('dtype.safetensors', Buffer.from(dt, 'latin1')))).toThrow(/unsupported dtype "C64"/);
    expect(() => new SafetensorsFile(join(dir, 'missing.safetensors'))).toThrow(/no such file/);
  });
});
