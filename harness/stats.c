/* stats.c - see stats.h. */
#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double al_stats_min(const double *v, size_t n)
{
    double m = n ? v[0] : 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

double al_stats_max(const double *v, size_t n)
{
    double m = n ? v[0] : 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > m) m = v[i];
    return m;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double al_stats_median(const double *v, size_t n)
{
    if (!n) return 0;
    double small[64], *s = n <= 64 ? small : malloc(n * sizeof *s);
    if (!s) return 0;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    if (s != small) free(s);
    return m;
}

double al_stats_cv(const double *v, size_t n)
{
    if (n < 2) return 0;
    double mean = 0, ss = 0;
    for (size_t i = 0; i < n; i++) mean += v[i];
    mean /= (double)n;
    if (mean == 0) return 0;
    for (size_t i = 0; i < n; i++) ss += (v[i] - mean) * (v[i] - mean);
    return sqrt(ss / (double)(n - 1)) / mean;
}

/* P(Binomial(n, 1/2) <= k), summed in log space (n up to millions without overflow). */
static double binom_half_cdf(size_t k, size_t n)
{
    double sum = 0, lgn = lgamma((double)n + 1), ln2n = (double)n * log(2.0);
    for (size_t i = 0; i <= k && i <= n; i++)
        sum += exp(lgn - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - ln2n);
    return sum > 1 ? 1 : sum;
}

double al_stats_sign_p(size_t k, size_t n)
{
    if (n == 0) return 1;
    size_t m = k < n - k ? k : n - k;
    double p = 2 * binom_half_cdf(m, n);
    return p > 1 ? 1 : p;
}

int al_stats_median_ci95(const double *v, size_t n, double *lo, double *hi)
{
    size_t j = 0; /* the largest j with 2 P(X <= j - 1) <= 0.05 */
    while (j < n / 2 && 2 * binom_half_cdf(j, n) <= 0.05) j++;
    if (j == 0) return -1;
    double *s = malloc(n * sizeof *s);
    if (!s) return -1;
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    *lo = s[j - 1];
    *hi = s[n - j];
    free(s);
    return 0;
}
