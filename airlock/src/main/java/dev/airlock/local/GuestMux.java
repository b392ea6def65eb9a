package dev.airlock.local;

import dev.airlock.guest.AgentEndpoint;
import dev.airlock.guest.Frame;
import dev.airlock.guest.FrameReader;
import dev.airlock.guest.FrameType;
import dev.airlock.guest.FrameWriter;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

/**
 * Shares a sandbox's single agent session among many clients. The agent's channel (one
 * virtio-serial port) takes one host connection; the daemon holds it and lets any number of
 * clients speak the same guest protocol to a per-sandbox socket. Each client stream is given a
 * session-wide stream id upstream and frames are rewritten both ways; windows are per stream, so
 * flow control passes through untouched. Each client has its own outbound queue and writer, so a
 * slow client never stalls the others.
 */
final class GuestMux implements AutoCloseable {
    /** Legitimate traffic is bounded by the windows (256 streams x 256 KiB); beyond that a client is broken. */
    private static final long CLIENT_QUEUE_LIMIT = 80L << 20;

    private static final int ECANCELED = 125;
    /** Queued by close() to stop a client's writer; compared by identity, never sent. */
    private static final Frame POISON = Frame.of(FrameType.PONG, 0, new byte[0]);

    private static final Set<FrameType> OPENS_STREAM = Set.of(
            FrameType.EXEC,
            FrameType.FILE_READ,
            FrameType.FILE_WRITE,
            FrameType.STAT,
            FrameType.LIST,
            FrameType.SET_ENV,
            FrameType.MKDIR,
            FrameType.MOVE,
            FrameType.REMOVE,
            FrameType.ACCEPT,
            FrameType.CONNECT);
    private static final Set<FrameType> ENDS_STREAM =
            Set.of(FrameType.EXIT, FrameType.END, FrameType.RESULT, FrameType.ERROR);

    private final String name;
    private final AgentEndpoint agent;
    private final Path muxSocket;
    private final ServerSocketChannel server;
    private final AtomicInteger nextStream = new AtomicInteger(1);
    private final Map<Integer, Route> routes = new ConcurrentHashMap<>();
    private final Set<Client> clients = ConcurrentHashMap.newKeySet();
    private @Nullable Upstream upstream;
    private volatile boolean closed;
    /** When a client last sent a frame or went away (System.nanoTime): what idle auto-pause measures. */
    private volatile long lastUse = System.nanoTime();

    private record Route(Client client, int clientStream) {}

    GuestMux(String name, AgentEndpoint agent, Path muxSocket) throws IOException {
        this.name = name;
        this.agent = agent;
        this.muxSocket = muxSocket;
        Files.deleteIfExists(muxSocket);
        this.server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(muxSocket));
        // Only the daemon's own user may speak to a sandbox's agent (the directory is private too).
        Files.setPosixFilePermissions(muxSocket, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        Thread.ofVirtual().name("mux-accept-" + name).start(this::acceptLoop);
    }

    Path socket() {
        return muxSocket;
    }

    /** Counts as use now: a client was just given this socket and is about to connect. */
    void touch() {
        lastUse = System.nanoTime();
    }

    /** No client connected, and none has sent anything for {@code d}. */
    boolean idleFor(java.time.Duration d) {
        return clients.isEmpty() && System.nanoTime() - lastUse > d.toNanos();
    }

    private void acceptLoop() {
        while (!closed) {
            try {
                SocketChannel ch = server.accept();
                Client c = new Client(ch, ch, ch);
                clients.add(c);
                Thread.ofVirtual().name("mux-client-" + name).start(c::readLoop);
                Thread.ofVirtual().name("mux-client-writer-" + name).start(c::writeLoop);
            } catch (IOException e) {
                if (!closed) {
                    DaemonLog.log("sandbox " + name + ": accept failed: " + e.getMessage());
                }
                return;
            }
        }
    }

    /** The agent session, opened on the first client HELLO and again after the agent drops it. */
    private synchronized Upstream upstream() throws IOException {
        Upstream u = upstream;
        if (u != null && u.alive) {
            return u;
        }
        IOException last = null;
        for (int attempt = 1; attempt <= 3; attempt++) {
            try {
                u = new Upstream();
                upstream = u;
                Thread.ofVirtual().name("mux-upstream-" + name).start(u::readLoop);
                return u;
            } catch (IOException e) {
                // A reconnect the agent took for part of the previous session: it answers with a
                // protocol error and resynchronises on the next HELLO.
                last = e;
            }
        }
        throw last;
    }

    /**
     * Serves one client whose frames arrive on {@code in} and whose answers go to {@code out} (a
     * transport's streams, such as an HTTP session); returns when the client or the agent ends
     * the session. Like a socket client, it gets its own stream ids, queue and writer.
     */
    void serve(InputStream in, OutputStream out) {
        Client c = new Client(Channels.newChannel(in), Channels.newChannel(out), () -> {
            try (in;
                    out) {
                // closes both, even if one fails
            }
        });
        clients.add(c);
        touch();
        Thread writer = Thread.ofVirtual().name("mux-client-writer-" + name).start(c::writeLoop);
        c.readLoop();
        try {
            writer.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
            Files.deleteIfExists(muxSocket);
        } catch (IOException e) {
            // Already gone.
        }
        for (Client c : clients) {
            c.close();
        }
        Upstream u = upstream;
        if (u != null) {
            u.close();
        }
    }

    private final class Upstream {
        private final SocketChannel channel;
        private final FrameWriter writer;
        private final FrameReader reader;
        private final byte[] hello;
        volatile boolean alive = true;

        Upstream() throws IOException {
            channel = agent.open();
            try {
                writer = new FrameWriter(channel);
                reader = new FrameReader(channel, FrameType.Direction.TO_HOST);
                Frame helloFrame = Frame.of(
                        FrameType.HELLO, 0, ByteBuffer.allocate(4).putInt(1).array());
                writer.write(helloFrame);
                // An answer written while QEMU reopens the port can be lost; HELLO is safe to repeat.
                CountDownLatch answered = new CountDownLatch(1);
                Thread resend = Thread.ofVirtual().start(() -> {
                    try {
                        for (int i = 0; i < 60; i++) {
                            if (answered.await(1, TimeUnit.SECONDS)) {
                                return;
                            }
                            send(helloFrame);
                        }
                        channel.close();
                    } catch (IOException | InterruptedException e) {
                        // Answered, or the connection is gone: either way, stop.
                    }
                });
                Frame reply;
                try {
                    reply = reader.read();
                } finally {
                    answered.countDown();
                    resend.interrupt();
                }
                if (reply.type() != FrameType.AGENT_HELLO) {
                    throw new IOException("the agent of sandbox " + name + " answered HELLO with " + reply.type()
                            + (reply.type() == FrameType.ERROR
                                    ? ": "
                                            + new String(
                                                    reply.payload(),
                                                    4,
                                                    reply.payload().length - 4,
                                                    StandardCharsets.UTF_8)
                                    : ""));
                }
                hello = reply.payload();
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        }

        synchronized void send(Frame f) throws IOException {
            writer.write(f);
        }

        void readLoop() {
            try {
                while (true) {
                    Frame f = reader.read();
                    if (f.streamId() == 0) {
                        if (f.type() == FrameType.ERROR) {
                            throw new IOException("the agent ended the session");
                        }
                        continue;
                    }
                    Route r = ENDS_STREAM.contains(f.type()) ? routes.remove(f.streamId()) : routes.get(f.streamId());
                    if (r == null) {
                        continue; // the client went away; the agent was told to drop the stream
                    }
                    if (ENDS_STREAM.contains(f.type())) {
                        r.client().streams.remove(r.clientStream());
                    }
                    r.client().enqueue(new Frame(f.type(), f.flags(), r.clientStream(), f.payload()));
                }
            } catch (IOException | RuntimeException e) {
                if (!closed) {
                    DaemonLog.log("sandbox " + name + ": agent session ended: " + e.getMessage());
                }
            } finally {
                close();
                for (Client c : clients) {
                    c.close();
                }
            }
        }

        void close() {
            alive = false;
            try {
                channel.close();
            } catch (IOException e) {
                // Nothing left to release.
            }
        }
    }

    private final class Client {
        private final ReadableByteChannel in;
        private final WritableByteChannel out;
        private final Closeable channel;
        private final Map<Integer, Integer> streams = new ConcurrentHashMap<>();
        private final LinkedBlockingQueue<Frame> outbound = new LinkedBlockingQueue<>();
        private final AtomicLong queuedBytes = new AtomicLong();
        private volatile boolean gone;

        Client(ReadableByteChannel in, WritableByteChannel out, Closeable channel) {
            this.in = in;
            this.out = out;
            this.channel = channel;
        }

        void enqueue(Frame f) {
            if (queuedBytes.addAndGet(Frame.HEADER_SIZE + f.payload().length) > CLIENT_QUEUE_LIMIT) {
                DaemonLog.log("sandbox " + name + ": a client ignores flow control; disconnecting it");
                close();
                return;
            }
            outbound.add(f);
        }

        void writeLoop() {
            FrameWriter w = new FrameWriter(out);
            try {
                while (!gone) {
                    Frame f = outbound.take();
                    if (f == POISON) {
                        return;
                    }
                    queuedBytes.addAndGet(-(Frame.HEADER_SIZE + f.payload().length));
                    w.write(f);
                }
            } catch (IOException | InterruptedException e) {
                close();
            }
        }

        void readLoop() {
            FrameReader r = new FrameReader(in, FrameType.Direction.TO_AGENT);
            try {
                while (true) {
                    Frame f = r.read();
                    lastUse = System.nanoTime();
                    switch (f.type()) {
                        case HELLO -> enqueue(new Frame(FrameType.AGENT_HELLO, 0, 0, upstream().hello));
                        case PING -> enqueue(new Frame(FrameType.PONG, 0, 0, f.payload()));
                        case SHUTDOWN -> upstream().send(f);
                        default -> {
                            if (f.streamId() == 0) {
                                return; // ERROR on stream 0: the client ends its session
                            }
                            Integer up = streams.get(f.streamId());
                            if (up == null) {
                                if (!OPENS_STREAM.contains(f.type())) {
                                    continue; // a late frame for a stream that already ended
                                }
                                up = nextStream.getAndIncrement();
                                streams.put(f.streamId(), up);
                                routes.put(up, new Route(this, f.streamId()));
                            } else if (f.type() == FrameType.ERROR) {
                                streams.remove(f.streamId());
                                routes.remove(up);
                            }
                            upstream().send(new Frame(f.type(), f.flags(), up, f.payload()));
                        }
                    }
                }
            } catch (IOException | RuntimeException e) {
                // The client disconnected, sent a malformed frame, or the agent is gone.
            } finally {
                close();
            }
        }

        void close() {
            if (gone) {
                return;
            }
            gone = true;
            clients.remove(this);
            lastUse = System.nanoTime();
            outbound.add(POISON);
            Upstream u = upstream;
            for (Integer up : streams.values()) {
                routes.remove(up);
                if (u != null && u.alive) {
                    try {
                        byte[] why = "client disconnected".getBytes(StandardCharsets.UTF_8);
                        u.send(new Frame(
                                FrameType.ERROR,
                                0,
                                up,
                                ByteBuffer.allocate(4 + why.length)
                                        .putInt(ECANCELED)
                                        .put(why)
                                        .array()));
                    } catch (IOException e) {
                        // The agent session is gone too; nothing to cancel.
                    }
                }
            }
            streams.clear();
            try {
                channel.close();
            } catch (IOException e) {
                // Already closed.
            }
        }
    }
}
