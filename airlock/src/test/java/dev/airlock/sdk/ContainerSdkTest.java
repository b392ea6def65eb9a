package dev.airlock.sdk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.testing.ServedDaemon;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SDK against the real daemon ({@code airlock serve}) on container sandboxes: blocking and
 * streamed execs, files both ways (streamed, larger than a buffer), a terminal, a workspace
 * pulled back into a real git repository, lifecycle events, TCP with the token and refusal
 * without it, and bad input answered with the right error.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ContainerSdkTest {
    private ServedDaemon daemon;
    private Airlock airlock;
    private Sandbox box;

    @BeforeAll
    void setUp() throws IOException {
        daemon = new ServedDaemon("sdk-container");
        airlock = Airlock.connect(daemon.socket());
        box = airlock.sandboxes()
                .create(SandboxSpec.builder()
                        .name("box")
                        .runtime("container")
                        .memoryMiB(256)
                        .env("GREETING", "hello")
                        .build());
    }

    @AfterAll
    void tearDown() {
        if (airlock != null) {
            airlock.close();
        }
        if (daemon != null) {
            daemon.close();
        }
    }

    @Test
    void createdSandboxIsRunningAndListed() {
        assertThat(box.info().running()).isTrue();
        assertThat(box.info().runtime()).isEqualTo("container");
        assertThat(airlock.sandboxes().list()).extracting(Sandbox::name).contains("box");
        assertThat(airlock.sandboxes().get("box").id()).isEqualTo(box.id());
    }

    @Test
    void aBlockingExecReturnsOutputExitCodeAndEnvironment() {
        ExecResult r = box.exec(Command.builder("sh", "-c", "echo $GREETING $WHO; echo oops >&2; cat; exit 3")
                .env("WHO", "world")
                .stdin("from stdin")
                .build());
        assertThat(r.stdoutText()).isEqualTo("hello world\nfrom stdin");
        assertThat(r.stderrText()).isEqualTo("oops\n");
        assertThat(r.exitCode()).isEqualTo(3);
        assertThat(r.status()).isEqualTo(3);

        assertThat(box.exec(Command.builder("pwd").cwd("/tmp").build()).stdoutText())
                .isEqualTo("/tmp\n");
        // A command that ends at once may end its exchange before the SDK has sent stdin's end:
        // that is no error (the bench met it one time in a dozen).
        for (int i = 0; i < 40; i++) {
            assertThat(box.exec(Command.of("true")).exitCode()).isZero();
        }
        ExecResult slow = box.exec(
                Command.builder("sleep", "60").timeout(Duration.ofMillis(500)).build());
        assertThat(slow.timedOut()).isTrue();
    }

    @Test
    void aStreamedExecDeliversOutputWhileTheCommandRuns() throws Exception {
        BlockingQueue<String> out = new LinkedBlockingQueue<>();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        OutputHandler handler = new OutputHandler() {
            @Override
            public void stdout(byte[] bytes) {
                out.add(new String(bytes, StandardCharsets.UTF_8));
            }

            @Override
            public void stderr(byte[] bytes) {
                synchronized (err) {
                    err.writeBytes(bytes);
                }
            }
        };
        try (Execution ex = box.exec(
                Command.of("sh", "-c", "echo ready; read line; echo got $line; echo bye >&2; exit 5"), handler)) {
            assertThat(ex.pid()).isPositive();
            // The command waits for a line of stdin: its first output came while it still runs.
            assertThat(out.poll(60, TimeUnit.SECONDS)).isEqualTo("ready\n");
            assertThat(ex.isDone()).isFalse();
            ex.stdin().write("it\n".getBytes(StandardCharsets.UTF_8));
            ex.closeStdin();
            ExitStatus st = ex.await(Duration.ofSeconds(60));
            assertThat(st.exitCode()).isEqualTo(5);
            assertThat(String.join("", out)).isEqualTo("got it\n");
            synchronized (err) {
                assertThat(err.toString(StandardCharsets.UTF_8)).isEqualTo("bye\n");
            }
        }

        try (Execution ex = box.exec(Command.of("sleep", "600"), OutputHandler.discard())) {
            ex.signal("TERM");
            ExitStatus st = ex.await(Duration.ofSeconds(60));
            assertThat(st.signal()).isEqualTo(15);
            assertThat(st.status()).isEqualTo(143);
        }
    }

    @Test
    void filesAreWrittenReadListedMovedAndRemoved() throws Exception {
        SandboxFiles files = box.files();
        assertThat(files.mkdirs("/srv/sdk/inner").isDirectory()).isTrue();
        FileInfo written = files.write("/srv/sdk/inner/a.txt", "alpha\n");
        assertThat(written.isFile()).isTrue();
        assertThat(written.size()).isEqualTo(6);
        assertThat(written.mode()).isEqualTo(0644);
        assertThat(files.readString("/srv/sdk/inner/a.txt")).isEqualTo("alpha\n");
        assertThat(files.write(
                                "/srv/sdk/run.sh",
                                new java.io.ByteArrayInputStream(
                                        "#!/bin/sh\necho ran\n".getBytes(StandardCharsets.UTF_8)),
                                0755)
                        .mode())
                .isEqualTo(0755);
        assertThat(box.exec(Command.of("/srv/sdk/run.sh")).stdoutText()).isEqualTo("ran\n");

        FileInfo moved = files.move("/srv/sdk/inner/a.txt", "/srv/sdk/b.txt");
        assertThat(moved.path()).isEqualTo("/srv/sdk/b.txt");
        assertThat(files.exists("/srv/sdk/inner/a.txt")).isFalse();
        assertThat(files.list("/srv/sdk"))
                .extracting(f -> f.name() + ":" + f.type())
                .containsExactly("b.txt:file", "inner:directory", "run.sh:file");
        try (InputStream in = files.open("/srv/sdk/b.txt")) {
            assertThat(new String(in.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("alpha\n");
        }
        assertThatThrownBy(() -> files.remove("/srv/sdk"))
                .isInstanceOfSatisfying(
                        AirlockException.class, e -> assertThat(e.kind()).isEqualTo("CONFLICT"));
        files.removeAll("/srv/sdk");
        assertThat(files.exists("/srv/sdk")).isFalse();
    }

    @Test
    void aLargeFileIsStreamedBothWays(@TempDir Path tmp) throws Exception {
        Path big = tmp.resolve("big.bin");
        byte[] block = new byte[1 << 20];
        SecureRandom random = new SecureRandom();
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        try (OutputStream o = Files.newOutputStream(big)) {
            for (int i = 0; i < 40; i++) {
                random.nextBytes(block);
                sha.update(block);
                o.write(block);
            }
        }
        String want = HexFormat.of().formatHex(sha.digest());
        assertThat(box.files().upload(big, "/root/big.bin").size()).isEqualTo(40L << 20);
        assertThat(box.sh("sha256sum /root/big.bin").stdoutText()).startsWith(want);
        Path back = tmp.resolve("back.bin");
        assertThat(box.files().download("/root/big.bin", back)).isEqualTo(40L << 20);
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(back))))
                .isEqualTo(want);
        box.files().remove("/root/big.bin");
    }

    @Test
    void aTerminalRunsAShellThatSeesItsSize() throws Exception {
        try (Terminal t = box.terminal(Command.of("sh"), 30, 100)) {
            t.resize(40, 120);
            t.input().write("stty size; exit 3\n".getBytes(StandardCharsets.UTF_8));
            // The output ends when the shell does.
            String screen = new String(t.output().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(screen).contains("40 120");
            assertThat(t.await(Duration.ofSeconds(60)).exitCode()).isEqualTo(3);
        }
    }

    @Test
    void aWorkspacesCommitsArePulledIntoTheHostRepository(@TempDir Path repo) throws Exception {
        git(repo, "init", "-q", "-b", "main");
        Files.writeString(repo.resolve("a.txt"), "alpha\n");
        git(repo, "add", "-A");
        git(repo, "-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "initial");
        Sandbox ws = airlock.sandboxes()
                .createWorkspace(
                        repo,
                        SandboxSpec.builder()
                                .name("ws")
                                .runtime("container")
                                .memoryMiB(256)
                                .build(),
                        false);
        try {
            assertThat(ws.files().readString("/workspace/a.txt")).isEqualTo("alpha\n");
            ExecResult work = ws.exec(Command.builder(
                            "sh",
                            "-c",
                            "echo beta > b.txt && git add b.txt"
                                    + " && git -c user.name=Agent -c user.email=agent@example.com commit -q -m 'from the sandbox'")
                    .cwd("/workspace")
                    .build());
            assertThat(work.exitCode()).as(work.stderrText()).isZero();
            assertThat(ws.diff()).contains("+beta");
            PullResult pulled = ws.pull();
            assertThat(pulled.branch()).isEqualTo("airlock/ws");
            assertThat(pulled.commits()).isEqualTo(1);
            assertThat(git(repo, "log", "--format=%s", "main..airlock/ws")).isEqualTo("from the sandbox\n");
            assertThat(git(repo, "show", "airlock/ws:b.txt")).isEqualTo("beta\n");
        } finally {
            ws.remove();
        }
    }

    @Test
    void eventsFollowASandboxsLife() throws Exception {
        try (EventStream events = airlock.events()) {
            Sandbox ev = airlock.sandboxes()
                    .create(SandboxSpec.builder()
                            .name("ev")
                            .runtime("container")
                            .memoryMiB(256)
                            .build());
            ev.stop();
            ev.remove();
            List<String> seen = new ArrayList<>();
            while (seen.size() < 4) {
                SandboxEvent e = events.next(Duration.ofSeconds(60));
                if (e == null) {
                    throw new AssertionError("no event within 60 s; so far: " + seen);
                }
                if (e.name().equals("ev")) {
                    seen.add(e.type() + " " + e.state());
                }
            }
            assertThat(seen).containsExactly("created CREATED", "state RUNNING", "state STOPPED", "removed STOPPED");
        }
    }

    @Test
    void tcpWorksWithTheTokenAndRefusesAWrongOne() {
        try (Airlock tcp = Airlock.connect(daemon.url(), daemon.token())) {
            assertThat(tcp.sandboxes().get("box").sh("echo over tcp").stdoutText())
                    .isEqualTo("over tcp\n");
            assertThat(tcp.sandboxes().get("box").files().readString("/etc/hostname"))
                    .isNotEmpty();
        }
        try (Airlock wrong = Airlock.connect(daemon.url(), "not-the-token")) {
            assertThatThrownBy(() -> wrong.sandboxes().list()).isInstanceOfSatisfying(AirlockException.class, e -> {
                assertThat(e.kind()).isEqualTo("UNAUTHORIZED");
                assertThat(e.status()).isEqualTo(401);
            });
            assertThatThrownBy(() -> wrong.sandboxes().get("box").remove()).isInstanceOf(AirlockException.class);
        }
        assertThat(airlock.sandboxes().get("box").info().running()).isTrue();
        assertThatThrownBy(() -> Airlock.connect(URI.create("http://127.0.0.1:1"), " "))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("token");
    }

    @Test
    void badInputGetsAClearError() {
        assertThatThrownBy(() -> airlock.sandboxes().get("nope")).isInstanceOfSatisfying(AirlockException.class, e -> {
            assertThat(e.kind()).isEqualTo("NOT_FOUND");
            assertThat(e.status()).isEqualTo(404);
            assertThat(e.getMessage()).contains("no such sandbox 'nope'");
        });
        assertThatThrownBy(() -> box.files().readString("etc/passwd"))
                .isInstanceOfSatisfying(AirlockException.class, e -> {
                    assertThat(e.kind()).isEqualTo("INVALID");
                    assertThat(e.getMessage()).contains("must be absolute");
                });
        assertThatThrownBy(() -> box.files().stat("/tmp/../../etc"))
                .isInstanceOfSatisfying(
                        AirlockException.class, e -> assertThat(e.getMessage()).contains(".."));
        assertThatThrownBy(() -> box.exec(Command.of("no-such-program")))
                .isInstanceOfSatisfying(
                        AirlockException.class, e -> assertThat(e.getMessage()).contains("command not found"));
        int before = airlock.sandboxes().list().size();
        assertThatThrownBy(() -> airlock.sandboxes()
                        .create(SandboxSpec.builder()
                                .name("bad")
                                .runtime("no-such-runtime")
                                .build()))
                .isInstanceOfSatisfying(
                        AirlockException.class, e -> assertThat(e.kind()).isEqualTo("INVALID"));
        assertThat(airlock.sandboxes().list()).hasSize(before);
        assertThatThrownBy(Command::of).isInstanceOf(IllegalArgumentException.class);
        try (Airlock nowhere = Airlock.connect(daemon.socket().resolveSibling("no-such.sock"))) {
            assertThatThrownBy(nowhere::health).isInstanceOfSatisfying(AirlockException.class, e -> {
                assertThat(e.kind()).isEqualTo("UNREACHABLE");
                assertThat(e.getMessage()).contains("is it running?");
            });
        }
        Airlock closed = Airlock.connect(daemon.socket());
        closed.close();
        assertThatThrownBy(closed::health).isInstanceOf(IllegalStateException.class);
    }

    /** Runs git in {@code repo}; its output. */
    private static String git(Path repo, String... args) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>(List.of("git", "-C", repo.toString()));
        argv.addAll(List.of(args));
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("git %s: %s", String.join(" ", args), out).isZero();
        return out;
    }
}
