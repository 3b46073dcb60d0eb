/*
 * rad-penguins: RAD flows on real data, the Palmer penguins.
 *
 * Reads examples/data/penguins.csv (344 birds of three species; rows with a
 * missing measurement are skipped and counted) and, on several seeded
 * train / validation / test splits (60/20/20, stratified by species), fits
 * three density models to two problems:
 *
 *   2-D: bill length and bill depth (mm);
 *   4-D: bill length, bill depth, flipper length (mm) and body mass (g).
 *
 * Models: a RAD flow (RAD_LAYER_RAD coupling layers; default 4 layers,
 * conditioner and gating widths 8), a REAL NVP flow (RAD_LAYER_AFFINE
 * layers, conditioner width chosen so that its parameter count is the
 * closest to RAD's) and a single Gaussian with full covariance (maximum
 * likelihood on the training split, closed form). As a reference
 * that uses the species labels, a mixture of three Gaussians, one per
 * species, fitted on the training split with the labels (no EM), is also
 * evaluated. The flows carry the training split's mean and standard
 * deviation as their standardization (rad_flow_set_standardization), so all
 * log-likelihoods are in the data's own units: nats per penguin, densities
 * per mm (and per g).
 *
 * The flows are trained with rad_flow_fit on the training split, evaluated
 * on the validation split every few steps and ended at their best
 * validation parameters (RAD_OPTION_KEEP_BEST); the numbers reported are
 * on the test split, which nothing was chosen with.
 *
 * The measurements are recorded on a grid (0.1 mm, 1 mm, 25 g), so every
 * model is also evaluated on test rows moved uniformly within their
 * recording cell ("test, jittered"): a model that put mass on the grid
 * loses there. --dequantize trains and validates on such jittered copies.
 *
 * Then the discrete latent labels of RAD (rad_flow_forward's k) are
 * compared with the species on all complete rows: the labels of the last
 * layer (a component id over that layer's folded units), the joint labels
 * of all layers, each layer's labels and those of layers 1..l jointly, as
 * contingency tables and adjusted Rand indices (Hubert and Arabie, 1985).
 * Pictures (plot.h) show seed 1's 2-D densities and labels.
 *
 * Seeds. For base seed S, replicate r (0 .. seeds-1), problem dimension D
 * (0 for the split, which both problems share) and stream s,
 * seed = M(M(M(M(S) ^ r) ^ D) ^ s), M the splitmix64 output mix of its
 * argument plus the golden-ratio increment (a bijection). Streams: 1 the
 * split, 2 / 3 RAD / REAL NVP initial parameters, 4 / 5 their minibatch
 * order (low 53 bits), 6 / 7 / 8 the jittered copies of the train /
 * validation / test rows.
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

#include "plot.h"

#define PROG "rad-penguins"

static const double PI = 3.14159265358979323846;

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define N_SPECIES 3
#define N_COLS 4
static const char *const SPECIES[N_SPECIES] = {"Adelie", "Chinstrap",
                                               "Gentoo"};
/* Tableau palette entries (plot_colour_categorical) of the species:
   orange, purple, cyan, close to the palmerpenguins colours. */
static const int SPECIES_COLOUR[N_SPECIES] = {1, 4, 9};
static const char *const COLUMN[N_COLS] = {
    "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"};
static const char *const COLUMN_LABEL[N_COLS] = {
    "bill length (mm)", "bill depth (mm)", "flipper length (mm)",
    "body mass (g)"};

enum { M_RAD, M_NVP, M_GAUSS, M_MIX, N_MODELS };
static const char *const MODEL_TITLE[N_MODELS] = {
    "RAD", "REAL NVP", "Gaussian (full covariance)",
    "3 Gaussians, one per species*"};
enum { S_TRAIN, S_VAL, S_TEST, N_SPLITS };
static const double SPLIT_FRACTION[N_SPLITS] = {0.6, 0.2, 0.2};

enum {
  STREAM_SPLIT = 1,
  STREAM_INIT = 2, /* + 0 RAD, + 1 REAL NVP */
  STREAM_FIT = 4,  /* + 0 RAD, + 1 REAL NVP */
  STREAM_JITTER = 6
};

/* Jittered copies of each test row for the resolution check. */
#define N_JITTER 20

#define N_PROBLEMS 2
static const int PROBLEM_DIM[N_PROBLEMS] = {2, 4};

#define MAX_SEEDS 1000
#define MAX_LAYERS 20 /* 4-D joint labels: 2 per layer, base-3 in 64 bits */
#define MAX_HIDDEN 4096
#define MAX_STEPS 9007199254740992ull /* 2^53 */

/* ---- Configuration ------------------------------------------------------ */

typedef struct config {
  const char *data, *out;
  uint64_t seed, steps, eval_every;
  size_t seeds, layers, rad_hidden, rad_gate_hidden, nvp_hidden, batch;
  double lr;
  int quick, plots, dequantize;
} config;

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: " PROG " [OPTIONS]\n"
      "\n"
      "Fits RAD, REAL NVP and a Gaussian to the Palmer penguins (2-D: bill\n"
      "length and depth; 4-D: bill length, bill depth, flipper length, body\n"
      "mass) on seeded 60/20/20 train/validation/test splits stratified by\n"
      "species, reports the test log-likelihoods (nats per penguin) over the\n"
      "seeds, compares RAD's discrete labels with the species (contingency\n"
      "tables, adjusted Rand index) and draws pictures.\n"
      "\n"
      "  --data PATH          the CSV file (default examples/data/penguins.csv)\n"
      "  --out DIR            output directory, created if missing (default\n"
      "                       penguins-out)\n"
      "  --seed S             base seed, 0 .. 2^64-1 (default 1)\n"
      "  --seeds N            replicates (splits and initializations), 1 .. %d\n"
      "                       (default 10)\n"
      "  --steps N            Adam steps per fit (default 3000)\n"
      "  --quick              a fast check: 300 steps, 2 replicates, unless\n"
      "                       --steps / --seeds are given\n"
      "\n"
      "  --layers L           coupling layers of both flows, 1 .. %d (default 4)\n"
      "  --rad-hidden H       RAD conditioner width (default 8)\n"
      "  --rad-gate-hidden G  RAD gating network width (default 8)\n"
      "  --realnvp-hidden H   REAL NVP conditioner width (default: the width\n"
      "                       whose parameter count is closest to RAD's)\n"
      "  --lr X               Adam learning rate (default 1e-3)\n"
      "  --batch B            minibatch size (default 64)\n"
      "  --eval-every N       validation period in steps (default 20)\n"
      "  --dequantize         train and validate on the rows moved uniformly\n"
      "                       within their recording resolution (%d jittered\n"
      "                       copies of each row)\n"
      "  --no-plots           draw no pictures\n"
      "  --help               this text\n"
      "  Options take their value as the next argument or after '='.\n"
      "\n"
      "Output: the report on stdout (progress on stderr); in DIR:\n"
      "results.md (the same report), and unless --no-plots\n"
      "rad_2d_species.png, rad_2d_labels.png, density_2d_compare.png,\n"
      "rad_4d_labels.png.\n"
      "\n"
      "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
      MAX_SEEDS, MAX_LAYERS, N_JITTER);
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
  cfg->data = "examples/data/penguins.csv";
  cfg->out = "penguins-out";
  cfg->seed = 1;
  cfg->seeds = 0; /* 0: default, set below */
  cfg->steps = 0;
  cfg->eval_every = 20;
  cfg->layers = 4;
  cfg->rad_hidden = 8;
  cfg->rad_gate_hidden = 8;
  cfg->nvp_hidden = 0; /* matched */
  cfg->batch = 64;
  cfg->lr = 1e-3;
  cfg->plots = 1;

  static const char *const with_value[] = {
      "--data",   "--out",          "--seed",           "--seeds",
      "--steps",  "--layers",       "--rad-hidden",     "--rad-gate-hidden",
      "--realnvp-hidden", "--lr",   "--batch",          "--eval-every"};
  const size_t n_with_value = sizeof with_value / sizeof with_value[0];
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
    if (strcmp(arg, "--dequantize") == 0) {
      cfg->dequantize = 1;
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
      static const char *const flags[] = {"--quick", "--no-plots",
                                          "--dequantize", "--help"};
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
      rc = parse_size(name, val, 1, 1000000, &cfg->batch);
    } else if (strcmp(name, "--eval-every") == 0) {
      rc = parse_u64(name, val, 1, MAX_STEPS, &cfg->eval_every);
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
  if (cfg->steps == 0) cfg->steps = cfg->quick ? 300 : 3000;
  if (cfg->seeds == 0) cfg->seeds = cfg->quick ? 2 : 10;
  return 0;
}

/* ---- Seeds and a small generator ----------------------------------------- */

static uint64_t mix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t derive_seed(uint64_t base, size_t rep, int dim, int stream) {
  return mix64(mix64(mix64(mix64(base) ^ (uint64_t)rep) ^ (uint64_t)dim) ^
               (uint64_t)stream);
}

/* splitmix64 as a stream: state += increment, output = mix. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform in [0, m), m >= 1, without modulo bias. */
static size_t rng_below(uint64_t *state, size_t m) {
  const uint64_t lim = UINT64_MAX - UINT64_MAX % (uint64_t)m;
  uint64_t r;
  do r = rng_next(state);
  while (r >= lim);
  return (size_t)(r % (uint64_t)m);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- The CSV file --------------------------------------------------------- */

typedef struct penguins {
  size_t n;        /* complete rows */
  float *x;        /* n x 4, the columns of COLUMN */
  int *species;    /* n, index into SPECIES */
  size_t rows;     /* data rows in the file */
  size_t skipped;  /* rows with a missing measurement */
  size_t per_species[N_SPECIES];
  double unit[N_COLS]; /* recording resolution of each column */
} penguins;

static void penguins_free(penguins *P) {
  free(P->x);
  free(P->species);
  memset(P, 0, sizeof *P);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, PROG ": cannot open '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    if (cap > ((size_t)1 << 30)) { /* 1 GiB: not a penguin file */
      fprintf(stderr, PROG ": '%s' is too large\n", path);
      free(buf);
      buf = NULL;
      break;
    }
    char *nb = realloc(buf, 2 * cap + 1);
    if (!nb) {
      free(buf);
      buf = NULL;
      fprintf(stderr, PROG ": out of memory reading '%s'\n", path);
      break;
    }
    buf = nb;
    cap *= 2;
  }
  if (buf && ferror(f)) {
    fprintf(stderr, PROG ": cannot read '%s'\n", path);
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) {
    buf[n] = '\0';
    *len = n;
  }
  return buf;
}

/* Splits a line (modified in place) at commas; returns the field count or
   -1 if there are more than max. */
static int split_fields(char *line, char **fields, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    if (n == max) return -1;
    fields[n++] = p;
    char *c = strchr(p, ',');
    if (!c) break;
    *c = '\0';
    p = c + 1;
  }
  return n;
}

/* Strips surrounding blanks in place. */
static char *trim(char *s) {
  while (*s == ' ' || *s == '\t') s++;
  size_t l = strlen(s);
  while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t')) s[--l] = '\0';
  return s;
}

/* A self-contained reader for the penguin CSV: a header row naming the
   columns (any order, extra columns ignored), comma-separated fields
   without quotes, LF or CRLF line ends. A row with an empty (or "NA")
   measurement is skipped and counted; anything else malformed is an
   error. */
static int read_penguins(const char *path, penguins *P) {
  memset(P, 0, sizeof *P);
  size_t len;
  char *buf = read_file(path, &len);
  if (!buf) return -1;
  if (strlen(buf) != len) {
    fprintf(stderr, PROG ": '%s': NUL byte in the file\n", path);
    free(buf);
    return -1;
  }
  enum { MAXF = 64 };
  char *f[MAXF];
  int col[N_COLS], col_species = -1, n_header = 0;
  size_t cap = 0, line_no = 0;
  int rc = -1;
  char *line = buf;
  if ((unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB &&
      (unsigned char)line[2] == 0xBF)
    line += 3; /* UTF-8 byte order mark */
  while (line && *line) {
    char *nl = strchr(line, '\n');
    char *next = nl ? nl + 1 : NULL;
    if (nl) *nl = '\0';
    line_no++;
    size_t l = strlen(line);
    if (l > 0 && line[l - 1] == '\r') line[--l] = '\0';
    if (*trim(line) == '\0') {
      line = next;
      continue;
    }
    if (strchr(line, '"')) {
      fprintf(stderr, PROG ": %s:%zu: quoted fields are not supported\n",
              path, line_no);
      goto done;
    }
    int nf = split_fields(line, f, MAXF);
    if (nf < 0) {
      fprintf(stderr, PROG ": %s:%zu: more than %d fields\n", path, line_no,
              MAXF);
      goto done;
    }
    if (n_header == 0) { /* the header */
      n_header = nf;
      for (int j = 0; j < N_COLS; j++) col[j] = -1;
      for (int i = 0; i < nf; i++) {
        const char *name = trim(f[i]);
        if (strcmp(name, "species") == 0) col_species = i;
        for (int j = 0; j < N_COLS; j++)
          if (strcmp(name, COLUMN[j]) == 0) col[j] = i;
      }
      if (col_species < 0) {
        fprintf(stderr, PROG ": %s: no 'species' column in the header\n",
                path);
        goto done;
      }
      for (int j = 0; j < N_COLS; j++)
        if (col[j] < 0) {
          fprintf(stderr, PROG ": %s: no '%s' column in the header\n", path,
                  COLUMN[j]);
          goto done;
        }
      line = next;
      continue;
    }
    if (nf != n_header) {
      fprintf(stderr, PROG ": %s:%zu: %d fields, the header has %d\n", path,
              line_no, nf, n_header);
      goto done;
    }
    P->rows++;
    const char *sp = trim(f[col_species]);
    int s = -1;
    for (int k = 0; k < N_SPECIES; k++)
      if (strcmp(sp, SPECIES[k]) == 0) s = k;
    if (s < 0) {
      fprintf(stderr, PROG ": %s:%zu: unknown species '%s'\n", path, line_no,
              sp);
      goto done;
    }
    float v[N_COLS];
    int missing = 0;
    for (int j = 0; j < N_COLS; j++) {
      const char *t = trim(f[col[j]]);
      if (*t == '\0' || strcmp(t, "NA") == 0) {
        missing = 1;
        continue;
      }
      char *end;
      errno = 0;
      double d = strtod(t, &end);
      if (end == t || *end != '\0' || errno == ERANGE || !isfinite(d) ||
          !(d > 0.0) || d > 1e7) {
        fprintf(stderr, PROG ": %s:%zu: %s: '%s' is not a positive number\n",
                path, line_no, COLUMN[j], t);
        goto done;
      }
      v[j] = (float)d;
    }
    if (missing) {
      P->skipped++;
      line = next;
      continue;
    }
    if (P->n == cap) {
      size_t nc = cap ? 2 * cap : 256;
      float *nx = realloc(P->x, nc * N_COLS * sizeof(float));
      if (nx) P->x = nx;
      int *ns = realloc(P->species, nc * sizeof(int));
      if (ns) P->species = ns;
      if (!nx || !ns) {
        fprintf(stderr, PROG ": out of memory reading '%s'\n", path);
        goto done;
      }
      cap = nc;
    }
    memcpy(P->x + P->n * N_COLS, v, sizeof v);
    P->species[P->n] = s;
    P->per_species[s]++;
    P->n++;
    line = next;
  }
  if (n_header == 0) {
    fprintf(stderr, PROG ": %s: empty file\n", path);
    goto done;
  }
  for (int k = 0; k < N_SPECIES; k++)
    if (P->per_species[k] < 10) {
      fprintf(stderr, PROG ": %s: only %zu complete rows of %s (need 10)\n",
              path, P->per_species[k], SPECIES[k]);
      goto done;
    }
  /* the resolution: the largest of these units that every value of the
     column is a whole multiple of */
  for (int j = 0; j < N_COLS; j++) {
    static const double units[] = {100, 50, 25, 10, 5, 1, 0.5, 0.1, 0.01};
    P->unit[j] = 0.0;
    for (size_t u = 0; u < sizeof units / sizeof units[0] && P->unit[j] == 0.0;
         u++) {
      int all = 1;
      for (size_t i = 0; i < P->n && all; i++) {
        double q = P->x[i * N_COLS + (size_t)j] / units[u];
        all = fabs(q - floor(q + 0.5)) < 1e-3;
      }
      if (all) P->unit[j] = units[u];
    }
  }
  rc = 0;
done:
  free(buf);
  if (rc) penguins_free(P);
  return rc;
}

/* ---- Splits ---------------------------------------------------------------- */

typedef struct split {
  size_t n[N_SPLITS];
  size_t *idx[N_SPLITS]; /* row indices into the data */
} split;

static void split_free(split *s) {
  for (int k = 0; k < N_SPLITS; k++) free(s->idx[k]);
  memset(s, 0, sizeof *s);
}

/* Stratified by species: each species' rows are shuffled (Fisher-Yates,
   seeded) and cut 60/20/20 (rounded; test takes the rest). */
static int make_split(const penguins *P, uint64_t seed, split *sp) {
  memset(sp, 0, sizeof *sp);
  size_t *rows = malloc(P->n * sizeof(size_t));
  for (int k = 0; k < N_SPLITS; k++) sp->idx[k] = malloc(P->n * sizeof(size_t));
  if (!rows || !sp->idx[0] || !sp->idx[1] || !sp->idx[2]) {
    free(rows);
    split_free(sp);
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  uint64_t state = seed;
  for (int s = 0; s < N_SPECIES; s++) {
    size_t m = 0;
    for (size_t i = 0; i < P->n; i++)
      if (P->species[i] == s) rows[m++] = i;
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

/* copies jittered copies of x (n x d): row i of copy c is x_i + (u - 1/2)
   unit, u uniform in [0, 1)^d, at out[(c n + i) d ..]. */
static void jitter(const float *x, size_t n, int d, const double *unit,
                   size_t copies, uint64_t seed, float *out) {
  uint64_t state = seed;
  for (size_t c = 0; c < copies; c++)
    for (size_t i = 0; i < n; i++)
      for (int j = 0; j < d; j++) {
        const double u = (double)(rng_next(&state) >> 11) * 0x1p-53;
        out[(c * n + i) * (size_t)d + (size_t)j] =
            (float)(x[i * (size_t)d + (size_t)j] + (u - 0.5) * unit[j]);
      }
}

/* The first d columns of the rows idx into x (n x d). */
static void gather(const penguins *P, const size_t *idx, size_t n, int d,
                   float *x) {
  for (size_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[i * (size_t)d + (size_t)j] =
        P->x[idx[i] * N_COLS + (size_t)j];
}

/* ---- Gaussians (closed form, double precision) ------------------------------ */

typedef struct gauss {
  int d;
  double mu[N_COLS];
  double L[N_COLS * N_COLS]; /* Cholesky factor of the covariance */
  double log_norm;           /* -d/2 log 2 pi - 1/2 log det */
} gauss;

/* Maximum likelihood: mean and covariance (divided by n) of x (n x d).
   -1 if the covariance is not positive definite. */
static int gauss_fit(const float *x, size_t n, int d, gauss *g) {
  memset(g, 0, sizeof *g);
  g->d = d;
  double C[N_COLS * N_COLS] = {0};
  for (size_t i = 0; i < n; i++)
    for (int a = 0; a < d; a++) g->mu[a] += x[i * (size_t)d + (size_t)a];
  for (int a = 0; a < d; a++) g->mu[a] /= (double)n;
  for (size_t i = 0; i < n; i++)
    for (int a = 0; a < d; a++)
      for (int b = 0; b < d; b++)
        C[a * d + b] += (x[i * (size_t)d + (size_t)a] - g->mu[a]) *
                        (x[i * (size_t)d + (size_t)b] - g->mu[b]);
  for (int a = 0; a < d * d; a++) C[a] /= (double)n;
  double logdet = 0.0;
  for (int j = 0; j < d; j++) {
    double s = C[j * d + j];
    for (int k = 0; k < j; k++) s -= g->L[j * d + k] * g->L[j * d + k];
    if (!(s > 0.0)) return -1;
    g->L[j * d + j] = sqrt(s);
    logdet += 2.0 * log(g->L[j * d + j]);
    for (int i = j + 1; i < d; i++) {
      double t = C[i * d + j];
      for (int k = 0; k < j; k++) t -= g->L[i * d + k] * g->L[j * d + k];
      g->L[i * d + j] = t / g->L[j * d + j];
    }
  }
  g->log_norm = -0.5 * d * log(2.0 * PI) - 0.5 * logdet;
  return 0;
}

static double gauss_log_pdf(const gauss *g, const float *x) {
  const int d = g->d;
  double y[N_COLS], q = 0.0;
  for (int i = 0; i < d; i++) { /* solve L y = x - mu */
    double t = x[i] - g->mu[i];
    for (int k = 0; k < i; k++) t -= g->L[i * d + k] * y[k];
    y[i] = t / g->L[i * d + i];
    q += y[i] * y[i];
  }
  return g->log_norm - 0.5 * q;
}

/* The reference that uses the labels: one Gaussian per species, weighted
   by the species' share of the training split. */
typedef struct species_mix {
  gauss g[N_SPECIES];
  double log_w[N_SPECIES];
} species_mix;

static int mix_fit(const float *x, const int *species, size_t n, int d,
                   species_mix *m) {
  float *xs = malloc(n * (size_t)d * sizeof(float));
  if (!xs) return -1;
  int rc = 0;
  for (int s = 0; s < N_SPECIES && rc == 0; s++) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
      if (species[i] == s) {
        memcpy(xs + k * (size_t)d, x + i * (size_t)d, (size_t)d * sizeof(float));
        k++;
      }
    if (k <= (size_t)d) rc = -1;
    else rc = gauss_fit(xs, k, d, &m->g[s]);
    m->log_w[s] = log((double)k / (double)n);
  }
  free(xs);
  return rc;
}

static double mix_log_pdf(const species_mix *m, const float *x) {
  double l[N_SPECIES], mx = -INFINITY, s = 0.0;
  for (int k = 0; k < N_SPECIES; k++) {
    l[k] = m->log_w[k] + gauss_log_pdf(&m->g[k], x);
    if (l[k] > mx) mx = l[k];
  }
  for (int k = 0; k < N_SPECIES; k++) s += exp(l[k] - mx);
  return mx + log(s);
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
   sums. M = E only when both partitions are the same trivial one (all in
   one block, or all singletons): the index is then 1. */
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

/* A partition of n rows by a tuple of cnt labels per row, taken from
   k[i * nl + off .. off + cnt - 1]: each distinct tuple is one block.
   Blocks are numbered in increasing tuple order (base-3 code, first label
   most significant). */
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
  p->n = n;
  p->cnt = cnt;
  uint64_t *code = malloc((n ? n : 1) * sizeof(uint64_t));
  p->block = malloc((n ? n : 1) * sizeof(size_t));
  if (!code || !p->block) {
    free(code);
    partition_free(p);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t c = 0;
    for (size_t j = 0; j < cnt; j++)
      c = 3 * c + (uint64_t)(k[i * nl + off + j] - 1);
    code[i] = c;
  }
  uint64_t *sorted = malloc((n ? n : 1) * sizeof(uint64_t));
  if (!sorted) {
    free(code);
    partition_free(p);
    return -1;
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

/* "k=2" for one label, "(1,3)" for a tuple of cnt labels (cnt <= 40). */
static void code_name(uint64_t c, size_t cnt, char *buf, size_t len) {
  int digit[64];
  for (size_t j = cnt; j-- > 0;) {
    digit[j] = (int)(c % 3) + 1;
    c /= 3;
  }
  if (cnt == 1) {
    snprintf(buf, len, "k=%d", digit[0]);
    return;
  }
  size_t u = 0;
  buf[u++] = '(';
  for (size_t j = 0; j < cnt && u + 3 < len; j++) {
    if (j) buf[u++] = ',';
    buf[u++] = (char)('0' + digit[j]);
  }
  buf[u++] = ')';
  buf[u] = '\0';
}

static void block_name(const partition *p, size_t b, char *buf, size_t len) {
  code_name(p->codes[b], p->cnt, buf, len);
}

/* Rows x species table (n_blocks x N_SPECIES), caller frees. */
static size_t *contingency(const partition *p, const int *species) {
  size_t *t = calloc(p->n_blocks * N_SPECIES, sizeof(size_t));
  if (!t) return NULL;
  for (size_t i = 0; i < p->n; i++)
    t[p->block[i] * N_SPECIES + (size_t)species[i]]++;
  return t;
}

/* ---- The report (stdout and results.md) ---------------------------------- */

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

/* ---- Experiments ----------------------------------------------------------- */

typedef struct rep_result {
  double ll[N_MODELS][N_SPLITS]; /* mean log-likelihood, nats per penguin */
  double ll_jit[N_MODELS];       /* test rows moved uniformly within their
                                    recording resolution */
  double worst[N_MODELS];        /* lowest log p of a test row */
  uint64_t best_step[2];         /* RAD, REAL NVP: step of the kept params */
  uint64_t steps_done[2];
  double seconds[2];
  double ari_layer[MAX_LAYERS];   /* labels of layer l alone */
  double ari_prefix[MAX_LAYERS];  /* labels of layers 0 .. l jointly */
  size_t blocks_layer[MAX_LAYERS], blocks_prefix[MAX_LAYERS];
} rep_result;

typedef struct problem {
  int dim;
  size_t rad_params, nvp_params, nvp_hidden;
  rep_result *res;   /* per replicate */
  rad_flow *rad0;    /* replicate 0's fitted flows, for tables and plots */
  rad_flow *nvp0;
  gauss gauss0;
} problem;

typedef struct track {
  uint64_t best_step;
  double best_ll;
} track;

static int track_callback(void *user, uint64_t step, double train_ll,
                          double heldout_ll) {
  (void)train_ll;
  track *t = user;
  if (heldout_ll > t->best_ll) { /* as KEEP_BEST: strictly better */
    t->best_ll = heldout_ll;
    t->best_step = step;
  }
  return 0;
}

static int mean_log_prob(const rad_flow *flow, size_t n, const float *x,
                         double *mean, double *min) {
  float *lp = malloc((n ? n : 1) * sizeof(float));
  if (!lp) return RAD_ENOMEM;
  int rc = rad_flow_log_prob(flow, n, x, lp);
  if (rc == RAD_OK) {
    double s = 0.0, lo = INFINITY;
    for (size_t i = 0; i < n; i++) {
      s += lp[i];
      if (lp[i] < lo) lo = lp[i];
    }
    *mean = s / (double)n;
    if (min) *min = lo;
  }
  free(lp);
  return rc;
}

/* The conditioner width of an affine flow whose parameter count is the
   closest to target (the smaller width on a tie). */
static int matched_hidden(int dim, size_t layers, size_t target,
                          size_t *hidden, size_t *params) {
  size_t best_h = 1, best_p = 0;
  for (size_t h = 1; h <= MAX_HIDDEN; h++) {
    rad_flow *f;
    int rc = rad_flow_create(RAD_LAYER_AFFINE, (size_t)dim, layers, h, 0, 1,
                             &f);
    if (rc) return rc;
    size_t p = rad_flow_num_params(f);
    rad_flow_free(f);
    if (h == 1 || (p > target ? p - target : target - p) <
                      (best_p > target ? best_p - target : target - best_p)) {
      best_h = h;
      best_p = p;
    }
    if (p >= target) break;
  }
  *hidden = best_h;
  *params = best_p;
  return RAD_OK;
}

/* Creates, standardizes and fits one flow; *out receives it. */
static int fit_flow(const config *cfg, int kind, int dim, size_t hidden,
                    uint64_t init_seed, uint64_t fit_seed, const float *mean,
                    const float *sd, size_t n_train, const float *train,
                    size_t n_val, const float *val, rad_flow **out,
                    uint64_t *best_step, uint64_t *steps_done) {
  *out = NULL;
  rad_flow *flow = NULL;
  rad_fit_options *o = NULL;
  const char *what = "rad_flow_create";
  int rc = rad_flow_create(kind, (size_t)dim, cfg->layers, hidden,
                           kind == RAD_LAYER_RAD ? cfg->rad_gate_hidden : 0,
                           init_seed, &flow);
  if (rc) goto fail;
  what = "rad_flow_set_standardization";
  if ((rc = rad_flow_set_standardization(flow, mean, sd, (size_t)dim)))
    goto fail;
  what = "rad_flow_set_column_names";
  if ((rc = rad_flow_set_column_names(flow, COLUMN, (size_t)dim))) goto fail;
  what = "rad_fit_options";
  if ((rc = rad_fit_options_create(&o))) goto fail;
  if ((rc = rad_fit_options_set(o, RAD_OPTION_STEPS, (double)cfg->steps)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_BATCH_SIZE,
                                (double)cfg->batch)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_LEARNING_RATE, cfg->lr)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_SEED,
                                (double)(fit_seed & ((1ull << 53) - 1)))) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_EVAL_EVERY,
                                (double)cfg->eval_every)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_REPORT_EVERY,
                                (double)cfg->eval_every)) ||
      (rc = rad_fit_options_set(o, RAD_OPTION_KEEP_BEST, 1.0)))
    goto fail;
  track t = {0, -INFINITY};
  what = "rad_flow_fit";
  if ((rc = rad_flow_fit(flow, NULL, o, n_train, train, n_val, val,
                         track_callback, &t, steps_done)))
    goto fail;
  rad_fit_options_free(o);
  *best_step = t.best_step;
  *out = flow;
  return 0;
fail:
  fprintf(stderr, PROG ": %s failed: %s (status %d)\n", what,
          rad_strerror(rc), rc);
  rad_fit_options_free(o);
  rad_flow_free(flow);
  return -1;
}

/* The labels rad_flow_forward gives n points (n x dim), with the offset of
   each layer's labels: layer l holds k[i * nl + off[l] .. off[l + 1] - 1]
   (layer 0 is the first applied to x). */
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
  const size_t dim = rad_flow_dim(flow);
  float *z = malloc((n ? n : 1) * dim * sizeof(float));
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

/* The partition by the joint labels of layers a .. b-1. */
static int labels_partition(const label_set *L, size_t a, size_t b,
                            partition *p) {
  if (partition_make(L->n, L->k, L->nl, L->off[a], L->off[b] - L->off[a],
                     p)) {
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  return 0;
}

/* The first dim columns of all rows (n x dim), or NULL. */
static float *all_rows(const penguins *P, int dim) {
  float *x = malloc(P->n * (size_t)dim * sizeof(float));
  if (x)
    for (size_t i = 0; i < P->n; i++)
      for (int j = 0; j < dim; j++)
        x[i * (size_t)dim + (size_t)j] = P->x[i * N_COLS + (size_t)j];
  return x;
}

/* RAD's labels on all rows against the species. */
static int rad_labels(const rad_flow *flow, const penguins *P, int dim,
                      label_set *L) {
  float *x = all_rows(P, dim);
  if (!x) {
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  int rc = labels_compute(flow, P->n, x, L);
  free(x);
  return rc;
}

static int partition_ari(const partition *p, const int *species, double *ari) {
  size_t *t = contingency(p, species);
  if (!t) return -1;
  *ari = adjusted_rand(t, p->n_blocks, N_SPECIES);
  free(t);
  return 0;
}

/* One replicate of one problem. */
static int run_replicate(const config *cfg, const penguins *P,
                         const split *sp, size_t rep, problem *pb) {
  const int d = pb->dim;
  rep_result *r = &pb->res[rep];
  float *x[N_SPLITS] = {NULL, NULL, NULL};
  float *xj[N_SPLITS] = {NULL, NULL, NULL}; /* N_JITTER jittered copies */
  int *species_train = NULL;
  rad_flow *flows[2] = {NULL, NULL};
  int ret = -1;
  for (int s = 0; s < N_SPLITS; s++) {
    x[s] = malloc(sp->n[s] * (size_t)d * sizeof(float));
    if (!x[s]) goto oom;
    gather(P, sp->idx[s], sp->n[s], d, x[s]);
    xj[s] = malloc(N_JITTER * sp->n[s] * (size_t)d * sizeof(float));
    if (!xj[s]) goto oom;
    jitter(x[s], sp->n[s], d, P->unit, N_JITTER,
           derive_seed(cfg->seed, rep, d, STREAM_JITTER + s), xj[s]);
  }
  species_train = malloc(sp->n[S_TRAIN] * sizeof(int));
  if (!species_train) goto oom;
  for (size_t i = 0; i < sp->n[S_TRAIN]; i++)
    species_train[i] = P->species[sp->idx[S_TRAIN][i]];

  /* standardization from the training split (sample standard deviation) */
  float mean[N_COLS], sd[N_COLS];
  for (int j = 0; j < d; j++) {
    double m = 0.0, v = 0.0;
    const size_t n = sp->n[S_TRAIN];
    for (size_t i = 0; i < n; i++) m += x[S_TRAIN][i * (size_t)d + (size_t)j];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) {
      double t = x[S_TRAIN][i * (size_t)d + (size_t)j] - m;
      v += t * t;
    }
    mean[j] = (float)m;
    sd[j] = (float)sqrt(v / (double)(n - 1));
  }

  /* Gaussian and the species mixture, closed form */
  gauss g;
  species_mix mix;
  if (gauss_fit(x[S_TRAIN], sp->n[S_TRAIN], d, &g) ||
      mix_fit(x[S_TRAIN], species_train, sp->n[S_TRAIN], d, &mix)) {
    fprintf(stderr, PROG ": a covariance is not positive definite\n");
    goto done;
  }
  r->worst[M_GAUSS] = r->worst[M_MIX] = INFINITY;
  for (int s = 0; s < N_SPLITS; s++) {
    double a = 0.0, b = 0.0;
    for (size_t i = 0; i < sp->n[s]; i++) {
      const double la = gauss_log_pdf(&g, x[s] + i * (size_t)d);
      const double lb = mix_log_pdf(&mix, x[s] + i * (size_t)d);
      a += la;
      b += lb;
      if (s == S_TEST && la < r->worst[M_GAUSS]) r->worst[M_GAUSS] = la;
      if (s == S_TEST && lb < r->worst[M_MIX]) r->worst[M_MIX] = lb;
    }
    r->ll[M_GAUSS][s] = a / (double)sp->n[s];
    r->ll[M_MIX][s] = b / (double)sp->n[s];
  }
  {
    const size_t nj = N_JITTER * sp->n[S_TEST];
    double a = 0.0, b = 0.0;
    for (size_t i = 0; i < nj; i++) {
      a += gauss_log_pdf(&g, xj[S_TEST] + i * (size_t)d);
      b += mix_log_pdf(&mix, xj[S_TEST] + i * (size_t)d);
    }
    r->ll_jit[M_GAUSS] = a / (double)nj;
    r->ll_jit[M_MIX] = b / (double)nj;
  }

  /* the flows */
  const int kinds[2] = {RAD_LAYER_RAD, RAD_LAYER_AFFINE};
  const size_t hidden[2] = {cfg->rad_hidden, pb->nvp_hidden};
  for (int m = 0; m < 2; m++) {
    double t0 = now_seconds();
    if (fit_flow(cfg, kinds[m], d, hidden[m],
                 derive_seed(cfg->seed, rep, d, STREAM_INIT + m),
                 derive_seed(cfg->seed, rep, d, STREAM_FIT + m), mean, sd,
                 (cfg->dequantize ? N_JITTER : 1) * sp->n[S_TRAIN],
                 cfg->dequantize ? xj[S_TRAIN] : x[S_TRAIN],
                 (cfg->dequantize ? N_JITTER : 1) * sp->n[S_VAL],
                 cfg->dequantize ? xj[S_VAL] : x[S_VAL], &flows[m],
                 &r->best_step[m], &r->steps_done[m]))
      goto done;
    r->seconds[m] = now_seconds() - t0;
    for (int s = 0; s <= N_SPLITS; s++) {
      int rc = s < N_SPLITS
                   ? mean_log_prob(flows[m], sp->n[s], x[s], &r->ll[m][s],
                                   s == S_TEST ? &r->worst[m] : NULL)
                   : mean_log_prob(flows[m], N_JITTER * sp->n[S_TEST],
                                   xj[S_TEST], &r->ll_jit[m], NULL);
      if (rc) {
        fprintf(stderr, PROG ": rad_flow_log_prob failed: %s\n",
                rad_strerror(rc));
        goto done;
      }
    }
    fprintf(stderr,
            "  %d-D seed %zu %-8s test %8.3f  validation %8.3f  best step "
            "%5llu  %.1f s\n",
            d, rep + 1, m == 0 ? "RAD" : "REALNVP", r->ll[m][S_TEST],
            r->ll[m][S_VAL], (unsigned long long)r->best_step[m],
            r->seconds[m]);
  }
  fprintf(stderr, "  %d-D seed %zu Gaussian test %8.3f  species mix %8.3f\n",
          d, rep + 1, r->ll[M_GAUSS][S_TEST], r->ll[M_MIX][S_TEST]);

  /* RAD's labels against the species */
  {
    label_set L;
    if (rad_labels(flows[0], P, d, &L)) goto done;
    int e = 0;
    for (size_t l = 0; l < L.layers && !e; l++) {
      partition one, prefix;
      if (labels_partition(&L, l, l + 1, &one)) {
        e = 1;
        break;
      }
      if (labels_partition(&L, 0, l + 1, &prefix)) {
        partition_free(&one);
        e = 1;
        break;
      }
      e = partition_ari(&one, P->species, &r->ari_layer[l]) ||
          partition_ari(&prefix, P->species, &r->ari_prefix[l]);
      r->blocks_layer[l] = one.n_blocks;
      r->blocks_prefix[l] = prefix.n_blocks;
      partition_free(&one);
      partition_free(&prefix);
    }
    labels_free(&L);
    if (e) goto done;
  }
  if (rep == 0) {
    pb->rad0 = flows[0];
    pb->nvp0 = flows[1];
    flows[0] = flows[1] = NULL;
    pb->gauss0 = g;
  }
  ret = 0;
  goto done;
oom:
  fprintf(stderr, PROG ": out of memory\n");
done:
  for (int s = 0; s < N_SPLITS; s++) {
    free(x[s]);
    free(xj[s]);
  }
  free(species_train);
  rad_flow_free(flows[0]);
  rad_flow_free(flows[1]);
  return ret;
}

/* ---- Report tables ------------------------------------------------------------ */

static void report_ll(report *R, const config *cfg, const problem *pb) {
  const size_t S = cfg->seeds;
  double v[MAX_SEEDS] = {0}, m, s;
  out(R, "\n### %d-D: %s\n\n", pb->dim,
      pb->dim == 2 ? "bill length, bill depth"
                   : "bill length, bill depth, flipper length, body mass");
  out(R,
      "Mean log-likelihood per penguin (nats; densities per mm%s), mean +- "
      "sample std over %zu seeds:\n\n",
      pb->dim == 2 ? "^2" : "^3 per g", S);
  out(R, "| model | parameters | train | validation | test | test, "
         "jittered |\n");
  out(R, "|---|---:|---:|---:|---:|---:|\n");
  for (int mo = 0; mo < N_MODELS; mo++) {
    char params[32];
    if (mo == M_RAD) snprintf(params, sizeof params, "%zu", pb->rad_params);
    else if (mo == M_NVP) snprintf(params, sizeof params, "%zu", pb->nvp_params);
    else {
      const int d = pb->dim;
      size_t gp = (size_t)(d + d * (d + 1) / 2);
      snprintf(params, sizeof params, "%zu", mo == M_GAUSS ? gp : 3 * gp + 2);
    }
    out(R, "| %s | %s |", MODEL_TITLE[mo], params);
    for (int sp = 0; sp < N_SPLITS; sp++) {
      for (size_t i = 0; i < S; i++) v[i] = pb->res[i].ll[mo][sp];
      mean_std(v, S, &m, &s);
      out(R, sp == S_TEST ? " **%.3f +- %.3f** |" : " %.3f +- %.3f |", m, s);
    }
    for (size_t i = 0; i < S; i++) v[i] = pb->res[i].ll_jit[mo];
    mean_std(v, S, &m, &s);
    out(R, " %.3f +- %.3f |\n", m, s);
  }
  out(R,
      "\n\\* uses the species labels to fit (a reference, not a competitor).\n"
      "The flows' validation numbers chose their parameters (keep-best), so "
      "they are optimistic; the test split chose nothing.\n"
      "Test, jittered: the test rows moved uniformly within their recording "
      "resolution (%d copies); a model that put mass on the recorded grid of "
      "values scores much lower there than on the recorded values.\n",
      N_JITTER);

  out(R, "\nPaired test differences (same split and seed), mean +- std, "
         "and how often the first is better:\n\n");
  out(R, "| difference | mean +- std | first better |\n|---|---:|---:|\n");
  const int pairs[4][2] = {
      {M_RAD, M_NVP}, {M_RAD, M_GAUSS}, {M_NVP, M_GAUSS}, {M_RAD, M_MIX}};
  for (int p = 0; p < 4; p++) {
    size_t wins = 0;
    for (size_t i = 0; i < S; i++) {
      v[i] = pb->res[i].ll[pairs[p][0]][S_TEST] -
             pb->res[i].ll[pairs[p][1]][S_TEST];
      wins += v[i] > 0.0;
    }
    mean_std(v, S, &m, &s);
    const char *a = pairs[p][0] == M_RAD ? "RAD" : "REAL NVP";
    const char *b = pairs[p][1] == M_NVP     ? "REAL NVP"
                    : pairs[p][1] == M_GAUSS ? "Gaussian"
                                             : "species mixture*";
    out(R, "| %s - %s | %+.3f +- %.3f | %zu / %zu |\n", a, b, m, s, wins, S);
  }

  out(R, "\nPer seed: test mean log-likelihood, the step whose parameters "
         "were kept, and the lowest log p of a test penguin (worst):\n\n");
  out(R, "| seed | RAD | step | worst | REAL NVP | step | worst | Gaussian | "
         "worst | species mixture* | worst |\n"
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < S; i++) {
    const rep_result *r = &pb->res[i];
    out(R,
        "| %zu | %.3f | %llu | %.1f | %.3f | %llu | %.1f | %.3f | %.1f | "
        "%.3f | %.1f |\n",
        i + 1, r->ll[M_RAD][S_TEST], (unsigned long long)r->best_step[0],
        r->worst[M_RAD], r->ll[M_NVP][S_TEST],
        (unsigned long long)r->best_step[1], r->worst[M_NVP],
        r->ll[M_GAUSS][S_TEST], r->worst[M_GAUSS], r->ll[M_MIX][S_TEST],
        r->worst[M_MIX]);
  }
}

static void print_table(report *R, const partition *p, const int *species) {
  size_t *t = contingency(p, species);
  if (!t) {
    out(R, "(out of memory)\n");
    return;
  }
  out(R, "| label | %s | %s | %s | total |\n|---|---:|---:|---:|---:|\n",
      SPECIES[0], SPECIES[1], SPECIES[2]);
  size_t col[N_SPECIES] = {0};
  for (size_t b = 0; b < p->n_blocks; b++) {
    char name[160];
    block_name(p, b, name, sizeof name);
    size_t tot = 0;
    out(R, "| %s |", name);
    for (int s = 0; s < N_SPECIES; s++) {
      out(R, " %zu |", t[b * N_SPECIES + (size_t)s]);
      tot += t[b * N_SPECIES + (size_t)s];
      col[s] += t[b * N_SPECIES + (size_t)s];
    }
    out(R, " %zu |\n", tot);
  }
  out(R, "| total | %zu | %zu | %zu | %zu |\n", col[0], col[1], col[2],
      col[0] + col[1] + col[2]);
  out(R, "\nARI = %.3f\n", adjusted_rand(t, p->n_blocks, N_SPECIES));
  free(t);
}

/* Rows of the joint table: print it when it is short, else its largest
   blocks. */
static void print_joint_summary(report *R, const partition *p,
                                const int *species) {
  size_t *t = contingency(p, species);
  if (!t) return;
  /* blocks sorted by size */
  size_t *order = malloc(p->n_blocks * sizeof(size_t));
  size_t *size = calloc(p->n_blocks, sizeof(size_t));
  if (!order || !size) {
    free(order);
    free(size);
    free(t);
    return;
  }
  for (size_t b = 0; b < p->n_blocks; b++) {
    order[b] = b;
    for (int s = 0; s < N_SPECIES; s++) size[b] += t[b * N_SPECIES + (size_t)s];
  }
  for (size_t i = 1; i < p->n_blocks; i++) /* insertion sort, descending */
    for (size_t j = i; j > 0 && size[order[j]] > size[order[j - 1]]; j--) {
      size_t tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  const size_t show = p->n_blocks < 12 ? p->n_blocks : 12;
  size_t pure = 0, single = 0;
  for (size_t b = 0; b < p->n_blocks; b++) {
    int nz = 0;
    for (int s = 0; s < N_SPECIES; s++) nz += t[b * N_SPECIES + (size_t)s] > 0;
    if (nz == 1) pure += size[b];
    single += size[b] == 1;
  }
  out(R,
      "%zu distinct label tuples (%zu of them hold a single "
      "penguin); %zu of %zu penguins are in a tuple holding one species only "
      "(single penguins included). The %zu largest:\n\n",
      p->n_blocks, single, pure, p->n, show);
  out(R, "| labels (first layer first) | %s | %s | %s | total |\n"
         "|---|---:|---:|---:|---:|\n",
      SPECIES[0], SPECIES[1], SPECIES[2]);
  for (size_t i = 0; i < show; i++) {
    size_t b = order[i];
    char name[160];
    block_name(p, b, name, sizeof name);
    out(R, "| %s | %zu | %zu | %zu | %zu |\n", name, t[b * N_SPECIES],
        t[b * N_SPECIES + 1], t[b * N_SPECIES + 2], size[b]);
  }
  out(R, "\nARI = %.3f\n", adjusted_rand(t, p->n_blocks, N_SPECIES));
  free(order);
  free(size);
  free(t);
}

static void report_labels(report *R, const config *cfg, const penguins *P,
                          const problem *pb) {
  const size_t S = cfg->seeds, NL = cfg->layers;
  double v[MAX_SEEDS] = {0}, m, sd;
  out(R, "\n### %d-D RAD labels against species\n\n", pb->dim);
  label_set L;
  partition last, joint, first2;
  if (rad_labels(pb->rad0, P, pb->dim, &L)) {
    out(R, "(could not compute the labels)\n");
    return;
  }
  if (labels_partition(&L, NL - 1, NL, &last)) goto fail0;
  if (labels_partition(&L, 0, NL, &joint)) goto fail1;
  if (labels_partition(&L, 0, NL >= 2 ? 2 : 1, &first2)) goto fail2;
  out(R,
      "Seed 1's flow, all %zu complete rows. Labels of the last layer "
      "(layer %zu, the one next to the Gaussian; %zu folded unit%s: %s):\n\n",
      P->n, NL, last.cnt, last.cnt == 1 ? "" : "s",
      last.cnt == 1 ? "k in {1,2,3}" : "the tuple is the component id");
  print_table(R, &last, P->species);
  for (size_t l = 0; l + 1 < NL; l++) {
    partition one;
    if (labels_partition(&L, l, l + 1, &one)) break;
    out(R, "\nLabels of layer %zu%s:\n\n", l + 1,
        l == 0 ? " (the first, next to the data)" : "");
    print_table(R, &one, P->species);
    partition_free(&one);
  }
  if (NL >= 2) {
    out(R, "\nJoint labels of layers 1 and 2 (first layer first): ");
    if (first2.n_blocks <= 12) {
      out(R, "\n\n");
      print_table(R, &first2, P->species);
    } else {
      print_joint_summary(R, &first2, P->species);
    }
  }
  out(R, "\nJoint labels of all %zu layers: ", NL);
  print_joint_summary(R, &joint, P->species);
  partition_free(&first2);
fail2:
  partition_free(&joint);
fail1:
  partition_free(&last);
fail0:
  labels_free(&L);

  out(R, "\nAdjusted Rand index against species, per seed:\n\n");
  out(R, "| seed | ARI last layer | tuples used | ARI all layers | tuples "
         "used |\n|---:|---:|---:|---:|---:|\n");
  for (size_t i = 0; i < S; i++) {
    const rep_result *r = &pb->res[i];
    out(R, "| %zu | %.3f | %zu | %.3f | %zu |\n", i + 1, r->ari_layer[NL - 1],
        r->blocks_layer[NL - 1], r->ari_prefix[NL - 1],
        r->blocks_prefix[NL - 1]);
  }
  for (size_t i = 0; i < S; i++) v[i] = pb->res[i].ari_layer[NL - 1];
  mean_std(v, S, &m, &sd);
  out(R, "| mean +- std | %.3f +- %.3f | |", m, sd);
  for (size_t i = 0; i < S; i++) v[i] = pb->res[i].ari_prefix[NL - 1];
  mean_std(v, S, &m, &sd);
  out(R, " %.3f +- %.3f | |\n", m, sd);

  out(R,
      "\nBy layer (layer 1 is applied first to the data, layer %zu last), "
      "mean +- std over %zu seeds:\n\n",
      NL, S);
  out(R, "| layer l | ARI, labels of layer l alone | ARI, labels of layers "
         "1..l jointly | tuples used (mean) |\n|---:|---:|---:|---:|\n");
  for (size_t l = 0; l < NL; l++) {
    double m2, s2, nb = 0.0;
    for (size_t i = 0; i < S; i++) v[i] = pb->res[i].ari_layer[l];
    mean_std(v, S, &m, &sd);
    for (size_t i = 0; i < S; i++) {
      v[i] = pb->res[i].ari_prefix[l];
      nb += (double)pb->res[i].blocks_prefix[l] / (double)S;
    }
    mean_std(v, S, &m2, &s2);
    out(R, "| %zu | %.3f +- %.3f | %.3f +- %.3f | %.1f |\n", l + 1, m, sd, m2,
        s2, nb);
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

static uint32_t cat_colour(int k) {
  unsigned char c[3] = {128, 128, 128};
  plot_colour_categorical(k, c);
  return ((uint32_t)c[0] << 16) | ((uint32_t)c[1] << 8) | c[2];
}

/* Palette entries of the labels (k = 1, 2, 3) and 4-D components: chosen
   apart from the species colours where possible. */
static int label_palette(size_t b) {
  static const int pal[] = {0, 3, 2, 5, 6, 8, 7, 11, 13, 14, 16, 19};
  return pal[b % (sizeof pal / sizeof pal[0])];
}

/* A colour mixed with white: f = 0 the colour, 1 white. */
static uint32_t pale(uint32_t c, double f) {
  uint32_t r = 0;
  for (int sh = 16; sh >= 0; sh -= 8) {
    double v = (double)((c >> sh) & 0xFF);
    v = v + f * (255.0 - v);
    r |= (uint32_t)(v + 0.5) << sh;
  }
  return r;
}

/* Points with a 1-pixel dark outline, one at a time so each stays
   distinct; colour[i] is point i's 0xRRGGBB. */
static int draw_points(const plot_panel *p, size_t n, const float *xy,
                       const uint32_t *colour, int radius) {
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    rc = plot_scatter(p, 1, xy + 2 * i, NULL, PLOT_BLACK, 1.0f, radius + 1);
    if (rc == 0)
      rc = plot_scatter(p, 1, xy + 2 * i, NULL, colour[i], 1.0f, radius);
  }
  return rc;
}

/* Tick marks and numbers on the left and bottom edges, the x label below
   and the y label above the top-left corner. */
static int draw_axes(const plot_panel *p, double xstep, double ystep,
                     const char *xlabel, const char *ylabel, int scale) {
  plot_canvas *c = p->canvas;
  int rc = plot_panel_frame(p, PLOT_DARK_GREY);
  const int th = 7 * scale; /* cap height */
  char s[32];
  for (double v = ceil(p->xmin / xstep - 1e-9) * xstep;
       rc == 0 && v <= p->xmax + 1e-9 * xstep; v += xstep) {
    double px, py;
    plot_panel_to_pixel(p, v, p->ymin, &px, &py);
    rc = plot_fill_rect(c, (int)px, p->y + p->h, 1, 6, PLOT_BLACK);
    snprintf(s, sizeof s, "%g", fabs(v) < 1e-9 * xstep ? 0.0 : v);
    if (rc == 0)
      rc = plot_text_centred(c, (int)px, p->y + p->h + 9, s, PLOT_BLACK, scale);
  }
  for (double v = ceil(p->ymin / ystep - 1e-9) * ystep;
       rc == 0 && v <= p->ymax + 1e-9 * ystep; v += ystep) {
    double px, py;
    plot_panel_to_pixel(p, p->xmin, v, &px, &py);
    rc = plot_fill_rect(c, p->x - 6, (int)py, 6, 1, PLOT_BLACK);
    snprintf(s, sizeof s, "%g", fabs(v) < 1e-9 * ystep ? 0.0 : v);
    if (rc == 0)
      rc = plot_text(c, p->x - 9 - plot_text_width(s, scale),
                     (int)py - th / 2, s, PLOT_BLACK, scale);
  }
  if (rc == 0 && xlabel)
    rc = plot_text_centred(c, p->x + p->w / 2, p->y + p->h + 12 + 11 * scale,
                           xlabel, PLOT_BLACK, scale);
  if (rc == 0 && ylabel)
    rc = plot_text(c, p->x - 4 * scale, p->y - 13 * scale, ylabel, PLOT_BLACK,
                   scale);
  return rc;
}

/* A legend box with its top-left corner at (x, y): a square of each
   colour and its name. */
static int draw_legend(plot_canvas *c, int x, int y, int n,
                       const char *const *names, const uint32_t *colours,
                       const char *heading, int scale) {
  int w = heading ? plot_text_width(heading, scale) : 0;
  for (int i = 0; i < n; i++) {
    int tw = plot_text_width(names[i], scale) + 10 * scale;
    if (tw > w) w = tw;
  }
  const int line = 11 * scale;
  const int h = (n + (heading ? 1 : 0)) * line + 8;
  int rc = plot_fill_rect(c, x, y, w + 16, h, PLOT_WHITE);
  if (rc == 0) rc = plot_fill_rect(c, x, y, w + 16, 1, PLOT_GREY);
  if (rc == 0) rc = plot_fill_rect(c, x, y + h - 1, w + 16, 1, PLOT_GREY);
  if (rc == 0) rc = plot_fill_rect(c, x, y, 1, h, PLOT_GREY);
  if (rc == 0) rc = plot_fill_rect(c, x + w + 15, y, 1, h, PLOT_GREY);
  int yy = y + 5;
  if (rc == 0 && heading) {
    rc = plot_text(c, x + 8, yy, heading, PLOT_BLACK, scale);
    yy += line;
  }
  for (int i = 0; i < n && rc == 0; i++) {
    const int sq = 7 * scale;
    rc = plot_fill_rect(c, x + 8, yy, sq, sq, PLOT_BLACK);
    if (rc == 0)
      rc = plot_fill_rect(c, x + 9, yy + 1, sq - 2, sq - 2, colours[i]);
    if (rc == 0)
      rc = plot_text(c, x + 8 + sq + 3 * scale, yy, names[i], PLOT_BLACK,
                     scale);
    yy += line;
  }
  return rc;
}

/* A vertical colour bar of the map between lo (bottom) and hi (top), with
   numbers every `step`, in the rectangle (x, y, w, h). */
static int draw_colorbar(plot_canvas *c, int x, int y, int w, int h, float lo,
                         float hi, double step, int cmap, const char *label,
                         int scale) {
  enum { N = 256 };
  float v[N];
  for (int i = 0; i < N; i++)
    v[i] = hi - (hi - lo) * ((float)i + 0.5f) / (float)N;
  plot_panel p = {c, x, y, w, h, 0.0f, 1.0f, lo, hi, 0};
  int rc = plot_heatmap(&p, 1, N, v, lo, hi, cmap);
  if (rc == 0) rc = plot_panel_frame(&p, PLOT_DARK_GREY);
  char s[32];
  for (double t = ceil(lo / step - 1e-9) * step; rc == 0 && t <= hi + 1e-9;
       t += step) {
    double px, py;
    plot_panel_to_pixel(&p, 0.0, t, &px, &py);
    rc = plot_fill_rect(c, x + w, (int)py, 5, 1, PLOT_BLACK);
    snprintf(s, sizeof s, "%g", fabs(t) < 1e-9 ? 0.0 : t);
    if (rc == 0)
      rc = plot_text(c, x + w + 8, (int)py - 7 * scale / 2, s, PLOT_BLACK,
                     scale);
  }
  if (rc == 0 && label)
    rc = plot_text(c, x - 10 * scale, y - 14 * scale, label, PLOT_BLACK,
                   scale);
  return rc;
}

/* The data window of columns (a, b) over all rows: 5% padding, rounded
   outwards to multiples of xstep and ystep. */
static void data_window(const penguins *P, int a, int b, double xstep,
                        double ystep, float w[4]) {
  double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY};
  const int c[2] = {a, b};
  for (size_t i = 0; i < P->n; i++)
    for (int j = 0; j < 2; j++) {
      double v = P->x[i * N_COLS + (size_t)c[j]];
      if (v < lo[j]) lo[j] = v;
      if (v > hi[j]) hi[j] = v;
    }
  const double step[2] = {xstep, ystep};
  for (int j = 0; j < 2; j++) {
    double pad = 0.05 * (hi[j] - lo[j]);
    w[2 * j] = (float)(floor((lo[j] - pad) / step[j]) * step[j]);
    w[2 * j + 1] = (float)(ceil((hi[j] + pad) / step[j]) * step[j]);
  }
}

/* Cell centres of a gw x gh grid over a window, row 0 at the top. */
static void grid_points(const float w[4], int gw, int gh, float *xy) {
  for (int j = 0; j < gh; j++)
    for (int i = 0; i < gw; i++) {
      float *g = xy + 2 * ((size_t)j * (size_t)gw + (size_t)i);
      g[0] = w[0] + ((float)i + 0.5f) * (w[1] - w[0]) / (float)gw;
      g[1] = w[3] - ((float)j + 0.5f) * (w[3] - w[2]) / (float)gh;
    }
}

#define GRID 200

typedef struct fig_ctx {
  const penguins *P;
  float *xy;           /* all rows, bill length and depth */
  uint32_t *species_c; /* colour of each row's species */
  float win[4];
  float *grid;         /* GRID x GRID cell centres of win */
} fig_ctx;

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

/* Log-density of a model on the grid: RAD / REAL NVP flows or (flow NULL)
   the Gaussian. */
static int grid_log_density(const fig_ctx *F, const rad_flow *flow,
                            const gauss *g, float *ld) {
  const size_t n = (size_t)GRID * GRID;
  if (flow) return rad_flow_log_prob(flow, n, F->grid, ld);
  for (size_t i = 0; i < n; i++) ld[i] = (float)gauss_log_pdf(g, F->grid + 2 * i);
  return RAD_OK;
}

/* Heat map of the log-density clipped to [hi - range, hi]. */
static int heat(const plot_panel *p, const float *ld, float hi, float range) {
  return plot_heatmap(p, GRID, GRID, ld, hi - range, hi, PLOT_CMAP_VIRIDIS);
}

#define LD_RANGE 8.0f

static float grid_max(const float *ld) {
  float m = -INFINITY;
  for (size_t i = 0; i < (size_t)GRID * GRID; i++)
    if (isfinite(ld[i]) && ld[i] > m) m = ld[i];
  return isfinite(m) ? m : 0.0f;
}

/* rad_2d_species.png: RAD's log-density with the penguins by species. */
static int figure_species(const config *cfg, const fig_ctx *F,
                          const problem *pb) {
  float *ld = malloc((size_t)GRID * GRID * sizeof(float));
  plot_canvas *c = plot_canvas_new(1200, 740);
  int rc = PLOT_ENOMEM;
  if (!ld || !c) goto done;
  int lrc = grid_log_density(F, pb->rad0, NULL, ld);
  if (lrc) {
    fprintf(stderr, PROG ": rad_flow_log_prob (grid) failed: %s\n",
            rad_strerror(lrc));
    rc = PLOT_EINVAL;
    goto done;
  }
  const float hi = ceilf(grid_max(ld));
  plot_panel p = {c, 110, 130, 780, 520, 0, 1, 0, 1, 0};
  if ((rc = plot_panel_window(&p, F->win[0], F->win[1], F->win[2],
                              F->win[3])) ||
      (rc = heat(&p, ld, hi, LD_RANGE)) ||
      (rc = draw_points(&p, F->P->n, F->xy, F->species_c, 3)) ||
      (rc = draw_axes(&p, 5.0, 1.0, COLUMN_LABEL[0], COLUMN_LABEL[1], 2)))
    goto done;
  {
    char cap[200];
    snprintf(cap, sizeof cap,
             "RAD log-density (nats per mm^2), seed 1; test log-likelihood "
             "%.2f nats per penguin",
             pb->res[0].ll[M_RAD][S_TEST]);
    if ((rc = plot_text_centred(c, 600, 14, "Palmer penguins: RAD density of "
                                            "bill length and depth",
                                PLOT_BLACK, 3)) ||
        (rc = plot_text_centred(c, 600, 50, cap, PLOT_DARK_GREY, 2)))
      goto done;
  }
  {
    uint32_t col[N_SPECIES];
    for (int s = 0; s < N_SPECIES; s++) col[s] = cat_colour(SPECIES_COLOUR[s]);
    if ((rc = draw_legend(c, p.x + p.w + 16, p.y, N_SPECIES, SPECIES, col,
                          "species", 2)))
      goto done;
  }
  rc = draw_colorbar(c, 1100, 130, 22, 520, hi - LD_RANGE, hi, 1.0,
                     PLOT_CMAP_VIRIDIS, "log p", 2);
  if (rc == 0) rc = save(c, cfg, "rad_2d_species.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  free(ld);
  plot_canvas_free(c);
  return rc;
}

/* Code of each point's labels of layers a .. b-1 (base 3, first label most
   significant), as partition_make numbers them. */
static void label_codes(const label_set *L, size_t a, size_t b,
                        uint64_t *code) {
  for (size_t i = 0; i < L->n; i++) {
    uint64_t c = 0;
    for (size_t j = L->off[a]; j < L->off[b]; j++)
      c = 3 * c + (uint64_t)(L->k[i * L->nl + j] - 1);
    code[i] = c;
  }
}

/* Paints the cells of a GRID x GRID map of label codes in pale colours. */
static int paint_regions(const plot_panel *p, const uint64_t *code) {
  int rc = 0;
  for (int j = 0; j < GRID && rc == 0; j++)
    for (int i = 0; i < GRID && rc == 0; i++) {
      const uint64_t k = code[(size_t)j * GRID + (size_t)i];
      const uint32_t col = pale(cat_colour(label_palette((size_t)k)), 0.72);
      const int x0 = p->x + (int)((long)i * p->w / GRID);
      const int x1 = p->x + (int)((long)(i + 1) * p->w / GRID);
      const int y0 = p->y + (int)((long)j * p->h / GRID);
      const int y1 = p->y + (int)((long)(j + 1) * p->h / GRID);
      rc = plot_fill_rect(p->canvas, x0, y0, x1 - x0, y1 - y0, col);
    }
  return rc;
}

/* A legend of the codes that occur in a or b (sorted), at most 12. */
#define MAX_LEGEND 12
static int code_legend(plot_canvas *c, int x, int y, const uint64_t *a,
                       size_t na, const uint64_t *b, size_t nb, size_t cnt,
                       const char *heading) {
  uint64_t seen[MAX_LEGEND];
  size_t ns = 0;
  for (size_t i = 0; i < na + nb; i++) {
    const uint64_t v = i < na ? a[i] : b[i - na];
    size_t j = 0;
    while (j < ns && seen[j] != v) j++;
    if (j == ns && ns < MAX_LEGEND) seen[ns++] = v;
  }
  qsort(seen, ns, sizeof seen[0], cmp_u64);
  char names[MAX_LEGEND][48];
  const char *np[MAX_LEGEND];
  uint32_t col[MAX_LEGEND];
  for (size_t j = 0; j < ns; j++) {
    code_name(seen[j], cnt, names[j], sizeof names[j]);
    np[j] = names[j];
    col[j] = cat_colour(label_palette((size_t)seen[j]));
  }
  return draw_legend(c, x, y, (int)ns, np, col, heading, 2);
}

/* rad_2d_labels.png: the penguins coloured by RAD's labels and by species,
   over the regions of the plane that get each label: top row the last
   layer's label, bottom row the joint labels of layers 1 and 2. */
static int figure_labels(const config *cfg, const fig_ctx *F,
                         const problem *pb) {
  const size_t n = (size_t)GRID * GRID, np = F->P->n;
  const size_t NL = rad_flow_num_layers(pb->rad0);
  const int rows = NL >= 2 ? 2 : 1;
  label_set G, L;
  int have_g = 0, have_l = 0, rc = PLOT_EINVAL;
  uint64_t *gc = malloc(n * sizeof(uint64_t));
  uint64_t *pc = malloc(np * sizeof(uint64_t));
  uint32_t *col = malloc(np * sizeof(uint32_t));
  plot_canvas *c = plot_canvas_new(1680, rows == 2 ? 1240 : 660);
  if (!gc || !pc || !col || !c) {
    rc = PLOT_ENOMEM;
    goto done;
  }
  if (labels_compute(pb->rad0, n, F->grid, &G)) goto done;
  have_g = 1;
  if (rad_labels(pb->rad0, F->P, 2, &L)) goto done;
  have_l = 1;
  rc = 0;
  for (int row = 0; row < rows && rc == 0; row++) {
    const size_t a = row == 0 ? NL - 1 : 0, b = row == 0 ? NL : 2;
    const size_t cnt = G.off[b] - G.off[a];
    label_codes(&G, a, b, gc);
    label_codes(&L, a, b, pc);
    for (size_t i = 0; i < np; i++)
      col[i] = cat_colour(label_palette((size_t)pc[i]));
    plot_panel p[2] = {{c, 100, 150 + row * 580, 600, 420, 0, 1, 0, 1, 0},
                       {c, 910, 150 + row * 580, 600, 420, 0, 1, 0, 1, 0}};
    for (int q = 0; q < 2 && rc == 0; q++) {
      if ((rc = plot_panel_window(&p[q], F->win[0], F->win[1], F->win[2],
                                  F->win[3])) ||
          (rc = paint_regions(&p[q], gc)) ||
          (rc = draw_points(&p[q], np, F->xy, q == 0 ? col : F->species_c,
                            3)) ||
          (rc = draw_axes(&p[q], 5.0, 1.0, COLUMN_LABEL[0], COLUMN_LABEL[1],
                          2)))
        goto done;
    }
    char t0[160], t1[160];
    if (row == 0)
      snprintf(t0, sizeof t0, "(a) last layer's label (layer %zu): ARI %.2f",
               NL, pb->res[0].ari_layer[NL - 1]);
    else
      snprintf(t0, sizeof t0, "(c) labels of layers 1 and 2: ARI %.2f",
               pb->res[0].ari_prefix[1]);
    snprintf(t1, sizeof t1, "(%c) species, same background",
             row == 0 ? 'b' : 'd');
    uint32_t sc[N_SPECIES];
    for (int s = 0; s < N_SPECIES; s++) sc[s] = cat_colour(SPECIES_COLOUR[s]);
    if ((rc = plot_text_centred(c, p[0].x + p[0].w / 2, p[0].y - 58, t0,
                                PLOT_BLACK, 2)) ||
        (rc = plot_text_centred(c, p[1].x + p[1].w / 2, p[1].y - 58, t1,
                                PLOT_BLACK, 2)) ||
        (rc = code_legend(c, p[0].x + p[0].w + 16, p[0].y, gc, n, pc, np, cnt,
                          cnt == 1 ? "label" : "(k1,k2)")) ||
        (rc = draw_legend(c, p[1].x + p[1].w + 16, p[1].y, N_SPECIES, SPECIES,
                          sc, "species", 2)))
      goto done;
  }
  if ((rc = plot_text_centred(c, 840, 14,
                              "RAD's discrete labels and the species (2-D, "
                              "seed 1)",
                              PLOT_BLACK, 3)) ||
      (rc = plot_text_centred(c, 840, 50,
                              "background: the labels rad_flow_forward "
                              "gives each point of the plane",
                              PLOT_DARK_GREY, 2)))
    goto done;
  rc = save(c, cfg, "rad_2d_labels.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  if (have_g) labels_free(&G);
  if (have_l) labels_free(&L);
  free(gc);
  free(pc);
  free(col);
  plot_canvas_free(c);
  return rc;
}

/* density_2d_compare.png: RAD, REAL NVP and the Gaussian on one scale. */
static int figure_compare(const config *cfg, const fig_ctx *F,
                          const problem *pb) {
  const size_t n = (size_t)GRID * GRID;
  float *ld[3] = {malloc(n * sizeof(float)), malloc(n * sizeof(float)),
                  malloc(n * sizeof(float))};
  plot_canvas *c = plot_canvas_new(1860, 560);
  int rc = PLOT_ENOMEM;
  if (!ld[0] || !ld[1] || !ld[2] || !c) goto done;
  const rad_flow *fl[3] = {pb->rad0, pb->nvp0, NULL};
  for (int m = 0; m < 3; m++) {
    int lrc = grid_log_density(F, fl[m], &pb->gauss0, ld[m]);
    if (lrc) {
      fprintf(stderr, PROG ": rad_flow_log_prob (grid) failed: %s\n",
              rad_strerror(lrc));
      rc = PLOT_EINVAL;
      goto done;
    }
  }
  float hi = -INFINITY;
  for (int m = 0; m < 3; m++) {
    float g = grid_max(ld[m]);
    if (g > hi) hi = g;
  }
  hi = ceilf(hi);
  static const char *const name[3] = {"RAD", "REAL NVP", "Gaussian"};
  const int mo[3] = {M_RAD, M_NVP, M_GAUSS};
  rc = 0;
  for (int m = 0; m < 3 && rc == 0; m++) {
    plot_panel p = {c, 90 + m * 570, 130, 480, 340, 0, 1, 0, 1, 0};
    char t[120];
    snprintf(t, sizeof t, "%s: test %.2f", name[m],
             pb->res[0].ll[mo[m]][S_TEST]);
    if ((rc = plot_panel_window(&p, F->win[0], F->win[1], F->win[2],
                                F->win[3])) ||
        (rc = heat(&p, ld[m], hi, LD_RANGE)) ||
        (rc = draw_points(&p, F->P->n, F->xy, F->species_c, 2)) ||
        (rc = draw_axes(&p, 5.0, 1.0, COLUMN_LABEL[0], COLUMN_LABEL[1], 2)) ||
        (rc = plot_text_centred(c, p.x + p.w / 2, 72, t, PLOT_BLACK, 2)))
      goto done;
  }
  if ((rc = plot_text_centred(c, 880, 14,
                              "Log-density of bill length and depth, seed 1 "
                              "(nats per mm^2; test: nats per penguin)",
                              PLOT_BLACK, 2)) ||
      (rc = plot_text_centred(c, 880, 40,
                              "points: all penguins, orange Adelie, purple "
                              "Chinstrap, cyan Gentoo",
                              PLOT_DARK_GREY, 2)) ||
      (rc = draw_colorbar(c, 1790, 130, 18, 340, hi - LD_RANGE, hi, 1.0,
                          PLOT_CMAP_VIRIDIS, NULL, 2)))
    goto done;
  rc = save(c, cfg, "density_2d_compare.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  for (int m = 0; m < 3; m++) free(ld[m]);
  plot_canvas_free(c);
  return rc;
}

/* rad_4d_labels.png: two projections of the penguins coloured by species,
   by the 4-D flow's last-layer component, and by the labels of the other
   layer whose labels agree best with the species (seed 1; chosen by that
   ARI, and said so in the picture). */
static int figure_4d(const config *cfg, const penguins *P,
                     const uint32_t *species_c, const problem *pb) {
  const size_t NL = rad_flow_num_layers(pb->rad0);
  size_t other = 0; /* the best-agreeing layer other than the last */
  for (size_t l = 1; l + 1 < NL; l++)
    if (pb->res[0].ari_layer[l] > pb->res[0].ari_layer[other]) other = l;
  const int rows = NL >= 2 ? 3 : 2;
  const size_t lay[2] = {NL - 1, other};
  label_set L;
  int have_l = 0, rc = PLOT_ENOMEM;
  uint64_t *code[2] = {malloc(P->n * sizeof(uint64_t)),
                       malloc(P->n * sizeof(uint64_t))};
  float *xy[2] = {malloc(P->n * 2 * sizeof(float)),
                  malloc(P->n * 2 * sizeof(float))};
  uint32_t *cc[2] = {malloc(P->n * sizeof(uint32_t)),
                     malloc(P->n * sizeof(uint32_t))};
  plot_canvas *c = plot_canvas_new(1620, 150 + (rows - 1) * 560 + 380 + 70);
  if (!code[0] || !code[1] || !xy[0] || !xy[1] || !cc[0] || !cc[1] || !c)
    goto done;
  if (rad_labels(pb->rad0, P, 4, &L)) {
    rc = PLOT_EINVAL;
    goto done;
  }
  have_l = 1;
  for (int q = 0; q < 2; q++) {
    label_codes(&L, lay[q], lay[q] + 1, code[q]);
    for (size_t i = 0; i < P->n; i++)
      cc[q][i] = cat_colour(label_palette((size_t)code[q][i]));
  }
  for (size_t i = 0; i < P->n; i++) {
    xy[0][2 * i] = P->x[i * N_COLS + 0];
    xy[0][2 * i + 1] = P->x[i * N_COLS + 1];
    xy[1][2 * i] = P->x[i * N_COLS + 2];
    xy[1][2 * i + 1] = P->x[i * N_COLS + 3];
  }
  float w[2][4];
  data_window(P, 0, 1, 1.0, 0.5, w[0]);
  data_window(P, 2, 3, 5.0, 250.0, w[1]);
  const double xs[2] = {5.0, 10.0}, ys[2] = {1.0, 500.0};
  rc = 0;
  for (int row = 0; row < rows && rc == 0; row++) {
    const int y = 150 + row * 560;
    for (int pr = 0; pr < 2 && rc == 0; pr++) {
      plot_panel p = {c, 120 + pr * 720, y, 560, 380, 0, 1, 0, 1, 0};
      if ((rc = plot_panel_window(&p, w[pr][0], w[pr][1], w[pr][2],
                                  w[pr][3])) ||
          (rc = plot_panel_fill(&p, 0xF7F7F7u)) ||
          (rc = draw_points(&p, P->n, xy[pr],
                            row == 0 ? species_c : cc[row - 1], 3)) ||
          (rc = draw_axes(&p, xs[pr], ys[pr], COLUMN_LABEL[2 * pr],
                          COLUMN_LABEL[2 * pr + 1], 2)))
        goto done;
    }
    char t[200];
    if (row == 0) {
      uint32_t sc[N_SPECIES];
      for (int s = 0; s < N_SPECIES; s++)
        sc[s] = cat_colour(SPECIES_COLOUR[s]);
      snprintf(t, sizeof t, "coloured by species");
      rc = draw_legend(c, 1416, y, N_SPECIES, SPECIES, sc, "species", 2);
    } else {
      const size_t l = lay[row - 1];
      if (row == 1)
        snprintf(t, sizeof t,
                 "coloured by the last layer's label pair (layer %zu): "
                 "ARI %.2f",
                 l + 1, pb->res[0].ari_layer[l]);
      else
        snprintf(t, sizeof t,
                 "coloured by layer %zu's label pair, the other layer that "
                 "agrees best with species: ARI %.2f",
                 l + 1, pb->res[0].ari_layer[l]);
      rc = code_legend(c, 1416, y, code[row - 1], P->n, NULL, 0,
                       L.off[l + 1] - L.off[l], "(k1,k2)");
    }
    if (rc == 0) rc = plot_text_centred(c, 760, y - 64, t, PLOT_BLACK, 2);
  }
  if (rc == 0)
    rc = plot_text_centred(c, 810, 14,
                           "4-D RAD (seed 1): discrete labels and species, "
                           "two projections",
                           PLOT_BLACK, 3);
  if (rc == 0) rc = save(c, cfg, "rad_4d_labels.png");
done:
  if (rc == PLOT_ENOMEM) fprintf(stderr, PROG ": out of memory (figure)\n");
  if (have_l) labels_free(&L);
  for (int q = 0; q < 2; q++) {
    free(code[q]);
    free(xy[q]);
    free(cc[q]);
  }
  plot_canvas_free(c);
  return rc;
}

static int draw_figures(const config *cfg, const penguins *P,
                        const problem pb[N_PROBLEMS]) {
  fig_ctx F;
  memset(&F, 0, sizeof F);
  F.P = P;
  F.xy = malloc(P->n * 2 * sizeof(float));
  F.species_c = malloc(P->n * sizeof(uint32_t));
  F.grid = malloc((size_t)GRID * GRID * 2 * sizeof(float));
  int rc = -1;
  if (!F.xy || !F.species_c || !F.grid) {
    fprintf(stderr, PROG ": out of memory (figures)\n");
    goto done;
  }
  for (size_t i = 0; i < P->n; i++) {
    F.xy[2 * i] = P->x[i * N_COLS + 0];
    F.xy[2 * i + 1] = P->x[i * N_COLS + 1];
    F.species_c[i] = cat_colour(SPECIES_COLOUR[P->species[i]]);
  }
  data_window(P, 0, 1, 1.0, 0.5, F.win);
  grid_points(F.win, GRID, GRID, F.grid);
  int e = 0;
  e |= figure_species(cfg, &F, &pb[0]) != 0;
  e |= figure_labels(cfg, &F, &pb[0]) != 0;
  e |= figure_compare(cfg, &F, &pb[0]) != 0;
  e |= figure_4d(cfg, P, F.species_c, &pb[1]) != 0;
  rc = e ? -1 : 0;
done:
  free(F.xy);
  free(F.species_c);
  free(F.grid);
  return rc;
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

  penguins P;
  if (read_penguins(cfg.data, &P)) return EXIT_RUNTIME;
  if (make_dirs(cfg.out) != 0) {
    fprintf(stderr, PROG ": cannot create output directory '%s': %s\n",
            cfg.out, strerror(errno));
    penguins_free(&P);
    return EXIT_RUNTIME;
  }

  int status = EXIT_RUNTIME;
  report R = {NULL};
  split *splits = calloc(cfg.seeds, sizeof *splits);
  problem pb[N_PROBLEMS];
  memset(pb, 0, sizeof pb);
  if (!splits) {
    fprintf(stderr, PROG ": out of memory\n");
    goto done;
  }
  for (size_t r = 0; r < cfg.seeds; r++)
    if (make_split(&P, derive_seed(cfg.seed, r, 0, STREAM_SPLIT), &splits[r]))
      goto done;

  /* the models' sizes */
  for (int q = 0; q < N_PROBLEMS; q++) {
    pb[q].dim = PROBLEM_DIM[q];
    pb[q].res = calloc(cfg.seeds, sizeof *pb[q].res);
    if (!pb[q].res) {
      fprintf(stderr, PROG ": out of memory\n");
      goto done;
    }
    rad_flow *f;
    if ((rc = rad_flow_create(RAD_LAYER_RAD, (size_t)pb[q].dim, cfg.layers,
                              cfg.rad_hidden, cfg.rad_gate_hidden, 1, &f))) {
      fprintf(stderr, PROG ": rad_flow_create failed: %s\n", rad_strerror(rc));
      goto done;
    }
    pb[q].rad_params = rad_flow_num_params(f);
    rad_flow_free(f);
    if (cfg.nvp_hidden) {
      pb[q].nvp_hidden = cfg.nvp_hidden;
      if ((rc = rad_flow_create(RAD_LAYER_AFFINE, (size_t)pb[q].dim,
                                cfg.layers, cfg.nvp_hidden, 0, 1, &f))) {
        fprintf(stderr, PROG ": rad_flow_create failed: %s\n",
                rad_strerror(rc));
        goto done;
      }
      pb[q].nvp_params = rad_flow_num_params(f);
      rad_flow_free(f);
    } else if ((rc = matched_hidden(pb[q].dim, cfg.layers, pb[q].rad_params,
                                    &pb[q].nvp_hidden, &pb[q].nvp_params))) {
      fprintf(stderr, PROG ": rad_flow_create failed: %s\n", rad_strerror(rc));
      goto done;
    }
  }

  const double t0 = now_seconds();
  for (int q = 0; q < N_PROBLEMS; q++)
    for (size_t r = 0; r < cfg.seeds; r++)
      if (run_replicate(&cfg, &P, &splits[r], r, &pb[q])) goto done;
  const double elapsed = now_seconds() - t0;

  /* the report */
  {
    size_t len = strlen(cfg.out) + 16;
    char *path = malloc(len);
    if (!path) {
      fprintf(stderr, PROG ": out of memory\n");
      goto done;
    }
    snprintf(path, len, "%s/results.md", cfg.out);
    R.md = fopen(path, "w");
    if (!R.md) {
      fprintf(stderr, PROG ": cannot write '%s': %s\n", path, strerror(errno));
      free(path);
      goto done;
    }
    free(path);
  }
  out(&R, "# rad-penguins results\n\n");
  out(&R,
      "Data: %s: %zu rows, %zu skipped for a missing measurement, %zu "
      "used (%s %zu, %s %zu, %s %zu).\n",
      cfg.data, P.rows, P.skipped, P.n, SPECIES[0], P.per_species[0],
      SPECIES[1], P.per_species[1], SPECIES[2], P.per_species[2]);
  out(&R,
      "Recording resolution (the largest unit every value is a multiple "
      "of): %g, %g, %g, %g.\n",
      P.unit[0], P.unit[1], P.unit[2], P.unit[3]);
  out(&R,
      "Splits: per seed, a seeded shuffle of each species' rows cut 60/20/20 "
      "(stratified by species): train %zu, validation %zu, test %zu.\n",
      splits[0].n[S_TRAIN], splits[0].n[S_VAL], splits[0].n[S_TEST]);
  out(&R,
      "Models: %zu coupling layers; RAD conditioner width %zu, gating width "
      "%zu; REAL NVP conditioner width %zu (2-D) / %zu (4-D)%s.\n",
      cfg.layers, cfg.rad_hidden, cfg.rad_gate_hidden, pb[0].nvp_hidden,
      pb[1].nvp_hidden,
      cfg.nvp_hidden ? "" : ", the widths closest to RAD's parameter count");
  out(&R,
      "Training: rad_flow_fit, Adam lr %g, batch %zu, %llu steps, validation "
      "every %llu steps, keep-best; standardization from the training split%s. "
      "Base seed %llu, %zu seeds (`" PROG " --seed %llu --seeds %zu --steps "
      "%llu`%s). Training time %.0f s.\n",
      cfg.lr, cfg.batch, (unsigned long long)cfg.steps,
      (unsigned long long)cfg.eval_every,
      cfg.dequantize ? "; trained and validated on dequantized rows "
                       "(--dequantize)"
                     : "",
      (unsigned long long)cfg.seed,
      cfg.seeds, (unsigned long long)cfg.seed, cfg.seeds,
      (unsigned long long)cfg.steps, cfg.quick ? ", --quick" : "", elapsed);
  out(&R, "\n## Log-likelihoods\n");
  for (int q = 0; q < N_PROBLEMS; q++) report_ll(&R, &cfg, &pb[q]);
  out(&R, "\n## Discrete labels and species\n");
  for (int q = 0; q < N_PROBLEMS; q++) report_labels(&R, &cfg, &P, &pb[q]);
  if (cfg.plots)
    out(&R,
        "\n## Pictures\n\nrad_2d_species.png, rad_2d_labels.png, "
        "density_2d_compare.png, rad_4d_labels.png (seed 1's models).\n");
  status = EXIT_OK;
  if (fclose(R.md) != 0) {
    fprintf(stderr, PROG ": cannot write results.md\n");
    status = EXIT_RUNTIME;
  }
  R.md = NULL;
  fflush(stdout);
  if (cfg.plots && draw_figures(&cfg, &P, pb)) status = EXIT_RUNTIME;

done:
  if (R.md) fclose(R.md);
  if (splits)
    for (size_t r = 0; r < cfg.seeds; r++) split_free(&splits[r]);
  free(splits);
  for (int q = 0; q < N_PROBLEMS; q++) {
    free(pb[q].res);
    rad_flow_free(pb[q].rad0);
    rad_flow_free(pb[q].nvp0);
  }
  penguins_free(&P);
  return status;
}
