/* Input validation. This file must never be compiled with -ffast-math (or
   -ffinite-math-only): those flags let the compiler assume no NaN or
   infinity exists and delete exactly these checks. */
#include <math.h>

#include "internal.h"

#if defined(__FAST_MATH__) || defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
#error "validate.c must be built without -ffast-math / -ffinite-math-only"
#endif

int rad__isfinite_f(float v) { return isfinite(v) != 0; }
int rad__isfinite_d(double v) { return isfinite(v) != 0; }

int rad__all_finite(const float *x, size_t len) {
  /* Branch-free accumulation: x - x is 0 for finite x, NaN otherwise. */
  float acc = 0.0f;
  for (size_t i = 0; i < len; i++) acc += (x[i] - x[i]);
  return acc == 0.0f;
}

int rad__labels_valid(const int32_t *k, size_t len) {
  int ok = 1;
  for (size_t i = 0; i < len; i++) ok &= (k[i] >= 1) & (k[i] <= 3);
  return ok;
}

int rad__check_batch(size_t n, size_t d, size_t elem_size) {
  size_t t;
  if (!rad__mul_size(n, d, &t) || !rad__mul_size(t, elem_size, &t))
    return RAD_ETOOBIG;
  return RAD_OK;
}
