/* syncpool.c - a backend built from Go's sync.Pool: size-bucketed object reuse with per-thread
 * caches, work stealing and a victim cache, over an underlying allocator.
 *
 * Lineage. The seed lecture's MultiLevelPool rounds each request up to a power of two from
 * 16 B to 32 KiB and keeps one FixedSizePool (a sync.Pool) per size; anything larger is a
 * plain allocation. Its Free accepts a slice back only when cap(b) is a bucket size, zeroes it
 * "for safety" and Puts it; its Stats() prints allocs/frees/hits/misses that the Go code never
 * increments. (Its getAllocSize also never returns 32 KiB: a 20 000 B request stops at 16 KiB,
 * doubles to 32 KiB, hits `size >= 32*1024` and returns 20 000, a size no pool accepts back.
 * Here 16 KiB < n <= 32 KiB uses the 32 KiB bucket.) The pool itself is Go's sync.Pool as
 * src/sync/pool.go and poolqueue.go build it (specs/go-allocator.md section 6): per-P
 * {private, shared poolChain}, steal from other Ps' tails, the victim cache of Go issue 22950,
 * poolCleanup at every GC. Go's New() is the underlying allocator (libc, or `under=`).
 *
 * Glossary
 *   bucket   one size class: powers of two min..max (default 16 B..32 KiB), or with fixed=N the
 *            single bucket N rounded up to 16 (the lecture's FixedSizePool).
 *   block    what the pools hold: a 16-byte header + the bucket's bytes, obtained from the
 *            underlying allocator. The header {key, info} records the bucket (info = index, or
 *            size << 8 | 0xff for a large block); key = salt ^ address ^ info, salt
 *            unique per heap. It is how free(p, 0) finds p's bucket (the lecture's cap(b)),
 *            and how a foreign or corrupt pointer is refused (never pooled; counted; `check`
 *            then fails). Cost: 16 bytes per block, counted in Sys and PoolBytesHeld.
 *            Buckets >= 1 KiB (when the underlying allocator has alloc_aligned) put the data
 *            on a cache line instead: a 64-aligned base (page-aligned from 4 KiB), 48 unused
 *            bytes, the header, the data at base + 64; 64 bytes per block. Measured: memset +
 *            memcpy of 4..16 KiB run 20-30% slower 16 bytes off a line, and up to 15x slower
 *            (rep movsb on this AMD EPYC) when source and destination differ by 16 mod 64;
 *            at equal page offsets a 4 KiB get+put+copy ran 35 ns, not 56. (off, gross) per
 *            bucket: base = p - off, gross bytes from the underlying allocator.
 *   P        a slot a thread takes when it first uses the heap (Go's P; `procs`, default 64,
 *            per heap) and gives back on thread exit (pthread key destructor) or
 *            thread_detach. A thread finds its P through its most recently used registration
 *            (two TLS words: heap id, locals), then a per-thread 8-way cache keyed by the heap's
 *            unique id, then a per-thread list of registrations (several heaps can exist; a
 *            destroyed heap's id never comes back).
 *   local    Go's poolLocal, one per (P, bucket), 128 bytes: two private slots (Go has one;
 *            a second keeps two live blocks of one bucket, a request's body and its buffer,
 *            off the shared chain's atomics: -31 instructions per op on bufchurn 4 KiB), a
 *            shared poolChain (sp_ring.c: single-producer pushHead/popHead, any-thread
 *            popTail), the busy/cleaning handshake words, and the owner's counters (gets
 *            through the tick, below; hits = gets - misses, not counted).
 *   victim   the same array again: what the last cleanup moved out of the primary locals.
 *
 * Allocation (get), each step amortising the next:
 *   1. size > max bucket: the underlying allocator, with a header (cold, noinline).
 *   2. bucket index: one or + one lzcnt (bsr on CPUs without it: the get is built twice,
 *      target_clones picks at load time; bsr's 4-cycle latency sits on the chain to the
 *      local's loads). The thread's registration: compare a TLS word with the
 *      heap id, load the locals from the next one.
 *   3. private slots: busy = 1, load slot 0 (else 1), check cleaning == 0, store NULL to the
 *      slot, busy = 0: plain loads and stores, no atomic read-modify-write (an exchange here,
 *      a locked instruction, cost 2-3 ns a get on this machine's EPYC and drained the store
 *      buffer after every memcpy). Safe against cleanup by the handshake under Cleanup.
 *   4. own shared popHead (LIFO: cache-hot);
 *   5. steal: popTail from the other Ps, (pid+i+1)%n;
 *   6. victim: own victim private, then popTail across the victim shards;
 *   7. New(): a fresh block from the underlying allocator (a miss).
 *   Each get counts down its local's tick (the only count of a get on the fast path; it
 *   shares a word with busy, so step 3's busy = 0 and the count are one store); at zero
 *   the local adds ticks to its gets and ticks x bucket size to the heap's count of bytes
 *   handed out (256 KiB a report, less for a small gc_bytes), and crossing the trigger runs a
 *   cleanup. stats() adds the ticks not yet reported.
 * Free (put), the mirror:
 *   1. read the header's key: key ^ salt ^ address is a bucket index -> step 2 (one load;
 *      a word that is not a key passes with odds of 17 in 2^64). Else both words are
 *      checked: not ours -> refuse (count); large -> the underlying allocator.
 *   2. zero=1: memset (the lecture does it on every Free; off by default, measure it; a
 *      separate noinline path, so the default fast path makes no call). SP_DEBUG=1: fill
 *      0x55 (a get from a pool verifies it and fills 0xAA: a write after put aborts).
 *   3. a private slot empty: one release store. Else pushHead on own shared chain (a new
 *      dequeue twice the size when full). Threads without a P give blocks back to the
 *      underlying allocator.
 *   The fast put counts nothing (a counter there cost 3% of bufchurn steady at 64 B and
 *   1 KiB, measured with alloclab interleave): a block put into a private slot leaves it by a
 *   fast get (counted by the tick), a slow get, a cleanup or an exit flush (each counted
 *   there), or is still there, so stats() derives the fast puts from those counts (sp_local);
 *   exact whenever the heap is quiescent, as the other counts are.
 * Cleanup (collect, or the trigger: every gc_bytes, default Go's GOGC=100 pacing: when the
 *   bytes handed out since the last cycle exceed max(4 MiB, bytes obtained from the underlying
 *   heap)): under gc_lock, per bucket and P: free the victims to the underlying allocator,
 *   move primary private and shared into the victim shard. No stop-the-world: cleanup is one
 *   more consumer (exchange/popTail) of the primary and the sole producer of the victim
 *   chains; a block is taken by exactly one exchange or CAS (see sp_pool.c), except the
 *   owner's fast get, which the handshake keeps apart from cleanup's exchanges:
 *     cleanup: cleaning = 1 on every local; membarrier(PRIVATE_EXPEDITED) (a full barrier on
 *              every CPU running one of our threads; skipped when no other thread owns a P:
 *              one that takes a P later sees cleaning = 1); per local: wait busy == 0,
 *              exchange the private slots, cleaning = 2 (done).
 *     owner:   busy = 1; load slot; load cleaning (not 0: busy = 0, the slow path exchanges,
 *              and turns a 2 back to 0); store NULL; busy = 0.
 *   The barrier makes an owner either see cleaning = 1 or have its busy = 1 seen. Only the
 *   owner clears cleaning, so an owner that loaded a slot before the exchanges and reads
 *   cleaning after them still sees it set. Gets pay two plain stores and a load; a cleanup
 *   one system call (~0.5 us) when other threads own Ps. Without membarrier() (old kernel,
 *   seccomp) cleaning stays 1 and every get exchanges.
 * realloc: the same bucket returns p; large to large uses the underlying realloc.
 * alloc_aligned: align <= 16 is an ordinary get (every block is 16-aligned); larger
 *   alignments are one unpooled block of size + align + 32 from the underlying allocator,
 *   the total and the base pointer stored in the 16 bytes before the header.
 * destroy returns every pooled block and every dequeue; blocks the caller never freed are
 *   released only if the underlying heap's destroy releases them (libc's does not).
 * fork (atfork, for drop-ins): PREPARE takes live_lock, gc_lock, the fork gate (below), then
 *   the underlying backend's atfork; PARENT releases in reverse; CHILD re-initialises. The
 *   fork gate: when the underlying allocator is not fork-safe by itself (a backend without
 *   atfork; AddressSanitizer's malloc), every call into it holds a rwlock for reading, so no
 *   thread is inside it when fork() copies the process. Off for glibc's malloc (it locks its
 *   arenas around fork itself) and never on the fast path.
 *
 * Invariants (stats level 1; `check`, quiescent):
 *   per bucket: held = misses - dropped - gets + puts = |private| + |shared| + |victims|;
 *   every pooled block has a valid header of its bucket and sits in exactly one place;
 *   under_bytes = sum_b (misses_b - dropped_b) * gross_b + large_live + 16 * large_n
 *                 + aligned_extra   (large_n: live large and aligned blocks);
 *   per dequeue: 0 <= head - tail <= slots, slots [tail, head) non-NULL.
 */
#include "sp_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

/* The thread's most recently used registration, first in line on the fast paths: its id and
 * P's locals (two TLS loads, no index arithmetic). Behind it an 8-way cache of copies keyed by
 * heap id, behind that the full list. Invariant: mru.id != 0 => the cache way of mru.id holds
 * that registration. Heap ids are never reused, so a destroyed heap's entry cannot match. */
static _Thread_local struct sp_mru {
    uint64_t id;
    sp_local *local;
} sp_mru;
static _Thread_local sp_tls_ent sp_tls_cache[SP_TLS_WAYS];

#if SP_DEBUG
void sp_debug_fail(const void *p, size_t n, size_t at, unsigned char got)
{
    fprintf(stderr,
            "syncpool: write after put: block %p (bucket %zu B) byte %zu holds 0x%02x, not the "
            "0x%02x put left there\n",
            p, n, at, got, SP_FILL_FREE);
    abort();
}
#endif

/* The thread's full list of registrations (the cache above holds copies of some). */
typedef struct sp_tlist {
    unsigned n, cap;
    sp_tls_ent ent[];
} sp_tlist;

static _Thread_local sp_tlist *tls_list;
static _Thread_local int tls_creating; /* recursion guard for under= */
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
/* Guards live_heaps. Recursive only so that the atfork(PREPARE) of several heaps can each take
 * it (nested, in the forking thread); no other path re-enters it. */
static pthread_mutex_t live_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static sp_heap *live_heaps;
static _Atomic uint64_t next_heap_id = 1;

/* ---------------------------------------------------------------------------------------
 * threads -> P
 * --------------------------------------------------------------------------------------- */

/* live_lock held. The live heap with this id, or NULL. */
static sp_heap *live_find(uint64_t id)
{
    for (sp_heap *h = live_heaps; h; h = h->next_live)
        if (h->id == id) return h;
    return NULL;
}

/* Give P e->pid of h back: private slots to the shared chains. (Its locals keep their ticks
 * for the next owner.) Can't fail. */
static void proc_release(sp_heap *h, sp_tls_ent *e)
{
    sp_local_flush(h, e);
    atomic_store_explicit(&h->procs[e->pid].owned, 0, memory_order_release);
}

/* Drop entry i of this thread's list (and its cache copy and MRU). Can't fail. */
static void list_remove(unsigned i)
{
    uint64_t id = tls_list->ent[i].id;
    sp_tls_ent *c = &sp_tls_cache[id & (SP_TLS_WAYS - 1)];
    if (c->id == id) c->id = 0;
    if (sp_mru.id == id) sp_mru.id = 0;
    tls_list->ent[i] = tls_list->ent[--tls_list->n];
}

/* pthread key destructor: the thread is exiting; give back every P it holds. Can't fail. */
static void tls_exit(void *arg)
{
    sp_tlist *l = arg;
    tls_list = l;
    pthread_mutex_lock(&live_lock);
    for (unsigned i = 0; i < l->n; i++) {
        sp_heap *h = live_find(l->ent[i].id);
        if (h) proc_release(h, &l->ent[i]);
    }
    pthread_mutex_unlock(&live_lock);
    memset(sp_tls_cache, 0, sizeof sp_tls_cache);
    sp_mru.id = 0;
    tls_list = NULL;
    free(l);
}

/* pthread_once: the one process-wide key (never deleted). Can't fail (a failed key only
 * loses the exit-time flush). */
static void tls_key_make(void) { pthread_key_create(&tls_key, tls_exit); }

/* Load the list entry at i into its cache way and make it the MRU. Returns the cache entry;
 * can't fail. */
static sp_tls_ent *cache_load(unsigned i)
{
    uint64_t id = tls_list->ent[i].id;
    sp_tls_ent *c = &sp_tls_cache[id & (SP_TLS_WAYS - 1)];
    *c = tls_list->ent[i];
    sp_mru.id = c->id;
    sp_mru.local = c->local;
    return c;
}

int sp_self_pid(const sp_heap *h)
{
    const sp_tls_ent *c = &sp_tls_cache[h->id & (SP_TLS_WAYS - 1)];
    if (c->id == h->id) return (int)c->pid;
    for (unsigned i = 0; tls_list && i < tls_list->n; i++)
        if (tls_list->ent[i].id == h->id) return (int)tls_list->ent[i].pid;
    return -1;
}

/* The calling thread's registration with h when it is in the 8-way cache (then it becomes
 * the MRU), else NULL. Can't fail. */
static inline sp_tls_ent *cache_find(const sp_heap *h)
{
    sp_tls_ent *c = &sp_tls_cache[h->id & (SP_TLS_WAYS - 1)];
    if (c->id != h->id) return NULL;
    sp_mru.id = c->id;
    sp_mru.local = c->local;
    return c;
}

/* The calling thread's registration with h, registering it (taking a free P) when it has
 * none. Returns the cache entry, or NULL when every P of h is taken or memory ran out. */
__attribute__((noinline, cold)) static sp_tls_ent *tls_slow(sp_heap *h)
{
    if (tls_list)
        for (unsigned i = 0; i < tls_list->n; i++)
            if (tls_list->ent[i].id == h->id) return cache_load(i);
    pthread_once(&tls_once, tls_key_make);
    pthread_mutex_lock(&live_lock);
    /* Forget registrations with heaps that are gone. */
    for (unsigned i = 0; tls_list && i < tls_list->n;) {
        if (!live_find(tls_list->ent[i].id))
            list_remove(i);
        else
            i++;
    }
    sp_tls_ent *res = NULL;
    if (!tls_list || tls_list->n == tls_list->cap) {
        unsigned cap = tls_list ? tls_list->cap * 2 : 4;
        sp_tlist *nl = realloc(tls_list, sizeof(sp_tlist) + cap * sizeof(sp_tls_ent));
        if (!nl) goto out;
        if (!tls_list) nl->n = 0;
        nl->cap = cap;
        tls_list = nl;
        pthread_setspecific(tls_key, nl);
    }
    for (unsigned p = 0; p < h->maxp; p++) {
        int zero = 0;
        if (atomic_load_explicit(&h->procs[p].owned, memory_order_relaxed) != 0) continue;
        if (!atomic_compare_exchange_strong_explicit(&h->procs[p].owned, &zero, 1,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
        unsigned hw = atomic_load_explicit(&h->hw, memory_order_relaxed);
        while (hw < p + 1 &&
               !atomic_compare_exchange_weak_explicit(&h->hw, &hw, p + 1, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
        }
        sp_tls_ent *e = &tls_list->ent[tls_list->n++];
        e->id = h->id;
        e->pid = p;
        e->local = h->local + (size_t)p * h->nb;
        res = cache_load(tls_list->n - 1);
        break;
    }
out:
    pthread_mutex_unlock(&live_lock);
    return res;
}

/* ---------------------------------------------------------------------------------------
 * get / put
 * --------------------------------------------------------------------------------------- */

_Static_assert(SP_PRIV == 2, "the fast paths in sp_alloc and put_block look at two slots");

/* The get is built twice, for any x86-64 and for x86-64-v3 (lzcnt: 1 cycle where bsr takes 4
 * on this EPYC, on the chain from the size to the local's loads); the loader picks one
 * (ifunc). Not in sanitizer builds: an ifunc resolver runs before their runtimes start. */
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define SP_GET_CLONES __attribute__((target_clones("default", "arch=x86-64-v3")))
#else
#define SP_GET_CLONES
#endif

/* Bucket index of a request of 1 <= size <= max_size: the log2 of size rounded up to a
 * power of two, from min_size up (fixed=: always 0, cls_or then covers max_size - 1).
 * One or, one lzcnt (or bsr + xor), one sub. Can't fail. */
static inline unsigned bucket_of(const sp_heap *h, size_t size)
{
    unsigned long long v = (unsigned long long)(size - 1) | h->cls_or;
    return h->cls_top - (unsigned)__builtin_clzll(v);
}

/* A large block (size > max bucket) from the underlying allocator. NULL when huge or OOM. */
__attribute__((noinline)) static void *large_alloc(sp_heap *h, size_t size)
{
    if (size > (size_t)PTRDIFF_MAX - SP_HDR || (uint64_t)size > (UINT64_MAX >> 8)) return NULL;
    sp_under_enter(h);
    char *base = h->under->alloc(h->under_heap, size + SP_HDR);
    sp_under_leave(h);
    if (!base) return NULL;
    sp_hdr_set(h, base, (uint64_t)size << 8 | SP_LARGE);
    atomic_fetch_add_explicit(&h->under_bytes, size + SP_HDR, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_live, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_total, size, memory_order_relaxed);
    sp_pace_add(h, size);
    return base + SP_HDR;
}

/* Give a large block back to the underlying allocator. Can't fail. */
static void large_free(sp_heap *h, void *p, size_t size)
{
    sp_under_enter(h);
    h->under->free(h->under_heap, (char *)p - SP_HDR, size + SP_HDR);
    sp_under_leave(h);
    atomic_fetch_sub_explicit(&h->under_bytes, size + SP_HDR, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->large_live, size, memory_order_relaxed);
}

/* get past the fast path: the registration from the cache or the list (registering the
 * thread), then sp_get_slow. As sp_get_slow. */
__attribute__((noinline, cold)) static void *get_slow(sp_heap *h, unsigned cls)
{
    sp_tls_ent *e = cache_find(h);
    return sp_get_slow(h, e ? e : tls_slow(h), cls);
}

/* alloc of size 0 (the smallest bucket) or of a large block. As sp_alloc. */
__attribute__((noinline, cold)) static void *alloc_edge(sp_heap *h, size_t size)
{
    if (size == 0) return get_slow(h, 0);
    return large_alloc(h, size);
}

/* vtable alloc (contract in allocator.h). NULL when huge or out of memory. */
SP_GET_CLONES static void *sp_alloc(void *heap, size_t size)
{
    sp_heap *h = heap;
    if (sp_unlikely(size - 1 >= h->max_size)) return alloc_edge(h, size); /* 0 or large */
    unsigned cls = bucket_of(h, size);
    if (sp_unlikely(sp_mru.id != h->id)) return get_slow(h, cls);
    sp_local *l = sp_mru.local + cls;
    /* The owner's side of the handshake with cleanup: busy = 1, then (in program order, which
     * cleanup's membarrier makes enough) read cleaning; while it is 0 no one else touches the
     * private slots, so taking one is a load and a store, no exchange. busy shares its word
     * with the tick: one store clears it and counts the get. */
    uint32_t t = atomic_load_explicit(&l->tb, memory_order_relaxed);
    atomic_store_explicit(&l->tb, t + 1u, memory_order_relaxed); /* t is even: busy = 1 */
    atomic_signal_fence(memory_order_seq_cst);
    _Atomic(void *) *slot = &l->priv[0]; /* the first non-empty one: puts fill 0 first */
    void *x = atomic_load_explicit(slot, memory_order_acquire);
    if (x == NULL) x = atomic_load_explicit(++slot, memory_order_acquire);
    if (sp_unlikely(x == NULL) ||
        sp_unlikely(atomic_load_explicit(&l->cleaning, memory_order_relaxed))) {
        atomic_store_explicit(&l->tb, t, memory_order_release);
        return get_slow(h, cls);
    }
    atomic_store_explicit(slot, NULL, memory_order_relaxed);
    t -= 2u;
    atomic_store_explicit(&l->tb, t, memory_order_release);
    if (sp_unlikely(t == 0)) sp_tick(h, l, cls);
    SP_UNPOISON(x, h->bucket[cls].size);
    SP_DEBUG_OUT(x, h->bucket[cls].size, 1);
    return x;
}

/* An alloc_aligned block (align > 16): [base ... | total | base | header | p (aligned) ...]
 * taken from the underlying allocator as one large block of total = size + align + 32
 * bytes. Not pooled. Returns p, or NULL on a bad alignment, a huge size or OOM. */
static void *sp_alloc_aligned(void *heap, size_t align, size_t size)
{
    sp_heap *h = heap;
    if (align < sizeof(void *) || (align & (align - 1)) || align > ((size_t)1 << 30)) return NULL;
    if (align <= AL_MIN_ALIGN) return sp_alloc(h, size);
    if (size > (size_t)PTRDIFF_MAX - align - 2 * SP_HDR || (uint64_t)size > (UINT64_MAX >> 8))
        return NULL;
    size_t total = size + align + 2 * SP_HDR;
    sp_under_enter(h);
    char *base = h->under->alloc(h->under_heap, total);
    sp_under_leave(h);
    if (!base) return NULL;
    char *p = (char *)(((uintptr_t)base + 2 * SP_HDR + align - 1) & ~(uintptr_t)(align - 1));
    uint64_t t = total;
    memcpy(p - 32, &t, sizeof t);
    memcpy(p - 24, &base, sizeof base);
    sp_hdr_set(h, p - SP_HDR, (uint64_t)size << 8 | SP_ALIGNED);
    atomic_fetch_add_explicit(&h->under_bytes, total, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->aligned_extra, total - size - SP_HDR, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_live, size, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_total, size, memory_order_relaxed);
    sp_pace_add(h, size);
    return p;
}

/* Give an alloc_aligned block back to the underlying allocator. Can't fail. */
static void aligned_free(sp_heap *h, void *p, size_t size)
{
    uint64_t total;
    char *base;
    memcpy(&total, (char *)p - 32, sizeof total);
    memcpy(&base, (char *)p - 24, sizeof base);
    sp_under_enter(h);
    h->under->free(h->under_heap, base, (size_t)total);
    sp_under_leave(h);
    atomic_fetch_sub_explicit(&h->under_bytes, total, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->aligned_extra, total - size - SP_HDR, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->large_frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&h->large_live, size, memory_order_relaxed);
}

/* A pointer whose header is not one of this heap's pooled buckets: a large or aligned block,
 * or a foreign/corrupt pointer (refused: never pooled, counted, reported by check). */
__attribute__((noinline, cold)) static void free_other(sp_heap *h, void *p, uint64_t info)
{
    if (info != UINT64_MAX && (info & 0xff) == SP_LARGE) {
        large_free(h, p, (size_t)(info >> 8));
        return;
    }
    if (info != UINT64_MAX && (info & 0xff) == SP_ALIGNED) {
        aligned_free(h, p, (size_t)(info >> 8));
        return;
    }
    atomic_fetch_add_explicit(&h->rejected, 1, memory_order_relaxed);
}

/* put past the MRU: the registration from the cache or the list (registering the thread),
 * then sp_put_slow. Can't fail. */
__attribute__((noinline, cold)) static void put_no_mru(sp_heap *h, unsigned cls, void *p)
{
    sp_tls_ent *e = cache_find(h);
    if (!e) e = tls_slow(h);
#if SP_STATS
    if (e) SP_STAT_INC(e->local[cls].puts);
#endif
    sp_put_slow(h, e, cls, p);
}

/* The slow put of the fast path (both private slots full). Can't fail. */
__attribute__((noinline)) static void put_full(sp_heap *h, unsigned cls, void *p)
{
    sp_tls_ent *e = cache_find(h);
#if SP_STATS
    if (e) SP_STAT_INC(e->local[cls].puts);
#endif
    sp_put_slow(h, e, cls, p);
}

/* The put of block p of bucket cls (its header already checked): debug fill, poison, then
 * a private slot (a plain store: cleanup only ever exchanges them, so it either takes p or
 * finds the slot empty) or the slow path. Can't fail. */
static inline void put_block(sp_heap *h, unsigned cls, void *p)
{
    size_t bs = h->bucket[cls].size;
    SP_DEBUG_IN(p, bs);
    SP_POISON(p, bs);
    (void)bs;
    if (sp_unlikely(sp_mru.id != h->id)) {
        put_no_mru(h, cls, p);
        return;
    }
    sp_local *l = sp_mru.local + cls; /* no count: see sp_local */
    if (sp_likely(atomic_load_explicit(&l->priv[0], memory_order_relaxed) == NULL)) {
        atomic_store_explicit(&l->priv[0], p, memory_order_release);
        return;
    }
    if (atomic_load_explicit(&l->priv[1], memory_order_relaxed) == NULL) {
        atomic_store_explicit(&l->priv[1], p, memory_order_release);
        return;
    }
    put_full(h, cls, p);
}

/* free with zero=1: the lecture's "for safety" memset, kept off the default path so the fast
 * path makes no call (and saves no registers). Can't fail. */
__attribute__((noinline)) static void put_zeroed(sp_heap *h, unsigned cls, void *p)
{
    memset(p, 0, h->bucket[cls].size);
    put_block(h, cls, p);
}

/* free of a block the fast path does not take: zero=1 (every bucket block), large, aligned
 * or foreign. Can't fail. */
__attribute__((noinline, cold)) static void free_edge(sp_heap *h, void *p, uint64_t info)
{
    if (info < h->nb)
        put_zeroed(h, (unsigned)info, p);
    else
        free_other(h, p, info);
}

/* vtable free. Can't fail (a foreign pointer is refused and counted). */
static void sp_free(void *heap, void *p, size_t size)
{
    (void)size; /* the header knows the bucket; a wrong hint cannot misfile a block */
    if (sp_unlikely(p == NULL)) return;
    sp_heap *h = heap;
    uint64_t info = sp_hdr_key_info(h, p);
    if (sp_unlikely(info >= h->put_nb)) { /* put_nb is 0 with zero=1 */
        free_edge(h, p, sp_hdr_info(h, p)); /* both words checked */
        return;
    }
    put_block(h, (unsigned)info, p);
}

/* vtable realloc. NULL on failure (or a foreign p), p then unchanged. */
static void *sp_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    sp_heap *h = heap;
    (void)old_size;
    if (!p) return sp_alloc(h, new_size);
    uint64_t info = sp_hdr_info(h, p);
    size_t usable;
    if (info == UINT64_MAX) {
        atomic_fetch_add_explicit(&h->rejected, 1, memory_order_relaxed);
        return NULL;
    }
    if (info < h->nb) {
        usable = h->bucket[info].size;
        if (new_size - 1 < h->max_size && bucket_of(h, new_size) == info) return p;
    } else {
        usable = (size_t)(info >> 8);
        if ((info & 0xff) == SP_LARGE && new_size > h->max_size && h->under->realloc) {
            if (new_size > (size_t)PTRDIFF_MAX - SP_HDR) return NULL;
            sp_under_enter(h);
            char *nb = h->under->realloc(h->under_heap, (char *)p - SP_HDR, usable + SP_HDR,
                                         new_size + SP_HDR);
            sp_under_leave(h);
            if (!nb) return NULL;
            sp_hdr_set(h, nb, (uint64_t)new_size << 8 | SP_LARGE);
            atomic_fetch_add_explicit(&h->under_bytes, new_size - usable, memory_order_relaxed);
            atomic_fetch_add_explicit(&h->large_live, new_size - usable, memory_order_relaxed);
            if (new_size > usable) {
                atomic_fetch_add_explicit(&h->large_total, new_size - usable,
                                          memory_order_relaxed);
                sp_pace_add(h, new_size - usable);
            }
            return nb + SP_HDR;
        }
    }
    void *q = sp_alloc(h, new_size);
    if (!q) return NULL;
    memcpy(q, p, usable < new_size ? usable : new_size);
    sp_free(h, p, 0);
    return q;
}

/* vtable usable_size: the bucket size, or a large block's size; 0 for a foreign p. */
static size_t sp_usable_size(void *heap, const void *p)
{
    sp_heap *h = heap;
    uint64_t info = sp_hdr_info(h, p);
    if (info < h->nb) return h->bucket[info].size;
    if (info != UINT64_MAX && ((info & 0xff) == SP_LARGE || (info & 0xff) == SP_ALIGNED))
        return (size_t)(info >> 8);
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * options, create, destroy
 * --------------------------------------------------------------------------------------- */

typedef struct sp_opts {
    int zero;
    size_t min, max, fixed;
    int min_set, max_set, gc_set;
    uint64_t gc_bytes;
    char under[32];
    unsigned procs;
} sp_opts;

static const char *const opt_keys[] = {"zero", "min", "max", "fixed", "gc_bytes", "under",
                                       "procs"};
#define OPT_KEYS_TEXT "zero, min, max, fixed, gc_bytes, under, procs"

/* "123", "64k", "4m", "1g" (binary units). Returns 0, or -1 on junk/overflow. */
static int parse_size(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    unsigned shift = 0;
    switch (tolower((unsigned char)*end)) {
    case 'k': shift = 10; end++; break;
    case 'm': shift = 20; end++; break;
    case 'g': shift = 30; end++; break;
    default: break;
    }
    if (*end || (shift && v > (UINT64_MAX >> shift))) return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* 1 when v is a power of two. Can't fail. */
static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

/* Apply key=val to o. Returns 0, or -1 with one line in err. */
static int opt_set(sp_opts *o, const char *key, size_t klen, const char *val, char *err,
                   size_t errlen, const char *from)
{
    uint64_t v = 0;
    int known = -1;
    for (unsigned i = 0; i < sizeof opt_keys / sizeof opt_keys[0]; i++)
        if (strlen(opt_keys[i]) == klen && strncmp(opt_keys[i], key, klen) == 0) known = (int)i;
    if (known < 0) {
        snprintf(err, errlen, "syncpool: unknown option \"%.*s\" in %s (known: " OPT_KEYS_TEXT ")",
                 (int)klen, key, from);
        return -1;
    }
    if (known != 5 && parse_size(val, &v) != 0) {
        snprintf(err, errlen, "syncpool: option %s=\"%s\" in %s is not a number", opt_keys[known],
                 val, from);
        return -1;
    }
    switch (known) {
    case 0:
        if (v > 1) goto bad;
        o->zero = (int)v;
        break;
    case 1:
    case 2:
        if (!is_pow2(v) || v < SP_MIN_BUCKET || v > SP_MAX_BUCKET_LIMIT) goto bad;
        if (known == 1) o->min = v, o->min_set = 1;
        else o->max = v, o->max_set = 1;
        break;
    case 3:
        if (v < 1 || v > SP_MAX_BUCKET_LIMIT) goto bad;
        o->fixed = v;
        break;
    case 4:
        o->gc_bytes = v;
        o->gc_set = 1;
        break;
    case 5:
        if (strlen(val) >= sizeof o->under) goto bad;
        strcpy(o->under, val);
        break;
    case 6:
        if (v < 1 || v > 1024) goto bad;
        o->procs = (unsigned)v;
        break;
    }
    return 0;
bad:
    snprintf(err, errlen,
             "syncpool: bad %s=\"%s\" in %s (zero: 0|1; min, max: powers of two 16..1m; "
             "fixed: 1..1m; procs: 1..1024; under: a backend name)",
             opt_keys[known], val, from);
    return -1;
}

/* Defaults, then ALLOCLAB_SYNCPOOL_<KEY>, then the options string. 0 or -1 + err. */
static int opts_read(sp_opts *o, const char *options, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->min = 16;
    o->max = 32768;
    o->procs = 64;
    strcpy(o->under, "libc");
    for (unsigned i = 0; i < sizeof opt_keys / sizeof opt_keys[0]; i++) {
        char name[64] = "ALLOCLAB_SYNCPOOL_";
        size_t n = strlen(name);
        for (const char *k = opt_keys[i]; *k && n + 1 < sizeof name; k++)
            name[n++] = (char)toupper((unsigned char)*k);
        name[n] = 0;
        const char *v = getenv(name);
        if (v && opt_set(o, opt_keys[i], strlen(opt_keys[i]), v, err, errlen, name) != 0)
            return -1;
    }
    const char *s = options ? options : "";
    while (*s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len) {
            char item[256];
            if (len >= sizeof item) {
                snprintf(err, errlen, "syncpool: option too long: \"%.40s...\"", s);
                return -1;
            }
            memcpy(item, s, len);
            item[len] = 0;
            char *eq = strchr(item, '=');
            if (!eq) {
                snprintf(err, errlen, "syncpool: option \"%s\" is not key=value (known: "
                         OPT_KEYS_TEXT ")", item);
                return -1;
            }
            if (opt_set(o, item, (size_t)(eq - item), eq + 1, err, errlen, "options") != 0)
                return -1;
        }
        s += len + (end ? 1 : 0);
    }
    if (o->min > o->max) {
        snprintf(err, errlen, "syncpool: min=%zu is above max=%zu", o->min, o->max);
        return -1;
    }
    if (o->fixed && (o->min_set || o->max_set)) {
        snprintf(err, errlen, "syncpool: fixed= excludes min= and max=");
        return -1;
    }
    return 0;
}

/* Free the heap's own memory (not the blocks). Can't fail. */
static void heap_free(sp_heap *h)
{
    free(h->local);
    free(h->victim);
    free(h->procs);
    pthread_mutex_destroy(&h->gc_lock);
    pthread_rwlock_destroy(&h->under_gate);
    free(h);
}

/* vtable create. NULL + one line in err on a bad option or out of memory; nothing leaks. */
static void *sp_create(const char *options, char *err, size_t errlen)
{
    sp_opts o;
    if (opts_read(&o, options, err, errlen) != 0) return NULL;
    if (strcmp(o.under, "syncpool") == 0 || tls_creating) {
        snprintf(err, errlen, "syncpool: under=%s would make syncpool pool into itself",
                 o.under);
        return NULL;
    }
    const al_backend *ub = al_backend_find(o.under);
    if (!ub) {
        snprintf(err, errlen, "syncpool: under=%s: no such backend", o.under);
        return NULL;
    }
    if (!(ub->caps & AL_CAP_THREAD_SAFE) || (ub->caps & AL_CAP_PRELOAD)) {
        snprintf(err, errlen, "syncpool: under=%s: needs an in-process thread-safe backend",
                 o.under);
        return NULL;
    }
    sp_heap *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "syncpool: out of memory");
        return NULL;
    }
    pthread_mutex_init(&h->gc_lock, NULL);
    pthread_rwlock_init(&h->under_gate, NULL);
    /* The gate (sp_under_enter): for an underlying backend without its own atfork, except
     * glibc's malloc, which locks itself around fork(). The sanitizers' mallocs do not (a
     * ThreadSanitizer child hung in its allocator's region lock about one fork in five). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    h->gated = !ub->atfork;
#else
    h->gated = !ub->atfork && strcmp(ub->name, "libc") != 0;
#endif
    if (o.fixed) {
        size_t f = (o.fixed + 15) & ~(size_t)15;
        h->fixed = 1;
        h->min_size = h->max_size = f;
        h->nb = 1;
        h->bucket[0].size = f;
        h->cls_or = f - 1; /* f >= 16: bsr((n - 1) | (f - 1)) = bsr(f - 1) for n <= f */
    } else {
        h->min_size = o.min;
        h->max_size = o.max;
        h->nb = (unsigned)(__builtin_ctzll(o.max) - __builtin_ctzll(o.min)) + 1;
        for (unsigned b = 0; b < h->nb; b++) h->bucket[b].size = o.min << b;
        h->cls_or = o.min - 1; /* n <= min: bsr(min - 1); min < n <= 2 min: one more; ... */
    }
    h->cls_top = (unsigned)__builtin_clzll((unsigned long long)h->cls_or); /* 63 - floor(log2) */
    for (unsigned b = 0; b < h->nb; b++) { /* sizes <= 1 MiB: no overflow */
        int line = h->bucket[b].size >= SP_ALIGN_FROM && ub->alloc_aligned;
        h->bucket[b].off = line ? SP_LINE : SP_HDR;
        h->bucket[b].gross = h->bucket[b].size + h->bucket[b].off;
    }
    h->put_nb = o.zero ? 0 : h->nb;
    h->maxp = o.procs;
    if (!o.gc_set) {
        h->gc_mode = 2;
    } else if (o.gc_bytes == 0) {
        h->gc_mode = 0;
    } else {
        h->gc_mode = 1;
        h->gc_bytes = o.gc_bytes;
    }
    /* Each local reports to the cleanup trigger every `quantum` bytes it hands out (ticks
     * gets of its bucket): 256 KiB (its atomic add to the heap count is a locked instruction),
     * or an eighth of a smaller gc_bytes. */
    uint64_t quantum = (uint64_t)256 << 10;
    if (h->gc_mode == 1 && h->gc_bytes / 8 < quantum) quantum = h->gc_bytes / 8;
    for (unsigned b = 0; b < h->nb; b++) {
        uint64_t t = quantum / h->bucket[b].size;
        h->bucket[b].ticks = t ? (int32_t)(t < (1u << 30) ? t : (1u << 30)) : 1;
    }
    /* Without membarrier() owners cannot skip the exchange: cleaning stays 1 for good. */
    h->asym = sp_membarrier_ready();
    size_t n = (size_t)h->maxp * h->nb;
    h->locals_bytes = 2 * n * sizeof(sp_local) + h->maxp * sizeof(sp_proc);
    if (posix_memalign((void **)&h->local, SP_PAD, n * sizeof(sp_local)) != 0) h->local = NULL;
    if (posix_memalign((void **)&h->victim, SP_PAD, n * sizeof(sp_local)) != 0) h->victim = NULL;
    if (posix_memalign((void **)&h->procs, 64, h->maxp * sizeof(sp_proc)) != 0) h->procs = NULL;
    if (!h->local || !h->victim || !h->procs) {
        heap_free(h);
        snprintf(err, errlen, "syncpool: out of memory");
        return NULL;
    }
    memset(h->local, 0, n * sizeof(sp_local));
    memset(h->victim, 0, n * sizeof(sp_local));
    memset(h->procs, 0, h->maxp * sizeof(sp_proc));
    for (size_t i = 0; i < n; i++) {
        sp_chain_init(&h->local[i].shared);
        sp_chain_init(&h->victim[i].shared);
        atomic_store_explicit(&h->local[i].tb, (uint32_t)h->bucket[i % h->nb].ticks << 1,
                              memory_order_relaxed);
        atomic_store_explicit(&h->local[i].cleaning, !h->asym, memory_order_relaxed);
    }
    char uerr[200] = "";
    tls_creating = 1;
    h->under = ub;
    h->under_heap = ub->create(NULL, uerr, sizeof uerr);
    tls_creating = 0;
    if (!h->under_heap) {
        snprintf(err, errlen, "syncpool: under=%s: %s", o.under, uerr);
        heap_free(h);
        return NULL;
    }
    snprintf(h->under_name, sizeof h->under_name, "%s", o.under);
    h->id = atomic_fetch_add(&next_heap_id, 1);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    h->salt = (h->id * UINT64_C(0xbf58476d1ce4e5b9)) ^ (uint64_t)(uintptr_t)h ^
              ((uint64_t)ts.tv_nsec << 20) ^ UINT64_C(0x5350434f4f4c2121);
    pthread_mutex_lock(&live_lock);
    h->next_live = live_heaps;
    live_heaps = h;
    pthread_mutex_unlock(&live_lock);
    return h;
}

/* vtable destroy: every pooled block and dequeue goes back. Can't fail. */
static void sp_destroy(void *heap)
{
    sp_heap *h = heap;
    pthread_mutex_lock(&live_lock);
    for (sp_heap **pp = &live_heaps; *pp; pp = &(*pp)->next_live)
        if (*pp == h) {
            *pp = h->next_live;
            break;
        }
    pthread_mutex_unlock(&live_lock);
    /* This thread's registration dies with the heap (other threads' entries are stale ids,
     * dropped at their next registration or exit). */
    for (unsigned i = 0; tls_list && i < tls_list->n; i++)
        if (tls_list->ent[i].id == h->id) {
            list_remove(i);
            break;
        }
    sp_pools_drain(h);
    h->under->destroy(h->under_heap);
    heap_free(h);
}

/* vtable thread_detach: flush this thread's private slots, give its P back. Can't fail. */
static void sp_thread_detach(void *heap)
{
    sp_heap *h = heap;
    for (unsigned i = 0; tls_list && i < tls_list->n; i++) {
        if (tls_list->ent[i].id != h->id) continue;
        proc_release(h, &tls_list->ent[i]);
        list_remove(i);
        return;
    }
}

/* vtable collect: one pool cleanup (waits for a running one). Can't fail. */
static void sp_collect(void *heap) { sp_cleanup(heap, 1); }

/* ---------------------------------------------------------------------------------------
 * stats and check
 * --------------------------------------------------------------------------------------- */

unsigned sp_bucket_count(void *heap) { return ((sp_heap *)heap)->nb; }

int sp_bucket_stats_get(void *heap, unsigned cls, sp_bucket_stats *out)
{
    sp_heap *h = heap;
    if (cls >= h->nb) return -1;
    memset(out, 0, sizeof *out);
    sp_bucket *b = &h->bucket[cls];
    out->size = b->size;
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    out->gets = LD(b->gets);
    out->puts = LD(b->puts);
    out->misses = LD(b->misses);
    out->steals = LD(b->steals);
    out->victim_hits = LD(b->victim_hits);
    out->dropped = LD(b->dropped);
    out->puts += LD(b->ctake); /* fast puts that cleanup took back out (sp_local) */
    for (unsigned p = 0; p < h->maxp; p++) {
        sp_local *l = &h->local[(size_t)p * h->nb + cls];
        uint64_t gets = LD(l->gets) + (uint64_t)b->ticks - (LD(l->tb) >> 1); /* reported +
                                                                                * since */
        uint64_t in_priv = 0;
        for (unsigned k = 0; k < SP_PRIV; k++) in_priv += LD(l->priv[k]) != NULL;
        out->gets += gets;
        /* slow puts + the fast ones: what filled the private slots and was not a slow fill */
        out->puts += LD(l->puts) + in_priv + (gets - LD(l->sgets)) + LD(l->ptake) - LD(l->pfill);
        out->misses += LD(l->misses);
        out->steals += LD(l->steals);
        out->victim_hits += LD(l->victim_hits);
    }
#undef LD
    out->hits = out->gets > out->misses ? out->gets - out->misses : 0; /* every get is a hit
                                          * or a miss (racy sums: clamp); one count less on
                                          * the fast path */
    int64_t held = (int64_t)(out->misses - out->dropped - out->gets + out->puts);
    out->held_blocks = held > 0 ? (uint64_t)held : 0;
    return 0;
}

/* vtable stats. Returns 0; can't fail (racy sums while threads run). */
static int sp_stats(void *heap, al_stats *s)
{
    sp_heap *h = heap;
    memset(s, 0, sizeof *s);
    uint64_t large_n = atomic_load(&h->large_allocs), large_f = atomic_load(&h->large_frees);
    s->num_gc = atomic_load(&h->num_gc);
    s->sys = atomic_load(&h->under_bytes) + atomic_load(&h->meta_bytes) + h->locals_bytes;
    s->present = AL_STAT_BIT(num_gc) | AL_STAT_BIT(sys);
#if SP_STATS
    uint64_t gets = 0, puts = 0, live_bytes = 0, total = 0;
    for (unsigned b = 0; b < h->nb; b++) {
        sp_bucket_stats bs;
        sp_bucket_stats_get(h, b, &bs);
        gets += bs.gets;
        puts += bs.puts;
        s->pool_gets += bs.gets;
        s->pool_puts += bs.puts;
        s->pool_hits += bs.hits;
        s->pool_misses += bs.misses;
        s->pool_steals += bs.steals;
        s->pool_victim_hits += bs.victim_hits;
        s->pool_bytes_held += bs.held_blocks * h->bucket[b].gross;
        if (bs.gets > bs.puts) live_bytes += (bs.gets - bs.puts) * bs.size;
        total += bs.gets * bs.size;
    }
    s->mallocs = gets + large_n;
    s->frees = puts + large_f;
    s->heap_objects = s->mallocs > s->frees ? s->mallocs - s->frees : 0;
    s->alloc_bytes = live_bytes + atomic_load(&h->large_live);
    s->total_alloc = total + atomic_load(&h->large_total);
    s->present |= AL_STAT_BIT(mallocs) | AL_STAT_BIT(frees) | AL_STAT_BIT(heap_objects) |
                  AL_STAT_BIT(alloc_bytes) | AL_STAT_BIT(total_alloc) |
                  AL_STAT_BIT(pool_gets) | AL_STAT_BIT(pool_puts) | AL_STAT_BIT(pool_hits) |
                  AL_STAT_BIT(pool_misses) | AL_STAT_BIT(pool_steals) |
                  AL_STAT_BIT(pool_victim_hits) | AL_STAT_BIT(pool_bytes_held);
#else
    (void)large_n;
    (void)large_f;
#endif
    return 0;
}

int sp_stats_text(void *heap, char *buf, size_t len)
{
    sp_heap *h = heap;
    int n = snprintf(buf, len, "syncpool (%s) statistics:\n", h->fixed ? "FixedSizePool" : "MultiLevelPool");
    for (unsigned b = 0; b < h->nb; b++) {
        sp_bucket_stats s;
        sp_bucket_stats_get(h, b, &s);
        if (!s.gets && !s.puts) continue;
        size_t off = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len;
        n += snprintf(buf + off, len - off,
                      " size %zu: gets=%llu, puts=%llu, hits=%llu, misses=%llu, steals=%llu, "
                      "victim hits=%llu, dropped=%llu, held=%llu\n",
                      s.size, (unsigned long long)s.gets, (unsigned long long)s.puts,
                      (unsigned long long)s.hits, (unsigned long long)s.misses,
                      (unsigned long long)s.steals, (unsigned long long)s.victim_hits,
                      (unsigned long long)s.dropped, (unsigned long long)s.held_blocks);
    }
    return n;
}

typedef struct check_ctx {
    sp_heap *h;
    struct { void *p; unsigned cls; int where; } *v;
    size_t n, cap;
    int oom;
    uint64_t per_bucket[SP_MAX_BUCKETS];
} check_ctx;

/* sp_pools_walk callback: remember p (on OOM sets k->oom). Can't fail. */
static void check_collect(void *c, unsigned cls, int where, void *p)
{
    check_ctx *k = c;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 1024;
        void *nv = realloc(k->v, cap * sizeof *k->v);
        if (!nv) {
            k->oom = 1;
            return;
        }
        k->v = nv;
        k->cap = cap;
    }
    k->v[k->n].p = p;
    k->v[k->n].cls = cls;
    k->v[k->n].where = where;
    k->n++;
    k->per_bucket[cls]++;
}

/* qsort order by address. Can't fail. */
static int ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static const char *const where_name[] = {"private", "shared", "victim private", "victim shared"};

uint64_t sp_count_held(void *heap)
{
    check_ctx k = {.h = heap};
    char msg[8];
    sp_pools_walk(heap, check_collect, &k, msg, sizeof msg);
    free(k.v);
    return k.n;
}

/* vtable check (quiescent). 0, or -1 + the broken invariant in msg. */
static int sp_check(void *heap, char *msg, size_t msglen)
{
    sp_heap *h = heap;
    check_ctx k = {.h = h};
    int rc = -1;
    uint64_t rej = atomic_load(&h->rejected);
    if (rej) {
        snprintf(msg, msglen,
                 "syncpool: %llu free/realloc calls passed a block whose header is not this "
                 "heap's (foreign or corrupt); refused",
                 (unsigned long long)rej);
        return -1;
    }
    if (sp_pools_walk(h, check_collect, &k, msg, msglen) != 0) goto out;
    if (k.oom) {
        snprintf(msg, msglen, "syncpool: check ran out of memory");
        goto out;
    }
    for (size_t i = 0; i < k.n; i++) {
        SP_UNPOISON((char *)k.v[i].p - SP_HDR, SP_HDR);
        uint64_t info = sp_hdr_info(h, k.v[i].p);
        if (info != k.v[i].cls) {
            snprintf(msg, msglen,
                     "syncpool: block %p in bucket %zu (%s) has a foreign or corrupt header",
                     k.v[i].p, h->bucket[k.v[i].cls].size, where_name[k.v[i].where]);
            goto out;
        }
    }
    /* The entries start with the pointer: sort by it, neighbours must differ. */
    if (k.n) qsort(k.v, k.n, sizeof *k.v, ptr_cmp);
    for (size_t i = 1; i < k.n; i++)
        if (k.v[i].p == k.v[i - 1].p) {
            snprintf(msg, msglen, "syncpool: block %p is in two places (%s and %s)", k.v[i].p,
                     where_name[k.v[i - 1].where], where_name[k.v[i].where]);
            goto out;
        }
#if SP_STATS
    /* In a fork child the counting equations need not hold: a thread cut off by fork() may
     * have taken a block and not counted it yet (its counters and blocks are frozen). */
    if (h->forked) goto counted;
    uint64_t under = 0;
    for (unsigned b = 0; b < h->nb; b++) {
        sp_bucket_stats s;
        sp_bucket_stats_get(h, b, &s);
        int64_t held = (int64_t)(s.misses - s.dropped - s.gets + s.puts);
        if (held != (int64_t)k.per_bucket[b]) {
            snprintf(msg, msglen,
                     "syncpool: bucket %zu: misses - dropped - gets + puts = %lld but %llu "
                     "blocks are pooled",
                     s.size, (long long)held, (unsigned long long)k.per_bucket[b]);
            goto out;
        }
        under += (s.misses - s.dropped) * h->bucket[b].gross;
    }
    under += atomic_load(&h->large_live) + atomic_load(&h->aligned_extra) +
             SP_HDR * (atomic_load(&h->large_allocs) - atomic_load(&h->large_frees));
    if (under != atomic_load(&h->under_bytes)) {
        snprintf(msg, msglen, "syncpool: under_bytes = %llu but the blocks account for %llu",
                 (unsigned long long)atomic_load(&h->under_bytes), (unsigned long long)under);
        goto out;
    }
counted:
#endif
    rc = 0;
out:
    free(k.v);
    return rc;
}

/* A fresh recursive live_lock (fork child). Can't fail (init of a static mutex). */
static void live_lock_reinit(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&live_lock, &a);
    pthread_mutexattr_destroy(&a);
}

/* vtable atfork (a drop-in's pthread_atfork). The locks, in this fixed order: live_lock (the
 * registry of heaps, taken by a thread's first use of a heap and by thread exit), the heap's
 * gc_lock (cleanup: the victim chains' only producer), then the underlying backend's own
 * (cleanup frees into it while holding gc_lock). PREPARE takes them, PARENT releases them in
 * reverse, CHILD re-initialises ours (the child's thread id differs, so a recursive mutex could
 * not be unlocked there). Everything else is lock-free: a ring operation cut off by fork()
 * leaves at most one slot the child cannot reuse (the chain grows past it); other threads' P
 * slots stay taken in the child (their blocks leaked there, not corrupt). Can't fail. */
static void sp_atfork(void *heap, int phase)
{
    sp_heap *h = heap;
    void (*under_atfork)(void *, int) = h->under->atfork;
    switch (phase) {
    case AL_FORK_PREPARE:
        pthread_mutex_lock(&live_lock);
        pthread_mutex_lock(&h->gc_lock);
        if (h->gated) pthread_rwlock_wrlock(&h->under_gate);
        if (under_atfork) under_atfork(h->under_heap, phase);
        break;
    case AL_FORK_PARENT:
        if (under_atfork) under_atfork(h->under_heap, phase);
        if (h->gated) pthread_rwlock_unlock(&h->under_gate);
        pthread_mutex_unlock(&h->gc_lock);
        pthread_mutex_unlock(&live_lock);
        break;
    default:
        if (under_atfork) under_atfork(h->under_heap, phase);
        if (h->gated) pthread_rwlock_init(&h->under_gate, NULL);
        pthread_mutex_init(&h->gc_lock, NULL);
        live_lock_reinit();
        /* a thread cut off inside its fast get left busy = 1 (its block stays where it was
         * or is lost with it: never handed out twice) */
        for (size_t i = 0; i < (size_t)h->maxp * h->nb; i++)
            atomic_store_explicit(&h->local[i].tb, atomic_load(&h->local[i].tb) & ~1u,
                                  memory_order_relaxed);
        h->forked = 1;
        break;
    }
}

/* vtable version. A static string; can't fail. */
static const char *sp_version(void)
{
    return "syncpool 1 (Go sync.Pool design: per-P private+poolChain, victim cache; "
           "buckets 16 B..32 KiB by default)";
}

const al_backend al_backend_syncpool = {
    .abi = AL_ABI_VERSION,
    .name = "syncpool",
    .desc = "Go sync.Pool per power-of-two bucket (the lecture's MultiLevelPool) over libc",
    .caps = AL_CAP_THREAD_SAFE,
    .create = sp_create,
    .destroy = sp_destroy,
    .alloc = sp_alloc,
    .free = sp_free,
    .realloc = sp_realloc,
    .alloc_aligned = sp_alloc_aligned,
    .usable_size = sp_usable_size,
    .thread_detach = sp_thread_detach,
    .collect = sp_collect,
    .stats = sp_stats,
    .check = sp_check,
    .version = sp_version,
    .atfork = sp_atfork,
};
