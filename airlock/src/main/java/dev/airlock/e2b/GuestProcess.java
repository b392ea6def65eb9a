package dev.airlock.e2b;

import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import java.io.IOException;
import java.io.OutputStream;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.node.ObjectNode;

/**
 * A process started through envd's {@code Process.Start}: its guest execution, the E2B config it
 * was started with, and the streams ({@code Start}, {@code Connect}) that receive its events.
 * Output goes to every subscriber at that moment (a process nobody listens to has its output
 * dropped, as envd does); a slow subscriber slows the process, through the guest's flow control,
 * rather than growing a buffer here.
 */
final class GuestProcess {
    private static final int QUEUE = 64;

    private final ObjectNode config;
    private final @Nullable String tag;
    private final boolean pty;
    private final boolean stdin;
    private final List<Subscriber> subscribers = new CopyOnWriteArrayList<>();
    private volatile @Nullable Execution execution;
    private volatile @Nullable ObjectNode end;

    GuestProcess(ObjectNode config, @Nullable String tag, boolean pty, boolean stdin) {
        this.config = config;
        this.tag = tag;
        this.pty = pty;
        this.stdin = stdin;
    }

    void started(Execution e) {
        this.execution = e;
    }

    Execution execution() {
        Execution e = execution;
        if (e == null) {
            throw new E2bException(412, "the process has not started yet");
        }
        return e;
    }

    int pid() {
        return execution().pid();
    }

    @Nullable
    String tag() {
        return tag;
    }

    ObjectNode config() {
        return config;
    }

    boolean pty() {
        return pty;
    }

    boolean stdinEnabled() {
        return stdin;
    }

    /** The sink for one output stream: each write becomes a data event for every subscriber. */
    OutputStream sink(String kind) {
        return new OutputStream() {
            @Override
            public void write(int b) {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) {
                if (len == 0) {
                    return;
                }
                ObjectNode event = ConnectRpc.object();
                event.putObject("data")
                        .put(kind, Base64.getEncoder().encodeToString(java.util.Arrays.copyOfRange(b, off, off + len)));
                publish(event);
            }
        };
    }

    /** The end event, made from how the process ended, sent to every subscriber. */
    void ended(ExitStatus status, @Nullable String error) {
        ObjectNode event = ConnectRpc.object();
        ObjectNode e = event.putObject("end");
        boolean exited = status.signal() == 0;
        e.put("exitCode", exited ? status.exitCode() : -1);
        e.put("exited", exited);
        e.put("status", exited ? "exit status " + status.exitCode() : "signal: " + signalName(status.signal()));
        if (error != null) {
            e.put("error", error);
        } else if (status.timedOut()) {
            e.put("error", "the command timed out and was killed");
        }
        end = event;
        publish(event);
    }

    boolean isEnded() {
        return end != null;
    }

    private static String signalName(int signal) {
        return switch (signal) {
            case 9 -> "killed";
            case 15 -> "terminated";
            case 2 -> "interrupt";
            case 1 -> "hangup";
            default -> "signal " + signal;
        };
    }

    private void publish(JsonNode event) {
        for (Subscriber s : subscribers) {
            s.offer(event);
        }
    }

    Subscriber subscribe() {
        Subscriber s = new Subscriber();
        subscribers.add(s);
        ObjectNode done = end;
        if (done != null) {
            s.offer(done);
        }
        return s;
    }

    void unsubscribe(Subscriber s) {
        s.close();
        subscribers.remove(s);
    }

    /** Writes to the process's stdin (or its terminal), serialized across callers. */
    synchronized void input(byte[] bytes) throws IOException {
        if (!stdin && !pty) {
            throw new E2bException(412, "the process was started without stdin: start it with stdin enabled");
        }
        OutputStream in = execution().stdin();
        in.write(bytes);
        in.flush();
    }

    synchronized void closeInput() throws IOException {
        if (!stdin && !pty) {
            throw new E2bException(412, "the process was started without stdin");
        }
        execution().stdin().close();
    }

    /** One stream's queue of events; the request thread that serves the stream drains it. */
    static final class Subscriber {
        private final BlockingQueue<JsonNode> events = new ArrayBlockingQueue<>(QUEUE);
        private volatile boolean closed;

        /** Waits for room rather than dropping output, unless the stream went away. */
        void offer(JsonNode event) {
            try {
                while (!closed) {
                    if (events.offer(event, 100, TimeUnit.MILLISECONDS)) {
                        return;
                    }
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        @Nullable
        JsonNode poll(long millis) throws InterruptedException {
            return events.poll(millis, TimeUnit.MILLISECONDS);
        }

        void close() {
            closed = true;
            events.clear();
        }
    }
}
