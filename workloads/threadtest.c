/* threadtest.c - thread-local allocation throughput, after Hoard's threadtest (Berger, McKinley,
 * Blumofe and Wilson, "Hoard: A Scalable Memory Allocator for Multithreaded Applications",
 * ASPLOS 2000; benchmarks/threadtest in the Hoard repository).
 *
 * Each of T workers repeats `iterations` rounds of: allocate objects/T objects of `size`
 * bytes, then free them all, in allocation order. No object ever leaves its thread, so a
 * scalable allocator (per-thread caches, per-thread heaps) should scale linearly, while one
 * global lock serialises the workers. What it stresses: the thread-local alloc/free fast
 * paths, and a free list refilled and drained in bulk each round.
 *
 * As in the original the total work is fixed and split across the workers (objects/T each),
 * so the ideal time is constant in T on enough cores. Differences from the original: the
 * original's Foo objects get two int fields written by their constructor; here each object is
 * stamped (its id in the first 8 bytes and a pattern byte at its end, pattern bytes
 * throughout below 16 bytes) and the stamp is read back and folded into the checksum just
 * before the object is freed. The original's optional busy-work loop between operations is not
 * reproduced. Live bytes: per-worker deltas published to one relaxed atomic every 64
 * operations (wl_live), so peak_live is exact to within 64 operations per worker.
 */
#include "wl_internal.h"

#include <stdlib.h>

enum { P_ITERATIONS, P_OBJECTS, P_SIZE };

static const al_param_def threadtest_params[] = {
    [P_ITERATIONS] = {"iterations", 40, 1, 1LL << 32, NULL, AL_PARAM_SCALED,
                      "rounds of allocate-all then free-all per worker"},
    [P_OBJECTS] = {"objects", 100000, 1, 1LL << 30, NULL, 0,
                   "objects per round, split across the workers"},
    [P_SIZE] = {"size", 8, 1, 1 << 20, NULL, AL_PARAM_BYTES, "object size"},
};

typedef struct tt_shared {
    al_wl_ctx *ctx;
    wl_live live;
    size_t per_thread, size;
    uint64_t iterations;
    uint64_t salt; /* from the seed: object ids (and so the stamps) depend on it */
} tt_shared;

/* One worker's rounds. On OOM sets the worker's error and stops (what it holds is freed). */
static void tt_worker(wl_worker *w)
{
    tt_shared *sh = w->shared;
    const al_backend *b = sh->ctx->b;
    void *heap = sh->ctx->heap;
    const size_t n = sh->per_thread, size = sh->size;
    wl_live_tl lt = {.sh = &sh->live};
    unsigned char **objs = malloc(n * sizeof *objs); /* bookkeeping, n <= 2^30 */
    if (!objs) {
        wl_worker_fail(w, "bookkeeping array of %zu pointers: out of memory", n);
        return;
    }
    uint64_t ops = 0, sum = 0, expect = 0;
    for (uint64_t it = 0; it < sh->iterations; it++) {
        uint64_t base = (((uint64_t)w->id << 56) ^ (it << 30)) + sh->salt;
        size_t got = 0;
        for (; got < n; got++) {
            unsigned char *p = b->alloc(heap, size);
            ops++;
            if (!p) break;
            wl_stamp(p, size, base + got);
            objs[got] = p;
            wl_live_add(&lt, (int64_t)size);
        }
        for (size_t j = 0; j < got; j++) {
            sum += wl_stamp_read(objs[j], size);
            expect += wl_stamp_expect(size, base + j);
            b->free(heap, objs[j], size);
            ops++;
            wl_live_add(&lt, -(int64_t)size);
        }
        if (got < n) {
            wl_worker_fail(w, "allocation %zu of %zu bytes failed (out of memory)", got, size);
            break;
        }
    }
    wl_live_flush(&lt);
    free(objs);
    w->ops = ops;
    w->sum = sum;
    w->expect = expect;
}

/* Returns 0, or -1 with ctx->err set (OOM, thread creation, corrupted data). */
static int threadtest_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    tt_shared sh = {.ctx = ctx, .size = (size_t)ctx->p[P_SIZE],
                    .iterations = (uint64_t)ctx->p[P_ITERATIONS],
                    .salt = wl_mix(ctx->seed) & ~(UINT64_C(0xFF) << 56)};
    sh.per_thread = (size_t)ctx->p[P_OBJECTS] / (size_t)t;
    if (sh.per_thread == 0) sh.per_thread = 1;
    wl_worker *w = wl_workers_new(t);
    if (!w) return wl_fail(ctx, "bookkeeping for %d workers: out of memory", t);
    for (int i = 0; i < t; i++) w[i].shared = &sh;
    int rc = wl_team_run(ctx, t, w, tt_worker);
    ctx->peak_live = atomic_load(&sh.live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "object stamps");
    free(w);
    return rc;
}

const al_workload al_workload_threadtest = {
    .name = "threadtest",
    .desc = "Hoard threadtest: each thread allocates a batch of small objects then frees it, in "
            "rounds (thread-local throughput and scaling)",
    .params = threadtest_params,
    .nparams = (int)(sizeof threadtest_params / sizeof threadtest_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = threadtest_run,
};
