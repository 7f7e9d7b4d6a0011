/* trace_format.h - the allocation-trace file format, written by preload/trace.c
 * (liballoclab-trace.so), read by workloads/replay.c and tools/tracedump.c. Prefix al_trace_.
 *
 * File = header (AL_TRACE_HDR_SIZE bytes, little-endian) + records until end of file.
 *   header: magic "ALTRACE\0" | u32 version (1) | u32 header size (128) | u64 counts[AL_TRACE_N]
 *           (the counts are written when the recorder closes the file; a file whose `records`
 *           count is 0 was not closed cleanly and is read to its end all the same).
 *   record: u8 op, then unsigned LEB128 varints:
 *     MALLOC  tid size id          (malloc)
 *     CALLOC  tid size id          (calloc: size = n * m, already overflow-checked)
 *     FREE    tid id               (free of a traced block; free(NULL) is not recorded)
 *     REALLOC tid old size id      (old 0 = realloc(NULL, size); realloc(p, 0) that frees is a
 *                                   FREE record)
 *     ALIGNED tid align size id    (posix_memalign, aligned_alloc, memalign, valloc, pvalloc)
 * tid: small thread number (1, 2, ... in order of a thread's first allocation).
 * id:  small number naming a live block; ids are recycled when blocks are freed, so the largest
 *      id (counts[AL_TRACE_MAX_ID]) is about the peak number of live blocks. id 0 is NULL.
 * Invariant: every FREE/REALLOC old id was made live by an earlier record and not freed since.
 */
#ifndef ALLOCLAB_TRACE_FORMAT_H
#define ALLOCLAB_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AL_TRACE_MAGIC "ALTRACE"  /* 8 bytes with its NUL */
#define AL_TRACE_VERSION 1u
#define AL_TRACE_HDR_SIZE 128u

enum { AL_TRACE_MALLOC = 1, AL_TRACE_CALLOC, AL_TRACE_FREE, AL_TRACE_REALLOC, AL_TRACE_ALIGNED,
       AL_TRACE_OP_END };

/* Header counts (u64 each, after magic, version and header size). */
#define AL_TRACE_COUNTS(X)                                                  \
    X(RECORDS, "records", "records in the file")                            \
    X(MALLOC, "malloc", "malloc records")                                   \
    X(CALLOC, "calloc", "calloc records")                                   \
    X(FREE, "free", "free records")                                         \
    X(REALLOC, "realloc", "realloc records")                                \
    X(ALIGNED, "aligned", "aligned-allocation records")                     \
    X(MAX_ID, "max_id", "largest block id used")                            \
    X(THREADS, "threads", "threads that allocated")                         \
    X(UNKNOWN, "unknown", "frees/reallocs of blocks the recorder never saw (not recorded)")

enum {
#define AL_TRACE_X(n, s, d) AL_TRACE_C_##n,
    AL_TRACE_COUNTS(AL_TRACE_X)
#undef AL_TRACE_X
    AL_TRACE_N
};

typedef struct al_trace_rec {
    uint8_t op;
    uint32_t tid;
    uint64_t size, align, id, old;
} al_trace_rec;

/* Appends v as LEB128 to p; returns the new end. Can't fail (p has 10 bytes of room). */
static inline unsigned char *al_trace_put(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* Reads a LEB128 at *p (< end). Returns 0, or -1 when truncated or longer than 64 bits. */
static inline int al_trace_get(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        unsigned char c = *(*p)++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Encodes r at p (room: 1 + 5 * 10 bytes). Returns the new end. Can't fail. */
static inline unsigned char *al_trace_encode(unsigned char *p, const al_trace_rec *r)
{
    *p++ = r->op;
    p = al_trace_put(p, r->tid);
    switch (r->op) {
    case AL_TRACE_FREE: return al_trace_put(p, r->id);
    case AL_TRACE_REALLOC: p = al_trace_put(p, r->old); break;
    case AL_TRACE_ALIGNED: p = al_trace_put(p, r->align); break;
    default: break;
    }
    p = al_trace_put(p, r->size);
    return al_trace_put(p, r->id);
}

/* Decodes one record at *p. Returns 1 with *r filled, 0 at the end (*p == end), -1 when the
 * record is malformed or truncated (*p then points at it). */
static inline int al_trace_decode(const unsigned char **p, const unsigned char *end,
                                  al_trace_rec *r)
{
    const unsigned char *q = *p;
    if (q >= end) return 0;
    uint64_t tid = 0;
    memset(r, 0, sizeof *r);
    r->op = *q++;
    if (r->op < AL_TRACE_MALLOC || r->op >= AL_TRACE_OP_END) return -1;
    if (al_trace_get(&q, end, &tid) || tid > UINT32_MAX) return -1;
    r->tid = (uint32_t)tid;
    if (r->op == AL_TRACE_FREE) {
        if (al_trace_get(&q, end, &r->id)) return -1;
    } else {
        if (r->op == AL_TRACE_REALLOC && al_trace_get(&q, end, &r->old)) return -1;
        if (r->op == AL_TRACE_ALIGNED && al_trace_get(&q, end, &r->align)) return -1;
        if (al_trace_get(&q, end, &r->size) || al_trace_get(&q, end, &r->id)) return -1;
    }
    *p = q;
    return 1;
}

/* Header <-> bytes. */
static inline void al_trace_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t al_trace_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Fills hdr[AL_TRACE_HDR_SIZE] from counts. Can't fail. */
static inline void al_trace_header(unsigned char *hdr, const uint64_t *counts)
{
    memset(hdr, 0, AL_TRACE_HDR_SIZE);
    memcpy(hdr, AL_TRACE_MAGIC, 8);
    al_trace_put64(hdr + 8, AL_TRACE_VERSION | ((uint64_t)AL_TRACE_HDR_SIZE << 32));
    for (int i = 0; i < AL_TRACE_N; i++) al_trace_put64(hdr + 16 + 8 * i, counts[i]);
}

/* Checks hdr (len bytes) and reads its counts. Returns 0, or -1 (not a trace / other
 * version). */
static inline int al_trace_parse_header(const unsigned char *hdr, size_t len, uint64_t *counts)
{
    if (len < AL_TRACE_HDR_SIZE || memcmp(hdr, AL_TRACE_MAGIC, 8) != 0) return -1;
    uint64_t vh = al_trace_get64(hdr + 8);
    if ((uint32_t)vh != AL_TRACE_VERSION || (vh >> 32) != AL_TRACE_HDR_SIZE) return -1;
    for (int i = 0; i < AL_TRACE_N; i++) counts[i] = al_trace_get64(hdr + 16 + 8 * i);
    return 0;
}

#endif
