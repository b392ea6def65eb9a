package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An agent reached through a VMM's hybrid vsock socket (Firecracker, Cloud Hypervisor), which
 * no VMM on this host provides: a STAND-IN for the VMM's side of the handshake reads
 * {@code CONNECT <port>}, answers {@code OK <host port>} and then relays bytes to the real
 * agent. The host side under test is real: the endpoint, the guest protocol, the agent.
 */
class AgentEndpointTest {

    @Test
    void aSessionRunsThroughTheHybridVsockHandshake(@TempDir Path dir) throws Exception {
        try (AgentProcess agent = AgentProcess.start(dir);
                ServerSocketChannel vmm = listen(dir.resolve("vsock.sock"))) {
            Thread.ofVirtual().start(() -> standInVmm(vmm, agent, "OK 1073741824\n"));
            try (GuestChannel ch = GuestChannel.connect(
                    new AgentEndpoint.HybridVsock(dir.resolve("vsock.sock"), 1024), Duration.ofSeconds(10))) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                ExitStatus st = ch.exec(ExecSpec.of("echo", "through vsock"), out, OutputStream.nullOutputStream())
                        .await();
                assertThat(st.exitCode()).isZero();
                assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo("through vsock\n");
            }
        }
    }

    @Test
    void aRefusedPortIsAClearError(@TempDir Path dir) throws Exception {
        try (AgentProcess agent = AgentProcess.start(dir);
                ServerSocketChannel vmm = listen(dir.resolve("vsock.sock"))) {
            Thread.ofVirtual().start(() -> standInVmm(vmm, agent, "NO such port\n"));
            assertThatThrownBy(() -> GuestChannel.connect(
                            new AgentEndpoint.HybridVsock(dir.resolve("vsock.sock"), 1024), Duration.ofSeconds(10)))
                    .isInstanceOf(IOException.class)
                    .hasMessageContaining("refused vsock port 1024")
                    .hasMessageContaining("NO such port");
        }
    }

    private static ServerSocketChannel listen(Path socket) throws IOException {
        Files.deleteIfExists(socket);
        ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        s.bind(UnixDomainSocketAddress.of(socket));
        return s;
    }

    /** The VMM's half: one connection, the handshake, then bytes both ways to the agent. */
    private static void standInVmm(ServerSocketChannel vmm, AgentProcess agent, String answer) {
        try (SocketChannel host = vmm.accept()) {
            StringBuilder line = new StringBuilder();
            ByteBuffer one = ByteBuffer.allocate(1);
            while (true) {
                one.clear();
                if (host.read(one) < 0) {
                    return;
                }
                char c = (char) one.get(0);
                if (c == '\n') {
                    break;
                }
                line.append(c);
            }
            assertThat(line.toString()).isEqualTo("CONNECT 1024");
            host.write(ByteBuffer.wrap(answer.getBytes(StandardCharsets.US_ASCII)));
            if (!answer.startsWith("OK ")) {
                return;
            }
            try (SocketChannel guest = agent.connect()) {
                Thread toGuest = Thread.ofVirtual().start(() -> relay(host, guest));
                relay(guest, host);
                toGuest.join();
            }
        } catch (IOException | InterruptedException e) {
            // the test ended the session
        }
    }

    private static void relay(SocketChannel from, SocketChannel to) {
        ByteBuffer buf = ByteBuffer.allocate(64 << 10);
        try {
            while (from.read(buf) >= 0) {
                buf.flip();
                while (buf.hasRemaining()) {
                    to.write(buf);
                }
                buf.clear();
            }
            to.shutdownOutput();
        } catch (IOException e) {
            // one side went away
        }
    }
}
