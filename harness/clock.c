/* clock.c - the one clock the harness and the workloads read (CLOCK_MONOTONIC, ns). */
#include "clock.h"

#include <time.h>

uint64_t al_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
