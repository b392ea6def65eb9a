package dev.airlock.oci;

import dev.airlock.host.HostCommand;
import dev.airlock.host.LinuxSyscalls;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The user-mode NAT of a {@code --network nat} container: one slirp4netns process on the host,
 * attached to the container's network namespace, where it creates and configures tap0. Like
 * the container, it is detached from the process that starts it (its own session) and outlives
 * it; {@link #stop} ends it with the container.
 *
 * <p>It starts inside the sandbox's NAT cgroup (the shell that execs it joins the group first),
 * so the host firewall sees every socket it opens. No {@code --disable-host-loopback}: whether
 * the host's loopback (10.0.2.2) answers is the firewall's decision, like every other address.
 *
 * <p>A runtime that takes its interfaces when it starts (runsc) gets a network namespace made
 * beforehand, bound to a file in the sandbox directory, with slirp4netns already attached:
 * {@link #startInNewNamespace}.
 */
public final class Slirp4netns {
    static final String PID_FILE = "slirp4netns.pid";
    static final String LOG = "slirp4netns.log";
    /** The network namespace of {@link #startInNewNamespace}, bound to this file. */
    static final String NETNS = "netns";

    /** The user namespace owning {@link #NETNS}, where the host has container ids. */
    static final String USERNS = "userns";

    private static final long MS_BIND = 4096;

    private Slirp4netns() {}

    /**
     * Starts it for the container whose init is {@code initPid}; returns once tap0 is configured.
     * For a container in a user namespace ({@code ids} not null) it runs in that
     * namespace as its root, which is the container's unprivileged host uid: from there it may
     * join the container's network namespace (which that user namespace owns) and make tap0,
     * and holds nothing on the host. A slirp escape is then no more than container root.
     */
    static void start(Path sandboxDir, long initPid, Path cgroupProcs, @Nullable ContainerIds ids, Duration timeout) {
        String how = ids == null ? "slirp4netns" : inUserNamespace(ids, "/proc/" + initPid + "/ns/user");
        start(sandboxDir, List.of(Long.toString(initPid)), cgroupProcs, how, timeout);
    }

    /**
     * The command that runs slirp4netns as root of the user namespace {@code userns} (a file).
     * It opens /dev/net/tun, which may be root's alone (0600, as here): in a mount namespace of
     * its own it finds a tun node of its uid's instead (the same device; creating the interface
     * still needs CAP_NET_ADMIN over the network namespace, which that user namespace owns).
     */
    private static String inUserNamespace(ContainerIds ids, String userns) {
        return "unshare --mount --propagation private -- sh -c 'mount -t tmpfs -o mode=0755,size=16k tmpfs"
                + " /dev/net && mknod -m 0600 /dev/net/tun c 10 200 && chown " + ids.uid() + ":" + ids.gid()
                + " /dev/net/tun && exec \"$@\"' slirp4netns-in-userns nsenter --user=" + userns + " -- slirp4netns";
    }

    /**
     * Makes a network namespace bound to {@code sandboxDir/netns}, starts slirp4netns on it and
     * returns the file once tap0 is configured, for a runtime to join. Where the host has the
     * container ids ({@link ContainerIds#forHost}), the namespace belongs to a user namespace of
     * those ids (bound to {@code sandboxDir/userns}) and slirp4netns runs in it as its root, the
     * unprivileged host uid, as a container's does; the runtime, root, joins it all the same.
     */
    public static Path startInNewNamespace(Path sandboxDir, Path cgroupProcs, Duration timeout) {
        stop(sandboxDir);
        Path netns = sandboxDir.resolve(NETNS);
        Path userns = sandboxDir.resolve(USERNS);
        @Nullable ContainerIds ids = ContainerIds.forHost().orElse(null);
        try {
            Files.createDirectories(sandboxDir);
            Files.deleteIfExists(netns);
            Files.createFile(netns);
            if (ids != null) {
                Files.deleteIfExists(userns);
                Files.createFile(userns);
            }
        } catch (IOException e) {
            throw new ContainerException("cannot create " + netns, e);
        }
        try {
            if (ids == null) {
                HostCommand.Result r = HostCommand.run(List.of("unshare", "--net=" + netns, "true"), null, null);
                if (!r.ok()) {
                    throw new ContainerException("cannot make a network namespace at " + netns + ": "
                            + r.output().strip());
                }
                start(sandboxDir, List.of("--netns-type=path", netns.toString()), cgroupProcs, "slirp4netns", timeout);
            } else {
                makeOwnedNamespaces(userns, netns, ids, timeout);
                // As the unprivileged uid it cannot pass the sandbox's 0700 directories to open
                // the namespace file: root opens it as fd 4 and it names the descriptor.
                start(
                        sandboxDir,
                        List.of("--netns-type=path", "/proc/self/fd/4"),
                        cgroupProcs,
                        "4<'" + netns + "' " + inUserNamespace(ids, userns.toString()),
                        timeout);
            }
        } catch (RuntimeException e) {
            releaseNamespace(sandboxDir);
            throw e;
        }
        return netns;
    }

    /**
     * A user namespace mapping {@code ids} and a network namespace it owns, bound to the two
     * files. A helper process makes both (unshare), says so on its stdout, and waits on stdin
     * while its maps are written and its namespaces bound; closing stdin ends it.
     */
    private static void makeOwnedNamespaces(Path userns, Path netns, ContainerIds ids, Duration timeout) {
        Process p;
        try {
            p = new ProcessBuilder("unshare", "--user", "--net", "--", "sh", "-c", "echo in && read -r _")
                    .redirectErrorStream(true)
                    .start();
        } catch (IOException e) {
            throw new ContainerException("cannot run unshare: " + e.getMessage(), e);
        }
        try (java.io.OutputStream release = p.getOutputStream()) {
            Thread watchdog = killAfter(p, timeout);
            try {
                String line = new String(p.getInputStream().readNBytes(3), StandardCharsets.US_ASCII);
                if (!line.equals("in\n")) {
                    throw new ContainerException("cannot make a user and network namespace: " + line.strip());
                }
                Path proc = Path.of("/proc", Long.toString(p.pid()));
                String map = "0 %d " + ContainerIds.SIZE + "\n";
                Files.writeString(proc.resolve("uid_map"), map.formatted(ids.uid()));
                Files.writeString(proc.resolve("gid_map"), map.formatted(ids.gid()));
                try (LinuxSyscalls sys = new LinuxSyscalls()) {
                    sys.mount(proc.resolve("ns/user").toString(), userns.toString(), "none", MS_BIND, "");
                    sys.mount(proc.resolve("ns/net").toString(), netns.toString(), "none", MS_BIND, "");
                }
            } finally {
                watchdog.interrupt();
            }
        } catch (IOException | LinuxSyscalls.ErrnoException e) {
            p.destroyForcibly();
            throw new ContainerException("cannot make a user and network namespace: " + e.getMessage(), e);
        }
        try {
            p.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** {@code how}: the command that execs slirp4netns (itself, or through nsenter). */
    private static void start(Path sandboxDir, List<String> target, Path cgroupProcs, String how, Duration timeout) {
        stopProcess(sandboxDir);
        Path log = sandboxDir.resolve(LOG);
        // fd 3 is the pipe to this process: slirp4netns writes "1" there once tap0 is up (and
        // nothing else, ever); its own output goes to the log. $1 and $2: the namespace (a pid,
        // or --netns-type=path and a file); the last argument is the log.
        String script = "echo $$ > \"$0\" && log=\"${@: -1}\" && set -- \"${@:1:$#-1}\" && exec " + how
                + " --configure --mtu=65520 --enable-sandbox --enable-seccomp --ready-fd=3 \"$@\" tap0"
                + " 3>&1 >>\"$log\" 2>&1";
        List<String> argv = new java.util.ArrayList<>(List.of("setsid", "bash", "-c", script, cgroupProcs.toString()));
        argv.addAll(target);
        argv.add(log.toString());
        ProcessBuilder pb = new ProcessBuilder(argv)
                .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new ContainerException("cannot run slirp4netns (install it: apt-get install slirp4netns)", e);
        }
        try {
            Files.writeString(sandboxDir.resolve(PID_FILE), p.pid() + "\n" + cgroupProcs + "\n");
        } catch (IOException e) {
            p.destroyForcibly();
            throw new ContainerException("cannot record the slirp4netns pid in " + sandboxDir, e);
        }
        int ready = awaitReady(p, timeout);
        if (ready != '1') {
            p.destroyForcibly();
            throw new ContainerException("slirp4netns did not configure the container's network: " + tail(log));
        }
    }

    /** Kills {@code p} if it still runs after {@code timeout}; interrupt the thread once done waiting on it. */
    private static Thread killAfter(Process p, Duration timeout) {
        return Thread.ofVirtual().start(() -> {
            try {
                if (!p.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                }
            } catch (InterruptedException e) {
                // the caller finished first
            }
        });
    }

    /** Reads the ready byte; -1 when slirp4netns exited (or did not answer in time) without it. */
    private static int awaitReady(Process p, Duration timeout) {
        InputStream in = p.getInputStream();
        Thread watchdog = killAfter(p, timeout);
        try (in) {
            return in.read();
        } catch (IOException e) {
            return -1;
        } finally {
            watchdog.interrupt();
        }
    }

    /**
     * Ends the container's slirp4netns, if one runs, and the network namespace made for it. The
     * recorded pid is only killed while it is still in the sandbox's NAT cgroup, so a pid reused
     * by another process is never touched.
     */
    public static void stop(Path sandboxDir) {
        try {
            stopProcess(sandboxDir);
        } finally {
            releaseNamespace(sandboxDir);
        }
    }

    private static void releaseNamespace(Path sandboxDir) {
        for (String name : List.of(NETNS, USERNS)) {
            Path file = sandboxDir.resolve(name);
            if (Files.exists(file)) {
                Mounts.unmount(file);
                try {
                    Files.deleteIfExists(file);
                } catch (IOException e) {
                    // a file left behind is harmless: the next start makes it again
                }
            }
        }
    }

    private static void stopProcess(Path sandboxDir) {
        Path file = sandboxDir.resolve(PID_FILE);
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return;
        }
        try {
            if (lines.size() >= 2) {
                String pid = lines.get(0).strip();
                Path procs = Path.of(lines.get(1).strip());
                boolean ours = Files.exists(procs)
                        && Files.readAllLines(procs).stream()
                                .anyMatch(l -> l.strip().equals(pid));
                if (ours) {
                    ProcessHandle.of(Long.parseLong(pid)).ifPresent(h -> {
                        h.destroyForcibly();
                        h.onExit()
                                .orTimeout(10, java.util.concurrent.TimeUnit.SECONDS)
                                .join();
                    });
                }
            }
            Files.deleteIfExists(file);
        } catch (IOException | RuntimeException e) {
            // gone already: nothing to stop
        }
    }

    private static String tail(Path log) {
        try {
            String s = Files.readString(log).strip();
            return s.length() > 1000 ? s.substring(s.length() - 1000) : s;
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
