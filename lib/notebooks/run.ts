/**
 * Executes the tslab notebooks headless and fails on any cell error (style.md item 10: CI executes every
 * notebook).
 *
 * Each notebook runs in Debian's Jupyter:
 *   /usr/bin/python3 -m nbconvert --to notebook --execute --allow-errors \
 *     --ExecutePreprocessor.kernel_name=tslab --ExecutePreprocessor.timeout=<cell s> --config=<hook.py> ...
 * with node_modules/.bin first on PATH (the tslab kernelspec starts `tslab`) and OPDLAB_QUICK=1 (quick
 * settings; display.ts `isQuick`). The executed copy goes to runs/notebooks/ (or back into the source with
 * `inplace`).
 *
 * Why a config hook instead of nbconvert's exit status alone: tslab reports a failing cell (a type error, a
 * throw) as a *stderr stream* plus reply status 'error', never as an 'error' output, and nbclient's
 * CellExecutionError then carries an empty message. The hook (nbclient's `on_cell_executed`) records each
 * cell's reply status in the cell's metadata, so the runner can name the failing cell and show tslab's message.
 * After the first error the kernel aborts the remaining cells (status 'abort').
 *
 * Errors are: reply status 'error' or 'abort'; an 'error' output; stderr text that reports an uncaught
 * exception or rejection (tslab prints "UncaughtException: ..." in a *later* cell's stderr, with status ok);
 * nbconvert failing (kernel start, cell timeout, kernel death); the notebook overrunning its time budget.
 * Plain console.error/warn output is not an error.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, delimiter, join, resolve } from 'node:path';
import { projectPaths } from '../figures/paths';
import { formatTable } from '../util/table';
import { checkSystemPackages, ensureSystemPackages, pythonImports, type EnsureOptions, type SystemNeed } from '../util/system';
import { QUICK_ENV } from './display';

/** Debian's Python (the `python3` first on PATH may be a pyenv one without Jupyter). */
export const DEBIAN_PYTHON = '/usr/bin/python3';

/** What executing notebooks needs from Debian (checked by importing the modules into Debian's Python). */
export function notebookNeeds(python = DEBIAN_PYTHON): SystemNeed[] {
  return [
    { package: 'jupyter-nbconvert', why: 'runs the notebooks (python3 -m nbconvert --execute)', present: () => pythonImports(['nbconvert'], python) },
    { package: 'python3-nbclient', why: 'executes the cells', present: () => pythonImports(['nbclient'], python) },
    { package: 'python3-ipykernel', why: 'jupyter_client and IPython for `tslab install`', present: () => pythonImports(['ipykernel', 'IPython', 'jupyter_client'], python) },
  ];
}

/** node_modules/.bin/tslab of this checkout (a devDependency). */
export function tslabBinary(root = projectPaths().root): string {
  return join(root, 'node_modules', '.bin', 'tslab');
}

/** The registered `tslab` kernelspec as Jupyter finds it, or null. */
export function tslabKernelSpec(python = DEBIAN_PYTHON): { dir: string; argv: string[] } | null {
  const code = `import json
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
try:
    s = KernelSpecManager().get_kernel_spec('tslab')
    print(json.dumps({'dir': s.resource_dir, 'argv': s.argv}))
except NoSuchKernel:
    print('null')`;
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  return JSON.parse(r.stdout.trim()) as { dir: string; argv: string[] } | null;
}

/** The command that registers the kernelspec (system-wide as root, else in the user's Jupyter folder). */
export function tslabInstallCommand(root = projectPaths().root, python = DEBIAN_PYTHON): string[] {
  return [tslabBinary(root), 'install', `--python=${python}`];
}

/** Problems that stop notebooks from running, each with its fix; empty when ready. Installs nothing. */
export function notebookToolProblems(root = projectPaths().root, python = DEBIAN_PYTHON): string[] {
  const problems: string[] = [];
  try {
    checkSystemPackages(notebookNeeds(python), 'running notebooks');
  } catch (e) {
    return [(e as Error).message];
  }
  if (!existsSync(tslabBinary(root))) problems.push(`the tslab kernel is not installed in ${root}/node_modules (it is a devDependency): run npm install`);
  else if (!tslabKernelSpec(python)) problems.push(`the tslab kernelspec is not registered with Jupyter: run ${tslabInstallCommand(root, python).join(' ')}`);
  return problems;
}

/**
 * For the CLI, CI and tests: install the Debian packages when missing (as root; otherwise throws with the
 * apt-get line) and register the tslab kernelspec when Jupyter does not find it (idempotent).
 */
export function ensureNotebookTools(options: EnsureOptions & { root?: string; python?: string } = {}): void {
  const root = options.root ?? projectPaths().root;
  const python = options.python ?? DEBIAN_PYTHON;
  ensureSystemPackages(notebookNeeds(python), 'running notebooks', options);
  if (!existsSync(tslabBinary(root))) throw new Error(`the tslab kernel is not installed in ${root}/node_modules (it is a devDependency): run npm install`);
  if (!tslabKernelSpec(python)) {
    const [bin, ...args] = tslabInstallCommand(root, python);
    const r = spawnSync(bin, args, { encoding: 'utf8' });
    if (r.status !== 0 || !tslabKernelSpec(python)) throw new Error(`registering the tslab kernelspec failed (${[bin, ...args].join(' ')}): ${r.stderr || r.stdout}`);
    (options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(`opdlab: registered the tslab kernelspec (${tslabKernelSpec(python)?.dir})`);
  }
}

/** Every notebooks/*.ipynb, sorted by name (NN_ prefixes give the order). */
export function listNotebooks(dir = projectPaths().notebooks): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ipynb') && !f.startsWith('.'))
    .sort()
    .map((f) => join(dir, f));
}

export type CellStatus = 'ok' | 'error' | 'abort' | 'not-run';

export interface CellReport {
  /** Index among the notebook's cells (markdown cells included), as Jupyter shows them from 0. */
  index: number;
  status: CellStatus;
  /** Busy-to-idle seconds from nbclient's timing metadata; null when not run. */
  seconds: number | null;
}

export interface NotebookResult {
  notebook: string;
  /** The executed copy, or null when nbconvert wrote none. */
  executed: string | null;
  ok: boolean;
  /** Wall-clock seconds of the whole run (kernel start included). */
  seconds: number;
  cells: CellReport[];
  /** One message per problem, naming the cell. */
  errors: string[];
  /** What went wrong around the notebook without failing it (leftover processes killed). */
  warnings: string[];
}

interface NbCell {
  cell_type: string;
  source: string | string[];
  outputs?: { output_type: string; name?: string; text?: string | string[]; ename?: string; evalue?: string }[];
  metadata?: { opdlab?: { status?: string }; execution?: Record<string, string>; [k: string]: unknown };
}

const joinText = (t: string | string[] | undefined) => (Array.isArray(t) ? t.join('') : t ?? '');
const firstLine = (src: string) => src.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 80) ?? '';
/** stderr text that reports an uncaught exception / unhandled rejection (tslab's wording, Node's). */
const UNCAUGHT = /\b(UncaughtException|Uncaught \w*Error|UnhandledPromiseRejection|Unhandled(Promise)?Rejection)\b/;

/** Reads an executed notebook (with the runner's status hook) and lists its cells and errors. */
export function inspectExecutedNotebook(nb: { cells?: NbCell[] }): { cells: CellReport[]; errors: string[] } {
  if (!nb || !Array.isArray(nb.cells)) throw new Error('inspectExecutedNotebook: not a notebook (no cells array)');
  const cells: CellReport[] = [];
  const errors: string[] = [];
  let firstFailure = true;
  nb.cells.forEach((cell, index) => {
    const source = joinText(cell.source);
    if (cell.cell_type !== 'code' || source.trim() === '') return;
    const status = (cell.metadata?.opdlab?.status ?? 'not-run') as string;
    const st: CellStatus = status === 'ok' || status === 'error' || status === 'abort' ? status : 'not-run';
    const ex = cell.metadata?.execution;
    const busy = ex?.['iopub.status.busy'];
    const idle = ex?.['iopub.status.idle'];
    const seconds = busy && idle ? (Date.parse(idle) - Date.parse(busy)) / 1000 : null;
    cells.push({ index, status: st, seconds });
    const where = `cell ${index} (${firstLine(source)})`;
    const stderr = (cell.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => joinText(o.text)).join('');
    const errOutputs = (cell.outputs ?? []).filter((o) => o.output_type === 'error');
    if (st === 'error') errors.push(`${where} failed: ${stderr.trim() || errOutputs.map((o) => `${o.ename}: ${o.evalue}`).join('; ') || '(no message)'}`);
    else if (st === 'abort') {
      if (firstFailure) errors.push(`${where} was aborted by the kernel`);
    } else if (st === 'not-run') errors.push(`${where} did not run`);
    else {
      for (const o of errOutputs) errors.push(`${where} raised ${o.ename}: ${o.evalue}`);
      if (UNCAUGHT.test(stderr)) errors.push(`${where} reported an uncaught error: ${stderr.trim().split('\n').slice(0, 4).join(' | ')}`);
    }
    if (st !== 'ok') firstFailure = false;
  });
  return { cells, errors };
}

/** The executed notebook as it is written back with `inplace`: outputs kept, the runner's cell metadata (reply status, timing) removed. */
export function withoutRunnerMetadata<T extends { cells?: NbCell[] }>(nb: T): T {
  return {
    ...nb,
    cells: (nb.cells ?? []).map((c) => {
      if (!c.metadata) return c;
      const { opdlab: _status, execution: _timing, ...rest } = c.metadata;
      return { ...c, metadata: rest };
    }),
  };
}

/** nbclient hook: store each cell's execute_reply status in its metadata (see the header). */
const HOOK = `# written by opdlab lib/notebooks/run.ts
def _opdlab_record(cell, cell_index, execute_reply):
    content = (execute_reply or {}).get('content', {})
    cell.metadata['opdlab'] = {'status': content.get('status', 'none')}
c.ExecutePreprocessor.on_cell_executed = _opdlab_record
`;

export interface RunNotebooksOptions {
  /** Notebook files. Default: every notebooks/*.ipynb (listNotebooks). */
  notebooks?: readonly string[];
  /**
   * Seconds each cell may run (nbclient's cell timeout, a clean failure) and, plus 30 s of grace, the whole
   * notebook with kernel start (then nbconvert is interrupted and killed). Default 600.
   */
  timeoutSec?: number;
  /** OPDLAB_QUICK=1 (quick settings) when true, 0 when false. Default true. */
  quick?: boolean;
  /** Where executed copies go. Default runs/notebooks/ (paths.ts). */
  outDir?: string;
  /** Also write the executed notebook (outputs kept, runner metadata removed) back into the source file. */
  inplace?: boolean;
  /** Extra environment for the kernel. */
  env?: Record<string, string>;
  /** Repository root whose node_modules/.bin holds tslab. Default paths.ts repoRoot(). */
  root?: string;
  python?: string;
  /** Called after each notebook (progress lines). */
  onResult?: (result: NotebookResult) => void;
}

function checkOptions(o: RunNotebooksOptions): void {
  if (o.timeoutSec !== undefined && !(Number.isFinite(o.timeoutSec) && o.timeoutSec > 0)) throw new Error(`timeoutSec must be a positive number of seconds, got ${o.timeoutSec}`);
  for (const nb of o.notebooks ?? []) {
    if (!nb.endsWith('.ipynb')) throw new Error(`notebooks: expected .ipynb files, got ${JSON.stringify(nb)}`);
    if (!existsSync(nb)) throw new Error(`notebooks: no such file ${nb}`);
  }
}

/** Environment variable that marks every process of one notebook run (nbconvert, the kernel, its children). */
const RUN_MARK = 'OPDLAB_NOTEBOOK_RUN';
let runCounter = 0;

/**
 * Kills (SIGKILL) every process whose environment carries `RUN_MARK=mark`. jupyter_client starts the kernel in
 * its own session, so it survives nbconvert when nbconvert dies before shutting it down (a kill, a crash);
 * a Chromium started by a cell would too. Reads /proc (Linux); elsewhere it does nothing.
 */
function killMarked(mark: string): number {
  if (!existsSync('/proc')) return 0;
  const needle = `${RUN_MARK}=${mark}\0`;
  let killed = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (`${readFileSync(`/proc/${entry}/environ`, 'latin1')}\0`.includes(needle)) {
        process.kill(Number(entry), 'SIGKILL');
        killed++;
      }
    } catch {
      // gone already, or not ours to read
    }
  }
  return killed;
}

/**
 * Runs one process with stderr going to `logFile`, stopping it past `timeoutMs` (SIGINT, so nbconvert shuts its
 * kernel down; SIGKILL 10 s later). When it exits, kills whatever is left of the run (killMarked).
 *
 * stderr goes to a file, not a pipe: the kernel inherits nbconvert's stderr, and Node makes its stdio pipes
 * non-blocking, which on a shared pipe made Python's traceback writes fail half-way (a truncated message);
 * a leftover kernel holding a pipe would also keep the run from ending.
 */
function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, logFile: string): Promise<{ code: number | null; stderr: string; timedOut: boolean; leftovers: number }> {
  const mark = `${process.pid}-${++runCounter}-${Date.now()}`;
  return new Promise((resolvePromise) => {
    const fd = openSync(logFile, 'w');
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(cmd, args, { env: { ...env, [RUN_MARK]: mark }, stdio: ['ignore', 'ignore', fd] });
    } finally {
      closeSync(fd);
    }
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGINT');
      killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }, timeoutMs);
    let done = false;
    const finish = (code: number | null, extra = '') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      const leftovers = killMarked(mark);
      const stderr = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-20_000) : '';
      resolvePromise({ code, stderr: stderr + extra, timedOut, leftovers });
    };
    child.on('exit', (code) => finish(code));
    child.on('error', (e) => finish(-1, String(e)));
  });
}

/** The part of nbconvert's stderr worth showing: from the exception line on, else the tail. */
function nbconvertMessage(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !/MissingIDFieldWarning|validate\(nb\)|^\[NbConvertApp\] (Converting|Writing)/.test(l));
  const i = lines.findIndex((l) => /^\w+(\.\w+)*(Error|Exception|Timeout\w*):/.test(l.trim()));
  return (i >= 0 ? lines.slice(i, i + 12) : lines.slice(-12)).join('\n');
}

/** Executes one notebook; never throws for notebook failures (they are in the result). */
export async function runNotebook(notebook: string, options: RunNotebooksOptions = {}): Promise<NotebookResult> {
  checkOptions({ ...options, notebooks: [notebook] });
  const root = options.root ?? projectPaths().root;
  const python = options.python ?? DEBIAN_PYTHON;
  const timeoutSec = options.timeoutSec ?? 600;
  const outDir = resolve(options.outDir ?? projectPaths(root).notebookOutputs);
  mkdirSync(outDir, { recursive: true });
  const name = basename(notebook);
  const executed = join(outDir, name);
  rmSync(executed, { force: true }); // never report a stale copy
  const work = mkdtempSync(join(tmpdir(), 'opdlab-nb-'));
  const hook = join(work, 'opdlab_hook.py');
  writeFileSync(hook, HOOK);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: [join(root, 'node_modules', '.bin'), process.env.PATH ?? ''].join(delimiter),
    [QUICK_ENV]: options.quick === false ? '0' : '1',
    ...(options.env ?? {}),
  };
  const args = [
    '-m', 'nbconvert', '--to', 'notebook', '--execute', '--allow-errors',
    '--ExecutePreprocessor.kernel_name=tslab',
    `--ExecutePreprocessor.timeout=${Math.ceil(timeoutSec)}`,
    '--ExecutePreprocessor.startup_timeout=120',
    // the kernel holds no state worth a graceful shutdown; 'graceful' waits seconds for tslab to exit
    '--ExecutePreprocessor.shutdown_kernel=immediate',
    `--config=${hook}`,
    `--output-dir=${outDir}`,
    `--output=${name}`,
    resolve(notebook),
  ];
  const t0 = Date.now();
  const proc = await runProcess(python, args, env, timeoutSec * 1000 + 30_000, join(work, 'nbconvert.log'));
  const seconds = (Date.now() - t0) / 1000;
  rmSync(work, { recursive: true, force: true });
  const result: NotebookResult = { notebook, executed: existsSync(executed) ? executed : null, ok: false, seconds, cells: [], errors: [], warnings: [] };
  if (result.executed) {
    const nb = JSON.parse(readFileSync(executed, 'utf8'));
    const inspected = inspectExecutedNotebook(nb);
    result.cells = inspected.cells;
    result.errors.push(...inspected.errors);
    if (options.inplace && proc.code === 0 && inspected.errors.length === 0) writeFileSync(notebook, `${JSON.stringify(withoutRunnerMetadata(nb), null, 1)}\n`);
  }
  if (proc.leftovers > 0) result.warnings.push(`killed ${proc.leftovers} process(es) of the run still alive after nbconvert exited (the kernel, or something a cell started)`);
  if (proc.timedOut) result.errors.push(`timed out after ${timeoutSec} s (the whole notebook's budget)`);
  if (proc.code !== 0 && !proc.timedOut) result.errors.push(`nbconvert exited with ${proc.code}: ${nbconvertMessage(proc.stderr)}`);
  result.ok = proc.code === 0 && result.executed !== null && result.errors.length === 0;
  return result;
}

/**
 * Executes the notebooks one after another (each in its own kernel). Throws before running anything when
 * Jupyter, tslab or its kernelspec is missing (the message has the fix); notebook failures are in the results.
 */
export async function runNotebooks(options: RunNotebooksOptions = {}): Promise<NotebookResult[]> {
  checkOptions(options);
  const root = options.root ?? projectPaths().root;
  const problems = notebookToolProblems(root, options.python);
  if (problems.length > 0) throw new Error(`cannot run notebooks:\n  ${problems.join('\n  ')}`);
  const notebooks = options.notebooks ?? listNotebooks(projectPaths(root).notebooks);
  if (notebooks.length === 0) throw new Error(`no notebooks to run (looked in ${projectPaths(root).notebooks})`);
  const results: NotebookResult[] = [];
  for (const nb of notebooks) {
    const r = await runNotebook(nb, { ...options, root });
    options.onResult?.(r);
    results.push(r);
  }
  return results;
}

/** A terminal table: notebook, ok/FAIL, seconds, cells run; then each error. */
export function formatNotebookResults(results: readonly NotebookResult[]): string {
  const table = formatTable(
    ['notebook', 'result', 'seconds', 'cells ok', 'slowest cell (s)'],
    results.map((r) => [
      basename(r.notebook),
      r.ok ? 'ok' : 'FAIL',
      Number(r.seconds.toFixed(1)),
      `${r.cells.filter((c) => c.status === 'ok').length}/${r.cells.length}`,
      r.cells.length ? Math.max(...r.cells.map((c) => c.seconds ?? 0)) : 0,
    ]),
  );
  const errors = results.flatMap((r) => [...r.errors, ...r.warnings.map((w) => `warning: ${w}`)].map((e) => `${basename(r.notebook)}: ${e}`));
  return errors.length ? `${table}\n\n${errors.join('\n')}` : table;
}
