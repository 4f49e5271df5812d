/** Loads a fixture written by test/fixtures/gen_<name>.py (see test/fixtures/common.py). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FixtureDoc<C> {
  generator: string;
  torch: string;
  meta: Record<string, unknown>;
  cases: C[];
}

/** Parses "inf", "-inf", "nan" strings back to numbers. */
function revive(_key: string, value: unknown): unknown {
  if (value === 'inf') return Infinity;
  if (value === '-inf') return -Infinity;
  if (value === 'nan') return NaN;
  return value;
}

export function loadFixture<C = Record<string, any>>(name: string): FixtureDoc<C> {
  const path = join(__dirname, 'fixtures', `${name}.json`);
  return JSON.parse(readFileSync(path, 'utf8'), revive) as FixtureDoc<C>;
}
