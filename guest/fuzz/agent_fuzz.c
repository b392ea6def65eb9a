/* libFuzzer target: the fuzz input is what a host sends to the agent over one connection. The
 * agent's real sources are compiled into this file (so the harness can reset their static state
 * between inputs) and run in their real event loop, serve(), once as a unix-socket server and once
 * on a virtio-serial port (where malformed input is followed by the HELLO resync). Every system
 * call they make goes to fake_kernel.c instead (see fake_syscalls.map), so requests are parsed
 * and acted upon without forking, signalling or touching the filesystem.
 *
 * A run fails on: any AddressSanitizer or UndefinedBehaviorSanitizer report, a leak, a
 * descriptor left open or registered, a frame the host would reject, a kill() aimed at a pid the
 * agent did not start, child-only code running in the parent, or a loop that does not settle. */
#include "../src/frame.c"
#include "../src/session.c"
#include "../src/confine.c"
#include "../src/mountns.c"
#include "../src/podroot.c"
#include "../src/exec.c"
#include "../src/files.c"
#include "../src/identity.c"
#include "../src/net.c"
#include "../src/limits.c"

#include <setjmp.h>

#include "fake_kernel.h"

/* boot.c is PID 1 only; these are its parts the rest of the agent refers to. */
char g_exec_cgroup[64];
void pid1_ready(void) {}

/* main.c's unix listener (gVisor, containers): the fuzzer serves one connection it made itself,
 * so there is no path to reopen around a checkpoint. */
const char *g_listen_path;
int listen_unix(const char *path)
{
    (void)path;
    return -1;
}

/* builtin.c runs only in a command's child (after fork), which the fake kernel never starts; its
 * parent-side check names the same built-ins. */
int builtin_known(const char *name)
{
    return strcmp(name, "walk") == 0 || strcmp(name, "pack") == 0 || strcmp(name, "unpack") == 0;
}
int builtin_main(char **argv)
{
    (void)argv;
    abort();
}

void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

static jmp_buf g_leave;

__attribute__((noreturn)) static void leave(void) { longjmp(g_leave, 1); }

/* SHUTDOWN powers the guest off: for the fuzzer, the end of the run. */
void shutdown_everything(void) { leave(); }

int fuzz_session_idle(void) { return g_state == C_NONE; }

/* Puts every global of the agent back to its state before serve(), freeing what the run left. */
static void reset_agent(void)
{
    while (g_streams)
        stream_kill(g_streams);
    free_dead();
    while (g_listeners) {
        struct listener *l = g_listeners;
        g_listeners = l->next;
        watch_close(&l->w);
        free(l);
    }
    if (g_listen >= 0)
        watch_close(&w_conn); /* a unix connection still open (SHUTDOWN ends the run early) */
    else {
        w_conn.want = 0;
        watch_apply(&w_conn);
    }
    w_listen.want = 0;
    watch_apply(&w_listen);
    watch_close(&w_sig);
    close(g_ep);
    g_ep = -1;
    free(g_in);
    g_in = NULL;
    g_inlen = 0;
    obuf_free(&g_out);
    g_state = C_NONE;
    g_listen = g_port = g_conn = -1;
    g_hello = 0;
    g_nstreams = 0;
    free(g_extra_block);
    g_extra_block = NULL;
    g_nextra = 0;
}

static void run(const uint8_t *data, size_t size, int port_mode)
{
    fake_begin(data, size, port_mode);
    if (setjmp(g_leave) == 0)
        serve(fake_listen_fd(), fake_port_fd());
    reset_agent();
    fake_end();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fake_set_exit(leave);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, 0);
    run(data, size, 1);
    return 0;
}
