/* The kernels for any x86-64 (or other) CPU; see kern.h. */
#define KERN(name) name##_generic
#include "kern_body.h"

#if defined(__x86_64__) || defined(__i386__)
const rad__kernels *rad__kern(void) {
#if defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &rad__kernels_avx2;
#endif
  return &rad__kernels_generic;
}
#else
const rad__kernels rad__kernels_avx2 = {0};
const rad__kernels *rad__kern(void) { return &rad__kernels_generic; }
#endif
