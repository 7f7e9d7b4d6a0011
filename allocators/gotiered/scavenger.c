/* scavenger.c - returns free pages to the OS with madvise(MADV_DONTNEED), as Go's scavenger.
 *
 * collect() scavenges every free page (debug.FreeOSMemory). The background scavenger (option
 * scavenger=on, the default) is one thread per heap, started lazily the first time free
 * resident pages exceed the goal below (gt_scav_wake), and joined by destroy(); it wakes every 100 ms and, under the heap lock, releases at most 512
 * pages (4 MiB) per wake-up, keeping free-but-unreleased pages <= inuse/10 + 1 MiB (Go keeps
 * about 10% over the heap goal). Released pages are marked in each arena's `scav` bitmap and
 * come back zero-filled when a span takes them again; a new arena's pages start released (never
 * touched), so HeapReleased counts them, as Go's does.
 *   pages_released == sum over arenas of popcount(scav).
 */
#include "gotiered_internal.h"

#include <time.h>

#define GT_SCAV_PERIOD_NS 100000000L
#define GT_SCAV_MAX_PAGES 512
#define GT_SCAV_SLACK_PAGES 128

/* Release up to budget pages; returns how many. Under the heap lock. */
size_t gt_scavenge(gt_heap *h, size_t budget)
{
    size_t n = 0;
    for (gt_arena *a = h->arenas; a && n < budget; a = a->next) n += gt_pages_scavenge(a, budget - n);
    h->pages_released += n;
    GT_EVENT(h, bytes_scavenged, (uint64_t)n * GT_PAGE);
    return n;
}

/* Free pages still resident beyond the goal (inuse/10 + 1 MiB); 0 when within it. Under
 * the heap lock. Can't fail. */
static uint64_t scav_excess(const gt_heap *h)
{
    uint64_t unreleased = h->pages_total - h->pages_inuse - h->pages_released;
    uint64_t goal = h->pages_inuse / 10 + GT_SCAV_SLACK_PAGES;
    return unreleased > goal ? unreleased - goal : 0;
}

/* Background scavenger thread: wakes every 100 ms until destroy. */
static void *scav_main(void *arg)
{
    gt_heap *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->scav_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GT_SCAV_PERIOD_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->scav_cond, &h->lock, &ts);
        if (h->scav_stop) break;
        uint64_t want = scav_excess(h);
        if (want) gt_scavenge(h, want < GT_SCAV_MAX_PAGES ? (size_t)want : GT_SCAV_MAX_PAGES);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

/* Called when pages go back to the page heap: asks for the background thread the first time
 * free resident pages exceed the goal (before that it would have nothing to do; a heap that
 * never frees 1 MiB of pages never pays for the thread: its stack, and the ~350 KiB of libc
 * and harness code pages its creation faults in). Under the heap lock, so it only sets
 * scav_want: pthread_create allocates (the thread's TLS), and in the drop-in build that
 * allocation is gotiered's own, which may need the heap lock (a thread exit's cache flush
 * once deadlocked so). Can't fail. */
void gt_scav_wake(gt_heap *h)
{
    if (h->scav_started || !h->bg_scav || h->scav_stop || !scav_excess(h)) return;
    atomic_store_explicit(&h->scav_want, 1, memory_order_relaxed);
}

/* gt_scav_kick's slow part, without any gotiered lock held: start the thread once. If
 * pthread_create fails the heap simply runs without it. Can't fail. */
GT_NOINLINE void gt_scav_kick_slow(gt_heap *h)
{
    pthread_mutex_lock(&h->lock);
    int go = atomic_load_explicit(&h->scav_want, memory_order_relaxed) && !h->scav_started &&
             h->bg_scav && !h->scav_stop;
    atomic_store_explicit(&h->scav_want, 0, memory_order_relaxed);
    if (go) h->scav_started = 1; /* taken: a nested or racing kick does nothing */
    pthread_mutex_unlock(&h->lock);
    if (!go) return;
    pthread_t t;
    int rc = pthread_create(&t, NULL, scav_main, h);
    pthread_mutex_lock(&h->lock);
    if (rc == 0) h->scav_thread = t;
    else h->scav_started = 0;
    pthread_mutex_unlock(&h->lock);
}

/* Stop and join the background thread (destroy). Can't fail. */
void gt_scav_stop(gt_heap *h)
{
    pthread_mutex_lock(&h->lock);
    h->scav_stop = 1;
    int started = h->scav_started;
    pthread_t t = h->scav_thread;
    pthread_cond_signal(&h->scav_cond);
    pthread_mutex_unlock(&h->lock);
    if (started) pthread_join(t, NULL);
}
