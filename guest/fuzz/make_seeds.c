/* Writes the fuzzer's seed inputs: one well-formed host session per request type, with paths,
 * users and ports that the fake kernel (fake_kernel.c) knows, so mutation starts from inputs
 * that reach deep into each handler. Usage: make-seeds DIR (writes DIR/seed-*). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/frame.h"

static struct obuf g_session;
static uint8_t g_tlv[MAX_PAYLOAD];
static struct tlv_w g_w;

static void frame(uint8_t type, uint8_t flags, uint32_t stream, const void *p, size_t n)
{
    if (obuf_frame(&g_session, type, flags, stream, p, n) < 0) {
        fprintf(stderr, "make-seeds: session too large\n");
        exit(1);
    }
}

static void hello(void)
{
    uint8_t v[4];
    put32(v, PROTO_VERSION);
    frame(T_HELLO, 0, 0, v, 4);
}

static void u32_frame(uint8_t type, uint32_t stream, uint32_t value)
{
    uint8_t b[4];
    put32(b, value);
    frame(type, 0, stream, b, 4);
}

/* TLV requests are built in g_w between tlv_begin and tlv_frame. */
static void tlv_begin(void) { g_w = (struct tlv_w){g_tlv, sizeof g_tlv, 0, 0}; }
static void tlv_frame(uint8_t type, uint32_t stream) { frame(type, 0, stream, g_tlv, g_w.len); }

static void path_request(uint8_t type, uint32_t stream, const char *path)
{
    tlv_begin();
    tlv_str(&g_w, F_PATH, path);
    tlv_frame(type, stream);
}

static void text(uint8_t type, uint8_t flags, uint32_t stream, const char *s)
{
    frame(type, flags, stream, s, strlen(s));
}

static void save(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(obuf_head(&g_session), 1, g_session.len, f) != g_session.len || fclose(f) != 0) {
        fprintf(stderr, "make-seeds: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    g_session.off = g_session.len = 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    if (obuf_init(&g_session, 1u << 20) < 0)
        return 1;

    hello();
    save(dir, "hello");

    hello();
    text(T_PING, 0, 0, "12345678");
    save(dir, "ping");

    hello();
    tlv_begin();
    tlv_str(&g_w, X_ARG, "sh");
    tlv_str(&g_w, X_ARG, "-c");
    tlv_str(&g_w, X_ARG, "cat; echo done");
    tlv_str(&g_w, X_ENV, "A=b");
    tlv_str(&g_w, X_ENV, "PATH=/bin");
    tlv_str(&g_w, X_CWD, "/tmp");
    tlv_str(&g_w, X_USER, "airlock");
    tlv_u64(&g_w, X_TIMEOUT_MS, 500);
    tlv_u8(&g_w, X_STDIN, 1);
    tlv_frame(T_EXEC, 1);
    text(T_STDIN, 0, 1, "some input\n");
    frame(T_STDIN, FLAG_EOF, 1, NULL, 0);
    u32_frame(T_CREDIT, 1, 65536);
    u32_frame(T_SIGNAL, 1, 15);
    save(dir, "exec");

    hello();
    tlv_begin();
    tlv_str(&g_w, X_ARG, "bash");
    uint8_t size[4];
    put16(size, 24);
    put16(size + 2, 80);
    tlv_put(&g_w, X_TTY, size, 4);
    tlv_u8(&g_w, X_STDIN, 1);
    tlv_frame(T_EXEC, 1);
    put16(size, 50);
    put16(size + 2, 132);
    frame(T_RESIZE, 0, 1, size, 4);
    text(T_STDIN, 0, 1, "ls\n");
    frame(T_STDIN, FLAG_EOF, 1, NULL, 0);
    save(dir, "exec-tty");

    hello();
    static const char *const users[] = {"1000:1000", "0", "nobody", "missing", "65534", "1:x"};
    for (uint32_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        tlv_begin();
        tlv_str(&g_w, X_ARG, "id");
        tlv_str(&g_w, X_USER, users[i]);
        tlv_frame(T_EXEC, i + 1);
    }
    save(dir, "exec-users");

    hello();
    tlv_begin();
    tlv_str(&g_w, X_ARG, "sleep");
    tlv_str(&g_w, X_ARG, "100");
    tlv_frame(T_EXEC, 7);
    u32_frame(T_ERROR, 7, 125);
    save(dir, "exec-cancel");

    hello();
    path_request(T_FILE_READ, 1, "/tmp/f");
    u32_frame(T_CREDIT, 1, 4096);
    path_request(T_FILE_READ, 2, "/tmp/link");
    path_request(T_FILE_READ, 3, "/tmp/d");
    path_request(T_FILE_READ, 4, "/tmp/loop");
    path_request(T_FILE_READ, 5, "/etc/passwd");
    save(dir, "file-read");

    hello();
    tlv_begin();
    tlv_str(&g_w, F_PATH, "/tmp/new/dir/file");
    tlv_u32(&g_w, F_MODE, 0600);
    tlv_u8(&g_w, F_MKDIRS, 1);
    tlv_frame(T_FILE_WRITE, 1);
    text(T_FILE_DATA, 0, 1, "contents");
    frame(T_FILE_DATA, FLAG_EOF, 1, NULL, 0);
    tlv_begin();
    tlv_str(&g_w, F_PATH, "/tmp/dangling");
    tlv_u32(&g_w, F_MODE, 0644);
    tlv_frame(T_FILE_WRITE, 2);
    text(T_FILE_DATA, FLAG_EOF, 2, "x");
    path_request(T_FILE_WRITE, 3, "/tmp/d");
    save(dir, "file-write");

    hello();
    path_request(T_STAT, 1, "/tmp/f");
    path_request(T_STAT, 2, "/tmp/link");
    path_request(T_STAT, 3, "/missing");
    path_request(T_STAT, 4, "/tmp/../etc/./passwd");
    save(dir, "stat");

    hello();
    tlv_begin();
    tlv_str(&g_w, F_PATH, "/tmp/new/dir");
    tlv_u8(&g_w, F_MKDIRS, 1);
    tlv_frame(T_MKDIR, 1);
    path_request(T_MKDIR, 2, "/tmp");
    tlv_begin();
    tlv_str(&g_w, F_PATH, "/tmp/f");
    tlv_str(&g_w, F_DEST, "/tmp/g");
    tlv_frame(T_MOVE, 3);
    path_request(T_REMOVE, 4, "/tmp/g");
    tlv_begin();
    tlv_str(&g_w, F_PATH, "/tmp");
    tlv_u8(&g_w, F_RECURSIVE, 1);
    tlv_frame(T_REMOVE, 5);
    save(dir, "fsops");

    hello();
    path_request(T_LIST, 1, "/tmp");
    path_request(T_LIST, 2, "/");
    path_request(T_LIST, 3, "/tmp/f");
    save(dir, "list");

    hello();
    tlv_begin();
    tlv_str(&g_w, X_ENV, "HTTP_PROXY=http://127.0.0.1:3128");
    tlv_str(&g_w, X_ENV, "NO_PROXY=localhost");
    tlv_frame(T_SET_ENV, 1);
    tlv_begin();
    tlv_str(&g_w, X_ARG, "env");
    tlv_str(&g_w, X_ENV, "NO_PROXY=other");
    tlv_frame(T_EXEC, 2);
    save(dir, "set-env");

    hello();
    tlv_begin();
    uint8_t entropy[32];
    for (size_t i = 0; i < sizeof entropy; i++)
        entropy[i] = (uint8_t)(i * 37 + 11);
    tlv_put(&g_w, I_ENTROPY, entropy, sizeof entropy);
    tlv_u64(&g_w, I_TIME_NS, 1700000000123456789ull);
    tlv_str(&g_w, I_HOSTNAME, "sandbox-1");
    tlv_str(&g_w, I_MACHINE_ID, "0123456789abcdef0123456789abcdef");
    tlv_frame(T_IDENTITY, 1);
    save(dir, "identity");

    hello();
    uint8_t port[2];
    tlv_begin();
    put16(port, 3128);
    tlv_put(&g_w, N_PORT, port, 2);
    tlv_frame(T_ACCEPT, 1);
    text(T_SOCK_DATA, 0, 1, "HTTP/1.0 200 OK\r\n\r\n");
    frame(T_SOCK_DATA, FLAG_EOF, 1, NULL, 0);
    u32_frame(T_CREDIT, 1, 1024);
    tlv_begin();
    put16(port, 3128);
    tlv_put(&g_w, N_PORT, port, 2);
    tlv_frame(T_ACCEPT, 2);
    u32_frame(T_ERROR, 2, 125);
    save(dir, "accept");

    hello();
    static const uint16_t ports[] = {8080, 8081, 8082, 80};
    for (uint32_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
        tlv_begin();
        put16(port, ports[i]);
        tlv_put(&g_w, N_PORT, port, 2);
        tlv_frame(T_CONNECT, i + 1);
        text(T_SOCK_DATA, FLAG_EOF, i + 1, "GET / HTTP/1.0\r\n\r\n");
    }
    save(dir, "connect");

    hello();
    uint8_t off = 0;
    frame(T_SHUTDOWN, 0, 0, &off, 1);
    save(dir, "shutdown");

    /* a malformed header, then a fresh HELLO: the virtio-serial resync */
    hello();
    uint8_t bad[HDR_LEN] = {0xff, 0xff, 0xff, 0xff, T_PING};
    frame(T_PING, 0, 0, NULL, 0);
    if (obuf_room(&g_session) >= sizeof bad) {
        memcpy(g_session.data + g_session.off + g_session.len, bad, sizeof bad);
        g_session.len += sizeof bad;
    }
    hello();
    text(T_PING, 0, 0, "again");
    save(dir, "resync");

    hello();
    tlv_begin();
    tlv_str(&g_w, X_ARG, "cat");
    tlv_u8(&g_w, X_STDIN, 1);
    tlv_frame(T_EXEC, 1);
    hello();
    text(T_PING, 0, 0, "new session");
    save(dir, "hello-again");

    obuf_free(&g_session);
    return 0;
}
