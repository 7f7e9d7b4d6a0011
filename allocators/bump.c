/* bump.c - a region (bump-pointer) allocator: the physical lower bound on allocation cost.
 *
 * Every chart carries a `bump` row as the "physical limit": no allocator that frees can be
 * cheaper per operation than moving one pointer, so bump shows how much of each figure is the
 * workload itself (touching memory, page faults) and how much is allocator bookkeeping.
 *
 * Glossary
 *   chunk   one mmap'd region (BUMP_CHUNK bytes, or bigger for a request that does not fit),
 *           with a header {next, cap, used} and the bump area behind it.
 *   cur     the chunk allocations currently bump in.
 *
 * Allocation path
 *   1. round the size up to 16 (AL_MIN_ALIGN) - one add and mask;
 *   2. atomically add it to cur->used (one fetch_add: threads never take a lock here);
 *   3. if the old `used` plus the size fits in cur, return cur's area + old used.
 *   4. slow path (cold): under the heap's mutex map a new chunk and make it cur (a request
 *      larger than a quarter chunk gets a chunk of its own and leaves cur alone), retry.
 * Free path: nothing. The memory comes back when collect() resets the region or destroy()
 *   unmaps it. collect() therefore ENDS THE LIFE OF EVERY BLOCK (AL_CAP_FREE_NOOP says so).
 *
 * Invariants
 *   every chunk is on heap->chunks; cur is on that list;
 *   bytes handed out from a chunk = min(used, cap) <= cap;   sys == sum of mapped chunk sizes.
 */
#include "allocator.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#define BUMP_CHUNK ((size_t)64 << 20)       /* 64 MiB: the usual arena size */
#define BUMP_MAX_REQUEST ((size_t)1 << 44)  /* 16 TiB: beyond this mmap cannot succeed */
#define BUMP_HDR ((size_t)64)               /* chunk header, keeps the area cache-aligned */

typedef struct bump_chunk {
    struct bump_chunk *next;
    size_t map_size;           /* bytes mapped, header included */
    size_t cap;                /* bytes in the bump area */
    _Atomic size_t used;       /* bytes claimed; may overshoot cap after a failed claim */
} bump_chunk;

typedef struct bump_heap {
    _Atomic(bump_chunk *) cur;
    pthread_mutex_t lock;      /* guards chunks, sys and the switch of cur */
    bump_chunk *chunks;
    size_t sys;
} bump_heap;

static bump_chunk *chunk_map(size_t area)
{
    size_t map = area + BUMP_HDR;
    void *m = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) return NULL;
    bump_chunk *c = m;
    c->next = NULL;
    c->map_size = map;
    c->cap = area;
    atomic_init(&c->used, 0);
    return c;
}

static inline char *chunk_area(bump_chunk *c) { return (char *)c + BUMP_HDR; }

static void *bump_create(const char *options, char *err, size_t errlen)
{
    if (options && *options) {
        snprintf(err, errlen, "bump takes no options (got \"%s\")", options);
        return NULL;
    }
    bump_heap *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bump_chunk *c = chunk_map(BUMP_CHUNK);
    if (!c) {
        free(h);
        snprintf(err, errlen, "mmap of %zu bytes failed", BUMP_CHUNK);
        return NULL;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->chunks = c;
    h->sys = c->map_size;
    atomic_init(&h->cur, c);
    return h;
}

static void bump_destroy(void *heap)
{
    bump_heap *h = heap;
    for (bump_chunk *c = h->chunks, *n; c; c = n) {
        n = c->next;
        munmap(c, c->map_size);
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

__attribute__((noinline, cold)) static void *bump_alloc_slow(bump_heap *h, bump_chunk *seen,
                                                             size_t size)
{
    if (size > BUMP_MAX_REQUEST) return NULL;
    pthread_mutex_lock(&h->lock);
    void *res = NULL;
    if (size > BUMP_CHUNK / 4) {
        /* A chunk of its own; cur keeps serving the small requests. */
        bump_chunk *c = chunk_map(size);
        if (c) {
            atomic_store_explicit(&c->used, size, memory_order_relaxed);
            c->next = h->chunks;
            h->chunks = c;
            h->sys += c->map_size;
            res = chunk_area(c);
        }
    } else if (atomic_load_explicit(&h->cur, memory_order_acquire) == seen) {
        bump_chunk *c = chunk_map(BUMP_CHUNK);
        if (c) {
            atomic_store_explicit(&c->used, size, memory_order_relaxed);
            c->next = h->chunks;
            h->chunks = c;
            h->sys += c->map_size;
            atomic_store_explicit(&h->cur, c, memory_order_release);
            res = chunk_area(c);
        }
    } else {
        res = (void *)1; /* another thread switched cur: retry the fast path */
    }
    pthread_mutex_unlock(&h->lock);
    return res;
}

static void *bump_alloc(void *heap, size_t size)
{
    bump_heap *h = heap;
    size_t sz = (size + 15) & ~(size_t)15;
    if (__builtin_expect(sz == 0, 0)) sz = size ? 0 : 16; /* 0 -> 16; overflow -> 0 */
    if (__builtin_expect(sz == 0 || sz > BUMP_CHUNK / 4, 0)) {
        if (sz == 0) return NULL;
        return bump_alloc_slow(h, NULL, sz);
    }
    for (;;) {
        bump_chunk *c = atomic_load_explicit(&h->cur, memory_order_acquire);
        size_t off = atomic_fetch_add_explicit(&c->used, sz, memory_order_relaxed);
        if (__builtin_expect(off + sz <= c->cap, 1)) return chunk_area(c) + off;
        void *r = bump_alloc_slow(h, c, sz);
        if (r != (void *)1) return r;
    }
}

static void bump_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)p;
    (void)size;
}

/* The chunk holding p; only used when realloc is not told the old size. */
static bump_chunk *chunk_of(bump_heap *h, const void *p)
{
    pthread_mutex_lock(&h->lock);
    bump_chunk *c = h->chunks;
    for (; c; c = c->next)
        if ((const char *)p >= chunk_area(c) && (const char *)p < chunk_area(c) + c->cap) break;
    pthread_mutex_unlock(&h->lock);
    return c;
}

static void *bump_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    bump_heap *h = heap;
    if (!p) return bump_alloc(h, new_size);
    if (old_size == 0) {
        /* Unknown size: copy what can lie behind p inside its chunk (the old block is no
         * larger than that, so its content is kept; the rest is harmless). */
        bump_chunk *c = chunk_of(h, p);
        if (!c) return NULL;
        old_size = (size_t)(chunk_area(c) + c->cap - (char *)p);
    }
    void *q = bump_alloc(h, new_size);
    if (!q) return NULL;
    /* memmove: with an unknown old size the copied range may run into q itself */
    memmove(q, p, old_size < new_size ? old_size : new_size);
    return q;
}

static void bump_collect(void *heap)
{
    bump_heap *h = heap;
    pthread_mutex_lock(&h->lock);
    bump_chunk *keep = atomic_load(&h->cur);
    for (bump_chunk *c = h->chunks, *n; c; c = n) {
        n = c->next;
        if (c != keep) munmap(c, c->map_size);
    }
    keep->next = NULL;
    /* Give the kept chunk's touched pages back too: a reset region costs no RSS. */
    madvise(chunk_area(keep), keep->cap, MADV_DONTNEED);
    atomic_store(&keep->used, 0);
    h->chunks = keep;
    h->sys = keep->map_size;
    pthread_mutex_unlock(&h->lock);
}

static int bump_stats(void *heap, al_stats *out)
{
    bump_heap *h = heap;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->lock);
    uint64_t used = 0;
    for (bump_chunk *c = h->chunks; c; c = c->next) {
        size_t u = atomic_load_explicit(&c->used, memory_order_relaxed);
        used += u < c->cap ? u : c->cap;
    }
    out->sys = out->heap_sys = h->sys;
    out->heap_inuse = used;
    pthread_mutex_unlock(&h->lock);
    out->present = AL_STAT_BIT(sys) | AL_STAT_BIT(heap_sys) | AL_STAT_BIT(heap_inuse);
    return 0;
}

static int bump_check(void *heap, char *msg, size_t msglen)
{
    bump_heap *h = heap;
    int found_cur = 0;
    size_t sys = 0;
    bump_chunk *cur = atomic_load(&h->cur);
    for (bump_chunk *c = h->chunks; c; c = c->next) {
        found_cur |= c == cur;
        sys += c->map_size;
        if (c->map_size != c->cap + BUMP_HDR) {
            snprintf(msg, msglen, "chunk %p: map_size %zu != cap %zu + header", (void *)c,
                     c->map_size, c->cap);
            return -1;
        }
    }
    if (!found_cur) {
        snprintf(msg, msglen, "cur chunk %p is not on the chunk list", (void *)cur);
        return -1;
    }
    if (sys != h->sys) {
        snprintf(msg, msglen, "sys %zu != sum of chunk sizes %zu", h->sys, sys);
        return -1;
    }
    return 0;
}

static const char *bump_version(void) { return "alloclab bump (64 MiB mmap chunks)"; }

/* Fork safety (the drop-in's pthread_atfork): hold the one lock across fork(); the child,
 * where only the forking thread lives, gets a fresh mutex. Can't fail. */
static void bump_atfork(void *heap, int phase)
{
    bump_heap *h = heap;
    if (phase == AL_FORK_PREPARE) pthread_mutex_lock(&h->lock);
    else if (phase == AL_FORK_PARENT) pthread_mutex_unlock(&h->lock);
    else pthread_mutex_init(&h->lock, NULL);
}

const al_backend al_backend_bump = {
    .abi = AL_ABI_VERSION,
    .name = "bump",
    .desc = "region allocator: bump pointer in 64 MiB mmap'd chunks, free does nothing "
            "(lower bound on allocation cost)",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_FREE_NOOP,
    .create = bump_create,
    .destroy = bump_destroy,
    .alloc = bump_alloc,
    .free = bump_free,
    .realloc = bump_realloc,
    .collect = bump_collect,
    .stats = bump_stats,
    .check = bump_check,
    .version = bump_version,
    .atfork = bump_atfork,
};
