#!/bin/sh
# Run librad's tests and print a summary.
#
#   sh scripts/run-tests.sh SUITE TEST...
#
# Each TEST is run from the current (top) directory according to its name:
#   *.sh   with bash
#   *.py   with $PYTHON (default /usr/bin/python3)
#   other  as a program, prefixed by $TEST_WRAPPER if set (e.g. valgrind)
# Exit status 0 is a pass, 77 a skip (automake's convention), anything else
# a failure. Output of each test is shown as it runs. The last line is
#   SUITE: N passed, N failed[, N skipped]
# and the script fails if any test failed or if no test ran.
set -u

suite=${1:?usage: run-tests.sh SUITE TEST...}
shift
PYTHON=${PYTHON:-/usr/bin/python3}
TEST_WRAPPER=${TEST_WRAPPER:-}

passed=0
failed=0
skipped=0
failed_names=""

for t in "$@"; do
  echo "---- $suite: $t"
  start=$(date +%s)
  case "$t" in
    *.sh) bash "$t" ;;
    *.py) "$PYTHON" "$t" ;;
    *)
      # TEST_WRAPPER is a command with its options: split it.
      # shellcheck disable=SC2086
      $TEST_WRAPPER "$t" ;;
  esac
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS: $t (${secs}s)"
  elif [ "$rc" -eq 77 ]; then
    skipped=$((skipped + 1))
    echo "SKIP: $t"
  else
    failed=$((failed + 1))
    failed_names="$failed_names $t"
    echo "FAIL: $t (exit status $rc)"
  fi
done

echo "----"
for t in $failed_names; do
  echo "FAILED: $t"
done
if [ "$skipped" -gt 0 ]; then
  echo "$suite: $passed passed, $failed failed, $skipped skipped"
else
  echo "$suite: $passed passed, $failed failed"
fi
if [ $((passed + failed)) -eq 0 ]; then
  echo "$suite: no test ran" >&2
  exit 1
fi
[ "$failed" -eq 0 ]
