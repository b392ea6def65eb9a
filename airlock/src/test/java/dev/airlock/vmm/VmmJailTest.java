package dev.airlock.vmm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.RotatingLog;
import dev.airlock.setup.Setup;
import dev.airlock.testing.TestHost;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * What a jailed VMM can and cannot see, checked on a real QEMU running the real guest: its
 * identity and privileges from /proc/PID/status, its namespaces against the host's, its root from
 * /proc/PID/root, and, from a probe process entered into all of its namespaces with its uid (what
 * an escape from QEMU would run as), that a root-only host file outside its view and the host's
 * processes are out of reach and its read-only inputs cannot be written.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class VmmJailTest {
    private AirlockDirs dirs;
    private QemuMicrovm qemu;
    private VmSpec spec;
    private RunningVm vm;
    private Path secret;
    private int vmmUid;
    private int vmmGid;

    @BeforeAll
    void launch() throws Exception {
        Setup.Report host = TestHost.ready();
        qemu = new QemuMicrovm();
        VmmJail.Decision decision = qemu.jail();
        VmmJail jail = decision.jail();
        assumeTrue(jail != null, "the VMM jail is off on this host: " + decision.reason());
        vmmUid = java.util.Objects.requireNonNull(jail).uid();
        vmmGid = jail.gid();
        dirs = TestHost.isolated("jail");
        secret = dirs.data().resolve("host-secret");
        Files.writeString(secret, "the host's secret\n");
        Files.setAttribute(secret, "unix:mode", 0600);
        Path state = Files.createDirectories(dirs.data().resolve("vm"));
        Path layer = state.resolve("layer.ext4");
        try (RandomAccessFile f = new RandomAccessFile(layer.toFile(), "rw")) {
            f.setLength(64L << 20);
        }
        HostCommand.check(List.of("mkfs.ext4", "-q", "-F", layer.toString()));
        spec = new VmSpec(
                host.kernel().vmlinux(),
                host.initrd(),
                "console=ttyS0 reboot=t panic=-1 pci=off quiet airlock.root=/dev/vda airlock.layer=/dev/vdb"
                        + " airlock.hostname=jail-test",
                List.of(new VmSpec.Disk(host.image().file(), true), new VmSpec.Disk(layer, false)),
                1,
                256,
                host.accel().accel(),
                state,
                dirs.runtime());
        vm = qemu.launch(spec);
        try (GuestChannel ch = GuestChannel.connect(spec.agentSocket(), Duration.ofSeconds(120))) {
            assertThat(ch.agentVersion())
                    .as("the daemon reaches the jailed VMM's agent socket")
                    .isNotBlank();
        }
    }

    @AfterAll
    void tearDown() {
        if (vm != null && vm.isAlive()) {
            vm.kill();
        }
        if (dirs != null) {
            TestHost.cleanUp(dirs);
        }
    }

    private Map<String, String> status() throws Exception {
        return Files.readAllLines(Path.of("/proc", Long.toString(vm.pid()), "status")).stream()
                .map(l -> l.split(":\\s*", 2))
                .filter(kv -> kv.length == 2)
                .collect(Collectors.toMap(kv -> kv[0], kv -> kv[1].strip(), (a, b) -> a));
    }

    @Test
    void theVmmRunsAsTheVmmUserWithNoCapabilitiesNoNewPrivsAndSeccomp() throws Exception {
        Map<String, String> st = status();
        String uid = Integer.toString(vmmUid);
        assertThat(st.getOrDefault("Uid", "").split("\\s+")).containsOnly(uid);
        assertThat(st.getOrDefault("Gid", "").split("\\s+")).containsOnly(Integer.toString(vmmGid));
        assertThat(st.get("Groups")).isEmpty();
        for (String set : List.of("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")) {
            assertThat(st.get(set)).as(set).isEqualTo("0000000000000000");
        }
        assertThat(st.get("NoNewPrivs")).isEqualTo("1");
        assertThat(st.get("Seccomp"))
                .as("seccomp mode 2: QEMU's -sandbox filter")
                .isEqualTo("2");
        String cmdline = Files.readString(Path.of("/proc", Long.toString(vm.pid()), "cmdline"))
                .replace('\0', ' ');
        assertThat(cmdline)
                .contains("-sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
                .doesNotContain("-daemonize");
    }

    @Test
    void everyNamespaceDiffersFromTheHostsAndTheVmmIsInItsOwnCgroup() throws Exception {
        for (String ns : List.of("mnt", "pid", "ipc", "uts", "cgroup", "net")) {
            Path mine = Path.of("/proc/self/ns", ns);
            Path its = Path.of("/proc", Long.toString(vm.pid()), "ns", ns);
            assertThat(Files.readSymbolicLink(its)).as(ns).isNotEqualTo(Files.readSymbolicLink(mine));
        }
        assertThat(Files.readString(Path.of("/proc", Long.toString(vm.pid()), "cgroup")))
                .as("its cgroup2 group, seen from the host")
                .containsPattern("(?m)^0::/airlock-vmm/[0-9a-f]{16}$");
        // Inside its PID namespace QEMU is init: nothing else of the host's is there.
        assertThat(Files.readString(Path.of("/proc", Long.toString(vm.pid()), "status")))
                .containsPattern("NSpid:\\s+" + vm.pid() + "\\s+1\\b");
    }

    @Test
    void itsRootHoldsOnlyUsrDevProcAndThisVmsFiles() throws Exception {
        Path root = Path.of("/proc", Long.toString(vm.pid()), "root");
        assertThat(Files.exists(root.resolve(secret.toString().substring(1)), LinkOption.NOFOLLOW_LINKS))
                .as("the host secret is not in its view")
                .isFalse();
        assertThat(Files.exists(root.resolve("etc/shadow"))).isFalse();
        assertThat(Files.exists(root.resolve("home"))).isFalse();
        assertThat(Files.exists(root.resolve(spec.kernel().toString().substring(1))))
                .isTrue();
        assertThat(Files.exists(root.resolve(spec.consoleLog().toString().substring(1))))
                .as("its console is a pipe to the launcher's keeper, not the log file")
                .isFalse();
        assertThat(Files.exists(root.resolve(spec.agentSocket().toString().substring(1))))
                .as("its sockets are descriptors, not paths it could replace")
                .isFalse();
    }

    @Test
    void aProcessWithItsUidAndNamespacesCannotReadAHostSecretSeeHostProcessesOrWriteItsInputs() throws Exception {
        // A stand-in for code that escaped QEMU: the same uid, in all of the VMM's namespaces
        // (so the same root, /proc, network), without QEMU's seccomp filter.
        String script = String.join(
                "; ",
                "cat " + secret + " >/dev/null 2>&1 && echo secret-read || echo secret-unreadable",
                "for p in /proc/[0-9]*; do printf '%s ' \"$(cat $p/comm 2>/dev/null)\"; done; echo",
                "(echo x >> " + spec.kernel() + ") 2>/dev/null && echo kernel-written || echo kernel-read-only",
                "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '; echo",
                "id -u");
        HostCommand.Result r = HostCommand.run(
                List.of(
                        "nsenter",
                        "--target",
                        Long.toString(vm.pid()),
                        "--all",
                        "--setuid",
                        Integer.toString(vmmUid),
                        "--setgid",
                        Integer.toString(vmmGid),
                        "--",
                        "/bin/sh",
                        "-c",
                        script),
                null,
                null);
        assertThat(r.ok()).as(r.output()).isTrue();
        List<String> lines = r.output().lines().toList();
        assertThat(lines.get(0)).isEqualTo("secret-unreadable");
        // Counting pids would depend on how many the probe's shell happened to fork; the names
        // say it: QEMU and the probe's own commands, nothing of the host (no init, no java).
        List<String> seen = Arrays.stream(lines.get(1).strip().split(" "))
                .filter(c -> !c.isEmpty())
                .toList();
        assertThat(seen).as("processes visible in the VMM's pid namespace").anyMatch(c -> c.startsWith("qemu"));
        assertThat(seen)
                .as("processes visible in the VMM's pid namespace")
                .allMatch(c ->
                        c.startsWith("qemu") || List.of("sh", "cat", "nsenter").contains(c));
        assertThat(lines.get(2)).isEqualTo("kernel-read-only");
        assertThat(lines.get(3).strip()).as("network devices: loopback only").isEqualTo("lo");
        assertThat(lines.get(4)).isEqualTo(Integer.toString(vmmUid));
    }

    @Test
    void socketsAreRootsLayerIsTheVmmsAndASavedStateIsRootsAlone() throws Exception {
        for (Path socket : List.of(spec.agentSocket(), spec.controlSocket())) {
            assertThat((Integer) Files.getAttribute(socket, "unix:uid")).isZero();
            assertThat((Integer) Files.getAttribute(socket, "unix:mode") & 0777).isEqualTo(0600);
        }
        Path layer = spec.disks().get(1).file();
        assertThat((Integer) Files.getAttribute(layer, "unix:uid")).isEqualTo(vmmUid);
        assertThat((Integer) Files.getAttribute(layer, "unix:mode") & 0777).isEqualTo(0600);
        // Saved through file: into its own directory, then moved out and made root's, 0600.
        Path saved = dirs.data().resolve("saved.state");
        vm.saveState(saved, false);
        vm.resume();
        assertThat((Integer) Files.getAttribute(saved, "unix:uid")).isZero();
        assertThat((Integer) Files.getAttribute(saved, "unix:mode") & 0777).isEqualTo(0600);
        assertThat(Files.size(saved)).isGreaterThan(1 << 20);
        try (var left = Files.list(spec.vmmDir())) {
            assertThat(left.toList()).isEmpty();
        }
        try (GuestChannel ch = GuestChannel.connect(spec.agentSocket(), Duration.ofSeconds(60))) {
            assertThat(ch.ping(Duration.ofSeconds(30))).isNotNull();
        }
    }

    /**
     * A VM whose root is a host directory shared over virtio-9p (what airlock-runtime gives an
     * OCI bundle's rootfs) runs jailed too: the directory is bound into the jail, QEMU keeps only
     * the four file capabilities 9p passthrough needs, and the guest's owners land on the host
     * files. Before: such VMs ran unjailed, as root with every capability in the host's
     * namespaces.
     */
    @Test
    void aVmSharingAHostDirectoryOver9pIsJailedAndItsGuestsOwnersReachTheFiles() throws Exception {
        Setup.Report host = TestHost.ready();
        Path tree = Files.createDirectories(dirs.data().resolve("shared-root"));
        Files.createDirectories(tree.resolve("bin"));
        Files.copy(Path.of("/bin/busybox"), tree.resolve("bin/busybox"));
        Files.createSymbolicLink(tree.resolve("bin/sh"), Path.of("busybox"));
        for (String d : List.of("tmp", "proc", "dev", "sys", "run", "etc")) {
            Files.createDirectories(tree.resolve(d));
        }
        Path state = Files.createDirectories(dirs.data().resolve("vm9p"));
        Path runtime = Files.createDirectories(dirs.runtime().resolve("9p"));
        VmSpec shared = new VmSpec(
                host.kernel().vmlinux(),
                host.initrd(),
                "console=ttyS0 reboot=t panic=-1 pci=off quiet airlock.root=9p:" + VmSpec.Disk.SHARE_TAG + "0"
                        + " airlock.hostname=jail-9p",
                List.of(new VmSpec.Disk(tree, false)),
                1,
                256,
                host.accel().accel(),
                state,
                runtime);
        RunningVm vm9p = qemu.launch(shared);
        try {
            Map<String, String> st = Files.readAllLines(Path.of("/proc", Long.toString(vm9p.pid()), "status")).stream()
                    .map(l -> l.split(":\\s*", 2))
                    .filter(kv -> kv.length == 2)
                    .collect(Collectors.toMap(kv -> kv[0], kv -> kv[1].strip(), (a, b) -> a));
            assertThat(st.getOrDefault("Uid", "").split("\\s+")).containsOnly(Integer.toString(vmmUid));
            // CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID: bits 0, 1, 3, 4
            for (String set : List.of("CapPrm", "CapEff", "CapBnd", "CapAmb")) {
                assertThat(st.get(set)).as(set).isEqualTo("000000000000001b");
            }
            assertThat(st.get("NoNewPrivs")).isEqualTo("1");
            assertThat(st.get("Seccomp")).isEqualTo("2");
            for (String ns : List.of("mnt", "pid", "net")) {
                assertThat(Files.readSymbolicLink(Path.of("/proc", Long.toString(vm9p.pid()), "ns", ns)))
                        .as(ns)
                        .isNotEqualTo(Files.readSymbolicLink(Path.of("/proc/self/ns", ns)));
            }
            Path root = Path.of("/proc", Long.toString(vm9p.pid()), "root");
            assertThat(Files.exists(root.resolve(secret.toString().substring(1)), LinkOption.NOFOLLOW_LINKS))
                    .as("the host secret beside the shared directory is not in its view")
                    .isFalse();
            assertThat(Files.isDirectory(root.resolve(tree.toString().substring(1))))
                    .isTrue();
            try (GuestChannel ch = GuestChannel.connect(shared.agentSocket(), Duration.ofSeconds(120))) {
                var out = new java.io.ByteArrayOutputStream();
                var status = ch.execBounded(
                        dev.airlock.guest.ExecSpec.of(
                                "/bin/sh", "-c", "echo from-guest > /made && chown 1234:2345 /made && chmod 640 /made"),
                        out,
                        out,
                        1 << 16,
                        Duration.ofSeconds(120));
                assertThat(status.exitCode()).as(out.toString()).isZero();
            }
            Path made = tree.resolve("made");
            assertThat(Files.readString(made)).isEqualTo("from-guest\n");
            assertThat((Integer) Files.getAttribute(made, "unix:uid")).isEqualTo(1234);
            assertThat((Integer) Files.getAttribute(made, "unix:gid")).isEqualTo(2345);
            assertThat((Integer) Files.getAttribute(made, "unix:mode") & 0777).isEqualTo(0640);
        } finally {
            vm9p.kill();
        }
    }

    /**
     * No daemon runs here (the VM is launched directly), so nothing but the jail's keeper can
     * hold the console log down: a guest writing to its console without end leaves a file that
     * takes at most the cap on disk, whose end is its latest output. Before: QEMU appended to the
     * file itself and it grew as long as the guest wrote, until a daemon next trimmed it.
     */
    @Test
    void aGuestFloodingItsConsoleCannotGrowTheLogPastTheCapWithNoDaemon() throws Exception {
        long flood = RotatingLog.CAP * 2;
        try (GuestChannel ch = GuestChannel.connect(spec.agentSocket(), Duration.ofSeconds(60))) {
            var out = new java.io.ByteArrayOutputStream();
            var status = ch.execBounded(
                    dev.airlock.guest.ExecSpec.of(
                            "/bin/sh",
                            "-c",
                            "head -c " + flood
                                    + " /dev/zero | tr '\\0' x > /dev/ttyS0 && echo flood-ended > /dev/ttyS0"),
                    out,
                    out,
                    1 << 16,
                    Duration.ofMinutes(8));
            assertThat(status.exitCode()).as(out.toString()).isZero();
        }
        Path log = spec.consoleLog();
        // the keeper reads the pipe to its end: wait until the last line is there
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!new String(dev.airlock.host.HostFiles.tail(log, 4096), java.nio.charset.StandardCharsets.ISO_8859_1)
                        .contains("flood-ended")
                && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertThat(Files.size(log)).as("what the guest wrote").isGreaterThan(flood);
        HostCommand.Result du = HostCommand.run(List.of("du", "-B1", log.toString()), null, null);
        long used = Long.parseLong(du.output().strip().split("\\s+")[0]);
        assertThat(used).as("disk the console log takes").isLessThanOrEqualTo(RotatingLog.CAP + (1 << 20));
        assertThat(new String(dev.airlock.host.HostFiles.tail(log, 4096), java.nio.charset.StandardCharsets.ISO_8859_1))
                .contains("flood-ended");
    }
}
