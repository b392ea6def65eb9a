/*
 * airlock-standin: the host process that stands for an OCI container's (or an exec's) process
 * in airlock-runtime's microVM mode. conmon and containerd's shim wait for its pid, read its
 * stdio and take its exit status as the container's, so it lives exactly as long as the process
 * in the VM. A JVM did this before, at ~50 MB each; this is one static binary with fixed buffers.
 *
 * What it does, in order:
 *   1. reads the EXEC request airlock-runtime wrote (a guest-protocol EXEC payload, TLVs);
 *   2. opens a guest-protocol session through the daemon: POST /v1/sandboxes/NAME/session on the
 *      daemon's unix socket, frames carried in chunked bodies both ways (docs/guest-protocol.md);
 *   3. with --wait-start, opens the start FIFO for writing, which blocks until `start` reads it;
 *   4. sends the EXEC (adding the terminal's size with --tty), relays stdin, stdout and stderr
 *      within the protocol's flow-control windows, forwards its signals to the process group in
 *      the guest and the terminal's size changes;
 *   5. exits with the process's status: its code, 128+N for signal N, 127/126 when the program is
 *      missing/not executable, 137 when the VM or the daemon went away under it (the process is
 *      as good as killed), 125 when its own request could not be read. A signal that arrives
 *      before the process runs ends it with 128+N (the process never runs).
 *
 * Everything from the daemon's side is untrusted (frames from the guest pass through it): the
 * HTTP head, the chunk sizes, the first JSON line and every frame are parsed with bounds, and
 * anything malformed ends the stand-in with a message on stderr and status 137, after it asked
 * the guest to kill the process (a container without its stand-in is stopped).
 *
 * Usage: airlock-standin DIR SANDBOX DAEMON_SOCKET [--wait-start] [--tty] [--detach]
 *
 * --detach (exec --detach): the program forks, the parent writes the child's pid to DIR/pid and
 * exits. The child is then never a child of airlock-runtime's JVM, whose process reaper would
 * otherwise collect a short exec's status before the JVM exits; it goes straight to the caller's
 * subreaper (conmon, the shim), which waits for the pid it reads from --pid-file.
 */
#include "../src/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXEC_FILE "exec.request"
#define START_FIFO "start.fifo"
#define STREAM 1u
/* The daemon is local, but a broken one must not make us read forever. */
#define MAX_HEAD (64u << 10)
#define MAX_FIRST_LINE (1u << 20)
#define MAX_CHUNK_LINE 1024u
#define HEAD_WAIT_MS 120000
#define HELLO_WAIT_MS 30000
#define TTY_TLV_LEN 10u

#define ST_NOT_FOUND 127
#define ST_NOT_EXECUTABLE 126
#define ST_LOST 137
#define ST_OWN_ERROR 125

static const int FORWARDED[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM, SIGCONT};

/* 0 until the EXEC is about to be sent: a signal then ends us as it would have ended the process. */
static volatile sig_atomic_t g_running;
static int g_sigpipe[2] = {-1, -1};

static int g_sock = -1;
static int g_tty;
static int g_exec_sent;

/* Raw bytes from the daemon's socket, then the body with the chunking taken off. */
static uint8_t g_in[MAX_FRAME];
static size_t g_in_off, g_in_len;

static enum { B_LINE, B_FRAMES } g_body_state = B_LINE;
static size_t g_first_line;
static int g_chunked;
static enum { C_SIZE, C_DATA, C_DATA_END, C_TRAILER, C_DONE } g_chunk_state = C_SIZE;
static char g_chunk_line[MAX_CHUNK_LINE + 1];
static size_t g_chunk_line_len;
static uint64_t g_chunk_left;

/* One frame being assembled from the body. */
static uint8_t g_frame[MAX_FRAME];
static size_t g_frame_len;

/* Flow control: what the agent may still send us, what we may still send it. */
static uint64_t g_out_window = INITIAL_WINDOW;
static uint64_t g_in_window = INITIAL_WINDOW;

static int g_started, g_stdin_open = 1, g_stdout_ok = 1, g_stderr_ok = 1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dprintf(STDERR_FILENO, "airlock-runtime: %s\n", msg);
}

static void on_signal(int sig)
{
    if (!g_running && sig != SIGCONT && sig != SIGWINCH)
        _exit(128 + sig); /* not started yet: the process never runs; end as it would have */
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t ignored = write(g_sigpipe[1], &b, 1);
    (void)ignored;
    errno = saved;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void lost(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* One frame as one chunk of the request body. */
static int send_frame(uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t n)
{
    char size[16];
    uint8_t hdr[HDR_LEN];
    int sn = snprintf(size, sizeof size, "%zx\r\n", HDR_LEN + n);
    put32(hdr, (uint32_t)n);
    hdr[4] = type;
    hdr[5] = flags;
    hdr[6] = hdr[7] = 0;
    put32(hdr + 8, stream);
    struct iovec iov[4] = {
        {size, (size_t)sn}, {hdr, HDR_LEN}, {(void *)payload, n}, {"\r\n", 2},
    };
    size_t total = (size_t)sn + HDR_LEN + n + 2;
    int idx = 0;
    while (total) {
        ssize_t w = writev(g_sock, iov + idx, 4 - idx);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        total -= (size_t)w;
        while (w > 0 && idx < 4) {
            if ((size_t)w >= iov[idx].iov_len) {
                w -= (ssize_t)iov[idx].iov_len;
                iov[idx].iov_len = 0;
                idx++;
            } else {
                iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + w;
                iov[idx].iov_len -= (size_t)w;
                w = 0;
            }
        }
    }
    return 0;
}

static void send_u32(uint8_t type, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    if (send_frame(type, 0, STREAM, b, 4) < 0)
        lost("the daemon's session broke: %s", strerror(errno));
}

/*
 * The session is unusable (the daemon or the VM went away, or something malformed came from
 * their side). The process cannot be followed any more, so it is killed, as runc's container
 * is when its init dies, and we end as a killed process would.
 */
static void lost(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("%s", msg);
    if (g_sock >= 0 && g_exec_sent) {
        uint8_t kill9[4];
        put32(kill9, SIGKILL);
        send_frame(T_SIGNAL, 0, STREAM, kill9, 4);
    }
    _exit(ST_LOST);
}

static void malformed(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void malformed(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_sock >= 0 && g_exec_sent) {
        uint8_t kill9[4];
        put32(kill9, SIGKILL);
        send_frame(T_SIGNAL, 0, STREAM, kill9, 4);
    }
    if (g_sock >= 0) {
        /* the protocol's answer to a malformed frame: ERROR on stream 0, then hang up */
        uint8_t err[4 + sizeof msg];
        size_t n = strlen(msg);
        put32(err, 71 /* EPROTO */);
        memcpy(err + 4, msg, n);
        send_frame(T_ERROR, 0, 0, err, 4 + n);
    }
    say("malformed data from the daemon's session: %s; the container's process was killed", msg);
    _exit(ST_LOST);
}

/* ---- reading from the daemon ------------------------------------------------------------------ */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads more raw bytes into g_in; waits at most until deadline (ms, 0 = none). 0 at EOF. */
static size_t fill(long long deadline, const char *waiting_for)
{
    if (g_in_len == 0)
        g_in_off = 0;
    else if (g_in_off + g_in_len == sizeof g_in) {
        memmove(g_in, g_in + g_in_off, g_in_len);
        g_in_off = 0;
    }
    for (;;) {
        if (deadline) {
            long long left = deadline - now_ms();
            if (left <= 0)
                lost("the daemon did not answer (%s) in time", waiting_for);
            struct pollfd p = {.fd = g_sock, .events = POLLIN};
            int r = poll(&p, 1, (int)left);
            if (r < 0 && errno != EINTR)
                lost("poll: %s", strerror(errno));
            if (r <= 0)
                continue;
        }
        ssize_t n = read(g_sock, g_in + g_in_off + g_in_len, sizeof g_in - g_in_off - g_in_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            lost("the container's VM ended: reading the daemon's session: %s", strerror(errno));
        }
        g_in_len += (size_t)n;
        return (size_t)n;
    }
}

/* One CRLF- (or LF-) terminated line of the head into line (NUL-terminated, CR dropped). */
static void head_line(char *line, size_t cap, size_t *head_total, long long deadline)
{
    size_t len = 0;
    for (;;) {
        while (g_in_len) {
            uint8_t c = g_in[g_in_off++];
            g_in_len--;
            if (++*head_total > MAX_HEAD)
                malformed("the answer's head is longer than %u KiB", MAX_HEAD >> 10);
            if (c == '\n') {
                if (len && line[len - 1] == '\r')
                    len--;
                line[len] = '\0';
                return;
            }
            if (len + 1 >= cap)
                malformed("a line of the answer's head is longer than %zu bytes", cap - 1);
            line[len++] = (char)c;
        }
        if (fill(deadline, "the session's answer") == 0)
            lost("the daemon closed the connection before answering");
    }
}

/* Copies a printable, bounded rendering of a daemon's error body into out. */
static void render_error(const uint8_t *b, size_t n, char *out, size_t cap)
{
    /* the API's errors are {"error":"...","kind":"..."}: show the message when it is there */
    const char *key = "\"error\":\"";
    size_t kl = strlen(key), start = 0, end = n;
    for (size_t i = 0; i + kl <= n; i++) {
        if (memcmp(b + i, key, kl) == 0) {
            start = i + kl;
            for (end = start; end < n && !(b[end] == '"' && b[end - 1] != '\\'); end++)
                ;
            break;
        }
    }
    size_t o = 0;
    for (size_t i = start; i < end && o + 1 < cap; i++)
        out[o++] = (b[i] >= 0x20 && b[i] < 0x7f) ? (char)b[i] : '?';
    out[o] = '\0';
}

static void read_head(void)
{
    char line[4096];
    size_t total = 0;
    long long deadline = now_ms() + HEAD_WAIT_MS;
    head_line(line, sizeof line, &total, deadline);
    int status = 0;
    if (strncmp(line, "HTTP/1.", 7) != 0 || strlen(line) < 12 || line[8] != ' ')
        malformed("the daemon did not answer in HTTP");
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            malformed("the daemon answered a bad status line");
        status = status * 10 + (line[i] - '0');
    }
    long long length = -1;
    for (;;) {
        head_line(line, sizeof line, &total, deadline);
        if (line[0] == '\0')
            break;
        if (strncasecmp(line, "transfer-encoding:", 18) == 0)
            g_chunked = strstr(line + 18, "chunked") != NULL;
        else if (strncasecmp(line, "content-length:", 15) == 0) {
            char *end;
            length = strtoll(line + 15, &end, 10);
        }
    }
    if (status != 200) {
        /* an ordinary error answer (no such sandbox, not running): show what it says */
        uint8_t body[4096];
        size_t n = 0;
        while (n < sizeof body && (length < 0 || (long long)n < length)) {
            if (g_in_len == 0 && fill(now_ms() + 5000, "its error") == 0)
                break;
            size_t k = g_in_len < sizeof body - n ? g_in_len : sizeof body - n;
            memcpy(body + n, g_in + g_in_off, k);
            g_in_off += k;
            g_in_len -= k;
            n += k;
        }
        char msg[1024];
        render_error(body, n, msg, sizeof msg);
        lost("the container's VM ended: the daemon refused the session (HTTP %d): %s", status, msg);
    }
}

/* Takes up to want body bytes from g_in (dechunked) into *out; returns how many, 0 = need more. */
static size_t body_bytes(const uint8_t **out, size_t want)
{
    if (!g_chunked) {
        size_t k = g_in_len < want ? g_in_len : want;
        *out = g_in + g_in_off;
        g_in_off += k;
        g_in_len -= k;
        return k;
    }
    while (g_in_len) {
        uint8_t c;
        switch (g_chunk_state) {
        case C_SIZE:
        case C_TRAILER:
            c = g_in[g_in_off++];
            g_in_len--;
            if (c != '\n') {
                if (g_chunk_line_len >= MAX_CHUNK_LINE)
                    malformed("a chunk-size line is longer than %u bytes", MAX_CHUNK_LINE);
                g_chunk_line[g_chunk_line_len++] = (char)c;
                continue;
            }
            if (g_chunk_line_len && g_chunk_line[g_chunk_line_len - 1] == '\r')
                g_chunk_line_len--;
            g_chunk_line[g_chunk_line_len] = '\0';
            if (g_chunk_state == C_TRAILER) {
                if (g_chunk_line_len == 0)
                    g_chunk_state = C_DONE;
                g_chunk_line_len = 0;
                if (g_chunk_state == C_DONE)
                    return 0;
                continue;
            }
            {
                uint64_t size = 0;
                size_t i = 0;
                for (; i < g_chunk_line_len; i++) {
                    char h = g_chunk_line[i];
                    int d = h >= '0' && h <= '9' ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (d < 0)
                        break;
                    if (size > (UINT64_C(1) << 40))
                        malformed("a chunk size is out of range");
                    size = size * 16 + (uint64_t)d;
                }
                if (i == 0 || (i < g_chunk_line_len && g_chunk_line[i] != ';' && g_chunk_line[i] != ' '))
                    malformed("a bad chunk size");
                g_chunk_line_len = 0;
                g_chunk_left = size;
                g_chunk_state = size == 0 ? C_TRAILER : C_DATA;
            }
            continue;
        case C_DATA: {
            size_t k = g_in_len;
            if (k > want)
                k = want;
            if (k > g_chunk_left)
                k = (size_t)g_chunk_left;
            *out = g_in + g_in_off;
            g_in_off += k;
            g_in_len -= k;
            g_chunk_left -= k;
            if (g_chunk_left == 0)
                g_chunk_state = C_DATA_END;
            return k;
        }
        case C_DATA_END:
            c = g_in[g_in_off++];
            g_in_len--;
            if (c == '\r' && g_chunk_line_len == 0) {
                g_chunk_line_len = 1;
                continue;
            }
            if (c != '\n')
                malformed("a chunk does not end with CRLF");
            g_chunk_line_len = 0;
            g_chunk_state = C_SIZE;
            continue;
        case C_DONE:
            return 0;
        }
    }
    return 0;
}

static int body_done(void) { return g_chunked && g_chunk_state == C_DONE; }

static const char *type_name(uint8_t t)
{
    switch (t) {
    case T_HELLO_R: return "HELLO";
    case T_PONG: return "PONG";
    case T_STARTED: return "STARTED";
    case T_STDOUT: return "STDOUT";
    case T_STDERR: return "STDERR";
    case T_EXIT: return "EXIT";
    case T_CREDIT_R: return "CREDIT";
    case T_CONNECTED: return "CONNECTED";
    case T_RESULT: return "RESULT";
    case T_DATA: return "DATA";
    case T_END: return "END";
    case T_ERROR: return "ERROR";
    default: return NULL;
    }
}

/* The least payload a type needs (docs/guest-protocol.md). */
static size_t min_payload(uint8_t t)
{
    switch (t) {
    case T_HELLO_R: return 8;
    case T_STARTED: case T_CREDIT_R: case T_ERROR: return 4;
    case T_EXIT: return 9;
    case T_END: return 8;
    default: return 0;
    }
}

/*
 * Moves body bytes into g_frame until one whole frame is there, checking the header as soon as
 * it is complete. Returns 1 with a frame, 0 when more bytes are needed.
 */
static int next_frame(void)
{
    for (;;) {
        if (g_body_state == B_LINE) {
            /* the sandbox as one JSON line before the frames: skipped, within bounds */
            const uint8_t *p;
            size_t k = body_bytes(&p, 1);
            if (k == 0)
                return 0;
            if (*p == '\n')
                g_body_state = B_FRAMES;
            else if (++g_first_line > MAX_FIRST_LINE)
                malformed("the session's answer does not start with a JSON line");
            continue;
        }
        size_t need = g_frame_len < HDR_LEN ? HDR_LEN - g_frame_len : HDR_LEN + get32(g_frame) - g_frame_len;
        if (need == 0)
            return 1;
        const uint8_t *p;
        size_t k = body_bytes(&p, need);
        if (k == 0)
            return 0;
        memcpy(g_frame + g_frame_len, p, k);
        g_frame_len += k;
        if (g_frame_len == HDR_LEN) {
            uint32_t n = get32(g_frame);
            uint8_t t = g_frame[4];
            if (n > MAX_PAYLOAD)
                malformed("a frame's payload of %u bytes is over the protocol's %u", n, MAX_PAYLOAD);
            if (type_name(t) == NULL)
                malformed("a frame of unknown type 0x%02x", t);
            if ((g_frame[5] & ~FLAG_EOF) || g_frame[6] || g_frame[7])
                malformed("a %s frame with reserved bits set", type_name(t));
            if (n < min_payload(t))
                malformed("a %s frame of %u bytes is too short", type_name(t), n);
            if (t == T_PONG && n > 64)
                malformed("a PONG frame longer than 64 bytes");
        }
        if (g_frame_len >= HDR_LEN && g_frame_len == HDR_LEN + get32(g_frame))
            return 1;
    }
}

/* ---- the session ------------------------------------------------------------------------------ */

static void connect_daemon(const char *socket_path, const char *sandbox)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof sa.sun_path)
        lost("the daemon's socket path is too long: %s", socket_path);
    strcpy(sa.sun_path, socket_path);
    g_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_sock < 0)
        lost("socket: %s", strerror(errno));
    if (connect(g_sock, (struct sockaddr *)&sa, sizeof sa) < 0)
        lost("the container's VM ended: no daemon answers on %s: %s", socket_path, strerror(errno));
    /* The sandbox's name goes into the path: anything but [A-Za-z0-9._-] is percent-encoded. */
    char path[1200];
    size_t o = 0;
    o += (size_t)snprintf(path, sizeof path, "/v1/sandboxes/");
    for (const char *s = sandbox; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (o + 4 >= sizeof path)
            lost("the sandbox name is too long");
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
            c == '-')
            path[o++] = (char)c;
        else
            o += (size_t)snprintf(path + o, sizeof path - o, "%%%02X", c);
    }
    path[o] = '\0';
    char head[1600];
    int n = snprintf(head, sizeof head,
                     "POST %s/session HTTP/1.1\r\nHost: airlockd\r\nConnection: close\r\n"
                     "Content-Type: application/vnd.airlock.guest-frames\r\nTransfer-Encoding: chunked\r\n\r\n",
                     path);
    if (write_all(g_sock, head, (size_t)n) < 0)
        lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
    read_head();
}

static void hello(int need_pty)
{
    uint8_t v[4];
    put32(v, PROTO_VERSION);
    if (send_frame(T_HELLO, 0, 0, v, 4) < 0)
        lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
    long long deadline = now_ms() + HELLO_WAIT_MS;
    while (!next_frame()) {
        if (body_done() || fill(deadline, "HELLO") == 0)
            lost("the container's VM ended: the daemon closed the session before HELLO");
    }
    uint8_t t = g_frame[4];
    uint32_t n = get32(g_frame);
    if (t == T_ERROR)
        lost("the container's VM ended: the agent refused the session");
    if (t != T_HELLO_R || get32(g_frame + 8) != 0)
        malformed("the session began with %s on stream %u, not HELLO", type_name(t), get32(g_frame + 8));
    if (get32(g_frame + HDR_LEN) != PROTO_VERSION)
        malformed("the agent speaks protocol version %u, this stand-in %u", get32(g_frame + HDR_LEN), PROTO_VERSION);
    uint32_t features = get32(g_frame + HDR_LEN + 4);
    (void)n;
    if (!(features & FEAT_EXEC) || (need_pty && !(features & FEAT_PTY)))
        lost("the sandbox's agent cannot run %s", need_pty ? "a process on a terminal" : "a process");
    g_frame_len = 0;
}

/* The parent's side of --detach: the child's pid in DIR/pid (written whole, then renamed). */
static void detach(const char *dir)
{
    char tmp[4096], path[4096];
    if (snprintf(tmp, sizeof tmp, "%s/pid.tmp", dir) >= (int)sizeof tmp ||
        snprintf(path, sizeof path, "%s/pid", dir) >= (int)sizeof path) {
        say("the exec's directory path is too long");
        _exit(ST_OWN_ERROR);
    }
    pid_t child = fork();
    if (child < 0) {
        say("fork: %s", strerror(errno));
        _exit(ST_OWN_ERROR);
    }
    if (child == 0)
        return;
    char num[32];
    int n = snprintf(num, sizeof num, "%d\n", (int)child);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || write_all(fd, num, (size_t)n) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        say("cannot record the exec's process in %s: %s", path, strerror(errno));
        kill(child, SIGKILL);
        _exit(ST_OWN_ERROR);
    }
    _exit(0);
}

static void wait_start(const char *dir)
{
    char fifo[4096];
    if (snprintf(fifo, sizeof fifo, "%s/%s", dir, START_FIFO) >= (int)sizeof fifo)
        lost("the container's directory path is too long");
    int fd;
    /* blocks until `start` opens it for reading; a signal meanwhile ends us (on_signal) */
    while ((fd = open(fifo, O_WRONLY | O_CLOEXEC)) < 0 && errno == EINTR)
        ;
    if (fd < 0) {
        say("cannot open the start FIFO %s: %s", fifo, strerror(errno));
        _exit(ST_OWN_ERROR);
    }
    close(fd);
}

static void window_size(uint16_t *rows, uint16_t *cols)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    } else {
        *rows = 24;
        *cols = 80;
    }
}

static size_t read_request(const char *dir, uint8_t *buf, size_t cap)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, EXEC_FILE) >= (int)sizeof path) {
        say("the container's directory path is too long");
        _exit(ST_OWN_ERROR);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        say("cannot read the container's process (%s): %s", path, strerror(errno));
        _exit(ST_OWN_ERROR);
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say("cannot read the container's process (%s): %s", path, strerror(errno));
            _exit(ST_OWN_ERROR);
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == cap) {
            say("the container's process (%s) is larger than one EXEC frame", path);
            _exit(ST_OWN_ERROR);
        }
    }
    close(fd);
    return n;
}

/* Output of the process to our stdout or stderr; a reader that went away only loses it. */
static void relay_output(int fd, int *ok, const uint8_t *p, size_t n)
{
    if (*ok && write_all(fd, p, n) < 0)
        *ok = 0;
}

/* Acts on one frame of the exec; returns -1 to go on, else the exit status. */
static int on_frame(void)
{
    uint8_t t = g_frame[4];
    uint32_t stream = get32(g_frame + 8);
    uint32_t n = get32(g_frame);
    const uint8_t *p = g_frame + HDR_LEN;
    g_frame_len = 0;
    if (stream == 0) {
        if (t == T_ERROR)
            lost("the container's VM ended: the agent ended the session");
        if (t == T_PONG)
            return -1;
        malformed("a %s frame on stream 0", type_name(t));
    }
    if (stream != STREAM)
        return -1; /* not ours (the daemon routes only ours here); ignored as the protocol says */
    switch (t) {
    case T_STARTED:
        g_started = 1;
        return -1;
    case T_STDOUT:
    case T_STDERR:
        if (n > g_out_window)
            malformed("%u bytes of %s beyond the window of %llu", n, type_name(t), (unsigned long long)g_out_window);
        if (t == T_STDOUT)
            relay_output(STDOUT_FILENO, &g_stdout_ok, p, n);
        else
            relay_output(STDERR_FILENO, &g_stderr_ok, p, n);
        if (n)
            send_u32(T_CREDIT, n); /* the window comes back once the bytes are out */
        return -1;
    case T_CREDIT_R: {
        uint32_t add = get32(p);
        if (g_in_window + add > MAX_WINDOW)
            malformed("a CREDIT raising the window above 2^31");
        g_in_window += add;
        return -1;
    }
    case T_EXIT: {
        int32_t code = (int32_t)get32(p);
        int32_t sig = (int32_t)get32(p + 4);
        if (sig < 0 || sig > 64)
            malformed("an EXIT with signal %d", sig);
        return sig ? 128 + sig : (code & 0xff);
    }
    case T_ERROR: {
        uint32_t code = get32(p);
        char msg[512];
        size_t o = 0;
        for (uint32_t i = 4; i < n && o + 1 < sizeof msg; i++)
            msg[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
        msg[o] = '\0';
        if (!g_started && code == ENOENT) {
            say("%s", msg);
            return ST_NOT_FOUND;
        }
        if (!g_started && code == EACCES) {
            say("%s", msg);
            return ST_NOT_EXECUTABLE;
        }
        say("the container's VM ended: %s (errno %u)", msg, code);
        return ST_LOST;
    }
    default:
        malformed("an unexpected %s frame on the exec's stream", type_name(t));
    }
}

static void on_signals(void)
{
    unsigned char sigs[64];
    ssize_t k = read(g_sigpipe[0], sigs, sizeof sigs);
    for (ssize_t i = 0; i < k; i++) {
        if (sigs[i] == SIGWINCH) {
            if (!g_tty)
                continue;
            uint16_t rows, cols;
            uint8_t b[4];
            window_size(&rows, &cols);
            put16(b, rows);
            put16(b + 2, cols);
            if (send_frame(T_RESIZE, 0, STREAM, b, 4) < 0)
                lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
        } else {
            send_u32(T_SIGNAL, sigs[i]);
        }
    }
}

static void on_stdin(void)
{
    static uint8_t buf[MAX_PAYLOAD];
    size_t want = g_in_window < sizeof buf ? (size_t)g_in_window : sizeof buf;
    ssize_t r = read(STDIN_FILENO, buf, want);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (r <= 0) {
        /* end of input (EIO: a terminal hung up): the process's stdin closes */
        g_stdin_open = 0;
        if (send_frame(T_STDIN, FLAG_EOF, STREAM, NULL, 0) < 0)
            lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
        return;
    }
    g_in_window -= (size_t)r;
    if (send_frame(T_STDIN, 0, STREAM, buf, (size_t)r) < 0)
        lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
}

static int relay(void)
{
    for (;;) {
        /* frames already buffered first */
        while (next_frame()) {
            int st = on_frame();
            if (st >= 0)
                return st;
        }
        if (body_done())
            lost("the container's VM ended: the daemon ended the session");
        struct pollfd p[3] = {
            {.fd = g_sock, .events = POLLIN},
            {.fd = g_sigpipe[0], .events = POLLIN},
            {.fd = (g_started && g_stdin_open && g_in_window > 0) ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            lost("poll: %s", strerror(errno));
        }
        if (p[1].revents & POLLIN)
            on_signals();
        if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
            on_stdin();
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (fill(0, "") == 0)
                lost("the container's VM ended: the daemon closed the session");
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        say("usage: airlock-standin DIR SANDBOX DAEMON_SOCKET [--wait-start] [--tty]");
        return ST_OWN_ERROR;
    }
    const char *dir = argv[1], *sandbox = argv[2], *socket_path = argv[3];
    int wait = 0, detached = 0;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--wait-start") == 0)
            wait = 1;
        else if (strcmp(argv[i], "--detach") == 0)
            detached = 1;
        else if (strcmp(argv[i], "--tty") == 0)
            g_tty = 1;
        else {
            say("airlock-standin: unknown option %s", argv[i]);
            return ST_OWN_ERROR;
        }
    }

    if (detached)
        detach(dir);
    if (pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        say("pipe: %s", strerror(errno));
        return ST_OWN_ERROR;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++)
        sigaction(FORWARDED[i], &sa, NULL);
    if (g_tty)
        sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a reader gone is an error from write, not our death */

    if (g_tty) {
        /* Our own session with the terminal on stdin as its controlling tty: the caller's
         * resizes of the master then reach us as SIGWINCH. */
        setsid();
        if (ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
            say("the terminal on stdin cannot become the controlling terminal: %s", strerror(errno));
    }

    static uint8_t request[MAX_PAYLOAD];
    size_t n = read_request(dir, request, MAX_PAYLOAD - TTY_TLV_LEN);
    connect_daemon(socket_path, sandbox);
    hello(g_tty);
    if (wait)
        wait_start(dir);
    if (g_tty) {
        uint16_t rows, cols;
        window_size(&rows, &cols);
        put16(request + n, X_TTY);
        put32(request + n + 2, 4);
        put16(request + n + 6, rows);
        put16(request + n + 8, cols);
        n += TTY_TLV_LEN;
    }
    /* From here a signal is the process's: queued, then forwarded once the EXEC is out. */
    g_running = 1;
    g_exec_sent = 1;
    if (send_frame(T_EXEC, 0, STREAM, request, n) < 0)
        lost("the container's VM ended: writing to the daemon: %s", strerror(errno));
    int status = relay();
    return status;
}
