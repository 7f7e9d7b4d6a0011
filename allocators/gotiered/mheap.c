/* mheap.c - the page heap: 64 MiB arenas reserved with mmap (64 MiB aligned, header first, so
 * an object's span is found from its address alone), spans carved from them by the page
 * allocator (pagealloc.c), large objects as whole spans, and huge objects (more pages than an
 * arena holds) in an arena of their own that is unmapped when the object is freed.
 *
 * Go's allocSpan with a P (span_local): a span of fewer than 16 pages for a thread with a
 * cache takes its pages from the thread's page cache (Go's pageCache: one 64-page word of the
 * page bitmap, taken whole under the heap lock by gt_pages_take_word) and its span struct and
 * bitmap block from the thread's free lists (Go's P.mspancache), without the heap lock; only
 * a refill takes it, once per batch. Cached pages are in use for the page allocator and belong
 * to no span; gt_heap_flush_local gives pages, structs and bitmaps back (cache flush: collect,
 * thread exit, thread_detach). Freed spans go straight back to the page allocator (heap
 * lock), as in Go.
 *
 * Invariants (under the heap lock):
 *   pages_inuse == sum over normal-arena spans of npages + sum over caches of |pc.cache|
 *                  (+ |pc.pending| while a thread maps a span: 0 whenever it is not running);
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

/* Geometry of a small span of each span class, computed once (the divisions stay off the
 * span path): objects, bitmap words, bits_fix kind. */
static struct {
    uint16_t nelems, nwords;
    uint8_t bkind;
} spc_geom[GT_NSPC];
static pthread_once_t geom_once = PTHREAD_ONCE_INIT;

static void geom_init(void)
{
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        unsigned c = spc == GT_TINY_SPC ? 2 : spc;
        unsigned n = (unsigned)gt_class_npages[c] * (unsigned)GT_PAGE / gt_class_size[c];
        spc_geom[spc].nelems = (uint16_t)n;
        spc_geom[spc].nwords = (uint16_t)((n + 63) / 64);
        spc_geom[spc].bkind = (uint8_t)gt_bits_kind((n + 63) / 64);
    }
}

/* create(): the geometry table, once per process. Can't fail. */
void gt_heap_geom_init(void) { pthread_once(&geom_once, geom_init); }

/* Geometry and empty bitmaps (block `bits`, from bits_fix) for a small span; poisons its
 * objects. Can't fail. */
static void span_init_small(gt_span *s, unsigned spc, uint64_t *bits)
{
    unsigned c = spc == GT_TINY_SPC ? 2 : spc;
    s->elemsize = gt_class_size[c];
    s->divmul = gt_class_divmul[c];
    s->nelems = spc_geom[spc].nelems;
    s->nwords = spc_geom[spc].nwords;
    s->alloc_bits = bits;
    s->freed = (_Atomic uint64_t *)(bits + (1u << spc_geom[spc].bkind));
    for (unsigned w = 0; w < s->nwords; w++) { /* words past nwords are never read */
        s->alloc_bits[w] = 0;
        atomic_store_explicit(&s->freed[w], 0, memory_order_relaxed);
#ifdef GOTIERED_DEBUG
        atomic_store_explicit(&s->live[w], 0, memory_order_relaxed);
#endif
    }
    GT_POISON(s->base, (size_t)s->npages * GT_PAGE);
}

/* A span holding one object of elemsize bytes (a large object; a huge one: 0), in use: no
 * bitmaps, published as LARGE. Can't fail. */
static void span_set_large(gt_span *s, uint32_t elemsize)
{
    s->elemsize = elemsize;
    s->divmul = 0;
    s->nelems = 1;
    s->nwords = 1;
    s->alloc_count = 1;
    s->alloc_bits = NULL;
    s->freed = NULL;
    atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_LARGE), memory_order_release);
}

/* Fill in span s of npages at page i of arena a for span class spc (0 = large) with bitmap
 * block `bits` and tiny records tr (or NULL), map its pages, publish its state: CACHED
 * (small) or LARGE. Can't fail. */
static void span_setup(gt_span *s, gt_arena *a, size_t i, size_t npages, unsigned spc,
                       uint64_t *bits, gt_tinyblk *tr)
{
    s->base = (uintptr_t)a + i * GT_PAGE;
    s->next = s->prev = NULL;
    s->arena = a;
    s->tiny = tr;
    s->npages = (uint32_t)npages;
    s->spc = (uint8_t)spc;
    s->huge = 0;
    atomic_init(&s->filing, 0);
    s->alloc_count = 0;
    s->widx = 0;
    if (spc) {
        span_init_small(s, spc, bits);
        atomic_store_explicit(&s->st, GT_ST(spc, GT_SPAN_CACHED), memory_order_release);
    } else {
        GT_UNPOISON(s->base, npages * GT_PAGE);
        span_set_large(s, (uint32_t)(npages * GT_PAGE));
    }
    gt_span **m = &a->spans[i];
    for (size_t k = 0; k < npages; k++) m[k] = s;
}

/* The bits of n pages (1..64) from bit b of a page-cache word. Can't fail. */
static inline uint64_t pc_run(size_t n, unsigned b)
{
    return (n == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << n) - 1)) << b;
}

/* n free pages in a row from page cache pc: the index of the first page in the arena, or -1
 * when no run of n is cached (Go's pageCache.alloc with findBitRange64). Owner thread only.
 * Can't fail. */
static inline long pc_take(gt_pcache *pc, size_t n)
{
    uint64_t c = pc->cache, x = c;
    for (size_t k = 1; k < n; k++) x &= c >> k;
    if (!x) return -1;
    unsigned b = (unsigned)__builtin_ctzll(x);
    uint64_t run = pc_run(n, b);
    pc->pending = run; /* cleared (release) once the span maps the pages */
    __atomic_store_n(&pc->cache, c & ~run, __ATOMIC_RELEASE);
    return (long)pc->word * 64 + b;
}

/* Give pc's pages back to the page allocator. Under the heap lock. Can't fail. */
static void pc_flush_locked(gt_heap *h, gt_pcache *pc)
{
    if (!pc->arena) return;
    uint64_t c = __atomic_load_n(&pc->cache, __ATOMIC_RELAXED);
    gt_pages_put_word(pc->arena, pc->word, c, pc->scav);
    h->pages_inuse -= gt_popcount(c);
    h->pages_released += gt_popcount(c & pc->scav);
    pc->arena = NULL;
    pc->scav = 0;
    __atomic_store_n(&pc->cache, 0, __ATOMIC_RELAXED);
}

/* Refill pc with the free pages of the first 64-page group that has a run of npages (oldest
 * arena first, a new arena when none has), after giving back what pc still holds. Under the
 * heap lock. 0, or -1 when no arena can be mapped. */
static int pc_refill_locked(gt_heap *h, gt_pcache *pc, size_t npages)
{
    pc_flush_locked(h, pc);
    gt_arena *a;
    unsigned n = 0;
    for (a = h->arenas; a; a = a->next)
        if ((n = gt_pages_take_word(a, pc, npages))) break;
    if (!n) {
        if (!(a = arena_new(h)) || !(n = gt_pages_take_word(a, pc, npages))) return -1;
    }
    h->pages_inuse += n;
    h->pages_released -= gt_popcount(pc->scav);
    return 0;
}

/* Go's mheap.allocSpan with a P: pages from the thread's page cache, the span struct and its
 * bitmaps from the thread's span caches; the heap lock only to refill one of them (in
 * batches). A span of npages (< 16) for span class spc (not tiny), or NULL when a refill
 * fails (the caller then takes the locked path, which reports out of memory). */
static gt_span *span_local(gt_heap *h, gt_mcache *mc, size_t npages, unsigned spc)
{
    unsigned bk = spc ? spc_geom[spc].bkind : 0;
    long i = pc_take(&mc->pc, npages);
    if (gt_unlikely(i < 0 || !mc->sfree || (spc && !mc->bfree[bk]))) {
        pthread_mutex_lock(&h->lock);
        if (!mc->sfree) {
            while (mc->nsfree < mc->sbatch) {
                gt_span *s = gt_fix_alloc(&h->span_fix);
                if (!s) break;
                s->base = (uintptr_t)mc->sfree;
                mc->sfree = s;
                mc->nsfree++;
            }
            if (mc->sbatch < GT_SCACHE_N) mc->sbatch *= 2;
        }
        if (spc && !mc->bfree[bk]) {
            while (mc->nbfree[bk] < mc->bbatch[bk]) {
                void *b = gt_mfix_alloc(&h->bits_fix, bk);
                if (!b) break;
                *(void **)b = mc->bfree[bk];
                mc->bfree[bk] = b;
                mc->nbfree[bk]++;
            }
            if (mc->bbatch[bk] < GT_BCACHE_N) mc->bbatch[bk] *= 2;
        }
        if (i < 0 && pc_refill_locked(h, &mc->pc, npages) == 0) i = pc_take(&mc->pc, npages);
        pthread_mutex_unlock(&h->lock);
        if (i < 0 || !mc->sfree || (spc && !mc->bfree[bk])) {
            if (i >= 0) { /* give the run back to the cache */
                uint64_t run = pc_run(npages, (unsigned)(i & 63));
                __atomic_store_n(&mc->pc.cache, mc->pc.cache | run, __ATOMIC_RELAXED);
                __atomic_store_n(&mc->pc.pending, 0, __ATOMIC_RELEASE);
            }
            return NULL;
        }
    }
    gt_span *s = mc->sfree;
    mc->sfree = (gt_span *)s->base;
    mc->nsfree--;
    uint64_t *bits = NULL;
    if (spc) {
        bits = mc->bfree[bk];
        mc->bfree[bk] = *(void **)bits;
        mc->nbfree[bk]--;
    } else {
        GT_STAT_INC(mc->nmalloc, 1);
        GT_STAT_INC(mc->bytes_alloc, npages * GT_PAGE);
    }
    span_setup(s, mc->pc.arena, (size_t)i, npages, spc, bits, NULL);
    __atomic_store_n(&mc->pc.pending, 0, __ATOMIC_RELEASE); /* after the page map stores */
    GT_EVENT(h, spans_grown, 1);
    return s;
}

/* Give mc's page cache, span structs and bitmap blocks back (thread exit, collect, detach).
 * Takes the heap lock. Can't fail. */
void gt_heap_flush_local(gt_heap *h, gt_mcache *mc)
{
    if (!mc->pc.arena && !mc->sfree) {
        unsigned k = 0;
        while (k < GT_BITS_KINDS && !mc->bfree[k]) k++;
        if (k == GT_BITS_KINDS) return;
    }
    pthread_mutex_lock(&h->lock);
    pc_flush_locked(h, &mc->pc);
    while (mc->sfree) {
        gt_span *s = mc->sfree;
        mc->sfree = (gt_span *)s->base;
        gt_fix_free(&h->span_fix, s);
    }
    mc->nsfree = 0;
    for (unsigned k = 0; k < GT_BITS_KINDS; k++) {
        while (mc->bfree[k]) {
            void *b = mc->bfree[k];
            mc->bfree[k] = *(void **)b;
            gt_mfix_free(&h->bits_fix, k, b);
        }
        mc->nbfree[k] = 0;
    }
    gt_scav_wake(h);
    pthread_mutex_unlock(&h->lock);
}

/* A span of npages for span class spc (0 = large), state CACHED (small) or LARGE, or NULL
 * when out of memory (nothing changed). Spans of fewer than 16 pages for a thread with a cache
 * mc come from span_local without the heap lock; otherwise (and when a refill fails) the heap
 * lock is taken and the page allocator searched. */
gt_span *gt_heap_alloc_span(gt_heap *h, size_t npages, unsigned spc, gt_mcache *mc)
{
    if (mc && npages <= GT_PCACHE_MAXPG && spc != GT_TINY_SPC) {
        gt_span *s = span_local(h, mc, npages, spc);
        if (s) return s;
    }
    pthread_mutex_lock(&h->lock);
    gt_span *s = gt_fix_alloc(&h->span_fix);
    gt_tinyblk *tr = NULL;
    uint64_t *bits = NULL;
    unsigned bk = spc ? spc_geom[spc].bkind : 0;
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
    span_setup(s, a, (size_t)i, npages, spc, bits, tr);
    if (!spc) {
        h->r_nmalloc++;
        h->r_bytes_alloc += npages * GT_PAGE;
    }
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
 * from mc's page cache when mc is not NULL and it is small enough (counted in mc), or NULL
 * when out of memory or too big. Can't fail otherwise. */
void *gt_large_alloc(gt_heap *h, size_t size, size_t align, gt_mcache *mc)
{
    if (size > GT_MAX_REQUEST || align > GT_ARENA_BYTES / 2) return NULL;
    if (align < GT_PAGE) align = GT_PAGE;
    size_t npages = (size + GT_PAGE - 1) >> GT_PAGE_SHIFT;
    if (!npages) npages = 1;
    size_t extra = align / GT_PAGE - 1;
    if (npages + extra <= GT_ARENA_PAGES - GT_HDR_PAGES) {
        gt_span *s = gt_heap_alloc_span(h, npages + extra, 0, mc);
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
    s->widx = 0;
    span_set_large(s, 0);
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
