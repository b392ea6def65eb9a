/* EXEC's ROOT tag: the process of a pod's app container runs in the pod's VM (so it shares the
 * VM's network, IPC and kernel with the pod's other containers) but on a root of its own: the
 * container's rootfs, which the host put under the VM's shared tree. The command's child
 * unshares its mount namespace, makes every mount a slave (nothing it mounts reaches the agent),
 * puts the directory at / and mounts a /proc, /sys and /dev of its own there, before its user
 * and capabilities change.
 *
 * The agent's own root is the initramfs with the VM's root moved over it (boot.c), on which
 * pivot_root refuses to work, so the directory is moved over / and chrooted into, as the agent
 * itself entered its root. A process that keeps CAP_SYS_CHROOT could climb out of that to the
 * VM's root: the pod's, not the host's; OCI configs drop the capability by default. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A guest path the host names: absolute, no "." or ".." component, no empty one but a trailing
 * slash's, shorter than PATH_MAX less room for what is mounted under it, and not "/". */
int podroot_parse(const uint8_t *v, uint32_t vl, char *out, size_t cap, const char **why)
{
    if (vl < 2 || vl >= cap || vl >= PATH_MAX - 64 || v[0] != '/' || memchr(v, 0, vl)) {
        *why = "ROOT is not an absolute guest path of 2 to 4031 bytes without NUL";
        return -1;
    }
    memcpy(out, v, vl);
    out[vl] = 0;
    for (const char *p = out + 1; *p;) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.') || (l == 0 && slash)) {
            *why = "ROOT has an empty, '.' or '..' component";
            return -1;
        }
        p += l + (slash ? 1 : 0);
    }
    return 0;
}

/* In the agent, before the child: the root must be a directory now (not a link to one). */
int podroot_check(const char *root)
{
    struct stat st;
    if (lstat(root, &st) < 0)
        return errno;
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

/* Makes dir (relative to the new root, the working directory) if it is missing. */
static int ensure_dir(const char *dir, mode_t mode)
{
    struct stat st;
    if (lstat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    return mkdir(dir, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* /dev: a tmpfs with the devices runc gives a container (bound from the VM's own nodes), a
 * devpts instance of its own, /dev/shm and the usual links. */
static int make_dev(void)
{
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    if (ensure_dir("dev", 0755) < 0 ||
        mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k,nr_inodes=4096") < 0)
        return -1;
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        char from[32], to[32];
        snprintf(from, sizeof from, "/dev/%s", nodes[i]);
        snprintf(to, sizeof to, "dev/%s", nodes[i]);
        int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            return -1;
        close(fd);
        if (mount(from, to, NULL, MS_BIND, NULL) < 0)
            return -1;
    }
    if (mkdir("dev/pts", 0755) < 0 ||
        mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0 ||
        symlink("pts/ptmx", "dev/ptmx") < 0 || mkdir("dev/shm", 01777) < 0 ||
        mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0 ||
        symlink("/proc/self/fd", "dev/fd") < 0 || symlink("/proc/self/fd/0", "dev/stdin") < 0 ||
        symlink("/proc/self/fd/1", "dev/stdout") < 0 || symlink("/proc/self/fd/2", "dev/stderr") < 0)
        return -1;
    return 0;
}

/* In the command's child (vfork: system calls and the stack only), before chdir and the user
 * change. -1 with errno on failure; the child then reports it and exits. */
int podroot_enter(const char *root)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return -1;
    /* a mount of its own, so it can be moved over / (with the binds the host made in it) */
    if (mount(root, root, NULL, MS_BIND | MS_REC, NULL) < 0 || chdir(root) < 0)
        return -1;
    if (ensure_dir("proc", 0555) < 0 || mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;
    if (ensure_dir("sys", 0555) < 0 ||
        mount("sysfs", "sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0)
        return -1;
    if (make_dev() < 0)
        return -1;
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
        return -1;
    return 0;
}
