package dev.airlock.vmm;

import java.nio.file.Path;
import java.util.List;

/**
 * Everything a VMM needs to launch one microVM. The state directory holds the VMM's files for
 * this VM (pid file, console log); sockets go to the runtime directory because unix socket
 * paths are limited to 107 bytes.
 */
public record VmSpec(
        Path kernel,
        Path initrd,
        String cmdline,
        List<Disk> disks,
        int vcpus,
        int memoryMiB,
        Accel accel,
        Path stateDir,
        Path runtimeDir) {

    /** A block device; the guest sees them as /dev/vda, /dev/vdb, ... in this order. */
    public record Disk(Path file, boolean readOnly) {}

    public VmSpec {
        disks = List.copyOf(disks);
        if (vcpus < 1 || vcpus > 16) {
            throw new IllegalArgumentException("vCPUs must be between 1 and 16, not " + vcpus);
        }
        if (memoryMiB < 128) {
            throw new IllegalArgumentException("memory must be at least 128 MiB, not " + memoryMiB + " MiB");
        }
    }

    public Path consoleLog() {
        return stateDir.resolve("console.log");
    }

    public Path pidFile() {
        return stateDir.resolve("vmm.pid");
    }

    public Path agentSocket() {
        return runtimeDir.resolve("agent.sock");
    }

    public Path controlSocket() {
        return runtimeDir.resolve("control.sock");
    }
}
