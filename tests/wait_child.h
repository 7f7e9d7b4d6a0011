/* wait_child.h - wait for a forked child with a time limit, for the fork tests: a child stuck
 * on a lock held at fork() must fail a test, not hang it. Nothing but libc (dropin_check uses
 * it too). fork_via_atfork() is there for tests that include allocator.h first. */
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

#ifdef ALLOCLAB_ALLOCATOR_H
/* What fork_via_atfork() saw. */
enum { FORK_OK = 0, FORK_CHILD_FAILED = 1, FORK_CHILD_HUNG = 2, FORK_FAILED = 3 };

/* fork() the way a drop-in's pthread_atfork handlers drive a backend: atfork(PREPARE) in this
 * thread, then CHILD in the child, which runs child(arg) and exits with its value, and PARENT
 * here; then waits up to limit_ms for the child. Returns FORK_OK when it exited 0,
 * FORK_CHILD_FAILED with its wait status in *status, FORK_CHILD_HUNG (killed at the limit),
 * or FORK_FAILED when fork() itself failed. */
static inline int fork_via_atfork(const al_backend *b, void *heap, int (*child)(void *),
                                  void *arg, int limit_ms, int *status)
{
    b->atfork(heap, AL_FORK_PREPARE);
    pid_t pid = fork();
    if (pid == 0) {
        b->atfork(heap, AL_FORK_CHILD);
        _exit(child(arg));
    }
    b->atfork(heap, AL_FORK_PARENT);
    if (pid < 0) return FORK_FAILED;
    *status = 0;
    if (!wait_child(pid, limit_ms, status)) return FORK_CHILD_HUNG;
    return WIFEXITED(*status) && WEXITSTATUS(*status) == 0 ? FORK_OK : FORK_CHILD_FAILED;
}
#endif

#endif
