/* Byte streams between TCP sockets on the guest's loopback and the host, for sandboxes without a
 * network device: ACCEPT parks a stream on a listener (the in-guest egress proxy port), CONNECT
 * reaches a guest server (published ports). Data flows with the same windows as exec streams. */
#include "agent.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Listeners outlive sessions: a connection made while no host is attached waits in the
 * kernel's backlog until the next host parks an ACCEPT stream. */
struct listener {
    struct listener *next;
    uint16_t port;
    struct watch w;
    struct stream *waiting, *waiting_tail;
};

static struct listener *g_listeners;

static int parse_port(const uint8_t *p, size_t n, uint16_t *port)
{
    struct tlv_it it = {p, n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int r;
    *port = 0;
    while ((r = tlv_next(&it, &tag, &v, &vl)) > 0)
        if (tag == N_PORT && vl == 2)
            *port = get16(v);
    return r < 0 ? -1 : 0;
}

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static struct listener *listener_get(uint16_t port, int *err)
{
    for (struct listener *l = g_listeners; l; l = l->next)
        if (l->port == port)
            return l;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = loopback(port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        *err = errno;
        close(fd);
        return NULL;
    }
    struct listener *l = calloc(1, sizeof *l);
    if (!l) {
        *err = ENOMEM;
        close(fd);
        return NULL;
    }
    l->port = port;
    watch_init(&l->w, W_PORT_LISTEN, fd, NULL);
    l->w.l = l;
    l->next = g_listeners;
    g_listeners = l;
    return l;
}

int sock_accept_start(struct stream *s, const uint8_t *p, size_t n)
{
    uint16_t port;
    if (parse_port(p, n, &port) < 0)
        return -1;
    if (port == 0)
        return send_error(s->id, EINVAL, "ACCEPT needs a PORT"), 0;
    int err = 0;
    struct listener *l = listener_get(port, &err);
    if (!l)
        return send_error(s->id, err, "cannot listen on 127.0.0.1:%u: %s", port, strerror(err)), 0;
    s->port = port;
    s->waiting_on = l;
    if (l->waiting_tail)
        l->waiting_tail->wait_next = s;
    else
        l->waiting = s;
    l->waiting_tail = s;
    return 1;
}

int sock_connect_start(struct stream *s, const uint8_t *p, size_t n)
{
    uint16_t port;
    if (parse_port(p, n, &port) < 0)
        return -1;
    if (port == 0)
        return send_error(s->id, EINVAL, "CONNECT needs a PORT"), 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return send_error(s->id, errno, "socket: %s", strerror(errno)), 0;
    struct sockaddr_in sa = loopback(port);
    s->port = port;
    watch_init(&s->w_out, W_SOCK, fd, s);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        send_frame(T_CONNECTED, 0, s->id, NULL, 0);
        return 1;
    }
    if (errno != EINPROGRESS) {
        int e = errno;
        send_error(s->id, e, "cannot connect to 127.0.0.1:%u in the sandbox: %s", port, strerror(e));
        return 0; /* the caller kills the stream, which closes fd */
    }
    s->connecting = 1;
    return 1;
}

/* Unhooks an ACCEPT stream still waiting on its listener (the stream is being killed). */
void sock_forget(struct stream *s)
{
    struct listener *l = s->waiting_on;
    if (!l)
        return;
    struct stream *prev = NULL;
    for (struct stream *w = l->waiting; w; prev = w, w = w->wait_next)
        if (w == s) {
            if (prev)
                prev->wait_next = s->wait_next;
            else
                l->waiting = s->wait_next;
            if (l->waiting_tail == s)
                l->waiting_tail = prev;
            break;
        }
    s->waiting_on = NULL;
    s->wait_next = NULL;
}

void listener_ready(struct listener *l)
{
    while (l->waiting) {
        int fd = accept4(l->w.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct stream *s = l->waiting;
        sock_forget(s);
        watch_init(&s->w_out, W_SOCK, fd, s);
        send_frame(T_CONNECTED, 0, s->id, NULL, 0);
    }
}

void listeners_update(void)
{
    for (struct listener *l = g_listeners; l; l = l->next) {
        l->w.want = l->waiting ? EPOLLIN : 0;
        watch_apply(&l->w);
    }
}

static void sock_fail(struct stream *s, int err, const char *what)
{
    send_error(s->id, err, "%s 127.0.0.1:%u in the sandbox: %s", what, s->port, strerror(err));
    s->failed = 1; /* reused as "finished": sock_pump ends the stream */
}

static void sock_flush(struct stream *s)
{
    while (s->ilen) {
        ssize_t n = send(s->w_out.fd, s->ibuf + s->ioff, s->ilen, MSG_NOSIGNAL | MSG_DONTWAIT);
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
        sock_fail(s, n < 0 ? errno : EPIPE, "writing to");
        return;
    }
    s->ioff = 0;
    if (s->stdin_eof && !s->wr_shut) {
        shutdown(s->w_out.fd, SHUT_WR);
        s->wr_shut = 1;
    }
}

void sock_host_data(struct stream *s, const uint8_t *p, size_t n, int eof)
{
    if (s->stdin_eof || s->failed) {
        s->credit_pending += (uint32_t)n;
        return;
    }
    if (n) {
        if (!s->ibuf && !(s->ibuf = malloc(INITIAL_WINDOW))) {
            sock_fail(s, ENOMEM, "buffering for");
            return;
        }
        if (s->ioff + s->ilen + n > INITIAL_WINDOW) {
            memmove(s->ibuf, s->ibuf + s->ioff, s->ilen);
            s->ioff = 0;
        }
        memcpy(s->ibuf + s->ioff + s->ilen, p, n);
        s->ilen += n;
    }
    if (eof)
        s->stdin_eof = 1;
    if (s->w_out.fd >= 0 && !s->connecting)
        sock_flush(s);
}

static void sock_read(struct stream *s)
{
    size_t max = s->win < MAX_PAYLOAD ? s->win : MAX_PAYLOAD;
    if (max == 0)
        return;
    uint8_t *p = out_reserve(max);
    if (!p)
        return;
    ssize_t n = recv(s->w_out.fd, p, max, MSG_DONTWAIT);
    if (n > 0) {
        out_commit(T_DATA, 0, s->id, (size_t)n);
        s->win -= (uint32_t)n;
        s->total += (uint64_t)n;
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        sock_fail(s, errno, "reading from");
        return;
    }
    s->out_eof = 1;
}

void sock_event(struct stream *s, uint32_t events)
{
    if (s->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(s->w_out.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            sock_fail(s, err, "cannot connect to");
            return;
        }
        s->connecting = 0;
        send_frame(T_CONNECTED, 0, s->id, NULL, 0);
        sock_flush(s);
        return;
    }
    if ((events & EPOLLOUT) && !s->failed)
        sock_flush(s);
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) && !s->out_eof && !s->failed)
        sock_read(s);
}

/* Emits what can be emitted and sets the epoll interest; 1 when the stream is over. */
int sock_pump(struct stream *s)
{
    if (s->failed)
        return 1; /* failed: ERROR already queued */
    if (s->w_out.fd < 0)
        return 0; /* still waiting for a connection on the listener */
    if (s->credit_pending && out_data_ok())
        send_credit(s);
    if (s->out_eof && !s->eof_sent && send_frame(T_DATA, FLAG_EOF, s->id, NULL, 0) == 0)
        s->eof_sent = 1;
    if (s->eof_sent && s->wr_shut) {
        uint8_t b[8];
        put64(b, s->total);
        send_frame(T_END, 0, s->id, b, 8);
        return 1;
    }
    uint32_t want = 0;
    if (s->connecting)
        want = EPOLLOUT;
    else {
        if (!s->out_eof && s->win > 0 && out_data_ok())
            want |= EPOLLIN | EPOLLRDHUP;
        if (s->ilen || (s->stdin_eof && !s->wr_shut))
            want |= EPOLLOUT;
    }
    s->w_out.want = want;
    watch_apply(&s->w_out);
    return 0;
}
