/* bench/floor.sh's in-guest probe: creates N processes one way (MODE) and waits for each, so the
 * QEMU process's CPU time over the run, divided by N, is what one such process costs under
 * emulation. Built static on the host by bench/floor.sh and copied into the sandbox.
 *   spawn N MODE PROG
 * MODE: forkonly (fork, child exits), fork (fork + execve PROG), vfork (vfork + execve PROG),
 * signals (fork, child resets signals 1..64 one by one as the agent did, execve), cgroup (fork,
 * child moves itself into the sandbox's command cgroup as the agent does, execve), agent (what
 * the agent's child does now: mask, SIGPIPE, setsid, cgroup move, chdir, execve). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void cgroup_move(void)
{
    int cg = open("/sys/fs/cgroup/sandbox/cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (cg >= 0) {
        if (write(cg, "0", 1) < 0)
            _exit(126);
        close(cg);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int n = atoi(argv[1]);
    const char *mode = argv[2];
    char *prog = argv[3];
    char *cargv[] = {prog, NULL};
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        pid_t p = strcmp(mode, "vfork") == 0 ? vfork() : fork();
        if (p < 0)
            return 1;
        if (p == 0) {
            if (strcmp(mode, "forkonly") == 0)
                _exit(0);
            if (strcmp(mode, "signals") == 0)
                for (int s = 1; s < NSIG; s++)
                    if (s != SIGKILL && s != SIGSTOP)
                        signal(s, SIG_DFL);
            if (strcmp(mode, "cgroup") == 0)
                cgroup_move();
            if (strcmp(mode, "agent") == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                setsid();
                cgroup_move();
                if (chdir("/") < 0)
                    _exit(126);
            }
            execve(prog, cargv, environ);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
    }
    printf("%.3f\n", (now_ms() - t0) / n);
    return 0;
}
