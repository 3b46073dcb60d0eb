/* The rad_gate handle: the gating network g(z) used on its own
   (dense-ReLU-dense, linear output; MODEL.md section 4). The network code
   is mlp.c, shared with the coupling layers; the gating distribution built
   from its logits is in foldmath.h. */
#include <stdlib.h>

#include "mlp.h"

struct rad_gate {
  rad__mlp net; /* in_dim -> hidden -> 3 units */
  size_t units;
  size_t n_params;
  float *params;
};

int rad_gate_create(size_t in_dim, size_t hidden, size_t units, uint64_t seed,
                    rad_gate **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (in_dim == 0 || hidden == 0 || units == 0) return RAD_EINVAL;
  if (units > SIZE_MAX / 3) return RAD_ETOOBIG;
  rad__mlp net = {in_dim, hidden, 3 * units};
  if (!rad__mlp_params_ok(&net)) return RAD_ETOOBIG;
  rad_gate *g = calloc(1, sizeof(*g));
  if (!g) return RAD_ENOMEM;
  g->net = net;
  g->units = units;
  g->n_params = rad__mlp_num_params(&net);
  g->params = malloc(g->n_params * sizeof(float));
  if (!g->params) {
    free(g);
    return RAD_ENOMEM;
  }
  rad__mlp_init(&net, g->params, seed, 1);
  *out = g;
  return RAD_OK;
}

void rad_gate_free(rad_gate *g) {
  if (!g) return;
  free(g->params);
  free(g);
}

size_t rad_gate_num_params(const rad_gate *g) { return g ? g->n_params : 0; }

int rad_gate_get_params(const rad_gate *g, float *out, size_t len) {
  if (!g || !out) return RAD_EINVAL;
  if (len != g->n_params) return RAD_ESIZE;
  memcpy(out, g->params, len * sizeof(float));
  return RAD_OK;
}

int rad_gate_set_params(rad_gate *g, const float *in, size_t len) {
  if (!g || !in) return RAD_EINVAL;
  if (len != g->n_params) return RAD_ESIZE;
  if (!rad__all_finite(in, len)) return RAD_ENONFINITE;
  memcpy(g->params, in, len * sizeof(float));
  return RAD_OK;
}

/* Feature-major scratch for n samples: X (in x n), H (hidden x n),
   O (3 units x n). */
static float *scratch(const rad_gate *g, size_t n, float **X, float **H, float **O) {
  size_t rows = g->net.in + g->net.hidden + g->net.out, cnt, b;
  if (!rad__mul_size(rows, n, &cnt) || !rad__mul_size(cnt, sizeof(float), &b)) return NULL;
  float *s = malloc(b);
  if (!s) return NULL;
  *X = s;
  *H = s + g->net.in * n;
  *O = *H + g->net.hidden * n;
  return s;
}

int rad_gate_logits(const rad_gate *g, size_t n, const float *z, float *logits) {
  if (!g) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!z || !logits) return RAD_EINVAL;
  const size_t in = g->net.in, U = g->units;
  int rc = rad__check_batch(n, in + 3 * U + g->net.hidden, sizeof(float));
  if (rc) return rc;
  if (!rad__all_finite(z, n * in)) return RAD_ENONFINITE;
  float *X, *H, *O, *s = scratch(g, n, &X, &H, &O);
  if (!s) return RAD_ENOMEM;
  for (size_t i = 0; i < n; i++)
    for (size_t f = 0; f < in; f++) X[f * n + i] = z[i * in + f];
  rad__mlp_forward(&g->net, g->params, n, X, H, O);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++)
      for (size_t c = 0; c < 3; c++) logits[(i * U + j) * 3 + c] = O[(c * U + j) * n + i];
  free(s);
  return RAD_OK;
}

int rad_gate_backward(const rad_gate *g, size_t n, const float *z,
                      const float *glogits, float *gz, float *gparams) {
  if (!g) return RAD_EINVAL;
  const size_t in = g->net.in, U = g->units;
  if (n == 0) {
    if (gparams) memset(gparams, 0, g->n_params * sizeof(float));
    return RAD_OK;
  }
  if (!z || !glogits) return RAD_EINVAL;
  int rc = rad__check_batch(n, 2 * in + 6 * U + 2 * g->net.hidden, sizeof(float));
  if (rc) return rc;
  if (!rad__all_finite(z, n * in) || !rad__all_finite(glogits, n * 3 * U))
    return RAD_ENONFINITE;
  float *X, *H, *O, *s = scratch(g, n, &X, &H, &O);
  float *gH = malloc(g->net.hidden * n * sizeof(float));
  float *gX = malloc(in * n * sizeof(float));
  float *gp = calloc(g->n_params, sizeof(float));
  if (!s || !gH || !gX || !gp) {
    free(s);
    free(gH);
    free(gX);
    free(gp);
    return RAD_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t f = 0; f < in; f++) X[f * n + i] = z[i * in + f];
  rad__mlp_forward(&g->net, g->params, n, X, H, O);
  /* O becomes dL/dO, feature-major */
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++)
      for (size_t c = 0; c < 3; c++) O[(c * U + j) * n + i] = glogits[(i * U + j) * 3 + c];
  rad__mlp_backward(&g->net, g->params, n, X, H, O, gH, gX, gp);
  if (gz)
    for (size_t i = 0; i < n; i++)
      for (size_t f = 0; f < in; f++) gz[i * in + f] = gX[f * n + i];
  if (gparams) memcpy(gparams, gp, g->n_params * sizeof(float));
  free(s);
  free(gH);
  free(gX);
  free(gp);
  return RAD_OK;
}
