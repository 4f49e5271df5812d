/**
 * The simulation's PRNG (lib/sim/rng.ts). Reference values: splitmix32 (state += 0x9e3779b9, murmur3 fmix32)
 * computed with Python integers for seeds 0 and 12345.
 */
import { describe, expect, it } from 'vitest';
import { deriveSeed, Rng } from '../../lib/sim/rng';

describe('Rng', () => {
  it('matches splitmix32 reference values', () => {
    const a = new Rng(0);
    expect([a.nextUint32(), a.nextUint32(), a.nextUint32()]).toEqual([2462723854, 1020716019, 454327756]);
    const b = new Rng(12345);
    expect([b.nextUint32(), b.nextUint32(), b.nextUint32()]).toEqual([1200724404, 818072533, 996137225]);
  });

  it('uniform, normal and categorical draws have the right moments (20000 draws)', () => {
    const r = new Rng(7);
    const n = 20000;
    let su = 0, sn = 0, sn2 = 0;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) {
      const u = r.next();
      expect(u >= 0 && u < 1).toBe(true);
      su += u;
      const z = r.normal();
      sn += z;
      sn2 += z * z;
      counts[r.categorical([1, 2, 7])]++;
    }
    expect(Math.abs(su / n - 0.5)).toBeLessThan(4 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(sn / n)).toBeLessThan(4 / Math.sqrt(n));
    expect(Math.abs(sn2 / n - 1)).toBeLessThan(4 * Math.sqrt(2 / n));
    [0.1, 0.2, 0.7].forEach((p, i) => expect(Math.abs(counts[i] / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n)));
  });

  it('derived seeds depend on every label; categorical skips zero weights; errors name the argument', () => {
    const seeds = new Set([deriveSeed(1), deriveSeed(1, 'a'), deriveSeed(1, 'b'), deriveSeed(2, 'a'), deriveSeed(1, 'a', 'b'), deriveSeed(1, 'ab')]);
    expect(seeds.size).toBe(6);
    expect(deriveSeed(1, 'a', 3)).toBe(deriveSeed(1, 'a', 3));
    const r = new Rng(3);
    for (let i = 0; i < 100; i++) expect(r.categorical([0, 1, 0, 2, 0])).not.toBe(0);
    expect(() => r.categorical([0, 0])).toThrow(/weights must have a finite positive sum/);
    expect(() => new Rng(NaN)).toThrow(/seed must be a finite number/);
    expect(() => r.int(0)).toThrow(/n must be a positive integer/);
  });
});
