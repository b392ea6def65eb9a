/* File operations: streaming reads under the flow-control window, atomic writes through a
 * temporary file and rename, STAT and LIST with results bounded to one frame. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint8_t g_buf[MAX_PAYLOAD];

/* A file request's TLVs; each pointer may be NULL when the request has no such field. */
struct file_req {
    char *path;     /* PATH, required */
    char *dest;     /* DEST (MOVE), required when not NULL */
    uint32_t *mode; /* MODE */
    int *mkdirs;    /* MKDIRS */
    int *recursive; /* RECURSIVE */
};

static int path_value(uint32_t id, const uint8_t *v, uint32_t vl, char *out, const char *what)
{
    if (vl == 0 || vl >= PATH_MAX || memchr(v, 0, vl) || v[0] != '/') {
        send_error(id, EINVAL, "%s must be an absolute path", what);
        return 0;
    }
    memcpy(out, v, vl);
    out[vl] = 0;
    return 1;
}

/* Extracts the request TLVs: -1 malformed, 0 refused (ERROR sent), 1 ok. */
static int parse_file_req(uint32_t id, const uint8_t *p, size_t n, struct file_req *q)
{
    struct tlv_it it = {p, n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int r, have = 0, have_dest = 0;
    while ((r = tlv_next(&it, &tag, &v, &vl)) > 0) {
        if (tag == F_PATH) {
            if (!path_value(id, v, vl, q->path, "PATH"))
                return 0;
            have = 1;
        } else if (tag == F_DEST && q->dest) {
            if (!path_value(id, v, vl, q->dest, "DEST"))
                return 0;
            have_dest = 1;
        } else if (tag == F_MODE) {
            if (vl != 4)
                return -1;
            if (q->mode)
                *q->mode = get32(v);
        } else if (tag == F_MKDIRS || tag == F_RECURSIVE) {
            if (vl != 1)
                return -1;
            int *flag = tag == F_MKDIRS ? q->mkdirs : q->recursive;
            if (flag)
                *flag = v[0] == 1;
        }
    }
    if (r < 0)
        return -1;
    if (!have || (q->dest && !have_dest)) {
        send_error(id, EINVAL, "missing %s", have ? "DEST" : "PATH");
        return 0;
    }
    return 1;
}

static int parse_req(uint32_t id, const uint8_t *p, size_t n, char *path, uint32_t *mode,
                     int *mkdirs)
{
    struct file_req q = {path, NULL, mode, mkdirs, NULL};
    return parse_file_req(id, p, n, &q);
}

int file_read_start(struct stream *s, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    int r = parse_req(s->id, p, n, path, NULL, NULL);
    if (r <= 0)
        return r;
    /* O_NONBLOCK so a FIFO cannot wedge the loop at open time; it is rejected below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return send_error(s->id, errno, "%s: %s", path, strerror(errno)), 0;
    struct stat st = {0};
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        return send_error(s->id, e, "%s: not a regular file", path), 0;
    }
    s->fd = fd;
    return 1;
}

int file_read_pump(struct stream *s)
{
    size_t max = s->win < MAX_PAYLOAD ? s->win : MAX_PAYLOAD;
    ssize_t n;
    do
        n = read(s->fd, g_buf, max);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        send_frame(T_DATA, 0, s->id, g_buf, (size_t)n);
        s->win -= (uint32_t)n;
        s->total += (uint64_t)n;
        return 0;
    }
    if (n < 0) {
        send_error(s->id, errno, "read: %s", strerror(errno));
        return 1;
    }
    uint8_t b[8];
    put64(b, s->total);
    send_frame(T_END, 0, s->id, b, 8);
    return 1;
}

static int mkdirs_for(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *q = buf + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *q = '/';
    }
    return 0;
}

/* Follows a final symlink (even a dangling one) so the rename replaces its target. */
static void follow_links(char *path)
{
    for (int hops = 0; hops < 16; hops++) {
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
            return;
        char link[PATH_MAX], next[PATH_MAX];
        ssize_t l = readlink(path, link, sizeof link - 1);
        if (l <= 0)
            return;
        link[l] = 0;
        if (link[0] == '/') {
            snprintf(next, sizeof next, "%s", link);
        } else {
            char *slash = strrchr(path, '/');
            int dl = (int)(slash - path);
            if (snprintf(next, sizeof next, "%.*s/%s", dl, path, link) >= (int)sizeof next)
                return;
        }
        memcpy(path, next, strlen(next) + 1);
    }
}

int file_write_start(struct stream *s, const uint8_t *p, size_t n)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    uint32_t mode = 0644;
    int mk = 0;
    int r = parse_req(s->id, p, n, path, &mode, &mk);
    if (r <= 0)
        return r;
    follow_links(path);
    char *slash = strrchr(path, '/');
    if (!slash[1])
        return send_error(s->id, EISDIR, "%s: is a directory", path), 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return send_error(s->id, EISDIR, "%s: is a directory", path), 0;
    if (mk && mkdirs_for(path) < 0)
        return send_error(s->id, errno, "creating parents of %s: %s", path, strerror(errno)), 0;
    snprintf(tmp, sizeof tmp, "%.*s/.%s.airlock-XXXXXX", (int)(slash - path), path, slash + 1);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return send_error(s->id, errno, "%s: %s", path, strerror(errno)), 0;
    fchmod(fd, mode & 07777);
    s->fd = fd;
    s->path = strdup(path);
    s->tmp = strdup(tmp);
    if (!s->path || !s->tmp) {
        send_error(s->id, ENOMEM, "out of memory");
        return 0; /* the caller's stream_kill closes and unlinks */
    }
    return 1;
}

int file_write_data(struct stream *s, const uint8_t *p, size_t n, int eof)
{
    s->credit_pending += (uint32_t)n;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(s->fd, p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            send_error(s->id, w < 0 ? errno : EIO, "writing %s: %s", s->path,
                       strerror(w < 0 ? errno : EIO));
            return 1;
        }
        done += (size_t)w;
    }
    s->total += n;
    if (!eof)
        return 0;
    int fd = s->fd;
    s->fd = -1;
    if (close(fd) < 0) {
        send_error(s->id, errno, "writing %s: %s", s->path, strerror(errno));
        return 1;
    }
    if (rename(s->tmp, s->path) < 0) {
        send_error(s->id, errno, "renaming onto %s: %s", s->path, strerror(errno));
        return 1;
    }
    free(s->tmp);
    s->tmp = NULL;
    uint8_t buf[16];
    struct tlv_w w = {buf, sizeof buf, 0, 0};
    tlv_u64(&w, F_SIZE, s->total);
    send_frame(T_RESULT, 0, s->id, buf, w.len);
    return 1;
}

void file_abort(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->tmp) {
        unlink(s->tmp);
        free(s->tmp);
        s->tmp = NULL;
    }
}

static uint8_t type_char(mode_t m)
{
    return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : 'o';
}

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

int file_stat(uint32_t id, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    int r = parse_req(id, p, n, path, NULL, NULL);
    if (r <= 0)
        return r;
    struct stat st;
    if (lstat(path, &st) < 0)
        return send_error(id, errno, "%s: %s", path, strerror(errno)), 0;
    struct tlv_w w = {g_buf, sizeof g_buf, 0, 0};
    tlv_u8(&w, F_TYPE, type_char(st.st_mode));
    tlv_u64(&w, F_SIZE, (uint64_t)st.st_size);
    tlv_u32(&w, F_MODE, st.st_mode);
    tlv_u64(&w, F_MTIME, mtime_ns(&st));
    tlv_u32(&w, F_UID, st.st_uid);
    tlv_u32(&w, F_GID, st.st_gid);
    if (S_ISLNK(st.st_mode)) {
        char t[PATH_MAX];
        ssize_t l = readlink(path, t, sizeof t);
        if (l >= 0)
            tlv_put(&w, F_TARGET, t, (size_t)l);
    }
    return send_frame(T_RESULT, 0, id, g_buf, w.len), 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Per-entry bytes without the name: NAME, TYPE, SIZE, MODE, MTIME headers and values. */
#define ENTRY_FIXED (6 + 7 + 14 + 10 + 14)

int file_list(uint32_t id, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    int r = parse_req(id, p, n, path, NULL, NULL);
    if (r <= 0)
        return r;
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return send_error(id, errno, "%s: %s", path, strerror(errno)), 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return send_error(id, errno, "%s: %s", path, strerror(errno)), 0;
    }
    /* names are collected only up to what could fit in one payload, so memory is bounded */
    char **names = NULL;
    size_t count = 0, cap = 0, bytes = 0;
    int err = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        bytes += ENTRY_FIXED + strlen(de->d_name);
        if (bytes > MAX_PAYLOAD) {
            err = E2BIG;
            break;
        }
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                err = ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[count] = strdup(de->d_name))) {
            err = ENOMEM;
            break;
        }
        count++;
    }
    if (!err) {
        qsort(names, count, sizeof *names, cmp_names);
        struct tlv_w w = {g_buf, sizeof g_buf, 0, 0};
        for (size_t i = 0; i < count; i++) {
            struct stat st;
            if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue; /* removed while listing */
            tlv_str(&w, F_NAME, names[i]);
            tlv_u8(&w, F_TYPE, type_char(st.st_mode));
            tlv_u64(&w, F_SIZE, (uint64_t)st.st_size);
            tlv_u32(&w, F_MODE, st.st_mode);
            tlv_u64(&w, F_MTIME, mtime_ns(&st));
        }
        if (w.overflow)
            err = E2BIG;
        else
            send_frame(T_RESULT, 0, id, g_buf, w.len);
    }
    if (err)
        send_error(id, err, "%s: %s", path,
                   err == E2BIG ? "too many entries for one LIST result" : strerror(err));
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return 0;
}

/* ---- MKDIR, MOVE, REMOVE ---- */

static int result_empty(uint32_t id) { return send_frame(T_RESULT, 0, id, NULL, 0), 0; }

int file_mkdir(uint32_t id, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    uint32_t mode = 0755;
    int parents = 0;
    struct file_req q = {path, NULL, &mode, &parents, NULL};
    int r = parse_file_req(id, p, n, &q);
    if (r <= 0)
        return r;
    if (parents && mkdirs_for(path) < 0)
        return send_error(id, errno, "creating parents of %s: %s", path, strerror(errno)), 0;
    if (mkdir(path, mode & 07777) < 0) {
        int e = errno;
        struct stat st;
        /* with parents, like mkdir -p: a directory that is already there is what was asked */
        if (!(e == EEXIST && parents && stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
            return send_error(id, e, "%s: %s", path, strerror(e)), 0;
    }
    return result_empty(id);
}

int file_move(uint32_t id, const uint8_t *p, size_t n)
{
    char from[PATH_MAX], to[PATH_MAX];
    struct file_req q = {from, to, NULL, NULL, NULL};
    int r = parse_file_req(id, p, n, &q);
    if (r <= 0)
        return r;
    if (rename(from, to) < 0)
        return send_error(id, errno, "moving %s to %s: %s", from, to, strerror(errno)), 0;
    return result_empty(id);
}

/* Removes a directory tree below path (a PATH_MAX buffer it extends and restores), never
 * following symlinks and never leaving the file system it started on. Runs in a child
 * process: returns 0 or an errno value. */
static int remove_tree(char *path, dev_t dev)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 && errno != ENOENT ? errno : 0;
    if (st.st_dev != dev)
        return EXDEV; /* a mount point below: left alone, and said so */
    size_t len = strlen(path);
    /* entries removed while reading may hide others from readdir: read again until empty */
    for (int pass = 0; pass < 8; pass++) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno;
        DIR *d = fdopendir(fd);
        if (!d) {
            int e = errno;
            close(fd);
            return e;
        }
        int err = 0, seen = 0;
        struct dirent *de;
        while (!err && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            seen = 1;
            size_t nl = strlen(de->d_name);
            if (len + 1 + nl >= PATH_MAX) {
                err = ENAMETOOLONG;
                break;
            }
            path[len] = '/';
            memcpy(path + len + 1, de->d_name, nl + 1);
            err = remove_tree(path, dev);
            path[len] = 0;
        }
        closedir(d);
        if (err)
            return err;
        if (rmdir(path) == 0)
            return 0;
        if (errno != ENOTEMPTY || !seen)
            return errno;
    }
    return ENOTEMPTY;
}

int file_remove_start(struct stream *s, const uint8_t *p, size_t n)
{
    char path[PATH_MAX];
    int recursive = 0;
    struct file_req q = {path, NULL, NULL, NULL, &recursive};
    int r = parse_file_req(s->id, p, n, &q);
    if (r <= 0)
        return r;
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        path[--len] = 0;
    if (!strcmp(path, "/"))
        return send_error(s->id, EBUSY, "refusing to remove /"), 0;
    struct stat st;
    if (lstat(path, &st) < 0)
        return send_error(s->id, errno, "%s: %s", path, strerror(errno)), 0;
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) < 0)
            return send_error(s->id, errno, "removing %s: %s", path, strerror(errno)), 0;
        return result_empty(s->id);
    }
    if (!recursive) {
        if (rmdir(path) < 0)
            return send_error(s->id, errno, "removing %s: %s", path, strerror(errno)), 0;
        return result_empty(s->id);
    }
    /* A tree may take long to remove: a child does it, so the loop keeps serving every
     * other stream meanwhile; its exit status is the answer. */
    s->path = strdup(path);
    if (!s->path)
        return send_error(s->id, ENOMEM, "out of memory"), 0;
    pid_t pid = fork();
    if (pid < 0)
        return send_error(s->id, errno, "removing %s: fork: %s", path, strerror(errno)), 0;
    if (pid == 0)
        _exit(remove_tree(path, st.st_dev));
    s->pid = pid;
    return 1;
}

void file_remove_done(struct stream *s)
{
    int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : EIO;
    if (code == 0)
        result_empty(s->id);
    else if (code == EXDEV)
        send_error(s->id, code, "removing %s: a file system is mounted below it; unmount it first",
                   s->path);
    else
        send_error(s->id, code, "removing %s: %s", s->path, strerror(code));
}
