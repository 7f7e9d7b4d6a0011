/* latency.c - see latency.h. */
#include "latency.h"

#include "clock.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define LAT_MAX_SAMPLES (1u << 20) /* per kind: 8 MiB of cycles each */

static const al_backend *lat_real;
static al_backend lat_table;
static uint32_t lat_period;
static uint64_t *lat_buf[2];
static _Atomic uint32_t lat_n[2];
static uint64_t lat_t0_ns, lat_t0_tsc;
static __thread uint32_t lat_countdown;
static __thread uint64_t lat_rng = 0x9E3779B97F4A7C15u;

static inline uint64_t tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return al_now_ns();
#endif
}

static inline int lat_due(void)
{
    if (__builtin_expect(lat_countdown > 1, 1)) {
        lat_countdown--;
        return 0;
    }
    /* the next sample after a random 1..2N-1 calls (mean N): a fixed period would alias
     * with a workload's own period (alloc, alloc, free, free...) and sample one kind only */
    lat_rng ^= lat_rng << 13;
    lat_rng ^= lat_rng >> 7;
    lat_rng ^= lat_rng << 17;
    lat_countdown = 1 + (uint32_t)(lat_rng % (2 * (uint64_t)lat_period - 1));
    return 1;
}

static inline void lat_add(int kind, uint64_t cycles)
{
    uint32_t i = atomic_fetch_add_explicit(&lat_n[kind], 1, memory_order_relaxed);
    if (i < LAT_MAX_SAMPLES) lat_buf[kind][i] = cycles;
}

static void *lat_alloc(void *heap, size_t size)
{
    if (!lat_due()) return lat_real->alloc(heap, size);
    uint64_t a = tsc();
    void *p = lat_real->alloc(heap, size);
    lat_add(AL_LAT_ALLOC, tsc() - a);
    return p;
}

static void lat_free(void *heap, void *p, size_t size)
{
    if (!lat_due()) {
        lat_real->free(heap, p, size);
        return;
    }
    uint64_t a = tsc();
    lat_real->free(heap, p, size);
    lat_add(AL_LAT_FREE, tsc() - a);
}

static void *lat_realloc(void *heap, void *p, size_t old_size, size_t new_size)
{
    if (!lat_due()) return lat_real->realloc(heap, p, old_size, new_size);
    uint64_t a = tsc();
    void *q = lat_real->realloc(heap, p, old_size, new_size);
    lat_add(AL_LAT_ALLOC, tsc() - a);
    return q;
}

static void *lat_alloc_aligned(void *heap, size_t align, size_t size)
{
    if (!lat_due()) return lat_real->alloc_aligned(heap, align, size);
    uint64_t a = tsc();
    void *p = lat_real->alloc_aligned(heap, align, size);
    lat_add(AL_LAT_ALLOC, tsc() - a);
    return p;
}

const al_backend *al_lat_wrap(const al_backend *b, uint32_t period)
{
    for (int k = 0; k < 2; k++) {
        free(lat_buf[k]);
        lat_buf[k] = malloc(LAT_MAX_SAMPLES * sizeof(uint64_t));
        if (!lat_buf[k]) return NULL;
        atomic_store(&lat_n[k], 0);
    }
    lat_real = b;
    lat_period = period ? period : 1;
    lat_countdown = lat_period;
    lat_table = *b; /* everything else forwards as is */
    lat_table.alloc = lat_alloc;
    lat_table.free = lat_free;
    lat_table.realloc = b->realloc ? lat_realloc : NULL;
    lat_table.alloc_aligned = b->alloc_aligned ? lat_alloc_aligned : NULL;
    lat_t0_ns = al_now_ns();
    lat_t0_tsc = tsc();
    return &lat_table;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The cost of an empty timed region, in cycles: the minimum of many tries. */
static uint64_t empty_region_cycles(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = tsc(), b = tsc();
        if (b - a < best) best = b - a;
    }
    return best;
}

/* The smallest positive step between two reads of the cycle counter, in cycles. */
static uint64_t counter_step(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = tsc(), b;
        int spins = 0;
        while ((b = tsc()) == a && ++spins < 100000) {}
        if (b > a && b - a < best) best = b - a;
    }
    return best == UINT64_MAX ? 1 : best;
}

static double pct(const uint64_t *v, uint32_t n, double q)
{
    if (!n) return 0;
    uint32_t i = (uint32_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i];
}

void al_lat_report(al_lat_summary *out)
{
    memset(out, 0, sizeof *out);
    uint64_t dns = al_now_ns() - lat_t0_ns, dtsc = tsc() - lat_t0_tsc;
    double ns_per_cycle = dtsc ? (double)dns / (double)dtsc : 1.0;
    uint64_t base = empty_region_cycles();
    out->resolution_ns = (double)counter_step() * ns_per_cycle;
    for (int k = 0; k < 2; k++) {
        uint32_t n = atomic_load(&lat_n[k]);
        if (n > LAT_MAX_SAMPLES) n = LAT_MAX_SAMPLES;
        out->samples[k] = n;
        if (!n) continue;
        uint64_t *v = lat_buf[k];
        for (uint32_t i = 0; i < n; i++) v[i] = v[i] > base ? v[i] - base : 0;
        qsort(v, n, sizeof *v, cmp_u64);
        out->p50[k] = pct(v, n, 0.50) * ns_per_cycle;
        out->p99[k] = pct(v, n, 0.99) * ns_per_cycle;
        out->p999[k] = pct(v, n, 0.999) * ns_per_cycle;
        out->max[k] = (double)v[n - 1] * ns_per_cycle;
    }
}
