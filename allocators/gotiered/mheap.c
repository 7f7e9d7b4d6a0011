/* mheap.c - the page heap: 64 MiB arenas reserved with mmap (64 MiB aligned, header first, so
 * an object's span is found from its address alone), spans carved from them by the page
 * allocator (pagealloc.c), large objects as whole spans, and huge objects (more pages than an
 * arena holds) in an arena of their own that is unmapped when the object is freed.
 *
 * Invariants (under the heap lock):
 *   pages_inuse == sum over normal-arena spans of npages;
 *   pages_total == sum over normal arenas of (8192 - header pages);
 *   pages_total - pages_inuse == sum of arena free_pages;   pages_released == popcount(scav);
 *   spans[p] == s  <=>  page p lies in span s (huge arenas: only the object's first page).
 */
#include "gotiered_internal.h"

#include <sys/mman.h>

/* A mapping of `bytes` whose start is 64 MiB aligned, or NULL. Can't fail otherwise. */
static void *map_aligned(size_t bytes)
{
    if (bytes > SIZE_MAX - GT_ARENA_BYTES) return NULL;
    size_t len = bytes + GT_ARENA_BYTES;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)m + GT_ARENA_BYTES - 1) & ~(GT_ARENA_BYTES - 1);
    size_t head = start - (uintptr_t)m, tail = len - head - bytes;
    if (head) munmap(m, head);
    if (tail) munmap((char *)start + bytes, tail);
    return (void *)start;
}

/* Unpoison (ASan) and unmap an arena. Can't fail. */
static void unmap_arena(gt_arena *a)
{
    size_t n = a->map_bytes;
    GT_UNPOISON(a, n);
    munmap(a, n);
}

/* A new normal arena appended to the arena list, or NULL. Under the heap lock. */
static gt_arena *arena_new(gt_heap *h)
{
    gt_arena *a = map_aligned(GT_ARENA_BYTES);
    if (!a) return NULL;
    a->heap = h;
    a->map_bytes = GT_ARENA_BYTES;
    a->first_page = (uint32_t)GT_HDR_PAGES;
    a->huge = 0;
    gt_pages_init(a);
    /* Appended: the search goes oldest arena first. Go gets the same order from address
     * order because it asks for arenas at ascending hint addresses; plain mmap hands out
     * descending ones, and address order would then prefer the newest arena and leave the
     * holes of the older ones unused (2x RSS under churn). */
    gt_arena **pp = &h->arenas;
    while (*pp) pp = &(*pp)->next;
    a->next = NULL;
    *pp = a;
    h->pages_total += GT_ARENA_PAGES - GT_HDR_PAGES;
    h->pages_released += GT_ARENA_PAGES - GT_HDR_PAGES; /* fresh: never touched */
    h->arena_bytes += GT_ARENA_BYTES;
    return a;
}

/* create(): map the first arena up front (Go's heap is set up by the runtime before main):
 * the mapping and its header are the heap's fixed cost, paid once at create rather than by
 * the first allocation. 0, or -1 when mmap fails (nothing changed). */
int gt_heap_first_arena(gt_heap *h)
{
    pthread_mutex_lock(&h->lock);
    int rc = h->arenas || arena_new(h) ? 0 : -1;
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* Bitmap words of a small span of class spc. Can't fail. */
static unsigned span_nwords(unsigned spc)
{
    unsigned c = spc == GT_TINY_SPC ? 2 : spc;
    return ((unsigned)gt_class_npages[c] * (unsigned)GT_PAGE / gt_class_size[c] + 63u) / 64u;
}

/* Geometry and empty bitmaps (block `bits`, from bits_fix) for a small span; poisons its
 * objects. Can't fail. */
static void span_init_small(gt_span *s, unsigned spc, uint64_t *bits)
{
    unsigned c = spc == GT_TINY_SPC ? 2 : spc;
    s->elemsize = gt_class_size[c];
    s->divmul = gt_class_divmul[c];
    s->nelems = (uint16_t)(s->npages * GT_PAGE / s->elemsize);
    s->nwords = (uint16_t)((s->nelems + 63) / 64);
    s->alloc_bits = bits;
    s->freed = (_Atomic uint64_t *)(bits + (1u << gt_bits_kind(s->nwords)));
    for (unsigned w = 0; w < s->nwords; w++) { /* words past nwords are never read */
        s->alloc_bits[w] = 0;
        atomic_store_explicit(&s->freed[w], 0, memory_order_relaxed);
#ifdef GOTIERED_DEBUG
        atomic_store_explicit(&s->live[w], 0, memory_order_relaxed);
#endif
    }
    GT_POISON(s->base, (size_t)s->npages * GT_PAGE);
}

/* A span of npages for span class spc (0 = large), state CACHED (small) or LARGE, or NULL
 * when out of memory (nothing changed). Takes the heap lock. */
gt_span *gt_heap_alloc_span(gt_heap *h, size_t npages, unsigned spc)
{
    pthread_mutex_lock(&h->lock);
    gt_span *s = gt_fix_alloc(&h->span_fix);
    gt_tinyblk *tr = NULL;
    uint64_t *bits = NULL;
    unsigned bk = spc ? gt_bits_kind(span_nwords(spc)) : 0;
    if (s && spc && !(bits = gt_mfix_alloc(&h->bits_fix, bk))) {
        gt_fix_free(&h->span_fix, s);
        s = NULL;
    }
    if (s && spc == GT_TINY_SPC) {
        tr = gt_fix_alloc(&h->tiny_fix);
        if (!tr) {
            gt_mfix_free(&h->bits_fix, bk, bits);
            gt_fix_free(&h->span_fix, s);
            s = NULL;
        }
    }
    if (!s) goto oom;
    long i = -1;
    gt_arena *a;
    for (a = h->arenas; a; a = a->next)
        if ((i = gt_pages_find(a, npages)) >= 0) break;
    if (i < 0) {
        a = arena_new(h);
        if (!a || (i = gt_pages_find(a, npages)) < 0) {
            if (tr) gt_fix_free(&h->tiny_fix, tr);
            if (bits) gt_mfix_free(&h->bits_fix, bk, bits);
            gt_fix_free(&h->span_fix, s);
            goto oom;
        }
    }
    h->pages_released -= gt_pages_take(a, (size_t)i, npages);
    h->pages_inuse += npages;
    s->base = (uintptr_t)a + (size_t)i * GT_PAGE;
    s->next = s->prev = NULL;
    s->arena = a;
    s->tiny = tr;
    s->npages = (uint32_t)npages;
    s->spc = (uint8_t)spc;
    s->huge = 0;
    s->alloc_count = 0;
    s->widx = 0;
    if (spc) {
        span_init_small(s, spc, bits);
        atomic_store_explicit(&s->st, GT_ST(spc, GT_SPAN_CACHED), memory_order_release);
    } else {
        s->elemsize = (uint32_t)(npages * GT_PAGE);
        s->divmul = 0;
        s->nelems = 1;
        s->nwords = 1;
        s->alloc_count = 1;
        s->alloc_bits = NULL;
        s->freed = NULL;
        GT_UNPOISON(s->base, npages * GT_PAGE);
        atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_LARGE), memory_order_release);
        h->r_nmalloc++;
        h->r_bytes_alloc += npages * GT_PAGE;
    }
    for (size_t k = 0; k < npages; k++) a->spans[(size_t)i + k] = s;
    GT_EVENT(h, spans_grown, 1);
    pthread_mutex_unlock(&h->lock);
    return s;
oom:
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static void free_span_locked(gt_heap *h, gt_span *s);

/* Give s's pages back to its arena (they merge with free neighbours). Takes the heap lock. */
void gt_heap_free_span(gt_heap *h, gt_span *s)
{
    pthread_mutex_lock(&h->lock);
    free_span_locked(h, s);
    pthread_mutex_unlock(&h->lock);
}

/* gt_heap_free_span with the heap lock held. Can't fail. */
static void free_span_locked(gt_heap *h, gt_span *s)
{
    gt_arena *a = s->arena;
    size_t i = (s->base - (uintptr_t)a) >> GT_PAGE_SHIFT;
    for (size_t k = 0; k < s->npages; k++) a->spans[i + k] = NULL;
    gt_pages_put(a, i, s->npages);
    h->pages_inuse -= s->npages;
    GT_POISON(s->base, (size_t)s->npages * GT_PAGE);
    if (s->tiny) gt_fix_free(&h->tiny_fix, s->tiny);
    s->tiny = NULL;
    if (s->alloc_bits) gt_mfix_free(&h->bits_fix, gt_bits_kind(s->nwords), s->alloc_bits);
    s->alloc_bits = NULL;
    s->freed = NULL;
    atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_FREE), memory_order_release);
    gt_fix_free(&h->span_fix, s);
    gt_scav_wake(h);
}

/* A large object of `size` bytes aligned to `align` (0 or a power of two; at least a page),
 * or NULL when out of memory or too big. Can't fail otherwise. */
void *gt_large_alloc(gt_heap *h, size_t size, size_t align)
{
    if (size > GT_MAX_REQUEST || align > GT_ARENA_BYTES / 2) return NULL;
    if (align < GT_PAGE) align = GT_PAGE;
    size_t npages = (size + GT_PAGE - 1) >> GT_PAGE_SHIFT;
    if (!npages) npages = 1;
    size_t extra = align / GT_PAGE - 1;
    if (npages + extra <= GT_ARENA_PAGES - GT_HDR_PAGES) {
        gt_span *s = gt_heap_alloc_span(h, npages + extra, 0);
        if (!s) return NULL;
        return (void *)((s->base + align - 1) & ~(uintptr_t)(align - 1));
    }
    /* huge: an arena of its own */
    size_t bytes = GT_HDR_PAGES * GT_PAGE + extra * GT_PAGE + npages * GT_PAGE;
    pthread_mutex_lock(&h->lock);
    gt_span *s = gt_fix_alloc(&h->span_fix);
    gt_arena *a = s ? map_aligned(bytes) : NULL;
    if (!a) {
        if (s) gt_fix_free(&h->span_fix, s);
        pthread_mutex_unlock(&h->lock);
        return NULL;
    }
    a->heap = h;
    a->map_bytes = bytes;
    a->first_page = (uint32_t)GT_HDR_PAGES;
    a->huge = 1;
    a->next = h->huge;
    h->huge = a;
    uintptr_t p = ((uintptr_t)a + GT_HDR_PAGES * GT_PAGE + align - 1) & ~(uintptr_t)(align - 1);
    s->base = (uintptr_t)a + GT_HDR_PAGES * GT_PAGE;
    s->next = s->prev = NULL;
    s->arena = a;
    s->tiny = NULL;
    s->npages = (uint32_t)(npages + extra);
    s->spc = 0;
    s->huge = 1;
    s->elemsize = 0;
    s->divmul = 0;
    s->nelems = 1;
    s->nwords = 1;
    s->alloc_count = 1;
    s->widx = 0;
    s->alloc_bits = NULL;
    s->freed = NULL;
    atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_LARGE), memory_order_release);
    a->spans[(p - (uintptr_t)a) >> GT_PAGE_SHIFT] = s;
    h->huge_bytes += (npages + extra) * GT_PAGE;
    h->arena_bytes += bytes;
    h->r_nmalloc++;
    h->r_bytes_alloc += (npages + extra) * GT_PAGE;
    GT_EVENT(h, spans_grown, 1);
    pthread_mutex_unlock(&h->lock);
    return (void *)p;
}

/* Free a large object's span: a huge arena is unmapped at once. Can't fail. */
void gt_large_free(gt_heap *h, gt_span *s)
{
    if (!s->huge) {
        pthread_mutex_lock(&h->lock);
        h->r_nfree++;
        h->r_bytes_freed += (uint64_t)s->npages * GT_PAGE;
        free_span_locked(h, s);
        pthread_mutex_unlock(&h->lock);
        return;
    }
    pthread_mutex_lock(&h->lock);
    gt_arena *a = s->arena, **pp = &h->huge;
    while (*pp != a) pp = &(*pp)->next;
    *pp = a->next;
    h->huge_bytes -= (uint64_t)s->npages * GT_PAGE;
    h->arena_bytes -= a->map_bytes;
    h->r_nfree++;
    h->r_bytes_freed += (uint64_t)s->npages * GT_PAGE;
    atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_FREE), memory_order_release);
    gt_fix_free(&h->span_fix, s);
    pthread_mutex_unlock(&h->lock);
    unmap_arena(a);
}

/* Unmap every arena and metadata chunk (destroy). Can't fail. */
void gt_heap_unmap_all(gt_heap *h)
{
    for (gt_arena *a = h->arenas, *n; a; a = n) {
        n = a->next;
        unmap_arena(a);
    }
    for (gt_arena *a = h->huge, *n; a; a = n) {
        n = a->next;
        unmap_arena(a);
    }
    h->arenas = h->huge = NULL;
    gt_fix_destroy(&h->span_fix);
    gt_fix_destroy(&h->cache_fix);
    gt_fix_destroy(&h->tiny_fix);
    gt_fix_destroy(&h->bits_fix.f);
}
