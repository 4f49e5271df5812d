/**
 * The `doctor`, `analyze` and `sample-dumps` commands (bin/opdlab.ts parses; this runs and prints).
 * Each returns the process exit code: 0 = done, 1 = a critical doctor failure or an error.
 */
import { readFileSync } from 'node:fs';
import { formatTable } from '../util/table';
import { doctorSource } from './analyse';
import { formatDoctorReport } from './doctor';
import { openDump } from './reader';
import { parseMeta, type DumpMeta } from './schema';
import { DUMP_FORMATS, type DumpFormat } from './source';

export interface DumpCliOptions {
  format?: string;
  /** Path of a JSON file with run metadata (file names, e.g. {"vocab_size_s": 151936, ...}). */
  meta?: string;
}

function openOptions(o: DumpCliOptions): { format?: DumpFormat; meta?: Partial<DumpMeta> } {
  if (o.format !== undefined && !DUMP_FORMATS.includes(o.format as DumpFormat)) throw new Error(`--format must be one of ${DUMP_FORMATS.join(', ')}, got '${o.format}'`);
  let meta: Partial<DumpMeta> | undefined;
  if (o.meta) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(o.meta, 'utf8'));
    } catch (e) {
      throw new Error(`--meta ${o.meta}: ${(e as Error).message}`);
    }
    const parsed = parseMeta(raw, o.meta);
    meta = Object.fromEntries(Object.entries(parsed).filter(([k, v]) => v !== undefined && !(k === 'extra' && Object.keys(v as object).length === 0)));
  }
  return { format: o.format as DumpFormat | undefined, meta };
}

/** `opdlab doctor DUMP`: prints the checks; exit 1 on a critical failure. */
export async function doctorCommand(path: string, o: DumpCliOptions & { json?: boolean }): Promise<number> {
  const source = await openDump(path, openOptions(o));
  const report = await doctorSource(source);
  if (o.json) console.log(JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 1));
  else console.log(formatDoctorReport(report));
  return report.ok ? 0 : 1;
}

/** `opdlab analyze DUMP --out DIR`. */
export async function analyzeCommand(path: string, o: DumpCliOptions & { out: string; force?: boolean; overwrite?: boolean; streaming?: string; studentLp?: string }): Promise<number> {
  const { analyzeDumpToDir, DoctorFailure } = await import('../report/analyze');
  if (o.streaming !== undefined && !['auto', 'on', 'off'].includes(o.streaming)) throw new Error(`--streaming must be auto, on or off, got '${o.streaming}'`);
  if (o.studentLp !== undefined && !['auto', 'sampler', 'train'].includes(o.studentLp)) throw new Error(`--student-lp must be auto, sampler or train, got '${o.studentLp}'`);
  try {
    const r = await analyzeDumpToDir(path, o.out, {
      ...openOptions(o),
      force: Boolean(o.force),
      overwrite: Boolean(o.overwrite),
      streaming: (o.streaming ?? 'auto') as 'auto' | 'on' | 'off',
      stats: o.studentLp ? { studentLp: o.studentLp as 'auto' | 'sampler' | 'train' } : {},
    });
    console.log(formatDoctorReport(r.doctor));
    const m = r.analysis.metrics;
    const keys = ['adv/mean', 'adv/q50', 'adv/frac_neg', 'adv/frac_abs_lt_0.01', 'adv/hill_neg', 'intervention/ratio', 'topk/teacher_mass', 'topk/overlap_ratio', 'blackhole/frac_vstar_outside_student_topk', 'entropy/student_mean', 'sampler/gap_mean'];
    console.log(formatTable(['metric', 'value'], keys.filter((k) => m[k] !== undefined).map((k) => [k, m[k]])));
    console.log(`${r.analysis.mode} analysis (${r.analysis.studentLpSource} student log-probs)${r.doctor.ok ? '' : ' FORCED despite critical doctor failures'}: wrote ${o.out}/{${r.files.slice(0, 2).join(', ')}, figures/*.json}`);
    return 0;
  } catch (e) {
    if (e instanceof DoctorFailure) {
      console.error(e.message);
      console.error('no report written (critical doctor failure); fix the dump or pass --force');
      return 1;
    }
    throw e;
  }
}

/** `opdlab sample-dumps`: regenerates data/dumps from the simulation. */
export async function sampleDumpsCommand(o: { out: string; warmupSteps?: string; sequences?: string; seed?: string }): Promise<number> {
  const { writeSampleDumps } = await import('./sampleDumps');
  const int = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${v}'`);
    return n;
  };
  const r = await writeSampleDumps(o.out, { warmupSteps: int('warmup-steps', o.warmupSteps), sequences: int('sequences', o.sequences), seed: int('seed', o.seed) });
  console.log(`wrote ${r.files.length} sample dumps into ${r.dir}: ${r.files.join(', ')}`);
  return 0;
}
