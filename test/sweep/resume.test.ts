/**
 * Interruption and sharding, end to end (`opdlab sweep` processes, the test job):
 *  - kill -9 of the runner in the middle of a sweep, then the same command: finished cells are not rerun, the
 *    missing ones are, and every result equals an uninterrupted sweep's;
 *  - three shards started at once on one folder (from --shard, SLURM and Kubernetes variables, with --steal so
 *    they compete for cells) give the full grid exactly once; resubmitting them after a result was corrupted
 *    reruns that cell only.
 */
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SweepStore } from '../../lib/sweep/store';
import { alive, cli, cliAsync, readTrace, requireBuiltDist, tempDir, waitFor, writeSpec } from './helpers';

let root: string;
beforeAll(() => {
  requireBuiltDist();
  root = tempDir('resume');
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

interface SweepCell {
  key: string;
  name: string;
}
const cellsOf = (store: SweepStore): SweepCell[] => JSON.parse(fs.readFileSync(path.join(store.dir, 'sweep.json'), 'utf8')).cells;
const startsIn = (trace: string, from: number) =>
  fs.readFileSync(trace, 'utf8').slice(from).split('\n').filter((l) => l.endsWith(' start')).map((l) => l.split(' ')[0]);

describe('interrupting the runner', () => {
  it('kill -9 mid-sweep, then the same command: only the missing cells run, results equal an uninterrupted sweep', async () => {
    const dir = path.join(root, 'kill');
    fs.mkdirSync(dir);
    const specFile = writeSpec(dir, { name: 'kill', job: 'test-sleep', base: { sleepMs: 250, steps: 5 }, axes: { value: [1, 2, 3, 4] }, seeds: 3 });
    const args = (out: string) => ['sweep', specFile, '--out', out, '--workers', '2', '--no-summary'];
    const outA = path.join(dir, 'clean');
    const outB = path.join(dir, 'interrupted');
    const trace = path.join(dir, 'trace.txt');
    const storeB = new SweepStore(outB, 'kill');

    const clean = cliAsync(args(outA));
    const victim = cliAsync(args(outB), { OPDLAB_TESTJOB_TRACE: trace });
    await waitFor('4 finished cells', () => fs.existsSync(storeB.ledger) && storeB.readLedger().filter((e) => e.event === 'done').length >= 4);
    victim.child.kill('SIGKILL');
    await victim.done;
    const cells = cellsOf(storeB);
    expect(cells).toHaveLength(12);
    // the workers notice their runner is gone and exit (no orphan keeps writing)
    const workerPids = fs.readdirSync(storeB.locksDir).map((f) => JSON.parse(fs.readFileSync(path.join(storeB.locksDir, f), 'utf8')).workerPid as number | null);
    await waitFor('orphaned workers to exit', () => workerPids.every((p) => !p || !alive(p)), 10_000);

    const before = new Map(cells.map((c) => [c.key, storeB.inspect(c.key).state]));
    const finished = cells.filter((c) => before.get(c.key) === 'done').map((c) => c.key);
    expect(finished.length).toBeGreaterThanOrEqual(4);
    expect(finished.length).toBeLessThan(12);
    expect([...before.values()].filter((s) => s === 'running')).toEqual([]); // dead holders do not block
    const dry = cli(['sweep', specFile, '--out', outB, '--dry-run']);
    expect(dry.stdout).toMatch(new RegExp(`12 cells: ${finished.length} done, 0 failed, 0 running elsewhere, 0 corrupt, \\d+ interrupted, \\d+ missing; ${12 - finished.length} would run`));

    const mark = fs.readFileSync(trace, 'utf8').length;
    const resumed = cli(args(outB), { OPDLAB_TESTJOB_TRACE: trace });
    expect(resumed.code, resumed.stderr).toBe(0);
    const rerun = startsIn(trace, mark);
    expect(rerun.sort()).toEqual(cells.map((c) => c.key).filter((k) => !finished.includes(k)).sort());
    for (const k of finished) expect(readTrace(trace).get(k)!.start, `finished cell ${k} was rerun`).toBe(1);

    const a = await clean.done;
    expect(a.code, a.stderr).toBe(0);
    const storeA = new SweepStore(outA, 'kill');
    expect(cellsOf(storeA).map((c) => c.key)).toEqual(cells.map((c) => c.key));
    for (const c of cells) {
      const ra = storeA.inspect(c.key);
      const rb = storeB.inspect(c.key);
      expect([ra.state, rb.state]).toEqual(['done', 'done']);
      expect(rb.result!.metrics, c.name).toEqual(ra.result!.metrics);
      const log = (store: SweepStore) => fs.readFileSync(path.join(store.cellDir(c.key), 'metrics.jsonl'), 'utf8');
      expect(log(storeB)).toBe(log(storeA));
    }
  });
});

describe('shards on a shared folder', () => {
  it('three shards at once (--shard, SLURM, Kubernetes) run the full grid exactly once; a resubmission reruns only a corrupted cell', async () => {
    const dir = path.join(root, 'shards');
    fs.mkdirSync(dir);
    const specFile = writeSpec(dir, { name: 'shards', job: 'test-sleep', base: { sleepMs: 120, steps: 3 }, axes: { value: [1, 2, 3, 4, 5, 6] }, seeds: 2 });
    const out = path.join(dir, 'runs');
    const trace = path.join(dir, 'trace.txt');
    const args = ['sweep', specFile, '--out', out, '--workers', '2', '--no-summary'];
    const env = { OPDLAB_TESTJOB_TRACE: trace };
    const launch = (steal: boolean) => [
      cliAsync([...args, '--shard', '0/3', ...(steal ? ['--steal'] : [])], env),
      cliAsync([...args, ...(steal ? ['--steal'] : [])], { ...env, SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '3' }),
      cliAsync([...args, ...(steal ? ['--steal'] : [])], { ...env, JOB_COMPLETION_INDEX: '2', OPDLAB_SHARD_COUNT: '3' }),
    ];
    const results = await Promise.all(launch(true).map((r) => r.done));
    expect(results[0].stderr).toMatch(/shard 0\/3 \(--shard\) has 4/);
    expect(results[1].stderr).toMatch(/shard 1\/3 \(SLURM_ARRAY_TASK_ID\/SLURM_ARRAY_TASK_COUNT\) has 4/);
    expect(results[2].stderr).toMatch(/shard 2\/3 \(JOB_COMPLETION_INDEX\/OPDLAB_SHARD_COUNT\) has 4/);

    const store = new SweepStore(out, 'shards');
    const cells = cellsOf(store);
    expect(cells).toHaveLength(12);
    const t = readTrace(trace);
    expect(t.size).toBe(12);
    for (const c of cells) {
      expect(t.get(c.key), c.name).toEqual({ start: 1, end: 1 });
      expect(store.inspect(c.key).state).toBe('done');
    }
    expect(store.readLedger().filter((e) => e.event === 'start')).toHaveLength(12);
    expect(fs.readdirSync(store.locksDir)).toEqual([]);

    // a half-written result (as a crash of a non-atomic copy would leave it) is detected and rerun by its shard
    const victim = cells[5];
    const file = path.join(store.cellDir(victim.key), 'result.json');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 40));
    expect(cli(['sweep', specFile, '--out', out, '--dry-run']).stdout).toMatch(new RegExp(`${victim.name}\\s+${victim.key.slice(0, 12)}\\s+corrupt\\s+run\\s+result.json .* does not match the digest`));
    const mark = fs.readFileSync(trace, 'utf8').length;
    const again = await Promise.all(launch(false).map((r) => r.done));
    for (const r of again) expect(r.code, r.stderr).toBe(0);
    expect(startsIn(trace, mark)).toEqual([victim.key]);
    expect(store.inspect(victim.key).state).toBe('done');
    expect(store.readLedger().filter((e) => e.event === 'corrupt').map((e) => e.key)).toEqual([victim.key]);
  });
});
