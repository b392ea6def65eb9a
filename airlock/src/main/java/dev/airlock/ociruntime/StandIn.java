package dev.airlock.ociruntime;

import dev.airlock.client.DaemonClient;
import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.host.AirlockDirs;
import dev.airlock.service.SandboxSession;
import dev.airlock.wire.Json;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;
import sun.misc.Signal;

/**
 * The host process that stands for a container's (or an exec's) process: conmon and the shim
 * wait for its pid, read its stdio and take its exit status as the container's. It holds a
 * guest session through the daemon, waits on the start FIFO (for a container), runs the process
 * in the VM with its stdio relayed, forwards the signals it gets to the process group there, and
 * exits with the process's status (128+N for a signal; 137 when the VM went away under it).
 */
final class StandIn {
    private static final String[] FORWARDED = {"TERM", "INT", "HUP", "USR1", "USR2", "ALRM", "CONT"};

    private final Object lock = new Object();
    private @Nullable Execution running;
    private int early;

    private StandIn() {}

    /** A started stand-in. */
    record Handle(Process process) {
        long pid() {
            return process.pid();
        }
    }

    /**
     * Starts a stand-in on this process's stdio for the process in {@code dir}; with
     * {@code waitStart} it runs it only once {@code start} opens the start FIFO.
     */
    static Handle spawn(Path dir, String sandbox, boolean waitStart, @Nullable Path terminal) {
        List<String> cmd = new ArrayList<>();
        if (terminal != null) {
            // Its own session with the terminal as its controlling tty: it then gets SIGWINCH
            // when the caller resizes the master.
            cmd.addAll(List.of("setsid", "--ctty"));
        }
        cmd.add(ProcessHandle.current().info().command().orElse("java"));
        // A small heap and the serial collector keep the relay's footprint down.
        cmd.addAll(List.of(
                "-Xmx32m",
                "-Xss512k",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "--enable-native-access=ALL-UNNAMED"));
        String home = System.getProperty("airlock.home");
        if (home != null) {
            cmd.add("-Dairlock.home=" + home);
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), StandIn.class.getName()));
        cmd.addAll(List.of(dir.toString(), sandbox));
        if (waitStart) {
            cmd.add("--wait-start");
        }
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
            if (terminal != null) {
                pb.redirectInput(terminal.toFile())
                        .redirectOutput(terminal.toFile())
                        .redirectError(terminal.toFile());
            }
            return new Handle(pb.start());
        } catch (IOException e) {
            throw new RuntimeError("cannot start the container's host process: " + e.getMessage(), e);
        }
    }

    static int awaitExit(Handle h) {
        try {
            return h.process().waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 130;
        }
    }

    /** Whether {@code pid} is the stand-in of the container in {@code dir} (pids are reused). */
    static boolean owns(long pid, Path dir) {
        try {
            return Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"))
                    .contains(dir.toString());
        } catch (IOException e) {
            return false;
        }
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        String sandbox = args[1];
        boolean waitStart = args.length > 2 && args[2].equals("--wait-start");
        System.exit(new StandIn().run(dir, sandbox, waitStart));
    }

    private int run(Path dir, String sandbox, boolean waitStart) {
        for (String name : FORWARDED) {
            try {
                Signal.handle(new Signal(name), s -> forward(s.getNumber()));
            } catch (IllegalArgumentException e) {
                // the JVM keeps this one; it is not forwarded
            }
        }
        OutputStream out = new FileOutputStream(FileDescriptor.out);
        OutputStream err = new FileOutputStream(FileDescriptor.err);
        ProcessSpec p;
        try {
            p = Json.MAPPER.readValue(Files.readString(dir.resolve(ContainerRecord.PROCESS)), ProcessSpec.class);
        } catch (IOException e) {
            System.err.println("airlock-runtime: cannot read the container's process: " + e.getMessage());
            return 125;
        }
        try (SandboxSession session =
                DaemonClient.connect(AirlockDirs.fromEnvironment()).session(sandbox)) {
            if (waitStart) {
                // Blocks until `start` opens the FIFO for reading.
                try (FileOutputStream released = new FileOutputStream(
                        dir.resolve(ContainerRecord.START_FIFO).toFile())) {
                    released.flush();
                }
            }
            ExecSpec.Builder builder = ExecSpec.builder(p.args())
                    .env(p.env())
                    .cwd(p.cwd())
                    .user(p.user())
                    .confinement(p.confinement())
                    .stdin(true);
            if (p.terminal()) {
                int[] size = terminalSize();
                builder.tty(size[0], size[1]);
            }
            ExecSpec spec = builder.build();
            Execution ex;
            synchronized (lock) {
                if (early != 0) {
                    return 128 + early;
                }
                ex = session.channel().exec(spec, out, err);
                running = ex;
            }
            if (p.terminal()) {
                Signal.handle(new Signal("WINCH"), sig -> {
                    int[] size = terminalSize();
                    try {
                        ex.resize(size[0], size[1]);
                    } catch (IOException | RuntimeException e) {
                        // it exited meanwhile
                    }
                });
            }
            Thread.ofVirtual().start(() -> pump(System.in, ex.stdin()));
            ExitStatus st = ex.await();
            out.flush();
            err.flush();
            return st.shellStatus();
        } catch (CommandNotFoundException e) {
            System.err.println("airlock-runtime: " + e.getMessage());
            return 127;
        } catch (CommandNotExecutableException e) {
            System.err.println("airlock-runtime: " + e.getMessage());
            return 126;
        } catch (IOException | RuntimeException e) {
            // The VM went away under the process (kill -9, delete --force): it was killed.
            System.err.println("airlock-runtime: the container's VM ended: " + e.getMessage());
            return 137;
        } catch (InterruptedException e) {
            return 130;
        }
    }

    /** Rows and columns of the terminal on stdin (the caller sets them on the master). */
    private static int[] terminalSize() {
        try {
            Process p = new ProcessBuilder("stty", "size")
                    .redirectInput(ProcessBuilder.Redirect.INHERIT)
                    .start();
            String[] f = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII)
                    .strip()
                    .split("\\s+");
            p.waitFor();
            int rows = Integer.parseInt(f[0]);
            int cols = Integer.parseInt(f[1]);
            return rows > 0 && cols > 0 ? new int[] {rows, cols} : new int[] {24, 80};
        } catch (IOException | NumberFormatException | ArrayIndexOutOfBoundsException e) {
            return new int[] {24, 80};
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new int[] {24, 80};
        }
    }

    private void forward(int sig) {
        synchronized (lock) {
            Execution ex = running;
            if (ex == null) {
                early = sig;
                if (sig != 18) {
                    // Not started yet: the process never runs; end as it would have.
                    System.exit(128 + sig);
                }
                return;
            }
            try {
                ex.signal(sig);
            } catch (IOException e) {
                // it exited meanwhile
            }
        }
    }

    private static void pump(InputStream in, OutputStream stdin) {
        byte[] buf = new byte[32768];
        try (stdin) {
            for (int n; (n = in.read(buf)) > 0; ) {
                stdin.write(buf, 0, n);
                stdin.flush();
            }
        } catch (IOException | RuntimeException e) {
            // the process exited while we still fed it
        }
    }
}
