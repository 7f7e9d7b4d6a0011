/* unit_replay.c - the trace recorder (build/liballoclab-trace.so) and the `replay` workload:
 * a program recorded under the recorder replays through backends with exactly the recorded
 * number of operations; the header counts agree with the records; malformed traces fail the
 * case with a reason. The recorder library is found at $ALLOCLAB_TRACE_SO or
 * build/liballoclab-trace.so (make builds it before this test). */
#include "allocator.h"
#include "trace_format.h"
#include "workload.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *recorder(void)
{
    const char *so = getenv("ALLOCLAB_TRACE_SO");
    if (!so) so = "build/liballoclab-trace.so";
    cr_assert_eq(access(so, R_OK), 0, "%s not built (make build/liballoclab-trace.so)", so);
    return so;
}

/* Counts decoded from the records of path, checked against its header; returns the header's
 * record count. */
static uint64_t decode_counts(const char *path, uint64_t *hdr)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "no trace %s", path);
    static unsigned char buf[8 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    cr_assert(feof(f), "trace %s larger than the test buffer", path);
    fclose(f);
    cr_assert_eq(al_trace_parse_header(buf, len, hdr), 0, "%s: bad header", path);
    uint64_t seen[AL_TRACE_N] = {0};
    const unsigned char *p = buf + AL_TRACE_HDR_SIZE;
    al_trace_rec r;
    int d;
    while ((d = al_trace_decode(&p, buf + len, &r)) == 1) {
        seen[AL_TRACE_C_RECORDS]++;
        seen[AL_TRACE_C_MALLOC + r.op - AL_TRACE_MALLOC]++;
    }
    cr_assert_eq(d, 0, "%s: malformed record", path);
    for (int i = AL_TRACE_C_RECORDS; i <= AL_TRACE_C_ALIGNED; i++)
        cr_assert_eq(seen[i], hdr[i], "%s: count %d: header %llu, records %llu", path, i,
                     (unsigned long long)hdr[i], (unsigned long long)seen[i]);
    return hdr[AL_TRACE_C_RECORDS];
}

/* Replays path through backend `name`; returns ctx.ops, or -1 if the backend cannot be
 * created here (e.g. jemalloc without its preload). */
static long long replay_with(const char *name, const char *path, long long repeat, int expect_ok,
                             char *err_out)
{
    const al_backend *b = al_backend_find(name);
    const al_workload *w = al_workload_find("replay");
    cr_assert(b && w);
    char err[256];
    void *heap = b->create(NULL, err, sizeof err);
    if (!heap) return -1;
    al_wl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.b = b;
    ctx.heap = heap;
    ctx.threads = 1;
    ctx.seed = 1;
    ctx.p[al_workload_param(w, "repeat")] = repeat;
    setenv("ALLOCLAB_REPLAY_TRACE", path, 1);
    int rc = w->run(&ctx);
    unsetenv("ALLOCLAB_REPLAY_TRACE");
    if (expect_ok) {
        cr_assert_eq(rc, 0, "%s: replay failed: %s", name, ctx.err);
        cr_assert_gt(ctx.peak_live, 0);
    } else {
        cr_assert_eq(rc, -1, "%s: a bad trace replayed", name);
        strcpy(err_out, ctx.err);
    }
    b->destroy(heap);
    return (long long)ctx.ops;
}

static void run_recorded(char *const argv[], const char *trace, const char *in, const char *out)
{
    char pre[512], tr[512];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", recorder());
    snprintf(tr, sizeof tr, "ALLOCLAB_TRACE=%s", trace);
    char *envp[] = {pre, tr, "LC_ALL=C", "PATH=/usr/bin:/bin", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, argv, envp), 0, "spawn %s", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s under the recorder failed", argv[0]);
}

Test(replay, round_trip_sort)
{
    char dir[] = "/tmp/alloclab-replay-XXXXXX";
    cr_assert(mkdtemp(dir));
    char in[128], out[128], trace[128];
    snprintf(in, sizeof in, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(trace, sizeof trace, "%s/sort.trace", dir);
    FILE *f = fopen(in, "w");
    for (int i = 0; i < 20000; i++) fprintf(f, "line %d %x\n", (i * 7919) % 20000, i * 2654435761u);
    fclose(f);
    char *argv[] = {"/usr/bin/sort", "-S", "1M", NULL};
    run_recorded(argv, trace, in, out);
    uint64_t hdr[AL_TRACE_N];
    uint64_t n = decode_counts(trace, hdr);
    cr_assert_gt(hdr[AL_TRACE_C_MALLOC], 10, "sort made only %llu mallocs?",
                 (unsigned long long)hdr[AL_TRACE_C_MALLOC]);
    cr_assert_gt(hdr[AL_TRACE_C_FREE], 0);
    /* the recorded program's output is right */
    f = fopen(out, "r");
    char prev[64] = "", line[64];
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert_leq(strcmp(prev, line), 0, "sort output out of order");
        strcpy(prev, line);
        lines++;
    }
    fclose(f);
    cr_assert_eq(lines, 20000);
    cr_assert_eq(replay_with("libc", trace, 1, 1, NULL), (long long)n);
    cr_assert_eq(replay_with("bump", trace, 2, 1, NULL), (long long)(2 * n));
    unlink(in);
    unlink(out);
    unlink(trace);
    rmdir(dir);
}

Test(replay, committed_trace_every_backend)
{
    uint64_t hdr[AL_TRACE_N];
    uint64_t n = decode_counts("tests/data/small.trace", hdr);
    cr_assert_gt(n, 10000);
    int ran = 0;
    for (int i = 0; i < al_backend_count(); i++) {
        const al_backend *b = al_backend_at(i);
        long long ops = replay_with(b->name, "tests/data/small.trace", 1, 1, NULL);
        if (ops < 0) continue; /* not creatable here (jemalloc without its preload) */
        cr_assert_eq(ops, (long long)n, "%s replayed %lld ops, trace has %llu", b->name, ops,
                     (unsigned long long)n);
        ran++;
    }
    cr_assert_geq(ran, 2);
}

static void write_trace(const char *path, const al_trace_rec *recs, int n, int truncate_last)
{
    uint64_t counts[AL_TRACE_N] = {0};
    unsigned char buf[4096], *p = buf + AL_TRACE_HDR_SIZE;
    for (int i = 0; i < n; i++) p = al_trace_encode(p, &recs[i]);
    counts[AL_TRACE_C_RECORDS] = (uint64_t)n;
    al_trace_header(buf, counts);
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, (size_t)(p - buf) - (truncate_last ? 1 : 0), f);
    fclose(f);
}

Test(replay, malformed_traces_fail_with_a_reason)
{
    char path[] = "/tmp/alloclab-bad-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    char err[256];
    /* free of an id that is not live */
    al_trace_rec dead[] = {{AL_TRACE_MALLOC, 1, 10, 0, 1, 0}, {AL_TRACE_FREE, 1, 0, 0, 2, 0}};
    write_trace(path, dead, 2, 0);
    replay_with("libc", path, 1, 0, err);
    cr_assert(strstr(err, "malformed record 1"), "err \"%s\"", err);
    /* truncated record */
    al_trace_rec ok[] = {{AL_TRACE_MALLOC, 1, 300, 0, 1, 0}, {AL_TRACE_FREE, 1, 0, 0, 1, 0}};
    write_trace(path, ok, 2, 1);
    replay_with("libc", path, 1, 0, err);
    cr_assert(strstr(err, "malformed"), "err \"%s\"", err);
    /* the same trace whole replays: 2 ops, aligned and realloc too */
    al_trace_rec more[] = {{AL_TRACE_MALLOC, 1, 300, 0, 1, 0},
                           {AL_TRACE_ALIGNED, 1, 100, 4096, 2, 0},
                           {AL_TRACE_REALLOC, 1, 5000, 0, 3, 1},
                           {AL_TRACE_REALLOC, 1, 50, 0, 1, 2},
                           {AL_TRACE_FREE, 1, 0, 0, 3, 0}};
    write_trace(path, more, 5, 0);
    cr_assert_eq(replay_with("libc", path, 1, 1, NULL), 5);
    cr_assert_eq(replay_with("bump", path, 3, 1, NULL), 15);
    /* not a trace */
    FILE *f = fopen(path, "w");
    fputs("hello", f);
    fclose(f);
    replay_with("libc", path, 1, 0, err);
    cr_assert(strstr(err, "not an alloclab trace"), "err \"%s\"", err);
    unlink(path);
}

/* A broken backend: every allocation gets the same buffer, so blocks overlap. */
static unsigned char same_buf[1 << 20];
static void *same_create(const char *o, char *e, size_t n) { (void)o; (void)e; (void)n; return same_buf; }
static void same_destroy(void *h) { (void)h; }
static void *same_alloc(void *h, size_t n) { (void)h; return n <= sizeof same_buf ? same_buf : NULL; }
static void same_free(void *h, void *p, size_t n) { (void)h; (void)p; (void)n; }

Test(replay, overlapping_blocks_are_caught)
{
    const al_backend bad = {.abi = AL_ABI_VERSION, .name = "same", .create = same_create,
                            .destroy = same_destroy, .alloc = same_alloc, .free = same_free};
    const al_workload *w = al_workload_find("replay");
    al_wl_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.b = &bad;
    ctx.heap = same_buf;
    ctx.p[0] = 1;
    setenv("ALLOCLAB_REPLAY_TRACE", "tests/data/small.trace", 1);
    cr_assert_eq(w->run(&ctx), -1, "a backend handing out one buffer replayed cleanly");
    unsetenv("ALLOCLAB_REPLAY_TRACE");
    cr_assert(strstr(ctx.err, "data corrupted"), "err \"%s\"", ctx.err);
}
