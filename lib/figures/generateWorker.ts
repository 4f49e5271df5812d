/**
 * One data generator in its own process: what `opdlab reproduce` forks so that the generators that run the
 * simulation themselves (c1c2, neighbours) use the machine's cores side by side instead of one after another.
 *
 *   argv[2]  JSON {name, mode, runsRoot, out} (lib/figures/paper/generators.ts GenerateContext without `log`)
 *   stdout   the generator's log lines;  exit 0 when its data file is written, 1 with the error on stderr
 */
import { initBackend } from '../backend';
import { getGenerator } from './paper/generators';
import type { ReproduceMode } from './sweeps';

interface WorkerArgs {
  name: string;
  mode: ReproduceMode;
  runsRoot: string;
  out: string;
}

async function main(): Promise<void> {
  const text = process.argv[2];
  if (!text) throw new Error('generateWorker: argv[2] must be a JSON object {name, mode, runsRoot, out}');
  const a = JSON.parse(text) as WorkerArgs;
  await initBackend({ quiet: true });
  await getGenerator(a.name).generate({ mode: a.mode, runsRoot: a.runsRoot, out: a.out, log: (line) => process.stdout.write(`${line}\n`) });
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
