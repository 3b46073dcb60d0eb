/*
 * test_datasets.c: the paper's six 2-D problems (shared/docs/DATASETS.md).
 *
 *  - names, ids and the true log-likelihood table; bad input gives the
 *    documented codes and writes nothing;
 *  - counter-based determinism: the same seed gives the same bytes, point i
 *    does not depend on n, different seeds differ;
 *  - each definition, statistically, on 20,000 points with tolerances of
 *    Z standard errors: cluster counts and residuals of the mixtures; the
 *    spiral's normal residual and the law of q; the circles' radial
 *    moments and uniform angle; the mean and covariance of
 *    every problem against the exact ones; the noise level as the maximum
 *    of the exact likelihood;
 *  - the true mean log-likelihood (the negative entropy) recomputed as a
 *    Monte Carlo average of the exact log-density over 20,000 sampled
 *    points (mixtures exactly by logsumexp, curves by midpoint quadrature
 *    over the curve parameter), against rad_problem_true_log_likelihood.
 *
 * Every sample comes from a fixed seed, so the test is deterministic; Z = 5
 * makes a false alarm from an unlucky seed choice unlikely (p ~ 1e-6 per
 * check).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rad/rad.h>

#include "testutil.h"

#define PI 3.14159265358979323846
#define N_STAT 20000
#define Z 5.0 /* tolerance, in standard errors */
#define N_PROB 6
#define LL_TOL 0.03 /* nats, the brief's tolerance on the true log-likelihood */

static const char *const NAMES[N_PROB] = {"grid",    "ring",   "moons",
                                          "circles", "spiral", "many_moons"};
static const double NOISE[N_PROB] = {0.05, 0.01, 0.1, 0.1, 0.01, 0.05};

/* n points of problem p (caller frees). */
static float *draw(int p, uint64_t seed, size_t n) {
  float *x = malloc(2 * n * sizeof(float));
  ck_assert_ptr_nonnull(x);
  ck_assert_int_eq(rad_problem_sample(p, seed, n, x), RAD_OK);
  /* (one assertion per call: Check writes a record for every assertion) */
  size_t bad = 0;
  for (size_t i = 0; i < 2 * n; i++) bad += isfinite(x[i]) ? 0u : 1u;
  ck_assert_uint_eq(bad, 0);
  return x;
}

/* ---- the exact densities --------------------------------------------------
 * Every problem is p(x) = sum_j w_j N(x; c_j, s^2 I): the mixtures with
 * their centres, the curves with midpoint-quadrature nodes c_j = c(t_j) and
 * weights w_j = p(t_j) dt. The midpoint rule integrates a smooth Gaussian
 * bump of width s to near machine precision once the node spacing along the
 * curve is below s (the error decays like exp(-2 pi^2 s^2 / h^2)); q nodes
 * per curve below give spacings of 0.0031 (moons, circles: 0.03 s), 0.0024
 * (spiral: 0.24 s) and 0.0016 (many_moons: 0.03 s).
 *
 * Only nodes near the point matter: the nodes are bucketed into square
 * cells of side REACH s / 2, and a point's sum runs over the 5 x 5 cells
 * around it, which hold every node within REACH s. The nodes left out
 * weigh at most 1 - (the weights summed) and each contributes at most
 * exp(-REACH^2 s^2 / 2 s'^2) at noise s'; when that bound is not below
 * 1e-12 of the sum (or no node is near), the sum runs over all nodes. So
 * the result is that of the full sum to within 1e-12, only faster. */
#define REACH 9.0

typedef struct dens {
  size_t m;
  double *cx, *cy, *lw; /* node positions and log weights */
  double *w;            /* weights */
  double *v;            /* scratch, m */
  size_t *near;         /* scratch, m */
  double s;             /* the problem's noise std */
  double x0, y0, cell;  /* cell (a, b) holds x0 + [a, a+1) cell, ... */
  long nx, ny;
  size_t *start, *idx;  /* cell c holds nodes idx[start[c] .. start[c+1]-1] */
} dens;

static size_t default_nodes(int p) { return p == RAD_PROBLEM_SPIRAL ? 8000 : 1000; }

static void dens_init(dens *d, int p, size_t q) {
  size_t m;
  switch (p) {
  case RAD_PROBLEM_GRID: m = 25; break;
  case RAD_PROBLEM_RING: m = 8; break;
  case RAD_PROBLEM_MOONS:
  case RAD_PROBLEM_CIRCLES: m = 2 * q; break;
  case RAD_PROBLEM_SPIRAL: m = q; break;
  default: m = 6 * q; break;
  }
  d->m = m;
  d->s = NOISE[p - 1];
  d->cx = malloc(m * sizeof(double));
  d->cy = malloc(m * sizeof(double));
  d->lw = malloc(m * sizeof(double));
  d->v = malloc(m * sizeof(double));
  d->w = malloc(m * sizeof(double));
  d->near = malloc(m * sizeof(size_t));
  ck_assert(d->cx && d->cy && d->lw && d->v && d->w && d->near);
  for (size_t j = 0; j < m; j++) {
    double x, y, w;
    switch (p) {
    case RAD_PROBLEM_GRID:
      x = -4.0 + 2.0 * (double)(j / 5), y = -4.0 + 2.0 * (double)(j % 5), w = 1.0 / 25;
      break;
    case RAD_PROBLEM_RING:
      x = cos(2 * PI * (double)j / 8), y = sin(2 * PI * (double)j / 8), w = 1.0 / 8;
      break;
    case RAD_PROBLEM_MOONS: {
      double t = PI * ((double)(j % q) + 0.5) / (double)q;
      if (j < q)
        x = cos(t), y = sin(t);
      else
        x = 1 - cos(t), y = 0.5 - sin(t);
      w = 0.5 / (double)q;
      break;
    }
    case RAD_PROBLEM_CIRCLES: {
      double a = 2 * PI * ((double)(j % q) + 0.5) / (double)q, r = j < q ? 1.0 : 0.5;
      x = r * cos(a), y = r * sin(a), w = 0.5 / (double)q;
      break;
    }
    case RAD_PROBLEM_SPIRAL: {
      /* q ~ U(0,1), t = 3 pi sqrt(q): t has density 2 t / (3 pi)^2 on
         [0, 3 pi] (the midpoint rule integrates it exactly). */
      double dt = 3 * PI / (double)q, t = dt * ((double)j + 0.5);
      x = t / (1.5 * PI) * cos(t), y = t / (1.5 * PI) * sin(t);
      w = 2 * t / (9 * PI * PI) * dt;
      break;
    }
    default: {
      size_t i = j / q;
      double t = PI * ((double)(j % q) + 0.5) / (double)q, sg = (i % 2) ? -1.0 : 1.0;
      double px = (double)i + sg * cos(t), py = 0.5 * (double)(i % 2) + sg * sin(t);
      x = 0.5 * (px - 2.5), y = 0.5 * (py - 0.25), w = 1.0 / (6.0 * (double)q);
      break;
    }
    }
    d->cx[j] = x, d->cy[j] = y, d->lw[j] = log(w), d->w[j] = w;
  }
  /* the cell index */
  double x1 = -INFINITY, y1 = -INFINITY;
  d->x0 = d->y0 = INFINITY;
  for (size_t j = 0; j < m; j++) {
    d->x0 = fmin(d->x0, d->cx[j]), x1 = fmax(x1, d->cx[j]);
    d->y0 = fmin(d->y0, d->cy[j]), y1 = fmax(y1, d->cy[j]);
  }
  d->cell = REACH * d->s / 2;
  d->nx = (long)floor((x1 - d->x0) / d->cell) + 1;
  d->ny = (long)floor((y1 - d->y0) / d->cell) + 1;
  const size_t nc = (size_t)(d->nx * d->ny);
  d->start = calloc(nc + 1, sizeof(size_t));
  d->idx = malloc(m * sizeof(size_t));
  size_t *cj = malloc(m * sizeof(size_t));
  ck_assert(d->start && d->idx && cj);
  for (size_t j = 0; j < m; j++) {
    long a = (long)floor((d->cx[j] - d->x0) / d->cell);
    long b = (long)floor((d->cy[j] - d->y0) / d->cell);
    a = a < d->nx ? a : d->nx - 1, b = b < d->ny ? b : d->ny - 1;
    cj[j] = (size_t)(a * d->ny + b);
    d->start[cj[j] + 1]++;
  }
  for (size_t c = 0; c < nc; c++) d->start[c + 1] += d->start[c];
  size_t *fillp = malloc(nc * sizeof(size_t));
  ck_assert_ptr_nonnull(fillp);
  memcpy(fillp, d->start, nc * sizeof(size_t));
  for (size_t j = 0; j < m; j++) d->idx[fillp[cj[j]]++] = j;
  free(fillp), free(cj);
}

static void dens_free(dens *d) {
  free(d->cx), free(d->cy), free(d->lw), free(d->w);
  free(d->v), free(d->near), free(d->start), free(d->idx);
}

/* log sum_j w_j exp(-|x - c_j|^2 / 2 s^2) over the nodes idx[0..k-1] (all
   nodes when idx is NULL); *wsum gets the sum of their weights. */
static double lse(const dens *d, double s, double x, double y, const size_t *idx, size_t k,
                  double *wsum) {
  const double h = 0.5 / (s * s);
  double vmax = -INFINITY, ws = 0;
  for (size_t i = 0; i < k; i++) {
    size_t j = idx ? idx[i] : i;
    double dx = x - d->cx[j], dy = y - d->cy[j];
    double v = d->lw[j] - h * (dx * dx + dy * dy);
    d->v[i] = v;
    vmax = v > vmax ? v : vmax;
    ws += d->w[j];
  }
  double sum = 0;
  for (size_t i = 0; i < k; i++)
    if (d->v[i] > vmax - 30) sum += exp(d->v[i] - vmax); /* others: < 1e-13 each */
  if (wsum) *wsum = ws;
  return vmax + log(sum);
}

/* log p(x, y) with noise std s. */
static double dens_logp(const dens *d, double s, double x, double y) {
  const double norm = log(2 * PI * s * s);
  double fa = floor((x - d->x0) / d->cell), fb = floor((y - d->y0) / d->cell);
  if (fa >= -2 && fa <= (double)d->nx + 1 && fb >= -2 && fb <= (double)d->ny + 1) {
    long a = (long)fa, b = (long)fb;
    size_t *near = d->near, k = 0;
    for (long ca = (a > 2 ? a - 2 : 0); ca <= a + 2 && ca < d->nx; ca++)
      for (long cb = (b > 2 ? b - 2 : 0); cb <= b + 2 && cb < d->ny; cb++) {
        size_t c = (size_t)(ca * d->ny + cb);
        for (size_t t = d->start[c]; t < d->start[c + 1]; t++) near[k++] = d->idx[t];
      }
    if (k > 0) {
      double wnear, l = lse(d, s, x, y, near, k, &wnear);
      double r = REACH * d->s, far = log(fmax(1 - wnear, 1e-300)) - r * r / (2 * s * s);
      if (far - l < log(1e-12)) return l - norm;
    }
  }
  return lse(d, s, x, y, NULL, d->m, NULL) - norm;
}

/* Mean log-density over n points, with its standard error. */
static double dens_mean_logp(const dens *d, double s, const float *x, size_t n,
                             double *se) {
  double sum = 0, sum2 = 0;
  for (size_t i = 0; i < n; i++) {
    double l = dens_logp(d, s, x[2 * i], x[2 * i + 1]);
    sum += l, sum2 += l * l;
  }
  double mean = sum / (double)n;
  if (se) *se = sqrt((sum2 / (double)n - mean * mean) / (double)(n - 1));
  return mean;
}

/* ---- names, ids, table ----------------------------------------------------- */
START_TEST(test_names) {
  ck_assert_int_eq(rad_problem_count(), N_PROB);
  const int ids[N_PROB] = {RAD_PROBLEM_GRID,    RAD_PROBLEM_RING,   RAD_PROBLEM_MOONS,
                           RAD_PROBLEM_CIRCLES, RAD_PROBLEM_SPIRAL, RAD_PROBLEM_MANY_MOONS};
  for (int p = 1; p <= rad_problem_count(); p++) {
    ck_assert_int_eq(ids[p - 1], p);
    const char *name = rad_problem_name(p);
    ck_assert_ptr_nonnull(name);
    ck_assert_str_eq(name, NAMES[p - 1]);
    ck_assert_int_eq(rad_problem_from_name(name), p);
    char copy[32]; /* not the library's pointer: compared by content */
    snprintf(copy, sizeof copy, "%s", NAMES[p - 1]);
    ck_assert_int_eq(rad_problem_from_name(copy), p);
  }
  const int bad_ids[] = {0, -1, 7, 100, INT_MIN, INT_MAX};
  for (size_t b = 0; b < sizeof bad_ids / sizeof bad_ids[0]; b++)
    ck_assert_ptr_null(rad_problem_name(bad_ids[b]));
  const char *bad_names[] = {"", "Grid", "GRID", "grid ", " grid", "gri", "grids",
                             "many-moons", "manymoons", "moon", "circle"};
  for (size_t b = 0; b < sizeof bad_names / sizeof bad_names[0]; b++)
    ck_assert_int_eq(rad_problem_from_name(bad_names[b]), RAD_EINVAL);
  ck_assert_int_eq(rad_problem_from_name(NULL), RAD_EINVAL);
}
END_TEST

START_TEST(test_true_ll_table) {
  const double table[N_PROB] = {-0.06, 4.29, -1.01, -1.27, 0.92, -0.58};
  for (int p = 1; p <= N_PROB; p++)
    ck_assert(rad_problem_true_log_likelihood(p) == table[p - 1]);
  const int bad_ids[] = {0, -1, 7, INT_MIN, INT_MAX};
  for (size_t b = 0; b < sizeof bad_ids / sizeof bad_ids[0]; b++)
    ck_assert(isnan(rad_problem_true_log_likelihood(bad_ids[b])));
}
END_TEST

/* ---- bad input ------------------------------------------------------------- */
#define SENTINEL 12345.0f

static void fill(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = SENTINEL;
}
static void assert_untouched(const float *x, size_t n) {
  size_t changed = 0;
  for (size_t i = 0; i < n; i++) changed += x[i] != SENTINEL;
  ck_assert_uint_eq(changed, 0);
}

START_TEST(test_bad_input) {
  float x[16];
  const int bad_ids[] = {0, -1, 7, INT_MIN, INT_MAX};
  for (size_t b = 0; b < sizeof bad_ids / sizeof bad_ids[0]; b++) {
    fill(x, 16);
    ck_assert_int_eq(rad_problem_sample(bad_ids[b], 1, 8, x), RAD_EINVAL);
    ck_assert_int_eq(rad_problem_sample(bad_ids[b], 1, 0, x), RAD_EINVAL);
    ck_assert_int_eq(rad_problem_sample(bad_ids[b], 1, 8, NULL), RAD_EINVAL);
    assert_untouched(x, 16);
  }
  const size_t too_big[] = {SIZE_MAX / (2 * sizeof(float)) + 1, SIZE_MAX / 2 + 1, SIZE_MAX};
  for (int p = 1; p <= N_PROB; p++) {
    fill(x, 16);
    ck_assert_int_eq(rad_problem_sample(p, 1, 8, NULL), RAD_EINVAL);
    ck_assert_int_eq(rad_problem_sample(p, 1, 1, NULL), RAD_EINVAL);
    ck_assert_int_eq(rad_problem_sample(p, 1, 0, NULL), RAD_OK);
    ck_assert_int_eq(rad_problem_sample(p, 1, 0, x), RAD_OK);
    assert_untouched(x, 16);
    for (size_t b = 0; b < sizeof too_big / sizeof too_big[0]; b++) {
      ck_assert_int_eq(rad_problem_sample(p, 1, too_big[b], x), RAD_ETOOBIG);
      ck_assert_int_eq(rad_problem_sample(p, 1, too_big[b], NULL), RAD_EINVAL);
    }
    assert_untouched(x, 16);
    /* a success writes exactly n points */
    ck_assert_int_eq(rad_problem_sample(p, 1, 3, x), RAD_OK);
    for (size_t i = 0; i < 6; i++) ck_assert(x[i] != SENTINEL && isfinite(x[i]));
    assert_untouched(x + 6, 10);
  }
}
END_TEST

/* ---- determinism ----------------------------------------------------------- */
START_TEST(test_determinism) {
  const int p = _i;
  const size_t n = 1000;
  const uint64_t seed = 0x0123456789abcdefULL;
  float *a = draw(p, seed, n), *b = draw(p, seed, n), *c = draw(p, seed, 10);
  ck_assert(memcmp(a, b, 2 * n * sizeof(float)) == 0);
  /* point i depends only on (seed, i), not on n */
  ck_assert(memcmp(a, c, 2 * 10 * sizeof(float)) == 0);
  float *d = draw(p, seed, 1);
  ck_assert(memcmp(a, d, 2 * sizeof(float)) == 0);
  /* other seeds, including ones that differ only in the high 32 bits, give
     other points */
  const uint64_t others[] = {seed + 1, seed ^ (1ULL << 40), 0, UINT64_MAX};
  for (size_t o = 0; o < sizeof others / sizeof others[0]; o++) {
    float *e = draw(p, others[o], n);
    size_t same = 0;
    for (size_t i = 0; i < n; i++) same += a[2 * i] == e[2 * i] && a[2 * i + 1] == e[2 * i + 1];
    ck_assert_msg(same == 0, "%s: %zu of %zu points equal under another seed", NAMES[p - 1],
                  same, n);
    free(e);
  }
  /* the points within a call are not repeated either */
  size_t rep = 0;
  for (size_t i = 1; i < n; i++) rep += a[2 * i] == a[0] && a[2 * i + 1] == a[1];
  ck_assert_uint_eq(rep, 0);
  free(a), free(b), free(c), free(d);
}
END_TEST

/* ---- statistics ------------------------------------------------------------
 * |est - expect| <= Z se, with a note of the values on failure. */
static void near(const char *what, double est, double expect, double se) {
  ck_assert_msg(fabs(est - expect) <= Z * se, "%s: %.6f, expected %.6f (se %.2g, %.1f se off)",
                what, est, expect, se, fabs(est - expect) / se);
}

/* Mean and standard error of v[0..n-1]. */
static double mean_se(const double *v, size_t n, double *se) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  double m = s / (double)n;
  for (size_t i = 0; i < n; i++) s2 += (v[i] - m) * (v[i] - m);
  *se = sqrt(s2 / (double)(n - 1) / (double)n);
  return m;
}

/* Residuals of a mixture of K Gaussians of std s: every point's nearest
   centre, the counts per centre (each within Z se, and chi^2 within
   Z sd of its degrees of freedom), the residuals' means, stds and
   correlation. All points must lie within 7 s of their centre
   (P ~ 2e-11 per point). */
static void check_mixture(const char *name, const float *x, size_t n, const dens *d) {
  const size_t K = d->m;
  const double s = d->s;
  size_t count[32] = {0};
  double *ex = malloc(n * sizeof(double)), *ey = malloc(n * sizeof(double));
  double *exy = malloc(n * sizeof(double));
  ck_assert(K <= 32 && ex && ey && exy);
  double worst = 0;
  for (size_t i = 0; i < n; i++) {
    size_t best = 0;
    double bd = INFINITY;
    for (size_t k = 0; k < K; k++) {
      double dx = x[2 * i] - d->cx[k], dy = x[2 * i + 1] - d->cy[k];
      if (dx * dx + dy * dy < bd) bd = dx * dx + dy * dy, best = k;
    }
    worst = fmax(worst, sqrt(bd));
    count[best]++;
    ex[i] = x[2 * i] - d->cx[best], ey[i] = x[2 * i + 1] - d->cy[best];
    exy[i] = ex[i] * ey[i] / (s * s);
  }
  ck_assert_msg(worst < 7 * s, "%s: a point is %.4f from the nearest centre", name, worst);
  const double pk = 1.0 / (double)K, cse = sqrt((double)n * pk * (1 - pk));
  double chi2 = 0;
  for (size_t k = 0; k < K; k++) {
    near("cluster count", (double)count[k], (double)n * pk, cse);
    chi2 += ((double)count[k] - (double)n * pk) * ((double)count[k] - (double)n * pk) /
            ((double)n * pk);
  }
  const double df = (double)(K - 1);
  ck_assert_msg(chi2 <= df + Z * sqrt(2 * df), "%s: chi^2 %.1f with %g dof", name, chi2, df);
  double se, mx = mean_se(ex, n, &se);
  near("residual mean x", mx, 0, s / sqrt((double)n));
  double my = mean_se(ey, n, &se);
  near("residual mean y", my, 0, s / sqrt((double)n));
  double vx = 0, vy = 0;
  for (size_t i = 0; i < n; i++) vx += ex[i] * ex[i], vy += ey[i] * ey[i];
  double sx = sqrt(vx / (double)n), sy = sqrt(vy / (double)n);
  /* the std of a normal sample has standard error s / sqrt(2 n) */
  near("residual std x", sx, s, s / sqrt(2.0 * (double)n));
  near("residual std y", sy, s, s / sqrt(2.0 * (double)n));
  double r = mean_se(exy, n, &se);
  near("residual correlation", r, 0, 1 / sqrt((double)n));
  printf("%-10s %zu clusters, chi^2 %.1f (%g dof), residual std %.5f %.5f (s = %g)\n", name, K,
         chi2, df, sx, sy, s);
  free(ex), free(ey), free(exy);
}

START_TEST(test_grid) {
  dens d;
  dens_init(&d, RAD_PROBLEM_GRID, 0);
  float *x = draw(RAD_PROBLEM_GRID, 101, N_STAT);
  check_mixture("grid", x, N_STAT, &d);
  free(x);
  dens_free(&d);
}
END_TEST

START_TEST(test_ring) {
  dens d;
  dens_init(&d, RAD_PROBLEM_RING, 0);
  float *x = draw(RAD_PROBLEM_RING, 102, N_STAT);
  check_mixture("ring", x, N_STAT, &d);
  /* radii ~ 1 with std s (the radial residual; curvature bias s^2 / 2) */
  double *r = malloc(N_STAT * sizeof(double)), se;
  for (size_t i = 0; i < N_STAT; i++) r[i] = hypot(x[2 * i], x[2 * i + 1]) - 1.0;
  near("ring radius - 1", mean_se(r, N_STAT, &se), 0, 0.01 / sqrt((double)N_STAT));
  free(r);
  free(x);
  dens_free(&d);
}
END_TEST

/* Kolmogorov-Smirnov distance of v (sorted in place) from U(0, 1). */
static int cmp_double(const void *a, const void *b) {
  double u = *(const double *)a, v = *(const double *)b;
  return (u > v) - (u < v);
}
static double ks_uniform(double *v, size_t n) {
  qsort(v, n, sizeof(double), cmp_double);
  double dmax = 0;
  for (size_t i = 0; i < n; i++) {
    double lo = v[i] - (double)i / (double)n, hi = (double)(i + 1) / (double)n - v[i];
    dmax = fmax(dmax, fmax(lo, hi));
  }
  return dmax;
}
/* KS critical value at p = 1e-4 (sqrt(-log(p/2) / 2) / sqrt(n)). */
static double ks_limit(size_t n) { return sqrt(-0.5 * log(0.5e-4)) / sqrt((double)n); }

START_TEST(test_circles) {
  /* The distribution is rotation invariant: the angle of x is U(0, 2 pi). */
  float *x = draw(RAD_PROBLEM_CIRCLES, 103, N_STAT);
  double *a = malloc(N_STAT * sizeof(double)), *r2 = malloc(N_STAT * sizeof(double));
  double *r4 = malloc(N_STAT * sizeof(double));
  for (size_t i = 0; i < N_STAT; i++) {
    a[i] = atan2(x[2 * i + 1], x[2 * i]) / (2 * PI) + 0.5;
    r2[i] = (double)x[2 * i] * x[2 * i] + (double)x[2 * i + 1] * x[2 * i + 1];
    r4[i] = r2[i] * r2[i];
  }
  /* the radii: for x = R u + e, E|x|^2 = R^2 + 2 s^2 and
     E|x|^4 = R^4 + 8 R^2 s^2 + 8 s^4, averaged over R = 1, 0.5 */
  const double s2 = 0.01;
  double se2, m2 = mean_se(r2, N_STAT, &se2), se4, m4 = mean_se(r4, N_STAT, &se4);
  near("circles E|x|^2", m2, 0.625 + 2 * s2, se2);
  near("circles E|x|^4", m4, 0.53125 + 8 * 0.625 * s2 + 8 * s2 * s2, se4);
  double ks = ks_uniform(a, N_STAT);
  printf("circles    E|x|^2 %.4f (%.4f), E|x|^4 %.4f (%.4f); KS distance of the angle from "
         "uniform %.4f (limit %.4f)\n",
         m2, 0.625 + 2 * s2, m4, 0.53125 + 8 * 0.625 * s2 + 8 * s2 * s2, ks, ks_limit(N_STAT));
  ck_assert(ks < ks_limit(N_STAT));
  free(a), free(r2), free(r4), free(x);
}
END_TEST

START_TEST(test_spiral_curve) {
  /* The arm is the Archimedean spiral rho = theta / (1.5 pi), theta in
     [0, 3 pi], whose turns are 4/3 apart: with noise 0.01 a point's turn is
     never in doubt, so t can be read back as the angle phi plus 2 pi n
     with the n that puts rho nearest to t / (1.5 pi). */
  float *x = draw(RAD_PROBLEM_SPIRAL, 104, N_STAT);
  double *q = malloc(N_STAT * sizeof(double)), *en = malloc(N_STAT * sizeof(double));
  size_t ne = 0;
  for (size_t i = 0; i < N_STAT; i++) {
    double rho = hypot(x[2 * i], x[2 * i + 1]), phi = atan2(x[2 * i + 1], x[2 * i]);
    if (phi < 0) phi += 2 * PI;
    double t = phi, best = INFINITY;
    for (int k = -1; k <= 1; k++) {
      double tk = fmin(fmax(phi + 2 * PI * k, 0), 3 * PI);
      if (fabs(rho - tk / (1.5 * PI)) < best) best = fabs(rho - tk / (1.5 * PI)), t = tk;
    }
    q[i] = (t / (3 * PI)) * (t / (3 * PI));
    /* away from the centre and the end, the radial offset times
       cos(psi) = t / sqrt(1 + t^2) (psi: the angle between the radius and
       the normal, tan psi = 1/t) is the noise's normal component */
    if (rho > 0.5 && rho < 1.9) en[ne++] = (rho - t / (1.5 * PI)) * t / sqrt(1 + t * t);
  }
  double se, m = mean_se(en, ne, &se), v = 0;
  for (size_t i = 0; i < ne; i++) v += en[i] * en[i];
  double sd = sqrt(v / (double)ne);
  near("spiral normal residual mean", m, 0, 0.01 / sqrt((double)ne));
  near("spiral normal residual std", sd, 0.01, 0.01 / sqrt(2.0 * (double)ne));
  /* q = (t / 3 pi)^2 is U(0, 1) */
  double qm = mean_se(q, N_STAT, &se);
  near("spiral mean q", qm, 0.5, sqrt(1.0 / 12 / N_STAT));
  double ks = ks_uniform(q, N_STAT);
  printf("spiral     normal residual mean %.2e std %.5f (s = 0.01, %zu points); "
         "KS distance of q from uniform %.4f (limit %.4f)\n",
         m, sd, ne, ks, ks_limit(N_STAT));
  ck_assert(ks < ks_limit(N_STAT));
  free(q), free(en), free(x);
}
END_TEST

/* Mean and covariance of every problem against the exact ones: the node
   moments plus s^2 I (exact for the mixtures; for the curves, quadrature
   moments that the closed forms below confirm). */
START_TEST(test_moments) {
  const int p = _i;
  dens d;
  dens_init(&d, p, default_nodes(p));
  double m[2] = {0, 0}, c[3] = {0, 0, 0}; /* xx, yy, xy */
  for (size_t j = 0; j < d.m; j++) {
    double w = d.w[j];
    m[0] += w * d.cx[j], m[1] += w * d.cy[j];
    c[0] += w * d.cx[j] * d.cx[j], c[1] += w * d.cy[j] * d.cy[j], c[2] += w * d.cx[j] * d.cy[j];
  }
  c[0] += d.s * d.s - m[0] * m[0], c[1] += d.s * d.s - m[1] * m[1], c[2] -= m[0] * m[1];
  /* closed forms where they are short (E cos t = 0, E sin t = 2 / pi,
     E cos^2 t = 1/2 for t ~ U(0, pi)) */
  const double ip = 1 / PI;
  const double closed[N_PROB][5] = {
      {0, 0, 8 + 0.0025, 8 + 0.0025, 0},
      {0, 0, 0.5 + 1e-4, 0.5 + 1e-4, 0},
      {0.5, 0.25, 0.75 + 0.01, 0.5625 - ip + 0.01, 0.125 - ip},
      {0, 0, 0.3125 + 0.01, 0.3125 + 0.01, 0},
      {NAN, NAN, NAN, NAN, NAN}, /* no short form */
      {0, 0, 0.25 * (35.0 / 12 + 0.5) + 0.0025, 0.25 * (0.5625 - ip) + 0.0025,
       0.25 * (0.125 - ip)}};
  const double *cl = closed[p - 1];
  const double exact[5] = {m[0], m[1], c[0], c[1], c[2]};
  for (int k = 0; k < 5; k++)
    if (!isnan(cl[k]))
      ck_assert_msg(fabs(exact[k] - cl[k]) < 1e-6, "%s moment %d: quadrature %.9f, closed %.9f",
                    NAMES[p - 1], k, exact[k], cl[k]);

  float *x = draw(p, 200 + (uint64_t)p, N_STAT);
  double *v = malloc(N_STAT * sizeof(double)), est[5], sem[5];
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < N_STAT; i++) v[i] = x[2 * i + (size_t)k];
    est[k] = mean_se(v, N_STAT, &sem[k]);
  }
  const int ca[3] = {0, 1, 0}, cb[3] = {0, 1, 1};
  for (int k = 0; k < 3; k++) {
    /* products about the exact mean: unbiased for the covariance */
    for (size_t i = 0; i < N_STAT; i++)
      v[i] = (x[2 * i + (size_t)ca[k]] - exact[ca[k]]) * (x[2 * i + (size_t)cb[k]] - exact[cb[k]]);
    est[2 + k] = mean_se(v, N_STAT, &sem[2 + k]);
  }
  static const char *const what[5] = {"mean x", "mean y", "var x", "var y", "cov xy"};
  printf("%-10s", NAMES[p - 1]);
  for (int k = 0; k < 5; k++) printf(" %s %.4f (%.4f)", what[k], est[k], exact[k]);
  printf("\n");
  for (int k = 0; k < 5; k++) {
    char label[64];
    snprintf(label, sizeof label, "%s %s", NAMES[p - 1], what[k]);
    near(label, est[k], exact[k], sem[k]);
  }
  free(v), free(x);
  dens_free(&d);
}
END_TEST

/* The noise level: the exact likelihood of the sample, as a function of the
   density's noise std, is largest at the problem's s (its expectation is
   the cross-entropy, smallest at the truth). Against s * 0.9 and s * 1.1
   the expected gap is about 0.01 nats per noisy direction; the standard
   error of the paired difference is a tenth of that. */
START_TEST(test_noise_level) {
  const int p = _i;
  const size_t n = 10000;
  dens d;
  dens_init(&d, p, default_nodes(p));
  float *x = draw(p, 300 + (uint64_t)p, n);
  double l[3];
  const double f[3] = {0.9, 1.0, 1.1};
  for (int k = 0; k < 3; k++) l[k] = dens_mean_logp(&d, d.s * f[k], x, n, NULL);
  printf("%-10s mean log p with noise 0.9 s, s, 1.1 s: %.4f %.4f %.4f\n", NAMES[p - 1], l[0],
         l[1], l[2]);
  ck_assert_msg(l[1] > l[0] && l[1] > l[2], "%s: the likelihood peaks away from s = %g",
                NAMES[p - 1], d.s);
  free(x);
  dens_free(&d);
}
END_TEST

/* The true log-likelihood E[log p(x)] = -H, recomputed. */
START_TEST(test_true_log_likelihood) {
  const int p = _i;
  dens d, d2;
  dens_init(&d, p, default_nodes(p));
  float *x = draw(p, 400 + (uint64_t)p, N_STAT);
  /* the quadrature has converged: doubling the nodes changes log p by far
     less than the tolerance (what remains, ~1e-4 at most, comes from the
     curves' ends, where the midpoint rule is only second order) */
  if (p != RAD_PROBLEM_GRID && p != RAD_PROBLEM_RING) {
    dens_init(&d2, p, 2 * default_nodes(p));
    double worst = 0;
    for (size_t i = 0; i < 500; i++) {
      double a = dens_logp(&d, d.s, x[2 * i], x[2 * i + 1]);
      double b = dens_logp(&d2, d.s, x[2 * i], x[2 * i + 1]);
      worst = fmax(worst, fabs(a - b));
    }
    printf("%-10s quadrature: doubling the nodes moves log p by at most %.1e\n", NAMES[p - 1],
           worst);
    ck_assert_msg(worst < 1e-3, "%s: quadrature not converged (%.2e)", NAMES[p - 1], worst);
    dens_free(&d2);
  }
  double se, ll = dens_mean_logp(&d, d.s, x, N_STAT, &se);
  double table = rad_problem_true_log_likelihood(p);
  printf("%-10s true E[log p] recomputed %+.4f +- %.4f (table %+.2f, diff %+.4f)\n", NAMES[p - 1],
         ll, se, table, ll - table);
  ck_assert_msg(fabs(ll - table) <= LL_TOL, "%s: recomputed %.4f, table %.2f", NAMES[p - 1], ll,
                table);
  free(x);
  dens_free(&d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("datasets");
  TCase *api = tcase_create("api");
  tcase_add_test(api, test_names);
  tcase_add_test(api, test_true_ll_table);
  tcase_add_test(api, test_bad_input);
  tcase_add_loop_test(api, test_determinism, 1, N_PROB + 1);
  suite_add_tcase(s, api);
  TCase *st = tcase_create("statistics");
  tcase_set_timeout(st, 60);
  tcase_add_test(st, test_grid);
  tcase_add_test(st, test_ring);
  tcase_add_test(st, test_circles);
  tcase_add_test(st, test_spiral_curve);
  tcase_add_loop_test(st, test_moments, 1, N_PROB + 1);
  tcase_add_loop_test(st, test_noise_level, 1, N_PROB + 1);
  tcase_add_loop_test(st, test_true_log_likelihood, 1, N_PROB + 1);
  suite_add_tcase(s, st);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
