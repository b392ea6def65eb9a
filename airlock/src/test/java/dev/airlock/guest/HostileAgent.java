package dev.airlock.guest;

import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A FAKE agent, for tests only. It is the one way to put the host in front of a malicious guest:
 * it answers HELLO like the real agent, waits for the host's first request, and then runs a
 * scripted attack of hand-made bytes. It knows nothing of processes or files. Public, with a few
 * ready-made attacks ({@link #stalls}, {@link #servesEndlessFiles}), for the host code of other
 * packages that calls a guest (the egress proxy's CA install).
 */
public final class HostileAgent implements AutoCloseable {
    /** What the fake does once the host's first request has arrived. */
    public interface Attack {
        void run(Session session) throws IOException;
    }

    /** The fake's end of one connection. */
    public static final class Session {
        private final SocketChannel socket;
        private final FrameWriter writer;
        private final FrameReader reader;
        final Frame request;
        /** The stream of the host's first request (its pending operation). */
        final int requestStream;

        Session(SocketChannel socket, FrameWriter writer, FrameReader reader, Frame request) {
            this.socket = socket;
            this.writer = writer;
            this.reader = reader;
            this.request = request;
            this.requestStream = request.streamId();
        }

        /** The host's next frame. */
        Frame read() throws IOException {
            return reader.read();
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

    public HostileAgent(Path dir) throws IOException {
        address = UnixDomainSocketAddress.of(dir.resolve("hostile.sock"));
        server = ServerSocketChannel.open(java.net.StandardProtocolFamily.UNIX);
        server.bind(address);
    }

    /**
     * Serves one connection in the background: HELLO (unless {@code answerHello} is false), the
     * attack, then end-of-stream, then draining until the host hangs up. The future completes when
     * the fake is done with the connection.
     */
    public CompletableFuture<Void> serveOne(boolean answerHello, Attack attack) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofVirtual().name("hostile-agent").start(() -> {
            try (SocketChannel socket = server.accept()) {
                FrameReader reader = new FrameReader(socket, FrameType.Direction.TO_AGENT);
                FrameWriter writer = new FrameWriter(socket);
                reader.read(); // the host's HELLO
                if (answerHello) {
                    writer.write(agentHello());
                    Frame request = reader.read();
                    attack.run(new Session(socket, writer, reader, request));
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

    /** The fake's HELLO: protocol 1, exec, pty, files, shutdown and identity, version "fake". */
    static Frame agentHello() {
        return Frame.of(
                FrameType.AGENT_HELLO,
                0,
                ByteBuffer.allocate(12)
                        .putInt(1)
                        .putInt(0x1F)
                        .put("fake".getBytes())
                        .array());
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

    public SocketChannel connect() throws IOException {
        return SocketChannel.open(address);
    }

    @Override
    public void close() throws IOException {
        server.close();
    }

    /** Answers nothing at all until {@code release} opens (the test's end). */
    public static Attack stalls(CountDownLatch release) {
        return s -> {
            try {
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        };
    }

    /**
     * Plays a guest whose files never end: a FILE_WRITE is taken and committed as the real agent
     * does; a FILE_READ is answered with zero bytes as fast as the host's credit allows, up to
     * {@code bytes} bytes and then END (so that a host without a cap would finish, with all of
     * it in memory). Counts what it sent into {@code sent}.
     */
    public static Attack servesEndlessFiles(long bytes, AtomicLong sent) {
        return s -> {
            Frame frame = s.request;
            while (true) {
                switch (frame.type()) {
                    case FILE_WRITE -> commitWrite(s, frame.streamId());
                    case FILE_READ -> {
                        streamZeros(s, frame.streamId(), bytes, sent);
                        return;
                    }
                    default -> {}
                }
                frame = s.read();
            }
        };
    }

    /**
     * Plays a guest whose commands never end: file writes are committed as the real agent does;
     * every EXEC starts (STARTED) and then either prints zeros on stdout as fast as the host's
     * credit allows ({@code floods}) or says nothing, until the host gives up on the stream with
     * ERROR. Counts what it printed into {@code printed} and every frame type the host sent on
     * an exec stream into {@code heard} (a SIGNAL, the ERROR); {@code gaveUp} opens at the ERROR.
     */
    public static Attack execsForever(
            boolean floods, AtomicLong printed, java.util.Set<FrameType> heard, CountDownLatch gaveUp) {
        return s -> {
            Frame frame = s.request;
            while (true) {
                switch (frame.type()) {
                    case FILE_WRITE -> commitWrite(s, frame.streamId());
                    case EXEC -> {
                        runForever(s, frame.streamId(), floods, printed, heard);
                        gaveUp.countDown();
                        return;
                    }
                    default -> {}
                }
                frame = s.read();
            }
        };
    }

    private static void runForever(
            Session s, int stream, boolean floods, AtomicLong printed, java.util.Set<FrameType> heard)
            throws IOException {
        s.send(Frame.of(
                FrameType.STARTED, stream, ByteBuffer.allocate(4).putInt(4242).array()));
        long window = floods ? InboundBuffer.WINDOW : 0;
        byte[] zeros = new byte[Frame.MAX_PAYLOAD];
        while (true) {
            while (window == 0) {
                Frame f = s.read();
                if (f.streamId() != stream) {
                    continue;
                }
                heard.add(f.type());
                if (f.type() == FrameType.ERROR) {
                    return; // the host gave up on the command, as it should
                }
                if (f.type() == FrameType.CREDIT && floods) {
                    window += ByteBuffer.wrap(f.payload()).getInt();
                }
            }
            int n = (int) Math.min(window, zeros.length);
            s.send(Frame.of(FrameType.STDOUT, stream, java.util.Arrays.copyOf(zeros, n)));
            window -= n;
            printed.addAndGet(n);
        }
    }

    private static void commitWrite(Session s, int stream) throws IOException {
        long size = 0;
        while (true) {
            Frame data = s.read();
            if (data.streamId() != stream || data.type() != FrameType.FILE_DATA) {
                continue;
            }
            size += data.payload().length;
            if (data.eof()) {
                s.send(Frame.of(
                        FrameType.RESULT,
                        stream,
                        new Tlv.Writer().u64(FileFields.SIZE, size).toPayload()));
                return;
            }
        }
    }

    private static void streamZeros(Session s, int stream, long bytes, AtomicLong sent) throws IOException {
        long window = InboundBuffer.WINDOW;
        byte[] zeros = new byte[Frame.MAX_PAYLOAD];
        long total = 0;
        while (total < bytes) {
            while (window == 0) {
                Frame f = s.read();
                if (f.type() == FrameType.ERROR && f.streamId() == stream) {
                    return; // the host gave up on the read, as it should
                }
                if (f.type() == FrameType.CREDIT && f.streamId() == stream) {
                    window += ByteBuffer.wrap(f.payload()).getInt();
                }
            }
            int n = (int) Math.min(Math.min(window, zeros.length), bytes - total);
            s.send(Frame.of(FrameType.DATA, stream, java.util.Arrays.copyOf(zeros, n)));
            window -= n;
            total += n;
            sent.addAndGet(n);
        }
        s.send(Frame.of(
                FrameType.END, stream, ByteBuffer.allocate(8).putLong(total).array()));
    }
}
