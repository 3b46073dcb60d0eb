/* Helpers shared by the C tests; see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

uint64_t tu_u64(tu_rng *r) {
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double tu_unif(tu_rng *r) { return ((double)(tu_u64(r) >> 11) + 0.5) / 9007199254740992.0; }

double tu_gauss(tu_rng *r) {
  double u1 = tu_unif(r), u2 = tu_unif(r);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

int tu_all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

void tu_perturb_flow(rad_flow *flow, double scale, uint64_t seed) {
  size_t np = rad_flow_num_params(flow);
  float *p = malloc(np * sizeof(float) + 1);
  tu_rng r = {seed};
  rad_flow_get_params(flow, p, np);
  for (size_t i = 0; i < np; i++) p[i] += (float)(scale * tu_gauss(&r));
  rad_flow_set_params(flow, p, np);
  free(p);
}

void tu_perturb_coupling(rad_coupling *c, double scale, uint64_t seed) {
  size_t np = rad_coupling_num_params(c);
  float *p = malloc(np * sizeof(float) + 1);
  tu_rng r = {seed};
  rad_coupling_get_params(c, p, np);
  for (size_t i = 0; i < np; i++) p[i] += (float)(scale * tu_gauss(&r));
  rad_coupling_set_params(c, p, np);
  free(p);
}

double *tu_flow_params(const rad_flow *flow) {
  size_t np = rad_flow_num_params(flow);
  float *p = malloc(np * sizeof(float) + 1);
  double *d = malloc(np * sizeof(double) + 1);
  rad_flow_get_params(flow, p, np);
  for (size_t i = 0; i < np; i++) d[i] = p[i];
  free(p);
  return d;
}

double *tu_coupling_params(const rad_coupling *c) {
  size_t np = rad_coupling_num_params(c);
  float *p = malloc(np * sizeof(float) + 1);
  double *d = malloc(np * sizeof(double) + 1);
  rad_coupling_get_params(c, p, np);
  for (size_t i = 0; i < np; i++) d[i] = p[i];
  free(p);
  return d;
}

static int sig_eq(const ref_sig *a, const ref_sig *b) {
  return a->n == b->n && memcmp(a->v, b->v, a->n * sizeof(int)) == 0;
}

tu_fd tu_check_grad(tu_fn f, void *ctx, double *theta, size_t n,
                    const float *analytic, size_t stride, double h,
                    double rtol, double atol) {
  tu_fd res = {0, 0, 0, 0.0, 0};
  ref_sig *s0 = malloc(sizeof(ref_sig)), *sp = malloc(sizeof(ref_sig)),
          *sm = malloc(sizeof(ref_sig));
  s0->n = 0;
  (void)f(theta, ctx, s0);
  for (size_t j = 0; j < n; j += stride) {
    const double old = theta[j];
    double hh = h, fd = 0.0;
    int ok = 0;
    for (int t = 0; t < 4 && !ok; t++, hh /= 10.0) {
      sp->n = sm->n = 0;
      theta[j] = old + hh;
      double a = f(theta, ctx, sp);
      theta[j] = old - hh;
      double b = f(theta, ctx, sm);
      theta[j] = old;
      if (sig_eq(s0, sp) && sig_eq(s0, sm)) {
        fd = (a - b) / (2.0 * hh);
        ok = 1;
      }
    }
    if (!ok) {
      res.skipped++;
      continue;
    }
    res.checked++;
    double r = fabs((double)analytic[j] - fd) / (rtol * fabs(fd) + atol);
    if (r > res.worst) {
      res.worst = r;
      res.worst_index = j;
    }
    if (r > 1.0) {
      res.failed++;
      if (getenv("TU_VERBOSE"))
        fprintf(stderr, "  index %zu: analytic %.7g finite difference %.7g\n", j,
                (double)analytic[j], fd);
    }
  }
  free(s0);
  free(sp);
  free(sm);
  return res;
}

double tu_obj_mean_logp(const double *theta, void *ctx, ref_sig *sig) {
  const tu_batch *b = ctx;
  double s = 0.0;
  for (size_t i = 0; i < b->n; i++) s += ref_eval(b->m, theta, b->x + i * b->m->dim, NULL, NULL, sig);
  return s / (double)b->n;
}

double tu_obj_sum_logp_x(const double *x, void *ctx, ref_sig *sig) {
  const tu_batch *b = ctx;
  double s = 0.0;
  for (size_t i = 0; i < b->n; i++) s += ref_eval(b->m, b->theta, x + i * b->m->dim, NULL, NULL, sig);
  return s;
}

static double coupling_obj(const double *theta, const double *x, const tu_batch *b,
                           ref_sig *sig) {
  double s = 0.0, z[REF_MAX_DIM];
  const size_t d = b->m->dim;
  for (size_t i = 0; i < b->n; i++) {
    double ld = ref_eval(b->m, theta, x + i * d, z, NULL, sig);
    s += b->gld[i] * ld;
    for (size_t f = 0; f < d; f++) s += b->gz[i * d + f] * z[f];
  }
  return s;
}

double tu_obj_coupling(const double *theta, void *ctx, ref_sig *sig) {
  const tu_batch *b = ctx;
  return coupling_obj(theta, b->x, b, sig);
}

double tu_obj_coupling_x(const double *x, void *ctx, ref_sig *sig) {
  const tu_batch *b = ctx;
  return coupling_obj(b->theta, x, b, sig);
}
