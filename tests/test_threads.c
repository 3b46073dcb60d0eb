/*
 * test_threads.c: one `const rad_flow *` shared by many threads (rad.h:
 * functions taking a const handle may be called on the same handle from
 * many threads at once; a workspace is used by one thread at a time).
 *
 * A RAD flow (d = 3, four layers, perturbed parameters, a standardization
 * and column names) is evaluated serially first: log_prob, forward,
 * inverse, sample, sample_at, grad, grad_weighted, score (their _ws
 * forms), gate_probs, forward_layers and sample_component, in each of four
 * setups (no workspace; a workspace smaller than the batch,
 * so chunks; one larger than the batch; a chunking workspace with
 * RAD_OPTION_THREADS = 2). Then 8 threads, released together by a barrier,
 * repeat all of it many times on their own buffers, each in one setup
 * (thread 3 in the two-thread workspace, so its pool runs beside the
 * others), and every result must equal the serial one bit for bit. They
 * also call the other const functions (get_params, copies, save to a
 * buffer, column names, the standardization) meanwhile.
 *
 * Failures inside threads are counted, not asserted (Check's asserts
 * belong to the test's thread); the main thread asserts after joining.
 * `make check-tsan` runs this under ThreadSanitizer.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"

enum { D = 3, N = 200, N_THREADS = 8, N_SETUPS = 4 };
/* iterations per thread; RAD_THREADS_ITERS overrides (sanitizers) */
static int iters = 50;

/* Setups: 0 plain calls, 1 a workspace of 25 rows (chunks), 2 one of 128
   rows (one chunk), 3 a workspace of 25 rows with two threads. */
static const size_t SETUP_BATCH[N_SETUPS] = {0, 25, 128, 25};
static const int SETUP_THREADS[N_SETUPS] = {1, 1, 1, 2};
static int thread_setup(int t) { return t == 3 ? 3 : t % 3; }

typedef struct results {
  float lp[N];
  float z[N * D];
  int32_t *k;      /* N * nl */
  float lp_fwd[N];
  float xinv[N * D];
  float xs[N * D], zs[N * D];
  int32_t *ks;     /* N * nl */
  float xs_at[(N - 10) * D];
  float *grad, *grad_w; /* np */
  double mean, mean_w;
  float score[N * D], lp_score[N];
  float *probs;    /* N * nl * 3 */
  float *layers;   /* 4 * N * D: every layer's output */
  float xc[4 * D];
  double acceptance;
  int rc[11];
} results;

static rad_flow *flow;
static size_t nl, np;
static float X[N * D], W[N];
static unsigned char *saved;
static size_t saved_len;
static float *params;
static results ref[N_SETUPS];
static pthread_barrier_t barrier;
static int32_t ref_labels[64]; /* the labels of one sample (nl of them) */

static void results_init(results *r) {
  memset(r, 0, sizeof *r);
  r->k = calloc(N * nl + 1, sizeof(int32_t));
  r->ks = calloc(N * nl + 1, sizeof(int32_t));
  r->grad = calloc(np, sizeof(float));
  r->grad_w = calloc(np, sizeof(float));
  r->probs = calloc(N * nl * 3 + 1, sizeof(float));
  r->layers = calloc(4 * N * D, sizeof(float));
  ck_assert(r->k && r->ks && r->grad && r->grad_w && r->probs && r->layers);
}
static void results_free(results *r) {
  free(r->k), free(r->ks), free(r->grad), free(r->grad_w), free(r->probs), free(r->layers);
}

/* Every operation once, in one setup (ws NULL for plain calls); the
   costly component sampling (rejection) only when `component` is set. */
static void run_all(const rad_flow *F, rad_workspace *ws, uint64_t seed, int component,
                    results *r) {
  r->rc[0] = rad_flow_log_prob_ws(F, ws, N, X, r->lp);
  r->rc[1] = rad_flow_forward_ws(F, ws, N, X, r->z, r->k, r->lp_fwd);
  r->rc[2] = rad_flow_inverse_ws(F, ws, N, r->z, r->k, r->xinv);
  r->rc[3] = rad_flow_sample_ws(F, ws, seed, N, r->xs, r->zs, r->ks);
  r->rc[4] = rad_flow_sample_at_ws(F, ws, seed, 10, N - 10, r->xs_at, NULL, NULL);
  r->rc[5] = rad_flow_grad_ws(F, ws, N, X, r->grad, &r->mean);
  r->rc[6] = rad_flow_grad_weighted_ws(F, ws, N, X, W, r->grad_w, &r->mean_w);
  r->rc[7] = rad_flow_score_ws(F, ws, N, X, r->score, r->lp_score);
  /* no _ws variants: */
  r->rc[8] = rad_flow_gate_probs(F, N, X, r->probs);
  r->rc[9] = rad_flow_forward_layers(F, N, X, r->layers, NULL);
  /* the component of one sample's labels, by rejection */
  if (component)
    r->rc[10] = rad_flow_sample_component(F, seed, ref_labels, 4, 5000, r->xc, NULL, &r->acceptance);
}

/* The number of results of b that differ from a (bit for bit). */
static int compare(const results *a, const results *b) {
  int bad = 0;
#define SAME(field, bytes) bad += memcmp(a->field, b->field, (bytes)) != 0
  SAME(rc, sizeof a->rc);
  SAME(lp, sizeof a->lp);
  SAME(z, sizeof a->z);
  SAME(k, N * nl * sizeof(int32_t));
  SAME(lp_fwd, sizeof a->lp_fwd);
  SAME(xinv, sizeof a->xinv);
  SAME(xs, sizeof a->xs);
  SAME(zs, sizeof a->zs);
  SAME(ks, N * nl * sizeof(int32_t));
  SAME(xs_at, sizeof a->xs_at);
  SAME(grad, np * sizeof(float));
  SAME(grad_w, np * sizeof(float));
  SAME(score, sizeof a->score);
  SAME(lp_score, sizeof a->lp_score);
  SAME(probs, N * nl * 3 * sizeof(float));
  SAME(layers, 4 * N * D * sizeof(float));
  SAME(xc, sizeof a->xc);
#undef SAME
  bad += memcmp(&a->acceptance, &b->acceptance, sizeof a->acceptance) != 0;
  bad += memcmp(&a->mean, &b->mean, sizeof a->mean) != 0;
  bad += memcmp(&a->mean_w, &b->mean_w, sizeof a->mean_w) != 0;
  return bad;
}

typedef struct worker {
  int id;
  int setup;
  int mismatches;  /* results that differ from the serial run */
  int errors;      /* failed calls */
  int iterations;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  rad_workspace *ws = NULL;
  const int s = w->setup;
  if (SETUP_BATCH[s]) {
    if (rad_workspace_create(flow, SETUP_BATCH[s], &ws) != RAD_OK) w->errors++;
    if (ws && SETUP_THREADS[s] > 1 &&
        rad_workspace_set_option(ws, RAD_OPTION_THREADS, SETUP_THREADS[s]) != RAD_OK)
      w->errors++;
  }
  results r;
  memset(&r, 0, sizeof r);
  r.k = calloc(N * nl + 1, sizeof(int32_t));
  r.ks = calloc(N * nl + 1, sizeof(int32_t));
  r.grad = calloc(np, sizeof(float));
  r.grad_w = calloc(np, sizeof(float));
  r.probs = calloc(N * nl * 3 + 1, sizeof(float));
  r.layers = calloc(4 * N * D, sizeof(float));
  float *p = calloc(np, sizeof(float));
  unsigned char *buf = malloc(saved_len);
  if (!r.k || !r.ks || !r.grad || !r.grad_w || !r.probs || !r.layers || !p || !buf) w->errors++;
  pthread_barrier_wait(&barrier);
  if (w->errors == 0) {
    for (int it = 0; it < iters; it++) {
      const int component = it % 10 == w->id % 10;
      run_all(flow, SETUP_BATCH[s] ? ws : NULL, 77, component, &r);
      if (!component) { /* not computed: take the reference's */
        memcpy(r.xc, ref[s].xc, sizeof r.xc);
        r.acceptance = ref[s].acceptance;
        r.rc[10] = ref[s].rc[10];
      }
      w->mismatches += compare(&ref[s], &r);
      /* the other const functions, between the evaluations */
      if (rad_flow_get_params(flow, p, np) != RAD_OK || memcmp(p, params, np * sizeof(float)))
        w->mismatches++;
      size_t len = 0;
      if (rad_flow_save_to_buffer(flow, buf, saved_len, &len) != RAD_OK || len != saved_len ||
          memcmp(buf, saved, len))
        w->mismatches++;
      if (strcmp(rad_flow_column_name(flow, 1), "bill depth (mm)") != 0) w->mismatches++;
      float sh[D], sc[D];
      if (rad_flow_get_standardization(flow, sh, sc, D) != RAD_OK || sc[1] != 0.25f)
        w->mismatches++;
      if (it % 8 == w->id % 8) {
        rad_flow *C = NULL;
        rad_coupling *c = NULL;
        float lp[N];
        if (rad_flow_copy(flow, &C) != RAD_OK || rad_flow_log_prob(C, N, X, lp) != RAD_OK ||
            memcmp(lp, ref[0].lp, sizeof lp))
          w->mismatches++;
        if (rad_flow_get_coupling(flow, (size_t)it % 4, &c) != RAD_OK) w->errors++;
        rad_coupling_free(c);
        rad_flow_free(C);
      }
      w->iterations++;
    }
  }
  free(p), free(buf);
  results_free(&r);
  rad_workspace_free(ws);
  return NULL;
}

START_TEST(test_shared_flow) {
  /* valgrind runs one thread at a time, about 100 times slower: 5
     iterations there still check every result (ThreadSanitizer and make
     check run 50) */
  const char *pre = getenv("LD_PRELOAD");
  if (pre && strstr(pre, "vgpreload")) iters = 5;
  const char *e = getenv("RAD_THREADS_ITERS");
  if (e && atoi(e) > 0) iters = atoi(e);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, D, 4, 12, 6, 11, &flow), RAD_OK);
  tu_perturb_flow(flow, 0.3, 12);
  const float shift[D] = {1.0f, -2.0f, 0.5f}, scale[D] = {2.0f, 0.25f, 1.5f};
  ck_assert_int_eq(rad_flow_set_standardization(flow, shift, scale, D), RAD_OK);
  const char *names[D] = {"bill_length_mm", "bill depth (mm)", "flipper"};
  ck_assert_int_eq(rad_flow_set_column_names(flow, names, D), RAD_OK);
  nl = rad_flow_num_labels(flow);
  np = rad_flow_num_params(flow);
  ck_assert_uint_eq(nl, 6);
  tu_rng g = {5};
  for (size_t i = 0; i < N * D; i++) X[i] = shift[i % D] + scale[i % D] * (float)(1.5 * tu_gauss(&g));
  for (size_t i = 0; i < N; i++) W[i] = (float)(i % 4) * 0.5f;
  params = malloc(np * sizeof(float));
  ck_assert_int_eq(rad_flow_get_params(flow, params, np), RAD_OK);
  ck_assert_int_eq(rad_flow_save_to_buffer(flow, NULL, 0, &saved_len), RAD_OK);
  saved = malloc(saved_len);
  ck_assert_int_eq(rad_flow_save_to_buffer(flow, saved, saved_len, &saved_len), RAD_OK);

  {
    float x1[D], z1[D];
    ck_assert_int_eq(rad_flow_sample(flow, 3, 1, x1, z1, ref_labels), RAD_OK);
  }
  /* the serial run, one setup after another */
  for (int s = 0; s < N_SETUPS; s++) {
    rad_workspace *ws = NULL;
    if (SETUP_BATCH[s]) {
      ck_assert_int_eq(rad_workspace_create(flow, SETUP_BATCH[s], &ws), RAD_OK);
      ck_assert_int_eq(rad_workspace_set_option(ws, RAD_OPTION_THREADS, SETUP_THREADS[s]), RAD_OK);
    }
    results_init(&ref[s]);
    run_all(flow, ws, 77, 1, &ref[s]);
    for (int q = 0; q < 11; q++)
      ck_assert_msg(ref[s].rc[q] == RAD_OK, "setup %d, call %d: %s", s, q, rad_strerror(ref[s].rc[q]));
    /* and once more: a serial repetition is bit-identical */
    results again;
    results_init(&again);
    run_all(flow, ws, 77, 1, &again);
    ck_assert_int_eq(compare(&ref[s], &again), 0);
    results_free(&again);
    rad_workspace_free(ws);
  }
  /* Results are compared within a setup only: across setups (chunk
     sizes) they may differ in the last bits, as OpenBLAS's kernels for
     AVX2-only CPUs round differently for different matrix widths
     (docs/reliability.md, "Findings"). */

  /* the threads */
  ck_assert_int_eq(pthread_barrier_init(&barrier, NULL, N_THREADS), 0);
  pthread_t tid[N_THREADS];
  worker w[N_THREADS];
  for (int t = 0; t < N_THREADS; t++) {
    w[t] = (worker){t, thread_setup(t), 0, 0, 0};
    ck_assert_int_eq(pthread_create(&tid[t], NULL, work, &w[t]), 0);
  }
  for (int t = 0; t < N_THREADS; t++) {
    ck_assert_int_eq(pthread_join(tid[t], NULL), 0);
  }
  pthread_barrier_destroy(&barrier);
  for (int t = 0; t < N_THREADS; t++) {
    ck_assert_msg(w[t].errors == 0, "thread %d: %d failed calls", t, w[t].errors);
    ck_assert_msg(w[t].mismatches == 0, "thread %d (setup %d): %d results differ from the serial run",
                  t, w[t].setup, w[t].mismatches);
    ck_assert_int_eq(w[t].iterations, iters);
  }
  printf("test_threads: %d threads x %d iterations of 10 calls (11 every 10th): identical to "
         "the serial run\n",
         N_THREADS, iters);
  for (int s = 0; s < N_SETUPS; s++) results_free(&ref[s]);
  free(params), free(saved);
  rad_flow_free(flow);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_shared_flow);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
