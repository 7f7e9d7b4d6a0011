/* mcentral.c - one central free list per span class (Go's mcentral), each under a
 * cache-line-padded mutex (striped: see gt_clock), with Go's lock-free parts.
 *
 * Go keeps partial/full x swept/unswept span sets (lock-free spanSets) and advances a sweep
 * generation per GC. With explicit free there is no GC cycle: a span needs sweeping exactly
 * when it has frees pending in its `freed` bitmap. So: `partial` (swept, free objects, a list
 * under the lock), `unswept` (frees pending, a list under the lock, fed by the lock-free
 * `notified` stack) and full swept spans, which are in no list at all (state FULL; Go's
 * fullSwept set is only ever popped by its sweeper, which explicit free does not need). The
 * first free that lands on a FULL span moves it to UNSWEPT with one CAS and pushes it on
 * `notified` (gt_central_notify: no lock); the lock holder drains that stack into `unswept`.
 * cacheSpan takes partial, else sweeps up to 100 unswept spans, else grows a fresh span from
 * the mheap; when `avail` (partial or unswept non-empty) and `notified` both read empty it
 * grows without taking the lock. uncacheSpan files a full span without the lock (the cache
 * owns the span until it publishes FULL), an empty one goes straight to the mheap, a partial
 * one takes the lock. A sweep that empties a span gives its pages back to the mheap.
 *
 * Each central's lock is one of the heap's GT_NCLOCK striped mutexes (shared by span classes
 * c, c + 32, ...; never two held at once).
 * Invariants, for every span s of central c (quiescent, or under c's lock for the lists):
 *   s in partial => st(s) == PARTIAL;  s in unswept or notified => st(s) == UNSWEPT;
 *   st(s) == FULL => s in no list, alloc_count == nelems, no frees pending when filed;
 *   alloc_count(s) == popcount(alloc_bits(s));  freed(s) subset of alloc_bits(s);
 *   avail == (partial != NULL || unswept != NULL) whenever c's lock is free.
 * Lock order: registry -> central -> heap.
 */
#include "gotiered_internal.h"

/* Can't fail. */
void gt_central_init(gt_central *c, unsigned spc, pthread_mutex_t *lock)
{
    c->lock = lock;
    c->partial = c->unswept = NULL;
    atomic_init(&c->notified, NULL);
    atomic_init(&c->avail, 0);
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

/* Under c's lock, before unlocking: publish whether the lists hold a span. Can't fail. */
static void avail_sync(gt_central *c)
{
    atomic_store_explicit(&c->avail, c->partial || c->unswept, memory_order_relaxed);
}

/* Push s (state UNSWEPT, won by a CAS: no one else pushes it) on c's notified stack. Can't
 * fail. */
static void notified_push(gt_central *c, gt_span *s)
{
    gt_span *old = atomic_load_explicit(&c->notified, memory_order_relaxed);
    do {
        s->next = old;
    } while (!atomic_compare_exchange_weak(&c->notified, &old, s));
}

/* Under c's lock: move the notified stack into `unswept`. Can't fail. */
static void drain_notified(gt_central *c)
{
    gt_span *s = atomic_exchange(&c->notified, NULL);
    while (s) {
        gt_span *n = s->next;
        list_push(&c->unswept, s);
        s = n;
    }
}

/* CAS s from FULL to UNSWEPT; the winner pushes it on c's notified stack. Can't fail. */
static void notify_in(gt_central *c, gt_span *s, unsigned spc)
{
    uint32_t want = GT_ST(spc, GT_SPAN_FULL);
    if (atomic_compare_exchange_strong(&s->st, &want, GT_ST(spc, GT_SPAN_UNSWEPT)))
        notified_push(c, s);
}

/* Fold pending frees into alloc_bits; returns the objects reclaimed. The caller owns s (its
 * mcache, the central lock while s is in a list, or the state it won). Can't fail. */
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

#ifdef GT_TEST_HOOKS
/* Tests (a unity build of this file): called by file_full between the publish and the look. */
void (*gt_test_file_full_hook)(gt_span *s);
#define GT_FILE_FULL_HOOK(s) (gt_test_file_full_hook ? gt_test_file_full_hook(s) : (void)0)
#else
#define GT_FILE_FULL_HOOK(s) ((void)0)
#endif

/* File a swept, full span that the caller owns: state FULL, in no list. The state is
 * published before the freed bits are re-read, and a free ORs its bit before it reads the
 * state: one of the two sees the other, and the CAS FULL -> UNSWEPT (here or in the free's
 * gt_central_notify) lets exactly one of them push it on `notified`. No lock. Once FULL is
 * published the span is no longer the caller's: a free may notify it, a lock holder drain and
 * sweep it, and collect's sweep free it (its bitmaps gone) while this call still reads its
 * freed bits. `filing`, raised before the publish and dropped after the last look, keeps
 * gt_central_sweep_all and gt_central_uncache_span (the span may reach another cache and be
 * flushed from it) from freeing it meanwhile (a counter: by then the span may be another
 * cache's, filing it too). Can't fail. */
static void file_full(gt_central *c, gt_span *s)
{
    atomic_fetch_add_explicit(&s->filing, 1, memory_order_relaxed);
    set_state(s, GT_SPAN_FULL);
    GT_FILE_FULL_HOOK(s);
    if (has_pending(s)) notify_in(c, s, s->spc);
    atomic_fetch_sub_explicit(&s->filing, 1, memory_order_release);
}

/* May a swept span go back to the mheap? Empty, and no file_full still looking at it (see
 * file_full: it may have come here notified). Can't fail. */
static int span_freeable(gt_span *s)
{
    return s->alloc_count == 0 && !atomic_load_explicit(&s->filing, memory_order_acquire);
}

/* A span of class spc with at least one free object, state CACHED, for cache mc (a new span
 * comes from mc's page cache), or NULL when out of memory. */
gt_span *gt_central_cache_span(gt_heap *h, unsigned spc, gt_mcache *mc)
{
    gt_central *c = &h->central[spc];
    GT_EVENT(h, central_refills, 1);
    if (!atomic_load_explicit(&c->avail, memory_order_relaxed) &&
        !atomic_load_explicit(&c->notified, memory_order_relaxed))
        goto grow; /* nothing to take (a racing uncache is missed: as with Go's spanSets) */
    pthread_mutex_lock(c->lock);
    drain_notified(c);
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
    avail_sync(c);
    pthread_mutex_unlock(c->lock);
grow:;
    unsigned cls = spc == GT_TINY_SPC ? 2 : spc;
    return gt_heap_alloc_span(h, gt_class_npages[cls], spc, mc);
have:
    set_state(s, GT_SPAN_CACHED);
    avail_sync(c);
    pthread_mutex_unlock(c->lock);
    return s;
}

/* Take back a span from an mcache (its alloc_bits already include what the cache handed out).
 * The cache owns s until its state is published, so the sweep, a full span's filing and an
 * empty span's return to the mheap need no central lock; a partial span takes it. `swept`:
 * the caller swept s just now (frees that land later are caught by file_full). Can't fail. */
void gt_central_uncache_span(gt_heap *h, gt_span *s, int swept)
{
    gt_central *c = &h->central[s->spc];
    if (!swept) gt_span_sweep(h, s);
    if (s->alloc_count == s->nelems) {
        file_full(c, s);
        return;
    }
    /* empty: back to the mheap, unless a file_full of its previous owner still looks at it:
     * then a partial like any */
    if (span_freeable(s)) {
        gt_heap_free_span(h, s);
        return;
    }
    pthread_mutex_lock(c->lock);
    set_state(s, GT_SPAN_PARTIAL);
    list_push(&c->partial, s);
    avail_sync(c);
    pthread_mutex_unlock(c->lock);
}

/* A free found s FULL: move it to UNSWEPT (one CAS; the winner pushes it on the notified
 * stack) so its objects get reused. s may have been swept, emptied and recycled since: the
 * CAS then fails (or finds another full span of the class, which is harmless: a needless
 * sweep). No lock. Can't fail. */
void gt_central_notify(gt_heap *h, gt_span *s, unsigned spc)
{
    notify_in(&h->central[spc], s, spc);
}
/* Sweep every span of every central list (full spans have no frees pending: a free would have
 * moved them to `notified`); empty spans go back to the mheap (collect).
 * Can't fail. */
void gt_central_sweep_all(gt_heap *h)
{
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        gt_central *c = &h->central[spc];
        gt_span *empty = NULL;
        pthread_mutex_lock(c->lock);
        drain_notified(c);
        gt_span *lists[2] = {c->unswept, c->partial};
        c->unswept = c->partial = NULL;
        for (int k = 0; k < 2; k++) {
            for (gt_span *s = lists[k], *n; s; s = n) {
                n = s->next;
                gt_span_sweep(h, s);
                if (span_freeable(s)) {
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
        avail_sync(c);
        pthread_mutex_unlock(c->lock);
        for (gt_span *s = empty, *n; s; s = n) {
            n = s->next;
            gt_heap_free_span(h, s);
        }
    }
}
