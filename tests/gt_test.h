/* gt_test.h - fixtures shared by the gotiered unit tests (unit_gotiered_heap.c,
 * unit_gotiered_pcache.c): the backend, a work scale for the sanitizer builds, heap creation
 * and check() that fail the test with the backend's message, and for the page allocator an
 * arena header on the C heap with its bitmap and summaries set up. Include after criterion.h
 * and gotiered_internal.h. */
#ifndef ALLOCLAB_GT_TEST_H
#define ALLOCLAB_GT_TEST_H

#include <stdlib.h>

extern const al_backend al_backend_gotiered;
static const al_backend *const B = &al_backend_gotiered;

/* Loop counts are divided by SCALE under the sanitizers (they run 2-15x slower). */
#ifdef __SANITIZE_THREAD__
#define SCALE 4
#elif defined(__SANITIZE_ADDRESS__)
#define SCALE 2
#else
#define SCALE 1
#endif

/* A gotiered heap made with options opts; fails the test with create()'s message. */
static inline void *mk(const char *opts)
{
    char err[256] = "";
    void *h = B->create(opts, err, sizeof err);
    cr_assert(h, "create(%s): %s", opts ? opts : "NULL", err);
    return h;
}

/* check() passes, else the test fails with its message. */
static inline void must_check(void *h)
{
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), 0, "check: %s", msg);
}

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
