/*
 * rad-paper: reproduces the experiment of section 4 of "A RAD approach to
 * deep mixture models" (Dinh, Sohl-Dickstein, Larochelle, Pascanu).
 *
 * On each of the six 2-D problems (shared/docs/DATASETS.md) it trains a RAD
 * flow and a REAL NVP flow at the paper's configuration (6 coupling layers;
 * RAD with H = G = 8 hidden units, REAL NVP with H = 56; Adam, batch 500,
 * 50,000 steps, 10,000 training points), reports the mean log-likelihood of
 * a fresh 10,000-point test sample, compares it with the problem's true
 * log-likelihood and with the paper's table, and draws the paper's figures
 * (samples, densities, Gaussianization, the folding process layer by layer).
 *
 * Runs are independent (one flow each) and execute in parallel on a pool of
 * POSIX threads. Nothing process-wide is changed in the library.
 *
 * Seeds. For base seed S, problem id p (1..6, as rad_problem_from_name) and
 * a stream number s, seed(S, p, s) = M(M(M(S) ^ p) ^ s), where M is the
 * splitmix64 finalizer of its argument plus the golden-ratio increment.
 * M is a bijection of 64-bit integers, so different streams always give
 * different seeds. Streams: 1 training set, 2 test set, 3 / 4 initial
 * parameters of RAD / REAL NVP, 5 / 6 minibatch order of RAD / REAL NVP (the
 * fit seed is kept to its low 53 bits, as RAD_OPTION_SEED requires), 7 / 8
 * the samples drawn for the pictures.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <rad/rad.h>

#include "plot.h"

#define PROG "rad-paper"

/* Exit codes. */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define N_PROBLEMS 6
#define N_MODELS 2
enum { MODEL_RAD = 0, MODEL_REALNVP = 1 };
static const char *const MODEL_NAME[N_MODELS] = {"rad", "realnvp"};
static const char *const MODEL_TITLE[N_MODELS] = {"RAD", "REAL NVP"};

/* The paper's table (section 4.3), indexed by problem id - 1. */
static const double PAPER_LL[N_PROBLEMS][N_MODELS] = {
    {-1.20, -2.26}, /* grid */
    {3.57, 1.85},   /* ring */
    {-1.21, -1.48}, /* moons */
    {-1.81, -2.17}, /* circles */
    {0.29, -0.36},  /* spiral */
    {-0.83, -1.50}, /* many_moons */
};

/* Seed streams (see the comment at the top). */
enum {
  STREAM_TRAIN = 1,
  STREAM_TEST = 2,
  STREAM_INIT = 3,   /* + model */
  STREAM_FIT = 5,    /* + model */
  STREAM_SAMPLE = 7  /* + model */
};

/* Pictures. */
#define PLOT_POINTS 10000 /* points drawn per scatter panel */
#define HEAT_GRID 200     /* density heat map resolution */
#define REPORT_EVERY 100  /* steps between progress callbacks */

/* Limits of the numeric options. */
#define MAX_STEPS 9007199254740992ull /* 2^53, as RAD_OPTION_STEPS */
#define MAX_LAYERS 100
#define MAX_HIDDEN 65536
#define MAX_POINTS 100000000ull
#define MAX_JOBS 1024

/* ---- Configuration ------------------------------------------------------ */

typedef struct config {
  int problems[N_PROBLEMS]; /* problem ids, in the order given */
  int n_problems;
  int models[N_MODELS]; /* MODEL_* in the order given */
  int n_models;
  uint64_t steps, seed;
  const char *out;
  double rad_lr, realnvp_lr; /* learning rate per model */
  int schedule; /* 0 constant, 1 cosine */
  double clip;  /* gradient norm clipping, 0 = none */
  double logit_bound;
  size_t layers, rad_hidden, rad_gate_hidden, realnvp_hidden;
  size_t batch, train_size, test_size;
  int jobs;
  int plots, quiet;
} config;

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: " PROG " [OPTIONS]\n"
      "\n"
      "Reproduces section 4 of \"A RAD approach to deep mixture models\": on\n"
      "each 2-D problem, trains RAD and REAL NVP flows and reports the mean\n"
      "test log-likelihood (nats), next to the true log-likelihood and the\n"
      "paper's numbers, and draws the paper's figures.\n"
      "\n"
      "Experiment\n"
      "  --problems LIST      comma-separated problems (default: all six):\n"
      "                       grid, ring, moons, circles, spiral, many_moons\n"
      "  --models LIST        comma-separated models: rad, realnvp (default:\n"
      "                       both)\n"
      "  --steps N            Adam steps per run (default 50000)\n"
      "  --seed S             base seed, 0 .. 2^64-1 (default 1)\n"
      "  --out DIR            output directory, created if missing (default\n"
      "                       paper-out)\n"
      "\n"
      "Training\n"
      "  --lr X               Adam learning rate > 0 of both models\n"
      "  --rad-lr X           RAD's learning rate (default 3e-3)\n"
      "  --realnvp-lr X       REAL NVP's learning rate (default 1e-3)\n"
      "  --lr-schedule S      constant or cosine (decay to 1%% of the rate\n"
      "                       over the steps; default cosine). The defaults\n"
      "                       were chosen per model on validation seeds\n"
      "                       101-103, never on reported runs\n"
      "                       (docs/experiments.md)\n"
      "  --clip-norm C        clip each minibatch gradient to Euclidean norm\n"
      "                       C; 0 = no clipping (default 0)\n"
      "  --batch B            minibatch size (default 500)\n"
      "  --train-size N       training points per problem (default 10000)\n"
      "  --test-size N        test points per problem (default 10000)\n"
      "\n"
      "Models\n"
      "  --layers L           coupling layers, 1 .. %d (default 6)\n"
      "  --rad-hidden H       RAD conditioner width (default 8)\n"
      "  --rad-gate-hidden G  RAD gating network width (default 8)\n"
      "  --realnvp-hidden H   REAL NVP conditioner width (default 56)\n"
      "  --logit-bound B      RAD soft clamp of the fold logits, >= 0; 0 or inf\n"
      "                       mean unclamped (default 3)\n"
      "\n"
      "Program\n"
      "  --jobs N             runs trained in parallel (default: online CPUs)\n"
      "  --no-plots           draw no pictures\n"
      "  --quiet              no progress bar (it is drawn on stderr only when\n"
      "                       stderr is a terminal)\n"
      "  --help               this text\n"
      "  Options take their value as the next argument or after '='.\n"
      "\n"
      "Output\n"
      "  stdout: one line per finished run,\n"
      "    result problem=NAME model=rad|realnvp test_ll=X steps=N seconds=S\n"
      "  (S: training wall time), then the results table. In DIR:\n"
      "  results.md, results.tsv (the table), and unless --no-plots:\n"
      "  NAME_MODEL.png (data, density, samples, Gaussianized data),\n"
      "  NAME_MODEL_layers.png (the points after each layer), summary.png.\n"
      "\n"
      "Data and seeds\n"
      "  For base seed S and problem id p (grid 1, ring 2, moons 3, circles 4,\n"
      "  spiral 5, many_moons 6), seed(S, p, s) = M(M(M(S) ^ p) ^ s), where\n"
      "  M(x) is splitmix64's output mix of x + 0x9E3779B97F4A7C15; M is a\n"
      "  bijection, so different streams never give the same seed.\n"
      "  s = 1: training set, rad_problem_sample(p, seed, train-size);\n"
      "  s = 2: a fresh test set; s = 3 / 4: initial parameters of RAD /\n"
      "  REAL NVP; s = 5 / 6: their minibatch order (low 53 bits);\n"
      "  s = 7 / 8: the samples drawn for the pictures.\n"
      "\n"
      "Exit status: 0 success, 1 runtime failure, 2 usage error.\n",
      MAX_LAYERS);
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

/* An unsigned decimal integer in [lo, hi]; no sign, no spaces, no
   trailing characters. */
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

/* A real number: the whole string, not NaN. Infinity only if allow_inf. */
static int parse_double(const char *opt, const char *s, int allow_inf,
                        double *out) {
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || isnan(v) || s[0] == ' ' || s[0] == '\t' ||
      s[0] == '\n')
    return usage_error("%s: '%s' is not a number", opt, s);
  if (isinf(v) && !allow_inf)
    return usage_error("%s: '%s' is not a finite number", opt, s);
  if (errno == ERANGE && !isinf(v) && v != 0.0) {
    /* underflow to a denormal: accepted as is */
  } else if (errno == ERANGE && v == 0.0) {
    return usage_error("%s: '%s' underflows", opt, s);
  }
  *out = v;
  return 0;
}

/* Splits a comma list and maps each item with `lookup` (which returns the
   index or -1) into out[]; rejects empty items, unknown names and
   repeats. */
static int parse_list(const char *opt, const char *s,
                      int (*lookup)(const char *), const char *valid,
                      int max, int *out, int *n_out) {
  size_t len = strlen(s);
  char *copy = malloc(len + 1);
  if (!copy) {
    fprintf(stderr, PROG ": out of memory\n");
    return EXIT_RUNTIME;
  }
  memcpy(copy, s, len + 1);
  int n = 0, rc = 0;
  char *item = copy;
  for (;;) {
    char *comma = strchr(item, ',');
    if (comma) *comma = '\0';
    if (*item == '\0') {
      rc = usage_error("%s: empty name in '%s' (valid: %s)", opt, s, valid);
      break;
    }
    int v = lookup(item);
    if (v < 0) {
      rc = usage_error("%s: unknown name '%s' (valid: %s)", opt, item, valid);
      break;
    }
    for (int i = 0; i < n; i++)
      if (out[i] == v) {
        rc = usage_error("%s: '%s' is listed twice", opt, item);
        break;
      }
    if (rc) break;
    if (n == max) { /* cannot happen without a repeat; kept for safety */
      rc = usage_error("%s: too many names in '%s'", opt, s);
      break;
    }
    out[n++] = v;
    if (!comma) break;
    item = comma + 1;
  }
  free(copy);
  if (rc == 0) *n_out = n;
  return rc;
}

static int lookup_problem(const char *name) {
  int id = rad_problem_from_name(name);
  return id > 0 && id <= N_PROBLEMS ? id : -1;
}

static int lookup_model(const char *name) {
  for (int m = 0; m < N_MODELS; m++)
    if (strcmp(name, MODEL_NAME[m]) == 0) return m;
  return -1;
}

static int online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) return 1;
  return n > MAX_JOBS ? MAX_JOBS : (int)n;
}

/* Parses argv into cfg. Returns 0, EXIT_USAGE, or -1 after --help. */
static int parse_args(int argc, char **argv, config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (int i = 0; i < N_PROBLEMS; i++) cfg->problems[i] = i + 1;
  cfg->n_problems = N_PROBLEMS;
  cfg->models[0] = MODEL_RAD;
  cfg->models[1] = MODEL_REALNVP;
  cfg->n_models = N_MODELS;
  cfg->steps = 50000;
  cfg->seed = 1;
  cfg->out = "paper-out";
  cfg->rad_lr = 3e-3;
  cfg->realnvp_lr = 1e-3;
  cfg->schedule = 1;
  cfg->clip = 0.0;
  cfg->logit_bound = 3.0;
  cfg->layers = 6;
  cfg->rad_hidden = 8;
  cfg->rad_gate_hidden = 8;
  cfg->realnvp_hidden = 56;
  cfg->batch = 500;
  cfg->train_size = 10000;
  cfg->test_size = 10000;
  cfg->jobs = online_cpus();
  cfg->plots = 1;
  cfg->quiet = 0;

  static const char *const with_value[] = {
      "--problems", "--models", "--steps", "--seed", "--out", "--lr", "--rad-lr", "--realnvp-lr", "--clip-norm",
      "--lr-schedule", "--logit-bound", "--layers", "--rad-hidden",
      "--rad-gate-hidden", "--realnvp-hidden", "--batch", "--train-size",
      "--test-size", "--jobs"};
  const size_t n_with_value = sizeof with_value / sizeof with_value[0];

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      return -1;
    }
    if (strcmp(arg, "--no-plots") == 0) {
      cfg->plots = 0;
      continue;
    }
    if (strcmp(arg, "--quiet") == 0) {
      cfg->quiet = 1;
      continue;
    }
    if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0')
      return usage_error("unknown option '%s'", arg);
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
      return usage_error("unexpected argument '%s'", arg);
    /* --name VALUE or --name=VALUE */
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    const char *name = NULL;
    for (size_t k = 0; k < n_with_value; k++)
      if (strlen(with_value[k]) == name_len &&
          strncmp(arg, with_value[k], name_len) == 0)
        name = with_value[k];
    if (!name) {
      static const char *const flags[] = {"--no-plots", "--quiet", "--help"};
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
    uint64_t u;
    if (strcmp(name, "--problems") == 0) {
      rc = parse_list(name, val, lookup_problem,
                      "grid, ring, moons, circles, spiral, many_moons",
                      N_PROBLEMS, cfg->problems, &cfg->n_problems);
    } else if (strcmp(name, "--models") == 0) {
      rc = parse_list(name, val, lookup_model, "rad, realnvp", N_MODELS,
                      cfg->models, &cfg->n_models);
    } else if (strcmp(name, "--steps") == 0) {
      rc = parse_u64(name, val, 1, MAX_STEPS, &cfg->steps);
    } else if (strcmp(name, "--seed") == 0) {
      rc = parse_u64(name, val, 0, UINT64_MAX, &cfg->seed);
    } else if (strcmp(name, "--out") == 0) {
      if (val[0] == '\0') return usage_error("--out: empty directory name");
      cfg->out = val;
    } else if (strcmp(name, "--lr") == 0 || strcmp(name, "--rad-lr") == 0 ||
               strcmp(name, "--realnvp-lr") == 0) {
      double lr;
      rc = parse_double(name, val, 0, &lr);
      if (rc == 0 && !(lr > 0.0)) return usage_error("%s: %s must be > 0", name, val);
      if (strcmp(name, "--realnvp-lr") != 0) cfg->rad_lr = lr;
      if (strcmp(name, "--rad-lr") != 0) cfg->realnvp_lr = lr;
    } else if (strcmp(name, "--clip-norm") == 0) {
      rc = parse_double(name, val, 1, &cfg->clip);
      if (rc == 0 && !(cfg->clip >= 0.0)) return usage_error("--clip-norm: %s must be >= 0", val);
    } else if (strcmp(name, "--lr-schedule") == 0) {
      if (strcmp(val, "constant") == 0)
        cfg->schedule = 0;
      else if (strcmp(val, "cosine") == 0)
        cfg->schedule = 1;
      else
        return usage_error(
            "--lr-schedule: unknown schedule '%s' (valid: constant, cosine)",
            val);
    } else if (strcmp(name, "--logit-bound") == 0) {
      rc = parse_double(name, val, 1, &cfg->logit_bound);
      if (rc == 0 && !(cfg->logit_bound >= 0.0))
        return usage_error("--logit-bound: %s must be >= 0 (0 or inf: "
                           "unclamped)",
                           val);
    } else if (strcmp(name, "--layers") == 0) {
      rc = parse_size(name, val, 1, MAX_LAYERS, &cfg->layers);
    } else if (strcmp(name, "--rad-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->rad_hidden);
    } else if (strcmp(name, "--rad-gate-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->rad_gate_hidden);
    } else if (strcmp(name, "--realnvp-hidden") == 0) {
      rc = parse_size(name, val, 1, MAX_HIDDEN, &cfg->realnvp_hidden);
    } else if (strcmp(name, "--batch") == 0) {
      rc = parse_size(name, val, 1, MAX_POINTS, &cfg->batch);
    } else if (strcmp(name, "--train-size") == 0) {
      rc = parse_size(name, val, 1, MAX_POINTS, &cfg->train_size);
    } else if (strcmp(name, "--test-size") == 0) {
      rc = parse_size(name, val, 1, MAX_POINTS, &cfg->test_size);
    } else if (strcmp(name, "--jobs") == 0) {
      rc = parse_u64(name, val, 1, MAX_JOBS, &u);
      if (rc == 0) cfg->jobs = (int)u;
    }
    if (rc) return rc;
  }
  return 0;
}

/* ---- Seeds -------------------------------------------------------------- */

/* splitmix64's output function applied to x + the golden-ratio increment: a
   bijection of 64-bit integers. */
static uint64_t mix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t derive_seed(uint64_t base, int problem, int stream) {
  return mix64(mix64(mix64(base) ^ (uint64_t)problem) ^ (uint64_t)stream);
}

/* ---- Time --------------------------------------------------------------- */

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "m:ss" or "h:mm:ss". */
static void format_duration(double s, char *buf, size_t len) {
  if (!(s >= 0.0) || s > 360000000.0) {
    snprintf(buf, len, "--:--");
    return;
  }
  unsigned long t = (unsigned long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

/* ---- Shared state of a session ------------------------------------------ */

typedef struct problem_data {
  int id;
  const char *name;
  float *train; /* train_size x 2 */
  float *test;  /* test_size x 2 */
} problem_data;

typedef struct run {
  const problem_data *problem;
  int model;
  uint64_t progress;   /* steps reported so far */
  uint64_t steps_done; /* steps taken by the fit */
  double test_ll;
  double seconds;
  int finished; /* trained and evaluated */
  float *samples; /* PLOT_POINTS x 2 model samples (for summary.png) */
  struct session *session;
} run;

typedef struct session {
  const config *cfg;
  problem_data *problems;
  run *runs;
  int n_runs;
  int summary; /* draw summary.png */

  pthread_mutex_t lock; /* guards everything below and stdout/stderr */
  int next_run;
  int runs_done;
  int failed;
  uint64_t total_steps, done_steps;
  double t0;
  int bar;         /* draw the progress bar */
  int bar_visible; /* something is on the bar's line */
  double bar_last; /* time of the last redraw */
} session;

/* Progress bar (lock held). */
static void bar_draw_locked(session *S, int force) {
  if (!S->bar) return;
  double now = now_seconds();
  if (!force && now - S->bar_last < 0.1) return;
  S->bar_last = now;
  double elapsed = now - S->t0;
  double frac = S->total_steps ? (double)S->done_steps / (double)S->total_steps
                               : 1.0;
  if (frac > 1.0) frac = 1.0;
  double rate = elapsed > 0.0 ? (double)S->done_steps / elapsed : 0.0;
  char el[24], left[24];
  format_duration(elapsed, el, sizeof el);
  if (rate > 0.0)
    format_duration((double)(S->total_steps - S->done_steps) / rate, left,
                    sizeof left);
  else
    snprintf(left, sizeof left, "--:--");
  enum { W = 20 };
  char bar[W + 1];
  int fill = (int)(frac * W + 1e-9);
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
  bar[W] = '\0';
  fprintf(stderr,
          "\r[%s] %5.1f%% %6.0f steps/s  %s elapsed  %s left  runs %d/%d"
          "\033[K",
          bar, 100.0 * frac, rate, el, left, S->runs_done, S->n_runs);
  fflush(stderr);
  S->bar_visible = 1;
}

static void bar_clear_locked(session *S) {
  if (S->bar && S->bar_visible) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
    S->bar_visible = 0;
  }
}

/* An error of a run: printed at once (lock not held by the caller). */
static void run_error(run *r, const char *fmt, ...) {
  session *S = r->session;
  pthread_mutex_lock(&S->lock);
  bar_clear_locked(S);
  fprintf(stderr, PROG ": problem=%s model=%s: ", r->problem->name,
          MODEL_NAME[r->model]);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  S->failed = 1;
  pthread_mutex_unlock(&S->lock);
}

static void rad_error(run *r, const char *what, int rc) {
  run_error(r, "%s failed: %s (status %d)", what, rad_strerror(rc), rc);
}

static const char *plot_strerror(int rc) {
  switch (rc) {
  case PLOT_OK: return "success";
  case PLOT_EINVAL: return "invalid argument";
  case PLOT_ENOMEM: return "out of memory";
  case PLOT_EIO: return "cannot write the file";
  default: return "unknown plot error";
  }
}

static int fit_callback(void *user, uint64_t step, double train_ll,
                        double heldout_ll) {
  (void)train_ll;
  (void)heldout_ll;
  run *r = user;
  session *S = r->session;
  pthread_mutex_lock(&S->lock);
  if (step > r->progress) {
    S->done_steps += step - r->progress;
    r->progress = step;
  }
  bar_draw_locked(S, 0);
  int stop = S->failed;
  pthread_mutex_unlock(&S->lock);
  return stop;
}

/* ---- Pictures ----------------------------------------------------------- */

/* "path/NAME_MODEL<suffix>.png"; NULL if out of memory. */
static char *out_path(const config *cfg, const char *file) {
  size_t len = strlen(cfg->out) + 1 + strlen(file) + 1;
  char *p = malloc(len);
  if (p) snprintf(p, len, "%s/%s", cfg->out, file);
  return p;
}

/* The data window of a problem: the bounding box of (up to PLOT_POINTS)
   training points, padded, with equal scales on a square panel. */
static int data_window(plot_panel *p, const problem_data *pd, int n) {
  return plot_panel_fit(p, n, pd->train, 0.08f, 1);
}

static int copy_window(plot_panel *dst, const plot_panel *src) {
  return plot_panel_window(dst, src->xmin, src->xmax, src->ymin, src->ymax);
}

/* A light background and frame for a scatter panel. */
static int panel_frame(const plot_panel *p) {
  int rc = plot_panel_fill(p, 0xF7F7F7u);
  return rc ? rc : plot_panel_frame(p, PLOT_LIGHT_GREY);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Figure 1: data, density, samples, Gaussianized data. */
static int figure_main(run *r, const rad_flow *flow, const float *samples,
                       const char *path) {
  const config *cfg = r->session->cfg;
  const problem_data *pd = r->problem;
  const int n = (int)(cfg->train_size < PLOT_POINTS ? cfg->train_size
                                                     : PLOT_POINTS);
  int rc = 0, lrc = RAD_OK;
  const char *what = NULL;
  const size_t G = HEAT_GRID;
  float *grid = malloc(G * G * 2 * sizeof(float));
  float *dens = malloc(G * G * sizeof(float));
  float *z = malloc((size_t)n * 2 * sizeof(float));
  unsigned char *rgb = malloc((size_t)n * 3);
  plot_canvas *c = plot_canvas_new(4 * 400 + 5 * 16, 400 + 56 + 30 + 16);
  plot_panel p[4];
  if (!grid || !dens || !z || !rgb || !c) {
    rc = PLOT_ENOMEM;
    goto done;
  }
  if ((rc = plot_grid(c, 1, 4, 16, 56, 30, 1, p))) goto done;
  if ((rc = data_window(&p[0], pd, n))) goto done;
  for (int i = 1; i < 3; i++)
    if ((rc = copy_window(&p[i], &p[0]))) goto done;
  if ((rc = plot_panel_window(&p[3], -4.0f, 4.0f, -4.0f, 4.0f))) goto done;

  /* (a) training data, coloured by position (the key to panel d) */
  if ((rc = plot_colours_position(n, pd->train, p[0].xmin, p[0].xmax,
                                  p[0].ymin, p[0].ymax, rgb)))
    goto done;
  if ((rc = panel_frame(&p[0]))) goto done;
  if ((rc = plot_scatter(&p[0], n, pd->train, rgb, 0, 0.35f, 1))) goto done;
  if ((rc = plot_panel_title(&p[0], "(a) training data", PLOT_BLACK, 2)))
    goto done;

  /* (b) density exp(log p) on a G x G grid over the window, row 0 on top */
  for (size_t j = 0; j < G; j++)
    for (size_t i = 0; i < G; i++) {
      float *g = grid + 2 * (j * G + i);
      g[0] = p[1].xmin + ((float)i + 0.5f) * (p[1].xmax - p[1].xmin) / (float)G;
      g[1] = p[1].ymax - ((float)j + 0.5f) * (p[1].ymax - p[1].ymin) / (float)G;
    }
  if ((lrc = rad_flow_log_prob(flow, G * G, grid, dens))) {
    what = "rad_flow_log_prob (density grid)";
    goto done;
  }
  float gmax = 0.0f;
  for (size_t i = 0; i < G * G; i++) {
    dens[i] = expf(dens[i]);
    if (isfinite(dens[i]) && dens[i] > gmax) gmax = dens[i];
  }
  /* The colour scale saturates at the 95th percentile of the model density
     over the training points (z holds them for now), so that a few sharp
     peaks do not leave everything else black. */
  float vmax = gmax;
  if ((lrc = rad_flow_log_prob(flow, (size_t)n, pd->train, z))) {
    what = "rad_flow_log_prob (training points)";
    goto done;
  }
  for (int i = 0; i < n; i++) z[i] = expf(z[i]);
  qsort(z, (size_t)n, sizeof(float), cmp_float);
  {
    const float q = z[(size_t)((double)(n - 1) * 0.95)];
    if (isfinite(q) && q > 0.0f && q < vmax) vmax = q;
  }
  if (!(vmax > 0.0f) || !isfinite(vmax)) vmax = 1.0f;
  if ((rc = plot_heatmap(&p[1], (int)G, (int)G, dens, 0.0f, vmax,
                         PLOT_CMAP_MAGMA)))
    goto done;
  if ((rc = plot_panel_frame(&p[1], PLOT_LIGHT_GREY))) goto done;
  if ((rc = plot_panel_title(&p[1], "(b) density exp(log p)", PLOT_BLACK, 2)))
    goto done;

  /* (c) samples */
  if ((rc = panel_frame(&p[2]))) goto done;
  if ((rc = plot_scatter(&p[2], PLOT_POINTS, samples, NULL, PLOT_BLUE, 0.35f,
                         1)))
    goto done;
  if ((rc = plot_panel_title(&p[2], "(c) samples", PLOT_BLACK, 2))) goto done;

  /* (d) z = f(x) with the N(0, I) level sets */
  for (size_t i = 0; i < (size_t)n * 2; i++) z[i] = NAN;
  lrc = rad_flow_forward(flow, (size_t)n, pd->train, z, NULL, NULL);
  if (lrc != RAD_OK && lrc != RAD_EOVERFLOW) {
    what = "rad_flow_forward";
    goto done;
  }
  lrc = RAD_OK;
  if ((rc = panel_frame(&p[3]))) goto done;
  if ((rc = plot_scatter(&p[3], n, z, rgb, 0, 0.35f, 1))) goto done;
  if ((rc = plot_line(&p[3], -4.0f, 0.0f, 4.0f, 0.0f, PLOT_LIGHT_GREY, 1)))
    goto done;
  if ((rc = plot_line(&p[3], 0.0f, -4.0f, 0.0f, 4.0f, PLOT_LIGHT_GREY, 1)))
    goto done;
  for (int k = 1; k <= 3; k++)
    if ((rc = plot_circle(&p[3], 0.0f, 0.0f, (float)k, PLOT_DARK_GREY, 2)))
      goto done;
  if ((rc = plot_panel_title(&p[3], "(d) z = f(x), N(0,I) levels", PLOT_BLACK,
                             2)))
    goto done;

  /* caption */
  {
    char cap[256];
    snprintf(cap, sizeof cap,
             "%s - %s (%zu layers, %s) - test LL %.4f (true %.2f, gap %.4f)",
             pd->name, MODEL_TITLE[r->model], cfg->layers,
             r->model == MODEL_RAD ? "RAD coupling" : "affine coupling",
             r->test_ll, rad_problem_true_log_likelihood(pd->id),
             rad_problem_true_log_likelihood(pd->id) - r->test_ll);
    if ((rc = plot_text_centred(c, c->width / 2, 10, cap, PLOT_BLACK, 2)))
      goto done;
    snprintf(cap, sizeof cap,
             "%llu steps. (a), (d): colours mark where each point starts in x. "
             "(b): linear scale, saturated at the 95th percentile of p over "
             "the training points.",
             (unsigned long long)r->steps_done);
    if ((rc = plot_text_centred(c, c->width / 2, 34, cap, PLOT_DARK_GREY, 1)))
      goto done;
  }
  rc = plot_canvas_save_png(c, path);
done:
  if (lrc != RAD_OK)
    rad_error(r, what, lrc);
  else if (rc)
    run_error(r, "cannot draw %s: %s", path, plot_strerror(rc));
  free(grid);
  free(dens);
  free(z);
  free(rgb);
  plot_canvas_free(c);
  return lrc != RAD_OK || rc ? -1 : 0;
}


/* Fits the window of a layer panel to its points, ignoring the most extreme
   0.1% on each side of each axis (with 1,000 points or more) so that a few
   stray points do not squeeze the rest into a corner. scratch: 2n floats. */
static int fit_layer_window(plot_panel *p, int n, const float *xy,
                            float *scratch) {
  float *xs = scratch, *ys = scratch + n;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (isfinite(xy[2 * i]) && isfinite(xy[2 * i + 1])) {
      xs[m] = xy[2 * i];
      ys[m] = xy[2 * i + 1];
      m++;
    }
  if (m < 1000) return plot_panel_fit(p, n, xy, 0.05f, 1);
  qsort(xs, (size_t)m, sizeof(float), cmp_float);
  qsort(ys, (size_t)m, sizeof(float), cmp_float);
  const int lo = m / 1000, hi = m - 1 - m / 1000;
  const float box[4] = {xs[lo], ys[lo], xs[hi], ys[hi]};
  return plot_panel_fit(p, 2, box, 0.05f, 1);
}

/* The colour key of the label rows. */
static int label_legend(const plot_panel *p, int scale) {
  int rc = plot_panel_fill(p, PLOT_WHITE);
  if (rc) return rc;
  plot_panel q = *p;
  if ((rc = plot_panel_window(&q, 0.0f, 1.0f, 0.0f, 1.0f))) return rc;
  for (int k = 1; k <= 3; k++) {
    const float y = 0.75f - 0.2f * (float)(k - 1);
    const float xy[2] = {0.25f, y};
    const int32_t lab = k;
    if ((rc = plot_scatter_labels(&q, 1, xy, &lab, 1.0f, 4 * scale)))
      return rc;
    double px, py;
    if ((rc = plot_panel_to_pixel(&q, 0.37, y, &px, &py))) return rc;
    char s[16];
    snprintf(s, sizeof s, "k = %d", k);
    if ((rc = plot_text(p->canvas, (int)px, (int)py - 7 * scale / 2 - 1, s,
                        PLOT_BLACK, scale)))
      return rc;
  }
  double px, py;
  if ((rc = plot_panel_to_pixel(&q, 0.5, 0.12, &px, &py))) return rc;
  return plot_text_centred(p->canvas, (int)px, (int)py - 4,
                           "label of the fold's\npiece in that layer",
                           PLOT_DARK_GREY, 1);
}

/* Figure 2: the training points after each layer (paper Figures 13-16). */
static int figure_layers(run *r, const rad_flow *flow, const char *path) {
  const config *cfg = r->session->cfg;
  const problem_data *pd = r->problem;
  const int n = (int)(cfg->train_size < PLOT_POINTS ? cfg->train_size
                                                     : PLOT_POINTS);
  const size_t L = rad_flow_num_layers(flow);
  const size_t nl = rad_flow_num_labels(flow);
  const size_t per_layer = L ? nl / L : 0; /* labels per RAD layer */
  const int rows = nl ? 2 : 1, cols = (int)L + 1;
  const int margin = 12, header = 50, title_h = 26;
  int side = (PLOT_MAX_SIDE - margin) / cols - margin;
  if (side > 240) side = 240;
  const int scale = side >= 160 ? 2 : 1;
  int rc = 0, lrc = RAD_OK;
  float *zs = malloc(L * (size_t)n * 2 * sizeof(float));
  int32_t *k = nl ? malloc(nl * (size_t)n * sizeof(int32_t)) : NULL;
  int32_t *lab = malloc((size_t)n * sizeof(int32_t));
  unsigned char *rgb = malloc((size_t)n * 3);
  float *scratch = malloc((size_t)n * 2 * sizeof(float));
  plot_panel *p = malloc((size_t)rows * (size_t)cols * sizeof *p);
  char cap[160], sub[160];
  snprintf(cap, sizeof cap, "%s - %s: the training points after each layer",
           pd->name, MODEL_TITLE[r->model]);
  snprintf(sub, sizeof sub, "%s",
           rows == 2 ? "top: coloured by where each point starts in x; "
                       "bottom: by the discrete label k of that layer's fold"
                     : "coloured by where each point starts in x");
  int width = cols * (side + margin) + margin;
  if (plot_text_width(cap, 2) + 2 * margin > width)
    width = plot_text_width(cap, 2) + 2 * margin;
  if (plot_text_width(sub, 1) + 2 * margin > width)
    width = plot_text_width(sub, 1) + 2 * margin;
  plot_canvas *c = plot_canvas_new(
      width, header + rows * (side + title_h + margin) + margin);
  if (!zs || (nl && !k) || !lab || !rgb || !scratch || !p || !c) {
    rc = PLOT_ENOMEM;
    goto done;
  }
  /* if some z overflows, draw what there is: unwritten points stay NaN
     (not drawn) and unwritten labels -1 (drawn grey) */
  for (size_t i = 0; i < L * (size_t)n * 2; i++) zs[i] = NAN;
  for (size_t i = 0; i < nl * (size_t)n; i++) k[i] = -1;
  lrc = rad_flow_forward_layers(flow, (size_t)n, pd->train, zs, k);
  if (lrc == RAD_EOVERFLOW) lrc = RAD_OK;
  if (lrc != RAD_OK) goto done;
  if ((rc = plot_grid(c, rows, cols, margin, header, title_h, 1, p))) goto done;

  /* row 0: coloured by where the points started */
  if ((rc = data_window(&p[0], pd, n))) goto done;
  if ((rc = plot_colours_position(n, pd->train, p[0].xmin, p[0].xmax,
                                  p[0].ymin, p[0].ymax, rgb)))
    goto done;
  for (int col = 0; col < cols; col++) {
    plot_panel *q = &p[col];
    const float *pts = col == 0 ? pd->train : zs + (size_t)(col - 1) * n * 2;
    char title[48];
    if (col == 0)
      snprintf(title, sizeof title, "input x");
    else if (col == cols - 1)
      snprintf(title, sizeof title, "layer %d = z", col);
    else
      snprintf(title, sizeof title, "layer %d", col);
    if (col > 0 && (rc = fit_layer_window(q, n, pts, scratch))) goto done;
    if ((rc = panel_frame(q))) goto done;
    if ((rc = plot_scatter(q, n, pts, rgb, 0, 0.3f, 1))) goto done;
    if ((rc = plot_panel_title(q, title, PLOT_BLACK, scale))) goto done;
  }
  /* row 1 (RAD): the same points coloured by that layer's label */
  if (rows == 2) {
    if ((rc = label_legend(&p[cols], scale))) goto done;
    if ((rc = plot_panel_title(&p[cols], "colours:", PLOT_BLACK, scale)))
      goto done;
    for (int col = 1; col < cols; col++) {
      plot_panel *q = &p[cols + col];
      const float *pts = zs + (size_t)(col - 1) * n * 2;
      for (int i = 0; i < n; i++)
        lab[i] = k[(size_t)i * nl + (size_t)(col - 1) * per_layer];
      if ((rc = copy_window(q, &p[col]))) goto done;
      if ((rc = panel_frame(q))) goto done;
      if ((rc = plot_scatter_labels(q, n, pts, lab, 0.3f, 1))) goto done;
      char title[48];
      snprintf(title, sizeof title, "k, layer %d", col);
      if ((rc = plot_panel_title(q, title, PLOT_BLACK, scale))) goto done;
    }
  }
  if ((rc = plot_text_centred(c, c->width / 2, 8, cap, PLOT_BLACK, 2)) ||
      (rc = plot_text_centred(c, c->width / 2, 32, sub, PLOT_DARK_GREY, 1)))
    goto done;
  rc = plot_canvas_save_png(c, path);
done:
  if (lrc != RAD_OK)
    rad_error(r, "rad_flow_forward_layers", lrc);
  else if (rc)
    run_error(r, "cannot draw %s: %s", path, plot_strerror(rc));
  free(zs);
  free(k);
  free(lab);
  free(rgb);
  free(scratch);
  free(p);
  plot_canvas_free(c);
  return lrc != RAD_OK || rc ? -1 : 0;
}

/* ---- One run ------------------------------------------------------------ */

#define FIT_SEED_MASK ((UINT64_C(1) << 53) - 1)

static int do_run(run *r) {
  session *S = r->session;
  const config *cfg = S->cfg;
  const problem_data *pd = r->problem;
  const int m = r->model;
  rad_flow *flow = NULL;
  rad_fit_options *fo = NULL;
  float *lp = NULL, *samples = NULL;
  char *path = NULL;
  int ret = -1, rc;
  char file[64];

  const uint64_t init_seed = derive_seed(cfg->seed, pd->id, STREAM_INIT + m);
  const uint64_t fit_seed =
      derive_seed(cfg->seed, pd->id, STREAM_FIT + m) & FIT_SEED_MASK;
  if (m == MODEL_RAD)
    rc = rad_flow_create(RAD_LAYER_RAD, 2, cfg->layers, cfg->rad_hidden,
                         cfg->rad_gate_hidden, init_seed, &flow);
  else
    rc = rad_flow_create(RAD_LAYER_AFFINE, 2, cfg->layers, cfg->realnvp_hidden,
                         0, init_seed, &flow);
  if (rc) {
    rad_error(r, "rad_flow_create", rc);
    goto done;
  }
  if (m == MODEL_RAD &&
      (rc = rad_flow_set_option(flow, RAD_OPTION_LOGIT_BOUND,
                                cfg->logit_bound))) {
    rad_error(r, "rad_flow_set_option(LOGIT_BOUND)", rc);
    goto done;
  }
  if ((rc = rad_fit_options_create(&fo))) {
    rad_error(r, "rad_fit_options_create", rc);
    goto done;
  }
  {
    const struct {
      int key;
      double value;
      const char *name;
    } opts[] = {
        {RAD_OPTION_BATCH_SIZE, (double)cfg->batch, "BATCH_SIZE"},
        {RAD_OPTION_STEPS, (double)cfg->steps, "STEPS"},
        {RAD_OPTION_LEARNING_RATE, m == MODEL_RAD ? cfg->rad_lr : cfg->realnvp_lr,
         "LEARNING_RATE"},
        {RAD_OPTION_LR_SCHEDULE, (double)cfg->schedule, "LR_SCHEDULE"},
        {RAD_OPTION_CLIP_NORM, cfg->clip, "CLIP_NORM"},
        {RAD_OPTION_SEED, (double)fit_seed, "SEED"},
        {RAD_OPTION_REPORT_EVERY, REPORT_EVERY, "REPORT_EVERY"},
        {RAD_OPTION_EVAL_EVERY, 0, "EVAL_EVERY"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
      if ((rc = rad_fit_options_set(fo, opts[i].key, opts[i].value))) {
        run_error(r, "rad_fit_options_set(%s, %g) failed: %s (status %d)",
                  opts[i].name, opts[i].value, rad_strerror(rc), rc);
        goto done;
      }
  }

  const double t0 = now_seconds();
  uint64_t steps_done = 0;
  rc = rad_flow_fit(flow, NULL, fo, cfg->train_size, pd->train, 0, NULL,
                    fit_callback, r, &steps_done);
  r->seconds = now_seconds() - t0;
  r->steps_done = steps_done;
  if (rc) {
    run_error(r, "rad_flow_fit failed after %llu steps: %s (status %d)",
              (unsigned long long)steps_done, rad_strerror(rc), rc);
    goto done;
  }
  pthread_mutex_lock(&S->lock);
  const int stopped = S->failed;
  pthread_mutex_unlock(&S->lock);
  if (stopped) goto done; /* another run failed: stop quietly */

  lp = malloc(cfg->test_size * sizeof(float));
  if (!lp) {
    run_error(r, "out of memory");
    goto done;
  }
  if ((rc = rad_flow_log_prob(flow, cfg->test_size, pd->test, lp))) {
    rad_error(r, "rad_flow_log_prob (test set)", rc);
    goto done;
  }
  double sum = 0.0;
  for (size_t i = 0; i < cfg->test_size; i++) sum += lp[i];
  r->test_ll = sum / (double)cfg->test_size;

  pthread_mutex_lock(&S->lock);
  bar_clear_locked(S);
  printf("result problem=%s model=%s test_ll=%.4f steps=%llu seconds=%.2f\n",
         pd->name, MODEL_NAME[m], r->test_ll, (unsigned long long)steps_done,
         r->seconds);
  fflush(stdout);
  r->finished = 1;
  bar_draw_locked(S, 1);
  pthread_mutex_unlock(&S->lock);

  if (cfg->plots) {
    samples = malloc((size_t)PLOT_POINTS * 2 * sizeof(float));
    if (!samples) {
      run_error(r, "out of memory");
      goto done;
    }
    for (size_t i = 0; i < (size_t)PLOT_POINTS * 2; i++) samples[i] = NAN;
    const uint64_t sample_seed =
        derive_seed(cfg->seed, pd->id, STREAM_SAMPLE + m);
    rc = rad_flow_sample(flow, sample_seed, PLOT_POINTS, samples, NULL, NULL);
    if (rc != RAD_OK && rc != RAD_EOVERFLOW) { /* overflowed ones: not drawn */
      rad_error(r, "rad_flow_sample", rc);
      goto done;
    }
    snprintf(file, sizeof file, "%s_%s.png", pd->name, MODEL_NAME[m]);
    if (!(path = out_path(cfg, file))) {
      run_error(r, "out of memory");
      goto done;
    }
    if (figure_main(r, flow, samples, path)) goto done;
    free(path);
    snprintf(file, sizeof file, "%s_%s_layers.png", pd->name, MODEL_NAME[m]);
    if (!(path = out_path(cfg, file))) {
      run_error(r, "out of memory");
      goto done;
    }
    if (figure_layers(r, flow, path)) goto done;
    if (S->summary) {
      r->samples = samples;
      samples = NULL;
    }
  }
  ret = 0;
done:
  pthread_mutex_lock(&S->lock);
  S->runs_done++;
  if (cfg->steps > r->progress) { /* count the rest as done for the bar */
    S->done_steps += cfg->steps - r->progress;
    r->progress = cfg->steps;
  }
  bar_draw_locked(S, 1);
  pthread_mutex_unlock(&S->lock);
  free(path);
  free(samples);
  free(lp);
  rad_fit_options_free(fo);
  rad_flow_free(flow);
  return ret;
}

static void *worker(void *arg) {
  session *S = arg;
  for (;;) {
    pthread_mutex_lock(&S->lock);
    if (S->failed || S->next_run >= S->n_runs) {
      pthread_mutex_unlock(&S->lock);
      break;
    }
    run *r = &S->runs[S->next_run++];
    pthread_mutex_unlock(&S->lock);
    do_run(r); /* a failure sets S->failed */
  }
  return NULL;
}

/* ---- Summary figure ----------------------------------------------------- */

static const run *find_run(const session *S, int problem_id, int model) {
  for (int i = 0; i < S->n_runs; i++)
    if (S->runs[i].problem->id == problem_id && S->runs[i].model == model)
      return &S->runs[i];
  return NULL;
}

static int figure_summary(const session *S, const char *path) {
  const config *cfg = S->cfg;
  const int rows = cfg->n_problems, cols = 3;
  const int margin = 14, header = 50, title_h = 28, side = 300;
  const int n = (int)(cfg->train_size < PLOT_POINTS ? cfg->train_size
                                                     : PLOT_POINTS);
  int rc;
  plot_panel p[N_PROBLEMS * 3];
  plot_canvas *c =
      plot_canvas_new(cols * (side + margin) + margin,
                      header + rows * (side + title_h + margin) + margin);
  if (!c) return PLOT_ENOMEM;
  if ((rc = plot_grid(c, rows, cols, margin, header, title_h, 1, p))) goto done;
  for (int row = 0; row < rows; row++) {
    const problem_data *pd = &S->problems[row];
    plot_panel *q = &p[row * cols];
    char title[64];
    if ((rc = data_window(&q[0], pd, n))) goto done;
    if ((rc = panel_frame(&q[0]))) goto done;
    if ((rc = plot_scatter(&q[0], n, pd->train, NULL, PLOT_DARK_GREY, 0.3f, 1)))
      goto done;
    snprintf(title, sizeof title, "%s: data", pd->name);
    if ((rc = plot_panel_title(&q[0], title, PLOT_BLACK, 2))) goto done;
    for (int m = 0; m < N_MODELS; m++) {
      const run *r = find_run(S, pd->id, m);
      plot_panel *pm = &q[1 + m];
      if ((rc = copy_window(pm, &q[0]))) goto done;
      if ((rc = panel_frame(pm))) goto done;
      if (r && r->samples &&
          (rc = plot_scatter(pm, PLOT_POINTS, r->samples, NULL,
                             m == MODEL_RAD ? PLOT_BLUE : PLOT_RED, 0.3f, 1)))
        goto done;
      snprintf(title, sizeof title, "%s: LL %.3f", MODEL_TITLE[m],
               r ? r->test_ll : NAN);
      if ((rc = plot_panel_title(pm, title, PLOT_BLACK, 2))) goto done;
    }
  }
  {
    char cap[160];
    snprintf(cap, sizeof cap, "Data and model samples (paper Figure 11)");
    if ((rc = plot_text_centred(c, c->width / 2, 8, cap, PLOT_BLACK, 2)))
      goto done;
    snprintf(cap, sizeof cap,
             "%llu steps, %zu layers, seed %llu; titles: mean test "
             "log-likelihood (nats)",
             (unsigned long long)cfg->steps, cfg->layers,
             (unsigned long long)cfg->seed);
    if ((rc = plot_text_centred(c, c->width / 2, 32, cap, PLOT_DARK_GREY, 1)))
      goto done;
  }
  rc = plot_canvas_save_png(c, path);
done:
  plot_canvas_free(c);
  return rc;
}

/* ---- Results table ------------------------------------------------------ */

#define N_COLS 8
static const char *const COL_HEAD[N_COLS] = {
    "problem", "RAD", "REAL NVP", "true LL", "RAD gap", "REAL NVP gap",
    "paper RAD", "paper REAL NVP"};
static const char *const TSV_HEAD[N_COLS] = {
    "problem", "rad", "realnvp", "true_ll", "rad_gap", "realnvp_gap",
    "paper_rad", "paper_realnvp"};

/* cells[row][col]; missing values are "" and printed as "-" or "NA". */
typedef char table_row[N_COLS][24];

static void fill_table(const session *S, table_row *t) {
  const config *cfg = S->cfg;
  for (int i = 0; i < cfg->n_problems; i++) {
    const problem_data *pd = &S->problems[i];
    const double truth = rad_problem_true_log_likelihood(pd->id);
    memset(t[i], 0, sizeof t[i]);
    snprintf(t[i][0], sizeof t[i][0], "%s", pd->name);
    snprintf(t[i][3], sizeof t[i][3], "%.2f", truth);
    for (int m = 0; m < N_MODELS; m++) {
      const run *r = find_run(S, pd->id, m);
      if (r && r->finished) {
        snprintf(t[i][1 + m], sizeof t[i][1 + m], "%.4f", r->test_ll);
        snprintf(t[i][4 + m], sizeof t[i][4 + m], "%.4f", truth - r->test_ll);
      }
      snprintf(t[i][6 + m], sizeof t[i][6 + m], "%.2f",
               PAPER_LL[pd->id - 1][m]);
    }
  }
}

/* How many problems RAD beats REAL NVP on; -1 if not both ran. */
static int rad_wins(const session *S, int *compared) {
  int wins = 0, n = 0;
  for (int i = 0; i < S->cfg->n_problems; i++) {
    const run *a = find_run(S, S->problems[i].id, MODEL_RAD);
    const run *b = find_run(S, S->problems[i].id, MODEL_REALNVP);
    if (!a || !b || !a->finished || !b->finished) continue;
    n++;
    if (a->test_ll > b->test_ll) wins++;
  }
  *compared = n;
  return n ? wins : -1;
}

static void verdict(const session *S, char *buf, size_t len) {
  int n, w = rad_wins(S, &n);
  if (w < 0)
    snprintf(buf, len, "RAD vs REAL NVP: not compared (only one model ran).");
  else
    snprintf(buf, len, "RAD beats REAL NVP on %d of %d problem%s.", w, n,
             n == 1 ? "" : "s");
}

/* A markdown table with padded columns (numbers right-aligned). */
static void print_markdown(FILE *f, table_row *t, int rows) {
  size_t w[N_COLS];
  for (int c = 0; c < N_COLS; c++) {
    w[c] = strlen(COL_HEAD[c]);
    for (int i = 0; i < rows; i++) {
      size_t l = t[i][c][0] ? strlen(t[i][c]) : 1;
      if (l > w[c]) w[c] = l;
    }
  }
  for (int c = 0; c < N_COLS; c++)
    fprintf(f, "| %-*s ", (int)w[c], COL_HEAD[c]);
  fputs("|\n", f);
  for (int c = 0; c < N_COLS; c++) {
    fputs(c ? "| " : "| ", f);
    for (size_t k = 0; k + 1 < w[c]; k++) fputc('-', f);
    fputs(c ? ": " : "- ", f);
  }
  fputs("|\n", f);
  for (int i = 0; i < rows; i++) {
    for (int c = 0; c < N_COLS; c++) {
      const char *s = t[i][c][0] ? t[i][c] : "-";
      if (c == 0)
        fprintf(f, "| %-*s ", (int)w[c], s);
      else
        fprintf(f, "| %*s ", (int)w[c], s);
    }
    fputs("|\n", f);
  }
}

static void print_tsv(FILE *f, table_row *t, int rows) {
  for (int c = 0; c < N_COLS; c++)
    fprintf(f, "%s%c", TSV_HEAD[c], c + 1 < N_COLS ? '\t' : '\n');
  for (int i = 0; i < rows; i++)
    for (int c = 0; c < N_COLS; c++)
      fprintf(f, "%s%c", t[i][c][0] ? t[i][c] : "NA",
              c + 1 < N_COLS ? '\t' : '\n');
}

/* Writes a file through a temporary name and a rename. */
static int write_file(const config *cfg, const char *name,
                      void (*body)(FILE *, const session *),
                      const session *S) {
  char *path = out_path(cfg, name);
  if (!path) {
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  int ok = 0;
  if (tmp) {
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f) {
      body(f, S);
      int bad = ferror(f);
      if (fclose(f) != 0) bad = 1;
      if (!bad && rename(tmp, path) == 0) ok = 1;
      if (!ok) remove(tmp);
    }
  }
  if (!ok)
    fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
  free(tmp);
  free(path);
  return ok ? 0 : -1;
}

static void body_markdown(FILE *f, const session *S) {
  const config *cfg = S->cfg;
  table_row t[N_PROBLEMS];
  char v[96], clip[64];
  fill_table(S, t);
  verdict(S, v, sizeof v);
  if (cfg->clip > 0)
    snprintf(clip, sizeof clip, "gradients clipped at norm %g", cfg->clip);
  else
    snprintf(clip, sizeof clip, "no gradient clipping");
  fprintf(f,
          "# RAD vs REAL NVP on the paper's 2-D problems\n\n"
          "Mean test log-likelihood in nats on a fresh %zu-point sample "
          "(higher is better); gap = true LL - model LL.\n"
          "%llu Adam steps, batch %zu, learning rate %g for RAD and %g for "
          "REAL NVP (%s, %s), %zu training "
          "points, %zu layers; RAD H = %zu, G = %zu, logit bound %g; "
          "REAL NVP H = %zu; seed %llu. librad %s.\n\n",
          cfg->test_size, (unsigned long long)cfg->steps, cfg->batch, cfg->rad_lr, cfg->realnvp_lr,
          cfg->schedule ? "cosine" : "constant", clip, cfg->train_size, cfg->layers,
          cfg->rad_hidden, cfg->rad_gate_hidden, cfg->logit_bound,
          cfg->realnvp_hidden, (unsigned long long)cfg->seed,
          rad_version_string());
  print_markdown(f, t, cfg->n_problems);
  fprintf(f, "\n%s\n", v);
}

static void body_tsv(FILE *f, const session *S) {
  table_row t[N_PROBLEMS];
  fill_table(S, t);
  print_tsv(f, t, S->cfg->n_problems);
}

/* ---- Setup -------------------------------------------------------------- */

/* mkdir -p. */
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
  if (rc < 0) return EXIT_OK; /* --help */
  if (rc) return rc;

  if (make_dirs(cfg.out) != 0) {
    fprintf(stderr, PROG ": cannot create output directory '%s': %s\n",
            cfg.out, strerror(errno));
    return EXIT_RUNTIME;
  }

  int status = EXIT_RUNTIME;
  session S;
  memset(&S, 0, sizeof S);
  S.cfg = &cfg;
  S.n_runs = cfg.n_problems * cfg.n_models;
  S.summary = cfg.plots && cfg.n_models == N_MODELS;
  S.problems = calloc((size_t)cfg.n_problems, sizeof *S.problems);
  S.runs = calloc((size_t)S.n_runs, sizeof *S.runs);
  pthread_t *threads = calloc((size_t)cfg.jobs, sizeof *threads);
  int lock_ok = 0, n_threads = 0;
  if (!S.problems || !S.runs || !threads) {
    fprintf(stderr, PROG ": out of memory\n");
    goto done;
  }
  if (pthread_mutex_init(&S.lock, NULL) != 0) {
    fprintf(stderr, PROG ": cannot create a mutex\n");
    goto done;
  }
  lock_ok = 1;

  /* data: a training set and a fresh test set per problem */
  for (int i = 0; i < cfg.n_problems; i++) {
    problem_data *pd = &S.problems[i];
    pd->id = cfg.problems[i];
    pd->name = rad_problem_name(pd->id);
    pd->train = malloc(cfg.train_size * 2 * sizeof(float));
    pd->test = malloc(cfg.test_size * 2 * sizeof(float));
    if (!pd->train || !pd->test) {
      fprintf(stderr, PROG ": out of memory for the data of %s\n", pd->name);
      goto done;
    }
    const uint64_t s_train = derive_seed(cfg.seed, pd->id, STREAM_TRAIN);
    const uint64_t s_test = derive_seed(cfg.seed, pd->id, STREAM_TEST);
    if ((rc = rad_problem_sample(pd->id, s_train, cfg.train_size, pd->train)) ||
        (rc = rad_problem_sample(pd->id, s_test, cfg.test_size, pd->test))) {
      fprintf(stderr, PROG ": problem=%s: rad_problem_sample failed: %s "
              "(status %d)\n", pd->name, rad_strerror(rc), rc);
      goto done;
    }
  }

  /* runs: all RAD runs first (they are the slower ones), then REAL NVP,
     each in the order the problems were given */
  {
    int k = 0;
    for (int m = 0; m < N_MODELS; m++) {
      int wanted = 0;
      for (int j = 0; j < cfg.n_models; j++) wanted |= cfg.models[j] == m;
      if (!wanted) continue;
      for (int i = 0; i < cfg.n_problems; i++) {
        S.runs[k].problem = &S.problems[i];
        S.runs[k].model = m;
        S.runs[k].session = &S;
        k++;
      }
    }
  }

  S.total_steps = (uint64_t)S.n_runs * cfg.steps;
  S.bar = !cfg.quiet && isatty(STDERR_FILENO);
  S.t0 = now_seconds();
  S.bar_last = -1.0;
  pthread_mutex_lock(&S.lock);
  bar_draw_locked(&S, 1);
  pthread_mutex_unlock(&S.lock);

  {
    const int want = cfg.jobs < S.n_runs ? cfg.jobs : S.n_runs;
    for (int i = 0; i < want; i++) {
      if (pthread_create(&threads[i], NULL, worker, &S) != 0) break;
      n_threads++;
    }
    if (n_threads == 0) worker(&S); /* no thread could start: run here */
    for (int i = 0; i < n_threads; i++) pthread_join(threads[i], NULL);
  }
  pthread_mutex_lock(&S.lock);
  bar_clear_locked(&S);
  pthread_mutex_unlock(&S.lock);
  if (S.failed) goto done;

  /* the table, on stdout and in DIR */
  {
    table_row t[N_PROBLEMS];
    char v[96];
    fill_table(&S, t);
    verdict(&S, v, sizeof v);
    printf("\n");
    print_markdown(stdout, t, cfg.n_problems);
    printf("\n%s\n", v);
    fflush(stdout);
  }
  status = EXIT_OK;
  if (write_file(&cfg, "results.md", body_markdown, &S) ||
      write_file(&cfg, "results.tsv", body_tsv, &S))
    status = EXIT_RUNTIME;
  if (S.summary) {
    char *path = out_path(&cfg, "summary.png");
    int prc = path ? figure_summary(&S, path) : PLOT_ENOMEM;
    if (prc) {
      fprintf(stderr, PROG ": cannot draw %s: %s\n",
              path ? path : "summary.png", plot_strerror(prc));
      status = EXIT_RUNTIME;
    }
    free(path);
  }

done:
  if (S.problems)
    for (int i = 0; i < cfg.n_problems; i++) {
      free(S.problems[i].train);
      free(S.problems[i].test);
    }
  if (S.runs)
    for (int i = 0; i < S.n_runs; i++) free(S.runs[i].samples);
  free(S.problems);
  free(S.runs);
  free(threads);
  if (lock_ok) pthread_mutex_destroy(&S.lock);
  return status;
}
