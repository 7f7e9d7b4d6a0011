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
