package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The host side against the real agent, served on a unix socket as in container mode. */
@Timeout(120)
class GuestChannelAgentTest {
    @TempDir
    static Path agentDir;

    private static AgentProcess agent;

    @TempDir
    Path work;

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
        assertThat(channel.awaitThreads(Duration.ofSeconds(10)))
                .as("threads of the channel end")
                .isTrue();
        assertThat(agent.isAlive()).as("agent alive; log: %s", agent.log()).isTrue();
    }

    /** Output captured as text; for small outputs only. */
    private record Result(ExitStatus status, String stdout, String stderr) {}

    private Result run(ExecSpec spec) throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        ExitStatus status = channel.exec(spec, out, err).await();
        return new Result(status, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    private Result sh(String script) throws Exception {
        return run(ExecSpec.of("sh", "-c", script));
    }

    /** Collects text and lets a test wait for some of it to arrive. */
    private static final class TextSink extends OutputStream {
        private final StringBuilder text = new StringBuilder();

        @Override
        public synchronized void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] bytes, int offset, int length) {
            text.append(new String(bytes, offset, length, StandardCharsets.UTF_8));
            notifyAll();
        }

        synchronized void awaitContains(String wanted) throws InterruptedException {
            while (text.indexOf(wanted) < 0) {
                wait();
            }
        }

        synchronized String text() {
            return text.toString();
        }
    }

    /** Counts and hashes what passes through, without keeping it. */
    private static final class HashingSink extends DigestOutputStream {
        private final AtomicLong count = new AtomicLong();

        HashingSink() throws NoSuchAlgorithmException {
            super(OutputStream.nullOutputStream(), MessageDigest.getInstance("SHA-256"));
        }

        @Override
        public void write(byte[] bytes, int offset, int length) throws IOException {
            super.write(bytes, offset, length);
            count.addAndGet(length);
        }

        String hex() {
            return HexFormat.of().formatHex(getMessageDigest().digest());
        }
    }

    @Test
    void aBoundedReadOfAHugeFileStopsAtItsCapAndTheSessionGoesOn() throws Exception {
        // Sparse: a 1 GiB file the agent reads as fast as it can send.
        Path huge = work.resolve("huge.crt");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
            f.setLength(1L << 30);
        }
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        assertThatThrownBy(() -> channel.readFile(huge.toString(), got, 1 << 20, Duration.ofSeconds(30)))
                .isInstanceOfSatisfying(
                        GuestLimitException.class,
                        e -> assertThat(e.limit()).isEqualTo(GuestLimitException.Limit.SIZE));
        assertThat(got.size()).isLessThanOrEqualTo(1 << 20);
        // The agent dropped the read; the session serves the next calls.
        assertThat(channel.stat(huge.toString(), Duration.ofSeconds(10)).size()).isEqualTo(1L << 30);
        Path small = work.resolve("small.crt");
        Files.writeString(small, "a small bundle\n");
        ByteArrayOutputStream whole = new ByteArrayOutputStream();
        assertThat(channel.readFile(small.toString(), whole, 1 << 20, Duration.ofSeconds(10)))
                .isEqualTo(15);
        assertThat(whole.toString(StandardCharsets.UTF_8)).isEqualTo("a small bundle\n");
    }

    @Test
    void helloReportsVersionAndFeatures() throws Exception {
        assertThat(channel.agentVersion()).isNotBlank();
        assertThat(channel.features())
                .containsExactlyInAnyOrder(
                        GuestFeature.EXEC,
                        GuestFeature.PTY,
                        GuestFeature.FILES,
                        GuestFeature.SHUTDOWN,
                        GuestFeature.IDENTITY,
                        GuestFeature.SOCKETS,
                        GuestFeature.FS_OPS,
                        GuestFeature.BUILTINS);
        for (int i = 0; i < 200; i++) {
            channel.ping();
        }
        long start = System.nanoTime();
        int rounds = 2000;
        for (int i = 0; i < rounds; i++) {
            channel.ping();
        }
        System.out.println("ping round trip: " + (System.nanoTime() - start) / rounds / 1000 + " µs");
    }

    @Test
    void exitCodesAndSignals() throws Exception {
        assertThat(sh("exit 42").status()).isEqualTo(new ExitStatus(42, 0, false, false));
        ExitStatus killed = sh("kill -TERM $$").status();
        assertThat(killed.signal()).isEqualTo(15);
        assertThat(killed.shellStatus()).isEqualTo(128 + 15);
        assertThat(run(ExecSpec.of("true")).status().shellStatus()).isZero();

        Execution sleeper = channel.exec(ExecSpec.of("sleep", "60"), OutputStream.nullOutputStream(), System.err);
        assertThat(sleeper.pid()).isPositive();
        assertThat(sleeper.signal(9)).isTrue();
        ExitStatus status = sleeper.await(Duration.ofSeconds(10));
        assertThat(status.signal()).isEqualTo(9);
        assertThat(status.timedOut()).isFalse();
        assertThat(sleeper.signal(9)).as("signal after exit").isFalse();
    }

    @Test
    void execRoundTripOfTrue() throws Exception {
        int rounds = 200;
        for (int i = 0; i < 20; i++) {
            run(ExecSpec.of("true"));
        }
        long start = System.nanoTime();
        for (int i = 0; i < rounds; i++) {
            assertThat(run(ExecSpec.of("true")).status().exitCode()).isZero();
        }
        long micros = (System.nanoTime() - start) / rounds / 1000;
        System.out.println("exec round trip of true: " + micros + " µs");
    }

    @Test
    void largeStdoutArrivesCompleteAndSeparateFromStderr() throws Exception {
        long size = 100_000_000;
        HashingSink out = new HashingSink();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        long start = System.nanoTime();
        ExitStatus status = channel.exec(
                        ExecSpec.of("bash", "-c", "head -c " + size + " /dev/urandom | tee >(sha256sum >&2); wait"),
                        out,
                        err)
                .await();
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("stdout 100 MB (urandom + tee + sha256sum in guest): %.0f MB/s%n", size / 1e6 / seconds);
        assertThat(status.exitCode()).isZero();
        assertThat(out.count.get()).isEqualTo(size);
        assertThat(err.toString(StandardCharsets.UTF_8).trim()).isEqualTo(out.hex() + "  -");
    }

    @Test
    void stdoutThroughput() throws Exception {
        long size = 200_000_000;
        AtomicLong count = new AtomicLong();
        OutputStream counter = new OutputStream() {
            @Override
            public void write(int b) {
                count.incrementAndGet();
            }

            @Override
            public void write(byte[] bytes, int offset, int length) {
                count.addAndGet(length);
            }
        };
        long start = System.nanoTime();
        channel.exec(ExecSpec.of("head", "-c", Long.toString(size), "/dev/zero"), counter, System.err)
                .await();
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("stdout 200 MB of /dev/zero: %.0f MB/s%n", size / 1e6 / seconds);
        assertThat(count.get()).isEqualTo(size);
    }

    @Test
    void interleavedStdoutAndStderrStaySeparate() throws Exception {
        HashingSink out = new HashingSink();
        HashingSink err = new HashingSink();
        channel.exec(
                        ExecSpec.of(
                                "bash",
                                "-c",
                                "head -c 20000000 /dev/zero & head -c 10000000 /dev/zero | tr '\\0' x >&2; wait"),
                        out,
                        err)
                .await();
        assertThat(out.count.get()).isEqualTo(20_000_000);
        assertThat(err.count.get()).isEqualTo(10_000_000);
    }

    @Test
    void stdinStreamsThroughTheProcess() throws Exception {
        byte[] data = new byte[20_000_000];
        new Random(7).nextBytes(data);
        String expected =
                HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Execution sum = channel.exec(ExecSpec.builder("sha256sum").stdin(true).build(), out, System.err);
        long start = System.nanoTime();
        try (OutputStream stdin = sum.stdin()) {
            for (int offset = 0; offset < data.length; offset += 100_000) {
                stdin.write(data, offset, Math.min(100_000, data.length - offset));
            }
        }
        assertThat(sum.await().exitCode()).isZero();
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("stdin 20 MB into sha256sum: %.0f MB/s%n", 20 / seconds);
        assertThat(out.toString(StandardCharsets.UTF_8).trim()).isEqualTo(expected + "  -");
    }

    @Test
    void environmentAndWorkingDirectoryApply() throws Exception {
        Result result = run(ExecSpec.builder("sh", "-c", "echo \"$GREETING:$PWD:$HOME\"")
                .env("GREETING", "hello world")
                .env("HOME", "/override")
                .cwd(work.toString())
                .build());
        assertThat(result.stdout()).isEqualTo("hello world:" + work + ":/override\n");
        assertThat(sh("echo $PATH").stdout()).contains("/usr/bin");
    }

    @Test
    void timeoutKillsTheProcessGroup() throws Exception {
        long start = System.nanoTime();
        Result result = run(ExecSpec.builder("sh", "-c", "sleep 30 & sleep 30; wait")
                .timeout(Duration.ofMillis(300))
                .build());
        assertThat(result.status().signal()).isEqualTo(9);
        assertThat(result.status().timedOut()).isTrue();
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    }

    @Test
    void fiftyConcurrentExecsKeepTheirOutputApart() throws Exception {
        int execs = 50;
        int lines = 300;
        try (ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<Result>> results = new ArrayList<>();
            for (int i = 0; i < execs; i++) {
                String id = "exec" + i;
                results.add(threads.submit(() -> run(ExecSpec.builder(
                                "sh",
                                "-c",
                                "i=0; while [ $i -lt " + lines + " ]; do i=$((i+1)); echo \"$ID out $i\";"
                                        + " echo \"$ID err $i\" >&2; done; exit 3")
                        .env("ID", id)
                        .build())));
            }
            for (int i = 0; i < execs; i++) {
                Result result = results.get(i).get();
                StringBuilder out = new StringBuilder();
                StringBuilder err = new StringBuilder();
                for (int line = 1; line <= lines; line++) {
                    out.append("exec").append(i).append(" out ").append(line).append('\n');
                    err.append("exec").append(i).append(" err ").append(line).append('\n');
                }
                assertThat(result.status().exitCode()).isEqualTo(3);
                assertThat(result.stdout()).isEqualTo(out.toString());
                assertThat(result.stderr()).isEqualTo(err.toString());
            }
        }
    }

    @Test
    void slowConsumerDoesNotStallOtherStreams() throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        AtomicLong slowBytes = new AtomicLong();
        OutputStream stuck = new OutputStream() {
            @Override
            public void write(int b) {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] bytes, int offset, int length) {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                slowBytes.addAndGet(length);
            }
        };
        Execution slow = channel.exec(
                ExecSpec.of("head", "-c", "50000000", "/dev/zero"), stuck, OutputStream.nullOutputStream());
        HashingSink fast = new HashingSink();
        ExitStatus fastStatus = channel.exec(
                        ExecSpec.of("head", "-c", "30000000", "/dev/zero"), fast, OutputStream.nullOutputStream())
                .await(Duration.ofSeconds(60));
        assertThat(fastStatus.exitCode()).isZero();
        assertThat(fast.count.get()).isEqualTo(30_000_000);
        assertThat(channel.ping()).isNotNull();
        assertThat(slow.isDone()).as("the slow stream is still held back").isFalse();
        release.countDown();
        assertThat(slow.await(Duration.ofSeconds(60)).exitCode()).isZero();
        assertThat(slowBytes.get()).isEqualTo(50_000_000);
    }

    @Test
    void filesRoundTripByteExact() throws Exception {
        byte[] data = new byte[10 * 1024 * 1024 + 123];
        new Random(11).nextBytes(data);
        Path target = work.resolve("deep/er/blob.bin");
        long start = System.nanoTime();
        long written = channel.writeFile(target.toString(), new ByteArrayInputStream(data), 0600, true);
        double writeSeconds = (System.nanoTime() - start) / 1e9;
        assertThat(written).isEqualTo(data.length);
        assertThat(Files.readAllBytes(target)).isEqualTo(data);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(target)))
                .isEqualTo("rw-------");

        ByteArrayOutputStream back = new ByteArrayOutputStream();
        start = System.nanoTime();
        assertThat(channel.readFile(target.toString(), back)).isEqualTo(data.length);
        double readSeconds = (System.nanoTime() - start) / 1e9;
        assertThat(back.toByteArray()).isEqualTo(data);
        System.out.printf("file write 10 MB: %.0f MB/s, read: %.0f MB/s%n", 10.5 / writeSeconds, 10.5 / readSeconds);

        channel.writeFile(target.toString(), new ByteArrayInputStream(new byte[0]), 0644, false);
        assertThat(Files.size(target)).isZero();
    }

    @Test
    void fileErrorsCarryErrno() throws Exception {
        assertThatThrownBy(() -> channel.readFile(work.resolve("missing").toString(), new ByteArrayOutputStream()))
                .isInstanceOfSatisfying(
                        GuestException.class, e -> assertThat(e.errno()).isEqualTo(GuestException.ENOENT));
        assertThatThrownBy(() -> channel.writeFile(
                        work.resolve("no/such/dir/f").toString(), new ByteArrayInputStream(new byte[10]), 0644, false))
                .isInstanceOfSatisfying(
                        GuestException.class, e -> assertThat(e.errno()).isEqualTo(GuestException.ENOENT));
        assertThatThrownBy(() -> channel.stat(work.resolve("missing").toString()))
                .isInstanceOf(GuestException.class)
                .hasMessageStartingWith("ENOENT: ");
        assertThat(channel.ping()).as("the session survives stream errors").isNotNull();
    }

    @Test
    void statAndList() throws Exception {
        Files.writeString(work.resolve("b.txt"), "hello");
        Files.createDirectory(work.resolve("a-dir"));
        Files.createSymbolicLink(work.resolve("c-link"), Path.of("b.txt"));

        FileStat file = channel.stat(work.resolve("b.txt").toString());
        assertThat(file.type()).isEqualTo(FileType.FILE);
        assertThat(file.size()).isEqualTo(5);
        assertThat(file.uid()).hasValue(0);
        assertThat(file.modified())
                .isEqualTo(Files.getLastModifiedTime(work.resolve("b.txt")).toInstant());

        FileStat link = channel.stat(work.resolve("c-link").toString());
        assertThat(link.type()).isEqualTo(FileType.SYMLINK);
        assertThat(link.linkTarget()).isEqualTo("b.txt");

        assertThat(channel.stat(work.toString()).type()).isEqualTo(FileType.DIRECTORY);

        List<DirEntry> entries = channel.list(work.toString());
        assertThat(entries).extracting(DirEntry::name).containsExactly("a-dir", "b.txt", "c-link");
        assertThat(entries)
                .extracting(e -> e.stat().type())
                .containsExactly(FileType.DIRECTORY, FileType.FILE, FileType.SYMLINK);
        assertThat(entries.get(1).stat().size()).isEqualTo(5);
    }

    @Test
    void startFailuresAreSpecific() throws Exception {
        assertThatThrownBy(() -> run(ExecSpec.of("no-such-command-airlock")))
                .isInstanceOf(CommandNotFoundException.class)
                .hasMessageContaining("no-such-command-airlock");
        Path notExecutable = work.resolve("script.sh");
        Files.writeString(notExecutable, "#!/bin/sh\n");
        assertThatThrownBy(() -> run(ExecSpec.of(notExecutable.toString())))
                .isInstanceOf(CommandNotExecutableException.class);
        assertThat(sh("echo still fine").stdout()).isEqualTo("still fine\n");
    }

    @Test
    void ptyShowsTerminalAndFollowsResize() throws Exception {
        Result tty = run(ExecSpec.builder("tty").tty(24, 80).build());
        assertThat(tty.stdout()).startsWith("/dev/pts/");
        assertThat(tty.stderr()).isEmpty();

        TextSink out = new TextSink();
        Execution shell = channel.exec(
                ExecSpec.builder("sh", "-c", "stty size; read line; stty size; echo \"$TERM\"")
                        .tty(24, 80)
                        .stdin(true)
                        .build(),
                out,
                out);
        out.awaitContains("24 80");
        shell.resize(33, 101);
        shell.stdin().write("go\n".getBytes(StandardCharsets.US_ASCII));
        shell.stdin().flush();
        assertThat(shell.await(Duration.ofSeconds(30)).exitCode()).isZero();
        String text = out.text().replace("\r", "");
        assertThat(text).contains("24 80\n").contains("33 101\n").contains("xterm-256color");
        assertThatThrownBy(() -> channel.exec(ExecSpec.of("true"), OutputStream.nullOutputStream(), System.err)
                        .resize(1, 1))
                .isInstanceOf(IllegalStateException.class);
    }

    @Test
    void closingTheChannelFailsPendingOperationsPromptly() throws Exception {
        Execution sleeper = channel.exec(
                ExecSpec.of("sleep", "5"), OutputStream.nullOutputStream(), OutputStream.nullOutputStream());
        channel.close();
        assertThatThrownBy(() -> sleeper.await(Duration.ofSeconds(5)))
                .isInstanceOf(GuestChannelClosedException.class)
                .hasMessageContaining("closed by the host");
        assertThatThrownBy(() -> channel.ping()).isInstanceOf(GuestChannelClosedException.class);
        assertThatThrownBy(() -> channel.stat("/")).isInstanceOf(GuestChannelClosedException.class);
        // A new session works after the old one is dropped.
        channel = agent.open();
        assertThat(sh("echo again").stdout()).isEqualTo("again\n");
    }
}
