package dev.airlock.guest;

/**
 * How a process ended.
 *
 * @param exitCode the code passed to exit(2), meaningful when {@code signal} is 0
 * @param signal the signal that killed it, or 0
 * @param timedOut the spec's timeout expired and the agent killed the process group
 * @param oomKilled the kernel's out-of-memory killer killed a process in the sandbox while this
 *     command ran: the command itself when {@code signal} is 9, else one of its children (or,
 *     with concurrent commands, possibly another command's process)
 */
public record ExitStatus(int exitCode, int signal, boolean timedOut, boolean oomKilled) {
    /** The status a shell would report: the exit code, or 128 + signal. */
    public int shellStatus() {
        return signal != 0 ? 128 + signal : exitCode;
    }
}
