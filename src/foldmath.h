/* The folding function and the gating distribution of one unit, as inline
   kernels (MODEL.md sections 1-3 and the fold part of section 6). Used by
   the rad_fold handle (fold.c), the gating code (gate.c) and the coupling
   layers (coupling.c), so there is exactly one implementation of the math.

   Pieces are numbered 0..4: 0 = L (u < -1), 1, 2, 3 (inner), 4 = R (u > 1).
   The discrete label of piece p is 1 for L, 3 for R, p otherwise. */
#ifndef RAD_FOLDMATH_H
#define RAD_FOLDMATH_H

#include <math.h>
#include <stdint.h>

#include "internal.h"
#include "vmath.h"

enum { RAD__PIECE_L = 0, RAD__PIECE_R = 4 };

static inline int32_t rad__piece_label(int p) {
  return p == RAD__PIECE_L ? 1 : (p == RAD__PIECE_R ? 3 : (int32_t)p);
}
static inline int rad__piece_inner(int p) { return p >= 1 && p <= 3; }

/* Everything the fold of one unit needs, derived from its boundary logits
   l+ (lp) and l- (lm). All slopes are computed in log space (MODEL.md 1). */
typedef struct rad__fold_par {
  float la1, la2, la3, lam, lap; /* log alpha1, 2, 3, alpha_minus, alpha_plus */
  float a1, a2, a3, am, ap;      /* the slopes themselves */
  float ia1, ia2, ia3, iam, iap; /* their reciprocals, exp(-log alpha) */
  float a, b;                    /* breakpoints, -1 < a < b < 1 */
  float w1, w2;   /* d log alpha2 / d(l1+ - l2+), d log alpha2 / d(l3- - l2-) */
  float smp[3];   /* softmax(l+) */
  float smm[3];   /* softmax(l-) */
} rad__fold_par;

static inline float rad__max3(float a, float b, float c) {
  float m = a > b ? a : b;
  return m > c ? m : c;
}

/* log-softmax component and softmax of 3 logits, stable. Returns lse. */
static inline float rad__lse3(const float l[3], float sm[3]) {
  float mx = rad__max3(l[0], l[1], l[2]);
  float e0 = rad__expf(l[0] - mx), e1 = rad__expf(l[1] - mx), e2 = rad__expf(l[2] - mx);
  float s = e0 + e1 + e2, is = 1.0f / s;
  sm[0] = e0 * is;
  sm[1] = e1 * is;
  sm[2] = e2 * is;
  return mx + rad__logf(s);
}

static inline void rad__fold_par_make(const float lp[3], const float lm[3],
                                      rad__fold_par *f) {
  /* log alpha2 = logsumexp(0, l1+ - l2+, l3- - l2-) */
  float d1 = lp[0] - lp[1], d2 = lm[2] - lm[1];
  float mx = rad__max3(0.0f, d1, d2);
  float e0 = rad__expf(-mx), e1 = rad__expf(d1 - mx), e2 = rad__expf(d2 - mx);
  float s = e0 + e1 + e2, is = 1.0f / s;
  f->la2 = mx + rad__logf(s);
  f->w1 = e1 * is;
  f->w2 = e2 * is;
  f->la1 = f->la2 + lp[1] - lp[0];
  f->la3 = f->la2 + lm[1] - lm[2];
  float lsep = rad__lse3(lp, f->smp);
  float lsem = rad__lse3(lm, f->smm);
  f->lam = f->la1 + (lm[0] - lsem); /* log alpha1 + log p1- */
  f->lap = f->la3 + (lp[2] - lsep); /* log alpha3 + log p3+ */
  f->a1 = rad__expf(f->la1);
  f->a2 = rad__expf(f->la2);
  f->a3 = rad__expf(f->la3);
  f->am = rad__expf(f->lam);
  f->ap = rad__expf(f->lap);
  f->ia1 = 1.0f / f->a1;
  f->ia2 = 1.0f / f->a2;
  f->ia3 = 1.0f / f->a3;
  f->iam = 1.0f / f->am;
  f->iap = 1.0f / f->ap;
  f->a = 2.0f * f->ia1 - 1.0f;
  f->b = 1.0f - 2.0f * f->ia3;
}

/* The same parameters for logits bounded by |l| <= RAD__BOUNDED (the
   soft clamp with B <= 20 guarantees it): exp(l) can neither overflow nor
   underflow, so the slopes come from products and quotients of the six
   exponentials (alpha2 = 1 + e^{l1+ - l2+} + e^{l3- - l2-}, alpha1 =
   alpha2 e^{l2+ - l1+}, ...), all within e^{+-4B}, instead of one
   exponential each: 6 exp + 3 log instead of 14 exp + 3 log. The
   log-slopes are still sums in log space, as in rad__fold_par_make. */
#define RAD__BOUNDED 20.0f
static inline void rad__fold_par_make_bounded(const float lp[3], const float lm[3],
                                              rad__fold_par *f) {
  const float ep0 = rad__expf(lp[0]), ep1 = rad__expf(lp[1]), ep2 = rad__expf(lp[2]);
  const float em0 = rad__expf(lm[0]), em1 = rad__expf(lm[1]), em2 = rad__expf(lm[2]);
  const float iSp = 1.0f / (ep0 + ep1 + ep2), iSm = 1.0f / (em0 + em1 + em2);
  f->smp[0] = ep0 * iSp, f->smp[1] = ep1 * iSp, f->smp[2] = ep2 * iSp;
  f->smm[0] = em0 * iSm, f->smm[1] = em1 * iSm, f->smm[2] = em2 * iSm;
  const float iep0 = 1.0f / ep0, iem2 = 1.0f / em2;
  const float r1 = ep0 / ep1, r2 = em2 / em1; /* e^{l1+ - l2+}, e^{l3- - l2-} */
  const float A2 = 1.0f + r1 + r2, iA2 = 1.0f / A2;
  f->w1 = r1 * iA2;
  f->w2 = r2 * iA2;
  f->la2 = rad__logf(A2);
  f->la1 = f->la2 + lp[1] - lp[0];
  f->la3 = f->la2 + lm[1] - lm[2];
  f->lam = f->la1 + (lm[0] + rad__logf(iSm)); /* log alpha1 + log p1- */
  f->lap = f->la3 + (lp[2] + rad__logf(iSp)); /* log alpha3 + log p3+ */
  f->a2 = A2;
  f->a1 = A2 * ep1 * iep0;
  f->a3 = A2 * em1 * iem2;
  f->am = f->a1 * f->smm[0];
  f->ap = f->a3 * f->smp[2];
  f->ia2 = iA2;
  f->ia1 = ep0 * iA2 / ep1;
  f->ia3 = em2 * iA2 / em1;
  f->iam = 1.0f / f->am;
  f->iap = 1.0f / f->ap;
  f->a = 2.0f * f->ia1 - 1.0f;
  f->b = 1.0f - 2.0f * f->ia3;
}

/* Forward: piece of u, f(u) and log |f'(u)|. Only the selected piece's
   formula is evaluated (MODEL.md 1). The inner pieces map onto [-1, 1]
   exactly; in float32 a steep piece (slope up to 3e5) can overshoot by
   slope x rounding, so their result is clamped to [-1, 1], which is
   where the exact value lies. */
static inline float rad__clamp1(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

/* The affine form of piece p: f(u) = S (u - U0) + Z0, log|S| = LS. */
typedef struct rad__piece_form {
  float S, U0, Z0, LS;
} rad__piece_form;

static inline int rad__fold_piece(const rad__fold_par *f, float u) {
  return u < -1.0f ? RAD__PIECE_L
                   : (u <= f->a ? 1 : (u <= f->b ? 2 : (u <= 1.0f ? 3 : RAD__PIECE_R)));
}

static inline rad__piece_form rad__fold_form(const rad__fold_par *f, int p) {
  rad__piece_form r;
  r.S = p == 0 ? f->am : (p == 1 ? f->a1 : (p == 2 ? -f->a2 : (p == 3 ? f->a3 : f->ap)));
  r.LS = p == 0 ? f->lam : (p == 1 ? f->la1 : (p == 2 ? f->la2 : (p == 3 ? f->la3 : f->lap)));
  r.U0 = p <= 1 ? -1.0f : (p == 2 ? f->a : 1.0f);
  r.Z0 = p <= 1 ? -1.0f : 1.0f;
  return r;
}

static inline int rad__fold_fwd(const rad__fold_par *f, float u, float *zh,
                                float *ls) {
  int p = rad__fold_piece(f, u);
  rad__piece_form r = rad__fold_form(f, p);
  float z = r.S * (u - r.U0) + r.Z0;
  *zh = (p >= 1 && p <= 3) ? rad__clamp1(z) : z;
  *ls = r.LS;
  return p;
}

/* Piece that the inverse uses for (zh, k), or -1 when k cannot have
   produced zh: an inner label with |zh| beyond 1 by more than
   1e-5 (1 + |zh|) plus `slack` (the rounding error of however zh was
   computed). k must be in {1,2,3}. */
static inline int rad__fold_inv_piece(float zh, int32_t k, float slack) {
  if (k == 1 && zh < -1.0f) return RAD__PIECE_L;
  if (k == 3 && zh > 1.0f) return RAD__PIECE_R;
  float tol = RAD_LABEL_TOL * (1.0f + fabsf(zh)) + slack;
  if (zh > 1.0f + tol || zh < -1.0f - tol) return -1;
  return (int)k;
}

/* Inverse on a given piece (from rad__fold_inv_piece, or drawn). Every
   piece's value is computed and one selected, without branches, so that
   the sampling kernel's loop vectorizes. */
static inline float rad__fold_inv(const rad__fold_par *f, float zh, int32_t p) {
  const float zc = zh < -1.0f ? -1.0f : (zh > 1.0f ? 1.0f : zh);
  const float vL = (zh + 1.0f) * f->iam - 1.0f, vR = (zh - 1.0f) * f->iap + 1.0f;
  const float v1 = (zc + 1.0f) * f->ia1 - 1.0f, v2 = f->a - (zc - 1.0f) * f->ia2;
  const float v3 = (zc - 1.0f) * f->ia3 + 1.0f;
  float u = p == 1 ? v1 : (p == 2 ? v2 : v3);
  u = p == RAD__PIECE_L ? vL : u;
  return p == RAD__PIECE_R ? vR : u;
}

/* Backward of the fold at fixed piece p. Given gzh = dL/dzh and
   gls = dL/d log|f'(u)|, returns dL/du and ADDS dL/dl+ and dL/dl- into
   glp[3], glm[3]. Every path of MODEL.md section 6 through the slopes. */
static inline float rad__fold_bwd(const rad__fold_par *f, float u, int p,
                                  float gzh, float gls, float glp[3],
                                  float glm[3]) {
  rad__piece_form r = rad__fold_form(f, p);
  float gu = gzh * r.S;
  /* d zh / d log(slope) = S (u - U0) at fixed piece */
  float gsel = gu * (u - r.U0) + gls;
  float gm = p == 0 ? gsel : 0.0f;
  /* piece 2: zh = 1 - a2 (u - a), a = 2/alpha1 - 1: dzh/dlog a1 = -2 a2 / a1 */
  float g1 = p == 1 ? gsel : (p == 2 ? -2.0f * gzh * f->a2 * f->ia1 : 0.0f);
  float g2 = p == 2 ? gsel : 0.0f;
  float g3 = p == 3 ? gsel : 0.0f;
  float gp = p == 4 ? gsel : 0.0f;
  /* log alpha_minus = log alpha1 + log_softmax(l-)_1 */
  g1 += gm;
  glm[0] += gm * (1.0f - f->smm[0]);
  glm[1] -= gm * f->smm[1];
  glm[2] -= gm * f->smm[2];
  /* log alpha_plus = log alpha3 + log_softmax(l+)_3 */
  g3 += gp;
  glp[0] -= gp * f->smp[0];
  glp[1] -= gp * f->smp[1];
  glp[2] += gp * (1.0f - f->smp[2]);
  /* log alpha1 = log alpha2 + l2+ - l1+;  log alpha3 = log alpha2 + l2- - l3- */
  g2 += g1 + g3;
  glp[1] += g1;
  glp[0] -= g1;
  glm[1] += g3;
  glm[2] -= g3;
  /* log alpha2 = lse(0, l1+ - l2+, l3- - l2-) */
  glp[0] += g2 * f->w1;
  glp[1] -= g2 * f->w1;
  glm[2] += g2 * f->w2;
  glm[1] -= g2 * f->w2;
  return gu;
}

/* ---- the gating distribution (MODEL.md section 2) ---------------------- */

/* Trigonometric weights at zh clamped to [-1, 1], and their derivatives. */
typedef struct rad__gate_w {
  float wc, wp, wm;    /* (1+cos(pi z))/2, (1+sin(pi z/2))/2, (1-sin(pi z/2))/2 */
  float dwc, dwp, dwm; /* d/dz of each */
} rad__gate_w;

static inline void rad__gate_weights(float zh, rad__gate_w *w) {
  float zc = zh < -1.0f ? -1.0f : (zh > 1.0f ? 1.0f : zh);
  float s, c;
  rad__sincos_halfpi(zc, &s, &c);
  /* cos(pi z) = 1 - 2 s^2, so wc = 1 - s^2 = c^2; sin(pi z) = 2 s c */
  w->wc = c * c;
  w->wp = 0.5f * (1.0f + s);
  w->wm = 0.5f * (1.0f - s);
  w->dwc = -(float)RAD_PI * s * c;
  w->dwp = (float)(RAD_PI / 4.0) * c;
  w->dwm = -w->dwp;
}

/* lambda = wc g + wp l+ + wm l-; returns log p(k | z) = log_softmax(lambda)_k
   and the softmax in sm (for backward). k in {1,2,3}. */
static inline float rad__gate_logp(const rad__gate_w *w, const float g[3],
                                   const float lp[3], const float lm[3],
                                   int32_t k, float sm[3]) {
  float lam[3];
  for (int c = 0; c < 3; c++) lam[c] = w->wc * g[c] + w->wp * lp[c] + w->wm * lm[c];
  float lse = rad__lse3(lam, sm);
  float lk = k == 1 ? lam[0] : (k == 2 ? lam[1] : lam[2]); /* no variable index: vectorizes */
  return lk - lse;
}

/* Backward of log p(k|z) scaled by gw = dL/dlog p. ADDS into gg[3],
   glp[3], glm[3]; returns dL/dzh through the weights. */
static inline float rad__gate_bwd(const rad__gate_w *w, const float g[3],
                                  const float lp[3], const float lm[3],
                                  int32_t k, const float sm[3], float gw,
                                  float gg[3], float glp[3], float glm[3]) {
  float gz = 0.0f;
  for (int c = 0; c < 3; c++) {
    float e = gw * ((c == k - 1 ? 1.0f : 0.0f) - sm[c]);
    gg[c] += e * w->wc;
    glp[c] += e * w->wp;
    glm[c] += e * w->wm;
    gz += e * (w->dwc * g[c] + w->dwp * lp[c] + w->dwm * lm[c]);
  }
  return gz;
}

#endif
