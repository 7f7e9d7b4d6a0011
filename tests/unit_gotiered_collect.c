/* unit_gotiered_collect.c - collect() and the caches of other threads (mcache.c, "Remote
 * flush"): a thread asleep in a system call outside the heap has its cache flushed by
 * collect at once; a thread asleep inside a heap slow path is left alone; a thread that keeps
 * allocating while another collects over and over never sees a block twice. Under
 * ThreadSanitizer the remote flush is compiled out (GT_REMOTE_FLUSH 0) and the tests check
 * the epoch-only behaviour instead. */
#include "gotiered/gotiered_internal.h"

#include <criterion/criterion.h>
#include "gt_test.h"
#include "wait_child.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { RUNNING = -1000, ANY_CALL = -1001, ASLEEP = -1002 };

/* What thread tid is doing: the system call it sleeps in (its number), -1 when it sleeps
 * outside one (a page fault), RUNNING otherwise. Fails the test when /proc cannot be read. */
static long sleeping_in(int tid)
{
    char path[64], buf[256] = "";
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: cannot open", path);
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    return (buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-' ? strtol(buf, NULL, 10) : RUNNING;
}

/* Wait (up to 10 s) until thread tid sleeps in system call nr (ANY_CALL: any system call,
 * ASLEEP: asleep at all). */
static void wait_asleep(int tid, long nr, const char *who)
{
    for (int i = 0; i < 100000; i++) {
        long s = sleeping_in(tid);
        if (nr == ASLEEP ? s != RUNNING : s >= 0 && (nr == ANY_CALL || s == nr)) return;
        usleep(100);
    }
    cr_assert_fail("%s (thread %d) never went to sleep as expected (%ld)", who, tid, nr);
}

/* h's cache owned by thread tid; fails the test when there is none. */
static gt_mcache *cache_of(gt_heap *h, int tid)
{
    pthread_mutex_lock(&h->lock);
    gt_mcache *mc = h->caches;
    while (mc && mc->tid != tid) mc = mc->next;
    pthread_mutex_unlock(&h->lock);
    cr_assert(mc || !GT_REMOTE_FLUSH, "no cache of thread %d", tid);
    return mc;
}

/* Another thread's cache of h holds spans and no object: collect, then expect that cache
 * flushed and counted once in *counter (flushed), or left alone (counter 0). */
static void collect_and_expect(gt_heap *h, _Atomic uint64_t *counter, int flushed,
                               const char *opts, const char *owner)
{
    al_stats st;
    B->stats(h, &st);
    cr_assert_gt(st.heap_inuse, 0, "%s: the owner's cache holds no span", opts);
    cr_assert_eq(st.heap_objects, 0u, "%s", opts);
    B->collect(h);
    B->stats(h, &st);
    uint64_t n = atomic_load(counter);
    if (flushed) {
        cr_expect_eq(n, 1u, "%s: %llu flushes", opts, (unsigned long long)n);
        cr_expect_eq(st.heap_inuse, 0u, "%s: after collect %llu bytes of spans are still in "
                     "use: the %s owner's cache was not flushed", opts,
                     (unsigned long long)st.heap_inuse, owner);
    } else {
        cr_expect_eq(n, 0u, "%s", opts);
        cr_expect_gt(st.heap_inuse, 0u, "%s: the %s owner's cache was flushed", opts, owner);
    }
}

/* h passes check and holds no object; then it is destroyed. */
static void check_empty_and_destroy(gt_heap *h, const char *opts)
{
    must_check(h);
    al_stats st;
    B->stats(h, &st);
    cr_expect_eq(st.heap_objects, 0u, "%s", opts);
    B->destroy(h);
}

/* ---- an idle thread's cache ---- */

typedef struct idle_ctx {
    void *h;
    int tid;
    int go[2];     /* main -> owner: one byte per step */
    _Atomic int step; /* 1: cache filled, 2: allocated again */
    void *q;
} idle_ctx;

/* Fills its cache (a span and a reuse list of 112 B, a span of 3072 B, a cached 40 KiB large
 * span), frees everything, then sleeps in read() until told to go on. */
static void *idle_owner(void *arg)
{
    idle_ctx *c = arg;
    enum { N = 2000 };
    static void *p[N];
    c->tid = (int)gettid();
    for (int i = 0; i < N; i++) p[i] = B->alloc(c->h, 100);
    for (int i = 0; i < N; i++) B->free(c->h, p[i], 100);
    B->free(c->h, B->alloc(c->h, 3000), 3000);
    B->free(c->h, B->alloc(c->h, 40 << 10), 40 << 10);
    atomic_store(&c->step, 1);
    char b;
    cr_assert_eq(read(c->go[0], &b, 1), 1); /* asleep outside the heap */
    c->q = B->alloc(c->h, 100);              /* the next call: the cache works on */
    memset(c->q, 0x5a, 100);
    atomic_store(&c->step, 2);
    cr_assert_eq(read(c->go[0], &b, 1), 1);
    B->free(c->h, c->q, 100);
    return NULL;
}

static void idle_thread(const char *opts, int remote)
{
    idle_ctx c = {.h = mk(opts)};
    gt_heap *h = c.h;
    cr_assert_eq(pipe(c.go), 0);
    pthread_t t;
    pthread_create(&t, NULL, idle_owner, &c);
    while (atomic_load(&c.step) < 1) usleep(100);
    wait_asleep(c.tid, ANY_CALL, "the owner");
    collect_and_expect(h, &h->remote_flushes, remote, opts, "sleeping");
    cr_expect_eq(atomic_load(&h->signal_flushes), 0u, "%s: a sleeping owner was signalled",
                 opts);
    must_check(h);
    al_stats st;
    cr_assert_eq(write(c.go[1], "x", 1), 1);
    while (atomic_load(&c.step) < 2) usleep(100); /* the owner allocated again */
    wait_asleep(c.tid, ANY_CALL, "the owner");
    cr_assert_eq(((unsigned char *)c.q)[99], 0x5a);
    B->stats(h, &st);
    cr_expect_eq(st.heap_objects, 1u, "%s", opts);
    B->collect(h); /* flushes the owner again (remote) or not: its one object stays */
    B->stats(h, &st);
    cr_expect_eq(st.heap_objects, 1u, "%s", opts);
    cr_expect_leq(st.heap_inuse, (uint64_t)GT_PAGE, "%s: more than the owner's current span "
                  "in use", opts);
    cr_assert_eq(write(c.go[1], "x", 1), 1);
    pthread_join(t, NULL);
    must_check(h);
    close(c.go[0]);
    close(c.go[1]);
    B->destroy(h);
}

Test(gotiered_collect, a_sleeping_threads_cache_is_flushed)
{
    idle_thread("free=reuse,scavenger=off", GT_REMOTE_FLUSH);
    idle_thread("free=sweep,scavenger=off", GT_REMOTE_FLUSH);
    idle_thread("free=reuse,scavenger=off,remote_flush=off", 0);
}

/* ---- a thread asleep inside a slow path ---- */

typedef struct slow_ctx {
    void *h;
    int tid;
    _Atomic int started, done;
    void *p;
} slow_ctx;

static void *slow_owner(void *arg)
{
    slow_ctx *c = arg;
    c->tid = (int)gettid();
    B->free(c->h, B->alloc(c->h, 24), 24); /* a cache, with a span of another class */
    atomic_store(&c->started, 1);
    c->p = B->alloc(c->h, 100); /* refill: class 112's central lock is held by the test */
    memset(c->p, 0x33, 100);
    atomic_store(&c->done, 1);
    return NULL;
}

typedef struct coll_ctx {
    void *h;
    _Atomic int tid;
} coll_ctx;

static void *collector(void *arg)
{
    coll_ctx *c = arg;
    atomic_store(&c->tid, (int)gettid());
    B->collect(c->h);
    return NULL;
}

/* The owner sleeps on an mcentral lock in the middle of a refill (its cache half-way through
 * an operation); a collect from a third thread must leave that cache alone. */
Test(gotiered_collect, a_thread_asleep_inside_the_heap_is_left_alone)
{
    void *hh = mk("scavenger=off");
    gt_heap *h = hh;
    /* a partial span of class 112 in mcentral, so the owner's refill takes its lock */
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = B->alloc(hh, 100);
    for (int i = 0; i < N; i += 2) B->free(hh, p[i], 100);
    B->thread_detach(hh);
    unsigned spc = gt_alloc_class8[(100 + 7) >> 3];
    pthread_mutex_t *stripe = h->central[spc].lock;
    pthread_mutex_lock(stripe);
    slow_ctx c = {.h = hh};
    pthread_t owner, coll;
    pthread_create(&owner, NULL, slow_owner, &c);
    while (!atomic_load(&c.started)) usleep(100);
    wait_asleep(c.tid, ANY_CALL, "the owner");
    gt_mcache *mc = cache_of(h, c.tid);
    if (mc) cr_assert_gt(atomic_load(mc->slow), 0u, "the owner sleeps outside a slow path");
    coll_ctx cc = {.h = hh};
    pthread_create(&coll, NULL, collector, &cc);
    while (!atomic_load(&cc.tid)) usleep(100);
    int ctid = atomic_load(&cc.tid);
    /* past the remote flush, the collector waits for the stripe in its sweep (a futex) */
    wait_asleep(ctid, SYS_futex, "the collector");
    cr_expect_eq(atomic_load(&h->remote_flushes), 0u,
                 "collect flushed a cache whose owner was inside a refill");
    cr_expect_eq(atomic_load(&c.done), 0, "the owner was not blocked");
    pthread_mutex_unlock(stripe);
    pthread_join(coll, NULL);
    pthread_join(owner, NULL);
    cr_assert_eq(((unsigned char *)c.p)[99], 0x33);
    for (int i = 1; i < N; i += 2) B->free(hh, p[i], 100);
    B->free(hh, c.p, 100);
    must_check(hh);
    B->destroy(hh);
}

/* ---- a thread asleep in a page fault ---- */

typedef struct fault_ctx {
    void *h;
    volatile char *page; /* registered with userfaultfd: the first touch sleeps */
    int tid;
    _Atomic int step;
} fault_ctx;

static void *fault_owner(void *arg)
{
    fault_ctx *c = arg;
    c->tid = (int)gettid();
    enum { N = 500 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = B->alloc(c->h, 100);
    for (int i = 0; i < N; i++) B->free(c->h, p[i], 100);
    atomic_store(&c->step, 1);
    c->page[0] = 1; /* asleep in the fault until the test fills the page */
    atomic_store(&c->step, 2);
    return NULL;
}

/* A page fault may come in the middle of a fast path, and a thread can sleep in one (on
 * mmap_lock, on userfaultfd): collect must leave that cache alone. /proc/TID/syscall shows
 * such a thread as "-1 sp pc" here; mcache.c also requires the pc to follow a system-call
 * instruction, for kernels that show a fault's saved error code there instead. The fault here
 * is on a page registered with userfaultfd, filled by the test after the collect. */
Test(gotiered_collect, a_thread_asleep_in_a_page_fault_is_left_alone)
{
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (uffd < 0) cr_skip_test("userfaultfd: %s", strerror(errno));
    struct uffdio_api api = {.api = UFFD_API};
    cr_assert_eq(ioctl(uffd, UFFDIO_API, &api), 0, "UFFDIO_API: %s", strerror(errno));
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(page != MAP_FAILED);
    struct uffdio_register reg = {.range = {(uintptr_t)page, pg},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    cr_assert_eq(ioctl(uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s", strerror(errno));
    fault_ctx c = {.h = mk("scavenger=off"), .page = page};
    gt_heap *h = c.h;
    pthread_t t;
    pthread_create(&t, NULL, fault_owner, &c);
    while (atomic_load(&c.step) < 1) usleep(100);
    wait_asleep(c.tid, ASLEEP, "the owner (in the fault)");
    al_stats st;
    B->stats(h, &st);
    uint64_t before = st.heap_inuse;
    cr_assert_gt(before, 0u, "the owner's cache holds no span");
    B->collect(h);
    B->stats(h, &st);
    cr_expect_eq(atomic_load(&h->remote_flushes), 0u,
                 "collect flushed the cache of a thread asleep in a page fault");
    cr_expect_eq(st.heap_inuse, before, "the owner's spans went back while it was in a fault");
    cr_expect_eq(atomic_load(&c.step), 1, "the owner was not held in the fault");
    struct uffdio_zeropage zp = {.range = {(uintptr_t)page, pg}};
    cr_assert_eq(ioctl(uffd, UFFDIO_ZEROPAGE, &zp), 0, "UFFDIO_ZEROPAGE: %s", strerror(errno));
    pthread_join(t, NULL);
    cr_assert_eq(page[0], 1);
    must_check(h);
    B->destroy(h);
    munmap(page, pg);
    close(uffd);
}

/* ---- a busy thread and a collector that never stops ---- */

typedef struct busy_ctx {
    void *h;
    _Atomic int stop;
    int nap; /* 0: never sleeps (reached by signal only) */
    long errors, rounds;
} busy_ctx;

/* Keeps up to 256 blocks of 8 B .. 48 KiB live, each filled with its own byte, and checks
 * every block before freeing it; naps now and then so collect finds it asleep. */
static void *busy_owner(void *arg)
{
    busy_ctx *c = arg;
    enum { K = 256 };
    unsigned char *blk[K] = {0};
    size_t len[K] = {0};
    uint64_t x = 88172645463325252ull;
    while (!atomic_load(&c->stop)) {
        for (int r = 0; r < 64; r++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            unsigned i = (unsigned)(x % K);
            if (blk[i]) {
                unsigned char v = (unsigned char)(i * 7 + 1);
                for (size_t k = 0; k < len[i]; k += 61)
                    if (blk[i][k] != v) c->errors++;
                if (blk[i][len[i] - 1] != v) c->errors++;
                B->free(c->h, blk[i], len[i]);
                blk[i] = NULL;
            } else {
                len[i] = (x >> 20) % 4 == 0 ? 8 + (x >> 24) % (48u << 10) : 8 + (x >> 24) % 600;
                blk[i] = B->alloc(c->h, len[i]);
                if (!blk[i]) {
                    c->errors++;
                    continue;
                }
                memset(blk[i], (int)(i * 7 + 1), len[i]);
            }
        }
        c->rounds++;
        if (c->nap && c->rounds % 8 == 0) usleep(50);
    }
    for (int i = 0; i < K; i++)
        if (blk[i]) B->free(c->h, blk[i], len[i]);
    return NULL;
}

/* Two threads allocate, verify and free without end (napping now and then when nap) while
 * this one collects 600 times. */
static void busy_run(const char *opts, int nap)
{
    busy_ctx c[2] = {{.h = mk(opts), .nap = nap}, {.h = NULL, .nap = nap}};
    c[1].h = c[0].h;
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, busy_owner, &c[i]);
    int n = 600 / SCALE;
    for (int i = 0; i < n; i++) {
        B->collect(c[0].h);
        usleep(200);
    }
    for (int i = 0; i < 2; i++) atomic_store(&c[i].stop, 1);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    gt_heap *h = c[0].h;
    for (int i = 0; i < 2; i++)
        cr_expect_eq(c[i].errors, 0, "%s: thread %d saw %ld corrupted or failed blocks",
                     opts, i, c[i].errors);
    uint64_t asleep = atomic_load(&h->remote_flushes),
             bysig = atomic_load(&h->signal_flushes);
    if (GT_REMOTE_FLUSH && nap)
        cr_expect_gt(asleep, 0u, "%s: no collect ever found a thread napping", opts);
    if (GT_REMOTE_FLUSH)
        cr_expect_gt(bysig, 0u, "%s: no running thread ever flushed on collect's signal",
                     opts);
    else
        cr_expect_eq(asleep + bysig, 0u, "%s", opts);
    check_empty_and_destroy(h, opts);
}

Test(gotiered_collect, collect_while_threads_allocate_and_nap)
{
    busy_run("free=reuse", 1);
    busy_run("free=sweep", 1);
}

/* No naps: the owners are always running, in the heap or in the test's loop, and collect
 * reaches them only by signal; a flush must never land inside a heap call. */
Test(gotiered_collect, collect_while_threads_allocate_without_a_pause)
{
    busy_run("free=reuse", 0);
    busy_run("free=sweep", 0);
}

/* ---- a thread computing outside the heap ---- */

typedef struct spin_ctx {
    void *h;
    int tid;
    int block; /* 1: the owner blocks SIGURG first */
    _Atomic int step, stop;
    _Atomic unsigned long spins;
    void *q;
} spin_ctx;

/* Fills its cache (as idle_owner), then computes without calls until told to stop, then
 * allocates again and checks the block. */
static void *spin_owner(void *arg)
{
    spin_ctx *c = arg;
    c->tid = (int)gettid();
    if (c->block) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGURG);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    enum { N = 2000 };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = B->alloc(c->h, 100);
    for (int i = 0; i < N; i++) B->free(c->h, p[i], 100);
    B->free(c->h, B->alloc(c->h, 3000), 3000);
    B->free(c->h, B->alloc(c->h, 40 << 10), 40 << 10);
    atomic_store(&c->step, 1);
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed))
        atomic_fetch_add_explicit(&c->spins, 1, memory_order_relaxed);
    c->q = B->alloc(c->h, 100); /* the cache works on after the flush */
    memset(c->q, 0x5a, 100);
    cr_assert_eq(((unsigned char *)c->q)[99], 0x5a);
    B->free(c->h, c->q, 100);
    return NULL;
}

static int app_handler_calls;
static void app_handler(int sig)
{
    (void)sig;
    app_handler_calls++;
}

/* The owner spins outside the heap (never sleeps); collect flushes its cache through the
 * signal when `expect` is 1, leaves it when 0. */
static void spin_thread(const char *opts, int block, int expect)
{
    spin_ctx c = {.h = mk(opts), .block = block};
    gt_heap *h = c.h;
    pthread_t t;
    pthread_create(&t, NULL, spin_owner, &c);
    while (atomic_load(&c.step) < 1) usleep(100);
    while (atomic_load(&c.spins) < 1000) usleep(100); /* in its loop */
    collect_and_expect(h, &h->signal_flushes, expect, opts, "running");
    cr_expect_eq(atomic_load(&h->remote_flushes), 0u, "%s: a running owner counted as asleep",
                 opts);
    must_check(h);
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    check_empty_and_destroy(h, opts);
}

Test(gotiered_collect, a_running_threads_cache_is_flushed_by_signal)
{
    spin_thread("free=reuse,scavenger=off", 0, GT_REMOTE_FLUSH);
    spin_thread("free=sweep,scavenger=off", 0, GT_REMOTE_FLUSH);
    spin_thread("free=reuse,scavenger=off,remote_flush=sleep", 0, 0);
    spin_thread("free=reuse,scavenger=off,remote_flush=off", 0, 0);
}

Test(gotiered_collect, a_thread_that_blocks_the_signal_is_left_alone)
{
    spin_thread("scavenger=off", 1, 0);
}

/* A program with its own SIGURG handler keeps it, and gets no signal from collect. */
Test(gotiered_collect, a_programs_own_sigurg_handler_is_kept)
{
    struct sigaction sa = {.sa_handler = app_handler};
    cr_assert_eq(sigaction(SIGURG, &sa, NULL), 0);
    spin_thread("scavenger=off", 0, 0);
    struct sigaction cur;
    cr_assert_eq(sigaction(SIGURG, NULL, &cur), 0);
    cr_expect(!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == app_handler,
              "collect replaced the program's SIGURG handler");
    cr_expect_eq(app_handler_calls, 0, "collect signalled a thread with the program's handler");
}

/* ---- a thread inside a signal handler ---- */

static _Atomic int in_usr1, leave_usr1;

/* The program's handler: spins until told to leave (it could have interrupted a fast path). */
static void usr1_spin(int sig)
{
    (void)sig;
    atomic_store(&in_usr1, 1);
    while (!atomic_load(&leave_usr1)) {
    }
}

/* The owner computes inside the program's own SIGUSR1 handler, which may have interrupted a
 * heap call: its blocked set differs from its last epoch refresh's, so collect must not have
 * the cache flushed (neither asleep nor by signal). */
Test(gotiered_collect, a_thread_inside_a_signal_handler_is_left_alone)
{
    /* TSan runs a handler only at its own points, not inside the owner's spin loop */
    if (!GT_REMOTE_FLUSH) cr_skip_test("no remote flush in this build (TSan)");
    struct sigaction sa = {.sa_handler = usr1_spin};
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    spin_ctx c = {.h = mk("scavenger=off")};
    gt_heap *h = c.h;
    pthread_t t;
    pthread_create(&t, NULL, spin_owner, &c);
    while (atomic_load(&c.step) < 1 || atomic_load(&c.spins) < 1000) usleep(100);
    pthread_kill(t, SIGUSR1);
    while (!atomic_load(&in_usr1)) usleep(100);
    collect_and_expect(h, &h->signal_flushes, 0, "scavenger=off", "in-handler");
    cr_expect_eq(atomic_load(&h->remote_flushes), 0u);
    atomic_store(&leave_usr1, 1);
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    check_empty_and_destroy(h, "scavenger=off");
}

/* ---- a cache made in the last round of TLS destructors ---- */

static pthread_key_t late_key;
static void *late_heap;
static _Atomic int late_rounds;

/* Another key's destructor: asks for every round glibc gives (PTHREAD_DESTRUCTOR_ITERATIONS)
 * and allocates in each, the last one after gotiered's own exit flush has run: that cache
 * is never released. */
static void late_destructor(void *v)
{
    atomic_fetch_add(&late_rounds, 1);
    void *p = B->alloc(late_heap, 100);
    B->free(late_heap, p, 100);
    pthread_setspecific(late_key, v); /* once more, while rounds are left */
}

static void *late_owner(void *arg)
{
    (void)arg;
    B->free(late_heap, B->alloc(late_heap, 100), 100);
    pthread_setspecific(late_key, (void *)1);
    return NULL;
}

/* The leaked cache of a dead thread: collect must never look at it from another thread (its
 * tid may be a new thread's by then, its request word in freed memory). */
Test(gotiered_collect, a_dead_threads_leaked_cache_is_never_visited)
{
    /* TSan's runtime crashes on any call in the late destructor rounds (plain malloc too) */
    if (!GT_REMOTE_FLUSH) cr_skip_test("no remote flush in this build (TSan)");
    late_heap = mk("scavenger=off");
    gt_heap *h = late_heap;
    cr_assert_eq(pthread_key_create(&late_key, late_destructor), 0);
    pthread_t t;
    pthread_create(&t, NULL, late_owner, NULL);
    pthread_join(t, NULL);
    cr_assert_geq(atomic_load(&late_rounds), 2, "the destructor ran %d times",
                  atomic_load(&late_rounds));
    int leaked = 0;
    pthread_mutex_lock(&h->lock);
    for (gt_mcache *mc = h->caches; mc; mc = mc->next) {
        leaked++;
        cr_expect_eq(mc->tid, 0, "a dead thread's cache keeps its tid %d: collect would "
                     "read and signal whatever thread has it now", mc->tid);
    }
    pthread_mutex_unlock(&h->lock);
    cr_expect_eq(leaked, 1, "expected the one leaked cache, found %d", leaked);
    B->collect(late_heap);
    cr_expect_eq(atomic_load(&h->remote_flushes) + atomic_load(&h->signal_flushes), 0u);
    must_check(late_heap);
    B->destroy(late_heap);
}

/* ---- fork while collect signals ---- */

typedef struct fork_ctx {
    void *h;
    _Atomic int stop, started;
} fork_ctx;

static void *collect_loop(void *arg)
{
    fork_ctx *c = arg;
    B->collect(c->h);
    atomic_fetch_add(&c->started, 1);
    while (!atomic_load(&c->stop)) B->collect(c->h);
    return NULL;
}

static void *spin_loop(void *arg)
{
    fork_ctx *c = arg;
    B->free(c->h, B->alloc(c->h, 200), 200);
    atomic_fetch_add(&c->started, 1);
    while (!atomic_load(&c->stop)) B->free(c->h, B->alloc(c->h, 200), 200);
    return NULL;
}

/* In the child: a running thread of its own, which collect must flush by signal. */
static int fork_child(void *heap)
{
    gt_heap *h = heap;
    spin_ctx s = {.h = heap};
    pthread_t t;
    pthread_create(&t, NULL, spin_owner, &s);
    while (atomic_load(&s.step) < 1 || atomic_load(&s.spins) < 1000) usleep(100);
    uint64_t before = atomic_load(&h->signal_flushes);
    /* one collect may give up on a thread starved of the CPU (16 visits): a few more here,
     * so that only a child that can never flush by signal fails */
    for (int k = 0; k < 10 && atomic_load(&h->signal_flushes) == before; k++) B->collect(heap);
    int ok = atomic_load(&h->signal_flushes) == before + 1;
    atomic_store(&s.stop, 1);
    pthread_join(t, NULL);
    return ok ? 0 : 3;
}

/* fork (through atfork, as a drop-in does) while another thread's collect may hold the
 * signal flush's lock: the child's own collect must finish and flush its running thread. */
Test(gotiered_collect, fork_while_collect_signals)
{
    if (!GT_REMOTE_FLUSH) cr_skip_test("no remote flush in this build (TSan)");
    fork_ctx c = {.h = mk("scavenger=off")};
    pthread_t coll, spin;
    pthread_create(&spin, NULL, spin_loop, &c);
    pthread_create(&coll, NULL, collect_loop, &c);
    /* both in their loops: a fork while a thread is still in AddressSanitizer's thread
     * start-up (which holds its allocator's lock) leaves the child's own new thread stuck */
    while (atomic_load(&c.started) < 2) usleep(100);
    for (int i = 0; i < 20; i++) {
        usleep(2000);
        int st = 0, r = fork_via_atfork(B, c.h, fork_child, c.h, 10000, &st);
        cr_assert_neq(r, FORK_CHILD_HUNG, "fork %d: the child's collect hung for 10 s", i);
        cr_assert_eq(r, FORK_OK, "fork %d: the child's collect did not flush its running "
                     "thread (result %d, status %d)", i, r, st);
    }
    atomic_store(&c.stop, 1);
    pthread_join(coll, NULL);
    pthread_join(spin, NULL);
    check_empty_and_destroy(c.h, "scavenger=off");
}
