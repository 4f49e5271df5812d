/**
 * The one seeded PRNG of the simulation: prompts, teacher samples, student initialisation and sampling all draw
 * from it, so the same seed on the same backend gives identical results.
 *
 *   state_{i+1} = state_i + 0x9e3779b9 (mod 2^32)
 *   out_i       = mix32(state_{i+1})          (splitmix32: murmur3-style finaliser, "fmix32")
 *   uniform     = out_i / 2^32  in [0, 1)
 *
 * splitmix32 (Steele, Lea, Flood 2014, "Fast splittable pseudorandom number generators", 32-bit variant) has
 * period 2^32 per stream, which is far more than one run draws. Independent streams come from `deriveSeed`,
 * which hashes a parent seed with labels (FNV-1a over the label text, then fmix32), so adding a stream never
 * shifts the numbers another stream sees.
 */

/** The murmur3 32-bit finaliser: a bijection on uint32 with full avalanche. */
export function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** FNV-1a (32-bit) of a string. */
export function hashString(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A child seed from a parent seed and labels, e.g. deriveSeed(seed, 'prompts', 'train'). */
export function deriveSeed(seed: number, ...labels: (string | number)[]): number {
  if (!Number.isFinite(seed)) throw new Error(`deriveSeed: seed must be a finite number, got ${seed}`);
  let h = fmix32((Math.floor(seed) >>> 0) ^ 0x5bd1e995);
  for (const label of labels) h = fmix32(hashString(String(label), h) ^ 0x27d4eb2f);
  return h;
}

export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    this.state = Math.floor(seed) >>> 0;
  }

  /** A uint32. */
  nextUint32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return fmix32(this.state);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`Rng.int: n must be a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller; two uniforms per draw, no cached second value, so the stream is simple to follow). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: log(u) is finite
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }

  /**
   * Index drawn from unnormalised non-negative weights w[0..n) (inverse CDF with one uniform).
   * Falls back to the last positive weight if rounding leaves the uniform past the total.
   */
  categorical(weights: ArrayLike<number>, n = weights.length): number {
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i];
    if (!(total > 0) || !Number.isFinite(total)) throw new Error(`Rng.categorical: weights must have a finite positive sum, got ${total}`);
    const u = this.next() * total;
    let acc = 0;
    let last = -1;
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      if (w <= 0) continue;
      acc += w;
      last = i;
      if (u < acc) return i;
    }
    return last;
  }
}
