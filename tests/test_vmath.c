/*
 * test_vmath.c: accuracy of librad's inline float32 exp, log, tanh and
 * sin/cos (src/vmath.h) against double-precision libm, over dense sweeps
 * of the domains the library uses, and their special values.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmath.h"

/* error in units of the float spacing at the true value */
static double ulps(float got, double want) {
  if (want == 0.0) return fabs(got) / FLT_TRUE_MIN;
  int e;
  frexp(want, &e);
  double ulp = ldexp(1.0, e - 24);
  if (ulp < FLT_TRUE_MIN) ulp = FLT_TRUE_MIN;
  return fabs((double)got - want) / ulp;
}

/* Floats between a and b (same sign, 0 <= a < b or a < b <= 0) taken
   every `stride` representable values, plus b itself. */
static float bits_to_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static uint32_t float_to_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
#define SWEEP1(a, b, stride, body)                                             \
  do {                                                                         \
    uint32_t ua_ = float_to_bits(fabsf(a)), ub_ = float_to_bits(fabsf(b));     \
    uint32_t lo_ = ua_ < ub_ ? ua_ : ub_, hi_ = ua_ < ub_ ? ub_ : ua_;         \
    float sg_ = ((a) < 0 || (b) < 0) ? -1.0f : 1.0f;                           \
    for (uint64_t u_ = lo_; u_ <= hi_; u_ += (stride)) {                       \
      float x = sg_ * bits_to_float((uint32_t)u_);                             \
      body;                                                                    \
    }                                                                          \
  } while (0)
/* a < 0 < b: both halves */
#define SWEEP(a, b, body)                                                      \
  do {                                                                         \
    if ((a) < 0 && (b) > 0) {                                                  \
      SWEEP1(-0.0f, a, 401, body);                                             \
      SWEEP1(0.0f, b, 401, body);                                              \
    } else                                                                     \
      SWEEP1(a, b, 401, body);                                                 \
  } while (0)

START_TEST(test_expf) {
  double worst = 0;
  SWEEP(-87.0f, 88.7f, {
    double u = ulps(rad__expf(x), exp((double)x));
    if (u > worst) worst = u;
  });
  printf("expf: worst %.2f ulp on [-87, 88.7]\n", worst);
  ck_assert(worst <= 2.0);
  ck_assert(isinf(rad__expf(89.0f)) && rad__expf(89.0f) > 0);
  ck_assert(isinf(rad__expf(INFINITY)));
  ck_assert(rad__expf(-88.0f) == 0.0f && rad__expf(-INFINITY) == 0.0f);
  ck_assert(isnan(rad__expf(NAN)));
  ck_assert(rad__expf(0.0f) == 1.0f);
}
END_TEST

START_TEST(test_logf) {
  double worst = 0;
  SWEEP(1.2e-38f, 3e38f, {
    double u = ulps(rad__logf(x), log((double)x));
    if (u > worst) worst = u;
  });
  printf("logf: worst %.2f ulp on [1.2e-38, 3e38]\n", worst);
  ck_assert(worst <= 2.0);
  ck_assert(rad__logf(1.0f) == 0.0f);
  ck_assert(isinf(rad__logf(INFINITY)) && rad__logf(INFINITY) > 0);
  ck_assert(isinf(rad__logf(0.0f)) && rad__logf(0.0f) < 0);
  ck_assert(isnan(rad__logf(-1.0f)) && isnan(rad__logf(NAN)));
}
END_TEST

START_TEST(test_tanhf) {
  double worst = 0;
  SWEEP(-20.0f, 20.0f, {
    double u = ulps(rad__tanhf(x), tanh((double)x));
    if (u > worst) worst = u;
  });
  /* tiny arguments: tanh(x) = x */
  SWEEP(1e-30f, 1e-3f, {
    double u = ulps(rad__tanhf(x), tanh((double)x));
    if (u > worst) worst = u;
  });
  printf("tanhf: worst %.2f ulp on [-20, 20]\n", worst);
  ck_assert(worst <= 3.0);
  ck_assert(rad__tanhf(1e30f) == 1.0f && rad__tanhf(-INFINITY) == -1.0f);
  ck_assert(rad__tanhf(0.0f) == 0.0f);
}
END_TEST

START_TEST(test_sincos) {
  double worst = 0;
  SWEEP(-1.0f, 1.0f, {
    float sv;
    float cv;
    rad__sincos_halfpi(x, &sv, &cv);
    double t = 1.5707963267948966 * x;
    worst = fmax(worst, fmax(fabs(sv - sin(t)), fabs(cv - cos(t))));
  });
  printf("sincos(pi z / 2): worst absolute error %.3g on [-1, 1]\n", worst);
  ck_assert(worst <= 3e-7); /* 3 ulp at 1 */
  float s, c;
  rad__sincos_halfpi(1.0f, &s, &c);
  ck_assert(fabsf(s - 1.0f) <= 2.5e-7f && fabsf(c) <= 2.5e-7f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("vmath");
  TCase *tc = tcase_create("vmath");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_expf);
  tcase_add_test(tc, test_logf);
  tcase_add_test(tc, test_tanhf);
  tcase_add_test(tc, test_sincos);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
