#!/bin/bash
# tests/cli.sh: the `rad` command-line tool (examples/rad.c, docs/cli.md).
#
# Run by `make check` (which builds bin/rad first) with bash from the top
# directory; RAD_TOP is the top directory. Uses the penguins data at
# $RAD_TOP/examples/data/penguins.csv (a copy of the shared data set).
# Builds nothing. Exit 0 pass, 1 fail, 77 skip.
set -u

top=${RAD_TOP:-$(pwd)}
rad="$top/bin/rad"
penguins="$top/examples/data/penguins.csv"

if [ ! -x "$rad" ]; then
  echo "cli.sh: $rad is missing (make builds it)" >&2
  exit 1
fi
if [ ! -f "$penguins" ]; then
  echo "cli.sh: $penguins not found: skipping" >&2
  exit 77
fi

# Small models: one BLAS thread is faster, and results are reproducible.
export OPENBLAS_NUM_THREADS=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rad-cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

failures=0
checks=0
ok() { checks=$((checks + 1)); }
bad() {
  checks=$((checks + 1))
  failures=$((failures + 1))
  echo "FAIL: $*"
  if [ -s "$tmp/err" ]; then sed 's/^/  stderr: /' "$tmp/err" | head -n 5; fi
}

# run CODE DESCRIPTION -- COMMAND...: runs COMMAND with stdout in $tmp/out
# and stderr in $tmp/err, and checks its exit status.
run() {
  local want=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok; else bad "$what: exit status $got, expected $want"; fi
}
# has FILE REGEX DESCRIPTION: FILE has a line matching the extended regex.
has() {
  if grep -Eq -- "$2" "$1"; then ok; else bad "$3: no line matching /$2/ in $(basename "$1")"; fi
}
# error CODE DESCRIPTION -- COMMAND...: fails with CODE and a message.
error() {
  local want=$1 what=$2
  run "$@"
  if [ -s "$tmp/err" ]; then ok; else bad "$what: no message on stderr"; fi
  if [ "$want" -ne 0 ] && [ -s "$tmp/out" ] && grep -q "mean_log_likelihood" "$tmp/out"; then
    bad "$what: printed a result"
  fi
}
num='-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?'

cols=bill_length_mm,bill_depth_mm
fit_small() { "$rad" fit "$penguins" --columns "$cols" --steps 200 --seed 1 --quiet "$@"; }

# ---- help and version -----------------------------------------------------
run 0 "rad --help" -- "$rad" --help
has "$tmp/out" '^Usage: rad COMMAND' "rad --help"
for c in fit eval sample infer info; do
  run 0 "rad $c --help" -- "$rad" "$c" --help
  has "$tmp/out" "^Usage: rad $c" "rad $c --help"
done
run 0 "rad --version" -- "$rad" --version
version=$(sed -n 's/^#define RAD_VERSION_STRING "\(.*\)"/\1/p' "$top/include/rad/rad.h")
has "$tmp/out" "^rad \\(librad\\) $version\$" "rad --version"
error 2 "rad without a command" -- "$rad"
error 2 "unknown command" -- "$rad" frobnicate
run 0 "rad help fit" -- "$rad" help fit
has "$tmp/out" "^Usage: rad fit" "rad help fit"
error 2 "help on an unknown command" -- "$rad" help frobnicate
error 1 "info on a directory" -- "$rad" info "$tmp"
has "$tmp/err" "Is a directory" "info on a directory says so"

# ---- fit --------------------------------------------------------------------
run 0 "fit" -- fit_small --out "$tmp/m.rad"
has "$tmp/err" 'read 344 rows, skipped 2 \(missing or non-numeric in selected columns\)' "fit skip report"
has "$tmp/out" '^steps: 200$' "fit steps"
has "$tmp/out" "^heldout_mean_log_likelihood: $num\$" "fit held-out result"
[ -s "$tmp/m.rad" ] && ok || bad "fit wrote no model"
# by 0-based index: the same columns, names and model
run 0 "fit by index" -- fit_small --out "$tmp/m_idx.rad" --columns 2,3
cmp -s "$tmp/m.rad" "$tmp/m_idx.rad" && ok || bad "fit by index differs from fit by name"
run 0 "fit realnvp" -- fit_small --out "$tmp/nvp.rad" --kind realnvp --steps 50 --lr-schedule cosine
run 0 "fit keep-best" -- fit_small --out "$tmp/best.rad" --keep-best --steps 60
# a fit stopped and resumed equals one that never stopped
run 0 "fit half" -- fit_small --out "$tmp/h1.rad" --steps 100 --save-optimizer "$tmp/h1.adam"
run 0 "fit resume" -- fit_small --out "$tmp/h2.rad" --steps 100 --init "$tmp/h1.rad" \
  --resume-optimizer "$tmp/h1.adam"
cmp -s "$tmp/m.rad" "$tmp/h2.rad" && ok || bad "100 + 100 resumed steps differ from 200 steps"

# ---- eval -------------------------------------------------------------------
run 0 "eval" -- "$rad" eval "$tmp/m.rad" "$penguins"
cp "$tmp/out" "$tmp/eval.out"
[ "$(head -n 1 "$tmp/out")" = log_likelihood ] && ok || bad "eval header line"
[ "$(wc -l <"$tmp/out")" -eq 344 ] && ok || bad "eval: expected 342 values between header and mean"
last=$(tail -n 1 "$tmp/out")
if [[ "$last" =~ ^mean_log_likelihood:\ ($num)$ ]]; then ok; else bad "eval last line: '$last'"; fi
mean=${last#mean_log_likelihood: }
awk -v m="$mean" 'BEGIN { exit !(m + 0 == m + 0 && m > -1e30 && m < 1e30) }' && ok ||
  bad "eval mean is not finite: $mean"
has "$tmp/err" 'penguins.csv:5: row skipped' "eval names the skipped line"
run 0 "eval --quiet" -- "$rad" eval "$tmp/m.rad" "$penguins" --quiet
[ "$(cat "$tmp/out")" = "$last" ] && ok || bad "eval --quiet differs from the last line"
# columns in another order (and LF line ends, a BOM): picked by name
tr -d '\r' <"$penguins" |
  awk -F, -v OFS=, '{ for (i = NF; i > 1; i--) printf "%s,", $i; print $1 }' >"$tmp/rev.csv"
{ printf '\357\273\277'; cat "$tmp/rev.csv"; } >"$tmp/rev_bom.csv"
run 0 "eval reordered columns" -- "$rad" eval "$tmp/m.rad" "$tmp/rev_bom.csv" --quiet
[ "$(cat "$tmp/out")" = "$last" ] && ok || bad "eval on reordered columns: $(cat "$tmp/out") vs $last"
run 0 "eval from stdin" -- sh -c '"$1" eval "$2" - --quiet <"$3"' sh "$rad" "$tmp/m.rad" "$penguins"
[ "$(cat "$tmp/out")" = "$last" ] && ok || bad "eval from standard input"

# ---- sample -----------------------------------------------------------------
run 0 "sample" -- "$rad" sample "$tmp/m.rad" -n 5 --seed 3
[ "$(head -n 1 "$tmp/out")" = "$cols" ] && ok || bad "sample header: $(head -n 1 "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 6 ] && ok || bad "sample -n 5: not 6 lines"
[ "$(tail -n +2 "$tmp/out" | grep -Ecv "^$num,$num\$")" -eq 0 ] && ok || bad "sample rows are not 2 numbers"
cp "$tmp/out" "$tmp/s5"
run 0 "sample -n 3" -- "$rad" sample "$tmp/m.rad" -n 3 --seed 3
[ "$(cat "$tmp/out")" = "$(head -n 4 "$tmp/s5")" ] && ok || bad "sample -n 3 is not a prefix of -n 5"
run 0 "sample --labels" -- "$rad" sample "$tmp/m.rad" -n 4 --labels
has "$tmp/out" "^$cols,k0,k1,k2,k3,k4,k5\$" "sample --labels header"
run 0 "sample --component" -- "$rad" sample "$tmp/m.rad" -n 3 --component 1,1,1,1,1,1 --labels
has "$tmp/err" 'acceptance rate' "sample --component reports its acceptance"
[ "$(tail -n +2 "$tmp/out" | grep -c ',1,1,1,1,1,1$')" -eq 3 ] && ok || bad "component labels"

# ---- infer ------------------------------------------------------------------
run 0 "infer" -- "$rad" infer "$tmp/m.rad" "$penguins"
has "$tmp/out" '^z_bill_length_mm,z_bill_depth_mm,k0,k1,k2,k3,k4,k5,log_likelihood$' "infer header"
[ "$(wc -l <"$tmp/out")" -eq 343 ] && ok || bad "infer: expected 343 lines"
[ "$(awk -F, 'NR > 1 && NF != 9' "$tmp/out" | wc -l)" -eq 0 ] && ok || bad "infer rows are not 9 columns"
[ "$(awk -F, 'NR > 1 { for (i = 3; i <= 8; i++) if ($i != 1 && $i != 2 && $i != 3) print }' "$tmp/out" | wc -l)" -eq 0 ] &&
  ok || bad "infer labels outside {1,2,3}"
# infer's log-likelihood is eval's
[ "$(tail -n +2 "$tmp/out" | cut -d, -f9)" = "$(sed '1d;$d' "$tmp/eval.out")" ] && ok ||
  bad "infer and eval log-likelihoods differ"
run 0 "infer --probs" -- "$rad" infer "$tmp/m.rad" "$penguins" --probs --keep species
[ "$(awk -F, 'NF != 28' "$tmp/out" | wc -l)" -eq 0 ] && ok || bad "infer --probs --keep: not 28 columns"
has "$tmp/out" '^species,z_bill_length_mm,.*,log_likelihood,p0_1,p0_2,p0_3,.*,p5_3$' "infer --probs header"
run 0 "infer realnvp" -- "$rad" infer "$tmp/nvp.rad" "$penguins"
has "$tmp/out" '^z_bill_length_mm,z_bill_depth_mm,log_likelihood$' "infer header without labels"

# ---- info -------------------------------------------------------------------
run 0 "info" -- "$rad" info "$tmp/m.rad"
has "$tmp/out" '^format: librad model .*format version 1' "info format"
has "$tmp/out" "^size: $(wc -c <"$tmp/m.rad" | tr -d ' ') bytes\$" "info size"
has "$tmp/out" '^dimension: 2$' "info dimension"
has "$tmp/out" '^columns: bill_length_mm, bill_depth_mm$' "info columns"
has "$tmp/out" '^  bill_depth_mm: shift [0-9.]+ scale [0-9.]+$' "info standardization"
has "$tmp/out" '^layers: 6$' "info layers"
has "$tmp/out" '^  layer 5: RAD, mask 10 .*hidden 8, gate hidden 8, logit bound 3' "info layer"
has "$tmp/out" '^discrete labels: 6$' "info labels"
has "$tmp/out" '^mixture components: 729' "info components"
run 0 "info optimizer" -- "$rad" info "$tmp/h1.adam"
has "$tmp/out" '^steps: 100$' "info optimizer steps"

# ---- errors -----------------------------------------------------------------
error 1 "missing data file" -- "$rad" fit "$tmp/nope.csv" --columns "$cols" --out "$tmp/x.rad"
has "$tmp/err" 'nope\.csv' "missing data file names it"
error 1 "missing model file" -- "$rad" eval "$tmp/nope.rad" "$penguins"
has "$tmp/err" 'nope\.rad: No such file' "missing model file names it"
error 1 "unknown column" -- "$rad" fit "$penguins" --columns bill_length_mm,beak --out "$tmp/x.rad"
has "$tmp/err" "no column 'beak'.*bill_depth_mm" "unknown column lists the columns"
error 1 "column index out of range" -- "$rad" fit "$penguins" --columns 2,7 --out "$tmp/x.rad"
error 1 "text column" -- "$rad" fit "$penguins" --columns species,bill_depth_mm --out "$tmp/x.rad"
[ -e "$tmp/x.rad" ] && bad "a failed fit wrote a model" || ok
error 1 "output directory missing" -- "$rad" fit "$penguins" --columns "$cols" --out "$tmp/no/dir.rad"
has "$tmp/err" 'dir\.rad: cannot write there' "output directory message"
error 2 "bad number" -- "$rad" fit "$penguins" --columns "$cols" --out "$tmp/x.rad" --steps 1e3
error 2 "bad fraction" -- "$rad" fit "$penguins" --columns "$cols" --out "$tmp/x.rad" --heldout 0.9
error 2 "missing --out" -- "$rad" fit "$penguins" --columns "$cols"
error 2 "unknown option" -- "$rad" eval "$tmp/m.rad" "$penguins" --frobnicate
error 2 "missing argument" -- "$rad" eval "$tmp/m.rad"
error 2 "sample without -n" -- "$rad" sample "$tmp/m.rad"
error 2 "sample -n abc" -- "$rad" sample "$tmp/m.rad" -n abc
error 2 "bad component" -- "$rad" sample "$tmp/m.rad" -n 2 --component 1,2
error 2 "--resume-optimizer without --init" -- "$rad" fit "$penguins" --columns "$cols" \
  --out "$tmp/x.rad" --resume-optimizer "$tmp/h1.adam"
head -c 100 "$tmp/m.rad" >"$tmp/trunc.rad"
error 1 "truncated model" -- "$rad" eval "$tmp/trunc.rad" "$penguins"
has "$tmp/err" 'trunc\.rad: .*truncated' "truncated model message"
error 1 "truncated model (info)" -- "$rad" info "$tmp/trunc.rad"
has "$tmp/err" 'truncated' "info on a truncated model"
cp "$penguins" "$tmp/fake.rad"
error 1 "CSV as model" -- "$rad" eval "$tmp/fake.rad" "$penguins"
has "$tmp/err" 'fake\.rad: not a librad file' "CSV as model message"
error 1 "CSV as model (sample)" -- "$rad" sample "$tmp/fake.rad" -n 1
error 1 "optimizer as model" -- "$rad" eval "$tmp/h1.adam" "$penguins"
printf 'x,y\n1,2\n' >"$tmp/xy.csv"
error 1 "data without the model's columns" -- "$rad" eval "$tmp/m.rad" "$tmp/xy.csv"
has "$tmp/err" "no column 'bill_length_mm'" "missing model column message"
printf 'a,b\n"1,2\n' >"$tmp/quote.csv"
error 1 "unterminated quote" -- "$rad" eval "$tmp/m.rad" "$tmp/quote.csv" --columns a,b
has "$tmp/err" 'quote\.csv: line 2: quoted field' "unterminated quote message"

# ---- skipped rows -----------------------------------------------------------
# line 1 header; 3 missing; 4 not a number; 5 NaN; 6 empty text (kept);
# 8 too few fields; a blank line 10 (ignored); 12 quoted number (kept).
cat >"$tmp/small.csv" <<'EOF'
a,b,note
1.0,2.0,x
,3.0,missing a
4.5,abc,bad b
nan,1,nan a
2.5,-1.25,
3,4,ok
7
5e-1,0.25,ok

-2,1.5,ok
"6.5"," 8 ",quoted
EOF
run 0 "fit on small data" -- "$rad" fit "$tmp/small.csv" --columns a,b --out "$tmp/s.rad" \
  --steps 20 --heldout 0 --quiet
has "$tmp/err" 'read 10 rows, skipped 4 \(missing or non-numeric in selected columns\)' "skip count"
has "$tmp/err" "small\\.csv:3: row skipped: column 'a' is empty" "missing field line"
has "$tmp/err" "small\\.csv:4: row skipped: column 'b' is not a number" "non-numeric field line"
has "$tmp/err" "small\\.csv:5: row skipped: column 'a' is not finite" "NaN field line"
has "$tmp/err" "small\\.csv:8: row skipped: column 'b' is empty" "short row line"
run 0 "eval on small data" -- "$rad" eval "$tmp/s.rad" "$tmp/small.csv" --line-numbers
[ "$(sed '1d;$d' "$tmp/out" | cut -d, -f1 | tr '\n' ' ')" = "2 6 7 9 11 12 " ] && ok ||
  bad "eval kept lines: $(sed '1d;$d' "$tmp/out" | cut -d, -f1 | tr '\n' ' ')"
# the standardization is the training rows' mean and (population) std
run 0 "info on small data" -- "$rad" info "$tmp/s.rad"
has "$tmp/out" '^  a: shift 1\.9166666[0-9]* scale 2\.604749[0-9]*$' "standardization of column a"
# a header naming two columns alike: a model fitted on them could not find
# its columns by name, on this very file
{ echo 'a,a,b'; for i in 1 2 3 4 5 6 7 8 9; do echo "$i,$((i * 7 % 5)),$((i % 3))"; done; } >"$tmp/dup.csv"
error 1 "fit on duplicate names" -- "$rad" fit "$tmp/dup.csv" --out "$tmp/dup.rad" --steps 5 --quiet
has "$tmp/err" "column name 'a' is used by columns 0 and 1" "duplicate names message"
[ -e "$tmp/dup.rad" ] && bad "fit on duplicate names wrote a model" || ok
error 1 "fit on a duplicate name by index" -- "$rad" fit "$tmp/dup.csv" --columns 0,2 \
  --out "$tmp/dup.rad" --steps 5 --quiet
run 0 "fit on the unique name" -- "$rad" fit "$tmp/dup.csv" --columns b --out "$tmp/dup.rad" \
  --steps 5 --quiet --heldout 0
printf 'a,b\n' >"$tmp/empty.csv"
error 1 "no usable rows" -- "$rad" eval "$tmp/s.rad" "$tmp/empty.csv"
has "$tmp/err" 'no usable rows' "no usable rows message"

# a diverging fit: exit 1, no result lines; the parameters before the
# failing step give log p = -inf here, so no model is written
rm -f "$tmp/div.rad"
error 1 "diverging fit" -- "$rad" fit "$penguins" --columns bill_length_mm,bill_depth_mm \
  --out "$tmp/div.rad" --lr 1e30 --steps 100 --quiet
if [ -s "$tmp/out" ]; then bad "diverging fit printed: $(head -c 200 "$tmp/out")"; else ok; fi
[ ! -e "$tmp/div.rad" ] && ok || bad "diverging fit saved a model whose log p is -inf"
has "$tmp/err" 'diverged at step [0-9]+.*no model saved' "divergence message"

echo "cli.sh: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
