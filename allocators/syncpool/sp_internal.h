/* sp_internal.h - syncpool's internal interface, shared by its three files and its unit tests:
 *   sp_ring.c    poolDequeue (a lock-free single-producer/multi-consumer ring) and poolChain;
 *   sp_pool.c    the pool of one bucket: per-P locals, victim cache, slow get/put, cleanup;
 *   syncpool.c   the backend glue: block header, options, threads -> P, stats, check.
 * The architecture comment is at the top of syncpool.c. Prefix `sp_` throughout. */
#ifndef ALLOCLAB_SYNCPOOL_INTERNAL_H
#define ALLOCLAB_SYNCPOOL_INTERNAL_H

#include "allocator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define sp_likely(x) __builtin_expect(!!(x), 1)
#define sp_unlikely(x) __builtin_expect(!!(x), 0)

/* Statistics level: 1 counts gets/puts/hits/... (owner-only counters; the fast paths count
 * through the get's tick and the slow paths' counts, see sp_local), 0 compiles every counter
 * out and stats() reports them absent. */
#ifndef SP_STATS
#define SP_STATS 1
#endif
#if SP_STATS
#define SP_STAT_INC(c) atomic_store_explicit(&(c), atomic_load_explicit(&(c), memory_order_relaxed) + 1, memory_order_relaxed)
#else
#define SP_STAT_INC(c) ((void)0)
#endif

/* AddressSanitizer: pooled blocks are poisoned while they sit in a pool. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SP_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SP_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SP_POISON(p, n) ((void)(p), (void)(n))
#define SP_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Debug fills (style.md, SQLite's): -DSP_DEBUG=1 fills a bucket block with 0x55 when it is put
 * back and with 0xAA when it is handed out, and on a get from a pool verifies the block still
 * holds 0x55 everywhere: a write after put aborts with a message naming the pointer. Off (0)
 * by default: it costs two passes over the block per get+put. */
#ifndef SP_DEBUG
#define SP_DEBUG 0
#endif
#define SP_FILL_ALLOC 0xAA
#define SP_FILL_FREE 0x55

/* ------------------------------------------------------------------------------------------
 * poolDequeue and poolChain (sp_ring.c)
 * ------------------------------------------------------------------------------------------ */

#define SP_DEQ_BITS 32
#define SP_DEQ_FIRST 8u             /* the first dequeue of a chain has 8 slots   */
#define SP_DEQ_LIMIT (1u << 24)     /* later ones double up to this many slots     */

typedef struct sp_deq {
    _Atomic uint64_t head_tail;     /* head << 32 | tail; slots [tail, head) are full */
    uint32_t mask;                  /* slots - 1 (slots is a power of two)             */
    _Atomic(struct sp_deq *) next;  /* towards the head (newer, bigger)                */
    _Atomic(struct sp_deq *) prev;  /* towards the tail; NULL once the tail moved past */
    struct sp_deq *all_next;        /* every dequeue a chain ever made (freed at the end) */
    _Atomic(void *) slot[];         /* NULL = empty (a popTail may still be clearing it) */
} sp_deq;

typedef struct sp_chain {
    sp_deq *head;                   /* producer only: the dequeue pushes go to          */
    _Atomic(sp_deq *) tail;         /* consumers: the dequeue popTail starts from       */
    sp_deq *all;                    /* producer only: list of every dequeue (all_next)  */
} sp_chain;

/* Make an empty dequeue of n slots (a power of two). Returns NULL when out of memory. */
sp_deq *sp_deq_new(uint32_t n);
/* Producer: add v (non-NULL) at the head. Returns 0, or -1 when the ring is full (or a slot is
 * still being released by a consumer); the ring is then unchanged. */
int sp_deq_push_head(sp_deq *d, void *v);
/* Producer: take the newest value. Returns it, or NULL when empty. */
void *sp_deq_pop_head(sp_deq *d);
/* Any thread: take the oldest value. Returns it, or NULL when empty. */
void *sp_deq_pop_tail(sp_deq *d);
/* Values in the ring now (racy unless quiescent). Can't fail. */
uint32_t sp_deq_len(sp_deq *d);

/* An empty chain (no dequeue yet). Can't fail. */
void sp_chain_init(sp_chain *c);
/* Producer: push v. Returns 0, or -1 when a new dequeue was needed and malloc failed
 * (v was not stored). *grown (may be NULL) is increased by the bytes of a new dequeue. */
int sp_chain_push_head(sp_chain *c, void *v, size_t *grown);
/* Producer: pop the newest value, or NULL. */
void *sp_chain_pop_head(sp_chain *c);
/* Any thread: pop the oldest value, or NULL. */
void *sp_chain_pop_tail(sp_chain *c);
/* Quiescent only: call fn(ctx, v) for every value held, returns how many. -1 when the chain
 * structure is broken (writes why to why[0..whylen)). */
long sp_chain_walk(sp_chain *c, void (*fn)(void *ctx, void *v), void *ctx, char *why,
                   size_t whylen);
/* Quiescent only: free every dequeue (the values are the caller's). Returns bytes freed. */
size_t sp_chain_destroy(sp_chain *c);
/* Bytes of a dequeue of n slots. Can't fail. */
size_t sp_deq_bytes(uint32_t n);

/* ------------------------------------------------------------------------------------------
 * The heap (syncpool.c) and the pools (sp_pool.c)
 * ------------------------------------------------------------------------------------------ */

#define SP_HDR 16u                  /* header in front of every block               */
#define SP_MAX_BUCKETS 17           /* 16 B .. 1 MiB                                */
#define SP_MIN_BUCKET 16u
#define SP_MAX_BUCKET_LIMIT ((size_t)1 << 20)
#define SP_LARGE 0xffu              /* info low byte of a block from the large path */
#define SP_ALIGNED 0xfeu            /* info low byte of an alloc_aligned block (align > 16) */
#define SP_TLS_WAYS 8u              /* per-thread direct-mapped cache of registrations */
#define SP_PAD 128
#define SP_PRIV 2                   /* private slots per local (Go: 1), see syncpool.c */
#define SP_LINE 64u                 /* data alignment of the buckets >= SP_ALIGN_FROM  */
#ifndef SP_PAGE_FROM
#define SP_PAGE_FROM 4096u          /* buckets >= this: base page-aligned, data at 64  */
#endif
#ifndef SP_ALIGN_FROM
#define SP_ALIGN_FROM 1024u         /* (a memcpy/memset 16 bytes off a cache line costs
                                     * 20-30% at 1..16 KiB on this machine)            */
#endif

/* The 16-byte block header (keeps 16-byte alignment of the block behind it).
 * info = bucket index, or size << 8 | SP_LARGE; key = salt ^ address ^ info. The key alone
 * gives info back (key ^ salt ^ address): the free fast path loads that one word and takes the
 * block when the result is a bucket index (a foreign pointer's random word passes with odds
 * of 17 in 2^64); every other use compares both words (sp_hdr_info). */
typedef struct sp_hdr {
    uint64_t key;
    uint64_t info;
} sp_hdr;

/* Go's poolLocal: one per (P, bucket), padded to 128 bytes against false sharing. The
 * counters are written by the owning thread only (plain load+store), read by stats().
 * tb (owner-written only) = tick << 1 | busy. busy: the owner's side of the handshake that
 * lets it take a private slot with a plain load and store while cleanup may empty the slot
 * from another thread (see "Cleanup" in syncpool.c). tick: gets left before this local reports
 * bucket-size x ticks bytes to the cleanup trigger (and adds ticks to gets): the fast path's
 * only count of a get. One word, so the get that sets busy and counts stores it twice, not
 * three times (busy = 1; busy = 0 and tick - 1 together). */
typedef struct sp_local {
    _Alignas(SP_PAD) _Atomic(void *) priv[SP_PRIV]; /* owner puts; owner or cleanup take */
    _Atomic uint32_t tb;            /* owner: tick << 1 | busy; cleanup waits for busy = 0  */
    _Atomic int cleaning;           /* 1: cleanup may take priv; 2: it is done, the owner's
                                     * slow get resets it to 0; either: the owner exchanges */
    sp_chain shared;
    _Atomic uint64_t gets;          /* gets up to the last report; + ticks - tick = all     */
    _Atomic uint64_t misses, steals, victim_hits; /* hits = gets - misses */
    /* The fast put counts nothing (a counter's load-add-store there cost 3% of bufchurn
     * steady at 64 B and 1 KiB): it only fills an empty private slot, and every block that
     * leaves a private slot is counted where it leaves, so (see sp_bucket_stats_get)
     *   fast puts = |priv| + fast gets + ptake + cleanup's takes (sp_bucket.ctake) - pfill,
     *   fast gets = gets - sgets.                                                      */
    _Atomic uint64_t puts;          /* puts on the slow paths (both private slots full, or
                                     * the thread's most recent heap is another)          */
    _Atomic uint64_t sgets;         /* gets served by the slow path (any source)           */
    _Atomic uint64_t ptake;         /* blocks the owner's slow paths took out of priv      */
    _Atomic uint64_t pfill;         /* blocks the slow put stored into an empty priv slot  */
} sp_local;
_Static_assert(sizeof(sp_local) == SP_PAD, "a local is one 128-byte pad");

typedef struct sp_proc {            /* one P slot */
    _Alignas(64) _Atomic int owned; /* 1 while a thread has this P */
} sp_proc;

typedef struct sp_bucket {          /* heap-level per-bucket counters (slow paths only) */
    size_t size;
    int32_t ticks;                  /* gets per report to the cleanup trigger (>= 1)  */
    size_t off;                     /* block base -> user pointer: SP_HDR or SP_LINE   */
    size_t gross;                   /* bytes of a block from the underlying allocator  */
    _Atomic uint64_t dropped;       /* blocks given back to the underlying allocator */
    _Atomic uint64_t gets, puts, misses, steals, victim_hits; /* threads without a P */
    _Atomic uint64_t ctake;         /* blocks cleanup moved out of primary private slots */
} sp_bucket;

typedef struct sp_heap {
    /* read-only after create: the fast path's fields first */
    uint64_t id;                    /* unique per heap for the life of the process  */
    uint64_t salt;                  /* header key = salt ^ address ^ info           */
    size_t min_size, max_size;      /* smallest and largest bucket                   */
    size_t cls_or;                  /* bucket of n <= max: cls_top - clz((n-1) | cls_or) */
    unsigned cls_top;               /* clz(cls_or): 63 - log2 of the first bucket - 1  */
    unsigned put_nb;                /* free's fast path takes info < put_nb: nb, 0 with
                                     * zero=1 (every put then zeroes, off the fast path) */
    unsigned nb;                    /* buckets                                       */
    int asym;                       /* cleanup has membarrier(): owners' gets need no RMW */
    sp_local *local;                /* [maxp * nb]: P p, bucket b at p * nb + b       */
    sp_local *victim;               /* [maxp * nb]                                   */
    sp_proc *procs;                 /* [maxp]                                        */
    unsigned maxp;
    int fixed;                      /* one bucket of exactly min_size (FixedSizePool) */
    int gc_mode;                    /* 0 off, 1 every gc_bytes, 2 GOGC=100 pacing     */
    uint64_t gc_bytes;
    const al_backend *under;
    void *under_heap;
    size_t locals_bytes;
    char under_name[32];

    _Atomic unsigned hw;            /* P indices ever handed out: [0, hw)            */
    pthread_mutex_t gc_lock;        /* one cleanup at a time; victim chains' producer */
    _Atomic uint64_t since_gc;      /* bytes handed out since the last cleanup        */
    _Atomic uint64_t under_bytes;   /* bytes now obtained from the underlying heap    */
    _Atomic uint64_t meta_bytes;    /* dequeues (locals are in locals_bytes)          */
    _Atomic uint64_t num_gc;
    int forked;                     /* a fork child: other threads were cut off mid-get/put */
    int gated;                      /* calls into the underlying heap pass under_gate  */
    pthread_rwlock_t under_gate;    /* read: a call into the underlying heap; write: fork */
    _Atomic uint64_t rejected;      /* frees of blocks whose header is not ours       */
    _Atomic uint64_t large_allocs, large_frees, large_live, large_total;
    _Atomic uint64_t aligned_extra; /* alloc_aligned blocks: bytes beyond size + header */
    struct sp_heap *next_live;      /* global registry of live heaps                  */
    sp_bucket bucket[SP_MAX_BUCKETS];
} sp_heap;

/* A thread's registration with one heap. */
typedef struct sp_tls_ent {
    uint64_t id;                    /* heap id, 0 = empty                             */
    sp_local *local;                /* heap->local + pid * nb                          */
    unsigned pid;
} sp_tls_ent;

static inline uint64_t sp_key(const sp_heap *h, const sp_hdr *hd, uint64_t info)
{
    return h->salt ^ (uint64_t)(uintptr_t)hd ^ info;
}

static inline void sp_hdr_set(const sp_heap *h, void *base, uint64_t info)
{
    sp_hdr *hd = base;
    hd->info = info;
    hd->key = sp_key(h, hd, info);
}

/* Returns the header's info when the header is one of h's, else UINT64_MAX. Can't fail. */
static inline uint64_t sp_hdr_info(const sp_heap *h, const void *p)
{
    const sp_hdr *hd = (const sp_hdr *)p - 1;
    uint64_t info = hd->info;
    return hd->key == sp_key(h, hd, info) ? info : UINT64_MAX;
}

/* The info the key of p's header gives back: the fast path's one-word read. Only a value
 * below the heap's bucket count is taken as is (the odds for a word that is not a key are
 * above); anything else goes through sp_hdr_info. The cost: a header the program overwrote
 * with a key whose low bits alone changed would file the block under another bucket, where
 * both words would refuse it; SP_DEBUG=1 builds check both words here too. Can't fail. */
static inline uint64_t sp_hdr_key_info(const sp_heap *h, const void *p)
{
#if SP_DEBUG
    return sp_hdr_info(h, p);
#else
    const sp_hdr *hd = (const sp_hdr *)p - 1;
    return sp_key(h, hd, hd->key);
#endif
}

#if SP_DEBUG
/* Debug: a write after put was found in pooled block p (bucket size n). Aborts. */
void sp_debug_fail(const void *p, size_t n, size_t at, unsigned char got);

/* Debug: a block leaves the pools for the user (pooled: it was in a pool, so it must still hold
 * 0x55 everywhere; else it is fresh from the underlying allocator): verify, fill 0xAA.
 * Aborts on a write after put. */
static inline void sp_debug_out(const void *p, size_t n, int pooled)
{
    if (pooled) {
        const unsigned char *c = p;
        for (size_t i = 0; i < n; i++)
            if (sp_unlikely(c[i] != SP_FILL_FREE)) sp_debug_fail(p, n, i, c[i]);
    }
    memset((void *)p, SP_FILL_ALLOC, n);
}
#define SP_DEBUG_OUT(p, n, pooled) sp_debug_out((p), (n), (pooled))
#define SP_DEBUG_IN(p, n) memset((p), SP_FILL_FREE, (n))
#else
#define SP_DEBUG_OUT(p, n, pooled) ((void)0)
#define SP_DEBUG_IN(p, n) ((void)0)
#endif

/* Every call into the underlying allocator goes between these two when h->gated: an
 * underlying allocator that does not survive fork() by itself (no atfork entry: a backend's
 * own locks; or gcc 12's AddressSanitizer and ThreadSanitizer allocators, which replace
 * glibc's fork-safe malloc and take no lock around fork) is then never inside a call from syncpool when fork() copies
 * the process: atfork(PREPARE) takes the gate for writing. Not on the fast path (misses,
 * drops, large blocks only). Can't fail. */
static inline void sp_under_enter(sp_heap *h)
{
    if (sp_unlikely(h->gated)) pthread_rwlock_rdlock(&h->under_gate);
}
static inline void sp_under_leave(sp_heap *h)
{
    if (sp_unlikely(h->gated)) pthread_rwlock_unlock(&h->under_gate);
}

/* sp_pool.c: the slow paths. */
/* Get a block of bucket cls for a thread with registration e (NULL: no P free). Returns
 * the user pointer, or NULL when the underlying allocator is out of memory. */
void *sp_get_slow(sp_heap *h, sp_tls_ent *e, unsigned cls);
/* Put p (bucket cls, already zeroed/poisoned) when the private slot is taken or e is NULL.
 * Can't fail (a block that cannot be pooled goes back to the underlying allocator). */
void sp_put_slow(sp_heap *h, sp_tls_ent *e, unsigned cls, void *p);
/* Give block p of bucket cls back to the underlying allocator. Can't fail. */
void sp_block_release(sp_heap *h, unsigned cls, void *p);
/* poolCleanup: drop the victims, move primary -> victim. wait=0: skip when another cleanup
 * runs. Can't fail. */
void sp_cleanup(sp_heap *h, int wait);
/* Count add bytes handed out; run a cleanup when the trigger is crossed. Can't fail. */
void sp_pace_add(sp_heap *h, uint64_t add);
/* Local l of bucket cls ran out of ticks: count its gets and bytes, reload. Can't fail. */
void sp_tick(sp_heap *h, sp_local *l, unsigned cls);
/* One get counted on l (the owner's, busy clear): the tick, and the report when it runs out.
 * Can't fail. */
static inline void sp_tick_get(sp_heap *h, sp_local *l, unsigned cls)
{
    uint32_t t = atomic_load_explicit(&l->tb, memory_order_relaxed) - 2;
    atomic_store_explicit(&l->tb, t, memory_order_relaxed);
    if (sp_unlikely(t == 0)) sp_tick(h, l, cls);
}
/* syncpool.c: the calling thread's P of h, or -1 (it has none; it is not registered). */
int sp_self_pid(const sp_heap *h);
/* The process can use membarrier(PRIVATE_EXPEDITED) (registered once), and the test hook
 * below does not say otherwise. Can't fail. */
int sp_membarrier_ready(void);
/* Tests: nonzero makes heaps created from now on behave as without membarrier() (owners'
 * gets always exchange). */
extern _Atomic int sp_membarrier_off;
/* Owner leaving P e->pid: private slots go to the shared chains. Can't fail. */
void sp_local_flush(sp_heap *h, sp_tls_ent *e);
/* Quiescent: give every pooled block back and free the dequeues. Can't fail. */
void sp_pools_drain(sp_heap *h);
/* Quiescent: call fn(ctx, bucket, where, p) for every pooled block; where: 0 private,
 * 1 shared, 2 victim private, 3 victim shared. Returns 0, or -1 with a message. */
int sp_pools_walk(sp_heap *h, void (*fn)(void *ctx, unsigned cls, int where, void *p), void *ctx,
                  char *msg, size_t msglen);

/* Per-bucket figures (the lecture's FixedSizePool.Stats, counted). */
typedef struct sp_bucket_stats {
    size_t size;
    uint64_t gets, puts, hits, misses, steals, victim_hits, dropped;
    uint64_t held_blocks;           /* misses - dropped - gets + puts (racy while busy) */
} sp_bucket_stats;

/* syncpool.c: test and report hooks on a syncpool heap. */
unsigned sp_bucket_count(void *heap);
/* Fill *out for bucket cls. Returns 0, or -1 when cls is out of range. */
int sp_bucket_stats_get(void *heap, unsigned cls, sp_bucket_stats *out);
/* The lecture's Stats() text, one line per bucket; returns the length (snprintf style). */
int sp_stats_text(void *heap, char *buf, size_t len);
/* Blocks held in pools counted by walking them (quiescent only). */
uint64_t sp_count_held(void *heap);

#endif
