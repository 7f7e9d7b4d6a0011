/* pareto.c - heavy-tailed sizes over a working set, in the style of ithare's alloc-test
 * (S. Ignatchenko, "Testing Memory Allocators: ptmalloc2 vs tcmalloc vs hoard vs jemalloc
 * While Trying to Simulate Real-World Loads", IT Hare, 2018).
 *
 * Most objects real programs allocate are small and a few are large: sizes here follow a
 * Pareto (power-law) distribution, density proportional to size^-(alpha+1), on
 * [min, max] = [8, 1024] bytes (alpha = alpha_x100 / 100 = 1.2: half the objects are under
 * ~14 bytes, a few percent over 100). Each of T workers holds a working set of `live` objects
 * in a ring: every operation frees the oldest object and allocates a new one in its slot, so
 * every object lives exactly `live` allocations. What it stresses: the small-size classes in
 * the proportions programs use them, with a working set bigger than a thread cache's
 * (10000 objects by default) and a realistic spread of sizes within and across classes.
 *
 * Differences from alloc-test: a FIFO ring (fixed lifetime) instead of random replacement,
 * per-thread working sets only (alloc-test also has a shared mode), and sizes drawn from an
 * inverse-CDF table of 4096 entries built before the measured region (so sampling costs one
 * table load). Every object is filled in full with a per-object value; its first and last
 * bytes are read back into the checksum before it is freed. The total operation count is split
 * across the workers. Live bytes: per-worker deltas published through wl_live.
 */
#include "wl_internal.h"

#include <math.h>
#include <stdlib.h>

enum { P_OPS, P_LIVE, P_MIN, P_MAX, P_ALPHA };

static const al_param_def pareto_params[] = {
    [P_OPS] = {"ops", 5000000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
               "allocations in all (each frees the oldest), split across the workers"},
    [P_LIVE] = {"live", 10000, 1, 1 << 26, NULL, 0, "working set per worker (ring of objects)"},
    [P_MIN] = {"min", 8, 1, 1 << 24, NULL, AL_PARAM_BYTES, "smallest size"},
    [P_MAX] = {"max", 1024, 1, 1 << 24, NULL, AL_PARAM_BYTES, "largest size"},
    [P_ALPHA] = {"alpha_x100", 120, 10, 1000, NULL, 0, "Pareto tail index alpha, times 100"},
};

#define PT_TABLE 4096

typedef struct pt_obj {
    unsigned char *p;
    uint32_t size;
    unsigned char v;
} pt_obj;

typedef struct pt_shared {
    wl_live live;
    uint32_t table[PT_TABLE]; /* inverse CDF: table[u] = size at quantile (u + 0.5) / 4096 */
    uint64_t per_thread;
    size_t ring;
} pt_shared;

/* Fill sh->table for sizes [lo, hi] with density ~ s^-(alpha+1). Returns 0, -1 on OOM. */
static int pt_table(pt_shared *sh, uint32_t lo, uint32_t hi, double alpha)
{
    size_t n = (size_t)hi - lo + 1;
    double *cdf = malloc(n * sizeof *cdf);
    if (!cdf) return -1;
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += pow((double)(lo + i), -(alpha + 1));
        cdf[i] = acc;
    }
    size_t s = 0;
    for (size_t u = 0; u < PT_TABLE; u++) {
        double q = ((double)u + 0.5) / PT_TABLE * acc;
        while (s + 1 < n && cdf[s] < q) s++;
        sh->table[u] = lo + (uint32_t)s;
    }
    free(cdf);
    return 0;
}

/* Read o back and free it (no-op when empty). Can't fail. */
static void pt_release(wl_worker *w, wl_live_tl *lt, pt_obj *o)
{
    if (!o->p) return;
    w->sum += wl_mix((uint64_t)o->p[0] << 8 | o->p[o->size - 1] | (uint64_t)o->size << 16);
    w->expect += wl_mix((uint64_t)o->v << 8 | o->v | (uint64_t)o->size << 16);
    w->ctx->b->free(w->ctx->heap, o->p, o->size);
    w->ops++;
    wl_live_add(lt, -(int64_t)o->size);
    o->p = NULL;
}

/* One worker's ring. Can't fail (OOM sets the worker's error). */
static void pt_worker(wl_worker *w)
{
    pt_shared *sh = w->shared;
    wl_live_tl lt = {.sh = &sh->live};
    pt_obj *ring = calloc(sh->ring, sizeof *ring); /* bookkeeping */
    if (!ring) {
        wl_worker_fail(w, "bookkeeping ring of %zu objects: out of memory", sh->ring);
        return;
    }
    al_rng r;
    wl_rng_stream(&r, w->ctx->seed, (uint64_t)w->id, 0);
    for (uint64_t k = 0; k < sh->per_thread; k++) {
        pt_obj *o = &ring[k % sh->ring];
        pt_release(w, &lt, o);
        uint64_t x = al_rng_next(&r);
        uint32_t size = sh->table[x >> 52]; /* top 12 bits: the quantile */
        o->p = w->ctx->b->alloc(w->ctx->heap, size);
        w->ops++;
        if (!o->p) {
            wl_worker_fail(w, "allocation of %u bytes failed (out of memory)", (unsigned)size);
            break;
        }
        o->size = size;
        o->v = (unsigned char)(x | 1);
        memset(o->p, o->v, size);
        wl_live_add(&lt, size);
    }
    for (size_t j = 0; j < sh->ring; j++) pt_release(w, &lt, &ring[j]);
    wl_live_flush(&lt);
    free(ring);
}

/* Returns 0, or -1 with ctx->err set (bad sizes, OOM, thread creation, corrupted data). */
static int pareto_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    uint32_t lo = (uint32_t)ctx->p[P_MIN], hi = (uint32_t)ctx->p[P_MAX];
    if (lo > hi) return wl_fail(ctx, "pareto: min (%u) > max (%u)", lo, hi);
    al_wl_pause(ctx);
    int rc = -1;
    pt_shared *sh = aligned_alloc(WL_CACHE_LINE, sizeof(pt_shared));
    wl_worker *w = wl_workers_new(t);
    if (!sh || !w) {
        wl_fail(ctx, "bookkeeping for %d workers: out of memory", t);
        goto out;
    }
    memset(sh, 0, sizeof *sh);
    sh->ring = (size_t)ctx->p[P_LIVE];
    sh->per_thread = (uint64_t)ctx->p[P_OPS] / (uint64_t)t;
    if (sh->per_thread == 0) sh->per_thread = 1;
    if (pt_table(sh, lo, hi, (double)ctx->p[P_ALPHA] / 100.0)) {
        wl_fail(ctx, "size table for %u..%u: out of memory", lo, hi);
        goto out;
    }
    for (int i = 0; i < t; i++) w[i].shared = sh;
    al_wl_resume(ctx);
    rc = wl_team_run(ctx, t, w, pt_worker);
    al_wl_pause(ctx);
    ctx->peak_live = atomic_load(&sh->live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "object fills");
out:
    free(sh);
    free(w);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_pareto = {
    .name = "pareto",
    .desc = "alloc-test style: Pareto-distributed sizes 8..1024 B over a per-thread working set "
            "of 10000 objects (FIFO ring)",
    .params = pareto_params,
    .nparams = (int)(sizeof pareto_params / sizeof pareto_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = pareto_run,
};
