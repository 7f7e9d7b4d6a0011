/* tests/compat/criterion/criterion.h - a small stand-in for Criterion, used ONLY by the
 * ThreadSanitizer build of the tests.
 *
 * Why: Criterion cannot start under ThreadSanitizer (it aborts with "Could not initialize
 * inheritable arena: Resource temporarily unavailable": Snaipe/Criterion issue #274, open).
 * The TSan variant is built with -Itests/compat, so the very same test sources compile against
 * this header instead and run under this runner. It implements the subset of Criterion the
 * project uses: Test, TestSuite, ParameterizedTest(Parameters), cr_make_param_array, the
 * cr_assert_* / cr_expect_* families, cr_skip_test, cr_log_*; options .init .fini .timeout
 * .disabled .description. Like Criterion, each test (each parameter) runs in its own forked
 * process, so a crash is reported as that test's failure; the last line is Criterion's
 * "[====] Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N". Flags: --filter GLOB
 * (on "suite/name"), --verbose; Criterion's other flags are accepted and ignored.
 */
#ifndef ALLOCLAB_CRITERION_COMPAT_H
#define ALLOCLAB_CRITERION_COMPAT_H

#include <math.h>
#include <stddef.h>
#include <string.h>

struct criterion_test_params {
    size_t size;
    void *params;
    size_t length;
    void (*cleanup)(struct criterion_test_params *);
};

struct al_crt_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int disabled;
    const char *description;
    int signal;
    int exit_code;
};

typedef struct al_crt_test {
    const char *suite, *name, *file;
    void (*fn)(void *param);
    struct criterion_test_params (*params)(void);
    struct al_crt_opts opts;
    struct al_crt_test *next;
} al_crt_test;

void al_crt_register(al_crt_test *t);
void al_crt_fail(int fatal, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void al_crt_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void al_crt_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define AL_CRT_DEFINE(suite, name, wrapfn, paramsfn, ...)                                   \
    static al_crt_test suite##_##name##_crt = {#suite, #name, __FILE__, wrapfn, paramsfn,    \
                                               {__VA_ARGS__}, NULL};                         \
    __attribute__((constructor)) static void suite##_##name##_crt_reg(void)                 \
    {                                                                                        \
        al_crt_register(&suite##_##name##_crt);                                              \
    }

#define Test(suite, name, ...)                                                               \
    static void suite##_##name##_impl(void);                                                 \
    static void suite##_##name##_wrap(void *p)                                               \
    {                                                                                        \
        (void)p;                                                                             \
        suite##_##name##_impl();                                                             \
    }                                                                                        \
    AL_CRT_DEFINE(suite, name, suite##_##name##_wrap, NULL, __VA_ARGS__)                     \
    static void suite##_##name##_impl(void)

#define TestSuite(suite, ...) static const int suite##_crt_suite __attribute__((unused)) = 0

#define cr_make_param_array(Type, arr, len, ...)                                             \
    ((struct criterion_test_params){sizeof(Type), (void *)(arr), (len), NULL})

#define ParameterizedTestParameters(suite, name)                                             \
    static struct criterion_test_params suite##_##name##_params(void)

#define ParameterizedTest(Param, suite, name, ...)                                           \
    static void suite##_##name##_impl(Param);                                                \
    static void suite##_##name##_wrap(void *p) { suite##_##name##_impl(p); }                 \
    AL_CRT_DEFINE(suite, name, suite##_##name##_wrap, suite##_##name##_params, __VA_ARGS__)  \
    static void suite##_##name##_impl(Param)

/* Assertions: the message (a string literal format with arguments) is optional. */
#define AL_CRT_CHECK(fatal, cond, text, ...)                                                 \
    do {                                                                                     \
        if (!(cond)) al_crt_fail(fatal, __FILE__, __LINE__, text, "" __VA_ARGS__);           \
    } while (0)

#define cr_assert(c, ...) AL_CRT_CHECK(1, c, #c, __VA_ARGS__)
#define cr_expect(c, ...) AL_CRT_CHECK(0, c, #c, __VA_ARGS__)
#define cr_assert_not(c, ...) AL_CRT_CHECK(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) AL_CRT_CHECK(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) al_crt_fail(1, __FILE__, __LINE__, "cr_assert_fail", "" __VA_ARGS__)
#define cr_fail(...) cr_assert_fail(__VA_ARGS__)

#define AL_CRT_CMP(fatal, a, op, b, ...) AL_CRT_CHECK(fatal, (a) op (b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) AL_CRT_CMP(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) AL_CRT_CMP(1, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) AL_CRT_CMP(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) AL_CRT_CMP(1, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) AL_CRT_CMP(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) AL_CRT_CMP(1, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) AL_CRT_CMP(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) AL_CRT_CMP(0, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) AL_CRT_CMP(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) AL_CRT_CMP(0, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) AL_CRT_CMP(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) AL_CRT_CMP(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) AL_CRT_CHECK(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) AL_CRT_CHECK(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) AL_CRT_CHECK(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) AL_CRT_CHECK(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) AL_CRT_CHECK(1, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_neq(a, b, ...) AL_CRT_CHECK(1, strcmp((a), (b)) != 0, #a " != " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) AL_CRT_CHECK(0, strcmp((a), (b)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...) AL_CRT_CHECK(1, memcmp((a), (b), (n)) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_float_eq(a, b, eps, ...) \
    AL_CRT_CHECK(1, fabs((double)(a) - (double)(b)) <= (eps), #a " ~= " #b, __VA_ARGS__)
#define cr_expect_float_eq(a, b, eps, ...) \
    AL_CRT_CHECK(0, fabs((double)(a) - (double)(b)) <= (eps), #a " ~= " #b, __VA_ARGS__)

#define cr_skip_test(...) al_crt_skip("" __VA_ARGS__)
#define cr_log_info(...) al_crt_log("INFO", __VA_ARGS__)
#define cr_log_warn(...) al_crt_log("WARN", __VA_ARGS__)
#define cr_log_error(...) al_crt_log("ERR ", __VA_ARGS__)

#endif
