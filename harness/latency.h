/* latency.h - sampled per-operation latency, measured inside a case's child.
 *
 * al_lat_wrap() returns a vtable that forwards every entry to the real backend and, for one
 * operation in `period` on average (per thread, a countdown of random length 1..2N-1, so the
 * sampling cannot alias with a workload's own period), reads the cycle counter (rdtsc on x86-64)
 * around the call. The workload is unchanged: it just calls ctx->b. Samples go to a shared
 * buffer (one atomic index per sample, so only sampled operations pay for it). al_lat_report()
 * converts cycles to ns with a TSC rate calibrated against CLOCK_MONOTONIC over the run, takes
 * off the measured cost of an empty timed region, and gives p50/p99/p99.9/max for alloc
 * (alloc, realloc, alloc_aligned) and for free.
 *
 * The wrapper costs an indirect call and a decrement on every operation, so the harness uses
 * it only in each case's warm-up run, never in the repetitions whose time it reports; it
 * records the wrapper's measured overhead (warm-up time / median repetition time) per case. */
#ifndef ALLOCLAB_LATENCY_H
#define ALLOCLAB_LATENCY_H

#include "allocator.h"

#include <stdint.h>

enum { AL_LAT_ALLOC = 0, AL_LAT_FREE = 1 };

typedef struct al_lat_summary {
    uint64_t samples[2];
    double p50[2], p99[2], p999[2], max[2]; /* ns */
    double resolution_ns; /* the smallest step the cycle counter takes here (a VM may
                           * step it coarsely): figures below it are "less than this" */
} al_lat_summary;

/* Start sampling 1 in `period` operations of b (period >= 1). Returns the wrapping vtable
 * (static storage; one wrapped backend per process) or NULL when out of memory. */
const al_backend *al_lat_wrap(const al_backend *b, uint32_t period);
/* Stop and summarise. Can't fail. */
void al_lat_report(al_lat_summary *out);

#endif
