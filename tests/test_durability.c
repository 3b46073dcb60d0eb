/*
 * test_durability.c: rad_flow_save killed at random moments.
 *
 * rad_flow_save writes PATH.tmp.XXXXXX, fsyncs it and renames it over
 * PATH, so a crash at any moment must leave PATH holding either the old
 * model or the new one, whole (docs/file-format.md, "Saving").
 *
 * Each round: the parent saves a small model A to PATH; a child process
 * saves a different, bigger model B (about 1 MB) to the same PATH in a
 * loop; the parent kills the child with SIGKILL after a delay, reaps it,
 * and checks that PATH holds exactly A's bytes or exactly B's, that it
 * loads with rad_flow_load and gives that model's log_prob bit for bit,
 * and counts the temporary files the killed save left behind (a process
 * killed between mkstemp and rename cannot remove its temporary: that is
 * expected, at most one per kill, and they are removed here).
 *
 * Delays run from 0 to about three times one save's duration (measured
 * first), so kills land before the first rename, in the middle of a write,
 * an fsync or a rename, and between two saves. Rounds go on for about 8 s
 * (at least 24, at most 80), so the test's time stays bounded however
 * slow the disk or the tool (valgrind) is.
 * A summary line reports what was seen.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rad/rad.h>

#include "testutil.h"

enum { MIN_ROUNDS = 24, MAX_ROUNDS = 80, NPTS = 16, D = 4 };
static const double TIME_BUDGET = 8.0; /* seconds of rounds, roughly */

static char dir[512], path[600];

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static unsigned char *to_bytes(const rad_flow *F, size_t *n) {
  ck_assert_int_eq(rad_flow_save_to_buffer(F, NULL, 0, n), RAD_OK);
  unsigned char *b = malloc(*n);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(rad_flow_save_to_buffer(F, b, *n, n), RAD_OK);
  return b;
}

static unsigned char *read_path(size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "%s is missing after a kill", path);
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  for (;;) {
    if (len == cap) b = realloc(b, cap *= 2);
    ck_assert_ptr_nonnull(b);
    size_t k = fread(b + len, 1, cap - len, f);
    if (k == 0) break;
    len += k;
  }
  fclose(f);
  *n = len;
  return b;
}

/* Removes the temporaries of killed saves and returns how many there
   were; fails on any other file but the model. */
static int sweep_temporaries(void) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  struct dirent *e;
  int n = 0;
  char tmp_prefix[64], p[1200];
  snprintf(tmp_prefix, sizeof tmp_prefix, "model.rad.tmp.");
  while ((e = readdir(d))) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (strcmp(e->d_name, "model.rad") == 0) continue;
    ck_assert_msg(strncmp(e->d_name, tmp_prefix, strlen(tmp_prefix)) == 0 &&
                      strlen(e->d_name) == strlen(tmp_prefix) + 6,
                  "unexpected file %s", e->d_name);
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    ck_assert_int_eq(unlink(p), 0);
    n++;
  }
  closedir(d);
  return n;
}

static void remove_all(void) {
  sweep_temporaries();
  unlink(path);
  rmdir(dir);
}

START_TEST(test_kill_during_save) {
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/rad-durability-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/model.rad", dir);

  /* A: small; B: about 1 MB, another architecture and other parameters */
  rad_flow *A, *B;
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, D, 2, 8, 4, 1, &A), RAD_OK);
  tu_perturb_flow(A, 0.2, 2);
  ck_assert_int_eq(rad_flow_create(RAD_LAYER_RAD, D, 10, 1000, 50, 3, &B), RAD_OK);
  tu_perturb_flow(B, 0.05, 4);
  size_t na, nb;
  unsigned char *ba = to_bytes(A, &na), *bb = to_bytes(B, &nb);
  ck_assert_uint_gt(nb, 8 * na);
  float x[NPTS * D], lpa[NPTS], lpb[NPTS], lp[NPTS];
  tu_rng r = {9};
  for (size_t i = 0; i < NPTS * D; i++) x[i] = (float)tu_gauss(&r);
  ck_assert_int_eq(rad_flow_log_prob(A, NPTS, x, lpa), RAD_OK);
  ck_assert_int_eq(rad_flow_log_prob(B, NPTS, x, lpb), RAD_OK);
  ck_assert(memcmp(lpa, lpb, sizeof lpa) != 0);

  /* one save of B: how long it takes here (median of 3) */
  double ts[3];
  for (int i = 0; i < 3; i++) {
    double t0 = now();
    ck_assert_int_eq(rad_flow_save(B, path), RAD_OK);
    ts[i] = now() - t0;
  }
  double tsave = ts[0] > ts[1] ? (ts[1] > ts[2] ? ts[1] : (ts[0] > ts[2] ? ts[2] : ts[0]))
                               : (ts[0] > ts[2] ? ts[0] : (ts[1] > ts[2] ? ts[2] : ts[1]));
  ck_assert_int_eq(sweep_temporaries(), 0);
  /* rounds until the time budget is spent (at least MIN_ROUNDS) */
  int rounds = 0, seen_a = 0, seen_b = 0, temps = 0, max_temps = 0;
  double max_delay = 0;
  uint64_t s = 12345;
  const double start = now();
  for (int round = 0, last = 0; !last; round++) {
    last = round + 1 >= MAX_ROUNDS ||
           (round + 1 >= MIN_ROUNDS && now() - start > TIME_BUDGET);
    ck_assert_int_eq(rad_flow_save(A, path), RAD_OK);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      /* the child: save B forever (an alarm ends it if the parent dies) */
      close(ready[0]);
      alarm(60);
      if (write(ready[1], "r", 1) != 1) _exit(3);
      close(ready[1]);
      for (;;)
        if (rad_flow_save(B, path) != RAD_OK) _exit(4);
    }
    close(ready[1]);
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    close(ready[0]);
    /* the delay: round 0 kills at once, the last round after several
       saves; the others are spread over [0, 3 tsave] */
    double delay;
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double u = (double)(s >> 11) / 9007199254740992.0;
    if (round == 0)
      delay = 0;
    else if (last)
      delay = 5 * tsave + 0.02;
    else if (round % 4 == 1)
      delay = u * 0.2 * tsave; /* early: mkstemp and the first writes */
    else
      delay = u * 3.0 * tsave;
    if (delay > max_delay) max_delay = delay;
    sleep_s(delay);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the child ended by itself (status %d)", status);

    /* PATH is A or B, whole */
    size_t n;
    unsigned char *b = read_path(&n);
    const int is_a = n == na && memcmp(b, ba, na) == 0;
    const int is_b = n == nb && memcmp(b, bb, nb) == 0;
    ck_assert_msg(is_a || is_b, "round %d (delay %.6f s): %s holds %zu bytes, neither model", round,
                  delay, path, n);
    free(b);
    rad_flow *L = NULL;
    ck_assert_int_eq(rad_flow_load(path, &L), RAD_OK);
    ck_assert_int_eq(rad_flow_log_prob(L, NPTS, x, lp), RAD_OK);
    ck_assert_mem_eq(lp, is_a ? lpa : lpb, sizeof lp);
    rad_flow_free(L);
    seen_a += is_a, seen_b += is_b;
    const int left = sweep_temporaries();
    ck_assert_msg(left <= 1, "round %d: %d temporary files left by one killed process", round, left);
    temps += left;
    if (left > max_temps) max_temps = left;
    rounds++;
  }
  printf("durability: %d kills (delays 0 .. %.1f ms; one save of %zu bytes takes %.1f ms): "
         "old model %d, new model %d, torn or corrupt 0; %d temporary files left by killed saves "
         "(at most %d per kill, removed)\n",
         rounds, 1e3 * max_delay, nb, 1e3 * tsave, seen_a, seen_b, temps, max_temps);
  /* the kills landed on both sides of a rename */
  ck_assert_int_gt(seen_a, 0);
  ck_assert_int_gt(seen_b, 0);
  free(ba), free(bb);
  rad_flow_free(A), rad_flow_free(B);
  remove_all();
}
END_TEST

int main(void) {
  Suite *s = suite_create("durability");
  TCase *tc = tcase_create("durability");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_kill_during_save);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
