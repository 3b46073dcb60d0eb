/*
 * test_fold.c: the folding nonlinearity and the gating distribution
 * (MODEL.md sections 1-3) against hand-computed values, the slope
 * identities, exact inverses, label errors, continuity of the pseudo
 * log-Jacobian at the four breakpoints, and the soft clamp of the
 * boundary logits in a coupling layer (section 4).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <rad/rad.h>

#include "testutil.h"

#define EPS 2e-6

static rad_fold *fold_with(const float lp[3], const float lm[3]) {
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(1, &f), RAD_OK);
  float lg[6] = {lp[0], lp[1], lp[2], lm[0], lm[1], lm[2]};
  ck_assert_int_eq(rad_fold_set_logits(f, lg, 6), RAD_OK);
  return f;
}

/* Zero logits: alpha1 = alpha2 = alpha3 = 3, outer slopes 1, a = -1/3,
   b = 1/3 (the paper's Theorem 1 fold). */
START_TEST(test_fold_zero_logits) {
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(1, &f), RAD_OK);
  double s[7];
  ck_assert_int_eq(rad_fold_slopes(f, 0, s), RAD_OK);
  ck_assert_double_eq_tol(s[0], 3.0, 1e-12);
  ck_assert_double_eq_tol(s[1], 3.0, 1e-12);
  ck_assert_double_eq_tol(s[2], 3.0, 1e-12);
  ck_assert_double_eq_tol(s[3], 1.0, 1e-12);
  ck_assert_double_eq_tol(s[4], 1.0, 1e-12);
  ck_assert_double_eq_tol(s[5], -1.0 / 3.0, 1e-12);
  ck_assert_double_eq_tol(s[6], 1.0 / 3.0, 1e-12);

  /* f at chosen points, with labels and log-slopes */
  const float u[9] = {-2.0f, -1.0f, -2.0f / 3.0f, 0.0f, 0.25f, 2.0f / 3.0f, 1.0f, 3.0f, -0.5f};
  const float want[9] = {-2.0f, -1.0f, 0.0f, 0.0f, -0.75f, 0.0f, 1.0f, 3.0f, 0.5f};
  const int32_t wantk[9] = {1, 1, 1, 2, 2, 3, 3, 3, 1};
  const float ln3 = logf(3.0f);
  const float wantls[9] = {0, ln3, ln3, ln3, ln3, ln3, ln3, 0, ln3};
  float zh[9], ls[9];
  int32_t k[9];
  ck_assert_int_eq(rad_fold_forward(f, 9, u, zh, k, ls), RAD_OK);
  for (int i = 0; i < 9; i++) {
    ck_assert_msg(fabsf(zh[i] - want[i]) < EPS, "f(%g) = %g, want %g", u[i], zh[i], want[i]);
    ck_assert_int_eq(k[i], wantk[i]);
    ck_assert_float_eq_tol(ls[i], wantls[i], EPS);
  }

  /* the three preimages of 0 and of 0.5, and the outer pieces */
  const float z2[8] = {0, 0, 0, 0.5f, 0.5f, 0.5f, -2.0f, 3.0f};
  const int32_t k2[8] = {1, 2, 3, 1, 2, 3, 1, 3};
  const float want2[8] = {-2.0f / 3.0f, 0.0f, 2.0f / 3.0f, -0.5f, -1.0f / 6.0f, 5.0f / 6.0f, -2.0f, 3.0f};
  float u2[8];
  ck_assert_int_eq(rad_fold_inverse(f, 8, z2, k2, u2), RAD_OK);
  for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(u2[i], want2[i], EPS);
  rad_fold_free(f);
}
END_TEST

/* Asymmetric logits by hand: l+ = (ln 2, 0, 0), l- = 0 gives p+ =
   (1/2, 1/4, 1/4), alpha2 = 1 + 2 + 1 = 4, alpha1 = 4 (1/4)/(1/2) = 2,
   alpha3 = 4, alpha_minus = 2/3, alpha_plus = 1, a = 0, b = 1/2; the
   preimages of 0 are -1/2, 1/4 and 3/4. */
START_TEST(test_fold_hand_asymmetric) {
  const float lp[3] = {logf(2.0f), 0, 0}, lm[3] = {0, 0, 0};
  rad_fold *f = fold_with(lp, lm);
  double s[7];
  ck_assert_int_eq(rad_fold_slopes(f, 0, s), RAD_OK);
  const double want[7] = {2, 4, 4, 2.0 / 3.0, 1, 0, 0.5};
  for (int i = 0; i < 7; i++) ck_assert_double_eq_tol(s[i], want[i], 1e-7);
  const float u[5] = {-0.5f, 0.25f, 0.75f, -2.0f, 3.0f};
  const float wz[5] = {0, 0, 0, -5.0f / 3.0f, 3.0f};
  const int32_t wk[5] = {1, 2, 3, 1, 3};
  float zh[5], ls[5];
  int32_t k[5];
  ck_assert_int_eq(rad_fold_forward(f, 5, u, zh, k, ls), RAD_OK);
  for (int i = 0; i < 5; i++) {
    ck_assert_float_eq_tol(zh[i], wz[i], EPS);
    ck_assert_int_eq(k[i], wk[i]);
  }
  ck_assert_float_eq_tol(ls[0], logf(2.0f), EPS);
  ck_assert_float_eq_tol(ls[1], logf(4.0f), EPS);
  ck_assert_float_eq_tol(ls[3], logf(2.0f / 3.0f), EPS);
  ck_assert_float_eq_tol(ls[4], 0.0f, EPS);
  float back[5];
  ck_assert_int_eq(rad_fold_inverse(f, 5, zh, k, back), RAD_OK);
  for (int i = 0; i < 5; i++) ck_assert_float_eq_tol(back[i], u[i], 4 * EPS);
  rad_fold_free(f);
}
END_TEST

/* 1/alpha1 + 1/alpha2 + 1/alpha3 = 1, -1 < a < b < 1, and the float
   log-slopes of the three inner pieces agree with the double ones. */
START_TEST(test_fold_slope_identity) {
  tu_rng r = {42};
  for (int t = 0; t < 200; t++) {
    float lp[3], lm[3];
    for (int c = 0; c < 3; c++) {
      lp[c] = (float)(2.0 * tu_gauss(&r));
      lm[c] = (float)(2.0 * tu_gauss(&r));
    }
    rad_fold *f = fold_with(lp, lm);
    double s[7];
    ck_assert_int_eq(rad_fold_slopes(f, 0, s), RAD_OK);
    ck_assert_double_eq_tol(1.0 / s[0] + 1.0 / s[1] + 1.0 / s[2], 1.0, 1e-12);
    ck_assert(-1.0 < s[5] && s[5] < s[6] && s[6] < 1.0);
    /* continuity of f at the breakpoints: f(a) = 1, f(b) = -1 */
    const float u[3] = {(float)((-1.0 + s[5]) / 2), (float)((s[5] + s[6]) / 2),
                        (float)((s[6] + 1.0) / 2)};
    float zh[3], ls[3];
    int32_t k[3];
    ck_assert_int_eq(rad_fold_forward(f, 3, u, zh, k, ls), RAD_OK);
    double inv = 0.0;
    for (int i = 0; i < 3; i++) {
      ck_assert_int_eq(k[i], i + 1);
      ck_assert_double_eq_tol(ls[i], log(s[i]), 1e-5 * (1 + fabs(log(s[i]))));
      inv += exp(-(double)ls[i]);
      /* the midpoint of each inner piece maps to 0, up to the float
         error of u - a (u's rounding, and a = 2 exp(-log alpha1) - 1
         where log alpha1 is a sum of logits of a few units, so about
         5e-7 absolute) times the slope */
      ck_assert_msg(fabs(zh[i]) < 1e-5 + 2e-6 * s[i], "piece %d: zh %g slope %g u %.9g", i + 1,
                    zh[i], s[i], u[i]);
    }
    ck_assert_double_eq_tol(inv, 1.0, 1e-5);
    rad_fold_free(f);
  }
}
END_TEST

/* inverse(forward(u)) = u on every piece, for random logits. */
START_TEST(test_fold_roundtrip) {
  tu_rng r = {7};
  const size_t U = 4, n = 500;
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(U, &f), RAD_OK);
  float lg[24];
  for (int i = 0; i < 24; i++) lg[i] = (float)(1.5 * tu_gauss(&r));
  ck_assert_int_eq(rad_fold_set_logits(f, lg, 24), RAD_OK);
  float *u = malloc(n * U * sizeof(float)), *zh = malloc(n * U * sizeof(float));
  float *back = malloc(n * U * sizeof(float));
  int32_t *k = malloc(n * U * sizeof(int32_t));
  int seen[6] = {0};
  for (size_t i = 0; i < n * U; i++) u[i] = (float)(2.0 * tu_gauss(&r));
  ck_assert_int_eq(rad_fold_forward(f, n, u, zh, k, NULL), RAD_OK);
  ck_assert_int_eq(rad_fold_inverse(f, n, zh, k, back), RAD_OK);
  for (size_t i = 0; i < n * U; i++) {
    ck_assert_msg(fabsf(back[i] - u[i]) <= 1e-4f * (1 + fabsf(u[i])), "u %g back %g", u[i], back[i]);
    seen[k[i]]++;
  }
  ck_assert(seen[1] > 0 && seen[2] > 0 && seen[3] > 0);
  free(u), free(zh), free(back), free(k);
  rad_fold_free(f);
}
END_TEST

/* Labels that cannot have produced zh are errors; nothing is written.
   A float32 zh just above 1 with label 1 (from piece 1 near u = a) goes
   back to piece 1, not to the outer piece. */
START_TEST(test_fold_inverse_labels) {
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(1, &f), RAD_OK);
  float u[1] = {123.0f};
  const float bad_z[4] = {2.0f, -2.0f, 2.0f, 0.0f};
  const int32_t bad_k[4] = {2, 3, 1, 4};
  for (int i = 0; i < 4; i++) {
    int rc = rad_fold_inverse(f, 1, &bad_z[i], &bad_k[i], u);
    ck_assert_int_eq(rc, RAD_ELABEL);
    ck_assert_float_eq(u[0], 123.0f);
  }
  const float zh = nextafterf(1.0f, 2.0f);
  const int32_t k1 = 1;
  ck_assert_int_eq(rad_fold_inverse(f, 1, &zh, &k1, u), RAD_OK);
  ck_assert_float_eq_tol(u[0], -1.0f / 3.0f, EPS);
  /* within tolerance for k = 2 as well */
  const int32_t k2 = 2;
  ck_assert_int_eq(rad_fold_inverse(f, 1, &zh, &k2, u), RAD_OK);
  ck_assert_float_eq_tol(u[0], -1.0f / 3.0f, EPS);
  const float nan = NAN;
  ck_assert_int_eq(rad_fold_inverse(f, 1, &nan, &k1, u), RAD_ENONFINITE);
  rad_fold_free(f);
}
END_TEST

/* log p(k|z) + log|f'(u)| is continuous in u at u = -1, a, b and 1
   (MODEL.md section 3), for random boundary logits in the clamp's range
   (-3, 3) and random gate logits. (With unbounded logits a slope can pass
   1e7, and one float step of u near 1 then moves zh by 0.6: the float
   resolution, not the math, would decide.) */
START_TEST(test_fold_continuity) {
  tu_rng r = {99};
  for (int t = 0; t < 100; t++) {
    float lg[6], g[3];
    for (int c = 0; c < 6; c++) lg[c] = (float)(6.0 * tu_unif(&r) - 3.0);
    for (int c = 0; c < 3; c++) g[c] = (float)(2.0 * tu_gauss(&r));
    rad_fold *f;
    ck_assert_int_eq(rad_fold_create(1, &f), RAD_OK);
    ck_assert_int_eq(rad_fold_set_logits(f, lg, 6), RAD_OK);
    double s[7];
    rad_fold_slopes(f, 0, s);
    const double bp[4] = {-1.0, s[5], s[6], 1.0};
    int32_t left[4] = {1, 1, 2, 3}, right[4] = {1, 2, 3, 3};
    for (int b = 0; b < 4; b++) {
      /* Two points on each side at distance h and 2h; h starts small
         against the piece widths and doubles until the float points
         really lie on the two pieces. The jump is the difference of the
         two sides' linear extrapolations to the breakpoint, which cancels
         the smooth change over 4h. */
      double h = 1e-5 * fmin(1.0, fmin(s[5] + 1.0, fmin(s[6] - s[5], 1.0 - s[6])));
      float u[4], zh[4], ls[4], lpk[4], g4[12];
      int32_t k[4];
      for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) g4[3 * i + c] = g[c];
      int straddle = 0;
      for (int tries = 0; tries < 30 && !straddle; tries++, h *= 2) {
        u[0] = (float)(bp[b] - 2 * h);
        u[1] = (float)(bp[b] - h);
        u[2] = (float)(bp[b] + h);
        u[3] = (float)(bp[b] + 2 * h);
        ck_assert_int_eq(rad_fold_forward(f, 4, u, zh, k, ls), RAD_OK);
        straddle = k[0] == left[b] && k[1] == left[b] && k[2] == right[b] && k[3] == right[b];
        if (b == 0) straddle = straddle && u[1] < -1.0f && u[2] >= -1.0f;
        if (b == 3) straddle = straddle && u[1] <= 1.0f && u[2] > 1.0f;
      }
      ck_assert(straddle);
      /* the gating term applies only on the inner pieces; the piece of u
         decides (an outer-piece zh can round to exactly +-1 in float) */
      for (int i = 0; i < 4; i++) {
        if (fabsf(zh[i]) > 1.0f) zh[i] = copysignf(1.0f, zh[i]); /* any in-range value: unused */
      }
      ck_assert_int_eq(rad_fold_gate_log_prob(f, 4, zh, g4, k, lpk), RAD_OK);
      double c[4];
      for (int i = 0; i < 4; i++) c[i] = ls[i] + (fabsf(u[i]) <= 1.0f ? lpk[i] : 0.0f);
      double jump = (2 * c[1] - c[0]) - (2 * c[2] - c[3]);
      ck_assert_msg(fabs(jump) < 1e-3, "breakpoint %d: jump %g (%g %g | %g %g)", b, jump, c[0], c[1],
                    c[2], c[3]);
    }
    rad_fold_free(f);
  }
}
END_TEST

/* The gating distribution equals softmax(l+) at zh = 1 and softmax(l-)
   at zh = -1, whatever g. */
START_TEST(test_gate_boundaries) {
  const float lg[6] = {0.3f, -1.2f, 2.0f, -0.7f, 0.1f, 1.1f};
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(1, &f), RAD_OK);
  ck_assert_int_eq(rad_fold_set_logits(f, lg, 6), RAD_OK);
  for (int side = 0; side < 2; side++) {
    const float *l = side ? lg + 3 : lg;
    double mx = fmax(l[0], fmax(l[1], l[2])), se = 0;
    for (int c = 0; c < 3; c++) se += exp(l[c] - mx);
    for (int32_t k = 1; k <= 3; k++) {
      float zh = side ? -1.0f : 1.0f, g[3] = {5.0f, -3.0f, 7.0f}, out;
      ck_assert_int_eq(rad_fold_gate_log_prob(f, 1, &zh, g, &k, &out), RAD_OK);
      ck_assert_double_eq_tol(out, l[k - 1] - mx - log(se), 1e-5);
    }
  }
  /* beyond +-1 there is no gating term, and only one label is possible */
  float zh = 1.5f, g[3] = {0, 0, 0}, out = 9;
  int32_t k = 3;
  ck_assert_int_eq(rad_fold_gate_log_prob(f, 1, &zh, g, &k, &out), RAD_OK);
  ck_assert_float_eq(out, 0.0f);
  k = 2;
  out = 9;
  ck_assert_int_eq(rad_fold_gate_log_prob(f, 1, &zh, g, &k, &out), RAD_ELABEL);
  ck_assert_float_eq(out, 9.0f);
  rad_fold_free(f);
}
END_TEST

/* The soft clamp: with conditioner outputs of 1e4 for the boundary
   logits, a RAD layer with B = 3 keeps every log-slope within
   [-log(1 + 2 e^{2B}), log((1 + 2 e^{2B}) e^{2B})] and every output finite;
   unclamped, the same parameters give slopes far outside. */
START_TEST(test_soft_clamp) {
  rad_coupling *c;
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 1, NULL, 0, 4, 4, 5, &c), RAD_OK);
  size_t np = rad_coupling_num_params(c);
  float *p = calloc(np, sizeof(float));
  ck_assert_int_eq(rad_coupling_get_params(c, p, np), RAD_OK);
  /* d1 = 0, H = 4: W1 is empty, b1 (4), W2 (10 x 4), b2 (10) */
  const size_t H = 4, off_b2 = H + 10 * H;
  for (size_t r = 0; r < 10 * H; r++) p[H + r] = 0.0f;
  const float q[6] = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
  for (int i = 0; i < 6; i++) p[off_b2 + 2 + i] = q[i];
  ck_assert_int_eq(rad_coupling_set_params(c, p, np), RAD_OK);
  const double B = 3.0, lo = -log(1 + 2 * exp(2 * B)), hi = log((1 + 2 * exp(2 * B)) * exp(2 * B));
  const size_t n = 2001;
  float *x = malloc(n * sizeof(float)), *z = malloc(n * sizeof(float)), *ld = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = -10.0f + 20.0f * (float)i / (float)(n - 1);
  ck_assert_int_eq(rad_coupling_forward(c, n, x, z, NULL, ld), RAD_OK);
  double mn = INFINITY, mx = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    ck_assert(isfinite(z[i]) && isfinite(ld[i]));
    /* log_det = log|f'| + log p(k|z) and log p <= 0: the slope bound caps it */
    ck_assert(ld[i] <= hi + 1e-4);
    mn = fmin(mn, ld[i]);
    mx = fmax(mx, ld[i]);
  }
  /* outer pieces carry no gating term: their log-det is the log-slope */
  ck_assert(ld[0] >= lo - 1e-4 && ld[n - 1] >= lo - 1e-4);
  printf("clamped B=3: log-det in [%g, %g], bounds [%g, %g]\n", mn, mx, lo, hi);
  /* unclamped: the same outputs are logits of +-1e4 */
  ck_assert_int_eq(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, 0.0), RAD_OK);
  int rc = rad_coupling_forward(c, n, x, z, NULL, ld);
  ck_assert(rc == RAD_EOVERFLOW ||
            (rc == RAD_OK && (ld[0] < lo - 100 || ld[n - 1] < lo - 100 || ld[0] > hi + 100)));
  /* and B = infinity means the same as 0 */
  double v;
  ck_assert_int_eq(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, INFINITY), RAD_OK);
  ck_assert_int_eq(rad_coupling_get_option(c, RAD_OPTION_LOGIT_BOUND, &v), RAD_OK);
  ck_assert(isinf(v));
  ck_assert_int_eq(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, -1.0), RAD_EINVAL);
  ck_assert_int_eq(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, NAN), RAD_EINVAL);
  ck_assert_int_eq(rad_coupling_set_option(c, 999, 1.0), RAD_EINVAL);
  double mn_b, mx_b, def;
  ck_assert_int_eq(rad_option_bounds(RAD_OPTION_LOGIT_BOUND, &mn_b, &mx_b, &def), RAD_OK);
  ck_assert(mn_b == 0.0 && isinf(mx_b) && def == 3.0);
  free(p), free(x), free(z), free(ld);
  rad_coupling_free(c);
}
END_TEST

START_TEST(test_fold_bad_input) {
  rad_fold *f = (rad_fold *)1;
  ck_assert_int_eq(rad_fold_create(0, &f), RAD_EINVAL);
  ck_assert_ptr_null(f);
  ck_assert_int_eq(rad_fold_create(1, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_fold_create(2, &f), RAD_OK);
  float lg[12] = {0}, out[12];
  ck_assert_int_eq(rad_fold_set_logits(f, lg, 11), RAD_ESIZE);
  lg[3] = INFINITY;
  ck_assert_int_eq(rad_fold_set_logits(f, lg, 12), RAD_ENONFINITE);
  ck_assert_int_eq(rad_fold_get_logits(f, out, 12), RAD_OK);
  for (int i = 0; i < 12; i++) ck_assert_float_eq(out[i], 0.0f); /* unchanged */
  double s[7];
  ck_assert_int_eq(rad_fold_slopes(f, 2, s), RAD_EINVAL);
  float u[2] = {0, NAN}, zh[2] = {7, 7};
  ck_assert_int_eq(rad_fold_forward(f, 1, u, zh, NULL, NULL), RAD_ENONFINITE);
  ck_assert_float_eq(zh[0], 7.0f);
  ck_assert_int_eq(rad_fold_forward(f, 0, u, zh, NULL, NULL), RAD_OK);
  ck_assert_int_eq(rad_fold_forward(f, 1, NULL, zh, NULL, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_fold_forward(f, SIZE_MAX / 4, u, zh, NULL, NULL), RAD_ETOOBIG);
  ck_assert_uint_eq(rad_fold_units(f), 2);
  ck_assert_uint_eq(rad_fold_units(NULL), 0);
  rad_fold_free(f);
  rad_fold_free(NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fold");
  TCase *tc = tcase_create("fold");
  tcase_add_test(tc, test_fold_zero_logits);
  tcase_add_test(tc, test_fold_hand_asymmetric);
  tcase_add_test(tc, test_fold_slope_identity);
  tcase_add_test(tc, test_fold_roundtrip);
  tcase_add_test(tc, test_fold_inverse_labels);
  tcase_add_test(tc, test_fold_continuity);
  tcase_add_test(tc, test_gate_boundaries);
  tcase_add_test(tc, test_soft_clamp);
  tcase_add_test(tc, test_fold_bad_input);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
