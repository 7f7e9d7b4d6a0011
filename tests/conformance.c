/* conformance.c - the contract of allocators/allocator.h, checked against every registered
 * backend (Criterion parameterised tests: one instance per backend). A new backend is covered
 * by adding its line to the registry; nothing here names a backend.
 *
 * A test that needs an optional entry the backend leaves NULL is reported as skipped with the
 * reason, never passed silently. A backend whose create() fails (a reference library that is
 * not installed, or jemalloc outside its LD_PRELOAD child) is skipped with create()'s message.
 * Test-only backends (AL_CAP_TEST_ONLY) are hidden by the registry and never run here.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "allocator.h"
#include "wait_child.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_BACKENDS 64

/* ---- helpers ---- */

/* Parameters hold the name by value: Criterion may run each test in a re-executed worker,
 * where the parent's pointers mean nothing. */
typedef struct bname { char s[48]; } bname;

static bname *backend_names(size_t *n)
{
    static bname names[MAX_BACKENDS];
    int c = al_backend_count();
    *n = 0;
    for (int i = 0; i < c && i < MAX_BACKENDS; i++)
        snprintf(names[(*n)++].s, sizeof names[0].s, "%s", al_backend_at(i)->name);
    return names;
}

#define BACKEND_PARAMS                                            \
    {                                                             \
        size_t n;                                                 \
        bname *names = backend_names(&n);                         \
        return cr_make_param_array(bname, names, n);              \
    }

typedef struct fixture {
    const al_backend *b;
    void *heap;
} fixture;

/* Create a heap of backend `name`, or skip the test with create()'s reason. */
static fixture open_backend(const char *name)
{
    fixture f = {al_backend_find(name), NULL};
    cr_assert_not_null(f.b, "backend %s not in the registry", name);
    cr_assert_eq(f.b->abi, AL_ABI_VERSION, "%s: ABI version %d", name, f.b->abi);
    cr_assert(f.b->create && f.b->destroy && f.b->alloc && f.b->free,
              "%s: a required entry is NULL", name);
    char err[256] = "";
    f.heap = f.b->create(NULL, err, sizeof err);
    if (!f.heap) cr_skip_test("%s: create() failed: %s", name, err);
    return f;
}

static void close_backend(fixture *f) { f->b->destroy(f->heap); }

static void need(const fixture *f, const void *entry, const char *what)
{
    if (!entry) {
        f->b->destroy(f->heap);
        cr_skip_test("%s has no %s entry (optional; not supported)", f->b->name, what);
    }
}

static void check_heap(const fixture *f, const char *when)
{
    if (!f->b->check) return;
    char msg[512] = "";
    int rc = f->b->check(f->heap, msg, sizeof msg);
    cr_assert_eq(rc, 0, "%s: check() failed %s: %s", f->b->name, when, msg);
}

static inline unsigned char pat(uintptr_t id, size_t i) { return (unsigned char)(id * 31 + i * 7 + 1); }

static void fill(void *p, size_t n, uintptr_t id)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++) c[i] = pat(id, i);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t verify(const void *p, size_t n, uintptr_t id)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat(id, i)) return i;
    return n;
}

/* Fill/verify only the edges and a stride of big blocks (a 64 MiB fill per test is slow
 * under the sanitizers); every page is still touched. */
static void fill_sparse(unsigned char *p, size_t n, uintptr_t id)
{
    if (n <= 8192) return fill(p, n, id);
    for (size_t i = 0; i < n; i += (i < 4096 || n - i <= 4096) ? 1 : 4093) p[i] = pat(id, i);
}

static size_t verify_sparse(const unsigned char *p, size_t n, uintptr_t id)
{
    if (n <= 8192) return verify(p, n, id);
    for (size_t i = 0; i < n; i += (i < 4096 || n - i <= 4096) ? 1 : 4093)
        if (p[i] != pat(id, i)) return i;
    return n;
}

static size_t promised_align(size_t size)
{
    if (size >= AL_MIN_ALIGN) return AL_MIN_ALIGN;
    size_t a = 1;
    while (a * 2 <= size) a *= 2;
    return a;
}

/* Go's 68 size classes (go-allocator.md section 1): their boundaries are where Go-style
 * backends change code paths, so every boundary and boundary+1 is exercised. */
static const size_t go_class_sizes[] = {
    8,     16,    24,    32,    48,    64,    80,    96,    112,   128,   144,   160,
    176,   192,   208,   224,   240,   256,   288,   320,   352,   384,   416,   448,
    480,   512,   576,   640,   704,   768,   896,   1024,  1152,  1280,  1408,  1536,
    1792,  2048,  2304,  2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,
    6784,  6912,  8192,  9472,  9728,  10240, 10880, 12288, 13568, 14336, 16384, 18432,
    19072, 20480, 21760, 24576, 27264, 28672, 32768};

/* ---- the contract ---- */

ParameterizedTestParameters(conformance, alignment) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, alignment)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    void *keep[4200];
    int n = 0;
    for (size_t s = 1; s <= 4096; s++) {
        void *p = f.b->alloc(f.heap, s);
        cr_assert_not_null(p, "%s: alloc(%zu) returned NULL", *name, s);
        size_t a = promised_align(s);
        cr_assert_eq((uintptr_t)p % a, 0, "%s: alloc(%zu) = %p is not %zu-aligned", *name, s, p, a);
        if (n < 4200) keep[n++] = p;
    }
    for (int i = 0; i < n; i++) f.b->free(f.heap, keep[i], (size_t)i + 1);
    check_heap(&f, "after the alignment sweep");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, no_overlap_and_contents) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, no_overlap_and_contents)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    enum { N = 20000 };
    static struct blk { uintptr_t a; size_t n; } blks[N];
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        size_t s = 1 + (x >> 33) % (i % 50 == 0 ? 40000 : 600);
        unsigned char *p = f.b->alloc(f.heap, s);
        cr_assert_not_null(p, "%s: alloc(%zu) failed", *name, s);
        fill(p, s, (uintptr_t)i);
        blks[i].a = (uintptr_t)p;
        blks[i].n = s;
        /* free every third block at once, so later blocks may reuse its memory */
        if (i % 3 == 2) {
            cr_assert_eq(verify(p, s, (uintptr_t)i), s, "%s: block %d changed", *name, i);
            f.b->free(f.heap, p, s);
            blks[i].n = 0;
        }
    }
    for (int i = 0; i < N; i++) {
        if (!blks[i].n) continue;
        size_t at = verify((void *)blks[i].a, blks[i].n, (uintptr_t)i);
        cr_assert_eq(at, blks[i].n, "%s: block %d (%zu B at %p) lost its contents at byte %zu",
                     *name, i, blks[i].n, (void *)blks[i].a, at);
    }
    /* Live blocks never overlap: sort by address and compare neighbours. */
    int live = 0;
    for (int i = 0; i < N; i++)
        if (blks[i].n) blks[live++] = blks[i];
    for (int i = 1; i < live; i++) {
        struct blk k = blks[i];
        int j = i - 1;
        while (j >= 0 && blks[j].a > k.a) {
            blks[j + 1] = blks[j];
            j--;
        }
        blks[j + 1] = k;
    }
    for (int i = 1; i < live; i++)
        cr_assert_geq(blks[i].a, blks[i - 1].a + blks[i - 1].n,
                      "%s: live blocks overlap: [%p, +%zu) and %p", *name, (void *)blks[i - 1].a,
                      blks[i - 1].n, (void *)blks[i].a);
    check_heap(&f, "with 13000 live blocks");
    for (int i = 0; i < live; i++) f.b->free(f.heap, (void *)blks[i].a, blks[i].n);
    check_heap(&f, "after freeing everything");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, size_zero) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, size_zero)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    void *a = f.b->alloc(f.heap, 0), *b = f.b->alloc(f.heap, 0);
    cr_assert_not_null(a, "%s: alloc(0) returned NULL", *name);
    cr_assert_not_null(b, "%s: alloc(0) returned NULL", *name);
    cr_assert_neq(a, b, "%s: two alloc(0) returned the same pointer", *name);
    f.b->free(f.heap, a, 0);
    f.b->free(f.heap, b, 0);
    f.b->free(f.heap, NULL, 0); /* free(NULL) is a no-op */
    check_heap(&f, "after alloc(0)/free");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, sizes_1B_to_64MiB) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, sizes_1B_to_64MiB, .timeout = 120)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    size_t sizes[600];
    int n = 0;
    for (size_t i = 0; i < sizeof go_class_sizes / sizeof go_class_sizes[0]; i++) {
        sizes[n++] = go_class_sizes[i] - 1;
        sizes[n++] = go_class_sizes[i];
        sizes[n++] = go_class_sizes[i] + 1;
    }
    for (size_t s = 1; s <= ((size_t)64 << 20); s *= 2) {
        sizes[n++] = s;
        sizes[n++] = s + 1;
        if (s > 1) sizes[n++] = s - 1;
    }
    for (int i = 0; i < n; i++) {
        size_t s = sizes[i];
        unsigned char *p = f.b->alloc(f.heap, s);
        cr_assert_not_null(p, "%s: alloc(%zu) failed", *name, s);
        cr_assert_eq((uintptr_t)p % promised_align(s), 0, "%s: alloc(%zu) misaligned", *name, s);
        fill_sparse(p, s, s);
        /* A neighbour allocated after it must not disturb it. */
        unsigned char *q = f.b->alloc(f.heap, s);
        cr_assert_not_null(q, "%s: second alloc(%zu) failed", *name, s);
        fill_sparse(q, s, s + 1);
        cr_assert_eq(verify_sparse(p, s, s), s, "%s: %zu-byte block corrupted", *name, s);
        cr_assert_eq(verify_sparse(q, s, s + 1), s, "%s: %zu-byte block corrupted", *name, s);
        f.b->free(f.heap, q, s);
        f.b->free(f.heap, p, s);
    }
    check_heap(&f, "after the size sweep");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, huge_request_returns_null) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, huge_request_returns_null)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    const size_t huge[] = {SIZE_MAX / 2, SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1,
                           (size_t)1 << 50};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        void *p = f.b->alloc(f.heap, huge[i]);
        cr_assert_null(p, "%s: alloc(%zu) did not return NULL", *name, huge[i]);
    }
    if (f.b->alloc_aligned)
        cr_assert_null(f.b->alloc_aligned(f.heap, 64, SIZE_MAX / 2),
                       "%s: alloc_aligned(64, SIZE_MAX/2) did not return NULL", *name);
    if (f.b->realloc) {
        void *p = f.b->alloc(f.heap, 100);
        fill(p, 100, 7);
        cr_assert_null(f.b->realloc(f.heap, p, 100, SIZE_MAX / 2),
                       "%s: realloc to SIZE_MAX/2 did not return NULL", *name);
        cr_assert_eq(verify(p, 100, 7), 100, "%s: failed realloc changed the block", *name);
        f.b->free(f.heap, p, 100);
    }
    /* The heap still works afterwards. */
    void *p = f.b->alloc(f.heap, 64);
    cr_assert_not_null(p, "%s: alloc(64) failed after huge requests", *name);
    f.b->free(f.heap, p, 64);
    check_heap(&f, "after huge requests");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, realloc_keeps_contents) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, realloc_keeps_contents)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    need(&f, f.b->realloc, "realloc");
    /* grow through every class boundary, then shrink back, with known and unknown old size */
    for (int known = 0; known < 2; known++) {
        size_t cur = 1;
        unsigned char *p = f.b->realloc(f.heap, NULL, 0, cur);
        cr_assert_not_null(p, "%s: realloc(NULL, 1) failed", *name);
        fill(p, cur, 99);
        size_t steps[] = {7, 16, 17, 100, 1024, 1025, 4096, 32768, 32769, 100000, 1 << 20,
                          (1 << 20) + 3, 50000, 3000, 1000, 24, 5, 1};
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            size_t ns = steps[i];
            unsigned char *q = f.b->realloc(f.heap, p, known ? cur : 0, ns);
            cr_assert_not_null(q, "%s: realloc(%zu -> %zu) failed", *name, cur, ns);
            size_t keep = cur < ns ? cur : ns;
            cr_assert_eq(verify(q, keep, 99), keep, "%s: realloc(%zu -> %zu) lost contents",
                         *name, cur, ns);
            cr_assert_eq((uintptr_t)q % promised_align(ns), 0, "%s: realloc result misaligned",
                         *name);
            fill(q, ns, 99);
            p = q;
            cur = ns;
        }
        void *z = f.b->realloc(f.heap, p, cur, 0);
        cr_assert_not_null(z, "%s: realloc(p, 0) returned NULL (contract: a minimal block)",
                           *name);
        f.b->free(f.heap, z, 0);
    }
    check_heap(&f, "after realloc");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, usable_size) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, usable_size)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    need(&f, f.b->usable_size, "usable_size");
    for (size_t s = 1; s < 200000; s = s * 5 / 4 + 1) {
        unsigned char *p = f.b->alloc(f.heap, s);
        cr_assert_not_null(p);
        size_t u = f.b->usable_size(f.heap, p);
        cr_assert_geq(u, s, "%s: usable_size %zu < requested %zu", *name, u, s);
        memset(p, 0xAB, u); /* all of it is really usable */
        f.b->free(f.heap, p, s);
    }
    check_heap(&f, "after usable_size");
    close_backend(&f);
}

ParameterizedTestParameters(conformance, alloc_aligned) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, alloc_aligned)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    need(&f, f.b->alloc_aligned, "alloc_aligned");
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 16); a *= 2) {
        size_t sizes[] = {1, a / 2 + 1, a, a + 1, 3 * a, 40000};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = f.b->alloc_aligned(f.heap, a, sizes[i]);
            cr_assert_not_null(p, "%s: alloc_aligned(%zu, %zu) failed", *name, a, sizes[i]);
            cr_assert_eq((uintptr_t)p % a, 0, "%s: alloc_aligned(%zu, %zu) = %p", *name, a,
                         sizes[i], (void *)p);
            fill(p, sizes[i], a);
            cr_assert_eq(verify(p, sizes[i], a), sizes[i]);
            f.b->free(f.heap, p, sizes[i]);
        }
    }
    check_heap(&f, "after alloc_aligned");
    close_backend(&f);
}

/* 1M random operations checked against a shadow model of what every live block holds. */
ParameterizedTestParameters(conformance, random_ops_shadow_model) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, random_ops_shadow_model, .timeout = 240)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    enum { SLOTS = 4096 };
    static struct { unsigned char *p; size_t n; uint32_t id; } s[SLOTS];
    const long ops = getenv("ALLOCLAB_CONFORMANCE_OPS") ? atol(getenv("ALLOCLAB_CONFORMANCE_OPS"))
                                                        : 1000000;
    uint64_t x = 0x9E3779B97F4A7C15u;
    uint32_t next_id = 1;
    for (long op = 0; op < ops; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % SLOTS);
        unsigned r = (unsigned)(x >> 40) % 100;
        size_t size = (x >> 20) % 100 < 97 ? 1 + (x >> 24) % 256 : 1 + (x >> 24) % 20000;
        if (!s[i].p) {
            s[i].p = f.b->alloc(f.heap, size);
            cr_assert_not_null(s[i].p, "%s: op %ld alloc(%zu) failed", *name, op, size);
            s[i].n = size;
            s[i].id = next_id++;
            /* edges + a word in the middle: catches overlap without a full fill per op */
            s[i].p[0] = pat(s[i].id, 0);
            s[i].p[size - 1] = pat(s[i].id, size - 1);
            s[i].p[size / 2] = pat(s[i].id, size / 2);
        } else {
            size_t n = s[i].n;
            cr_assert(s[i].p[0] == pat(s[i].id, 0) && s[i].p[n - 1] == pat(s[i].id, n - 1) &&
                          s[i].p[n / 2] == pat(s[i].id, n / 2),
                      "%s: op %ld: block %u (%zu B at %p) was overwritten", *name, op, s[i].id,
                      n, (void *)s[i].p);
            if (r < 20 && f.b->realloc) {
                unsigned char *q = f.b->realloc(f.heap, s[i].p, n, size);
                cr_assert_not_null(q, "%s: op %ld realloc(%zu -> %zu) failed", *name, op, n,
                                   size);
                cr_assert(q[0] == pat(s[i].id, 0), "%s: realloc lost byte 0", *name);
                if (size >= n)
                    cr_assert(q[n - 1] == pat(s[i].id, n - 1) && q[n / 2] == pat(s[i].id, n / 2),
                              "%s: realloc lost contents", *name);
                s[i].p = q;
                s[i].n = size;
                s[i].id = next_id++;
                q[0] = pat(s[i].id, 0);
                q[size - 1] = pat(s[i].id, size - 1);
                q[size / 2] = pat(s[i].id, size / 2);
            } else {
                f.b->free(f.heap, s[i].p, n);
                s[i].p = NULL;
            }
        }
        if (op % 250000 == 0) check_heap(&f, "during random operations");
    }
    for (int i = 0; i < SLOTS; i++)
        if (s[i].p) f.b->free(f.heap, s[i].p, s[i].n);
    check_heap(&f, "after random operations");
    close_backend(&f);
}

/* 4 threads: each allocates, hands its blocks to the next thread through a mailbox, and
 * frees the blocks it receives after verifying them (cross-thread frees). */
enum { XT_THREADS = 4, XT_ROUNDS = 20000, XT_BOX = 64 };

typedef struct xt_shared {
    fixture *f;
    _Atomic(unsigned char *) box[XT_THREADS][XT_BOX];
    _Atomic int failures;
} xt_shared;

typedef struct xt_arg {
    xt_shared *sh;
    int id;
} xt_arg;

static size_t xt_size(uintptr_t tag) { return 1 + (tag * 2654435761u) % 3000; }

static void *xt_worker(void *argp)
{
    xt_arg *a = argp;
    xt_shared *sh = a->sh;
    fixture *f = sh->f;
    int next = (a->id + 1) % XT_THREADS;
    for (int r = 0; r < XT_ROUNDS; r++) {
        /* tag: thread id and round, kept in the block's first 8 bytes */
        uintptr_t tag = ((uintptr_t)a->id << 32) | (uintptr_t)r;
        size_t n = xt_size(tag) + sizeof tag;
        unsigned char *p = f->b->alloc(f->heap, n);
        if (!p) {
            atomic_fetch_add(&sh->failures, 1);
            break;
        }
        memcpy(p, &tag, sizeof tag);
        fill(p + sizeof tag, n - sizeof tag, tag);
        unsigned char *old = atomic_exchange(&sh->box[next][r % XT_BOX], p);
        (void)old; /* slots of the next thread's box: whatever was there is ours to free */
        if (old) {
            uintptr_t t;
            memcpy(&t, old, sizeof t);
            size_t on = xt_size(t) + sizeof t;
            if (verify(old + sizeof t, on - sizeof t, t) != on - sizeof t)
                atomic_fetch_add(&sh->failures, 1);
            f->b->free(f->heap, old, on);
        }
        /* and take something out of our own box */
        unsigned char *mine = atomic_exchange(&sh->box[a->id][(r * 7) % XT_BOX], NULL);
        if (mine) {
            uintptr_t t;
            memcpy(&t, mine, sizeof t);
            size_t on = xt_size(t) + sizeof t;
            if (verify(mine + sizeof t, on - sizeof t, t) != on - sizeof t)
                atomic_fetch_add(&sh->failures, 1);
            f->b->free(f->heap, mine, on);
        }
    }
    if (f->b->thread_detach) f->b->thread_detach(f->heap);
    return NULL;
}

ParameterizedTestParameters(conformance, threads_cross_thread_free) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, threads_cross_thread_free, .timeout = 240)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    if (!(f.b->caps & AL_CAP_THREAD_SAFE)) {
        close_backend(&f);
        cr_skip_test("%s is not thread-safe (no AL_CAP_THREAD_SAFE)", *name);
    }
    static xt_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.f = &f;
    pthread_t t[XT_THREADS];
    xt_arg args[XT_THREADS];
    for (int i = 0; i < XT_THREADS; i++) {
        args[i] = (xt_arg){&sh, i};
        cr_assert_eq(pthread_create(&t[i], NULL, xt_worker, &args[i]), 0);
    }
    for (int i = 0; i < XT_THREADS; i++) pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&sh.failures), 0,
                 "%s: %d blocks were corrupted or allocations failed across threads", *name,
                 atomic_load(&sh.failures));
    for (int i = 0; i < XT_THREADS; i++)
        for (int j = 0; j < XT_BOX; j++) {
            unsigned char *p = atomic_load(&sh.box[i][j]);
            if (!p) continue;
            uintptr_t tag;
            memcpy(&tag, p, sizeof tag);
            f.b->free(f.heap, p, xt_size(tag) + sizeof tag);
        }
    check_heap(&f, "after the cross-thread run");
    close_backend(&f);
}

/* fork() while other threads are inside the backend, the way a drop-in's pthread_atfork
 * handlers drive the atfork entry: PREPARE in the forking thread, then PARENT in the parent
 * and CHILD in the child. The child must then allocate and free freely (sizes that reach the
 * shared, locked levels: refills and large blocks), and the heap's invariants hold there. A
 * child that deadlocks on a lock held at fork() is killed after 10 s and fails the test. */
enum { FK_THREADS = 2, FK_FORKS = 20 };

typedef struct fk_shared {
    fixture *f;
    _Atomic int stop, failures;
} fk_shared;

static size_t fk_size(unsigned i) { return 1 + (size_t)(i * 2654435761u % (i % 4 ? 3000 : 100000)); }

static void *fk_churn(void *arg)
{
    fk_shared *sh = arg;
    fixture *f = sh->f;
    void *slot[64] = {0};
    size_t len[64] = {0};
    for (unsigned i = 0; !atomic_load_explicit(&sh->stop, memory_order_relaxed); i++) {
        unsigned k = i % 64;
        f->b->free(f->heap, slot[k], len[k]);
        len[k] = fk_size(i);
        slot[k] = f->b->alloc(f->heap, len[k]);
        if (!slot[k]) {
            atomic_fetch_add(&sh->failures, 1);
            break;
        }
        memset(slot[k], (int)k, len[k] < 64 ? len[k] : 64);
    }
    for (int k = 0; k < 64; k++) f->b->free(f->heap, slot[k], len[k]);
    if (f->b->thread_detach) f->b->thread_detach(f->heap);
    return NULL;
}

/* In the child: allocate, verify, free; check the heap. Returns the exit status. */
static int fk_child(void *arg)
{
    fixture *f = arg;
    void *p[256];
    for (int round = 0; round < 8; round++) {
        for (unsigned i = 0; i < 256; i++) {
            size_t n = fk_size(i + 7u * (unsigned)round);
            if (!(p[i] = f->b->alloc(f->heap, n))) return 3;
            fill(p[i], n < 256 ? n : 256, i);
        }
        for (unsigned i = 0; i < 256; i++) {
            size_t n = fk_size(i + 7u * (unsigned)round);
            if (verify(p[i], n < 256 ? n : 256, i) != (n < 256 ? n : 256)) return 4;
            f->b->free(f->heap, p[i], n);
        }
    }
    if (f->b->check) {
        char msg[256] = "";
        if (f->b->check(f->heap, msg, sizeof msg) != 0) return 5;
    }
    return 0;
}

ParameterizedTestParameters(conformance, fork_while_threads_allocate) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, fork_while_threads_allocate, .timeout = 240)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    if (!(f.b->caps & AL_CAP_THREAD_SAFE)) {
        close_backend(&f);
        cr_skip_test("%s is not thread-safe (no AL_CAP_THREAD_SAFE)", *name);
    }
    need(&f, (const void *)f.b->atfork, "atfork");
    static fk_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.f = &f;
    pthread_t t[FK_THREADS];
    for (int i = 0; i < FK_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, fk_churn, &sh), 0);
    int bad = 0, hung = 0, status = 0;
    for (int k = 0; k < FK_FORKS && !bad; k++) {
        usleep(1000); /* let the threads get into the backend */
        int st, r = fork_via_atfork(f.b, f.heap, fk_child, &f, 10000, &st);
        cr_assert_neq(r, FORK_FAILED, "fork failed");
        hung = r == FORK_CHILD_HUNG;
        bad = r != FORK_OK;
        if (r == FORK_CHILD_FAILED) status = st;
    }
    atomic_store(&sh.stop, 1);
    for (int i = 0; i < FK_THREADS; i++) pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&sh.failures), 0, "%s: an allocation failed in a thread", *name);
    cr_assert(!hung, "%s: a child forked while threads allocate hung for 10 s (a lock held "
                     "at fork() was not taken by atfork(PREPARE) or not reset in the child)", *name);
    cr_assert(!bad, "%s: a child forked while threads allocate failed (wait status %d: 3 = "
                    "alloc failed, 4 = data corrupt, 5 = check() failed)", *name, status);
    check_heap(&f, "after the forks");
    close_backend(&f);
}

/* Mapped memory (VmSize) of this process, in bytes. */
static size_t mapped_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (fp) {
        if (fscanf(fp, "%lu", &pages) != 1) pages = 0;
        fclose(fp);
    }
    return pages * (size_t)sysconf(_SC_PAGESIZE);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED_MALLOC 1
#else
#define SANITIZED_MALLOC 0
#endif

static void create_use_destroy(const al_backend *b)
{
    char err[256];
    void *h = b->create(NULL, err, sizeof err);
    cr_assert_not_null(h, "%s: create() failed on a later cycle: %s", b->name, err);
    void *p[300];
    for (int i = 0; i < 300; i++) {
        size_t s = i == 299 ? ((size_t)1 << 20) : (size_t)(16 + i * 97);
        p[i] = b->alloc(h, s);
        cr_assert_not_null(p[i]);
        memset(p[i], i, s);
    }
    for (int i = 0; i < 300; i++) b->free(h, p[i], i == 299 ? ((size_t)1 << 20) : (size_t)(16 + i * 97));
    b->destroy(h);
}

ParameterizedTestParameters(conformance, create_destroy_cycles_no_growth) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, create_destroy_cycles_no_growth, .timeout = 120)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    close_backend(&f);
    if (SANITIZED_MALLOC)
        cr_skip_test("%s: under a sanitizer, malloc is the sanitizer's own, whose quarantine and "
                     "shadow memory grow the mapping by design; the plain build checks this",
                     *name);
    for (int i = 0; i < 10; i++) create_use_destroy(f.b); /* warm-up: lazy global state */
    size_t before = mapped_bytes();
    for (int i = 0; i < 100; i++) create_use_destroy(f.b);
    size_t after = mapped_bytes();
    cr_assert_leq(after, before + ((size_t)1 << 20),
                  "%s: mapped memory grew from %zu to %zu bytes over 100 create/destroy cycles",
                  *name, before, after);
}

ParameterizedTestParameters(conformance, collect_keeps_live_blocks) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, collect_keeps_live_blocks)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    need(&f, f.b->collect, "collect");
    if (f.b->caps & AL_CAP_FREE_NOOP) {
        close_backend(&f);
        cr_skip_test("%s: collect() resets the region (AL_CAP_FREE_NOOP): no block outlives it",
                     *name);
    }
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        size_t s = 1 + (size_t)i * 37 % 5000;
        p[i] = f.b->alloc(f.heap, s);
        cr_assert_not_null(p[i]);
        fill(p[i], s, (uintptr_t)i);
        if (i % 2) {
            f.b->free(f.heap, p[i], s);
            p[i] = NULL;
        }
    }
    f.b->collect(f.heap);
    check_heap(&f, "after collect");
    for (int i = 0; i < 1000; i++) {
        if (!p[i]) continue;
        size_t s = 1 + (size_t)i * 37 % 5000;
        cr_assert_eq(verify(p[i], s, (uintptr_t)i), s, "%s: collect() changed a live block",
                     *name);
        f.b->free(f.heap, p[i], s);
    }
    close_backend(&f);
}

ParameterizedTestParameters(conformance, stats_are_consistent) BACKEND_PARAMS
ParameterizedTest(bname *bn, conformance, stats_are_consistent)
{
    const char *const *name = &(const char *){bn->s};
    fixture f = open_backend(*name);
    need(&f, f.b->stats, "stats");
    al_stats before, after;
    memset(&before, 0xFF, sizeof before);
    cr_assert_eq(f.b->stats(f.heap, &before), 0);
    cr_assert_neq(before.present, 0, "%s: stats() reports no field at all", *name);
    void *p[100];
    for (int i = 0; i < 100; i++) p[i] = f.b->alloc(f.heap, 1000);
    cr_assert_eq(f.b->stats(f.heap, &after), 0);
    if (after.present & AL_STAT_BIT(mallocs))
        cr_assert_geq(after.mallocs - before.mallocs, 100, "%s: Mallocs did not count", *name);
    if (after.present & AL_STAT_BIT(total_alloc))
        cr_assert_geq(after.total_alloc - before.total_alloc, 100000,
                      "%s: TotalAlloc did not count", *name);
    if (after.present & AL_STAT_BIT(sys))
        cr_assert_geq(after.sys, 100000, "%s: Sys below what is live", *name);
    for (int i = 0; i < 100; i++) f.b->free(f.heap, p[i], 1000);
    close_backend(&f);
}
