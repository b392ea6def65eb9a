package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.ociruntime.OciTestKit.Run;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Real podman (Debian's 4.3, its conmon) with {@code --runtime} pointing at airlock-runtime: each
 * container is a microVM whose root is the image's rootfs. The image is a busybox root made by
 * the test and imported from a tar archive into private podman storage; no registry, no network.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PodmanRuntimeTest {
    private static final String IMAGE = "localhost/airlock-oci-test:latest";

    private AirlockDirs dirs;
    private Path work;
    private Path stateRoot;
    private Path runtime;

    @BeforeAll
    void setUp() throws IOException {
        TestHost.ready();
        dirs = TestHost.isolated("ociruntime");
        work = Files.createTempDirectory("airlock-podman-");
        stateRoot = work.resolve("runtime-state");
        Files.writeString(
                work.resolve("containers.conf"),
                // This host has no CAP_SYS_RESOURCE above nofile 20000, and no systemd.
                "[containers]\ndefault_ulimits = [\"nofile=1024:20000\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\n");
        runtime = OciTestKit.launcher(dirs, work.resolve("airlock-runtime"), stateRoot);
        // The daemon is started here, not under conmon by the first create.
        assertThat(new Cli(dirs).run("ps").exit()).isZero();
        Path rootfs = Files.createDirectories(work.resolve("rootfs/bin"));
        Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("busybox"));
        for (String applet : List.of(
                "sh",
                "echo",
                "cat",
                "id",
                "pwd",
                "sleep",
                "ls",
                "env",
                "true",
                "uname",
                "grep",
                "mkdir",
                "wc",
                "touch",
                "readlink",
                "pidof",
                "cut",
                "tr")) {
            Files.createSymbolicLink(rootfs.resolve(applet), Path.of("busybox"));
        }
        for (String d : List.of("etc", "tmp", "root", "proc", "sys", "dev", "data")) {
            Files.createDirectories(work.resolve("rootfs").resolve(d));
        }
        Files.writeString(work.resolve("rootfs/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        HostCommand.check(List.of(
                "tar",
                "-C",
                work.resolve("rootfs").toString(),
                "-cf",
                work.resolve("image.tar").toString(),
                "."));
        assertThat(podman("import", "-q", work.resolve("image.tar").toString(), IMAGE)
                        .exit())
                .isZero();
    }

    @AfterAll
    void tearDown() {
        podman("rm", "-af");
        podman("rmi", "-af");
        OciTestKit.unmountUnder(work);
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(work);
    }

    @Test
    void runPrintsExitsAndCleansUp() {
        Run r = podman("run", "--rm", "--network", "none", IMAGE, "echo", "hi");
        assertThat(r.out()).isEqualTo("hi\n");
        assertThat(r.exit()).as(r.err()).isZero();

        Run fails = podman("run", "--rm", "--network", "none", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 7");
        assertThat(fails.exit()).isEqualTo(7);
        assertThat(fails.out()).isEqualTo("out\n");
        assertThat(fails.err()).contains("err\n");

        Run missing = podman("run", "--rm", "--network", "none", IMAGE, "no-such-program");
        assertThat(missing.exit()).isEqualTo(127);
        assertNothingLeft();
    }

    @Test
    void honoursEnvUserWorkdirAndStdin() {
        Run r = podmanWithInput(
                "x\n",
                "run",
                "--rm",
                "-i",
                "--network",
                "none",
                "-e",
                "FOO=bar",
                "-w",
                "/tmp",
                "-u",
                "1000:1001",
                IMAGE,
                "sh",
                "-c",
                "read line; echo \"$FOO $(pwd) $(id -u):$(id -g) $line\"");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("bar /tmp 1000:1001 x\n");
    }

    /**
     * The process settings are applied inside the guest too (defence in depth behind the VM): a
     * low nofile limit, a dropped capability (gone from the effective and bounding sets),
     * no_new_privs, a seccomp rule that makes mkdir fail with EPERM, umask and extra groups.
     */
    @Test
    void processSettingsApplyInTheGuest() throws IOException {
        Path profile = work.resolve("seccomp-no-mkdir.json");
        Files.writeString(profile, """
                {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
                """);
        Run r = podman(
                "run",
                "--rm",
                "--network",
                "none",
                "--ulimit",
                "nofile=100:200",
                "--cap-drop",
                "CHOWN",
                "--security-opt",
                "no-new-privileges",
                "--security-opt",
                "seccomp=" + profile,
                IMAGE,
                "sh",
                "-c",
                "ulimit -n; ulimit -Hn; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status;"
                        + " mkdir /tmp/made || echo mkdir-refused");
        assertThat(r.exit()).as(r.err()).isZero();
        List<String> lines = r.out().lines().toList();
        assertThat(lines.subList(0, 2)).containsExactly("100", "200");
        long eff = capabilities(lines, "CapEff");
        long bnd = capabilities(lines, "CapBnd");
        assertThat(eff & 1).as("CAP_CHOWN in CapEff").isZero();
        assertThat(bnd & 1).as("CAP_CHOWN in CapBnd").isZero();
        assertThat(eff & (1 << 5)).as("CAP_KILL, kept, in CapEff").isNotZero();
        assertThat(r.out()).contains("NoNewPrivs:\t1").contains("mkdir-refused");
        assertThat(r.err()).contains("Operation not permitted");

        Run user = podman(
                "run",
                "--rm",
                "--network",
                "none",
                "-u",
                "1000:1000",
                "--group-add",
                "4321",
                "--umask",
                "0027",
                IMAGE,
                "sh",
                "-c",
                "id -G; umask; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status");
        assertThat(user.exit()).as(user.err()).isZero();
        assertThat(user.out()).startsWith("1000 4321\n0027\n").contains("CapEff:\t0000000000000000");
        assertThat(user.out()).contains("NoNewPrivs:\t0");
    }

    private static long capabilities(List<String> status, String set) {
        return status.stream()
                .filter(l -> l.startsWith(set + ":"))
                .map(l -> Long.parseUnsignedLong(l.substring(set.length() + 1).strip(), 16))
                .findFirst()
                .orElseThrow(() -> new AssertionError(set + " missing from " + status));
    }

    @Test
    void interactiveTerminal() {
        // podman -it needs a terminal of its own: script(1) gives it one.
        List<String> podman = new ArrayList<>(podmanArgv());
        podman.addAll(List.of("run", "-it", "--rm", "--network", "none", IMAGE, "sh"));
        String cmd = String.join(" ", podman);
        Run r = run("echo typed-\\\n$((6*7))\ntty\nexit 3\n", List.of("script", "-qec", cmd, "/dev/null"));
        String out = r.out().replace("\r", "");
        assertThat(out).contains("typed-42\n").contains("/dev/pts/");
        assertThat(r.exit()).as(out).isEqualTo(3);
        assertNothingLeft();
    }

    @Test
    void detachedContainerExecStopAndRemove() throws IOException {
        Run started = podman("run", "-d", "--network", "none", IMAGE, "sleep", "1000");
        assertThat(started.exit()).as(started.err()).isZero();
        String id = started.out().strip();

        assertThat(podman("ps", "-q", "--no-trunc").out()).contains(id);
        Run exec = podman("exec", id, "sh", "-c", "echo in-vm; exit 4");
        assertThat(exec.out()).isEqualTo("in-vm\n");
        assertThat(exec.exit()).isEqualTo(4);
        // The writes of the container reach its rootfs on the host, as under runc.
        assertThat(podman("exec", id, "sh", "-c", "echo kept > /tmp/f").exit()).isZero();
        assertThat(podman("exec", id, "cat", "/tmp/f").out()).isEqualTo("kept\n");
        // podman's /etc/hosts reached the guest
        assertThat(podman("exec", id, "cat", "/etc/hosts").out()).contains("localhost");
        // Its VMM, which shares the rootfs over 9p, is jailed as every other: the VMM user, not
        // root (before: unjailed, host root with every capability).
        List<String> vmmUids = new java.util.ArrayList<>();
        for (ProcessHandle p : ProcessHandle.allProcesses().toList()) {
            try {
                String cmdline = Files.readString(Path.of("/proc", Long.toString(p.pid()), "cmdline"));
                if (cmdline.contains("virtio-9p-device")
                        && cmdline.contains(dirs.sandboxes().toString())) {
                    vmmUids.add(Files.readAllLines(Path.of("/proc", Long.toString(p.pid()), "status")).stream()
                            .filter(l -> l.startsWith("Uid:"))
                            .findFirst()
                            .orElse("")
                            .split("\\s+")[1]);
                }
            } catch (IOException | RuntimeException gone) {
                // a process that ended meanwhile
            }
        }
        assertThat(vmmUids).isNotEmpty().allMatch(uid -> uid.equals(vmmUid()));

        assertThat(podman("stop", "-t", "10", id).exit()).isZero();
        assertThat(podman("inspect", "--format", "{{.State.ExitCode}}", id)
                        .out()
                        .strip())
                .isEqualTo("143");
        assertThat(podman("rm", id).exit()).isZero();
        assertNothingLeft();
    }

    @Test
    void killWithSigkillReports137() {
        String id = podman("run", "-d", "--network", "none", IMAGE, "sleep", "1000")
                .out()
                .strip();
        assertThat(podman("kill", "-s", "KILL", id).exit()).isZero();
        assertThat(podman("wait", id).out().strip()).isEqualTo("137");
        assertThat(podman("rm", id).exit()).isZero();
        assertNothingLeft();
    }

    /**
     * The annotation run.airlock.runtime picks the Airlock runtime per container; the kernel the
     * process sees tells which ran it: the host's (container), gVisor's (it reports 4.4.0), the
     * guest kernel of a microVM (the default).
     */
    @Test
    void theModeAnnotationPicksTheRuntime() {
        String host = HostCommand.check(List.of("uname", "-r")).strip();
        Map<String, String> kernels = new java.util.LinkedHashMap<>();
        for (String mode : List.of("container", "gvisor", "microvm")) {
            Run r = podman(
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "--annotation",
                    "run.airlock.runtime=" + mode,
                    "-e",
                    "M=" + mode,
                    IMAGE,
                    "sh",
                    "-c",
                    "echo $M; uname -r; exit 5");
            assertThat(r.exit()).as(mode + ": " + r.err()).isEqualTo(5);
            List<String> lines = r.out().lines().toList();
            assertThat(lines.getFirst()).isEqualTo(mode);
            kernels.put(mode, lines.get(1));
        }
        assertThat(kernels.get("container")).isEqualTo(host);
        assertThat(kernels.get("gvisor")).isEqualTo("4.4.0");
        assertThat(kernels.get("microvm")).isNotIn(host, "4.4.0");

        Run unknown =
                podman("run", "--rm", "--network", "none", "--annotation", "run.airlock.runtime=kata", IMAGE, "true");
        assertThat(unknown.exit()).isNotZero();
        assertThat(unknown.err()).contains("run.airlock.runtime=kata is not a mode of airlock-runtime");
        podman("rm", "-af");
        assertNothingLeft();
    }

    @Test
    void unsupportedConfigurationIsRefusedInWords() {
        // podman's default network joins a host network namespace, which a VM cannot.
        Run netns = podman("run", "--rm", IMAGE, "true");
        assertThat(netns.exit()).isNotZero();
        assertThat(netns.err()).contains("linux.namespaces network").contains("--network none");

        // a directory bind reaches microVMs only so far
        Run dirBind = podman(
                "run",
                "--rm",
                "--network",
                "none",
                "--annotation",
                "run.airlock.runtime=container",
                "-v",
                work + ":/data",
                IMAGE,
                "true");
        assertThat(dirBind.exit()).isNotZero();
        assertThat(dirBind.err())
                .contains("unsupported config.json field mounts /data")
                .contains("microvm-mode containers only");
        podman("rm", "-af");
        assertNothingLeft();
    }

    /**
     * The config's mounts in a mount namespace of the container's own, which podman's exec joins:
     * {@code --tmpfs /scratch:size=1m} is a 1 MiB tmpfs, {@code /dev} the config's tmpfs with
     * runc's default devices, masked paths (podman's /proc/timer_list, /sys/firmware) read empty, a read-only path
     * (/proc/sys) refuses writes, and {@code --read-only} refuses writes to the root while its
     * tmpfs mounts and a volume take them. One VM.
     */
    @Test
    void configMountsMaskedAndReadOnlyPathsInTheContainersNamespace() throws IOException {
        Path shared = Files.createDirectories(work.resolve("rw-volume"));
        Run started = podman(
                "run",
                "-d",
                "--name",
                "mounts",
                "--network",
                "none",
                "--read-only",
                "--tmpfs",
                "/scratch:size=1m",
                "-v",
                shared + ":/vol",
                IMAGE,
                "sleep",
                "600");
        assertThat(started.exit()).as(started.err()).isZero();
        Run r = podman(
                "exec",
                "mounts",
                "sh",
                "-c",
                "grep -E ' /(scratch|dev|tmp) ' /proc/mounts | cut -d' ' -f2,3,4;"
                        + " echo in-tmpfs > /scratch/f && cat /scratch/f; echo t > /tmp/t && echo tmp-ok;"
                        + " echo v > /vol/v && echo vol-ok;"
                        + " touch /rootfile 2>&1 || echo root-refused;"
                        + " [ -e /proc/kcore ] || echo no-kcore; echo timer_list=$(wc -c < /proc/timer_list);"
                        + " echo firmware=$(ls -A /sys/firmware | wc -l);"
                        + " (echo 3 > /proc/sys/vm/drop_caches) 2>&1 || echo procsys-refused;"
                        + " ls /dev | tr '\n' ' '; echo;"
                        + " [ \"$(readlink /proc/self/ns/mnt)\" = \"$(readlink /proc/$(pidof sleep)/ns/mnt)\" ]"
                        + " && echo same-namespace;"
                        + " [ \"$(readlink /proc/self/ns/mnt)\" != \"$(readlink /proc/1/ns/mnt)\" ] && echo not-the-vms");
        Run logs = podman("logs", "mounts");
        assertThat(r.exit()).as(r.err() + r.out() + logs.out() + logs.err()).isZero();
        assertThat(r.out())
                .contains("/scratch tmpfs rw,nosuid,nodev,relatime,size=1024k")
                .contains("/dev tmpfs")
                .contains("/tmp tmpfs")
                .contains("in-tmpfs\n")
                .contains("tmp-ok\n")
                .contains("vol-ok\n")
                .contains("Read-only file system")
                .contains("root-refused\n")
                // podman's masked paths: a file reads empty, a directory is an empty tmpfs (the
                // guest kernel has no /proc/kcore: a missing masked path is skipped, as runc does)
                .contains("timer_list=0\n")
                .contains("firmware=0\n")
                .contains("procsys-refused\n")
                .contains("same-namespace\n")
                .contains("not-the-vms\n");
        String dev = r.out()
                .lines()
                .filter(l -> l.contains("urandom"))
                .findFirst()
                .orElseThrow(() -> new AssertionError(r.out()));
        assertThat(List.of(dev.split(" ")))
                .contains(
                        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout", "stderr",
                        "pts", "shm", "mqueue");
        assertThat(Files.readString(shared.resolve("v"))).isEqualTo("v\n");
        assertThat(podman("rm", "-f", "mounts").exit()).isZero();
        assertNothingLeft();
    }

    /** -v DIR:/path and DIR:/path:ro in a microVM: writes reach the host, a read-only one refuses them. */
    @Test
    void directoryBindsReachTheVm() throws IOException {
        Path shared = Files.createDirectories(work.resolve("shared"));
        Path readOnly = Files.createDirectories(work.resolve("readonly"));
        Files.writeString(readOnly.resolve("in"), "from-host\n");
        Run r = podman(
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                shared + ":/data",
                "-v",
                readOnly + ":/deep/ro:ro",
                IMAGE,
                "sh",
                "-c",
                "echo from-vm > /data/out && cat /deep/ro/in && (echo x > /deep/ro/new) 2>/dev/null; echo ro=$?");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("from-host\nro=1\n");
        assertThat(Files.readString(shared.resolve("out"))).isEqualTo("from-vm\n");
        assertThat(readOnly.resolve("new")).doesNotExist();
        // nothing stays mounted over podman's rootfs after the container is gone
        assertThat(Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                        .map(l -> l.split(" ")[4])
                        .filter(m -> m.startsWith(work.toString()) && (m.endsWith("/data") || m.endsWith("/deep/ro"))))
                .isEmpty();
        assertNothingLeft();
    }

    @Test
    void badInputToTheRuntimeIsAClearErrorWithRuncsStatus() throws IOException {
        Run missing = runtime("create", "--bundle", work.resolve("nope").toString(), "c1");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err()).contains("the bundle").contains("does not exist");

        Path bundle = Files.createDirectories(work.resolve("bundle"));
        Files.writeString(bundle.resolve("config.json"), "{\"ociVersion\": \"1.0.2\", ");
        Run malformed = runtime("create", "--bundle", bundle.toString(), "c1");
        assertThat(malformed.exit()).isEqualTo(1);
        assertThat(malformed.err()).contains("config.json is not valid JSON (line 1, column");

        Files.writeString(
                bundle.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sleep\", \"100\"], \"cwd\": \"/\"},"
                        + " \"root\": {\"path\": \"" + work.resolve("rootfs") + "\"},"
                        + " \"hooks\": {\"createContainer\": [{\"path\": \"/bin/true\"}]}}");
        Run hooks = runtime("create", "--bundle", bundle.toString(), "c1");
        assertThat(hooks.exit()).isEqualTo(1);
        assertThat(hooks.err()).contains("unsupported config.json field hooks.createContainer");
        Files.writeString(
                bundle.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sleep\", \"100\"], \"cwd\": \"/\"},"
                        + " \"root\": {\"path\": \"" + work.resolve("rootfs") + "\"},"
                        + " \"mounts\": [{\"destination\": \"/r\", \"type\": \"ramfs\", \"source\": \"ramfs\"}]}");
        Run ramfs = runtime("create", "--bundle", bundle.toString(), "c1");
        assertThat(ramfs.exit()).isEqualTo(1);
        assertThat(ramfs.err())
                .contains("unsupported config.json field mounts /r (ramfs): a microVM container gets tmpfs, proc,"
                        + " sysfs, devpts, mqueue, cgroup mounts and binds, not ramfs");

        Run unknown = runtime("state", "no-such-container");
        assertThat(unknown.exit()).isEqualTo(1);
        assertThat(unknown.err()).contains("container \"no-such-container\" does not exist");
        assertThat(runtime("kill", "no-such-container", "KILL").exit()).isEqualTo(1);
        assertThat(runtime("delete", "no-such-container").exit()).isEqualTo(1);
        assertNothingLeft();

        // hooks on the host: prestart after create (the state's id and pid on stdin), poststart
        // after start, poststop after delete; each appends its name and the state to a host file
        Path hookLog = work.resolve("hooks.log");
        String hook = "{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo PHASE $(cat) >> " + hookLog
                + "\"], \"timeout\": 20}";
        Files.writeString(
                bundle.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sleep\", \"100\"], \"cwd\": \"/\"},"
                        + " \"root\": {\"path\": \"" + work.resolve("rootfs") + "\"},"
                        + " \"hooks\": {\"prestart\": [" + hook.replace("PHASE", "prestart") + "],"
                        + " \"poststart\": [" + hook.replace("PHASE", "poststart") + "],"
                        + " \"poststop\": [" + hook.replace("PHASE", "poststop") + "]}}");
        Path pidFile = work.resolve("c1.pid");
        Run created = runtime("create", "--bundle", bundle.toString(), "--pid-file", pidFile.toString(), "c1");
        assertThat(created.exit()).as(created.err()).isZero();
        String pid = Files.readString(pidFile).strip();
        assertThat(runtime("state", "c1").out())
                .contains("\"status\" : \"created\"")
                .contains("\"pid\" : " + pid);
        assertThat(Files.readAllLines(hookLog))
                .singleElement()
                .satisfies(l -> assertThat(l)
                        .startsWith("prestart {")
                        .contains("\"id\":\"c1\"")
                        .contains("\"pid\":" + pid)
                        .contains("\"status\":\"creating\""));
        Run again = runtime("create", "--bundle", bundle.toString(), "c1");
        assertThat(again.exit()).isEqualTo(1);
        assertThat(again.err()).contains("container with id exists: c1");
        // The first container is untouched by the refused second create.
        assertThat(runtime("state", "c1").out()).contains("\"status\" : \"created\"");
        assertThat(runtime("start", "c1").exit()).isZero();
        assertThat(Files.readAllLines(hookLog)).hasSize(2).last().asString().startsWith("poststart {");
        assertThat(runtime("delete", "--force", "c1").exit()).isZero();
        assertThat(Files.readAllLines(hookLog))
                .hasSize(3)
                .last()
                .asString()
                .startsWith("poststop {")
                .contains("\"id\":\"c1\"")
                .contains("\"status\":\"stopped\"");
        assertNothingLeft();

        // a failing prestart fails the create, which leaves nothing behind
        Files.writeString(
                bundle.resolve("config.json"),
                "{\"ociVersion\": \"1.0.2\", \"process\": {\"args\": [\"sleep\", \"100\"], \"cwd\": \"/\"},"
                        + " \"root\": {\"path\": \"" + work.resolve("rootfs") + "\"},"
                        + " \"hooks\": {\"prestart\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\","
                        + " \"echo refused by the hook; exit 4\"]}]}}");
        Run failed = runtime("create", "--bundle", bundle.toString(), "c2");
        assertThat(failed.exit()).isEqualTo(1);
        assertThat(failed.err()).contains("hooks.prestart[0] /bin/sh failed with exit status 4: refused by the hook");
        assertNothingLeft();
    }

    private Run runtime(String... args) {
        List<String> argv = new ArrayList<>(List.of(runtime.toString()));
        argv.addAll(List.of(args));
        // Files, not pipes: a created container's stand-in keeps the runtime's stdio open, as
        // runc's init does, so a pipe would not end when the runtime exits.
        Path out = work.resolve("runtime.out");
        Path err = work.resolve("runtime.err");
        try {
            Process p = new ProcessBuilder(argv)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                    .redirectOutput(out.toFile())
                    .redirectError(err.toFile())
                    .start();
            int exit = p.waitFor();
            return new Run(exit, Files.readString(out), Files.readString(err));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** No state directory, no sandbox, no stand-in process stays after a container is removed. */
    private void assertNothingLeft() {
        try (var s = Files.list(stateRoot)) {
            assertThat(s.toList()).isEmpty();
        } catch (java.nio.file.NoSuchFileException e) {
            // nothing was ever created
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        assertThat(new Cli(dirs).run("ps", "-a", "-q").out().strip()).isEmpty();
        assertThat(ProcessHandle.allProcesses()
                        .filter(p -> p.info().commandLine().orElse("").contains("StandIn " + stateRoot)))
                .isEmpty();
    }

    private Run podman(String... args) {
        return podmanWithInput(null, args);
    }

    private Run podmanWithInput(@org.jspecify.annotations.Nullable String stdin, String... args) {
        List<String> argv = new ArrayList<>(podmanArgv());
        argv.addAll(List.of(args));
        return run(stdin, argv);
    }

    /** podman on the test's private storage with airlock-runtime as its runtime. */
    private List<String> podmanArgv() {
        return List.of(
                "podman",
                "--root",
                work.resolve("storage").toString(),
                "--runroot",
                work.resolve("run").toString(),
                "--runtime",
                runtime.toString());
    }

    private Run run(@org.jspecify.annotations.Nullable String stdin, List<String> argv) {
        return OciTestKit.run(
                stdin,
                argv,
                Map.of("CONTAINERS_CONF", work.resolve("containers.conf").toString()));
    }

    private static String vmmUid() {
        HostCommand.Result r = HostCommand.run(List.of("id", "-u", "airlock-vmm"), null, null);
        assertThat(r.ok()).as(r.output()).isTrue();
        return r.output().strip();
    }
}
