/* sp_pool.c - the pool of each bucket: Go's sync.Pool getSlow/putSlow/poolCleanup over the
 * per-P locals and the victim shards. The fast paths (private slot) are inline in syncpool.c;
 * the architecture comment there describes the whole backend.
 *
 * Who touches what (the concurrency contract of this file):
 *   local[p].priv           owner: load + store (put; get while cleaning == 0, under busy),
 *                           exchange (slow get); cleanup: exchange (busy == 0, cleaning == 1).
 *   local[p].tb             tick << 1 | busy: owner only; cleanup waits for busy = 0,
 *                           stats() reads the tick (racy).
 *   local[p].cleaning       cleanup sets 1, then 2 (under gc_lock); the owner's slow get turns
 *                           2 into 0 (CAS); the owner's fast get reads it.
 *   local[p].shared         owner: pushHead/popHead; any thread: popTail (steal, cleanup).
 *   victim[p].priv          cleanup (under gc_lock): exchange and store; any thread: exchange.
 *   victim[p].shared        cleanup is the only producer (pushHead, under gc_lock); any thread
 *                           popTail.
 * Every value is taken by exactly one exchange or one successful CAS, or by the owner's plain
 * load + store while the busy/cleaning handshake (syncpool.c, "Cleanup") keeps cleanup out, so
 * a block is in at most one place, and cleanup needs no stop-the-world: it is one more
 * consumer of the primary and the one producer of the victim cache.
 */
#include "sp_internal.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The local of P p, bucket cls, in arr (primary or victim). Can't fail. */
static inline sp_local *local_at(sp_local *arr, const sp_heap *h, unsigned p, unsigned cls)
{
    return &arr[(size_t)p * h->nb + cls];
}

/* A block goes to the user (pooled: it came from a pool, else fresh from the underlying
 * allocator): unpoison it, debug fill, count the pace. Returns p; can't fail (a debug build
 * aborts on a write after put). */
static inline void *hand_out(sp_heap *h, sp_local *l, unsigned cls, void *p, int pooled)
{
    SP_UNPOISON(p, h->bucket[cls].size);
    SP_DEBUG_OUT(p, h->bucket[cls].size, pooled);
    (void)pooled;
    if (l) {
        SP_STAT_INC(l->sgets);
        sp_tick_get(h, l, cls);
    } else {
#if SP_STATS
        atomic_fetch_add_explicit(&h->bucket[cls].gets, 1, memory_order_relaxed);
#endif
        sp_pace_add(h, h->bucket[cls].size);
    }
    return p;
}

void sp_block_release(sp_heap *h, unsigned cls, void *p)
{
    const sp_bucket *b = &h->bucket[cls];
    SP_UNPOISON(p, b->size);
    SP_UNPOISON((char *)p - SP_HDR, SP_HDR);
    sp_under_enter(h);
    h->under->free(h->under_heap, (char *)p - b->off, b->gross);
    sp_under_leave(h);
    atomic_fetch_sub_explicit(&h->under_bytes, b->gross, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->bucket[cls].dropped, 1, memory_order_relaxed);
}

/* Go's New: a fresh block from the underlying allocator: [header | data] (off = 16), or for
 * the big buckets a 64-aligned base and [48 unused | header | data] (off = 64) so the data
 * starts on a cache line. NULL when the underlying allocator is out of memory. */
static void *block_new(sp_heap *h, unsigned cls)
{
    const sp_bucket *b = &h->bucket[cls];
    sp_under_enter(h);
    char *base = b->off == SP_HDR ? h->under->alloc(h->under_heap, b->gross)
                                  : h->under->alloc_aligned(h->under_heap,
                                                            b->size >= SP_PAGE_FROM ? 4096 : SP_LINE,
                                                            b->gross);
    sp_under_leave(h);
    if (!base) return NULL;
    char *p = base + b->off;
    sp_hdr_set(h, p - SP_HDR, cls);
    atomic_fetch_add_explicit(&h->under_bytes, b->gross, memory_order_relaxed);
    return p;
}

void *sp_get_slow(sp_heap *h, sp_tls_ent *e, unsigned cls)
{
    sp_bucket *b = &h->bucket[cls];
    unsigned n = atomic_load_explicit(&h->hw, memory_order_acquire);
    unsigned pid = e ? e->pid : 0;
    sp_local *l = e ? e->local + cls : NULL;
    void *x;
    /* A cleanup is done with l's private slots: its owner (this thread) turns the fast get
     * back on (no get of its own is running; a new cleanup's 1 is left alone). */
    int done = 2;
    if (l && atomic_load_explicit(&l->cleaning, memory_order_relaxed) == 2)
        atomic_compare_exchange_strong_explicit(&l->cleaning, &done, 0, memory_order_acquire,
                                                memory_order_relaxed);
#if SP_STATS
#define COUNT(f)                                                                   \
    do {                                                                           \
        if (l) SP_STAT_INC(l->f); else atomic_fetch_add_explicit(&b->f, 1, memory_order_relaxed); \
    } while (0)
#else
#define COUNT(f) ((void)0)
#endif
    (void)b;
    /* 1. a private slot the fast path did not take (cleanup was running, or the thread
     *    was not registered yet): exchange, as cleanup may take it too; 2. own shared. */
    if (l) {
        x = NULL;
        for (unsigned k = 0; k < SP_PRIV && !x; k++)
            if (atomic_load_explicit(&l->priv[k], memory_order_relaxed))
                x = atomic_exchange_explicit(&l->priv[k], NULL, memory_order_acquire);
        if (x) SP_STAT_INC(l->ptake);
        if (!x) x = sp_chain_pop_head(&l->shared);
        if (x) return hand_out(h, l, cls, x, 1);
    }
    /* 3. steal: popTail from the other Ps, (pid + i + 1) % n. */
    for (unsigned i = 0; i < n; i++) {
        unsigned q = (pid + i + 1) % n;
        if (l && q == pid) continue;
        x = sp_chain_pop_tail(&local_at(h->local, h, q, cls)->shared);
        if (x) {
            COUNT(steals);
            return hand_out(h, l, cls, x, 1);
        }
    }
    /* 4. the victim cache: own victim private, then popTail across the victim shards. */
    if (l) {
        sp_local *v = local_at(h->victim, h, pid, cls);
        x = NULL;
        for (unsigned k = 0; k < SP_PRIV && !x; k++)
            if (atomic_load_explicit(&v->priv[k], memory_order_relaxed))
                x = atomic_exchange_explicit(&v->priv[k], NULL, memory_order_acquire);
        if (x) {
            COUNT(victim_hits);
            return hand_out(h, l, cls, x, 1);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        x = sp_chain_pop_tail(&local_at(h->victim, h, (pid + i) % n, cls)->shared);
        for (unsigned k = 0; k < SP_PRIV && !x && !l; k++) /* no P: any victim private */
            x = atomic_exchange_explicit(&local_at(h->victim, h, (pid + i) % n, cls)->priv[k],
                                         NULL, memory_order_acquire);
        if (x) {
            COUNT(victim_hits);
            return hand_out(h, l, cls, x, 1);
        }
    }
    /* 5. New(): the underlying allocator. */
    x = block_new(h, cls);
    if (!x) return NULL; /* out of memory: not counted as a get */
    COUNT(misses);
#undef COUNT
    return hand_out(h, l, cls, x, 0);
}

void sp_put_slow(sp_heap *h, sp_tls_ent *e, unsigned cls, void *p)
{
    if (e) {
        sp_local *l = e->local + cls;
        size_t grown = 0;
        for (unsigned k = 0; k < SP_PRIV; k++)
            if (atomic_load_explicit(&l->priv[k], memory_order_relaxed) == NULL) {
                SP_STAT_INC(l->pfill); /* before the store: cleanup may take it at once */
                atomic_store_explicit(&l->priv[k], p, memory_order_release);
                return;
            }
        sp_under_enter(h); /* a full ring mallocs a bigger one */
        int rc = sp_chain_push_head(&l->shared, p, &grown);
        sp_under_leave(h);
        if (grown) atomic_fetch_add_explicit(&h->meta_bytes, grown, memory_order_relaxed);
        if (rc == 0) return;
    } else {
#if SP_STATS
        atomic_fetch_add_explicit(&h->bucket[cls].puts, 1, memory_order_relaxed);
#endif
    }
    /* No P (more threads than P slots) or no memory for a dequeue: back to the heap below. */
    sp_block_release(h, cls, p);
}

void sp_local_flush(sp_heap *h, sp_tls_ent *e)
{
    for (unsigned cls = 0; cls < h->nb; cls++) {
        sp_local *l = e->local + cls;
        for (unsigned k = 0; k < SP_PRIV; k++) {
            void *x = atomic_exchange_explicit(&l->priv[k], NULL, memory_order_acquire);
            if (!x) continue;
            SP_STAT_INC(l->ptake);
            size_t grown = 0;
            sp_under_enter(h);
            int rc = sp_chain_push_head(&l->shared, x, &grown);
            sp_under_leave(h);
            if (grown) atomic_fetch_add_explicit(&h->meta_bytes, grown, memory_order_relaxed);
            if (rc != 0) sp_block_release(h, cls, x);
        }
    }
}

/* membarrier(2) state of the process: 0 not tried, 1 registered, -1 unavailable. */
static _Atomic int membarrier_state;
_Atomic int sp_membarrier_off;

int sp_membarrier_ready(void)
{
    if (atomic_load_explicit(&sp_membarrier_off, memory_order_relaxed)) return 0;
    int st = atomic_load_explicit(&membarrier_state, memory_order_acquire);
    if (st == 0) {
        long r = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        st = r >= 0 && (r & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                     syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0
                 ? 1
                 : -1;
        atomic_store_explicit(&membarrier_state, st, memory_order_release);
    }
    return st == 1;
}

/* The heavy side of the owners' busy/cleaning handshake: a full barrier on every CPU running
 * a thread of this process, so each owner either sees cleaning = 1 at its next get or has its
 * busy = 1 visible here. The registration survives fork (a child re-registers if the kernel
 * says it must). Can't fail (aborts if the kernel refuses after it agreed at create: the
 * handshake would be unsound). */
static void heavy_barrier(void)
{
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
    if (errno == EPERM &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
    fprintf(stderr, "syncpool: membarrier(PRIVATE_EXPEDITED) failed: %s\n", strerror(errno));
    abort();
}

/* Cleanup may take l's private slots once l's owner is outside its fast get; cleaning = 1 is
 * visible to it (heavy_barrier ran), so its next gets exchange. Can't fail. */
static void wait_not_busy(sp_local *l)
{
    for (unsigned spins = 0; atomic_load_explicit(&l->tb, memory_order_acquire) & 1u; spins++) {
        if (spins < 64)
            __builtin_ia32_pause();
        else
            sched_yield();
    }
}

void sp_cleanup(sp_heap *h, int wait)
{
    if (wait)
        pthread_mutex_lock(&h->gc_lock);
    else if (pthread_mutex_trylock(&h->gc_lock) != 0)
        return;
    unsigned n = atomic_load_explicit(&h->hw, memory_order_acquire);
    /* Owners' gets switch to the exchange before any private slot is taken: cleaning = 1 on
     * every local, then (when another thread owns a P: the caller's own gets are not running
     * now, and a thread that takes a P after the fence below sees cleaning = 1) a barrier on
     * every CPU running one of our threads. */
    int others = 0;
    if (h->asym) {
        for (size_t i = 0; i < (size_t)n * h->nb; i++)
            atomic_store_explicit(&h->local[i].cleaning, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        int self = sp_self_pid(h);
        for (unsigned p = 0; p < n && !others; p++)
            others = (int)p != self && atomic_load_explicit(&h->procs[p].owned, memory_order_relaxed);
        if (others) heavy_barrier();
    }
    for (unsigned cls = 0; cls < h->nb; cls++) {
        for (unsigned p = 0; p < n; p++) {
            sp_local *v = local_at(h->victim, h, p, cls);
            sp_local *l = local_at(h->local, h, p, cls);
            void *x;
            /* 1. drop the old victims (Go: the GC frees them). */
            for (unsigned k = 0; k < SP_PRIV; k++)
                if ((x = atomic_exchange_explicit(&v->priv[k], NULL, memory_order_acquire)))
                    sp_block_release(h, cls, x);
            while ((x = sp_chain_pop_tail(&v->shared))) sp_block_release(h, cls, x);
            /* 2. primary -> victim. Only the values present now move; a value an owner puts
             *    meanwhile stays primary (it was just used). The bound keeps a busy owner
             *    from holding cleanup here forever. */
            if (others) wait_not_busy(l);
            for (unsigned k = 0; k < SP_PRIV; k++)
                if ((x = atomic_exchange_explicit(&l->priv[k], NULL, memory_order_acquire))) {
#if SP_STATS
                    atomic_fetch_add_explicit(&h->bucket[cls].ctake, 1, memory_order_relaxed);
#endif
                    atomic_store_explicit(&v->priv[k], x, memory_order_release);
                }
            /* Done with l's slots: 2 keeps its owner on the slow path until the owner itself
             * clears it (sp_get_slow), never 0 here: an owner that loaded a slot before the
             * exchanges and reads cleaning only now must still see it set. */
            if (h->asym) atomic_store_explicit(&l->cleaning, 2, memory_order_release);
            size_t grown = 0;
            for (long budget = 1L << 24; budget > 0 && (x = sp_chain_pop_tail(&l->shared));
                 budget--) {
                if (sp_chain_push_head(&v->shared, x, &grown) != 0) sp_block_release(h, cls, x);
            }
            if (grown) atomic_fetch_add_explicit(&h->meta_bytes, grown, memory_order_relaxed);
        }
    }
    atomic_store_explicit(&h->since_gc, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->num_gc, 1, memory_order_relaxed);
    pthread_mutex_unlock(&h->gc_lock);
}

void sp_pace_add(sp_heap *h, uint64_t add)
{
    uint64_t since = atomic_fetch_add_explicit(&h->since_gc, add, memory_order_relaxed) + add;
    if (h->gc_mode == 0) return;
    uint64_t goal;
    if (h->gc_mode == 1) {
        goal = h->gc_bytes;
    } else {
        /* GOGC=100: a cycle when the bytes handed out since the last one exceed the bytes
         * live (everything obtained from the underlying heap, pooled blocks included, as
         * pooled objects are reachable in Go), with a 4 MiB floor. */
        uint64_t live = atomic_load_explicit(&h->under_bytes, memory_order_relaxed);
        goal = live > ((uint64_t)4 << 20) ? live : ((uint64_t)4 << 20);
    }
    if (since >= goal) sp_cleanup(h, 0);
}

void sp_tick(sp_heap *h, sp_local *l, unsigned cls)
{
    const sp_bucket *b = &h->bucket[cls];
    atomic_store_explicit(&l->gets, atomic_load_explicit(&l->gets, memory_order_relaxed) +
                          (uint64_t)b->ticks, memory_order_relaxed);
    atomic_store_explicit(&l->tb, (uint32_t)b->ticks << 1, memory_order_relaxed);
    sp_pace_add(h, (uint64_t)b->ticks * b->size);
}

void sp_pools_drain(sp_heap *h)
{
    for (unsigned p = 0; p < h->maxp; p++) {
        for (unsigned cls = 0; cls < h->nb; cls++) {
            sp_local *arrs[2] = {local_at(h->local, h, p, cls), local_at(h->victim, h, p, cls)};
            for (int k = 0; k < 2; k++) {
                sp_local *l = arrs[k];
                void *x;
                for (unsigned j = 0; j < SP_PRIV; j++)
                    if ((x = atomic_exchange_explicit(&l->priv[j], NULL, memory_order_acquire)))
                        sp_block_release(h, cls, x);
                while ((x = sp_chain_pop_tail(&l->shared))) sp_block_release(h, cls, x);
                size_t freed = sp_chain_destroy(&l->shared);
                atomic_fetch_sub_explicit(&h->meta_bytes, freed, memory_order_relaxed);
            }
        }
    }
}

typedef struct walk_ctx {
    void (*fn)(void *ctx, unsigned cls, int where, void *p);
    void *ctx;
    unsigned cls;
    int where;
} walk_ctx;

/* sp_chain_walk callback adding the bucket and place. Can't fail. */
static void walk_one(void *c, void *v)
{
    walk_ctx *w = c;
    w->fn(w->ctx, w->cls, w->where, v);
}

int sp_pools_walk(sp_heap *h, void (*fn)(void *ctx, unsigned cls, int where, void *p), void *ctx,
                  char *msg, size_t msglen)
{
    for (unsigned p = 0; p < h->maxp; p++) {
        for (unsigned cls = 0; cls < h->nb; cls++) {
            for (int k = 0; k < 2; k++) {
                sp_local *l = local_at(k ? h->victim : h->local, h, p, cls);
                for (unsigned j = 0; j < SP_PRIV; j++) {
                    void *x = atomic_load_explicit(&l->priv[j], memory_order_acquire);
                    if (x) fn(ctx, cls, 2 * k, x);
                }
                walk_ctx w = {fn, ctx, cls, 2 * k + 1};
                char why[160];
                if (sp_chain_walk(&l->shared, walk_one, &w, why, sizeof why) < 0) {
                    snprintf(msg, msglen, "syncpool: P %u bucket %zu %s: %s", p,
                             h->bucket[cls].size, k ? "victim" : "primary", why);
                    return -1;
                }
            }
        }
    }
    return 0;
}
