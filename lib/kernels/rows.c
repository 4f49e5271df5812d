/*
 * Row kernels for the fused objectives: the O(N x V) passes over logits, in WebAssembly SIMD (f32x4).
 * Compiled by lib/kernels/build.sh (clang --target=wasm32 -msimd128) into rows.wasm, which is committed;
 * lib/kernels/index.ts loads it and falls back to the identical plain-JS kernels in js.ts.
 *
 * Conventions: row-major [rows, V] float32 arrays; per-row statistics in float64. No libc: exp and log are
 * Cephes-style polynomials (expf/logf, about 2 ulp in float32), evaluated 4 lanes at a time.
 */
#include <wasm_simd128.h>

#define EXPORT __attribute__((visibility("default")))

static inline v128_t vexp(v128_t x) {
  x = wasm_f32x4_max(wasm_f32x4_min(x, wasm_f32x4_splat(88.3762626647949f)), wasm_f32x4_splat(-103.0f));
  /* exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 (split into hi + lo for accuracy) */
  v128_t fx = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(fx, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(fx, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t r2 = wasm_f32x4_mul(r, r);
  v128_t y = wasm_f32x4_splat(1.9875691500E-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.3981999507E-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(8.3334519073E-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(4.1665795894E-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(1.6666665459E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), wasm_f32x4_splat(5.0000001201E-1f));
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(y, r2), r), wasm_f32x4_splat(1.0f));
  /* 2^n in two halves so that n down to -149 (subnormal results) stays representable */
  v128_t n = wasm_i32x4_trunc_sat_f32x4(fx);
  v128_t n1 = wasm_i32x4_shr(n, 1);
  v128_t n2 = wasm_i32x4_sub(n, n1);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, wasm_i32x4_splat(127)), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(wasm_f32x4_mul(y, s1), s2);
}

/* log(x) for x > 0 (x = 0 gives about -104: callers multiply it by a probability that is then 0) */
static inline v128_t vlog(v128_t x) {
  x = wasm_f32x4_max(x, wasm_f32x4_splat(1.17549435e-38f));
  v128_t bits = x;
  v128_t e = wasm_i32x4_sub(wasm_u32x4_shr(bits, 23), wasm_i32x4_splat(127));
  v128_t m = wasm_v128_or(wasm_v128_and(bits, wasm_i32x4_splat(0x007fffff)), wasm_i32x4_splat(0x3f800000)); /* [1, 2) */
  v128_t ef = wasm_f32x4_convert_i32x4(e);
  /* if m > sqrt(2): m /= 2, e += 1  -> m in [sqrt(2)/2, sqrt(2)) */
  v128_t big = wasm_f32x4_gt(m, wasm_f32x4_splat(1.41421356237f));
  m = wasm_v128_bitselect(wasm_f32x4_mul(m, wasm_f32x4_splat(0.5f)), m, big);
  ef = wasm_v128_bitselect(wasm_f32x4_add(ef, wasm_f32x4_splat(1.0f)), ef, big);
  v128_t f = wasm_f32x4_sub(m, wasm_f32x4_splat(1.0f));
  v128_t f2 = wasm_f32x4_mul(f, f);
  v128_t y = wasm_f32x4_splat(7.0376836292E-2f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(-1.1514610310E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(1.1676998740E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(-1.2420140846E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(1.4249322787E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(-1.6668057665E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(2.0000714765E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(-2.4999993993E-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, f), wasm_f32x4_splat(3.3333331174E-1f));
  y = wasm_f32x4_mul(wasm_f32x4_mul(y, f), f2);
  y = wasm_f32x4_add(y, wasm_f32x4_mul(ef, wasm_f32x4_splat(-2.12194440e-4f)));
  y = wasm_f32x4_sub(y, wasm_f32x4_mul(f2, wasm_f32x4_splat(0.5f)));
  return wasm_f32x4_add(wasm_f32x4_add(f, y), wasm_f32x4_mul(ef, wasm_f32x4_splat(0.693359375f)));
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

/* lanes of the last partial vector: load with -inf padding for max, 0 mask for sums */
static inline v128_t load_tail(const float* p, int count, float pad) {
  float buf[4] = {pad, pad, pad, pad};
  for (int i = 0; i < count; i++) buf[i] = p[i];
  return wasm_v128_load(buf);
}

static inline float row_max(const float* z, int V) {
  v128_t m = wasm_f32x4_splat(-3.4e38f);
  int v = 0;
  for (; v + 4 <= V; v += 4) m = wasm_f32x4_max(m, wasm_v128_load(z + v));
  if (v < V) m = wasm_f32x4_max(m, load_tail(z + v, V - v, -3.4e38f));
  return hmax(m);
}

/* Kahan-free float64 accumulation of float32 lane partials every 4096 elements keeps sums accurate. */
static double row_sumexp(const float* z, int V, float shift, float* out) {
  double total = 0;
  v128_t sh = wasm_f32x4_splat(shift);
  int v = 0;
  while (v + 4 <= V) {
    v128_t s = wasm_f32x4_splat(0);
    int stop = v + 4096 < V ? v + 4096 : V;
    for (; v + 4 <= stop; v += 4) {
      v128_t e = vexp(wasm_f32x4_sub(wasm_v128_load(z + v), sh));
      if (out) wasm_v128_store(out + v, e);
      s = wasm_f32x4_add(s, e);
    }
    total += hsum(s);
  }
  if (v < V) {
    float buf[4];
    v128_t e = vexp(wasm_f32x4_sub(load_tail(z + v, V - v, -3.4e38f), sh));
    wasm_v128_store(buf, e);
    for (int i = 0; i < V - v; i++) {
      if (out) out[v + i] = buf[i];
      total += buf[i];
    }
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

/* lse[n] = logsumexp_v z[n, v] */
EXPORT void logsumexp_rows(const float* z, double* lse, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float m = row_max(zr, V);
    double s = row_sumexp(zr, V, m, 0);
    lse[n] = (double)m + log_f64(s);
  }
}

/* p[n, v] = softmax(z[n, :])_v and lse[n] = logsumexp_v z[n, v] */
EXPORT void softmax_rows(const float* z, float* p, double* lse, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* pr = p + (long)n * V;
    float m = row_max(zr, V);
    double s = row_sumexp(zr, V, m, pr);
    float inv = (float)(1.0 / s);
    v128_t iv = wasm_f32x4_splat(inv);
    int v = 0;
    for (; v + 4 <= V; v += 4) wasm_v128_store(pr + v, wasm_f32x4_mul(wasm_v128_load(pr + v), iv));
    for (; v < V; v++) pr[v] *= inv;
    lse[n] = (double)m + log_f64(s);
  }
}

/* g[n, v] = c[n] * p[n, v] */
EXPORT void scale_rows(const float* p, const float* c, float* g, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* pr = p + (long)n * V;
    float* gr = g + (long)n * V;
    v128_t cv = wasm_f32x4_splat(c[n]);
    int v = 0;
    for (; v + 4 <= V; v += 4) wasm_v128_store(gr + v, wasm_f32x4_mul(wasm_v128_load(pr + v), cv));
    for (; v < V; v++) gr[v] = c[n] * pr[v];
  }
}

/*
 * Full-vocabulary generalised JSD(beta), 0 < beta < 1 (GKD Eq. 1; Liger's gradient):
 *   X = log pS, Y = log pT, log M = log(beta pT + (1 - beta) pS)
 *   loss_n = beta sum_v pT (Y - log M) + (1 - beta) sum_v pS (X - log M)
 *   dloss/dX_v = (1 - beta) pS_v (X_v - log M_v);   dz_v = dX_v - pS_v sum_u dX_u
 * logS / logT: log-softmax rows (precomputed by the caller from the row statistics); g receives dz.
 */
EXPORT void jsd_rows(const float* logS, const float* logT, float beta, float* loss, float* g, int rows, int V) {
  v128_t b = wasm_f32x4_splat(beta), nb = wasm_f32x4_splat(1.0f - beta);
  for (int n = 0; n < rows; n++) {
    const float* xs = logS + (long)n * V;
    const float* yt = logT + (long)n * V;
    float* gr = g + (long)n * V;
    v128_t acc = wasm_f32x4_splat(0), gsum = wasm_f32x4_splat(0);
    double total = 0, gtotal = 0;
    int v = 0;
    for (; v + 4 <= V; v += 4) {
      v128_t x = wasm_v128_load(xs + v), y = wasm_v128_load(yt + v);
      v128_t ps = vexp(x), pt = vexp(y);
      v128_t lm = vlog(wasm_f32x4_add(wasm_f32x4_mul(b, pt), wasm_f32x4_mul(nb, ps)));
      v128_t term = wasm_f32x4_add(wasm_f32x4_mul(b, wasm_f32x4_mul(pt, wasm_f32x4_sub(y, lm))),
                                   wasm_f32x4_mul(nb, wasm_f32x4_mul(ps, wasm_f32x4_sub(x, lm))));
      v128_t dx = wasm_f32x4_mul(nb, wasm_f32x4_mul(ps, wasm_f32x4_sub(x, lm)));
      wasm_v128_store(gr + v, dx);
      acc = wasm_f32x4_add(acc, term);
      gsum = wasm_f32x4_add(gsum, dx);
      if ((v & 4095) == 4092) { total += hsum(acc); gtotal += hsum(gsum); acc = wasm_f32x4_splat(0); gsum = wasm_f32x4_splat(0); }
    }
    total += hsum(acc);
    gtotal += hsum(gsum);
    if (v < V) {
      float bx[4], by[4], bo[4], bd[4];
      for (int i = 0; i < 4; i++) { bx[i] = i < V - v ? xs[v + i] : -200.0f; by[i] = i < V - v ? yt[v + i] : -200.0f; }
      v128_t x = wasm_v128_load(bx), y = wasm_v128_load(by);
      v128_t ps = vexp(x), pt = vexp(y);
      v128_t lm = vlog(wasm_f32x4_add(wasm_f32x4_mul(b, pt), wasm_f32x4_mul(nb, ps)));
      wasm_v128_store(bo, wasm_f32x4_add(wasm_f32x4_mul(b, wasm_f32x4_mul(pt, wasm_f32x4_sub(y, lm))),
                                         wasm_f32x4_mul(nb, wasm_f32x4_mul(ps, wasm_f32x4_sub(x, lm)))));
      wasm_v128_store(bd, wasm_f32x4_mul(nb, wasm_f32x4_mul(ps, wasm_f32x4_sub(x, lm))));
      for (int i = 0; i < V - v; i++) { total += bo[i]; gtotal += bd[i]; gr[v + i] = bd[i]; }
    }
    loss[n] = (float)total;
    /* dz_v = dX_v - pS_v * sum_u dX_u */
    v128_t gs = wasm_f32x4_splat((float)gtotal);
    v = 0;
    for (; v + 4 <= V; v += 4) {
      v128_t ps = vexp(wasm_v128_load(xs + v));
      wasm_v128_store(gr + v, wasm_f32x4_sub(wasm_v128_load(gr + v), wasm_f32x4_mul(ps, gs)));
    }
    for (; v < V; v++) {
      float buf[4];
      wasm_v128_store(buf, vexp(wasm_f32x4_splat(xs[v])));
      gr[v] -= buf[0] * (float)gtotal;
    }
  }
}

/* out[n, v] = z[n, v] - shift[n]  (log-softmax from row statistics) */
EXPORT void shift_rows(const float* z, const double* shift, float* out, int rows, int V) {
  for (int n = 0; n < rows; n++) {
    const float* zr = z + (long)n * V;
    float* o = out + (long)n * V;
    v128_t s = wasm_f32x4_splat((float)shift[n]);
    int v = 0;
    for (; v + 4 <= V; v += 4) wasm_v128_store(o + v, wasm_f32x4_sub(wasm_v128_load(zr + v), s));
    for (; v < V; v++) o[v] = zr[v] - (float)shift[n];
  }
}
