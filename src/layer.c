/* Coupling layers on feature-major chunks: the RAD layer (MODEL.md
   section 4) and the affine REAL NVP layer (section 5). Forward, backward
   (every gradient path of section 6) and inverse / sampling. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "foldmath.h"
#include "layer.h"

void rad__default_mask(size_t dim, size_t layer_index, uint8_t *mask) {
  for (size_t i = 0; i < dim; i++)
    mask[i] = dim == 1 ? 1 : (uint8_t)((i + layer_index) % 2 == 1);
}

size_t rad__layer_num_labels(const rad__layer *L) {
  return L->kind == RAD_LAYER_RAD ? L->d2 : 0;
}

size_t rad__layer_cond_out(const rad__layer *L) {
  return (L->kind == RAD_LAYER_RAD ? RAD__O_RAD_BLOCKS : RAD__O_AFFINE_BLOCKS) * L->d2;
}

static int add_size(size_t *acc, size_t v) {
  if (*acc > SIZE_MAX - v) return 0;
  *acc += v;
  return 1;
}

int rad__layer_init(rad__layer *L, int kind, size_t dim, const uint8_t *mask,
                    size_t mask_len, size_t hidden, size_t gate_hidden) {
  memset(L, 0, sizeof(*L));
  if (kind != RAD_LAYER_RAD && kind != RAD_LAYER_AFFINE) return RAD_EINVAL;
  if (dim == 0 || hidden == 0) return RAD_EINVAL;
  if (kind == RAD_LAYER_RAD && gate_hidden == 0) return RAD_EINVAL;
  if (mask == NULL && mask_len != 0) return RAD_EMASK;
  if (mask != NULL && mask_len != dim) return RAD_EMASK;
  size_t d2 = 0;
  if (mask) {
    for (size_t i = 0; i < dim; i++) {
      if (mask[i] > 1) return RAD_EMASK;
      d2 += mask[i];
    }
    if (d2 == 0) return RAD_EMASK;
  }
  if (dim > SIZE_MAX / 16 || hidden > SIZE_MAX / 16 || gate_hidden > SIZE_MAX / 16)
    return RAD_ETOOBIG;
  L->kind = kind;
  L->dim = dim;
  L->bound = RAD_DEFAULT_LOGIT_BOUND;
  L->mask = malloc(dim);
  L->idx1 = malloc(dim * sizeof(size_t));
  L->idx2 = malloc(dim * sizeof(size_t));
  if (!L->mask || !L->idx1 || !L->idx2) {
    rad__layer_free(L);
    return RAD_ENOMEM;
  }
  if (mask)
    memcpy(L->mask, mask, dim);
  else
    rad__default_mask(dim, 0, L->mask);
  for (size_t i = 0; i < dim; i++) {
    if (L->mask[i])
      L->idx2[L->d2++] = i;
    else
      L->idx1[L->d1++] = i;
  }
  L->cond.in = L->d1;
  L->cond.hidden = hidden;
  L->cond.out = rad__layer_cond_out(L);
  size_t np = 0;
  if (!rad__mlp_params_ok(&L->cond)) goto too_big;
  np = rad__mlp_num_params(&L->cond);
  L->off_scale = np;
  if (kind == RAD_LAYER_RAD) {
    if (!add_size(&np, 2 * L->d2)) goto too_big;
    L->off_gate = np;
    L->gate.in = dim;
    L->gate.hidden = gate_hidden;
    L->gate.out = 3 * L->d2;
    if (!rad__mlp_params_ok(&L->gate)) goto too_big;
    if (!add_size(&np, rad__mlp_num_params(&L->gate))) goto too_big;
  } else {
    if (!add_size(&np, L->d2)) goto too_big;
    L->off_gate = np;
  }
  size_t bytes;
  if (!rad__mul_size(np, sizeof(float), &bytes)) goto too_big;
  L->n_params = np;
  return RAD_OK;
too_big:
  rad__layer_free(L);
  return RAD_ETOOBIG;
}

void rad__layer_free(rad__layer *L) {
  if (!L) return;
  free(L->mask);
  free(L->idx1);
  free(L->idx2);
  L->mask = NULL;
  L->idx1 = L->idx2 = NULL;
}

int rad__layer_copy(rad__layer *dst, const rad__layer *src) {
  *dst = *src;
  dst->mask = malloc(src->dim);
  dst->idx1 = malloc(src->dim * sizeof(size_t));
  dst->idx2 = malloc(src->dim * sizeof(size_t));
  if (!dst->mask || !dst->idx1 || !dst->idx2) {
    rad__layer_free(dst);
    return RAD_ENOMEM;
  }
  memcpy(dst->mask, src->mask, src->dim);
  memcpy(dst->idx1, src->idx1, src->dim * sizeof(size_t));
  memcpy(dst->idx2, src->idx2, src->dim * sizeof(size_t));
  return RAD_OK;
}

void rad__layer_init_params(const rad__layer *L, float *p, uint64_t seed,
                            uint32_t stream) {
  rad__mlp_init(&L->cond, p, seed, 2 * stream);
  float *c = p + L->off_scale;
  size_t nc = L->kind == RAD_LAYER_RAD ? 2 * L->d2 : L->d2;
  for (size_t j = 0; j < nc; j++) c[j] = 1.0f;
  if (L->kind == RAD_LAYER_RAD) rad__mlp_init(&L->gate, p + L->off_gate, seed, 2 * stream + 1);
}

void rad__layer_cache_take(const rad__layer *L, size_t m, rad__arena *a,
                           rad__lcache *c) {
  memset(c, 0, sizeof(*c));
  c->X1 = rad__arena_take(a, L->d1 * m, sizeof(float));
  c->Hc = rad__arena_take(a, L->cond.hidden * m, sizeof(float));
  c->O = rad__arena_take(a, L->cond.out * m, sizeof(float));
  if (L->kind == RAD_LAYER_RAD) {
    c->U = rad__arena_take(a, L->d2 * m, sizeof(float));
    c->ZH = rad__arena_take(a, L->d2 * m, sizeof(float));
    c->Hg = rad__arena_take(a, L->gate.hidden * m, sizeof(float));
    c->GL = rad__arena_take(a, L->gate.out * m, sizeof(float));
    c->P = rad__arena_take(a, L->d2 * m, 1);
  }
}

/* ---- shared pieces ------------------------------------------------------ */

static void gather_rows(const float *Z, const size_t *idx, size_t cnt,
                        size_t m, float *out) {
  for (size_t r = 0; r < cnt; r++) memcpy(out + r * m, Z + idx[r] * m, m * sizeof(float));
}

/* Row pointer of block `blk`, unit j in the conditioner output. */
static inline float *orow(float *O, size_t d2, size_t m, int blk, size_t j) {
  return O + ((size_t)blk * d2 + j) * m;
}
static inline const float *corow(const float *O, size_t d2, size_t m, int blk,
                                 size_t j) {
  return O + ((size_t)blk * d2 + j) * m;
}

/* Transforms the raw q rows of unit j into the clamp's tanh values (or
   leaves them for B = 0) and the r rows into tanh(r). */
static void squash_outputs(const rad__layer *L, float *O, size_t m) {
  const size_t d2 = L->d2;
  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++) {
      float *r = orow(O, d2, m, RAD__O_AR, j);
      for (size_t i = 0; i < m; i++) r[i] = tanhf(r[i]);
    }
    return;
  }
  const float B = L->bound, iB = B > 0.0f ? 1.0f / B : 0.0f;
  for (size_t j = 0; j < d2; j++) {
    float *r1 = orow(O, d2, m, RAD__O_R1, j), *r2 = orow(O, d2, m, RAD__O_R2, j);
    for (size_t i = 0; i < m; i++) {
      r1[i] = tanhf(r1[i]);
      r2[i] = tanhf(r2[i]);
    }
    if (B > 0.0f) {
      for (int c = 0; c < 6; c++) {
        float *q = orow(O, d2, m, RAD__O_QP + c, j);
        for (size_t i = 0; i < m; i++) q[i] = tanhf(q[i] * iB);
      }
    }
  }
}

/* The fold logits of unit j, column i, from the squashed outputs. */
static inline void fold_logits(const float *O, size_t d2, size_t m, size_t j,
                               size_t i, float B, float lp[3], float lm[3]) {
  const float s = B > 0.0f ? B : 1.0f;
  for (int c = 0; c < 3; c++) {
    lp[c] = s * corow(O, d2, m, RAD__O_QP + c, j)[i];
    lm[c] = s * corow(O, d2, m, RAD__O_QM + c, j)[i];
  }
}

/* ---- forward ------------------------------------------------------------ */

void rad__layer_forward(const rad__layer *L, const float *p, size_t m,
                        const float *Zin, float *Zout, rad__lcache *c,
                        double *ld, int32_t *k, size_t kstride) {
  const size_t d2 = L->d2;
  gather_rows(Zin, L->idx1, L->d1, m, c->X1);
  rad__mlp_forward(&L->cond, p, m, c->X1, c->Hc, c->O);
  squash_outputs(L, c->O, m);
  if (Zout != Zin)
    for (size_t r = 0; r < L->d1; r++)
      memcpy(Zout + L->idx1[r] * m, Zin + L->idx1[r] * m, m * sizeof(float));
  const float *cs = p + L->off_scale;

  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++) {
      const float *T = orow(c->O, d2, m, RAD__O_AR, j), *t = orow(c->O, d2, m, RAD__O_AT, j);
      const float *x2 = Zin + L->idx2[j] * m;
      float *z2 = Zout + L->idx2[j] * m;
      const float cj = cs[j];
      for (size_t i = 0; i < m; i++) {
        float s = cj * T[i];
        z2[i] = x2[i] * expf(s) + t[i];
        ld[i] += s;
      }
    }
    return;
  }

  const float B = L->bound;
  for (size_t j = 0; j < d2; j++) {
    const float *T1 = orow(c->O, d2, m, RAD__O_R1, j), *t1 = orow(c->O, d2, m, RAD__O_T1, j);
    const float *T2 = orow(c->O, d2, m, RAD__O_R2, j), *t2 = orow(c->O, d2, m, RAD__O_T2, j);
    const float *x2 = Zin + L->idx2[j] * m;
    float *z2 = Zout + L->idx2[j] * m;
    float *U = c->U + j * m, *ZH = c->ZH + j * m;
    int8_t *P = c->P + j * m;
    const float c1 = cs[j], c2 = cs[d2 + j];
    for (size_t i = 0; i < m; i++) {
      float lp[3], lm[3], zh, ls;
      rad__fold_par f;
      fold_logits(c->O, d2, m, j, i, B, lp, lm);
      rad__fold_par_make(lp, lm, &f);
      float s1 = c1 * T1[i], s2 = c2 * T2[i];
      float u = x2[i] * expf(s1) + t1[i];
      int pc = rad__fold_fwd(&f, u, &zh, &ls);
      z2[i] = zh * expf(s2) + t2[i];
      U[i] = u;
      ZH[i] = zh;
      P[i] = (int8_t)pc;
      ld[i] += (double)(s1 + s2 + ls);
      if (k) k[i * kstride + j] = rad__piece_label(pc);
    }
  }

  /* gating term: log p(k | z), on the full layer output */
  rad__mlp_forward(&L->gate, p + L->off_gate, m, Zout, c->Hg, c->GL);
  for (size_t j = 0; j < d2; j++) {
    const float *ZH = c->ZH + j * m;
    const int8_t *P = c->P + j * m;
    const float *g0 = c->GL + j * m, *g1 = c->GL + (d2 + j) * m, *g2 = c->GL + (2 * d2 + j) * m;
    for (size_t i = 0; i < m; i++) {
      if (!rad__piece_inner(P[i])) continue;
      float lp[3], lm[3], g[3] = {g0[i], g1[i], g2[i]}, sm[3];
      rad__gate_w w;
      fold_logits(c->O, d2, m, j, i, B, lp, lm);
      rad__gate_weights(ZH[i], &w);
      ld[i] += (double)rad__gate_logp(&w, g, lp, lm, P[i], sm);
    }
  }
}

/* ---- backward ----------------------------------------------------------- */

static void backward_affine(const rad__layer *L, const float *p, size_t m,
                            const float *Zin, const rad__lcache *c,
                            const float *w, float *gZ, float *gp,
                            rad__bscratch *s) {
  const size_t d2 = L->d2;
  const float *cs = p + L->off_scale;
  for (size_t j = 0; j < d2; j++) {
    const float *T = corow(c->O, d2, m, RAD__O_AR, j);
    const float *x2 = Zin + L->idx2[j] * m;
    float *gz2 = gZ + L->idx2[j] * m;
    float *gr = orow(s->gO, d2, m, RAD__O_AR, j), *gt = orow(s->gO, d2, m, RAD__O_AT, j);
    const float cj = cs[j];
    double gc = 0.0;
    for (size_t i = 0; i < m; i++) {
      float es = expf(cj * T[i]);
      float g = gz2[i];
      float gs = g * x2[i] * es + w[i];
      gr[i] = gs * cj * (1.0f - T[i] * T[i]);
      gt[i] = g;
      gc += (double)(gs * T[i]);
      gz2[i] = g * es;
    }
    if (gp) gp[L->off_scale + j] += (float)gc;
  }
}

static void backward_rad(const rad__layer *L, const float *p, size_t m,
                         const float *Zin, const float *Zout,
                         const rad__lcache *c, const float *w, float *gZ,
                         float *gp, rad__bscratch *s) {
  const size_t d2 = L->d2;
  const float B = L->bound;
  const float *cs = p + L->off_scale;

  /* Pass 1: the gating term. dL/dg into gGL, the direct dL/dl+- into the
     q rows of gO, dL/dzh through the trigonometric weights into gZh. */
  for (size_t j = 0; j < d2; j++) {
    const float *ZH = c->ZH + j * m;
    const int8_t *P = c->P + j * m;
    const float *g0 = c->GL + j * m, *g1 = c->GL + (d2 + j) * m, *g2 = c->GL + (2 * d2 + j) * m;
    float *gg0 = s->gGL + j * m, *gg1 = s->gGL + (d2 + j) * m, *gg2 = s->gGL + (2 * d2 + j) * m;
    float *gzh = s->gZh + j * m;
    float *gq[6];
    for (int q = 0; q < 6; q++) gq[q] = orow(s->gO, d2, m, RAD__O_QP + q, j);
    for (size_t i = 0; i < m; i++) {
      float gg[3] = {0, 0, 0}, glp[3] = {0, 0, 0}, glm[3] = {0, 0, 0}, gz = 0.0f;
      if (rad__piece_inner(P[i])) {
        float lp[3], lm[3], g[3] = {g0[i], g1[i], g2[i]}, sm[3];
        rad__gate_w wt;
        fold_logits(c->O, d2, m, j, i, B, lp, lm);
        rad__gate_weights(ZH[i], &wt);
        (void)rad__gate_logp(&wt, g, lp, lm, P[i], sm);
        gz = rad__gate_bwd(&wt, g, lp, lm, P[i], sm, w[i], gg, glp, glm);
      }
      gg0[i] = gg[0];
      gg1[i] = gg[1];
      gg2[i] = gg[2];
      for (int q = 0; q < 3; q++) {
        gq[q][i] = glp[q];
        gq[3 + q][i] = glm[q];
      }
      gzh[i] = gz;
    }
  }
  /* The gating network: its parameters, and dL/dz through its input. */
  rad__mlp_backward(&L->gate, p + L->off_gate, m, Zout, c->Hg, s->gGL, s->gH,
                    s->gX, gp ? gp + L->off_gate : NULL);
  for (size_t r = 0; r < L->dim * m; r++) gZ[r] += s->gX[r];

  /* Pass 2: post-affine, fold, pre-affine, clamp and tanh scales. */
  for (size_t j = 0; j < d2; j++) {
    const float *T1 = corow(c->O, d2, m, RAD__O_R1, j), *T2 = corow(c->O, d2, m, RAD__O_R2, j);
    const float *U = c->U + j * m, *ZH = c->ZH + j * m;
    const int8_t *P = c->P + j * m;
    const float *x2 = Zin + L->idx2[j] * m;
    const float *gzh_gate = s->gZh + j * m;
    float *gz2 = gZ + L->idx2[j] * m;
    float *gr1 = orow(s->gO, d2, m, RAD__O_R1, j), *gt1 = orow(s->gO, d2, m, RAD__O_T1, j);
    float *gr2 = orow(s->gO, d2, m, RAD__O_R2, j), *gt2 = orow(s->gO, d2, m, RAD__O_T2, j);
    float *gq[6];
    const float *Tq[6];
    for (int q = 0; q < 6; q++) {
      gq[q] = orow(s->gO, d2, m, RAD__O_QP + q, j);
      Tq[q] = corow(c->O, d2, m, RAD__O_QP + q, j);
    }
    const float c1 = cs[j], c2 = cs[d2 + j];
    double gc1 = 0.0, gc2 = 0.0;
    for (size_t i = 0; i < m; i++) {
      float lp[3], lm[3], glp[3], glm[3];
      rad__fold_par f;
      fold_logits(c->O, d2, m, j, i, B, lp, lm);
      rad__fold_par_make(lp, lm, &f);
      for (int q = 0; q < 3; q++) {
        glp[q] = gq[q][i];
        glm[q] = gq[3 + q][i];
      }
      const float wi = w[i], g = gz2[i];
      const float s1 = c1 * T1[i], s2 = c2 * T2[i];
      const float es1 = expf(s1), es2 = expf(s2);
      float gzh = g * es2 + gzh_gate[i];
      float gs2 = g * ZH[i] * es2 + wi;
      float gu = rad__fold_bwd(&f, U[i], P[i], gzh, wi, glp, glm);
      float gs1 = gu * x2[i] * es1 + wi;
      gr1[i] = gs1 * c1 * (1.0f - T1[i] * T1[i]);
      gt1[i] = gu;
      gr2[i] = gs2 * c2 * (1.0f - T2[i] * T2[i]);
      gt2[i] = g;
      gc1 += (double)(gs1 * T1[i]);
      gc2 += (double)(gs2 * T2[i]);
      if (B > 0.0f) {
        for (int q = 0; q < 3; q++) {
          gq[q][i] = glp[q] * (1.0f - Tq[q][i] * Tq[q][i]);
          gq[3 + q][i] = glm[q] * (1.0f - Tq[3 + q][i] * Tq[3 + q][i]);
        }
      } else {
        for (int q = 0; q < 3; q++) {
          gq[q][i] = glp[q];
          gq[3 + q][i] = glm[q];
        }
      }
      gz2[i] = gu * es1;
    }
    if (gp) {
      gp[L->off_scale + j] += (float)gc1;
      gp[L->off_scale + d2 + j] += (float)gc2;
    }
  }
}

void rad__layer_backward(const rad__layer *L, const float *p, size_t m,
                         const float *Zin, const float *Zout,
                         const rad__lcache *c, const float *w, float *gZ,
                         float *gp, rad__bscratch *s) {
  if (L->kind == RAD_LAYER_AFFINE)
    backward_affine(L, p, m, Zin, c, w, gZ, gp, s);
  else
    backward_rad(L, p, m, Zin, Zout, c, w, gZ, gp, s);
  /* The conditioner: its parameters, and dL/dx1 through its input. */
  rad__mlp_backward(&L->cond, p, m, c->X1, c->Hc, s->gO, s->gH,
                    L->d1 ? s->gX : NULL, gp);
  for (size_t r = 0; r < L->d1; r++) {
    float *gz = gZ + L->idx1[r] * m;
    const float *gx = s->gX + r * m;
    for (size_t i = 0; i < m; i++) gz[i] += gx[i];
  }
}

/* ---- inverse and sampling ----------------------------------------------- */

int rad__layer_inverse(const rad__layer *L, const float *p, size_t m,
                       float *Z, rad__lcache *c, const int32_t *k,
                       size_t kstride, const rad__draw *draw, int32_t *kout,
                       size_t koutstride) {
  const size_t d2 = L->d2;
  const float *cs = p + L->off_scale;
  gather_rows(Z, L->idx1, L->d1, m, c->X1);
  rad__mlp_forward(&L->cond, p, m, c->X1, c->Hc, c->O);
  squash_outputs(L, c->O, m);

  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++) {
      const float *T = orow(c->O, d2, m, RAD__O_AR, j), *t = orow(c->O, d2, m, RAD__O_AT, j);
      float *z2 = Z + L->idx2[j] * m;
      const float cj = cs[j];
      for (size_t i = 0; i < m; i++) z2[i] = (z2[i] - t[i]) * expf(-cj * T[i]);
    }
    return RAD_OK;
  }

  const float B = L->bound;
  /* The gating network sees the layer output: evaluate before writing. */
  if (draw) rad__mlp_forward(&L->gate, p + L->off_gate, m, Z, c->Hg, c->GL);
  for (size_t j = 0; j < d2; j++) {
    const float *T1 = orow(c->O, d2, m, RAD__O_R1, j), *t1 = orow(c->O, d2, m, RAD__O_T1, j);
    const float *T2 = orow(c->O, d2, m, RAD__O_R2, j), *t2 = orow(c->O, d2, m, RAD__O_T2, j);
    float *z2 = Z + L->idx2[j] * m;
    const float c1 = cs[j], c2 = cs[d2 + j];
    for (size_t i = 0; i < m; i++) {
      float lp[3], lm[3];
      rad__fold_par f;
      fold_logits(c->O, d2, m, j, i, B, lp, lm);
      const float s1 = c1 * T1[i], s2 = c2 * T2[i];
      const float zh = (z2[i] - t2[i]) * expf(-s2);
      int pc;
      if (draw) {
        if (zh < -1.0f) {
          pc = RAD__PIECE_L;
        } else if (zh > 1.0f) {
          pc = RAD__PIECE_R;
        } else {
          float g[3], sm[3];
          rad__gate_w wt;
          for (int q = 0; q < 3; q++) g[q] = c->GL[(q * d2 + j) * m + i];
          rad__gate_weights(zh, &wt);
          (void)rad__gate_logp(&wt, g, lp, lm, 1, sm);
          size_t row = draw->row0 + i, lab = draw->label_off + j;
          uint32_t r[4];
          rad__philox(draw->seed, (uint32_t)row, (uint32_t)((uint64_t)row >> 32),
                      (uint32_t)lab, RAD__TAG_LABEL ^ (uint32_t)((uint64_t)lab >> 32), r);
          double uu = rad__u01(r[0]);
          pc = uu < (double)sm[0] ? 1 : (uu < (double)sm[0] + (double)sm[1] ? 2 : 3);
        }
      } else {
        /* zh carries the rounding of (z2 - t2) exp(-s2) and of the
           layers inverted before this one: the tolerance counts 64 ulps
           of the operands, 64 eps (|z2| + |t2|) exp(-s2). A label from
           another point is off by far more. */
        const float slack = 64.0f * FLT_EPSILON * (fabsf(z2[i]) + fabsf(t2[i])) * expf(-s2);
        pc = rad__fold_inv_piece(zh, k[i * kstride + j], slack);
        if (pc < 0) return RAD_ELABEL;
      }
      rad__fold_par_make(lp, lm, &f);
      float u = rad__fold_inv(&f, zh, pc);
      z2[i] = (u - t1[i]) * expf(-s1);
      if (kout) kout[i * koutstride + j] = rad__piece_label(pc);
    }
  }
  return RAD_OK;
}
