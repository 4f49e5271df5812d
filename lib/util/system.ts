/**
 * Debian system packages that some project commands need (Chromium and fonts for figure images, Jupyter for
 * notebooks): find what is missing, and either install it (as root) or stop with the exact command to run.
 *
 * Library code only *checks* (and throws `MissingSystemPackagesError` with the apt-get line); installing is left
 * to the CLI and CI (`ensureSystemPackages(..., { install: true })`), never done as a side effect of an import
 * or of a library call (architecture.md: "installs what is missing when it runs as root, and otherwise stops
 * with the exact apt-get install line").
 */
import { spawnSync } from 'node:child_process';

/** One Debian package and how to tell that it is present. */
export interface SystemNeed {
  /** Debian package name, e.g. `chromium`. */
  package: string;
  /** Why the project needs it (shown in the error). */
  why: string;
  /** True when what the package provides is present (a file, an importable module). */
  present: () => boolean;
}

/** Whether this process runs as root (apt-get works without sudo). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The exact install line for `packages` (with `sudo` unless root). */
export function aptInstallLine(packages: readonly string[]): string {
  return `${isRoot() ? '' : 'sudo '}apt-get install -y --no-install-recommends ${packages.join(' ')}`;
}

export class MissingSystemPackagesError extends Error {
  constructor(
    readonly missing: readonly SystemNeed[],
    what: string,
  ) {
    super(
      `${what} needs Debian packages that are not installed: ` +
        missing.map((n) => `${n.package} (${n.why})`).join(', ') +
        `. Install them with:\n  ${aptInstallLine(missing.map((n) => n.package))}`,
    );
    this.name = 'MissingSystemPackagesError';
  }
}

/** The needs whose `present()` is false, in order, each package once. */
export function missingSystemPackages(needs: readonly SystemNeed[]): SystemNeed[] {
  const seen = new Set<string>();
  return needs.filter((n) => !seen.has(n.package) && (seen.add(n.package), !n.present()));
}

/** Throws `MissingSystemPackagesError` naming `what` when any need is missing. */
export function checkSystemPackages(needs: readonly SystemNeed[], what: string): void {
  const missing = missingSystemPackages(needs);
  if (missing.length > 0) throw new MissingSystemPackagesError(missing, what);
}

export interface EnsureOptions {
  /** Install what is missing with apt-get. Default: true when running as root. Without root it throws instead. */
  install?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/**
 * Installs the missing packages (quietly; apt-get update once if the first attempt fails, e.g. on a fresh
 * image without package lists), or throws `MissingSystemPackagesError` when not allowed or not root.
 * Returns the packages it installed.
 */
export function ensureSystemPackages(needs: readonly SystemNeed[], what: string, options: EnsureOptions = {}): string[] {
  const missing = missingSystemPackages(needs);
  if (missing.length === 0) return [];
  const install = options.install ?? isRoot();
  if (!install || !isRoot()) throw new MissingSystemPackagesError(missing, what);
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const packages = missing.map((n) => n.package);
  log(`opdlab: installing ${packages.join(' ')} for ${what}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for a concurrent apt/dpkg (another install on the same machine) instead of failing at once.
  const installArgs = ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-qq', '--no-install-recommends', ...packages];
  let r = spawnSync('apt-get', installArgs, { env, encoding: 'utf8' });
  if (r.status !== 0) {
    const update = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=300', 'update', '-qq'], { env, encoding: 'utf8' });
    if (update.status !== 0) throw new Error(`apt-get update failed (${update.status}):\n${update.stderr || update.error}`);
    r = spawnSync('apt-get', installArgs, { env, encoding: 'utf8' });
  }
  if (r.status !== 0) throw new Error(`apt-get ${installArgs.join(' ')} failed (${r.status}):\n${r.stderr || r.error}`);
  const still = missingSystemPackages(missing);
  if (still.length > 0) throw new MissingSystemPackagesError(still, `${what} (after apt-get install)`);
  return packages;
}

const importable = new Set<string>();

/**
 * True when `/usr/bin/python3 -c "import <modules>"` succeeds (Debian's Python, never a pyenv one). Successes
 * are remembered for the life of the process (a module does not disappear), failures are checked again.
 */
export function pythonImports(modules: readonly string[], python = '/usr/bin/python3'): boolean {
  const key = `${python}:${modules.join(',')}`;
  if (importable.has(key)) return true;
  const r = spawnSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
  if (r.status === 0) importable.add(key);
  return r.status === 0;
}
