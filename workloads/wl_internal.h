/* wl_internal.h - helpers shared by the workload files (not part of the workload interface).
 *
 * Glossary
 *   team      the ctx->threads worker threads of a multi-threaded workload. The calling thread
 *             only coordinates: it starts the team behind a gate (so no worker runs until every
 *             thread exists), joins it, and sums the per-worker results.
 *   wl_live   live-byte accounting shared by a team: each worker adds its alloc/free deltas to
 *             a private counter and publishes them to one relaxed atomic every WL_LIVE_BATCH
 *             operations (and at the end), raising the shared peak with a CAS-max to
 *             (shared live before the publish + the highest point of the worker's own
 *             pending delta). So peak_live is exact with one worker, and with several it
 *             misses only the other workers' unpublished deltas (at most WL_LIVE_BATCH
 *             operations each); the hot path touches the shared line once per
 *             WL_LIVE_BATCH operations.
 *   stamp     the light touch of the classic benchmarks: the object's id in its first 8
 *             bytes and a pattern byte at its last byte (pattern bytes throughout below 16
 *             bytes), so a block that overlaps another live block, or is clobbered, reads
 *             back wrong.
 *
 * Checksums: a workload adds wl_mix(value read back) to `sum` and wl_mix(value written) to
 * `expect`; the case fails with "data corrupted" when they differ. wl_mix makes an accidental
 * cancellation of two wrong values practically impossible.
 */
#ifndef ALLOCLAB_WL_INTERNAL_H
#define ALLOCLAB_WL_INTERNAL_H

#include "workload.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WL_LIVE_BATCH 64
#define WL_CACHE_LINE 64

/* ---- errors ---- */

/* Writes one line to ctx->err and returns -1. Can't fail. */
/* ---- single-threaded accounting and the seed's ConnectionBuffer (bufchurn, request) ---- */

/* One thread's view of the backend: every call counted in ctx->ops, live bytes (as asked)
 * tracked and their peak kept in ctx->peak_live. */
typedef struct wl_st {
    al_wl_ctx *ctx;
    uint64_t live;
} wl_st;

/* alloc through the backend, counted; NULL on OOM. */
static inline void *wl_st_alloc(wl_st *s, size_t n)
{
    void *p = s->ctx->b->alloc(s->ctx->heap, n);
    s->ctx->ops++;
    if (p) {
        s->live += n;
        if (s->live > s->ctx->peak_live) s->ctx->peak_live = s->live;
    }
    return p;
}

/* free through the backend with the size hint, counted. Can't fail. */
static inline void wl_st_free(wl_st *s, void *p, size_t n)
{
    s->ctx->b->free(s->ctx->heap, p, n);
    s->ctx->ops++;
    s->live -= n;
}

/* The seed lecture's ConnectionBuffer: a buffer, its capacity and the bytes written. */
typedef struct wl_connbuf {
    unsigned char *buf;
    size_t cap, off;
} wl_connbuf;

/* The seed's Write(): when data does not fit, grow by doubling until it does (allocate the
 * new buffer, copy, free the old one), then append. Returns 0, or -1 on OOM with cb intact. */
int wl_connbuf_write(wl_st *s, wl_connbuf *cb, const void *data, size_t n);

int wl_fail(al_wl_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 0 when sum == expect (and stores sum in ctx->checksum), else -1 with ctx->err saying the data
 * was corrupted. `what` names the data ("slot objects"). */
int wl_verify_sum(al_wl_ctx *ctx, uint64_t sum, uint64_t expect, const char *what);

/* ---- deterministic values ---- */

/* A well-mixed 64-bit value of x (splitmix64's finaliser). Can't fail. */
static inline uint64_t wl_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xBF58476D1CE4E5B9);
    x ^= x >> 27;
    x *= UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* Seed a generator for stream (a, b) of ctx->seed: worker a, round b. Can't fail. */
static inline void wl_rng_stream(al_rng *r, uint64_t seed, uint64_t a, uint64_t b)
{
    al_rng_seed(r, seed ^ wl_mix(a * UINT64_C(0x9E3779B97F4A7C15) + b + 1));
}

/* ---- the light touch ---- */

/* Write the stamp of object `id` into p[0..n): the id in the first 8 bytes and a pattern byte
 * at the last one when n >= 16, else pattern bytes throughout. n >= 1. Can't fail. */
static inline void wl_stamp(unsigned char *p, size_t n, uint64_t id)
{
    if (n >= 16) {
        memcpy(p, &id, 8);
        p[n - 1] = al_pattern(id, n - 1);
    } else {
        for (size_t i = 0; i < n; i++) p[i] = al_pattern(id, i);
    }
}

/* The value the stamp of p[0..n) reads back as: wl_stamp_expect(n, id) when intact. */
static inline uint64_t wl_stamp_read(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    if (n >= 16) {
        memcpy(&v, p, 8);
        return wl_mix(v) + p[n - 1];
    }
    for (size_t i = 0; i < n; i++) v = v * 257 + p[i];
    return wl_mix(v);
}

static inline uint64_t wl_stamp_expect(size_t n, uint64_t id)
{
    if (n >= 16) return wl_mix(id) + al_pattern(id, n - 1);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = v * 257 + al_pattern(id, i);
    return wl_mix(v);
}

/* ---- live bytes across a team ---- */

typedef struct wl_live {
    _Alignas(WL_CACHE_LINE) _Atomic int64_t live;
    _Atomic uint64_t peak;
} wl_live;

typedef struct wl_live_tl {
    wl_live *sh;
    int64_t pending; /* delta not yet published */
    int64_t hi;      /* the highest `pending` reached since the last publish */
    unsigned n;
} wl_live_tl;

/* Publish t's pending delta and raise the shared peak. Can't fail. */
void wl_live_flush(wl_live_tl *t);

/* Account d bytes (negative on free) for one operation. Can't fail. */
static inline void wl_live_add(wl_live_tl *t, int64_t d)
{
    t->pending += d;
    if (t->pending > t->hi) t->hi = t->pending;
    if (__builtin_expect(++t->n >= WL_LIVE_BATCH, 0)) wl_live_flush(t);
}

/* ---- teams ---- */

/* Per-worker results, one cache line (or more) each so workers never share a line. */
typedef struct wl_worker {
    _Alignas(WL_CACHE_LINE) int id;
    void *shared;           /* the workload's shared state */
    al_wl_ctx *ctx;
    uint64_t ops;
    uint64_t sum, expect;   /* checksum halves, see above */
    int failed;             /* 1 when err is set */
    char err[160];
} wl_worker;

/* n zeroed, cache-line-aligned workers (free with free()), or NULL when out of memory. */
wl_worker *wl_workers_new(int n);

/* Run fn(&w[i]) on n new threads (w[0..n) filled by the caller: shared, plus id/ctx which
 * this sets), each calling ctx->b->thread_detach (if any) when fn returns, and wait for all.
 * No worker starts fn before every thread exists. Then sums ops into ctx->ops. Returns 0, or
 * -1 with ctx->err set when a thread could not be created (no fn ran) or a worker failed (its
 * message). */
int wl_team_run(al_wl_ctx *ctx, int n, wl_worker *w, void (*fn)(wl_worker *w));

/* Sum of the workers' checksum halves, then wl_verify_sum. Returns as wl_verify_sum. */
int wl_team_verify(al_wl_ctx *ctx, const wl_worker *w, int n, const char *what);

/* A worker's error: one line into w->err (first one wins). Can't fail. */
void wl_worker_fail(wl_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the cache-thrash inner loop (cache_thrash.c), shared with cache-scratch ---- */

/* On the calling worker: allocate a canary of `size` bytes (stamped, live throughout, read
 * back at the end), then `iters` times allocate an object of `size` bytes, write every byte
 * `reps` times (volatile byte stores and loads, as the original's), read it back into the
 * checksum and free it. Adds to w->ops, w->sum, w->expect; accounts live bytes in lt. On OOM
 * sets the worker's error and returns. */
void wl_thrash_loop(wl_worker *w, wl_live_tl *lt, size_t size, uint64_t iters, uint64_t reps);

#endif
