/* unit_stats.c - the harness's statistics against known inputs, and the latency sampler. */
#include <criterion/criterion.h>

#include "allocator.h"
#include "latency.h"
#include "stats.h"

#include <stdlib.h>

Test(stats, median_min_max)
{
    double odd[] = {5, 1, 4, 2, 3}, even[] = {10, 2, 8, 4};
    cr_assert_float_eq(al_stats_median(odd, 5), 3.0, 1e-12);
    cr_assert_float_eq(al_stats_median(even, 4), 6.0, 1e-12);
    cr_assert_float_eq(al_stats_min(odd, 5), 1.0, 1e-12);
    cr_assert_float_eq(al_stats_max(even, 4), 10.0, 1e-12);
    cr_assert_float_eq(al_stats_median(odd, 0), 0.0, 1e-12);
    cr_assert_float_eq(odd[0], 5.0, 1e-12, "median must not reorder its input");
}

Test(stats, coefficient_of_variation)
{
    /* mean 5, sample sd sqrt(32/7) = 2.13809 -> cv 0.427618 */
    double v[] = {2, 4, 4, 4, 5, 5, 7, 9};
    cr_assert_float_eq(al_stats_cv(v, 8), 0.4276179870, 1e-9);
    double same[] = {3, 3, 3};
    cr_assert_float_eq(al_stats_cv(same, 3), 0.0, 1e-12);
    cr_assert_float_eq(al_stats_cv(v, 1), 0.0, 1e-12, "one value has no spread");
}

Test(stats, sign_test_exact)
{
    /* 2 * sum_{i<=m} C(n, i) / 2^n, by hand */
    cr_assert_float_eq(al_stats_sign_p(1, 10), 22.0 / 1024, 1e-12);
    cr_assert_float_eq(al_stats_sign_p(9, 10), 22.0 / 1024, 1e-12, "either side");
    cr_assert_float_eq(al_stats_sign_p(5, 20), 2 * 21700.0 / 1048576, 1e-12);
    cr_assert_float_eq(al_stats_sign_p(0, 6), 2.0 / 64, 1e-12);
    cr_assert_float_eq(al_stats_sign_p(5, 10), 1.0, 1e-12, "an even split caps at 1");
    cr_assert_float_eq(al_stats_sign_p(0, 0), 1.0, 1e-12);
    /* 450 of 1000: 0.0017305 (the exact sum, computed with integers) */
    double p = al_stats_sign_p(450, 1000);
    cr_assert(p > 0.0017300 && p < 0.0017310, "p(450 of 1000) = %g", p);
}

Test(stats, median_interval_order_statistics)
{
    double v[20], lo = 0, hi = 0;
    for (int i = 0; i < 20; i++) v[i] = (double)(20 - i); /* 20, 19, .., 1: unsorted */
    cr_assert_eq(al_stats_median_ci95(v, 20, &lo, &hi), 0);
    cr_assert_float_eq(lo, 6.0, 1e-12, "n = 20: the 6th smallest, got %g", lo);
    cr_assert_float_eq(hi, 15.0, 1e-12, "n = 20: the 15th, got %g", hi);
    cr_assert_float_eq(v[0], 20.0, 1e-12, "the input is not reordered");
    cr_assert_eq(al_stats_median_ci95(v, 10, &lo, &hi), 0);
    cr_assert_float_eq(lo, 12.0, 1e-12, "n = 10: the 2nd smallest of 20..11, got %g", lo);
    cr_assert_float_eq(hi, 19.0, 1e-12, "n = 10: the 9th, got %g", hi);
    cr_assert_eq(al_stats_median_ci95(v, 6, &lo, &hi), 0);
    cr_assert_float_eq(lo, 15.0, 1e-12, "n = 6: the minimum (coverage 1 - 2/64)");
    cr_assert_float_eq(hi, 20.0, 1e-12, "n = 6: the maximum");
    cr_assert_eq(al_stats_median_ci95(v, 5, &lo, &hi), -1, "5 values cannot give 95%%");
}

Test(latency, sampler_counts_one_in_n)
{
    const al_backend *b = al_backend_find("libc");
    char err[128];
    void *h = b->create(NULL, err, sizeof err);
    const al_backend *w = al_lat_wrap(b, 7);
    cr_assert_not_null(w);
    for (int i = 0; i < 10000; i++) {
        void *p = w->alloc(h, 64);
        cr_assert_not_null(p);
        w->free(h, p, 64);
    }
    al_lat_summary s;
    al_lat_report(&s);
    /* 20000 calls alternating alloc/free, 1 in 7 sampled on average (random gaps, so both
     * kinds get samples although the workload's period is 2): about 2857 in all */
    uint64_t all = s.samples[AL_LAT_ALLOC] + s.samples[AL_LAT_FREE];
    cr_assert(all > 2500 && all < 3200, "%llu samples, want about 2857", (unsigned long long)all);
    cr_assert(s.samples[AL_LAT_ALLOC] > 1000 && s.samples[AL_LAT_FREE] > 1000,
              "alloc %llu / free %llu samples: one kind starved", (unsigned long long)s.samples[0],
              (unsigned long long)s.samples[1]);
    cr_assert(s.p50[AL_LAT_ALLOC] <= s.p99[AL_LAT_ALLOC] && s.p99[AL_LAT_ALLOC] <= s.p999[AL_LAT_ALLOC] &&
              s.p999[AL_LAT_ALLOC] <= s.max[AL_LAT_ALLOC], "percentiles out of order");
    cr_assert_gt(s.max[AL_LAT_ALLOC], 0.0);
    b->destroy(h);
}
