/* Adam for gradient ascent (Kingma and Ba, 2015), with its state kept
   apart from the flow (MODEL.md section 6: beta1 0.9, beta2 0.999,
   eps 1e-8, learning rate 1e-3 by default). */
#include <math.h>
#include <stdlib.h>

#include "adam.h"
#include "options.h"

struct rad_adam {
  size_t n;
  float *m, *v;
  uint64_t t;
  double lr, b1, b2, eps;
};

int rad_adam_create(size_t num_params, rad_adam **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (num_params == 0) return RAD_EINVAL;
  size_t b;
  if (!rad__mul_size(num_params, 2 * sizeof(float), &b)) return RAD_ETOOBIG;
  rad_adam *a = calloc(1, sizeof(*a));
  if (!a) return RAD_ENOMEM;
  a->m = calloc(num_params, sizeof(float));
  a->v = calloc(num_params, sizeof(float));
  if (!a->m || !a->v) {
    rad_adam_free(a);
    return RAD_ENOMEM;
  }
  a->n = num_params;
  a->lr = rad__option(RAD_OPTION_LEARNING_RATE)->def;
  a->b1 = rad__option(RAD_OPTION_BETA1)->def;
  a->b2 = rad__option(RAD_OPTION_BETA2)->def;
  a->eps = rad__option(RAD_OPTION_EPSILON)->def;
  *out = a;
  return RAD_OK;
}

void rad_adam_free(rad_adam *a) {
  if (!a) return;
  free(a->m);
  free(a->v);
  free(a);
}

size_t rad_adam_num_params(const rad_adam *a) { return a ? a->n : 0; }
uint64_t rad_adam_steps(const rad_adam *a) { return a ? a->t : 0; }

static double *slot(rad_adam *a, int option) {
  switch (option) {
  case RAD_OPTION_LEARNING_RATE: return &a->lr;
  case RAD_OPTION_BETA1: return &a->b1;
  case RAD_OPTION_BETA2: return &a->b2;
  case RAD_OPTION_EPSILON: return &a->eps;
  default: return NULL;
  }
}

int rad_adam_set_option(rad_adam *a, int option, double value) {
  if (!a) return RAD_EINVAL;
  double *s = slot(a, option);
  if (!s) return RAD_EINVAL;
  int rc = rad__option_valid(option, value);
  if (rc) return rc;
  *s = value;
  return RAD_OK;
}

int rad_adam_get_option(const rad_adam *a, int option, double *value) {
  if (!a || !value) return RAD_EINVAL;
  double *s = slot((rad_adam *)a, option);
  if (!s) return RAD_EINVAL;
  *value = *s;
  return RAD_OK;
}

void rad_adam_reset(rad_adam *a) {
  if (!a) return;
  memset(a->m, 0, a->n * sizeof(float));
  memset(a->v, 0, a->n * sizeof(float));
  a->t = 0;
}

int rad__adam_step_lr(rad_adam *a, float *p, const float *g, size_t len, double lr) {
  if (!a || !p || !g) return RAD_EINVAL;
  if (len != a->n) return RAD_ESIZE;
  if (!rad__all_finite(g, len)) return RAD_ENONFINITE;
  const double t = (double)(a->t + 1);
  const float b1 = (float)a->b1, b2 = (float)a->b2;
  const float c1 = (float)(lr / (1.0 - pow(a->b1, t)));
  const float c2 = (float)(1.0 / sqrt(1.0 - pow(a->b2, t)));
  const float eps = (float)a->eps;
  /* Pass 1: would any parameter become non-finite? (Nothing written.) */
  float acc = 0.0f;
  for (size_t i = 0; i < len; i++) {
    float m = b1 * a->m[i] + (1.0f - b1) * g[i];
    float v = b2 * a->v[i] + (1.0f - b2) * g[i] * g[i];
    float np = p[i] + c1 * m / (sqrtf(v) * c2 + eps);
    acc += np - np;
  }
  if (!rad__isfinite_f(acc)) return RAD_ENUMERIC;
  /* Pass 2: commit. */
  for (size_t i = 0; i < len; i++) {
    float m = b1 * a->m[i] + (1.0f - b1) * g[i];
    float v = b2 * a->v[i] + (1.0f - b2) * g[i] * g[i];
    a->m[i] = m;
    a->v[i] = v;
    p[i] += c1 * m / (sqrtf(v) * c2 + eps);
  }
  a->t++;
  return RAD_OK;
}

int rad_adam_step(rad_adam *a, float *params, const float *grad, size_t len) {
  if (!a) return RAD_EINVAL;
  return rad__adam_step_lr(a, params, grad, len, a->lr);
}

int rad_adam_get_state(const rad_adam *a, float *m, float *v, uint64_t *t, size_t len) {
  if (!a || !m || !v || !t) return RAD_EINVAL;
  if (len != a->n) return RAD_ESIZE;
  memcpy(m, a->m, len * sizeof(float));
  memcpy(v, a->v, len * sizeof(float));
  *t = a->t;
  return RAD_OK;
}

int rad_adam_set_state(rad_adam *a, const float *m, const float *v, uint64_t t, size_t len) {
  if (!a || !m || !v) return RAD_EINVAL;
  if (len != a->n) return RAD_ESIZE;
  if (!rad__all_finite(m, len) || !rad__all_finite(v, len)) return RAD_ENONFINITE;
  for (size_t i = 0; i < len; i++)
    if (v[i] < 0.0f) return RAD_EINVAL;
  memcpy(a->m, m, len * sizeof(float));
  memcpy(a->v, v, len * sizeof(float));
  a->t = t;
  return RAD_OK;
}
