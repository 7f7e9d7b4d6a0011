/* sizeclass.c - one size class at a time, from the seed lecture's demonstrateMemoryClasses.
 *
 * The seed allocates make([]byte, 8) (a tiny object), make([]byte, 1024) (small, served from
 * the per-P mcache) and make([]byte, 64*1024) (large, straight from mheap) and watches
 * MemStats. Here each case drives one size: `allocs` allocations of `size` bytes, each filled
 * in full (Go's make() zeroes what it returns, so every byte is touched), held in a ring of
 * `keep` slots so that each new allocation frees the object `keep` allocations older: a
 * working set kept and churned. Case per size: size=8, 1024, 65536 measures the tiny, small
 * and large paths of a Go-style allocator apart (`make bench` runs these three).
 * Mode `classes` instead cycles through the 67 non-zero Go size classes (class_to_size of Go's
 * runtime/sizeclasses.go, 8 B .. 32 KiB), asking for the class size and then the class size
 * + 1, so rounding waste shows up as RSS over live bytes.
 * What it stresses: each size path on its own, with a steady free/alloc pattern of one size
 * (the best case for a size-class free list) and the memset bandwidth the seed's make() pays.
 *
 * Count: with large sizes the fill dominates, so the number of allocations is capped by
 * `max_bytes` (allocs = min(allocs, max_bytes / mean size)): one default keeps every size
 * within the same time range. Verification: before an object is freed its first, middle and
 * last bytes are read back (the fill value is per-allocation) and folded into the checksum.
 * Differences from the seed: explicit frees instead of Go's GC; the seed only prints stats.
 */
#include "wl_internal.h"

#include <stdlib.h>

enum { P_SIZE, P_ALLOCS, P_MAX_BYTES, P_KEEP, P_MODE };
enum { MODE_FIXED, MODE_CLASSES };

static const al_param_def sizeclass_params[] = {
    [P_SIZE] = {"size", 1024, 1, 1LL << 30, NULL, AL_PARAM_BYTES,
                "object size (mode fixed): 8 tiny, 1024 small, 65536 large"},
    [P_ALLOCS] = {"allocs", 12000000, 1, 1LL << 40, NULL, AL_PARAM_SCALED,
                  "allocations (each frees the one `keep` older)"},
    [P_MAX_BYTES] = {"max_bytes", 4LL << 30, 1, 1LL << 50, NULL,
                     AL_PARAM_SCALED | AL_PARAM_BYTES, "cap on the bytes allocated in all"},
    [P_KEEP] = {"keep", 1024, 1, 1 << 24, NULL, 0, "objects held live (the ring)"},
    [P_MODE] = {"mode", MODE_FIXED, 0, 0, "fixed|classes", 0,
                "one size, or the 67 Go size classes (class size, then class size + 1)"},
};

/* Go's class_to_size (runtime/sizeclasses.go), without class 0. */
static const uint32_t go_classes[] = {
    8,     16,    24,    32,    48,    64,    80,    96,    112,   128,   144,   160,
    176,   192,   208,   224,   240,   256,   288,   320,   352,   384,   416,   448,
    480,   512,   576,   640,   704,   768,   896,   1024,  1152,  1280,  1408,  1536,
    1792,  2048,  2304,  2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,
    6784,  6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384, 18432,
    19072, 20480, 21760, 24576, 27264, 28672, 32768};
enum { N_CLASSES = (int)(sizeof go_classes / sizeof go_classes[0]) };

typedef struct sc_slot {
    unsigned char *p;
    size_t size;
    unsigned char v;
} sc_slot;

/* The fill value of allocation i. Can't fail. */
static inline unsigned char sc_value(uint64_t i, uint64_t seed)
{
    return (unsigned char)wl_mix(i + wl_mix(seed));
}

/* What slot s reads back as (first, middle, last byte, size). Can't fail. */
static inline uint64_t sc_read(const sc_slot *s)
{
    return wl_mix((uint64_t)s->p[0] | (uint64_t)s->p[s->size / 2] << 8 |
                  (uint64_t)s->p[s->size - 1] << 16 | (uint64_t)s->size << 24);
}

/* What slot s must read back as. Can't fail. */
static inline uint64_t sc_expect(const sc_slot *s)
{
    return wl_mix((uint64_t)s->v * 0x010101u | (uint64_t)s->size << 24);
}

/* Returns 0, or -1 with ctx->err set (OOM, corrupted data). */
static int sizeclass_run(al_wl_ctx *ctx)
{
    const al_backend *b = ctx->b;
    void *heap = ctx->heap;
    const int mode = (int)ctx->p[P_MODE];
    const size_t keep = (size_t)ctx->p[P_KEEP], fixed = (size_t)ctx->p[P_SIZE];
    uint64_t mean = fixed;
    if (mode == MODE_CLASSES) {
        mean = 0;
        for (int i = 0; i < N_CLASSES; i++) mean += go_classes[i];
        mean = mean / N_CLASSES + 1;
    }
    uint64_t n = (uint64_t)ctx->p[P_ALLOCS], cap = (uint64_t)ctx->p[P_MAX_BYTES] / mean;
    if (n > cap) n = cap;
    if (n == 0) n = 1;

    al_wl_pause(ctx);
    sc_slot *ring = calloc(keep, sizeof *ring);
    al_wl_resume(ctx);
    if (!ring) return wl_fail(ctx, "bookkeeping ring of %zu slots: out of memory", keep);

    uint64_t live = 0, sum = 0, expect = 0;
    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        sc_slot *s = &ring[i % keep];
        if (s->p) {
            sum += sc_read(s);
            expect += sc_expect(s);
            b->free(heap, s->p, s->size);
            ctx->ops++;
            live -= s->size;
        }
        size_t size = mode == MODE_FIXED ? fixed : go_classes[(i / 2) % N_CLASSES] + (i & 1);
        s->p = b->alloc(heap, size);
        ctx->ops++;
        if (!s->p) {
            rc = wl_fail(ctx, "allocation of %zu bytes failed (out of memory) at %llu live bytes",
                         size, (unsigned long long)live);
            break;
        }
        s->size = size;
        s->v = sc_value(i, ctx->seed);
        memset(s->p, s->v, size);
        live += size;
        if (live > ctx->peak_live) ctx->peak_live = live;
    }
    for (size_t j = 0; j < keep; j++) {
        sc_slot *s = &ring[j];
        if (!s->p) continue;
        sum += sc_read(s);
        expect += sc_expect(s);
        b->free(heap, s->p, s->size);
        ctx->ops++;
    }
    al_wl_pause(ctx);
    free(ring);
    al_wl_resume(ctx);
    return rc ? rc : wl_verify_sum(ctx, sum, expect, "object fills");
}

const al_workload al_workload_sizeclass = {
    .name = "sizeclass",
    .desc = "seed demonstrateMemoryClasses: objects of one size (8 B tiny, 1 KiB small, 64 KiB "
            "large) filled, kept in a ring and churned",
    .params = sizeclass_params,
    .nparams = (int)(sizeof sizeclass_params / sizeof sizeclass_params[0]),
    .multithreaded = 0,
    .bench_matrix = "size=8,1024,65536",
    .run = sizeclass_run,
};
