/* crt_runner.c - the runner behind tests/compat/criterion/criterion.h (TSan build only; see
 * that header for why). Each test, and each parameter of a parameterised test, runs in a
 * forked child; the parent collects pass / fail / skip / crash and prints Criterion's
 * synthesis line. Exit status 0 only when nothing failed or crashed. */
#include "criterion/criterion.h"

#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { RC_PASS = 0, RC_FAIL = 1, RC_SKIP = 77 };

static al_crt_test *tests;
static const char *cur_suite = "", *cur_name = "";
static int expect_failed;

void al_crt_register(al_crt_test *t)
{
    t->next = tests;
    tests = t;
}

void al_crt_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[----] %s:%d: Assertion Failed\n[----]   %s\n", file, line,
            *msg ? msg : expr);
    fflush(stderr);
    if (fatal) _exit(RC_FAIL);
    expect_failed = 1;
}

void al_crt_skip(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[SKIP] %s::%s: %s\n", cur_suite, cur_name, msg);
    fflush(stderr);
    _exit(RC_SKIP);
}

void al_crt_log(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s] ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Run one instance in a child; returns RC_* or 128+signal. */
static int run_one(al_crt_test *t, void *param)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return RC_FAIL;
    if (pid == 0) {
        cur_suite = t->suite;
        cur_name = t->name;
        if (t->opts.timeout > 0) alarm((unsigned)t->opts.timeout + 1);
        if (t->opts.init) t->opts.init();
        t->fn(param);
        if (t->opts.fini) t->opts.fini();
        fflush(NULL);
        _exit(expect_failed ? RC_FAIL : RC_PASS);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {}
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    const char *filter = NULL;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--filter=", 9) == 0) filter = argv[i] + 9;
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "--verbose") == 0) verbose = 1;
        else if (strcmp(argv[i], "--jobs") == 0 || strcmp(argv[i], "-j") == 0) i++;
    }
    /* registration order is reversed by the constructors: put it back */
    al_crt_test *rev = NULL;
    while (tests) {
        al_crt_test *n = tests->next;
        tests->next = rev;
        rev = tests;
        tests = n;
    }
    int tested = 0, passing = 0, failing = 0, crashing = 0;
    for (al_crt_test *t = rev; t; t = t->next) {
        char full[512];
        snprintf(full, sizeof full, "%s/%s", t->suite, t->name);
        if (t->opts.disabled || (filter && fnmatch(filter, full, 0) != 0)) continue;
        struct criterion_test_params ps = {0, NULL, 1, NULL};
        if (t->params) ps = t->params();
        for (size_t k = 0; k < ps.length; k++) {
            void *param = t->params ? (char *)ps.params + k * ps.size : NULL;
            int rc = run_one(t, param);
            if (rc == RC_SKIP) continue;
            tested++;
            if (rc == RC_PASS) {
                passing++;
                if (verbose) fprintf(stderr, "[PASS] %s::%s\n", t->suite, t->name);
            } else if (rc > 128) {
                crashing++;
                failing++;
                fprintf(stderr, "[FAIL] %s::%s: CRASH! (signal %d: %s)\n", t->suite, t->name,
                        rc - 128, strsignal(rc - 128));
            } else {
                failing++;
                fprintf(stderr, "[FAIL] %s::%s\n", t->suite, t->name);
            }
        }
        if (ps.cleanup) ps.cleanup(&ps);
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Crashing: %d \n",
            tested, passing, failing, crashing);
    return failing ? 1 : 0;
}
