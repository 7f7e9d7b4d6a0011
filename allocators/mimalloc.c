/* mimalloc.c - Microsoft's mimalloc (Leijen, Zorn, de Moura 2019), the Debian libmimalloc2.0
 * build, driven through its mi_ API as a reference row.
 *
 * Lineage: free-list sharding per page, per-thread heaps, separate local/thread-delayed free
 * lists (see the mimalloc tech report MSR-TR-2019-18). We add nothing to it: this file only
 * loads it and forwards.
 *
 * Glossary
 *   lib   libmimalloc.so.2, dlopen'ed once with RTLD_LOCAL|RTLD_NOW (refalloc.h says why: its
 *         exported malloc/free never replace the process's malloc);
 *   heap  the handle is a token (&mim): mimalloc keeps one heap per thread itself, so every
 *         create() returns the same token and destroy() releases nothing (blocks still live at
 *         destroy belong to the process, as with libc).
 *
 * Allocation path: 1. size > PTRDIFF_MAX -> NULL (one compare); 2. mi_malloc (mimalloc's
 *   thread-local page free list: a few instructions). Aligned: mi_malloc_aligned plus one
 *   alignment test (a mimalloc 2.0.9 bug, see mim_realign). Free path: mi_free (local push or
 *   atomic thread-delayed push for a cross-thread free); the size hint is unused.
 * Invariants: lib loaded <=> every mim.* entry non-NULL; loaded once per process, never closed.
 * When the library is missing create() fails with "not installed: libmimalloc.so.2" and the
 * harness records the rows as skipped.
 */
#include "allocator.h"
#include "refalloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define MIM_SONAME "libmimalloc.so.2"

static struct mim_lib {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*realloc)(void *, size_t);
    void *(*malloc_aligned)(size_t, size_t);
    size_t (*usable_size)(const void *);
    void (*collect)(bool);
    int (*version)(void);
} mim;

static pthread_once_t mim_once = PTHREAD_ONCE_INIT;
static int mim_status = -1;
static char mim_err[160];

static void mim_load(void)
{
    const ref_sym syms[] = {
        {"mi_malloc", (void **)&mim.malloc, 0},
        {"mi_free", (void **)&mim.free, 0},
        {"mi_realloc", (void **)&mim.realloc, 0},
        {"mi_malloc_aligned", (void **)&mim.malloc_aligned, 0},
        {"mi_usable_size", (void **)&mim.usable_size, 0},
        {"mi_collect", (void **)&mim.collect, 0},
        {"mi_version", (void **)&mim.version, 0},
    };
    mim_status = ref_load(MIM_SONAME, syms, (int)(sizeof syms / sizeof syms[0]), mim_err,
                          sizeof mim_err);
}

/* Returns the token, or NULL with "not installed: libmimalloc.so.2" (or a missing symbol). */
static void *mim_create(const char *options, char *err, size_t errlen)
{
    if (options && *options) {
        snprintf(err, errlen, "mimalloc takes no options (got \"%s\"; use MIMALLOC_* env vars)",
                 options);
        return NULL;
    }
    pthread_once(&mim_once, mim_load);
    if (mim_status != 0) {
        snprintf(err, errlen, "%s", mim_err);
        return NULL;
    }
    return &mim;
}

static void mim_destroy(void *heap) { (void)heap; }

static void *mim_alloc(void *heap, size_t size)
{
    (void)heap;
    if (__builtin_expect(size > PTRDIFF_MAX, 0)) return NULL;
    ref_tsan_begin();
    void *p = mim.malloc(size);
    ref_tsan_end();
    return p;
}

static void mim_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    ref_tsan_begin();
    mim.free(p);
    ref_tsan_end();
}

static void *mim_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    (void)heap;
    (void)old_size;
    if (new_size > PTRDIFF_MAX) return NULL;
    ref_tsan_begin();
    /* The contract wants a minimal block for new_size 0, never a free. */
    void *q = mim.realloc(p, new_size ? new_size : 1);
    ref_tsan_end();
    return q;
}

/* mimalloc 2.0.9 (Debian 12) returns a misaligned block from mi_malloc_aligned when size is
 * align or 2*align for align 256..1024 (it takes a "naturally aligned size class" shortcut
 * that page offsets break; tests/conformance.c alloc_aligned caught it). Retry once with a size
 * off that shortcut; never return a misaligned block. Returns the block, or NULL. */
__attribute__((noinline, cold)) static void *mim_realign(void *bad, size_t size, size_t align)
{
    mim.free(bad);
    void *p = mim.malloc_aligned(size + 1, align);
    if (p && ((uintptr_t)p & (align - 1)) != 0) {
        mim.free(p);
        return NULL;
    }
    return p;
}

static void *mim_alloc_aligned(void *heap, size_t align, size_t size)
{
    (void)heap;
    if (size > PTRDIFF_MAX || align == 0 || (align & (align - 1))) return NULL;
    ref_tsan_begin();
    void *p = mim.malloc_aligned(size, align);
    if (__builtin_expect(((uintptr_t)p & (align - 1)) != 0, 0)) p = mim_realign(p, size, align);
    ref_tsan_end();
    return p;
}

static size_t mim_usable_size(void *heap, const void *p)
{
    (void)heap;
    return mim.usable_size(p);
}

static void mim_collect(void *heap)
{
    (void)heap;
    ref_tsan_begin();
    mim.collect(true);
    ref_tsan_end();
}

static const char *mim_version(void)
{
    static char buf[64];
    pthread_once(&mim_once, mim_load);
    if (mim_status != 0) return "mimalloc (not installed)";
    int v = mim.version(); /* 209 for 2.0.9 */
    snprintf(buf, sizeof buf, "mimalloc %d.%d.%d", v / 100, v / 10 % 10, v % 10);
    return buf;
}

const al_backend al_backend_mimalloc = {
    .abi = AL_ABI_VERSION,
    .name = "mimalloc",
    .desc = "Microsoft mimalloc (Debian libmimalloc.so.2, dlopen'ed RTLD_LOCAL, mi_* API)",
    .caps = AL_CAP_THREAD_SAFE,
    .create = mim_create,
    .destroy = mim_destroy,
    .alloc = mim_alloc,
    .free = mim_free,
    .realloc = mim_realloc,
    .alloc_aligned = mim_alloc_aligned,
    .usable_size = mim_usable_size,
    .collect = mim_collect,
    .version = mim_version,
};
