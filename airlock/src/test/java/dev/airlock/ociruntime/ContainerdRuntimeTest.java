package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.ociruntime.OciTestKit.Run;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Real containerd (Debian's 1.6) and its {@code ctr}, with the runc v2 shim pointed at
 * airlock-runtime through the runtime options' {@code BinaryName} ({@code ctr --runc-binary}):
 * the path Kubernetes' CRI plugin takes. The test runs a private containerd (its own root,
 * state, socket and config under the test's directory, no systemd) and imports an OCI archive of
 * a busybox image it builds itself: no registry, no network.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ContainerdRuntimeTest {
    private static final String IMAGE = "docker.io/library/airlock-ctr-test:latest";
    private static final Duration CONTAINERD_UP = Duration.ofSeconds(30);
    /** Prints the ids of a process's network, IPC, UTS and mount namespaces, one a line (busybox readlink takes one file). */
    private static final String NAMESPACE_IDS = "for n in net ipc uts mnt; do readlink /proc/self/ns/$n; done;";

    private AirlockDirs dirs;
    private Path work;
    private Path stateRoot;
    private Path runtime;
    private Path socket;
    private Process containerd;

    @BeforeAll
    void setUp() throws IOException, InterruptedException {
        TestHost.ready();
        dirs = TestHost.isolated("containerd");
        work = Files.createTempDirectory("airlock-containerd-");
        stateRoot = work.resolve("runtime-state");
        socket = work.resolve("containerd.sock");
        // the shim gives --root (ctr --runc-root) itself
        runtime = OciTestKit.launcher(dirs, work.resolve("airlock-runtime"), null);
        assertThat(new Cli(dirs).run("ps").exit()).isZero();

        Path config = work.resolve("config.toml");
        Files.writeString(
                config,
                "version = 2\n"
                        + "root = \"" + work.resolve("root") + "\"\n"
                        + "state = \"" + work.resolve("state") + "\"\n"
                        // no CRI: this test drives containerd through ctr; nothing listens on TCP
                        + "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
                        + "[grpc]\n  address = \"" + socket + "\"\n");
        containerd = new ProcessBuilder("containerd", "--config", config.toString())
                .redirectErrorStream(true)
                .redirectOutput(work.resolve("containerd.log").toFile())
                .start();
        Instant until = Instant.now().plus(CONTAINERD_UP);
        while (ctr("version").exit() != 0) {
            assertThat(containerd.isAlive())
                    .as("containerd exited: " + Files.readString(work.resolve("containerd.log")))
                    .isTrue();
            assertThat(Instant.now()).as("containerd did not answer").isBefore(until);
            Thread.sleep(100);
        }
        Run imported = ctr("image", "import", ociArchive().toString());
        assertThat(imported.exit()).as(imported.err()).isZero();
    }

    @AfterAll
    void tearDown() throws InterruptedException {
        if (containerd != null) {
            for (String id : ctr("task", "ls", "-q").out().lines().toList()) {
                if (!id.isBlank()) {
                    ctr("task", "kill", "-s", "SIGKILL", id.strip());
                    ctr("task", "delete", "-f", id.strip());
                }
            }
            for (String id : ctr("container", "ls", "-q").out().lines().toList()) {
                if (!id.isBlank()) {
                    ctr("container", "rm", id.strip());
                }
            }
            containerd.destroy();
            containerd.waitFor();
        }
        OciTestKit.unmountUnder(work);
        TestHost.cleanUp(dirs);
        HostFiles.deleteTree(work);
    }

    @Test
    void runRemovePrintsAndReportsTheExitCode() {
        Run r = ctrRun("--rm", IMAGE, "c-rm", "sh", "-c", "echo out; echo err >&2; id -u; exit 3");
        assertThat(r.out()).isEqualTo("out\n0\n");
        assertThat(r.err()).contains("err\n");
        assertThat(r.exit()).isEqualTo(3);

        Run ok = ctrRun("--rm", "--env", "FOO=bar", "--cwd", "/tmp", IMAGE, "c-ok", "sh", "-c", "echo $FOO $(pwd)");
        assertThat(ok.exit()).as(ok.err()).isZero();
        assertThat(ok.out()).isEqualTo("bar /tmp\n");
        assertNothingLeft();
    }

    @Test
    void detachedTaskExecPsPauseUpdateKillDelete() throws IOException, InterruptedException {
        Run started = ctrRun("-d", IMAGE, "c-d", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done");
        assertThat(started.exit()).as(started.err()).isZero();
        assertThat(ctr("task", "ls").out()).containsPattern("c-d\\s+\\d+\\s+RUNNING");

        Run exec = ctr("task", "exec", "--exec-id", "e1", "c-d", "sh", "-c", "echo in-vm; exit 4");
        assertThat(exec.out()).isEqualTo("in-vm\n");
        assertThat(exec.exit()).isEqualTo(4);

        // ps: the shim asks `ps --format json` and shows the host pids it knows (the task's)
        String taskPid = ctr("task", "ls").out().replaceAll("(?s).*c-d\\s+(\\d+).*", "$1");
        Run ps = ctr("task", "ps", "c-d");
        assertThat(ps.exit()).as(ps.err()).isZero();
        assertThat(ps.out()).contains(taskPid);

        // pause freezes the container's processes: the counter it writes into its rootfs (the
        // host directory the shim mounted) stands still, and moves again after resume
        Path counter = work.resolve("state/io.containerd.runtime.v2.task/default/c-d/rootfs/tmp/n");
        assertThat(ctr("task", "pause", "c-d").exit()).isZero();
        assertThat(ctr("task", "ls").out()).containsPattern("c-d\\s+\\d+\\s+PAUSED");
        assertThat(runtime("state", "c-d").out()).contains("\"status\" : \"paused\"");
        String frozen = Files.readString(counter);
        // an observation window, not a synchronisation: a running loop moves many times in it
        Thread.sleep(1000);
        assertThat(Files.readString(counter)).isEqualTo(frozen);
        Run execWhilePaused = ctr("task", "exec", "--exec-id", "e2", "c-d", "true");
        assertThat(execWhilePaused.exit()).isNotZero();
        assertThat(ctr("task", "resume", "c-d").exit()).isZero();
        Instant until = Instant.now().plusSeconds(30);
        while (read(counter).equals(frozen)) {
            assertThat(Instant.now()).as("the counter never moved after resume").isBefore(until);
            Thread.sleep(50);
        }

        // update: ctr 1.6 has no `task update`; the shim's call is `update --resources -`
        assertThat(runtimeWithInput(
                                "{\"memory\": {\"limit\": 67108864}, \"pids\": {\"limit\": 50}}",
                                "update",
                                "--resources",
                                "-",
                                "c-d")
                        .exit())
                .isZero();
        Run limits = ctr(
                "task",
                "exec",
                "--exec-id",
                "e3",
                "c-d",
                "cat",
                "/sys/fs/cgroup/sandbox/memory.max",
                "/sys/fs/cgroup/sandbox/pids.max");
        assertThat(limits.out()).isEqualTo("67108864\n50\n");
        Run cpu = runtimeWithInput(
                "{\"cpu\": {\"quota\": 50000, \"period\": 100000}}", "update", "--resources", "-", "c-d");
        assertThat(cpu.exit()).isEqualTo(1);
        assertThat(cpu.err()).contains("resources.cpu cannot be changed while the container runs");
        Run tooMuch = runtime("update", "--memory", "64g", "c-d");
        assertThat(tooMuch.exit()).isEqualTo(1);
        assertThat(tooMuch.err()).contains("cannot grow while it runs");

        assertThat(ctr("task", "kill", "c-d").exit()).isZero();
        Instant stopped = Instant.now().plusSeconds(60);
        while (!ctr("task", "ls").out().matches("(?s).*c-d\\s+\\d+\\s+STOPPED.*")) {
            assertThat(Instant.now()).as("the task did not stop on SIGTERM").isBefore(stopped);
            Thread.sleep(100);
        }
        Run deleted = ctr("task", "delete", "c-d");
        assertThat(deleted.exit()).as(deleted.err()).isZero();
        assertThat(deleted.err()).contains("exit code 143");
        assertThat(ctr("container", "rm", "c-d").exit()).isZero();
        assertNothingLeft();
    }

    @Test
    void aPodInContainerModeSharesTheSandboxContainersNamespaces() throws InterruptedException {
        // The path CRI takes for a pod: a pause-like sandbox container, then an app container
        // whose config.json names the sandbox task's /proc/PID/ns/{net,ipc,uts} (ctr --with-ns),
        // with CRI's annotations. The PID is the one airlock-runtime reported: its stand-in.
        List<String> sandbox = new ArrayList<>(List.of("-d"));
        sandbox.addAll(podAnnotations("sandbox", "pod-s"));
        sandbox.addAll(List.of(IMAGE, "pod-s", "sh", "-c", "while :; do echo from-the-pod | nc -l -p 8080; done"));
        Run pod = ctrRun(sandbox.toArray(String[]::new));
        assertThat(pod.exit()).as(pod.err()).isZero();
        try {
            podSharesItsNamespaces();
        } finally {
            ctr("task", "kill", "-s", "SIGKILL", "pod-s");
            Instant stopped = Instant.now().plusSeconds(60);
            while (!ctr("task", "ls").out().matches("(?s).*pod-s\\s+\\d+\\s+STOPPED.*")) {
                assertThat(Instant.now()).as("the pod did not stop").isBefore(stopped);
                Thread.sleep(100);
            }
            assertThat(ctr("task", "delete", "pod-s").exit()).isZero();
            assertThat(ctr("container", "rm", "pod-s").exit()).isZero();
        }
        assertNothingLeft();
    }

    /** The app containers of the running pod-s. */
    private void podSharesItsNamespaces() {
        String podPid = ctr("task", "ls").out().replaceAll("(?s).*pod-s\\s+(\\d+).*", "$1");
        Run podNs = ctr("task", "exec", "--exec-id", "ns", "pod-s", "sh", "-c", NAMESPACE_IDS + " hostname");
        assertThat(podNs.exit()).as(podNs.err()).isZero();
        List<String> podIds = podNs.out().lines().toList();

        List<String> withNs = new ArrayList<>();
        for (String t : List.of("network:net", "ipc:ipc", "uts:uts")) {
            String[] kind = t.split(":");
            withNs.addAll(List.of("--with-ns", kind[0] + ":/proc/" + podPid + "/ns/" + kind[1]));
        }
        // CRI's annotation names the pod an app container belongs to: another pod's namespaces are refused
        List<String> stray = new ArrayList<>(List.of("--rm"));
        stray.addAll(podAnnotations("container", "other-pod"));
        stray.addAll(withNs);
        stray.addAll(List.of(IMAGE, "pod-stray", "true"));
        Run refused = ctrRun(stray.toArray(String[]::new));
        assertThat(refused.exit()).isNotZero();
        assertThat(refused.err()).contains("says this container belongs to pod other-pod");
        ctr("container", "rm", "pod-stray");
        // a microVM-mode app container cannot join a container-mode pod
        List<String> vmApp = new ArrayList<>(List.of("--rm"));
        vmApp.addAll(vmPodAnnotations("container", "pod-s"));
        vmApp.addAll(withNs);
        vmApp.addAll(List.of(IMAGE, "pod-vm-app", "true"));
        Run otherMode = ctrRun(vmApp.toArray(String[]::new));
        assertThat(otherMode.exit()).isNotZero();
        assertThat(otherMode.err()).contains("container pod-s runs in container mode");
        ctr("container", "rm", "pod-vm-app");

        List<String> app = new ArrayList<>(List.of("--rm"));
        app.addAll(podAnnotations("container", "pod-s"));
        app.addAll(withNs);
        app.addAll(List.of(
                IMAGE,
                "pod-app",
                "sh",
                "-c",
                // the pod's listener on 127.0.0.1: retried until it listens (a deadline, not a wait)
                "for i in $(seq 1 300); do r=$(nc 127.0.0.1 8080 </dev/null) && [ -n \"$r\" ] && break;"
                        + " sleep 0.1; done; echo \"$r\";"
                        + NAMESPACE_IDS + " hostname; echo app > /app-was-here; exit 7"));
        Run r = ctrRun(app.toArray(String[]::new));
        assertThat(r.exit()).as(r.err()).isEqualTo(7);
        List<String> seen = r.out().lines().toList();
        assertThat(seen.getFirst()).isEqualTo("from-the-pod");
        // the pod's network, IPC and UTS namespaces (and so its hostname); a mount namespace of its own
        assertThat(seen.subList(1, 4)).isEqualTo(podIds.subList(0, 3));
        assertThat(seen.get(4)).isNotEqualTo(podIds.get(3));
        assertThat(seen.get(5)).isEqualTo(podIds.get(4));
        // its own root: what it wrote is not in the pod's
        Run podRoot = ctr("task", "exec", "--exec-id", "root", "pod-s", "test", "-e", "/app-was-here");
        assertThat(podRoot.exit()).isEqualTo(1);
    }

    @Test
    void aPodInMicrovmModeRunsItsAppContainersInTheSandboxContainersVm() throws InterruptedException {
        // The same CRI path in microVM mode (the default): the sandbox container boots the pod's
        // VM; app containers joining its namespaces run in that VM, each on its own root.
        // read-only, as CRI makes a pod's sandbox container
        List<String> sandbox = new ArrayList<>(List.of("-d", "--read-only"));
        sandbox.addAll(vmPodAnnotations("sandbox", "vm-pod"));
        sandbox.addAll(List.of(IMAGE, "vm-pod", "sh", "-c", "while :; do echo from-the-pod | nc -l -p 8080; done"));
        Run pod = ctrRun(sandbox.toArray(String[]::new));
        assertThat(pod.exit()).as(pod.err()).isZero();
        try {
            Run write = ctr("task", "exec", "--exec-id", "ro", "vm-pod", "sh", "-c", "echo x > /written");
            assertThat(write.exit()).isNotZero();
            assertThat(write.err() + write.out()).contains("Read-only file system");
            vmPodRunsItsContainers();
        } finally {
            ctr("task", "delete", "-f", "vm-app");
            ctr("container", "rm", "vm-app");
            ctr("task", "kill", "-s", "SIGKILL", "vm-pod");
            Instant stopped = Instant.now().plusSeconds(60);
            while (!ctr("task", "ls").out().matches("(?s).*vm-pod\\s+\\d+\\s+STOPPED.*")) {
                assertThat(Instant.now()).as("the pod did not stop").isBefore(stopped);
                Thread.sleep(100);
            }
            assertThat(ctr("task", "delete", "vm-pod").exit()).isZero();
            assertThat(ctr("container", "rm", "vm-pod").exit()).isZero();
        }
        assertNothingLeft();
        assertThat(vmms()).as("QEMU processes of this test's daemon").isZero();
        assertThat(read(Path.of("/proc/self/mountinfo"))).doesNotContain(VmPod.SHARE);
    }

    /** The app containers of the running microVM pod vm-pod. */
    private void vmPodRunsItsContainers() throws InterruptedException {
        assertThat(vmms()).as("the pod's VM").isEqualTo(1);
        String podPid = ctr("task", "ls").out().replaceAll("(?s).*vm-pod\\s+(\\d+).*", "$1");
        Run podNs = ctr("task", "exec", "--exec-id", "ns", "vm-pod", "sh", "-c", NAMESPACE_IDS + " hostname");
        assertThat(podNs.exit()).as(podNs.err()).isZero();
        List<String> podIds = podNs.out().lines().toList();
        List<String> withNs = new ArrayList<>();
        for (String t : List.of("network:net", "ipc:ipc", "uts:uts")) {
            String[] kind = t.split(":");
            withNs.addAll(List.of("--with-ns", kind[0] + ":/proc/" + podPid + "/ns/" + kind[1]));
        }
        // CRI's annotation names another pod: refused
        List<String> stray = new ArrayList<>(List.of("--rm"));
        stray.addAll(vmPodAnnotations("container", "other-pod"));
        stray.addAll(withNs);
        stray.addAll(List.of(IMAGE, "vm-stray", "true"));
        Run refused = ctrRun(stray.toArray(String[]::new));
        assertThat(refused.exit()).isNotZero();
        assertThat(refused.err()).contains("says this container belongs to pod other-pod");
        ctr("container", "rm", "vm-stray");

        // a long-lived app container (what it wrote stays in its own root), then one run to its end
        List<String> daemon = new ArrayList<>(List.of("-d"));
        daemon.addAll(vmPodAnnotations("container", "vm-pod"));
        daemon.addAll(withNs);
        daemon.addAll(List.of(IMAGE, "vm-app", "sh", "-c", "echo app > /app-was-here; exec nc -l -p 9090"));
        Run app = ctrRun(daemon.toArray(String[]::new));
        assertThat(app.exit()).as(app.err()).isZero();
        List<String> once = new ArrayList<>(List.of("--rm"));
        once.addAll(vmPodAnnotations("container", "vm-pod"));
        once.addAll(withNs);
        once.addAll(List.of(
                IMAGE,
                "vm-once",
                "sh",
                "-c",
                // the pod's listener on 127.0.0.1: retried until it listens (a deadline, not a wait)
                "for i in $(seq 1 300); do r=$(nc 127.0.0.1 8080 </dev/null) && [ -n \"$r\" ] && break;"
                        + " sleep 0.1; done; echo \"$r\";"
                        + NAMESPACE_IDS + " hostname; test -e /app-was-here && echo shared-root; exit 7"));
        Run r = ctrRun(once.toArray(String[]::new));
        assertThat(r.exit()).as(r.err()).isEqualTo(7);
        List<String> seen = r.out().lines().toList();
        assertThat(seen.getFirst()).isEqualTo("from-the-pod");
        // the VM's network, IPC and UTS (so the pod's hostname); a mount namespace of its own
        assertThat(seen.subList(1, 4)).isEqualTo(podIds.subList(0, 3));
        assertThat(seen.get(4)).isNotEqualTo(podIds.get(3));
        assertThat(seen.get(5)).isEqualTo(podIds.get(4));
        assertThat(seen).hasSize(6); // not the other app container's root
        // one VM for the pod while both app containers ran
        assertThat(vmms()).as("QEMU processes with a pod of three containers").isEqualTo(1);
        Run inApp = ctr("task", "exec", "--exec-id", "root", "vm-app", "cat", "/app-was-here");
        assertThat(inApp.exit()).as(inApp.err()).isZero();
        assertThat(inApp.out()).isEqualTo("app\n");
        Run podRoot = ctr("task", "exec", "--exec-id", "root", "vm-pod", "test", "-e", "/app-was-here");
        assertThat(podRoot.exit()).isEqualTo(1);
        // the running app container, forced out: its process, its root's mount and state go
        assertThat(ctr("task", "delete", "-f", "vm-app").exit()).isZero();
        assertThat(read(Path.of("/proc/self/mountinfo"))).doesNotContain(VmPod.SHARE + "/vm-app");
        // its process ends in the VM once the agent sees its stand-in's session end: a deadline
        Instant killed = Instant.now().plusSeconds(30);
        while (ctr("task", "exec", "--exec-id", "gone", "vm-pod", "sh", "-c", "ps | grep -q '[n]c -l -p 9090'")
                        .exit()
                == 0) {
            assertThat(Instant.now())
                    .as("the deleted container's process still listens in the VM")
                    .isBefore(killed);
        }
    }

    /** The QEMU processes of this test's containers (their 9p roots are under its directory). */
    private long vmms() {
        return ProcessHandle.allProcesses()
                .map(p -> {
                    try {
                        return Files.readString(Path.of("/proc/" + p.pid() + "/cmdline"), StandardCharsets.ISO_8859_1);
                    } catch (IOException | UncheckedIOException e) {
                        return ""; // gone meanwhile
                    }
                })
                // argv[0]: the jail's console keeper carries the launcher's command line, QEMU's included
                .filter(c -> c.split("\0", 2)[0].contains("qemu-system") && c.contains(work.toString()))
                .count();
    }

    /** ctr's flags for CRI's annotations of a microVM pod's sandbox or app container. */
    private static List<String> vmPodAnnotations(String containerType, String sandboxId) {
        return List.of(
                "--annotation",
                "io.kubernetes.cri.container-type=" + containerType,
                "--annotation",
                "io.kubernetes.cri.sandbox-id=" + sandboxId);
    }

    @Test
    void joiningNamespacesThatAreNotAPodsIsRefusedInWords() {
        // microVM mode (the default): a VM cannot join a namespace on the host
        Run vm = ctrRun("--rm", "--with-ns", "network:/proc/1/ns/net", IMAGE, "c-ns", "true");
        assertThat(vm.exit()).isNotZero();
        assertThat(vm.err())
                .contains("linux.namespaces network /proc/1/ns/net")
                .contains("cannot join a namespace on the host");
        ctr("container", "rm", "c-ns");
        // container mode: the host's own namespace, and a file that is no namespace of that type
        Run host = ctrRun(
                "--rm",
                "--annotation",
                "run.airlock.runtime=container",
                "--with-ns",
                // the daemon opens it: its own, the host's
                "network:/proc/self/ns/net",
                IMAGE,
                "c-host",
                "true");
        assertThat(host.exit()).isNotZero();
        assertThat(host.err()).contains("/proc/self/ns/net is the host's own network namespace");
        ctr("container", "rm", "c-host");
        Run wrongType = ctrRun(
                "--rm",
                "--annotation",
                "run.airlock.runtime=container",
                "--with-ns",
                "ipc:/proc/self/ns/net",
                IMAGE,
                "c-type",
                "true");
        assertThat(wrongType.exit()).isNotZero();
        assertThat(wrongType.err()).contains("is a network namespace, not a ipc namespace");
        ctr("container", "rm", "c-type");
        Run notNs = ctrRun(
                "--rm",
                "--annotation",
                "run.airlock.runtime=container",
                "--with-ns",
                "uts:/etc/hostname",
                IMAGE,
                "c-file",
                "true");
        assertThat(notNs.exit()).isNotZero();
        assertThat(notNs.err()).contains("/etc/hostname is not a namespace file");
        ctr("container", "rm", "c-file");
        assertNothingLeft();
    }

    /** ctr's flags for CRI's annotations of a container-mode pod's sandbox or app container. */
    private static List<String> podAnnotations(String containerType, String sandboxId) {
        return List.of(
                "--annotation",
                "run.airlock.runtime=container",
                "--annotation",
                "io.kubernetes.cri.container-type=" + containerType,
                "--annotation",
                "io.kubernetes.cri.sandbox-id=" + sandboxId);
    }

    /** An OCI image layout (one uncompressed busybox layer) in a tar, as `ctr image import` takes it. */
    private Path ociArchive() throws IOException {
        Path rootfs = Files.createDirectories(work.resolve("rootfs/bin"));
        Files.copy(Path.of("/usr/bin/busybox"), rootfs.resolve("busybox"));
        for (String applet : List.of(
                "sh",
                "echo",
                "cat",
                "id",
                "pwd",
                "sleep",
                "true",
                "nc",
                "readlink",
                "hostname",
                "seq",
                "test",
                "ps",
                "grep")) {
            Files.createSymbolicLink(rootfs.resolve(applet), Path.of("busybox"));
        }
        for (String d : List.of("etc", "tmp", "proc", "sys", "dev", "run")) {
            Files.createDirectories(work.resolve("rootfs").resolve(d));
        }
        Files.writeString(work.resolve("rootfs/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n");
        Files.writeString(work.resolve("rootfs/etc/group"), "root:x:0:\n");
        Path layout = Files.createDirectories(work.resolve("oci/blobs/sha256"));
        Path layer = work.resolve("layer.tar");
        HostCommand.check(List.of("tar", "-C", work.resolve("rootfs").toString(), "-cf", layer.toString(), "."));
        String layerDigest = blob(layout, Files.readAllBytes(layer));
        String config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Env\":[\"PATH=/bin\"],"
                + "\"Cmd\":[\"sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" + layerDigest + "\"]}}";
        String configDigest = blob(layout, config.getBytes(StandardCharsets.UTF_8));
        String manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:"
                + configDigest + "\",\"size\":" + config.length() + "},"
                + "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:"
                + layerDigest + "\",\"size\":" + Files.size(layer) + "}]}";
        String manifestDigest = blob(layout, manifest.getBytes(StandardCharsets.UTF_8));
        Files.writeString(
                work.resolve("oci/index.json"),
                "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                        + "\"digest\":\"sha256:" + manifestDigest + "\",\"size\":" + manifest.length()
                        + ",\"annotations\":{\"io.containerd.image.name\":\"" + IMAGE
                        + "\",\"org.opencontainers.image.ref.name\":\"latest\"}}]}");
        Files.writeString(work.resolve("oci/oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        Path archive = work.resolve("image.tar");
        HostCommand.check(List.of("tar", "-C", work.resolve("oci").toString(), "-cf", archive.toString(), "."));
        return archive;
    }

    private static String blob(Path layout, byte[] content) throws IOException {
        String digest = Hashing.sha256(content);
        Files.write(layout.resolve(digest), content);
        return digest;
    }

    /** No state directory, no sandbox, no stand-in process stays after a container is removed. */
    private void assertNothingLeft() {
        try (var s = Files.walk(stateRoot)) {
            assertThat(s.filter(Files::isRegularFile).toList()).isEmpty();
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

    /** `ctr run` with the runc v2 shim running airlock-runtime (BinaryName) on this test's state root. */
    private Run ctrRun(String... args) {
        List<String> argv = new ArrayList<>(List.of(
                "run",
                "--runtime",
                "io.containerd.runc.v2",
                "--runc-binary",
                runtime.toString(),
                "--runc-root",
                stateRoot.toString()));
        argv.addAll(List.of(args));
        return ctr(argv.toArray(String[]::new));
    }

    private Run ctr(String... args) {
        List<String> argv = new ArrayList<>(List.of("ctr", "--address", socket.toString()));
        argv.addAll(List.of(args));
        return run(null, argv);
    }

    private Run runtime(String... args) {
        return runtimeWithInput(null, args);
    }

    /** airlock-runtime called as the shim calls it, on the shim's state root for ctr's namespace. */
    private Run runtimeWithInput(@org.jspecify.annotations.Nullable String stdin, String... args) {
        List<String> argv = new ArrayList<>(List.of(
                runtime.toString(), "--root", stateRoot.resolve("default").toString()));
        argv.addAll(List.of(args));
        return run(stdin, argv);
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Run run(@org.jspecify.annotations.Nullable String stdin, List<String> argv) {
        return OciTestKit.run(stdin, argv, Map.of());
    }
}
