/*
 * test_fit.c: Adam and the fit routine. Adam's update by hand; fits that
 * improve the likelihood; a fit resumed from a saved optimizer state takes
 * the same steps, bit for bit, as one that never stopped; non-finite steps
 * stop with RAD_ENUMERIC and leave the parameters as they were; the
 * callback can stop a fit; keep-best; no heap allocation per step.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"

/* ---- a malloc counting shim (glibc; not under sanitizers) ---------------- */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define COUNT_ALLOCS 0
#endif
#endif
#ifndef COUNT_ALLOCS
#if defined(__GLIBC__)
#define COUNT_ALLOCS 1
#else
#define COUNT_ALLOCS 0
#endif
#endif

static volatile long alloc_count;
#if COUNT_ALLOCS
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n) {
  alloc_count++;
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  alloc_count++;
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  alloc_count++;
  return __libc_realloc(p, n);
}
#endif

static const size_t N = 2000;

static float *problem(int id, uint64_t seed, size_t n) {
  float *x = malloc(n * 2 * sizeof(float));
  ck_assert_int_eq(rad_problem_sample(id, seed, n, x), RAD_OK);
  return x;
}

static double mean_ll(const rad_flow *F, size_t n, const float *x) {
  float *lp = malloc(n * sizeof(float));
  ck_assert_int_eq(rad_flow_log_prob(F, n, x, lp), RAD_OK);
  double s = 0;
  for (size_t i = 0; i < n; i++) s += lp[i];
  free(lp);
  return s / (double)n;
}

/* Adam by hand: step 1 moves each parameter by lr * sign(g) (bias
   corrections cancel the (1 - beta) factors); step 2 with the same g too. */
START_TEST(test_adam_by_hand) {
  rad_adam *a;
  ck_assert_int_eq(rad_adam_create(3, &a), RAD_OK);
  float p[3] = {1.0f, -2.0f, 0.5f};
  const float g[3] = {0.3f, -4.0f, 0.0f};
  ck_assert_int_eq(rad_adam_step(a, p, g, 3), RAD_OK);
  ck_assert_float_eq_tol(p[0], 1.0f + 1e-3f, 1e-7);
  ck_assert_float_eq_tol(p[1], -2.0f - 1e-3f, 1e-7);
  ck_assert_float_eq_tol(p[2], 0.5f, 1e-9);
  ck_assert_int_eq(rad_adam_step(a, p, g, 3), RAD_OK);
  ck_assert_float_eq_tol(p[0], 1.0f + 2e-3f, 3e-7);
  ck_assert_uint_eq(rad_adam_steps(a), 2);
  /* a general step against the formula in double */
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, 0.01), RAD_OK);
  const float g3[3] = {1.0f, 2.0f, -3.0f};
  double m[3], v[3];
  for (int i = 0; i < 3; i++) {
    double m1 = 0.1 * g[i], v1 = 0.001 * g[i] * g[i];
    double m2 = 0.9 * m1 + 0.1 * g[i], v2 = 0.999 * v1 + 0.001 * g[i] * g[i];
    m[i] = 0.9 * m2 + 0.1 * g3[i];
    v[i] = 0.999 * v2 + 0.001 * g3[i] * g3[i];
  }
  float before[3] = {p[0], p[1], p[2]};
  ck_assert_int_eq(rad_adam_step(a, p, g3, 3), RAD_OK);
  for (int i = 0; i < 3; i++) {
    double mh = m[i] / (1 - pow(0.9, 3)), vh = v[i] / (1 - pow(0.999, 3));
    ck_assert_double_eq_tol(p[i], before[i] + 0.01 * mh / (sqrt(vh) + 1e-8), 1e-6);
  }
  /* bad input changes nothing */
  const float bad[3] = {0, NAN, 0};
  float keep[3] = {p[0], p[1], p[2]};
  ck_assert_int_eq(rad_adam_step(a, p, bad, 3), RAD_ENONFINITE);
  ck_assert_mem_eq(p, keep, sizeof p);
  ck_assert_int_eq(rad_adam_step(a, p, g3, 2), RAD_ESIZE);
  ck_assert_uint_eq(rad_adam_steps(a), 3);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, 1e38), RAD_OK);
  const float huge[3] = {1e30f, 1e30f, 1e30f};
  float big[3] = {3e38f, 3e38f, 3e38f};
  memcpy(keep, big, sizeof big);
  ck_assert_int_eq(rad_adam_step(a, big, huge, 3), RAD_ENUMERIC);
  ck_assert_mem_eq(big, keep, sizeof big);
  ck_assert_uint_eq(rad_adam_steps(a), 3);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, 0.0), RAD_EINVAL);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, -1.0), RAD_EINVAL);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_BETA1, 1.0), RAD_EINVAL);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_BATCH_SIZE, 10), RAD_EINVAL);
  double v0;
  ck_assert_int_eq(rad_adam_get_option(a, RAD_OPTION_BETA2, &v0), RAD_OK);
  ck_assert(v0 == 0.999);
  rad_adam_free(a);
  rad_adam_free(NULL);
}
END_TEST

/* A short fit of each model improves the held-out log-likelihood. */
START_TEST(test_fit_improves) {
  float *x = problem(RAD_PROBLEM_MOONS, 1, N), *xt = problem(RAD_PROBLEM_MOONS, 2, N);
  for (int kind = 1; kind <= 2; kind++) {
    rad_flow *F;
    ck_assert_int_eq(rad_flow_create(kind, 2, 4, 16, 8, 3, &F), RAD_OK);
    double before = mean_ll(F, N, xt);
    rad_fit_options *o;
    ck_assert_int_eq(rad_fit_options_create(&o), RAD_OK);
    ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, 300), RAD_OK);
    ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 200), RAD_OK);
    ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 5e-3), RAD_OK);
    uint64_t done;
    ck_assert_int_eq(rad_flow_fit(F, NULL, o, N, x, 0, NULL, NULL, NULL, &done), RAD_OK);
    ck_assert_uint_eq(done, 300);
    double after = mean_ll(F, N, xt);
    printf("fit %s: held-out log-likelihood %.3f -> %.3f\n", kind == 1 ? "RAD" : "affine", before, after);
    ck_assert(after > before + 0.5);
    rad_fit_options_free(o);
    rad_flow_free(F);
  }
  free(x), free(xt);
}
END_TEST

/* 200 steps at once equal 120 steps, a stop, and 80 more steps from the
   saved optimizer state, bit for bit (the minibatch order follows the
   optimizer's step count); with a cosine schedule too, given its horizon. */
static void resume_case(int cosine) {
  float *x = problem(RAD_PROBLEM_RING, 4, N);
  rad_flow *A, *B;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 3, 8, 8, 5, &A), RAD_OK);
  ck_assert_int_eq(rad_flow_copy(A, &B), RAD_OK);
  const size_t np = rad_flow_num_params(A);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 300); /* batches straddle epochs */
  rad_fit_options_set(o, RAD_OPTION_SEED, 77);
  if (cosine) {
    rad_fit_options_set(o, RAD_OPTION_LR_SCHEDULE, 1);
    rad_fit_options_set(o, RAD_OPTION_LR_HORIZON, 200);
    rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 1e-2);
  }
  rad_adam *oa, *ob, *oc;
  rad_adam_create(np, &oa);
  rad_adam_create(np, &ob);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 200);
  ck_assert_int_eq(rad_flow_fit(A, oa, o, N, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 120);
  ck_assert_int_eq(rad_flow_fit(B, ob, o, N, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  /* save and restore the optimizer into a fresh handle */
  float *m = malloc(np * sizeof(float)), *v = malloc(np * sizeof(float));
  uint64_t t;
  ck_assert_int_eq(rad_adam_get_state(ob, m, v, &t, np), RAD_OK);
  ck_assert_uint_eq(t, 120);
  rad_adam_create(np, &oc);
  ck_assert_int_eq(rad_adam_set_state(oc, m, v, t, np), RAD_OK);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 80);
  ck_assert_int_eq(rad_flow_fit(B, oc, o, N, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  float *pa = malloc(np * sizeof(float)), *pb = malloc(np * sizeof(float));
  rad_flow_get_params(A, pa, np);
  rad_flow_get_params(B, pb, np);
  ck_assert_mem_eq(pa, pb, np * sizeof(float));
  /* and a different seed takes different steps */
  rad_flow *C;
  rad_flow_create(RAD_LAYER_RAD, 2, 3, 8, 8, 5, &C);
  rad_fit_options_set(o, RAD_OPTION_SEED, 78);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 200);
  ck_assert_int_eq(rad_flow_fit(C, NULL, o, N, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_flow_get_params(C, pb, np);
  ck_assert(memcmp(pa, pb, np * sizeof(float)) != 0);
  free(m), free(v), free(pa), free(pb), free(x);
  rad_adam_free(oa), rad_adam_free(ob), rad_adam_free(oc);
  rad_fit_options_free(o);
  rad_flow_free(A), rad_flow_free(B), rad_flow_free(C);
}

START_TEST(test_fit_resume) {
  resume_case(0);
  resume_case(1);
}
END_TEST

typedef struct cb_state {
  int calls;
  uint64_t last_step;
  double last_heldout;
  int stop_after;
  long allocs_at_first;
  long allocs_at_last;
  int bad_train;
} cb_state;

static int cb(void *user, uint64_t step, double train, double heldout) {
  cb_state *s = user;
  /* no ck_assert in here: Check allocates when it records a location */
  if (!isfinite(train)) s->bad_train = 1;
  if (s->calls == 0) s->allocs_at_first = alloc_count;
  s->allocs_at_last = alloc_count;
  s->calls++;
  s->last_step = step;
  s->last_heldout = heldout;
  return s->stop_after && s->calls >= s->stop_after;
}

START_TEST(test_fit_callback_and_allocations) {
  float *x = problem(RAD_PROBLEM_CIRCLES, 6, N);
  rad_flow *F;
  rad_flow_create(RAD_LAYER_RAD, 2, 4, 8, 8, 7, &F);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 500);
  rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY, 10);
  rad_fit_options_set(o, RAD_OPTION_EVAL_EVERY, 0);
  cb_state s = {0, 0, 0, 0, 0, 0, 0};
  uint64_t done;
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, N, x, 0, NULL, cb, &s, &done), RAD_OK);
  ck_assert_int_eq(s.calls, 50);
  ck_assert_uint_eq(s.last_step, 500);
  ck_assert(isnan(s.last_heldout));
  ck_assert_int_eq(s.bad_train, 0);
  /* between the first report (step 10) and the last, 490 steps: no heap
     allocation at all */
  if (COUNT_ALLOCS) ck_assert_int_eq(s.allocs_at_last - s.allocs_at_first, 0);
  /* the callback stops a fit */
  cb_state s2 = {0, 0, 0, 3, 0, 0, 0};
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, N, x, 0, NULL, cb, &s2, &done), RAD_OK);
  ck_assert_uint_eq(done, 30);
  ck_assert_int_eq(s2.calls, 3);
  free(x);
  rad_fit_options_free(o);
  rad_flow_free(F);
}
END_TEST

/* Keep-best returns the parameters of the best held-out evaluation: with
   a learning rate that makes training noisy, the final held-out score
   equals the best one the callback saw. */
typedef struct best_state {
  double best, last;
} best_state;
static int best_cb(void *user, uint64_t step, double train, double heldout) {
  (void)step, (void)train;
  best_state *b = user;
  if (heldout > b->best) b->best = heldout;
  b->last = heldout;
  return 0;
}

START_TEST(test_fit_keep_best) {
  float *x = problem(RAD_PROBLEM_GRID, 8, N), *xt = problem(RAD_PROBLEM_GRID, 9, 1000);
  rad_flow *F;
  rad_flow_create(RAD_LAYER_AFFINE, 2, 4, 16, 0, 9, &F);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  /* a sensible start, then a learning rate far too large, so that the
     held-out score gets worse after the first evaluations whatever the
     build's rounding: the last evaluation cannot be the best */
  rad_fit_options_set(o, RAD_OPTION_STEPS, 200);
  rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 1e-2);
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, N, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 100);
  rad_fit_options_set(o, RAD_OPTION_EVAL_EVERY, 5);
  rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY, 5);
  rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 0.5);
  rad_fit_options_set(o, RAD_OPTION_KEEP_BEST, 1);
  best_state b = {-INFINITY, NAN};
  int rc = rad_flow_fit(F, NULL, o, N, x, 1000, xt, best_cb, &b, NULL);
  ck_assert(rc == RAD_OK || rc == RAD_ENUMERIC);
  double final_ll = mean_ll(F, 1000, xt);
  printf("keep best: best reported %.4f, last reported %.4f, final %.4f\n", b.best, b.last, final_ll);
  if (rc == RAD_OK) {
    ck_assert(b.best > b.last);
    ck_assert_double_eq_tol(final_ll, b.best, 1e-9 + 1e-12 * fabs(b.best));
  }
  free(x), free(xt);
  rad_fit_options_free(o);
  rad_flow_free(F);
}
END_TEST

/* A step that would produce non-finite values stops the fit with
   RAD_ENUMERIC, parameters as before that step. */
START_TEST(test_fit_nonfinite_step) {
  /* data far out where a random flow overflows float32 */
  const size_t n = 64;
  float *x = malloc(n * 2 * sizeof(float));
  for (size_t i = 0; i < n * 2; i++) x[i] = (i % 2 ? 3e37f : -3e37f);
  rad_flow *F;
  rad_flow_create(RAD_LAYER_AFFINE, 2, 2, 4, 0, 1, &F);
  tu_perturb_flow(F, 1.0, 3);
  const size_t np = rad_flow_num_params(F);
  float *p0 = malloc(np * sizeof(float)), *p1 = malloc(np * sizeof(float));
  rad_flow_get_params(F, p0, np);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 5);
  rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 16);
  uint64_t done = 99;
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, n, x, 0, NULL, NULL, NULL, &done), RAD_ENUMERIC);
  ck_assert_uint_eq(done, 0);
  rad_flow_get_params(F, p1, np);
  ck_assert_mem_eq(p0, p1, np * sizeof(float));
  /* bad arguments */
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, 0, x, 0, NULL, NULL, NULL, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, n, NULL, 0, NULL, NULL, NULL, NULL), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, n, x, 5, NULL, NULL, NULL, NULL), RAD_EINVAL);
  x[3] = NAN;
  ck_assert_int_eq(rad_flow_fit(F, NULL, o, n, x, 0, NULL, NULL, NULL, NULL), RAD_ENONFINITE);
  rad_adam *wrong;
  rad_adam_create(np + 1, &wrong);
  x[3] = 0;
  ck_assert_int_eq(rad_flow_fit(F, wrong, o, n, x, 0, NULL, NULL, NULL, NULL), RAD_EMISMATCH);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 0), RAD_EINVAL);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, -1), RAD_EINVAL);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, 2.5), RAD_EINVAL);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 0), RAD_EINVAL);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_LOGIT_BOUND, 1), RAD_EINVAL);
  rad_flow_get_params(F, p1, np);
  ck_assert_mem_eq(p0, p1, np * sizeof(float));
  rad_adam_free(wrong);
  rad_fit_options_free(o);
  free(x), free(p0), free(p1);
  rad_flow_free(F);
}
END_TEST

/* Clipping: one fit step with RAD_OPTION_CLIP_NORM equals an Adam step on
   the batch gradient scaled down to that norm. */
START_TEST(test_fit_clip) {
  const size_t n = 500;
  float *x = problem(RAD_PROBLEM_SPIRAL, 3, n);
  rad_flow *A, *B;
  rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 8, 4, &A);
  tu_perturb_flow(A, 0.3, 2);
  rad_flow_copy(A, &B);
  const size_t np = rad_flow_num_params(A);
  float *g = malloc(np * sizeof(float)), *p = malloc(np * sizeof(float)), *q = malloc(np * sizeof(float));
  /* the fit takes the whole set as its one batch, in permuted order: the
     mean gradient does not depend on the order beyond rounding */
  ck_assert_int_eq(rad_flow_grad(B, n, x, g, NULL), RAD_OK);
  double nn = 0;
  for (size_t j = 0; j < np; j++) nn += (double)g[j] * g[j];
  nn = sqrt(nn);
  const double clip = 0.25 * nn;
  for (size_t j = 0; j < np; j++) g[j] = (float)(g[j] * (clip / nn));
  rad_adam *opt;
  rad_adam_create(np, &opt);
  rad_flow_get_params(B, p, np);
  ck_assert_int_eq(rad_adam_step(opt, p, g, np), RAD_OK);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 1);
  rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, (double)n);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_CLIP_NORM, clip), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_CLIP_NORM, -1), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_fit(A, NULL, o, n, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_flow_get_params(A, q, np);
  /* Adam's first step is lr * sign-like; with clipping the moments see
     the scaled gradient, which a first step cannot tell apart: compare a
     second step instead */
  rad_flow_set_params(B, p, np);
  ck_assert_int_eq(rad_flow_grad(B, n, x, g, NULL), RAD_OK);
  for (size_t j = 0; j < np; j++) ck_assert(fabsf(q[j] - p[j]) <= 1e-5f * (1 + fabsf(p[j])));
  /* two steps: the second's moments mix a clipped and an unclipped
     gradient differently from two unclipped ones */
  rad_flow *C;
  rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 8, 4, &C);
  tu_perturb_flow(C, 0.3, 2);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 2);
  rad_fit_options_set(o, RAD_OPTION_CLIP_NORM, 0);
  rad_flow *D;
  rad_flow_copy(C, &D);
  ck_assert_int_eq(rad_flow_fit(C, NULL, o, n, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_fit_options_set(o, RAD_OPTION_CLIP_NORM, 1e-3 * nn);
  ck_assert_int_eq(rad_flow_fit(D, NULL, o, n, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_flow_get_params(C, p, np);
  rad_flow_get_params(D, q, np);
  ck_assert(memcmp(p, q, np * sizeof(float)) != 0);
  free(x), free(g), free(p), free(q);
  rad_adam_free(opt);
  rad_fit_options_free(o);
  rad_flow_free(A), rad_flow_free(B), rad_flow_free(C), rad_flow_free(D);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fit");
  TCase *tc = tcase_create("fit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_adam_by_hand);
  tcase_add_test(tc, test_fit_improves);
  tcase_add_test(tc, test_fit_resume);
  tcase_add_test(tc, test_fit_callback_and_allocations);
  tcase_add_test(tc, test_fit_keep_best);
  tcase_add_test(tc, test_fit_nonfinite_step);
  tcase_add_test(tc, test_fit_clip);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
