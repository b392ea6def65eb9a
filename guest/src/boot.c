/* Life as PID 1 in a microVM: early mounts, the overlay root, hostname, loopback, finding
 * the agent's virtio-serial port, and the way out (shutdown, fatal errors -> power off).
 * Also the container-mode shutdown, which only has to stop our own processes. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int g_oldroot = -1; /* the initramfs root, where the layer stays mounted */
static int g_have_layer;

static void power_off(void) __attribute__((noreturn));
static void power_off(void)
{
    sync();
    /* QEMU runs with -no-reboot and the kernel with reboot=t: a reboot ends the VM,
     * while RB_POWER_OFF would only halt without ACPI */
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}

void die(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    dprintf(2, "airlock-init: fatal: %s\n", buf);
    if (g_pid1)
        power_off();
    exit(1);
}

static void mkdirp(const char *path, mode_t mode)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *q = buf + 1;; q++) {
        if (*q == '/' || !*q) {
            char c = *q;
            *q = 0;
            mkdir(buf, mode);
            *q = c;
            if (!c)
                break;
        }
    }
}

static void must_mount(const char *src, const char *dst, const char *type, unsigned long fl,
                       const char *data)
{
    mkdirp(dst, 0755);
    if (mount(src, dst, type, fl, data) < 0)
        die("mount %s on %s (%s): %s", src, dst, type, strerror(errno));
}

static void try_mount(const char *src, const char *dst, const char *type, unsigned long fl,
                      const char *data)
{
    mkdirp(dst, 0755);
    if (mount(src, dst, type, fl, data) < 0)
        logmsg("mount %s on %s (%s): %s", src, dst, type, strerror(errno));
}

/* Copies the value of "key=" from the kernel command line into out; 1 if present. */
static int cmdline_get(const char *cmdline, const char *key, char *out, size_t outsz)
{
    size_t kl = strlen(key);
    for (const char *p = cmdline; *p;) {
        while (*p == ' ' || *p == '\n')
            p++;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\n')
            end++;
        if ((size_t)(end - p) > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
            size_t vl = (size_t)(end - p) - kl - 1;
            if (vl >= outsz)
                vl = outsz - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = 0;
            return 1;
        }
        p = end;
    }
    return 0;
}

static void read_small(const char *path, char *buf, size_t sz)
{
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sz - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
}

static void dev_path(const char *dev, char *out, size_t sz)
{
    if (dev[0] == '/')
        snprintf(out, sz, "%s", dev);
    else
        snprintf(out, sz, "/dev/%s", dev);
}

/* Moves /dev, /proc and /sys under the new root at /mnt/root and makes it the root. */
static void enter_root(void)
{
    static const char *moves[] = {"/dev", "/proc", "/sys"};
    for (int i = 0; i < 3; i++) {
        char dst[64];
        snprintf(dst, sizeof dst, "/mnt/root%s", moves[i]);
        mkdir(dst, 0755);
        if (mount(moves[i], dst, NULL, MS_MOVE, NULL) < 0)
            die("move %s: %s", moves[i], strerror(errno));
    }
    g_oldroot = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (chdir("/mnt/root") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
        chdir("/") < 0)
        die("switching root: %s", strerror(errno));
}

/* airlock.root=9p:TAG: the root is a host directory shared over virtio-9p (an OCI bundle's
 * rootfs), used as it is: writes go to the host directory, as they would under runc. */
static void share_root(const char *tag)
{
    mkdirp("/mnt/root", 0755);
    if (mount(tag, "/mnt/root", "9p", MS_NOATIME,
              "trans=virtio,version=9p2000.L,msize=262144,cache=none,access=client") < 0)
        die("mount the shared root %s: %s", tag, strerror(errno));
    enter_root();
}

static void switch_root(const char *rootdev, const char *layerdev, int have_layer)
{
    char base[160], layer[160];
    if (strncmp(rootdev, "9p:", 3) == 0) {
        share_root(rootdev + 3);
        return;
    }
    dev_path(rootdev, base, sizeof base);
    mkdirp("/mnt/base", 0755);
    if (mount(base, "/mnt/base", "erofs", MS_RDONLY, NULL) < 0 &&
        mount(base, "/mnt/base", "ext4", MS_RDONLY, NULL) < 0)
        die("mount base image %s: %s", base, strerror(errno));
    if (have_layer) {
        dev_path(layerdev, layer, sizeof layer);
        must_mount(layer, "/mnt/layer", "ext4", MS_NOATIME, NULL);
        g_have_layer = 1;
    } else {
        /* no writable disk: changes live in memory and vanish with the VM */
        must_mount("tmpfs", "/mnt/layer", "tmpfs", 0, "mode=0755");
    }
    mkdir("/mnt/layer/upper", 0755);
    mkdir("/mnt/layer/work", 0755);
    must_mount("overlay", "/mnt/root", "overlay", 0,
               "lowerdir=/mnt/base,upperdir=/mnt/layer/upper,workdir=/mnt/layer/work");
    enter_root();
}

/* The cgroup every exec'd command joins (empty: none). Its pids.max is the sandbox's process
 * limit: a fork bomb stops there, while the agent, outside it, keeps answering. Its memory.max
 * keeps a little of the VM's RAM back from commands: a hog then meets a prompt cgroup OOM kill
 * instead of the whole guest thrashing its page cache for minutes before the global OOM killer
 * acts, and the kernel and agent keep room to work. */
char g_exec_cgroup[64];

static void write_small(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        logmsg("%s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

static void command_cgroup(const char *cmdline)
{
    char limit[24];
    if (!cmdline_get(cmdline, "airlock.pids", limit, sizeof limit))
        return;
    /* favordynmods: every exec moves its child into the cgroup below, and a move takes the
     * threadgroup lock for writing, which otherwise waits for an RCU grace period whenever no
     * move happened in the last one: 20-25 ms of a 100 Hz guest's ticks, paid by the first exec
     * after a few hundred idle milliseconds (a warm-pool claim's first command always is one).
     * With it fork and exit take that lock's slower read side (one more barrier) and a move
     * never waits. Kernels before 6.0 refuse the option: mounted without it there. */
    mkdirp("/sys/fs/cgroup", 0755);
    if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "favordynmods") < 0)
        try_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    write_small("/sys/fs/cgroup/cgroup.subtree_control", "+pids");
    /* memory.events there counts the OOM kills that EXIT reports */
    write_small("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    if (mkdir("/sys/fs/cgroup/sandbox", 0755) < 0 && errno != EEXIST) {
        logmsg("cgroup for commands: %s", strerror(errno));
        return;
    }
    write_small("/sys/fs/cgroup/sandbox/pids.max", limit);
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        /* Relative to what is free now, not the total: the kernel already holds ~20 MiB of a
         * 256 MiB VM, and a limit above what can be had never fires. */
        unsigned long long total = (unsigned long long)si.totalram * si.mem_unit;
        unsigned long long free = (unsigned long long)si.freeram * si.mem_unit;
        unsigned long long reserve = total / 16 > (16ULL << 20) ? total / 16 : 16ULL << 20;
        char max[24];
        snprintf(max, sizeof max, "%llu", free > 2 * reserve ? free - reserve : free);
        write_small("/sys/fs/cgroup/sandbox/memory.max", max);
    }
    snprintf(g_exec_cgroup, sizeof g_exec_cgroup, "/sys/fs/cgroup/sandbox/cgroup.procs");
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        logmsg("no inet socket, loopback left down: %s", strerror(errno));
        return;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0 && errno != EEXIST)
        logmsg("lo address: %s", strerror(errno));
    sin->sin_addr.s_addr = htonl(0xff000000u);
    ioctl(s, SIOCSIFNETMASK, &ifr);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            logmsg("lo up: %s", strerror(errno));
    }
    close(s);
}

static void set_addr(int s, const char *ifname, unsigned long req, uint32_t addr)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", ifname);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr);
    if (ioctl(s, req, &ifr) < 0)
        logmsg("%s address setting %lx: %s", ifname, req, strerror(errno));
}

/* --network nat: the VM has a virtio-net NIC on QEMU's user-mode NAT, whose addresses are
 * fixed (guest 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3), so no DHCP client is needed.
 * Without a NIC (every other mode) there is no eth0 and nothing to do. */
static void nat_up(void)
{
    if (access("/sys/class/net/eth0", F_OK) != 0)
        return;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        logmsg("no inet socket, eth0 left down: %s", strerror(errno));
        return;
    }
    set_addr(s, "eth0", SIOCSIFADDR, 0x0a00020fu);
    set_addr(s, "eth0", SIOCSIFNETMASK, 0xffffff00u);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "eth0");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            logmsg("eth0 up: %s", strerror(errno));
    }
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
    struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
    struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;
    dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
    gw->sin_addr.s_addr = htonl(0x0a000202u);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = "eth0";
    if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST)
        logmsg("default route: %s", strerror(errno));
    close(s);
    /* The image's resolv.conf names the resolver of the host it was built on. */
    static const char resolv[] = "nameserver 10.0.2.3\n";
    int fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, resolv, sizeof resolv - 1) < 0)
        logmsg("/etc/resolv.conf: %s", strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* The port's name arrives from the host asynchronously after the device probes, so keep
 * looking for a while before giving up. */
static int open_agent_port(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        DIR *d = opendir("/sys/class/virtio-ports");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char p[300], name[64];
            snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", de->d_name);
            read_small(p, name, sizeof name);
            name[strcspn(name, "\n")] = 0;
            if (strcmp(name, "airlock.agent") != 0)
                continue;
            snprintf(p, sizeof p, "/dev/%s", de->d_name);
            int fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
            if (fd >= 0) {
                closedir(d);
                return fd;
            }
        }
        if (d)
            closedir(d);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    die("virtio-serial port airlock.agent not found");
}

int pid1_boot(void)
{
    umask(022);
    mkdirp("/dev", 0755);
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY)
        dprintf(2, "airlock-init: mount devtmpfs: %s\n", strerror(errno));
    int con = open("/dev/console", O_RDWR | O_NOCTTY);
    if (con >= 0) {
        dup2(con, 0);
        dup2(con, 1);
        dup2(con, 2);
        if (con > 2)
            close(con);
    }
    dprintf(2, "airlock-init: v1 %s\n", AIRLOCK_VERSION);
    must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

    char cmdline[4096], root[128], layer[128], host[65];
    read_small("/proc/cmdline", cmdline, sizeof cmdline);
    if (cmdline_get(cmdline, "airlock.root", root, sizeof root))
        switch_root(root, layer, cmdline_get(cmdline, "airlock.layer", layer, sizeof layer));

    try_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5");
    unlink("/dev/ptmx");
    if (symlink("pts/ptmx", "/dev/ptmx") < 0)
        logmsg("/dev/ptmx: %s", strerror(errno));
    try_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    try_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    if (cmdline_get(cmdline, "airlock.hostname", host, sizeof host))
        sethostname(host, strlen(host));
    loopback_up();
    nat_up();
    command_cgroup(cmdline);
    return open_agent_port();
}

void pid1_ready(void)
{
    char up[64];
    read_small("/proc/uptime", up, sizeof up);
    up[strcspn(up, " \n")] = 0;
    dprintf(2, "airlock-init: ready %s\n", up);
}

static void term_group(pid_t pid) { kill(-pid, SIGTERM); }
static void kill_group(pid_t pid) { kill(-pid, SIGKILL); }

/* Waits until no children remain or the deadline passes; reaps as it goes. */
static void reap_for(int ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t r;
        while ((r = waitpid(-1, NULL, WNOHANG)) > 0) {
        }
        if (r < 0 && errno == ECHILD)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (el >= ms)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void shutdown_everything(void)
{
    if (!g_pid1) {
        for_each_process(term_group);
        reap_for(2000);
        for_each_process(kill_group);
        reap_for(500);
        exit(0);
    }
    logmsg("shutting down");
    kill(-1, SIGTERM);
    reap_for(2000);
    kill(-1, SIGKILL);
    reap_for(1000);
    sync();
    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
    if (g_have_layer && g_oldroot >= 0 && fchdir(g_oldroot) == 0) {
        /* the layer is only reachable through the old root, relative to it */
        if (mount(NULL, "mnt/layer", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
            logmsg("remount layer read-only: %s", strerror(errno));
    }
    power_off();
}
