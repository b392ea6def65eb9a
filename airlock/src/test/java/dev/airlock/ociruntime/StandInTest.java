package dev.airlock.ociruntime;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The C stand-in (guest/standin/standin.c) against {@link FakeDaemon}, a named fake of the
 * daemon's session route: what a real daemon and agent never send (malformed frames, broken
 * chunking) can only come from a fake. The stand-in with the real daemon, agent and clients is
 * covered by PodmanRuntimeTest and ContainerdRuntimeTest.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class StandInTest {
    private static final int HELLO = 0x01;
    private static final int EXEC = 0x10;
    private static final int STDIN = 0x11;
    private static final int SIGNAL = 0x12;
    private static final int CREDIT = 0x14;
    private static final int AGENT_HELLO = 0x81;
    private static final int STARTED = 0x83;
    private static final int STDOUT = 0x84;
    private static final int STDERR = 0x85;
    private static final int EXIT = 0x86;
    private static final int ERROR = 0xE0;

    @TempDir
    Path tmp;

    private Path dir;
    private FakeDaemon daemon;

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createDirectory(tmp.resolve("container"));
        StandIn.writeRequest(dir, new ProcessSpec(List.of("echo", "hi"), Map.of("A", "1"), "/", "0:0", false, null));
        daemon = new FakeDaemon(tmp.resolve("d.sock"));
    }

    @AfterEach
    void tearDown() throws IOException {
        daemon.close();
    }

    private Process standIn(String... extra) throws IOException {
        List<String> cmd = new java.util.ArrayList<>(List.of(
                StandIn.binary(AirlockDirs.fromEnvironment()).toString(),
                dir.toString(),
                "box-1",
                daemon.socket.toString()));
        cmd.addAll(List.of(extra));
        return new ProcessBuilder(cmd)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(tmp.resolve("out").toFile())
                .redirectError(tmp.resolve("err").toFile())
                .start();
    }

    /** The stand-in's session once it sent its EXEC (after the HTTP head and the HELLOs). */
    private FakeDaemon.Session sessionAtExec() throws IOException {
        FakeDaemon.Session s = daemon.accept();
        s.hello();
        assertThat(s.read().type).isEqualTo(EXEC);
        return s;
    }

    private static void assertExits(Process p, int status) throws InterruptedException {
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isEqualTo(status);
    }

    private String err() throws IOException {
        return Files.readString(tmp.resolve("err"));
    }

    @Test
    void runsTheRequestRelaysOutputAndExitsWithTheStatus() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = daemon.accept();
        assertThat(s.requestLine).isEqualTo("POST /v1/sandboxes/box-1/session HTTP/1.1");
        s.hello();
        FakeDaemon.Frame exec = s.read();
        assertThat(exec.type).isEqualTo(EXEC);
        // The payload airlock-runtime wrote, as it wrote it (no terminal: nothing added).
        assertThat(exec.payload).isEqualTo(Files.readAllBytes(dir.resolve(StandIn.REQUEST)));
        s.started();
        s.send(STDOUT, 1, 0, "out\n".getBytes(StandardCharsets.UTF_8));
        s.send(STDERR, 1, 0, "err\n".getBytes(StandardCharsets.UTF_8));
        // Back: the window for both outputs, and the end of its stdin (/dev/null), in either order.
        List<FakeDaemon.Frame> back = List.of(s.read(), s.read(), s.read());
        assertThat(back).filteredOn(f -> f.type == CREDIT).hasSize(2);
        assertThat(back).filteredOn(f -> f.type == STDIN && f.flags == 1).hasSize(1);
        s.exit(3, 0);
        assertExits(p, 3);
        assertThat(Files.readString(tmp.resolve("out"))).isEqualTo("out\n");
        assertThat(err()).isEqualTo("err\n");
    }

    @Test
    void forwardsSignalsAndEndsWithTheSignalStatus() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = sessionAtExec();
        s.started();
        assertThat(s.read().type).isEqualTo(STDIN); // stdin is /dev/null here: at once EOF
        p.destroy(); // SIGTERM
        FakeDaemon.Frame sig = s.read();
        assertThat(sig.type).isEqualTo(SIGNAL);
        assertThat(ByteBuffer.wrap(sig.payload).getInt()).isEqualTo(15);
        s.exit(-1, 15);
        assertExits(p, 143);
    }

    @Test
    void aSignalBeforeStartEndsItAndTheProcessNeverRuns() throws Exception {
        new ProcessBuilder("mkfifo", dir.resolve("start.fifo").toString())
                .start()
                .waitFor();
        Process p = standIn("--wait-start");
        FakeDaemon.Session s = daemon.accept();
        s.hello();
        // Now blocked opening the FIFO: SIGTERM ends it as it would have ended the process.
        p.destroy();
        assertExits(p, 143);
        assertThat(s.readOrEnd()).as("no EXEC was sent").isNull();
    }

    @Test
    void detachedItIsNotTheStartersChild() throws Exception {
        Process first = standIn("--detach");
        assertThat(first.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(first.exitValue()).isZero();
        long pid = Long.parseLong(Files.readString(dir.resolve(StandIn.PID)).strip());
        ProcessHandle standIn = ProcessHandle.of(pid).orElseThrow();
        assertThat(ProcessHandle.current().children().map(ProcessHandle::pid)).doesNotContain(pid);
        FakeDaemon.Session s = sessionAtExec();
        s.exit(4, 0);
        standIn.onExit().get(10, TimeUnit.SECONDS);
    }

    @Test
    void aMissingProgramIs127() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = sessionAtExec();
        byte[] msg = "echo: not found".getBytes(StandardCharsets.UTF_8);
        s.send(
                ERROR,
                1,
                0,
                ByteBuffer.allocate(4 + msg.length).putInt(2).put(msg).array());
        assertExits(p, 127);
        assertThat(err()).contains("echo: not found");
    }

    @Test
    void aMalformedFrameEndsItWithAClearErrorAndKillsTheProcess() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = sessionAtExec();
        s.started();
        // A header announcing 16 MiB of payload: over the protocol's 64 KiB.
        s.sendRaw(ByteBuffer.allocate(12)
                .putInt(16 << 20)
                .put((byte) STDOUT)
                .put((byte) 0)
                .putShort((short) 0)
                .putInt(1)
                .array());
        assertExits(p, 137);
        assertThat(err())
                .contains("malformed data from the daemon's session")
                .contains("over the protocol's 65536")
                .doesNotContain("Segmentation");
        // It asked the guest to kill the process, then said why on stream 0, as the protocol asks.
        List<FakeDaemon.Frame> last = s.readAll();
        assertThat(last)
                .anyMatch(f -> f.type == SIGNAL && ByteBuffer.wrap(f.payload).getInt() == 9);
        assertThat(last).anyMatch(f -> f.type == ERROR && f.stream == 0);
    }

    @Test
    void aBrokenChunkIsAClearError() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = daemon.accept();
        s.hello();
        s.out.write("zz\r\n".getBytes(StandardCharsets.US_ASCII));
        s.out.flush();
        assertExits(p, 137);
        assertThat(err()).contains("a bad chunk size");
    }

    @Test
    void aRefusedSessionSaysWhy() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = daemon.accept(404, "{\"error\":\"no sandbox named box-1\",\"kind\":\"NOT_FOUND\"}");
        assertThat(s.requestLine).startsWith("POST");
        assertExits(p, 137);
        assertThat(err()).contains("HTTP 404").contains("no sandbox named box-1");
    }

    /**
     * Its memory while it relays: the proportional set size (shared pages divided among their
     * users) after 8 MiB of output went through it, as the kernel counts it.
     */
    @Test
    void itsMemoryIsSmall() throws Exception {
        Process p = standIn();
        FakeDaemon.Session s = sessionAtExec();
        s.started();
        assertThat(s.read().type).isEqualTo(STDIN);
        byte[] chunk = new byte[65536];
        long credited = 0;
        for (int i = 0; i < 128; i++) {
            s.send(STDOUT, 1, 0, chunk);
            if (i % 4 == 3) {
                while (credited < (i + 1) * 65536L) {
                    FakeDaemon.Frame f = s.read();
                    assertThat(f.type).isEqualTo(CREDIT);
                    credited += ByteBuffer.wrap(f.payload).getInt();
                }
            }
        }
        long pssKiB = pss(p.pid());
        System.out.println("stand-in PSS after 8 MiB relayed: " + pssKiB + " KiB");
        assertThat(Files.size(tmp.resolve("out"))).isEqualTo(128L * 65536);
        // ~520-850 KiB measured here: alone it has the program's pages to itself (RSS ~850 KiB);
        // PSS shrinks as more stand-ins share them. The JVM stand-in took 49.6 MB.
        assertThat(pssKiB).as("PSS of the stand-in in KiB").isLessThan(1536);
        s.exit(0, 0);
        assertExits(p, 0);
    }

    static long pss(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "smaps_rollup"))) {
            if (line.startsWith("Pss:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        }
        throw new IOException("no Pss line in /proc/" + pid + "/smaps_rollup");
    }

    /**
     * A fake of the daemon's {@code POST /v1/sandboxes/{ref}/session}: it answers the HTTP head,
     * the sandbox's JSON line and the agent's HELLO as the daemon does, and then sends whatever a
     * test gives it, well formed or not. One frame per chunk both ways, as the stand-in writes them.
     */
    static final class FakeDaemon implements AutoCloseable {
        final Path socket;
        private final ServerSocketChannel server;

        record Frame(int type, int flags, int stream, byte[] payload) {}

        FakeDaemon(Path socket) throws IOException {
            this.socket = socket;
            server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
            server.bind(UnixDomainSocketAddress.of(socket));
        }

        Session accept() throws IOException {
            return accept(200, null);
        }

        Session accept(int status, @Nullable String errorBody) throws IOException {
            CompletableFuture<SocketChannel> ch = CompletableFuture.supplyAsync(() -> {
                try {
                    return server.accept();
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            try {
                return new Session(ch.get(10, TimeUnit.SECONDS), status, errorBody);
            } catch (Exception e) {
                throw new IOException("the stand-in did not connect", e);
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
        }

        static final class Session {
            final String requestLine;
            final InputStream in;
            final OutputStream out;

            Session(SocketChannel ch, int status, @Nullable String errorBody) throws IOException {
                in = Channels.newInputStream(ch);
                out = Channels.newOutputStream(ch);
                requestLine = line();
                while (!line().isEmpty()) {
                    // the rest of the head
                }
                if (status != 200) {
                    byte[] b = String.valueOf(errorBody).getBytes(StandardCharsets.UTF_8);
                    out.write(("HTTP/1.1 " + status + " Not Found\r\nContent-Type: application/json\r\n"
                                    + "Content-Length: " + b.length + "\r\n\r\n")
                            .getBytes(StandardCharsets.US_ASCII));
                    out.write(b);
                    out.flush();
                    return;
                }
                out.write("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.airlock.guest-frames\r\n"
                        .concat("Transfer-Encoding: chunked\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                chunk("{\"name\":\"box-1\",\"state\":\"RUNNING\"}\n".getBytes(StandardCharsets.UTF_8));
            }

            void hello() throws IOException {
                Frame h = read();
                assertThat(h.type).isEqualTo(HELLO);
                byte[] v = "fake".getBytes(StandardCharsets.UTF_8);
                send(
                        AGENT_HELLO,
                        0,
                        0,
                        ByteBuffer.allocate(8 + v.length)
                                .putInt(1)
                                .putInt(0xff)
                                .put(v)
                                .array());
            }

            /** STARTED for stream 1: the process runs, as pid 42. */
            void started() throws IOException {
                send(STARTED, 1, 0, ByteBuffer.allocate(4).putInt(42).array());
            }

            /** EXIT for stream 1: the process's exit code, or -1 and the signal that ended it. */
            void exit(int code, int signal) throws IOException {
                send(
                        EXIT,
                        1,
                        0,
                        ByteBuffer.allocate(9)
                                .putInt(code)
                                .putInt(signal)
                                .put((byte) 0)
                                .array());
            }

            void send(int type, int stream, int flags, byte[] payload) throws IOException {
                sendRaw(ByteBuffer.allocate(12 + payload.length)
                        .putInt(payload.length)
                        .put((byte) type)
                        .put((byte) flags)
                        .putShort((short) 0)
                        .putInt(stream)
                        .put(payload)
                        .array());
            }

            void sendRaw(byte[] bytes) throws IOException {
                chunk(bytes);
            }

            /** One chunk in one write: the stand-in may end as soon as it has a frame, before a later write. */
            private void chunk(byte[] b) throws IOException {
                ByteArrayOutputStream c = new ByteArrayOutputStream();
                c.write((Integer.toHexString(b.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                c.write(b);
                c.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                out.write(c.toByteArray());
                out.flush();
            }

            Frame read() throws IOException {
                Frame f = readOrEnd();
                if (f == null) {
                    throw new EOFException("the stand-in ended the session");
                }
                return f;
            }

            /** The next frame, or null when the stand-in hung up. */
            @Nullable
            Frame readOrEnd() throws IOException {
                String size;
                try {
                    size = line();
                } catch (EOFException | java.net.SocketException e) {
                    // ended; a reset when it exited with bytes of ours unread
                    return null;
                }
                int n = Integer.parseInt(size, 16);
                byte[] b = in.readNBytes(n);
                if (b.length < n || !line().isEmpty()) {
                    throw new IOException("a torn chunk from the stand-in");
                }
                ByteBuffer h = ByteBuffer.wrap(b);
                int len = h.getInt();
                int type = h.get() & 0xff;
                int flags = h.get() & 0xff;
                h.getShort();
                int stream = h.getInt();
                assertThat(len).isEqualTo(n - 12);
                byte[] payload = new byte[len];
                h.get(payload);
                return new Frame(type, flags, stream, payload);
            }

            List<Frame> readAll() throws IOException {
                List<Frame> all = new java.util.ArrayList<>();
                for (Frame f; (f = readOrEnd()) != null; ) {
                    all.add(f);
                }
                return all;
            }

            private String line() throws IOException {
                ByteArrayOutputStream b = new ByteArrayOutputStream();
                for (int c; (c = in.read()) != '\n'; ) {
                    if (c < 0) {
                        throw new EOFException();
                    }
                    b.write(c);
                }
                String s = b.toString(StandardCharsets.US_ASCII);
                return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
            }
        }
    }
}
