/* unit_gotiered_heap.c - gotiered's levels under test: page allocator (first fit, merge of freed
 * neighbours), tiny blocks and their live counts, sweep, cross-thread frees, the scavenger and
 * collect giving RSS back, options, heap generations, check(). */
#include "gotiered/gotiered_internal.h"
#include "wait_child.h"

#include <criterion/criterion.h>
#include "gt_test.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static size_t rss_bytes(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert(f);
    cr_assert_eq(fscanf(f, "%ld %ld", &pages, &res), 2);
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t vm_size_kb(void)
{
    char line[256];
    size_t kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* ---- page allocator ---- */

Test(gotiered_pages, first_fit_and_merge_of_freed_neighbours)
{
    gt_arena *a = fake_arena();
    size_t h = GT_HDR_PAGES;
    cr_assert_eq(a->maxrun, GT_ARENA_PAGES - h);
    long A = gt_pages_find(a, 10);
    cr_assert_eq(A, (long)h);
    gt_pages_take(a, (size_t)A, 10);
    long Bp = gt_pages_find(a, 20);
    cr_assert_eq(Bp, A + 10);
    gt_pages_take(a, (size_t)Bp, 20);
    long C = gt_pages_find(a, 30);
    cr_assert_eq(C, Bp + 20);
    gt_pages_take(a, (size_t)C, 30);
    pages_ok(a);
    /* free B: a 20-page hole; 20 fits there (first fit), 25 does not */
    gt_pages_put(a, (size_t)Bp, 20);
    pages_ok(a);
    cr_expect_eq(gt_pages_find(a, 20), Bp);
    cr_expect_eq(gt_pages_find(a, 25), C + 30);
    /* free A: merges with B's hole into 30 pages at A */
    gt_pages_put(a, (size_t)A, 10);
    pages_ok(a);
    cr_expect_eq(gt_pages_find(a, 30), A);
    cr_expect_eq(gt_pages_find(a, 31), C + 30);
    /* free C too: the whole arena is one run again */
    gt_pages_put(a, (size_t)C, 30);
    pages_ok(a);
    cr_expect_eq(a->maxrun, GT_ARENA_PAGES - h);
    cr_expect_eq(a->free_pages, GT_ARENA_PAGES - h);
    free(a);
}

Test(gotiered_pages, runs_across_chunks_and_exhaustion)
{
    gt_arena *a = fake_arena();
    size_t h = GT_HDR_PAGES;
    /* fill up to just before a chunk border, then ask for a run spanning 3 chunks */
    gt_pages_take(a, h, GT_CHUNK_PAGES - h - 5);
    long r = gt_pages_find(a, 1100);
    cr_assert_eq(r, (long)GT_CHUNK_PAGES - 5);
    gt_pages_take(a, (size_t)r, 1100);
    pages_ok(a);
    /* a hole of 3 pages inside a chunk: small requests take it first */
    gt_pages_put(a, h + 100, 3);
    cr_expect_eq(gt_pages_find(a, 3), (long)h + 100);
    cr_expect_eq(gt_pages_find(a, 4), r + 1100);
    /* the rest of the arena, exactly, then nothing */
    size_t rest = GT_ARENA_PAGES - (size_t)(r + 1100);
    cr_expect_eq(gt_pages_find(a, rest), r + 1100);
    cr_expect_eq(gt_pages_find(a, rest + 1), -1);
    gt_pages_take(a, (size_t)(r + 1100), rest);
    gt_pages_take(a, h + 100, 3);
    cr_expect_eq(gt_pages_find(a, 1), -1);
    cr_expect_eq(a->free_pages, 0u);
    pages_ok(a);
    free(a);
}

Test(gotiered_pages, random_take_put_matches_reference)
{
    gt_arena *a = fake_arena();
    static unsigned char ref[GT_ARENA_PAGES];
    memset(ref, 0, sizeof ref);
    memset(ref, 1, GT_HDR_PAGES);
    long runs[64][2];
    int nr = 0;
    unsigned s = 12345;
    for (int it = 0; it < 3000; it++) {
        s = s * 1103515245u + 12345u;
        if (nr < 64 && (s >> 16) % 3) {
            size_t n = 1 + (s >> 8) % ((s & 1) ? 8 : 700);
            long i = gt_pages_find(a, n);
            /* reference first fit */
            long want = -1;
            for (size_t k = 0, run = 0; k < GT_ARENA_PAGES; k++) {
                run = ref[k] ? 0 : run + 1;
                if (run == n) { want = (long)(k + 1 - n); break; }
            }
            cr_assert_eq(i, want, "iteration %d: find(%zu)", it, n);
            if (i < 0) continue;
            gt_pages_take(a, (size_t)i, n);
            memset(ref + i, 1, n);
            runs[nr][0] = i;
            runs[nr++][1] = (long)n;
        } else if (nr) {
            int k = (int)((s >> 4) % (unsigned)nr);
            gt_pages_put(a, (size_t)runs[k][0], (size_t)runs[k][1]);
            memset(ref + runs[k][0], 0, (size_t)runs[k][1]);
            runs[k][0] = runs[nr - 1][0];
            runs[k][1] = runs[--nr][1];
        }
        if (it % 100 == 0) pages_ok(a);
    }
    pages_ok(a);
    free(a);
}

/* ---- tiny ---- */

Test(gotiered_tiny, sub_objects_share_blocks_with_live_counts)
{
    void *h = mk("tiny=on,scavenger=off");
    char *a = B->alloc(h, 8), *b = B->alloc(h, 8);
    cr_assert_eq(b, a + 8, "two 8-byte objects share a 16-byte block");
    cr_assert_eq((uintptr_t)a % 16, 0);
    gt_span *s = gt_span_of(a);
    cr_assert_eq(s->spc, GT_TINY_SPC);
    gt_tinyblk *r = &s->tiny[((uintptr_t)a - s->base) >> 4];
    char *c = B->alloc(h, 8); /* block full: a new one becomes current */
    cr_assert_neq((uintptr_t)c & ~(uintptr_t)15, (uintptr_t)a);
    cr_expect_eq(atomic_load(&r->cnt), 2, "unpinned block: count == live sub-objects");
    cr_expect_eq(B->usable_size(h, a), 8u);
    B->free(h, a, 8);
    cr_expect_eq(atomic_load(&r->cnt), 1);
    must_check(h);
    B->free(h, b, 0);
    cr_expect_eq(atomic_load(&r->cnt), 0, "block returned when its count reaches 0");
    /* packing and alignment: largest power of two <= size */
    for (size_t sz = 1; sz < 16; sz++) {
        for (int k = 0; k < 40; k++) {
            char *p = B->alloc(h, sz);
            size_t al = sz >= 8 ? 8 : sz >= 4 ? 4 : sz >= 2 ? 2 : 1;
            cr_assert_eq((uintptr_t)p % al, 0, "size %zu at %p", sz, (void *)p);
            cr_assert_geq(B->usable_size(h, p), sz);
            cr_assert_lt(((uintptr_t)p & 15) + B->usable_size(h, p), 17u);
            memset(p, (int)sz, sz);
            B->free(h, p, sz);
        }
    }
    B->free(h, c, 8);
    must_check(h);
    al_stats st;
    B->stats(h, &st);
    cr_expect_eq(st.mallocs, st.frees);
    B->destroy(h);
}

Test(gotiered_tiny, one_byte_objects_pack_sixteen_per_block)
{
    void *h = mk("scavenger=off");
    char *p[64];
    for (int i = 0; i < 64; i++) p[i] = B->alloc(h, 1);
    int same = 0;
    for (int i = 1; i < 64; i++) same += p[i] == p[i - 1] + 1;
    cr_expect_geq(same, 60, "consecutive 1-byte objects are packed (%d)", same);
    for (int i = 0; i < 64; i++) B->free(h, p[i], 1);
    must_check(h);
    B->destroy(h);
}

Test(gotiered_tiny, off_uses_size_classes)
{
    void *h = mk("tiny=off,scavenger=off");
    char *a = B->alloc(h, 8), *b = B->alloc(h, 8);
    cr_expect_eq(gt_span_of(a)->spc, 1u);
    cr_expect_eq(B->usable_size(h, a), 8u);
    B->free(h, a, 8);
    B->free(h, b, 8);
    must_check(h);
    B->destroy(h);
}

/* ---- sweep ---- */

typedef struct batch {
    void *h;
    void **v;
    size_t n;
} batch;

static void *free_batch_thread(void *arg)
{
    batch *b = arg;
    for (size_t i = 0; i < b->n; i++) B->free(b->h, b->v[i], 64);
    return NULL;
}

Test(gotiered_sweep, remote_frees_sweep_and_return_spans)
{
    void *h = mk("free=sweep,scavenger=off");
    unsigned nel = gt_class_nelems(gt_size_class(64));
    size_t n = 3 * nel;
    void **v = calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = B->alloc(h, 64);
    gt_span *first = gt_span_of(v[0]);
    cr_assert_eq(atomic_load(&first->st), GT_ST(6, GT_SPAN_FULL), "exhausted span filed as full");
    must_check(h);
    pthread_t t;
    batch b = {h, v, n};
    pthread_create(&t, NULL, free_batch_thread, &b);
    pthread_join(t, NULL);
    cr_expect_eq(atomic_load(&first->st), GT_ST(6, GT_SPAN_UNSWEPT),
                 "a remote free moves a full span to unswept");
    cr_expect_neq(atomic_load(&first->freed[0]), 0u, "frees wait in the freed bitmap");
    must_check(h);
    al_stats st0, st1;
    B->stats(h, &st0);
    /* reuse happens after a sweep: the next allocations sweep and take those objects */
    void *p = B->alloc(h, 64);
    (void)p;
    B->collect(h);
    B->stats(h, &st1);
    cr_expect_gt(st1.sweeps, st0.sweeps);
    cr_expect_lt(st1.heap_inuse, st0.heap_inuse, "emptied spans went back to the mheap");
    cr_expect_eq(st1.heap_objects, 1u);
    must_check(h);
    B->free(h, p, 64);
    B->destroy(h);
    free(v);
}

Test(gotiered_sweep, own_span_sweeps_itself)
{
    void *h = mk("free=sweep,scavenger=off");
    /* alloc+free churn on one thread stays inside one span of the class */
    gt_span *s0 = NULL;
    for (int i = 0; i < 100000; i++) {
        void *p = B->alloc(h, 200);
        if (!s0) s0 = gt_span_of(p);
        cr_assert_eq(gt_span_of(p), s0, "iteration %d left the span", i);
        B->free(h, p, 200);
    }
    must_check(h);
    B->destroy(h);
}

/* ---- threads ---- */

#define NT 4
typedef struct ring {
    void *h;
    int id;
    int n;
    void **out[NT];   /* out[i]: blocks this thread made for thread i to free */
    size_t *len[NT];
} ring;
static ring rings[NT];
static pthread_barrier_t bar;

static void *ring_thread(void *arg)
{
    ring *r = arg;
    unsigned s = 77u + (unsigned)r->id;
    for (int i = 0; i < r->n; i++) {
        s = s * 1103515245u + 12345u;
        size_t sz = (s >> 8) % 64 == 0 ? 40000 + (s >> 12) % 100000 : (s >> 8) % 600;
        int to = (r->id + 1 + i) % NT;
        char *p = B->alloc(r->h, sz);
        cr_assert(p);
        memset(p, r->id + 1, sz);
        r->out[to][i] = p;
        r->len[to][i] = sz;
    }
    pthread_barrier_wait(&bar);
    for (int from = 0; from < NT; from++) {
        for (int i = 0; i < rings[from].n; i++) {
            char *p = rings[from].out[r->id][i];
            if (!p) continue;
            size_t sz = rings[from].len[r->id][i];
            for (size_t k = 0; k < sz; k += 7) cr_assert_eq(p[k], from + 1, "corrupted block");
            B->free(r->h, p, (i & 1) ? sz : 0);
        }
    }
    B->thread_detach(r->h);
    return NULL;
}

static void cross_thread(const char *opts)
{
    void *h = mk(opts);
    pthread_t t[NT];
    int n = 20000 / SCALE;
    pthread_barrier_init(&bar, NULL, NT);
    for (int i = 0; i < NT; i++) {
        rings[i].h = h;
        rings[i].id = i;
        rings[i].n = n;
        for (int j = 0; j < NT; j++) {
            rings[i].out[j] = calloc((size_t)n, sizeof(void *));
            rings[i].len[j] = calloc((size_t)n, sizeof(size_t));
        }
    }
    for (int i = 0; i < NT; i++) pthread_create(&t[i], NULL, ring_thread, &rings[i]);
    for (int i = 0; i < NT; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&bar);
    must_check(h);
    al_stats st;
    B->stats(h, &st);
    cr_expect_eq(st.mallocs, st.frees, "every block freed once");
    cr_expect_eq(st.heap_objects, 0u);
    B->collect(h);
    must_check(h);
    B->stats(h, &st);
    cr_expect_eq(st.heap_inuse, 0u, "after collect no span is in use (%llu)",
                 (unsigned long long)st.heap_inuse);
    for (int i = 0; i < NT; i++)
        for (int j = 0; j < NT; j++) {
            free(rings[i].out[j]);
            free(rings[i].len[j]);
        }
    B->destroy(h);
}

Test(gotiered_threads, cross_thread_frees_sweep) { cross_thread("free=sweep"); }
Test(gotiered_threads, cross_thread_frees_reuse) { cross_thread("free=reuse"); }

static void *exit_with_cache(void *h)
{
    for (int i = 0; i < 1000; i++) B->free(h, B->alloc(h, (size_t)i), 0);
    void *keep = B->alloc(h, 100);
    return keep; /* cache flushed by the thread-exit destructor */
}

Test(gotiered_threads, thread_exit_flushes_and_dead_heaps_are_ignored)
{
    for (int round = 0; round < 20; round++) {
        void *h = mk(round & 1 ? "free=reuse" : NULL);
        pthread_t t;
        void *keep;
        pthread_create(&t, NULL, exit_with_cache, h);
        pthread_join(t, &keep);
        must_check(h);
        al_stats st;
        B->stats(h, &st);
        cr_expect_eq(st.heap_objects, 1u);
        B->free(h, keep, 100);
        /* this thread used h too; after destroy its stale cache entry must never be used */
        B->free(h, B->alloc(h, 24), 24);
        B->destroy(h);
    }
}

/* collect() from another thread, the epoch path (remote_flush=off; the remote flush of a
 * sleeping owner's cache is unit_gotiered_collect.c's): thread A fills its cache (a span and a
 * reuse list of class 112 B, a span of class 3072 B) and parks; B collects; A's cache is
 * flushed at A's next call (a new cache epoch), after which a collect leaves only the one span
 * A allocates from. */
typedef struct collect_ctx {
    void *h;
    pthread_barrier_t bar;
    void *q;
} collect_ctx;

static void *collect_owner(void *arg)
{
    collect_ctx *c = arg;
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = B->alloc(c->h, 100);
    for (int i = 0; i < N; i++) B->free(c->h, p[i], 100);
    B->free(c->h, B->alloc(c->h, 3000), 3000); /* a second cached span, of another class */
    pthread_barrier_wait(&c->bar); /* 1: cache filled */
    pthread_barrier_wait(&c->bar); /* 2: B collected */
    c->q = B->alloc(c->h, 100);    /* next call: honours the collect first */
    pthread_barrier_wait(&c->bar); /* 3 */
    pthread_barrier_wait(&c->bar); /* 4: B checked */
    B->free(c->h, c->q, 100);
    return NULL;
}

Test(gotiered_threads, collect_flushes_other_threads_caches)
{
    const char *opts[] = {"free=reuse,scavenger=off,remote_flush=off",
                          "free=sweep,scavenger=off,remote_flush=off"};
    for (int k = 0; k < 2; k++) {
        collect_ctx c = {.h = mk(opts[k])};
        pthread_barrier_init(&c.bar, NULL, 2);
        pthread_t t;
        pthread_create(&t, NULL, collect_owner, &c);
        pthread_barrier_wait(&c.bar); /* 1 */
        al_stats st;
        B->collect(c.h);
        B->stats(c.h, &st);
        uint64_t before = st.heap_inuse;
        cr_expect_eq(st.heap_objects, 0u, "%s", opts[k]);
        pthread_barrier_wait(&c.bar); /* 2 */
        pthread_barrier_wait(&c.bar); /* 3: A made its next call */
        B->collect(c.h);
        B->stats(c.h, &st);
        cr_expect_eq(st.heap_objects, 1u, "%s", opts[k]);
        /* only A's current span of class 112 (one page) is left in use */
        cr_expect_eq(st.heap_inuse, (uint64_t)GT_PAGE, "%s: HeapInuse %llu after A's next call "
                     "(%llu before it): A's cache was not flushed", opts[k],
                     (unsigned long long)st.heap_inuse, (unsigned long long)before);
        cr_expect_gt(before, st.heap_inuse, "%s: A's cache held %llu bytes of spans before its "
                     "next call", opts[k], (unsigned long long)before);
        pthread_barrier_wait(&c.bar); /* 4 */
        pthread_join(t, NULL);
        must_check(c.h);
        pthread_barrier_destroy(&c.bar);
        B->destroy(c.h);
    }
}

Test(gotiered_threads, many_heaps_on_one_thread_evict_caches)
{
    enum { NH = 12, NO = 300 };
    void *h[NH];
    char *v[NH][NO];
    for (int i = 0; i < NH; i++) h[i] = mk(i & 1 ? "free=reuse,scavenger=off" : "scavenger=off");
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < NH; i++)
            for (int k = 0; k < NO; k++) {
                v[i][k] = B->alloc(h[i], (size_t)(k % 90) + 1);
                memset(v[i][k], i, (size_t)(k % 90) + 1);
            }
        for (int i = 0; i < NH; i++)
            for (int k = 0; k < NO; k++)
                cr_assert_eq(v[i][k][0], i, "heap %d object %d", i, k);
        for (int i = NH - 1; i >= 0; i--) {
            for (int k = 0; k < NO; k++) B->free(h[i], v[i][k], 0);
            must_check(h[i]);
        }
    }
    for (int i = 0; i < NH; i++) {
        al_stats st;
        B->stats(h[i], &st);
        cr_expect_eq(st.heap_objects, 0u, "heap %d", i);
        B->destroy(h[i]);
    }
}

/* ---- fork ---- */

/* atfork: a thread allocates and frees (small, tiny, large) in a loop while the main thread
 * forks; each child allocates and frees a few thousand objects of various sizes, checks the
 * heap and destroys it (which must not join the parent's scavenger thread), then _exits. A
 * child stuck on a lock held at fork() is killed after 10 s and fails the test. */
typedef struct fork_ctx {
    void *h;
    _Atomic int stop;
} fork_ctx;

static size_t fork_size(unsigned i)
{
    return i % 16 == 0 ? 40000 + i % 90000 : 1 + (size_t)(i * 2654435761u % 3000);
}

static void *fork_churn(void *arg)
{
    fork_ctx *c = arg;
    void *p[64] = {0};
    size_t n[64] = {0};
    for (unsigned i = 0; !atomic_load_explicit(&c->stop, memory_order_relaxed); i++) {
        unsigned k = i % 64;
        B->free(c->h, p[k], n[k]);
        n[k] = fork_size(i);
        p[k] = B->alloc(c->h, n[k]);
        memset(p[k], 1, n[k] < 32 ? n[k] : 32);
    }
    for (int k = 0; k < 64; k++) B->free(c->h, p[k], n[k]);
    return NULL;
}

/* The child's work; returns its exit status (0 = fine). */
static int fork_child(void *h)
{
    static void *p[3000];
    for (unsigned round = 0; round < 2; round++) {
        for (unsigned i = 0; i < 3000; i++) {
            size_t n = fork_size(i * 7 + round);
            if (!(p[i] = B->alloc(h, n))) return 3;
            memset(p[i], (int)(i & 0xff), n < 64 ? n : 64);
        }
        for (unsigned i = 0; i < 3000; i++) {
            size_t n = fork_size(i * 7 + round);
            if (((unsigned char *)p[i])[0] != (i & 0xff)) return 4;
            B->free(h, p[i], n);
        }
    }
    char msg[256];
    if (B->check(h, msg, sizeof msg)) {
        fprintf(stderr, "child: check: %s\n", msg);
        return 5;
    }
    B->collect(h);
    B->destroy(h);
    return 0;
}

Test(gotiered_fork, fork_while_a_thread_allocates, .timeout = 120)
{
#ifdef __SANITIZE_THREAD__
    enum { FORKS = 10 };
#else
    enum { FORKS = 50 };
#endif
    static fork_ctx c;
    c.h = mk("scavenger=on");
    atomic_store(&c.stop, 0);
    /* start the parent's background scavenger (free > 1 MiB of pages): the children must
     * neither use nor join it */
    void *big[8];
    for (int i = 0; i < 8; i++) big[i] = B->alloc(c.h, 1 << 20);
    for (int i = 0; i < 8; i++) B->free(c.h, big[i], 1 << 20);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fork_churn, &c), 0);
    int hung = 0, bad = 0, status = 0;
    for (int k = 0; k < FORKS && !bad; k++) {
        usleep(500);
        int st, r = fork_via_atfork(B, c.h, fork_child, c.h, 10000, &st);
        cr_assert_neq(r, FORK_FAILED, "fork failed");
        hung = r == FORK_CHILD_HUNG;
        bad = r != FORK_OK;
        if (r == FORK_CHILD_FAILED) status = st;
    }
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    cr_expect(!hung, "a child hung for 10 s: a lock held at fork() was not reset");
    cr_expect(!bad || hung, "a child failed, wait status %#x (exit 3 = alloc failed, 4 = data "
              "corrupt, 5 = check failed)", status);
    must_check(c.h);
    B->destroy(c.h);
}

/* ---- memory back to the OS ---- */

Test(gotiered_scavenger, background_thread_returns_free_pages)
{
    void *h = mk("scavenger=on");
    enum { N = 32 };
    size_t before = rss_bytes();
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = B->alloc(h, 1 << 20);
        memset(p[i], 1, 1 << 20);
    }
    size_t peak = rss_bytes();
    cr_assert_gt(peak, before + (24u << 20));
    for (int i = 0; i < N; i++) B->free(h, p[i], 1 << 20);
    al_stats st;
    size_t now = peak;
    for (int k = 0; k < 60; k++) { /* up to 3 s */
        usleep(50000);
        now = rss_bytes();
        if (now + (24u << 20) < peak) break;
    }
    B->stats(h, &st);
    cr_expect_lt(now + (24u << 20), peak, "RSS %zu MiB -> %zu MiB", peak >> 20, now >> 20);
    cr_expect_geq(st.heap_released, 24u << 20);
    cr_expect_geq(st.bytes_scavenged, 24u << 20);
    must_check(h);
    B->destroy(h);
}

Test(gotiered_scavenger, collect_after_free_all_restores_rss)
{
#ifdef __SANITIZE_THREAD__
    cr_skip_test("ThreadSanitizer's shadow memory (several times the heap) dominates RSS");
#endif
    void *h = mk("scavenger=off");
    size_t n = 40000;
    void **v = malloc(n * sizeof *v);
    size_t *len = malloc(n * sizeof *len);
    /* warm up once so the caller's own metadata (TLS, Criterion) is counted in the start */
    B->free(h, B->alloc(h, 100), 100);
    size_t start = rss_bytes();
    unsigned s = 9;
    for (size_t i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        len[i] = i % 500 == 0 ? 100000 + (s >> 10) % 200000 : 1 + (s >> 8) % 700;
        v[i] = B->alloc(h, len[i]);
        memset(v[i], 0x5a, len[i]);
    }
    size_t peak = rss_bytes();
    for (size_t i = 0; i < n; i++) B->free(h, v[i], len[i]);
    B->collect(h);
    size_t end = rss_bytes();
    size_t slack = start / 10 > (1u << 20) ? start / 10 : (1u << 20);
#if SCALE > 1
    /* sanitizer shadow memory (written when objects are poisoned) is never given back */
    slack += (peak - start) / 4;
#endif
    cr_expect_leq(end, start + slack, "RSS start %zu KiB peak %zu KiB after collect %zu KiB",
                  start >> 10, peak >> 10, end >> 10);
    must_check(h);
    B->destroy(h);
    free(v);
    free(len);
}

Test(gotiered_heap, create_destroy_cycles_do_not_grow_mappings)
{
    size_t vm10 = 0;
    for (int i = 0; i < 100; i++) {
        void *h = mk(NULL);
        void *p = B->alloc(h, 100), *q = B->alloc(h, 100000), *r = B->alloc(h, 70u << 20);
        cr_assert(p && q && r);
        B->free(h, p, 100);
        B->free(h, q, 0);
        B->destroy(h);
        if (i == 9) vm10 = vm_size_kb();
    }
    size_t vm100 = vm_size_kb();
    cr_expect_leq(vm100, vm10 + 1024, "VmSize %zu kB after 10 cycles, %zu kB after 100", vm10,
                  vm100);
}

/* ---- API edges ---- */

Test(gotiered_heap, options_are_checked)
{
    char err[256] = "";
    cr_expect_null(B->create("bogus=1", err, sizeof err));
    cr_expect(strstr(err, "unknown option 'bogus'"), "%s", err);
    cr_expect_null(B->create("free=lifo", err, sizeof err));
    cr_expect(strstr(err, "bad value"), "%s", err);
    cr_expect_null(B->create("tiny", err, sizeof err));
    setenv("ALLOCLAB_GOTIERED_TINY", "maybe", 1);
    cr_expect_null(B->create(NULL, err, sizeof err));
    cr_expect(strstr(err, "ALLOCLAB_GOTIERED_TINY"), "%s", err);
    setenv("ALLOCLAB_GOTIERED_TINY", "off", 1);
    void *h = mk("free=reuse,scavenger=off");
    cr_expect_eq(((gt_heap *)h)->tiny_lim, 0u, "environment read");
    cr_expect_eq(((gt_heap *)h)->free_reuse, 1);
    B->destroy(h);
    h = mk("tiny=on");
    cr_expect_eq(((gt_heap *)h)->tiny_lim, 16u, "options string wins over the environment");
    B->destroy(h);
    unsetenv("ALLOCLAB_GOTIERED_TINY");
}

Test(gotiered_heap, aligned_realloc_usable_and_huge)
{
    void *h = mk(NULL);
    for (size_t al = 8; al <= (1u << 22); al <<= 1) {
        size_t sizes[] = {1, 24, 100, 5000, 40000, 3u << 20};
        for (int k = 0; k < 6; k++) {
            char *p = B->alloc_aligned(h, al, sizes[k]);
            cr_assert(p);
            cr_assert_eq((uintptr_t)p % al, 0, "align %zu size %zu", al, sizes[k]);
            cr_assert_geq(B->usable_size(h, p), sizes[k]);
            memset(p, 1, sizes[k]);
            B->free(h, p, 0);
        }
    }
    char *p = B->alloc(h, 10);
    memcpy(p, "abcdefghi", 10);
    for (size_t n = 11; n < 300000; n = n * 3 + 1) {
        p = B->realloc(h, p, 0, n);
        cr_assert(p);
        cr_assert_str_eq(p, "abcdefghi");
    }
    p = B->realloc(h, p, 0, 5);
    cr_assert_eq(memcmp(p, "abcde", 5), 0);
    B->free(h, p, 5);
    cr_expect_null(B->alloc(h, SIZE_MAX / 2));
    cr_expect_null(B->alloc(h, (size_t)PTRDIFF_MAX + 1));
    void *z1 = B->alloc(h, 0), *z2 = B->alloc(h, 0);
    cr_expect(z1 && z2 && z1 != z2);
    B->free(h, z1, 0);
    B->free(h, z2, 0);
    must_check(h);
    B->destroy(h);
}

Test(gotiered_heap, check_catches_a_broken_invariant)
{
    void *h = mk("scavenger=off");
    void *v[600];
    for (int i = 0; i < 600; i++) v[i] = B->alloc(h, 32);
    must_check(h);
    gt_span *s = gt_span_of(v[0]); /* exhausted: filed in mcentral */
    s->alloc_count--;
    char msg[256] = "";
    cr_expect_eq(B->check(h, msg, sizeof msg), -1);
    cr_expect(strstr(msg, "allocCount"), "%s", msg);
    s->alloc_count++;
    gt_arena *a = s->arena;
    size_t pg = (s->base - (uintptr_t)a) >> GT_PAGE_SHIFT;
    a->spans[pg] = NULL;
    cr_expect_eq(B->check(h, msg, sizeof msg), -1);
    a->spans[pg] = s;
    must_check(h);
    for (int i = 0; i < 600; i++) B->free(h, v[i], 32);
    B->destroy(h);
}

Test(gotiered_heap, stats_follow_operations)
{
    void *h = mk("scavenger=off");
    al_stats st;
    void *a = B->alloc(h, 100), *b = B->alloc(h, 1000), *c = B->alloc(h, 100000);
    B->stats(h, &st);
    cr_expect_eq(st.mallocs, 3u);
    cr_expect_eq(st.alloc_bytes, 112u + 1024u + 13u * 8192u);
    cr_expect(st.present & AL_STAT_BIT(heap_released));
    cr_expect(st.present & AL_STAT_BIT(sweeps));
    cr_expect_eq(st.heap_sys, st.heap_idle + st.heap_inuse);
    B->free(h, a, 100);
    B->free(h, b, 0);
    B->free(h, c, 100000);
    B->stats(h, &st);
    cr_expect_eq(st.frees, 3u);
    cr_expect_eq(st.heap_objects, 0u);
    cr_expect_eq(st.alloc_bytes, 0u);
    cr_expect_eq(st.total_alloc, 112u + 1024u + 13u * 8192u);
    B->destroy(h);
}
