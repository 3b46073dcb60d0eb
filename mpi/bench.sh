#!/bin/bash
# mpi/bench.sh: the measurements of docs/scaling.md.
#
#   bash mpi/bench.sh [REPEATS]      (after `make mpi`; from the top directory)
#
# Two models, the paper's 2-D RAD (d = 2, 6 layers, H = G = 8, on 20,000
# banana points) and a larger one (d = 16, 8 layers, H = G = 64, on 20,000
# synthetic 16-D points), at global batches 500 and 8,000, trained by
#   1 rank          mpirun -np 1
#   2 ranks         mpirun -np 2
#   2 ranks + bar.  mpirun -np 2 --timing-barrier (an MPI_Barrier before
#                   each all-reduce, timed apart: the all-reduce time is
#                   then the communication alone, the barrier time the
#                   wait for the slower rank)
#   1 rank x 2 thr. mpirun -np 1 --threads 2 (librad's own threads)
# each REPEATS times (default 3); the row shown is the run with the most
# steps per second. OPENBLAS_NUM_THREADS=1 throughout. Prints a Markdown
# table on stdout (times per step are means over the steps and the ranks;
# "compute CPU" is the CPU time of the compute phase, all threads, which
# other load on the machine does not inflate), then the load average.
# Data and models go to a temporary directory.
set -u
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prog="$top/bin/rad-mpi-fit"
PYTHON=${PYTHON:-/usr/bin/python3}
repeats=${1:-3}
[ -x "$prog" ] || { echo "bench.sh: $prog missing: run make mpi" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rad-mpi-bench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp" <<'EOF'
import math, random, sys
out = sys.argv[1]
rng = random.Random(7)
with open(out + "/d2.csv", "w") as f:
    f.write("u,v\n")
    for i in range(20000):
        u = rng.gauss(0, 1)
        f.write("%.6f,%.6f\n" % (u, 0.5 * u * u + rng.gauss(0, 0.5)))
rng = random.Random(11)
d = 16
A = [[rng.gauss(0, 1 / math.sqrt(d)) for _ in range(d)] for _ in range(d)]
with open(out + "/d16.csv", "w") as f:
    f.write(",".join("x%d" % j for j in range(d)) + "\n")
    for i in range(20000):
        z = [rng.gauss(0, 1) for _ in range(d)]
        x = [sum(A[j][k] * z[k] for k in range(d)) + 0.5 * math.sin(2 * z[j])
             for j in range(d)]
        f.write(",".join("%.5f" % v for v in x) + "\n")
EOF

val() { sed -n "s/^$1: //p" "$2" | head -n 1; }

echo "| model | params | batch | run | steps/s | samples/s | compute ms/step | compute CPU ms/step | all-reduce ms/step | barrier ms/step | update ms/step |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
# model data extra-options: steps for batch 500 and 8000
for cfg in "d2:d2.csv:4000:300:--layers 6 --hidden 8 --gate-hidden 8" \
           "d16:d16.csv:300:20:--layers 8 --hidden 64 --gate-hidden 64"; do
  IFS=: read -r name data s500 s8000 arch <<<"$cfg"
  for batch in 500 8000; do
    steps=$s500
    [ "$batch" = 8000 ] && steps=$s8000
    for run in "1 rank:1:" "2 ranks:2:" "2 ranks + barrier:2:--timing-barrier" \
               "1 rank x 2 threads:1:--threads 2"; do
      IFS=: read -r label np extra <<<"$run"
      best=""
      bestrate=0
      for _ in $(seq "$repeats"); do
        # shellcheck disable=SC2086
        if ! "${MPIRUN[@]}" -np "$np" "$prog" "$tmp/$data" --out "$tmp/m.rad" \
             --heldout 0 --quiet --steps "$steps" --batch "$batch" $arch $extra \
             >"$tmp/out" 2>"$tmp/err"; then
          echo "bench.sh: run failed: $label $name $batch" >&2
          cat "$tmp/err" >&2
          continue
        fi
        rate=$(val steps_per_second "$tmp/out")
        if "$PYTHON" -c "import sys; sys.exit(not $rate > $bestrate)"; then
          bestrate=$rate
          cp "$tmp/out" "$tmp/best"
          best=1
        fi
      done
      [ -n "$best" ] || continue
      "$PYTHON" - "$tmp/best" "$name" "$batch" "$label" <<'EOF'
import sys
kv = dict(l.split(": ", 1) for l in open(sys.argv[1]).read().splitlines() if ": " in l)
g = lambda k: float(kv.get(k, "nan"))
ms = lambda k: "%.3f" % (1e3 * g(k)) if k in kv else "-"
print("| %s | %s | %s | %s | %.1f | %.0f | %s | %s | %s | %s | %s |" % (
    sys.argv[2], kv["num_params"], sys.argv[3], sys.argv[4],
    g("steps_per_second"), g("samples_per_second"),
    ms("compute_seconds_per_step"), ms("compute_cpu_seconds_per_step"),
    ms("allreduce_seconds_per_step"),
    ms("barrier_seconds_per_step"), ms("update_seconds_per_step")))
EOF
    done
  done
done
echo
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg) ($(getconf _NPROCESSORS_ONLN) cores)"
