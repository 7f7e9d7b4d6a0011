/* tiny.c - Go's tiny allocator with explicit free: requests < 16 bytes share 16-byte blocks.
 *
 * The cache keeps one current block and an offset. A request is placed at the offset rounded
 * up to its alignment - the largest power of two <= size, which is what allocator.h promises
 * and is at least Go's rule (size%8==0 -> 8, %4 -> 4, %2 -> 2) - when it fits; otherwise a
 * fresh block comes from the tiny span class (16-byte objects in spans of their own, so a free
 * can tell a tiny sub-object from a 16-byte object by its span) and the cache keeps whichever
 * block has more room left.
 *
 * Explicit free needs a live count per block (gt_tinyblk.cnt, next to the span). To keep atomics
 * off the allocation fast path the cache pins its current block: cnt starts at GT_TINY_PIN (64),
 * the cache counts its handouts locally (tiny_n), frees decrement cnt atomically, and leaving
 * the block subtracts GT_TINY_PIN - tiny_n. So while pinned cnt = 64 - frees > 0, and afterwards
 * cnt = live sub-objects; the one who brings it to 0 frees the block.
 * Frees of the current block by its own cache's thread are counted locally (tiny_local) and
 * subtracted with the pin; when tiny_local == tiny_n every sub-object is dead and the block is
 * rewound to offset 0 in place (Go cannot do this: it has no free).
 *   pinned: cnt == GT_TINY_PIN - remote frees;  leaving subtracts GT_TINY_PIN - tiny_n + tiny_local.
 * `ends` marks where each sub-object ends, so usable_size knows a sub-object's size.
 */
#include "gotiered_internal.h"

/* Drop the cache's pin on its current block (freeing it when no sub-object is live).
 * Can't fail. */
void gt_tiny_release(gt_mcache *mc)
{
    if (mc->tiny_blk) {
        uint8_t drop = (uint8_t)(GT_TINY_PIN - mc->tiny_n + mc->tiny_local);
        uint8_t old = atomic_fetch_sub_explicit(&mc->tiny_rec->cnt, drop, memory_order_acq_rel);
        if (old == drop) {
#ifdef GOTIERED_DEBUG
            gt_debug_clear_live(gt_span_of((void *)mc->tiny_blk), mc->tiny_blk);
#endif
            GT_STAT_INC(mc->bytes_freed, GT_TINY_SIZE);
            gt_bits_free(mc->heap, gt_span_of((void *)mc->tiny_blk), mc->tiny_blk);
        }
    }
    mc->tiny_blk = 0;
    mc->tiny_off = GT_TINY_SIZE;
    mc->tiny_n = 0;
    mc->tiny_local = 0;
    mc->tiny_rec = NULL;
}

/* A fresh block for a request that did not fit (size 1..15). NULL when out of memory. */
GT_NOINLINE void *gt_tiny_alloc_slow(gt_mcache *mc, size_t size)
{
    GT_SLOW_SCOPE;
    void *b = gt_mcache_alloc(mc, GT_TINY_SPC);
    if (!b) return NULL;
    gt_span *s = gt_span_of(b);
    gt_tinyblk *r = &s->tiny[((uintptr_t)b - s->base) >> 4];
    atomic_store_explicit(&r->ends, (uint16_t)(1u << (size - 1)), memory_order_relaxed);
    GT_STAT_INC(mc->nmalloc, 1);
    GT_STAT_INC(mc->bytes_alloc, GT_TINY_SIZE);
    if (size < mc->tiny_off) { /* the new block has more room: make it current */
        gt_tiny_release(mc);
        atomic_store_explicit(&r->cnt, GT_TINY_PIN, memory_order_release);
        mc->tiny_blk = (uintptr_t)b;
        mc->tiny_off = (unsigned)size;
        mc->tiny_n = 1;
        mc->tiny_local = 0;
        mc->tiny_rec = r;
    } else {
        atomic_store_explicit(&r->cnt, 1, memory_order_release);
    }
    return b;
}

/* Bytes usable at sub-object p: up to the end its own allocation marked. Can't fail. */
size_t gt_tiny_usable(const gt_span *s, uintptr_t p)
{
    const gt_tinyblk *r = &s->tiny[(p - s->base) >> 4];
    unsigned ends = atomic_load_explicit(&((gt_tinyblk *)r)->ends, memory_order_relaxed);
    unsigned m = ends >> (p & 15);
    return m ? (size_t)__builtin_ctz(m) + 1 : 1;
}
