/* Test client for airlock-init --serve-unix: speaks protocol v1 and checks the agent's
 * behaviour case by case. Usage: client SOCKET TEST... (or "all"). Exits non-zero on failure. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../src/frame.h"

static const char *g_sock;
static int g_fd = -1;
static const char *g_test;
static uint8_t g_pl[MAX_PAYLOAD + 1];

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "FAIL [%s] line %d: ", g_test, __LINE__);                                  \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c))                                                                                  \
            FAIL(__VA_ARGS__);                                                                     \
    } while (0)

static int dial(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", g_sock);
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
        close(fd);
        usleep(20000);
    }
    FAIL("cannot connect to %s", g_sock);
}

static int g_lenient; /* the agent may hang up mid-write when it rejects our input */
static void write_all(const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(g_fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && g_lenient)
            return;
        CHECK(w > 0, "write: %s", strerror(errno));
        b += w;
        n -= (size_t)w;
    }
}

static void sendf(uint8_t type, uint8_t flags, uint32_t id, const void *p, size_t n)
{
    uint8_t h[HDR_LEN];
    put32(h, (uint32_t)n);
    h[4] = type;
    h[5] = flags;
    h[6] = h[7] = 0;
    put32(h + 8, id);
    write_all(h, HDR_LEN);
    if (n)
        write_all(p, n);
}

/* reads exactly n bytes; returns 0 on EOF, -1 on timeout */
/* Timeouts are multiplied by CLIENT_TIMEOUT_SCALE: under valgrind every exec the agent starts
 * costs tens of times more, and the 257-stream check alone can pass 30 s on a loaded host. */
static int g_timeout_scale = 1;

static int read_full(uint8_t *p, size_t n, int timeout_ms)
{
    timeout_ms *= g_timeout_scale;
    while (n) {
        struct pollfd pf = {g_fd, POLLIN, 0};
        int r = poll(&pf, 1, timeout_ms);
        if (r == 0)
            return -1;
        ssize_t got = read(g_fd, p, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        p += got;
        n -= (size_t)got;
    }
    return 1;
}

struct frame {
    uint8_t type, flags;
    uint32_t id, n;
    uint8_t *p;
};

/* next frame, or type 0 on EOF */
static int g_line;
static struct frame recvf_t(int timeout_ms)
{
    struct frame f = {0};
    uint8_t h[HDR_LEN];
    int r = read_full(h, HDR_LEN, timeout_ms);
    CHECK(r >= 0, "timed out waiting for a frame (called from line %d)", g_line);
    if (r == 0)
        return f;
    f.n = get32(h);
    CHECK(f.n <= MAX_PAYLOAD, "agent sent oversized frame %u", f.n);
    CHECK(h[6] == 0 && h[7] == 0 && (h[5] & ~1) == 0, "agent sent bad header bits");
    f.type = h[4];
    f.flags = h[5];
    f.id = get32(h + 8);
    f.p = g_pl;
    CHECK(read_full(g_pl, f.n, timeout_ms) == 1, "short frame payload");
    return f;
}
static struct frame recvf_(void) { return recvf_t(30000); }
#define recvf() (g_line = __LINE__, recvf_())
#define recvf_t(ms) (g_line = __LINE__, recvf_t(ms))

static void hello(void)
{
    g_fd = dial();
    uint8_t v[4];
    put32(v, 1);
    sendf(T_HELLO, 0, 0, v, 4);
    struct frame f = recvf();
    CHECK(f.type == T_HELLO_R && f.id == 0 && f.n >= 8, "bad HELLO reply type 0x%x", f.type);
    CHECK(get32(f.p) == 1 && get32(f.p + 4) == 0xFF, "bad HELLO contents");
}

static void bye(void)
{
    close(g_fd);
    g_fd = -1;
}

struct tlvb {
    uint8_t b[MAX_PAYLOAD];
    size_t n;
};
static void tb_put(struct tlvb *t, uint16_t tag, const void *v, size_t n)
{
    put16(t->b + t->n, tag);
    put32(t->b + t->n + 2, (uint32_t)n);
    memcpy(t->b + t->n + 6, v, n);
    t->n += 6 + n;
}
static void tb_str(struct tlvb *t, uint16_t tag, const char *s) { tb_put(t, tag, s, strlen(s)); }

struct result {
    uint8_t *out, *err;
    size_t nout, nerr;
    int started, code, sig, flags, err_code;
    char errmsg[256];
};

static void append(uint8_t **b, size_t *n, const uint8_t *p, size_t m)
{
    *b = realloc(*b, *n + m + 1);
    memcpy(*b + *n, p, m);
    *n += m;
    (*b)[*n] = 0;
}

/* Sends EXEC with the given args (NULL-terminated) plus extra TLVs, and collects until the
 * final frame. Grants CREDIT as data is consumed and verifies the agent stays within it. */
static struct result run_ex(uint32_t id, const char *const *args, struct tlvb *extra,
                            const char *stdin_data)
{
    struct tlvb t = {.n = 0};
    for (int i = 0; args[i]; i++)
        tb_str(&t, X_ARG, args[i]);
    if (stdin_data) {
        uint8_t one = 1;
        tb_put(&t, X_STDIN, &one, 1);
    }
    if (extra) {
        memcpy(t.b + t.n, extra->b, extra->n);
        t.n += extra->n;
    }
    sendf(T_EXEC, 0, id, t.b, t.n);
    struct result r = {0};
    r.code = -999;
    if (stdin_data)
        sendf(T_STDIN, FLAG_EOF, id, stdin_data, strlen(stdin_data));
    for (;;) {
        struct frame f = recvf();
        CHECK(f.type, "connection closed");
        CHECK(f.id == id, "frame for unexpected stream %u (type 0x%x)", f.id, f.type);
        if (f.type == T_STARTED) {
            r.started = 1;
        } else if (f.type == T_STDOUT || f.type == T_STDERR) {
            if (f.type == T_STDOUT)
                append(&r.out, &r.nout, f.p, f.n);
            else
                append(&r.err, &r.nerr, f.p, f.n);
            uint8_t c[4];
            put32(c, f.n);
            sendf(T_CREDIT, 0, id, c, 4);
        } else if (f.type == T_EXIT) {
            CHECK(f.n == 9, "EXIT length");
            r.code = (int32_t)get32(f.p);
            r.sig = (int32_t)get32(f.p + 4);
            r.flags = f.p[8];
            return r;
        } else if (f.type == T_ERROR) {
            r.err_code = (int)get32(f.p);
            snprintf(r.errmsg, sizeof r.errmsg, "%.*s", (int)f.n - 4, f.p + 4);
            return r;
        } else if (f.type == T_CREDIT_R) {
        } else {
            FAIL("unexpected frame 0x%x", f.type);
        }
    }
}
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void t_hello(void)
{
    hello();
    uint8_t v[4];
    put32(v, 1);
    sendf(T_PING, 0, 0, "abc", 3);
    struct frame f = recvf();
    CHECK(f.type == T_PONG && f.n == 3 && !memcmp(f.p, "abc", 3), "bad PONG");
    bye();
    /* wrong version -> ERROR EPROTO and close */
    g_fd = dial();
    put32(v, 2);
    sendf(T_HELLO, 0, 0, v, 4);
    f = recvf();
    CHECK(f.type == T_ERROR && get32(f.p) == EPROTO, "version mismatch not refused");
    f = recvf();
    CHECK(f.type == 0, "connection not closed after version mismatch");
    bye();
}

static void t_exec(void)
{
    hello();
    struct result r = run_ex(1, ARGS("echo", "hi"), NULL, NULL);
    CHECK(r.started && r.code == 0 && r.sig == 0, "echo exit %d sig %d", r.code, r.sig);
    CHECK(r.nout == 3 && !memcmp(r.out, "hi\n", 3), "echo output '%s'", r.out);
    r = run_ex(2, ARGS("sh", "-c", "echo out; echo err >&2; exit 3"), NULL, NULL);
    CHECK(r.code == 3, "exit code %d", r.code);
    CHECK(r.nout == 4 && !memcmp(r.out, "out\n", 4), "stdout '%s'", r.out);
    CHECK(r.nerr == 4 && !memcmp(r.err, "err\n", 4), "stderr '%s'", r.err);
    /* environment, cwd and ENV override */
    struct tlvb x = {.n = 0};
    tb_str(&x, X_ENV, "FOO=bar");
    tb_str(&x, X_ENV, "HOME=/elsewhere");
    tb_str(&x, X_CWD, "/tmp");
    r = run_ex(3, ARGS("sh", "-c", "echo $FOO $HOME $(pwd) $PATH"), &x, NULL);
    CHECK(r.code == 0, "env exit");
    const char *want = "bar /elsewhere /tmp /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n";
    CHECK(r.nout == strlen(want) && !memcmp(r.out, want, r.nout), "env output '%s'", r.out);
    /* the agent's fds must not leak into children: only 0,1,2 (+ the ls dir fd) */
    r = run_ex(4, ARGS("sh", "-c", "ls /proc/self/fd | wc -l"), NULL, NULL);
    CHECK(r.code == 0 && atoi((char *)r.out) <= 4, "fd leak: %s open fds", r.out);
    /* command not found / not executable */
    r = run_ex(5, ARGS("no-such-command-xyz"), NULL, NULL);
    CHECK(!r.started && r.err_code == ENOENT, "ENOENT expected, got %d", r.err_code);
    CHECK(strstr(r.errmsg, "no-such-command-xyz"), "message should name the program: %s", r.errmsg);
    r = run_ex(6, ARGS("/etc/passwd"), NULL, NULL);
    CHECK(!r.started && r.err_code == EACCES, "EACCES expected, got %d", r.err_code);
    /* bad cwd */
    x.n = 0;
    tb_str(&x, X_CWD, "/no/such/dir");
    r = run_ex(7, ARGS("true"), &x, NULL);
    CHECK(!r.started && r.err_code == ENOENT, "bad cwd should fail");
    /* ROOT (a pod app container's root): a '..' component, a relative path, a file, a missing
     * directory are each refused with an ERROR frame and nothing runs */
    static const char *const bad_roots[] = {"/tmp/../etc", "tmp", "/", "/etc/passwd", "/no/such/root", "/tmp//x"};
    for (size_t i = 0; i < sizeof bad_roots / sizeof *bad_roots; i++) {
        x.n = 0;
        tb_str(&x, X_ROOT, bad_roots[i]);
        r = run_ex(8, ARGS("true"), &x, NULL);
        CHECK(!r.started && r.err_code, "ROOT %s should be refused", bad_roots[i]);
        CHECK(strstr(r.errmsg, "ROOT"), "the refusal of ROOT %s should name it: %s", bad_roots[i], r.errmsg);
    }
    /* stream id reuse after the final frame */
    r = run_ex(1, ARGS("true"), NULL, NULL);
    CHECK(r.code == 0, "id reuse");
    bye();
}

static void t_user(void)
{
    if (getuid() != 0) {
        fprintf(stderr, "  (user test skipped: not root)\n");
        return;
    }
    hello();
    struct tlvb x = {.n = 0};
    tb_str(&x, X_USER, "nobody");
    struct result r = run_ex(1, ARGS("sh", "-c", "id -u; echo $HOME $USER $LOGNAME"), &x, NULL);
    CHECK(r.code == 0 && !strncmp((char *)r.out, "65534\n", 6), "USER nobody: '%s' (%s)", r.out,
          r.errmsg);
    x.n = 0;
    tb_str(&x, X_USER, "1234:4321");
    r = run_ex(2, ARGS("sh", "-c", "echo $(id -u) $(id -g) $(id -G)"), &x, NULL);
    CHECK(r.code == 0 && !strcmp((char *)r.out, "1234 4321 4321\n"), "uid:gid: '%s'", r.out);
    x.n = 0;
    tb_str(&x, X_USER, "no-such-user");
    r = run_ex(3, ARGS("true"), &x, NULL);
    CHECK(!r.started && r.err_code, "unknown user should fail");
    bye();
}

static void t_signal(void)
{
    hello();
    struct tlvb t = {.n = 0};
    tb_str(&t, X_ARG, "sh");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "sleep 100; echo never");
    sendf(T_EXEC, 0, 9, t.b, t.n);
    struct frame f = recvf();
    CHECK(f.type == T_STARTED, "not started");
    usleep(100000);
    uint8_t s[4];
    put32(s, 9);
    sendf(T_SIGNAL, 0, 9, s, 4);
    f = recvf_t(3000);
    CHECK(f.type == T_EXIT && (int32_t)get32(f.p + 4) == 9 && f.p[8] == 0,
          "expected EXIT by signal 9, got type 0x%x", f.type);
    /* timeout: the whole group dies, EXIT has the timed-out flag */
    struct tlvb x = {.n = 0};
    uint8_t ms[8];
    put64(ms, 300);
    tb_put(&x, X_TIMEOUT_MS, ms, 8);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct result r = run_ex(10, ARGS("sh", "-c", "sleep 100 & sleep 100"), &x, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK(r.sig == 9 && r.flags == 1, "timeout: sig %d flags %d", r.sig, r.flags);
    CHECK(el < 3, "timeout took %.1fs", el);
    bye();
}

static void t_stdin(void)
{
    hello();
    struct result r = run_ex(1, ARGS("cat"), NULL, "hello world\n");
    CHECK(r.code == 0 && r.nout == 12 && !memcmp(r.out, "hello world\n", 12), "cat '%s'", r.out);
    /* 3 MB through cat, respecting the host->agent window */
    struct tlvb t = {.n = 0};
    uint8_t one = 1;
    tb_str(&t, X_ARG, "sh");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "cat | wc -c");
    tb_put(&t, X_STDIN, &one, 1);
    sendf(T_EXEC, 0, 2, t.b, t.n);
    size_t total = 3000000, sent = 0;
    int64_t win = INITIAL_WINDOW;
    static uint8_t chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    uint8_t *out = NULL;
    size_t nout = 0;
    for (;;) {
        while (sent < total && win > 0) {
            size_t m = total - sent;
            if (m > sizeof chunk)
                m = sizeof chunk;
            if ((int64_t)m > win)
                m = (size_t)win;
            sendf(T_STDIN, sent + m == total ? FLAG_EOF : 0, 2, chunk, m);
            sent += m;
            win -= (int64_t)m;
        }
        struct frame f = recvf();
        CHECK(f.type && f.id == 2, "bad frame");
        if (f.type == T_CREDIT_R)
            win += get32(f.p);
        else if (f.type == T_STDOUT)
            append(&out, &nout, f.p, f.n);
        else if (f.type == T_EXIT) {
            CHECK(get32(f.p) == 0, "exit");
            break;
        } else
            CHECK(f.type == T_STARTED, "unexpected 0x%x", f.type);
    }
    CHECK(out && atol((char *)out) == (long)total, "wc says %s", out);
    CHECK(win == INITIAL_WINDOW, "host window not fully returned: %ld", (long)win);
    bye();
}

/* 100 MB of output with credit granted only as consumed; a second stream runs alongside. */
static void t_bulk(void)
{
    hello();
    struct tlvb t = {.n = 0};
    tb_str(&t, X_ARG, "head");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "100000000");
    tb_str(&t, X_ARG, "/dev/zero");
    sendf(T_EXEC, 0, 1, t.b, t.n);
    t.n = 0;
    tb_str(&t, X_ARG, "echo");
    tb_str(&t, X_ARG, "side");
    sendf(T_EXEC, 0, 2, t.b, t.n);
    uint64_t got = 0;
    int64_t win = INITIAL_WINDOW;
    int exited = 0, side_done = 0, zero_ok = 1;
    uint32_t pending = 0;
    while (!exited || !side_done) {
        struct frame f = recvf();
        CHECK(f.type, "closed");
        if (f.id == 2) {
            if (f.type == T_EXIT)
                side_done = 1;
            continue;
        }
        if (f.type == T_STDOUT) {
            got += f.n;
            win -= f.n;
            CHECK(win >= 0, "agent overran the window");
            for (uint32_t i = 0; i < f.n; i++)
                zero_ok &= f.p[i] == 0;
            pending += f.n;
            if (pending >= 131072) { /* grant in batches like a real consumer */
                uint8_t c[4];
                put32(c, pending);
                sendf(T_CREDIT, 0, 1, c, 4);
                win += pending;
                pending = 0;
            }
        } else if (f.type == T_EXIT) {
            CHECK(get32(f.p) == 0, "head exit %d", (int)get32(f.p));
            exited = 1;
        } else {
            CHECK(f.type == T_STARTED, "unexpected 0x%x", f.type);
        }
    }
    CHECK(got == 100000000ull && zero_ok, "got %llu bytes", (unsigned long long)got);
    /* a stalled consumer: no credit -> the agent must stop at exactly the window */
    t.n = 0;
    tb_str(&t, X_ARG, "head");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "1000000");
    tb_str(&t, X_ARG, "/dev/zero");
    sendf(T_EXEC, 0, 3, t.b, t.n);
    got = 0;
    for (;;) {
        uint8_t h[HDR_LEN];
        int r = read_full(h, HDR_LEN, 700);
        if (r < 0)
            break;
        CHECK(r == 1, "closed");
        uint32_t n = get32(h);
        CHECK(read_full(g_pl, n, 1000) == 1, "payload");
        if (h[4] == T_STDOUT)
            got += n;
    }
    CHECK(got == INITIAL_WINDOW, "stalled stream delivered %llu", (unsigned long long)got);
    uint8_t c[4];
    put32(c, 1000000);
    sendf(T_CREDIT, 0, 3, c, 4);
    for (;;) {
        struct frame f = recvf();
        if (f.type == T_STDOUT)
            got += f.n;
        if (f.type == T_EXIT)
            break;
    }
    CHECK(got == 1000000, "after credit: %llu", (unsigned long long)got);
    bye();
}

static void t_pty(void)
{
    hello();
    struct tlvb x = {.n = 0};
    uint8_t ws[4];
    put16(ws, 24);
    put16(ws + 2, 80);
    tb_put(&x, X_TTY, ws, 4);
    struct result r = run_ex(1, ARGS("sh", "-c", "tty; echo $TERM; echo e >&2"), &x, NULL);
    CHECK(r.code == 0 && !strncmp((char *)r.out, "/dev/pts/", 9), "tty: '%s'", r.out);
    CHECK(strstr((char *)r.out, "xterm-256color\r\n") && strstr((char *)r.out, "e\r\n"),
          "pty output '%s'", r.out);
    CHECK(r.nerr == 0, "STDERR on a pty stream");
    /* RESIZE: stty size before and after */
    struct tlvb t = {.n = 0};
    uint8_t one = 1;
    tb_str(&t, X_ARG, "sh");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "stty size; read x; stty size");
    tb_put(&t, X_STDIN, &one, 1);
    tb_put(&t, X_TTY, ws, 4);
    sendf(T_EXEC, 0, 2, t.b, t.n);
    uint8_t *out = NULL;
    size_t nout = 0;
    int resized = 0;
    for (;;) {
        struct frame f = recvf_t(5000);
        CHECK(f.type, "closed");
        if (f.type == T_STDOUT) {
            append(&out, &nout, f.p, f.n);
            if (!resized && strstr((char *)out, "24 80\r\n")) {
                uint8_t rz[4];
                put16(rz, 50);
                put16(rz + 2, 132);
                sendf(T_RESIZE, 0, 2, rz, 4);
                sendf(T_STDIN, 0, 2, "go\n", 3);
                resized = 1;
            }
        } else if (f.type == T_EXIT) {
            CHECK(get32(f.p) == 0, "exit");
            break;
        }
    }
    CHECK(resized && strstr((char *)out, "50 132\r\n"), "resize output '%s'", out);
    /* stdin EOF on a pty is ^D */
    r = run_ex(3, ARGS("cat"), &x, "abc\n");
    CHECK(r.code == 0 && strstr((char *)r.out, "abc"), "pty cat [%s] code %d sig %d", r.out, r.code, r.sig);
    bye();
}

static uint8_t *g_file;
#define FILE_SIZE (5 * 1024 * 1024 + 123)

static void write_file(uint32_t id, const char *path, const uint8_t *data, size_t n, int mkdirs)
{
    struct tlvb t = {.n = 0};
    tb_str(&t, F_PATH, path);
    uint8_t m[4];
    put32(m, 0600);
    tb_put(&t, F_MODE, m, 4);
    if (mkdirs) {
        uint8_t one = 1;
        tb_put(&t, F_MKDIRS, &one, 1);
    }
    sendf(T_FILE_WRITE, 0, id, t.b, t.n);
    size_t sent = 0;
    int64_t win = INITIAL_WINDOW;
    int eof_sent = 0;
    for (;;) {
        while (!eof_sent && win > 0) {
            size_t k = n - sent;
            if (k > 65536)
                k = 65536;
            if ((int64_t)k > win)
                k = (size_t)win;
            sendf(T_FILE_DATA, sent + k == n ? FLAG_EOF : 0, id, data + sent, k);
            sent += k;
            win -= (int64_t)k;
            if (sent == n)
                eof_sent = 1;
        }
        struct frame f = recvf();
        CHECK(f.type && f.id == id, "write stream frame");
        if (f.type == T_CREDIT_R) {
            win += get32(f.p);
            continue;
        }
        CHECK(f.type == T_RESULT, "FILE_WRITE answered 0x%x (%.*s)", f.type, (int)f.n - 4, f.p + 4);
        CHECK(f.n == 14 && get16(f.p) == F_SIZE && get64(f.p + 6) == n, "RESULT size");
        return;
    }
}

static void t_files(void)
{
    hello();
    g_file = malloc(FILE_SIZE);
    int rfd = open("/dev/urandom", O_RDONLY);
    size_t off = 0;
    while (off < FILE_SIZE) {
        ssize_t k = read(rfd, g_file + off, FILE_SIZE - off);
        CHECK(k > 0, "urandom");
        off += (size_t)k;
    }
    close(rfd);
    char dir[256], path[300], path2[300];
    snprintf(dir, sizeof dir, "/tmp/airlock-test-%d", getpid());
    snprintf(path, sizeof path, "%s/sub/blob.bin", dir);
    write_file(1, path, g_file, FILE_SIZE, 1);
    struct stat st;
    /* AIRLOCK_REMOTE: the agent runs in a VM, so its files are not visible to us */
    int local = getenv("AIRLOCK_REMOTE") == NULL;
    CHECK(!local || (stat(path, &st) == 0 && st.st_size == FILE_SIZE && (st.st_mode & 0777) == 0600),
          "file on disk");
    /* overwrite via a symlink: the target changes, the link stays */
    snprintf(path2, sizeof path2, "%s/sub/link", dir);
    if (local) {
        CHECK(symlink("blob.bin", path2) == 0, "symlink");
    } else {
        char c[700];
        snprintf(c, sizeof c, "ln -s blob.bin %s", path2);
        CHECK(run_ex(20, ARGS("sh", "-c", c), NULL, NULL).code == 0, "remote symlink");
    }
    write_file(2, path2, (const uint8_t *)"short", 5, 0);
    CHECK(!local || (lstat(path2, &st) == 0 && S_ISLNK(st.st_mode)), "symlink replaced");
    CHECK(!local || (stat(path, &st) == 0 && st.st_size == 5), "target not written");
    write_file(3, path, g_file, FILE_SIZE, 0);

    /* read it back with credit */
    struct tlvb t = {.n = 0};
    tb_str(&t, F_PATH, path);
    sendf(T_FILE_READ, 0, 4, t.b, t.n);
    uint8_t *back = NULL;
    size_t nback = 0;
    for (;;) {
        struct frame f = recvf();
        CHECK(f.type && f.id == 4, "read frame");
        if (f.type == T_DATA) {
            append(&back, &nback, f.p, f.n);
            uint8_t c[4];
            put32(c, f.n);
            sendf(T_CREDIT, 0, 4, c, 4);
        } else {
            CHECK(f.type == T_END && get64(f.p) == FILE_SIZE, "END 0x%x", f.type);
            break;
        }
    }
    CHECK(nback == FILE_SIZE && !memcmp(back, g_file, FILE_SIZE), "round trip differs");
    free(back);

    /* STAT a file and a symlink */
    t.n = 0;
    tb_str(&t, F_PATH, path);
    sendf(T_STAT, 0, 5, t.b, t.n);
    struct frame f = recvf();
    CHECK(f.type == T_RESULT && f.id == 5, "STAT reply 0x%x", f.type);
    struct tlv_it it = {f.p, f.n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int seen = 0;
    while (tlv_next(&it, &tag, &v, &vl) > 0) {
        if (tag == F_TYPE)
            { CHECK(v[0] == 'f', "type"); seen |= 1; }
        if (tag == F_SIZE)
            { CHECK(get64(v) == FILE_SIZE, "size"); seen |= 2; }
        if (tag == F_MODE)
            { CHECK(get32(v) == (S_IFREG | 0600), "mode %o", get32(v)); seen |= 4; }
        if (tag == F_MTIME || tag == F_UID || tag == F_GID)
            seen |= 8;
    }
    CHECK(seen == 15, "STAT fields %d", seen);
    t.n = 0;
    tb_str(&t, F_PATH, path2);
    sendf(T_STAT, 0, 5, t.b, t.n);
    f = recvf();
    CHECK(f.type == T_RESULT, "STAT link");
    it = (struct tlv_it){f.p, f.n};
    seen = 0;
    while (tlv_next(&it, &tag, &v, &vl) > 0) {
        if (tag == F_TYPE)
            { CHECK(v[0] == 'l', "link type"); seen |= 1; }
        if (tag == F_TARGET)
            { CHECK(vl == 8 && !memcmp(v, "blob.bin", 8), "target"); seen |= 2; }
    }
    CHECK(seen == 3, "link STAT fields");
    /* STAT missing */
    t.n = 0;
    tb_str(&t, F_PATH, "/no/such/file");
    sendf(T_STAT, 0, 6, t.b, t.n);
    f = recvf();
    CHECK(f.type == T_ERROR && f.id == 6 && get32(f.p) == ENOENT, "STAT ENOENT");

    /* LIST: sorted, no . and .. */
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    t.n = 0;
    tb_str(&t, F_PATH, sub);
    sendf(T_LIST, 0, 7, t.b, t.n);
    f = recvf();
    CHECK(f.type == T_RESULT && f.id == 7, "LIST reply");
    it = (struct tlv_it){f.p, f.n};
    char names[4][32];
    int nn = 0;
    while (tlv_next(&it, &tag, &v, &vl) > 0)
        if (tag == F_NAME && nn < 4)
            snprintf(names[nn++], 32, "%.*s", (int)vl, v);
    CHECK(nn == 2 && !strcmp(names[0], "blob.bin") && !strcmp(names[1], "link"), "LIST names");
    /* read of a directory, and a read of a missing file */
    sendf(T_FILE_READ, 0, 8, t.b, t.n);
    f = recvf();
    CHECK(f.type == T_ERROR && get32(f.p) == EISDIR, "read dir");
    /* write without MKDIRS into a missing dir */
    t.n = 0;
    tb_str(&t, F_PATH, "/no/such/dir/file");
    sendf(T_FILE_WRITE, 0, 9, t.b, t.n);
    f = recvf();
    CHECK(f.type == T_ERROR && get32(f.p) == ENOENT, "write into missing dir");
    /* aborted write (disconnect) leaves no temp file behind */
    char cmd[600];
    bye();
    hello();
    t.n = 0;
    snprintf(path2, sizeof path2, "%s/sub/partial", dir);
    tb_str(&t, F_PATH, path2);
    sendf(T_FILE_WRITE, 0, 1, t.b, t.n);
    sendf(T_FILE_DATA, 0, 1, "abc", 3);
    sendf(T_PING, 0, 0, "", 0);
    f = recvf();
    bye();
    usleep(200000);
    hello();
    snprintf(cmd, sizeof cmd, "ls -A %s/sub | wc -l", dir);
    struct result r = run_ex(2, ARGS("sh", "-c", cmd), NULL, NULL);
    CHECK(r.out && atoi((char *)r.out) == 2, "temp file left behind: %s", r.out);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    run_ex(3, ARGS("sh", "-c", cmd), NULL, NULL);
    bye();
    free(g_file);
}

/* One MKDIR/MOVE/REMOVE request; returns 0 for an empty RESULT, else the ERROR's errno. */
static int fsop(uint8_t type, uint32_t id, const char *path, const char *dest, int flag)
{
    struct tlvb t = {.n = 0};
    tb_str(&t, F_PATH, path);
    if (dest)
        tb_str(&t, F_DEST, dest);
    if (flag) {
        uint8_t one = 1;
        tb_put(&t, type == T_REMOVE ? F_RECURSIVE : F_MKDIRS, &one, 1);
    }
    sendf(type, 0, id, t.b, t.n);
    struct frame f = recvf();
    CHECK(f.id == id && (f.type == T_RESULT || f.type == T_ERROR), "fsop 0x%x answered 0x%x", type, f.type);
    if (f.type == T_RESULT) {
        CHECK(f.n == 0, "a non-empty RESULT");
        return 0;
    }
    return (int)get32(f.p);
}

static void t_fsops(void)
{
    hello();
    char dir[128], a[160], ab[160], f1[160], g[160], link[160], cmd[700];
    snprintf(dir, sizeof dir, "/tmp/airlock-fsops-%d", getpid());
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(ab, sizeof ab, "%s/a/b", dir);
    snprintf(f1, sizeof f1, "%s/a/b/f", dir);
    snprintf(g, sizeof g, "%s/g", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    CHECK(fsop(T_MKDIR, 1, ab, NULL, 0) == ENOENT, "MKDIR without parents");
    CHECK(fsop(T_MKDIR, 1, ab, NULL, 1) == 0, "MKDIR with parents");
    CHECK(fsop(T_MKDIR, 1, ab, NULL, 1) == 0, "MKDIR of an existing directory with parents");
    CHECK(fsop(T_MKDIR, 1, ab, NULL, 0) == EEXIST, "MKDIR of an existing directory");
    write_file(2, f1, (const uint8_t *)"data", 4, 0);
    CHECK(fsop(T_MOVE, 3, f1, g, 0) == 0, "MOVE");
    CHECK(fsop(T_MOVE, 3, f1, g, 0) == ENOENT, "MOVE of a missing file");
    CHECK(fsop(T_REMOVE, 4, a, NULL, 0) == ENOTEMPTY, "REMOVE of a non-empty directory");
    /* a symlink to a directory: REMOVE takes the link, never what it points to */
    snprintf(cmd, sizeof cmd, "ln -s %s %s && touch %s/keep", a, link, ab);
    CHECK(run_ex(5, ARGS("sh", "-c", cmd), NULL, NULL).code == 0, "symlink");
    CHECK(fsop(T_REMOVE, 6, link, NULL, 1) == 0, "REMOVE of a symlink");
    snprintf(cmd, sizeof cmd, "test -f %s/keep && test ! -e %s", ab, link);
    CHECK(run_ex(7, ARGS("sh", "-c", cmd), NULL, NULL).code == 0, "the link's target survived");
    CHECK(fsop(T_REMOVE, 8, a, NULL, 1) == 0, "recursive REMOVE");
    CHECK(fsop(T_REMOVE, 8, a, NULL, 1) == ENOENT, "REMOVE of a missing path");
    CHECK(fsop(T_REMOVE, 9, g, NULL, 0) == 0, "REMOVE of a file");
    CHECK(fsop(T_REMOVE, 9, "/", NULL, 1) == EBUSY, "REMOVE of /");
    CHECK(fsop(T_MKDIR, 10, "relative", NULL, 0) == EINVAL, "a relative path");
    CHECK(fsop(T_REMOVE, 11, dir, NULL, 0) == 0, "REMOVE of an empty directory");
    bye();
}

/* garbage ends the session with ERROR on stream 0; the agent must accept the next one */
static void expect_error_close(const char *what)
{
    int got_err = 0;
    for (;;) {
        uint8_t h[HDR_LEN];
        int r = read_full(h, HDR_LEN, 5000);
        CHECK(r >= 0, "%s: no close after %s", what, got_err ? "ERROR" : "nothing");
        if (r == 0)
            break;
        struct frame f = {.type = h[4], .id = get32(h + 8), .p = g_pl};
        CHECK(get32(h) <= MAX_PAYLOAD && read_full(g_pl, get32(h), 5000) == 1, "%s: short", what);
        if (!f.type)
            break;
        if (f.type == T_ERROR && f.id == 0)
            got_err = 1;
    }
    CHECK(got_err, "%s: no ERROR on stream 0", what);
    bye();
}

/* MOUNT, MASKED, READONLY: the container's mount namespace, made once and joined by a later
 * EXEC with the same tags; other tags are refused, and so is every malformed entry. The mounts
 * live in the namespace only: the client (outside it) does not see them. */
static void mount_tag(struct tlvb *t, uint32_t flags, const char *type, const char *dest, const char *data)
{
    uint8_t b[600];
    size_t n = 5;
    put32(b, flags);
    b[4] = 0;
    n += (size_t)snprintf((char *)b + n, sizeof b - n, "%s", type) + 1;
    n += (size_t)snprintf((char *)b + n, sizeof b - n, "%s", dest) + 1;
    n += (size_t)snprintf((char *)b + n, sizeof b - n, "%s", data) + 1;
    tb_put(t, X_MOUNT, b, n);
}

static void t_mountns(void)
{
    char dir[64], p[128], cmd[1024];
    snprintf(dir, sizeof dir, "/tmp/airlock-mountns.%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/t", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/ro", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/secret", dir);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs("hidden\n", f) >= 0 && fclose(f) == 0, "writing %s", p);
    hello();
    struct tlvb x = {.n = 0};
    snprintf(p, sizeof p, "%s/t", dir);
    mount_tag(&x, 2 /* MS_NOSUID */, "tmpfs", p, "size=1m");
    /* /dev itself (only in the namespace, which is private): runc's devices are made in it */
    mount_tag(&x, 0, "tmpfs", "/dev", "mode=755");
    snprintf(p, sizeof p, "%s/secret", dir);
    tb_put(&x, X_MASKED, p, strlen(p) + 1);
    snprintf(p, sizeof p, "%s/ro", dir);
    tb_put(&x, X_READONLY, p, strlen(p) + 1);
    snprintf(cmd, sizeof cmd,
             "grep ' %s/t ' /proc/mounts | cut -d' ' -f3,4; wc -c < %s/secret; touch %s/ro/x 2>/dev/null || "
             "echo ro-refused; ls /dev | tr '\\n' ' '; echo; readlink /proc/self/ns/mnt",
             dir, dir, dir);
    struct result r = run_ex(1, ARGS("sh", "-c", cmd), &x, NULL);
    CHECK(r.started && r.code == 0, "mountns exec: %d %s %s", r.code, r.errmsg, r.err ? (char *)r.err : "");
    char want[512];
    snprintf(want, sizeof want, "tmpfs rw,nosuid,relatime,size=1024k\n0\nro-refused\n");
    CHECK(r.nout > strlen(want) && !memcmp(r.out, want, strlen(want)), "mountns output '%s'", r.out);
    CHECK(strstr((char *)r.out, "full null ptmx pts random shm stderr stdin stdout tty urandom zero") &&
              strstr((char *)r.out, "core fd"),
          "the tmpfs /dev has runc's devices and links: '%s'", r.out);
    char ns[64] = "";
    const char *last = strrchr((char *)r.out, 'm');
    CHECK(last && (last = strstr((char *)r.out, "mnt:[")), "no namespace in '%s'", r.out);
    snprintf(ns, sizeof ns, "%s", last);
    char self[64] = "";
    ssize_t l = readlink("/proc/self/ns/mnt", self, sizeof self - 1);
    CHECK(l > 0 && strncmp(ns, self, (size_t)l), "the command ran in the agent's own mount namespace");
    /* the same tags: the same namespace */
    r = run_ex(2, ARGS("readlink", "/proc/self/ns/mnt"), &x, NULL);
    CHECK(r.code == 0 && r.nout > 0 && !strcmp((char *)r.out, ns), "a second EXEC joined '%s', not '%s'", r.out, ns);
    /* other tags: refused */
    struct tlvb y = {.n = 0};
    mount_tag(&y, 0, "tmpfs", dir, "");
    r = run_ex(3, ARGS("true"), &y, NULL);
    CHECK(!r.started && r.err_code == EINVAL && strstr(r.errmsg, "other mounts"), "other mounts: %s", r.errmsg);
    /* malformed entries, each refused before anything is mounted */
    const uint8_t shortm[3] = {0, 0, 0};
    const char bad_type[] = "\0\0\0\0\0nfs\0/x\0";
    const char relative[] = "\0\0\0\0\0tmpfs\0x\0";
    const char two_data[] = "\0\0\0\0\0tmpfs\0/x\0a\0b\0";
    const char bad_flags[] = "\x40\0\0\0\0tmpfs\0/x\0";
    struct {
        uint16_t tag;
        const void *v;
        size_t n;
    } bad[] = {{X_MOUNT, shortm, 3},
               {X_MOUNT, bad_type, sizeof bad_type - 1},
               {X_MOUNT, relative, sizeof relative - 1},
               {X_MOUNT, two_data, sizeof two_data - 1},
               {X_MOUNT, bad_flags, sizeof bad_flags - 1},
               {X_MASKED, "/no-nul", 7},
               {X_READONLY, "rel\0", 4},
               {X_ROOT_RO, "\1\1", 2}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct tlvb z = {.n = 0};
        tb_put(&z, bad[i].tag, bad[i].v, bad[i].n);
        r = run_ex(4, ARGS("true"), &z, NULL);
        CHECK(!r.started && r.err_code == EINVAL, "malformed mount tag %zu accepted (%d %s)", i, r.err_code, r.errmsg);
    }
    /* nothing of it is mounted where the client lives */
    snprintf(p, sizeof p, " %s/", dir);
    FILE *m = fopen("/proc/self/mounts", "r");
    char line[1024];
    while (m && fgets(line, sizeof line, m))
        CHECK(!strstr(line, p), "the namespace's mount leaked: %s", line);
    if (m)
        fclose(m);
    bye();
    snprintf(p, sizeof p, "%s/secret", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/t", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/ro", dir);
    rmdir(p);
    rmdir(dir);
}

static void t_malformed(void)
{
    srand(42);
    g_lenient = 1;
    for (int round = 0; round < 30; round++) {
        hello();
        uint8_t junk[4096];
        size_t n = 64 + (size_t)(rand() % 4000);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t)rand();
        if (round % 3 == 0)
            put32(junk, 1000000); /* oversized length */
        else if (round % 3 == 1)
            put32(junk, (uint32_t)(rand() % 100)); /* plausible length, garbage rest */
        write_all(junk, n);
        /* pad so a plausible length is always completed */
        uint8_t pad[4096] = {0};
        send(g_fd, pad, sizeof pad, MSG_NOSIGNAL);
        expect_error_close("random bytes");
    }
    /* specific violations */
    uint8_t b[16];
    hello();
    sendf(0x77, 0, 0, NULL, 0);
    expect_error_close("unknown type");
    hello();
    sendf(T_PING, 2, 0, NULL, 0);
    expect_error_close("flag bits");
    hello();
    sendf(T_EXEC, 0, 0, NULL, 0);
    expect_error_close("EXEC on stream 0");
    hello();
    put16(b, X_ARG);
    put32(b + 2, 100); /* TLV overruns payload */
    sendf(T_EXEC, 0, 5, b, 8);
    expect_error_close("TLV overrun");
    hello();
    sendf(T_STAT, 0, 5, b, 3);
    expect_error_close("short TLV");
    hello();
    struct tlvb t = {.n = 0};
    tb_str(&t, X_ARG, "sleep");
    tb_str(&t, X_ARG, "5");
    uint8_t one = 1;
    tb_put(&t, X_STDIN, &one, 1);
    sendf(T_EXEC, 0, 5, t.b, t.n);
    CHECK(recvf().type == T_STARTED, "started");
    static uint8_t big[65536];
    /* the pipe absorbs up to 64K (whose CREDIT may legitimately come back in time), so
     * 7 x 64K is beyond any window the agent can have granted */
    for (int i = 0; i < 7; i++)
        sendf(T_STDIN, 0, 5, big, sizeof big);
    expect_error_close("window overrun");
    hello();
    sendf(T_EXEC, 0, 6, t.b, t.n);
    CHECK(recvf().type == T_STARTED, "started");
    put32(b, 0x7fffffff);
    sendf(T_CREDIT, 0, 6, b, 4);
    expect_error_close("credit above 2^31");
    g_fd = dial(); /* frame before HELLO */
    sendf(T_PING, 0, 0, NULL, 0);
    expect_error_close("before HELLO");
    g_lenient = 0;
    /* a clean session still works, and the stream limit holds */
    hello();
    t.n = 0;
    tb_str(&t, X_ARG, "sleep");
    tb_str(&t, X_ARG, "30");
    for (uint32_t id = 1; id <= 257; id++)
        sendf(T_EXEC, 0, id, t.b, t.n);
    int started = 0, emfile = 0;
    for (int i = 0; i < 257; i++) {
        struct frame f = recvf();
        if (f.type == T_STARTED)
            started++;
        else if (f.type == T_ERROR && get32(f.p) == EMFILE && f.id == 257)
            emfile++;
    }
    CHECK(started == 256 && emfile == 1, "stream limit: %d started, %d EMFILE", started, emfile);
    put32(b, 9);
    for (uint32_t id = 1; id <= 256; id++)
        sendf(T_SIGNAL, 0, id, b, 4);
    for (int i = 0; i < 256; i++)
        CHECK(recvf().type == T_EXIT, "exit after kill");
    bye();
}

/* A session that disconnects with a running process; the next session is unaffected. */
static void t_reconnect(void)
{
    hello();
    struct tlvb t = {.n = 0};
    tb_str(&t, X_ARG, "sh");
    tb_str(&t, X_ARG, "-c");
    tb_str(&t, X_ARG, "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 100000 /dev/zero; sleep 0.05; done");
    sendf(T_EXEC, 0, 1, t.b, t.n);
    CHECK(recvf().type == T_STARTED, "started");
    bye();
    hello();
    struct result r = run_ex(1, ARGS("echo", "again"), NULL, NULL);
    CHECK(r.code == 0 && r.nout == 6, "after reconnect");
    bye();
}

static void t_shutdown(void)
{
    hello();
    struct tlvb t = {.n = 0};
    tb_str(&t, X_ARG, "sleep");
    tb_str(&t, X_ARG, "100");
    sendf(T_EXEC, 0, 1, t.b, t.n);
    CHECK(recvf().type == T_STARTED, "started");
    uint8_t z = 0;
    sendf(T_SHUTDOWN, 0, 0, &z, 1);
    struct frame f = recvf_t(5000);
    CHECK(f.type == 0, "connection should close on shutdown");
    bye();
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"hello", t_hello}, {"exec", t_exec},     {"user", t_user},           {"signal", t_signal},
    {"stdin", t_stdin}, {"bulk", t_bulk},     {"pty", t_pty},             {"files", t_files},
    {"fsops", t_fsops}, {"mountns", t_mountns},
    {"malformed", t_malformed}, {"reconnect", t_reconnect}, {"shutdown", t_shutdown},
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client SOCKET TEST...|all\n");
        return 2;
    }
    g_sock = argv[1];
    const char *scale = getenv("CLIENT_TIMEOUT_SCALE");
    if (scale && atoi(scale) > 1 && atoi(scale) <= 20)
        g_timeout_scale = atoi(scale);
    for (int a = 2; a < argc; a++) {
        int found = 0;
        for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
            int all = !strcmp(argv[a], "all") && strcmp(tests[i].name, "shutdown");
            if (!all && strcmp(argv[a], tests[i].name))
                continue;
            found = 1;
            g_test = tests[i].name;
            struct timespec s, e;
            clock_gettime(CLOCK_MONOTONIC, &s);
            tests[i].fn();
            clock_gettime(CLOCK_MONOTONIC, &e);
            printf("ok   %-10s %.2fs\n", g_test,
                   (double)(e.tv_sec - s.tv_sec) + (double)(e.tv_nsec - s.tv_nsec) / 1e9);
            fflush(stdout);
        }
        if (!found) {
            fprintf(stderr, "unknown test %s\n", argv[a]);
            return 2;
        }
    }
    return 0;
}
