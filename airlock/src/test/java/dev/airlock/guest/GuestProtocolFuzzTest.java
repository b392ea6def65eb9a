package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.fail;

import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Hostile input on both sides: (a) the host facing a fake malicious agent must close the channel,
 * fail what is pending and leave no threads behind; (b) the real agent facing random and malformed
 * frames must stay up and serve the next session.
 */
@Timeout(300)
class GuestProtocolFuzzTest {
    private static final Duration BOUND = Duration.ofSeconds(5);
    private static final int RANDOM_CASES = 300;

    @TempDir
    Path dir;

    // ---- (a) the host against a hostile fake agent ----

    private static byte[] header(long length, int type, int flags, int reserved, int stream) {
        return ByteBuffer.allocate(12)
                .putInt((int) length)
                .put((byte) type)
                .put((byte) flags)
                .putShort((short) reserved)
                .putInt(stream)
                .array();
    }

    private static Frame started(int stream) {
        return Frame.of(FrameType.STARTED, stream, new byte[] {0, 0, 0, 42});
    }

    private static byte[] u32(long value) {
        return ByteBuffer.allocate(4).putInt((int) value).array();
    }

    static Stream<Arguments> hostileCases() {
        return Stream.of(
                Arguments.of(
                        "4 GiB length",
                        (HostileAgent.Attack) s -> s.raw(header(0xFFFFFFFFL, 0x84, 0, 0, 1)),
                        "frame length 4294967295 exceeds"),
                Arguments.of(
                        "length one over the cap",
                        (HostileAgent.Attack) s -> s.raw(header(65537, 0x91, 0, 0, 1)),
                        "65537 exceeds"),
                Arguments.of(
                        "unknown type",
                        (HostileAgent.Attack) s -> s.raw(header(0, 0x4F, 0, 0, 1)),
                        "unknown frame type 0x4F"),
                Arguments.of(
                        "host-only type",
                        (HostileAgent.Attack) s -> s.raw(header(0, 0x10, 0, 0, 1)),
                        "EXEC (0x10) is sent host → agent"),
                Arguments.of(
                        "reserved bits",
                        (HostileAgent.Attack) s -> s.raw(header(0, 0x82, 0, 0x100, 0)),
                        "reserved header bits set: 0x0100"),
                Arguments.of(
                        "unknown flag",
                        (HostileAgent.Attack) s -> s.raw(header(0, 0x82, 0x80, 0, 0)),
                        "unknown flag bits set: 0x80"),
                Arguments.of(
                        "frame for unknown stream",
                        (HostileAgent.Attack) s -> s.send(started(999)),
                        "STARTED (0x83) for unknown stream 999"),
                Arguments.of(
                        "truncated header",
                        (HostileAgent.Attack) s -> s.raw(new byte[] {0, 0, 0}),
                        "stream ended inside a frame header after 3 of 12"),
                Arguments.of(
                        "truncated payload",
                        (HostileAgent.Attack) s -> {
                            s.raw(header(1000, 0x84, 0, 0, s.requestStream));
                            s.raw(new byte[500]);
                        },
                        "stream ended inside the payload of frame STDOUT (0x84) after 500 of 1000"),
                Arguments.of(
                        "huge credit",
                        (HostileAgent.Attack) s -> {
                            s.send(started(s.requestStream));
                            s.send(Frame.of(FrameType.AGENT_CREDIT, s.requestStream, u32(0xFFFFFFFFL)));
                        },
                        "above 2^31"),
                Arguments.of(
                        "window overrun",
                        (HostileAgent.Attack) s -> {
                            s.send(started(s.requestStream));
                            for (int i = 0; i < 5; i++) {
                                s.send(Frame.of(FrameType.STDOUT, s.requestStream, new byte[65536]));
                            }
                        },
                        "sent 65536 bytes with only 0 left in its window"),
                Arguments.of(
                        "output before STARTED",
                        (HostileAgent.Attack) s -> s.send(Frame.of(FrameType.STDOUT, s.requestStream, new byte[1])),
                        "STDOUT (0x84) before STARTED"),
                Arguments.of(
                        "short EXIT",
                        (HostileAgent.Attack) s -> {
                            s.send(started(s.requestStream));
                            s.raw(header(8, 0x86, 0, 0, s.requestStream));
                            s.raw(new byte[8]);
                        },
                        "EXIT (0x86) payload of 8 bytes is shorter than the 9"),
                Arguments.of(
                        "unsolicited PONG",
                        (HostileAgent.Attack) s -> s.send(Frame.of(FrameType.PONG, 0, new byte[] {1, 2, 3})),
                        "PONG that answers no PING"),
                Arguments.of(
                        "file frame on an exec stream",
                        (HostileAgent.Attack) s -> {
                            s.send(started(s.requestStream));
                            s.send(Frame.of(FrameType.DATA, s.requestStream, new byte[1]));
                        },
                        "unexpected DATA (0x91) on exec stream"),
                Arguments.of(
                        "STARTED twice",
                        (HostileAgent.Attack) s -> {
                            s.send(started(s.requestStream));
                            s.send(started(s.requestStream));
                        },
                        "unexpected STARTED (0x83)"),
                Arguments.of(
                        "file result on an exec stream",
                        (HostileAgent.Attack) s -> s.send(Frame.of(FrameType.RESULT, s.requestStream, new byte[0])),
                        "unexpected RESULT (0x90) on exec stream"),
                Arguments.of(
                        "random garbage",
                        (HostileAgent.Attack) s -> {
                            byte[] junk = new byte[4096];
                            new Random(99).nextBytes(junk);
                            junk[0] = (byte) 0xFF;
                            s.raw(junk);
                        },
                        "exceeds the maximum"));
    }

    /** What one case leaves behind, checked the same way for fixed and random cases. */
    private record Outcome(
            GuestChannelClosedException reason, @Nullable Throwable pendingFailure) {}

    /** The operation left pending on the channel while the fake attacks. */
    private interface Pending {
        Object run(GuestChannel channel, OutputStream stuckSink) throws Exception;
    }

    private Outcome attack(HostileAgent fake, HostileAgent.Attack attack) throws Exception {
        return attack(
                fake,
                attack,
                (channel, stuck) ->
                        channel.exec(ExecSpec.of("anything"), stuck, stuck).await());
    }

    private Outcome attack(HostileAgent fake, HostileAgent.Attack attack, Pending operation) throws Exception {
        CompletableFuture<Void> fakeDone = fake.serveOne(true, attack);
        GuestChannel channel = GuestChannel.open(fake.connect(), BOUND);
        CountDownLatch release = new CountDownLatch(1);
        // A sink that never drains, so the host cannot legitimately re-open the window.
        OutputStream stuck = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] bytes, int offset, int length) {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        CompletableFuture<Object> pending = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                pending.complete(operation.run(channel, stuck));
            } catch (Throwable e) {
                pending.completeExceptionally(e);
            }
        });
        Throwable failure = null;
        try {
            pending.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            failure = e.getCause();
        } catch (TimeoutException e) {
            fail("the pending operation did not fail within " + BOUND);
        }
        release.countDown();
        // Whatever the peer sent, it then hung up, so the channel must be closed by now or soon.
        long deadline = System.nanoTime() + BOUND.toNanos();
        while (channel.isOpen() && System.nanoTime() < deadline) {
            Thread.onSpinWait();
            Thread.yield();
        }
        assertThat(channel.closeReason()).as("channel closed").isPresent();
        assertThatThrownBy(channel::ping).isInstanceOf(GuestChannelClosedException.class);
        channel.close();
        assertThat(channel.awaitThreads(BOUND))
                .as("no thread of the channel is left")
                .isTrue();
        fakeDone.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        return new Outcome(channel.closeReason().orElseThrow(), failure);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("hostileCases")
    void hostClosesOnMalformedInput(String name, HostileAgent.Attack attack, String expected) throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            Outcome outcome = attack(fake, attack);
            Throwable cause = outcome.reason().getCause();
            assertThat(cause).isInstanceOf(ProtocolException.class);
            assertThat(cause).hasMessageContaining(expected);
            assertThat(outcome.pendingFailure())
                    .isInstanceOf(GuestChannelClosedException.class)
                    .hasCause(cause);
        }
    }

    @Test
    void tlvOverrunInAResultClosesTheChannel() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            Outcome outcome = attack(
                    fake,
                    s -> s.send(Frame.of(FrameType.RESULT, s.requestStream, new byte[] {0, 12, 0, 0, 0, 9, 1})),
                    (channel, stuck) -> channel.stat("/"));
            assertThat(outcome.pendingFailure()).isInstanceOf(GuestChannelClosedException.class);
            assertThat(outcome.reason().getCause())
                    .isInstanceOf(ProtocolException.class)
                    .hasMessage("TLV tag 12 at offset 0 claims 9 bytes but only 1 remain in the payload");
        }
    }

    /** Found by Jazzer (kept input crash-socket-end-before-connected): connect() used to wait forever. */
    @Test
    void socketEndBeforeConnectedClosesTheChannel() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            Outcome outcome = attack(
                    fake,
                    s -> s.send(Frame.of(FrameType.END, s.requestStream, new byte[8])),
                    (channel, stuck) -> channel.connect(8080));
            assertThat(outcome.pendingFailure()).isInstanceOf(GuestChannelClosedException.class);
            assertThat(outcome.reason().getCause())
                    .isInstanceOf(ProtocolException.class)
                    .hasMessageContaining("unexpected END (0x9F) on socket stream");
        }
    }

    @Test
    void sessionErrorFromTheAgentEndsTheSession() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            Outcome outcome =
                    attack(fake, s -> s.send(Frame.of(FrameType.ERROR, 0, new byte[] {0, 0, 0, 5, 'b', 'o', 'o'})));
            assertThat(outcome.reason().getCause())
                    .isInstanceOf(GuestException.class)
                    .hasMessage("EIO: boo");
        }
    }

    @Test
    void peerDisappearingFailsPendingOperations() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            Outcome outcome = attack(fake, s -> s.send(started(s.requestStream)));
            assertThat(outcome.pendingFailure()).isInstanceOf(GuestChannelClosedException.class);
            assertThat(outcome.reason()).hasMessageContaining("the agent closed the connection");
            assertThat(outcome.reason().getCause()).isInstanceOf(EOFException.class);
        }
    }

    @Test
    void silentAgentTimesOutTheHandshake() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            CompletableFuture<Void> fakeDone = fake.serveOne(false, s -> {});
            long start = System.nanoTime();
            assertThatThrownBy(() -> GuestChannel.open(fake.connect(), Duration.ofMillis(300)))
                    .isInstanceOf(GuestChannelClosedException.class)
                    .hasMessageContaining("did not answer HELLO");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(BOUND);
            fakeDone.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    // ---- a session's start and end over a port that delivers late (virtio-serial) ----

    /**
     * A fake agent (the real one produces this only by a race over virtio-serial: a claim's
     * identity answered after the host left and delivered to the next session): it reads the
     * host's HELLO, sends {@code stale} RESULT frames of an earlier session's stream, then HELLO.
     */
    private CompletableFuture<Void> answerHelloAfterStaleFrames(ServerSocketChannel server, int stale) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try (SocketChannel socket = server.accept()) {
                FrameReader reader = new FrameReader(socket, FrameType.Direction.TO_AGENT);
                FrameWriter writer = new FrameWriter(socket);
                reader.read();
                for (int i = 0; i < stale; i++) {
                    writer.write(Frame.of(FrameType.RESULT, 7 + i, new byte[0]));
                }
                writer.write(HostileAgent.agentHello());
                try {
                    while (true) {
                        reader.read();
                    }
                } catch (IOException e) {
                    // the host hung up
                }
                done.complete(null);
            } catch (IOException | RuntimeException e) {
                done.completeExceptionally(e);
            }
        });
        return done;
    }

    private ServerSocketChannel listen() throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(dir.resolve("late.sock")));
        return server;
    }

    @Test
    void answersOfAnEarlierSessionBeforeHelloAreSkipped() throws Exception {
        try (ServerSocketChannel server = listen()) {
            CompletableFuture<Void> fakeDone = answerHelloAfterStaleFrames(server, GuestChannel.STALE_BEFORE_HELLO);
            try (GuestChannel ch = GuestChannel.open(SocketChannel.open(server.getLocalAddress()), BOUND)) {
                assertThat(ch.isOpen()).isTrue();
                assertThat(ch.agentVersion()).isEqualTo("fake");
            }
            fakeDone.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    @Test
    void moreFramesBeforeHelloThanAnEarlierSessionLeavesBreakTheProtocol() throws Exception {
        try (ServerSocketChannel server = listen()) {
            answerHelloAfterStaleFrames(server, GuestChannel.STALE_BEFORE_HELLO + 1);
            assertThatThrownBy(() -> GuestChannel.open(SocketChannel.open(server.getLocalAddress()), BOUND))
                    .isInstanceOf(GuestChannelClosedException.class)
                    .hasMessageContaining("frames of an earlier session before the agent's HELLO");
        }
    }

    /**
     * finishSending ends the host's half only: the peer reads the last frame and then the end of
     * input, while the host's end stays open (a full close let QEMU see the hang-up first and
     * drop the frame). The fake stands in for QEMU's chardev, which the test cannot pause.
     */
    @Test
    void finishingASessionDeliversTheLastFrameBeforeTheEnd() throws Exception {
        try (HostileAgent fake = new HostileAgent(dir)) {
            CompletableFuture<List<Object>> heard = new CompletableFuture<>();
            CountDownLatch checked = new CountDownLatch(1);
            fake.serveOne(true, s -> {
                List<Object> got = new ArrayList<>();
                got.add(s.request.type());
                try {
                    s.read();
                    got.add("more");
                } catch (EOFException e) {
                    got.add("end of input");
                }
                heard.complete(got);
                try {
                    checked.await(BOUND.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            GuestChannel ch = GuestChannel.open(fake.connect(), BOUND);
            try {
                ch.sendIdentity(GuestIdentity.onlyHostname("late"));
                ch.finishSending(BOUND);
                assertThat(heard.get(BOUND.toMillis(), TimeUnit.MILLISECONDS))
                        .containsExactly(FrameType.IDENTITY, "end of input");
                assertThat(ch.isOpen())
                        .as("the host's end stays open until the peer closes")
                        .isTrue();
            } finally {
                checked.countDown();
                ch.close();
            }
        }
    }

    // ---- bounded calls: deadlines and size caps against an agent that stalls or floods ----

    @Test
    void boundedCallsFailAtTheirDeadlineWhenTheAgentNeverAnswers() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (HostileAgent fake = new HostileAgent(dir)) {
            fake.serveOne(true, HostileAgent.stalls(release));
            GuestChannel channel = GuestChannel.open(fake.connect(), BOUND);
            try {
                long start = System.nanoTime();
                assertThatThrownBy(() -> channel.readFile(
                                "/etc/ssl/certs/ca-certificates.crt",
                                OutputStream.nullOutputStream(),
                                1 << 20,
                                Duration.ofSeconds(1)))
                        .isInstanceOfSatisfying(
                                GuestLimitException.class,
                                e -> assertThat(e.limit()).isEqualTo(GuestLimitException.Limit.TIME))
                        .hasMessage("the agent did not finish reading /etc/ssl/certs/ca-certificates.crt within 1 s"
                                + " (a deadline of the host)");
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(4));
                Duration brief = Duration.ofMillis(300);
                assertThatThrownBy(() -> channel.stat("/x", brief)).isInstanceOf(GuestLimitException.class);
                assertThatThrownBy(() -> channel.list("/x", brief)).isInstanceOf(GuestLimitException.class);
                assertThatThrownBy(() -> channel.setDefaultEnv(java.util.Map.of("A", "b"), brief))
                        .isInstanceOf(GuestLimitException.class);
                assertThatThrownBy(() -> channel.connect(8000, brief)).isInstanceOf(GuestLimitException.class);
                assertThatThrownBy(() -> channel.writeFile(
                                "/x", new java.io.ByteArrayInputStream(new byte[10]), 0644, false, brief))
                        .isInstanceOf(GuestLimitException.class);
                // A missed deadline cancels the call, not the session.
                assertThat(channel.isOpen()).isTrue();
            } finally {
                release.countDown();
                channel.close();
            }
        }
    }

    @Test
    void aBoundedReadStopsAtItsSizeCap() throws Exception {
        java.util.concurrent.atomic.AtomicLong sent = new java.util.concurrent.atomic.AtomicLong();
        try (HostileAgent fake = new HostileAgent(dir)) {
            CompletableFuture<Void> done = fake.serveOne(true, HostileAgent.servesEndlessFiles(1L << 30, sent));
            GuestChannel channel = GuestChannel.open(fake.connect(), BOUND);
            java.io.ByteArrayOutputStream got = new java.io.ByteArrayOutputStream();
            assertThatThrownBy(() -> channel.readFile("/bundle", got, 1 << 20, Duration.ofSeconds(30)))
                    .isInstanceOfSatisfying(
                            GuestLimitException.class,
                            e -> assertThat(e.limit()).isEqualTo(GuestLimitException.Limit.SIZE))
                    .hasMessageContaining("more than 1048576 bytes for reading /bundle");
            assertThat(got.size()).isLessThanOrEqualTo(1 << 20);
            channel.close();
            done.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
            // The host stopped the stream: the fake got no further than its window past the cap.
            assertThat(sent.get()).isLessThanOrEqualTo((1L << 20) + InboundBuffer.WINDOW + Frame.MAX_PAYLOAD);
        }
    }

    @Test
    void aCallStillBlockedPastItsDeadlineEndsTheSession() throws Exception {
        // The fake opens a huge window for a file and then stops reading: the host's writes fill
        // the socket and block, where no stream-level wake-up reaches them.
        CountDownLatch release = new CountDownLatch(1);
        try (HostileAgent fake = new HostileAgent(dir)) {
            fake.serveOne(true, s -> {
                s.send(Frame.of(FrameType.AGENT_CREDIT, s.requestStream, u32(1L << 30)));
                HostileAgent.stalls(release).run(s);
            });
            GuestChannel channel = GuestChannel.open(fake.connect(), BOUND);
            java.io.InputStream endless = new java.io.InputStream() {
                @Override
                public int read() {
                    return 0;
                }

                @Override
                public int read(byte[] b, int off, int len) {
                    return len;
                }
            };
            long start = System.nanoTime();
            try {
                assertThatThrownBy(() -> channel.writeFile("/big", endless, 0644, false, Duration.ofSeconds(1)))
                        .isInstanceOf(GuestLimitException.class);
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
                assertThat(channel.isOpen()).isFalse();
                assertThat(channel.closeReason().orElseThrow())
                        .hasMessageContaining("writing /big was still blocked 5 s after its deadline");
            } finally {
                release.countDown();
                channel.close();
            }
            assertThat(channel.awaitThreads(BOUND)).isTrue();
        }
    }

    @Test
    void randomHostileStreams() throws Exception {
        int protocolErrors = 0;
        try (HostileAgent fake = new HostileAgent(dir)) {
            for (int seed = 0; seed < RANDOM_CASES; seed++) {
                Random random = new Random(seed);
                try {
                    Outcome outcome = attack(fake, s -> s.raw(randomFrames(random, s.requestStream)));
                    if (outcome.reason().getCause() instanceof ProtocolException) {
                        protocolErrors++;
                    }
                    if (outcome.pendingFailure() != null) {
                        // A well-formed ERROR on the stream is a legitimate answer too.
                        assertThat(outcome.pendingFailure())
                                .isInstanceOfAny(GuestChannelClosedException.class, GuestException.class);
                    }
                } catch (AssertionError e) {
                    throw new AssertionError("random case with seed " + seed + ": " + e.getMessage(), e);
                }
            }
        }
        System.out.println("random hostile cases: " + RANDOM_CASES + ", ended by a protocol error: " + protocolErrors);
        assertThat(protocolErrors).isGreaterThan(RANDOM_CASES / 2);
    }

    /** A few frames that are each plausible but probably wrong: mostly-valid headers, odd fields. */
    private static byte[] randomFrames(Random random, int requestStream) {
        FrameType[] types = FrameType.values();
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        if (random.nextBoolean()) {
            out.writeBytes(frameBytes(started(requestStream)));
        }
        int frames = 1 + random.nextInt(4);
        for (int i = 0; i < frames; i++) {
            int type = random.nextInt(4) == 0 ? random.nextInt(256) : types[random.nextInt(types.length)].code();
            int flags = random.nextInt(8) == 0 ? random.nextInt(256) : random.nextInt(2);
            int reserved = random.nextInt(16) == 0 ? random.nextInt(65536) : 0;
            int stream = switch (random.nextInt(4)) {
                case 0 -> 0;
                case 1 -> random.nextInt();
                default -> requestStream;
            };
            long length = switch (random.nextInt(6)) {
                case 0 -> 0xFFFFFFFFL - random.nextInt(16);
                case 1 -> 65536 + random.nextInt(1000);
                case 2 -> 65536;
                default -> random.nextInt(64);
            };
            int present = (int) Math.min(length, random.nextInt(8) == 0 ? random.nextInt(100) : length);
            present = Math.min(present, 70_000);
            byte[] payload = new byte[present];
            random.nextBytes(payload);
            out.writeBytes(header(length, type, flags, reserved, stream));
            out.writeBytes(payload);
        }
        return out.toByteArray();
    }

    private static byte[] frameBytes(Frame frame) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try {
            new FrameWriter(out).write(frame);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out.toByteArray();
    }

    // ---- (b) the real agent against random and malformed frames ----

    @Test
    void agentSurvivesMalformedAndRandomFrames() throws Exception {
        try (AgentProcess agent = AgentProcess.start(dir)) {
            List<byte[]> cases = new ArrayList<>(fixedAgentCases());
            for (int seed = 0; seed < RANDOM_CASES; seed++) {
                cases.add(randomAgentCase(new Random(1000 + seed)));
            }
            for (int i = 0; i < cases.size(); i++) {
                sendAndHangUp(agent, cases.get(i), i);
                assertThat(agent.isAlive())
                        .as("agent alive after case %d; log: %s", i, agent.log())
                        .isTrue();
                try (GuestChannel channel = agent.open()) {
                    channel.ping(BOUND);
                } catch (IOException | TimeoutException e) {
                    throw new AssertionError(
                            "agent did not serve a fresh session after case " + i + "; log: " + agent.log(), e);
                }
            }
            System.out.println("agent fuzz cases: " + cases.size());
        }
    }

    private static final byte[] HELLO = frameBytes(Frame.of(FrameType.HELLO, 0, u32(1)));

    private static byte[] concat(byte[]... parts) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (byte[] part : parts) {
            out.writeBytes(part);
        }
        return out.toByteArray();
    }

    private List<byte[]> fixedAgentCases() {
        byte[] execTrue = new Tlv.Writer().string(1, "true").toPayload();
        byte[] writeTarget = new Tlv.Writer()
                .string(1, dir.resolve("fuzz-target").toString())
                .toPayload();
        return List.of(
                new byte[0],
                new byte[] {0, 0},
                header(0xFFFFFFFFL, 0x01, 0, 0, 0),
                concat(HELLO, header(0xFFFFFFFFL, 0x02, 0, 0, 0)),
                concat(HELLO, header(0, 0x4F, 0, 0, 0)),
                concat(HELLO, header(0, 0x84, 0, 0, 1)), // agent-only type from the host
                concat(HELLO, header(0, 0x02, 0, 1, 0)), // reserved bits
                concat(HELLO, header(0, 0x02, 4, 0, 0)), // unknown flag
                concat(HELLO, header(100, 0x02, 0, 0, 0), new byte[100]), // PING over 64 bytes
                frameBytes(Frame.of(FrameType.HELLO, 0, u32(2))), // wrong version
                frameBytes(Frame.of(FrameType.PING, 0, new byte[1])), // nothing before HELLO
                concat(HELLO, HELLO),
                concat(HELLO, header(2, 0x01, 0, 0, 0), new byte[2]),
                concat(HELLO, header(10, 0x10, 0, 0, 5), new byte[] {0, 1, 0, 0, 0, 9, 1, 2, 3, 4}), // TLV overrun
                concat(HELLO, header(0, 0x10, 0, 0, 0)), // EXEC on stream 0
                concat(
                        HELLO,
                        frameBytes(Frame.of(FrameType.EXEC, 5, execTrue)),
                        frameBytes(Frame.of(FrameType.EXEC, 5, execTrue))),
                concat(HELLO, frameBytes(Frame.of(FrameType.STDIN, 77, new byte[10]))), // unknown stream
                concat(HELLO, frameBytes(Frame.of(FrameType.CREDIT, 77, u32(0xFFFFFFFFL)))),
                concat(
                        HELLO,
                        frameBytes(Frame.of(FrameType.FILE_WRITE, 3, writeTarget)),
                        frameBytes(Frame.of(FrameType.FILE_DATA, 3, new byte[65536])),
                        frameBytes(Frame.of(FrameType.FILE_DATA, 3, new byte[65536])),
                        frameBytes(Frame.of(FrameType.FILE_DATA, 3, new byte[65536])),
                        frameBytes(Frame.of(FrameType.FILE_DATA, 3, new byte[65536])),
                        frameBytes(Frame.of(FrameType.FILE_DATA, 3, new byte[1]))), // window overrun
                concat(
                        HELLO,
                        frameBytes(Frame.of(FrameType.FILE_WRITE, 3, writeTarget)),
                        frameBytes(Frame.of(FrameType.CREDIT, 3, u32(5)))), // credit on a write stream
                concat(HELLO, frameBytes(Frame.of(FrameType.FILE_READ, 4, new byte[] {0, 1, 0, 0, 0, 3, 'a', 'b'}))),
                concat(HELLO, header(20, 0x20, 0, 0, 4), new byte[3])); // truncated payload, then EOF
    }

    /**
     * Random frames after (usually) a valid HELLO. Request types that act on the system (EXEC,
     * FILE_WRITE, SHUTDOWN) are left out: random bytes must not run programs or write files as
     * root; their malformed shapes are in the fixed cases.
     */
    private static byte[] randomAgentCase(Random random) {
        int[] safeTypes = {
            0x01, 0x02, 0x11, 0x12, 0x13, 0x14, 0x20, 0x22, 0x23, 0x24, 0xE0, 0x81, 0x84, 0x90, 0x4F, 0xFF
        };
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        if (random.nextInt(8) != 0) {
            out.writeBytes(HELLO);
        }
        if (random.nextInt(6) == 0) {
            // Raw noise whose first byte makes it an oversized frame, so none of it is obeyed.
            byte[] noise = new byte[1 + random.nextInt(2000)];
            random.nextBytes(noise);
            noise[0] = (byte) (0x80 | noise[0]);
            out.writeBytes(noise);
            return out.toByteArray();
        }
        int frames = 1 + random.nextInt(6);
        for (int i = 0; i < frames; i++) {
            int type = safeTypes[random.nextInt(safeTypes.length)];
            int flags = random.nextInt(8) == 0 ? random.nextInt(256) : random.nextInt(2);
            int reserved = random.nextInt(16) == 0 ? 1 + random.nextInt(65535) : 0;
            int stream = random.nextInt(3) == 0 ? 0 : 1 + random.nextInt(8);
            int length = switch (random.nextInt(5)) {
                case 0 -> 65536 + random.nextInt(100);
                case 1 -> random.nextInt(65537);
                default -> random.nextInt(80);
            };
            int present = random.nextInt(10) == 0 ? random.nextInt(length + 1) : length;
            byte[] payload = new byte[present];
            random.nextBytes(payload);
            out.writeBytes(header(length, type, flags, reserved, stream));
            out.writeBytes(payload);
        }
        return out.toByteArray();
    }

    /** Sends one case on a fresh connection, hangs up, and waits (bounded) for the agent to close. */
    private static void sendAndHangUp(AgentProcess agent, byte[] bytes, int index) throws Exception {
        try (SocketChannel socket = agent.connect()) {
            CompletableFuture<Void> closedByAgent = new CompletableFuture<>();
            Thread.ofVirtual().start(() -> {
                ByteBuffer sink = ByteBuffer.allocate(65536);
                try {
                    while (socket.read(sink.clear()) >= 0) {
                        // Replies and ERRORs are not checked; the agent's survival is.
                    }
                } catch (IOException e) {
                    // Reset by the agent: also a hang-up.
                }
                closedByAgent.complete(null);
            });
            try {
                ByteBuffer buffer = ByteBuffer.wrap(bytes);
                while (buffer.hasRemaining()) {
                    socket.write(buffer);
                }
                socket.shutdownOutput();
            } catch (IOException e) {
                // The agent may hang up before reading everything.
            }
            try {
                closedByAgent.get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                fail("agent kept case " + index + " open for " + BOUND + " after the host hung up");
            }
        }
    }
}
