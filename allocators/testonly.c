/* testonly.c - deliberately broken backends for the harness's own tests. Hidden from every
 * listing and from `make bench` unless ALLOCLAB_TEST_BACKENDS=1 (AL_CAP_TEST_ONLY).
 *   crashtest  behaves as libc until its 100th allocation, then dies of SIGSEGV;
 *   hangtest   behaves as libc until its 100th allocation, then never returns;
 *   corrupttest  hands out every 100th block a second time (overlapping live data): the
 *              workloads' verification must turn that into a failed case, not a fast one.
 * The harness must turn both into error rows (naming the signal / the time limit) while every
 * other case of the run still reports. */
#include "allocator.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

static _Atomic unsigned long broken_allocs;

static void *broken_create(const char *options, char *err, size_t errlen)
{
    (void)options;
    (void)err;
    (void)errlen;
    atomic_store(&broken_allocs, 0);
    return &broken_allocs;
}

static void broken_destroy(void *heap) { (void)heap; }

static void broken_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    free(p);
}

static void *crash_alloc(void *heap, size_t size)
{
    (void)heap;
    if (atomic_fetch_add(&broken_allocs, 1) == 100) raise(SIGSEGV);
    return malloc(size ? size : 1);
}

static void *hang_alloc(void *heap, size_t size)
{
    (void)heap;
    if (atomic_fetch_add(&broken_allocs, 1) == 100)
        for (;;) pause();
    return malloc(size ? size : 1);
}

const al_backend al_backend_crashtest = {
    .abi = AL_ABI_VERSION,
    .name = "crashtest",
    .desc = "test only: libc until the 100th allocation, then SIGSEGV",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_TEST_ONLY,
    .create = broken_create,
    .destroy = broken_destroy,
    .alloc = crash_alloc,
    .free = broken_free,
};

const al_backend al_backend_hangtest = {
    .abi = AL_ABI_VERSION,
    .name = "hangtest",
    .desc = "test only: libc until the 100th allocation, then hangs forever",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_TEST_ONLY,
    .create = broken_create,
    .destroy = broken_destroy,
    .alloc = hang_alloc,
    .free = broken_free,
};

static _Atomic(void *) corrupt_recent[16];

static void *corrupt_alloc(void *heap, size_t size)
{
    (void)heap;
    unsigned long n = atomic_fetch_add(&broken_allocs, 1);
    /* every 100th: the block handed out 10 allocations ago, most likely still live */
    void *old = atomic_load(&corrupt_recent[(n - 10) % 16]);
    if (n % 100 == 99 && old) return old;
    /* never freed (free is a no-op, so the reuse above cannot double free): test-only */
    void *p = malloc(size < 65536 ? 65536 : size);
    atomic_store(&corrupt_recent[n % 16], p);
    return p;
}

static void corrupt_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)p;
    (void)size;
}

const al_backend al_backend_corrupttest = {
    .abi = AL_ABI_VERSION,
    .name = "corrupttest",
    .desc = "test only: every 100th allocation returns a block that is already live",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_TEST_ONLY | AL_CAP_FREE_NOOP,
    .create = broken_create,
    .destroy = broken_destroy,
    .alloc = corrupt_alloc,
    .free = corrupt_free,
};
