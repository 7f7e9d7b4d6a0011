/* runner.c - see runner.h. */
#include "runner.h"

#include "clock.h"
#include "counters.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sched.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct child_clock {
    uint64_t paused_at, paused_total;
} child_clock;

static void child_pause(al_wl_ctx *ctx)
{
    child_clock *k = ctx->harness;
    k->paused_at = al_now_ns();
    al_ctr_pause(); /* counters (counters.c): after the clock, so their reads are not timed */
}

static void child_resume(al_wl_ctx *ctx)
{
    child_clock *k = ctx->harness;
    al_ctr_resume();
    k->paused_total += al_now_ns() - k->paused_at;
}

/* A "Name:   123 kB" line of /proc/self/status, in bytes; 0 when absent. */
static uint64_t status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t n = strlen(name);
    uint64_t v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3);
        p += w;
        n -= (size_t)w;
    }
}

/* The measured region: one call, under one name, so that tools (callgrind's
 * --toggle-collect=al_measured_region) can count exactly this and nothing else. */
__attribute__((noinline)) int al_measured_region(int (*run)(al_wl_ctx *), al_wl_ctx *ctx)
{
    int rc = run(ctx);
    __asm__ volatile("" ::: "memory");
    return rc;
}

/* The stats sampler of the warm-up run: a thread calling stats() every interval. */
#define STATS_SAMPLES_MAX 4096

typedef struct stats_sampler {
    const al_backend *b;
    void *heap;
    int interval_ms;
    _Atomic int stop;
    uint64_t t0;
    uint32_t n;
    al_stats_sample v[STATS_SAMPLES_MAX];
} stats_sampler;

static void *stats_sampler_main(void *arg)
{
    stats_sampler *sm = arg;
    while (!atomic_load(&sm->stop) && sm->n < STATS_SAMPLES_MAX) {
        al_stats_sample *x = &sm->v[sm->n];
        sm->b->stats(sm->heap, &x->s);
        x->t_ms = (double)(al_now_ns() - sm->t0) / 1e6;
        sm->n++;
        struct timespec ts = {sm->interval_ms / 1000, (long)(sm->interval_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

void al_child_main(const al_case *c, int fd)
{
    static al_child_result r;
    if (c->pin_cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(c->pin_cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) { /* reported by the parent's context */ }
    }
    memset(&r, 0, sizeof r);
    r.magic = AL_RESULT_MAGIC;
    if (c->b->version) snprintf(r.version, sizeof r.version, "%s", c->b->version());

    char err[256] = "";
    void *heap = c->b->create(NULL, err, sizeof err);
    if (!heap) {
        r.status = AL_CHILD_CREATE_FAILED;
        snprintf(r.msg, sizeof r.msg, "%s", err[0] ? err : "create() failed");
        write_all(fd, "R", 1);
        write_all(fd, &r, sizeof r);
        _exit(0);
    }

    if (!c->w) { /* a probe: the version and whether create() works, nothing else */
        write_all(fd, "R", 1);
        write_all(fd, &r, sizeof r);
        _exit(0);
    }

    child_clock clk = {0, 0};
    al_wl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.b = c->b;
    ctx.heap = heap;
    memcpy(ctx.p, c->p, sizeof ctx.p);
    ctx.threads = c->threads;
    ctx.seed = c->seed;
    ctx.pause = child_pause;
    ctx.resume = child_resume;
    ctx.harness = &clk;
    if (c->latency_period) {
        const al_backend *wrapped = al_lat_wrap(c->b, c->latency_period);
        if (wrapped) ctx.b = wrapped;
    }

    al_ctr_child_init(c->b, heap, &r.ctr); /* counters: PAPI, SDE (counters.c); before the
                                            * RSS mark, so PAPI's memory is not the case's */
    /* Reset the peak-RSS mark to what is resident now (Linux >= 4.0), so VmHWM is this
     * case's peak and not the parent's. */
    int cr = open("/proc/self/clear_refs", O_WRONLY);
    if (cr >= 0) {
        if (write(cr, "5", 1) != 1) { /* an old kernel: the peak then includes the start */ }
        close(cr);
    }
    r.rss_before = status_kb("VmRSS");
    r.file_before = status_kb("RssFile");
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    static stats_sampler sampler;
    pthread_t sampler_thread;
    int sampling = 0;
    if (c->stats_interval_ms > 0 && c->b->stats) {
        sampler.b = c->b;
        sampler.heap = heap;
        sampler.interval_ms = c->stats_interval_ms;
        sampler.t0 = al_now_ns();
        sampling = pthread_create(&sampler_thread, NULL, stats_sampler_main, &sampler) == 0;
    }
    write_all(fd, "B", 1); /* the parent's RSS series starts its clock here */
    al_ctr_start();
    uint64_t t0 = al_now_ns();
    /* The workload runs back to back on the same heap until the measured time reaches
     * min_time (at least once): a short case is repeated, as Google Benchmark repeats
     * iterations, and its time per run is the total / runs. Each run verifies its own data. */
    uint64_t ops = 0, peak_live = 0, t1, want = (uint64_t)(c->min_time * 1e9);
    uint32_t runs = 0;
    int rc;
    do {
        ctx.ops = ctx.peak_live = 0;
        rc = al_measured_region(c->w->run, &ctx);
        runs++;
        ops += ctx.ops;
        if (ctx.peak_live > peak_live) peak_live = ctx.peak_live;
        t1 = al_now_ns();
    } while (rc == 0 && t1 - t0 - clk.paused_total < want && runs < AL_MAX_RUNS);
    al_ctr_stop(&r.ctr);
    getrusage(RUSAGE_SELF, &ru1);

    r.elapsed_ns = t1 - t0 - clk.paused_total;
    r.runs = runs;
    r.ops = ops;
    r.peak_live = peak_live;
    r.checksum = ctx.checksum;
    r.peak_rss = status_kb("VmHWM");
    r.file_after = status_kb("RssFile");
    r.minflt = (uint64_t)(ru1.ru_minflt - ru0.ru_minflt);
    r.majflt = (uint64_t)(ru1.ru_majflt - ru0.ru_majflt);
    if (rc != 0) {
        r.status = AL_CHILD_WORKLOAD_FAILED;
        snprintf(r.msg, sizeof r.msg, "%s", ctx.err[0] ? ctx.err : "workload failed");
    } else if (c->b->stats) {
        r.has_stats = c->b->stats(heap, &r.stats) == 0;
    }
    if (c->latency_period && ctx.b != c->b) {
        al_lat_report(&r.lat);
        r.has_latency = 1;
    }
    if (sampling) {
        atomic_store(&sampler.stop, 1);
        pthread_join(sampler_thread, NULL);
        r.n_stats_samples = sampler.n;
    }
    write_all(fd, "R", 1);
    write_all(fd, &r, sizeof r);
    if (r.n_stats_samples) write_all(fd, sampler.v, r.n_stats_samples * sizeof sampler.v[0]);
    /* The heap is not destroyed: the process ends here and the kernel takes it all back;
     * a backend whose data is corrupt could crash in destroy() after a good result. */
    _exit(0);
}

static void fmt_case_args(const al_case *c, char args[][32], char **argv, int *argc)
{
    int n = *argc;
    snprintf(args[0], 32, "%d", c->threads);
    argv[n++] = args[0];
    snprintf(args[1], 32, "%llu", (unsigned long long)c->seed);
    argv[n++] = args[1];
    snprintf(args[2], 32, "%u", c->latency_period);
    argv[n++] = args[2];
    snprintf(args[3], 32, "%d", c->pin_cpu);
    argv[n++] = args[3];
    snprintf(args[4], 32, "%.17g", c->min_time);
    argv[n++] = args[4];
    for (int i = 0; c->w && i < c->w->nparams; i++) {
        snprintf(args[5 + i], 32, "%lld", c->p[i]);
        argv[n++] = args[5 + i];
    }
    argv[n] = NULL;
    *argc = n;
}

static uint64_t child_rss(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void series_add(al_rss_series *s, double t_ms, uint64_t rss)
{
    if (s->n == s->cap) { /* full: keep every other sample and sample half as often */
        for (int i = 0; i < s->n / 2; i++) {
            s->t_ms[i] = s->t_ms[2 * i];
            s->rss[i] = s->rss[2 * i];
        }
        s->n /= 2;
        s->interval_ms *= 2;
    }
    s->t_ms[s->n] = t_ms;
    s->rss[s->n++] = rss;
}

int al_run_case(const al_case *c, double timeout_s, const char *self_exe, al_child_result *r,
                al_rss_series *series, char *err, size_t errlen)
{
    return al_run_case_stats(c, timeout_s, self_exe, r, series, NULL, err, errlen);
}

int al_run_case_stats(const al_case *c, double timeout_s, const char *self_exe,
                      al_child_result *r, al_rss_series *series, al_stats_series *ss, char *err,
                      size_t errlen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        if (c->b->preload || al_ctr_needs_exec()) {
            /* The allocator must be in place before main(): re-execute ourselves with it
             * preloaded; the new image rebuilds this case from its arguments. */
            char fdarg[16], args[5 + AL_WL_MAX_PARAMS][32];
            char *argv[9 + AL_WL_MAX_PARAMS];
            int argc = 0;
            int wfd = dup(fds[1]); /* without O_CLOEXEC, so it survives exec */
            snprintf(fdarg, sizeof fdarg, "%d", wfd);
            argv[argc++] = (char *)self_exe;
            argv[argc++] = "--run-child";
            argv[argc++] = fdarg;
            argv[argc++] = c->w ? (char *)c->w->name : "-";
            argv[argc++] = (char *)c->b->name;
            fmt_case_args(c, args, argv, &argc);
            if (c->b->preload) setenv("LD_PRELOAD", c->b->preload, 1);
                if (c->stats_interval_ms > 0) {
                char ms[16];
                snprintf(ms, sizeof ms, "%d", c->stats_interval_ms);
                setenv("ALLOCLAB_STATS_SERIES_MS", ms, 1);
            }
            al_ctr_exec(argv); /* under valgrind in cachesim mode (counters.c) */
            _exit(4);
        }
        al_child_main(c, fds[1]);
    }
    close(fds[1]);

    memset(r, 0, sizeof *r);
    if (series) series->n = 0;
    size_t got = 0;
    int in_result = 0;
    uint64_t started = al_now_ns(), begin = 0, next_sample = started;
    uint64_t deadline = started + (uint64_t)(timeout_s * 1e9);
    int timed_out = 0;
    while (got < sizeof *r) {
        uint64_t now = al_now_ns();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        if (series && series->cap && now >= next_sample) {
            uint64_t origin = begin ? begin : started;
            double t = ((double)now - (double)origin) / 1e6;
            series_add(series, t, child_rss(pid));
            next_sample = now + (uint64_t)(series->interval_ms * 1e6);
        }
        uint64_t wake = deadline;
        if (series && series->cap && next_sample < wake) wake = next_sample;
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int left_ms = (int)((wake - now) / 1000000) + 1;
        int pr = poll(&pfd, 1, left_ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) continue;
        if (!in_result) { /* tags: 'B' = measured region begins, 'R' = the result follows */
            char tag;
            ssize_t n = read(fds[0], &tag, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            if (tag == 'B') {
                begin = al_now_ns();
                if (series) /* samples so far were setup: make their times negative */
                    for (int i = 0; i < series->n; i++)
                        series->t_ms[i] -= ((double)begin - (double)started) / 1e6;
            } else if (tag == 'R') {
                in_result = 1;
            }
            continue;
        }
        ssize_t n = read(fds[0], (char *)r + got, sizeof *r - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    if (ss) ss->n = 0;
    if (!timed_out && got == sizeof *r && r->n_stats_samples) {
        /* the stats samples follow the result; read them all (the child blocks otherwise) */
        size_t want = (size_t)r->n_stats_samples * sizeof(al_stats_sample), have = 0;
        al_stats_sample x;
        while (have < want && al_now_ns() < deadline) {
            struct pollfd pfd = {fds[0], POLLIN, 0};
            if (poll(&pfd, 1, 100) <= 0) continue;
            size_t off = have % sizeof x;
            ssize_t n = read(fds[0], (char *)&x + off, sizeof x - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
            if (have % sizeof x == 0 && ss && ss->n < ss->cap) ss->v[ss->n++] = x;
        }
    }
    close(fds[0]);
    if (timed_out) kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (al_ctr_cachesim()) /* read and delete callgrind's output (counters.c) */
        al_ctr_cachesim_collect(pid, c->w && got == sizeof *r ? &r->ctr : NULL);

    if (timed_out) {
        snprintf(err, errlen, "timed out after %.0f s (killed)", timeout_s);
        return -1;
    }
    if (WIFSIGNALED(st) && got < sizeof *r) {
        int sig = WTERMSIG(st);
        snprintf(err, errlen, "crashed: SIG%s (%s)", sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                 strsignal(sig));
        return -1;
    }
    if (got < sizeof *r || r->magic != AL_RESULT_MAGIC) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 4)
            snprintf(err, errlen, "could not re-execute %s%s%s%s", self_exe,
                     al_ctr_cachesim() ? " under valgrind" : "", c->b->preload ? " with LD_PRELOAD=" : "",
                     c->b->preload ? c->b->preload : "");
        else
            snprintf(err, errlen, "child exited with status %d before reporting",
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        return -1;
    }
    return 0;
}
