#!/bin/bash
# tests/kernels.sh: the promise "sample i depends only on (seed, i), and
# per-sample results do not depend on the batch size, chunking or thread
# count" must hold with every OpenBLAS kernel, not only the one this CPU
# selects. OpenBLAS's AVX2 kernels (Haswell, Zen: what it picks on CPUs
# without AVX-512, and under valgrind) round a column of a product
# differently depending on where it sits in the matrix; librad keeps every
# sample at the same column (src/blas.c, src/stack.c). Before the fix,
# rad_flow_sample_at from an index that is not a multiple of 128, and the
# thread split, moved samples and changed their bits.
#
# Runs the C tests that compare results bit for bit across batch layouts
# with OPENBLAS_CORETYPE set to each kernel family the CPU can run.
#
# Then librad's own kernel tables (src/kern_*.c: generic, AVX2 + FMA,
# AVX-512), which the library picks by CPU: a machine with AVX-512 would
# otherwise never run the AVX2 and generic ones (valgrind runs AVX2 only).
# RAD_KERNELS selects each the CPU can run for the tests of the numerics
# (gradients against finite differences, densities, sampling, mixtures).
# Exit 0 pass, 1 fail, 77 skip (no CPU flags to read).
set -u
top=${RAD_TOP:-$(pwd)}
cd "$top" || exit 1
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || { echo "no /proc/cpuinfo: skipped"; exit 77; }
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
cores=""
has pni && cores="$cores Prescott"
has avx && cores="$cores Sandybridge"
has avx2 && has fma && cores="$cores Haswell Zen"
has avx512f && has avx512bw && has avx512vl && cores="$cores SkylakeX"
[ -n "$cores" ] || { echo "no OpenBLAS kernel family recognised: skipped"; exit 77; }
fail=0
# run_one ENV=VALUE TEST: one test binary with one setting, one line out.
run_one() {
  local setting=$1 t=$2 bin=build/tests/test_$2 out
  [ -x "$bin" ] || { echo "$bin is not built"; exit 1; }
  if out=$(env "$setting" OPENBLAS_NUM_THREADS=1 "$bin" 2>&1); then
    echo "ok   $setting test_$t"
  else
    echo "FAIL $setting test_$t"
    printf '%s\n' "$out" | grep -E ':[FE]:|%' | head -5
    fail=1
  fi
}
for c in $cores; do
  for t in flow workspace mixture threads; do run_one "OPENBLAS_CORETYPE=$c" "$t"; done
done
ktabs="generic"
has avx2 && has fma && ktabs="$ktabs avx2"
has avx512f && has avx512dq && has avx512vl && has avx512bw && ktabs="$ktabs avx512"
for kt in $ktabs; do
  for t in fold grad flow workspace mixture; do run_one "RAD_KERNELS=$kt" "$t"; done
done
exit $fail
