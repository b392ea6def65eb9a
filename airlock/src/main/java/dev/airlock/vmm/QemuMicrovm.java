package dev.airlock.vmm;

import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.HostCommand;
import dev.airlock.host.ProcessExit;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The QEMU {@code -M microvm} backend: virtio-mmio devices only, no firmware, no PCI, no ACPI;
 * the kernel is entered through PVH. QEMU daemonizes after its sockets are listening, so a
 * successful {@link #launch} means the agent and control sockets are ready to connect to.
 */
public final class QemuMicrovm implements Vmm {
    private final String binary;

    public QemuMicrovm() {
        this("qemu-system-x86_64");
    }

    public QemuMicrovm(String binary) {
        this.binary = binary;
    }

    public String binary() {
        return binary;
    }

    /** The first line of {@code qemu-system-x86_64 --version}, or why it could not be run. */
    public String version() {
        HostCommand.Result r = HostCommand.run(List.of(binary, "--version"), null, null);
        return r.ok()
                ? r.output().lines().findFirst().orElse("unknown").strip()
                : "not runnable: " + r.output().strip();
    }

    @Override
    public String name() {
        return "qemu-microvm";
    }

    /** The QEMU command line for a spec; pure, so tests and benchmarks can inspect it. */
    public List<String> commandLine(VmSpec spec) {
        List<String> a = new ArrayList<>();
        a.add(binary);
        a.addAll(List.of("-name", "guest=airlock-" + spec.stateDir().getFileName()));
        // No ACPI: QEMU then lists the virtio-mmio devices on the kernel command line.
        // RAM is always a named backend (ram0), so a stream saved from any VM loads into any other
        // with the same shape, whether its RAM is anonymous or a file.
        a.addAll(List.of("-machine", "microvm,acpi=off,x-option-roms=off,rtc=on,isa-serial=on,memory-backend=ram0"));
        if (spec.accel() == Accel.KVM) {
            a.addAll(List.of("-accel", "kvm", "-cpu", "host"));
        } else {
            // A small translation cache per VM keeps many TCG guests within memory.
            a.addAll(List.of("-accel", "tcg,tb-size=64", "-cpu", "max"));
        }
        a.addAll(List.of("-smp", Integer.toString(spec.vcpus()), "-m", spec.memoryMiB() + "M"));
        String size = ",size=" + spec.memoryMiB() + "M";
        a.addAll(List.of(
                "-object",
                switch (spec.memory()) {
                    case VmSpec.GuestMemory.Anonymous ignored -> "memory-backend-ram,id=ram0" + size;
                    case VmSpec.GuestMemory.File f ->
                        "memory-backend-file,id=ram0" + size + ",mem-path=" + f.path() + ",share="
                                + (f.shared() ? "on" : "off");
                }));
        a.addAll(List.of("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"));
        // seccomp: elevateprivileges=deny and spawn=deny would also block the setsid/fork that
        // -daemonize does after the filter is in place (QEMU 7.2 exits 1 or dies of SIGSYS).
        a.addAll(List.of("-sandbox", "on,obsolete=deny,resourcecontrol=deny"));
        a.addAll(List.of(
                "-kernel", spec.kernel().toString(), "-initrd", spec.initrd().toString()));
        a.addAll(List.of("-append", spec.cmdline()));
        a.addAll(List.of("-chardev", "file,id=console,path=" + spec.consoleLog(), "-serial", "chardev:console"));
        int n = 0;
        for (VmSpec.Disk d : spec.disks()) {
            String id = "disk" + n++;
            if (Files.isDirectory(d.file())) {
                a.addAll(share9p(id, d));
                continue;
            }
            a.addAll(List.of(
                    "-drive",
                    "id=" + id + ",file=" + d.file() + ",format=raw,if=none,cache=none,aio=threads"
                            + (d.readOnly() ? ",readonly=on" : ",discard=unmap"),
                    "-device",
                    "virtio-blk-device,drive=" + id));
        }
        a.addAll(List.of("-device", "virtio-rng-device"));
        a.addAll(List.of(
                "-device", "virtio-serial-device,max_ports=2",
                "-chardev", "socket,id=agent,path=" + spec.agentSocket() + ",server=on,wait=off",
                "-device", "virtserialport,chardev=agent,name=airlock.agent"));
        if (spec.nic() != null) {
            // Last, so the other devices keep their slots. No IPv6: the host firewall is IPv4.
            a.addAll(List.of("-netdev", "user,id=net0,ipv6=off", "-device", "virtio-net-device,netdev=net0"));
        }
        a.addAll(List.of("-qmp", "unix:" + spec.controlSocket() + ",server=on,wait=off"));
        a.addAll(List.of("-pidfile", spec.pidFile().toString(), "-daemonize"));
        if (spec.restore() != null) {
            // defer: the x-ignore-shared capability must be set before the stream is read.
            a.addAll(List.of("-incoming", "defer"));
        }
        return a;
    }

    @Override
    public RunningVm launch(VmSpec spec) {
        try {
            Files.createDirectories(spec.stateDir());
            Files.createDirectories(spec.runtimeDir());
            Files.deleteIfExists(spec.agentSocket());
            Files.deleteIfExists(spec.controlSocket());
            Files.deleteIfExists(spec.pidFile());
        } catch (IOException e) {
            throw new VmmException("cannot prepare VM directories: " + e.getMessage(), e);
        }
        HostCommand.Result r = HostCommand.run(inCgroup(spec.nic(), commandLine(spec)), spec.stateDir(), null);
        if (!r.ok()) {
            throw new VmmException("QEMU failed to start (exit " + r.exitCode() + "): "
                    + r.output().strip());
        }
        RunningVm vm = attach(spec)
                .orElseThrow(() -> new VmmException("QEMU started but exited at once; see " + spec.consoleLog()));
        VmSpec.Restore restore = spec.restore();
        if (restore != null) {
            try {
                load(spec.controlSocket(), restore);
            } catch (RuntimeException e) {
                vm.kill();
                throw new VmmException("cannot restore the VM from " + restore.state() + ": " + e.getMessage(), e);
            }
        }
        return vm;
    }

    /**
     * A directory "disk" is shared over virtio-9p under the tag {@link VmSpec.Disk#SHARE_TAG}
     * plus its index. passthrough keeps the guest's owners and modes as the files' own, as runc
     * would leave them; QEMU resolves every path under the directory itself and refuses to
     * follow symlinks out of it.
     */
    private static List<String> share9p(String id, VmSpec.Disk d) {
        String path = d.file().toString();
        if (path.contains(",")) {
            throw new VmmException("a shared directory's path must not contain a comma: " + path);
        }
        return List.of(
                "-fsdev",
                "local,id=" + id + ",path=" + path + ",security_model=passthrough"
                        + (d.readOnly() ? ",readonly=on" : ""),
                "-device",
                "virtio-9p-device,fsdev=" + id + ",mount_tag=" + VmSpec.Disk.SHARE_TAG + id.substring(4));
    }

    /**
     * With a NIC, QEMU joins the NAT's cgroup before it execs, so every socket its NAT opens is
     * the firewall's to filter from the first one on.
     */
    private static List<String> inCgroup(VmSpec.@org.jspecify.annotations.Nullable Nic nic, List<String> argv) {
        if (nic == null) {
            return argv;
        }
        List<String> wrapped = new ArrayList<>(List.of(
                "sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", nic.cgroupProcs().toString()));
        wrapped.addAll(argv);
        return wrapped;
    }

    /** Feeds a saved stream into a VM started with {@code -incoming defer}, then runs it. */
    private static void load(Path controlSocket, VmSpec.Restore restore) {
        if (!Files.isRegularFile(restore.state())) {
            throw new VmmException("the saved state " + restore.state() + " is missing");
        }
        try (Qmp q = Qmp.connect(controlSocket)) {
            q.execute("migrate-set-capabilities", Map.of("capabilities", capabilities(restore.ignoreShared())));
            q.execute("migrate-incoming", Map.of("uri", "exec:cat " + shellQuote(restore.state())));
            // A stream that does not fit this VM makes QEMU exit: the socket closes and awaitEvent throws.
            String status = q.awaitEvent(
                            "MIGRATION",
                            e -> isFinal(e.path("data").path("status").asString()))
                    .path("data")
                    .path("status")
                    .asString();
            if (!status.equals("completed")) {
                throw new VmmException("loading the saved state ended " + status);
            }
            if (restore.run()) {
                q.execute("cont", Map.of());
            }
        }
    }

    private static boolean isFinal(String migrationStatus) {
        return migrationStatus.equals("completed")
                || migrationStatus.equals("failed")
                || migrationStatus.equals("cancelled");
    }

    private static List<Map<String, Object>> capabilities(boolean ignoreShared) {
        return List.of(
                Map.of("capability", "events", "state", true),
                Map.of("capability", "x-ignore-shared", "state", ignoreShared));
    }

    /** exec: URIs run through /bin/sh; our paths have no quotes, but may have spaces. */
    private static String shellQuote(Path p) {
        String s = p.toString();
        if (s.contains("'")) {
            throw new VmmException("a snapshot path must not contain a quote: " + s);
        }
        return "'" + s + "'";
    }

    @Override
    public AgentEndpoint agentEndpoint(VmSpec spec) {
        return new AgentEndpoint.UnixSocket(spec.agentSocket());
    }

    @Override
    public Optional<RunningVm> attach(VmSpec spec) {
        long pid;
        try {
            pid = Long.parseLong(Files.readString(spec.pidFile()).strip());
        } catch (IOException | NumberFormatException e) {
            return Optional.empty();
        }
        // The pid must still be our QEMU: pids are reused after a host reboot or crash.
        Optional<ProcessHandle> handle =
                ProcessHandle.of(pid).filter(ProcessHandle::isAlive).filter(p -> ownsStateDir(pid, spec.stateDir()));
        return handle.map(h -> new QemuVm(h, spec));
    }

    private static boolean ownsStateDir(long pid, Path stateDir) {
        try {
            String cmdline = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"));
            return cmdline.contains(stateDir.toString());
        } catch (IOException e) {
            return false;
        }
    }

    /** A daemonized QEMU process found by pid. */
    private static final class QemuVm implements RunningVm {
        private final ProcessHandle process;
        private final VmSpec spec;

        QemuVm(ProcessHandle process, VmSpec spec) {
            this.process = process;
            this.spec = spec;
        }

        @Override
        public long pid() {
            return process.pid();
        }

        @Override
        public boolean isAlive() {
            return !ProcessExit.hasExited(process.pid());
        }

        @Override
        public Path agentSocket() {
            return spec.agentSocket();
        }

        @Override
        public void pause() {
            qmp("stop");
        }

        @Override
        public void resume() {
            qmp("cont");
        }

        @Override
        public void saveState(Path file, boolean ignoreShared) {
            try (Qmp q = Qmp.connect(spec.controlSocket())) {
                q.execute("stop", Map.of());
                q.execute("migrate-set-capabilities", Map.of("capabilities", capabilities(ignoreShared)));
                q.execute("migrate", Map.of("uri", "exec:cat > " + shellQuote(file)));
                String status = q.awaitEvent(
                                "MIGRATION",
                                e -> isFinal(e.path("data").path("status").asString()))
                        .path("data")
                        .path("status")
                        .asString();
                if (!status.equals("completed")) {
                    throw new VmmException("saving the VM to " + file + " ended " + status);
                }
                awaitMigrationFinalized(q);
            }
        }

        /**
         * QEMU announces a completed migration before it leaves the finish-migrate run state, and
         * refuses {@code cont} until it has ("Migration is not finalized yet"). No event marks
         * that step, so the run state is asked for; it takes well under a millisecond.
         */
        private static void awaitMigrationFinalized(Qmp q) {
            long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (q.execute("query-status", Map.of()).path("status").asString().equals("finish-migrate")) {
                if (System.nanoTime() > deadline) {
                    throw new VmmException("QEMU did not finish the migration of the saved VM within 10 s");
                }
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
        }

        private void qmp(String command) {
            try (Qmp q = Qmp.connect(spec.controlSocket())) {
                q.execute(command, Map.of());
            }
        }

        @Override
        public void kill() {
            process.destroyForcibly();
            awaitExit(Duration.ofSeconds(10));
        }

        @Override
        public boolean awaitExit(Duration timeout) {
            return ProcessExit.await(process.pid(), timeout);
        }
    }
}
