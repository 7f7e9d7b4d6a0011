/* unit_gotiered_pcache.c - gotiered's per-thread page cache (Go's pageCache) and span caches
 * (Go's mspancache): a 64-page word taken at once, spans carved from it without the heap lock,
 * refills, flushes on collect / thread exit / detach giving every page back, the accounting
 * (cached pages are idle, not in use), check() catching a lost page, and a multi-threaded
 * stress with cross-thread frees and concurrent collects (run under TSan by `make test`). */
#include "gotiered/gotiered_internal.h"

#include <criterion/criterion.h>
#include "gt_test.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pages_inuse under the heap lock */
static uint64_t pages_inuse(gt_heap *h)
{
    pthread_mutex_lock(&h->lock);
    uint64_t n = h->pages_inuse;
    pthread_mutex_unlock(&h->lock);
    return n;
}

/* The page-allocator side: take_word takes every free page of the first word holding a run of
 * n, skips a word with only a shorter fragment, and put_word gives them back with their
 * released (scav) bits as they were. */
Test(gotiered_pcache, take_word_and_put_word)
{
    gt_arena *a = fake_arena();
    size_t hdr = GT_HDR_PAGES; /* word 0 holds the header and 64 - hdr free pages */
    gt_pcache pc = {0};
    unsigned n = gt_pages_take_word(a, &pc, 1);
    cr_assert_eq(n, 64 - hdr);
    cr_expect_eq(pc.arena, a);
    cr_expect_eq(pc.word, 0u);
    cr_expect_eq(pc.cache, ~UINT64_C(0) << hdr);
    cr_expect_eq(pc.scav, pc.cache, "fresh pages come released");
    cr_expect_eq(a->free_pages, GT_ARENA_PAGES - 64);
    cr_expect_eq(a->search, 64u);
    pages_ok(a);
    /* keep 7 pages of it cached (a fragment), give the rest back: not released any more */
    uint64_t frag = UINT64_C(0x7f) << hdr;
    gt_pages_put_word(a, 0, pc.cache & ~frag, 0);
    pages_ok(a);
    cr_expect_eq(a->search, (uint32_t)hdr + 7);
    cr_expect_eq(a->scav[0] & (pc.cache & ~frag), 0u, "put back as not released");
    /* now word 0 has 64 - hdr - 7 free pages in one run: a run of 8 is found there */
    gt_pcache pc2 = {0};
    cr_assert_gt(gt_pages_take_word(a, &pc2, 8), 0u);
    cr_expect_eq(pc2.word, 0u);
    cr_expect_eq(pc2.scav, 0u);
    /* word 0 is now full (frag is "in use" by the first cache); the next comes from word 1 */
    gt_pcache pc3 = {0};
    cr_assert_eq(gt_pages_take_word(a, &pc3, 8), 64u);
    cr_expect_eq(pc3.word, 1u);
    pages_ok(a);
    /* the fragment back: 7 free pages in word 0, which a run of 8 skips, a run of 7 takes */
    gt_pages_put_word(a, 0, frag, pc.scav);
    cr_expect_eq(a->scav[0] & frag, frag, "released pages stay released");
    gt_pages_put_word(a, 1, pc3.cache, pc3.scav);
    gt_pages_put_word(a, 0, pc2.cache, pc2.scav);
    pages_ok(a);
    gt_pages_take(a, 64, 64); /* word 1 in use; word 0 has pages hdr .. 63 free again */
    gt_pages_take(a, hdr + 7, 64 - hdr - 7); /* ... now only the 7-page fragment */
    gt_pcache pc4 = {0};
    cr_assert_eq(gt_pages_take_word(a, &pc4, 8), 64u, "a fragment of 7 is skipped for 8");
    cr_expect_eq(pc4.word, 2u);
    gt_pcache pc5 = {0};
    cr_assert_eq(gt_pages_take_word(a, &pc5, 7), 7u);
    cr_expect_eq(pc5.word, 0u);
    cr_expect_eq(pc5.cache, frag);
    pages_ok(a);
    free(a);
}

/* One thread's heap: a span comes from the page cache, the cached pages count as idle, and
 * after many refills, free-all and collect every page is back (pages_inuse 0, check passes). */
Test(gotiered_pcache, refill_and_flush_return_every_page)
{
    gt_heap *h = mk("scavenger=off");
    void *p = B->alloc(h, 5000); /* class 5376: 2 pages per span */
    cr_assert(p);
    unsigned np = gt_class_npages[gt_size_class(5000)];
    cr_assert_eq(np, 2u);
    gt_mcache *mc = gt_tls.mc;
    cr_assert(mc && mc->heap == h);
    cr_expect_not_null(mc->pc.arena, "the span's pages came through the page cache");
    uint64_t cached = gt_popcount(mc->pc.cache);
    cr_expect_eq(cached, 64 - GT_HDR_PAGES - np);
    cr_expect_eq(pages_inuse(h), cached + np, "cached pages are taken from the page allocator");
    al_stats st;
    B->stats(h, &st);
    cr_expect_eq(st.heap_inuse, np * GT_PAGE, "cached pages are idle in the stats");
    cr_expect_eq(st.heap_sys, st.heap_idle + st.heap_inuse);
    must_check(h);
    B->free(h, p, 5000);

    /* many spans of several sizes: small spans of 1 and 2 pages, large objects of 5 and 15
     * pages through the page cache, 20 pages through the locked path */
    enum { N = 6000 };
    static void *v[N];
    static const size_t sizes[] = {64, 1024, 4096, 8192, 40000, 120000, 160000};
    for (int i = 0; i < N; i++) {
        size_t sz = sizes[i % 7];
        v[i] = B->alloc(h, sz);
        cr_assert(v[i]);
        memset(v[i], i & 0xff, sz < 256 ? sz : 256);
        if (i % 1000 == 999) must_check(h);
    }
    cr_expect_gt(atomic_load(&h->spans_grown), 500u);
    must_check(h);
    for (int i = 0; i < N; i++) {
        size_t sz = sizes[i % 7];
        cr_assert_eq(((unsigned char *)v[i])[0], (unsigned char)(i & 0xff));
        B->free(h, v[i], sz);
    }
    must_check(h);
    B->collect(h);
    must_check(h);
    cr_expect_null(mc->pc.arena, "collect flushed the page cache");
    cr_expect_null(mc->sfree, "and the span-struct cache");
    cr_expect_eq(pages_inuse(h), 0u, "every page back in the page allocator");
    B->stats(h, &st);
    cr_expect_eq(st.heap_inuse, 0u);
    cr_expect_eq(h->span_fix.inuse, 0u, "every span struct back in span_fix");
    cr_expect_eq(h->bits_fix.f.inuse, 0u, "every bitmap block back in bits_fix");
    B->destroy(h);
}

/* check() catches a page lost from a page cache (in use, in no span, in no cache) and a page
 * that is both cached and in a span. */
Test(gotiered_pcache, check_catches_lost_and_doubly_owned_pages)
{
    gt_heap *h = mk("scavenger=off");
    void *p = B->alloc(h, 4096);
    gt_mcache *mc = gt_tls.mc;
    must_check(h);
    uint64_t c = mc->pc.cache;
    cr_assert_neq(c, 0u);
    uint64_t low = c & (~c + 1); /* lowest cached page */
    mc->pc.cache = c & ~low;     /* lost: still marked in use in the page bitmap */
    char msg[256] = "";
    cr_expect_eq(B->check(h, msg, sizeof msg), -1);
    cr_expect(strstr(msg, "in no span"), "%s", msg);
    mc->pc.cache = c;
    must_check(h);
    gt_span *s = gt_span_of(p); /* its pages are below the cached ones in the same word */
    size_t pg = (s->base - (uintptr_t)s->arena) >> GT_PAGE_SHIFT;
    cr_assert_eq(mc->pc.word, pg / 64);
    mc->pc.cache = c | (UINT64_C(1) << (pg & 63));
    cr_expect_eq(B->check(h, msg, sizeof msg), -1);
    cr_expect(strstr(msg, "page cache"), "%s", msg);
    mc->pc.cache = c;
    must_check(h);
    B->free(h, p, 4096);
    B->destroy(h);
}

static void *fill_and_exit(void *arg)
{
    gt_heap *h = arg;
    enum { N = 300 };
    void *v[N];
    for (int i = 0; i < N; i++) v[i] = B->alloc(h, i % 2 ? 4096 : 50000);
    for (int i = 0; i < N; i++) B->free(h, v[i], 0);
    void *keep = B->alloc(h, 4096); /* the cache keeps a page cache with pages left */
    cr_assert(gt_tls.mc->pc.arena && gt_tls.mc->pc.cache);
    return keep;
}

static void *detach_after_fill(void *arg)
{
    gt_heap *h = arg;
    void *keep = fill_and_exit(h);
    B->free(h, keep, 4096);
    B->thread_detach(h);
    B->collect(h); /* sweeps the spans the detach left in mcentral; no cache to flush here */
    cr_expect_eq(pages_inuse(h), 0u, "detach gave the page cache back (nothing else is live)");
    return NULL;
}

/* A thread's page cache and span caches go back at thread exit and on thread_detach. */
Test(gotiered_pcache, flush_at_thread_exit_and_detach)
{
    gt_heap *h = mk("scavenger=off");
    pthread_t t;
    void *keep;
    pthread_create(&t, NULL, fill_and_exit, h);
    pthread_join(t, &keep);
    must_check(h);
    cr_expect_null(h->caches, "the thread's cache was released");
    B->collect(h); /* sweeps the spans the exit left in mcentral (this thread has no cache) */
    must_check(h);
    /* only keep's span is in use: the exited thread's cached pages went back */
    cr_expect_eq(pages_inuse(h), gt_class_npages[gt_size_class(4096)],
                 "pages in use after the thread exit: %llu", (unsigned long long)pages_inuse(h));
    B->free(h, keep, 4096); /* this thread's cache now holds keep in a reuse list */
    B->collect(h);
    cr_expect_eq(pages_inuse(h), 0u);
    must_check(h);
    pthread_create(&t, NULL, detach_after_fill, h);
    pthread_join(t, NULL);
    must_check(h);
    B->destroy(h);
}

/* ---- multi-threaded stress: 4 threads, sizes that use the page cache (small spans, large
 * objects < 16 pages), the large-span cache and the locked path, blocks freed by another
 * thread, and collects from one thread while the others allocate (their caches, page caches
 * included, flush at their next call). ---- */

#define NT 4
#define SLOTS 256
typedef struct stress {
    gt_heap *h;
    _Atomic(void *) slot[NT][SLOTS]; /* slot[i]: blocks made by thread i, freed by anyone; a
                                      * block holds its length in its first 4 bytes, its tag
                                      * in byte 4 and its last byte */
    _Atomic int collects;
} stress;
static stress S;

typedef struct targ {
    int id, n;
} targ;

static size_t stress_size(unsigned r)
{
    switch (r % 8) {
    case 0: return 8 + (r >> 4) % 8;           /* tiny (>= 8: room for length and tag) */
    case 1: case 2: return 16 + (r >> 4) % 1000;
    case 3: return 2048 + (r >> 4) % 6000;    /* 1..4-page spans */
    case 4: return 20000 + (r >> 4) % 12000;  /* 32 KiB class / 4-page spans */
    case 5: return 33000 + (r >> 4) % 90000;  /* large, 5..15 pages: page cache */
    case 6: return 130000 + (r >> 4) % 30000; /* large, 16..20 pages */
    default: return 4096;
    }
}

static void *stress_thread(void *arg)
{
    targ *t = arg;
    unsigned r = 12345u + 7919u * (unsigned)t->id;
    for (int i = 0; i < t->n; i++) {
        r = r * 1103515245u + 12345u;
        int owner = (int)((r >> 16) % NT), k = (int)((r >> 8) % SLOTS);
        unsigned char *old = atomic_exchange(&S.slot[owner][k], NULL);
        if (old) {
            uint32_t len;
            memcpy(&len, old, sizeof len);
            unsigned char tag = (unsigned char)(owner * 64 + k);
            cr_assert(len >= 8 && len < (1u << 20), "corrupted block (length %u)", len);
            cr_assert_eq(old[4], tag, "corrupted block");
            cr_assert_eq(old[len - 1], tag, "corrupted block");
            B->free(S.h, old, (i & 1) ? len : 0);
        }
        if (owner == t->id) {
            uint32_t sz = (uint32_t)stress_size(r >> 3);
            unsigned char *p = B->alloc(S.h, sz);
            cr_assert(p);
            memcpy(p, &sz, sizeof sz);
            p[4] = p[sz - 1] = (unsigned char)(t->id * 64 + k);
            void *exp = NULL; /* only this thread fills its row: the slot is still empty */
            cr_assert(atomic_compare_exchange_strong(&S.slot[t->id][k], &exp, p));
        }
        if (t->id == 0 && i % 2000 == 1999) {
            B->collect(S.h);
            atomic_fetch_add(&S.collects, 1);
        }
    }
    return NULL;
}

Test(gotiered_pcache, threads_stress_with_collects, .timeout = 120)
{
    for (int round = 0; round < 2; round++) {
        memset(&S, 0, sizeof S);
        S.h = mk(round ? "free=sweep,scavenger=off" : "scavenger=on");
        pthread_t th[NT];
        targ ta[NT];
        for (int i = 0; i < NT; i++) {
            ta[i] = (targ){i, 40000 / SCALE};
            pthread_create(&th[i], NULL, stress_thread, &ta[i]);
        }
        for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
        cr_expect_gt(atomic_load(&S.collects), 0);
        must_check(S.h);
        for (int i = 0; i < NT; i++)
            for (int k = 0; k < SLOTS; k++) {
                void *p = atomic_load(&S.slot[i][k]);
                if (p) B->free(S.h, p, 0);
            }
        B->collect(S.h);
        must_check(S.h);
        cr_expect_eq(pages_inuse(S.h), 0u, "round %d: pages still in use after free-all + collect",
                     round);
        al_stats st;
        B->stats(S.h, &st);
        cr_expect_eq(st.heap_objects, 0u);
        cr_expect_eq(st.heap_inuse, 0u);
        B->destroy(S.h);
    }
}
