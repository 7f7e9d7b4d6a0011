/* sizeclasses.c - gotiered's size classes: Go's 68 classes, produced at build time by
 * gen_sizeclasses.c (which reproduces Go's mksizeclasses.go and checks that divMul is exact)
 * into $(B)/gen/gotiered_sizeclasses.h. This file is the one place the tables are defined. */
#include "gotiered_internal.h"
#include "gotiered_sizeclasses.h"

_Static_assert(GT_GEN_NCLASS == GT_NCLASS, "generator and backend disagree on class count");
_Static_assert(GT_GEN_N8 == 129 && GT_GEN_N128 == 249, "lookup table sizes");

/* Objects per span of class c (1..67), 0 otherwise. Can't fail. */
unsigned gt_class_nelems(unsigned c)
{
    return c && c < GT_NCLASS ? (unsigned)(gt_class_npages[c] * GT_PAGE / gt_class_size[c]) : 0;
}
