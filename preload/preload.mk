# preload/preload.mk - drop-in malloc builds, the trace recorder and real-program runs.
# Included by the Makefile (`-include preload/preload.mk`). Everything here is built in the
# plain build dir (build/), never under a sanitizer: an LD_PRELOAD library must not drag a
# sanitizer runtime into the programs it is preloaded into.
#   make preload        build/liballoclab-<backend>.so for each DROPIN_BACKENDS present,
#                       build/liballoclab-trace.so, build/tools/tracedump
#   make run-programs   scripts/run_programs.sh: real programs under every allocator
#   make dropin-test    tests/dropin_test.sh build

PRE := build
PRE_CFLAGS := -std=c11 -O2 -g $(WARN) -pthread -fPIC -fvisibility=hidden
PRE_CPPFLAGS := -D_GNU_SOURCE -Iallocators -Iworkloads -Iharness -I$(PRE)/gen

$(PRE)/liballoclab-trace.so: preload/trace.c workloads/trace_format.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(PRE_CPPFLAGS) $(PRE_CFLAGS) -shared -o $@ preload/trace.c

$(PRE)/tools/tracedump: tools/tracedump.c workloads/trace_format.h | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 -O2 -g $(WARN) -o $@ tools/tracedump.c

# The round-trip test spawns a program under the recorder: build it first (order-only, so it
# is not linked into the test).
$(B)/tests/unit_replay: | $(PRE)/liballoclab-trace.so

.PHONY: preload run-programs dropin-test
