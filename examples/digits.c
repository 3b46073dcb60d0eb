/*
 * rad-digits: RAD flows beyond 2-D, on 8x8 images of handwritten digits.
 *
 * Reads examples/data/digits.csv (1,797 digits, 64 pixel counts 0..16 and
 * the class 0..9) and, for several seeded train / validation / test splits
 * (70/15/15, stratified by class), fits three density models to the
 * dequantized pixels x = (pixel + u) / 17, u ~ U[0, 1)^64, so x lies in
 * [0, 1)^64:
 *
 *   RAD       8 RAD_LAYER_RAD coupling layers (conditioner width 64, gating
 *             width 32), built layer by layer with rad_coupling_create and
 *             rad_flow_add_coupling so that the masks can be chosen
 *             (--masks parity | checkerboard | halves);
 *   REAL NVP  the same masks with RAD_LAYER_AFFINE layers, conditioner width
 *             chosen so that its parameter count is the closest to RAD's;
 *   Gaussian  full covariance, maximum likelihood for the dequantized
 *             training split in closed form: mean and covariance of
 *             (pixel + 1/2) / 17 plus the dequantization noise's variance
 *             1 / (12 * 17^2) on the diagonal, which is the exact expected
 *             moments over the noise and makes the covariance positive
 *             definite without any other ridge.
 *
 * Bits per dimension. For a model density p on [0, 1)^64, the discrete
 * pixels' code length is bounded by -(E_u log p(x) - 64 ln 17) / (64 ln 2)
 * bits per pixel (the 64 ln 17 converts the density of x into a probability
 * of the 17^64 cells of side 1/17). Every held-out number is averaged over
 * several fresh noise draws of each digit (--test-draws, default 10): the
 * mean over draws estimates that bound; the log-mean-exp over the draws of
 * each digit is a tighter estimate of the same code length (importance
 * sampling with the uniform proposal) and is reported beside it.
 *
 * Training. rad_flow_fit (Adam, batch 256, learning rate 1e-3 with a cosine
 * schedule over all steps) in chunks of --eval-every steps, with one
 * optimizer carried across the chunks (RAD_OPTION_LR_HORIZON keeps one
 * schedule). Each chunk trains on freshly dequantized copies of the
 * training digits (eval-every x batch rows, so every row the optimizer sees
 * carries new noise) and ends with an evaluation on the validation split
 * (fixed noise, 4 draws per digit). The program keeps the parameters of the
 * best validation evaluation over all chunks (RAD_OPTION_KEEP_BEST only
 * covers one rad_flow_fit call). The test split chose nothing.
 *
 * Standardization. Each pixel is standardized with the dequantized
 * training split's mean and standard deviation, in closed form:
 * ((mean pixel) + 1/2) / 17 and sqrt(var(pixel) + 1/12) / 17. Pixels that
 * are constant in training (always 0 at the left and right edges) still
 * get the noise's standard deviation 1 / (17 sqrt 12) = 0.0170, so the
 * floor of 1e-3 in the code never binds (the report counts where it
 * would). The standardization's log-determinant is part of
 * rad_flow_log_prob, so all densities are in x's units.
 *
 * Labels. RAD's discrete labels (rad_flow_forward's k; 32 folded units per
 * layer) of all 1,797 digits, taken at the cell centres (pixel + 1/2) / 17,
 * are compared with the classes: each layer's label tuple, and each single
 * unit's label, as contingency tables and adjusted Rand indices (Hubert and
 * Arabie 1985), for the last layer and for the layer and unit that agree
 * best.
 *
 * --scaling instead times training steps (rad_flow_fit, batch 256, the same
 * layers and widths, random data) at d = 2, 16, 64, 256.
 *
 * Seeds. For base seed S, replicate r and stream s,
 * seed = M(M(M(S) ^ r) ^ s), M the splitmix64 output mix of its argument
 * plus the golden-ratio increment. Streams: 1 the split, 2 / 3 RAD / REAL
 * NVP initial parameters, 4 / 5 their minibatch order (low 53 bits), 6 the
 * training noise (shared by both flows; chunk c mixes in c), 7 / 8 / 9 the
 * validation / test / training-evaluation noise, 10 / 11 / 12 the RAD /
 * REAL NVP / Gaussian samples, 13 the noise of the label-stability check.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <rad/rad.h>

#include "csv.h"
#include "plot.h"

#define PROG "rad-digits"

static const double PI = 3.14159265358979323846;

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define SIDE 8
#define D (SIDE * SIDE)
#define LEVELS 17
#define N_CLASSES 10

enum { M_RAD, M_NVP, M_GAUSS, N_MODELS };
static const char *const MODEL_TITLE[N_MODELS] = {
    "RAD", "REAL NVP", "Gaussian (full covariance)"};
enum { S_TRAIN, S_VAL, S_TEST, N_SPLITS };
static const double SPLIT_FRACTION[N_SPLITS] = {0.70, 0.15, 0.15};

enum {
  STREAM_SPLIT = 1,
  STREAM_INIT = 2, /* + 0 RAD, + 1 REAL NVP */
  STREAM_FIT = 4,  /* + 0 RAD, + 1 REAL NVP */
  STREAM_TRAIN_NOISE = 6,
  STREAM_VAL_NOISE = 7,
  STREAM_TEST_NOISE = 8,
  STREAM_TRAIN_EVAL_NOISE = 9,
  STREAM_SAMPLES = 10, /* + 0 RAD, + 1 REAL NVP, + 2 Gaussian */
  STREAM_STABILITY = 13
};

enum { MASK_PARITY, MASK_CHECKER, MASK_HALVES, N_MASKS };
static const char *const MASK_NAME[N_MASKS] = {"parity", "checkerboard",
                                               "halves"};

#define VAL_DRAWS 4        /* noise draws per validation digit */
#define TRAIN_EVAL_DRAWS 2 /* noise draws per training digit, for the report */
#define MAX_CHUNK_ROWS ((size_t)1 << 17) /* fresh training rows per chunk */
#define STD_FLOOR 1e-3f

#define MAX_SEEDS 100
#define MAX_LAYERS 64
#define MAX_HIDDEN 4096
#define MAX_STEPS 9007199254740992ull /* 2^53 */
#define MAX_TUPLE 40 /* labels per base-3 code in 64 bits */

/* ---- Configuration ------------------------------------------------------ */

typedef struct config {
  const char *data, *out;
  uint64_t seed, steps, eval_every;
  size_t seeds, layers, rad_hidden, rad_gate_hidden, nvp_hidden, batch;
  size_t threads, test_draws;
  double lr;
  int masks, quick, plots, scaling;
} config;

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: " PROG " [OPTIONS]\n"
      "\n"
      "Fits RAD, REAL NVP (same parameter count) and a full-covariance\n"
      "Gaussian to the dequantized 8x8 digits, x = (pixel + u) / 17, on\n"
      "seeded 70/15/15 train/validation/test splits stratified by class;\n"
      "reports held-out bits per dimension, compares RAD's discrete labels\n"
      "with the digit classes (contingency tables, adjusted Rand index) and\n"
      "draws samples beside real digits.\n"
      "\n"
      "  --data PATH          the CSV file (default examples/data/digits.csv)\n"
      "  --out DIR            output directory, created if missing (default\n"
      "                       digits-out)\n"
      "  --seed S             base seed, 0 .. 2^64-1 (default 1)\n"
      "  --seeds N            replicates (splits and initializations), 1 .. %d\n"
      "                       (default 3)\n"
      "  --steps N            Adam steps per fit (default 3000)\n"
      "  --threads T          threads per batch (RAD_OPTION_THREADS), 1 .. 64\n"
      "                       (default 1)\n"
      "  --quick              a fast check: 200 steps, 1 replicate, unless\n"
      "                       --steps / --seeds are given\n"
      "  --scaling            instead of the fits: time training steps at\n"
      "                       d = 2, 16, 64, 256 (random data) with 1 and 2\n"
      "                       threads; writes DIR/scaling.md\n"
      "\n"
      "  --masks M            parity (default: the library's alternating\n"
      "                       masks, i + l odd), checkerboard (row + column\n"
      "                       + l odd) or halves (bottom / top half)\n"
      "  --layers L           coupling layers of both flows, 1 .. %d (default 8)\n"
      "  --rad-hidden H       RAD conditioner width (default 64)\n"
      "  --rad-gate-hidden G  RAD gating network width (default 32)\n"
      "  --realnvp-hidden H   REAL NVP conditioner width (default: the width\n"
      "                       whose parameter count is closest to RAD's)\n"
      "  --lr X               Adam learning rate, cosine decay to 1%% of it\n"
      "                       (default 1e-3)\n"
      "  --batch B            minibatch size (default 256)\n"
      "  --eval-every N       validation period in steps; each period trains\n"
      "                       on freshly dequantized rows (default 50)\n"
      "  --test-draws K       noise draws per test digit (default 10)\n"
      "  --no-plots           draw no pictures\n"
      "  --help               this text\n"
      "  Options take their value as the next argument or after '='.\n"
      "\n"
      "Output: the report on stdout (progress on stderr); in DIR:\n"
      "results.md (the same report), and unless --no-plots samples.png and\n"
      "labels.png. Set OPENBLAS_NUM_THREADS=1: OpenBLAS's own threads slow\n"
      "these small matrix products down.\n"
      "\n"
      "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
      MAX_SEEDS, MAX_LAYERS);
}

static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputs("\nTry '" PROG " --help' for more information.\n", stderr);
  return EXIT_USAGE;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi,
                     uint64_t *out) {
  if (s[0] < '0' || s[0] > '9')
    return usage_error("%s: '%s' is not a non-negative integer", opt, s);
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0')
    return usage_error("%s: '%s' is not a non-negative integer", opt, s);
  if (errno == ERANGE || v < lo || v > hi)
    return usage_error("%s: %s is out of range (%llu .. %llu)", opt, s,
                       (unsigned long long)lo, (unsigned long long)hi);
  *out = (uint64_t)v;
  return 0;
}

static int parse_size(const char *opt, const char *s, uint64_t lo, uint64_t hi,
                      size_t *out) {
  uint64_t v;
  int rc = parse_u64(opt, s, lo, hi, &v);
  if (rc == 0) *out = (size_t)v;
  return rc;
}

/* Returns 0, EXIT_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->data = "examples/data/digits.csv";
  cfg->out = "digits-out";
  cfg->seed = 1;
  cfg->seeds = 0; /* 0: default, set below */
  cfg->steps = 0;
  cfg->eval_every = 50;
  cfg->layers = 8;
  cfg->rad_hidden = 64;
  cfg->rad_gate_hidden = 32;
  cfg->nvp_hidden = 0; /* matched */
  cfg->batch = 256;
  cfg->threads = 1;
  cfg->test_draws = 10;
  cfg->lr = 1e-3;
  cfg->masks = MASK_PARITY;
  cfg->plots = 1;

  static const char *const with_value[] = {
      "--data",   "--out",          "--seed",           "--seeds",
      "--steps",  "--layers",       "--rad-hidden",     "--rad-gate-hidden",
      "--realnvp-hidden", "--lr",   "--batch",          "--eval-every",
      "--threads", "--masks",       "--test-draws"};
  const size_t n_with_value = sizeof with_value / sizeof with_value[0];
  static const char *const flags[] = {"--quick", "--no-plots", "--scaling",
                                      "--help"};
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return -1;
    }
    if (strcmp(arg, "--quick") == 0) {
      cfg->quick = 1;
      continue;
    }
    if (strcmp(arg, "--no-plots") == 0) {
      cfg->plots = 0;
      continue;
    }
    if (strcmp(arg, "--scaling") == 0) {
      cfg->scaling = 1;
      continue;
    }
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
      return usage_error("unexpected argument '%s'", arg);
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *name = NULL;
    for (size_t k = 0; k < n_with_value; k++)
      if (strlen(with_value[k]) == name_len &&
          strncmp(arg, with_value[k], name_len) == 0)
        name = with_value[k];
    if (!name) {
      for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        if (eq && strlen(flags[k]) == name_len &&
            strncmp(arg, flags[k], name_len) == 0)
          return usage_error("option '%s' takes no value", flags[k]);
      return usage_error("unknown option '%.*s'", (int)name_len, arg);
    }
    const char *val;
    if (eq) {
      val = eq + 1;
    } else {
      if (i + 1 >= argc) return usage_error("option '%s' needs a value", name);
      val = argv[++i];
    }
    int rc = 0;
    if (strcmp(name, "--data") == 0) {
      if (val[0] == '\0') return usage_error("--data: empty path");
      cfg->data = val;
    } else if (strcmp(name, "--out") == 0) {
      if (val[0] == '\0') return usage_error("--out: empty directory name");
      cfg->out = val;
    } else if (strcmp(name, "--seed") == 0) {
      rc = parse_u64(name, val, 0, UINT64_MAX, &cfg->seed);
    } else if (strcmp(name, "--seeds") == 0) {
      rc = parse_size(name, val, 1, MAX_SEEDS, &cfg->seeds);
    } else if (strcmp(name, "--steps") == 0) {
      rc = parse_u64(name, val, 1, MAX_STEPS, &cfg->steps);
    } else if (strcmp(name, "--layers") == 0) {
      rc = parse_size(name, val, 1, MAX_LAYERS, &cfg->layers);
    } else if (strcmp(name, "--rad-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->rad_hidden);
    } else if (strcmp(name, "--rad-gate-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->rad_gate_hidden);
    } else if (strcmp(name, "--realnvp-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->nvp_hidden);
    } else if (strcmp(name, "--batch") == 0) {
      rc = parse_size(name, val, 1, 65536, &cfg->batch);
    } else if (strcmp(name, "--eval-every") == 0) {
      rc = parse_u64(name, val, 1, MAX_STEPS, &cfg->eval_every);
    } else if (strcmp(name, "--threads") == 0) {
      rc = parse_size(name, val, 1, 64, &cfg->threads);
    } else if (strcmp(name, "--test-draws") == 0) {
      rc = parse_size(name, val, 1, 1000, &cfg->test_draws);
    } else if (strcmp(name, "--masks") == 0) {
      int m = -1;
      for (int k = 0; k < N_MASKS; k++)
        if (strcmp(val, MASK_NAME[k]) == 0) m = k;
      if (m < 0)
        return usage_error("--masks: '%s' is not parity, checkerboard or "
                           "halves",
                           val);
      cfg->masks = m;
    } else if (strcmp(name, "--lr") == 0) {
      char *end;
      errno = 0;
      cfg->lr = strtod(val, &end);
      if (end == val || *end != '\0' || errno == ERANGE ||
          !(cfg->lr > 0.0) || !isfinite(cfg->lr))
        return usage_error("--lr: '%s' is not a finite number > 0", val);
    }
    if (rc) return rc;
  }
  if (cfg->steps == 0) cfg->steps = cfg->quick ? 200 : 3000;
  if (cfg->seeds == 0) cfg->seeds = cfg->quick ? 1 : 3;
  return 0;
}

/* ---- Seeds and a small generator ----------------------------------------- */

static uint64_t mix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t derive_seed(uint64_t base, size_t rep, int stream) {
  return mix64(mix64(mix64(base) ^ (uint64_t)rep) ^ (uint64_t)stream);
}

/* splitmix64 as a stream: state += increment, output = mix. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static double rng_uniform(uint64_t *state) {
  return (double)(rng_next(state) >> 11) * 0x1p-53;
}

/* Uniform in [0, m), m >= 1, without modulo bias. */
static size_t rng_below(uint64_t *state, size_t m) {
  const uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)m;
  uint64_t r;
  do r = rng_next(state);
  while (r >= lim);
  return (size_t)(r % (uint64_t)m);
}

/* Standard normal (Box-Muller, one value per call). */
static double rng_normal(uint64_t *state) {
  double u = rng_uniform(state), v = rng_uniform(state);
  return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * PI * v);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads): with one thread and other
   jobs on the machine, a better measure of the work than wall time. */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double load_average(void) {
  double load = -1.0;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &load) != 1) load = -1.0;
    fclose(f);
  }
  return load;
}

/* ---- Bits per dimension ----------------------------------------------------- */

/* Mean log-density (nats) of x in [0, 1)^64 -> bits per pixel of the
   discrete data: -(log p - 64 ln 17) / (64 ln 2). */
static double bits_per_dim(double mean_log_p) {
  return -(mean_log_p - (double)D * log((double)LEVELS)) /
         ((double)D * log(2.0));
}

/* ---- The CSV file --------------------------------------------------------- */

typedef struct digits {
  size_t n;
  unsigned char *pix; /* n x 64 pixel counts, 0..16 */
  int *cls;           /* n classes, 0..9 */
  size_t per_class[N_CLASSES];
} digits;

static void digits_free(digits *G) {
  free(G->pix);
  free(G->cls);
  memset(G, 0, sizeof *G);
}

/* Columns p0..p63 and digit (found by name, any order); every field an
   integer in range. Anything else is an error: this file has no missing
   values. */
static int read_digits(const char *path, digits *G) {
  memset(G, 0, sizeof *G);
  char err[512];
  char *buf = NULL;
  size_t len = 0;
  csv_table *t = NULL;
  csv_matrix m;
  memset(&m, 0, sizeof m);
  int have_m = 0, rc = -1;
  size_t cols[D + 1];
  if (csv_read_file(path, &buf, &len, err, sizeof err) != CSV_OK ||
      csv_parse(buf, len, &t, err, sizeof err) != CSV_OK) {
    fprintf(stderr, PROG ": %s\n", err);
    goto done;
  }
  for (int j = 0; j <= D; j++) {
    char name[16];
    if (j < D) snprintf(name, sizeof name, "p%d", j);
    else snprintf(name, sizeof name, "digit");
    if (csv_find_column(t, name, &cols[j], err, sizeof err) != CSV_OK) {
      fprintf(stderr, PROG ": %s: %s\n", path, err);
      goto done;
    }
  }
  if (csv_extract(t, cols, D + 1, &m, err, sizeof err) != CSV_OK) {
    fprintf(stderr, PROG ": %s: %s\n", path, err);
    goto done;
  }
  have_m = 1;
  if (m.n_skipped) {
    const csv_skip *s = &m.skips[0];
    fprintf(stderr, PROG ": %s:%zu: column '%s' %s (%zu such rows)\n", path,
            csv_row_line(t, s->row), csv_col_name(t, s->col),
            csv_skip_reason(s->reason), m.n_skipped);
    goto done;
  }
  if (m.n < 10 * N_CLASSES) {
    fprintf(stderr, PROG ": %s: only %zu rows\n", path, m.n);
    goto done;
  }
  G->pix = malloc(m.n * D);
  G->cls = malloc(m.n * sizeof(int));
  if (!G->pix || !G->cls) {
    fprintf(stderr, PROG ": out of memory reading '%s'\n", path);
    goto done;
  }
  for (size_t i = 0; i < m.n; i++) {
    for (int j = 0; j <= D; j++) {
      const float v = m.x[i * (D + 1) + (size_t)j];
      const float hi = j < D ? (float)(LEVELS - 1) : (float)(N_CLASSES - 1);
      if (!(v >= 0.0f && v <= hi) || v != floorf(v)) {
        fprintf(stderr, PROG ": %s:%zu: %s = %g is not an integer in 0..%d\n",
                path, csv_row_line(t, m.rows[i]), csv_col_name(t, cols[j]),
                (double)v, (int)hi);
        goto done;
      }
      if (j < D) G->pix[i * D + (size_t)j] = (unsigned char)v;
      else G->cls[i] = (int)v;
    }
    G->per_class[G->cls[i]]++;
  }
  G->n = m.n;
  for (int k = 0; k < N_CLASSES; k++)
    if (G->per_class[k] < 10) {
      fprintf(stderr, PROG ": %s: only %zu digits of class %d (need 10)\n",
              path, G->per_class[k], k);
      goto done;
    }
  rc = 0;
done:
  if (have_m) csv_matrix_free(&m);
  csv_free(t);
  free(buf);
  if (rc) digits_free(G);
  return rc;
}

/* ---- Splits and dequantization ------------------------------------------------ */

typedef struct split {
  size_t n[N_SPLITS];
  size_t *idx[N_SPLITS]; /* row indices into the data */
} split;

static void split_free(split *s) {
  for (int k = 0; k < N_SPLITS; k++) free(s->idx[k]);
  memset(s, 0, sizeof *s);
}

/* Stratified by class: each class's rows are shuffled (Fisher-Yates,
   seeded) and cut 70/15/15 (rounded; test takes the rest). */
static int make_split(const digits *G, uint64_t seed, split *sp) {
  memset(sp, 0, sizeof *sp);
  size_t *rows = malloc(G->n * sizeof(size_t));
  for (int k = 0; k < N_SPLITS; k++) sp->idx[k] = malloc(G->n * sizeof(size_t));
  if (!rows || !sp->idx[0] || !sp->idx[1] || !sp->idx[2]) {
    free(rows);
    split_free(sp);
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  uint64_t state = seed;
  for (int c = 0; c < N_CLASSES; c++) {
    size_t m = 0;
    for (size_t i = 0; i < G->n; i++)
      if (G->cls[i] == c) rows[m++] = i;
    for (size_t i = m; i > 1; i--) {
      size_t j = rng_below(&state, i);
      size_t t = rows[i - 1];
      rows[i - 1] = rows[j];
      rows[j] = t;
    }
    size_t cut[N_SPLITS];
    cut[S_TRAIN] = (size_t)floor(SPLIT_FRACTION[S_TRAIN] * (double)m + 0.5);
    cut[S_VAL] = (size_t)floor(SPLIT_FRACTION[S_VAL] * (double)m + 0.5);
    cut[S_TEST] = m - cut[S_TRAIN] - cut[S_VAL];
    size_t p = 0;
    for (int k = 0; k < N_SPLITS; k++)
      for (size_t i = 0; i < cut[k]; i++) sp->idx[k][sp->n[k]++] = rows[p++];
  }
  free(rows);
  return 0;
}

/* rows dequantized rows: row j is digit idx[(first + j) % n] with fresh
   noise from the stream: x = (pixel + u) / 17. So with first = 0 and
   rows = K n, draw k of digit i is row k n + i. */
static void dequantize(const digits *G, const size_t *idx, size_t n,
                       uint64_t first, size_t rows, uint64_t seed, float *x) {
  uint64_t state = seed;
  for (size_t j = 0; j < rows; j++) {
    const unsigned char *p = G->pix + idx[(first + j) % n] * D;
    for (int a = 0; a < D; a++)
      x[j * D + (size_t)a] =
          (float)(((double)p[a] + rng_uniform(&state)) / (double)LEVELS);
  }
}

/* The cell centres (pixel + 1/2) / 17 of n digits. */
static void centres(const digits *G, const size_t *idx, size_t n, float *x) {
  for (size_t j = 0; j < n; j++) {
    const unsigned char *p = G->pix + (idx ? idx[j] : j) * D;
    for (int a = 0; a < D; a++)
      x[j * D + (size_t)a] = (float)(((double)p[a] + 0.5) / (double)LEVELS);
  }
}

/* ---- The Gaussian (closed form, double precision) ------------------------------ */

typedef struct gauss {
  double mu[D];
  double L[D * D]; /* Cholesky factor of the covariance */
  double log_norm; /* -D/2 log 2 pi - 1/2 log det */
} gauss;

/* Moments of the dequantized training digits, exactly: the pixel counts'
   mean and covariance (divided by n) shifted by 1/2 and scaled by 1/17,
   plus the noise variance 1/12 (before scaling) on the diagonal. This is
   the Gaussian of maximum expected log-likelihood over the noise. Also
   returns the per-pixel standard deviations. -1 if not positive
   definite. */
static int gauss_fit(const digits *G, const size_t *idx, size_t n, gauss *g,
                     double *sd) {
  memset(g, 0, sizeof *g);
  static double C[D * D];
  double m[D] = {0};
  memset(C, 0, sizeof C);
  for (size_t i = 0; i < n; i++)
    for (int a = 0; a < D; a++) m[a] += G->pix[idx[i] * D + (size_t)a];
  for (int a = 0; a < D; a++) m[a] /= (double)n;
  for (size_t i = 0; i < n; i++) {
    const unsigned char *p = G->pix + idx[i] * D;
    for (int a = 0; a < D; a++)
      for (int b = 0; b <= a; b++)
        C[a * D + b] += ((double)p[a] - m[a]) * ((double)p[b] - m[b]);
  }
  const double s2 = (double)LEVELS * (double)LEVELS;
  for (int a = 0; a < D; a++) {
    for (int b = 0; b <= a; b++) {
      C[a * D + b] /= (double)n * s2;
      C[b * D + a] = C[a * D + b];
    }
    C[a * D + a] += 1.0 / (12.0 * s2);
    g->mu[a] = (m[a] + 0.5) / (double)LEVELS;
    sd[a] = sqrt(C[a * D + a]);
  }
  double logdet = 0.0;
  for (int j = 0; j < D; j++) {
    double s = C[j * D + j];
    for (int k = 0; k < j; k++) s -= g->L[j * D + k] * g->L[j * D + k];
    if (!(s > 0.0)) return -1;
    g->L[j * D + j] = sqrt(s);
    logdet += 2.0 * log(g->L[j * D + j]);
    for (int i = j + 1; i < D; i++) {
      double t = C[i * D + j];
      for (int k = 0; k < j; k++) t -= g->L[i * D + k] * g->L[j * D + k];
      g->L[i * D + j] = t / g->L[j * D + j];
    }
  }
  g->log_norm = -0.5 * D * log(2.0 * PI) - 0.5 * logdet;
  return 0;
}

static double gauss_log_pdf(const gauss *g, const float *x) {
  double y[D], q = 0.0;
  for (int i = 0; i < D; i++) { /* solve L y = x - mu */
    double t = x[i] - g->mu[i];
    for (int k = 0; k < i; k++) t -= g->L[i * D + k] * y[k];
    y[i] = t / g->L[i * D + i];
    q += y[i] * y[i];
  }
  return g->log_norm - 0.5 * q;
}

static void gauss_sample(const gauss *g, uint64_t seed, size_t n, float *x) {
  uint64_t state = seed;
  for (size_t i = 0; i < n; i++) {
    double e[D];
    for (int a = 0; a < D; a++) e[a] = rng_normal(&state);
    for (int a = 0; a < D; a++) {
      double v = g->mu[a];
      for (int k = 0; k <= a; k++) v += g->L[a * D + k] * e[k];
      x[i * D + (size_t)a] = (float)v;
    }
  }
}

/* ---- Statistics -------------------------------------------------------------- */

static void mean_std(const double *v, size_t n, double *mean, double *sd) {
  double m = 0.0, s = 0.0;
  for (size_t i = 0; i < n; i++) m += v[i];
  m /= (double)n;
  for (size_t i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
  *mean = m;
  *sd = n > 1 ? sqrt(s / (double)(n - 1)) : 0.0;
}

static double choose2(double a) { return 0.5 * a * (a - 1.0); }

/* Adjusted Rand index (Hubert and Arabie 1985) of a rows x cols
   contingency table: (sum_ij C(n_ij,2) - E) / (M - E) with
   E = sum_i C(a_i,2) sum_j C(b_j,2) / C(n,2) and
   M = (sum_i C(a_i,2) + sum_j C(b_j,2)) / 2, a and b the row and column
   sums. M = E only when both partitions are the same trivial one: the
   index is then 1. */
static double adjusted_rand(const size_t *tab, size_t rows, size_t cols) {
  double sum_ij = 0.0, sum_a = 0.0, sum_b = 0.0, n = 0.0;
  for (size_t i = 0; i < rows; i++) {
    double a = 0.0;
    for (size_t j = 0; j < cols; j++) {
      sum_ij += choose2((double)tab[i * cols + j]);
      a += (double)tab[i * cols + j];
    }
    sum_a += choose2(a);
    n += a;
  }
  for (size_t j = 0; j < cols; j++) {
    double b = 0.0;
    for (size_t i = 0; i < rows; i++) b += (double)tab[i * cols + j];
    sum_b += choose2(b);
  }
  const double expected = n > 1.0 ? sum_a * sum_b / choose2(n) : 0.0;
  const double max = 0.5 * (sum_a + sum_b);
  if (max == expected) return 1.0;
  return (sum_ij - expected) / (max - expected);
}

/* A partition of n rows by a tuple of cnt <= MAX_TUPLE labels per row,
   taken from k[i * nl + off .. off + cnt - 1]: each distinct tuple is one
   block. Blocks are numbered in increasing tuple order (base-3 code, first
   label most significant). */
typedef struct partition {
  size_t n, n_blocks, cnt;
  uint64_t *codes; /* n_blocks distinct codes, increasing */
  size_t *block;   /* n: block of each row */
} partition;

static void partition_free(partition *p) {
  free(p->codes);
  free(p->block);
  memset(p, 0, sizeof *p);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static int partition_make(size_t n, const int32_t *k, size_t nl, size_t off,
                          size_t cnt, partition *p) {
  memset(p, 0, sizeof *p);
  if (cnt > MAX_TUPLE) return -1;
  p->n = n;
  p->cnt = cnt;
  uint64_t *code = malloc((n ? n : 1) * sizeof(uint64_t));
  uint64_t *sorted = malloc((n ? n : 1) * sizeof(uint64_t));
  p->block = malloc((n ? n : 1) * sizeof(size_t));
  if (!code || !sorted || !p->block) {
    free(code);
    free(sorted);
    partition_free(p);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t c = 0;
    for (size_t j = 0; j < cnt; j++)
      c = 3 * c + (uint64_t)(k[i * nl + off + j] - 1);
    code[i] = c;
  }
  memcpy(sorted, code, n * sizeof(uint64_t));
  qsort(sorted, n, sizeof(uint64_t), cmp_u64);
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (m == 0 || sorted[i] != sorted[m - 1]) sorted[m++] = sorted[i];
  p->n_blocks = m;
  p->codes = sorted;
  for (size_t i = 0; i < n; i++) {
    size_t lo = 0, hi = m;
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      if (sorted[mid] <= code[i]) lo = mid;
      else hi = mid;
    }
    p->block[i] = lo;
  }
  free(code);
  return 0;
}

/* "k=2" for one label, "(1,3,2)" for a short tuple, "13232..." (first
   label first) for a long one. */
static void code_name(uint64_t c, size_t cnt, char *buf, size_t len) {
  int digit[MAX_TUPLE];
  for (size_t j = cnt; j-- > 0;) {
    digit[j] = (int)(c % 3) + 1;
    c /= 3;
  }
  if (cnt == 1) {
    snprintf(buf, len, "k=%d", digit[0]);
    return;
  }
  const int commas = cnt <= 8;
  size_t u = 0;
  if (commas) buf[u++] = '(';
  for (size_t j = 0; j < cnt && u + 3 < len; j++) {
    if (j && commas) buf[u++] = ',';
    buf[u++] = (char)('0' + digit[j]);
  }
  if (commas) buf[u++] = ')';
  buf[u] = '\0';
}

/* Blocks x classes table (n_blocks x N_CLASSES), caller frees. */
static size_t *contingency(const partition *p, const int *cls) {
  size_t *t = calloc(p->n_blocks * N_CLASSES, sizeof(size_t));
  if (!t) return NULL;
  for (size_t i = 0; i < p->n; i++)
    t[p->block[i] * N_CLASSES + (size_t)cls[i]]++;
  return t;
}

/* ---- The report (stdout and a markdown file) ---------------------------------- */

typedef struct report {
  FILE *md;
} report;

static void out(report *R, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stdout, fmt, ap);
  va_end(ap);
  if (R->md) {
    va_start(ap, fmt);
    vfprintf(R->md, fmt, ap);
    va_end(ap);
  }
}

static FILE *open_in_dir(const config *cfg, const char *name) {
  size_t len = strlen(cfg->out) + strlen(name) + 2;
  char *path = malloc(len);
  if (!path) {
    fprintf(stderr, PROG ": out of memory\n");
    return NULL;
  }
  snprintf(path, len, "%s/%s", cfg->out, name);
  FILE *f = fopen(path, "w");
  if (!f)
    fprintf(stderr, PROG ": cannot write '%s': %s\n", path, strerror(errno));
  free(path);
  return f;
}

/* ---- Flows ----------------------------------------------------------------- */

/* Layer l's mask over the 8x8 image (row-major): 1 = transformed. */
static void make_mask(int masks, size_t l, uint8_t *m) {
  for (int i = 0; i < D; i++) {
    const int row = i / SIDE, col = i % SIDE;
    switch (masks) {
    case MASK_CHECKER: m[i] = (uint8_t)((row + col + (int)l) % 2); break;
    case MASK_HALVES:
      m[i] = (uint8_t)(l % 2 == 0 ? row >= SIDE / 2 : row < SIDE / 2);
      break;
    default: m[i] = (uint8_t)((i + (int)l) % 2); break;
    }
  }
}

/* A flow of cfg->layers coupling layers of `kind` over the 64 pixels with
   the chosen masks; layer l initialised from mix64(seed ^ l). */
static int build_flow(const config *cfg, int kind, size_t hidden,
                      uint64_t seed, rad_flow **out) {
  *out = NULL;
  rad_flow *f = NULL;
  int rc = rad_flow_create_empty(D, &f);
  for (size_t l = 0; rc == RAD_OK && l < cfg->layers; l++) {
    uint8_t mask[D];
    make_mask(cfg->masks, l, mask);
    rad_coupling *c = NULL;
    rc = rad_coupling_create(kind, D, mask, D, hidden,
                             kind == RAD_LAYER_RAD ? cfg->rad_gate_hidden : 0,
                             mix64(seed ^ (uint64_t)l), &c);
    if (rc == RAD_OK) rc = rad_flow_add_coupling(f, c);
    rad_coupling_free(c);
  }
  if (rc) {
    rad_flow_free(f);
    return rc;
  }
  *out = f;
  return RAD_OK;
}

/* The REAL NVP width whose parameter count is the closest to target (the
   smaller width on a tie). The count is affine in the width: measured at
   widths 1 and 2, solved, and checked around the solution. */
static int matched_hidden(const config *cfg, size_t target, size_t *hidden,
                          size_t *params) {
  size_t p[2];
  for (int k = 0; k < 2; k++) {
    rad_flow *f;
    int rc = build_flow(cfg, RAD_LAYER_AFFINE, (size_t)k + 1, 1, &f);
    if (rc) return rc;
    p[k] = rad_flow_num_params(f);
    rad_flow_free(f);
  }
  const double slope = (double)(p[1] - p[0]);
  double h0 = 1.0 + ((double)target - (double)p[0]) / slope;
  size_t best_h = 0, best_p = 0;
  for (long h = (long)floor(h0) - 1; h <= (long)floor(h0) + 2; h++) {
    if (h < 1 || h > MAX_HIDDEN) continue;
    size_t q = p[0] + (size_t)(h - 1) * (p[1] - p[0]);
    size_t dq = q > target ? q - target : target - q;
    size_t db = best_p > target ? best_p - target : target - best_p;
    if (best_h == 0 || dq < db) {
      best_h = (size_t)h;
      best_p = q;
    }
  }
  if (best_h == 0) best_h = 1;
  rad_flow *f;
  int rc = build_flow(cfg, RAD_LAYER_AFFINE, best_h, 1, &f);
  if (rc) return rc;
  *params = rad_flow_num_params(f);
  rad_flow_free(f);
  *hidden = best_h;
  return RAD_OK;
}

/* Log-densities of n rows. */
static int log_probs(const rad_flow *flow, size_t n, const float *x,
                     double *lp) {
  float *f = malloc((n ? n : 1) * sizeof(float));
  if (!f) return RAD_ENOMEM;
  int rc = rad_flow_log_prob(flow, n, x, f);
  if (rc == RAD_OK)
    for (size_t i = 0; i < n; i++) lp[i] = f[i];
  free(f);
  return rc;
}

/* For draws x n log-densities (draw k of digit i at k n + i): the mean
   over everything, the mean over digits of the log-mean-exp over draws,
   and the lowest per-digit mean over draws (digit *worst_i). */
static void summarize(const double *lp, size_t n, size_t draws, double *mean,
                      double *iw, double *worst, size_t *worst_i) {
  double s = 0.0, si = 0.0, lo = INFINITY;
  size_t lo_i = 0;
  for (size_t i = 0; i < n; i++) {
    double mx = -INFINITY, m = 0.0;
    for (size_t k = 0; k < draws; k++) {
      const double v = lp[k * n + i];
      m += v;
      if (v > mx) mx = v;
    }
    double e = 0.0;
    if (isfinite(mx))
      for (size_t k = 0; k < draws; k++) e += exp(lp[k * n + i] - mx);
    si += isfinite(mx) ? mx + log(e / (double)draws) : mx;
    s += m;
    m /= (double)draws;
    if (m < lo) {
      lo = m;
      lo_i = i;
    }
  }
  *mean = s / (double)(n * draws);
  if (iw) *iw = si / (double)n;
  if (worst) *worst = lo;
  if (worst_i) *worst_i = lo_i;
}

/* ---- Training ---------------------------------------------------------------- */

typedef struct chunk_state {
  double train_ll, heldout_ll;
} chunk_state;

static int chunk_callback(void *user, uint64_t step, double train_ll,
                          double heldout_ll) {
  (void)step;
  chunk_state *s = user;
  s->train_ll = train_ll;
  s->heldout_ll = heldout_ll;
  return 0;
}

typedef struct fit_result {
  uint64_t best_step, steps_done;
  double best_val_ll, seconds, cpu_seconds;
} fit_result;

/* Creates, standardizes and fits one flow in chunks of eval_every steps,
   each on freshly dequantized training rows, keeping the parameters of the
   best validation evaluation. *out receives it. */
static int fit_flow(const config *cfg, const digits *G, const split *sp,
                    int kind, size_t hidden, uint64_t init_seed,
                    uint64_t fit_seed, uint64_t noise_seed, const float *mean,
                    const float *sd, size_t n_val, const float *val,
                    const char *tag, rad_flow **out, fit_result *fr) {
  *out = NULL;
  memset(fr, 0, sizeof *fr);
  const double t0 = now_seconds(), c0 = cpu_seconds();
  rad_flow *flow = NULL;
  rad_fit_options *o = NULL;
  rad_adam *opt = NULL;
  float *rows = NULL, *best = NULL;
  const char *what = "build_flow";
  int rc = build_flow(cfg, kind, hidden, init_seed, &flow);
  if (rc) goto fail;
  const size_t np = rad_flow_num_params(flow);
  uint64_t chunk_rows64 = cfg->eval_every * (uint64_t)cfg->batch;
  const size_t chunk_rows = chunk_rows64 > MAX_CHUNK_ROWS
                                ? MAX_CHUNK_ROWS
                                : (size_t)chunk_rows64;
  rows = malloc(chunk_rows * D * sizeof(float));
  best = malloc(np * sizeof(float));
  if (!rows || !best) {
    rc = RAD_ENOMEM;
    what = "malloc";
    goto fail;
  }
  what = "rad_flow_set_standardization";
  if ((rc = rad_flow_set_standardization(flow, mean, sd, D))) goto fail;
  what = "rad_adam_create";
  if ((rc = rad_adam_create(np, &opt))) goto fail;
  what = "rad_fit_options";
  if ((rc = rad_fit_options_create(&o))) goto fail;
  if ((rc = rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE,
                                (double)cfg->batch)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, cfg->lr)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_LR_SCHEDULE, 1.0)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_LR_HORIZON,
                                (double)cfg->steps)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_SEED,
                                (double)(fit_seed & ((1ull << 53) - 1)))) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_EVAL_EVERY, 0.0)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY, 0.0)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_THREADS, (double)cfg->threads)))
    goto fail;
  fr->best_val_ll = -INFINITY;
  uint64_t done = 0;
  for (uint64_t c = 0; done < cfg->steps; c++) {
    const uint64_t steps = cfg->steps - done < cfg->eval_every
                               ? cfg->steps - done
                               : cfg->eval_every;
    /* row j of chunk c: training digit (c * chunk_rows + j) mod n, fresh
       noise; one chunk is one epoch of rad_flow_fit's minibatch order
       when chunk_rows = eval_every * batch */
    dequantize(G, sp->idx[S_TRAIN], sp->n[S_TRAIN], c * chunk_rows,
               chunk_rows, mix64(noise_seed ^ c), rows);
    what = "rad_fit_options_set";
    if ((rc = rad_fit_options_set(o, RAD_OPTION_STEPS, (double)steps)))
      goto fail;
    chunk_state cs = {NAN, NAN};
    uint64_t got = 0;
    what = "rad_flow_fit";
    rc = rad_flow_fit(flow, opt, o, chunk_rows, rows, n_val, val,
                      chunk_callback, &cs, &got);
    done += got;
    if (rc) goto fail;
    if (cs.heldout_ll > fr->best_val_ll) { /* strictly better, as KEEP_BEST */
      fr->best_val_ll = cs.heldout_ll;
      fr->best_step = rad_adam_steps(opt);
      what = "rad_flow_get_params";
      if ((rc = rad_flow_get_params(flow, best, np))) goto fail;
    }
    const uint64_t t = rad_adam_steps(opt);
    if (t % (cfg->eval_every * 5) == 0 || done == cfg->steps)
      fprintf(stderr,
              "    %-8s step %5llu  train %.3f  validation %.3f bits/dim  "
              "(%.0f s)\n",
              tag, (unsigned long long)t, bits_per_dim(cs.train_ll),
              bits_per_dim(cs.heldout_ll), now_seconds() - t0);
  }
  fr->steps_done = done;
  if (fr->best_val_ll > -INFINITY) {
    what = "rad_flow_set_params";
    if ((rc = rad_flow_set_params(flow, best, np))) goto fail;
  }
  fr->seconds = now_seconds() - t0;
  fr->cpu_seconds = cpu_seconds() - c0;
  rad_fit_options_free(o);
  rad_adam_free(opt);
  free(rows);
  free(best);
  *out = flow;
  return 0;
fail:
  fprintf(stderr, PROG ": %s failed: %s (status %d)\n", what,
          rad_strerror(rc), rc);
  rad_fit_options_free(o);
  rad_adam_free(opt);
  rad_flow_free(flow);
  free(rows);
  free(best);
  return -1;
}

/* ---- Labels ------------------------------------------------------------------ */

/* The labels rad_flow_forward gives n points: layer l holds
   k[i * nl + off[l] .. off[l + 1] - 1] (layer 0 is the first applied to
   x). */
typedef struct label_set {
  size_t n, nl, layers;
  int32_t *k;
  size_t off[MAX_LAYERS + 1];
} label_set;

static void labels_free(label_set *L) {
  free(L->k);
  memset(L, 0, sizeof *L);
}

static int labels_compute(const rad_flow *flow, size_t n, const float *x,
                          label_set *L) {
  memset(L, 0, sizeof *L);
  L->n = n;
  L->nl = rad_flow_num_labels(flow);
  L->layers = rad_flow_num_layers(flow);
  if (L->layers > MAX_LAYERS) return -1;
  for (size_t l = 0; l < L->layers; l++) {
    rad_coupling *c = NULL;
    int rc = rad_flow_get_coupling(flow, l, &c);
    if (rc) {
      fprintf(stderr, PROG ": rad_flow_get_coupling failed: %s\n",
              rad_strerror(rc));
      return -1;
    }
    L->off[l + 1] = L->off[l] + rad_coupling_num_labels(c);
    rad_coupling_free(c);
  }
  float *z = malloc((n ? n : 1) * D * sizeof(float));
  L->k = malloc((n ? n : 1) * (L->nl ? L->nl : 1) * sizeof(int32_t));
  if (!z || !L->k) {
    free(z);
    labels_free(L);
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  int rc = rad_flow_forward(flow, n, x, z, L->k, NULL);
  free(z);
  if (rc) {
    fprintf(stderr, PROG ": rad_flow_forward failed: %s\n", rad_strerror(rc));
    labels_free(L);
    return -1;
  }
  return 0;
}

/* Per-layer label statistics of one fitted RAD flow against the classes. */
typedef struct layer_stats {
  size_t units;
  double ari_tuple;  /* the layer's whole label tuple */
  size_t blocks;     /* distinct tuples */
  size_t best_unit;  /* the unit whose label agrees best with the classes */
  int best_pixel;    /* the pixel that unit transforms (-1: unknown) */
  double ari_unit;   /* its ARI */
  double use[3];     /* share of labels 1, 2, 3 over digits and units */
  double stable;     /* share of labels unchanged by a noise draw */
} layer_stats;

/* 3 x 10 table of one unit's label against the classes. */
static void unit_table(const label_set *L, size_t col, const int *cls,
                       size_t tab[3 * N_CLASSES]) {
  memset(tab, 0, 3 * N_CLASSES * sizeof(size_t));
  for (size_t i = 0; i < L->n; i++)
    tab[(size_t)(L->k[i * L->nl + col] - 1) * N_CLASSES + (size_t)cls[i]]++;
}

static int layer_statistics(const rad_flow *flow, const label_set *L,
                            const label_set *Lnoisy, const int *cls,
                            layer_stats *st) {
  for (size_t l = 0; l < L->layers; l++) {
    layer_stats *s = &st[l];
    memset(s, 0, sizeof *s);
    s->best_pixel = -1;
    s->units = L->off[l + 1] - L->off[l];
    if (s->units == 0) continue;
    if (s->units <= MAX_TUPLE) {
      partition p;
      if (partition_make(L->n, L->k, L->nl, L->off[l], s->units, &p)) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
      }
      size_t *t = contingency(&p, cls);
      if (!t) {
        partition_free(&p);
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
      }
      s->ari_tuple = adjusted_rand(t, p.n_blocks, N_CLASSES);
      s->blocks = p.n_blocks;
      free(t);
      partition_free(&p);
    } else {
      s->ari_tuple = NAN;
    }
    s->ari_unit = -INFINITY;
    size_t same = 0, cnt[3] = {0, 0, 0};
    for (size_t j = 0; j < s->units; j++) {
      const size_t col = L->off[l] + j;
      size_t tab[3 * N_CLASSES];
      unit_table(L, col, cls, tab);
      const double a = adjusted_rand(tab, 3, N_CLASSES);
      if (a > s->ari_unit) {
        s->ari_unit = a;
        s->best_unit = j;
      }
      for (size_t i = 0; i < L->n; i++) {
        cnt[L->k[i * L->nl + col] - 1]++;
        same += L->k[i * L->nl + col] == Lnoisy->k[i * L->nl + col];
      }
    }
    const double tot = (double)(L->n * s->units);
    for (int c = 0; c < 3; c++) s->use[c] = (double)cnt[c] / tot;
    /* the pixel: the best unit's position among the mask's ones */
    rad_coupling *cp = NULL;
    uint8_t mask[D];
    if (rad_flow_get_coupling(flow, l, &cp) == RAD_OK &&
        rad_coupling_get_mask(cp, mask, D) == RAD_OK) {
      size_t j = 0;
      for (int a = 0; a < D && s->best_pixel < 0; a++)
        if (mask[a] && j++ == s->best_unit) s->best_pixel = a;
    }
    rad_coupling_free(cp);
    s->stable = (double)same / tot;
  }
  return 0;
}

/* ---- Experiments ------------------------------------------------------------- */

typedef struct rep_result {
  double bpd[N_MODELS][N_SPLITS]; /* mean over digits and noise draws */
  double bpd_iw[N_MODELS];        /* test: log-mean-exp over draws */
  double worst[N_MODELS];         /* test: the worst digit's bits/dim */
  int worst_class[N_MODELS];      /* its class */
  int worst_outside[N_MODELS];    /* its pixels outside the training range */
  size_t test_outside;            /* test digits with such a pixel */
  fit_result fit[2];
  size_t constant_pixels, floored_pixels;
  layer_stats layer[MAX_LAYERS];
  double sample_outside[N_MODELS]; /* share of sampled x outside [0, 1) */
} rep_result;

typedef struct experiment {
  size_t rad_params, nvp_params, nvp_hidden, n_test;
  rep_result *res;
  rad_flow *rad0, *nvp0; /* replicate 0's fitted flows */
  gauss gauss0;
  split split0;
} experiment;

/* How many pixels of digit `row` lie outside [lo, hi] (per pixel). */
static int outside_range(const digits *G, size_t row, const unsigned char *lo,
                         const unsigned char *hi) {
  int o = 0;
  for (int a = 0; a < D; a++) {
    const unsigned char v = G->pix[row * D + (size_t)a];
    o += v < lo[a] || v > hi[a];
  }
  return o;
}

static int run_replicate(const config *cfg, const digits *G, split *sp,
                         size_t rep, experiment *ex) {
  rep_result *r = &ex->res[rep];
  const size_t nv = sp->n[S_VAL] * VAL_DRAWS,
               nt = sp->n[S_TEST] * cfg->test_draws,
               ntr = sp->n[S_TRAIN] * TRAIN_EVAL_DRAWS;
  const size_t nrows[N_SPLITS] = {ntr, nv, nt};
  const size_t draws[N_SPLITS] = {TRAIN_EVAL_DRAWS, VAL_DRAWS,
                                  cfg->test_draws};
  float *x[N_SPLITS] = {NULL, NULL, NULL};
  double *lp = NULL;
  rad_flow *flows[2] = {NULL, NULL};
  float *xc = NULL, *xn = NULL;
  label_set L, Ln;
  memset(&L, 0, sizeof L);
  memset(&Ln, 0, sizeof Ln);
  int ret = -1;
  static gauss g; /* large: keep it off the stack */
  const int streams[N_SPLITS] = {STREAM_TRAIN_EVAL_NOISE, STREAM_VAL_NOISE,
                                 STREAM_TEST_NOISE};
  for (int s = 0; s < N_SPLITS; s++) {
    x[s] = malloc(nrows[s] * D * sizeof(float));
    if (!x[s]) goto oom;
    dequantize(G, sp->idx[s], sp->n[s], 0, nrows[s],
               derive_seed(cfg->seed, rep, streams[s]), x[s]);
  }
  size_t most = ntr;
  if (nv > most) most = nv;
  if (nt > most) most = nt;
  lp = malloc(most * sizeof(double));
  if (!lp) goto oom;

  /* the Gaussian and the standardization, from the training split */
  double sd_d[D];
  if (gauss_fit(G, sp->idx[S_TRAIN], sp->n[S_TRAIN], &g, sd_d)) {
    fprintf(stderr, PROG ": the covariance is not positive definite\n");
    goto done;
  }
  float mean[D], sd[D];
  r->constant_pixels = r->floored_pixels = 0;
  for (int a = 0; a < D; a++) {
    int constant = 1;
    const unsigned char p0 = G->pix[sp->idx[S_TRAIN][0] * D + (size_t)a];
    for (size_t i = 1; i < sp->n[S_TRAIN] && constant; i++)
      constant = G->pix[sp->idx[S_TRAIN][i] * D + (size_t)a] == p0;
    r->constant_pixels += (size_t)constant;
    mean[a] = (float)g.mu[a];
    sd[a] = (float)sd_d[a];
    if (sd[a] < STD_FLOOR) {
      sd[a] = STD_FLOOR;
      r->floored_pixels++;
    }
  }
  /* pixels outside the training split's range of that pixel (e.g. ink
     where no training digit has any) */
  unsigned char lo_px[D], hi_px[D];
  memset(lo_px, LEVELS, sizeof lo_px);
  memset(hi_px, 0, sizeof hi_px);
  for (size_t i = 0; i < sp->n[S_TRAIN]; i++)
    for (int a = 0; a < D; a++) {
      const unsigned char v = G->pix[sp->idx[S_TRAIN][i] * D + (size_t)a];
      if (v < lo_px[a]) lo_px[a] = v;
      if (v > hi_px[a]) hi_px[a] = v;
    }
  r->test_outside = 0;
  for (size_t i = 0; i < sp->n[S_TEST]; i++)
    r->test_outside += outside_range(G, sp->idx[S_TEST][i], lo_px, hi_px) > 0;
  for (int s = 0; s < N_SPLITS; s++) {
    for (size_t i = 0; i < nrows[s]; i++)
      lp[i] = gauss_log_pdf(&g, x[s] + i * D);
    double m, iw, worst;
    size_t wi;
    summarize(lp, sp->n[s], draws[s], &m, &iw, &worst, &wi);
    r->bpd[M_GAUSS][s] = bits_per_dim(m);
    if (s == S_TEST) {
      r->bpd_iw[M_GAUSS] = bits_per_dim(iw);
      r->worst[M_GAUSS] = bits_per_dim(worst);
      r->worst_class[M_GAUSS] = G->cls[sp->idx[S_TEST][wi]];
      r->worst_outside[M_GAUSS] =
          outside_range(G, sp->idx[S_TEST][wi], lo_px, hi_px);
    }
  }

  /* the flows */
  const int kinds[2] = {RAD_LAYER_RAD, RAD_LAYER_AFFINE};
  const size_t hidden[2] = {cfg->rad_hidden, ex->nvp_hidden};
  static const char *const tags[2] = {"RAD", "REALNVP"};
  for (int m = 0; m < 2; m++) {
    if (fit_flow(cfg, G, sp, kinds[m], hidden[m],
                 derive_seed(cfg->seed, rep, STREAM_INIT + m),
                 derive_seed(cfg->seed, rep, STREAM_FIT + m),
                 derive_seed(cfg->seed, rep, STREAM_TRAIN_NOISE), mean, sd, nv,
                 x[S_VAL], tags[m], &flows[m], &r->fit[m]))
      goto done;
    for (int s = 0; s < N_SPLITS; s++) {
      int rc = log_probs(flows[m], nrows[s], x[s], lp);
      if (rc) {
        fprintf(stderr, PROG ": rad_flow_log_prob failed: %s\n",
                rad_strerror(rc));
        goto done;
      }
      double mm, iw, worst;
      size_t wi;
      summarize(lp, sp->n[s], draws[s], &mm, &iw, &worst, &wi);
      r->bpd[m][s] = bits_per_dim(mm);
      if (s == S_TEST) {
        r->bpd_iw[m] = bits_per_dim(iw);
        r->worst[m] = bits_per_dim(worst);
        r->worst_class[m] = G->cls[sp->idx[S_TEST][wi]];
        r->worst_outside[m] =
            outside_range(G, sp->idx[S_TEST][wi], lo_px, hi_px);
      }
    }
    fprintf(stderr,
            "  seed %zu %-8s test %.4f bits/dim  validation %.4f  best step "
            "%5llu  %.1f s, CPU %.1f s (%.1f ms/step)\n",
            rep + 1, tags[m], r->bpd[m][S_TEST], r->bpd[m][S_VAL],
            (unsigned long long)r->fit[m].best_step, r->fit[m].seconds,
            r->fit[m].cpu_seconds,
            1e3 * r->fit[m].cpu_seconds / (double)r->fit[m].steps_done);
  }
  fprintf(stderr, "  seed %zu Gaussian test %.4f bits/dim\n", rep + 1,
          r->bpd[M_GAUSS][S_TEST]);

  /* samples: the share of values outside [0, 1) */
  {
    const size_t ns = 1000;
    float *xs = malloc(ns * D * sizeof(float));
    if (!xs) goto oom;
    for (int m = 0; m < N_MODELS; m++) {
      const uint64_t seed = derive_seed(cfg->seed, rep, STREAM_SAMPLES + m);
      int rc = RAD_OK;
      if (m < 2) rc = rad_flow_sample(flows[m], seed, ns, xs, NULL, NULL);
      else gauss_sample(&g, seed, ns, xs);
      if (rc) {
        fprintf(stderr, PROG ": rad_flow_sample failed: %s\n",
                rad_strerror(rc));
        r->sample_outside[m] = NAN;
        continue;
      }
      size_t o = 0;
      for (size_t i = 0; i < ns * D; i++) o += !(xs[i] >= 0.0f && xs[i] < 1.0f);
      r->sample_outside[m] = (double)o / (double)(ns * D);
    }
    free(xs);
  }

  /* RAD's labels of all digits (cell centres) against the classes, and
     their stability under one noise draw */
  xc = malloc(G->n * D * sizeof(float));
  xn = malloc(G->n * D * sizeof(float));
  if (!xc || !xn) goto oom;
  centres(G, NULL, G->n, xc);
  {
    size_t *all = malloc(G->n * sizeof(size_t));
    if (!all) goto oom;
    for (size_t i = 0; i < G->n; i++) all[i] = i;
    dequantize(G, all, G->n, 0, G->n,
               derive_seed(cfg->seed, rep, STREAM_STABILITY), xn);
    free(all);
  }
  if (labels_compute(flows[0], G->n, xc, &L) ||
      labels_compute(flows[0], G->n, xn, &Ln) ||
      layer_statistics(flows[0], &L, &Ln, G->cls, r->layer))
    goto done;

  if (rep == 0) {
    ex->rad0 = flows[0];
    ex->nvp0 = flows[1];
    flows[0] = flows[1] = NULL;
    ex->gauss0 = g;
  }
  ret = 0;
  goto done;
oom:
  fprintf(stderr, PROG ": out of memory\n");
done:
  for (int s = 0; s < N_SPLITS; s++) free(x[s]);
  free(lp);
  free(xc);
  free(xn);
  labels_free(&L);
  labels_free(&Ln);
  rad_flow_free(flows[0]);
  rad_flow_free(flows[1]);
  return ret;
}

/* ---- Report tables ------------------------------------------------------------ */

static void report_bpd(report *R, const config *cfg, const experiment *ex) {
  const size_t S = cfg->seeds;
  double v[MAX_SEEDS] = {0}, m, s;
  out(R,
      "Bits per dimension of the discrete digits (lower is better), mean +- "
      "sample std over %zu seed%s. Train: %d noise draws per digit; "
      "validation: %d; test: %zu. \"test, log-mean-exp\" averages the "
      "density over each test digit's draws before the log (a tighter "
      "estimate of the same code length); \"worst digit\" is the test digit "
      "with the highest bits/dim (mean over its draws).\n\n",
      S, S == 1 ? "" : "s", TRAIN_EVAL_DRAWS, VAL_DRAWS, cfg->test_draws);
  out(R, "| model | parameters | train | validation | test | test, "
         "log-mean-exp | worst digit |\n");
  out(R, "|---|---:|---:|---:|---:|---:|---:|\n");
  for (int mo = 0; mo < N_MODELS; mo++) {
    const size_t params = mo == M_RAD   ? ex->rad_params
                          : mo == M_NVP ? ex->nvp_params
                                        : (size_t)(D + D * (D + 1) / 2);
    out(R, "| %s | %zu |", MODEL_TITLE[mo], params);
    for (int sp = 0; sp < N_SPLITS; sp++) {
      for (size_t i = 0; i < S; i++) v[i] = ex->res[i].bpd[mo][sp];
      mean_std(v, S, &m, &s);
      out(R, sp == S_TEST ? " **%.4f +- %.4f** |" : " %.4f +- %.4f |", m, s);
    }
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].bpd_iw[mo];
    mean_std(v, S, &m, &s);
    out(R, " %.4f +- %.4f |", m, s);
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].worst[mo];
    mean_std(v, S, &m, &s);
    out(R, " %.2f +- %.2f |\n", m, s);
  }
  out(R,
      "| (uniform on [0, 1)^64: every cell 17^-64) | 0 | %.4f | %.4f | %.4f "
      "| %.4f | %.4f |\n",
      log(17.0) / log(2.0), log(17.0) / log(2.0), log(17.0) / log(2.0),
      log(17.0) / log(2.0), log(17.0) / log(2.0));
  out(R, "\nThe flows' validation numbers chose their parameters "
         "(keep-best), so they are optimistic; the test split chose "
         "nothing.\n");

  out(R, "\nPaired test differences in bits/dim (same split, same test "
         "noise), mean +- std, and how often the first is better (lower):\n\n");
  out(R, "| difference | mean +- std | first better |\n|---|---:|---:|\n");
  const int pairs[3][2] = {{M_RAD, M_NVP}, {M_RAD, M_GAUSS}, {M_NVP, M_GAUSS}};
  static const char *const short_name[N_MODELS] = {"RAD", "REAL NVP",
                                                   "Gaussian"};
  for (int p = 0; p < 3; p++) {
    size_t wins = 0;
    for (size_t i = 0; i < S; i++) {
      v[i] = ex->res[i].bpd[pairs[p][0]][S_TEST] -
             ex->res[i].bpd[pairs[p][1]][S_TEST];
      wins += v[i] < 0.0;
    }
    mean_std(v, S, &m, &s);
    out(R, "| %s - %s | %+.4f +- %.4f | %zu / %zu |\n",
        short_name[pairs[p][0]], short_name[pairs[p][1]], m, s, wins, S);
  }

  out(R, "\nPer seed: test bits/dim, the step whose parameters were kept, "
         "fit time in wall-clock seconds [CPU seconds of the process] "
         "including the validation evaluations, and CPU milliseconds per "
         "step:\n\n");
  out(R, "| seed | RAD | step | time | ms/step | REAL NVP | step | time | "
         "ms/step | Gaussian |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < S; i++) {
    const rep_result *r = &ex->res[i];
    out(R,
        "| %zu | %.4f | %llu | %.0f s [%.0f s] | %.1f | %.4f | %llu | %.0f s "
        "[%.0f s] | %.1f | %.4f |\n",
        i + 1, r->bpd[M_RAD][S_TEST],
        (unsigned long long)r->fit[0].best_step, r->fit[0].seconds,
        r->fit[0].cpu_seconds,
        1e3 * r->fit[0].cpu_seconds / (double)r->fit[0].steps_done,
        r->bpd[M_NVP][S_TEST], (unsigned long long)r->fit[1].best_step,
        r->fit[1].seconds, r->fit[1].cpu_seconds,
        1e3 * r->fit[1].cpu_seconds / (double)r->fit[1].steps_done,
        r->bpd[M_GAUSS][S_TEST]);
  }
  out(R, "\nThe worst test digit of each model and seed: its bits/dim, its "
         "class, and how many of its pixels lie outside the range that pixel "
         "takes in the training split (ink where no training digit has "
         "that much); and how many test digits have any such pixel:\n\n");
  out(R, "| seed | RAD | REAL NVP | Gaussian | test digits with a pixel "
         "outside the training range |\n|---:|---|---|---|---:|\n");
  for (size_t i = 0; i < S; i++) {
    const rep_result *r = &ex->res[i];
    out(R, "| %zu |", i + 1);
    for (int mo = 0; mo < N_MODELS; mo++)
      out(R, " %.2f (class %d, %d outside) |", r->worst[mo],
          r->worst_class[mo], r->worst_outside[mo]);
    out(R, " %zu of %zu |\n", r->test_outside, ex->n_test);
  }
  out(R, "\nShare of sampled pixel values x outside [0, 1) (1000 samples "
         "per model and seed; the data never leave it):");
  for (int mo = 0; mo < N_MODELS; mo++) {
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].sample_outside[mo];
    mean_std(v, S, &m, &s);
    out(R, "%s %s %.3f", mo ? ";" : "", short_name[mo], m);
  }
  out(R, ".\n");
}

static void print_table(report *R, const partition *p, const int *cls,
                        const char *head) {
  size_t *t = contingency(p, cls);
  if (!t) {
    out(R, "(out of memory)\n");
    return;
  }
  out(R, "| %s |", head);
  for (int c = 0; c < N_CLASSES; c++) out(R, " %d |", c);
  out(R, " total |\n|---|");
  for (int c = 0; c <= N_CLASSES; c++) out(R, "---:|");
  out(R, "\n");
  size_t col[N_CLASSES] = {0};
  for (size_t b = 0; b < p->n_blocks; b++) {
    char name[160];
    code_name(p->codes[b], p->cnt, name, sizeof name);
    size_t tot = 0;
    out(R, "| %s |", name);
    for (int c = 0; c < N_CLASSES; c++) {
      out(R, " %zu |", t[b * N_CLASSES + (size_t)c]);
      tot += t[b * N_CLASSES + (size_t)c];
      col[c] += t[b * N_CLASSES + (size_t)c];
    }
    out(R, " %zu |\n", tot);
  }
  out(R, "| total |");
  size_t all = 0;
  for (int c = 0; c < N_CLASSES; c++) {
    out(R, " %zu |", col[c]);
    all += col[c];
  }
  out(R, " %zu |\n", all);
  out(R, "\nARI = %.3f\n", adjusted_rand(t, p->n_blocks, N_CLASSES));
  free(t);
}

/* A partition with many blocks: counts, purity, and the largest blocks. */
static void print_tuple_summary(report *R, const partition *p,
                                const int *cls) {
  size_t *t = contingency(p, cls);
  size_t *order = malloc((p->n_blocks ? p->n_blocks : 1) * sizeof(size_t));
  size_t *size = calloc(p->n_blocks ? p->n_blocks : 1, sizeof(size_t));
  if (!t || !order || !size) {
    out(R, "(out of memory)\n");
    free(t);
    free(order);
    free(size);
    return;
  }
  for (size_t b = 0; b < p->n_blocks; b++) {
    order[b] = b;
    for (int c = 0; c < N_CLASSES; c++) size[b] += t[b * N_CLASSES + (size_t)c];
  }
  for (size_t i = 1; i < p->n_blocks; i++) /* insertion sort, descending */
    for (size_t j = i; j > 0 && size[order[j]] > size[order[j - 1]]; j--) {
      size_t tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  const size_t show = p->n_blocks < 10 ? p->n_blocks : 10;
  size_t pure = 0, single = 0;
  for (size_t b = 0; b < p->n_blocks; b++) {
    int nz = 0;
    for (int c = 0; c < N_CLASSES; c++) nz += t[b * N_CLASSES + (size_t)c] > 0;
    if (nz == 1 && size[b] > 1) pure += size[b];
    single += size[b] == 1;
  }
  out(R,
      "%zu distinct label tuples among %zu digits; %zu tuples hold a single "
      "digit; %zu digits share their tuple only with digits of the same "
      "class (tuples of one digit not counted). The %zu largest (labels "
      "of units 1..%zu, first unit first):\n\n",
      p->n_blocks, p->n, single, pure, show, p->cnt);
  out(R, "| tuple |");
  for (int c = 0; c < N_CLASSES; c++) out(R, " %d |", c);
  out(R, " total |\n|---|");
  for (int c = 0; c <= N_CLASSES; c++) out(R, "---:|");
  out(R, "\n");
  for (size_t i = 0; i < show; i++) {
    const size_t b = order[i];
    char name[160];
    code_name(p->codes[b], p->cnt, name, sizeof name);
    out(R, "| %s |", name);
    for (int c = 0; c < N_CLASSES; c++)
      out(R, " %zu |", t[b * N_CLASSES + (size_t)c]);
    out(R, " %zu |\n", size[b]);
  }
  out(R, "\nARI = %.3f\n", adjusted_rand(t, p->n_blocks, N_CLASSES));
  free(order);
  free(size);
  free(t);
}

static void report_labels(report *R, const config *cfg, const digits *G,
                          const experiment *ex) {
  const size_t S = cfg->seeds;
  const rep_result *r0 = &ex->res[0];
  label_set L;
  float *xc = malloc(G->n * D * sizeof(float));
  if (!xc) {
    out(R, "(out of memory)\n");
    return;
  }
  centres(G, NULL, G->n, xc);
  int rc = labels_compute(ex->rad0, G->n, xc, &L);
  free(xc);
  if (rc) {
    out(R, "(could not compute the labels)\n");
    return;
  }
  const size_t NL = L.layers;
  out(R,
      "Seed 1's RAD flow, all %zu digits at their cell centres (pixel + "
      "1/2) / 17. Each layer folds %zu units, so it gives each digit a tuple "
      "of %zu labels in {1, 2, 3}; the tuple is the layer's mixture "
      "component. Layer 1 is applied first to the data, layer %zu last "
      "(next to the Gaussian base).\n\n",
      G->n, L.off[1], L.off[1], NL);
  out(R, "| layer | distinct tuples | ARI, tuple | best unit (its pixel: "
         "row, column) | ARI, best unit | labels 1 / 2 / 3 | unchanged by "
         "noise |\n"
         "|---:|---:|---:|---|---:|---|---:|\n");
  size_t best_layer = 0, best_unit_layer = 0;
  for (size_t l = 0; l < NL; l++) {
    const layer_stats *s = &r0->layer[l];
    out(R,
        "| %zu | %zu | %.3f | %zu (%d, %d) | %.3f | %.2f / %.2f / %.2f | "
        "%.3f |\n",
        l + 1, s->blocks, s->ari_tuple, s->best_unit + 1, s->best_pixel / SIDE,
        s->best_pixel % SIDE, s->ari_unit, s->use[0], s->use[1], s->use[2],
        s->stable);
    if (s->ari_tuple > r0->layer[best_layer].ari_tuple) best_layer = l;
    if (s->ari_unit > r0->layer[best_unit_layer].ari_unit) best_unit_layer = l;
  }
  out(R, "\nUnchanged by noise: the share of labels that stay the same when "
         "the cell centre is replaced by a random point of the cell "
         "(one noise draw). Pixels are numbered from the top-left, "
         "row and column 0..7.\n");
  {
    /* a reference: the best split of one pixel's counts into three
       intervals {< a}, {a .. b-1}, {>= b}, over all pixels and 1 <= a < b
       <= 16, chosen by its ARI like the best unit */
    double best = -INFINITY;
    int bp = 0, ba = 0, bb = 0;
    for (int px = 0; px < D; px++) {
      size_t cnt[LEVELS][N_CLASSES];
      memset(cnt, 0, sizeof cnt);
      for (size_t i = 0; i < G->n; i++)
        cnt[G->pix[i * D + (size_t)px]][G->cls[i]]++;
      for (int a = 1; a < LEVELS; a++)
        for (int b = a + 1; b < LEVELS; b++) {
          size_t tab[3 * N_CLASSES];
          memset(tab, 0, sizeof tab);
          for (int v = 0; v < LEVELS; v++) {
            const size_t g = v < a ? 0 : v < b ? 1 : 2;
            for (int c = 0; c < N_CLASSES; c++)
              tab[g * N_CLASSES + (size_t)c] += cnt[v][c];
          }
          const double ari = adjusted_rand(tab, 3, N_CLASSES);
          if (ari > best) {
            best = ari;
            bp = px;
            ba = a;
            bb = b;
          }
        }
    }
    out(R,
        "\nA reference without any model: the best three-way split of a "
        "single pixel's count, {< a}, {a .. b-1}, {>= b}, over all 64 pixels "
        "and thresholds (chosen by its ARI, as the best unit is), has ARI "
        "%.3f (pixel row %d, column %d; a = %d, b = %d).\n",
        best, bp / SIDE, bp % SIDE, ba, bb);
  }

  partition p;
  out(R, "\n#### The last layer (layer %zu): its label tuples\n\n", NL);
  if (partition_make(L.n, L.k, L.nl, L.off[NL - 1], L.off[NL] - L.off[NL - 1],
                     &p) == 0) {
    print_tuple_summary(R, &p, G->cls);
    partition_free(&p);
  }
  if (best_layer != NL - 1) {
    out(R, "\n#### The layer whose tuples agree best (layer %zu)\n\n",
        best_layer + 1);
    if (partition_make(L.n, L.k, L.nl, L.off[best_layer],
                       L.off[best_layer + 1] - L.off[best_layer], &p) == 0) {
      print_tuple_summary(R, &p, G->cls);
      partition_free(&p);
    }
  }
  out(R, "\n#### The last layer's best unit (layer %zu, unit %zu)\n\n", NL,
      r0->layer[NL - 1].best_unit + 1);
  if (partition_make(L.n, L.k, L.nl,
                     L.off[NL - 1] + r0->layer[NL - 1].best_unit, 1,
                     &p) == 0) {
    print_table(R, &p, G->cls, "label \\ class");
    partition_free(&p);
  }
  if (best_unit_layer != NL - 1) {
    out(R, "\n#### The best unit of any layer (layer %zu, unit %zu)\n\n",
        best_unit_layer + 1, r0->layer[best_unit_layer].best_unit + 1);
    if (partition_make(L.n, L.k, L.nl,
                       L.off[best_unit_layer] +
                           r0->layer[best_unit_layer].best_unit,
                       1, &p) == 0) {
      print_table(R, &p, G->cls, "label \\ class");
      partition_free(&p);
    }
  }
  labels_free(&L);

  double v[MAX_SEEDS], m, sd;
  out(R, "\n#### Over the %zu seed%s, by layer (mean +- std)\n\n", S,
      S == 1 ? "" : "s");
  out(R, "| layer | ARI, tuple | distinct tuples | ARI, best unit | "
         "labels 2 (inner piece) | unchanged by noise |\n"
         "|---:|---:|---:|---:|---:|---:|\n");
  for (size_t l = 0; l < NL; l++) {
    double m2, s2, m3, s3, m4, s4, nb = 0.0;
    for (size_t i = 0; i < S; i++) {
      v[i] = ex->res[i].layer[l].ari_tuple;
      nb += (double)ex->res[i].layer[l].blocks / (double)S;
    }
    mean_std(v, S, &m, &sd);
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].layer[l].ari_unit;
    mean_std(v, S, &m2, &s2);
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].layer[l].use[1];
    mean_std(v, S, &m3, &s3);
    for (size_t i = 0; i < S; i++) v[i] = ex->res[i].layer[l].stable;
    mean_std(v, S, &m4, &s4);
    out(R,
        "| %zu | %.3f +- %.3f | %.0f | %.3f +- %.3f | %.2f +- %.2f | %.3f +- "
        "%.3f |\n",
        l + 1, m, sd, nb, m2, s2, m3, s3, m4, s4);
  }
}

/* ---- Pictures -------------------------------------------------------------------- */

static const char *plot_strerror(int rc) {
  switch (rc) {
  case PLOT_OK: return "success";
  case PLOT_EINVAL: return "invalid argument";
  case PLOT_ENOMEM: return "out of memory";
  case PLOT_EIO: return "cannot write the file";
  default: return "unknown plot error";
  }
}

static int save(plot_canvas *c, const config *cfg, const char *name) {
  size_t len = strlen(cfg->out) + strlen(name) + 2;
  char *path = malloc(len);
  if (!path) return PLOT_ENOMEM;
  snprintf(path, len, "%s/%s", cfg->out, name);
  int rc = plot_canvas_save_png(c, path);
  if (rc)
    fprintf(stderr, PROG ": cannot write %s: %s\n", path, plot_strerror(rc));
  else
    fprintf(stderr, "wrote %s\n", path);
  free(path);
  return rc;
}

/* x in [0, 1) -> pixel counts: x * 17 - 1/2, clipped to [0, 16]. */
static void to_pixels(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float v = x[i] * (float)LEVELS - 0.5f;
    if (!(v >= 0.0f)) v = 0.0f; /* NaN too */
    if (v > (float)(LEVELS - 1)) v = (float)(LEVELS - 1);
    x[i] = v;
  }
}

/* samples.png: 100 test digits (10 per class, one class per row) beside
   100 samples of RAD, REAL NVP and the Gaussian (seed 1's models). */
static int figure_samples(const config *cfg, const digits *G,
                          const experiment *ex) {
  enum { NT = 100, PW = 430, PH = 430, TOP = 110, LEFT = 30, GAP = 40 };
  float *img[4];
  int rc = PLOT_ENOMEM;
  for (int q = 0; q < 4; q++) img[q] = malloc(NT * D * sizeof(float));
  plot_canvas *c = plot_canvas_new(LEFT * 2 + 4 * PW + 3 * GAP, TOP + PH + 90);
  if (!img[0] || !img[1] || !img[2] || !img[3] || !c) goto done;
  /* real: the first 10 test digits of each class (the split is shuffled) */
  for (int q = 0; q < NT; q++)
    for (int a = 0; a < D; a++) img[0][q * D + a] = NAN;
  const split *sp = &ex->split0;
  for (int cl = 0; cl < N_CLASSES; cl++) {
    int k = 0;
    for (size_t i = 0; i < sp->n[S_TEST] && k < 10; i++) {
      const size_t row = sp->idx[S_TEST][i];
      if (G->cls[row] != cl) continue;
      for (int a = 0; a < D; a++)
        img[0][(cl * 10 + k) * D + a] = (float)G->pix[row * D + (size_t)a];
      k++;
    }
  }
  const rad_flow *fl[2] = {ex->rad0, ex->nvp0};
  for (int m = 0; m < 2; m++) {
    int src = rad_flow_sample(fl[m], derive_seed(cfg->seed, 0,
                                                 STREAM_SAMPLES + m),
                              NT, img[m + 1], NULL, NULL);
    if (src) {
      fprintf(stderr, PROG ": rad_flow_sample failed: %s\n",
              rad_strerror(src));
      rc = PLOT_EINVAL;
      goto done;
    }
    to_pixels(img[m + 1], NT * D);
  }
  gauss_sample(&ex->gauss0, derive_seed(cfg->seed, 0, STREAM_SAMPLES + 2), NT,
               img[3]);
  to_pixels(img[3], NT * D);
  static const char *const title[4] = {"real test digits", "RAD samples",
                                       "REAL NVP samples",
                                       "Gaussian samples"};
  char sub[4][80];
  snprintf(sub[0], sizeof sub[0], "10 per class, 0 to 9");
  for (int m = 0; m < 3; m++)
    snprintf(sub[m + 1], sizeof sub[m + 1], "test %.3f bits/dim",
             ex->res[0].bpd[m][S_TEST]);
  rc = 0;
  for (int q = 0; q < 4 && rc == 0; q++) {
    plot_panel p = {c, LEFT + q * (PW + GAP), TOP, PW, PH, 0, 1, 0, 1, 0};
    if ((rc = plot_image_grid(&p, NT, 10, 10, img[q], SIDE, SIDE,
                              (float)(LEVELS - 1), 0.0f)) ||
        (rc = plot_text_centred(c, p.x + PW / 2, TOP - 50, title[q],
                                PLOT_BLACK, 2)) ||
        (rc = plot_text_centred(c, p.x + PW / 2, TOP - 26, sub[q],
                                PLOT_DARK_GREY, 2)))
      goto done;
  }
  if ((rc = plot_text_centred(c, c->width / 2, 12,
                              "8x8 digits: data and seed 1's models (pixel "
                              "= 17 x - 1/2, clipped to 0..16; dark = 16)",
                              PLOT_BLACK, 2)) ||
      (rc = plot_text_centred(
           c, c->width / 2, TOP + PH + 30,
           "samples: rad_flow_sample, exact, no temperature; the "
           "Gaussian is fitted in closed form",
           PLOT_DARK_GREY, 2)))
    goto done;
  rc = save(c, cfg, "samples.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  for (int q = 0; q < 4; q++) free(img[q]);
  plot_canvas_free(c);
  return rc;
}

/* labels.png: for each layer of seed 1's RAD flow, the mean image of the
   digits given label 1, 2 and 3 by the layer's best-agreeing unit, with
   the size and class mix of each label group. */
static int figure_labels(const config *cfg, const digits *G,
                         const experiment *ex) {
  const size_t NL = rad_flow_num_layers(ex->rad0);
  const int rows = (int)NL, TOP = 96, RH = 84, TILE = 64, BW = 470;
  float *xc = malloc(G->n * D * sizeof(float));
  float *mean = calloc((size_t)rows * 3 * D, sizeof(float));
  plot_canvas *c = plot_canvas_new(260 + 3 * BW, TOP + rows * RH + 20);
  label_set L;
  int have_l = 0, rc = PLOT_ENOMEM;
  if (!xc || !mean || !c) goto done;
  centres(G, NULL, G->n, xc);
  if (labels_compute(ex->rad0, G->n, xc, &L)) {
    rc = PLOT_EINVAL;
    goto done;
  }
  have_l = 1;
  rc = 0;
  for (int l = 0; l < rows && rc == 0; l++) {
    const layer_stats *s = &ex->res[0].layer[l];
    const size_t col = L.off[l] + s->best_unit;
    size_t tab[3 * N_CLASSES];
    unit_table(&L, col, G->cls, tab);
    size_t cnt[3] = {0, 0, 0};
    for (size_t i = 0; i < G->n; i++) {
      const int k = L.k[i * L.nl + col] - 1;
      cnt[k]++;
      for (int a = 0; a < D; a++)
        mean[((size_t)l * 3 + (size_t)k) * D + (size_t)a] +=
            (float)G->pix[i * D + (size_t)a];
    }
    const int y = TOP + l * RH;
    char t[200];
    snprintf(t, sizeof t, "layer %d, unit %zu\npixel (%d, %d)\nARI %.3f",
             l + 1, s->best_unit + 1, s->best_pixel / SIDE,
             s->best_pixel % SIDE, s->ari_unit);
    if ((rc = plot_text(c, 16, y + 4, t, PLOT_BLACK, 2))) break;
    for (int k = 0; k < 3 && rc == 0; k++) {
      float *img = mean + ((size_t)l * 3 + (size_t)k) * D;
      for (int a = 0; a < D; a++) img[a] = cnt[k] ? img[a] / (float)cnt[k] : NAN;
      plot_panel p = {c, 230 + k * BW, y, TILE, TILE, 0, 1, 0, 1, 0};
      if ((rc = plot_image_grid(&p, 1, 1, 1, img, SIDE, SIDE,
                                (float)(LEVELS - 1), 0.0f)))
        break;
      /* the five largest classes of the group */
      char line1[64], line2[120];
      snprintf(line1, sizeof line1, "k=%d: %zu digits", k + 1, cnt[k]);
      int used[N_CLASSES] = {0}, u = 0;
      line2[0] = '\0';
      for (int r = 0; r < 5 && cnt[k]; r++) {
        int best = -1;
        for (int cl = 0; cl < N_CLASSES; cl++)
          if (!used[cl] && (best < 0 || tab[(size_t)k * N_CLASSES + (size_t)cl] >
                                            tab[(size_t)k * N_CLASSES +
                                                (size_t)best]))
            best = cl;
        used[best] = 1;
        const size_t nb = tab[(size_t)k * N_CLASSES + (size_t)best];
        if (nb == 0) break;
        u += snprintf(line2 + u, sizeof line2 - (size_t)u, "%s%d:%.0f%%",
                      r ? " " : "", best, 100.0 * (double)nb / (double)cnt[k]);
      }
      if ((rc = plot_text(c, 230 + k * BW + TILE + 12, y + 12, line1,
                          PLOT_BLACK, 2)) ||
          (rc = plot_text(c, 230 + k * BW + TILE + 12, y + 38, line2,
                          PLOT_DARK_GREY, 2)))
        break;
    }
  }
  if (rc == 0)
    rc = plot_text_centred(c, c->width / 2, 14,
                           "RAD (seed 1), all digits: per layer, the unit "
                           "whose label agrees best with the classes",
                           PLOT_BLACK, 2);
  if (rc == 0)
    rc = plot_text_centred(c, c->width / 2, 44,
                           "image: the mean digit given label k; text: how "
                           "many digits, and the largest classes (class:share)",
                           PLOT_DARK_GREY, 2);
  if (rc == 0) rc = save(c, cfg, "labels.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  if (have_l) labels_free(&L);
  free(xc);
  free(mean);
  plot_canvas_free(c);
  return rc;
}

/* ---- Scaling: cost of a training step against d ---------------------------- */

/* Seconds per step of rad_flow_fit on random data: one warm-up call, then
   3 timed calls of `steps` steps; the median and the minimum (the run
   least disturbed by other jobs) of the wall time, and the minimum of the
   process's CPU time. */
static int time_steps(rad_flow *f, const float *x, size_t n, size_t batch,
                      size_t threads, uint64_t steps, double *median,
                      double *min, double *cpu_min) {
  rad_fit_options *o = NULL;
  int rc = rad_fit_options_create(&o);
  if (rc) return rc;
  if ((rc = rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE, (double)batch)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_EVAL_EVERY, 0.0)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY, 0.0)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, 1e-4)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_THREADS, (double)threads)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_STEPS, 3.0)) ||
      (rc = rad_flow_fit(f, NULL, o, n, x, 0, NULL, NULL, NULL, NULL)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_STEPS, (double)steps))) {
    rad_fit_options_free(o);
    return rc;
  }
  double t[3];
  *cpu_min = INFINITY;
  for (int r = 0; r < 3 && rc == 0; r++) {
    const double t0 = now_seconds(), c0 = cpu_seconds();
    rc = rad_flow_fit(f, NULL, o, n, x, 0, NULL, NULL, NULL, NULL);
    t[r] = (now_seconds() - t0) / (double)steps;
    const double c = (cpu_seconds() - c0) / (double)steps;
    if (c < *cpu_min) *cpu_min = c;
  }
  rad_fit_options_free(o);
  if (rc) return rc;
  for (int i = 1; i < 3; i++) /* sort 3 */
    for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
      double s = t[j];
      t[j] = t[j - 1];
      t[j - 1] = s;
    }
  *median = t[1];
  *min = t[0];
  return RAD_OK;
}

/* CPU seconds per rad_flow_grad_ws call on one batch (1 thread), the
   minimum of 3 timed runs of `reps` calls after a warm-up. */
static int time_grad(const rad_flow *f, const float *x, size_t batch,
                     uint64_t reps, double *cpu_min) {
  rad_workspace *ws = NULL;
  float *g = malloc(rad_flow_num_params(f) * sizeof(float));
  int rc = g ? rad_workspace_create(f, batch, &ws) : RAD_ENOMEM;
  double mean, t[3];
  if (rc == RAD_OK) rc = rad_flow_grad_ws(f, ws, batch, x, g, &mean);
  for (int r = 0; r < 3 && rc == RAD_OK; r++) {
    const double c0 = cpu_seconds();
    for (uint64_t i = 0; i < reps && rc == RAD_OK; i++)
      rc = rad_flow_grad_ws(f, ws, batch, x, g, &mean);
    t[r] = (cpu_seconds() - c0) / (double)reps;
  }
  rad_workspace_free(ws);
  free(g);
  if (rc) return rc;
  *cpu_min = t[0];
  for (int i = 1; i < 3; i++)
    if (t[i] < *cpu_min) *cpu_min = t[i];
  return RAD_OK;
}

static int run_scaling(const config *cfg, size_t nvp_hidden) {
  static const size_t dims[] = {2, 16, 64, 256};
  enum { ND = sizeof dims / sizeof dims[0] };
  const uint64_t steps = cfg->quick ? 5 : 40;
  const size_t n = cfg->batch > 4096 ? cfg->batch : 4096;
  report R = {NULL};
  R.md = open_in_dir(cfg, "scaling.md");
  if (!R.md) return -1;
  float *x = malloc(n * 256 * sizeof(float));
  if (!x) {
    fclose(R.md);
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  uint64_t state = mix64(cfg->seed);
  for (size_t i = 0; i < n * 256; i++) x[i] = (float)rng_normal(&state);
  const char *env = getenv("OPENBLAS_NUM_THREADS");
  const double t0 = now_seconds();
  out(&R, "# rad-digits: cost of a training step against the dimension\n\n");
  out(&R,
      "rad_flow_fit on N(0, I) data (%zu rows), batch %zu, %zu coupling "
      "layers with the library's default alternating masks; RAD conditioner "
      "width %zu and gating width %zu, REAL NVP conditioner width %zu (the "
      "width matched to RAD at d = 64), the same at every d. Each entry: "
      "milliseconds per step (gradient of the batch plus the Adam update) "
      "over 3 timed runs of %llu steps after a warm-up: CPU time of the "
      "process (the least of the 3; with one thread this is the work "
      "done, unaffected by other jobs taking turns on the cores), and "
      "wall time, median [minimum]. OPENBLAS_NUM_THREADS=%s; load "
      "average %.2f at the start.\n\n",
      n, cfg->batch, cfg->layers, cfg->rad_hidden, cfg->rad_gate_hidden,
      nvp_hidden, (unsigned long long)steps, env ? env : "(unset)",
      load_average());
  out(&R, "| model | d | parameters | CPU ms/step, 1 thread | CPU us/step "
          "per dimension | ratio to the previous d | CPU ms, gradient only | "
          "wall ms/step, 1 thread | wall ms/step, 2 threads |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  int ret = 0;
  for (int kind = RAD_LAYER_RAD; kind <= RAD_LAYER_AFFINE && ret == 0;
       kind++) {
    double prev = NAN;
    for (int q = 0; q < ND && ret == 0; q++) {
      rad_flow *f = NULL;
      const size_t h = kind == RAD_LAYER_RAD ? cfg->rad_hidden : nvp_hidden;
      int rc = rad_flow_create(kind, dims[q], cfg->layers, h,
                               kind == RAD_LAYER_RAD ? cfg->rad_gate_hidden
                                                     : 0,
                               7, &f);
      double t1 = NAN, m1 = NAN, c1 = NAN, t2 = NAN, m2 = NAN, c2 = NAN,
             cg = NAN;
      if (rc == RAD_OK)
        rc = time_steps(f, x, n, cfg->batch, 1, steps, &t1, &m1, &c1);
      if (rc == RAD_OK) rc = time_grad(f, x, cfg->batch, steps, &cg);
      if (rc == RAD_OK)
        rc = time_steps(f, x, n, cfg->batch, 2, steps, &t2, &m2, &c2);
      if (rc) {
        fprintf(stderr, PROG ": scaling at d = %zu failed: %s\n", dims[q],
                rad_strerror(rc));
        ret = -1;
      } else {
        char ratio[32] = "";
        if (q > 0)
          snprintf(ratio, sizeof ratio, "%.2f (d x%zu)", c1 / prev,
                   dims[q] / dims[q - 1]);
        out(&R,
            "| %s | %zu | %zu | %.2f | %.1f | %s | %.2f | %.2f [%.2f] | "
            "%.2f [%.2f] |\n",
            kind == RAD_LAYER_RAD ? "RAD" : "REAL NVP", dims[q],
            rad_flow_num_params(f), 1e3 * c1, 1e6 * c1 / (double)dims[q],
            ratio, 1e3 * cg, 1e3 * t1, 1e3 * m1, 1e3 * t2, 1e3 * m2);
        prev = c1;
      }
      rad_flow_free(f);
    }
  }
  out(&R,
      "\nExpected: every dense layer costs O(d H) per sample (conditioner "
      "d/2 -> H -> 10 d/2 for RAD, 2 d/2 for REAL NVP; gate d -> G -> 3 d/2), "
      "the folds and the Adam update O(d) and O(parameters) = O(d (H + G)); "
      "so a step is a + b d for fixed widths, the constant a (biases, "
      "activations of width H, per-call overhead) dominating at small d. "
      "Linear cost shows as a time per dimension that levels off and "
      "ratios approaching the growth of d (8x, 4x, 4x); a quadratic cost "
      "would give ratios near 64, 16, 16. Load average %.2f at the end; "
      "%.0f s in all.\n",
      load_average(), now_seconds() - t0);
  free(x);
  if (fclose(R.md) != 0) {
    fprintf(stderr, PROG ": cannot write scaling.md\n");
    ret = -1;
  }
  return ret;
}

/* ---- main ------------------------------------------------------------------------- */

static int make_dirs(const char *dir) {
  size_t len = strlen(dir);
  char *p = malloc(len + 1);
  if (!p) {
    errno = ENOMEM;
    return -1;
  }
  memcpy(p, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    if (p[i - 1] == '/') continue;
    char keep = p[i];
    p[i] = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
      free(p);
      return -1;
    }
    p[i] = keep;
  }
  free(p);
  struct stat st;
  if (stat(dir, &st) != 0) return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  config cfg;
  int rc = parse_args(argc, argv, &cfg);
  if (rc < 0) return EXIT_OK;
  if (rc) return rc;
  if (make_dirs(cfg.out) != 0) {
    fprintf(stderr, PROG ": cannot create output directory '%s': %s\n",
            cfg.out, strerror(errno));
    return EXIT_RUNTIME;
  }
  const char *blas_env = getenv("OPENBLAS_NUM_THREADS");
  if (!blas_env || strcmp(blas_env, "1") != 0)
    fprintf(stderr,
            PROG ": note: OPENBLAS_NUM_THREADS is not 1; OpenBLAS's own "
            "threads can make these small products several times slower\n");

  experiment ex;
  memset(&ex, 0, sizeof ex);
  /* the models' sizes */
  {
    rad_flow *f;
    if ((rc = build_flow(&cfg, RAD_LAYER_RAD, cfg.rad_hidden, 1, &f))) {
      fprintf(stderr, PROG ": building the RAD flow failed: %s\n",
              rad_strerror(rc));
      return EXIT_RUNTIME;
    }
    ex.rad_params = rad_flow_num_params(f);
    rad_flow_free(f);
    if (cfg.nvp_hidden) {
      ex.nvp_hidden = cfg.nvp_hidden;
      if ((rc = build_flow(&cfg, RAD_LAYER_AFFINE, cfg.nvp_hidden, 1, &f))) {
        fprintf(stderr, PROG ": building the REAL NVP flow failed: %s\n",
                rad_strerror(rc));
        return EXIT_RUNTIME;
      }
      ex.nvp_params = rad_flow_num_params(f);
      rad_flow_free(f);
    } else if ((rc = matched_hidden(&cfg, ex.rad_params, &ex.nvp_hidden,
                                    &ex.nvp_params))) {
      fprintf(stderr, PROG ": building the REAL NVP flow failed: %s\n",
              rad_strerror(rc));
      return EXIT_RUNTIME;
    }
  }
  if (cfg.scaling) {
    const double t0 = now_seconds();
    int e = run_scaling(&cfg, ex.nvp_hidden);
    fprintf(stderr, "scaling: %.0f s\n", now_seconds() - t0);
    return e ? EXIT_RUNTIME : EXIT_OK;
  }

  digits G;
  if (read_digits(cfg.data, &G)) return EXIT_RUNTIME;
  int status = EXIT_RUNTIME;
  report R = {NULL};
  split *splits = calloc(cfg.seeds, sizeof *splits);
  ex.res = calloc(cfg.seeds, sizeof *ex.res);
  if (!splits || !ex.res) {
    fprintf(stderr, PROG ": out of memory\n");
    goto done;
  }
  for (size_t r = 0; r < cfg.seeds; r++)
    if (make_split(&G, derive_seed(cfg.seed, r, STREAM_SPLIT), &splits[r]))
      goto done;
  ex.split0 = splits[0];
  ex.n_test = splits[0].n[S_TEST];

  const double load0 = load_average();
  const double t0 = now_seconds(), c0 = cpu_seconds();
  for (size_t r = 0; r < cfg.seeds; r++) {
    fprintf(stderr, "seed %zu of %zu\n", r + 1, cfg.seeds);
    if (run_replicate(&cfg, &G, &splits[r], r, &ex)) goto done;
  }
  const double elapsed = now_seconds() - t0, cpu = cpu_seconds() - c0;

  R.md = open_in_dir(&cfg, "results.md");
  if (!R.md) goto done;
  out(&R, "# rad-digits results\n\n");
  out(&R,
      "Data: %s: %zu digits, 8x8 pixel counts 0..16 (classes 0..9: %zu %zu "
      "%zu %zu %zu %zu %zu %zu %zu %zu). E. Alpaydin and C. Kaynak, UCI "
      "Optical Recognition of Handwritten Digits, CC BY 4.0.\n",
      cfg.data, G.n, G.per_class[0], G.per_class[1], G.per_class[2],
      G.per_class[3], G.per_class[4], G.per_class[5], G.per_class[6],
      G.per_class[7], G.per_class[8], G.per_class[9]);
  out(&R,
      "Splits: per seed, a seeded shuffle of each class's digits cut "
      "70/15/15 (stratified by class): train %zu, validation %zu, test "
      "%zu.\n",
      splits[0].n[S_TRAIN], splits[0].n[S_VAL], splits[0].n[S_TEST]);
  out(&R,
      "Dequantization: x = (pixel + u) / 17, u ~ U[0, 1)^64; training rows "
      "get fresh noise every %llu steps (%llu rows per period, each used "
      "once); validation %d and test %zu fixed noise draws per digit. "
      "Bits/dim = -(log p(x) - 64 ln 17) / (64 ln 2).\n",
      (unsigned long long)cfg.eval_every,
      (unsigned long long)(cfg.eval_every * cfg.batch > MAX_CHUNK_ROWS
                               ? MAX_CHUNK_ROWS
                               : cfg.eval_every * cfg.batch),
      VAL_DRAWS, cfg.test_draws);
  {
    double v[MAX_SEEDS], m, s;
    size_t fl = 0;
    for (size_t i = 0; i < cfg.seeds; i++) {
      v[i] = (double)ex.res[i].constant_pixels;
      fl += ex.res[i].floored_pixels;
    }
    mean_std(v, cfg.seeds, &m, &s);
    out(&R,
        "Standardization: each pixel by the dequantized training split's "
        "mean and standard deviation (closed form); %.1f pixels (mean over "
        "seeds) are constant in the training split and get the noise's "
        "standard deviation 1/(17 sqrt 12) = %.4f; the floor %g bound %zu "
        "times.\n",
        m, 1.0 / (17.0 * sqrt(12.0)), (double)STD_FLOOR, fl);
  }
  out(&R,
      "Models: %zu coupling layers, %s masks; RAD conditioner width %zu, "
      "gating width %zu (%zu parameters); REAL NVP conditioner width %zu "
      "(%zu parameters, %+.2f%% of RAD's)%s; Gaussian with full covariance, "
      "maximum likelihood for the dequantized training split (the pixel "
      "covariance / 17^2 plus the noise variance 1/(12 17^2) on the "
      "diagonal; no other ridge).\n",
      cfg.layers, MASK_NAME[cfg.masks], cfg.rad_hidden, cfg.rad_gate_hidden,
      ex.rad_params, ex.nvp_hidden, ex.nvp_params,
      100.0 * ((double)ex.nvp_params - (double)ex.rad_params) /
          (double)ex.rad_params,
      cfg.nvp_hidden ? "" : ", the width closest to RAD's parameter count");
  out(&R,
      "Training: rad_flow_fit, Adam lr %g with a cosine decay to 1%% over "
      "%llu steps, batch %zu, validation every %llu steps, the best "
      "validation parameters kept; %zu thread%s (RAD_OPTION_THREADS), "
      "OPENBLAS_NUM_THREADS=%s. Base seed %llu, %zu seed%s (`" PROG
      " --seed %llu --seeds %zu --steps %llu --masks %s --threads %zu`%s). "
      "Wall time %.0f s, CPU time %.0f s (load average %.2f at the "
      "start, %.2f at the end).\n",
      cfg.lr, (unsigned long long)cfg.steps, cfg.batch,
      (unsigned long long)cfg.eval_every, cfg.threads,
      cfg.threads == 1 ? "" : "s", blas_env ? blas_env : "(unset)",
      (unsigned long long)cfg.seed, cfg.seeds, cfg.seeds == 1 ? "" : "s",
      (unsigned long long)cfg.seed, cfg.seeds, (unsigned long long)cfg.steps,
      MASK_NAME[cfg.masks], cfg.threads, cfg.quick ? ", --quick" : "",
      elapsed, cpu, load0, load_average());
  out(&R, "\n## Held-out bits per dimension\n\n");
  report_bpd(&R, &cfg, &ex);
  out(&R, "\n## RAD's labels and the digit classes\n\n");
  report_labels(&R, &cfg, &G, &ex);
  if (cfg.plots)
    out(&R, "\n## Pictures\n\nsamples.png (real test digits, RAD, REAL NVP "
            "and Gaussian samples), labels.png (per layer, mean digit of "
            "each label of the best-agreeing unit); seed 1's models.\n");
  status = EXIT_OK;
  if (fclose(R.md) != 0) {
    fprintf(stderr, PROG ": cannot write results.md\n");
    status = EXIT_RUNTIME;
  }
  R.md = NULL;
  fflush(stdout);
  if (cfg.plots) {
    int e = figure_samples(&cfg, &G, &ex) != 0;
    e |= figure_labels(&cfg, &G, &ex) != 0;
    if (e) status = EXIT_RUNTIME;
  }

done:
  if (R.md) fclose(R.md);
  if (splits)
    for (size_t r = 0; r < cfg.seeds; r++) split_free(&splits[r]);
  free(splits);
  free(ex.res);
  rad_flow_free(ex.rad0);
  rad_flow_free(ex.nvp0);
  digits_free(&G);
  return status;
}
