/* fixalloc.c - Go's fixalloc: fixed-size metadata objects (spans, mcaches, tiny records) with an
 * intrusive free list. Objects are carved from 16 KiB chunks committed one after the other in a
 * region reserved (MAP_NORESERVE, untouched until used) on first use, so the allocator never
 * tracks chunks: destroy unmaps the region, and gt_fix_trim hands all of it back to the OS with
 * one madvise when no object is in use (collect after everything was freed).
 *   objects handed out = inuse;  sys = bytes of chunks carved;  cur <= limit <= region + cap.
 * Every function runs under the heap lock. */
#include "gotiered_internal.h"

#include <sys/mman.h>

#define GT_FIX_CHUNK ((size_t)16 << 10)

/* Can't fail (the region is reserved on first alloc). */
void gt_fix_init(gt_fix *f, size_t size, size_t cap)
{
    f->size = (size + 15) & ~(size_t)15;
    f->cap = cap;
    f->free = NULL;
    f->region = NULL;
    f->cur = f->limit = NULL;
    f->sys = 0;
    f->inuse = 0;
}

/* An object of f->size bytes (contents undefined), or NULL when the region is full or cannot
 * be reserved. */
void *gt_fix_alloc(gt_fix *f)
{
    void *p = f->free;
    if (p) {
        f->free = *(void **)p;
    } else {
        if (!f->region) {
            void *r = mmap(NULL, f->cap, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (r == MAP_FAILED) return NULL;
            f->region = f->cur = f->limit = r;
        }
        if ((size_t)(f->limit - f->cur) < f->size) {
            if ((size_t)(f->region + f->cap - f->limit) < GT_FIX_CHUNK) return NULL;
            f->cur = f->limit; /* the tail of the previous chunk (< size) is left unused */
            f->limit += GT_FIX_CHUNK;
            f->sys += GT_FIX_CHUNK;
        }
        p = f->cur;
        f->cur += f->size;
    }
    f->inuse++;
    return p;
}

/* Can't fail. */
void gt_fix_free(gt_fix *f, void *p)
{
    *(void **)p = f->free;
    f->free = p;
    f->inuse--;
}

/* With no object in use, give every chunk back to the OS (the region stays reserved; memory
 * reads as zeros, so a late reader of a recycled span sees state FREE). Can't fail. */
void gt_fix_trim(gt_fix *f)
{
    if (f->inuse || !f->region || f->limit == f->region) return;
    GT_UNPOISON(f->region, (size_t)(f->limit - f->region));
    madvise(f->region, (size_t)(f->limit - f->region), MADV_DONTNEED);
    f->free = NULL;
    f->cur = f->limit = f->region;
    f->sys = 0;
}

/* Unmaps the region. Can't fail. */
void gt_fix_destroy(gt_fix *f)
{
    if (f->region) {
        GT_UNPOISON(f->region, f->cap);
        munmap(f->region, f->cap);
    }
    gt_fix_init(f, f->size, f->cap);
}

/* ---- several object sizes from one region (span bitmaps of 16 << k bytes, k < nkinds):
 * one carve pointer and chunk sequence shared by all sizes, one free list per size, so a heap
 * with a few spans of each kind touches a page or two, not one chunk per kind. ---- */

/* Can't fail (the region is reserved on first alloc). */
void gt_mfix_init(gt_mfix *m, size_t cap)
{
    gt_fix_init(&m->f, 16, cap);
    for (unsigned k = 0; k < GT_BITS_KINDS; k++) m->free[k] = NULL;
}

/* An object of 16 << k bytes, or NULL when the region is full or cannot be reserved. */
void *gt_mfix_alloc(gt_mfix *m, unsigned k)
{
    void *p = m->free[k];
    if (p) {
        m->free[k] = *(void **)p;
        m->f.inuse++;
        return p;
    }
    m->f.size = (size_t)16 << k; /* carve this size from the shared chunks */
    m->f.free = NULL;
    return gt_fix_alloc(&m->f);
}

/* Can't fail. */
void gt_mfix_free(gt_mfix *m, unsigned k, void *p)
{
    *(void **)p = m->free[k];
    m->free[k] = p;
    m->f.inuse--;
}

/* gt_fix_trim for the shared region. Can't fail. */
void gt_mfix_trim(gt_mfix *m)
{
    if (m->f.inuse) return;
    gt_fix_trim(&m->f);
    for (unsigned k = 0; k < GT_BITS_KINDS; k++) m->free[k] = NULL;
}
