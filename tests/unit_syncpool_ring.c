/* unit_syncpool_ring.c - syncpool's poolDequeue and poolChain (allocators/syncpool/sp_ring.c):
 * push/pop/popTail semantics, the full ring, chain growth, and a multi-threaded stress where
 * one producer pushes and pops its head while several stealers popTail, checking that every
 * value is seen exactly once. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "syncpool/sp_internal.h"

#define V(i) ((void *)(uintptr_t)((i) + 1)) /* values are never NULL */

Test(syncpool_ring, push_pop_head_is_lifo_pop_tail_is_fifo)
{
    sp_deq *d = sp_deq_new(8);
    cr_assert_not_null(d);
    cr_assert_null(sp_deq_pop_head(d));
    cr_assert_null(sp_deq_pop_tail(d));
    for (int i = 0; i < 5; i++) cr_assert_eq(sp_deq_push_head(d, V(i)), 0);
    cr_assert_eq(sp_deq_len(d), 5);
    cr_assert_eq(sp_deq_pop_head(d), V(4), "popHead takes the newest");
    cr_assert_eq(sp_deq_pop_tail(d), V(0), "popTail takes the oldest");
    cr_assert_eq(sp_deq_pop_tail(d), V(1));
    cr_assert_eq(sp_deq_pop_head(d), V(3));
    cr_assert_eq(sp_deq_pop_head(d), V(2));
    cr_assert_null(sp_deq_pop_head(d));
    cr_assert_null(sp_deq_pop_tail(d));
    cr_assert_eq(sp_deq_len(d), 0);
    free(d);
}

Test(syncpool_ring, full_ring_refuses_then_wraps)
{
    sp_deq *d = sp_deq_new(8);
    for (int i = 0; i < 8; i++) cr_assert_eq(sp_deq_push_head(d, V(i)), 0);
    cr_assert_eq(sp_deq_push_head(d, V(8)), -1, "pushHead must fail on a full ring");
    cr_assert_eq(sp_deq_len(d), 8);
    /* Free one slot at the tail; the head wraps into it. Many laps exercise the 32-bit
     * wrap of the index arithmetic modulo the ring. */
    for (int lap = 0; lap < 1000; lap++) {
        cr_assert_eq(sp_deq_pop_tail(d), V(lap));
        cr_assert_eq(sp_deq_push_head(d, V(lap + 8)), 0);
        cr_assert_eq(sp_deq_push_head(d, V(99999)), -1);
    }
    for (int i = 0; i < 8; i++) cr_assert_eq(sp_deq_pop_tail(d), V(1000 + i));
    cr_assert_null(sp_deq_pop_tail(d));
    free(d);
}

Test(syncpool_ring, chain_grows_8_16_32_and_keeps_order)
{
    sp_chain c;
    sp_chain_init(&c);
    cr_assert_null(sp_chain_pop_tail(&c));
    cr_assert_null(sp_chain_pop_head(&c));
    size_t grown = 0;
    for (int i = 0; i < 8 + 16 + 32 + 1; i++) cr_assert_eq(sp_chain_push_head(&c, V(i), &grown), 0);
    /* four dequeues: 8, 16, 32, 64 slots */
    int n = 0;
    uint32_t sizes[8];
    for (sp_deq *d = c.all; d; d = d->all_next) sizes[n++] = d->mask + 1;
    cr_assert_eq(n, 4, "chain should hold 4 dequeues, has %d", n);
    cr_assert_eq(sizes[0], 64);
    cr_assert_eq(sizes[3], 8);
    cr_assert_eq(grown, sp_deq_bytes(8) + sp_deq_bytes(16) + sp_deq_bytes(32) + sp_deq_bytes(64));
    char why[160];
    cr_assert_eq(sp_chain_walk(&c, NULL, NULL, why, sizeof why), 57, "%s", why);
    /* popTail drains oldest first across dequeues; popHead takes the newest. */
    cr_assert_eq(sp_chain_pop_head(&c), V(56));
    for (int i = 0; i < 30; i++) cr_assert_eq(sp_chain_pop_tail(&c), V(i));
    for (int i = 55; i >= 30; i--) cr_assert_eq(sp_chain_pop_head(&c), V(i));
    cr_assert_null(sp_chain_pop_head(&c));
    cr_assert_null(sp_chain_pop_tail(&c));
    /* the head dequeue (64 slots) is reused: no further growth for 64 values */
    grown = 0;
    for (int i = 0; i < 64; i++) cr_assert_eq(sp_chain_push_head(&c, V(i), &grown), 0);
    cr_assert_eq(grown, 0);
    cr_assert_eq(sp_chain_walk(&c, NULL, NULL, why, sizeof why), 64, "%s", why);
    size_t freed = sp_chain_destroy(&c);
    cr_assert_gt(freed, 0);
}

/* ---- multi-threaded stress: one producer, several stealers ---- */

#define STEALERS 3
#ifdef __SANITIZE_THREAD__
#define STRESS_N 60000
#else
#define STRESS_N 600000
#endif

typedef struct stress {
    sp_chain chain;
    _Atomic unsigned char *seen; /* seen[i] counts how often value i came out */
    _Atomic int producer_done;
    _Atomic long taken;
} stress;

static void take(stress *s, void *v)
{
    uintptr_t i = (uintptr_t)v - 1;
    cr_assert_lt(i, STRESS_N, "a value that was never pushed came out: %lu", (unsigned long)i);
    atomic_fetch_add_explicit(&s->seen[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->taken, 1, memory_order_relaxed);
}

static void *stealer(void *arg)
{
    stress *s = arg;
    for (;;) {
        void *v = sp_chain_pop_tail(&s->chain);
        if (v) {
            take(s, v);
            continue;
        }
        if (atomic_load_explicit(&s->producer_done, memory_order_acquire)) {
            /* one more pass: the producer finished before our last empty look */
            while ((v = sp_chain_pop_tail(&s->chain))) take(s, v);
            return NULL;
        }
    }
}

Test(syncpool_ring, stress_one_producer_many_stealers_exactly_once, .timeout = 60)
{
    stress *s = calloc(1, sizeof *s);
    s->seen = calloc(STRESS_N, 1);
    sp_chain_init(&s->chain);
    pthread_t t[STEALERS];
    for (int i = 0; i < STEALERS; i++) pthread_create(&t[i], NULL, stealer, s);
    unsigned rng = 12345;
    for (long i = 0; i < STRESS_N; i++) {
        cr_assert_eq(sp_chain_push_head(&s->chain, V(i), NULL), 0);
        rng = rng * 1103515245u + 12345u;
        if ((rng >> 16) % 3 == 0) { /* the owner also pops its own head, as Get does */
            void *v = sp_chain_pop_head(&s->chain);
            if (v) take(s, v);
        }
    }
    atomic_store_explicit(&s->producer_done, 1, memory_order_release);
    for (int i = 0; i < STEALERS; i++) pthread_join(t[i], NULL);
    void *v;
    while ((v = sp_chain_pop_head(&s->chain))) take(s, v);
    cr_assert_eq(atomic_load(&s->taken), STRESS_N);
    for (long i = 0; i < STRESS_N; i++)
        cr_assert_eq(atomic_load(&s->seen[i]), 1, "value %ld came out %d times", i,
                     (int)atomic_load(&s->seen[i]));
    sp_chain_destroy(&s->chain);
    free((void *)s->seen);
    free(s);
}
