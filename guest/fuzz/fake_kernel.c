/* The fuzz build's fake kernel (see fake_kernel.h). Calls the agent makes land here under a
 * fake_ prefix; this file itself calls the real libc. It models just enough to walk every path
 * of the agent deterministically:
 *   - the host connection: reads hand out the fuzz input in varying chunks with EAGAIN between
 *     them; writes are parsed as frames and must be well formed (anything else aborts);
 *   - epoll: level-triggered, every registered descriptor is always ready;
 *   - processes: fork returns a made-up pid (never a child), waitpid reaps them in order, kill
 *     checks that only those pids' groups are signalled;
 *   - files: a small in-memory tree (reset for every input); opened files are memfds;
 *   - sockets: socketpairs whose far end says a few bytes and half-closes; bind/connect outcomes
 *     follow from the port number;
 *   - identity: entropy, clock and hostname calls are checked and dropped.
 * Everything else (pipes, signalfd, memfd) is the real thing inside this process. */
#include "fake_kernel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD 4096
#define MAX_NODES 64
#define MAX_PIDS 1024
#define MAX_EPOLL_ROUNDS 200000
#define FIRST_PID 20000
#define DRAIN_ROUNDS 16

__attribute__((noreturn, format(printf, 1, 2))) static void bug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake kernel: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

/* ---- descriptors ---- */

enum kind { K_NONE, K_CONN, K_LISTEN, K_PORT, K_EPOLL, K_DIR, K_URANDOM, K_SOCK, K_SOCKLISTEN, K_PTY, K_TIMER };

struct fdinfo {
    enum kind kind;
    int peer;      /* K_SOCK: the far end of the socketpair, or -1 */
    uint16_t port; /* K_SOCK, K_SOCKLISTEN */
    char *path;    /* K_DIR */
    uint64_t timer_ms;
    int accepts; /* K_SOCKLISTEN: connections handed out; K_PTY: reads so far */
};

struct reg {
    int on;
    uint32_t events;
    uint64_t data;
};

static struct fdinfo fds[MAX_FD];
static struct reg regs[MAX_FD];

static struct {
    const uint8_t *in;
    size_t size, pos;
    int port_mode;
    int input_done;    /* the host is gone: EOF was read, or the agent closed the connection */
    int accepted;      /* the one connection of this run was accepted (socket mode) */
    int listen_fd, port_fd;
    uint32_t rng;
    int eagain_next;
    int drain;
    unsigned writes;
    long rounds;
    int fd_baseline;
    void (*leave)(void);
    /* the frame parser over what the agent sends */
    uint8_t hdr[12];
    size_t hlen, skip;
} st;

/* Highest descriptor number seen so far: scans stop a margin above it (descriptors are handed
 * out lowest first, so one the fake never saw is still below it). */
static int max_fd_seen = 64;

static void saw(int fd)
{
    if (fd > max_fd_seen)
        max_fd_seen = fd;
}

static struct fdinfo *info(int fd)
{
    if (fd < 0 || fd >= MAX_FD)
        bug("descriptor %d out of the fake's range", fd);
    return &fds[fd];
}

static int track(int fd, enum kind kind)
{
    if (fd < 0)
        return fd;
    struct fdinfo *f = info(fd);
    saw(fd);
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->peer = -1;
    return fd;
}

static int null_fd(enum kind kind) { return track(open("/dev/null", O_RDWR | O_CLOEXEC), kind); }

static uint32_t next_rand(void)
{
    st.rng = st.rng * 1103515245u + 12345u;
    return st.rng >> 16;
}

static int count_open_fds(void)
{
    int n = 0;
    int end = max_fd_seen + 64 < MAX_FD ? max_fd_seen + 64 : MAX_FD;
    for (int fd = 0; fd < end; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* ---- the in-memory tree ---- */

struct node {
    int used;
    char type; /* f file, d directory, l symlink, o other */
    char *path;
    char *data; /* file contents or link target */
    size_t len;
    uint32_t mode;
};

static struct node nodes[MAX_NODES];
static unsigned tmp_counter;

static void node_free(struct node *n)
{
    free(n->path);
    free(n->data);
    memset(n, 0, sizeof *n);
}

/* Lexical normalisation: the tree is fake, so ".." cannot escape anything. */
static int norm(const char *in, char *out, size_t cap)
{
    if (in[0] != '/') {
        errno = ENOENT; /* the agent only ever uses absolute paths */
        return -1;
    }
    size_t len = 0;
    const char *p = in;
    while (*p) {
        while (*p == '/')
            p++;
        const char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t sl = (size_t)(p - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.'))
            continue;
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            continue;
        }
        if (len + 1 + sl + 1 > cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        out[len++] = '/';
        memcpy(out + len, seg, sl);
        len += sl;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = 0;
    return 0;
}

static struct node *find(const char *path)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].used && strcmp(nodes[i].path, path) == 0)
            return &nodes[i];
    return NULL;
}

static int parent_is_dir(const char *path)
{
    char parent[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t pl = slash == path ? 1 : (size_t)(slash - path);
    memcpy(parent, path, pl);
    parent[pl] = 0;
    struct node *p = find(parent);
    return p && p->type == 'd';
}

static struct node *add(const char *path, char type, const char *data, uint32_t mode)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (!nodes[i].used) {
            struct node *n = &nodes[i];
            n->used = 1;
            n->type = type;
            n->path = strdup(path);
            n->data = strdup(data ? data : "");
            n->len = strlen(n->data);
            n->mode = mode;
            if (!n->path || !n->data)
                bug("out of memory");
            return n;
        }
    errno = ENOSPC;
    return NULL;
}

static void tree_reset(void)
{
    for (int i = 0; i < MAX_NODES; i++)
        if (nodes[i].used)
            node_free(&nodes[i]);
    static const struct {
        const char *path;
        char type;
        const char *data;
    } initial[] = {
        {"/", 'd', NULL},
        {"/etc", 'd', NULL},
        {"/etc/passwd", 'f',
         "root:x:0:0:root:/root:/bin/sh\nairlock:x:1000:1000::/home/airlock:/bin/sh\n"
         "broken line\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
        {"/etc/group", 'f', "root:x:0:\nwheel:x:10:airlock,root\nusers:x:100:airlock\n"},
        {"/home", 'd', NULL},
        {"/home/airlock", 'd', NULL},
        {"/root", 'd', NULL},
        {"/tmp", 'd', NULL},
        {"/tmp/f", 'f', "hello\n"},
        {"/tmp/d", 'd', NULL},
        {"/tmp/d/x", 'f', "x"},
        {"/tmp/link", 'l', "f"},
        {"/tmp/abs", 'l', "/etc/passwd"},
        {"/tmp/loop", 'l', "/tmp/loop"},
        {"/tmp/dangling", 'l', "missing"},
        {"/tmp/fifo", 'o', NULL},
        {"/proc", 'd', NULL},
        {"/proc/vmstat", 'f', "pgfault 1\noom_kill 3\n"},
    };
    for (size_t i = 0; i < sizeof initial / sizeof initial[0]; i++)
        add(initial[i].path, initial[i].type, initial[i].data, initial[i].type == 'd' ? 0755 : 0644);
    tmp_counter = 0;
}

/* Resolves a path, following final symlinks when asked. */
static struct node *lookup(const char *path, int follow, char *resolved)
{
    char cur[PATH_MAX];
    if (norm(path, cur, sizeof cur) < 0)
        return NULL;
    for (int hops = 0; hops < 8; hops++) {
        struct node *n = find(cur);
        if (!n) {
            errno = ENOENT;
            return NULL;
        }
        if (n->type != 'l' || !follow) {
            if (resolved)
                strcpy(resolved, cur);
            return n;
        }
        char next[PATH_MAX * 2];
        if (n->data[0] == '/') {
            snprintf(next, sizeof next, "%s", n->data);
        } else {
            char *slash = strrchr(cur, '/');
            snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, n->data);
        }
        if (norm(next, cur, sizeof cur) < 0)
            return NULL;
    }
    errno = ELOOP;
    return NULL;
}

static void fill_stat(const struct node *n, struct stat *s)
{
    memset(s, 0, sizeof *s);
    uint32_t type = n->type == 'd' ? S_IFDIR : n->type == 'l' ? S_IFLNK : n->type == 'o' ? S_IFIFO : S_IFREG;
    s->st_mode = type | (n->mode & 07777);
    s->st_size = (off_t)n->len;
    s->st_nlink = 1;
    s->st_mtim.tv_sec = 1700000000;
    s->st_mtim.tv_nsec = 123456789;
}

static int memfd_with(const char *data, size_t len)
{
    int fd = memfd_create("fake-file", MFD_CLOEXEC);
    if (fd < 0)
        bug("memfd_create: %s", strerror(errno));
    if (len && write(fd, data, len) != (ssize_t)len)
        bug("memfd write: %s", strerror(errno));
    lseek(fd, 0, SEEK_SET);
    return track(fd, K_NONE);
}

/* ---- the run ---- */

void fake_set_exit(void (*leave)(void))
{
    st.leave = leave;
    for (int fd = 0; fd < MAX_FD; fd++)
        fds[fd].peer = -1;
}

void fake_begin(const uint8_t *input, size_t size, int port_mode)
{
    st.fd_baseline = count_open_fds();
    st.in = input;
    st.size = size;
    st.pos = 0;
    st.port_mode = port_mode;
    st.input_done = 0;
    st.accepted = 0;
    st.rng = (uint32_t)size * 2654435761u + (uint32_t)port_mode;
    st.eagain_next = 0;
    st.drain = 0;
    st.writes = 0;
    st.rounds = 0;
    st.hlen = st.skip = 0;
    st.listen_fd = port_mode ? -1 : null_fd(K_LISTEN);
    st.port_fd = port_mode ? null_fd(K_PORT) : -1;
    tree_reset();
}

int fake_listen_fd(void) { return st.listen_fd; }
int fake_port_fd(void) { return st.port_fd; }

int fake_close(int fd);

static int pids_issued, pids_reaped;

void fake_end(void)
{
    if (st.listen_fd >= 0)
        fake_close(st.listen_fd);
    if (st.port_fd >= 0)
        fake_close(st.port_fd);
    st.listen_fd = st.port_fd = -1;
    for (int fd = 0; fd <= max_fd_seen; fd++)
        if (regs[fd].on)
            bug("descriptor %d is still registered in epoll after the run", fd);
    int now = count_open_fds();
    if (now != st.fd_baseline)
        bug("the agent leaked %d descriptors in this run", now - st.fd_baseline);
    pids_issued = pids_reaped = 0;
}

/* ---- connection ---- */

static void check_header(const uint8_t *h)
{
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    uint8_t type = h[4], flags = h[5];
    uint32_t id = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
    if (len > 65536)
        bug("agent sent a frame of %u bytes (type 0x%02x)", len, type);
    if (h[6] || h[7])
        bug("agent set reserved header bits (type 0x%02x)", type);
    if (flags & ~1u)
        bug("agent set unknown flags 0x%02x (type 0x%02x)", flags, type);
    uint32_t min = 0, max = 65536;
    int session = 0, any = 0;
    switch (type) {
    case 0x81: min = 8; session = 1; break;      /* HELLO */
    case 0x82: max = 64; session = 1; break;     /* PONG */
    case 0x83: min = 4; break;                   /* STARTED */
    case 0x84: case 0x85: case 0x88: case 0x90: case 0x91: break;
    case 0x86: min = 9; break;                   /* EXIT */
    case 0x87: min = 4; break;                   /* CREDIT */
    case 0x9F: min = 8; break;                   /* END */
    case 0xE0: min = 4; any = 1; break;          /* ERROR */
    default: bug("agent sent frame type 0x%02x, which the host rejects", type);
    }
    if (len < min || len > max)
        bug("agent sent type 0x%02x with a %u-byte payload (allowed %u..%u)", type, len, min, max);
    if (!any && session != (id == 0))
        bug("agent sent type 0x%02x on stream %u", type, id);
    if (getenv("AIRLOCK_FUZZ_LOG"))
        fprintf(stderr, "fake kernel: agent sent type 0x%02x, stream %u, %u bytes\n", type, id, len);
}

/* What the agent writes to the host must parse as frames the host accepts. */
static void check_output(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (st.skip) {
            size_t k = n - i < st.skip ? n - i : st.skip;
            st.skip -= k;
            i += k;
            continue;
        }
        st.hdr[st.hlen++] = p[i++];
        if (st.hlen == sizeof st.hdr) {
            check_header(st.hdr);
            st.skip = (size_t)st.hdr[0] << 24 | (size_t)st.hdr[1] << 16 | (size_t)st.hdr[2] << 8 | st.hdr[3];
            st.hlen = 0;
        }
    }
}

static ssize_t conn_read(void *buf, size_t cap)
{
    if (st.eagain_next) {
        st.eagain_next = 0;
        errno = EAGAIN;
        return -1;
    }
    if (st.pos == st.size && st.drain < DRAIN_ROUNDS) {
        /* the host has sent everything but stays connected a little: what the agent has to
         * say (EXIT, DATA, CONNECTED...) goes out before the hang-up */
        st.drain++;
        errno = EAGAIN;
        return -1;
    }
    if (st.pos == st.size) {
        st.input_done = 1;
        return 0;
    }
    static const size_t chunks[] = {1, 5, 12, 13, 100, 4096, 65548, 1u << 20};
    size_t n = chunks[next_rand() % (sizeof chunks / sizeof chunks[0])];
    if (n > cap)
        n = cap;
    if (n > st.size - st.pos)
        n = st.size - st.pos;
    memcpy(buf, st.in + st.pos, n);
    st.pos += n;
    st.eagain_next = next_rand() % 2;
    return (ssize_t)n;
}

static ssize_t conn_write(const void *buf, size_t n)
{
    if (++st.writes % 5 == 0) {
        errno = EAGAIN;
        return -1;
    }
    static const size_t chunks[] = {1, 7, 100, 65536, (size_t)-1};
    size_t k = chunks[next_rand() % (sizeof chunks / sizeof chunks[0])];
    if (k > n)
        k = n;
    check_output(buf, k);
    return (ssize_t)k;
}

/* ---- system calls ---- */

ssize_t fake_read(int fd, void *buf, size_t n)
{
    struct fdinfo *f = info(fd);
    switch (f->kind) {
    case K_CONN:
    case K_PORT:
        return conn_read(buf, n);
    case K_TIMER:
        if (f->timer_ms && f->timer_ms < 1000 && n >= 8) {
            uint64_t one = 1;
            memcpy(buf, &one, 8);
            f->timer_ms = 0;
            return 8;
        }
        errno = EAGAIN;
        return -1;
    case K_LISTEN:
    case K_EPOLL:
    case K_SOCKLISTEN:
    case K_DIR:
        errno = EISDIR;
        return -1;
    case K_PTY:
        /* a terminal says a prompt, then EIO once the (imaginary) process has gone */
        if (!f->accepts++ && n >= 2) {
            memcpy(buf, "$ ", 2);
            return 2;
        }
        errno = EIO;
        return -1;
    default:
        return read(fd, buf, n);
    }
}

ssize_t fake_write(int fd, const void *buf, size_t n)
{
    struct fdinfo *f = info(fd);
    if (f->kind == K_CONN || f->kind == K_PORT)
        return conn_write(buf, n);
    if (f->kind == K_URANDOM)
        bug("the agent wrote to /dev/urandom instead of using RNDADDENTROPY");
    return write(fd, buf, n);
}

ssize_t fake_send(int fd, const void *buf, size_t n, int flags)
{
    if (info(fd)->kind == K_CONN)
        return conn_write(buf, n);
    return send(fd, buf, n, flags);
}

int fake_close(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    struct fdinfo *f = info(fd);
    saw(fd);
    if (f->kind == K_CONN || (f->kind == K_PORT && st.port_fd != fd))
        st.input_done = 1;
    if (f->peer >= 0)
        close(f->peer);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->peer = -1;
    regs[fd].on = 0;
    return close(fd);
}

int fake_open(const char *path, int flags, ...)
{
    if (strcmp(path, "/dev/null") == 0)
        return track(open("/dev/null", flags), K_NONE);
    if (strcmp(path, "/dev/urandom") == 0) {
        if ((flags & O_ACCMODE) != O_WRONLY)
            bug("the agent opened /dev/urandom for reading");
        return null_fd(K_URANDOM);
    }
    char resolved[PATH_MAX];
    struct node *n = lookup(path, !(flags & O_NOFOLLOW), resolved);
    if (!n) {
        if (errno != ENOENT || !(flags & O_CREAT))
            return -1;
        if (norm(path, resolved, sizeof resolved) < 0)
            return -1;
        if (!parent_is_dir(resolved)) {
            errno = ENOENT;
            return -1;
        }
        if (!(n = add(resolved, 'f', NULL, 0644)))
            return -1;
    }
    if ((flags & O_DIRECTORY) && n->type != 'd') {
        errno = ENOTDIR;
        return -1;
    }
    if (n->type == 'd') {
        if ((flags & O_ACCMODE) != O_RDONLY) {
            errno = EISDIR;
            return -1;
        }
        int fd = null_fd(K_DIR);
        fds[fd].path = strdup(resolved);
        return fd;
    }
    if (n->type == 'o') /* a FIFO: readable descriptor that never has data */
        return track(open("/dev/null", O_RDONLY | O_CLOEXEC), K_NONE);
    if (flags & O_TRUNC) {
        free(n->data);
        n->data = strdup("");
        n->len = 0;
    }
    return memfd_with(n->data, n->len);
}

int fake_fstat(int fd, struct stat *s)
{
    struct fdinfo *f = info(fd);
    if (f->kind == K_DIR) {
        memset(s, 0, sizeof *s);
        s->st_mode = S_IFDIR | 0755;
        return 0;
    }
    return fstat(fd, s);
}

int fake_stat(const char *path, struct stat *s)
{
    struct node *n = lookup(path, 1, NULL);
    if (!n)
        return -1;
    fill_stat(n, s);
    return 0;
}

int fake_lstat(const char *path, struct stat *s)
{
    struct node *n = lookup(path, 0, NULL);
    if (!n)
        return -1;
    fill_stat(n, s);
    return 0;
}

int fake_fstatat(int dirfd, const char *name, struct stat *s, int flags)
{
    struct fdinfo *f = info(dirfd);
    if (f->kind != K_DIR) {
        errno = ENOTDIR;
        return -1;
    }
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", f->path, name);
    struct node *n = lookup(path, !(flags & AT_SYMLINK_NOFOLLOW), NULL);
    if (!n)
        return -1;
    fill_stat(n, s);
    return 0;
}

int fake_mkdir(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    if (norm(path, p, sizeof p) < 0)
        return -1;
    if (find(p)) {
        errno = EEXIST;
        return -1;
    }
    if (!parent_is_dir(p)) {
        errno = ENOENT;
        return -1;
    }
    return add(p, 'd', NULL, mode) ? 0 : -1;
}

int fake_mkostemp(char *tmpl, int flags)
{
    (void)flags;
    size_t len = strlen(tmpl);
    if (len < 6 || strcmp(tmpl + len - 6, "XXXXXX") != 0) {
        errno = EINVAL;
        return -1;
    }
    char digits[16];
    snprintf(digits, sizeof digits, "%06u", tmp_counter++ % 1000000u);
    memcpy(tmpl + len - 6, digits, 6);
    char p[PATH_MAX];
    if (norm(tmpl, p, sizeof p) < 0)
        return -1;
    if (!parent_is_dir(p)) {
        errno = ENOENT;
        return -1;
    }
    if (find(p)) {
        errno = EEXIST;
        return -1;
    }
    if (!add(p, 'f', NULL, 0600))
        return -1;
    return memfd_with("", 0);
}

int fake_rename(const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (norm(from, a, sizeof a) < 0 || norm(to, b, sizeof b) < 0)
        return -1;
    struct node *n = find(a);
    if (!n) {
        errno = ENOENT;
        return -1;
    }
    if (!parent_is_dir(b)) {
        errno = ENOENT;
        return -1;
    }
    struct node *old = find(b);
    if (old == n)
        return 0;
    if (old && old->type == 'd') {
        errno = EISDIR;
        return -1;
    }
    if (old)
        node_free(old);
    char *np = strdup(b);
    if (!np)
        bug("out of memory");
    free(n->path);
    n->path = np;
    return 0;
}

int fake_unlink(const char *path)
{
    char p[PATH_MAX];
    if (norm(path, p, sizeof p) < 0)
        return -1;
    struct node *n = find(p);
    if (!n) {
        errno = ENOENT;
        return -1;
    }
    if (n->type == 'd') {
        errno = EISDIR;
        return -1;
    }
    node_free(n);
    return 0;
}

int fake_rmdir(const char *path)
{
    char p[PATH_MAX];
    if (norm(path, p, sizeof p) < 0)
        return -1;
    struct node *n = find(p);
    if (!n) {
        errno = ENOENT;
        return -1;
    }
    if (n->type != 'd') {
        errno = ENOTDIR;
        return -1;
    }
    size_t len = strlen(p);
    for (int i = 0; i < MAX_NODES; i++) {
        struct node *c = &nodes[i];
        if (c->used && c != n && !strncmp(c->path, p, len) && (len == 1 || c->path[len] == '/')) {
            errno = ENOTEMPTY;
            return -1;
        }
    }
    node_free(n);
    return 0;
}

ssize_t fake_readlink(const char *path, char *buf, size_t cap)
{
    struct node *n = lookup(path, 0, NULL);
    if (!n)
        return -1;
    if (n->type != 'l') {
        errno = EINVAL;
        return -1;
    }
    size_t k = n->len < cap ? n->len : cap;
    memcpy(buf, n->data, k);
    return (ssize_t)k;
}

int fake_fchmod(int fd, mode_t mode)
{
    (void)mode;
    return fcntl(fd, F_GETFD) < 0 ? -1 : 0;
}

struct fake_dir {
    int fd;
    int next; /* -2 ".", -1 "..", then node indexes */
    struct dirent de;
};

DIR *fake_fdopendir(int fd)
{
    if (info(fd)->kind != K_DIR) {
        errno = ENOTDIR;
        return NULL;
    }
    struct fake_dir *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->fd = fd;
    d->next = -2;
    return (DIR *)d;
}

struct dirent *fake_readdir(DIR *dir)
{
    struct fake_dir *d = (struct fake_dir *)dir;
    const char *base = fds[d->fd].path;
    size_t bl = strcmp(base, "/") == 0 ? 0 : strlen(base);
    if (d->next < 0) {
        snprintf(d->de.d_name, sizeof d->de.d_name, "%s", d->next == -2 ? "." : "..");
        d->next++;
        return &d->de;
    }
    for (; d->next < MAX_NODES; d->next++) {
        struct node *n = &nodes[d->next];
        if (!n->used || strncmp(n->path, base, bl) != 0 || n->path[bl] != '/' || !n->path[bl + 1] ||
            strchr(n->path + bl + 1, '/'))
            continue;
        snprintf(d->de.d_name, sizeof d->de.d_name, "%s", n->path + bl + 1);
        d->next++;
        return &d->de;
    }
    return NULL;
}

int fake_closedir(DIR *dir)
{
    struct fake_dir *d = (struct fake_dir *)dir;
    int r = fake_close(d->fd);
    free(d);
    return r;
}

int fake_dirfd(DIR *dir) { return ((struct fake_dir *)dir)->fd; }

/* processes */

static int pids[MAX_PIDS];

/* Pipes made since the last fork: for a command on pipes, stdout, stderr, maybe stdin, and last
 * the start-status pipe (exec.c's struct start_err); for one on a pty, the status pipe alone. */
static int recent_pipes[8][2];
static int n_recent_pipes;

int fake_pipe2(int p[2], int flags)
{
    int r = pipe2(p, flags);
    if (r == 0) {
        saw(p[0]);
        saw(p[1]);
        if (n_recent_pipes < 8) {
            recent_pipes[n_recent_pipes][0] = p[0];
            recent_pipes[n_recent_pipes][1] = p[1];
            n_recent_pipes++;
        }
    }
    return r;
}

static void fill(int fd, size_t n, char c)
{
    static char buf[60000];
    memset(buf, c, n);
    if (write(fd, buf, n) != (ssize_t)n)
        bug("pipe write: %s", strerror(errno));
}

/* Plays the child's part without a child: every sixth one fails to start (reporting through the
 * status pipe as exec.c's child_fail does), the others write some output and exit at once. */
static void act_as_child(int k)
{
    int n = n_recent_pipes;
    n_recent_pipes = 0;
    if (n == 0)
        return;
    if (k % 6 == 5) {
        struct {
            int stage, err;
        } e = {k % 4, k % 12 == 5 ? ENOENT : EACCES};
        if (write(recent_pipes[n - 1][1], &e, sizeof e) != (ssize_t)sizeof e)
            bug("status pipe write: %s", strerror(errno));
        return;
    }
    if (n >= 3) {
        fill(recent_pipes[0][1], k % 3 == 0 ? 60000 : 100, 'o');
        fill(recent_pipes[1][1], 10, 'e');
    }
}

pid_t fake_fork(void);

/* The agent vforks a command: the same made-up pid, and the child's code never runs. */
pid_t fake_vfork(void) { return fake_fork(); }

pid_t fake_fork(void)
{
    if (pids_issued >= MAX_PIDS) {
        n_recent_pipes = 0;
        errno = EAGAIN;
        return -1;
    }
    if (pids_issued % 8 == 7) {
        pids[pids_issued++] = 0; /* no child, nothing to reap */
        n_recent_pipes = 0;
        errno = EAGAIN;
        return -1;
    }
    pid_t pid = FIRST_PID + pids_issued;
    act_as_child(pids_issued);
    pids[pids_issued++] = pid;
    return pid;
}

pid_t fake_waitpid(pid_t pid, int *status, int options)
{
    (void)options;
    if (pid > 0) { /* the child that failed to start */
        for (int i = pids_reaped; i < pids_issued; i++)
            if (pids[i] == pid) {
                pids[i] = 0;
                if (status)
                    *status = 127 << 8;
                return pid;
            }
        bug("waitpid(%d): not a pid the agent started, or already reaped", pid);
    }
    if (pid != -1)
        bug("waitpid(%d)", pid);
    while (pids_reaped < pids_issued && pids[pids_reaped] == 0)
        pids_reaped++;
    if (pids_reaped == pids_issued) {
        errno = ECHILD;
        return -1;
    }
    int k = pids_reaped;
    pid_t got = pids[pids_reaped++];
    if (status)
        *status = k % 5 == 4 ? 9 /* killed by SIGKILL */ : (k % 3) << 8;
    return got;
}

int fake_kill(pid_t pid, int sig)
{
    pid_t target = pid < 0 ? -pid : pid;
    if (pid == 0 || pid == -1 || target == 1 || target < FIRST_PID || target >= FIRST_PID + pids_issued)
        bug("kill(%d, %d): a pid the agent did not start", pid, sig);
    if (sig < 0 || sig > 64) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

__attribute__((noreturn)) static void child_only(const char *what)
{
    bug("%s reached: fork never returns 0 here, so this is the parent running child code", what);
}

int fake_execve(const char *p, char *const a[], char *const e[])
{
    (void)p, (void)a, (void)e;
    child_only("execve");
}
pid_t fake_setsid(void) { child_only("setsid"); }
int fake_setgroups(size_t n, const gid_t *g)
{
    (void)n, (void)g;
    child_only("setgroups");
}
int fake_setgid(gid_t g)
{
    (void)g;
    child_only("setgid");
}
int fake_setuid(uid_t u)
{
    (void)u;
    child_only("setuid");
}
int fake_chdir(const char *p)
{
    (void)p;
    child_only("chdir");
}
int fake_dup2(int a, int b)
{
    (void)a, (void)b;
    child_only("dup2");
}
mode_t fake_umask(mode_t m)
{
    (void)m;
    child_only("umask");
}
void fake__exit(int code)
{
    (void)code;
    child_only("_exit");
}

/* event loop */

int fake_epoll_create1(int flags)
{
    (void)flags;
    return null_fd(K_EPOLL);
}

int fake_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
    if (info(ep)->kind != K_EPOLL || fd < 0 || fd >= MAX_FD || fcntl(fd, F_GETFD) < 0) {
        errno = EBADF;
        return -1;
    }
    struct reg *r = &regs[fd];
    saw(fd);
    switch (op) {
    case EPOLL_CTL_ADD:
        if (r->on) {
            errno = EEXIST;
            return -1;
        }
        r->on = 1;
        r->events = ev->events;
        r->data = ev->data.u64;
        return 0;
    case EPOLL_CTL_MOD:
        if (!r->on) {
            errno = ENOENT;
            return -1;
        }
        r->events = ev->events;
        r->data = ev->data.u64;
        return 0;
    case EPOLL_CTL_DEL:
        if (!r->on) {
            errno = ENOENT;
            return -1;
        }
        r->on = 0;
        return 0;
    }
    errno = EINVAL;
    return -1;
}

int fake_epoll_wait(int ep, struct epoll_event *evs, int max, int timeout)
{
    (void)timeout;
    if (info(ep)->kind != K_EPOLL)
        bug("epoll_wait on descriptor %d", ep);
    if (st.input_done && fuzz_session_idle())
        st.leave();
    if (++st.rounds > MAX_EPOLL_ROUNDS)
        bug("the agent's loop went round %d times without settling", MAX_EPOLL_ROUNDS);
    int n = 0, span = max_fd_seen + 1;
    int start = (int)(next_rand() % (unsigned)span);
    for (int i = 0; i < span && n < max; i++) {
        int fd = (start + i) % span;
        struct reg *r = &regs[fd];
        if (!r->on)
            continue;
        uint32_t ready = r->events & (EPOLLIN | EPOLLOUT);
        struct fdinfo *f = &fds[fd];
        if (f->kind == K_LISTEN && st.accepted)
            ready &= ~EPOLLIN;
        if ((f->kind == K_CONN || f->kind == K_PORT) && st.input_done)
            ready |= r->events & EPOLLRDHUP;
        if (f->kind == K_SOCKLISTEN && f->accepts >= 4)
            ready &= ~EPOLLIN;
        if (!ready)
            continue;
        evs[n].events = ready;
        evs[n].data.u64 = r->data;
        n++;
    }
    return n;
}

int fake_poll(struct pollfd *p, nfds_t n, int timeout)
{
    (void)timeout;
    if (n != 1 || info(p[0].fd)->kind != K_PORT)
        bug("poll is only expected on the virtio port");
    p[0].revents = st.input_done ? POLLHUP : POLLIN;
    return 1;
}

int fake_timerfd_create(int clock, int flags)
{
    (void)clock, (void)flags;
    return null_fd(K_TIMER);
}

int fake_timerfd_settime(int fd, int flags, const struct itimerspec *its, struct itimerspec *old)
{
    (void)flags, (void)old;
    struct fdinfo *f = info(fd);
    if (f->kind != K_TIMER)
        bug("timerfd_settime on descriptor %d", fd);
    if (its->it_value.tv_nsec < 0 || its->it_value.tv_nsec >= 1000000000L || its->it_value.tv_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    f->timer_ms = (uint64_t)its->it_value.tv_sec * 1000 + (uint64_t)its->it_value.tv_nsec / 1000000;
    return 0;
}

/* sockets */

static int sock_pair(enum kind kind, uint16_t port, int talk)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
        bug("socketpair: %s", strerror(errno));
    track(sv[0], kind);
    fds[sv[0]].peer = sv[1];
    fds[sv[0]].port = port;
    if (talk) {
        static const char hello[] = "GET / HTTP/1.0\r\n\r\n";
        if (write(sv[1], hello, sizeof hello - 1) < 0)
            bug("socketpair write: %s", strerror(errno));
        shutdown(sv[1], SHUT_WR);
    }
    return sv[0];
}

int fake_socket(int domain, int type, int proto)
{
    (void)type, (void)proto;
    if (domain != AF_INET)
        bug("socket domain %d", domain);
    return sock_pair(K_SOCK, 0, 0);
}

static uint16_t sa_port(const struct sockaddr *sa, socklen_t len)
{
    if (len < sizeof(struct sockaddr_in) || sa->sa_family != AF_INET)
        bug("socket address is not AF_INET");
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    if (in->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
        bug("socket address is not loopback");
    return ntohs(in->sin_port);
}

int fake_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    uint16_t port = sa_port(sa, len);
    if (port < 1024) {
        errno = EACCES;
        return -1;
    }
    info(fd)->port = port;
    return 0;
}

int fake_listen(int fd, int backlog)
{
    (void)backlog;
    struct fdinfo *f = info(fd);
    if (f->kind != K_SOCK)
        bug("listen on descriptor %d", fd);
    f->kind = K_SOCKLISTEN;
    close(f->peer);
    f->peer = -1;
    return 0;
}

int fake_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    uint16_t port = sa_port(sa, len);
    struct fdinfo *f = info(fd);
    f->port = port;
    switch (port % 3) {
    case 0:
        if (write(f->peer, "hi", 2) < 0)
            bug("socketpair write: %s", strerror(errno));
        shutdown(f->peer, SHUT_WR);
        return 0;
    case 1:
        errno = EINPROGRESS;
        return -1;
    default:
        errno = ECONNREFUSED;
        return -1;
    }
}

int fake_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
    struct fdinfo *f = info(fd);
    if (level == SOL_SOCKET && name == SO_ERROR && *len >= sizeof(int)) {
        int err = f->port % 7 == 1 ? ECONNREFUSED : 0;
        memcpy(val, &err, sizeof err);
        *len = sizeof err;
        return 0;
    }
    return getsockopt(fd, level, name, val, len);
}

int fake_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    (void)level, (void)name, (void)val, (void)len;
    return fcntl(fd, F_GETFD) < 0 ? -1 : 0;
}

int fake_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
    (void)sa, (void)len, (void)flags;
    struct fdinfo *f = info(fd);
    if (f->kind == K_LISTEN) {
        if (st.accepted) {
            errno = EAGAIN;
            return -1;
        }
        st.accepted = 1;
        st.hlen = st.skip = 0;
        return null_fd(K_CONN);
    }
    if (f->kind == K_SOCKLISTEN && f->accepts < 4) {
        f->accepts++;
        return sock_pair(K_SOCK, f->port, 1);
    }
    errno = EAGAIN;
    return -1;
}

/* terminals, identity, logging */

int fake_posix_openpt(int flags)
{
    (void)flags;
    return null_fd(K_PTY);
}
int fake_grantpt(int fd) { return info(fd)->kind == K_PTY ? 0 : -1; }
int fake_unlockpt(int fd) { return info(fd)->kind == K_PTY ? 0 : -1; }
int fake_ptsname_r(int fd, char *buf, size_t len)
{
    (void)fd, (void)buf, (void)len;
    return ENOTTY;
}

int fake_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    struct fdinfo *f = info(fd);
    switch (req) {
    case TIOCSWINSZ:
        if (f->kind != K_PTY)
            bug("TIOCSWINSZ on a descriptor that is no pty master");
        return 0;
    case TIOCGPTPEER:
        if (f->kind != K_PTY)
            bug("TIOCGPTPEER on a descriptor that is no pty master");
        return null_fd(K_NONE);
    case RNDADDENTROPY: {
        const struct rand_pool_info *r = arg;
        if (f->kind != K_URANDOM)
            bug("RNDADDENTROPY on a descriptor that is not /dev/urandom");
        if (r->buf_size <= 0 || r->buf_size > 512 || r->entropy_count != r->buf_size * 8)
            bug("RNDADDENTROPY with buf_size %d, entropy_count %d", r->buf_size, r->entropy_count);
        return 0;
    }
    case RNDRESEEDCRNG:
        if (f->kind != K_URANDOM)
            bug("RNDRESEEDCRNG on a descriptor that is not /dev/urandom");
        return 0;
    }
    errno = ENOTTY;
    return -1;
}

int fake_sethostname(const char *name, size_t len)
{
    if (len > 64 || memchr(name, 0, len)) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int fake_clock_settime(clockid_t clock, const struct timespec *ts)
{
    if (clock != CLOCK_REALTIME || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int fake_dprintf(int fd, const char *fmt, ...)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("AIRLOCK_FUZZ_LOG") != NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = verbose ? vdprintf(fd, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    return n;
}
