/* counters.c - see counters.h for the three sources and the split between parent and child.
 *
 * Child path (al_child_main):
 *   1. al_ctr_child_init: PAPI_library_init; papi_sde_init("<BACKEND>") and one callback
 *      counter per stats field the backend reports present; resolve and add every event to
 *      the event set of its component (one set per component: PAPI cannot mix them), with
 *      multiplexing where a set asks for more events than the component has counters. An event
 *      that cannot be added is recorded absent with PAPI's reason and the PMU situation.
 *   2. al_ctr_start right before the measured region; al_ctr_pause/resume around the workload's
 *      unmeasured work (a PAPI_read at each edge; the counts of the paused spans are
 *      subtracted); al_ctr_stop right after it.
 * Cachesim path: the runner execs `valgrind --tool=callgrind --cache-sim=yes
 *   --toggle-collect=al_measured_region --toggle-collect=start_thread ... alloclab --run-child`;
 *   pause/resume toggle callgrind's collection with a client request (a no-op natively); the
 *   parent reads the summary line of the output file (ALLOCLAB_KEEP_CG=1 keeps the file, for
 *   callgrind_annotate). start_thread is toggled too because callgrind's collection state is
 *   per thread: without it, the work of threads a workload starts inside the region would not
 *   be counted. The simulated caches are fixed (counters.h), the child's stack is aligned
 *   (al_ctr_stack_pad) and the program is linked with -z now (counters.mk), so the counts
 *   depend on neither the host nor the environment.
 */
#include "counters.h"

#include <ctype.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <papi.h>
#include <sde_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#define CTR_DEFAULT "PAPI_L1_DCM,PAPI_L2_DCM|PAPI_L2_TCM,PAPI_L3_TCM,PAPI_TLB_DM,PAPI_TOT_INS"
#define CTR_MAX_SETS 4

/* Cumulative stats fields (DELTA SDE events); every other field is a level (INSTANT). */
#define CTR_CUMULATIVE                                                                       \
    (AL_STAT_BIT(total_alloc) | AL_STAT_BIT(mallocs) | AL_STAT_BIT(frees) |                  \
     AL_STAT_BIT(heap_released) | AL_STAT_BIT(num_gc) | AL_STAT_BIT(central_refills) |       \
     AL_STAT_BIT(spans_grown) | AL_STAT_BIT(sweeps) | AL_STAT_BIT(bytes_scavenged) |         \
     AL_STAT_BIT(pool_gets) | AL_STAT_BIT(pool_puts) | AL_STAT_BIT(pool_hits) |              \
     AL_STAT_BIT(pool_misses) | AL_STAT_BIT(pool_steals) | AL_STAT_BIT(pool_victim_hits))

/* ---- configuration (parent; inherited by forked children, exported to exec'd ones) ---- */

static struct {
    int parsed;
    int none;          /* --counters=none */
    int hw;            /* hardware/native entries in list */
    int cachesim;
    char list[1024];   /* the hardware/native/explicit-sde entries, comma-separated */
    /* what the validation probe learnt, for the context */
    char pmu[256], papi[128], sde[128];
} cfg;

static void cfg_from_env(void)
{
    if (cfg.parsed) return;
    char err[256];
    const char *l = getenv("ALLOCLAB_COUNTERS");
    if (al_ctr_parse(l && *l ? l : "default", err, sizeof err) != 0) al_ctr_parse("none", err, sizeof err);
    const char *cs = getenv("ALLOCLAB_CACHESIM");
    if (cs && strcmp(cs, "1") == 0) cfg.cachesim = 1;
}

int al_ctr_parse(const char *list, char *err, size_t errlen)
{
    memset(cfg.list, 0, sizeof cfg.list);
    cfg.none = cfg.hw = 0;
    if (!*list) {
        snprintf(err, errlen, "--counters needs default, none, sde or a list of PAPI event names");
        return -1;
    }
    if (strcmp(list, "none") == 0) {
        cfg.none = 1;
    } else if (strcmp(list, "sde") == 0) {
        /* only the backend's SDE events: added automatically in the child */
    } else {
        const char *l = strcmp(list, "default") == 0 ? CTR_DEFAULT : list;
        if (strlen(l) >= sizeof cfg.list) {
            snprintf(err, errlen, "--counters: list too long");
            return -1;
        }
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", l);
        int n = 0;
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (strcmp(tok, "default") == 0 || strcmp(tok, "none") == 0 || strcmp(tok, "sde") == 0) {
                snprintf(err, errlen, "--counters: \"%s\" is a preset and stands alone", tok);
                return -1;
            }
            if (strlen(tok) >= 63) {
                snprintf(err, errlen, "--counters: event name too long: \"%s\"", tok);
                return -1;
            }
            if (++n > AL_CTR_MAX / 2) {
                snprintf(err, errlen, "--counters: at most %d events", AL_CTR_MAX / 2);
                return -1;
            }
        }
        snprintf(cfg.list, sizeof cfg.list, "%s", l);
        cfg.hw = n;
    }
    cfg.parsed = 1;
    setenv("ALLOCLAB_COUNTERS", list, 1);
    return 0;
}

void al_ctr_set_cachesim(int on) { cfg.cachesim = on; }

int al_ctr_cachesim(void)
{
    cfg_from_env();
    return cfg.cachesim;
}

/* The backend's SDE library name: its name in upper case, '-' as '_'. Can't fail. */
static void sde_lib_name(const char *backend, char *out, size_t n)
{
    size_t i = 0;
    for (; backend[i] && i + 1 < n; i++)
        out[i] = backend[i] == '-' ? '_' : (char)toupper((unsigned char)backend[i]);
    out[i] = 0;
}

/* Whether "sde:::LIB::Field" names a registered backend and a stats field. */
static int sde_name_ok(const char *name)
{
    if (strncmp(name, "sde:::", 6) != 0) return 0;
    const char *lib = name + 6, *sep = strstr(lib, "::");
    if (!sep) return 0;
    int lib_ok = 0;
    for (int i = 0; i < al_backend_count() && !lib_ok; i++) {
        char up[64];
        sde_lib_name(al_backend_at(i)->name, up, sizeof up);
        lib_ok = strlen(up) == (size_t)(sep - lib) && strncmp(up, lib, (size_t)(sep - lib)) == 0;
    }
    for (int i = 0; lib_ok && i < AL_STAT_COUNT; i++)
        if (strcmp(al_stat_name(i), sep + 2) == 0) return 1;
    return 0;
}

/* Is there a hardware PMU? perf_event_open of user-mode instructions is the plain test
 * (PAPI's perf_event component reports counters from the CPU model, even on a VM that
 * exposes none). Writes "present" or "absent: <why>". Can't fail. */
static void pmu_probe(char *out, size_t n)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.disabled = 1;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd >= 0) {
        close((int)fd);
        snprintf(out, n, "present");
    } else if (errno == ENOENT || errno == EOPNOTSUPP) {
        snprintf(out, n, "absent: no hardware counters (perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): %s)",
                 strerror(errno));
    } else {
        snprintf(out, n, "absent: perf_event_open(PERF_COUNT_HW_INSTRUCTIONS): %s (perf_event_paranoid?)",
                 strerror(errno));
    }
}

typedef struct probe_out {
    char bad[128];
    char pmu[256], papi[128], sde[128];
    al_ctr_result hw; /* each hardware/native event: present, or absent and why */
} probe_out;

static al_ctr_result probe_hw; /* the probe's verdicts, for the context */
static void add_event(const char *spec, int source, int gauge, al_ctr_result *out, const char *pmu);

int al_ctr_validate(char *err, size_t errlen)
{
    cfg_from_env();
    if (cfg.none) return 0;
    probe_out *po = mmap(NULL, sizeof *po, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (po == MAP_FAILED) return 0; /* nothing validated; the children report absences */
    memset(po, 0, sizeof *po);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pmu_probe(po->pmu, sizeof po->pmu);
        int v = PAPI_library_init(PAPI_VER_CURRENT);
        if (v != PAPI_VER_CURRENT) {
            snprintf(po->papi, sizeof po->papi, "unavailable: PAPI_library_init: %s",
                     v < 0 ? PAPI_strerror(v) : "version mismatch");
            _exit(0);
        }
        snprintf(po->papi, sizeof po->papi, "PAPI %d.%d.%d", PAPI_VERSION_MAJOR(v), PAPI_VERSION_MINOR(v),
                 PAPI_VERSION_REVISION(v));
        snprintf(po->sde, sizeof po->sde, "sde component not found");
        for (int i = 0; i < PAPI_num_components(); i++) {
            const PAPI_component_info_t *ci = PAPI_get_component_info(i);
            if (ci && strcmp(ci->name, "sde") == 0)
                snprintf(po->sde, sizeof po->sde, "%.100s", ci->disabled ? ci->disabled_reason : "enabled");
            if (ci && strcmp(ci->name, "perf_event") == 0) {
                size_t l = strlen(po->pmu);
                snprintf(po->pmu + l, sizeof po->pmu - l, "; PAPI perf_event component: %d counters (from the CPU model)%s",
                         PAPI_num_cmp_hwctrs(i), ci->disabled ? " (disabled)" : "");
            }
        }
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", cfg.list);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int ok = 0;
            char alt[128];
            snprintf(alt, sizeof alt, "%.127s", tok);
            for (char *s2 = NULL, *a = strtok_r(alt, "|", &s2); a && !ok; a = strtok_r(NULL, "|", &s2)) {
                int code;
                ok = strncmp(a, "sde:::", 6) == 0 ? sde_name_ok(a) : PAPI_event_name_to_code(a, &code) == PAPI_OK;
            }
            if (!ok) {
                snprintf(po->bad, sizeof po->bad, "%.127s", tok);
                break;
            }
            /* can it be counted here? (the same test the case's child makes) */
            if (strncmp(tok, "sde:::", 6) != 0) add_event(tok, AL_CTR_SRC_PAPI, 0, &po->hw, po->pmu);
        }
        _exit(0);
    }
    int st;
    if (pid > 0)
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    int rc = 0;
    if (po->bad[0]) {
        snprintf(err, errlen,
                 "--counters: PAPI does not know the event \"%s\" (papi_native_avail lists them; "
                 "sde events are sde:::BACKEND::StatsField)",
                 po->bad);
        rc = -1;
    }
    snprintf(cfg.pmu, sizeof cfg.pmu, "%s", po->pmu[0] ? po->pmu : "unknown (probe failed)");
    snprintf(cfg.papi, sizeof cfg.papi, "%s", po->papi[0] ? po->papi : "unknown (probe failed)");
    snprintf(cfg.sde, sizeof cfg.sde, "%s", po->sde[0] ? po->sde : "unknown");
    probe_hw = po->hw;
    munmap(po, sizeof *po);
    return rc;
}

const al_ctr_info *al_ctr_get_info(void)
{
    static al_ctr_info info;
    cfg_from_env();
    info.none = cfg.none;
    info.cachesim = cfg.cachesim;
    info.list = cfg.list;
    info.pmu = cfg.pmu;
    info.papi = cfg.papi;
    info.sde = cfg.sde;
    info.hw = &probe_hw;
    return &info;
}

/* ---- child ---- */

typedef struct sde_field {
    const al_backend *b;
    void *heap;
    int field;
} sde_field;

static sde_field sde_fields[AL_STAT_COUNT];

static long long sde_read_field(void *arg)
{
    const sde_field *f = arg;
    al_stats s;
    memset(&s, 0, sizeof s);
    f->b->stats(f->heap, &s);
    return (long long)al_stat_value(&s, f->field);
}

typedef struct ctr_set {
    int es, cidx, n;
    int slot[AL_CTR_MAX];    /* index in the result of each event of the set */
    long long base[AL_CTR_MAX], acc[AL_CTR_MAX], tmp[AL_CTR_MAX];
} ctr_set;

static struct {
    int active;
    int nsets;
    ctr_set sets[CTR_MAX_SETS];
    al_ctr_result *res;
} ch;

static int result_add(al_ctr_result *out, const char *name, int source)
{
    if (out->n == AL_CTR_MAX) return -1;
    al_ctr_value *v = &out->v[out->n];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->source = (uint8_t)source;
    return out->n++;
}

static ctr_set *set_for(int cidx)
{
    for (int i = 0; i < ch.nsets; i++)
        if (ch.sets[i].cidx == cidx) return &ch.sets[i];
    if (ch.nsets == CTR_MAX_SETS) return NULL;
    ctr_set *s = &ch.sets[ch.nsets];
    memset(s, 0, sizeof *s);
    s->es = PAPI_NULL;
    s->cidx = cidx;
    if (PAPI_create_eventset(&s->es) != PAPI_OK) return NULL;
    if (PAPI_assign_eventset_component(s->es, cidx) != PAPI_OK) {
        PAPI_destroy_eventset(&s->es);
        return NULL;
    }
    ch.nsets++;
    return s;
}

/* Add one event (name may be "A|B") to the sets; records it in out. Can't fail. */
static void add_event(const char *spec, int source, int gauge, al_ctr_result *out, const char *pmu)
{
    char alt[128], first_err[160] = "", used[64] = "";
    snprintf(alt, sizeof alt, "%s", spec);
    int code = 0, cidx = -1;
    for (char *s2 = NULL, *a = strtok_r(alt, "|", &s2); a; a = strtok_r(NULL, "|", &s2)) {
        int rc = PAPI_event_name_to_code(a, &code);
        if (rc == PAPI_OK) rc = PAPI_query_event(code);
        if (rc == PAPI_OK) {
            cidx = PAPI_get_event_component(code);
            ctr_set *s = set_for(cidx);
            if (!s) rc = PAPI_ENOMEM;
            else if (s->n == AL_CTR_MAX) rc = PAPI_ECNFLCT;
            else {
                rc = PAPI_add_event(s->es, code);
                if (rc == PAPI_ECNFLCT || rc == PAPI_ECOUNT) { /* more than the PMU has: multiplex */
                    if (PAPI_set_multiplex(s->es) == PAPI_OK) {
                        rc = PAPI_add_event(s->es, code);
                        if (rc == PAPI_OK) out->multiplexed = 1;
                    }
                }
            }
            if (rc == PAPI_OK) {
                int slot = result_add(out, a, source);
                if (slot < 0) {
                    PAPI_remove_event(s->es, code);
                    return;
                }
                out->v[slot].present = 1;
                out->v[slot].gauge = (uint8_t)gauge;
                s->slot[s->n++] = slot;
                return;
            }
        }
        if (!first_err[0]) {
            snprintf(first_err, sizeof first_err, "%s", PAPI_strerror(rc));
            snprintf(used, sizeof used, "%s", a);
        }
    }
    int slot = result_add(out, used[0] ? used : spec, source);
    if (slot < 0) return;
    if (source == AL_CTR_SRC_PAPI && strncmp(pmu, "absent", 6) == 0)
        snprintf(out->v[slot].reason, sizeof out->v[slot].reason, "absent: %s; PAPI_add_event: %s", pmu + 8, first_err);
    else
        snprintf(out->v[slot].reason, sizeof out->v[slot].reason, "absent: PAPI_add_event: %s", first_err);
}

void al_ctr_child_init(const al_backend *b, void *heap, al_ctr_result *out)
{
    cfg_from_env();
    memset(out, 0, sizeof *out);
    ch.active = 0;
    ch.nsets = 0;
    if (cfg.none || cfg.cachesim) return;
    if (RUNNING_ON_VALGRIND) { /* PAPI would count valgrind, and its reads would be simulated */
        snprintf(out->note, sizeof out->note, "PAPI off: running under valgrind");
        return;
    }
    int v = PAPI_library_init(PAPI_VER_CURRENT);
    if (v != PAPI_VER_CURRENT) {
        snprintf(out->note, sizeof out->note, "PAPI_library_init: %s", v < 0 ? PAPI_strerror(v) : "version mismatch");
        return;
    }
    char pmu[256];
    pmu_probe(pmu, sizeof pmu);
    /* hardware / native / explicit sde entries */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", cfg.list);
    char lib[64];
    sde_lib_name(b->name, lib, sizeof lib);
    al_stats s;
    memset(&s, 0, sizeof s);
    int has_stats = b->stats && b->stats(heap, &s) == 0;
    papi_handle_t sh = NULL;
    if (has_stats && s.present) {
        sh = papi_sde_init(lib);
        for (int i = 0; i < AL_STAT_COUNT; i++) {
            if (!(s.present & (UINT64_C(1) << i))) continue;
            int gauge = !(CTR_CUMULATIVE & (UINT64_C(1) << i));
            sde_fields[i] = (sde_field){b, heap, i};
            papi_sde_register_counter_cb(sh, al_stat_name(i),
                                         PAPI_SDE_RO | (gauge ? PAPI_SDE_INSTANT : PAPI_SDE_DELTA),
                                         PAPI_SDE_long_long, sde_read_field, &sde_fields[i]);
            papi_sde_describe_counter(sh, al_stat_name(i), al_stat_desc(i));
        }
    }
    char prefix[80];
    snprintf(prefix, sizeof prefix, "sde:::%s::", lib);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "sde:::", 6) == 0) {
            /* an explicit SDE event: this backend's and present, else absent (an SDE event of an
             * unregistered library would read 0 from a placeholder) */
            int field = -1;
            if (strncmp(tok, prefix, strlen(prefix)) == 0)
                for (int i = 0; i < AL_STAT_COUNT; i++)
                    if (strcmp(al_stat_name(i), tok + strlen(prefix)) == 0) field = i;
            if (field >= 0 && (s.present & (UINT64_C(1) << field))) continue; /* added below */
            int slot = result_add(out, tok, AL_CTR_SRC_SDE);
            if (slot >= 0)
                snprintf(out->v[slot].reason, sizeof out->v[slot].reason,
                         "absent: backend %s does not report this field", b->name);
            continue;
        }
        add_event(tok, AL_CTR_SRC_PAPI, 0, out, pmu);
    }
    for (int i = 0; sh && i < AL_STAT_COUNT; i++) {
        if (!(s.present & (UINT64_C(1) << i))) continue;
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, al_stat_name(i));
        add_event(name, AL_CTR_SRC_SDE, !(CTR_CUMULATIVE & (UINT64_C(1) << i)), out, pmu);
    }
    ch.active = ch.nsets > 0;
}

static void sets_read(int into_acc)
{
    for (int i = 0; i < ch.nsets; i++) {
        ctr_set *s = &ch.sets[i];
        if (PAPI_read(s->es, s->tmp) != PAPI_OK) continue;
        for (int k = 0; k < s->n; k++) {
            if (into_acc) s->acc[k] += s->tmp[k] - s->base[k];
            else s->base[k] = s->tmp[k];
        }
    }
}

void al_ctr_start(void)
{
    if (!ch.active) return;
    for (int i = 0; i < ch.nsets; i++) {
        ctr_set *s = &ch.sets[i];
        memset(s->acc, 0, sizeof s->acc);
        if (PAPI_start(s->es) != PAPI_OK) { /* its events read 0 deltas; reported at stop */ }
    }
    sets_read(0);
}

void al_ctr_pause(void)
{
    if (cfg.cachesim) CALLGRIND_TOGGLE_COLLECT;
    if (ch.active) sets_read(1);
}

void al_ctr_resume(void)
{
    if (ch.active) sets_read(0);
    if (cfg.cachesim) CALLGRIND_TOGGLE_COLLECT;
}

void al_ctr_stop(al_ctr_result *out)
{
    if (!ch.active) return;
    for (int i = 0; i < ch.nsets; i++) {
        ctr_set *s = &ch.sets[i];
        int rc = PAPI_stop(s->es, s->tmp);
        for (int k = 0; k < s->n; k++) {
            al_ctr_value *v = &out->v[s->slot[k]];
            if (rc != PAPI_OK) {
                v->present = 0;
                snprintf(v->reason, sizeof v->reason, "absent: PAPI_stop: %s", PAPI_strerror(rc));
                continue;
            }
            v->value = v->gauge ? s->tmp[k] : s->acc[k] + s->tmp[k] - s->base[k];
        }
    }
    ch.active = 0;
}

size_t al_ctr_stack_pad(uintptr_t frame)
{
    cfg_from_env();
    return (cfg.cachesim ? (size_t)(frame % AL_CTR_STACK_ALIGN) : 0) + 16;
}

/* ---- cachesim: the runner's exec, and the parent's reading of the output ---- */

int al_ctr_needs_exec(void) { return al_ctr_cachesim(); }

static void cg_out_path(pid_t pid, char *out, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, n, "%s/alloclab-cg.%d", tmp && *tmp ? tmp : "/tmp", (int)pid);
}

void al_ctr_exec(char **argv)
{
    if (!al_ctr_cachesim()) {
        execv(argv[0], argv);
        return;
    }
    setenv("ALLOCLAB_CACHESIM", "1", 1);
    char outf[4200], outarg[4300], logarg[4300];
    cg_out_path(getpid(), outf, sizeof outf);
    snprintf(outarg, sizeof outarg, "--callgrind-out-file=%s", outf);
    snprintf(logarg, sizeof logarg, "--log-file=%s.log", outf); /* valgrind's own messages */
    char *vg[64];
    int n = 0;
    vg[n++] = "valgrind";
    vg[n++] = "--tool=callgrind";
    vg[n++] = "--cache-sim=yes";
    vg[n++] = "--toggle-collect=al_measured_region";
    vg[n++] = "--toggle-collect=start_thread";
    vg[n++] = "--I1=" AL_CTR_SIM_I1;
    vg[n++] = "--D1=" AL_CTR_SIM_D1;
    vg[n++] = "--LL=" AL_CTR_SIM_LL;
    vg[n++] = outarg;
    vg[n++] = logarg;
    for (int i = 0; argv[i] && n < 63; i++) vg[n++] = argv[i];
    vg[n] = NULL;
    execvp("valgrind", vg);
}

int al_ctr_parse_callgrind(const char *path, int64_t ev[9])
{
    static const char *want[9] = {"Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"};
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096], names[32][16];
    int nnames = 0, got = 0;
    int64_t tot[32] = {0};
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "events:", 7) == 0) {
            nnames = 0;
            for (char *save = NULL, *t = strtok_r(line + 7, " \t\n", &save); t && nnames < 32;
                 t = strtok_r(NULL, " \t\n", &save))
                snprintf(names[nnames++], sizeof names[0], "%s", t);
        } else if (strncmp(line, "summary:", 8) == 0 || (!got && strncmp(line, "totals:", 7) == 0)) {
            /* summary: the total cost (callgrind_annotate's PROGRAM TOTALS); totals: the sum
             * of the cost lines, which can miss the few instructions of a collection toggle */
            char *p = strchr(line, ':') + 1;
            for (int i = 0; i < nnames; i++) tot[i] = strtoll(p, &p, 10);
            got = 1;
        }
    }
    fclose(f);
    if (!got || !nnames) return -1;
    for (int k = 0; k < 9; k++) {
        ev[k] = -1;
        for (int i = 0; i < nnames; i++)
            if (strcmp(names[i], want[k]) == 0) ev[k] = tot[i];
    }
    return 0;
}

int al_ctr_cachesim_collect(pid_t pid, al_ctr_result *out)
{
    static const char *name[9] = {"Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"};
    char path[4200];
    cg_out_path(pid, path, sizeof path);
    int64_t ev[9];
    int rc = al_ctr_parse_callgrind(path, ev);
    if (!getenv("ALLOCLAB_KEEP_CG")) unlink(path); /* debugging: keep the callgrind output */
    char logp[4300], why[160] = "";
    snprintf(logp, sizeof logp, "%s.log", path);
    FILE *lf = rc ? fopen(logp, "r") : NULL;
    if (lf) { /* the first message of valgrind's that is not a warning */
        char line[512];
        while (fgets(line, sizeof line, lf))
            if (!strstr(line, "warning") && strlen(line) > 12) {
                line[strcspn(line, "\n")] = 0;
                snprintf(why, sizeof why, " (valgrind: %.120s)", line);
                break;
            }
        fclose(lf);
    }
    unlink(logp);
    if (!out) return rc;
    for (int k = 0; k < 9; k++) {
        int slot = result_add(out, name[k], AL_CTR_SRC_CACHESIM);
        if (slot < 0) break;
        if (rc == 0 && ev[k] >= 0) {
            out->v[slot].present = 1;
            out->v[slot].value = ev[k];
        } else {
            snprintf(out->v[slot].reason, sizeof out->v[slot].reason, "%s%s",
                     rc ? "absent: no callgrind output (is valgrind installed?)"
                        : "absent: callgrind did not count this event", why);
        }
    }
    return rc;
}
