/*
 * test_regress.c: every file of tests/regress/ and fuzz/corpus/ (the
 * fuzzers' seed corpus and the inputs fuzzing found) through the
 * fuzzers' own entry points: fuzz/fuzz_load.c (the model and optimizer
 * loaders, then the loaded model exercised, saved and reloaded) and
 * fuzz/fuzz_csv.c (the rad tool's CSV reader). Every file goes through
 * both. A failed check aborts, which Check reports with the iteration
 * (the files are listed by iteration after a failure).
 *
 * The seed files must also still load: a format change that makes them
 * stale fails here (regenerate them with `make fuzz-corpus`).
 *
 * Adding a regression input: drop the file into tests/regress/load/ or
 * tests/regress/csv/ (docs/reliability.md).
 */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rad/rad.h>

/* The harnesses, with their entry points renamed. */
#define FUZZ_LOAD_ENTRY regress_load_one
#define FUZZ_CSV_ENTRY regress_csv_one
#include "../fuzz/fuzz_load.c"
#include "../fuzz/fuzz_csv.c"
/* The CSV reader is an example's source file, not part of librad. */
#include "../examples/common/csv.c"

static const char *const DIRS[] = {"fuzz/corpus/load", "fuzz/corpus/csv", "tests/regress/load",
                                   "tests/regress/csv"};

static char **files;
static size_t n_files;
static char top[4096];

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files of top/dir (dot files skipped), appended to files. */
static void collect(const char *dir) {
  char path[8192];
  snprintf(path, sizeof path, "%s/%s", top, dir);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *p = malloc(strlen(path) + strlen(e->d_name) + 2);
    if (!p) abort();
    sprintf(p, "%s/%s", path, e->d_name);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(p);
      continue;
    }
    char **nf = realloc(files, (n_files + 1) * sizeof *files);
    if (!nf) abort();
    files = nf;
    files[n_files++] = p;
  }
  closedir(d);
}

static unsigned char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  size_t cap = 4096, len = 0;
  unsigned char *b = malloc(cap);
  ck_assert_ptr_nonnull(b);
  for (;;) {
    if (len == cap) {
      cap *= 2;
      b = realloc(b, cap);
      ck_assert_ptr_nonnull(b);
    }
    size_t k = fread(b + len, 1, cap - len, f);
    if (k == 0) break;
    len += k;
  }
  ck_assert(!ferror(f));
  fclose(f);
  *n = len;
  return b;
}

START_TEST(test_file) {
  const char *path = files[_i];
  size_t n;
  unsigned char *b = read_all(path, &n);
  regress_load_one(b, n);
  regress_csv_one(b, n);
  /* the rad tool's file reader gives the same bytes, NUL-terminated */
  char *cb = NULL, err[256];
  size_t cn = 0;
  ck_assert_int_eq(csv_read_file(path, &cb, &cn, err, sizeof err), CSV_OK);
  ck_assert_uint_eq(cn, n);
  ck_assert(n == 0 || memcmp(cb, b, n) == 0);
  ck_assert_int_eq(cb[n], '\0');
  free(cb);
  free(b);
}
END_TEST

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The seed models and optimizers are valid files of this library. */
START_TEST(test_seeds_load) {
  size_t flows = 0, adams = 0;
  for (size_t i = 0; i < n_files; i++) {
    if (!strstr(files[i], "/fuzz/corpus/load/")) continue;
    size_t n;
    unsigned char *b = read_all(files[i], &n);
    if (ends_with(files[i], ".rad")) {
      rad_flow *F = NULL;
      ck_assert_msg(rad_flow_load_from_buffer(b, n, &F) == RAD_OK, "%s does not load", files[i]);
      rad_flow_free(F);
      flows++;
    } else if (ends_with(files[i], ".radam")) {
      rad_adam *A = NULL;
      ck_assert_msg(rad_adam_load_from_buffer(b, n, &A) == RAD_OK, "%s does not load", files[i]);
      rad_adam_free(A);
      adams++;
    }
    free(b);
  }
  ck_assert_uint_ge(flows, 4);
  ck_assert_uint_ge(adams, 1);
}
END_TEST

/* Inputs whose status is part of the file format's contract. */
static const struct {
  const char *name;
  int status;
} EXPECTED[] = {
    {"trailing-bytes.rad", RAD_ECORRUPT},  /* bytes after the parameters */
    {"inf-logit-bound.rad", RAD_ECORRUPT}, /* a layer's bound is +inf */
    {"negzero-logit-bound.rad", RAD_OK},   /* -0 is 0: unclamped */
    {"ubsan-expf-nan-to-int.rad", RAD_OK},
    {"nan-score-gate-probs.rad", RAD_OK},
};

START_TEST(test_expected_status) {
  for (size_t e = 0; e < sizeof EXPECTED / sizeof EXPECTED[0]; e++) {
    int found = 0;
    for (size_t i = 0; i < n_files; i++) {
      const char *base = strrchr(files[i], '/');
      if (strcmp(base ? base + 1 : files[i], EXPECTED[e].name) != 0) continue;
      found = 1;
      size_t n;
      unsigned char *b = read_all(files[i], &n);
      rad_flow *F = (rad_flow *)1;
      const int rc = rad_flow_load_from_buffer(b, n, &F);
      ck_assert_msg(rc == EXPECTED[e].status, "%s: %s, expected %s", files[i], rad_strerror(rc),
                    rad_strerror(EXPECTED[e].status));
      rad_flow_free(F);
      free(b);
    }
    ck_assert_msg(found, "tests/regress/load/%s is missing", EXPECTED[e].name);
  }
}
END_TEST

/* Models with huge parameters that overflow inside the flow: every entry
   point reports it, none hands back NaN with RAD_OK (these files
   reproduced rad_flow_gate_probs returning RAD_OK with NaN, and a NaN
   converted to int in rad__expf, before the fix). */
static rad_flow *load_regress(const char *name) {
  char path[8192];
  snprintf(path, sizeof path, "%s/tests/regress/load/%s", top, name);
  size_t n;
  unsigned char *b = read_all(path, &n);
  rad_flow *F = NULL;
  ck_assert_msg(rad_flow_load_from_buffer(b, n, &F) == RAD_OK, "%s does not load", path);
  free(b);
  return F;
}

START_TEST(test_overflow_reported) {
  const float x0[3] = {0.0f, 0.0f, 0.0f}, x1[3] = {1000.0f, -1000.0f, 1000.0f};
  float lp, s[3], probs[3 * 64];
  /* log p finite (-2.5e34), gating probabilities not: RAD_EOVERFLOW */
  rad_flow *F = load_regress("nan-gate-probs-finite-logp.rad");
  ck_assert_uint_le(rad_flow_num_labels(F), 64);
  ck_assert_int_eq(rad_flow_log_prob(F, 1, x1, &lp), RAD_OK);
  ck_assert(isfinite(lp) && lp < -1e34f);
  ck_assert_int_eq(rad_flow_gate_probs(F, 1, x1, probs), RAD_EOVERFLOW);
  rad_flow_free(F);
  /* log p finite (-198247), the score not: RAD_EOVERFLOW; at 0 both fine */
  F = load_regress("nan-score-finite-logp.rad");
  ck_assert_int_eq(rad_flow_log_prob(F, 1, x1, &lp), RAD_OK);
  ck_assert(isfinite(lp) && lp < -1e5f);
  ck_assert_int_eq(rad_flow_score(F, 1, x1, s, NULL), RAD_EOVERFLOW);
  ck_assert_int_eq(rad_flow_score(F, 1, x0, s, NULL), RAD_OK);
  ck_assert(isfinite(s[0]) && isfinite(s[1]) && isfinite(s[2]));
  ck_assert_int_eq(rad_flow_gate_probs(F, 1, x0, probs), RAD_OK);
  for (size_t i = 0; i < 3 * rad_flow_num_labels(F); i++) ck_assert(probs[i] >= 0 && probs[i] <= 1);
  rad_flow_free(F);
  /* log p = -inf at 0: score, gating probabilities and forward overflow */
  F = load_regress("nan-score-gate-probs.rad");
  float z[3];
  ck_assert_int_eq(rad_flow_log_prob(F, 1, x0, &lp), RAD_OK);
  ck_assert(isinf(lp) && lp < 0);
  ck_assert_int_eq(rad_flow_score(F, 1, x0, s, NULL), RAD_EOVERFLOW);
  ck_assert_int_eq(rad_flow_gate_probs(F, 1, x0, probs), RAD_EOVERFLOW);
  ck_assert_int_eq(rad_flow_forward(F, 1, x0, z, NULL, NULL), RAD_EOVERFLOW);
  rad_flow_free(F);
  /* an infinite logit inside: log p is -inf, not NaN (d = 1) */
  F = load_regress("ubsan-expf-nan-to-int.rad");
  ck_assert_int_eq(rad_flow_log_prob(F, 1, x0, &lp), RAD_OK);
  ck_assert(isinf(lp) && lp < 0);
  rad_flow_free(F);
}
END_TEST

int main(void) {
  const char *t = getenv("RAD_TOP");
  snprintf(top, sizeof top, "%s", t && *t ? t : ".");
  for (size_t i = 0; i < sizeof DIRS / sizeof DIRS[0]; i++) collect(DIRS[i]);
  if (n_files == 0) {
    fprintf(stderr, "test_regress: no input under %s/fuzz/corpus or %s/tests/regress\n", top, top);
    return EXIT_FAILURE;
  }
  qsort(files, n_files, sizeof *files, cmp_str);
  printf("test_regress: %zu inputs\n", n_files);
  Suite *s = suite_create("regress");
  TCase *tc = tcase_create("regress");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_file, 0, (int)n_files);
  tcase_add_test(tc, test_seeds_load);
  tcase_add_test(tc, test_expected_status);
  tcase_add_test(tc, test_overflow_reported);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  if (failed) /* name the iterations Check reported */
    for (size_t i = 0; i < n_files; i++) printf("  test_file iteration %zu: %s\n", i, files[i]);
  for (size_t i = 0; i < n_files; i++) free(files[i]);
  free(files);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
