/* Shared state of the agent: streams, epoll watches, and the functions each file exports. */
#ifndef AIRLOCK_AGENT_H
#define AIRLOCK_AGENT_H

#include <stdint.h>
#include <sys/types.h>

#include "frame.h"

enum stream_kind { S_EXEC = 1, S_FREAD, S_FWRITE, S_SOCK, S_REMOVE };
enum watch_kind { W_CONN = 1, W_LISTEN, W_SIG, W_POLL, W_OUT, W_ERR, W_IN, W_TIMER, W_SOCK, W_PORT_LISTEN };

/* One registration in epoll. Registered only while events != 0, because epoll reports
 * HUP/ERR even for an empty mask, which would spin the loop on a pipe we are not reading. */
struct watch {
    int kind;
    int fd;
    uint32_t want;
    uint32_t have;
    int registered;
    struct stream *s;
    struct listener *l; /* W_PORT_LISTEN only */
};

struct stream {
    struct stream *next;
    uint32_t id;
    int kind;
    int detached; /* exec whose session ended: output is drained and discarded */
    int dead;     /* unlinked; freed after the current batch of epoll events */

    uint32_t win;            /* bytes the agent may still send to the host */
    uint32_t host_win;       /* bytes the host may still send to the agent */
    uint32_t credit_pending; /* consumed host bytes not yet returned with CREDIT */

    /* exec */
    pid_t pid;
    int exited, status, timed_out, pty, stdin_open, stdin_eof;
    long oom_base; /* oom_kill_count() when the process started */
    int kill_on_detach; /* a pod container's process (ROOT): it ends with its host session */
    int out_eof, err_eof;
    struct watch w_out, w_err, w_in, w_timer;
    uint8_t *ibuf; /* host stdin not yet accepted by the process, at most the window */
    size_t ioff, ilen;

    /* sockets (S_SOCK): the connection is w_out's fd; ibuf holds host bytes not yet written */
    int connecting, eof_sent, wr_shut, failed;
    uint16_t port;
    struct stream *wait_next; /* ACCEPT streams queued on a listener */
    struct listener *waiting_on;

    /* files */
    int fd;
    uint64_t total;
    char *path, *tmp;
};

/* session.c */
extern int g_pid1;
int serve(int listen_fd, int port_fd);
/* --tsc-khz, run on the host: prints the TSC's rate in kHz (tsc.c); non-zero when it cannot. */
int tsc_khz_main(void);
void watch_init(struct watch *w, int kind, int fd, struct stream *s);
void watch_close(struct watch *w);
void watch_apply(struct watch *w);
/* Room for one agent -> host data frame of up to max bytes, or NULL when output is full or
 * there is no session; commit with out_commit. */
uint8_t *out_reserve(size_t max);
void out_commit(uint8_t type, uint8_t flags, uint32_t id, size_t n);
int out_data_ok(void); /* a session is active and the output buffer has room for data */
void send_credit(struct stream *s);
int send_frame(uint8_t type, uint8_t flags, uint32_t id, const void *p, size_t n);
int send_error(uint32_t id, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* exec.c: returns 0 when started or refused with ERROR, -1 when the frame is malformed */
int exec_start(struct stream *s, const uint8_t *p, size_t n);
void exec_resize(struct stream *s, uint16_t rows, uint16_t cols);
long oom_kill_count(void);

/* files.c: the same return convention */
int file_read_start(struct stream *s, const uint8_t *p, size_t n);
int file_read_pump(struct stream *s); /* 1 when the stream finished */
int file_write_start(struct stream *s, const uint8_t *p, size_t n);
int file_write_data(struct stream *s, const uint8_t *p, size_t n, int eof); /* 1 = finished */
void file_abort(struct stream *s);
int file_stat(uint32_t id, const uint8_t *p, size_t n);
int file_list(uint32_t id, const uint8_t *p, size_t n);
int file_mkdir(uint32_t id, const uint8_t *p, size_t n);
int file_move(uint32_t id, const uint8_t *p, size_t n);
/* REMOVE: answered at once (RESULT or ERROR, returns 0), or 1 when a child process removes a
 * directory tree; its exit status is the answer (see file_remove_done). */
int file_remove_start(struct stream *s, const uint8_t *p, size_t n);
void file_remove_done(struct stream *s);

/* builtin.c: the agent's built-in commands (EXEC with BUILTIN), run in the command's child */
int builtin_known(const char *name);
int builtin_main(char **argv);

/* confine.c: an EXEC's confinement tags, applied in the command's child */
#define CONFINE_MAX_RLIMITS 64
#define CONFINE_MAX_GROUPS 256
struct confine {
    struct {
        uint32_t resource;
        uint64_t soft, hard;
    } rlimits[CONFINE_MAX_RLIMITS];
    int nrlimits;
    int has_caps;
    uint64_t bounding, effective, permitted, inheritable, ambient;
    int no_new_privs;
    const uint8_t *filter; /* points into the EXEC payload, which outlives the fork */
    uint32_t filter_len;   /* instructions */
    mode_t umask;
    int has_groups, ngroups;
    gid_t groups[CONFINE_MAX_GROUPS];
    char hostname[65]; /* empty: the guest's own; else set in a new UTS namespace */
};
void confine_init(struct confine *c);
/* 1 when the tag was one of confine's (and valid), 0 when not one of them, -1 with *why when invalid */
int confine_tag(struct confine *c, uint16_t tag, const uint8_t *v, uint32_t vl, const char **why);
int confine_before_user(const struct confine *c);
int confine_before_exec(const struct confine *c);

/* podroot.c: EXEC's ROOT, a pod app container's own root in the pod's VM */
int podroot_parse(const uint8_t *v, uint32_t vl, char *out, size_t cap, const char **why);
int podroot_check(const char *root); /* 0, or an errno: the root is no directory */
int podroot_enter(const char *root); /* in the command's child; -1 with errno */

/* mountns.c: an EXEC's mount namespace tags; the namespace is made once per VM and joined */
#define MOUNTNS_MAX_MOUNTS 64
#define MOUNTNS_MAX_PATHS 128
struct mountns {
    struct {
        uint32_t flags;
        int copyup;
        const char *type, *dest, *data; /* point into the EXEC payload, NUL-terminated there */
    } mounts[MOUNTNS_MAX_MOUNTS];
    int nmounts;
    const char *masked[MOUNTNS_MAX_PATHS], *readonly[MOUNTNS_MAX_PATHS];
    int nmasked, nreadonly;
    int root_ro, any;
    uint64_t hash; /* of the tags, so a later EXEC joins only a namespace made for the same mounts */
};
void mountns_init(struct mountns *m);
/* the same convention as confine_tag */
int mountns_tag(struct mountns *m, uint16_t tag, const uint8_t *v, uint32_t vl, const char **why);
/* *fd: the namespace for the command's child to join (-1: none asked); -1 with why when it cannot be made */
int mountns_join_fd(const struct mountns *m, int *fd, char *why, size_t whylen);

/* exec.c: extra default environment for every later EXEC (SET_ENV) */
int exec_set_env(uint32_t id, const uint8_t *p, size_t n);

/* exec.c: a small file read whole, NUL-terminated, at most max bytes of it (the caller frees it);
 * NULL when it cannot be opened or memory runs out */
char *read_whole(const char *path, size_t max);

/* net.c: byte streams between guest loopback sockets and the host */
int sock_accept_start(struct stream *s, const uint8_t *p, size_t n);
int sock_connect_start(struct stream *s, const uint8_t *p, size_t n);
void sock_host_data(struct stream *s, const uint8_t *p, size_t n, int eof);
int sock_pump(struct stream *s); /* 1 when the stream finished */
void sock_event(struct stream *s, uint32_t events);
void sock_forget(struct stream *s);
void listener_ready(struct listener *l);
void listeners_update(void);

/* identity.c: the same return convention; answers RESULT once everything is applied */
int identity_apply(uint32_t id, const uint8_t *p, size_t n);

/* boot.c */
int pid1_boot(void); /* returns the agent port fd, never fails (powers off instead) */
extern char g_exec_cgroup[64]; /* cgroup.procs of the commands' cgroup, or empty */
void pid1_ready(void);
void shutdown_everything(void) __attribute__((noreturn));
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* limits.c: limits the agent enforces itself when its runtime cannot (gVisor) */
void agent_limits_init(void);
void agent_child_limits(void); /* in a command's child, before it runs */
long memguard_kills(void);    /* OOM kills by the memory guard, -1 when it is off */
int memguard_timeout(int timeout);
void memguard_check(int busy);

/* main.c: the unix socket of --serve-unix, and its path (NULL in a VM) */
int listen_unix(const char *path);
extern const char *g_listen_path;

/* tracked process groups, so shutdown in container mode can signal them */
void for_each_process(void (*fn)(pid_t pid));

#endif
