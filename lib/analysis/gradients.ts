/**
 * Gradient norms with respect to the logits (claims C4 "smoothest gradient norms", C5 "AOPD's gradient norm stays
 * below OPD's"; C15 gradient variance).
 *
 *   g_n = row n of dL_sum/dz, L_sum = sum_n m_n l_n      (the token's own logit gradient; jacobian.ts header)
 *   grad/token_norm_mean|min|max    over masked-in tokens of ||g_n||_2
 *   grad/token_norm_std|var         sample std / variance (ddof 1) of ||g_n||_2 across the batch's tokens
 *   grad/batch_norm                 ||dL_red/dZ||_F, the Frobenius norm of the gradient of the loss as reduced for
 *                                   training (default 'token-mean'); the logit-side analogue of a logged grad norm
 *   grad/seq_norm_mean|var          per sequence s: sqrt(sum_{n in s} ||g_n||^2), mean and sample variance
 *                                   across sequences (when seqIds_N is given)
 * These are logit-space norms; a parameter-space grad norm (what papers plot) is the trainer's to log.
 */
import { objectiveLossAndGrad } from '../objectives/registry';
import type { DistillBatch, Reduction } from '../objectives/types';
import { assertLength } from '../probs/validate';
import { maskCount, mean64, readMatrix, requireTokens, resolveMask, type Matrix } from './values';

export interface GradientNorms {
  /** [N] ||g_n||_2 (0 on masked-out rows, which are not read). */
  tokenNorm_N: Float64Array;
  /** [S] per-sequence norms, in order of first appearance, when seqIds_N was given. */
  seqNorm_S?: Float64Array;
  metrics: Record<string, number>;
  notes: string[];
}

function sampleVariance(x: ArrayLike<number>): number {
  const n = x.length;
  if (n < 2) return NaN;
  const m = mean64(x);
  let s = 0;
  for (let i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
  return s / (n - 1);
}

/**
 * Norm statistics of a given logit gradient [N, V] (any reduction); `grad/batch_norm` is its Frobenius norm over
 * the masked-in rows.
 */
export function gradientNorms(grad_NV: Matrix, mask_N?: ArrayLike<number>, seqIds_N?: ArrayLike<number>): GradientNorms {
  const op = 'gradientNorms';
  const { data, rows, cols } = readMatrix(op, 'grad_NV', grad_NV);
  const mask = resolveMask(op, mask_N, rows);
  requireTokens(op, maskCount(mask), rows);
  const tokenNorm_N = new Float64Array(rows);
  let frob = 0;
  for (let r = 0; r < rows; r++) {
    if (mask[r] === 0) continue; // masked rows are never read (objectives give them 0 anyway)
    let s = 0;
    for (let v = 0; v < cols; v++) {
      const g = data[r * cols + v];
      if (!Number.isFinite(g)) throw new Error(`${op}: grad_NV must be finite, found ${g} at row ${r}, column ${v}`);
      s += g * g;
    }
    frob += s;
    tokenNorm_N[r] = Math.sqrt(s);
  }
  const notes: string[] = [];
  const masked = tokenNorm_N.filter((_, i) => mask[i] !== 0);
  const variance = sampleVariance(masked);
  if (masked.length < 2) notes.push(`grad/token_norm_std and grad/token_norm_var are NaN: need >= 2 masked-in tokens (count ${masked.length})`);
  const metrics: Record<string, number> = {
    'grad/token_norm_mean': mean64(masked),
    'grad/token_norm_std': Math.sqrt(variance),
    'grad/token_norm_var': variance,
    'grad/token_norm_min': masked.reduce((a, x) => Math.min(a, x), Infinity),
    'grad/token_norm_max': masked.reduce((a, x) => Math.max(a, x), -Infinity),
    'grad/batch_norm': Math.sqrt(frob),
  };
  let seqNorm_S: Float64Array | undefined;
  if (seqIds_N) {
    assertLength(op, 'seqIds_N', seqIds_N, rows);
    const sq = new Map<number, number>();
    for (let r = 0; r < rows; r++) {
      const s = seqIds_N[r];
      if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: seqIds_N must hold integers >= 0, found ${s} at index ${r}`);
      if (mask[r] === 0) continue;
      sq.set(s, (sq.get(s) ?? 0) + tokenNorm_N[r] * tokenNorm_N[r]);
    }
    seqNorm_S = Float64Array.from(sq.values(), Math.sqrt);
    metrics['grad/seq_norm_mean'] = mean64(seqNorm_S);
    metrics['grad/seq_norm_var'] = sampleVariance(seqNorm_S);
    if (seqNorm_S.length < 2) notes.push(`grad/seq_norm_var is NaN: needs >= 2 sequences with masked-in tokens (count ${seqNorm_S.length})`);
  }
  return { tokenNorm_N, seqNorm_S, metrics, notes };
}

/**
 * Gradient norms of a registered objective on a batch: token and sequence norms from reduction 'sum',
 * grad/batch_norm from `reduction` (the one training uses).
 */
export function gradientStats(name: string, batch: DistillBatch, objectiveOptions: Record<string, unknown> = {}, reduction: Reduction = 'token-mean'): GradientNorms & { reduction: Reduction } {
  const perToken = objectiveLossAndGrad(name, batch, objectiveOptions, 'sum');
  let out: GradientNorms;
  try {
    out = gradientNorms(perToken.grad_NV, batch.mask_N, batch.seqIds_N);
  } finally {
    perToken.grad_NV.dispose();
  }
  if (reduction !== 'sum') {
    const reduced = objectiveLossAndGrad(name, batch, objectiveOptions, reduction);
    try {
      const g = reduced.grad_NV.dataSync();
      let s = 0;
      for (let i = 0; i < g.length; i++) s += g[i] * g[i];
      out.metrics['grad/batch_norm'] = Math.sqrt(s);
    } finally {
      reduced.grad_NV.dispose();
    }
  }
  return { ...out, reduction };
}
