/**
 * Throughput of the streamed dump statistics (lib/io): a synthetic multi-million-token dump is written to a temp
 * folder as JSONL and as a packed safetensors file, then read back in one streamed pass, printing tokens/second
 * and peak memory for:
 *   read         reading and parsing only (sequences counted)
 *   stats        read + DumpStats: the sampled-token statistics (advantage moments, sketch quantiles, zero bands,
 *                position / class groups, intervention curve, sampler gap)
 *   doctor+stats read + the dump doctor + DumpStats (what `opdlab analyze --streaming on` runs)
 *   in-memory    DumpStats alone over chunks already in memory (no I/O, no parsing)
 * Target from the issue: at least 1e6 tokens/s for the sampled-token statistics.
 *
 *   node dist/bench/dumpStats.js                       4M tokens, both formats
 *   node dist/bench/dumpStats.js --tokens 2000000 --format safetensors --seq-len 256 --topk 0
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyseSource } from '../lib/io/analyse';
import { chunks, packChunk, type TokenChunk } from '../lib/io/chunk';
import { encode } from '../lib/io/dtype';
import { writeJsonl } from '../lib/io/jsonl';
import { openDump } from '../lib/io/reader';
import { emptyMeta, metaToJson, type DumpMeta, type DumpSequence } from '../lib/io/schema';
import { DumpStats } from '../lib/io/stats';
import { formatTable } from '../lib/util/table';
import { mulberry32 as prng } from '../lib/util/prng';

interface Args {
  tokens: number;
  seqLen: number;
  format: 'jsonl' | 'safetensors' | 'both';
  topk: number;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { tokens: 4_000_000, seqLen: 512, format: 'both', topk: 0, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (k === '--tokens') { a.tokens = Number(v); i++; }
    else if (k === '--seq-len') { a.seqLen = Number(v); i++; }
    else if (k === '--format') { a.format = v as Args['format']; i++; }
    else if (k === '--topk') { a.topk = Number(v); i++; }
    else if (k === '--keep') a.keep = true;
    else throw new Error(`dumpStats: unknown argument ${k} (--tokens N --seq-len L --format jsonl|safetensors|both --topk K --keep)`);
  }
  return a;
}

const V = 151936;

/** Synthetic rollouts: heavy-tailed negative advantages, a spike at 0, float32 values. */
function* synthetic(a: Args): Generator<DumpSequence> {
  const r = prng(1);
  const S = Math.ceil(a.tokens / a.seqLen);
  for (let s = 0; s < S; s++) {
    const T = Math.min(a.seqLen, a.tokens - s * a.seqLen);
    const ids = new Int32Array(T);
    const sLp = new Float64Array(T);
    const tLp = new Float64Array(T);
    const train = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      ids[t] = Math.floor(r() * V);
      const ls = Math.fround(Math.log(Math.max(1e-8, r() ** 3)));
      const u = r();
      const adv = u < 0.3 ? 0 : u < 0.8 ? -Math.exp(4 * r() - 2) : r() * 0.5;
      sLp[t] = ls;
      tLp[t] = Math.fround(Math.min(0, ls + adv));
      train[t] = Math.fround(ls + (r() - 0.5) * 1e-4);
    }
    let topk: DumpSequence['teacherTopk'] = null;
    if (a.topk > 0) {
      const K = a.topk;
      const tids = new Int32Array(T * K);
      const tlp = new Float64Array(T * K);
      for (let t = 0; t < T; t++) {
        let lp = Math.log(0.5 + 0.4 * r());
        for (let j = 0; j < K; j++) {
          tids[t * K + j] = j === 0 ? ids[t] : Math.floor(r() * V);
          tlp[t * K + j] = Math.fround(lp);
          lp -= 1 + r();
        }
      }
      topk = { k: K, ids: tids, lp: tlp };
    }
    yield {
      sampleId: String(s), step: s % 4, promptLen: 64, responseIds: ids, mask: new Uint8Array(T).fill(1), studentLp: sLp, studentLpTrain: train, teacherLp: tLp,
      studentTopk: topk, teacherTopk: topk, studentEntropy: null, teacherEntropy: null, tokenKl: null, teacherResponseIds: null, reward: s % 3 === 0 ? 1 : 0, teacherId: null, origin: `synthetic ${s}`,
    };
  }
}

/** A packed safetensors file written tensor by tensor (never the whole dump in memory). */
function writeSafetensorsStreamed(path: string, meta: DumpMeta, a: Args): void {
  const S = Math.ceil(a.tokens / a.seqLen);
  const N = a.tokens;
  const K = a.topk;
  const fields: { name: string; dtype: 'i32' | 'u8' | 'f32' | 'i64'; shape: number[]; per: number; get: (s: DumpSequence) => ArrayLike<number> }[] = [
    { name: 'response_ids', dtype: 'i32', shape: [N], per: 1, get: (s) => s.responseIds },
    { name: 'mask', dtype: 'u8', shape: [N], per: 1, get: (s) => s.mask },
    { name: 'student_lp', dtype: 'f32', shape: [N], per: 1, get: (s) => s.studentLp },
    { name: 'student_lp_train', dtype: 'f32', shape: [N], per: 1, get: (s) => s.studentLpTrain! },
    { name: 'teacher_lp', dtype: 'f32', shape: [N], per: 1, get: (s) => s.teacherLp },
  ];
  if (K > 0) {
    fields.push({ name: 'teacher_topk_ids', dtype: 'i32', shape: [N, K], per: K, get: (s) => s.teacherTopk!.ids });
    fields.push({ name: 'teacher_topk_lp', dtype: 'f32', shape: [N, K], per: K, get: (s) => s.teacherTopk!.lp });
    fields.push({ name: 'student_topk_ids', dtype: 'i32', shape: [N, K], per: K, get: (s) => s.studentTopk!.ids });
    fields.push({ name: 'student_topk_lp', dtype: 'f32', shape: [N, K], per: K, get: (s) => s.studentTopk!.lp });
  }
  const offsets = Float64Array.from({ length: S + 1 }, (_, s) => Math.min(N, s * a.seqLen));
  const bytesOf = { i32: 4, u8: 1, f32: 4, i64: 8 };
  const header: Record<string, unknown> = { __metadata__: { opdlab_meta: JSON.stringify(metaToJson(meta)) } };
  let off = 0;
  header.offsets = { dtype: 'I64', shape: [S + 1], data_offsets: [off, (off += (S + 1) * 8)] };
  for (const f of fields) header[f.name] = { dtype: { i32: 'I32', u8: 'U8', f32: 'F32', i64: 'I64' }[f.dtype], shape: f.shape, data_offsets: [off, (off += N * f.per * bytesOf[f.dtype])] };
  const raw = Buffer.from(JSON.stringify(header));
  const hb = Buffer.alloc(raw.length + ((8 - (raw.length % 8)) % 8), 0x20);
  raw.copy(hb);
  const fd = openSync(path, 'w');
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(hb.length));
  writeSync(fd, lenBuf);
  writeSync(fd, hb);
  writeSync(fd, encode(offsets, 'i64'));
  for (const f of fields) for (const s of synthetic(a)) writeSync(fd, encode(f.get(s), f.dtype));
  closeSync(fd);
}

function peakMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Wall seconds, tokens per wall second, tokens per CPU second of this process (robust on a shared machine), peak RSS. */
async function timed(label: string, tokens: number, fn: () => Promise<void>): Promise<[string, number, number, number, number]> {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  await fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  return [label, Number(s.toFixed(2)), Math.round(tokens / s), Math.round(tokens / cpu), Math.round(peakMb())];
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'opdlab-bench-dump-'));
  const meta = emptyMeta({ vocabSizeStudent: V, vocabSizeTeacher: V, sampler: { temperature: 1, topP: 1, topK: 0, logprobsMode: 'raw' }, teacher: { temperature: 1, logprobsMode: 'raw' }, eosId: 151645, padId: 151643, specialIds: [151643, 151644, 151645] });
  const rows: [string, number, number, number, number][] = [];
  try {
    console.log(`synthetic dump: ${a.tokens.toLocaleString()} tokens, sequences of ${a.seqLen}, top-K ${a.topk || 'none'}, in ${dir}`);
    const formats = a.format === 'both' ? ['safetensors', 'jsonl'] : [a.format];
    for (const f of formats) {
      const path = join(dir, f === 'jsonl' ? 'dump.jsonl' : 'dump.safetensors');
      const t0 = Date.now();
      if (f === 'jsonl') await writeJsonl(path, meta, synthetic(a));
      else writeSafetensorsStreamed(path, meta, a);
      console.log(`  wrote ${path} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      rows.push(await timed(`${f}: read`, a.tokens, async () => {
        let n = 0;
        for await (const s of (await openDump(path)).sequences()) n += s.responseIds.length;
        if (n !== a.tokens) throw new Error(`read ${n} tokens, expected ${a.tokens}`);
      }));
      rows.push(await timed(`${f}: read + stats`, a.tokens, async () => {
        const src = await openDump(path);
        const st = new DumpStats(src.meta);
        for await (const c of chunks(src)) st.add(c);
        const m = st.finish().metrics;
        if (m['dump/tokens'] !== a.tokens) throw new Error('token count mismatch');
      }));
      rows.push(await timed(`${f}: read + doctor + stats`, a.tokens, async () => {
        const r = await analyseSource(await openDump(path));
        if (!r.analysis) throw new Error(r.analysisError ?? 'no analysis');
      }));
    }
    // statistics alone, on chunks in memory (at most ~1M tokens held)
    const held = Math.min(a.tokens, 1 << 20);
    const mem: TokenChunk[] = [];
    let buf: DumpSequence[] = [];
    let n = 0;
    for (const s of synthetic({ ...a, tokens: held })) {
      buf.push(s);
      n += s.responseIds.length;
      if (n >= 1 << 16) { mem.push(packChunk(buf)); buf = []; n = 0; }
    }
    if (buf.length) mem.push(packChunk(buf));
    const reps = Math.max(1, Math.round(a.tokens / held));
    rows.push(await timed('in-memory chunks: stats only', held * reps, async () => {
      const st = new DumpStats(meta);
      for (let r = 0; r < reps; r++) for (const c of mem) st.add(c);
      st.finish();
    }));
    console.log(formatTable(['pass', 'wall s', 'tokens/s', 'tokens/CPU-s', 'peak RSS MB'], rows));
    console.log('target: >= 1,000,000 tokens/s for the sampled-token statistics');
  } finally {
    if (!a.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`dumpStats: ${(e as Error).message}`);
  process.exit(1);
});
