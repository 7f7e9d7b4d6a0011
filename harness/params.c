/* params.c - see params.h. */
#include "params.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int al_parse_ll(const char *s, int bytes, long long *out)
{
    if (!*s || !(isdigit((unsigned char)*s))) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    unsigned long long mul = 1;
    if (bytes && *end) {
        switch (tolower((unsigned char)*end)) {
        case 'k': mul = 1ull << 10; break;
        case 'm': mul = 1ull << 20; break;
        case 'g': mul = 1ull << 30; break;
        default: return -1;
        }
        end++;
    }
    if (*end) return -1;
    if (v > (unsigned long long)LLONG_MAX / mul) return -1;
    *out = (long long)(v * mul);
    return 0;
}

int al_param_value(const al_param_def *pd, const char *tok, long long *out)
{
    if (pd->choices) {
        const char *c = pd->choices;
        for (long long idx = 0; c; idx++) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (strlen(tok) == len && strncmp(tok, c, len) == 0) {
                *out = idx;
                return 0;
            }
            c = bar ? bar + 1 : NULL;
        }
        return -1;
    }
    long long v;
    if (al_parse_ll(tok, pd->flags & AL_PARAM_BYTES, &v) || v < pd->min || v > pd->max) return -1;
    *out = v;
    return 0;
}

void al_usage_error(const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", who);
    vfprintf(stderr, fmt, ap);
    fputs(" (see alloclab --help)\n", stderr);
    va_end(ap);
    exit(2);
}

void al_param_text(const al_param_def *pd, long long v, char *out, size_t n)
{
    if (pd->choices) {
        const char *c = pd->choices;
        for (long long i = 0; i < v && c; i++) {
            c = strchr(c, '|');
            if (c) c++;
        }
        size_t len = c ? strcspn(c, "|") : 0;
        snprintf(out, n, "%.*s", (int)len, c ? c : "?");
    } else {
        snprintf(out, n, "%lld", v);
    }
}
