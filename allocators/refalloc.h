/* refalloc.h - internal helpers shared by the reference-allocator backends (mimalloc.c,
 * tcmalloc.c, jemalloc.c). Prefix ref_. Not part of the backend contract.
 *
 * Loading: a reference allocator is dlopen'ed with RTLD_LOCAL, so its malloc/free symbols never
 * enter the global scope and the process's malloc stays glibc's (tests/unit_refalloc.c checks
 * it); only its prefixed entry points (mi_*, tc_*) are resolved with dlsym.
 *
 * ThreadSanitizer: the loaded library is not instrumented, so TSan cannot see that a block
 * freed by thread A and handed to thread B by the library's free lists is ordered by the
 * library's own synchronisation; it would report the two threads' plain writes to the block as
 * a race. Under TSan every free releases and every alloc acquires one sync address (the edge
 * the real allocator provides), which removes those false reports and compiles out otherwise.
 */
#ifndef ALLOCLAB_REFALLOC_H
#define ALLOCLAB_REFALLOC_H

#include <stddef.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
extern char ref_tsan_sync;
static inline void ref_tsan_after_alloc(void) { __tsan_acquire(&ref_tsan_sync); }
static inline void ref_tsan_before_free(void) { __tsan_release(&ref_tsan_sync); }
#else
static inline void ref_tsan_after_alloc(void) {}
static inline void ref_tsan_before_free(void) {}
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
