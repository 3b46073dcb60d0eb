#!/bin/sh
# Capacity sweep: RAD and REAL NVP at several sizes on the paper's six 2-D
# problems, with bin/rad-paper's protocol (10,000 training points, a fresh
# 10,000-point test set, Adam with batch 500, the default learning rates and
# schedule), then a summary (experiments/capacity_summary.py).
#
# Usage (from anywhere):
#   nice -n 19 experiments/capacity.sh
#
# Settings, from the environment (defaults in brackets):
#   OUT          output directory [experiments/capacity-out]
#   STEPS        Adam steps per run [50000, the paper's]
#   SEED         rad-paper base seed [1]
#   JOBS         runs trained at once [2]
#   RAD_GRID     RAD sizes, "LAYERS:HIDDEN ..." with gate hidden = hidden
#                [the grid below]
#   REALNVP_GRID REAL NVP sizes, "LAYERS:HIDDEN ..." [the grid below]
#   PROBLEMS     comma-separated problems [all six]
#   RAD_PAPER    the rad-paper binary [bin/rad-paper of this tree]
#   SNAPSHOT     1: copy rad-paper and lib/librad.so* into OUT/snapshot first
#                and run the copies, so that a rebuild of the tree during the
#                sweep cannot change or break it [1]
#   GMM_TSV      results of experiments/gmm.py --tsv, for the summary [none;
#                OUT/gmm.tsv if it exists]
#
# Each (model, layers, hidden, problem) is one rad-paper run with --jobs 1;
# JOBS of them run at once through xargs -P, the longest first. A run whose
# log already holds its result line is skipped, so an interrupted sweep
# resumes where it stopped. Results:
# OUT/runs/MODEL-L<L>-H<H>-PROBLEM-steps<STEPS>-seed<SEED>.log
# (rad-paper's stdout), OUT/results.tsv (one line per run), OUT/summary.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

OUT=${OUT:-$here/capacity-out}
STEPS=${STEPS:-50000}
SEED=${SEED:-1}
JOBS=${JOBS:-2}
# The default grid: depths 4 and 8 at three widths each, plus the paper's
# configuration (6 layers; RAD H = G = 8, REAL NVP H = 56). RAD spans 348 to
# 2,424 parameters, REAL NVP 268 to 4,120. Sized to about 35 minutes of
# wall time with JOBS=2 on a shared 2-core machine (docs/capacity.md).
RAD_GRID=${RAD_GRID:-"4:4 4:8 4:16 6:8 8:8 8:16"}
REALNVP_GRID=${REALNVP_GRID:-"4:16 4:56 4:128 6:56 8:16 8:56 8:128"}
PROBLEMS=${PROBLEMS:-grid,ring,moons,circles,spiral,many_moons}
RAD_PAPER=${RAD_PAPER:-$root/bin/rad-paper}
SNAPSHOT=${SNAPSHOT:-1}
PY=/usr/bin/python3

run_one() {  # model layers hidden problem
  m=$1; l=$2; h=$3; p=$4
  name=$m-L$l-H$h-$p-steps$STEPS-seed$SEED
  log=$OUT/runs/$name.log
  if [ -f "$log" ] && grep -q "^result problem=$p model=$m " "$log"; then
    return 0
  fi
  if [ "$m" = rad ]; then
    width="--rad-hidden $h --rad-gate-hidden $h"
  else
    width="--realnvp-hidden $h"
  fi
  # shellcheck disable=SC2086
  if "$RAD_PAPER" --problems "$p" --models "$m" --layers "$l" $width \
      --steps "$STEPS" --seed "$SEED" --jobs 1 --no-plots --quiet \
      --out "$OUT/runs/$name" > "$log.tmp" 2> "$OUT/runs/$name.err"; then
    mv "$log.tmp" "$log"
    grep "^result " "$log" | sed "s/^/$m L=$l H=$h: /"
  else
    echo "capacity.sh: run $name failed, see $OUT/runs/$name.err" >&2
    return 1
  fi
}

# Child mode: xargs runs this script once per task with --run-one; the
# parent has already resolved RAD_PAPER (and LD_LIBRARY_PATH) for it.
if [ "${1:-}" = --run-one ]; then
  shift
  run_one "$@"
  exit $?
fi

[ -x "$RAD_PAPER" ] || { echo "capacity.sh: $RAD_PAPER not found; run make" >&2; exit 1; }
mkdir -p "$OUT/runs"

if [ "$SNAPSHOT" = 1 ]; then
  mkdir -p "$OUT/snapshot/bin" "$OUT/snapshot/lib"
  if [ ! -x "$OUT/snapshot/bin/rad-paper" ]; then
    cp "$RAD_PAPER" "$OUT/snapshot/bin/rad-paper"
    libdir=$(dirname "$RAD_PAPER")/../lib
    cp -P "$libdir"/librad.so* "$OUT/snapshot/lib/"
  fi
  RAD_PAPER=$OUT/snapshot/bin/rad-paper
  # rad-paper finds librad through its RUNPATH, which LD_LIBRARY_PATH
  # overrides.
  LD_LIBRARY_PATH=$OUT/snapshot/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  # The summary's parameter counts (examples/python/rad.py) use it too.
  RAD_LIB=$OUT/snapshot/lib/librad.so.0
  export LD_LIBRARY_PATH RAD_LIB
fi

# One task per line: cost model layers hidden problem. The cost is a rough
# estimate of the run time (layers x a per-layer cost growing with the
# width), used only to start the longest runs first.
tasks=$OUT/tasks
: > "$tasks"
add_tasks() {  # model grid
  for lh in $2; do
    l=${lh%%:*}; h=${lh#*:}
    for p in $(echo "$PROBLEMS" | tr ',' ' '); do
      # measured: per layer and 5,000 steps, about (55 + 3 H) / 86 s for
      # RAD and (10 + H) / 86 s for REAL NVP, two runs at a time
      if [ "$1" = rad ]; then c=$((l * (55 + 3 * h))); else c=$((l * (10 + h))); fi
      echo "$c $1 $l $h $p" >> "$tasks"
    done
  done
}
add_tasks rad "$RAD_GRID"
add_tasks realnvp "$REALNVP_GRID"

n=$(wc -l < "$tasks")
echo "capacity.sh: $n runs of $STEPS steps, $JOBS at a time, into $OUT" >&2
start=$(date +%s)
export OUT STEPS SEED RAD_PAPER
sort -k1,1nr "$tasks" | cut -d' ' -f2- |
  xargs -P "$JOBS" -L 1 "$here/$(basename "$0")" --run-one || status=$?
echo "capacity.sh: sweep took $(( $(date +%s) - start )) s" >&2

# The table of this grid's runs, then the summary.
{
  printf 'model\tlayers\thidden\tproblem\ttest_ll\tsteps\tseconds\n'
  sort -k2,2 -k3,3n -k4,4n "$tasks" | while read -r _ m l h p; do
    log=$OUT/runs/$m-L$l-H$h-$p-steps$STEPS-seed$SEED.log
    [ -f "$log" ] || continue
    sed -n 's/^result problem=[^ ]* model=[^ ]* test_ll=\([^ ]*\) steps=\([^ ]*\) seconds=\([^ ]*\).*/\1\t\2\t\3/p' "$log" |
      while IFS= read -r r; do printf '%s\t%s\t%s\t%s\t%s\n' "$m" "$l" "$h" "$p" "$r"; done
  done
} > "$OUT/results.tsv"

GMM_TSV=${GMM_TSV:-}
[ -z "$GMM_TSV" ] && [ -f "$OUT/gmm.tsv" ] && GMM_TSV=$OUT/gmm.tsv
"$PY" "$here/capacity_summary.py" "$OUT/results.tsv" ${GMM_TSV:+--gmm "$GMM_TSV"} \
  | tee "$OUT/summary.md"
exit "${status:-0}"
