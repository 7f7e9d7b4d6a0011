/* allocator.h - the backend vtable: the one contract every allocator in alloclab signs.
 *
 * A backend is one `const al_backend` table (SQLite's sqlite3_mem_methods style), filled with
 * designated initializers, listed once in allocators/registry.c. The harness, the workloads
 * and the conformance suite only ever reach an allocator through this table, so adding a
 * backend is one new file plus one registry line.
 *
 * Preconditions are checked once by the caller (the al_* inline helpers at the bottom of this
 * file), so backends stay small:
 *   - `heap` is always a value returned by this backend's create() and not yet destroyed;
 *   - free/realloc/usable_size get only pointers this heap returned and has not freed yet;
 *   - create() and destroy() are never called concurrently with any other entry on that heap.
 *
 * Entries marked "optional" may be NULL, meaning "not supported": the harness then falls back
 * (realloc -> alloc+copy+free) or reports the figure as absent. It never fakes it.
 */
#ifndef ALLOCLAB_ALLOCATOR_H
#define ALLOCLAB_ALLOCATOR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AL_ABI_VERSION 1

/* Capability flags (al_backend.caps). */
enum {
    AL_CAP_THREAD_SAFE = 1u << 0, /* alloc/free/realloc may be called from any thread at once */
    AL_CAP_FREE_NOOP   = 1u << 1, /* free() releases nothing (region/bump allocators)         */
    AL_CAP_NEEDS_SIZE  = 1u << 2, /* free() and realloc() are faster given the size hint      */
    AL_CAP_TEST_ONLY   = 1u << 3, /* hidden unless ALLOCLAB_TEST_BACKENDS=1 (harness tests)    */
    AL_CAP_PRELOAD     = 1u << 4, /* runs in a child started with LD_PRELOAD=<library>         */
};

/* The minimum alignment every alloc() result has, whatever the size (malloc's guarantee on
 * x86-64 glibc). Backends with size-dependent alignment still promise at least this for
 * sizes >= 16, and at least the largest power of two <= size for smaller sizes. */
#define AL_MIN_ALIGN 16

/* Statistics, defined once (X-macro, as mimalloc-stats.h does) and generated into the struct,
 * the JSON/text writers and the harness counters. Names follow Go's runtime.MemStats where one
 * exists. A backend sets the bit of each field it really fills in `present`; a field whose bit
 * is clear is absent (printed as absent, never as 0).
 *   X(field, "Name", "what it counts") */
#define AL_STATS_FIELDS(X)                                                           \
    X(alloc_bytes,     "Alloc",          "bytes in live objects")                   \
    X(total_alloc,     "TotalAlloc",     "bytes allocated, cumulative")             \
    X(sys,             "Sys",            "bytes mapped from the OS")                \
    X(mallocs,         "Mallocs",        "allocations, cumulative")                 \
    X(frees,           "Frees",          "frees, cumulative")                       \
    X(heap_objects,    "HeapObjects",    "live objects")                            \
    X(heap_sys,        "HeapSys",        "heap bytes mapped from the OS")           \
    X(heap_idle,       "HeapIdle",       "heap bytes in free spans")                \
    X(heap_inuse,      "HeapInuse",      "heap bytes in spans in use")              \
    X(heap_released,   "HeapReleased",   "bytes returned to the OS")                \
    X(num_gc,          "NumGC",          "collect cycles (GC / pool cleanup)")      \
    X(central_refills, "CentralRefills", "mcache refills from mcentral")            \
    X(spans_grown,     "SpansGrown",     "spans taken from the page heap")          \
    X(sweeps,          "Sweeps",         "spans swept")                             \
    X(bytes_scavenged, "BytesScavenged", "bytes returned with madvise")             \
    X(pool_gets,       "PoolGets",       "pool get calls")                          \
    X(pool_puts,       "PoolPuts",       "pool put calls")                          \
    X(pool_hits,       "PoolHits",       "gets served from a pool")                 \
    X(pool_misses,     "PoolMisses",     "gets that went to the underlying allocator") \
    X(pool_steals,     "PoolSteals",     "gets served from another thread's pool")  \
    X(pool_victim_hits,"PoolVictimHits", "gets served from the victim cache")       \
    X(pool_bytes_held, "PoolBytesHeld",  "bytes held in pools")

typedef enum {
#define AL_X(f, n, d) AL_STAT_##f,
    AL_STATS_FIELDS(AL_X)
#undef AL_X
    AL_STAT_COUNT
} al_stat_id;

typedef struct al_stats {
    uint64_t present; /* bit (1 << AL_STAT_x) set for each field the backend filled */
#define AL_X(f, n, d) uint64_t f;
    AL_STATS_FIELDS(AL_X)
#undef AL_X
} al_stats;

#define AL_STAT_BIT(f) (UINT64_C(1) << AL_STAT_##f)

/* Name ("Alloc", ...) and description of stats field i; NULL past the end. Can't fail. */
const char *al_stat_name(int i);
const char *al_stat_desc(int i);
/* Value of field i of s. Can't fail (i < AL_STAT_COUNT). */
uint64_t al_stat_value(const al_stats *s, int i);

typedef struct al_backend al_backend;

struct al_backend {
    int abi;             /* AL_ABI_VERSION */
    const char *name;    /* short, [a-z0-9_-]+, used on the command line and in result names */
    const char *desc;    /* one line for `alloclab --list` */
    unsigned caps;       /* AL_CAP_* */
    const char *preload; /* AL_CAP_PRELOAD: the library to LD_PRELOAD, else NULL */

    /* Required. Make a heap. `options` is NULL or "key=value,key=value" (backend specific;
     * backends also read ALLOCLAB_<NAME>_<KEY> environment variables). On failure returns NULL
     * and writes one line to err[0..errlen) (e.g. "library not installed"); nothing is leaked. */
    void *(*create)(const char *options, char *err, size_t errlen);

    /* Required. Release the heap and everything allocated from it. Can't fail. */
    void (*destroy)(void *heap);

    /* Required. Returns a block of at least `size` bytes aligned to AL_MIN_ALIGN (for
     * size >= 16; smaller sizes: the largest power of two <= size, at least 8 where size >= 8),
     * or NULL when out of memory or when size is huge (size > PTRDIFF_MAX, or more than the
     * backend can map): never a crash, never abort. size 0 returns a unique, freeable,
     * non-NULL pointer. Thread-safe when caps has AL_CAP_THREAD_SAFE. */
    void *(*alloc)(void *heap, size_t size);

    /* Required. Release p. `size` is the size asked at alloc time (or the new size of the last
     * realloc), or 0 when the caller does not know it. p == NULL is a no-op. Any thread may
     * free any block (cross-thread free) when AL_CAP_THREAD_SAFE. Can't fail. */
    void (*free)(void *heap, void *p, size_t size);

    /* Optional. Resize p to new_size keeping min(old, new) bytes of content. old_size is as
     * for free() (0 = unknown). p == NULL behaves as alloc(new_size). On failure returns NULL
     * and leaves p valid and unchanged. new_size 0 returns a minimal block as alloc(0) does. */
    void *(*realloc)(void *heap, void *p, size_t old_size, size_t new_size);

    /* Optional. A block of `size` bytes aligned to `align` (a power of two, at least
     * sizeof(void*)); freed with free(). NULL on failure or a bad alignment. */
    void *(*alloc_aligned)(void *heap, size_t align, size_t size);

    /* Optional. Bytes usable at p (>= the size asked). Can't fail. */
    size_t (*usable_size)(void *heap, const void *p);

    /* Optional. Flush the calling thread's cache back to the shared heap (thread exit). */
    void (*thread_detach)(void *heap);

    /* Optional. Release cached memory: a GC cycle, a pool cleanup, a scavenge. */
    void (*collect)(void *heap);

    /* Optional. Fill *out (and its `present` mask). Returns 0; can't fail. */
    int (*stats)(void *heap, al_stats *out);

    /* Optional. Verify the heap's invariants. Returns 0 when they hold, else -1 with one line
     * naming the broken invariant in msg. Not thread-safe: call with the heap quiescent. */
    int (*check)(void *heap, char *msg, size_t msglen);

    /* Optional. What this allocator really is, for the results context ("glibc 2.36",
     * "mimalloc 2.0.9"). Returns a static string. */
    const char *(*version)(void);
    /* Optional. fork() safety, called through pthread_atfork by a drop-in build:
     * AL_FORK_PREPARE takes every lock of the heap (in one fixed order) so no other thread is
     * inside it when fork() copies the process; AL_FORK_PARENT releases them in the parent;
     * AL_FORK_CHILD makes them usable again in the child (release or re-initialise), where only
     * the forking thread exists: other threads' caches stay as they were (leaked, not corrupt).
     * A backend without locks (or thread-unsafe) leaves this NULL. Can't fail. */
    void (*atfork)(void *heap, int phase);
};

/* al_backend.atfork phases. */
enum { AL_FORK_PREPARE = 0, AL_FORK_PARENT = 1, AL_FORK_CHILD = 2 };

/* ---- the registry (allocators/registry.c) ---- */

/* Number of backends; includes test-only ones only when ALLOCLAB_TEST_BACKENDS=1. */
int al_backend_count(void);
/* Backend i (0 <= i < al_backend_count()). */
const al_backend *al_backend_at(int i);
/* Backend by name, or NULL. */
const al_backend *al_backend_find(const char *name);

/* ---- caller-side helpers: preconditions and fallbacks live here, once ---- */

/* realloc through the vtable, or alloc+copy+free when the backend has no realloc. */
static inline void *al_realloc(const al_backend *b, void *heap, void *p, size_t old_size,
                               size_t new_size)
{
    if (b->realloc) return b->realloc(heap, p, old_size, new_size);
    void *q = b->alloc(heap, new_size);
    if (!q) return NULL;
    if (p) {
        memcpy(q, p, old_size < new_size ? old_size : new_size);
        b->free(heap, p, old_size);
    }
    return q;
}

#endif
