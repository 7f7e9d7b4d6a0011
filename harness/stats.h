/* stats.h - the statistics the harness reports over a case's repetitions. One implementation,
 * used by the Google Benchmark shim (min, max, cv aggregates) and the noisy-case flag. */
#ifndef ALLOCLAB_STATS_H
#define ALLOCLAB_STATS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Each returns 0 for n == 0. Can't fail; v is not modified. */
double al_stats_min(const double *v, size_t n);
double al_stats_max(const double *v, size_t n);
double al_stats_median(const double *v, size_t n);
/* Coefficient of variation: sample standard deviation (n - 1) / mean; 0 when n < 2 or the
 * mean is 0. */
double al_stats_cv(const double *v, size_t n);

#ifdef __cplusplus
}
#endif

#endif
