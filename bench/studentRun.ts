/**
 * `npm run bench` (second part): one on-policy distillation step of the simulation's student, opdlab
 * (bench/student.ts, TensorFlow.js) against the same architecture and step in PyTorch eager
 * (bench/reference/student.py, Debian's python3-torch), both on one CPU thread. Target from the Simulation
 * issue: opdlab >= 0.5x PyTorch's throughput.
 *
 *   throughput = B x R tokens per step / milliseconds of the part      (B = prompts x group rows, R new tokens)
 *   ratio      = opdlab throughput / PyTorch throughput = PyTorch ms / opdlab ms       (> 1: opdlab is faster)
 *
 * Parts: sampling (KV-cached), forward+backward (response logits, OPD loss, gradients), optimiser (Adam),
 * training = forward+backward+optimiser, step = all of it. Each side runs in fresh processes, one after the
 * other, for `rounds` rounds; each process reports the median of its steps. The table shows the median ms over
 * rounds, and the ratio is the median over rounds of the per-round ratio (opdlab and PyTorch of the same round
 * ran back to back, so load from other work on a shared machine mostly cancels).
 *
 * PyTorch's speed here depends on the BLAS library python3-torch finds: Debian links it against libblas.so.3,
 * which is netlib's unoptimised reference BLAS unless an optimised one is installed. The output names the BLAS
 * each run loaded. `--torch-blas <dir>` adds PyTorch runs with LD_LIBRARY_PATH=<dir>, a folder holding an
 * optimised libblas.so.3 (e.g. Debian's libopenblas0-serial unpacked with `apt-get download` + `dpkg -x`:
 * <root>/usr/lib/x86_64-linux-gnu/openblas-serial), without installing anything.
 *
 *   npm run bench                                   both configurations, 3 rounds
 *   npm run bench -- --quick                        the default configuration, 1 round
 *   npm run bench -- --student-rounds 5 --torch-blas <dir>
 * Unknown arguments are ignored (they belong to bench/run.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { formatTable } from '../lib/util/table';
import { DISTILL_BENCH_CONFIGS, median, type DistillBenchConfig } from './studentConfigs';

const PY = '/usr/bin/python3';
const THREADS = 1; // the wasm backend runs one thread in Node; PyTorch gets the same
const TARGET = 0.5;

interface SideResult {
  sampleMs: number;
  forwardBackwardMs: number;
  optimiserMs: number;
  stepMs: number;
  tokensPerStep: number;
  blas?: string;
  error?: string;
}

function lastJson(text: string): SideResult {
  return JSON.parse(text.trim().split('\n').pop() || '') as SideResult;
}

function runOpdlab(config: DistillBenchConfig, reps: number, warmup: number): SideResult {
  const r = spawnSync(process.execPath, [join(__dirname, 'student.js'), config.name, String(reps), String(warmup)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  try {
    return lastJson(r.stdout || '');
  } catch {
    return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0] } as SideResult;
  }
}

function runTorch(config: DistillBenchConfig, reps: number, warmup: number, libDir: string | null): SideResult {
  const script = join(__dirname, '..', '..', 'bench', 'reference', 'student.py');
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(THREADS), MKL_NUM_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: String(THREADS) };
  if (libDir) env.LD_LIBRARY_PATH = libDir + (process.env.LD_LIBRARY_PATH ? `:${process.env.LD_LIBRARY_PATH}` : '');
  try {
    const out = execFileSync(PY, [script, 'bench', JSON.stringify(config), String(THREADS), String(reps), String(warmup)], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    return lastJson(out);
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] } as SideResult;
  }
}

type Part = 'sampleMs' | 'forwardBackwardMs' | 'optimiserMs' | 'training' | 'stepMs';
const PARTS: [Part, string][] = [
  ['sampleMs', 'sampling'],
  ['forwardBackwardMs', 'forward+backward'],
  ['optimiserMs', 'optimiser (Adam)'],
  ['training', 'training (f+b+Adam)'],
  ['stepMs', 'whole step'],
];
/** The parts the target is checked on. */
const TARGET_PARTS: Part[] = ['sampleMs', 'training', 'stepMs'];

function partMs(r: SideResult, part: Part): number {
  return part === 'training' ? r.forwardBackwardMs + r.optimiserMs : r[part];
}

const ok = (r: SideResult | undefined): r is SideResult => r !== undefined && r.error === undefined;

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function main(): void {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const rounds = Number(argValue(args, '--student-rounds') ?? (quick ? 1 : 3));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--student-rounds must be a positive integer, got ${argValue(args, '--student-rounds')}`);
  const reps = quick ? 3 : 5;
  const warmup = quick ? 1 : 2;
  const blasDir = argValue(args, '--torch-blas') ?? null;
  const configs = quick ? DISTILL_BENCH_CONFIGS.slice(0, 1) : DISTILL_BENCH_CONFIGS;
  const torchOk = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  if (!torchOk) console.log(`\nPyTorch reference: missing (${PY} cannot import torch; apt-get install python3-torch)`);
  const sides: { dir: string | null; blas?: string }[] = torchOk ? [{ dir: null }] : [];
  if (torchOk && blasDir) sides.push({ dir: blasDir });

  const tables: string[] = [];
  const verdicts: string[] = [];
  const tokS = (tokens: number, ms: number) => Math.round((tokens / ms) * 1000).toLocaleString('en-US');
  for (const config of configs) {
    const ours: SideResult[] = [];
    const theirs: SideResult[][] = sides.map(() => []);
    for (let round = 0; round < rounds; round++) {
      process.stderr.write(`bench student ${config.name} round ${round + 1}/${rounds} ...\n`);
      ours.push(runOpdlab(config, reps, warmup));
      sides.forEach((side, i) => theirs[i].push(runTorch(config, reps, warmup, side.dir)));
    }
    const tokens = config.prompts * config.group * config.responseLength;
    const oursOk = ours.filter(ok);
    theirs.forEach((runs, i) => (sides[i].blas ??= runs.find(ok)?.blas));
    const rows: string[][] = [];
    for (const [part, label] of PARTS) {
      const oursMs = oursOk.length ? median(oursOk.map((r) => partMs(r, part))) : undefined;
      const row = [label, oursMs !== undefined ? oursMs.toFixed(1) : `error: ${ours[0]?.error}`, oursMs ? tokS(tokens, oursMs) : '-'];
      theirs.forEach((runs, i) => {
        const good = runs.filter(ok);
        const ms = good.length ? median(good.map((r) => partMs(r, part))) : undefined;
        // paired: round r's PyTorch time over round r's opdlab time
        const paired = runs.flatMap((r, k) => (ok(r) && ok(ours[k]) ? [partMs(r, part) / partMs(ours[k], part)] : []));
        const ratio = paired.length ? median(paired) : undefined;
        row.push(ms !== undefined ? ms.toFixed(1) : `error: ${runs[0]?.error}`, ms ? tokS(tokens, ms) : '-', ratio !== undefined ? `${ratio.toFixed(2)}x` : '-');
        if (TARGET_PARTS.includes(part) && ratio !== undefined) {
          verdicts.push(`${config.name} ${label}, PyTorch with ${sides[i].blas ?? '?'}: ${ratio.toFixed(3)}x ${ratio >= TARGET ? 'meets' : 'MISSES'} the target`);
        }
      });
      rows.push(row);
    }
    const s = config.student;
    const headers = ['part', 'opdlab ms', 'opdlab tok/s'];
    sides.forEach((_, i) => {
      const tag = sides.length > 1 ? `[${i + 1}] ` : '';
      headers.push(`${tag}pytorch ms`, `${tag}pytorch tok/s`, `${tag}ratio`);
    });
    tables.push(
      `\n${config.name}: L${s.layers} D${s.width} H${s.heads} V${s.vocabSize}, ${config.prompts} prompts x ${config.group} rollouts, ` +
        `prompt ${config.promptLength} + ${config.responseLength} new tokens = ${tokens} tokens per step\n` +
        formatTable(headers, rows),
    );
  }
  console.log(`\nStudent OPD step, opdlab vs PyTorch eager: median ms over ${rounds} round(s) of ${reps} steps; ratio = opdlab tok/s / PyTorch tok/s (median of per-round ratios)`);
  console.log(`Backend wasm unless OPDLAB_BACKEND says otherwise; 1 thread each${sides.length ? '; PyTorch BLAS: ' + sides.map((s, i) => `${sides.length > 1 ? `[${i + 1}] ` : ''}${s.blas ?? '?'}`).join(', ') : ''}`);
  for (const table of tables) console.log(table);
  console.log(`\nTarget: opdlab >= ${TARGET}x PyTorch's throughput.`);
  for (const v of verdicts) console.log(`  ${v}`);
}

main();
