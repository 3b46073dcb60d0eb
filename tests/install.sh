#!/usr/bin/env bash
# `make install` into a DESTDIR, then build a C and a C++ program against the
# installed copy using only `pkg-config --cflags --libs rad`, run them, and
# check that `make uninstall` removes everything install put there.
# Run from the top directory (make check does); MAKE, CC may be set.
set -euo pipefail

top=${RAD_TOP:-$PWD}
cd "$top"
make_cmd=${MAKE:-make}
cc=${CC:-cc}
cxx=${CXX:-g++}
pkg_config=${PKG_CONFIG:-pkg-config}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rad-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
prefix=/usr/local

# Invoked from `make check`, MAKEFLAGS may name a jobserver whose file
# descriptors this shell does not have: drop it (and -jN) but keep the rest
# (e.g. CC=clang given on the command line).
MAKEFLAGS=$(printf '%s' "${MAKEFLAGS:-}" |
  sed -e 's/--jobserver-[a-z]*=[^ ]*//g' -e 's/\(^\| \)-j[0-9]*\( \|$\)/ /g')
export MAKEFLAGS
unset MFLAGS

submake() {
  "$make_cmd" --no-print-directory -s "$@" DESTDIR="$dest" PREFIX="$prefix" \
    >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log"; return 1; }
}

submake install

libdir=$dest$prefix/lib
major=$(sed -n 's/^[[:space:]]*#[[:space:]]*define[[:space:]]\{1,\}RAD_VERSION_MAJOR[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' include/rad/rad.h)
for f in "$dest$prefix/include/rad/rad.h" "$libdir/librad.a" \
         "$libdir/librad.so" "$libdir/librad.so.$major" \
         "$libdir/pkgconfig/rad.pc"; do
  [ -e "$f" ] || { echo "install.sh: missing after install: $f" >&2; exit 1; }
done
if [ ! -L "$libdir/librad.so" ] || [ ! -L "$libdir/librad.so.$major" ]; then
  echo "install.sh: librad.so symlinks missing" >&2
  exit 1
fi

# Installed programs must not point into the build tree.
if [ -d "$dest$prefix/bin" ]; then
  for p in "$dest$prefix"/bin/*; do
    [ -f "$p" ] || continue
    dyn=$(readelf -d "$p")
    if grep -E 'R(UN)?PATH' <<<"$dyn" | grep -qF "$top"; then
      echo "install.sh: $p has a run path into the build tree" >&2
      exit 1
    fi
  done
fi

# Flags come only from the installed rad.pc, seen through the DESTDIR.
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
unset PKG_CONFIG_LIBDIR
read -r -a flags <<<"$("$pkg_config" --cflags --libs rad)"
case " ${flags[*]} " in
  *" -I$dest$prefix/include "*" -L$libdir "*) ;;
  *) echo "install.sh: unexpected pkg-config flags: ${flags[*]}" >&2; exit 1 ;;
esac
[ "$("$pkg_config" --modversion rad)" = "$(sed -n 's/^#define RAD_VERSION_STRING "\(.*\)"/\1/p' include/rad/rad.h)" ] ||
  { echo "install.sh: rad.pc Version differs from the header" >&2; exit 1; }

cat >"$tmp/prog.c" <<'EOF'
#include <stdio.h>
#include <rad/rad.h>
int main(void) {
  if (rad_version() != RAD_VERSION_NUMBER) return 1;
  printf("c %s %s\n", rad_version_string(), rad_strerror(RAD_EINVAL));
  return 0;
}
EOF
cat >"$tmp/prog.cc" <<'EOF'
#include <cstdio>
#include <rad/rad.h>
int main() {
  if (rad_version() != RAD_VERSION_NUMBER) return 1;
  std::printf("c++ %s %s\n", rad_version_string(), rad_strerror(RAD_EINVAL));
  return 0;
}
EOF

# The public header must be warning-free for users in C and in C++.
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/prog" \
  "$tmp/prog.c" "${flags[@]}"
"$cxx" -std=c++11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/prog_cxx" \
  "$tmp/prog.cc" "${flags[@]}"

version=$(sed -n 's/^#define RAD_VERSION_STRING "\(.*\)"/\1/p' include/rad/rad.h)
expect_c="c $version invalid argument"
expect_cxx="c++ $version invalid argument"
out=$(LD_LIBRARY_PATH=$libdir "$tmp/prog")
[ "$out" = "$expect_c" ] ||
  { echo "install.sh: C program printed '$out', expected '$expect_c'" >&2; exit 1; }
out=$(LD_LIBRARY_PATH=$libdir "$tmp/prog_cxx")
[ "$out" = "$expect_cxx" ] ||
  { echo "install.sh: C++ program printed '$out', expected '$expect_cxx'" >&2; exit 1; }
# The programs really use the installed library. (ldd's output is read
# whole first: `ldd | grep -q` under pipefail fails at random, when grep
# exits on its match before ldd has written everything and ldd gets
# SIGPIPE.)
loaded=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/prog")
grep -qF "$libdir/librad.so.$major" <<<"$loaded" ||
  { echo "install.sh: program does not load $libdir/librad.so.$major" >&2; exit 1; }

unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
submake uninstall
left=$(find "$dest" \( -type f -o -type l \) -print)
if [ -n "$left" ]; then
  echo "install.sh: left behind by uninstall:" >&2
  echo "$left" >&2
  exit 1
fi
echo "install.sh: install, pkg-config (C and C++), run and uninstall OK"
