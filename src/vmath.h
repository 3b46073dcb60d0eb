/* Branch-free float32 exp, log, tanh and sin/cos of pi z / 2, inline, so
   that loops calling them vectorize (libm calls do not). Coefficients
   from Cephes (S. L. Moshier), which is in the public domain. Accuracy
   over the domains librad uses (tests/test_vmath.c measures it): exp and
   log within 2 ulp, tanh within 3 ulp, sin/cos within 1e-7 absolute. */
#ifndef RAD_VMATH_H
#define RAD_VMATH_H

#include <stdint.h>
#include <string.h>

static inline float rad__f_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline uint32_t rad__bits_from_f(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* e^x. Overflows to +inf above 88.72, flushes to 0 below -87.33 (no
   subnormals), NaN stays NaN. */
static inline float rad__expf(float x) {
  const float hi = 88.72283935546875f, lo = -87.33654022216797f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  /* n = round(x / ln 2) by the 1.5 * 2^23 trick (no rounding instruction) */
  const float shift = 12582912.0f;
  float n = (xc * 1.44269504088896341f + shift) - shift;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  /* scale by 2^n in two halves, so n = 128 (x near 88.7) does not overflow
     the exponent field */
  /* a NaN x passes the clamps; converting NaN to int is undefined, so it
     becomes 0 here (the result is NaN anyway, below) */
  int32_t ni = (int32_t)(n == n ? n : 0.0f);
  int32_t n1 = ni >> 1, n2 = ni - n1;
  float s1 = rad__f_from_bits((uint32_t)(n1 + 127) << 23);
  float s2 = rad__f_from_bits((uint32_t)(n2 + 127) << 23);
  float res = p * s1 * s2;
  res = x > hi ? (float)__builtin_inff() : res;
  res = x < lo ? 0.0f : res;
  return x != x ? x : res;
}

/* log(x) for normal x > 0; log(+inf) = +inf; x <= 0 or subnormal gives
   NaN / -inf as log does for 0 and negatives (subnormals: -inf). */
static inline float rad__logf(float x) {
  uint32_t u = rad__bits_from_f(x);
  int32_t e = (int32_t)((u >> 23) & 0xff) - 126;
  float m = rad__f_from_bits((u & 0x007fffffu) | 0x3f000000u); /* [0.5, 1) */
  /* m in [sqrt(1/2), sqrt(2)) */
  int small = m < 0.707106781186547524f;
  e = small ? e - 1 : e;
  float f = small ? (m + m) - 1.0f : m - 1.0f;
  float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  float fe = (float)e;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  float res = f + y + fe * 0.693359375f;
  res = x == (float)__builtin_inff() ? x : res;
  res = x < 1.17549435e-38f ? -(float)__builtin_inff() : res;
  res = x < 0.0f ? (float)__builtin_nanf("") : res;
  return x != x ? x : res;
}

/* tanh(x), odd, |tanh| <= 1. */
static inline float rad__tanhf(float x) {
  float ax = x < 0.0f ? -x : x;
  /* small |x|: x + x^3 P(x^2) */
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  /* large |x|: 1 - 2 / (e^{2|x|} + 1) */
  float e = rad__expf(ax + ax);
  float large = 1.0f - 2.0f / (e + 1.0f);
  large = x < 0.0f ? -large : large;
  return ax < 0.625f ? small : large;
}

/* sin and cos of t = pi z / 2 for z in [-1, 1] (|t| <= pi/2), by Taylor
   polynomials of degree 11 and 12 (error below 1e-7). */
static inline void rad__sincos_halfpi(float z, float *s, float *c) {
  float t = z * 1.57079632679489662f;
  float t2 = t * t;
  float ps = -2.5052108385e-8f;
  ps = ps * t2 + 2.7557319224e-6f;
  ps = ps * t2 - 1.9841269841e-4f;
  ps = ps * t2 + 8.3333333333e-3f;
  ps = ps * t2 - 1.6666666667e-1f;
  *s = ps * t2 * t + t;
  float pc = 2.0876756988e-9f;
  pc = pc * t2 - 2.7557319224e-7f;
  pc = pc * t2 + 2.4801587302e-5f;
  pc = pc * t2 - 1.3888888889e-3f;
  pc = pc * t2 + 4.1666666667e-2f;
  pc = pc * t2 - 0.5f;
  *c = pc * t2 + 1.0f;
}

#endif
