package dev.airlock.bench;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A QEMU run in the foreground with the guest's serial console on a pipe, so every console line
 * gets a host timestamp the moment it arrives. The command lines come from
 * {@link dev.airlock.vmm.QemuMicrovm#commandLine}, rewritten by {@link #foreground} (the engine's
 * VM minus daemonizing) or {@link #bare} (the same machine with no devices at all).
 */
final class QemuProcess implements AutoCloseable {
    private static final Set<QemuProcess> LIVE = ConcurrentHashMap.newKeySet();

    /** A console line and when its newline reached the host, in nanoseconds after launch. */
    record Line(long nanos, String text) {
        double millis() {
            return nanos / 1e6;
        }
    }

    private final Process process;
    private final long launched;
    private final String marker;
    private final Path stderr;
    private final List<Line> lines = new ArrayList<>();
    private final CompletableFuture<Line> ready = new CompletableFuture<>();

    private QemuProcess(Process process, long launched, String marker, Path stderr) {
        this.process = process;
        this.launched = launched;
        this.marker = marker;
        this.stderr = stderr;
    }

    /** Starts QEMU; the clock starts right before the process is spawned. */
    static QemuProcess launch(List<String> argv, String readyMarker, Path stderrFile) {
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectError(stderrFile.toFile());
        long t0 = System.nanoTime();
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + argv.getFirst(), e);
        }
        QemuProcess q = new QemuProcess(p, t0, readyMarker, stderrFile);
        LIVE.add(q);
        Thread.ofPlatform().daemon().name("console-" + p.pid()).start(() -> q.readConsole(p.getInputStream()));
        return q;
    }

    private void readConsole(InputStream in) {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        try (in) {
            for (int n; (n = in.read(buf)) > 0; ) {
                long now = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    if (buf[i] == '\n') {
                        String text = line.toString(StandardCharsets.UTF_8).replace("\r", "");
                        line.reset();
                        Line l = new Line(now - launched, text);
                        synchronized (lines) {
                            lines.add(l);
                        }
                        if (text.contains(marker)) {
                            ready.complete(l);
                        }
                    } else {
                        line.write(buf[i]);
                    }
                }
            }
        } catch (IOException e) {
            // The process was killed: the pipe closed under us.
        }
        ready.completeExceptionally(new IllegalStateException("the console closed before '" + marker + "'"));
    }

    long pid() {
        return process.pid();
    }

    /** The ready line; fails with the console's and QEMU's last words if it never comes. */
    Line awaitReady(Duration timeout) throws InterruptedException {
        try {
            return ready.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException | ExecutionException e) {
            String why = e instanceof TimeoutException
                    ? "no '" + marker + "' on the console within " + timeout
                    : String.valueOf(e.getCause() != null ? e.getCause().getMessage() : e.getMessage());
            throw new IllegalStateException(why + "\n" + diagnostics());
        }
    }

    /** Host nanoseconds after launch when the process exited, or -1 if it has not within the timeout. */
    long awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            return -1;
        }
        return System.nanoTime() - launched;
    }

    List<Line> lines() {
        synchronized (lines) {
            return List.copyOf(lines);
        }
    }

    String diagnostics() {
        List<Line> all = lines();
        StringBuilder sb = new StringBuilder("last console lines:\n");
        all.subList(Math.max(0, all.size() - 15), all.size())
                .forEach(l -> sb.append("  ").append(l.text()).append('\n'));
        try {
            sb.append("QEMU stderr:\n  ")
                    .append(Files.readString(stderr).strip().replace("\n", "\n  "));
        } catch (IOException e) {
            sb.append("(no QEMU stderr)");
        }
        return sb.toString();
    }

    @Override
    public void close() {
        process.destroyForcibly();
        try {
            process.waitFor(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LIVE.remove(this);
    }

    static void killAll() {
        List.copyOf(LIVE).forEach(QemuProcess::close);
    }

    /**
     * The engine's command line run in the foreground: no {@code -daemonize}/{@code -pidfile}, and
     * the console chardev on stdio instead of a file. Every device stays as the engine has it.
     */
    static List<String> foreground(List<String> engineArgv) {
        return rewrite(engineArgv, false);
    }

    /**
     * The bare VMM: the engine's machine, accelerator, CPU, memory, sandbox and kernel options,
     * console on stdio, and nothing else: no disks, no virtio devices, no sockets.
     */
    static List<String> bare(List<String> engineArgv) {
        return rewrite(engineArgv, true);
    }

    private static List<String> rewrite(List<String> argv, boolean bare) {
        List<String> out = new ArrayList<>();
        boolean console = false;
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            String value = i + 1 < argv.size() ? argv.get(i + 1) : "";
            switch (a) {
                case "-daemonize" -> {}
                case "-pidfile" -> i++;
                case "-chardev" -> {
                    i++;
                    if (value.startsWith("file,id=console,")) {
                        out.addAll(List.of("-chardev", "stdio,id=console,signal=off"));
                        console = true;
                    } else if (!bare) {
                        out.addAll(List.of(a, value));
                    }
                }
                case "-device", "-drive", "-qmp" -> {
                    i++;
                    if (!bare) {
                        out.addAll(List.of(a, value));
                    }
                }
                default -> out.add(a);
            }
        }
        if (!console || !out.contains("-serial")) {
            throw new IllegalStateException(
                    "QemuMicrovm.commandLine no longer has a console chardev the benchmark can redirect: " + argv);
        }
        return out;
    }
}
