/* params.h - the command line's numbers, workload parameter values and usage errors, shared
 * by the main run (main.c) and `alloclab interleave` (interleave.c). */
#ifndef ALLOCLAB_PARAMS_H
#define ALLOCLAB_PARAMS_H

#include "workload.h"

/* Parse a whole non-negative integer with an optional k/m/g (x1024) suffix when bytes.
 * Returns 0 and *out, or -1 when s is not entirely such a number or overflows. */
int al_parse_ll(const char *s, int bytes, long long *out);

/* One value of parameter pd: a choice's name (its index) or a number in [min, max] (with a
 * k/m/g suffix for a size). Returns 0 and *out, or -1 when tok is not such a value. */
int al_param_value(const al_param_def *pd, const char *tok, long long *out);

/* Value v of parameter pd as text: a choice's name, else the number. Can't fail. */
void al_param_text(const al_param_def *pd, long long v, char *out, size_t n);

/* Bad input: "<who>: <message> (see alloclab --help)" on stderr, exit status 2. */
void al_usage_error(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
