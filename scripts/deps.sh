#!/bin/sh
# Check librad's build and test dependencies; install what is missing.
#
#   sh scripts/deps.sh [TOOL...]
#
# Always checked: the C compiler ($CC, default cc), pkg-config, OpenBLAS
# (openblas.pc), Check (check.pc), libpng (libpng.pc), and $PYTHON (default
# /usr/bin/python3) with numpy. Each TOOL argument is a further command to
# require, named like its Debian package (g++, valgrind, clang).
#
# Silent and cheap when everything is present (no apt-get call). Otherwise,
# as root on a system with apt-get it runs `apt-get update` and
# `apt-get install -y` with the exact Debian packages; as any other user it
# prints the command to run and fails. Used by `make deps` and by every
# make target that builds.
set -u

CC=${CC:-cc}
PKG_CONFIG=${PKG_CONFIG:-pkg-config}
PYTHON=${PYTHON:-/usr/bin/python3}

missing=""
need() {
  case " $missing " in
    *" $1 "*) ;;
    *) missing="${missing:+$missing }$1" ;;
  esac
}

have_cmd() {
  command -v "$1" >/dev/null 2>&1
}

# A pkg-config module is present. Without pkg-config, look for the .pc file
# in the default search path, so the check still names the right packages.
have_pc() {
  if have_cmd "$PKG_CONFIG"; then
    "$PKG_CONFIG" --exists "$1"
    return
  fi
  for dir in /usr/local/lib/*/pkgconfig /usr/local/lib/pkgconfig \
             /usr/local/share/pkgconfig /usr/lib/*/pkgconfig \
             /usr/lib/pkgconfig /usr/share/pkgconfig; do
    [ -f "$dir/$1.pc" ] && return 0
  done
  return 1
}

check_all() {
  missing=""
  # First word of $CC (it may carry flags, as in CC='ccache gcc').
  # shellcheck disable=SC2086
  set -- $CC
  cc_cmd=${1:-cc}
  if ! have_cmd "$cc_cmd"; then
    case "$cc_cmd" in
      clang*) need clang ;;
      *) need build-essential ;;
    esac
  fi
  have_cmd "$PKG_CONFIG" || need pkg-config
  have_pc openblas || need libopenblas-dev
  have_pc check || need check
  have_pc libpng || need libpng-dev
  if [ ! -x "$PYTHON" ]; then
    need python3
    need python3-numpy
  elif ! "$PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("numpy") is None)' >/dev/null 2>&1; then
    need python3-numpy
  fi
  for tool in $extra_tools; do
    have_cmd "$tool" || need "$tool"
  done
}

extra_tools="$*"
check_all
if [ -z "$missing" ]; then
  [ -n "${DEPS_VERBOSE:-}" ] && echo "deps: all build and test dependencies are present"
  exit 0
fi

cmd="apt-get update && apt-get install -y $missing"
if [ "$(id -u)" = 0 ] && have_cmd apt-get; then
  echo "deps: installing missing Debian packages: $missing"
  export DEBIAN_FRONTEND=noninteractive
  # $missing is a space-separated list of package names: split it.
  # shellcheck disable=SC2086
  if ! { apt-get update && apt-get install -y $missing; }; then
    echo "deps: apt-get failed; run as root: $cmd" >&2
    exit 1
  fi
  check_all
  if [ -n "$missing" ]; then
    echo "deps: still missing after apt-get install: $missing" >&2
    exit 1
  fi
  exit 0
fi

echo "deps: missing Debian packages: $missing" >&2
echo "deps: install them as root with:" >&2
echo "    $cmd" >&2
exit 1
