/* The kernels for any x86-64 (or other) CPU, and the choice of table; see
   kern.h. */
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#define KERN(name) name##_generic
#include "kern_body.h"

#if defined(__x86_64__) || defined(__i386__)
#if defined(__GNUC__)
static int has_avx2(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int has_avx512(void) {
  return has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw");
}
#else
static int has_avx2(void) { return 0; }
static int has_avx512(void) { return 0; }
#endif

/* The best table the CPU runs; RAD_KERNELS=generic|avx2|avx512 in the
   environment asks for a lower one (for tests and comparisons; a table
   the CPU cannot run is never chosen). Read once. */
static const rad__kernels *choose(void) {
  const char *want = getenv("RAD_KERNELS");
  const int a512 = has_avx512(), a2 = has_avx2();
  if (want && strcmp(want, "generic") == 0) return &rad__kernels_generic;
  if (want && strcmp(want, "avx2") == 0 && a2) return &rad__kernels_avx2;
  if (a512) return &rad__kernels_avx512;
  if (a2) return &rad__kernels_avx2;
  return &rad__kernels_generic;
}

const rad__kernels *rad__kern(void) {
  /* a benign race: every thread computes the same pointer */
  static const rad__kernels *_Atomic chosen;
  const rad__kernels *k = atomic_load_explicit(&chosen, memory_order_relaxed);
  if (!k) {
    k = choose();
    atomic_store_explicit(&chosen, k, memory_order_relaxed);
  }
  return k;
}
#else
const rad__kernels rad__kernels_avx2 = {0};
const rad__kernels rad__kernels_avx512 = {0};
const rad__kernels *rad__kern(void) { return &rad__kernels_generic; }
#endif
