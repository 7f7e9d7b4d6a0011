/* gotiered_internal.h - types and cross-file names of the gotiered backend (prefix gt_).
 * The architecture comment is at the top of gotiered.c. Nothing here is public. */
#ifndef GOTIERED_INTERNAL_H
#define GOTIERED_INTERNAL_H

#include "allocator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- build options ---- */
#ifndef GOTIERED_STATS
#define GOTIERED_STATS 1 /* 0: no counting at all; 1: per-op counters + slow-path events */
#endif

/* collect's flush of the caches of threads asleep outside the heap (mcache.c, "Remote
 * flush"). Off under ThreadSanitizer: the flush is ordered after the owner's last operation by
 * the owner's context switch, which TSan cannot see, so it would report every one. */
#ifndef GT_REMOTE_FLUSH
#if defined(__SANITIZE_THREAD__)
#define GT_REMOTE_FLUSH 0
#else
#define GT_REMOTE_FLUSH 1
#endif
#endif

enum { GT_RF_OFF, GT_RF_SLEEP, GT_RF_ON }; /* option remote_flush=off|sleep|on */

#define gt_likely(x) __builtin_expect(!!(x), 1)
#define gt_unlikely(x) __builtin_expect(!!(x), 0)
#define GT_NOINLINE __attribute__((noinline, cold))

/* Bits set in x. Inline SWAR, not __builtin_popcountll: without -mpopcnt that is a call to
 * libgcc_s's __popcountdi2, whose first use faults in 64 KiB of libgcc code pages (RSS the
 * memory figures count). Can't fail. */
static inline unsigned gt_popcount(uint64_t x)
{
    x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
    x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
    x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

#if GOTIERED_STATS
#define GT_STAT_INC(field, v) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (v), \
                          memory_order_relaxed)
#define GT_EVENT(h, field, v) atomic_fetch_add_explicit(&(h)->field, (v), memory_order_relaxed)
/* One plain uint64_t counter written only by its owner thread and read by stats() from any
 * thread: on x86-64 one non-locked `add` to memory (an aligned 8-byte store is single-copy
 * atomic, so a reader sees the old or the new value; the asm keeps the compiler from
 * splitting it and ThreadSanitizer from calling it a race); elsewhere relaxed load + store. */
#if defined(__x86_64__)
#define GT_COUNT(field) __asm__("addq $1, %0" : "+m"(field))
#else
#define GT_COUNT(field) \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED)
#endif
#define GT_COUNT_READ(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)
#else
#define GT_COUNT(field) ((void)0)
#define GT_COUNT_READ(field) ((uint64_t)0)
#define GT_STAT_INC(field, v) ((void)0)
#define GT_EVENT(h, field, v) ((void)0)
#endif

/* AddressSanitizer: poison freed objects inside our own arenas. */
#if defined(__SANITIZE_ADDRESS__)
#define GT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GT_ASAN 1
#endif
#endif
#ifdef GT_ASAN
#include <sanitizer/asan_interface.h>
/* A call into the ASan runtime, outside gotiered's code (gt_text), in the middle of a fast
 * path: counted as a slow path, so that collect's signal flush never lands inside it. */
#define GT_ASAN_CALL(call)                                                                     \
    do {                                                                                       \
        unsigned gt_asan_d_ = gt_slow_enter();                                                 \
        call;                                                                                  \
        gt_slow_leave(&gt_asan_d_);                                                            \
    } while (0)
#define GT_POISON(p, n) GT_ASAN_CALL(ASAN_POISON_MEMORY_REGION((void *)(p), (n)))
#define GT_UNPOISON(p, n) GT_ASAN_CALL(ASAN_UNPOISON_MEMORY_REGION((void *)(p), (n)))
#else
#define GT_POISON(p, n) ((void)(p), (void)(n))
#define GT_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- geometry ---- */
#define GT_PAGE_SHIFT 13
#define GT_PAGE ((size_t)1 << GT_PAGE_SHIFT)            /* 8 KiB */
#define GT_ARENA_SHIFT 26
#define GT_ARENA_BYTES ((size_t)1 << GT_ARENA_SHIFT)    /* 64 MiB */
#define GT_ARENA_PAGES (GT_ARENA_BYTES / GT_PAGE)       /* 8192 */
#define GT_CHUNK_PAGES 512                              /* 4 MiB of pages per summary */
#define GT_NCHUNK (GT_ARENA_PAGES / GT_CHUNK_PAGES)     /* 16 */
#define GT_PAGE_WORDS (GT_ARENA_PAGES / 64)             /* 128 bitmap words per arena */
#define GT_MAX_SMALL 32768
#define GT_NCLASS 68
#define GT_TINY_SPC GT_NCLASS                           /* span class of tiny blocks */
#define GT_NSPC (GT_NCLASS + 1)
#define GT_TINY_SIZE 16
#define GT_TINY_PIN 64          /* a tiny block's count while an mcache allocates from it */
#define GT_MAX_NELEMS 1024      /* class 1: 8 KiB / 8 B */
#define GT_BITWORDS (GT_MAX_NELEMS / 64)
#define GT_LCACHE_MAXPG 16     /* large spans of up to 16 pages (128 KiB) are cached per thread */
#define GT_LCACHE_PAGES 128     /* at most 1 MiB of them per thread */
#define GT_PCACHE_MAXPG 15      /* spans of < 64/4 pages come from the page cache (Go's rule) */
#define GT_SCACHE_N 32          /* span structs a cache takes from span_fix at once (at most) */
#define GT_BCACHE_N 32          /* span bitmap blocks of one kind it takes at once (at most) */
#define GT_MAX_REQUEST ((size_t)1 << 44) /* 16 TiB: beyond this NULL, no mmap tried (npages fits 32 bits) */

/* ---- size classes (sizeclasses.c, tables generated at build time) ---- */
extern const uint32_t gt_class_size[GT_NCLASS];
extern const uint8_t gt_class_npages[GT_NCLASS];
extern const uint32_t gt_class_divmul[GT_NCLASS];
extern const uint8_t gt_size_to_class8[129];
extern const uint8_t gt_size_to_class128[249];
extern const uint8_t gt_alloc_class8[129]; /* size_to_class8 with 17..24 B sent to 32 B */
/* Size class of a small size (1..32768); 0 for size 0. Can't fail. */
static inline unsigned gt_size_class(size_t size)
{
    return size <= 1016 ? gt_size_to_class8[(size + 7) >> 3]
                        : gt_size_to_class128[(size - 1024 + 127) >> 7];
}
/* Objects per span of class c (1..67). Can't fail. */
unsigned gt_class_nelems(unsigned c);

/* ---- spans ---- */
enum { /* span state (low byte of gt_span.st; the span class is in bits 8..15) */
    GT_SPAN_FREE = 0,  /* struct is in the fixalloc free list */
    GT_SPAN_CACHED,    /* owned by one mcache */
    GT_SPAN_PARTIAL,   /* in mcentral, swept, has free objects */
    GT_SPAN_UNSWEPT,   /* in mcentral's unswept list or notified stack: frees not folded in */
    GT_SPAN_FULL,      /* swept, no free object, in no list (owned by mcentral) */
    GT_SPAN_LARGE,     /* one large object */
};
#define GT_ST(spc, state) (((uint32_t)(spc) << 8) | (uint32_t)(state))

typedef struct gt_tinyblk {
    _Atomic uint8_t cnt;   /* live sub-objects (+ GT_TINY_PIN - handed out while pinned) */
    uint8_t pad;
    _Atomic uint16_t ends; /* bit i: a sub-object ends at byte i (for usable_size) */
} gt_tinyblk;

struct gt_arena;

typedef struct gt_span {
    uintptr_t base;          /* first byte; also the fixalloc link while free */
    struct gt_span *next, *prev; /* mcentral list */
    struct gt_arena *arena;
    gt_tinyblk *tiny;        /* tiny span: one record per 16-byte block */
    uint32_t npages;
    uint32_t elemsize;
    uint32_t divmul;
    uint16_t nelems;
    uint16_t nwords;         /* bitmap words in use: ceil(nelems / 64) */
    uint16_t alloc_count;    /* objects allocated per alloc_bits (see the invariants) */
    uint16_t widx;           /* cached span: the bitmap word the mcache allocates from */
    uint8_t spc;             /* span class: 0 large, 1..67 small, 68 tiny blocks */
    uint8_t huge;            /* large object in an arena of its own */
    _Atomic uint16_t filing; /* file_full calls between publishing FULL and their last look at
                              * the span: collect's sweep does not free it meanwhile */
    _Atomic uint32_t st;     /* GT_ST(spc, state): one word so racing frees read both at once */
    /* small spans: nwords words each, in one block from heap.bits_fix[gt_bits_kind(nwords)]
     * (Go's gcBits arenas play this part); NULL for large spans */
    uint64_t *alloc_bits;
    _Atomic uint64_t *freed; /* frees not yet swept (any thread, atomic OR) */
#ifdef GOTIERED_DEBUG
    _Atomic uint64_t live[GT_BITWORDS]; /* debug: exactly the objects the user holds */
#endif
} gt_span;

/* Which bits_fix holds the bitmaps of a span of nwords (1..16) words: the power of two
 * >= nwords. Can't fail. */
#define GT_BITS_KINDS 5
static inline unsigned gt_bits_kind(unsigned nwords)
{
    return nwords <= 1 ? 0 : 32u - (unsigned)__builtin_clz(nwords - 1u);
}

/* Valid-object mask of bitmap word w of s. Can't fail. */
static inline uint64_t gt_word_mask(const gt_span *s, unsigned w)
{
    unsigned left = s->nelems - w * 64u;
    return left >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << left) - 1;
}

/* ---- arenas and the page allocator (pagealloc.c, mheap.c) ---- */
typedef struct gt_sum {
    uint16_t start, max, end; /* free pages at the start, longest free run, free at the end */
} gt_sum;

typedef struct gt_arena {
    struct gt_heap *heap;
    struct gt_arena *next;    /* creation order (normal arenas) or the huge list */
    size_t map_bytes;         /* length of the mapping, header included */
    uint32_t first_page;      /* pages [0, first_page) hold this header */
    uint32_t huge;            /* 1: the arena holds one large object and nothing else */
    uint32_t maxrun;          /* longest free run in the arena (summary of the summaries) */
    uint32_t free_pages;
    uint32_t search;          /* Go's searchAddr: every page below it is in use */
    gt_sum sum[GT_NCHUNK];
    uint64_t alloc[GT_PAGE_WORDS]; /* bit = page in use (spans and header) */
    uint64_t scav[GT_PAGE_WORDS];  /* bit = free page returned to the OS */
    gt_span *spans[GT_ARENA_PAGES];/* page -> span (NULL for free and header pages) */
} gt_arena;

#define GT_HDR_PAGES ((sizeof(gt_arena) + GT_PAGE - 1) / GT_PAGE)

/* Span of an object this heap returned: its arena is 64 MiB aligned and starts with the
 * header, so two dependent loads. Can't fail (p must be a live block). */
static inline gt_span *gt_span_of(const void *p)
{
    uintptr_t a = (uintptr_t)p & ~(GT_ARENA_BYTES - 1);
    return ((gt_arena *)a)->spans[((uintptr_t)p - a) >> GT_PAGE_SHIFT];
}

/* ---- per-thread page cache (Go's pageCache, runtime/mpagecache.go) ---- */
/* Up to 64 free pages of one 64-page aligned group (one word of an arena's page bitmap),
 * taken from the page allocator at once under the heap lock and then handed out to spans of
 * fewer than 16 pages by the owning thread without any lock. While cached they are marked in
 * use in the page bitmap (and counted in pages_inuse) but belong to no span. `cache` is
 * written by the owner only (relaxed atomics: stats() reads it from other threads). */
typedef struct gt_pcache {
    struct gt_arena *arena; /* NULL: empty */
    uint32_t word;          /* pages [64 * word, 64 * word + 64) of arena */
    uint32_t pad;
    uint64_t cache;         /* bit i: page 64 * word + i is free and owned by this cache */
    uint64_t pending;       /* pages taken out of `cache` for a span not set up yet (only
                             * seen non-zero by a fork child's check: the fork came between) */
    uint64_t scav;          /* of the pages taken, those that were released to the OS */
} gt_pcache;

void gt_pages_init(gt_arena *a);
/* First free run of n pages (address order), or -1. */
long gt_pages_find(const gt_arena *a, size_t n);
/* Mark [i, i+n) used; returns how many of them were released to the OS. Can't fail. */
size_t gt_pages_take(gt_arena *a, size_t i, size_t n);
/* Mark [i, i+n) free. Can't fail. */
void gt_pages_put(gt_arena *a, size_t i, size_t n);
/* Go's allocToCache: every free page of the first bitmap word (64 pages) at or after the
 * search hint that holds a run of n free pages, marked in use and moved into pc (pc.scav:
 * which had been released, their scav bits cleared); 0 when there is none, else the pages
 * taken. */
unsigned gt_pages_take_word(gt_arena *a, gt_pcache *pc, size_t n);
/* Put back the pages of bitmap word w in `pages` (free again), those in `scav` as released.
 * Can't fail. */
void gt_pages_put_word(gt_arena *a, unsigned w, uint64_t pages, uint64_t scav);
/* Release up to `budget` free, unreleased pages with madvise; returns pages released. */
size_t gt_pages_scavenge(gt_arena *a, size_t budget);
/* Recompute summaries and compare; 0 if they agree, else -1. */
int gt_pages_check(const gt_arena *a, char *msg, size_t len);

/* ---- fixalloc (fixalloc.c): fixed-size metadata, 16 KiB chunks, under the heap lock ---- */
typedef struct gt_fix {
    size_t size;
    size_t cap;     /* bytes reserved for the region */
    void *free;     /* intrusive free list */
    char *region;   /* reserved on first use */
    char *cur;      /* carve pointer */
    char *limit;    /* end of the chunks carved so far */
    size_t sys;     /* bytes of chunks in use */
    size_t inuse;   /* objects handed out */
} gt_fix;
void gt_fix_init(gt_fix *f, size_t size, size_t cap);
void *gt_fix_alloc(gt_fix *f);  /* NULL when the region is full or cannot be reserved */
void gt_fix_free(gt_fix *f, void *p);
void gt_fix_trim(gt_fix *f);    /* madvise everything away when nothing is in use */
void gt_fix_destroy(gt_fix *f); /* unmaps the region */
typedef struct gt_mfix {         /* several sizes (16 << k B) carved from one region */
    gt_fix f;                    /* its own free list unused; sys and inuse count all sizes */
    void *free[GT_BITS_KINDS];
} gt_mfix;
void gt_mfix_init(gt_mfix *m, size_t cap);
void *gt_mfix_alloc(gt_mfix *m, unsigned k); /* NULL when the region is full */
void gt_mfix_free(gt_mfix *m, unsigned k, void *p);
void gt_mfix_trim(gt_mfix *m);

/* ---- mcentral (mcentral.c) ---- */
/* mcentral locks are striped: span class c uses stripe c % GT_NCLOCK (no code path holds two
 * central locks, so sharing cannot deadlock), so that fork's PREPARE holds 1 + 32 + 1 locks,
 * within ThreadSanitizer's 64 locks held at once by one thread. */
#define GT_NCLOCK 32
typedef struct gt_clock {
    pthread_mutex_t m;
} __attribute__((aligned(64))) gt_clock;

typedef struct gt_central {
    pthread_mutex_t *lock; /* &heap.clock[spc % GT_NCLOCK].m */
    gt_span *partial;  /* swept, with free objects */
    gt_span *unswept;  /* frees pending (Go's partial/full unswept sets in one list) */
    /* Lock-free parts (Go's spanSets are lock-free): full swept spans are in no list (state
     * FULL); the first free on one moves it FULL -> UNSWEPT with a CAS and pushes it here (a
     * Treiber stack, push only; drained into `unswept` under the lock). */
    _Atomic(gt_span *) notified;
    _Atomic unsigned avail; /* partial || unswept (written under the lock): 0 lets cache_span
                             * skip the lock and grow at once */
    unsigned spc;
} __attribute__((aligned(64))) gt_central;

/* ---- mcache (mcache.c) ---- */
typedef struct gt_slot {
    uint64_t cache;    /* free objects in word widx of span, 1 bit each (Go's allocCache) */
    uintptr_t wbase;   /* address of object 64*widx */
    void *reuse;       /* free=reuse: LIFO of objects freed by this thread */
    gt_span *span;     /* never NULL: &gt_empty_span when there is none */
    uint32_t elemsize;
    uint32_t room;     /* pushes left before the reuse list is trimmed: reuse_cap + 1 - length */
    /* fast-path counters (owner thread writes, GT_COUNT; stats() reads): objects handed out
     * and freed through this slot; bytes = count * class size, summed at stats() time */
    uint64_t nalloc, nfree;
    uint32_t reuse_cap;/* length beyond this: half the list goes back (64 KiB, >= 2 objects) */
    uint32_t pad;
} gt_slot;

typedef struct gt_mcache {
    gt_slot slot[GT_NSPC];
    size_t tiny_lim;       /* 16 with the tiny allocator on, else 0 */
    int free_reuse;        /* copy of the heap's free strategy */
    uintptr_t tiny_blk;    /* current tiny block */
    unsigned tiny_off;     /* bytes used in it (16 when there is none) */
    unsigned tiny_n;       /* sub-objects handed out from it */
    unsigned tiny_local;   /* of those, freed by this thread (not yet in cnt) */
    gt_tinyblk *tiny_rec;
    struct gt_heap *heap;
    struct gt_mcache *next, *prev; /* heap's list of caches */
    /* statistics, written by the owner thread only (relaxed), summed by stats() with the
     * slots' nalloc / nfree: tiny sub-objects handed out and freed, and the slow paths' */
    uint64_t ntiny, ntiny_free;
    /* freed large spans kept for reuse (Go's per-P page cache plays this part for allocation):
     * lfree[n] is a list of n-page spans (state CACHED, linked by next), lpages their sum */
    gt_span *lfree[GT_LCACHE_MAXPG + 1];
    uint32_t lpages;
    /* Go's P.pcache and P.mspancache: pages, span structs and span bitmaps taken from the
     * mheap in batches, so that a new span costs no heap lock (mheap.c, span_local) */
    gt_pcache pc;
    gt_span *sfree;        /* free span structs (linked by base as in span_fix) */
    uint32_t nsfree;
    uint32_t nbfree[GT_BITS_KINDS];
    /* refill batch sizes: start at 1 and double up to GT_SCACHE_N / GT_BCACHE_N, so a thread
     * that makes few spans takes few structs (bufchurn steady: one span per class) */
    uint8_t sbatch, bbatch[GT_BITS_KINDS];
    void *bfree[GT_BITS_KINDS]; /* free bitmap blocks per kind (linked by their first word) */
    _Atomic uint64_t nmalloc, nfree, bytes_alloc, bytes_freed;
    /* collect's remote flush (mcache.c): another thread may flush this cache while its owner
     * sleeps in a system call outside the heap */
    pthread_mutex_t own;            /* owner's epoch refresh and release vs a remote flush  */
    int tid;                        /* owner's kernel thread id; 0: never flushed remotely */
    const _Atomic unsigned *slow;   /* owner's gt_slow_depth: > 0 inside a heap slow path  */
    uint64_t sigblk;                /* owner's blocked signals (1 << (signo - 1)) at its last
                                     * epoch refresh: another set means inside a handler  */
    uint64_t gen_seen;              /* the epoch the owner's fast paths match (under own)  */
    uint64_t flushed_gen;           /* epoch of the last remote flush (under own)          */
    uint64_t visit;                 /* collect's last visit: epoch x rounds + round (under
                                     * the heap lock; only grows)                          */
    _Atomic int retry;              /* 1: the last visit wants another round (under own)   */
    _Atomic int sig_ack;            /* the owner's answer to a signal flush (GT_SIG_*)     */
    _Atomic(struct gt_mcache *) *sig_req; /* the owner's request word (signal flush)     */
} gt_mcache;

extern gt_span gt_empty_span;

/* ---- the heap ---- */
typedef struct gt_heap {
    _Atomic uint64_t gen;  /* cache epoch: unique across heaps and epochs (the registry's
                            * counter); collect() moves it, so every thread's next call misses
                            * the fast-path match and flushes its cache first */
    uint64_t id;           /* unique per create(): thread caches of a dead heap never match */
    size_t tiny_lim;
    int free_reuse;        /* free strategy: 0 sweep (freed bitmap), 1 reuse (mcache LIFO) */
    int bg_scav;
    gt_central central[GT_NSPC];
    gt_clock clock[GT_NCLOCK];
    pthread_mutex_t lock;  /* mheap lock: arenas, pages, fixallocs, cache list, counters */
    gt_arena *arenas;      /* normal arenas, oldest first (the search order) */
    gt_arena *huge;        /* arenas holding one huge object */
    gt_fix span_fix, cache_fix, tiny_fix;
    gt_mfix bits_fix;      /* span bitmaps of 1, 2, 4, 8, 16 words (x2: alloc, freed) */
    gt_mcache *caches;
    uint64_t pages_inuse;  /* pages in spans (normal arenas) */
    uint64_t pages_total;  /* usable pages of normal arenas */
    uint64_t pages_released;
    uint64_t huge_bytes;
    uint64_t arena_bytes;  /* bytes mapped for arenas (normal + huge) */
    /* counters of released caches and of large objects (under lock) */
    uint64_t r_nmalloc, r_nfree, r_bytes_alloc, r_bytes_freed;
    _Atomic uint64_t num_gc, central_refills, spans_grown, sweeps, bytes_scavenged;
    _Atomic uint64_t remote_flushes; /* caches collect flushed for their sleeping owners */
    _Atomic uint64_t signal_flushes; /* caches their running owners flushed on collect's signal */
    int remote_flush;      /* option: GT_RF_OFF, GT_RF_SLEEP (sleeping owners only), GT_RF_ON
                            * (and running owners, by signal); 0 without GT_REMOTE_FLUSH */
    /* background scavenger */
    pthread_t scav_thread;
    pthread_cond_t scav_cond;
    int scav_started, scav_stop;
    _Atomic int scav_want; /* gt_scav_wake found the goal exceeded: gt_scav_kick starts it */
    struct gt_heap *reg_next; /* process registry of live heaps */
} gt_heap;

/* mheap.c */
struct gt_mcache;
/* A span of npages for span class spc; from mc's page and span caches without the heap lock
 * when mc is not NULL and the span is small enough. NULL: out of memory. */
gt_span *gt_heap_alloc_span(gt_heap *h, size_t npages, unsigned spc, struct gt_mcache *mc);
/* Give mc's cached pages, span structs and bitmaps back to the mheap (takes the heap lock).
 * Can't fail. */
void gt_heap_flush_local(gt_heap *h, struct gt_mcache *mc);
void gt_heap_free_span(gt_heap *h, gt_span *s);    /* takes the heap lock; can't fail */
/* NULL: out of memory or too big */
void *gt_large_alloc(gt_heap *h, size_t size, size_t align, struct gt_mcache *mc);
void gt_large_free(gt_heap *h, gt_span *s);
void gt_heap_unmap_all(gt_heap *h);
int gt_heap_first_arena(gt_heap *h);               /* 0, or -1 when mmap fails */
void gt_heap_geom_init(void);                      /* once per process; can't fail */

/* mcentral.c */
void gt_central_init(gt_central *c, unsigned spc, pthread_mutex_t *lock);
gt_span *gt_central_cache_span(gt_heap *h, unsigned spc, struct gt_mcache *mc); /* NULL: OOM */
/* swept: the caller swept s just now (skip the sweep). */
void gt_central_uncache_span(gt_heap *h, gt_span *s, int swept);
void gt_central_notify(gt_heap *h, gt_span *s, unsigned spc);
void gt_central_sweep_all(gt_heap *h);
/* Fold pending frees into alloc_bits; returns objects reclaimed. Caller owns s. */
unsigned gt_span_sweep(gt_heap *h, gt_span *s);

/* mcache.c */
typedef struct gt_tls_fast {
    gt_heap *heap;
    uint64_t gen;   /* the heap's epoch when mc was last flushed (or made) */
    gt_mcache *mc;
    uint64_t id;    /* the heap's id */
} gt_tls_fast;
/* local-exec (one %fs-relative load) when linked into an executable, initial-exec (a GOT
 * load first) when built -fPIC for a shared library (the drop-in). */
#if defined(__PIE__) || !defined(__PIC__)
#define GT_TLS_MODEL "local-exec"
#else
#define GT_TLS_MODEL "initial-exec"
#endif
extern __thread gt_tls_fast gt_tls __attribute__((tls_model(GT_TLS_MODEL)));
gt_mcache *gt_mcache_get_slow(gt_heap *h);  /* NULL: out of memory */
/* The calling thread's depth of heap slow paths: every path that may block (a lock, a system
 * call) while an operation is in flight runs inside GT_SLOW_SCOPE, so a thread found asleep
 * in a system call with depth 0 is not inside the heap (collect's remote flush). */
extern __thread _Atomic unsigned gt_slow_depth __attribute__((tls_model(GT_TLS_MODEL)));
static inline unsigned gt_slow_enter(void)
{
    unsigned d = atomic_load_explicit(&gt_slow_depth, memory_order_relaxed);
    atomic_store_explicit(&gt_slow_depth, d + 1, memory_order_relaxed);
    return d;
}
static inline void gt_slow_leave(unsigned *d)
{
    atomic_store_explicit(&gt_slow_depth, *d, memory_order_relaxed);
}
/* Marks the rest of the enclosing block (every return included) as a slow path. */
#define GT_SLOW_SCOPE                                                                          \
    unsigned gt_slow_scope_ __attribute__((cleanup(gt_slow_leave), unused)) = gt_slow_enter()
/* Fork child: the other threads are gone; their caches are never flushed remotely. */
void gt_mcache_atfork_child(gt_heap *h);
typedef struct gt_counts {
    uint64_t nmalloc, nfree, bytes_alloc, bytes_freed;
} gt_counts;
gt_counts gt_mcache_counts(gt_mcache *mc);
/* Refill and allocate; counted in the stats when `counted`. NULL: out of memory. */
void *gt_mcache_alloc_slow(gt_mcache *mc, unsigned spc, int counted);
void gt_mcache_flush(gt_mcache *mc);        /* give every span and list back; keep mc */
void *gt_mcache_large_alloc(gt_heap *h, size_t size);   /* NULL: out of memory or too big */
int gt_mcache_large_free(gt_heap *h, gt_span *s);       /* 1: kept in the cache, 0: not */
void gt_mcache_detach(gt_heap *h);          /* release the calling thread's cache of h */
void gt_mcache_new_epoch(gt_heap *h);       /* collect: every cache flushes at its next call */
void gt_reuse_trim(gt_mcache *mc, unsigned spc);
void gt_registry_add(gt_heap *h);              /* also makes the thread-exit key once */
void gt_registry_remove(gt_heap *h);
void gt_registry_atfork(int phase);       /* the registry lock around fork() */
void gt_free_to_span(gt_heap *h, gt_span *s, uintptr_t p); /* out-of-line bits_free */

/* Freed-bitmap free of object p of small span s, from any thread: poison, one atomic OR, and
 * a state check (a span filed as full must be moved to `unswept` so it gets swept). The OR
 * comes first: after it the span may be swept, emptied and recycled, so only the atomic state
 * word is read after it. Can't fail. */
static inline void gt_bits_free(gt_heap *h, gt_span *s, uintptr_t p)
{
    unsigned spc = s->spc;
    size_t idx = (size_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
    GT_POISON(p, s->elemsize);
    atomic_fetch_or(&s->freed[idx >> 6], UINT64_C(1) << (idx & 63));
    if (gt_unlikely(atomic_load(&s->st) == GT_ST(spc, GT_SPAN_FULL)))
        gt_central_notify(h, s, spc);
}

/* h's cache epoch (a plain load). The fast paths match it against the thread's gt_tls.gen:
 * epochs are unique process-wide, so a match means "this heap, and my cache is current". */
static inline uint64_t gt_heap_epoch(gt_heap *h)
{
    return atomic_load_explicit(&h->gen, memory_order_relaxed);
}

static inline gt_mcache *gt_mcache_get(gt_heap *h)
{
    if (gt_likely(gt_tls.gen == gt_heap_epoch(h))) return gt_tls.mc;
    return gt_mcache_get_slow(h);
}

#ifdef GOTIERED_DEBUG
void gt_debug_fail(const char *what, const void *p) __attribute__((noreturn));
void gt_debug_on_alloc(gt_span *s, uintptr_t p);
void gt_debug_on_free(gt_heap *h, const void *p, size_t hint);
void gt_debug_clear_live(gt_span *s, uintptr_t p);
#endif

/* Fast path: one object of span class spc (0..68; 0 = size 0) from mc; `counted` (a constant
 * at every call site, so the test folds away) counts it as one malloc of the class size (the
 * slow path counts its own). NULL only when out of memory. */
static inline __attribute__((always_inline)) void *gt_mcache_alloc_impl(gt_mcache *mc,
                                                                         unsigned spc,
                                                                         int counted)
{
    gt_slot *sl = &mc->slot[spc];
    void *p = sl->reuse;
    if (p) {
        GT_UNPOISON(p, sl->elemsize);
        sl->reuse = *(void **)p;
        sl->room++;
    } else {
        uint64_t c = sl->cache;
        if (gt_unlikely(!c)) return gt_mcache_alloc_slow(mc, spc, counted);
        sl->cache = c & (c - 1);
        p = (void *)(sl->wbase + (uintptr_t)__builtin_ctzll(c) * sl->elemsize);
        GT_UNPOISON(p, sl->elemsize);
    }
    if (counted) GT_COUNT(sl->nalloc);
#ifdef GOTIERED_DEBUG
    gt_debug_on_alloc(gt_span_of(p), (uintptr_t)p);
#endif
    return p;
}

/* Not counted in the stats (tiny blocks, refills). */
static inline void *gt_mcache_alloc(gt_mcache *mc, unsigned spc)
{
    return gt_mcache_alloc_impl(mc, spc, 0);
}

/* Counted as one malloc of the class size. */
static inline void *gt_mcache_alloc_counted(gt_mcache *mc, unsigned spc)
{
    return gt_mcache_alloc_impl(mc, spc, 1);
}

/* Free block q (an object of small span s, class spc; a whole block for tiny) through the
 * calling thread's cache mc: push on the reuse list (free=reuse), or set its bit back in
 * allocCache when it lies in the word the cache allocates from, else the freed bitmap.
 * Can't fail. */
static inline __attribute__((always_inline)) void gt_mcache_free_impl(gt_mcache *mc, gt_heap *h,
                                                                       gt_span *s, unsigned spc,
                                                                       uintptr_t q, int counted)
{
    gt_slot *sl = &mc->slot[spc];
    if (counted) GT_COUNT(sl->nfree);
    if (mc->free_reuse) {
        *(void **)q = sl->reuse;
        GT_POISON(q, s->elemsize);
        sl->reuse = (void *)q;
        if (gt_unlikely(--sl->room == 0)) gt_reuse_trim(mc, spc);
        return;
    }
    if (sl->span == s) {
        size_t idx = (size_t)(((uint64_t)(q - s->base) * s->divmul) >> 32);
        if ((idx >> 6) == s->widx) {
            GT_POISON(q, s->elemsize);
            sl->cache |= UINT64_C(1) << (idx & 63);
            return;
        }
    }
    gt_bits_free(h, s, q);
}

/* Not counted (the caller counted it: tiny blocks, slow paths). */
static inline void gt_mcache_free_block(gt_mcache *mc, gt_heap *h, gt_span *s, unsigned spc,
                                        uintptr_t q)
{
    gt_mcache_free_impl(mc, h, s, spc, q, 0);
}

/* tiny.c */
void *gt_tiny_alloc_slow(gt_mcache *mc, size_t size); /* NULL: out of memory */
/* Drop one live sub-object of block b (16-aligned) of tiny span s; returns 1 when the block
 * died (the caller frees the block), else 0. */
static inline int gt_tiny_put(gt_span *s, uintptr_t b)
{
    gt_tinyblk *r = &s->tiny[(b - s->base) >> 4];
    uint8_t old = atomic_fetch_sub_explicit(&r->cnt, 1, memory_order_acq_rel);
#ifdef GOTIERED_DEBUG
    if (old == 0 || old > GT_TINY_PIN) gt_debug_fail("double free (tiny block count)", (void *)b);
#endif
    return old == 1;
}
void gt_tiny_release(gt_mcache *mc);       /* drop the cache's pin on its current block */
size_t gt_tiny_usable(const gt_span *s, uintptr_t p);

/* Free of a sub-object of the calling thread's own current tiny block: counted locally; when
 * every sub-object handed out is freed (no other thread can hold one), rewind the block. */
static inline void gt_tiny_free_local(gt_mcache *mc)
{
    if (++mc->tiny_local == mc->tiny_n) {
        mc->tiny_off = 0;
        mc->tiny_n = 0;
        mc->tiny_local = 0;
        atomic_store_explicit(&mc->tiny_rec->ends, 0, memory_order_relaxed);
    }
}

/* Tiny path: size < 16, sub-object aligned to the largest power of two <= size. */
static inline void *gt_tiny_alloc(gt_mcache *mc, size_t size)
{
    size += !size;
    unsigned a = 1u << (31 - __builtin_clz((unsigned)size));
    unsigned off = (mc->tiny_off + a - 1) & ~(a - 1);
    if (gt_likely(off + size <= GT_TINY_SIZE)) {
        gt_tinyblk *r = mc->tiny_rec;
        uint16_t e = atomic_load_explicit(&r->ends, memory_order_relaxed);
        atomic_store_explicit(&r->ends, (uint16_t)(e | (1u << (off + size - 1))),
                              memory_order_relaxed);
        mc->tiny_off = off + (unsigned)size;
        mc->tiny_n++;
        GT_COUNT(mc->ntiny);
        return (void *)(mc->tiny_blk + off);
    }
    return gt_tiny_alloc_slow(mc, size);
}

/* scavenger.c */
void gt_scav_wake(gt_heap *h);         /* under the heap lock; asks for the thread when needed */
void gt_scav_kick_slow(gt_heap *h);    /* without any lock: starts the thread asked for */
/* Start the background scavenger if gt_scav_wake asked for it. Call without any gotiered lock,
 * only where a nested allocation is safe (pthread_create allocates, and in the drop-in that is
 * gotiered itself): the end of an allocation slow path or of a large free. Can't fail. */
static inline void gt_scav_kick(gt_heap *h)
{
    if (gt_unlikely(atomic_load_explicit(&h->scav_want, memory_order_relaxed)))
        gt_scav_kick_slow(h);
}
void gt_scav_stop(gt_heap *h);         /* joins it */
size_t gt_scavenge(gt_heap *h, size_t budget_pages); /* under the heap lock */

#endif
