/* gotiered.c - Go's runtime allocator (malloc.go and friends, Go 1.19..tip) rebuilt in C for
 * explicit free: the backend glue, options, stats and check. One file per level:
 *   sizeclasses.c (+ gen_sizeclasses.c at build time)  the 68 classes, lookups, divMul
 *   tiny.c        tiny allocator (< 16 B sub-objects in 16 B blocks, live count per block)
 *   mcache.c      per-thread cache: one span per span class, allocCache fast path
 *   mcentral.c    per-class central lists: partial / unswept (+ lock-free notified stack), sweep
 *   mheap.c       64 MiB arenas, page->span map, spans, large and huge objects, the per-thread
 *                 page cache and span-struct cache (Go's pageCache, mspancache)
 *   pagealloc.c   page bitmap + chunk summaries: address-ordered first fit, allocToCache
 *   fixalloc.c    span / cache / tiny-record metadata from 16 KiB chunks
 *   scavenger.c   madvise(MADV_DONTNEED) of free pages, on collect and in the background
 *
 * Lineage: Go's tcmalloc-derived design (Go 1.19 src/runtime/malloc.go, mcache.go,
 * mcentral.go, mheap.go, mpagealloc.go, mgcscavenge.go, sizeclasses.go), facts in
 * shared/specs/go-allocator.md. Go frees by garbage collection; C frees explicitly, so the GC's
 * mark bits are replaced by a per-span `freed` bitmap (section 4 of the spec).
 *
 * Glossary
 *   page        8 KiB.  arena: 64 MiB mapping, 64 MiB aligned, header (page->span map, page
 *               bitmaps) in its first 9 pages, so span_of(p) = arena(p & ~64MiB)->spans[page].
 *   size class  one of 67 object sizes (8 B .. 32 KiB), class 0 = large; span class = size
 *               class, plus class 68 = tiny blocks (16 B objects in spans of their own, like
 *               Go's noscan bit splits class 2).
 *   span        run of pages holding objects of one span class: alloc_bits (allocated at the
 *               last sweep), freed (atomic, frees since), alloc_count.
 *   mcache      per thread and heap: per span class a span and a 64-bit allocCache word; a
 *               page cache and caches of span structs and span bitmaps (Go's P.pcache and
 *               P.mspancache), and freed large spans.
 *   page cache  up to 64 free pages of one 64-page aligned group (one word of an arena's page
 *               bitmap), taken from the page allocator at once, handed to new spans of < 16
 *               pages by its thread without the heap lock (Go's mpagecache.go).
 *   mcentral    per span class: partial and unswept span lists under a (striped) lock, a
 *               lock-free `notified` stack; full spans are in no list. Cache-line padded.
 *   mheap       arenas + page allocator + large objects, one mutex.
 *
 * Allocation (each step amortises the next one):
 *   1. TLS: the thread's cache for this heap: one compare of the thread's saved epoch with the
 *      heap's (epochs are unique process-wide, so a match names both the heap and a cache
 *      that has honoured every collect; see "collect" below).
 *   2. size < 16 and tiny on: bump inside the current 16 B block (no atomic; see tiny.c).
 *   3. size class by table lookup (Go's, except that 17..24 B use the 32 B class: allocator.h
 *      promises 16-byte alignment from 16 B up, Go's 24 B class gives 8); then the mcache
 *      fast path: pop the reuse list (free=reuse), else bit = ctz(allocCache), clear it,
 *      return wbase + bit * elemsize; no lock, no atomic. Counting is one `add` to the slot's
 *      own counter (bytes = count x class size at stats() time, as Go derives them per span).
 *      Callgrind: 22 instructions for the whole alloc entry from a reuse list, 31 for free.
 *   4. word exhausted: next bitmap word of the same span (amortises 64 objects).
 *   5. span exhausted: sweep it in place (frees that landed on it come back without a lock);
 *      keep it when >= 1/4 came back.
 *      A span given back: full -> state FULL, no lock, in no list (Go's fullSwept set is never
 *      popped without a GC); empty -> the mheap; partial -> mcentral's partial list (lock).
 *   6. else mcentral: when its lists read empty (one relaxed load of `avail` and `notified`),
 *      straight to step 7 without the lock; else (class lock) drain the notified stack, take
 *      a partial span, else sweep unswept spans, else
 *   7. mheap, Go's allocSpan with a P: a span of < 16 pages takes its pages from the thread's
 *      page cache and its span struct and bitmaps from the thread's caches, no heap lock.
 *      Only when one of them runs dry is the heap lock taken once to refill it: span structs
 *      and bitmaps in doubling batches (1 .. 32), pages by Go's allocToCache (all free pages of
 *      the first 64-page word, from the search hint, that holds a run of the size asked; the
 *      rest of the old cache goes back first). Otherwise (>= 16 pages, tiny spans, a failed
 *      refill): heap lock, first fit in the page bitmaps (oldest arena first, address order
 *      inside it), else map a new 64 MiB arena.
 *   Large (> 32 KiB): a span of whole pages from step 7; larger than an arena: an arena of its
 *   own (unmapped on free). Spans of up to 16 pages (128 KiB) freed by a thread are kept in
 *   its cache (1 MiB at most) and reused for the same page count without the heap lock.
 * Free (mirror; any thread may free any block, the size hint is not needed):
 *   1. span = span_of(p) (two loads).  Large: the thread's large-span cache, else the mheap.  Tiny: a sub-object of the
 *      thread's own current block is counted locally (no atomic; when all its sub-objects are
 *      freed the block is rewound and reused from offset 0); otherwise decrement the block's
 *      live count atomically; only when it reaches 0 does the block itself get freed:
 *   2a. free=sweep: if the object lies in the bitmap word the freeing thread's own
 *      cache is allocating from, set its bit in allocCache (no atomic, reused at once). Else
 *      atomic OR of the object's bit into span->freed (Go section 4:
 *      lock-free from any thread; reuse happens after a sweep, done by the owning cache at
 *      exhaustion or by mcentral when it hands the span out). If the span is FULL (in no
 *      list), one CAS moves it to UNSWEPT and the winner pushes it on mcentral's lock-free
 *      notified stack (once per span; the next lock holder drains it into `unswept`).
 *   2b. free=reuse (the default; Go tip's freegc): push the object on the freeing thread's per-class LIFO,
 *      which alloc pops before the allocCache: no atomic at all, cache-hot reuse; the list is
 *      capped (64 KiB per class, then half goes back through 2a) and flushed with the cache.
 *   Why both: sweep keeps Go 1.19's shape (frees cheap and lock-free, objects return to their
 *   own span, so spans empty and pages go back to the OS); reuse parks up to 64 KiB per class
 *   in each thread's cache but was faster in most cases we measured (alloclab --quick, 2 cores:
 *   bufchurn steady 29 vs 45 ns/op, graph 11 vs 19, larson 2 threads 23 vs 145; slower on
 *   xmalloc 1 thread, 58 vs 39) and used less memory on xmalloc 2 threads (RSS/live 1.5 vs
 *   2.5), hence the default. ALLOCLAB_GOTIERED_FREE=sweep compares.
 *   3. A sweep that empties a span gives its pages to the mheap (heap lock, as in Go: the page
 *      cache only serves allocation), where they merge with free neighbours; the scavenger
 *      returns free pages to the OS.
 *
 * Invariants (gotiered_check verifies them, with the heap quiescent):
 *   span s not in a cache:  alloc_count(s) == popcount(alloc_bits(s)),  freed(s) <= alloc_bits(s)
 *   live objects of s == alloc_count(s) - popcount(freed(s)) - |reuse-list entries of s|
 *   page p of a normal arena (header excluded), exactly one of:
 *     free in the page allocator:  alloc bit clear, spans[p] == NULL;
 *     in one span s:               alloc bit set, spans[p] == s, s.base <= p < s.base + s.npages;
 *     in one thread's page cache:  alloc bit set, spans[p] == NULL, bit of p in that cache's
 *                                  `cache` word (no two caches hold the same page)
 *   pages_inuse == pages in spans + pages in page caches  (HeapInuse counts only the first)
 *   free pages == pages_total - pages_inuse == sum of arena free_pages;  scav <= ~alloc
 *   pages_released == popcount(scav); a page cache's `scav` remembers which of its pages were
 *     released, and a flush puts them back released
 *   span s of class c: st(s) == FULL => s in no list, alloc_count == nelems;
 *     s in c.partial => PARTIAL;  s in c.unswept or c.notified => UNSWEPT
 *   tiny block: cnt == live sub-objects; while a cache pins it as current,
 *               cnt == GT_TINY_PIN - frees by other threads (its own frees are counted locally)
 *   HeapObjects == Mallocs - Frees;  Alloc == TotalAlloc - freed bytes.
 *
 * collect (Go stops the world and flushes every P's mcache; a cache's fast path takes no
 * lock here): collect moves the heap to a new cache epoch, flushes the calling thread's cache
 * at once (spans, reuse lists, large spans, page cache, span structs and bitmaps), then has the
 * cache of every other thread flushed that it can prove is outside the heap (mcache.c, "Remote
 * flush"): a thread asleep in a system call (/proc says so, its slow-path depth is 0, it is in
 * no signal handler, it has not taken the new epoch; `own` keeps it out meanwhile) is flushed
 * by collect; a running one gets SIGURG, and its handler flushes the cache itself when the pc
 * it interrupted is outside gotiered's code (section gt_text) and no slow path is in flight.
 * Then collect sweeps the central lists and scavenges. Every other thread's next call into
 * the heap misses the epoch match of step 1 (the fast path costs nothing more: it compared the
 * epoch already), takes the slow path and flushes its own cache before going on, unless it was
 * flushed already. So a thread's cache is flushed at once unless it blocks SIGURG, the program
 * has its own SIGURG handler, or it stays inside the heap while collect looks again; then at
 * its next call, thread exit or thread_detach. Rejected: a per-cache handshake flag (a store
 * or an atomic on every call). Under ThreadSanitizer the remote flush is compiled out (TSan
 * cannot see the context switch that orders the sleeping case, and delivers signals at its
 * own points, so a handler's pc says nothing).
 *
 * fork (atfork, for drop-in builds): PREPARE takes registry -> 32 striped mcentral locks ->
 * mheap lock; PARENT releases; CHILD re-initialises them, and the child runs without the
 * background scavenger (see gotiered_atfork). The lock-free steps (page cache, span caches,
 * FULL filing, notified pushes) leave another thread's state leaked but consistent in the
 * child: pages a thread had taken from its page cache for a span not yet mapped are in its
 * cache's `pending` word, which check() counts as cached.
 *
 * Memory: the heap's fixed cost is paid at create (header, first arena's 72 KiB header of
 * which ~8 KiB is touched). New arena pages count as released (never touched), and the
 * background scavenger thread starts only when free resident pages first exceed its goal,
 * so a small heap never pays for the thread (creating one faults in ~350 KiB of code pages,
 * which the RSS figures count). What a run then adds: the pages of its spans, ~100 B of span
 * struct plus its two bitmaps (1..16 words each, sized to the span) per span, one mcache
 * (~5 KiB) per thread, and per thread up to 32 spare span structs and 32 bitmap blocks per
 * kind. A page cache holds up to 64 pages (512 KiB) of address space per thread, but only
 * pages handed to spans are touched: cached pages cost no RSS.
 *
 * Space bounds: a small object wastes at most its class's Go "max waste" (12.5% or less from
 * 48 B up; the classes below 48 B round up by at most 15 B); a span's tail is at most 1/8 of
 * it; a live tiny sub-object keeps its whole 16 B block (worst case 16x for 1-byte objects,
 * Go's 2x figure assumes mixed sizes); spans are freed only when empty, so a sparse span holds
 * its pages (Go's fragmentation shape, no compaction); free pages beyond inuse/10 + 1 MiB go
 * back to the OS within a few 100 ms (background) or at once on collect.
 *
 * Options (create() string "key=value,..." over environment ALLOCLAB_GOTIERED_<KEY>):
 *   scavenger=on|off (background scavenger thread), tiny=on|off, free=sweep|reuse,
 *   remote_flush=on|sleep|off (collect flushes other threads' caches: sleeping and running
 *   ones, sleeping ones only (no signals), none; see collect above).
 * Build options: -DGOTIERED_STATS=0 compiles all counting out (stats then reports only the
 *   page-heap figures); -DGOTIERED_DEBUG checks every free (foreign pointer, double free, wrong
 *   size hint: abort naming the pointer). Under AddressSanitizer freed objects are poisoned.
 */
#include "gotiered_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- options ---- */

typedef struct gt_opts {
    int bg_scav, tiny, reuse, remote;
} gt_opts;

/* Apply key=value; 0 on success, else -1 with a message. */
static int opt_set(gt_opts *o, const char *key, size_t klen, const char *val, size_t vlen,
                   const char *origin, char *err, size_t errlen)
{
#define KEY_IS(k) (klen == strlen(k) && strncasecmp(key, k, klen) == 0)
#define VAL_IS(v) (vlen == strlen(v) && strncasecmp(val, v, vlen) == 0)
    int *flag = NULL;
    if (KEY_IS("scavenger")) flag = &o->bg_scav;
    else if (KEY_IS("tiny")) flag = &o->tiny;
    if (KEY_IS("remote_flush")) {
        if (VAL_IS("on") || VAL_IS("1")) o->remote = GT_RF_ON;
        else if (VAL_IS("sleep")) o->remote = GT_RF_SLEEP;
        else if (VAL_IS("off") || VAL_IS("0")) o->remote = GT_RF_OFF;
        else goto bad_value;
        return 0;
    }
    if (flag) {
        if (VAL_IS("on") || VAL_IS("1")) *flag = 1;
        else if (VAL_IS("off") || VAL_IS("0")) *flag = 0;
        else goto bad_value;
        return 0;
    }
    if (KEY_IS("free")) {
        if (VAL_IS("sweep")) o->reuse = 0;
        else if (VAL_IS("reuse")) o->reuse = 1;
        else goto bad_value;
        return 0;
    }
    snprintf(err, errlen,
             "gotiered: unknown option '%.*s' (%s); known: scavenger=on|off, tiny=on|off, "
             "free=sweep|reuse, remote_flush=on|sleep|off",
             (int)klen, key, origin);
    return -1;
bad_value:
    snprintf(err, errlen, "gotiered: bad value '%.*s' for option '%.*s' (%s)", (int)vlen, val,
             (int)klen, key, origin);
    return -1;
#undef KEY_IS
#undef VAL_IS
}

/* Environment, then the options string. 0 on success, else -1 with a message. */
static int opts_parse(gt_opts *o, const char *options, char *err, size_t errlen)
{
    static const char *const keys[] = {"scavenger", "tiny", "free", "remote_flush"};
    static const char *const envs[] = {"ALLOCLAB_GOTIERED_SCAVENGER", "ALLOCLAB_GOTIERED_TINY",
                                       "ALLOCLAB_GOTIERED_FREE",
                                       "ALLOCLAB_GOTIERED_REMOTE_FLUSH"};
    *o = (gt_opts){.bg_scav = 1, .tiny = 1, .reuse = 1, .remote = GT_RF_ON};
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(envs[i]);
        if (v && opt_set(o, keys[i], strlen(keys[i]), v, strlen(v), envs[i], err, errlen))
            return -1;
    }
    const char *s = options;
    while (s && *s) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', len);
        if (len) {
            if (!eq) {
                snprintf(err, errlen, "gotiered: option '%.*s' is not key=value", (int)len, s);
                return -1;
            }
            if (opt_set(o, s, (size_t)(eq - s), eq + 1, len - (size_t)(eq - s) - 1,
                        "options string", err, errlen))
                return -1;
        }
        s = end ? end + 1 : NULL;
    }
    return 0;
}

/* ---- create / destroy ---- */

static void gotiered_destroy(void *heap);

#define GT_HEAP_MAP (((sizeof(gt_heap) + 4095) / 4096) * 4096)

/* vtable create: options from the environment and `options`; NULL with a one-line message
 * on a bad option or when mmap fails (nothing is left allocated then). */
static void *gotiered_create(const char *options, char *err, size_t errlen)
{
    gt_opts o;
    if (opts_parse(&o, options, err, errlen)) return NULL;
    gt_heap_geom_init();
    gt_heap *h = mmap(NULL, GT_HEAP_MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (h == MAP_FAILED) {
        snprintf(err, errlen, "gotiered: mmap of the heap header failed: %s", strerror(errno));
        return NULL;
    }
    h->tiny_lim = o.tiny ? GT_TINY_SIZE : 0;
    h->free_reuse = o.reuse;
    h->bg_scav = o.bg_scav;
    h->remote_flush = GT_REMOTE_FLUSH ? o.remote : GT_RF_OFF;
    for (unsigned k = 0; k < GT_NCLOCK; k++) pthread_mutex_init(&h->clock[k].m, NULL);
    for (unsigned spc = 0; spc < GT_NSPC; spc++)
        gt_central_init(&h->central[spc], spc, &h->clock[spc % GT_NCLOCK].m);
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->scav_cond, NULL);
    gt_fix_init(&h->span_fix, sizeof(gt_span), (size_t)1 << 30);
    gt_fix_init(&h->cache_fix, sizeof(gt_mcache), (size_t)64 << 20);
    gt_fix_init(&h->tiny_fix, sizeof(gt_tinyblk) * (GT_PAGE / GT_TINY_SIZE), (size_t)1 << 30);
    gt_mfix_init(&h->bits_fix, (size_t)1 << 30); /* 2 bitmaps of 2^k words per span */
    gt_registry_add(h);
    if (gt_heap_first_arena(h)) {
        snprintf(err, errlen, "gotiered: mmap of the first 64 MiB arena failed: %s",
                 strerror(errno));
        gotiered_destroy(h);
        return NULL;
    }
    return h;
}

/* vtable destroy: stop the scavenger, unmap every arena and metadata region. Can't fail. */
static void gotiered_destroy(void *heap)
{
    gt_heap *h = heap;
    gt_registry_remove(h); /* from here no thread-exit flush touches h */
    gt_scav_stop(h);
    if (gt_tls.heap == h) gt_tls = (gt_tls_fast){0};
    gt_heap_unmap_all(h);
    for (unsigned k = 0; k < GT_NCLOCK; k++) pthread_mutex_destroy(&h->clock[k].m);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->scav_cond);
    munmap(h, GT_HEAP_MAP);
}

/* ---- alloc / free ---- */

/* Slow entry: no cache yet for this thread, or a large size. NULL when out of memory. */
static GT_NOINLINE void *alloc_slow(gt_heap *h, size_t size)
{
    if (size > GT_MAX_SMALL) return gt_mcache_large_alloc(h, size);
    gt_mcache *mc = gt_mcache_get(h);
    if (!mc) return NULL;
    if (size < mc->tiny_lim) return gt_tiny_alloc(mc, size);
    return gt_mcache_alloc_counted(mc, size <= 1016 ? gt_alloc_class8[(size + 7) >> 3]
                                                    : gt_size_to_class128[(size - 1024 + 127) >> 7]);
}

/* vtable alloc: the fast path of the architecture comment. NULL when out of memory or when
 * size is larger than 16 TiB. */
static void *gotiered_alloc(void *heap, size_t size)
{
    gt_heap *h = heap;
    if (gt_likely(gt_tls.gen == gt_heap_epoch(h))) {
        gt_mcache *mc = gt_tls.mc;
        unsigned spc;
        if (gt_likely(size <= 1024)) { /* entry 128 (1017..1024 B) is the 1 KiB class */
            if (size < mc->tiny_lim) return gt_tiny_alloc(mc, size);
            spc = gt_alloc_class8[(size + 7) >> 3];
        } else if (size <= GT_MAX_SMALL) {
            spc = gt_size_to_class128[(size - 1024 + 127) >> 7];
        } else {
            return gt_mcache_large_alloc(h, size);
        }
        return gt_mcache_alloc_counted(mc, spc);
    }
    return alloc_slow(h, size);
}

/* Free without the fast path's preconditions: large objects, tiny sub-objects, no cache for
 * this thread yet. Can't fail. */
static GT_NOINLINE void free_slow(gt_heap *h, gt_span *s, uintptr_t q)
{
    unsigned spc = s->spc;
    if (spc == 0) {
        if (!gt_mcache_large_free(h, s)) {
            GT_SLOW_SCOPE; /* the heap lock, munmap, madvise, pthread_create */
            gt_large_free(h, s);
            gt_scav_kick(h); /* the thread asked for by the free, outside the heap lock */
        }
        return;
    }
#if GOTIERED_STATS
    gt_mcache *mc = gt_mcache_get(h);
#else
    gt_mcache *mc = h->free_reuse ? gt_mcache_get(h) : NULL;
#endif
    if (spc == GT_TINY_SPC) {
        if (mc) GT_STAT_INC(mc->nfree, 1);
        q &= ~(uintptr_t)(GT_TINY_SIZE - 1);
        if (!gt_tiny_put(s, q)) return;
#ifdef GOTIERED_DEBUG
        gt_debug_clear_live(s, q);
#endif
        if (mc) GT_STAT_INC(mc->bytes_freed, GT_TINY_SIZE);
    } else if (mc) {
        GT_STAT_INC(mc->nfree, 1);
        GT_STAT_INC(mc->bytes_freed, s->elemsize);
    }
    if (mc) gt_mcache_free_block(mc, h, s, spc, q);
    else gt_bits_free(h, s, q);
}

/* vtable free: any thread, any block; the size hint is only checked (debug). Can't fail. */
static void gotiered_free(void *heap, void *p, size_t size)
{
    (void)size;
    gt_heap *h = heap;
    if (gt_unlikely(!p)) return;
#ifdef GOTIERED_DEBUG
    gt_debug_on_free(h, p, size);
#endif
    gt_span *s = gt_span_of(p);
    unsigned spc = s->spc;
    if (gt_likely(gt_tls.gen == gt_heap_epoch(h))) {
        gt_mcache *mc = gt_tls.mc;
        if (gt_likely(spc - 1u < GT_NCLASS - 1u)) {
            gt_mcache_free_impl(mc, h, s, spc, (uintptr_t)p, 1); /* counted in the slot */
            return;
        }
#ifndef GOTIERED_DEBUG
        if (spc == GT_TINY_SPC) {
            uintptr_t b = (uintptr_t)p & ~(uintptr_t)(GT_TINY_SIZE - 1);
            GT_COUNT(mc->ntiny_free);
            if (b == mc->tiny_blk) {
                gt_tiny_free_local(mc);
            } else if (gt_tiny_put(s, b)) {
                GT_STAT_INC(mc->bytes_freed, GT_TINY_SIZE);
                gt_mcache_free_block(mc, h, s, spc, b);
            }
            return;
        }
#endif
    }
    free_slow(h, s, (uintptr_t)p);
}

/* Bytes usable at p: class size, tiny sub-object size, or up to the end of a large span.
 * Can't fail. */
static size_t gotiered_usable_size(void *heap, const void *p)
{
    (void)heap;
    gt_span *s = gt_span_of(p);
    if (s->spc == 0) return s->base + (size_t)s->npages * GT_PAGE - (uintptr_t)p;
    if (s->spc == GT_TINY_SPC) return gt_tiny_usable(s, (uintptr_t)p);
    return s->elemsize;
}

/* In place while the new size fits and still uses over half of the block, else
 * alloc + copy + free. NULL (p untouched) when out of memory. */
static void *gotiered_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    if (!p) return gotiered_alloc(heap, new_size);
    if (new_size > PTRDIFF_MAX) return NULL;
    size_t usable = gotiered_usable_size(heap, p);
    if (new_size <= usable && (new_size > usable / 2 || usable <= GT_TINY_SIZE)) return p;
    void *q = gotiered_alloc(heap, new_size);
    if (!q) return NULL;
    size_t keep = old_size && old_size < usable ? old_size : usable;
    memcpy(q, p, keep < new_size ? keep : new_size);
    gotiered_free(heap, p, old_size);
    return q;
}

/* NULL on a bad alignment, an alignment above 32 MiB, or out of memory. */
static void *gotiered_alloc_aligned(void *heap, size_t align, size_t size)
{
    GT_SLOW_SCOPE;
    gt_heap *h = heap;
    if (!align || (align & (align - 1)) || size > PTRDIFF_MAX) return NULL;
    if (align <= AL_MIN_ALIGN) return gotiered_alloc(heap, size < align ? align : size);
    if (align <= GT_PAGE && size <= GT_MAX_SMALL) {
        /* objects sit at base + i * elemsize, base page aligned: a class whose size is a
         * multiple of align gives aligned objects (class 67, 32 KiB, always qualifies) */
        unsigned c = gt_size_class(size);
        while (gt_class_size[c] % align) c++;
        gt_mcache *mc = gt_mcache_get(h);
        return mc ? gt_mcache_alloc_counted(mc, c) : NULL;
    }
    return gt_large_alloc(h, size, align, NULL);
}

static void gotiered_thread_detach(void *heap) { gt_mcache_detach(heap); }

/* fork() safety (a drop-in's pthread_atfork handlers). PREPARE takes every lock in the one
 * order used everywhere (registry -> mcentral stripes 0..31 -> mheap, which also guards the fixallocs,
 * the cache list and the scavenger's state), so no other thread is inside a locked level when
 * fork() copies the heap; PARENT releases them in reverse. CHILD re-initialises them (only
 * the forking thread exists there) and the scavenger's condition variable (the parent's
 * scavenger may have been waiting on it). The background scavenger does not survive fork():
 * the child marks it stopped and does not start another (collect still scavenges; starting a
 * thread in the child of a multi-threaded process is what ThreadSanitizer refuses, and most
 * children exec). Other threads' caches stay in the cache list, untouched: a thread that was
 * inside the lock-free fast path at fork() leaves its copy as it was (leaked, not corrupt:
 * every fast-path step is a single store). Can't fail. */
static void gotiered_atfork(void *heap, int phase)
{
    gt_heap *h = heap;
    if (phase == AL_FORK_PREPARE) {
        gt_registry_atfork(phase);
        for (unsigned k = 0; k < GT_NCLOCK; k++) pthread_mutex_lock(&h->clock[k].m);
        pthread_mutex_lock(&h->lock);
    } else if (phase == AL_FORK_PARENT) {
        pthread_mutex_unlock(&h->lock);
        for (unsigned k = GT_NCLOCK; k-- > 0;) pthread_mutex_unlock(&h->clock[k].m);
        gt_registry_atfork(phase);
    } else {
        pthread_mutex_init(&h->lock, NULL);
        for (unsigned k = 0; k < GT_NCLOCK; k++) pthread_mutex_init(&h->clock[k].m, NULL);
        pthread_cond_init(&h->scav_cond, NULL);
        h->scav_started = 0; /* the thread is the parent's: never join it here */
        h->bg_scav = 0;      /* and start none in the child */
        gt_mcache_atfork_child(h);
        gt_registry_atfork(phase);
    }
}

/* Flush this thread's cache, sweep every central list (empty spans go back to the mheap),
 * release all free pages to the OS and drop metadata chunks when none is in use. Can't fail. */
static void gotiered_collect(void *heap)
{
    GT_SLOW_SCOPE;
    gt_heap *h = heap;
    gt_mcache_new_epoch(h); /* flushes the calling thread's cache now, the others' later */
    gt_central_sweep_all(h);
    pthread_mutex_lock(&h->lock);
    gt_scavenge(h, SIZE_MAX);
    gt_fix_trim(&h->span_fix);
    gt_fix_trim(&h->tiny_fix);
    gt_mfix_trim(&h->bits_fix);
    pthread_mutex_unlock(&h->lock);
    atomic_fetch_add_explicit(&h->num_gc, 1, memory_order_relaxed);
}

/* ---- stats ---- */

/* MemStats figures; see notes-gotiered.md for what is counted. Returns 0; can't fail. */
static int gotiered_stats(void *heap, al_stats *out)
{
    GT_SLOW_SCOPE;
    gt_heap *h = heap;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->lock);
    uint64_t heap_sys = h->pages_total * GT_PAGE + h->huge_bytes;
    out->heap_sys = heap_sys;
    uint64_t pcached = 0; /* free pages in the threads' page caches: idle, as in Go */
    for (gt_mcache *mc = h->caches; mc; mc = mc->next)
        pcached += gt_popcount(__atomic_load_n(&mc->pc.cache, __ATOMIC_RELAXED));
    out->heap_inuse = (h->pages_inuse - pcached) * GT_PAGE + h->huge_bytes;
    out->heap_idle = heap_sys - out->heap_inuse;
    out->heap_released = h->pages_released * GT_PAGE;
    out->sys = h->arena_bytes + h->span_fix.sys + h->cache_fix.sys + h->tiny_fix.sys +
               GT_HEAP_MAP;
    out->sys += h->bits_fix.f.sys;
    out->num_gc = atomic_load_explicit(&h->num_gc, memory_order_relaxed);
    out->present = AL_STAT_BIT(heap_sys) | AL_STAT_BIT(heap_inuse) | AL_STAT_BIT(heap_idle) |
                   AL_STAT_BIT(heap_released) | AL_STAT_BIT(sys) | AL_STAT_BIT(num_gc);
#if GOTIERED_STATS
    uint64_t nm = h->r_nmalloc, nf = h->r_nfree, ba = h->r_bytes_alloc, bf = h->r_bytes_freed;
    for (gt_mcache *mc = h->caches; mc; mc = mc->next) {
        gt_counts c = gt_mcache_counts(mc);
        nm += c.nmalloc;
        nf += c.nfree;
        ba += c.bytes_alloc;
        bf += c.bytes_freed;
    }
    out->mallocs = nm;
    out->frees = nf;
    out->heap_objects = nm > nf ? nm - nf : 0;
    out->total_alloc = ba;
    out->alloc_bytes = ba > bf ? ba - bf : 0;
    out->central_refills = atomic_load_explicit(&h->central_refills, memory_order_relaxed);
    out->spans_grown = atomic_load_explicit(&h->spans_grown, memory_order_relaxed);
    out->sweeps = atomic_load_explicit(&h->sweeps, memory_order_relaxed);
    out->bytes_scavenged = atomic_load_explicit(&h->bytes_scavenged, memory_order_relaxed);
    out->present |= AL_STAT_BIT(mallocs) | AL_STAT_BIT(frees) | AL_STAT_BIT(heap_objects) |
                    AL_STAT_BIT(total_alloc) | AL_STAT_BIT(alloc_bytes) |
                    AL_STAT_BIT(central_refills) | AL_STAT_BIT(spans_grown) |
                    AL_STAT_BIT(sweeps) | AL_STAT_BIT(bytes_scavenged);
#endif
    pthread_mutex_unlock(&h->lock);
    return 0;
}

/* ---- check ---- */

#define FAIL(...)                              \
    do {                                       \
        snprintf(msg, msglen, __VA_ARGS__);    \
        return -1;                             \
    } while (0)

/* 0 when s's bitmaps agree with alloc_count (skipped for a cached span), else -1 + msg. */
static int check_span_bits(const gt_span *s, int cached, char *msg, size_t msglen)
{
    unsigned n = 0;
    for (unsigned w = 0; w < s->nwords; w++) {
        uint64_t f = atomic_load_explicit(&((gt_span *)s)->freed[w], memory_order_relaxed);
        if (s->alloc_bits[w] & ~gt_word_mask(s, w))
            FAIL("span %p: alloc bit set past nelems", (void *)s);
        if (!cached && (f & ~s->alloc_bits[w]))
            FAIL("span %p: a freed bit on an object not in alloc_bits", (void *)s);
        n += gt_popcount(s->alloc_bits[w]);
    }
    if (!cached && n != s->alloc_count)
        FAIL("span %p: allocCount %u != popcount(allocBits) %u", (void *)s, s->alloc_count, n);
    return 0;
}

static int check_list(gt_heap *h, unsigned spc, gt_span *l, unsigned state, char *msg,
                      size_t msglen)
{
    for (gt_span *s = l; s; s = s->next) {
        if (atomic_load(&s->st) != GT_ST(spc, state) || s->spc != spc)
            FAIL("span %p in central %u list %u has state %#x", (void *)s, spc, state,
                 (unsigned)atomic_load(&s->st));
        if (s->arena->spans[(s->base - (uintptr_t)s->arena) >> GT_PAGE_SHIFT] != s)
            FAIL("span %p: page map does not point back at it", (void *)s);
        if (check_span_bits(s, 0, msg, msglen)) return -1;
        if (state == GT_SPAN_PARTIAL && s->alloc_count >= s->nelems)
            FAIL("span %p in partial list is full", (void *)s);
        (void)h;
    }
    return 0;
}

/* Every invariant of the architecture comment; 0, or -1 with the first broken one in msg.
 * Heap must be quiescent. */
static int gotiered_check(void *heap, char *msg, size_t msglen)
{
    GT_SLOW_SCOPE;
    gt_heap *h = heap;
    int rc = -1;
    pthread_mutex_lock(&h->lock);
    uint64_t inuse = 0, total = 0, released = 0;
    for (gt_arena *a = h->arenas; a; a = a->next) {
        if (gt_pages_check(a, msg, msglen)) goto out;
        total += GT_ARENA_PAGES - a->first_page;
        uint64_t pcbits[GT_PAGE_WORDS] = {0}; /* pages of a in some thread's page cache */
        uint64_t pend[GT_PAGE_WORDS] = {0};   /* and pages pending in one (see below) */
        for (gt_mcache *mc = h->caches; mc; mc = mc->next) {
            uint64_t c = __atomic_load_n(&mc->pc.cache, __ATOMIC_RELAXED);
            if (!mc->pc.arena) {
                if (c) {
                    snprintf(msg, msglen, "cache %p: page cache bits without an arena", (void *)mc);
                    goto out;
                }
                continue;
            }
            if (mc->pc.arena != a) continue;
            if (pcbits[mc->pc.word] & c) {
                snprintf(msg, msglen, "arena %p: a page is in two page caches", (void *)a);
                goto out;
            }
            pcbits[mc->pc.word] |= c;
            /* fork child: a thread forked away between taking pages from its page cache and
             * mapping them leaves them pending (leaked with its cache, not corrupt) */
            pend[mc->pc.word] |= mc->pc.pending;
        }
        for (size_t i = 0; i < GT_ARENA_PAGES; i++) {
            int used = (a->alloc[i >> 6] >> (i & 63)) & 1;
            int pcached = (pcbits[i >> 6] >> (i & 63)) & 1;
            released += (a->scav[i >> 6] >> (i & 63)) & 1;
            gt_span *s = a->spans[i];
            if ((pend[i >> 6] >> (i & 63)) & 1) {
                inuse++;
                continue;
            }
            if (pcached) {
                if (!used || s || i < a->first_page) {
                    snprintf(msg, msglen, "page %zu of arena %p is in a page cache but %s", i,
                             (void *)a, !used ? "free in the page allocator" : "in a span");
                    goto out;
                }
                inuse++;
                continue;
            }
            if (i < a->first_page) {
                if (!used || s) {
                    snprintf(msg, msglen, "arena %p header page %zu not reserved", (void *)a, i);
                    goto out;
                }
                continue;
            }
            if (!used && s) {
                snprintf(msg, msglen, "free page %zu of arena %p maps to span %p", i, (void *)a,
                         (void *)s);
                goto out;
            }
            if (used && !s) {
                snprintf(msg, msglen, "page %zu of arena %p in use but in no span (not in the "
                         "page allocator nor in a page cache either)", i, (void *)a);
                goto out;
            }
            if (!used) continue;
            inuse++;
            uintptr_t pa = (uintptr_t)a + i * GT_PAGE;
            if (pa < s->base || pa >= s->base + (size_t)s->npages * GT_PAGE || s->arena != a) {
                snprintf(msg, msglen, "page map of arena %p page %zu points to span %p that "
                         "does not cover it", (void *)a, i, (void *)s);
                goto out;
            }
            uint32_t st = atomic_load(&s->st);
            if ((st & 0xff) == GT_SPAN_FREE) {
                snprintf(msg, msglen, "page %zu maps to freed span %p", i, (void *)s);
                goto out;
            }
            if ((st & 0xff) == GT_SPAN_FULL && pa == s->base) { /* full spans are in no list */
                if (st != GT_ST(s->spc, GT_SPAN_FULL) || s->spc == 0) {
                    snprintf(msg, msglen, "span %p: state %#x", (void *)s, (unsigned)st);
                    goto out;
                }
                if (check_span_bits(s, 0, msg, msglen)) goto out;
                if (s->alloc_count != s->nelems) {
                    snprintf(msg, msglen, "full span %p has %u of %u objects", (void *)s,
                             s->alloc_count, s->nelems);
                    goto out;
                }
            }
        }
    }
    if (inuse != h->pages_inuse || total != h->pages_total || released != h->pages_released) {
        snprintf(msg, msglen, "page counters: inuse %llu/%llu total %llu/%llu released %llu/%llu",
                 (unsigned long long)inuse, (unsigned long long)h->pages_inuse,
                 (unsigned long long)total, (unsigned long long)h->pages_total,
                 (unsigned long long)released, (unsigned long long)h->pages_released);
        goto out;
    }
    for (unsigned spc = 1; spc < GT_NSPC; spc++) {
        gt_central *c = &h->central[spc];
        if (check_list(h, spc, c->partial, GT_SPAN_PARTIAL, msg, msglen) ||
            check_list(h, spc, c->unswept, GT_SPAN_UNSWEPT, msg, msglen) ||
            check_list(h, spc, atomic_load(&c->notified), GT_SPAN_UNSWEPT, msg, msglen))
            goto out;
    }
    for (gt_mcache *mc = h->caches; mc; mc = mc->next) {
        for (unsigned spc = 1; spc < GT_NSPC; spc++) {
            gt_slot *sl = &mc->slot[spc];
            gt_span *s = sl->span;
            if (s == &gt_empty_span) {
                if (sl->cache) {
                    snprintf(msg, msglen, "cache %p slot %u: empty span but cache bits",
                             (void *)mc, spc);
                    goto out;
                }
                continue;
            }
            if (atomic_load(&s->st) != GT_ST(spc, GT_SPAN_CACHED)) {
                snprintf(msg, msglen, "cache %p slot %u: span %p not in state cached",
                         (void *)mc, spc, (void *)s);
                goto out;
            }
            /* allocCache holds objects free at load time plus objects this thread freed
             * back into it since: within the word, and none of them pending in `freed` */
            if (s->widx < s->nwords &&
                ((sl->cache & ~gt_word_mask(s, s->widx)) ||
                 (sl->cache & atomic_load(&s->freed[s->widx])))) {
                snprintf(msg, msglen, "cache %p slot %u: allocCache offers an object outside "
                         "the word or one with a pending free", (void *)mc, spc);
                goto out;
            }
            if (s->widx >= s->nwords && sl->cache) {
                snprintf(msg, msglen, "cache %p slot %u: allocCache set past the span",
                         (void *)mc, spc);
                goto out;
            }
            if (check_span_bits(s, 1, msg, msglen)) goto out;
        }
    }
    rc = 0;
out:
    pthread_mutex_unlock(&h->lock);
    return rc;
}

/* ---- debug ---- */

#ifdef GOTIERED_DEBUG
/* Print what went wrong and the pointer, then abort. Does not return. */
void gt_debug_fail(const char *what, const void *p)
{
    fprintf(stderr, "gotiered: %s: pointer %p\n", what, p);
    abort();
}

/* Debug: mark p live; aborts if it already was (allocator bug). */
void gt_debug_on_alloc(gt_span *s, uintptr_t p)
{
    size_t idx = (size_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
    uint64_t bit = UINT64_C(1) << (idx & 63);
    if (atomic_fetch_or(&s->live[idx >> 6], bit) & bit)
        gt_debug_fail("allocator handed out a live object", (void *)p);
}

/* Debug: mark p free; aborts on a double free. */
void gt_debug_clear_live(gt_span *s, uintptr_t p)
{
    size_t idx = (size_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
    uint64_t bit = UINT64_C(1) << (idx & 63);
    if (!(atomic_fetch_and(&s->live[idx >> 6], ~bit) & bit))
        gt_debug_fail("double free (object not allocated)", (void *)p);
}

/* Debug: abort unless p is a live block of this heap and the hint fits it. */
void gt_debug_on_free(gt_heap *h, const void *p, size_t hint)
{
    GT_SLOW_SCOPE;
    uintptr_t q = (uintptr_t)p;
    int found = 0;
    pthread_mutex_lock(&h->lock);
    for (gt_arena *a = h->arenas; a && !found; a = a->next)
        found = q >= (uintptr_t)a + a->first_page * GT_PAGE && q < (uintptr_t)a + a->map_bytes;
    for (gt_arena *a = h->huge; a && !found; a = a->next)
        found = q >= (uintptr_t)a + a->first_page * GT_PAGE && q < (uintptr_t)a + a->map_bytes;
    pthread_mutex_unlock(&h->lock);
    if (!found) gt_debug_fail("free of a pointer this heap never returned (foreign)", p);
    gt_span *s = gt_span_of(p);
    if (!s) gt_debug_fail("free of a pointer that is not allocated (double free or foreign)", p);
    uint32_t st = atomic_load(&s->st);
    if ((st & 0xff) == GT_SPAN_FREE)
        gt_debug_fail("free of a pointer that is not allocated (double free)", p);
    size_t usable = gotiered_usable_size(h, p);
    if (hint > usable) gt_debug_fail("free with a wrong size hint (larger than the block)", p);
    if (s->spc == 0) {
        if (st != GT_ST(0, GT_SPAN_LARGE))
            gt_debug_fail("free of a pointer that is not allocated (double free, large)", p);
        return;
    }
    if (s->spc == GT_TINY_SPC) {
        if (hint >= GT_TINY_SIZE) gt_debug_fail("free with a wrong size hint (tiny object)", p);
        uintptr_t b = q & ~(uintptr_t)15;
        size_t idx = (b - s->base) >> 4;
        if (!(atomic_load(&s->live[idx >> 6]) & (UINT64_C(1) << (idx & 63))))
            gt_debug_fail("double free (tiny block not allocated)", p);
        return;
    }
    if ((q - s->base) % s->elemsize)
        gt_debug_fail("free of a pointer that is not the start of an object (foreign)", p);
    gt_debug_clear_live(s, q);
}
#endif

/* Static string with the build and the environment's options. Can't fail. */
static const char *gotiered_version(void)
{
    static char buf[256];
    const char *f = getenv("ALLOCLAB_GOTIERED_FREE"), *t = getenv("ALLOCLAB_GOTIERED_TINY"),
               *sc = getenv("ALLOCLAB_GOTIERED_SCAVENGER"),
               *rf = GT_REMOTE_FLUSH ? getenv("ALLOCLAB_GOTIERED_REMOTE_FLUSH") : "off (TSan)";
    snprintf(buf, sizeof buf,
             "gotiered 1 (Go 1.19 size classes; free=%s tiny=%s scavenger=%s remote_flush=%s; "
             "stats=%d%s)",
             f ? f : "reuse", t ? t : "on", sc ? sc : "on", rf ? rf : "on", GOTIERED_STATS,
#ifdef GOTIERED_DEBUG
             " debug"
#else
             ""
#endif
    );
    return buf;
}

const al_backend al_backend_gotiered = {
    .abi = AL_ABI_VERSION,
    .name = "gotiered",
    .desc = "Go's runtime allocator in C: size classes, tiny, mcache/mcentral/mheap, scavenger",
    .caps = AL_CAP_THREAD_SAFE,
    .preload = NULL,
    .create = gotiered_create,
    .destroy = gotiered_destroy,
    .alloc = gotiered_alloc,
    .free = gotiered_free,
    .realloc = gotiered_realloc,
    .alloc_aligned = gotiered_alloc_aligned,
    .usable_size = gotiered_usable_size,
    .thread_detach = gotiered_thread_detach,
    .collect = gotiered_collect,
    .stats = gotiered_stats,
    .check = gotiered_check,
    .version = gotiered_version,
    .atfork = gotiered_atfork,
};
