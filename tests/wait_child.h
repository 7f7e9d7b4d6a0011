/* wait_child.h - wait for a forked child with a time limit, for the fork tests: a child stuck
 * on a lock held at fork() must fail a test, not hang it. Nothing but libc (dropin_check uses
 * it too). */
#ifndef ALLOCLAB_TESTS_WAIT_CHILD_H
#define ALLOCLAB_TESTS_WAIT_CHILD_H

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

/* Waits up to limit_ms for pid. Returns 1 when it ended, with its wait status in *status
 * (-1, which is no normal exit, when waitpid failed); 0 when it still ran at the limit: it is
 * then killed and reaped. */
static inline int wait_child(pid_t pid, int limit_ms, int *status)
{
    int r;
    for (int waited = 0; (r = waitpid(pid, status, WNOHANG)) == 0; waited++) {
        if (waited >= limit_ms) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 0;
        }
        usleep(1000);
    }
    if (r < 0) *status = -1;
    return 1;
}

#endif
