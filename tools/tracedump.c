/* tracedump.c - print an alloclab allocation trace (workloads/trace_format.h).
 *   tracedump FILE            header counts, plus counts and size statistics decoded from
 *                             the records (they must agree with the header)
 *   tracedump --records FILE  also one line per record: index tid op size align id old
 * Exit status: 0, 1 when the file is malformed or its counts disagree, 2 on a usage error. */
#include "trace_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {"?", "malloc", "calloc", "free", "realloc", "aligned"};
static const char *const count_names[] = {
#define AL_TRACE_X(n, s, d) s,
    AL_TRACE_COUNTS(AL_TRACE_X)
#undef AL_TRACE_X
};

int main(int argc, char **argv)
{
    int records = argc == 3 && strcmp(argv[1], "--records") == 0;
    if (argc != 2 + records || argv[1 + records][0] == '-') {
        fprintf(stderr, "usage: tracedump [--records] FILE\n");
        return 2;
    }
    const char *path = argv[1 + records];
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    size_t cap = 1 << 20, len = 0, r;
    unsigned char *buf = malloc(cap);
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            unsigned char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    uint64_t hdr[AL_TRACE_N], seen[AL_TRACE_N] = {0};
    if (!buf || al_trace_parse_header(buf, len, hdr)) {
        fprintf(stderr, "%s: not an alloclab trace v%u\n", path, AL_TRACE_VERSION);
        return 1;
    }
    const unsigned char *p = buf + AL_TRACE_HDR_SIZE, *end = buf + len;
    al_trace_rec rec;
    int d;
    uint64_t bytes = 0, maxsize = 0, maxtid = 0;
    while ((d = al_trace_decode(&p, end, &rec)) == 1) {
        if (records)
            printf("%llu %u %s %llu %llu %llu %llu\n", (unsigned long long)seen[0], rec.tid,
                   op_names[rec.op], (unsigned long long)rec.size, (unsigned long long)rec.align,
                   (unsigned long long)rec.id, (unsigned long long)rec.old);
        seen[AL_TRACE_C_RECORDS]++;
        seen[AL_TRACE_C_MALLOC + rec.op - AL_TRACE_MALLOC]++;
        if (rec.id > seen[AL_TRACE_C_MAX_ID]) seen[AL_TRACE_C_MAX_ID] = rec.id;
        if (rec.tid > maxtid) maxtid = rec.tid;
        if (rec.op != AL_TRACE_FREE) {
            bytes += rec.size;
            if (rec.size > maxsize) maxsize = rec.size;
        }
    }
    seen[AL_TRACE_C_THREADS] = maxtid;
    seen[AL_TRACE_C_UNKNOWN] = hdr[AL_TRACE_C_UNKNOWN];
    int bad = d < 0;
    if (bad) fprintf(stderr, "%s: malformed record at byte %zu\n", path, (size_t)(p - buf));
    printf("file %s: %zu bytes, version %u\n", path, len, AL_TRACE_VERSION);
    for (int i = 0; i < AL_TRACE_N; i++) {
        int differ = hdr[AL_TRACE_C_RECORDS] && hdr[i] != seen[i];
        printf("%-8s header %10llu  decoded %10llu%s\n", count_names[i],
               (unsigned long long)hdr[i], (unsigned long long)seen[i],
               differ ? "  MISMATCH" : "");
        bad |= differ;
    }
    printf("bytes requested %llu, largest request %llu\n", (unsigned long long)bytes,
           (unsigned long long)maxsize);
    free(buf);
    return bad;
}
