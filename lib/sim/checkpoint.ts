/**
 * Save and load a student's weights and its Adam state to a folder.
 *
 *   <dir>/student.json    { format, version, config, parameters: [{name, shape, offset, length}], extra }
 *   <dir>/student.bin     float32 little-endian, parameters concatenated in canonical order (student.ts)
 *   <dir>/optimizer.json  { kind: 'adam', learningRate, beta1, beta2, epsilon, iterations, slots: [...] }
 *   <dir>/optimizer.bin   Adam's first moments m then second moments v, one per parameter, canonical order
 *
 * Names are canonical (no per-instance prefix), so a checkpoint loads into a fresh process. Adam keeps its slots
 * by position (tfjs AdamOptimizer.applyGradients indexes them by the order of the gradient map), so a student
 * must always be optimised with exactly `student.variables` in that order; saving checks this. Each file is
 * written to a temporary name and renamed (atomic on one filesystem); saving into an existing checkpoint folder
 * replaces its files (periodic checkpoints), it never touches other files there.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { parameterSpecs, Student, type StudentConfig } from './student';

const FORMAT = 'opdlab-student';
const VERSION = 1;

interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset in float32 elements. */
  offset: number;
  length: number;
}

interface StudentFile {
  format: string;
  version: number;
  config: StudentConfig;
  parameters: TensorEntry[];
  extra: Record<string, unknown>;
}

interface OptimizerFile {
  kind: 'adam';
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  iterations: number;
  slots: TensorEntry[];
}

function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function floatsToBytes(chunks: Float32Array[]): Uint8Array {
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const all = new Float32Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  return new Uint8Array(all.buffer);
}

function bytesToFloats(file: string, expected: number): Float32Array {
  const buf = fs.readFileSync(file);
  if (buf.byteLength !== expected * 4) throw new Error(`loadCheckpoint: ${file} must hold ${expected} float32 values (${expected * 4} bytes), has ${buf.byteLength} bytes`);
  const out = new Float32Array(expected);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

function assertLittleEndian(op: string): void {
  if (os.endianness() !== 'LE') throw new Error(`${op}: checkpoints are little-endian float32; this machine is big-endian`);
}

/**
 * Write the student (and optionally its Adam optimiser and a JSON `extra` payload, e.g. the step) to `dir`.
 * The optimiser must be a tf.train.adam used only on `student.variables`, in that order.
 */
export async function saveCheckpoint(dir: string, student: Student, optimizer: tf.AdamOptimizer | null = null, extra: Record<string, unknown> = {}): Promise<void> {
  assertLittleEndian('saveCheckpoint');
  fs.mkdirSync(dir, { recursive: true });
  const weights = student.getWeights();
  const parameters: TensorEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  student.variables.forEach((v, i) => {
    const w = weights.get(student.names[i])!;
    parameters.push({ name: student.names[i], shape: v.shape.slice(), offset, length: w.length });
    chunks.push(w);
    offset += w.length;
  });
  let optimizerFile: OptimizerFile | null = null;
  let optimizerBytes: Uint8Array | null = null;
  if (optimizer) {
    if (optimizer.getClassName() !== 'Adam') throw new Error(`saveCheckpoint: only tf.train.adam optimisers are supported, got ${optimizer.getClassName()}`);
    const named = await optimizer.getWeights(); // [iterations, m_0..m_n-1, v_0..v_n-1]
    const iterTensor = named[0].tensor;
    const iterations = (await iterTensor.data())[0];
    iterTensor.dispose(); // a fresh scalar made by getWeights; the slots below are the optimiser's own variables
    const slots = named.slice(1);
    const n = slots.length / 2;
    if (n !== 0 && n !== student.variables.length) throw new Error(`saveCheckpoint: the optimiser holds ${n} slot pairs but the student has ${student.variables.length} parameters; optimise exactly student.variables`);
    const slotEntries: TensorEntry[] = [];
    const slotChunks: Float32Array[] = [];
    let so = 0;
    slots.forEach((s, i) => {
      const p = i % Math.max(n, 1);
      const kind = i < n ? 'm' : 'v';
      const want = `${student.variables[p].name}/${kind}`;
      if (s.name !== want) throw new Error(`saveCheckpoint: optimiser slot ${i} is '${s.name}', expected '${want}'; optimise exactly student.variables, in order`);
      const data = (s.tensor.dataSync() as Float32Array).slice();
      slotEntries.push({ name: `${student.names[p]}/${kind}`, shape: s.tensor.shape.slice(), offset: so, length: data.length });
      slotChunks.push(data);
      so += data.length;
    });
    const cfg = optimizer.getConfig() as { learningRate: number; beta1: number; beta2: number; epsilon: number };
    optimizerFile = {
      kind: 'adam',
      learningRate: cfg.learningRate,
      beta1: cfg.beta1,
      beta2: cfg.beta2,
      epsilon: cfg.epsilon,
      iterations,
      slots: slotEntries,
    };
    optimizerBytes = floatsToBytes(slotChunks);
  }
  const studentFile: StudentFile = { format: FORMAT, version: VERSION, config: { ...student.config }, parameters, extra };
  writeAtomic(path.join(dir, 'student.bin'), floatsToBytes(chunks));
  writeAtomic(path.join(dir, 'student.json'), JSON.stringify(studentFile, null, 1));
  if (optimizerFile && optimizerBytes) {
    writeAtomic(path.join(dir, 'optimizer.bin'), optimizerBytes);
    writeAtomic(path.join(dir, 'optimizer.json'), JSON.stringify(optimizerFile, null, 1));
  } else {
    for (const f of ['optimizer.bin', 'optimizer.json']) fs.rmSync(path.join(dir, f), { force: true });
  }
}

export interface Checkpoint {
  student: Student;
  /** The restored Adam optimiser (same hyper-parameters, step count and moments), or null if none was saved. */
  optimizer: tf.AdamOptimizer | null;
  extra: Record<string, unknown>;
}

/** Read a folder written by saveCheckpoint. The caller owns (and disposes) the student and the optimiser. */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  assertLittleEndian('loadCheckpoint');
  const metaPath = path.join(dir, 'student.json');
  if (!fs.existsSync(metaPath)) throw new Error(`loadCheckpoint: ${metaPath} does not exist`);
  const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as StudentFile;
  if (meta.format !== FORMAT || meta.version !== VERSION) throw new Error(`loadCheckpoint: ${metaPath} is not an ${FORMAT} v${VERSION} checkpoint (format '${meta.format}', version ${meta.version})`);
  const specs = parameterSpecs(meta.config);
  const total = meta.parameters.reduce((a, p) => a + p.length, 0);
  const flat = bytesToFloats(path.join(dir, 'student.bin'), total);
  if (specs.length !== meta.parameters.length) throw new Error(`loadCheckpoint: ${metaPath} lists ${meta.parameters.length} parameters, the config implies ${specs.length}`);
  const weights = new Map<string, Float32Array>();
  meta.parameters.forEach((p, i) => {
    if (p.name !== specs[i].name) throw new Error(`loadCheckpoint: parameter ${i} is '${p.name}', expected '${specs[i].name}'`);
    weights.set(p.name, flat.slice(p.offset, p.offset + p.length));
  });
  const student = new Student(meta.config, weights);
  let optimizer: tf.AdamOptimizer | null = null;
  const optPath = path.join(dir, 'optimizer.json');
  if (fs.existsSync(optPath)) {
    const o = JSON.parse(fs.readFileSync(optPath, 'utf8')) as OptimizerFile;
    if (o.kind !== 'adam') throw new Error(`loadCheckpoint: ${optPath} has kind '${o.kind}', only 'adam' is supported`);
    const slotTotal = o.slots.reduce((a, s) => a + s.length, 0);
    const slotData = bytesToFloats(path.join(dir, 'optimizer.bin'), slotTotal);
    optimizer = tf.train.adam(o.learningRate, o.beta1, o.beta2, o.epsilon);
    const n = o.slots.length / 2;
    const named: { name: string; tensor: tf.Tensor }[] = [{ name: 'iter', tensor: tf.scalar(o.iterations, 'int32') }];
    o.slots.forEach((s, i) => {
      const p = i % Math.max(n, 1);
      const kind = i < n ? 'm' : 'v';
      if (s.name !== `${student.names[p]}/${kind}`) throw new Error(`loadCheckpoint: optimiser slot ${i} is '${s.name}', expected '${student.names[p]}/${kind}'`);
      named.push({ name: `${student.variables[p].name}/${kind}`, tensor: tf.tensor(slotData.subarray(s.offset, s.offset + s.length), s.shape, 'float32') });
    });
    await optimizer.setWeights(named); // copies every tensor into new optimiser variables
    tf.dispose(named.map((x) => x.tensor));
  }
  return { student, optimizer, extra: meta.extra ?? {} };
}
