/* replay.c - drive a backend from a recorded allocation trace (preload/trace.c writes them).
 *
 * What it stresses: whatever the recorded program did - the size mix, lifetimes and realloc
 * pattern of a real program (python3, sort, ...), so a real allocation pattern can be compared
 * across every backend in-process, without the program's own work in the figures.
 * Where it comes from: the trace-driven simulation of allocator studies (Zorn & Grunwald 1992;
 * Wilson et al. 1995, "Dynamic Storage Allocation: A Survey and Critical Review").
 *
 * The trace file: ALLOCLAB_REPLAY_TRACE=<path> (a workload parameter cannot be a string), by
 * default tests/data/small.trace (relative to the working directory: the repository root when
 * run through make). Format: workloads/trace_format.h.
 *
 * Replay: the whole file is read and decoded before the measured region (pause/resume); then
 * the records run single-threaded in recorded order (a multi-threaded program's records are
 * serialised in the order the recorder saw them; their thread numbers are ignored):
 *   1. malloc/calloc/aligned: alloc (calloc: alloc + memset 0, what a drop-in calloc does;
 *      aligned: alloc_aligned, or alloc(size + align - 1) and an offset when the backend has
 *      none); write the block's first and last byte (al_pattern of its id);
 *   2. free: read back both bytes, then free with the size as the size hint;
 *   3. realloc: check both bytes, realloc (al_realloc: the vtable's fallback for backends
 *      without one), check the first byte and (when it grew) the old last byte survived, write
 *      the new last byte.
 * ops counts one per record replayed (= the trace's record count x repeat); blocks the program
 * never freed are freed after the measured region, unmeasured and not counted. peak_live: the
 * most bytes (as asked) live at once. checksum: the sum of the bytes read back; a mismatching
 * byte fails the case naming the record.
 */
#include "workload.h"
#include "trace_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_DEFAULT_TRACE "tests/data/small.trace"

enum { P_REPEAT };

static const al_param_def replay_params[] = {
    [P_REPEAT] = {"repeat", 10, 1, 1 << 20, NULL, AL_PARAM_SCALED,
                  "times the trace is replayed (all blocks freed between rounds)"},
};

typedef struct rp_op {
    uint8_t op;
    uint32_t id, old;
    uint32_t align;
    uint64_t size;
} rp_op;

typedef struct rp_block {
    unsigned char *raw; /* what the backend returned (freed) */
    uint64_t size;      /* as asked */
    uint64_t hint;      /* size hint for free: size, or size + align - 1 for the fallback */
    uint32_t off;       /* user pointer = raw + off (alignment fallback) */
} rp_block;

typedef struct rp_trace {
    rp_op *ops;
    size_t n;
    uint64_t max_id;
    uint64_t counts[AL_TRACE_N];
} rp_trace;

/* Loads and checks path. Returns 0, or -1 with err set (nothing left allocated). */
static int rp_load(const char *path, rp_trace *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open trace %s (set ALLOCLAB_REPLAY_TRACE)", path);
        return -1;
    }
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) break;
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    int ioerr = ferror(f) || !buf;
    fclose(f);
    if (ioerr || al_trace_parse_header(buf, len, t->counts)) {
        snprintf(err, errlen, "%s: %s", path, ioerr ? "read error" : "not an alloclab trace v1");
        free(buf);
        return -1;
    }
    const unsigned char *p = buf + AL_TRACE_HDR_SIZE, *end = buf + len;
    size_t cap_ops = (size_t)(end - p) / 3 + 1; /* a record is at least 3 bytes */
    t->ops = malloc(cap_ops * sizeof *t->ops);
    /* live[id]: 1 while the id names a live block; checks the file's invariant up front */
    size_t live_cap = 1024;
    unsigned char *live = calloc(live_cap, 1);
    if (!t->ops || !live) goto oom;
    al_trace_rec r;
    int d;
    while ((d = al_trace_decode(&p, end, &r)) == 1) {
        uint64_t big = r.id > r.old ? r.id : r.old;
        if (big > UINT32_MAX || r.align > UINT32_MAX || r.size > PTRDIFF_MAX) goto bad;
        if (big >= live_cap) {
            size_t ncap = live_cap;
            while (ncap <= big) ncap *= 2;
            unsigned char *nl = realloc(live, ncap);
            if (!nl) goto oom;
            memset(nl + live_cap, 0, ncap - live_cap);
            live = nl;
            live_cap = ncap;
        }
        if (r.op == AL_TRACE_FREE || (r.op == AL_TRACE_REALLOC && r.old)) {
            uint64_t gone = r.op == AL_TRACE_FREE ? r.id : r.old;
            if (!gone || !live[gone]) goto bad;
            live[gone] = 0;
        }
        if (r.op != AL_TRACE_FREE) {
            if (!r.id || live[r.id]) goto bad;
            if (r.op == AL_TRACE_ALIGNED && (!r.align || (r.align & (r.align - 1)))) goto bad;
            live[r.id] = 1;
        }
        if (big > t->max_id) t->max_id = big;
        t->ops[t->n++] = (rp_op){r.op, (uint32_t)r.id, (uint32_t)r.old, (uint32_t)r.align,
                                 r.size};
    }
    if (d < 0) goto bad;
    free(live);
    free(buf);
    return 0;
bad:
    snprintf(err, errlen, "%s: malformed record %zu at byte %zu", path, t->n,
             (size_t)(p - buf));
    goto fail;
oom:
    snprintf(err, errlen, "%s: out of memory loading the trace", path);
fail:
    free(live);
    free(buf);
    free(t->ops);
    t->ops = NULL;
    return -1;
}

static inline unsigned char rp_first(uint64_t id) { return al_pattern(id, 0); }
static inline unsigned char rp_last(uint64_t id) { return (unsigned char)~al_pattern(id, 1); }

/* Write block id's first and last byte (one byte when size is 1). Can't fail. */
static inline void rp_mark(unsigned char *u, uint64_t size, uint64_t id)
{
    if (size) u[size - 1] = rp_last(id);
    if (size) u[0] = rp_first(id);
}

/* Whether u holds the marks of block id of `size` bytes. */
static inline int rp_marked(const unsigned char *u, uint64_t size, uint64_t id)
{
    return !size || (u[0] == rp_first(id) && (size == 1 || u[size - 1] == rp_last(id)));
}

/* Allocate block id as op says. Returns 0, or -1 (out of memory). */
static int rp_alloc(al_wl_ctx *ctx, const rp_op *o, rp_block *bl)
{
    const al_backend *b = ctx->b;
    bl->size = bl->hint = o->size;
    bl->off = 0;
    if (o->op == AL_TRACE_ALIGNED && o->align > AL_MIN_ALIGN) {
        if (b->alloc_aligned) {
            bl->raw = b->alloc_aligned(ctx->heap, o->align, o->size);
        } else {
            bl->hint = o->size + o->align - 1;
            bl->raw = b->alloc(ctx->heap, bl->hint);
            if (bl->raw)
                bl->off = (uint32_t)((o->align - ((uintptr_t)bl->raw & (o->align - 1))) &
                                     (o->align - 1));
        }
    } else {
        bl->raw = b->alloc(ctx->heap, o->size);
    }
    if (!bl->raw) return -1;
    unsigned char *u = bl->raw + bl->off;
    if (o->op == AL_TRACE_CALLOC) memset(u, 0, o->size);
    rp_mark(u, o->size, o->id);
    return 0;
}

/* Read back block id's two bytes into *sum. Returns 0, or -1 when one changed. */
static inline int rp_check(const rp_block *bl, uint64_t id, uint64_t *sum)
{
    if (!bl->size) return 0;
    const unsigned char *u = bl->raw + bl->off;
    if (!rp_marked(u, bl->size, id)) return -1;
    *sum += u[0] + u[bl->size - 1];
    return 0;
}

static int replay_run(al_wl_ctx *ctx)
{
    const char *path = getenv("ALLOCLAB_REPLAY_TRACE");
    if (!path || !*path) path = REPLAY_DEFAULT_TRACE;
    const al_backend *b = ctx->b;
    rp_trace t;
    rp_block *blk = NULL;
    uint64_t live = 0, sum = 0, bad_id = 0, rounds = (uint64_t)ctx->p[P_REPEAT];
    size_t i = 0;
    int rc = -1;

    al_wl_pause(ctx);
    if (rp_load(path, &t, ctx->err, sizeof ctx->err)) {
        al_wl_resume(ctx);
        return -1;
    }
    blk = calloc(t.max_id + 1, sizeof *blk);
    if (!blk) {
        snprintf(ctx->err, sizeof ctx->err, "out of memory for %llu block slots",
                 (unsigned long long)t.max_id + 1);
        free(t.ops);
        al_wl_resume(ctx);
        return -1;
    }
    al_wl_resume(ctx);

    for (uint64_t round = 0; round < rounds; round++) {
        for (i = 0; i < t.n; i++) {
            const rp_op *o = &t.ops[i];
            rp_block *bl = &blk[o->id];
            ctx->ops++;
            switch (o->op) {
            case AL_TRACE_FREE:
                if (rp_check(bl, o->id, &sum)) {
                    bad_id = o->id;
                    goto corrupt;
                }
                b->free(ctx->heap, bl->raw, bl->hint);
                live -= bl->size;
                bl->raw = NULL;
                continue;
            case AL_TRACE_REALLOC:
                if (o->old) {
                    rp_block *ob = &blk[o->old];
                    bad_id = o->old;
                    if (rp_check(ob, o->old, &sum)) goto corrupt;
                    if (ob->off == 0) {
                        unsigned char *q = al_realloc(b, ctx->heap, ob->raw, ob->hint, o->size);
                        if (!q) goto oom;
                        size_t keep = ob->size < o->size ? ob->size : o->size;
                        /* the kept bytes survived the move */
                        if (!rp_marked(q, ob->size <= o->size ? ob->size : (keep ? 1 : 0),
                                       o->old))
                            goto corrupt;
                        live = live - ob->size + o->size;
                        ob->raw = NULL;
                        bl->raw = q;
                        bl->size = bl->hint = o->size;
                        bl->off = 0;
                        rp_mark(q, o->size, o->id);
                        break;
                    }
                    /* an aligned-fallback block: move it by hand */
                    rp_block nb;
                    rp_op plain = {AL_TRACE_MALLOC, o->id, 0, 0, o->size};
                    if (rp_alloc(ctx, &plain, &nb)) goto oom;
                    size_t keep = ob->size < o->size ? ob->size : o->size;
                    unsigned char *u = nb.raw + nb.off;
                    memcpy(u, ob->raw + ob->off, keep);
                    rp_mark(u, o->size, o->id);
                    b->free(ctx->heap, ob->raw, ob->hint);
                    live = live - ob->size + o->size;
                    ob->raw = NULL;
                    *bl = nb;
                    break;
                }
                /* realloc(NULL, n) is an allocation */
                __attribute__((fallthrough));
            default:
                if (rp_alloc(ctx, o, bl)) goto oom;
                live += o->size;
                break;
            }
            if (live > ctx->peak_live) ctx->peak_live = live;
        }
        /* end of a round: free what the program left live (unmeasured, uncounted) */
        al_wl_pause(ctx);
        for (uint64_t id = 1; id <= t.max_id; id++) {
            if (!blk[id].raw) continue;
            if (rp_check(&blk[id], id, &sum)) {
                i = t.n;
                bad_id = id;
                al_wl_resume(ctx);
                goto corrupt;
            }
            b->free(ctx->heap, blk[id].raw, blk[id].hint);
            blk[id].raw = NULL;
        }
        live = 0;
        al_wl_resume(ctx);
    }
    ctx->checksum = sum;
    rc = 0;
    goto out;

corrupt:
    snprintf(ctx->err, sizeof ctx->err,
             "record %zu of %zu: block %llu does not hold the bytes written to it (data "
             "corrupted)", i, t.n, (unsigned long long)bad_id);
    goto out_unfreed;
oom:
    snprintf(ctx->err, sizeof ctx->err,
             "record %zu: allocation of %llu bytes failed (out of memory) at %llu live bytes", i,
             (unsigned long long)t.ops[i].size, (unsigned long long)live);
out_unfreed:
    /* the backend's blocks may be corrupt: leave them to destroy() */
    rc = -1;
out:
    al_wl_pause(ctx);
    free(blk);
    free(t.ops);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_replay = {
    .name = "replay",
    .desc = "replay a recorded allocation trace (ALLOCLAB_REPLAY_TRACE, default "
            "tests/data/small.trace) in recorded order",
    .params = replay_params,
    .nparams = (int)(sizeof replay_params / sizeof replay_params[0]),
    .multithreaded = 0,
    .bench_matrix = "",
    .run = replay_run,
};
