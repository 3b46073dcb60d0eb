/*
 * test_flow.c: whole flows (MODEL.md section 6). Densities integrate to
 * one, samples match exp(log_prob), inverse(forward(x)) = x, log p is
 * continuous along lines through x-space, sampling is exact and
 * reproducible, values stay finite over many random parameter draws, and
 * the API refuses bad input without touching anything.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static rad_flow *new_flow(int kind, size_t d, size_t L, size_t H, size_t G, uint64_t seed,
                          double scale) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(kind, d, L, H, G, seed, &F), RAD_OK);
  if (scale > 0) tu_perturb_flow(F, scale, seed + 1000);
  return F;
}

/* ---- structure ---------------------------------------------------------- */

START_TEST(test_flow_shape) {
  rad_flow *F = new_flow(RAD_LAYER_RAD, 3, 4, 8, 6, 1, 0);
  ck_assert_uint_eq(rad_flow_dim(F), 3);
  ck_assert_uint_eq(rad_flow_num_layers(F), 4);
  /* default masks alternate: layer 0 transforms dim 1, layer 1 dims 0, 2 */
  const uint8_t want[2][3] = {{0, 1, 0}, {1, 0, 1}};
  size_t labels = 0, params = 0;
  for (size_t l = 0; l < 4; l++) {
    rad_coupling *c;
    uint8_t m[3];
    ck_assert_int_eq(rad_flow_get_coupling(F, l, &c), RAD_OK);
    ck_assert_int_eq(rad_coupling_get_mask(c, m, 3), RAD_OK);
    ck_assert_mem_eq(m, want[l % 2], 3);
    size_t d2 = m[0] + m[1] + m[2], d1 = 3 - d2;
    ck_assert_uint_eq(rad_coupling_num_labels(c), d2);
    /* h: d1 -> 8 -> 10 d2; c1, c2; g: 3 -> 6 -> 3 d2 */
    size_t np = 8 * d1 + 8 + 10 * d2 * 8 + 10 * d2 + 2 * d2 + 6 * 3 + 6 + 3 * d2 * 6 + 3 * d2;
    ck_assert_uint_eq(rad_coupling_num_params(c), np);
    labels += d2;
    params += np;
    rad_coupling_free(c);
  }
  ck_assert_uint_eq(rad_flow_num_labels(F), labels);
  ck_assert_uint_eq(rad_flow_num_params(F), params);
  rad_flow_free(F);
  /* affine: no labels; d = 1: every default mask is all ones */
  F = new_flow(RAD_LAYER_AFFINE, 2, 3, 5, 0, 1, 0);
  ck_assert_uint_eq(rad_flow_num_labels(F), 0);
  ck_assert_uint_eq(rad_flow_num_params(F), 3 * (5 * 1 + 5 + 2 * 5 + 2 + 1));
  rad_flow_free(F);
  F = new_flow(RAD_LAYER_RAD, 1, 2, 4, 3, 1, 0);
  for (size_t l = 0; l < 2; l++) {
    rad_coupling *c;
    uint8_t m;
    ck_assert_int_eq(rad_flow_get_coupling(F, l, &c), RAD_OK);
    ck_assert_int_eq(rad_coupling_get_mask(c, &m, 1), RAD_OK);
    ck_assert_uint_eq(m, 1);
    rad_coupling_free(c);
  }
  ck_assert_uint_eq(rad_flow_num_labels(F), 2);
  rad_flow_free(F);
}
END_TEST

/* A new flow is the paper's initial model: s = t = 0, l = 0 in every layer,
   so each RAD layer is the fold with alpha = 3 and p(k|z) uniform on the
   inner pieces; an affine flow starts as the identity. */
START_TEST(test_flow_initial_values) {
  rad_flow *F = new_flow(RAD_LAYER_AFFINE, 2, 4, 8, 0, 3, 0);
  float x[4] = {0.3f, -1.2f, 2.0f, 0.5f}, lp[2], z[4];
  ck_assert_int_eq(rad_flow_forward(F, 2, x, z, NULL, lp), RAD_OK);
  for (int i = 0; i < 4; i++) ck_assert_float_eq_tol(z[i], x[i], 1e-6);
  for (int i = 0; i < 2; i++) {
    double r2 = (double)x[2 * i] * x[2 * i] + (double)x[2 * i + 1] * x[2 * i + 1];
    ck_assert_double_eq_tol(lp[i], -0.5 * r2 - log(2 * M_PI), 1e-5);
  }
  rad_flow_free(F);
  /* one RAD layer in d = 1: x = 0 is piece 2, z = 1 - 3 (0 + 1/3) = 0,
     log p = log N(0) + log 3 + log(1/3) = log N(0) */
  F = new_flow(RAD_LAYER_RAD, 1, 1, 4, 4, 3, 0);
  float x1[3] = {0.0f, -2.0f / 3.0f, 5.0f}, z1[3], l1[3];
  int32_t k1[3];
  ck_assert_int_eq(rad_flow_forward(F, 3, x1, z1, k1, l1), RAD_OK);
  ck_assert_float_eq_tol(z1[0], 0.0f, 1e-6);
  ck_assert_int_eq(k1[0], 2);
  ck_assert_double_eq_tol(l1[0], -0.5 * log(2 * M_PI), 1e-5);
  ck_assert_float_eq_tol(z1[1], 0.0f, 1e-6);
  ck_assert_int_eq(k1[1], 1);
  /* x = 5 is the right outer piece: z = 5, slope 1, no gating term */
  ck_assert_float_eq_tol(z1[2], 5.0f, 1e-5);
  ck_assert_int_eq(k1[2], 3);
  ck_assert_double_eq_tol(l1[2], -12.5 - 0.5 * log(2 * M_PI), 1e-4);
  rad_flow_free(F);
}
END_TEST

/* ---- exactness ---------------------------------------------------------- */

/* inverse(forward(x)) = x within 1e-4 (1 + |x|). Points are drawn from
   N(0, 1.5^2) for shallow flows; for the paper's depth, from the model
   itself. (A random 6-layer RAD flow can send an N(0, 1) point to
   |z| = 1e7, where float32 has no digits left for x: see
   docs/numerics.md. Points where the model puts its mass are the ones
   whose round trip matters, and those must come back.) */
static void roundtrip(int kind, size_t d, size_t L, uint64_t seed, int from_model,
                      double min_fraction) {
  rad_flow *F = new_flow(kind, d, L, 8, 8, seed, 0.25);
  const size_t n = 4000, nl = rad_flow_num_labels(F);
  float *x = malloc(n * d * sizeof(float)), *z = malloc(n * d * sizeof(float));
  float *x2 = malloc(n * d * sizeof(float)), *lp = malloc(n * sizeof(float));
  float *lp2 = malloc(n * sizeof(float));
  int32_t *k = malloc((n * nl + 1) * sizeof(int32_t));
  tu_rng r = {seed};
  if (from_model)
    ck_assert_int_eq(rad_flow_sample(F, seed, n, x, NULL, NULL), RAD_OK);
  else
    for (size_t i = 0; i < n * d; i++) x[i] = (float)(1.5 * tu_gauss(&r));
  ck_assert_int_eq(rad_flow_forward(F, n, x, z, k, lp), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(F, n, x, lp2), RAD_OK);
  ck_assert_mem_eq(lp, lp2, n * sizeof(float));
  ck_assert_int_eq(rad_flow_inverse(F, n, z, nl ? k : NULL, x2), RAD_OK);
  size_t good = 0;
  double worst = 0;
  for (size_t i = 0; i < n * d; i++) {
    double e = fabs((double)x2[i] - x[i]) / (1.0 + fabs(x[i]));
    good += e <= 1e-4;
    worst = fmax(worst, e);
  }
  printf("round trip %s d=%zu L=%zu (%s): %zu/%zu within 1e-4 (1+|x|), worst %.3g\n",
         kind == RAD_LAYER_RAD ? "RAD" : "affine", d, L, from_model ? "model samples" : "N(0, 1.5^2)",
         good, n * d, worst);
  fflush(stdout);
  ck_assert((double)good >= min_fraction * (double)(n * d));
  /* labels cover all three values */
  int seen[4] = {0};
  for (size_t i = 0; i < n * nl; i++) seen[k[i]]++;
  if (nl) ck_assert(seen[1] && seen[2] && seen[3]);
  free(x), free(z), free(x2), free(lp), free(lp2), free(k);
  rad_flow_free(F);
}

START_TEST(test_flow_roundtrip) {
  roundtrip(RAD_LAYER_RAD, 2, 2, 5, 0, 1.0);
  roundtrip(RAD_LAYER_RAD, 5, 2, 6, 0, 0.999);
  roundtrip(RAD_LAYER_RAD, 1, 3, 7, 0, 1.0);
  roundtrip(RAD_LAYER_AFFINE, 2, 6, 8, 0, 1.0);
  roundtrip(RAD_LAYER_AFFINE, 3, 4, 9, 0, 1.0);
  for (uint64_t seed = 20; seed < 24; seed++) roundtrip(RAD_LAYER_RAD, 2, 6, seed, 1, 0.999);
  roundtrip(RAD_LAYER_RAD, 5, 4, 10, 1, 0.999);
}
END_TEST

/* log p on a grid of cells over [-L, L]^2: its integral, and per-bin
   masses for a coarser histogram (bins x bins, each sub x sub cells). */
static double integrate(const rad_flow *F, double Lb, int bins, int sub, double *bin_mass) {
  const int G = bins * sub;
  const double h = 2 * Lb / G;
  float *xx = malloc((size_t)G * 2 * sizeof(float)), *ll = malloc((size_t)G * sizeof(float));
  double tot = 0.0;
  if (bin_mass) memset(bin_mass, 0, (size_t)bins * bins * sizeof(double));
  for (int a = 0; a < G; a++) {
    for (int b = 0; b < G; b++) {
      xx[2 * b] = (float)(-Lb + (a + 0.5) * h);
      xx[2 * b + 1] = (float)(-Lb + (b + 0.5) * h);
    }
    ck_assert_int_eq(rad_flow_log_prob(F, (size_t)G, xx, ll), RAD_OK);
    for (int b = 0; b < G; b++) {
      double m = exp((double)ll[b]) * h * h;
      tot += m;
      if (bin_mass) bin_mass[(a / sub) * bins + b / sub] += m;
    }
  }
  free(xx), free(ll);
  return tot;
}

/* Half-width of a centred square holding all but 1e-4 of n samples. */
static double mass_box(const float *xs, size_t n) {
  float *m = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) m[i] = fmaxf(fabsf(xs[2 * i]), fabsf(xs[2 * i + 1]));
  /* partial selection: the largest values */
  size_t keep = n / 10000 + 1;
  double lim = 0;
  for (size_t t = 0; t < keep; t++) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
      if (m[i] > m[best]) best = i;
    lim = m[best];
    m[best] = -1;
  }
  free(m);
  return lim;
}

/* exp(log_prob) integrates to 1 within 1%, and a histogram of 2e5
   samples on a 40x40 grid matches it: total variation within 1.25 times
   what an exact sampler shows. */
static void density_and_samples_b(int kind, size_t L, uint64_t seed, double bound) {
  rad_flow *F = new_flow(kind, 2, L, 8, 8, seed, 0.25);
  if (bound >= 0) ck_assert_int_eq(rad_flow_set_option(F, RAD_OPTION_LOGIT_BOUND, bound), RAD_OK);
  const size_t n = 200000;
  float *xs = malloc(n * 2 * sizeof(float));
  ck_assert_int_eq(rad_flow_sample(F, 1234, n, xs, NULL, NULL), RAD_OK);
  double Lb = 1.05 * mass_box(xs, n);
  const int bins = 40, sub = 25;
  double *pm = malloc((size_t)bins * bins * sizeof(double));
  double tot = integrate(F, Lb, bins, sub, pm);
  size_t out = 0;
  double *cnt = calloc((size_t)bins * bins, sizeof(double));
  for (size_t i = 0; i < n; i++) {
    int a = (int)floor((xs[2 * i] + Lb) / (2 * Lb) * bins), b = (int)floor((xs[2 * i + 1] + Lb) / (2 * Lb) * bins);
    if (a < 0 || b < 0 || a >= bins || b >= bins)
      out++;
    else
      cnt[a * bins + b] += 1;
  }
  double tv = 0.0, expect = 0.0;
  for (int c = 0; c <= bins * bins; c++) {
    double p = c < bins * bins ? pm[c] : fmax(0.0, 1.0 - tot);
    double f = (c < bins * bins ? cnt[c] : (double)out) / (double)n;
    tv += 0.5 * fabs(f - p);
    expect += 0.5 * sqrt(2.0 * p * (1 - p) / (M_PI * (double)n));
  }
  printf("%s flow L=%zu seed %d%s: box [-%.2f, %.2f]^2, integral %.5f, TV %.5f (exact sampler ~%.5f, ratio %.2f)\n",
         kind == RAD_LAYER_RAD ? "RAD" : "affine", L, (int)seed,
         bound < 0 ? "" : (bound == 0 ? " unclamped" : " B=30"), Lb, Lb, tot, tv, expect, tv / expect);
  ck_assert_msg(fabs(tot - 1.0) <= 0.01, "integral %g", tot);
  ck_assert_msg(tv <= 1.25 * expect, "TV %g vs exact-sampler %g", tv, expect);
  free(xs), free(pm), free(cnt);
  rad_flow_free(F);
}
static void density_and_samples(int kind, size_t L, uint64_t seed) {
  density_and_samples_b(kind, L, seed, -1.0);
}

/* RAD: two layers, so every coordinate is folded once. Deeper random RAD
   flows put mass out to |x| = 1e6 and beyond (slopes of up to e^12 per
   layer compound), which no grid resolves; these seeds keep 99.99% of the
   mass within |x| < 15, where a 1000 x 1000 grid does. */
START_TEST(test_flow_density_rad) {
  density_and_samples(RAD_LAYER_RAD, 2, 20);
  density_and_samples(RAD_LAYER_RAD, 2, 22);
  density_and_samples(RAD_LAYER_RAD, 2, 24);
  /* logits beyond the bounded fast path: unclamped, and a bound above 20
     (the sampler's general slope formulas) */
  density_and_samples_b(RAD_LAYER_RAD, 2, 20, 0.0);
  density_and_samples_b(RAD_LAYER_RAD, 2, 22, 30.0);
}
END_TEST
START_TEST(test_flow_density_affine) { density_and_samples(RAD_LAYER_AFFINE, 6, 22); }
END_TEST

/* log p along lines through x-space has no jumps (the paper's section
   3.2). Lines run through points sampled from the model, where it has its
   mass. Any step that changes log p by more than 0.05 is bisected down to
   float resolution, where a jump would survive and a steep but continuous
   change shrinks to about |score| |b - a|. The lines cross many fold
   boundaries (labels change along them), so the test has something to
   find. Steps where log p < -30 are left out: that deep in the tails of a
   random 6-layer flow, float32 noise in log p reaches 1e-2 (|z| near 40,
   shifts of the same size cancelling), see docs/numerics.md. */
START_TEST(test_flow_continuity) {
  rad_flow *F = new_flow(RAD_LAYER_RAD, 2, 6, 8, 8, 31, 0.25);
  const size_t nl = rad_flow_num_labels(F);
  tu_rng r = {3};
  const size_t N = 20001, lines = 10;
  float *x = malloc(N * 2 * sizeof(float)), *lp = malloc(N * sizeof(float)), *z = malloc(N * 2 * sizeof(float));
  float origin[2 * 10];
  int32_t *k = malloc(N * nl * sizeof(int32_t));
  ck_assert_int_eq(rad_flow_sample(F, 5, lines, origin, NULL, NULL), RAD_OK);
  int changes = 0, refined = 0;
  /* per line at most N - 1 steep steps: 6 floats each, then midpoints,
     their log p, the ends' scores */
  float *steps = malloc(N * 6 * sizeof(float)), *mid = malloc(N * 2 * sizeof(float));
  float *mid2 = malloc(N * 2 * sizeof(float)), *lmid = malloc(N * sizeof(float));
  float *sa = malloc(N * 2 * sizeof(float)), *sb = malloc(N * 2 * sizeof(float));
  unsigned char *active = malloc(N);
  for (size_t line = 0; line < lines; line++) {
    double ox = origin[2 * line], oy = origin[2 * line + 1], th = 2 * M_PI * tu_unif(&r);
    double dx = cos(th), dy = sin(th);
    for (size_t i = 0; i < N; i++) {
      double t = -2.0 + 4.0 * (double)i / (double)(N - 1);
      x[2 * i] = (float)(ox + t * dx);
      x[2 * i + 1] = (float)(oy + t * dy);
    }
    ck_assert_int_eq(rad_flow_forward(F, N, x, z, k, lp), RAD_OK);
    /* steep steps of this line: (a, b) endpoints and their log p */
    size_t ns = 0;
    for (size_t i = 1; i < N; i++) {
      if (lp[i] < -30.0f || lp[i - 1] < -30.0f) continue;
      if (memcmp(k + (i - 1) * nl, k + i * nl, nl * sizeof(int32_t))) changes++;
      if (fabsf(lp[i] - lp[i - 1]) <= 0.05f) continue;
      float *st = steps + 6 * ns++;
      st[0] = x[2 * i - 2], st[1] = x[2 * i - 1], st[2] = lp[i - 1];
      st[3] = x[2 * i], st[4] = x[2 * i + 1], st[5] = lp[i];
    }
    refined += (int)ns;
    /* bisect every step at once, keeping the half with the larger change,
       until its midpoint is one of its ends (at most 60 halvings) */
    for (int it = 0; it < 60; it++) {
      size_t nm = 0;
      for (size_t q = 0; q < ns; q++) {
        const float *st = steps + 6 * q;
        float m0 = 0.5f * (st[0] + st[3]), m1 = 0.5f * (st[1] + st[4]);
        active[q] = !((m0 == st[0] || m0 == st[3]) && (m1 == st[1] || m1 == st[4]));
        if (active[q]) mid[2 * nm] = m0, mid[2 * nm + 1] = m1, nm++;
      }
      if (nm == 0) break;
      ck_assert_int_eq(rad_flow_log_prob(F, nm, mid, lmid), RAD_OK);
      for (size_t q = 0, j = 0; q < ns; q++) {
        if (!active[q]) continue;
        float *st = steps + 6 * q;
        const float lm = lmid[j];
        if (fabsf(lm - st[2]) > fabsf(st[5] - lm))
          st[3] = mid[2 * j], st[4] = mid[2 * j + 1], st[5] = lm;
        else
          st[0] = mid[2 * j], st[1] = mid[2 * j + 1], st[2] = lm;
        j++;
      }
    }
    for (size_t q = 0; q < ns; q++) {
      const float *st = steps + 6 * q;
      mid[2 * q] = st[0], mid[2 * q + 1] = st[1];
      mid2[2 * q] = st[3], mid2[2 * q + 1] = st[4];
    }
    if (ns) {
      ck_assert_int_eq(rad_flow_score(F, ns, mid, sa, NULL), RAD_OK);
      ck_assert_int_eq(rad_flow_score(F, ns, mid2, sb, NULL), RAD_OK);
    }
    for (size_t q = 0; q < ns; q++) {
      const float *st = steps + 6 * q;
      double ddx = st[3] - st[0], ddy = st[4] - st[1];
      double allow = 1e-3 + 2.0 * fmax(fabs(sa[2 * q] * ddx + sa[2 * q + 1] * ddy),
                                       fabs(sb[2 * q] * ddx + sb[2 * q + 1] * ddy));
      ck_assert_msg(fabsf(st[5] - st[2]) < allow, "jump of %g at (%g, %g), allowed %g",
                    st[5] - st[2], st[0], st[1], allow);
    }
  }
  printf("continuity: %d label changes along the lines, %d steep steps bisected\n", changes, refined);
  ck_assert_int_gt(changes, 100);
  free(x), free(lp), free(z), free(k);
  free(steps), free(mid), free(mid2), free(lmid), free(sa), free(sb), free(active);
  rad_flow_free(F);
}
END_TEST

/* ---- sampling ----------------------------------------------------------- */

START_TEST(test_sample_reproducible) {
  rad_flow *F = new_flow(RAD_LAYER_RAD, 3, 4, 8, 8, 41, 0.25);
  const size_t n = 3000, d = 3, nl = rad_flow_num_labels(F);
  float *a = malloc(n * d * sizeof(float)), *b = malloc(n * d * sizeof(float));
  float *za = malloc(n * d * sizeof(float)), *zb = malloc(n * d * sizeof(float));
  int32_t *ka = malloc(n * nl * sizeof(int32_t)), *kb = malloc(n * nl * sizeof(int32_t));
  ck_assert_int_eq(rad_flow_sample(F, 7, n, a, za, ka), RAD_OK);
  ck_assert_int_eq(rad_flow_sample(F, 7, n, b, zb, kb), RAD_OK);
  ck_assert_mem_eq(a, b, n * d * sizeof(float));
  ck_assert_mem_eq(za, zb, n * d * sizeof(float));
  ck_assert_mem_eq(ka, kb, n * nl * sizeof(int32_t));
  /* sample i depends only on (seed, i): a short call and chunked calls
     reproduce the leading samples bit for bit */
  ck_assert_int_eq(rad_flow_sample(F, 7, 10, b, NULL, NULL), RAD_OK);
  ck_assert_mem_eq(a, b, 10 * d * sizeof(float));
  rad_workspace *ws;
  ck_assert_int_eq(rad_workspace_create(F, 17, &ws), RAD_OK);
  ck_assert_int_eq(rad_flow_sample_ws(F, ws, 7, n, b, zb, kb), RAD_OK);
  ck_assert_mem_eq(a, b, n * d * sizeof(float));
  ck_assert_mem_eq(ka, kb, n * nl * sizeof(int32_t));
  rad_workspace_free(ws);
  /* pieces: samples 1000 .. 2999 drawn on their own */
  ck_assert_int_eq(rad_flow_sample_at(F, 7, 1000, 2000, b, NULL, NULL), RAD_OK);
  ck_assert_mem_eq(a + 1000 * d, b, 2000 * d * sizeof(float));
  /* a different seed differs */
  ck_assert_int_eq(rad_flow_sample(F, 8, n, b, NULL, NULL), RAD_OK);
  size_t same = 0;
  for (size_t i = 0; i < n * d; i++) same += a[i] == b[i];
  ck_assert_uint_lt(same, n * d / 100);
  /* z is standard normal and x = inverse(z, k); forward recovers both */
  float *x2 = malloc(n * d * sizeof(float));
  ck_assert_int_eq(rad_flow_inverse(F, n, za, ka, x2), RAD_OK);
  for (size_t i = 0; i < n * d; i++) ck_assert(fabsf(x2[i] - a[i]) <= 1e-5f * (1 + fabsf(a[i])));
  ck_assert_int_eq(rad_flow_forward(F, n, a, zb, kb, NULL), RAD_OK);
  size_t kdiff = 0;
  for (size_t i = 0; i < n * nl; i++) kdiff += ka[i] != kb[i];
  ck_assert_uint_le(kdiff, n * nl / 1000); /* only at float ties of breakpoints */
  double m = 0, v = 0;
  for (size_t i = 0; i < n * d; i++) m += za[i], v += (double)za[i] * za[i];
  m /= (double)(n * d), v = v / (double)(n * d) - m * m;
  ck_assert(fabs(m) < 0.05 && fabs(v - 1) < 0.05);
  free(a), free(b), free(za), free(zb), free(ka), free(kb), free(x2);
  rad_flow_free(F);
}
END_TEST

/* Under valgrind (about 100 times slower) the long loop below takes 3
   draws instead of 30; make check runs all of them. */
static int under_valgrind(void) {
#ifdef RUNNING_ON_VALGRIND
  if (RUNNING_ON_VALGRIND) return 1;
#endif
  const char *pre = getenv("LD_PRELOAD");
  return pre && strstr(pre, "vgpreload") != NULL;
}

/* For 30 random parameter draws (scale 0.3) of the paper's RAD model,
   1e5 samples and their log-probabilities are all finite in float32. */
START_TEST(test_numerical_range) {
  const size_t n = 100000;
  float *x = malloc(n * 2 * sizeof(float)), *lp = malloc(n * sizeof(float));
  rad_workspace *ws = NULL;
  const int draws = under_valgrind() ? 3 : 30;
  for (int t = 0; t < draws; t++) {
    rad_flow *F = new_flow(RAD_LAYER_RAD, 2, 6, 8, 8, 500 + (uint64_t)t, 0.3);
    if (!ws) ck_assert_int_eq(rad_workspace_create(F, 4096, &ws), RAD_OK);
    ck_assert_int_eq(rad_flow_sample_ws(F, ws, (uint64_t)t, n, x, NULL, NULL), RAD_OK);
    ck_assert(tu_all_finite(x, n * 2));
    ck_assert_int_eq(rad_flow_log_prob_ws(F, ws, n, x, lp), RAD_OK);
    ck_assert_msg(tu_all_finite(lp, n), "draw %d: non-finite log p of a sample", t);
    rad_flow_free(F);
  }
  rad_workspace_free(ws);
  free(x), free(lp);
}
END_TEST

/* ---- bad input ---------------------------------------------------------- */

START_TEST(test_flow_bad_input) {
  rad_flow *F = (rad_flow *)1;
  ck_assert_int_eq(rad_flow_create(3, 2, 2, 8, 8, 0, &F), RAD_EINVAL);
  ck_assert_ptr_null(F);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 0, 2, 8, 8, 0, &F), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 0, 8, 0, &F), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 0, 0, &F), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_AFFINE, 2, 2, 8, 0, 0, &F), RAD_OK);
  rad_flow_free(F);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 8, 0, NULL), RAD_EINVAL);
  F = new_flow(RAD_LAYER_RAD, 2, 2, 8, 8, 1, 0.2);
  const size_t np = rad_flow_num_params(F);
  float *p = malloc(np * sizeof(float)), *p0 = malloc(np * sizeof(float));
  rad_flow_get_params(F, p0, np);
  ck_assert_int_eq(rad_flow_get_params(F, p, np - 1), RAD_ESIZE);
  ck_assert_int_eq(rad_flow_set_params(F, p0, np + 1), RAD_ESIZE);
  memcpy(p, p0, np * sizeof(float));
  p[np / 2] = NAN;
  ck_assert_int_eq(rad_flow_set_params(F, p, np), RAD_ENONFINITE);
  rad_flow_get_params(F, p, np);
  ck_assert_mem_eq(p, p0, np * sizeof(float)); /* unchanged */
  float x[4] = {0.1f, 0.2f, INFINITY, 0.4f}, lp[2] = {5, 5}, z[4] = {5, 5, 5, 5};
  ck_assert_int_eq(rad_flow_log_prob(F, 2, x, lp), RAD_ENONFINITE);
  ck_assert(lp[0] == 5 && lp[1] == 5);
  ck_assert_int_eq(rad_flow_log_prob(F, 0, x, lp), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(F, 1, NULL, lp), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_log_prob(NULL, 1, x, lp), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_log_prob(F, SIZE_MAX / 2, x, lp), RAD_ETOOBIG);
  ck_assert_int_eq(rad_flow_forward(F, 1, x, NULL, NULL, NULL), RAD_EINVAL);
  float *g = malloc(np * sizeof(float));
  ck_assert_int_eq(rad_flow_grad(F, 0, x, g, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_grad(F, 2, x, g, NULL), RAD_ENONFINITE);
  /* labels: out of range, or inconsistent with z; nothing written */
  int32_t k[8] = {1, 2, 1, 2, 1, 2, 1, 4};
  float zz[4] = {0, 0, 0, 0}, out[4] = {9, 9, 9, 9};
  ck_assert_int_eq(rad_flow_inverse(F, 2, zz, k + 4, out), RAD_ELABEL);
  ck_assert_int_eq(rad_flow_inverse(F, 2, zz, NULL, out), RAD_EINVAL);
  for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], 9);
  (void)z;
  free(p), free(p0), free(g);
  rad_flow_free(F);
}
END_TEST

/* A label that cannot have produced z: one RAD layer in d = 1 at its
   initial fold maps x = 5 to z = 5 with label 3; label 2 is impossible.
   With chunking (a workspace of 4 samples) the bad label sits in the last
   chunk, and still nothing is written. */
START_TEST(test_flow_inconsistent_label) {
  rad_flow *F = new_flow(RAD_LAYER_RAD, 1, 1, 4, 4, 3, 0);
  float z[10] = {0, 0.5f, -0.5f, 0.9f, 0, 0.1f, 0.2f, 0.3f, 0.4f, 5.0f}, x[10];
  int32_t k[10] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 3};
  ck_assert_int_eq(rad_flow_inverse(F, 10, z, k, x), RAD_OK);
  k[9] = 2;
  for (int i = 0; i < 10; i++) x[i] = 42;
  ck_assert_int_eq(rad_flow_inverse(F, 10, z, k, x), RAD_ELABEL);
  rad_workspace *ws;
  ck_assert_int_eq(rad_workspace_create(F, 4, &ws), RAD_OK);
  ck_assert_int_eq(rad_flow_inverse_ws(F, ws, 10, z, k, x), RAD_ELABEL);
  for (int i = 0; i < 10; i++) ck_assert_float_eq(x[i], 42);
  rad_workspace_free(ws);
  rad_flow_free(F);
}
END_TEST

int main(void) {
  Suite *s = suite_create("flow");
  TCase *tc = tcase_create("flow");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_flow_shape);
  tcase_add_test(tc, test_flow_initial_values);
  tcase_add_test(tc, test_flow_roundtrip);
  tcase_add_test(tc, test_flow_density_rad);
  tcase_add_test(tc, test_flow_density_affine);
  tcase_add_test(tc, test_flow_continuity);
  tcase_add_test(tc, test_sample_reproducible);
  tcase_add_test(tc, test_numerical_range);
  tcase_add_test(tc, test_flow_bad_input);
  tcase_add_test(tc, test_flow_inconsistent_label);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
