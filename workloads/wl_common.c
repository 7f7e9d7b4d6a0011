/* wl_common.c - the helpers of wl_internal.h: errors, checksums, team live bytes, teams. */
#include "wl_internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See wl_internal.h. Can't fail. */
int wl_fail(al_wl_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* See wl_internal.h. Returns 0, or -1 with ctx->err set. */
int wl_verify_sum(al_wl_ctx *ctx, uint64_t sum, uint64_t expect, const char *what)
{
    ctx->checksum = sum;
    if (sum == expect) return 0;
    return wl_fail(ctx, "checksum %llu != expected %llu over %s: data corrupted",
                   (unsigned long long)sum, (unsigned long long)expect, what);
}

/* Publish the pending delta; raise the peak to live-before + highest pending. Can't fail. */
void wl_live_flush(wl_live_tl *t)
{
    int64_t before = atomic_fetch_add_explicit(&t->sh->live, t->pending, memory_order_relaxed);
    int64_t top = before + t->hi;
    t->pending = t->hi = 0;
    t->n = 0;
    if (top <= 0) return;
    uint64_t pk = atomic_load_explicit(&t->sh->peak, memory_order_relaxed);
    while ((uint64_t)top > pk &&
           !atomic_compare_exchange_weak_explicit(&t->sh->peak, &pk, (uint64_t)top,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* See wl_internal.h. Can't fail. */
void wl_worker_fail(wl_worker *w, const char *fmt, ...)
{
    if (w->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    w->failed = 1;
}

/* See wl_internal.h. NULL when out of memory. */
wl_worker *wl_workers_new(int n)
{
    size_t bytes = (size_t)n * sizeof(wl_worker); /* n <= a few thousand: cannot overflow */
    wl_worker *w = aligned_alloc(WL_CACHE_LINE, bytes);
    if (w) memset(w, 0, bytes);
    return w;
}

/* The start gate: 0 = wait, 1 = run, -1 = a thread could not be created, do nothing. */
typedef struct team_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
} team_gate;

typedef struct team_arg {
    team_gate *gate;
    wl_worker *w;
    void (*fn)(wl_worker *w);
} team_arg;

/* A worker thread: wait at the gate, run fn, detach from the backend. Can't fail. */
static void *team_trampoline(void *p)
{
    team_arg *a = p;
    pthread_mutex_lock(&a->gate->mu);
    while (a->gate->state == 0) pthread_cond_wait(&a->gate->cv, &a->gate->mu);
    int state = a->gate->state;
    pthread_mutex_unlock(&a->gate->mu);
    if (state < 0) return NULL;
    a->fn(a->w);
    al_wl_ctx *ctx = a->w->ctx;
    if (ctx->b->thread_detach) ctx->b->thread_detach(ctx->heap);
    return NULL;
}

/* Release the workers (state 1) or send them home (-1). Can't fail. */
static void gate_open(team_gate *g, int state)
{
    pthread_mutex_lock(&g->mu);
    g->state = state;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* See wl_internal.h. Returns 0, or -1 with ctx->err set. */
int wl_team_run(al_wl_ctx *ctx, int n, wl_worker *w, void (*fn)(wl_worker *w))
{
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    team_arg *args = calloc((size_t)n, sizeof *args);
    if (!tids || !args) {
        free(tids);
        free(args);
        return wl_fail(ctx, "bookkeeping for %d threads: out of memory", n);
    }
    team_gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int created = 0, rc = 0;
    for (; created < n; created++) {
        w[created].id = created;
        w[created].ctx = ctx;
        args[created] = (team_arg){&gate, &w[created], fn};
        if ((rc = pthread_create(&tids[created], NULL, team_trampoline, &args[created])) != 0)
            break;
    }
    gate_open(&gate, created == n ? 1 : -1);
    for (int i = 0; i < created; i++) pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&gate.mu);
    pthread_cond_destroy(&gate.cv);
    free(tids);
    free(args);
    if (created < n)
        return wl_fail(ctx, "pthread_create failed for worker %d of %d (error %d)", created, n,
                       rc);
    for (int i = 0; i < n; i++) ctx->ops += w[i].ops;
    for (int i = 0; i < n; i++)
        if (w[i].failed) return wl_fail(ctx, "worker %d: %s", i, w[i].err);
    return 0;
}

/* See wl_internal.h. Returns 0, or -1 with ctx->err set. */
int wl_team_verify(al_wl_ctx *ctx, const wl_worker *w, int n, const char *what)
{
    uint64_t sum = 0, expect = 0;
    for (int i = 0; i < n; i++) {
        sum += w[i].sum;
        expect += w[i].expect;
    }
    return wl_verify_sum(ctx, sum, expect, what);
}

int wl_connbuf_write(wl_st *s, wl_connbuf *cb, const void *data, size_t n)
{
    size_t needed = cb->off + n;
    if (needed > cb->cap) {
        size_t ncap = cb->cap * 2;
        while (ncap < needed) ncap *= 2;
        unsigned char *nb = wl_st_alloc(s, ncap);
        if (!nb) return -1;
        memcpy(nb, cb->buf, cb->off);
        wl_st_free(s, cb->buf, cb->cap);
        cb->buf = nb;
        cb->cap = ncap;
    }
    memcpy(cb->buf + cb->off, data, n);
    cb->off += n;
    return 0;
}
