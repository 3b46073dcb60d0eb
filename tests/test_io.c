/*
 * test_io.c: model and optimizer files, and the standardization layer.
 * Round trips (file and buffer) keep every density, label and sample;
 * every truncation, every single-byte corruption, foreign data, future
 * versions and inconsistent contents with a valid checksum are refused
 * with their own status code, *out left NULL; saving is atomic.
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rad/rad.h>

#include "testutil.h"

static char tmpdir[256];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/rad-test-io-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void teardown(void) {
  DIR *d = opendir(tmpdir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
      if (e->d_name[0] != '.') {
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
      }
    closedir(d);
  }
  rmdir(tmpdir);
}

static int count_files(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* A flow with every feature the format stores: mixed layers, a custom
   mask, a non-default logit bound, standardization and names. */
static rad_flow *rich_flow(void) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create_empty(3, &F), RAD_OK);
  const uint8_t m0[3] = {1, 0, 1}, m1[3] = {0, 1, 0}, m2[3] = {1, 1, 1};
  const uint8_t *masks[3] = {m0, m1, m2};
  for (int l = 0; l < 3; l++) {
    rad_coupling *c;
    ck_assert_int_eq(rad_coupling_create(l == 1 ? RAD_LAYER_AFFINE : RAD_LAYER_RAD, 3, masks[l], 3,
                                         5 + l, 4, 10 + l, &c),
                     RAD_OK);
    if (l == 2) ck_assert_int_eq(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, 2.5), RAD_OK);
    ck_assert_int_eq(rad_flow_add_coupling(F, c), RAD_OK);
    rad_coupling_free(c);
  }
  tu_perturb_flow(F, 0.2, 4);
  const float shift[3] = {10.0f, -3.0f, 0.5f}, scale[3] = {2.0f, 0.25f, 7.0f};
  ck_assert_int_eq(rad_flow_set_standardization(F, shift, scale, 3), RAD_OK);
  const char *names[3] = {"bill_length_mm", "bill depth (mm)", "flipper"};
  ck_assert_int_eq(rad_flow_set_column_names(F, names, 3), RAD_OK);
  return F;
}

static void assert_same_flow(const rad_flow *A, const rad_flow *B) {
  const size_t d = rad_flow_dim(A), n = 200;
  ck_assert_uint_eq(rad_flow_dim(B), d);
  ck_assert_uint_eq(rad_flow_num_params(B), rad_flow_num_params(A));
  ck_assert_uint_eq(rad_flow_num_labels(B), rad_flow_num_labels(A));
  ck_assert_uint_eq(rad_flow_num_layers(B), rad_flow_num_layers(A));
  for (size_t i = 0; i < d; i++) {
    const char *a = rad_flow_column_name(A, i), *b = rad_flow_column_name(B, i);
    if (a) ck_assert_str_eq(a, b);
    else ck_assert_ptr_null(b);
  }
  float *xa = malloc(n * d * sizeof(float)), *xb = malloc(n * d * sizeof(float));
  float *la = malloc(n * sizeof(float)), *lb = malloc(n * sizeof(float));
  ck_assert_int_eq(rad_flow_sample(A, 3, n, xa, NULL, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_sample(B, 3, n, xb, NULL, NULL), RAD_OK);
  ck_assert_mem_eq(xa, xb, n * d * sizeof(float));
  ck_assert_int_eq(rad_flow_log_prob(A, n, xa, la), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(B, n, xa, lb), RAD_OK);
  ck_assert_mem_eq(la, lb, n * sizeof(float));
  free(xa), free(xb), free(la), free(lb);
}

START_TEST(test_roundtrip) {
  rad_flow *F = rich_flow(), *G = NULL, *H = NULL;
  char path[300];
  snprintf(path, sizeof path, "%s/model.rad", tmpdir);
  ck_assert_int_eq(rad_flow_save(F, path), RAD_OK);
  ck_assert_int_eq(count_files(), 1); /* no temporary left behind */
  ck_assert_int_eq(rad_flow_load(path, &G), RAD_OK);
  assert_same_flow(F, G);
  size_t n;
  ck_assert_int_eq(rad_flow_save_to_buffer(F, NULL, 0, &n), RAD_OK);
  unsigned char *buf = malloc(n);
  size_t small;
  ck_assert_int_eq(rad_flow_save_to_buffer(F, buf, n - 1, &small), RAD_ESIZE);
  ck_assert_int_eq(rad_flow_save_to_buffer(F, buf, n, &n), RAD_OK);
  ck_assert_int_eq(rad_flow_load_from_buffer(buf, n, &H), RAD_OK);
  assert_same_flow(F, H);
  /* the file holds exactly the buffer's bytes */
  FILE *f = fopen(path, "rb");
  unsigned char *fb = malloc(n + 1);
  ck_assert_uint_eq(fread(fb, 1, n + 1, f), n);
  fclose(f);
  ck_assert_mem_eq(fb, buf, n);
  /* options and the standardization survive */
  double v;
  rad_coupling *c;
  ck_assert_int_eq(rad_flow_get_coupling(G, 2, &c), RAD_OK);
  ck_assert_int_eq(rad_coupling_get_option(c, RAD_OPTION_LOGIT_BOUND, &v), RAD_OK);
  ck_assert(v == 2.5);
  rad_coupling_free(c);
  float sh[3], sc[3];
  ck_assert_int_eq(rad_flow_get_standardization(G, sh, sc, 3), RAD_OK);
  ck_assert(sh[0] == 10.0f && sc[1] == 0.25f && rad_flow_has_standardization(G));
  free(buf), free(fb);
  rad_flow_free(F), rad_flow_free(G), rad_flow_free(H);
}
END_TEST

/* A flow at the format's limit of 2^16 layers saves and loads back (a
   one-unit affine flow keeps it small); one layer more is refused when
   it is added, so no flow librad builds writes a file it cannot read. */
START_TEST(test_layer_limit) {
  const size_t L = (size_t)1 << 16;
  rad_flow *F = NULL, *G = NULL;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_AFFINE, 1, L, 1, 0, 3, &F), RAD_OK);
  rad_coupling *c;
  ck_assert_int_eq(rad_flow_get_coupling(F, 0, &c), RAD_OK);
  ck_assert_int_eq(rad_flow_add_coupling(F, c), RAD_ETOOBIG);
  ck_assert_uint_eq(rad_flow_num_layers(F), L);
  rad_coupling_free(c);
  size_t n;
  ck_assert_int_eq(rad_flow_save_to_buffer(F, NULL, 0, &n), RAD_OK);
  unsigned char *buf = malloc(n);
  ck_assert_int_eq(rad_flow_save_to_buffer(F, buf, n, &n), RAD_OK);
  ck_assert_int_eq(rad_flow_load_from_buffer(buf, n, &G), RAD_OK);
  ck_assert_uint_eq(rad_flow_num_layers(G), L);
  float x[4] = {-1.0f, 0.0f, 0.5f, 2.0f}, a[4], b[4];
  ck_assert_int_eq(rad_flow_log_prob(F, 4, x, a), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(G, 4, x, b), RAD_OK);
  ck_assert_mem_eq(a, b, sizeof a);
  free(buf);
  rad_flow_free(F), rad_flow_free(G);
}
END_TEST

static int load_code(const unsigned char *b, size_t n) {
  rad_flow *F = (rad_flow *)1;
  int rc = rad_flow_load_from_buffer(b, n, &F);
  if (rc == RAD_OK)
    rad_flow_free(F);
  else
    ck_assert_ptr_null(F);
  return rc;
}

/* rewrite the CRC after editing a buffer */
static void fix_crc(unsigned char *b, size_t n) {
  /* CRC-32 as zlib computes it, independently of the library */
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n - 4; i++) {
    c ^= b[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  c ^= 0xFFFFFFFFu;
  for (int k = 0; k < 4; k++) b[n - 4 + k] = (unsigned char)(c >> (8 * k));
}

START_TEST(test_refusals) {
  rad_flow *F = rich_flow();
  size_t n;
  rad_flow_save_to_buffer(F, NULL, 0, &n);
  unsigned char *b = malloc(n), *e = malloc(n);
  rad_flow_save_to_buffer(F, b, n, &n);
  /* every truncation */
  for (size_t k = 0; k < n; k++) ck_assert_int_eq(load_code(b, k), RAD_ETRUNCATED);
  /* every single-byte corruption */
  for (size_t k = 0; k < n; k++) {
    memcpy(e, b, n);
    e[k] ^= 0x5a;
    int rc = load_code(e, n);
    if (k < 8)
      ck_assert_int_eq(rc, RAD_EFORMAT);
    else if (k >= 8 && k < 12)
      ck_assert(rc == RAD_EVERSION || rc == RAD_ECORRUPT);
    else if (k >= 16 && k < 24)
      ck_assert(rc == RAD_ETRUNCATED || rc == RAD_ECORRUPT);
    else
      ck_assert_int_eq(rc, RAD_ECORRUPT);
  }
  /* trailing bytes */
  unsigned char *longer = malloc(n + 3);
  memcpy(longer, b, n);
  memset(longer + n, 0, 3);
  ck_assert_int_eq(load_code(longer, n + 3), RAD_ECORRUPT);
  /* foreign data */
  const unsigned char png[16] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  ck_assert_int_eq(load_code(png, sizeof png), RAD_EFORMAT);
  const char *text = "x,y\n1,2\n";
  ck_assert_int_eq(load_code((const unsigned char *)text, strlen(text)), RAD_EFORMAT);
  /* a future version, with a valid checksum */
  memcpy(e, b, n);
  e[8] = 2;
  fix_crc(e, n);
  ck_assert_int_eq(load_code(e, n), RAD_EVERSION);
  /* a flag set, with a valid checksum: none is defined in version 1, and
     an unknown flag could change the meaning of the data */
  for (int bit = 0; bit < 32; bit++) {
    memcpy(e, b, n);
    e[12 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
    fix_crc(e, n);
    ck_assert_int_eq(load_code(e, n), RAD_EVERSION);
  }
  /* valid checksum, inconsistent content: dim, parameter count, a mask of
     zeros, a NaN parameter, an unknown layer kind */
  struct {
    size_t off;
    unsigned char val;
  } edits[] = {{24, 0}, {40, 1}, {n - 8, 0xff}};
  for (size_t t = 0; t < sizeof edits / sizeof edits[0]; t++) {
    memcpy(e, b, n);
    e[edits[t].off] = edits[t].val;
    if (edits[t].off == n - 8) e[n - 7] = 0xff, e[n - 6] = 0xff, e[n - 5] = 0x7f; /* NaN */
    fix_crc(e, n);
    ck_assert_int_eq(load_code(e, n), RAD_ECORRUPT);
  }
  /* the first layer record follows the header, dim, layers, params,
     standardization and names: find its kind field by value */
  size_t off = 24 + 24 + 4 + 3 * 8 + 4;
  for (int i = 0; i < 3; i++) off += 4 + strlen(rad_flow_column_name(F, (size_t)i));
  ck_assert(b[off] == RAD_LAYER_RAD);
  memcpy(e, b, n);
  e[off] = 7;
  fix_crc(e, n);
  ck_assert_int_eq(load_code(e, n), RAD_ECORRUPT);
  memcpy(e, b, n);
  memset(e + off + 4 + 8 + 8 + 4, 0, 3); /* the mask */
  fix_crc(e, n);
  ck_assert_int_eq(load_code(e, n), RAD_ECORRUPT);
  /* files */
  rad_flow *G = (rad_flow *)1;
  char path[300];
  snprintf(path, sizeof path, "%s/missing/model.rad", tmpdir);
  ck_assert_int_eq(rad_flow_save(F, path), RAD_EIO);
  ck_assert_int_eq(rad_flow_load(path, &G), RAD_EIO);
  ck_assert_ptr_null(G);
  ck_assert_int_eq(count_files(), 0);
  ck_assert_int_eq(rad_flow_load_from_buffer(NULL, 10, &G), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_save(F, ""), RAD_EINVAL);
  free(b), free(e), free(longer);
  rad_flow_free(F);
}
END_TEST

/* The standardization layer: log p(x) = log p_flow((x - m) / s) - sum
   log s; samples and inverses come back in x's units; the score follows
   the chain rule. */
START_TEST(test_standardization) {
  rad_flow *F;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, 2, 3, 8, 8, 5, &F), RAD_OK);
  tu_perturb_flow(F, 0.2, 6);
  rad_flow *G;
  ck_assert_int_eq(rad_flow_copy(F, &G), RAD_OK);
  const float m[2] = {100.0f, -0.003f}, s[2] = {15.0f, 0.001f};
  ck_assert_int_eq(rad_flow_set_standardization(G, m, s, 2), RAD_OK);
  const size_t n = 100;
  float x[200], u[200], lpF[100], lpG[100], scF[200], scG[200];
  tu_rng r = {1};
  for (size_t i = 0; i < n; i++) {
    for (int f = 0; f < 2; f++) {
      u[2 * i + f] = (float)tu_gauss(&r);
      x[2 * i + f] = m[f] + s[f] * u[2 * i + f];
      u[2 * i + f] = (x[2 * i + f] - m[f]) / s[f];
    }
  }
  ck_assert_int_eq(rad_flow_log_prob(F, n, u, lpF), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(G, n, x, lpG), RAD_OK);
  const double ld = -log(15.0) - log(0.001);
  for (size_t i = 0; i < n; i++) ck_assert_double_eq_tol(lpG[i], lpF[i] + ld, 1e-3);
  ck_assert_int_eq(rad_flow_score(F, n, u, scF, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_score(G, n, x, scG, NULL), RAD_OK);
  for (size_t i = 0; i < n * 2; i++)
    ck_assert(fabsf(scG[i] - scF[i] / s[i % 2]) <= 1e-3f * (1 + fabsf(scG[i])));
  /* samples of G are m + s * samples of F */
  float xs[200], us[200];
  ck_assert_int_eq(rad_flow_sample(F, 9, n, us, NULL, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_sample(G, 9, n, xs, NULL, NULL), RAD_OK);
  for (size_t i = 0; i < n * 2; i++)
    ck_assert(fabsf(xs[i] - (m[i % 2] + s[i % 2] * us[i])) <= 1e-4f * (fabsf(m[i % 2]) + s[i % 2]));
  /* inverse(forward) in x units */
  float z[200], xb[200];
  int32_t k[300];
  ck_assert_int_eq(rad_flow_forward(G, n, x, z, k, NULL), RAD_OK);
  ck_assert_int_eq(rad_flow_inverse(G, n, z, k, xb), RAD_OK);
  for (size_t i = 0; i < n * 2; i++)
    ck_assert(fabsf(xb[i] - x[i]) <= 1e-4f * (fabsf(m[i % 2]) + s[i % 2]));
  /* bad standardizations change nothing */
  const float zero[2] = {1.0f, 0.0f}, nan2[2] = {NAN, 1.0f};
  ck_assert_int_eq(rad_flow_set_standardization(G, m, zero, 2), RAD_EINVAL);
  ck_assert_int_eq(rad_flow_set_standardization(G, nan2, s, 2), RAD_ENONFINITE);
  ck_assert_int_eq(rad_flow_set_standardization(G, m, s, 3), RAD_ESIZE);
  ck_assert_int_eq(rad_flow_set_standardization(G, m, NULL, 2), RAD_EINVAL);
  float lp2[100];
  ck_assert_int_eq(rad_flow_log_prob(G, n, x, lp2), RAD_OK);
  ck_assert_mem_eq(lp2, lpG, sizeof lp2);
  /* removing it */
  ck_assert_int_eq(rad_flow_set_standardization(G, NULL, NULL, 0), RAD_OK);
  ck_assert_int_eq(rad_flow_has_standardization(G), 0);
  ck_assert_int_eq(rad_flow_log_prob(G, n, u, lp2), RAD_OK);
  ck_assert_mem_eq(lp2, lpF, sizeof lp2);
  rad_flow_free(F), rad_flow_free(G);
}
END_TEST

/* An optimizer saved and loaded continues a fit exactly. */
START_TEST(test_adam_file) {
  float *x = malloc(1000 * 2 * sizeof(float));
  rad_problem_sample(RAD_PROBLEM_MOONS, 1, 1000, x);
  rad_flow *A, *B;
  rad_flow_create(RAD_LAYER_RAD, 2, 2, 8, 8, 3, &A);
  rad_flow_copy(A, &B);
  const size_t np = rad_flow_num_params(A);
  rad_fit_options *o;
  rad_fit_options_create(&o);
  rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, 100);
  rad_adam *oa, *ob, *oc = NULL;
  rad_adam_create(np, &oa);
  rad_adam_create(np, &ob);
  rad_adam_set_option(oa, RAD_OPTION_LEARNING_RATE, 3e-3);
  rad_adam_set_option(ob, RAD_OPTION_LEARNING_RATE, 3e-3);
  rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 3e-3);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 60);
  ck_assert_int_eq(rad_flow_fit(A, oa, o, 1000, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 25);
  ck_assert_int_eq(rad_flow_fit(B, ob, o, 1000, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  char pm[300], po[300];
  snprintf(pm, sizeof pm, "%s/m.rad", tmpdir);
  snprintf(po, sizeof po, "%s/o.radam", tmpdir);
  ck_assert_int_eq(rad_flow_save(B, pm), RAD_OK);
  ck_assert_int_eq(rad_adam_save(ob, po), RAD_OK);
  rad_flow_free(B);
  ck_assert_int_eq(rad_flow_load(pm, &B), RAD_OK);
  ck_assert_int_eq(rad_adam_load(po, &oc), RAD_OK);
  ck_assert_uint_eq(rad_adam_steps(oc), 25);
  double lr;
  rad_adam_get_option(oc, RAD_OPTION_LEARNING_RATE, &lr);
  ck_assert(lr == 3e-3);
  rad_fit_options_set(o, RAD_OPTION_STEPS, 35);
  ck_assert_int_eq(rad_flow_fit(B, oc, o, 1000, x, 0, NULL, NULL, NULL, NULL), RAD_OK);
  float *pa = malloc(np * sizeof(float)), *pb = malloc(np * sizeof(float));
  rad_flow_get_params(A, pa, np);
  rad_flow_get_params(B, pb, np);
  ck_assert_mem_eq(pa, pb, np * sizeof(float));
  /* a flow file is not an optimizer file */
  rad_adam *bad = (rad_adam *)1;
  ck_assert_int_eq(rad_adam_load(pm, &bad), RAD_EFORMAT);
  ck_assert_ptr_null(bad);
  rad_flow *badf = (rad_flow *)1;
  ck_assert_int_eq(rad_flow_load(po, &badf), RAD_EFORMAT);
  ck_assert_ptr_null(badf);
  free(x), free(pa), free(pb);
  rad_adam_free(oa), rad_adam_free(ob), rad_adam_free(oc);
  rad_fit_options_free(o);
  rad_flow_free(A), rad_flow_free(B);
}
END_TEST

int main(void) {
  Suite *s = suite_create("io");
  TCase *tc = tcase_create("io");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_roundtrip);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_layer_limit);
  tcase_add_test(tc, test_standardization);
  tcase_add_test(tc, test_adam_file);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
