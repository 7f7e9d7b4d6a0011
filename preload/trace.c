/* trace.c - liballoclab-trace.so: an LD_PRELOAD recorder of a program's allocations.
 *
 *   ALLOCLAB_TRACE=out.trace LD_PRELOAD=build/liballoclab-trace.so <program> ...
 * writes every malloc, calloc, realloc, free and aligned allocation (posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc) of <program> to out.trace in the format of
 * workloads/trace_format.h; the `replay` workload drives any backend from it. Without
 * ALLOCLAB_TRACE the library only forwards. Only the process started with ALLOCLAB_TRACE
 * records: the recorder removes the variable from its environment at start-up, so children
 * (fork+exec) do not overwrite the file, and a forked child stops recording.
 *
 * Glossary
 *   real allocator  glibc's, reached through __libc_malloc & co. (no dlsym, hence no
 *                   recursion at start-up); the recorder therefore cannot stack on another
 *                   preloaded malloc.
 *   id table        open-addressing hash map (linear probing, tombstones) live address -> id,
 *                   in mmap'd memory (the recorder never calls malloc itself).
 *   free ids        a stack of ids freed, reused first, so ids stay small (<= peak live + 1).
 *   in_tracer       thread-local flag: a malloc made while the recorder runs (by libc inside
 *                   pthread_atfork, say) is forwarded unrecorded: no recursion into itself.
 *
 * Record path (malloc):  1. call the real malloc outside the lock; 2. take the lock, give the
 *   address an id, append the record to the 1 MiB buffer (write(2) when full); 3. unlock.
 * free: 1. lock, look the address up, drop it, append the record, unlock; 2. real free.
 *   Recording a free before the real free and an allocation after the real one keeps the file's
 *   order consistent with the real one across threads: an address is never handed out again
 *   before its free is recorded. realloc runs the real call under the lock (its old address is
 *   freed inside it).
 * Exit: a destructor flushes the buffer and writes the header counts, then forwards only.
 * Fork: pthread_atfork takes the lock around fork(); the child stops recording.
 * Invariants: |id table| == number of live ids == max_id - |free ids|;
 *   records written == sum of the per-op counts.
 */
#include "trace_format.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TR_EXPORT __attribute__((visibility("default")))
#define TR_TLS __attribute__((tls_model("initial-exec")))

/* glibc's own allocator entry points (exported by libc.so.6 for exactly this use). */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { TR_UNINIT, TR_RECORDING, TR_FORWARD };

static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int tr_state = TR_UNINIT;
static int tr_fd = -1;
static uint64_t tr_counts[AL_TRACE_N];
static unsigned char tr_buf[1 << 20];
static size_t tr_len;
static _Atomic uint32_t tr_next_tid;
static TR_TLS __thread uint32_t tr_tid;
static TR_TLS __thread int in_tracer;

/* ---- the id table: address -> id ---- */
typedef struct tr_slot { uintptr_t key; uint64_t id; } tr_slot;
#define TR_EMPTY ((uintptr_t)0)
#define TR_TOMB ((uintptr_t)1)
static tr_slot *tr_tab;
static size_t tr_cap, tr_used; /* used counts live keys + tombstones */
static uint64_t *tr_free_ids;
static size_t tr_nfree, tr_free_cap;

static void *tr_map(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline size_t tr_hash(uintptr_t a, size_t cap)
{
    return (size_t)(((uint64_t)a * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (cap - 1);
}

/* Rehash into a table of `cap` slots. Returns 0, or -1 (mmap failed; table unchanged). */
static int tr_rehash(size_t cap)
{
    tr_slot *t = tr_map(cap * sizeof *t);
    if (!t) return -1;
    size_t used = 0;
    for (size_t i = 0; i < tr_cap; i++) {
        if (tr_tab[i].key <= TR_TOMB) continue;
        size_t j = tr_hash(tr_tab[i].key, cap);
        while (t[j].key != TR_EMPTY) j = (j + 1) & (cap - 1);
        t[j] = tr_tab[i];
        used++;
    }
    if (tr_tab) munmap(tr_tab, tr_cap * sizeof *tr_tab);
    tr_tab = t;
    tr_cap = cap;
    tr_used = used;
    return 0;
}

/* A fresh id for address a (lock held). Returns it, or 0 when the table cannot grow. */
static uint64_t tr_insert(uintptr_t a)
{
    if ((tr_used + 1) * 10 > tr_cap * 6) {
        size_t live = 0;
        for (size_t i = 0; i < tr_cap; i++) live += tr_tab[i].key > TR_TOMB;
        size_t cap = tr_cap ? tr_cap : 4096;
        while ((live + 1) * 10 > cap * 3) cap *= 2;
        if (tr_rehash(cap)) return 0;
    }
    uint64_t id = tr_nfree ? tr_free_ids[--tr_nfree] : ++tr_counts[AL_TRACE_C_MAX_ID];
    size_t j = tr_hash(a, tr_cap);
    while (tr_tab[j].key > TR_TOMB) {
        if (tr_tab[j].key == a) { /* a stale entry: the block was freed behind our back */
            tr_tab[j].id = id;
            return id;
        }
        j = (j + 1) & (tr_cap - 1);
    }
    if (tr_tab[j].key == TR_EMPTY) tr_used++;
    tr_tab[j].key = a;
    tr_tab[j].id = id;
    return id;
}

/* Remove address a (lock held). Returns its id, or 0 when a is not traced. */
static uint64_t tr_remove(uintptr_t a)
{
    if (!tr_cap) return 0;
    size_t j = tr_hash(a, tr_cap);
    while (tr_tab[j].key != TR_EMPTY) {
        if (tr_tab[j].key == a) {
            uint64_t id = tr_tab[j].id;
            tr_tab[j].key = TR_TOMB;
            if (tr_nfree == tr_free_cap) {
                size_t ncap = tr_free_cap ? tr_free_cap * 2 : 4096;
                uint64_t *f = tr_map(ncap * sizeof *f);
                if (!f) return id; /* id not reused: still correct, only larger ids */
                if (tr_free_ids) {
                    memcpy(f, tr_free_ids, tr_nfree * sizeof *f);
                    munmap(tr_free_ids, tr_free_cap * sizeof *f);
                }
                tr_free_ids = f;
                tr_free_cap = ncap;
            }
            tr_free_ids[tr_nfree++] = id;
            return id;
        }
        j = (j + 1) & (tr_cap - 1);
    }
    return 0;
}

/* ---- output ---- */
static void tr_write_all(const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(tr_fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { /* disk full or similar: stop recording, keep the program running */
            atomic_store(&tr_state, TR_FORWARD);
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void tr_flush(void)
{
    if (tr_len) tr_write_all(tr_buf, tr_len);
    tr_len = 0;
}

/* Append r (lock held, recording). Can't fail (a write error stops the recording). */
static void tr_emit(al_trace_rec *r)
{
    if (!tr_tid) {
        tr_tid = atomic_fetch_add(&tr_next_tid, 1) + 1;
        tr_counts[AL_TRACE_C_THREADS]++;
    }
    r->tid = tr_tid;
    if (tr_len + 64 > sizeof tr_buf) tr_flush();
    tr_len = (size_t)(al_trace_encode(tr_buf + tr_len, r) - tr_buf);
    tr_counts[AL_TRACE_C_RECORDS]++;
    switch (r->op) {
    case AL_TRACE_MALLOC: tr_counts[AL_TRACE_C_MALLOC]++; break;
    case AL_TRACE_CALLOC: tr_counts[AL_TRACE_C_CALLOC]++; break;
    case AL_TRACE_FREE: tr_counts[AL_TRACE_C_FREE]++; break;
    case AL_TRACE_REALLOC: tr_counts[AL_TRACE_C_REALLOC]++; break;
    default: tr_counts[AL_TRACE_C_ALIGNED]++; break;
    }
}

static void tr_atfork_prepare(void) { pthread_mutex_lock(&tr_lock); }
static void tr_atfork_parent(void) { pthread_mutex_unlock(&tr_lock); }
static void tr_atfork_child(void)
{
    if (atomic_load(&tr_state) == TR_RECORDING) atomic_store(&tr_state, TR_FORWARD);
    tr_len = 0; /* the parent writes these */
    pthread_mutex_unlock(&tr_lock);
}

/* First call (lock held): open the file named by ALLOCLAB_TRACE or forward for good. */
static void tr_init_locked(void)
{
    const char *path = getenv("ALLOCLAB_TRACE");
    int st = TR_FORWARD;
    if (path && *path) {
        tr_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (tr_fd >= 0) {
            unsigned char hdr[AL_TRACE_HDR_SIZE];
            al_trace_header(hdr, tr_counts);
            memcpy(tr_buf, hdr, sizeof hdr);
            tr_len = sizeof hdr;
            st = TR_RECORDING;
            unsetenv("ALLOCLAB_TRACE"); /* children must not truncate our file */
            pthread_atfork(tr_atfork_prepare, tr_atfork_parent, tr_atfork_child);
        }
    }
    atomic_store(&tr_state, st);
}

/* Lock and return 1 when this call must be recorded; 0 (no lock) to only forward. */
static inline int tr_enter(void)
{
    if (in_tracer) return 0;
    int st = atomic_load_explicit(&tr_state, memory_order_acquire);
    if (st == TR_FORWARD) return 0;
    in_tracer = 1;
    pthread_mutex_lock(&tr_lock);
    if (atomic_load(&tr_state) == TR_UNINIT) tr_init_locked();
    if (atomic_load(&tr_state) != TR_RECORDING) {
        pthread_mutex_unlock(&tr_lock);
        in_tracer = 0;
        return 0;
    }
    return 1;
}

static inline void tr_leave(void)
{
    pthread_mutex_unlock(&tr_lock);
    in_tracer = 0;
}

__attribute__((destructor)) static void tr_close(void)
{
    if (!tr_enter()) return;
    tr_flush();
    unsigned char hdr[AL_TRACE_HDR_SIZE];
    al_trace_header(hdr, tr_counts);
    if (atomic_load(&tr_state) == TR_RECORDING) {
        ssize_t w = pwrite(tr_fd, hdr, sizeof hdr, 0);
        (void)w;
    }
    close(tr_fd);
    atomic_store(&tr_state, TR_FORWARD);
    tr_leave();
}

/* Record an allocation result p (NULL: nothing happened, nothing recorded). */
static void tr_alloc_done(void *p, uint8_t op, size_t size, size_t align)
{
    if (!p || !tr_enter()) return;
    al_trace_rec r = {.op = op, .size = size, .align = align};
    r.id = tr_insert((uintptr_t)p);
    if (r.id) tr_emit(&r);
    tr_leave();
}

/* ---- the interposed API ---- */
TR_EXPORT void *malloc(size_t n)
{
    void *p = __libc_malloc(n);
    tr_alloc_done(p, AL_TRACE_MALLOC, n, 0);
    return p;
}

TR_EXPORT void *calloc(size_t n, size_t m)
{
    size_t total;
    if (__builtin_mul_overflow(n, m, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = __libc_calloc(n, m);
    tr_alloc_done(p, AL_TRACE_CALLOC, total, 0);
    return p;
}

TR_EXPORT void free(void *p)
{
    if (!p) return;
    if (tr_enter()) {
        uint64_t id = tr_remove((uintptr_t)p);
        if (id) {
            al_trace_rec r = {.op = AL_TRACE_FREE, .id = id};
            tr_emit(&r);
        } else {
            tr_counts[AL_TRACE_C_UNKNOWN]++;
        }
        tr_leave();
    }
    __libc_free(p);
}

TR_EXPORT void *realloc(void *p, size_t n)
{
    if (!tr_enter()) return __libc_realloc(p, n);
    void *q = __libc_realloc(p, n);
    if (!p) {
        if (q) {
            al_trace_rec r = {.op = AL_TRACE_REALLOC, .size = n, .old = 0};
            if ((r.id = tr_insert((uintptr_t)q))) tr_emit(&r);
        }
    } else if (q || n == 0) { /* n == 0 with NULL: glibc freed p */
        uint64_t old = tr_remove((uintptr_t)p);
        al_trace_rec r = {.op = q ? AL_TRACE_REALLOC : AL_TRACE_FREE, .size = n, .old = old};
        if (!q) {
            r.id = old;
            if (old) tr_emit(&r);
        } else if (old) {
            if ((r.id = tr_insert((uintptr_t)q))) tr_emit(&r);
        } else { /* an untraced block grew: from here on it is a new one */
            tr_counts[AL_TRACE_C_UNKNOWN]++;
            r.op = AL_TRACE_MALLOC;
            if ((r.id = tr_insert((uintptr_t)q))) tr_emit(&r);
        }
    } /* else: failed, p unchanged, nothing to record */
    tr_leave();
    return q;
}

static int tr_pow2(size_t a) { return a && !(a & (a - 1)); }

TR_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (!tr_pow2(align) || align % sizeof(void *)) return EINVAL;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    tr_alloc_done(p, AL_TRACE_ALIGNED, n, align);
    *out = p;
    return 0;
}

TR_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    if (!tr_pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    void *p = __libc_memalign(align, n);
    tr_alloc_done(p, AL_TRACE_ALIGNED, n, align);
    return p;
}

TR_EXPORT void *memalign(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (p) {
        /* glibc rounds a non-power-of-two alignment up; record what it really used */
        size_t a = 1;
        while (a < align && a < ((size_t)1 << 62)) a <<= 1;
        tr_alloc_done(p, AL_TRACE_ALIGNED, n, a < 16 ? 16 : a);
    }
    return p;
}

TR_EXPORT void *valloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    void *p = __libc_memalign(pg, n);
    tr_alloc_done(p, AL_TRACE_ALIGNED, n, pg);
    return p;
}

TR_EXPORT void *pvalloc(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), r;
    if (__builtin_add_overflow(n, pg - 1, &r)) {
        errno = ENOMEM;
        return NULL;
    }
    r &= ~(pg - 1);
    void *p = __libc_memalign(pg, r ? r : pg);
    tr_alloc_done(p, AL_TRACE_ALIGNED, r ? r : pg, pg);
    return p;
}
