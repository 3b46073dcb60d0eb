/* Flows: a stack of coupling layers over N(0, I) (MODEL.md section 6). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "objects.h"
#include "options.h"

int rad_flow_create_empty(size_t dim, rad_flow **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (dim == 0) return RAD_EINVAL;
  if (dim > RAD__MAX_DIM) return RAD_ETOOBIG; /* as rad_coupling_create */
  rad_flow *F = calloc(1, sizeof(*F));
  if (!F) return RAD_ENOMEM;
  F->dim = dim;
  *out = F;
  return RAD_OK;
}

static void free_names(char **names, size_t n) {
  if (!names) return;
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

void rad_flow_free(rad_flow *F) {
  if (!F) return;
  free(F->std_shift);
  free(F->std_scale);
  free_names(F->names, F->dim);
  for (size_t l = 0; l < F->n_layers; l++) rad__layer_free(&F->layers[l]);
  free(F->layers);
  free(F->poff);
  free(F->loff);
  free(F->params);
  free(F);
}

/* Appends layer L (taking ownership of its arrays on success) with
   parameters `p` (copied) or, when p is NULL, initialised from
   (seed, stream). On failure the flow is unchanged and L still owned by
   the caller. */
static int flow_push(rad_flow *F, rad__layer *L, const float *p, uint64_t seed,
                     uint32_t stream) {
  if (L->dim != F->dim) return RAD_EMISMATCH;
  size_t np = F->n_params + L->n_params, bytes;
  if (np < F->n_params || !rad__mul_size(np, sizeof(float), &bytes)) return RAD_ETOOBIG;
  if (F->n_layers == F->cap_layers) {
    size_t cap = F->cap_layers ? 2 * F->cap_layers : 8;
    rad__layer *ly = realloc(F->layers, cap * sizeof(*ly));
    if (!ly) return RAD_ENOMEM;
    F->layers = ly;
    size_t *po = realloc(F->poff, cap * sizeof(size_t));
    if (!po) return RAD_ENOMEM;
    F->poff = po;
    size_t *lo = realloc(F->loff, cap * sizeof(size_t));
    if (!lo) return RAD_ENOMEM;
    F->loff = lo;
    F->cap_layers = cap;
  }
  if (np > F->cap_params || !F->params) {
    /* geometric growth: building a flow layer by layer copies its
       parameters O(layers) times in all, not O(layers^2) */
    size_t cap = F->cap_params > np / 2 ? 2 * F->cap_params : np, cbytes;
    if (cap < np || !rad__mul_size(cap, sizeof(float), &cbytes)) cap = np, cbytes = bytes;
    float *params = realloc(F->params, cbytes ? cbytes : 1);
    if (!params) return RAD_ENOMEM;
    F->params = params;
    F->cap_params = cap;
  }
  float *dst = F->params + F->n_params;
  if (p)
    memcpy(dst, p, L->n_params * sizeof(float));
  else
    rad__layer_init_params(L, dst, seed, stream);
  F->layers[F->n_layers] = *L;
  F->poff[F->n_layers] = F->n_params;
  F->loff[F->n_layers] = F->n_labels;
  F->n_layers++;
  F->n_params = np;
  F->n_labels += rad__layer_num_labels(L);
  return RAD_OK;
}

int rad_flow_create(int layer_kind, size_t dim, size_t n_layers,
                    size_t hidden, size_t gate_hidden, uint64_t seed,
                    rad_flow **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (layer_kind != RAD_LAYER_RAD && layer_kind != RAD_LAYER_AFFINE) return RAD_EINVAL;
  if (dim == 0 || hidden == 0) return RAD_EINVAL;
  if (layer_kind == RAD_LAYER_RAD && gate_hidden == 0) return RAD_EINVAL;
  if (layer_kind == RAD_LAYER_AFFINE) gate_hidden = 0;
  if (n_layers > RAD__MAX_LAYERS || dim > RAD__MAX_DIM || hidden > RAD__MAX_WIDTH ||
      gate_hidden > RAD__MAX_WIDTH)
    return RAD_ETOOBIG;
  rad_flow *F;
  int rc = rad_flow_create_empty(dim, &F);
  if (rc) return rc;
  uint8_t *mask = malloc(dim);
  if (!mask) {
    rad_flow_free(F);
    return RAD_ENOMEM;
  }
  for (size_t l = 0; l < n_layers && rc == RAD_OK; l++) {
    rad__layer L;
    rad__default_mask(dim, l, mask);
    rc = rad__layer_init(&L, layer_kind, dim, mask, dim, hidden, gate_hidden);
    if (rc == RAD_OK) {
      rc = flow_push(F, &L, NULL, seed, (uint32_t)l);
      if (rc) rad__layer_free(&L);
    }
  }
  free(mask);
  if (rc) {
    rad_flow_free(F);
    return rc;
  }
  *out = F;
  return RAD_OK;
}

int rad_flow_add_coupling(rad_flow *F, const rad_coupling *c) {
  if (!F || !c) return RAD_EINVAL;
  if (c->L.dim != F->dim) return RAD_EMISMATCH;
  if (F->n_layers >= RAD__MAX_LAYERS) return RAD_ETOOBIG;
  rad__layer L;
  int rc = rad__layer_copy(&L, &c->L);
  if (rc) return rc;
  rc = flow_push(F, &L, c->params, 0, 0);
  if (rc) rad__layer_free(&L);
  return rc;
}

size_t rad_flow_num_layers(const rad_flow *F) { return F ? F->n_layers : 0; }

int rad_flow_get_coupling(const rad_flow *F, size_t index, rad_coupling **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (!F) return RAD_EINVAL;
  if (index >= F->n_layers) return RAD_EINVAL;
  rad_coupling *c = calloc(1, sizeof(*c));
  if (!c) return RAD_ENOMEM;
  const rad__layer *L = &F->layers[index];
  c->params = malloc(L->n_params * sizeof(float) + 1);
  int rc = c->params ? rad__layer_copy(&c->L, L) : RAD_ENOMEM;
  if (rc) {
    free(c->params);
    free(c);
    return rc;
  }
  memcpy(c->params, F->params + F->poff[index], L->n_params * sizeof(float));
  *out = c;
  return RAD_OK;
}

int rad_flow_copy(const rad_flow *F, rad_flow **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (!F) return RAD_EINVAL;
  rad_flow *G;
  int rc = rad_flow_create_empty(F->dim, &G);
  for (size_t l = 0; rc == RAD_OK && l < F->n_layers; l++) {
    rad__layer L;
    rc = rad__layer_copy(&L, &F->layers[l]);
    if (rc == RAD_OK) {
      rc = flow_push(G, &L, F->params + F->poff[l], 0, 0);
      if (rc) rad__layer_free(&L);
    }
  }
  if (rc == RAD_OK && F->std_shift) rc = rad_flow_set_standardization(G, F->std_shift, F->std_scale, F->dim);
  if (rc == RAD_OK && F->names) rc = rad_flow_set_column_names(G, (const char *const *)F->names, F->dim);
  if (rc) {
    rad_flow_free(G);
    return rc;
  }
  *out = G;
  return RAD_OK;
}

int rad_flow_set_standardization(rad_flow *F, const float *shift, const float *scale,
                                 size_t len) {
  if (!F) return RAD_EINVAL;
  if (!shift && !scale) { /* back to none */
    free(F->std_shift);
    free(F->std_scale);
    F->std_shift = F->std_scale = NULL;
    F->std_logdet = 0.0;
    return RAD_OK;
  }
  if (!shift || !scale) return RAD_EINVAL;
  if (len != F->dim) return RAD_ESIZE;
  if (!rad__all_finite(shift, len) || !rad__all_finite(scale, len)) return RAD_ENONFINITE;
  double ld = 0.0;
  for (size_t i = 0; i < len; i++) {
    if (!(scale[i] > 0.0f)) return RAD_EINVAL;
    ld -= log((double)scale[i]);
  }
  float *sh = malloc(len * sizeof(float)), *sc = malloc(len * sizeof(float));
  if (!sh || !sc) {
    free(sh);
    free(sc);
    return RAD_ENOMEM;
  }
  memcpy(sh, shift, len * sizeof(float));
  memcpy(sc, scale, len * sizeof(float));
  free(F->std_shift);
  free(F->std_scale);
  F->std_shift = sh;
  F->std_scale = sc;
  F->std_logdet = ld;
  return RAD_OK;
}

int rad_flow_get_standardization(const rad_flow *F, float *shift, float *scale, size_t len) {
  if (!F || !shift || !scale) return RAD_EINVAL;
  if (len != F->dim) return RAD_ESIZE;
  for (size_t i = 0; i < len; i++) {
    shift[i] = F->std_shift ? F->std_shift[i] : 0.0f;
    scale[i] = F->std_scale ? F->std_scale[i] : 1.0f;
  }
  return RAD_OK;
}

int rad_flow_has_standardization(const rad_flow *F) { return F && F->std_shift ? 1 : 0; }

int rad_flow_set_column_names(rad_flow *F, const char *const *names, size_t count) {
  if (!F) return RAD_EINVAL;
  if (!names) {
    free_names(F->names, F->dim);
    F->names = NULL;
    return RAD_OK;
  }
  if (count != F->dim) return RAD_ESIZE;
  for (size_t i = 0; i < count; i++)
    if (!names[i] || strlen(names[i]) > RAD__MAX_NAME) return RAD_EINVAL;
  char **nn = calloc(count, sizeof(char *));
  if (!nn) return RAD_ENOMEM;
  for (size_t i = 0; i < count; i++) {
    size_t l = strlen(names[i]);
    nn[i] = malloc(l + 1);
    if (!nn[i]) {
      free_names(nn, count);
      return RAD_ENOMEM;
    }
    memcpy(nn[i], names[i], l + 1);
  }
  free_names(F->names, F->dim);
  F->names = nn;
  return RAD_OK;
}

const char *rad_flow_column_name(const rad_flow *F, size_t i) {
  if (!F || !F->names || i >= F->dim) return NULL;
  return F->names[i];
}

int rad_flow_set_option(rad_flow *F, int option, double value) {
  if (!F) return RAD_EINVAL;
  float b;
  int rc = rad__option_check(option, value, &b);
  if (rc) return rc;
  for (size_t l = 0; l < F->n_layers; l++) F->layers[l].bound = b;
  return RAD_OK;
}

int rad_flow_get_option(const rad_flow *F, int option, double *value) {
  if (!F || !value) return RAD_EINVAL;
  if (option != RAD_OPTION_LOGIT_BOUND) return RAD_EINVAL;
  float b = F->n_layers ? F->layers[0].bound : RAD_DEFAULT_LOGIT_BOUND;
  *value = b > 0.0f ? (double)b : INFINITY;
  return RAD_OK;
}

size_t rad_flow_dim(const rad_flow *F) { return F ? F->dim : 0; }
size_t rad_flow_num_params(const rad_flow *F) { return F ? F->n_params : 0; }
size_t rad_flow_num_labels(const rad_flow *F) { return F ? F->n_labels : 0; }

int rad_flow_get_params(const rad_flow *F, float *out, size_t len) {
  if (!F || (!out && len)) return RAD_EINVAL;
  if (len != F->n_params) return RAD_ESIZE;
  if (len) memcpy(out, F->params, len * sizeof(float));
  return RAD_OK;
}

int rad_flow_set_params(rad_flow *F, const float *in, size_t len) {
  if (!F || (!in && len)) return RAD_EINVAL;
  if (len != F->n_params) return RAD_ESIZE;
  if (!rad__all_finite(in, len)) return RAD_ENONFINITE;
  if (len) memcpy(F->params, in, len * sizeof(float));
  return RAD_OK;
}

/* ---- entry points ---------------------------------------------------- */

int rad_flow_log_prob_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                         const float *x, float *log_prob) {
  if (!F) return RAD_EINVAL;
  if (n == 0) return RAD_OK; /* an empty batch needs no buffers */
  if (!log_prob) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_forward(&S, ws, n, x, NULL, NULL, log_prob, NULL, NULL);
}
int rad_flow_log_prob(const rad_flow *F, size_t n, const float *x,
                      float *log_prob) {
  return rad_flow_log_prob_ws(F, NULL, n, x, log_prob);
}

int rad_flow_forward_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                        const float *x, float *z, int32_t *k, float *log_prob) {
  if (!F) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!z) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_forward(&S, ws, n, x, z, k, log_prob, NULL, NULL);
}
int rad_flow_forward(const rad_flow *F, size_t n, const float *x, float *z,
                     int32_t *k, float *log_prob) {
  return rad_flow_forward_ws(F, NULL, n, x, z, k, log_prob);
}

int rad_flow_forward_layers(const rad_flow *F, size_t n, const float *x,
                            float *zs, int32_t *k) {
  if (!F) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!zs) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_forward(&S, NULL, n, x, NULL, k, NULL, zs, NULL);
}

int rad_flow_inverse_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                        const float *z, const int32_t *k, float *x) {
  if (!F) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_inverse(&S, ws, n, z, k, x);
}
int rad_flow_inverse(const rad_flow *F, size_t n, const float *z,
                     const int32_t *k, float *x) {
  return rad_flow_inverse_ws(F, NULL, n, z, k, x);
}

int rad_flow_sample_ws(const rad_flow *F, rad_workspace *ws, uint64_t seed,
                       size_t n, float *x, float *z, int32_t *k) {
  return rad_flow_sample_at_ws(F, ws, seed, 0, n, x, z, k);
}
int rad_flow_sample_at_ws(const rad_flow *F, rad_workspace *ws, uint64_t seed, uint64_t first,
                          size_t n, float *x, float *z, int32_t *k) {
  if (!F) return RAD_EINVAL;
  if (first > SIZE_MAX - n) return RAD_ETOOBIG;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_sample(&S, ws, seed, first, n, x, z, k);
}
int rad_flow_sample_at(const rad_flow *F, uint64_t seed, uint64_t first, size_t n, float *x,
                       float *z, int32_t *k) {
  return rad_flow_sample_at_ws(F, NULL, seed, first, n, x, z, k);
}
int rad_flow_sample(const rad_flow *F, uint64_t seed, size_t n, float *x,
                    float *z, int32_t *k) {
  return rad_flow_sample_ws(F, NULL, seed, n, x, z, k);
}

int rad_flow_grad_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                     const float *x, float *grad, double *mean_log_prob) {
  if (!F || !x || !grad || n == 0) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  double sum;
  int rc = rad__stack_backward(&S, ws, n, x, NULL, NULL, 1.0 / (double)n, NULL, grad, &sum, NULL);
  if (rc == RAD_OK && mean_log_prob) *mean_log_prob = sum / (double)n;
  return rc;
}
int rad_flow_grad(const rad_flow *F, size_t n, const float *x, float *grad,
                  double *mean_log_prob) {
  return rad_flow_grad_ws(F, NULL, n, x, grad, mean_log_prob);
}

int rad_flow_grad_weighted_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                              const float *x, const float *weights, float *grad,
                              double *weighted_mean_log_prob) {
  if (!F || !x || !weights || !grad || n == 0) return RAD_EINVAL;
  /* the inputs, x and the weights, must have a byte count that fits */
  int rc = rad__check_batch(n, F->dim + 1, sizeof(float));
  if (rc) return rc;
  if (!rad__all_finite(weights, n)) return RAD_ENONFINITE;
  double sw = 0.0;
  for (size_t i = 0; i < n; i++) {
    if (weights[i] < 0.0f) return RAD_EINVAL;
    sw += weights[i];
  }
  if (!(sw > 0.0) || !isfinite(sw)) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  double sum;
  rc = rad__stack_backward(&S, ws, n, x, NULL, weights, 1.0 / sw, NULL, grad, &sum, NULL);
  if (rc == RAD_OK && weighted_mean_log_prob) *weighted_mean_log_prob = sum / sw;
  return rc;
}
int rad_flow_grad_weighted(const rad_flow *F, size_t n, const float *x, const float *weights,
                           float *grad, double *weighted_mean_log_prob) {
  return rad_flow_grad_weighted_ws(F, NULL, n, x, weights, grad, weighted_mean_log_prob);
}

int rad_flow_gate_probs(const rad_flow *F, size_t n, const float *x, float *probs) {
  if (!F) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!probs) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  int rc = rad__stack_forward(&S, NULL, n, x, NULL, NULL, NULL, NULL, probs);
  /* where the flow overflows inside, the gating network's inputs are not
     numbers: say so rather than hand NaN to the caller */
  if (rc == RAD_OK && !rad__all_finite(probs, n * F->n_labels * 3)) rc = RAD_EOVERFLOW;
  return rc;
}

int rad_flow_sample_component(const rad_flow *F, uint64_t seed, const int32_t *k, size_t n,
                              size_t max_attempts, float *x, float *z, double *acceptance) {
  if (!F) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  return rad__stack_sample_component(&S, NULL, seed, k, n, max_attempts, x, z, acceptance);
}

int rad_flow_score_ws(const rad_flow *F, rad_workspace *ws, size_t n,
                      const float *x, float *score, float *log_prob) {
  if (!F) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!score) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  int rc = rad__stack_backward(&S, ws, n, x, NULL, NULL, 1.0, score, NULL, NULL, log_prob);
  /* far in the tails (log p = -inf) the score is not a number: say so
     rather than hand NaN to the caller */
  if (rc == RAD_OK && !rad__all_finite(score, n * F->dim)) rc = RAD_EOVERFLOW;
  return rc;
}
int rad_flow_score(const rad_flow *F, size_t n, const float *x, float *score,
                   float *log_prob) {
  return rad_flow_score_ws(F, NULL, n, x, score, log_prob);
}

/* ---- workspaces ------------------------------------------------------- */

int rad_workspace_create(const rad_flow *F, size_t max_batch,
                         rad_workspace **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (!F || max_batch == 0) return RAD_EINVAL;
  rad__stack S = rad__flow_stack(F);
  const size_t chunk = (RAD_MIN(max_batch, (size_t)RAD__CHUNK_MAX) + RAD__PAD - 1) / RAD__PAD * RAD__PAD;
  size_t b = rad__stack_scratch_bytes(&S, RAD__MODE_GRAD, chunk);
  if (b == SIZE_MAX) return RAD_ETOOBIG;
  rad_workspace *ws = calloc(1, sizeof(*ws));
  if (!ws) return RAD_ENOMEM;
  ws->mem = malloc(b ? b : 1);
  if (!ws->mem) {
    free(ws);
    return RAD_ENOMEM;
  }
  ws->cap = b;
  ws->max_batch = max_batch;
  ws->threads = 1;
  *out = ws;
  return RAD_OK;
}

void rad_workspace_free(rad_workspace *ws) {
  if (!ws) return;
  rad__pool_free(ws->pool);
  free(ws->mem);
  free(ws);
}

int rad_workspace_set_option(rad_workspace *ws, int option, double value) {
  if (!ws || option != RAD_OPTION_THREADS) return RAD_EINVAL;
  int rc = rad__option_valid(option, value);
  if (rc) return rc;
  const size_t T = (size_t)value;
  if (T == ws->threads) return RAD_OK;
  size_t bytes;
  if (!rad__mul_size(T, ws->cap, &bytes)) return RAD_ETOOBIG;
  unsigned char *mem = malloc(bytes ? bytes : 1);
  if (!mem) return RAD_ENOMEM;
  rad__pool *pool = NULL;
  if (T > 1 && !(pool = rad__pool_create(T))) {
    free(mem);
    return RAD_ENOMEM;
  }
  rad__pool_free(ws->pool);
  free(ws->mem);
  ws->mem = mem;
  ws->pool = pool;
  ws->threads = T;
  return RAD_OK;
}

int rad_workspace_get_option(const rad_workspace *ws, int option, double *value) {
  if (!ws || !value || option != RAD_OPTION_THREADS) return RAD_EINVAL;
  *value = (double)ws->threads;
  return RAD_OK;
}

size_t rad_workspace_max_batch(const rad_workspace *ws) {
  return ws ? ws->max_batch : 0;
}
size_t rad_workspace_size(const rad_workspace *ws) { return ws ? ws->cap * ws->threads : 0; }
