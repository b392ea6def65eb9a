package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.guest.ContainerMounts;
import dev.airlock.guest.ProcessConfinement;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.node.ArrayNode;
import tools.jackson.databind.node.ObjectNode;

/** config.json, field by field: what a microVM honours, what it provides itself, what it refuses. */
class BundleConfigTest {
    @TempDir
    Path bundle;

    /** The shape podman 4.3 writes (trimmed), with --network none. */
    private ObjectNode podmanLike() throws IOException {
        Files.createDirectories(bundle.resolve("rootfs"));
        Files.writeString(bundle.resolve("hosts"), "127.0.0.1 localhost\n");
        String json = """
                {"ociVersion": "1.0.2-dev",
                 "process": {"user": {"uid": 1000, "gid": 1001, "umask": 18}, "args": ["echo", "hi"],
                   "env": ["PATH=/bin", "FOO=a=b"], "cwd": "/tmp",
                   "capabilities": {"bounding": ["CAP_CHOWN"]},
                   "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 1024}]},
                 "root": {"path": "rootfs"},
                 "hostname": "abc",
                 "mounts": [
                   {"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                   {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
                   {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                   {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
                   {"destination": "/etc/hosts", "type": "bind", "source": "HOSTS", "options": ["bind"]},
                   {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}],
                 "annotations": {"io.container.manager": "libpod"},
                 "linux": {"resources": {"memory": {"limit": 268435456, "swap": 536870912},
                     "cpu": {"quota": 150000, "period": 100000}, "pids": {"limit": 2048},
                     "devices": [{"allow": false, "access": "rwm"}]},
                   "cgroupsPath": "/libpod_parent/x",
                   "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                     {"type": "mount"}],
                   "seccomp": {"defaultAction": "SCMP_ACT_ERRNO"},
                   "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}}
                """.replace("HOSTS", bundle.resolve("hosts").toString());
        return (ObjectNode) Json.MAPPER.readTree(json);
    }

    @Test
    void honoursWhatPodmanWrites() throws IOException {
        BundleConfig c = BundleConfig.parse(bundle, podmanLike());
        assertThat(c.process().args()).containsExactly("echo", "hi");
        assertThat(c.process().env()).containsEntry("FOO", "a=b").containsEntry("PATH", "/bin");
        assertThat(c.process().cwd()).isEqualTo("/tmp");
        assertThat(c.process().user()).isEqualTo("1000:1001");
        assertThat(c.rootfs()).isEqualTo(bundle.resolve("rootfs"));
        assertThat(c.memoryMiB()).isEqualTo(256);
        assertThat(c.cpus()).isEqualTo(2);
        assertThat(c.pids()).isEqualTo(2048);
        assertThat(c.files()).isEqualTo(Map.of("/etc/hosts", bundle.resolve("hosts")));
        assertThat(c.replacedByVm())
                .contains("linux.cgroupsPath")
                .doesNotContain(
                        "process.capabilities",
                        "process.rlimits",
                        "linux.seccomp",
                        "linux.maskedPaths",
                        "linux.readonlyPaths");
        ProcessConfinement confinement =
                java.util.Objects.requireNonNull(c.process().confinement());
        assertThat(confinement.rlimits()).containsExactly(new ProcessConfinement.Rlimit(7, 1024, 20000));
        assertThat(confinement.capabilities()).isEqualTo(new ProcessConfinement.Capabilities(1, 0, 0, 0, 0));
        assertThat(confinement.umask()).isEqualTo(18);
        assertThat(confinement.seccomp()).isNotNull();
        assertThat(confinement.hostname()).isEqualTo("abc");
        ContainerMounts mounts = java.util.Objects.requireNonNull(confinement.mounts());
        assertThat(mounts.mounts())
                .extracting(ContainerMounts.Mount::type, ContainerMounts.Mount::destination)
                .containsExactly(
                        org.assertj.core.groups.Tuple.tuple("proc", "/proc"),
                        org.assertj.core.groups.Tuple.tuple("tmpfs", "/dev"),
                        org.assertj.core.groups.Tuple.tuple("sysfs", "/sys"),
                        org.assertj.core.groups.Tuple.tuple("devpts", "/dev/pts"),
                        org.assertj.core.groups.Tuple.tuple("mqueue", "/dev/mqueue"),
                        org.assertj.core.groups.Tuple.tuple("bind", "/etc/hosts"),
                        org.assertj.core.groups.Tuple.tuple("cgroup", "/sys/fs/cgroup"));
        assertThat(mounts.masked()).containsExactly("/proc/kcore");
        assertThat(mounts.readonly()).containsExactly("/proc/sys");
        assertThat(mounts.rootReadonly()).isFalse();
    }

    /** podman's --tmpfs and --read-only: options become flags and tmpfs data, in the config's order. */
    @Test
    void mountOptionsBecomeFlagsAndData() throws IOException {
        ObjectNode c = podmanLike();
        ((ObjectNode) c.get("root")).put("readonly", true);
        ArrayNode m = (ArrayNode) c.get("mounts");
        m.insertObject(0)
                .put("destination", "/scratch")
                .put("type", "tmpfs")
                .put("source", "tmpfs")
                .putArray("options")
                .add("size=1m")
                .add("rw")
                .add("rprivate")
                .add("nosuid")
                .add("nodev")
                .add("tmpcopyup");
        m.addObject()
                .put("destination", "/dev/shm")
                .put("type", "bind")
                .put("source", bundle.resolve("shm").toString())
                .putArray("options")
                .add("bind")
                .add("noexec");
        ((ObjectNode) m.get(6)).putArray("options").add("bind").add("ro");
        ProcessConfinement confinement = java.util.Objects.requireNonNull(
                BundleConfig.parse(bundle, c).process().confinement());
        ContainerMounts got = java.util.Objects.requireNonNull(confinement.mounts());
        assertThat(got.rootReadonly()).isTrue();
        assertThat(got.mounts().getFirst())
                .isEqualTo(new ContainerMounts.Mount(
                        "tmpfs", "/scratch", ContainerMounts.MS_NOSUID | ContainerMounts.MS_NODEV, "size=1m", true));
        assertThat(got.mounts().get(6))
                .as("a read-only file bind, refused before")
                .isEqualTo(new ContainerMounts.Mount("bind", "/etc/hosts", ContainerMounts.MS_RDONLY, "", false));
        assertThat(got.mounts().getLast())
                .as("a host /dev/shm is a tmpfs of the VM's own")
                .isEqualTo(
                        new ContainerMounts.Mount("tmpfs", "/dev/shm", ContainerMounts.MS_NOEXEC, "mode=1777", false));
    }

    @Test
    void hooksThatRunOnTheHostAreKept() throws IOException {
        ObjectNode c = podmanLike();
        ObjectNode h = c.putObject("hooks");
        ObjectNode pre =
                h.putArray("prestart").addObject().put("path", "/bin/sh").put("timeout", 5);
        pre.putArray("args").add("sh").add("-c").add("true");
        h.putArray("poststop").addObject().put("path", "/bin/true");
        Hooks hooks = BundleConfig.parse(bundle, c).hooks();
        assertThat(hooks.prestart()).containsExactly(new Hooks.Hook("/bin/sh", List.of("-c", "true"), null, 5));
        assertThat(hooks.poststop()).containsExactly(new Hooks.Hook("/bin/true", List.of(), null, 60));
        assertThat(hooks.createRuntime()).isEmpty();
    }

    /** Real programs: state on stdin, in order; a failure and a timeout are errors naming the hook. */
    @Test
    void hooksRunInOrderWithTheStateOnStdin() throws IOException {
        Path out = bundle.resolve("hook.out");
        Hooks.Hook first = new Hooks.Hook("/bin/sh", List.of("-c", "cat > " + out), null, 10);
        Hooks.Hook second = new Hooks.Hook("/bin/sh", List.of("-c", "echo second >> " + out), List.of("A=b"), 10);
        Hooks.run("prestart", List.of(first, second), "{\"id\":\"x\"}", bundle);
        assertThat(Files.readString(out)).isEqualTo("{\"id\":\"x\"}second\n");

        Hooks.Hook fails = new Hooks.Hook("/bin/sh", List.of("-c", "echo no way >&2; exit 3"), null, 10);
        assertThatThrownBy(() -> Hooks.run("prestart", List.of(fails, first), "{}", bundle))
                .isInstanceOf(RuntimeError.class)
                .hasMessage("hooks.prestart[0] /bin/sh failed with exit status 3: no way");
        Hooks.Hook hangs = new Hooks.Hook("/bin/sh", List.of("-c", "exec sleep 30"), null, 1);
        long t0 = System.nanoTime();
        assertThatThrownBy(() -> Hooks.run("createRuntime", List.of(hangs), "{}", bundle))
                .isInstanceOf(RuntimeError.class)
                .hasMessage("hooks.createRuntime[0] /bin/sh did not finish within its timeout of 1 s");
        assertThat(System.nanoTime() - t0).isLessThan(20_000_000_000L);
        assertThatThrownBy(() ->
                        Hooks.run("poststop", List.of(new Hooks.Hook("/no/such", List.of(), null, 1)), "{}", bundle))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining("hooks.poststop[0] /no/such cannot start");
    }

    @Test
    void processSettingsTheKernelCannotMapAreErrors() throws IOException {
        assertError(
                c -> ((ArrayNode) c.get("process").get("capabilities").get("bounding")).add("CAP_TEST"),
                "'CAP_TEST' is not a Linux capability");
        assertError(
                c -> ((ArrayNode) c.get("process").get("rlimits"))
                        .addObject()
                        .put("type", "RLIMIT_TEST")
                        .put("soft", 1)
                        .put("hard", 1),
                "'RLIMIT_TEST' is not a Linux rlimit");
        assertError(
                c -> ((ArrayNode) c.get("process").get("rlimits"))
                        .addObject()
                        .put("type", "RLIMIT_NOFILE")
                        .put("soft", 1)
                        .put("hard", 1),
                "RLIMIT_NOFILE is given twice");
        assertError(c -> ((ObjectNode) c.get("process").get("user")).put("umask", 01000), "is not a file mode");
        assertRefused(
                c -> ((ObjectNode) c.get("linux").get("seccomp")).put("defaultAction", "SCMP_ACT_NOTIFY"),
                "linux.seccomp.defaultAction SCMP_ACT_NOTIFY");
        assertRefused(
                c -> ((ObjectNode) c.get("linux").get("seccomp")).put("listenerPath", "/run/x.sock"),
                "linux.seccomp.listenerPath");
        assertRefused(
                c -> ((ObjectNode) c.get("linux").get("seccomp"))
                        .putArray("flags")
                        .add("SECCOMP_FILTER_FLAG_LOG"),
                "linux.seccomp.flags SECCOMP_FILTER_FLAG_LOG");
    }

    @Test
    void refusesWhatAVmCannotGiveNamingTheField() throws IOException {
        assertRefused(
                c -> {
                    ((ObjectNode) c.get("root")).put("readonly", true);
                    ((ObjectNode) c.get("annotations")).put(BundleConfig.MODE_ANNOTATION, "container");
                },
                "root.readonly");
        assertRefused(
                c -> c.putObject("hooks")
                        .putArray("createContainer")
                        .addObject()
                        .put("path", "/bin/true"),
                "hooks.createContainer");
        assertRefused(
                c -> ((ArrayNode) c.get("mounts"))
                        .addObject()
                        .put("destination", "/data")
                        .put("type", "nfs")
                        .put("source", "server:/x"),
                "mounts /data (nfs): a microVM container gets tmpfs, proc, sysfs, devpts, mqueue, cgroup mounts and binds, not nfs");
        assertRefused(
                c -> ((ArrayNode) c.get("mounts"))
                        .addObject()
                        .put("destination", "/t")
                        .put("type", "tmpfs")
                        .putArray("options")
                        .add("exotic=1"),
                "mounts /t (tmpfs) option exotic=1");
        assertRefused(
                c -> ((ArrayNode) c.get("linux").get("namespaces"))
                        .addObject()
                        .put("type", "mount")
                        .put("path", "/proc/1/ns/mnt"),
                "linux.namespaces mount /proc/1/ns/mnt");
        assertRefused(
                c -> ((ArrayNode) c.get("linux").get("namespaces")).addObject().put("type", "user"),
                "linux.namespaces user");
        assertRefused(
                c -> ((ArrayNode) c.get("mounts"))
                        .addObject()
                        .put("destination", "/data")
                        .put("type", "bind")
                        .put("source", bundle.toString())
                        .putArray("options")
                        .add("rbind")
                        .add("idmap"),
                "mounts /data (bind) option idmap");
        assertRefused(c -> c.put("domainname", "x"), "domainname");
        assertRefused(
                c -> ((ObjectNode) c.get("linux")).putObject("sysctl").put("net.ipv4.ip_forward", "1"), "linux.sysctl");
        assertRefused(c -> ((ObjectNode) c.get("process")).put("unknownField", 1), "process.unknownField");
    }

    @Test
    void namespacesGivenByPathAreKeptForThePod() throws IOException {
        ObjectNode c = podmanLike();
        ArrayNode ns = (ArrayNode) c.get("linux").get("namespaces");
        ns.removeAll();
        ns.addObject().put("type", "network").put("path", "/proc/42/ns/net");
        ns.addObject().put("type", "ipc").put("path", "/proc/42/ns/ipc");
        ns.addObject().put("type", "mount");
        BundleConfig parsed = BundleConfig.parse(bundle, c);
        assertThat(parsed.joins()).isEqualTo(Map.of("network", "/proc/42/ns/net", "ipc", "/proc/42/ns/ipc"));
    }

    @Test
    void badBundlesAreErrorsInWords() throws IOException {
        assertThatThrownBy(() -> BundleConfig.read(bundle.resolve("missing")))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining("does not exist");
        assertThatThrownBy(() -> BundleConfig.read(bundle))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining("has no config.json");
        Files.writeString(bundle.resolve("config.json"), "{\"ociVersion\": ");
        assertThatThrownBy(() -> BundleConfig.read(bundle))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining("config.json is not valid JSON (line 1, column 16)")
                .hasMessageNotContaining("REDACTED");
        ObjectNode c = podmanLike();
        ((ObjectNode) c.get("process")).putArray("args");
        assertThatThrownBy(() -> BundleConfig.parse(bundle, c))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining("process.args is missing or empty");
    }

    private void assertRefused(java.util.function.Consumer<ObjectNode> change, String field) throws IOException {
        assertError(change, "unsupported config.json field " + field);
    }

    private void assertError(java.util.function.Consumer<ObjectNode> change, String message) throws IOException {
        ObjectNode c = podmanLike();
        change.accept(c);
        assertThatThrownBy(() -> BundleConfig.parse(bundle, c))
                .isInstanceOf(RuntimeError.class)
                .hasMessageContaining(message);
    }

    @Test
    void signalsByNameOrNumber() {
        List<Integer> got = new ArrayList<>();
        for (String s : List.of("SIGTERM", "TERM", "15", "KILL", "sigusr1")) {
            got.add(Signals.parse(s));
        }
        assertThat(got).containsExactly(15, 15, 15, 9, 10);
        assertThatThrownBy(() -> Signals.parse("SIGNOPE")).isInstanceOf(RuntimeError.class);
    }
}
