/* glibc_direct.h - force-included (-include) when allocators/libc.c is compiled into a drop-in:
 * inside liballoclab-<backend>.so, plain malloc() is the drop-in itself, so a backend layered
 * on the `libc` backend (syncpool's default under=libc) would call back into its own shim. Here
 * the libc backend's calls go straight to glibc's allocator instead (__libc_malloc & co.,
 * exported by libc.so.6 for this purpose), so "libc" keeps meaning glibc's ptmalloc2. */
#ifndef ALLOCLAB_GLIBC_DIRECT_H
#define ALLOCLAB_GLIBC_DIRECT_H

#include <gnu/libc-version.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

/* posix_memalign on glibc's heap: 0, EINVAL (bad alignment) or ENOMEM. */
int al_glibc_posix_memalign(void **out, size_t align, size_t size);
/* glibc's own malloc_usable_size (looked up in libc.so.6, not the interposed one). Can't fail
 * (0 when it cannot be found). */
size_t al_glibc_usable_size(void *p);

#define malloc __libc_malloc
#define free __libc_free
#define realloc __libc_realloc
#define posix_memalign al_glibc_posix_memalign
#define malloc_usable_size al_glibc_usable_size

#endif
