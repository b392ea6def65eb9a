package dev.airlock.ociruntime;

import dev.airlock.client.DaemonClient;
import dev.airlock.guest.ExecSpec;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The host process that stands for a container's (or an exec's) process: conmon and the shim
 * wait for its pid, read its stdio and take its exit status as the container's. It is
 * {@code airlock-standin} (guest/standin/standin.c), a small static program shipped in the jar:
 * it holds a guest session through the daemon, waits on the start FIFO (for a container), runs
 * the process in the VM with its stdio relayed, forwards the signals it gets to the process group
 * there, and exits with the process's status (128+N for a signal; 137 when the VM went away
 * under it). One JVM per container cost ~50 MB of memory; the program costs a few hundred KiB.
 */
final class StandIn {
    private static final String RESOURCE = "/dev/airlock/guest/bin/airlock-standin";
    /** In a container's (or exec's) directory: the EXEC payload the stand-in sends. */
    static final String REQUEST = "exec.request";
    /** In an exec's directory: the pid of its stand-in ({@code ps} lists it). */
    static final String PID = "pid";
    /** The stand-in adds the terminal's size (a 10-byte TLV) to the request within one frame. */
    private static final int MAX_REQUEST = 65536 - 10;

    private StandIn() {}

    /** A started stand-in. */
    record Handle(Process process) {
        long pid() {
            return process.pid();
        }
    }

    /**
     * Writes the process as the guest protocol's EXEC payload into {@code dir}, for the stand-in
     * to send: the C program parses no JSON and builds no request of its own.
     */
    static void writeRequest(Path dir, ProcessSpec p) {
        writeRequest(dir, p, null);
    }

    /** The same, for a process whose root is {@code guestRoot} in a pod's VM ({@link VmPod}) when not null. */
    static void writeRequest(Path dir, ProcessSpec p, @Nullable String guestRoot) {
        byte[] payload = execSpec(p).toPayload();
        if (guestRoot != null) {
            byte[] root = VmPod.rootEntry(guestRoot);
            byte[] all = java.util.Arrays.copyOf(payload, payload.length + root.length);
            System.arraycopy(root, 0, all, payload.length, root.length);
            payload = all;
        }
        if (payload.length > MAX_REQUEST) {
            throw new RuntimeError("the process's arguments and environment take " + payload.length
                    + " bytes; the guest protocol takes at most " + MAX_REQUEST + " in one request");
        }
        try {
            Files.write(dir.resolve(REQUEST), payload);
        } catch (IOException e) {
            throw new RuntimeError("cannot write the container's process: " + e.getMessage(), e);
        }
    }

    /** What runs in the guest for an OCI process; the terminal's size is the stand-in's to add. */
    static ExecSpec execSpec(ProcessSpec p) {
        return ExecSpec.builder(p.args())
                .env(p.env())
                .cwd(p.cwd())
                .user(p.user())
                .confinement(p.confinement())
                .stdin(true)
                .build();
    }

    /**
     * Starts a stand-in on this process's stdio (or on {@code terminal}) for the process whose
     * request is in {@code dir}; with {@code waitStart} it runs it only once {@code start} opens
     * the start FIFO.
     */
    static Handle spawn(Path dir, String sandbox, boolean waitStart, @Nullable Path terminal) {
        return new Handle(start(command(dir, sandbox, waitStart ? "--wait-start" : null, terminal), terminal));
    }

    /**
     * Starts a stand-in that is not this JVM's child, for {@code exec --detach}, and returns its
     * pid. A child would be reaped by the JVM's process reaper if it ended before the JVM (a
     * short exec does), and its status would never reach the caller's subreaper: the program
     * forks, and its first process writes the second's pid to {@code dir/pid} and exits.
     */
    static long spawnDetached(Path dir, String sandbox, @Nullable Path terminal) {
        Process first = start(command(dir, sandbox, "--detach", terminal), terminal);
        int status = awaitExit(new Handle(first));
        try {
            long pid = Long.parseLong(Files.readString(dir.resolve(PID)).strip());
            if (status == 0 && pid > 0) {
                return pid;
            }
        } catch (IOException | NumberFormatException e) {
            // said below
        }
        throw new RuntimeError("the exec's host process did not start (status " + status + ")");
    }

    private static List<String> command(Path dir, String sandbox, @Nullable String mode, @Nullable Path terminal) {
        AirlockDirs dirs = AirlockDirs.fromEnvironment();
        List<String> cmd = new ArrayList<>(List.of(
                binary(dirs).toString(),
                dir.toString(),
                sandbox,
                DaemonClient.socket(dirs).toString()));
        if (mode != null) {
            cmd.add(mode);
        }
        if (terminal != null) {
            // It makes the terminal its controlling tty in a session of its own: it then gets
            // SIGWINCH when the caller resizes the master.
            cmd.add("--tty");
        }
        return cmd;
    }

    private static Process start(List<String> cmd, @Nullable Path terminal) {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd).inheritIO();
            if (terminal != null) {
                pb.redirectInput(terminal.toFile())
                        .redirectOutput(terminal.toFile())
                        .redirectError(terminal.toFile());
            }
            return pb.start();
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

    /**
     * The program, written from the jar into the cache by content hash. It runs as the caller
     * (root under podman and containerd), so a copy anyone else could have written is replaced.
     */
    static Path binary(AirlockDirs dirs) {
        byte[] binary;
        try (InputStream in = StandIn.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new RuntimeError("this Airlock build has no stand-in program (" + RESOURCE
                        + " missing from the jar); rebuild with ./mvnw package");
            }
            binary = in.readAllBytes();
        } catch (IOException e) {
            throw new RuntimeError("cannot read the stand-in program from the jar: " + e.getMessage(), e);
        }
        Path own =
                dirs.cache().resolve("standin").resolve(Hashing.sha256(binary).substring(0, 16));
        Path target = own.resolve("airlock-standin");
        try {
            if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
                requireOwn(own);
                requireOwn(target);
                if (Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS) && Files.size(target) == binary.length) {
                    return target;
                }
            }
            AirlockDirs.ensureDir(own);
            requireOwn(own);
            HostFiles.writeAtomically(target, binary, "rwxr-xr-x");
            return target;
        } catch (IOException | UncheckedIOException e) {
            throw new RuntimeError("cannot write the stand-in program " + target + ": " + e.getMessage(), e);
        }
    }

    /** Refuses a path of another user's, or one others may write: its program would run as us. */
    private static void requireOwn(Path p) throws IOException {
        Object me = Files.getAttribute(Path.of("/proc/self"), "unix:uid");
        Object owner = Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        if (!me.equals(owner) || (mode & 0022) != 0) {
            throw new RuntimeError("the stand-in program's path " + p + " is not this user's alone (owner " + owner
                    + ", mode " + Integer.toOctalString(mode & 07777) + "); remove it: rm -rf " + p.getParent());
        }
    }
}
