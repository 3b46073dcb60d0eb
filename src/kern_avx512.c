/* The kernels built with AVX-512 (F, DQ, VL, BW) (selected at run time when the CPU
   has them); see kern.h and the Makefile's per-file flags. */
#if defined(__x86_64__) || defined(__i386__)
#define KERN(name) name##_avx512
#include "kern_body.h"
#else
typedef int rad__kern_avx512_unused;
#endif
