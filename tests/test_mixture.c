/*
 * test_mixture.c: the mixture view of a RAD flow. Per-row gating
 * probabilities against the reference; exact samples of one component
 * (all labels fixed) against the unconditional sampler restricted to
 * that component; weighted gradients against replicated rows.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"

START_TEST(test_gate_probs) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 3, 3, 8, 6, 2, &F), RAD_OK);
  tu_perturb_flow(F, 0.3, 7);
  ref_model m;
  ck_assert_int_eq(ref_from_flow(F, &m), 0);
  double *th = tu_flow_params(F);
  const size_t n = 300, d = 3, nl = rad_flow_num_labels(F);
  float *x = malloc(n * d * sizeof(float)), *pr = malloc(n * nl * 3 * sizeof(float));
  int32_t *k = malloc(n * nl * sizeof(int32_t));
  float *z = malloc(n * d * sizeof(float));
  tu_rng r = {3};
  for (size_t i = 0; i < n * d; i++) x[i] = (float)tu_gauss(&r);
  ck_assert_int_eq(rad_flow_gate_probs(F, n, x, pr), RAD_OK);
  ck_assert_int_eq(rad_flow_forward(F, n, x, z, k, NULL), RAD_OK);
  int certain = 0;
  for (size_t i = 0; i < n; i++) {
    double xd[3] = {x[3 * i], x[3 * i + 1], x[3 * i + 2]}, ref[3 * 16];
    ref_eval_probs(&m, th, xd, ref);
    for (size_t j = 0; j < nl; j++) {
      const float *p = pr + (i * nl + j) * 3;
      ck_assert_float_eq_tol(p[0] + p[1] + p[2], 1.0f, 1e-5f);
      for (int c = 0; c < 3; c++) ck_assert(fabs(p[c] - ref[3 * j + c]) < 1e-4);
      if (p[k[i * nl + j] - 1] == 1.0f) certain++;
      ck_assert(p[k[i * nl + j] - 1] > 0.0f);
    }
  }
  ck_assert_int_gt(certain, 0); /* some labels sit in outer pieces */
  free(th), free(x), free(pr), free(k), free(z);
  rad_flow_free(F);
}
END_TEST

/* Sampling one component: every sample carries the fixed labels, the
   acceptance rate is the component's weight, and the samples follow the
   unconditional samples that carry those labels. */
START_TEST(test_sample_component) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 8, 5, &F), RAD_OK);
  tu_perturb_flow(F, 0.3, 9);
  const size_t nl = rad_flow_num_labels(F), N = 200000;
  ck_assert_uint_eq(nl, 2);
  /* the unconditional picture: labels of 2e5 samples */
  float *xa = malloc(N * 2 * sizeof(float));
  int32_t *ka = malloc(N * nl * sizeof(int32_t));
  ck_assert_int_eq(rad_flow_sample(F, 11, N, xa, NULL, ka), RAD_OK);
  /* the most frequent component */
  size_t cnt[9] = {0};
  for (size_t i = 0; i < N; i++) cnt[(ka[2 * i] - 1) * 3 + ka[2 * i + 1] - 1]++;
  size_t best = 0;
  for (int c = 1; c < 9; c++)
    if (cnt[c] > cnt[best]) best = (size_t)c;
  const int32_t kc[2] = {(int32_t)(best / 3 + 1), (int32_t)(best % 3 + 1)};
  const double weight = (double)cnt[best] / (double)N;
  const size_t n = 20000;
  float *xc = malloc(n * 2 * sizeof(float)), *zc = malloc(n * 2 * sizeof(float));
  double acc;
  ck_assert_int_eq(rad_flow_sample_component(F, 3, kc, n, 1000, xc, zc, &acc), RAD_OK);
  printf("component (%d, %d): weight %.4f from samples, acceptance %.4f\n", kc[0], kc[1], weight, acc);
  ck_assert(fabs(acc - weight) < 5 * sqrt(weight * (1 - weight) / (double)n) + 0.01);
  /* the samples carry the labels (up to float ties at breakpoints) */
  int32_t *k2 = malloc(n * nl * sizeof(int32_t));
  float *z2 = malloc(n * 2 * sizeof(float));
  ck_assert_int_eq(rad_flow_forward(F, n, xc, z2, k2, NULL), RAD_OK);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) off += k2[2 * i] != kc[0] || k2[2 * i + 1] != kc[1];
  ck_assert_uint_le(off, n / 1000);
  /* the same distribution as the unconditional samples with those labels:
     compare means and covariances */
  double ma[2] = {0}, mc[2] = {0}, va[3] = {0}, vc[3] = {0};
  size_t na = 0;
  for (size_t i = 0; i < N; i++)
    if (ka[2 * i] == kc[0] && ka[2 * i + 1] == kc[1]) {
      ma[0] += xa[2 * i], ma[1] += xa[2 * i + 1], na++;
    }
  ma[0] /= (double)na, ma[1] /= (double)na;
  for (size_t i = 0; i < n; i++) mc[0] += xc[2 * i], mc[1] += xc[2 * i + 1];
  mc[0] /= (double)n, mc[1] /= (double)n;
  for (size_t i = 0; i < N; i++)
    if (ka[2 * i] == kc[0] && ka[2 * i + 1] == kc[1]) {
      double a = xa[2 * i] - ma[0], b = xa[2 * i + 1] - ma[1];
      va[0] += a * a, va[1] += a * b, va[2] += b * b;
    }
  for (size_t i = 0; i < n; i++) {
    double a = xc[2 * i] - mc[0], b = xc[2 * i + 1] - mc[1];
    vc[0] += a * a, vc[1] += a * b, vc[2] += b * b;
  }
  for (int q = 0; q < 3; q++) va[q] /= (double)na, vc[q] /= (double)n;
  printf("component mean (%.4f, %.4f) vs (%.4f, %.4f); var (%.4f %.4f %.4f) vs (%.4f %.4f %.4f)\n",
         mc[0], mc[1], ma[0], ma[1], vc[0], vc[1], vc[2], va[0], va[1], va[2]);
  for (int q = 0; q < 2; q++)
    ck_assert(fabs(mc[q] - ma[q]) < 5 * sqrt(va[q == 0 ? 0 : 2] * (1.0 / (double)n + 1.0 / (double)na)));
  ck_assert(fabs(vc[0] - va[0]) < 0.1 * va[0] && fabs(vc[2] - va[2]) < 0.1 * va[2]);
  /* reproducible, and independent of the batch */
  float *xd = malloc(10 * 2 * sizeof(float));
  ck_assert_int_eq(rad_flow_sample_component(F, 3, kc, 10, 1000, xd, NULL, NULL), RAD_OK);
  ck_assert_mem_eq(xd, xc, 10 * 2 * sizeof(float));
  /* an impossible component is refused after max_attempts */
  const int32_t bad[2] = {4, 1};
  ck_assert_int_eq(rad_flow_sample_component(F, 3, bad, 10, 5, xd, NULL, NULL), RAD_ELABEL);
  ck_assert_int_eq(rad_flow_sample_component(F, 3, kc, 10, 0, xd, NULL, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_sample_component(F, 3, kc, 100, 1, xd, NULL, NULL), RAD_EREJECTED);
  free(xa), free(ka), free(xc), free(zc), free(k2), free(z2), free(xd);
  rad_flow_free(F);
}
END_TEST

/* Weights: integer weights equal replicated rows; equal weights equal
   the plain mean; a zero weight removes a row, even an impossible one. */
START_TEST(test_grad_weighted) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 3, 8, 8, 8, &F), RAD_OK);
  tu_perturb_flow(F, 0.2, 1);
  const size_t np = rad_flow_num_params(F);
  float x[8] = {0.1f, 0.2f, -1.0f, 0.5f, 2.0f, -0.3f, 0.7f, 0.7f};
  float xr[14] = {0.1f, 0.2f, -1.0f, 0.5f, -1.0f, 0.5f, -1.0f, 0.5f, 2.0f, -0.3f, 0.7f, 0.7f, 0.7f, 0.7f};
  const float w[4] = {1, 3, 1, 2};
  float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
  double m1, m2;
  ck_assert_int_eq(rad_flow_grad_weighted(F, 4, x, w, g1, &m1), RAD_OK);
  ck_assert_int_eq(rad_flow_grad(F, 7, xr, g2, &m2), RAD_OK);
  ck_assert_double_eq_tol(m1, m2, 1e-5);
  for (size_t j = 0; j < np; j++) ck_assert(fabsf(g1[j] - g2[j]) <= 1e-4f * (1 + fabsf(g2[j])));
  const float same[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  ck_assert_int_eq(rad_flow_grad_weighted(F, 4, x, same, g1, &m1), RAD_OK);
  ck_assert_int_eq(rad_flow_grad(F, 4, x, g2, &m2), RAD_OK);
  ck_assert_double_eq_tol(m1, m2, 1e-6);
  for (size_t j = 0; j < np; j++) ck_assert(fabsf(g1[j] - g2[j]) <= 1e-5f * (1 + fabsf(g2[j])));
  /* a row far out (log p = -inf in float) with weight 0 changes nothing */
  float xf[10] = {0.1f, 0.2f, -1.0f, 0.5f, 2.0f, -0.3f, 0.7f, 0.7f, 3e38f, -3e38f};
  const float w0[5] = {0.5f, 0.5f, 0.5f, 0.5f, 0.0f};
  ck_assert_int_eq(rad_flow_grad_weighted(F, 5, xf, w0, g1, &m1), RAD_OK);
  ck_assert_double_eq_tol(m1, m2, 1e-6);
  /* bad weights */
  const float neg[4] = {1, -1, 1, 1}, zero[4] = {0, 0, 0, 0}, nan4[4] = {1, NAN, 1, 1};
  ck_assert_int_eq(rad_flow_grad_weighted(F, 4, x, neg, g1, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_grad_weighted(F, 4, x, zero, g1, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_grad_weighted(F, 4, x, nan4, g1, NULL), RAD_ENONFINITE);
  free(g1), free(g2);
  rad_flow_free(F);
}
END_TEST

int main(void) {
  Suite *s = suite_create("mixture");
  TCase *tc = tcase_create("mixture");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_gate_probs);
  tcase_add_test(tc, test_sample_component);
  tcase_add_test(tc, test_grad_weighted);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
