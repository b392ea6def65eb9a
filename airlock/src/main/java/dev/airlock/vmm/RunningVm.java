package dev.airlock.vmm;

import java.nio.file.Path;
import java.time.Duration;

/** A live VMM process. Stopping the guest cleanly is the agent's job; these are the VMM's levers. */
public interface RunningVm {

    long pid();

    boolean isAlive();

    /** The host end of the agent channel (a stream socket the agent protocol runs over). */
    Path agentSocket();

    /** Freezes the vCPUs (memory stays resident). */
    void pause();

    void resume();

    /**
     * Continues a VM that a crashed caller left stopped for saving: a migration still under way
     * is cancelled, its end awaited, and the VM continued if it is not running. Harmless on a
     * running VM.
     */
    void thaw();

    /**
     * Stops the vCPUs and writes the VM's migration stream to {@code file}: device state, and RAM
     * unless {@code ignoreShared} and the RAM is a shared memory file (then the file is the RAM).
     * The VM stays stopped; {@link #resume} continues it, {@link #kill} ends it.
     */
    void saveState(Path file, boolean ignoreShared);

    /** Kills the VMM process at once; the guest gets no say. */
    void kill();

    /** Waits for the VMM process to exit; false on timeout. */
    boolean awaitExit(Duration timeout);
}
