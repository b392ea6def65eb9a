/* Entry point: chooses between PID 1 in a microVM and serving a unix socket. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

const char *g_listen_path;

/*
 * Marks every descriptor above stderr close-on-exec: whatever our parent leaked to us must not
 * reach the sandboxed processes. gVisor (2024-07-29) refuses close_range's CLOSE_RANGE_CLOEXEC
 * (EINVAL), and one fcntl per possible descriptor costs it ~1000 system calls through the
 * Sentry, measured at ~200 ms of a gVisor sandbox's start; so only the open ones, as
 * /proc/self/fd lists them, are marked. Without /proc (a VM's PID 1 before it mounts one, on a
 * kernel without the flag) every descriptor below 1024 is.
 */
static void cloexec_inherited(void)
{
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        for (int fd = 3; fd < 1024; fd++)
            fcntl(fd, F_SETFD, FD_CLOEXEC);
        return;
    }
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (end != e->d_name && *end == '\0' && fd > 2 && fd != own && fd <= 0x7fffffff)
            fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(d);
}

int listen_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        die("socket path too long: %s", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0)
        die("listen on %s: %s", path, strerror(errno));
    return fd;
}

int main(int argc, char **argv)
{
    /* children get their stdio by dup2 onto 0-2; those must never be our own pipes */
    int fd;
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2) {
    }
    if (fd > 2)
        close(fd);
    cloexec_inherited();

    /* --serve-unix wins over PID 1: in a container's PID namespace the agent is PID 1 but must
     * not boot a VM (no devtmpfs, no root switch, no virtio port, no reboot on exit). The
     * runtime has already set up mounts, hostname and loopback. PID 1 reaps orphans anyway. */
    if (argc == 3 && strcmp(argv[1], "--serve-unix") == 0) {
        /* orphaned grandchildren come back to us, so they are reaped, not left as zombies */
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        agent_limits_init();
        g_listen_path = argv[2];
        serve(listen_unix(argv[2]), -1);
        return 1;
    }
    if (getpid() == 1) {
        g_pid1 = 1;
        int port = pid1_boot();
        serve(-1, port);
        die("event loop returned");
    }
    if (argc == 2 && strcmp(argv[1], "--tsc-khz") == 0)
        return tsc_khz_main();
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("airlock-init %s (protocol %u)\n", AIRLOCK_VERSION, PROTO_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: airlock-init --serve-unix PATH   (or run as PID 1)\n");
    return 2;
}
