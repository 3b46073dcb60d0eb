/*
 * rad-mpi-fit: data-parallel training of a RAD flow with MPI
 * (docs/scaling.md, mpi/README.md).
 *
 *   mpirun -np R bin/rad-mpi-fit DATA.csv --columns A,B --out MODEL
 *   mpirun -np R bin/rad-mpi-fit 'DATA.{rank}.csv' --out MODEL
 *   bin/rad-mpi-fit DATA.csv --emulate-ranks R --out MODEL
 *
 * Every rank holds its own shard of the data, computes the gradient of the
 * mean log-likelihood of its local minibatch (rad_flow_grad_ws), and the
 * ranks sum the gradients weighted by local batch size with one
 * MPI_Allreduce per step, which gives on every rank the gradient of the
 * mean over the global batch. Every rank then takes the same Adam step
 * (rad_adam_step) on the same parameters, so the parameters stay
 * bit-identical on every rank; rank 0 prints progress and saves the model.
 *
 * --emulate-ranks R runs the same computation in one process without MPI:
 * the same R shards, the same held-out rows, the same local minibatches,
 * but the gradient of their union in one rad_flow_grad_ws call. Only the
 * order of summation differs from an R-rank run.
 *
 * librad itself knows nothing of MPI: this program is an ordinary client
 * of the public API (include/rad/rad.h). Options mirror `rad fit`
 * (examples/rad.c); the CSV reader is examples/common/csv.c.
 *
 * Exit status: 0 success, 1 runtime or data error on any rank (every rank
 * then exits 1), 2 usage error, 130 interrupted (the model so far is
 * saved).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>
#include <rad/rad.h>

#include "csv.h"

#define PROG "rad-mpi-fit"

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

#define CHUNK 4096              /* rows per evaluation call */
#define MAX_GRAD_BATCH 65536    /* workspace rows (larger batches chunk) */
#define MAX_SKIP_LINES 10
#define MAX_NAME_BYTES 4096
#define MAX_STEPS 9007199254740992ull /* 2^53 */
#define MAX_LAYERS 1000
#define MAX_WIDTH 65536
#define MAX_EMULATED 4096
#define RANK_TAG "{rank}"

/* ======================================================================
 * Messages. Usage errors and progress come from rank 0 only; a runtime
 * error is printed by the rank that meets it, prefixed by its rank.
 * ====================================================================== */

static int g_rank = 0;        /* this process's rank (0 in emulation) */
static int g_mpi_ranks = 1;   /* ranks of the MPI job (1 in emulation) */
static int g_usage_print = 1; /* this process prints usage errors */

static void msg_prefix(void) {
  if (g_mpi_ranks > 1)
    fprintf(stderr, PROG ": rank %d: ", g_rank);
  else
    fputs(PROG ": ", stderr);
}

static void vmsg(const char *fmt, va_list ap) {
  msg_prefix();
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
}

/* A runtime error of this process: prints, returns EXIT_RUNTIME. */
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
  return EXIT_RUNTIME;
}

/* A note from this process. */
static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vmsg(fmt, ap);
  va_end(ap);
}

/* A note from rank 0 only, without a rank prefix. */
static void note0(const char *fmt, ...) {
  if (g_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  fputs(PROG ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  fflush(stderr);
  va_end(ap);
}

static int usage_error(const char *fmt, ...) {
  if (g_usage_print) {
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs("Try '" PROG " --help' for more information.\n", stderr);
  }
  return EXIT_USAGE;
}

static int out_of_memory(void) { return fail("out of memory"); }

/* Seconds on a monotonic clock (MPI_Wtime in MPI mode; emulation never
   initializes MPI, so it cannot call it). */
static int g_mpi_on = 0;
static double now_seconds(void) {
  if (g_mpi_on) return MPI_Wtime();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

/* A name for a message, with control bytes escaped. */
static void put_name(FILE *f, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      fprintf(f, "\\x%02x", *p);
    else
      putc(*p, f);
  }
}

/* ======================================================================
 * Command line (the parser of examples/rad.c)
 * ====================================================================== */

typedef struct optdef {
  const char *name;
  char shrt;
  int arg;
} optdef;

#define MAX_OPTS 32
#define MAX_POS 4

typedef struct cmdline {
  const char *val[MAX_OPTS];
  const char *pos[MAX_POS];
  int npos;
} cmdline;

/* Parses argv[1..argc-1]. Returns 0, -1 for --help, or EXIT_USAGE. */
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
 * Seeds and the fixed schemes (docs/scaling.md)
 * ====================================================================== */

/* splitmix64's finalizer of x plus the golden-ratio increment. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* As `rad fit`: stream 1 initial parameters, 2 held-out split, 3
   minibatch order. */
static uint64_t seed_stream(uint64_t seed, uint64_t stream) {
  return mix64(mix64(seed) ^ stream);
}

/* Held out iff mix64(key ^ mix64(id)) / 2^64 < fraction, where id is the
   row's index among the data rows of its file and key is
   seed_stream(seed, 2) for the strided split (the same rows whatever the
   number of ranks) or mix64(seed_stream(seed, 2) + r + 1) for shard
   files. */
static int is_heldout(uint64_t key, uint64_t id, double fraction) {
  if (!(fraction > 0.0)) return 0;
  const uint64_t u = mix64(key ^ mix64(id)) >> 11;
  return (double)u < fraction * 9007199254740992.0;
}

/* The permutation of shard r's n training rows for epoch e:
   Fisher-Yates from the top, j = mix64(P + i) mod (i + 1), with
   P = mix64(mix64(seed_stream(seed, 3) ^ mix64(r)) ^ mix64(e)). */
static uint64_t perm_key(uint64_t seed, uint64_t r, uint64_t epoch) {
  return mix64(mix64(seed_stream(seed, 3) ^ mix64(r)) ^ mix64(epoch));
}

static void permutation(uint64_t key, size_t n, size_t *perm) {
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n; i-- > 1;) {
    const size_t j = (size_t)(mix64(key + i) % ((uint64_t)i + 1));
    const size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

/* Local batch size of rank r of R for a global batch B. */
static size_t local_batch(size_t B, int r, int R) {
  return B / (size_t)R + ((size_t)r < B % (size_t)R ? 1 : 0);
}

/* The learning rate of step t of `steps` (rad_flow_fit's schedule). */
static double lr_at(double lr, int cosine, uint64_t t, uint64_t steps) {
  if (!cosine || steps <= 1) return lr;
  double x = (double)t / (double)(steps - 1);
  if (x > 1.0) x = 1.0;
  const double f = 0.01;
  return lr * (f + (1.0 - f) * 0.5 * (1.0 + cos(3.14159265358979323846 * x)));
}

/* tmpl with every "{rank}" replaced by r (a new string), or NULL. */
static char *subst_rank(const char *tmpl, int r) {
  char num[24];
  snprintf(num, sizeof num, "%d", r);
  size_t count = 0;
  for (const char *p = strstr(tmpl, RANK_TAG); p;
       p = strstr(p + strlen(RANK_TAG), RANK_TAG))
    count++;
  size_t len = strlen(tmpl) + count * strlen(num) + 1;
  char *s = malloc(len), *o = s;
  if (!s) return NULL;
  const char *p = tmpl, *q;
  while ((q = strstr(p, RANK_TAG))) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, num, strlen(num));
    o += strlen(num);
    p = q + strlen(RANK_TAG);
  }
  strcpy(o, p);
  return s;
}

/* FNV-1a over the selected column names (and their count). */
static uint64_t names_hash(char *const *names, size_t d) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t k = 0; k < sizeof d; k++) {
    h ^= (d >> (8 * k)) & 0xff;
    h *= 0x100000001b3ull;
  }
  for (size_t j = 0; j < d; j++)
    for (const unsigned char *p = (const unsigned char *)names[j];; p++) {
      h ^= *p;
      h *= 0x100000001b3ull;
      if (!*p) break;
    }
  return h;
}

/* ======================================================================
 * Shards
 * ====================================================================== */

typedef struct shard {
  int r;              /* its rank */
  char *path;         /* the file it was read from */
  size_t dim;
  char **names;       /* dim column names */
  size_t n_rows;      /* usable rows of the shard */
  size_t n_train, n_held;
  float *train, *held;
  /* minibatches */
  size_t b;           /* local batch size */
  size_t *perm;       /* n_train */
  uint64_t cur_epoch;
} shard;

typedef struct settings {
  const char *data;      /* DATA argument (may hold {rank}) */
  int files;             /* 1: DATA names one file per rank */
  const char *columns;   /* --columns or NULL */
  double heldout;
  uint64_t seed;
  int quiet;
} settings;

static void shard_free(shard *S) {
  if (S->names)
    for (size_t j = 0; j < S->dim; j++) free(S->names[j]);
  free(S->names);
  free(S->path);
  free(S->train);
  free(S->held);
  free(S->perm);
  memset(S, 0, sizeof *S);
}

/* Who a shard's messages come from: in MPI mode the rank prefix says it;
   in emulation, "shard r: ". */
static char g_shard_prefix[32] = "";

/* Reads shard r of R: in strided mode the rows of DATA whose data-row
   index i has i mod R == r, in file mode the whole of DATA with {rank}
   replaced by r. Prints its own errors; returns EXIT_OK or EXIT_RUNTIME.
   report: print the skipped-row notes. */
static int shard_load(shard *S, const settings *T, int r, int R, int report) {
  memset(S, 0, sizeof *S);
  S->r = r;
  S->cur_epoch = UINT64_MAX;
  S->path = T->files ? subst_rank(T->data, r) : strdup(T->data);
  if (!S->path) return out_of_memory();
  const char *p = strcmp(S->path, "-") == 0 ? "standard input" : S->path;
  const char *sp = g_shard_prefix;
  char err[4096];
  char *buf = NULL;
  size_t len = 0, *cols = NULL, dim = 0;
  csv_table *table = NULL;
  csv_matrix m;
  memset(&m, 0, sizeof m);
  int ret = EXIT_RUNTIME, rc;

  if ((rc = csv_read_file(S->path, &buf, &len, err, sizeof err))) {
    ret = rc == CSV_ENOMEM ? out_of_memory()
                           : fail("%scannot read the shard: %s", sp, err);
    goto done;
  }
  if ((rc = csv_parse(buf, len, &table, err, sizeof err))) {
    ret = rc == CSV_ENOMEM ? out_of_memory() : fail("%s%s: %s", sp, p, err);
    goto done;
  }
  if (T->columns) {
    rc = csv_select(table, T->columns, &cols, &dim, err, sizeof err);
    if (rc) {
      ret = rc == CSV_ENOMEM ? out_of_memory() : fail("%s%s: %s", sp, p, err);
      goto done;
    }
  } else {
    rc = csv_numeric_columns(table, &cols, &dim, err, sizeof err);
    if (rc) {
      ret = rc == CSV_ENOMEM ? out_of_memory() : fail("%s%s: %s", sp, p, err);
      goto done;
    }
    if (dim == 0) {
      ret = fail("%s%s: no numeric column: choose columns with --columns", sp,
                 p);
      goto done;
    }
  }
  for (size_t j = 0; j < dim; j++)
    if (strlen(csv_col_name(table, cols[j])) > MAX_NAME_BYTES) {
      ret = fail("%s%s: the name of column %zu is longer than %d bytes", sp, p,
                 cols[j], MAX_NAME_BYTES);
      goto done;
    }
  if ((rc = csv_extract(table, cols, dim, &m, err, sizeof err))) {
    ret = rc == CSV_ENOMEM ? out_of_memory() : fail("%s%s: %s", sp, p, err);
    goto done;
  }
  if (report) {
    for (size_t i = 0; i < m.n_skipped && i < MAX_SKIP_LINES; i++) {
      const csv_skip *s = &m.skips[i];
      const size_t line = csv_row_line(table, s->row);
      msg_prefix();
      if (s->reason == CSV_SKIP_TOO_MANY) {
        fprintf(stderr, "%s%s:%zu: row skipped: it has %zu fields, the header "
                "has %zu\n", sp, p, line, s->col, csv_num_cols(table));
      } else {
        fprintf(stderr, "%s%s:%zu: row skipped: column '", sp, p, line);
        put_name(stderr, csv_col_name(table, s->col));
        fprintf(stderr, "' %s\n", csv_skip_reason(s->reason));
      }
    }
    if (m.n_skipped > MAX_SKIP_LINES)
      note("%s%s: ... and %zu more skipped rows", sp, p,
           m.n_skipped - MAX_SKIP_LINES);
  }

  /* the shard's rows and its held-out split */
  S->dim = dim;
  const size_t d = dim;
  const uint64_t key =
      T->files ? mix64(seed_stream(T->seed, 2) + (uint64_t)r + 1)
               : seed_stream(T->seed, 2);
  size_t n = 0, nh = 0;
  for (size_t i = 0; i < m.n; i++) {
    const size_t id = m.rows[i];
    if (!T->files && id % (size_t)R != (size_t)r) continue;
    n++;
    nh += (size_t)is_heldout(key, id, T->heldout);
  }
  if (n == 0) {
    if (T->files)
      ret = fail("%s%s: no usable rows (read %zu, skipped %zu)", sp, p,
                 csv_num_rows(table), m.n_skipped);
    else
      ret = fail("%s%s: no usable rows in shard %d of %d (rows i with i mod "
                 "%d = %d; the file has %zu usable rows)",
                 sp, p, r, R, R, r, m.n);
    goto done;
  }
  /* all rows held out: the first one trains */
  const int force_first = nh == n;
  if (force_first) nh--;
  S->n_rows = n;
  S->n_held = nh;
  S->n_train = n - nh;
  S->train = malloc(S->n_train * d * sizeof(float));
  S->held = malloc((nh ? nh : 1) * d * sizeof(float));
  S->perm = malloc(S->n_train * sizeof(size_t));
  S->names = calloc(d, sizeof(char *));
  if (!S->train || !S->held || !S->perm || !S->names) {
    ret = out_of_memory();
    goto done;
  }
  for (size_t j = 0; j < d; j++)
    if (!(S->names[j] = strdup(csv_col_name(table, cols[j])))) {
      ret = out_of_memory();
      goto done;
    }
  size_t a = 0, b = 0, seen = 0;
  for (size_t i = 0; i < m.n; i++) {
    const size_t id = m.rows[i];
    if (!T->files && id % (size_t)R != (size_t)r) continue;
    int h = is_heldout(key, id, T->heldout);
    if (force_first && seen == 0) h = 0;
    seen++;
    float *dst = h ? S->held + b++ * d : S->train + a++ * d;
    memcpy(dst, m.x + i * d, d * sizeof(float));
  }
  if (!T->quiet) {
    if (T->files)
      note("%s%s: read %zu rows, skipped %zu; %zu training rows, %zu held "
           "out", sp, p, csv_num_rows(table), m.n_skipped, S->n_train,
           S->n_held);
    else
      note("%s%s: shard %d of %d: %zu rows (%zu skipped in the file); %zu "
           "training rows, %zu held out", sp, p, r, R, n, m.n_skipped,
           S->n_train, S->n_held);
  }
  ret = EXIT_OK;
done:
  csv_matrix_free(&m);
  free(cols);
  csv_free(table);
  free(buf);
  return ret;
}

/* Rows local_batch positions T*b .. T*b+b-1 of the shard's concatenated
   per-epoch permutations, copied to dst (b x d). */
static void shard_batch(shard *S, uint64_t seed, uint64_t step, float *dst) {
  const size_t d = S->dim, n = S->n_train, b = S->b;
  for (size_t k = 0; k < b; k++) {
    const uint64_t pos = step * (uint64_t)b + k;
    const uint64_t epoch = pos / n;
    if (epoch != S->cur_epoch) {
      permutation(perm_key(seed, (uint64_t)S->r, epoch), n, S->perm);
      S->cur_epoch = epoch;
    }
    memcpy(dst + k * d, S->train + S->perm[pos % n] * d, d * sizeof(float));
  }
}

/* Sum of log p over n rows (in chunks); *bad set on a library error. */
static int sum_log_prob(const rad_flow *flow, rad_workspace *ws, size_t n,
                        const float *x, float *lp, double *sum) {
  const size_t d = rad_flow_dim(flow);
  double s = 0.0;
  for (size_t i = 0; i < n; i += CHUNK) {
    const size_t m = n - i < CHUNK ? n - i : CHUNK;
    int rc = rad_flow_log_prob_ws(flow, ws, m, x + i * d, lp);
    if (rc) return rc;
    for (size_t j = 0; j < m; j++) s += lp[j];
  }
  *sum = s;
  return RAD_OK;
}

/* ======================================================================
 * Reductions: in MPI mode the process holds one shard and sums run over
 * the ranks; in emulation the process holds all R shards and sums run
 * over them in rank order.
 * ====================================================================== */

typedef struct ctx {
  int mpi;     /* 1: MPI ranks; 0: emulation */
  int R;       /* ranks (real or emulated) */
  int nsh;     /* shards held by this process: 1 (MPI) or R */
  shard *sh;   /* nsh shards */
} ctx;

/* out[j] = sum over every shard of loc[s * k + j] (s over this process's
   shards). out may not alias loc. */
static void sum_d(const ctx *C, const double *loc, size_t k, double *out) {
  if (C->mpi) {
    MPI_Allreduce(loc, out, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return;
  }
  for (size_t j = 0; j < k; j++) {
    double s = 0.0;
    for (int i = 0; i < C->nsh; i++) s += loc[(size_t)i * k + j];
    out[j] = s;
  }
}

/* Collective status: every rank (or shard) passes its status; returns
   the number that failed, and (MPI) fills failed[R] (may be NULL). */
static int count_failed(const ctx *C, const int *st, int *failed) {
  int nf = 0;
  if (C->mpi) {
    int *all = malloc((size_t)C->R * sizeof(int));
    int mine = st[0] != 0;
    if (!all) {
      /* fall back on a sum: still collective */
      MPI_Allreduce(&mine, &nf, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
      return nf;
    }
    MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
    for (int r = 0; r < C->R; r++) {
      nf += all[r];
      if (failed) failed[r] = all[r];
    }
    free(all);
    return nf;
  }
  for (int i = 0; i < C->nsh; i++) {
    nf += st[i] != 0;
    if (failed) failed[i] = st[i] != 0;
  }
  return nf;
}

/* "0, 2 and 5" of the failed ranks, into buf. */
static void list_ranks(const int *failed, int R, char *buf, size_t len) {
  size_t o = 0;
  int cnt = 0, total = 0;
  buf[0] = '\0';
  for (int r = 0; r < R; r++) total += failed[r] != 0;
  for (int r = 0; r < R && o < len; r++) {
    if (!failed[r]) continue;
    cnt++;
    const char *sep = cnt == 1 ? "" : cnt == total ? " and " : ", ";
    int w = snprintf(buf + o, len - o, "%s%d", sep, r);
    if (w < 0) break;
    o += (size_t)w;
  }
}

/* Stops every rank after a failed collective check: rank 0 names the
   ranks (or emulated shards) that failed. Returns EXIT_RUNTIME. */
static int collective_failure(const ctx *C, const int *failed,
                              const char *what) {
  if (g_rank == 0) {
    char list[512];
    list_ranks(failed, C->R, list, sizeof list);
    int nf = 0;
    for (int r = 0; r < C->R; r++) nf += failed[r] != 0;
    fprintf(stderr, PROG ": stopping every rank: failure on %s %s (messages "
            "above); %s\n",
            C->mpi ? (nf > 1 ? "ranks" : "rank")
                   : (nf > 1 ? "shards" : "shard"),
            list, what);
    fflush(stderr);
  }
  return EXIT_RUNTIME;
}

/* Writes params (one %.9g a line: exact for float32). 0 or -1. */
static int dump_params(const char *path, const float *params, size_t np) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  for (size_t i = 0; i < np; i++) fprintf(f, "%.9g\n", (double)params[i]);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  return bad ? -1 : 0;
}

/* --dump-params: rank 0 writes FILE, or every rank if FILE holds {rank}
   (emulation: {rank} is 0). Returns 0, or 1 after a message. */
static int dump_rank_params(const char *tmpl, int mpi, const float *params,
                            size_t np) {
  const int r = mpi ? g_rank : 0;
  if (!strstr(tmpl, RANK_TAG) && r != 0) return 0;
  char *p = subst_rank(tmpl, r);
  int bad = !p || dump_params(p, params, np);
  if (bad)
    fail("%s: cannot write the parameters: %s", p ? p : tmpl,
         p ? strerror(errno) : "out of memory");
  free(p);
  return bad;
}

/* Fails early if the directory of `path` is not writable. */
static int check_writable(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t len = slash ? (size_t)(slash - path) : 1;
  if (slash && len == 0) len = 1;
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

/* ======================================================================
 * The program
 * ====================================================================== */

static const char HELP[] =
    "Usage: mpirun -np R " PROG " DATA.csv --out MODEL [OPTIONS]\n"
    "       " PROG " DATA.csv --emulate-ranks R --out MODEL [OPTIONS]\n"
    "\n"
    "Fits a RAD flow (or a REAL NVP flow) to columns of a CSV file, data-\n"
    "parallel over the R ranks of an MPI job: each rank holds a shard of the\n"
    "rows, computes the gradient of its share of each global minibatch, and\n"
    "one MPI_Allreduce per step averages the gradients, so every rank takes\n"
    "the same Adam step and holds the same parameters. Rank 0 saves MODEL.\n"
    "Options are those of 'rad fit' (docs/cli.md); see docs/scaling.md.\n"
    "\n"
    "Data\n"
    "  DATA.csv             every rank reads the file and keeps the data rows\n"
    "                       i with i mod R = rank (strided shards)\n"
    "  'DATA.{rank}.csv'    a path holding {rank}: rank r reads its own file,\n"
    "                       {rank} replaced by r (shard files)\n"
    "  --columns LIST       columns by name or 0-based index (default: every\n"
    "                       numeric column; every shard must agree)\n"
    "  --heldout F          fraction of rows held out (a seeded hash of each\n"
    "                       row's index), evaluated every ~10% of the steps;\n"
    "                       0 .. 0.5 (default 0.1)\n"
    "  --no-standardize     fit the raw columns (default: mean and standard\n"
    "                       deviation over ALL ranks' training rows)\n"
    "\n"
    "Model\n"
    "  --out MODEL          where rank 0 saves the model (atomically)\n"
    "  --kind rad|realnvp   coupling layers (default rad)\n"
    "  --layers L           coupling layers (default 6)\n"
    "  --hidden H           conditioner width (default 8 rad, 56 realnvp)\n"
    "  --gate-hidden G      gating network width, rad only (default 8)\n"
    "  --logit-bound B      soft clamp of the fold's logits (default 3)\n"
    "\n"
    "Training\n"
    "  --steps N            Adam steps (default 10000)\n"
    "  --batch B            GLOBAL rows per step (default 500, capped at the\n"
    "                       training rows of all ranks); rank r's share is\n"
    "                       B/R, plus one for the first B mod R ranks\n"
    "  --lr X               learning rate (default 1e-3)\n"
    "  --lr-schedule S      constant (default) or cosine (to 1% of --lr)\n"
    "  --seed S             seed of the initial parameters, the held-out\n"
    "                       split and the minibatch order (default 0)\n"
    "  --keep-best          end with the parameters of the best held-out\n"
    "                       evaluation\n"
    "  --threads T          threads per rank (workspace threads, default 1)\n"
    "  --quiet              no progress on stderr\n"
    "\n"
    "Testing and measuring\n"
    "  --emulate-ranks R    no MPI: one process builds the R shards and the\n"
    "                       same local minibatches, and takes the gradient of\n"
    "                       their union (for comparison with an R-rank run)\n"
    "  --dump-params FILE   write the parameters (one a line) after\n"
    "                       --dump-step steps; rank 0 writes FILE, or every\n"
    "                       rank if FILE holds {rank}\n"
    "  --dump-step N        step of the dump (default: the last step)\n"
    "  --timing-barrier     an MPI_Barrier before each all-reduce, timed\n"
    "                       apart, so that the all-reduce time is the\n"
    "                       communication alone (costs a little)\n"
    "\n"
    "Output: progress on stderr from rank 0; on stdout, at the end, 'key:\n"
    "value' lines: ranks, steps, train_mean_log_likelihood,\n"
    "heldout_mean_log_likelihood, params_identical_on_all_ranks, and\n"
    "timings (steps_per_second, samples_per_second, seconds per step of\n"
    "compute, all-reduce and update).\n"
    "Exit status: 0 success, 1 an error on any rank (every rank stops),\n"
    "2 usage error, 130 interrupted (the model so far is saved).\n";

enum {
  O_COLUMNS, O_OUT, O_KIND, O_LAYERS, O_HIDDEN, O_GATE_HIDDEN, O_LOGIT_BOUND,
  O_STEPS, O_BATCH, O_LR, O_LR_SCHEDULE, O_SEED, O_HELDOUT, O_KEEP_BEST,
  O_NO_STANDARDIZE, O_QUIET, O_THREADS, O_EMULATE, O_DUMP, O_DUMP_STEP,
  O_BARRIER
};
static const optdef OPTS[] = {
    [O_COLUMNS] = {"columns", 0, 1},
    [O_OUT] = {"out", 'o', 1},
    [O_KIND] = {"kind", 0, 1},
    [O_LAYERS] = {"layers", 0, 1},
    [O_HIDDEN] = {"hidden", 0, 1},
    [O_GATE_HIDDEN] = {"gate-hidden", 0, 1},
    [O_LOGIT_BOUND] = {"logit-bound", 0, 1},
    [O_STEPS] = {"steps", 0, 1},
    [O_BATCH] = {"batch", 0, 1},
    [O_LR] = {"lr", 0, 1},
    [O_LR_SCHEDULE] = {"lr-schedule", 0, 1},
    [O_SEED] = {"seed", 0, 1},
    [O_HELDOUT] = {"heldout", 0, 1},
    [O_KEEP_BEST] = {"keep-best", 0, 0},
    [O_NO_STANDARDIZE] = {"no-standardize", 0, 0},
    [O_QUIET] = {"quiet", 'q', 0},
    [O_THREADS] = {"threads", 0, 1},
    [O_EMULATE] = {"emulate-ranks", 0, 1},
    [O_DUMP] = {"dump-params", 0, 1},
    [O_DUMP_STEP] = {"dump-step", 0, 1},
    [O_BARRIER] = {"timing-barrier", 0, 0},
    {NULL, 0, 0}};

typedef struct options {
  settings T;
  const char *out;
  int kind;
  size_t layers, hidden, gate_hidden, batch, threads;
  uint64_t steps, dump_step;
  double lr, bound;
  int cosine, keep_best, standardize, barrier;
  int emulate; /* R of --emulate-ranks, 0 without */
  const char *dump;
} options;

static int parse_options(const cmdline *cl, options *o) {
  int rc;
  memset(o, 0, sizeof *o);
  if (cl->npos != 1) return usage_error("expected one DATA.csv argument");
  if (!cl->val[O_OUT]) return usage_error("--out MODEL is required");
  o->T.data = cl->pos[0];
  o->T.files = strstr(o->T.data, RANK_TAG) != NULL;
  o->T.columns = cl->val[O_COLUMNS];
  o->T.heldout = 0.1;
  o->out = cl->val[O_OUT];
  if (strstr(o->out, RANK_TAG))
    return usage_error("--out: rank 0 alone writes the model; the path "
                       "cannot hold " RANK_TAG);
  o->kind = RAD_LAYER_RAD;
  if (cl->val[O_KIND]) {
    if (strcmp(cl->val[O_KIND], "rad") == 0)
      o->kind = RAD_LAYER_RAD;
    else if (strcmp(cl->val[O_KIND], "realnvp") == 0)
      o->kind = RAD_LAYER_AFFINE;
    else
      return usage_error("--kind: '%s' is not rad or realnvp",
                         cl->val[O_KIND]);
  }
  o->layers = 6;
  o->hidden = o->kind == RAD_LAYER_RAD ? 8 : 56;
  o->gate_hidden = 8;
  o->steps = 10000;
  o->batch = 500;
  o->lr = 1e-3;
  o->bound = NAN;
  o->threads = 1;
  if (cl->val[O_LAYERS] &&
      (rc = parse_size("--layers", cl->val[O_LAYERS], 1, MAX_LAYERS,
                       &o->layers)))
    return rc;
  if (cl->val[O_HIDDEN] &&
      (rc = parse_size("--hidden", cl->val[O_HIDDEN], 1, MAX_WIDTH,
                       &o->hidden)))
    return rc;
  if (cl->val[O_GATE_HIDDEN]) {
    if (o->kind != RAD_LAYER_RAD)
      return usage_error("--gate-hidden is for --kind rad only");
    if ((rc = parse_size("--gate-hidden", cl->val[O_GATE_HIDDEN], 1,
                         MAX_WIDTH, &o->gate_hidden)))
      return rc;
  }
  if (cl->val[O_STEPS] &&
      (rc = parse_u64("--steps", cl->val[O_STEPS], 0, MAX_STEPS, &o->steps)))
    return rc;
  if (cl->val[O_BATCH] &&
      (rc = parse_size("--batch", cl->val[O_BATCH], 1, MAX_STEPS, &o->batch)))
    return rc;
  if (cl->val[O_LR]) {
    if ((rc = parse_real("--lr", cl->val[O_LR], 0.0, HUGE_VAL, 0, &o->lr)))
      return rc;
    if (!(o->lr > 0.0)) return usage_error("--lr must be positive");
  }
  if (cl->val[O_LR_SCHEDULE]) {
    if (strcmp(cl->val[O_LR_SCHEDULE], "constant") == 0)
      o->cosine = 0;
    else if (strcmp(cl->val[O_LR_SCHEDULE], "cosine") == 0)
      o->cosine = 1;
    else
      return usage_error("--lr-schedule: '%s' is not constant or cosine",
                         cl->val[O_LR_SCHEDULE]);
  }
  if (cl->val[O_SEED] &&
      (rc = parse_u64("--seed", cl->val[O_SEED], 0, UINT64_MAX, &o->T.seed)))
    return rc;
  if (cl->val[O_HELDOUT] &&
      (rc = parse_real("--heldout", cl->val[O_HELDOUT], 0.0, 0.5, 0,
                       &o->T.heldout)))
    return rc;
  o->keep_best = cl->val[O_KEEP_BEST] != NULL;
  if (o->keep_best && !(o->T.heldout > 0.0))
    return usage_error("--keep-best needs a held-out set (--heldout > 0)");
  if (cl->val[O_LOGIT_BOUND]) {
    if (o->kind != RAD_LAYER_RAD)
      return usage_error("--logit-bound is for --kind rad only");
    if ((rc = parse_real("--logit-bound", cl->val[O_LOGIT_BOUND], 0.0,
                         HUGE_VAL, 1, &o->bound)))
      return rc;
  }
  o->standardize = cl->val[O_NO_STANDARDIZE] == NULL;
  o->T.quiet = cl->val[O_QUIET] != NULL;
  if (cl->val[O_THREADS] &&
      (rc = parse_size("--threads", cl->val[O_THREADS], 1, 64, &o->threads)))
    return rc;
  if (cl->val[O_EMULATE]) {
    size_t r;
    if ((rc = parse_size("--emulate-ranks", cl->val[O_EMULATE], 1,
                         MAX_EMULATED, &r)))
      return rc;
    o->emulate = (int)r;
  }
  o->dump = cl->val[O_DUMP];
  o->dump_step = o->steps;
  if (cl->val[O_DUMP_STEP]) {
    if (!o->dump) return usage_error("--dump-step needs --dump-params FILE");
    if ((rc = parse_u64("--dump-step", cl->val[O_DUMP_STEP], 0, o->steps,
                        &o->dump_step)))
      return rc;
  }
  o->barrier = cl->val[O_BARRIER] != NULL;
  return 0;
}

/* Set by SIGINT / SIGTERM: the ranks stop together at the next step. */
static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

/* Per-step timers (seconds, summed over the steps). */
typedef struct timers {
  double compute, wait, allreduce, update, eval;
  double compute_cpu; /* CPU time of the compute phase (all threads) */
} timers;

/* CPU time of this process (all its threads), seconds. */
static double cpu_seconds(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run(const options *o, ctx *C) {
  const int R = C->R;
  const int quiet = o->T.quiet;
  int ret = EXIT_RUNTIME;
  int *st = calloc((size_t)C->nsh, sizeof(int));
  int *failed = calloc((size_t)R, sizeof(int));
  double *loc = NULL, *glob = NULL;
  rad_flow *flow = NULL;
  rad_adam *opt = NULL;
  rad_workspace *ws = NULL;
  float *params = NULL, *gbuf = NULL, *batch = NULL, *lp = NULL,
        *best = NULL, *ref = NULL;
  if (!st || !failed) {
    free(st);
    free(failed);
    return out_of_memory();
  }

  /* ---- 1. every rank reads its shard; a collective check ------------ */
  if (C->mpi && !quiet && R > 1 && !getenv("OPENBLAS_NUM_THREADS") &&
      !getenv("OMP_NUM_THREADS"))
    note0("note: OPENBLAS_NUM_THREADS is not set; with several ranks on one "
          "machine set it to 1 (docs/scaling.md)");
  for (int i = 0; i < C->nsh; i++) {
    const int r = C->mpi ? g_rank : i;
    if (!C->mpi && R > 1)
      snprintf(g_shard_prefix, sizeof g_shard_prefix, "shard %d: ", r);
    /* skipped-row notes: per file, so once in strided mode */
    const int report = !quiet && (o->T.files || r == 0);
    st[i] = shard_load(&C->sh[i], &o->T, r, R, report);
  }
  g_shard_prefix[0] = '\0';
  if (g_rank == 0 && check_writable(o->out)) st[0] = 1;
  if (o->dump) {
    int bad = 0;
    for (int i = 0; i < C->nsh && !bad; i++) {
      const int r = C->mpi ? g_rank : i;
      if (!strstr(o->dump, RANK_TAG) && r != 0) continue;
      if (!C->mpi && r != 0) continue;
      char *p = subst_rank(o->dump, r);
      bad = !p || check_writable(p) != EXIT_OK;
      free(p);
    }
    if (bad) st[0] = 1;
  }
  if (count_failed(C, st, failed)) {
    ret = collective_failure(C, failed, "no rank trained");
    goto done;
  }

  /* ---- 2. the shards agree on the columns -------------------------- */
  shard *S0 = &C->sh[0];
  const size_t d = S0->dim;
  {
    uint64_t h = names_hash(S0->names, d), h0 = h;
    int differs = 0;
    if (C->mpi) {
      MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
      differs = h != h0;
    } else {
      for (int i = 1; i < C->nsh; i++)
        if (names_hash(C->sh[i].names, C->sh[i].dim) != h0) st[i] = 1;
    }
    if (C->mpi) st[0] = differs;
    if (count_failed(C, st, failed)) {
      for (int i = 0; i < C->nsh; i++) {
        if (!(C->mpi ? differs : st[i])) continue;
        msg_prefix();
        if (!C->mpi) fprintf(stderr, "shard %d: ", i);
        fprintf(stderr, "%s selects the columns ", C->sh[i].path);
        for (size_t j = 0; j < C->sh[i].dim; j++) {
          if (j) fputs(",", stderr);
          put_name(stderr, C->sh[i].names[j]);
        }
        fputs(", unlike rank 0's\n", stderr);
      }
      if (g_rank == 0) {
        msg_prefix();
        fprintf(stderr, "rank 0 selects ");
        for (size_t j = 0; j < d; j++) {
          if (j) fputs(",", stderr);
          put_name(stderr, S0->names[j]);
        }
        fputs(" (choose the same columns everywhere with --columns)\n",
              stderr);
      }
      ret = collective_failure(C, failed, "the columns differ; no rank trained");
      goto done;
    }
  }

  /* ---- 3. global counts, batch sizes -------------------------------- */
  const size_t nsh = (size_t)C->nsh;
  loc = calloc(nsh * (2 * d + 4), sizeof(double));
  glob = calloc(2 * d + 4, sizeof(double));
  float *shift = malloc(d * sizeof(float)), *scale = malloc(d * sizeof(float));
  st[0] = !loc || !glob || !shift || !scale;
  if (st[0]) out_of_memory();
  if (count_failed(C, st, failed)) {
    free(shift), free(scale);
    ret = collective_failure(C, failed, "out of memory; no rank trained");
    goto done;
  }
  for (int i = 0; i < C->nsh; i++) {
    loc[(size_t)i * 2] = (double)C->sh[i].n_train;
    loc[(size_t)i * 2 + 1] = (double)C->sh[i].n_held;
  }
  sum_d(C, loc, 2, glob);
  const size_t N_train = (size_t)glob[0], N_held = (size_t)glob[1];
  size_t B = o->batch;
  if (B > N_train) B = N_train;
  if (B < (size_t)R) {
    if (g_rank == 0)
      usage_error("--batch %zu is smaller than the %d ranks (every rank needs "
                  "at least one row per step)", B, R);
    free(shift), free(scale);
    ret = EXIT_USAGE;
    goto done;
  }
  size_t bmax = 0;
  for (int i = 0; i < C->nsh; i++) {
    shard *S = &C->sh[i];
    S->b = local_batch(B, S->r, R);
    if (S->b > bmax) bmax = S->b;
  }

  /* ---- 4. the standardization over all training rows ---------------- */
  if (o->standardize) {
    /* two passes: the global mean, then the centered sum of squares */
    for (int i = 0; i < C->nsh; i++) {
      const shard *S = &C->sh[i];
      for (size_t j = 0; j < d; j++) {
        double s = 0.0;
        for (size_t k = 0; k < S->n_train; k++) s += S->train[k * d + j];
        loc[(size_t)i * d + j] = s;
      }
    }
    sum_d(C, loc, d, glob);
    double *mean = glob + d; /* keep the means apart */
    for (size_t j = 0; j < d; j++) mean[j] = glob[j] / (double)N_train;
    for (int i = 0; i < C->nsh; i++) {
      const shard *S = &C->sh[i];
      for (size_t j = 0; j < d; j++) {
        double v = 0.0;
        for (size_t k = 0; k < S->n_train; k++) {
          const double e = S->train[k * d + j] - mean[j];
          v += e * e;
        }
        loc[(size_t)i * d + j] = v;
      }
    }
    sum_d(C, loc, d, glob);
    for (size_t j = 0; j < d; j++) {
      const float sd = (float)sqrt(glob[j] / (double)N_train);
      shift[j] = (float)mean[j];
      const int constant = !(sd >= FLT_MIN && isfinite(sd));
      scale[j] = constant ? 1.0f : sd;
      if (constant && g_rank == 0 && !quiet) {
        fputs(PROG ": warning: column '", stderr);
        put_name(stderr, S0->names[j]);
        fputs("' is constant in the training rows (scale 1 used); its "
              "density is degenerate and the fit may diverge\n", stderr);
      }
    }
  }

  /* ---- 5. the model: the same seed on every rank -------------------- */
  int frc = rad_flow_create(o->kind, d, o->layers, o->hidden,
                            o->kind == RAD_LAYER_RAD ? o->gate_hidden : 0,
                            seed_stream(o->T.seed, 1), &flow);
  if (!frc && o->standardize)
    frc = rad_flow_set_standardization(flow, shift, scale, d);
  free(shift), free(scale);
  if (!frc)
    frc = rad_flow_set_column_names(flow, (const char *const *)S0->names, d);
  if (!frc && !isnan(o->bound))
    frc = rad_flow_set_option(flow, RAD_OPTION_LOGIT_BOUND,
                              isinf(o->bound) ? 0.0 : o->bound);
  const size_t np = frc ? 0 : rad_flow_num_params(flow);
  if (!frc && np + 3 > (size_t)INT_MAX) frc = RAD_ETOOBIG;
  if (!frc) frc = rad_adam_create(np, &opt);
  if (!frc)
    frc = rad_adam_set_option(opt, RAD_OPTION_LEARNING_RATE, o->lr);
  /* the workspace serves the gradient (local batch, or the union in
     emulation) and the evaluations */
  const size_t gb = C->mpi ? bmax : B;
  size_t wmax = gb < MAX_GRAD_BATCH ? gb : MAX_GRAD_BATCH;
  if (wmax < CHUNK && N_held + N_train > wmax)
    wmax = CHUNK < N_held + N_train ? CHUNK : N_held + N_train;
  if (!frc) frc = rad_workspace_create(flow, wmax, &ws);
  if (!frc)
    frc = rad_workspace_set_option(ws, RAD_OPTION_THREADS, (double)o->threads);
  if (frc) {
    /* identical on every rank: no collective needed */
    if (g_rank == 0) fail("cannot create the model: %s", rad_strerror(frc));
    goto done;
  }
  params = malloc(np * sizeof(float));
  gbuf = malloc((np + 3) * sizeof(float));
  batch = malloc(gb * d * sizeof(float));
  lp = malloc(CHUNK * sizeof(float));
  if (o->keep_best) best = malloc(np * sizeof(float));
  if (C->mpi) ref = malloc(np * sizeof(float));
  st[0] = !params || !gbuf || !batch || !lp || (o->keep_best && !best) ||
          (C->mpi && !ref);
  if (st[0]) out_of_memory();
  if (count_failed(C, st, failed)) {
    ret = collective_failure(C, failed, "out of memory; no rank trained");
    goto done;
  }
  rad_flow_get_params(flow, params, np);
  int diverged = 0, interrupted = 0, late_error = 0;

  const uint64_t steps = o->steps;
  uint64_t eval_every = (steps + 5) / 10;
  if (eval_every < 1) eval_every = 1;
  if (!quiet) {
    size_t nmin = SIZE_MAX, nmax = 0;
    for (int i = 0; i < C->nsh; i++) {
      if (C->sh[i].n_train < nmin) nmin = C->sh[i].n_train;
      if (C->sh[i].n_train > nmax) nmax = C->sh[i].n_train;
    }
    if (C->mpi) {
      unsigned long long a = nmin, b = nmax, ga, gbm;
      MPI_Allreduce(&a, &ga, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
      MPI_Allreduce(&b, &gbm, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
      nmin = (size_t)ga, nmax = (size_t)gbm;
    }
    note0("fitting %s (%zu layers, %zu parameters, %zu discrete labels) to "
          "%zu training rows, %zu held out, on %d %s%s (%zu .. %zu training "
          "rows each); %" PRIu64 " steps of global batch %zu (%zu .. %zu per "
          "rank)",
          rad_flow_num_labels(flow) ? "a RAD flow" : "a REAL NVP flow",
          rad_flow_num_layers(flow), np, rad_flow_num_labels(flow), N_train,
          N_held, R, C->mpi ? "MPI rank" : "emulated rank",
          R > 1 ? "s" : "", nmin, nmax, steps, B, B / (size_t)R,
          B / (size_t)R + (B % (size_t)R ? 1 : 0));
  }

  /* ---- 6. training --------------------------------------------------- */
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  if (o->dump && o->dump_step == 0)
    late_error |= dump_rank_params(o->dump, C->mpi, params, np);
  timers tm;
  memset(&tm, 0, sizeof tm);
  const double t0 = now_seconds();
  double train_sum = 0.0, heldout_ll = NAN, best_ll = -INFINITY;
  uint64_t train_cnt = 0, t_done = 0, best_step = 0;
  const int nstat = 3; /* sum of log p, rows, failures */
  for (uint64_t t = 0; t < steps; t++) {
    rad_adam_set_option(opt, RAD_OPTION_LEARNING_RATE,
                        lr_at(o->lr, o->cosine, t, steps));
    double a0 = now_seconds(), a1, a2, a3, a4, c0 = cpu_seconds(), c1;
    int grc = RAD_OK;
    double mean = 0.0;
    if (C->mpi) {
      shard *S = &C->sh[0];
      shard_batch(S, o->T.seed, t, batch);
      grc = rad_flow_grad_ws(flow, ws, S->b, batch, gbuf, &mean);
      const float w = (float)((double)S->b / (double)B);
      if (grc) {
        memset(gbuf, 0, np * sizeof(float));
        gbuf[np] = 0.0f;
      } else {
        if (w != 1.0f)
          for (size_t k = 0; k < np; k++) gbuf[k] *= w;
        gbuf[np] = (float)((double)S->b / (double)B * mean);
      }
      gbuf[np + 1] = grc ? 1.0f : 0.0f;
      gbuf[np + 2] = g_stop ? 1.0f : 0.0f;
      a1 = now_seconds();
      c1 = cpu_seconds();
      if (o->barrier) MPI_Barrier(MPI_COMM_WORLD);
      a2 = now_seconds();
      MPI_Allreduce(MPI_IN_PLACE, gbuf, (int)(np + 3), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
      a3 = now_seconds();
    } else {
      size_t off = 0;
      for (int i = 0; i < C->nsh; i++) {
        shard_batch(&C->sh[i], o->T.seed, t, batch + off * d);
        off += C->sh[i].b;
      }
      grc = rad_flow_grad_ws(flow, ws, B, batch, gbuf, &mean);
      gbuf[np] = (float)mean;
      gbuf[np + 1] = grc ? 1.0f : 0.0f;
      gbuf[np + 2] = g_stop ? 1.0f : 0.0f;
      a1 = a2 = a3 = now_seconds();
      c1 = cpu_seconds();
    }
    if (grc)
      note("step %" PRIu64 ": the gradient of %s minibatch failed: %s", t + 1,
           C->mpi ? "this rank's" : "the", rad_strerror(grc));
    if (gbuf[np + 1] > 0.0f) {
      diverged = 1;
      break;
    }
    int arc = rad_adam_step(opt, params, gbuf, np);
    if (arc) {
      note0("step %" PRIu64 ": the Adam step failed: %s", t + 1,
            rad_strerror(arc));
      diverged = 1;
      break;
    }
    rad_flow_set_params(flow, params, np);
    a4 = now_seconds();
    tm.compute += a1 - a0;
    tm.compute_cpu += c1 - c0;
    tm.wait += a2 - a1;
    tm.allreduce += a3 - a2;
    tm.update += a4 - a3;
    t_done = t + 1;
    train_sum += gbuf[np];
    train_cnt++;
    if (gbuf[np + 2] > 0.0f) interrupted = 1;
    if (o->dump && t_done == o->dump_step)
      late_error |= dump_rank_params(o->dump, C->mpi, params, np);
    const int last = t_done == steps || interrupted;
    if (t_done % eval_every == 0 || last) {
      const double e0 = now_seconds();
      if (N_held) {
        for (int i = 0; i < C->nsh; i++) {
          double s = 0.0;
          int erc = sum_log_prob(flow, ws, C->sh[i].n_held, C->sh[i].held, lp,
                                 &s);
          if (erc) note("evaluating the held-out rows: %s", rad_strerror(erc));
          loc[(size_t)i * nstat] = erc ? 0.0 : s;
          loc[(size_t)i * nstat + 1] = (double)C->sh[i].n_held;
          loc[(size_t)i * nstat + 2] = erc ? 1.0 : 0.0;
        }
        sum_d(C, loc, (size_t)nstat, glob);
        if (glob[2] > 0.0) {
          late_error = 1;
          break;
        }
        heldout_ll = glob[0] / glob[1];
        if (o->keep_best && heldout_ll > best_ll) {
          best_ll = heldout_ll;
          best_step = t_done;
          memcpy(best, params, np * sizeof(float));
        }
      }
      tm.eval += now_seconds() - e0;
      if (!quiet && g_rank == 0) {
        char el[24];
        format_duration(now_seconds() - t0, el, sizeof el);
        const int wd = snprintf(NULL, 0, "%" PRIu64, steps);
        fprintf(stderr, "step %*" PRIu64 "/%" PRIu64 " (%3.0f%%)  train %.4f",
                wd, t_done, steps, 100.0 * (double)t_done / (double)steps,
                train_sum / (double)train_cnt);
        if (N_held) fprintf(stderr, "  held-out %.4f", heldout_ll);
        fprintf(stderr, "  [%s]\n", el);
        fflush(stderr);
      }
      train_sum = 0.0;
      train_cnt = 0;
    }
    if (interrupted) break;
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  const double seconds = now_seconds() - t0;
  if (diverged)
    note0("the fit stopped at step %" PRIu64 " (a non-finite gradient or "
          "step); saving the parameters from before that step. Try a smaller "
          "--lr or --logit-bound.", t_done + 1);
  if (interrupted) note0("interrupted after %" PRIu64 " steps: saving the "
                         "model", t_done);
  if (o->keep_best && best_step) {
    memcpy(params, best, np * sizeof(float));
    rad_flow_set_params(flow, params, np);
    note0("kept the parameters of step %" PRIu64 " (best held-out %.4f)",
          best_step, best_ll);
  }

  /* ---- 7. final numbers, the identity check, the model -------------- */
  double train_ll = NAN, held_ll = NAN;
  for (int i = 0; i < C->nsh; i++) {
    const shard *S = &C->sh[i];
    double s1 = 0.0, s2 = 0.0;
    int e1 = sum_log_prob(flow, ws, S->n_train, S->train, lp, &s1);
    int e2 = e1 ? e1 : sum_log_prob(flow, ws, S->n_held, S->held, lp, &s2);
    if (e2) note("evaluating the fitted model: %s", rad_strerror(e2));
    loc[(size_t)i * 3] = s1;
    loc[(size_t)i * 3 + 1] = s2;
    loc[(size_t)i * 3 + 2] = e2 ? 1.0 : 0.0;
  }
  sum_d(C, loc, 3, glob);
  if (glob[2] > 0.0) late_error = 1;
  train_ll = glob[0] / (double)N_train;
  if (N_held) held_ll = glob[1] / (double)N_held;

  int identical = 1;
  if (C->mpi) {
    memcpy(ref, params, np * sizeof(float));
    MPI_Bcast(ref, (int)np, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int mine = memcmp(ref, params, np * sizeof(float)) != 0, any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    identical = any == 0;
    if (mine) fail("this rank's parameters differ from rank 0's");
    if (!identical) {
      note0("%d rank(s) hold parameters that differ from rank 0's", any);
      late_error = 1;
    }
  }
  int save_bad = 0;
  if (g_rank == 0 && (frc = rad_flow_save(flow, o->out))) {
    fail("%s: cannot save the model: %s (%s)", o->out, rad_strerror(frc),
         strerror(errno));
    save_bad = 1;
  }
  /* timings: averages over the steps, then over the ranks */
  const double n_st = t_done ? (double)t_done : 1.0;
  double tl[6] = {tm.compute / n_st, tm.wait / n_st, tm.allreduce / n_st,
                  tm.update / n_st, tm.eval, tm.compute_cpu / n_st}, tg[6],
         tmax[6];
  int flags[2] = {save_bad, late_error}, gflags[2] = {0, 0};
  if (C->mpi) {
    MPI_Allreduce(tl, tg, 6, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(tl, tmax, 6, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    for (int k = 0; k < 6; k++) tg[k] /= R;
    MPI_Allreduce(flags, gflags, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  } else {
    memcpy(tg, tl, sizeof tl);
    memcpy(tmax, tl, sizeof tl);
    memcpy(gflags, flags, sizeof flags);
  }
  if (gflags[0]) {
    note0("the model was not saved");
    goto done;
  }
  if (g_rank == 0) {
    if (!quiet) {
      char el[24];
      format_duration(seconds, el, sizeof el);
      note0("saved %s after %" PRIu64 " steps in %s", o->out, t_done, el);
    }
    const double step_s = tmax[0] + tmax[1] + tmax[2] + tmax[3];
    const double train_s = (seconds - tg[4]) / n_st;
    printf("ranks: %d%s\n", R, C->mpi ? "" : " (emulated)");
    printf("steps: %" PRIu64 "\n", t_done);
    printf("global_batch: %zu\n", B);
    printf("num_params: %zu\n", np);
    printf("train_mean_log_likelihood: %.9g\n", train_ll);
    if (N_held) printf("heldout_mean_log_likelihood: %.9g\n", held_ll);
    if (C->mpi)
      printf("params_identical_on_all_ranks: %s\n", identical ? "yes" : "NO");
    printf("seconds: %.6g\n", seconds);
    printf("steps_per_second: %.6g\n", t_done ? 1.0 / train_s : 0.0);
    printf("samples_per_second: %.6g\n", t_done ? (double)B / train_s : 0.0);
    printf("compute_seconds_per_step: %.6g\n", tg[0]);
    printf("compute_seconds_per_step_max_rank: %.6g\n", tmax[0]);
    printf("compute_cpu_seconds_per_step: %.6g\n", tg[5]);
    if (o->barrier) printf("barrier_seconds_per_step: %.6g\n", tg[1]);
    printf("allreduce_seconds_per_step: %.6g\n", tg[2]);
    printf("allreduce_bytes: %zu\n", (np + 3) * sizeof(float));
    printf("update_seconds_per_step: %.6g\n", tg[3]);
    printf("step_seconds_sum_of_max: %.6g\n", step_s);
    printf("eval_seconds: %.6g\n", tg[4]);
    if (fflush(stdout) != 0 || ferror(stdout)) {
      fail("error writing to standard output: %s", strerror(errno));
      gflags[1] = 1;
    }
  }
  if (gflags[1] || diverged)
    ret = EXIT_RUNTIME;
  else if (interrupted)
    ret = EXIT_INTERRUPTED;
  else
    ret = EXIT_OK;

done:
  free(st);
  free(failed);
  free(loc);
  free(glob);
  free(params);
  free(gbuf);
  free(batch);
  free(lp);
  free(best);
  free(ref);
  rad_workspace_free(ws);
  rad_adam_free(opt);
  rad_flow_free(flow);
  return ret;
}

/* The size of the MPI job this process belongs to, from the launcher's
   environment, before MPI_Init (0 when unknown). */
static int launcher_size(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                        "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return atoi(v);
  }
  return 0;
}

static int launcher_rank(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v) return atoi(v);
  }
  return 0;
}

int main(int argc, char **argv) {
  cmdline cl;
  options o;
  /* whole lines per write, so that the ranks' messages, merged by
     mpirun, do not interleave within a line */
  static char errbuf[8192];
  setvbuf(stderr, errbuf, _IOLBF, sizeof errbuf);
  /* a silent first parse decides between --help, emulation and MPI */
  g_usage_print = 0;
  int prc = parse_cmdline(argc, argv, OPTS, 1, &cl);
  if (prc < 0) {
    if (launcher_rank() == 0) fputs(HELP, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_RUNTIME;
  }
  int emulate = 0;
  if (prc == 0 && parse_options(&cl, &o) == 0) emulate = o.emulate;
  if (emulate) {
    g_usage_print = launcher_rank() == 0;
    if (launcher_size() > 1)
      return usage_error("--emulate-ranks runs in one process: start it "
                         "without mpirun (or with -np 1)");
    shard *sh = calloc((size_t)emulate, sizeof(shard));
    if (!sh) return out_of_memory();
    ctx C = {0, emulate, emulate, sh};
    int ret = run(&o, &C);
    for (int i = 0; i < emulate; i++) shard_free(&sh[i]);
    free(sh);
    return ret;
  }

  MPI_Init(&argc, &argv);
  g_mpi_on = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_mpi_ranks);
  g_usage_print = g_rank == 0;
  int ret = parse_cmdline(argc, argv, OPTS, 1, &cl);
  if (ret == 0) ret = parse_options(&cl, &o);
  if (ret == 0) {
    shard sh;
    memset(&sh, 0, sizeof sh);
    ctx C = {1, g_mpi_ranks, 1, &sh};
    ret = run(&o, &C);
    shard_free(&sh);
  }
  fflush(stdout);
  fflush(stderr);
  MPI_Finalize();
  return ret;
}
