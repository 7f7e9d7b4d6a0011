/* unit_counters.c - the counters layer (harness/counters.c) on this machine:
 *   - the SDE path end to end: a backend's stats, registered as PAPI software-defined events
 *     and read through PAPI around a region, equal the backend's own stats (bump: levels);
 *     a cumulative field counts only inside the region and not while paused;
 *   - the unavailable-hardware path: PAPI_L1_DCM without a PMU is absent with a reason, never 0;
 *   - bad event names are bad input, unavailable ones are not;
 *   - the callgrind totals parser, and (plain build, valgrind installed) the cachesim path of
 *     the alloclab program on a tiny case against an independent callgrind run of the same
 *     --run-child command.
 * Every test runs in its own process (Criterion, or the TSan runner), so PAPI starts fresh. */
#include <criterion/criterion.h>

#include "allocator.h"
#include "counters.h"
#include "workload.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
/* PAPI and libsde keep their registrations (strdup'd names) until process end by design;
 * not ours to free. LeakSanitizer reads this hook at exit. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libsde.so\nleak:libpapi.so\n"; }
#endif

static const al_ctr_value *find(const al_ctr_result *r, const char *name)
{
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0) return &r->v[i];
    return NULL;
}

Test(counters, sde_events_equal_backend_stats)
{
    const al_backend *b = al_backend_find("bump");
    cr_assert_not_null(b);
    char err[256];
    cr_assert_eq(al_ctr_parse("sde", err, sizeof err), 0, "%s", err);
    void *heap = b->create(NULL, err, sizeof err);
    cr_assert_not_null(heap, "%s", err);
    static al_ctr_result r;
    al_ctr_child_init(b, heap, &r);
    cr_assert_str_eq(r.note, "", "PAPI did not start: %s", r.note);
    al_ctr_start();
    void *p[3000];
    for (int i = 0; i < 3000; i++) { /* 3000 x 48 KiB: beyond the first 64 MiB chunk */
        p[i] = b->alloc(heap, 48 << 10);
        cr_assert_not_null(p[i]);
        memset(p[i], 1, 64);
    }
    al_ctr_stop(&r);
    al_stats s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(b->stats(heap, &s), 0);
    cr_assert_neq(s.present, 0, "bump reports stats");
    int checked = 0;
    for (int i = 0; i < AL_STAT_COUNT; i++) {
        if (!(s.present & (UINT64_C(1) << i))) continue;
        char name[128];
        snprintf(name, sizeof name, "sde:::BUMP::%s", al_stat_name(i));
        const al_ctr_value *v = find(&r, name);
        cr_assert_not_null(v, "%s is not in the event set", name);
        cr_assert(v->present, "%s absent: %s", name, v->reason);
        cr_assert_eq(v->source, AL_CTR_SRC_SDE);
        cr_expect_eq((uint64_t)v->value, al_stat_value(&s, i), "%s: PAPI read %lld, stats say %llu", name,
                     (long long)v->value, (unsigned long long)al_stat_value(&s, i));
        checked++;
    }
    cr_assert_geq(checked, 3, "Sys, HeapSys, HeapInuse at least");
    cr_assert_gt(s.sys, (uint64_t)64 << 20, "the test must have grown the heap");
    /* and nothing else: sde only, no hardware event */
    cr_assert_eq(r.n, checked);
    b->destroy(heap);
}

/* A backend whose one cumulative stat the test drives by hand: the counting glue is generic. */
static uint64_t fake_mallocs;
static void *fake_create(const char *o, char *e, size_t n) { return &fake_mallocs; }
static void fake_destroy(void *h) {}
static void *fake_alloc(void *h, size_t n) { return NULL; }
static void fake_free(void *h, void *p, size_t n) {}
static int fake_stats(void *h, al_stats *s)
{
    memset(s, 0, sizeof *s);
    s->mallocs = fake_mallocs;
    s->sys = 4096 + fake_mallocs;
    s->present = AL_STAT_BIT(mallocs) | AL_STAT_BIT(sys);
    return 0;
}
static const al_backend fake = {
    .abi = AL_ABI_VERSION, .name = "ctr-fake", .desc = "", .create = fake_create,
    .destroy = fake_destroy, .alloc = fake_alloc, .free = fake_free, .stats = fake_stats,
};

Test(counters, sde_cumulative_counts_only_the_region_minus_pauses)
{
    char err[256];
    cr_assert_eq(al_ctr_parse("sde", err, sizeof err), 0, "%s", err);
    static al_ctr_result r;
    fake_mallocs = 1000; /* before the region: not counted */
    al_ctr_child_init(&fake, &fake_mallocs, &r);
    al_ctr_start();
    fake_mallocs += 10;
    al_ctr_pause();
    fake_mallocs += 500; /* paused: not counted */
    al_ctr_resume();
    fake_mallocs += 7;
    al_ctr_stop(&r);
    fake_mallocs += 99; /* after: not counted */
    const al_ctr_value *m = find(&r, "sde:::CTR_FAKE::Mallocs"), *sys = find(&r, "sde:::CTR_FAKE::Sys");
    cr_assert_not_null(m);
    cr_assert_not_null(sys);
    cr_assert(m->present && sys->present);
    cr_assert_eq(m->gauge, 0, "Mallocs is a count");
    cr_assert_eq(m->value, 17, "Mallocs in the region minus the pause: got %lld", (long long)m->value);
    cr_assert_eq(sys->gauge, 1, "Sys is a level");
    cr_assert_eq(sys->value, 4096 + 1517, "Sys at the end of the region: got %lld", (long long)sys->value);
}

static int have_pmu(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_HARDWARE;
    a.config = PERF_COUNT_HW_INSTRUCTIONS;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    a.disabled = 1;
    long fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) return 0;
    close((int)fd);
    return 1;
}

Test(counters, unavailable_hardware_event_is_absent_with_reason)
{
    const al_backend *b = al_backend_find("bump");
    char err[256];
    cr_assert_eq(al_ctr_parse("PAPI_L1_DCM", err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_ctr_validate(err, sizeof err), 0, "an unavailable event is not bad input: %s", err);
    void *heap = b->create(NULL, err, sizeof err);
    cr_assert_not_null(heap);
    static al_ctr_result r;
    al_ctr_child_init(b, heap, &r);
    al_ctr_start();
    for (int i = 0; i < 100; i++) cr_assert_not_null(b->alloc(heap, 64));
    al_ctr_stop(&r);
    const al_ctr_value *v = find(&r, "PAPI_L1_DCM");
    cr_assert_not_null(v, "the event must be reported, present or absent");
    cr_assert_eq(v->source, AL_CTR_SRC_PAPI);
    if (have_pmu()) {
        cr_log_info("this machine has a PMU: PAPI_L1_DCM = %lld", (long long)v->value);
        cr_assert(v->present, "a PMU is there, yet: %s", v->reason);
    } else {
        cr_assert_eq(v->present, 0, "no PMU: the event must be absent, not %lld", (long long)v->value);
        cr_assert(strncmp(v->reason, "absent: no hardware counters", 28) == 0, "reason: %s", v->reason);
        cr_assert(strstr(v->reason, "PAPI_add_event:") != NULL, "PAPI's own reason too: %s", v->reason);
    }
    /* the SDE events still came through beside it */
    cr_assert_not_null(find(&r, "sde:::BUMP::Sys"));
    cr_assert(find(&r, "sde:::BUMP::Sys")->present);
    b->destroy(heap);
}

/* Minor faults inside a region that touches `pages` fresh pages, and as many more while
 * paused when `pause_too`. */
static int64_t faults_in_region(size_t pages, int pause_too)
{
    static al_ctr_result r;
    al_ctr_child_init(&fake, &fake_mallocs, &r);
    const al_ctr_value *v = find(&r, "perf::PERF_COUNT_SW_PAGE_FAULTS");
    cr_assert_not_null(v, "the event must be reported, present or absent");
    if (!v->present) return -1;
    size_t n = 2 * pages * 4096;
    char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    al_ctr_start();
    if (pause_too) {
        al_ctr_pause();
        for (size_t i = 0; i < n / 2; i += 4096) m[i] = 1; /* paused: not counted */
        al_ctr_resume();
    }
    for (size_t i = n / 2; i < n; i += 4096) m[i] = 2;
    al_ctr_stop(&r);
    munmap(m, n);
    return v->value;
}

Test(counters, software_perf_event_counts_page_faults_minus_pauses)
{
    /* a native event that needs no PMU: minor faults in the region, through PAPI */
    char err[256];
    cr_assert_eq(al_ctr_parse("perf::PERF_COUNT_SW_PAGE_FAULTS", err, sizeof err), 0, "%s", err);
    int64_t plain = faults_in_region(128, 0);
    if (plain < 0) cr_skip_test("perf software events unavailable here");
    int64_t paused = faults_in_region(128, 1);
    /* >= 128: one fault per fresh page (more under sanitizers: their shadow pages fault too) */
    cr_assert_geq(plain, 128, "128 fresh pages touched in the region: %lld faults", (long long)plain);
    cr_assert_lt(paused, plain + plain / 2, "pages touched while paused were counted: %lld vs %lld",
                 (long long)paused, (long long)plain);
}

Test(counters, bad_names_are_bad_input)
{
    char err[300];
    cr_assert_eq(al_ctr_parse("PAPI_L1_DCM,NO_SUCH_EVENT_X", err, sizeof err), 0);
    cr_assert_eq(al_ctr_validate(err, sizeof err), -1);
    cr_assert(strstr(err, "NO_SUCH_EVENT_X") != NULL, "%s", err);
    cr_assert_eq(al_ctr_parse("sde:::BUMP::NoSuchField", err, sizeof err), 0);
    cr_assert_eq(al_ctr_validate(err, sizeof err), -1);
    cr_assert_eq(al_ctr_parse("sde:::BUMP::Sys,PAPI_TOT_INS", err, sizeof err), 0);
    cr_assert_eq(al_ctr_validate(err, sizeof err), 0, "%s", err);
    cr_assert_eq(al_ctr_parse("", err, sizeof err), -1);
    cr_assert_eq(al_ctr_parse("default,PAPI_TOT_INS", err, sizeof err), -1);
}

Test(counters, callgrind_totals_parser)
{
    char path[] = "/tmp/unit_counters_cg.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# callgrind format\nversion: 1\ncreator: callgrind-3.19.0\n"
               "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n"
               "fn=(1) main\n5 10 2 1 0 0 0 0 0 0\nsummary: 111 22 33 4 5 6 7 8 9\n"
               "totals: 1111 222 333 44 55 66 77 88 99\n");
    fclose(f);
    int64_t ev[9];
    cr_assert_eq(al_ctr_parse_callgrind(path, ev), 0);
    int64_t want[9] = {111, 22, 33, 4, 5, 6, 7, 8, 9}; /* summary (the total cost) wins */
    for (int i = 0; i < 9; i++) cr_expect_eq(ev[i], want[i], "event %d: %lld", i, (long long)ev[i]);
    f = fopen(path, "w");
    fprintf(f, "events: Ir\ntotals: 42\n"); /* no cache simulation, no summary line */
    fclose(f);
    cr_assert_eq(al_ctr_parse_callgrind(path, ev), 0);
    cr_assert_eq(ev[0], 42);
    cr_assert_eq(ev[4], -1, "D1mr was not simulated: -1, not 0");
    unlink(path);
    cr_assert_eq(al_ctr_parse_callgrind(path, ev), -1, "a missing file is an error");
}

/* ---- the cachesim path of the program, against an independent callgrind run ---- */

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static int64_t json_number(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(buf, pat);
    return p ? (int64_t)strtod(p + strlen(pat), NULL) : -1;
}

Test(counters, cachesim_matches_an_independent_callgrind_run, .timeout = 120)
{
    if (SANITIZED) cr_skip_test("the cachesim test runs in the plain build only");
    const char *exe = "build/alloclab";
    if (access(exe, X_OK) != 0) cr_skip_test("%s not built (make all)", exe);
    if (system("valgrind --version >/dev/null 2>&1") != 0) cr_skip_test("valgrind not installed");
    char dir[] = "/tmp/unit_counters.XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[4096], json[256], cg[256];
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(cg, sizeof cg, "%s/cg.out", dir);
    /* 1. the harness: one tiny case, cachesim */
    snprintf(cmd, sizeof cmd,
             "%s --cachesim --backends=bump --workloads=bufchurn bufchurn.buffers=200 bufchurn.size=64 "
             "bufchurn.mode=steady --benchmark_out=%s --benchmark_out_format=json >/dev/null 2>%s/err",
             exe, json, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    int64_t ir = json_number(json, "sim.Ir"), d1 = json_number(json, "sim.D1mr");
    cr_assert_gt(ir, 0, "no sim.Ir in %s", json);
    cr_assert_geq(d1, 0);
    /* 2. by hand: the same --run-child command under callgrind, its result written to
     *    /dev/null; after min_time (0: one run), the child's arguments are bufchurn's
     *    parameters in order */
    const al_workload *w = al_workload_find("bufchurn");
    cr_assert_not_null(w);
    char params[512] = "";
    for (int i = 0; i < w->nparams; i++) {
        long long v = w->params[i].def;
        if (strcmp(w->params[i].name, "buffers") == 0) v = 200;
        if (strcmp(w->params[i].name, "size") == 0) v = 64;
        if (strcmp(w->params[i].name, "mode") == 0) {
            const char *c = w->params[i].choices, *at = strstr(c, "steady");
            cr_assert_not_null(at);
            v = 0;
            for (const char *q = c; q < at; q++) v += *q == '|';
        }
        size_t l = strlen(params);
        snprintf(params + l, sizeof params - l, " %lld", v);
    }
    snprintf(cmd, sizeof cmd,
             "ALLOCLAB_CACHESIM=1 valgrind -q --tool=callgrind --cache-sim=yes "
             "--toggle-collect=al_measured_region --I1=%s --D1=%s --LL=%s --callgrind-out-file=%s "
             "%s --run-child 1 bufchurn bump 1 1 0 -1 0%s >/dev/null 2>%s/err2",
             AL_CTR_SIM_I1, AL_CTR_SIM_D1, AL_CTR_SIM_LL, cg, exe, params, dir);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    /* an independent reading of the output: the first number of the summary line is Ir */
    FILE *f = fopen(cg, "r");
    cr_assert_not_null(f);
    char line[4096];
    long long ir2 = -1, d1mr2 = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "summary:", 8) == 0) {
            long long e[9];
            if (sscanf(line + 8, "%lld %lld %lld %lld %lld", &e[0], &e[1], &e[2], &e[3], &e[4]) == 5) {
                ir2 = e[0];
                d1mr2 = e[4];
            }
        }
    fclose(f);
    cr_assert_eq(ir, ir2, "harness sim.Ir %lld, independent callgrind run %lld", (long long)ir, ir2);
    /* D1 misses: the simulated cache is warm with whatever ran before the region, which has
     * been seen to differ by one line (0 vs 1 miss) once in a loaded `make test`; Ir is exact */
    long long dd = (long long)d1 - d1mr2;
    cr_assert(d1mr2 >= 0 && dd >= -2 && dd <= 2 && (dd == 0 || d1mr2 < 100 || dd * 100 <= d1mr2),
              "harness sim.D1mr %lld, independent callgrind run %lld", (long long)d1, d1mr2);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
