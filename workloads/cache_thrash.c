/* cache_thrash.c - active false sharing, after Hoard's cache-thrash (Berger et al., ASPLOS
 * 2000; benchmarks/cache-thrash in the Hoard repository).
 *
 * Each of T workers repeatedly allocates one small object (`size` bytes, 8 by default),
 * writes every byte of it `repetitions` times (reading each byte back) and frees it. Nothing
 * is shared by the program; but an allocator that carves consecutive small blocks for
 * different threads out of one cache line (one global free list, one shared arena) makes the
 * threads' writes fight over that line: active false sharing. A good allocator keeps each
 * thread's objects on its own lines, and the time stays flat as T grows (on enough cores).
 * What it stresses: the placement of concurrently allocated small blocks, not the speed of
 * malloc (there are few allocations and many writes).
 *
 * As in the original the total work is fixed and split across the workers (iterations/T
 * objects each), so the ideal time is constant in T. Differences from the original: byte
 * stores and loads go through a volatile pointer so no compiler can merge or drop them; the
 * values written depend on the object and the repetition, and the final contents are read back
 * into the checksum before the free; each worker also holds a canary block of the same size,
 * stamped at its start and read back at its end: with one object live at a time, the canary is
 * what catches a backend handing out memory that is still in use. Live bytes: the canary and
 * the object, per-worker deltas published through wl_live (exact: 2 x size x T at most).
 */
#include "wl_internal.h"

#include <stdlib.h>

enum { P_ITERATIONS, P_REPETITIONS, P_SIZE };

static const al_param_def cache_thrash_params[] = {
    [P_ITERATIONS] = {"iterations", 1000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                      "objects allocated, written and freed, split across the workers"},
    [P_REPETITIONS] = {"repetitions", 40000, 1, 1LL << 40, NULL, 0,
                       "times each byte of an object is written"},
    [P_SIZE] = {"size", 8, 1, 1 << 20, NULL, AL_PARAM_BYTES, "object size"},
};

/* The byte written at offset k of object id in repetition rep. Can't fail. */
static inline unsigned char thrash_byte(uint64_t id, uint64_t rep, size_t k)
{
    return (unsigned char)(id * 31u + rep * 7u + k);
}

/* See wl_internal.h. */
void wl_thrash_loop(wl_worker *w, wl_live_tl *lt, size_t size, uint64_t iters, uint64_t reps)
{
    const al_backend *b = w->ctx->b;
    void *heap = w->ctx->heap;
    const uint64_t salt = wl_mix(w->ctx->seed) & ((UINT64_C(1) << 40) - 1);
    const uint64_t canary_id = (((uint64_t)w->id << 48) | (UINT64_C(1) << 47)) + salt;
    unsigned char *canary = b->alloc(heap, size);
    w->ops++;
    if (!canary) {
        wl_worker_fail(w, "allocation of %zu bytes failed (out of memory)", size);
        return;
    }
    wl_stamp(canary, size, canary_id);
    wl_live_add(lt, (int64_t)size);

    for (uint64_t it = 0; it < iters; it++) {
        uint64_t id = ((uint64_t)w->id << 48) + it + salt;
        volatile unsigned char *obj = b->alloc(heap, size);
        w->ops++;
        if (!obj) {
            wl_worker_fail(w, "allocation of %zu bytes failed (out of memory)", size);
            break;
        }
        wl_live_add(lt, (int64_t)size);
        for (uint64_t r = 0; r < reps; r++) {
            for (size_t k = 0; k < size; k++) {
                obj[k] = thrash_byte(id, r, k);
                (void)obj[k]; /* the original's read-back: a real load (volatile) */
            }
        }
        /* Read back what the last repetition wrote. */
        uint64_t h = 0, e = 0;
        for (size_t k = 0; k < size; k++) {
            h = h * 257 + obj[k];
            e = e * 257 + thrash_byte(id, reps - 1, k);
        }
        w->sum += wl_mix(h);
        w->expect += wl_mix(e);
        b->free(heap, (void *)obj, size);
        w->ops++;
        wl_live_add(lt, -(int64_t)size);
    }

    w->sum += wl_stamp_read(canary, size);
    w->expect += wl_stamp_expect(size, canary_id);
    b->free(heap, canary, size);
    w->ops++;
    wl_live_add(lt, -(int64_t)size);
}

typedef struct ct_shared {
    wl_live live;
    size_t size;
    uint64_t per_thread, reps;
} ct_shared;

/* One worker's share of the loop. Can't fail (OOM sets the worker's error). */
static void ct_worker(wl_worker *w)
{
    ct_shared *sh = w->shared;
    wl_live_tl lt = {.sh = &sh->live};
    wl_thrash_loop(w, &lt, sh->size, sh->per_thread, sh->reps);
    wl_live_flush(&lt);
}

/* Returns 0, or -1 with ctx->err set (OOM, thread creation, corrupted data). */
static int cache_thrash_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    ct_shared sh = {.size = (size_t)ctx->p[P_SIZE], .reps = (uint64_t)ctx->p[P_REPETITIONS]};
    sh.per_thread = (uint64_t)ctx->p[P_ITERATIONS] / (uint64_t)t;
    if (sh.per_thread == 0) sh.per_thread = 1;
    wl_worker *w = wl_workers_new(t);
    if (!w) return wl_fail(ctx, "bookkeeping for %d workers: out of memory", t);
    for (int i = 0; i < t; i++) w[i].shared = &sh;
    int rc = wl_team_run(ctx, t, w, ct_worker);
    ctx->peak_live = atomic_load(&sh.live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "written objects and canaries");
    free(w);
    return rc;
}

const al_workload al_workload_cache_thrash = {
    .name = "cache-thrash",
    .desc = "Hoard cache-thrash: each thread allocates a small object, writes it many times, "
            "frees it (active false sharing)",
    .params = cache_thrash_params,
    .nparams = (int)(sizeof cache_thrash_params / sizeof cache_thrash_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = cache_thrash_run,
};
