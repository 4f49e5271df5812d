import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { canonicalJson, codeVersion, sourceHash, DEFAULT_CONFIG, deriveConfig, outcomeConfig, parseRunArgs, resolveConfig, runKey, setPath, warmupKey } from '../../lib/train';
import { DEFAULT_MATH } from '../../lib/sim/tasks';
import { AOPD_DEFAULTS } from '../../lib/objectives';

const CODE = { version: '0.0.0-test', source: '0'.repeat(64) };

describe('resolveConfig', () => {
  it('fills every default and the task / objective option objects', () => {
    const c = resolveConfig();
    expect(c.seed).toBe(0);
    expect(c.distill.method).toBe('aopd');
    expect(c.distill.objective).toEqual(AOPD_DEFAULTS);
    expect(c.task.options).toEqual(JSON.parse(JSON.stringify(DEFAULT_MATH)));
    expect(c.continual).toBeNull();
    expect(c.out).toEqual(DEFAULT_CONFIG.out);
    // a resolved config resolves to itself (config.json can be fed back in)
    expect(resolveConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('merges nested partials and resolves the continual stage and the method options', () => {
    const c = resolveConfig({ distill: { method: 'gkd', objective: { beta: 0 } }, continual: { steps: 5 }, task: { options: { digits: 3 } } });
    expect(c.distill.objective.beta).toBe(0);
    expect(c.distill.objective.topK).toBe(0); // gkd's default, not aopd's
    expect(c.distill.lr).toBe(DEFAULT_CONFIG.distill.lr);
    expect(c.continual).toMatchObject({ steps: 5, lr: null, task: { name: 'tool' } });
    expect(c.task.options.digits).toBe(3);
  });

  it('rejects unknown keys at every depth, naming the dotted path', () => {
    expect(() => resolveConfig({ distill: { lrr: 1 } } as never)).toThrow(/unknown key 'distill\.lrr'/);
    expect(() => resolveConfig({ sed: 1 } as never)).toThrow(/unknown key 'sed'/);
    expect(() => resolveConfig({ eval: { every: 2, sample: 3 } } as never)).toThrow(/unknown key 'eval\.sample'/);
    expect(() => resolveConfig({ continual: { step: 3 } } as never)).toThrow(/unknown key 'continual\.step'/);
    expect(() => resolveConfig({ distill: { objective: { etaa: 0 } } })).toThrow(/distill\.objective: .*unknown option 'etaa'/);
    expect(() => resolveConfig({ task: { options: { digitz: 2 } } })).toThrow(/task\.options: .*unknown option 'digitz'/);
    expect(() => resolveConfig({ distill: { props: { strenght: 1 } } } as never)).toThrow(/distill\.props: .*unknown option 'strenght'/);
    expect(() => resolveConfig({ student: { depth: 2 } } as never)).toThrow(/unknown key 'student\.depth'/);
  });

  it('rejects bad values with a message naming the field and the value', () => {
    expect(() => resolveConfig({ distill: { lr: -1 } })).toThrow('config: distill.lr must be a number > 0, got -1');
    expect(() => resolveConfig({ distill: { steps: 1.5 } })).toThrow('config: distill.steps must be an integer >= 0, got 1.5');
    expect(() => resolveConfig({ distill: { method: 'xyz' } })).toThrow(/config: distill\.method must be one of opd, .*got 'xyz'/);
    expect(() => resolveConfig({ distill: { topP: 0 } })).toThrow('config: distill.topP must be a number in (0, 1], got 0');
    expect(() => resolveConfig({ warmup: { batch: 0 } })).toThrow('config: warmup.batch must be an integer >= 1, got 0');
    expect(() => resolveConfig({ eval: { samples: '8' as never } })).toThrow(`config: eval.samples must be an integer >= 1, got '8'`);
    expect(() => resolveConfig({ out: { ifExists: 'overwrite' as never } })).toThrow(/out\.ifExists must be one of raise, resume, delete, got 'overwrite'/);
    expect(() => resolveConfig({ out: { sweep: '_warmup' } })).toThrow(/out\.sweep must be a folder name/);
    expect(() => resolveConfig({ seed: -1 })).toThrow(/config: seed must be an integer in \[0, 2\^32\), got -1/);
    expect(() => resolveConfig({ task: { name: 'chess' as never } })).toThrow(/task\.name must be one of math, tool, got 'chess'/);
    expect(() => resolveConfig({ distill: 3 } as never)).toThrow('config: distill must be an object, got 3');
    // the student must fit the task: 6-digit addition has prompts of 1 + 6 + 1 + 6 + 1 = 15 tokens and responses
    // of 6 steps x 5 + '=' + 7 digits + <eos> = 39 tokens, so 15 + 39 - 1 = 53 columns > 48
    expect(() => resolveConfig({ task: { options: { digits: 6 } } })).toThrow(/student\.context must be >= 53 \(task 'math': prompts up to 15 tokens \+ responses up to 39 - 1\), got 48/);
    expect(() => resolveConfig({ distill: { teacherForm: 'topk', teacherTopK: 8 } })).toThrow(/distill\.teacherTopK must be >= distill\.objective\.topK = 16/);
    expect(() => resolveConfig({ distill: { method: 'gkd', teacherForm: 'topk' } })).toThrow(/distill\.objective\.topK must be in \[1, distill\.teacherTopK = 32\]/);
  });

  it('derives the evaluation steps, pass@k list and student config in one place', () => {
    const c = resolveConfig({ distill: { steps: 25 }, eval: { every: 10, samples: 5 }, continual: { steps: 7 } });
    const d = deriveConfig(c);
    expect(d.evalSteps).toEqual([0, 10, 20, 25, 30, 32]);
    expect(d.passKs).toEqual([1, 2, 4]);
    expect(d.totalSteps).toBe(32);
    expect(d.rowsPerStep).toBe(c.distill.prompts * c.distill.rollouts);
    expect(d.continualLr).toBe(c.distill.lr);
    expect(d.studentConfig).toMatchObject({ seed: 0, vocabSize: 256, layers: c.student.layers });
  });
});

describe('run keys', () => {
  it('canonicalJson sorts keys at every depth and rejects non-finite numbers', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: 1e-4 }], c: null } })).toBe('{"a":{"c":null,"d":[1,{"y":0.0001,"z":0}]},"b":1}');
    expect(canonicalJson({ a: undefined, b: 'x' })).toBe('{"b":"x"}');
    expect(() => canonicalJson({ a: NaN })).toThrow(/value\.a is NaN/);
  });

  it('depends on the outcome config and the code version only', () => {
    const base = resolveConfig();
    const key = runKey(base, CODE);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(runKey(resolveConfig(), CODE)).toBe(key);
    // spelling a default out, or changing where and how the run is stored, keeps the key
    expect(runKey(resolveConfig({ task: { options: { digits: 2 } }, distill: { objective: { eta: 0 } } }), CODE)).toBe(key);
    expect(runKey(resolveConfig({ out: { root: '/elsewhere', sweep: 's', ifExists: 'delete' }, checkpointEvery: 3, stopAfter: 2 }), CODE)).toBe(key);
    // anything that changes what is trained or logged changes it
    for (const change of [{ seed: 1 }, { distill: { lr: 2e-4 } }, { distill: { objective: { eta: 0.1 } } }, { eval: { every: 5 } }, { continual: {} }]) {
      expect(runKey(resolveConfig(change), CODE), JSON.stringify(change)).not.toBe(key);
    }
    expect(runKey(base, { ...CODE, source: 'a'.repeat(64) })).not.toBe(key);
    expect(runKey(base, { ...CODE, version: '0.0.1' })).not.toBe(key);
    expect(Object.keys(outcomeConfig(base))).not.toContain('out');
  });

  it('the source hash follows training code and ignores the non-training folders', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opdlab-src-'));
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
      };
      write('sim/a.ts', 'export const a = 1;');
      write('figures/f.ts', 'export const f = 1;');
      write('backend.ts', 'export const b = 1;');
      const h0 = sourceHash(dir, '.ts');
      expect(h0).toMatch(/^[0-9a-f]{64}$/);
      write('figures/f.ts', 'export const f = 2;');
      write('sweep/s.ts', 'x');
      write('sim/notes.md', 'not code');
      expect(sourceHash(dir, '.ts')).toBe(h0);
      write('sim/a.ts', 'export const a = 2;');
      const h1 = sourceHash(dir, '.ts');
      expect(h1).not.toBe(h0);
      // a nested folder named like a skipped top-level one is still hashed
      write('sim/figures/g.ts', 'g');
      expect(sourceHash(dir, '.ts')).not.toBe(h1);
      expect(() => sourceHash(path.join(dir, 'figures'), '.js')).toThrow(/no \.js files/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(codeVersion().source).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the warm-up key ignores the distillation settings', () => {
    const a = resolveConfig({ distill: { method: 'opd', lr: 3e-4 } });
    const b = resolveConfig({ distill: { method: 'gkd' }, eval: { every: 3 } });
    expect(warmupKey(a, CODE)).toBe(warmupKey(b, CODE));
    expect(warmupKey(resolveConfig({ warmup: { steps: 10 } }), CODE)).not.toBe(warmupKey(a, CODE));
    expect(warmupKey(resolveConfig({ seed: 3 }), CODE)).not.toBe(warmupKey(a, CODE));
    // the continual task enters the warm-up key only when part of the warm-up is drawn from it
    expect(warmupKey(resolveConfig({ continual: {} }), CODE)).toBe(warmupKey(a, CODE));
    const shared = resolveConfig({ continual: {}, warmup: { continualShare: 0.25 } });
    expect(warmupKey(shared, CODE)).not.toBe(warmupKey(resolveConfig({ warmup: { continualShare: 0.25 }, continual: { task: { options: { maxItems: 2 } } } }), CODE));
    expect(() => resolveConfig({ warmup: { continualShare: 0.25 } })).toThrow('config: warmup.continualShare must be 0 without a continual stage (continual is null), got 0.25');
    expect(() => resolveConfig({ warmup: { continualShare: 1 }, continual: {} })).toThrow('config: warmup.continualShare must be a number in [0, 1), got 1');
  });
});

describe('opdlab run flags', () => {
  it('map onto config fields and objective options', () => {
    const input = parseRunArgs(['--method', 'aopd', '--eta', '0', '--topk', '16', '--seed', '1', '--steps=20', '--sample-top-k', '5', '--digits', '3', '--if-exists', 'resume']);
    expect(input).toEqual({
      seed: 1,
      task: { options: { digits: 3 } },
      distill: { method: 'aopd', objective: { eta: 0, topK: 16 }, steps: 20, topK: 5 },
      out: { ifExists: 'resume' },
    });
    const c = resolveConfig(input);
    expect(c.distill.objective).toMatchObject({ eta: 0, topK: 16 });
  });

  it('take objective options of the method named anywhere, and --set for any field', () => {
    expect(parseRunArgs(['--lambda', '1.5', '--method', 'gopd'])).toEqual({ distill: { method: 'gopd', objective: { lambda: 1.5 } } });
    expect(parseRunArgs(['--eps-zero', '0.1', '--set', 'distill.method="aopd-zero"'])).toEqual({ distill: { method: 'aopd-zero', objective: { epsZero: 0.1 } } });
    const set = parseRunArgs(['--set', 'distill.objective.supportNorm=both', '--set', 'continual=null', '--set=eval.every=4']);
    expect(set).toEqual({ distill: { objective: { supportNorm: 'both' } }, continual: null, eval: { every: 4 } });
    expect(resolveConfig(set).continual).toBeNull();
  });

  it('reject unknown flags and malformed arguments', () => {
    expect(() => parseRunArgs(['--lrr', '1'])).toThrow(/unknown flag --lrr; flags: .*--lr,.*options of aopd: --eta/);
    expect(() => parseRunArgs(['--method', 'seqkd', '--eta', '0'])).toThrow(/unknown flag --eta.*options of seqkd: \(none\)/);
    expect(() => parseRunArgs(['steps'])).toThrow(/unexpected argument 'steps'/);
    expect(() => parseRunArgs(['--steps'])).toThrow(/--steps needs a value/);
    expect(() => parseRunArgs(['--set', 'novalue'])).toThrow(/--set needs key=value/);
    expect(() => resolveConfig(parseRunArgs(['--set', 'distill.lrr=1']))).toThrow(/unknown key 'distill\.lrr'/);
  });

  it('setPath creates objects on the way', () => {
    const o: Record<string, unknown> = {};
    setPath(o, 'a.b.c', 1);
    expect(o).toEqual({ a: { b: { c: 1 } } });
    expect(() => setPath({ a: 1 }, 'a.b', 2)).toThrow(/'a' is not an object/);
  });
});
