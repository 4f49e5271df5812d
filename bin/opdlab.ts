#!/usr/bin/env node
/**
 * The opdlab command line: parse, call lib/, print. No logic lives here.
 */
import { Command } from 'commander';
import { initBackend, selectBackend } from '../lib/backend';
import { checkAllObjectives } from '../lib/objectives';
import { featuresMarkdown } from '../lib/report/features';
import { formatTable } from '../lib/util/table';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const program = new Command();
program.name('opdlab').description('On-policy distillation research toolkit').version(require('../../package.json').version);

/** Prints every registered objective with its self-check; returns false when a check failed. */
function printObjectiveTable(): boolean {
  const checks = checkAllObjectives();
  const rows = checks.map((c) => [
    c.name,
    c.source,
    c.fusedKernel ? 'yes' : 'no',
    c.gradientOf,
    c.fusedVsComposed === null ? '-' : c.fusedVsComposed.toExponential(1),
    c.finiteDifference === null ? '-' : c.finiteDifference.toExponential(1),
    c.ok ? 'ok' : `FAIL${c.error ? `: ${c.error}` : ''}`,
  ]);
  console.log(formatTable(['objective', 'source', 'fused', 'gradient of', 'max|fused-composed|', 'finite-diff rel err', 'check'], rows));
  return checks.every((c) => c.ok);
}

program
  .command('objectives')
  .description('list every registered objective with its gradient self-check')
  .action(async () => {
    await initBackend();
    if (!printObjectiveTable()) process.exitCode = 1;
  });

program
  .command('backend')
  .description('show which TensorFlow.js backend would be used, and why')
  .action(async () => {
    const choice = selectBackend();
    const info = await initBackend({ quiet: true });
    console.log(`backend: ${info.active} (${choice.reason}${choice.module ? `; module ${choice.module}` : ''})`);
  });

program
  .command('reproduce')
  .description('regenerate every paper figure from the simulation: train the built-in sweeps the figures need (3 seeds, cache-aware), make data/figures/*.json, draw figures/ (--quick: a tiny version into runs-quick/)')
  .option('--quick', 'tiny runs, one seed, into runs-quick/ (what the tests run; never touches data/ or figures/)')
  .option('--only <generators>', 'comma-separated data generators (see --list)')
  .option('--only-runs', 'train the runs and stop (no data files, no figures)')
  .option('--specs <names>', 'with --only-runs: these built-in specs instead of those of the generators')
  .option('--workers <n>', 'worker processes for training', '2')
  .option('--seeds <n>', 'seeds per cell (default 3, the committed results); more seeds = more runs, tighter intervals')
  .option('--no-images', 'json and html figures only (no headless Chromium)')
  .option('--list', 'list the data generators, their claims and specs')
  .option('--progress <kind>', 'auto | bars | lines | none', 'auto')
  .action(async (opts: { quick?: boolean; only?: string; onlyRuns?: boolean; specs?: string; workers: string; seeds?: string; images: boolean; list?: boolean; progress: string }) => {
    if (opts.seeds !== undefined) {
      const { PAPER_SEEDS_ENV, modeSeeds } = await import('../lib/figures/sweeps');
      process.env[PAPER_SEEDS_ENV] = opts.seeds;
      modeSeeds('full'); // validates
    }
    const { DATA_GENERATORS } = await import('../lib/figures/paper/generators');
    if (opts.list) {
      console.log(formatTable(['generator', 'data file', 'claims', 'specs'], DATA_GENERATORS.map((g) => [g.name, g.dataFile, g.claims.join(' '), g.specs.join(' ') || '(simulation)'])));
      return;
    }
    await initBackend();
    if (!printObjectiveTable()) {
      process.exitCode = 1;
      return;
    }
    const list = (s: string | undefined) => (s === undefined ? null : s.split(',').map((x) => x.trim()).filter(Boolean));
    const { reproduce } = await import('../lib/figures/reproduce');
    if (opts.images) (await import('../lib/figures/render')).ensureRenderPackages();
    await reproduce({
      mode: opts.quick ? 'quick' : 'full',
      only: list(opts.only),
      onlyRuns: opts.onlyRuns === true,
      specs: list(opts.specs),
      workers: Number(opts.workers),
      images: opts.images,
      progress: opts.progress as 'auto',
      log: (l) => console.log(l),
      handleSignals: true,
    });
  });

program
  .command('features')
  .description('print FEATURES.md as generated from the registry (--write to update the file, --check to compare)')
  .option('--write', 'write FEATURES.md in the repository root')
  .option('--check', 'exit 1 when FEATURES.md differs from the generated text')
  .action(async (opts: { write?: boolean; check?: boolean }) => {
    await initBackend({ quiet: true });
    const root = join(__dirname, '..', '..');
    const text = featuresMarkdown(root);
    const path = join(root, 'FEATURES.md');
    if (opts.write) {
      writeFileSync(path, text);
      console.log(`wrote ${path}`);
    } else if (opts.check) {
      const current = readFileSync(path, 'utf8');
      if (current !== text) {
        console.error('FEATURES.md is stale: run `npx opdlab features --write`');
        process.exitCode = 1;
      }
    } else {
      process.stdout.write(text);
    }
  });

program
  .command('sweep [spec]')
  .description('run an ablation sweep (a built-in spec name or a spec .json): cells on a pool of workers, resumable, shardable; then the summary table')
  .option('--list', 'list the built-in specs and jobs')
  .option('--dry-run', 'list the cells, their run keys and which are done; run nothing')
  .option('--workers <n>', 'parallel worker processes (default: one per core)')
  .option('--shard <i/n>', 'run shard i of n (default: from SLURM_ARRAY_TASK_ID/_COUNT or JOB_COMPLETION_INDEX + OPDLAB_SHARD_COUNT)')
  .option('--steal', "after this shard's cells, run other shards' missing cells (locks keep each cell to one runner)")
  .option('--retry-failed', 'run failed cells again')
  .option('--out <dir>', 'folder holding the sweeps', 'runs')
  .option('--order <grid|random>', 'cell order: expansion order (seed-major) or shuffled', 'grid')
  .option('--order-seed <n>', 'seed of --order random', '0')
  .option('--set <path=value>', 'override a base config field, e.g. distill.steps=20 (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
  .option('--job <name|module.js#export>', "run the cells with another job than the spec's")
  .option('--stale-after <seconds>', 'a lock whose heartbeat is older is taken over', '120')
  .option('--heartbeat <seconds>', 'lock heartbeat period', '10')
  .option('--summary-only', 'print and write summary.csv from the finished cells; run nothing')
  .option('--no-summary', 'skip the summary at the end')
  .option('--progress <auto|bars|lines|none>', 'progress display', 'auto')
  .action(async (spec: string | undefined, opts: Record<string, unknown>) => {
    const { sweepCommand } = await import('../lib/sweep/cli');
    process.exitCode = await sweepCommand(spec, opts);
  });

program
  .command('run')
  .description(
    'one training run (warm-up, distillation, evaluation, optional continual stage) into runs/<sweep>/<runKey>/; ' +
      'flags: --method --seed --steps --lr --prompts --rollouts --warmup-steps --digits --continual-steps --if-exists ... ' +
      '(lib/train/cli.ts RUN_FLAGS), any objective option (--eta 0 --topk 16 --beta 0.5), --set path=value, --config file.json',
  )
  .allowUnknownOption(true)
  .allowExcessArguments(true)
  .action(async (_opts: unknown, cmd: Command) => {
    const { parseRunArgs, run } = await import('../lib/train');
    const cliProgress = await import('cli-progress');
    const input = parseRunArgs(cmd.args);
    await initBackend();
    const tty = Boolean(process.stderr.isTTY);
    const bar = new cliProgress.SingleBar(
      { format: '{stage} |{bar}| {value}/{total} | ETA {eta_formatted} | loss {loss} | pass@1 {pass1}', hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let stage = '';
    const result = await run(input, {
      onProgress: (e) => {
        const loss = Number.isFinite(e.loss) ? e.loss.toFixed(4) : String(e.loss);
        const label = e.stage === 'warmup' ? 'warm-up' : e.phase;
        const pass1 = e.stage === 'train' && e.pass1 !== null ? e.pass1.toFixed(3) : '-';
        if (!tty) {
          if (e.step === e.total || e.step % 50 === 0) console.error(`${label} ${e.step}/${e.total} loss ${loss} pass@1 ${pass1}`);
          return;
        }
        if (label !== stage && (e.stage === 'warmup' || stage === '' || stage === 'warm-up')) {
          if (stage) bar.stop();
          bar.start(e.total, 0, { stage: e.stage === 'warmup' ? 'warm-up' : 'train  ', loss, pass1 });
        }
        stage = label;
        bar.update(e.step, { loss, pass1 });
      },
    }).finally(() => {
      if (stage) bar.stop();
    });
    console.log(`${result.status}: ${result.dir}`);
    if (result.summary) {
      const m = result.summary.metrics;
      const keys = Object.keys(m).filter((k) => /^(initial|final|continual)\//.test(k) && /pass@\d+(_before|_after)?$|retention$/.test(k));
      for (const k of [...keys, 'time/total_s', 'time/tokens_per_s']) console.log(`  ${k} = ${Number.isInteger(m[k]) ? m[k] : m[k]?.toPrecision(4)}`);
    }
  });

program
  .command('doctor <dump>')
  .description('check a rollout dump before any figure (ecosystem.md 2.4): alignment, vocab, EOS mask, temperatures, sentinels, NaN, ...; exit 1 on a critical failure')
  .option('--format <f>', 'jsonl | parquet | safetensors | npy | vllm | sglang | tinker (default: guessed)')
  .option('--meta <file.json>', 'run metadata to use over the dump\'s own (vocab_size_s, sampler, teacher, eos_id, ...)')
  .option('--json', 'print the report as JSON')
  .action(async (dump: string, opts: { format?: string; meta?: string; json?: boolean }) => {
    const { doctorCommand } = await import('../lib/io/cli');
    process.exitCode = await doctorCommand(dump, opts);
  });

program
  .command('analyze <dump>')
  .description('doctor + diagnostics of a rollout dump -> DIR/report.html, summary.json, figures/*.json')
  .requiredOption('--out <dir>', 'output folder (never overwritten unless --overwrite)')
  .option('--format <f>', 'jsonl | parquet | safetensors | npy | vllm | sglang | tinker (default: guessed)')
  .option('--meta <file.json>', 'run metadata to use over the dump\'s own')
  .option('--force', 'write the report even when a critical doctor check fails (the report says so)')
  .option('--overwrite', 'replace an existing output folder')
  .option('--streaming <auto|on|off>', 'stream in bounded memory (auto: dumps over 256 MiB)', 'auto')
  .option('--student-lp <auto|sampler|train>', 'student log-prob defining the advantage (auto: student_lp_train when recorded)', 'auto')
  .action(async (dump: string, opts: { out: string; format?: string; meta?: string; force?: boolean; overwrite?: boolean; streaming?: string; studentLp?: string }) => {
    const { analyzeCommand } = await import('../lib/io/cli');
    process.exitCode = await analyzeCommand(dump, opts);
  });

program
  .command('sample-dumps')
  .description('regenerate the sample rollout dumps (every format, engine quirks) from the simulation')
  .option('--out <dir>', 'output folder', 'data/dumps')
  .option('--warmup-steps <n>', 'SFT warm-up steps of the student')
  .option('--sequences <n>', 'rollouts')
  .option('--seed <n>', 'seed')
  .action(async (opts: { out: string; warmupSteps?: string; sequences?: string; seed?: string }) => {
    await initBackend({ quiet: true });
    const { sampleDumpsCommand } = await import('../lib/io/cli');
    process.exitCode = await sampleDumpsCommand(opts);
  });

program
  .command('notebooks [files...]')
  .description('execute notebooks/*.ipynb (or the given files) headless with the tslab kernel; fails on any cell error')
  .option('--full', 'full settings (OPDLAB_QUICK=0); the default is quick settings (OPDLAB_QUICK=1)')
  .option('--timeout <seconds>', 'time budget of each notebook (and of each cell)', '600')
  .option('--inplace', 'write the executed notebooks, with their outputs, back into the sources')
  .option('--out <dir>', 'folder for the executed copies (default runs/notebooks)')
  .action(async (files: string[], opts: { full?: boolean; timeout?: string; inplace?: boolean; out?: string }) => {
    const { notebooksCommand } = await import('../lib/notebooks/cli');
    process.exitCode = await notebooksCommand(files, opts);
  });

program
  .command('figures')
  .description('draw every registered paper figure from the cached data in data/figures/ to figures/<name>.{json,html,png,svg} and figures/numbers.json (never trains)')
  .option('--only <names>', 'comma-separated figure names (e.g. fig2aAdvantageDistribution)')
  .option('--no-images', 'json and html only (no headless Chromium)')
  .option('--generate <generator>', 'remake one data file from existing runs (or, for c1c2, by running the simulation), then draw; `opdlab reproduce --list` names them')
  .action(async (opts: { only?: string; images: boolean; generate?: string }) => {
    const log = (line: string) => console.log(line);
    if (opts.generate !== undefined) {
      const { getGenerator } = await import('../lib/figures/paper/generators');
      const { figureDataPath } = await import('../lib/figures/data');
      const g = getGenerator(opts.generate);
      await initBackend({ quiet: true });
      await g.generate({ mode: 'full', runsRoot: (await import('../lib/figures/paths')).projectPaths().runs, out: figureDataPath(g.dataFile), log });
    }
    const { drawPaperFigures } = await import('../lib/figures/paper');
    if (opts.images) (await import('../lib/figures/render')).ensureRenderPackages();
    await drawPaperFigures({ only: opts.only?.split(',').map((s) => s.trim()).filter(Boolean), images: opts.images, log });
  });

program
  .command('setup')
  .description('install what figures and notebooks need (as root: Chromium, fonts, Jupyter via apt-get; the tslab kernelspec)')
  .option('--check', 'only report what is missing')
  .action(async (opts: { check?: boolean }) => {
    const { setupCommand } = await import('../lib/notebooks/cli');
    process.exitCode = setupCommand(opts);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`opdlab: ${e.message}`);
  process.exit(1);
});
