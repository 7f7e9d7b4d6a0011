/* runner.h - one case in one fresh child process.
 *
 * A case is workload x backend x parameters x threads. run_case() forks (or, for a backend
 * that must be LD_PRELOADed, forks and re-executes alloclab with LD_PRELOAD set), the child
 * creates the heap, runs the workload's measured region, reads its own time, page faults and
 * peak RSS, and writes one al_child_result down a pipe. The parent waits with a time limit and
 * turns a crash, a time-out or a short result into an error it can report. */
#ifndef ALLOCLAB_RUNNER_H
#define ALLOCLAB_RUNNER_H

#include "allocator.h"
#include "workload.h"

#include "counters.h"
#include "latency.h"

#include <stdint.h>

#define AL_MAX_RUNS 1000000 /* a repetition never runs its workload more often than this */

typedef struct al_case {
    const al_workload *w;
    const al_backend *b;
    long long p[AL_WL_MAX_PARAMS];
    int threads;
    uint64_t seed;
    /* how the child runs (passed on to a re-executed child too) */
    uint32_t latency_period; /* 0: no latency sampling; N: time 1 in N operations */
    int pin_cpu;             /* -1: no pinning; else the CPU the child is pinned to */
    double min_time;         /* seconds: the workload runs again until the measured time
                              * reaches this (0: once); --min_time, not in the warm-up */
    int stats_interval_ms;   /* > 0: a thread samples the backend's stats() that often during
                              * the region (only in the unmeasured warm-up run); a re-executed
                              * child gets it in ALLOCLAB_STATS_SERIES_MS */
    char name[512];
} al_case;

/* The backend's own statistics over time, sampled inside the child. */
typedef struct al_stats_sample {
    double t_ms; /* from the start of the measured region */
    al_stats s;
} al_stats_sample;

typedef struct al_stats_series {
    int n, cap;
    al_stats_sample *v;
} al_stats_series;

/* RSS of the child over time, sampled by the parent (so the child runs undisturbed: no
 * sampler thread that would turn a single-threaded case multi-threaded). Times are ms from
 * the start of the measured region (negative before it). */
typedef struct al_rss_series {
    int n, cap;
    double *t_ms;
    uint64_t *rss;
    double interval_ms;
} al_rss_series;

enum {
    AL_CHILD_OK = 0,
    AL_CHILD_WORKLOAD_FAILED = 1, /* run() returned -1: msg says why (corruption, OOM) */
    AL_CHILD_CREATE_FAILED = 2,   /* the backend could not be created (library missing) */
};

typedef struct al_child_result {
    uint32_t magic;        /* AL_RESULT_MAGIC: the whole struct arrived */
    int status;            /* AL_CHILD_* */
    char msg[256];
    uint64_t elapsed_ns;   /* measured region, pauses excluded */
    uint32_t runs;         /* workload runs in the measured region (see al_case.min_time) */
    uint64_t ops, peak_live, checksum; /* ops: all runs; peak_live: the largest run's */
    uint64_t rss_before;   /* bytes resident when the measured region began */
    uint64_t peak_rss;     /* VmHWM: peak resident bytes during the case */
    uint64_t file_before, file_after; /* RssFile then and at the end: code and data pages of
                                       * the program's files (a fresh child faults them in
                                       * as the run first executes them) */
    uint64_t minflt, majflt; /* page faults inside the measured region */
    int has_stats;
    al_stats stats;        /* the backend's own figures after the run */
    char version[160];     /* the backend's version() as seen inside the child */
    int has_latency;
    al_lat_summary lat;    /* latency_period > 0: sampled alloc/free latency */
    al_ctr_result ctr;     /* PAPI / SDE counters (child), cachesim counts (parent) */
    uint32_t n_stats_samples; /* that many al_stats_sample follow the struct on the pipe */
} al_child_result;

#define AL_RESULT_MAGIC 0xA110C1ABu

/* Run case c in a child, waiting at most timeout_s seconds; when series is not NULL, sample
 * the child's RSS into it every series->interval_ms (series->n is reset). Returns 0 and fills
 * *r when the child reported (whatever its status); returns -1 with err set ("crashed: SIGSEGV
 * ...", "timed out after 120 s", "exited with status 3") when it did not. */
int al_run_case(const al_case *c, double timeout_s, const char *self_exe, al_child_result *r,
                al_rss_series *series, char *err, size_t errlen);
/* The same, also collecting the stats samples of a case with stats_interval_ms into *ss
 * (ss->n is reset; at most ss->cap are kept). */
int al_run_case_stats(const al_case *c, double timeout_s, const char *self_exe,
                      al_child_result *r, al_rss_series *series, al_stats_series *ss, char *err,
                      size_t errlen);

/* The measured region: calls run(ctx). Not inlined, so callgrind can toggle on it. */
int al_measured_region(int (*run)(al_wl_ctx *), al_wl_ctx *ctx);

/* The body of a child: run case c and write the result to fd. Used after fork, and by the
 * `--run-child` entry of a re-executed (LD_PRELOAD) child. Never returns. */
void al_child_main(const al_case *c, int fd) __attribute__((noreturn));

#endif
