package dev.airlock.guest;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Where the host reaches a sandbox's agent: a byte stream that the guest protocol then runs
 * over. Each VMM or runtime exposes the agent its own way; this is the one seam they differ at,
 * so the engine and the protocol code never ask which one it is.
 */
public interface AgentEndpoint {

    /** Opens a new stream to the agent, ready for the guest protocol's HELLO. */
    SocketChannel open() throws IOException;

    /** For messages: where the agent is reached. */
    String describe();

    /**
     * A unix socket that is the agent's stream itself: QEMU's virtio-serial chardev, a
     * container's bind-mounted socket, the daemon's shared agent socket.
     */
    record UnixSocket(Path path) implements AgentEndpoint {
        @Override
        public SocketChannel open() throws IOException {
            SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
                return ch;
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }

        @Override
        public String describe() {
            return path.toString();
        }
    }

    /**
     * A guest vsock port behind a VMM's "hybrid vsock" unix socket (Firecracker, Cloud
     * Hypervisor): the host connects to the socket, writes {@code CONNECT <port>\n}, and the VMM
     * answers {@code OK <host port>\n} before the stream belongs to the guest's listener.
     */
    record HybridVsock(Path path, int port) implements AgentEndpoint {
        /** The answer line is short; anything longer is not a VMM speaking this handshake. */
        private static final int MAX_ANSWER = 64;

        public HybridVsock {
            if (port <= 0) {
                throw new IllegalArgumentException("a vsock port is positive, not " + port);
            }
        }

        @Override
        public SocketChannel open() throws IOException {
            SocketChannel ch = new UnixSocket(path).open();
            try {
                ch.write(ByteBuffer.wrap(("CONNECT " + port + "\n").getBytes(StandardCharsets.US_ASCII)));
                String answer = readLine(ch);
                if (!answer.startsWith("OK ")) {
                    throw new IOException(
                            "the VMM refused vsock port " + port + " at " + path + ": '" + answer.strip() + "'");
                }
                return ch;
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }

        /** Reads the handshake's answer byte by byte: nothing after its newline is the VMM's. */
        private static String readLine(SocketChannel ch) throws IOException {
            StringBuilder line = new StringBuilder();
            ByteBuffer one = ByteBuffer.allocate(1);
            while (line.length() < MAX_ANSWER) {
                one.clear();
                if (ch.read(one) < 0) {
                    throw new IOException("the VMM closed the vsock socket during the handshake");
                }
                char c = (char) (one.get(0) & 0xff);
                if (c == '\n') {
                    return line.toString();
                }
                line.append(c);
            }
            throw new IOException("the VMM's vsock handshake answer is longer than " + MAX_ANSWER + " bytes");
        }

        @Override
        public String describe() {
            return path + " (vsock port " + port + ")";
        }
    }
}
