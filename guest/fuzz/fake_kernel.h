/* The fuzz build's stand-in for the kernel, between the agent and libc. The agent's objects get
 * their system calls renamed to fake_* (fake_syscalls.map, applied with objcopy), so the fuzzer
 * drives the real event loop and request handlers while nothing leaves the process: no fork, no
 * signal, no write outside memory, no socket beyond a socketpair. Production builds never see
 * this file. */
#ifndef AIRLOCK_FAKE_KERNEL_H
#define AIRLOCK_FAKE_KERNEL_H

#include <stddef.h>
#include <stdint.h>

/* One run of the agent's loop over one input: the host's bytes arrive on the connection in
 * chunks chosen from the input's length, so frames straddle reads and batch together. */
void fake_begin(const uint8_t *input, size_t size, int port_mode);
/* After the run: checks that the agent closed every descriptor it opened for the run and
 * resets the fake filesystem and process table. */
void fake_end(void);
int fake_listen_fd(void);
int fake_port_fd(void);
/* Set by the harness: where epoll_wait and SHUTDOWN jump when the run is over. */
void fake_set_exit(void (*leave)(void));

/* Provided by the harness: whether the agent is between sessions (no connection). */
int fuzz_session_idle(void);

#endif
