/* request.c - an HTTP-ish request processor, from the seed lecture's RequestProcessor /
 * demonstrateRealWorldUsage.
 *
 * Per request the seed makes a request body of 1024*i bytes, and ProcessRequest opens a
 * ConnectionBuffer (4 KiB from the pool), writes a status line, a header line and a JSON body
 * naming the request size into it, returns the bytes and closes the buffer. Here: `requests`
 * requests, each with a body of 1024*k bytes, k uniform in [1, max_kib] (max_kib = 5: the
 * seed's i = 1..5, drawn at random so the sizes mix); the body is filled (a received request),
 * the response is built in a connection buffer from the backend (initial capacity `init`,
 * growing by doubling like the seed's Write()), read back, the buffer closed, then the body
 * released.
 * What it stresses: a short-lived pair per request - a mid-size body of varying size (1..5 KiB
 * by default) and a fixed 4 KiB buffer - the most common shape of a server's per-request
 * garbage, and the case the seed's pool is built for.
 *
 * Differences from the seed: explicit frees (the seed's body and returned bytes are garbage for
 * Go's GC); the body is filled with a per-request value rather than zeroes; the response
 * bytes are hashed when read back (Bytes()) and compared with what was written, and the body's
 * first and last bytes are read back before it is freed, into the checksum.
 */
#include "wl_internal.h"

#include <stdio.h>

enum { P_REQUESTS, P_MAX_KIB, P_INIT };

static const al_param_def request_params[] = {
    [P_REQUESTS] = {"requests", 500000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                    "requests processed"},
    [P_MAX_KIB] = {"max_kib", 5, 1, 1 << 20, NULL, 0,
                   "request bodies are 1024*k bytes, k uniform in [1, max_kib]"},
    [P_INIT] = {"init", 4096, 1, 1 << 26, NULL, AL_PARAM_BYTES,
                "initial response buffer capacity"},
};

#define RQ_HASH0 UINT64_C(0xcbf29ce484222325)

/* FNV-1a of p[0..n), continuing from h. Can't fail. */
static uint64_t rq_hash(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * UINT64_C(0x100000001b3);
    return h;
}

static const char status_line[] = "HTTP/1.1 200 OK\r\n";
static const char header_line[] = "Content-Type: application/json\r\n";

/* Returns 0, or -1 with ctx->err set (OOM, corrupted data). */
static int request_run(al_wl_ctx *ctx)
{
    wl_st q = {ctx, 0};
    const uint64_t n = (uint64_t)ctx->p[P_REQUESTS];
    const size_t init = (size_t)ctx->p[P_INIT];
    al_rng r;
    wl_rng_stream(&r, ctx->seed, 0, 0);
    uint64_t sum = 0, expect = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t blen = 1024 * (size_t)al_rng_range(&r, 1, (uint64_t)ctx->p[P_MAX_KIB]);
        unsigned char v = (unsigned char)(wl_mix(i + wl_mix(ctx->seed)) | 1);
        unsigned char *body = wl_st_alloc(&q, blen);
        if (!body) goto oom;
        memset(body, v, blen);

        wl_connbuf cb = {wl_st_alloc(&q, init), init, 0};
        if (!cb.buf) {
            wl_st_free(&q, body, blen);
            goto oom;
        }
        char json[64];
        int jn = snprintf(json, sizeof json, "\r\n{\"status\":\"processed\", \"size\":%zu}", blen);
        if (wl_connbuf_write(&q, &cb, status_line, sizeof status_line - 1) ||
            wl_connbuf_write(&q, &cb, header_line, sizeof header_line - 1) ||
            wl_connbuf_write(&q, &cb, json, (size_t)jn)) {
            wl_st_free(&q, cb.buf, cb.cap);
            wl_st_free(&q, body, blen);
            goto oom;
        }
        /* Bytes(): the response as the caller reads it, then Close(). */
        sum += rq_hash(RQ_HASH0, cb.buf, cb.off);
        uint64_t h = rq_hash(RQ_HASH0, status_line, sizeof status_line - 1);
        h = rq_hash(h, header_line, sizeof header_line - 1);
        expect += rq_hash(h, json, (size_t)jn);
        wl_st_free(&q, cb.buf, cb.cap);

        sum += wl_mix((uint64_t)body[0] << 8 | body[blen - 1]);
        expect += wl_mix((uint64_t)v << 8 | v);
        wl_st_free(&q, body, blen);
    }
    return wl_verify_sum(ctx, sum, expect, "responses and request bodies");
oom:
    return wl_fail(ctx, "allocation failed (out of memory) at %llu live bytes",
                   (unsigned long long)q.live);
}

const al_workload al_workload_request = {
    .name = "request",
    .desc = "seed RequestProcessor: per request a 1..5 KiB body and a 4 KiB response buffer "
            "(status, header, JSON), both released",
    .params = request_params,
    .nparams = (int)(sizeof request_params / sizeof request_params[0]),
    .multithreaded = 0,
    .bench_matrix = "",
    .run = request_run,
};
