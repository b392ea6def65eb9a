/* What EXEC's confinement tags ask of a command's process, as an OCI runtime applies a
 * container's process settings: rlimits, the capability sets and bounding set, no_new_privs, a
 * seccomp filter (a classic BPF program the host compiled), umask, supplementary groups and a
 * hostname (in a UTS namespace of the process's own, so the guest's stays).
 * The host is trusted to send sensible values, but every length is checked here, and the kernel
 * checks the rest (it verifies the BPF program itself). */
#include "agent.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CAPS_LEN 40
#define RLIMIT_LEN 20

void confine_init(struct confine *c)
{
    memset(c, 0, sizeof *c);
    c->umask = 022;
}

int confine_tag(struct confine *c, uint16_t tag, const uint8_t *v, uint32_t vl, const char **why)
{
    switch (tag) {
    case X_RLIMIT:
        if (vl != RLIMIT_LEN || c->nrlimits >= CONFINE_MAX_RLIMITS) {
            *why = "an RLIMIT entry is not 20 bytes, or there are too many";
            return -1;
        }
        c->rlimits[c->nrlimits].resource = get32(v);
        c->rlimits[c->nrlimits].soft = get64(v + 4);
        c->rlimits[c->nrlimits].hard = get64(v + 12);
        c->nrlimits++;
        return 1;
    case X_CAPS:
        if (vl != CAPS_LEN) {
            *why = "CAPS is not five 64-bit sets";
            return -1;
        }
        c->has_caps = 1;
        c->bounding = get64(v);
        c->effective = get64(v + 8);
        c->permitted = get64(v + 16);
        c->inheritable = get64(v + 24);
        c->ambient = get64(v + 32);
        return 1;
    case X_NO_NEW_PRIVS:
        if (vl != 1) {
            *why = "NO_NEW_PRIVS is not one byte";
            return -1;
        }
        c->no_new_privs = v[0] == 1;
        return 1;
    case X_SECCOMP:
        if (vl == 0 || vl % 8 != 0 || vl / 8 > BPF_MAXINSNS) {
            *why = "SECCOMP is not 1 to 4096 BPF instructions of 8 bytes";
            return -1;
        }
        c->filter = v;
        c->filter_len = vl / 8;
        return 1;
    case X_UMASK:
        if (vl != 4 || get32(v) > 0777) {
            *why = "UMASK is not a 32-bit mode of at most 0777";
            return -1;
        }
        c->umask = (mode_t)get32(v);
        return 1;
    case X_GROUPS:
        if (vl % 4 != 0 || vl / 4 > CONFINE_MAX_GROUPS) {
            *why = "GROUPS is not at most 256 32-bit group ids";
            return -1;
        }
        c->ngroups = (int)(vl / 4);
        for (int i = 0; i < c->ngroups; i++)
            c->groups[i] = (gid_t)get32(v + 4 * i);
        c->has_groups = 1;
        return 1;
    case X_HOSTNAME:
        if (vl == 0 || vl >= sizeof c->hostname || memchr(v, 0, vl)) {
            *why = "HOSTNAME is not 1 to 64 bytes without NUL";
            return -1;
        }
        memcpy(c->hostname, v, vl);
        c->hostname[vl] = 0;
        return 1;
    }
    return 0;
}

/* The highest capability the running kernel knows: capability numbers past it are dropped from
 * the masks (the host's table may be newer than the guest kernel). */
static int last_cap(void)
{
    int c = 0;
    while (c < 63 && prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0)
        c++;
    return c;
}

static int install_filter(const struct confine *c)
{
    struct sock_filter prog[BPF_MAXINSNS];
    for (uint32_t i = 0; i < c->filter_len; i++) {
        const uint8_t *p = c->filter + 8 * i;
        prog[i].code = get16(p);
        prog[i].jt = p[2];
        prog[i].jf = p[3];
        prog[i].k = get32(p + 4);
    }
    struct sock_fprog fprog = {.len = (unsigned short)c->filter_len, .filter = prog};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog);
}

/* Before the user changes (each needs a capability the process may lose): the hostname
 * (CAP_SYS_ADMIN), the limits (raising a hard one needs CAP_SYS_RESOURCE), the bounding set
 * (dropping needs CAP_SETPCAP), KEEPCAPS so the permitted set survives setuid, and the seccomp
 * filter when no_new_privs is not asked for: installing one then needs CAP_SYS_ADMIN, so it goes
 * in here, as runc does, and must allow what follows (setgroups, setuid, capset, prctl, execve),
 * as every profile written for runc does.
 *
 * The sandbox stays the outer bound: a hard limit it cannot raise (no CAP_SYS_RESOURCE, as in
 * the container and gVisor modes) is kept at its own, with the soft limit under it; a
 * capability missing from its bounding set is not dropped again. Both only ever confine more. */
int confine_before_user(const struct confine *c)
{
    if (c->hostname[0] && (unshare(CLONE_NEWUTS) < 0 || sethostname(c->hostname, strlen(c->hostname)) < 0))
        return -1;
    for (int i = 0; i < c->nrlimits; i++) {
        int res = (int)c->rlimits[i].resource;
        struct rlimit rl = {(rlim_t)c->rlimits[i].soft, (rlim_t)c->rlimits[i].hard}, cur;
        if (setrlimit(res, &rl) == 0)
            continue;
        if (errno != EPERM || getrlimit(res, &cur) < 0 || rl.rlim_max <= cur.rlim_max)
            return -1;
        rl.rlim_max = cur.rlim_max;
        if (rl.rlim_cur > rl.rlim_max)
            rl.rlim_cur = rl.rlim_max;
        if (setrlimit(res, &rl) < 0)
            return -1;
    }
    if (c->has_caps) {
        int last = last_cap();
        for (int cap = 0; cap <= last; cap++)
            if (!(c->bounding & (1ULL << cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
                prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
                return -1;
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            return -1;
    }
    if (c->filter_len && !c->no_new_privs && install_filter(c) < 0)
        return -1;
    return 0;
}

/* After the user changed, just before execve: umask, capability sets, ambient set, no_new_privs
 * and, with no_new_privs, the seccomp filter last (so it need not allow capset and prctl).
 * Capabilities the process does not hold itself (the sandbox's own bound: a container-mode
 * sandbox holds fewer than a VM's root) are left out rather than failing capset. */
int confine_before_exec(const struct confine *c)
{
    umask(c->umask);
    if (c->has_caps) {
        int last = last_cap();
        uint64_t mask = last >= 63 ? ~0ULL : (1ULL << (last + 1)) - 1;
        struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &h, d) < 0)
            return -1;
        uint64_t held = ((uint64_t)d[1].permitted << 32) | d[0].permitted;
        uint64_t inh_held = ((uint64_t)d[1].inheritable << 32) | d[0].inheritable;
        uint64_t bnd = 0;
        for (int cap = 0; cap <= last; cap++)
            if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
                bnd |= 1ULL << cap;
        uint64_t perm = c->permitted & mask & held;
        uint64_t eff = c->effective & perm;
        /* without CAP_SETPCAP, inheritable may only come from what is held, and never past bounding */
        uint64_t inh = c->inheritable & mask & (held | inh_held) & bnd;
        d[0].effective = (uint32_t)eff;
        d[1].effective = (uint32_t)(eff >> 32);
        d[0].permitted = (uint32_t)perm;
        d[1].permitted = (uint32_t)(perm >> 32);
        d[0].inheritable = (uint32_t)inh;
        d[1].inheritable = (uint32_t)(inh >> 32);
        if (syscall(SYS_capset, &h, d) < 0)
            return -1;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
        for (int cap = 0; cap <= last; cap++)
            if ((c->ambient & perm & inh & (1ULL << cap)) &&
                prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                return -1;
    }
    if (c->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    if (c->filter_len && c->no_new_privs && install_filter(c) < 0)
        return -1;
    return 0;
}
