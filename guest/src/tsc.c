/* --tsc-khz: the rate of this machine's time-stamp counter, measured on the HOST (this binary
 * is run there by the daemon, never inside a sandbox). Under QEMU's TCG a guest's RDTSC reads the
 * host's counter (plus an offset QEMU keeps across stop and restore), so the guest's TSC runs at
 * the host's rate; but the guest kernel cannot measure that rate itself (its PIT calibration
 * fails under emulation and a microvm has no HPET or ACPI PM timer), marks the TSC unstable and
 * keeps time with 100 Hz jiffies: no high-resolution timers, no tickless idle, every
 * clock_gettime a system call. The daemon hands the rate measured here to the guest kernel
 * (tsc_early_khz=). */
#include "agent.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>

/* One TSC reading bracketing one clock reading; a pair stretched by preemption is retried. */
static int sample(uint64_t *tsc, uint64_t *ns)
{
    for (int tries = 0; tries < 1000; tries++) {
        struct timespec ts;
        uint64_t a = __rdtsc();
        clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
        uint64_t b = __rdtsc();
        if (b - a < 20000) { /* well under 10 us at any rate a TSC runs */
            *tsc = a + (b - a) / 2;
            *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
            return 0;
        }
    }
    return -1;
}

int tsc_khz_main(void)
{
    uint64_t t0, n0, t1, n1;
    struct timespec wait = {0, 100 * 1000 * 1000};
    if (sample(&t0, &n0) < 0)
        return 1;
    nanosleep(&wait, NULL);
    if (sample(&t1, &n1) < 0 || n1 <= n0 || t1 <= t0)
        return 1;
    /* 100 ms with each end known to within a few us: the rate to ~1e-4 or better */
    printf("%llu\n", (unsigned long long)((t1 - t0) * 1000000u / (n1 - n0)));
    return 0;
}
#else
int tsc_khz_main(void) { return 1; /* no TSC on this architecture */ }
#endif
