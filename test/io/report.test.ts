/**
 * The report: `analyze` end to end on the sample dumps (exact and streaming), the files it writes, figure specs
 * that are plain plotly JSON, an HTML page that works offline, and the CLI entry points' exit codes.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { analyzeCommand, doctorCommand } from '../../lib/io/cli';
import { analyzeDumpToDir } from '../../lib/report/analyze';
import { dumpFigures } from '../../lib/report/analyzeFigures';
import { analyseDump } from '../../lib/io/analyse';
import { loadDump } from '../../lib/io/reader';

const DUMPS = join(__dirname, '..', '..', 'data', 'dumps');
const tmp = () => mkdtempSync(join(tmpdir(), 'opdlab-rep-'));

describe('analyze: load -> doctor -> diagnostics -> report', () => {
  it('writes report.html (plotly inlined, no network), summary.json and one JSON spec per figure', async () => {
    const out = join(tmp(), 'rep');
    const r = await analyzeDumpToDir(join(DUMPS, 'sample.jsonl'), out);
    const files = readdirSync(out).sort();
    expect(files).toEqual(['figures', 'report.html', 'summary.json']);
    const figs = readdirSync(join(out, 'figures')).sort();
    expect(figs).toEqual(['advantage_histogram.json', 'advantage_position_heatmap.json', 'black_hole.json', 'entropy.json', 'gap_by_group.json', 'gap_by_position.json', 'intervention_curve.json', 'sampler_gap.json', 'topk_mass.json', 'topk_sweep.json']);
    for (const f of figs) {
      const spec = JSON.parse(readFileSync(join(out, 'figures', f), 'utf8'));
      expect(Array.isArray(spec.data) && spec.data.length > 0, f).toBe(true);
      expect(typeof spec.layout.title.text, f).toBe('string');
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.mode).toBe('exact');
    expect(summary.forced).toBe(false);
    expect(summary.doctor.ok).toBe(true);
    expect(summary.dump.sequences).toBe(48);
    expect(summary.student_lp_source).toBe('train');
    expect(summary.metrics['adv/mean']).toBeCloseTo(r.analysis.metrics['adv/mean'], 12);
    expect(summary.dump.meta.vocab_size_s).toBe(256);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    // (boolean assertions: a failing matcher would print the 4.8 MB page)
    expect(/Plotly\.newPlot\("fig-advantage_histogram"/.test(html)).toBe(true);
    expect(html.length).toBeGreaterThan(3_000_000); // the plotly bundle itself is inlined
    expect(/<script[^>]+src=/i.test(html), 'no external script').toBe(false);
    expect(/<link[^>]+href=/i.test(html), 'no external stylesheet').toBe(false);
    expect(html.includes('The dump doctor found no problem')).toBe(true);
    for (const c of r.doctor.checks) expect(html.includes(`<code>${c.id}</code>`), c.id).toBe(true);
  });

  it('streaming mode: same figures, approximate keys marked in the summary and the page', async () => {
    const out = join(tmp(), 'rep');
    const r = await analyzeDumpToDir(join(DUMPS, 'sample.safetensors'), out, { streaming: 'on' });
    expect(r.analysis.mode).toBe('streaming');
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.mode).toBe('streaming');
    expect(summary.approximate['adv/q50']).toMatch(/sketch quantile/);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html.includes('approximate: sketch quantile')).toBe(true);
  });

  it('dumps without top-K or entropies draw the figures they support and say what is missing', async () => {
    const d = await loadDump(join(DUMPS, 'tinker.jsonl'));
    const a = analyseDump(d);
    const names = Object.keys(dumpFigures(a));
    expect(names).toContain('black_hole'); // teacher top-K only: pT(v*) histogram
    expect(names).not.toContain('entropy');
    expect(names).not.toContain('sampler_gap');
    expect(a.notes.join('\n')).toMatch(/no per-token entropies/);
    expect(a.notes.join('\n')).toMatch(/no student top-K/);
  });
});

describe('CLI entry points (lib/io/cli.ts)', () => {
  it('doctor: exit 0 on a clean dump, 1 on a critical failure; --meta overrides the run metadata', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await doctorCommand(join(DUMPS, 'vllm.jsonl'), {})).toBe(0);
      const meta = join(tmp(), 'meta.json');
      writeFileSync(meta, JSON.stringify({ vocab_size_t: 32000 }));
      expect(await doctorCommand(join(DUMPS, 'vllm.jsonl'), { meta })).toBe(1);
      expect(log.mock.calls.flat().join('\n')).toMatch(/FAIL {2}vocab .*student vocab_size 256 != teacher vocab_size 32000/);
      await expect(doctorCommand(join(DUMPS, 'vllm.jsonl'), { format: 'csv' })).rejects.toThrow(/--format must be one of/);
    } finally {
      log.mockRestore();
    }
  });

  it('analyze: writes the report and returns 0; a critical failure returns 1 and writes nothing', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const parent = tmp();
      expect(await analyzeCommand(join(DUMPS, 'sglang.jsonl'), { out: join(parent, 'ok') })).toBe(0);
      const meta = join(parent, 'bad.json');
      writeFileSync(meta, JSON.stringify({ vocab_size_t: 32000 }));
      expect(await analyzeCommand(join(DUMPS, 'sglang.jsonl'), { out: join(parent, 'bad'), meta })).toBe(1);
      expect(readdirSync(parent).sort()).toEqual(['bad.json', 'ok']);
      expect(err.mock.calls.flat().join('\n')).toMatch(/no report written/);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});
