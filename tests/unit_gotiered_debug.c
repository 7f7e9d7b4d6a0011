/* unit_gotiered_debug.c - gotiered built with -DGOTIERED_DEBUG (a unity build of the backend's
 * sources into this test, so the library itself stays the release configuration): double free,
 * foreign pointers and wrong size hints abort naming the pointer; normal use stays quiet. */
#define GOTIERED_DEBUG 1
#include "gotiered/fixalloc.c"
#include "gotiered/gotiered.c"
#include "gotiered/mcache.c"
#include "gotiered/mcentral.c"
#include "gotiered/mheap.c"
#include "gotiered/pagealloc.c"
#include "gotiered/scavenger.c"
#include "gotiered/sizeclasses.c"
#include "gotiered/tiny.c"

#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static const al_backend *const B = &al_backend_gotiered;

static void *mk(const char *opts)
{
    char err[256] = "";
    void *h = B->create(opts, err, sizeof err);
    cr_assert(h, "create: %s", err);
    return h;
}

Test(gotiered_debug, normal_use_is_quiet)
{
    const char *modes[] = {"free=sweep", "free=reuse", "tiny=off"};
    for (int m = 0; m < 3; m++) {
        void *h = mk(modes[m]);
        void *v[512] = {0};
        size_t len[512] = {0};
        unsigned s = 5;
        for (int i = 0; i < 20000; i++) {
            s = s * 1103515245u + 12345u;
            int k = (int)((s >> 8) % 512);
            if (v[k]) {
                B->free(h, v[k], (s & 1) ? len[k] : 0);
                v[k] = NULL;
            } else {
                len[k] = (s >> 12) % 64 == 0 ? 50000 : (s >> 12) % 300;
                v[k] = B->alloc(h, len[k]);
            }
        }
        char msg[256];
        cr_assert_eq(B->check(h, msg, sizeof msg), 0, "%s", msg);
        for (int k = 0; k < 512; k++) B->free(h, v[k], len[k]);
        B->destroy(h);
    }
}

/* Run fn in a child; it must die of SIGABRT after printing a message that names a pointer.
 * (Done by hand rather than with Criterion's .signal so the TSan runner checks it too.) */
static void expect_abort(void (*fn)(void), const char *what)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        fn();
        _exit(0); /* reaching here means no abort */
    }
    close(fd[1]);
    char buf[512] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "%s: child did not abort (status %#x)",
              what, st);
    cr_expect(strstr(buf, "gotiered: ") && strstr(buf, "pointer 0x"),
              "%s: message should name the pointer, got: %s", what, buf);
}

static void double_free_small_aborts_body(void)
{
    void *h = mk(NULL);
    void *p = B->alloc(h, 100);
    B->free(h, p, 100);
    B->free(h, p, 100);
}

Test(gotiered_debug, double_free_small_aborts) { expect_abort(double_free_small_aborts_body, "double_free_small_aborts"); }

static void double_free_reuse_mode_aborts_body(void)
{
    void *h = mk("free=reuse");
    void *p = B->alloc(h, 64);
    B->free(h, p, 0);
    B->free(h, p, 0);
}

Test(gotiered_debug, double_free_reuse_mode_aborts) { expect_abort(double_free_reuse_mode_aborts_body, "double_free_reuse_mode_aborts"); }

static void double_free_large_aborts_body(void)
{
    void *h = mk(NULL);
    void *keep = B->alloc(h, 200000); /* keeps the arena mapped */
    void *p = B->alloc(h, 100000);
    B->free(h, p, 0);
    B->free(h, p, 0);
    (void)keep;
}

Test(gotiered_debug, double_free_large_aborts) { expect_abort(double_free_large_aborts_body, "double_free_large_aborts"); }

static void foreign_pointer_aborts_body(void)
{
    void *h = mk(NULL);
    static char not_ours[64];
    B->free(h, B->alloc(h, 10), 10);
    B->free(h, not_ours, 0);
}

Test(gotiered_debug, foreign_pointer_aborts) { expect_abort(foreign_pointer_aborts_body, "foreign_pointer_aborts"); }

static void pointer_of_another_heap_aborts_body(void)
{
    void *h1 = mk(NULL), *h2 = mk(NULL);
    void *p = B->alloc(h1, 48);
    B->free(h2, p, 48);
}

Test(gotiered_debug, pointer_of_another_heap_aborts) { expect_abort(pointer_of_another_heap_aborts_body, "pointer_of_another_heap_aborts"); }

static void interior_pointer_aborts_body(void)
{
    void *h = mk(NULL);
    char *p = B->alloc(h, 256);
    B->free(h, p + 16, 0);
}

Test(gotiered_debug, interior_pointer_aborts) { expect_abort(interior_pointer_aborts_body, "interior_pointer_aborts"); }

static void wrong_size_hint_aborts_body(void)
{
    void *h = mk(NULL);
    void *p = B->alloc(h, 100);
    B->free(h, p, 5000);
}

Test(gotiered_debug, wrong_size_hint_aborts) { expect_abort(wrong_size_hint_aborts_body, "wrong_size_hint_aborts"); }

static void tiny_double_free_aborts_body(void)
{
    void *h = mk(NULL);
    void *p = B->alloc(h, 4);
    void *q = B->alloc(h, 12); /* does not fit: a second block, p's stays current */
    B->free(h, q, 12);
    B->free(h, q, 12);
    (void)p;
}

Test(gotiered_debug, tiny_double_free_aborts) { expect_abort(tiny_double_free_aborts_body, "tiny_double_free_aborts"); }
