/* unit_syncpool_debug.c - syncpool built with -DSP_DEBUG=1 (a unity build of the backend's
 * sources into this test, so the library itself stays the release configuration): blocks are
 * handed out filled with 0xAA and sit in the pools filled with 0x55; a write after put aborts
 * naming the pointer (under AddressSanitizer the write itself is reported first: pooled blocks
 * are poisoned); normal use, with threads and cleanups, stays quiet. */
#define SP_DEBUG 1
#include "syncpool/sp_pool.c"
#include "syncpool/sp_ring.c"
#include "syncpool/syncpool.c"

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const al_backend *const B = &al_backend_syncpool;

static void *mk(const char *opts)
{
    char err[256] = "";
    void *h = B->create(opts, err, sizeof err);
    cr_assert(h, "create: %s", err);
    return h;
}

/* 1 when every byte of p[0..n) is v. Can't fail. */
static int all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != v) return 0;
    return 1;
}

Test(syncpool_debug, fills_0xaa_on_get_and_0x55_in_the_pool)
{
    void *h = mk(NULL);
    const size_t sizes[] = {1, 16, 100, 1024, 4096, 20000};
    for (unsigned k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k], usable;
        unsigned char *p = B->alloc(h, n); /* fresh from the underlying allocator */
        cr_assert_not_null(p);
        usable = B->usable_size(h, p);
        cr_assert(all_bytes(p, usable, SP_FILL_ALLOC), "fresh %zu B block not 0xAA", n);
        memset(p, 0x11, n);
        B->free(h, p, n);
        /* Peek into the pooled block (unpoisoned for the look under ASan). */
        SP_UNPOISON(p, usable);
        cr_assert(all_bytes(p, usable, SP_FILL_FREE), "pooled %zu B block not 0x55", n);
        SP_POISON(p, usable);
        unsigned char *q = B->alloc(h, n); /* the same block, from the private slot */
        cr_assert_eq(q, p, "the private slot should give the block back");
        cr_assert(all_bytes(q, usable, SP_FILL_ALLOC), "reused %zu B block not 0xAA", n);
        B->free(h, q, n);
    }
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), 0, "%s", msg);
    B->destroy(h);
}

static void *churn_thread(void *a)
{
    void *h = a;
    void *v[64] = {0};
    unsigned s = 7;
    for (int i = 0; i < 20000; i++) {
        s = s * 1103515245u + 12345u;
        int k = (int)((s >> 8) % 64);
        if (v[k]) {
            cr_assert(all_bytes(v[k], 16, 0x77));
            B->free(h, v[k], 0);
            v[k] = NULL;
        } else {
            v[k] = B->alloc(h, 16u << ((s >> 20) % 8));
            cr_assert(all_bytes(v[k], 16, SP_FILL_ALLOC));
            memset(v[k], 0x77, 16);
        }
        if (i % 4096 == 0) B->collect(h);
    }
    for (int k = 0; k < 64; k++) B->free(h, v[k], 0);
    return NULL;
}

Test(syncpool_debug, normal_use_with_threads_and_cleanups_is_quiet, .timeout = 120)
{
    void *h = mk(NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) cr_assert_eq(pthread_create(&t[i], NULL, churn_thread, h), 0);
    churn_thread(h);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    char msg[256] = "";
    cr_assert_eq(B->check(h, msg, sizeof msg), 0, "%s", msg);
    B->destroy(h);
}

/* Run fn in a child with stderr captured; returns its wait status, the output in buf. */
static int run_child(void (*fn)(void), char *buf, size_t len)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn();
        _exit(0); /* reaching here means nothing was detected */
    }
    close(fd[1]);
    size_t got = 0;
    ssize_t r;
    while (got < len - 1 && (r = read(fd[0], buf + got, len - 1 - got)) > 0) got += (size_t)r;
    buf[got] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void write_after_put_body(void)
{
    void *h = mk(NULL);
    unsigned char *p = B->alloc(h, 200);
    B->free(h, p, 200);
    p[100] = 1;                   /* the bug: a write after put */
    (void)B->alloc(h, 200);       /* the same block comes back: verified, must abort */
}

Test(syncpool_debug, write_after_put_is_caught_and_names_the_pointer)
{
    char out[4096];
    int st = run_child(write_after_put_body, out, sizeof out);
#if defined(__SANITIZE_ADDRESS__)
    /* The pooled block is poisoned: ASan reports the write itself and exits non-zero. */
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "child was not stopped: %s", out);
    cr_expect(strstr(out, "use-after-poison"), "ASan should report a use-after-poison, got: %s",
              out);
#else
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child did not abort (status %#x): %s",
              st, out);
    cr_expect(strstr(out, "syncpool: write after put: block 0x"),
              "message should name the block, got: %s", out);
    cr_expect(strstr(out, "byte 100 holds 0x01"), "message should name the byte, got: %s", out);
#endif
}

static void write_after_put_slow_path_body(void)
{
    void *h = mk(NULL);
    unsigned char *a = B->alloc(h, 64), *b = B->alloc(h, 64), *c = B->alloc(h, 64);
    B->free(h, a, 64); /* private slot 0 */
    B->free(h, b, 64); /* private slot 1 */
    B->free(h, c, 64); /* shared chain */
    c[63] = 0;
    (void)B->alloc(h, 64); /* a, fine */
    (void)B->alloc(h, 64); /* b, fine */
    (void)B->alloc(h, 64); /* c, from the shared chain: must abort */
}

Test(syncpool_debug, write_after_put_into_the_shared_chain_is_caught)
{
    char out[4096];
    int st = run_child(write_after_put_slow_path_body, out, sizeof out);
#if defined(__SANITIZE_ADDRESS__)
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "child was not stopped: %s", out);
    cr_expect(strstr(out, "use-after-poison"), "got: %s", out);
#else
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "child did not abort (status %#x): %s",
              st, out);
    cr_expect(strstr(out, "byte 63 holds 0x00"), "got: %s", out);
#endif
}

static void clean_put_get_body(void)
{
    void *h = mk(NULL);
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = B->alloc(h, 200);
        memset(p, i, 200);
        B->free(h, p, 200);
    }
    B->destroy(h);
}

/* The control: the same child without the bug exits 0 (so the tests above can fail). */
Test(syncpool_debug, the_same_child_without_the_bug_exits_0)
{
    char out[4096];
    int st = run_child(clean_put_get_body, out, sizeof out);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x: %s", st, out);
}
