/* interleave.c - `alloclab interleave`: one single-threaded workload case on several backends
 * in the same process, in turns, repeated in fresh processes.
 *
 * Why: `make bench` runs every repetition in a fresh child, so a case's time carries the
 * child's luck (where the loader, libc and the backend put things: on this VM single
 * repetitions of one case spread by +-15%) and the machine's load at that moment. Here the
 * backends take turns inside one process: round r runs the workload once on each backend
 * (the order rotates by one each round), all on heaps made and warmed up once, so a load
 * burst hits every backend alike; and K processes repeat that, each making the heaps in a
 * different order, so one layout's luck shows as spread instead of as a ranking.
 *
 * Per process and backend the fastest round's ns/op is kept (the least disturbed run); the
 * report gives, per backend, the median over processes of that figure with its range, the
 * median of its ratio to the best other backend of the same process, and in how many
 * processes it was the fastest; then for every pair a / b the median over processes of the
 * ratio a / b, a distribution-free 95% interval of that median (order statistics) and a sign
 * test. The pairs are the fair ranking: the best of several others is biased low (of three
 * backends of equal speed each is the fastest in a third of the processes, so each one's
 * median ratio to the best other is above 1). A child announces each run before it starts it, so when a
 * backend crashes or hangs (--timeout, default 300 s per process) the parent knows which one:
 * it is reported as failed and that process runs again without it. A run that fails its
 * workload's own check drops its backend in that process only.
 *
 *   alloclab interleave --workload=W [--backends=a,b] [param=v | W.param=v ...]
 *                       [--rounds=N] [--processes=K] [--scale=F] [--seed=N] [--out=FILE]
 * Defaults: every registered backend that runs in this process and frees memory (not an
 * LD_PRELOAD backend, not a free-is-a-no-op one: rounds would pile up its memory), 15
 * rounds, 10 processes, scale 1. --out writes one TSV row per process and backend (process,
 * backend, fastest and median round ns/op, ops per run); `alloclab interleave --from=FILE`
 * prints the report again from such a file. Bad input: one line, exit 2.
 */
#include "interleave.h"

#include "clock.h"
#include "params.h"
#include "stats.h"
#include "workload.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IL_MAX_BACKENDS 32
#define IL_MAX_PROCS 1000

#define il_usage(...) al_usage_error("alloclab interleave", __VA_ARGS__)

typedef struct il_opts {
    const al_workload *w;
    long long p[AL_WL_MAX_PARAMS];
    const al_backend *b[IL_MAX_BACKENDS];
    int nb;
    int rounds, procs;
    double scale;
    uint64_t seed;
    const char *out;
    unsigned timeout;
    int skip[IL_MAX_BACKENDS]; /* crashed or hung in an earlier process: not run again */
} il_opts;

/* The measured-region clock of one run: resume/pause add up the time between them. */
typedef struct il_clock {
    uint64_t started, total;
} il_clock;

static void il_resume(al_wl_ctx *ctx)
{
    il_clock *c = ctx->harness;
    c->started = al_now_ns();
}

static void il_pause(al_wl_ctx *ctx)
{
    il_clock *c = ctx->harness;
    c->total += al_now_ns() - c->started;
}

/* One run of the case on backend b's heap h. Returns ns per op (> 0), or -1 with err set. */
static double il_run(const il_opts *o, const al_backend *b, void *h, char *err, size_t errlen,
                     uint64_t *ops)
{
    il_clock clk = {0, 0};
    al_wl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.b = b;
    ctx.heap = h;
    memcpy(ctx.p, o->p, sizeof ctx.p);
    ctx.threads = 1;
    ctx.seed = o->seed;
    ctx.pause = il_pause;
    ctx.resume = il_resume;
    ctx.harness = &clk;
    il_resume(&ctx);
    int rc = o->w->run(&ctx);
    il_pause(&ctx);
    if (rc != 0) {
        snprintf(err, errlen, "%s", ctx.err[0] ? ctx.err : "the workload failed");
        return -1;
    }
    if (!ctx.ops) {
        snprintf(err, errlen, "the workload counted no operation");
        return -1;
    }
    *ops = ctx.ops;
    return (double)clk.total / (double)ctx.ops;
}

/* Child number p: every backend's heap and one warm-up run each, in an order rotated by p
 * (which heap a process makes first moves where all of them land in memory, and that alone
 * can move a backend by 10%: every backend is made first in some processes), then the
 * rounds. Writes one line per backend to fd: "i <fastest> <median> <ops>" or "i E
 * <message>". Exits 0. */
static void il_child(const il_opts *o, int p, int fd)
{
    FILE *f = fdopen(fd, "w");
    if (!f) _exit(1);
    alarm(o->timeout); /* a hang dies of SIGALRM; the parent names the backend running */
    void *heap[IL_MAX_BACKENDS] = {0};
    int ok[IL_MAX_BACKENDS] = {0};
    uint64_t ops[IL_MAX_BACKENDS] = {0};
    double *t = calloc((size_t)o->nb * (size_t)o->rounds, sizeof *t);
    if (!t) _exit(1);
    char err[256];
    for (int k = 0; k < o->nb; k++) {
        int i = (k + p) % o->nb;
        if (o->skip[i]) continue;
        fprintf(f, "R %d\n", i);
        fflush(f);
        heap[i] = o->b[i]->create("", err, sizeof err);
        if (!heap[i]) {
            fprintf(f, "%d E create() failed: %s\n", i, err);
            continue;
        }
        if (il_run(o, o->b[i], heap[i], err, sizeof err, &ops[i]) < 0) /* warm-up */
            fprintf(f, "%d E %s (warm-up run)\n", i, err);
        else
            ok[i] = 1;
    }
    for (int r = 0; r < o->rounds; r++) {
        for (int k = 0; k < o->nb; k++) {
            int i = (k + r) % o->nb;
            if (!ok[i]) continue;
            fprintf(f, "R %d\n", i);
            fflush(f);
            double ns = il_run(o, o->b[i], heap[i], err, sizeof err, &ops[i]);
            if (ns < 0) {
                fprintf(f, "%d E %s (round %d)\n", i, err, r + 1);
                ok[i] = 0;
                continue;
            }
            t[(size_t)i * (size_t)o->rounds + (size_t)r] = ns;
        }
    }
    for (int i = 0; i < o->nb; i++) {
        if (!ok[i]) continue;
        double *v = t + (size_t)i * (size_t)o->rounds;
        fprintf(f, "%d %.6f %.6f %llu\n", i, al_stats_min(v, (size_t)o->rounds),
                al_stats_median(v, (size_t)o->rounds),
                (unsigned long long)ops[i]);
    }
    fflush(f);
    _exit(0);
}

static void parse_backends(il_opts *o, const char *list)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    o->nb = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        const al_backend *b = al_backend_find(tok);
        if (!b) il_usage("unknown backend \"%s\"", tok);
        if (b->caps & AL_CAP_PRELOAD)
            il_usage("backend %s runs only in an LD_PRELOAD child, not in this process", tok);
        for (int i = 0; i < o->nb; i++)
            if (o->b[i] == b) il_usage("backend %s given twice", tok);
        if (o->nb == IL_MAX_BACKENDS) il_usage("at most %d backends", IL_MAX_BACKENDS);
        o->b[o->nb++] = b;
    }
    if (o->nb < 2) il_usage("--backends needs at least two backends to compare");
}

/* Parse argv (after "interleave") into o; exits 2 on any mistake. */
static void il_parse(il_opts *o, int argc, char **argv)
{
    const char *wl = NULL, *backends = NULL;
    const char *pv[64];
    int npv = 0;
    o->rounds = 15;
    o->procs = 10;
    o->scale = 1;
    o->seed = 1;
    o->timeout = 300;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long long n;
        if (strncmp(a, "--workload=", 11) == 0) {
            wl = a + 11;
        } else if (strncmp(a, "--backends=", 11) == 0) {
            backends = a + 11;
        } else if (strncmp(a, "--rounds=", 9) == 0) {
            if (al_parse_ll(a + 9, 0, &n) || n < 1 || n > 100000)
                il_usage("--rounds must be a whole number from 1 to 100000, got \"%s\"", a + 9);
            o->rounds = (int)n;
        } else if (strncmp(a, "--processes=", 12) == 0) {
            if (al_parse_ll(a + 12, 0, &n) || n < 1 || n > IL_MAX_PROCS)
                il_usage("--processes must be a whole number from 1 to %d, got \"%s\"",
                         IL_MAX_PROCS, a + 12);
            o->procs = (int)n;
        } else if (strncmp(a, "--scale=", 8) == 0) {
            char *end;
            errno = 0;
            o->scale = strtod(a + 8, &end);
            if (errno || end == a + 8 || *end || !(o->scale > 0) || !isfinite(o->scale))
                il_usage("--scale must be a positive number, got \"%s\"", a + 8);
        } else if (strncmp(a, "--seed=", 7) == 0) {
            if (al_parse_ll(a + 7, 0, &n)) il_usage("--seed must be a whole number, got \"%s\"", a + 7);
            o->seed = (uint64_t)n;
        } else if (strncmp(a, "--timeout=", 10) == 0) {
            if (al_parse_ll(a + 10, 0, &n) || n < 1 || n > 86400)
                il_usage("--timeout must be whole seconds from 1 to 86400, got \"%s\"", a + 10);
            o->timeout = (unsigned)n;
        } else if (strncmp(a, "--out=", 6) == 0) {
            o->out = a + 6;
            if (!*o->out) il_usage("--out needs a file name");
        } else if (a[0] != '-' && strchr(a, '=')) {
            if (npv == 64) il_usage("at most 64 parameters");
            pv[npv++] = a;
        } else {
            il_usage("unknown option \"%s\"", a);
        }
    }
    if (!wl) il_usage("--workload=NAME is required");
    o->w = al_workload_find(wl);
    if (!o->w) il_usage("unknown workload \"%s\"", wl);
    if (o->w->multithreaded) il_usage("workload %s is multi-threaded; interleave runs one thread", wl);
    for (int k = 0; k < o->w->nparams; k++) o->p[k] = o->w->params[k].def;
    for (int j = 0; j < npv; j++) {
        const char *eq = strchr(pv[j], '='), *name = pv[j];
        size_t wlen = strlen(o->w->name);
        if (strncmp(name, o->w->name, wlen) == 0 && name[wlen] == '.') name += wlen + 1;
        char pname[64];
        snprintf(pname, sizeof pname, "%.*s", (int)(eq - name), name);
        int k = al_workload_param(o->w, pname);
        if (k < 0) il_usage("workload %s has no parameter \"%s\"", o->w->name, pname);
        const al_param_def *pd = &o->w->params[k];
        if (al_param_value(pd, eq + 1, &o->p[k]) != 0) {
            if (pd->choices)
                il_usage("%s.%s must be one of %s, got \"%s\"", o->w->name, pd->name,
                         pd->choices, eq + 1);
            il_usage("%s.%s must be a whole number from %lld to %lld, got \"%s\"", o->w->name,
                     pd->name, pd->min, pd->max, eq + 1);
        }
    }
    for (int k = 0; k < o->w->nparams; k++) {
        if (!(o->w->params[k].flags & AL_PARAM_SCALED)) continue;
        double v = floor((double)o->p[k] * o->scale);
        o->p[k] = v < 1 ? 1 : v > (double)o->w->params[k].max ? o->w->params[k].max : (long long)v;
    }
    if (backends) {
        parse_backends(o, backends);
    } else {
        o->nb = 0;
        for (int i = 0; i < al_backend_count() && o->nb < IL_MAX_BACKENDS; i++) {
            const al_backend *b = al_backend_at(i);
            if (!(b->caps & (AL_CAP_PRELOAD | AL_CAP_FREE_NOOP))) o->b[o->nb++] = b;
        }
    }
    if (o->out) { /* refuse a path we cannot write before anything runs */
        FILE *f = fopen(o->out, "a");
        if (!f) il_usage("--out: cannot write \"%s\": %s", o->out, strerror(errno));
        fclose(f);
    }
}

/* What one process reported. */
typedef struct il_proc {
    int done;                         /* it ran and reported */
    double fast[IL_MAX_BACKENDS];     /* fastest round's ns/op, 0 = none */
    double med[IL_MAX_BACKENDS];
    unsigned long long ops[IL_MAX_BACKENDS];
} il_proc;

/* One pair's line: a / b = the median over processes of a's ns/op / b's (both measured),
 * its 95% interval, in how many processes a was the faster, the sign test's p. The pair is
 * turned so that a is the faster by median. Returns -1 when out of memory, else 0. */
static int il_pair(const char *const *names, const il_proc *pr, int procs, int a, int b)
{
    double *r = malloc((size_t)procs * sizeof *r);
    if (!r) return -1;
    size_t n = 0, faster = 0, ties = 0;
    for (int p = 0; p < procs; p++) {
        if (pr[p].fast[a] <= 0 || pr[p].fast[b] <= 0) continue;
        r[n++] = pr[p].fast[a] / pr[p].fast[b];
    }
    if (n == 0) {
        free(r);
        return 0;
    }
    double m = al_stats_median(r, n);
    if (m > 1) { /* the other way round */
        int t = a;
        a = b;
        b = t;
        for (size_t k = 0; k < n; k++) r[k] = 1 / r[k];
        m = 1 / m;
    }
    for (size_t k = 0; k < n; k++) faster += r[k] < 1, ties += r[k] == 1;
    char pair[80], ci[40] = "(fewer than 6)", mark = ' ';
    double lo, hi;
    snprintf(pair, sizeof pair, "%s / %s", names[a], names[b]);
    if (al_stats_median_ci95(r, n, &lo, &hi) == 0) {
        snprintf(ci, sizeof ci, "[%.3f .. %.3f]", lo, hi);
        if (hi < 1) mark = '*';
    }
    double sp = al_stats_sign_p(faster, n - ties);
    char spt[16];
    if (sp < 0.0001)
        snprintf(spt, sizeof spt, "<0.0001");
    else
        snprintf(spt, sizeof spt, "%.4f", sp);
    printf("%-26s %6.3f%c %-18s %4zu of %-4zu %8s\n", pair, m, mark, ci, faster, n, spt);
    free(r);
    return 0;
}

/* The report: per backend the median [range] over processes of its fastest round, the
 * median ratio to the best other backend of the same process and how often it was the
 * fastest; then every pair. errs[i]: why backend i failed, or "". one_build: the processes
 * all ran this program (not a --from file, which may pool several builds). Returns -1 when
 * out of memory, else 0. */
static int il_report(const char *const *names, int nb, const il_proc *pr, int procs,
                     const char (*errs)[300], int one_build)
{
    printf("ns per op: each process's fastest round; median [range] over processes\n");
    printf("%-12s %9s  %-19s %10s  %s\n", "backend", "ns/op", "[range]", "vs best", "fastest in");
    double *v = calloc((size_t)procs, sizeof *v), *r = calloc((size_t)procs, sizeof *r);
    if (!v || !r) {
        free(v);
        free(r);
        return -1;
    }
    for (int i = 0; i < nb; i++) {
        int n = 0, nr = 0, first = 0;
        for (int p = 0; p < procs; p++) {
            if (pr[p].fast[i] <= 0) continue;
            v[n++] = pr[p].fast[i];
            double best = 0;
            for (int j = 0; j < nb; j++)
                if (j != i && pr[p].fast[j] > 0 && (best == 0 || pr[p].fast[j] < best))
                    best = pr[p].fast[j];
            if (best > 0) {
                r[nr++] = pr[p].fast[i] / best;
                first += pr[p].fast[i] < best;
            }
        }
        if (!n) {
            printf("%-12s %9s  failed: %s\n", names[i], "-", errs[i][0] ? errs[i] : "no result");
            continue;
        }
        char range[64], vs[32] = "-";
        snprintf(range, sizeof range, "[%.2f .. %.2f]", al_stats_min(v, (size_t)n),
                 al_stats_max(v, (size_t)n));
        if (nr) snprintf(vs, sizeof vs, "%.3f", al_stats_median(r, (size_t)nr));
        printf("%-12s %9.2f  %-19s %10s  %d of %d\n", names[i], al_stats_median(v, (size_t)n),
               range, vs, first, nr);
        if (errs[i][0]) printf("%-12s %9s  (some runs failed: %s)\n", "", "", errs[i]);
    }
    free(v);
    free(r);
    printf("vs best: median over processes of ns/op / the fastest other backend's, same process\n"
           "  (the fastest of several noisy others is biased low: backends of equal speed read\n"
           "  above 1 here; the pairs below compare two at a time)\n");
    printf("\n%-26s %6s  %-18s %-12s %8s\n", "pair a / b", "ratio", "[95% interval]",
           "a faster in", "sign p");
    for (int a = 0; a < nb; a++)
        for (int b = a + 1; b < nb; b++)
            if (il_pair(names, pr, procs, a, b) != 0) return -1;
    printf("ratio: median over processes of a's ns/op / b's, same process, a the faster by it;\n"
           "  95%% interval of that median from the order statistics (distribution-free, none\n"
           "  below 6 processes), * when it lies below 1; sign p: two-sided sign test of a\n"
           "  faster in that many processes (ties left out). p < 0.05 and * rank the pair;\n"
           "  otherwise the run cannot tell the two apart.\n");
    if (one_build)
        printf("All processes ran one build, one layout of code and data:\n"
               "  scripts/interleave-layouts.sh samples several.\n");
    return 0;
}

/* `alloclab interleave --from=FILE`: the report again from a TSV that --out wrote (its
 * ns/op columns; processes and backends as named there). Returns the exit status; exits 2
 * on a file that cannot be read or is not such a TSV. */
static int il_from(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) il_usage("--from: cannot read \"%s\": %s", path, strerror(errno));
    static char names_buf[IL_MAX_BACKENDS][64];
    const char *names[IL_MAX_BACKENDS];
    static il_proc pr[IL_MAX_PROCS];
    static const char errs[IL_MAX_BACKENDS][300];
    int nb = 0, procs = 0, rows = 0;
    char line[512];
    const char *head = "process\tbackend\tfastest_ns_per_op\tmedian_ns_per_op\tops_per_run\n";
    if (!fgets(line, sizeof line, f) || strcmp(line, head) != 0) {
        fclose(f);
        il_usage("--from: \"%s\" is not a TSV written by interleave --out", path);
    }
    for (int ln = 2; fgets(line, sizeof line, f); ln++) {
        int proc, n = 0;
        char name[64];
        double fast, med;
        unsigned long long ops;
        if (sscanf(line, "%d\t%63[^\t]\t%lf\t%lf\t%llu%n", &proc, name, &fast, &med, &ops, &n) != 5 ||
            (line[n] != '\n' && line[n] != 0) || proc < 1 || proc > IL_MAX_PROCS || !(fast > 0) ||
            !isfinite(fast) || !(med >= fast) || !isfinite(med)) {
            fclose(f);
            il_usage("--from: %s line %d is not a row of process, backend, fastest, median, ops",
                     path, ln);
        }
        int i = 0;
        while (i < nb && strcmp(names[i], name) != 0) i++;
        if (i == nb) {
            if (nb == IL_MAX_BACKENDS) {
                fclose(f);
                il_usage("--from: %s has more than %d backends", path, IL_MAX_BACKENDS);
            }
            snprintf(names_buf[nb], sizeof names_buf[nb], "%s", name);
            names[nb] = names_buf[nb];
            nb++;
        }
        if (pr[proc - 1].fast[i] > 0) {
            fclose(f);
            il_usage("--from: %s line %d: process %d has backend %s twice", path, ln, proc, name);
        }
        pr[proc - 1].fast[i] = fast;
        pr[proc - 1].med[i] = med;
        pr[proc - 1].ops[i] = ops;
        if (proc > procs) procs = proc;
        rows++;
    }
    fclose(f);
    if (nb < 2) il_usage("--from: %s has fewer than two backends", path);
    printf("interleave: from %s: %d backends, %d processes, %d rows\n", path, nb, procs, rows);
    return il_report(names, nb, pr, procs, errs, 0) != 0;
}

int al_interleave_main(int argc, char **argv, const char *commit)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--from=", 7) != 0) continue;
        if (argc != 1) il_usage("--from=FILE takes no other option");
        if (!argv[i][7]) il_usage("--from needs a file name");
        return il_from(argv[i] + 7);
    }
    il_opts o;
    memset(&o, 0, sizeof o);
    il_parse(&o, argc, argv);
    il_proc *pr = calloc((size_t)o.procs, sizeof *pr);
    char (*errs)[300] = calloc(IL_MAX_BACKENDS, sizeof *errs);
    if (!pr || !errs) return 1;

    char ptext[512] = "";
    for (int k = 0; k < o.w->nparams; k++) {
        char v[64];
        size_t l = strlen(ptext);
        al_param_text(&o.w->params[k], o.p[k], v, sizeof v);
        snprintf(ptext + l, sizeof ptext - l, " %s=%s", o.w->params[k].name, v);
    }
    printf("interleave: %s%s; %d backends take turns, %d rounds per process, %d processes\n",
           o.w->name, ptext, o.nb, o.rounds, o.procs);
    char when[64] = "?", load[64] = "?";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(load, sizeof load, lf)) snprintf(load, sizeof load, "?");
        load[strcspn(load, " ")] = 0;
        fclose(lf);
    }
    printf("alloclab %s, %s, load average %s, seed %llu, scale %g\n", commit, when, load,
           (unsigned long long)o.seed, o.scale);
    fflush(stdout);

    int tty = isatty(STDERR_FILENO);
    for (int p = 0; p < o.procs; p++) {
        int fd[2];
        if (pipe(fd) != 0) {
            fprintf(stderr, "alloclab interleave: pipe: %s\n", strerror(errno));
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "alloclab interleave: fork: %s\n", strerror(errno));
            return 1;
        }
        if (pid == 0) {
            close(fd[0]);
            il_child(&o, p, fd[1]);
        }
        close(fd[1]);
        FILE *f = fdopen(fd[0], "r");
        char line[512];
        int running = -1;
        while (f && fgets(line, sizeof line, f)) {
            int i, n = 0;
            if (sscanf(line, "R %d", &i) == 1) {
                running = i;
                continue;
            }
            if (sscanf(line, "%d %n", &i, &n) != 1 || i < 0 || i >= o.nb) continue;
            const char *rest = line + n;
            if (rest[0] == 'E' && rest[1] == ' ') {
                line[strcspn(line, "\n")] = 0;
                if (!errs[i][0]) snprintf(errs[i], sizeof errs[i], "%s", rest + 2);
                continue;
            }
            if (sscanf(rest, "%lf %lf %llu", &pr[p].fast[i], &pr[p].med[i], &pr[p].ops[i]) != 3)
                pr[p].fast[i] = 0;
        }
        if (f) fclose(f);
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            pr[p].done = 1;
        } else {
            memset(pr[p].fast, 0, sizeof pr[p].fast);
            char why[96];
            if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
                snprintf(why, sizeof why, "hung (no result within --timeout=%u s)", o.timeout);
            else if (WIFSIGNALED(st))
                snprintf(why, sizeof why, "crashed: signal %d (%s)", WTERMSIG(st),
                         strsignal(WTERMSIG(st)));
            else
                snprintf(why, sizeof why, "its process exited with status %d", WEXITSTATUS(st));
            if (running >= 0 && !o.skip[running]) {
                /* that backend's fault: drop it, run this process again without it */
                o.skip[running] = 1;
                snprintf(errs[running], sizeof errs[running], "%s", why);
                fprintf(stderr, "alloclab interleave: %s %s; running without it\n",
                        o.b[running]->name, why);
                p--;
                continue;
            }
            fprintf(stderr, "alloclab interleave: process %d %s; left out\n", p + 1, why);
        }
        if (tty) fprintf(stderr, "\rinterleave: %d/%d processes", p + 1, o.procs);
    }
    if (tty) fprintf(stderr, "\n");

    FILE *out = NULL;
    if (o.out) {
        out = fopen(o.out, "w");
        if (!out) {
            fprintf(stderr, "alloclab interleave: cannot write %s: %s\n", o.out, strerror(errno));
            return 1;
        }
        fprintf(out, "process\tbackend\tfastest_ns_per_op\tmedian_ns_per_op\tops_per_run\n");
        for (int p = 0; p < o.procs; p++)
            for (int i = 0; i < o.nb; i++)
                if (pr[p].fast[i] > 0)
                    fprintf(out, "%d\t%s\t%.4f\t%.4f\t%llu\n", p + 1, o.b[i]->name, pr[p].fast[i],
                            pr[p].med[i], pr[p].ops[i]);
    }

    const char *names[IL_MAX_BACKENDS];
    for (int i = 0; i < o.nb; i++) names[i] = o.b[i]->name;
    if (il_report(names, o.nb, pr, o.procs, errs, 1) != 0) return 1;
    if (out && fclose(out) != 0) {
        fprintf(stderr, "alloclab interleave: writing %s failed\n", o.out);
        return 1;
    }
    return 0;
}
