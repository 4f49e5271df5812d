/**
 * FINDINGS P1 study: why forward-KL-style objectives trained on the student's own rollouts blow up the weak
 * student's entropy (findings and measured numbers: FINDINGS.md section P1). Three sub-commands; for check and train
 * every other argument is an `opdlab run` argument (lib/train/cli.ts parseRunArgs: --method, --lr, --seed, --steps,
 * --warmup-steps, --root, --set path=value, objective flags such as --beta 0).
 *
 *   node dist/bench/p1Study.js check [run args]              data-path checks on the warm-up student
 *   node dist/bench/p1Study.js train [run args] [--every k] [--out file.jsonl] [--show rows]
 *   node dist/bench/p1Study.js summary file.jsonl...            one line per run logged with --out
 *
 * `check` (suspect 1 of P1), on 4 batches of the run's own rollouts (prepareBatch, the trainer's code path):
 *   align      max |log pS(y_t) from the sampler (KV cache) - log pS(y_t) from Student.responseLogits| over
 *              masked positions: the logits rows the loss sees are the ones the tokens were sampled from
 *   teacher    max |row b R + t of scoreResponses - teacherLogprobs(prompt_b, y_b,<t)| over every masked
 *              position, and max |sum_v pT(v) - 1|: the teacher rows line up with the student rows
 *   mask       every row: mask 1 exactly on its first responseLength tokens, <eos> only as the last masked token
 *              of a finished row, nothing after it but <pad>; truncated rows (no <eos>) are counted
 *   off-path   the exact teacher at positions whose prefix already holds a deviation (cursor confusion > 0)
 *              versus on-path positions: its top-1 mass, its mass below 1e-2 per token, its entropy, and the
 *              share of positions whose teacher top-1 is a valid continuation (cursor.valid())
 *
 * `train` runs the same steps as `opdlab run` (prepareBatch + applyUpdate of lib/train/step.ts, same seeds, so the
 * same batches and updates) without the analysis metrics, and every `--every` steps (default 10) prints, on the
 * step's batch with the pre-update logits, the mean over masked positions of the student's mass split by the
 * exact teacher's classes (suspect 2):
 *   top1   pS(argmax pT)                  sec   pS(v != top1, pT(v) >= 1e-2)     bg   pS(v : pT(v) < 1e-2)
 *          bg = minor (the teacher's small active entries, 3e-4 <= pT < 1e-2) + junk (pT < 3e-4: tokens the
 *          teacher gives only its background mass); max = the largest single junk pS, #>1e-3 = junk tokens above 1e-3;
 *   distr  pS on vocab.groups.distractors (tokens no task ever needs: junk at every position), and how many > 1e-3
 * the teacher's own mass on those classes (T.top1, T.sec, T.bg), student and teacher entropy, KL(pT || pS) and its
 * part from the bg class, the same split restricted to off-path positions (confusion > 0), and the rollouts'
 * correct and finished shares. pass@1 (the run's eval settings) is measured at step 0 and after the last step.
 * A second line splits the positions by the kind of the teacher's top-1 token (a digit, <eos>, a marker) and gives
 * the student's mean entropy and mass on the ten digit tokens for each kind.
 * `--show n` prints the first n rollouts of each reported batch. `--out` appends one JSON object per report (and the
 * pass@1 lines) to a file; `summary` reads such files and prints one line per run (pass@1 before and after, first and
 * last student entropy, junk and distractor mass). Only the warm-up cache is written under --root. The warm-up cache
 * key hashes the sources under lib/, so while others edit lib/ set OPDLAB_CODE_VERSION='{"version":"x","source":"x"}'
 * (lib/train/runKey.ts) to reuse one warm-up across runs.
 *
 * Example (the P1 setting: sharp teacher, forward KL on the full vocabulary, 40 steps):
 *   npm run build && node dist/bench/p1Study.js train --method gkd --beta 0 --steps 40 --root /tmp/p1/runs \
 *     --set task.options.noise.degradeRate=0 --set task.options.noise.backgroundGrowth=0
 */
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { TeacherTopTracker } from '../lib/analysis/tracker';
import { initBackend } from '../lib/backend';
import { deriveSeed } from '../lib/sim/rng';
import type { Rollouts } from '../lib/sim/sampler';
import { createTask, type Prompt, type Task } from '../lib/sim/tasks';
import { teacherLogprobs } from '../lib/sim/teacher';
import { tok } from '../lib/sim/vocab';
import { parseRunArgs } from '../lib/train/cli';
import { deriveConfig, resolveConfig, type Config } from '../lib/train/config';
import { evaluate } from '../lib/train/evaluate';
import { createAdam } from '../lib/train/optimizer';
import { applyUpdate, buildProbeSet, prepareBatch, type StepContext } from '../lib/train/step';
import { warmupStudent } from '../lib/train/warmup';

/** Teacher classes: top-1; secondary pT >= SEC; minor active entries JUNK <= pT < SEC; junk pT < JUNK. */
const SEC = 1e-2;
/**
 * Below every active entry of the exact math teacher (its smallest, a copy digit's +-1 neighbour, is
 * (1 - beta) eps copyErrorFactor / 4 = 4.5e-4 at the defaults) and above its pure background (at most
 * beta 0.8 / H_200 = 1.4e-4 at backgroundMass 1e-3): junk = the tokens the teacher gives only background mass.
 */
const JUNK = 3e-4;

/** Pull our own flags out of the argument list; the rest are `opdlab run` arguments. */
function takeFlag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

/** Confusion of the teacher's cursor before each response position of row b ([R], -1 past the mask). */
function confusionRows(task: Task<Prompt>, prompts: readonly Prompt[], tokens_N: Int32Array, mask_N: ArrayLike<number>, R: number): Int32Array {
  const out = new Int32Array(tokens_N.length).fill(-1);
  prompts.forEach((p, b) => {
    const c = task.cursor(p);
    for (let t = 0; t < R && mask_N[b * R + t] > 0; t++) {
      out[b * R + t] = c.confusion;
      c.push(tokens_N[b * R + t]);
    }
  });
  return out;
}

interface Split {
  n: number;
  /** Student mass on the teacher's classes (bg = minor + junk). */
  top1: number; sec: number; bg: number; minor: number; junk: number;
  /** The student's largest single junk-token probability, and its count of junk tokens with pS > 1e-3. */
  junkMax: number; junkCount: number;
  /** Student mass on the vocabulary's distractors (tokens no task ever needs; always junk), and its count > 1e-3. */
  distractor: number; distractorCount: number;
  Ttop1: number; Tsec: number; Tbg: number;
  Hs: number; Ht: number; kl: number; klBg: number;
}

/** Mean over the selected rows of the class split (file header), in float64. */
function massSplit(logits_NV: Float32Array, teacher_NV: Float32Array, V: number, select: (n: number) => boolean, N: number, isDistractor: Uint8Array): Split {
  const s: Split = { n: 0, top1: 0, sec: 0, bg: 0, minor: 0, junk: 0, junkMax: 0, junkCount: 0, distractor: 0, distractorCount: 0, Ttop1: 0, Tsec: 0, Tbg: 0, Hs: 0, Ht: 0, kl: 0, klBg: 0 };
  const lp = new Float64Array(V);
  for (let n = 0; n < N; n++) {
    if (!select(n)) continue;
    const o = n * V;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits_NV[o + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits_NV[o + v] - max);
    const lse = max + Math.log(z);
    let top = 0;
    for (let v = 1; v < V; v++) if (teacher_NV[o + v] > teacher_NV[o + top]) top = v;
    s.n++;
    let junkMax = 0;
    for (let v = 0; v < V; v++) {
      lp[v] = logits_NV[o + v] - lse;
      const ps = Math.exp(lp[v]);
      const lt = teacher_NV[o + v];
      const pt = Math.exp(lt);
      s.Hs -= ps * lp[v];
      if (isDistractor[v]) {
        s.distractor += ps;
        if (ps > 1e-3) s.distractorCount++;
      }
      s.Ht -= pt * lt;
      const k = pt * (lt - lp[v]);
      s.kl += k;
      if (v === top) {
        s.top1 += ps;
        s.Ttop1 += pt;
      } else if (pt >= SEC) {
        s.sec += ps;
        s.Tsec += pt;
      } else {
        s.bg += ps;
        s.Tbg += pt;
        s.klBg += k;
        if (pt >= JUNK) s.minor += ps;
        else {
          s.junk += ps;
          junkMax = Math.max(junkMax, ps);
          if (ps > 1e-3) s.junkCount++;
        }
      }
    }
    s.junkMax += junkMax;
  }
  for (const k of Object.keys(s) as (keyof Split)[]) if (k !== 'n') s[k] /= Math.max(1, s.n);
  return s;
}

/**
 * Student entropy and the student's mass on the digit tokens, by the kind of the teacher's top-1 token at the
 * position: a digit, <eos>, or anything else (step and answer markers): where the entropy sits.
 */
function byKind(logits_NV: Float32Array, teacher_NV: Float32Array, V: number, mask_N: ArrayLike<number>, N: number, digits: readonly number[], eos: number): string {
  const acc = { digit: [0, 0, 0], eos: [0, 0, 0], other: [0, 0, 0] }; // [positions, H_S, pS(digits)]
  for (let n = 0; n < N; n++) {
    if (!(mask_N[n] > 0)) continue;
    const o = n * V;
    let top = 0;
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      if (teacher_NV[o + v] > teacher_NV[o + top]) top = v;
      max = Math.max(max, logits_NV[o + v]);
    }
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits_NV[o + v] - max);
    const lse = max + Math.log(z);
    let H = 0;
    for (let v = 0; v < V; v++) {
      const l = logits_NV[o + v] - lse;
      H -= Math.exp(l) * l;
    }
    let pd = 0;
    for (const d of digits) pd += Math.exp(logits_NV[o + d] - lse);
    const a = digits.includes(top) ? acc.digit : top === eos ? acc.eos : acc.other;
    a[0]++;
    a[1] += H;
    a[2] += pd;
  }
  return (Object.entries(acc) as [string, number[]][])
    .map(([k, a]) => `${k}: n ${a[0]} H_S ${(a[1] / Math.max(1, a[0])).toFixed(2)} pS(digits) ${(a[2] / Math.max(1, a[0])).toFixed(2)}`)
    .join(' | ');
}

const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : String(x));

async function setup(args: string[]) {
  await initBackend({ quiet: true });
  const config = resolveConfig(parseRunArgs(args));
  const derived = deriveConfig(config);
  const task = createTask(config.task.name, config.task.options as never) as Task<Prompt>;
  const warm = await warmupStudent(config, derived);
  const optimizer = createAdam(config.distill.lr);
  const probe = buildProbeSet(task, 1, config.seed);
  const ctx: StepContext = { config, phase: 'distill', task, student: warm.student, optimizer, ref: null, probe, tracker: new TeacherTopTracker() };
  return { config, task, ctx, warm };
}

function evalPass1(ctx: StepContext, config: Config): number {
  const prompts = ctx.task.samplePrompts('test', config.eval.prompts, deriveSeed(config.seed, 'eval', 'prompts', ctx.task.name));
  const r = evaluate(ctx.student, ctx.task, prompts, {
    samples: config.eval.samples,
    ks: [1],
    temperature: config.eval.temperature,
    topP: config.eval.topP,
    seed: deriveSeed(config.seed, 'eval', 'sample', ctx.task.name),
  });
  return r.metrics['eval/pass@1'];
}

async function check(args: string[]): Promise<void> {
  const { ctx, task } = await setup(args);
  const V = ctx.student.config.vocabSize;
  let alignMax = 0;
  let teacherMax = 0;
  let normMax = 0;
  let maskBad = 0;
  let truncated = 0;
  let rows = 0;
  const on = { n: 0, top1: 0, bg: 0, H: 0, valid: 0 };
  const off = { n: 0, top1: 0, bg: 0, H: 0, valid: 0 };
  for (let step = 1; step <= 4; step++) {
    const prepared = prepareBatch(ctx, step);
    try {
      const batch = prepared.batch as Rollouts;
      const { B, R } = batch;
      const { tokens_N, mask_N } = prepared.fields;
      const prompts = Array.from({ length: B }, (_, b) => {
        const d = ctx.config.distill;
        return ctx.task.samplePrompts('train', d.prompts, deriveSeed(ctx.config.seed, 'distill', 'prompts', step))[Math.floor(b / d.rollouts)];
      });
      // align: sampler log-probs vs the training forward pass
      const lp = tf.tidy(() => {
        const z = ctx.student.responseLogits(batch);
        return tf.logSoftmax(z).dataSync() as Float32Array;
      });
      for (let n = 0; n < B * R; n++) if (mask_N[n] > 0) alignMax = Math.max(alignMax, Math.abs(lp[n * V + tokens_N[n]] - batch.rawLogprobs_BR[n]));
      // mask structure
      for (let b = 0; b < B; b++) {
        rows++;
        const L = batch.responseLength_B[b];
        for (let t = 0; t < R; t++) {
          const m = mask_N[b * R + t];
          const y = tokens_N[b * R + t];
          if ((t < L) !== (m > 0)) maskBad++;
          if (t < L - 1 && y === tok.eos) maskBad++;
          if (t >= L && y !== tok.pad) maskBad++;
        }
        const finished = L > 0 && tokens_N[b * R + L - 1] === tok.eos;
        if (finished !== (batch.finished_B[b] === 1)) maskBad++;
        if (!finished) truncated++;
      }
      // teacher rows vs the teacher re-run on each prefix; off-path statistics
      for (let b = 0; b < B; b++) {
        const c = task.cursor(prompts[b]);
        for (let t = 0; t < R && mask_N[b * R + t] > 0; t++) {
          const n = b * R + t;
          const ref = teacherLogprobs(task, prompts[b], tokens_N.subarray(b * R, b * R + t));
          let sum = 0;
          let top = 0;
          let bg = 0;
          let H = 0;
          for (let v = 0; v < V; v++) {
            const x = prepared.teacherLogp_NV[n * V + v];
            teacherMax = Math.max(teacherMax, Math.abs(x - ref[v]));
            const p = Math.exp(x);
            sum += p;
            if (p < SEC) bg += p;
            H -= p * x;
            if (x > prepared.teacherLogp_NV[n * V + top]) top = v;
          }
          normMax = Math.max(normMax, Math.abs(sum - 1));
          const acc = c.confusion > 0 ? off : on;
          acc.n++;
          acc.top1 += Math.exp(prepared.teacherLogp_NV[n * V + top]);
          acc.bg += bg;
          acc.H += H;
          if (c.valid().includes(top)) acc.valid++;
          c.push(tokens_N[n]);
        }
      }
    } finally {
      prepared.dispose();
    }
  }
  const show = (name: string, a: typeof on) =>
    console.log(`  ${name.padEnd(9)} positions ${a.n}  teacher top-1 mass ${f(a.top1 / a.n)}  mass below 1e-2 ${f(a.bg / a.n, 4)}  entropy ${f(a.H / a.n)}  top-1 valid ${f(a.valid / a.n)}`);
  console.log(`align    max |sampler log pS(y) - responseLogits log pS(y)| = ${alignMax.toExponential(2)}`);
  console.log(`teacher  max |scoreResponses row - teacherLogprobs(prefix)| = ${teacherMax.toExponential(2)};  max |sum pT - 1| = ${normMax.toExponential(2)}`);
  console.log(`mask     ${maskBad} violations over ${rows} rows; ${truncated} rows truncated (no <eos>)`);
  console.log('teacher on the rollouts:');
  show('on-path', on);
  show('off-path', off);
  ctx.student.dispose();
  ctx.optimizer.dispose();
}

async function train(args: string[]): Promise<void> {
  const every = Number(takeFlag(args, 'every') ?? 10);
  const showRows = Number(takeFlag(args, 'show') ?? 0);
  const out = takeFlag(args, 'out');
  const { config, ctx } = await setup(args);
  const d = config.distill;
  const label = `${d.method} ${JSON.stringify(d.objective)} lr ${d.lr} seed ${config.seed} warmup ${config.warmup.steps} steps ${d.steps} noise ${JSON.stringify((config.task.options as { noise?: unknown }).noise)}`;
  const log = (o: Record<string, unknown>) => {
    if (out) fs.appendFileSync(out, `${JSON.stringify({ label, method: d.method, objective: d.objective, lr: d.lr, seed: config.seed, warmup: config.warmup.steps, ...o })}\n`);
  };
  console.log(label);
  const p0 = evalPass1(ctx, config);
  console.log(`pass@1 step 0: ${f(p0)}`);
  log({ step: 0, pass1: p0 });
  const V = ctx.student.config.vocabSize;
  const isDistractor = new Uint8Array(V);
  for (const v of ctx.task.vocab.groups.distractors) isDistractor[v] = 1;
  console.log('step  corr  fin  | pS: top1   sec    bg (minor  junk  max  #>1e-3) | pT: top1   sec    bg   | H_S   H_T   KL    KLbg | distr #>1e-3 | off-path share, pS bg, H_S');
  for (let s = 1; s <= d.steps; s++) {
    const prepared = prepareBatch(ctx, s);
    try {
      const upd = applyUpdate(ctx, prepared);
      if (s === 1 || s % every === 0 || s === d.steps) {
        const { B, R } = prepared.batch;
        const N = B * R;
        const { mask_N, tokens_N } = prepared.fields;
        const prompts = ctx.task.samplePrompts('train', d.prompts, deriveSeed(config.seed, 'distill', 'prompts', s));
        const rowsPrompts = prompts.flatMap((p) => Array.from({ length: d.rollouts }, () => p));
        const conf = confusionRows(ctx.task, rowsPrompts, tokens_N, mask_N, R);
        const all = massSplit(upd.logits_NV, prepared.teacherLogp_NV, V, (n) => mask_N[n] > 0, N, isDistractor);
        const offp = massSplit(upd.logits_NV, prepared.teacherLogp_NV, V, (n) => mask_N[n] > 0 && conf[n] > 0, N, isDistractor);
        const corr = prepared.reward_S.reduce((a, x) => a + x, 0) / B;
        const fin = (prepared.batch as Rollouts).finished_B.reduce((a, x) => a + x, 0) / B;
        console.log(
          `${String(s).padStart(4)}  ${f(corr, 2)}  ${f(fin, 2)} |     ${f(all.top1)} ${f(all.sec)} ${f(all.bg)} (${f(all.minor)} ${f(all.junk)} ${f(all.junkMax)} ${f(all.junkCount, 1)}) |     ${f(all.Ttop1)} ${f(all.Tsec)} ${f(all.Tbg, 4)} | ${f(all.Hs, 2)}  ${f(all.Ht, 2)}  ${f(all.kl, 2)}  ${f(all.klBg, 3)} | ${f(all.distractor)} ${f(all.distractorCount, 1)} | ${f(offp.n / all.n, 2)} ${f(offp.bg)} ${f(offp.Hs, 2)}`,
        );
        const kinds = byKind(upd.logits_NV, prepared.teacherLogp_NV, V, mask_N, N, ctx.task.vocab.groups.digits, tok.eos);
        console.log(`      by the teacher's top-1: ${kinds}`);
        log({ step: s, correct: corr, finished: fin, all, offPath: offp, kinds });
        for (let b = 0; b < Math.min(showRows, B); b++) {
          const L = prepared.batch.responseLength_B[b];
          const y = tokens_N.subarray(b * R, b * R + L);
          console.log(`      ${ctx.task.describe(rowsPrompts[b])}: ${ctx.task.vocab.decode(y)}  [${prepared.reward_S[b] ? 'correct' : 'wrong'}]`);
        }
      }
    } finally {
      prepared.dispose();
    }
  }
  const p1 = evalPass1(ctx, config);
  console.log(`pass@1 step ${d.steps}: ${f(p1)}`);
  log({ step: d.steps, pass1: p1, final: true });
  ctx.student.dispose();
  ctx.optimizer.dispose();
}

interface LogRow {
  label: string; method: string; objective: Record<string, unknown>; lr: number; seed: number; warmup?: number; step: number;
  pass1?: number; final?: boolean; all?: Split;
}

/** One line per run in --out files: pass@1 before and after, and the first and last reported split. */
function summary(files: string[]): void {
  const runs = new Map<string, LogRow[]>();
  for (const file of files) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as LogRow;
      // a run restarts at step 0: key by label and occurrence
      const key = r.label;
      if (r.step === 0 && r.pass1 !== undefined) runs.set(key, []);
      runs.get(key)?.push(r);
    }
  }
  console.log('method  options                 lr     seed W    S   | pass@1 0 -> S | H_S first -> last | H_T | pS junk first -> last | pS distractors first -> last');
  for (const rows of runs.values()) {
    const p = rows.filter((r) => r.pass1 !== undefined);
    const sp = rows.filter((r) => r.all);
    if (p.length < 2 || sp.length < 1) continue;
    const a = sp[0].all!;
    const b = sp[sp.length - 1].all!;
    const o = rows[0].objective;
    const opt = rows[0].method === 'gkd' ? `beta ${o.beta} topK ${o.topK}` : rows[0].method === 'aopd' ? `eta ${o.eta} topK ${o.topK}` : '';
    console.log(
      `${rows[0].method.padEnd(7)} ${opt.padEnd(23)} ${String(rows[0].lr).padEnd(6)} ${rows[0].seed}    ${String(rows[0].warmup ?? '').padEnd(4)} ${String(p[p.length - 1].step).padEnd(3)} | ${f(p[0].pass1!)} -> ${f(p[p.length - 1].pass1!)} | ${f(a.Hs, 2)} -> ${f(b.Hs, 2)} | ${f(b.Ht, 2)} | ${f(a.junk)} -> ${f(b.junk)} | ${f(a.distractor)} -> ${f(b.distractor)}`,
    );
  }
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'check') return check(rest);
  if (cmd === 'train') return train(rest);
  if (cmd === 'summary') return summary(rest);
  console.error('usage: node dist/bench/p1Study.js check|train [opdlab run args] [--every k] [--out file.jsonl] [--show n] | summary file.jsonl... (see the file header)');
  process.exitCode = 2;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
