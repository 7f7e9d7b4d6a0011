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

/* Two-sided sign test: the probability, when each of n paired comparisons goes either way
 * with odds 1/2, of a split at least as uneven as k of n. 1 for n == 0; can't fail. */
double al_stats_sign_p(size_t k, size_t n);
/* A distribution-free 95% interval for the median of v[0..n): the order statistics x(j) and
 * x(n+1-j) with the largest j whose coverage 1 - 2 P(Binomial(n, 1/2) < j) is still >= 0.95
 * (j = 2 of 10, 6 of 20). Returns 0 and sets *lo, *hi; -1 when n < 6 (no interval reaches
 * 95%) or out of memory. v is not modified. */
int al_stats_median_ci95(const double *v, size_t n, double *lo, double *hi);

#ifdef __cplusplus
}
#endif

#endif
