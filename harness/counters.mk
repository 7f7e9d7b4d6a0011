# harness/counters.mk - PAPI, PAPI SDE and callgrind cache simulation (harness/counters.c).
# Included by the Makefile (-include harness/*.mk).
#
# counters.c goes into liballoclab.a (the unit tests use it), not into the program's own list.
HARNESS_C := $(filter-out harness/counters.c,$(HARNESS_C))
LIB_OBJS += $(call obj,harness/counters.c)
LDLIBS += -lpapi -lsde
# Bind every symbol at start-up: otherwise the first call of memcpy & co. inside the measured
# region runs the dynamic linker's lazy lookup there (seen under callgrind: do_lookup_x), whose
# cost depends on the environment, the libraries loaded and the preloads.
LDFLAGS += -Wl,-z,now

# make bench-cachesim [QUICK=1]: every case once under callgrind's cache simulator; the
# instruction and miss counts per operation are deterministic (no repetitions needed).
bench-cachesim: all
	@mkdir -p results
	./build/alloclab --bench --cachesim $(BENCH_FLAGS) --benchmark_out=results/$(STAMP)-cachesim.json --benchmark_out_format=json
	ln -sfn $(STAMP)-cachesim.json results/latest-cachesim.json
	@echo "results: results/$(STAMP)-cachesim.json (results/latest-cachesim.json)"

.PHONY: bench-cachesim
