/*
 * Row kernels for the fused objectives: the O(N x V) passes over logits, in WebAssembly SIMD (f32x4).
 * Compiled by lib/kernels/build.sh (clang --target=wasm32 -msimd128) into rows.wasm, which is committed;
 * lib/kernels/index.ts loads it and falls back to the plain-JS kernels there (same maths, float64).
 *
 * Conventions: row-major [rows, V] float32 arrays; per-row statistics in float64. No libc: exp and log are
 * polynomials evaluated 4 lanes at a time (exp: 1 ulp where the value is kept, 1.8e-7 relative where it is only
 * summed; log: Cephes logf, about 2 ulp, in float32).
 *
 * Memory: the module imports its memory. On the tfjs wasm backend that is tfjs's own heap, so kernels read
 * tensors where they lie and write gradients straight into output tensors; index.ts then points the shadow
 * stack (__stack_pointer, exported) at a block malloc'ed from that heap. The module must have no data segments
 * (no static arrays or strings: they would be written over tfjs's heap at instantiation); index.ts refuses a
 * binary that has one.
 *
 * Speed notes (V8): f32x4.min/max propagate NaN and compile to ~8 x64 instructions each, pmin/pmax to one;
 * inputs are checked finite before any kernel runs, so only the pseudo-min/max are used. Exponential loops take
 * four vectors per iteration (independent accumulators), other hot loops two. Lane sums are moved into float64 every
 * 256 values. Validation's finiteness scan (scan_rows) also takes the row maxima, which spares the kernels their
 * max pass (index.ts hands them over).
 */
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))
/*
 * Kept out of line: each hot loop in a function of its own. V8 allocates registers per function (16 SIMD registers
 * on x64), and a loop inlined into a large kernel (several loops, many live constants) spills far more: measured on
 * the top-K + logsumexp pass, 12.7 -> 9.9 ms at 2048 x 4096 with topk_floor out of line. The arithmetic is the same.
 */
#define NOINLINE __attribute__((noinline))

/* float32 lane partial sums are flushed into a float64 total after this many values */
#define FLUSH 256

static inline v128_t splat(float x) {
  return wasm_f32x4_splat(x);
}

/*
 * exp(x), 4 lanes, for x <= 0 (callers pass logits minus their row maximum, times a positive scale). Shared range
 * reduction:
 *   n = round(x / ln 2): adding 1.5 * 2^23 rounds x log2(e) to an integer held in the low mantissa bits of t
 *   r = x - n ln 2, |r| <= ln(2) / 2 (Cody-Waite: ln 2 = 0.693359375 exactly, minus 2.12194440e-4)
 * and two kinds:
 *   vexp      values that are stored or multiplied (softmax, exponentials, JSD terms):
 *             exp(r) = 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4)  (near-minimax on |r| <= ln(2) / 2, Estrin
 *             form), max error 1 ulp (0.99 ulp, 8.3e-8 relative, measured against float64 over [-87.3, 0]), times
 *             the float 2^n, whose exponent field n + 127 is clamped at 0 (the float +0): results below 2^-126
 *             (x < -87.3) are 0, and x = -Infinity gives 0 (x is first raised to -104)
 *   vexp_sum  terms that are only summed, for a logsumexp: one degree less, 1 + r + r^2 (d2 + d3 r + d4 r^2 +
 *             d5 r^3), max relative error 1.8e-7 (mean 6e-8, mean signed -1e-8: the error of a logsumexp stays below
 *             that of its float32 lane sums), with n added to the exponent bits of the result; x is first raised to
 *             -87.33, so a term below e^-87.33 ~ 1.2e-38 counts as 1.2e-38 (nothing, next to the row maximum's 1).
 *             5 instructions fewer per 4 values, about 10% faster.
 * V8 has no fused multiply-add for wasm and keeps only 16 SIMD registers: few constants, Estrin's short chains and
 * loops of 4 vectors were the fastest of the variants measured.
 */
static inline __attribute__((always_inline)) v128_t exp_reduce(v128_t x, v128_t* t) {
  *t = wasm_f32x4_add(wasm_f32x4_mul(x, splat(1.44269504088896341f)), splat(12582912.0f));
  v128_t n = wasm_f32x4_sub(*t, splat(12582912.0f));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, splat(0.693359375f)));
  return wasm_f32x4_sub(r, wasm_f32x4_mul(n, splat(-2.12194440e-4f)));
}

static inline __attribute__((always_inline)) v128_t vexp(v128_t x) {
  v128_t t, r = exp_reduce(wasm_f32x4_pmax(x, splat(-104.0f)), &t);
  v128_t r2 = wasm_f32x4_mul(r, r);
  v128_t lo = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.555492p-3f), r), splat(0x1.fffffcp-2f)); /* c2 + c3 r */
  v128_t hi = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.1239d4p-7f), r), splat(0x1.5558f2p-5f)); /* c4 + c5 r */
  hi = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.6a244cp-10f), r2), hi);                         /* + c6 r^2 */
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(hi, r2), lo);
  v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, r2), r), splat(1.0f));
  v128_t e = wasm_i32x4_max(wasm_i32x4_sub(t, wasm_i32x4_splat(0x4b400000 - 127)), wasm_i32x4_splat(0));
  return wasm_f32x4_mul(y, wasm_i32x4_shl(e, 23));
}

static inline __attribute__((always_inline)) v128_t vexp_sum(v128_t x) {
  v128_t t, r = exp_reduce(wasm_f32x4_pmax(x, splat(-87.33f)), &t);
  v128_t r2 = wasm_f32x4_mul(r, r);
  v128_t lo = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.5557aep-3f), r), splat(0x1.fffdfcp-2f)); /* d2 + d3 r */
  v128_t hi = wasm_f32x4_add(wasm_f32x4_mul(splat(0x1.106268p-7f), r), splat(0x1.5729ecp-5f)); /* d4 + d5 r */
  v128_t p = wasm_f32x4_add(wasm_f32x4_mul(hi, r2), lo);
  v128_t y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(p, r2), r), splat(1.0f));
  return wasm_i32x4_add(y, wasm_i32x4_shl(t, 23));
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

/* the sum of the first `count` lanes of v */
static inline double hsum_first(v128_t v, int count) {
  float buf[4];
  wasm_v128_store(buf, v);
  double s = 0;
  for (int i = 0; i < count; i++) s += buf[i];
  return s;
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

NOINLINE static float row_max(const float* z, int V) {
  v128_t m0 = splat(-__builtin_inff()), m1 = m0;
  int v = 0;
  for (; v + 8 <= V; v += 8) {
    m0 = wasm_f32x4_pmax(m0, wasm_v128_load(z + v));
    m1 = wasm_f32x4_pmax(m1, wasm_v128_load(z + v + 4));
  }
  for (; v + 4 <= V; v += 4) m0 = wasm_f32x4_pmax(m0, wasm_v128_load(z + v));
  if (v < V) m0 = wasm_f32x4_pmax(m0, load_tail(z + v, V - v, -__builtin_inff()));
  return hmax(wasm_f32x4_pmax(m0, m1));
}

/* exp((x - shift) scale) of 4 values: vexp where they are stored or `exact` is asked, else vexp_sum */
static inline __attribute__((always_inline)) v128_t exp_shifted(v128_t x, v128_t sh, v128_t sc, float scale, int stored) {
  x = wasm_f32x4_sub(x, sh);
  if (scale != 1.0f) x = wasm_f32x4_mul(x, sc);
  return stored ? vexp(x) : vexp_sum(x);
}

/*
 * sum_v exp((z_v - shift) scale) of one row, in float64; also stores the exponentials to out (when out != 0). The
 * terms are vexp's where they are stored or `exact` is set (the JSD kernel: its interior, near beta = 0 or 1, cancels
 * down to ~1e-8 of its terms, and is held to its limits by tests), else vexp_sum's. Always inlined with constant
 * `out`, `exact` and `scale`, so the store and the multiply by 1 compile away where unused. 16 values per iteration
 * in 4 independent chains.
 */
static inline __attribute__((always_inline)) double row_sumexp(const float* z, int V, float shift, float scale, float* out, int exact) {
  const v128_t sh = splat(shift), sc = splat(scale);
  const int stored = out != 0 || exact;
  double total = 0;
  int v = 0;
  while (v + 16 <= V) {
    v128_t s0 = splat(0), s1 = splat(0), s2 = splat(0), s3 = splat(0);
    int stop = v + FLUSH < V ? v + FLUSH : V;
    for (; v + 16 <= stop; v += 16) {
      v128_t e0 = exp_shifted(wasm_v128_load(z + v), sh, sc, scale, stored);
      v128_t e1 = exp_shifted(wasm_v128_load(z + v + 4), sh, sc, scale, stored);
      v128_t e2 = exp_shifted(wasm_v128_load(z + v + 8), sh, sc, scale, stored);
      v128_t e3 = exp_shifted(wasm_v128_load(z + v + 12), sh, sc, scale, stored);
      if (out) {
        wasm_v128_store(out + v, e0);
        wasm_v128_store(out + v + 4, e1);
        wasm_v128_store(out + v + 8, e2);
        wasm_v128_store(out + v + 12, e3);
      }
      s0 = wasm_f32x4_add(s0, e0);
      s1 = wasm_f32x4_add(s1, e1);
      s2 = wasm_f32x4_add(s2, e2);
      s3 = wasm_f32x4_add(s3, e3);
    }
    total += hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
  }
  for (; v < V; v += 4) {
    int count = V - v < 4 ? V - v : 4;
    /* padding lanes: exp(-huge), 0 (or 1.2e-38 in a sum) */
    v128_t e = exp_shifted(count == 4 ? wasm_v128_load(z + v) : load_tail(z + v, count, -3.4e38f), sh, sc, scale, stored);
    if (out) {
      if (count == 4) wasm_v128_store(out + v, e);
      else store_tail(out + v, count, e);
    }
    total += count == 4 ? hsum(e) : hsum_first(e, count);
  }
  return total;
}

/* row_sumexp's specialisations, each out of line (NOINLINE above): sums only (vexp_sum), at scale 1 or any scale,
   stored exponentials at scale 1, and exact terms (vexp) at any scale */
NOINLINE static double sumexp_1(const float* z, int V, float shift) { return row_sumexp(z, V, shift, 1.0f, 0, 0); }
NOINLINE static double sumexp_scaled(const float* z, int V, float shift, float scale) { return row_sumexp(z, V, shift, scale, 0, 0); }
NOINLINE static double sumexp_store(const float* z, int V, float shift, float* out) { return row_sumexp(z, V, shift, 1.0f, out, 0); }
NOINLINE static double sumexp_exact(const float* z, int V, float shift, float scale) { return row_sumexp(z, V, shift, scale, 0, 1); }

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

/*
 * Index of the first value of x[0 .. n) that is NaN or +-Infinity (exponent bits all ones), or -1. Blocks of 64 values
 * are summed (one add per 4 values, 4 chains): the sum is finite when every value is, and a block whose sum is not
 * (a non-finite value, or finite values overflowing) is searched value by value.
 */
EXPORT int first_nonfinite(const float* x, int n) {
  int v = 0;
  for (; v + 64 <= n; v += 64) {
    v128_t a0 = wasm_v128_load(x + v), a1 = wasm_v128_load(x + v + 4), a2 = wasm_v128_load(x + v + 8), a3 = wasm_v128_load(x + v + 12);
    for (int j = 16; j < 64; j += 16) {
      a0 = wasm_f32x4_add(a0, wasm_v128_load(x + v + j));
      a1 = wasm_f32x4_add(a1, wasm_v128_load(x + v + j + 4));
      a2 = wasm_f32x4_add(a2, wasm_v128_load(x + v + j + 8));
      a3 = wasm_f32x4_add(a3, wasm_v128_load(x + v + j + 12));
    }
    v128_t s = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    /* s - s is 0 where s is finite, NaN where it is not */
    if (!wasm_i32x4_all_true(wasm_f32x4_eq(wasm_f32x4_sub(s, s), splat(0)))) {
      for (int i = v; i < v + 64; i++) if (!is_finite(x[i])) return i;
    }
  }
  for (; v < n; v++) if (!is_finite(x[v])) return v;
  return -1;
}

/*
 * The finiteness scan of first_nonfinite, row by row, taking each row's maximum on the way (max[n], complete when it
 * returns -1): validation reads the logits anyway, and kernels given these maxima skip their own max pass.
 */
EXPORT int scan_rows(const float* x, int rows, int V, float* max) {
  for (int n = 0; n < rows; n++) {
    const float* r = x + (long)n * V;
    v128_t m0 = splat(-__builtin_inff()), m1 = m0, a0 = splat(0), a1 = a0;
    int v = 0;
    for (; v + 16 <= V; v += 16) {
      v128_t x0 = wasm_v128_load(r + v), x1 = wasm_v128_load(r + v + 4), x2 = wasm_v128_load(r + v + 8), x3 = wasm_v128_load(r + v + 12);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_add(x0, x1));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_add(x2, x3));
      m0 = wasm_f32x4_pmax(m0, wasm_f32x4_pmax(x0, x1));
      m1 = wasm_f32x4_pmax(m1, wasm_f32x4_pmax(x2, x3));
    }
    float m = hmax(wasm_f32x4_pmax(m0, m1));
    int bad = 0;
    for (; v < V; v++) {
      if (!is_finite(r[v])) bad = 1;
      m = r[v] > m ? r[v] : m;
    }
    /* the sum is finite when every value is (a non-finite sum from finite values overflowing is searched too) */
    v128_t a = wasm_f32x4_add(a0, a1);
    if (bad || !wasm_i32x4_all_true(wasm_f32x4_eq(wasm_f32x4_sub(a, a), splat(0)))) {
      for (int i = 0; i < V; i++) if (!is_finite(r[i])) return n * V + i;
    }
    max[n] = m;
  }
  return -1;
}

/*
 * lse[n] = logsumexp_v z[n, v] scale = max_n scale + log sum_v exp((z[n, v] - max_n) scale), scale > 0; the row maxima
 * from `given` (scan_rows') when not 0
 */
EXPORT void logsumexp_rows(const float* z, double* lse, float scale, int rows, int V, const float* given) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float m = given ? given[n] : row_max(zr, V);
    /* scale 1 (the common case) spelled out, so that the multiply compiles away */
    double s = scale == 1.0f ? sumexp_1(zr, V, m) : sumexp_scaled(zr, V, m, scale);
    lse[n] = (double)m * scale + log_f64(s);
  }
}

/*
 * e[n, v] = exp(z[n, v] - max_n), max[n] = max_v z[n, v], sum[n] = sum_v e[n, v]  (so lse = max + log sum); with
 * given != 0, max[n] holds the row maxima already (scan_rows') and is read
 */
EXPORT void exp_rows(const float* z, float* e, float* max, double* sum, int rows, int V, int given) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float m = given ? max[n] : row_max(zr, V);
    max[n] = m;
    sum[n] = sumexp_store(zr, V, m, e + (long)n * V);
  }
}

/* p[n, v] = softmax(z[n, :])_v and lse[n] = logsumexp_v z[n, v] */
EXPORT void softmax_rows(const float* z, float* p, double* lse, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* pr = p + (long)n * V;
    float m = row_max(zr, V);
    double s = sumexp_store(zr, V, m, pr);
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
 * to the lower id (as topKRows in lib/probs/topk.ts). Inputs must be finite.
 *   k <= SMALL_K: a floor under the row's k-th largest value first (topk_floor: one pass of block maxima, which also
 *                 gives the row maximum); then one scan 16 values at a time collects the values at or above it as
 *                 candidates, about k + k/5 on rows of random values (39 for k = 32 of 4096 Gaussians), which are
 *                 ranked at the end (rank_candidates). With a logsumexp asked, the same scan (the row in cache after
 *                 the floor's pass) sums the exponentials.
 *   larger k:     the row read in id order into a min-heap of the best k so far (root = the lowest-ranked entry; only
 *                 lanes above it are offered, 16 at a time), O(log k) per replacement, heap-sorted at the end (a
 *                 later id never wins a tie, so "above the lowest" is exact).
 */

#define SMALL_K 64
/* blocks per kept entry for the floor */
#define FLOOR_BLOCKS 4
/* bisection steps of the floor */
#define FLOOR_HALVINGS 6

static inline int ranks_below(float va, int ia, float vb, int ib) {
  return va < vb || (va == vb && ia > ib);
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

/* the lanes of x0..x3 (16 values) at or above th (ge) or above it, as bits (lowest id = lowest bit); 0 when none */
static inline __attribute__((always_inline)) unsigned above16v(v128_t x0, v128_t x1, v128_t x2, v128_t x3, float th, int ge) {
  const v128_t t = splat(th);
  v128_t a0 = ge ? wasm_f32x4_ge(x0, t) : wasm_f32x4_gt(x0, t), a1 = ge ? wasm_f32x4_ge(x1, t) : wasm_f32x4_gt(x1, t);
  v128_t a2 = ge ? wasm_f32x4_ge(x2, t) : wasm_f32x4_gt(x2, t), a3 = ge ? wasm_f32x4_ge(x3, t) : wasm_f32x4_gt(x3, t);
  if (!wasm_v128_any_true(wasm_v128_or(wasm_v128_or(a0, a1), wasm_v128_or(a2, a3)))) return 0;
  return wasm_i32x4_bitmask(a0) | wasm_i32x4_bitmask(a1) << 4 | wasm_i32x4_bitmask(a2) << 8 | wasm_i32x4_bitmask(a3) << 12;
}

static inline unsigned above16(const float* zr, int v, float th, int ge) {
  return above16v(wasm_v128_load(zr + v), wasm_v128_load(zr + v + 4), wasm_v128_load(zr + v + 8), wasm_v128_load(zr + v + 12), th, ge);
}

/* how many of bm[0 .. m) (m a multiple of 4) are >= x */
static inline int count_ge(const float* bm, int m, float x) {
  const v128_t t = splat(x);
  v128_t c0 = wasm_i32x4_splat(0), c1 = c0;
  int i = 0;
  for (; i + 8 <= m; i += 8) { /* true lanes are -1 */
    c0 = wasm_i32x4_sub(c0, wasm_f32x4_ge(wasm_v128_load(bm + i), t));
    c1 = wasm_i32x4_sub(c1, wasm_f32x4_ge(wasm_v128_load(bm + i + 4), t));
  }
  if (i < m) c0 = wasm_i32x4_sub(c0, wasm_f32x4_ge(wasm_v128_load(bm + i), t));
  c0 = wasm_i32x4_add(c0, c1);
  return wasm_i32x4_extract_lane(c0, 0) + wasm_i32x4_extract_lane(c0, 1) + wasm_i32x4_extract_lane(c0, 2) + wasm_i32x4_extract_lane(c0, 3);
}

/* the lane-wise maximum of `count` >= 1 vectors from p */
static inline v128_t lanes_max(const float* p, int count) {
  v128_t m0 = wasm_v128_load(p), m1 = m0;
  int i = 1;
  for (; i + 2 <= count; i += 2) {
    m0 = wasm_f32x4_pmax(m0, wasm_v128_load(p + 4 * i));
    m1 = wasm_f32x4_pmax(m1, wasm_v128_load(p + 4 * i + 4));
  }
  if (i < count) m0 = wasm_f32x4_pmax(m0, wasm_v128_load(p + 4 * i));
  return wasm_f32x4_pmax(m0, m1);
}

/*
 * A floor of the row's k-th largest value (k <= V), and the row maximum (*max). Cut the row into m = min(4k, V)
 * blocks: if at least k block maxima are >= f, then k distinct entries are, so the k-th largest value is >= f and
 * nothing below f can make the top k. f starts at the smallest block maximum (m >= k of them are >= it) and is raised
 * by bisection towards the k-th largest block maximum, keeping "at least k block maxima >= f" true. With 4k blocks the
 * top k entries mostly sit in different blocks, so f is near the (k + k/8)-th largest value (six halvings leave a few
 * more above it). Blocks of a multiple of 4 values are reduced 4 at a time (lane maxima, then a 4 x 4 transpose).
 */
NOINLINE static float topk_floor(const float* zr, int V, int k, float* max) {
  float bm[FLOOR_BLOCKS * SMALL_K + 8]; /* (filled in code: an initialiser would become a data segment) */
  int m = FLOOR_BLOCKS * k < V ? FLOOR_BLOCKS * k : V;
  int size = V / m;
  int b = 0;
  if ((size & 3) == 0) {
    const int vecs = size >> 2;
    for (; b + 4 <= m - 1; b += 4) { /* (the last block, which takes the remainder of the row, is left to row_max) */
      const float* p = zr + (long)b * size;
      v128_t a = lanes_max(p, vecs), c = lanes_max(p + size, vecs), d = lanes_max(p + 2 * size, vecs), e = lanes_max(p + 3 * size, vecs);
      /* [max a, max c, max d, max e] */
      v128_t ac = wasm_f32x4_pmax(wasm_i32x4_shuffle(a, c, 0, 4, 1, 5), wasm_i32x4_shuffle(a, c, 2, 6, 3, 7));
      v128_t de = wasm_f32x4_pmax(wasm_i32x4_shuffle(d, e, 0, 4, 1, 5), wasm_i32x4_shuffle(d, e, 2, 6, 3, 7));
      wasm_v128_store(bm + b, wasm_f32x4_pmax(wasm_i32x4_shuffle(ac, de, 0, 1, 4, 5), wasm_i32x4_shuffle(ac, de, 2, 3, 6, 7)));
    }
  }
  for (; b < m; b++) {
    int from = b * size, to = b == m - 1 ? V : from + size;
    bm[b] = row_max(zr + from, to - from);
  }
  int padded = (m + 3) & ~3;
  for (b = m; b < padded; b++) bm[b] = bm[0]; /* a repeat: counted alike by min, max and (below) as an extra >= */
  v128_t lo4 = wasm_v128_load(bm), hi4 = lo4;
  for (b = 4; b < padded; b += 4) {
    lo4 = wasm_f32x4_pmin(lo4, wasm_v128_load(bm + b));
    hi4 = wasm_f32x4_pmax(hi4, wasm_v128_load(bm + b));
  }
  float lo = -hmax(wasm_f32x4_neg(lo4)), hi = hmax(hi4);
  *max = hi;
  /* the repeats of bm[0] count once per padding lane: ask for that many more */
  int need = k + (padded - m);
  /* invariant: count_ge(lo) >= need; six halvings bring f to within 1/64 of the block maxima's range of the best */
  for (int it = 0; it < FLOOR_HALVINGS; it++) {
    float mid = lo + 0.5f * (hi - lo);
    if (!(mid > lo && mid < hi)) break;
    if (count_ge(bm, padded, mid) >= need) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* candidates a row's scan collects before they are ranked: room for several times k (a row of many values tied at the
   floor fills it; it is then ranked and cut back to the best k, and the scan goes on) */
#define CANDIDATES (4 * SMALL_K + 64)

/*
 * The best k of the n candidates cv / ci (n >= k, distinct ids, finite values) into kv / ki, best first: each
 * candidate's rank is the number that rank above it (a larger value, or the same value and a lower id), counted 4
 * at a time, and it goes to that position if it is below k. Ranks are distinct (the order is total), so the k
 * positions are filled once each. Pads cv / ci up to a multiple of 4 with (-Infinity, id -1): a pad equals only pads.
 */
static void rank_candidates(float* cv, int* ci, int n, int k, float* kv, int* ki) {
  int padded = (n + 3) & ~3;
  for (int j = n; j < padded; j++) {
    cv[j] = -__builtin_inff();
    ci[j] = -1;
  }
  for (int i = 0; i < n; i++) {
    const v128_t x = wasm_f32x4_splat(cv[i]), id = wasm_i32x4_splat(ci[i]);
    v128_t c = wasm_i32x4_splat(0);
    for (int j = 0; j < padded; j += 4) { /* true lanes are -1 */
      v128_t v = wasm_v128_load(cv + j), d = wasm_v128_load(ci + j);
      c = wasm_i32x4_add(c, wasm_v128_or(wasm_f32x4_gt(v, x), wasm_v128_and(wasm_f32x4_eq(v, x), wasm_i32x4_lt(d, id))));
    }
    int rank = -(wasm_i32x4_extract_lane(c, 0) + wasm_i32x4_extract_lane(c, 1) + wasm_i32x4_extract_lane(c, 2) + wasm_i32x4_extract_lane(c, 3));
    if (rank < k) {
      kv[rank] = cv[i];
      ki[rank] = ci[i];
    }
  }
}

/*
 * One row's top k, k <= SMALL_K, into kv / ki, descending; with want_lse also returns sum_v exp((z_v - max) scale),
 * max = the row maximum (the floor's pass takes it), from the same pass: 16 values per step, first the threshold test
 * (their maximum against the floor, then the lanes; the few at or above it are collected as candidates), then their
 * exponentials. The candidates are ranked at the end (rank_candidates): offering each to a sorted list as it came
 * cost ~100 cycles per offer in branches and shifts, which dominated the pass.
 */
static inline __attribute__((always_inline)) double row_topk_list(const float* zr, int V, int k, float* kv, int* ki, int want_lse, float scale) {
  float cv[CANDIDATES + 16];
  int ci[CANDIDATES + 16];
  float max;
  float floor = topk_floor(zr, V, k, &max);
  int n = 0;
  const v128_t sh = splat(max), sc = splat(scale);
  v128_t t = splat(floor);
  double total = 0;
  int v = 0;
  while (v + 16 <= V) {
    v128_t s0 = splat(0), s1 = splat(0), s2 = splat(0), s3 = splat(0);
    int stop = v + FLUSH < V ? v + FLUSH : V;
    for (; v + 16 <= stop; v += 16) {
      v128_t x0 = wasm_v128_load(zr + v), x1 = wasm_v128_load(zr + v + 4), x2 = wasm_v128_load(zr + v + 8), x3 = wasm_v128_load(zr + v + 12);
      if (wasm_v128_any_true(wasm_f32x4_ge(wasm_f32x4_pmax(wasm_f32x4_pmax(x0, x1), wasm_f32x4_pmax(x2, x3)), t))) {
        unsigned bits = wasm_i32x4_bitmask(wasm_f32x4_ge(x0, t)) | wasm_i32x4_bitmask(wasm_f32x4_ge(x1, t)) << 4 |
                        wasm_i32x4_bitmask(wasm_f32x4_ge(x2, t)) << 8 | wasm_i32x4_bitmask(wasm_f32x4_ge(x3, t)) << 12;
        for (; bits; bits &= bits - 1) {
          int u = v + __builtin_ctz(bits);
          cv[n] = zr[u];
          ci[n++] = u;
        }
        if (n > CANDIDATES) { /* full (ties at the floor): keep the best k; only values above the k-th can still enter */
          rank_candidates(cv, ci, n, k, kv, ki);
          for (int j = 0; j < k; j++) {
            cv[j] = kv[j];
            ci[j] = ki[j];
          }
          n = k;
          floor = kv[k - 1];
          t = splat(floor);
        }
      }
      if (want_lse) {
        s0 = wasm_f32x4_add(s0, exp_shifted(x0, sh, sc, scale, 0));
        s1 = wasm_f32x4_add(s1, exp_shifted(x1, sh, sc, scale, 0));
        s2 = wasm_f32x4_add(s2, exp_shifted(x2, sh, sc, scale, 0));
        s3 = wasm_f32x4_add(s3, exp_shifted(x3, sh, sc, scale, 0));
      }
    }
    if (want_lse) total += hsum(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)));
  }
  for (int u = v; u < V; u++) {
    if (zr[u] >= floor) {
      cv[n] = zr[u];
      ci[n++] = u;
    }
  }
  rank_candidates(cv, ci, n, k, kv, ki);
  for (; want_lse && v < V; v += 4) {
    int count = V - v < 4 ? V - v : 4;
    v128_t e = exp_shifted(count == 4 ? wasm_v128_load(zr + v) : load_tail(zr + v, count, -3.4e38f), sh, sc, scale, 0);
    total += count == 4 ? hsum(e) : hsum_first(e, count);
  }
  return total;
}

/* row_topk_list's specialisations, each out of line: no logsumexp; a logsumexp at scale 1; at any scale */
NOINLINE static double topk_list_only(const float* zr, int V, int k, float* kv, int* ki) { return row_topk_list(zr, V, k, kv, ki, 0, 1.0f); }
NOINLINE static double topk_list_lse_1(const float* zr, int V, int k, float* kv, int* ki) { return row_topk_list(zr, V, k, kv, ki, 1, 1.0f); }
NOINLINE static double topk_list_lse_scaled(const float* zr, int V, int k, float* kv, int* ki, float scale) {
  return row_topk_list(zr, V, k, kv, ki, 1, scale);
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
 * no max pass of its own (for k <= SMALL_K not even an extra pass: the exponentials are summed in the scan).
 */
EXPORT void topk_rows(const float* z, int* ids, float* vals, double* lse, float scale, int rows, int V, int k) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* kv = vals + (long)n * k;
    int* ki = ids + (long)n * k;
    if (k <= SMALL_K) {
      if (!lse) topk_list_only(zr, V, k, kv, ki);
      else {
        /* scale 1 (the common case) spelled out, so that the multiply compiles away */
        double s = scale == 1.0f ? topk_list_lse_1(zr, V, k, kv, ki) : topk_list_lse_scaled(zr, V, k, kv, ki, scale);
        lse[n] = (double)kv[0] * scale + log_f64(s);
      }
    } else {
      row_topk_heap(zr, V, k, kv, ki);
      if (lse) {
        double s = scale == 1.0f ? sumexp_1(zr, V, kv[0]) : sumexp_scaled(zr, V, kv[0], scale);
        lse[n] = (double)kv[0] * scale + log_f64(s);
      }
    }
  }
}

/* out[n, c] = z[n, ids[n, c]] for c < cols (ids in [0, V), checked by the caller): the few entries a row kernel needs,
   read with many loads in flight */
EXPORT void gather_rows(const float* z, const int* ids, float* out, int rows, int V, int cols) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    const int* ir = ids + (long)n * cols;
    float* o = out + (long)n * cols;
    for (int c = 0; c < cols; c++) o[c] = zr[ir[c]];
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
  float lz = (float)log_f64(sumexp_exact(zr, V, mz, inv_tau));
  float lt = (float)log_f64(sumexp_exact(tr, V, mt, inv_tau));
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

/* jsd_row for beta = 0, beta = 1 and in between, each out of line */
NOINLINE static void jsd_row_forward(const float* zr, const float* tr, float w, float inv_tau, float beta, float* loss, float* entropy, float* gr, int V) {
  jsd_row(zr, tr, w, inv_tau, beta, 0, loss, entropy, gr, V);
}
NOINLINE static void jsd_row_reverse(const float* zr, const float* tr, float w, float inv_tau, float beta, float* loss, float* entropy, float* gr, int V) {
  jsd_row(zr, tr, w, inv_tau, beta, 1, loss, entropy, gr, V);
}
NOINLINE static void jsd_row_mixed(const float* zr, const float* tr, float w, float inv_tau, float beta, float* loss, float* entropy, float* gr, int V) {
  jsd_row(zr, tr, w, inv_tau, beta, 2, loss, entropy, gr, V);
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
    if (mode == 0) jsd_row_forward(zr, tr, w[n], inv_tau, beta, loss + n, entropy + n, gr, V);
    else if (mode == 1) jsd_row_reverse(zr, tr, w[n], inv_tau, beta, loss + n, entropy + n, gr, V);
    else jsd_row_mixed(zr, tr, w[n], inv_tau, beta, loss + n, entropy + n, gr, V);
  }
}
