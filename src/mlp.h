/* A two-layer perceptron, dense(in -> hidden), ReLU, dense(hidden -> out),
   on a batch stored feature-major: an activation matrix has one row per
   feature, one column per sample (rows of length m, leading dimension m).
   Both dense layers are one cblas_sgemm each. Used for the conditioners h
   of the coupling layers and for the gating network g.

   Parameter layout (one flat block): W1 (hidden x in, row-major), b1
   (hidden), W2 (out x hidden, row-major), b2 (out). */
#ifndef RAD_MLP_H
#define RAD_MLP_H

#include "internal.h"

typedef struct rad__mlp {
  size_t in, hidden, out;
} rad__mlp;

size_t rad__mlp_num_params(const rad__mlp *s);
/* Returns 0 if the parameter count overflows size_t. */
int rad__mlp_params_ok(const rad__mlp *s);

/* W1, b1 ~ U(-1/sqrt(in), 1/sqrt(in)) (in = 0 counts as 1); W2 = b2 = 0.
   Draws come from (seed, stream). */
void rad__mlp_init(const rad__mlp *s, float *p, uint64_t seed, uint32_t stream);

/* H = relu(W1 X + b1) (hidden x m); O = W2 H + b2 (out x m). */
void rad__mlp_forward(const rad__mlp *s, const float *p, size_t m,
                      const float *X, float *H, float *O);

/* Given gO = dL/dO (out x m): ADDS dL/dparams into gp (if not NULL),
   writes dL/dX into gX (in x m, if not NULL). gH is scratch, hidden x m. */
void rad__mlp_backward(const rad__mlp *s, const float *p, size_t m,
                       const float *X, const float *H, const float *gO,
                       float *gH, float *gX, float *gp);

#endif
