/**
 * The `opdlab notebooks` and `opdlab setup` commands (bin/opdlab.ts parses, these run). As project commands
 * they install what is missing when running as root (apt-get; the tslab kernelspec), and otherwise stop with
 * the exact command to run.
 */
import { basename, resolve } from 'node:path';
import { ensureRenderPackages, renderNeeds } from '../figures/render';
import { aptInstallLine, ensureSystemPackages, isRoot, missingSystemPackages } from '../util/system';
import { ensureNotebookTools, formatNotebookResults, notebookNeeds, notebookToolProblems, runNotebooks } from './run';

export interface NotebooksCommandOptions {
  /** Full settings (OPDLAB_QUICK=0) instead of quick ones. */
  full?: boolean;
  /** Seconds per notebook (string from the command line). */
  timeout?: string;
  inplace?: boolean;
  /** Folder for the executed copies. */
  out?: string;
}

/** Runs the notebooks; returns the exit code (1 when any notebook failed). */
export async function notebooksCommand(files: string[], opts: NotebooksCommandOptions): Promise<number> {
  const timeoutSec = opts.timeout === undefined ? 600 : Number(opts.timeout);
  if (!(Number.isFinite(timeoutSec) && timeoutSec > 0)) throw new Error(`--timeout must be a positive number of seconds, got '${opts.timeout}'`);
  // notebooks draw figures too, so Chromium and the fonts are part of what they need
  ensureRenderPackages();
  ensureNotebookTools();
  const results = await runNotebooks({
    notebooks: files.length ? files.map((f) => resolve(f)) : undefined,
    timeoutSec,
    quick: !opts.full,
    inplace: opts.inplace,
    outDir: opts.out,
    onResult: (r) => console.error(`${r.ok ? 'ok  ' : 'FAIL'} ${basename(r.notebook)} ${r.seconds.toFixed(1)} s${r.executed ? ` -> ${r.executed}` : ''}`),
  });
  console.log(formatNotebookResults(results));
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Installs (as root) or lists what figures and notebooks need; returns the exit code. */
export function setupCommand(opts: { check?: boolean }): number {
  if (opts.check || !isRoot()) {
    const missing = missingSystemPackages([...renderNeeds(), ...notebookNeeds()]);
    const problems = missing.length ? [`Debian packages missing: ${aptInstallLine(missing.map((m) => m.package))}`] : notebookToolProblems();
    if (problems.length === 0) {
      console.log('figures and notebooks: everything needed is installed');
      return 0;
    }
    console.log(problems.join('\n'));
    return 1;
  }
  const installed = ensureSystemPackages([...renderNeeds(), ...notebookNeeds()], 'figures and notebooks');
  ensureNotebookTools();
  console.log(installed.length ? `installed ${installed.join(' ')}` : 'figures and notebooks: everything needed is installed');
  return 0;
}
