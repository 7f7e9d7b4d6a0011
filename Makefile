# alloclab - `make bench` (the main job) and `make test` (every test). See README.md.
#
# Three build variants share these rules, each in its own folder:
#   build/        plain -O2 build: the alloclab program and the test binaries
#   build/asan/   -fsanitize=address,undefined (conformance and unit tests)
#   build/tsan/   -fsanitize=thread (conformance and unit tests)
# Sources are found by wildcard: a new backend file under allocators/ or a new workload under
# workloads/ is built with no change here. A backend folder may add rules in a <name>.mk.

SHELL := /bin/bash
.DEFAULT_GOAL := all

VARIANT ?= rel
ifeq ($(VARIANT),rel)
B := build
SAN :=
else ifeq ($(VARIANT),asan)
B := build/asan
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(VARIANT),tsan)
B := build/tsan
SAN := -fsanitize=thread
# Criterion cannot start under TSan (Snaipe/Criterion#274): the same test sources build
# against tests/compat/criterion/, a small runner with the same macros and output.
TEST_INC := -Itests/compat -Wno-format-zero-length
TEST_RT := $(B)/obj/tests/compat/crt_runner.o
else
$(error VARIANT must be rel, asan or tsan)
endif

CC  := gcc
CXX := g++
OPT ?= -O2
WARN := -Wall -Wextra -Wno-unused-parameter
TEST_INC ?=
TEST_RT ?= -lcriterion
CPPFLAGS := -D_GNU_SOURCE $(TEST_INC) -Iallocators -Iworkloads -Iharness -I$(B)/gen
CFLAGS := -std=c11 $(OPT) -g $(WARN) -pthread $(SAN) $(EXTRA_CFLAGS)
CXXFLAGS := -std=c++17 $(OPT) -g $(WARN) -pthread $(SAN)
LDFLAGS := -pthread $(SAN)
LDLIBS := -lm -ldl

# ---- Debian packages: installed when missing (as root), else the exact command is printed ----
DEB_PKGS := gcc g++ make binutils libbenchmark-dev libbenchmark-tools libcriterion-dev gnuplot-nox jq \
            python3-scipy valgrind libpapi-dev libmimalloc-dev libgoogle-perftools-dev \
            libjemalloc-dev git
DEPS_STAMP := build/.deps-ok

$(DEPS_STAMP): Makefile
	@missing=$$(for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done | tr '\n' ' '); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "alloclab: installing missing Debian packages: $$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	      || { echo "alloclab: apt-get install failed" >&2; exit 1; }; \
	  else \
	    echo "alloclab: missing Debian packages. Run as root:" >&2; \
	    echo "  apt-get update && apt-get install -y $$missing" >&2; \
	    exit 1; \
	  fi; \
	fi
	@mkdir -p build && touch $@

deps: $(DEPS_STAMP)

# ---- sources ----
ALLOC_SRCS := $(wildcard allocators/*.c allocators/*/*.c)
ALLOC_SRCS := $(filter-out $(wildcard allocators/*/gen_*.c),$(ALLOC_SRCS))
WL_SRCS    := $(wildcard workloads/*.c)
HARNESS_LIB := harness/clock.c harness/stats.c harness/latency.c
LIB_SRCS   := $(ALLOC_SRCS) $(WL_SRCS) $(HARNESS_LIB)
HARNESS_C  := $(filter-out $(HARNESS_LIB),$(wildcard harness/*.c))
HARNESS_CC := $(wildcard harness/*.cc)
UNIT_SRCS  := $(wildcard tests/unit_*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(patsubst %.cc,$(B)/obj/%.o,$(1)))
LIB_OBJS := $(call obj,$(LIB_SRCS))

# Every object depends on the flags it is compiled with: make alone compares only times, so
# `make EXTRA_CFLAGS=-DSP_DEBUG=1` over a plain build would relink the plain objects, while
# main.o (rebuilt by the commit stamp below) reported the new flags in every result. The
# stamp is rewritten only when the flags change. GEN_HEADERS (generated headers, and this) is
# a prerequisite of every C compile rule, the .mk files' included.
# Recipe of a stamp: write the text $(1) to $@, but replace the file (and so its time) only
# when the text changed.
define WRITE_STAMP
	@mkdir -p $(dir $@)
	@echo '$(1)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
endef
FLAGS_STAMP := $(B)/gen/flags.stamp
$(FLAGS_STAMP): FORCE
	$(call WRITE_STAMP,$(CC) | $(CXX) | $(CPPFLAGS) | $(CFLAGS) | $(CXXFLAGS))
GEN_HEADERS := $(FLAGS_STAMP)

-include $(wildcard allocators/*/*.mk)
-include preload/preload.mk
-include harness/*.mk

$(B)/obj/%.o: %.c $(GEN_HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/obj/%.o: %.cc $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(B)/liballoclab.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The program. Results name what produced them: the commit and the flags go in as strings.
# main.o is rebuilt whenever the commit (or the dirty mark) changes, not only when main.c does:
# a stale stamp would make results name the wrong code. (A change of flags: FLAGS_STAMP.)
GIT_COMMIT := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(B)/obj/harness/main.o: CPPFLAGS += -DALLOCLAB_COMMIT='"$(GIT_COMMIT)"' -DALLOCLAB_CFLAGS='"$(CFLAGS)"'
$(B)/obj/harness/main.o: $(B)/gen/commit.stamp
$(B)/gen/commit.stamp: FORCE
	$(call WRITE_STAMP,$(GIT_COMMIT))
FORCE:
$(B)/alloclab: $(call obj,$(HARNESS_C) $(HARNESS_CC)) $(B)/liballoclab.a
	$(CXX) $(LDFLAGS) -o $@ $^ -lbenchmark $(LDLIBS)

# Layout samples: the same objects linked in another order (a shuffle seeded by N), so every
# function and static variable lands at other addresses. One build is one layout, and a
# layout alone moved a backend by 15-30% on bufchurn steady 64 B; scripts/interleave-layouts.sh
# runs `alloclab interleave` over several of them.
$(B)/layout/alloclab.%: $(call obj,$(HARNESS_C) $(HARNESS_CC)) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $$(printf '%s\n' $^ | shuf --random-source=<(yes '$*')) -lbenchmark $(LDLIBS)

# Tests (Criterion): the conformance suite over every registered backend, one binary per unit
# test file.
TEST_RT_DEP := $(filter %.o,$(TEST_RT))
$(B)/tests/conformance: $(call obj,tests/conformance.c) $(B)/liballoclab.a $(TEST_RT_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(TEST_RT_DEP),$^) $(TEST_RT) $(LDLIBS)

$(B)/tests/unit_%: $(B)/obj/tests/unit_%.o $(B)/liballoclab.a $(TEST_RT_DEP)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter-out $(TEST_RT_DEP),$^) $(TEST_RT) $(LDLIBS)

UNIT_BINS := $(patsubst tests/%.c,$(B)/tests/%,$(UNIT_SRCS))
TEST_BINS := $(B)/tests/conformance $(UNIT_BINS)

all: $(B)/alloclab
tests-build: $(TEST_BINS)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

# ---- running tests ----
# CRITERION_JOBS=2: this machine has 2 cores; sanitizer runs are memory-hungry.
CRIT_FLAGS ?= --jobs 2
run-tests: $(TEST_BINS)
	@set -e; for t in $(TEST_BINS); do \
	  echo "== $$t"; \
	  $$t $(CRIT_FLAGS); \
	done

test: $(DEPS_STAMP)
	$(MAKE) VARIANT=rel all tests-build
	$(MAKE) VARIANT=asan tests-build
	$(MAKE) VARIANT=tsan tests-build
	@echo "== plain build"
	$(MAKE) --no-print-directory VARIANT=rel run-tests
	@echo "== AddressSanitizer + UBSan build"
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) --no-print-directory VARIANT=asan run-tests
	@echo "== ThreadSanitizer build"
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1 \
	  $(MAKE) --no-print-directory VARIANT=tsan run-tests
	@echo "== harness and plot tests"
	bash tests/harness_test.sh build/alloclab
	bash tests/plots_test.sh
	bash tests/stats_test.sh build/alloclab
	bash tests/latency_overhead_test.sh build/alloclab
	bash tests/build_test.sh
	@echo "== drop-ins under LD_PRELOAD, and the suite under jemalloc"
	$(MAKE) --no-print-directory dropin-test
	bash tests/preload_test.sh build/tests/conformance build/tests/unit_refalloc
	@echo "make test: all passed"

# ---- benchmarks and charts ----
STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
# The default matrix (every backend x every workload's sweep x threads 1,2,4,8; 5 repetitions
# plus a warm-up per case) runs at half the workloads' default sizes, and every repetition
# lasts at least 0.2 s (--bench's --min_time: a shorter workload runs again on its heap), so
# each case takes 0.2..2 s and the whole fits in 10 minutes on a 2-core machine; QUICK=1 runs
# a tenth, 3 repetitions of at least 10 ms, within 2 minutes.
BENCH_SCALE ?= 0.5
BENCH_FLAGS ?=
ifeq ($(QUICK),1)
BENCH_FLAGS += --quick
else
BENCH_FLAGS += --scale=$(BENCH_SCALE)
endif

bench: all
	@mkdir -p results
	./build/alloclab --bench $(BENCH_FLAGS) --benchmark_out=results/$(STAMP).json --benchmark_out_format=json
	ln -sfn $(STAMP).json results/latest.json
	@echo "results: results/$(STAMP).json (results/latest.json)"
	$(MAKE) --no-print-directory plots RESULTS=results/$(STAMP).json

RESULTS ?= results/latest.json
plots: $(DEPS_STAMP)
	bash plots/plot.sh $(RESULTS) plots/out

# A/B: make compare A=results/x.json B=results/y.json
compare:
	@bash scripts/compare.sh $(A) $(B)

# Shards: make merge OUT=results/all.json SHARDS="results/s1.json results/s2.json"
merge:
	@bash scripts/merge.sh $(OUT) $(SHARDS)

clean:
	rm -rf build plots/out

.PHONY: all deps test tests-build run-tests bench plots compare merge clean FORCE
.SECONDARY:
