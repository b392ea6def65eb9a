/* Starting processes for EXEC: request parsing, user lookup from /etc/passwd and
 * /etc/group (no NSS: it does not work in a static binary), environment, pipes or a pty,
 * and reporting start failures back through a close-on-exec pipe. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MAX_ENV 4096
#define MAX_GROUPS 256
#define MAX_DB (4u << 20)

struct user {
    uid_t uid;
    gid_t gid;
    char name[256];
    char home[PATH_MAX];
    gid_t groups[MAX_GROUPS];
    int ngroups;
};

/* The root whose /etc/passwd and /etc/group name an EXEC's user: a pod app container's own
 * (ROOT), else the guest's. Set per EXEC, before any lookup. */
static const char *g_db_root = "";

/* Reads a small file whole, NUL-terminated, into memory the caller frees; NULL if it cannot be
 * opened or there is no memory. It stops after max bytes: the rest of a larger file is left out. */
char *read_whole(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        if (len == cap) {
            if (cap >= max)
                break;
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (buf)
        buf[len] = 0;
    return buf;
}

static char *slurp_db(const char *file)
{
    char path[PATH_MAX + 16];
    if ((size_t)snprintf(path, sizeof path, "%s%s", g_db_root, file) >= sizeof path)
        return NULL;
    return read_whole(path, MAX_DB);
}

/* How many processes the kernel's OOM killer has killed where this sandbox can see it: the
 * microVM's cgroup for commands, a container's own memory cgroup (v1, then v2 as the cgroup
 * namespace root), else the kernel's total. -1 when none is readable. */
long oom_kill_count(void)
{
    long guarded = memguard_kills();
    if (guarded >= 0)
        return guarded;
    static const char *const sources[] = {"/sys/fs/cgroup/sandbox/memory.events",
                                          "/sys/fs/cgroup/memory/memory.oom_control",
                                          "/sys/fs/cgroup/memory.events", "/proc/vmstat"};
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        char *text = read_whole(sources[i], MAX_DB);
        if (!text)
            continue;
        long count = -1;
        for (char *line = text; line && count < 0;) {
            if (strncmp(line, "oom_kill ", 9) == 0)
                count = strtol(line + 9, NULL, 10);
            line = strchr(line, '\n');
            if (line)
                line++;
        }
        free(text);
        if (count >= 0)
            return count;
    }
    return -1;
}

/* Splits a line in place on ':' into at most max fields; returns the field count. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = 0;
            f[n++] = p + 1;
        }
    return n;
}

static int parse_id(const char *s, unsigned long *out)
{
    if (!*s)
        return -1;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*end || errno || v > 0xfffffffeul || *s == '-' || *s == '+')
        return -1;
    *out = v;
    return 0;
}

/* Finds a passwd entry by name (if name) or by uid; fills u and returns 0 when found. */
static int passwd_lookup(const char *name, uid_t uid, struct user *u)
{
    char *db = slurp_db("/etc/passwd");
    int found = -1;
    if (!db)
        return -1;
    for (char *line = db, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f[7];
        unsigned long id, gid;
        if (split(line, f, 7) < 7 || parse_id(f[2], &id) || parse_id(f[3], &gid))
            continue;
        if (name ? strcmp(f[0], name) != 0 : id != uid)
            continue;
        u->uid = (uid_t)id;
        u->gid = (gid_t)gid;
        snprintf(u->name, sizeof u->name, "%s", f[0]);
        snprintf(u->home, sizeof u->home, "%s", *f[5] ? f[5] : "/");
        found = 0;
        break;
    }
    free(db);
    return found;
}

static void group_lookup(struct user *u)
{
    u->ngroups = 0;
    u->groups[u->ngroups++] = u->gid;
    char *db = slurp_db("/etc/group");
    if (!db || !u->name[0]) {
        free(db);
        return;
    }
    for (char *line = db, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f[4];
        unsigned long gid;
        if (split(line, f, 4) < 4 || parse_id(f[2], &gid) || (gid_t)gid == u->gid)
            continue;
        for (char *m = f[3], *comma; m && *m; m = comma) {
            comma = strchr(m, ',');
            if (comma)
                *comma++ = 0;
            if (strcmp(m, u->name) == 0 && u->ngroups < MAX_GROUPS) {
                u->groups[u->ngroups++] = (gid_t)gid;
                break;
            }
        }
    }
    free(db);
}

/* A group by name from /etc/group; 0 and *gid set when found. */
static int group_by_name(const char *name, gid_t *gid)
{
    char *db = slurp_db("/etc/group");
    int found = -1;
    if (!db)
        return -1;
    for (char *line = db, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f[4];
        unsigned long id;
        if (split(line, f, 4) < 3 || parse_id(f[2], &id) || strcmp(f[0], name) != 0)
            continue;
        *gid = (gid_t)id;
        found = 0;
        break;
    }
    free(db);
    return found;
}

/* USER is "user" or "user:group" (Docker's forms), each part a name or a number: a name must be
 * in /etc/passwd or /etc/group, a number need not be (uid N without an entry gets gid N and home
 * /). Returns 0, EINVAL for a malformed spec, or ESRCH for an unknown name. */
static int resolve_user(const char *spec, struct user *u)
{
    memset(u, 0, sizeof *u);
    const char *colon = strchr(spec, ':');
    size_t l = colon ? (size_t)(colon - spec) : strlen(spec);
    char ubuf[256];
    unsigned long uid, gid;
    if (l == 0 || l >= sizeof ubuf || (colon && (!colon[1] || strchr(colon + 1, ':'))))
        return EINVAL;
    memcpy(ubuf, spec, l);
    ubuf[l] = 0;
    if (parse_id(ubuf, &uid) == 0) {
        if (passwd_lookup(NULL, (uid_t)uid, u) < 0) {
            u->uid = (uid_t)uid;
            u->gid = (gid_t)uid;
            snprintf(u->home, sizeof u->home, "/");
        }
    } else if (passwd_lookup(ubuf, 0, u) < 0) {
        return ESRCH;
    }
    if (colon) {
        gid_t g;
        if (parse_id(colon + 1, &gid) == 0)
            g = (gid_t)gid;
        else if (group_by_name(colon + 1, &g) < 0)
            return ESRCH;
        u->gid = g;
    }
    if (!u->name[0])
        snprintf(u->name, sizeof u->name, "%lu", (unsigned long)u->uid);
    group_lookup(u);
    return 0;
}

/* Replaces NAME=... if present (matching up to '='), else appends. */
static void env_set(char **env, int *n, char *kv)
{
    size_t kl = strcspn(kv, "=");
    for (int i = 0; i < *n; i++)
        if (strncmp(env[i], kv, kl) == 0 && env[i][kl] == '=') {
            env[i] = kv;
            return;
        }
    if (*n < MAX_ENV - 1)
        env[(*n)++] = kv;
}

/* Extra default environment from SET_ENV (the egress proxy variables, for example): a copy of
 * the request's strings, NUL-separated, kept for every later EXEC of any session. */
static char *g_extra_block;
static char *g_extra_env[256];
static int g_nextra;
/* Working directory of EXECs that name none (the sandbox's workdir), also from SET_ENV. */
static char g_default_cwd[PATH_MAX];
/* User of EXECs that name none (the sandbox's user, from its image's config), also from SET_ENV;
 * resolved at each EXEC, since the image's /etc/passwd may change. */
static char g_default_user[256];

int exec_set_env(uint32_t id, const uint8_t *p, size_t n)
{
    struct tlv_it it = {p, n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int r, count = 0;
    const uint8_t *cwd = NULL, *user = NULL;
    uint32_t cwdl = 0, userl = 0;
    while ((r = tlv_next(&it, &tag, &v, &vl)) > 0) {
        if (tag == X_USER) {
            if (vl == 0 || vl >= sizeof g_default_user || memchr(v, 0, vl))
                return send_error(id, EINVAL, "SET_ENV user is empty or too long"), 0;
            user = v;
            userl = vl;
            continue;
        }
        if (tag == X_CWD) {
            if (vl == 0 || vl >= sizeof g_default_cwd || v[0] != '/' || memchr(v, 0, vl))
                return send_error(id, EINVAL, "SET_ENV working directory is not an absolute path"), 0;
            cwd = v;
            cwdl = vl;
            continue;
        }
        if (tag != X_ENV)
            continue;
        if (memchr(v, 0, vl) || !memchr(v, '=', vl) || vl == 0 || v[0] == '=')
            return send_error(id, EINVAL, "SET_ENV entry is not NAME=value"), 0;
        count++;
    }
    if (r < 0)
        return -1;
    if (count > (int)(sizeof g_extra_env / sizeof *g_extra_env))
        return send_error(id, E2BIG, "too many SET_ENV entries"), 0;
    char *block = malloc(n + (size_t)count + 1);
    if (!block)
        return send_error(id, ENOMEM, "out of memory"), 0;
    free(g_extra_block);
    g_extra_block = block;
    g_nextra = 0;
    g_default_cwd[0] = 0;
    if (cwd) {
        memcpy(g_default_cwd, cwd, cwdl);
        g_default_cwd[cwdl] = 0;
    }
    g_default_user[0] = 0;
    if (user) {
        memcpy(g_default_user, user, userl);
        g_default_user[userl] = 0;
    }
    it = (struct tlv_it){p, n};
    while (tlv_next(&it, &tag, &v, &vl) > 0) {
        if (tag != X_ENV)
            continue;
        memcpy(block, v, vl);
        block[vl] = 0;
        g_extra_env[g_nextra++] = block;
        block += vl + 1;
    }
    return send_frame(T_RESULT, 0, id, NULL, 0);
}

struct start_err {
    int stage; /* 0 exec, 1 chdir, 2 credentials, 3 stdio, 4 confinement, 5 root, 6 mount namespace */
    int err;
};

static __attribute__((noreturn)) void child_fail(int pipe_fd, int stage)
{
    struct start_err e = {stage, errno};
    ssize_t r = write(pipe_fd, &e, sizeof e);
    (void)r;
    _exit(stage == 0 && (e.err == ENOENT || e.err == ENOTDIR) ? 127 : 126);
}

/* execvp semantics, but PATH comes from the child's environment rather than ours. */
static void child_exec(char **argv, char **envp)
{
    const char *prog = argv[0];
    if (strchr(prog, '/')) {
        execve(prog, argv, envp);
        return;
    }
    const char *path = DEFAULT_PATH;
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    int saw_eacces = 0, other = 0;
    char buf[PATH_MAX];
    for (const char *p = path;; p++) {
        const char *seg = p;
        while (*p && *p != ':')
            p++;
        int sl = (int)(p - seg);
        int w = sl ? snprintf(buf, sizeof buf, "%.*s/%s", sl, seg, prog)
                   : snprintf(buf, sizeof buf, "%s", prog);
        if (w > 0 && (size_t)w < sizeof buf) {
            execve(buf, argv, envp);
            if (errno == ENOEXEC) {
                int argc = 0;
                while (argv[argc])
                    argc++;
                char *sh[argc + 2];
                sh[0] = "/bin/sh";
                sh[1] = buf;
                for (int i = 1; i <= argc; i++)
                    sh[i + 1] = argv[i];
                execve("/bin/sh", sh, envp);
                return;
            }
            if (errno == EACCES)
                saw_eacces = 1;
            else if (errno != ENOENT && errno != ENOTDIR)
                other = errno;
        }
        if (!*p)
            break;
    }
    errno = saw_eacces ? EACCES : other ? other : ENOENT;
}

static int open_pty(uint16_t rows, uint16_t cols, int *master, int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -1;
    if (grantpt(m) < 0 || unlockpt(m) < 0)
        goto fail;
    int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) {
        char name[128];
        if (ptsname_r(m, name, sizeof name) != 0)
            goto fail;
        s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s < 0)
            goto fail;
    }
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(m, TIOCSWINSZ, &ws);
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    *master = m;
    *slave = s;
    return 0;
fail:
    close(m);
    return -1;
}

static int valid_str(const uint8_t *v, uint32_t n) { return memchr(v, 0, n) == NULL; }

/* What the child of an EXEC needs, read only, so it can run on the agent's memory (vfork). */
struct child {
    char **argv, **env;
    const struct user *u;
    const struct confine *conf;
    const char *cwd;
    const char *root; /* a pod app container's own root (ROOT), or NULL */
    int builtin, tty, slave, in, out, err, status, have_user, cwd_is_default;
    int mntns; /* the container's mount namespace to join (mountns.c), or -1 */
};

/* The child: joins its session and cgroup, sets up stdio, directory and user, then execs (or runs
 * the built-in). Never returns; a failure is written to the status pipe. */
static __attribute__((noreturn)) void child_main(const struct child *c)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* execve resets handled signals to their default; only an ignored one would stay
     * ignored in the command. The agent ignores SIGPIPE alone (serve()); resetting every
     * signal instead cost ~60 system calls per exec, ~2 ms of emulated CPU under TCG. */
    signal(SIGPIPE, SIG_DFL);
    setsid();
    /* The cgroup built-in sets that cgroup (thaws it, too): it stays outside, or a frozen
     * cgroup would freeze it on joining. */
    if (g_exec_cgroup[0] && !(c->builtin && !strcmp(c->argv[0], "cgroup"))) {
        int cg = open(g_exec_cgroup, O_WRONLY | O_CLOEXEC);
        if (cg < 0 || write(cg, "0", 1) < 0)
            child_fail(c->status, 3);
        close(cg);
    }
    agent_child_limits();
    if (c->tty) {
        if (ioctl(c->slave, TIOCSCTTY, 0) < 0 || dup2(c->slave, 0) < 0 || dup2(c->slave, 1) < 0 ||
            dup2(c->slave, 2) < 0)
            child_fail(c->status, 3);
    } else {
        if (dup2(c->in, 0) < 0 || dup2(c->out, 1) < 0 || dup2(c->err, 2) < 0)
            child_fail(c->status, 3);
    }
    if (c->mntns >= 0 && setns(c->mntns, CLONE_NEWNS) < 0)
        child_fail(c->status, 6);
    if (c->root && podroot_enter(c->root) < 0)
        child_fail(c->status, 5);
    if (chdir(c->cwd ? c->cwd : c->u->home) < 0) {
        if ((c->cwd && !c->cwd_is_default) || chdir("/") < 0)
            child_fail(c->status, 1);
    }
    if (confine_before_user(c->conf) < 0)
        child_fail(c->status, 4);
    if ((c->have_user || c->conf->has_groups) && (setgroups((size_t)c->u->ngroups, c->u->groups) < 0 ||
                                                  setgid(c->u->gid) < 0 || setuid(c->u->uid) < 0))
        child_fail(c->status, 2);
    /* umask (022 unless the EXEC set one), then the capability sets, no_new_privs, seccomp */
    if (confine_before_exec(c->conf) < 0)
        child_fail(c->status, 4);
    if (c->builtin) {
        /* No exec will close the O_CLOEXEC descriptors, so close them here: the status pipe
         * (the host sends stdin only once it knows the command started), and every other
         * one above stderr (the write end of its own stdin pipe, held here, would keep the
         * built-in from ever reading end-of-file; the agent's channels are none of its
         * business). */
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
#endif
            for (int fd = 3; fd < (int)max; fd++)
                close(fd);
        _exit(builtin_main(c->argv));
    }
    child_exec(c->argv, c->env);
    child_fail(c->status, 0);
}

/* vfork for a command: no copy of the agent's page tables and no copy-on-write faults after it,
 * ~2 ms of emulated CPU per exec under TCG (bench/floor.sh). The child only makes system calls
 * until it execs or _exits, writes nothing of the agent's, and the agent handles no signal
 * (signalfd; SIGPIPE is ignored and reset in the child), so no handler can run in the child on
 * the agent's memory. A built-in runs in the child itself, for as long as it likes, while the
 * agent must keep serving: it gets a real fork. Its own function, so nothing of exec_start's
 * frame lives across the vfork. */
static __attribute__((noinline)) pid_t spawn(const struct child *c)
{
    pid_t pid = c->builtin ? fork() : vfork();
    if (pid == 0)
        child_main(c);
    return pid;
}

int exec_start(struct stream *s, const uint8_t *p, size_t n)
{
    struct tlv_it it = {p, n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int nargs = 0, nenv = 0, r, want_stdin = 0, tty = 0, bad_str = 0, builtin = 0;
    uint16_t rows = 24, cols = 80;
    uint64_t timeout_ms = 0;
    const char *bad_confine = NULL;
    int confined = 0;
    static char root[PATH_MAX]; /* the agent is single-threaded; read by the child before exec */
    int has_root = 0;
    struct confine *conf = calloc(1, sizeof *conf);
    struct mountns *mns = calloc(1, sizeof *mns);
    if (!conf || !mns)
        return free(conf), free(mns), send_error(s->id, ENOMEM, "out of memory"), 0;
    confine_init(conf);
    mountns_init(mns);

    while ((r = tlv_next(&it, &tag, &v, &vl)) > 0) {
        int ct = bad_confine ? 0 : confine_tag(conf, tag, v, vl, &bad_confine);
        if (ct == 0 && !bad_confine)
            ct = mountns_tag(mns, tag, v, vl, &bad_confine);
        if (ct != 0) {
            confined = 1;
            continue;
        }
        switch (tag) {
        case X_ARG:
        case X_ENV:
        case X_CWD:
        case X_USER:
            if (!valid_str(v, vl))
                bad_str = 1;
            if (tag == X_ARG)
                nargs++;
            else if (tag == X_ENV)
                nenv++;
            break;
        case X_TIMEOUT_MS:
            if (vl != 8)
                return free(conf), free(mns), -1;
            timeout_ms = get64(v);
            break;
        case X_TTY:
            if (vl != 4)
                return free(conf), free(mns), -1;
            tty = 1;
            rows = get16(v);
            cols = get16(v + 2);
            break;
        case X_STDIN:
            if (vl != 1)
                return free(conf), free(mns), -1;
            want_stdin = v[0] == 1;
            break;
        case X_BUILTIN:
            if (vl != 1)
                return free(conf), free(mns), -1;
            builtin = v[0] == 1;
            break;
        case X_ROOT:
            if (!bad_confine && podroot_parse(v, vl, root, sizeof root, &bad_confine) == 0)
                has_root = 1;
            break;
        }
    }
    if (r < 0)
        return free(conf), free(mns), -1;
    if (bad_str)
        return free(conf), free(mns), send_error(s->id, EINVAL, "string contains a NUL byte"), 0;
    if (bad_confine)
        return free(conf), free(mns), send_error(s->id, EINVAL, "%s", bad_confine), 0;
    if (nargs == 0)
        return free(conf), free(mns), send_error(s->id, EINVAL, "EXEC without ARG"), 0;
    if (nenv > MAX_ENV - 16)
        return free(conf), free(mns), send_error(s->id, E2BIG, "too many environment entries"), 0;

    /* all strings live in one block sized by the (already bounded) payload */
    char *block = malloc(n + (size_t)(nargs + nenv) + 4);
    char **argv = calloc((size_t)nargs + 1, sizeof *argv);
    char **env = calloc(MAX_ENV, sizeof *env);
    char *cwdbuf = NULL, *userbuf = NULL;
    int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
    int master = -1, slave = -1, devnull = -1, tfd = -1;
    struct user *u = calloc(1, sizeof *u);
    int ret = 0;
    if (!block || !argv || !env || !u) {
        send_error(s->id, ENOMEM, "out of memory");
        goto out;
    }
    char *bp = block;
    int ai = 0, ne = 0;
    it = (struct tlv_it){p, n};
    while (tlv_next(&it, &tag, &v, &vl) > 0) {
        if (tag != X_ARG && tag != X_ENV && tag != X_CWD && tag != X_USER)
            continue;
        memcpy(bp, v, vl);
        bp[vl] = 0;
        if (tag == X_ARG)
            argv[ai++] = bp;
        else if (tag == X_CWD)
            cwdbuf = bp;
        else if (tag == X_USER)
            userbuf = bp;
        bp += vl + 1;
    }

    if (has_root) {
        int e = builtin ? EINVAL : podroot_check(root);
        if (e) {
            send_error(s->id, e, "ROOT %s: %s", root, builtin ? "a built-in runs in the guest's root" : strerror(e));
            goto out;
        }
    }
    g_db_root = has_root ? root : "";
    if (builtin && (tty || userbuf || confined || !builtin_known(argv[0]))) {
        send_error(s->id, EINVAL, "not an agent built-in (or one given a user, a tty or confinement): %s",
                   argv[0]);
        goto out;
    }
    /* The sandbox's default user (its image's USER) runs commands that name none; a built-in
     * always runs as the agent itself. */
    int user_is_default = 0;
    if (!userbuf && !builtin && g_default_user[0]) {
        userbuf = g_default_user;
        user_is_default = 1;
    }
    int have_user = userbuf != NULL;
    if (have_user) {
        int e = resolve_user(userbuf, u);
        if (e) {
            send_error(s->id, e, e == EINVAL ? "invalid user '%s': give NAME, UID, NAME:GROUP or UID:GID%s"
                                             : "unknown user or group: %s%s",
                       userbuf, user_is_default ? " (the sandbox's default user)" : "");
            goto out;
        }
    } else if (passwd_lookup(NULL, getuid(), u) < 0) {
        u->uid = getuid();
        snprintf(u->name, sizeof u->name, getuid() == 0 ? "root" : "%lu", (unsigned long)getuid());
        snprintf(u->home, sizeof u->home, "/root");
    }
    /* OCI additionalGids: added to the user's groups from /etc/group, as runc adds them */
    for (int i = 0; conf->has_groups && i < conf->ngroups; i++) {
        int dup = 0;
        for (int j = 0; j < u->ngroups; j++)
            dup |= u->groups[j] == conf->groups[i];
        if (!dup && u->ngroups < MAX_GROUPS)
            u->groups[u->ngroups++] = conf->groups[i];
    }
    /* The sandbox's working directory is a default: a command that runs before it exists (a
     * workspace's own setup creates /workspace) starts in / instead of failing. */
    int cwd_is_default = 0;
    if (builtin)
        cwdbuf = "/";
    if (!cwdbuf && g_default_cwd[0]) {
        cwdbuf = g_default_cwd;
        cwd_is_default = 1;
    }
    /* A user named on the command starts in its home (su's habit); the default user in / (Docker's). */
    if ((!have_user || user_is_default) && !cwdbuf)
        cwdbuf = "/";

    char host[256] = "";
    gethostname(host, sizeof host - 1);
    {
        static char e_path[] = "PATH=" DEFAULT_PATH;
        static char e_term[] = "TERM=xterm-256color";
        /* static is fine: the strings only need to survive until fork */
        static char e_home[PATH_MAX + 8], e_user[300], e_log[300], e_host[300];
        snprintf(e_home, sizeof e_home, "HOME=%s", u->home);
        snprintf(e_user, sizeof e_user, "USER=%s", u->name);
        snprintf(e_log, sizeof e_log, "LOGNAME=%s", u->name);
        snprintf(e_host, sizeof e_host, "HOSTNAME=%s", host);
        env_set(env, &ne, e_path);
        env_set(env, &ne, e_home);
        env_set(env, &ne, e_user);
        env_set(env, &ne, e_log);
        env_set(env, &ne, e_host);
        if (tty)
            env_set(env, &ne, e_term);
        for (int i = 0; i < g_nextra; i++)
            env_set(env, &ne, g_extra_env[i]);
    }
    it = (struct tlv_it){p, n};
    bp = block;
    while (tlv_next(&it, &tag, &v, &vl) > 0) {
        if (tag != X_ARG && tag != X_ENV && tag != X_CWD && tag != X_USER)
            continue;
        if (tag == X_ENV) {
            if (!strchr(bp, '=') || bp[0] == '=') {
                send_error(s->id, EINVAL, "ENV entry without NAME=: %s", bp);
                goto out;
            }
            env_set(env, &ne, bp);
        }
        bp += vl + 1;
    }
    env[ne] = NULL;

    if (tty) {
        if (open_pty(rows, cols, &master, &slave) < 0) {
            send_error(s->id, errno, "cannot allocate a pty: %s", strerror(errno));
            goto out;
        }
    } else {
        if (pipe2(out_p, O_CLOEXEC) < 0 || pipe2(err_p, O_CLOEXEC) < 0 ||
            (want_stdin && pipe2(in_p, O_CLOEXEC) < 0) ||
            (!want_stdin && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
            send_error(s->id, errno, "cannot create pipes: %s", strerror(errno));
            goto out;
        }
        /* only our ends are non-blocking; the process gets ordinary blocking fds */
        fcntl(out_p[0], F_SETFL, O_NONBLOCK);
        fcntl(err_p[0], F_SETFL, O_NONBLOCK);
        if (want_stdin)
            fcntl(in_p[1], F_SETFL, O_NONBLOCK);
    }
    if (timeout_ms) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (tfd < 0) {
            send_error(s->id, errno, "timerfd: %s", strerror(errno));
            goto out;
        }
    }
    if (pipe2(st_p, O_CLOEXEC) < 0) {
        send_error(s->id, errno, "pipe: %s", strerror(errno));
        goto out;
    }

    int mntns;
    char why[700];
    if (has_root && mns->any) {
        /* a pod app container's root comes with its own /proc, /sys, /dev (podroot.c); its
         * config's mounts in that root are not built yet, and the host does not send both */
        send_error(s->id, EINVAL, "ROOT and the mount namespace tags together are not supported");
        goto out;
    }
    if (mountns_join_fd(mns, &mntns, why, sizeof why) < 0) {
        send_error(s->id, EINVAL, "setting up the container's mounts: %s", why);
        goto out;
    }
    struct child c = {argv, env, u, conf, cwdbuf, has_root ? root : NULL, builtin, tty, slave, want_stdin ? in_p[0] : devnull,
                      out_p[1], err_p[1], st_p[1], have_user, cwd_is_default, mntns};
    pid_t pid = spawn(&c);
    if (pid < 0) {
        send_error(s->id, errno, "fork: %s", strerror(errno));
        goto out;
    }

    close(st_p[1]);
    st_p[1] = -1;
    struct start_err se;
    ssize_t got;
    do
        got = read(st_p[0], &se, sizeof se);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t)sizeof se) {
        waitpid(pid, NULL, 0);
        if (se.stage == 0)
            send_error(s->id, se.err, "%s: %s", argv[0],
                       se.err == ENOENT ? "command not found" : strerror(se.err));
        else if (se.stage == 1)
            send_error(s->id, se.err, "chdir %s: %s", cwdbuf ? cwdbuf : u->home, strerror(se.err));
        else if (se.stage == 2)
            send_error(s->id, se.err, "switching to user %s: %s", u->name, strerror(se.err));
        else if (se.stage == 5)
            send_error(s->id, se.err, "entering the container's root %s: %s", root, strerror(se.err));
        else if (se.stage == 6)
            send_error(s->id, se.err, "entering the container's mount namespace: %s", strerror(se.err));
        else if (se.stage == 4)
            send_error(s->id, se.err, "applying the process's rlimits, capabilities, seccomp filter or umask: %s",
                       strerror(se.err));
        else
            send_error(s->id, se.err, "setting up stdio: %s", strerror(se.err));
        goto out;
    }

    s->pid = pid;
    s->oom_base = oom_kill_count();
    s->kill_on_detach = has_root;
    s->pty = tty;
    if (tty) {
        watch_init(&s->w_out, W_OUT, master, s);
        master = -1;
        s->err_eof = 1;
        s->stdin_open = 1;
    } else {
        watch_init(&s->w_out, W_OUT, out_p[0], s);
        watch_init(&s->w_err, W_ERR, err_p[0], s);
        out_p[0] = err_p[0] = -1;
        if (want_stdin) {
            watch_init(&s->w_in, W_IN, in_p[1], s);
            in_p[1] = -1;
            s->stdin_open = 1;
        }
    }
    if (tfd >= 0) {
        struct itimerspec its = {0};
        its.it_value.tv_sec = (time_t)(timeout_ms / 1000);
        its.it_value.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        timerfd_settime(tfd, 0, &its, NULL);
        watch_init(&s->w_timer, W_TIMER, tfd, s);
        tfd = -1;
    }
    uint8_t b[4];
    put32(b, (uint32_t)pid);
    send_frame(T_STARTED, 0, s->id, b, 4);
    ret = 1;
out:
    for (int i = 0; i < 2; i++) {
        if (in_p[i] >= 0)
            close(in_p[i]);
        if (out_p[i] >= 0)
            close(out_p[i]);
        if (err_p[i] >= 0)
            close(err_p[i]);
        if (st_p[i] >= 0)
            close(st_p[i]);
    }
    if (master >= 0)
        close(master);
    if (slave >= 0)
        close(slave);
    if (devnull >= 0)
        close(devnull);
    if (tfd >= 0)
        close(tfd);
    free(block);
    free(argv);
    free(env);
    free(u);
    free(conf);
    free(mns);
    return ret;
}

void exec_resize(struct stream *s, uint16_t rows, uint16_t cols)
{
    if (!s->pty || s->w_out.fd < 0)
        return;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(s->w_out.fd, TIOCSWINSZ, &ws);
}
