#!/bin/bash
# tests/mpi.sh: data-parallel training with MPI (bin/rad-mpi-fit,
# mpi/rad-mpi-fit.c, docs/scaling.md).
#
# Run by `make check-mpi` (which builds bin/rad-mpi-fit first) and by
# `make check`, with bash from the top directory; RAD_TOP is the top
# directory. Skips (exit 77) without mpirun and mpicc; builds
# bin/rad-mpi-fit with `$MAKE mpi` if it is missing. Every run uses
# `mpirun --allow-run-as-root --oversubscribe -np 2` (or -np 1),
# OPENBLAS_NUM_THREADS=1, and a timeout, so that a hang is a failure.
#
# Checks:
#  1. 20 steps on 2 ranks: both ranks' parameters are bit-identical, and
#     agree with the single-process emulation (--emulate-ranks 2) within
#     1e-5 relative (as vectors, and elementwise with a floor: compare());
#     1 rank equals --emulate-ranks 1 bit for bit.
#  2. 2000 steps on 2 ranks: bit-identical ranks, and the final held-out
#     log-likelihood within 0.02 of the emulation's.
#  3. Shard files (DATA.{rank}.csv): a missing, malformed or empty shard,
#     or a shard with other columns, on rank 1 makes BOTH ranks exit 1
#     with a message, within seconds; a bad --batch makes both exit 2.
# Exit 0 pass, 1 fail, 77 skip.
set -u

top=${RAD_TOP:-$(pwd)}
cd "$top" || exit 1
prog="$top/bin/rad-mpi-fit"
PYTHON=${PYTHON:-/usr/bin/python3}
MAKE=${MAKE:-make}

if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
  echo "mpi.sh: mpirun or mpicc not found (apt-get install libopenmpi-dev openmpi-bin): skipping" >&2
  exit 77
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "mpi.sh: $PYTHON not found: skipping" >&2
  exit 77
fi
if [ ! -x "$prog" ]; then
  echo "mpi.sh: building bin/rad-mpi-fit ($MAKE mpi)"
  if ! $MAKE --no-print-directory mpi >/dev/null; then
    echo "FAIL: $MAKE mpi" >&2
    exit 1
  fi
fi

export OPENBLAS_NUM_THREADS=1
# Open MPI as root, more ranks than cores allowed. In containers without
# ptrace rights the shared-memory transport's single-copy (CMA) fails:
# the tests' messages are small, so do without it.
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
LIMIT=120 # seconds for any one run: a hang fails the test instead

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rad-mpi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

failures=0
checks=0
ok() { checks=$((checks + 1)); }
bad() {
  checks=$((checks + 1))
  failures=$((failures + 1))
  echo "FAIL: $*"
}
show_err() { [ -s "$1" ] && sed 's/^/  stderr: /' "$1" | head -n 8; }

# value KEY FILE: the value of a "key: value" line.
value() { sed -n "s/^$1: //p" "$2" | head -n 1; }

# The data: 4000 points of a banana (u ~ N(0,1), v = u^2/2 + N(0, 0.5^2)),
# deterministic (Python's Mersenne Twister with a fixed seed).
"$PYTHON" - > banana.csv <<'EOF'
import random
rng = random.Random(7)
print("u,v")
for i in range(4000):
    u = rng.gauss(0, 1)
    v = 0.5 * u * u + rng.gauss(0, 0.5)
    print(f"{u:.6f},{v:.6f}")
EOF

# compare A B: the parameter vectors a (2 ranks) and b (emulation) agree
# within 1e-5 relative: ||a - b|| <= 1e-5 ||a||, and elementwise
# |a_i - b_i| <= 1e-5 max(|a_i|, |b_i|, rms(a)). The floor: parameters that
# start at 0 (the gating networks' output layers) are still ~1e-4 after 20
# steps, and Adam's normalization turns the rounding of their small,
# cancelling gradients into differences of ~1e-8 (docs/scaling.md).
compare() {
  "$PYTHON" - "$1" "$2" <<'EOF'
import math, sys
a = [float(s) for s in open(sys.argv[1])]
b = [float(s) for s in open(sys.argv[2])]
if len(a) != len(b) or not a:
    print("  different lengths: %d and %d" % (len(a), len(b)))
    sys.exit(1)
rms = math.sqrt(sum(x * x for x in a) / len(a))
worst, at = 0.0, 0
for i, (x, y) in enumerate(zip(a, b)):
    r = abs(x - y) / max(abs(x), abs(y), rms)
    if r > worst:
        worst, at = r, i
norm = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)) /
                 max(sum(x * x for x in a), 1e-300))
print("  %d parameters (rms %.3g): max elementwise relative difference "
      "%.3g (parameter %d: %.9g vs %.9g), vector %.3g"
      % (len(a), rms, worst, at, a[at], b[at], norm))
sys.exit(0 if worst <= 1e-5 and norm <= 1e-5 else 1)
EOF
}

# ---- 1. the first 20 steps ---------------------------------------------
common=(banana.csv --batch 200 --heldout 0.25 --lr 1e-3 --seed 3)
timeout $LIMIT "${MPIRUN[@]}" -np 2 "$prog" "${common[@]}" --quiet --steps 20 \
  --out m20.rad --dump-params 'p20.{rank}.txt' >out20 2>err20
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "2 ranks, 20 steps: exit status $rc"; show_err err20; fi
if [ "$(value params_identical_on_all_ranks out20)" = yes ]; then ok; else
  bad "2 ranks, 20 steps: the program does not report identical parameters"; fi
if [ -s p20.0.txt ] && cmp -s p20.0.txt p20.1.txt; then ok; else
  bad "2 ranks, 20 steps: the dumped parameters of ranks 0 and 1 differ"; fi
if [ -s m20.rad ]; then ok; else bad "2 ranks: no model file"; fi

timeout $LIMIT "$prog" "${common[@]}" --quiet --steps 20 --emulate-ranks 2 \
  --out e20.rad --dump-params e20.txt >eout20 2>eerr20
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "emulation, 20 steps: exit status $rc"; show_err eerr20; fi
echo "20 steps, 2 ranks against --emulate-ranks 2:"
if compare p20.0.txt e20.txt; then ok; else
  bad "20 steps: 2 ranks and the emulation differ by more than 1e-5"; fi
# the training log-likelihood reported (the weighted all-reduce of the
# local means) and the final train/held-out numbers agree too
for key in train_mean_log_likelihood heldout_mean_log_likelihood; do
  a=$(value $key out20) b=$(value $key eout20)
  if "$PYTHON" -c "import sys; a, b = float('$a'), float('$b'); sys.exit(abs(a - b) > 1e-5 * abs(a))" 2>/dev/null
  then ok; else bad "20 steps: $key $a (2 ranks) vs $b (emulation)"; fi
done

# progress lines (rank 0): the mean training log-likelihood of the steps
timeout $LIMIT "${MPIRUN[@]}" -np 2 "$prog" "${common[@]}" \
  --steps 20 --out m20b.rad >/dev/null 2>err20b
timeout $LIMIT "$prog" "${common[@]}" --steps 20 \
  --emulate-ranks 2 --out e20b.rad >/dev/null 2>eerr20b
ta=$(sed -n 's/^step *20\/20.* train \([-0-9.]*\).*/\1/p' err20b)
tb=$(sed -n 's/^step *20\/20.* train \([-0-9.]*\).*/\1/p' eerr20b)
if [ -n "$ta" ] && "$PYTHON" -c "import sys; sys.exit(abs($ta - $tb) > 2e-4)" 2>/dev/null
then ok; else bad "20 steps: progress 'train' $ta (2 ranks) vs $tb (emulation)"; fi

# one rank is the emulation of one rank, bit for bit
timeout $LIMIT "${MPIRUN[@]}" -np 1 "$prog" "${common[@]}" --quiet --steps 20 \
  --out m1.rad --dump-params p1.txt >out1 2>err1 || { bad "1 rank: failed"; show_err err1; }
timeout $LIMIT "$prog" "${common[@]}" --quiet --steps 20 --emulate-ranks 1 \
  --out e1.rad --dump-params e1.txt >/dev/null 2>&1 || bad "--emulate-ranks 1: failed"
if [ -s p1.txt ] && cmp -s p1.txt e1.txt; then ok; else
  bad "1 rank and --emulate-ranks 1 differ"; fi

# ---- 2. a longer run: the held-out log-likelihood ----------------------
long=(banana.csv --batch 200 --heldout 0.25 --lr 1e-3 --lr-schedule cosine
      --seed 0 --steps 2000 --quiet)
timeout $LIMIT "${MPIRUN[@]}" -np 2 "$prog" "${long[@]}" --out m.rad \
  --dump-params 'pf.{rank}.txt' >outl 2>errl
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "2 ranks, 2000 steps: exit status $rc"; show_err errl; fi
if [ "$(value params_identical_on_all_ranks outl)" = yes ] && [ -s pf.0.txt ] &&
   cmp -s pf.0.txt pf.1.txt; then ok; else
  bad "2 ranks, 2000 steps: parameters differ between ranks"; fi
timeout $LIMIT "$prog" "${long[@]}" --emulate-ranks 2 --out e.rad >eoutl 2>eerrl
rc=$?
if [ $rc -eq 0 ]; then ok; else bad "emulation, 2000 steps: exit status $rc"; show_err eerrl; fi
a=$(value heldout_mean_log_likelihood outl) b=$(value heldout_mean_log_likelihood eoutl)
echo "2000 steps: held-out log-likelihood $a (2 ranks), $b (emulation)"
if [ -n "$a" ] && [ -n "$b" ] &&
   "$PYTHON" -c "import sys; sys.exit(not abs($a - $b) <= 0.02)"; then ok; else
  bad "2000 steps: held-out log-likelihoods differ by more than 0.02"; fi
# the saved model is an ordinary librad model
if [ -x "$top/bin/rad" ]; then
  if "$top/bin/rad" eval m.rad banana.csv 2>/dev/null | grep -q '^mean_log_likelihood: -'; then ok; else
    bad "rad eval cannot use the model rank 0 saved"; fi
fi

# ---- 3. failures stop every rank ---------------------------------------
# shard files: rank r reads sh.{r}.csv
head -n 1001 banana.csv > sh.0.csv
{ head -n 1; sed -n '1002,2001p'; } < banana.csv > sh.1.csv.good

# expect_fail CODE WHAT PATTERN -- ARGS: runs 2 ranks, each writing its
# own exit status; both must exit CODE within the limit, and stderr must
# match PATTERN.
expect_fail() {
  local want=$1 what=$2 pat=$3
  shift 4
  rm -f rc.0 rc.1
  local t0 t1
  t0=$(date +%s)
  # shellcheck disable=SC2016 # expanded by each rank's sh
  timeout 60 "${MPIRUN[@]}" -np 2 sh -c \
    '"$@"; echo $? > rc.$OMPI_COMM_WORLD_RANK' sh "$prog" "$@" \
    >fout 2>ferr
  local rc=$?
  t1=$(date +%s)
  if [ $rc -eq 124 ]; then bad "$what: timed out (a hang)"; return; fi
  if [ "$(cat rc.0 2>/dev/null)" = "$want" ] && [ "$(cat rc.1 2>/dev/null)" = "$want" ]
  then ok; else
    bad "$what: exit statuses $(cat rc.0 2>/dev/null || echo none), $(cat rc.1 2>/dev/null || echo none); expected $want on both ranks"
    show_err ferr
  fi
  if grep -Eq -- "$pat" ferr; then ok; else
    bad "$what: no message matching /$pat/"; show_err ferr; fi
  if [ $((t1 - t0)) -le 20 ]; then ok; else bad "$what: took $((t1 - t0))s"; fi
  if [ -e fm.rad ]; then bad "$what: a model was written"; rm -f fm.rad; fi
}

rm -f sh.1.csv
expect_fail 1 "missing shard on rank 1" \
  'rank 1: cannot read the shard: sh\.1\.csv: No such file' -- \
  'sh.{rank}.csv' --out fm.rad --steps 50 --batch 100
if grep -q 'stopping every rank: failure on rank 1' ferr; then ok; else
  bad "missing shard: rank 0 does not say why every rank stops"; fi
# without the wrapper: mpirun's own exit status
timeout 60 "${MPIRUN[@]}" -np 2 "$prog" 'sh.{rank}.csv' --out fm.rad \
  --steps 50 --batch 100 >/dev/null 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok; else
  bad "missing shard: mpirun exit status $rc"; fi

printf 'u,v\n1,2\n"3,4\n' > sh.1.csv
expect_fail 1 "malformed shard on rank 1" 'rank 1: sh\.1\.csv: line 3' -- \
  'sh.{rank}.csv' --out fm.rad --steps 50 --batch 100

printf 'u,v\n' > sh.1.csv
expect_fail 1 "empty shard on rank 1" 'rank 1: sh\.1\.csv: no usable rows' -- \
  'sh.{rank}.csv' --columns u,v --out fm.rad --steps 50 --batch 100

sed '1s/.*/u,w/' sh.1.csv.good > sh.1.csv
expect_fail 1 "other columns on rank 1" 'columns differ' -- \
  'sh.{rank}.csv' --out fm.rad --steps 50 --batch 100

cp sh.1.csv.good sh.1.csv
expect_fail 2 "--batch below the number of ranks" 'smaller than the 2 ranks' -- \
  'sh.{rank}.csv' --out fm.rad --steps 50 --batch 1

# and the shard files themselves train, identically on both ranks
timeout $LIMIT "${MPIRUN[@]}" -np 2 "$prog" 'sh.{rank}.csv' --steps 50 \
  --batch 100 --out fs.rad --quiet >outs 2>errs
rc=$?
if [ $rc -eq 0 ] && [ "$(value params_identical_on_all_ranks outs)" = yes ]; then ok; else
  bad "shard files: exit status $rc, identical '$(value params_identical_on_all_ranks outs)'"
  show_err errs
fi

echo "mpi.sh: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
