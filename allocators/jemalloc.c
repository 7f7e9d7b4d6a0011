/* jemalloc.c - Jason Evans' jemalloc (Debian libjemalloc2, 5.3), a reference row that cannot
 * be dlopen'ed.
 *
 * Why a preload backend: libjemalloc.so.2 uses initial-exec TLS and, once loaded, expects to be
 * the process's malloc; dlopen'ing it fails ("cannot allocate memory in static TLS block") or
 * mixes heaps. So the harness starts this backend's case children with
 * LD_PRELOAD=<.preload> (AL_CAP_PRELOAD), where plain malloc() *is* jemalloc, and the entries
 * below are the libc backend's calls (malloc, free, realloc, posix_memalign,
 * malloc_usable_size) under the name `jemalloc`.
 *
 * Glossary
 *   preload   the library's path, found at start-up (jem_find_library): the multiarch directory
 *             of the running libc (dladdr of a libc function, e.g. /lib/x86_64-linux-gnu ->
 *             "x86_64-linux-gnu"), then /usr/lib/<multiarch>/, the libc directory itself,
 *             /usr/lib64, /usr/lib, /usr/local/lib; the first that holds libjemalloc.so.2.
 *   mallctl   jemalloc's control interface; dlsym(RTLD_DEFAULT, "mallctl") is how create()
 *             tells that it really runs under jemalloc.
 * Alloc/free paths: jemalloc's own (thread cache bins -> arena bins -> extents).
 * create() fails, and the harness records the rows as skipped with the reason, when the library
 * is missing ("not installed: libjemalloc.so.2") or the process is not running under it
 * ("not running under jemalloc: ..."; e.g. the conformance suite started without
 * tests/preload_test.sh).
 * Invariants: create() succeeded => dlsym(RTLD_DEFAULT,"malloc") and "mallctl" are defined by
 * the same loaded object.
 */
#include "allocator.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JEM_SONAME "libjemalloc.so.2"

#if defined(__x86_64__)
#define JEM_MULTIARCH_DEFAULT "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define JEM_MULTIARCH_DEFAULT "aarch64-linux-gnu"
#elif defined(__i386__)
#define JEM_MULTIARCH_DEFAULT "i386-linux-gnu"
#else
#define JEM_MULTIARCH_DEFAULT ""
#endif

static char jem_preload_path[256] = "/usr/lib/" JEM_MULTIARCH_DEFAULT "/" JEM_SONAME;
static int jem_found; /* jem_preload_path names an existing file */

typedef int (*jem_mallctl_fn)(const char *, void *, size_t *, void *, size_t);
static jem_mallctl_fn jem_mallctl;
static char jem_heap_token;

static int jem_try(const char *dir)
{
    char buf[sizeof jem_preload_path];
    int n = snprintf(buf, sizeof buf, "%s/%s", dir, JEM_SONAME);
    if (n <= 0 || (size_t)n >= sizeof buf || access(buf, R_OK) != 0) return 0;
    memcpy(jem_preload_path, buf, (size_t)n + 1);
    return 1;
}

/* Fills jem_preload_path before main() (the harness reads .preload before any create()).
 * Can't fail: when nothing is found the default path stays and jem_found is 0. */
__attribute__((constructor)) static void jem_find_library(void)
{
    char libdir[200] = "", multiarch[64] = JEM_MULTIARCH_DEFAULT, dir[300];
    Dl_info info;
    if (dladdr((void *)gnu_get_libc_version, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash && (size_t)(slash - info.dli_fname) < sizeof libdir) {
            memcpy(libdir, info.dli_fname, (size_t)(slash - info.dli_fname));
            libdir[slash - info.dli_fname] = '\0';
            const char *last = strrchr(libdir, '/');
            if (last && strchr(last, '-')) snprintf(multiarch, sizeof multiarch, "%s", last + 1);
        }
    }
    snprintf(dir, sizeof dir, "/usr/lib/%s", multiarch);
    if (multiarch[0] && jem_try(dir)) goto found;
    if (libdir[0] && jem_try(libdir)) goto found;
    if (jem_try("/usr/lib64") || jem_try("/usr/lib") || jem_try("/usr/local/lib")) goto found;
    return;
found:
    jem_found = 1;
}

/* Returns the token, or NULL with why this process cannot run jemalloc rows. */
static void *jem_create(const char *options, char *err, size_t errlen)
{
    if (options && *options) {
        snprintf(err, errlen, "jemalloc takes no options (got \"%s\"; use MALLOC_CONF)", options);
        return NULL;
    }
    if (!jem_found) {
        snprintf(err, errlen, "not installed: %s", JEM_SONAME);
        return NULL;
    }
    void *ctl = dlsym(RTLD_DEFAULT, "mallctl");
    if (!ctl) {
        snprintf(err, errlen, "not running under jemalloc: start with LD_PRELOAD=%s",
                 jem_preload_path);
        return NULL;
    }
    Dl_info a, b;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (!m || !dladdr(m, &a) || !dladdr(ctl, &b) || a.dli_fbase != b.dli_fbase) {
        snprintf(err, errlen, "not running under jemalloc: malloc is not jemalloc's "
                              "(another LD_PRELOAD comes first?)");
        return NULL;
    }
    jem_mallctl = (jem_mallctl_fn)ctl;
    return &jem_heap_token;
}

static void jem_destroy(void *heap) { (void)heap; }

static void *jem_alloc(void *heap, size_t size)
{
    (void)heap;
    if (__builtin_expect(size > PTRDIFF_MAX, 0)) return NULL;
    return malloc(size);
}

static void jem_free(void *heap, void *p, size_t size)
{
    (void)heap;
    (void)size;
    free(p);
}

static void *jem_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    (void)heap;
    (void)old_size;
    if (new_size > PTRDIFF_MAX) return NULL;
    return realloc(p, new_size ? new_size : 1); /* never the free-on-0 behaviour */
}

static void *jem_alloc_aligned(void *heap, size_t align, size_t size)
{
    (void)heap;
    void *p = NULL;
    if (size > PTRDIFF_MAX) return NULL;
    return posix_memalign(&p, align, size) == 0 ? p : NULL;
}

static size_t jem_usable_size(void *heap, const void *p)
{
    (void)heap;
    return malloc_usable_size((void *)p);
}

static void jem_thread_detach(void *heap)
{
    (void)heap;
    if (jem_mallctl) jem_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
}

static void jem_collect(void *heap)
{
    (void)heap;
    /* 4096 = MALLCTL_ARENAS_ALL */
    if (jem_mallctl) jem_mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
}

/* Fills the figures jemalloc's stats report (after an epoch refresh); absent ones stay
 * absent. Returns 0. */
static int jem_stats(void *heap, al_stats *out)
{
    (void)heap;
    memset(out, 0, sizeof *out);
    if (!jem_mallctl) return 0;
    uint64_t epoch = 1;
    size_t sz = sizeof epoch;
    jem_mallctl("epoch", &epoch, &sz, &epoch, sz);
    size_t v;
#define JEM_STAT(name, field)                                                  \
    sz = sizeof v;                                                             \
    if (jem_mallctl(name, &v, &sz, NULL, 0) == 0) {                            \
        out->field = v;                                                        \
        out->present |= AL_STAT_BIT(field);                                    \
    }
    JEM_STAT("stats.allocated", alloc_bytes)
    JEM_STAT("stats.mapped", sys)
    JEM_STAT("stats.active", heap_inuse)
    JEM_STAT("stats.retained", heap_released)
#undef JEM_STAT
    return 0;
}

static const char *jem_version(void)
{
    static char buf[sizeof jem_preload_path + 64];
    jem_mallctl_fn ctl = (jem_mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
    const char *v = NULL;
    size_t sz = sizeof v;
    if (ctl && ctl("version", &v, &sz, NULL, 0) == 0 && v) {
        /* "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c": keep "5.3.0" */
        int n = (int)strcspn(v, "-");
        snprintf(buf, sizeof buf, "jemalloc %.*s", n, v);
    } else {
        snprintf(buf, sizeof buf, "jemalloc (not loaded; LD_PRELOAD=%s)", jem_preload_path);
    }
    return buf;
}

const al_backend al_backend_jemalloc = {
    .abi = AL_ABI_VERSION,
    .name = "jemalloc",
    .desc = "jemalloc (Debian libjemalloc.so.2) as the process malloc, in an LD_PRELOAD child",
    .caps = AL_CAP_THREAD_SAFE | AL_CAP_PRELOAD,
    .preload = jem_preload_path,
    .create = jem_create,
    .destroy = jem_destroy,
    .alloc = jem_alloc,
    .free = jem_free,
    .realloc = jem_realloc,
    .alloc_aligned = jem_alloc_aligned,
    .usable_size = jem_usable_size,
    .thread_detach = jem_thread_detach,
    .collect = jem_collect,
    .stats = jem_stats,
    .version = jem_version,
};
