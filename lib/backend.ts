/**
 * One place that picks and initialises the TensorFlow.js backend for everything in opdlab.
 *
 * Order (first that is available wins):
 *   1. `OPDLAB_BACKEND=tensorflow|wasm|cpu` in the environment: that backend or a clear error;
 *   2. `@tensorflow/tfjs-node-gpu`  (native TensorFlow with CUDA), if installed;
 *   3. `@tensorflow/tfjs-node`      (native TensorFlow on CPU), if installed;
 *   4. `@tensorflow/tfjs-backend-wasm` (the default on machines that reach only package registries);
 *   5. the pure-JS `cpu` backend.
 *
 * `npm install @tensorflow/tfjs-node` on a machine that can download libtensorflow is picked up with no code
 * change. TensorFlow.js's "install our node backend" banner and TensorFlow's C++ start-up logging are silenced.
 */
import * as tf from '@tensorflow/tfjs';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** What `selectBackend` decided, before anything is loaded. */
export interface BackendChoice {
  /** The TensorFlow.js backend name to activate. */
  name: BackendName;
  /** The npm module to require first (it registers the backend), or null for the built-in cpu backend. */
  module: string | null;
  /** Why this one: shown by `opdlab` and recorded in run metadata. */
  reason: string;
}

/** Module resolution, injectable so the selection logic can be tested with stubbed installs. */
export type ModuleProbe = (moduleName: string) => boolean;

const NATIVE_GPU = '@tensorflow/tfjs-node-gpu';
const NATIVE_CPU = '@tensorflow/tfjs-node';
const WASM = '@tensorflow/tfjs-backend-wasm';

export function defaultProbe(moduleName: string): boolean {
  try {
    require.resolve(moduleName);
  } catch {
    return false;
  }
  // danfojs-node installs only with the package.json override "@tensorflow/tfjs-node": "npm:@tensorflow/tfjs@4.22.0"
  // (architecture.md, Stack), which puts plain tfjs under the tfjs-node name: that alias is not the native backend.
  try {
    const pkg = require(`${moduleName}/package.json`) as { name?: string };
    return pkg.name === undefined || pkg.name === moduleName;
  } catch {
    return true; // package.json not exported: trust the resolution above
  }
}

/**
 * Decide the backend from the environment and what is installed. Pure: no module is loaded.
 * @param env     usually `process.env`; only `OPDLAB_BACKEND` is read.
 * @param isInstalled  module probe (default: `require.resolve`).
 */
export function selectBackend(
  env: Record<string, string | undefined> = process.env,
  isInstalled: ModuleProbe = defaultProbe,
): BackendChoice {
  const requested = env.OPDLAB_BACKEND?.trim();
  if (requested) {
    if (requested === 'tensorflow') {
      if (isInstalled(NATIVE_GPU)) return { name: 'tensorflow', module: NATIVE_GPU, reason: 'OPDLAB_BACKEND=tensorflow' };
      if (isInstalled(NATIVE_CPU)) return { name: 'tensorflow', module: NATIVE_CPU, reason: 'OPDLAB_BACKEND=tensorflow' };
      throw new Error(
        `OPDLAB_BACKEND=tensorflow, but neither ${NATIVE_GPU} nor ${NATIVE_CPU} is installed ` +
          `(run \`npm install ${NATIVE_CPU}\` on a machine that can download libtensorflow, or unset OPDLAB_BACKEND)`,
      );
    }
    if (requested === 'wasm') {
      if (!isInstalled(WASM)) throw new Error(`OPDLAB_BACKEND=wasm, but ${WASM} is not installed (run \`npm ci\`)`);
      return { name: 'wasm', module: WASM, reason: 'OPDLAB_BACKEND=wasm' };
    }
    if (requested === 'cpu') return { name: 'cpu', module: null, reason: 'OPDLAB_BACKEND=cpu' };
    throw new Error(`OPDLAB_BACKEND must be one of tensorflow, wasm, cpu; got '${requested}'`);
  }
  if (isInstalled(NATIVE_GPU)) return { name: 'tensorflow', module: NATIVE_GPU, reason: `${NATIVE_GPU} is installed` };
  if (isInstalled(NATIVE_CPU)) return { name: 'tensorflow', module: NATIVE_CPU, reason: `${NATIVE_CPU} is installed` };
  if (isInstalled(WASM)) return { name: 'wasm', module: WASM, reason: 'default (no native TensorFlow installed)' };
  return { name: 'cpu', module: null, reason: 'fallback: neither native TensorFlow nor wasm is installed' };
}

export interface BackendInfo extends BackendChoice {
  /** The backend TensorFlow.js reports as active after initialisation. */
  active: string;
}

let initialised: Promise<BackendInfo> | null = null;

/**
 * Select, load and activate the backend once per process; later calls return the same promise.
 * The choice is reported on stderr unless `quiet` (tests and notebooks pass `quiet: true` and read the result).
 */
export function initBackend(options: { quiet?: boolean } = {}): Promise<BackendInfo> {
  if (!initialised) initialised = activate(selectBackend(), options.quiet ?? false);
  return initialised;
}

async function activate(choice: BackendChoice, quiet: boolean): Promise<BackendInfo> {
  // TensorFlow's C++ logging (cpu_feature_guard and friends) when a native backend loads.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // PROD silences backend_util.warn, which prints the "install our node backend" banner on first use of the
  // cpu backend; it also turns off debug-mode checks that we never enable.
  tf.env().set('PROD', true);
  if (choice.module) require(choice.module);
  const ok = await tf.setBackend(choice.name);
  if (!ok) throw new Error(`TensorFlow.js could not initialise the '${choice.name}' backend (${choice.reason})`);
  await tf.ready();
  const info: BackendInfo = { ...choice, active: tf.getBackend() };
  if (!quiet) process.stderr.write(`opdlab: TensorFlow.js backend '${info.active}' (${info.reason})\n`);
  return info;
}
