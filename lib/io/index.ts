/**
 * lib/io: rollout dumps from real training runs -> the per-token arrays lib/analysis reads, checked first.
 * Step by step (what `opdlab analyze` and notebook 08 do):
 *
 *   const dump = await loadDump('data/dumps/sample.jsonl');     // reader.ts: JSONL / Parquet / safetensors / .npy dir,
 *                                                                 //   vLLM / SGLang / tinker styles (engines/)
 *   const report = doctorDump(dump);                            // doctor.ts: the checks of ecosystem.md 2.4
 *   const analysis = analyseDump(dump);                         // analyse.ts: exact diagnostics (lib/analysis)
 *   // larger than memory: analyseSource(await openDump(path)) streams chunks (stats.ts: bounded memory)
 *   await writeAnalysisReport(outDir, { dump: ..., doctor: report, analysis });   // lib/report/analyze.ts
 *
 * Schema and formats: schema.ts and docs/dumps.md.
 */
export * from './schema';
export * from './source';
export * from './dtype';
export * from './npy';
export * from './safetensors';
export * from './packed';
export * from './json';
export * from './lines';
export * from './jsonl';
export * from './parquet';
export * from './chunk';
export * from './reader';
export * from './sketch';
export * from './doctor';
export * from './stats';
export * from './analyse';
export { vllmAdapter } from './engines/vllm';
export { sglangAdapter } from './engines/sglang';
export { tinkerAdapter, TINKER_SENTINEL_ID, TINKER_SENTINEL_LP } from './engines/tinker';
