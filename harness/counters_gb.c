/* counters_gb.c - the counters' side of the results: the context (what was counted, where
 * from, what is absent and why) and the Google Benchmark counters of each case. In the program
 * only (the rest of counters.c is in liballoclab.a, for the unit tests). See counters.h. */
#include "counters.h"

#include "gbshim.h"

#include <stdio.h>
#include <string.h>

/* Add a context entry once per key. Can't fail (beyond 512 keys, later ones are dropped). */
static void context_once(const char *key, const char *val)
{
    static char seen[512][96];
    static int nseen;
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], key) == 0) return;
    if (nseen == 512) return;
    snprintf(seen[nseen++], sizeof seen[0], "%s", key);
    al_gb_add_context(key, val);
}

void al_ctr_add_context(void)
{
    const al_ctr_info *in = al_ctr_get_info();
    char buf[1200];
    if (in->cachesim) {
        al_gb_add_context("counters", "cachesim: callgrind --cache-sim=yes around al_measured_region; PAPI off");
        al_gb_add_context("cachesim", "times are valgrind times, not comparable; sim.* counts are "
                                      "deterministic (same binary and input, same numbers)");
        al_gb_add_context("cachesim.caches", "I1 " AL_CTR_SIM_I1 ", D1 " AL_CTR_SIM_D1 ", LL " AL_CTR_SIM_LL
                                             " (size,ways,line; fixed, not the host's)");
    } else if (in->none) {
        al_gb_add_context("counters", "none");
    } else {
        snprintf(buf, sizeof buf, "%s%s+ the backend's SDE events (sde:::BACKEND::Field)",
                 in->list, in->list[0] ? " " : "");
        al_gb_add_context("counters", buf);
        al_gb_add_context("counters.papi", in->papi);
        al_gb_add_context("counters.pmu", in->pmu);
        al_gb_add_context("counters.sde_component", in->sde);
        /* hardware events: present or absent, and why (the children's verdicts agree: same
         * machine; a child that disagrees reports it as a missing papi.* counter) */
        for (int i = 0; i < in->hw->n; i++) {
            char key[128];
            snprintf(key, sizeof key, "counters.%s", in->hw->v[i].name);
            context_once(key, in->hw->v[i].present ? "present (source: papi)" : in->hw->v[i].reason);
        }
        al_gb_add_context("counters.sde",
                          "each backend's present stats fields as sde:::BACKEND::Field, read "
                          "through PAPI; reported as sde.Field (counts: also sde.Field_per_op)");
    }
    al_gb_add_context("counters.sources",
                      "papi.*: PAPI hardware/native events; sde.*: the backend's stats as PAPI "
                      "software-defined events; sim.*: callgrind cache simulation");
}

static int64_t sim_value(const al_ctr_result *r, const char *n, int *ok)
{
    for (int i = 0; i < r->n; i++)
        if (r->v[i].source == AL_CTR_SRC_CACHESIM && strcmp(r->v[i].name, n) == 0) {
            if (!r->v[i].present) *ok = 0;
            return r->v[i].value;
        }
    *ok = 0;
    return 0;
}

void al_ctr_report(al_gb_state *st, const al_ctr_result *r, uint64_t ops)
{
    char key[160], name[160];
    if (r->note[0]) context_once("counters.child", r->note);
    if (r->multiplexed) context_once("counters.multiplexed", "yes: papi.* values are PAPI's multiplexing estimates");
    for (int i = 0; i < r->n; i++) {
        const al_ctr_value *v = &r->v[i];
        const char *src = v->source == AL_CTR_SRC_PAPI ? "papi" : v->source == AL_CTR_SRC_SDE ? "sde" : "sim";
        snprintf(key, sizeof key, "counters.%s", v->name);
        if (!v->present) {
            context_once(key, v->reason);
            continue;
        }
        context_once(key, v->source == AL_CTR_SRC_PAPI  ? "present (source: papi)"
                          : v->source == AL_CTR_SRC_SDE ? (v->gauge ? "present (source: sde, level at the end of the region)"
                                                                    : "present (source: sde, count inside the region)")
                                                        : "present (source: cachesim)");
        const char *shortn = v->name;
        if (v->source == AL_CTR_SRC_SDE) { /* sde:::LIB::Field -> Field */
            const char *sep = strstr(v->name + 6, "::");
            if (sep) shortn = sep + 2;
        }
        snprintf(name, sizeof name, "%s.%s", src, shortn);
        al_gb_counter(st, name, (double)v->value, AL_GB_PLAIN);
        if (!v->gauge && ops > 0 && (v->source != AL_CTR_SRC_CACHESIM || strcmp(v->name, "Ir") == 0)) {
            snprintf(name, sizeof name, "%s.%s_per_op", src, shortn);
            al_gb_counter(st, name, (double)v->value / (double)ops, AL_GB_PLAIN);
        }
    }
    /* the cachesim summaries: D1 misses and last-level data misses */
    int ok = 1;
    int64_t d1 = sim_value(r, "D1mr", &ok) + sim_value(r, "D1mw", &ok);
    if (ok && ops > 0) al_gb_counter(st, "sim.D1_miss_per_op", (double)d1 / (double)ops, AL_GB_PLAIN);
    ok = 1;
    int64_t ll = sim_value(r, "DLmr", &ok) + sim_value(r, "DLmw", &ok);
    if (ok && ops > 0) al_gb_counter(st, "sim.LL_miss_per_op", (double)ll / (double)ops, AL_GB_PLAIN);
}
