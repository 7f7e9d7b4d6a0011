# gotiered.mk - build-time size-class table for the gotiered backend (included by the Makefile).
# gen_sizeclasses.c reproduces Go's mksizeclasses.go and checks itself (68 classes, exact
# divMul); its output is $(B)/gen/gotiered_sizeclasses.h, never committed.
GT_GEN_HDR := $(B)/gen/gotiered_sizeclasses.h
GEN_HEADERS += $(GT_GEN_HDR)

$(B)/gen/gen_sizeclasses: allocators/gotiered/gen_sizeclasses.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -o $@ $<

$(GT_GEN_HDR): $(B)/gen/gen_sizeclasses
	$< > $@.tmp && mv $@.tmp $@
