package dev.airlock.guest;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * A FAKE agent, for tests only. It is the one way to put the host in front of a malicious guest:
 * it answers HELLO like the real agent, waits for the host's first request, and then runs a
 * scripted attack of hand-made bytes. It knows nothing of processes or files.
 */
final class HostileAgent implements AutoCloseable {
    /** What the fake does once the host's first request has arrived. */
    interface Attack {
        void run(Session session) throws IOException;
    }

    /** The fake's end of one connection. */
    static final class Session {
        private final SocketChannel socket;
        private final FrameWriter writer;
        /** The stream of the host's first request (its pending operation). */
        final int requestStream;

        Session(SocketChannel socket, FrameWriter writer, int requestStream) {
            this.socket = socket;
            this.writer = writer;
            this.requestStream = requestStream;
        }

        void send(Frame frame) throws IOException {
            writer.write(frame);
        }

        void raw(byte[] bytes) throws IOException {
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) {
                socket.write(buffer);
            }
        }
    }

    private final ServerSocketChannel server;
    private final UnixDomainSocketAddress address;

    HostileAgent(Path dir) throws IOException {
        address = UnixDomainSocketAddress.of(dir.resolve("hostile.sock"));
        server = ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX);
        server.bind(address);
    }

    /**
     * Serves one connection in the background: HELLO (unless {@code answerHello} is false), the
     * attack, then end-of-stream, then draining until the host hangs up. The future completes when
     * the fake is done with the connection.
     */
    CompletableFuture<Void> serveOne(boolean answerHello, Attack attack) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofVirtual().name("hostile-agent").start(() -> {
            try (SocketChannel socket = server.accept()) {
                FrameReader reader = new FrameReader(socket, FrameType.Direction.TO_AGENT);
                FrameWriter writer = new FrameWriter(socket);
                reader.read(); // the host's HELLO
                if (answerHello) {
                    writer.write(Frame.of(
                            FrameType.AGENT_HELLO,
                            0,
                            ByteBuffer.allocate(12)
                                    .putInt(1)
                                    .putInt(0xF)
                                    .put("fake".getBytes())
                                    .array()));
                    Frame request = reader.read();
                    attack.run(new Session(socket, writer, request.streamId()));
                    socket.shutdownOutput();
                }
                drain(reader);
                done.complete(null);
            } catch (IOException | RuntimeException e) {
                // The host hanging up in the middle of an attack is a fine outcome.
                done.complete(null);
            }
        });
        return done;
    }

    private static void drain(FrameReader reader) {
        try {
            while (true) {
                reader.read();
            }
        } catch (IOException e) {
            // The host closed the connection, which is what the test waits for.
        }
    }

    SocketChannel connect() throws IOException {
        return SocketChannel.open(address);
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
