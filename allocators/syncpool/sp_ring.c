/* sp_ring.c - Go's poolDequeue and poolChain (src/sync/poolqueue.go) in C11 atomics.
 *
 * poolDequeue: a fixed ring of 2^k slots with one producer (pushHead, popHead) and any number
 * of consumers (popTail). head and tail are packed in one 64-bit word (head in the high 32
 * bits), so a consumer claims the oldest slot with one CAS that also sees the producer's head.
 *   pushHead: full when tail + n == head, or when the head slot is still non-NULL (a consumer
 *             claimed it but has not released it yet); store the value, then publish it by
 *             adding 1 << 32 to head_tail (release).
 *   popHead:  CAS head - 1 (the producer races consumers only for the last value).
 *   popTail:  CAS tail + 1 (acquire: sees the value the producer published), read the slot,
 *             then release the slot by storing NULL (release: the producer's acquire load in
 *             pushHead sees the slot free only after our read).
 * Invariant: (head - tail) mod 2^32 <= n; slots [tail, head) hold non-NULL values.
 *
 * poolChain: a list of dequeues, 8, 16, 32... slots, the producer pushing into the newest
 * (head) and consumers taking from the oldest (tail). When the head dequeue is full the
 * producer links a new one twice its size. A consumer that finds the tail dequeue empty and a
 * newer one behind it moves the tail on (CAS) and cuts the prev link so popHead stops there.
 * Reclamation: Go's garbage collector frees the cut dequeues; here a cut dequeue is kept on
 * the chain's `all` list until the pool is drained (a consumer may still be reading it), so
 * no node is ever freed under a concurrent reader and the tail CAS never sees an ABA. Sizes
 * double, so a chain holds at most log2(peak) dequeues and <= 2x the peak ring in bytes.
 */
#include "sp_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define SP_DEQ_MASK32 ((uint64_t)0xffffffffu)

/* head << 32 | tail. Can't fail. */
static inline uint64_t deq_pack(uint32_t head, uint32_t tail)
{
    return (uint64_t)head << SP_DEQ_BITS | tail;
}

size_t sp_deq_bytes(uint32_t n) { return sizeof(sp_deq) + (size_t)n * sizeof(void *); }

sp_deq *sp_deq_new(uint32_t n)
{
    sp_deq *d = malloc(sp_deq_bytes(n));
    if (!d) return NULL;
    atomic_init(&d->head_tail, 0);
    d->mask = n - 1;
    atomic_init(&d->next, NULL);
    atomic_init(&d->prev, NULL);
    d->all_next = NULL;
    for (uint32_t i = 0; i < n; i++) atomic_init(&d->slot[i], NULL);
    return d;
}

int sp_deq_push_head(sp_deq *d, void *v)
{
    uint64_t ht = atomic_load_explicit(&d->head_tail, memory_order_relaxed);
    uint32_t head = (uint32_t)(ht >> SP_DEQ_BITS), tail = (uint32_t)ht;
    if ((uint32_t)(tail + d->mask + 1) == head) return -1; /* full */
    _Atomic(void *) *s = &d->slot[head & d->mask];
    if (atomic_load_explicit(s, memory_order_acquire) != NULL)
        return -1; /* a popTail claimed it and has not released it yet: still full */
    atomic_store_explicit(s, v, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->head_tail, (uint64_t)1 << SP_DEQ_BITS, memory_order_release);
    return 0;
}

void *sp_deq_pop_head(sp_deq *d)
{
    uint64_t ht = atomic_load_explicit(&d->head_tail, memory_order_acquire);
    uint32_t head;
    for (;;) {
        head = (uint32_t)(ht >> SP_DEQ_BITS);
        uint32_t tail = (uint32_t)ht;
        if (head == tail) return NULL;
        head--;
        if (atomic_compare_exchange_weak_explicit(&d->head_tail, &ht, deq_pack(head, tail),
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    _Atomic(void *) *s = &d->slot[head & d->mask];
    void *v = atomic_load_explicit(s, memory_order_relaxed);
    atomic_store_explicit(s, NULL, memory_order_relaxed); /* only the producer reuses it */
    return v;
}

void *sp_deq_pop_tail(sp_deq *d)
{
    uint64_t ht = atomic_load_explicit(&d->head_tail, memory_order_acquire);
    uint32_t tail;
    for (;;) {
        uint32_t head = (uint32_t)(ht >> SP_DEQ_BITS);
        tail = (uint32_t)ht;
        if (head == tail) return NULL;
        if (atomic_compare_exchange_weak_explicit(&d->head_tail, &ht,
                                                  deq_pack(head, tail + 1),
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    _Atomic(void *) *s = &d->slot[tail & d->mask];
    void *v = atomic_load_explicit(s, memory_order_relaxed);
    atomic_store_explicit(s, NULL, memory_order_release); /* hand the slot back */
    return v;
}

uint32_t sp_deq_len(sp_deq *d)
{
    uint64_t ht = atomic_load_explicit(&d->head_tail, memory_order_relaxed);
    return (uint32_t)(ht >> SP_DEQ_BITS) - (uint32_t)ht;
}

void sp_chain_init(sp_chain *c)
{
    c->head = NULL;
    atomic_init(&c->tail, NULL);
    c->all = NULL;
}

int sp_chain_push_head(sp_chain *c, void *v, size_t *grown)
{
    sp_deq *d = c->head;
    if (sp_likely(d != NULL)) {
        if (sp_likely(sp_deq_push_head(d, v) == 0)) return 0;
    }
    uint32_t n = d ? (d->mask + 1) * 2 : SP_DEQ_FIRST;
    if (n > SP_DEQ_LIMIT) n = SP_DEQ_LIMIT;
    sp_deq *d2 = sp_deq_new(n);
    if (!d2) return -1;
    if (grown) *grown += sp_deq_bytes(n);
    d2->all_next = c->all;
    c->all = d2;
    sp_deq_push_head(d2, v); /* empty and private: can't fail */
    atomic_store_explicit(&d2->prev, d, memory_order_relaxed);
    c->head = d2;
    if (d)
        atomic_store_explicit(&d->next, d2, memory_order_release);
    else
        atomic_store_explicit(&c->tail, d2, memory_order_release);
    return 0;
}

void *sp_chain_pop_head(sp_chain *c)
{
    for (sp_deq *d = c->head; d; d = atomic_load_explicit(&d->prev, memory_order_acquire)) {
        void *v = sp_deq_pop_head(d);
        if (v) return v;
    }
    return NULL;
}

void *sp_chain_pop_tail(sp_chain *c)
{
    sp_deq *d = atomic_load_explicit(&c->tail, memory_order_acquire);
    if (!d) return NULL;
    for (;;) {
        /* Load next before popping: if d is empty and had no successor before our pop,
         * nothing can have been pushed into d after (the producer only pushes into the
         * newest dequeue), so "empty" is a true answer. */
        sp_deq *d2 = atomic_load_explicit(&d->next, memory_order_acquire);
        void *v = sp_deq_pop_tail(d);
        if (v) return v;
        if (!d2) return NULL;
        /* d is drained and will never be pushed to again: move the tail on. */
        sp_deq *exp = d;
        if (atomic_compare_exchange_strong_explicit(&c->tail, &exp, d2, memory_order_acq_rel,
                                                    memory_order_acquire))
            atomic_store_explicit(&d2->prev, NULL, memory_order_release);
        d = d2;
    }
}

long sp_chain_walk(sp_chain *c, void (*fn)(void *ctx, void *v), void *ctx, char *why,
                   size_t whylen)
{
    long n = 0;
    sp_deq *tail = atomic_load_explicit(&c->tail, memory_order_acquire);
    int tail_seen = (tail == NULL), head_seen = (c->head == NULL);
    for (sp_deq *d = c->all; d; d = d->all_next) {
        if (d == tail) tail_seen = 1;
        if (d == c->head) head_seen = 1;
        uint64_t ht = atomic_load_explicit(&d->head_tail, memory_order_acquire);
        uint32_t head = (uint32_t)(ht >> SP_DEQ_BITS), t = (uint32_t)ht;
        if ((uint32_t)(head - t) > d->mask + 1) {
            snprintf(why, whylen, "dequeue %p: head - tail = %u > %u slots", (void *)d,
                     head - t, d->mask + 1);
            return -1;
        }
        for (uint32_t i = t; i != head; i++) {
            void *v = atomic_load_explicit(&d->slot[i & d->mask], memory_order_relaxed);
            if (!v) {
                snprintf(why, whylen, "dequeue %p: NULL in full slot %u", (void *)d, i);
                return -1;
            }
            if (fn) fn(ctx, v);
            n++;
        }
    }
    if (!tail_seen || !head_seen) {
        snprintf(why, whylen, "chain %p: head or tail not on the chain's dequeue list",
                 (void *)c);
        return -1;
    }
    return n;
}

size_t sp_chain_destroy(sp_chain *c)
{
    size_t bytes = 0;
    for (sp_deq *d = c->all, *n; d; d = n) {
        n = d->all_next;
        bytes += sp_deq_bytes(d->mask + 1);
        free(d);
    }
    sp_chain_init(c);
    return bytes;
}
