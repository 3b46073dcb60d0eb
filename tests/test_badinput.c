/*
 * test_badinput.c: the bad-input conventions of rad.h, for every public
 * function (docs/bad-input.md is the table this file checks, row by row).
 *
 * Every bad call must return its exact status code, leave every output
 * buffer byte for byte as it was (outputs are filled with sentinels, plus
 * guard elements past their end), set output handles (T **out) to NULL,
 * and leave every handle unchanged and working: a snapshot of every
 * handle's state is compared after each call, and the valid call is made
 * again and must give the same bytes as before the bad one.
 *
 * The batch entry points are table-driven (ops[] below): for each one,
 * NULL handle, each required buffer NULL, n = 0 (with NULL buffers and
 * with real ones), three batch sizes whose byte count overflows size_t,
 * NaN / -NaN / +inf / -inf at the first, middle and last element of every
 * checked input, labels outside {1,2,3}, labels inconsistent with z, and a
 * workspace too small for the flow (with 1 and 2 threads).
 *
 * The test case "regressions" holds three library bugs found while writing
 * this file, fixed since, with the inputs that showed them (see
 * docs/bad-input.md).
 *
 * The number of bad inputs tried is printed at the end.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <check.h>
#include <dirent.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rad/rad.h>

#include "testutil.h"

/* ---- counting bad inputs (shared with Check's forked children) ---------- */
static long *bad_count;
static void count_bad(void) {
  if (bad_count) (*bad_count)++;
}

static void bad_rc(int rc, int expect, const char *what, int line) {
  count_bad();
  if (rc != expect)
    ck_abort_msg("line %d: %s returned %d (%s), expected %d (%s)", line, what, rc,
                 rad_strerror(rc), expect, rad_strerror(expect));
}
/* One bad call with its expected status code. */
#define BAD(expect, call) bad_rc((call), (expect), #call, __LINE__)
/* One bad call of a function without a status code, checked by cond. */
#define BADV(cond)                                                   \
  do {                                                               \
    count_bad();                                                     \
    ck_assert_msg((cond), "line %d: %s does not hold", __LINE__, #cond); \
  } while (0)
/* A bad call that must also leave its output handle NULL. */
static int junk;
#define BAD_OUT(expect, ptr, call)                                              \
  do {                                                                          \
    (ptr) = (void *)&junk;                                                      \
    BAD(expect, call);                                                          \
    ck_assert_msg((ptr) == NULL, "line %d: %s left its output handle set", __LINE__, \
                  #call);                                                       \
  } while (0)

/* ---- sentinels ------------------------------------------------------------ */
enum { TF = 1, TI = 2, TD = 3 }; /* float, int32_t, double */
#define SENT_F 12345.0f
#define SENT_I 777
#define SENT_D 12345.0
#define GUARD 8 /* sentinel elements past the end of every output */

static size_t esz(int t) { return t == TD ? sizeof(double) : 4; }

static void fill_sent(void *p, int t, size_t cnt) {
  for (size_t i = 0; i < cnt; i++) {
    if (t == TF) ((float *)p)[i] = SENT_F;
    if (t == TI) ((int32_t *)p)[i] = SENT_I;
    if (t == TD) ((double *)p)[i] = SENT_D;
  }
}
/* Byte-for-byte comparison with the sentinel. */
static int is_sent(const void *p, int t, size_t cnt) {
  const float sf = SENT_F;
  const int32_t si = SENT_I;
  const double sd = SENT_D;
  const void *s = t == TF ? (const void *)&sf : t == TI ? (const void *)&si : (const void *)&sd;
  const size_t e = esz(t);
  for (size_t i = 0; i < cnt; i++)
    if (memcmp((const unsigned char *)p + i * e, s, e) != 0) return 0;
  return 1;
}
static float *fsent(size_t n) {
  float *p = malloc((n + GUARD) * sizeof(float));
  fill_sent(p, TF, n + GUARD);
  return p;
}
static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  ck_assert_ptr_nonnull(p);
  return p;
}

/* ---- a byte snapshot of handle state -------------------------------------- */
typedef struct bytes {
  unsigned char *p;
  size_t n, cap;
} bytes;
static void put(bytes *b, const void *src, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n) + 64;
    b->p = realloc(b->p, b->cap);
    ck_assert_ptr_nonnull(b->p);
  }
  memcpy(b->p + b->n, src, n);
  b->n += n;
}
static void put_sz(bytes *b, size_t v) { put(b, &v, sizeof v); }
static void put_flow(bytes *b, const rad_flow *F) {
  const size_t np = rad_flow_num_params(F), d = rad_flow_dim(F);
  put_sz(b, d);
  put_sz(b, np);
  put_sz(b, rad_flow_num_layers(F));
  put_sz(b, rad_flow_num_labels(F));
  float *p = xmalloc(np * sizeof(float) + 4);
  ck_assert_int_eq(rad_flow_get_params(F, np ? p : NULL, np), RAD_OK);
  put(b, p, np * sizeof(float));
  free(p);
  float *sh = xmalloc(d * sizeof(float)), *sc = xmalloc(d * sizeof(float));
  ck_assert_int_eq(rad_flow_get_standardization(F, sh, sc, d), RAD_OK);
  put(b, sh, d * sizeof(float));
  put(b, sc, d * sizeof(float));
  free(sh), free(sc);
  int hs = rad_flow_has_standardization(F);
  put(b, &hs, sizeof hs);
  for (size_t i = 0; i < d; i++) {
    const char *s = rad_flow_column_name(F, i);
    put(b, s ? s : "(none)", strlen(s ? s : "(none)") + 1);
  }
  double v;
  ck_assert_int_eq(rad_flow_get_option(F, RAD_OPTION_LOGIT_BOUND, &v), RAD_OK);
  put(b, &v, sizeof v);
}

/* ---- the fixture ------------------------------------------------------------ */
enum { NR = 6 };  /* rows of a valid batch (>= 4: a 2-thread workspace splits it) */
#define D 3       /* flow and coupling dimension */
#define U 3       /* fold units */
#define GIN 3     /* gating network input */
#define GU 2      /* gating network units */

typedef struct fx {
  rad_flow *F;      /* RAD, 2 layers, standardization and names */
  rad_flow *A;      /* affine, 2 layers (no labels) */
  rad_flow *E;      /* empty (no layers, no parameters) */
  rad_workspace *ws1, *ws2;       /* for F; ws2 has 2 threads */
  rad_workspace *small1, *small2; /* too small for F; small2 has 2 threads */
  rad_fold *fold;
  rad_gate *gate;
  rad_coupling *cpl;
  size_t nl, np, L, cnl, cnp, gnp;
  int nullh; /* the op wrappers pass NULL handles */
  /* valid inputs */
  float x[NR * D], z[NR * D], w[NR], xa[NR * D], za[NR * D];
  int32_t *k, *kc;
  float u[NR * U], zh[NR * U], g3[NR * U * 3], gzh[NR * U], gls[NR * U], glp[NR * U];
  int32_t fk[NR * U];
  float gin[NR * GIN], glog[NR * GU * 3];
  float cx[NR * D], cz[NR * D], cgz[NR * D], cgld[NR];
  int32_t *ck;
} fx;

static void gauss_fill(float *p, size_t n, double scale, uint64_t seed) {
  tu_rng r = {seed};
  for (size_t i = 0; i < n; i++) p[i] = (float)(scale * tu_gauss(&r));
}

static fx *fx_new(void) {
  fx *f = calloc(1, sizeof *f);
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, D, 2, 16, 8, 11, &f->F), RAD_OK);
  tu_perturb_flow(f->F, 0.2, 12);
  const float sh[D] = {1.0f, -2.0f, 0.5f}, sc[D] = {2.0f, 0.5f, 1.0f};
  ck_assert_int_eq(rad_flow_set_standardization(f->F, sh, sc, D), RAD_OK);
  const char *names[D] = {"alpha", "beta", "gamma"};
  ck_assert_int_eq(rad_flow_set_column_names(f->F, names, D), RAD_OK);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_AFFINE, D, 2, 8, 0, 13, &f->A), RAD_OK);
  tu_perturb_flow(f->A, 0.2, 14);
  ck_assert_int_eq(rad_flow_create_empty(D, &f->E), RAD_OK);
  f->nl = rad_flow_num_labels(f->F);
  f->np = rad_flow_num_params(f->F);
  f->L = rad_flow_num_layers(f->F);
  ck_assert_uint_gt(f->nl, 0);

  ck_assert_int_eq(rad_workspace_create(f->F, 8, &f->ws1), RAD_OK);
  ck_assert_int_eq(rad_workspace_create(f->F, 8, &f->ws2), RAD_OK);
  ck_assert_int_eq(rad_workspace_set_option(f->ws2, RAD_OPTION_THREADS, 2), RAD_OK);
  rad_flow *T; /* the smallest flow there is: its workspace fits nothing of F */
  ck_assert_int_eq(rad_flow_create_empty(1, &T), RAD_OK);
  ck_assert_int_eq(rad_workspace_create(T, 1, &f->small1), RAD_OK);
  ck_assert_int_eq(rad_workspace_create(T, 1, &f->small2), RAD_OK);
  ck_assert_int_eq(rad_workspace_set_option(f->small2, RAD_OPTION_THREADS, 2), RAD_OK);
  rad_flow_free(T);

  tu_rng r = {5};
  for (size_t i = 0; i < NR; i++)
    for (size_t j = 0; j < D; j++) f->x[i * D + j] = sh[j] + sc[j] * (float)(0.8 * tu_gauss(&r));
  f->k = xmalloc(NR * f->nl * sizeof(int32_t));
  ck_assert_int_eq(rad_flow_forward(f->F, NR, f->x, f->z, f->k, NULL), RAD_OK);
  const float w[NR] = {1.0f, 0.5f, 2.0f, 0.0f, 1.0f, 3.0f};
  memcpy(f->w, w, sizeof w);
  f->kc = xmalloc(f->nl * sizeof(int32_t));
  float one[D];
  ck_assert_int_eq(rad_flow_sample(f->F, 3, 1, one, NULL, f->kc), RAD_OK);
  gauss_fill(f->xa, NR * D, 1.0, 6);
  ck_assert_int_eq(rad_flow_forward(f->A, NR, f->xa, f->za, NULL, NULL), RAD_OK);

  ck_assert_int_eq(rad_fold_create(U, &f->fold), RAD_OK);
  float lg[6 * U];
  gauss_fill(lg, 6 * U, 0.5, 7);
  ck_assert_int_eq(rad_fold_set_logits(f->fold, lg, 6 * U), RAD_OK);
  gauss_fill(f->u, NR * U, 1.5, 8);
  ck_assert_int_eq(rad_fold_forward(f->fold, NR, f->u, f->zh, f->fk, NULL), RAD_OK);
  gauss_fill(f->g3, NR * U * 3, 1.0, 9);
  gauss_fill(f->gzh, NR * U, 1.0, 10);
  gauss_fill(f->gls, NR * U, 1.0, 11);
  gauss_fill(f->glp, NR * U, 1.0, 12);

  ck_assert_int_eq(rad_gate_create(GIN, 5, GU, 21, &f->gate), RAD_OK);
  f->gnp = rad_gate_num_params(f->gate);
  float *gp = xmalloc(f->gnp * sizeof(float)), *gd = xmalloc(f->gnp * sizeof(float));
  ck_assert_int_eq(rad_gate_get_params(f->gate, gp, f->gnp), RAD_OK);
  gauss_fill(gd, f->gnp, 0.3, 22);
  for (size_t i = 0; i < f->gnp; i++) gp[i] += gd[i];
  ck_assert_int_eq(rad_gate_set_params(f->gate, gp, f->gnp), RAD_OK);
  free(gp), free(gd);
  gauss_fill(f->gin, NR * GIN, 1.0, 23);
  gauss_fill(f->glog, NR * GU * 3, 1.0, 24);

  const uint8_t mask[D] = {1, 0, 1};
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, D, mask, D, 6, 4, 31, &f->cpl), RAD_OK);
  tu_perturb_coupling(f->cpl, 0.2, 32);
  f->cnl = rad_coupling_num_labels(f->cpl);
  f->cnp = rad_coupling_num_params(f->cpl);
  gauss_fill(f->cx, NR * D, 1.0, 33);
  f->ck = xmalloc(NR * f->cnl * sizeof(int32_t));
  ck_assert_int_eq(rad_coupling_forward(f->cpl, NR, f->cx, f->cz, f->ck, NULL), RAD_OK);
  gauss_fill(f->cgz, NR * D, 1.0, 34);
  gauss_fill(f->cgld, NR, 1.0, 35);
  return f;
}

static void fx_free(fx *f) {
  rad_flow_free(f->F), rad_flow_free(f->A), rad_flow_free(f->E);
  rad_workspace_free(f->ws1), rad_workspace_free(f->ws2);
  rad_workspace_free(f->small1), rad_workspace_free(f->small2);
  rad_fold_free(f->fold), rad_gate_free(f->gate), rad_coupling_free(f->cpl);
  free(f->k), free(f->kc), free(f->ck);
  free(f);
}

/* Everything a bad call must not change. */
static bytes snap(const fx *f) {
  bytes b = {NULL, 0, 0};
  put_flow(&b, f->F);
  put_flow(&b, f->A);
  put_flow(&b, f->E);
  float lg[6 * U];
  ck_assert_int_eq(rad_fold_get_logits(f->fold, lg, 6 * U), RAD_OK);
  put(&b, lg, sizeof lg);
  put_sz(&b, rad_fold_units(f->fold));
  float *gp = xmalloc(f->gnp * sizeof(float));
  ck_assert_int_eq(rad_gate_get_params(f->gate, gp, f->gnp), RAD_OK);
  put(&b, gp, f->gnp * sizeof(float));
  free(gp);
  float *cp = xmalloc(f->cnp * sizeof(float));
  ck_assert_int_eq(rad_coupling_get_params(f->cpl, cp, f->cnp), RAD_OK);
  put(&b, cp, f->cnp * sizeof(float));
  free(cp);
  uint8_t m[D];
  ck_assert_int_eq(rad_coupling_get_mask(f->cpl, m, D), RAD_OK);
  put(&b, m, D);
  double v;
  ck_assert_int_eq(rad_coupling_get_option(f->cpl, RAD_OPTION_LOGIT_BOUND, &v), RAD_OK);
  put(&b, &v, sizeof v);
  rad_workspace *const wss[4] = {f->ws1, f->ws2, f->small1, f->small2};
  for (int i = 0; i < 4; i++) {
    put_sz(&b, rad_workspace_max_batch(wss[i]));
    put_sz(&b, rad_workspace_size(wss[i]));
    ck_assert_int_eq(rad_workspace_get_option(wss[i], RAD_OPTION_THREADS, &v), RAD_OK);
    put(&b, &v, sizeof v);
  }
  return b;
}
static int same_bytes(const bytes *a, const bytes *b) {
  return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* ======================================================================
 * The batch entry points, table-driven
 * ====================================================================== */
enum { CK_NONE = 0, CK_FINITE = 1, CK_LABEL = 2 };

typedef struct spec {
  int type;        /* TF, TI, TD */
  size_t per_row;  /* elements per row */
  size_t fixed;    /* elements independent of n */
  int req;         /* required (NULL is RAD_EINVAL for n > 0) */
  int check;       /* inputs: CK_FINITE (NaN/inf refused) or CK_LABEL */
  int zero_empty;  /* outputs: a sum over the batch, zeroed for n = 0 */
  const void *src; /* inputs: the valid values */
} spec;

typedef int (*op_fn)(fx *, rad_workspace *, size_t, const void *const *, void *const *);
typedef void (*op_hook)(const fx *, void *const *);

typedef struct op {
  const char *name;
  op_fn call;
  int ws;              /* takes a workspace: run with 1 and 2 threads */
  int n0;              /* status for n = 0 */
  int no_toobig;       /* skip the size-overflow rows (none does now) */
  op_hook inconsistent; /* makes the labels inconsistent with z */
  int nin, nout;
  spec in[4], out[4];
} op;

#define IN_F(src_, per_) {TF, per_, 0, 1, CK_FINITE, 0, src_}
#define IN_FOPT(src_, per_) {TF, per_, 0, 0, CK_FINITE, 0, src_}
#define IN_L(src_, per_, fixed_) {TI, per_, fixed_, 1, CK_LABEL, 0, src_}
#define OUT_F(per_, req_) {TF, per_, 0, req_, 0, 0, NULL}
#define OUT_FIXED(fixed_, req_) {TF, 0, fixed_, req_, 0, 0, NULL}
#define OUT_SUM(fixed_) {TF, 0, fixed_, 0, 0, 1, NULL}
#define OUT_I(per_) {TI, per_, 0, 0, 0, 0, NULL}
#define OUT_D {TD, 0, 1, 0, 0, 0, NULL}

#define HF (f->nullh ? NULL : f->F)
#define HA (f->nullh ? NULL : f->A)
#define HFOLD (f->nullh ? NULL : f->fold)
#define HGATE (f->nullh ? NULL : f->gate)
#define HCPL (f->nullh ? NULL : f->cpl)
#define OPARGS fx *f, rad_workspace *ws, size_t n, const void *const *in, void *const *out
#define UNUSED_WS (void)ws

static int o_log_prob(OPARGS) { UNUSED_WS; return rad_flow_log_prob(HF, n, in[0], out[0]); }
static int o_log_prob_ws(OPARGS) { return rad_flow_log_prob_ws(HF, ws, n, in[0], out[0]); }
static int o_forward(OPARGS) {
  UNUSED_WS;
  return rad_flow_forward(HF, n, in[0], out[0], out[1], out[2]);
}
static int o_forward_ws(OPARGS) {
  return rad_flow_forward_ws(HF, ws, n, in[0], out[0], out[1], out[2]);
}
static int o_forward_layers(OPARGS) {
  UNUSED_WS;
  return rad_flow_forward_layers(HF, n, in[0], out[0], out[1]);
}
static int o_inverse(OPARGS) { UNUSED_WS; return rad_flow_inverse(HF, n, in[0], in[1], out[0]); }
static int o_inverse_ws(OPARGS) { return rad_flow_inverse_ws(HF, ws, n, in[0], in[1], out[0]); }
static int o_sample(OPARGS) {
  UNUSED_WS;
  (void)in;
  return rad_flow_sample(HF, 7, n, out[0], out[1], out[2]);
}
static int o_sample_ws(OPARGS) {
  (void)in;
  return rad_flow_sample_ws(HF, ws, 7, n, out[0], out[1], out[2]);
}
static int o_sample_at(OPARGS) {
  UNUSED_WS;
  (void)in;
  return rad_flow_sample_at(HF, 7, 5, n, out[0], out[1], out[2]);
}
static int o_sample_at_ws(OPARGS) {
  (void)in;
  return rad_flow_sample_at_ws(HF, ws, 7, 5, n, out[0], out[1], out[2]);
}
static int o_grad(OPARGS) { UNUSED_WS; return rad_flow_grad(HF, n, in[0], out[0], out[1]); }
static int o_grad_ws(OPARGS) { return rad_flow_grad_ws(HF, ws, n, in[0], out[0], out[1]); }
static int o_grad_w(OPARGS) {
  UNUSED_WS;
  return rad_flow_grad_weighted(HF, n, in[0], in[1], out[0], out[1]);
}
static int o_grad_w_ws(OPARGS) {
  return rad_flow_grad_weighted_ws(HF, ws, n, in[0], in[1], out[0], out[1]);
}
static int o_gate_probs(OPARGS) { UNUSED_WS; return rad_flow_gate_probs(HF, n, in[0], out[0]); }
static int o_component(OPARGS) {
  UNUSED_WS;
  return rad_flow_sample_component(HF, 9, in[0], n, 5000, out[0], out[1], out[2]);
}
static int o_score(OPARGS) { UNUSED_WS; return rad_flow_score(HF, n, in[0], out[0], out[1]); }
static int o_score_ws(OPARGS) { return rad_flow_score_ws(HF, ws, n, in[0], out[0], out[1]); }
static int o_a_forward(OPARGS) {
  UNUSED_WS;
  return rad_flow_forward(HA, n, in[0], out[0], NULL, out[1]);
}
static int o_a_inverse(OPARGS) { UNUSED_WS; return rad_flow_inverse(HA, n, in[0], NULL, out[0]); }
static int o_fold_forward(OPARGS) {
  UNUSED_WS;
  return rad_fold_forward(HFOLD, n, in[0], out[0], out[1], out[2]);
}
static int o_fold_inverse(OPARGS) {
  UNUSED_WS;
  return rad_fold_inverse(HFOLD, n, in[0], in[1], out[0]);
}
static int o_fold_backward(OPARGS) {
  UNUSED_WS;
  return rad_fold_backward(HFOLD, n, in[0], in[1], in[2], out[0], out[1]);
}
static int o_fold_gate_lp(OPARGS) {
  UNUSED_WS;
  return rad_fold_gate_log_prob(HFOLD, n, in[0], in[1], in[2], out[0]);
}
static int o_fold_gate_bwd(OPARGS) {
  UNUSED_WS;
  return rad_fold_gate_backward(HFOLD, n, in[0], in[1], in[2], in[3], out[0], out[1], out[2]);
}
static int o_gate_logits(OPARGS) { UNUSED_WS; return rad_gate_logits(HGATE, n, in[0], out[0]); }
static int o_gate_backward(OPARGS) {
  UNUSED_WS;
  return rad_gate_backward(HGATE, n, in[0], in[1], out[0], out[1]);
}
static int o_cpl_forward(OPARGS) {
  UNUSED_WS;
  return rad_coupling_forward(HCPL, n, in[0], out[0], out[1], out[2]);
}
static int o_cpl_inverse(OPARGS) {
  UNUSED_WS;
  return rad_coupling_inverse(HCPL, n, in[0], in[1], out[0]);
}
static int o_cpl_backward(OPARGS) {
  UNUSED_WS;
  return rad_coupling_backward(HCPL, n, in[0], in[1], in[2], out[0], out[1]);
}

/* Labels that cannot have produced z: the last row's z far outside the
   fold's range (|zh| >> 1) with inner labels. */
static void inc_flow(const fx *f, void *const *in) {
  float *z = in[0];
  int32_t *k = in[1];
  for (size_t j = 0; j < D; j++) z[(NR - 1) * D + j] = 1e3f;
  for (size_t j = 0; j < f->nl; j++) k[(NR - 1) * f->nl + j] = 2;
}
static void inc_cpl(const fx *f, void *const *in) {
  float *z = in[0];
  int32_t *k = in[1];
  for (size_t j = 0; j < D; j++) z[(NR - 1) * D + j] = 1e3f;
  for (size_t j = 0; j < f->cnl; j++) k[(NR - 1) * f->cnl + j] = 2;
}
static void inc_fold_inverse(const fx *f, void *const *in) {
  (void)f;
  ((float *)in[0])[(NR - 1) * U] = 3.0f; /* zh = 3 with the inner label 2 */
  ((int32_t *)in[1])[(NR - 1) * U] = 2;
}
static void inc_fold_gate(const fx *f, void *const *in) {
  (void)f;
  ((float *)in[0])[(NR - 1) * U] = 1.5f; /* zh > 1 is only possible with k = 3 */
  ((int32_t *)in[2])[(NR - 1) * U] = 1;
}

static size_t build_ops(const fx *f, op *ops) {
  const size_t d = D, nl = f->nl, np = f->np, L = f->L;
  size_t c = 0;
  ops[c++] = (op){"rad_flow_log_prob", o_log_prob, 0, RAD_OK, 0, NULL, 1, 1,
                  {IN_F(f->x, d)}, {OUT_F(1, 1)}};
  ops[c++] = (op){"rad_flow_log_prob_ws", o_log_prob_ws, 1, RAD_OK, 0, NULL, 1, 1,
                  {IN_F(f->x, d)}, {OUT_F(1, 1)}};
  ops[c++] = (op){"rad_flow_forward", o_forward, 0, RAD_OK, 0, NULL, 1, 3,
                  {IN_F(f->x, d)}, {OUT_F(d, 1), OUT_I(nl), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_flow_forward_ws", o_forward_ws, 1, RAD_OK, 0, NULL, 1, 3,
                  {IN_F(f->x, d)}, {OUT_F(d, 1), OUT_I(nl), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_flow_forward_layers", o_forward_layers, 0, RAD_OK, 0, NULL, 1, 2,
                  {IN_F(f->x, d)}, {OUT_F(d * L, 1), OUT_I(nl)}};
  ops[c++] = (op){"rad_flow_inverse", o_inverse, 0, RAD_OK, 0, inc_flow, 2, 1,
                  {IN_F(f->z, d), IN_L(f->k, nl, 0)}, {OUT_F(d, 1)}};
  ops[c++] = (op){"rad_flow_inverse_ws", o_inverse_ws, 1, RAD_OK, 0, inc_flow, 2, 1,
                  {IN_F(f->z, d), IN_L(f->k, nl, 0)}, {OUT_F(d, 1)}};
  ops[c++] = (op){"rad_flow_sample", o_sample, 0, RAD_OK, 0, NULL, 0, 3,
                  {{0}}, {OUT_F(d, 1), OUT_F(d, 0), OUT_I(nl)}};
  ops[c++] = (op){"rad_flow_sample_ws", o_sample_ws, 1, RAD_OK, 0, NULL, 0, 3,
                  {{0}}, {OUT_F(d, 1), OUT_F(d, 0), OUT_I(nl)}};
  ops[c++] = (op){"rad_flow_sample_at", o_sample_at, 0, RAD_OK, 0, NULL, 0, 3,
                  {{0}}, {OUT_F(d, 1), OUT_F(d, 0), OUT_I(nl)}};
  ops[c++] = (op){"rad_flow_sample_at_ws", o_sample_at_ws, 1, RAD_OK, 0, NULL, 0, 3,
                  {{0}}, {OUT_F(d, 1), OUT_F(d, 0), OUT_I(nl)}};
  ops[c++] = (op){"rad_flow_grad", o_grad, 0, RAD_EINVAL, 0, NULL, 1, 2,
                  {IN_F(f->x, d)}, {OUT_FIXED(np, 1), OUT_D}};
  ops[c++] = (op){"rad_flow_grad_ws", o_grad_ws, 1, RAD_EINVAL, 0, NULL, 1, 2,
                  {IN_F(f->x, d)}, {OUT_FIXED(np, 1), OUT_D}};
  ops[c++] = (op){"rad_flow_grad_weighted", o_grad_w, 0, RAD_EINVAL, 0, NULL, 2, 2,
                  {IN_F(f->x, d), IN_F(f->w, 1)}, {OUT_FIXED(np, 1), OUT_D}};
  ops[c++] = (op){"rad_flow_grad_weighted_ws", o_grad_w_ws, 1, RAD_EINVAL, 0, NULL, 2, 2,
                  {IN_F(f->x, d), IN_F(f->w, 1)}, {OUT_FIXED(np, 1), OUT_D}};
  ops[c++] = (op){"rad_flow_gate_probs", o_gate_probs, 0, RAD_OK, 0, NULL, 1, 1,
                  {IN_F(f->x, d)}, {OUT_F(3 * nl, 1)}};
  ops[c++] = (op){"rad_flow_sample_component", o_component, 0, RAD_OK, 0, NULL, 1, 3,
                  {IN_L(f->kc, 0, nl)}, {OUT_F(d, 1), OUT_F(d, 0), OUT_D}};
  ops[c++] = (op){"rad_flow_score", o_score, 0, RAD_OK, 0, NULL, 1, 2,
                  {IN_F(f->x, d)}, {OUT_F(d, 1), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_flow_score_ws", o_score_ws, 1, RAD_OK, 0, NULL, 1, 2,
                  {IN_F(f->x, d)}, {OUT_F(d, 1), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_flow_forward (affine)", o_a_forward, 0, RAD_OK, 0, NULL, 1, 2,
                  {IN_F(f->xa, d)}, {OUT_F(d, 1), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_flow_inverse (affine, k NULL)", o_a_inverse, 0, RAD_OK, 0, NULL, 1, 1,
                  {IN_F(f->za, d)}, {OUT_F(d, 1)}};
  ops[c++] = (op){"rad_fold_forward", o_fold_forward, 0, RAD_OK, 0, NULL, 1, 3,
                  {IN_F(f->u, U)}, {OUT_F(U, 1), OUT_I(U), OUT_F(U, 0)}};
  ops[c++] = (op){"rad_fold_inverse", o_fold_inverse, 0, RAD_OK, 0, inc_fold_inverse, 2, 1,
                  {IN_F(f->zh, U), IN_L(f->fk, U, 0)}, {OUT_F(U, 1)}};
  ops[c++] = (op){"rad_fold_backward", o_fold_backward, 0, RAD_OK, 0, NULL, 3, 2,
                  {IN_F(f->u, U), IN_F(f->gzh, U), IN_FOPT(f->gls, U)},
                  {OUT_F(U, 0), OUT_SUM(6 * U)}};
  ops[c++] = (op){"rad_fold_gate_log_prob", o_fold_gate_lp, 0, RAD_OK, 0, inc_fold_gate, 3, 1,
                  {IN_F(f->zh, U), IN_F(f->g3, 3 * U), IN_L(f->fk, U, 0)}, {OUT_F(U, 1)}};
  ops[c++] = (op){"rad_fold_gate_backward", o_fold_gate_bwd, 0, RAD_OK, 0, inc_fold_gate, 4, 3,
                  {IN_F(f->zh, U), IN_F(f->g3, 3 * U), IN_L(f->fk, U, 0), IN_F(f->glp, U)},
                  {OUT_F(U, 0), OUT_F(3 * U, 0), OUT_SUM(6 * U)}};
  ops[c++] = (op){"rad_gate_logits", o_gate_logits, 0, RAD_OK, 0, NULL, 1, 1,
                  {IN_F(f->gin, GIN)}, {OUT_F(3 * GU, 1)}};
  ops[c++] = (op){"rad_gate_backward", o_gate_backward, 0, RAD_OK, 0, NULL, 2, 2,
                  {IN_F(f->gin, GIN), IN_F(f->glog, 3 * GU)},
                  {OUT_F(GIN, 0), OUT_SUM(f->gnp)}};
  ops[c++] = (op){"rad_coupling_forward", o_cpl_forward, 0, RAD_OK, 0, NULL, 1, 3,
                  {IN_F(f->cx, D)}, {OUT_F(D, 1), OUT_I(f->cnl), OUT_F(1, 0)}};
  ops[c++] = (op){"rad_coupling_inverse", o_cpl_inverse, 0, RAD_OK, 0, inc_cpl, 2, 1,
                  {IN_F(f->cz, D), IN_L(f->ck, f->cnl, 0)}, {OUT_F(D, 1)}};
  ops[c++] = (op){"rad_coupling_backward", o_cpl_backward, 0, RAD_OK, 0, NULL, 3, 2,
                  {IN_F(f->cx, D), IN_F(f->cgz, D), IN_FOPT(f->cgld, 1)},
                  {OUT_F(D, 0), OUT_SUM(f->cnp)}};
  return c;
}

typedef struct ctx {
  fx *f;
  const op *o;
  rad_workspace *ws;     /* for the valid calls */
  rad_workspace *ws_bad; /* for the bad call */
  void *in[4], *out[4], *ref[4];
  size_t inc[4], outc[4];
  bytes s0;
  int zero_empty; /* this case may zero the OUT_SUM outputs */
} ctx;

static void valid_call(ctx *c, const char *after) {
  for (int j = 0; j < c->o->nout; j++) fill_sent(c->out[j], c->o->out[j].type, c->outc[j] + GUARD);
  int rc = c->o->call(c->f, c->ws, NR, (const void *const *)c->in, c->out);
  ck_assert_msg(rc == RAD_OK, "%s: the valid call %s returned %d (%s)", c->o->name, after, rc,
                rad_strerror(rc));
  for (int j = 0; j < c->o->nout; j++) {
    const spec *s = &c->o->out[j];
    ck_assert_msg(is_sent((char *)c->out[j] + c->outc[j] * esz(s->type), s->type, GUARD),
                  "%s: output %d written past its end", c->o->name, j);
    if (c->ref[j])
      ck_assert_msg(memcmp(c->out[j], c->ref[j], c->outc[j] * esz(s->type)) == 0,
                    "%s: output %d differs %s", c->o->name, j, after);
  }
}

/* One bad call: its code, untouched outputs, unchanged handles, and the
   valid call afterwards. */
static void try_case(ctx *c, int expect, size_t n, void *const *ins, void *const *outs,
                     const char *desc) {
  for (int j = 0; j < c->o->nout; j++) fill_sent(c->out[j], c->o->out[j].type, c->outc[j] + GUARD);
  int rc = c->o->call(c->f, c->ws_bad, n, (const void *const *)ins, outs);
  count_bad();
  ck_assert_msg(rc == expect, "%s (%s): returned %d (%s), expected %d (%s)", c->o->name, desc, rc,
                rad_strerror(rc), expect, rad_strerror(expect));
  c->f->nullh = 0;
  for (int j = 0; j < c->o->nout; j++) {
    const spec *s = &c->o->out[j];
    if (c->zero_empty && s->zero_empty && outs[j]) {
      const float *g = c->out[j];
      for (size_t i = 0; i < c->outc[j]; i++)
        ck_assert_msg(g[i] == 0.0f, "%s (%s): output %d not zeroed", c->o->name, desc, j);
      ck_assert_msg(is_sent(g + c->outc[j], TF, GUARD), "%s (%s): output %d written past its end",
                    c->o->name, desc, j);
    } else {
      ck_assert_msg(is_sent(c->out[j], s->type, c->outc[j] + GUARD),
                    "%s (%s): output %d was written", c->o->name, desc, j);
    }
  }
  bytes s = snap(c->f);
  ck_assert_msg(same_bytes(&s, &c->s0), "%s (%s): a handle changed", c->o->name, desc);
  free(s.p);
  valid_call(c, desc);
}

static const size_t TOOBIG[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / (4 * 3) + 1};

static void run_op(fx *f, const op *o, rad_workspace *ws, rad_workspace *small) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.f = f, c.o = o, c.ws = ws, c.ws_bad = ws;
  char desc[200];
  for (int i = 0; i < o->nin; i++) {
    c.inc[i] = o->in[i].per_row * NR + o->in[i].fixed;
    c.in[i] = xmalloc(c.inc[i] * esz(o->in[i].type));
    memcpy(c.in[i], o->in[i].src, c.inc[i] * esz(o->in[i].type));
  }
  for (int j = 0; j < o->nout; j++) {
    c.outc[j] = o->out[j].per_row * NR + o->out[j].fixed;
    c.out[j] = xmalloc((c.outc[j] + GUARD) * esz(o->out[j].type));
  }
  valid_call(&c, "before");
  for (int j = 0; j < o->nout; j++) {
    const size_t b = c.outc[j] * esz(o->out[j].type);
    c.ref[j] = xmalloc(b);
    memcpy(c.ref[j], c.out[j], b);
  }
  c.s0 = snap(f);
  void *ins[4], *outs[4];
#define RESET() (memcpy(ins, c.in, sizeof ins), memcpy(outs, c.out, sizeof outs))

  RESET();
  f->nullh = 1;
  try_case(&c, RAD_EINVAL, NR, ins, outs, "NULL handle");
  for (int i = 0; i < o->nin; i++)
    if (o->in[i].req) {
      RESET();
      ins[i] = NULL;
      snprintf(desc, sizeof desc, "input %d NULL", i);
      try_case(&c, RAD_EINVAL, NR, ins, outs, desc);
    }
  for (int j = 0; j < o->nout; j++)
    if (o->out[j].req) {
      RESET();
      outs[j] = NULL;
      snprintf(desc, sizeof desc, "output %d NULL", j);
      try_case(&c, RAD_EINVAL, NR, ins, outs, desc);
    }
  /* n = 0: an empty batch; its buffers may be NULL */
  RESET();
  for (int i = 0; i < o->nin; i++)
    if (o->in[i].per_row) ins[i] = NULL;
  for (int j = 0; j < o->nout; j++) outs[j] = NULL;
  try_case(&c, o->n0, 0, ins, outs, "n = 0, NULL buffers");
  RESET();
  c.zero_empty = o->n0 == RAD_OK;
  try_case(&c, o->n0, 0, ins, outs, "n = 0");
  c.zero_empty = 0;
  /* byte counts that overflow size_t */
  if (!o->no_toobig)
    for (size_t t = 0; t < sizeof TOOBIG / sizeof TOOBIG[0]; t++) {
      RESET();
      snprintf(desc, sizeof desc, "n = %zu", TOOBIG[t]);
      try_case(&c, RAD_ETOOBIG, TOOBIG[t], ins, outs, desc);
    }
  /* non-finite values */
  const float bad_f[4] = {NAN, -NAN, INFINITY, -INFINITY};
  for (int i = 0; i < o->nin; i++) {
    if (o->in[i].check != CK_FINITE) continue;
    const size_t pos[3] = {0, c.inc[i] / 2, c.inc[i] - 1};
    float *tmp = xmalloc(c.inc[i] * sizeof(float));
    for (int v = 0; v < 4; v++)
      for (int p = 0; p < 3; p++) {
        memcpy(tmp, c.in[i], c.inc[i] * sizeof(float));
        tmp[pos[p]] = bad_f[v];
        RESET();
        ins[i] = tmp;
        snprintf(desc, sizeof desc, "input %d[%zu] = %g", i, pos[p], (double)bad_f[v]);
        try_case(&c, RAD_ENONFINITE, NR, ins, outs, desc);
      }
    free(tmp);
  }
  /* labels outside {1, 2, 3} */
  const int32_t bad_k[5] = {0, 4, -1, INT32_MIN, INT32_MAX};
  for (int i = 0; i < o->nin; i++) {
    if (o->in[i].check != CK_LABEL) continue;
    const size_t pos[2] = {0, c.inc[i] - 1};
    int32_t *tmp = xmalloc(c.inc[i] * sizeof(int32_t));
    for (int v = 0; v < 5; v++)
      for (int p = 0; p < 2; p++) {
        memcpy(tmp, c.in[i], c.inc[i] * sizeof(int32_t));
        tmp[pos[p]] = bad_k[v];
        RESET();
        ins[i] = tmp;
        snprintf(desc, sizeof desc, "label %d[%zu] = %d", i, pos[p], (int)bad_k[v]);
        try_case(&c, RAD_ELABEL, NR, ins, outs, desc);
      }
    free(tmp);
  }
  /* labels inconsistent with z */
  if (o->inconsistent) {
    void *tmp[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < o->nin; i++) {
      tmp[i] = xmalloc(c.inc[i] * esz(o->in[i].type));
      memcpy(tmp[i], c.in[i], c.inc[i] * esz(o->in[i].type));
    }
    o->inconsistent(f, tmp);
    RESET();
    try_case(&c, RAD_ELABEL, NR, tmp, outs, "labels inconsistent with z");
    for (int i = 0; i < o->nin; i++) free(tmp[i]);
  }
  /* a workspace too small for the flow */
  if (o->ws) {
    RESET();
    c.ws_bad = small;
    try_case(&c, RAD_EMISMATCH, NR, ins, outs, "workspace too small");
    c.ws_bad = ws;
  }
#undef RESET
  for (int i = 0; i < o->nin; i++) free(c.in[i]);
  for (int j = 0; j < o->nout; j++) free(c.out[j]), free(c.ref[j]);
  free(c.s0.p);
}

/* ops [first, last) of the table; workspace ops with 1 and 2 threads */
static void run_ops(int first, int last) {
  fx *f = fx_new();
  op ops[64];
  const int n = (int)build_ops(f, ops);
  if (last > n) last = n;
  for (int i = first; i < last; i++) {
    if (ops[i].ws) {
      run_op(f, &ops[i], f->ws1, f->small1);
      run_op(f, &ops[i], f->ws2, f->small2);
    } else {
      run_op(f, &ops[i], NULL, NULL);
    }
  }
  fx_free(f);
}

START_TEST(test_flow_batch_ops) { run_ops(0, 21); }
END_TEST

START_TEST(test_block_batch_ops) { run_ops(21, 64); }
END_TEST

/* rad_flow_inverse with a bad label in a late chunk (or the second
   thread's range): refused before anything is written. */
START_TEST(test_inverse_late_chunk) {
  fx *f = fx_new();
  const size_t n = 2600, d = D, nl = f->nl;
  float *x = xmalloc(n * d * sizeof(float)), *z = xmalloc(n * d * sizeof(float));
  int32_t *k = xmalloc(n * nl * sizeof(int32_t));
  tu_rng r = {77};
  for (size_t i = 0; i < n * d; i++) x[i] = f->x[i % (NR * D)] + (float)(0.1 * tu_gauss(&r));
  ck_assert_int_eq(rad_flow_forward(f->F, n, x, z, k, NULL), RAD_OK);
  for (size_t j = 0; j < d; j++) z[(n - 1) * d + j] = 1e3f;
  for (size_t j = 0; j < nl; j++) k[(n - 1) * nl + j] = 2;
  rad_workspace *wsc;
  ck_assert_int_eq(rad_workspace_create(f->F, 64, &wsc), RAD_OK);
  float *out = fsent(n * d);
  BAD(RAD_ELABEL, rad_flow_inverse(f->F, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  BAD(RAD_ELABEL, rad_flow_inverse_ws(f->F, wsc, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  BAD(RAD_ELABEL, rad_flow_inverse_ws(f->F, f->ws2, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  ck_assert_int_eq(rad_workspace_set_option(wsc, RAD_OPTION_THREADS, 3), RAD_OK);
  BAD(RAD_ELABEL, rad_flow_inverse_ws(f->F, wsc, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  /* and a label outside {1,2,3} in the last row */
  ck_assert_int_eq(rad_flow_forward(f->F, n, x, z, k, NULL), RAD_OK);
  k[n * nl - 1] = 0;
  BAD(RAD_ELABEL, rad_flow_inverse_ws(f->F, wsc, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  k[n * nl - 1] = 1;
  z[n * d - 1] = NAN;
  BAD(RAD_ENONFINITE, rad_flow_inverse_ws(f->F, wsc, n, z, k, out));
  ck_assert(is_sent(out, TF, n * d + GUARD));
  /* the same NaN in a late row of x */
  x[n * d - 1] = NAN;
  float *lp = fsent(n);
  BAD(RAD_ENONFINITE, rad_flow_log_prob_ws(f->F, wsc, n, x, lp));
  BAD(RAD_ENONFINITE, rad_flow_log_prob(f->F, n, x, lp));
  ck_assert(is_sent(lp, TF, n + GUARD));
  rad_workspace_free(wsc);
  free(x), free(z), free(k), free(out), free(lp);
  fx_free(f);
}
END_TEST

/* sample_component: max_attempts 0, and RAD_EREJECTED (documented partial
   writes) leaves the handle working. */
START_TEST(test_component_special) {
  fx *f = fx_new();
  float *x = fsent(NR * D), *z = fsent(NR * D);
  double acc = SENT_D;
  bytes s0 = snap(f);
  BAD(RAD_EINVAL, rad_flow_sample_component(f->F, 1, f->kc, NR, 0, x, z, &acc));
  ck_assert(is_sent(x, TF, NR * D + GUARD) && is_sent(z, TF, NR * D + GUARD) && acc == SENT_D);
  BAD(RAD_EINVAL, rad_flow_sample_component(f->F, 1, NULL, 0, 10, NULL, NULL, NULL));
  /* an affine flow has no labels: k may be NULL */
  ck_assert_int_eq(rad_flow_sample_component(f->A, 1, NULL, NR, 1, x, z, &acc), RAD_OK);
  /* a component that one attempt rarely reaches */
  int rc = rad_flow_sample_component(f->F, 1, f->kc, 64, 1, x, NULL, &acc);
  ck_assert_int_eq(rc, RAD_EREJECTED);
  bytes s = snap(f);
  ck_assert(same_bytes(&s, &s0));
  ck_assert_int_eq(rad_flow_sample_component(f->F, 1, f->kc, NR, 5000, x, z, &acc), RAD_OK);
  /* sample_at beyond the last index */
  fill_sent(x, TF, NR * D + GUARD);
  BAD(RAD_ETOOBIG, rad_flow_sample_at(f->F, 1, UINT64_MAX, 1, x, NULL, NULL));
  BAD(RAD_ETOOBIG, rad_flow_sample_at(f->F, 1, UINT64_MAX - 2, 4, x, NULL, NULL));
  BAD(RAD_ETOOBIG, rad_flow_sample_at_ws(f->F, f->ws2, 1, UINT64_MAX - 2, NR, x, NULL, NULL));
  ck_assert(is_sent(x, TF, NR * D + GUARD));
  free(s.p), free(s0.p), free(x), free(z);
  fx_free(f);
}
END_TEST

/* Weights: finite, >= 0, positive sum. */
START_TEST(test_weights) {
  fx *f = fx_new();
  bytes s0 = snap(f);
  float *g = fsent(f->np);
  double m = SENT_D;
  const float neg[NR] = {1, 1, -1e-30f, 1, 1, 1}, zero[NR] = {0, 0, 0, 0, 0, 0},
              negz[NR] = {-0.0f, -0.0f, -0.0f, -0.0f, -0.0f, -0.0f},
              negall[NR] = {-1, -1, -1, -1, -1, -1};
  const float *const bads[4] = {neg, zero, negz, negall};
  for (int t = 0; t < 4; t++) {
    BAD(RAD_EINVAL, rad_flow_grad_weighted(f->F, NR, f->x, bads[t], g, &m));
    BAD(RAD_EINVAL, rad_flow_grad_weighted_ws(f->F, f->ws1, NR, f->x, bads[t], g, &m));
    BAD(RAD_EINVAL, rad_flow_grad_weighted_ws(f->F, f->ws2, NR, f->x, bads[t], g, &m));
    ck_assert(is_sent(g, TF, f->np + GUARD) && m == SENT_D);
  }
  bytes s = snap(f);
  ck_assert(same_bytes(&s, &s0));
  free(s.p), free(s0.p), free(g);
  fx_free(f);
}
END_TEST

/* ======================================================================
 * Constructors: codes, and *out set to NULL
 * ====================================================================== */
START_TEST(test_constructors) {
  rad_fold *fo;
  BAD_OUT(RAD_EINVAL, fo, rad_fold_create(0, &fo));
  BAD_OUT(RAD_ETOOBIG, fo, rad_fold_create(SIZE_MAX / 2, &fo));
  BAD_OUT(RAD_ETOOBIG, fo, rad_fold_create(SIZE_MAX, &fo));
  BAD_OUT(RAD_ETOOBIG, fo, rad_fold_create(SIZE_MAX / 24 + 1, &fo));
  BAD(RAD_EINVAL, rad_fold_create(3, NULL));

  rad_gate *ga;
  BAD_OUT(RAD_EINVAL, ga, rad_gate_create(0, 4, 2, 0, &ga));
  BAD_OUT(RAD_EINVAL, ga, rad_gate_create(3, 0, 2, 0, &ga));
  BAD_OUT(RAD_EINVAL, ga, rad_gate_create(3, 4, 0, 0, &ga));
  BAD_OUT(RAD_ETOOBIG, ga, rad_gate_create(3, 4, SIZE_MAX / 3 + 1, 0, &ga));
  BAD_OUT(RAD_ETOOBIG, ga, rad_gate_create(SIZE_MAX / 2, 4, 2, 0, &ga));
  BAD_OUT(RAD_ETOOBIG, ga, rad_gate_create(3, SIZE_MAX / 2, 2, 0, &ga));
  BAD_OUT(RAD_ETOOBIG, ga, rad_gate_create(3, 4, SIZE_MAX / 4, 0, &ga));
  BAD(RAD_EINVAL, rad_gate_create(3, 4, 2, 0, NULL));

  rad_coupling *c;
  const uint8_t m_ok[3] = {1, 0, 1}, m_zero[3] = {0, 0, 0}, m_two[3] = {1, 2, 0},
                m_ff[3] = {0, 255, 1}, m_ones[3] = {1, 1, 1}, m1_zero[1] = {0};
  const int kinds[] = {0, 3, -1, INT_MAX, INT_MIN};
  for (size_t t = 0; t < sizeof kinds / sizeof kinds[0]; t++)
    BAD_OUT(RAD_EINVAL, c, rad_coupling_create(kinds[t], 3, m_ok, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EINVAL, c, rad_coupling_create(RAD_LAYER_RAD, 0, NULL, 0, 4, 4, 0, &c));
  BAD_OUT(RAD_EINVAL, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, 0, 4, 0, &c));
  BAD_OUT(RAD_EINVAL, c, rad_coupling_create(RAD_LAYER_AFFINE, 3, m_ok, 3, 0, 4, 0, &c));
  BAD_OUT(RAD_EINVAL, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, 4, 0, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_zero, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_AFFINE, 3, m_zero, 3, 4, 0, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_two, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ff, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 2, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 2, m_ok, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 0, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 3, NULL, 3, 4, 4, 0, &c));
  BAD_OUT(RAD_EMASK, c, rad_coupling_create(RAD_LAYER_RAD, 1, m1_zero, 1, 4, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, SIZE_MAX / 2, NULL, 0, 4, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, SIZE_MAX / 2, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, 4, SIZE_MAX / 2, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, SIZE_MAX / 32, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_AFFINE, 3, m_ok, 3, SIZE_MAX / 8, 0, 0, &c));
  BAD(RAD_EINVAL, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, 4, 4, 0, NULL));
  /* valid edge cases: all ones, an affine layer with gate_hidden 0 */
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 3, m_ones, 3, 4, 4, 0, &c), RAD_OK);
  rad_coupling_free(c);
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_AFFINE, 3, NULL, 0, 4, 0, 0, &c), RAD_OK);
  rad_coupling_free(c);

  rad_flow *F;
  for (size_t t = 0; t < sizeof kinds / sizeof kinds[0]; t++)
    BAD_OUT(RAD_EINVAL, F, rad_flow_create(kinds[t], 2, 2, 4, 4, 0, &F));
  BAD_OUT(RAD_EINVAL, F, rad_flow_create(RAD_LAYER_RAD, 0, 2, 4, 4, 0, &F));
  BAD_OUT(RAD_EINVAL, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, 0, 4, 0, &F));
  BAD_OUT(RAD_EINVAL, F, rad_flow_create(RAD_LAYER_AFFINE, 2, 2, 0, 0, 0, &F));
  BAD_OUT(RAD_EINVAL, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, 4, 0, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, SIZE_MAX, 4, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, (size_t)UINT32_MAX, 4, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, SIZE_MAX / 2, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, 4, SIZE_MAX / 2, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_AFFINE, 2, 2, SIZE_MAX / 8, 0, 0, &F));
  /* beyond the model file's limits (docs/file-format.md): a flow that
     could be saved but never loaded back is refused when it is built */
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, ((size_t)1 << 16) + 1, 4, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, 1000000000, 4, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, ((size_t)1 << 20) + 1, 2, 4, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, ((size_t)1 << 24) + 1, 4, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create(RAD_LAYER_RAD, 2, 2, 4, ((size_t)1 << 24) + 1, 0, &F));
  BAD_OUT(RAD_ETOOBIG, F, rad_flow_create_empty(((size_t)1 << 20) + 1, &F));
  BAD_OUT(RAD_ETOOBIG, c,
          rad_coupling_create(RAD_LAYER_RAD, ((size_t)1 << 20) + 1, NULL, 0, 4, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, ((size_t)1 << 24) + 1, 4, 0, &c));
  BAD_OUT(RAD_ETOOBIG, c, rad_coupling_create(RAD_LAYER_RAD, 3, m_ok, 3, 4, ((size_t)1 << 24) + 1, 0, &c));
  BAD(RAD_EINVAL, rad_flow_create(RAD_LAYER_RAD, 2, 2, 4, 4, 0, NULL));
  BAD_OUT(RAD_EINVAL, F, rad_flow_create_empty(0, &F));
  BAD(RAD_EINVAL, rad_flow_create_empty(2, NULL));
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_AFFINE, 2, 2, 4, 0, 0, &F), RAD_OK);
  rad_flow *G;
  BAD_OUT(RAD_EINVAL, G, rad_flow_copy(NULL, &G));
  BAD(RAD_EINVAL, rad_flow_copy(F, NULL));
  rad_coupling *lc;
  BAD_OUT(RAD_EINVAL, lc, rad_flow_get_coupling(NULL, 0, &lc));
  BAD_OUT(RAD_EINVAL, lc, rad_flow_get_coupling(F, 2, &lc));
  BAD_OUT(RAD_EINVAL, lc, rad_flow_get_coupling(F, SIZE_MAX, &lc));
  BAD(RAD_EINVAL, rad_flow_get_coupling(F, 0, NULL));

  rad_workspace *ws;
  BAD_OUT(RAD_EINVAL, ws, rad_workspace_create(NULL, 8, &ws));
  BAD_OUT(RAD_EINVAL, ws, rad_workspace_create(F, 0, &ws));
  /* not bad input: chunks are capped at 512 samples, so any max_batch
     costs at most a 512-sample scratch */
  for (int t = 0; t < 3; t++) {
    const size_t big[3] = {SIZE_MAX / 2, SIZE_MAX, SIZE_MAX / 8};
    ck_assert_int_eq(rad_workspace_create(F, big[t], &ws), RAD_OK);
    ck_assert_uint_eq(rad_workspace_max_batch(ws), big[t]);
    rad_workspace_free(ws);
  }
  BAD(RAD_EINVAL, rad_workspace_create(F, 8, NULL));

  rad_adam *a;
  BAD_OUT(RAD_EINVAL, a, rad_adam_create(0, &a));
  BAD_OUT(RAD_ETOOBIG, a, rad_adam_create(SIZE_MAX / 2, &a));
  BAD_OUT(RAD_ETOOBIG, a, rad_adam_create(SIZE_MAX, &a));
  BAD_OUT(RAD_ETOOBIG, a, rad_adam_create(SIZE_MAX / 8 + 1, &a));
  BAD(RAD_EINVAL, rad_adam_create(5, NULL));
  BAD(RAD_EINVAL, rad_fit_options_create(NULL));
  rad_flow_free(F);
}
END_TEST

/* *_free(NULL), and the accessors of a NULL handle. */
START_TEST(test_null_handles) {
  rad_fold_free(NULL);
  rad_gate_free(NULL);
  rad_coupling_free(NULL);
  rad_flow_free(NULL);
  rad_workspace_free(NULL);
  rad_adam_free(NULL);
  rad_fit_options_free(NULL);
  rad_adam_reset(NULL);
  for (int i = 0; i < 8; i++) count_bad();
  BADV(rad_fold_units(NULL) == 0);
  BADV(rad_gate_num_params(NULL) == 0);
  BADV(rad_coupling_kind(NULL) == 0);
  BADV(rad_coupling_dim(NULL) == 0);
  BADV(rad_coupling_num_params(NULL) == 0);
  BADV(rad_coupling_num_labels(NULL) == 0);
  BADV(rad_coupling_hidden(NULL) == 0);
  BADV(rad_coupling_gate_hidden(NULL) == 0);
  BADV(rad_flow_num_layers(NULL) == 0);
  BADV(rad_flow_dim(NULL) == 0);
  BADV(rad_flow_num_params(NULL) == 0);
  BADV(rad_flow_num_labels(NULL) == 0);
  BADV(rad_flow_has_standardization(NULL) == 0);
  BADV(rad_flow_column_name(NULL, 0) == NULL);
  BADV(rad_workspace_max_batch(NULL) == 0);
  BADV(rad_workspace_size(NULL) == 0);
  BADV(rad_adam_num_params(NULL) == 0);
  BADV(rad_adam_steps(NULL) == 0);
}
END_TEST

/* ======================================================================
 * Lengths: get/set params, logits, masks, standardization, names
 * ====================================================================== */
typedef struct pacc {
  const char *name;
  size_t len;
  int (*get)(fx *, float *, size_t);
  int (*set)(fx *, const float *, size_t);
} pacc;
static int g_flow(fx *f, float *p, size_t n) { return rad_flow_get_params(HF, p, n); }
static int s_flow(fx *f, const float *p, size_t n) { return rad_flow_set_params(HF, p, n); }
static int g_aflow(fx *f, float *p, size_t n) { return rad_flow_get_params(HA, p, n); }
static int s_aflow(fx *f, const float *p, size_t n) { return rad_flow_set_params(HA, p, n); }
static int g_cpl(fx *f, float *p, size_t n) { return rad_coupling_get_params(HCPL, p, n); }
static int s_cpl(fx *f, const float *p, size_t n) { return rad_coupling_set_params(HCPL, p, n); }
static int g_gate(fx *f, float *p, size_t n) { return rad_gate_get_params(HGATE, p, n); }
static int s_gate(fx *f, const float *p, size_t n) { return rad_gate_set_params(HGATE, p, n); }
static int g_fold(fx *f, float *p, size_t n) { return rad_fold_get_logits(HFOLD, p, n); }
static int s_fold(fx *f, const float *p, size_t n) { return rad_fold_set_logits(HFOLD, p, n); }

START_TEST(test_params) {
  fx *f = fx_new();
  const pacc acc[] = {
      {"flow (RAD)", f->np, g_flow, s_flow},
      {"flow (affine)", rad_flow_num_params(f->A), g_aflow, s_aflow},
      {"coupling", f->cnp, g_cpl, s_cpl},
      {"gate", f->gnp, g_gate, s_gate},
      {"fold logits", 6 * U, g_fold, s_fold},
  };
  bytes s0 = snap(f);
  for (size_t a = 0; a < sizeof acc / sizeof acc[0]; a++) {
    const size_t n = acc[a].len;
    float *buf = fsent(n + 1), *good = xmalloc(n * sizeof(float));
    ck_assert_int_eq(acc[a].get(f, good, n), RAD_OK);
    const size_t lens[4] = {n - 1, n + 1, 0, SIZE_MAX};
    /* get */
    f->nullh = 1;
    BAD(RAD_EINVAL, acc[a].get(f, buf, n));
    f->nullh = 0;
    BAD(RAD_EINVAL, acc[a].get(f, NULL, n));
    for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, acc[a].get(f, buf, lens[l]));
    ck_assert_msg(is_sent(buf, TF, n + 1 + GUARD), "%s: get wrote on failure", acc[a].name);
    /* set */
    memcpy(buf, good, n * sizeof(float));
    f->nullh = 1;
    BAD(RAD_EINVAL, acc[a].set(f, buf, n));
    f->nullh = 0;
    BAD(RAD_EINVAL, acc[a].set(f, NULL, n));
    for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, acc[a].set(f, buf, lens[l]));
    const float bad_f[4] = {NAN, -NAN, INFINITY, -INFINITY};
    const size_t pos[3] = {0, n / 2, n - 1};
    for (int v = 0; v < 4; v++)
      for (int p = 0; p < 3; p++) {
        memcpy(buf, good, n * sizeof(float));
        buf[pos[p]] = bad_f[v];
        BAD(RAD_ENONFINITE, acc[a].set(f, buf, n));
      }
    bytes s = snap(f);
    ck_assert_msg(same_bytes(&s, &s0), "%s: a bad set changed a handle", acc[a].name);
    free(s.p);
    free(buf), free(good);
  }
  /* the empty flow has no parameters: NULL with length 0 is fine */
  ck_assert_int_eq(rad_flow_get_params(f->E, NULL, 0), RAD_OK);
  ck_assert_int_eq(rad_flow_set_params(f->E, NULL, 0), RAD_OK);
  BAD(RAD_EINVAL, rad_flow_get_params(f->E, NULL, 1));
  float one = SENT_F;
  BAD(RAD_ESIZE, rad_flow_set_params(f->E, &one, 1));
  free(s0.p);
  fx_free(f);
}
END_TEST

START_TEST(test_masks_slopes_structure) {
  fx *f = fx_new();
  bytes s0 = snap(f);
  uint8_t m[D + 4];
  memset(m, 0xab, sizeof m);
  BAD(RAD_EINVAL, rad_coupling_get_mask(NULL, m, D));
  BAD(RAD_EINVAL, rad_coupling_get_mask(f->cpl, NULL, D));
  BAD(RAD_ESIZE, rad_coupling_get_mask(f->cpl, m, D - 1));
  BAD(RAD_ESIZE, rad_coupling_get_mask(f->cpl, m, D + 1));
  BAD(RAD_ESIZE, rad_coupling_get_mask(f->cpl, m, 0));
  BAD(RAD_ESIZE, rad_coupling_get_mask(f->cpl, m, SIZE_MAX));
  for (size_t i = 0; i < sizeof m; i++) ck_assert_uint_eq(m[i], 0xab);

  double sl[8];
  for (int i = 0; i < 8; i++) sl[i] = SENT_D;
  BAD(RAD_EINVAL, rad_fold_slopes(NULL, 0, sl));
  BAD(RAD_EINVAL, rad_fold_slopes(f->fold, 0, NULL));
  BAD(RAD_EINVAL, rad_fold_slopes(f->fold, U, sl));
  BAD(RAD_EINVAL, rad_fold_slopes(f->fold, SIZE_MAX, sl));
  for (int i = 0; i < 8; i++) ck_assert(sl[i] == SENT_D);

  /* flows of different dimension */
  rad_coupling *c2;
  ck_assert_int_eq(rad_coupling_create(RAD_LAYER_RAD, 2, NULL, 0, 4, 4, 0, &c2), RAD_OK);
  BAD(RAD_EMISMATCH, rad_flow_add_coupling(f->F, c2));
  BAD(RAD_EMISMATCH, rad_flow_add_coupling(f->E, c2));
  BAD(RAD_EINVAL, rad_flow_add_coupling(NULL, f->cpl));
  BAD(RAD_EINVAL, rad_flow_add_coupling(f->F, NULL));
  rad_coupling_free(c2);
  bytes s = snap(f);
  ck_assert(same_bytes(&s, &s0));
  free(s.p), free(s0.p);
  fx_free(f);
}
END_TEST

START_TEST(test_standardization_names) {
  fx *f = fx_new();
  bytes s0 = snap(f);
  const float sh[D] = {0.5f, 1.0f, -1.0f}, sc[D] = {1.0f, 2.0f, 3.0f};
  float b[D + 1];
  BAD(RAD_EINVAL, rad_flow_set_standardization(NULL, sh, sc, D));
  BAD(RAD_EINVAL, rad_flow_set_standardization(f->F, NULL, sc, D));
  BAD(RAD_EINVAL, rad_flow_set_standardization(f->F, sh, NULL, D));
  const size_t lens[4] = {D - 1, D + 1, 0, SIZE_MAX};
  for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, rad_flow_set_standardization(f->F, sh, sc, lens[l]));
  const float bad_f[4] = {NAN, -NAN, INFINITY, -INFINITY};
  for (int v = 0; v < 4; v++)
    for (int p = 0; p < D; p++) {
      memcpy(b, sh, sizeof sh);
      b[p] = bad_f[v];
      BAD(RAD_ENONFINITE, rad_flow_set_standardization(f->F, b, sc, D));
      memcpy(b, sc, sizeof sc);
      b[p] = bad_f[v];
      BAD(RAD_ENONFINITE, rad_flow_set_standardization(f->F, sh, b, D));
    }
  const float bad_scale[4] = {0.0f, -0.0f, -1.0f, -FLT_MIN};
  for (int v = 0; v < 4; v++)
    for (int p = 0; p < D; p++) {
      memcpy(b, sc, sizeof sc);
      b[p] = bad_scale[v];
      BAD(RAD_EINVAL, rad_flow_set_standardization(f->F, sh, b, D));
    }
  float *gs = fsent(D + 1), *gc = fsent(D + 1);
  BAD(RAD_EINVAL, rad_flow_get_standardization(NULL, gs, gc, D));
  BAD(RAD_EINVAL, rad_flow_get_standardization(f->F, NULL, gc, D));
  BAD(RAD_EINVAL, rad_flow_get_standardization(f->F, gs, NULL, D));
  for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, rad_flow_get_standardization(f->F, gs, gc, lens[l]));
  ck_assert(is_sent(gs, TF, D + 1 + GUARD) && is_sent(gc, TF, D + 1 + GUARD));

  const char *names[D + 1] = {"x", "y", "z", "w"};
  const char *holes[D] = {"x", NULL, "z"};
  char *longname = xmalloc(4098);
  memset(longname, 'a', 4097);
  longname[4097] = '\0';
  const char *toolong[D] = {"x", "y", longname};
  BAD(RAD_EINVAL, rad_flow_set_column_names(NULL, names, D));
  BAD(RAD_ESIZE, rad_flow_set_column_names(f->F, names, D - 1));
  BAD(RAD_ESIZE, rad_flow_set_column_names(f->F, names, D + 1));
  BAD(RAD_ESIZE, rad_flow_set_column_names(f->F, names, 0));
  BAD(RAD_EINVAL, rad_flow_set_column_names(f->F, holes, D));
  BAD(RAD_EINVAL, rad_flow_set_column_names(f->F, toolong, D));
  BADV(rad_flow_column_name(f->F, D) == NULL);
  BADV(rad_flow_column_name(f->F, SIZE_MAX) == NULL);
  BADV(rad_flow_column_name(f->A, 0) == NULL); /* no names */
  bytes s = snap(f);
  ck_assert(same_bytes(&s, &s0));
  free(s.p);
  /* 4096 bytes is the limit, and fits */
  longname[4096] = '\0';
  rad_flow *G;
  ck_assert_int_eq(rad_flow_copy(f->F, &G), RAD_OK);
  ck_assert_int_eq(rad_flow_set_column_names(G, toolong, D), RAD_OK);
  ck_assert_uint_eq(strlen(rad_flow_column_name(G, 2)), 4096);
  rad_flow_free(G);
  free(longname), free(gs), free(gc), free(s0.p);
  fx_free(f);
}
END_TEST

/* ======================================================================
 * Options
 * ====================================================================== */
/* Keys are appended over time: the first key rad_option_bounds refuses. */
static int first_unknown_option(void) {
  int k = 1;
  while (rad_option_bounds(k, NULL, NULL, NULL) == RAD_OK) k++;
  return k;
}
START_TEST(test_flow_coupling_workspace_options) {
  fx *f = fx_new();
  bytes s0 = snap(f);
  const int bad_keys[] = {0, RAD_OPTION_LEARNING_RATE, RAD_OPTION_THREADS, first_unknown_option(),
                          -1, INT_MAX, INT_MIN};
  const double bad_bound[] = {-1.0, -INFINITY, NAN, -1e-30, 1e-40, -0.5};
  double v = SENT_D;
  for (size_t t = 0; t < sizeof bad_keys / sizeof bad_keys[0]; t++) {
    BAD(RAD_EINVAL, rad_flow_set_option(f->F, bad_keys[t], 1.0));
    BAD(RAD_EINVAL, rad_coupling_set_option(f->cpl, bad_keys[t], 1.0));
    BAD(RAD_EINVAL, rad_flow_get_option(f->F, bad_keys[t], &v));
    BAD(RAD_EINVAL, rad_coupling_get_option(f->cpl, bad_keys[t], &v));
  }
  for (size_t t = 0; t < sizeof bad_bound / sizeof bad_bound[0]; t++) {
    BAD(RAD_EINVAL, rad_flow_set_option(f->F, RAD_OPTION_LOGIT_BOUND, bad_bound[t]));
    BAD(RAD_EINVAL, rad_flow_set_option(f->E, RAD_OPTION_LOGIT_BOUND, bad_bound[t]));
    BAD(RAD_EINVAL, rad_coupling_set_option(f->cpl, RAD_OPTION_LOGIT_BOUND, bad_bound[t]));
  }
  BAD(RAD_EINVAL, rad_flow_set_option(NULL, RAD_OPTION_LOGIT_BOUND, 1.0));
  BAD(RAD_EINVAL, rad_coupling_set_option(NULL, RAD_OPTION_LOGIT_BOUND, 1.0));
  BAD(RAD_EINVAL, rad_flow_get_option(NULL, RAD_OPTION_LOGIT_BOUND, &v));
  BAD(RAD_EINVAL, rad_coupling_get_option(NULL, RAD_OPTION_LOGIT_BOUND, &v));
  BAD(RAD_EINVAL, rad_flow_get_option(f->F, RAD_OPTION_LOGIT_BOUND, NULL));
  BAD(RAD_EINVAL, rad_coupling_get_option(f->cpl, RAD_OPTION_LOGIT_BOUND, NULL));
  ck_assert(v == SENT_D);

  const int ws_bad_keys[] = {0, RAD_OPTION_LOGIT_BOUND, RAD_OPTION_LEARNING_RATE, RAD_OPTION_STEPS,
                             first_unknown_option(), -1, INT_MAX};
  const double bad_threads[] = {0, -1, 65, 256, 257, 1000, 1.5, 2.0000001, NAN, INFINITY, -INFINITY};
  rad_workspace *const wss[2] = {f->ws1, f->ws2};
  for (int w = 0; w < 2; w++) {
    for (size_t t = 0; t < sizeof ws_bad_keys / sizeof ws_bad_keys[0]; t++) {
      BAD(RAD_EINVAL, rad_workspace_set_option(wss[w], ws_bad_keys[t], 1.0));
      BAD(RAD_EINVAL, rad_workspace_get_option(wss[w], ws_bad_keys[t], &v));
    }
    for (size_t t = 0; t < sizeof bad_threads / sizeof bad_threads[0]; t++)
      BAD(RAD_EINVAL, rad_workspace_set_option(wss[w], RAD_OPTION_THREADS, bad_threads[t]));
    BAD(RAD_EINVAL, rad_workspace_get_option(wss[w], RAD_OPTION_THREADS, NULL));
  }
  BAD(RAD_EINVAL, rad_workspace_set_option(NULL, RAD_OPTION_THREADS, 2));
  BAD(RAD_EINVAL, rad_workspace_get_option(NULL, RAD_OPTION_THREADS, &v));
  ck_assert(v == SENT_D);

  double mn = SENT_D, mx = SENT_D, df = SENT_D;
  const int ob_keys[5] = {0, first_unknown_option(), -1, INT_MIN, INT_MAX};
  for (size_t t = 0; t < 5; t++) BAD(RAD_EINVAL, rad_option_bounds(ob_keys[t], &mn, &mx, &df));
  ck_assert(mn == SENT_D && mx == SENT_D && df == SENT_D);
  ck_assert_int_eq(rad_option_bounds(RAD_OPTION_THREADS, NULL, NULL, NULL), RAD_OK);

  bytes s = snap(f);
  ck_assert(same_bytes(&s, &s0));
  /* the handles still work: valid values are taken */
  ck_assert_int_eq(rad_flow_set_option(f->F, RAD_OPTION_LOGIT_BOUND, INFINITY), RAD_OK);
  ck_assert_int_eq(rad_flow_set_option(f->F, RAD_OPTION_LOGIT_BOUND, 0.0), RAD_OK);
  ck_assert_int_eq(rad_workspace_set_option(f->ws1, RAD_OPTION_THREADS, 4), RAD_OK);
  free(s.p), free(s0.p);
  fx_free(f);
}
END_TEST

typedef struct kv {
  int key;
  double value;
} kv;

static const kv FIT_BAD[] = {
    {RAD_OPTION_LEARNING_RATE, 0.0}, {RAD_OPTION_LEARNING_RATE, -0.0},
    {RAD_OPTION_LEARNING_RATE, -1.0}, {RAD_OPTION_LEARNING_RATE, NAN},
    {RAD_OPTION_LEARNING_RATE, -INFINITY},
    {RAD_OPTION_BETA1, 1.0}, {RAD_OPTION_BETA1, 1.5}, {RAD_OPTION_BETA1, -0.1},
    {RAD_OPTION_BETA1, NAN}, {RAD_OPTION_BETA1, INFINITY},
    {RAD_OPTION_BETA2, 1.0}, {RAD_OPTION_BETA2, -1e-9}, {RAD_OPTION_BETA2, NAN},
    {RAD_OPTION_EPSILON, 0.0}, {RAD_OPTION_EPSILON, -1e-8}, {RAD_OPTION_EPSILON, NAN},
    {RAD_OPTION_BATCH_SIZE, 0}, {RAD_OPTION_BATCH_SIZE, -1}, {RAD_OPTION_BATCH_SIZE, 1.5},
    {RAD_OPTION_BATCH_SIZE, NAN}, {RAD_OPTION_BATCH_SIZE, INFINITY},
    {RAD_OPTION_BATCH_SIZE, 9007199254740994.0},
    {RAD_OPTION_STEPS, -1}, {RAD_OPTION_STEPS, 0.5}, {RAD_OPTION_STEPS, 10.25},
    {RAD_OPTION_STEPS, NAN}, {RAD_OPTION_STEPS, INFINITY}, {RAD_OPTION_STEPS, -INFINITY},
    {RAD_OPTION_SEED, -1}, {RAD_OPTION_SEED, 0.5}, {RAD_OPTION_SEED, 18014398509481984.0},
    {RAD_OPTION_SEED, NAN},
    {RAD_OPTION_EVAL_EVERY, -1}, {RAD_OPTION_EVAL_EVERY, 2.5},
    {RAD_OPTION_REPORT_EVERY, -1}, {RAD_OPTION_REPORT_EVERY, 0.1},
    {RAD_OPTION_KEEP_BEST, 2}, {RAD_OPTION_KEEP_BEST, -1}, {RAD_OPTION_KEEP_BEST, 0.5},
    {RAD_OPTION_LR_SCHEDULE, 2}, {RAD_OPTION_LR_SCHEDULE, -1}, {RAD_OPTION_LR_SCHEDULE, 0.5},
    {RAD_OPTION_LR_FINAL_FRACTION, -0.1}, {RAD_OPTION_LR_FINAL_FRACTION, 1.1},
    {RAD_OPTION_LR_FINAL_FRACTION, NAN},
    {RAD_OPTION_LR_HORIZON, -1}, {RAD_OPTION_LR_HORIZON, 0.5},
    {RAD_OPTION_THREADS, 0}, {RAD_OPTION_THREADS, 257}, {RAD_OPTION_THREADS, 1.5},
    {RAD_OPTION_THREADS, -1}, {RAD_OPTION_THREADS, NAN}, {RAD_OPTION_THREADS, INFINITY},
    /* keys that are not fit options (and the first unknown key, below) */
    {0, 1}, {RAD_OPTION_LOGIT_BOUND, 3}, {-1, 1}, {INT_MAX, 1}, {INT_MIN, 1},
};

enum { MAX_KEYS = 256 };
/* Every fit option's value (keys 2 .. first unknown - 1), v[0..1] = 0. */
static void fit_option_values(const rad_fit_options *o, double *v) {
  const int end = first_unknown_option();
  ck_assert_int_lt(end, MAX_KEYS);
  memset(v, 0, MAX_KEYS * sizeof(double));
  for (int k = RAD_OPTION_LEARNING_RATE; k < end; k++)
    ck_assert_int_eq(rad_fit_options_get(o, k, &v[k]), RAD_OK);
}
static void fit_set_bad(rad_fit_options *o, int key, double value, const double *before) {
  double after[MAX_KEYS];
  const int rc = rad_fit_options_set(o, key, value);
  count_bad();
  ck_assert_msg(rc == RAD_EINVAL, "rad_fit_options_set(%d, %g) returned %d", key, value, rc);
  fit_option_values(o, after);
  ck_assert_mem_eq(before, after, sizeof after);
}

START_TEST(test_fit_options) {
  rad_fit_options *o;
  ck_assert_int_eq(rad_fit_options_create(&o), RAD_OK);
  /* non-default values, so that a reset to defaults would show */
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, 17), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_BETA1, 0.5), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_THREADS, 3), RAD_OK);
  double before[MAX_KEYS];
  fit_option_values(o, before);
  for (size_t t = 0; t < sizeof FIT_BAD / sizeof FIT_BAD[0]; t++)
    fit_set_bad(o, FIT_BAD[t].key, FIT_BAD[t].value, before);
  const int unknown = first_unknown_option();
  fit_set_bad(o, unknown, 1.0, before);
  fit_set_bad(o, unknown + 1000, 1.0, before);
  /* every fit option, including ones added after this file was written:
     NaN, and values beyond its bounds */
  for (int k = RAD_OPTION_LEARNING_RATE; k < unknown; k++) {
    double mn, mx;
    ck_assert_int_eq(rad_option_bounds(k, &mn, &mx, NULL), RAD_OK);
    fit_set_bad(o, k, NAN, before);
    fit_set_bad(o, k, -NAN, before);
    if (isfinite(mn)) fit_set_bad(o, k, mn - 1.0, before);
    if (isfinite(mn)) fit_set_bad(o, k, -INFINITY, before);
    if (isfinite(mx)) fit_set_bad(o, k, mx + 1.0 + fabs(mx) * 1e-9, before);
    if (isfinite(mx)) fit_set_bad(o, k, INFINITY, before);
  }
  double v = SENT_D;
  const int keys[] = {0, RAD_OPTION_LOGIT_BOUND, unknown, -1};
  for (int t = 0; t < 4; t++) BAD(RAD_EINVAL, rad_fit_options_get(o, keys[t], &v));
  BAD(RAD_EINVAL, rad_fit_options_get(o, RAD_OPTION_STEPS, NULL));
  BAD(RAD_EINVAL, rad_fit_options_get(NULL, RAD_OPTION_STEPS, &v));
  BAD(RAD_EINVAL, rad_fit_options_set(NULL, RAD_OPTION_STEPS, 1));
  ck_assert(v == SENT_D);
  /* limits that are valid */
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, 0), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_BETA1, 0.0), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_THREADS, 64), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_LR_FINAL_FRACTION, 1.0), RAD_OK);
  rad_fit_options_free(o);
}
END_TEST

/* ======================================================================
 * Adam
 * ====================================================================== */
typedef struct adam_state {
  float m[5], v[5];
  uint64_t t;
  double opt[4];
} adam_state;
static adam_state adam_get(const rad_adam *a) {
  adam_state s;
  memset(&s, 0, sizeof s);
  ck_assert_int_eq(rad_adam_get_state(a, s.m, s.v, &s.t, 5), RAD_OK);
  for (int k = 0; k < 4; k++)
    ck_assert_int_eq(rad_adam_get_option(a, RAD_OPTION_LEARNING_RATE + k, &s.opt[k]), RAD_OK);
  return s;
}

START_TEST(test_adam) {
  rad_adam *a;
  ck_assert_int_eq(rad_adam_create(5, &a), RAD_OK);
  float p[5] = {0.5f, -1.0f, 2.0f, 0.0f, 3.0f};
  const float g[5] = {0.1f, -0.2f, 0.3f, 0.0f, 1.0f};
  ck_assert_int_eq(rad_adam_step(a, p, g, 5), RAD_OK);
  ck_assert_int_eq(rad_adam_step(a, p, g, 5), RAD_OK);
  const adam_state s0 = adam_get(a);
  float keep[5];
  memcpy(keep, p, sizeof p);
  const size_t lens[4] = {4, 6, 0, SIZE_MAX};

  BAD(RAD_EINVAL, rad_adam_step(NULL, p, g, 5));
  BAD(RAD_EINVAL, rad_adam_step(a, NULL, g, 5));
  BAD(RAD_EINVAL, rad_adam_step(a, p, NULL, 5));
  for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, rad_adam_step(a, p, g, lens[l]));
  const float bad_f[4] = {NAN, -NAN, INFINITY, -INFINITY};
  float b[5];
  for (int v = 0; v < 4; v++)
    for (int q = 0; q < 5; q += 2) {
      memcpy(b, g, sizeof g);
      b[q] = bad_f[v];
      BAD(RAD_ENONFINITE, rad_adam_step(a, p, b, 5));
      /* a non-finite parameter: the step would leave it non-finite */
      memcpy(b, p, sizeof p);
      b[q] = bad_f[v];
      float bb[5];
      memcpy(bb, b, sizeof b);
      BAD(RAD_ENUMERIC, rad_adam_step(a, b, g, 5));
      ck_assert_mem_eq(b, bb, sizeof b);
    }
  ck_assert_mem_eq(p, keep, sizeof p);
  adam_state s1 = adam_get(a);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);

  /* get/set state */
  float m[6], v[6];
  uint64_t t = 777;
  fill_sent(m, TF, 6), fill_sent(v, TF, 6);
  BAD(RAD_EINVAL, rad_adam_get_state(NULL, m, v, &t, 5));
  BAD(RAD_EINVAL, rad_adam_get_state(a, NULL, v, &t, 5));
  BAD(RAD_EINVAL, rad_adam_get_state(a, m, NULL, &t, 5));
  BAD(RAD_EINVAL, rad_adam_get_state(a, m, v, NULL, 5));
  for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, rad_adam_get_state(a, m, v, &t, lens[l]));
  ck_assert(is_sent(m, TF, 6) && is_sent(v, TF, 6) && t == 777);
  const float mm[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, vv[5] = {1, 2, 3, 4, 5};
  BAD(RAD_EINVAL, rad_adam_set_state(NULL, mm, vv, 3, 5));
  BAD(RAD_EINVAL, rad_adam_set_state(a, NULL, vv, 3, 5));
  BAD(RAD_EINVAL, rad_adam_set_state(a, mm, NULL, 3, 5));
  for (int l = 0; l < 4; l++) BAD(RAD_ESIZE, rad_adam_set_state(a, mm, vv, 3, lens[l]));
  for (int k = 0; k < 4; k++)
    for (int q = 0; q < 5; q += 2) {
      memcpy(b, mm, sizeof mm);
      b[q] = bad_f[k];
      BAD(RAD_ENONFINITE, rad_adam_set_state(a, b, vv, 3, 5));
      memcpy(b, vv, sizeof vv);
      b[q] = bad_f[k];
      BAD(RAD_ENONFINITE, rad_adam_set_state(a, mm, b, 3, 5));
    }
  const float negv[3] = {-1.0f, -1e-30f, -FLT_MIN};
  for (int k = 0; k < 3; k++) {
    memcpy(b, vv, sizeof vv);
    b[4] = negv[k];
    BAD(RAD_EINVAL, rad_adam_set_state(a, mm, b, 3, 5));
  }
  s1 = adam_get(a);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);

  /* options */
  static const kv ADAM_BAD[] = {
      {RAD_OPTION_LEARNING_RATE, 0.0}, {RAD_OPTION_LEARNING_RATE, -1.0},
      {RAD_OPTION_LEARNING_RATE, NAN}, {RAD_OPTION_LEARNING_RATE, -INFINITY},
      {RAD_OPTION_BETA1, 1.0}, {RAD_OPTION_BETA1, -0.5}, {RAD_OPTION_BETA1, NAN},
      {RAD_OPTION_BETA2, 1.0}, {RAD_OPTION_BETA2, 2.0}, {RAD_OPTION_BETA2, NAN},
      {RAD_OPTION_EPSILON, 0.0}, {RAD_OPTION_EPSILON, -1.0}, {RAD_OPTION_EPSILON, NAN},
      {0, 1e-3}, {RAD_OPTION_LOGIT_BOUND, 1}, {RAD_OPTION_BATCH_SIZE, 10},
      {RAD_OPTION_STEPS, 10}, {RAD_OPTION_THREADS, 2}, {-1, 1}, {INT_MAX, 1},
  };
  for (size_t k = 0; k < sizeof ADAM_BAD / sizeof ADAM_BAD[0]; k++) {
    int rc = rad_adam_set_option(a, ADAM_BAD[k].key, ADAM_BAD[k].value);
    count_bad();
    ck_assert_msg(rc == RAD_EINVAL, "rad_adam_set_option(%d, %g) returned %d", ADAM_BAD[k].key,
                  ADAM_BAD[k].value, rc);
  }
  double ov = SENT_D;
  BAD(RAD_EINVAL, rad_adam_set_option(a, first_unknown_option(), 0.1));
  for (int k = RAD_OPTION_BATCH_SIZE; k <= RAD_OPTION_THREADS; k++)
    BAD(RAD_EINVAL, rad_adam_set_option(a, k, 1.0)); /* fit and workspace keys */
  BAD(RAD_EINVAL, rad_adam_set_option(NULL, RAD_OPTION_LEARNING_RATE, 0.1));
  BAD(RAD_EINVAL, rad_adam_get_option(NULL, RAD_OPTION_LEARNING_RATE, &ov));
  BAD(RAD_EINVAL, rad_adam_get_option(a, RAD_OPTION_LEARNING_RATE, NULL));
  BAD(RAD_EINVAL, rad_adam_get_option(a, RAD_OPTION_STEPS, &ov));
  BAD(RAD_EINVAL, rad_adam_get_option(a, 0, &ov));
  ck_assert(ov == SENT_D);
  s1 = adam_get(a);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);

  /* a step that would overflow: RAD_ENUMERIC, nothing changes */
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, 1e38), RAD_OK);
  float big[5] = {3e38f, -3e38f, 3e38f, 3e38f, 3e38f}, bigk[5];
  memcpy(bigk, big, sizeof big);
  BAD(RAD_ENUMERIC, rad_adam_step(a, big, g, 5));
  ck_assert_mem_eq(big, bigk, sizeof big);
  ck_assert_uint_eq(rad_adam_steps(a), s0.t);
  /* the optimizer still works */
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_LEARNING_RATE, s0.opt[0]), RAD_OK);
  s1 = adam_get(a);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);
  ck_assert_int_eq(rad_adam_step(a, p, g, 5), RAD_OK);
  ck_assert_uint_eq(rad_adam_steps(a), s0.t + 1);
  rad_adam_free(a);
}
END_TEST

/* ======================================================================
 * Fits
 * ====================================================================== */
static int calls;
static int count_calls(void *user, uint64_t step, double tr, double ho) {
  (void)user, (void)step, (void)tr, (void)ho;
  calls++;
  return 0;
}

START_TEST(test_fit) {
  const size_t n = 64, nh = 16;
  rad_flow *F, *Fref, *E;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 4, 3, &F), RAD_OK);
  ck_assert_int_eq(rad_flow_create_empty(2, &E), RAD_OK);
  ck_assert_int_eq(rad_flow_copy(F, &Fref), RAD_OK);
  const size_t np = rad_flow_num_params(F);
  float *x = xmalloc(n * 2 * sizeof(float)), *h = xmalloc(nh * 2 * sizeof(float));
  ck_assert_int_eq(rad_problem_sample(RAD_PROBLEM_MOONS, 1, n, x), RAD_OK);
  ck_assert_int_eq(rad_problem_sample(RAD_PROBLEM_MOONS, 2, nh, h), RAD_OK);
  rad_fit_options *o;
  ck_assert_int_eq(rad_fit_options_create(&o), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_STEPS, 3), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 16), RAD_OK);
  ck_assert_int_eq(rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY, 1), RAD_OK);
  rad_adam *opt, *opt_ref, *wrong;
  ck_assert_int_eq(rad_adam_create(np, &opt), RAD_OK);
  ck_assert_int_eq(rad_adam_create(np, &opt_ref), RAD_OK);
  ck_assert_int_eq(rad_adam_create(np + 1, &wrong), RAD_OK);
  float *p0 = xmalloc(np * sizeof(float)), *p1 = xmalloc(np * sizeof(float));
  ck_assert_int_eq(rad_flow_get_params(F, p0, np), RAD_OK);
  uint64_t sd;
  calls = 0;
#define FIT_BAD(expect, ...)                                               \
  do {                                                                     \
    sd = 777;                                                              \
    BAD(expect, rad_flow_fit(__VA_ARGS__, count_calls, NULL, &sd));         \
    ck_assert_uint_eq(sd, 0); /* "receives the steps taken": none */      \
    ck_assert_int_eq(calls, 0);                                            \
    ck_assert_int_eq(rad_flow_get_params(F, p1, np), RAD_OK);              \
    ck_assert_mem_eq(p0, p1, np * sizeof(float));                          \
    ck_assert_uint_eq(rad_adam_steps(opt), 0);                             \
  } while (0)
  FIT_BAD(RAD_EINVAL, NULL, opt, o, n, x, nh, h);
  FIT_BAD(RAD_EINVAL, F, opt, o, n, NULL, nh, h);
  FIT_BAD(RAD_EINVAL, F, opt, o, 0, x, nh, h);
  FIT_BAD(RAD_EINVAL, F, opt, o, n, x, nh, NULL);
  FIT_BAD(RAD_EINVAL, E, NULL, o, n, x, nh, h); /* nothing to fit */
  FIT_BAD(RAD_EMISMATCH, F, wrong, o, n, x, nh, h);
  FIT_BAD(RAD_ETOOBIG, F, opt, o, SIZE_MAX / 2, x, nh, h);
  FIT_BAD(RAD_ETOOBIG, F, opt, o, SIZE_MAX, x, nh, h);
  FIT_BAD(RAD_ETOOBIG, F, opt, o, SIZE_MAX / 8 + 1, x, nh, h);
  FIT_BAD(RAD_ETOOBIG, F, opt, o, n, x, SIZE_MAX / 2, h);
  const float bad_f[4] = {NAN, -NAN, INFINITY, -INFINITY};
  const size_t pos[3] = {0, n, 2 * n - 1};
  for (int v = 0; v < 4; v++)
    for (int q = 0; q < 3; q++) {
      float keep = x[pos[q]];
      x[pos[q]] = bad_f[v];
      FIT_BAD(RAD_ENONFINITE, F, opt, o, n, x, nh, h);
      FIT_BAD(RAD_ENONFINITE, F, NULL, NULL, n, x, 0, NULL);
      x[pos[q]] = keep;
      keep = h[q * (nh - 1)];
      h[q * (nh - 1)] = bad_f[v];
      FIT_BAD(RAD_ENONFINITE, F, opt, o, n, x, nh, h);
      h[q * (nh - 1)] = keep;
    }
#undef FIT_BAD
  /* the flow and the optimizer still work: the same fit as on copies */
  ck_assert_int_eq(rad_flow_fit(F, opt, o, n, x, nh, h, NULL, NULL, &sd), RAD_OK);
  ck_assert_uint_eq(sd, 3);
  ck_assert_int_eq(rad_flow_fit(Fref, opt_ref, o, n, x, nh, h, NULL, NULL, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_get_params(F, p0, np), RAD_OK);
  ck_assert_int_eq(rad_flow_get_params(Fref, p1, np), RAD_OK);
  ck_assert_mem_eq(p0, p1, np * sizeof(float));
  free(x), free(h), free(p0), free(p1);
  rad_adam_free(opt), rad_adam_free(opt_ref), rad_adam_free(wrong);
  rad_fit_options_free(o);
  rad_flow_free(F), rad_flow_free(Fref), rad_flow_free(E);
}
END_TEST

/* ======================================================================
 * Files
 * ====================================================================== */
static char tmpdir[256];
static void files_setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/rad-test-badinput-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[600];
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      struct stat st;
      if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        rm_rf(p);
      else
        unlink(p);
    }
  closedir(d);
  rmdir(dir);
}
static void files_teardown(void) { rm_rf(tmpdir); }
static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}
static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *fp = fopen(path, "wb");
  ck_assert_ptr_nonnull(fp);
  ck_assert_uint_eq(fwrite(b, 1, n, fp), n);
  fclose(fp);
}
/* CRC-32 (zlib's), computed here independently of the library */
static void fix_crc(unsigned char *b, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n - 4; i++) {
    c ^= b[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  c ^= 0xFFFFFFFFu;
  for (int k = 0; k < 4; k++) b[n - 4 + k] = (unsigned char)(c >> (8 * k));
}
static void put_le(unsigned char *b, uint64_t v, int bytes_) {
  for (int k = 0; k < bytes_; k++) b[k] = (unsigned char)(v >> (8 * k));
}
static void put_f32(unsigned char *b, float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  put_le(b, u, 4);
}
static void put_f64(unsigned char *b, double f) {
  uint64_t u;
  memcpy(&u, &f, 8);
  put_le(b, u, 8);
}

static int flow_load_buf(const unsigned char *b, size_t n) {
  rad_flow *G = (void *)&junk;
  int rc = rad_flow_load_from_buffer(b, n, &G);
  if (rc == RAD_OK)
    rad_flow_free(G);
  else
    ck_assert_ptr_null(G);
  return rc;
}
static int adam_load_buf(const unsigned char *b, size_t n) {
  rad_adam *G = (void *)&junk;
  int rc = rad_adam_load_from_buffer(b, n, &G);
  if (rc == RAD_OK)
    rad_adam_free(G);
  else
    ck_assert_ptr_null(G);
  return rc;
}
static int flow_load_file(const char *path) {
  rad_flow *G = (void *)&junk;
  int rc = rad_flow_load(path, &G);
  if (rc == RAD_OK)
    rad_flow_free(G);
  else
    ck_assert_ptr_null(G);
  return rc;
}
static int adam_load_file(const char *path) {
  rad_adam *G = (void *)&junk;
  int rc = rad_adam_load(path, &G);
  if (rc == RAD_OK)
    rad_adam_free(G);
  else
    ck_assert_ptr_null(G);
  return rc;
}

/* A flow whose layout is known: d = 2, standardization, no names, one RAD
   layer. Offsets: dim 24, layers 32, params 40, has_std 48, shift0 52,
   scale0 56, shift1 60, scale1 64, has_names 68, kind 72, H 76, G 84,
   bound 92, mask 96..97, parameters 98.. */
static rad_flow *known_flow(void) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 1, 4, 3, 5, &F), RAD_OK);
  tu_perturb_flow(F, 0.1, 6);
  const float sh[2] = {1.0f, 2.0f}, sc[2] = {0.5f, 4.0f};
  ck_assert_int_eq(rad_flow_set_standardization(F, sh, sc, 2), RAD_OK);
  return F;
}

START_TEST(test_flow_files) {
  rad_flow *F = known_flow();
  bytes s0 = {NULL, 0, 0};
  put_flow(&s0, F);
  char path[400], missing[400], dirpath[400];
  snprintf(path, sizeof path, "%s/model.rad", tmpdir);
  snprintf(missing, sizeof missing, "%s/no/such/dir/model.rad", tmpdir);
  snprintf(dirpath, sizeof dirpath, "%s/adir", tmpdir);
  ck_assert_int_eq(mkdir(dirpath, 0755), 0);
  char inner[500];
  snprintf(inner, sizeof inner, "%s/keep", dirpath);
  write_bytes(inner, "x", 1);

  /* saving */
  BAD(RAD_EINVAL, rad_flow_save(NULL, path));
  BAD(RAD_EINVAL, rad_flow_save(F, NULL));
  BAD(RAD_EINVAL, rad_flow_save(F, ""));
  BAD(RAD_EIO, rad_flow_save(F, missing));
  BAD(RAD_EIO, rad_flow_save(F, dirpath)); /* a non-empty directory is in the way */
  ck_assert_int_eq(count_entries(tmpdir), 1); /* no temporary left behind */
  ck_assert_int_eq(count_entries(dirpath), 1);
  size_t n = 0, sz = 777;
  ck_assert_int_eq(rad_flow_save_to_buffer(F, NULL, 0, &n), RAD_OK);
  unsigned char *b = xmalloc(n + 8), *e = xmalloc(n + 8);
  memset(b, 0xab, n + 8);
  BAD(RAD_EINVAL, rad_flow_save_to_buffer(NULL, b, n, &sz));
  BAD(RAD_EINVAL, rad_flow_save_to_buffer(F, b, n, NULL));
  ck_assert_uint_eq(sz, 777);
  BAD(RAD_ESIZE, rad_flow_save_to_buffer(F, b, n - 1, &sz));
  BAD(RAD_ESIZE, rad_flow_save_to_buffer(F, b, 0, &sz));
  BAD(RAD_ESIZE, rad_flow_save_to_buffer(F, b, 1, &sz));
  for (size_t i = 0; i < n + 8; i++) ck_assert_uint_eq(b[i], 0xab);
  ck_assert_int_eq(rad_flow_save_to_buffer(F, b, n, &sz), RAD_OK);
  ck_assert_uint_eq(sz, n);
  ck_assert_uint_eq(b[n], 0xab);
  ck_assert_int_eq(rad_flow_save(F, path), RAD_OK);

  /* loading: arguments */
  rad_flow *G;
  BAD(RAD_EINVAL, rad_flow_load(path, NULL));
  BAD_OUT(RAD_EINVAL, G, rad_flow_load(NULL, &G));
  BAD_OUT(RAD_EIO, G, rad_flow_load(missing, &G));
  BAD_OUT(RAD_EIO, G, rad_flow_load(dirpath, &G));
  BAD(RAD_EINVAL, rad_flow_load_from_buffer(b, n, NULL));
  BAD_OUT(RAD_EINVAL, G, rad_flow_load_from_buffer(NULL, n, &G));
  BAD_OUT(RAD_EINVAL, G, rad_flow_load_from_buffer(NULL, 0, &G));

  /* foreign data */
  const unsigned char png[16] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                 0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  const char *text = "x,y\n1.0,2.0\n3.0,4.0\n";
  BAD(RAD_EFORMAT, flow_load_buf(png, sizeof png));
  BAD(RAD_EFORMAT, flow_load_buf((const unsigned char *)text, strlen(text)));
  char fpath[500];
  snprintf(fpath, sizeof fpath, "%s/foreign.csv", tmpdir);
  write_bytes(fpath, text, strlen(text));
  BAD(RAD_EFORMAT, flow_load_file(fpath));
  /* an optimizer file given to the flow loader */
  rad_adam *a;
  ck_assert_int_eq(rad_adam_create(7, &a), RAD_OK);
  size_t an;
  ck_assert_int_eq(rad_adam_save_to_buffer(a, NULL, 0, &an), RAD_OK);
  unsigned char *ab = xmalloc(an);
  ck_assert_int_eq(rad_adam_save_to_buffer(a, ab, an, &an), RAD_OK);
  BAD(RAD_EFORMAT, flow_load_buf(ab, an));
  snprintf(fpath, sizeof fpath, "%s/opt.radadam", tmpdir);
  ck_assert_int_eq(rad_adam_save(a, fpath), RAD_OK);
  BAD(RAD_EFORMAT, flow_load_file(fpath));
  /* the magic with nothing after it, and a magic prefix */
  BAD(RAD_ETRUNCATED, flow_load_buf(b, 0));
  BAD(RAD_ETRUNCATED, flow_load_buf(b, 4));
  snprintf(fpath, sizeof fpath, "%s/empty.rad", tmpdir);
  write_bytes(fpath, "", 0);
  BAD(RAD_ETRUNCATED, flow_load_file(fpath));

  /* truncated */
  const size_t cuts[] = {1, 8, 12, 23, 27, 28, 60, n / 2, n - 4, n - 1};
  for (size_t t = 0; t < sizeof cuts / sizeof cuts[0]; t++) {
    BAD(RAD_ETRUNCATED, flow_load_buf(b, cuts[t]));
    snprintf(fpath, sizeof fpath, "%s/cut.rad", tmpdir);
    write_bytes(fpath, b, cuts[t]);
    BAD(RAD_ETRUNCATED, flow_load_file(fpath));
  }
  /* future version (valid checksum), version 0 */
  memcpy(e, b, n);
  put_le(e + 8, 2, 4);
  fix_crc(e, n);
  BAD(RAD_EVERSION, flow_load_buf(e, n));
  snprintf(fpath, sizeof fpath, "%s/future.rad", tmpdir);
  write_bytes(fpath, e, n);
  BAD(RAD_EVERSION, flow_load_file(fpath));
  put_le(e + 8, 0xffffffffu, 4);
  fix_crc(e, n);
  BAD(RAD_EVERSION, flow_load_buf(e, n));
  put_le(e + 8, 0, 4);
  fix_crc(e, n);
  BAD(RAD_ECORRUPT, flow_load_buf(e, n));
  /* checksum mismatches: one flipped bit in the body, in the CRC */
  const size_t flips[] = {24, 52, 72, 96, 98, n / 2, n - 5, n - 1};
  for (size_t t = 0; t < sizeof flips / sizeof flips[0]; t++) {
    memcpy(e, b, n);
    e[flips[t]] ^= 0x10;
    BAD(RAD_ECORRUPT, flow_load_buf(e, n));
  }
  /* trailing bytes */
  memcpy(e, b, n);
  e[n] = 0;
  BAD(RAD_ECORRUPT, flow_load_buf(e, n + 1));
  /* consistent checksum, inconsistent content */
  struct {
    size_t off;
    int width;     /* 1, 4, 8: an integer (ival); -4: an f32 (fval) */
    uint64_t ival;
    double fval;
    int zero97;    /* also clear mask byte 97 */
  } edits[] = {
      {24, 8, 0, 0, 0},           /* dim 0 */
      {24, 8, 3, 0, 0},           /* dim 3 */
      {24, 8, 1u << 21, 0, 0},    /* dim above the limit */
      {32, 8, 2, 0, 0},           /* one layer more than stored */
      {32, 8, 1u << 17, 0, 0},    /* layers above the limit */
      {40, 8, 1, 0, 0},           /* parameter count */
      {40, 8, UINT64_MAX, 0, 0},  /* parameter count beyond the file */
      {48, 4, 2, 0, 0},           /* has_std neither 0 nor 1 */
      {52, -4, 0, NAN, 0},        /* shift NaN */
      {52, -4, 0, INFINITY, 0},   /* shift inf */
      {56, -4, 0, 0.0, 0},        /* scale 0 */
      {56, -4, 0, -1.0, 0},       /* scale < 0 */
      {64, -4, 0, NAN, 0},        /* scale NaN */
      {68, 4, 1, 0, 0},           /* names announced, none stored */
      {68, 4, 7, 0, 0},           /* has_names neither 0 nor 1 */
      {72, 4, 0, 0, 0},           /* layer kind 0 */
      {72, 4, 3, 0, 0},           /* layer kind 3 */
      {72, 4, 2, 0, 0},           /* affine kind with a gating width */
      {76, 8, 0, 0, 0},           /* conditioner width 0 */
      {76, 8, 1u << 25, 0, 0},    /* conditioner width above the limit */
      {84, 8, 0, 0, 0},           /* RAD layer with gating width 0 */
      {92, -4, 0, NAN, 0},        /* logit bound NaN */
      {92, -4, 0, -1.0, 0},       /* logit bound < 0 */
      {92, -4, 0, INFINITY, 0},   /* logit bound inf (0 means unclamped) */
      {96, 1, 0, 0, 1},           /* mask all zeros */
      {96, 1, 2, 0, 0},           /* mask byte 2 */
      {97, 1, 255, 0, 0},         /* mask byte 255 */
      {98, -4, 0, NAN, 0},        /* first parameter NaN */
      {98, -4, 0, -INFINITY, 0},  /* first parameter -inf */
      {0, -4, 0, NAN, 0},         /* last parameter NaN (offset set below) */
  };
  const size_t ne = sizeof edits / sizeof edits[0];
  edits[ne - 1].off = n - 8;
  for (size_t t = 0; t < ne; t++) {
    memcpy(e, b, n);
    unsigned char *q = e + edits[t].off;
    if (edits[t].width == -4)
      put_f32(q, (float)edits[t].fval);
    else
      put_le(q, edits[t].ival, edits[t].width);
    if (edits[t].zero97) e[97] = 0;
    fix_crc(e, n);
    int rc = flow_load_buf(e, n);
    count_bad();
    ck_assert_msg(rc == RAD_ECORRUPT, "edit %zu (offset %zu): %d (%s)", t, edits[t].off, rc,
                  rad_strerror(rc));
  }
  /* a declared size larger than the data: truncated */
  memcpy(e, b, n);
  put_le(e + 16, n + 100, 8);
  fix_crc(e, n);
  BAD(RAD_ETRUNCATED, flow_load_buf(e, n));
  put_le(e + 16, 3, 8);
  fix_crc(e, n);
  BAD(RAD_ECORRUPT, flow_load_buf(e, n));

  /* the flow and the file it saved are as they were */
  bytes s1 = {NULL, 0, 0};
  put_flow(&s1, F);
  ck_assert(same_bytes(&s0, &s1));
  ck_assert_int_eq(rad_flow_load(path, &G), RAD_OK);
  bytes s2 = {NULL, 0, 0};
  put_flow(&s2, G);
  ck_assert(same_bytes(&s0, &s2));
  rad_flow_free(G);
  free(s0.p), free(s1.p), free(s2.p), free(b), free(e), free(ab);
  rad_adam_free(a);
  rad_flow_free(F);
}
END_TEST

START_TEST(test_adam_files) {
  const size_t np = 5;
  rad_adam *a;
  ck_assert_int_eq(rad_adam_create(np, &a), RAD_OK);
  float p[5] = {1, 2, 3, 4, 5};
  const float g[5] = {0.5f, -0.5f, 1, 0, 2};
  ck_assert_int_eq(rad_adam_step(a, p, g, np), RAD_OK);
  ck_assert_int_eq(rad_adam_set_option(a, RAD_OPTION_BETA1, 0.8), RAD_OK);
  const adam_state s0 = adam_get(a);
  char path[400], missing[400], fpath[500];
  snprintf(path, sizeof path, "%s/opt.radadam", tmpdir);
  snprintf(missing, sizeof missing, "%s/no/such/opt.radadam", tmpdir);
  BAD(RAD_EINVAL, rad_adam_save(NULL, path));
  BAD(RAD_EINVAL, rad_adam_save(a, NULL));
  BAD(RAD_EINVAL, rad_adam_save(a, ""));
  BAD(RAD_EIO, rad_adam_save(a, missing));
  ck_assert_int_eq(count_entries(tmpdir), 0);
  size_t n = 0, sz = 777;
  ck_assert_int_eq(rad_adam_save_to_buffer(a, NULL, 0, &n), RAD_OK);
  unsigned char *b = xmalloc(n + 8), *e = xmalloc(n + 8);
  memset(b, 0xab, n + 8);
  BAD(RAD_EINVAL, rad_adam_save_to_buffer(NULL, b, n, &sz));
  BAD(RAD_EINVAL, rad_adam_save_to_buffer(a, b, n, NULL));
  ck_assert_uint_eq(sz, 777);
  BAD(RAD_ESIZE, rad_adam_save_to_buffer(a, b, n - 1, &sz));
  BAD(RAD_ESIZE, rad_adam_save_to_buffer(a, b, 0, &sz));
  for (size_t i = 0; i < n + 8; i++) ck_assert_uint_eq(b[i], 0xab);
  ck_assert_int_eq(rad_adam_save_to_buffer(a, b, n, &sz), RAD_OK);
  ck_assert_int_eq(rad_adam_save(a, path), RAD_OK);

  rad_adam *G;
  BAD(RAD_EINVAL, rad_adam_load(path, NULL));
  BAD_OUT(RAD_EINVAL, G, rad_adam_load(NULL, &G));
  BAD_OUT(RAD_EIO, G, rad_adam_load(missing, &G));
  BAD_OUT(RAD_EIO, G, rad_adam_load(tmpdir, &G));
  BAD(RAD_EINVAL, rad_adam_load_from_buffer(b, n, NULL));
  BAD_OUT(RAD_EINVAL, G, rad_adam_load_from_buffer(NULL, n, &G));
  /* foreign: text, a flow file */
  const char *text = "learning rate 0.001\n";
  BAD(RAD_EFORMAT, adam_load_buf((const unsigned char *)text, strlen(text)));
  rad_flow *F = known_flow();
  size_t fn;
  ck_assert_int_eq(rad_flow_save_to_buffer(F, NULL, 0, &fn), RAD_OK);
  unsigned char *fb = xmalloc(fn);
  ck_assert_int_eq(rad_flow_save_to_buffer(F, fb, fn, &fn), RAD_OK);
  BAD(RAD_EFORMAT, adam_load_buf(fb, fn));
  snprintf(fpath, sizeof fpath, "%s/model.rad", tmpdir);
  ck_assert_int_eq(rad_flow_save(F, fpath), RAD_OK);
  BAD(RAD_EFORMAT, adam_load_file(fpath));
  /* truncated */
  const size_t cuts[] = {0, 3, 8, 27, 28, 71, n / 2, n - 1};
  for (size_t t = 0; t < sizeof cuts / sizeof cuts[0]; t++) {
    BAD(RAD_ETRUNCATED, adam_load_buf(b, cuts[t]));
    snprintf(fpath, sizeof fpath, "%s/cut.radadam", tmpdir);
    write_bytes(fpath, b, cuts[t]);
    BAD(RAD_ETRUNCATED, adam_load_file(fpath));
  }
  /* version, checksum, trailing bytes */
  memcpy(e, b, n);
  put_le(e + 8, 7, 4);
  fix_crc(e, n);
  BAD(RAD_EVERSION, adam_load_buf(e, n));
  for (size_t off = 24; off < n; off += 9) {
    memcpy(e, b, n);
    e[off] ^= 0x01;
    BAD(RAD_ECORRUPT, adam_load_buf(e, n));
  }
  memcpy(e, b, n);
  e[n] = 1;
  BAD(RAD_ECORRUPT, adam_load_buf(e, n + 1));
  /* consistent checksum, inconsistent content. Layout: n 24, lr 32,
     beta1 40, beta2 48, eps 56, t 64, m 72.., v 72 + 4n.. */
  struct {
    size_t off;
    int width; /* 8: a u64 (ival); -8: an f64, -4: an f32 (fval) */
    uint64_t ival;
    double fval;
  } edits[] = {
      {24, 8, 0, 0},  {24, 8, 4, 0},  {24, 8, 6, 0},  {24, 8, UINT64_MAX, 0},
      {24, 8, UINT64_MAX / 8 + 1, 0},
      {32, -8, 0, 0.0}, {32, -8, 0, -1e-3}, {32, -8, 0, NAN}, {32, -8, 0, -INFINITY},
      {40, -8, 0, 1.0}, {40, -8, 0, -0.1}, {40, -8, 0, NAN},
      {48, -8, 0, 1.0}, {48, -8, 0, 2.0}, {48, -8, 0, NAN},
      {56, -8, 0, 0.0}, {56, -8, 0, -1e-8}, {56, -8, 0, NAN},
      {72, -4, 0, NAN}, {72, -4, 0, INFINITY}, {72 + 4 * 5 - 4, -4, 0, -INFINITY},
      {72 + 4 * 5, -4, 0, NAN}, {72 + 4 * 5, -4, 0, INFINITY}, {72 + 4 * 5, -4, 0, -1.0},
      {72 + 4 * 9, -4, 0, -1e-30},
  };
  for (size_t t = 0; t < sizeof edits / sizeof edits[0]; t++) {
    memcpy(e, b, n);
    unsigned char *q = e + edits[t].off;
    if (edits[t].width == -8)
      put_f64(q, edits[t].fval);
    else if (edits[t].width == -4)
      put_f32(q, (float)edits[t].fval);
    else
      put_le(q, edits[t].ival, 8);
    fix_crc(e, n);
    int rc = adam_load_buf(e, n);
    count_bad();
    ck_assert_msg(rc == RAD_ECORRUPT, "edit %zu (offset %zu): %d (%s)", t, edits[t].off, rc,
                  rad_strerror(rc));
  }
  /* the optimizer and its file are as they were */
  adam_state s1 = adam_get(a);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);
  ck_assert_int_eq(rad_adam_load(path, &G), RAD_OK);
  s1 = adam_get(G);
  ck_assert_mem_eq(&s1, &s0, sizeof s0);
  rad_adam_free(G);
  free(b), free(e), free(fb);
  rad_flow_free(F);
  rad_adam_free(a);
}
END_TEST

/* ======================================================================
 * Problems, versions, status codes
 * ====================================================================== */
START_TEST(test_problems) {
  float *x = fsent(20);
  const int ids[] = {0, 7, -1, INT_MIN, INT_MAX, RAD_PROBLEM_MANY_MOONS + 1};
  for (size_t t = 0; t < sizeof ids / sizeof ids[0]; t++) {
    BAD(RAD_EINVAL, rad_problem_sample(ids[t], 1, 10, x));
    BADV(rad_problem_name(ids[t]) == NULL);
    BADV(isnan(rad_problem_true_log_likelihood(ids[t])));
  }
  BAD(RAD_EINVAL, rad_problem_sample(RAD_PROBLEM_MOONS, 1, 10, NULL));
  const size_t big[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 8 + 1};
  for (size_t t = 0; t < 3; t++) BAD(RAD_ETOOBIG, rad_problem_sample(RAD_PROBLEM_MOONS, 1, big[t], x));
  ck_assert(is_sent(x, TF, 20 + GUARD));
  ck_assert_int_eq(rad_problem_sample(RAD_PROBLEM_MOONS, 1, 0, NULL), RAD_OK);
  const char *names[] = {"", "Moons", "moons ", " moons", "grid\n", "unknown", "many-moons", "MOONS"};
  for (size_t t = 0; t < sizeof names / sizeof names[0]; t++)
    BAD(RAD_EINVAL, rad_problem_from_name(names[t]));
  BAD(RAD_EINVAL, rad_problem_from_name(NULL));
  ck_assert_int_eq(rad_problem_count(), 6);
  for (int p = 1; p <= rad_problem_count(); p++)
    ck_assert_int_eq(rad_problem_from_name(rad_problem_name(p)), p);
  free(x);
}
END_TEST

START_TEST(test_version_strerror) {
  ck_assert_int_eq(rad_status_min(), RAD_STATUS_MIN);
  ck_assert_int_eq(rad_version(), RAD_VERSION_NUMBER);
  ck_assert_str_eq(rad_version_string(), RAD_VERSION_STRING);
  const char *unknown = rad_strerror(INT_MAX);
  ck_assert_ptr_nonnull(unknown);
  for (int c = RAD_STATUS_MIN; c <= 0; c++) {
    const char *s = rad_strerror(c);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(s[0] != '\0', "rad_strerror(%d) is empty", c);
    ck_assert_msg(strcmp(s, unknown) != 0, "rad_strerror(%d) is '%s'", c, s);
    for (int c2 = RAD_STATUS_MIN; c2 < c; c2++)
      ck_assert_msg(strcmp(s, rad_strerror(c2)) != 0, "codes %d and %d share a message", c, c2);
  }
  const int bad[] = {1, 2, RAD_STATUS_MIN - 1, -100, INT_MIN, INT_MAX, INT_MIN + 1};
  for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
    const char *s = rad_strerror(bad[t]);
    BADV(s != NULL && strcmp(s, "unknown status code") == 0);
  }
}
END_TEST

/* ======================================================================
 * Known library bugs: each test fails until the library is fixed
 * ====================================================================== */

/* Runs fn in a child process; returns its exit status, or 128 + signal. */
static int in_child(int (*fn)(void)) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) _exit(fn());
  int st = 0;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
static int weighted_toobig_child(void) {
  rad_flow *F;
  if (rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 4, 1, &F)) return 2;
  const size_t np = rad_flow_num_params(F);
  float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, w[2] = {1.0f, 1.0f};
  float *g = malloc(np * sizeof(float));
  rad_workspace *ws;
  if (!g || rad_workspace_create(F, 4, &ws)) return 2;
  int ok = 1;
  for (int t = 0; t < 3; t++) {
    int r1 = rad_flow_grad_weighted(F, TOOBIG[t], x, w, g, NULL);
    int r2 = rad_flow_grad_weighted_ws(F, ws, TOOBIG[t], x, w, g, NULL);
    ok &= r1 == RAD_ETOOBIG && r2 == RAD_ETOOBIG;
  }
  rad_workspace_free(ws);
  free(g);
  rad_flow_free(F);
  return ok ? 0 : 3; /* 3: a wrong status code */
}

/* FIXED (regression test): rad_flow_grad_weighted(_ws) read the n weights (finiteness, sign)
   before checking that n * dim * 4 bytes fit in size_t, so a batch size
   whose byte count overflows reads far past the caller's buffer (a crash)
   instead of returning RAD_ETOOBIG. */
START_TEST(test_bug_grad_weighted_toobig) {
  count_bad();
  int st = in_child(weighted_toobig_child);
  ck_assert_msg(st == 0,
                "rad_flow_grad_weighted(_ws) with n = SIZE_MAX, SIZE_MAX/2, SIZE_MAX/12+1: %s "
                "(status %d; expected RAD_ETOOBIG)",
                st == 3   ? "a wrong status code"
                : st > 128 ? "the process crashed"
                           : "the process was stopped (a sanitizer?)",
                st);
}
END_TEST

/* FIXED (regression test): docs/file-format.md: "any field out of range or inconsistent (...,
   non-finite values, ...): RAD_ECORRUPT". An optimizer file whose learning
   rate or epsilon is +inf (valid checksum) loads with RAD_OK. */
START_TEST(test_bug_adam_file_infinite_hyperparameter) {
  rad_adam *a;
  ck_assert_int_eq(rad_adam_create(3, &a), RAD_OK);
  size_t n;
  ck_assert_int_eq(rad_adam_save_to_buffer(a, NULL, 0, &n), RAD_OK);
  unsigned char *b = xmalloc(n);
  ck_assert_int_eq(rad_adam_save_to_buffer(a, b, n, &n), RAD_OK);
  rad_adam_free(a);
  int rc[2];
  const size_t offs[2] = {32, 56}; /* learning rate, epsilon */
  for (int t = 0; t < 2; t++) {
    unsigned char *e = xmalloc(n);
    memcpy(e, b, n);
    put_f64(e + offs[t], INFINITY);
    fix_crc(e, n);
    rad_adam *G = NULL;
    rc[t] = rad_adam_load_from_buffer(e, n, &G);
    rad_adam_free(G);
    free(e);
    count_bad();
  }
  free(b);
  ck_assert_msg(rc[0] == RAD_ECORRUPT, "learning rate +inf in an optimizer file: %d (%s)", rc[0],
                rad_strerror(rc[0]));
  ck_assert_msg(rc[1] == RAD_ECORRUPT, "epsilon +inf in an optimizer file: %d (%s)", rc[1],
                rad_strerror(rc[1]));
}
END_TEST

/* FIXED (regression test): rad_flow_grad_weighted with valid weights (finite, >= 0, positive
   sum) that are all tiny (1e-40, subnormal) returns RAD_ENUMERIC: the
   scale 1 / sum(w) is rounded to float and overflows to +inf, so w_i *
   scale is inf. The weighted mean does not depend on the weights' scale:
   the result must be the plain mean's. */
START_TEST(test_bug_grad_weighted_tiny_weights) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 4, 1, &F), RAD_OK);
  const size_t np = rad_flow_num_params(F);
  const float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, w1[2] = {1.0f, 1.0f}, wt[2] = {1e-40f, 1e-40f};
  float *g1 = xmalloc(np * sizeof(float)), *gt = xmalloc(np * sizeof(float));
  double m1 = 0, mt = 0;
  const int rc1 = rad_flow_grad_weighted(F, 2, x, w1, g1, &m1);
  const int rct = rad_flow_grad_weighted(F, 2, x, wt, gt, &mt);
  double worst = 0.0;
  if (rct == RAD_OK)
    for (size_t i = 0; i < np; i++) worst = fmax(worst, fabs((double)g1[i] - gt[i]));
  free(g1), free(gt);
  rad_flow_free(F);
  count_bad();
  ck_assert_int_eq(rc1, RAD_OK);
  ck_assert_msg(rct == RAD_OK, "weights 1e-40: %d (%s), expected RAD_OK", rct, rad_strerror(rct));
  ck_assert_msg(fabs(mt - m1) < 1e-6 && worst < 1e-5, "weights 1e-40 change the weighted mean");
}
END_TEST

int main(void) {
  bad_count = mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (bad_count == MAP_FAILED) bad_count = NULL;
  if (bad_count) *bad_count = 0;

  Suite *s = suite_create("badinput");
  TCase *tc = tcase_create("badinput");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_flow_batch_ops);
  tcase_add_test(tc, test_block_batch_ops);
  tcase_add_test(tc, test_inverse_late_chunk);
  tcase_add_test(tc, test_component_special);
  tcase_add_test(tc, test_weights);
  tcase_add_test(tc, test_constructors);
  tcase_add_test(tc, test_null_handles);
  tcase_add_test(tc, test_params);
  tcase_add_test(tc, test_masks_slopes_structure);
  tcase_add_test(tc, test_standardization_names);
  tcase_add_test(tc, test_flow_coupling_workspace_options);
  tcase_add_test(tc, test_fit_options);
  tcase_add_test(tc, test_adam);
  tcase_add_test(tc, test_fit);
  tcase_add_test(tc, test_problems);
  tcase_add_test(tc, test_version_strerror);
  suite_add_tcase(s, tc);
  TCase *tf = tcase_create("files");
  tcase_set_timeout(tf, 120);
  tcase_add_checked_fixture(tf, files_setup, files_teardown);
  tcase_add_test(tf, test_flow_files);
  tcase_add_test(tf, test_adam_files);
  suite_add_tcase(s, tf);
  TCase *tb = tcase_create("regressions");
  tcase_set_timeout(tb, 60);
  tcase_add_test(tb, test_bug_grad_weighted_toobig);
  tcase_add_test(tb, test_bug_adam_file_infinite_hyperparameter);
  tcase_add_test(tb, test_bug_grad_weighted_tiny_weights);
  suite_add_tcase(s, tb);

  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("bad inputs tried: %ld\n", bad_count ? *bad_count : -1L);
  if (bad_count) munmap(bad_count, sizeof(long));
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
