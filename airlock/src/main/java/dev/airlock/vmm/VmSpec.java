package dev.airlock.vmm;

import java.nio.file.Path;
import java.util.List;
import org.jspecify.annotations.Nullable;

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
        Path runtimeDir,
        GuestMemory memory,
        @Nullable Restore restore,
        @Nullable Nic nic) {

    /**
     * A virtio-net NIC on QEMU's user-mode NAT (slirp: guest 10.0.2.15, gateway 10.0.2.2, DNS
     * 10.0.2.3, IPv4 only). The NAT's sockets are QEMU's own, so QEMU is started inside the
     * cgroup whose {@code cgroup.procs} this is, where the host firewall recognises them.
     */
    public record Nic(Path cgroupProcs) {}

    public VmSpec withNic(@Nullable Nic newNic) {
        return new VmSpec(
                kernel, initrd, cmdline, disks, vcpus, memoryMiB, accel, stateDir, runtimeDir, memory, restore, newNic);
    }

    /** A VM that boots from its kernel, with anonymous guest RAM and no NIC. */
    public VmSpec(
            Path kernel,
            Path initrd,
            String cmdline,
            List<Disk> disks,
            int vcpus,
            int memoryMiB,
            Accel accel,
            Path stateDir,
            Path runtimeDir) {
        this(
                kernel,
                initrd,
                cmdline,
                disks,
                vcpus,
                memoryMiB,
                accel,
                stateDir,
                runtimeDir,
                new GuestMemory.Anonymous(),
                null,
                null);
    }

    /**
     * Where guest RAM lives. A file shared with the VM ({@code shared}) is what a template is
     * saved from: its pages are the RAM, so a snapshot only writes device state. A file mapped
     * privately is how a template is restored: every VM reads the same page-cache pages and
     * copies only the ones it writes.
     */
    public sealed interface GuestMemory {
        record Anonymous() implements GuestMemory {}

        /**
         * {@code offset}: where the guest's RAM starts in the file (a fork's RAM is the pages
         * region of a mapped-ram migration file, after its header).
         */
        record File(Path path, boolean shared, long offset) implements GuestMemory {
            public File(Path path, boolean shared) {
                this(path, shared, 0);
            }
        }
    }

    /**
     * Start from a saved migration stream instead of booting. {@code ignoreShared}: the stream
     * was written with QEMU's {@code x-ignore-shared} (RAM is in the memory file, not in the
     * stream). {@code run}: continue the guest once loaded; false leaves it stopped, to be saved
     * again (how a fork turns a full stream into a shareable RAM file). {@code mappedRam}: the
     * stream was written with QEMU's {@code mapped-ram} (RAM pages at fixed file offsets).
     */
    public record Restore(Path state, boolean ignoreShared, boolean run, boolean mappedRam) {
        public Restore(Path state, boolean ignoreShared, boolean run) {
            this(state, ignoreShared, run, false);
        }
    }

    public VmSpec withMemory(GuestMemory newMemory, @Nullable Restore newRestore) {
        return new VmSpec(
                kernel,
                initrd,
                cmdline,
                disks,
                vcpus,
                memoryMiB,
                accel,
                stateDir,
                runtimeDir,
                newMemory,
                newRestore,
                nic);
    }

    public VmSpec withDirs(Path newStateDir, Path newRuntimeDir, List<Disk> newDisks) {
        return new VmSpec(
                kernel,
                initrd,
                cmdline,
                newDisks,
                vcpus,
                memoryMiB,
                accel,
                newStateDir,
                newRuntimeDir,
                memory,
                restore,
                nic);
    }

    /**
     * A block device; the guest sees them as /dev/vda, /dev/vdb, ... in this order. A directory
     * is shared over virtio-9p instead, under the tag {@code airlock.share} plus its index in
     * this list (an OCI bundle's rootfs).
     */
    public record Disk(Path file, boolean readOnly) {
        public static final String SHARE_TAG = "airlock.share";
    }

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

    /** The VMM's own output (QEMU's warnings and start-up errors). */
    public Path vmmLog() {
        return stateDir.resolve("vmm.log");
    }

    /**
     * The one directory a jailed VMM may create files in: it writes saved states here, which the
     * host then moves where they belong and makes root's.
     */
    public Path vmmDir() {
        return stateDir.resolve("vmm");
    }

    public Path agentSocket() {
        return runtimeDir.resolve("agent.sock");
    }

    public Path controlSocket() {
        return runtimeDir.resolve("control.sock");
    }
}
