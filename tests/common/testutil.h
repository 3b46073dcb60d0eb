/* Helpers shared by the C tests. */
#ifndef RAD_TESTUTIL_H
#define RAD_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ref.h"

/* A small seeded generator for test data (splitmix64). */
typedef struct tu_rng {
  uint64_t s;
} tu_rng;
uint64_t tu_u64(tu_rng *r);
double tu_unif(tu_rng *r); /* (0, 1) */
double tu_gauss(tu_rng *r);

/* Adds N(0, scale^2) to every parameter of the flow. */
void tu_perturb_flow(rad_flow *flow, double scale, uint64_t seed);
void tu_perturb_coupling(rad_coupling *c, double scale, uint64_t seed);

/* 1 if every value is finite. */
int tu_all_finite(const float *x, size_t n);

/* Flow parameters as doubles (caller frees). */
double *tu_flow_params(const rad_flow *flow);
double *tu_coupling_params(const rad_coupling *c);

/* An objective in double precision: its value at theta, with every
   discrete decision taken appended to sig. */
typedef double (*tu_fn)(const double *theta, void *ctx, ref_sig *sig);

typedef struct tu_fd {
  int checked, skipped, failed;
  double worst;       /* largest |an - fd| / (rtol |fd| + atol) */
  size_t worst_index;
} tu_fd;

/* Central differences of f at theta (length n) for indices 0, stride,
   2 stride, ... compared with `analytic`. A difference is used only if
   the discrete decisions at theta + h and theta - h are those at theta;
   otherwise h is divided by 10 (up to 3 times) and, failing that, the
   index is counted as skipped. Pass: |an - fd| <= rtol |fd| + atol. */
tu_fd tu_check_grad(tu_fn f, void *ctx, double *theta, size_t n,
                    const float *analytic, size_t stride, double h,
                    double rtol, double atol);

/* ---- flow objectives over a batch (ctx = tu_batch) ---------------------- */
typedef struct tu_batch {
  const ref_model *m;
  size_t n;
  const double *x;     /* n x dim */
  const double *theta; /* parameters, for objectives in x */
  const double *gz;    /* n x dim upstream gradient (coupling objective) */
  const double *gld;   /* n (coupling objective) */
} tu_batch;
/* mean over the batch of log p(x_i; theta) */
double tu_obj_mean_logp(const double *theta, void *ctx, ref_sig *sig);
/* sum over the batch of log p(x_i) as a function of x (theta fixed) */
double tu_obj_sum_logp_x(const double *x, void *ctx, ref_sig *sig);
/* sum_i gz_i . z_i + gld_i * logdet_i of one coupling, in theta */
double tu_obj_coupling(const double *theta, void *ctx, ref_sig *sig);
/* the same as a function of x */
double tu_obj_coupling_x(const double *x, void *ctx, ref_sig *sig);

#endif
