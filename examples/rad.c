/*
 * rad: the librad command-line tool (docs/cli.md).
 *
 *   rad fit DATA.csv --columns A,B --out MODEL   fit a flow to CSV columns
 *   rad eval MODEL DATA.csv                      per-row log-likelihood
 *   rad sample MODEL -n N [--seed S]             draw samples (CSV)
 *   rad infer MODEL DATA.csv                     z, discrete labels, log p
 *   rad info MODEL                               what a model file holds
 *
 * Data comes from CSV files with a header row (examples/common/csv.h);
 * results go to standard output as CSV, messages to standard error.
 * Models store the column names and a per-column standardization, so eval,
 * infer and sample work in the data's own columns and units.
 *
 * Exit status: 0 success, 1 runtime or data error (a file that cannot be
 * read or written, a model that does not load, no usable rows, a failed
 * fit), 2 usage error (unknown option, bad option value, missing
 * argument), 130 a fit interrupted by SIGINT or SIGTERM (the model so far
 * is saved).
 *
 * Locale: the tool never calls setlocale, so it runs in the C locale:
 * numbers on the command line and in the output use '.' as the decimal
 * point. CSV fields are converted under an explicit C locale (csv.h).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rad/rad.h>

#include "csv.h"

#define PROG "rad"

/* Exit codes (docs/cli.md). */
#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

/* Rows evaluated per library call (bounds the scratch memory). */
#define CHUNK 4096
/* Skipped rows listed one by one on stderr before a summary. */
#define MAX_SKIP_LINES 10
/* Longest column name a model file holds (rad_flow_set_column_names). */
#define MAX_NAME_BYTES 4096
#define MAX_STEPS 9007199254740992ull /* 2^53, as RAD_OPTION_STEPS */
#define MAX_LAYERS 1000
#define MAX_WIDTH 65536
#define MAX_SAMPLES 1000000000ull
#define DEFAULT_MAX_ATTEMPTS 100000

/* ======================================================================
 * Messages
 * ====================================================================== */

/* The subcommand being run, for messages ("rad fit: ..."). */
static const char *g_cmd = NULL;

/* "rad CMD: " on stderr, the start of every message. */
static void msg_prefix(void) {
  if (g_cmd)
    fprintf(stderr, PROG " %s: ", g_cmd);
  else
    fputs(PROG ": ", stderr);
}

static void vmsg(const char *fmt, va_list ap) {
  msg_prefix();
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

/* A runtime error: prints and returns EXIT_RUNTIME. */
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
  return EXIT_RUNTIME;
}

/* A warning or a note (not an error). */
static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
}

/* A usage error: prints with a pointer to --help, returns EXIT_USAGE. */
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
  if (g_cmd)
    fprintf(stderr, "Try '" PROG " %s --help' for more information.\n", g_cmd);
  else
    fputs("Try '" PROG " --help' for more information.\n", stderr);
  return EXIT_USAGE;
}

static int out_of_memory(void) { return fail("out of memory"); }

/* Fails if standard output could not be written. */
static int finish_stdout(void) {
  if (fflush(stdout) != 0 || ferror(stdout))
    return fail("error writing to standard output: %s", strerror(errno));
  return EXIT_OK;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1:02:03", "2:03" or "4.2s". */
static void format_duration(double s, char *buf, size_t len) {
  if (!(s >= 0.0) || s > 1e9) {
    snprintf(buf, len, "--:--");
    return;
  }
  if (s < 60.0) {
    snprintf(buf, len, "%.1fs", s);
    return;
  }
  unsigned long t = (unsigned long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, len, "%lu:%02lu", t / 60, t % 60);
}

/* Writes a name for a message, with control bytes escaped. */
static void put_name(FILE *f, const char *s) {
  const unsigned char *const start = (const unsigned char *)s;
  for (const unsigned char *p = start; *p;) {
    if (p - start >= 200) { /* a name from a hostile file can be huge */
      fputs("...", f);
      return;
    }
    /* well-formed UTF-8 is printed as is; control characters and bytes
       that are not part of a well-formed sequence as \xHH */
    size_t len = *p < 0x80 ? 1 : (*p >= 0xc2 && *p <= 0xdf) ? 2 : (*p >= 0xe0 && *p <= 0xef) ? 3
                                 : (*p >= 0xf0 && *p <= 0xf4) ? 4 : 0;
    for (size_t k = 1; k < len; k++)
      if ((p[k] & 0xc0) != 0x80) len = 0;
    if (len == 3 && ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] > 0x9f))) len = 0;
    if (len == 4 && ((*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] > 0x8f))) len = 0;
    if (len == 0 || (len == 1 && (*p < 0x20 || *p == 0x7f))) {
      fprintf(f, "\\x%02x", *p);
      p++;
      continue;
    }
    fwrite(p, 1, len, f);
    p += len;
  }
}

/* ======================================================================
 * Command-line parsing
 * ====================================================================== */

typedef struct optdef {
  const char *name; /* long name, without "--" */
  char shrt;        /* short name, or 0 */
  int arg;          /* takes a value */
} optdef;

#define MAX_OPTS 32
#define MAX_POS 4

typedef struct cmdline {
  const char *val[MAX_OPTS]; /* value; "" for a flag; NULL if absent */
  const char *pos[MAX_POS];
  int npos;
} cmdline;

/* Parses argv[1..argc-1] (argv[0] is the subcommand). Options take their
   value as "--opt VALUE", "--opt=VALUE", "-o VALUE" or "-oVALUE"; "--"
   ends the options; "-" alone is a positional argument (standard input).
   A repeated option keeps its last value. Returns 0, -1 if --help or -h
   appears (before any "--"), or EXIT_USAGE after a message. */
static int parse_cmdline(int argc, char **argv, const optdef *defs,
                         int max_pos, cmdline *cl) {
  memset(cl, 0, sizeof *cl);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return -1;
  }
  int only_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!only_pos && strcmp(a, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (!only_pos && a[0] == '-' && a[1] != '\0') {
      int idx = -1;
      const char *val = NULL;
      if (a[1] == '-') {
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (eq) val = eq + 1;
        for (int d = 0; defs[d].name; d++)
          if (strlen(defs[d].name) == nlen &&
              strncmp(defs[d].name, name, nlen) == 0)
            idx = d;
      } else {
        for (int d = 0; defs[d].name; d++)
          if (defs[d].shrt == a[1]) idx = d;
        if (idx >= 0 && a[2] != '\0') {
          if (!defs[idx].arg) return usage_error("unknown option '%s'", a);
          val = a + 2;
        }
      }
      if (idx < 0) return usage_error("unknown option '%s'", a);
      if (defs[idx].arg) {
        if (!val) {
          if (i + 1 >= argc)
            return usage_error("option '--%s' needs a value", defs[idx].name);
          val = argv[++i];
        }
        cl->val[idx] = val;
      } else {
        if (val)
          return usage_error("option '--%s' takes no value", defs[idx].name);
        cl->val[idx] = "";
      }
    } else {
      if (cl->npos >= max_pos)
        return usage_error("unexpected argument '%s'", a);
      cl->pos[cl->npos++] = a;
    }
  }
  return 0;
}

/* An unsigned decimal integer in [lo, hi]: digits only. */
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
    return usage_error("%s: %s is out of range (%" PRIu64 " .. %" PRIu64 ")",
                       opt, s, lo, hi);
  *out = (uint64_t)v;
  return 0;
}

static int parse_size(const char *opt, const char *s, uint64_t lo, uint64_t hi,
                      size_t *out) {
  uint64_t v = 0;
  if (hi > SIZE_MAX) hi = SIZE_MAX;
  int rc = parse_u64(opt, s, lo, hi, &v);
  if (rc == 0) *out = (size_t)v;
  return rc;
}

/* A real number (the whole string) in [lo, hi]; "inf" only if allowed. */
static int parse_real(const char *opt, const char *s, double lo, double hi,
                      int allow_inf, double *out) {
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || isnan(v) || s[0] == ' ' || s[0] == '\t' ||
      s[0] == '\n')
    return usage_error("%s: '%s' is not a number", opt, s);
  if (isinf(v) && !allow_inf)
    return usage_error("%s: '%s' is not a finite number", opt, s);
  if (v < lo || v > hi)
    return usage_error("%s: %s is out of range (%g .. %g)", opt, s, lo, hi);
  *out = v;
  return 0;
}

/* ======================================================================
 * Seeds
 * ====================================================================== */

/* splitmix64's finalizer of x plus the golden-ratio increment: a
   bijection of 64-bit integers. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Independent seeds derived from the user's seed: stream 1 initial
   parameters, 2 held-out split, 3 minibatch order. */
static uint64_t seed_stream(uint64_t seed, uint64_t stream) {
  return mix64(mix64(seed) ^ stream);
}

/* ======================================================================
 * Models
 * ====================================================================== */

/* Reads the first n bytes of path into buf; returns the count read, or
   -1 (errno set) if the file cannot be opened. */
static long read_head(const char *path, unsigned char *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  return (long)got;
}

static const unsigned char MAGIC_FLOW[8] = {0x89, 'R', 'A', 'D',
                                            'F',  'L', 'O', 'W'};
static const unsigned char MAGIC_ADAM[8] = {0x89, 'R', 'A', 'D',
                                            'A',  'D', 'A', 'M'};

/* Loads a model, with a message naming the file on failure. */
static int load_model(const char *path, rad_flow **flow) {
  *flow = NULL;
  unsigned char head[8];
  long got = read_head(path, head, sizeof head);
  if (got < 0) return fail("%s: %s", path, strerror(errno));
  int rc = rad_flow_load(path, flow);
  if (rc == RAD_OK) return EXIT_OK;
  const char *hint = "";
  int text = got > 0;
  for (long i = 0; i < got; i++)
    text &= (head[i] >= 0x20 && head[i] < 0x7f) || head[i] == '\n' ||
            head[i] == '\r' || head[i] == '\t';
  if (rc == RAD_EFORMAT && got == 8 && memcmp(head, MAGIC_ADAM, 8) == 0)
    hint = " (this is an optimizer file, not a model)";
  else if (rc == RAD_EFORMAT && text)
    hint = " (it looks like text: a CSV file? the model comes first)";
  else if (rc == RAD_EIO)
    return fail("%s: %s (%s)", path, rad_strerror(rc), strerror(errno));
  return fail("%s: %s%s", path, rad_strerror(rc), hint);
}

/* Mean log-likelihood of n rows (in chunks); -inf if any row's is. */
static int mean_log_prob(const rad_flow *flow, size_t n, const float *x,
                         double *mean) {
  const size_t d = rad_flow_dim(flow);
  *mean = NAN;
  if (n == 0) return RAD_OK;
  rad_workspace *ws = NULL;
  float *lp = malloc((n < CHUNK ? n : CHUNK) * sizeof *lp);
  int rc = lp ? rad_workspace_create(flow, n < CHUNK ? n : CHUNK, &ws)
              : RAD_ENOMEM;
  double s = 0.0;
  for (size_t i = 0; rc == RAD_OK && i < n; i += CHUNK) {
    size_t m = n - i < CHUNK ? n - i : CHUNK;
    rc = rad_flow_log_prob_ws(flow, ws, m, x + i * d, lp);
    for (size_t j = 0; rc == RAD_OK && j < m; j++) s += lp[j];
  }
  rad_workspace_free(ws);
  free(lp);
  if (rc == RAD_OK) *mean = s / (double)n;
  return rc;
}

/* ======================================================================
 * Data
 * ====================================================================== */

typedef struct dataset {
  const char *path;
  char *buf;
  csv_table *table;
  size_t *cols; /* selected columns (dim) */
  size_t dim;
  csv_matrix m;
} dataset;

static void dataset_free(dataset *D) {
  csv_matrix_free(&D->m);
  free(D->cols);
  csv_free(D->table);
  free(D->buf);
  memset(D, 0, sizeof *D);
}

/* Reads and parses a CSV file. */
static int dataset_read(dataset *D, const char *path) {
  memset(D, 0, sizeof *D);
  D->path = path;
  char err[512];
  size_t len = 0;
  int rc = csv_read_file(path, &D->buf, &len, err, sizeof err);
  if (rc == CSV_OK) {
    rc = csv_parse(D->buf, len, &D->table, err, sizeof err);
    if (rc != CSV_OK && rc != CSV_ENOMEM) {
      int r = fail("%s: %s", strcmp(path, "-") ? path : "standard input", err);
      dataset_free(D);
      return r;
    }
  }
  if (rc != CSV_OK) {
    dataset_free(D);
    return fail("%s", err);
  }
  return EXIT_OK;
}

static const char *display_path(const char *path) {
  return strcmp(path, "-") == 0 ? "standard input" : path;
}

/* Selects columns by a user's spec (names or indices). */
static int dataset_select_spec(dataset *D, const char *spec) {
  char err[4096];
  int rc = csv_select(D->table, spec, &D->cols, &D->dim, err, sizeof err);
  if (rc == CSV_ENOMEM) return out_of_memory();
  if (rc) return fail("%s: %s", display_path(D->path), err);
  return EXIT_OK;
}

/* Selects the model's columns by name. */
static int dataset_select_model(dataset *D, const rad_flow *flow) {
  const size_t d = rad_flow_dim(flow);
  D->cols = malloc(d * sizeof *D->cols);
  if (!D->cols) return out_of_memory();
  D->dim = d;
  for (size_t j = 0; j < d; j++) {
    const char *name = rad_flow_column_name(flow, j);
    char err[512];
    int rc = csv_find_column(D->table, name, &D->cols[j], err, sizeof err);
    if (rc == CSV_OK) continue;
    if (rc == CSV_ENOMEM) return out_of_memory();
    msg_prefix();
    fprintf(stderr, "%s: %s (the model's columns are ", display_path(D->path),
            err);
    for (size_t k = 0; k < d; k++) {
      if (k) fputs(", ", stderr);
      put_name(stderr, rad_flow_column_name(flow, k));
    }
    fputs("; the file's are ", stderr);
    const size_t nc = csv_num_cols(D->table), shown = nc < 20 ? nc : 20;
    for (size_t c = 0; c < shown; c++) {
      if (c) fputs(", ", stderr);
      put_name(stderr, csv_col_name(D->table, c));
    }
    if (nc > shown) fprintf(stderr, " and %zu more", nc - shown);
    fputs("; or choose columns with --columns)\n", stderr);
    return EXIT_RUNTIME;
  }
  return EXIT_OK;
}

/* The columns for a model: --columns if given (its count must match),
   else the model's names. */
static int dataset_select_for_model(dataset *D, const rad_flow *flow,
                                    const char *model_path,
                                    const char *spec) {
  const size_t d = rad_flow_dim(flow);
  if (spec) {
    int rc = dataset_select_spec(D, spec);
    if (rc) return rc;
    if (D->dim != d)
      return fail("--columns selects %zu columns but %s has dimension %zu",
                  D->dim, model_path, d);
    return EXIT_OK;
  }
  if (!rad_flow_column_name(flow, 0))
    return fail("%s stores no column names: choose %zu columns of %s with "
                "--columns",
                model_path, d, display_path(D->path));
  return dataset_select_model(D, flow);
}

/* Converts the selected columns, then reports skipped rows on stderr. */
static int dataset_extract(dataset *D) {
  char err[512];
  int rc = csv_extract(D->table, D->cols, D->dim, &D->m, err, sizeof err);
  if (rc == CSV_ENOMEM) return out_of_memory();
  if (rc) return fail("%s: %s", display_path(D->path), err);
  const csv_matrix *m = &D->m;
  const char *p = display_path(D->path);
  for (size_t i = 0; i < m->n_skipped && i < MAX_SKIP_LINES; i++) {
    const csv_skip *s = &m->skips[i];
    const size_t line = csv_row_line(D->table, s->row);
    if (s->reason == CSV_SKIP_TOO_MANY) {
      note("%s:%zu: row skipped: it has %zu fields, the header has %zu", p,
           line, s->col, csv_num_cols(D->table));
    } else {
      msg_prefix();
      fprintf(stderr, "%s:%zu: row skipped: column '", p, line);
      put_name(stderr, csv_col_name(D->table, s->col));
      fprintf(stderr, "' %s\n", csv_skip_reason(s->reason));
    }
  }
  if (m->n_skipped > MAX_SKIP_LINES)
    note("%s: ... and %zu more skipped rows", p,
         m->n_skipped - MAX_SKIP_LINES);
  note("%s: read %zu rows, skipped %zu (missing or non-numeric in selected "
       "columns%s)",
       p, csv_num_rows(D->table), m->n_skipped,
       m->n_too_many ? ", or more fields than the header" : "");
  if (m->n == 0) {
    /* name a selected column that holds no number at all, if any */
    size_t *num = NULL, nnum = 0;
    if (csv_numeric_columns(D->table, &num, &nnum, NULL, 0) == CSV_OK) {
      for (size_t j = 0; j < D->dim; j++) {
        size_t i = 0;
        while (i < nnum && num[i] != D->cols[j]) i++;
        if (i == nnum) {
          msg_prefix();
          fprintf(stderr, "%s: column '", p);
          put_name(stderr, csv_col_name(D->table, D->cols[j]));
          fputs("' holds no numbers\n", stderr);
          break;
        }
      }
    }
    free(num);
    return fail("%s: no usable rows", p);
  }
  return EXIT_OK;
}

/* ======================================================================
 * rad fit
 * ====================================================================== */

static const char HELP_FIT[] =
    "Usage: " PROG " fit DATA.csv --out MODEL [OPTIONS]\n"
    "\n"
    "Fits a RAD flow (or a REAL NVP flow) to columns of a CSV file by\n"
    "maximum likelihood (minibatch Adam) and saves it to MODEL. Each column\n"
    "is standardized with the mean and standard deviation of the training\n"
    "rows; the standardization and the column names are stored in the\n"
    "model, so 'rad eval' takes raw data in its own units.\n"
    "\n"
    "Data\n"
    "  --columns LIST       columns to model, by name or 0-based index:\n"
    "                       'bill_length_mm,bill_depth_mm' or '2,3'\n"
    "                       (default: every numeric column)\n"
    "  --heldout F          fraction of the rows held out (seeded shuffle)\n"
    "                       and evaluated every ~10% of the steps; 0 .. 0.5\n"
    "                       (default 0.1)\n"
    "  --no-standardize     fit the raw columns (no standardization)\n"
    "\n"
    "Model\n"
    "  --out MODEL          where to save the model (required; written\n"
    "                       atomically)\n"
    "  --kind rad|realnvp   coupling layers: RAD (default) or affine REAL NVP\n"
    "  --layers L           coupling layers (default 6)\n"
    "  --hidden H           conditioner width (default 8 for rad, 56 for\n"
    "                       realnvp: the paper's 2-D settings, with\n"
    "                       comparable parameter counts)\n"
    "  --gate-hidden G      gating network width, rad only (default 8)\n"
    "  --logit-bound B      soft clamp of the fold's logits, rad only\n"
    "                       (default 3; 0 or inf: unclamped)\n"
    "\n"
    "Training\n"
    "  --steps N            Adam steps (default 10000; 0 saves the initial\n"
    "                       model)\n"
    "  --batch B            rows per step (default 500, capped at the\n"
    "                       number of training rows)\n"
    "  --lr X               learning rate (default 1e-3)\n"
    "  --lr-schedule S      constant (default) or cosine (decays to 1% of\n"
    "                       --lr over this run's steps)\n"
    "  --seed S             seed of the initial parameters, the held-out\n"
    "                       split and the minibatch order (default 0)\n"
    "  --keep-best          end with the parameters of the best held-out\n"
    "                       evaluation (needs --heldout > 0)\n"
    "  --quiet              no progress reports on stderr\n"
    "\n"
    "Continuing a fit\n"
    "  --init MODEL         start from this model (its layers,\n"
    "                       standardization and column names) instead of a\n"
    "                       new one\n"
    "  --save-optimizer F   save the Adam state (moments, step count) to F\n"
    "  --resume-optimizer F continue from the Adam state in F (needs --init);\n"
    "                       with the same data, --seed, --batch and a\n"
    "                       constant schedule, a fit of N steps then M\n"
    "                       resumed steps equals one of N + M steps\n"
    "\n"
    "Output: progress on stderr (a bar when stderr is a terminal, and a line\n"
    "every ~10% of the steps); on stdout, at the end:\n"
    "  steps: N\n"
    "  train_mean_log_likelihood: X\n"
    "  heldout_mean_log_likelihood: Y     (with a held-out set)\n"
    "Ctrl-C stops the fit early and saves the model (exit status 130).\n"
    "\n"
    "Example:\n"
    "  " PROG " fit penguins.csv --columns bill_length_mm,bill_depth_mm "
    "--out penguins.rad\n";

enum {
  FIT_COLUMNS, FIT_OUT, FIT_KIND, FIT_LAYERS, FIT_HIDDEN, FIT_GATE_HIDDEN,
  FIT_STEPS, FIT_BATCH, FIT_LR, FIT_LR_SCHEDULE, FIT_SEED, FIT_HELDOUT,
  FIT_KEEP_BEST, FIT_LOGIT_BOUND, FIT_NO_STANDARDIZE, FIT_INIT,
  FIT_SAVE_OPT, FIT_RESUME_OPT, FIT_QUIET
};
static const optdef FIT_OPTS[] = {
    [FIT_COLUMNS] = {"columns", 0, 1},
    [FIT_OUT] = {"out", 'o', 1},
    [FIT_KIND] = {"kind", 0, 1},
    [FIT_LAYERS] = {"layers", 0, 1},
    [FIT_HIDDEN] = {"hidden", 0, 1},
    [FIT_GATE_HIDDEN] = {"gate-hidden", 0, 1},
    [FIT_STEPS] = {"steps", 0, 1},
    [FIT_BATCH] = {"batch", 0, 1},
    [FIT_LR] = {"lr", 0, 1},
    [FIT_LR_SCHEDULE] = {"lr-schedule", 0, 1},
    [FIT_SEED] = {"seed", 0, 1},
    [FIT_HELDOUT] = {"heldout", 0, 1},
    [FIT_KEEP_BEST] = {"keep-best", 0, 0},
    [FIT_LOGIT_BOUND] = {"logit-bound", 0, 1},
    [FIT_NO_STANDARDIZE] = {"no-standardize", 0, 0},
    [FIT_INIT] = {"init", 0, 1},
    [FIT_SAVE_OPT] = {"save-optimizer", 0, 1},
    [FIT_RESUME_OPT] = {"resume-optimizer", 0, 1},
    [FIT_QUIET] = {"quiet", 'q', 0},
    {NULL, 0, 0}};

/* Set by SIGINT / SIGTERM during a fit: the fit stops at its next report
   and the model is saved. */
static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

typedef struct fit_report {
  uint64_t start;      /* optimizer steps before this run */
  uint64_t total;      /* steps of this run */
  uint64_t eval_every; /* steps between held-out evaluations and lines */
  int bar, quiet, heldout;
  double t0, last_draw;
  int bar_visible;
  uint64_t last_rel;   /* steps of this run at the previous report */
  double sum_train;    /* sum of step-weighted train LL since the last line */
  uint64_t cnt_train;
  double last_train, last_heldout;
  double best_heldout;
  uint64_t best_step;
} fit_report;

static void bar_clear(fit_report *R) {
  if (R->bar_visible) {
    fputs("\r\033[K", stderr);
    R->bar_visible = 0;
  }
}

static void bar_draw(fit_report *R, uint64_t rel, int force) {
  const double now = now_seconds();
  if (!force && now - R->last_draw < 0.1) return;
  R->last_draw = now;
  const double el = now - R->t0;
  const double frac = R->total ? (double)rel / (double)R->total : 1.0;
  const double rate = el > 0.0 ? (double)rel / el : 0.0;
  char eta[24], hl[32];
  format_duration(rate > 0.0 ? (double)(R->total - rel) / rate : -1.0, eta,
                  sizeof eta);
  enum { W = 20 };
  char bar[W + 1];
  int fill = (int)(frac * W + 1e-9);
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
  bar[W] = '\0';
  if (R->heldout && !isnan(R->last_heldout))
    snprintf(hl, sizeof hl, "  held-out %.4f", R->last_heldout);
  else
    hl[0] = '\0';
  fprintf(stderr,
          "\r[%s] %3.0f%% %" PRIu64 "/%" PRIu64 " steps %6.0f/s ETA %s  "
          "train %.4f%s\033[K",
          bar, 100.0 * frac, rel, R->total, rate, eta, R->last_train, hl);
  fflush(stderr);
  R->bar_visible = 1;
}

static int fit_callback(void *user, uint64_t step, double train_ll,
                        double heldout_ll) {
  fit_report *R = user;
  const uint64_t rel = step - R->start;
  const uint64_t delta = rel - R->last_rel;
  R->last_rel = rel;
  R->sum_train += train_ll * (double)delta;
  R->cnt_train += delta;
  R->last_train = train_ll;
  R->last_heldout = heldout_ll;
  const int line = rel % R->eval_every == 0 || rel == R->total || g_stop;
  if (line && R->heldout && heldout_ll > R->best_heldout) {
    R->best_heldout = heldout_ll;
    R->best_step = step;
  }
  if (line && !R->quiet) {
    bar_clear(R);
    char el[24];
    format_duration(now_seconds() - R->t0, el, sizeof el);
    const int w = snprintf(NULL, 0, "%" PRIu64, R->total);
    fprintf(stderr, "step %*" PRIu64 "/%" PRIu64 " (%3.0f%%)  train %.4f",
            w, rel, R->total,
            R->total ? 100.0 * (double)rel / (double)R->total : 100.0,
            R->cnt_train ? R->sum_train / (double)R->cnt_train : train_ll);
    if (R->heldout && !isnan(heldout_ll))
      fprintf(stderr, "  held-out %.4f", heldout_ll);
    fprintf(stderr, "  [%s]\n", el);
    R->sum_train = 0.0;
    R->cnt_train = 0;
  }
  if (R->bar && !R->quiet && rel < R->total) bar_draw(R, rel, line);
  return g_stop != 0;
}

/* Fails early (before a long fit) if the directory of `path` does not
   exist or is not writable: rad_flow_save writes a temporary file there. */
static int check_writable(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t len = slash ? (size_t)(slash - path) : 1;
  if (slash && len == 0) len = 1; /* "/file" */
  char *dir = malloc(len + 1);
  if (!dir) return out_of_memory();
  if (slash)
    memcpy(dir, path, len);
  else
    dir[0] = '.';
  dir[len] = '\0';
  int ok = access(dir, W_OK | X_OK) == 0;
  int e = errno;
  free(dir);
  if (!ok) return fail("%s: cannot write there: %s", path, strerror(e));
  return EXIT_OK;
}

/* Per-column mean and (population) standard deviation of n rows; a
   column whose deviation is 0 (or too small for float) gets scale 1. */
static void standardization(const float *x, size_t n, size_t d, float *shift,
                            float *scale, int *constant) {
  for (size_t j = 0; j < d; j++) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i * d + j];
    const double mean = s / (double)n;
    double v = 0.0;
    for (size_t i = 0; i < n; i++) {
      double e = x[i * d + j] - mean;
      v += e * e;
    }
    const double sd = sqrt(v / (double)n);
    shift[j] = (float)mean;
    const float f = (float)sd;
    constant[j] = !(f >= FLT_MIN && isfinite(f));
    scale[j] = constant[j] ? 1.0f : f;
  }
}

static int cmd_fit(int argc, char **argv) {
  cmdline cl;
  int rc = parse_cmdline(argc, argv, FIT_OPTS, 1, &cl);
  if (rc < 0) {
    fputs(HELP_FIT, stdout);
    return finish_stdout();
  }
  if (rc) return rc;
  if (cl.npos != 1) return usage_error("expected one DATA.csv argument");
  if (!cl.val[FIT_OUT]) return usage_error("--out MODEL is required");
  const char *data_path = cl.pos[0], *out_path = cl.val[FIT_OUT];
  const char *init_path = cl.val[FIT_INIT];

  /* options */
  int kind = RAD_LAYER_RAD;
  if (cl.val[FIT_KIND]) {
    if (strcmp(cl.val[FIT_KIND], "rad") == 0)
      kind = RAD_LAYER_RAD;
    else if (strcmp(cl.val[FIT_KIND], "realnvp") == 0)
      kind = RAD_LAYER_AFFINE;
    else
      return usage_error("--kind: '%s' is not rad or realnvp",
                         cl.val[FIT_KIND]);
  }
  if (init_path) {
    static const int arch[] = {FIT_KIND, FIT_LAYERS, FIT_HIDDEN,
                               FIT_GATE_HIDDEN, FIT_NO_STANDARDIZE};
    for (size_t i = 0; i < sizeof arch / sizeof arch[0]; i++)
      if (cl.val[arch[i]])
        return usage_error("--%s cannot be used with --init (the model "
                           "fixes it)",
                           FIT_OPTS[arch[i]].name);
  } else if (cl.val[FIT_RESUME_OPT]) {
    return usage_error("--resume-optimizer needs --init MODEL (the model "
                       "the optimizer state belongs to)");
  }
  size_t layers = 6, hidden = kind == RAD_LAYER_RAD ? 8 : 56, gate_hidden = 8;
  uint64_t steps = 10000, seed = 0;
  size_t batch = 500;
  double lr = 1e-3, heldout = 0.1, bound = NAN;
  int cosine = 0;
  if (cl.val[FIT_LAYERS] &&
      (rc = parse_size("--layers", cl.val[FIT_LAYERS], 1, MAX_LAYERS, &layers)))
    return rc;
  if (cl.val[FIT_HIDDEN] &&
      (rc = parse_size("--hidden", cl.val[FIT_HIDDEN], 1, MAX_WIDTH, &hidden)))
    return rc;
  if (cl.val[FIT_GATE_HIDDEN]) {
    if (kind != RAD_LAYER_RAD)
      return usage_error("--gate-hidden is for --kind rad only");
    if ((rc = parse_size("--gate-hidden", cl.val[FIT_GATE_HIDDEN], 1,
                         MAX_WIDTH, &gate_hidden)))
      return rc;
  }
  if (cl.val[FIT_STEPS] &&
      (rc = parse_u64("--steps", cl.val[FIT_STEPS], 0, MAX_STEPS, &steps)))
    return rc;
  if (cl.val[FIT_BATCH] &&
      (rc = parse_size("--batch", cl.val[FIT_BATCH], 1, MAX_STEPS, &batch)))
    return rc;
  if (cl.val[FIT_LR]) {
    if ((rc = parse_real("--lr", cl.val[FIT_LR], -HUGE_VAL, HUGE_VAL, 0, &lr)))
      return rc;
    if (!(lr > 0.0))
      return usage_error("--lr: %s is out of range (it must be > 0)", cl.val[FIT_LR]);
  }
  if (cl.val[FIT_LR_SCHEDULE]) {
    if (strcmp(cl.val[FIT_LR_SCHEDULE], "constant") == 0)
      cosine = 0;
    else if (strcmp(cl.val[FIT_LR_SCHEDULE], "cosine") == 0)
      cosine = 1;
    else
      return usage_error("--lr-schedule: '%s' is not constant or cosine",
                         cl.val[FIT_LR_SCHEDULE]);
  }
  if (cl.val[FIT_SEED] &&
      (rc = parse_u64("--seed", cl.val[FIT_SEED], 0, UINT64_MAX, &seed)))
    return rc;
  if (cl.val[FIT_HELDOUT] &&
      (rc = parse_real("--heldout", cl.val[FIT_HELDOUT], 0.0, 0.5, 0,
                       &heldout)))
    return rc;
  if (cl.val[FIT_KEEP_BEST] && !(heldout > 0.0))
    return usage_error("--keep-best needs a held-out set (--heldout > 0)");
  if (cl.val[FIT_LOGIT_BOUND]) {
    if (!init_path && kind != RAD_LAYER_RAD)
      return usage_error("--logit-bound is for --kind rad only");
    if ((rc = parse_real("--logit-bound", cl.val[FIT_LOGIT_BOUND], 0.0,
                         HUGE_VAL, 1, &bound)))
      return rc;
  }
  const int quiet = cl.val[FIT_QUIET] != NULL;
  const int standardize = cl.val[FIT_NO_STANDARDIZE] == NULL;

  /* the starting model (errors in files before the long part) */
  rad_flow *flow = NULL;
  rad_adam *opt = NULL;
  rad_fit_options *fo = NULL;
  dataset D;
  memset(&D, 0, sizeof D);
  float *train = NULL, *held = NULL;
  const char **names = NULL;
  int ret = EXIT_RUNTIME;
  if ((ret = check_writable(out_path))) goto done;
  if (cl.val[FIT_SAVE_OPT] && (ret = check_writable(cl.val[FIT_SAVE_OPT])))
    goto done;
  if (init_path && (ret = load_model(init_path, &flow))) goto done;
  if (cl.val[FIT_RESUME_OPT]) {
    const char *p = cl.val[FIT_RESUME_OPT];
    unsigned char head[8];
    if (read_head(p, head, sizeof head) < 0) {
      ret = fail("%s: %s", p, strerror(errno));
      goto done;
    }
    int lrc = rad_adam_load(p, &opt);
    if (lrc) {
      ret = fail("%s: %s%s", p, rad_strerror(lrc),
                 lrc == RAD_EFORMAT && memcmp(head, MAGIC_FLOW, 8) == 0
                     ? " (this is a model file, not an optimizer file)"
                     : "");
      goto done;
    }
    if (rad_adam_num_params(opt) != rad_flow_num_params(flow)) {
      ret = fail("%s holds the state of %zu parameters but %s has %zu", p,
                 rad_adam_num_params(opt), init_path,
                 rad_flow_num_params(flow));
      goto done;
    }
    /* the saved learning rate, unless --lr overrides it */
    if (!cl.val[FIT_LR])
      rad_adam_get_option(opt, RAD_OPTION_LEARNING_RATE, &lr);
  }

  /* the data */
  if ((ret = dataset_read(&D, data_path))) goto done;
  if (cl.val[FIT_COLUMNS]) {
    if ((ret = dataset_select_spec(&D, cl.val[FIT_COLUMNS]))) goto done;
    if (flow && D.dim != rad_flow_dim(flow)) {
      ret = fail("--columns selects %zu columns but %s has dimension %zu",
                 D.dim, init_path, rad_flow_dim(flow));
      goto done;
    }
  } else if (flow && rad_flow_column_name(flow, 0)) {
    if ((ret = dataset_select_model(&D, flow))) goto done;
  } else if (flow) {
    ret = fail("%s stores no column names: choose its %zu columns with "
               "--columns",
               init_path, rad_flow_dim(flow));
    goto done;
  } else {
    char err[256];
    int crc = csv_numeric_columns(D.table, &D.cols, &D.dim, err, sizeof err);
    if (crc) {
      ret = fail("%s", err);
      goto done;
    }
    if (D.dim == 0) {
      ret = fail("%s: no numeric column: choose columns with --columns",
                 display_path(data_path));
      goto done;
    }
    if (!quiet) {
      msg_prefix();
      fputs("using the numeric columns ", stderr);
      for (size_t j = 0; j < D.dim; j++) {
        if (j) fputs(",", stderr);
        put_name(stderr, csv_col_name(D.table, D.cols[j]));
      }
      fputs(" (choose with --columns)\n", stderr);
      /* and the ones left out: a stray 'nan' or '1.5kg' in an otherwise
         numeric column keeps the whole column out */
      size_t left = 0;
      for (size_t c = 0, j = 0; c < csv_num_cols(D.table); c++) {
        if (j < D.dim && D.cols[j] == c) {
          j++;
          continue;
        }
        if (left++ == 0) {
          msg_prefix();
          fputs("left out (a field that is not a finite number): ", stderr);
        } else {
          fputs(",", stderr);
        }
        put_name(stderr, csv_col_name(D.table, c));
      }
      if (left) fputs("\n", stderr);
    }
  }
  const size_t d = D.dim;
  for (size_t j = 0; j < d; j++)
    if (strlen(csv_col_name(D.table, D.cols[j])) > MAX_NAME_BYTES) {
      ret = fail("%s: the name of column %zu is longer than %d bytes",
                 display_path(data_path), D.cols[j], MAX_NAME_BYTES);
      goto done;
    }
  /* eval, infer and --init find a model's columns by name: a name the
     header holds twice would make the model unusable on this very file */
  for (size_t j = 0; j < d; j++) {
    char err[320];
    size_t col;
    if (csv_find_column(D.table, csv_col_name(D.table, D.cols[j]), &col, err, sizeof err) !=
        CSV_OK) {
      ret = fail("%s: %s; a model finds its columns by name, so the columns it is fitted "
                 "on need distinct names",
                 display_path(data_path), err);
      goto done;
    }
  }
  if ((ret = dataset_extract(&D))) goto done;
  const size_t n = D.m.n;

  /* held-out split: a seeded shuffle; both parts keep the input order */
  size_t n_held = 0;
  if (heldout > 0.0) {
    n_held = (size_t)floor(heldout * (double)n + 0.5);
    if (n_held >= n) n_held = n - 1;
    if (n_held == 0)
      note("too few rows (%zu) for a held-out set: fitting on all of them",
           n);
  }
  const size_t n_train = n - n_held;
  train = malloc(n_train * d * sizeof *train);
  held = malloc((n_held ? n_held : 1) * d * sizeof *held);
  unsigned char *is_held = calloc(n, 1);
  size_t *perm = malloc(n * sizeof *perm);
  if (!train || !held || !is_held || !perm) {
    free(is_held);
    free(perm);
    ret = out_of_memory();
    goto done;
  }
  {
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t st = seed_stream(seed, 2);
    for (size_t i = n; i-- > 1;) {
      st += 0x9E3779B97F4A7C15ull;
      uint64_t r = mix64(st);
      size_t j = (size_t)(r % ((uint64_t)i + 1));
      size_t t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    for (size_t i = 0; i < n_held; i++) is_held[perm[i]] = 1;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
      float *dst = is_held[i] ? held + b++ * d : train + a++ * d;
      memcpy(dst, D.m.x + i * d, d * sizeof(float));
    }
  }
  free(is_held);
  free(perm);

  /* the model */
  if (!flow) {
    int frc = rad_flow_create(kind, d, layers, hidden,
                              kind == RAD_LAYER_RAD ? gate_hidden : 0,
                              seed_stream(seed, 1), &flow);
    if (frc) {
      ret = fail("cannot create the flow: %s", rad_strerror(frc));
      goto done;
    }
    if (standardize) {
      float *shift = malloc(d * sizeof *shift);
      float *scale = malloc(d * sizeof *scale);
      int *constant = malloc(d * sizeof *constant);
      if (!shift || !scale || !constant) {
        free(shift), free(scale), free(constant);
        ret = out_of_memory();
        goto done;
      }
      standardization(train, n_train, d, shift, scale, constant);
      for (size_t j = 0; j < d; j++)
        if (constant[j]) {
          msg_prefix();
          fputs("warning: column '", stderr);
          put_name(stderr, csv_col_name(D.table, D.cols[j]));
          fputs("' is constant in the training rows (scale 1 used); its "
                "density is degenerate and the fit may diverge\n",
                stderr);
        }
      frc = rad_flow_set_standardization(flow, shift, scale, d);
      free(shift), free(scale), free(constant);
      if (frc) {
        ret = fail("cannot set the standardization: %s", rad_strerror(frc));
        goto done;
      }
    }
  }
  names = malloc(d * sizeof *names);
  if (!names) {
    ret = out_of_memory();
    goto done;
  }
  for (size_t j = 0; j < d; j++) names[j] = csv_col_name(D.table, D.cols[j]);
  int frc = rad_flow_set_column_names(flow, names, d);
  if (frc) {
    ret = fail("cannot store the column names: %s", rad_strerror(frc));
    goto done;
  }
  if (!isnan(bound)) {
    frc = rad_flow_set_option(flow, RAD_OPTION_LOGIT_BOUND,
                              isinf(bound) ? 0.0 : bound);
    if (frc) {
      ret = fail("--logit-bound: %s", rad_strerror(frc));
      goto done;
    }
  }

  /* the optimizer and the fit options */
  const size_t np = rad_flow_num_params(flow);
  if (!opt && (frc = rad_adam_create(np, &opt))) {
    ret = fail("cannot create the optimizer: %s", rad_strerror(frc));
    goto done;
  }
  rad_adam_set_option(opt, RAD_OPTION_LEARNING_RATE, lr);
  if (batch > n_train) batch = n_train;
  fit_report R;
  memset(&R, 0, sizeof R);
  R.start = rad_adam_steps(opt);
  R.total = steps;
  R.quiet = quiet;
  R.heldout = n_held > 0;
  R.bar = !quiet && isatty(STDERR_FILENO);
  R.best_heldout = -INFINITY;
  R.last_heldout = NAN;
  uint64_t report_every = steps / 1000;
  if (report_every < 1) report_every = 1;
  if (report_every > 100) report_every = 100;
  /* a line (and a held-out evaluation) every ~10% of the steps, at a
     multiple of the report period so that the callback sees each */
  const uint64_t tenth = (steps + 5) / 10;
  uint64_t reports = (tenth + report_every / 2) / report_every;
  if (reports < 1) reports = 1;
  R.eval_every = report_every * reports;
  if ((frc = rad_fit_options_create(&fo))) {
    ret = fail("%s", rad_strerror(frc));
    goto done;
  }
  struct {
    int key;
    double v;
  } fopts[] = {
      {RAD_OPTION_LEARNING_RATE, lr},
      {RAD_OPTION_BATCH_SIZE, (double)batch},
      {RAD_OPTION_STEPS, (double)steps},
      {RAD_OPTION_SEED, (double)(seed_stream(seed, 3) >> 11)},
      {RAD_OPTION_EVAL_EVERY, (double)R.eval_every},
      {RAD_OPTION_REPORT_EVERY, (double)report_every},
      {RAD_OPTION_KEEP_BEST, cl.val[FIT_KEEP_BEST] ? 1.0 : 0.0},
      {RAD_OPTION_LR_SCHEDULE, cosine ? 1.0 : 0.0},
  };
  for (size_t i = 0; i < sizeof fopts / sizeof fopts[0]; i++)
    if ((frc = rad_fit_options_set(fo, fopts[i].key, fopts[i].v))) {
      ret = fail("fit option %d = %g: %s", fopts[i].key, fopts[i].v,
                 rad_strerror(frc));
      goto done;
    }

  if (!quiet) {
    note("fitting %s (%zu layers, %zu parameters, %zu discrete labels) to "
         "%zu training rows, %zu held out; %" PRIu64 " steps of batch %zu",
         rad_flow_num_labels(flow) ? "a RAD flow" : "a REAL NVP flow",
         rad_flow_num_layers(flow), np, rad_flow_num_labels(flow), n_train,
         n_held, steps, batch);
    if (R.start) note("resuming at optimizer step %" PRIu64, R.start);
  }

  /* Ctrl-C stops the fit at its next report (the model is saved); a
     second one kills the program. */
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  R.t0 = now_seconds();
  uint64_t done_steps = 0;
  int fit_rc = rad_flow_fit(flow, opt, fo, n_train, train, n_held,
                            n_held ? held : NULL, fit_callback, &R,
                            &done_steps);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  bar_clear(&R);
  const double seconds = now_seconds() - R.t0;
  if (fit_rc && fit_rc != RAD_ENUMERIC) {
    ret = fail("fit failed: %s", rad_strerror(fit_rc));
    goto done;
  }
  if (g_stop)
    note("interrupted after %" PRIu64 " steps: saving the model",
         done_steps);
  /* final numbers, then the files */
  double train_ll = NAN, held_ll = NAN;
  if ((frc = mean_log_prob(flow, n_train, train, &train_ll)) ||
      (n_held && (frc = mean_log_prob(flow, n_held, held, &held_ll)))) {
    ret = fail("evaluating the fitted model: %s", rad_strerror(frc));
    goto done;
  }
  /* A diverged fit keeps the parameters from before the failing step;
     they are saved only if they still give a finite likelihood. Either
     way the command failed: no result lines, exit status 1. */
  if (fit_rc == RAD_ENUMERIC) {
    const uint64_t bad_step = R.start + done_steps + 1;
    if (!isfinite(train_ll)) {
      ret = fail("the fit diverged at step %" PRIu64 " (%s), and the parameters "
                 "before that step give a mean log-likelihood of %g on the "
                 "training data: no model saved. Try a smaller --lr or "
                 "--logit-bound.",
                 bad_step, rad_strerror(fit_rc), train_ll);
      goto done;
    }
    note("the fit diverged at step %" PRIu64 " (%s); saving the parameters "
         "from before that step (training mean log-likelihood %.6g). Try a "
         "smaller --lr or --logit-bound.",
         bad_step, rad_strerror(fit_rc), train_ll);
  }
  if (cl.val[FIT_KEEP_BEST] && n_held && !quiet) {
    /* the fit's last evaluation (after a stop) is not seen by the
       callback: if the kept parameters are not those of the best
       evaluation it saw, they are the last step's */
    uint64_t kept = R.best_step;
    if (!(fabs(held_ll - R.best_heldout) <= 1e-6 * (1.0 + fabs(held_ll))))
      kept = R.start + done_steps;
    note("kept the parameters of step %" PRIu64 " (best held-out %.4f)",
         kept, held_ll);
  }
  if (!cl.val[FIT_KEEP_BEST] && n_held && !quiet && R.best_step &&
      R.best_heldout > held_ll + 0.1)
    note("the held-out log-likelihood peaked at step %" PRIu64 " (%.4f) and "
         "ended at %.4f: the model overfits; consider --keep-best, fewer "
         "--steps or a smaller model",
         R.best_step, R.best_heldout, held_ll);
  if ((frc = rad_flow_save(flow, out_path))) {
    ret = fail("%s: cannot save the model: %s (%s)", out_path,
               rad_strerror(frc), strerror(errno));
    goto done;
  }
  if (cl.val[FIT_SAVE_OPT] &&
      (frc = rad_adam_save(opt, cl.val[FIT_SAVE_OPT]))) {
    ret = fail("%s: cannot save the optimizer state: %s (%s)",
               cl.val[FIT_SAVE_OPT], rad_strerror(frc), strerror(errno));
    goto done;
  }
  if (!quiet) {
    char el[24];
    format_duration(seconds, el, sizeof el);
    note("saved %s after %" PRIu64 " steps in %s%s%s", out_path, done_steps,
         el, cl.val[FIT_SAVE_OPT] ? "; optimizer state in " : "",
         cl.val[FIT_SAVE_OPT] ? cl.val[FIT_SAVE_OPT] : "");
  }
  if (fit_rc == RAD_ENUMERIC) { /* saved, but the fit failed: no results */
    ret = EXIT_RUNTIME;
    goto done;
  }
  printf("steps: %" PRIu64 "\n", done_steps);
  printf("train_mean_log_likelihood: %.9g\n", train_ll);
  if (n_held) printf("heldout_mean_log_likelihood: %.9g\n", held_ll);
  ret = finish_stdout();
  if (ret == EXIT_OK && g_stop) ret = EXIT_INTERRUPTED;

done:
  free(names);
  free(train);
  free(held);
  dataset_free(&D);
  rad_fit_options_free(fo);
  rad_adam_free(opt);
  rad_flow_free(flow);
  return ret;
}

/* ======================================================================
 * rad eval
 * ====================================================================== */

static const char HELP_EVAL[] =
    "Usage: " PROG " eval MODEL DATA.csv [OPTIONS]\n"
    "\n"
    "Evaluates the model's log-likelihood (in nats, in the data's own units)\n"
    "on every usable row of DATA.csv ('-' reads standard input). The model's\n"
    "columns are picked from the CSV header by name, in any order. Rows with\n"
    "a missing or non-numeric value in those columns are skipped and\n"
    "reported on stderr with their line numbers.\n"
    "\n"
    "Output (stdout, CSV): a header line 'log_likelihood', one value per kept\n"
    "row in input order, and as the last line\n"
    "  mean_log_likelihood: X\n"
    "\n"
    "Options\n"
    "  --columns LIST       use these columns (names or 0-based indices)\n"
    "                       instead of the model's column names\n"
    "  --keep LIST          copy these columns (as text) before the value\n"
    "  --line-numbers       add a first column 'line': the row's line in\n"
    "                       DATA.csv\n"
    "  --quiet              print only the last line\n"
    "\n"
    "Example:\n"
    "  " PROG " eval penguins.rad penguins.csv | tail -n 1\n";

enum { EV_COLUMNS, EV_KEEP, EV_LINES, EV_QUIET };
static const optdef EVAL_OPTS[] = {
    [EV_COLUMNS] = {"columns", 0, 1},
    [EV_KEEP] = {"keep", 0, 1},
    [EV_LINES] = {"line-numbers", 0, 0},
    [EV_QUIET] = {"quiet", 'q', 0},
    {NULL, 0, 0}};

/* Columns copied to the output (--keep). */
typedef struct keep_cols {
  size_t *cols;
  size_t n;
} keep_cols;

static int keep_select(const dataset *D, const char *spec, keep_cols *K) {
  K->cols = NULL;
  K->n = 0;
  if (!spec) return EXIT_OK;
  char err[4096];
  int rc = csv_select(D->table, spec, &K->cols, &K->n, err, sizeof err);
  if (rc == CSV_ENOMEM) return out_of_memory();
  if (rc) return fail("%s: --keep: %s", display_path(D->path), err);
  return EXIT_OK;
}

static void keep_header(const dataset *D, const keep_cols *K, int lines) {
  if (lines) fputs("line,", stdout);
  for (size_t j = 0; j < K->n; j++) {
    csv_write_field(stdout, csv_col_name(D->table, K->cols[j]));
    putchar(',');
  }
}

/* The kept fields of table row r (NUL bytes end a field early). */
static void keep_row(const dataset *D, const keep_cols *K, int lines,
                     size_t r) {
  if (lines) printf("%zu,", csv_row_line(D->table, r));
  for (size_t j = 0; j < K->n; j++) {
    const char *f = csv_field(D->table, r, K->cols[j], NULL);
    csv_write_field(stdout, f ? f : "");
    putchar(',');
  }
}

static int cmd_eval(int argc, char **argv) {
  cmdline cl;
  int rc = parse_cmdline(argc, argv, EVAL_OPTS, 2, &cl);
  if (rc < 0) {
    fputs(HELP_EVAL, stdout);
    return finish_stdout();
  }
  if (rc) return rc;
  if (cl.npos != 2) return usage_error("expected MODEL and DATA.csv");
  const int quiet = cl.val[EV_QUIET] != NULL;
  const int lines = cl.val[EV_LINES] != NULL;
  rad_flow *flow = NULL;
  rad_workspace *ws = NULL;
  dataset D;
  memset(&D, 0, sizeof D);
  keep_cols K = {NULL, 0};
  float *lp = NULL;
  int ret;
  if ((ret = load_model(cl.pos[0], &flow))) goto done;
  if ((ret = dataset_read(&D, cl.pos[1]))) goto done;
  if ((ret = dataset_select_for_model(&D, flow, cl.pos[0], cl.val[EV_COLUMNS])))
    goto done;
  if ((ret = keep_select(&D, cl.val[EV_KEEP], &K))) goto done;
  if ((ret = dataset_extract(&D))) goto done;
  const size_t n = D.m.n, d = D.dim;
  const size_t chunk = n < CHUNK ? n : CHUNK;
  lp = malloc(chunk * sizeof *lp);
  int frc = lp ? rad_workspace_create(flow, chunk, &ws) : RAD_ENOMEM;
  if (frc) {
    ret = fail("%s", rad_strerror(frc));
    goto done;
  }
  if (!quiet) {
    keep_header(&D, &K, lines);
    puts("log_likelihood");
  }
  double sum = 0.0;
  for (size_t i = 0; i < n; i += chunk) {
    const size_t m = n - i < chunk ? n - i : chunk;
    if ((frc = rad_flow_log_prob_ws(flow, ws, m, D.m.x + i * d, lp))) {
      ret = fail("log-likelihood: %s", rad_strerror(frc));
      goto done;
    }
    for (size_t j = 0; j < m; j++) {
      sum += lp[j];
      if (!quiet) {
        keep_row(&D, &K, lines, D.m.rows[i + j]);
        printf("%.9g\n", (double)lp[j]);
      }
    }
  }
  printf("mean_log_likelihood: %.9g\n", sum / (double)n);
  ret = finish_stdout();
done:
  free(lp);
  free(K.cols);
  rad_workspace_free(ws);
  dataset_free(&D);
  rad_flow_free(flow);
  return ret;
}

/* ======================================================================
 * rad sample
 * ====================================================================== */

static const char HELP_SAMPLE[] =
    "Usage: " PROG " sample MODEL -n N [OPTIONS]\n"
    "\n"
    "Draws N exact samples from the model and writes them as CSV on stdout,\n"
    "with a header row of the model's column names (x0, x1, ... if it has\n"
    "none), in the data's own units. Values are printed with 9 significant\n"
    "digits (enough to read back the same float32). Sample i depends only on\n"
    "the seed and i: the first rows of a larger draw are the same.\n"
    "\n"
    "Options\n"
    "  -n, --count N        number of samples (required)\n"
    "  --seed S             seed (default 0)\n"
    "  --labels             also print the discrete labels, columns k0, k1,\n"
    "                       ... (values 1, 2, 3; none for REAL NVP models)\n"
    "  --component K1,K2,.. sample one mixture component: every discrete\n"
    "                       label fixed (one value in {1,2,3} per label, in\n"
    "                       'rad infer' order), by rejection; the acceptance\n"
    "                       rate, an estimate of the component's mixture\n"
    "                       weight, is reported on stderr\n"
    "  --max-attempts A     rejection attempts per sample before giving up\n"
    "                       (default 100000)\n"
    "\n"
    "Example:\n"
    "  " PROG " sample penguins.rad -n 1000 --seed 1 > samples.csv\n";

enum { SA_COUNT, SA_SEED, SA_LABELS, SA_COMPONENT, SA_MAX_ATTEMPTS };
static const optdef SAMPLE_OPTS[] = {
    [SA_COUNT] = {"count", 'n', 1},
    [SA_SEED] = {"seed", 's', 1},
    [SA_LABELS] = {"labels", 0, 0},
    [SA_COMPONENT] = {"component", 0, 1},
    [SA_MAX_ATTEMPTS] = {"max-attempts", 0, 1},
    {NULL, 0, 0}};

/* Header of the model's columns: NAME or PREFIX<i>. */
static void column_header(const rad_flow *flow, const char *prefix,
                          const char *fallback) {
  const size_t d = rad_flow_dim(flow);
  for (size_t j = 0; j < d; j++) {
    if (j) putchar(',');
    const char *name = rad_flow_column_name(flow, j);
    if (name) {
      size_t len = strlen(prefix) + strlen(name) + 1;
      char *s = malloc(len);
      if (s) {
        snprintf(s, len, "%s%s", prefix, name);
        csv_write_field(stdout, s);
        free(s);
      }
    } else {
      printf("%s%zu", fallback, j);
    }
  }
}

static int cmd_sample(int argc, char **argv) {
  cmdline cl;
  int rc = parse_cmdline(argc, argv, SAMPLE_OPTS, 1, &cl);
  if (rc < 0) {
    fputs(HELP_SAMPLE, stdout);
    return finish_stdout();
  }
  if (rc) return rc;
  if (cl.npos != 1) return usage_error("expected one MODEL argument");
  if (!cl.val[SA_COUNT]) return usage_error("-n N is required");
  size_t n = 0, max_attempts = DEFAULT_MAX_ATTEMPTS;
  uint64_t seed = 0;
  if ((rc = parse_size("-n", cl.val[SA_COUNT], 0, MAX_SAMPLES, &n))) return rc;
  if (cl.val[SA_SEED] &&
      (rc = parse_u64("--seed", cl.val[SA_SEED], 0, UINT64_MAX, &seed)))
    return rc;
  if (cl.val[SA_MAX_ATTEMPTS] &&
      (rc = parse_size("--max-attempts", cl.val[SA_MAX_ATTEMPTS], 1,
                       UINT32_MAX, &max_attempts)))
    return rc;
  const int labels = cl.val[SA_LABELS] != NULL;

  rad_flow *flow = NULL;
  float *x = NULL;
  int32_t *k = NULL, *comp = NULL;
  int ret;
  if ((ret = load_model(cl.pos[0], &flow))) goto done;
  const size_t d = rad_flow_dim(flow), L = rad_flow_num_labels(flow);
  if (cl.val[SA_COMPONENT]) {
    const char *s = cl.val[SA_COMPONENT];
    if (L == 0) {
      ret = fail("%s has no discrete labels (a REAL NVP model?): "
                 "--component does not apply",
                 cl.pos[0]);
      goto done;
    }
    comp = malloc(L * sizeof *comp);
    if (!comp) {
      ret = out_of_memory();
      goto done;
    }
    size_t got = 0;
    int bad = 0;
    for (const char *p = s;; p++) {
      if ((*p == '1' || *p == '2' || *p == '3') &&
          (p[1] == ',' || p[1] == '\0') && got < L) {
        comp[got++] = *p - '0';
        p++;
        if (*p == '\0') break;
      } else {
        bad = 1;
        break;
      }
    }
    if (bad || got != L) {
      ret = usage_error("--component: expected %zu comma-separated labels "
                        "in {1,2,3} (the model's number of labels), got '%s'",
                        L, s);
      goto done;
    }
  }
  if (n > SIZE_MAX / sizeof(float) / (d ? d : 1) ||
      (L && n > SIZE_MAX / sizeof(int32_t) / L)) {
    ret = out_of_memory();
    goto done;
  }
  x = malloc((n ? n : 1) * d * sizeof *x);
  if (labels && L) k = malloc((n ? n : 1) * L * sizeof *k);
  if (!x || (labels && L && !k)) {
    ret = out_of_memory();
    goto done;
  }
  int frc;
  if (comp) {
    double acc = NAN;
    frc = rad_flow_sample_component(flow, seed, comp, n, max_attempts, x,
                                    NULL, &acc);
    if (frc == RAD_EREJECTED) {
      ret = fail("component %s: a sample was not accepted within %zu "
                 "attempts (its mixture weight is probably below about "
                 "1/%zu); raise --max-attempts",
                 cl.val[SA_COMPONENT], max_attempts, max_attempts);
      goto done;
    }
    if (frc == RAD_OK && n)
      note("component %s: acceptance rate %.6g (an estimate of its mixture "
           "weight P(K = k))",
           cl.val[SA_COMPONENT], acc);
    if (k)
      for (size_t i = 0; i < n; i++) memcpy(k + i * L, comp, L * sizeof *k);
  } else {
    frc = rad_flow_sample(flow, seed, n, x, NULL, k);
  }
  if (frc) {
    ret = fail("sampling failed: %s", rad_strerror(frc));
    goto done;
  }
  column_header(flow, "", "x");
  if (labels)
    for (size_t j = 0; j < L; j++) printf(",k%zu", j);
  putchar('\n');
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < d; j++)
      printf(j ? ",%.9g" : "%.9g", (double)x[i * d + j]);
    if (k)
      for (size_t j = 0; j < L; j++) printf(",%d", (int)k[i * L + j]);
    putchar('\n');
  }
  ret = finish_stdout();
done:
  free(x);
  free(k);
  free(comp);
  rad_flow_free(flow);
  return ret;
}

/* ======================================================================
 * rad infer
 * ====================================================================== */

static const char HELP_INFER[] =
    "Usage: " PROG " infer MODEL DATA.csv [OPTIONS]\n"
    "\n"
    "Exact inference: for every usable row of DATA.csv, the latent point z\n"
    "(the Gaussian side of the flow), the discrete labels the flow assigns\n"
    "to the row, and its log-likelihood. The model's columns are picked by\n"
    "name, as in 'rad eval'; skipped rows are reported on stderr.\n"
    "\n"
    "Output (stdout, CSV, one line per kept row, in input order):\n"
    "  z_NAME...            z, one column per model column (z0, z1, ... if\n"
    "                       the model stores no names)\n"
    "  k0, k1, ...          the discrete labels (1, 2 or 3), one per folded\n"
    "                       unit per RAD layer, first layer first; together\n"
    "                       they name the row's mixture component\n"
    "  log_likelihood       log p(x) in nats\n"
    "  pJ_1, pJ_2, pJ_3     with --probs: the gating probabilities\n"
    "                       p(k_J = c | z) of every label J\n"
    "\n"
    "Options\n"
    "  --probs              add the gating probabilities\n"
    "  --columns LIST       use these columns instead of the model's names\n"
    "  --keep LIST          copy these columns (as text) first, e.g. an id\n"
    "  --line-numbers       add a first column 'line' (the row's line)\n"
    "\n"
    "Example:\n"
    "  " PROG " infer penguins.rad penguins.csv --keep species,sex\n";

enum { IN_PROBS, IN_COLUMNS, IN_KEEP, IN_LINES };
static const optdef INFER_OPTS[] = {
    [IN_PROBS] = {"probs", 0, 0},
    [IN_COLUMNS] = {"columns", 0, 1},
    [IN_KEEP] = {"keep", 0, 1},
    [IN_LINES] = {"line-numbers", 0, 0},
    {NULL, 0, 0}};

static int cmd_infer(int argc, char **argv) {
  cmdline cl;
  int rc = parse_cmdline(argc, argv, INFER_OPTS, 2, &cl);
  if (rc < 0) {
    fputs(HELP_INFER, stdout);
    return finish_stdout();
  }
  if (rc) return rc;
  if (cl.npos != 2) return usage_error("expected MODEL and DATA.csv");
  const int probs = cl.val[IN_PROBS] != NULL;
  const int lines = cl.val[IN_LINES] != NULL;
  rad_flow *flow = NULL;
  rad_workspace *ws = NULL;
  dataset D;
  memset(&D, 0, sizeof D);
  keep_cols K = {NULL, 0};
  float *z = NULL, *lp = NULL, *pr = NULL;
  int32_t *k = NULL;
  int ret;
  if ((ret = load_model(cl.pos[0], &flow))) goto done;
  if ((ret = dataset_read(&D, cl.pos[1]))) goto done;
  if ((ret = dataset_select_for_model(&D, flow, cl.pos[0],
                                      cl.val[IN_COLUMNS])))
    goto done;
  if ((ret = keep_select(&D, cl.val[IN_KEEP], &K))) goto done;
  if ((ret = dataset_extract(&D))) goto done;
  const size_t n = D.m.n, d = D.dim, L = rad_flow_num_labels(flow);
  const size_t chunk = n < CHUNK ? n : CHUNK;
  z = malloc(chunk * d * sizeof *z);
  lp = malloc(chunk * sizeof *lp);
  k = malloc((L ? chunk * L : 1) * sizeof *k);
  pr = probs ? malloc((L ? chunk * L * 3 : 1) * sizeof *pr) : NULL;
  int frc = (!z || !lp || !k || (probs && !pr))
                ? RAD_ENOMEM
                : rad_workspace_create(flow, chunk, &ws);
  if (frc) {
    ret = fail("%s", rad_strerror(frc));
    goto done;
  }
  keep_header(&D, &K, lines);
  column_header(flow, "z_", "z");
  for (size_t j = 0; j < L; j++) printf(",k%zu", j);
  fputs(",log_likelihood", stdout);
  if (probs)
    for (size_t j = 0; j < L; j++) printf(",p%zu_1,p%zu_2,p%zu_3", j, j, j);
  putchar('\n');
  for (size_t i = 0; i < n; i += chunk) {
    const size_t m = n - i < chunk ? n - i : chunk;
    const float *x = D.m.x + i * d;
    unsigned char *over = NULL; /* rows whose z overflows (rare) */
    frc = rad_flow_forward_ws(flow, ws, m, x, z, L ? k : NULL, lp);
    if (frc == RAD_EOVERFLOW) { /* redo row by row to find them */
      over = calloc(m, 1);
      if (!over) {
        ret = out_of_memory();
        goto done;
      }
      frc = RAD_OK;
      for (size_t j = 0; j < m && frc == RAD_OK; j++) {
        frc = rad_flow_forward_ws(flow, ws, 1, x + j * d, z + j * d,
                                  L ? k + j * L : NULL, lp + j);
        if (frc == RAD_EOVERFLOW) {
          over[j] = 1;
          frc = rad_flow_log_prob_ws(flow, ws, 1, x + j * d, lp + j);
          note("%s:%zu: z overflows float32; z and labels left empty",
               display_path(D.path), csv_row_line(D.table, D.m.rows[i + j]));
        }
      }
    }
    if (frc == RAD_OK && probs && L) frc = rad_flow_gate_probs(flow, m, x, pr);
    if (frc) {
      free(over);
      ret = fail("inference: %s", rad_strerror(frc));
      goto done;
    }
    for (size_t j = 0; j < m; j++) {
      keep_row(&D, &K, lines, D.m.rows[i + j]);
      const int ov = over && over[j];
      for (size_t c = 0; c < d; c++) {
        if (c) putchar(',');
        if (!ov) printf("%.9g", (double)z[j * d + c]);
      }
      for (size_t c = 0; c < L; c++) {
        if (ov)
          putchar(',');
        else
          printf(",%d", (int)k[j * L + c]);
      }
      printf(",%.9g", (double)lp[j]);
      if (probs)
        for (size_t c = 0; c < L * 3; c++)
          printf(",%.6g", (double)pr[j * L * 3 + c]);
      putchar('\n');
    }
    free(over);
  }
  ret = finish_stdout();
done:
  free(z);
  free(lp);
  free(k);
  free(pr);
  free(K.cols);
  rad_workspace_free(ws);
  dataset_free(&D);
  rad_flow_free(flow);
  return ret;
}

/* ======================================================================
 * rad info
 * ====================================================================== */

static const char HELP_INFO[] =
    "Usage: " PROG " info FILE\n"
    "\n"
    "Describes a librad model file: format version and size, dimension,\n"
    "column names, standardization, each coupling layer (kind, mask, widths,\n"
    "logit bound, parameters, labels), the number of parameters, of discrete\n"
    "labels and of mixture components. An optimizer file (--save-optimizer)\n"
    "is described too. The output is 'key: value' lines on stdout.\n"
    "\n"
    "Example:\n"
    "  " PROG " info penguins.rad\n";

static const optdef INFO_OPTS[] = {{NULL, 0, 0}};

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) {
  return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void print_bound(double b) {
  if (isinf(b))
    fputs("unclamped", stdout);
  else
    printf("%g", b);
}

static int info_flow(const char *path, const rad_flow *flow) {
  const size_t d = rad_flow_dim(flow), nl = rad_flow_num_layers(flow);
  const size_t L = rad_flow_num_labels(flow);
  printf("dimension: %zu\n", d);
  fputs("columns: ", stdout);
  if (rad_flow_column_name(flow, 0)) {
    for (size_t j = 0; j < d; j++) {
      if (j) fputs(", ", stdout);
      put_name(stdout, rad_flow_column_name(flow, j));
    }
    putchar('\n');
  } else {
    puts("(none stored)");
  }
  float *shift = malloc(d * sizeof *shift), *scale = malloc(d * sizeof *scale);
  uint8_t *mask = malloc(d);
  if (!shift || !scale || !mask) {
    free(shift), free(scale), free(mask);
    return out_of_memory();
  }
  if (rad_flow_has_standardization(flow) &&
      rad_flow_get_standardization(flow, shift, scale, d) == RAD_OK) {
    puts("standardization: yes, z = (x - shift) / scale");
    for (size_t j = 0; j < d; j++) {
      fputs("  ", stdout);
      if (rad_flow_column_name(flow, j))
        put_name(stdout, rad_flow_column_name(flow, j));
      else
        printf("x%zu", j);
      printf(": shift %.9g scale %.9g\n", (double)shift[j], (double)scale[j]);
    }
  } else {
    puts("standardization: none");
  }
  printf("layers: %zu\n", nl);
  int ret = EXIT_OK;
  for (size_t l = 0; l < nl && ret == EXIT_OK; l++) {
    rad_coupling *c = NULL;
    int frc = rad_flow_get_coupling(flow, l, &c);
    if (frc == RAD_OK) frc = rad_coupling_get_mask(c, mask, d);
    if (frc) {
      ret = fail("%s: layer %zu: %s", path, l, rad_strerror(frc));
      rad_coupling_free(c);
      break;
    }
    const int kind = rad_coupling_kind(c);
    printf("  layer %zu: %s, mask ", l,
           kind == RAD_LAYER_RAD      ? "RAD"
           : kind == RAD_LAYER_AFFINE ? "affine (REAL NVP)"
                                      : "unknown");
    size_t ones = 0;
    for (size_t j = 0; j < d; j++) ones += mask[j] != 0;
    if (d <= 64) {
      for (size_t j = 0; j < d; j++) putchar(mask[j] ? '1' : '0');
      printf(" (%zu transformed)", ones);
    } else {
      printf("%zu conditioning, %zu transformed", d - ones, ones);
    }
    printf(", hidden %zu", rad_coupling_hidden(c));
    if (kind == RAD_LAYER_RAD) {
      double b = 0.0;
      printf(", gate hidden %zu, logit bound ", rad_coupling_gate_hidden(c));
      if (rad_coupling_get_option(c, RAD_OPTION_LOGIT_BOUND, &b) == RAD_OK)
        print_bound(b);
      else
        fputs("?", stdout);
    }
    const size_t nlab = rad_coupling_num_labels(c);
    printf(", %zu parameters, %zu label%s\n", rad_coupling_num_params(c),
           nlab, nlab == 1 ? "" : "s");
    rad_coupling_free(c);
  }
  free(shift), free(scale), free(mask);
  if (ret) return ret;
  printf("parameters: %zu\n", rad_flow_num_params(flow));
  printf("discrete labels: %zu\n", L);
  if (L <= 40) {
    uint64_t comps = 1;
    for (size_t i = 0; i < L; i++) comps *= 3;
    printf("mixture components: %" PRIu64, comps);
    if (L > 1) printf(" (3^%zu)", L);
    putchar('\n');
  } else {
    const double e = (double)L * log10(3.0);
    const double ip = floor(e);
    printf("mixture components: 3^%zu (about %.2fe%.0f)\n", L,
           pow(10.0, e - ip), ip);
  }
  return EXIT_OK;
}

static int info_adam(const rad_adam *opt) {
  double v[4] = {NAN, NAN, NAN, NAN};
  static const int keys[4] = {RAD_OPTION_LEARNING_RATE, RAD_OPTION_BETA1,
                              RAD_OPTION_BETA2, RAD_OPTION_EPSILON};
  for (int i = 0; i < 4; i++) rad_adam_get_option(opt, keys[i], &v[i]);
  printf("parameters: %zu\n", rad_adam_num_params(opt));
  printf("steps: %" PRIu64 "\n", rad_adam_steps(opt));
  printf("learning rate: %g\nbeta1: %g\nbeta2: %g\nepsilon: %g\n", v[0], v[1],
         v[2], v[3]);
  return EXIT_OK;
}

static int cmd_info(int argc, char **argv) {
  cmdline cl;
  int rc = parse_cmdline(argc, argv, INFO_OPTS, 1, &cl);
  if (rc < 0) {
    fputs(HELP_INFO, stdout);
    return finish_stdout();
  }
  if (rc) return rc;
  if (cl.npos != 1) return usage_error("expected one FILE argument");
  const char *path = cl.pos[0];
  struct stat st;
  if (stat(path, &st) != 0) return fail("%s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("%s: %s", path, strerror(EISDIR));
  unsigned char head[24];
  long got = read_head(path, head, sizeof head);
  if (got < 0) return fail("%s: %s", path, strerror(errno));
  const int is_flow = got >= 8 && memcmp(head, MAGIC_FLOW, 8) == 0;
  const int is_adam = got >= 8 && memcmp(head, MAGIC_ADAM, 8) == 0;
  printf("file: ");
  put_name(stdout, path);
  printf("\nsize: %lld bytes\n", (long long)st.st_size);
  if (!is_flow && !is_adam) {
    finish_stdout();
    return fail("%s: %s (neither a librad model nor an optimizer file)",
                path, rad_strerror(RAD_EFORMAT));
  }
  printf("format: librad %s file",
         is_flow ? "model (flow)" : "optimizer (Adam)");
  if (got >= 24)
    printf(", format version %" PRIu32 ", flags %" PRIu32
           ", declared size %" PRIu64 " bytes",
           le32(head + 8), le32(head + 12), le64(head + 16));
  putchar('\n');
  int ret;
  if (is_flow) {
    rad_flow *flow = NULL;
    int frc = rad_flow_load(path, &flow);
    if (frc) {
      finish_stdout();
      return fail("%s: %s", path, rad_strerror(frc));
    }
    ret = info_flow(path, flow);
    rad_flow_free(flow);
  } else {
    rad_adam *opt = NULL;
    int frc = rad_adam_load(path, &opt);
    if (frc) {
      finish_stdout();
      return fail("%s: %s", path, rad_strerror(frc));
    }
    ret = info_adam(opt);
    rad_adam_free(opt);
  }
  int r2 = finish_stdout();
  return ret ? ret : r2;
}

/* ======================================================================
 * main
 * ====================================================================== */

static const char HELP_MAIN[] =
    "Usage: " PROG " COMMAND [ARGS]\n"
    "\n"
    "Fits, evaluates and samples RAD normalizing flows (deep mixture models\n"
    "with continuous and discrete latent variables) on CSV data.\n"
    "\n"
    "Commands\n"
    "  fit DATA.csv --columns A,B --out MODEL   fit a model to CSV columns\n"
    "  eval MODEL DATA.csv                      per-row log-likelihood, mean\n"
    "  sample MODEL -n N [--seed S]             draw samples (CSV)\n"
    "  infer MODEL DATA.csv                     latent z, labels, log p\n"
    "  info MODEL                               describe a model file\n"
    "\n"
    "'" PROG " COMMAND --help' describes a command's options.\n"
    "  --help, -h           this text\n"
    "  --version            the librad version\n"
    "\n"
    "Exit status: 0 success, 1 runtime or data error, 2 usage error, 130 fit\n"
    "interrupted (model saved). See docs/cli.md.\n";

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
} command;

static const command COMMANDS[] = {
    {"fit", cmd_fit},     {"eval", cmd_eval}, {"sample", cmd_sample},
    {"infer", cmd_infer}, {"info", cmd_info}, {NULL, NULL}};

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(HELP_MAIN, stderr);
    return EXIT_USAGE;
  }
  const char *c = argv[1];
  if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0) {
    fputs(HELP_MAIN, stdout);
    return finish_stdout();
  }
  if (strcmp(c, "--version") == 0 || strcmp(c, "-V") == 0) {
    printf(PROG " (librad) %s\n", rad_version_string());
    if (rad_version() != RAD_VERSION_NUMBER)
      printf("built with librad headers %s\n", RAD_VERSION_STRING);
    return finish_stdout();
  }
  if (strcmp(c, "help") == 0 && argc >= 3) {
    for (const command *k = COMMANDS; k->name; k++)
      if (strcmp(argv[2], k->name) == 0) {
        char *args[] = {argv[2], (char *)"--help", NULL};
        g_cmd = k->name;
        return k->run(2, args);
      }
    return usage_error("unknown command '%s' (commands: fit, eval, sample, "
                       "infer, info)",
                       argv[2]);
  }
  if (strcmp(c, "help") == 0) {
    fputs(HELP_MAIN, stdout);
    return finish_stdout();
  }
  for (const command *k = COMMANDS; k->name; k++)
    if (strcmp(c, k->name) == 0) {
      g_cmd = k->name;
      return k->run(argc - 1, argv + 1);
    }
  return usage_error("unknown command '%s' (commands: fit, eval, sample, "
                     "infer, info)",
                     c);
}
