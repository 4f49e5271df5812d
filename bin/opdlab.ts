#!/usr/bin/env node
/**
 * The opdlab command line: parse, call lib/, print. No logic lives here.
 */
import { Command } from 'commander';
import { initBackend, selectBackend } from '../lib/backend';
import { checkAllObjectives } from '../lib/objectives';
import { formatTable } from '../lib/util/table';

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

program.parseAsync(process.argv).catch((e: Error) => {
  console.error(`opdlab: ${e.message}`);
  process.exit(1);
});
