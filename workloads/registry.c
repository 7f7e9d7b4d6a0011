/* registry.c - the one table of workloads. Adding a workload: write workloads/<name>.c
 * defining `const al_workload al_workload_<name>`, then add one AL_WORKLOAD(<name>) line. */
#include "workload.h"

#include <string.h>

#define AL_WORKLOADS(AL_WORKLOAD) \
    AL_WORKLOAD(bufchurn)          \
    AL_WORKLOAD(sizeclass)         \
    AL_WORKLOAD(graph)             \
    AL_WORKLOAD(request)           \
    AL_WORKLOAD(threadtest)        \
    AL_WORKLOAD(larson)            \
    AL_WORKLOAD(xmalloc)           \
    AL_WORKLOAD(cache_thrash)      \
    AL_WORKLOAD(cache_scratch)     \
    AL_WORKLOAD(fragment)          \
    AL_WORKLOAD(pareto)

#define AL_DECLARE(n) extern const al_workload al_workload_##n;
AL_WORKLOADS(AL_DECLARE)
#undef AL_DECLARE

static const al_workload *const all_workloads[] = {
#define AL_ENTRY(n) &al_workload_##n,
    AL_WORKLOADS(AL_ENTRY)
#undef AL_ENTRY
};

int al_workload_count(void) { return (int)(sizeof all_workloads / sizeof all_workloads[0]); }

const al_workload *al_workload_at(int i)
{
    return i >= 0 && i < al_workload_count() ? all_workloads[i] : NULL;
}

const al_workload *al_workload_find(const char *name)
{
    for (int i = 0; i < al_workload_count(); i++)
        if (strcmp(all_workloads[i]->name, name) == 0) return all_workloads[i];
    return NULL;
}

int al_workload_param(const al_workload *w, const char *name)
{
    for (int i = 0; i < w->nparams; i++)
        if (strcmp(w->params[i].name, name) == 0) return i;
    return -1;
}
