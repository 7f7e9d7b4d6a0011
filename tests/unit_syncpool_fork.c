/* unit_syncpool_fork.c - syncpool's atfork entry, driven the way a drop-in's pthread_atfork
 * handlers drive it: one thread gets and puts in a loop (and takes every syncpool lock now and
 * then: a cleanup takes gc_lock, thread_detach + the next get take live_lock) while the main
 * thread forks 50 times; each child gets and puts a few thousand buffers, runs a cleanup,
 * registers a second thread-like P (thread_detach + get) and exits 0. The parent waits for each
 * child with a 10 s limit: a deadlock fails the test instead of hanging it. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syncpool/sp_internal.h"
#include "wait_child.h"

extern const al_backend al_backend_syncpool;
static const al_backend *const B = &al_backend_syncpool;

enum { FORKS = 50, CHILD_OPS = 4000 };

typedef struct churn {
    void *heap;
    _Atomic int stop;
    _Atomic long loops;
} churn;

static size_t size_at(unsigned i) { return 16 + (size_t)(i * 2654435761u % 9000); }

static void *churn_thread(void *a)
{
    churn *c = a;
    void *v[32] = {0};
    for (unsigned i = 0; !atomic_load_explicit(&c->stop, memory_order_relaxed); i++) {
        unsigned k = i % 32;
        B->free(c->heap, v[k], 0);
        v[k] = B->alloc(c->heap, size_at(i));
        if (v[k]) memset(v[k], (int)k, 16);
        if (i % 512 == 0) B->collect(c->heap);          /* gc_lock */
        if (i % 1024 == 0) B->thread_detach(c->heap);   /* next get: live_lock */
        atomic_fetch_add_explicit(&c->loops, 1, memory_order_relaxed);
    }
    for (int k = 0; k < 32; k++) B->free(c->heap, v[k], 0);
    B->thread_detach(c->heap);
    return NULL;
}

/* In the child: get, write, verify, put; a cleanup; a new registration. Returns the exit
 * status: 0, 3 when a get failed, 4 when data was not kept. */
static int child_body(void *h)
{
    void *v[64] = {0};
    for (unsigned i = 0; i < CHILD_OPS; i++) {
        unsigned k = i % 64;
        if (v[k]) {
            if (((unsigned char *)v[k])[0] != (unsigned char)k) return 4;
            B->free(h, v[k], 0);
        }
        if (!(v[k] = B->alloc(h, size_at(i)))) return 3;
        memset(v[k], (int)k, 16);
        if (i == CHILD_OPS / 2) {
            B->collect(h);
            B->thread_detach(h);
        }
    }
    for (int k = 0; k < 64; k++) B->free(h, v[k], 0);
    char msg[256];
    if (B->check(h, msg, sizeof msg) != 0) return 5;
    return 0;
}

Test(syncpool_fork, fork_while_a_thread_gets_and_puts, .timeout = 240)
{
    cr_assert_not_null(B->atfork, "syncpool has no atfork entry");
    char err[256] = "";
    void *h = B->create("gc_bytes=1m", err, sizeof err); /* frequent automatic cleanups too */
    cr_assert_not_null(h, "%s", err);
    static churn c;
    memset(&c, 0, sizeof c);
    c.heap = h;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, churn_thread, &c), 0);
    for (int i = 0; i < 100; i++) B->free(h, B->alloc(h, size_at((unsigned)i)), 0);
    int hung = 0, bad = 0, status = 0, forks = 0;
    for (int k = 0; k < FORKS && !bad; k++) {
        long seen = atomic_load(&c.loops);
        while (atomic_load(&c.loops) < seen + 200) usleep(100); /* the thread is busy in it */
        int st, r = fork_via_atfork(B, h, child_body, h, 10000, &st);
        cr_assert_neq(r, FORK_FAILED, "fork failed");
        forks++;
        hung = r == FORK_CHILD_HUNG;
        bad = r != FORK_OK;
        if (r == FORK_CHILD_FAILED) status = st;
    }
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
    cr_assert(!hung, "child %d hung for 10 s: a lock held at fork() was not taken by "
                     "atfork(PREPARE) or not reset in the child", forks);
    cr_assert(!bad, "child %d failed, wait status %#x (exit 3: get failed, 4: data lost, "
                    "5: check failed)", forks, status);
    cr_assert_eq(forks, FORKS);
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), 0, "parent after the forks: %s", msg);
    /* The parent's locks were released: a cleanup and a new registration still work. */
    B->collect(h);
    B->thread_detach(h);
    B->free(h, B->alloc(h, 100), 0);
    B->destroy(h);
}
