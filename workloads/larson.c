/* larson.c - server simulation, after Larson & Krishnan, "Memory Allocation for Long-Running
 * Server Applications" (ISMM 1998), as distributed with Hoard and mimalloc-bench.
 *
 * Each of T workers owns, in turn, one slot array of `slots` objects of random size in
 * [min, max]. An operation picks a random slot, frees its object and allocates a new one of a
 * random size there. The slot arrays move between workers, so most objects are freed by a
 * thread that did not allocate them. What it stresses: cross-thread frees (remote free lists,
 * ownership transfer) under a steady, randomly replaced working set; per-thread caches that
 * never give memory back to the thread that will need it; blowup.
 *
 * Differences from the original:
 *   - a fixed operation count (`ops` replacements in all, split across workers and rounds),
 *     not a fixed wall time, so the case is deterministic and its figures comparable;
 *   - the original hands an array to a newly created thread when the old thread exits; here
 *     the T workers live for the whole run and, after `rounds` barriers, rotate the arrays:
 *     in round r worker t works on array (t + r + 1) mod T (so with T >= 2 even round 0 frees
 *     another thread's objects). Thread creation/exit cost is therefore not part of it;
 *   - every array is first filled by its owner (measured), not by the main thread untimed;
 *   - the touch: the original writes 2 bytes of each new object; here its id goes in the first
 *     8 bytes and a pattern byte at the end (pattern bytes throughout below 16 bytes), read
 *     back and folded into the checksum when the object is freed. Frees carry the size.
 * Random sizes and slots come from a generator seeded per (array, round), so the objects and
 * the checksum depend only on the seed and T, never on the schedule.
 * Live bytes: per-worker deltas published to one relaxed atomic every 64 operations (wl_live).
 */
#include "wl_internal.h"

#include <pthread.h>
#include <stdlib.h>

enum { P_OPS, P_SLOTS, P_MIN, P_MAX, P_ROUNDS };

static const al_param_def larson_params[] = {
    [P_OPS] = {"ops", 5000000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
               "slot replacements (free + alloc) in all, split across workers and rounds"},
    [P_SLOTS] = {"slots", 2000, 1, 1 << 24, NULL, 0, "objects in each worker's slot array"},
    [P_MIN] = {"min", 8, 1, 1 << 24, NULL, AL_PARAM_BYTES, "smallest object"},
    [P_MAX] = {"max", 1000, 1, 1 << 24, NULL, AL_PARAM_BYTES, "largest object"},
    [P_ROUNDS] = {"rounds", 20, 1, 1 << 20, NULL, 0,
                  "times the slot arrays move to another worker"},
};

typedef struct lr_slot {
    unsigned char *p; /* NULL when an allocation failed */
    uint32_t size;
    uint64_t id;
} lr_slot;

typedef struct lr_array {
    lr_slot *slot;
    uint64_t next_id;
} lr_array;

typedef struct lr_shared {
    al_wl_ctx *ctx;
    wl_live live;
    pthread_barrier_t bar;
    lr_array *arrays;
    size_t slots;
    uint32_t min, max;
    uint64_t per_round; /* replacements per worker per round */
    int rounds, threads;
} lr_shared;

typedef struct lr_local {
    wl_worker *w;
    lr_shared *sh;
    wl_live_tl lt;
    uint64_t ops, sum, expect;
} lr_local;

/* Free slot s (reading its stamp back first). Can't fail. */
static inline void lr_release(lr_local *l, lr_slot *s)
{
    if (!s->p) return;
    l->sum += wl_stamp_read(s->p, s->size);
    l->expect += wl_stamp_expect(s->size, s->id);
    l->sh->ctx->b->free(l->sh->ctx->heap, s->p, s->size);
    l->ops++;
    wl_live_add(&l->lt, -(int64_t)s->size);
    s->p = NULL;
}

/* Fill slot s with a new object of `size` bytes. Returns 0, or -1 (worker failed) on OOM. */
static inline int lr_fill(lr_local *l, lr_array *a, lr_slot *s, uint32_t size)
{
    unsigned char *p = l->sh->ctx->b->alloc(l->sh->ctx->heap, size);
    l->ops++;
    if (!p) {
        wl_worker_fail(l->w, "allocation of %u bytes failed (out of memory)", (unsigned)size);
        return -1;
    }
    s->p = p;
    s->size = size;
    s->id = a->next_id++;
    wl_stamp(p, size, s->id);
    wl_live_add(&l->lt, size);
    return 0;
}

/* Fill my array, then `rounds` rounds on the arrays passed round; free the last one. On OOM
 * sets the worker's error and keeps meeting the barriers without working. */
static void lr_worker(wl_worker *w)
{
    lr_shared *sh = w->shared;
    lr_local l = {w, sh, {.sh = &sh->live}, 0, 0, 0};
    const int t = sh->threads, me = w->id;
    al_rng r;

    /* Fill my own array. */
    lr_array *own = &sh->arrays[me];
    wl_rng_stream(&r, sh->ctx->seed, (uint64_t)me, 0);
    for (size_t i = 0; i < sh->slots && !w->failed; i++)
        lr_fill(&l, own, &own->slot[i], (uint32_t)al_rng_range(&r, sh->min, sh->max));

    int a = me;
    for (int round = 0; round < sh->rounds; round++) {
        wl_live_flush(&l.lt); /* publish at the phase boundary: peaks seen exactly */
        pthread_barrier_wait(&sh->bar); /* the previous user of my next array is done */
        a = (me + round + 1) % t;
        lr_array *arr = &sh->arrays[a];
        wl_rng_stream(&r, sh->ctx->seed, (uint64_t)a, (uint64_t)round + 1);
        for (uint64_t k = 0; k < sh->per_round && !w->failed; k++) {
            lr_slot *s = &arr->slot[al_rng_range(&r, 0, sh->slots - 1)];
            uint32_t size = (uint32_t)al_rng_range(&r, sh->min, sh->max);
            lr_release(&l, s);
            lr_fill(&l, arr, s, size);
        }
    }
    pthread_barrier_wait(&sh->bar);
    /* Free the array I used last (every array is some worker's last one). */
    lr_array *last = &sh->arrays[a];
    for (size_t i = 0; i < sh->slots; i++) lr_release(&l, &last->slot[i]);
    wl_live_flush(&l.lt);
    w->ops = l.ops;
    w->sum = l.sum;
    w->expect = l.expect;
}

/* Returns 0, or -1 with ctx->err set (bad sizes, OOM, thread creation, corrupted data). */
static int larson_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    lr_shared sh = {.ctx = ctx, .slots = (size_t)ctx->p[P_SLOTS],
                    .min = (uint32_t)ctx->p[P_MIN], .max = (uint32_t)ctx->p[P_MAX],
                    .rounds = (int)ctx->p[P_ROUNDS], .threads = t};
    if (sh.min > sh.max) return wl_fail(ctx, "larson: min (%u) > max (%u)", sh.min, sh.max);
    sh.per_round = (uint64_t)ctx->p[P_OPS] / ((uint64_t)t * (uint64_t)sh.rounds);
    if (sh.per_round == 0) sh.per_round = 1;

    al_wl_pause(ctx);
    int rc = -1;
    wl_worker *w = wl_workers_new(t);
    sh.arrays = calloc((size_t)t, sizeof *sh.arrays);
    int ok = w && sh.arrays;
    for (int i = 0; ok && i < t; i++)
        ok = (sh.arrays[i].slot = calloc(sh.slots, sizeof(lr_slot))) != NULL;
    if (!ok) {
        wl_fail(ctx, "bookkeeping for %d slot arrays of %zu: out of memory", t, sh.slots);
        goto out;
    }
    for (int i = 0; i < t; i++) {
        w[i].shared = &sh;
        sh.arrays[i].next_id = (uint64_t)i << 48;
    }
    pthread_barrier_init(&sh.bar, NULL, (unsigned)t);
    al_wl_resume(ctx);
    rc = wl_team_run(ctx, t, w, lr_worker);
    al_wl_pause(ctx);
    pthread_barrier_destroy(&sh.bar);
    ctx->peak_live = atomic_load(&sh.live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "slot objects");
out:
    for (int i = 0; sh.arrays && i < t; i++) free(sh.arrays[i].slot);
    free(sh.arrays);
    free(w);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_larson = {
    .name = "larson",
    .desc = "Larson & Krishnan server simulation: random slot replacement, slot arrays passed "
            "between threads (cross-thread frees), fixed op count",
    .params = larson_params,
    .nparams = (int)(sizeof larson_params / sizeof larson_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = larson_run,
};
