/* xmalloc.c - producers allocate, consumers free, after xmalloc-test (malloc-test) by Lever and
 * Boreham, "malloc() Performance in a Multithreaded Linux Environment" (USENIX 2000, FREENIX
 * track), in the fixed-work form mimalloc-bench uses.
 *
 * Producers only allocate: they fill batches of `batch` objects, sizes drawn from a table of
 * 8..2048 bytes (powers of two and the 1.5x steps between them, as the original's table), and
 * push each full batch into one bounded queue (`depth` batches). Consumers only free: they pop
 * a batch, read every object back and free it. What it stresses: the cross-thread free path
 * (every object dies on another thread than its birth thread), the return of remotely freed
 * memory to the producing thread's heap, and whether memory stays bounded when one side only
 * allocates and the other only frees (a per-thread cache without a way home grows without
 * bound on the consumers and starves the producers).
 *
 * Roles: of T workers, T/2 produce and the rest consume (T = 3: one producer, two consumers).
 * With T = 1 the single worker produces and, when the queue is full, drains it itself: the
 * same objects and checksum, but no object crosses a thread.
 * Differences from the original: a fixed object count (`objects` in all) instead of a time
 * limit; a bounded queue with blocking (mutex + condition variables) instead of the original's
 * shared list, so the objects in flight are bounded by (depth + producers + consumers) x batch;
 * the batch records (pointer, size, id) are the workload's own memory, allocated before the
 * measured region and recycled. Each object carries a stamp (its id in the first 8 bytes, a
 * pattern byte at its end; pattern bytes below 16 bytes) that the consumer reads back into the
 * checksum, so the checksum is the same whichever consumer frees which batch.
 * Live bytes: per-worker deltas (producers +, consumers -) published to one relaxed atomic
 * every 64 operations (wl_live).
 */
#include "wl_internal.h"

#include <pthread.h>
#include <stdlib.h>

enum { P_OBJECTS, P_BATCH, P_DEPTH, P_MAX };

static const al_param_def xmalloc_params[] = {
    [P_OBJECTS] = {"objects", 2000000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                   "objects allocated in all (split across producers)"},
    [P_BATCH] = {"batch", 512, 1, 1 << 20, NULL, 0, "objects per batch passed to a consumer"},
    [P_DEPTH] = {"depth", 16, 1, 1 << 16, NULL, 0, "queue capacity in batches"},
    [P_MAX] = {"max", 2048, 8, 1 << 24, NULL, AL_PARAM_BYTES,
               "largest object (the size table is cut here)"},
};

/* 8..2048: powers of two and the 1.5x steps between them. */
static const uint32_t xm_sizes[] = {8,   12,  16,  24,  32,  48,   64,   96,   128,
                                    192, 256, 384, 512, 768, 1024, 1536, 2048};

typedef struct xm_batch {
    struct xm_batch *next;
    size_t n;
    unsigned char **p;
    uint32_t *size;
    uint64_t *id;
} xm_batch;

typedef struct xm_shared {
    al_wl_ctx *ctx;
    wl_live live;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty, has_free;
    xm_batch *head, *tail; /* the queue of full batches (FIFO) */
    size_t queued, depth;
    xm_batch *free_list;   /* empty batch records */
    uint64_t batches, popped;
    size_t batch;
    int producers, consumers, nsizes;
} xm_shared;

typedef struct xm_local {
    xm_shared *sh;
    wl_worker *w;
    wl_live_tl lt;
    uint64_t ops, sum, expect;
} xm_local;

/* Read back and free every object of bt; bt ends empty. Can't fail. */
static void xm_consume(xm_local *l, xm_batch *bt)
{
    const al_backend *b = l->sh->ctx->b;
    void *heap = l->sh->ctx->heap;
    for (size_t i = 0; i < bt->n; i++) {
        l->sum += wl_stamp_read(bt->p[i], bt->size[i]);
        l->expect += wl_stamp_expect(bt->size[i], bt->id[i]);
        b->free(heap, bt->p[i], bt->size[i]);
        l->ops++;
        wl_live_add(&l->lt, -(int64_t)bt->size[i]);
    }
    bt->n = 0;
}

/* Fill bt with up to sh->batch objects; stops (worker failed) on OOM. Can't fail otherwise. */
static void xm_produce(xm_local *l, xm_batch *bt, al_rng *r, uint64_t *next_id)
{
    const al_backend *b = l->sh->ctx->b;
    void *heap = l->sh->ctx->heap;
    bt->n = 0;
    if (l->w->failed) return;
    for (size_t i = 0; i < l->sh->batch; i++) {
        uint32_t size = xm_sizes[al_rng_range(r, 0, (uint64_t)l->sh->nsizes - 1)];
        unsigned char *p = b->alloc(heap, size);
        l->ops++;
        if (!p) {
            wl_worker_fail(l->w, "allocation of %u bytes failed (out of memory)", size);
            return;
        }
        uint64_t id = (*next_id)++;
        wl_stamp(p, size, id);
        bt->p[i] = p;
        bt->size[i] = size;
        bt->id[i] = id;
        bt->n = i + 1;
        wl_live_add(&l->lt, size);
    }
}

/* The oldest queued batch (queue not empty, sh->mu held). Can't fail. */
static xm_batch *xm_pop_locked(xm_shared *sh)
{
    xm_batch *bt = sh->head;
    sh->head = bt->next;
    if (!sh->head) sh->tail = NULL;
    sh->queued--;
    sh->popped++;
    return bt;
}

/* Queue bt (room checked by the caller, sh->mu held). Can't fail. */
static void xm_push_locked(xm_shared *sh, xm_batch *bt)
{
    bt->next = NULL;
    if (sh->tail) sh->tail->next = bt;
    else sh->head = bt;
    sh->tail = bt;
    sh->queued++;
}

/* Produce batches first, first+step, ... into the queue; `alone` (no consumer threads):
 * drain the queue myself when it is full and at the end. Can't fail (OOM: empty batches). */
static void xm_producer(xm_local *l, uint64_t first, uint64_t step, int alone)
{
    xm_shared *sh = l->sh;
    al_rng r;
    wl_rng_stream(&r, sh->ctx->seed, (uint64_t)l->w->id, 0);
    uint64_t next_id = (uint64_t)l->w->id << 48;
    for (uint64_t k = first; k < sh->batches; k += step) {
        pthread_mutex_lock(&sh->mu);
        if (alone && sh->queued == sh->depth) {
            /* No consumer threads: drain the queue myself. */
            while (sh->queued) {
                xm_batch *bt = xm_pop_locked(sh);
                xm_consume(l, bt);
                bt->next = sh->free_list;
                sh->free_list = bt;
            }
        }
        while (!sh->free_list) pthread_cond_wait(&sh->has_free, &sh->mu);
        xm_batch *bt = sh->free_list;
        sh->free_list = bt->next;
        pthread_mutex_unlock(&sh->mu);

        xm_produce(l, bt, &r, &next_id);

        pthread_mutex_lock(&sh->mu);
        while (sh->queued == sh->depth) pthread_cond_wait(&sh->not_full, &sh->mu);
        xm_push_locked(sh, bt);
        pthread_cond_signal(&sh->not_empty);
        pthread_mutex_unlock(&sh->mu);
    }
    if (alone) {
        pthread_mutex_lock(&sh->mu);
        while (sh->queued) {
            xm_batch *bt = xm_pop_locked(sh);
            xm_consume(l, bt);
            bt->next = sh->free_list;
            sh->free_list = bt;
        }
        pthread_mutex_unlock(&sh->mu);
    }
}

/* Pop and free batches until all have been popped. Can't fail. */
static void xm_consumer(xm_local *l)
{
    xm_shared *sh = l->sh;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (!sh->queued && sh->popped < sh->batches)
            pthread_cond_wait(&sh->not_empty, &sh->mu);
        if (!sh->queued) { /* popped == batches: all done */
            pthread_cond_broadcast(&sh->not_empty);
            pthread_mutex_unlock(&sh->mu);
            return;
        }
        xm_batch *bt = xm_pop_locked(sh);
        if (sh->popped == sh->batches) pthread_cond_broadcast(&sh->not_empty);
        pthread_cond_signal(&sh->not_full);
        pthread_mutex_unlock(&sh->mu);

        xm_consume(l, bt);

        pthread_mutex_lock(&sh->mu);
        bt->next = sh->free_list;
        sh->free_list = bt;
        pthread_cond_signal(&sh->has_free);
        pthread_mutex_unlock(&sh->mu);
    }
}

/* Producer or consumer by id. Can't fail (OOM sets the worker's error). */
static void xm_worker(wl_worker *w)
{
    xm_shared *sh = w->shared;
    xm_local l = {sh, w, {.sh = &sh->live}, 0, 0, 0};
    if (w->id < sh->producers)
        xm_producer(&l, (uint64_t)w->id, (uint64_t)sh->producers, sh->consumers == 0);
    else
        xm_consumer(&l);
    wl_live_flush(&l.lt);
    w->ops = l.ops;
    w->sum = l.sum;
    w->expect = l.expect;
}

/* Returns 0, or -1 with ctx->err set (OOM, thread creation, corrupted data). */
static int xmalloc_run(al_wl_ctx *ctx)
{
    int t = ctx->threads > 0 ? ctx->threads : 1;
    xm_shared sh = {.ctx = ctx, .depth = (size_t)ctx->p[P_DEPTH], .batch = (size_t)ctx->p[P_BATCH]};
    sh.producers = t == 1 ? 1 : t / 2;
    sh.consumers = t - sh.producers;
    sh.batches = ((uint64_t)ctx->p[P_OBJECTS] + sh.batch - 1) / sh.batch;
    while (sh.nsizes < (int)(sizeof xm_sizes / sizeof xm_sizes[0]) &&
           xm_sizes[sh.nsizes] <= (uint64_t)ctx->p[P_MAX])
        sh.nsizes++;

    al_wl_pause(ctx);
    int rc = -1;
    /* Batch records in use at once: depth queued + one per producer + one per consumer. */
    size_t nrec = sh.depth + (size_t)t + 1;
    xm_batch *rec = calloc(nrec, sizeof *rec);
    wl_worker *w = wl_workers_new(t);
    int ok = rec && w;
    for (size_t i = 0; ok && i < nrec; i++) {
        rec[i].p = malloc(sh.batch * sizeof *rec[i].p);
        rec[i].size = malloc(sh.batch * sizeof *rec[i].size);
        rec[i].id = malloc(sh.batch * sizeof *rec[i].id);
        ok = rec[i].p && rec[i].size && rec[i].id;
        rec[i].next = sh.free_list;
        sh.free_list = &rec[i];
    }
    if (!ok) {
        wl_fail(ctx, "bookkeeping for %zu batches of %zu: out of memory", nrec, sh.batch);
        goto out;
    }
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.not_full, NULL);
    pthread_cond_init(&sh.not_empty, NULL);
    pthread_cond_init(&sh.has_free, NULL);
    for (int i = 0; i < t; i++) w[i].shared = &sh;
    al_wl_resume(ctx);
    rc = wl_team_run(ctx, t, w, xm_worker);
    al_wl_pause(ctx);
    pthread_mutex_destroy(&sh.mu);
    pthread_cond_destroy(&sh.not_full);
    pthread_cond_destroy(&sh.not_empty);
    pthread_cond_destroy(&sh.has_free);
    ctx->peak_live = atomic_load(&sh.live.peak);
    if (rc == 0) rc = wl_team_verify(ctx, w, t, "objects passed between threads");
out:
    for (size_t i = 0; rec && i < nrec; i++) {
        free(rec[i].p);
        free(rec[i].size);
        free(rec[i].id);
    }
    free(rec);
    free(w);
    al_wl_resume(ctx);
    return rc;
}

const al_workload al_workload_xmalloc = {
    .name = "xmalloc",
    .desc = "xmalloc-test (Lever & Boreham): producer threads allocate, consumer threads free, "
            "batches through a bounded queue (cross-thread free)",
    .params = xmalloc_params,
    .nparams = (int)(sizeof xmalloc_params / sizeof xmalloc_params[0]),
    .multithreaded = 1,
    .bench_matrix = "",
    .run = xmalloc_run,
};
