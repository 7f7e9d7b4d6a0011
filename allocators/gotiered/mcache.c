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
 * after a collect, or at the collect: by the collector while the thread sleeps, by the
 * thread's own signal handler while it runs outside the heap ("Remote flush" below);
 * entries of heaps that died are dropped without being touched (the registry, under its
 * lock, says which heaps are alive).
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
#include "clock.h" /* al_now_ns: the project's one monotonic clock */

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define GT_TLS_N 8

gt_span gt_empty_span; /* nelems 0: a slot with it always takes the slow path */
__thread gt_tls_fast gt_tls __attribute__((tls_model(GT_TLS_MODEL)));
__thread _Atomic unsigned gt_slow_depth __attribute__((tls_model(GT_TLS_MODEL)));
static __thread gt_tls_fast tls_tab[GT_TLS_N];
/* Set when the thread's exit flush ran: a cache made after it (a later TLS destructor
 * allocates) may outlive the thread if no destructor round is left, so collect never touches
 * it from another thread (its tid could name a new thread, its pointers a freed TLS block). */
static __thread int gt_exiting;

/* collect's remote flush ("Remote flush" below) */
#define GT_FLUSH_ROUNDS 16                  /* visits per cache per collect, at most   */
#define GT_FLUSH_PAUSE_NS 200000L           /* between two rounds                     */
#define GT_SIG_WAIT_NS (10 * 1000000L)      /* for a signalled owner's answer          */
#define GT_SIG_FLUSH_SIGNAL SIGURG
enum { GT_SIG_NONE, GT_SIG_FLUSHED, GT_SIG_DECLINED, GT_SIG_LATE };

#if GT_REMOTE_FLUSH && (defined(__x86_64__) || defined(__aarch64__))
#define GT_SIG_FLUSH 1
#else
#define GT_SIG_FLUSH 0
#endif
#if GT_SIG_FLUSH
/* The request to this thread: the cache collect wants flushed, taken by the handler. */
static __thread _Atomic(gt_mcache *) gt_sig_req __attribute__((tls_model(GT_TLS_MODEL)));
#endif

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static gt_heap *reg_heaps;
static uint64_t reg_gen;
static pthread_key_t tls_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;

static void make_key(void);
static uint64_t sigblk_self(void);
static void remote_flush(gt_heap *h, uint64_t gen);

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
    GT_SLOW_SCOPE;
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
    GT_SLOW_SCOPE;
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
    GT_SLOW_SCOPE; /* the page cache's refill, the heap lock, mmap, pthread_create */
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
static gt_mcache *mcache_new(gt_heap *h, uint64_t epoch)
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
        pthread_mutex_init(&mc->own, NULL);
        /* 0: never flushed remotely (no exit flush without the key; see gt_exiting) */
        mc->tid = GT_REMOTE_FLUSH && key_ok && !gt_exiting ? (int)gettid() : 0;
        mc->slow = &gt_slow_depth;
        mc->sigblk = sigblk_self();
        mc->gen_seen = epoch;
        mc->flushed_gen = mc->visit = 0;
        atomic_init(&mc->retry, 0);
        atomic_init(&mc->sig_ack, GT_SIG_NONE);
#if GT_SIG_FLUSH
        mc->sig_req = &gt_sig_req;
#endif
        mc->prev = NULL;
        mc->next = h->caches;
        if (h->caches) h->caches->prev = mc;
        h->caches = mc;
    }
    pthread_mutex_unlock(&h->lock);
    return mc;
}

/* ---- Remote flush ----
 * Go's collector stops the world and flushes every P's mcache; here a cache's fast path takes
 * no lock, so its owner must be known to be outside the heap for another thread to touch it.
 * collect() visits each other thread's cache (holding its `own`, so that the owner's epoch
 * refresh or release waits) and gets it flushed in one of two ways:
 * - Asleep: the owner sleeps in a system call (an idle worker in read(), poll(), a condition
 *   wait...) with no heap slow path in flight (gt_slow_depth == 0; the fast paths make no
 *   system call), is not in a signal handler (its blocked-signal set is the one it had at its
 *   last epoch refresh), and has not taken the current epoch yet (gen_seen, written under
 *   `own`). collect flushes the cache itself. The owner's next call then misses the epoch
 *   match, takes `own` and finds the flush done. Proof that the sleep covered the depth read:
 *   /proc/self/task/TID/status (context switches, SigBlk), then .../syscall (asleep, and in a
 *   system call: a number, and its user pc follows a syscall instruction), the depth,
 *   .../syscall again (the same pc), status again: the same switch count both times means the
 *   owner never ran in between (running again and sleeping again counts a switch), so the
 *   depth read is the one it slept with.
 * - Running (state R: on a CPU or preempted; remote_flush=on, the default): collect sends the
 *   owner a signal, SIGURG as Go's preemption does (ignored by default, rarely used). The
 *   handler runs on the owner itself, so it may touch the cache, provided the point it
 *   interrupted is outside the heap: its pc is not in gotiered's code (all of it is in one
 *   section, gt_text: the build renames the code sections of gotiered's objects), no slow path
 *   is in flight (depth 0; a slow path may be in libc, a lock or a system call), and the
 *   interrupted signal mask is the one of the last epoch refresh (not inside another
 *   handler). Then it flushes and answers GT_SIG_FLUSHED; else GT_SIG_DECLINED, and collect
 *   visits that cache again after a short pause (an owner inside a fast path is out in
 *   nanoseconds), up to GT_FLUSH_ROUNDS visits. One request at a time in the process
 *   (sig_lock) through one TLS word per thread (gt_sig_req): collect stores the cache there,
 *   signals, and waits up to GT_SIG_WAIT_NS for the answer; without one (a preempted owner
 *   not scheduled yet) it clears the word and visits again later. A handler that comes after
 *   that finds the word cleared and does nothing.
 *   Only a thread in state R is signalled: a sleeping one could have a system call cut short
 *   that SA_RESTART does not restart (nanosleep, poll, epoll_wait...); the window between the
 *   /proc read and the delivery remains, which is why remote_flush=sleep exists. The handler
 *   is installed on the first signal flush, only over SIG_DFL or SIG_IGN, and collect checks
 *   before every signal that it is still there (a program's own SIGURG handler wins: no
 *   signal flush then). Not signalled: an owner that blocks SIGURG.
 * A thread that cannot be reached this way (it sleeps inside the heap, blocks SIGURG, or /proc
 * cannot be read) keeps its cache until its next call, as before. Not caught: a handler
 * installed with SA_NODEFER and no sa_mask that interrupts a fast path and then sleeps in a
 * system call or is signalled (it leaves the blocked set unchanged); remote_flush=off turns
 * the whole mechanism off. Cost: five small /proc reads per other cache per collect (more with
 * retries), a signal per running owner, and a sigprocmask per cache per collect in its owner;
 * nothing on the fast paths. Under ThreadSanitizer it is all compiled out (GT_REMOTE_FLUSH 0):
 * TSan delivers signals late, at its own points inside instrumented code, so the handler's pc
 * says nothing, and it cannot see the context switch that orders the asleep case. */

#if GT_REMOTE_FLUSH
/* set as /proc's SigBlk bits (signal n -> bit n - 1). Can't fail. */
static uint64_t sigset_bits(const sigset_t *set)
{
    uint64_t m = 0;
    for (int n = 1; n <= 64; n++)
        if (sigismember(set, n) == 1) m |= UINT64_C(1) << (n - 1);
    return m;
}
#endif

/* The calling thread's blocked signals as /proc's SigBlk bits (signal n -> bit n - 1).
 * Returns UINT64_MAX (matches no SigBlk read) when it cannot be read. */
static uint64_t sigblk_self(void)
{
#if GT_REMOTE_FLUSH
    sigset_t set;
    if (pthread_sigmask(SIG_BLOCK, NULL, &set) != 0) return UINT64_MAX;
    return sigset_bits(&set);
#else
    return UINT64_MAX;
#endif
}

#if GT_REMOTE_FLUSH
/* Read /proc/self/task/<tid>/<what> (no allocation: the path is built by hand) into buf,
 * NUL-terminated. Returns the length, or -1. */
static long task_read(int tid, const char *what, char *buf, size_t len)
{
    char path[64] = "/proc/self/task/", digits[16];
    size_t n = strlen(path), k = 0;
    unsigned v = (unsigned)tid;
    do digits[k++] = (char)('0' + v % 10); while ((v /= 10) && k < sizeof digits);
    while (k) path[n++] = digits[--k];
    path[n++] = '/';
    size_t wl = strlen(what);
    if (n + wl + 1 > sizeof path) return -1;
    memcpy(path + n, what, wl + 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long got = (long)read(fd, buf, len - 1);
    close(fd);
    if (got < 0) return -1;
    buf[got] = 0;
    return got;
}

/* Unsigned number after `key` in a /proc status text, base 10 or 16; 0 when absent. */
static uint64_t status_field(const char *text, const char *key, int base)
{
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, base) : 0;
}

typedef struct task_status {
    uint64_t switches, sigblk;
    char state; /* R running or runnable, S asleep, D uninterruptible, ... */
} task_status;

/* 0 with *st filled, or -1. */
static int task_status_get(int tid, task_status *st)
{
    char buf[4096];
    if (task_read(tid, "status", buf, sizeof buf) <= 0) return -1;
    if (!strstr(buf, "nonvoluntary_ctxt_switches:")) return -1;
    st->switches = status_field(buf, "\nvoluntary_ctxt_switches:", 10) +
                   status_field(buf, "nonvoluntary_ctxt_switches:", 10);
    st->sigblk = status_field(buf, "SigBlk:", 16);
    const char *p = strstr(buf, "State:");
    if (!p) return -1;
    p += strlen("State:");
    while (*p == ' ' || *p == '\t') p++;
    st->state = *p;
    return 0;
}

/* Is pc just past a system-call instruction? Read through process_vm_readv, which fails
 * instead of faulting on an unmapped address. Only x86-64 and arm64 know the instruction; on
 * other machines the answer is no (no remote flush). */
static int after_syscall_insn(uint64_t pc)
{
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
    static const unsigned char insn[] = {0x0f, 0x05}; /* syscall */
#else
    static const unsigned char insn[] = {0x01, 0x00, 0x00, 0xd4}; /* svc #0 */
#endif
    unsigned char got[sizeof insn];
    struct iovec local = {got, sizeof got}, remote = {(void *)(uintptr_t)(pc - sizeof insn),
                                                       sizeof got};
    if (pc < sizeof insn) return 0;
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof got) return 0;
    return memcmp(got, insn, sizeof insn) == 0;
#else
    (void)pc;
    return 0;
#endif
}

/* Is thread tid asleep inside a system call right now? Returns the user pc of that call (its
 * identity for the second look), else 0. /proc/TID/syscall reads "nr args... sp pc" for a
 * sleeping task; a task asleep in a page fault (on mmap_lock, say, in the middle of a fast
 * path) reads "-1 sp pc" on this kernel, but nr is the saved orig_ax, which kernels have
 * filled differently for exceptions. So the pc must also follow a system-call instruction. */
static uint64_t task_in_syscall(int tid)
{
    char buf[256];
    if (task_read(tid, "syscall", buf, sizeof buf) <= 0) return 0;
    if (buf[0] < '0' || buf[0] > '9') return 0; /* "running", or "-1 ..." (not in a syscall) */
    const char *last = strrchr(buf, ' ');
    if (!last) return 0;
    uint64_t pc = strtoull(last + 1, NULL, 16);
    return after_syscall_insn(pc) ? pc : 0;
}

/* mc's owner sleeps in a system call outside the heap and outside any signal handler, and
 * did not run while we looked (the header above). *st: the owner's status, as first read
 * (state 0 when it could not be read). */
static int owner_parked(const gt_mcache *mc, task_status *st)
{
    task_status b;
    uint64_t pc;
    st->state = 0;
    if (task_status_get(mc->tid, st) || st->sigblk != mc->sigblk ||
        !(pc = task_in_syscall(mc->tid)))
        return 0;
    unsigned depth = atomic_load_explicit(mc->slow, memory_order_acquire);
    if (task_in_syscall(mc->tid) != pc || task_status_get(mc->tid, &b)) return 0;
    return depth == 0 && st->switches == b.switches && b.sigblk == mc->sigblk;
}
#endif

#if GT_SIG_FLUSH
/* gotiered's code: the build puts every code section of its objects in gt_text, and the
 * linker defines these around it. Weak: a build without the renaming has neither (NULL), and
 * then no signal flush. */
extern const char __start_gt_text[] __attribute__((weak, visibility("hidden")));
extern const char __stop_gt_text[] __attribute__((weak, visibility("hidden")));

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER; /* one request at a time */
static int sig_state; /* under sig_lock: 0 not yet tried, 1 handler installed, -1 unusable */

static void sig_flush_handler(int signo, siginfo_t *si, void *ucv);

/* The interrupted pc of a signal's ucontext. */
static uintptr_t uc_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#else
    return (uintptr_t)uc->uc_mcontext.pc;
#endif
}

/* collect's signal, on the owner: flush the requested cache when the interrupted point is
 * outside the heap (the header above), and answer. Async-signal context: the heap's locks it
 * takes are never held by this thread here (pc outside gotiered, depth 0). Can't fail. */
static void sig_flush_handler(int signo, siginfo_t *si, void *ucv)
{
    (void)signo;
    (void)si;
    int saved_errno = errno;
    gt_mcache *mc = atomic_exchange_explicit(&gt_sig_req, NULL, memory_order_acquire);
    if (mc) {
        const ucontext_t *uc = ucv;
        uintptr_t pc = uc_pc(uc);
        int outside = !(pc >= (uintptr_t)__start_gt_text && pc < (uintptr_t)__stop_gt_text) &&
                      atomic_load_explicit(&gt_slow_depth, memory_order_relaxed) == 0 &&
                      sigset_bits(&uc->uc_sigmask) == mc->sigblk;
        if (outside) {
            GT_SLOW_SCOPE;
            gt_mcache_flush(mc);
        }
        atomic_store_explicit(&mc->sig_ack, outside ? GT_SIG_FLUSHED : GT_SIG_DECLINED,
                              memory_order_release);
    }
    errno = saved_errno;
}

/* Is our handler the one for the flush signal? Installs it on first use, over SIG_DFL or
 * SIG_IGN only; never again once the program has put its own there (a fork child decides
 * afresh: gt_mcache_atfork_child). Under sig_lock. */
static int sig_handler_ready(void)
{
    struct sigaction cur;
    if (sig_state < 0 || !__start_gt_text || !__stop_gt_text) return 0;
    if (sigaction(GT_SIG_FLUSH_SIGNAL, NULL, &cur) != 0) return 0;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == sig_flush_handler) {
        sig_state = 1;
        return 1;
    }
    if (sig_state == 1) return 0; /* the program has put its own there since */
    int dfl = !(cur.sa_flags & SA_SIGINFO) &&
              (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sig_flush_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    int ok = dfl && sigaction(GT_SIG_FLUSH_SIGNAL, &sa, NULL) == 0;
    sig_state = ok ? 1 : -1; /* -1: the program's own handler, or no way to install */
    return ok;
}

/* Ask mc's owner (running, SIGURG not blocked) to flush mc: GT_SIG_FLUSHED, GT_SIG_DECLINED
 * (it was inside the heap), GT_SIG_LATE (no answer in time: not scheduled yet, say; the
 * request is withdrawn) or GT_SIG_NONE (no handler of ours). Under mc->own. */
static int signal_flush(gt_mcache *mc)
{
    int ans = GT_SIG_NONE;
    pthread_mutex_lock(&sig_lock);
    if (!sig_handler_ready()) goto out;
    atomic_store_explicit(&mc->sig_ack, GT_SIG_NONE, memory_order_relaxed);
    atomic_store_explicit(mc->sig_req, mc, memory_order_release);
    if (syscall(SYS_tgkill, getpid(), mc->tid, GT_SIG_FLUSH_SIGNAL) != 0) {
        atomic_store_explicit(mc->sig_req, NULL, memory_order_relaxed);
        goto out;
    }
    uint64_t end = al_now_ns() + GT_SIG_WAIT_NS;
    while (!(ans = atomic_load_explicit(&mc->sig_ack, memory_order_acquire)) && al_now_ns() < end) {
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
    if (!ans) {
        gt_mcache *want = mc;
        if (atomic_compare_exchange_strong_explicit(mc->sig_req, &want, NULL,
                                                    memory_order_acq_rel, memory_order_acquire))
            ans = GT_SIG_LATE;
        else
            while (!(ans = atomic_load_explicit(&mc->sig_ack, memory_order_acquire)))
                sched_yield(); /* the handler took the request: it is running now */
    }
out:
    pthread_mutex_unlock(&sig_lock);
    return ans;
}
#endif

#if GT_REMOTE_FLUSH
/* One visit of collect (epoch gen) to mc, under mc->own: flush it if its owner is parked, or
 * have the owner flush it by signal if it runs. Returns 1 when a later visit may succeed (the
 * owner sleeps but not provably outside the heap, declined the signal or did not answer in
 * time), else 0. */
static int visit_cache(gt_heap *h, gt_mcache *mc, uint64_t gen)
{
    /* Only a cache whose owner still has an older epoch: its next call misses the fast-path
     * match and waits for own. (An owner that took the current epoch already would go on in
     * its fast path without own, in the middle of a flush.) */
    if (mc->gen_seen == gt_heap_epoch(h) || mc->flushed_gen == gen) return 0;
    task_status st;
    if (owner_parked(mc, &st)) {
        gt_mcache_flush(mc);
        mc->flushed_gen = gen;
        atomic_fetch_add_explicit(&h->remote_flushes, 1, memory_order_relaxed);
        return 0;
    }
    if (!st.state) return 0;              /* /proc cannot be read: no hope */
    if (st.state == 'S' || st.state == 'D') return 1; /* not provably outside the heap */
#if GT_SIG_FLUSH
    if (h->remote_flush == GT_RF_ON && st.state == 'R') {
        /* in a handler (ours too, delivered late: it blocks all): it would decline; later */
        if (st.sigblk != mc->sigblk) return 1;
        if (st.sigblk >> (GT_SIG_FLUSH_SIGNAL - 1) & 1) return 0; /* blocks SIGURG for good */
        int ans = signal_flush(mc);
        if (ans == GT_SIG_FLUSHED) {
            mc->flushed_gen = gen;
            atomic_fetch_add_explicit(&h->signal_flushes, 1, memory_order_relaxed);
            return 0;
        }
        return ans == GT_SIG_DECLINED || ans == GT_SIG_LATE;
    }
#endif
    return 0;
}
#endif

/* collect's part for the other threads' caches of h (epoch gen now): each one whose owner is
 * parked outside the heap, or (remote_flush=on) running outside it, is flushed; a cache whose
 * owner was inside the heap is visited again after a pause, up to GT_FLUSH_ROUNDS visits.
 * Visits are marked gen x rounds + round, which only grows: of two concurrent collects the
 * later one visits every cache and the earlier one skips what the later one saw. Can't fail. */
static void remote_flush(gt_heap *h, uint64_t gen)
{
#if GT_REMOTE_FLUSH
    if (h->remote_flush == GT_RF_OFF || !key_ok) return;
    int self = (int)gettid();
    for (unsigned round = 0; round < GT_FLUSH_ROUNDS; round++) {
        uint64_t mark = gen * GT_FLUSH_ROUNDS + round;
        int again = 0;
        for (;;) {
            gt_mcache *mc;
            pthread_mutex_lock(&h->lock);
            for (mc = h->caches; mc; mc = mc->next)
                if (mc->tid && mc->tid != self && mc->visit < mark &&
                    (round == 0 || atomic_load_explicit(&mc->retry, memory_order_relaxed)))
                    break;
            int pinned = 0;
            if (mc) {
                mc->visit = mark;
                /* trylock: the owner takes own, then the heap lock (release, refresh) */
                pinned = pthread_mutex_trylock(&mc->own) == 0;
            }
            pthread_mutex_unlock(&h->lock);
            if (!mc) break;
            if (!pinned) continue; /* its owner is refreshing or releasing it right now */
            int r = visit_cache(h, mc, gen);
            atomic_store_explicit(&mc->retry, r, memory_order_relaxed);
            again |= r;
            pthread_mutex_unlock(&mc->own);
        }
        if (!again) return;
        struct timespec nap = {0, GT_FLUSH_PAUSE_NS};
        nanosleep(&nap, NULL);
    }
#else
    (void)h;
    (void)gen;
#endif
}

/* Flush mc and free it; its counters move to the heap's retired totals. Can't fail. */
static void mcache_release(gt_heap *h, gt_mcache *mc)
{
    GT_SLOW_SCOPE;
    pthread_mutex_lock(&mc->own); /* a remote flush of mc (collect) finishes first */
    gt_mcache_flush(mc);
    pthread_mutex_lock(&h->lock); /* no collect can find mc from here on */
    if (mc->prev) mc->prev->next = mc->next;
    else h->caches = mc->next;
    if (mc->next) mc->next->prev = mc->prev;
    gt_counts c = gt_mcache_counts(mc);
    h->r_nmalloc += c.nmalloc;
    h->r_nfree += c.nfree;
    h->r_bytes_alloc += c.bytes_alloc;
    h->r_bytes_freed += c.bytes_freed;
    pthread_mutex_unlock(&mc->own);
    pthread_mutex_destroy(&mc->own);
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
    gt_exiting = 1;
    for (int i = 0; i < GT_TLS_N; i++)
        if (tls_tab[i].heap) tls_flush_entry(i);
}

static void make_key(void) { key_ok = pthread_key_create(&tls_key, tls_destructor) == 0; }

/* The calling thread's cache for h, made on first use; NULL when out of memory. */
GT_NOINLINE gt_mcache *gt_mcache_get_slow(gt_heap *h)
{
    GT_SLOW_SCOPE;
    for (int i = 0; i < GT_TLS_N; i++) {
        if (tls_tab[i].heap == h && tls_tab[i].id == h->id) {
            uint64_t epoch = gt_heap_epoch(h);
            if (tls_tab[i].gen != epoch) { /* a collect() since: honour it first */
                gt_mcache *mc = tls_tab[i].mc;
                pthread_mutex_lock(&mc->own);
                if (mc->flushed_gen != epoch) gt_mcache_flush(mc); /* not done for us */
                mc->sigblk = sigblk_self();
                mc->gen_seen = epoch; /* from here on the fast paths use mc without own */
                tls_tab[i].gen = epoch;
                pthread_mutex_unlock(&mc->own);
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
    uint64_t epoch = gt_heap_epoch(h);
    gt_mcache *mc = mcache_new(h, epoch);
    if (!mc) return NULL;
    tls_tab[slot] = (gt_tls_fast){h, epoch, mc, h->id};
    gt_tls = tls_tab[slot];
    return mc;
}

/* thread_detach: release the calling thread's cache of h, if it has one. Can't fail. */
void gt_mcache_detach(gt_heap *h)
{
    GT_SLOW_SCOPE;
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
    GT_SLOW_SCOPE;
    pthread_mutex_lock(&reg_lock);
    uint64_t gen = ++reg_gen;
    atomic_store_explicit(&h->gen, gen, memory_order_relaxed);
    pthread_mutex_unlock(&reg_lock);
    for (int i = 0; i < GT_TLS_N; i++) {
        if (tls_tab[i].heap == h && tls_tab[i].id == h->id) {
            (void)gt_mcache_get_slow(h); /* finds entry i: flushes it and refreshes gt_tls */
            break;
        }
    }
    remote_flush(h, gen);
}

void gt_mcache_atfork_child(gt_heap *h)
{
#if GT_SIG_FLUSH
    pthread_mutex_init(&sig_lock, NULL); /* a collect in another thread may have held it */
    /* decided again from what is installed: fork copies the signal dispositions before the
     * memory, so a collect installing the handler meanwhile can leave the child with
     * sig_state 1 and no handler */
    sig_state = 0;
#endif
    for (gt_mcache *mc = h->caches; mc; mc = mc->next) {
        pthread_mutex_init(&mc->own, NULL); /* a collect in another thread may have held it */
        mc->tid = 0;
    }
}
