/* Limits the agent enforces itself when the runtime cannot enforce them per command: under
 * gVisor the host cgroup bounds the whole sandbox (the Sentry, which is the guest's kernel), and
 * hitting it ends the sandbox instead of one process. The host asks for these through the
 * agent's environment (a runtime that enforces them itself sets none of the variables):
 *
 *   AIRLOCK_PIDS=N            commands join a pids cgroup (v1, /sys/fs/cgroup/pids/commands)
 *                             whose pids.max is N; the agent stays outside it. gVisor's pids
 *                             controller was seen to let a fork bomb past N (by 2 to 17), so
 *                             each command also gets RLIMIT_NPROC N+1 (tasks of its user in the
 *                             sandbox, the agent's one included), which gVisor enforces exactly
 *   AIRLOCK_MEMORY_GUARD=B    when the sandbox's memory in use exceeds B bytes, the command
 *                             process using the most is SIGKILLed and counted as an OOM kill
 *   AIRLOCK_AGENT_CAPS=a,b    capability numbers the agent holds (to set a claimed sandbox's
 *                             hostname) that no command may have: dropped from each command's
 *                             bounding set before it runs
 *
 * The host cgroup stays the hard boundary: a guest that gets past these (root can lift its own
 * pids.max inside gVisor) only runs into it and ends its own sandbox. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIDS_DIR "/sys/fs/cgroup/pids/commands"
/* How often memory is checked while a command runs, and while none does. A hog under gVisor
 * grows by tens of MiB in a busy interval; the host cgroup leaves room above the guard for it. */
#define GUARD_BUSY_MS 50
#define GUARD_IDLE_MS 1000

static long long g_guard_bytes;
static long g_guard_kills;
static pid_t g_victim; /* the last process killed, until its memory is gone */
static struct timespec g_settled; /* no second kill before: the sandbox's count of used memory lags */
static struct timespec g_guard_next;
static unsigned long long g_agent_caps; /* bit n: capability n */
static long g_nproc;                    /* RLIMIT_NPROC for commands, 0: none */

static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        logmsg("%s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

void agent_limits_init(void)
{
    const char *pids = getenv("AIRLOCK_PIDS");
    if (pids && *pids) {
        if (mkdir(PIDS_DIR, 0755) < 0 && errno != EEXIST) {
            logmsg("cgroup for commands: %s", strerror(errno));
        } else {
            write_text(PIDS_DIR "/pids.max", pids);
            snprintf(g_exec_cgroup, sizeof g_exec_cgroup, "%s", PIDS_DIR "/cgroup.procs");
        }
        g_nproc = strtol(pids, NULL, 10) + 1;
    }
    const char *mem = getenv("AIRLOCK_MEMORY_GUARD");
    if (mem && *mem)
        g_guard_bytes = strtoll(mem, NULL, 10);
    const char *caps = getenv("AIRLOCK_AGENT_CAPS");
    for (const char *p = caps; p && *p;) {
        char *end;
        long c = strtol(p, &end, 10);
        if (end == p)
            break;
        if (c >= 0 && c < 64)
            g_agent_caps |= 1ULL << c;
        p = *end == ',' ? end + 1 : end;
    }
    unsetenv("AIRLOCK_PIDS");
    unsetenv("AIRLOCK_MEMORY_GUARD");
    unsetenv("AIRLOCK_AGENT_CAPS");
}

void agent_child_limits(void)
{
    if (g_nproc > 0) {
        struct rlimit rl = {(rlim_t)g_nproc, (rlim_t)g_nproc};
        setrlimit(RLIMIT_NPROC, &rl);
    }
    /* CAP_SETPCAP (8), needed for the drops, goes last */
    for (int c = 63; c >= 0; c--)
        if (c != 8 && (g_agent_caps & (1ULL << c)))
            prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    if (g_agent_caps & (1ULL << 8))
        prctl(PR_CAPBSET_DROP, 8, 0, 0, 0);
}

long memguard_kills(void) { return g_guard_bytes > 0 ? g_guard_kills : -1; }

static long ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
    return ms < 0 ? 0 : ms;
}

int memguard_timeout(int timeout)
{
    if (g_guard_bytes <= 0)
        return timeout;
    long ms = ms_until(&g_guard_next);
    return timeout < 0 || ms < timeout ? (int)ms : timeout;
}

/* Bytes in use by the whole sandbox, as its kernel counts them; -1 when unreadable. */
static long long used_bytes(void)
{
    char buf[2048];
    int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *t = strstr(buf, "MemTotal:"), *a = strstr(buf, "MemAvailable:");
    if (!t || !a)
        return -1;
    return (strtoll(t + 9, NULL, 10) - strtoll(a + 13, NULL, 10)) * 1024;
}

/* Resident bytes of a process, 0 when gone or unreadable. */
static long long rss_of(pid_t pid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    return sp ? strtoll(sp + 1, NULL, 10) * sysconf(_SC_PAGESIZE) : 0;
}

/* Like the kernel's OOM killer: the biggest process but the agent (the sandbox's PID 1). */
static void kill_biggest(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    pid_t victim = 0;
    long long most = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 1 || pid == getpid())
            continue;
        long long rss = rss_of((pid_t)pid);
        if (rss > most) {
            most = rss;
            victim = (pid_t)pid;
        }
    }
    closedir(d);
    if (victim > 0 && kill(victim, SIGKILL) == 0) {
        g_guard_kills++;
        g_victim = victim;
        logmsg("memory guard: killed pid %d (%lld MiB resident): the sandbox used more than its %lld MiB",
               (int)victim, most >> 20, g_guard_bytes >> 20);
    }
}

void memguard_check(int busy)
{
    if (g_guard_bytes <= 0 || ms_until(&g_guard_next) > 0)
        return;
    /* as the kernel's OOM killer waits for its victim's memory before choosing another, so a
     * shell whose child was killed is not taken for the next hog */
    if (g_victim > 0 && rss_of(g_victim) > 0) {
        busy = 1;
    } else if (g_victim > 0) {
        /* Gone, but gVisor's meminfo (what used_bytes reads) lags behind a freed process: without
         * a pause the shell that waited for the victim would be taken for the next hog. */
        g_victim = 0;
        clock_gettime(CLOCK_MONOTONIC, &g_settled);
        g_settled.tv_nsec += 300 * 1000000L;
        g_settled.tv_sec += g_settled.tv_nsec / 1000000000;
        g_settled.tv_nsec %= 1000000000;
        busy = 1;
    } else if (ms_until(&g_settled) == 0 && used_bytes() > g_guard_bytes) {
        kill_biggest();
    }
    clock_gettime(CLOCK_MONOTONIC, &g_guard_next);
    long ms = busy ? GUARD_BUSY_MS : GUARD_IDLE_MS;
    g_guard_next.tv_nsec += (ms % 1000) * 1000000;
    g_guard_next.tv_sec += ms / 1000 + g_guard_next.tv_nsec / 1000000000;
    g_guard_next.tv_nsec %= 1000000000;
}
