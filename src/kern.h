/* The hot loops of librad (internal): elementwise work over the columns
   of a feature-major chunk. Compiled twice from kern_body.h, once for any
   x86-64 (kern_generic.c) and once with AVX2 + FMA (kern_avx2.c); a call
   picks a table by what the CPU supports (no state is kept). Every loop
   is a `#pragma omp simd` loop over contiguous rows, free of calls (the
   math is the inline code of vmath.h and foldmath.h), so it vectorizes. */
#ifndef RAD_KERN_H
#define RAD_KERN_H

#include "internal.h"

/* Rows of cached fold parameters per unit (kern_body.h, FP_ROWS). */
#define RAD__FP_ROWS 15

/* The rows of one RAD unit j in the squashed conditioner output. */
typedef struct rad__unit {
  const float *T1, *t1, *Tq[6], *T2, *t2; /* tanh(r1), t1, tanh(q/B) or q, tanh(r2), t2 */
  float c1, c2;                           /* scales of s1 = c1 T1, s2 = c2 T2 */
  float Bs;                               /* logit = Bs * Tq (B, or 1 unclamped) */
  int clamped;                            /* B > 0 */
} rad__unit;

typedef struct rad__kernels {
  /* x[i] = tanh(x[i] * in_scale) */
  void (*tanh_rows)(float *x, size_t len, float in_scale);
  /* H[r][i] = max(0, H[r][i] + b[r]) */
  void (*bias_relu)(float *H, const float *b, size_t rows, size_t m);
  /* O[r][i] += b[r] */
  void (*bias_add)(float *O, const float *b, size_t rows, size_t m);
  /* gH[i] = H[i] > 0 ? gH[i] : 0 */
  void (*relu_mask)(float *gH, const float *H, size_t len);
  /* g[r] += sum_i A[r][i] */
  void (*row_sums_add)(float *g, const float *A, size_t rows, size_t m);
  /* RAD forward of one unit: u, fold, post-affine; ADDS s1 + s2 +
     log|f'(u)| into ld. With fp (15 x m floats, or NULL) it caches the
     fold parameters the backward pass needs. */
  void (*rad_fwd)(const rad__unit *r, size_t m, const float *x2, float *z2, float *U,
                  float *ZH, int32_t *P, double *ld, float *fp);
  /* ADDS log p(k|z) (inner pieces) into ld; g0..g2 are the gate logits. */
  void (*rad_gate_fwd)(const rad__unit *r, size_t m, const float *ZH, const int32_t *P,
                       const float *g0, const float *g1, const float *g2, double *ld);
  /* Backward of the gating term scaled by w: writes dL/dg into gg0..gg2,
     the direct dL/dl+- into gq[0..5] (before the clamp), dL/dzh into gzh. */
  void (*rad_bwd_gate)(const rad__unit *r, size_t m, const float *ZH, const int32_t *P,
                       const float *g0, const float *g1, const float *g2, const float *w,
                       float *gg0, float *gg1, float *gg2, float *const gq[6], float *gzh);
  /* Backward of post-affine, fold, pre-affine, clamp and tanh scales.
     gz2: dL/dz2 in, dL/dx2 out. gq: direct dL/dl+- in, dL/dq out.
     gzh_gate: dL/dzh through the gate in, scratch out; acc2: scratch (m).
     Writes gr1, gt1, gr2, gt2; ADDS dL/dc1, dL/dc2 into *gc1, *gc2. */
  void (*rad_bwd_fold)(const rad__unit *r, size_t m, const float *U, const float *ZH,
                       const int32_t *P, const float *x2, float *gzh_gate, float *acc2,
                       const float *w, float *gz2, float *gr1, float *gt1,
                       float *const gq[6], float *gr2, float *gt2, double *gc1,
                       double *gc2, float *fp);
  /* Affine forward: z2 = x2 exp(c T) + t; ADDS c T into ld. */
  void (*affine_fwd)(size_t m, float c, const float *T, const float *t, const float *x2,
                     float *z2, double *ld);
  /* Affine backward: gz2 in (dL/dz2), out (dL/dx2); writes gr, gt; ADDS
     dL/dc into *gc. */
  void (*affine_bwd)(size_t m, float c, const float *T, const float *x2, const float *w,
                     float *gz2, float *gr, float *gt, double *gc);
  /* RAD inverse with the piece drawn (sampling): z2 in (layer output),
     out (layer input); g0..g2 the gate logits of the layer output; uu[i]
     in (0, 1) draws the inner piece from p(k | z); writes pieces to P. */
  void (*rad_inv_draw)(const rad__unit *r, size_t m, float *z2, const float *g0,
                       const float *g1, const float *g2, const float *uu, int32_t *P);
  /* gH[r][i] = H[r][i] > 0 ? gH[r][i] : 0, and g[r] += sum_i gH[r][i]
     (relu_mask then row_sums_add, in one pass) */
  void (*relu_mask_sums)(float *gH, const float *H, float *g, size_t rows, size_t m);
  /* y[i] += x[i] */
  void (*add_to)(float *y, const float *x, size_t len);
  /* Affine inverse in place: z2 = (z2 - t) exp(-c T). */
  void (*affine_inv)(size_t m, float c, const float *T, const float *t, float *z2);
} rad__kernels;

extern const rad__kernels rad__kernels_generic;
extern const rad__kernels rad__kernels_avx2;
extern const rad__kernels rad__kernels_avx512;

/* The table for this CPU. */
const rad__kernels *rad__kern(void);

#endif
