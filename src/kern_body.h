/* Body of the kernels of kern.h, included by kern_generic.c and
   kern_avx2.c with KERN(name) defined to give distinct names. */
#include "foldmath.h"
#include "kern.h"

static void KERN(tanh_rows)(float *x, size_t len, float in_scale) {
#pragma omp simd
  for (size_t i = 0; i < len; i++) x[i] = rad__tanhf(x[i] * in_scale);
}

static void KERN(bias_relu)(float *H, const float *b, size_t rows, size_t m) {
  for (size_t r = 0; r < rows; r++) {
    float *h = H + r * m;
    const float br = b[r];
#pragma omp simd
    for (size_t i = 0; i < m; i++) {
      float v = h[i] + br;
      h[i] = v > 0.0f ? v : 0.0f;
    }
  }
}

static void KERN(bias_add)(float *O, const float *b, size_t rows, size_t m) {
  for (size_t r = 0; r < rows; r++) {
    float *o = O + r * m;
    const float br = b[r];
#pragma omp simd
    for (size_t i = 0; i < m; i++) o[i] += br;
  }
}

static void KERN(relu_mask)(float *gH, const float *H, size_t len) {
#pragma omp simd
  for (size_t i = 0; i < len; i++) gH[i] = H[i] > 0.0f ? gH[i] : 0.0f;
}

static void KERN(row_sums_add)(float *g, const float *A, size_t rows, size_t m) {
  for (size_t r = 0; r < rows; r++) {
    const float *a = A + r * m;
    /* float lanes (m is a chunk, at most a few thousand): the vector
       reduction keeps one partial sum per lane */
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < m; i++) acc += a[i];
    g[r] += acc;
  }
}

/* The unit's logit rows and scale as locals (loads through the struct
   inside a loop would stop it from vectorizing). */
#define UNIT_LOCALS(r)                                                          \
  const float Bs_ = (r)->Bs;                                                    \
  const float *const q0_ = (r)->Tq[0], *const q1_ = (r)->Tq[1], *const q2_ = (r)->Tq[2]; \
  const float *const q3_ = (r)->Tq[3], *const q4_ = (r)->Tq[4], *const q5_ = (r)->Tq[5]
#define UNIT_LOGITS(i, lp, lm)                                                  \
  do {                                                                          \
    (lp)[0] = Bs_ * q0_[i];                                                     \
    (lp)[1] = Bs_ * q1_[i];                                                     \
    (lp)[2] = Bs_ * q2_[i];                                                     \
    (lm)[0] = Bs_ * q3_[i];                                                     \
    (lm)[1] = Bs_ * q4_[i];                                                     \
    (lm)[2] = Bs_ * q5_[i];                                                     \
  } while (0)

#define R restrict
#define NOINLINE __attribute__((noinline))

/* The fold logits l+ = Bs q[0..2], l- = Bs q[3..5] of column i and the
   fold's parameters from them (the bounded formulas when the soft clamp
   guarantees |l| <= 20). Shared by the forward and the sampling kernels. */
static inline __attribute__((always_inline)) void KERN(unit_fold_par)(
    size_t i, float Bs, const float *R q0, const float *R q1, const float *R q2,
    const float *R q3, const float *R q4, const float *R q5, int bounded, float lp[3],
    float lm[3], rad__fold_par *f) {
  lp[0] = Bs * q0[i], lp[1] = Bs * q1[i], lp[2] = Bs * q2[i];
  lm[0] = Bs * q3[i], lm[1] = Bs * q4[i], lm[2] = Bs * q5[i];
  if (bounded)
    rad__fold_par_make_bounded(lp, lm, f);
  else
    rad__fold_par_make(lp, lm, f);
}

/* The unit loops below are workers with restrict-qualified rows: the
   rows of a chunk never overlap, and saying so spares the vectorizer
   dozens of run-time alias checks (which it gives up on). */
/* The fold parameters the backward pass needs, cached by a forward pass
   that will be differentiated (15 rows of m floats per unit). */
#define FP_ROWS(fp, m)                                                          \
  float *R f_am = (fp), *R f_a1 = (fp) + (m), *R f_a2 = (fp) + 2 * (m),          \
        *R f_a3 = (fp) + 3 * (m), *R f_ap = (fp) + 4 * (m), *R f_a = (fp) + 5 * (m), \
        *R f_ia1 = (fp) + 6 * (m), *R f_w1 = (fp) + 7 * (m), *R f_w2 = (fp) + 8 * (m), \
        *R f_p0 = (fp) + 9 * (m), *R f_p1 = (fp) + 10 * (m), *R f_p2 = (fp) + 11 * (m), \
        *R f_m0 = (fp) + 12 * (m), *R f_m1 = (fp) + 13 * (m), *R f_m2 = (fp) + 14 * (m)

static inline __attribute__((always_inline)) void KERN(rad_fwd_body)(size_t m, float Bs, const float *R q0, const float *R q1,
                                      const float *R q2, const float *R q3, const float *R q4,
                                      const float *R q5, float c1, const float *R T1,
                                      const float *R t1, float c2, const float *R T2,
                                      const float *R t2, const float *R x2, float *R z2,
                                      float *R U, float *R ZH, int32_t *R P, double *R ld,
                                      float *R f_am, float *R f_a1, float *R f_a2,
                                      float *R f_a3, float *R f_ap, float *R f_a,
                                      float *R f_ia1, float *R f_w1, float *R f_w2,
                                      float *R f_p0, float *R f_p1, float *R f_p2,
                                      float *R f_m0, float *R f_m1, float *R f_m2,
                                      const int store, const int bounded) {
  for (size_t i = 0; i < m; i++) {
    float lp[3], lm[3], zh, ls;
    rad__fold_par f;
    KERN(unit_fold_par)(i, Bs, q0, q1, q2, q3, q4, q5, bounded, lp, lm, &f);
    const float s1 = c1 * T1[i], s2 = c2 * T2[i];
    const float u = x2[i] * rad__expf(s1) + t1[i];
    const int pc = rad__fold_fwd(&f, u, &zh, &ls);
    z2[i] = zh * rad__expf(s2) + t2[i];
    U[i] = u;
    ZH[i] = zh;
    P[i] = (int32_t)pc;
    ld[i] += (double)(s1 + s2 + ls);
    if (store) {
      f_am[i] = f.am, f_a1[i] = f.a1, f_a2[i] = f.a2, f_a3[i] = f.a3, f_ap[i] = f.ap;
      f_a[i] = f.a, f_ia1[i] = f.ia1, f_w1[i] = f.w1, f_w2[i] = f.w2;
      f_p0[i] = f.smp[0], f_p1[i] = f.smp[1], f_p2[i] = f.smp[2];
      f_m0[i] = f.smm[0], f_m1[i] = f.smm[1], f_m2[i] = f.smm[2];
    }
  }
}

#define RAD_FWD_ARGS                                                             \
  size_t m, float Bs, const float *R q0, const float *R q1, const float *R q2,   \
      const float *R q3, const float *R q4, const float *R q5, float c1,         \
      const float *R T1, const float *R t1, float c2, const float *R T2,         \
      const float *R t2, const float *R x2, float *R z2, float *R U, float *R ZH, \
      int32_t *R P, double *R ld
#define RAD_FWD_PASS m, Bs, q0, q1, q2, q3, q4, q5, c1, T1, t1, c2, T2, t2, x2, z2, U, ZH, P, ld

/* four copies: caching or not, bounded logits or not (constants, so
   each copy is its own straight vector loop) */
static NOINLINE void KERN(rad_fwd_w0)(RAD_FWD_ARGS) {
  KERN(rad_fwd_body)(RAD_FWD_PASS, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL, NULL, NULL, 0, 0);
}
static NOINLINE void KERN(rad_fwd_w1)(RAD_FWD_ARGS) {
  KERN(rad_fwd_body)(RAD_FWD_PASS, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL, NULL, NULL, 0, 1);
}
static NOINLINE void KERN(rad_fwd_store_w0)(RAD_FWD_ARGS, float *R fp) {
  FP_ROWS(fp, m);
  KERN(rad_fwd_body)(RAD_FWD_PASS, f_am, f_a1, f_a2, f_a3, f_ap, f_a, f_ia1, f_w1, f_w2, f_p0,
                     f_p1, f_p2, f_m0, f_m1, f_m2, 1, 0);
}
static NOINLINE void KERN(rad_fwd_store_w1)(RAD_FWD_ARGS, float *R fp) {
  FP_ROWS(fp, m);
  KERN(rad_fwd_body)(RAD_FWD_PASS, f_am, f_a1, f_a2, f_a3, f_ap, f_a, f_ia1, f_w1, f_w2, f_p0,
                     f_p1, f_p2, f_m0, f_m1, f_m2, 1, 1);
}

static void KERN(rad_fwd)(const rad__unit *r, size_t m, const float *x2, float *z2, float *U,
                          float *ZH, int32_t *P, double *ld, float *fp) {
  /* with the soft clamp at B <= 20 every logit is within +-20 */
  const int bounded = r->clamped && r->Bs <= RAD__BOUNDED;
#define RAD_FWD_UNIT m, r->Bs, r->Tq[0], r->Tq[1], r->Tq[2], r->Tq[3], r->Tq[4], r->Tq[5], \
                     r->c1, r->T1, r->t1, r->c2, r->T2, r->t2, x2, z2, U, ZH, P, ld
  if (fp && bounded)
    KERN(rad_fwd_store_w1)(RAD_FWD_UNIT, fp);
  else if (fp)
    KERN(rad_fwd_store_w0)(RAD_FWD_UNIT, fp);
  else if (bounded)
    KERN(rad_fwd_w1)(RAD_FWD_UNIT);
  else
    KERN(rad_fwd_w0)(RAD_FWD_UNIT);
#undef RAD_FWD_UNIT
}

static void KERN(rad_gate_fwd)(const rad__unit *r, size_t m, const float *ZH, const int32_t *P,
                               const float *g0, const float *g1, const float *g2, double *ld) {
  UNIT_LOCALS(r);
  for (size_t i = 0; i < m; i++) {
    float lp[3], lm[3], g[3] = {g0[i], g1[i], g2[i]}, sm[3];
    rad__gate_w w;
    UNIT_LOGITS(i, lp, lm);
    rad__gate_weights(ZH[i], &w);
    const int p = P[i];
    const int inner = p >= 1 && p <= 3;
    float lpk = rad__gate_logp(&w, g, lp, lm, inner ? p : 1, sm);
    ld[i] += inner ? (double)lpk : 0.0;
  }
}

static NOINLINE void KERN(rad_bwd_gate_w)(size_t m, float Bs, const float *R q0,
                                          const float *R q1, const float *R q2,
                                          const float *R q3, const float *R q4,
                                          const float *R q5, const float *R ZH,
                                          const int32_t *R P, const float *R g0,
                                          const float *R g1, const float *R g2,
                                          const float *R w, float *R gg0, float *R gg1,
                                          float *R gg2, float *R o0, float *R o1, float *R o2,
                                          float *R o3, float *R o4, float *R o5,
                                          float *R gzh) {
  for (size_t i = 0; i < m; i++) {
    float gg[3] = {0, 0, 0}, glp[3] = {0, 0, 0}, glm[3] = {0, 0, 0};
    float lp[3] = {Bs * q0[i], Bs * q1[i], Bs * q2[i]};
    float lm[3] = {Bs * q3[i], Bs * q4[i], Bs * q5[i]};
    float g[3] = {g0[i], g1[i], g2[i]}, sm[3];
    rad__gate_w wt;
    const int p = P[i];
    const int inner = p >= 1 && p <= 3;
    rad__gate_weights(ZH[i], &wt);
    (void)rad__gate_logp(&wt, g, lp, lm, inner ? p : 1, sm);
    const float wi = inner ? w[i] : 0.0f;
    float gz = rad__gate_bwd(&wt, g, lp, lm, inner ? p : 1, sm, wi, gg, glp, glm);
    gg0[i] = gg[0];
    gg1[i] = gg[1];
    gg2[i] = gg[2];
    o0[i] = glp[0];
    o1[i] = glp[1];
    o2[i] = glp[2];
    o3[i] = glm[0];
    o4[i] = glm[1];
    o5[i] = glm[2];
    gzh[i] = gz;
  }
}

static void KERN(rad_bwd_gate)(const rad__unit *r, size_t m, const float *ZH, const int32_t *P,
                               const float *g0, const float *g1, const float *g2, const float *w,
                               float *gg0, float *gg1, float *gg2, float *const gq[6], float *gzh) {
  KERN(rad_bwd_gate_w)(m, r->Bs, r->Tq[0], r->Tq[1], r->Tq[2], r->Tq[3], r->Tq[4], r->Tq[5], ZH,
                       P, g0, g1, g2, w, gg0, gg1, gg2, gq[0], gq[1], gq[2], gq[3], gq[4], gq[5],
                       gzh);
}

static NOINLINE void KERN(rad_bwd_fold_w)(
    size_t m, float Bs, int clamped, const float *R q0, const float *R q1, const float *R q2,
    const float *R q3, const float *R q4, const float *R q5, float c1, const float *R T1,
    float c2, const float *R T2, const float *R U, const float *R ZH, const int32_t *R P,
    const float *R x2, float *R gzh_acc, const float *R w, float *R gz2, float *R gr1,
    float *R gt1, float *R o0, float *R o1, float *R o2, float *R o3, float *R o4,
    float *R o5, float *R gr2, float *R gt2, float *R acc2, float *R fp) {
  (void)Bs;
  FP_ROWS(fp, m);
  for (size_t i = 0; i < m; i++) {
    float glp[3] = {o0[i], o1[i], o2[i]}, glm[3] = {o3[i], o4[i], o5[i]};
    /* the fold's parameters as the forward pass cached them */
    rad__fold_par f;
    f.am = f_am[i], f.a1 = f_a1[i], f.a2 = f_a2[i], f.a3 = f_a3[i], f.ap = f_ap[i];
    f.a = f_a[i], f.ia1 = f_ia1[i], f.w1 = f_w1[i], f.w2 = f_w2[i];
    f.smp[0] = f_p0[i], f.smp[1] = f_p1[i], f.smp[2] = f_p2[i];
    f.smm[0] = f_m0[i], f.smm[1] = f_m1[i], f.smm[2] = f_m2[i];
    f.la1 = f.la2 = f.la3 = f.lam = f.lap = 0.0f; /* unused by the backward */
    f.ia2 = f.ia3 = f.iam = f.iap = f.b = 0.0f;
    const float wi = w[i], g = gz2[i];
    const float s1 = c1 * T1[i], s2 = c2 * T2[i];
    const float es1 = rad__expf(s1), es2 = rad__expf(s2);
    const float gzh = g * es2 + gzh_acc[i];
    const float gs2 = g * ZH[i] * es2 + wi;
    const float gu = rad__fold_bwd(&f, U[i], P[i], gzh, wi, glp, glm);
    const float gs1 = gu * x2[i] * es1 + wi;
    gr1[i] = gs1 * c1 * (1.0f - T1[i] * T1[i]);
    gt1[i] = gu;
    gr2[i] = gs2 * c2 * (1.0f - T2[i] * T2[i]);
    gt2[i] = g;
    /* the terms of dL/dc1, dL/dc2, summed after the loop */
    gzh_acc[i] = gs1 * T1[i];
    acc2[i] = gs2 * T2[i];
    /* through the clamp l = B tanh(q / B): dl/dq = 1 - tanh^2 */
    o0[i] = clamped ? glp[0] * (1.0f - q0[i] * q0[i]) : glp[0];
    o1[i] = clamped ? glp[1] * (1.0f - q1[i] * q1[i]) : glp[1];
    o2[i] = clamped ? glp[2] * (1.0f - q2[i] * q2[i]) : glp[2];
    o3[i] = clamped ? glm[0] * (1.0f - q3[i] * q3[i]) : glm[0];
    o4[i] = clamped ? glm[1] * (1.0f - q4[i] * q4[i]) : glm[1];
    o5[i] = clamped ? glm[2] * (1.0f - q5[i] * q5[i]) : glm[2];
    gz2[i] = gu * es1;
  }
}

static void KERN(rad_bwd_fold)(const rad__unit *r, size_t m, const float *U, const float *ZH,
                               const int32_t *P, const float *x2, float *gzh_gate, float *acc2,
                               const float *w, float *gz2, float *gr1, float *gt1,
                               float *const gq[6], float *gr2, float *gt2, double *gc1,
                               double *gc2, float *fp) {
  KERN(rad_bwd_fold_w)(m, r->Bs, r->clamped, r->Tq[0], r->Tq[1], r->Tq[2], r->Tq[3], r->Tq[4],
                       r->Tq[5], r->c1, r->T1, r->c2, r->T2, U, ZH, P, x2, gzh_gate, w, gz2,
                       gr1, gt1, gq[0], gq[1], gq[2], gq[3], gq[4], gq[5], gr2, gt2, acc2, fp);
  double a1 = 0.0, a2 = 0.0;
#pragma omp simd reduction(+ : a1, a2)
  for (size_t i = 0; i < m; i++) {
    a1 += (double)gzh_gate[i];
    a2 += (double)acc2[i];
  }
  *gc1 += a1;
  *gc2 += a2;
}

/* RAD inverse of one unit with the piece drawn from the gating network
   (sampling). z2: the layer output on entry, the input x2 on exit. g0..g2:
   the gate logits of the layer output. uu: one uniform in (0, 1) per
   column, which picks the inner piece (1, 2 or 3 with probabilities
   p(k | z)) when |zh| <= 1; beyond, the outer piece is the only preimage.
   Writes each column's piece into P. Branch-free, so it vectorizes. */
static inline __attribute__((always_inline)) void KERN(rad_inv_draw_body)(
    size_t m, float Bs, const float *R q0, const float *R q1, const float *R q2,
    const float *R q3, const float *R q4, const float *R q5, float c1, const float *R T1,
    const float *R t1, float c2, const float *R T2, const float *R t2, float *R z2,
    const float *R g0, const float *R g1, const float *R g2, const float *R uu,
    int32_t *R P, const int bounded) {
  for (size_t i = 0; i < m; i++) {
    float lp[3], lm[3], g[3] = {g0[i], g1[i], g2[i]}, sm[3];
    rad__fold_par f;
    rad__gate_w w;
    KERN(unit_fold_par)(i, Bs, q0, q1, q2, q3, q4, q5, bounded, lp, lm, &f);
    const float s1 = c1 * T1[i], s2 = c2 * T2[i];
    const float zh = (z2[i] - t2[i]) * rad__expf(-s2);
    rad__gate_weights(zh, &w);
    (void)rad__gate_logp(&w, g, lp, lm, 1, sm);
    const float u01 = uu[i];
    const int32_t inner = 1 + (u01 >= sm[0]) + (u01 >= sm[0] + sm[1]);
    const int32_t pc = zh < -1.0f ? RAD__PIECE_L : (zh > 1.0f ? RAD__PIECE_R : inner);
    const float u = rad__fold_inv(&f, zh, pc);
    z2[i] = (u - t1[i]) * rad__expf(-s1);
    P[i] = pc;
  }
}

#define RAD_INV_ARGS                                                                  \
  size_t m, float Bs, const float *R q0, const float *R q1, const float *R q2,        \
      const float *R q3, const float *R q4, const float *R q5, float c1,              \
      const float *R T1, const float *R t1, float c2, const float *R T2,              \
      const float *R t2, float *R z2, const float *R g0, const float *R g1,           \
      const float *R g2, const float *R uu, int32_t *R P
#define RAD_INV_PASS m, Bs, q0, q1, q2, q3, q4, q5, c1, T1, t1, c2, T2, t2, z2, g0, g1, g2, uu, P
static NOINLINE void KERN(rad_inv_draw_w0)(RAD_INV_ARGS) {
  KERN(rad_inv_draw_body)(RAD_INV_PASS, 0);
}
static NOINLINE void KERN(rad_inv_draw_w1)(RAD_INV_ARGS) {
  KERN(rad_inv_draw_body)(RAD_INV_PASS, 1);
}

static void KERN(rad_inv_draw)(const rad__unit *r, size_t m, float *z2, const float *g0,
                               const float *g1, const float *g2, const float *uu, int32_t *P) {
  const int bounded = r->clamped && r->Bs <= RAD__BOUNDED;
#define RAD_INV_UNIT m, r->Bs, r->Tq[0], r->Tq[1], r->Tq[2], r->Tq[3], r->Tq[4], r->Tq[5], \
                     r->c1, r->T1, r->t1, r->c2, r->T2, r->t2, z2, g0, g1, g2, uu, P
  if (bounded)
    KERN(rad_inv_draw_w1)(RAD_INV_UNIT);
  else
    KERN(rad_inv_draw_w0)(RAD_INV_UNIT);
#undef RAD_INV_UNIT
}

static void KERN(relu_mask_sums)(float *R gH, const float *R H, float *R g, size_t rows,
                                 size_t m) {
  for (size_t r = 0; r < rows; r++) {
    float *gh = gH + r * m;
    const float *h = H + r * m;
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < m; i++) {
      const float v = h[i] > 0.0f ? gh[i] : 0.0f;
      gh[i] = v;
      acc += v;
    }
    g[r] += acc;
  }
}

static void KERN(add_to)(float *R y, const float *R x, size_t len) {
#pragma omp simd
  for (size_t i = 0; i < len; i++) y[i] += x[i];
}

static void KERN(affine_inv)(size_t m, float c, const float *T, const float *t, float *z2) {
#pragma omp simd
  for (size_t i = 0; i < m; i++) z2[i] = (z2[i] - t[i]) * rad__expf(-c * T[i]);
}

static void KERN(affine_fwd)(size_t m, float c, const float *T, const float *t, const float *x2,
                             float *z2, double *ld) {
#pragma omp simd
  for (size_t i = 0; i < m; i++) {
    const float s = c * T[i];
    z2[i] = x2[i] * rad__expf(s) + t[i];
    ld[i] += (double)s;
  }
}

static void KERN(affine_bwd)(size_t m, float c, const float *T, const float *x2, const float *w,
                             float *gz2, float *gr, float *gt, double *gc) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc)
  for (size_t i = 0; i < m; i++) {
    const float es = rad__expf(c * T[i]);
    const float g = gz2[i];
    const float gs = g * x2[i] * es + w[i];
    gr[i] = gs * c * (1.0f - T[i] * T[i]);
    gt[i] = g;
    acc += (double)(gs * T[i]);
    gz2[i] = g * es;
  }
  *gc += acc;
}

const rad__kernels KERN(rad__kernels) = {
    KERN(tanh_rows), KERN(bias_relu),    KERN(bias_add),     KERN(relu_mask),
    KERN(row_sums_add), KERN(rad_fwd),   KERN(rad_gate_fwd), KERN(rad_bwd_gate),
    KERN(rad_bwd_fold), KERN(affine_fwd), KERN(affine_bwd), KERN(rad_inv_draw),
    KERN(relu_mask_sums), KERN(add_to), KERN(affine_inv)};
