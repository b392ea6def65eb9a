package dev.airlock.service;

import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.DirEntry;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.FileStat;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestException;
import dev.airlock.net.NetworkSpec;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Everything a front end can do with sandboxes. The CLI, the HTTP API and every other front end
 * call this and nothing below it, so they behave the same by construction: the daemon's local
 * implementation does the work, and the daemon client implements the same interface over the
 * API, so a front end does not know (or care) which one it holds.
 *
 * <p>Sandboxes are named by a reference: a name, an id, or an unambiguous id prefix. Errors are
 * {@link SandboxException}s whose kind says whose fault they are.
 */
public interface SandboxService {

    SandboxInfo create(CreateSpec spec);

    /** Boots (or restores) a sandbox; returns once its agent answers. */
    SandboxInfo start(String ref);

    /** Asks the guest to power off, killing it after {@code grace}. */
    SandboxInfo stop(String ref, Duration grace);

    SandboxInfo kill(String ref);

    /** Saves a running sandbox to disk, memory and processes included, and frees its memory. */
    SandboxInfo pause(String ref);

    SandboxInfo resume(String ref);

    /** Clones a running sandbox: memory, processes and files as they were at one instant. */
    List<SandboxInfo> fork(String ref, ForkSpec spec);

    /** Deletes a sandbox and its disk; a running one needs {@code force}. */
    SandboxInfo remove(String ref, boolean force);

    SandboxInfo inspect(String ref);

    /** Every sandbox, oldest first. */
    List<SandboxInfo> list();

    SandboxStats stats(String ref);

    /** The end of a log (at most {@code maxBytes}): the console (kernel, agent) or the egress decisions. */
    String logs(String ref, LogKind kind, int maxBytes);

    /** A guest session to a running sandbox: exec with streams, terminals, signals, files. */
    SandboxSession session(String ref) throws IOException;

    NetworkSpec network(String ref);

    /** Changes the egress allowlist and pins; a running sandbox applies them to new connections at once. */
    NetworkSpec changePolicy(String ref, PolicyChange change);

    /** Publishes a host port ({@code [HOSTIP:]HOSTPORT:GUESTPORT}), now if running and at every start. */
    NetworkSpec publish(String ref, String mapping);

    NetworkSpec unpublish(String ref, int hostPort);

    /** What the sandbox's inference bridge has carried; NOT_FOUND when it has none. */
    InferenceUsage inferenceUsage(String ref);

    /**
     * Creates a sandbox holding a copy of a host repository, runs the repository's setup (or
     * reuses a saved result of it) and leaves it running or stopped as asked.
     */
    SandboxInfo createWorkspace(WorkspaceSpec spec, ProgressListener progress);

    /** Writes what changed in the sandbox's workspace since it was created (a git diff) to {@code out}. */
    void diff(String ref, OutputStream out) throws IOException;

    /** Brings the sandbox's commits into a branch of its host repository (fast-forward only). */
    PullResult pull(String ref, PullSpec spec) throws IOException;

    /** Removes an image's name (its bytes go with its last name); refused while a sandbox uses it. */
    RemovedImage removeImage(String name);

    /**
     * Builds an image from a Dockerfile or an airlock.toml recipe; RUN steps execute in sandboxes
     * this service makes, never on the host. {@code progress} gets the steps and their output.
     */
    ImageInfo buildImage(ImageBuildSpec spec, ProgressListener progress);

    /** Pulls an image from an OCI/Docker registry into the store; {@code progress} gets its layers. */
    ImageInfo pullImage(ImagePullSpec spec, ProgressListener progress);

    /**
     * Runs one command and collects its output whole (at most {@link ExecResult#MAX_OUTPUT} per
     * stream). Without a command, the sandbox's own (its image's entrypoint and cmd) runs, as
     * {@code run} does.
     */
    default ExecResult exec(String ref, ExecRequest request) throws IOException {
        List<String> cmd = request.cmd();
        if (cmd == null || cmd.isEmpty()) {
            cmd = inspect(ref).command();
            if (cmd.isEmpty()) {
                throw new SandboxException(
                        "exec needs a command: the request has none and the sandbox's image names none");
            }
        }
        ExecSpec.Builder spec = ExecSpec.builder(cmd)
                .env(request.env() != null ? request.env() : Map.of())
                .cwd(request.cwd())
                .user(request.user())
                .stdin(request.stdin() != null);
        if (request.timeoutMs() != null) {
            spec.timeout(Duration.ofMillis(request.timeoutMs()));
        }
        CappedOutput out = new CappedOutput();
        CappedOutput err = new CappedOutput();
        try (SandboxSession s = session(ref)) {
            Execution ex = s.channel().exec(spec.build(), out, err);
            String stdin = request.stdin();
            if (stdin != null) {
                try (OutputStream in = ex.stdin()) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            ExitStatus st = ex.await();
            return new ExecResult(
                    st.exitCode(),
                    st.signal(),
                    st.timedOut(),
                    st.oomKilled(),
                    out.text(),
                    err.text(),
                    out.truncated() || err.truncated());
        } catch (CommandNotFoundException | CommandNotExecutableException e) {
            throw new SandboxException(String.valueOf(e.getMessage()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while running a command", e);
        }
    }

    /**
     * Every change in the sandboxes' lives from now on (created, a state change, removed): of
     * one sandbox when {@code ref} names it, else of all.
     */
    EventFeed events(@Nullable String ref);

    /** Copies a file out of a running sandbox; returns its size. Symlinks are followed. */
    default long readFile(String ref, String path, OutputStream out) throws IOException {
        String p = GuestPath.check(path);
        return onGuest(ref, "reading " + p, ch -> ch.readFile(p, out));
    }

    /** Writes a file into a running sandbox (atomically: whole or not at all); returns its size. */
    default long writeFile(String ref, String path, InputStream in, int mode, boolean mkdirs) throws IOException {
        String p = GuestPath.check(path);
        return onGuest(ref, "writing " + p, ch -> ch.writeFile(p, in, mode, mkdirs));
    }

    /** Metadata of a path; a final symlink is not followed. */
    default FileStat stat(String ref, String path) throws IOException {
        String p = GuestPath.check(path);
        return onGuest(ref, "reading " + p, ch -> ch.stat(p));
    }

    /** A directory's entries, sorted by name. */
    default List<DirEntry> listDir(String ref, String path) throws IOException {
        String p = GuestPath.check(path);
        return onGuest(ref, "listing " + p, ch -> ch.list(p));
    }

    /** Makes a directory (0755); with {@code parents}, missing parents too, and one already there is fine. */
    default void makeDir(String ref, String path, boolean parents) throws IOException {
        String p = GuestPath.check(path);
        onGuest(ref, "making " + p, ch -> {
            ch.makeDir(p, 0755, parents);
            return true;
        });
    }

    /** Renames a path within a sandbox; an existing file at {@code to} is replaced. */
    default void move(String ref, String from, String to) throws IOException {
        String a = GuestPath.check(from);
        String b = GuestPath.check(to);
        onGuest(ref, "moving " + a, ch -> {
            ch.move(a, b);
            return true;
        });
    }

    /** Removes a file, symlink or empty directory; with {@code recursive}, a whole tree. */
    default void removePath(String ref, String path, boolean recursive) throws IOException {
        String p = GuestPath.check(path);
        if (p.equals("/")) {
            throw new SandboxException("refusing to remove / of a sandbox: remove the sandbox instead");
        }
        onGuest(ref, "removing " + p, ch -> {
            ch.remove(p, recursive);
            return true;
        });
    }

    /** One step on a running sandbox's agent, with the agent's errors said as the service's. */
    private <T> T onGuest(String ref, String what, GuestStep<T> step) throws IOException {
        try (SandboxSession s = session(ref)) {
            return step.run(s.channel());
        } catch (GuestException e) {
            throw GuestErrors.of(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxException("interrupted while " + what, e);
        }
    }

    /** What {@link #onGuest} runs. */
    @FunctionalInterface
    interface GuestStep<T> {
        T run(GuestChannel channel) throws IOException, InterruptedException;
    }
}
