/* A reference implementation of MODEL.md in double precision, written
   independently of src/ (direct formulas, probabilities rather than log
   space, no shared code), for the tests: librad's float results are
   compared with it, and its finite differences check librad's gradients.
   It also records every discrete decision (fold pieces, ReLU on/off), so
   a finite difference that crosses a kink is detected, not guessed. */
#ifndef RAD_TEST_REF_H
#define RAD_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

#include "rad/rad.h"

#define REF_MAX_LAYERS 16
#define REF_MAX_DIM 16
#define REF_MAX_SIG 32768

typedef struct ref_layer {
  int kind;
  size_t dim, d1, d2, H, G;
  uint8_t mask[REF_MAX_DIM];
  size_t idx1[REF_MAX_DIM], idx2[REF_MAX_DIM];
  double B; /* 0 = unclamped */
  size_t np, off;
} ref_layer;

typedef struct ref_model {
  size_t dim, L, np, nlabels;
  int with_base;
  ref_layer layer[REF_MAX_LAYERS];
} ref_model;

typedef struct ref_sig {
  size_t n;
  int v[REF_MAX_SIG];
} ref_sig;

int ref_from_flow(const rad_flow *flow, ref_model *m);
int ref_from_coupling(const rad_coupling *c, ref_model *m);

/* log p(x) (flows) or the layer log-det (one coupling) of one sample.
   z (dim), k (nlabels) and sig may be NULL; decisions are appended to
   sig (the caller empties it). */
double ref_eval(const ref_model *m, const double *params, const double *x,
                double *z, int32_t *k, ref_sig *sig);

/* The gating probabilities p(. | z) of every label (nlabels x 3). */
double ref_eval_probs(const ref_model *m, const double *params, const double *x,
                      double *probs);

/* The fold of MODEL.md section 1 for one unit, in double: returns f(u),
   sets *label and *log_slope (either may be NULL). */
double ref_fold(const double lp[3], const double lm[3], double u, int *label,
                double *log_slope);
/* log p(k | zh) for one unit given gate logits g (|zh| <= 1). */
double ref_gate_logp(const double lp[3], const double lm[3], const double g[3],
                     double zh, int k);

#endif
