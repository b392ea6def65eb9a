/*
 * airlock-jail: starts one VMM process jailed, for Airlock's daemon (which runs as root).
 *
 * The program (QEMU) starts as PID 1 of a new PID namespace, in new mount, IPC, UTS and cgroup
 * namespaces (and a new, empty network namespace unless its user-mode NAT needs the host's),
 * inside a cgroup, with a root of its own: a read-only tmpfs holding /usr and the system's
 * library links read-only, a few device nodes, a /proc of its own PID namespace, and only the
 * host paths the caller names (bound at the same paths, read-only or read-write). It runs as an
 * unprivileged uid/gid with only the supplementary groups named (the kvm group for /dev/kvm),
 * an empty capability bounding set, no
 * ambient capabilities, no_new_privs and no core dumps. With --file-caps (a VMM that shares a
 * host directory with its guest over virtio-9p, whose "passthrough" model sets the guest's
 * owners and modes on the host files) it keeps exactly CAP_CHOWN, CAP_DAC_OVERRIDE,
 * CAP_FOWNER and CAP_FSETID, as ambient capabilities of the unprivileged uid: over the files
 * of its own mount namespace only, which holds no host path but the ones named here. Sockets and files the program must
 * reach but not create (its agent and control sockets, a saved state to load) are made or
 * opened here, as root, and handed over as file descriptors, so the program never needs write
 * access to the directories they live in.
 *
 * A log the program writes without end (a guest's console) is capped here, not by whoever
 * reads it: --capped N:PATH:BYTES hands the program descriptor N, the write end of a pipe whose
 * reader, a small keeper process with the jail's uid and no capabilities, appends what arrives
 * to PATH and keeps the blocks PATH takes under BYTES by punching out all but its end. So the
 * cap holds whether or not the daemon runs; the keeper ends when the program's end of the pipe
 * closes.
 *
 * The launcher returns once the program has been exec'd (or says why it could not be), after
 * writing the program's host PID to --pidfile; the program is then no child of the caller.
 *
 * Why a launcher and not util-linux's unshare + setpriv: unshare --pid --fork keeps a parent
 * process per VM, does not bind single files into an empty root, and each mount(8) is another
 * process on the start path; this is one process and a few dozen system calls.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/close_range.h>

#define MAX_ITEMS 64

struct bind {
    const char *path;
    int writable;
    int shared; /* --share: a slave of the host's mounts under it */
};

struct passed_fd {
    int target;      /* the descriptor number the program sees */
    int fd;          /* ours */
    const char *path;
    int listen;      /* 1: a listening unix socket made at path; 0: path opened read-only */
};

static struct bind binds[MAX_ITEMS];
static int nbinds;
static int have_shares;
static struct passed_fd fds[MAX_ITEMS];
static int nfds;
static const char *devices[MAX_ITEMS];
static int ndevices;
static gid_t groups[MAX_ITEMS];
static int ngroups;
static int report_fd = -1;

/* In the child: says what failed on the report pipe (the parent prints it) and exits. */
static void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg - 64, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if (n > (int)sizeof msg - 64)
        n = sizeof msg - 64;
    n += snprintf(msg + n, sizeof msg - n, ": %s\n", strerror(errno));
    if (report_fd >= 0) {
        if (write(report_fd, msg, n) < 0) {
            /* nothing left to tell it with */
        }
    } else {
        fprintf(stderr, "airlock-jail: %s", msg);
    }
    _exit(127);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: airlock-jail --uid N --gid N [--group N]... --root DIR --pidfile PATH --log PATH [--cgroup DIR] [--net] [--file-caps]\n"
            "                    [--ro PATH]... [--rw PATH]... [--share PATH]... [--dev PATH]... [--listen N:PATH]... [--open N:PATH]...\n"
            "                    [--capped N:PATH:BYTES]\n"
            "                    -- PROGRAM [ARG]...\n");
    exit(2);
}

static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max) {
        fprintf(stderr, "airlock-jail: not a number in range: %s\n", s);
        exit(2);
    }
    return v;
}

static void parse_fd(const char *arg, int listen)
{
    const char *colon = strchr(arg, ':');
    if (!colon || colon == arg || nfds == MAX_ITEMS)
        usage();
    char n[16];
    size_t len = (size_t)(colon - arg);
    if (len >= sizeof n)
        usage();
    memcpy(n, arg, len);
    n[len] = 0;
    long target = number(n, 99);
    if (target < 3)
        usage();
    fds[nfds++] = (struct passed_fd){ .target = (int)target, .fd = -1, .path = colon + 1, .listen = listen };
}

/* mkdir -p of path's directories below root (all 0755, owned by root: the jail only reads them). */
static void make_parents(const char *root, const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s%s", root, path) >= (int)sizeof buf)
        die("path too long: %s", path);
    for (char *p = buf + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                die("mkdir %s", buf);
            *p = '/';
        }
    }
}

/* Binds a host path (file, directory or device) at the same path under root. A shared one (a
 * directory the VMM shares with its guest, --share) stays a slave of the host's mounts there:
 * what the host mounts under it later (a pod's app container's rootfs) reaches the VMM too, and
 * nothing the jail does goes back. Everything else is private. */
static void bind_path(const char *root, const char *path, int writable, int device, int shared)
{
    struct stat st;
    if (path[0] != '/')
        die("not an absolute path: %s", path);
    if (stat(path, &st) < 0)
        die("cannot bind %s", path);
    make_parents(root, path);
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s%s", root, path);
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(target, 0755) < 0 && errno != EEXIST)
            die("mkdir %s", target);
    } else {
        int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            die("create %s", target);
        close(fd);
    }
    if (mount(path, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        die("bind %s", path);
    if (!shared && mount(NULL, target, NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("making %s private", path);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    if (!writable)
        flags |= MS_RDONLY;
    if (!device)
        flags |= MS_NODEV;
    if (mount(NULL, target, NULL, flags, NULL) < 0)
        die("remount %s", path);
}

/* /bin, /lib, ... as the host has them: links into /usr (merged /usr), or read-only binds. */
static void system_dirs(const char *root)
{
    static const char *const tops[] = { "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32" };
    bind_path(root, "/usr", 0, 0, 0);
    for (size_t i = 0; i < sizeof tops / sizeof *tops; i++) {
        struct stat st;
        if (lstat(tops[i], &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char link[PATH_MAX];
            ssize_t n = readlink(tops[i], link, sizeof link - 1);
            if (n < 0)
                die("readlink %s", tops[i]);
            link[n] = 0;
            char target[PATH_MAX];
            snprintf(target, sizeof target, "%s%s", root, tops[i]);
            if (symlink(link, target) < 0)
                die("symlink %s", target);
        } else if (S_ISDIR(st.st_mode)) {
            bind_path(root, tops[i], 0, 0, 0);
        }
    }
    if (access("/etc/ld.so.cache", R_OK) == 0)
        bind_path(root, "/etc/ld.so.cache", 0, 0, 0);
    static const char *const devs[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };
    for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
        bind_path(root, devs[i], 1, 1, 0);
    for (int i = 0; i < ndevices; i++)
        bind_path(root, devices[i], 1, 1, 0);
}

static void drop_capabilities(int keep_file_caps);

/* --capped: the program's descriptor, the file, its cap. */
static int capped_target = -1;
static const char *capped_path;
static long long capped_bytes;

/*
 * The keeper of a capped log: reads the pipe until the program's end closes, appends to the
 * file, and punches out (FALLOC_FL_PUNCH_HOLE, the file keeps its length) all but the last half
 * cap once the blocks it takes pass the cap. Reading from the end (SEEK_HOLE/SEEK_DATA) shows
 * the latest output, as the daemon's own trimming leaves it.
 */
static void keep_capped_log(int in, int out, uid_t uid, gid_t gid)
{
    if (setsid() < 0)
        die("setsid");
    int null_fd = open("/dev/null", O_RDWR);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(null_fd, 2) < 0)
        _exit(1);
    if (dup2(in, 3) < 0 || dup2(out, 4) < 0)
        _exit(1);
    if (syscall(SYS_close_range, 5U, ~0U, 0) < 0)
        _exit(1);
    drop_capabilities(0);
    if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0
        || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(1);
    static char buf[65536];
    for (;;) {
        ssize_t n = read(3, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(4, buf + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(1);
            done += w;
        }
        struct stat st;
        if (fstat(4, &st) == 0 && (long long)st.st_blocks * 512 > capped_bytes) {
            long long keep_from = (st.st_size - capped_bytes / 2) & ~4095LL;
            if (keep_from > 0)
                fallocate(4, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, keep_from);
        }
    }
    _exit(0);
}

/* Starts the keeper; returns the pipe's write end for the program. */
static int start_capped_log(uid_t uid, gid_t gid)
{
    int out = open(capped_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (out < 0)
        die("open %s", capped_path);
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        die("pipe");
    pid_t keeper = fork();
    if (keeper < 0)
        die("fork");
    if (keeper == 0) {
        close(p[1]);
        keep_capped_log(p[0], out, uid, gid);
    }
    close(p[0]);
    close(out);
    return p[1];
}

/* What --file-caps keeps: what QEMU's 9p passthrough needs to give files the guest's owners. */
static const int file_caps[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID };
#define NFILE_CAPS ((int)(sizeof file_caps / sizeof file_caps[0]))

static int is_file_cap(int cap)
{
    for (int i = 0; i < NFILE_CAPS; i++)
        if (file_caps[i] == cap)
            return 1;
    return 0;
}

static void drop_capabilities(int keep_file_caps)
{
    for (int cap = 0; cap <= 63; cap++) {
        if (keep_file_caps && is_file_cap(cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            die("dropping capability %d from the bounding set", cap);
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        die("clearing ambient capabilities");
}

/* Gives each passed descriptor its number; every other descriptor but 0-2 closes at exec. */
static void arrange_fds(void)
{
    /* Out of the way first (targets are below 100), so no target replaces one still needed. */
    for (int i = 0; i < nfds; i++) {
        int moved = fcntl(fds[i].fd, F_DUPFD_CLOEXEC, 100);
        if (moved < 0)
            die("dup %s", fds[i].path);
        close(fds[i].fd);
        fds[i].fd = moved;
    }
    for (int i = 0; i < nfds; i++) {
        if (dup2(fds[i].fd, fds[i].target) < 0)
            die("dup2 %s", fds[i].path);
    }
    if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        die("close_range");
    for (int i = 0; i < nfds; i++) {
        if (fcntl(fds[i].target, F_SETFD, 0) < 0)
            die("keeping %s open", fds[i].path);
    }
}

/*
 * After the change of uid (with SECBIT_KEEP_CAPS set before it): the file capabilities only,
 * permitted, effective, inheritable and ambient, so they survive the exec of the VMM.
 */
static void keep_file_capabilities(void)
{
    struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2] = { 0 };
    for (int i = 0; i < NFILE_CAPS; i++) {
        data[0].effective |= 1u << file_caps[i];
        data[0].permitted |= 1u << file_caps[i];
        data[0].inheritable |= 1u << file_caps[i];
    }
    if (syscall(SYS_capset, &head, data) < 0)
        die("capset");
    for (int i = 0; i < NFILE_CAPS; i++)
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, file_caps[i], 0, 0) < 0)
            die("raising ambient capability %d", file_caps[i]);
}

static void child(const char *root, int new_net, int file_caps_wanted, uid_t uid, gid_t gid, int log_fd, char **argv)
{
    if (setsid() < 0)
        die("setsid");
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | (new_net ? CLONE_NEWNET : 0);
    if (unshare(flags) < 0)
        die("unshare");
    /* slaves, not private, while a --share is bound: it must stay a slave of the host's mount */
    if (mount(NULL, "/", NULL, MS_REC | (have_shares ? MS_SLAVE : MS_PRIVATE), NULL) < 0)
        die("making mounts private");
    if (mount("airlock-jail", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k,nr_inodes=256") < 0)
        die("tmpfs on %s", root);
    system_dirs(root);
    for (int i = 0; i < nbinds; i++)
        bind_path(root, binds[i].path, binds[i].writable, 0, binds[i].shared);
    char proc[PATH_MAX];
    snprintf(proc, sizeof proc, "%s/proc", root);
    if (mkdir(proc, 0555) < 0 || mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("mounting /proc");
    if (mount(NULL, root, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die("making the root read-only");
    if (chdir(root) < 0)
        die("chdir %s", root);
    /* pivot_root(".", "."): the old root ends up on top of the new one, then goes. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        die("pivot_root");
    if (umount2(".", MNT_DETACH) < 0)
        die("detaching the host's root");
    if (chdir("/") < 0)
        die("chdir /");
    if (sethostname("airlock-vmm", 11) < 0)
        die("sethostname");

    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
        die("redirecting stdio");
    if (null_fd > 2)
        close(null_fd);
    arrange_fds();

    struct rlimit no_core = { 0, 0 }; /* a core of a VMM is the guest's RAM */
    if (setrlimit(RLIMIT_CORE, &no_core) < 0)
        die("setrlimit");
    drop_capabilities(file_caps_wanted);
    if (file_caps_wanted && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        die("keepcaps");
    if (setgroups(ngroups, groups) < 0)
        die("setgroups");
    if (setresgid(gid, gid, gid) < 0)
        die("setresgid");
    /* From uid 0 to another uid without SECBIT_KEEP_CAPS: permitted and effective sets go empty. */
    if (setresuid(uid, uid, uid) < 0)
        die("setresuid");
    if (file_caps_wanted)
        keep_file_capabilities();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        die("no_new_privs");
    execv(argv[0], argv);
    die("exec %s", argv[0]);
}

int main(int argc, char **argv)
{
    long uid = -1, gid = -1;
    const char *root = NULL, *pidfile = NULL, *log = NULL, *cgroup = NULL;
    int new_net = 0;
    int file_caps_wanted = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (!strcmp(a, "--net")) {
            new_net = 1;
            continue;
        }
        if (!strcmp(a, "--file-caps")) {
            file_caps_wanted = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--uid"))
            uid = number(v, 0x7fffffff);
        else if (!strcmp(a, "--gid"))
            gid = number(v, 0x7fffffff);
        else if (!strcmp(a, "--root"))
            root = v;
        else if (!strcmp(a, "--pidfile"))
            pidfile = v;
        else if (!strcmp(a, "--log"))
            log = v;
        else if (!strcmp(a, "--cgroup"))
            cgroup = v;
        else if ((!strcmp(a, "--ro") || !strcmp(a, "--rw")) && nbinds < MAX_ITEMS)
            binds[nbinds++] = (struct bind){ .path = v, .writable = a[3] == 'w' };
        else if (!strcmp(a, "--share") && nbinds < MAX_ITEMS) {
            binds[nbinds++] = (struct bind){ .path = v, .writable = 1, .shared = 1 };
            have_shares = 1;
        }
        else if (!strcmp(a, "--dev") && ndevices < MAX_ITEMS)
            devices[ndevices++] = v;
        else if (!strcmp(a, "--group") && ngroups < MAX_ITEMS)
            groups[ngroups++] = (gid_t)number(v, 0x7fffffff);
        else if (!strcmp(a, "--capped")) {
            char *end, *copy = strdup(v);
            if (!copy)
                die("strdup");
            capped_target = (int)strtol(copy, &end, 10);
            if (*end != ':' || capped_target < 3 || capped_target > 99)
                usage();
            char *last = strrchr(end + 1, ':');
            if (!last || last == end + 1)
                usage();
            *last = 0;
            capped_path = end + 1;
            capped_bytes = number(last + 1, 0x7fffffffffffL);
            if (capped_bytes < 65536)
                usage();
        } else if (!strcmp(a, "--listen"))
            parse_fd(v, 1);
        else if (!strcmp(a, "--open"))
            parse_fd(v, 0);
        else
            usage();
    }
    if (i >= argc || uid <= 0 || gid <= 0 || !root || !pidfile || !log || argv[i][0] != '/')
        usage();
    if (geteuid() != 0) {
        fprintf(stderr, "airlock-jail: must run as root (it drops to uid %ld itself)\n", uid);
        return 2;
    }

    int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (log_fd < 0)
        die("open %s", log);
    for (int f = 0; f < nfds; f++) {
        if (fds[f].listen) {
            struct sockaddr_un addr = { .sun_family = AF_UNIX };
            if (strlen(fds[f].path) >= sizeof addr.sun_path) {
                errno = ENAMETOOLONG;
                die("socket path %s", fds[f].path);
            }
            strcpy(addr.sun_path, fds[f].path);
            int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0)
                die("socket");
            if (unlink(fds[f].path) < 0 && errno != ENOENT)
                die("unlink %s", fds[f].path);
            mode_t old = umask(0177); /* the socket file: 0600, root's */
            int bound = bind(s, (struct sockaddr *)&addr, sizeof addr);
            umask(old);
            if (bound < 0 || listen(s, 16) < 0)
                die("listen on %s", fds[f].path);
            fds[f].fd = s;
        } else {
            fds[f].fd = open(fds[f].path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            if (fds[f].fd < 0)
                die("open %s", fds[f].path);
        }
    }
    if (capped_target >= 0) {
        if (nfds == MAX_ITEMS)
            usage();
        /* Before the cgroup join: the keeper is no part of the VMM's group, and ends on its own. */
        fds[nfds++] = (struct passed_fd){
            .target = capped_target, .fd = start_capped_log((uid_t)uid, (gid_t)gid), .path = capped_path, .listen = 0
        };
    }
    if (cgroup) {
        /* Joined before the fork, so the program is in it from its first instruction, and its
         * cgroup namespace is rooted there. Made here if absent; a sweep of empty groups may
         * remove it between the mkdir and the join, so that is tried a few times. */
        char procs[PATH_MAX];
        if (snprintf(procs, sizeof procs, "%s/cgroup.procs", cgroup) >= (int)sizeof procs)
            die("cgroup path too long");
        int joined = 0;
        for (int attempt = 0; attempt < 5 && !joined; attempt++) {
            if (mkdir(cgroup, 0755) < 0 && errno != EEXIST)
                die("creating the cgroup %s", cgroup);
            int fd = open(procs, O_WRONLY | O_CLOEXEC);
            if (fd < 0 && errno == ENOENT)
                continue;
            if (fd < 0 || write(fd, "0\n", 2) != 2)
                die("joining the cgroup %s", cgroup);
            close(fd);
            joined = 1;
        }
        if (!joined)
            die("joining the cgroup %s", cgroup);
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) < 0)
        die("pipe");
    if (unshare(CLONE_NEWPID) < 0)
        die("unshare(CLONE_NEWPID)");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(report[0]);
        report_fd = fcntl(report[1], F_DUPFD_CLOEXEC, 100);
        if (report_fd < 0)
            die("dup");
        close(report[1]);
        child(root, new_net, file_caps_wanted, (uid_t)uid, (gid_t)gid, log_fd, argv + i);
    }
    close(report[1]);
    char msg[1024];
    ssize_t n, got = 0;
    while ((n = read(report[0], msg + got, sizeof msg - 1 - got)) > 0)
        got += n;
    if (got > 0) {
        msg[got] = 0;
        fprintf(stderr, "airlock-jail: %s", msg);
        waitpid(pid, NULL, 0);
        return 1;
    }
    /* exec succeeded (the report pipe closed on exec): record the program's host pid. */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", pidfile) >= (int)sizeof tmp)
        die("pid file path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", pid);
    if (fd < 0 || write(fd, line, len) != len || close(fd) < 0 || rename(tmp, pidfile) < 0) {
        kill(pid, SIGKILL);
        die("writing %s", pidfile);
    }
    return 0;
}
