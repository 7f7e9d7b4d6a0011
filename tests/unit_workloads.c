/* unit_workloads.c - every workload against every registered backend at a tiny size.
 *
 *   workloads/smoke    each (workload, backend) pair, each tiny configuration, 1 and 2 threads
 *                      (multi-threaded workloads on thread-safe backends): run() returns 0,
 *                      counts operations and live bytes, and gives the same checksum twice for
 *                      the same seed (and a different one for another seed);
 *   workloads/corrupt  a test-local backend that damages live blocks makes every workload fail
 *                      with a data-corruption error, never pass and never crash;
 *   workloads/peak     the live-byte accounting is exact where the answer is known.
 * Workloads run outside the harness: heap from create(), ctx filled by hand, run(), destroy().
 * Sizes are tiny so every test takes milliseconds, also under ASan and TSan; with backends
 * whose free() is a no-op (AL_CAP_FREE_NOOP) the tiny sizes bound what they map.
 */
#include "workload.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tiny configurations: "name=value ..." override sets, '|' between sets. A workload missing
 * here (one added by someone else) is skipped by the smoke test with a message. */
static const struct {
    const char *name, *tiny, *corrupt;
} tiny_configs[] = {
    {"bufchurn", "buffers=100 mode=0|buffers=100 mode=1|buffers=100 mode=2 size=5000",
     "buffers=50 size=1024"},
    {"sizeclass",
     "allocs=3000 keep=64 size=8|allocs=2000 keep=64 size=1024|allocs=200 keep=16 size=65536"
     "|allocs=3000 keep=64 mode=1",
     "allocs=500 keep=32 size=1024"},
    {"graph", "rounds=12|rounds=5 structures=3 nodes=40 fan=1 retain=0", "rounds=3"},
    {"request", "requests=400|requests=100 init=16", "requests=50"},
    {"threadtest", "iterations=3 objects=2000|iterations=2 objects=300 size=100",
     "iterations=2 objects=200 size=256"},
    {"larson", "ops=20000 slots=200 rounds=4|ops=5000 slots=50 min=1 max=64 rounds=1",
     "ops=2000 slots=50 rounds=2 min=256 max=512"},
    {"xmalloc", "objects=20000 batch=64 depth=4|objects=3000 batch=7 depth=1 max=100",
     "objects=2000 batch=32 depth=4"},
    {"cache-thrash", "iterations=40 repetitions=100|iterations=9 repetitions=3 size=100",
     "iterations=10 repetitions=10 size=256"},
    {"cache-scratch", "iterations=40 repetitions=100|iterations=9 repetitions=3 size=100",
     "iterations=10 repetitions=10 size=256"},
    {"fragment", "phases=4 per_phase=2000|phases=3 per_phase=500 free_pct=100 window=1",
     "phases=2 per_phase=500"},
    {"pareto", "ops=20000 live=500|ops=3000 live=7 min=1 max=40000 alpha_x100=50",
     "ops=2000 live=100 min=256"},
};

static int tiny_index(const char *name)
{
    for (size_t i = 0; i < sizeof tiny_configs / sizeof tiny_configs[0]; i++)
        if (strcmp(tiny_configs[i].name, name) == 0) return (int)i;
    return -1;
}

/* Set ctx->p from w's defaults, then from the overrides in set[0..len). */
static void apply_params(const al_workload *w, al_wl_ctx *ctx, const char *set, size_t len)
{
    for (int i = 0; i < w->nparams; i++) ctx->p[i] = w->params[i].def;
    char buf[512];
    cr_assert_lt(len, sizeof buf);
    memcpy(buf, set, len);
    buf[len] = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert(eq, "bad override \"%s\"", tok);
        *eq = 0;
        int i = al_workload_param(w, tok);
        cr_assert_geq(i, 0, "%s has no parameter %s", w->name, tok);
        long long v = strtoll(eq + 1, NULL, 10);
        const al_param_def *d = &w->params[i];
        if (!d->choices)
            cr_assert(v >= d->min && v <= d->max, "%s: %s=%lld out of range", w->name, tok, v);
        ctx->p[i] = v;
    }
}

/* Run w on a fresh heap of b. Returns run()'s result; *ctx holds the outcome. */
static int run_once(const al_workload *w, const al_backend *b, int threads, uint64_t seed,
                    const char *set, size_t len, al_wl_ctx *ctx)
{
    char err[256] = "";
    memset(ctx, 0, sizeof *ctx);
    void *heap = b->create(NULL, err, sizeof err);
    /* As the conformance suite does: a backend that cannot start here (a reference library
     * not installed, a preload backend outside its LD_PRELOAD child) is skipped, saying why. */
    if (!heap) cr_skip_test("%s: create() failed: %s", b->name, err);
    ctx->b = b;
    ctx->heap = heap;
    ctx->threads = threads;
    ctx->seed = seed;
    apply_params(w, ctx, set, len);
    int rc = w->run(ctx);
    b->destroy(heap);
    return rc;
}

typedef struct wl_pair {
    int wi, bi;
} wl_pair;

ParameterizedTestParameters(workloads, smoke)
{
    static wl_pair pairs[64 * 64];
    size_t n = 0;
    for (int wi = 0; wi < al_workload_count() && wi < 64; wi++)
        for (int bi = 0; bi < al_backend_count() && bi < 64; bi++) pairs[n++] = (wl_pair){wi, bi};
    return cr_make_param_array(wl_pair, pairs, n);
}

ParameterizedTest(wl_pair *pc, workloads, smoke, .timeout = 120)
{
    const al_workload *w = al_workload_at(pc->wi);
    const al_backend *b = al_backend_at(pc->bi);
    cr_assert(w && b);
    if (b->caps & AL_CAP_TEST_ONLY) cr_skip_test("%s is a test-only backend", b->name);
    int ti = tiny_index(w->name);
    if (ti < 0) cr_skip_test("%s has no tiny configuration here (covered by its own tests)",
                             w->name);
    cr_log_info("%s x %s", w->name, b->name);
    int max_threads = w->multithreaded && (b->caps & AL_CAP_THREAD_SAFE) ? 2 : 1;
    for (const char *set = tiny_configs[ti].tiny; set;) {
        const char *bar = strchr(set, '|');
        size_t len = bar ? (size_t)(bar - set) : strlen(set);
        for (int t = 1; t <= max_threads; t++) {
            al_wl_ctx a, c, d;
            int rc = run_once(w, b, t, 42, set, len, &a);
            cr_assert_eq(rc, 0, "%s/%s [%.*s] T=%d failed: %s", w->name, b->name, (int)len, set,
                         t, a.err);
            cr_expect_gt(a.ops, 0, "%s/%s T=%d: no operations counted", w->name, b->name, t);
            cr_expect_gt(a.peak_live, 0, "%s/%s T=%d: no live bytes", w->name, b->name, t);
            cr_assert_eq(run_once(w, b, t, 42, set, len, &c), 0, "%s", c.err);
            cr_expect_eq(a.checksum, c.checksum, "%s/%s [%.*s] T=%d: checksum differs for one "
                         "seed", w->name, b->name, (int)len, set, t);
            if (strcmp(w->name, "bufchurn") != 0) { /* bufchurn has no randomness */
                cr_assert_eq(run_once(w, b, t, 43, set, len, &d), 0, "%s", d.err);
                cr_expect_neq(a.checksum, d.checksum, "%s/%s T=%d: seed does not matter",
                              w->name, b->name, t);
            }
        }
        set = bar ? bar + 1 : NULL;
    }
}

/* ---- a backend that damages live blocks ----
 * malloc underneath (each block behind a 32-byte header linking it into the heap's list, so
 * destroy() frees what a failed workload left behind); it remembers the most recent block of
 * >= CORRUPT_MIN bytes and, at the next allocation while that block is still live, flips a bit
 * of its first byte (once per block). Blocks below CORRUPT_MIN (where workloads keep pointers:
 * graph nodes and link arrays) are left alone, so the damage hits data, never a pointer the
 * workload follows. */
#define CORRUPT_MIN 256

typedef struct corrupt_hdr {
    struct corrupt_hdr *prev, *next;
    char pad[16];
} corrupt_hdr;

static pthread_mutex_t corrupt_mu = PTHREAD_MUTEX_INITIALIZER;
static corrupt_hdr corrupt_list = {&corrupt_list, &corrupt_list, {0}};
static unsigned char *corrupt_last;
static unsigned long corrupt_hits;

static void *corrupt_create(const char *o, char *err, size_t errlen)
{
    (void)o;
    (void)err;
    (void)errlen;
    corrupt_last = NULL;
    corrupt_hits = 0;
    corrupt_list.prev = corrupt_list.next = &corrupt_list;
    return &corrupt_mu;
}

static void corrupt_destroy(void *heap)
{
    (void)heap;
    for (corrupt_hdr *h = corrupt_list.next, *n; h != &corrupt_list; h = n) {
        n = h->next;
        free(h);
    }
    corrupt_list.prev = corrupt_list.next = &corrupt_list;
}

static void *corrupt_alloc(void *heap, size_t size)
{
    (void)heap;
    if (size > PTRDIFF_MAX - sizeof(corrupt_hdr)) return NULL;
    corrupt_hdr *h = malloc(sizeof *h + (size ? size : 1));
    unsigned char *p = h ? (unsigned char *)(h + 1) : NULL;
    pthread_mutex_lock(&corrupt_mu);
    if (corrupt_last) {
        corrupt_last[0] ^= 0x40;
        corrupt_hits++;
        corrupt_last = NULL;
    }
    if (h) {
        h->next = corrupt_list.next;
        h->prev = &corrupt_list;
        corrupt_list.next->prev = h;
        corrupt_list.next = h;
        if (size >= CORRUPT_MIN) corrupt_last = p;
    }
    pthread_mutex_unlock(&corrupt_mu);
    return p;
}

static void corrupt_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    if (!p) return;
    corrupt_hdr *h = (corrupt_hdr *)p - 1;
    pthread_mutex_lock(&corrupt_mu);
    if (p == corrupt_last) corrupt_last = NULL;
    h->prev->next = h->next;
    h->next->prev = h->prev;
    pthread_mutex_unlock(&corrupt_mu);
    free(h);
}

static const al_backend corrupt_backend = {
    .abi = AL_ABI_VERSION,
    .name = "corrupt",
    .desc = "test only: damages the first byte of live blocks",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_TEST_ONLY,
    .create = corrupt_create,
    .destroy = corrupt_destroy,
    .alloc = corrupt_alloc,
    .free = corrupt_free,
};

ParameterizedTestParameters(workloads, corrupt)
{
    static int idx[64];
    size_t n = 0;
    for (int wi = 0; wi < al_workload_count() && wi < 64; wi++) idx[n++] = wi;
    return cr_make_param_array(int, idx, n);
}

ParameterizedTest(int *wi, workloads, corrupt, .timeout = 60)
{
    const al_workload *w = al_workload_at(*wi);
    int ti = tiny_index(w->name);
    if (ti < 0) cr_skip_test("%s has no tiny configuration here", w->name);
    const char *set = tiny_configs[ti].corrupt;
    al_wl_ctx ctx;
    /* One thread: the damage lands in the thread that wrote the block (no data race). */
    int rc = run_once(w, &corrupt_backend, 1, 42, set, strlen(set), &ctx);
    cr_assert_gt(corrupt_hits, 0, "%s: the corrupting backend never struck", w->name);
    cr_assert_eq(rc, -1, "%s passed although %lu live blocks were damaged", w->name,
                 corrupt_hits);
    cr_assert(strstr(ctx.err, "corrupt") || strstr(ctx.err, "does not hold"),
              "%s failed, but not with a data error: %s", w->name, ctx.err);
}

/* The same corrupting backend must leave a workload alone when it makes no block that big. */
Test(workloads, corrupt_spares_small_blocks)
{
    const al_workload *w = al_workload_find("threadtest");
    cr_assert(w);
    al_wl_ctx ctx;
    const char *set = "iterations=2 objects=200 size=64";
    cr_assert_eq(run_once(w, &corrupt_backend, 1, 42, set, strlen(set), &ctx), 0, "%s", ctx.err);
    cr_assert_eq(corrupt_hits, 0);
}

/* Peak live bytes where the answer is exact. */
Test(workloads, peak_exact)
{
    const al_backend *b = al_backend_find("libc");
    cr_assert(b);
    struct {
        const char *wl, *set;
        int threads;
        uint64_t peak;
    } cases[] = {
        {"threadtest", "iterations=2 objects=1000 size=16", 1, 16000},
        {"sizeclass", "allocs=500 keep=64 size=1024", 1, 65536},
        {"cache-thrash", "iterations=4 repetitions=2 size=100", 1, 200},
        {"larson", "ops=100 slots=10 min=32 max=32 rounds=2", 2, 640},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const al_workload *w = al_workload_find(cases[i].wl);
        cr_assert(w);
        al_wl_ctx ctx;
        cr_assert_eq(run_once(w, b, cases[i].threads, 7, cases[i].set, strlen(cases[i].set),
                              &ctx), 0, "%s", ctx.err);
        cr_expect_eq(ctx.peak_live, cases[i].peak, "%s [%s] T=%d: peak_live %llu, expected %llu",
                     cases[i].wl, cases[i].set, cases[i].threads,
                     (unsigned long long)ctx.peak_live, (unsigned long long)cases[i].peak);
    }
}
