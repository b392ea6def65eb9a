/* IDENTITY: what a VM restored from a shared snapshot must not share with its siblings.
 * Every clone of a template resumes with the same kernel CRNG state, hostname, machine-id and
 * a wall clock frozen at the moment of the snapshot; the host sends fresh values right after
 * each restore, before the sandbox is handed out. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_ENTROPY 512

/* Mixes the host's bytes into the input pool, credited as entropy, then forces the CRNG to
 * reseed from it now rather than at its next scheduled reseed (which could be a minute away,
 * and until then two clones would read identical /dev/urandom output). */
static int reseed(const uint8_t *bytes, uint32_t n)
{
    struct {
        struct rand_pool_info info;
        uint8_t buf[MAX_ENTROPY];
    } req;
    int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    req.info.entropy_count = (int)(n * 8);
    req.info.buf_size = (int)n;
    memcpy(req.buf, bytes, n);
    int r = ioctl(fd, RNDADDENTROPY, &req.info);
    if (r == 0)
        r = ioctl(fd, RNDRESEEDCRNG);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* A clone of a running sandbox, and every sandbox of a template that already holds one, has a
 * /etc/machine-id of its own layer: overwriting its bytes in place is one write into a cached
 * page, where a new file and a rename are an inode created, a directory changed twice and the
 * old inode freed, which under emulation cost a restore 60-100 ms and ~3 MB of translated code.
 * Only a regular file of exactly the new length with one link is overwritten; anything else
 * (absent, empty as many images ship it, a link) is replaced as before. */
static int overwrite_machine_id(const uint8_t *v, uint32_t n)
{
    char line[33];
    if (n + 1 > sizeof line)
        return -1;
    int fd = open("/etc/machine-id", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == (off_t)n + 1;
    if (ok) {
        memcpy(line, v, n);
        line[n] = '\n';
        ok = write(fd, line, n + 1) == (ssize_t)(n + 1); /* at offset 0: just opened, no O_APPEND */
    }
    close(fd);
    return ok ? 0 : -1;
}

static int write_machine_id(const uint8_t *v, uint32_t n)
{
    if (overwrite_machine_id(v, n) == 0)
        return 0;
    char tmp[] = "/etc/machine-id.airlock";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
    if (fd < 0)
        return -1;
    int ok = write(fd, v, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    close(fd);
    if (!ok || rename(tmp, "/etc/machine-id") < 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int identity_apply(uint32_t id, const uint8_t *p, size_t n)
{
    struct tlv_it it = {p, n};
    uint16_t tag;
    const uint8_t *v;
    uint32_t vl;
    int r;
    while ((r = tlv_next(&it, &tag, &v, &vl)) > 0) {
        if (tag == I_ENTROPY) {
            if (vl == 0 || vl > MAX_ENTROPY)
                return send_error(id, EINVAL, "ENTROPY must be 1 to %d bytes", MAX_ENTROPY), 0;
            if (reseed(v, vl) < 0)
                return send_error(id, errno, "reseeding the entropy pool: %s", strerror(errno)), 0;
        } else if (tag == I_TIME_NS) {
            if (vl != 8)
                return -1;
            uint64_t ns = get64(v);
            struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
            if (clock_settime(CLOCK_REALTIME, &ts) < 0)
                return send_error(id, errno, "setting the clock: %s", strerror(errno)), 0;
        } else if (tag == I_HOSTNAME) {
            if (vl == 0 || vl > 64 || memchr(v, 0, vl))
                return send_error(id, EINVAL, "HOSTNAME must be 1 to 64 bytes"), 0;
            if (sethostname((const char *)v, vl) < 0)
                return send_error(id, errno, "setting the hostname: %s", strerror(errno)), 0;
        } else if (tag == I_MACHINE_ID) {
            if (vl != 32 || memchr(v, 0, vl))
                return send_error(id, EINVAL, "MACHINE_ID must be 32 hex characters"), 0;
            if (write_machine_id(v, vl) < 0)
                return send_error(id, errno, "writing /etc/machine-id: %s", strerror(errno)), 0;
        }
    }
    if (r < 0)
        return -1;
    return send_frame(T_RESULT, 0, id, NULL, 0), 0;
}
