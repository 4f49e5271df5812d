/**
 * The warm-up cache (lib/train/warmup.ts): under concurrency two callers for the same key train the student once
 * (the second waits on the lock and loads the cache), a lock left by a dead process is taken over; and a warm-up
 * continued from a cached shorter one (snapshots every WARMUP_SNAPSHOT_EVERY steps) equals one trained straight.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveConfig, resolveConfig, warmupDir, warmupKey, warmupStudent } from '../../lib/train';
import { WARMUP_SNAPSHOT_EVERY } from '../../lib/train/warmup';

const root = mkdtempSync(join(tmpdir(), 'opdlab-warmup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const tiny = (seed: number) => resolveConfig({ seed, warmup: { steps: 2, batch: 2 }, out: { root } });

describe('warm-up cache', () => {
  it('two concurrent callers train once; the other waits and loads identical weights', async () => {
    const c = tiny(0);
    const [a, b] = await Promise.all([warmupStudent(c, deriveConfig(c)), warmupStudent(c, deriveConfig(c))]);
    try {
      expect([a.cached, b.cached].sort()).toEqual([false, true]);
      const wa = a.student.getWeights();
      const wb = b.student.getWeights();
      expect([...wb.keys()]).toEqual([...wa.keys()]);
      for (const [k, v] of wa) expect(Array.from(wb.get(k)!)).toEqual(Array.from(v));
      expect(existsSync(`${warmupDir(root, a.key)}.lock`)).toBe(false);
    } finally {
      a.student.dispose();
      b.student.dispose();
    }
  });

  it('a lock held by a dead process is taken over', async () => {
    const c = tiny(1);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const dir = warmupDir(root, warmupKey(c));
    mkdirSync(join(dir, '..'), { recursive: true });
    writeFileSync(`${dir}.lock`, String(dead));
    const r = await warmupStudent(c, deriveConfig(c));
    try {
      expect(r.cached).toBe(false);
      expect(existsSync(join(dir, 'warmup.json'))).toBe(true);
      expect(readdirSync(join(dir, '..')).filter((f) => f.endsWith('.lock'))).toEqual([]);
    } finally {
      r.student.dispose();
    }
  });
});

describe('warm-ups continue from shorter cached ones', () => {
  const small = (steps: number, dir: string) =>
    resolveConfig({ seed: 4, task: { name: 'math', options: { digits: 1 } }, student: { layers: 1, width: 16, heads: 2, context: 16 }, warmup: { steps, batch: 4, lr: 1e-2 }, out: { root: dir } });
  const load = async (steps: number, dir: string) => {
    const c = small(steps, dir);
    const r = await warmupStudent(c, deriveConfig(c));
    const weights = r.student.getWeights();
    r.student.dispose();
    const folder = warmupDir(dir, r.key);
    return { r, weights, metrics: readFileSync(join(folder, 'metrics.jsonl'), 'utf8'), info: JSON.parse(readFileSync(join(folder, 'warmup.json'), 'utf8')) };
  };
  const same = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => {
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, v] of a) expect(Array.from(new Uint32Array(b.get(k)!.buffer)), k).toEqual(Array.from(new Uint32Array(v.buffer)));
  };

  it('straight 250 steps == 100, continued to 200, continued to 250 (bit-equal weights, same loss log); the snapshots are cached warm-ups', async () => {
    expect(WARMUP_SNAPSHOT_EVERY).toBe(100);
    const straight = mkdtempSync(join(root, 'straight-'));
    const stepwise = mkdtempSync(join(root, 'stepwise-'));
    const a250 = await load(250, straight);
    expect(a250.info.continuedFrom).toBe(0);
    // the straight run left its 100- and 200-step states as cached warm-ups (with Adam's state)
    for (const s of [100, 200]) {
      const folder = warmupDir(straight, warmupKey(small(s, straight)));
      expect(existsSync(join(folder, 'warmup.json')), `snapshot ${s}`).toBe(true);
      expect(existsSync(join(folder, 'optimizer.json')), `snapshot ${s} optimiser`).toBe(true);
    }
    const b100 = await load(100, stepwise);
    const b200 = await load(200, stepwise);
    const b250 = await load(250, stepwise);
    expect([b100.info.continuedFrom, b200.info.continuedFrom, b250.info.continuedFrom]).toEqual([0, 100, 200]);
    expect(b250.r.cached).toBe(false);
    same(a250.weights, b250.weights);
    expect(b250.metrics).toBe(a250.metrics);
    expect(b250.info.finalLoss).toBe(a250.info.finalLoss);
    expect(b250.info.tokens).toBe(a250.info.tokens);
    // the straight run's 200-step snapshot is the 200-step warm-up
    const a200 = await load(200, straight);
    expect(a200.r.cached).toBe(true);
    same(b200.weights, a200.weights);
    expect(a200.metrics).toBe(b200.metrics);
  });
});

