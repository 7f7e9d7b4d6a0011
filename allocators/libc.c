/* libc.c - the process's own malloc, as the baseline every chart is normalised to.
 *
 * Which malloc that "really" is depends on the process: glibc's ptmalloc2 by default, or
 * whatever LD_PRELOAD put in front of it (the `jemalloc` rows of the reference-allocator work
 * run this very backend in a child started with LD_PRELOAD). version() says which: the glibc
 * version from gnu_get_libc_version(), plus the LD_PRELOAD value when one is set.
 * The heap handle is a dummy: malloc has one process-wide heap, so destroy() frees nothing
 * (the conformance suite frees what it allocated). */
#include "allocator.h"

#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char libc_heap_token;

static void *libc_create(const char *options, char *err, size_t errlen)
{
    if (options && *options) {
        snprintf(err, errlen, "libc takes no options (got \"%s\")", options);
        return NULL;
    }
    return &libc_heap_token;
}

static void libc_destroy(void *heap) { (void)heap; }

static void *libc_alloc(void *heap, size_t size)
{
    (void)heap;
    if (size > PTRDIFF_MAX) return NULL;
    return malloc(size);
}

static void libc_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    free(p);
}

static void *libc_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    (void)heap;
    (void)old_size;
    if (new_size > PTRDIFF_MAX) return NULL;
    /* realloc(p, 0) frees p in glibc; the contract wants a minimal block instead. */
    return realloc(p, new_size ? new_size : 1);
}

static void *libc_alloc_aligned(void *heap, size_t align, size_t size)
{
    (void)heap;
    void *p = NULL;
    if (size > PTRDIFF_MAX) return NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static size_t libc_usable_size(void *heap, const void *p)
{
    (void)heap;
    return malloc_usable_size((void *)p);
}

static void libc_collect(void *heap)
{
    (void)heap;
    malloc_trim(0);
}

static const char *libc_version(void)
{
    static char buf[512];
    const char *pre = getenv("LD_PRELOAD");
    if (pre && *pre)
        snprintf(buf, sizeof buf, "glibc %s malloc, LD_PRELOAD=%s", gnu_get_libc_version(), pre);
    else
        snprintf(buf, sizeof buf, "glibc %s malloc (ptmalloc2)", gnu_get_libc_version());
    return buf;
}

const al_backend al_backend_libc = {
    .abi = AL_ABI_VERSION,
    .name = "libc",
    .desc = "the process's own malloc (glibc ptmalloc2, or what LD_PRELOAD put in front)",
    .caps = AL_CAP_THREAD_SAFE,
    .create = libc_create,
    .destroy = libc_destroy,
    .alloc = libc_alloc,
    .free = libc_free,
    .realloc = libc_realloc,
    .alloc_aligned = libc_alloc_aligned,
    .usable_size = libc_usable_size,
    .collect = libc_collect,
    .version = libc_version,
};
