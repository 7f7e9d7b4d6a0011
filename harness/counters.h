/* counters.h - what the CPU (PAPI), the allocator (PAPI SDE) and a cache simulator (callgrind)
 * count inside a case's measured region.
 *
 * Three sources, each reported per operation and named by its prefix:
 *   papi.*  hardware/native events read through PAPI around exactly the measured region, in
 *           the child; pauses (ctx->pause/resume) excluded. Events PAPI cannot count here (no
 *           PMU, as on most VMs) are reported ABSENT with the reason, never as 0.
 *   sde.*   the backend's own stats fields, registered as PAPI software-defined events
 *           (library = the backend's name in upper case, event = the stats field name, so
 *           sde:::GOTIERED::CentralRefills) with a callback that calls backend->stats(), and
 *           read through PAPI like any other event. Cumulative fields are DELTA events (counts
 *           inside the region, per op); level fields (Sys, HeapInuse...) are INSTANT events
 *           (the value at the end of the region, no per-op figure).
 *   sim.*   callgrind's cache simulation (--cachesim): the child runs under valgrind, counting
 *           only inside al_measured_region (and threads started from it); the parent parses
 *           the totals. Deterministic: same binary and input, same numbers on any machine.
 *
 * PAPI event sets hold events of one component only, so "the same event set" is in fact one
 * set per component (perf_event, sde, ...), started and stopped together.
 *
 * Parent side: al_ctr_parse (the --counters option), al_ctr_validate (resolve the names in a
 * probe child, exit-2-worthy errors), al_ctr_add_context, al_ctr_report (Google Benchmark
 * counters). Child side: al_ctr_child_init / start / pause / resume / stop. Runner side (the
 * cachesim re-exec): al_ctr_exec, al_ctr_cachesim_collect. The configuration reaches a
 * re-executed child through the environment (ALLOCLAB_COUNTERS, ALLOCLAB_CACHESIM).
 */
#ifndef ALLOCLAB_COUNTERS_H
#define ALLOCLAB_COUNTERS_H

#include "allocator.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AL_CTR_MAX 40

/* The simulated caches, fixed so the counts do not depend on the host: valgrind would take
 * them from the host's CPUID (on this VM: a 256 MiB direct-mapped "L3"). A common x86-64
 * shape: 32 KiB 8-way L1s, an 8 MiB 16-way last level, 64-byte lines. */
#define AL_CTR_SIM_I1 "32768,8,64"
#define AL_CTR_SIM_D1 "32768,8,64"
#define AL_CTR_SIM_LL "8388608,16,64"

enum { AL_CTR_SRC_PAPI = 1, AL_CTR_SRC_SDE = 2, AL_CTR_SRC_CACHESIM = 3 };

typedef struct al_ctr_value {
    char name[64];     /* "PAPI_L1_DCM", "sde:::BUMP::Sys", "Ir" */
    uint8_t source;    /* AL_CTR_SRC_* */
    uint8_t present;   /* 0: absent, reason says why; value is meaningless */
    uint8_t gauge;     /* a level at the end of the region, not a count inside it */
    int64_t value;
    char reason[200];
} al_ctr_value;

typedef struct al_ctr_result {
    int n;
    int multiplexed;   /* some event set was multiplexed (values are estimates) */
    char note[200];    /* child-wide problem (PAPI could not start), else "" */
    al_ctr_value v[AL_CTR_MAX];
} al_ctr_result;

/* ---- parent ---- */

/* The --counters=LIST option: "default", "none", "sde", or comma-separated PAPI event names
 * (an entry "A|B" means A, else B). Returns 0, or -1 with one line in err. Also exported to
 * re-executed children through ALLOCLAB_COUNTERS. */
int al_ctr_parse(const char *list, char *err, size_t errlen);
/* Turn cache simulation on (--cachesim): children run under callgrind, PAPI is off. */
void al_ctr_set_cachesim(int on);
int al_ctr_cachesim(void);
/* Resolve every event name in a probe child (PAPI is never initialised in the parent, so
 * forked children start clean). Returns 0; -1 with one line in err when a name is bad input
 * (PAPI cannot resolve it at all: an event that resolves but is unavailable is NOT an error).
 * Records the machine's counter situation for al_ctr_add_context. */
int al_ctr_validate(char *err, size_t errlen);
/* The counters part of the results context (counters_gb.c). Can't fail. */
void al_ctr_add_context(void);
struct al_gb_state;
/* Report r as Google Benchmark counters (per op and totals) on st, and each event's source or
 * absence reason in the context (once per event). Can't fail. */
void al_ctr_report(struct al_gb_state *st, const al_ctr_result *r, uint64_t ops);

/* What the configuration and the validation probe found (for counters_gb.c). Can't fail. */
typedef struct al_ctr_info {
    int none, cachesim;
    const char *list, *pmu, *papi, *sde;
    const al_ctr_result *hw; /* each hardware/native event: present, or absent and why */
} al_ctr_info;
const al_ctr_info *al_ctr_get_info(void);

/* ---- child ---- */

/* Set up the event sets for backend b (heap h) and register its SDE counters. Problems are
 * recorded in out (absent events, out->note); never fails the case. */
void al_ctr_child_init(const al_backend *b, void *heap, al_ctr_result *out);
void al_ctr_start(void);
void al_ctr_pause(void);
void al_ctr_resume(void);
/* Stop counting and fill the values into out. Can't fail. */
void al_ctr_stop(al_ctr_result *out);

/* ---- runner: the cachesim re-exec ---- */

/* In cachesim mode, the bytes to alloca in the frame that calls al_child_main (its frame
 * address given) so that its stack sits at the same address modulo AL_CTR_STACK_ALIGN
 * (a multiple of every simulated cache's way size) whatever the environment and argv sizes;
 * plus 16 bytes (so the result is never 0). Can't fail. */
#define AL_CTR_STACK_ALIGN ((uintptr_t)1 << 20)
size_t al_ctr_stack_pad(uintptr_t frame);

/* Whether cases must be re-executed for counters (cache simulation). */
int al_ctr_needs_exec(void);
/* Exec argv (argv[0] = our own program): directly, or under valgrind in cachesim mode.
 * Returns only on failure. */
void al_ctr_exec(char **argv);
/* After the child `pid` exited: parse its callgrind output into out (appended; NULL: only
 * delete the file), delete the file. Returns 0, or -1 with the reason also recorded as absent entries. */
int al_ctr_cachesim_collect(pid_t pid, al_ctr_result *out);
/* Parse a callgrind output file's total cost ("summary:", else "totals:") into ev[] in the order Ir Dr Dw I1mr D1mr D1mw ILmr
 * DLmr DLmw. Returns 0, or -1 when the file is missing or has no events/totals line. */
int al_ctr_parse_callgrind(const char *path, int64_t ev[9]);

#endif
