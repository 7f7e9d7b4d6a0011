/* clock.h - monotonic time in nanoseconds. Can't fail. */
#ifndef ALLOCLAB_CLOCK_H
#define ALLOCLAB_CLOCK_H
#include <stdint.h>
uint64_t al_now_ns(void);
#endif
