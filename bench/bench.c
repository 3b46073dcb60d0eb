/*
 * rad-bench: throughput, memory and scaling of librad, through the public
 * API only (include/rad/rad.h), linked like the examples against the
 * in-tree shared library.
 *
 *   rad-bench [--quick] [--compare] [--reps N] [--only SECTIONS]
 *
 * Sections (default: all, in this order; --only takes a comma list):
 *   train    training steps/s at the paper configuration (d = 2, 6 layers,
 *            RAD H = G = 8, REAL NVP H = 56, batch 500): rad_flow_fit on
 *            10,000 moons points, and a bare rad_flow_grad_ws loop
 *   eval     log_prob and sample points/s, batches 1e4, 1e5, 1e6, with a
 *            workspace (max_batch 4096) and through the plain calls
 *   large    d = 16 and d = 64, 8 layers, 64 hidden units: training
 *            steps/s and log_prob points/s
 *   memory   heap allocations per training step (malloc counting shim),
 *            per *_ws call and per plain call; peak RSS of a training run
 *            (measured in a child process) and workspace sizes
 *   scaling  time per training step against batch size and layer count
 *   threads  one training; one whose batch the library splits over two
 *            threads (RAD_OPTION_THREADS = 2); two at once on two threads;
 *            two in two processes (the control), taking turns: aggregate
 *            steps/s; and log_prob_ws with a workspace of 1 and 2 threads
 *
 * --compare prints only the figures bench/torch_ref.py sets against
 * PyTorch (paper configuration: fit steps/s, log_prob points/s at 1e4 and
 * 1e5); --quick is the CI variant (3 repetitions, shorter runs, batches up
 * to 1e5).
 *
 * Every figure is the MEDIAN of several repetitions after a warm-up run,
 * with the spread (min, max), and the share of a core it got (CPU time /
 * wall time: below 100% other processes took the CPU and the figure is
 * low). Figures measured side by side take turns within each repetition. Single-thread numbers need
 * OPENBLAS_NUM_THREADS=1 in the environment (`make bench` sets it); the
 * program never changes OpenBLAS's thread count itself, it only reads it.
 *
 * Output: human-readable tables, then one machine-readable line per
 * figure:  bench name=NAME value=V unit=U [min=.. max=.. reps=.. cpu=..]
 *
 * The allocation counter: this program defines malloc, calloc, realloc,
 * free, posix_memalign and aligned_alloc, forwarding to glibc's
 * __libc_malloc etc. and counting calls, so every allocation in the
 * process (librad, OpenBLAS, libc) is counted, and while a count is taken
 * the callers are recorded so that dladdr can name the library that
 * allocated. glibc only.
 */
#define _GNU_SOURCE /* dladdr, to attribute allocations to a library */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rad/rad.h>

#define PROG "rad-bench"

/* ======================================================================
 * Allocation counting shim (glibc)
 * ====================================================================== */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

static atomic_ulong g_allocs;
/* While g_trace is set, the callers of the first TRACE_MAX allocations are
   kept (no allocation: a static array), to name the library responsible. */
#define TRACE_MAX 256
static atomic_int g_trace, g_trace_n;
static void *g_trace_addr[TRACE_MAX];

static void count_alloc(void *caller) {
  atomic_fetch_add_explicit(&g_allocs, 1ul, memory_order_relaxed);
  if (atomic_load_explicit(&g_trace, memory_order_relaxed)) {
    int i = atomic_fetch_add_explicit(&g_trace_n, 1, memory_order_relaxed);
    if (i < TRACE_MAX) g_trace_addr[i] = caller;
  }
}
static unsigned long alloc_count(void) {
  return atomic_load_explicit(&g_allocs, memory_order_relaxed);
}

void *malloc(size_t size) {
  count_alloc(__builtin_return_address(0));
  return __libc_malloc(size);
}
void *calloc(size_t nmemb, size_t size) {
  count_alloc(__builtin_return_address(0));
  return __libc_calloc(nmemb, size);
}
void *realloc(void *ptr, size_t size) {
  count_alloc(__builtin_return_address(0));
  return __libc_realloc(ptr, size);
}
void free(void *ptr) { __libc_free(ptr); }
int posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
  count_alloc(__builtin_return_address(0));
  void *p = __libc_memalign(alignment, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void *aligned_alloc(size_t alignment, size_t size) {
  count_alloc(__builtin_return_address(0));
  return __libc_memalign(alignment, size);
}

/* ======================================================================
 * Settings, errors, timing
 * ====================================================================== */
typedef struct settings {
  int quick, compare;
  int reps;           /* timed repetitions after the warm-up */
  double target;      /* seconds per repetition (at least) */
  long fit_steps;     /* steps per rad_flow_fit call, paper configuration */
  const char *only;   /* comma list of sections, NULL = all */
} settings;
static settings G;

static void die(const char *fmt, const char *a, int rc) {
  fprintf(stderr, PROG ": ");
  fprintf(stderr, fmt, a);
  if (rc) fprintf(stderr, ": %s (%d)", rad_strerror(rc), rc);
  fputc('\n', stderr);
  exit(1);
}

#define CHECK(call)                                                      \
  do {                                                                   \
    int rc_ = (call);                                                    \
    if (rc_ != RAD_OK) die("%s failed", #call, rc_);                     \
  } while (0)

static void *xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) die("out of memory (%s)", "malloc", 0);
  return p;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* CPU time of the whole process (all threads). */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
/* CPU time of the waited-for children. */
static double cpu_children(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) != 0) return 0.0;
  return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
         (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static int want(const char *section) {
  if (!G.only) return 1;
  size_t n = strlen(section);
  for (const char *p = G.only; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, section, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

/* ======================================================================
 * Machine-readable records (kept, printed at the end)
 * ====================================================================== */
#define MAX_RECORDS 512
typedef struct record {
  char name[96];
  char unit[24];
  double value, lo, hi;
  int reps;   /* 0: a single figure (no spread) */
  double cpu; /* CPU share while measuring (CPU time / wall time), < 0: none */
} record;
static record g_rec[MAX_RECORDS];
static int g_nrec;

static void put(const char *name, double value, const char *unit, double lo,
                double hi, int reps, double cpu) {
  if (g_nrec == MAX_RECORDS) return;
  record *r = &g_rec[g_nrec++];
  snprintf(r->name, sizeof r->name, "%s", name);
  snprintf(r->unit, sizeof r->unit, "%s", unit);
  r->value = value;
  r->lo = lo;
  r->hi = hi;
  r->reps = reps;
  r->cpu = cpu;
}
static void put1(const char *name, double value, const char *unit) {
  put(name, value, unit, value, value, 0, -1.0);
}

static void print_records(void) {
  printf("\n# machine-readable\n");
  for (int i = 0; i < g_nrec; i++) {
    const record *r = &g_rec[i];
    printf("bench name=%s value=%.6g unit=%s", r->name, r->value, r->unit);
    if (r->reps) printf(" min=%.6g max=%.6g reps=%d", r->lo, r->hi, r->reps);
    if (r->cpu >= 0.0) printf(" cpu=%.2f", r->cpu);
    putchar('\n');
  }
}

/* ======================================================================
 * The machine: CPU, clock, peak
 * ====================================================================== */
typedef struct machine {
  char model[128], vendor[32];
  int family, model_no;
  int avx2, fma, avx512f;
  double mhz;           /* max clock */
  const char *mhz_src;
  int lanes_flags;      /* float lanes by the flags: 16 AVX-512, 8 AVX2 */
  int lanes_eff;        /* effective width (Zen 4 runs 512-bit ops as 2x256) */
  double peak_flags;    /* GFLOP/s, one core, from the flags */
  double peak;          /* GFLOP/s, one core, effective: used for % of peak */
} machine;
static machine M;

static int has_flag(const char *flags, const char *f) {
  size_t n = strlen(f);
  for (const char *p = flags; (p = strstr(p, f)) != NULL; p += n) {
    int start = p == flags || p[-1] == ' ' || p[-1] == '\t';
    int end = p[n] == ' ' || p[n] == '\n' || p[n] == '\0';
    if (start && end) return 1;
  }
  return 0;
}

static void read_machine(void) {
  memset(&M, 0, sizeof M);
  snprintf(M.model, sizeof M.model, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[4096];
  int got_flags = 0;
  if (f) {
    while (fgets(line, sizeof line, f)) {
      char *colon = strchr(line, ':');
      if (!colon) continue;
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      char *nl = strchr(v, '\n');
      if (nl) *nl = '\0';
      if (strncmp(line, "model name", 10) == 0 && strcmp(M.model, "unknown") == 0)
        snprintf(M.model, sizeof M.model, "%s", v);
      else if (strncmp(line, "vendor_id", 9) == 0 && !M.vendor[0])
        snprintf(M.vendor, sizeof M.vendor, "%s", v);
      else if (strncmp(line, "cpu family", 10) == 0 && !M.family)
        M.family = atoi(v);
      else if (strncmp(line, "model\t", 6) == 0 && !M.model_no)
        M.model_no = atoi(v);
      else if (strncmp(line, "cpu MHz", 7) == 0) {
        double mhz = atof(v);
        if (mhz > M.mhz) M.mhz = mhz;
        M.mhz_src = "/proc/cpuinfo cpu MHz (max over cores; may be the base clock)";
      } else if (strncmp(line, "flags", 5) == 0 && !got_flags) {
        got_flags = 1;
        M.avx2 = has_flag(v, "avx2");
        M.fma = has_flag(v, "fma");
        M.avx512f = has_flag(v, "avx512f");
      }
    }
    fclose(f);
  }
  /* cpufreq's maximum (what lscpu prints as "CPU max MHz") wins if present */
  f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
  if (f) {
    double khz = 0.0;
    if (fscanf(f, "%lf", &khz) == 1 && khz > 0.0) {
      M.mhz = khz / 1000.0;
      M.mhz_src = "cpufreq cpuinfo_max_freq (lscpu's CPU max MHz)";
    }
    fclose(f);
  }
  if (M.mhz <= 0.0) {
    M.mhz = 0.0;
    M.mhz_src = "unknown";
  }
  M.lanes_flags = M.avx512f ? 16 : (M.avx2 && M.fma ? 8 : 4);
  M.lanes_eff = M.lanes_flags;
  /* AMD family 19h (Zen 4) has AVX-512 but two 256-bit FMA pipes: a
     512-bit FMA is issued as two halves, so the flop peak is AVX2's. */
  if (M.avx512f && strcmp(M.vendor, "AuthenticAMD") == 0 && M.family == 25) M.lanes_eff = 8;
  const double fma_units = 2.0, flops_per_fma = 2.0;
  M.peak_flags = fma_units * M.lanes_flags * flops_per_fma * M.mhz / 1000.0;
  M.peak = fma_units * M.lanes_eff * flops_per_fma * M.mhz / 1000.0;
}

/* OpenBLAS, read only (never changed): found with dlsym in the process. */
typedef int (*ob_int_fn)(void);
typedef char *(*ob_str_fn)(void);
static void openblas_info(char *cfg, size_t cfglen, char *core, size_t corelen,
                          int *threads) {
  snprintf(cfg, cfglen, "unknown");
  snprintf(core, corelen, "unknown");
  *threads = -1;
  void *h = dlopen(NULL, RTLD_NOW);
  if (!h) return;
  void *s;
  if ((s = dlsym(h, "openblas_get_config")) != NULL) {
    ob_str_fn fn;
    memcpy(&fn, &s, sizeof fn);
    snprintf(cfg, cfglen, "%s", fn());
  }
  if ((s = dlsym(h, "openblas_get_corename")) != NULL) {
    ob_str_fn fn;
    memcpy(&fn, &s, sizeof fn);
    snprintf(core, corelen, "%s", fn());
  }
  if ((s = dlsym(h, "openblas_get_num_threads")) != NULL) {
    ob_int_fn fn;
    memcpy(&fn, &s, sizeof fn);
    *threads = fn();
  }
  dlclose(h);
}

static const char *compiler(void) {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown compiler";
#endif
}

static long maxrss_kib(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
  return ru.ru_maxrss; /* KiB on Linux */
}

/* ======================================================================
 * Models and their flop counts (from the architecture)
 * ====================================================================== */
typedef struct cfg {
  const char *tag;  /* e.g. "rad.paper" */
  const char *title;
  int kind;
  size_t d, layers, hidden, gate;
} cfg;

static const cfg PAPER_RAD = {"rad.paper", "RAD d=2 L=6 H=8 G=8", RAD_LAYER_RAD, 2, 6, 8, 8};
static const cfg PAPER_NVP = {"realnvp.paper", "REAL NVP d=2 L=6 H=56", RAD_LAYER_AFFINE,
                              2, 6, 56, 0};

/* Transformed units of layer l under the default masks (dims i with
   (i + l) odd; all of them for d = 1). */
static size_t layer_d2(size_t d, size_t l) {
  if (d == 1) return 1;
  size_t c = 0;
  for (size_t i = 0; i < d; i++) c += (i + l) % 2 == 1;
  return c;
}

/* Elementwise work per transformed unit and sample, in flops: an
   estimate of what the model needs, counting each exp, log, tanh and
   sincos as 20 flops (about the operation count of the branch-free
   polynomials librad inlines) and other arithmetic at 1.
   RAD forward (~550): 8 tanh of the squashed outputs (r1, r2, six q),
   the fold's slopes from 6 exp and 3 log with ~40 arithmetic (the
   bounded-logit form; MODEL.md section 1), exp(s1), exp(s2), the piece
   and affine maps (~10), and the gate term: sincos, lambda (15), a 3-way
   log-softmax (3 exp, 1 log).
   RAD backward (~300): the gate term's softmax again and its backward
   (~160), the fold's backward from the slopes kept by the forward pass
   (~60), exp(s1), exp(s2) again, the tanh and clamp derivatives (~45).
   Affine: tanh + exp + 3 forward; exp + 8 backward. */
#define EW_RAD_FWD 550.0
#define EW_RAD_BWD 300.0
#define EW_AFF_FWD 43.0
#define EW_AFF_BWD 28.0
#define EW_ADAM_PER_PARAM 12.0 /* moments, bias corrections, sqrt, divide */

typedef struct flops {
  double dense_fwd;  /* per sample: 2 in out per dense layer */
  double ew_fwd;     /* per sample: elementwise estimate */
  double ew_bwd;
} flops;

static flops flop_count(const cfg *c) {
  flops f = {0.0, 0.0, 0.0};
  const double d = (double)c->d, H = (double)c->hidden, Gh = (double)c->gate;
  for (size_t l = 0; l < c->layers; l++) {
    const double d2 = (double)layer_d2(c->d, l), d1 = d - d2;
    if (c->kind == RAD_LAYER_RAD) {
      const double out = 10.0 * d2, gout = 3.0 * d2;
      f.dense_fwd += 2.0 * (d1 * H + H * out) + 2.0 * (d * Gh + Gh * gout);
      f.ew_fwd += 2.0 * H + out + 2.0 * Gh + gout + EW_RAD_FWD * d2;
      f.ew_bwd += 2.0 * H + out + 2.0 * Gh + gout + d + EW_RAD_BWD * d2;
    } else {
      const double out = 2.0 * d2;
      f.dense_fwd += 2.0 * (d1 * H + H * out);
      f.ew_fwd += 2.0 * H + out + EW_AFF_FWD * d2;
      f.ew_bwd += 2.0 * H + out + d + EW_AFF_BWD * d2;
    }
  }
  f.ew_fwd += 2.0 * d; /* base density */
  f.ew_bwd += 2.0 * d;
  return f;
}

/* Per training step of batch B: forward 1x, backward 2x the matmuls. */
static double train_dense(const cfg *c, size_t B) {
  return 3.0 * flop_count(c).dense_fwd * (double)B;
}
static double train_total(const cfg *c, size_t B, size_t n_params) {
  flops f = flop_count(c);
  return (3.0 * f.dense_fwd + f.ew_fwd + f.ew_bwd) * (double)B +
         EW_ADAM_PER_PARAM * (double)n_params;
}
static double lp_dense(const cfg *c) { return flop_count(c).dense_fwd; }
static double lp_total(const cfg *c) {
  flops f = flop_count(c);
  return f.dense_fwd + f.ew_fwd;
}

static rad_flow *make_flow(const cfg *c, uint64_t seed) {
  rad_flow *F = NULL;
  CHECK(rad_flow_create(c->kind, c->d, c->layers, c->hidden, c->gate, seed, &F));
  return F;
}

/* ======================================================================
 * Measurement: median of repetitions after a warm-up
 * ====================================================================== */
typedef struct stat {
  double med, lo, hi; /* of the rate */
  int reps;
  long iters;         /* work units per repetition */
  double cpu;         /* median CPU share (process CPU time / wall time) */
} stat;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : (x > y);
}

static stat stat_of(double *v, int n) {
  stat s;
  qsort(v, (size_t)n, sizeof(double), cmp_double);
  s.lo = v[0];
  s.hi = v[n - 1];
  s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.reps = n;
  s.iters = 0;
  s.cpu = -1.0;
  return s;
}

/* A workload: does `iters` units of work, returns a RAD status. */
typedef int (*work_fn)(void *ctx, long iters);

/* One workload of a measurement. */
typedef struct job {
  const char *what;
  work_fn fn;
  void *ctx;
  long warm_iters, min_iters;
  double units_per_iter;
} job;

/* Each job is warmed up with warm_iters units (which also times one
   unit), then repeated reps times with max(min_iters, target / unit time)
   units per repetition; the jobs take turns within every repetition, so
   that they see the same machine and their ratios are fair. The rate is
   units_per_iter * iters / seconds; rates[k][r] (if not NULL) receives
   every repetition's rate. */
static void measure_n(const job *jobs, int n, stat *out, double (*rates)[64]) {
  long iters[8];
  double rate[8][64], cpu[8][64];
  const int reps = G.reps > 64 ? 64 : G.reps;
  for (int k = 0; k < n && k < 8; k++) {
    double t0 = now();
    int rc = jobs[k].fn(jobs[k].ctx, jobs[k].warm_iters);
    double per = (now() - t0) / (double)jobs[k].warm_iters;
    if (rc) die("%s (warm-up) failed", jobs[k].what, rc);
    iters[k] = per > 0.0 ? (long)ceil(G.target / per) : jobs[k].min_iters;
    if (iters[k] < jobs[k].min_iters) iters[k] = jobs[k].min_iters;
    if (iters[k] < 1) iters[k] = 1;
  }
  for (int r = 0; r < reps; r++)
    for (int k = 0; k < n && k < 8; k++) {
      double c0 = cpu_now(), t0 = now();
      int rc = jobs[k].fn(jobs[k].ctx, iters[k]);
      double t = now() - t0;
      if (rc) die("%s failed", jobs[k].what, rc);
      cpu[k][r] = (cpu_now() - c0) / t;
      rate[k][r] = jobs[k].units_per_iter * (double)iters[k] / t;
      if (rates) rates[k][r] = rate[k][r];
    }
  for (int k = 0; k < n && k < 8; k++) {
    out[k] = stat_of(rate[k], reps);
    out[k].iters = iters[k];
    out[k].cpu = stat_of(cpu[k], reps).med;
  }
}

static stat measure(const char *what, work_fn fn, void *ctx, long warm_iters,
                    long min_iters, double units_per_iter) {
  job j = {what, fn, ctx, warm_iters, min_iters, units_per_iter};
  stat s;
  measure_n(&j, 1, &s, NULL);
  return s;
}

/* ---- workloads ---------------------------------------------------------- */
typedef struct fit_ctx {
  rad_flow *flow;
  rad_adam *opt;
  rad_fit_options *opts;
  size_t n;
  const float *x;
  rad_fit_callback cb;
  void *user;
} fit_ctx;

static void fit_ctx_init(fit_ctx *c, rad_flow *F, size_t batch, size_t n, const float *x,
                         uint64_t seed) {
  memset(c, 0, sizeof *c);
  c->flow = F;
  c->n = n;
  c->x = x;
  CHECK(rad_adam_create(rad_flow_num_params(F), &c->opt));
  CHECK(rad_fit_options_create(&c->opts));
  CHECK(rad_fit_options_set(c->opts, RAD_OPTION_BATCH_SIZE, (double)batch));
  CHECK(rad_fit_options_set(c->opts, RAD_OPTION_REPORT_EVERY, 0.0));
  CHECK(rad_fit_options_set(c->opts, RAD_OPTION_EVAL_EVERY, 0.0));
  CHECK(rad_fit_options_set(c->opts, RAD_OPTION_SEED, (double)seed));
}
static void fit_ctx_free(fit_ctx *c) {
  rad_adam_free(c->opt);
  rad_fit_options_free(c->opts);
}

static int work_fit(void *vc, long iters) {
  fit_ctx *c = vc;
  int rc = rad_fit_options_set(c->opts, RAD_OPTION_STEPS, (double)iters);
  if (rc) return rc;
  uint64_t done = 0;
  rc = rad_flow_fit(c->flow, c->opt, c->opts, c->n, c->x, 0, NULL, c->cb, c->user, &done);
  if (rc == RAD_OK && done != (uint64_t)iters) rc = RAD_ENUMERIC;
  return rc;
}

typedef struct grad_ctx {
  const rad_flow *flow;
  rad_workspace *ws;
  size_t n;
  const float *x;
  float *grad;
} grad_ctx;

static int work_grad(void *vc, long iters) {
  grad_ctx *c = vc;
  for (long i = 0; i < iters; i++) {
    double mean;
    int rc = rad_flow_grad_ws(c->flow, c->ws, c->n, c->x, c->grad, &mean);
    if (rc) return rc;
  }
  return RAD_OK;
}

typedef struct eval_ctx {
  const rad_flow *flow;
  rad_workspace *ws; /* NULL: the plain call */
  size_t n;
  const float *x;
  float *out;
  uint64_t seed;
} eval_ctx;

static int work_log_prob(void *vc, long iters) {
  eval_ctx *c = vc;
  for (long i = 0; i < iters; i++) {
    int rc = c->ws ? rad_flow_log_prob_ws(c->flow, c->ws, c->n, c->x, c->out)
                   : rad_flow_log_prob(c->flow, c->n, c->x, c->out);
    if (rc) return rc;
  }
  return RAD_OK;
}

static int work_sample(void *vc, long iters) {
  eval_ctx *c = vc;
  for (long i = 0; i < iters; i++) {
    c->seed++;
    int rc = c->ws ? rad_flow_sample_ws(c->flow, c->ws, c->seed, c->n, c->out, NULL, NULL)
                   : rad_flow_sample(c->flow, c->seed, c->n, c->out, NULL, NULL);
    if (rc) return rc;
  }
  return RAD_OK;
}

/* ======================================================================
 * Output rows
 * ====================================================================== */
static void section(const char *title) { printf("\n== %s ==\n", title); }

static void header(const char *first) {
  printf("%-48s %10s %10s %10s  %-8s %4s %8s %8s %6s\n", first, "median", "min", "max", "unit",
         "cpu", "dense", "total*", "%peak");
  printf("%-48s %10s %10s %10s  %-8s %4s %8s %8s %6s\n", "", "", "", "", "", "", "GFLOP/s",
         "GFLOP/s", "");
}

/* One row: the rate's median and spread; with flop counts per unit, the
   achieved GFLOP/s (dense exact, total with the elementwise estimate)
   and the fraction of the single-core peak. */
static void row(const char *label, const char *name, stat s, const char *unit,
                double dense_per_unit, double total_per_unit) {
  printf("%-48s %10.4g %10.4g %10.4g  %-8s %3.0f%%", label, s.med, s.lo, s.hi, unit,
         100.0 * s.cpu);
  put(name, s.med, unit, s.lo, s.hi, s.reps, s.cpu);
  if (dense_per_unit > 0.0) {
    double gd = s.med * dense_per_unit * 1e-9, gt = s.med * total_per_unit * 1e-9;
    printf(" %8.3f %8.3f %5.1f%%", gd, gt, M.peak > 0 ? 100.0 * gt / M.peak : 0.0);
    char n2[128];
    snprintf(n2, sizeof n2, "%s.gflops_dense", name);
    put1(n2, gd, "GFLOP/s");
    snprintf(n2, sizeof n2, "%s.gflops_total_est", name);
    put1(n2, gt, "GFLOP/s");
  }
  putchar('\n');
  fflush(stdout);
}

/* ======================================================================
 * Data
 * ====================================================================== */
static float *moons(size_t n, uint64_t seed) {
  float *x = xmalloc(n * 2 * sizeof(float));
  CHECK(rad_problem_sample(RAD_PROBLEM_MOONS, seed, n, x));
  return x;
}

/* Standard normal data for d > 2 (splitmix64 + Box-Muller). */
static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static float *gaussian(size_t n, size_t d, uint64_t seed) {
  float *x = xmalloc(n * d * sizeof(float));
  uint64_t s = seed;
  for (size_t i = 0; i < n * d; i += 2) {
    double u1 = ((double)(splitmix(&s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(splitmix(&s) >> 11) + 0.5) / 9007199254740992.0;
    double r = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    x[i] = (float)(r * cos(th));
    if (i + 1 < n * d) x[i + 1] = (float)(r * sin(th));
  }
  return x;
}

#define N_TRAIN 10000
#define SEED_DATA 20240601u
#define SEED_INIT 7u

/* The paper flows, trained a little (so that pieces and labels are
   spread as in real use) before the eval section measures them. */
static rad_flow *paper_flow(const cfg *c, const float *train, long steps) {
  rad_flow *F = make_flow(c, SEED_INIT);
  fit_ctx fc;
  fit_ctx_init(&fc, F, 500, N_TRAIN, train, 11);
  CHECK(work_fit(&fc, steps));
  fit_ctx_free(&fc);
  return F;
}

/* ======================================================================
 * Section: training at the paper configuration
 * ====================================================================== */
/* rad_flow_fit (STEPS = fit_steps per call) and, taking turns with it, a
   bare rad_flow_grad_ws loop on one fixed batch: their difference is the
   fit loop's own cost (minibatch gather, Adam, checks). */
static void bench_train(const cfg *c, const float *train, int verbose) {
  rad_flow *F = make_flow(c, SEED_INIT);
  const size_t np = rad_flow_num_params(F), B = 500;
  char label[128], name[128];
  fit_ctx fc;
  fit_ctx_init(&fc, F, B, N_TRAIN, train, 1);
  grad_ctx gc;
  gc.flow = F;
  gc.n = B;
  gc.x = train; /* a fixed batch: the first 500 points */
  gc.grad = xmalloc(np * sizeof(float));
  CHECK(rad_workspace_create(F, B, &gc.ws));
  const long warm = G.fit_steps / 4 > 0 ? G.fit_steps / 4 : 1;
  job jobs[2] = {{"rad_flow_fit", work_fit, &fc, warm, G.fit_steps, 1.0},
                 {"rad_flow_grad_ws", work_grad, &gc, warm, 10, 1.0}};
  stat st[2];
  double rates[2][64];
  measure_n(jobs, G.compare ? 1 : 2, st, rates);
  snprintf(label, sizeof label, "%s: rad_flow_fit (%ld steps/call)", c->title, st[0].iters);
  snprintf(name, sizeof name, "train.fit.%s", c->tag);
  row(label, name, st[0], "steps/s", train_dense(c, B), train_total(c, B, np));
  if (!G.compare) {
    snprintf(label, sizeof label, "%s: rad_flow_grad_ws loop", c->title);
    snprintf(name, sizeof name, "train.grad_ws.%s", c->tag);
    row(label, name, st[1], "steps/s", train_dense(c, B),
        train_total(c, B, np) - EW_ADAM_PER_PARAM * (double)np);
    /* per repetition (the two ran back to back), then the median */
    double ov[64];
    for (int r = 0; r < G.reps; r++) ov[r] = 1e6 / rates[0][r] - 1e6 / rates[1][r];
    stat o = stat_of(ov, G.reps);
    double us_fit = 1e6 / st[0].med;
    if (verbose)
      printf("%-48s %10.4g %10.4g %10.4g  us/step  (of %.4g: minibatch gather, Adam, "
             "checks)\n",
             "  fit loop cost beyond the gradient", o.med, o.lo, o.hi, us_fit);
    snprintf(name, sizeof name, "train.fit_overhead.%s", c->tag);
    put(name, o.med, "us/step", o.lo, o.hi, o.reps, -1.0);
  }
  fit_ctx_free(&fc);
  rad_workspace_free(gc.ws);
  free(gc.grad);
  rad_flow_free(F);
}

static void print_flop_model(const cfg *c, size_t B) {
  rad_flow *F = make_flow(c, SEED_INIT);
  size_t np = rad_flow_num_params(F);
  rad_flow_free(F);
  flops f = flop_count(c);
  printf("  %-22s params %7zu | per sample: dense fwd %9.0f, elementwise fwd ~%8.0f, "
         "bwd ~%8.0f flop\n",
         c->title, np, f.dense_fwd, f.ew_fwd, f.ew_bwd);
  printf("  %-22s per step (B=%zu): dense %.4g flop (3x fwd), total ~%.4g flop; "
         "per log_prob point: dense %.0f, total ~%.0f\n",
         "", B, train_dense(c, B), train_total(c, B, np), lp_dense(c), lp_total(c));
  char name[128];
  snprintf(name, sizeof name, "flops.train_step_dense.%s", c->tag);
  put1(name, train_dense(c, B), "flop");
  snprintf(name, sizeof name, "flops.train_step_total_est.%s", c->tag);
  put1(name, train_total(c, B, np), "flop");
  snprintf(name, sizeof name, "flops.log_prob_point_dense.%s", c->tag);
  put1(name, lp_dense(c), "flop");
  snprintf(name, sizeof name, "flops.log_prob_point_total_est.%s", c->tag);
  put1(name, lp_total(c), "flop");
}

/* ======================================================================
 * Section: evaluation throughput
 * ====================================================================== */
static stat bench_eval_one(const cfg *c, const rad_flow *F, rad_workspace *ws, int sample,
                           size_t n, const float *x, float *out) {
  eval_ctx ec = {F, ws, n, x, out, 1000};
  char label[128], name[128], nn[16];
  snprintf(nn, sizeof nn, "1e%d", (int)lround(log10((double)n)));
  stat s;
  if (!sample) {
    s = measure("log_prob", work_log_prob, &ec, 1, 1, (double)n);
    snprintf(label, sizeof label, "%s: log_prob%s n=%s", c->title, ws ? "_ws" : "     ", nn);
    snprintf(name, sizeof name, "%s.%s.n%zu", ws ? "log_prob_ws" : "log_prob", c->tag, n);
    row(label, name, s, "points/s", lp_dense(c), lp_total(c));
  } else {
    s = measure("sample", work_sample, &ec, 1, 1, (double)n);
    snprintf(label, sizeof label, "%s: sample%s   n=%s", c->title, ws ? "_ws" : "   ", nn);
    snprintf(name, sizeof name, "%s.%s.n%zu", ws ? "sample_ws" : "sample", c->tag, n);
    row(label, name, s, "points/s", 0.0, 0.0);
  }
  return s;
}

/* ======================================================================
 * Section: memory (allocations, peak RSS)
 * ====================================================================== */
static void trace_begin(void) {
  atomic_store(&g_trace_n, 0);
  atomic_store(&g_trace, 1);
}
static void trace_end(void) { atomic_store(&g_trace, 0); }

/* Names the code that made the traced allocations (by shared object and,
   when exported, function). */
static void trace_report(const char *indent) {
  int n = atomic_load(&g_trace_n);
  if (n > TRACE_MAX) n = TRACE_MAX;
  struct {
    const char *file, *sym;
    int count;
  } who[16];
  int nw = 0;
  for (int i = 0; i < n; i++) {
    Dl_info info;
    const char *file = "?", *sym = "?";
    if (dladdr(g_trace_addr[i], &info)) {
      if (info.dli_fname) {
        const char *b = strrchr(info.dli_fname, '/');
        file = b ? b + 1 : info.dli_fname;
      }
      if (info.dli_sname) sym = info.dli_sname;
    }
    int k = 0;
    while (k < nw && (strcmp(who[k].file, file) != 0 || strcmp(who[k].sym, sym) != 0)) k++;
    if (k == nw) {
      if (nw == 16) continue;
      who[nw].file = file;
      who[nw].sym = sym;
      who[nw].count = 0;
      nw++;
    }
    who[k].count++;
  }
  for (int k = 0; k < nw; k++)
    printf("%s%d of the first %d calls from %s (%s)\n", indent, who[k].count, n, who[k].file,
           who[k].sym);
}

typedef struct alloc_probe {
  unsigned long first, last;
  uint64_t step_first, step_last, stop_step;
  int calls;
} alloc_probe;

/* Called by rad_flow_fit every step: reads the counter, allocates nothing.
   Traces the callers of allocations from its first call to stop_step. */
static int alloc_cb(void *user, uint64_t step, double train_ll, double heldout_ll) {
  alloc_probe *p = user;
  unsigned long c = alloc_count();
  if (p->calls == 0) {
    p->first = c;
    p->step_first = step;
    trace_begin();
  }
  if (step >= p->stop_step) trace_end();
  p->last = c;
  p->step_last = step;
  p->calls++;
  (void)train_ll;
  (void)heldout_ll;
  return 0;
}

static void bench_allocs(const cfg *c, const float *train, size_t ntrain) {
  rad_flow *F = make_flow(c, SEED_INIT);
  const size_t np = rad_flow_num_params(F), d = c->d;
  char label[160], name[128];
  const long steps = G.quick ? 20 : 50;
  /* the fit: counted between its first and last progress callback */
  fit_ctx fc;
  fit_ctx_init(&fc, F, 500, ntrain, train, 3);
  CHECK(rad_fit_options_set(fc.opts, RAD_OPTION_REPORT_EVERY, 1.0));
  alloc_probe ap;
  memset(&ap, 0, sizeof ap);
  ap.stop_step = (uint64_t)steps; /* a fresh optimizer: steps 1 .. steps */
  fc.cb = alloc_cb;
  fc.user = &ap;
  unsigned long a0 = alloc_count();
  CHECK(work_fit(&fc, steps));
  trace_end();
  unsigned long a1 = alloc_count();
  fit_ctx_free(&fc);
  double per_step = ap.step_last > ap.step_first
                        ? (double)(ap.last - ap.first) / (double)(ap.step_last - ap.step_first)
                        : 0.0;
  snprintf(label, sizeof label, "%s: allocations per fit step (steps %llu..%llu)", c->title,
           (unsigned long long)ap.step_first, (unsigned long long)ap.step_last);
  printf("%-60s %10.4g %s\n", label, per_step,
         per_step == 0.0 ? "(ok)" : "<-- NOT ZERO: allocations per step, made by:");
  if (per_step != 0.0) trace_report("      ");
  snprintf(name, sizeof name, "mem.allocs_per_fit_step.%s", c->tag);
  put1(name, per_step, "allocs/step");
  snprintf(label, sizeof label, "%s: allocations of one rad_flow_fit call", c->title);
  printf("%-60s %10lu (setup and teardown, %ld steps)\n", label, a1 - a0, steps);
  snprintf(name, sizeof name, "mem.allocs_per_fit_call.%s", c->tag);
  put1(name, (double)(a1 - a0), "allocs");

  /* the *_ws entry points and the plain calls, per call */
  const size_t n = 10000;
  float *out = xmalloc(n * d * sizeof(float));
  float *grad = xmalloc(np * sizeof(float));
  rad_workspace *ws;
  CHECK(rad_workspace_create(F, 4096, &ws));
  double mean;
  struct {
    const char *what;
    int op;
  } calls[] = {{"rad_flow_grad_ws (n=500)", 0},   {"rad_flow_log_prob_ws (n=1e4)", 1},
               {"rad_flow_sample_ws (n=1e4)", 2}, {"rad_flow_grad (n=500)", 3},
               {"rad_flow_log_prob (n=1e4)", 4},  {"rad_flow_sample (n=1e4)", 5}};
  static const char *const opname[] = {"grad_ws", "log_prob_ws", "sample_ws",
                                       "grad",    "log_prob",    "sample"};
  for (size_t k = 0; k < sizeof calls / sizeof calls[0]; k++) {
    unsigned long before = 0;
    const int reps = 5;
    for (int r = 0; r <= reps; r++) {
      if (r == 1) { /* the first call is a warm-up */
        before = alloc_count();
        trace_begin();
      }
      switch (calls[k].op) {
      case 0: CHECK(rad_flow_grad_ws(F, ws, 500, train, grad, &mean)); break;
      case 1: CHECK(rad_flow_log_prob_ws(F, ws, n, train, out)); break;
      case 2: CHECK(rad_flow_sample_ws(F, ws, 5, n, out, NULL, NULL)); break;
      case 3: CHECK(rad_flow_grad(F, 500, train, grad, &mean)); break;
      case 4: CHECK(rad_flow_log_prob(F, n, train, out)); break;
      default: CHECK(rad_flow_sample(F, 5, n, out, NULL, NULL)); break;
      }
    }
    trace_end();
    double per = (double)(alloc_count() - before) / reps;
    snprintf(label, sizeof label, "%s: allocations per %s", c->title, calls[k].what);
    printf("%-60s %10.4g%s\n", label, per,
           calls[k].op < 3 && per != 0.0 ? "  <-- NOT ZERO for a *_ws call, made by:" : "");
    if (calls[k].op < 3 && per != 0.0) trace_report("      ");
    snprintf(name, sizeof name, "mem.allocs_per_call.%s.%s", opname[k], c->tag);
    put1(name, per, "allocs/call");
  }
  rad_workspace_free(ws);
  free(out);
  free(grad);
  rad_flow_free(F);
}

/* --mem-probe KIND D L H G: a fresh process trains one flow (batch 500,
   10,000 points) and prints its peak RSS before and after. */
static int mem_probe_main(int argc, char **argv) {
  if (argc < 7) return 2;
  cfg c = {"probe", "probe", atoi(argv[2]), (size_t)atol(argv[3]), (size_t)atol(argv[4]),
           (size_t)atol(argv[5]), (size_t)atol(argv[6])};
  float *x = c.d == 2 ? moons(N_TRAIN, SEED_DATA) : gaussian(N_TRAIN, c.d, SEED_DATA);
  long before = maxrss_kib();
  rad_flow *F = make_flow(&c, SEED_INIT);
  fit_ctx fc;
  fit_ctx_init(&fc, F, 500, N_TRAIN, x, 1);
  CHECK(work_fit(&fc, argc > 7 ? atol(argv[7]) : 20));
  long after = maxrss_kib();
  rad_workspace *ws;
  CHECK(rad_workspace_create(F, 500, &ws));
  printf("%ld %ld %zu\n", before, after, rad_workspace_size(ws));
  rad_workspace_free(ws);
  fit_ctx_free(&fc);
  rad_flow_free(F);
  free(x);
  return 0;
}

static void bench_peak_rss(const cfg *c, const char *self) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "'%s' --mem-probe %d %zu %zu %zu %zu %d", self, c->kind, c->d,
           c->layers, c->hidden, c->gate, G.quick ? 10 : 30);
  FILE *p = popen(cmd, "r");
  long before = -1, after = -1;
  size_t wsb = 0;
  if (!p || fscanf(p, "%ld %ld %zu", &before, &after, &wsb) != 3) {
    printf("  %s: memory probe failed\n", c->title);
    if (p) pclose(p);
    return;
  }
  pclose(p);
  char label[160], name[128];
  snprintf(label, sizeof label, "%s: peak RSS of a training process", c->title);
  printf("%-60s %8ld KiB (+%ld KiB from creating the flow and fitting; its "
         "workspace(500) is %.1f KiB)\n",
         label, after, after - before, (double)wsb / 1024.0);
  snprintf(name, sizeof name, "mem.peak_rss_train.%s", c->tag);
  put1(name, (double)after, "KiB");
  snprintf(name, sizeof name, "mem.rss_growth_train.%s", c->tag);
  put1(name, (double)(after - before), "KiB");
  snprintf(name, sizeof name, "mem.workspace_b500.%s", c->tag);
  put1(name, (double)wsb, "bytes");
}

/* ======================================================================
 * Section: scaling with batch size and depth
 * ====================================================================== */
static double bench_step_time(const cfg *c, size_t B, const float *train, stat *rate) {
  rad_flow *F = make_flow(c, SEED_INIT);
  fit_ctx fc;
  fit_ctx_init(&fc, F, B, N_TRAIN, train, 5);
  *rate = measure("rad_flow_fit", work_fit, &fc, 20, 10, 1.0);
  fit_ctx_free(&fc);
  rad_flow_free(F);
  return 1e6 / rate->med;
}

/* Least squares t = a + b x over the medians. */
static void linfit(const double *x, const double *y, int n, double *a, double *b) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int i = 0; i < n; i++) {
    sx += x[i];
    sy += y[i];
    sxx += x[i] * x[i];
    sxy += x[i] * y[i];
  }
  double den = n * sxx - sx * sx;
  *b = den != 0.0 ? (n * sxy - sx * sy) / den : 0.0;
  *a = (sy - *b * sx) / n;
}

static void bench_scaling(const float *train) {
  static const size_t batches[] = {125, 250, 500, 1000, 2000};
  static const size_t depths[] = {2, 4, 6, 8, 12};
  const cfg *models[2] = {&PAPER_RAD, &PAPER_NVP};
  char name[128];
  for (int axis = 0; axis < 2; axis++) {
    printf("\n%s (%s)\n", axis == 0 ? "Batch size (6 layers)" : "Layers (batch 500)",
           "time per training step by rad_flow_fit; median [min, max]");
    printf("%8s", axis == 0 ? "batch" : "layers");
    for (int mi = 0; mi < 2; mi++)
      printf(" | %-13s %9s %17s %13s %4s", mi == 0 ? "RAD H=8 G=8" : "REAL NVP H=56", "us/step",
             "[min, max]", "ns/sample-lyr", "cpu");
    putchar('\n');
    double xs[5], ys[2][5];
    for (int i = 0; i < 5; i++) {
      size_t B = axis == 0 ? batches[i] : 500;
      size_t L = axis == 0 ? 6 : depths[i];
      xs[i] = (double)(axis == 0 ? B : L);
      printf("%8zu", axis == 0 ? B : L);
      for (int mi = 0; mi < 2; mi++) {
        cfg c = *models[mi];
        c.layers = L;
        stat r;
        double us = bench_step_time(&c, B, train, &r);
        double per = 1e3 * us / ((double)B * (double)L);
        ys[mi][i] = us;
        printf(" | %-13s %9.2f [%7.2f, %7.2f] %13.2f %3.0f%%", "", us, 1e6 / r.hi, 1e6 / r.lo,
               per, 100.0 * r.cpu);
        snprintf(name, sizeof name, "scale.%s.%s.%s%zu.us_per_step",
                 axis == 0 ? "batch" : "layers", c.kind == RAD_LAYER_RAD ? "rad" : "realnvp",
                 axis == 0 ? "b" : "l", axis == 0 ? B : L);
        put(name, us, "us/step", 1e6 / r.hi, 1e6 / r.lo, r.reps, r.cpu);
        snprintf(name, sizeof name, "scale.%s.%s.%s%zu.ns_per_sample_layer",
                 axis == 0 ? "batch" : "layers", c.kind == RAD_LAYER_RAD ? "rad" : "realnvp",
                 axis == 0 ? "b" : "l", axis == 0 ? B : L);
        put1(name, per, "ns");
      }
      putchar('\n');
      fflush(stdout);
    }
    for (int mi = 0; mi < 2; mi++) {
      double a, b;
      linfit(xs, ys[mi], 5, &a, &b);
      printf("  %s: least squares t(step) = %.2f us + %.4f us x %s\n",
             mi == 0 ? "RAD     " : "REAL NVP", a, b, axis == 0 ? "batch" : "layers");
      snprintf(name, sizeof name, "scale.%s.%s.fit_intercept", axis == 0 ? "batch" : "layers",
               mi == 0 ? "rad" : "realnvp");
      put1(name, a, "us");
      snprintf(name, sizeof name, "scale.%s.%s.fit_slope", axis == 0 ? "batch" : "layers",
               mi == 0 ? "rad" : "realnvp");
      put1(name, b, axis == 0 ? "us/sample" : "us/layer");
    }
  }
}

/* ======================================================================
 * Section: two trainings at once (threads, and processes as a control)
 * ====================================================================== */
typedef struct thread_job {
  fit_ctx fc;
  long steps;
  int rc;
} thread_job;

static void *thread_main(void *arg) {
  thread_job *j = arg;
  j->rc = work_fit(&j->fc, j->steps);
  return NULL;
}

/* Both jobs at once, on two threads (procs = 0) or in two forked
   processes (procs = 1); returns the wall time, *cpu the CPU time used. */
static double run_pair(thread_job *jobs, long steps, int procs, double *cpu) {
  double t0 = now(), c0 = procs ? cpu_children() : cpu_now();
  if (!procs) {
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
      jobs[t].steps = steps;
      if (pthread_create(&th[t], NULL, thread_main, &jobs[t]) != 0)
        die("pthread_create failed%s", "", 0);
    }
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    for (int k = 0; k < 2; k++)
      if (jobs[k].rc) die("rad_flow_fit in a thread failed%s", "", jobs[k].rc);
  } else {
    pid_t pid[2];
    fflush(stdout);
    for (int t = 0; t < 2; t++) {
      pid[t] = fork();
      if (pid[t] < 0) die("fork failed%s", "", 0);
      if (pid[t] == 0) _exit(work_fit(&jobs[t].fc, steps) == RAD_OK ? 0 : 1);
    }
    for (int t = 0; t < 2; t++) {
      int st = 0;
      if (waitpid(pid[t], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("rad_flow_fit in a child process failed%s", "", 0);
    }
  }
  double t = now() - t0;
  *cpu = (procs ? cpu_children() : cpu_now()) - c0;
  return t;
}

/* In every repetition, in turn: one training alone; one training whose
   batch the library splits across two threads (RAD_OPTION_THREADS = 2 on
   the fit); two trainings on two threads; two in two processes. */
static void bench_pair(const cfg *c, const float *train) {
  thread_job jobs[2];
  rad_flow *F[2];
  for (int t = 0; t < 2; t++) {
    F[t] = make_flow(c, SEED_INIT + (uint64_t)t);
    fit_ctx_init(&jobs[t].fc, F[t], 500, N_TRAIN, train, 100 + (uint64_t)t);
  }
  rad_flow *Fs = make_flow(c, SEED_INIT + 2);
  fit_ctx split;
  fit_ctx_init(&split, Fs, 500, N_TRAIN, train, 102);
  CHECK(rad_fit_options_set(split.opts, RAD_OPTION_THREADS, 2.0));
  const long steps = G.fit_steps / 2, warm = steps / 4 > 0 ? steps / 4 : 1;
  double rate[4][64], share[4][64], cpu, t, c0;
  CHECK(work_fit(&jobs[0].fc, warm)); /* warm-ups */
  CHECK(work_fit(&split, warm));
  (void)run_pair(jobs, warm, 0, &cpu);
  (void)run_pair(jobs, warm, 1, &cpu);
  for (int r = 0; r < G.reps; r++) {
    for (int k = 0; k < 2; k++) {
      c0 = cpu_now();
      t = now();
      CHECK(work_fit(k == 0 ? &jobs[0].fc : &split, steps));
      t = now() - t;
      rate[k][r] = (double)steps / t;
      share[k][r] = (cpu_now() - c0) / t;
    }
    for (int procs = 0; procs < 2; procs++) {
      t = run_pair(jobs, steps, procs, &cpu);
      rate[2 + procs][r] = 2.0 * (double)steps / t;
      share[2 + procs][r] = cpu / t;
    }
  }
  static const char *const what[4] = {"1 fit, 1 thread", "1 fit, THREADS=2",
                                      "2 fits, 2 threads", "2 fits, 2 processes"};
  static const char *const key[4] = {"threads1", "fit_threads2", "threads2", "procs2"};
  double single = 0.0;
  for (int k = 0; k < 4; k++) {
    stat s = stat_of(rate[k], G.reps);
    s.iters = steps;
    s.cpu = stat_of(share[k], G.reps).med;
    char label[128], name[128];
    snprintf(label, sizeof label, "%s: %s", c->title, what[k]);
    snprintf(name, sizeof name, "%s.fit.%s", key[k], c->tag);
    row(label, name, s, "steps/s", 0.0, 0.0);
    if (k == 0) {
      single = s.med;
    } else {
      printf("%-48s %10.3f x one thread (2.0 = perfect scaling)\n", "  speed-up",
             s.med / single);
      snprintf(name, sizeof name, "%s.speedup.%s", key[k], c->tag);
      put1(name, s.med / single, "x");
    }
  }
  fit_ctx_free(&split);
  rad_flow_free(Fs);
  for (int t2 = 0; t2 < 2; t2++) {
    fit_ctx_free(&jobs[t2].fc);
    rad_flow_free(F[t2]);
  }
}

/* log_prob_ws on 1e5 points with a workspace of 1 and of 2 threads. */
static void bench_eval_threads(const cfg *c, const float *train) {
  rad_flow *F = paper_flow(c, train, 200);
  const size_t n = G.quick ? 20000 : 100000;
  float *x = moons(n, SEED_DATA + 1), *out = xmalloc(n * sizeof(float));
  rad_workspace *ws[2];
  eval_ctx ec[2];
  job jobs[2];
  for (int k = 0; k < 2; k++) {
    CHECK(rad_workspace_create(F, 4096, &ws[k]));
    CHECK(rad_workspace_set_option(ws[k], RAD_OPTION_THREADS, (double)(k + 1)));
    eval_ctx e = {F, ws[k], n, x, out, 0};
    ec[k] = e;
    job j = {"log_prob_ws", work_log_prob, &ec[k], 1, 1, (double)n};
    jobs[k] = j;
  }
  stat st[2];
  measure_n(jobs, 2, st, NULL);
  for (int k = 0; k < 2; k++) {
    char label[128], name[128];
    snprintf(label, sizeof label, "%s: log_prob_ws n=%zu, THREADS=%d", c->title, n, k + 1);
    snprintf(name, sizeof name, "ws_threads%d.log_prob_ws.%s.n%zu", k + 1, c->tag, n);
    row(label, name, st[k], "points/s", lp_dense(c), lp_total(c));
    rad_workspace_free(ws[k]);
  }
  printf("%-48s %10.3f x one thread\n", "  speed-up", st[1].med / st[0].med);
  char name[128];
  snprintf(name, sizeof name, "ws_threads2.speedup.log_prob_ws.%s", c->tag);
  put1(name, st[1].med / st[0].med, "x");
  free(x);
  free(out);
  rad_flow_free(F);
}

/* ======================================================================
 * main
 * ====================================================================== */
static void usage(FILE *f) {
  fprintf(f,
          "usage: " PROG " [--quick] [--compare] [--reps N] [--only SECTIONS]\n"
          "  --quick      fewer repetitions and smaller batches (CI; ~30 s)\n"
          "  --compare    only the figures bench/torch_ref.py compares with PyTorch\n"
          "  --reps N     timed repetitions per figure (default 5; 3 with --quick)\n"
          "  --only LIST  comma list of: train,eval,large,memory,scaling,threads\n"
          "Run with OPENBLAS_NUM_THREADS=1 for single-thread figures (make bench does).\n");
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "--mem-probe") == 0) return mem_probe_main(argc, argv);
  G.reps = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      G.quick = 1;
    else if (strcmp(argv[i], "--compare") == 0)
      G.compare = 1;
    else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
      G.reps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
      G.only = argv[++i];
    else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (G.reps <= 0) G.reps = G.quick ? 3 : 5;
  if (G.reps > 64) G.reps = 64;
  G.target = G.quick ? 0.04 : 0.2;
  G.fit_steps = G.quick ? 300 : 2000;

  /* ---- the machine and the build ---- */
  read_machine();
  char obcfg[256], obcore[64];
  int obthreads;
  openblas_info(obcfg, sizeof obcfg, obcore, sizeof obcore, &obthreads);
  const char *env_threads = getenv("OPENBLAS_NUM_THREADS");
  printf(PROG ": librad %s (header %s)%s\n", rad_version_string(), RAD_VERSION_STRING,
         rad_version() == RAD_VERSION_NUMBER ? "" : "  WARNING: header/library mismatch");
  printf("compiler:  %s (this program; the library is built by the same make)\n", compiler());
  printf("cpu:       %s (%s family %d model %d), %ld online cpus\n", M.model, M.vendor,
         M.family, M.model_no, sysconf(_SC_NPROCESSORS_ONLN));
  printf("clock:     %.0f MHz, from %s\n", M.mhz, M.mhz_src);
  printf("simd:      avx2 %s, fma %s, avx512f %s\n", M.avx2 ? "yes" : "no",
         M.fma ? "yes" : "no", M.avx512f ? "yes" : "no");
  printf("peak:      %.1f GFLOP/s per core = 2 FMA units x %d floats x 2 flops x %.2f GHz",
         M.peak, M.lanes_eff, M.mhz / 1000.0);
  if (M.lanes_eff != M.lanes_flags)
    printf("\n           (the AVX-512 flag alone would give %.1f; AMD family 19h runs a\n"
           "           512-bit FMA as two 256-bit halves, so %% of peak uses %.1f)",
           M.peak_flags, M.peak);
  printf("\nopenblas:  %s; core %s; %d thread(s); OPENBLAS_NUM_THREADS=%s\n", obcfg, obcore,
         obthreads, env_threads ? env_threads : "(unset)");
  if (!env_threads || strcmp(env_threads, "1") != 0)
    printf("WARNING: OPENBLAS_NUM_THREADS is not 1: figures are not single-thread "
           "(run `make bench`, or set it)\n");
  printf("settings:  %s, %d repetitions after a warm-up, >= %.2f s each; median [min, max]\n",
         G.quick ? "quick" : (G.compare ? "compare" : "full"), G.reps, G.target);
  double load = -1.0;
  FILE *lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (fscanf(lf, "%lf", &load) != 1) load = -1.0;
    fclose(lf);
  }
  printf("load:      %.2f (1-minute load average before starting)%s\n", load,
         load > 0.5 ? ": other processes are running, figures will be lower and noisier; "
                      "the cpu column shows the share of a core each figure got"
                    : "");
  put1("sys.loadavg_1min", load, "load");
  put1("sys.peak_gflops_1core", M.peak, "GFLOP/s");
  put1("sys.peak_gflops_1core_flags", M.peak_flags, "GFLOP/s");
  put1("sys.clock_mhz", M.mhz, "MHz");
  put1("sys.openblas_threads", (double)obthreads, "threads");
  double t_start = now();

  float *train = moons(N_TRAIN, SEED_DATA);

  /* ---- compare mode: the figures torch_ref.py sets against PyTorch ---- */
  if (G.compare) {
    section("librad, paper configuration, 1 thread (for bench/torch_ref.py)");
    header("what");
    bench_train(&PAPER_RAD, train, 0);
    bench_train(&PAPER_NVP, train, 0);
    const cfg *models[2] = {&PAPER_RAD, &PAPER_NVP};
    const size_t ns[2] = {10000, 100000};
    float *x = moons(100000, SEED_DATA + 1), *out = xmalloc(100000 * sizeof(float));
    for (int mi = 0; mi < 2; mi++) {
      rad_flow *F = paper_flow(models[mi], train, 200);
      rad_workspace *ws;
      CHECK(rad_workspace_create(F, 4096, &ws));
      for (int k = 0; k < 2; k++) {
        bench_eval_one(models[mi], F, ws, 0, ns[k], x, out);
        bench_eval_one(models[mi], F, NULL, 0, ns[k], x, out);
      }
      rad_workspace_free(ws);
      rad_flow_free(F);
    }
    free(x);
    free(out);
    print_records();
    free(train);
    return 0;
  }

  /* ---- training, paper configuration ---- */
  if (want("train")) {
    section("Training, paper configuration: d=2, 6 layers, batch 500, 10,000 moons points");
    printf("flop counts from the architecture (* total = dense + elementwise estimate; see "
           "bench.c):\n");
    print_flop_model(&PAPER_RAD, 500);
    print_flop_model(&PAPER_NVP, 500);
    header("what");
    bench_train(&PAPER_RAD, train, 1);
    bench_train(&PAPER_NVP, train, 1);
  }

  /* ---- evaluation throughput ---- */
  if (want("eval")) {
    section("log_prob and sample throughput, paper flows (trained 200 steps), workspace "
            "max_batch 4096 (_ws) or plain call");
    const size_t nmax = G.quick ? 100000 : 1000000;
    float *x = moons(nmax, SEED_DATA + 1);
    float *out = xmalloc(nmax * 2 * sizeof(float));
    const cfg *models[2] = {&PAPER_RAD, &PAPER_NVP};
    header("what");
    for (int mi = 0; mi < 2; mi++) {
      rad_flow *F = paper_flow(models[mi], train, 200);
      rad_workspace *ws;
      CHECK(rad_workspace_create(F, 4096, &ws));
      for (int op = 0; op < 2; op++)
        for (size_t n = 10000; n <= nmax; n *= 10) {
          bench_eval_one(models[mi], F, ws, op, n, x, out);
          bench_eval_one(models[mi], F, NULL, op, n, x, out);
        }
      rad_workspace_free(ws);
      rad_flow_free(F);
    }
    free(x);
    free(out);
  }

  /* ---- larger flows ---- */
  if (want("large")) {
    section("Larger flows: 8 layers, 64 hidden units, batch 500 training, log_prob n=1e4 "
            "(workspace 4096)");
    static const size_t dims[2] = {16, 64};
    header("what");
    for (int di = 0; di < 2; di++) {
      const size_t d = dims[di];
      float *x = gaussian(N_TRAIN, d, SEED_DATA + d);
      float *out = xmalloc(N_TRAIN * sizeof(float));
      for (int mi = 0; mi < 2; mi++) {
        char tag[32], title[64];
        snprintf(tag, sizeof tag, "%s.d%zu", mi == 0 ? "rad" : "realnvp", d);
        snprintf(title, sizeof title, "%s d=%zu L=8 H=64%s", mi == 0 ? "RAD" : "REAL NVP", d,
                 mi == 0 ? " G=64" : "");
        cfg c = {tag, title, mi == 0 ? RAD_LAYER_RAD : RAD_LAYER_AFFINE, d, 8, 64,
                 mi == 0 ? 64 : 0};
        rad_flow *F = make_flow(&c, SEED_INIT);
        size_t np = rad_flow_num_params(F);
        fit_ctx fc;
        fit_ctx_init(&fc, F, 500, N_TRAIN, x, 9);
        stat s = measure("rad_flow_fit", work_fit, &fc, 5, 5, 1.0);
        char label[128], name[128];
        snprintf(label, sizeof label, "%s: rad_flow_fit", title);
        snprintf(name, sizeof name, "train.fit.%s", tag);
        row(label, name, s, "steps/s", train_dense(&c, 500), train_total(&c, 500, np));
        fit_ctx_free(&fc);
        rad_workspace *ws;
        CHECK(rad_workspace_create(F, 4096, &ws));
        bench_eval_one(&c, F, ws, 0, N_TRAIN, x, out);
        rad_workspace_free(ws);
        rad_flow_free(F);
      }
      free(x);
      free(out);
    }
  }

  /* ---- memory ---- */
  if (want("memory")) {
    section("Memory: heap allocations (counting malloc shim) and peak RSS");
    bench_allocs(&PAPER_RAD, train, N_TRAIN);
    bench_allocs(&PAPER_NVP, train, N_TRAIN);
    cfg big = {"rad.d64", "RAD d=64 L=8 H=64 G=64", RAD_LAYER_RAD, 64, 8, 64, 64};
    float *xg = gaussian(N_TRAIN, 64, SEED_DATA + 64);
    bench_allocs(&big, xg, N_TRAIN);
    free(xg);
    char self[1024];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
      self[len] = '\0';
      bench_peak_rss(&PAPER_RAD, self);
      bench_peak_rss(&PAPER_NVP, self);
      bench_peak_rss(&big, self);
    }
    rad_flow *F = make_flow(&big, SEED_INIT);
    rad_workspace *ws;
    CHECK(rad_workspace_create(F, 4096, &ws));
    printf("%-60s %8.1f MiB (sized for gradients at 4096 rows)\n",
           "RAD d=64 L=8 H=64 G=64: rad_workspace_create(flow, 4096)",
           (double)rad_workspace_size(ws) / 1048576.0);
    put1("mem.workspace_b4096.rad.d64", (double)rad_workspace_size(ws), "bytes");
    rad_workspace_free(ws);
    rad_flow_free(F);
  }

  /* ---- scaling ---- */
  if (want("scaling")) {
    section("Cost against batch size and depth (paper widths, d=2)");
    bench_scaling(train);
  }

  /* ---- threads ---- */
  if (want("threads")) {
    section("All cores: the library splitting one batch (RAD_OPTION_THREADS = 2), and two "
            "independent trainings at once");
    printf("cpu = CPU time / wall time: 200%% when two threads had a core each. Two\n"
           "processes are the control: they share nothing but the machine. The runs of a\n"
           "model take turns in every repetition.\n");
    header("what");
    bench_pair(&PAPER_RAD, train);
    bench_pair(&PAPER_NVP, train);
    bench_eval_threads(&PAPER_RAD, train);
    bench_eval_threads(&PAPER_NVP, train);
  }

  long rss = maxrss_kib();
  printf("\npeak RSS of this benchmark process: %ld KiB; wall time %.1f s\n", rss,
         now() - t_start);
  put1("mem.peak_rss_bench_process", (double)rss, "KiB");
  print_records();
  free(train);
  return 0;
}
