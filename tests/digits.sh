#!/bin/bash
# tests/digits.sh: bin/rad-digits --quick (examples/digits.c,
# docs/digits.md) end to end on the 64-D digits: 200 steps, one seed, no
# pictures (about 10 s). Checks the report's shape and the numbers a
# correct run must give whatever the training: the uniform density's
# log2(17) = 4.0875 bits/dim (the 64 ln 17 of the dequantization), every
# model's test bits/dim finite, below the uniform's and above 1, the
# Gaussian worse than both flows after 200 steps (measured: 2.95 against
# 2.50 and 2.47), the contingency tables' totals equal to the 1,797
# digits, and bad options refused with exit status 2.
# Exit 0 pass, 1 fail.
set -u
top=${RAD_TOP:-$(pwd)}
cd "$top" || exit 1
prog=bin/rad-digits
[ -x "$prog" ] || { echo "$prog is not built"; exit 1; }
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
OPENBLAS_NUM_THREADS=1 "$prog" --quick --no-plots --out "$out/d" > "$out/report" 2> "$out/err" \
  || { cat "$out/err"; fail "rad-digits --quick exited $?"; }
cmp -s "$out/report" "$out/d/results.md" || fail "stdout and results.md differ"
row() { grep -m1 "^| $1 |" "$out/report"; }
col() { row "$1" | awk -F'|' -v c="$2" '{ gsub(/[* ]/, "", $c); sub(/\+-.*/, "", $c); print $c }'; }
uni=$(grep -m1 '^| (uniform' "$out/report" | awk -F'|' '{ gsub(/ /, "", $6); print $6 }')
[ "$uni" = 4.0875 ] || fail "uniform bits/dim '$uni', expected 4.0875"
for m in RAD "REAL NVP" "Gaussian (full covariance)"; do
  v=$(col "$m" 6)
  awk -v v="$v" 'BEGIN { exit !(v + 0 == v && v > 1 && v < 4.0875) }' \
    || fail "$m: test bits/dim '$v' not in (1, 4.0875)"
  echo "ok   $m test bits/dim $v"
done
g=$(col "Gaussian (full covariance)" 6) r=$(col RAD 6) n=$(col "REAL NVP" 6)
awk -v g="$g" -v r="$r" -v n="$n" 'BEGIN { exit !(g > r && g > n) }' \
  || fail "Gaussian $g not worse than RAD $r and REAL NVP $n"
totals=$(grep -c '^| total | 178 | 182 | 177 | 183 | 181 | 182 | 181 | 179 | 174 | 180 | 1797 |' "$out/report")
[ "$totals" -ge 2 ] || fail "contingency tables: $totals rows of class totals summing to 1797"
echo "ok   contingency tables ($totals)"
for bad in "--steps 0" "--seeds -1" "--masks nonsense" "--bogus"; do
  # shellcheck disable=SC2086
  "$prog" $bad --no-plots --out "$out/bad" > /dev/null 2>&1
  rc=$?
  [ "$rc" -eq 2 ] || fail "rad-digits $bad: exit status $rc, expected 2"
done
"$prog" --data "$out/missing.csv" --quick --no-plots --out "$out/bad" > /dev/null 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "a missing data file: exit status 0"
echo "ok   bad options refused"
