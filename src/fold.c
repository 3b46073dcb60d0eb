/* The rad_fold handle: a bank of normalized folding functions with fixed
   boundary logits (MODEL.md sections 1-3). The kernels are in foldmath.h,
   shared with the coupling layers. */
#include <stdlib.h>

#include "foldmath.h"
#include "internal.h"

struct rad_fold {
  size_t units;
  float *logits; /* units * 6: l+ (3) then l- (3) per unit */
};

int rad_fold_create(size_t units, rad_fold **out) {
  if (!out) return RAD_EINVAL;
  *out = NULL;
  if (units == 0) return RAD_EINVAL;
  size_t b;
  if (!rad__mul_size(units, 6 * sizeof(float), &b)) return RAD_ETOOBIG;
  rad_fold *f = calloc(1, sizeof(*f));
  if (!f) return RAD_ENOMEM;
  f->logits = calloc(units, 6 * sizeof(float));
  if (!f->logits) {
    free(f);
    return RAD_ENOMEM;
  }
  f->units = units;
  *out = f;
  return RAD_OK;
}

void rad_fold_free(rad_fold *f) {
  if (!f) return;
  free(f->logits);
  free(f);
}

size_t rad_fold_units(const rad_fold *f) { return f ? f->units : 0; }

int rad_fold_set_logits(rad_fold *f, const float *logits, size_t len) {
  if (!f || !logits) return RAD_EINVAL;
  if (len != f->units * 6) return RAD_ESIZE;
  if (!rad__all_finite(logits, len)) return RAD_ENONFINITE;
  memcpy(f->logits, logits, len * sizeof(float));
  return RAD_OK;
}

int rad_fold_get_logits(const rad_fold *f, float *logits, size_t len) {
  if (!f || !logits) return RAD_EINVAL;
  if (len != f->units * 6) return RAD_ESIZE;
  memcpy(logits, f->logits, len * sizeof(float));
  return RAD_OK;
}

/* The slopes in double precision, straight from MODEL.md section 1. */
int rad_fold_slopes(const rad_fold *f, size_t unit, double out[7]) {
  if (!f || !out) return RAD_EINVAL;
  if (unit >= f->units) return RAD_EINVAL;
  const float *lp = f->logits + 6 * unit, *lm = lp + 3;
  double d1 = (double)lp[0] - lp[1], d2 = (double)lm[2] - lm[1];
  double mx = d1 > d2 ? d1 : d2;
  if (mx < 0.0) mx = 0.0;
  double la2 = mx + log(exp(-mx) + exp(d1 - mx) + exp(d2 - mx));
  double la1 = la2 + lp[1] - lp[0], la3 = la2 + lm[1] - lm[2];
  double mp = rad__max3(lp[0], lp[1], lp[2]), mm = rad__max3(lm[0], lm[1], lm[2]);
  double lsep = mp + log(exp(lp[0] - mp) + exp(lp[1] - mp) + exp(lp[2] - mp));
  double lsem = mm + log(exp(lm[0] - mm) + exp(lm[1] - mm) + exp(lm[2] - mm));
  out[0] = exp(la1);
  out[1] = exp(la2);
  out[2] = exp(la3);
  out[3] = exp(la1 + lm[0] - lsem);
  out[4] = exp(la3 + lp[2] - lsep);
  out[5] = 2.0 * exp(-la1) - 1.0;
  out[6] = 1.0 - 2.0 * exp(-la3);
  return RAD_OK;
}

static rad__fold_par *make_pars(const rad_fold *f) {
  rad__fold_par *P = malloc(f->units * sizeof(*P));
  if (!P) return NULL;
  for (size_t j = 0; j < f->units; j++)
    rad__fold_par_make(f->logits + 6 * j, f->logits + 6 * j + 3, &P[j]);
  return P;
}

static int check_nu(const rad_fold *f, size_t n) {
  return rad__check_batch(n, f->units * 6, sizeof(float));
}

int rad_fold_forward(const rad_fold *f, size_t n, const float *u, float *zh,
                     int32_t *k, float *log_slope) {
  if (!f) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!u || !zh) return RAD_EINVAL;
  int rc = check_nu(f, n);
  if (rc) return rc;
  const size_t U = f->units;
  if (!rad__all_finite(u, n * U)) return RAD_ENONFINITE;
  rad__fold_par *P = make_pars(f);
  if (!P) return RAD_ENOMEM;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++) {
      float z, ls;
      int pc = rad__fold_fwd(&P[j], u[i * U + j], &z, &ls);
      zh[i * U + j] = z;
      if (k) k[i * U + j] = rad__piece_label(pc);
      if (log_slope) log_slope[i * U + j] = ls;
    }
  free(P);
  return RAD_OK;
}

int rad_fold_inverse(const rad_fold *f, size_t n, const float *zh,
                     const int32_t *k, float *u) {
  if (!f) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!zh || !k || !u) return RAD_EINVAL;
  int rc = check_nu(f, n);
  if (rc) return rc;
  const size_t U = f->units;
  if (!rad__all_finite(zh, n * U)) return RAD_ENONFINITE;
  if (!rad__labels_valid(k, n * U)) return RAD_ELABEL;
  for (size_t i = 0; i < n * U; i++)
    if (rad__fold_inv_piece(zh[i], k[i], 0.0f) < 0) return RAD_ELABEL;
  rad__fold_par *P = make_pars(f);
  if (!P) return RAD_ENOMEM;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++) {
      float z = zh[i * U + j];
      u[i * U + j] = rad__fold_inv(&P[j], z, rad__fold_inv_piece(z, k[i * U + j], 0.0f));
    }
  free(P);
  return RAD_OK;
}

int rad_fold_backward(const rad_fold *f, size_t n, const float *u,
                      const float *gzh, const float *glog_slope, float *gu,
                      float *glogits) {
  if (!f) return RAD_EINVAL;
  const size_t U = f->units;
  if (n == 0) {
    if (glogits) memset(glogits, 0, U * 6 * sizeof(float));
    return RAD_OK;
  }
  if (!u || !gzh) return RAD_EINVAL;
  int rc = check_nu(f, n);
  if (rc) return rc;
  if (!rad__all_finite(u, n * U) || !rad__all_finite(gzh, n * U) ||
      (glog_slope && !rad__all_finite(glog_slope, n * U)))
    return RAD_ENONFINITE;
  rad__fold_par *P = make_pars(f);
  double *acc = calloc(U * 6, sizeof(double));
  if (!P || !acc) {
    free(P);
    free(acc);
    return RAD_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++) {
      const size_t e = i * U + j;
      float z, ls, glp[3] = {0, 0, 0}, glm[3] = {0, 0, 0};
      int pc = rad__fold_fwd(&P[j], u[e], &z, &ls);
      float g = rad__fold_bwd(&P[j], u[e], pc, gzh[e], glog_slope ? glog_slope[e] : 0.0f,
                              glp, glm);
      if (gu) gu[e] = g;
      for (int c = 0; c < 3; c++) {
        acc[6 * j + c] += glp[c];
        acc[6 * j + 3 + c] += glm[c];
      }
    }
  if (glogits)
    for (size_t t = 0; t < U * 6; t++) glogits[t] = (float)acc[t];
  free(P);
  free(acc);
  return RAD_OK;
}

/* Validates (zh, k) pairs for the gating functions: outer zh needs the one
   possible label. */
static int gate_check(size_t len, const float *zh, const int32_t *k) {
  if (!rad__labels_valid(k, len)) return RAD_ELABEL;
  for (size_t e = 0; e < len; e++) {
    if (zh[e] < -1.0f && k[e] != 1) return RAD_ELABEL;
    if (zh[e] > 1.0f && k[e] != 3) return RAD_ELABEL;
  }
  return RAD_OK;
}

int rad_fold_gate_log_prob(const rad_fold *f, size_t n, const float *zh,
                           const float *g, const int32_t *k, float *log_p) {
  if (!f) return RAD_EINVAL;
  if (n == 0) return RAD_OK;
  if (!zh || !g || !k || !log_p) return RAD_EINVAL;
  int rc = check_nu(f, n);
  if (rc) return rc;
  const size_t U = f->units;
  if (!rad__all_finite(zh, n * U) || !rad__all_finite(g, n * U * 3)) return RAD_ENONFINITE;
  if ((rc = gate_check(n * U, zh, k))) return rc;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++) {
      const size_t e = i * U + j;
      if (zh[e] < -1.0f || zh[e] > 1.0f) {
        log_p[e] = 0.0f;
        continue;
      }
      rad__gate_w w;
      float sm[3];
      rad__gate_weights(zh[e], &w);
      log_p[e] = rad__gate_logp(&w, g + 3 * e, f->logits + 6 * j, f->logits + 6 * j + 3,
                                k[e], sm);
    }
  return RAD_OK;
}

int rad_fold_gate_backward(const rad_fold *f, size_t n, const float *zh,
                           const float *g, const int32_t *k,
                           const float *glog_p, float *gzh, float *gg,
                           float *glogits) {
  if (!f) return RAD_EINVAL;
  const size_t U = f->units;
  if (n == 0) {
    if (glogits) memset(glogits, 0, U * 6 * sizeof(float));
    return RAD_OK;
  }
  if (!zh || !g || !k || !glog_p) return RAD_EINVAL;
  int rc = check_nu(f, n);
  if (rc) return rc;
  if (!rad__all_finite(zh, n * U) || !rad__all_finite(g, n * U * 3) ||
      !rad__all_finite(glog_p, n * U))
    return RAD_ENONFINITE;
  if ((rc = gate_check(n * U, zh, k))) return rc;
  double *acc = calloc(U * 6, sizeof(double));
  if (!acc) return RAD_ENOMEM;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < U; j++) {
      const size_t e = i * U + j;
      float ggl[3] = {0, 0, 0}, glp[3] = {0, 0, 0}, glm[3] = {0, 0, 0}, gz = 0.0f;
      if (zh[e] >= -1.0f && zh[e] <= 1.0f) {
        rad__gate_w w;
        float sm[3];
        const float *lp = f->logits + 6 * j, *lm = lp + 3;
        rad__gate_weights(zh[e], &w);
        (void)rad__gate_logp(&w, g + 3 * e, lp, lm, k[e], sm);
        gz = rad__gate_bwd(&w, g + 3 * e, lp, lm, k[e], sm, glog_p[e], ggl, glp, glm);
      }
      if (gzh) gzh[e] = gz;
      if (gg)
        for (int c = 0; c < 3; c++) gg[3 * e + c] = ggl[c];
      for (int c = 0; c < 3; c++) {
        acc[6 * j + c] += glp[c];
        acc[6 * j + 3 + c] += glm[c];
      }
    }
  if (glogits)
    for (size_t t = 0; t < U * 6; t++) glogits[t] = (float)acc[t];
  free(acc);
  return RAD_OK;
}
