package dev.airlock.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.testing.MarkerStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Limits enforced by the kernel, and the escape checks, on the default runtime (crun). */
class ContainerIsolationTest {
    private static ContainerHarness h;
    private static Container a;
    private static Container b;

    @BeforeAll
    static void start() throws Exception {
        h = new ContainerHarness(ContainerHarness.runtime(System.getProperty("airlock.test.runtime", "crun")));
        String tag = "-" + ProcessHandle.current().pid();
        a = h.start(h.spec("iso-a" + tag).memoryMiB(128).pids(64).build());
        b = h.start(h.spec("iso-b" + tag).memoryMiB(128).pids(64).build());
    }

    @AfterAll
    static void stop() {
        if (h != null) {
            h.close();
        }
    }

    @Test
    void memoryHogIsOomKilled() throws Exception {
        long before = a.cgroup().oomKills();
        // 600 MB in a shell variable against a 128 MiB limit; the pipe keeps going until killed
        var r = ContainerHarness.sh(a, "x=$(head -c 600000000 /dev/zero | tr '\\0' a); echo survived ${#x}");
        assertThat(r.out()).doesNotContain("survived");
        assertThat(a.cgroup().oomKills()).isGreaterThan(before);
        assertThat(a.cgroup().memoryMaxUsage().orElseThrow()).isLessThanOrEqualTo(128L << 20);
        // tmpfs pages count too: filling /dev/shm cannot get past the limit either
        var shm = ContainerHarness.sh(a, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=400 2>&1; rm -f /dev/shm/fill");
        assertThat(a.cgroup().oomKills()).isGreaterThan(before);
        assertThat(shm.out()).doesNotContain("400+0 records out");
        // the sandbox is still usable
        assertThat(ContainerHarness.exec(a, "true").code()).isZero();
    }

    @Test
    void directOomKillIsSignal9() throws Exception {
        long before = a.cgroup().oomKills();
        // one process that allocates: the OOM killer picks it, so its own status is SIGKILL
        var r = ContainerHarness.exec(
                a,
                ExecSpec.builder("dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1")
                        .timeout(Duration.ofSeconds(60))
                        .build());
        assertThat(r.status().signal()).isEqualTo(9);
        assertThat(a.cgroup().oomKills()).isGreaterThan(before);
    }

    @Test
    void forkBombHitsThePidsLimit() throws Exception {
        long hits = b.cgroup().pidsLimitHits();
        var r = ContainerHarness.exec(
                b,
                ExecSpec.builder("sh", "-c", "for i in $(seq 200); do sleep 5 & done 2>&1 | tail -3; wait")
                        .timeout(Duration.ofSeconds(30))
                        .build());
        // dash says "Cannot fork", other programs "Resource temporarily unavailable" (EAGAIN)
        assertThat(r.out() + r.err()).containsAnyOf("Cannot fork", "Resource temporarily unavailable");
        assertThat(b.cgroup().pidsLimitHits()).isGreaterThan(hits);
        assertThat(b.cgroup().pidsCurrent().orElseThrow()).isLessThanOrEqualTo(64);
        // a classic recursive bomb, killed by the agent's timeout
        ContainerHarness.exec(
                b,
                ExecSpec.builder("sh", "-c", "f() { f | f & }; f; sleep 3")
                        .timeout(Duration.ofSeconds(5))
                        .build());
        assertThat(b.cgroup().pidsCurrent().orElseThrow()).isLessThanOrEqualTo(64);
        // the host is fine and, once the bomb is gone, so is the container
        assertThat(ProcessHandle.current().isAlive()).isTrue();
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        ContainerHarness.Result ok;
        do {
            ok = ContainerHarness.exec(b, "echo", "alive");
        } while (!ok.out().equals("alive\n") && System.nanoTime() < deadline);
        assertThat(ok.out()).isEqualTo("alive\n");
    }

    @Test
    void hostProcessesAreInvisible() throws Exception {
        var ps = ContainerHarness.exec(a, "ps", "-e", "-o", "pid=,comm=");
        assertThat(ps.code()).isZero();
        // only the agent (PID 1) and ps itself
        assertThat(ps.out().lines().map(String::strip)).anyMatch(l -> l.startsWith("1 "));
        assertThat(ps.out()).doesNotContain("java").doesNotContain("sshd").doesNotContain("init ");
        assertThat(ps.out().lines().count()).isLessThanOrEqualTo(3);
    }

    @Test
    void hostFilesAreInvisible() throws Exception {
        Path marker = Files.createTempFile(Path.of("/tmp"), "airlock-host-marker-", "");
        try {
            var r = ContainerHarness.sh(a, "ls /tmp; test -e " + marker + " && echo VISIBLE; cat /proc/1/mountinfo");
            assertThat(r.out())
                    .doesNotContain("VISIBLE")
                    .doesNotContain(marker.getFileName().toString());
            // (the overlay's options in mountinfo do name the host paths of its layers: names, not access)
        } finally {
            Files.delete(marker);
        }
    }

    @Test
    void otherSandboxesAreInvisible() throws Exception {
        // b runs a recognisable process and writes a recognisable file
        try (GuestChannel ch = b.connect(Duration.ofSeconds(10))) {
            MarkerStream ready = new MarkerStream("ready");
            var sleeper = ch.exec(
                    ExecSpec.builder("sh", "-c", "echo secret > /tmp/b-secret; echo ready; exec sleep 123")
                            .build(),
                    ready,
                    OutputStream.nullOutputStream());
            assertThat(ready.await(Duration.ofSeconds(30))).isTrue();
            // one session per agent at a time: look from b over the same channel
            var out = new java.io.ByteArrayOutputStream();
            ch.exec(ExecSpec.of("ps", "-e", "-o", "args="), out, OutputStream.nullOutputStream())
                    .await();
            assertThat(out.toString(java.nio.charset.StandardCharsets.UTF_8)).contains("sleep 123");
            var look = ContainerHarness.sh(
                    a,
                    "n=b-sec; ps -e -o args=; ls /tmp; find / -xdev -name \"${n}ret\" 2>/dev/null; cat /proc/*/cmdline");
            assertThat(look.out()).doesNotContain("sleep 123").doesNotContain("b-secret");
            sleeper.signal(9);
            ExitStatus st = sleeper.await(Duration.ofSeconds(10));
            assertThat(st.signal()).isEqualTo(9);
        }
    }

    @Test
    void noNetworkRouteOut() throws Exception {
        try (ServerSocket host = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            int port = host.getLocalPort();
            var r = ContainerHarness.sh(
                    a,
                    "ip -o link | awk '{print $2}'; ip route; ip -6 route;"
                            + " curl -sS -m 3 http://127.0.0.1:" + port + "/ 2>&1; echo rc=$?;"
                            // a route lookup only: no packet is sent anywhere
                            + " ip route get 192.0.2.1 2>&1");
            assertThat(r.out().lines().filter(l -> l.endsWith(":"))).containsExactly("lo:");
            assertThat(r.out()).doesNotContain("default");
            assertThat(r.out()).contains("Failed to connect to 127.0.0.1").contains("rc=7");
            assertThat(r.out()).doesNotContain("rc=0").contains("Network is unreachable");
        }
        // loopback inside works: the container has its own 127.0.0.1
        var lo = ContainerHarness.sh(a, "ip -o addr show lo | grep -c 127.0.0.1");
        assertThat(lo.out().strip()).isEqualTo("1");
    }
}
