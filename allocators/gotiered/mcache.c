/* mcache.c - the per-thread cache (Go's mcache, one per P; here one per thread and heap).
 *
 * Each slot (one per span class) holds a span and a copy of 64 bits of its free bitmap
 * (Go's allocCache): the fast path (gotiered_internal.h, gt_mcache_alloc) is ctz + clear
 * lowest bit + multiply-add, no lock, no atomic. When the word runs out the slow path here
 * loads the next word; when the span runs out it first sweeps the span itself (the cache owns
 * it: frees that landed on it are reclaimed without any lock) and keeps it if at least a quarter
 * came back, else returns it to mcentral and takes another (gt_central_cache_span).
 *
 * Which cache: a thread keeps up to GT_TLS_N (heap, id, epoch, cache) entries in TLS, and the
 * last used one in gt_tls (one compare on the fast path: gt_tls.gen == heap epoch). Heaps get
 * a unique id and epochs from the process registry's counter, so an entry of a destroyed heap
 * never matches a new heap at the same address, and an entry whose epoch is older than the
 * heap's (a collect happened since) fails the fast compare: the slow path finds it by
 * (heap, id), flushes the cache, then adopts the new epoch. A thread's caches are flushed back
 * when the thread exits (pthread key destructor), on thread_detach, and at its first call
 * after a collect; entries of heaps that died are dropped without being touched (the registry,
 * under its lock, says which heaps are alive).
 * The cache also keeps freed large spans of up to 16 pages (lfree, 1 MiB at most), a page
 * cache and spare span structs and bitmap blocks (mheap.c, span_local), all given back with
 * the rest on flush. A span that runs out is handed back without a central lock when it is
 * full (state FULL, in no list) or empty (to the mheap); see mcentral.c.
 *
 * Invariants: slot.span == &gt_empty_span  =>  slot.cache == 0;
 *   for a cached span s: objects handed out by this cache from s = popcount(mask(w) & ~cache)
 *   for w == widx, all objects of words < widx, and alloc_bits for words > widx.
 */
#include "gotiered_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define GT_TLS_N 8

gt_span gt_empty_span; /* nelems 0: a slot with it always takes the slow path */
__thread gt_tls_fast gt_tls __attribute__((tls_model(GT_TLS_MODEL)));
static __thread gt_tls_fast tls_tab[GT_TLS_N];

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static gt_heap *reg_heaps;
static uint64_t reg_gen;
static pthread_key_t tls_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void make_key(void);

/* Register h and give it a fresh generation; makes the thread-exit key on first use. Can't
 * fail (without the key, thread-exit flushes are skipped). */
void gt_registry_add(gt_heap *h)
{
    pthread_once(&key_once, make_key);
    pthread_mutex_lock(&reg_lock);
    h->id = ++reg_gen;
    atomic_store_explicit(&h->gen, h->id, memory_order_relaxed);
    h->reg_next = reg_heaps;
    reg_heaps = h;
    pthread_mutex_unlock(&reg_lock);
}

/* After this no thread-exit flush touches h. Can't fail. */
void gt_registry_remove(gt_heap *h)
{
    pthread_mutex_lock(&reg_lock);
    gt_heap **pp = &reg_heaps;
    while (*pp && *pp != h) pp = &(*pp)->reg_next;
    if (*pp) *pp = h->reg_next;
    pthread_mutex_unlock(&reg_lock);
}

/* Fork (gotiered_atfork): the registry lock is process-wide, so with several heaps only the
 * first PREPARE takes it and the last PARENT releases it; the child re-initialises it. */
static _Atomic int reg_fork_depth;

/* Can't fail. */
void gt_registry_atfork(int phase)
{
    if (phase == AL_FORK_PREPARE) {
        if (atomic_fetch_add(&reg_fork_depth, 1) == 0) pthread_mutex_lock(&reg_lock);
    } else if (phase == AL_FORK_PARENT) {
        if (atomic_fetch_sub(&reg_fork_depth, 1) == 1) pthread_mutex_unlock(&reg_lock);
    } else if (atomic_exchange(&reg_fork_depth, 0) != 0) {
        pthread_mutex_init(&reg_lock, NULL);
    }
}

/* Is (h, id) a live heap? Under reg_lock. Can't fail. */
static int reg_live(gt_heap *h, uint64_t id)
{
    for (gt_heap *x = reg_heaps; x; x = x->reg_next)
        if (x == h) return x->id == id;
    return 0;
}

/* Empty slot: dummy span, no cache bits, empty reuse list. Can't fail. */
static void slot_reset(gt_slot *sl, unsigned spc)
{
    sl->cache = 0;
    sl->wbase = 0;
    sl->reuse = NULL;
    sl->span = &gt_empty_span;
    sl->elemsize = spc == GT_TINY_SPC ? GT_TINY_SIZE : spc < GT_NCLASS ? gt_class_size[spc] : 0;
    /* reuse list cap: 64 KiB of objects, at least 2 */
    sl->reuse_cap = sl->elemsize && (64u << 10) / sl->elemsize > 2 ? (64u << 10) / sl->elemsize : 2;
    sl->room = sl->reuse_cap + 1;
}

/* Record in alloc_bits what the cache handed out of its span. Can't fail. */
static void fold_cache(gt_slot *sl)
{
    gt_span *s = sl->span;
    unsigned n = 0;
    for (unsigned w = 0; w < s->nwords; w++) {
        if (w < s->widx) s->alloc_bits[w] = gt_word_mask(s, w);
        else if (w == s->widx) s->alloc_bits[w] = ~sl->cache & gt_word_mask(s, w);
        n += gt_popcount(s->alloc_bits[w]);
    }
    s->alloc_count = (uint16_t)n;
    sl->cache = 0;
}

/* Point the slot at the first word of s with a free object; 0 if there is none. */
static int load_span(gt_slot *sl, gt_span *s)
{
    sl->span = s;
    sl->elemsize = s->elemsize;
    for (unsigned w = 0; w < s->nwords; w++) {
        uint64_t c = ~s->alloc_bits[w] & gt_word_mask(s, w);
        if (c) {
            s->widx = (uint16_t)w;
            sl->cache = c;
            sl->wbase = s->base + (uintptr_t)w * 64u * s->elemsize;
            return 1;
        }
    }
    s->widx = s->nwords;
    sl->cache = 0;
    return 0;
}

void gt_free_to_span(gt_heap *h, gt_span *s, uintptr_t p) { gt_bits_free(h, s, p); }

static void *refill(gt_mcache *mc, unsigned spc);

/* Slow path of gt_mcache_alloc: next bitmap word, own sweep, or a span from mcentral.
 * NULL when out of memory. */
GT_NOINLINE void *gt_mcache_alloc_slow(gt_mcache *mc, unsigned spc, int counted)
{
    void *p = refill(mc, spc ? spc : 1); /* size 0: the smallest class */
    if (p && counted) {
        GT_STAT_INC(mc->nmalloc, 1);
        GT_STAT_INC(mc->bytes_alloc, mc->slot[spc ? spc : 1].elemsize);
    }
    gt_scav_kick(mc->heap); /* last: the slot is consistent if pthread_create allocates */
    return p;
}

/* Next word, own sweep, or a span from mcentral, then one object. NULL: out of memory. */
static void *refill(gt_mcache *mc, unsigned spc)
{
    gt_heap *h = mc->heap;
    gt_slot *sl = &mc->slot[spc];
    gt_span *s = sl->span;
    if (s != &gt_empty_span) {
        for (unsigned w = s->widx + 1u; w < s->nwords; w++) {
            uint64_t c = ~s->alloc_bits[w] & gt_word_mask(s, w);
            if (c) {
                s->widx = (uint16_t)w;
                sl->cache = c;
                sl->wbase = s->base + (uintptr_t)w * 64u * s->elemsize;
                return gt_mcache_alloc(mc, spc);
            }
        }
        /* exhausted: every object went out through this cache or was allocated before
         * (fold_cache without the popcounts) */
        s->widx = s->nwords;
        for (unsigned w = 0; w < s->nwords; w++) s->alloc_bits[w] = gt_word_mask(s, w);
        s->alloc_count = s->nelems;
        sl->cache = 0;
        gt_span_sweep(h, s);
        unsigned nfree = s->nelems - s->alloc_count;
        if (nfree && nfree >= s->nelems / 4u && load_span(sl, s)) return gt_mcache_alloc(mc, spc);
        /* first: never a slot pointing at a span it gave back (the reuse list is empty:
         * allocation pops it before it comes here) */
        sl->span = &gt_empty_span;
        gt_central_uncache_span(h, s, 1);
    }
    s = gt_central_cache_span(h, spc, mc);
    if (!s) return NULL;
    if (!load_span(sl, s)) { /* cannot happen: cache_span returns spans with room */
        slot_reset(sl, spc); /* first: never a slot pointing at a span it gave back */
        gt_central_uncache_span(h, s, 0);
        return NULL;
    }
    return gt_mcache_alloc(mc, spc);
}

/* Give back half of a reuse list that grew past its cap (free=reuse). Can't fail. */
GT_NOINLINE void gt_reuse_trim(gt_mcache *mc, unsigned spc)
{
    gt_slot *sl = &mc->slot[spc];
    unsigned n = (sl->reuse_cap + 1 - sl->room) / 2;
    while (n--) {
        void *p = sl->reuse;
        GT_UNPOISON(p, sizeof(void *));
        sl->reuse = *(void **)p;
        sl->room++;
        gt_bits_free(mc->heap, gt_span_of(p), (uintptr_t)p);
    }
}

/* Large object of `size` (> 32 KiB, no alignment beyond a page): a cached span of the same
 * page count from the calling thread's cache, else the mheap (through the thread's page
 * cache below 16 pages). NULL when out of memory or when
 * size is too big. */
void *gt_mcache_large_alloc(gt_heap *h, size_t size)
{
    gt_mcache *mc = gt_mcache_get(h);
    if (mc && size <= GT_LCACHE_MAXPG * GT_PAGE) {
        size_t npages = (size + GT_PAGE - 1) >> GT_PAGE_SHIFT;
        gt_span *s = mc->lfree[npages];
        if (s) {
            mc->lfree[npages] = s->next;
            mc->lpages -= (uint32_t)npages;
            s->next = NULL;
            GT_UNPOISON(s->base, npages * GT_PAGE);
            atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_LARGE), memory_order_relaxed);
            GT_STAT_INC(mc->nmalloc, 1);
            GT_STAT_INC(mc->bytes_alloc, npages * GT_PAGE);
            return (void *)s->base;
        }
    }
    void *p = gt_large_alloc(h, size, 0, mc);
    gt_scav_kick(h);
    return p;
}

/* Keep the freed large span s (not huge) in the calling thread's cache if it has one, s is
 * small enough and the cache has room; returns 1 if kept (counted as freed), else 0. */
int gt_mcache_large_free(gt_heap *h, gt_span *s)
{
    size_t n = s->npages;
    if (s->huge || n > GT_LCACHE_MAXPG) return 0;
    gt_mcache *mc = gt_mcache_get(h);
    if (!mc || mc->lpages + n > GT_LCACHE_PAGES) return 0;
    atomic_store_explicit(&s->st, GT_ST(0, GT_SPAN_CACHED), memory_order_relaxed);
    GT_POISON(s->base, n * GT_PAGE);
    s->next = mc->lfree[n];
    mc->lfree[n] = s;
    mc->lpages += (uint32_t)n;
    GT_STAT_INC(mc->nfree, 1);
    GT_STAT_INC(mc->bytes_freed, n * GT_PAGE);
    return 1;
}

/* Return every span, reuse list and the tiny block to the shared heap; mc stays usable.
 * Can't fail. */
void gt_mcache_flush(gt_mcache *mc)
{
    gt_heap *h = mc->heap;
    gt_tiny_release(mc);
    for (unsigned n = 1; n <= GT_LCACHE_MAXPG; n++) {
        while (mc->lfree[n]) {
            gt_span *s = mc->lfree[n];
            mc->lfree[n] = s->next;
            s->next = NULL;
            gt_heap_free_span(h, s);
        }
    }
    mc->lpages = 0;
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        gt_slot *sl = &mc->slot[spc];
        while (sl->reuse) {
            void *p = sl->reuse;
            GT_UNPOISON(p, sizeof(void *));
            sl->reuse = *(void **)p;
            gt_bits_free(h, gt_span_of(p), (uintptr_t)p);
        }
        sl->room = sl->reuse_cap + 1;
    }
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        gt_slot *sl = &mc->slot[spc];
        if (sl->span == &gt_empty_span) continue;
        gt_span *s = sl->span;
        fold_cache(sl);
        slot_reset(sl, spc); /* first: never a slot pointing at a span it gave back */
        gt_central_uncache_span(h, s, 0);
    }
    gt_heap_flush_local(h, mc); /* page cache, span structs, bitmaps */
}

/* mc's statistics: its own counters plus every slot's counts times the class size. Any
 * thread; the owner may be counting meanwhile (each counter is read once). Can't fail. */
gt_counts gt_mcache_counts(gt_mcache *mc)
{
    gt_counts c = {0, 0, 0, 0};
#if GOTIERED_STATS
    c.nmalloc = atomic_load_explicit(&mc->nmalloc, memory_order_relaxed) + GT_COUNT_READ(mc->ntiny);
    c.nfree = atomic_load_explicit(&mc->nfree, memory_order_relaxed) + GT_COUNT_READ(mc->ntiny_free);
    c.bytes_alloc = atomic_load_explicit(&mc->bytes_alloc, memory_order_relaxed);
    c.bytes_freed = atomic_load_explicit(&mc->bytes_freed, memory_order_relaxed);
    for (unsigned spc = 1; spc < GT_NCLASS; spc++) {
        uint64_t na = GT_COUNT_READ(mc->slot[spc].nalloc), nf = GT_COUNT_READ(mc->slot[spc].nfree);
        c.nmalloc += na;
        c.nfree += nf;
        c.bytes_alloc += na * gt_class_size[spc];
        c.bytes_freed += nf * gt_class_size[spc];
    }
#else
    (void)mc;
#endif
    return c;
}

/* A fresh cache linked into h's list, or NULL when out of memory. */
static gt_mcache *mcache_new(gt_heap *h)
{
    pthread_mutex_lock(&h->lock);
    gt_mcache *mc = gt_fix_alloc(&h->cache_fix);
    if (mc) {
        for (unsigned spc = 0; spc < GT_NSPC; spc++) {
            slot_reset(&mc->slot[spc], spc);
            mc->slot[spc].nalloc = mc->slot[spc].nfree = 0;
        }
        mc->ntiny = mc->ntiny_free = 0;
        for (unsigned n = 0; n <= GT_LCACHE_MAXPG; n++) mc->lfree[n] = NULL;
        mc->lpages = 0;
        mc->pc = (gt_pcache){0};
        mc->sfree = NULL;
        mc->nsfree = 0;
        mc->sbatch = 1;
        for (unsigned k = 0; k < GT_BITS_KINDS; k++) {
            mc->bfree[k] = NULL;
            mc->nbfree[k] = 0;
            mc->bbatch[k] = 1;
        }
        mc->tiny_lim = h->tiny_lim;
        mc->free_reuse = h->free_reuse;
        mc->tiny_blk = 0;
        mc->tiny_off = GT_TINY_SIZE;
        mc->tiny_n = 0;
        mc->tiny_local = 0;
        mc->tiny_rec = NULL;
        mc->heap = h;
        atomic_init(&mc->nmalloc, 0);
        atomic_init(&mc->nfree, 0);
        atomic_init(&mc->bytes_alloc, 0);
        atomic_init(&mc->bytes_freed, 0);
        mc->prev = NULL;
        mc->next = h->caches;
        if (h->caches) h->caches->prev = mc;
        h->caches = mc;
    }
    pthread_mutex_unlock(&h->lock);
    return mc;
}

/* Flush mc and free it; its counters move to the heap's retired totals. Can't fail. */
static void mcache_release(gt_heap *h, gt_mcache *mc)
{
    gt_mcache_flush(mc);
    pthread_mutex_lock(&h->lock);
    if (mc->prev) mc->prev->next = mc->next;
    else h->caches = mc->next;
    if (mc->next) mc->next->prev = mc->prev;
    gt_counts c = gt_mcache_counts(mc);
    h->r_nmalloc += c.nmalloc;
    h->r_nfree += c.nfree;
    h->r_bytes_alloc += c.bytes_alloc;
    h->r_bytes_freed += c.bytes_freed;
    gt_fix_free(&h->cache_fix, mc);
    pthread_mutex_unlock(&h->lock);
}

/* Forget TLS entry i (and the fast entry if it is the same). Can't fail. */
static void tls_clear(int i)
{
    if (gt_tls.mc == tls_tab[i].mc) gt_tls = (gt_tls_fast){0};
    tls_tab[i] = (gt_tls_fast){0};
}

/* Release entry i if its heap is still alive. Can't fail. */
static void tls_flush_entry(int i)
{
    pthread_mutex_lock(&reg_lock);
    if (reg_live(tls_tab[i].heap, tls_tab[i].id)) mcache_release(tls_tab[i].heap, tls_tab[i].mc);
    pthread_mutex_unlock(&reg_lock);
    tls_clear(i);
}

/* pthread key destructor: flush this thread's caches of heaps still alive. Can't fail. */
static void tls_destructor(void *arg)
{
    (void)arg;
    for (int i = 0; i < GT_TLS_N; i++)
        if (tls_tab[i].heap) tls_flush_entry(i);
}

static void make_key(void) { key_ok = pthread_key_create(&tls_key, tls_destructor) == 0; }

/* The calling thread's cache for h, made on first use; NULL when out of memory. */
GT_NOINLINE gt_mcache *gt_mcache_get_slow(gt_heap *h)
{
    for (int i = 0; i < GT_TLS_N; i++) {
        if (tls_tab[i].heap == h && tls_tab[i].id == h->id) {
            uint64_t epoch = gt_heap_epoch(h);
            if (tls_tab[i].gen != epoch) { /* a collect() since: honour it first */
                tls_tab[i].gen = epoch;
                gt_mcache_flush(tls_tab[i].mc);
            }
            gt_tls = tls_tab[i];
            return gt_tls.mc;
        }
    }
    pthread_once(&key_once, make_key);
    if (key_ok && !pthread_getspecific(tls_key)) pthread_setspecific(tls_key, (void *)1);
    int slot = -1;
    for (int i = 0; i < GT_TLS_N && slot < 0; i++)
        if (!tls_tab[i].heap) slot = i;
    if (slot < 0) { /* drop entries of dead heaps, else evict (flush) entry 0 */
        pthread_mutex_lock(&reg_lock);
        for (int i = 0; i < GT_TLS_N; i++)
            if (!reg_live(tls_tab[i].heap, tls_tab[i].id)) tls_clear(i);
        pthread_mutex_unlock(&reg_lock);
        for (int i = 0; i < GT_TLS_N && slot < 0; i++)
            if (!tls_tab[i].heap) slot = i;
        if (slot < 0) {
            tls_flush_entry(0);
            slot = 0;
        }
    }
    gt_mcache *mc = mcache_new(h);
    if (!mc) return NULL;
    tls_tab[slot] = (gt_tls_fast){h, gt_heap_epoch(h), mc, h->id};
    gt_tls = tls_tab[slot];
    return mc;
}

/* thread_detach: release the calling thread's cache of h, if it has one. Can't fail. */
void gt_mcache_detach(gt_heap *h)
{
    for (int i = 0; i < GT_TLS_N; i++) {
        if (tls_tab[i].heap == h && tls_tab[i].id == h->id) {
            mcache_release(h, tls_tab[i].mc);
            tls_clear(i);
        }
    }
}

/* collect(): move h to a new cache epoch, so that every thread's next call into h misses
 * the fast-path match, takes gt_mcache_get_slow and flushes its own cache there (a deferred
 * stop-the-world: no thread ever touches another thread's cache); the calling thread's cache,
 * if it has one, is flushed now. Can't fail. */
void gt_mcache_new_epoch(gt_heap *h)
{
    pthread_mutex_lock(&reg_lock);
    atomic_store_explicit(&h->gen, ++reg_gen, memory_order_relaxed);
    pthread_mutex_unlock(&reg_lock);
    for (int i = 0; i < GT_TLS_N; i++) {
        if (tls_tab[i].heap == h && tls_tab[i].id == h->id) {
            (void)gt_mcache_get_slow(h); /* finds entry i: flushes it and refreshes gt_tls */
            return;
        }
    }
}
