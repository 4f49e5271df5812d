/**
 * The runner end to end, as `opdlab sweep` processes with worker processes, on the test job
 * (lib/sweep/testing/sleepJob.ts): a full run and its summary, skipping finished cells, failures and
 * --retry-failed, `kill -9` of a worker. Interruption of the runner and shards: resume.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweepStore } from '../../lib/sweep/store';
import { sleepMetrics } from '../../lib/sweep/testing/sleepJob';
import { alive, cli, cliAsync, readTrace, requireBuiltDist, tempDir, waitFor, writeSpec } from './helpers';

let root: string;
beforeAll(() => {
  requireBuiltDist();
  root = tempDir('runner');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function setup(name: string, axes: Record<string, unknown>, seeds: number, base: Record<string, unknown>) {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  const specFile = writeSpec(dir, { name, job: 'test-sleep', base, axes, seeds });
  const out = path.join(dir, 'runs');
  const trace = path.join(dir, 'trace.txt');
  const store = new SweepStore(out, name);
  return { dir, specFile, out, trace, store };
}

describe('opdlab sweep (test job)', () => {
  it('runs every cell once on the pool, writes results and the summary, then skips them all', () => {
    const t = setup('basic', { value: [1, 2, 3] }, 2, { sleepMs: 60, steps: 2 });
    const r = cli(['sweep', t.specFile, '--out', t.out, '--workers', '2'], { OPDLAB_TESTJOB_TRACE: t.trace });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/6 cells: 0 done, 0 failed .* 6 to run on 2 worker\(s\)/);
    const trace = readTrace(t.trace);
    expect(trace.size).toBe(6);
    for (const [key, n] of trace) expect(n, key).toEqual({ start: 1, end: 1 });

    // every cell's result is the job's metrics for its config (value + 0.1 seed, ...)
    const cells = JSON.parse(fs.readFileSync(path.join(t.store.dir, 'sweep.json'), 'utf8')).cells as { key: string; values: Record<string, string> }[];
    expect(cells).toHaveLength(6);
    for (const c of cells) {
      const s = t.store.inspect(c.key);
      expect(s.state).toBe('done');
      expect(s.result!.metrics).toEqual(sleepMetrics({ value: Number(c.values.value), seed: Number(c.values.seed), sleepMs: 60, steps: 2 }));
    }
    // summary: value=2 over seeds 0, 1: score 2.0 and 2.1 -> mean 2.05, sd 0.1/sqrt(2), half-width t_{0.975,1} * 0.1 / 2
    const csv = fs.readFileSync(path.join(t.store.dir, 'summary.csv'), 'utf8').trim().split('\r\n');
    expect(csv[0]).toBe('value,metric,n,mean,sd,ci95_low,ci95_high');
    const row = csv.find((l) => l.startsWith('2,final/score,'))!.split(',').map(Number);
    expect(row[2]).toBe(2);
    expect(row[3]).toBeCloseTo(2.05, 12);
    expect(row[4]).toBeCloseTo(0.1 / Math.SQRT2, 12);
    expect(row[6] - row[3]).toBeCloseTo((Math.tan(0.475 * Math.PI) * 0.1) / 2, 8);
    expect(r.stdout).toMatch(/summary of basic \(6\/6 cells finished/);

    const again = cli(['sweep', t.specFile, '--out', t.out, '--workers', '2', '--no-summary'], { OPDLAB_TESTJOB_TRACE: t.trace });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/6 cells: 6 done, 0 failed .* 0 to run/);
    for (const [, n] of readTrace(t.trace)) expect(n).toEqual({ start: 1, end: 1 });

    const dry = cli(['sweep', t.specFile, '--out', t.out, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/6 cells: 6 done, 0 failed, 0 running elsewhere, 0 corrupt, 0 interrupted, 0 missing; 0 would run/);
    expect(dry.stdout.split('\n').filter((l) => /^\d+\s+value=\d,seed=\d\s+[0-9a-f]{12}\s+done\s+skip/.test(l))).toHaveLength(6);
  });

  it('a failed cell keeps its error and stack, is not rerun, and runs again with --retry-failed', () => {
    const t = setup('fail', { value: [1, 2, 3] }, 1, { sleepMs: 20, steps: 2 });
    const args = ['sweep', t.specFile, '--out', t.out, '--workers', '2', '--no-summary'];
    const r = cli(args, { OPDLAB_TESTJOB_TRACE: t.trace, OPDLAB_TESTJOB_FAIL: '2' });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/this run: 2 done, 1 failed, 0 interrupted/);
    expect(r.stdout).toMatch(/failed, error.json in each cell folder; --retry-failed runs them again \(1\): value=2,seed=0/);
    const cells = JSON.parse(fs.readFileSync(path.join(t.store.dir, 'sweep.json'), 'utf8')).cells as { key: string; name: string }[];
    const bad = cells.find((c) => c.name === 'value=2,seed=0')!;
    expect(t.store.inspect(bad.key)).toMatchObject({ state: 'failed', detail: 'test job: value 2 is listed in OPDLAB_TESTJOB_FAIL' });
    const error = JSON.parse(fs.readFileSync(path.join(t.store.cellDir(bad.key), 'error.json'), 'utf8'));
    expect(error.error.stack).toMatch(/test job: value 2 is listed[^]*\n\s+at .*sleepJob\.js/);
    expect(fs.existsSync(path.join(t.store.cellDir(bad.key), 'result.json'))).toBe(false);
    expect(t.store.readLedger().filter((e) => e.event === 'failed').map((e) => e.key)).toEqual([bad.key]);

    const skip = cli(args, { OPDLAB_TESTJOB_TRACE: t.trace });
    expect(skip.code).toBe(1);
    expect(readTrace(t.trace).get(bad.key)).toEqual({ start: 1, end: 0 });

    const retry = cli([...args, '--retry-failed'], { OPDLAB_TESTJOB_TRACE: t.trace });
    expect(retry.code, retry.stderr).toBe(0);
    const trace = readTrace(t.trace);
    expect(trace.get(bad.key)).toEqual({ start: 2, end: 1 });
    for (const c of cells.filter((c) => c !== bad)) expect(trace.get(c.key)).toEqual({ start: 1, end: 1 });
    expect(t.store.inspect(bad.key).state).toBe('done');
  });

  it('kill -9 of a worker: its cell is interrupted (not failed), the others finish, the next run completes it', async () => {
    const t = setup('wkill', { value: [1, 2, 3] }, 1, { sleepMs: 1500, steps: 30 });
    const args = ['sweep', t.specFile, '--out', t.out, '--workers', '2', '--no-summary'];
    const run = cliAsync(args, { OPDLAB_TESTJOB_TRACE: t.trace });
    let victim: { key: string; pid: number } | null = null;
    await waitFor('a worker pid in a lock file', () => {
      if (!fs.existsSync(t.store.locksDir)) return false;
      for (const f of fs.readdirSync(t.store.locksDir)) {
        try {
          const info = JSON.parse(fs.readFileSync(path.join(t.store.locksDir, f), 'utf8'));
          if (info.workerPid && readTrace(t.trace).get(f.replace(/\.lock$/, ''))?.start) victim = { key: f.replace(/\.lock$/, ''), pid: info.workerPid };
        } catch {
          // being rewritten by a heartbeat
        }
      }
      return victim !== null;
    });
    process.kill(victim!.pid, 'SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/interrupted .* ended by SIGKILL/);
    expect(r.stdout).toMatch(/this run: 2 done, 0 failed, 1 interrupted/);
    expect(t.store.inspect(victim!.key)).toMatchObject({ state: 'interrupted' });
    expect(t.store.readLedger().filter((e) => e.event === 'interrupted').map((e) => e.key)).toEqual([victim!.key]);
    expect(fs.existsSync(t.store.lockFile(victim!.key))).toBe(false);
    expect(alive(victim!.pid)).toBe(false);

    const again = cli(args, { OPDLAB_TESTJOB_TRACE: t.trace });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/3 cells: 2 done, .* 1 to run/);
    const trace = readTrace(t.trace);
    expect(trace.get(victim!.key)).toEqual({ start: 2, end: 1 });
    expect([...trace.values()].filter((n) => n.start === 1 && n.end === 1)).toHaveLength(2);
  });

  it('SIGTERM (what SLURM sends at its time limit): running cells stop as interrupted, locks are released, exit 130', async () => {
    const t = setup('term', { value: [1, 2, 3] }, 1, { sleepMs: 20_000, steps: 100 });
    const args = ['sweep', t.specFile, '--out', t.out, '--workers', '2', '--no-summary'];
    const run = cliAsync(args, { OPDLAB_TESTJOB_TRACE: t.trace });
    await waitFor('two running cells', () => readTrace(t.trace).size === 2);
    const t0 = Date.now();
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(Date.now() - t0).toBeLessThan(10_000); // not waited for (the cells would take 20 s)
    expect(r.stderr).toMatch(/received SIGTERM; stopping 2 running cell\(s\)/);
    const events = t.store.readLedger();
    // the job saw the abort signal and stopped (no SIGKILL after the grace period was needed)
    expect(events.filter((e) => e.event === 'interrupted').map((e) => e.why)).toEqual([expect.stringMatching(/^aborted: received SIGTERM/), expect.stringMatching(/^aborted: received SIGTERM/)]);
    expect(events.filter((e) => e.event === 'failed')).toHaveLength(0);
    expect(fs.readdirSync(t.store.locksDir)).toEqual([]);
    const dry = cli(['sweep', t.specFile, '--out', t.out, '--dry-run']);
    expect(dry.stdout).toMatch(/3 cells: 0 done, 0 failed, 0 running elsewhere, 0 corrupt, 2 interrupted, 1 missing; 3 would run/);
  });

  it('a runner that finds its lock taken over (heartbeat) stops the cell and writes nothing into it', async () => {
    const t = setup('lost', { value: [1] }, 1, { sleepMs: 20_000, steps: 100 });
    const run = cliAsync(['sweep', t.specFile, '--out', t.out, '--workers', '1', '--no-summary', '--heartbeat', '0.1', '--stale-after', '0.5'], { OPDLAB_TESTJOB_TRACE: t.trace });
    await waitFor('the cell to start', () => readTrace(t.trace).size === 1);
    const [key] = [...readTrace(t.trace).keys()];
    const other = { host: 'elsewhere', pid: 1, workerPid: null, startedAt: new Date().toISOString(), heartbeat: new Date(Date.now() + 60_000).toISOString(), token: 'ffffffffffffffff', owner: 'another runner' };
    fs.writeFileSync(t.store.lockFile(key), JSON.stringify(other));
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/lost the lock of value=1,seed=0/);
    const events = t.store.readLedger().map((e) => e.event);
    expect(events).toContain('lock-lost');
    expect(events).toContain('interrupted');
    expect(fs.readFileSync(path.join(t.store.cellDir(key), 'status'), 'utf8')).toBe('running\n'); // the new holder's business
    expect(JSON.parse(fs.readFileSync(t.store.lockFile(key), 'utf8')).owner).toBe('another runner');
  });
});
