/* cache_scratch.c - passive false sharing, after Hoard's cache-scratch (Berger et al., ASPLOS
 * 2000; benchmarks/cache-scratch in the Hoard repository).
 *
 * One thread allocates T small objects back to back (so neighbours share cache lines) and
 * hands object i to worker i. Each worker frees the object it was given, then runs the
 * cache-thrash loop: allocate an object, write every byte `repetitions` times, free it. An
 * allocator that gives a freed block back to the thread that freed it (rather than to the one
 * whose heap it came from) puts the workers' objects on the lines the first thread carved:
 * passive false sharing, induced by the program's frees rather than by the allocator's own
 * placement. What it stresses: where remotely allocated, locally freed blocks go.
 *
 * Differences from the original: the main thread of the original allocates the objects; here
 * the calling thread only coordinates, so worker 0 allocates all T objects (stamped) before a
 * barrier, and each worker reads its object's stamp back before freeing it. The rest is the
 * cache-thrash loop (see cache_thrash.c: volatile byte stores, read-back checksum, a canary
 * block per worker). Total work fixed and split across the workers, as in the original.
 * Live bytes: per-worker deltas published through wl_live (the T handed-out objects, then a
 * canary and an object per worker).
 */
#include "wl_internal.h"

#include <pthread.h>
#include <stdlib.h>

enum { P_ITERATIONS, P_REPETITIONS, P_SIZE };

static const al_param_def cache_scratch_params[] = {
    [P_ITERATIONS] = {"iterations", 1000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                      "objects allocated, written and freed, split across the workers"},
    [P_REPETITIONS] = {"repetitions", 40000, 1, 1LL << 40, NULL, 0,
                       "times each byte of an object is written"},
    [P_SIZE] = {"size", 8, 1, 1 << 20, NULL, AL_PARAM_BYTES, "object size"},
};

typedef struct cs_shared {
    wl_live live;
    pthread_barrier_t bar;
    unsigned char **given; /* given[i]: worker i's object, allocated by worker 0 */
    size_t size;
    uint64_t per_thread, reps;
    int threads;
} cs_shared;

/* The id of the object handed to worker i. Can't fail. */
static inline uint64_t cs_given_id(uint64_t seed, int i)
{
    return (UINT64_C(3) << 46) + (wl_mix(seed) & 0xFFFFFFFFFFu) + (uint64_t)i;
}

/* Worker 0 allocates the handed-out objects; after the barrier each worker frees its own
 * and runs the thrash loop. Can't fail (OOM sets the worker's error). */
static void cs_worker(wl_worker *w)
{
    cs_shared *sh = w->shared;
    const al_backend *b = w->ctx->b;
    void *heap = w->ctx->heap;
    wl_live_tl lt = {.sh = &sh->live};
    if (w->id == 0) {
        for (int i = 0; i < sh->threads; i++) {
            unsigned char *p = b->alloc(heap, sh->size);
            w->ops++;
            if (!p) {
                wl_worker_fail(w, "allocation of %zu bytes failed (out of memory)", sh->size);
                break;
            }
            wl_stamp(p, sh->size, cs_given_id(w->ctx->seed, i));
            sh->given[i] = p;
            wl_live_add(&lt, (int64_t)sh->size);
        }
    }
    wl_live_flush(&lt);
    pthread_barrier_wait(&sh->bar);
    unsigned char *mine = sh->given[w->id];
    if (mine) {
        w->sum += wl_stamp_read(mine, sh->size);
        w->expect += wl_stamp_expect(sh->size, cs_given_id(w->ctx->seed, w->id));
        b->free(heap, mine, sh->size);
        w->ops++;
        wl_live_add(&lt, -(int64_t)sh->size);
        wl_thrash_loop(w, &lt, sh->size, sh->per_thread, sh->reps);
    }
    wl_live_flush(&lt);
}

/* Returns 0, or -1 with ctx->err set (OOM, thread creation, corrupted data). */
static int cache_scratch_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    cs_shared sh = {.size = (size_t)ctx->p[P_SIZE], .reps = (uint64_t)ctx->p[P_REPETITIONS],
                    .threads = t};
    sh.per_thread = (uint64_t)ctx->p[P_ITERATIONS] / (uint64_t)t;
    if (sh.per_thread == 0) sh.per_thread = 1;
    wl_worker *w = wl_workers_new(t);
    sh.given = calloc((size_t)t, sizeof *sh.given);
    if (!w || !sh.given) {
        free(w);
        free(sh.given);
        return wl_fail(ctx, "bookkeeping for %d workers: out of memory", t);
    }
    for (int i = 0; i < t; i++) w[i].shared = &sh;
    pthread_barrier_init(&sh.bar, NULL, (unsigned)t);
    int rc = wl_team_run(ctx, t, w, cs_worker);
    pthread_barrier_destroy(&sh.bar);
    ctx->peak_live = atomic_load(&sh.live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "handed-out objects, written objects, canaries");
    free(sh.given);
    free(w);
    return rc;
}

const al_workload al_workload_cache_scratch = {
    .name = "cache-scratch",
    .desc = "Hoard cache-scratch: objects allocated by one thread, freed by the others, who then "
            "allocate and write their own (passive false sharing)",
    .params = cache_scratch_params,
    .nparams = (int)(sizeof cache_scratch_params / sizeof cache_scratch_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = cache_scratch_run,
};
