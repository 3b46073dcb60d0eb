/*
 * test_grad.c: every gradient librad computes against central finite
 * differences of the double-precision reference (tests/common/ref.c):
 * whole flows (RAD, affine, mixed; d = 2 and d = 5) in the parameters and
 * in x, single coupling layers, the fold and the gating network. A
 * difference that would cross a fold breakpoint or a ReLU kink is detected
 * through the reference's record of discrete decisions and retried with a
 * smaller step, never silently accepted; the tests also require that almost
 * every index was checked.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <rad/rad.h>

#include "testutil.h"

#define RTOL 2e-3
#define ATOL 2e-4
#define FD_STEP 1e-4

static void report(const char *what, tu_fd r) {
  printf("%-40s checked %4d skipped %3d failed %d worst %.3f (index %zu)\n", what,
         r.checked, r.skipped, r.failed, r.worst, r.worst_index);
}

static void assert_fd(const char *what, tu_fd r, int total) {
  report(what, r);
  ck_assert_int_eq(r.failed, 0);
  /* kinks are rare: nearly everything must have been checked */
  ck_assert_int_ge(r.checked, (int)(0.9 * total));
}

/* A batch of n points from N(0, s^2) (as doubles and floats). */
static void make_batch(size_t n, size_t d, double s, uint64_t seed, double *xd,
                       float *xf) {
  tu_rng r = {seed};
  for (size_t i = 0; i < n * d; i++) {
    xd[i] = (float)(s * tu_gauss(&r));
    xf[i] = (float)xd[i];
  }
}

/* Gradient of the mean log-likelihood and the score of a flow. */
static void check_flow(rad_flow *F, size_t n, const char *name) {
  ref_model m;
  ck_assert_int_eq(ref_from_flow(F, &m), 0);
  const size_t d = m.dim, np = m.np;
  double *xd = malloc(n * d * sizeof(double));
  float *xf = malloc(n * d * sizeof(float));
  make_batch(n, d, 1.0, 77, xd, xf);
  double *theta = tu_flow_params(F);

  /* log_prob agrees with the reference */
  float *lp = malloc(n * sizeof(float));
  ck_assert_int_eq(rad_flow_log_prob(F, n, xf, lp), RAD_OK);
  for (size_t i = 0; i < n; i++) {
    /* A check point, not a stress test: random parameters can put a point
       at log p = -1e9, where float32 gradients carry few digits to compare
       (numerical range is test_flow's business). Seeds are picked so
       that every point is in a range real data lives in. */
    ck_assert_msg(fabs(lp[i]) < 1e6, "%s: test point %zu has log p %g", name, i, lp[i]);
    double r = ref_eval(&m, theta, xd + i * d, NULL, NULL, NULL);
    ck_assert_msg(fabs(lp[i] - r) <= 1e-4 * (1.0 + fabs(r)), "%s: log p %g vs ref %g",
                  name, lp[i], r);
  }

  float *g = malloc(np * sizeof(float));
  double mean;
  ck_assert_int_eq(rad_flow_grad(F, n, xf, g, &mean), RAD_OK);
  tu_batch b = {&m, n, xd, theta, NULL, NULL};
  ck_assert(fabs(mean - tu_obj_mean_logp(theta, &b, NULL)) < 1e-4 * (1 + fabs(mean)));
  char what[128];
  snprintf(what, sizeof what, "%s: d mean log p / d theta", name);
  assert_fd(what, tu_check_grad(tu_obj_mean_logp, &b, theta, np, g, 1, FD_STEP, RTOL, ATOL),
            (int)np);

  float *sc = malloc(n * d * sizeof(float));
  ck_assert_int_eq(rad_flow_score(F, n, xf, sc, NULL), RAD_OK);
  snprintf(what, sizeof what, "%s: d log p / dx", name);
  assert_fd(what, tu_check_grad(tu_obj_sum_logp_x, &b, xd, n * d, sc, 1, FD_STEP, RTOL, ATOL),
            (int)(n * d));
  free(xd);
  free(xf);
  free(theta);
  free(lp);
  free(g);
  free(sc);
}

START_TEST(test_grad_rad_d2) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 6, 8, 8, 11, &F), RAD_OK);
  tu_perturb_flow(F, 0.25, 1);
  check_flow(F, 16, "RAD d=2 6 layers");
  rad_flow_free(F);
}
END_TEST

START_TEST(test_grad_affine_d2) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_AFFINE, 2, 6, 56, 0, 12, &F), RAD_OK);
  tu_perturb_flow(F, 0.25, 2);
  check_flow(F, 16, "affine d=2 6 layers");
  rad_flow_free(F);
}
END_TEST

START_TEST(test_grad_rad_d5) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 5, 4, 8, 6, 13, &F), RAD_OK);
  tu_perturb_flow(F, 0.25, 4);
  check_flow(F, 8, "RAD d=5 4 layers");
  rad_flow_free(F);
}
END_TEST

/* RAD and affine layers mixed, custom masks (one all ones), odd d. */
START_TEST(test_grad_mixed_d5) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create_empty(5, &F), RAD_OK);
  const uint8_t masks[4][5] = {
      {1, 0, 1, 0, 0}, {0, 1, 1, 1, 0}, {1, 1, 1, 1, 1}, {0, 0, 0, 1, 1}};
  const int kinds[4] = {RAD_LAYER_RAD, RAD_LAYER_AFFINE, RAD_LAYER_RAD, RAD_LAYER_AFFINE};
  for (int l = 0; l < 4; l++) {
    rad_coupling *c;
    ck_assert_int_eq(rad_coupling_create(kinds[l], 5, masks[l], 5, 7, 5, 100 + l, &c), RAD_OK);
    ck_assert_int_eq(rad_flow_add_coupling(F, c), RAD_OK);
    rad_coupling_free(c);
  }
  tu_perturb_flow(F, 0.25, 4);
  check_flow(F, 8, "mixed d=5 4 layers");
  rad_flow_free(F);
}
END_TEST

START_TEST(test_grad_rad_d1) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 1, 3, 4, 4, 14, &F), RAD_OK);
  tu_perturb_flow(F, 0.25, 5);
  check_flow(F, 16, "RAD d=1 3 layers");
  rad_flow_free(F);
}
END_TEST

START_TEST(test_grad_unclamped) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 4, 8, 8, 15, &F), RAD_OK);
  ck_assert_int_eq(rad_flow_set_option(F, RAD_OPTION_LOGIT_BOUND, 0.0), RAD_OK);
  /* unclamped logits at scale 0.25 already give log p near -1e25 here
     (why MODEL.md clamps them); a smaller draw tests the B = 0 path */
  tu_perturb_flow(F, 0.1, 6);
  check_flow(F, 16, "RAD d=2 unclamped logits");
  rad_flow_free(F);
}
END_TEST

/* One coupling layer: L = sum gz . z + gld * logdet, in theta and in x. */
static void check_coupling(rad_coupling *c, size_t n, const char *name) {
  ref_model m;
  ck_assert_int_eq(ref_from_coupling(c, &m), 0);
  const size_t d = m.dim, np = m.np;
  double *xd = malloc(n * d * sizeof(double)), *gzd = malloc(n * d * sizeof(double));
  double *gldd = malloc(n * sizeof(double));
  float *xf = malloc(n * d * sizeof(float)), *gzf = malloc(n * d * sizeof(float));
  float *gldf = malloc(n * sizeof(float));
  make_batch(n, d, 1.0, 91, xd, xf);
  make_batch(n, d, 1.0, 92, gzd, gzf);
  make_batch(n, 1, 1.0, 93, gldd, gldf);
  double *theta = tu_coupling_params(c);
  float *gp = malloc(np * sizeof(float)), *gx = malloc(n * d * sizeof(float));
  ck_assert_int_eq(rad_coupling_backward(c, n, xf, gzf, gldf, gx, gp), RAD_OK);
  tu_batch b = {&m, n, xd, theta, gzd, gldd};
  char what[128];
  snprintf(what, sizeof what, "%s: params", name);
  assert_fd(what, tu_check_grad(tu_obj_coupling, &b, theta, np, gp, 1, FD_STEP, RTOL, ATOL), (int)np);
  snprintf(what, sizeof what, "%s: x", name);
  assert_fd(what, tu_check_grad(tu_obj_coupling_x, &b, xd, n * d, gx, 1, FD_STEP, RTOL, ATOL),
            (int)(n * d));
  /* forward agrees with the reference */
  float *z = malloc(n * d * sizeof(float)), *ld = malloc(n * sizeof(float));
  ck_assert_int_eq(rad_coupling_forward(c, n, xf, z, NULL, ld), RAD_OK);
  for (size_t i = 0; i < n; i++) {
    double zr[REF_MAX_DIM];
    double r = ref_eval(&m, theta, xd + i * d, zr, NULL, NULL);
    ck_assert(fabs(ld[i] - r) <= 1e-4 * (1 + fabs(r)));
    for (size_t f = 0; f < d; f++) ck_assert(fabs(z[i * d + f] - zr[f]) <= 1e-4 * (1 + fabs(zr[f])));
  }
  free(xd), free(gzd), free(gldd), free(xf), free(gzf), free(gldf);
  free(theta), free(gp), free(gx), free(z), free(ld);
}

START_TEST(test_grad_couplings) {
  const uint8_t m3[3] = {1, 0, 1}, m4[4] = {0, 1, 1, 0}, all[3] = {1, 1, 1};
  struct {
    int kind;
    size_t d;
    const uint8_t *mask;
    const char *name;
  } cases[] = {
      {RAD_LAYER_RAD, 2, NULL, "RAD coupling d=2 default mask"},
      {RAD_LAYER_RAD, 3, m3, "RAD coupling d=3 mask 101"},
      {RAD_LAYER_RAD, 4, m4, "RAD coupling d=4 mask 0110"},
      {RAD_LAYER_RAD, 3, all, "RAD coupling d=3 all ones"},
      {RAD_LAYER_RAD, 1, NULL, "RAD coupling d=1"},
      {RAD_LAYER_AFFINE, 3, m3, "affine coupling d=3 mask 101"},
      {RAD_LAYER_AFFINE, 3, all, "affine coupling d=3 all ones"},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    rad_coupling *c;
    ck_assert_int_eq(rad_coupling_create(cases[t].kind, cases[t].d, cases[t].mask,
                                         cases[t].mask ? cases[t].d : 0, 6, 5, 200 + t, &c),
                     RAD_OK);
    tu_perturb_coupling(c, 0.3, 300 + t);
    check_coupling(c, 12, cases[t].name);
    rad_coupling_free(c);
  }
}
END_TEST

/* ---- the fold and the gate on their own ---------------------------------- */

typedef struct fold_ctx {
  size_t n, units;
  const double *u, *gzh, *gls; /* n x units */
  const double *logits;        /* for objectives in u */
} fold_ctx;

/* L = sum gzh * f(u) + gls * log|f'(u)| */
static double fold_obj(const double *logits, const double *u, const fold_ctx *c,
                       ref_sig *sig) {
  double s = 0.0;
  for (size_t i = 0; i < c->n; i++)
    for (size_t j = 0; j < c->units; j++) {
      int k;
      double ls, zh = ref_fold(logits + 6 * j, logits + 6 * j + 3, u[i * c->units + j], &k, &ls);
      if (sig && sig->n < REF_MAX_SIG) {
        /* the piece: label plus which side of +-1 u is on */
        double uu = u[i * c->units + j];
        sig->v[sig->n++] = k * 4 + (uu < -1.0) + 2 * (uu > 1.0);
      }
      s += c->gzh[i * c->units + j] * zh + c->gls[i * c->units + j] * ls;
    }
  return s;
}
static double fold_obj_logits(const double *th, void *ctx, ref_sig *sig) {
  const fold_ctx *c = ctx;
  return fold_obj(th, c->u, c, sig);
}
static double fold_obj_u(const double *u, void *ctx, ref_sig *sig) {
  const fold_ctx *c = ctx;
  return fold_obj(c->logits, u, c, sig);
}

START_TEST(test_grad_fold) {
  const size_t n = 40, U = 3;
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(U, &f), RAD_OK);
  tu_rng r = {5};
  double lg[18], u[120], gzh[120], gls[120];
  float lgf[18], uf[120], gzhf[120], glsf[120];
  for (int i = 0; i < 18; i++) lgf[i] = (float)(lg[i] = (float)(1.5 * tu_gauss(&r)));
  for (size_t i = 0; i < n * U; i++) {
    uf[i] = (float)(u[i] = (float)(1.3 * tu_gauss(&r)));
    gzhf[i] = (float)(gzh[i] = (float)tu_gauss(&r));
    glsf[i] = (float)(gls[i] = (float)tu_gauss(&r));
  }
  ck_assert_int_eq(rad_fold_set_logits(f, lgf, 18), RAD_OK);
  float gu[120], glog[18];
  ck_assert_int_eq(rad_fold_backward(f, n, uf, gzhf, glsf, gu, glog), RAD_OK);
  fold_ctx c = {n, U, u, gzh, gls, lg};
  assert_fd("fold: logits", tu_check_grad(fold_obj_logits, &c, lg, 18, glog, 1, FD_STEP, RTOL, ATOL), 18);
  assert_fd("fold: u", tu_check_grad(fold_obj_u, &c, u, n * U, gu, 1, FD_STEP, RTOL, ATOL), (int)(n * U));
  rad_fold_free(f);
}
END_TEST

typedef struct gatef_ctx {
  size_t n, units;
  const double *zh, *g, *w; /* n x units, n x units x 3, n x units */
  const int32_t *k;
  const double *logits;
} gatef_ctx;

static double gatef_obj(const double *logits, const double *zh, const double *g,
                        const gatef_ctx *c) {
  double s = 0.0;
  for (size_t e = 0; e < c->n * c->units; e++) {
    size_t j = e % c->units;
    s += c->w[e] * ref_gate_logp(logits + 6 * j, logits + 6 * j + 3, g + 3 * e, zh[e], c->k[e]);
  }
  return s;
}
static double gatef_logits(const double *th, void *ctx, ref_sig *sig) {
  (void)sig;
  const gatef_ctx *c = ctx;
  return gatef_obj(th, c->zh, c->g, c);
}
static double gatef_zh(const double *zh, void *ctx, ref_sig *sig) {
  (void)sig;
  const gatef_ctx *c = ctx;
  return gatef_obj(c->logits, zh, c->g, c);
}
static double gatef_g(const double *g, void *ctx, ref_sig *sig) {
  (void)sig;
  const gatef_ctx *c = ctx;
  return gatef_obj(c->logits, c->zh, g, c);
}

START_TEST(test_grad_gating_distribution) {
  const size_t n = 30, U = 2, E = n * U;
  rad_fold *f;
  ck_assert_int_eq(rad_fold_create(U, &f), RAD_OK);
  tu_rng r = {8};
  double lg[12], zh[60], g[180], w[60];
  float lgf[12], zhf[60], gf[180], wf[60];
  int32_t k[60];
  for (int i = 0; i < 12; i++) lgf[i] = (float)(lg[i] = (float)tu_gauss(&r));
  for (size_t e = 0; e < E; e++) {
    zhf[e] = (float)(zh[e] = (float)(1.9 * tu_unif(&r) - 0.95)); /* inside (-1, 1) */
    wf[e] = (float)(w[e] = (float)tu_gauss(&r));
    k[e] = 1 + (int32_t)(tu_u64(&r) % 3);
    for (int q = 0; q < 3; q++) gf[3 * e + q] = (float)(g[3 * e + q] = (float)tu_gauss(&r));
  }
  ck_assert_int_eq(rad_fold_set_logits(f, lgf, 12), RAD_OK);
  float lp[60], gzh[60], gg[180], glog[12];
  ck_assert_int_eq(rad_fold_gate_log_prob(f, n, zhf, gf, k, lp), RAD_OK);
  for (size_t e = 0; e < E; e++) {
    size_t j = e % U;
    double rr = ref_gate_logp(lg + 6 * j, lg + 6 * j + 3, g + 3 * e, zh[e], k[e]);
    ck_assert(fabs(lp[e] - rr) < 1e-5 * (1 + fabs(rr)));
  }
  ck_assert_int_eq(rad_fold_gate_backward(f, n, zhf, gf, k, wf, gzh, gg, glog), RAD_OK);
  gatef_ctx c = {n, U, zh, g, w, k, lg};
  assert_fd("gating: logits", tu_check_grad(gatef_logits, &c, lg, 12, glog, 1, FD_STEP, RTOL, ATOL), 12);
  assert_fd("gating: zh", tu_check_grad(gatef_zh, &c, zh, E, gzh, 1, FD_STEP, RTOL, ATOL), (int)E);
  assert_fd("gating: g", tu_check_grad(gatef_g, &c, g, 3 * E, gg, 1, FD_STEP, RTOL, ATOL), (int)(3 * E));
  rad_fold_free(f);
}
END_TEST

/* The gating network: L = sum glogits . g(z). */
typedef struct gnet_ctx {
  size_t n, in, hid, units;
  const double *z, *gl, *theta;
} gnet_ctx;

static double gnet_obj(const double *p, const double *z, const gnet_ctx *c, ref_sig *sig) {
  const size_t in = c->in, H = c->hid, out = 3 * c->units;
  const double *W1 = p, *b1 = W1 + H * in, *W2 = b1 + H, *b2 = W2 + out * H;
  double s = 0.0;
  for (size_t i = 0; i < c->n; i++) {
    double a[64];
    for (size_t h = 0; h < H; h++) {
      double v = b1[h];
      for (size_t q = 0; q < in; q++) v += W1[h * in + q] * z[i * in + q];
      if (sig && sig->n < REF_MAX_SIG) sig->v[sig->n++] = v > 0;
      a[h] = v > 0 ? v : 0;
    }
    for (size_t r = 0; r < out; r++) {
      double v = b2[r];
      for (size_t h = 0; h < H; h++) v += W2[r * H + h] * a[h];
      /* row r = component c of unit j: public logits at 3j + c */
      size_t comp = r / c->units, j = r % c->units;
      s += c->gl[i * out + 3 * j + comp] * v;
    }
  }
  return s;
}
static double gnet_p(const double *p, void *ctx, ref_sig *sig) {
  const gnet_ctx *c = ctx;
  return gnet_obj(p, c->z, c, sig);
}
static double gnet_z(const double *z, void *ctx, ref_sig *sig) {
  const gnet_ctx *c = ctx;
  return gnet_obj(c->theta, z, c, sig);
}

START_TEST(test_grad_gate_network) {
  const size_t n = 10, in = 4, hid = 6, U = 3;
  rad_gate *g;
  ck_assert_int_eq(rad_gate_create(in, hid, U, 21, &g), RAD_OK);
  size_t np = rad_gate_num_params(g);
  ck_assert_uint_eq(np, hid * in + hid + 3 * U * hid + 3 * U);
  float *pf = malloc(np * sizeof(float));
  double *pd = malloc(np * sizeof(double));
  rad_gate_get_params(g, pf, np);
  tu_rng r = {9};
  for (size_t i = 0; i < np; i++) pd[i] = pf[i] = (float)(pf[i] + 0.5 * tu_gauss(&r));
  ck_assert_int_eq(rad_gate_set_params(g, pf, np), RAD_OK);
  double z[40], gl[90];
  float zf[40], glf[90], gz[40], logits[90];
  for (size_t i = 0; i < n * in; i++) zf[i] = (float)(z[i] = (float)tu_gauss(&r));
  for (size_t i = 0; i < n * 3 * U; i++) glf[i] = (float)(gl[i] = (float)tu_gauss(&r));
  float *gp = malloc(np * sizeof(float));
  ck_assert_int_eq(rad_gate_backward(g, n, zf, glf, gz, gp), RAD_OK);
  gnet_ctx c = {n, in, hid, U, z, gl, pd};
  assert_fd("gating network: params", tu_check_grad(gnet_p, &c, pd, np, gp, 1, FD_STEP, RTOL, ATOL), (int)np);
  assert_fd("gating network: z", tu_check_grad(gnet_z, &c, z, n * in, gz, 1, FD_STEP, RTOL, ATOL), (int)(n * in));
  /* the logits themselves: L = logit (i, j, c) picks one entry */
  ck_assert_int_eq(rad_gate_logits(g, n, zf, logits), RAD_OK);
  for (size_t i = 0; i < n; i++)
    for (size_t e = 0; e < 3 * U; e++) {
      double one[90] = {0};
      one[i * 3 * U + e] = 1.0;
      gnet_ctx c1 = {n, in, hid, U, z, one, pd};
      double ref = gnet_obj(pd, z, &c1, NULL);
      ck_assert(fabs(logits[i * 3 * U + e] - ref) < 1e-5 * (1 + fabs(ref)));
    }
  free(pf), free(pd), free(gp);
  rad_gate_free(g);
}
END_TEST

int main(void) {
  Suite *s = suite_create("grad");
  TCase *tc = tcase_create("finite differences");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_grad_rad_d2);
  tcase_add_test(tc, test_grad_affine_d2);
  tcase_add_test(tc, test_grad_rad_d5);
  tcase_add_test(tc, test_grad_mixed_d5);
  tcase_add_test(tc, test_grad_rad_d1);
  tcase_add_test(tc, test_grad_unclamped);
  tcase_add_test(tc, test_grad_couplings);
  tcase_add_test(tc, test_grad_fold);
  tcase_add_test(tc, test_grad_gating_distribution);
  tcase_add_test(tc, test_grad_gate_network);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
