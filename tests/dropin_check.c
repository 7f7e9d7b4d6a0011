/* dropin_check.c - run under LD_PRELOAD=build/liballoclab-<backend>.so by tests/dropin_test.sh:
 * checks that the drop-in really is the process's malloc and that the whole malloc API keeps
 * its contract (alignment, zeroing, overflow, realloc content, aligned variants, usable size,
 * threads with cross-thread frees, fork from a multi-threaded process). Prints the first broken
 * promise and exits 1; exits 0 when all hold. Deliberately no Criterion: nothing but libc. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wait_child.h"

#define CHECK(c, ...)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "dropin_check: line %d: ", __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            exit(1);                                                    \
        }                                                               \
    } while (0)

/* volatile sizes keep gcc from folding the overflow checks away */
static volatile size_t huge = SIZE_MAX / 2 + 2, two = 2, maxsz = SIZE_MAX;

static atomic_int forking = 1; /* main is forking: churn with large blocks too */

static void *churn(void *arg)
{
    void **mine = arg, *slots[128] = {0};
    for (int i = 0; i < 200000; i++) {
        int k = i % 128;
        free(slots[k]);
        /* mostly small; every 4th large (> 32 KiB: a page-heap path under its lock in
         * most allocators, so forks below often meet a lock held by this thread) */
        int big = i % 4 == 0 && atomic_load_explicit(&forking, memory_order_relaxed);
        size_t n = 1 + (size_t)((unsigned)i * 2654435761u % (big ? 100000 : 2000));
        slots[k] = malloc(n);
        CHECK(slots[k] && ((uintptr_t)slots[k] & 15) == 0, "thread malloc(%zu)", n);
        memset(slots[k], k, n < 64 ? n : 64);
    }
    for (int k = 0; k < 128; k++) free(slots[k]);
    for (int k = 0; k < 1000; k++) free(mine[k]); /* cross-thread frees */
    return NULL;
}

int main(int argc, char **argv)
{
    const char *want = argc > 1 ? argv[1] : "liballoclab-";
    Dl_info info;
    CHECK(dladdr(dlsym(RTLD_DEFAULT, "malloc"), &info) && info.dli_fname, "dladdr(malloc)");
    CHECK(strstr(info.dli_fname, want), "malloc comes from %s, not %s", info.dli_fname, want);

    for (size_t n = 0; n < 5000; n += 1 + n / 8) {
        unsigned char *p = malloc(n);
        CHECK(p, "malloc(%zu) NULL", n);
        CHECK(((uintptr_t)p & 15) == 0, "malloc(%zu) = %p not 16-aligned", n, (void *)p);
        CHECK(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n);
        memset(p, 0xAB, n);
        unsigned char *q = realloc(p, 2 * n + 1);
        CHECK(q, "realloc grow");
        for (size_t i = 0; i < n; i++) CHECK(q[i] == 0xAB, "realloc lost byte %zu of %zu", i, n);
        q = realloc(q, n / 2 + 1);
        CHECK(q, "realloc shrink");
        for (size_t i = 0; i < n / 2 + 1 && i < n; i++) CHECK(q[i] == 0xAB, "shrink lost %zu", i);
        free(q);
    }
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 && z2 && z1 != z2, "malloc(0) not unique");
    free(z1);
    free(z2);
    free(NULL);

    errno = 0;
    CHECK(malloc(huge) == NULL && errno == ENOMEM, "malloc(huge) not NULL/ENOMEM");
    CHECK(calloc(huge, two) == NULL, "calloc overflow not caught");
    CHECK(calloc(maxsz, maxsz) == NULL, "calloc overflow not caught");
    for (int r = 0; r < 50; r++) {
        unsigned char *c = malloc(4096);
        memset(c, 0xFF, 4096);
        free(c);
        c = calloc(1024, 4);
        CHECK(c, "calloc");
        for (int i = 0; i < 4096; i++) CHECK(c[i] == 0, "calloc byte %d not zero", i);
        free(c);
    }
    void *rp = malloc(100);
    CHECK(realloc(rp, huge) == NULL, "realloc(huge) not NULL");
    free(rp); /* still valid after a failed realloc */
    CHECK(realloc(malloc(10), 0) == NULL, "realloc(p, 0) != NULL (glibc frees)");

    for (size_t a = sizeof(void *); a <= ((size_t)1 << 20); a <<= 1) {
        void *p = NULL;
        CHECK(posix_memalign(&p, a, 100) == 0 && p && ((uintptr_t)p & (a - 1)) == 0,
              "posix_memalign(%zu)", a);
        memset(p, 1, 100);
        CHECK(malloc_usable_size(p) >= 100, "usable of aligned");
        void *q = realloc(p, 10000);
        CHECK(q && ((unsigned char *)q)[99] == 1, "realloc of aligned block");
        free(q);
        p = aligned_alloc(a, 3 * a);
        CHECK(p && ((uintptr_t)p & (a - 1)) == 0, "aligned_alloc(%zu)", a);
        free(p);
        p = memalign(a, 7);
        CHECK(p && ((uintptr_t)p & (a - 1)) == 0, "memalign(%zu)", a);
        free(p);
    }
    void *p = (void *)1;
    CHECK(posix_memalign(&p, 24, 10) == EINVAL && p == (void *)1, "posix_memalign(24) != EINVAL");
    CHECK(posix_memalign(&p, 4, 10) == EINVAL, "posix_memalign(4) != EINVAL");
    CHECK(posix_memalign(&p, 64, huge) == ENOMEM, "posix_memalign(huge) != ENOMEM");
    p = memalign(48, 10); /* rounded up to 64 like glibc */
    CHECK(p && ((uintptr_t)p & 63) == 0, "memalign(48)");
    free(p);
    long pg = sysconf(_SC_PAGESIZE);
    p = valloc(10);
    CHECK(p && ((uintptr_t)p % (uintptr_t)pg) == 0, "valloc");
    free(p);
    p = pvalloc(10);
    CHECK(p && ((uintptr_t)p % (uintptr_t)pg) == 0 && malloc_usable_size(p) >= (size_t)pg,
          "pvalloc");
    free(p);
    CHECK(pvalloc(SIZE_MAX - 10) == NULL, "pvalloc overflow");

    /* threads: churn plus frees of blocks the main thread allocated */
    enum { T = 4 };
    pthread_t th[T];
    static void *given[T][1000];
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < 1000; k++) given[t][k] = malloc(16 + (size_t)k);
        CHECK(pthread_create(&th[t], NULL, churn, given[t]) == 0, "pthread_create");
    }
    /* fork while the other threads allocate: each child allocates and frees freely. A
     * backend whose locks are not handled at fork (no atfork hook) deadlocks some child:
     * waited for with a time limit, so that fails the check instead of hanging it. A drop-in
     * named in ALLOCLAB_FORK_UNSAFE (a backend known to lack the hook) only checks fork+_exit. */
    const char *unsafe = getenv("ALLOCLAB_FORK_UNSAFE");
    int child_allocs = !(unsafe && *unsafe && strstr(want, unsafe));
    int st;
    for (int f = 0; f < 40; f++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            if (child_allocs) {
                void *keep[64] = {0};
                for (int i = 0; i < 5000; i++) {
                    size_t n = 1 + (size_t)((unsigned)i * 2246822519u % (i % 8 ? 2000 : 40000));
                    free(keep[i % 64]);
                    keep[i % 64] = malloc(n);
                    if (!keep[i % 64]) _exit(3);
                    memset(keep[i % 64], f, n < 32 ? n : 32);
                }
                for (int k = 0; k < 64; k++) free(keep[k]);
            }
            _exit(0);
        }
        CHECK(wait_child(pid, 10000, &st),
              "child %d of a multi-threaded fork hung for 10 s (a lock held at fork())", f);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "child %d of a multi-threaded fork failed (status %d)", f, st);
    }
    atomic_store(&forking, 0);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    /* single-threaded fork: the child must allocate freely */
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 10000; i++) free(malloc((size_t)i));
        _exit(0);
    }
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "child of a single-threaded fork could not allocate");
    puts("dropin_check: all promises hold");
    return 0;
}
