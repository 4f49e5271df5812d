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
  .description('regenerate the results and figures (currently: the objective table with gradient checks)')
  .action(async () => {
    await initBackend();
    if (!printObjectiveTable()) process.exitCode = 1;
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

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`opdlab: ${e.message}`);
  process.exit(1);
});
