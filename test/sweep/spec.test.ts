import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { checkMetrics, jobKey, resolveJobRef, type Job } from '../../lib/sweep/job';
import { parseShard, resolveShard, shardFromEnv, shardKeys } from '../../lib/sweep/shard';
import { applyAt, cellInputs, checkSpec, expandSpec, listBuiltinSpecs, loadSpec, type SweepSpec } from '../../lib/sweep/spec';
import { distillJob } from '../../lib/sweep/distillJob';
import { EtaClock, formatDuration } from '../../lib/sweep/progress';
import { orderCells } from '../../lib/sweep/runner';
import { sleepJob } from '../../lib/sweep/testing/sleepJob';
import { tempDir } from './helpers';

const spec = (s: Partial<SweepSpec> & Record<string, unknown>): SweepSpec => checkSpec({ name: 't', axes: {}, ...s }, 'spec t.json');

describe('spec expansion', () => {
  it('expands the cartesian product, seed axis outermost, last axis fastest, base merged', () => {
    const cells = expandSpec(spec({ base: { sleepMs: 0, steps: 2 }, axes: { value: [1, 2, 3], label: ['a', 'b'] }, seeds: 2 }), sleepJob);
    expect(cells).toHaveLength(12);
    expect(cells.slice(0, 7).map((c) => c.name)).toEqual([
      'value=1,label=a,seed=0',
      'value=1,label=b,seed=0',
      'value=2,label=a,seed=0',
      'value=2,label=b,seed=0',
      'value=3,label=a,seed=0',
      'value=3,label=b,seed=0',
      'value=1,label=a,seed=1',
    ]);
    expect(cells[7].values).toEqual({ value: '1', label: 'b', seed: '1' });
    expect(cells[7].input).toEqual({ sleepMs: 0, steps: 2, value: 1, label: 'b', seed: 1 });
    expect(cells[7].config).toEqual({ value: 1, label: 'b', seed: 1, sleepMs: 0, steps: 2 });
    expect(cells.map((c) => c.index)).toEqual([...Array(12).keys()]);
    expect(new Set(cells.map((c) => c.key)).size).toBe(12);
  });

  it('keys are sha256 of the canonical {job, config, code} (key order and spelling do not matter)', () => {
    // hand-written canonical JSON: keys sorted at every depth, no spaces
    const canonical = '{"code":{"job":"test-sleep","version":1},"config":{"seed":2,"sleepMs":50,"steps":4,"value":1.5},"job":"test-sleep"}';
    const expected = createHash('sha256').update(canonical).digest('hex');
    const noKeyFn: Job = { ...sleepJob, key: undefined } as Job;
    expect(jobKey(noKeyFn, sleepJob.validate({ value: 1.5, seed: 2 }))).toBe(expected);
    expect(jobKey(noKeyFn, sleepJob.validate({ seed: 2, value: 1.5, steps: 4 }))).toBe(expected);
    expect(jobKey(noKeyFn, sleepJob.validate({ value: 1.5, seed: 3 }))).not.toBe(expected);
    const [a] = expandSpec(spec({ axes: { value: [1.5] }, seeds: [2] }), sleepJob);
    expect(a.key).toBe(expected);
  });

  it('named paths, labelled values and bundles; objects merge into the base', () => {
    const s = spec({
      base: { distill: { method: 'aopd', objective: { eta: 0, topK: 16 }, steps: 5 } },
      axes: {
        eta: { path: 'distill.objective.eta', values: [0, -0.5] },
        warm: { path: 'warmup.steps', values: { weak: 10, strong: 30 } },
        method: { values: { gkd: { 'distill.method': 'gkd', 'distill.objective': { beta: 0.5 } }, same: {} } },
      },
    });
    const cells = cellInputs(s);
    expect(cells).toHaveLength(8);
    expect(cells[0].name).toBe('eta=0,warm=weak,method=gkd');
    expect(cells[0].input).toEqual({ distill: { method: 'gkd', objective: { eta: 0, topK: 16, beta: 0.5 }, steps: 5 }, warmup: { steps: 10 } });
    expect(cells[7].name).toBe('eta=-0.5,warm=strong,method=same');
    expect(cells[7].input).toEqual({ distill: { method: 'aopd', objective: { eta: -0.5, topK: 16 }, steps: 5 }, warmup: { steps: 30 } });
    expect(s.base).toEqual({ distill: { method: 'aopd', objective: { eta: 0, topK: 16 }, steps: 5 } }); // not mutated
  });

  it('--set overrides apply to the base before the axes', () => {
    const cells = expandSpec(spec({ base: { sleepMs: 5 }, axes: { value: [1, 2] } }), sleepJob, { sleepMs: 0, steps: 7 });
    expect(cells.map((c) => [c.config.sleepMs, c.config.steps])).toEqual([[0, 7], [0, 7]]);
  });

  it('applyAt replaces non-objects and refuses to descend into a scalar', () => {
    const o: Record<string, unknown> = { a: { b: 1 }, s: 3 };
    applyAt(o, 'a.c.d', [1, 2]);
    applyAt(o, 'a.b', { x: 1 });
    expect(o).toEqual({ a: { b: { x: 1 }, c: { d: [1, 2] } }, s: 3 });
    expect(() => applyAt(o, 's.t', 1)).toThrow(/cannot set 's.t': 's' holds 3, not an object/);
  });
});

describe('invalid specs are rejected with a message naming the field', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown top-level key', { name: 't', axes: { value: [1] }, axis: {} }, /spec t.json: axis: unknown key/],
    ['bad name', { name: '../x', axes: { value: [1] } }, /spec t.json: name must be a folder name/],
    ['axes not an object', { name: 't', axes: [1] }, /spec t.json: axes must be an object/],
    ['base not an object', { name: 't', base: 3, axes: { value: [1] } }, /spec t.json: base must be an object/],
    ['seeds zero', { name: 't', axes: { value: [1] }, seeds: 0 }, /spec t.json: seeds must be a count >= 1/],
    ['metrics not strings', { name: 't', axes: { value: [1] }, metrics: [1] }, /spec t.json: metrics must be a list of strings/],
  ];
  for (const [what, raw, message] of cases) {
    it(what, () => expect(() => checkSpec(raw, 'spec t.json')).toThrow(message));
  }

  const expansion: [string, Record<string, unknown>, RegExp][] = [
    ['no axes', { axes: {} }, /spec 't': axes is empty/],
    ['empty value list', { axes: { value: [] } }, /spec 't': axes.value has no values/],
    ['duplicate labels', { axes: { value: [1, '1'] } }, /spec 't': axes.value: values 0 and 1 have the same label '1'/],
    ['bundle value not an object', { axes: { m: { values: { a: 3 } } } }, /spec 't': axes.m.values.a must be an object of dotted config paths/],
    ['bad path', { axes: { m: { path: 'a..b', values: [1] } } }, /spec 't': axes.m.path: 'a..b' is not a dotted config path/],
    ['unknown axis key', { axes: { m: { paths: 'a', values: [1] } } }, /spec 't': axes.m.paths: unknown key/],
    ['seeds and a seed axis', { axes: { seed: [1] }, seeds: 2 }, /spec 't': seeds is given and axes.seed too/],
    ['a bad value, named by cell and field', { axes: { value: [1, 'x'] } }, /spec 't': cell 'value=x': config: value must be a finite number, got "x"/],
    ['an unknown config key', { axes: { valu: [1] } }, /spec 't': cell 'valu=1': config: unknown key 'valu'/],
  ];
  for (const [what, raw, message] of expansion) {
    it(what, () => expect(() => expandSpec(spec(raw), sleepJob)).toThrow(message));
  }

  it('two cells with the same run key (an axis the key ignores)', () => {
    const ignoresLabel: Job = { ...sleepJob, key: (c: unknown) => `k${(c as { value: number }).value}-0000000` } as Job;
    expect(() => expandSpec(spec({ axes: { value: [1], label: ['a', 'b'] } }), ignoresLabel)).toThrow(
      /spec 't': cells 'value=1,label=a' and 'value=1,label=b' have the same run key/,
    );
  });

  it('a job that is neither built in nor a module', () => {
    expect(() => resolveJobRef('no-such-job')).toThrow(/job module .*no-such-job does not exist/);
    expect(() => resolveJobRef({ module: 'x.js', exprt: 'j' })).toThrow(/job: unknown key 'exprt'/);
  });

  it('a spec file that does not exist names the built-in specs', () => {
    expect(() => loadSpec('no-such-spec')).toThrow(/no spec file 'no-such-spec' and no built-in spec of that name \(built-in: .*eta/);
  });
});

describe('built-in specs', () => {
  const specs = listBuiltinSpecs();
  // the paper's ablations and the specs whose runs feed a figure (specs/dynamics.json); each with >= 3 seeds
  const ABLATIONS = ['beta', 'continual', 'eta', 'init', 'location', 'neighbours', 'topk'];
  const FIGURE_SPECS = ['dynamics'];
  // diagnostics of FINDINGS.md (not paper figures; `opdlab sweep <name>`)
  const DIAGNOSTICS = ['support'];
  it('cover the paper ablations', () => {
    expect(specs.map((s) => s.name).sort()).toEqual([...ABLATIONS, ...FIGURE_SPECS, ...DIAGNOSTICS].sort());
  });
  it("support shares the runs its comment names: gkd-full = dynamics' gkd, gkd-top32-both / aopd-top32-none = init's strong gkd / aopd", () => {
    const keys = (name: string, pick: (values: Record<string, string>) => boolean) =>
      expandSpec(loadSpec(name).spec, distillJob).filter((c) => pick(c.values as Record<string, string>)).map((c) => c.key).sort();
    const support = (arm: string) => keys('support', (v) => v.arm === arm);
    expect(support('gkd-full')).toEqual(keys('dynamics', (v) => v.method === 'gkd'));
    expect(support('gkd-top32-both')).toEqual(keys('init', (v) => v.warmup === 'strong' && v.method === 'gkd'));
    expect(support('aopd-top32-none')).toEqual(keys('init', (v) => v.warmup === 'strong' && v.method === 'aopd'));
    expect(support('gkd-top32-tail')).toHaveLength(3);
  });
  for (const { name, file } of specs) {
    it(`${name}: every cell resolves with the trainer's config and has its own run key`, () => {
      const { spec: s } = loadSpec(file);
      expect(s.name).toBe(name);
      expect(path.basename(file)).toBe(`${name}.json`);
      const cells = expandSpec(s, distillJob);
      const seeds = Array.from({ length: typeof s.seeds === 'number' ? s.seeds : 0 }, (_, i) => i);
      expect(seeds.length).toBeGreaterThanOrEqual(3);
      expect(cells.length).toBeGreaterThanOrEqual(2 * seeds.length);
      expect(new Set(cells.map((c) => c.key)).size).toBe(cells.length);
      // the seed reaches the trainer's config and every cell is a full config (defaults filled in)
      expect(new Set(cells.map((c) => c.config.seed))).toEqual(new Set(seeds));
      for (const c of cells) expect(c.config.distill.steps).toBeGreaterThan(0);
    });
  }
  it('eta sets the threshold of AOPD and nothing else', () => {
    const cells = expandSpec(loadSpec('eta').spec, distillJob).filter((c) => c.config.seed === 0);
    expect(cells.map((c) => c.config.distill.objective.eta)).toEqual([0, -0.1, -0.3, -0.6]);
    expect(new Set(cells.map((c) => c.config.distill.method))).toEqual(new Set(['aopd']));
  });
  it('the distill job refuses runner-owned fields', () => {
    expect(() => distillJob.validate({ out: { root: 'x' } })).toThrow(/out is set by the sweep runner/);
    expect(() => distillJob.validate({ distill: { lrr: 1 } })).toThrow(/unknown key 'distill.lrr'/);
  });
  it('runs one tiny cell through the trainer into the runner\'s folder and returns its summary metrics', async () => {
    const out = tempDir('distill');
    try {
      const tiny = {
        warmup: { steps: 2, batch: 4 },
        distill: { method: 'opd', steps: 2, prompts: 2, rollouts: 2 },
        eval: { every: 2, prompts: 4, samples: 2 },
        analysis: { every: 2, probes: 2 },
      };
      const [c] = expandSpec(checkSpec({ name: 'tiny', base: tiny, axes: { seed: [3] } }), distillJob);
      const runDir = path.join(out, 'tiny', c.key);
      fs.mkdirSync(runDir, { recursive: true });
      const notes: string[] = [];
      const metrics = await distillJob.run(c.config, runDir, { signal: new AbortController().signal, progress: (_f, n) => notes.push(n ?? '') });
      const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
      expect(summary.runKey).toBe(c.key);
      expect(checkMetrics(metrics)).toEqual(summary.metrics);
      expect(metrics).toHaveProperty(['final/math/pass@1']);
      expect(notes[notes.length - 1]).toBe('distill 2/2');
      expect(fs.readFileSync(path.join(runDir, 'status'), 'utf8').split('\n')[0]).toBe('done');
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
  it('every spec file is plain JSON in specs/', () => {
    for (const { file } of specs) expect(() => JSON.parse(fs.readFileSync(file, 'utf8'))).not.toThrow();
  });
});

describe('shards', () => {
  const keys = Array.from({ length: 10 }, (_, i) => createHash('sha256').update(String(i)).digest('hex'));
  it('partition the key-sorted cells by position mod n, whatever the input order', () => {
    const parts = [0, 1, 2].map((i) => shardKeys(keys, { index: i, count: 3, source: 't' }));
    expect(parts.map((p) => p.size)).toEqual([4, 3, 3]);
    const all = parts.flatMap((p) => [...p]);
    expect(new Set(all).size).toBe(10);
    expect([...shardKeys([...keys].reverse(), { index: 1, count: 3, source: 't' })].sort()).toEqual([...parts[1]].sort());
    const sorted = [...keys].sort();
    expect([...parts[0]].sort()).toEqual([sorted[0], sorted[3], sorted[6], sorted[9]]);
  });
  it('read --shard, SLURM and Kubernetes variables, in that order', () => {
    expect(parseShard('2/5')).toMatchObject({ index: 2, count: 5 });
    expect(() => parseShard('5/5')).toThrow(/--shard must be i\/n with 0 <= i < n, got '5\/5'/);
    expect(() => parseShard('a')).toThrow(/--shard must be i\/n/);
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_COUNT: '8' })).toMatchObject({ index: 3, count: 8 });
    expect(shardFromEnv({ SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '8', SLURM_ARRAY_TASK_MIN: '1' })).toMatchObject({ index: 3, count: 8 });
    expect(() => shardFromEnv({ SLURM_ARRAY_TASK_ID: '3' })).toThrow(/SLURM_ARRAY_TASK_COUNT is not/);
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '1', OPDLAB_SHARD_COUNT: '4' })).toMatchObject({ index: 1, count: 4 });
    expect(shardFromEnv({ JOB_COMPLETION_INDEX: '1', JOB_COMPLETIONS: '2' })).toMatchObject({ index: 1, count: 2 });
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '1' })).toThrow(/neither OPDLAB_SHARD_COUNT nor JOB_COMPLETIONS/);
    expect(() => shardFromEnv({ JOB_COMPLETION_INDEX: '4', OPDLAB_SHARD_COUNT: '4' })).toThrow(/must be i\/n with 0 <= i < n/);
    expect(shardFromEnv({})).toBeNull();
    expect(resolveShard('0/2', { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' })).toMatchObject({ index: 0, count: 2, source: '--shard' });
  });
});

describe('run order and ETA', () => {
  it("'grid' keeps the expansion order; 'random' is a seeded permutation", () => {
    const cells = Array.from({ length: 20 }, (_, i) => i);
    expect(orderCells(cells, 'grid', 's')).toEqual(cells);
    const a = orderCells(cells, 'random', 'eta:0');
    expect(a).not.toEqual(cells);
    expect([...a].sort((x, y) => x - y)).toEqual(cells);
    expect(orderCells(cells, 'random', 'eta:0')).toEqual(a);
    expect(orderCells(cells, 'random', 'eta:1')).not.toEqual(a);
  });

  it('ETA = (not started x mean + what the running cells have left) / workers, by hand', () => {
    let now = 0;
    const clock = new EtaClock(2, [], () => now);
    expect(clock.eta(5)).toBeNull(); // no duration known yet
    clock.begin('a');
    clock.begin('b');
    now = 4000;
    expect(clock.end('a', true)).toBe(4);
    clock.begin('c');
    now = 5000;
    // mean 4 s; b has run 5 s (0 left), c 1 s (3 left); 3 not started: (3 * 4 + 0 + 3) / 2 = 7.5 s
    expect(clock.eta(3)).toBeCloseTo(7.5, 12);
    // earlier results give the mean before any cell of this run finishes
    expect(new EtaClock(4, [2, 4], () => 0).eta(8)).toBeCloseTo((8 * 3) / 4, 12);
    expect([formatDuration(59.4), formatDuration(61), formatDuration(3 * 3600 + 120), formatDuration(NaN)]).toEqual(['59s', '1m01s', '3h02m', '?']);
  });
});
