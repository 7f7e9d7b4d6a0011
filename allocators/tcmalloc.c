/* tcmalloc.c - gperftools' TCMalloc (Ghemawat & Menage), the Debian libtcmalloc_minimal.so.4
 * build (no heap profiler/checker), driven through its tc_ API as a reference row.
 *
 * Lineage: per-thread caches of size-classed free lists in front of central free lists and a
 * page heap of spans (the design Go's runtime allocator was derived from). We only load and
 * forward.
 *
 * Glossary
 *   lib   libtcmalloc_minimal.so.4, dlopen'ed once with RTLD_LOCAL|RTLD_NOW: its exported
 *         malloc/free/operator new stay out of the global scope, so the process's malloc stays
 *         glibc's (tests/unit_refalloc.c checks it with MallocExtension_GetOwnership). Both
 *         then grow the data segment with sbrk; that is safe: glibc's main arena treats
 *         tcmalloc's sbrk as a "foreign sbrk" (a non-contiguous top), tcmalloc never shrinks
 *         the break, and the unit test interleaves both to check it.
 *   heap  a token (&tcm): tcmalloc's heap is process-wide; destroy() releases nothing.
 *
 * Allocation path: 1. size > PTRDIFF_MAX -> NULL; 2. tc_malloc (thread-cache free-list pop).
 * Free path: tc_free (thread-cache push; a too-long list goes back to the central list).
 * thread_detach -> MallocExtension_MarkThreadIdle (returns this thread's cache),
 * collect -> MallocExtension_ReleaseFreeMemory (returns free page-heap spans to the OS),
 * stats -> MallocExtension_GetNumericProperty.
 * Invariants: lib loaded <=> every required tcm.* entry non-NULL; loaded once, never closed.
 */
#include "allocator.h"
#include "refalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define TCM_SONAME "libtcmalloc_minimal.so.4"

static struct tcm_lib {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*realloc)(void *, size_t);
    void *(*memalign)(size_t, size_t);
    size_t (*malloc_size)(void *);
    const char *(*version)(int *, int *, const char **);
    void (*mark_idle)(void);
    void (*release_free)(void);
    int (*get_prop)(const char *, size_t *);
} tcm;

static pthread_once_t tcm_once = PTHREAD_ONCE_INIT;
static int tcm_status = -1;
static char tcm_err[160];

static void tcm_load(void)
{
    const ref_sym syms[] = {
        {"tc_malloc", (void **)&tcm.malloc, 0},
        {"tc_free", (void **)&tcm.free, 0},
        {"tc_realloc", (void **)&tcm.realloc, 0},
        {"tc_memalign", (void **)&tcm.memalign, 0},
        {"tc_malloc_size", (void **)&tcm.malloc_size, 0},
        {"tc_version", (void **)&tcm.version, 0},
        {"MallocExtension_MarkThreadIdle", (void **)&tcm.mark_idle, 1},
        {"MallocExtension_ReleaseFreeMemory", (void **)&tcm.release_free, 1},
        {"MallocExtension_GetNumericProperty", (void **)&tcm.get_prop, 1},
    };
    tcm_status = ref_load(TCM_SONAME, syms, (int)(sizeof syms / sizeof syms[0]), tcm_err,
                          sizeof tcm_err);
}

/* Returns the token, or NULL with "not installed: libtcmalloc_minimal.so.4". */
static void *tcm_create(const char *options, char *err, size_t errlen)
{
    if (options && *options) {
        snprintf(err, errlen, "tcmalloc takes no options (got \"%s\"; use TCMALLOC_* env vars)",
                 options);
        return NULL;
    }
    pthread_once(&tcm_once, tcm_load);
    if (tcm_status != 0) {
        snprintf(err, errlen, "%s", tcm_err);
        return NULL;
    }
    return &tcm;
}

static void tcm_destroy(void *heap) { (void)heap; }

static void *tcm_alloc(void *heap, size_t size)
{
    (void)heap;
    if (__builtin_expect(size > PTRDIFF_MAX, 0)) return NULL;
    ref_tsan_begin();
    void *p = tcm.malloc(size);
    ref_tsan_end();
    return p;
}

static void tcm_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    ref_tsan_begin();
    tcm.free(p);
    ref_tsan_end();
}

static void *tcm_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    (void)heap;
    (void)old_size;
    if (new_size > PTRDIFF_MAX) return NULL;
    ref_tsan_begin();
    /* tc_realloc(p, 0) frees p and returns NULL; the contract wants a minimal block. */
    void *q = tcm.realloc(p, new_size ? new_size : 1);
    ref_tsan_end();
    return q;
}

static void *tcm_alloc_aligned(void *heap, size_t align, size_t size)
{
    (void)heap;
    if (size > PTRDIFF_MAX || align == 0 || (align & (align - 1))) return NULL;
    ref_tsan_begin();
    void *p = tcm.memalign(align, size);
    ref_tsan_end();
    return p;
}

static size_t tcm_usable_size(void *heap, const void *p)
{
    (void)heap;
    return tcm.malloc_size((void *)p);
}

static void tcm_thread_detach(void *heap)
{
    (void)heap;
    ref_tsan_begin();
    if (tcm.mark_idle) tcm.mark_idle();
    ref_tsan_end();
}

static void tcm_collect(void *heap)
{
    (void)heap;
    ref_tsan_begin();
    if (tcm.release_free) tcm.release_free();
    ref_tsan_end();
}

/* Fills what tcmalloc reports; a property it does not know stays absent. Returns 0. */
static int tcm_stats(void *heap, al_stats *out)
{
    (void)heap;
    memset(out, 0, sizeof *out);
    if (!tcm.get_prop) return 0;
    size_t v;
#define TCM_PROP(prop, field)                                  \
    if (tcm.get_prop(prop, &v)) {                              \
        out->field = v;                                        \
        out->present |= AL_STAT_BIT(field);                    \
    }
    TCM_PROP("generic.current_allocated_bytes", alloc_bytes)
    TCM_PROP("generic.heap_size", heap_sys)
    TCM_PROP("tcmalloc.pageheap_free_bytes", heap_idle)
    TCM_PROP("tcmalloc.pageheap_unmapped_bytes", heap_released)
#undef TCM_PROP
    return 0;
}

static const char *tcm_version(void)
{
    static char buf[64];
    pthread_once(&tcm_once, tcm_load);
    if (tcm_status != 0) return "tcmalloc (not installed)";
    int major = 0, minor = 0;
    const char *patch = "";
    tcm.version(&major, &minor, &patch);
    snprintf(buf, sizeof buf, "gperftools tcmalloc_minimal %d.%d%s", major, minor,
             patch ? patch : "");
    return buf;
}

const al_backend al_backend_tcmalloc = {
    .abi = AL_ABI_VERSION,
    .name = "tcmalloc",
    .desc = "gperftools TCMalloc (Debian libtcmalloc_minimal.so.4, dlopen'ed RTLD_LOCAL, tc_* API)",
    .caps = AL_CAP_THREAD_SAFE,
    .create = tcm_create,
    .destroy = tcm_destroy,
    .alloc = tcm_alloc,
    .free = tcm_free,
    .realloc = tcm_realloc,
    .alloc_aligned = tcm_alloc_aligned,
    .usable_size = tcm_usable_size,
    .thread_detach = tcm_thread_detach,
    .collect = tcm_collect,
    .stats = tcm_stats,
    .version = tcm_version,
};
