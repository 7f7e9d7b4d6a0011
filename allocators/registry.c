/* registry.c - the one table of backends. Adding a backend: write allocators/<name>.c (or a
 * folder allocators/<name>/) defining `const al_backend al_backend_<name>`, then add one
 * AL_BACKEND(<name>) line below. The conformance suite, `make bench` and the charts take it
 * from here; nothing else needs touching. The order here is the order of every listing. */
#include "allocator.h"

#include <stdlib.h>
#include <string.h>

#define AL_BACKENDS(AL_BACKEND) \
    AL_BACKEND(libc)            \
    AL_BACKEND(bump)            \
    AL_BACKEND(mimalloc)        \
    AL_BACKEND(tcmalloc)        \
    AL_BACKEND(jemalloc)        \
    AL_BACKEND(gotiered)        \
    AL_BACKEND(syncpool)        \
    AL_BACKEND(crashtest)       \
    AL_BACKEND(hangtest)        \
    AL_BACKEND(corrupttest)

#define AL_DECLARE(n) extern const al_backend al_backend_##n;
AL_BACKENDS(AL_DECLARE)
#undef AL_DECLARE

static const al_backend *const all_backends[] = {
#define AL_ENTRY(n) &al_backend_##n,
    AL_BACKENDS(AL_ENTRY)
#undef AL_ENTRY
};

enum { ALL_COUNT = (int)(sizeof all_backends / sizeof all_backends[0]) };

static int show_test_only(void)
{
    const char *e = getenv("ALLOCLAB_TEST_BACKENDS");
    return e && strcmp(e, "1") == 0;
}

static int visible(const al_backend *b, int tests)
{
    return tests || !(b->caps & AL_CAP_TEST_ONLY);
}

int al_backend_count(void)
{
    int tests = show_test_only(), n = 0;
    for (int i = 0; i < ALL_COUNT; i++) n += visible(all_backends[i], tests);
    return n;
}

const al_backend *al_backend_at(int i)
{
    int tests = show_test_only();
    for (int j = 0; j < ALL_COUNT; j++) {
        if (!visible(all_backends[j], tests)) continue;
        if (i-- == 0) return all_backends[j];
    }
    return NULL;
}

const al_backend *al_backend_find(const char *name)
{
    int tests = show_test_only();
    for (int j = 0; j < ALL_COUNT; j++)
        if (visible(all_backends[j], tests) && strcmp(all_backends[j]->name, name) == 0)
            return all_backends[j];
    return NULL;
}

static const char *const stat_names[] = {
#define AL_X(f, n, d) n,
    AL_STATS_FIELDS(AL_X)
#undef AL_X
};
static const char *const stat_descs[] = {
#define AL_X(f, n, d) d,
    AL_STATS_FIELDS(AL_X)
#undef AL_X
};

const char *al_stat_name(int i) { return i >= 0 && i < AL_STAT_COUNT ? stat_names[i] : NULL; }
const char *al_stat_desc(int i) { return i >= 0 && i < AL_STAT_COUNT ? stat_descs[i] : NULL; }

uint64_t al_stat_value(const al_stats *s, int i)
{
    switch (i) {
#define AL_X(f, n, d) case AL_STAT_##f: return s->f;
        AL_STATS_FIELDS(AL_X)
#undef AL_X
    default: return 0;
    }
}
