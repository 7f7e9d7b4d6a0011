/* dropin.c - liballoclab-<backend>.so: any alloclab backend as the process's malloc, for
 * LD_PRELOAD (built once per backend with -DAL_DROPIN_BACKEND=<name>; `make preload`).
 *
 *   LD_PRELOAD=build/liballoclab-gotiered.so python3 script.py
 * Options for the backend's create(): ALLOCLAB_DROPIN_OPTIONS="key=value,..." (plus the
 * backend's own ALLOCLAB_<NAME>_* variables).
 *
 * Glossary
 *   heap        the one heap the shim creates on the first allocation, from the registry entry
 *               named AL_DROPIN_BACKEND.
 *   boot arena  DN_BOOT_SIZE static bytes served by an atomic bump pointer while the heap is
 *               being created: create() may call malloc/calloc (bump's calloc of its heap
 *               struct), pthread functions, getenv... Those calls re-enter this shim and are
 *               served from here (also to other threads arriving meanwhile). Boot blocks are
 *               recognised by address: free() ignores them, realloc() moves them out,
 *               malloc_usable_size() reads their header.
 *   header mode when the backend has no usable_size or no alloc_aligned, or wants the size at
 *               free (AL_CAP_NEEDS_SIZE), every block carries a 16-byte header just below the
 *               user pointer: {u64 size asked, u32 pad, u32 tail}; the backend's block is
 *               raw = user - pad of raw_size = pad + size + tail bytes (its free() size hint).
 *               Plain blocks: pad 16, tail 0. Aligned (align > 16): raw_size = size + align,
 *               user = align_up(raw + 16, align) (raw is 16-aligned, so pad <= align).
 *   direct mode otherwise: user pointer = the backend's pointer, usable_size from the backend,
 *               free's size hint 0 (the contract allows it).
 *
 * malloc path: 1. state != READY -> slow path (first call: create the heap; re-entrant or
 *   concurrent calls during that: boot arena); 2. direct: b->alloc; header: b->alloc(size+16)
 *   and write the header. 16-byte alignment: the backend's 16 (sizes >= 16; header-mode raw
 *   sizes are always >= 16) plus the 16-byte header. Sizes are overflow-checked (ENOMEM).
 * free path: NULL -> nothing; boot block -> nothing; b->free(raw, raw_size or 0).
 * Nesting: a backend that calls malloc/free itself (or a libc function that does, e.g.
 *   pthread_create under its own lock) comes back into this shim; while dn_depth > 0 such
 *   nested allocations are served from the boot arena and nested frees are deferred to a
 *   small per-thread list, freed when the outer call returns (DN_DEFER_MAX of them; more are
 *   leaked and counted in dn_deferred_lost). The backend is never entered twice by a thread.
 * Threads: a backend without AL_CAP_THREAD_SAFE is called under one mutex. With thread_detach,
 *   each allocating thread sets a pthread key whose destructor calls it at thread exit.
 * Fork: pthread_atfork, registered at the first allocation (so its prepare handler runs after
 *   those of libraries registered later: they may still allocate), takes the shim's own mutex
 *   (when used) and then calls the backend's atfork(PREPARE), which takes every lock of the
 *   heap; the parent handler releases them, the child handler re-initialises them. So a child
 *   forked while other threads are inside the backend can allocate freely. A thread-safe
 *   backend without an atfork hook cannot be made fork-safe by the shim: a child forked while
 *   another thread is inside it must only exec (alloclab --list says which have the hook).
 * Invariants: boot blocks never reach the backend; header mode: pad >= 16, pad % 16 == 0 for
 *   plain blocks, (user % align) == 0, raw_size == pad + size + tail.
 */
#include "allocator.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AL_DROPIN_BACKEND
#error "build with -DAL_DROPIN_BACKEND=<backend name>"
#endif
#define DN_STR2(x) #x
#define DN_STR(x) DN_STR2(x)

#define DN_EXPORT __attribute__((visibility("default")))
#define DN_TLS __attribute__((tls_model("initial-exec")))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define DN_BOOT_SIZE ((size_t)1 << 20)
#define DN_HDR 16u
#define DN_MAX_ALIGN ((size_t)1 << 30)

enum { DN_UNINIT, DN_INITING, DN_READY };

typedef struct dn_hdr {
    uint64_t size; /* bytes asked */
    uint32_t pad;  /* user - raw */
    uint32_t tail; /* raw_size - pad - size */
} dn_hdr;

static _Alignas(64) unsigned char dn_boot[DN_BOOT_SIZE];
static _Atomic size_t dn_boot_used;
static _Atomic int dn_state = DN_UNINIT;
static const al_backend *dn_b;
static void *dn_heap;
static int dn_header_mode, dn_locked;
static pthread_mutex_t dn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t dn_key;
static int dn_use_key;
static DN_TLS __thread int dn_thread_state; /* 0 new, 1 key set, 2 key destructor ran */
static DN_TLS __thread int dn_depth;        /* > 0 while this thread is inside the backend */
#define DN_DEFER_MAX 64
static DN_TLS __thread void *dn_deferred[DN_DEFER_MAX]; /* frees made from inside the backend */
static DN_TLS __thread int dn_ndeferred;
static _Atomic unsigned long dn_deferred_lost; /* deferred frees that did not fit: leaked */

/* ---- calls into the backend: the optional lock and the re-entrancy depth ----
 * A backend may call malloc/free itself, or a libc function that does (gotiered's slow path
 * starts its scavenger thread with pthread_create, whose calloc of the new thread's DTV comes
 * back here while the backend holds its own lock). Such nested calls must not reach the backend
 * again: a nested allocation is served from the boot arena, a nested free is deferred and done
 * when the outer call has returned. */
static void dn_drain(void);

#define DN_CALL_BEGIN()                                       \
    do {                                                      \
        dn_depth++;                                           \
        if (unlikely(dn_locked)) pthread_mutex_lock(&dn_lock); \
    } while (0)
#define DN_CALL_END()                                           \
    do {                                                        \
        if (unlikely(dn_locked)) pthread_mutex_unlock(&dn_lock); \
        if (--dn_depth == 0 && unlikely(dn_ndeferred)) dn_drain(); \
    } while (0)

static inline int dn_is_boot(const void *p)
{
    return (uintptr_t)p - (uintptr_t)dn_boot < DN_BOOT_SIZE;
}

static inline dn_hdr *dn_hdr_of(const void *user) { return (dn_hdr *)user - 1; }

static void dn_die(const char *what, const char *why)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "liballoclab-%s.so: %s: %s\n", DN_STR(AL_DROPIN_BACKEND),
                     what, why);
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
    abort();
}

/* A boot-arena block of n bytes aligned to align (>= 16), with a plain header. NULL when the
 * arena is exhausted (ENOMEM). */
static void *dn_boot_alloc(size_t n, size_t align)
{
    if (n > DN_BOOT_SIZE || align > DN_BOOT_SIZE / 4) {
        errno = ENOMEM;
        return NULL;
    }
    size_t need = (n + align + DN_HDR + 15) & ~(size_t)15;
    size_t off = atomic_fetch_add(&dn_boot_used, need);
    if (off + need > DN_BOOT_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t raw = (uintptr_t)dn_boot + off;
    uintptr_t user = (raw + DN_HDR + align - 1) & ~(uintptr_t)(align - 1);
    dn_hdr *h = dn_hdr_of((void *)user);
    h->size = n;
    h->pad = (uint32_t)(user - raw);
    h->tail = 0;
    return (void *)user;
}

static void dn_thread_exit(void *arg)
{
    (void)arg;
    dn_thread_state = 2;
    if (dn_b->thread_detach) {
        DN_CALL_BEGIN();
        dn_b->thread_detach(dn_heap);
        DN_CALL_END();
    }
}

/* pthread_atfork handlers: the shim's mutex outermost, the backend's locks inside it. The
 * forking thread holds the backend's locks across fork(), so it must not be inside the
 * backend itself: fork() is not called from within malloc, and dn_depth is 0 here. */
static void dn_fork_prepare(void)
{
    if (dn_locked) pthread_mutex_lock(&dn_lock);
    if (dn_b->atfork) dn_b->atfork(dn_heap, AL_FORK_PREPARE);
}

static void dn_fork_parent(void)
{
    if (dn_b->atfork) dn_b->atfork(dn_heap, AL_FORK_PARENT);
    if (dn_locked) pthread_mutex_unlock(&dn_lock);
}

static void dn_fork_child(void)
{
    if (dn_b->atfork) dn_b->atfork(dn_heap, AL_FORK_CHILD);
    if (dn_locked) pthread_mutex_init(&dn_lock, NULL);
}

/* Creates the heap (first call). Returns 1 when this thread must use the boot arena (the heap
 * is being created by this or another thread), 0 when the heap is ready. Aborts with a message
 * when the backend is missing or create() fails: there is no malloc to fall back to. */
__attribute__((noinline, cold)) static int dn_init(void)
{
    int expect = DN_UNINIT;
    if (!atomic_compare_exchange_strong(&dn_state, &expect, DN_INITING))
        return expect != DN_READY;
    const al_backend *b = al_backend_find(DN_STR(AL_DROPIN_BACKEND));
    if (!b) dn_die("backend not registered", DN_STR(AL_DROPIN_BACKEND));
    char err[256] = "";
    const char *opt = getenv("ALLOCLAB_DROPIN_OPTIONS");
    void *heap = b->create(opt && *opt ? opt : NULL, err, sizeof err);
    if (!heap) dn_die("create() failed", err);
    dn_b = b;
    dn_heap = heap;
    dn_header_mode = !b->usable_size || !b->alloc_aligned || (b->caps & AL_CAP_NEEDS_SIZE);
    dn_locked = !(b->caps & AL_CAP_THREAD_SAFE);
    if (b->thread_detach && pthread_key_create(&dn_key, dn_thread_exit) == 0) dn_use_key = 1;
    if (dn_locked || b->atfork) pthread_atfork(dn_fork_prepare, dn_fork_parent, dn_fork_child);
    atomic_store_explicit(&dn_state, DN_READY, memory_order_release);
    return 0;
}

__attribute__((noinline, cold)) static void dn_register_thread(void)
{
    dn_thread_state = 1; /* first: pthread_setspecific may allocate and come back here */
    pthread_setspecific(dn_key, (void *)1);
}

static inline void *dn_b_alloc(size_t n)
{
    DN_CALL_BEGIN();
    void *p = dn_b->alloc(dn_heap, n);
    DN_CALL_END();
    return p;
}

static inline void dn_b_free(void *p, size_t n)
{
    DN_CALL_BEGIN();
    dn_b->free(dn_heap, p, n);
    DN_CALL_END();
}

/* Ready the heap for this thread. Returns 0, or 1 when the boot arena must serve the call. */
static inline int dn_enter(void)
{
    if (unlikely(atomic_load_explicit(&dn_state, memory_order_acquire) != DN_READY))
        if (dn_init()) return 1;
    if (unlikely(dn_depth)) return 1; /* nested call from inside the backend */
    if (unlikely(dn_use_key && dn_thread_state == 0)) dn_register_thread();
    return 0;
}

/* Aligned allocation, align a power of two >= 16 (plain malloc: align 16). NULL + ENOMEM on
 * failure or overflow. */
static void *dn_alloc(size_t n, size_t align)
{
    if (unlikely(dn_enter())) return dn_boot_alloc(n, align);
    if (unlikely(n > PTRDIFF_MAX || align > DN_MAX_ALIGN)) {
        errno = ENOMEM;
        return NULL;
    }
    void *user;
    if (!dn_header_mode) {
        if (align <= AL_MIN_ALIGN) {
            /* the contract's small-size alignment is below 16: ask for at least 16 bytes */
            user = dn_b_alloc(n < AL_MIN_ALIGN ? AL_MIN_ALIGN : n);
        } else {
            DN_CALL_BEGIN();
            user = dn_b->alloc_aligned(dn_heap, align, n);
            DN_CALL_END();
        }
    } else {
        size_t extra = align <= AL_MIN_ALIGN ? DN_HDR : align, raw_n;
        if (__builtin_add_overflow(n, extra, &raw_n) || raw_n > PTRDIFF_MAX) {
            errno = ENOMEM;
            return NULL;
        }
        unsigned char *raw = dn_b_alloc(raw_n);
        if (!raw) {
            errno = ENOMEM;
            return NULL;
        }
        uintptr_t u = align <= AL_MIN_ALIGN
                          ? (uintptr_t)raw + DN_HDR
                          : ((uintptr_t)raw + DN_HDR + align - 1) & ~(uintptr_t)(align - 1);
        user = (void *)u;
        dn_hdr *h = dn_hdr_of(user);
        h->size = n;
        h->pad = (uint32_t)(u - (uintptr_t)raw);
        h->tail = (uint32_t)(raw_n - h->pad - n);
    }
    if (unlikely(!user)) errno = ENOMEM;
    return user;
}

static inline size_t dn_usable(void *p)
{
    if (!p) return 0;
    if (dn_is_boot(p) || dn_header_mode) return dn_hdr_of(p)->size;
    DN_CALL_BEGIN();
    size_t n = dn_b->usable_size(dn_heap, p);
    DN_CALL_END();
    return n;
}

/* Free what nested calls deferred (depth 0 again). Can't fail. */
__attribute__((noinline, cold)) static void dn_drain(void)
{
    while (dn_ndeferred > 0 && dn_depth == 0) free(dn_deferred[--dn_ndeferred]);
}

/* ---- the malloc API ---- */
DN_EXPORT void *malloc(size_t n) { return dn_alloc(n, AL_MIN_ALIGN); }

DN_EXPORT void free(void *p)
{
    if (!p || dn_is_boot(p)) return;
    if (unlikely(dn_depth)) {
        if (dn_ndeferred < DN_DEFER_MAX) dn_deferred[dn_ndeferred++] = p;
        else atomic_fetch_add_explicit(&dn_deferred_lost, 1, memory_order_relaxed);
        return;
    }
    if (dn_header_mode) {
        dn_hdr *h = dn_hdr_of(p);
        dn_b_free((unsigned char *)p - h->pad, h->pad + h->size + h->tail);
    } else {
        dn_b_free(p, 0);
    }
}

DN_EXPORT void *calloc(size_t n, size_t m)
{
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = dn_alloc(total, AL_MIN_ALIGN);
    if (p && !dn_is_boot(p)) memset(p, 0, total); /* the boot arena is static: already 0 */
    return p;
}

DN_EXPORT void *realloc(void *p, size_t n)
{
    if (!p) return dn_alloc(n, AL_MIN_ALIGN);
    if (n == 0) { /* glibc's behaviour: free and return NULL */
        free(p);
        return NULL;
    }
    if (!dn_is_boot(p) && !dn_depth && atomic_load(&dn_state) == DN_READY && dn_b->realloc &&
        (!dn_header_mode || dn_hdr_of(p)->pad == DN_HDR)) {
        if (n > PTRDIFF_MAX - DN_HDR) {
            errno = ENOMEM;
            return NULL;
        }
        if (dn_header_mode) {
            dn_hdr *h = dn_hdr_of(p);
            unsigned char *raw = (unsigned char *)p - DN_HDR;
            DN_CALL_BEGIN();
            unsigned char *r = dn_b->realloc(dn_heap, raw, DN_HDR + h->size + h->tail, n + DN_HDR);
            DN_CALL_END();
            if (!r) {
                errno = ENOMEM;
                return NULL;
            }
            h = (dn_hdr *)r; /* the header moved with the content */
            h->size = n;
            h->tail = 0;
            return r + DN_HDR;
        }
        DN_CALL_BEGIN();
        void *q = dn_b->realloc(dn_heap, p, 0, n);
        DN_CALL_END();
        if (!q) errno = ENOMEM;
        return q;
    }
    /* boot blocks, aligned header blocks, backends without realloc: move by hand */
    size_t old = dn_usable(p);
    void *q = dn_alloc(n, AL_MIN_ALIGN);
    if (!q) return NULL;
    memcpy(q, p, old < n ? old : n);
    free(p);
    return q;
}

static inline int dn_pow2(size_t a) { return a && !(a & (a - 1)); }

DN_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!dn_pow2(align) || align % sizeof(void *)) return EINVAL;
    int saved = errno;
    void *p = dn_alloc(n, align < AL_MIN_ALIGN ? AL_MIN_ALIGN : align);
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

DN_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!dn_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return dn_alloc(n, align < AL_MIN_ALIGN ? AL_MIN_ALIGN : align);
}

DN_EXPORT void *memalign(size_t align, size_t n)
{
    if (align > DN_MAX_ALIGN) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = AL_MIN_ALIGN;
    while (a < align) a <<= 1; /* glibc rounds a non-power-of-two alignment up */
    return dn_alloc(n, a);
}

DN_EXPORT void *valloc(size_t n) { return dn_alloc(n, (size_t)sysconf(_SC_PAGESIZE)); }

DN_EXPORT void *pvalloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), r;
    if (__builtin_add_overflow(n, pg - 1, &r)) {
        errno = ENOMEM;
        return NULL;
    }
    r &= ~(pg - 1);
    return dn_alloc(r ? r : pg, pg);
}

DN_EXPORT size_t malloc_usable_size(void *p) { return dn_usable(p); }
