# preload/preload.mk - drop-in malloc builds, the trace recorder and real-program runs.
# Included by the Makefile (`-include preload/preload.mk`). Everything here is built in the
# plain build dir (build/), never under a sanitizer: an LD_PRELOAD library must not drag a
# sanitizer runtime into the programs it is preloaded into.
#   make preload        build/liballoclab-<backend>.so for each DROPIN_BACKENDS present,
#                       build/liballoclab-trace.so, build/tools/tracedump
#   make run-programs   scripts/run_programs.sh: real programs under every allocator
#   make dropin-test    tests/dropin_test.sh build

PRE := build
PRE_CFLAGS := -std=c11 -O2 -g $(WARN) -pthread -fPIC -fvisibility=hidden $(EXTRA_CFLAGS)
PRE_CPPFLAGS := -D_GNU_SOURCE -Iallocators -Iworkloads -Iharness -I$(PRE)/gen

$(PRE)/liballoclab-trace.so: preload/trace.c workloads/trace_format.h $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(PRE_CPPFLAGS) $(PRE_CFLAGS) -shared -Wl,-z,defs -o $@ preload/trace.c

$(PRE)/tools/tracedump: tools/tracedump.c workloads/trace_format.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O2 -g $(WARN) -o $@ tools/tracedump.c

# The round-trip test spawns a program under the recorder: build it first (order-only, so it
# is not linked into the test).
$(B)/tests/unit_replay: | $(PRE)/liballoclab-trace.so

.PHONY: preload run-programs dropin-test

# ---- drop-in builds: preload/dropin.c + the backends, compiled again with -fPIC ----
# A drop-in is built for each wanted backend registered in allocators/registry.c: gotiered and
# syncpool (the project's own), bump (the lower bound, and the tests' subject when the others are
# absent) and tcmalloc through the shim (its create() dlopens a library, which exercises the
# shim's start-up re-entrancy; its figures next to the native tcmalloc preload show the cost of
# the shim plus the vtable). Add more with DROPIN_WANT="...".
DROPIN_WANT ?= gotiered syncpool bump tcmalloc
DROPIN_BACKENDS := $(foreach n,$(DROPIN_WANT),$(if $(shell grep -q 'AL_BACKEND($(n))' \
                     allocators/registry.c && echo y),$(n)))
DROPIN_LIBS := $(patsubst %,$(PRE)/liballoclab-%.so,$(DROPIN_BACKENDS))
PIC_SRCS := $(ALLOC_SRCS) harness/clock.c
PIC_OBJS := $(patsubst %.c,$(PRE)/pic/%.o,$(PIC_SRCS)) $(PRE)/pic/preload/glibc_direct.o

# Inside a drop-in the `libc` backend must reach glibc's allocator, not the drop-in itself.
$(PRE)/pic/allocators/libc.o: PIC_EXTRA := -include preload/glibc_direct.h
$(PRE)/pic/allocators/libc.o: preload/glibc_direct.h

# initial-exec TLS: a drop-in is only ever loaded at start-up (LD_PRELOAD), never dlopen'ed.
$(PRE)/pic/%.o: %.c $(GEN_HEADERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(PRE_CPPFLAGS) $(PRE_CFLAGS) -ftls-model=initial-exec $(PIC_EXTRA) -MMD -MP -c $< -o $@

# gotiered's code in its own section, as in the main build (allocators/gotiered/gotiered.mk).
$(PRE)/pic/allocators/gotiered/%.o: allocators/gotiered/%.c $(GEN_HEADERS) | $(DEPS_STAMP)
	$(call GT_CC_RENAMED,$(PRE_CPPFLAGS) $(PRE_CFLAGS) -ftls-model=initial-exec)

$(PRE)/pic/preload/dropin-%.o: preload/dropin.c allocators/allocator.h $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(PRE_CPPFLAGS) $(PRE_CFLAGS) -ftls-model=initial-exec -DAL_DROPIN_BACKEND=$* \
	  -c $< -o $@

$(PRE)/liballoclab-%.so: $(PRE)/pic/preload/dropin-%.o $(PIC_OBJS) preload/dropin.map
	$(CC) -shared -pthread -Wl,--version-script=preload/dropin.map -Wl,-z,now -Wl,-z,defs \
	  -o $@ $(filter %.o,$^) -ldl

-include $(wildcard $(PRE)/pic/*/*.d $(PRE)/pic/*/*/*.d)

preload: $(DROPIN_LIBS) $(PRE)/liballoclab-trace.so $(PRE)/tools/tracedump \
         $(PRE)/tests/dropin_check
	@echo "drop-ins: $(DROPIN_LIBS)"

# The drop-in and recorder tests (tests/dropin_test.sh), with the conformance suite under each.
dropin-test: preload
	$(MAKE) --no-print-directory VARIANT=rel build/tests/conformance
	bash tests/dropin_test.sh $(PRE)

$(PRE)/tests/dropin_check: tests/dropin_check.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=c11 -O1 -g $(WARN) -pthread -o $@ $< -ldl

$(PRE)/tools/runprog: tools/runprog.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -std=c11 -O2 -g $(WARN) -o $@ $<

# Real programs under every allocator: results/programs.json and a table (see the script).
run-programs: preload $(PRE)/tools/runprog
	bash scripts/run_programs.sh $(PRE)
