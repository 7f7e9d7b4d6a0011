/* unit_syncpool_pool.c - the syncpool backend above the ring: victim cache and cleanup,
 * bucket acceptance, cross-thread put/get and stealing, check() finding a block in two places
 * or a foreign/corrupt header, options, the automatic cleanup trigger, threads vs P slots,
 * realloc, stats. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncpool/sp_internal.h"

extern const al_backend al_backend_syncpool;
static const al_backend *B = &al_backend_syncpool;

/* Tests of counter values need the counters (SP_STATS=0 compiles them out). */
static void need_stats(void)
{
    if (!SP_STATS) cr_skip_test("built with SP_STATS=0: pool counters are compiled out");
}

static void *open_heap(const char *opts)
{
    char err[256] = "";
    void *h = B->create(opts, err, sizeof err);
    cr_assert_not_null(h, "create(\"%s\") failed: %s", opts ? opts : "", err);
    return h;
}

static void assert_check(void *h, const char *when)
{
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), 0, "check failed %s: %s", when, msg);
}

static al_stats stats_of(void *h)
{
    al_stats s;
    cr_assert_eq(B->stats(h, &s), 0);
    return s;
}

static sp_bucket_stats bucket_of_size(void *h, size_t size)
{
    sp_bucket_stats s;
    for (unsigned b = 0; b < sp_bucket_count(h); b++) {
        sp_bucket_stats_get(h, b, &s);
        if (s.size == size) return s;
    }
    cr_assert_fail("no bucket of %zu bytes", size);
    return s;
}

/* ---- victim cache and cleanup ---- */

typedef struct idle_arg {
    void *heap;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase; /* 1: the thread has pooled its blocks; 2: main says exit */
} idle_arg;

static void *idle_thread(void *a)
{
    idle_arg *ia = a;
    void *p[50];
    for (int i = 0; i < 50; i++) p[i] = B->alloc(ia->heap, 16u << (i % 6));
    for (int i = 0; i < 50; i++) B->free(ia->heap, p[i], 0);
    pthread_mutex_lock(&ia->mu);
    ia->phase = 1;
    pthread_cond_broadcast(&ia->cv);
    while (ia->phase != 2) pthread_cond_wait(&ia->cv, &ia->mu);
    pthread_mutex_unlock(&ia->mu);
    return NULL;
}

Test(syncpool_pool, two_cleanups_without_use_leave_nothing_held)
{
    need_stats();
    void *h = open_heap("gc_bytes=0");
    /* blocks pooled by this thread and by another thread that stays alive and idle */
    idle_arg ia = {.heap = h, .phase = 0};
    pthread_mutex_init(&ia.mu, NULL);
    pthread_cond_init(&ia.cv, NULL);
    pthread_t t;
    pthread_create(&t, NULL, idle_thread, &ia);
    void *p[200];
    for (int i = 0; i < 200; i++) p[i] = B->alloc(h, (size_t)(1 + i * 131 % 30000));
    for (int i = 0; i < 200; i++) B->free(h, p[i], 0);
    pthread_mutex_lock(&ia.mu);
    while (ia.phase != 1) pthread_cond_wait(&ia.cv, &ia.mu);
    pthread_mutex_unlock(&ia.mu);

    al_stats s0 = stats_of(h);
    cr_assert(s0.present & AL_STAT_BIT(pool_bytes_held));
    cr_assert_gt(s0.pool_bytes_held, 0);
    /* 250 blocks were put; as gets may have stolen the other thread's, at least 200 exist */
    uint64_t n0 = sp_count_held(h);
    cr_assert(n0 >= 200 && n0 <= 250, "%llu held", (unsigned long long)n0);
    assert_check(h, "with pooled blocks");

    B->collect(h); /* primary -> victim: nothing freed yet */
    al_stats s1 = stats_of(h);
    cr_assert_eq(s1.num_gc, s0.num_gc + 1);
    cr_assert_eq(s1.pool_bytes_held, s0.pool_bytes_held);
    cr_assert_eq(sp_count_held(h), n0);
    assert_check(h, "after one cleanup");

    B->collect(h); /* victims dropped */
    al_stats s2 = stats_of(h);
    cr_assert_eq(s2.pool_bytes_held, 0, "held %llu bytes after two cleanups",
                 (unsigned long long)s2.pool_bytes_held);
    cr_assert_eq(sp_count_held(h), 0);
    assert_check(h, "after two cleanups");

    pthread_mutex_lock(&ia.mu);
    ia.phase = 2;
    pthread_cond_broadcast(&ia.cv);
    pthread_mutex_unlock(&ia.mu);
    pthread_join(t, NULL);
    B->destroy(h);
}

Test(syncpool_pool, victim_cache_serves_after_one_cleanup)
{
    need_stats();
    void *h = open_heap("gc_bytes=0");
    void *a = B->alloc(h, 64), *b = B->alloc(h, 64);
    B->free(h, a, 64); /* private */
    B->free(h, b, 64); /* shared */
    B->collect(h);
    void *x = B->alloc(h, 64), *y = B->alloc(h, 64);
    cr_assert((x == a && y == b) || (x == b && y == a), "victims not reused");
    sp_bucket_stats s = bucket_of_size(h, 64);
    cr_assert_eq(s.victim_hits, 2);
    cr_assert_eq(s.misses, 2);
    cr_assert_eq(s.hits, 2);
    B->free(h, x, 64);
    B->free(h, y, 64);
    assert_check(h, "after victim hits");
    B->destroy(h);
}

/* ---- bucket acceptance ---- */

Test(syncpool_pool, a_block_goes_back_only_to_its_bucket)
{
    void *h = open_heap("gc_bytes=0");
    void *p = B->alloc(h, 100);
    cr_assert_eq(B->usable_size(h, p), 128);
    B->free(h, p, 5000); /* a wrong size hint must not misfile it */
    void *q = B->alloc(h, 64);
    cr_assert_neq(q, p, "a 128 B block served a 64 B request");
    void *r = B->alloc(h, 5000);
    cr_assert_neq(r, p, "a 128 B block served a 5000 B request");
    void *s = B->alloc(h, 128);
    cr_assert_eq(s, p, "the 128 B bucket did not get its block back");
    /* the lecture's getAllocSize returned 20000 for a 20000 B request; here: 32 KiB bucket */
    void *big = B->alloc(h, 20000);
    cr_assert_eq(B->usable_size(h, big), 32768);
    void *large = B->alloc(h, 40000); /* above the largest bucket: not pooled */
    cr_assert_eq(B->usable_size(h, large), 40000);
    uint64_t held = sp_count_held(h);
    B->free(h, large, 0);
    cr_assert_eq(sp_count_held(h), held, "a large block was pooled");
    B->free(h, q, 0);
    B->free(h, r, 0);
    B->free(h, s, 0);
    B->free(h, big, 0);
    assert_check(h, "after acceptance");
    B->destroy(h);
}

Test(syncpool_pool, fixed_size_pool_has_one_bucket)
{
    void *h = open_heap("fixed=1000,gc_bytes=0");
    cr_assert_eq(sp_bucket_count(h), 1);
    void *a = B->alloc(h, 10), *b = B->alloc(h, 1000), *c = B->alloc(h, 1009);
    cr_assert_eq(B->usable_size(h, a), 1008);
    cr_assert_eq(B->usable_size(h, b), 1008);
    cr_assert_eq(B->usable_size(h, c), 1009);
    cr_assert_eq((uintptr_t)a % 16, 0);
    B->free(h, a, 0);
    B->free(h, c, 0);
    cr_assert_eq(sp_count_held(h), 1);
    cr_assert_eq(B->alloc(h, 500), a);
    B->free(h, a, 0);
    B->free(h, b, 0);
    assert_check(h, "fixed");
    B->destroy(h);
}

/* ---- cross-thread put/get ---- */

typedef struct xfer {
    void *heap;
    void **blocks;
    int n;
} xfer;

static void *free_all(void *a)
{
    xfer *x = a;
    for (int i = 0; i < x->n; i++) B->free(x->heap, x->blocks[i], 256);
    return NULL; /* exits: its P is flushed (private -> shared) and released */
}

Test(syncpool_pool, cross_thread_put_then_get_steals)
{
    need_stats();
    void *h = open_heap("gc_bytes=0");
    enum { N = 300 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = B->alloc(h, 256);
        memset(blocks[i], i & 0xff, 256);
    }
    xfer x = {h, blocks, N};
    pthread_t t;
    pthread_create(&t, NULL, free_all, &x);
    pthread_join(t, NULL);
    assert_check(h, "after the other thread's puts");
    cr_assert_eq(sp_count_held(h), N);
    sp_bucket_stats before = bucket_of_size(h, 256);
    void *again[N];
    for (int i = 0; i < N; i++) again[i] = B->alloc(h, 256);
    sp_bucket_stats after = bucket_of_size(h, 256);
    cr_assert_eq(after.misses, before.misses, "gets went to the underlying allocator");
    cr_assert_geq(after.steals - before.steals, N - 1);
    /* the same set of blocks came back */
    for (int i = 0; i < N; i++) {
        int found = 0;
        for (int j = 0; j < N && !found; j++) found = again[j] == blocks[i];
        cr_assert(found, "block %p lost", blocks[i]);
    }
    for (int i = 0; i < N; i++) B->free(h, again[i], 256);
    assert_check(h, "after reuse");
    B->destroy(h);
}

/* Many threads churn, hand blocks to each other, while another thread runs cleanups: every
 * block keeps its content while live, and check() holds at the end (and TSan stays quiet). */
#define CHURN_THREADS 4
#ifdef __SANITIZE_THREAD__
#define CHURN_OPS 20000
#else
#define CHURN_OPS 200000
#endif
#define MAILBOX 64

typedef struct churn {
    void *heap;
    _Atomic(void *) mailbox[MAILBOX];
    _Atomic int done;
    _Atomic long bad;
} churn;

static void *churn_thread(void *a)
{
    churn *c = a;
    unsigned rng = (unsigned)(uintptr_t)&rng;
    void *mine[32] = {0};
    size_t msz[32] = {0};
    for (int i = 0; i < CHURN_OPS; i++) {
        rng = rng * 1103515245u + 12345u;
        unsigned k = (rng >> 8) % 32;
        if (mine[k]) {
            unsigned char tag = (unsigned char)(uintptr_t)mine[k];
            if (((unsigned char *)mine[k])[msz[k] - 1] != tag) atomic_fetch_add(&c->bad, 1);
            if ((rng >> 20) & 1) {
                /* hand it to whoever takes it from the mailbox (cross-thread free) */
                void *old = atomic_exchange(&c->mailbox[(rng >> 12) % MAILBOX], mine[k]);
                if (old) B->free(c->heap, old, 0);
            } else {
                B->free(c->heap, mine[k], msz[k]);
            }
            mine[k] = NULL;
        } else {
            msz[k] = 1 + (rng >> 13) % 5000;
            mine[k] = B->alloc(c->heap, msz[k]);
            if (!mine[k]) {
                atomic_fetch_add(&c->bad, 1);
                continue;
            }
            memset(mine[k], (unsigned char)(uintptr_t)mine[k], msz[k]);
        }
    }
    for (int k = 0; k < 32; k++)
        if (mine[k]) B->free(c->heap, mine[k], msz[k]);
    return NULL;
}

static void *collector(void *a)
{
    churn *c = a;
    while (!atomic_load(&c->done)) B->collect(c->heap);
    return NULL;
}

static void run_churn(const char *opts)
{
    need_stats();
    churn *c = calloc(1, sizeof *c);
    c->heap = open_heap(opts);
    pthread_t t[CHURN_THREADS], g;
    pthread_create(&g, NULL, collector, c);
    for (int i = 0; i < CHURN_THREADS; i++) pthread_create(&t[i], NULL, churn_thread, c);
    for (int i = 0; i < CHURN_THREADS; i++) pthread_join(t[i], NULL);
    atomic_store(&c->done, 1);
    pthread_join(g, NULL);
    for (int i = 0; i < MAILBOX; i++) {
        void *p = atomic_exchange(&c->mailbox[i], NULL);
        if (p) B->free(c->heap, p, 0);
    }
    cr_assert_eq(atomic_load(&c->bad), 0, "a live block changed or an alloc failed");
    assert_check(c->heap, "after the churn");
    al_stats s = stats_of(c->heap);
    cr_assert_eq(s.mallocs, s.frees, "mallocs %llu frees %llu", (unsigned long long)s.mallocs,
                 (unsigned long long)s.frees);
    cr_assert_gt(s.num_gc, 0);
    B->destroy(c->heap);
    free(c);
}

Test(syncpool_pool, threads_churn_with_concurrent_cleanup, .timeout = 120)
{
    run_churn("gc_bytes=64k");
}

Test(syncpool_pool, more_threads_than_p_slots, .timeout = 120)
{
    run_churn("procs=2,gc_bytes=64k");
}

/* Owners take and return blocks while another thread runs cleanups back to back: every get
 * must hand out a block nobody else holds. The owner's fast get takes a private slot with a
 * plain load and store (no exchange) under the busy/cleaning handshake with cleanup; a
 * mistake there hands one block to the owner and to the victim cache at once. Each holder
 * marks its block with a compare-and-swap, so a second holder is seen at once. Also without
 * membarrier() (owners then always exchange). */
#ifdef __SANITIZE_THREAD__
#define RACE_MS 300
#else
#define RACE_MS 800
#endif
#define RACE_HELD 0x5ca1ab1eu
typedef struct race {
    void *heap;
    _Atomic int stop;
    _Atomic long dup, gets, failed;
} race;

static void *race_owner(void *a)
{
    race *r = a;
    void *held[3];
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        for (int k = 0; k < 3; k++) {
            held[k] = B->alloc(r->heap, 64);
            if (!held[k]) {
                atomic_fetch_add(&r->failed, 1);
                continue;
            }
            /* a pooled block holds 0 here, a fresh one whatever malloc left: never HELD */
            if (atomic_exchange((_Atomic uint32_t *)held[k], RACE_HELD) == RACE_HELD)
                atomic_fetch_add(&r->dup, 1);
        }
        for (int k = 0; k < 3; k++) {
            if (!held[k]) continue;
            atomic_store((_Atomic uint32_t *)held[k], 0);
            B->free(r->heap, held[k], 64);
        }
        atomic_fetch_add_explicit(&r->gets, 3, memory_order_relaxed);
    }
    return NULL;
}

static void *race_cleaner(void *a)
{
    race *r = a;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) B->collect(r->heap);
    return NULL;
}

/* cleaner: a thread of its own calls collect back to back; else the owners' own gets run
 * the cleanups (gc_bytes=4k: one every few gets, from inside an owner's slow path). */
static void run_race(int no_membarrier, int cleaner)
{
    atomic_store(&sp_membarrier_off, no_membarrier);
    race r = {.heap = open_heap(cleaner ? "gc_bytes=0" : "gc_bytes=4k")};
    atomic_store(&sp_membarrier_off, 0);
    pthread_t o[3], c;
    if (cleaner) pthread_create(&c, NULL, race_cleaner, &r);
    for (int i = 0; i < 3; i++) pthread_create(&o[i], NULL, race_owner, &r);
    struct timespec ts = {RACE_MS / 1000, (RACE_MS % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 3; i++) pthread_join(o[i], NULL);
    if (cleaner) pthread_join(c, NULL);
    cr_assert_eq(atomic_load(&r.failed), 0, "an alloc failed");
    cr_assert_eq(atomic_load(&r.dup), 0, "%ld gets handed out a block someone held",
                 (long)atomic_load(&r.dup));
    cr_assert_gt(atomic_load(&r.gets), 1000, "the owners hardly ran");
    assert_check(r.heap, "after the race");
    if (SP_STATS) {
        al_stats s = stats_of(r.heap);
        cr_assert_gt(s.num_gc, 10, "the cleaner hardly ran");
        cr_assert_eq(s.pool_gets, (uint64_t)atomic_load(&r.gets), "gets %llu, stats say %llu",
                     (unsigned long long)atomic_load(&r.gets),
                     (unsigned long long)s.pool_gets);
    }
    B->destroy(r.heap);
}

Test(syncpool_pool, fast_get_never_hands_out_a_block_cleanup_took, .timeout = 60)
{
    run_race(0, 1);
}

Test(syncpool_pool, owners_running_cleanups_never_share_a_block, .timeout = 60)
{
    run_race(0, 0);
}

Test(syncpool_pool, without_membarrier_gets_exchange_and_stay_exact, .timeout = 60)
{
    run_race(1, 1);
}

/* ---- check ---- */

Test(syncpool_pool, check_finds_a_block_in_two_places)
{
    void *h = open_heap("gc_bytes=0");
    void *p = B->alloc(h, 64);
    B->free(h, p, 64);
    assert_check(h, "after one free");
    B->free(h, p, 64); /* a double free: private slot and shared chain */
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), -1, "a double free went unnoticed");
    cr_assert(strstr(msg, "two places"), "message: %s", msg);
    /* take both copies out, give one back: consistent again */
    void *a = B->alloc(h, 64), *b = B->alloc(h, 64);
    cr_assert_eq(a, p);
    cr_assert_eq(b, p);
    B->free(h, p, 64);
    B->destroy(h);
}

Test(syncpool_pool, check_finds_a_corrupt_header)
{
    void *h = open_heap("gc_bytes=0");
    void *p = B->alloc(h, 512);
    B->free(h, p, 512);
    unsigned char *hdr = (unsigned char *)p - SP_HDR;
    hdr[3] ^= 0x40;
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), -1, "a corrupt header went unnoticed");
    cr_assert(strstr(msg, "corrupt"), "message: %s", msg);
    hdr[3] ^= 0x40;
    assert_check(h, "after repairing the header");
    B->destroy(h);
}

/* free's fast path reads only the header's key (key ^ salt ^ address = bucket): a block whose
 * key the program overwrote is refused, never pooled, and pooled again once repaired. */
Test(syncpool_pool, free_refuses_a_block_whose_key_is_overwritten)
{
    void *h = open_heap("gc_bytes=0");
    void *p = B->alloc(h, 512);
    unsigned char *key = (unsigned char *)p - SP_HDR; /* the key is the header's first word */
    unsigned char saved[8];
    memcpy(saved, key, sizeof saved);
    static const size_t at[] = {1, 4, 7}; /* above the low byte: a random info, not a bucket */
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        key[at[i]] ^= 0x5a;
        B->free(h, p, 512);
        cr_assert_eq(sp_count_held(h), 0, "a block with byte %zu of its key changed was pooled",
                     at[i]);
        memcpy(key, saved, sizeof saved);
    }
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), -1, "the refused frees went unreported");
    cr_assert(strstr(msg, "foreign"), "message: %s", msg);
    B->free(h, p, 512); /* repaired: back into its own bucket */
    cr_assert_eq(sp_count_held(h), 1);
    sp_bucket_stats st;
    cr_assert_eq(sp_bucket_stats_get(h, 5, &st), 0); /* 16, 32, 64, 128, 256, 512 */
    cr_assert_eq(st.size, 512);
    cr_assert_eq(st.held_blocks, 1, "the block went to another bucket");
    cr_assert_eq(B->alloc(h, 300), p, "a 512-byte bucket get did not find it");
    B->free(h, p, 512);
    B->destroy(h);
}

Test(syncpool_pool, foreign_blocks_are_refused)
{
    void *h = open_heap("gc_bytes=0"), *h2 = open_heap("gc_bytes=0");
    unsigned char *buf = calloc(1, 256);
    B->free(h, buf + 16, 0); /* not a syncpool block */
    void *other = B->alloc(h2, 64);
    B->free(h, other, 64); /* another heap's block */
    cr_assert_eq(sp_count_held(h), 0, "a foreign block was pooled");
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), -1);
    cr_assert(strstr(msg, "foreign"), "message: %s", msg);
    cr_assert_eq(B->usable_size(h, buf + 16), 0);
    B->free(h2, other, 64);
    assert_check(h2, "the other heap");
    B->destroy(h);
    B->destroy(h2);
    free(buf);
}

/* ---- options ---- */

static void create_fails(const char *opts, const char *needle)
{
    char err[256] = "";
    void *h = B->create(opts, err, sizeof err);
    if (h) B->destroy(h);
    cr_assert_null(h, "create(\"%s\") should fail", opts);
    cr_assert(strstr(err, needle), "create(\"%s\"): message \"%s\" lacks \"%s\"", opts, err,
              needle);
    cr_assert_null(strchr(err, '\n'), "one line please: %s", err);
}

Test(syncpool_pool, bad_options_fail_with_one_line)
{
    create_fails("colour=blue", "unknown option \"colour\"");
    create_fails("zero=2", "zero");
    create_fails("min=48", "min");
    create_fails("min=64,max=32", "above");
    create_fails("max=4m", "max");
    create_fails("fixed=100,min=32", "fixed");
    create_fails("under=syncpool", "itself");
    create_fails("under=nosuch", "no such backend");
    create_fails("procs=0", "procs");
    create_fails("gc_bytes=lots", "not a number");
    create_fails("zero", "key=value");
}

Test(syncpool_pool, options_min_max_under_and_env)
{
    void *h = open_heap("min=64,max=1k,under=libc,gc_bytes=0");
    cr_assert_eq(sp_bucket_count(h), 5);
    void *a = B->alloc(h, 1), *b = B->alloc(h, 1025);
    cr_assert_eq(B->usable_size(h, a), 64);
    cr_assert_eq(B->usable_size(h, b), 1025);
    B->free(h, a, 1);
    B->free(h, b, 1025);
    assert_check(h, "min/max");
    B->destroy(h);

    h = open_heap("under=bump");
    a = B->alloc(h, 100);
    b = B->alloc(h, 100000);
    memset(b, 1, 100000);
    B->free(h, a, 0);
    B->free(h, b, 0);
    assert_check(h, "under=bump");
    B->destroy(h);

    setenv("ALLOCLAB_SYNCPOOL_ZERO", "1", 1);
    h = open_heap(NULL);
    unsetenv("ALLOCLAB_SYNCPOOL_ZERO");
    unsigned char *z = B->alloc(h, 64);
    memset(z, 0xAB, 64);
    B->free(h, z, 64);
    unsigned char *z2 = B->alloc(h, 64);
    cr_assert_eq(z2, z);
    for (int i = 0; i < 64; i++) cr_assert_eq(z2[i], 0, "zero=1 (from the environment) did not zero");
    B->free(h, z2, 64);
    B->destroy(h);

    setenv("ALLOCLAB_SYNCPOOL_MIN", "7", 1);
    create_fails(NULL, "ALLOCLAB_SYNCPOOL_MIN");
    unsetenv("ALLOCLAB_SYNCPOOL_MIN");
}

/* ---- automatic cleanup trigger ---- */

static uint64_t churn_bytes(void *h, size_t size, long n)
{
    for (long i = 0; i < n; i++) B->free(h, B->alloc(h, size), size);
    return stats_of(h).num_gc;
}

Test(syncpool_pool, cleanup_trigger_every_n_bytes_and_gogc_pacing)
{
    need_stats();
    void *h = open_heap("gc_bytes=1m");
    uint64_t n = churn_bytes(h, 1024, 10000); /* ~10 MiB handed out */
    cr_assert(n >= 8 && n <= 11, "gc_bytes=1m over 10 MiB: %llu cycles", (unsigned long long)n);
    B->destroy(h);

    h = open_heap("gc_bytes=0");
    cr_assert_eq(churn_bytes(h, 1024, 10000), 0, "gc_bytes=0 must turn the trigger off");
    B->destroy(h);

    h = open_heap(NULL); /* GOGC=100 pacing: 4 MiB floor while little is live */
    n = churn_bytes(h, 1024, 20000);
    cr_assert(n >= 3 && n <= 5, "default pacing over 20 MiB: %llu cycles", (unsigned long long)n);
    /* the hit rate stays high: one block of one bucket is all this loop needs */
    al_stats s = stats_of(h);
    cr_assert_geq(s.pool_hits * 100, s.pool_gets * 99, "hit rate below 99%%");
    assert_check(h, "after paced cleanups");
    B->destroy(h);
}

/* ---- stats ---- */

Test(syncpool_pool, stats_count_gets_puts_hits_misses)
{
    need_stats();
    void *h = open_heap("gc_bytes=0");
    void *p[10];
    for (int i = 0; i < 10; i++) p[i] = B->alloc(h, 64);
    for (int i = 0; i < 10; i++) B->free(h, p[i], 64);
    for (int i = 0; i < 10; i++) p[i] = B->alloc(h, 64);
    al_stats s = stats_of(h);
    cr_assert_eq(s.pool_gets, 20);
    cr_assert_eq(s.pool_puts, 10);
    cr_assert_eq(s.pool_misses, 10);
    cr_assert_eq(s.pool_hits, 10);
    cr_assert_eq(s.pool_bytes_held, 0);
    cr_assert_eq(s.heap_objects, 10);
    cr_assert_eq(s.alloc_bytes, 640);
    cr_assert_eq(s.total_alloc, 1280);
    for (int i = 0; i < 10; i++) B->free(h, p[i], 64);
    s = stats_of(h);
    cr_assert_eq(s.pool_bytes_held, 10 * (64 + SP_HDR));
    char text[1024];
    sp_stats_text(h, text, sizeof text);
    cr_assert(strstr(text, "size 64: gets=20, puts=20, hits=10, misses=10"), "%s", text);
    B->destroy(h);
}

/* The fast put counts nothing: the puts are derived from what leaves the private slots (see
 * sp_local). Every way a block enters or leaves a private slot, with the counts checked
 * after each step: fast puts, slow puts (both slots full), a cleanup taking the slots, slow
 * gets after it, puts while the thread's most recent heap is another, a thread's exit flush. */
typedef struct churn_arg {
    void *h;
    int n;
} churn_arg;

static void *churn_and_exit(void *arg)
{
    churn_arg *a = arg;
    void *p[8];
    for (int i = 0; i < a->n; i++) p[i] = B->alloc(a->h, 64);
    for (int i = 0; i < a->n; i++) B->free(a->h, p[i], 0);
    return NULL; /* exit: its private slots go to its shared chain */
}

static void expect_counts(void *h, uint64_t gets, uint64_t puts, const char *when)
{
    sp_bucket_stats s = bucket_of_size(h, 64);
    cr_assert_eq(s.gets, gets, "%s: gets %llu, want %llu", when, (unsigned long long)s.gets,
                 (unsigned long long)gets);
    cr_assert_eq(s.puts, puts, "%s: puts %llu, want %llu", when, (unsigned long long)s.puts,
                 (unsigned long long)puts);
    assert_check(h, when);
}

Test(syncpool_pool, puts_counted_on_every_path)
{
    need_stats();
    void *h = open_heap("gc_bytes=0"), *h2 = open_heap("gc_bytes=0");
    void *p[8], *q;
    for (int i = 0; i < 5; i++) p[i] = B->alloc(h, 64);
    expect_counts(h, 5, 0, "5 gets");
    for (int i = 0; i < 5; i++) B->free(h, p[i], 64); /* 2 fast into the slots, 3 slow */
    expect_counts(h, 5, 5, "5 puts, 3 of them past full slots");
    B->collect(h); /* the slots and the chain move to the victim cache */
    expect_counts(h, 5, 5, "a cleanup");
    for (int i = 0; i < 4; i++) p[i] = B->alloc(h, 64); /* slow gets from the victims */
    expect_counts(h, 9, 5, "4 gets from the victims");
    for (int i = 0; i < 4; i++) B->free(h, p[i], 64);
    expect_counts(h, 9, 9, "4 more puts");
    q = B->alloc(h2, 64); /* this thread's most recent heap is now h2 */
    B->free(h, B->alloc(h, 64), 64);
    p[0] = B->alloc(h, 64);
    B->free(h2, q, 64);
    B->free(h, p[0], 0); /* its most recent heap is h2: the slow put */
    expect_counts(h, 11, 11, "puts while the most recent heap is another");
    for (int round = 0; round < 3; round++) { /* other threads: their slots flushed at exit */
        churn_arg a = {h, 6};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, churn_and_exit, &a), 0);
        pthread_join(t, NULL);
    }
    expect_counts(h, 29, 29, "3 threads of 6 gets and puts each, exited");
    B->collect(h);
    B->collect(h);
    expect_counts(h, 29, 29, "two cleanups");
    cr_assert_eq(bucket_of_size(h, 64).held_blocks, 0, "two cleanups leave nothing held");
    for (int i = 0; i < 8; i++) p[i] = B->alloc(h, 64);
    for (int i = 0; i < 8; i++) B->free(h, p[i], 64);
    expect_counts(h, 37, 37, "8 more");
    B->thread_detach(h); /* this thread's slots flushed, its P given back */
    expect_counts(h, 37, 37, "thread_detach");
    B->destroy(h2);
    B->destroy(h);
}

/* ---- realloc ---- */

Test(syncpool_pool, realloc_same_bucket_keeps_pointer)
{
    void *h = open_heap("gc_bytes=0");
    char *p = B->alloc(h, 100);
    memset(p, 7, 100);
    cr_assert_eq(B->realloc(h, p, 100, 120), p);
    char *q = B->realloc(h, p, 120, 3000);
    cr_assert_neq(q, p);
    for (int i = 0; i < 100; i++) cr_assert_eq(q[i], 7);
    memset(q, 9, 3000);
    char *r = B->realloc(h, q, 3000, 100000); /* to a large block */
    for (int i = 0; i < 3000; i++) cr_assert_eq(r[i], 9);
    memset(r, 5, 100000);
    char *s = B->realloc(h, r, 100000, 1000000); /* large -> large: the libc realloc */
    for (int i = 0; i < 100000; i++) cr_assert_eq(s[i], 5);
    cr_assert_eq(B->usable_size(h, s), 1000000);
    char *t = B->realloc(h, s, 0, 10); /* back to a bucket */
    for (int i = 0; i < 10; i++) cr_assert_eq(t[i], 5);
    B->free(h, t, 10);
    assert_check(h, "after reallocs");
    B->destroy(h);
}

/* ---- threads, P slots, several heaps ---- */

static void *use_and_detach(void *a)
{
    void *h = a;
    void *p = B->alloc(h, 32), *q = B->alloc(h, 32);
    B->free(h, p, 32);
    B->free(h, q, 32);
    B->thread_detach(h);
    return NULL;
}

Test(syncpool_pool, thread_detach_releases_the_p_and_keeps_blocks_reachable)
{
    need_stats();
    void *h = open_heap("procs=1,gc_bytes=0");
    pthread_t t;
    pthread_create(&t, NULL, use_and_detach, h);
    pthread_join(t, NULL);
    sp_heap *sh = h;
    cr_assert_eq(atomic_load(&sh->procs[0].owned), 0, "detach did not release the P");
    cr_assert_eq(sp_count_held(h), 2);
    /* this thread takes the only P and finds both blocks in its shared chain */
    void *a = B->alloc(h, 32), *b = B->alloc(h, 32);
    cr_assert_eq(atomic_load(&sh->procs[0].owned), 1);
    cr_assert_eq(bucket_of_size(h, 32).misses, 2, "blocks were not reused");
    B->free(h, a, 0);
    B->free(h, b, 0);
    assert_check(h, "after detach");
    B->destroy(h);
}

Test(syncpool_pool, many_heaps_at_once_share_the_thread_cache)
{
    need_stats();
    enum { H = 20 };
    void *h[H], *p[H][3];
    for (int i = 0; i < H; i++) h[i] = open_heap("gc_bytes=0");
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < H; i++) {
            for (int k = 0; k < 3; k++) p[i][k] = B->alloc(h[i], 48);
            for (int k = 0; k < 3; k++) B->free(h[i], p[i][k], 48);
        }
    for (int i = 0; i < H; i++) {
        cr_assert_eq(sp_count_held(h[i]), 3, "heap %d", i);
        sp_bucket_stats s = bucket_of_size(h[i], 64);
        cr_assert_eq(s.misses, 3, "heap %d: %llu misses", i, (unsigned long long)s.misses);
        assert_check(h[i], "many heaps");
    }
    for (int i = 0; i < H; i++) B->destroy(h[i]);
}

static void *touch_heap(void *a)
{
    void *h = a;
    for (int i = 0; i < 100; i++) B->free(h, B->alloc(h, (size_t)(16 + i * 300)), 0);
    return NULL;
}

Test(syncpool_pool, create_destroy_cycles_with_threads_release_everything)
{
    for (int cycle = 0; cycle < 100; cycle++) {
        void *h = open_heap(NULL);
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, touch_heap, h);
        touch_heap(h);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
        sp_heap *sh = h;
        int owned = 0;
        for (unsigned p = 0; p < sh->maxp; p++) owned += atomic_load(&sh->procs[p].owned);
        cr_assert_eq(owned, 1, "exited threads kept their P (%d owned)", owned);
        assert_check(h, "cycle");
        B->destroy(h);
    }
}

/* ---- alloc_aligned ---- */

Test(syncpool_pool, alloc_aligned_blocks_are_aligned_unpooled_and_accounted)
{
    void *h = open_heap("gc_bytes=0");
    cr_assert_null(B->alloc_aligned(h, 24, 100), "a non-power-of-two alignment must fail");
    cr_assert_null(B->alloc_aligned(h, 64, SIZE_MAX / 2), "a huge request must fail");
    size_t aligns[] = {8, 16, 64, 4096, 65536};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        unsigned char *p = B->alloc_aligned(h, aligns[i], 1000);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % aligns[i], 0, "align %zu: %p", aligns[i], (void *)p);
        cr_assert_geq(B->usable_size(h, p), 1000);
        memset(p, 0x3c, 1000);
        assert_check(h, "with an aligned block live");
        unsigned char *q = B->realloc(h, p, 1000, 3000);
        cr_assert_not_null(q);
        for (int k = 0; k < 1000; k++) cr_assert_eq(q[k], 0x3c);
        B->free(h, q, 3000);
    }
    unsigned char *p = B->alloc_aligned(h, 256, 50);
    uint64_t held = sp_count_held(h);
    B->free(h, p, 50);
    cr_assert_eq(sp_count_held(h), held, "an aligned block was pooled");
    assert_check(h, "after aligned blocks");
    B->destroy(h);
}

/* ---- producer/consumer: held bytes stay bounded ---- */

/* One thread only gets, another only puts (every block crosses threads), through a ring of
 * PC_Q slots. The consumer's puts land in its own P (private slot, then shared chain); the
 * producer's gets steal them from that chain's tail before ever asking the underlying
 * allocator. So the blocks the pools own (misses - dropped) are at most the ones in flight
 * (PC_Q in the ring + one in each hand) plus the few no steal reaches (each P's private slot,
 * a cleanup's victim private slots, a block between two steps): independent of the run's
 * length. Bound used: 2 * (PC_Q + 8) blocks, checked on samples taken all through the run;
 * a short run and one 10x longer must both stay under it. */
enum { PC_Q = 64, PC_SIZE = 4096 };

typedef struct pc_ring {
    void *heap;
    long n;
    _Atomic long head, tail; /* producer writes head, consumer tail */
    _Atomic(void *) slot[PC_Q];
    uint64_t max_held, max_blocks, samples, bad;
} pc_ring;

/* Blocks the pools own now: sum over buckets of misses - dropped (racy, approximate). */
static uint64_t pc_blocks_owned(void *h)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < sp_bucket_count(h); b++) {
        sp_bucket_stats s;
        sp_bucket_stats_get(h, b, &s);
        n += s.misses - s.dropped;
    }
    return n;
}

static void *pc_producer(void *a)
{
    pc_ring *r = a;
    for (long i = 0; i < r->n; i++) {
        long *p = B->alloc(r->heap, PC_SIZE);
        cr_assert_not_null(p);
        p[0] = i;
        p[PC_SIZE / sizeof(long) - 1] = ~i;
        long h = atomic_load_explicit(&r->head, memory_order_relaxed);
        while (h - atomic_load_explicit(&r->tail, memory_order_acquire) == PC_Q) sched_yield();
        atomic_store_explicit(&r->slot[h % PC_Q], p, memory_order_relaxed);
        atomic_store_explicit(&r->head, h + 1, memory_order_release);
        if (i % 256 == 0) { /* sample while both threads run */
            al_stats s = stats_of(r->heap);
            uint64_t blocks = pc_blocks_owned(r->heap);
            if (s.pool_bytes_held > r->max_held) r->max_held = s.pool_bytes_held;
            if (blocks > r->max_blocks) r->max_blocks = blocks;
            r->samples++;
        }
    }
    return NULL;
}

static void *pc_consumer(void *a)
{
    pc_ring *r = a;
    for (long i = 0; i < r->n; i++) {
        long t = atomic_load_explicit(&r->tail, memory_order_relaxed);
        while (atomic_load_explicit(&r->head, memory_order_acquire) == t) sched_yield();
        long *p = atomic_load_explicit(&r->slot[t % PC_Q], memory_order_relaxed);
        atomic_store_explicit(&r->tail, t + 1, memory_order_release);
        if (p[0] != i || p[PC_SIZE / sizeof(long) - 1] != ~i) r->bad++;
        B->free(r->heap, p, PC_SIZE);
    }
    return NULL;
}

/* Run n transfers on a fresh heap (default GOGC pacing); fills r. */
static void pc_run(pc_ring *r, long n)
{
    memset(r, 0, sizeof *r);
    r->heap = open_heap(NULL);
    r->n = n;
    pthread_t p, c;
    cr_assert_eq(pthread_create(&c, NULL, pc_consumer, r), 0);
    cr_assert_eq(pthread_create(&p, NULL, pc_producer, r), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    cr_assert_eq(r->bad, 0, "a block's content changed in flight");
    uint64_t blocks = pc_blocks_owned(r->heap);
    if (blocks > r->max_blocks) r->max_blocks = blocks;
    al_stats s = stats_of(r->heap);
    if (s.pool_bytes_held > r->max_held) r->max_held = s.pool_bytes_held;
    assert_check(r->heap, "after the producer/consumer run");
    B->destroy(r->heap);
}

Test(syncpool_pool, producer_consumer_held_bytes_stay_bounded, .timeout = 120)
{
    need_stats();
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    const long n = 5000;
#else
    const long n = 20000;
#endif
    const uint64_t bound_blocks = 2 * (PC_Q + 8);
    const uint64_t bound_bytes = bound_blocks * (PC_SIZE + SP_LINE);
    static pc_ring r1, r10;
    pc_run(&r1, n);
    pc_run(&r10, 10 * n);
    cr_log_info("producer/consumer: %ld transfers: max held %llu B, %llu blocks owned; %ld "
                "transfers: max held %llu B, %llu blocks owned (bound %llu B, %llu blocks)",
                n, (unsigned long long)r1.max_held, (unsigned long long)r1.max_blocks, 10 * n,
                (unsigned long long)r10.max_held, (unsigned long long)r10.max_blocks,
                (unsigned long long)bound_bytes, (unsigned long long)bound_blocks);
    cr_assert_geq(r10.samples, 9 * r1.samples, "the long run was sampled less");
    cr_assert_leq(r1.max_blocks, bound_blocks, "short run: %llu blocks owned",
                  (unsigned long long)r1.max_blocks);
    cr_assert_leq(r10.max_blocks, bound_blocks, "10x run: %llu blocks owned (short run: %llu)",
                  (unsigned long long)r10.max_blocks, (unsigned long long)r1.max_blocks);
    cr_assert_leq(r1.max_held, bound_bytes, "short run: %llu B held",
                  (unsigned long long)r1.max_held);
    cr_assert_leq(r10.max_held, bound_bytes, "10x run: %llu B held (short run: %llu B)",
                  (unsigned long long)r10.max_held, (unsigned long long)r1.max_held);
}
