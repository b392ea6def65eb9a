/* The agent's built-in commands, for image builds: an EXEC with the BUILTIN tag runs one of these
 * in the command's child process instead of a program from the image (which may have no tar,
 * find or shell), so they get the exec machinery as it is: pipes and flow control, the exit
 * status, timeouts, the commands' cgroup. They run as the agent (root) in /.
 *
 *   walk    the metadata of every file under / (not below other mounts), one binary record each
 *   pack    a tar of the files named on stdin (NUL-separated, relative to /), no recursion
 *   unpack  a tar from stdin applied to /, whiteouts (.wh.NAME) included
 *   cgroup  FILE VALUE: writes VALUE to one of a few files of the commands' cgroup (freeze,
 *           pids.max, memory.max), for airlock-runtime's pause/resume and update
 *
 * The host never trusts what walk and pack write: it parses both with bounds. unpack reads what
 * the host wrote. Formats: docs/guest-protocol.md, "Built-ins". */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#define XATTR_MAX_TOTAL (256u << 10)

/* ---- buffered output to fd 1 ---------------------------------------------------------------- */

static uint8_t g_out[1 << 16];
static size_t g_outlen;

static void out_flush(void)
{
    size_t off = 0;
    while (off < g_outlen) {
        ssize_t w = write(1, g_out + off, g_outlen - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(3); /* the host went away */
        off += (size_t)w;
    }
    g_outlen = 0;
}

static void out_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        if (g_outlen == sizeof g_out)
            out_flush();
        size_t k = sizeof g_out - g_outlen;
        if (k > n)
            k = n;
        memcpy(g_out + g_outlen, b, k);
        g_outlen += k;
        b += k;
        n -= k;
    }
}

static void out_zero(size_t n)
{
    static const uint8_t zero[512];
    while (n) {
        size_t k = n > sizeof zero ? sizeof zero : n;
        out_bytes(zero, k);
        n -= k;
    }
}

static void out_u8(uint8_t v) { out_bytes(&v, 1); }
static void out_u16(uint16_t v) { uint8_t b[2]; put16(b, v); out_bytes(b, 2); }
static void out_u32(uint32_t v) { uint8_t b[4]; put32(b, v); out_bytes(b, 4); }
static void out_u64(uint64_t v) { uint8_t b[8]; put64(b, v); out_bytes(b, 8); }

/* "what" + arg (+ ": " + the error) on stderr, which the host shows; returns the exit status 1 */
static int fail(const char *what, const char *arg, int err)
{
    char msg[PATH_MAX + 256];
    int n = snprintf(msg, sizeof msg, "%s%s%s%s\n", what, arg, err ? ": " : "", err ? strerror(err) : "");
    if (n > 0) {
        ssize_t r = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)r;
    }
    return 1;
}

/* ---- walk ----------------------------------------------------------------------------------- */

static char **g_mounts; /* mount points other than /, without the leading '/' */
static int g_nmounts;

/* Mount points from /proc/self/mountinfo (field 5, with \ooo escapes). Without it, the usual
 * pseudo filesystems are left out. */
static void load_mounts(void)
{
    char *text = read_whole("/proc/self/mountinfo", 8u << 20);
    int cap = 64;
    g_mounts = calloc((size_t)cap, sizeof *g_mounts);
    if (!g_mounts)
        _exit(fail("walk: ", "out of memory", 0));
    if (!text) {
        static const char *fallback[] = {"proc", "sys", "dev", "run"};
        for (int i = 0; i < 4; i++)
            g_mounts[g_nmounts++] = (char *)fallback[i];
        return;
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char *f = line;
        for (int i = 0; i < 4 && f; i++) {
            f = strchr(f, ' ');
            if (f)
                f++;
        }
        if (!f || *f != '/')
            continue;
        char *end = strchr(f, ' ');
        if (end)
            *end = 0;
        char *w = f;
        for (char *r = f; *r; r++) {
            if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                r[3] <= '7') {
                *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                r += 3;
            } else {
                *w++ = *r;
            }
        }
        *w = 0;
        if (!f[1])
            continue; /* / itself */
        if (g_nmounts == cap) {
            char **nm = realloc(g_mounts, (size_t)cap * 2 * sizeof *nm);
            if (!nm)
                break;
            g_mounts = nm;
            cap *= 2;
        }
        g_mounts[g_nmounts++] = f + 1;
    }
}

static int is_mount(const char *rel)
{
    for (int i = 0; i < g_nmounts; i++)
        if (strcmp(g_mounts[i], rel) == 0)
            return 1;
    return 0;
}

static uint8_t type_char(mode_t m)
{
    return S_ISREG(m) ? 'f' : S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' : S_ISBLK(m) ? 'b'
         : S_ISFIFO(m) ? 'p' : 's';
}

static uint64_t ns(struct timespec t) { return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec; }

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* abs holds "/" + the directory's path (len bytes); entries are appended to it in place. */
static int walk_dir(char *abs, size_t len)
{
    DIR *d = opendir(len == 1 ? "/" : abs);
    if (!d)
        return fail("walk: cannot read ", abs, errno);
    size_t cap = 64, n = 0;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while (names && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            char **nn = realloc(names, cap * 2 * sizeof *nn);
            if (!nn)
                break;
            names = nn;
            cap *= 2;
        }
        names[n] = strdup(e->d_name);
        if (!names[n])
            break;
        n++;
    }
    closedir(d);
    if (!names || e)
        return fail("walk: ", "out of memory", 0);
    qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t nl = strlen(names[i]);
        size_t clen = len + (len > 1 ? 1 : 0) + nl;
        if (clen >= PATH_MAX) {
            rc = fail("walk: a path is longer than PATH_MAX under ", abs, 0);
            break;
        }
        char *at = abs + len;
        if (len > 1)
            *at++ = '/';
        memcpy(at, names[i], nl + 1);
        const char *rel = abs + 1;
        struct stat st;
        if (!is_mount(rel) && lstat(abs, &st) == 0 && !S_ISSOCK(st.st_mode)) {
            out_u16((uint16_t)(clen - 1));
            out_bytes(rel, clen - 1);
            out_u8(type_char(st.st_mode));
            out_u32((uint32_t)st.st_mode);
            out_u32((uint32_t)st.st_uid);
            out_u32((uint32_t)st.st_gid);
            out_u64((uint64_t)st.st_size);
            out_u64(ns(st.st_mtim));
            out_u64(ns(st.st_ctim));
            out_u64((uint64_t)st.st_ino);
            out_u32((uint32_t)st.st_nlink);
            if (S_ISDIR(st.st_mode))
                rc = walk_dir(abs, clen);
        }
        abs[len] = 0;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int do_walk(void)
{
    load_mounts();
    char abs[PATH_MAX] = "/";
    int rc = walk_dir(abs, 1);
    out_flush();
    return rc;
}

/* ---- tar writing ---------------------------------------------------------------------------- */

static int octal(char *field, size_t width, uint64_t v)
{
    /* width-1 digits and a NUL; 0 when it does not fit (then pax carries the value) */
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), (unsigned long long)v);
    if (n < 0 || (size_t)n > width - 1)
        return 0;
    memcpy(field, tmp, (size_t)n + 1);
    return 1;
}

static int digits(size_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

struct pax {
    char *buf;
    size_t len, cap;
};

static void pax_add(struct pax *p, const char *key, const void *val, size_t vlen)
{
    size_t base = 1 + strlen(key) + 1 + vlen + 1;
    size_t total = base + 1;
    for (int d = 1; d < 12; d++) {
        total = base + (size_t)d;
        if (digits(total) == d)
            break;
    }
    if (p->len + total + 1 > p->cap) {
        size_t nc = (p->cap ? p->cap * 2 : 1024);
        while (nc < p->len + total + 1)
            nc *= 2;
        char *nb = realloc(p->buf, nc);
        if (!nb)
            _exit(fail("pack: ", "out of memory", 0));
        p->buf = nb;
        p->cap = nc;
    }
    int w = snprintf(p->buf + p->len, p->cap - p->len, "%zu %s=", total, key);
    memcpy(p->buf + p->len + (size_t)w, val, vlen);
    p->buf[p->len + (size_t)w + vlen] = '\n';
    p->len += total;
}

static void header_checksum(char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (unsigned char)h[i];
    snprintf(h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

static void write_header(const char *name, char type, const struct stat *st, uint64_t size, const char *link,
                         struct pax *pax)
{
    char h[512];
    memset(h, 0, sizeof h);
    size_t nl = strlen(name);
    if (nl > 99)
        pax_add(pax, "path", name, nl);
    memcpy(h, name, nl > 99 ? 99 : nl);
    octal(h + 100, 8, st->st_mode & 07777);
    if (!octal(h + 108, 8, st->st_uid)) {
        char v[24];
        int k = snprintf(v, sizeof v, "%lu", (unsigned long)st->st_uid);
        pax_add(pax, "uid", v, (size_t)k);
        octal(h + 108, 8, 0);
    }
    if (!octal(h + 116, 8, st->st_gid)) {
        char v[24];
        int k = snprintf(v, sizeof v, "%lu", (unsigned long)st->st_gid);
        pax_add(pax, "gid", v, (size_t)k);
        octal(h + 116, 8, 0);
    }
    if (!octal(h + 124, 12, size)) {
        char v[24];
        int k = snprintf(v, sizeof v, "%llu", (unsigned long long)size);
        pax_add(pax, "size", v, (size_t)k);
        octal(h + 124, 12, 0);
    }
    octal(h + 136, 12, st->st_mtim.tv_sec < 0 ? 0 : (uint64_t)st->st_mtim.tv_sec);
    h[156] = type;
    if (link) {
        size_t ll = strlen(link);
        if (ll > 99)
            pax_add(pax, "linkpath", link, ll);
        memcpy(h + 157, link, ll > 99 ? 99 : ll);
    }
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    if (type == '3' || type == '4') {
        octal(h + 329, 8, major(st->st_rdev));
        octal(h + 337, 8, minor(st->st_rdev));
    }
    if (pax->len) {
        char x[512];
        memset(x, 0, sizeof x);
        snprintf(x, 100, "PaxHeaders/entry");
        octal(x + 100, 8, 0644);
        octal(x + 108, 8, 0);
        octal(x + 116, 8, 0);
        octal(x + 124, 12, pax->len);
        octal(x + 136, 12, 0);
        x[156] = 'x';
        memcpy(x + 257, "ustar", 6);
        memcpy(x + 263, "00", 2);
        header_checksum(x);
        out_bytes(x, 512);
        out_bytes(pax->buf, pax->len);
        out_zero((512 - pax->len % 512) % 512);
        pax->len = 0;
    }
    header_checksum(h);
    out_bytes(h, 512);
}

/* xattrs a layer carries (what the host's unpacker keeps): user.*, file capabilities, ACLs */
static int xattr_kept(const char *name)
{
    return !strncmp(name, "user.", 5) || !strcmp(name, "security.capability") ||
           !strncmp(name, "system.posix_acl_", 17);
}

static void add_xattrs(const char *abs, struct pax *pax)
{
    char names[8192];
    ssize_t nl = llistxattr(abs, names, sizeof names);
    if (nl <= 0)
        return;
    size_t total = 0;
    for (char *nm = names; nm < names + nl; nm += strlen(nm) + 1) {
        if (!xattr_kept(nm))
            continue;
        char val[16384];
        ssize_t vl = lgetxattr(abs, nm, val, sizeof val);
        if (vl < 0 || (total += (size_t)vl) > XATTR_MAX_TOTAL)
            continue;
        char key[300];
        if (snprintf(key, sizeof key, "SCHILY.xattr.%s", nm) >= (int)sizeof key)
            continue;
        pax_add(pax, key, val, (size_t)vl);
    }
}

/* hard links within one pack: (dev, ino) -> the first path packed */
struct link_slot {
    dev_t dev;
    ino_t ino;
    char *path;
};
static struct link_slot *g_links;
static size_t g_links_cap, g_links_used;

static struct link_slot *link_find(dev_t dev, ino_t ino)
{
    if (g_links_used * 2 >= g_links_cap) {
        size_t nc = g_links_cap ? g_links_cap * 2 : 1024;
        struct link_slot *nt = calloc(nc, sizeof *nt);
        if (!nt)
            _exit(fail("pack: ", "out of memory", 0));
        for (size_t i = 0; i < g_links_cap; i++) {
            if (!g_links[i].path)
                continue;
            size_t j = ((size_t)g_links[i].ino * 31u + (size_t)g_links[i].dev) & (nc - 1);
            while (nt[j].path)
                j = (j + 1) & (nc - 1);
            nt[j] = g_links[i];
        }
        free(g_links);
        g_links = nt;
        g_links_cap = nc;
    }
    size_t j = ((size_t)ino * 31u + (size_t)dev) & (g_links_cap - 1);
    while (g_links[j].path && !(g_links[j].dev == dev && g_links[j].ino == ino))
        j = (j + 1) & (g_links_cap - 1);
    return &g_links[j];
}

static int pack_one(const char *rel, struct pax *pax)
{
    char abs[PATH_MAX + 1];
    if (snprintf(abs, sizeof abs, "/%s", rel) >= (int)sizeof abs)
        return fail("pack: path too long: ", rel, 0);
    struct stat st;
    if (lstat(abs, &st) < 0)
        return 0; /* gone since the walk: the host sees it missing */
    char type;
    char target[PATH_MAX];
    const char *link = NULL;
    uint64_t size = 0;
    if (S_ISREG(st.st_mode)) {
        type = '0';
        size = (uint64_t)st.st_size;
        if (st.st_nlink > 1) {
            struct link_slot *slot = link_find(st.st_dev, st.st_ino);
            if (slot->path) {
                type = '1';
                link = slot->path;
                size = 0;
            } else {
                slot->dev = st.st_dev;
                slot->ino = st.st_ino;
                slot->path = strdup(rel);
                if (!slot->path)
                    return fail("pack: ", "out of memory", 0);
                g_links_used++;
            }
        }
    } else if (S_ISDIR(st.st_mode)) {
        type = '5';
    } else if (S_ISLNK(st.st_mode)) {
        ssize_t tl = readlink(abs, target, sizeof target - 1);
        if (tl < 0)
            return 0;
        target[tl] = 0;
        type = '2';
        link = target;
    } else if (S_ISCHR(st.st_mode)) {
        type = '3';
    } else if (S_ISBLK(st.st_mode)) {
        type = '4';
    } else if (S_ISFIFO(st.st_mode)) {
        type = '6';
    } else {
        return 0; /* sockets have no tar form */
    }
    int fd = -1;
    if (type == '0') {
        fd = open(abs, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
            return fail("pack: cannot open ", abs, errno);
    }
    if (type != '1')
        add_xattrs(abs, pax);
    write_header(rel, type, &st, size, link, pax);
    if (fd >= 0) {
        /* exactly the size the header gave: zeros when the file shrank, cut when it grew */
        uint64_t left = size;
        static uint8_t buf[1 << 16];
        while (left) {
            ssize_t r = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            out_bytes(buf, (size_t)r);
            left -= (uint64_t)r;
        }
        close(fd);
        out_zero((size_t)left);
        out_zero((512 - size % 512) % 512);
    }
    return 0;
}

static int do_pack(void)
{
    static char in[1 << 16];
    size_t have = 0;
    struct pax pax = {0};
    int eof = 0, rc = 0;
    while (!rc) {
        if (!eof && have < sizeof in) {
            ssize_t r = read(0, in + have, sizeof in - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                eof = 1;
            else
                have += (size_t)r;
        }
        char *nul = memchr(in, 0, have);
        if (!nul) {
            if (eof)
                break;
            if (have == sizeof in)
                return fail("pack: a path on stdin is longer than ", "64 KiB", 0);
            continue;
        }
        if (nul != in)
            rc = pack_one(in, &pax);
        size_t used = (size_t)(nul - in) + 1;
        memmove(in, in + used, have - used);
        have -= used;
    }
    out_zero(1024);
    out_flush();
    return rc;
}

/* ---- tar reading (unpack) ------------------------------------------------------------------- */

static uint8_t g_in[1 << 16];
static size_t g_inoff, g_inlen;

/* reads exactly n bytes from stdin into p (or discards them when p is NULL); 0 on success */
static int in_read(void *p, size_t n)
{
    uint8_t *b = p;
    while (n) {
        if (g_inoff == g_inlen) {
            ssize_t r = read(0, g_in, sizeof g_in);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return -1;
            g_inoff = 0;
            g_inlen = (size_t)r;
        }
        size_t k = g_inlen - g_inoff;
        if (k > n)
            k = n;
        if (b) {
            memcpy(b, g_in + g_inoff, k);
            b += k;
        }
        g_inoff += k;
        n -= k;
    }
    return 0;
}

static uint64_t parse_octal(const char *f, size_t w)
{
    uint64_t v = 0;
    for (size_t i = 0; i < w && f[i]; i++) {
        if (f[i] == ' ')
            continue;
        if (f[i] < '0' || f[i] > '7')
            break;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    return v;
}

static dev_t g_root_dev;

/* removes a file or a directory tree, never below another mount */
static int remove_tree(const char *abs)
{
    struct stat st;
    if (lstat(abs, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(abs);
    if (st.st_dev != g_root_dev)
        return errno = EBUSY, -1;
    DIR *d = opendir(abs);
    if (!d)
        return -1;
    struct dirent *e;
    char child[PATH_MAX];
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(child, sizeof child, "%s/%s", abs, e->d_name) >= (int)sizeof child) {
            errno = ENAMETOOLONG;
            rc = -1;
            break;
        }
        rc = remove_tree(child);
    }
    closedir(d);
    return rc ? rc : rmdir(abs);
}

static void make_parents(char *abs)
{
    for (char *p = abs + 1; (p = strchr(p, '/')); p++) {
        *p = 0;
        mkdir(abs, 0755);
        *p = '/';
    }
}

/* "./a//b/" -> "a/b"; -1 for a ".." component */
static int clean_name(char *name)
{
    char *w = name;
    for (char *r = name; *r;) {
        while (*r == '/')
            r++;
        char *end = strchr(r, '/');
        size_t l = end ? (size_t)(end - r) : strlen(r);
        if (l == 0)
            break;
        if (l == 1 && r[0] == '.') {
            r += l;
            continue;
        }
        if (l == 2 && r[0] == '.' && r[1] == '.')
            return -1;
        if (w != name)
            *w++ = '/';
        memmove(w, r, l);
        w += l;
        r += l;
    }
    *w = 0;
    return 0;
}

struct xattr_kv {
    char name[256];
    char *value;
    size_t len;
};

static int do_unpack(void)
{
    struct stat root;
    if (stat("/", &root) < 0)
        return fail("unpack: cannot stat ", "/", errno);
    g_root_dev = root.st_dev;
    char h[512];
    static char name[PATH_MAX], linkname[PATH_MAX], abs[PATH_MAX + 2], target[PATH_MAX + 2];
    struct xattr_kv xattrs[32];
    int nx = 0;
    int have_path = 0, have_link = 0;
    uint64_t pax_size = 0, pax_uid = 0, pax_gid = 0;
    int have_size = 0, have_uid = 0, have_gid = 0;
    static uint8_t buf[1 << 16];
    for (;;) {
        if (in_read(h, 512) < 0)
            return fail("unpack: ", "the archive ends early", 0);
        int zero = 1;
        for (int i = 0; i < 512 && zero; i++)
            zero = h[i] == 0;
        if (zero)
            break;
        unsigned sum = 0;
        for (int i = 0; i < 512; i++)
            sum += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
        if (sum != parse_octal(h + 148, 8))
            return fail("unpack: ", "a header has a bad checksum", 0);
        char type = h[156] ? h[156] : '0';
        uint64_t size = have_size ? pax_size : parse_octal(h + 124, 12);
        if (type == 'x') {
            if (size > (1u << 20))
                return fail("unpack: ", "a pax header is over 1 MiB", 0);
            char *rec = malloc(size + 1);
            if (!rec || in_read(rec, size) < 0 || in_read(NULL, (512 - size % 512) % 512) < 0)
                return fail("unpack: ", "cannot read a pax header", 0);
            rec[size] = 0;
            for (size_t off = 0; off < size;) {
                char *sp;
                unsigned long rl = strtoul(rec + off, &sp, 10);
                if (*sp != ' ' || rl == 0 || off + rl > size)
                    break;
                char *key = sp + 1, *eq = memchr(key, '=', rec + off + rl - key);
                if (!eq)
                    break;
                *eq = 0;
                char *val = eq + 1;
                size_t vl = (size_t)(rec + off + rl - 1 - val);
                if (!strcmp(key, "path") && vl < sizeof name) {
                    memcpy(name, val, vl);
                    name[vl] = 0;
                    have_path = 1;
                } else if (!strcmp(key, "linkpath") && vl < sizeof linkname) {
                    memcpy(linkname, val, vl);
                    linkname[vl] = 0;
                    have_link = 1;
                } else if (!strcmp(key, "size")) {
                    pax_size = strtoull(val, NULL, 10);
                    have_size = 1;
                } else if (!strcmp(key, "uid")) {
                    pax_uid = strtoull(val, NULL, 10);
                    have_uid = 1;
                } else if (!strcmp(key, "gid")) {
                    pax_gid = strtoull(val, NULL, 10);
                    have_gid = 1;
                } else if (!strncmp(key, "SCHILY.xattr.", 13) && nx < 32 && strlen(key + 13) < 256) {
                    snprintf(xattrs[nx].name, sizeof xattrs[nx].name, "%s", key + 13);
                    xattrs[nx].value = malloc(vl ? vl : 1);
                    if (xattrs[nx].value) {
                        memcpy(xattrs[nx].value, val, vl);
                        xattrs[nx].len = vl;
                        nx++;
                    }
                }
                off += rl;
            }
            free(rec);
            continue;
        }
        if (type == 'g') {
            if (in_read(NULL, size + (512 - size % 512) % 512) < 0)
                return fail("unpack: ", "the archive ends early", 0);
            continue;
        }
        if (!have_path) {
            char pre[156] = "", nm[101];
            memcpy(nm, h, 100);
            nm[100] = 0;
            if (!memcmp(h + 257, "ustar", 5)) {
                memcpy(pre, h + 345, 155);
                pre[155] = 0;
            }
            snprintf(name, sizeof name, "%s%s%s", pre, pre[0] ? "/" : "", nm);
        }
        if (!have_link) {
            memcpy(linkname, h + 157, 100);
            linkname[100] = 0;
        }
        mode_t mode = (mode_t)parse_octal(h + 100, 8) & 07777;
        uid_t uid = (uid_t)(have_uid ? pax_uid : parse_octal(h + 108, 8));
        gid_t gid = (gid_t)(have_gid ? pax_gid : parse_octal(h + 116, 8));
        struct timespec times[2] = {{(time_t)parse_octal(h + 136, 12), 0}, {0, 0}};
        times[1] = times[0];
        if (clean_name(name) < 0)
            return fail("unpack: an entry has a '..' component: ", name, 0);
        snprintf(abs, sizeof abs, "/%s", name);
        const char *base = strrchr(abs, '/') + 1;
        int rc = 0;
        if (!name[0]) {
            /* the root itself: nothing to create */
        } else if (!strncmp(base, ".wh.", 4)) {
            char victim[PATH_MAX + 2];
            size_t dl = (size_t)(base - abs);
            memcpy(victim, abs, dl);
            if (!strcmp(base, ".wh..wh..opq")) {
                /* empty the directory of what lower layers put there */
                victim[dl ? dl - 1 : 0] = 0;
                DIR *d = opendir(victim[0] ? victim : "/");
                struct dirent *e;
                char child[PATH_MAX + 2];
                while (d && (e = readdir(d)))
                    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
                        snprintf(child, sizeof child, "%s/%s", victim, e->d_name) < (int)sizeof child)
                        remove_tree(child);
                if (d)
                    closedir(d);
            } else {
                snprintf(victim + dl, sizeof victim - dl, "%s", base + 4);
                if (remove_tree(victim) < 0)
                    rc = fail("unpack: cannot remove ", victim, errno);
            }
        } else {
            make_parents(abs);
            struct stat old;
            int exists = lstat(abs, &old) == 0;
            if (exists && !(type == '5' && S_ISDIR(old.st_mode)) && remove_tree(abs) < 0)
                rc = fail("unpack: cannot replace ", abs, errno);
            int made = !rc;
            if (rc) {
                /* reported */
            } else if (type == '5') {
                if ((!exists || !S_ISDIR(old.st_mode)) && mkdir(abs, 0700) < 0)
                    made = 0, rc = fail("unpack: mkdir ", abs, errno);
            } else if (type == '0' || type == '7') {
                int fd = open(abs, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                    return fail("unpack: cannot create ", abs, errno);
                uint64_t left = size;
                while (left) {
                    size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
                    if (in_read(buf, k) < 0)
                        return fail("unpack: ", "the archive ends inside a file", 0);
                    for (size_t off = 0; off < k;) {
                        ssize_t w = write(fd, buf + off, k - off);
                        if (w < 0 && errno == EINTR)
                            continue;
                        if (w < 0)
                            return fail("unpack: cannot write ", abs, errno);
                        off += (size_t)w;
                    }
                    left -= k;
                }
                close(fd);
                if (in_read(NULL, (512 - size % 512) % 512) < 0)
                    return fail("unpack: ", "the archive ends early", 0);
                size = 0;
            } else if (type == '1') {
                snprintf(target, sizeof target, "/%s", linkname);
                if (clean_name(target + 1) < 0 || link(target, abs) < 0)
                    rc = fail("unpack: cannot link ", abs, errno ? errno : EINVAL);
                made = 0;
            } else if (type == '2') {
                if (symlink(linkname, abs) < 0)
                    made = 0, rc = fail("unpack: cannot make symlink ", abs, errno);
            } else if (type == '3' || type == '4' || type == '6') {
                mode_t kind = type == '3' ? S_IFCHR : type == '4' ? S_IFBLK : S_IFIFO;
                dev_t dev = makedev((unsigned)parse_octal(h + 329, 8), (unsigned)parse_octal(h + 337, 8));
                if (mknod(abs, kind | 0600, type == '6' ? 0 : dev) < 0)
                    made = 0, rc = fail("unpack: cannot make ", abs, errno);
            } else {
                rc = fail("unpack: an entry has an unknown type: ", abs, 0);
                made = 0;
            }
            if (made) {
                /* owner first: chown clears setuid bits and file capabilities */
                if (lchown(abs, uid, gid) < 0)
                    rc = fail("unpack: cannot chown ", abs, errno);
                if (type != '2' && chmod(abs, mode) < 0)
                    rc = fail("unpack: cannot chmod ", abs, errno);
                for (int i = 0; i < nx && !rc; i++)
                    if (lsetxattr(abs, xattrs[i].name, xattrs[i].value, xattrs[i].len, 0) < 0)
                        rc = fail("unpack: cannot set an extended attribute of ", abs, errno);
                utimensat(AT_FDCWD, abs, times, AT_SYMLINK_NOFOLLOW);
            }
        }
        if (rc)
            return rc;
        if (size && in_read(NULL, size + (512 - size % 512) % 512) < 0)
            return fail("unpack: ", "the archive ends early", 0);
        for (int i = 0; i < nx; i++)
            free(xattrs[i].value);
        nx = 0;
        have_path = have_link = have_size = have_uid = have_gid = 0;
    }
    /* drain the rest (the second zero block, padding) so the host's writer never blocks */
    while (in_read(buf, 1) == 0)
        ;
    return 0;
}

/* ---- cgroup ---------------------------------------------------------------------------------- */

/* The commands' cgroup files the host may set, and nothing else: the guest's other cgroups and
 * its root stay the agent's. */
static const char *const CGROUP_FILES[] = {"cgroup.freeze", "pids.max", "memory.max"};

static int do_cgroup(char **argv)
{
    if (!argv[1] || !argv[2] || argv[3])
        return 2;
    int known = 0;
    for (size_t i = 0; i < sizeof CGROUP_FILES / sizeof CGROUP_FILES[0]; i++)
        known |= !strcmp(argv[1], CGROUP_FILES[i]);
    size_t n = strlen(argv[2]);
    if (!known || n == 0 || n > 20 || strspn(argv[2], "0123456789max") != n)
        return 2;
    /* exec.c keeps this child out of the commands' cgroup: freezing it must not freeze the
     * writer, and a frozen one must be thawed from outside. */
    char path[96];
    snprintf(path, sizeof path, "/sys/fs/cgroup/sandbox/%s", argv[1]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        dprintf(2, "%s: %s\n", path, strerror(errno));
        return 1;
    }
    int r = write(fd, argv[2], n) == (ssize_t)n ? 0 : 1;
    if (r)
        dprintf(2, "%s: %s\n", path, strerror(errno));
    close(fd);
    return r;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

int builtin_known(const char *name)
{
    return !strcmp(name, "walk") || !strcmp(name, "pack") || !strcmp(name, "unpack") ||
           !strcmp(name, "cgroup");
}

int builtin_main(char **argv)
{
    if (!strcmp(argv[0], "walk"))
        return do_walk();
    if (!strcmp(argv[0], "pack"))
        return do_pack();
    if (!strcmp(argv[0], "unpack"))
        return do_unpack();
    if (!strcmp(argv[0], "cgroup"))
        return do_cgroup(argv);
    return 2;
}
