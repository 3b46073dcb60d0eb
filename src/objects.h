/* Definitions of the opaque handles shared between source files. */
#ifndef RAD_OBJECTS_H
#define RAD_OBJECTS_H

#include "stack.h"

struct rad_coupling {
  rad__layer L;
  float *params;
  size_t poff0, loff0; /* 0, 0: for the one-layer stack view */
};

struct rad_flow {
  size_t dim;
  size_t n_layers, cap_layers;
  size_t cap_params; /* floats allocated at params (grown geometrically) */
  rad__layer *layers;
  size_t *poff, *loff;
  size_t n_params, n_labels;
  float *params;
  float *std_shift, *std_scale; /* dim each, or NULL: no standardization */
  double std_logdet;
  char **names;                 /* dim column names, or NULL */
};

static inline rad__stack rad__flow_stack(const rad_flow *F) {
  rad__stack S = {F->dim,       F->n_layers,  F->layers,   F->params,
                  F->poff,      F->loff,      F->n_params, F->n_labels,
                  1,            F->std_shift, F->std_scale, F->std_logdet};
  return S;
}

static inline rad__stack rad__coupling_stack(const rad_coupling *c) {
  rad__stack S = {c->L.dim,      1, &c->L, c->params, &c->poff0, &c->loff0,
                  c->L.n_params, rad__layer_num_labels(&c->L), 0, NULL, NULL, 0.0};
  return S;
}

#endif
