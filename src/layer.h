/* Coupling layers on feature-major chunks (internal). See coupling.c. */
#ifndef RAD_LAYER_H
#define RAD_LAYER_H

#include "internal.h"
#include "mlp.h"

/* Row blocks of a RAD conditioner's output (each block d2 rows). */
enum {
  RAD__O_R1 = 0, RAD__O_T1 = 1, RAD__O_QP = 2, /* 2,3,4 */
  RAD__O_QM = 5, /* 5,6,7 */
  RAD__O_R2 = 8, RAD__O_T2 = 9, RAD__O_RAD_BLOCKS = 10
};
enum { RAD__O_AR = 0, RAD__O_AT = 1, RAD__O_AFFINE_BLOCKS = 2 };

typedef struct rad__layer {
  int kind;             /* RAD_LAYER_RAD or RAD_LAYER_AFFINE */
  size_t dim, d1, d2;
  uint8_t *mask;        /* dim entries, 1 = transformed */
  size_t *idx1, *idx2;  /* conditioning / transformed indices */
  rad__mlp cond;        /* h: d1 -> hidden -> 10 d2 (RAD) or 2 d2 (affine) */
  rad__mlp gate;        /* g: dim -> G -> 3 d2 (RAD only) */
  size_t off_scale;     /* offset of c1 (or c) within the layer's params */
  size_t off_gate;      /* offset of g's params (RAD) */
  size_t n_params;
  float bound;          /* soft clamp B of the fold logits; 0 = none */
} rad__layer;

/* Per-chunk activations of one layer (feature-major, m columns). */
typedef struct rad__lcache {
  float *X1;   /* d1 x m: conditioning input */
  float *Hc;   /* hidden x m: conditioner hidden units (after ReLU) */
  float *O;    /* out x m: conditioner output; after the forward pass the
                  r and q rows hold tanh(r), tanh(q/B) (or q when B = 0) */
  float *U;    /* d2 x m: pre-fold values u (RAD) */
  float *ZH;   /* d2 x m: fold outputs zh (RAD) */
  int32_t *P;  /* d2 x m: pieces 0..4 (RAD); 32-bit so the unit loops
                  vectorize 8 floats wide, not 32 */
  float *FP;   /* 15 d2 x m: fold parameters cached for backward, or NULL */
  float *Hg;   /* G x m: gating hidden units */
  float *GL;   /* 3 d2 x m: gating logits */
} rad__lcache;

/* Scratch for backward passes, sized for the largest layer of a stack. */
typedef struct rad__bscratch {
  float *gO;   /* max conditioner out x m */
  float *gH;   /* max(hidden, G) x m */
  float *gGL;  /* 3 max d2 x m */
  float *gZh;  /* max d2 x m */
  float *gX;   /* dim x m */
  double *gc;  /* 2 max d2: scale-parameter accumulators */
} rad__bscratch;

/* Validates and builds the layer shape; mask NULL = default for layer 0. */
int rad__layer_init(rad__layer *L, int kind, size_t dim, const uint8_t *mask,
                    size_t mask_len, size_t hidden, size_t gate_hidden);
void rad__layer_free(rad__layer *L);
int rad__layer_copy(rad__layer *dst, const rad__layer *src);
void rad__default_mask(size_t dim, size_t layer_index, uint8_t *mask);
void rad__layer_init_params(const rad__layer *L, float *p, uint64_t seed,
                            uint32_t stream);
size_t rad__layer_num_labels(const rad__layer *L);
size_t rad__layer_cond_out(const rad__layer *L);

/* Carves the cache for m columns from an arena (or measures it); with
   for_grad the fold parameters are cached for the backward pass. */
void rad__layer_cache_take(const rad__layer *L, size_t m, rad__arena *a,
                           rad__lcache *c, int for_grad);

/* Forward on m columns: Zout = layer(Zin) (Zin == Zout allowed); ADDS
   each column's log-det into ld; writes labels to k[i*kstride + j] when k
   is not NULL, for the first mk columns (the rest are padding). */
void rad__layer_forward(const rad__layer *L, const float *p, size_t m,
                        const float *Zin, float *Zout, rad__lcache *c,
                        double *ld, int32_t *k, size_t kstride, size_t mk);

/* Backward: gZ holds dL/dZout on entry and dL/dZin on exit; w[i] is
   dL/d(log-det of column i). ADDS parameter gradients into gp (if not
   NULL). Zin, Zout and c are those of the forward pass. */
void rad__layer_backward(const rad__layer *L, const float *p, size_t m,
                         const float *Zin, const float *Zout,
                         const rad__lcache *c, const float *w, float *gZ,
                         float *gp, rad__bscratch *s);

/* How an inverse pass picks labels: given (k != NULL), or drawn. */
typedef struct rad__draw {
  uint64_t seed;
  size_t row0;       /* global index of column 0 */
  size_t label_off;  /* index of this layer's first label */
  size_t k0;         /* columns before k0 are drawn but their labels are
                        not written: kout[0] is column k0's */
} rad__draw;

/* Inverse in place: Z holds the layer output on entry, its input on exit.
   Labels: read from k[i*kstride + j] (inverse) or drawn from the gating
   distribution (draw != NULL). Drawn or used labels are written to
   kout[i*koutstride + j] when kout is not NULL. Returns RAD_ELABEL when a
   given label cannot have produced z. With logw (m entries, not NULL) the
   labels are given and fixed (component sampling): log p(k|z) of each is
   ADDED to logw[i], a label that cannot have produced z sets -inf, and
   nothing is an error. Labels are read and written for the first mk
   columns only; the others are padding. */
int rad__layer_inverse(const rad__layer *L, const float *p, size_t m, size_t mk,
                       float *Z, rad__lcache *c, const int32_t *k,
                       size_t kstride, const rad__draw *draw, int32_t *kout,
                       size_t koutstride, double *logw);

/* The gating probabilities p(. | z) of every unit of a RAD layer after
   its forward pass (cache c): probs[i*stride + 3j + c]; one-hot on the
   label for the outer pieces. */
void rad__layer_gate_probs(const rad__layer *L, const rad__lcache *c, size_t m, size_t mk,
                           float *probs, size_t stride);

#define RAD__TAG_NORMAL 0x6e6f726du /* "norm" */
#define RAD__TAG_LABEL 0x6c61626cu  /* "labl" */

#endif
