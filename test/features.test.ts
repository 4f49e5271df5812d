import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../lib/objectives';
import { featuresMarkdown, fixtureFor } from '../lib/report/features';

describe('FEATURES.md', () => {
  it('is what the registry and its self-checks generate (run `npx opdlab features --write`)', () => {
    const root = join(__dirname, '..');
    expect(readFileSync(join(root, 'FEATURES.md'), 'utf8')).toBe(featuresMarkdown(root));
  });
  it('finds variant fixtures in their base objective file', () => {
    const dir = join(__dirname, 'fixtures');
    expect(fixtureFor('aopd-zero', dir)).toBe('test/fixtures/aopd.json');
    expect(fixtureFor('topk-rkl', dir)).toBe('test/fixtures/topk_rkl.json');
    expect(fixtureFor('no-such-objective', dir)).toBeNull();
  });
});
