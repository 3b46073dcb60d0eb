/* A stack of coupling layers and the chunked batch drivers shared by flows
   and single coupling layers (internal). */
#ifndef RAD_STACK_H
#define RAD_STACK_H

#include "layer.h"

typedef struct rad__stack {
  size_t dim;
  size_t n_layers;
  const rad__layer *layers;
  const float *params;   /* all layers' parameters, one block each */
  const size_t *poff;    /* parameter offset of each layer */
  const size_t *loff;    /* label offset of each layer */
  size_t n_params, n_labels;
  int with_base;         /* add log N(z; 0, I) (flows) or not (one layer) */
  /* Standardization z = (x - shift) / scale before layer 0, or NULL. */
  const float *std_shift, *std_scale;
  double std_logdet;     /* - sum log scale */
} rad__stack;

#include "pool.h"

#define RAD__MAX_THREADS 256
#define RAD__CHUNK_MAX 512u /* samples per chunk, at most (stack.c) */
#define RAD__PAD RAD__COLS  /* chunk widths are padded to a multiple */

struct rad_workspace {
  size_t max_batch;
  size_t cap;          /* bytes of one thread's scratch */
  unsigned char *mem;  /* threads x cap */
  size_t threads;
  rad__pool *pool;     /* NULL with one thread */
};

enum { RAD__MODE_FWD = 0, RAD__MODE_INV = 1, RAD__MODE_GRAD = 2 };

/* Scratch bytes for `mode` on chunks of m samples (SIZE_MAX on overflow). */
size_t rad__stack_scratch_bytes(const rad__stack *S, int mode, size_t m);

/* All drivers validate their input, take scratch from ws (or allocate it
   when ws is NULL), and process the batch in chunks. */
int rad__stack_forward(const rad__stack *S, rad_workspace *ws, size_t n,
                       const float *x, float *z, int32_t *k, float *lp,
                       float *zs_layers, float *gate_probs);
int rad__stack_inverse(const rad__stack *S, rad_workspace *ws, size_t n,
                       const float *z, const int32_t *k, float *x);
int rad__stack_sample(const rad__stack *S, rad_workspace *ws, uint64_t seed,
                      uint64_t first, size_t n, float *x, float *z, int32_t *k);
/* Backward of L = sum_i [ w_i * logdet_i + gz_i . z_i ], where logdet
   includes the base density when S->with_base. If gz is NULL it is zero;
   w_i = (w ? w[i] : 1) * wscale. Writes gx (n x d) and gp (summed over the
   batch) when not NULL, and sum_i (w ? w[i] : 1) logdet_i into *sum_ld
   (rows of weight 0 left out). */
int rad__stack_backward(const rad__stack *S, rad_workspace *ws, size_t n,
                        const float *x, const float *gz, const float *w,
                        double wscale, float *gx, float *gp, double *sum_ld,
                        float *lp);
/* Samples of the mixture component with every label fixed (k: n_labels
   values), by rejection: attempt a of sample i draws z from (seed, i, a),
   inverts with the labels k, and is kept with probability prod p(k|z).
   RAD_EREJECTED if a sample is not accepted within max_attempts. */
int rad__stack_sample_component(const rad__stack *S, rad_workspace *ws, uint64_t seed,
                                const int32_t *k, size_t n, size_t max_attempts, float *x,
                                float *z, double *acceptance);

#endif
