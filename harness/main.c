/* main.c - the alloclab program: options, the case list, and the Google Benchmark run.
 *
 * Architecture (data flow in shared/specs/design.md):
 *   1. parse and validate the whole command line first: any mistake prints one line and exits
 *      with status 2 before a result file is opened, so no file is written or truncated;
 *   2. build the case list: for each selected workload, the cartesian product of its sweep
 *      (its bench_matrix, with command-line params replacing swept values) x thread counts (for
 *      multi-threaded workloads) x selected backends, in that order so that backends of one
 *      configuration run next to each other;
 *   3. probe each selected backend once in a child (its version, or why it cannot be created)
 *      and put that, with the machine, compiler and commit, in the results context;
 *   4. register every case with Google Benchmark (gbshim.cc): one repetition = one fresh
 *      child process (runner.c) that times only the workload's measured region;
 *   5. the result file named by --benchmark_out is written to "<name>.tmp.<pid>" and renamed
 *      into place only when the run completes, so an interrupted run never leaves a
 *      half-written file under the real name, and earlier results are never touched.
 * Each case's counters: ns per operation, operations per second, peak RSS, RSS growth, peak
 * live bytes and their ratio, page faults, and the backend's own stats when it has them.
 * A crash, a time-out or a failed verification becomes that case's error row; the run goes on.
 */
#include "allocator.h"
#include "clock.h"
#include "counters.h"
#include "gbshim.h"
#include "interleave.h"
#include "params.h"
#include "runner.h"
#include "stats.h"
#include "workload.h"

#include <alloca.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef ALLOCLAB_COMMIT
#define ALLOCLAB_COMMIT "unknown"
#endif
#ifndef ALLOCLAB_CFLAGS
#define ALLOCLAB_CFLAGS "unknown"
#endif

#define MAX_CASES 20000
#define MAX_SWEEP 32
#define MAX_OVERRIDES 64

/* ---- errors: one line, exit 2 ---- */

#define usage_error(...) al_usage_error("alloclab", __VA_ARGS__)

/* ---- numbers ---- */

static double parse_positive_double(const char *what, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || !isfinite(v))
        usage_error("%s must be a positive number, got \"%s\"", what, s);
    return v;
}

/* ---- options ---- */

typedef struct sweep {
    int n;
    long long v[MAX_SWEEP];
} sweep;

typedef struct override {
    const al_workload *w; /* NULL: every selected workload that has the parameter */
    char param[64];
    char values[256];
} override;

static struct options {
    int list, bench, quick;
    double scale, timeout;
    uint64_t seed;
    const al_backend *backends[64];
    int nbackends;
    const al_workload *workloads[64];
    int nworkloads;
    int threads[16];
    int nthreads;
    override ov[MAX_OVERRIDES];
    int nov;
    int warmup;            /* run each case once, unmeasured, before its repetitions */
    double min_time;       /* a repetition lasts at least this (s): a short workload reruns */
    int min_time_given;
    uint32_t latency_period; /* the warm-up run samples 1 in N operations' latency (0: off) */
    int pin_cpu;           /* -1: children are not pinned */
    double rss_interval_ms;
    int shard_i, shard_n;  /* run only cases with index % shard_n == shard_i - 1 */
    int repetitions;       /* --benchmark_repetitions as given, 1 when absent */
    const char *filter;    /* --benchmark_filter */
    const char *out;       /* --benchmark_out as given */
    char out_tmp[4096];
    char series_out[4096], series_tmp[4200];
    char stats_out[4096], stats_tmp[4200];
} opt;

static const char *self_exe;

static void print_help(void)
{
    printf(
        "usage: alloclab [options] [param=v1,v2 ...] [workload.param=v ...] [--benchmark_* ...]\n"
        "       alloclab compare A.json B.json    ratio of medians per case, Mann-Whitney U verdict\n"
        "       alloclab merge OUT.json SHARD.json...   join the files of --shard runs\n"
        "       alloclab interleave --workload=W [--backends=a,b] [param=v ...] [--rounds=N]\n"
        "                [--processes=K] [--scale=F] [--out=FILE.tsv]   the backends take turns\n"
        "                in one process, in K processes: each one's fastest round, every\n"
        "                pair's median ratio with its 95%% interval and sign test\n"
        "       alloclab interleave --from=FILE.tsv   that report again from an --out file\n"
        "       alloclab --usable-sizes BACKEND   requested -> usable bytes for 1..32768\n"
        "\n"
        "Runs every case (workload x backend x parameters x threads) in a fresh child process\n"
        "and reports it through Google Benchmark (console, --benchmark_out JSON/CSV).\n"
        "\n"
        "  --list                 backends and workloads, with their parameters\n"
        "  --backends=a,b         backends to run (default: all)\n"
        "  --workloads=a,b        workloads to run (default: all)\n"
        "  --threads=1,2,4        thread counts for multi-threaded workloads\n"
        "                         (default: 1,2,4,8 with --bench, else 1 and the core count)\n"
        "  --scale=F              multiply every work count by F (default 1)\n"
        "  --quick                --scale=0.1 and 3 repetitions (make bench QUICK=1)\n"
        "  --bench                the make-bench defaults: 5 repetitions, aggregates on the\n"
        "                         console, progress on stderr\n"
        "  --timeout=S            seconds before a case's child is killed (default 300)\n"
        "  --seed=N               workload seed (default 1)\n"
        "  --warmup=0|1           run each case once, unmeasured, first (default 1)\n"
        "  --min_time=S           a repetition lasts at least S seconds: a shorter case runs\n"
        "                         its workload again, back to back on one heap, until then,\n"
        "                         and reports the time of one run (total / runs, as Google\n"
        "                         Benchmark reports per iteration); default 0, 0.2 with\n"
        "                         --bench, 0.01 with --quick\n"
        "  --latency_period=N     the warm-up run times 1 in N allocator calls for the\n"
        "                         latency percentiles (default 16; 0 = off)\n"
        "  --pin=CPU              pin every case's child to one CPU\n"
        "  --rss_interval_ms=MS   RSS sampling interval for the memory-over-time series (10)\n"
        "  --shard=I/N            run the I-th of N deterministic slices of the case list\n"
        "  --counters=LIST        PAPI events around the measured region: default (L1/L2/L3\n"
        "                         data misses, data-TLB misses, instructions), none, sde (the\n"
        "                         backend's SDE events only) or PAPI event names; the backend's\n"
        "                         stats are added as SDE events (sde:::BACKEND::Field)\n"
        "  --cachesim             run each case under callgrind's cache simulator: deterministic\n"
        "                         instructions and D1/LL misses per op (times are valgrind's)\n"
        "  param=v1,v2            sweep a parameter of every selected workload that has it\n"
        "  workload.param=v1,v2   sweep a parameter of one workload\n"
        "  --benchmark_*          Google Benchmark's flags (filter, repetitions, format, out, ...)\n");
}

static void add_list_item(const char *list, int is_backend)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (is_backend) {
            const al_backend *b = al_backend_find(tok);
            if (!b) usage_error("unknown backend \"%s\" (alloclab --list shows them)", tok);
            if (opt.nbackends == 64) usage_error("too many backends");
            opt.backends[opt.nbackends++] = b;
        } else {
            const al_workload *w = al_workload_find(tok);
            if (!w) usage_error("unknown workload \"%s\" (alloclab --list shows them)", tok);
            if (opt.nworkloads == 64) usage_error("too many workloads");
            opt.workloads[opt.nworkloads++] = w;
        }
    }
    if ((is_backend ? opt.nbackends : opt.nworkloads) == 0)
        usage_error("--%s needs at least one name", is_backend ? "backends" : "workloads");
}

static void parse_threads(const char *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    opt.nthreads = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long v;
        if (al_parse_ll(tok, 0, &v) || v < 1 || v > 1024)
            usage_error("--threads takes counts from 1 to 1024, got \"%s\"", tok);
        if (opt.nthreads == 16) usage_error("--threads: at most 16 values");
        opt.threads[opt.nthreads++] = (int)v;
    }
    if (!opt.nthreads) usage_error("--threads needs at least one count");
}

/* Parse "v1,v2" for parameter pd into sw; exits 2 on a bad value. */
static void parse_values(const al_workload *w, const al_param_def *pd, const char *values, sweep *sw)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", values);
    sw->n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long v = -1;
        if (al_param_value(pd, tok, &v) != 0) {
            if (pd->choices)
                usage_error("%s.%s must be one of %s, got \"%s\"", w->name, pd->name, pd->choices,
                            tok);
            usage_error("%s.%s must be a whole number from %lld to %lld, got \"%s\"", w->name,
                        pd->name, pd->min, pd->max, tok);
        }
        if (sw->n == MAX_SWEEP) usage_error("%s.%s: at most %d values", w->name, pd->name, MAX_SWEEP);
        sw->v[sw->n++] = v;
    }
    if (!sw->n) usage_error("%s.%s: no value given", w->name, pd->name);
}

static int gb_flag(const char *arg, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) == 0 && arg[n] == '=') {
        *val = arg + n + 1;
        return 1;
    }
    return 0;
}

/* Validate the Google Benchmark flags we know the meaning of, since libbenchmark itself
 * ignores or half-accepts malformed values. Unknown --benchmark_* flags are left to it. */
static void check_gb_flag(const char *arg)
{
    const char *v;
    long long n;
    if (gb_flag(arg, "--benchmark_repetitions", &v)) {
        if (al_parse_ll(v, 0, &n) || n < 1 || n > 100000)
            usage_error("--benchmark_repetitions must be a whole number >= 1, got \"%s\"", v);
        opt.repetitions = (int)n;
    } else if (gb_flag(arg, "--benchmark_format", &v) || gb_flag(arg, "--benchmark_out_format", &v)) {
        if (strcmp(v, "console") && strcmp(v, "json") && strcmp(v, "csv"))
            usage_error("%.*s must be console, json or csv, got \"%s\"", (int)(v - arg - 1), arg, v);
    } else if (gb_flag(arg, "--benchmark_filter", &v)) {
        opt.filter = v;
    } else if (gb_flag(arg, "--benchmark_out", &v)) {
        if (!*v) usage_error("--benchmark_out needs a file name");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", v);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        struct stat sb;
        if (slash && dir[0] && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
            usage_error("--benchmark_out: directory \"%s\" does not exist", dir);
        opt.out = v;
    } else if (gb_flag(arg, "--benchmark_min_time", &v)) {
        parse_positive_double("--benchmark_min_time", v);
    } else if (gb_flag(arg, "--benchmark_random_interleaving", &v) ||
               gb_flag(arg, "--benchmark_enable_random_interleaving", &v) ||
               gb_flag(arg, "--benchmark_display_aggregates_only", &v) ||
               gb_flag(arg, "--benchmark_report_aggregates_only", &v)) {
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
            usage_error("%.*s must be true or false, got \"%s\"", (int)(v - arg - 1), arg, v);
    }
}

/* ---- the case list ---- */

static al_case *cases;
static int ncases;

/* The sweep of workload w: its bench_matrix with command-line overrides applied. */
static void build_sweeps(const al_workload *w, sweep sw[AL_WL_MAX_PARAMS], int swept[AL_WL_MAX_PARAMS])
{
    for (int i = 0; i < w->nparams; i++) {
        sw[i].n = 1;
        sw[i].v[0] = w->params[i].def;
        swept[i] = 0;
    }
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", w->bench_matrix ? w->bench_matrix : "");
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        int pi = al_workload_param(w, tok);
        if (pi < 0) continue;
        parse_values(w, &w->params[pi], eq + 1, &sw[pi]);
        swept[pi] = 1;
    }
    for (int o = 0; o < opt.nov; o++) {
        if (opt.ov[o].w && opt.ov[o].w != w) continue;
        int pi = al_workload_param(w, opt.ov[o].param);
        if (pi < 0) continue;
        parse_values(w, &w->params[pi], opt.ov[o].values, &sw[pi]);
        swept[pi] = 1;
    }
}

static void add_cases(const al_workload *w)
{
    sweep sw[AL_WL_MAX_PARAMS];
    int swept[AL_WL_MAX_PARAMS];
    build_sweeps(w, sw, swept);
    int idx[AL_WL_MAX_PARAMS] = {0};
    int tcounts[16] = {1}, nt = 1;
    if (w->multithreaded) {
        nt = opt.nthreads;
        memcpy(tcounts, opt.threads, sizeof tcounts);
    }
    for (;;) {
        for (int t = 0; t < nt; t++)
            for (int bi = 0; bi < opt.nbackends; bi++) {
                if (ncases == MAX_CASES) usage_error("more than %d cases: narrow the sweep", MAX_CASES);
                al_case *c = &cases[ncases++];
                memset(c, 0, sizeof *c);
                c->w = w;
                c->b = opt.backends[bi];
                c->threads = tcounts[t];
                c->seed = opt.seed;
                c->pin_cpu = opt.pin_cpu;
                size_t len = (size_t)snprintf(c->name, sizeof c->name, "%s/%s", w->name, c->b->name);
                for (int i = 0; i < w->nparams; i++) {
                    long long v = sw[i].v[idx[i]];
                    if (w->params[i].flags & AL_PARAM_SCALED) { /* the name shows what runs */
                        double s = (double)llround((double)v * opt.scale);
                        v = s < 1 ? 1 : (long long)s;
                    }
                    c->p[i] = v;
                    if (swept[i]) {
                        char txt[64];
                        al_param_text(&w->params[i], v, txt, sizeof txt);
                        len += (size_t)snprintf(c->name + len, sizeof c->name - len, "/%s:%s",
                                                w->params[i].name, txt);
                    }
                }
                if (w->multithreaded)
                    snprintf(c->name + len, sizeof c->name - len, "/threads:%d", c->threads);
            }
        /* next combination of swept values (odometer) */
        int i = 0;
        for (; i < w->nparams; i++) {
            if (++idx[i] < sw[i].n) break;
            idx[i] = 0;
        }
        if (i == w->nparams) break;
    }
}

/* ---- context: what produced these results ---- */

static void read_first_line(const char *path, const char *prefix, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    size_t pl = prefix ? strlen(prefix) : 0;
    while (fgets(line, sizeof line, f)) {
        if (prefix && strncmp(line, prefix, pl) != 0) continue;
        char *s = prefix ? strchr(line, ':') : line;
        if (!s) continue;
        if (prefix) s++;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, "\n")] = 0;
        snprintf(out, n, "%s", s);
        break;
    }
    fclose(f);
}

static void add_context(void)
{
    char buf[1024];
    struct utsname u;
    al_gb_add_context("alloclab_commit", ALLOCLAB_COMMIT);
    al_gb_add_context("compiler", "gcc " __VERSION__);
    al_gb_add_context("cflags", ALLOCLAB_CFLAGS);
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s %s %s %s", u.sysname, u.release, u.version, u.machine);
        al_gb_add_context("kernel", buf);
        al_gb_add_context("hostname", u.nodename);
    }
    read_first_line("/proc/cpuinfo", "model name", buf, sizeof buf);
    al_gb_add_context("cpu_model", buf[0] ? buf : "unknown");
    snprintf(buf, sizeof buf, "%ld", sysconf(_SC_NPROCESSORS_ONLN));
    al_gb_add_context("cpus_online", buf);
    read_first_line("/proc/loadavg", NULL, buf, sizeof buf);
    al_gb_add_context("loadavg_at_start", buf);
    read_first_line("/proc/meminfo", "MemTotal", buf, sizeof buf);
    al_gb_add_context("mem_total", buf);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    al_gb_add_context("started_at", buf);
    snprintf(buf, sizeof buf, "%g", opt.scale);
    al_gb_add_context("scale", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)opt.seed);
    al_gb_add_context("seed", buf);
    snprintf(buf, sizeof buf, "%.0f", opt.timeout);
    al_gb_add_context("timeout_s", buf);
    al_gb_add_context("warmup", opt.warmup ? "1 unmeasured run per case before its repetitions" : "off");
    snprintf(buf, sizeof buf, "%g s (a repetition reruns a shorter workload on its heap until then)",
             opt.min_time);
    al_gb_add_context("min_time", opt.min_time > 0 && !al_ctr_cachesim() ? buf : "off");
    snprintf(buf, sizeof buf, "%u (the warm-up run times 1 in N allocator calls)", opt.latency_period);
    al_gb_add_context("latency_period", opt.warmup && opt.latency_period ? buf : "off");
    snprintf(buf, sizeof buf, "%d", opt.pin_cpu);
    al_gb_add_context("pin_cpu", opt.pin_cpu >= 0 ? buf : "none");
    snprintf(buf, sizeof buf, "%g", opt.rss_interval_ms);
    al_gb_add_context("rss_interval_ms", buf);
    snprintf(buf, sizeof buf, "%d/%d", opt.shard_i, opt.shard_n);
    al_gb_add_context("shard", buf);
}

/* Probe each selected backend in a child (its own LD_PRELOAD child where it needs one): the
 * version it reports from inside, or why it cannot be created. */
static void probe_backends(void)
{
    for (int i = 0; i < opt.nbackends; i++) {
        al_case c;
        memset(&c, 0, sizeof c);
        c.b = opt.backends[i];
        c.w = NULL;
        c.pin_cpu = -1;
        al_child_result r;
        char err[256], key[128], val[512];
        snprintf(key, sizeof key, "backend.%s", c.b->name);
        if (al_run_case(&c, 30, self_exe, &r, NULL, err, sizeof err) != 0)
            snprintf(val, sizeof val, "unavailable: %s", err);
        else if (r.status == AL_CHILD_CREATE_FAILED)
            snprintf(val, sizeof val, "unavailable: %s", r.msg);
        else
            snprintf(val, sizeof val, "%s", r.version[0] ? r.version : "(no version entry)");
        al_gb_add_context(key, val);
    }
}

/* ---- running ---- */

static int total_runs, runs_done, errors;
static uint64_t run_started_ns;

static void fmt_duration(double s, char *out, size_t n)
{
    if (s < 60) snprintf(out, n, "%.0fs", s);
    else if (s < 3600) snprintf(out, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(out, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void progress(const al_case *c)
{
    double el = (double)(al_now_ns() - run_started_ns) / 1e9;
    char e[32], r[32] = "?";
    fmt_duration(el, e, sizeof e);
    if (runs_done > 0) fmt_duration(el / runs_done * (total_runs - runs_done), r, sizeof r);
    fprintf(stderr, "[%d/%d] %s  (elapsed %s, remaining ~%s)\n", runs_done + 1, total_runs,
            c->name, e, r);
}

#define CV_NOISY 0.05 /* a case whose repetitions' CV exceeds 5% is flagged as noisy */
#define MAX_REP_TIMES 256

typedef struct case_state {
    int warmed, reps, ntimes;
    double times[MAX_REP_TIMES];
    int has_lat;
    char warm_err[300];
    al_lat_summary lat;
    double warm_s;
} case_state;

static case_state *cstate;
static FILE *series_f, *stats_f;
static al_rss_series series;
static al_stats_series stats_series;

/* The backend's stats over the sampled warm-up run: case, t_ms, stat name, value. */
static void write_stats_series(const al_case *c)
{
    if (!stats_f) return;
    for (int i = 0; i < stats_series.n; i++) {
        const al_stats_sample *x = &stats_series.v[i];
        for (int k = 0; k < AL_STAT_COUNT; k++)
            if (x->s.present & (UINT64_C(1) << k))
                fprintf(stats_f, "%s\t%.3f\t%s\t%llu\n", c->name, x->t_ms, al_stat_name(k),
                        (unsigned long long)al_stat_value(&x->s, k));
    }
}

static void report_latency(al_gb_state *st, const case_state *cs, double rep_s)
{
    static const char *kind[2] = {"alloc", "free"};
    for (int k = 0; k < 2; k++) {
        if (!cs->lat.samples[k]) continue;
        char n[64];
        snprintf(n, sizeof n, "lat_%s_p50_ns", kind[k]);
        al_gb_counter(st, n, cs->lat.p50[k], AL_GB_PLAIN);
        snprintf(n, sizeof n, "lat_%s_p99_ns", kind[k]);
        al_gb_counter(st, n, cs->lat.p99[k], AL_GB_PLAIN);
        snprintf(n, sizeof n, "lat_%s_p999_ns", kind[k]);
        al_gb_counter(st, n, cs->lat.p999[k], AL_GB_PLAIN);
        snprintf(n, sizeof n, "lat_%s_max_ns", kind[k]);
        al_gb_counter(st, n, cs->lat.max[k], AL_GB_PLAIN);
        snprintf(n, sizeof n, "lat_%s_samples", kind[k]);
        al_gb_counter(st, n, (double)cs->lat.samples[k], AL_GB_PLAIN);
    }
    al_gb_counter(st, "lat_resolution_ns", cs->lat.resolution_ns, AL_GB_PLAIN);
    /* the sampled warm-up run against this repetition: what sampling (and a first run) costs */
    if (rep_s > 0 && cs->warm_s > 0) al_gb_counter(st, "warmup_over_rep", cs->warm_s / rep_s, AL_GB_PLAIN);
}

static void write_series(const al_case *c)
{
    if (!series_f) return;
    for (int i = 0; i < series.n; i++)
        fprintf(series_f, "%s\t%.3f\t%llu\n", c->name, series.t_ms[i],
                (unsigned long long)series.rss[i]);
}

static void run_one(al_gb_state *st, void *arg)
{
    const al_case *c = arg;
    case_state *cs = &cstate[c - cases];
    while (al_gb_keep_running(st)) {
        al_child_result r;
        char err[256];
        if (opt.warmup && !cs->warmed) {
            /* The warm-up: not measured; it carries the latency sampler. */
            al_case wc = *c;
            wc.latency_period = opt.latency_period;
            wc.stats_interval_ms = stats_f ? (int)(opt.rss_interval_ms + 0.5) : 0;
            cs->warmed = 1;
            if (al_run_case_stats(&wc, opt.timeout, self_exe, &r, NULL, &stats_series, err,
                                  sizeof err) != 0) {
                /* crashed or hung: every repetition would do the same; don't wait for each */
                snprintf(cs->warm_err, sizeof cs->warm_err, "%s (in the warm-up run)", err);
            } else if (r.status == AL_CHILD_OK) {
                write_stats_series(c);
                cs->has_lat = r.has_latency;
                cs->lat = r.lat;
                cs->warm_s = (double)r.elapsed_ns / 1e9;
            }
        }
        if (cs->warm_err[0]) {
            runs_done++;
            errors++;
            al_gb_skip_with_error(st, cs->warm_err);
            continue;
        }
        if (opt.bench) progress(c);
        al_rss_series *ser = series_f && cs->reps == 0 ? &series : NULL;
        series.interval_ms = opt.rss_interval_ms;
        al_case rc_case = *c;
        rc_case.min_time = al_ctr_cachesim() ? 0 : opt.min_time; /* cachesim: one run */
        int rc = al_run_case(&rc_case, opt.timeout, self_exe, &r, ser, err, sizeof err);
        runs_done++;
        cs->reps++;
        if (rc != 0) {
            errors++;
            al_gb_skip_with_error(st, err);
            continue;
        }
        if (r.status == AL_CHILD_CREATE_FAILED) {
            char m[300];
            snprintf(m, sizeof m, "skipped: backend unavailable: %s", r.msg);
            al_gb_skip_with_error(st, m);
            continue;
        }
        if (r.status != AL_CHILD_OK) {
            errors++;
            char m[300];
            snprintf(m, sizeof m, "failed: %s", r.msg);
            al_gb_skip_with_error(st, m);
            continue;
        }
        if (ser) write_series(c);
        /* the time of one workload run (a repetition of k runs reports its total / k, as
         * Google Benchmark reports time per iteration); ops and ns_per_op per run too */
        double runs = r.runs ? (double)r.runs : 1, secs = (double)r.elapsed_ns / 1e9 / runs;
        if (cs->ntimes < MAX_REP_TIMES) cs->times[cs->ntimes++] = secs;
        al_gb_set_iteration_time(st, secs > 0 ? secs : 1e-9);
        double ops = (double)r.ops / runs;
        al_gb_counter(st, "runs", runs, AL_GB_PLAIN);
        al_gb_counter(st, "ops", ops, AL_GB_PLAIN);
        al_gb_counter(st, "ns_per_op", ops > 0 ? secs * 1e9 / ops : 0, AL_GB_PLAIN);
        al_gb_counter(st, "ops_per_s", secs > 0 ? ops / secs : 0, AL_GB_PLAIN);
        al_gb_counter(st, "peak_rss", (double)r.peak_rss, AL_GB_BYTES);
        double growth = r.peak_rss > r.rss_before ? (double)(r.peak_rss - r.rss_before) : 0;
        al_gb_counter(st, "rss_growth", growth, AL_GB_BYTES);
        al_gb_counter(st, "peak_live", (double)r.peak_live, AL_GB_BYTES);
        if (r.peak_live > 0) al_gb_counter(st, "mem_ratio", growth / (double)r.peak_live, AL_GB_PLAIN);
        /* The part of the growth that is not file pages (the program's code, first executed
         * in this fresh child, counts in VmRSS too): file pages only grow during a run, so
         * peak - before - file growth bounds the anonymous (heap, stack) growth at the peak. */
        double file_growth =
            r.file_after > r.file_before ? (double)(r.file_after - r.file_before) : 0;
        double heap_growth = growth > file_growth ? growth - file_growth : 0;
        al_gb_counter(st, "heap_growth", heap_growth, AL_GB_BYTES);
        if (r.peak_live > 0)
            al_gb_counter(st, "heap_ratio", heap_growth / (double)r.peak_live, AL_GB_PLAIN);
        al_gb_counter(st, "minflt", (double)r.minflt, AL_GB_PLAIN);
        al_gb_counter(st, "majflt", (double)r.majflt, AL_GB_PLAIN);
        if (r.has_stats)
            for (int i = 0; i < AL_STAT_COUNT; i++)
                if (r.stats.present & (UINT64_C(1) << i)) {
                    char name[64];
                    snprintf(name, sizeof name, "stat.%s", al_stat_name(i));
                    al_gb_counter(st, name, (double)al_stat_value(&r.stats, i), AL_GB_PLAIN);
                }
        if (cs->has_lat) report_latency(st, cs, secs);
        al_ctr_report(st, &r.ctr, r.ops); /* papi.*, sde.*, sim.* (counters.c) */
    }
}

/* Flag the cases whose repetitions vary by more than CV_NOISY: on stderr, and in the results
 * file as a top-level "alloclab_noisy" list (Google Benchmark's JSON ends with "]\n}\n"; the
 * list goes before that final brace). Returns the number of noisy cases. */
static int flag_noisy(const char *json_path)
{
    int noisy = 0;
    FILE *f = json_path ? fopen(json_path, "r+") : NULL;
    long end = -1;
    if (f) { /* find the final '}' */
        fseek(f, 0, SEEK_END);
        for (long pos = ftell(f) - 1; pos >= 0 && end < 0; pos--) {
            fseek(f, pos, SEEK_SET);
            if (fgetc(f) == '}') end = pos;
        }
        if (end < 0) {
            fclose(f);
            f = NULL;
        } else {
            fseek(f, end, SEEK_SET);
            fprintf(f, ",\n  \"alloclab_cv_threshold\": %g,\n  \"alloclab_noisy\": [", CV_NOISY);
        }
    }
    for (int i = 0; i < ncases; i++) {
        double cv = al_stats_cv(cstate[i].times, (size_t)cstate[i].ntimes);
        if (cv <= CV_NOISY) continue;
        if (!noisy) fprintf(stderr, "alloclab: NOISY (cv of the repetitions > %.0f%%):\n", CV_NOISY * 100);
        fprintf(stderr, "  %-70s cv %.1f%%\n", cases[i].name, cv * 100);
        if (f) fprintf(f, "%s\n    {\"name\": \"%s\", \"cv\": %.4f}", noisy ? "," : "", cases[i].name, cv);
        noisy++;
    }
    if (f) {
        fprintf(f, "\n  ]\n}\n");
        if (ftruncate(fileno(f), ftell(f)) != 0) { /* the write above already sized it */ }
        fclose(f);
    }
    return noisy;
}

static void on_signal(int sig)
{
    /* async-signal-safe: write(2) only */
    static const char a[] = "\nalloclab: interrupted; earlier result files are untouched";
    static const char b[] = "; the partial results of this run are in ";
    if (write(2, a, sizeof a - 1) < 0) {}
    if (opt.out_tmp[0]) {
        if (write(2, b, sizeof b - 1) < 0) {}
        if (write(2, opt.out_tmp, strlen(opt.out_tmp)) < 0) {}
    }
    if (write(2, "\n", 1) < 0) {}
    _exit(128 + sig);
}

/* Count the cases --benchmark_filter selects (for the progress line). Google Benchmark
 * uses std::regex (ECMAScript); POSIX extended regex agrees on the usual filters. */
static int count_selected(void)
{
    if (!opt.filter || !*opt.filter || strcmp(opt.filter, "all") == 0 || strcmp(opt.filter, ".") == 0)
        return ncases;
    const char *f = opt.filter;
    int negate = f[0] == '-';
    regex_t re;
    if (regcomp(&re, f + negate, REG_EXTENDED | REG_NOSUB) != 0) return ncases;
    int n = 0;
    for (int i = 0; i < ncases; i++)
        n += (regexec(&re, cases[i].name, 0, NULL, 0) == 0) != negate;
    regfree(&re);
    return n;
}

/* The `--run-child FD workload backend threads seed latency_period pin_cpu min_time p...` entry
 * of a re-executed child (runner.c fmt_case_args writes it). */
static int run_child_entry(int argc, char **argv)
{
    if (argc < 7) return 5;
    al_case c;
    memset(&c, 0, sizeof c);
    int fd = atoi(argv[2]);
    c.w = strcmp(argv[3], "-") == 0 ? NULL : al_workload_find(argv[3]);
    c.b = al_backend_find(argv[4]);
    if (!c.b || (strcmp(argv[3], "-") != 0 && !c.w)) return 5;
    c.threads = atoi(argv[5]);
    c.seed = strtoull(argv[6], NULL, 10);
    if (argc < 9) return 5;
    c.latency_period = (uint32_t)strtoul(argv[7], NULL, 10);
    c.pin_cpu = atoi(argv[8]);
    if (argc < 10) return 5;
    c.min_time = strtod(argv[9], NULL);
    const char *sms = getenv("ALLOCLAB_STATS_SERIES_MS");
    c.stats_interval_ms = sms ? atoi(sms) : 0;
    for (int i = 0; c.w && i < c.w->nparams && 10 + i < argc; i++) c.p[i] = strtoll(argv[10 + i], NULL, 10);
    /* cachesim: the child's stack at a fixed address modulo 1 MiB, so simulated misses do not
     * depend on the environment's size or the program's path (16 bytes otherwise; counters.h) */
    volatile char *stack_pad = alloca(al_ctr_stack_pad((uintptr_t)__builtin_frame_address(0)));
    stack_pad[0] = 0;
    al_child_main(&c, fd);
}

static void list_all(void)
{
    printf("backends:\n");
    for (int i = 0; i < al_backend_count(); i++) {
        const al_backend *b = al_backend_at(i);
        printf("  %-12s %s\n", b->name, b->desc);
        /* what it signs beyond the required four: what the suite tests and charts can show */
        static const char *cap[] = {"thread-safe", "free-noop", "needs-size", "test-only",
                                    "preload"};
        const struct { const void *e; const char *n; } opt[] = {
            {(const void *)b->realloc, "realloc"}, {(const void *)b->alloc_aligned, "alloc_aligned"},
            {(const void *)b->usable_size, "usable_size"},
            {(const void *)b->thread_detach, "thread_detach"}, {(const void *)b->collect, "collect"},
            {(const void *)b->stats, "stats"}, {(const void *)b->check, "check"},
            {(const void *)b->atfork, "atfork"}};
        printf("  %-12s", "");
        for (size_t k = 0; k < sizeof cap / sizeof cap[0]; k++)
            if (b->caps & (1u << k)) printf(" %s", cap[k]);
        printf(";");
        for (size_t k = 0; k < sizeof opt / sizeof opt[0]; k++)
            if (opt[k].e) printf(" %s", opt[k].n);
        printf("\n");
    }
    printf("\nworkloads (parameters: name=default [range] description):\n");
    for (int i = 0; i < al_workload_count(); i++) {
        const al_workload *w = al_workload_at(i);
        printf("  %-12s %s%s\n", w->name, w->desc, w->multithreaded ? " [multi-threaded]" : "");
        for (int j = 0; j < w->nparams; j++) {
            const al_param_def *pd = &w->params[j];
            char def[64], range[96];
            al_param_text(pd, pd->def, def, sizeof def);
            if (pd->choices) snprintf(range, sizeof range, "%s", pd->choices);
            else snprintf(range, sizeof range, "%lld..%lld", pd->min, pd->max);
            printf("      %s=%-10s [%s] %s%s\n", pd->name, def, range, pd->desc,
                   pd->flags & AL_PARAM_SCALED ? " (x --scale)" : "");
        }
        if (w->bench_matrix && *w->bench_matrix) printf("      sweep: %s\n", w->bench_matrix);
    }
}

int main(int argc, char **argv)
{
    self_exe = "/proc/self/exe";
    static char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el > 0) {
        exe[el] = 0;
        self_exe = exe;
    }
    if (argc >= 2 && strcmp(argv[1], "--run-child") == 0) return run_child_entry(argc, argv);
    if (argc == 3 && strcmp(argv[1], "--usable-sizes") == 0) {
        /* requested size -> usable size for 1..32768 B: the size-class waste chart's data */
        const al_backend *b = al_backend_find(argv[2]);
        if (!b) usage_error("unknown backend \"%s\"", argv[2]);
        if (!b->usable_size) usage_error("backend %s has no usable_size entry", argv[2]);
        char err[256];
        void *h = b->create(NULL, err, sizeof err);
        if (!h) usage_error("backend %s: create() failed: %s", argv[2], err);
        printf("requested\tusable\n");
        for (size_t sz = 1; sz <= 32768; sz++) {
            void *p = b->alloc(h, sz);
            if (!p) usage_error("backend %s: alloc(%zu) failed", argv[2], sz);
            printf("%zu\t%zu\n", sz, b->usable_size(h, p));
            b->free(h, p, sz);
        }
        b->destroy(h);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "interleave") == 0)
        return al_interleave_main(argc - 2, argv + 2, ALLOCLAB_COMMIT);
    if (argc >= 2 && (strcmp(argv[1], "compare") == 0 || strcmp(argv[1], "merge") == 0)) {
        /* alloclab compare A.json B.json / alloclab merge OUT.json SHARD.json...: the scripts
         * beside the build (<exe>/../scripts/), which use jq */
        char script[4200];
        const char *slash = strrchr(self_exe, '/');
        snprintf(script, sizeof script, "%.*s/../scripts/%s.sh", slash ? (int)(slash - self_exe) : 1,
                 slash ? self_exe : ".", argv[1]);
        argv[1] = script;
        execv("/bin/bash", argv);
        fprintf(stderr, "alloclab: cannot run %s: %s\n", script, strerror(errno));
        return 2;
    }

    opt.scale = 1;
    opt.timeout = 300;
    opt.seed = 1;
    opt.repetitions = 1;
    opt.warmup = 1;
    opt.latency_period = 16;
    opt.pin_cpu = -1;
    opt.rss_interval_ms = 10;
    opt.shard_n = 1;
    opt.shard_i = 1;
    int scale_given = 0, threads_given = 0, reps_given = 0;

    /* Pass 1: our own options (removed from argv); GB flags are validated and kept. */
    int gargc = 1;
    char **gargv = calloc((size_t)argc + 4, sizeof *gargv);
    if (!gargv) return 1;
    gargv[0] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help();
            return 0;
        } else if (strcmp(a, "--list") == 0) {
            opt.list = 1;
        } else if (strcmp(a, "--bench") == 0) {
            opt.bench = 1;
        } else if (strcmp(a, "--quick") == 0) {
            opt.quick = 1;
        } else if (gb_flag(a, "--backends", &v)) {
            add_list_item(v, 1);
        } else if (gb_flag(a, "--workloads", &v)) {
            add_list_item(v, 0);
        } else if (gb_flag(a, "--threads", &v)) {
            parse_threads(v);
            threads_given = 1;
        } else if (gb_flag(a, "--scale", &v)) {
            opt.scale = parse_positive_double("--scale", v);
            scale_given = 1;
        } else if (gb_flag(a, "--timeout", &v)) {
            opt.timeout = parse_positive_double("--timeout", v);
        } else if (gb_flag(a, "--warmup", &v)) {
            if (strcmp(v, "0") && strcmp(v, "1")) usage_error("--warmup takes 0 or 1, got \"%s\"", v);
            opt.warmup = v[0] == '1';
        } else if (gb_flag(a, "--min_time", &v)) {
            char *end;
            errno = 0;
            opt.min_time = strtod(v, &end);
            if (errno || end == v || *end || !(opt.min_time >= 0) || opt.min_time > 60)
                usage_error("--min_time must be seconds from 0 to 60, got \"%s\"", v);
            opt.min_time_given = 1;
        } else if (gb_flag(a, "--latency_period", &v)) {
            long long n;
            if (al_parse_ll(v, 0, &n) || n > 1000000)
                usage_error("--latency_period must be a whole number from 0 to 1000000, got \"%s\"", v);
            opt.latency_period = (uint32_t)n;
        } else if (gb_flag(a, "--pin", &v)) {
            long long n;
            if (al_parse_ll(v, 0, &n) || n >= sysconf(_SC_NPROCESSORS_ONLN))
                usage_error("--pin takes a CPU number below %ld, got \"%s\"",
                            sysconf(_SC_NPROCESSORS_ONLN), v);
            opt.pin_cpu = (int)n;
        } else if (gb_flag(a, "--rss_interval_ms", &v)) {
            opt.rss_interval_ms = parse_positive_double("--rss_interval_ms", v);
        } else if (gb_flag(a, "--shard", &v)) {
            long long i, n;
            char b1[32], b2[32];
            const char *sl = strchr(v, '/');
            if (!sl || (size_t)(sl - v) >= sizeof b1) usage_error("--shard takes I/N, got \"%s\"", v);
            snprintf(b1, sizeof b1, "%.*s", (int)(sl - v), v);
            snprintf(b2, sizeof b2, "%s", sl + 1);
            if (al_parse_ll(b1, 0, &i) || al_parse_ll(b2, 0, &n) || n < 1 || i < 1 || i > n || n > 100000)
                usage_error("--shard takes I/N with 1 <= I <= N, got \"%s\"", v);
            opt.shard_i = (int)i;
            opt.shard_n = (int)n;
        } else if (gb_flag(a, "--counters", &v)) { /* counters.c */
            char e[256];
            if (al_ctr_parse(v, e, sizeof e) != 0) usage_error("%s", e);
        } else if (strcmp(a, "--cachesim") == 0) {
            al_ctr_set_cachesim(1);
        } else if (gb_flag(a, "--seed", &v)) {
            long long s;
            if (al_parse_ll(v, 0, &s)) usage_error("--seed must be a whole number, got \"%s\"", v);
            opt.seed = (uint64_t)s;
        } else if (strncmp(a, "--benchmark_", 12) == 0) {
            check_gb_flag(a);
            if (strncmp(a, "--benchmark_repetitions=", 24) == 0) reps_given = 1;
            gargv[gargc++] = argv[i];
        } else if (a[0] != '-' && strchr(a, '=')) {
            if (opt.nov == MAX_OVERRIDES) usage_error("too many parameter settings");
            override *o = &opt.ov[opt.nov++];
            const char *eq = strchr(a, '='), *dot = memchr(a, '.', (size_t)(eq - a));
            if (dot) {
                char wn[64];
                snprintf(wn, sizeof wn, "%.*s", (int)(dot - a), a);
                o->w = al_workload_find(wn);
                if (!o->w) usage_error("unknown workload \"%s\" in \"%s\"", wn, a);
                snprintf(o->param, sizeof o->param, "%.*s", (int)(eq - dot - 1), dot + 1);
            } else {
                snprintf(o->param, sizeof o->param, "%.*s", (int)(eq - a), a);
            }
            snprintf(o->values, sizeof o->values, "%s", eq + 1);
        } else {
            usage_error("unknown argument \"%s\"", a);
        }
    }
    if (opt.list) {
        list_all();
        return 0;
    }
    if (opt.quick && !scale_given) opt.scale = 0.1;
    if (!opt.min_time_given) opt.min_time = opt.quick ? 0.01 : opt.bench ? 0.2 : 0;
    if (!opt.nbackends)
        for (int i = 0; i < al_backend_count(); i++) opt.backends[opt.nbackends++] = al_backend_at(i);
    if (!opt.nworkloads)
        for (int i = 0; i < al_workload_count(); i++) opt.workloads[opt.nworkloads++] = al_workload_at(i);
    if (!threads_given) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        if (opt.bench) {
            int d[] = {1, 2, 4, 8};
            memcpy(opt.threads, d, sizeof d);
            opt.nthreads = 4;
        } else {
            opt.threads[0] = 1;
            opt.nthreads = 1;
            if (ncpu > 1) opt.threads[opt.nthreads++] = (int)ncpu;
        }
    }
    /* Every parameter setting must name a parameter some selected workload has. */
    for (int o = 0; o < opt.nov; o++) {
        int found = 0;
        for (int i = 0; i < opt.nworkloads && !found; i++) {
            const al_workload *w = opt.workloads[i];
            if (opt.ov[o].w && opt.ov[o].w != w) continue;
            found = al_workload_param(w, opt.ov[o].param) >= 0;
        }
        if (!found)
            usage_error("no selected workload has a parameter \"%s\"%s", opt.ov[o].param,
                        opt.ov[o].w ? "" : " (alloclab --list shows them)");
    }
    { /* counters (counters.c): bad event names are bad input; cachesim skips warm-up runs */
        char e[300];
        if (al_ctr_validate(e, sizeof e) != 0) usage_error("%s", e);
        if (al_ctr_cachesim()) opt.warmup = 0;
    }
    cases = calloc(MAX_CASES, sizeof *cases);
    if (!cases) return 1;
    for (int i = 0; i < opt.nworkloads; i++) add_cases(opt.workloads[i]);
    if (opt.shard_n > 1) { /* deterministic slice: every shard_n-th case of the full list */
        int k = 0;
        for (int i = 0; i < ncases; i++)
            if (i % opt.shard_n == opt.shard_i - 1) cases[k++] = cases[i];
        ncases = k;
        if (!ncases) usage_error("shard %d/%d holds no case", opt.shard_i, opt.shard_n);
    }
    cstate = calloc((size_t)ncases, sizeof *cstate);
    series.cap = 4096;
    series.t_ms = calloc((size_t)series.cap, sizeof *series.t_ms);
    series.rss = calloc((size_t)series.cap, sizeof *series.rss);
    if (!cstate || !series.t_ms || !series.rss) return 1;

    if (count_selected() == 0)
        usage_error("no case matches --benchmark_filter=%s", opt.filter);

    /* make-bench defaults, unless the user said otherwise */
    static char reps_arg[64], aggr_arg[] = "--benchmark_display_aggregates_only=true";
    if ((opt.bench || opt.quick) && !reps_given && !al_ctr_cachesim()) { /* cachesim: deterministic, 1 */
        opt.repetitions = opt.quick ? 3 : 5;
        snprintf(reps_arg, sizeof reps_arg, "--benchmark_repetitions=%d", opt.repetitions);
        gargv[gargc++] = reps_arg;
    }
    static char interleave_arg[] = "--benchmark_enable_random_interleaving=true";
    if (opt.bench) {
        gargv[gargc++] = aggr_arg;
        int given = 0;
        for (int i = 1; i < gargc; i++)
            given |= strncmp(gargv[i], "--benchmark_enable_random_interleaving", 38) == 0;
        if (!given) gargv[gargc++] = interleave_arg;
    }
    /* The result file is written under a temporary name, renamed when complete. Beside it,
     * the RSS series of each case's first repetition: <out minus .json>.rss.tsv. */
    static char out_arg[4200];
    if (opt.out) {
        size_t ol = strlen(opt.out);
        int dotjson = ol > 5 && strcmp(opt.out + ol - 5, ".json") == 0;
        snprintf(opt.series_out, sizeof opt.series_out, "%.*s.rss.tsv", (int)(dotjson ? ol - 5 : ol), opt.out);
        snprintf(opt.series_tmp, sizeof opt.series_tmp, "%s.tmp.%ld", opt.series_out, (long)getpid());
        snprintf(opt.stats_out, sizeof opt.stats_out, "%.*s.stats.tsv", (int)(dotjson ? ol - 5 : ol), opt.out);
        snprintf(opt.stats_tmp, sizeof opt.stats_tmp, "%s.tmp.%ld", opt.stats_out, (long)getpid());
        snprintf(opt.out_tmp, sizeof opt.out_tmp, "%s.tmp.%ld", opt.out, (long)getpid());
        for (int i = 1; i < gargc; i++)
            if (strncmp(gargv[i], "--benchmark_out=", 16) == 0) {
                snprintf(out_arg, sizeof out_arg, "--benchmark_out=%s", opt.out_tmp);
                gargv[i] = out_arg;
            }
    }
    gargv[gargc] = NULL;

    al_gb_initialize(&gargc, gargv);
    if (al_gb_unrecognized(gargc, gargv)) exit(2);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    add_context();
    al_ctr_add_context();
    probe_backends();
    if (opt.out) {
        series_f = fopen(opt.series_tmp, "w");
        if (series_f) fprintf(series_f, "case\tt_ms\trss_bytes\n");
        if (opt.warmup) {
            stats_series.cap = 4096;
            stats_series.v = calloc((size_t)stats_series.cap, sizeof *stats_series.v);
            stats_f = stats_series.v ? fopen(opt.stats_tmp, "w") : NULL;
            if (stats_f) fprintf(stats_f, "case\tt_ms\tstat\tvalue\n");
        }
    }
    for (int i = 0; i < ncases; i++) al_gb_register(cases[i].name, run_one, &cases[i]);
    total_runs = count_selected() * opt.repetitions;
    run_started_ns = al_now_ns();
    size_t ran = al_gb_run();
    al_gb_shutdown();

    if (series_f) fclose(series_f);
    if (stats_f) fclose(stats_f);
    if (stats_f && (!ran || rename(opt.stats_tmp, opt.stats_out) != 0)) unlink(opt.stats_tmp);
    if (ran && opt.out) {
        /* only a JSON result file gets the list; CSV/console outputs just get the stderr lines */
        int json = 0;
        for (int i = 1; i < argc; i++)
            if (strcmp(argv[i], "--benchmark_out_format=json") == 0) json = 1;
        flag_noisy(json ? opt.out_tmp : NULL);
    } else if (ran) {
        flag_noisy(NULL);
    }
    if (ran == 0 && opt.out) {
        unlink(opt.out_tmp);
        unlink(opt.series_tmp);
    }
    if (ran && series_f && rename(opt.series_tmp, opt.series_out) != 0)
        fprintf(stderr, "alloclab: could not write %s: %s\n", opt.series_out, strerror(errno));
    if (ran && opt.out) {
        if (rename(opt.out_tmp, opt.out) != 0) {
            fprintf(stderr, "alloclab: could not write %s: %s\n", opt.out, strerror(errno));
            return 1;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "alloclab: no case matches --benchmark_filter=%s\n", opt.filter ? opt.filter : "");
        return 2;
    }
    if (opt.bench || errors)
        fprintf(stderr, "alloclab: %d runs of %zu cases, %d failed\n", runs_done, ran, errors);
    return 0;
}
