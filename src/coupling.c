/* The rad_coupling handle: one coupling layer used on its own. The math
   lives in layer.c; this file is the public wrapper. */
#include <math.h>
#include <stdlib.h>

#include "objects.h"
#include "options.h"

int rad_coupling_create(int layer_kind, size_t dim, const uint8_t *mask,
                        size_t mask_len, size_t hidden, size_t gate_hidden,
                        uint64_t seed, rad_coupling **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (layer_kind == RAD_LAYER_AFFINE) gate_hidden = 0;
  rad_coupling *c = calloc(1, sizeof(*c));
  if (!c) return RAD_ENOMEM;
  int rc = rad__layer_init(&c->L, layer_kind, dim, mask, mask_len, hidden, gate_hidden);
  if (rc) {
    free(c);
    return rc;
  }
  c->params = malloc(c->L.n_params * sizeof(float));
  if (!c->params) {
    rad__layer_free(&c->L);
    free(c);
    return RAD_ENOMEM;
  }
  rad__layer_init_params(&c->L, c->params, seed, 0);
  *out = c;
  return RAD_OK;
}

void rad_coupling_free(rad_coupling *c) {
  if (!c) return;
  rad__layer_free(&c->L);
  free(c->params);
  free(c);
}

int rad_coupling_kind(const rad_coupling *c) { return c ? c->L.kind : 0; }
size_t rad_coupling_dim(const rad_coupling *c) { return c ? c->L.dim : 0; }
size_t rad_coupling_num_params(const rad_coupling *c) { return c ? c->L.n_params : 0; }
size_t rad_coupling_num_labels(const rad_coupling *c) {
  return c ? rad__layer_num_labels(&c->L) : 0;
}

size_t rad_coupling_hidden(const rad_coupling *c) { return c ? c->L.cond.hidden : 0; }
size_t rad_coupling_gate_hidden(const rad_coupling *c) {
  return c && c->L.kind == RAD_LAYER_RAD ? c->L.gate.hidden : 0;
}

int rad_coupling_get_mask(const rad_coupling *c, uint8_t *mask, size_t len) {
  if (!c || !mask) return RAD_EINVAL;
  if (len != c->L.dim) return RAD_ESIZE;
  memcpy(mask, c->L.mask, len);
  return RAD_OK;
}

int rad_coupling_get_params(const rad_coupling *c, float *out, size_t len) {
  if (!c || !out) return RAD_EINVAL;
  if (len != c->L.n_params) return RAD_ESIZE;
  memcpy(out, c->params, len * sizeof(float));
  return RAD_OK;
}

int rad_coupling_set_params(rad_coupling *c, const float *in, size_t len) {
  if (!c || !in) return RAD_EINVAL;
  if (len != c->L.n_params) return RAD_ESIZE;
  if (!rad__all_finite(in, len)) return RAD_ENONFINITE;
  memcpy(c->params, in, len * sizeof(float));
  return RAD_OK;
}

int rad_coupling_set_option(rad_coupling *c, int option, double value) {
  if (!c) return RAD_EINVAL;
  float b;
  int rc = rad__option_check(option, value, &b);
  if (rc == RAD_OK) c->L.bound = b;
  return rc;
}

int rad_coupling_get_option(const rad_coupling *c, int option, double *value) {
  if (!c || !value) return RAD_EINVAL;
  if (option != RAD_OPTION_LOGIT_BOUND) return RAD_EINVAL;
  *value = c->L.bound > 0.0f ? (double)c->L.bound : INFINITY;
  return RAD_OK;
}

int rad_coupling_forward(const rad_coupling *c, size_t n, const float *x,
                         float *z, int32_t *k, float *log_det) {
  if (!c) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!z) return RAD_EINVAL;
  rad__stack S = rad__coupling_stack(c);
  return rad__stack_forward(&S, NULL, n, x, z, k, log_det, NULL, NULL);
}

int rad_coupling_inverse(const rad_coupling *c, size_t n, const float *z,
                         const int32_t *k, float *x) {
  if (!c) return RAD_EINVAL;
  rad__stack S = rad__coupling_stack(c);
  return rad__stack_inverse(&S, NULL, n, z, k, x);
}

int rad_coupling_backward(const rad_coupling *c, size_t n, const float *x,
                          const float *gz, const float *glog_det, float *gx,
                          float *gparams) {
  if (!c) return RAD_EINVAL;
  if (n == 0) { /* an empty sum: zero gradient */
    if (gparams) memset(gparams, 0, c->L.n_params * sizeof(float));
    return RAD_OK;
  }
  if (!x || !gz) return RAD_EINVAL;
  rad__stack S = rad__coupling_stack(c);
  return rad__stack_backward(&S, NULL, n, x, gz, glog_det, glog_det ? 1.0 : 0.0, gx, gparams,
                             NULL, NULL);
}
