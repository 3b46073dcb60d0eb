#!/usr/bin/env bash
# The shared library's ABI surface:
#  - `nm -D --defined-only` shows only rad_* symbols, each versioned
#    (name@@RAD_x.y from rad.map); the version nodes themselves are
#    type-A entries and are not symbols;
#  - every RAD_API function declared in the public headers is exported,
#    and every exported symbol is declared there;
#  - the SONAME is librad.so.MAJOR.
# Run from the top directory; RAD_LIB may name the library to inspect.
set -euo pipefail

top=${RAD_TOP:-.}
lib=${RAD_LIB:-$top/lib/librad.so}
header=$top/include/rad/rad.h
fail=0
err() {
  echo "symbols.sh: $*" >&2
  fail=1
}

[ -e "$lib" ] || { echo "symbols.sh: $lib not built" >&2; exit 1; }

# Exported symbols: skip type A (version node names such as RAD_0.1).
nm_out=$(nm -D --defined-only "$lib")
exported=$(awk 'NF >= 3 && $2 != "A" { print $3 }' <<<"$nm_out" | sort -u)
[ -n "$exported" ] || err "no exported symbol in $lib"

while IFS= read -r sym; do
  [ -n "$sym" ] || continue
  name=${sym%%@*}
  case "$name" in
    rad_*) ;;
    *) err "exported symbol without the rad_ prefix: $sym" ;;
  esac
  case "$sym" in
    *@RAD_*) ;;
    *) err "exported symbol without a RAD_ version node: $sym" ;;
  esac
done <<<"$exported"
exported_names=$(cut -d@ -f1 <<<"$exported" | sort -u)

# Declared API: every function declared RAD_API in the public headers.
# Comments and preprocessor lines (with continuations) are removed first,
# then each `RAD_API <type> *name(` is matched across line breaks.
declared=$(cat "$top"/include/rad/*.h | perl -0777 -ne '
  s{/\*.*?\*/}{ }gs;            # block comments
  s{//[^\n]*}{}g;               # line comments
  s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{}mg;  # preprocessor lines
  while (/\bRAD_API\b[^;(]*?\b([A-Za-z_][A-Za-z0-9_]*)\s*\(/g) {
    print "$1\n";
  }' | sort -u)
[ -n "$declared" ] || err "no RAD_API declaration found in $header"

only_exported=$(comm -13 <(echo "$declared") <(echo "$exported_names"))
only_declared=$(comm -23 <(echo "$declared") <(echo "$exported_names"))
for s in $only_exported; do
  err "exported but not declared RAD_API in include/rad/: $s"
done
for s in $only_declared; do
  err "declared RAD_API but not exported (add it to rad.map): $s"
done

# SONAME is librad.so.MAJOR, MAJOR from the header.
major=$(sed -n 's/^[[:space:]]*#[[:space:]]*define[[:space:]]\{1,\}RAD_VERSION_MAJOR[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' "$header")
[ -n "$major" ] || err "RAD_VERSION_MAJOR not found in $header"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "librad.so.$major" ] ||
  err "SONAME is '$soname', expected 'librad.so.$major'"

n_exp=$(wc -w <<<"$exported_names")
n_dec=$(wc -w <<<"$declared")
if [ "$fail" -ne 0 ]; then
  echo "symbols.sh: FAILED ($n_exp exported, $n_dec declared)" >&2
  exit 1
fi
echo "symbols.sh: $n_exp exported rad_* symbols, all declared; SONAME $soname"
