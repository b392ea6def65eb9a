/* The mount namespace of an OCI container's process (EXEC tags MOUNT, MASKED, READONLY, ROOT_RO):
 * the config's mounts applied in order over the VM's root, then the masked paths, the read-only
 * paths and a read-only root, as runc sets up a container's mounts.
 *
 * One namespace per VM (an OCI microVM runs one container): the first EXEC that carries these
 * tags makes it in a setup process of its own, which the agent keeps open (an fd), so that the
 * container's process and every later exec join the same one (runc's exec enters the
 * container's mount namespace), even after the container's process exited. A later EXEC whose
 * tags differ is refused rather than joining a namespace made for other mounts.
 *
 * Every length from the host is checked here; a mount that fails is reported with the mount and
 * the kernel's reason. Destinations are paths in the VM's root (the container's root): the
 * guest is the container, so following its symlinks stays inside the VM. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* Per-mount flags the host may ask for; anything else in a MOUNT entry is refused. */
#define ALLOWED_FLAGS                                                                                        \
    (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | \
     MS_SYNCHRONOUS | MS_DIRSYNC)
#define MAX_DATA 1024
#define COPY_DEPTH 32

static int g_ns_fd = -1;
static uint64_t g_ns_hash;

void mountns_init(struct mountns *m) { memset(m, 0, sizeof *m); m->hash = 1469598103934665603ULL; }

static void hash_in(struct mountns *m, uint16_t tag, const uint8_t *v, uint32_t vl)
{
    uint8_t head[6] = {(uint8_t)(tag >> 8), (uint8_t)tag, (uint8_t)(vl >> 24), (uint8_t)(vl >> 16),
                       (uint8_t)(vl >> 8), (uint8_t)vl};
    for (int i = 0; i < 6; i++)
        m->hash = (m->hash ^ head[i]) * 1099511628211ULL;
    for (uint32_t i = 0; i < vl; i++)
        m->hash = (m->hash ^ v[i]) * 1099511628211ULL;
}

/* A NUL-terminated absolute path of at most PATH_MAX bytes, with no NUL before its end. */
static int valid_path(const uint8_t *v, uint32_t vl)
{
    return vl >= 2 && vl <= PATH_MAX && v[0] == '/' && v[vl - 1] == 0 && memchr(v, 0, vl - 1) == NULL;
}

static int known_type(const char *t)
{
    static const char *types[] = {"tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "bind"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(t, types[i]))
            return 1;
    return 0;
}

int mountns_tag(struct mountns *m, uint16_t tag, const uint8_t *v, uint32_t vl, const char **why)
{
    switch (tag) {
    case X_MOUNT: {
        /* u32 flags, u8 copy-up, then "type\0destination\0data\0" */
        if (m->nmounts >= MOUNTNS_MAX_MOUNTS || vl < 5 + 2 + 3 || vl > 5 + 16 + PATH_MAX + MAX_DATA ||
            v[vl - 1] != 0) {
            *why = "a MOUNT entry is malformed (flags, copy-up, then type, destination and data each ending in NUL), or there are more than 64";
            return -1;
        }
        const char *s = (const char *)v + 5;
        size_t left = vl - 5;
        const char *type = s, *dest = memchr(type, 0, left);
        dest = dest ? dest + 1 : NULL;
        const char *data = dest ? memchr(dest, 0, left - (size_t)(dest - s)) : NULL;
        data = data ? data + 1 : NULL;
        if (!dest || !data || data >= s + left || memchr(data, 0, left - (size_t)(data - s)) != s + left - 1) {
            *why = "a MOUNT entry does not hold exactly a type, a destination and data";
            return -1;
        }
        uint32_t flags = get32(v);
        if ((flags & ~(uint32_t)ALLOWED_FLAGS) || v[4] > 1 || !known_type(type) ||
            !valid_path((const uint8_t *)dest, (uint32_t)(data - dest)) || strlen(data) >= MAX_DATA) {
            *why = "a MOUNT entry has flags, a type or a destination the agent does not mount";
            return -1;
        }
        m->mounts[m->nmounts].flags = flags;
        m->mounts[m->nmounts].copyup = v[4];
        m->mounts[m->nmounts].type = type;
        m->mounts[m->nmounts].dest = dest;
        m->mounts[m->nmounts].data = data;
        m->nmounts++;
        break;
    }
    case X_MASKED:
    case X_READONLY: {
        int *n = tag == X_MASKED ? &m->nmasked : &m->nreadonly;
        if (*n >= MOUNTNS_MAX_PATHS || !valid_path(v, vl)) {
            *why = "a MASKED or READONLY path is not an absolute path ending in NUL, or there are more than 128";
            return -1;
        }
        (tag == X_MASKED ? m->masked : m->readonly)[(*n)++] = (const char *)v;
        break;
    }
    case X_ROOT_RO:
        if (vl != 1) {
            *why = "ROOT_RO is not one byte";
            return -1;
        }
        m->root_ro = v[0] == 1;
        break;
    default:
        return 0;
    }
    m->any = 1;
    hash_in(m, tag, v, vl);
    return 1;
}

/* ---- the setup process: runs in a fork of the agent, reports on `out`, never returns ---- */

static __attribute__((noreturn, format(printf, 2, 3))) void fail(int out, const char *fmt, ...)
{
    char msg[600];
    int e = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 80, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof msg - 80)
        n = (int)(sizeof msg - 80);
    n += snprintf(msg + n, 80, ": %s", strerror(e));
    ssize_t w = write(out, msg, (size_t)n);
    (void)w;
    _exit(1);
}

/* mkdir -p, each directory 0755 */
static int mkdirs(const char *path)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* The per-mount flags a path's mount has now (a bind remount replaces them all). */
static unsigned long mount_flags(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return 0;
    unsigned long f = 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

/* Binds `src` (a path, or /proc/self/fd/N) onto dest, then gives it `flags`. */
static int bind_with(const char *src, const char *dest, unsigned long flags)
{
    if (mount(src, dest, NULL, MS_BIND | MS_REC, NULL) < 0)
        return -1;
    if (!(flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)))
        return 0;
    return mount(NULL, dest, NULL, MS_REMOUNT | MS_BIND | flags | mount_flags(dest), NULL);
}

static int bind_fd(int fd, const char *dest, unsigned long flags)
{
    char src[32];
    snprintf(src, sizeof src, "/proc/self/fd/%d", fd);
    return bind_with(src, dest, flags);
}

/* tmpcopyup: what was in the directory before the tmpfs covered it, copied onto the tmpfs. */
static void copy_tree(int out, int from, int to, const char *where, int depth)
{
    if (depth > COPY_DEPTH) {
        errno = ELOOP;
        fail(out, "copying %s onto its tmpfs", where);
    }
    DIR *d = fdopendir(from);
    if (!d)
        fail(out, "copying %s onto its tmpfs", where);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        struct stat st;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) < 0)
            fail(out, "copying %s/%s onto its tmpfs", where, n);
        if (S_ISDIR(st.st_mode)) {
            int sf = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sf < 0 || mkdirat(to, n, st.st_mode & 07777) < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
            int tf = openat(to, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (tf < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
            copy_tree(out, sf, tf, where, depth + 1);
            close(tf);
        } else if (S_ISREG(st.st_mode)) {
            int sf = openat(dirfd(d), n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            int tf = openat(to, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 07777);
            char buf[16384];
            ssize_t r;
            if (sf < 0 || tf < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
            while ((r = read(sf, buf, sizeof buf)) > 0)
                if (write(tf, buf, (size_t)r) != r)
                    fail(out, "copying %s/%s onto its tmpfs", where, n);
            if (r < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
            close(sf);
            close(tf);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t l = readlinkat(dirfd(d), n, target, sizeof target - 1);
            if (l < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
            target[l] = 0;
            if (symlinkat(target, to, n) < 0)
                fail(out, "copying %s/%s onto its tmpfs", where, n);
        } else {
            continue; /* sockets, fifos and devices are not copied up */
        }
        if (fchownat(to, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            fail(out, "copying %s/%s onto its tmpfs", where, n);
    }
    closedir(d);
}

/* runc's default devices and links in a /dev that is a tmpfs of the config: the nodes made with
 * the numbers of the VM's own (devtmpfs, opened before the tmpfs covered it). */
static void populate_dev(int out, int guest_dev, const char *dev)
{
    static const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    static const char *links[][2] = {{"fd", "/proc/self/fd"},   {"stdin", "/proc/self/fd/0"},
                                     {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
                                     {"ptmx", "pts/ptmx"},          {"core", "/proc/kcore"}};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dev, nodes[i]);
        if (fstatat(guest_dev, nodes[i], &st, 0) < 0 || !S_ISCHR(st.st_mode) ||
            mknod(p, S_IFCHR | 0666, st.st_rdev) < 0)
            fail(out, "making the device %s", p);
    }
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        snprintf(p, sizeof p, "%s/%s", dev, links[i][0]);
        if (symlink(links[i][1], p) < 0)
            fail(out, "making the link %s", p);
    }
    snprintf(p, sizeof p, "%s/pts", dev);
    if (mkdir(p, 0755) < 0)
        fail(out, "making %s", p);
    snprintf(p, sizeof p, "%s/shm", dev);
    if (mkdir(p, 01777) < 0)
        fail(out, "making %s", p);
}

static void apply_mount(int out, const struct mountns *m, int i, int guest_dev, int guest_pts, int guest_cg,
                        int guest_sys)
{
    const char *t = m->mounts[i].type, *dest = m->mounts[i].dest, *data = m->mounts[i].data;
    unsigned long flags = m->mounts[i].flags;
    if (!strcmp(t, "bind")) {
        /* a bind the host already placed in the VM's root (a file copied in at create, a
         * directory bound under the shared root): bound onto itself, so it is a mount of its
         * own that takes the config's flags and stays writable under a read-only root */
        if (bind_with(dest, dest, flags) < 0)
            fail(out, "mounts[%d]: binding %s with its options", i, dest);
        return;
    }
    if (mkdirs(dest) < 0)
        fail(out, "mounts[%d]: making the mount point %s", i, dest);
    if (!strcmp(t, "devpts")) {
        /* the VM's own instance (newinstance,ptmxmode=0666,mode=0620,gid=5), so a terminal the
         * agent opened for the process is one its /dev/pts shows */
        if (bind_fd(guest_pts, dest, flags) < 0)
            fail(out, "mounts[%d]: devpts at %s", i, dest);
        return;
    }
    if (!strcmp(t, "sysfs")) {
        /* the VM's own sysfs, bound in: a new sysfs mount in the VM's network namespace is
         * refused with EBUSY by this kernel */
        if (bind_fd(guest_sys, dest, flags) < 0)
            fail(out, "mounts[%d]: sysfs at %s", i, dest);
        return;
    }
    if (!strcmp(t, "cgroup") || !strcmp(t, "cgroup2")) {
        /* the guest has the unified hierarchy only: the VM's own, which is the container's */
        if (guest_cg < 0) {
            errno = ENOENT;
            fail(out, "mounts[%d]: cgroup at %s: the VM has no cgroup2 hierarchy", i, dest);
        }
        if (bind_fd(guest_cg, dest, flags) < 0)
            fail(out, "mounts[%d]: cgroup at %s", i, dest);
        return;
    }
    int old = -1;
    if (m->mounts[i].copyup && (old = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fail(out, "mounts[%d]: opening %s to copy it up", i, dest);
    /* proc and mqueue share one superblock per namespace with the VM's own mounts, so a
     * read-only one is made per mount (a bind remount): asking the kernel for a read-only
     * superblock that is mounted read-write already is EBUSY */
    unsigned long sb_flags = strcmp(t, "tmpfs") ? flags & ~(unsigned long)MS_RDONLY : flags;
    if (mount(t, dest, t, sb_flags, data[0] ? data : NULL) < 0)
        fail(out, "mounts[%d]: %s at %s (options '%s')", i, t, dest, data);
    if (sb_flags != flags && mount(NULL, dest, NULL, MS_REMOUNT | MS_BIND | flags | mount_flags(dest), NULL) < 0)
        fail(out, "mounts[%d]: making %s at %s read-only", i, t, dest);
    if (old >= 0) {
        int to = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (to < 0)
            fail(out, "mounts[%d]: opening the tmpfs at %s", i, dest);
        copy_tree(out, old, to, dest, 0);
        close(to);
    }
    if (!strcmp(t, "tmpfs") && !strcmp(dest, "/dev"))
        populate_dev(out, guest_dev, dest);
}

static __attribute__((noreturn)) void setup(const struct mountns *m, int out, int ack)
{
    umask(0);
    if (unshare(CLONE_NEWNS) < 0)
        fail(out, "making the container's mount namespace");
    /* nothing made here reaches the VM's own namespace (its mounts are private already: this
     * makes sure) */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        fail(out, "making the container's mounts private");
    /* the VM's own /dev, /dev/pts and cgroup2, opened before the config's mounts cover them */
    int guest_dev = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int guest_pts = open("/dev/pts", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int guest_cg = open("/sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC);
    int guest_sys = open("/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (guest_dev < 0 || guest_pts < 0 || guest_sys < 0)
        fail(out, "opening the VM's /dev, /dev/pts and /sys");
    for (int i = 0; i < m->nmounts; i++)
        apply_mount(out, m, i, guest_dev, guest_pts, guest_cg, guest_sys);
    for (int i = 0; i < m->nmasked; i++) {
        const char *p = m->masked[i];
        struct stat st;
        if (stat(p, &st) < 0) {
            if (errno == ENOENT)
                continue; /* as runc: nothing there, nothing to mask */
            fail(out, "maskedPaths %s", p);
        }
        if (S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "mode=0755") < 0
                                : mount("/dev/null", p, NULL, MS_BIND, NULL) < 0)
            fail(out, "masking %s", p);
    }
    for (int i = 0; i < m->nreadonly; i++) {
        const char *p = m->readonly[i];
        if (access(p, F_OK) < 0 && errno == ENOENT)
            continue;
        if (bind_with(p, p, MS_RDONLY) < 0)
            fail(out, "readonlyPaths %s", p);
    }
    if (m->root_ro && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | mount_flags("/"), NULL) < 0)
        fail(out, "making the root read-only");
    /* ready: the agent opens this process's namespace, then closes `ack`, and this one ends */
    char ok = 0, x;
    if (write(out, &ok, 1) != 1)
        _exit(1);
    ssize_t r = read(ack, &x, 1);
    (void)r;
    _exit(0);
}

int mountns_join_fd(const struct mountns *m, int *fd, char *why, size_t whylen)
{
    *fd = -1;
    if (!m->any)
        return 0;
    if (g_ns_fd >= 0) {
        if (m->hash != g_ns_hash) {
            snprintf(why, whylen, "this VM's container mount namespace was made for other mounts");
            return -1;
        }
        *fd = g_ns_fd;
        return 0;
    }
    int out[2], ack[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return snprintf(why, whylen, "pipe: %s", strerror(errno)), -1;
    if (pipe2(ack, O_CLOEXEC) < 0) {
        close(out[0]);
        close(out[1]);
        return snprintf(why, whylen, "pipe: %s", strerror(errno)), -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(out[0]);
        close(ack[1]);
        setup(m, out[1], ack[0]);
    }
    close(out[1]);
    close(ack[0]);
    int ret = -1;
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
    } else {
        char msg[600];
        ssize_t n;
        do
            n = read(out[0], msg, sizeof msg - 1);
        while (n < 0 && errno == EINTR);
        if (n == 1 && msg[0] == 0) {
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)pid);
            g_ns_fd = open(path, O_RDONLY | O_CLOEXEC);
            if (g_ns_fd < 0) {
                snprintf(why, whylen, "opening %s: %s", path, strerror(errno));
            } else {
                g_ns_hash = m->hash;
                *fd = g_ns_fd;
                ret = 0;
            }
        } else {
            msg[n > 0 ? n : 0] = 0;
            snprintf(why, whylen, "%s", n > 0 ? msg : "the mount setup process ended without a word");
        }
    }
    close(ack[1]);
    close(out[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return ret;
}
