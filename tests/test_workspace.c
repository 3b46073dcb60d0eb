/*
 * test_workspace.c: workspaces and chunking. The *_ws entry points give
 * the results of the plain ones for batches larger than the workspace
 * (processed in chunks), a workspace serves any flow no larger than its
 * own, and flows built layer by layer, copied, or inspected layer by layer
 * behave as the flow they came from.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"

static rad_flow *mixed_flow(size_t d, uint64_t seed) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create_empty(d, &F), RAD_OK);
  for (size_t l = 0; l < 4; l++) {
    rad_coupling *c;
    uint8_t mask[8];
    for (size_t i = 0; i < d; i++) mask[i] = (uint8_t)((i + l) % 2);
    if (d == 1) mask[0] = 1;
    ck_assert_int_eq(rad_coupling_create(l % 2 ? RAD_LAYER_AFFINE : RAD_LAYER_RAD, d, mask, d, 8, 6,
                                         seed + l, &c),
                     RAD_OK);
    ck_assert_int_eq(rad_flow_add_coupling(F, c), RAD_OK);
    rad_coupling_free(c);
  }
  tu_perturb_flow(F, 0.2, seed);
  return F;
}

START_TEST(test_ws_matches_plain) {
  const size_t d = 3, n = 1000;
  rad_flow *F = mixed_flow(d, 5);
  const size_t nl = rad_flow_num_labels(F), np = rad_flow_num_params(F);
  float *x = malloc(n * d * sizeof(float));
  tu_rng r = {1};
  for (size_t i = 0; i < n * d; i++) x[i] = (float)tu_gauss(&r);
  float *lp1 = malloc(n * sizeof(float)), *lp2 = malloc(n * sizeof(float));
  float *z1 = malloc(n * d * sizeof(float)), *z2 = malloc(n * d * sizeof(float));
  int32_t *k1 = malloc(n * nl * sizeof(int32_t)), *k2 = malloc(n * nl * sizeof(int32_t));
  float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
  float *s1 = malloc(n * d * sizeof(float)), *s2 = malloc(n * d * sizeof(float));
  float *x1 = malloc(n * d * sizeof(float)), *x2 = malloc(n * d * sizeof(float));
  double m1, m2;
  ck_assert_int_eq(rad_flow_forward(F, n, x, z1, k1, lp1), RAD_OK);
  ck_assert_int_eq(rad_flow_grad(F, n, x, g1, &m1), RAD_OK);
  ck_assert_int_eq(rad_flow_score(F, n, x, s1, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_inverse(F, n, z1, k1, x1), RAD_OK);
  const size_t sizes[3] = {1, 37, 4096};
  for (int t = 0; t < 3; t++) {
    rad_workspace *ws;
    ck_assert_int_eq(rad_workspace_create(F, sizes[t], &ws), RAD_OK);
    ck_assert_uint_eq(rad_workspace_max_batch(ws), sizes[t]);
    ck_assert_uint_gt(rad_workspace_size(ws), 0);
    ck_assert_int_eq(rad_flow_log_prob_ws(F, ws, n, x, lp2), RAD_OK);
    ck_assert_int_eq(rad_flow_forward_ws(F, ws, n, x, z2, k2, NULL), RAD_OK);
    ck_assert_int_eq(rad_flow_score_ws(F, ws, n, x, s2, NULL), RAD_OK);
    ck_assert_int_eq(rad_flow_inverse_ws(F, ws, n, z1, k1, x2), RAD_OK);
    ck_assert_int_eq(rad_flow_grad_ws(F, ws, n, x, g2, &m2), RAD_OK);
    /* per-sample results do not depend on the chunking */
    for (size_t i = 0; i < n; i++) ck_assert(fabsf(lp1[i] - lp2[i]) <= 1e-5f * (1 + fabsf(lp1[i])));
    for (size_t i = 0; i < n * d; i++) {
      ck_assert(fabsf(z1[i] - z2[i]) <= 1e-5f * (1 + fabsf(z1[i])));
      ck_assert(fabsf(s1[i] - s2[i]) <= 1e-4f * (1 + fabsf(s1[i])));
      ck_assert(fabsf(x1[i] - x2[i]) <= 1e-5f * (1 + fabsf(x1[i])));
    }
    ck_assert_mem_eq(k1, k2, n * nl * sizeof(int32_t));
    /* the mean gradient sums chunks in another order */
    ck_assert_double_eq_tol(m1, m2, 1e-6 * (1 + fabs(m1)));
    double gn = 0, dn = 0;
    for (size_t j = 0; j < np; j++) gn += (double)g1[j] * g1[j], dn += ((double)g1[j] - g2[j]) * (g1[j] - g2[j]);
    ck_assert_msg(sqrt(dn) <= 1e-5 * sqrt(gn), "chunk %zu: |g1 - g2| / |g1| = %g", sizes[t],
                  sqrt(dn / gn));
    rad_workspace_free(ws);
  }
  free(x), free(lp1), free(lp2), free(z1), free(z2), free(k1), free(k2), free(g1), free(g2);
  free(s1), free(s2), free(x1), free(x2);
  rad_flow_free(F);
}
END_TEST

/* A workspace serves any flow whose scratch fits in it, in chunks down
   to one sample: one made for a large flow serves a smaller one, one made
   for a small flow refuses what does not fit (a large flow's gradient). */
START_TEST(test_ws_other_flows) {
  rad_flow *small, *big;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 4, 4, 1, &small), RAD_OK);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 16, 8, 64, 64, 1, &big), RAD_OK);
  rad_workspace *ws_small, *ws_big;
  ck_assert_int_eq(rad_workspace_create(small, 1, &ws_small), RAD_OK);
  ck_assert_int_eq(rad_workspace_create(big, 64, &ws_big), RAD_OK);
  float x[32] = {0}, lp[2] = {7, 7};
  float *g = malloc(rad_flow_num_params(big) * sizeof(float));
  g[0] = 7;
  ck_assert_int_eq(rad_flow_grad_ws(big, ws_small, 2, x, g, NULL), RAD_EMISMATCH);
  ck_assert(g[0] == 7);
  free(g);
  ck_assert_int_eq(rad_flow_log_prob_ws(small, ws_big, 2, x, lp), RAD_OK);
  float lp2[2];
  ck_assert_int_eq(rad_flow_log_prob(small, 2, x, lp2), RAD_OK);
  ck_assert_mem_eq(lp, lp2, sizeof lp);
  rad_workspace *ws = (rad_workspace *)1;
  ck_assert_int_eq(rad_workspace_create(small, 0, &ws), RAD_EINVAL);
  ck_assert_ptr_null(ws);
  ck_assert_int_eq(rad_workspace_create(NULL, 4, &ws), RAD_EINVAL);
  /* chunks are capped, so a huge max_batch costs no more than 512 */
  ck_assert_int_eq(rad_workspace_create(small, SIZE_MAX / 2, &ws), RAD_OK);
  ck_assert_uint_eq(rad_workspace_size(ws), rad_workspace_size(ws_big) > 0 ? rad_workspace_size(ws) : 0);
  rad_workspace_free(ws);
  rad_workspace_free(NULL);
  rad_workspace_free(ws_small);
  rad_workspace_free(ws_big);
  rad_flow_free(small);
  rad_flow_free(big);
}
END_TEST

/* Flows from layers: rad_flow_create equals the same layers appended one
   by one; copies and per-layer views agree; every layer's output. */
START_TEST(test_flow_from_layers) {
  rad_flow *A, *B, *C;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 3, 8, 8, 9, &A), RAD_OK);
  tu_perturb_flow(A, 0.2, 3);
  ck_assert_int_eq(rad_flow_create_empty(2, &B), RAD_OK);
  for (size_t l = 0; l < 3; l++) {
    rad_coupling *c;
    ck_assert_int_eq(rad_flow_get_coupling(A, l, &c), RAD_OK);
    ck_assert_int_eq(rad_flow_add_coupling(B, c), RAD_OK);
    rad_coupling_free(c);
  }
  ck_assert_int_eq(rad_flow_copy(A, &C), RAD_OK);
  const size_t np = rad_flow_num_params(A);
  ck_assert_uint_eq(rad_flow_num_params(B), np);
  float *pa = malloc(np * sizeof(float)), *pb = malloc(np * sizeof(float));
  rad_flow_get_params(A, pa, np);
  rad_flow_get_params(B, pb, np);
  ck_assert_mem_eq(pa, pb, np * sizeof(float));
  float x[10] = {0.1f, 0.2f, -1, 2, 0.5f, 0.5f, 3, -3, 0, 0}, la[5], lb[5], lc[5];
  ck_assert_int_eq(rad_flow_log_prob(A, 5, x, la), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(B, 5, x, lb), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(C, 5, x, lc), RAD_OK);
  ck_assert_mem_eq(la, lb, sizeof la);
  ck_assert_mem_eq(la, lc, sizeof la);
  /* forward_layers: the last block is z, each block is the next layer's
     input, and labels match forward's */
  float zs[3 * 10], z[10];
  int32_t k1[15], k2[15];
  ck_assert_int_eq(rad_flow_forward_layers(A, 5, x, zs, k1), RAD_OK);
  ck_assert_int_eq(rad_flow_forward(A, 5, x, z, k2, NULL), RAD_OK);
  ck_assert_mem_eq(zs + 2 * 10, z, sizeof z);
  ck_assert_mem_eq(k1, k2, sizeof k1);
  const float *in = x;
  for (size_t l = 0; l < 3; l++) {
    rad_coupling *c;
    float out[10];
    ck_assert_int_eq(rad_flow_get_coupling(A, l, &c), RAD_OK);
    ck_assert_int_eq(rad_coupling_forward(c, 5, in, out, NULL, NULL), RAD_OK);
    for (int i = 0; i < 10; i++) ck_assert_float_eq_tol(out[i], zs[l * 10 + i], 1e-5f * (1 + fabsf(out[i])));
    in = zs + l * 10;
    rad_coupling_free(c);
  }
  /* a copy is independent */
  pa[0] += 1.0f;
  ck_assert_int_eq(rad_flow_set_params(C, pa, np), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(A, 5, x, lb), RAD_OK);
  ck_assert_mem_eq(la, lb, sizeof la);
  /* options reach every layer */
  double v;
  ck_assert_int_eq(rad_flow_get_option(A, RAD_OPTION_LOGIT_BOUND, &v), RAD_OK);
  ck_assert(v == 3.0);
  ck_assert_int_eq(rad_flow_set_option(A, RAD_OPTION_LOGIT_BOUND, 5.0), RAD_OK);
  for (size_t l = 0; l < 3; l++) {
    rad_coupling *c;
    rad_flow_get_coupling(A, l, &c);
    rad_coupling_get_option(c, RAD_OPTION_LOGIT_BOUND, &v);
    ck_assert(v == 5.0);
    rad_coupling_free(c);
  }
  /* errors */
  rad_coupling *c3;
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, NULL, 0, 4, 4, 1, &c3), RAD_OK);
  ck_assert_int_eq(rad_flow_add_coupling(A, c3), RAD_EMISMATCH);
  ck_assert_uint_eq(rad_flow_num_layers(A), 3);
  rad_coupling *none = (rad_coupling *)1;
  ck_assert_int_eq(rad_flow_get_coupling(A, 3, &none), RAD_EINVAL);
  ck_assert_ptr_null(none);
  rad_coupling_free(c3);
  free(pa), free(pb);
  rad_flow_free(A);
  rad_flow_free(B);
  rad_flow_free(C);
}
END_TEST

START_TEST(test_coupling_masks) {
  rad_coupling *c = (rad_coupling *)1;
  const uint8_t zeros[3] = {0, 0, 0}, two[3] = {0, 2, 1}, ok[3] = {1, 0, 1};
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, zeros, 3, 4, 4, 1, &c), RAD_EMASK);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, two, 3, 4, 4, 1, &c), RAD_EMASK);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, ok, 2, 4, 4, 1, &c), RAD_EMASK);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, NULL, 3, 4, 4, 1, &c), RAD_EMASK);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, ok, 3, 0, 4, 1, &c), RAD_EINVAL);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, ok, 3, 4, 0, 1, &c), RAD_EINVAL);
  ck_assert_int_eq(rad_coupling_create(7, 3, ok, 3, 4, 4, 1, &c), RAD_EINVAL);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_AFFINE, 3, ok, 3, 4, 0, 1, &c), RAD_OK);
  ck_assert_uint_eq(rad_coupling_num_labels(c), 0);
  ck_assert_uint_eq(rad_coupling_gate_hidden(c), 0);
  uint8_t m[3];
  ck_assert_int_eq(rad_coupling_get_mask(c, m, 3), RAD_OK);
  ck_assert_mem_eq(m, ok, 3);
  ck_assert_int_eq(rad_coupling_get_mask(c, m, 2), RAD_ESIZE);
  rad_coupling_free(c);
  rad_coupling_free(NULL);
}
END_TEST

/* Threads: per-sample results equal the single-threaded ones bit for bit;
   gradients agree to rounding and repeat exactly for a given thread
   count; a bad label anywhere writes nothing. */
START_TEST(test_ws_threads) {
  const size_t d = 2, n = 5003;
  rad_flow *F = mixed_flow(d, 21);
  const size_t nl = rad_flow_num_labels(F), np = rad_flow_num_params(F);
  float *x = malloc(n * d * sizeof(float)), *lp1 = malloc(n * sizeof(float)), *lp2 = malloc(n * sizeof(float));
  float *z1 = malloc(n * d * sizeof(float)), *z2 = malloc(n * d * sizeof(float));
  float *s1 = malloc(n * d * sizeof(float)), *s2 = malloc(n * d * sizeof(float));
  int32_t *k1 = malloc(n * nl * sizeof(int32_t)), *k2 = malloc(n * nl * sizeof(int32_t));
  float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float)), *g3 = malloc(np * sizeof(float));
  tu_rng r = {5};
  for (size_t i = 0; i < n * d; i++) x[i] = (float)tu_gauss(&r);
  rad_workspace *ws;
  ck_assert_int_eq(rad_workspace_create(F, 500, &ws), RAD_OK);
  ck_assert_int_eq(rad_flow_forward_ws(F, ws, n, x, z1, k1, lp1), RAD_OK);
  ck_assert_int_eq(rad_flow_sample_ws(F, ws, 9, n, s1, NULL, NULL), RAD_OK);
  double m1, m2, m3;
  ck_assert_int_eq(rad_flow_grad_ws(F, ws, n, x, g1, &m1), RAD_OK);
  const size_t single = rad_workspace_size(ws);
  for (int T = 2; T <= 3; T++) {
    ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_THREADS, T), RAD_OK);
    double v;
    ck_assert_int_eq(rad_workspace_get_option(ws, RAD_OPTION_THREADS, &v), RAD_OK);
    ck_assert(v == T);
    ck_assert_uint_eq(rad_workspace_size(ws), (size_t)T * single);
    ck_assert_int_eq(rad_flow_forward_ws(F, ws, n, x, z2, k2, lp2), RAD_OK);
    ck_assert_mem_eq(z1, z2, n * d * sizeof(float));
    ck_assert_mem_eq(k1, k2, n * nl * sizeof(int32_t));
    ck_assert_mem_eq(lp1, lp2, n * sizeof(float));
    ck_assert_int_eq(rad_flow_sample_ws(F, ws, 9, n, s2, NULL, NULL), RAD_OK);
    ck_assert_mem_eq(s1, s2, n * d * sizeof(float));
    /* pieces starting anywhere in a block of 128 (a split once lost the
       first rows of thread 0 when first mod 128 >= 64) */
    static const size_t firsts[] = {1, 63, 64, 100, 127, 128, 1000};
    for (size_t f = 0; f < sizeof firsts / sizeof firsts[0]; f++) {
      const size_t fi = firsts[f], len = n - fi;
      for (size_t i = 0; i < len * d; i++) s2[i] = 42.0f;
      ck_assert_int_eq(rad_flow_sample_at_ws(F, ws, 9, fi, len, s2, NULL, NULL), RAD_OK);
      ck_assert_msg(memcmp(s1 + fi * d, s2, len * d * sizeof(float)) == 0,
                    "T = %d: sample_at(%zu) differs from the whole draw", T, fi);
    }
    ck_assert_int_eq(rad_flow_inverse_ws(F, ws, n, z1, k1, s2), RAD_OK);
    for (size_t i = 0; i < n * d; i++) ck_assert(fabsf(s2[i] - x[i]) <= 1e-4f * (1 + fabsf(x[i])));
    ck_assert_int_eq(rad_flow_grad_ws(F, ws, n, x, g2, &m2), RAD_OK);
    ck_assert_int_eq(rad_flow_grad_ws(F, ws, n, x, g3, &m3), RAD_OK);
    ck_assert_mem_eq(g2, g3, np * sizeof(float)); /* reproducible for this T */
    ck_assert(m2 == m3);
    ck_assert_double_eq_tol(m1, m2, 1e-6 * (1 + fabs(m1)));
    for (size_t j = 0; j < np; j++) ck_assert(fabsf(g1[j] - g2[j]) <= 1e-4f * (1 + fabsf(g1[j])));
    /* a bad label in the last thread's range: nothing is written */
    int32_t keep = k1[(n - 1) * nl];
    k1[(n - 1) * nl] = 9;
    for (size_t i = 0; i < n * d; i++) s2[i] = 42.0f;
    ck_assert_int_eq(rad_flow_inverse_ws(F, ws, n, z1, k1, s2), RAD_ELABEL);
    for (size_t i = 0; i < n * d; i++) ck_assert(s2[i] == 42.0f);
    k1[(n - 1) * nl] = keep;
  }
  ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_THREADS, 0), RAD_EINVAL);
  ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_THREADS, 1.5), RAD_EINVAL);
  ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_LEARNING_RATE, 1), RAD_EINVAL);
  ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_THREADS, 1), RAD_OK);
  rad_workspace_free(ws);
  free(x), free(lp1), free(lp2), free(z1), free(z2), free(s1), free(s2), free(k1), free(k2);
  free(g1), free(g2), free(g3);
  rad_flow_free(F);
}
END_TEST

int main(void) {
  Suite *s = suite_create("workspace");
  TCase *tc = tcase_create("workspace");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_ws_matches_plain);
  tcase_add_test(tc, test_ws_other_flows);
  tcase_add_test(tc, test_flow_from_layers);
  tcase_add_test(tc, test_coupling_masks);
  tcase_add_test(tc, test_ws_threads);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
