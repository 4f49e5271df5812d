/*
 * Row kernels for the fused objectives: the O(N x V) passes over logits, in WebAssembly SIMD (f32x4).
 * Compiled by lib/kernels/build.sh (clang --target=wasm32 -msimd128) into rows.wasm, which is committed;
 * lib/kernels/index.ts loads it and falls back to the plain-JS kernels there (same maths, float64).
 *
 * Conventions: row-major [rows, V] float32 arrays; per-row statistics in float64. No libc: exp and log are
 * polynomials evaluated 4 lanes at a time (exp: 1 ulp, log: Cephes logf, about 2 ulp, in float32).
 *
 * Memory: the module imports its memory. On the tfjs wasm backend that is tfjs's own heap, so kernels read
 * tensors where they lie and write gradients straight into output tensors; index.ts then points the shadow
 * stack (__stack_pointer, exported) at a block malloc'ed from that heap. The module must have no data segments
 * (no static arrays or strings: they would be written over tfjs's heap at instantiation); index.ts refuses a
 * binary that has one.
 *
 * Speed notes (V8): f32x4.min/max propagate NaN and compile to ~8 x64 instructions each, pmin/pmax to one;
 * inputs are checked finite before any kernel runs, so only the pseudo-min/max are used. Hot loops take two
 * vectors per iteration (independent accumulators). Lane sums are moved into float64 every 256 values.
 */
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))

/* float32 lane partial sums are flushed into a float64 total after this many values */
#define FLUSH 256

static inline v128_t splat(float x) {
  return wasm_f32x4_splat(x);
}

/*
 * exp(x), 4 lanes, for x <= 88 (callers pass x <= 0: logits minus their row maximum). Max error 1 ulp (measured
 * against float64 over [-87, 0]); results below 2^-126 (x < -87.3) are flushed to 0.
 *   n = round(x / ln 2): adding 1.5 * 2^23 rounds x log2(e) to an integer held in the low mantissa bits of t
 *   r = x - n ln 2, |r| <= ln(2) / 2 (Cody-Waite: ln 2 = 0.693359375 exactly, minus 2.12194440e-4)
 *   exp(r) = 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4)   (near-minimax on |r| <= ln(2) / 2, Estrin form)
 *   2^n: the exponent field n + 127 built from the bits of t, clamped at 0 (the float +0) below 2^-126
 */
static inline v128_t vexp(v128_t x) {
  x = wasm_f32x4_pmax(wasm_f32x4_pmin(x, splat(88.0f)), splat(-104.0f));
  v128_t t = wasm_f32x4_add(wasm_f32x4_mul(x, splat(1.44269504088896341f)), splat(12582912.0f));
  v128_t n = wasm_f32x4_sub(t, splat(12582912.0f));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, splat(-2.12194440e-4f)));
  v128_t r2 = wasm_f32x4_mul(r, r);
  v128_t lo = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.555492p-3f), r), splat(0x1.fffffcp-2f)); /* c2 + c3 r */
  v128_t hi = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.1239d4p-7f), r), splat(0x1.5558f2p-5f)); /* c4 + c5 r */
  hi = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.6a244cp-10f), r2), hi);                         /* + c6 r^2 */
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(hi, r2), lo);
  v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, r2), r), splat(1.0f));
  v128_t e = wasm_i32x4_max(wasm_i32x4_sub(t, wasm_i32x4_splat(0x4b400000 - 127)), wasm_i32x4_splat(0));
  return wasm_f32x4_mul(y, wasm_i32x4_shl(e, 23));
}

/* log(x) for x > 0, Cephes logf (x = 0 gives about -87.3: callers multiply it by a probability that is then 0) */
static inline v128_t vlog(v128_t x) {
  x = wasm_f32x4_pmax(x, splat(1.17549435e-38f));
  v128_t bits = x;
  v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(bits, 23), wasm_i32x4_splat(127));
  v128_t m = wasm_v128_or(wasm_v128_and(bits, wasm_i32x4_splat(0x007fffff)), wasm_i32x4_splat(0x3f800000)); /* [1, 2) */
  v128_t ef = wasm_f32x4_convert_i32x4(e);
  /* if m > sqrt(2): m /= 2, e += 1  -> m in [sqrt(2)/2, sqrt(2)) */
  v128_t big = wasm_f32x4_gt(m, splat(1.41421356237f));
  m = wasm_v128_bitselect(wasm_f32x4_mul(m, splat(0.5f)), m, big);
  ef = wasm_v128_bitselect(wasm_f32x4_add(ef, splat(1.0f)), ef, big);
  v128_t f = wasm_f32x4_sub(m, splat(1.0f));
  v128_t f2 = wasm_f32x4_mul(f, f);
  v128_t y = splat(7.0376836292E-2f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(-1.1514610310E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(1.1676998740E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(-1.2420140846E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(1.4249322787E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(-1.6668057665E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(2.0000714765E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(-2.4999993993E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), splat(3.3333331174E-1f));
  y = wasm_f32x4_mul(wasm_f32x4_mul(y, f), f2);
  y = wasm_f32x4_add(y, wasm_f32x4_mul(ef, splat(-2.12194440e-4f)));
  y = wasm_f32x4_sub(y, wasm_f32x4_mul(f2, splat(0.5f)));
  return wasm_f32x4_add(wasm_f32x4_add(f, y), wasm_f32x4_mul(ef, splat(0.693359375f)));
}

static inline float hmax(v128_t v) {
  float a = wasm_f32x4_extract_lane(v, 0), b = wasm_f32x4_extract_lane(v, 1);
  float c = wasm_f32x4_extract_lane(v, 2), d = wasm_f32x4_extract_lane(v, 3);
  float m = a > b ? a : b, n = c > d ? c : d;
  return m > n ? m : n;
}

static inline double hsum(v128_t v) {
  return (double)wasm_f32x4_extract_lane(v, 0) + (double)wasm_f32x4_extract_lane(v, 1) +
         (double)wasm_f32x4_extract_lane(v, 2) + (double)wasm_f32x4_extract_lane(v, 3);
}

/* the last partial vector of a row: `count` < 4 values, the other lanes set to `pad` */
static inline v128_t load_tail(const float* p, int count, float pad) {
  float buf[4] = {pad, pad, pad, pad};
  for (int i = 0; i < count; i++) buf[i] = p[i];
  return wasm_v128_load(buf);
}

/* store the first `count` < 4 lanes of x */
static inline void store_tail(float* p, int count, v128_t x) {
  float buf[4];
  wasm_v128_store(buf, x);
  for (int i = 0; i < count; i++) p[i] = buf[i];
}

static inline int is_finite(float x) {
  union { float f; unsigned u; } b = {x};
  return (b.u & 0x7f800000u) != 0x7f800000u;
}

static inline float row_max(const float* z, int V) {
  v128_t m0 = splat(-3.4e38f), m1 = m0;
  int v = 0;
  for (; v + 8 <= V; v += 8) {
    m0 = wasm_f32x4_pmax(m0, wasm_v128_load(z + v));
    m1 = wasm_f32x4_pmax(m1, wasm_v128_load(z + v + 4));
  }
  for (; v + 4 <= V; v += 4) m0 = wasm_f32x4_pmax(m0, wasm_v128_load(z + v));
  if (v < V) m0 = wasm_f32x4_pmax(m0, load_tail(z + v, V - v, -3.4e38f));
  return hmax(wasm_f32x4_pmax(m0, m1));
}

/*
 * sum_v exp((z_v - shift) scale) of one row, in float64; also stores the exponentials to out (when out != 0).
 * Always inlined with constant `out` and `scale`, so the store and the multiply by 1 compile away where unused.
 */
static inline __attribute__((always_inline)) double row_sumexp(const float* z, int V, float shift, float scale, float* out) {
  const v128_t sh = splat(shift), sc = splat(scale);
  double total = 0;
  int v = 0;
  while (v + 8 <= V) {
    v128_t s0 = splat(0), s1 = splat(0);
    int stop = v + FLUSH < V ? v + FLUSH : V;
    for (; v + 8 <= stop; v += 8) {
      v128_t e0 = vexp(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(z + v), sh), sc));
      v128_t e1 = vexp(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(z + v + 4), sh), sc));
      if (out) {
        wasm_v128_store(out + v, e0);
        wasm_v128_store(out + v + 4, e1);
      }
      s0 = wasm_f32x4_add(s0, e0);
      s1 = wasm_f32x4_add(s1, e1);
    }
    total += hsum(wasm_f32x4_add(s0, s1));
  }
  for (; v < V; v += 4) {
    int count = V - v < 4 ? V - v : 4;
    /* padding lanes: exp(-huge) = 0 */
    v128_t e = vexp(wasm_f32x4_mul(wasm_f32x4_sub(load_tail(z + v, count, -3.4e38f), sh), sc));
    if (out) store_tail(out + v, count, e);
    total += hsum(e);
  }
  return total;
}

/* natural log of a double x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh((m - 1) / (m + 1)) */
static double log_f64(double x) {
  union { double d; unsigned long long u; } b = {x};
  int e = (int)((b.u >> 52) & 0x7ff) - 1023;
  b.u = (b.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* m in [1, 2) */
  double m = b.d;
  if (m > 1.4142135623730951) { m *= 0.5; e += 1; }
  double t = (m - 1) / (m + 1), t2 = t * t, term = t, acc = 0;
  for (int k = 1; k <= 21; k += 2) { acc += term / k; term *= t2; }
  return 2 * acc + e * 0.6931471805599453;
}

/* Index of the first value of x[0 .. n) that is NaN or +-Infinity (exponent bits all ones), or -1. */
EXPORT int first_nonfinite(const float* x, int n) {
  const v128_t expo = wasm_i32x4_splat(0x7f800000);
  int v = 0;
  /* 64 values at a time: OR the lanes' "not finite" masks; only a block with a hit is searched value by value */
  for (; v + 64 <= n; v += 64) {
    v128_t bad = wasm_i32x4_splat(0);
    for (int j = 0; j < 64; j += 4) bad = wasm_v128_or(bad, wasm_i32x4_eq(wasm_v128_and(wasm_v128_load(x + v + j), expo), expo));
    if (wasm_v128_any_true(bad)) break;
  }
  for (; v < n; v++) if (!is_finite(x[v])) return v;
  return -1;
}

/* lse[n] = logsumexp_v z[n, v] scale = max_n scale + log sum_v exp((z[n, v] - max_n) scale), scale > 0 */
EXPORT void logsumexp_rows(const float* z, double* lse, float scale, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float m = row_max(zr, V);
    /* scale 1 (the common case) spelled out, so that the multiply compiles away */
    double s = scale == 1.0f ? row_sumexp(zr, V, m, 1.0f, 0) : row_sumexp(zr, V, m, scale, 0);
    lse[n] = (double)m * scale + log_f64(s);
  }
}

/* e[n, v] = exp(z[n, v] - max_n), max[n] = max_v z[n, v], sum[n] = sum_v e[n, v]  (so lse = max + log sum) */
EXPORT void exp_rows(const float* z, float* e, float* max, double* sum, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float m = row_max(zr, V);
    max[n] = m;
    sum[n] = row_sumexp(zr, V, m, 1.0f, e + (long)n * V);
  }
}

/* p[n, v] = softmax(z[n, :])_v and lse[n] = logsumexp_v z[n, v] */
EXPORT void softmax_rows(const float* z, float* p, double* lse, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* pr = p + (long)n * V;
    float m = row_max(zr, V);
    double s = row_sumexp(zr, V, m, 1.0f, pr);
    float inv = (float)(1.0 / s);
    v128_t iv = splat(inv);
    int v = 0;
    for (; v + 4 <= V; v += 4) wasm_v128_store(pr + v, wasm_f32x4_mul(wasm_v128_load(pr + v), iv));
    for (; v < V; v++) pr[v] *= inv;
    lse[n] = (double)m + log_f64(s);
  }
}

/* g[n, v] = c[n] * p[n, v]  (g may be p: scaled in place) */
EXPORT void scale_rows(const float* p, const float* c, float* g, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* pr = p + (long)n * V;
    float* gr = g + (long)n * V;
    v128_t cv = splat(c[n]);
    int v = 0;
    for (; v + 8 <= V; v += 8) {
      wasm_v128_store(gr + v, wasm_f32x4_mul(wasm_v128_load(pr + v), cv));
      wasm_v128_store(gr + v + 4, wasm_f32x4_mul(wasm_v128_load(pr + v + 4), cv));
    }
    for (; v < V; v++) gr[v] = c[n] * pr[v];
  }
}

/* out[n, v] = z[n, v] - shift[n]  (log-softmax from row statistics) */
EXPORT void shift_rows(const float* z, const double* shift, float* out, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* o = out + (long)n * V;
    v128_t s = splat((float)shift[n]);
    int v = 0;
    for (; v + 4 <= V; v += 4) wasm_v128_store(o + v, wasm_f32x4_sub(wasm_v128_load(zr + v), s));
    for (; v < V; v++) o[v] = zr[v] - (float)shift[n];
  }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Top-K per row. An entry ranks below another with a smaller value, or the same value and a larger id, so ties go
 * to the lower id (as topKRows in lib/probs/topk.ts). Inputs must be finite. The row is read in id order, keeping
 * the best k seen so far; their lowest value is a running threshold, and the row is scanned 16 values at a time,
 * only the lanes at or above the threshold being offered. A taken value replaces the lowest-ranked kept entry (a
 * later id never wins a tie, so "above the lowest" is exact).
 *   k <= SMALL_K: a list sorted best first (a taken value moves up past the smaller entries). The list starts
 *                 empty (-inf placeholders) behind a floor: cut the row into k blocks; their k maxima are k distinct
 *                 entries, so the k-th largest value is at least the smallest block maximum, and nothing below that
 *                 floor can make the top k. On rows of random values a few k values are taken, against about
 *                 k ln(V / k) from a cold start.
 *   larger k:     a min-heap (root = the lowest-ranked entry), O(log k) per replacement, heap-sorted at the end.
 */

#define SMALL_K 64

static inline int ranks_below(float va, int ia, float vb, int ib) {
  return va < vb || (va == vb && ia > ib);
}

/* the sorted list: x at id v (later than every kept id) enters when larger than the last entry; it moves up past
   the smaller entries (equal values stay ahead: they have lower ids) */
static inline void list_offer(float* sv, int* si, int k, float x, int v) {
  if (!(x > sv[k - 1])) return;
  int j = k - 1;
  for (; j > 0 && x > sv[j - 1]; j--) {
    sv[j] = sv[j - 1];
    si[j] = si[j - 1];
  }
  sv[j] = x;
  si[j] = v;
}

static inline void heap_swap(float* hv, int* hi, int a, int b) {
  float tv = hv[a]; hv[a] = hv[b]; hv[b] = tv;
  int ti = hi[a]; hi[a] = hi[b]; hi[b] = ti;
}

static void sift_down(float* hv, int* hi, int i, int size) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < size && ranks_below(hv[l], hi[l], hv[m], hi[m])) m = l;
    if (r < size && ranks_below(hv[r], hi[r], hv[m], hi[m])) m = r;
    if (m == i) return;
    heap_swap(hv, hi, i, m);
    i = m;
  }
}

static void sift_up(float* hv, int* hi, int i) {
  while (i > 0) {
    int parent = (i - 1) >> 1;
    if (!ranks_below(hv[i], hi[i], hv[parent], hi[parent])) return;
    heap_swap(hv, hi, i, parent);
    i = parent;
  }
}

/* heap: x at id v replaces the root when larger (a later id never wins a tie) */
static inline void heap_offer(float* hv, int* hi, int k, float x, int v) {
  if (x > hv[0]) {
    hv[0] = x;
    hi[0] = v;
    sift_down(hv, hi, 0, k);
  }
}

/* the lanes of 16 values from zr + v above th (at or above, with ge), as bits (lowest id = lowest bit); 0 when none */
static inline unsigned above16(const float* zr, int v, float th, int ge) {
  const v128_t t = splat(th);
  v128_t x0 = wasm_v128_load(zr + v), x1 = wasm_v128_load(zr + v + 4), x2 = wasm_v128_load(zr + v + 8), x3 = wasm_v128_load(zr + v + 12);
  v128_t a0 = ge ? wasm_f32x4_ge(x0, t) : wasm_f32x4_gt(x0, t), a1 = ge ? wasm_f32x4_ge(x1, t) : wasm_f32x4_gt(x1, t);
  v128_t a2 = ge ? wasm_f32x4_ge(x2, t) : wasm_f32x4_gt(x2, t), a3 = ge ? wasm_f32x4_ge(x3, t) : wasm_f32x4_gt(x3, t);
  if (!wasm_v128_any_true(wasm_v128_or(wasm_v128_or(a0, a1), wasm_v128_or(a2, a3)))) return 0;
  return wasm_i32x4_bitmask(a0) | wasm_i32x4_bitmask(a1) << 4 | wasm_i32x4_bitmask(a2) << 8 | wasm_i32x4_bitmask(a3) << 12;
}

/* the smallest of the maxima of k blocks of the row (k <= V): the floor of the row's k-th largest value */
static float block_max_floor(const float* zr, int V, int k) {
  int size = V / k;
  float floor = 3.4e38f;
  for (int b = 0; b < k; b++) {
    int from = b * size, to = b == k - 1 ? V : from + size;
    float m = row_max(zr + from, to - from);
    floor = m < floor ? m : floor;
  }
  return floor;
}

/* one row's top k, k <= SMALL_K, into kv / ki: the sorted list */
static void row_topk_list(const float* zr, int V, int k, float* kv, int* ki) {
  const float floor = block_max_floor(zr, V, k);
  for (int j = 0; j < k; j++) {
    kv[j] = -__builtin_inff();
    ki[j] = 0;
  }
  int v = 0;
  for (; v + 16 <= V; v += 16) {
    /* offered: at or above the floor and (rechecked in list_offer: the threshold may rise within the group) above
       the lowest kept value */
    float th = kv[k - 1] > floor ? kv[k - 1] : floor;
    for (unsigned bits = above16(zr, v, th, 1); bits; bits &= bits - 1) list_offer(kv, ki, k, zr[v + __builtin_ctz(bits)], v + __builtin_ctz(bits));
  }
  for (; v < V; v++) {
    if (zr[v] >= floor) list_offer(kv, ki, k, zr[v], v);
  }
}

/* one row's top k, any k <= V, into kv / ki (the heap), descending */
static void row_topk_heap(const float* zr, int V, int k, float* kv, int* ki) {
  int v = 0;
  for (; v < k; v++) {
    kv[v] = zr[v];
    ki[v] = v;
    sift_up(kv, ki, v);
  }
  for (; v + 16 <= V; v += 16) {
    for (unsigned bits = above16(zr, v, kv[0], 0); bits; bits &= bits - 1) heap_offer(kv, ki, k, zr[v + __builtin_ctz(bits)], v + __builtin_ctz(bits));
  }
  for (; v < V; v++) heap_offer(kv, ki, k, zr[v], v);
  /* heap sort: move the lowest-ranked entry behind the shrinking heap -> descending order */
  for (int size = k - 1; size > 0; size--) {
    heap_swap(kv, ki, 0, size);
    sift_down(kv, ki, 0, size);
  }
}

/*
 * ids[n, :] / vals[n, :] = the k largest values of z[n, :] and their ids, descending (ties: lower id first); 1 <= k <= V.
 * With lse != 0 also lse[n] = logsumexp_v (z[n, v] scale), scale > 0: the row maximum is vals[n, 0], so this takes
 * one exponential pass over the row (still in cache) instead of a max pass and an exponential pass.
 */
EXPORT void topk_rows(const float* z, int* ids, float* vals, double* lse, float scale, int rows, int V, int k) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* kv = vals + (long)n * k;
    if (k <= SMALL_K) row_topk_list(zr, V, k, kv, ids + (long)n * k);
    else row_topk_heap(zr, V, k, kv, ids + (long)n * k);
    if (lse) {
      double s = scale == 1.0f ? row_sumexp(zr, V, kv[0], 1.0f, 0) : row_sumexp(zr, V, kv[0], scale, 0);
      lse[n] = (double)kv[0] * scale + log_f64(s);
    }
  }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Full-vocabulary generalised JSD(beta) (GKD Eq. 1; Liger-Kernel jsd.py's gradient) at temperature tau, from the
 * student and teacher LOGITS z, t (derivation in lib/objectives/kernels/divergenceRows.ts):
 *   x = log softmax(z / tau) = (z - max z) / tau - log sum exp((z - max z) / tau),  y likewise from t;  Q = e^x, P = e^y
 *   beta = 0:  F = sum P (y - x)                                 dF/dx = -P
 *   beta = 1:  F = sum Q (x - y)                                 dF/dx = Q (x - y + 1)
 *   else:      F = beta sum P (y - log M) + (1 - beta) sum Q (x - log M),  M = beta P + (1 - beta) Q
 *                                                                dF/dx = (1 - beta) Q (x - log M)
 *   dF/dz_v = (dF/dx_v - Q_v sum_u dF/dx_u) / tau;   entropy = -sum Q x
 * Rows with weight w[n] = 0 get loss 0, entropy 0 and a zero gradient row; the others g = w[n] dF/dz (loss unweighted).
 */

/* the loss terms of 4 columns (returned) and dF/dx (to *dx) from x, y and q = e^x, p = e^y; mode 0: beta = 0,
   1: beta = 1, 2: in between */
static inline __attribute__((always_inline)) v128_t jsd_columns(v128_t x, v128_t y, v128_t q, v128_t p, int mode, v128_t b, v128_t b1, v128_t* dx) {
  if (mode == 0) {
    *dx = wasm_f32x4_neg(p);
    return wasm_f32x4_mul(p, wasm_f32x4_sub(y, x));
  }
  if (mode == 1) {
    v128_t term = wasm_f32x4_mul(q, wasm_f32x4_sub(x, y));
    *dx = wasm_f32x4_add(term, q);
    return term;
  }
  v128_t lm = vlog(wasm_f32x4_add(wasm_f32x4_mul(b, p), wasm_f32x4_mul(b1, q)));
  v128_t gs = wasm_f32x4_mul(b1, wasm_f32x4_mul(q, wasm_f32x4_sub(x, lm)));
  *dx = gs;
  return wasm_f32x4_add(wasm_f32x4_mul(b, wasm_f32x4_mul(p, wasm_f32x4_sub(y, lm))), gs);
}

/* log-probs of 4 columns: (z - max) inv_tau - lse_shift, padding lanes (beyond `count` < 4) at -200 (probability 0) */
static inline v128_t log_probs(const float* z, int count, float max, float inv_tau, float lse_shift) {
  if (count == 4) return wasm_f32x4_sub(wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(z), splat(max)), splat(inv_tau)), splat(lse_shift));
  float buf[4]; /* (filled in a loop: a constant initialiser would become a data segment) */
  for (int i = 0; i < 4; i++) buf[i] = i < count ? (z[i] - max) * inv_tau - lse_shift : -200.0f;
  return wasm_v128_load(buf);
}

static inline __attribute__((always_inline)) void jsd_row(const float* zr, const float* tr, float w, float inv_tau, float beta, int mode,
                                                         float* loss, float* entropy, float* gr, int V) {
  float mz = row_max(zr, V), mt = row_max(tr, V);
  float lz = (float)log_f64(row_sumexp(zr, V, mz, inv_tau, 0));
  float lt = (float)log_f64(row_sumexp(tr, V, mt, inv_tau, 0));
  const v128_t b = splat(beta), b1 = splat(1.0f - beta);
  double total = 0, gtotal = 0, qx_total = 0;
  v128_t acc = splat(0), gsum = splat(0), qx = splat(0);
  /* pass 1: the loss terms, dF/dx (kept in g), its sum and the entropy */
  for (int v = 0; v < V; v += 4) {
    int count = V - v < 4 ? V - v : 4;
    v128_t x = log_probs(zr + v, count, mz, inv_tau, lz);
    v128_t y = log_probs(tr + v, count, mt, inv_tau, lt);
    v128_t q = vexp(x), dx;
    acc = wasm_f32x4_add(acc, jsd_columns(x, y, q, vexp(y), mode, b, b1, &dx));
    gsum = wasm_f32x4_add(gsum, dx);
    qx = wasm_f32x4_add(qx, wasm_f32x4_mul(q, x));
    if (count == 4) wasm_v128_store(gr + v, dx);
    else store_tail(gr + v, count, dx);
    if ((v & (FLUSH - 1)) == FLUSH - 4 || count < 4) {
      total += hsum(acc); gtotal += hsum(gsum); qx_total += hsum(qx);
      acc = splat(0); gsum = splat(0); qx = splat(0);
    }
  }
  total += hsum(acc); gtotal += hsum(gsum); qx_total += hsum(qx);
  *loss = (float)total;
  *entropy = (float)-qx_total;
  /* pass 2: g = w (dF/dx - Q sum dF/dx) / tau */
  const v128_t gs = splat((float)gtotal), scale = splat(w * inv_tau);
  for (int v = 0; v < V; v += 4) {
    int count = V - v < 4 ? V - v : 4;
    v128_t q = vexp(log_probs(zr + v, count, mz, inv_tau, lz));
    v128_t dx = count == 4 ? wasm_v128_load(gr + v) : load_tail(gr + v, count, 0.0f);
    v128_t g = wasm_f32x4_mul(wasm_f32x4_sub(dx, wasm_f32x4_mul(q, gs)), scale);
    if (count == 4) wasm_v128_store(gr + v, g);
    else store_tail(gr + v, count, g);
  }
}

EXPORT void jsd_rows(const float* z, const float* t, const float* w, float inv_tau, float beta, float* loss, float* entropy, float* g,
                     int rows, int V) {
  int mode = beta == 0.0f ? 0 : beta == 1.0f ? 1 : 2;
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    const float* tr = t + (long)n * V;
    float* gr = g + (long)n * V;
    if (w[n] == 0.0f) {
      for (int v = 0; v < V; v++) gr[v] = 0.0f;
      loss[n] = 0.0f;
      entropy[n] = 0.0f;
      continue;
    }
    if (mode == 0) jsd_row(zr, tr, w[n], inv_tau, beta, 0, loss + n, entropy + n, gr, V);
    else if (mode == 1) jsd_row(zr, tr, w[n], inv_tau, beta, 1, loss + n, entropy + n, gr, V);
    else jsd_row(zr, tr, w[n], inv_tau, beta, 2, loss + n, entropy + n, gr, V);
  }
}
