/* mcentral.c - one central free list per span class (Go's mcentral), each under a
 * cache-line-padded mutex (striped: see gt_clock).
 *
 * Go keeps partial/full x swept/unswept span sets and advances a sweep generation per GC.
 * With explicit free there is no GC cycle: a span needs sweeping exactly when it has frees
 * pending in its `freed` bitmap. So there are three lists: `partial` (swept, free objects),
 * `full` (swept, none free) and `unswept` (frees pending). A free that lands on a span sitting
 * in `full` moves it to `unswept` (gt_central_notify, once per span: the state then changes);
 * spans in `partial` are swept when taken. cacheSpan takes partial, else sweeps up to 100
 * unswept spans, else grows a fresh span from the mheap. A sweep that empties a span gives its
 * pages back to the mheap.
 *
 * Each central's lock is one of the heap's GT_NCLOCK striped mutexes (shared by span classes
 * c, c + 32, ...; never two held at once).
 * Invariants, for every span s in a list of central c (under c's lock):
 *   st(s) == GT_ST(c.spc, list);  alloc_count(s) == popcount(alloc_bits(s));
 *   freed(s) subset of alloc_bits(s);  s in full => alloc_count == nelems.
 * Lock order: registry -> central -> heap.
 */
#include "gotiered_internal.h"

/* Can't fail. */
void gt_central_init(gt_central *c, unsigned spc, pthread_mutex_t *lock)
{
    c->lock = lock;
    c->partial = c->unswept = c->full = NULL;
    c->spc = spc;
}

/* Doubly linked span lists. Can't fail. */
static void list_push(gt_span **l, gt_span *s)
{
    s->prev = NULL;
    s->next = *l;
    if (*l) (*l)->prev = s;
    *l = s;
}

static void list_remove(gt_span **l, gt_span *s)
{
    if (s->prev) s->prev->next = s->next;
    else *l = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* Publish s's state (seq_cst: racing frees read it). Can't fail. */
static void set_state(gt_span *s, unsigned state)
{
    atomic_store(&s->st, GT_ST(s->spc, state));
}

/* Fold pending frees into alloc_bits; returns the objects reclaimed. The caller owns s (its
 * mcache, or the central lock while s is in a list). Can't fail. */
unsigned gt_span_sweep(gt_heap *h, gt_span *s)
{
    unsigned n = 0;
    for (unsigned w = 0; w < s->nwords; w++) {
        if (!atomic_load_explicit(&s->freed[w], memory_order_relaxed)) continue;
        uint64_t f = atomic_exchange(&s->freed[w], 0);
        s->alloc_bits[w] &= ~f;
        n += gt_popcount(f);
    }
    s->alloc_count = (uint16_t)(s->alloc_count - n);
    if (n) GT_EVENT(h, sweeps, 1);
    return n;
}

/* Are frees waiting in s's freed bitmap? Can't fail. */
static int has_pending(gt_span *s)
{
    for (unsigned w = 0; w < s->nwords; w++)
        if (atomic_load(&s->freed[w])) return 1;
    return 0;
}

/* File a swept, full span. The state is published before the freed bits are re-read, and a
 * free ORs its bit before it reads the state: one of the two sees the other. */
static void file_full(gt_central *c, gt_span *s)
{
    set_state(s, GT_SPAN_FULL);
    if (has_pending(s)) {
        set_state(s, GT_SPAN_UNSWEPT);
        list_push(&c->unswept, s);
    } else {
        list_push(&c->full, s);
    }
}

/* A span of class spc with at least one free object, state CACHED, for cache mc (a new span
 * comes from mc's page cache), or NULL when out of memory. */
gt_span *gt_central_cache_span(gt_heap *h, unsigned spc, gt_mcache *mc)
{
    gt_central *c = &h->central[spc];
    GT_EVENT(h, central_refills, 1);
    pthread_mutex_lock(c->lock);
    gt_span *s;
    while ((s = c->partial)) {
        list_remove(&c->partial, s);
        gt_span_sweep(h, s);
        goto have;
    }
    for (int k = 0; k < 100 && (s = c->unswept); k++) {
        list_remove(&c->unswept, s);
        gt_span_sweep(h, s);
        if (s->alloc_count < s->nelems) goto have;
        file_full(c, s);
    }
    pthread_mutex_unlock(c->lock);
    unsigned cls = spc == GT_TINY_SPC ? 2 : spc;
    return gt_heap_alloc_span(h, gt_class_npages[cls], spc, mc);
have:
    set_state(s, GT_SPAN_CACHED);
    pthread_mutex_unlock(c->lock);
    return s;
}

/* Take back a span from an mcache (its alloc_bits already include what the cache handed out).
 * An empty span goes back to the mheap. Can't fail. */
void gt_central_uncache_span(gt_heap *h, gt_span *s)
{
    gt_central *c = &h->central[s->spc];
    pthread_mutex_lock(c->lock);
    gt_span_sweep(h, s);
    if (s->alloc_count == 0) {
        pthread_mutex_unlock(c->lock);
        gt_heap_free_span(h, s);
        return;
    }
    if (s->alloc_count == s->nelems) {
        file_full(c, s);
    } else {
        set_state(s, GT_SPAN_PARTIAL);
        list_push(&c->partial, s);
    }
    pthread_mutex_unlock(c->lock);
}

/* A free found s in `full`: move it to `unswept` so its objects get reused. s may have been
 * swept, emptied and recycled since (its state word says so); nothing happens then. */
void gt_central_notify(gt_heap *h, gt_span *s, unsigned spc)
{
    gt_central *c = &h->central[spc];
    pthread_mutex_lock(c->lock);
    if (atomic_load(&s->st) == GT_ST(spc, GT_SPAN_FULL)) {
        list_remove(&c->full, s);
        atomic_store(&s->st, GT_ST(spc, GT_SPAN_UNSWEPT));
        list_push(&c->unswept, s);
    }
    pthread_mutex_unlock(c->lock);
}

/* Sweep every span of every central list; empty spans go back to the mheap (collect).
 * Can't fail. */
void gt_central_sweep_all(gt_heap *h)
{
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        gt_central *c = &h->central[spc];
        gt_span *empty = NULL;
        pthread_mutex_lock(c->lock);
        gt_span *lists[3] = {c->unswept, c->partial, c->full};
        c->unswept = c->partial = c->full = NULL;
        for (int k = 0; k < 3; k++) {
            for (gt_span *s = lists[k], *n; s; s = n) {
                n = s->next;
                gt_span_sweep(h, s);
                if (s->alloc_count == 0) {
                    set_state(s, GT_SPAN_CACHED); /* in no list: a late notify is a no-op */
                    s->next = empty;
                    empty = s;
                } else if (s->alloc_count == s->nelems) {
                    file_full(c, s);
                } else {
                    set_state(s, GT_SPAN_PARTIAL);
                    list_push(&c->partial, s);
                }
            }
        }
        pthread_mutex_unlock(c->lock);
        for (gt_span *s = empty, *n; s; s = n) {
            n = s->next;
            gt_heap_free_span(h, s);
        }
    }
}
