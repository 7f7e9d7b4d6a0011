/* fixalloc.c - Go's fixalloc: fixed-size metadata objects (spans, mcaches, tiny records)
 * carved from 16 KiB mmap'd chunks, recycled through an intrusive free list. Every function
 * runs under the heap lock. Chunks are unmapped only when the heap is destroyed.
 *   objects handed out = inuse;  sys = 16 KiB * chunks. */
#include "gotiered_internal.h"

#include <sys/mman.h>

#define GT_FIX_CHUNK ((size_t)16 << 10)
#define GT_FIX_HDR ((size_t)64) /* chunk link, keeps objects 64-byte aligned */

/* Can't fail. */
void gt_fix_init(gt_fix *f, size_t size)
{
    f->size = (size + 63) & ~(size_t)63;
    f->free = NULL;
    f->cur = NULL;
    f->left = 0;
    f->chunks = NULL;
    f->sys = 0;
    f->inuse = 0;
}

/* An object of f->size bytes (contents undefined), or NULL when mmap fails. */
void *gt_fix_alloc(gt_fix *f)
{
    void *p = f->free;
    if (p) {
        f->free = *(void **)p;
    } else {
        if (f->left < f->size) {
            char *c = mmap(NULL, GT_FIX_CHUNK, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (c == MAP_FAILED) return NULL;
            *(void **)c = f->chunks;
            f->chunks = c;
            f->cur = c + GT_FIX_HDR;
            f->left = GT_FIX_CHUNK - GT_FIX_HDR;
            f->sys += GT_FIX_CHUNK;
        }
        p = f->cur;
        f->cur += f->size;
        f->left -= f->size;
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

/* Unmaps every chunk. Can't fail. */
void gt_fix_destroy(gt_fix *f)
{
    void *c = f->chunks;
    while (c) {
        void *next = *(void **)c;
        GT_UNPOISON(c, GT_FIX_CHUNK);
        munmap(c, GT_FIX_CHUNK);
        c = next;
    }
    gt_fix_init(f, f->size);
}
