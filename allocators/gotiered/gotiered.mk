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

# All of gotiered's code in one section, gt_text: collect's signal flush asks whether the pc a
# thread was interrupted at is inside gotiered (mcache.c, "Remote flush"), and the linker
# defines __start_gt_text / __stop_gt_text around it. Every code section of gotiered's objects
# is renamed after compiling (gcc has no option for it; the cold parts of functions go to
# .text.unlikely). The unity-build tests that compile gotiered's sources into themselves get
# the same treatment. The drop-in's -fPIC objects: preload/preload.mk.
GT_TEXT_RENAME := $(foreach s,.text .text.unlikely .text.hot .text.startup .text.exit,\
                    --rename-section $(s)=gt_text)
GT_UNITY_TESTS := unit_gotiered_debug unit_gotiered_filing

# Recipe: compile $< with the flags $(1), then rename the code sections into $@.
define GT_CC_RENAMED
	@mkdir -p $(dir $@)
	$(CC) $(1) -MMD -MP -MT $@ -MF $(@:.o=.d) -c $< -o $@.tmp
	objcopy $(GT_TEXT_RENAME) $@.tmp $@ && rm -f $@.tmp
endef

$(B)/obj/allocators/gotiered/%.o: allocators/gotiered/%.c $(GEN_HEADERS) | $(DEPS_STAMP)
	$(call GT_CC_RENAMED,$(CPPFLAGS) $(CFLAGS))

$(patsubst %,$(B)/obj/tests/%.o,$(GT_UNITY_TESTS)): $(B)/obj/tests/%.o: tests/%.c $(GEN_HEADERS) | $(DEPS_STAMP)
	$(call GT_CC_RENAMED,$(CPPFLAGS) $(CFLAGS))
