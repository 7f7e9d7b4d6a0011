/* glibc_direct.c - the two glibc allocator entries libc.so.6 exports under no __libc_ name,
 * for a drop-in's `libc` backend (see glibc_direct.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_memalign(size_t, size_t);

int al_glibc_posix_memalign(void **out, size_t align, size_t size)
{
    if (!align || (align & (align - 1)) || align % sizeof(void *)) return EINVAL;
    void *p = __libc_memalign(align, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

size_t al_glibc_usable_size(void *p)
{
    typedef size_t (*usable_fn)(void *);
    static _Atomic(usable_fn) fn;
    usable_fn f = atomic_load_explicit(&fn, memory_order_acquire);
    if (!f) {
        /* dlsym in libc.so.6's own scope: the drop-in's malloc_usable_size comes first in the
         * global one. (dlopen may allocate: the drop-in serves that from its boot arena.) */
        void *h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        f = h ? (usable_fn)dlsym(h, "malloc_usable_size") : NULL;
        if (!f) return 0;
        atomic_store_explicit(&fn, f, memory_order_release);
    }
    return f(p);
}
