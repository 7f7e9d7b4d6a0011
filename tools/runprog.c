/* runprog.c - run one command and report what it cost, for scripts/run_programs.sh (GNU time is
 * not installed; this is the part of it we need, with the figures as one JSON object).
 *
 *   runprog [-i IN] [-o OUT] [-e VAR=VALUE]... -- COMMAND [ARG...]
 * runs COMMAND with stdin from IN and stdout to OUT (default: inherited), VAR=VALUE added to
 * its environment (e.g. LD_PRELOAD: only the child gets it, never the runner), and prints
 *   {"wall_s":..,"utime_s":..,"stime_s":..,"maxrss_kb":..,"minflt":..,"majflt":..,
 *    "exit":..,"signal":..}
 * The rusage is wait4()'s: the child plus the descendants it waited for (gcc -> cc1, as).
 * Exit status: 0 when COMMAND ran (whatever its own status: see "exit"/"signal"), 2 on a usage
 * error, 1 when it could not be started. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: runprog [-i IN] [-o OUT] [-e VAR=VALUE]... -- COMMAND [ARG...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    char *envs[64];
    int nenv = 0, i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (i + 1 >= argc) usage();
        if (!strcmp(argv[i], "-i")) in = argv[++i];
        else if (!strcmp(argv[i], "-o")) out = argv[++i];
        else if (!strcmp(argv[i], "-e") && nenv < 64 && strchr(argv[i + 1], '=')) envs[nenv++] = argv[++i];
        else usage();
    }
    if (i + 1 >= argc) usage();
    char **cmd = argv + i + 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("runprog: fork");
        return 1;
    }
    if (pid == 0) {
        if (in) {
            int fd = open(in, O_RDONLY);
            if (fd < 0 || dup2(fd, 0) < 0) _exit(126);
            close(fd);
        }
        if (out) {
            int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || dup2(fd, 1) < 0) _exit(126);
            close(fd);
        }
        for (int k = 0; k < nenv; k++) putenv(envs[k]);
        execvp(cmd[0], cmd);
        fprintf(stderr, "runprog: %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("runprog: wait4");
            return 1;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"wall_s\":%.6f,\"utime_s\":%.6f,\"stime_s\":%.6f,\"maxrss_kb\":%ld,"
           "\"minflt\":%ld,\"majflt\":%ld,\"exit\":%d,\"signal\":%d}\n",
           wall, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss,
           ru.ru_minflt, ru.ru_majflt, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
           WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 127 ? 1 : 0;
}
