/* The protocol engine: one epoll loop serving one host connection at a time, frame dispatch,
 * stream table, flow-control windows and process output/stdin plumbing. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int g_pid1;

/* Output budget. Process/file data is read only while the buffer is below DATA_LIMIT and
 * host frames are parsed only while it is below IN_LIMIT; the gap is reserved for the
 * small control frames (CREDIT, EXIT, one reply) those can trigger, so appends never fail
 * in practice and a host that stops reading just stalls everything. */
#define OUT_CAP (1u << 20)
#define DATA_LIMIT (OUT_CAP / 2)
#define IN_LIMIT (OUT_CAP - 3 * MAX_FRAME)

enum { C_NONE, C_ACTIVE, C_CLOSING };

static int g_ep = -1;
static int g_listen = -1, g_port = -1, g_conn = -1;
static int g_state = C_NONE;
static int g_hello;
static int g_suspended; /* the unix listener is closed for a checkpoint (SIGUSR1 .. SIGUSR2) */
static struct timespec g_close_deadline;
static struct watch w_conn, w_listen, w_sig;
static struct obuf g_out;
static uint8_t *g_in;
static size_t g_inlen;
static struct stream *g_streams; /* session streams and detached processes */
static struct stream *g_dead;
static int g_nstreams; /* live session streams, for the 256 limit */
static uint8_t g_scratch[MAX_PAYLOAD];

void logmsg(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    dprintf(2, "airlock-init: %s\n", buf);
}

void watch_init(struct watch *w, int kind, int fd, struct stream *s)
{
    memset(w, 0, sizeof *w);
    w->kind = kind;
    w->fd = fd;
    w->s = s;
}

void watch_apply(struct watch *w)
{
    if (w->fd < 0)
        return;
    if (w->want == 0) {
        if (w->registered) {
            epoll_ctl(g_ep, EPOLL_CTL_DEL, w->fd, NULL);
            w->registered = 0;
        }
        return;
    }
    struct epoll_event ev = {.events = w->want, .data.ptr = w};
    if (!w->registered) {
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, w->fd, &ev) == 0)
            w->registered = 1;
        else
            logmsg("epoll add fd %d: %s", w->fd, strerror(errno));
    } else if (w->have != w->want) {
        epoll_ctl(g_ep, EPOLL_CTL_MOD, w->fd, &ev);
    }
    w->have = w->want;
}

void watch_close(struct watch *w)
{
    if (w->fd >= 0) {
        if (w->registered)
            epoll_ctl(g_ep, EPOLL_CTL_DEL, w->fd, NULL);
        close(w->fd);
    }
    w->fd = -1;
    w->registered = 0;
    w->want = w->have = 0;
}

int send_frame(uint8_t type, uint8_t flags, uint32_t id, const void *p, size_t n)
{
    if (g_state != C_ACTIVE)
        return 0; /* session gone: output is discarded by design */
    if (obuf_frame(&g_out, type, flags, id, p, n) < 0) {
        logmsg("output buffer overflow (type 0x%02x), dropping session", type);
        return -1;
    }
    return 0;
}

int send_error(uint32_t id, int code, const char *fmt, ...)
{
    uint8_t buf[4 + 1024];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf((char *)buf + 4, sizeof buf - 4, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    if ((size_t)m > sizeof buf - 5)
        m = sizeof buf - 5;
    put32(buf, (uint32_t)code);
    return send_frame(T_ERROR, 0, id, buf, 4 + (size_t)m);
}

uint8_t *out_reserve(size_t max)
{
    if (g_state != C_ACTIVE || g_out.len > DATA_LIMIT)
        return NULL;
    return obuf_reserve(&g_out, max);
}

void out_commit(uint8_t type, uint8_t flags, uint32_t id, size_t n)
{
    obuf_commit(&g_out, type, flags, id, n);
}

int out_data_ok(void) { return g_state == C_ACTIVE && g_out.len <= DATA_LIMIT; }

void for_each_process(void (*fn)(pid_t pid))
{
    for (struct stream *s = g_streams; s; s = s->next)
        if (s->kind == S_EXEC && s->pid > 0)
            fn(s->pid);
}

/* ---- streams ---- */

static struct stream *stream_find(uint32_t id)
{
    for (struct stream *s = g_streams; s; s = s->next)
        if (s->id == id && !s->detached && !s->dead)
            return s;
    return NULL;
}

static struct stream *stream_new(uint32_t id, int kind)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    s->kind = kind;
    s->win = INITIAL_WINDOW;
    s->host_win = INITIAL_WINDOW;
    s->fd = -1;
    watch_init(&s->w_out, W_OUT, -1, s);
    watch_init(&s->w_err, W_ERR, -1, s);
    watch_init(&s->w_in, W_IN, -1, s);
    watch_init(&s->w_timer, W_TIMER, -1, s);
    s->next = g_streams;
    g_streams = s;
    g_nstreams++;
    return s;
}

/* Unlinks now, frees after the event batch: later events in the batch may point at it. */
static void stream_kill(struct stream *s)
{
    if (s->dead)
        return;
    for (struct stream **pp = &g_streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (!s->detached)
        g_nstreams--;
    watch_close(&s->w_out);
    watch_close(&s->w_err);
    watch_close(&s->w_in);
    watch_close(&s->w_timer);
    if (s->kind == S_SOCK)
        sock_forget(s);
    else if (s->kind != S_EXEC)
        file_abort(s);
    s->dead = 1;
    s->next = g_dead;
    g_dead = s;
}

static void free_dead(void)
{
    while (g_dead) {
        struct stream *s = g_dead;
        g_dead = s->next;
        free(s->ibuf);
        free(s->path);
        free(s->tmp);
        free(s);
    }
}

/* The process keeps running without a session; its output is read and thrown away. */
static void stream_detach(struct stream *s)
{
    if (s->detached)
        return;
    s->detached = 1;
    g_nstreams--;
    /* A pod app container's process lives as long as its host stand-in, whose session this was
     * (its SIGKILL, or delete --force, ends it here too): nothing of it stays in the pod's VM. */
    if (s->kill_on_detach && s->pid > 0 && !s->exited)
        kill(-s->pid, SIGKILL);
    free(s->ibuf);
    s->ibuf = NULL;
    s->ilen = s->ioff = 0;
    if (!s->pty) {
        watch_close(&s->w_in);
        s->stdin_open = 0;
    }
}

static void drop_session_state(void)
{
    struct stream *s = g_streams, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->detached)
            continue;
        if (s->kind == S_EXEC)
            stream_detach(s);
        else
            stream_kill(s);
    }
    g_nstreams = 0;
    g_hello = 0;
}

/* ---- connection ---- */

/* While no host is attached, the virtio port raises SIGIO when one attaches (virtio_console
 * signals host connect/disconnect to fasync owners), which wakes the loop through the signalfd
 * instead of a 10 ms poll that cost an idle VM about 2% of a host CPU under emulation. Off while
 * a host is attached: the port would also signal every incoming buffer. */
static void port_async(int on)
{
    int fl = fcntl(g_port, F_GETFL);
    if (fl < 0)
        return;
    if (on) {
        fcntl(g_port, F_SETOWN, getpid());
        fcntl(g_port, F_SETFL, fl | O_ASYNC);
    } else {
        fcntl(g_port, F_SETFL, fl & ~O_ASYNC);
    }
}

static void conn_gone(void)
{
    if (g_port >= 0)
        logmsg("host disconnected");
    drop_session_state();
    obuf_reset(&g_out);
    g_inlen = 0;
    w_conn.want = 0;
    if (g_listen >= 0) {
        watch_close(&w_conn);
        g_conn = -1;
    } else {
        watch_apply(&w_conn); /* unregisters; the port fd itself stays open */
        port_async(1);
    }
    g_state = C_NONE;
}

static void conn_start(int fd)
{
    g_conn = fd;
    watch_init(&w_conn, W_CONN, fd, NULL);
    obuf_reset(&g_out);
    g_inlen = 0;
    g_hello = 0;
    g_state = C_ACTIVE;
}

/* Malformed input or a fatal protocol error: tell the host why, drop everything, and let
 * the host close (unix sockets are also closed by us once the ERROR is flushed). */
static void session_fail(int code, const char *why)
{
    if (g_state != C_ACTIVE)
        return;
    logmsg("ending session: %s", why);
    drop_session_state();
    g_inlen = 0;
    if (obuf_room(&g_out) < 4 + 256 + HDR_LEN)
        obuf_drop(&g_out); /* the ERROR matters more than stale output */
    send_error(0, code, "%s", why);
    g_state = C_CLOSING;
    clock_gettime(CLOCK_MONOTONIC, &g_close_deadline);
    g_close_deadline.tv_sec += 2;
}

static int conn_flush(void)
{
    while (g_out.len) {
        ssize_t n;
        if (g_listen >= 0)
            n = send(g_conn, obuf_head(&g_out), g_out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        else
            n = write(g_conn, obuf_head(&g_out), g_out.len);
        if (n > 0) {
            obuf_consume(&g_out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        logmsg("writing to host: %s", n < 0 ? strerror(errno) : "short write");
        return -1;
    }
    return 0;
}

/* ---- frame handlers ---- */

static int new_stream_check(uint32_t id, const char **why)
{
    if (id == 0) {
        *why = "request on stream 0";
        return -1;
    }
    if (stream_find(id)) {
        *why = "stream id already in use";
        return -1;
    }
    if (g_nstreams >= MAX_STREAMS) {
        send_error(id, EMFILE, "too many streams (limit %d)", MAX_STREAMS);
        return 0;
    }
    return 1;
}

static void stdin_flush(struct stream *s);

static int handle_frame(uint8_t type, uint8_t flags, uint32_t id, const uint8_t *p, uint32_t n,
                        const char **why)
{
    struct stream *s;
    int r;

    if (g_hello && type == T_HELLO && id == 0) {
        /* A virtio-serial host can close and reopen the port faster than we can observe
         * the hang-up; a HELLO at a frame boundary is then the only sign of a new session. */
        logmsg("HELLO inside a session: starting a new session");
        drop_session_state();
    }
    if (!g_hello) {
        if (type != T_HELLO || id != 0 || n < 4) {
            *why = "expected HELLO";
            return -1;
        }
        uint32_t v = get32(p);
        if (v != PROTO_VERSION) {
            *why = "unsupported protocol version";
            return -1;
        }
        uint8_t reply[8 + 64];
        const char *ver = AIRLOCK_VERSION;
        size_t vl = strlen(ver);
        if (vl > 64)
            vl = 64;
        put32(reply, PROTO_VERSION);
        put32(reply + 4, FEAT_EXEC | FEAT_PTY | FEAT_FILES | FEAT_SHUTDOWN | FEAT_IDENTITY | FEAT_SOCKETS |
                                FEAT_FSOPS | FEAT_BUILTINS);
        memcpy(reply + 8, ver, vl);
        g_hello = 1;
        return send_frame(T_HELLO_R, 0, 0, reply, 8 + vl);
    }

    switch (type) {
    case T_PING:
        if (id != 0 || n > 64)
            break;
        return send_frame(T_PONG, 0, 0, p, n);
    case T_SHUTDOWN:
        if (id != 0 || n < 1)
            break;
        conn_flush();
        shutdown_everything();
    case T_EXEC:
    case T_FILE_READ:
    case T_FILE_WRITE:
        r = new_stream_check(id, why);
        if (r <= 0)
            return r;
        s = stream_new(id, type == T_EXEC ? S_EXEC : type == T_FILE_READ ? S_FREAD : S_FWRITE);
        if (!s)
            return send_error(id, ENOMEM, "out of memory");
        r = type == T_EXEC         ? exec_start(s, p, n)
            : type == T_FILE_READ ? file_read_start(s, p, n)
                                  : file_write_start(s, p, n);
        if (r <= 0)
            stream_kill(s);
        if (r < 0) {
            *why = "malformed request TLV";
            return -1;
        }
        return 0;
    case T_ACCEPT:
    case T_CONNECT:
        r = new_stream_check(id, why);
        if (r <= 0)
            return r;
        s = stream_new(id, S_SOCK);
        if (!s)
            return send_error(id, ENOMEM, "out of memory");
        r = type == T_ACCEPT ? sock_accept_start(s, p, n) : sock_connect_start(s, p, n);
        if (r <= 0)
            stream_kill(s);
        if (r < 0) {
            *why = "malformed request TLV";
            return -1;
        }
        return 0;
    case T_SOCK_DATA:
        if (id == 0)
            break;
        s = stream_find(id);
        if (!s)
            return 0;
        if (s->kind != S_SOCK) {
            *why = "SOCK_DATA on a non-socket stream";
            return -1;
        }
        if (n > s->host_win) {
            *why = "SOCK_DATA beyond the window";
            return -1;
        }
        s->host_win -= n;
        sock_host_data(s, p, n, flags & FLAG_EOF);
        return 0;
    case T_SET_ENV:
        r = new_stream_check(id, why);
        if (r <= 0)
            return r;
        r = exec_set_env(id, p, n);
        if (r < 0)
            *why = "malformed request TLV";
        return r;
    case T_REMOVE:
        r = new_stream_check(id, why);
        if (r <= 0)
            return r;
        s = stream_new(id, S_REMOVE);
        if (!s)
            return send_error(id, ENOMEM, "out of memory");
        r = file_remove_start(s, p, n);
        if (r <= 0)
            stream_kill(s);
        if (r < 0) {
            *why = "malformed request TLV";
            return -1;
        }
        return 0;
    case T_STAT:
    case T_LIST:
    case T_MKDIR:
    case T_MOVE:
    case T_IDENTITY:
        r = new_stream_check(id, why);
        if (r <= 0)
            return r;
        r = type == T_STAT    ? file_stat(id, p, n)
            : type == T_LIST  ? file_list(id, p, n)
            : type == T_MKDIR ? file_mkdir(id, p, n)
            : type == T_MOVE  ? file_move(id, p, n)
                              : identity_apply(id, p, n);
        if (r < 0)
            *why = "malformed request TLV";
        return r;
    case T_STDIN:
        if (id == 0)
            break;
        s = stream_find(id);
        if (!s)
            return 0; /* the stream ended while this was in flight */
        if (s->kind != S_EXEC) {
            *why = "STDIN on a non-exec stream";
            return -1;
        }
        if (n > s->host_win) {
            *why = "STDIN beyond the window";
            return -1;
        }
        s->host_win -= n;
        if (!s->stdin_open || s->stdin_eof) {
            s->credit_pending += n;
        } else if (n) {
            if (!s->ibuf && !(s->ibuf = malloc(INITIAL_WINDOW))) {
                s->credit_pending += n; /* cannot hold it; drop rather than fail */
            } else {
                if (s->ioff + s->ilen + n > INITIAL_WINDOW) {
                    memmove(s->ibuf, s->ibuf + s->ioff, s->ilen);
                    s->ioff = 0;
                }
                memcpy(s->ibuf + s->ioff + s->ilen, p, n);
                s->ilen += n;
            }
        }
        if (flags & FLAG_EOF)
            s->stdin_eof = 1;
        stdin_flush(s);
        return 0;
    case T_SIGNAL:
        if (id == 0 || n < 4)
            break;
        s = stream_find(id);
        if (!s)
            return 0;
        if (s->kind != S_EXEC) {
            *why = "SIGNAL on a non-exec stream";
            return -1;
        }
        if (get32(p) < 65 && s->pid > 0)
            kill(-s->pid, (int)get32(p));
        return 0;
    case T_RESIZE:
        if (id == 0 || n < 4)
            break;
        s = stream_find(id);
        if (!s)
            return 0;
        if (s->kind != S_EXEC) {
            *why = "RESIZE on a non-exec stream";
            return -1;
        }
        exec_resize(s, get16(p), get16(p + 2));
        return 0;
    case T_CREDIT:
        if (id == 0 || n < 4)
            break;
        s = stream_find(id);
        if (!s)
            return 0;
        if (s->kind == S_FWRITE) {
            *why = "CREDIT on a write stream";
            return -1;
        }
        if ((uint64_t)s->win + get32(p) > MAX_WINDOW) {
            *why = "CREDIT raises the window above 2^31";
            return -1;
        }
        s->win += get32(p);
        return 0;
    case T_FILE_DATA:
        if (id == 0)
            break;
        s = stream_find(id);
        if (!s)
            return 0;
        if (s->kind != S_FWRITE) {
            *why = "FILE_DATA on a non-write stream";
            return -1;
        }
        if (n > s->host_win) {
            *why = "FILE_DATA beyond the window";
            return -1;
        }
        s->host_win -= n;
        if (file_write_data(s, p, n, flags & FLAG_EOF))
            stream_kill(s);
        return 0;
    case T_ERROR:
        if (n < 4)
            break;
        if (id == 0) {
            *why = "host sent ERROR";
            return -1;
        }
        s = stream_find(id);
        if (s) {
            if (s->kind == S_EXEC) {
                stream_detach(s);
                s->detached = 1;
            } else {
                stream_kill(s);
            }
        }
        return 0;
    default:
        *why = "unknown frame type";
        return -1;
    }
    *why = "bad stream id or short payload";
    return -1;
}

/* Parses complete frames from the input buffer while there is output room for replies. */
static void process_input(void)
{
    size_t pos = 0;
    while (g_state == C_ACTIVE && g_inlen - pos >= HDR_LEN && g_out.len <= IN_LIMIT) {
        const uint8_t *h = g_in + pos;
        uint32_t n = get32(h);
        if (n > MAX_PAYLOAD || (h[5] & ~FLAG_EOF) || h[6] || h[7]) {
            session_fail(EPROTO, "malformed frame header");
            return;
        }
        if (g_inlen - pos < HDR_LEN + n)
            break;
        const char *why = "malformed frame";
        int r = handle_frame(h[4], h[5], get32(h + 8), h + HDR_LEN, n, &why);
        if (g_state != C_ACTIVE)
            return;
        if (r < 0) {
            session_fail(EPROTO, why);
            return;
        }
        pos += HDR_LEN + n;
    }
    if (pos && g_state == C_ACTIVE) {
        memmove(g_in, g_in + pos, g_inlen - pos);
        g_inlen -= pos;
    }
}

/* After a malformed frame on virtio-serial the host closes and reopens the port, which we
 * may not see (see handle_frame). Discarded input is scanned for the exact bytes of a
 * version-1 HELLO; finding them restarts the session there. Bytes that straddle two reads
 * are kept in g_in (unused while closing). */
static const uint8_t hello_v1[HDR_LEN + 4] = {0, 0, 0, 4, T_HELLO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void resync(size_t n)
{
    size_t keep = sizeof hello_v1 - 1;
    if (g_inlen + n > MAX_FRAME) {
        size_t drop = g_inlen + n - MAX_FRAME;
        memmove(g_in, g_in + drop, g_inlen - drop);
        g_inlen -= drop;
    }
    memcpy(g_in + g_inlen, g_scratch, n);
    g_inlen += n;
    uint8_t *hit = memmem(g_in, g_inlen, hello_v1, sizeof hello_v1);
    if (!hit) {
        if (g_inlen > keep) {
            memmove(g_in, g_in + g_inlen - keep, keep);
            g_inlen = keep;
        }
        return;
    }
    size_t rest = g_inlen - (size_t)(hit - g_in);
    memmove(g_in, hit, rest);
    logmsg("new session after resync");
    obuf_drop(&g_out);
    g_hello = 0;
    g_state = C_ACTIVE;
    g_inlen = rest;
    process_input();
}

static void conn_readable(void)
{
    for (;;) {
        if (g_state == C_ACTIVE && (g_inlen >= MAX_FRAME || g_out.len > IN_LIMIT))
            return;
        uint8_t *dst = g_state == C_ACTIVE ? g_in + g_inlen : g_scratch;
        size_t cap = g_state == C_ACTIVE ? MAX_FRAME - g_inlen : sizeof g_scratch;
        ssize_t n = read(g_conn, dst, cap);
        if (n > 0) {
            if (g_state == C_ACTIVE) {
                g_inlen += (size_t)n;
                process_input();
            } else if (g_port >= 0) {
                resync((size_t)n);
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        conn_gone(); /* EOF: host closed the socket or the virtio port */
        return;
    }
}

/* ---- process plumbing ---- */

static void stdin_close(struct stream *s)
{
    s->stdin_open = 0;
    if (!s->pty)
        watch_close(&s->w_in);
}

static void stdin_flush(struct stream *s)
{
    int fd = s->pty ? s->w_out.fd : s->w_in.fd;
    if (!s->stdin_open || fd < 0) {
        s->credit_pending += (uint32_t)s->ilen;
        s->ilen = s->ioff = 0;
        return;
    }
    while (s->ilen) {
        ssize_t n = write(fd, s->ibuf + s->ioff, s->ilen);
        if (n > 0) {
            s->ioff += (size_t)n;
            s->ilen -= (size_t)n;
            s->credit_pending += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EPIPE: the process closed stdin; the rest is consumed by being dropped */
        s->credit_pending += (uint32_t)s->ilen;
        s->ilen = 0;
        stdin_close(s);
        return;
    }
    s->ioff = 0;
    if (s->stdin_eof && s->stdin_open) {
        if (!s->pty) {
            stdin_close(s);
        } else {
            /* a terminal has no half-close; VEOF is what a user typing ^D would send */
            ssize_t n = write(fd, "\x04", 1);
            if (n == 1 || (n < 0 && errno != EAGAIN && errno != EINTR))
                s->stdin_open = 0;
        }
    }
}

static void output_readable(struct stream *s, int is_err)
{
    struct watch *w = is_err ? &s->w_err : &s->w_out;
    ssize_t n;
    if (s->detached || g_state != C_ACTIVE) {
        n = read(w->fd, g_scratch, sizeof g_scratch);
    } else {
        size_t max = s->win < MAX_PAYLOAD ? s->win : MAX_PAYLOAD;
        if (max == 0 || g_out.len > DATA_LIMIT)
            return;
        uint8_t *p = obuf_reserve(&g_out, max);
        if (!p)
            return;
        n = read(w->fd, p, max);
        if (n > 0) {
            obuf_commit(&g_out, is_err ? T_STDERR : T_STDOUT, 0, s->id, (size_t)n);
            s->win -= (uint32_t)n;
        }
    }
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    /* EOF, or EIO from a pty master once every slave fd is closed */
    if (is_err)
        s->err_eof = 1;
    else
        s->out_eof = 1;
    if (!is_err && s->pty) {
        /* Keep the master open until the stream ends: closing it now hangs up the
         * terminal and SIGHUPs a process that has closed its fds but not yet exited. */
        s->stdin_open = 0;
        s->ilen = 0;
        w->want = 0;
        watch_apply(w);
        return;
    }
    watch_close(w);
}

static void reap_children(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (struct stream *s = g_streams; s; s = s->next)
            if ((s->kind == S_EXEC || s->kind == S_REMOVE) && s->pid == pid && !s->exited) {
                s->exited = 1;
                s->status = st;
                break;
            }
    }
}

static void timer_fired(struct stream *s)
{
    uint64_t x;
    if (read(s->w_timer.fd, &x, sizeof x) < 0 && errno == EAGAIN)
        return;
    if (s->pid > 0) {
        kill(-s->pid, SIGKILL);
        kill(s->pid, SIGKILL);
    }
    s->timed_out = 1;
    watch_close(&s->w_timer);
}

void send_credit(struct stream *s)
{
    uint8_t b[4];
    put32(b, s->credit_pending);
    if (send_frame(T_CREDIT_R, 0, s->id, b, 4) == 0) {
        s->host_win += s->credit_pending;
        s->credit_pending = 0;
    }
}

/* Emits whatever each stream can emit now and recomputes what epoll should watch. */
static void pump(void)
{
    if (g_state == C_ACTIVE)
        process_input();
    struct stream *s = g_streams, *next;
    for (; s; s = next) {
        next = s->next;
        int live = g_state == C_ACTIVE && !s->detached;
        if (s->kind == S_EXEC) {
            if (live && s->credit_pending && obuf_room(&g_out) > 2 * HDR_LEN + 64)
                send_credit(s);
            if (s->exited && s->out_eof && s->err_eof) {
                if (!live) {
                    stream_kill(s);
                    continue;
                }
                if (obuf_room(&g_out) < HDR_LEN + 16)
                    continue;
                uint8_t b[9];
                int code = -1, sig = 0;
                if (WIFEXITED(s->status))
                    code = WEXITSTATUS(s->status);
                else if (WIFSIGNALED(s->status))
                    sig = WTERMSIG(s->status);
                put32(b, (uint32_t)code);
                put32(b + 4, (uint32_t)sig);
                b[8] = s->timed_out ? 1 : 0;
                if (s->oom_base >= 0 && oom_kill_count() > s->oom_base)
                    b[8] |= 2;
                send_frame(T_EXIT, 0, s->id, b, 9);
                stream_kill(s);
                continue;
            }
            int can_read = !live || (s->win > 0 && g_out.len <= DATA_LIMIT);
            int want_in = s->stdin_open && (s->ilen || s->stdin_eof);
            s->w_out.want = (can_read && !s->out_eof ? EPOLLIN : 0) |
                            (s->pty && want_in ? EPOLLOUT : 0);
            s->w_err.want = can_read ? EPOLLIN : 0;
            s->w_in.want = !s->pty && want_in ? EPOLLOUT : 0;
            s->w_timer.want = EPOLLIN;
            watch_apply(&s->w_out);
            watch_apply(&s->w_err);
            watch_apply(&s->w_in);
            watch_apply(&s->w_timer);
        } else if (s->kind == S_REMOVE) {
            if (s->exited && (!live || obuf_room(&g_out) >= HDR_LEN + 4 + 1024)) {
                if (live)
                    file_remove_done(s);
                stream_kill(s);
            }
        } else if (s->kind == S_FWRITE) {
            if (live && s->credit_pending && obuf_room(&g_out) > 2 * HDR_LEN + 64)
                send_credit(s);
        } else if (s->kind == S_SOCK) {
            if (live && sock_pump(s))
                stream_kill(s);
        } else if (s->kind == S_FREAD && live) {
            while (s->win > 0 && g_out.len <= DATA_LIMIT && !s->dead)
                if (file_read_pump(s)) {
                    stream_kill(s);
                    break;
                }
        }
    }
    if (g_state != C_NONE && conn_flush() < 0)
        conn_gone();
    if (g_state == C_CLOSING && g_out.len == 0 && g_listen >= 0)
        conn_gone();
    if (g_state != C_NONE) {
        int rd = g_state == C_CLOSING || (g_inlen < MAX_FRAME && g_out.len <= IN_LIMIT);
        w_conn.want = (rd ? EPOLLIN : 0) | (g_out.len ? EPOLLOUT : 0) | EPOLLRDHUP;
        watch_apply(&w_conn);
    }
    w_listen.want = g_state == C_NONE && !g_suspended ? EPOLLIN : 0;
    watch_apply(&w_listen);
    listeners_update();
}

/* A gVisor checkpoint cannot save a socket bound on the host, so before one the host sends
 * SIGUSR1: the connection ends, the listening socket is closed (its fd number kept, pointing at
 * /dev/null, since g_listen also says "unix socket mode") and its file removed, which tells the
 * host it may checkpoint. SIGUSR2, after the restore or a failed checkpoint, listens again. */
static void listener_suspend(void)
{
    if (!g_listen_path || g_suspended)
        return;
    if (g_state != C_NONE)
        conn_gone();
    w_listen.want = 0;
    watch_apply(&w_listen);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup3(null, g_listen, O_CLOEXEC) < 0)
        die("closing the listener: %s", strerror(errno));
    close(null);
    unlink(g_listen_path);
    g_suspended = 1;
    logmsg("listener closed for a checkpoint");
}

static void listener_resume(void)
{
    if (!g_suspended)
        return;
    int fd = listen_unix(g_listen_path);
    if (dup3(fd, g_listen, O_CLOEXEC) < 0)
        die("reopening the listener: %s", strerror(errno));
    close(fd);
    g_suspended = 0;
    logmsg("listening again");
}

static void try_accept(void)
{
    int fd = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0)
        conn_start(fd);
}

/* A virtio-serial port reports POLLHUP (and readable EOF) whenever no host is attached;
 * it is polled on a short timeout instead of being left in epoll, which would spin. */
static void port_check(void)
{
    struct pollfd pf = {.fd = g_port, .events = POLLIN};
    if (poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP))
        return;
    port_async(0);
    logmsg("host connected");
    conn_start(g_port);
}

int serve(int listen_fd, int port_fd)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGIO);
    if (g_listen_path) {
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGUSR2);
    }
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN); /* the only ignored signal: exec.c resets it in every command */

    g_listen = listen_fd;
    g_port = port_fd;
    if (g_port >= 0)
        port_async(1);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    g_in = malloc(MAX_FRAME);
    if (g_ep < 0 || sfd < 0 || !g_in || obuf_init(&g_out, OUT_CAP) < 0)
        die("event loop setup failed: %s", strerror(errno));
    watch_init(&w_sig, W_SIG, sfd, NULL);
    w_sig.want = EPOLLIN;
    watch_apply(&w_sig);
    watch_init(&w_listen, W_LISTEN, listen_fd, NULL);
    watch_init(&w_conn, W_CONN, -1, NULL);
    reap_children();

    if (g_pid1)
        pid1_ready();
    else {
        dprintf(1, "airlock-init: ready\n");
    }

    struct epoll_event evs[64];
    for (;;) {
        if (g_port >= 0 && g_state == C_NONE)
            port_check();
        pump();
        free_dead();
        int timeout = -1;
        /* SIGIO announces a host; the timeout only covers a kernel that does not send it. */
        if (g_port >= 0 && g_state == C_NONE)
            timeout = 1000;
        if (g_state == C_CLOSING && g_listen >= 0)
            timeout = 100;
        timeout = memguard_timeout(timeout);
        int n = epoll_wait(g_ep, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (w->s && w->s->dead)
                continue;
            switch (w->kind) {
            case W_SIG: {
                struct signalfd_siginfo si;
                while (read(w->fd, &si, sizeof si) > 0) {
                    if (si.ssi_signo == SIGUSR1)
                        listener_suspend();
                    else if (si.ssi_signo == SIGUSR2)
                        listener_resume();
                }
                reap_children();
                break;
            }
            case W_LISTEN:
                if (g_state == C_NONE)
                    try_accept();
                break;
            case W_CONN:
                if (w->fd != g_conn || g_state == C_NONE)
                    break;
                if (e & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))
                    conn_readable();
                if (g_state != C_NONE && (e & EPOLLOUT) && conn_flush() < 0)
                    conn_gone();
                break;
            case W_OUT:
            case W_ERR:
                if (w->fd < 0)
                    break;
                if (w->kind == W_OUT && w->s->pty && (e & EPOLLOUT))
                    stdin_flush(w->s);
                if (w->fd >= 0 && (e & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                    output_readable(w->s, w->kind == W_ERR);
                break;
            case W_IN:
                if (w->fd >= 0)
                    stdin_flush(w->s);
                break;
            case W_TIMER:
                if (w->fd >= 0)
                    timer_fired(w->s);
                break;
            case W_SOCK:
                if (w->fd >= 0)
                    sock_event(w->s, e);
                break;
            case W_PORT_LISTEN:
                listener_ready(w->l);
                break;
            }
        }
        memguard_check(g_streams != NULL);
        if (g_state == C_CLOSING && g_listen >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > g_close_deadline.tv_sec ||
                (now.tv_sec == g_close_deadline.tv_sec && now.tv_nsec >= g_close_deadline.tv_nsec))
                conn_gone();
        }
    }
}
