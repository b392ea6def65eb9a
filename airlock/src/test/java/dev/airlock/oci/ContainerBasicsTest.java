package dev.airlock.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.guest.ExecSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Start, exec, hostname, network, limits written, attach and clean removal; on crun and runc. */
class ContainerBasicsTest {

    @ParameterizedTest
    @ValueSource(strings = {"crun", "runc"})
    void startsExecsAndCleansUp(String runtimeName) throws Exception {
        OciRuntime runtime = ContainerHarness.runtime(runtimeName);
        Container c;
        try (ContainerHarness h = new ContainerHarness(runtime)) {
            String id = "basic-" + runtimeName + "-" + ProcessHandle.current().pid();
            c = h.start(h.spec(id)
                    .hostname("box-" + runtimeName)
                    .memoryMiB(256)
                    .pids(128)
                    .cpus(0.5)
                    .env("AIRLOCK_TEST", "yes")
                    .build());

            var r = ContainerHarness.sh(c, "echo out; echo err >&2; exit 7");
            assertThat(r.status().exitCode()).isEqualTo(7);
            assertThat(r.out()).isEqualTo("out\n");
            assertThat(r.err()).isEqualTo("err\n");

            assertThat(ContainerHarness.exec(c, "hostname").out().strip()).isEqualTo("box-" + runtimeName);
            assertThat(ContainerHarness.exec(c, "ls", "/sys/class/net").out().split("\\s+"))
                    .containsExactly("lo");
            // device nodes: only the harmless ones (ptmx is a link to the private devpts instance)
            assertThat(ContainerHarness.sh(c, "find /dev -type c -o -type b | sort | tr '\\n' ' '")
                            .out()
                            .strip())
                    .isEqualTo("/dev/full /dev/null /dev/pts/ptmx /dev/random /dev/tty /dev/urandom /dev/zero");
            assertThat(ContainerHarness.sh(c, "readlink /dev/ptmx").out().strip())
                    .isEqualTo("pts/ptmx");
            // the agent is PID 1 of its own PID namespace
            assertThat(ContainerHarness.sh(c, "cat /proc/1/cmdline | tr '\\0' ' '")
                            .out())
                    .startsWith(OciConfig.AGENT_PATH + " --serve-unix");
            // the spec's environment is the agent's; commands get theirs from ExecSpec
            assertThat(ContainerHarness.sh(c, "tr '\\0' '\\n' < /proc/1/environ")
                            .out())
                    .contains("AIRLOCK_TEST=yes");
            assertThat(ContainerHarness.exec(
                                    c,
                                    ExecSpec.builder("sh", "-c", "echo $V")
                                            .env("V", "yes")
                                            .build())
                            .out())
                    .isEqualTo("yes\n");

            // the limits are in the kernel, not only in config.json
            assertThat(c.cgroup().memoryLimit()).hasValue(256L << 20);
            assertThat(c.cgroup().pidsMax()).hasValue(128);
            assertThat(c.cgroup().cpuQuotaMicros()).hasValue(50_000);
            assertThat(c.cgroup().tasks()).isNotEmpty();

            // capabilities, no_new_privs and seccomp as configured
            var status = ContainerHarness.sh(c, "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status")
                    .out();
            assertThat(status).contains("NoNewPrivs:\t1").contains("Seccomp:\t2");
            assertThat(ContainerHarness.sh(c, "mount -t tmpfs x /mnt").code()).isNotZero();
            assertThat(ContainerHarness.sh(c, "cat /proc/kcore | head -c1 | wc -c")
                            .out()
                            .strip())
                    .isEqualTo("0");
            assertThat(ContainerHarness.sh(c, "echo 1 > /proc/sys/kernel/ns_last_pid")
                            .code())
                    .isNotZero();
            assertThat(ContainerHarness.sh(c, "unshare -U true").code()).isNotZero();

            // the writable layer is in the sandbox directory; the base is untouched
            assertThat(ContainerHarness.sh(c, "echo hi > /etc/airlock-marker").code())
                    .isZero();
            assertThat(c.upper().resolve("etc/airlock-marker")).hasContent("hi");
            Path lower = h.backend.images().mountPoint(h.image);
            assertThat(lower.resolve("etc/airlock-marker")).doesNotExist();

            // found again by id, as another process would
            Container again = h.backend.attach(id, c.sandboxDir()).orElseThrow();
            assertThat(again.socket()).isEqualTo(c.socket());
            assertThat(ContainerHarness.exec(again, "true").code()).isZero();
            assertThat(h.backend.state(c).orElseThrow().status()).isEqualTo("running");
        }
        // close() removed it: no runtime state, cgroup, mount or process is left
        assertThat(runtime.state(c.id())).isEmpty();
        assertThat(c.cgroup().exists()).isFalse();
        assertThat(Mounts.under(c.sandboxDir())).isEmpty();
        assertThat(Files.exists(c.sandboxDir())).isFalse();
        assertThat(processesMentioning(c.socket().toString())).isEmpty();
    }

    static List<Long> processesMentioning(String text) {
        return ProcessHandle.allProcesses()
                .filter(p -> p.info()
                        .arguments()
                        .map(a -> String.join(" ", a).contains(text))
                        .orElse(false))
                .map(ProcessHandle::pid)
                .toList();
    }
}
