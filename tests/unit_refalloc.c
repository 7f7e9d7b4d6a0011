/* unit_refalloc.c - the reference-allocator backends (mimalloc, tcmalloc, jemalloc):
 * loading them does not replace the process's malloc, their entries work through the vtable,
 * missing libraries and a missing preload are reported as create() failures with a reason. */
#include "allocator.h"
#include "refalloc.h"

#include <criterion/criterion.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *make_heap(const char *name, const al_backend **bp)
{
    const al_backend *b = al_backend_find(name);
    cr_assert(b, "backend %s is not registered", name);
    char err[256] = "";
    void *h = b->create(NULL, err, sizeof err);
    cr_assert(h, "%s create failed: %s", name, err);
    *bp = b;
    return h;
}

/* The process's malloc is still the one libc.so.6 defines. */
static void assert_malloc_is_glibc(void)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    cr_assert(libc);
    void *glibc_malloc = dlsym(libc, "malloc");
    void *global_malloc = dlsym(RTLD_DEFAULT, "malloc");
    Dl_info info;
    cr_assert(dladdr(global_malloc, &info));
    cr_assert(!strstr(info.dli_fname, "mimalloc") && !strstr(info.dli_fname, "tcmalloc"),
              "malloc resolves to %s", info.dli_fname);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* no sanitizer malloc and no LD_PRELOAD in front: it must be glibc's own */
    if (!getenv("LD_PRELOAD"))
        cr_assert_eq(global_malloc, glibc_malloc, "malloc was interposed by a loaded library");
#else
    (void)glibc_malloc;
#endif
    dlclose(libc);
}

/* Alloc/realloc/aligned/usable/huge smoke through the vtable. */
static void exercise(const al_backend *b, void *h)
{
    void *z1 = b->alloc(h, 0), *z2 = b->alloc(h, 0);
    cr_assert(z1 && z2 && z1 != z2);
    unsigned char *p = b->alloc(h, 1000);
    cr_assert(p && ((uintptr_t)p % AL_MIN_ALIGN) == 0);
    for (int i = 0; i < 1000; i++) p[i] = (unsigned char)i;
    cr_assert_geq(b->usable_size(h, p), 1000);
    p = b->realloc(h, p, 1000, 100000);
    cr_assert(p);
    for (int i = 0; i < 1000; i++) cr_assert_eq(p[i], (unsigned char)i);
    void *a = b->alloc_aligned(h, 4096, 100);
    cr_assert(a && ((uintptr_t)a % 4096) == 0);
    cr_assert_null(b->alloc(h, (size_t)PTRDIFF_MAX + 1));
    cr_assert_null(b->realloc(h, p, 100000, SIZE_MAX));
    void *r0 = b->realloc(h, z1, 0, 0); /* a minimal block, not a free */
    cr_assert(r0);
    b->free(h, r0, 0);
    b->free(h, z2, 0);
    b->free(h, a, 100);
    b->free(h, p, 100000);
    b->free(h, NULL, 0);
    if (b->collect) b->collect(h);
}

typedef struct xfree { const al_backend *b; void *h; void *ptrs[256]; } xfree;

static void *free_all(void *arg)
{
    xfree *x = arg;
    for (int i = 0; i < 256; i++) x->b->free(x->h, x->ptrs[i], 64);
    if (x->b->thread_detach) x->b->thread_detach(x->h);
    return NULL;
}

static void cross_thread(const al_backend *b, void *h)
{
    xfree x = {b, h, {0}};
    for (int i = 0; i < 256; i++) {
        x.ptrs[i] = b->alloc(h, 64);
        memset(x.ptrs[i], i, 64);
    }
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_all, &x), 0);
    pthread_join(t, NULL);
}

Test(refalloc, mimalloc_leaves_malloc_alone)
{
    const al_backend *b;
    void *h = make_heap("mimalloc", &b);
    void *lib = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    cr_assert(lib, "libmimalloc.so.2 should be loaded by create()");
    /* mi_check_owned walks this thread's heap; mi_is_in_heap_region would be cheaper but only
     * covers addresses below mimalloc's segment-map limit (not true under ASan). */
    bool (*in_heap)(const void *) = (bool (*)(const void *))dlsym(lib, "mi_check_owned");
    cr_assert(in_heap);
    void *mp = b->alloc(h, 100);
    char *gp = malloc(100);
    cr_assert(in_heap(mp), "a mimalloc block is not in mimalloc's heap");
    cr_assert(!in_heap(gp), "malloc() returned a mimalloc block: malloc was replaced");
    cr_assert_geq(malloc_usable_size(gp), 100);
    assert_malloc_is_glibc();
    free(gp);
    b->free(h, mp, 100);
    dlclose(lib);
    cr_assert(!strncmp(b->version(), "mimalloc 2.", 11), "version \"%s\"", b->version());
}

Test(refalloc, mimalloc_entries) {
    const al_backend *b;
    void *h = make_heap("mimalloc", &b);
    exercise(b, h);
    cross_thread(b, h);
    b->destroy(h);
}

Test(refalloc, tcmalloc_leaves_malloc_alone)
{
    const al_backend *b;
    void *h = make_heap("tcmalloc", &b);
    void *lib = dlopen("libtcmalloc_minimal.so.4", RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    cr_assert(lib);
    /* MallocExtension_Ownership: 0 unknown, 1 owned, 2 not owned */
    int (*owner)(const void *) = (int (*)(const void *))dlsym(lib, "MallocExtension_GetOwnership");
    cr_assert(owner);
    void *tp = b->alloc(h, 100);
    char *gp = malloc(100);
    cr_assert_eq(owner(tp), 1, "a tcmalloc block is not owned by tcmalloc");
    cr_assert_eq(owner(gp), 2, "malloc() returned a tcmalloc block: malloc was replaced");
    cr_assert_geq(malloc_usable_size(gp), 100);
    assert_malloc_is_glibc();
    free(gp);
    b->free(h, tp, 100);
    dlclose(lib);
    cr_assert(!strncmp(b->version(), "gperftools tcmalloc_minimal 2.", 30), "version \"%s\"",
              b->version());
}

Test(refalloc, tcmalloc_entries_and_stats)
{
    const al_backend *b;
    void *h = make_heap("tcmalloc", &b);
    exercise(b, h);
    cross_thread(b, h);
    al_stats st;
    void *big = b->alloc(h, 1 << 20);
    cr_assert_eq(b->stats(h, &st), 0);
    cr_assert(st.present & AL_STAT_BIT(alloc_bytes));
    cr_assert_geq(st.alloc_bytes, 1 << 20);
    b->free(h, big, 1 << 20);
    b->destroy(h);
}

/* glibc's main arena and tcmalloc both grow the break with sbrk; interleave them and check
 * that neither corrupts the other's blocks. */
Test(refalloc, tcmalloc_and_glibc_share_the_break)
{
    const al_backend *b;
    void *h = make_heap("tcmalloc", &b);
    enum { N = 20000 };
    static unsigned char *g[N], *t[N];
    for (int i = 0; i < N; i++) {
        size_t n = 16 + (size_t)(i * 7919) % 3000;
        g[i] = malloc(n);
        t[i] = b->alloc(h, n);
        cr_assert(g[i] && t[i]);
        memset(g[i], 0x11, n);
        memset(t[i], 0x22, n);
    }
    for (int i = 0; i < N; i++) {
        size_t n = 16 + (size_t)(i * 7919) % 3000;
        cr_assert(g[i][0] == 0x11 && g[i][n - 1] == 0x11 && t[i][0] == 0x22 &&
                  t[i][n - 1] == 0x22, "block %d corrupted", i);
        free(g[i]);
        b->free(h, t[i], n);
    }
}

Test(refalloc, missing_library_is_a_create_failure)
{
    void *fn = NULL;
    const ref_sym syms[] = {{"mi_malloc", &fn, 0}};
    char err[128] = "";
    cr_assert_eq(ref_load("liballoclab-no-such-lib.so.9", syms, 1, err, sizeof err), -1);
    cr_assert_str_eq(err, "not installed: liballoclab-no-such-lib.so.9");
    cr_assert_null(fn);
    /* present library, absent symbol */
    const ref_sym bad[] = {{"mi_no_such_symbol", &fn, 0}};
    cr_assert_eq(ref_load("libmimalloc.so.2", bad, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "mi_no_such_symbol"), "err \"%s\"", err);
}

Test(refalloc, jemalloc_backend)
{
    const al_backend *b = al_backend_find("jemalloc");
    cr_assert(b);
    cr_assert(b->caps & AL_CAP_PRELOAD);
    cr_assert(b->preload && strstr(b->preload, "/libjemalloc.so.2"), "preload %s", b->preload);
    char err[256] = "";
    void *h = b->create(NULL, err, sizeof err);
    if (!dlsym(RTLD_DEFAULT, "mallctl")) {
        cr_assert_null(h);
        cr_assert(strstr(err, "not running under jemalloc"), "err \"%s\"", err);
    } else {
        cr_assert(h, "create under jemalloc failed: %s", err);
        cr_assert(!strncmp(b->version(), "jemalloc 5.", 11), "version \"%s\"", b->version());
        exercise(b, h);
        cross_thread(b, h);
        al_stats st;
        cr_assert_eq(b->stats(h, &st), 0);
        cr_assert(st.present & AL_STAT_BIT(alloc_bytes));
    }
}
