/* refalloc.h - internal helpers shared by the reference-allocator backends (mimalloc.c,
 * tcmalloc.c, jemalloc.c). Prefix ref_. Not part of the backend contract.
 *
 * Loading: a reference allocator is dlopen'ed with RTLD_LOCAL, so its malloc/free symbols never
 * enter the global scope and the process's malloc stays glibc's (tests/unit_refalloc.c checks
 * it); only its prefixed entry points (mi_*, tc_*) are resolved with dlsym.
 *
 * ThreadSanitizer: the loaded library is not instrumented, so TSan cannot see that a block
 * freed by thread A and handed to thread B by the library's free lists is ordered by the
 * library's own synchronisation; it would report the two threads' writes to the block (and the
 * library's own memset calls, which TSan intercepts) as races. Under TSan every call into the
 * library is bracketed by two sync points on one address (acquire + release, before and after
 * the call): a free's release comes before the block is back in a free list, an alloc's acquire
 * after it left one, so the ordering the real allocator's locks and atomics provide is what TSan
 * sees. It compiles out otherwise. Cost of the trade: a user race ordered only through
 * allocator calls is hidden.
 */
#ifndef ALLOCLAB_REFALLOC_H
#define ALLOCLAB_REFALLOC_H

#include <stddef.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern char ref_tsan_sync;
static inline void ref_tsan_point(void)
{
    __tsan_acquire(&ref_tsan_sync);
    __tsan_release(&ref_tsan_sync);
}
static inline void ref_tsan_begin(void) { ref_tsan_point(); }
static inline void ref_tsan_end(void) { ref_tsan_point(); }
#else
static inline void ref_tsan_begin(void) {}
static inline void ref_tsan_end(void) {}
#endif

/* One library's symbol table to resolve: names[i] goes to *slots[i]. */
typedef struct ref_sym {
    const char *name;
    void **slot;
    int optional; /* missing is fine (left NULL) */
} ref_sym;

/* dlopen `soname` with RTLD_LOCAL|RTLD_NOW and resolve syms. Returns 0, or -1 with one line in
 * err ("not installed: libmimalloc.so.2" when the file cannot be loaded, "libX: symbol Y
 * missing" otherwise); on failure the library is closed again and no slot is set. */
int ref_load(const char *soname, const ref_sym *syms, int nsyms, char *err, size_t errlen);

#endif
