/* Wire format of guest protocol v1: constants, big-endian helpers, the bounded outgoing
 * buffer and TLV reading/writing. Nothing here does I/O. */
#ifndef AIRLOCK_FRAME_H
#define AIRLOCK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1u
#ifndef AIRLOCK_VERSION
#define AIRLOCK_VERSION "0.1.0"
#endif

#define HDR_LEN 12u
#define MAX_PAYLOAD 65536u
#define MAX_FRAME (HDR_LEN + MAX_PAYLOAD)
#define INITIAL_WINDOW 262144u
#define MAX_WINDOW 2147483648u
#define MAX_STREAMS 256
#define FLAG_EOF 0x01u

enum {
    T_HELLO = 0x01, T_PING = 0x02,
    T_EXEC = 0x10, T_STDIN = 0x11, T_SIGNAL = 0x12, T_RESIZE = 0x13, T_CREDIT = 0x14,
    T_FILE_READ = 0x20, T_FILE_WRITE = 0x21, T_FILE_DATA = 0x22, T_STAT = 0x23, T_LIST = 0x24,
    T_SET_ENV = 0x25, T_MKDIR = 0x26, T_MOVE = 0x27, T_REMOVE = 0x28,
    T_SHUTDOWN = 0x30, T_IDENTITY = 0x31,
    T_ACCEPT = 0x40, T_CONNECT = 0x41, T_SOCK_DATA = 0x42,
    T_HELLO_R = 0x81, T_PONG = 0x82, T_STARTED = 0x83, T_STDOUT = 0x84, T_STDERR = 0x85,
    T_EXIT = 0x86, T_CREDIT_R = 0x87, T_CONNECTED = 0x88,
    T_RESULT = 0x90, T_DATA = 0x91, T_END = 0x9F,
    T_ERROR = 0xE0,
};

enum {
    FEAT_EXEC = 1, FEAT_PTY = 2, FEAT_FILES = 4, FEAT_SHUTDOWN = 8, FEAT_IDENTITY = 16, FEAT_SOCKETS = 32,
    FEAT_FSOPS = 64,
    FEAT_BUILTINS = 128
};
/* ACCEPT / CONNECT tags */
enum { N_PORT = 1 };

/* EXEC tags */
enum { X_ARG = 1, X_ENV = 2, X_CWD = 3, X_USER = 4, X_TIMEOUT_MS = 5, X_TTY = 6, X_STDIN = 7, X_BUILTIN = 8 };
/* EXEC confinement tags (confine.c): what an OCI runtime applies to a container's process */
enum { X_RLIMIT = 9, X_CAPS = 10, X_NO_NEW_PRIVS = 11, X_SECCOMP = 12, X_UMASK = 13, X_GROUPS = 14, X_HOSTNAME = 15 };
/* EXEC tag of a pod's app container (podroot.c): the guest directory that is its root */
enum { X_ROOT = 16 };
/* EXEC mount namespace tags (mountns.c): the container's mounts, masked and read-only paths, read-only root */
enum { X_MOUNT = 17, X_MASKED = 18, X_READONLY = 19, X_ROOT_RO = 20 };
/* IDENTITY tags */
enum { I_ENTROPY = 1, I_TIME_NS = 2, I_HOSTNAME = 3, I_MACHINE_ID = 4 };
/* file tags */
enum {
    F_PATH = 1, F_MODE = 2, F_MKDIRS = 3, F_DEST = 4, F_RECURSIVE = 5,
    F_NAME = 10, F_TYPE = 11, F_SIZE = 12, F_MTIME = 13, F_UID = 14, F_GID = 15, F_TARGET = 16,
};

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }
static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }

/* Outgoing bytes towards the host. Fixed capacity: callers check room before producing,
 * which is what turns a slow host into back-pressure instead of memory growth. */
struct obuf {
    uint8_t *data;
    size_t cap, off, len; /* valid bytes are data[off .. off+len) */
    size_t head_left;     /* unsent bytes of a frame whose first bytes have gone out, else 0 */
};

int obuf_init(struct obuf *b, size_t cap);
void obuf_free(struct obuf *b);
static inline size_t obuf_room(const struct obuf *b) { return b->cap - b->len; }
/* Appends one frame; returns -1 (and appends nothing) when it does not fit. */
int obuf_frame(struct obuf *b, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
               size_t n);
/* Reserves space for a frame whose payload the caller fills in; commit with obuf_commit. */
uint8_t *obuf_reserve(struct obuf *b, size_t n);
void obuf_commit(struct obuf *b, uint8_t type, uint8_t flags, uint32_t stream, size_t n);
void obuf_consume(struct obuf *b, size_t n);
/* Drops the queued frames but keeps the rest of one already partly sent, so the peer never
 * sees a torn frame on a connection that goes on. */
void obuf_drop(struct obuf *b);
/* Empties the buffer for a new connection. */
void obuf_reset(struct obuf *b);
static inline const uint8_t *obuf_head(const struct obuf *b) { return b->data + b->off; }

/* TLV reader over a payload. tlv_next returns 1 with tag/val/vlen set, 0 at the end,
 * -1 when an entry overruns the payload (a malformed frame). */
struct tlv_it {
    const uint8_t *p;
    size_t left;
};
int tlv_next(struct tlv_it *it, uint16_t *tag, const uint8_t **val, uint32_t *vlen);

/* TLV writer into a caller buffer of fixed size; overflow is sticky and checked at the end. */
struct tlv_w {
    uint8_t *buf;
    size_t cap, len;
    int overflow;
};
void tlv_put(struct tlv_w *w, uint16_t tag, const void *val, size_t n);
void tlv_u8(struct tlv_w *w, uint16_t tag, uint8_t v);
void tlv_u32(struct tlv_w *w, uint16_t tag, uint32_t v);
void tlv_u64(struct tlv_w *w, uint16_t tag, uint64_t v);
void tlv_str(struct tlv_w *w, uint16_t tag, const char *s);

#endif
