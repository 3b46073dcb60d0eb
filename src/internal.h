/* Internal declarations shared by librad's source files. Not installed.
   Functions here have hidden visibility (the library is built with
   -fvisibility=hidden) and are named rad__* so that the static library does
   not pollute the user's namespace either. */
#ifndef RAD_INTERNAL_H
#define RAD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "rad/rad.h"

#define RAD_UNUSED(x) ((void)(x))
#define RAD_MIN(a, b) ((a) < (b) ? (a) : (b))

/* The model file format's limits (docs/file-format.md), enforced when
   layers and flows are built, so that every flow can be saved and loaded
   back: dimension, layers of a flow, conditioner and gating widths. */
#define RAD__MAX_DIM ((size_t)1 << 20)
#define RAD__MAX_LAYERS ((size_t)1 << 16)
#define RAD__MAX_WIDTH ((size_t)1 << 24)
/* and the longest column name, in bytes */
#define RAD__MAX_NAME 4096u
#define RAD_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RAD_PI 3.14159265358979323846

/* Default soft clamp of the fold's boundary logits (MODEL.md section 4). */
#define RAD_DEFAULT_LOGIT_BOUND 3.0f
/* Tolerance of the inverse for labels that cannot have produced zh. */
#define RAD_LABEL_TOL 1e-5f

/* ---- checked size arithmetic ----------------------------------------- */
/* *out = a * b; returns 0 on overflow. */
static inline int rad__mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return 0;
  *out = a * b;
  return 1;
}
/* Checks that n * d floats (or int32s) fit in size_t bytes. */
int rad__check_batch(size_t n, size_t d, size_t elem_size);

/* ---- validation (validate.c, never built with -ffast-math) ----------- */
int rad__all_finite(const float *x, size_t len);
int rad__labels_valid(const int32_t *k, size_t len);
int rad__isfinite_f(float v);
int rad__isfinite_d(double v);

/* ---- BLAS -------------------------------------------------------------- */
/* C = alpha * op(A) op(B) + beta * C, row-major, one cblas_sgemm call.
   ta/tb: 0 = no transpose, 1 = transpose. K = 0 is allowed (C = beta C). */
void rad__sgemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha,
                const float *A, size_t lda, const float *B, size_t ldb,
                float beta, float *C, size_t ldc);

/* Sample-column products in fixed blocks; see blas.c. */
#define RAD__COLS 128u
void rad__sgemm_cols(int ta, size_t M, size_t N, size_t K, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc);

/* ---- counter-based random numbers (rng.c) ----------------------------- */
/* Philox4x32-10 block for a 64-bit key and a 128-bit counter (c0..c3). */
void rad__philox(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2,
                 uint32_t c3, uint32_t out[4]);
/* Uniform in the open interval (0, 1) from 32 random bits. */
static inline double rad__u01(uint32_t r) {
  return ((double)r + 0.5) * (1.0 / 4294967296.0);
}
/* Uniform in the open interval (0, 1) in float from the top 24 bits. */
static inline float rad__u01f(uint32_t r) {
  return ((float)(r >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/* ---- scratch arena ----------------------------------------------------- */
/* With base == NULL the arena only measures: take returns NULL and
   counts the bytes, so the same carving code sizes and fills a block. */
typedef struct rad__arena {
  unsigned char *base;
  size_t cap;
  size_t used;
  int failed; /* a take did not fit (or overflowed) */
} rad__arena;
/* Bytes needed for `count` items of `size` bytes, 64-byte aligned. A
   saturating count: returns SIZE_MAX on overflow. */
size_t rad__arena_bytes(size_t count, size_t size);
void *rad__arena_take(rad__arena *a, size_t count, size_t size);

#endif
