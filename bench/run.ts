/**
 * `npm run bench`: the fused objective kernels against (a) the composed tfjs-autodiff reference on the same
 * backend, all of it tfjs ops (the teacher's log-softmax, top-K and gather included, as in (b)), also timed with
 * the teacher handed over as a ready dump (the student's side alone), and (b) the same maths in PyTorch eager on
 * CPU at the same thread count (bench/reference/objectives.py, run only where Debian's python3-torch imports).
 * Each case runs in a fresh process so its peak memory is its own. Prints milliseconds, ratios and peak memory over the logits' own size; targets from the Core issue:
 * fused >= 10x composed, fused >= 1.5x PyTorch, peak memory a small multiple of the logits.
 *
 *   npm run bench                       all objectives, both shapes
 *   npm run bench -- --quick            2048 x 4096 only, fewer repetitions
 *   npm run bench -- --only aopd,opd    a subset
 *   npm run bench -- --runs 3           every case 3 times (fused, composed and PyTorch in turn), medians reported:
 *                                       on a shared machine one run can catch a busy moment
 *   npm run bench -- --warmup 5         5 untimed calls before the timed ones in each opdlab case (default 3): the
 *                                       wasm kernels tier up (Liftoff -> TurboFan) and the heap settles over the
 *                                       first few calls, as they do in the first steps of a training run (with one,
 *                                       the fused top-K objectives' medians still caught calls in Liftoff code)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { formatTable } from '../lib/util/table';
import { BENCH_OBJECTIVES, BENCH_OPTIONS, BENCH_SHAPES } from './options';

const PY = '/usr/bin/python3';
const THREADS = 1; // opdlab's kernels are single-threaded; PyTorch gets the same
const DEFAULT_WARMUP = 3;

interface CaseResult {
  ms?: number;
  peakOverLogits?: number;
  error?: string;
}

function runNode(objective: string, n: number, v: number, mode: string, reps: number, warmup: number): CaseResult {
  const script = join(__dirname, 'objectiveCase.js');
  const r = spawnSync(process.execPath, ['--expose-gc', script, objective, String(n), String(v), mode, String(reps), String(warmup)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const line = (r.stdout || '').trim().split('\n').pop() || '';
  try {
    return JSON.parse(line) as CaseResult;
  } catch {
    return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0] };
  }
}

function runTorch(objective: string, n: number, v: number, reps: number): CaseResult {
  try {
    const out = execFileSync(PY, [join(__dirname, '..', '..', 'bench', 'reference', 'objectives.py'), objective, String(n), String(v), String(THREADS), String(reps)], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: String(THREADS), MKL_NUM_THREADS: String(THREADS) },
    });
    return JSON.parse(out.trim().split('\n').pop()!) as CaseResult;
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0] };
  }
}

/** The median of the runs that succeeded (the first error when none did). */
function medianOf(results: CaseResult[]): CaseResult {
  const ok = results.filter((r) => r.ms !== undefined).sort((a, b) => a.ms! - b.ms!);
  if (ok.length === 0) return results[0];
  const mid = ok[Math.floor((ok.length - 1) / 2)];
  const peaks = ok.map((r) => r.peakOverLogits).filter((p): p is number => p !== undefined);
  return { ms: mid.ms, peakOverLogits: peaks.length ? Math.max(...peaks) : undefined };
}

function main(): void {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyIdx = args.indexOf('--only');
  const runsIdx = args.indexOf('--runs');
  const runs = runsIdx >= 0 ? Math.max(1, Number(args[runsIdx + 1]) || 1) : 1;
  const warmupIdx = args.indexOf('--warmup');
  const warmup = warmupIdx >= 0 ? Math.max(1, Number(args[warmupIdx + 1]) || 1) : DEFAULT_WARMUP;
  const objectives = onlyIdx >= 0 ? args[onlyIdx + 1].split(',') : BENCH_OBJECTIVES;
  const shapes = quick ? BENCH_SHAPES.slice(0, 1) : BENCH_SHAPES;
  const reps = quick ? 3 : 5;
  const torchOk = spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  if (!torchOk) console.log(`PyTorch reference: missing (${PY} cannot import torch; apt-get install python3-torch)`);
  const rows: (string | number)[][] = [];
  for (const [n, v] of shapes) {
    for (const objective of objectives) {
      process.stderr.write(`bench ${objective} ${n}x${v} ...\n`);
      const all: { fused: CaseResult[]; composed: CaseResult[]; student: CaseResult[]; torch: CaseResult[] } = { fused: [], composed: [], student: [], torch: [] };
      const fullVocabulary = objective === 'gkd' && !BENCH_OPTIONS.gkd.topK; // needs the full teacher logits
      for (let run = 0; run < runs; run++) {
        all.fused.push(runNode(objective, n, v, 'fused', reps, warmup));
        all.composed.push(runNode(objective, n, v, 'composed', Math.max(1, Math.floor(reps / 2)), warmup));
        all.student.push(fullVocabulary ? { error: 'n/a' } : runNode(objective, n, v, 'composed-student', Math.max(1, Math.floor(reps / 2)), warmup));
        all.torch.push(torchOk ? runTorch(objective, n, v, reps) : { error: 'missing' });
      }
      const fused = medianOf(all.fused);
      const composed = medianOf(all.composed);
      const student = medianOf(all.student);
      const torch = medianOf(all.torch);
      const ratio = (a?: number, b?: number) => (a && b ? `${(b / a).toFixed(2)}x` : '-');
      rows.push([
        objective,
        `${n}x${v}`,
        fused.ms !== undefined ? fused.ms.toFixed(1) : `error: ${fused.error}`,
        composed.ms !== undefined ? composed.ms.toFixed(1) : `error: ${composed.error}`,
        student.ms !== undefined ? student.ms.toFixed(1) : student.error === 'n/a' ? '-' : `error: ${student.error}`,
        torch.ms !== undefined ? torch.ms.toFixed(1) : torch.error ?? '-',
        ratio(fused.ms, composed.ms),
        ratio(fused.ms, student.ms),
        ratio(fused.ms, torch.ms),
        fused.peakOverLogits !== undefined ? `${fused.peakOverLogits.toFixed(1)}x` : '-',
        composed.peakOverLogits !== undefined ? `${composed.peakOverLogits.toFixed(1)}x` : '-',
      ]);
    }
  }
  const over = `${runs > 1 ? `, median of ${runs} runs` : ''}, ${warmup} untimed call${warmup > 1 ? 's' : ''} first`;
  console.log(`\nLoss + student-logit gradient, median ms${over} (backend wasm unless OPDLAB_BACKEND says otherwise; PyTorch ${THREADS} thread)`);
  console.log(formatTable(['objective', 'N x V', 'fused ms', 'composed ms', 'composed, teacher ready ms', 'pytorch ms', 'fused vs composed', 'fused vs composed, teacher ready', 'fused vs pytorch', 'fused peak mem / logits', 'composed peak mem / logits'], rows));
  console.log('\ncomposed: all tfjs ops, the teacher\'s log-softmax, top-K and gather included (as in the PyTorch reference);');
  console.log('composed, teacher ready: the teacher handed over as a dump made before the clock starts (the student\'s side alone;');
  console.log('the fused kernels still read the full teacher logits). Full-vocabulary gkd needs the full logits: -.');
  console.log('Targets: fused vs composed >= 10x; fused vs pytorch >= 1.5x; peak memory a small multiple of the logits.');
  if (runs === 1) console.log('One run per case: on a busy or shared machine a single run can be off by half; the README\'s table is --runs 5.');
}

main();
