/* gbshim.h - a C API over Google Benchmark (libbenchmark), so the harness stays C while
 * --benchmark_filter/_repetitions/_format/_out and compare.py work as their users expect.
 * Implemented in gbshim.cc, the project's only C++ file. */
#ifndef ALLOCLAB_GBSHIM_H
#define ALLOCLAB_GBSHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_gb_state al_gb_state;
typedef void (*al_gb_fn)(al_gb_state *st, void *arg);

enum { AL_GB_PLAIN = 0, AL_GB_BYTES = 1 /* shown with 1024-based prefixes */ };

/* benchmark::Initialize: consumes --benchmark_* flags from argv. Can't fail. */
void al_gb_initialize(int *argc, char **argv);
/* Returns 1 (after printing them) when argv still holds flags nobody recognised. */
int al_gb_unrecognized(int argc, char **argv);
/* Register one case: run once per repetition (Iterations(1)), manual time, milliseconds,
 * with median/min/max/cv aggregates. `name` is copied. */
void al_gb_register(const char *name, al_gb_fn fn, void *arg);
int al_gb_keep_running(al_gb_state *st);
void al_gb_set_iteration_time(al_gb_state *st, double seconds);
void al_gb_skip_with_error(al_gb_state *st, const char *msg);
void al_gb_counter(al_gb_state *st, const char *name, double value, int flags);
void al_gb_set_label(al_gb_state *st, const char *label);
void al_gb_add_context(const char *key, const char *value);
/* Run what --benchmark_filter selects; returns the number of cases run. */
size_t al_gb_run(void);
void al_gb_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif
