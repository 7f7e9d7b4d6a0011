/* workload.h - the workload interface: what drives an allocator in a case.
 *
 * A workload is one `const al_workload` table, listed once in workloads/registry.c. It reaches
 * the allocator only through the backend vtable in its context (ctx->b, ctx->heap), so every
 * workload runs with every backend. Each workload:
 *   - is deterministic for a given ctx->seed (its own al_rng, never rand());
 *   - counts its operations (allocations + frees + reallocs) in ctx->ops;
 *   - tracks the bytes it holds live and reports the peak in ctx->peak_live;
 *   - touches what it allocates (writes, and reads back where the original did);
 *   - verifies its data at the end (a checksum over what it wrote) and fails the case when it
 *     does not match, so a corrupting backend shows up as an error row, not a fast row;
 *   - says in its header comment what it stresses, and where it comes from.
 *
 * Timing: the harness times run() as a whole (the "measured region"). A workload that must do
 * unmeasured work inside run() (verification reads, building input) brackets it with
 * al_wl_pause(ctx) / al_wl_resume(ctx).
 */
#ifndef ALLOCLAB_WORKLOAD_H
#define ALLOCLAB_WORKLOAD_H

#include "allocator.h"

#include <stdint.h>

#define AL_WL_MAX_PARAMS 12

/* A parameter: an integer with a range, or a choice among names (value = index). */
typedef struct al_param_def {
    const char *name;    /* [a-z_]+ */
    long long def;       /* default (for a choice: index into choices) */
    long long min, max;  /* accepted range (inclusive); ignored for choices */
    const char *choices; /* NULL, or "keep|steady|direct": the value is the index */
    unsigned flags;      /* AL_PARAM_* */
    const char *desc;
} al_param_def;

enum {
    AL_PARAM_SCALED = 1u << 0, /* a work count: multiplied by --scale (at least 1 after it) */
    AL_PARAM_BYTES  = 1u << 1, /* a size in bytes (accepts 4k, 1m suffixes)                */
};

typedef struct al_wl_ctx al_wl_ctx;

struct al_wl_ctx {
    /* Set by the harness. */
    const al_backend *b;
    void *heap;
    long long p[AL_WL_MAX_PARAMS]; /* parameter values, in the order of al_workload.params */
    int threads;                   /* 1 for single-threaded workloads */
    uint64_t seed;
    void (*pause)(al_wl_ctx *ctx);  /* stop the measured-region clock (and counters) */
    void (*resume)(al_wl_ctx *ctx); /* start it again */
    void *harness;                  /* the harness's own state; workloads leave it alone */

    /* Filled by the workload. */
    uint64_t ops;       /* allocations + frees + reallocs done through the vtable */
    uint64_t peak_live; /* the most bytes (as asked) held live at once */
    uint64_t checksum;  /* over the data written, verified before run() returns */
    char err[256];      /* why run() failed, one line */
};

typedef struct al_workload {
    const char *name;          /* [a-z0-9-]+ */
    const char *desc;          /* one line for `alloclab --list` */
    const al_param_def *params;
    int nparams;
    int multithreaded;         /* takes ctx->threads from the threads matrix */
    /* The sweep `make bench` runs: "param=v1,v2;param2=v3" ("" = defaults only). */
    const char *bench_matrix;
    /* Run one case. Returns 0, or -1 with ctx->err set (out of memory, data corrupted). */
    int (*run)(al_wl_ctx *ctx);
} al_workload;

/* ---- the registry (workloads/registry.c) ---- */
int al_workload_count(void);
const al_workload *al_workload_at(int i);
const al_workload *al_workload_find(const char *name);
/* Index of parameter `name` in w->params, or -1. */
int al_workload_param(const al_workload *w, const char *name);

static inline void al_wl_pause(al_wl_ctx *ctx) { if (ctx->pause) ctx->pause(ctx); }
static inline void al_wl_resume(al_wl_ctx *ctx) { if (ctx->resume) ctx->resume(ctx); }

/* ---- deterministic generator: splitmix64 seeding xoshiro256** ---- */
typedef struct al_rng { uint64_t s[4]; } al_rng;

static inline uint64_t al_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline void al_rng_seed(al_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = al_splitmix64(&seed);
}

static inline uint64_t al_rng_next(al_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [lo, hi] (inclusive). */
static inline uint64_t al_rng_range(al_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + (uint64_t)(((unsigned __int128)al_rng_next(r) * (hi - lo + 1)) >> 64);
}

/* A pattern byte for offset i of object `id`: what workloads write and later verify. */
static inline unsigned char al_pattern(uint64_t id, size_t i)
{
    return (unsigned char)((id * 131u + i * 7u + (i >> 8)) ^ 0x5A);
}

#endif
