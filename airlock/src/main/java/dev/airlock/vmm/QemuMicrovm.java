package dev.airlock.vmm;

import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.ProcessExit;
import dev.airlock.host.VmmCgroup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.jspecify.annotations.Nullable;

/**
 * The QEMU {@code -M microvm} backend: virtio-mmio devices only, no firmware, no PCI, no ACPI;
 * the kernel is entered through PVH. A successful {@link #launch} means QEMU is up: its agent and
 * control sockets accept connections and its monitor has answered.
 *
 * <p>Where the host allows it (root, the {@code airlock-vmm} user, QEMU 9+), every VMM runs in a
 * {@link VmmJail}; otherwise QEMU daemonizes itself as the caller's user, as before.
 */
public final class QemuMicrovm implements Vmm {
    /** The full system emulator: the fallback, and the one with user-mode networking (slirp). */
    public static final String FULL = "qemu-system-x86_64";

    private final String binary;
    private final boolean jailWanted;
    private final ConcurrentHashMap<String, QemuBinary> probed = new ConcurrentHashMap<>();
    private volatile VmmJail.@Nullable Decision jail;

    /**
     * The QEMU this host should use: {@code -Dairlock.qemu} or {@code AIRLOCK_QEMU} (a path, e.g.
     * the QEMU 7.2 kept for benchmarks), else what {@link VmmChoice} measured at setup, else
     * {@value #FULL}.
     */
    public QemuMicrovm() {
        this(defaultBinary());
    }

    public QemuMicrovm(String binary) {
        this(binary, !"off".equals(System.getProperty("airlock.vmmJail", System.getenv("AIRLOCK_VMM_JAIL"))));
    }

    /**
     * {@code jailWanted} false runs this instance's VMMs unjailed (what {@code AIRLOCK_VMM_JAIL=off}
     * or {@code -Dairlock.vmmJail=off} does for the default), e.g. to compare with and without.
     */
    public QemuMicrovm(String binary, boolean jailWanted) {
        this.binary = binary;
        this.jailWanted = jailWanted;
    }

    private static String defaultBinary() {
        String chosen = System.getProperty("airlock.qemu", System.getenv("AIRLOCK_QEMU"));
        if (chosen != null && !chosen.isBlank()) {
            return chosen;
        }
        return VmmChoice.cached(dev.airlock.host.AirlockDirs.fromEnvironment().cache())
                .map(VmmChoice.Decision::binary)
                .orElse(FULL);
    }

    public String binary() {
        return binary;
    }

    /** The binary (and what its version allows) a VM of this spec runs under. */
    public QemuBinary binaryFor(VmSpec spec) {
        return binaryFor(spec.nic() != null);
    }

    /** The binary a VM with or without a NIC runs under. */
    public QemuBinary binaryFor(boolean withNic) {
        // The microvm-only build has no user-mode networking: a VM with a NIC needs the full one.
        String b = withNic && binary.endsWith("-microvm")
                ? binary.substring(0, binary.length() - "-microvm".length())
                : binary;
        return probed.computeIfAbsent(b, QemuBinary::probe);
    }

    /** The default binary's version and capabilities. */
    public QemuBinary info() {
        return probed.computeIfAbsent(binary, QemuBinary::probe);
    }

    /** The first line of {@code qemu-system-x86_64 --version}, or why it could not be run. */
    public String version() {
        return info().versionLine();
    }

    /** Whether VMMs run jailed here, and why; decided once per instance. */
    public VmmJail.Decision jail() {
        VmmJail.Decision d = jail;
        if (d == null) {
            d = VmmJail.forHost(info(), jailWanted);
            jail = d;
        }
        return d;
    }

    private @Nullable VmmJail jailFor(QemuBinary q, VmSpec spec) {
        VmmJail j = jail().jail();
        // A host directory shared over virtio-9p (an OCI bundle's rootfs, airlock-runtime) is
        // bound into the jail whole (VmmJail.launch), so those VMs are jailed too.
        return j != null && q.modern() ? j : null;
    }

    @Override
    public String name() {
        return "qemu-microvm";
    }

    /**
     * The QEMU command line for a spec as it runs unjailed (sockets by path, daemonized); pure
     * but for asking the binary its version once, so tests and benchmarks can inspect it.
     */
    public List<String> commandLine(VmSpec spec) {
        return argv(spec, binaryFor(spec), false);
    }

    private List<String> argv(VmSpec spec, QemuBinary q, boolean jailed) {
        List<String> a = new ArrayList<>();
        a.add(q.binary());
        Path data = q.dataDir();
        if (data != null) {
            a.addAll(List.of("-L", data.toString()));
        }
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
                    case VmSpec.GuestMemory.File f
                    when f.shared() ->
                        "memory-backend-file,id=ram0" + size + ",mem-path=" + f.path() + offset(f) + ",share=on";
                    // Private: the file is opened read-only (a jail binds it read-only too) and
                    // mapped copy-on-write, so no VM can change the template every VM maps.
                    case VmSpec.GuestMemory.File f ->
                        "memory-backend-file,id=ram0" + size + ",mem-path=" + f.path() + offset(f) + ",share=off"
                                + (q.modern() ? ",readonly=on,rom=off" : "");
                }));
        a.addAll(List.of("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"));
        // Denying spawn and privilege changes needs a QEMU that neither daemonizes (-daemonize
        // calls setsid and forks after the filter is in place: SIGSYS in 7.2 and 10.0 alike) nor
        // migrates through exec:. The jailed QEMU of 9+ does neither; an unjailed one daemonizes.
        a.addAll(List.of(
                "-sandbox",
                jailed
                        ? "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
                        : "on,obsolete=deny,resourcecontrol=deny"));
        a.addAll(List.of(
                "-kernel", spec.kernel().toString(), "-initrd", spec.initrd().toString()));
        a.addAll(List.of("-append", spec.cmdline()));
        // Appended, never rewritten in place: the daemon caps the log by truncating it (RotatingLog),
        // and a writer at its own offset would leave the file as long as before, a hole in front.
        if (jailed) {
            // A pipe to the jail's keeper, which writes and caps the log (VmmJail).
            a.addAll(List.of(
                    "-add-fd",
                    // opaque: the console log's path, for nothing but a look at the command line
                    // to find this VM again (ownsStateDir), as the file's path there did before
                    "fd=" + VmmJail.CONSOLE_FD + ",set=" + CONSOLE_FDSET + ",opaque="
                            + spec.consoleLog().toString().replace(",", ",,"),
                    "-chardev",
                    "file,id=console,path=/dev/fdset/" + CONSOLE_FDSET + ",append=on",
                    "-serial",
                    "chardev:console"));
        } else {
            a.addAll(List.of(
                    "-chardev",
                    "file,id=console,path=" + spec.consoleLog() + ",append=on",
                    "-serial",
                    "chardev:console"));
        }
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
                "-device",
                "virtio-serial-device,max_ports=2",
                "-chardev",
                jailed
                        ? "socket,id=agent,fd=" + VmmJail.AGENT_FD + ",server=on,wait=off"
                        : "socket,id=agent,path=" + spec.agentSocket() + ",server=on,wait=off",
                "-device",
                "virtserialport,chardev=agent,name=airlock.agent"));
        if (spec.nic() != null) {
            // Last, so the other devices keep their slots. No IPv6: the host firewall is IPv4.
            a.addAll(List.of("-netdev", "user,id=net0,ipv6=off", "-device", "virtio-net-device,netdev=net0"));
        }
        if (jailed) {
            // The launcher made both sockets (root's, 0600) and hands them over; it records the
            // pid itself (QEMU would write its pid inside its own PID namespace: 1).
            a.addAll(List.of(
                    "-chardev",
                    "socket,id=control,fd=" + VmmJail.CONTROL_FD + ",server=on,wait=off",
                    "-mon",
                    "chardev=control,mode=control"));
            if (spec.restore() != null) {
                a.addAll(List.of("-add-fd", "fd=" + VmmJail.STATE_FD + ",set=" + STATE_FDSET));
            }
        } else {
            a.addAll(List.of("-qmp", "unix:" + spec.controlSocket() + ",server=on,wait=off"));
            a.addAll(List.of("-pidfile", spec.pidFile().toString(), "-daemonize"));
        }
        if (spec.restore() != null) {
            // defer: the x-ignore-shared capability must be set before the stream is read.
            a.addAll(List.of("-incoming", "defer"));
        }
        return a;
    }

    private static String offset(VmSpec.GuestMemory.File f) {
        return f.offset() == 0 ? "" : ",offset=" + f.offset();
    }

    /** The fd set the jail's state descriptor is added to: {@code file:/dev/fdset/1} reads it. */
    private static final int STATE_FDSET = 1;

    /** The fd set of the jailed console's pipe. */
    private static final int CONSOLE_FDSET = 2;

    @Override
    public RunningVm launch(VmSpec spec) {
        try {
            Files.createDirectories(spec.stateDir());
            Files.createDirectories(spec.runtimeDir());
            Files.deleteIfExists(spec.agentSocket());
            Files.deleteIfExists(spec.controlSocket());
            Files.deleteIfExists(spec.pidFile());
            // QEMU keeps the mode of files that exist, and would make its own 0644 ones: the guest's
            // console and memory are the owner's alone.
            HostFiles.ownerOnlyFile(spec.consoleLog());
            if (spec.memory() instanceof VmSpec.GuestMemory.File f && f.shared()) {
                HostFiles.ownerOnlyFile(f.path());
            }
        } catch (IOException | java.io.UncheckedIOException e) {
            throw new VmmException("cannot prepare VM directories: " + e.getMessage(), e);
        }
        QemuBinary q = binaryFor(spec);
        VmmJail j = jailFor(q, spec);
        if (j != null) {
            VmSpec.Nic nic = spec.nic();
            Path cgroup = nic != null
                    ? nic.cgroupProcs().getParent()
                    : VmmCgroup.groupFor(spec.stateDir()).orElse(null);
            j.launch(spec, q, argv(spec, q, true), cgroup);
        } else {
            HostCommand.Result r = HostCommand.run(inCgroup(spec.nic(), argv(spec, q, false)), spec.stateDir(), null);
            if (!r.ok()) {
                throw new VmmException("QEMU failed to start (exit " + r.exitCode() + "): "
                        + r.output().strip());
            }
        }
        RunningVm vm = attach(spec)
                .orElseThrow(() -> new VmmException("QEMU started but exited at once: " + startError(spec)));
        VmSpec.Restore restore = spec.restore();
        try {
            if (restore != null) {
                load(spec.controlSocket(), restore, q, j != null);
            } else if (j != null) {
                // Unlike -daemonize, the jail returns before QEMU has set up: its monitor's
                // greeting says it has (or its closing says it failed).
                try (Qmp ignored = Qmp.connect(spec.controlSocket())) {
                    // connected and greeted
                }
            }
        } catch (RuntimeException e) {
            vm.kill();
            String why = restore != null ? "cannot restore the VM from " + restore.state() : "QEMU did not start";
            throw new VmmException(why + ": " + e.getMessage() + " " + startError(spec), e);
        }
        return vm;
    }

    /** What QEMU said before it failed, from its log (jailed) or its console. */
    private static String startError(VmSpec spec) {
        try {
            String log = Files.isRegularFile(spec.vmmLog())
                    ? Files.readString(spec.vmmLog()).strip()
                    : "";
            if (!log.isEmpty()) {
                return "(QEMU: " + (log.length() > 2000 ? log.substring(log.length() - 2000) : log) + ")";
            }
        } catch (IOException e) {
            // fall through to the console
        }
        return "(see " + spec.consoleLog() + ")";
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
    private static List<String> inCgroup(VmSpec.@Nullable Nic nic, List<String> argv) {
        if (nic == null) {
            return argv;
        }
        List<String> wrapped = new ArrayList<>(List.of(
                "sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", nic.cgroupProcs().toString()));
        wrapped.addAll(argv);
        return wrapped;
    }

    /** Feeds a saved stream into a VM started with {@code -incoming defer}, then runs it. */
    private static void load(Path controlSocket, VmSpec.Restore restore, QemuBinary q, boolean jailed) {
        if (!Files.isRegularFile(restore.state())) {
            throw new VmmException("the saved state " + restore.state() + " is missing");
        }
        String uri = jailed
                ? "file:/dev/fdset/" + STATE_FDSET
                : q.modern() ? fileUri(restore.state()) : "exec:cat " + shellQuote(restore.state());
        try (Qmp q2 = Qmp.connect(controlSocket)) {
            q2.execute(
                    "migrate-set-capabilities",
                    Map.of("capabilities", capabilities(q, restore.ignoreShared(), restore.mappedRam())));
            q2.execute("migrate-incoming", Map.of("uri", uri));
            // A stream that does not fit this VM makes QEMU exit: the socket closes and awaitEvent throws.
            String status = q2.awaitEvent(
                            "MIGRATION",
                            e -> isFinal(e.path("data").path("status").asString()))
                    .path("data")
                    .path("status")
                    .asString();
            if (!status.equals("completed")) {
                throw new VmmException("loading the saved state ended " + status);
            }
            if (restore.run()) {
                q2.execute("cont", Map.of());
            }
        }
    }

    /** A {@code file:} migration URI; its options follow a comma, so a path may not have one. */
    private static String fileUri(Path p) {
        String s = p.toString();
        if (s.contains(",")) {
            throw new VmmException("a snapshot path must not contain a comma: " + s);
        }
        return "file:" + s;
    }

    private static boolean isFinal(String migrationStatus) {
        return migrationStatus.equals("completed")
                || migrationStatus.equals("failed")
                || migrationStatus.equals("cancelled");
    }

    /**
     * {@code mapped-ram} is named only to a VMM that has it (QEMU 9+; 7.2 refuses an unknown
     * capability), and there always, as a VM saved once with it keeps it set otherwise.
     */
    private static List<Map<String, Object>> capabilities(QemuBinary q, boolean ignoreShared, boolean mappedRam) {
        List<Map<String, Object>> caps = new ArrayList<>(List.of(
                Map.of("capability", "events", "state", true),
                Map.of("capability", "x-ignore-shared", "state", ignoreShared)));
        if (q.modern()) {
            caps.add(Map.of("capability", "mapped-ram", "state", mappedRam));
        } else if (mappedRam) {
            throw new VmmException(q.versionLine() + " has no mapped-ram migration (QEMU 9 or newer has)");
        }
        return caps;
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
        QemuBinary q = binaryFor(spec);
        boolean jailed = jailFor(q, spec) != null;
        return handle.map(h -> new QemuVm(h, spec, q, jailed));
    }

    private static boolean ownsStateDir(long pid, Path stateDir) {
        try {
            String cmdline = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"));
            return cmdline.contains(stateDir.toString())
                    || cmdline.contains(stateDir.toString().replace(",", ",,"));
        } catch (IOException e) {
            return false;
        }
    }

    /** A daemonized QEMU process found by pid. */
    private static final class QemuVm implements RunningVm {
        private final ProcessHandle process;
        private final VmSpec spec;
        private final QemuBinary qemu;
        private final boolean jailed;

        QemuVm(ProcessHandle process, VmSpec spec, QemuBinary qemu, boolean jailed) {
            this.process = process;
            this.spec = spec;
            this.qemu = qemu;
            this.jailed = jailed;
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
        public void thaw() {
            try (Qmp q = Qmp.connect(spec.controlSocket())) {
                if (isActive(q.execute("query-migrate", Map.of()).path("status").asString(""))) {
                    q.execute("migrate_cancel", Map.of());
                    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
                    while (isActive(
                            q.execute("query-migrate", Map.of()).path("status").asString(""))) {
                        if (System.nanoTime() > deadline) {
                            throw new VmmException("QEMU did not cancel the migration of a stopped VM within 10 s");
                        }
                        java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
                    }
                }
                awaitMigrationFinalized(q);
                if (!q.execute("query-status", Map.of()).path("running").asBoolean(false)) {
                    q.execute("cont", Map.of());
                }
            }
        }

        /** A migration that has started and not ended (QEMU's MigrationStatus values). */
        private static boolean isActive(String status) {
            return !status.isEmpty()
                    && !status.equals("none")
                    && !status.equals("completed")
                    && !status.equals("failed")
                    && !status.equals("cancelled");
        }

        @Override
        public void saveState(Path file, boolean ignoreShared) {
            save(file, ignoreShared, false);
        }

        @Override
        public boolean savesMappedRam() {
            return qemu.modern();
        }

        @Override
        public long saveMappedRam(Path file, long ramBytes) {
            if (!qemu.modern()) {
                throw new VmmException(qemu.versionLine() + " has no mapped-ram migration (QEMU 9 or newer has)");
            }
            SaveFaults faults = SaveFaults.before(process.pid(), ramBytes);
            save(file, false, true);
            faults.release();
            return MappedRamFile.pagesOffset(file, ramBytes);
        }

        private void save(Path file, boolean ignoreShared, boolean mappedRam) {
            try (Qmp q = Qmp.connect(spec.controlSocket())) {
                q.execute("stop", Map.of());
                q.execute(
                        "migrate-set-capabilities",
                        Map.of("capabilities", capabilities(qemu, ignoreShared, mappedRam)));
                // Jailed, QEMU writes only into its own directory; the file is moved into place
                // (and made root's) once complete. Unjailed QEMU 9+ writes the file itself.
                Path written = jailed
                        ? spec.vmmDir().resolve("save-" + java.util.UUID.randomUUID() + ".state")
                        : HostFiles.ownerOnlyFile(file);
                q.execute(
                        "migrate", Map.of("uri", qemu.modern() ? fileUri(written) : "exec:cat > " + shellQuote(file)));
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
                if (jailed) {
                    VmmJail.takeOver(written, file);
                }
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
