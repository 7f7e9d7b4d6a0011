/* fragment.c - mixed lifetimes and sizes, then phases of large frees: how much memory an
 * allocator keeps for the bytes a program holds (RSS / live bytes).
 *
 * Not a port of one published benchmark: the pattern is the one fragmentation studies
 * (Johnstone & Wilson, "The Memory Fragmentation Problem: Solved?", ISMM 1998; Robson's worst
 * cases) show to hurt: short-lived small objects interleaved with long-lived objects of mixed
 * sizes, so the survivors end up scattered among holes when many of them die at once.
 * One phase: `per_phase` short-lived objects of `small_min`..`small_max` bytes, each freed
 * `window` allocations later; every `long_every`-th allocation is also a long-lived object of
 * `large_min`..`large_max` bytes, kept. At the end of the phase, each long-lived object is
 * freed with probability `free_pct` percent (a phase of large frees); the survivors stay into
 * the next phase. The held set settles around (objects per phase) x (100 / free_pct - 1)
 * long-lived objects while the holes they leave get refilled with other sizes.
 * What it stresses: reuse of freed space across size classes and lifetimes (coalescing,
 * span/page release), peak live bytes against peak RSS (the harness reports both).
 * Every object is filled in full with a per-object value (RSS must mean touched pages) and its
 * first and last bytes are read back into the checksum before it is freed; everything still
 * held at the end is freed (measured) the same way.
 */
#include "wl_internal.h"

#include <stdlib.h>

enum { P_PHASES, P_PER_PHASE, P_WINDOW, P_LONG_EVERY, P_FREE_PCT, P_SMALL_MIN, P_SMALL_MAX,
       P_LARGE_MIN, P_LARGE_MAX };

static const al_param_def fragment_params[] = {
    [P_PHASES] = {"phases", 50, 1, 1LL << 32, NULL, AL_PARAM_SCALED,
                  "phases (allocations then a wave of large frees)"},
    [P_PER_PHASE] = {"per_phase", 20000, 1, 1LL << 32, NULL, 0, "allocations per phase"},
    [P_WINDOW] = {"window", 64, 1, 1 << 24, NULL, 0,
                  "short-lived objects die this many allocations later"},
    [P_LONG_EVERY] = {"long_every", 8, 1, 1 << 24, NULL, 0,
                      "every n-th allocation also makes a long-lived object"},
    [P_FREE_PCT] = {"free_pct", 50, 1, 100, NULL, 0,
                    "percent of long-lived objects freed at each phase end"},
    [P_SMALL_MIN] = {"small_min", 16, 1, 1 << 24, NULL, AL_PARAM_BYTES, "short-lived min"},
    [P_SMALL_MAX] = {"small_max", 256, 1, 1 << 24, NULL, AL_PARAM_BYTES, "short-lived max"},
    [P_LARGE_MIN] = {"large_min", 256, 1, 1 << 28, NULL, AL_PARAM_BYTES, "long-lived min"},
    [P_LARGE_MAX] = {"large_max", 16384, 1, 1 << 28, NULL, AL_PARAM_BYTES, "long-lived max"},
};

typedef struct fr_obj {
    unsigned char *p;
    size_t size;
    unsigned char v;
} fr_obj;

typedef struct frag {
    al_wl_ctx *ctx;
    uint64_t live, sum, expect, serial;
} frag;

/* A filled object of `size` bytes into *o. Returns 0, -1 on OOM (*o cleared). */
static int fr_new(frag *f, fr_obj *o, size_t size)
{
    o->p = f->ctx->b->alloc(f->ctx->heap, size);
    f->ctx->ops++;
    if (!o->p) return -1;
    o->size = size;
    o->v = (unsigned char)(wl_mix(f->serial++ + wl_mix(f->ctx->seed)) | 1);
    memset(o->p, o->v, size);
    f->live += size;
    if (f->live > f->ctx->peak_live) f->ctx->peak_live = f->live;
    return 0;
}

/* Read o back and free it (no-op when empty). Can't fail. */
static void fr_release(frag *f, fr_obj *o)
{
    if (!o->p) return;
    f->sum += wl_mix((uint64_t)o->p[0] << 8 | o->p[o->size - 1] | (uint64_t)o->size << 16);
    f->expect += wl_mix((uint64_t)o->v << 8 | o->v | (uint64_t)o->size << 16);
    f->ctx->b->free(f->ctx->heap, o->p, o->size);
    f->ctx->ops++;
    f->live -= o->size;
    o->p = NULL;
}

/* Returns 0, or -1 with ctx->err set (bad sizes, OOM, corrupted data). */
static int fragment_run(al_wl_ctx *ctx)
{
    const uint64_t phases = (uint64_t)ctx->p[P_PHASES], per = (uint64_t)ctx->p[P_PER_PHASE];
    const size_t window = (size_t)ctx->p[P_WINDOW];
    const uint64_t every = (uint64_t)ctx->p[P_LONG_EVERY], free_pct = (uint64_t)ctx->p[P_FREE_PCT];
    const uint64_t smin = (uint64_t)ctx->p[P_SMALL_MIN], smax = (uint64_t)ctx->p[P_SMALL_MAX];
    const uint64_t lmin = (uint64_t)ctx->p[P_LARGE_MIN], lmax = (uint64_t)ctx->p[P_LARGE_MAX];
    if (smin > smax || lmin > lmax)
        return wl_fail(ctx, "fragment: small_min > small_max or large_min > large_max");
    /* The long-lived set before a wave holds what one phase adds plus the survivors: about
     * (per/every) x (100/free_pct) entries on average. Sized with headroom once; should a run
     * of unlucky waves still fill it, the newest long-lived object dies early (below). */
    size_t cap = (size_t)(per / every + 1) * (size_t)(100 / free_pct + 2);
    frag f = {.ctx = ctx};
    al_rng r;
    wl_rng_stream(&r, ctx->seed, 0, 0);

    al_wl_pause(ctx);
    fr_obj *ring = calloc(window, sizeof *ring), *held = calloc(cap, sizeof *held);
    al_wl_resume(ctx);
    int rc = 0;
    size_t nheld = 0;
    if (!ring || !held) {
        rc = wl_fail(ctx, "bookkeeping for %zu + %zu objects: out of memory", window, cap);
        goto out;
    }
    uint64_t k = 0;
    for (uint64_t ph = 0; ph < phases && !rc; ph++) {
        for (uint64_t i = 0; i < per; i++, k++) {
            fr_obj *s = &ring[k % window];
            fr_release(&f, s);
            if (fr_new(&f, s, (size_t)al_rng_range(&r, smin, smax))) goto oom;
            if (k % every == every - 1) {
                if (nheld == cap) fr_release(&f, &held[--nheld]);
                if (fr_new(&f, &held[nheld], (size_t)al_rng_range(&r, lmin, lmax))) goto oom;
                nheld++;
            }
        }
        /* The wave of large frees; survivors keep their order. */
        size_t kept = 0;
        for (size_t j = 0; j < nheld; j++) {
            if (al_rng_range(&r, 1, 100) <= free_pct) fr_release(&f, &held[j]);
            else held[kept++] = held[j];
        }
        nheld = kept;
    }
    goto done;
oom:
    rc = wl_fail(ctx, "allocation failed (out of memory) at %llu live bytes",
                 (unsigned long long)f.live);
done:
    for (size_t j = 0; j < window; j++) fr_release(&f, &ring[j]);
    for (size_t j = 0; j < nheld; j++) fr_release(&f, &held[j]);
    if (!rc) rc = wl_verify_sum(ctx, f.sum, f.expect, "object fills");
out:
    al_wl_pause(ctx);
    free(ring);
    free(held);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_fragment = {
    .name = "fragment",
    .desc = "mixed lifetimes: short-lived small objects interleaved with long-lived 256 B..16 KiB "
            "ones, waves of large frees (RSS / live bytes)",
    .params = fragment_params,
    .nparams = (int)(sizeof fragment_params / sizeof fragment_params[0]),
    .multithreaded = 0,
    .bench_matrix = "",
    .run = fragment_run,
};
