package dev.airlock.guest;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntFunction;
import org.jspecify.annotations.Nullable;

/**
 * One session with a guest agent over a connected byte stream. All operations may run at once from
 * any number of threads, each on its own stream. One reader thread dispatches incoming frames and
 * never blocks on a consumer; writes are serialized frame by frame.
 *
 * <p>Anything malformed from the agent, a session-level ERROR, or the connection dropping closes
 * the channel: every pending and later operation fails with a {@link GuestChannelClosedException}
 * whose cause says why.
 */
public final class GuestChannel implements AutoCloseable {
    public static final int PROTOCOL_VERSION = 1;
    private static final Duration HELLO_RESEND = Duration.ofSeconds(1);
    /** Frames of a previous session a new one skips before the agent's HELLO (see firstSessionFrame). */
    static final int STALE_BEFORE_HELLO = 4;

    private static final Duration DEFAULT_PING_TIMEOUT = Duration.ofSeconds(10);
    // How long a closing channel tries to tell a misbehaving agent why before hanging up.
    private static final long FAREWELL_MILLIS = 200;
    private static final Duration READER_JOIN = Duration.ofSeconds(5);
    /** How long past its deadline a bounded call may stay blocked before the session is closed. */
    private static final Duration DEADLINE_GRACE = Duration.ofSeconds(5);
    /** One timer thread for every deadline of every channel. */
    private static final ScheduledExecutorService DEADLINES = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "airlock-guest-deadlines");
        t.setDaemon(true);
        return t;
    });

    private final Closeable transport;
    private final FrameReader reader;
    private final FrameWriter writer;
    private final Map<Integer, GuestStream> streams = new ConcurrentHashMap<>();
    private final AtomicInteger lastStreamId = new AtomicInteger();
    private final AtomicReference<@Nullable GuestChannelClosedException> closed = new AtomicReference<>();
    private final CompletableFuture<AgentHello> hello = new CompletableFuture<>();
    private final Map<Long, CompletableFuture<Void>> pings = new ConcurrentHashMap<>();
    private final AtomicLong lastPingToken = new AtomicLong();
    private final Set<Thread> threads = ConcurrentHashMap.newKeySet();
    // Streams the host cancelled with ERROR: the agent may still have frames for them in flight.
    private final Set<Integer> cancelled = ConcurrentHashMap.newKeySet();
    private final Thread readerThread;
    private volatile boolean shutdownSent;

    /** What the agent's HELLO says. */
    record AgentHello(long featureBits, String version) {
        /** Decodes the payload ({@code u32 version, u32 features, UTF-8 version string}). */
        static AgentHello fromPayload(byte[] payload) throws ProtocolException {
            ByteBuffer in = ByteBuffer.wrap(payload);
            long version = Integer.toUnsignedLong(in.getInt());
            if (version != PROTOCOL_VERSION) {
                throw new ProtocolException(
                        "the agent speaks protocol version " + version + ", the host version " + PROTOCOL_VERSION);
            }
            long features = Integer.toUnsignedLong(in.getInt());
            return new AgentHello(features, StandardCharsets.UTF_8.decode(in).toString());
        }
    }

    private GuestChannel(ReadableByteChannel in, WritableByteChannel out, Closeable transport) {
        this.transport = transport;
        this.reader = new FrameReader(in, FrameType.Direction.TO_HOST);
        this.writer = new FrameWriter(out);
        this.readerThread = startThread("reader", this::readLoop);
    }

    /**
     * Connects to an agent (or the daemon's shared agent socket) at a unix socket path. Over
     * virtio-serial the agent cannot always tell that a previous host connection is gone (a quick
     * reconnect, a host killed mid-frame): it then answers HELLO with a protocol error and
     * resynchronises on the next HELLO, so a retry is part of connecting.
     */
    public static GuestChannel connect(Path unixSocket, Duration helloTimeout) throws IOException {
        return connect(new AgentEndpoint.UnixSocket(unixSocket), helloTimeout);
    }

    /** Connects to an agent wherever its endpoint says it is, with the same HELLO retry. */
    public static GuestChannel connect(AgentEndpoint endpoint, Duration helloTimeout) throws IOException {
        for (int attempt = 1; ; attempt++) {
            SocketChannel ch = endpoint.open();
            try {
                return open(ch, helloTimeout);
            } catch (GuestChannelClosedException e) {
                ch.close();
                if (attempt >= 3) {
                    throw e;
                }
            } catch (InterruptedException e) {
                ch.close();
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while connecting to " + endpoint.describe(), e);
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
        }
    }

    /**
     * Starts a session on a connected socket (QEMU's chardev socket, or the agent's unix socket).
     * The channel owns the socket from here on and closes it.
     *
     * @param helloTimeout how long to wait for the agent's HELLO
     */
    public static GuestChannel open(SocketChannel socket, Duration helloTimeout)
            throws IOException, InterruptedException {
        socket.configureBlocking(true);
        return handshake(new GuestChannel(socket, socket, socket), helloTimeout);
    }

    /** Starts a session on a pair of streams, which the channel owns and closes. */
    public static GuestChannel open(InputStream in, OutputStream out, Duration helloTimeout)
            throws IOException, InterruptedException {
        Closeable both = () -> {
            try (in;
                    out) {
                // closes both, even if one fails
            }
        };
        return handshake(new GuestChannel(Channels.newChannel(in), Channels.newChannel(out), both), helloTimeout);
    }

    private static GuestChannel handshake(GuestChannel channel, Duration timeout)
            throws IOException, InterruptedException {
        // QEMU can drop what the guest writes while the host side of a virtio-serial port is being
        // reopened, so a HELLO answer may be lost. HELLO always starts a fresh session in the
        // agent and precedes any stream frame, so saying it again is safe.
        long deadline = System.nanoTime() + timeout.toNanos();
        byte[] hello = ByteBuffer.allocate(4).putInt(PROTOCOL_VERSION).array();
        try {
            while (true) {
                channel.send(Frame.of(FrameType.HELLO, 0, hello));
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new TimeoutException();
                }
                try {
                    channel.hello.get(Math.min(left, HELLO_RESEND.toNanos()), TimeUnit.NANOSECONDS);
                    return channel;
                } catch (TimeoutException e) {
                    if (System.nanoTime() >= deadline) {
                        throw e;
                    }
                }
            }
        } catch (TimeoutException e) {
            throw channel.closeWith("the agent did not answer HELLO within " + timeout, null, false);
        } catch (ExecutionException e) {
            channel.close();
            throw unwrap(e);
        } catch (IOException | InterruptedException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The agent's version string from its HELLO. */
    public String agentVersion() {
        return hello.resultNow().version();
    }

    /** The features the agent announced. */
    public Set<GuestFeature> features() {
        return GuestFeature.fromBits(hello.resultNow().featureBits());
    }

    public boolean isOpen() {
        return closed.get() == null;
    }

    /** Why the channel closed, once it has. */
    public Optional<GuestChannelClosedException> closeReason() {
        return Optional.ofNullable(closed.get());
    }

    /** Measures one PING round trip, waiting up to 10 s. */
    public Duration ping() throws IOException, InterruptedException {
        try {
            return ping(DEFAULT_PING_TIMEOUT);
        } catch (TimeoutException e) {
            throw new IOException("no PONG from the agent within " + DEFAULT_PING_TIMEOUT, e);
        }
    }

    public Duration ping(Duration timeout) throws IOException, InterruptedException, TimeoutException {
        long token = lastPingToken.incrementAndGet();
        CompletableFuture<Void> pong = new CompletableFuture<>();
        pings.put(token, pong);
        GuestChannelClosedException reason = closed.get();
        if (reason != null) {
            pings.remove(token);
            throw reason.copy();
        }
        long start = System.nanoTime();
        send(Frame.of(FrameType.PING, 0, ByteBuffer.allocate(8).putLong(token).array()));
        try {
            pong.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
            return Duration.ofNanos(System.nanoTime() - start);
        } catch (ExecutionException e) {
            throw unwrap(e);
        } finally {
            pings.remove(token);
        }
    }

    /**
     * Starts a process and returns once it runs. Its stdout and stderr are copied to the given
     * sinks (the same sink for both is fine) by a thread of the execution's own; the sinks are
     * flushed, not closed.
     *
     * @throws CommandNotFoundException if the program does not exist (ENOENT)
     * @throws CommandNotExecutableException if it cannot be executed (EACCES)
     * @throws GuestException for any other start failure the agent reports
     * @throws IllegalArgumentException if the request does not fit in one frame
     */
    public Execution exec(ExecSpec spec, OutputStream stdout, OutputStream stderr)
            throws IOException, InterruptedException {
        byte[] request = spec.toPayload();
        ExecStream stream = openStream(id -> new ExecStream(this, id, spec, stdout, stderr));
        send(Frame.of(FrameType.EXEC, stream.id, request));
        stream.awaitStarted();
        return stream;
    }

    /**
     * {@link #exec} for a command the host runs on its own (a workspace script, a warm-up):
     * returns its exit status, or fails with a {@link GuestLimitException} when it has not ended
     * within {@code timeout} or has written more than {@code maxOutputBytes} to stdout and stderr
     * together (at most that much reaches the sinks). Either way the process is sent SIGKILL and
     * the stream cancelled; the session goes on.
     */
    public ExitStatus execBounded(
            ExecSpec spec, OutputStream stdout, OutputStream stderr, long maxOutputBytes, Duration timeout)
            throws IOException, InterruptedException {
        byte[] request = spec.toPayload();
        String what = "running " + spec.argv().getFirst();
        OutputCap cap = new OutputCap(maxOutputBytes, what);
        ExecStream stream = openStream(id -> new ExecStream(this, id, spec, cap.wrap(stdout), cap.wrap(stderr)));
        cap.stream = stream;
        return withDeadline(stream, what, timeout, () -> {
            send(Frame.of(FrameType.EXEC, stream.id, request));
            try {
                stream.awaitStarted();
                return stream.await();
            } catch (GuestLimitException e) {
                try {
                    stream.signal(9);
                } catch (IOException gone) {
                    // The process or the session ended already; the limit is what to report.
                }
                throw e;
            }
        });
    }

    /**
     * The output allowance of one bounded exec, shared by its stdout and stderr sinks: past it
     * the stream fails with a size {@link GuestLimitException} (on the pump thread, which then
     * drops the rest) and the caller's wait ends.
     */
    private static final class OutputCap {
        private final long max;
        private final String what;
        private long used;
        volatile @Nullable ExecStream stream;

        OutputCap(long max, String what) {
            this.max = max;
            this.what = what;
        }

        OutputStream wrap(OutputStream sink) {
            return new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[] {(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    int allowed = charge(len);
                    if (allowed > 0) {
                        sink.write(b, off, allowed);
                    }
                    if (allowed < len) {
                        GuestLimitException over = GuestLimitException.size(what, max);
                        ExecStream s = stream;
                        if (s != null) {
                            s.fail(over);
                        }
                        throw over;
                    }
                }

                @Override
                public void flush() throws IOException {
                    sink.flush();
                }
            };
        }

        private synchronized int charge(int len) {
            int allowed = (int) Math.max(0, Math.min(len, max - used));
            used += len;
            return allowed;
        }
    }

    /** Copies a guest file into {@code out}; returns its size. Symlinks are followed. */
    public long readFile(String path, OutputStream out) throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        FileReadStream stream = openStream(id -> new FileReadStream(this, id, path));
        send(Frame.of(FrameType.FILE_READ, stream.id, request));
        return stream.copyTo(out, Long.MAX_VALUE);
    }

    /**
     * {@link #readFile(String, OutputStream)} with bounds, for reads the host makes on its own:
     * fails with a {@link GuestLimitException} once the file passes {@code maxBytes} (at most that
     * much reaches {@code out}) or when it has not been read whole within {@code timeout}.
     */
    public long readFile(String path, OutputStream out, long maxBytes, Duration timeout)
            throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        FileReadStream stream = openStream(id -> new FileReadStream(this, id, path));
        return withDeadline(stream, "reading " + path, timeout, () -> {
            send(Frame.of(FrameType.FILE_READ, stream.id, request));
            return stream.copyTo(out, maxBytes);
        });
    }

    /**
     * Replaces a guest file with the contents of {@code in}, atomically: readers see the old file
     * or the new one. Returns the size the agent reports.
     *
     * @param mode permission bits, e.g. {@code 0644}
     * @param mkdirs create missing parent directories
     */
    public long writeFile(String path, InputStream in, int mode, boolean mkdirs)
            throws IOException, InterruptedException {
        byte[] payload = writeRequest(path, mode, mkdirs);
        FileWriteStream stream = openStream(id -> new FileWriteStream(this, id, path));
        send(Frame.of(FrameType.FILE_WRITE, stream.id, payload));
        return stream.copyFrom(in);
    }

    /**
     * {@link #writeFile(String, InputStream, int, boolean)} that fails with a {@link
     * GuestLimitException} when the agent has not committed the file within {@code timeout}.
     */
    public long writeFile(String path, InputStream in, int mode, boolean mkdirs, Duration timeout)
            throws IOException, InterruptedException {
        byte[] payload = writeRequest(path, mode, mkdirs);
        FileWriteStream stream = openStream(id -> new FileWriteStream(this, id, path));
        return withDeadline(stream, "writing " + path, timeout, () -> {
            send(Frame.of(FrameType.FILE_WRITE, stream.id, payload));
            return stream.copyFrom(in);
        });
    }

    private static byte[] writeRequest(String path, int mode, boolean mkdirs) {
        Tlv.Writer request = new Tlv.Writer()
                .string(FileFields.PATH, FileFields.requireAbsolute(path))
                .u32(FileFields.MODE, mode);
        if (mkdirs) {
            request.u8(FileFields.MKDIRS, 1);
        }
        return request.toPayload();
    }

    /** Metadata of a path; a final symlink is not followed. */
    public FileStat stat(String path) throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        QueryStream<FileStat> stream = openStream(id -> new QueryStream<>(this, id, "stat", FileFields::stat));
        send(Frame.of(FrameType.STAT, stream.id, request));
        return stream.await();
    }

    /** {@link #stat(String)} with a deadline ({@link GuestLimitException}). */
    public FileStat stat(String path, Duration timeout) throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        QueryStream<FileStat> stream = openStream(id -> new QueryStream<>(this, id, "stat", FileFields::stat));
        return withDeadline(stream, "stat of " + path, timeout, () -> {
            send(Frame.of(FrameType.STAT, stream.id, request));
            return stream.await();
        });
    }

    /** A directory's entries, sorted by name, without {@code .} and {@code ..}. */
    public List<DirEntry> list(String path) throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        QueryStream<List<DirEntry>> stream = openStream(id -> new QueryStream<>(this, id, "list", FileFields::listing));
        send(Frame.of(FrameType.LIST, stream.id, request));
        return stream.await();
    }

    /** {@link #list(String)} with a deadline ({@link GuestLimitException}); one RESULT frame bounds the size. */
    public List<DirEntry> list(String path, Duration timeout) throws IOException, InterruptedException {
        byte[] request = FileFields.pathRequest(path);
        QueryStream<List<DirEntry>> stream = openStream(id -> new QueryStream<>(this, id, "list", FileFields::listing));
        return withDeadline(stream, "listing " + path, timeout, () -> {
            send(Frame.of(FrameType.LIST, stream.id, request));
            return stream.await();
        });
    }

    /**
     * Makes a directory; with {@code parents}, missing parents too, and a directory already there
     * is success (like {@code mkdir -p}).
     *
     * @param mode permission bits (the guest's umask applies)
     */
    public void makeDir(String path, int mode, boolean parents) throws IOException, InterruptedException {
        Tlv.Writer request = new Tlv.Writer()
                .string(FileFields.PATH, FileFields.requireAbsolute(path))
                .u32(FileFields.MODE, mode);
        if (parents) {
            request.u8(FileFields.MKDIRS, 1);
        }
        fsRequest(FrameType.MKDIR, "mkdir", request.toPayload());
    }

    /** Renames {@code from} to {@code to} within the guest ({@code rename(2)}: an existing file at {@code to} is replaced). */
    public void move(String from, String to) throws IOException, InterruptedException {
        fsRequest(
                FrameType.MOVE,
                "move",
                new Tlv.Writer()
                        .string(FileFields.PATH, FileFields.requireAbsolute(from))
                        .string(FileFields.DEST, FileFields.requireAbsolute(to))
                        .toPayload());
    }

    /**
     * Removes a file, a symlink or an empty directory; with {@code recursive}, a directory and
     * everything below it (never following symlinks, never into another mounted file system).
     */
    public void remove(String path, boolean recursive) throws IOException, InterruptedException {
        Tlv.Writer request = new Tlv.Writer().string(FileFields.PATH, FileFields.requireAbsolute(path));
        if (recursive) {
            request.u8(FileFields.RECURSIVE, 1);
        }
        fsRequest(FrameType.REMOVE, "remove", request.toPayload());
    }

    private void fsRequest(FrameType type, String what, byte[] payload) throws IOException, InterruptedException {
        if (!features().contains(GuestFeature.FS_OPS)) {
            throw new GuestException(
                    95,
                    "the agent (" + agentVersion() + ") predates " + what
                            + "; restart the sandbox (stop, start) to give it the current agent");
        }
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, what, fields -> true));
        send(Frame.of(type, stream.id, payload));
        stream.await();
    }

    /**
     * Waits for the next connection a guest process makes to {@code 127.0.0.1:port} inside the
     * guest; the agent starts listening there on the first call and keeps listening. Several
     * callers may wait on one port; each connection goes to one of them.
     */
    public GuestSocket accept(int port) throws IOException, InterruptedException {
        byte[] request = portRequest(port);
        SocketStream stream = openStream(id -> new SocketStream(this, id, port));
        send(Frame.of(FrameType.ACCEPT, stream.id, request));
        try {
            stream.awaitConnected();
        } catch (InterruptedException e) {
            stream.close();
            throw e;
        }
        return stream;
    }

    /** Connects to a server listening on {@code 127.0.0.1:port} inside the guest. */
    public GuestSocket connect(int port) throws IOException, InterruptedException {
        byte[] request = portRequest(port);
        SocketStream stream = openStream(id -> new SocketStream(this, id, port));
        send(Frame.of(FrameType.CONNECT, stream.id, request));
        stream.awaitConnected();
        return stream;
    }

    /**
     * {@link #connect(int)} that fails with a {@link GuestLimitException} when the agent has not
     * answered within {@code timeout}; the connection itself then has no deadline.
     */
    public GuestSocket connect(int port, Duration timeout) throws IOException, InterruptedException {
        byte[] request = portRequest(port);
        SocketStream stream = openStream(id -> new SocketStream(this, id, port));
        return withDeadline(stream, "connecting to guest port " + port, timeout, () -> {
            send(Frame.of(FrameType.CONNECT, stream.id, request));
            stream.awaitConnected();
            return stream;
        });
    }

    /**
     * Sets environment variables the agent adds to every later command of any session (before
     * the command's own), replacing what an earlier call set.
     */
    public void setDefaultEnv(Map<String, String> env) throws IOException, InterruptedException {
        setDefaults(env, null);
    }

    /** {@link #setDefaultEnv(Map)} with a deadline ({@link GuestLimitException}). */
    public void setDefaultEnv(Map<String, String> env, Duration timeout) throws IOException, InterruptedException {
        setDefaults(env, null, timeout);
    }

    /**
     * Replaces the agent's defaults for every later exec of any session: variables added to each
     * command's environment (the command's own win) and, when {@code cwd} is not null, the
     * working directory of commands that name none.
     */
    public void setDefaults(Map<String, String> env, @Nullable String cwd) throws IOException, InterruptedException {
        setDefaults(env, cwd, (String) null);
    }

    /** {@link #setDefaults(Map, String)} plus the user of commands that name none (null: the agent's own). */
    public void setDefaults(Map<String, String> env, @Nullable String cwd, @Nullable String user)
            throws IOException, InterruptedException {
        byte[] payload = defaultsRequest(env, cwd, user);
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, "set-env", fields -> true));
        send(Frame.of(FrameType.SET_ENV, stream.id, payload));
        stream.await();
    }

    /** {@link #setDefaults(Map, String)} with a deadline ({@link GuestLimitException}). */
    public void setDefaults(Map<String, String> env, @Nullable String cwd, Duration timeout)
            throws IOException, InterruptedException {
        setDefaults(env, cwd, null, timeout);
    }

    /** {@link #setDefaults(Map, String, String)} with a deadline ({@link GuestLimitException}). */
    public void setDefaults(Map<String, String> env, @Nullable String cwd, @Nullable String user, Duration timeout)
            throws IOException, InterruptedException {
        byte[] payload = defaultsRequest(env, cwd, user);
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, "set-env", fields -> true));
        withDeadline(stream, "setting the sandbox's defaults", timeout, () -> {
            send(Frame.of(FrameType.SET_ENV, stream.id, payload));
            return stream.await();
        });
    }

    private static byte[] defaultsRequest(Map<String, String> env, @Nullable String cwd, @Nullable String user) {
        Tlv.Writer request = new Tlv.Writer();
        env.forEach((name, value) -> request.string(2, name + "=" + value));
        if (cwd != null) {
            request.string(3, cwd);
        }
        if (user != null) {
            request.string(4, user);
        }
        return request.toPayload();
    }

    private static byte[] portRequest(int port) {
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("port " + port + " is not between 1 and 65535");
        }
        return new Tlv.Writer().u16(1, port).toPayload();
    }

    /**
     * Gives a guest restored from a snapshot its own identity: fresh entropy mixed into the kernel
     * pool (followed by a forced reseed), the wall clock, hostname and machine-id. Returns once the
     * agent has applied all of it.
     */
    public void setIdentity(GuestIdentity identity) throws IOException, InterruptedException {
        if (!features().contains(GuestFeature.IDENTITY)) {
            throw new GuestException(95, "the agent (" + agentVersion() + ") cannot take a new identity");
        }
        byte[] request = identity.toPayload();
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, "identity", fields -> true));
        send(Frame.of(FrameType.IDENTITY, stream.id, request));
        stream.await();
    }

    /** {@link #setIdentity(GuestIdentity)} with a deadline ({@link GuestLimitException}). */
    public void setIdentity(GuestIdentity identity, Duration timeout) throws IOException, InterruptedException {
        if (!features().contains(GuestFeature.IDENTITY)) {
            throw new GuestException(95, "the agent (" + agentVersion() + ") cannot take a new identity");
        }
        byte[] request = identity.toPayload();
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, "identity", fields -> true));
        withDeadline(stream, "taking a new identity", timeout, () -> {
            send(Frame.of(FrameType.IDENTITY, stream.id, request));
            return stream.await();
        });
    }

    /**
     * Sends a new identity without waiting for the agent's answer, for a session the host closes
     * next: the agent reads a session's frames in order and applies an identity before reading
     * on, and serves one host session at a time, so a session opened after this one closes finds
     * the identity applied. A failure to apply it is not seen here (the answer goes unread). Over
     * virtio-serial end the session with {@link #finishSending}, not a close, so that QEMU reads
     * the frame before it sees the host leave.
     *
     * @throws IOException if the session has ended or the frame cannot be written
     */
    public void sendIdentity(GuestIdentity identity) throws IOException {
        if (!features().contains(GuestFeature.IDENTITY)) {
            throw new GuestException(95, "the agent (" + agentVersion() + ") cannot take a new identity");
        }
        byte[] request = identity.toPayload();
        QueryStream<Boolean> stream = openStream(id -> new QueryStream<>(this, id, "identity", fields -> true));
        send(Frame.of(FrameType.IDENTITY, stream.id, request));
    }

    /**
     * Ends the host's half of the session without cutting what was sent: the write half of the
     * socket is shut down, so the peer reads every byte before the end of input, and the channel
     * closes when the peer closes its end (the reader sees it), or after {@code linger} at the
     * latest. A full close instead lets QEMU's chardev see the hang-up before it has read the last
     * frame and drop it. A channel on anything but a socket is closed at once.
     */
    public void finishSending(Duration linger) {
        if (!(transport instanceof SocketChannel socket)) {
            close();
            return;
        }
        try {
            socket.shutdownOutput();
        } catch (IOException e) {
            closeWith("ending the host's half of the session failed", e, false);
            return;
        }
        DEADLINES.schedule(
                () -> closeWith("the host ended the session and the agent did not close its end", null, false),
                linger.toNanos(),
                TimeUnit.NANOSECONDS);
    }

    /**
     * Asks the agent to stop every process and power the guest off (in a container: exit). There
     * is no reply; the channel closes when the agent goes away.
     */
    public void shutdown() throws IOException {
        shutdownSent = true;
        send(Frame.of(FrameType.SHUTDOWN, 0, new byte[] {0}));
    }

    /** Closes the connection; pending operations fail. Running guest processes keep running. */
    @Override
    public void close() {
        closeWith("the channel was closed by the host", null, false);
        if (Thread.currentThread() != readerThread) {
            try {
                readerThread.join(READER_JOIN);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** One bounded call's work, run on the caller's thread. */
    private interface BoundedCall<T> {
        T run() throws IOException, InterruptedException;
    }

    /**
     * Runs a call on one stream with a deadline. At the deadline the stream's waiters fail with a
     * {@link GuestLimitException} and the stream is cancelled. A caller that is still not back
     * {@link #DEADLINE_GRACE} later is blocked writing to an agent that stopped reading: the
     * session is closed, which ends that write too.
     */
    private <T> T withDeadline(GuestStream stream, String what, Duration timeout, BoundedCall<T> call)
            throws IOException, InterruptedException {
        GuestLimitException expired = GuestLimitException.time(what, timeout);
        AtomicBoolean passed = new AtomicBoolean();
        ScheduledFuture<?> expire = DEADLINES.schedule(
                () -> {
                    passed.set(true);
                    stream.fail(expired);
                },
                timeout.toNanos(),
                TimeUnit.NANOSECONDS);
        ScheduledFuture<?> hangUp = DEADLINES.schedule(
                () -> closeWith(
                        what + " was still blocked " + DEADLINE_GRACE.toSeconds() + " s after its deadline",
                        expired,
                        false),
                timeout.plus(DEADLINE_GRACE).toNanos(),
                TimeUnit.NANOSECONDS);
        try {
            return call.run();
        } catch (GuestLimitException e) {
            cancel(stream, GuestException.ECANCELED, "the host gave up: " + e.getMessage());
            throw e;
        } catch (IOException | InterruptedException | RuntimeException e) {
            if (!passed.get()) {
                throw e;
            }
            // A consequence of the deadline (the session closed under a blocked write, ...).
            cancel(stream, GuestException.ECANCELED, "the host gave up: " + expired.getMessage());
            throw expired;
        } finally {
            expire.cancel(false);
            hangUp.cancel(false);
        }
    }

    // ---- internals shared with the streams ----

    void send(Frame frame) throws IOException {
        GuestChannelClosedException reason = closed.get();
        if (reason != null) {
            throw reason.copy();
        }
        try {
            writer.write(frame);
        } catch (IOException e) {
            throw closeWith("writing to the agent failed", e, false);
        }
    }

    /** For frames whose loss only matters if the session is ending anyway (credit). */
    void sendQuietly(Frame frame) {
        try {
            send(frame);
        } catch (IOException e) {
            // The channel is closed and every waiter has been told why.
        }
    }

    void unregister(GuestStream stream) {
        streams.remove(stream.id, stream);
    }

    /**
     * Tells the agent the host gave up on a stream (an ERROR on it, which is final) and ignores
     * whatever the agent already had in flight for it.
     */
    void cancel(GuestStream stream, int errno, String why) {
        if (streams.remove(stream.id, stream)) {
            cancelled.add(stream.id);
            byte[] text = why.getBytes(StandardCharsets.UTF_8);
            byte[] payload =
                    ByteBuffer.allocate(4 + text.length).putInt(errno).put(text).array();
            sendQuietly(Frame.of(FrameType.ERROR, stream.id, payload));
        }
    }

    /** Ends the session because of a protocol violation the caller found; returns what to throw. */
    GuestChannelClosedException abort(ProtocolException violation) {
        return closeWith("the agent broke the protocol", violation, true);
    }

    /**
     * Set (true) by a short-lived CLI before its first session: a session's threads are then
     * platform threads. Virtual threads' blocking socket reads go through the JDK's poller, a
     * thread that waits in native code, and the JVM waits ~300 ms at exit for threads in native
     * code to settle: `airlock exec NAME -- true` took 480 ms instead of 160 ms for it. The daemon,
     * with many sessions, keeps virtual threads.
     */
    public static final String PLATFORM_THREADS_PROPERTY = "airlock.guest.platformThreads";

    private static final boolean PLATFORM_THREADS = Boolean.getBoolean(PLATFORM_THREADS_PROPERTY);

    Thread startThread(String name, Runnable task) {
        Thread.Builder builder = PLATFORM_THREADS ? Thread.ofPlatform().daemon() : Thread.ofVirtual();
        Thread thread = builder.name("airlock-guest-" + name).unstarted(() -> {
            try {
                task.run();
            } finally {
                threads.remove(Thread.currentThread());
            }
        });
        threads.add(thread);
        thread.start();
        return thread;
    }

    /**
     * Test hook: waits until every thread this channel started has ended, including threads
     * started while waiting (a reader that is still closing starts the farewell thread).
     */
    boolean awaitThreads(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            List<Thread> running = List.copyOf(threads);
            if (running.isEmpty()) {
                return true;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            Thread thread = running.getFirst();
            if (thread.getState() == Thread.State.NEW) {
                // Registered but not started yet: join would return at once.
                Thread.sleep(1);
            } else {
                thread.join(Duration.ofNanos(left));
            }
        }
    }

    /** Test hook: the threads this channel started that are still running, for failure messages. */
    List<Thread> runningThreads() {
        return List.copyOf(threads);
    }

    static IOException unwrap(ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof GuestChannelClosedException closedException) {
            return closedException.copy();
        }
        if (cause instanceof IOException io) {
            return io;
        }
        return new IOException(cause);
    }

    private <S extends GuestStream> S openStream(IntFunction<S> factory) throws GuestChannelClosedException {
        while (true) {
            int id = lastStreamId.incrementAndGet();
            // Ids only grow (wrapping after 2^32 streams), so a late frame for an ended stream can
            // never be mistaken for one of a newer stream.
            if (id == 0 || streams.containsKey(id)) {
                continue;
            }
            S stream = factory.apply(id);
            if (streams.putIfAbsent(id, stream) != null) {
                continue;
            }
            GuestChannelClosedException reason = closed.get();
            if (reason != null) {
                streams.remove(id, stream);
                stream.fail(reason);
                throw reason.copy();
            }
            return stream;
        }
    }

    private void readLoop() {
        try {
            acceptHello(firstSessionFrame());
            while (true) {
                dispatch(reader.read());
            }
        } catch (ProtocolException e) {
            closeWith("the agent broke the protocol", e, true);
        } catch (GuestException e) {
            closeWith("the agent ended the session", e, false);
        } catch (EOFException e) {
            closeWith(shutdownSent ? "the agent shut down" : "the agent closed the connection", e, false);
        } catch (IOException e) {
            closeWith("reading from the agent failed", e, false);
        } catch (RuntimeException e) {
            // A bug here must still fail the waiters instead of leaving them hanging.
            closeWith("the channel's reader failed", e, false);
            throw e;
        }
    }

    /**
     * The first frame of this session on stream 0, past any frames on other streams: over
     * virtio-serial the answer to the last request of the previous session (an identity sent
     * without waiting, just before it closed) can reach the next session ahead of the agent's
     * HELLO. At most {@link #STALE_BEFORE_HELLO} of them; more is an agent breaking the protocol.
     */
    private Frame firstSessionFrame() throws IOException {
        Frame frame = reader.read();
        for (int stale = 0; frame.streamId() != 0; stale++) {
            if (stale == STALE_BEFORE_HELLO) {
                throw new ProtocolException(
                        "more than " + STALE_BEFORE_HELLO + " frames of an earlier session before the agent's HELLO");
            }
            frame = reader.read();
        }
        return frame;
    }

    private void acceptHello(Frame frame) throws ProtocolException, GuestException {
        if (frame.type() == FrameType.ERROR) {
            throw GuestException.fromPayload(frame.payload());
        }
        if (frame.type() != FrameType.AGENT_HELLO) {
            throw new ProtocolException(
                    "expected HELLO from the agent, got " + frame.type().describe());
        }
        hello.complete(AgentHello.fromPayload(frame.payload()));
    }

    private void dispatch(Frame frame) throws ProtocolException, GuestException {
        if (frame.streamId() == 0) {
            switch (frame.type()) {
                case PONG -> acceptPong(frame.payload());
                case AGENT_HELLO -> {
                    // The answer to a HELLO we repeated while waiting for the first answer.
                }
                case ERROR -> throw GuestException.fromPayload(frame.payload());
                default ->
                    throw new ProtocolException("unexpected " + frame.type().describe() + " on stream 0");
            }
            return;
        }
        GuestStream stream = streams.get(frame.streamId());
        if (stream == null && cancelled.contains(frame.streamId())) {
            if (isFinal(frame.type())) {
                cancelled.remove(frame.streamId());
            }
            return;
        }
        if (stream == null) {
            throw new ProtocolException(
                    frame.type().describe() + " for unknown stream " + Integer.toUnsignedString(frame.streamId()));
        }
        stream.onFrame(frame);
    }

    private static boolean isFinal(FrameType type) {
        return type == FrameType.EXIT || type == FrameType.END || type == FrameType.RESULT || type == FrameType.ERROR;
    }

    private void acceptPong(byte[] payload) throws ProtocolException {
        if (payload.length == Long.BYTES) {
            long token = ByteBuffer.wrap(payload).getLong();
            CompletableFuture<Void> pong = pings.remove(token);
            if (pong != null) {
                pong.complete(null);
                return;
            }
            if (token > 0 && token <= lastPingToken.get()) {
                return; // the answer to a ping that timed out
            }
        }
        throw new ProtocolException("PONG that answers no PING");
    }

    /**
     * Closes the session once; later calls return the first reason. Every waiter is woken with
     * the reason before the transport is closed, so nothing waits on a dead connection.
     */
    private GuestChannelClosedException closeWith(String message, @Nullable Throwable cause, boolean tellPeer) {
        GuestChannelClosedException reason = cause == null
                ? new GuestChannelClosedException(message)
                : new GuestChannelClosedException(message + ": " + cause.getMessage(), cause);
        if (!closed.compareAndSet(null, reason)) {
            GuestChannelClosedException first = closed.get();
            return first != null ? first.copy() : reason;
        }
        hello.completeExceptionally(reason);
        pings.values().forEach(pong -> pong.completeExceptionally(reason));
        streams.values().forEach(stream -> stream.fail(reason));
        if (tellPeer && cause != null) {
            sayFarewell(String.valueOf(cause.getMessage()));
        }
        try {
            transport.close();
        } catch (IOException e) {
            // Nothing more to do with a connection that is going away.
        }
        return reason.copy();
    }

    /** Best effort, bounded in time: the agent may have stopped reading. */
    private void sayFarewell(String why) {
        byte[] text = why.getBytes(StandardCharsets.UTF_8);
        byte[] payload = ByteBuffer.allocate(4 + Math.min(text.length, 1024))
                .putInt(GuestException.EPROTO)
                .put(text, 0, Math.min(text.length, 1024))
                .array();
        Thread farewell = startThread("farewell", () -> {
            try {
                writer.tryWrite(Frame.of(FrameType.ERROR, 0, payload), FAREWELL_MILLIS);
            } catch (IOException | InterruptedException e) {
                // Best effort only.
            }
        });
        try {
            farewell.join(Duration.ofMillis(2 * FAREWELL_MILLIS));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
