/*
 * gen_corpus: writes the seed corpus of fuzz_load (fuzz/corpus/load/):
 * small valid flow and optimizer files of different shapes. The files are
 * committed; rerun with `make fuzz-corpus` after a format change.
 *
 *   gen_corpus DIR
 *
 * The output is deterministic (fixed seeds, fixed perturbations).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

static void die(const char *what, int rc) {
  fprintf(stderr, "gen_corpus: %s: %s\n", what, rad_strerror(rc));
  exit(1);
}
#define TRY(call)                     \
  do {                                \
    int rc_ = (call);                 \
    if (rc_ != RAD_OK) die(#call, rc_); \
  } while (0)

/* Adds a deterministic perturbation to every parameter, so that the
   files hold no all-zero blocks (W2 = b2 = 0 at creation). */
static void perturb(rad_flow *F, uint64_t seed) {
  const size_t np = rad_flow_num_params(F);
  float *p = malloc(np * sizeof(float) + 1);
  if (!p) die("malloc", RAD_ENOMEM);
  TRY(rad_flow_get_params(F, p, np));
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < np; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    p[i] += (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 0.3f;
  }
  TRY(rad_flow_set_params(F, p, np));
  free(p);
}

static void write_bytes(const char *dir, const char *name, const void *b, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0) {
    fprintf(stderr, "gen_corpus: cannot write %s\n", path);
    exit(1);
  }
  printf("%s (%zu bytes)\n", path, n);
}

static void write_flow(const char *dir, const char *name, const rad_flow *F) {
  size_t n;
  TRY(rad_flow_save_to_buffer(F, NULL, 0, &n));
  void *b = malloc(n);
  if (!b) die("malloc", RAD_ENOMEM);
  TRY(rad_flow_save_to_buffer(F, b, n, &n));
  write_bytes(dir, name, b, n);
  free(b);
}

static void write_adam(const char *dir, const char *name, const rad_adam *A) {
  size_t n;
  TRY(rad_adam_save_to_buffer(A, NULL, 0, &n));
  void *b = malloc(n);
  if (!b) die("malloc", RAD_ENOMEM);
  TRY(rad_adam_save_to_buffer(A, b, n, &n));
  write_bytes(dir, name, b, n);
  free(b);
}

static rad_coupling *layer(int kind, size_t d, const uint8_t *mask, size_t hidden,
                           size_t gate_hidden, uint64_t seed) {
  rad_coupling *c;
  TRY(rad_coupling_create(kind, d, mask, mask ? d : 0, hidden, gate_hidden, seed, &c));
  return c;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: gen_corpus DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  rad_flow *F;

  /* RAD, d = 2, two layers, default masks */
  TRY(rad_flow_create(RAD_LAYER_RAD, 2, 2, 3, 2, 1, &F));
  perturb(F, 1);
  write_flow(dir, "rad_d2_l2.rad", F);
  rad_flow_free(F);

  /* affine (REAL NVP), d = 3, three layers */
  TRY(rad_flow_create(RAD_LAYER_AFFINE, 3, 3, 4, 0, 2, &F));
  perturb(F, 2);
  write_flow(dir, "affine_d3_l3.rad", F);
  rad_flow_free(F);

  /* RAD, d = 1 (mask all ones: the conditioner has no input) */
  TRY(rad_flow_create(RAD_LAYER_RAD, 1, 2, 2, 2, 3, &F));
  perturb(F, 3);
  write_flow(dir, "rad_d1_l2.rad", F);
  rad_flow_free(F);

  /* no layers: the standard normal, with a standardization */
  TRY(rad_flow_create_empty(2, &F));
  {
    const float sh[2] = {1.5f, -2.0f}, sc[2] = {0.5f, 3.0f};
    TRY(rad_flow_set_standardization(F, sh, sc, 2));
  }
  write_flow(dir, "empty_d2_std.rad", F);
  rad_flow_free(F);

  /* mixed layers, custom masks, a non-default and an unclamped logit
     bound, standardization and column names (the rad tool's files) */
  TRY(rad_flow_create_empty(3, &F));
  {
    const uint8_t m0[3] = {1, 0, 1}, m1[3] = {0, 1, 0}, m2[3] = {1, 1, 1};
    rad_coupling *c = layer(RAD_LAYER_RAD, 3, m0, 3, 2, 10);
    TRY(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, 2.5));
    TRY(rad_flow_add_coupling(F, c));
    rad_coupling_free(c);
    c = layer(RAD_LAYER_AFFINE, 3, m1, 2, 0, 11);
    TRY(rad_flow_add_coupling(F, c));
    rad_coupling_free(c);
    c = layer(RAD_LAYER_RAD, 3, m2, 2, 3, 12);
    TRY(rad_coupling_set_option(c, RAD_OPTION_LOGIT_BOUND, 0.0));
    TRY(rad_flow_add_coupling(F, c));
    rad_coupling_free(c);
    perturb(F, 4);
    const float sh[3] = {43.9f, 17.2f, 200.9f}, sc[3] = {5.46f, 1.97f, 14.06f};
    TRY(rad_flow_set_standardization(F, sh, sc, 3));
    const char *names[3] = {"bill_length_mm", "bill depth, mm", ""};
    TRY(rad_flow_set_column_names(F, names, 3));
  }
  write_flow(dir, "mixed_d3_std_names.rad", F);
  rad_flow_free(F);

  /* a wider RAD layer over d = 4 with names only */
  TRY(rad_flow_create(RAD_LAYER_RAD, 4, 1, 2, 2, 5, &F));
  perturb(F, 5);
  {
    const char *names[4] = {"a", "b", "c", "\xc3\xa9t\xc3\xa9"};
    TRY(rad_flow_set_column_names(F, names, 4));
  }
  write_flow(dir, "rad_d4_l1_names.rad", F);
  rad_flow_free(F);

  /* optimizers: fresh, and after a few steps with non-default options */
  rad_adam *A;
  TRY(rad_adam_create(5, &A));
  write_adam(dir, "adam_n5_fresh.radam", A);
  TRY(rad_adam_set_option(A, RAD_OPTION_LEARNING_RATE, 3e-3));
  TRY(rad_adam_set_option(A, RAD_OPTION_BETA2, 0.99));
  {
    float p[5] = {0.1f, -0.2f, 0.3f, 0.0f, 1.0f};
    const float g[5] = {0.5f, -1.0f, 2.0f, 0.0f, -0.25f};
    for (int t = 0; t < 3; t++) TRY(rad_adam_step(A, p, g, 5));
  }
  write_adam(dir, "adam_n5_steps3.radam", A);
  rad_adam_free(A);
  return 0;
}
