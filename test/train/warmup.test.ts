/**
 * The warm-up cache under concurrency (lib/train/warmup.ts): two callers for the same key train the student once
 * (the second waits on the lock and loads the cache), and a lock left by a dead process is taken over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deriveConfig, resolveConfig, warmupDir, warmupKey, warmupStudent } from '../../lib/train';

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
