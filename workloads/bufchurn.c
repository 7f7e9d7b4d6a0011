/* bufchurn.c - connection-buffer churn, from the seed lecture's ConnectionBuffer and
 * benchmarkMemoryPool.
 *
 * A connection buffer starts at `init` bytes (4 KiB); Write() grows it by doubling (allocate
 * the new one, copy, free the old one), Close() frees it. Per iteration the seed makes a payload
 * of `size` bytes (Go's make([]byte, size), garbage right after), opens a buffer and writes the
 * payload into it. What it stresses: allocation of mid-size blocks (4..32 KiB) with a
 * size-doubling realloc pattern, plus one short-lived payload per iteration.
 *
 * Modes (parameter `mode`):
 *   keep    the seed's pool path: every buffer is kept, and all are closed after the loop
 *           (the closes are measured). Peak live = buffers x buffer capacity.
 *   steady  each buffer is closed right after its write: the steady state of a server, the
 *           case where pools and thread caches win.
 *   direct  the seed's "direct allocation" row: append-style growth (realloc), never reused;
 *           the seed leaves the buffers to Go's GC after the clock stops, so here the frees
 *           happen outside the measured region.
 * Differences from the seed: the payload comes from the backend too (make() is an allocation
 * in Go), and its bytes are a per-iteration value (memset), so the data can be verified: after
 * the loop every kept buffer is read back in full (outside the measured region); steady mode
 * folds the first and last byte of each buffer into a checksum inside the loop.
 */
#include "workload.h"
#include "wl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { P_SIZE, P_BUFFERS, P_MODE, P_INIT };
enum { MODE_KEEP, MODE_STEADY, MODE_DIRECT };

static const al_param_def bufchurn_params[] = {
    [P_SIZE] = {"size", 1024, 1, 1 << 26, NULL, AL_PARAM_BYTES, "payload bytes written per buffer"},
    [P_BUFFERS] = {"buffers", 100000, 1, 1LL << 32, NULL, AL_PARAM_SCALED,
                   "connection buffers opened"},
    [P_MODE] = {"mode", MODE_KEEP, 0, 0, "keep|steady|direct", 0,
                "keep all then close / close at once / append, frees unmeasured"},
    [P_INIT] = {"init", 4096, 1, 1 << 26, NULL, AL_PARAM_BYTES, "initial buffer capacity"},
};

/* The buffers and the accounting are the workloads' shared ones (wl_internal.h): wl_connbuf is
 * the seed's ConnectionBuffer, wl_connbuf_write its Write(), wl_st counts ops and live bytes. */

static int cb_open(wl_st *c, wl_connbuf *cb, size_t init)
{
    cb->buf = wl_st_alloc(c, init);
    cb->cap = init;
    cb->off = 0;
    return cb->buf ? 0 : -1;
}

/* The seed's Write(); in direct mode, Go's append: the buffer grows in place with realloc. */
static int cb_write(wl_st *c, wl_connbuf *cb, const void *data, size_t n, int append_realloc)
{
    if (!append_realloc) return wl_connbuf_write(c, cb, data, n);
    size_t needed = cb->off + n;
    if (needed > cb->cap) {
        size_t ncap = cb->cap * 2;
        while (ncap < needed) ncap *= 2;
        unsigned char *nb = al_realloc(c->ctx->b, c->ctx->heap, cb->buf, cb->cap, ncap);
        c->ctx->ops++;
        if (!nb) return -1;
        c->live += ncap - cb->cap;
        if (c->live > c->ctx->peak_live) c->ctx->peak_live = c->live;
        cb->buf = nb;
        cb->cap = ncap;
    }
    memcpy(cb->buf + cb->off, data, n);
    cb->off += n;
    return 0;
}

static inline unsigned char byte_of(uint64_t i) { return (unsigned char)(i * 131u + 7u); }

/* 0 when every byte of cb's content is v: the first byte is v and each byte equals the one
 * after it (one overlapping memcmp, which glibc does 32 bytes at a time; a byte loop made this
 * unmeasured check most of a 16 KiB case's wall time). */
static int cb_verify(const wl_connbuf *cb, unsigned char v)
{
    if (cb->off == 0) return 0;
    if (cb->buf[0] != v) return -1;
    return memcmp(cb->buf, cb->buf + 1, cb->off - 1) == 0 ? 0 : -1;
}

static int bufchurn_run(al_wl_ctx *ctx)
{
    const size_t size = (size_t)ctx->p[P_SIZE], init = (size_t)ctx->p[P_INIT];
    const uint64_t n = (uint64_t)ctx->p[P_BUFFERS];
    const int mode = (int)ctx->p[P_MODE];
    wl_st c = {ctx, 0};
    wl_connbuf *bufs = NULL;

    al_wl_pause(ctx);
    if (mode != MODE_STEADY) {
        bufs = calloc(n, sizeof *bufs); /* the workload's own bookkeeping, not measured */
        if (!bufs) {
            snprintf(ctx->err, sizeof ctx->err, "bookkeeping array of %llu buffers: out of memory",
                     (unsigned long long)n);
            return -1;
        }
    }
    al_wl_resume(ctx);

    uint64_t sum = 0, expect = 0;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char v = byte_of(i);
        unsigned char *payload = wl_st_alloc(&c, size);
        if (!payload) goto oom;
        memset(payload, v, size);
        wl_connbuf local, *cb = bufs ? &bufs[i] : &local;
        if (mode == MODE_DIRECT) {
            cb->buf = wl_st_alloc(&c, init); /* make([]byte, 0, 4096) */
            cb->cap = init;
            cb->off = 0;
            if (!cb->buf) goto oom;
        } else if (cb_open(&c, cb, init)) {
            goto oom;
        }
        if (cb_write(&c, cb, payload, size, mode == MODE_DIRECT)) goto oom;
        wl_st_free(&c, payload, size);
        if (mode == MODE_STEADY) {
            sum += cb->buf[0] + cb->buf[cb->off - 1];
            expect += 2u * v;
            wl_st_free(&c, cb->buf, cb->cap);
        }
    }

    if (mode != MODE_STEADY) {
        al_wl_pause(ctx);
        for (uint64_t i = 0; i < n; i++) {
            if (cb_verify(&bufs[i], byte_of(i))) {
                snprintf(ctx->err, sizeof ctx->err,
                         "buffer %llu of %llu does not hold the bytes written to it",
                         (unsigned long long)i, (unsigned long long)n);
                free(bufs); /* the backend's blocks may be corrupt: leave them to destroy() */
                al_wl_resume(ctx);
                return -1;
            }
            sum += bufs[i].buf[0];
            expect += byte_of(i);
        }
        if (mode == MODE_KEEP) al_wl_resume(ctx);
        for (uint64_t i = 0; i < n; i++) wl_st_free(&c, bufs[i].buf, bufs[i].cap);
        if (mode == MODE_DIRECT) al_wl_resume(ctx);
        free(bufs);
    }
    ctx->checksum = sum;
    if (sum != expect) {
        snprintf(ctx->err, sizeof ctx->err, "checksum %llu != expected %llu: data corrupted",
                 (unsigned long long)sum, (unsigned long long)expect);
        return -1;
    }
    return 0;

oom:
    snprintf(ctx->err, sizeof ctx->err, "allocation failed (out of memory) at %llu live bytes",
             (unsigned long long)c.live);
    free(bufs);
    return -1;
}

const al_workload al_workload_bufchurn = {
    .name = "bufchurn",
    .desc = "connection buffers: 4 KiB start, grow by doubling, payload per buffer (seed "
            "ConnectionBuffer)",
    .params = bufchurn_params,
    .nparams = (int)(sizeof bufchurn_params / sizeof bufchurn_params[0]),
    .multithreaded = 0,
    /* the seed runs 100000 buffers; at 16 KiB payloads that is 1.6 GB and 7-14 s a case on
     * the 2-core development VM, so the default sweep runs a fifth of it */
    .bench_matrix = "mode=keep,steady,direct;size=64,1024,4096,16384;buffers=20000",
    .run = bufchurn_run,
};
