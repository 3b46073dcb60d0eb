/* Coupling layers on feature-major chunks: the RAD layer (MODEL.md
   section 4) and the affine REAL NVP layer (section 5). Forward, backward
   (every gradient path of section 6) and inverse / sampling. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "foldmath.h"
#include "kern.h"
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
  /* the model file format's limits (docs/file-format.md): a layer librad
     builds can always be saved and loaded back */
  if (dim > RAD__MAX_DIM || hidden > RAD__MAX_WIDTH || gate_hidden > RAD__MAX_WIDTH)
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
                           rad__lcache *c, int for_grad) {
  memset(c, 0, sizeof(*c));
  c->X1 = rad__arena_take(a, L->d1 * m, sizeof(float));
  c->Hc = rad__arena_take(a, L->cond.hidden * m, sizeof(float));
  c->O = rad__arena_take(a, L->cond.out * m, sizeof(float));
  if (L->kind == RAD_LAYER_RAD) {
    c->U = rad__arena_take(a, L->d2 * m, sizeof(float));
    c->ZH = rad__arena_take(a, L->d2 * m, sizeof(float));
    c->Hg = rad__arena_take(a, L->gate.hidden * m, sizeof(float));
    c->GL = rad__arena_take(a, L->gate.out * m, sizeof(float));
    c->P = rad__arena_take(a, L->d2 * m, sizeof(int32_t));
    if (for_grad) {
      c->FP = rad__arena_take(a, RAD__FP_ROWS * L->d2 * m, sizeof(float));
      if (!a->base) c->FP = NULL; /* measuring */
    }
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

/* Squashes the conditioner output in place: r rows to tanh(r), q rows to
   tanh(q / B) (left as q when B = 0). */
static void squash_outputs(const rad__kernels *K, const rad__layer *L, float *O, size_t m) {
  const size_t d2 = L->d2;
  if (L->kind == RAD_LAYER_AFFINE) {
    K->tanh_rows(orow(O, d2, m, RAD__O_AR, 0), d2 * m, 1.0f);
    return;
  }
  K->tanh_rows(orow(O, d2, m, RAD__O_R1, 0), d2 * m, 1.0f);
  K->tanh_rows(orow(O, d2, m, RAD__O_R2, 0), d2 * m, 1.0f);
  if (L->bound > 0.0f) K->tanh_rows(orow(O, d2, m, RAD__O_QP, 0), 6 * d2 * m, 1.0f / L->bound);
}

/* The rows of unit j for the kernels. */
static rad__unit unit_rows(const rad__layer *L, const float *p, const float *O, size_t m, size_t j) {
  const size_t d2 = L->d2;
  const float *cs = p + L->off_scale;
  rad__unit r;
  r.T1 = corow(O, d2, m, RAD__O_R1, j);
  r.t1 = corow(O, d2, m, RAD__O_T1, j);
  for (int q = 0; q < 6; q++) r.Tq[q] = corow(O, d2, m, RAD__O_QP + q, j);
  r.T2 = corow(O, d2, m, RAD__O_R2, j);
  r.t2 = corow(O, d2, m, RAD__O_T2, j);
  r.c1 = cs[j];
  r.c2 = cs[d2 + j];
  r.clamped = L->bound > 0.0f;
  r.Bs = r.clamped ? L->bound : 1.0f;
  return r;
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
                        double *ld, int32_t *k, size_t kstride, size_t mk) {
  const rad__kernels *K = rad__kern();
  const size_t d2 = L->d2;
  gather_rows(Zin, L->idx1, L->d1, m, c->X1);
  rad__mlp_forward(&L->cond, p, m, c->X1, c->Hc, c->O);
  squash_outputs(K, L, c->O, m);
  if (Zout != Zin)
    for (size_t r = 0; r < L->d1; r++)
      memcpy(Zout + L->idx1[r] * m, Zin + L->idx1[r] * m, m * sizeof(float));
  const float *cs = p + L->off_scale;

  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++)
      K->affine_fwd(m, cs[j], orow(c->O, d2, m, RAD__O_AR, j), orow(c->O, d2, m, RAD__O_AT, j),
                    Zin + L->idx2[j] * m, Zout + L->idx2[j] * m, ld);
    return;
  }
  for (size_t j = 0; j < d2; j++) {
    rad__unit r = unit_rows(L, p, c->O, m, j);
    K->rad_fwd(&r, m, Zin + L->idx2[j] * m, Zout + L->idx2[j] * m, c->U + j * m, c->ZH + j * m,
               c->P + j * m, ld, c->FP ? c->FP + j * RAD__FP_ROWS * m : NULL);
    if (k) {
      const int32_t *P = c->P + j * m;
      for (size_t i = 0; i < mk; i++) k[i * kstride + j] = rad__piece_label(P[i]);
    }
  }
  /* gating term: log p(k | z), on the full layer output */
  rad__mlp_forward(&L->gate, p + L->off_gate, m, Zout, c->Hg, c->GL);
  for (size_t j = 0; j < d2; j++) {
    rad__unit r = unit_rows(L, p, c->O, m, j);
    K->rad_gate_fwd(&r, m, c->ZH + j * m, c->P + j * m, c->GL + j * m, c->GL + (d2 + j) * m,
                    c->GL + (2 * d2 + j) * m, ld);
  }
}

/* ---- backward ----------------------------------------------------------- */

void rad__layer_backward(const rad__layer *L, const float *p, size_t m,
                         const float *Zin, const float *Zout,
                         const rad__lcache *c, const float *w, float *gZ,
                         float *gp, rad__bscratch *s) {
  const rad__kernels *K = rad__kern();
  const size_t d2 = L->d2;
  const float *cs = p + L->off_scale;
  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++) {
      double gc = 0.0;
      K->affine_bwd(m, cs[j], corow(c->O, d2, m, RAD__O_AR, j), Zin + L->idx2[j] * m, w,
                    gZ + L->idx2[j] * m, orow(s->gO, d2, m, RAD__O_AR, j),
                    orow(s->gO, d2, m, RAD__O_AT, j), &gc);
      if (gp) gp[L->off_scale + j] += (float)gc;
    }
  } else {
    /* Pass 1: the gating term. dL/dg into gGL, the direct dL/dl+- into the
       q rows of gO, dL/dzh through the trigonometric weights into gZh. */
    for (size_t j = 0; j < d2; j++) {
      rad__unit r = unit_rows(L, p, c->O, m, j);
      float *gq[6];
      for (int q = 0; q < 6; q++) gq[q] = orow(s->gO, d2, m, RAD__O_QP + q, j);
      K->rad_bwd_gate(&r, m, c->ZH + j * m, c->P + j * m, c->GL + j * m, c->GL + (d2 + j) * m,
                      c->GL + (2 * d2 + j) * m, w, s->gGL + j * m, s->gGL + (d2 + j) * m,
                      s->gGL + (2 * d2 + j) * m, gq, s->gZh + j * m);
    }
    /* The gating network: its parameters, and dL/dz through its input. */
    rad__mlp_backward(&L->gate, p + L->off_gate, m, Zout, c->Hg, s->gGL, s->gH, s->gX,
                      gp ? gp + L->off_gate : NULL);
    K->add_to(gZ, s->gX, L->dim * m);
    /* Pass 2: post-affine, fold, pre-affine, clamp and tanh scales. */
    for (size_t j = 0; j < d2; j++) {
      rad__unit r = unit_rows(L, p, c->O, m, j);
      float *gq[6];
      for (int q = 0; q < 6; q++) gq[q] = orow(s->gO, d2, m, RAD__O_QP + q, j);
      double gc1 = 0.0, gc2 = 0.0;
      /* gGL is free again (the gate's backward has consumed it): scratch */
      K->rad_bwd_fold(&r, m, c->U + j * m, c->ZH + j * m, c->P + j * m, Zin + L->idx2[j] * m,
                      s->gZh + j * m, s->gGL + j * m, w, gZ + L->idx2[j] * m, orow(s->gO, d2, m, RAD__O_R1, j),
                      orow(s->gO, d2, m, RAD__O_T1, j), gq, orow(s->gO, d2, m, RAD__O_R2, j),
                      orow(s->gO, d2, m, RAD__O_T2, j), &gc1, &gc2,
                      c->FP + j * RAD__FP_ROWS * m);
      if (gp) {
        gp[L->off_scale + j] += (float)gc1;
        gp[L->off_scale + d2 + j] += (float)gc2;
      }
    }
  }
  (void)cs;
  /* The conditioner: its parameters, and dL/dx1 through its input. */
  rad__mlp_backward(&L->cond, p, m, c->X1, c->Hc, s->gO, s->gH,
                    L->d1 ? s->gX : NULL, gp);
  for (size_t r = 0; r < L->d1; r++) K->add_to(gZ + L->idx1[r] * m, s->gX + r * m, m);
}

/* ---- inverse and sampling ----------------------------------------------- */

int rad__layer_inverse(const rad__layer *L, const float *p, size_t m, size_t mk,
                       float *Z, rad__lcache *c, const int32_t *k,
                       size_t kstride, const rad__draw *draw, int32_t *kout,
                       size_t koutstride, double *logw) {
  const size_t d2 = L->d2;
  const float *cs = p + L->off_scale;
  gather_rows(Z, L->idx1, L->d1, m, c->X1);
  const rad__kernels *K = rad__kern();
  rad__mlp_forward(&L->cond, p, m, c->X1, c->Hc, c->O);
  squash_outputs(K, L, c->O, m);

  if (L->kind == RAD_LAYER_AFFINE) {
    for (size_t j = 0; j < d2; j++)
      K->affine_inv(m, cs[j], orow(c->O, d2, m, RAD__O_AR, j), orow(c->O, d2, m, RAD__O_AT, j),
                    Z + L->idx2[j] * m);
    return RAD_OK;
  }

  const float B = L->bound;
  /* The gating network sees the layer output: evaluate before writing. */
  if (draw || logw) rad__mlp_forward(&L->gate, p + L->off_gate, m, Z, c->Hg, c->GL);
  if (draw) {
    /* Sampling: one uniform per column and unit (counter-based: column
       row0 + i, label label_off + j), then the vector kernel. U is free
       scratch in an inverse pass. */
    for (size_t j = 0; j < d2; j++) {
      float *uu = c->U + j * m;
      const size_t lab = draw->label_off + j;
      for (size_t i = 0; i < m; i++) {
        const size_t row = draw->row0 + i;
        uint32_t r[4];
        rad__philox(draw->seed, (uint32_t)row, (uint32_t)((uint64_t)row >> 32), (uint32_t)lab,
                    RAD__TAG_LABEL ^ (uint32_t)((uint64_t)lab >> 32), r);
        uu[i] = rad__u01f(r[0]);
      }
      rad__unit r = unit_rows(L, p, c->O, m, j);
      int32_t *P = c->P + j * m;
      K->rad_inv_draw(&r, m, Z + L->idx2[j] * m, c->GL + j * m, c->GL + (d2 + j) * m,
                      c->GL + (2 * d2 + j) * m, uu, P);
      if (kout)
        for (size_t i = draw->k0; i < mk; i++)
          kout[(i - draw->k0) * koutstride + j] = rad__piece_label(P[i]);
    }
    return RAD_OK;
  }
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
      if (logw) {
        /* a fixed component: the label's probability given z, or 0 when
           it cannot have produced z (the sample is then rejected) */
        const int32_t kk = k[i * kstride + j];
        pc = rad__fold_inv_piece(zh, kk, 0.0f);
        if (pc < 0) {
          logw[i] = -INFINITY;
          pc = kk; /* any piece: the values are discarded */
        } else if (rad__piece_inner(pc)) {
          float g[3], sm[3];
          rad__gate_w wt;
          for (int q = 0; q < 3; q++) g[q] = c->GL[(q * d2 + j) * m + i];
          rad__gate_weights(zh, &wt);
          logw[i] += (double)rad__gate_logp(&wt, g, lp, lm, pc, sm);
        }
      } else if (i >= mk) {
        /* a padding column: any piece that can hold zh */
        pc = zh < -1.0f ? RAD__PIECE_L : (zh > 1.0f ? RAD__PIECE_R : 1);
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
      if (kout && i < mk) kout[i * koutstride + j] = rad__piece_label(pc);
    }
  }
  return RAD_OK;
}

void rad__layer_gate_probs(const rad__layer *L, const rad__lcache *c, size_t m, size_t mk,
                           float *probs, size_t stride) {
  const size_t d2 = L->d2;
  const float B = L->bound;
  for (size_t j = 0; j < d2; j++) {
    for (size_t i = 0; i < mk; i++) {
      float *out = probs + i * stride + 3 * j;
      const int pc = c->P[j * m + i];
      if (!rad__piece_inner(pc)) {
        const int32_t lab = rad__piece_label(pc);
        for (int q = 0; q < 3; q++) out[q] = q + 1 == lab ? 1.0f : 0.0f;
        continue;
      }
      float lp[3], lm[3], g[3], sm[3];
      rad__gate_w wt;
      fold_logits(c->O, d2, m, j, i, B, lp, lm);
      for (int q = 0; q < 3; q++) g[q] = c->GL[(q * d2 + j) * m + i];
      rad__gate_weights(c->ZH[j * m + i], &wt);
      (void)rad__gate_logp(&wt, g, lp, lm, 1, sm);
      for (int q = 0; q < 3; q++) out[q] = sm[q];
    }
  }
}
