/*
 * fuzz_load: libFuzzer harness for the model and optimizer file loaders.
 *
 * Every input is given, as is, to rad_flow_load_from_buffer and to
 * rad_adam_load_from_buffer. Random mutations almost never keep the
 * declared size and the CRC-32 right, so the input is also loaded a second
 * time with those two header fields patched (when it starts with either
 * magic): that is what lets the fuzzer reach the body parsers.
 *
 * What is checked (the documented contract, rad.h and docs/file-format.md):
 * - a status code the library defines; *out NULL on failure, a handle on
 *   success;
 * - a loaded flow works: log_prob never gives NaN; forward, inverse,
 *   sample, sample_at, grad, score and gate_probs return RAD_OK or one of
 *   their documented failure codes, and their successful results are
 *   finite where the documentation says so (samples, gradients);
 * - sampling is reproducible (and, with FL_CHECK_BATCH_INVARIANCE, gives
 *   the same bits in pieces, sample_at, and in chunks, a workspace);
 * - a file with a flag set is refused (RAD_EVERSION: none is defined in
 *   version 1);
 * - save_to_buffer gives back the input's bytes, and loading that
 *   gives the same flow (parameters, names, standardization, log_prob and
 *   samples, bit for bit);
 * - the same for optimizer files (state, options, step count).
 * A violated check prints what failed and aborts.
 *
 * The entry point is also compiled into tests/test_regress.c, which runs
 * every file of tests/regress/ and fuzz/corpus/ through it (it then
 * defines FUZZ_LOAD_ENTRY to another name).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#ifndef FUZZ_LOAD_ENTRY
#define FUZZ_LOAD_ENTRY LLVMFuzzerTestOneInput
#endif

#define FL_CHECK(cond)                                                        \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "fuzz_load: %s:%d: check failed: %s\n", __FILE__,       \
              __LINE__, #cond);                                               \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* Check a status code against the set a call may return. */
#define FL_RC_IN(rc, ...)                                                     \
  do {                                                                        \
    const int fl_ok_[] = {__VA_ARGS__};                                       \
    int fl_found_ = 0;                                                        \
    for (size_t fl_i_ = 0; fl_i_ < sizeof fl_ok_ / sizeof fl_ok_[0]; fl_i_++) \
      fl_found_ |= (rc) == fl_ok_[fl_i_];                                     \
    if (!fl_found_) {                                                         \
      fprintf(stderr, "fuzz_load: %s:%d: unexpected status %d (%s)\n",        \
              __FILE__, __LINE__, (rc), rad_strerror(rc));                    \
      abort();                                                                \
    }                                                                         \
  } while (0)

/* "Sample i depends only on (seed, i) ... results do not depend on batch
   size, chunking or threads" (rad.h) holds bit for bit only with some
   OpenBLAS kernels: with the AVX2-only ones (OPENBLAS_CORETYPE=Haswell or
   Zen, and under valgrind) results change in the last bits with the
   batch size (a reported library issue, docs/reliability.md). Set to 1 to
   check it. */
#ifndef FL_CHECK_BATCH_INVARIANCE
#define FL_CHECK_BATCH_INVARIANCE 0
#endif


static const unsigned char FL_MAGIC_FLOW[8] = {0x89, 'R', 'A', 'D', 'F', 'L', 'O', 'W'};
static const unsigned char FL_MAGIC_ADAM[8] = {0x89, 'R', 'A', 'D', 'A', 'D', 'A', 'M'};

/* CRC-32 as zlib computes it, written independently of the library. */
static uint32_t fl_crc32(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

static void *fl_alloc(size_t n) {
  void *p = calloc(n ? n : 1, 1);
  FL_CHECK(p != NULL);
  return p;
}

static int fl_has_nan(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (isnan(x[i])) return 1;
  return 0;
}
static int fl_all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* The re-saved bytes equal the input (which loaded, so its flags are 0). */
static void fl_check_same_bytes(const unsigned char *in, const unsigned char *out, size_t n) {
  FL_CHECK(n >= 28);
  FL_CHECK(in[12] == 0 && in[13] == 0 && in[14] == 0 && in[15] == 0);
  FL_CHECK(memcmp(in, out, n) == 0);
}

/* Test points: a few fixed rows (0, +-0.5, a large value) and rows made
   of the input's bytes. */
static void fl_points(const unsigned char *data, size_t size, size_t n, size_t d, float *x) {
  static const float fixed[4] = {0.0f, 0.5f, -0.5f, 1000.0f};
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < d; j++) {
      float v;
      if (i < 4) {
        v = fixed[i] * (j % 2 ? -1.0f : 1.0f);
      } else {
        size_t at = (i * d + j) * 2;
        unsigned b0 = size ? data[at % size] : 0, b1 = size ? data[(at + 1) % size] : 0;
        v = ((float)(int)((b0 << 8 | b1) & 0xffff) - 32768.0f) / 4096.0f;
      }
      x[i * d + j] = v;
    }
}

/* Two loaded flows are the same model. */
static void fl_same_flow(const rad_flow *A, const rad_flow *B, const float *x, size_t n) {
  const size_t d = rad_flow_dim(A), np = rad_flow_num_params(A);
  FL_CHECK(rad_flow_dim(B) == d);
  FL_CHECK(rad_flow_num_params(B) == np);
  FL_CHECK(rad_flow_num_layers(B) == rad_flow_num_layers(A));
  FL_CHECK(rad_flow_num_labels(B) == rad_flow_num_labels(A));
  FL_CHECK(rad_flow_has_standardization(B) == rad_flow_has_standardization(A));
  for (size_t i = 0; i < d && i < 64; i++) {
    const char *a = rad_flow_column_name(A, i), *b = rad_flow_column_name(B, i);
    FL_CHECK((a == NULL) == (b == NULL));
    if (a) FL_CHECK(strcmp(a, b) == 0);
  }
  float *pa = fl_alloc(np * sizeof(float)), *pb = fl_alloc(np * sizeof(float));
  FL_CHECK(rad_flow_get_params(A, pa, np) == RAD_OK);
  FL_CHECK(rad_flow_get_params(B, pb, np) == RAD_OK);
  FL_CHECK(memcmp(pa, pb, np * sizeof(float)) == 0);
  free(pa), free(pb);
  float *la = fl_alloc(n * sizeof(float)), *lb = fl_alloc(n * sizeof(float));
  FL_CHECK(rad_flow_log_prob(A, n, x, la) == RAD_OK);
  FL_CHECK(rad_flow_log_prob(B, n, x, lb) == RAD_OK);
  FL_CHECK(memcmp(la, lb, n * sizeof(float)) == 0);
  free(la), free(lb);
  float *sa = fl_alloc(n * d * sizeof(float)), *sb = fl_alloc(n * d * sizeof(float));
  int ra = rad_flow_sample(A, 7, n, sa, NULL, NULL), rb = rad_flow_sample(B, 7, n, sb, NULL, NULL);
  FL_CHECK(ra == rb);
  if (ra == RAD_OK) FL_CHECK(memcmp(sa, sb, n * d * sizeof(float)) == 0);
  free(sa), free(sb);
}

static void fl_exercise_flow(const rad_flow *F, const unsigned char *data, size_t size) {
  const size_t d = rad_flow_dim(F), nl = rad_flow_num_labels(F), np = rad_flow_num_params(F);
  FL_CHECK(d >= 1);
  /* keep one execution cheap: huge dimensions get a single point */
  const size_t n = d > 4096 ? 1 : 6;
  float *x = fl_alloc(n * d * sizeof(float));
  fl_points(data, size, n, d, x);

  /* log_prob: never NaN */
  float *lp = fl_alloc(n * sizeof(float));
  FL_CHECK(rad_flow_log_prob(F, n, x, lp) == RAD_OK);
  FL_CHECK(!fl_has_nan(lp, n));

  /* forward: the same log_prob; labels in {1,2,3}; inverse accepts them */
  float *z = fl_alloc(n * d * sizeof(float)), *lp2 = fl_alloc(n * sizeof(float));
  int32_t *k = fl_alloc(n * nl * sizeof(int32_t));
  int rc = rad_flow_forward(F, n, x, z, k, lp2);
  FL_RC_IN(rc, RAD_OK, RAD_EOVERFLOW); /* outputs partly written on overflow */
  if (rc == RAD_OK) {
    FL_CHECK(memcmp(lp, lp2, n * sizeof(float)) == 0);
    for (size_t i = 0; i < n * nl; i++) FL_CHECK(k[i] >= 1 && k[i] <= 3);
    FL_CHECK(fl_all_finite(z, n * d));
    float *xb = fl_alloc(n * d * sizeof(float));
    rc = rad_flow_inverse(F, n, z, k, xb);
    FL_RC_IN(rc, RAD_OK, RAD_ELABEL, RAD_EOVERFLOW);
    if (rc == RAD_OK) FL_CHECK(fl_all_finite(xb, n * d));
    free(xb);
  }

  /* sampling: finite on success, reproducible, position-addressed */
  float *s1 = fl_alloc(n * d * sizeof(float)), *s2 = fl_alloc(n * d * sizeof(float));
  float *zs = fl_alloc(n * d * sizeof(float));
  int32_t *ks = fl_alloc(n * nl * sizeof(int32_t));
  int rs = rad_flow_sample(F, 42, n, s1, zs, ks);
  FL_RC_IN(rs, RAD_OK, RAD_EOVERFLOW);
  if (rs == RAD_OK) {
    FL_CHECK(fl_all_finite(s1, n * d));
    FL_CHECK(fl_all_finite(zs, n * d));
    for (size_t i = 0; i < n * nl; i++) FL_CHECK(ks[i] >= 1 && ks[i] <= 3);
    FL_CHECK(rad_flow_sample(F, 42, n, s2, NULL, NULL) == RAD_OK);
    FL_CHECK(memcmp(s1, s2, n * d * sizeof(float)) == 0);
    if (n > 2) {
      rc = rad_flow_sample_at(F, 42, 2, n - 2, s2, NULL, NULL);
      FL_RC_IN(rc, RAD_OK, RAD_EOVERFLOW);
      if (FL_CHECK_BATCH_INVARIANCE) {
        FL_CHECK(rc == RAD_OK);
        FL_CHECK(memcmp(s1 + 2 * d, s2, (n - 2) * d * sizeof(float)) == 0);
      }
    }
    /* a sample's log-density is not NaN either */
    FL_CHECK(rad_flow_log_prob(F, n, s1, lp2) == RAD_OK);
    FL_CHECK(!fl_has_nan(lp2, n));
  }

  /* a workspace of 2 rows: chunks (the same bits as one call only with
     FL_CHECK_BATCH_INVARIANCE) */
  rad_workspace *ws = NULL;
  rc = rad_workspace_create(F, 2, &ws);
  FL_RC_IN(rc, RAD_OK, RAD_ENOMEM, RAD_ETOOBIG);
  if (rc == RAD_OK) {
    FL_CHECK(rad_flow_log_prob_ws(F, ws, n, x, lp2) == RAD_OK);
    FL_CHECK(!fl_has_nan(lp2, n));
    int rw = rad_flow_sample_ws(F, ws, 42, n, s2, NULL, NULL);
    FL_RC_IN(rw, RAD_OK, RAD_EOVERFLOW);
    if (FL_CHECK_BATCH_INVARIANCE) {
      FL_CHECK(rw == rs);
      if (rs == RAD_OK) FL_CHECK(memcmp(s1, s2, n * d * sizeof(float)) == 0);
    }
    rad_workspace_free(ws);
  }

  /* gradient of the mean: finite on success */
  float *g = fl_alloc(np * sizeof(float));
  double mean = 0.0;
  rc = rad_flow_grad(F, n, x, g, &mean);
  FL_RC_IN(rc, RAD_OK, RAD_ENUMERIC);
  if (rc == RAD_OK) FL_CHECK(isfinite(mean) && fl_all_finite(g, np));
  const float w[6] = {1.0f, 0.0f, 2.0f, 0.5f, 0.0f, 1.0f};
  rc = rad_flow_grad_weighted(F, n, x, w, g, &mean);
  FL_RC_IN(rc, RAD_OK, RAD_ENUMERIC);
  if (rc == RAD_OK) FL_CHECK(isfinite(mean) && fl_all_finite(g, np));

  /* score and gating probabilities: never RAD_OK with a NaN (rows that
     overflow inside the flow give RAD_EOVERFLOW; the reproducers of the
     fixed bug are tests/regress/load/nan-*.rad) */
  rc = rad_flow_score(F, n, x, z, lp2);
  FL_RC_IN(rc, RAD_OK, RAD_ENUMERIC, RAD_EOVERFLOW);
  if (rc == RAD_OK) {
    FL_CHECK(memcmp(lp, lp2, n * sizeof(float)) == 0);
    FL_CHECK(!fl_has_nan(z, n * d));
  }
  float *probs = fl_alloc(n * nl * 3 * sizeof(float));
  rc = rad_flow_gate_probs(F, n, x, probs);
  FL_RC_IN(rc, RAD_OK, RAD_EOVERFLOW);
  for (size_t i = 0; rc == RAD_OK && i < n * nl; i++) { /* a distribution over 3 labels */
    const float *q = probs + 3 * i;
    for (int c = 0; c < 3; c++) FL_CHECK(q[c] >= 0.0f && q[c] <= 1.0f);
    FL_CHECK(fabsf(q[0] + q[1] + q[2] - 1.0f) <= 1e-4f);
  }

  /* save, compare bytes, load again, compare the models */
  size_t need = 0;
  FL_CHECK(rad_flow_save_to_buffer(F, NULL, 0, &need) == RAD_OK);
  FL_CHECK(need == size);
  unsigned char *buf = fl_alloc(need);
  size_t got = 0;
  if (need > 0) FL_CHECK(rad_flow_save_to_buffer(F, buf, need - 1, &got) == RAD_ESIZE);
  FL_CHECK(rad_flow_save_to_buffer(F, buf, need, &got) == RAD_OK);
  FL_CHECK(got == need);
  fl_check_same_bytes(data, buf, size);
  rad_flow *G = (rad_flow *)&G;
  FL_CHECK(rad_flow_load_from_buffer(buf, got, &G) == RAD_OK);
  fl_same_flow(F, G, x, n);
  rad_flow_free(G);
  /* a copy is the same model too */
  rad_flow *C = NULL;
  rc = rad_flow_copy(F, &C);
  FL_RC_IN(rc, RAD_OK, RAD_ENOMEM);
  if (rc == RAD_OK) fl_same_flow(F, C, x, n);
  rad_flow_free(C);

  free(buf), free(probs), free(g), free(s1), free(s2), free(zs), free(ks);
  free(x), free(lp), free(lp2), free(z), free(k);
}

static void fl_exercise_adam(const rad_adam *A, const unsigned char *data, size_t size) {
  const size_t n = rad_adam_num_params(A);
  FL_CHECK(n >= 1);
  double lr, b1, b2, eps;
  FL_CHECK(rad_adam_get_option(A, RAD_OPTION_LEARNING_RATE, &lr) == RAD_OK);
  FL_CHECK(rad_adam_get_option(A, RAD_OPTION_BETA1, &b1) == RAD_OK);
  FL_CHECK(rad_adam_get_option(A, RAD_OPTION_BETA2, &b2) == RAD_OK);
  FL_CHECK(rad_adam_get_option(A, RAD_OPTION_EPSILON, &eps) == RAD_OK);
  FL_CHECK(isfinite(lr) && lr > 0 && b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1);
  FL_CHECK(isfinite(eps) && eps > 0);
  float *m = fl_alloc(n * sizeof(float)), *v = fl_alloc(n * sizeof(float));
  uint64_t t;
  FL_CHECK(rad_adam_get_state(A, m, v, &t, n) == RAD_OK);
  FL_CHECK(fl_all_finite(m, n) && fl_all_finite(v, n));
  for (size_t i = 0; i < n; i++) FL_CHECK(v[i] >= 0.0f);
  FL_CHECK(rad_adam_steps(A) == t);

  size_t need = 0, got = 0;
  FL_CHECK(rad_adam_save_to_buffer(A, NULL, 0, &need) == RAD_OK);
  FL_CHECK(need == size);
  unsigned char *buf = fl_alloc(need);
  FL_CHECK(rad_adam_save_to_buffer(A, buf, need, &got) == RAD_OK && got == need);
  fl_check_same_bytes(data, buf, size);
  rad_adam *B = NULL;
  FL_CHECK(rad_adam_load_from_buffer(buf, got, &B) == RAD_OK);
  FL_CHECK(rad_adam_num_params(B) == n && rad_adam_steps(B) == t);
  float *m2 = fl_alloc(n * sizeof(float)), *v2 = fl_alloc(n * sizeof(float));
  uint64_t t2;
  FL_CHECK(rad_adam_get_state(B, m2, v2, &t2, n) == RAD_OK && t2 == t);
  FL_CHECK(memcmp(m, m2, n * sizeof(float)) == 0 && memcmp(v, v2, n * sizeof(float)) == 0);
  double o1, o2;
  for (int opt = RAD_OPTION_LEARNING_RATE; opt <= RAD_OPTION_EPSILON; opt++) {
    FL_CHECK(rad_adam_get_option(A, opt, &o1) == RAD_OK);
    FL_CHECK(rad_adam_get_option(B, opt, &o2) == RAD_OK);
    FL_CHECK(memcmp(&o1, &o2, sizeof o1) == 0);
  }

  /* one step of the loaded optimizer on a copy: finite or refused */
  float *p = fl_alloc(n * sizeof(float)), *gr = fl_alloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) gr[i] = (float)((int)(i % 7) - 3) * 0.25f;
  int rc = rad_adam_step(B, p, gr, n);
  FL_RC_IN(rc, RAD_OK, RAD_ENUMERIC);
  if (rc == RAD_OK) FL_CHECK(fl_all_finite(p, n));
  rad_adam_free(B);
  free(buf), free(m), free(v), free(m2), free(v2), free(p), free(gr);
}

static void fl_load_once(const unsigned char *data, size_t size) {
  rad_flow *F = (rad_flow *)&F;
  int rc = rad_flow_load_from_buffer(data, size, &F);
  FL_CHECK(rc <= 0 && rc >= RAD_STATUS_MIN);
  FL_RC_IN(rc, RAD_OK, RAD_EFORMAT, RAD_ETRUNCATED, RAD_EVERSION, RAD_ECORRUPT, RAD_ENOMEM);
  if (rc == RAD_OK) {
    FL_CHECK(F != NULL);
    fl_exercise_flow(F, data, size);
    rad_flow_free(F);
    /* the same file with a flag set (and its CRC made right) is refused */
    unsigned char *fb = fl_alloc(size);
    memcpy(fb, data, size);
    fb[12 + (size % 4)] ^= (unsigned char)(1u << (size % 8));
    const uint32_t c = fl_crc32(fb, size - 4);
    for (int i = 0; i < 4; i++) fb[size - 4 + i] = (unsigned char)(c >> (8 * i));
    rad_flow *G = (rad_flow *)&G;
    FL_CHECK(rad_flow_load_from_buffer(fb, size, &G) == RAD_EVERSION && G == NULL);
    free(fb);
  } else {
    FL_CHECK(F == NULL);
  }
  rad_adam *A = (rad_adam *)&A;
  rc = rad_adam_load_from_buffer(data, size, &A);
  FL_RC_IN(rc, RAD_OK, RAD_EFORMAT, RAD_ETRUNCATED, RAD_EVERSION, RAD_ECORRUPT, RAD_ENOMEM);
  if (rc == RAD_OK) {
    FL_CHECK(A != NULL);
    fl_exercise_adam(A, data, size);
    rad_adam_free(A);
  } else {
    FL_CHECK(A == NULL);
  }
}

int FUZZ_LOAD_ENTRY(const uint8_t *data, size_t size);
int FUZZ_LOAD_ENTRY(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0; /* the parsers are linear: nothing to gain */
  /* libFuzzer's buffer is exactly `size` bytes: copy it so that an
     out-of-bounds read is caught in the regression test too */
  unsigned char *buf = fl_alloc(size);
  if (size) memcpy(buf, data, size);
  fl_load_once(buf, size);
  /* the same bytes with the declared size and the CRC made right */
  if (size >= 28 && (memcmp(buf, FL_MAGIC_FLOW, 8) == 0 || memcmp(buf, FL_MAGIC_ADAM, 8) == 0)) {
    const uint64_t total = size;
    const uint32_t before = fl_crc32(buf, size);
    for (int i = 0; i < 8; i++) buf[16 + i] = (unsigned char)(total >> (8 * i));
    uint32_t c = fl_crc32(buf, size - 4);
    for (int i = 0; i < 4; i++) buf[size - 4 + i] = (unsigned char)(c >> (8 * i));
    if (fl_crc32(buf, size) != before) fl_load_once(buf, size);
  }
  free(buf);
  return 0;
}
