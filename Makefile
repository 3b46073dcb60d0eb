# ############################################################################
# librad: plain GNU make build (no autotools, no cmake), in zstd's manner.
#
# Common targets
#   make                 library (lib/), rad.pc, examples (bin/)
#   make demo            build, then run $(DEMO_CMD) $(DEMO_ARGS)
#   make check           build everything, run every test, print a summary
#   make check-asan      C tests in a separate ASan+UBSan tree (build-asan/)
#   make check-valgrind  C tests under valgrind
#   make check-tsan      thread tests under ThreadSanitizer (build-tsan/)
#   make fuzz            libFuzzer harnesses, FUZZ_SECONDS each (build-fuzz/)
#   make install         PREFIX, DESTDIR, LIBDIR, INCLUDEDIR, PKGCONFIGDIR,
#                        BINDIR are honoured; make uninstall undoes it
#   make deps            check (and as root, apt-get install) build deps
#   make clean
#   make help            this list, with the variables
#   make bench           build bin/rad-bench (bench/*.c), run it single-thread
#   make bench-compare   librad against the same models in PyTorch
#   make mpi             bin/rad-mpi-fit: data-parallel training with MPI
#                        (mpi/, docs/scaling.md; needs libopenmpi-dev)
#   make check-mpi       build it, run tests/mpi.sh (2 MPI ranks)
#
# Adding files: nothing to edit here.
#   src/NAME.c                -> compiled into lib/librad.{so,a}
#                                (internal headers: src/*.h)
#   examples/NAME.c           -> bin/rad-NAME (examples/rad.c -> bin/rad)
#   examples/common/*.c       -> linked into every example
#   tests/test_NAME.c         -> build/tests/test_NAME, a Check program with
#                                its own main(), linked with lib/librad.a
#                                (so hidden internal functions are testable)
#   tests/common/*.c          -> linked into every C test program
#   tests/NAME.sh             -> run with bash from the top directory
#   tests/test_NAME.py        -> run with $(PYTHON), RAD_LIB=lib/librad.so
#   new exported function     -> declare it RAD_API in include/rad/rad.h and
#                                list it in rad.map (tests/symbols.sh checks
#                                that the two agree)
#
# Extra flags for one file: use a target-specific variable on its object,
# spelled with $(B) so that it also applies in the ASan tree, e.g.
#   $(B)/src/vecmath.o: CFLAGS_EXTRA += -O3 -ffast-math
# CFLAGS_EXTRA comes last on the compile line, so it wins over CFLAGS. Put
# such lines after the "Per-file flags" marker below. Never set it on a
# library or program target: target-specific variables are inherited by
# every prerequisite, so it would reach every object.
# ############################################################################

# The main job `make demo` runs, after building everything (one place to
# change it). DEMO_ARGS is for a command-line override: make demo DEMO_ARGS=..
DEMO_CMD  = bin/rad-paper --out demo-out
DEMO_ARGS ?=

.DEFAULT_GOAL := all

# ---- Version, read from the header (never duplicated) ----------------------
RAD_H := include/rad/rad.h
rad_version_field = $(shell sed -n 's/^[[:space:]]*.[[:space:]]*define[[:space:]]\{1,\}RAD_VERSION_$(1)[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' $(RAD_H))
MAJOR   := $(call rad_version_field,MAJOR)
MINOR   := $(call rad_version_field,MINOR)
PATCH   := $(call rad_version_field,PATCH)
VERSION := $(MAJOR).$(MINOR).$(PATCH)
ifneq ($(words $(MAJOR) $(MINOR) $(PATCH)),3)
  $(error could not read RAD_VERSION_MAJOR/MINOR/PATCH from $(RAD_H))
endif

# ---- Tools and user flags --------------------------------------------------
CC         ?= cc
AR         ?= ar
PKG_CONFIG ?= pkg-config
PYTHON     ?= /usr/bin/python3
INSTALL    ?= install
VALGRIND   ?= valgrind
CFLAGS     ?= -O2 -g
CPPFLAGS   ?=
LDFLAGS    ?=
WERROR     ?= -Werror
# Extra libraries for every example program (e.g. EX_LDLIBS = -pthread).
EX_LDLIBS  ?=

# Build tree and in-tree library directory; check-asan sets both.
B ?= build
L ?= lib

# `make V=1` prints full commands; `make -s` prints nothing.
ifeq ($(V),1)
  Q =
  say = @:
else ifneq ($(findstring s,$(firstword x$(MAKEFLAGS))),)
  Q = @
  say = @:
else
  Q = @
  say = @printf '  %-6s %s\n'
endif

# ---- Installation directories (lower-case spellings accepted, as zstd) ----
prefix       ?= /usr/local
PREFIX       ?= $(prefix)
exec_prefix  ?= $(PREFIX)
EXEC_PREFIX  ?= $(exec_prefix)
libdir       ?= $(EXEC_PREFIX)/lib
LIBDIR       ?= $(libdir)
includedir   ?= $(PREFIX)/include
INCLUDEDIR   ?= $(includedir)
bindir       ?= $(EXEC_PREFIX)/bin
BINDIR       ?= $(bindir)
pkgconfigdir ?= $(LIBDIR)/pkgconfig
PKGCONFIGDIR ?= $(pkgconfigdir)
DESTDIR      ?=
INSTALL_PROGRAM ?= $(INSTALL)
INSTALL_DATA    ?= $(INSTALL) -m 644
# Examples that `make install` installs (names of examples/NAME.c; those
# without a source file are skipped).
INSTALL_EXAMPLES ?= rad paper
# Run path of installed programs: none when LIBDIR is a default system
# directory, else LIBDIR itself (never the build tree). For a relocatable
# install: make install INSTALL_RPATH='-Wl,-rpath,$$ORIGIN/../lib'
SYSTEM_LIBDIRS = /lib /usr/lib /lib64 /usr/lib64 /lib/%-linux-gnu /usr/lib/%-linux-gnu
INSTALL_RPATH ?= $(if $(filter $(SYSTEM_LIBDIRS),$(LIBDIR)),,-Wl,-rpath,$(LIBDIR))

# ---- pkg-config queries: evaluated lazily (only by recipes, so after the
# deps check has run) and at most once per make invocation ------------------
lazy = $(eval $(1) := $$(shell $(2)))$($(1))
OPENBLAS_CFLAGS = $(call lazy,OPENBLAS_CFLAGS,$(PKG_CONFIG) --cflags openblas)
OPENBLAS_LIBS   = $(call lazy,OPENBLAS_LIBS,$(PKG_CONFIG) --libs openblas)
CHECK_CFLAGS    = $(call lazy,CHECK_CFLAGS,$(PKG_CONFIG) --cflags check)
CHECK_LIBS      = $(call lazy,CHECK_LIBS,$(PKG_CONFIG) --libs check)
# Examples see librad exactly as a user does, through pkg-config, here
# resolved to the in-tree rad-uninstalled.pc (see UNINSTALLED_PC).
EX_PC_ENV       = PKG_CONFIG_PATH=$(B)$${PKG_CONFIG_PATH:+:$$PKG_CONFIG_PATH}
EX_PC_CFLAGS    = $(call lazy,EX_PC_CFLAGS,$(EX_PC_ENV) $(PKG_CONFIG) --cflags rad libpng)
EX_PC_LIBS      = $(call lazy,EX_PC_LIBS,$(EX_PC_ENV) $(PKG_CONFIG) --libs rad libpng)

# ---- Internal flags (user CFLAGS/CPPFLAGS come after, so they can override)
# clang 14 writes DWARF 5 forms that valgrind 3.19 cannot read: with clang,
# debug info (when -g asks for it) is DWARF 4.
DWARF_CFLAGS = $(if $(findstring clang,$(notdir $(firstword $(CC)))),-fdebug-default-version=4)
STD_CFLAGS  = -std=c11 -Wall -Wextra -Wpedantic $(WERROR) $(DWARF_CFLAGS)
DEP_FLAGS   = -MMD -MP
LIB_CPPFLAGS = -Iinclude -Isrc -DRAD_BUILDING_LIBRARY -D_POSIX_C_SOURCE=200809L
LIB_CFLAGS   = $(STD_CFLAGS) -fPIC -fvisibility=hidden
TEST_CPPFLAGS = -Iinclude -Isrc -Itests/common -D_POSIX_C_SOURCE=200809L
EX_CPPFLAGS   = -Iexamples/common -D_POSIX_C_SOURCE=200809L

# ---- Sources and products --------------------------------------------------
LIB_SRCS  := $(wildcard src/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/%.o)

SHLIB_REAL  := $(L)/librad.so.$(VERSION)
SHLIB_MAJOR := librad.so.$(MAJOR)
SHLIB_LINK  := librad.so
STLIB       := $(L)/librad.a
VERSION_SCRIPT := rad.map

PC_IN          := rad.pc.in
PC             := rad.pc
UNINSTALLED_PC := $(B)/rad-uninstalled.pc

EX_SRCS        := $(wildcard examples/*.c)
EX_NAMES       := $(EX_SRCS:examples/%.c=%)
EX_OBJS        := $(EX_SRCS:%.c=$(B)/%.o)
EX_COMMON_SRCS := $(wildcard examples/common/*.c)
EX_COMMON_OBJS := $(EX_COMMON_SRCS:%.c=$(B)/%.o)
ex_bin = $(if $(filter rad,$(1)),rad,rad-$(1))
EX_BINS        := $(foreach n,$(EX_NAMES),bin/$(call ex_bin,$(n)))
INSTALL_EX_NAMES := $(filter $(INSTALL_EXAMPLES),$(EX_NAMES))

TEST_SRCS        := $(wildcard tests/test_*.c)
TEST_BINS        := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_OBJS        := $(TEST_SRCS:%.c=$(B)/%.o)
TEST_COMMON_SRCS := $(wildcard tests/common/*.c)
TEST_COMMON_OBJS := $(TEST_COMMON_SRCS:%.c=$(B)/%.o)
SH_TESTS         := $(wildcard tests/*.sh)
PY_TESTS         := $(wildcard tests/test_*.py)

# With -fsanitize=undefined clang cannot vectorize the `omp simd` loops of
# src/kern_body.h and says so (-Wpass-failed): not an error there.
ASAN_FLAGS = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
             -fno-omit-frame-pointer -O1 -g \
             $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),-Wno-pass-failed)
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 CK_TIMEOUT_MULTIPLIER=10
VALGRIND_FLAGS = -q --error-exitcode=1 --leak-check=full \
                 --errors-for-leak-kinds=definite,indirect

.PHONY: all lib lib-shared lib-static pc examples tests deps check \
        check-asan check-valgrind run-c-tests demo install uninstall \
        clean help FORCE

all: lib pc examples
lib: lib-shared lib-static
lib-shared: $(SHLIB_REAL)
lib-static: $(STLIB)
pc: $(PC) $(UNINSTALLED_PC)
examples: $(EX_BINS)
tests: $(TEST_BINS)

# ---- Dependency check ------------------------------------------------------
# Cheap when everything is there; as root it apt-get installs what is
# missing, otherwise it names the packages and fails. Every object depends
# on it order-only, so it runs once, first, in any make that compiles.
deps:
	$(Q)CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)' PYTHON='$(PYTHON)' \
	  DEPS_VERBOSE='$(filter deps,$(MAKECMDGOALS))' sh scripts/deps.sh

# ---- Library ---------------------------------------------------------------
$(LIB_OBJS): $(B)/%.o: %.c | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) $(LIB_CPPFLAGS) $(CPPFLAGS) $(LIB_CFLAGS) $(CFLAGS) -pthread \
	  $(OPENBLAS_CFLAGS) $(CFLAGS_EXTRA) $(DEP_FLAGS) -c $< -o $@

$(SHLIB_REAL): $(LIB_OBJS) $(VERSION_SCRIPT)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) -shared -o $@ $(LIB_OBJS) $(LDFLAGS) \
	  -Wl,-soname,$(SHLIB_MAJOR) -Wl,--version-script=$(VERSION_SCRIPT) \
	  -Wl,--no-undefined $(OPENBLAS_LIBS) -pthread -lm
	$(Q)ln -sf $(notdir $@) $(L)/$(SHLIB_MAJOR)
	$(Q)ln -sf $(SHLIB_MAJOR) $(L)/$(SHLIB_LINK)

$(STLIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(say) AR $@
	$(Q)rm -f $@ && $(AR) rcs $@ $(LIB_OBJS)

# ---- pkg-config files ------------------------------------------------------
# rad.pc is for installation. $(B)/rad-uninstalled.pc points at the source
# tree's include/ and lib/: pkg-config prefers NAME-uninstalled.pc, so
#   PKG_CONFIG_PATH=build pkg-config --cflags --libs rad
# gives in-tree flags. Both are regenerated on every make (install
# directories may differ from one make to the next) but rewritten only when
# their content changes.
# If LIBDIR/INCLUDEDIR lie under PREFIX, express them through ${prefix}.
pc_dir = $(if $(filter $(PREFIX)/%,$(1)),$${prefix}$(patsubst $(PREFIX)%,%,$(1)),$(1))
gen_pc = sed -e 's|@PREFIX@|$(1)|' -e 's|@LIBDIR@|$(2)|' \
             -e 's|@INCLUDEDIR@|$(3)|' -e 's|@VERSION@|$(VERSION)|' $(PC_IN)
update_if_changed = if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(PC): $(PC_IN) $(RAD_H) FORCE | deps
	$(Q)$(call gen_pc,$(PREFIX),$(call pc_dir,$(LIBDIR)),$(call pc_dir,$(INCLUDEDIR))) > $@.tmp
	$(Q)$(update_if_changed)

$(UNINSTALLED_PC): $(PC_IN) $(RAD_H) FORCE | deps
	@mkdir -p $(@D)
	$(Q)$(call gen_pc,$(CURDIR),$${prefix}/$(L),$${prefix}/include) > $@.tmp
	$(Q)$(update_if_changed)

# ---- Examples --------------------------------------------------------------
$(EX_OBJS) $(EX_COMMON_OBJS): $(B)/%.o: %.c $(UNINSTALLED_PC) | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) $(EX_CPPFLAGS) $(CPPFLAGS) $(STD_CFLAGS) $(CFLAGS) \
	  $(EX_PC_CFLAGS) $(CFLAGS_EXTRA) $(DEP_FLAGS) -c $< -o $@

# $(call link_example,NAME,OUTPUT,RPATH-FLAGS); the run path is quoted so
# that $$ORIGIN reaches the linker intact.
link_example = $(CC) $(CFLAGS) $(LDFLAGS) -o $(2) $(B)/examples/$(1).o \
  $(EX_COMMON_OBJS) $(EX_PC_LIBS) $(EX_LDLIBS) -lm $(if $(3),'$(3)')
INTREE_RPATH = -Wl,-rpath,$(abspath $(L))

bin/rad: $(B)/examples/rad.o $(EX_COMMON_OBJS) $(SHLIB_REAL)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(call link_example,rad,$@,$(INTREE_RPATH))

bin/rad-%: $(B)/examples/%.o $(EX_COMMON_OBJS) $(SHLIB_REAL)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(call link_example,$*,$@,$(INTREE_RPATH))

# ---- Tests -----------------------------------------------------------------
$(TEST_OBJS) $(TEST_COMMON_OBJS): $(B)/%.o: %.c | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) $(TEST_CPPFLAGS) $(CPPFLAGS) $(STD_CFLAGS) $(CFLAGS) \
	  $(CHECK_CFLAGS) $(OPENBLAS_CFLAGS) $(CFLAGS_EXTRA) $(DEP_FLAGS) \
	  -c $< -o $@

$(TEST_BINS): $(B)/tests/%: $(B)/tests/%.o $(TEST_COMMON_OBJS) $(STLIB)
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_COMMON_OBJS) $(STLIB) \
	  $(OPENBLAS_LIBS) $(CHECK_LIBS) -pthread -lm

# Environment of every test: paths are absolute, cwd is the top directory.
TEST_ENV = RAD_LIB='$(abspath $(L)/$(SHLIB_LINK))' RAD_TOP='$(CURDIR)' \
  PYTHON='$(PYTHON)' MAKE='$(MAKE)' CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)'

check: all tests
	@CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)' PYTHON='$(PYTHON)' \
	  sh scripts/deps.sh g++
	@$(TEST_ENV) sh scripts/run-tests.sh check \
	  $(TEST_BINS) $(SH_TESTS) $(PY_TESTS)

# The C test programs only (check-asan runs this in its sub-make).
SUITE   ?= c-tests
RUN_ENV ?=
run-c-tests: tests
	@$(RUN_ENV) $(TEST_ENV) sh scripts/run-tests.sh $(SUITE) $(TEST_BINS)

# Separate tree, its own static library copy; the user's CFLAGS are
# replaced by the sanitizer flags. Check's per-test timeout is stretched.
check-asan:
	@$(MAKE) --no-print-directory B=build-asan L=build-asan/lib \
	  CFLAGS='$(ASAN_FLAGS)' LDFLAGS='$(ASAN_FLAGS) $(LDFLAGS)' \
	  SUITE=check-asan RUN_ENV='$(ASAN_ENV)' run-c-tests

check-valgrind: tests
	@CC='$(CC)' PKG_CONFIG='$(PKG_CONFIG)' PYTHON='$(PYTHON)' \
	  sh scripts/deps.sh valgrind
	@CK_FORK=no OPENBLAS_NUM_THREADS=1 \
	  TEST_WRAPPER='$(VALGRIND) $(VALGRIND_FLAGS)' \
	  $(TEST_ENV) sh scripts/run-tests.sh check-valgrind $(TEST_BINS)

# ---- Demo ------------------------------------------------------------------
demo: all
	@prog='$(firstword $(DEMO_CMD))'; \
	if [ -x "$$prog" ]; then \
	  echo '$(strip $(DEMO_CMD) $(DEMO_ARGS))'; $(DEMO_CMD) $(DEMO_ARGS); \
	else \
	  echo "demo: $$prog was not built" >&2; exit 1; \
	fi

# ---- Install ---------------------------------------------------------------
# Installed programs are relinked (always: INSTALL_RPATH may change between
# runs) so that they never carry the build tree's run path.
INSTALL_BIN_DIR = $(B)/install-bin

install: lib pc $(foreach n,$(INSTALL_EX_NAMES),$(B)/examples/$(n).o) \
         $(EX_COMMON_OBJS)
	$(Q)$(INSTALL) -d -m 755 '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' \
	  '$(DESTDIR)$(INCLUDEDIR)/rad'
	$(Q)$(INSTALL_DATA) include/rad/*.h '$(DESTDIR)$(INCLUDEDIR)/rad/'
	$(Q)$(INSTALL_PROGRAM) $(SHLIB_REAL) '$(DESTDIR)$(LIBDIR)/'
	$(Q)ln -sf $(notdir $(SHLIB_REAL)) '$(DESTDIR)$(LIBDIR)/$(SHLIB_MAJOR)'
	$(Q)ln -sf $(SHLIB_MAJOR) '$(DESTDIR)$(LIBDIR)/$(SHLIB_LINK)'
	$(Q)$(INSTALL_DATA) $(STLIB) '$(DESTDIR)$(LIBDIR)/'
	$(Q)$(INSTALL_DATA) $(PC) '$(DESTDIR)$(PKGCONFIGDIR)/'
ifneq ($(INSTALL_EX_NAMES),)
	$(Q)mkdir -p $(INSTALL_BIN_DIR)
	$(Q)$(INSTALL) -d -m 755 '$(DESTDIR)$(BINDIR)'
	$(Q)$(foreach n,$(INSTALL_EX_NAMES),\
	  $(call link_example,$(n),$(INSTALL_BIN_DIR)/$(call ex_bin,$(n)),$(INSTALL_RPATH)) && \
	  $(INSTALL_PROGRAM) $(INSTALL_BIN_DIR)/$(call ex_bin,$(n)) '$(DESTDIR)$(BINDIR)/' && ) :
endif
	@echo 'librad $(VERSION) installed under $(DESTDIR)$(PREFIX)'

uninstall:
	$(Q)rm -f '$(DESTDIR)$(LIBDIR)/$(SHLIB_LINK)' \
	  '$(DESTDIR)$(LIBDIR)/$(SHLIB_MAJOR)' \
	  '$(DESTDIR)$(LIBDIR)/$(notdir $(SHLIB_REAL))' \
	  '$(DESTDIR)$(LIBDIR)/$(notdir $(STLIB))' \
	  '$(DESTDIR)$(PKGCONFIGDIR)/$(PC)' \
	  $(foreach h,$(notdir $(wildcard include/rad/*.h)),'$(DESTDIR)$(INCLUDEDIR)/rad/$(h)') \
	  $(foreach n,$(INSTALL_EXAMPLES),'$(DESTDIR)$(BINDIR)/$(call ex_bin,$(n))')
	$(Q)rmdir '$(DESTDIR)$(INCLUDEDIR)/rad' 2>/dev/null || :
	@echo 'librad uninstalled from $(DESTDIR)$(PREFIX)'

# ---- Benchmark -------------------------------------------------------------
# bench/*.c -> bin/rad-bench, built like the examples: librad through
# pkg-config, resolved to the in-tree $(B)/rad-uninstalled.pc, run path to
# the in-tree lib/. Not part of `all`. `make bench` runs it single-threaded
# (OPENBLAS_NUM_THREADS=1 in its environment: the library never changes
# OpenBLAS's thread count, and neither does the benchmark); BENCH_ARGS is
# for options (make bench BENCH_ARGS=--quick). `make bench-compare` sets
# librad against the same models in PyTorch (bench/torch_ref.py).
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(B)/%.o)
BENCH_PC_CFLAGS = $(call lazy,BENCH_PC_CFLAGS,$(EX_PC_ENV) $(PKG_CONFIG) --cflags rad)
BENCH_PC_LIBS   = $(call lazy,BENCH_PC_LIBS,$(EX_PC_ENV) $(PKG_CONFIG) --libs rad)
BENCH_ENV  = OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
BENCH_ARGS ?=
BENCH_OUT  = $(B)/bench-compare-librad.txt

.PHONY: bench bench-compare

$(BENCH_OBJS): $(B)/%.o: %.c $(UNINSTALLED_PC) | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) -D_POSIX_C_SOURCE=200809L $(CPPFLAGS) $(STD_CFLAGS) $(CFLAGS) \
	  -pthread $(BENCH_PC_CFLAGS) $(CFLAGS_EXTRA) $(DEP_FLAGS) -c $< -o $@

bin/rad-bench: $(BENCH_OBJS) $(SHLIB_REAL)
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $(BENCH_OBJS) \
	  $(BENCH_PC_LIBS) -lm '$(INTREE_RPATH)'

bench: bin/rad-bench
	$(BENCH_ENV) bin/rad-bench $(BENCH_ARGS)

# Without PyTorch this prints how to get it and succeeds.
bench-compare:
	@if ! $(PYTHON) -c 'import torch' >/dev/null 2>&1; then \
	  echo 'PyTorch not installed: apt-get install python3-torch'; exit 0; fi; \
	$(MAKE) --no-print-directory bin/rad-bench && \
	echo '$(BENCH_ENV) bin/rad-bench --compare $(BENCH_ARGS)' && \
	$(BENCH_ENV) bin/rad-bench --compare $(BENCH_ARGS) > $(BENCH_OUT) && \
	cat $(BENCH_OUT) && echo && \
	echo '$(BENCH_ENV) $(PYTHON) bench/torch_ref.py --librad $(BENCH_OUT) $(filter --quick,$(BENCH_ARGS))' && \
	$(BENCH_ENV) RAD_LIB='$(abspath $(L)/$(SHLIB_LINK))' \
	  $(PYTHON) bench/torch_ref.py --librad $(BENCH_OUT) $(filter --quick,$(BENCH_ARGS))

-include $(wildcard $(B)/bench/*.d)

# ---- Reliability: fuzzing, ThreadSanitizer (docs/reliability.md) ---------
# make fuzz            builds fuzz/fuzz_*.c with clang and libFuzzer in a
#                      separate tree (build-fuzz/: src/*.c and
#                      examples/common/csv.c compiled with the fuzzer's
#                      coverage and ASan + UBSan), then runs each fuzzer for
#                      FUZZ_SECONDS on fuzz/corpus/NAME and
#                      tests/regress/NAME (new inputs go to
#                      build-fuzz/corpus/NAME, crashes to
#                      build-fuzz/artifacts/). FUZZ_ARGS: more libFuzzer
#                      options (e.g. -jobs=2 -workers=2).
# make fuzz-corpus     regenerates the seed model files (fuzz/gen_corpus.c)
# make check-tsan      TSAN_TESTS (tests/test_NAME.c) built with
#                      -fsanitize=thread in build-tsan/ and run
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_NAMES   := load csv
FUZZ_B       := build-fuzz
# Every sanitizer report halts. fuzz/ubsan.supp is where a known, reported
# bug would be silenced (with its check made recoverable here); it lists
# none.
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer -g -O1
FUZZ_LINK    = -fsanitize=fuzzer $(FUZZ_SAN)
# With the sanitizers, clang cannot vectorize the `omp simd` loops of
# src/kern_body.h and says so (-Wpass-failed): not an error here.
FUZZ_WFLAGS  = -Wno-pass-failed
FUZZ_ENV     = ASAN_OPTIONS=detect_leaks=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$(CURDIR)/fuzz/ubsan.supp
FUZZ_BINS    = $(FUZZ_NAMES:%=$(B)/fuzz/fuzz_%)

TSAN_TESTS ?= threads workspace
TSAN_FLAGS  = -fsanitize=thread -fno-omit-frame-pointer -O1 -g
# No suppressions: OpenBLAS is not built with TSan, but librad's small
# products run single-threaded inside it and TSan reports nothing there
# (docs/reliability.md says what to do if that changes).
TSAN_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  CK_TIMEOUT_MULTIPLIER=20

.PHONY: fuzz fuzz-build fuzz-bins fuzz-corpus check-tsan clean-reliability

# Built by the sub-make of fuzz-build (B = build-fuzz, CC = clang).
fuzz-bins: $(FUZZ_BINS)

$(B)/fuzz/fuzz_%.o: fuzz/fuzz_%.c | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) -Iinclude -D_POSIX_C_SOURCE=200809L $(CPPFLAGS) $(STD_CFLAGS) \
	  $(CFLAGS) $(DEP_FLAGS) -c $< -o $@

$(B)/fuzz/fuzz_load: $(B)/fuzz/fuzz_load.o $(STLIB)
	$(say) LD $@
	$(Q)$(CC) $(FUZZ_LINK) -o $@ $< $(STLIB) $(OPENBLAS_LIBS) -pthread -lm

$(B)/fuzz/fuzz_csv: $(B)/fuzz/fuzz_csv.o $(B)/examples/common/csv.o
	$(say) LD $@
	$(Q)$(CC) $(FUZZ_LINK) -o $@ $^ -lm

fuzz-build:
	@CC='$(FUZZ_CC)' PKG_CONFIG='$(PKG_CONFIG)' PYTHON='$(PYTHON)' \
	  sh scripts/deps.sh $(FUZZ_CC)
	@mkdir -p $(FUZZ_B) && echo '*' > $(FUZZ_B)/.gitignore
	@# objects built with other flags are removed first
	@echo '$(FUZZ_CC) $(FUZZ_SAN) $(FUZZ_WFLAGS)' > $(FUZZ_B)/flags.new; \
	if ! cmp -s $(FUZZ_B)/flags.new $(FUZZ_B)/flags; then \
	  rm -rf $(FUZZ_B)/src $(FUZZ_B)/examples $(FUZZ_B)/fuzz $(FUZZ_B)/lib; \
	  mv $(FUZZ_B)/flags.new $(FUZZ_B)/flags; else rm -f $(FUZZ_B)/flags.new; fi
	@$(MAKE) --no-print-directory B=$(FUZZ_B) L=$(FUZZ_B)/lib \
	  CC='$(FUZZ_CC)' CFLAGS='-fsanitize=fuzzer-no-link $(FUZZ_SAN) $(FUZZ_WFLAGS)' \
	  fuzz-bins || { echo 'fuzz: the build failed; libFuzzer and the' \
	  'sanitizer runtimes come with clang and libclang-rt-14-dev' \
	  '(apt-get install clang libclang-rt-14-dev)' >&2; exit 1; }

# Each fuzzer's log is kept in build-fuzz/fuzz_NAME.log; its end is shown.
fuzz: fuzz-build
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_B)/corpus/$$t $(FUZZ_B)/artifacts tests/regress/$$t; \
	  log=$(FUZZ_B)/fuzz_$$t.log; \
	  echo "fuzz_$$t: $(FUZZ_SECONDS) s (log: $$log)"; \
	  if $(FUZZ_ENV) $(FUZZ_B)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
	       -timeout=25 -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_B)/artifacts/$$t- $(FUZZ_ARGS) \
	       $(FUZZ_B)/corpus/$$t fuzz/corpus/$$t tests/regress/$$t \
	       > $$log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' $$log | sed 's/^/  /'; \
	  else \
	    tail -n 60 $$log; \
	    echo "fuzz_$$t FAILED: the input is in $(FUZZ_B)/artifacts/;" \
	      "copy it into tests/regress/$$t/ (make check then runs it)" >&2; \
	    exit 1; \
	  fi; \
	done

$(B)/fuzz/gen_corpus: fuzz/gen_corpus.c $(STLIB) | deps
	@mkdir -p $(@D)
	$(say) CC $@
	$(Q)$(CC) -Iinclude $(CPPFLAGS) $(STD_CFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ \
	  $< $(STLIB) $(OPENBLAS_LIBS) -pthread -lm

fuzz-corpus: $(B)/fuzz/gen_corpus
	$(B)/fuzz/gen_corpus fuzz/corpus/load

check-tsan:
	@mkdir -p build-tsan && echo '*' > build-tsan/.gitignore
	@echo '$(CC) $(TSAN_FLAGS)' > build-tsan/flags.new; \
	if ! cmp -s build-tsan/flags.new build-tsan/flags; then \
	  rm -rf build-tsan/src build-tsan/tests build-tsan/lib; \
	  mv build-tsan/flags.new build-tsan/flags; else rm -f build-tsan/flags.new; fi
	@$(MAKE) --no-print-directory B=build-tsan L=build-tsan/lib \
	  CFLAGS='$(TSAN_FLAGS)' LDFLAGS='$(TSAN_FLAGS) $(LDFLAGS)' \
	  TEST_BINS='$(TSAN_TESTS:%=build-tsan/tests/test_%)' \
	  SUITE=check-tsan RUN_ENV='$(TSAN_ENV)' run-c-tests

clean: clean-reliability
clean-reliability:
	rm -rf $(FUZZ_B) build-tsan

-include $(wildcard $(B)/fuzz/*.d)

# ---- MPI data-parallel training (mpi/, docs/scaling.md) --------------------
# mpi/*.c plus examples/common/csv.c -> bin/rad-mpi-fit, compiled and linked
# with $(MPICC), and linked with librad like the examples: through the
# in-tree rad-uninstalled.pc, run path to the in-tree lib/. librad itself
# never sees MPI. Not part of `all`; needs Debian's libopenmpi-dev and
# openmpi-bin. `make check-mpi` runs tests/mpi.sh (mpirun -np 2).
MPICC    ?= mpicc
MPI_SRCS := $(wildcard mpi/*.c)
MPI_OBJS := $(MPI_SRCS:%.c=$(B)/%.o)
MPI_PC_CFLAGS = $(call lazy,MPI_PC_CFLAGS,$(EX_PC_ENV) $(PKG_CONFIG) --cflags rad)
MPI_PC_LIBS   = $(call lazy,MPI_PC_LIBS,$(EX_PC_ENV) $(PKG_CONFIG) --libs rad)

.PHONY: mpi check-mpi mpi-deps

mpi-deps:
	@command -v $(firstword $(MPICC)) >/dev/null 2>&1 || { \
	  echo "make mpi: $(firstword $(MPICC)) not found: apt-get install libopenmpi-dev openmpi-bin" >&2; \
	  exit 1; }

$(MPI_OBJS): $(B)/%.o: %.c $(UNINSTALLED_PC) | deps mpi-deps
	@mkdir -p $(@D)
	$(say) MPICC $@
	$(Q)$(MPICC) $(EX_CPPFLAGS) $(CPPFLAGS) $(STD_CFLAGS) $(CFLAGS) \
	  $(MPI_PC_CFLAGS) $(CFLAGS_EXTRA) $(DEP_FLAGS) -c $< -o $@

bin/rad-mpi-fit: $(MPI_OBJS) $(B)/examples/common/csv.o $(SHLIB_REAL) | mpi-deps
	@mkdir -p $(@D)
	$(say) LD $@
	$(Q)$(MPICC) $(CFLAGS) $(LDFLAGS) -o $@ $(MPI_OBJS) \
	  $(B)/examples/common/csv.o $(MPI_PC_LIBS) -lm '$(INTREE_RPATH)'

mpi: bin/rad-mpi-fit

check-mpi: mpi
	@$(TEST_ENV) sh scripts/run-tests.sh check-mpi tests/mpi.sh

-include $(wildcard $(B)/mpi/*.d)

# ---- Housekeeping ----------------------------------------------------------
clean:
	rm -rf build build-asan bin $(PC) $(PC).tmp
	rm -f lib/*

help:
	@sed -n '2,/^# ####/p' Makefile | sed 's/^# \{0,1\}//' | sed '$$d'
	@echo 'Variables: CC CFLAGS CPPFLAGS LDFLAGS WERROR V=1 PREFIX DESTDIR'
	@echo '  LIBDIR INCLUDEDIR PKGCONFIGDIR BINDIR INSTALL_EXAMPLES'
	@echo '  INSTALL_RPATH EX_LDLIBS PYTHON PKG_CONFIG VALGRIND'
	@echo '  DEMO_CMD DEMO_ARGS'
	@echo 'librad $(VERSION): $(words $(LIB_SRCS)) sources,' \
	  '$(words $(EX_NAMES)) examples, $(words $(TEST_SRCS)) C tests,' \
	  '$(words $(SH_TESTS)) shell tests, $(words $(PY_TESTS)) Python tests'

FORCE:

# ---- Per-file flags (target-specific variables; see the top comment) -------
# The hot loops (src/kern_body.h): `#pragma omp simd` loops (no OpenMP
# runtime is involved), contractions into FMA, no FP-exception flags
# (-fno-trapping-math lets selects be vectorized); the AVX2 copy is chosen at
# run time on CPUs that have AVX2 and FMA. No -ffast-math anywhere: input
# validation (src/validate.c) must see NaN and infinity.
# GCC if-converts a select of more than 4 ways (the fold's 5 pieces) only
# with a larger limit; clang needs nothing.
CC_IS_CLANG := $(findstring clang,$(shell $(CC) --version 2>/dev/null))
KERN_FLAGS = -O3 -fopenmp-simd -ffp-contract=fast -fno-trapping-math \
             $(if $(CC_IS_CLANG),,--param max-tree-if-conversion-phi-args=16)
$(B)/src/kern_generic.o: CFLAGS_EXTRA += $(KERN_FLAGS)
$(B)/src/kern_avx2.o: CFLAGS_EXTRA += $(KERN_FLAGS) -mavx2 -mfma
$(B)/src/kern_avx512.o: CFLAGS_EXTRA += $(KERN_FLAGS) -mavx2 -mfma -mavx512f -mavx512dq \
  -mavx512vl -mavx512bw -mprefer-vector-width=256

# Header dependencies written by -MMD -MP.
-include $(wildcard $(B)/src/*.d $(B)/examples/*.d $(B)/examples/common/*.d \
                    $(B)/tests/*.d $(B)/tests/common/*.d)
