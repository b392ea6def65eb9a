package dev.airlock.guest;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jspecify.annotations.Nullable;

/**
 * Fuzz target for everything on the host that decodes the agent's bytes: the input is what a
 * (hostile) agent sends after its HELLO. Run by Jazzer ({@code fuzzerTestOneInput}, see {@link
 * CoverageGuidedFuzzTest}) and replayed over the kept corpus as a plain test.
 *
 * <p>Two passes over each input:
 *
 * <ol>
 *   <li>Decoding alone, on this thread: {@link FrameReader} over the bytes delivered whole and in
 *       odd-sized pieces (both must give the same frames and the same error), then each payload
 *       through the decoder its type uses ({@link Tlv}, {@link FileFields} for STAT, LIST and
 *       write results, EXIT, ERROR, END, HELLO). Only {@link ProtocolException} may come out,
 *       and the bytes allocated must stay within the frame cap plus a constant per input byte:
 *       a length field must never size an allocation by itself.
 *   <li>A real {@link GuestChannel} fed the bytes with one request of every kind pending (two
 *       execs, stat, list, read, write, connect, accept, set-env, identity, ping) on streams 1
 *       to 10, so frames for those streams reach each stream's handling. Every pending operation
 *       must end, within a bound, in a result or an {@link IOException}; the channel must close
 *       for a documented reason and leave no thread behind.
 * </ol>
 *
 * Any other outcome is thrown as an {@link AssertionError}, which the fuzzer reports as a crash.
 */
public final class InboundFuzzTarget {
    /** How long one input may take in the channel pass before it counts as a hang. */
    static final Duration BOUND = Duration.ofSeconds(10);

    // Decoding one input may allocate this much plus PER_INPUT_BYTE for each byte of it: room
    // for one frame-sized payload and for the objects each TLV entry becomes, far from what a
    // length field alone could ask for (up to 4 GiB).
    private static final long ALLOCATION_BASE = 4L * Frame.MAX_PAYLOAD;
    private static final long PER_INPUT_BYTE = 256;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private InboundFuzzTarget() {}

    public static void fuzzerTestOneInput(byte[] data) {
        decodeAlone(data);
        try {
            againstChannel(data);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    // ---- pass 1: the decoders on their own ----

    /** The frames of one reading and how it ended. */
    private record Reading(List<Frame> frames, IOException end) {}

    static void decodeAlone(byte[] data) {
        decodeOnce(data);
        // Measured on a second pass: the first one also pays for loading and linking classes.
        long before = THREADS.getCurrentThreadAllocatedBytes();
        decodeOnce(data);
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
        long allowed = ALLOCATION_BASE + PER_INPUT_BYTE * data.length;
        if (allocated > allowed) {
            throw new AssertionError(
                    "decoding " + data.length + " bytes allocated " + allocated + " bytes (allowed " + allowed + ")");
        }
    }

    private static void decodeOnce(byte[] data) {
        Reading whole = read(new ByteArrayInputStream(data));
        Reading pieces = read(new PieceChannel(data));
        if (!sameFrames(whole.frames(), pieces.frames())
                || whole.end().getClass() != pieces.end().getClass()
                || !Objects.equals(whole.end().getMessage(), pieces.end().getMessage())) {
            throw new AssertionError("reading in pieces differs from reading whole: " + whole + " vs " + pieces);
        }
        for (Frame frame : whole.frames()) {
            if (frame.payload().length > Frame.MAX_PAYLOAD) {
                throw new AssertionError("frame above the cap: " + frame);
            }
            decodePayload(frame);
        }
    }

    private static Reading read(InputStream in) {
        return read(new FrameReader(in, FrameType.Direction.TO_HOST));
    }

    private static Reading read(ReadableByteChannel in) {
        return read(new FrameReader(in, FrameType.Direction.TO_HOST));
    }

    private static Reading read(FrameReader reader) {
        List<Frame> frames = new ArrayList<>();
        while (true) {
            try {
                frames.add(reader.read());
            } catch (EOFException | ProtocolException e) {
                return new Reading(frames, e);
            } catch (IOException e) {
                throw new AssertionError("an in-memory source cannot fail: " + e, e);
            }
        }
    }

    private static boolean sameFrames(List<Frame> a, List<Frame> b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (int i = 0; i < a.size(); i++) {
            Frame x = a.get(i);
            Frame y = b.get(i);
            if (x.type() != y.type()
                    || x.flags() != y.flags()
                    || x.streamId() != y.streamId()
                    || !java.util.Arrays.equals(x.payload(), y.payload())) {
                return false;
            }
        }
        return true;
    }

    /** Each decoder the host applies to a payload of this type; a ProtocolException is fine. */
    private static void decodePayload(Frame frame) {
        byte[] payload = frame.payload();
        try {
            switch (frame.type()) {
                case AGENT_HELLO -> GuestChannel.AgentHello.fromPayload(payload);
                case EXIT -> ExitStatus.fromPayload(payload);
                case ERROR -> GuestException.fromPayload(payload);
                case END -> frame.buffer().getLong();
                case STARTED, AGENT_CREDIT -> GuestStream.u32(payload);
                case RESULT -> {
                    List<Tlv> fields = Tlv.parse(payload);
                    decodeQuietly(() -> FileFields.stat(fields));
                    decodeQuietly(() -> FileFields.listing(fields));
                    decodeQuietly(() -> FileFields.size(fields, "RESULT"));
                    for (Tlv field : fields) {
                        decodeQuietly(field::u8);
                        decodeQuietly(field::u16);
                        decodeQuietly(field::u32);
                        decodeQuietly(field::u64);
                        decodeQuietly(field::string);
                    }
                }
                default -> {}
            }
        } catch (ProtocolException e) {
            // A documented rejection.
        }
    }

    private interface Decoder {
        Object decode() throws ProtocolException;
    }

    private static void decodeQuietly(Decoder decoder) {
        try {
            decoder.decode();
        } catch (ProtocolException e) {
            // A documented rejection.
        }
    }

    /** Hands the bytes out in varying small pieces, so frames straddle reads. */
    private static final class PieceChannel implements ReadableByteChannel {
        private final byte[] data;
        private int position;
        private int step;

        PieceChannel(byte[] data) {
            this.data = data;
        }

        @Override
        public int read(ByteBuffer target) {
            if (position == data.length) {
                return -1;
            }
            int[] sizes = {1, 3, 12, 13, 4096, 70_000};
            int n = Math.min(Math.min(sizes[step++ % sizes.length], target.remaining()), data.length - position);
            target.put(data, position, n);
            position += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {}
    }

    // ---- pass 2: a channel with a request of every kind pending ----

    /** One pending operation; stream ids follow the order of this list, from 1. */
    private interface Operation {
        void run(GuestChannel channel) throws Exception;
    }

    private static final OutputStream DISCARD = OutputStream.nullOutputStream();

    private static final List<Operation> OPERATIONS = List.of(
            channel -> { // stream 1
                Execution exec = channel.exec(
                        ExecSpec.builder("sh", "-c", "cat").stdin(true).build(), DISCARD, DISCARD);
                exec.stdin().write("input".getBytes(java.nio.charset.StandardCharsets.UTF_8));
                exec.stdin().close();
                exec.await();
            },
            channel -> { // stream 2
                Execution exec = channel.exec(
                        ExecSpec.builder("bash").tty(24, 80).stdin(true).build(), DISCARD, DISCARD);
                exec.resize(50, 132);
                exec.signal(15);
                exec.await();
            },
            channel -> channel.stat("/etc/passwd"), // stream 3
            channel -> channel.list("/tmp"), // stream 4
            channel -> channel.readFile("/tmp/f", DISCARD), // stream 5
            channel -> channel.writeFile("/tmp/w", new ByteArrayInputStream(new byte[] {1, 2, 3}), 0644, true),
            channel -> { // stream 7
                try (GuestSocket socket = channel.connect(8080)) {
                    socket.output().write('x');
                    socket.output().close();
                    socket.input().transferTo(DISCARD);
                }
            },
            channel -> { // stream 8
                try (GuestSocket socket = channel.accept(3128)) {
                    socket.input().transferTo(DISCARD);
                }
            },
            channel -> channel.setDefaultEnv(Map.of("A", "b")), // stream 9
            channel -> channel.setIdentity(new GuestIdentity(new byte[] {1, 2, 3, 4}, "fuzz", null)), // 10
            channel -> channel.ping(BOUND)); // stream 0, token 1

    /** The agent's HELLO that opens every session: protocol 1, every feature, version "fuzz". */
    static byte[] agentHello() {
        return ByteBuffer.allocate(Frame.HEADER_SIZE + 12)
                .putInt(12)
                .put((byte) FrameType.AGENT_HELLO.code())
                .put((byte) 0)
                .putShort((short) 0)
                .putInt(0)
                .putInt(GuestChannel.PROTOCOL_VERSION)
                .putInt(0x3F)
                .put("fuzz".getBytes(java.nio.charset.StandardCharsets.UTF_8))
                .array();
    }

    static void againstChannel(byte[] data) throws InterruptedException {
        ScriptedAgent agent = new ScriptedAgent(data);
        GuestChannel channel;
        try {
            channel = GuestChannel.open(agent.input, agent.output, BOUND);
        } catch (IOException e) {
            throw new AssertionError("the handshake with a well-formed HELLO failed: " + e, e);
        }
        List<CompletableFuture<@Nullable Void>> pending = new ArrayList<>();
        try {
            for (Operation operation : OPERATIONS) {
                CompletableFuture<@Nullable Void> done = new CompletableFuture<>();
                Thread.ofVirtual().name("fuzz-operation").start(() -> {
                    try {
                        operation.run(channel);
                        done.complete(null);
                    } catch (Throwable e) {
                        done.completeExceptionally(e);
                    }
                });
                pending.add(done);
                // Wait until its request is out, so stream ids are assigned in list order.
                agent.awaitRequest(done);
            }
        } finally {
            agent.input.release();
        }
        long deadline = System.nanoTime() + BOUND.toNanos();
        for (int i = 0; i < pending.size(); i++) {
            try {
                pending.get(i).get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (ExecutionException e) {
                Throwable cause = e.getCause();
                if (!(cause instanceof IOException) && !(cause instanceof TimeoutException)) {
                    throw new AssertionError("operation " + (i + 1) + " failed with " + cause, cause);
                }
            } catch (TimeoutException e) {
                channel.close();
                throw new AssertionError("operation " + (i + 1) + " did not end within " + BOUND + " of the input");
            }
        }
        // The input always ends, so the channel closes by itself: EOF, a protocol error or ERROR.
        channel.close();
        Throwable cause = channel.closeReason().orElseThrow().getCause();
        if (cause != null
                && !(cause instanceof EOFException)
                && !(cause instanceof ProtocolException)
                && !(cause instanceof GuestException)) {
            throw new AssertionError("the channel closed for an undocumented reason: " + cause, cause);
        }
        if (!channel.awaitThreads(BOUND)) {
            StringBuilder stacks = new StringBuilder();
            for (Thread thread : channel.runningThreads()) {
                stacks.append("\n").append(thread);
                for (StackTraceElement frame : thread.getStackTrace()) {
                    stacks.append("\n\tat ").append(frame);
                }
            }
            throw new AssertionError("the channel left threads running:" + stacks);
        }
    }

    /**
     * The agent's side of the in-memory connection: its HELLO, then (once every request is out)
     * the fuzz input in pieces, then end of stream. What the host writes is split into frames so
     * the target can tell when each request has been sent.
     */
    private static final class ScriptedAgent {
        final GatedInput input;
        final RequestLog output = new RequestLog();

        ScriptedAgent(byte[] data) {
            input = new GatedInput(agentHello(), data);
        }

        void awaitRequest(CompletableFuture<@Nullable Void> operation) throws InterruptedException {
            long deadline = System.nanoTime() + BOUND.toNanos();
            while (true) {
                Integer type = output.sent.poll(10, TimeUnit.MILLISECONDS);
                if (type != null && isRequest(type)) {
                    return;
                }
                if (operation.isDone() || System.nanoTime() > deadline) {
                    throw new AssertionError("an operation ended or stalled before sending its request: "
                            + (operation.isDone() ? operation.exceptionNow() : "timeout"));
                }
            }
        }

        private static boolean isRequest(int type) {
            FrameType t = FrameType.fromCode(type);
            return t != null
                    && switch (t) {
                        case EXEC, STAT, LIST, FILE_READ, FILE_WRITE, CONNECT, ACCEPT, SET_ENV, IDENTITY, PING -> true;
                        default -> false;
                    };
        }
    }

    /** The HELLO at once; the rest only after {@link #release}, in varying pieces. */
    private static final class GatedInput extends InputStream {
        private final byte[] hello;
        private final byte[] data;
        private final CountDownLatch gate = new CountDownLatch(1);
        private volatile boolean closed;
        private int position; // reader thread only
        private int step;

        GatedInput(byte[] hello, byte[] data) {
            this.hello = hello;
            this.data = data;
        }

        void release() {
            gate.countDown();
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] target, int offset, int length) throws IOException {
            if (length == 0) {
                return 0;
            }
            if (position < hello.length) {
                int n = Math.min(length, hello.length - position);
                System.arraycopy(hello, position, target, offset, n);
                position += n;
                return n;
            }
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException();
            }
            int at = position - hello.length;
            if (closed || at >= data.length) {
                return -1;
            }
            int[] sizes = {7, 4096, 1, 70_000, 12};
            int n = Math.min(Math.min(sizes[step++ % sizes.length], length), data.length - at);
            System.arraycopy(data, at, target, offset, n);
            position += n;
            return n;
        }

        @Override
        public void close() {
            // Closing the channel wakes a reader still waiting for the gate.
            closed = true;
            gate.countDown();
        }
    }

    /** What the host sends, split into frames; only the type of each is kept. */
    private static final class RequestLog extends OutputStream {
        final BlockingQueue<Integer> sent = new LinkedBlockingQueue<>();
        private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] bytes, int offset, int length) {
            pending.write(bytes, offset, length);
            byte[] all = pending.toByteArray();
            int at = 0;
            while (all.length - at >= Frame.HEADER_SIZE) {
                int size = ByteBuffer.wrap(all, at, 4).getInt();
                if (all.length - at - Frame.HEADER_SIZE < size) {
                    break;
                }
                sent.add(Byte.toUnsignedInt(all[at + 4]));
                at += Frame.HEADER_SIZE + size;
            }
            pending.reset();
            pending.write(all, at, all.length - at);
        }
    }
}
