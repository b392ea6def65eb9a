package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * ACCEPT/CONNECT socket streams and SET_ENV against the real agent on a unix socket. The agent
 * runs on this host here, so its "guest loopback" is the host's: the servers and clients on the
 * other end are plain loopback sockets.
 */
@Timeout(120)
class GuestSocketTest {
    @TempDir
    static Path agentDir;

    private static AgentProcess agent;
    private GuestChannel channel;

    @BeforeAll
    static void startAgent() throws Exception {
        agent = AgentProcess.start(agentDir);
    }

    @AfterAll
    static void stopAgent() throws Exception {
        agent.close();
    }

    @BeforeEach
    void connect() throws Exception {
        channel = agent.open();
    }

    @AfterEach
    void disconnect() throws Exception {
        channel.close();
        assertThat(agent.isAlive()).as("agent alive; log: %s", agent.log()).isTrue();
    }

    private static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private String run(String script) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ExitStatus st = channel.exec(
                        ExecSpec.builder(List.of("bash", "-c", script)).build(), out, out)
                .await();
        assertThat(st.exitCode()).as("exit of %s: %s", script, out).isZero();
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void acceptedConnectionCarriesBytesBothWaysWithHalfClose() throws Exception {
        int port = freePort();
        CompletableFuture<GuestSocket> accepted = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                accepted.complete(channel.accept(port));
            } catch (Exception e) {
                accepted.completeExceptionally(e);
            }
        });
        // The guest client writes, half-closes, then reads the answer to the end.
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        // The listener appears when the agent handles ACCEPT, which may come after this EXEC.
        String script =
                "until exec 3<>/dev/tcp/127.0.0.1/" + port + "; do :; done 2>/dev/null;" + " printf ping >&3; cat <&3";
        Execution client =
                channel.exec(ExecSpec.builder(List.of("bash", "-c", script)).build(), out, out);
        try (GuestSocket s = accepted.get()) {
            byte[] got = s.input().readNBytes(4);
            assertThat(new String(got, StandardCharsets.UTF_8)).isEqualTo("ping");
            s.output().write("pong".getBytes(StandardCharsets.UTF_8));
            s.output().close();
            assertThat(client.await().exitCode()).isZero();
        }
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("pong");
    }

    @Test
    void connectedStreamMovesMegabytesBothWaysUnderFlowControl() throws Exception {
        byte[] payload = new byte[8 << 20];
        new Random(7).nextBytes(payload);
        try (ServerSocket server = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
            // Echo server: sends back everything, then closes.
            // Own threads: the common pool may have a single worker on a small machine.
            java.util.concurrent.ExecutorService threads =
                    java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
            CompletableFuture<Void> echo = CompletableFuture.runAsync(
                    () -> {
                        try (Socket c = server.accept()) {
                            c.getInputStream().transferTo(c.getOutputStream());
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    },
                    threads);
            try (GuestSocket s = channel.connect(server.getLocalPort())) {
                CompletableFuture<byte[]> back = CompletableFuture.supplyAsync(
                        () -> {
                            try (InputStream in = s.input()) {
                                return MessageDigest.getInstance("SHA-256").digest(in.readAllBytes());
                            } catch (Exception e) {
                                throw new IllegalStateException(e);
                            }
                        },
                        threads);
                try (OutputStream o = s.output()) {
                    o.write(payload);
                }
                assertThat(HexFormat.of().formatHex(back.get()))
                        .isEqualTo(HexFormat.of()
                                .formatHex(MessageDigest.getInstance("SHA-256").digest(payload)));
            }
            echo.get();
        }
    }

    @Test
    void connectToAClosedPortIsRefused() throws Exception {
        int port = freePort();
        assertThatThrownBy(() -> channel.connect(port))
                .isInstanceOf(GuestException.class)
                .hasMessageContaining("127.0.0.1:" + port);
    }

    @Test
    void defaultEnvReachesEveryLaterCommandAndRequestEnvWins() throws Exception {
        channel.setDefaultEnv(Map.of("HTTP_PROXY", "http://127.0.0.1:3128", "A_VAR", "default"));
        assertThat(run("echo $HTTP_PROXY")).isEqualTo("http://127.0.0.1:3128\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        channel.exec(
                        ExecSpec.builder(List.of("bash", "-c", "echo $A_VAR"))
                                .env(Map.of("A_VAR", "mine"))
                                .build(),
                        out,
                        out)
                .await(Duration.ofSeconds(30));
        assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("mine\n");
        channel.setDefaultEnv(Map.of());
        assertThat(run("echo \"[$HTTP_PROXY]\"")).isEqualTo("[]\n");
    }
}
