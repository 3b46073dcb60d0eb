/*
 * librad: RAD flows (Real and Discrete normalizing flows) in C.
 *
 * Implements Dinh, Sohl-Dickstein, Larochelle, Pascanu, "A RAD approach to
 * deep mixture models": coupling layers built on a piecewise-linear folding
 * function with a gating network p(k|z) over its three preimages, giving a
 * deep mixture model with exact sampling, exact inference of the discrete
 * labels and an exact, continuous log-likelihood.
 *
 * This header is the whole public API. Anything not declared here is not
 * part of the API and may change without notice.
 *
 * CONVENTIONS (they hold for every function below unless its comment says
 * otherwise)
 *
 * Status codes. Every fallible function returns int: RAD_OK (0) or one of
 * the negative RAD_E* codes below. The values are pinned: new codes are
 * appended, existing values never change or get reused. rad_strerror()
 * names each code.
 *
 * No side channels. librad never prints, never aborts, never exits, and
 * never changes process-wide state (in particular it never changes
 * OpenBLAS's thread count). Randomness comes only from explicit seeds.
 * The one environment variable librad reads (once, at its first
 * computation) is RAD_KERNELS: "generic" or "avx2" asks for a lower build
 * of its vector loops than the best the CPU runs (for tests and
 * comparisons); anything else is ignored.
 *
 * Bad input. A NULL pointer where a buffer or handle is required, a size
 * that does not match the handle, an unknown enum value, non-finite
 * numbers (NaN, +-inf) in x, z or parameters: each returns a specific
 * status code, leaves every handle unchanged and usable, and leaves every
 * output buffer untouched (outputs are written only on success). Output
 * handles (`T **out`) are set to NULL on failure.
 *
 * Buffers. Arrays are owned by the caller; librad never keeps a pointer to
 * a caller's buffer after a call returns. A batch of n samples of
 * dimension d is n*d floats, row-major (sample i occupies
 * x[i*d .. i*d+d-1]), float32. Discrete labels are int32_t in {1, 2, 3}.
 * Functions that take a pointer without a length cannot detect a buffer
 * that is too short: passing one is undefined behaviour, as with memcpy.
 * Where a length is passed (get/set params), a mismatch is RAD_ESIZE.
 * n = 0 is a valid empty batch (RAD_OK, nothing written; its buffers may
 * be NULL) except for gradients of a mean, where it is RAD_EINVAL. A
 * backward pass of a sum over an empty batch writes a zero gradient.
 *
 * Handles. Handles are opaque: `typedef struct rad_flow rad_flow;` and so
 * on. Each *_create / *_load has a *_free that accepts NULL.
 *
 * Threads. Functions taking a `const T *` handle may be called on the same
 * handle from many threads at once. Functions taking a non-const handle
 * (set_params, training) need exclusive access. A rad_workspace is used by
 * one thread at a time.
 */
#ifndef RAD_RAD_H
#define RAD_RAD_H

#include <stddef.h>
#include <stdint.h>

/* ---- Export macro ------------------------------------------------------ */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(RAD_BUILDING_LIBRARY)
#    define RAD_API __declspec(dllexport)
#  else
#    define RAD_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define RAD_API __attribute__((visibility("default")))
#else
#  define RAD_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ----------------------------------------------------------- */
#define RAD_VERSION_MAJOR 0
#define RAD_VERSION_MINOR 1
#define RAD_VERSION_PATCH 0
#define RAD_VERSION_NUMBER \
  (RAD_VERSION_MAJOR * 10000 + RAD_VERSION_MINOR * 100 + RAD_VERSION_PATCH)
#define RAD_VERSION_STRING "0.1.0"

/* Runtime version of the loaded library: MAJOR*10000 + MINOR*100 + PATCH.
   Compare with RAD_VERSION_NUMBER to detect a header/library mismatch. */
RAD_API int rad_version(void);
/* "MAJOR.MINOR.PATCH" of the loaded library. Static storage. */
RAD_API const char *rad_version_string(void);

/* ---- Status codes (pinned values; appended, never reused) ------------- */
enum {
  RAD_OK = 0,
  RAD_EINVAL = -1,      /* invalid argument: NULL, unknown enum, zero size */
  RAD_ENOMEM = -2,      /* out of memory */
  RAD_ESIZE = -3,       /* a length does not match the handle */
  RAD_ETOOBIG = -4,     /* a size's byte count overflows size_t, or a
                           model beyond the file format's limits */
  RAD_ENONFINITE = -5,  /* NaN or infinity in the input */
  RAD_ELABEL = -6,      /* label outside {1,2,3} or inconsistent with z */
  RAD_EMASK = -7,       /* invalid mask (wrong length, not 0/1, all zeros) */
  RAD_EOVERFLOW = -8,   /* a result overflows float32 */
  RAD_ENUMERIC = -9,    /* training step gave a non-finite loss/gradient */
  RAD_EIO = -10,        /* I/O error (open, read, write, rename) */
  RAD_EFORMAT = -11,    /* not a librad file (bad magic) */
  RAD_EVERSION = -12,   /* file format version newer than this library */
  RAD_ETRUNCATED = -13, /* file or buffer truncated */
  RAD_ECORRUPT = -14,   /* checksum mismatch or inconsistent content */
  RAD_EMISMATCH = -15,  /* handles that do not belong together */
  RAD_EUNSUPPORTED = -16, /* operation not defined for this handle */
  RAD_EREJECTED = -17     /* component sampling: attempts exhausted */
};
/* The smallest (most negative) status code this library version defines. */
#define RAD_STATUS_MIN (-17)
RAD_API int rad_status_min(void);

/* A short English description of a status code. Static storage, never
   NULL; unknown codes give "unknown status code". */
RAD_API const char *rad_strerror(int code);

/* ======================================================================
 * Options (setters with pinned keys and queryable bounds)
 * ====================================================================== */
enum {
  /* Flows and coupling layers (rad_flow_set_option ...): */
  /* Soft clamp B of the fold's boundary logits: l = B tanh(q / B)
     (MODEL.md section 4). Default 3. 0 or +infinity mean unclamped. */
  RAD_OPTION_LOGIT_BOUND = 1,

  /* Adam (rad_adam_set_option) and fits (rad_fit_options_set): */
  RAD_OPTION_LEARNING_RATE = 2, /* > 0, default 1e-3 */
  RAD_OPTION_BETA1 = 3,         /* [0, 1), default 0.9 */
  RAD_OPTION_BETA2 = 4,         /* [0, 1), default 0.999 */
  RAD_OPTION_EPSILON = 5,       /* > 0, default 1e-8 */

  /* Fits only (rad_fit_options_set): */
  RAD_OPTION_BATCH_SIZE = 6,   /* samples per step, >= 1, default 500 */
  RAD_OPTION_STEPS = 7,        /* Adam steps of this call, default 1000 */
  RAD_OPTION_SEED = 8,         /* minibatch order, an integer < 2^53 */
  RAD_OPTION_EVAL_EVERY = 9,   /* held-out evaluation period in steps
                                  (default 1000; 0 = only at the end) */
  RAD_OPTION_REPORT_EVERY = 10, /* callback period in steps (default 100;
                                   0 = only at the end) */
  RAD_OPTION_KEEP_BEST = 11,   /* 1: end with the parameters of the best
                                  held-out evaluation (default 0) */
  RAD_OPTION_LR_SCHEDULE = 12, /* 0: constant (default); 1: cosine decay
                                  from the learning rate to
                                  LR_FINAL_FRACTION of it over the steps */
  RAD_OPTION_LR_FINAL_FRACTION = 13, /* [0, 1], default 0.01 */
  RAD_OPTION_LR_HORIZON = 14,  /* the schedule's length in optimizer steps,
                                  counted from the optimizer's step count,
                                  so a resumed fit continues the same
                                  decay; 0 (default): this call's steps */

  /* Workspaces (rad_workspace_set_option) and fits: */
  RAD_OPTION_THREADS = 15,     /* threads a batch is split across, 1 .. 64
                                  (default 1) */
  RAD_OPTION_CLIP_NORM = 16    /* fits: scale each minibatch gradient down
                                  to at most this Euclidean norm before the
                                  Adam step (0 = no clipping, default) */
};
/* Range and default of an option; any output may be NULL.
   RAD_EINVAL for an unknown option. */
RAD_API int rad_option_bounds(int option, double *min, double *max,
                              double *default_value);

/* ======================================================================
 * The folding nonlinearity (MODEL.md sections 1-3)
 *
 * A bank of `units` independent normalized folds. Unit j has boundary
 * logits l+ (3 values) and l- (3 values): p+ = softmax(l+) is the gating
 * distribution at zh = +1, p- = softmax(l-) at zh = -1; they fix the five
 * slopes and the breakpoints a < b. Logits are used exactly as given (the
 * soft clamp belongs to the coupling layer). A new fold has all logits 0:
 * alpha1 = alpha2 = alpha3 = 3, outer slopes 1, a = -1/3, b = 1/3.
 * Batches are n x units, row-major; labels are 1, 2, 3.
 * ====================================================================== */
typedef struct rad_fold rad_fold;

RAD_API int rad_fold_create(size_t units, rad_fold **out);
RAD_API void rad_fold_free(rad_fold *fold);
RAD_API size_t rad_fold_units(const rad_fold *fold);
/* logits: units * 6 floats; unit j holds l+_1, l+_2, l+_3, l-_1, l-_2, l-_3
   at 6j .. 6j+5. len must be units * 6. */
RAD_API int rad_fold_set_logits(rad_fold *fold, const float *logits,
                                size_t len);
RAD_API int rad_fold_get_logits(const rad_fold *fold, float *logits,
                                size_t len);
/* Slopes of unit `unit` in double precision: out[0..6] = alpha1, alpha2,
   alpha3, alpha_minus, alpha_plus, a, b. */
RAD_API int rad_fold_slopes(const rad_fold *fold, size_t unit, double out[7]);
/* zh = f(u), the label k of u's piece and log |f'(u)|. k and log_slope may
   be NULL. */
RAD_API int rad_fold_forward(const rad_fold *fold, size_t n, const float *u,
                             float *zh, int32_t *k, float *log_slope);
/* u = f^-1(zh; k). RAD_ELABEL if a label is outside {1,2,3} or cannot have
   produced zh (|zh| > 1 beyond 1e-5 (1 + |zh|) with an inner label). */
RAD_API int rad_fold_inverse(const rad_fold *fold, size_t n, const float *zh,
                             const int32_t *k, float *u);
/* Backward of a scalar L through the fold: given gzh = dL/dzh and
   glog_slope = dL/d log|f'(u)| (n x units each; glog_slope may be NULL
   for zero), writes gu = dL/du (n x units, may be NULL) and glogits =
   dL/dlogits summed over the batch (units * 6, may be NULL). */
RAD_API int rad_fold_backward(const rad_fold *fold, size_t n, const float *u,
                              const float *gzh, const float *glog_slope,
                              float *gu, float *glogits);
/* log p(k | z) of the gating distribution (MODEL.md section 2) for
   normalized outputs zh (n x units), gating-network logits g
   (n x units x 3: unit j's three logits at 3j .. 3j+2) and labels k.
   For |zh| > 1 there is no gating term: log p is 0 when k is the only
   label possible (1 below -1, 3 above 1), RAD_ELABEL otherwise. */
RAD_API int rad_fold_gate_log_prob(const rad_fold *fold, size_t n,
                                   const float *zh, const float *g,
                                   const int32_t *k, float *log_p);
/* Backward of L through rad_fold_gate_log_prob: given glog_p = dL/dlog p
   (n x units), writes gzh (n x units), gg (n x units x 3) and glogits
   (units * 6, summed over the batch); each may be NULL. */
RAD_API int rad_fold_gate_backward(const rad_fold *fold, size_t n,
                                   const float *zh, const float *g,
                                   const int32_t *k, const float *glog_p,
                                   float *gzh, float *gg, float *glogits);

/* ======================================================================
 * The gating network g(z): dense(in_dim -> hidden), ReLU,
 * dense(hidden -> 3 * units), linear output (MODEL.md section 4).
 *
 * Parameters, in get_params order: W1 (hidden x in_dim, row-major),
 * b1 (hidden), W2 (3 units x hidden, row-major; row c * units + j gives
 * component c of unit j), b2 (3 units, same order). Initialization: W1, b1
 * uniform in +-1/sqrt(in_dim) from the seed, W2 = b2 = 0.
 * Logits come out n x units x 3: unit j's three logits at 3j .. 3j+2.
 * ====================================================================== */
typedef struct rad_gate rad_gate;

RAD_API int rad_gate_create(size_t in_dim, size_t hidden, size_t units,
                            uint64_t seed, rad_gate **out);
RAD_API void rad_gate_free(rad_gate *gate);
RAD_API size_t rad_gate_num_params(const rad_gate *gate);
RAD_API int rad_gate_get_params(const rad_gate *gate, float *out, size_t len);
RAD_API int rad_gate_set_params(rad_gate *gate, const float *in, size_t len);
/* logits: n x units x 3. */
RAD_API int rad_gate_logits(const rad_gate *gate, size_t n, const float *z,
                            float *logits);
/* Given glogits = dL/dlogits (n x units x 3): writes gz = dL/dz
   (n x in_dim) and gparams = dL/dparams summed over the batch; either may
   be NULL. */
RAD_API int rad_gate_backward(const rad_gate *gate, size_t n, const float *z,
                              const float *glogits, float *gz,
                              float *gparams);

/* ======================================================================
 * Coupling layers (MODEL.md sections 4 and 5)
 *
 * A binary mask of length dim: 0 = conditioning dimension (passed
 * through), 1 = transformed. All ones is valid (the conditioner then has
 * no input and learns constants); all zeros is RAD_EMASK. A NULL mask
 * (with mask_len 0) is the default mask of layer 0: odd indices are
 * transformed; all ones for dim = 1.
 *
 * RAD layer parameters, in get_params order:
 *   conditioner h: W1 (hidden x d1), b1 (hidden), W2 (10 d2 x hidden),
 *     b2 (10 d2), where output row r * d2 + j is, for transformed unit j
 *     and r = 0..9: r1, t1, q+_1, q+_2, q+_3, q-_1, q-_2, q-_3, r2, t2;
 *   c1 (d2), c2 (d2): the tanh scales of s1 = c1 tanh(r1), s2 = c2 tanh(r2);
 *   gating network g: W1 (G x dim), b1 (G), W2 (3 d2 x G), b2 (3 d2),
 *     output row c * d2 + j is component c of unit j.
 * Affine layer parameters: W1 (hidden x d1), b1, W2 (2 d2 x hidden), b2
 *   (rows: r then t), c (d2).
 * d1, d2 count the mask's zeros and ones; transformed and conditioning
 * dimensions are taken in increasing index order.
 * ====================================================================== */
enum { RAD_LAYER_RAD = 1, RAD_LAYER_AFFINE = 2 };

typedef struct rad_coupling rad_coupling;

/* gate_hidden is ignored (may be 0) for affine layers; hidden (and
   gate_hidden for RAD layers) must be >= 1. Limits, those of the model
   file format (docs/file-format.md), so that every model librad builds
   can be saved and loaded back: dim <= 2^20, hidden and gate_hidden <=
   2^24, and a flow holds at most 2^16 layers (rad_flow_create,
   rad_flow_add_coupling); beyond is RAD_ETOOBIG. */
RAD_API int rad_coupling_create(int layer_kind, size_t dim,
                                const uint8_t *mask, size_t mask_len,
                                size_t hidden, size_t gate_hidden,
                                uint64_t seed, rad_coupling **out);
RAD_API void rad_coupling_free(rad_coupling *layer);
RAD_API int rad_coupling_kind(const rad_coupling *layer);
RAD_API size_t rad_coupling_dim(const rad_coupling *layer);
RAD_API size_t rad_coupling_num_params(const rad_coupling *layer);
/* Labels per sample: d2 for a RAD layer, 0 for an affine one. */
RAD_API size_t rad_coupling_num_labels(const rad_coupling *layer);
/* Conditioner width H, and gating width G (0 for affine layers). */
RAD_API size_t rad_coupling_hidden(const rad_coupling *layer);
RAD_API size_t rad_coupling_gate_hidden(const rad_coupling *layer);
RAD_API int rad_coupling_get_mask(const rad_coupling *layer, uint8_t *mask,
                                  size_t len);
RAD_API int rad_coupling_get_params(const rad_coupling *layer, float *out,
                                    size_t len);
RAD_API int rad_coupling_set_params(rad_coupling *layer, const float *in,
                                    size_t len);
RAD_API int rad_coupling_set_option(rad_coupling *layer, int option,
                                    double value);
RAD_API int rad_coupling_get_option(const rad_coupling *layer, int option,
                                    double *value);
/* z = layer(x); k: n x num_labels (may be NULL); log_det: n (may be NULL),
   the layer's contribution to log p: sum over units of s1 + s2 +
   log|f'(u)| + log p(k|z) (RAD) or of s (affine). */
RAD_API int rad_coupling_forward(const rad_coupling *layer, size_t n,
                                 const float *x, float *z, int32_t *k,
                                 float *log_det);
/* Exact inverse given the labels (k may be NULL for affine layers). */
RAD_API int rad_coupling_inverse(const rad_coupling *layer, size_t n,
                                 const float *z, const int32_t *k, float *x);
/* Backward of L = sum_i gz_i . z_i + glog_det_i * log_det_i (in effect):
   given gz (n x dim) and glog_det (n; NULL for zero), writes gx
   (n x dim) and gparams (num_params, summed over the batch); either
   output may be NULL. */
RAD_API int rad_coupling_backward(const rad_coupling *layer, size_t n,
                                  const float *x, const float *gz,
                                  const float *glog_det, float *gx,
                                  float *gparams);

/* ======================================================================
 * Flows (MODEL.md section 6): a stack of coupling layers over N(0, I).
 * The signatures in this section are exact and stable: code outside
 * the project calls them through ctypes.
 * ====================================================================== */
typedef struct rad_flow rad_flow;

/* A stack of n_layers coupling layers of one kind with default alternating
   masks (layer l transforms the dims i with (i + l) odd; all ones for
   dim = 1), conditioner width `hidden`, gating width `gate_hidden` (ignored,
   and may be 0, for affine layers), initialised from `seed`. */
RAD_API int rad_flow_create(int layer_kind, size_t dim, size_t n_layers,
                            size_t hidden, size_t gate_hidden, uint64_t seed,
                            rad_flow **out);
RAD_API void rad_flow_free(rad_flow *flow);

/* An empty flow (no layers: log p is the standard normal) to which layers
   are appended with rad_flow_add_coupling. */
RAD_API int rad_flow_create_empty(size_t dim, rad_flow **out);
/* Appends a copy of `layer` (its parameters and options) on top of the
   flow. The flow does not keep `layer`. RAD_EMISMATCH if dims differ. */
RAD_API int rad_flow_add_coupling(rad_flow *flow, const rad_coupling *layer);
RAD_API size_t rad_flow_num_layers(const rad_flow *flow);
/* A copy of layer `index` (0 = the layer applied first to x). */
RAD_API int rad_flow_get_coupling(const rad_flow *flow, size_t index,
                                  rad_coupling **out);
/* A deep copy of the flow. */
RAD_API int rad_flow_copy(const rad_flow *flow, rad_flow **out);
/* Sets an option on every layer (RAD_OPTION_LOGIT_BOUND). */
RAD_API int rad_flow_set_option(rad_flow *flow, int option, double value);
/* The option's value on layer 0 (or its default for an empty flow). */
RAD_API int rad_flow_get_option(const rad_flow *flow, int option,
                                double *value);

/* Standardization: a fixed (non-trainable) elementwise affine layer at
   the bottom of the flow, z = (x - shift) / scale, applied to x before
   layer 0. Its log-determinant, -sum log scale, is part of log p, so
   densities are in x's own units and a saved model evaluates raw data.
   scale > 0; len = dim. shift = scale = NULL removes it. A new flow has
   none; get then gives shift 0, scale 1. */
RAD_API int rad_flow_set_standardization(rad_flow *flow, const float *shift,
                                         const float *scale, size_t len);
RAD_API int rad_flow_get_standardization(const rad_flow *flow, float *shift,
                                         float *scale, size_t len);
RAD_API int rad_flow_has_standardization(const rad_flow *flow);

/* Column names, kept with the flow and its files: count = dim strings of
   at most 4096 bytes (copied); names = NULL removes them. */
RAD_API int rad_flow_set_column_names(rad_flow *flow,
                                      const char *const *names, size_t count);
/* Name of column i, or NULL (no names, or i >= dim). The string belongs
   to the flow and lives until the names change or the flow is freed. */
RAD_API const char *rad_flow_column_name(const rad_flow *flow, size_t i);

RAD_API size_t rad_flow_dim(const rad_flow *flow);
RAD_API size_t rad_flow_num_params(const rad_flow *flow);
/* Discrete latents per sample: one per folded unit per RAD layer. */
RAD_API size_t rad_flow_num_labels(const rad_flow *flow);

/* All trainable parameters as one flat vector: layer 0's block (in the
   coupling-layer order above), then layer 1's, and so on. */
RAD_API int rad_flow_get_params(const rad_flow *flow, float *out, size_t len);
RAD_API int rad_flow_set_params(rad_flow *flow, const float *in, size_t len);

/* log p(x) for n samples, in nats. A finite row whose computation
   overflows gets -inf; never NaN. */
RAD_API int rad_flow_log_prob(const rad_flow *flow, size_t n, const float *x,
                              float *log_prob);

/* Inference x -> (z, k). z: n*d; k: n*num_labels or NULL;
   log_prob: n or NULL. Labels run in forward layer order (first layer
   first), then unit order within the layer. RAD_EOVERFLOW if some z
   overflows float32 (outputs then partly written). */
RAD_API int rad_flow_forward(const rad_flow *flow, size_t n, const float *x,
                             float *z, int32_t *k, float *log_prob);

/* Exact inverse given z and the labels k (as forward returned them); k
   may be NULL only when num_labels is 0. RAD_ELABEL if a label cannot
   have produced z (nothing written). */
RAD_API int rad_flow_inverse(const rad_flow *flow, size_t n, const float *z,
                             const int32_t *k, float *x);

/* Exact sampling; z and k may be NULL. Sample i depends only on (seed, i)
   (counter-based randomness), so results do not depend on batch size,
   chunking or threads. RAD_EOVERFLOW if a sample overflows float32
   (outputs then partly written). */
RAD_API int rad_flow_sample(const rad_flow *flow, uint64_t seed, size_t n,
                            float *x, float *z, int32_t *k);

/* Samples first .. first + n - 1 of the seed's sequence: the same values
   rad_flow_sample would give at those positions, so a large sample can be
   drawn in pieces. */
RAD_API int rad_flow_sample_at(const rad_flow *flow, uint64_t seed,
                               uint64_t first, size_t n, float *x, float *z,
                               int32_t *k);

/* Gradient of the MEAN log-likelihood of the batch w.r.t. every parameter
   (same order as get_params). mean_log_prob may be NULL. n = 0 is
   RAD_EINVAL. RAD_ENUMERIC (nothing written) if the mean or the gradient
   is not finite. */
RAD_API int rad_flow_grad(const rad_flow *flow, size_t n, const float *x,
                          float *grad, double *mean_log_prob);

/* Gradient of the WEIGHTED mean log-likelihood, sum_i w_i log p(x_i) /
   sum_i w_i, for importance-weighted or class-weighted fits. Weights are
   finite and >= 0 with a positive sum (RAD_EINVAL otherwise); a row of
   weight 0 contributes nothing, even with log p = -inf. */
RAD_API int rad_flow_grad_weighted(const rad_flow *flow, size_t n,
                                   const float *x, const float *weights,
                                   float *grad, double *weighted_mean_log_prob);

/* The gating distribution of every discrete label: for sample i and label
   j (as in rad_flow_forward), probs[(i * num_labels + j) * 3 + c] =
   p(k = c + 1 | z) at that layer's output. Where the fold's input lies in
   an outer piece the label is certain (probabilities 1, 0, 0 or 0, 0, 1).
   RAD_EOVERFLOW (outputs written) when a row overflows inside the flow so
   that its probabilities are not numbers (never NaN with RAD_OK). */
RAD_API int rad_flow_gate_probs(const rad_flow *flow, size_t n,
                                const float *x, float *probs);

/* Exact samples of one mixture component: every label fixed to k
   (num_labels values, as rad_flow_forward returns them). By rejection:
   attempt a of sample i draws z from (seed, i, a), inverts with the labels
   k, and keeps x with probability prod p(k | z) (0 where a label cannot
   have produced z). The acceptance rate is the component's mixture weight
   P(K = k); *acceptance (may be NULL) receives the observed rate. z may be
   NULL. RAD_EREJECTED when a sample is not accepted within max_attempts
   (1 .. 2^32 - 1; outputs then partly written). */
RAD_API int rad_flow_sample_component(const rad_flow *flow, uint64_t seed,
                                      const int32_t *k, size_t n,
                                      size_t max_attempts, float *x, float *z,
                                      double *acceptance);

/* The score d log p(x) / dx (n x d), and optionally log p (n).
   RAD_EOVERFLOW (outputs written) when a row lies so far in the tails that
   its score is not a finite number. */
RAD_API int rad_flow_score(const rad_flow *flow, size_t n, const float *x,
                           float *score, float *log_prob);

/* Every layer's output: zs is n_layers blocks of n x d (block l holds the
   output of layer l, the last block is z); k as in rad_flow_forward (may
   be NULL). */
RAD_API int rad_flow_forward_layers(const rad_flow *flow, size_t n,
                                    const float *x, float *zs, int32_t *k);

/* ======================================================================
 * Workspaces: scratch memory for a flow and a maximum batch size, so the
 * *_ws entry points allocate nothing. One workspace per thread. Batches
 * are processed in chunks of at most max_batch samples, and at most 512
 * (larger chunks only push the activations out of cache), so the
 * scratch is bounded whatever the batch. A workspace may serve any
 * flow whose scratch fits in it (in chunks down to one sample; a flow no
 * larger than the one it was created for always fits); otherwise the
 * call returns RAD_EMISMATCH.
 * ====================================================================== */
typedef struct rad_workspace rad_workspace;

RAD_API int rad_workspace_create(const rad_flow *flow, size_t max_batch,
                                 rad_workspace **out);
RAD_API void rad_workspace_free(rad_workspace *ws);
RAD_API size_t rad_workspace_max_batch(const rad_workspace *ws);
/* Bytes of scratch the workspace holds (all threads). */
RAD_API size_t rad_workspace_size(const rad_workspace *ws);
/* RAD_OPTION_THREADS: a workspace with T > 1 threads keeps T - 1 worker
   threads (sleeping between calls) and splits each batch of at least 2T
   samples into T contiguous ranges, one per thread, each with its own
   scratch of the workspace's size. Per-sample results (log_prob, forward,
   inverse, sample) do not depend on T; batch means and gradients sum the
   ranges in a fixed order, so they are reproducible for a given T. The
   workspace is still used by one calling thread at a time. OpenBLAS's own
   thread count is left alone (small matrices run single-threaded): set
   OPENBLAS_NUM_THREADS=1 when using T > 1, or OpenBLAS's threads and
   librad's compete for the cores. T is at most 64 because every librad
   thread calls OpenBLAS at once, and OpenBLAS has a fixed number of
   buffers for concurrent callers (Debian's build: 128, for all the
   process's threads together); more callers than that crash it. */
RAD_API int rad_workspace_set_option(rad_workspace *ws, int option,
                                     double value);
RAD_API int rad_workspace_get_option(const rad_workspace *ws, int option,
                                     double *value);

RAD_API int rad_flow_log_prob_ws(const rad_flow *flow, rad_workspace *ws,
                                 size_t n, const float *x, float *log_prob);
RAD_API int rad_flow_forward_ws(const rad_flow *flow, rad_workspace *ws,
                                size_t n, const float *x, float *z,
                                int32_t *k, float *log_prob);
RAD_API int rad_flow_inverse_ws(const rad_flow *flow, rad_workspace *ws,
                                size_t n, const float *z, const int32_t *k,
                                float *x);
RAD_API int rad_flow_sample_ws(const rad_flow *flow, rad_workspace *ws,
                               uint64_t seed, size_t n, float *x, float *z,
                               int32_t *k);
RAD_API int rad_flow_sample_at_ws(const rad_flow *flow, rad_workspace *ws,
                                  uint64_t seed, uint64_t first, size_t n,
                                  float *x, float *z, int32_t *k);
RAD_API int rad_flow_grad_ws(const rad_flow *flow, rad_workspace *ws,
                             size_t n, const float *x, float *grad,
                             double *mean_log_prob);
RAD_API int rad_flow_grad_weighted_ws(const rad_flow *flow, rad_workspace *ws,
                                      size_t n, const float *x,
                                      const float *weights, float *grad,
                                      double *weighted_mean_log_prob);
RAD_API int rad_flow_score_ws(const rad_flow *flow, rad_workspace *ws,
                              size_t n, const float *x, float *score,
                              float *log_prob);

/* ======================================================================
 * Training: Adam ascending the log-likelihood, and fits
 * ====================================================================== */

/* Adam (Kingma and Ba) for gradient ASCENT: with g the gradient of the
   objective to maximize, m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
   params += lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps). The
   state (moments and step count) lives in the handle, separate from the
   flow, so a fit can stop and resume. */
typedef struct rad_adam rad_adam;

RAD_API int rad_adam_create(size_t num_params, rad_adam **out);
RAD_API void rad_adam_free(rad_adam *opt);
RAD_API size_t rad_adam_num_params(const rad_adam *opt);
/* Steps taken so far (t). */
RAD_API uint64_t rad_adam_steps(const rad_adam *opt);
/* RAD_OPTION_LEARNING_RATE, BETA1, BETA2, EPSILON. */
RAD_API int rad_adam_set_option(rad_adam *opt, int option, double value);
RAD_API int rad_adam_get_option(const rad_adam *opt, int option,
                                double *value);
/* Zero moments and step count (hyperparameters are kept). */
RAD_API void rad_adam_reset(rad_adam *opt);
/* One ascent step on params (len = num_params). RAD_ENONFINITE if grad
   has a NaN or infinity, RAD_ENUMERIC if the step would make a parameter
   non-finite: in both cases params and the state are unchanged. */
RAD_API int rad_adam_step(rad_adam *opt, float *params, const float *grad,
                          size_t len);
/* The optimizer state as one vector (for saving a fit): m (len), v (len),
   then t. len must be num_params. */
RAD_API int rad_adam_get_state(const rad_adam *opt, float *m, float *v,
                               uint64_t *t, size_t len);
RAD_API int rad_adam_set_state(rad_adam *opt, const float *m, const float *v,
                               uint64_t t, size_t len);

/* Fit options: an opaque set of RAD_OPTION_* values with defaults. */
typedef struct rad_fit_options rad_fit_options;
RAD_API int rad_fit_options_create(rad_fit_options **out);
RAD_API void rad_fit_options_free(rad_fit_options *options);
RAD_API int rad_fit_options_set(rad_fit_options *options, int option,
                                double value);
RAD_API int rad_fit_options_get(const rad_fit_options *options, int option,
                                double *value);

/* Progress: called every REPORT_EVERY steps and at the end, with the step
   count of the optimizer, the mean training log-likelihood of the
   minibatches since the previous call, and the latest held-out mean
   log-likelihood (NaN before the first evaluation or without a held-out
   set). Return nonzero to stop the fit (it then returns RAD_OK). */
typedef int (*rad_fit_callback)(void *user, uint64_t step,
                                double train_log_likelihood,
                                double heldout_log_likelihood);

/* Maximizes the mean log-likelihood of x (n x dim) by minibatch Adam.
   opt may be NULL (a fresh Adam, discarded at the end); given, it must
   have num_params entries and is continued (its step count goes on, and
   with it the minibatch order, so a fit resumed with the same data, seed
   and optimizer state takes the same steps as one that never stopped;
   with a schedule, set LR_HORIZON for that). The learning rate and its
   schedule come from the options; beta1, beta2 and epsilon from opt.
   options may be NULL (defaults). Minibatches: the data is visited in
   epochs, each a fresh permutation of 0..n-1 drawn from (SEED, epoch);
   optimizer step t uses positions t*B .. t*B+B-1 of the concatenated
   permutations. A held-out set (may be NULL with n_heldout 0) is
   evaluated every EVAL_EVERY steps and at the end. Nothing is allocated
   per step. A step whose loss or gradient is not finite stops the fit
   with RAD_ENUMERIC, parameters as before that step. *steps_done (may be
   NULL) receives the number of steps taken by this call. */
RAD_API int rad_flow_fit(rad_flow *flow, rad_adam *opt,
                         const rad_fit_options *options, size_t n,
                         const float *x, size_t n_heldout,
                         const float *heldout, rad_fit_callback callback,
                         void *user, uint64_t *steps_done);

/* ======================================================================
 * Files (docs/file-format.md): magic, format version, little-endian
 * fixed-width fields, every layer's kind, mask, widths and logit bound,
 * the standardization, the column names, the parameters, and a CRC-32
 * over the whole. Loading refuses foreign data (RAD_EFORMAT), newer
 * formats (RAD_EVERSION), truncated data (RAD_ETRUNCATED) and corrupted or
 * inconsistent data (RAD_ECORRUPT), never crashes, and leaves *out NULL on
 * failure. Saving writes a temporary file beside the target, syncs it and
 * renames it over the target: a crash leaves the old file or the new one.
 * ====================================================================== */

/* A portable, versioned, checksummed file; load rejects anything else. */
RAD_API int rad_flow_save(const rad_flow *flow, const char *path);
RAD_API int rad_flow_load(const char *path, rad_flow **out);
/* In memory: with buf NULL, *size receives the bytes needed; otherwise
   cap must be at least that (RAD_ESIZE) and *size receives the bytes
   written. */
RAD_API int rad_flow_save_to_buffer(const rad_flow *flow, void *buf,
                                    size_t cap, size_t *size);
RAD_API int rad_flow_load_from_buffer(const void *buf, size_t size,
                                      rad_flow **out);
/* The optimizer (moments, step count, hyperparameters), so that a long
   fit can stop and resume (rad_flow_fit continues the minibatch order
   from the optimizer's step count). */
RAD_API int rad_adam_save(const rad_adam *opt, const char *path);
RAD_API int rad_adam_load(const char *path, rad_adam **out);
RAD_API int rad_adam_save_to_buffer(const rad_adam *opt, void *buf,
                                    size_t cap, size_t *size);
RAD_API int rad_adam_load_from_buffer(const void *buf, size_t size,
                                      rad_adam **out);

/* ======================================================================
 * The paper's six 2-D problems (shared/docs/DATASETS.md), as seeded
 * samplers. Sample i depends only on (seed, i).
 * ====================================================================== */
enum {
  RAD_PROBLEM_GRID = 1,      /* 5x5 grid of Gaussians, std 0.05 */
  RAD_PROBLEM_RING = 2,      /* 8 Gaussians on the unit circle, std 0.01 */
  RAD_PROBLEM_MOONS = 3,     /* two moons, noise 0.1 */
  RAD_PROBLEM_CIRCLES = 4,   /* two circles, radii 1 and 0.5, noise 0.1 */
  RAD_PROBLEM_SPIRAL = 5,    /* one spiral arm, noise 0.01 */
  RAD_PROBLEM_MANY_MOONS = 6 /* six moons, noise 0.05 */
};
/* Number of problems (6); ids run from 1 to rad_problem_count(). */
RAD_API int rad_problem_count(void);
/* "grid", "ring", "moons", "circles", "spiral", "many_moons"; NULL for an
   unknown id. Static storage. */
RAD_API const char *rad_problem_name(int problem);
/* The id of a problem name (exact, case-sensitive), or RAD_EINVAL. */
RAD_API int rad_problem_from_name(const char *name);
/* n points (n x 2, row-major) of the problem. */
RAD_API int rad_problem_sample(int problem, uint64_t seed, size_t n, float *x);
/* The best mean log-likelihood any model can reach (the negative entropy
   of the data, DATASETS.md), in nats; NaN for an unknown id. */
RAD_API double rad_problem_true_log_likelihood(int problem);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RAD_RAD_H */
