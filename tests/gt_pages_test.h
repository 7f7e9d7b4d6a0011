/* gt_pages_test.h - the page-allocator fixtures shared by the gotiered unit tests
 * (unit_gotiered_heap.c, unit_gotiered_pcache.c): an arena header on the C heap with its
 * bitmap and summaries set up, and a check that fails the test with gt_pages_check's message.
 * Include after criterion.h and gotiered_internal.h. */
#ifndef ALLOCLAB_GT_PAGES_TEST_H
#define ALLOCLAB_GT_PAGES_TEST_H

#include <stdlib.h>

/* A fresh arena header (no mapping behind it): every page after the header free. The test
 * frees it. Fails the test when out of memory. */
static inline gt_arena *fake_arena(void)
{
    gt_arena *a = calloc(1, sizeof *a);
    cr_assert(a);
    a->first_page = (uint32_t)GT_HDR_PAGES;
    gt_pages_init(a);
    return a;
}

/* The arena's bitmap and summaries agree, else the test fails naming what is wrong. */
static inline void pages_ok(gt_arena *a)
{
    char msg[256] = "";
    cr_assert_eq(gt_pages_check(a, msg, sizeof msg), 0, "%s", msg);
}

#endif
