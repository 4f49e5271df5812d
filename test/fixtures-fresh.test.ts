/**
 * The committed fixtures are exactly what the committed generators produce: regenerate every
 * test/fixtures/gen_*.py into a temporary folder with PyTorch and compare numerically with the committed JSON.
 * Skipped (visibly) where Debian's python3-torch is missing; .ci/run installs it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PY = '/usr/bin/python3';
const hasTorch = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const dir = join(__dirname, 'fixtures');
const generators = readdirSync(dir).filter((f) => /^gen_.*\.py$/.test(f));

function compare(a: unknown, b: unknown, path: string): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a !== b && Math.abs(a - b) > 1e-9 * Math.max(1, Math.abs(b))) throw new Error(`${path}: ${a} != ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) throw new Error(`${path}: length ${a.length} != ${b.length}`);
    a.forEach((x, i) => compare(x, b[i], `${path}[${i}]`));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    expect(ka, `${path}: keys`).toEqual(kb);
    for (const k of ka) compare((a as any)[k], (b as any)[k], `${path}.${k}`);
    return;
  }
  if (a !== b) throw new Error(`${path}: ${String(a)} != ${String(b)}`);
}

describe.skipIf(!hasTorch)('fixtures are fresh', () => {
  it.each(generators)('%s reproduces its committed JSON', (gen) => {
    const out = mkdtempSync(join(tmpdir(), 'opdlab-fixtures-'));
    try {
      execFileSync(PY, [join(dir, gen)], { env: { ...process.env, OPDLAB_FIXTURE_OUT: out }, stdio: 'pipe' });
      const written = readdirSync(out).filter((f) => f.endsWith('.json'));
      expect(written.length, `${gen} wrote no fixture`).toBeGreaterThan(0);
      for (const f of written) {
        const fresh = JSON.parse(readFileSync(join(out, f), 'utf8'));
        const committed = JSON.parse(readFileSync(join(dir, f), 'utf8'));
        delete fresh.torch;
        delete committed.torch;
        compare(fresh, committed, f);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
