package dev.airlock.vmm;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.RotatingLog;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * Runs each VMM in a jail, so that a QEMU, slirp or TCG escape lands in an unprivileged,
 * namespaced process rather than in host root. The jail is made by {@code airlock-jail}, a small
 * static C launcher shipped in the jar (source: {@code jail/airlock-jail.c}): the VMM runs as the
 * {@code airlock-vmm} user with no capabilities and no_new_privs, as PID 1 of its own PID
 * namespace, in its own mount, IPC, UTS and cgroup namespaces and (unless its user-mode NAT needs
 * the host's) its own empty network namespace, in a cgroup, under QEMU's full seccomp sandbox.
 * Its root is an empty read-only tmpfs with /usr and only this VM's files bound in:
 *
 * <ul>
 *   <li>read-only: kernel, initrd, image, a RAM file it maps privately (a template's);
 *   <li>read-write, owned by {@code airlock-vmm}, mode 0600: its disk layer, a RAM file it shares (a template or fork being made), and {@link VmSpec#vmmDir()}, the
 *       only directory it may create files in (where it writes saved states);
 *   <li>read-write or read-only as they are, a directory it shares with the guest over virtio-9p
 *       (an OCI bundle's rootfs, airlock-runtime); for it alone the VMM keeps CAP_CHOWN,
 *       CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_FSETID, which 9p passthrough needs to give files the
 *       guest's owners, and which reach no host file outside its mount namespace;
 *   <li>handed over as descriptors, never as paths: its agent and control sockets (made by the
 *       launcher as root, mode 0600, in the root-only runtime directory) and a saved state to
 *       load (opened read-only by the launcher; the file stays root's, 0600); its console, a
 *       pipe to a keeper process of the launcher's that appends to the console log and keeps
 *       it under {@link RotatingLog#CAP} of disk whether or not a daemon runs.
 * </ul>
 *
 * <p>Set {@code AIRLOCK_VMM_JAIL=off} to run VMMs unjailed (comparison, debugging). The jail
 * needs root (it is what the launcher drops), the {@code airlock-vmm} user (setup creates it) and
 * QEMU 9 or newer ({@code file:} migration, a read-only private RAM file).
 */
public final class VmmJail {
    public static final String USER = "airlock-vmm";
    private static final String RESOURCE = "/dev/airlock/vmm/bin/airlock-jail";
    /** The descriptors the VMM gets: its agent socket, its control socket, a state to load. */
    static final int AGENT_FD = 3;

    static final int CONTROL_FD = 4;
    static final int STATE_FD = 5;
    /** The write end of the console's pipe (its keeper caps the console log). */
    static final int CONSOLE_FD = 6;

    /** Whether VMMs run jailed on this host, and why (or why not), for {@code airlock doctor}. */
    public record Decision(@Nullable VmmJail jail, String reason) {}

    private final int uid;
    private final int gid;
    private final Path launcher;

    private VmmJail(int uid, int gid, Path launcher) {
        this.uid = uid;
        this.gid = gid;
        this.launcher = launcher;
    }

    public int uid() {
        return uid;
    }

    public int gid() {
        return gid;
    }

    /**
     * Decides for this host and QEMU binary ({@code wanted} false: off, as AIRLOCK_VMM_JAIL=off
     * asks); the launcher is written to the cache on first use.
     */
    public static Decision forHost(QemuBinary qemu, boolean wanted) {
        if (!wanted) {
            return new Decision(null, "off: AIRLOCK_VMM_JAIL=off (VMMs run as the daemon's user, unjailed)");
        }
        if (!"root".equals(System.getProperty("user.name"))) {
            return new Decision(
                    null,
                    "off: the daemon is not root, so VMMs run as its own user (the jail is what root drops"
                            + " to; run as root for it)");
        }
        if (!qemu.modern()) {
            return new Decision(
                    null,
                    "off: " + qemu.versionLine() + " is older than 9.0 (no file: migration, no read-only private"
                            + " RAM files); install QEMU 10: bin/airlock setup");
        }
        Optional<int[]> ids = lookup(USER);
        if (ids.isEmpty()) {
            return new Decision(null, "off: no user " + USER + " on this host; create it: bin/airlock setup");
        }
        Path launcher = materialise(AirlockDirs.fromEnvironment().cache().resolve("jail"));
        return new Decision(
                new VmmJail(ids.get()[0], ids.get()[1], launcher),
                "on: VMMs run as " + USER + " (uid " + ids.get()[0] + ") with no capabilities, no_new_privs,"
                        + " QEMU's full seccomp sandbox, their own mount/pid/ipc/uts/cgroup namespaces and"
                        + " (except --network nat) network namespace");
    }

    /** uid and gid of a user from /etc/passwd. */
    static Optional<int[]> lookup(String user) {
        try {
            for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
                String[] f = line.split(":", -1);
                if (f.length > 3 && f[0].equals(user)) {
                    return Optional.of(new int[] {Integer.parseInt(f[2]), Integer.parseInt(f[3])});
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no readable passwd: no such user
        }
        return Optional.empty();
    }

    /**
     * Writes the launcher from the jar into {@code dir}, by content hash. It runs as root, so it
     * is only used from a root-owned directory nobody else can write to.
     */
    private static Path materialise(Path dir) {
        byte[] binary;
        try (InputStream in = VmmJail.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new VmmException("this Airlock build has no VMM jail launcher (" + RESOURCE
                        + " missing from the jar); rebuild with ./mvnw package");
            }
            binary = in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        Path own = dir.resolve(Hashing.sha256(binary).substring(0, 16));
        Path target = own.resolve("airlock-jail");
        try {
            if (!Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS) || Files.size(target) != binary.length) {
                AirlockDirs.ensureDir(own);
                HostFiles.writeAtomically(target, binary, "rwxr-xr-x");
            }
            for (Path p = target; p != null && !p.equals(dir.getParent()); p = p.getParent()) {
                int owner = (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
                int mode = (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
                if (owner != 0 || (mode & 0022) != 0) {
                    throw new VmmException("the VMM jail launcher's path " + p + " is not root's alone (owner "
                            + owner + ", mode " + Integer.toOctalString(mode & 07777) + "); remove it: rm -rf "
                            + dir);
                }
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + target, e);
        }
    }

    /**
     * Starts {@code qemuArgv} jailed for {@code spec}; returns once QEMU has been exec'd and its
     * host pid is in {@link VmSpec#pidFile()}. Its output goes to {@link VmSpec#vmmLog()}.
     */
    void launch(VmSpec spec, QemuBinary qemu, List<String> qemuArgv, @Nullable Path cgroup) {
        List<String> a = new ArrayList<>(List.of(
                launcher.toString(),
                "--uid",
                Integer.toString(uid),
                "--gid",
                Integer.toString(gid),
                "--root",
                AirlockDirs.ensureDir(spec.runtimeDir().resolve("jail")).toString(),
                "--pidfile",
                spec.pidFile().toString(),
                "--log",
                spec.vmmLog().toString()));
        if (cgroup != null) {
            a.addAll(List.of("--cgroup", cgroup.toString()));
        }
        if (spec.nic() == null) {
            a.add("--net");
        } else if (Files.exists(Path.of("/etc/resolv.conf"))) {
            // slirp's DNS (10.0.2.3) forwards to the host's resolvers.
            a.addAll(List.of("--ro", "/etc/resolv.conf"));
        }
        if (spec.accel() == Accel.KVM) {
            // /dev/kvm is usually root:kvm 0660: the VMM gets that group and nothing else.
            a.addAll(List.of("--dev", "/dev/kvm"));
            try {
                a.addAll(List.of("--group", String.valueOf(Files.getAttribute(Path.of("/dev/kvm"), "unix:gid"))));
            } catch (IOException e) {
                throw new VmmException("cannot read /dev/kvm's group: " + e.getMessage(), e);
            }
        }
        Path installRoot = qemu.installRoot();
        if (installRoot != null) {
            a.addAll(List.of("--ro", installRoot.toString()));
        }
        readable(spec.kernel());
        readable(spec.initrd());
        a.addAll(List.of("--ro", spec.kernel().toString(), "--ro", spec.initrd().toString()));
        boolean sharesDirectory = false;
        for (VmSpec.Disk d : spec.disks()) {
            if (Files.isDirectory(d.file(), LinkOption.NOFOLLOW_LINKS)) {
                // A tree shared over virtio-9p (an OCI bundle's rootfs): bound into the jail as
                // it is, its files keeping their owners; QEMU sets the guest's owners and modes
                // on them (passthrough), for which it keeps the file capabilities, over its own
                // mount namespace only.
                // A writable one stays a slave of the host's mounts under it (--share): a pod's
                // app containers' roots are mounted there after the VM started.
                sharesDirectory = true;
                a.addAll(List.of(d.readOnly() ? "--ro" : "--share", d.file().toString()));
                continue;
            }
            if (d.readOnly()) {
                readable(d.file());
            } else {
                ownFile(d.file(), false);
            }
            a.addAll(List.of(d.readOnly() ? "--ro" : "--rw", d.file().toString()));
        }
        if (spec.memory() instanceof VmSpec.GuestMemory.File f) {
            if (f.shared()) {
                ownFile(f.path(), true);
            } else {
                readable(f.path());
            }
            a.addAll(List.of(f.shared() ? "--rw" : "--ro", f.path().toString()));
        }
        // The console goes through a pipe to the launcher's keeper, which caps the file itself:
        // a guest writing without end cannot grow it while no daemon runs to trim it.
        ownFile(spec.consoleLog(), true);
        a.addAll(List.of("--capped", CONSOLE_FD + ":" + spec.consoleLog() + ":" + RotatingLog.CAP));
        Path out = spec.vmmDir();
        HostFiles.deleteTree(out);
        AirlockDirs.ensureDir(out);
        own(out, 0700);
        a.addAll(List.of("--rw", out.toString()));
        a.addAll(List.of(
                "--listen", AGENT_FD + ":" + spec.agentSocket(), "--listen", CONTROL_FD + ":" + spec.controlSocket()));
        VmSpec.Restore restore = spec.restore();
        if (restore != null) {
            if (!Files.isRegularFile(restore.state())) {
                throw new VmmException("the saved state " + restore.state() + " is missing");
            }
            a.addAll(List.of("--open", STATE_FD + ":" + restore.state()));
        }
        if (sharesDirectory) {
            a.add("--file-caps");
        }
        a.add("--");
        // The launcher execs by absolute path: the jail has no PATH search of the caller's.
        String program = qemuArgv.getFirst();
        a.add(
                Path.of(program).isAbsolute()
                        ? program
                        : VmmChoice.onPath(program)
                                .orElseThrow(() -> new VmmException(program + " is not installed (run: airlock setup)"))
                                .toString());
        a.addAll(qemuArgv.subList(1, qemuArgv.size()));
        HostCommand.Result r = HostCommand.run(a, spec.stateDir(), null);
        if (!r.ok()) {
            throw new VmmException("the jailed VMM did not start (exit " + r.exitCode() + "): "
                    + r.output().strip());
        }
    }

    /** A file the jailed VMM writes: created if {@code create} and absent, then {@code airlock-vmm}'s, 0600. */
    private void ownFile(Path file, boolean create) {
        try {
            if (create && !Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
                Files.createFile(file);
            }
            if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
                throw new VmmException("the VM file " + file + " is missing or not a regular file");
            }
        } catch (IOException e) {
            throw new VmmException("cannot create " + file + ": " + e.getMessage(), e);
        }
        own(file, 0600);
    }

    private void own(Path p, int mode) {
        try {
            Files.setAttribute(p, "unix:uid", uid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(p, "unix:gid", gid, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(p, "unix:mode", mode, LinkOption.NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new VmmException("cannot hand " + p + " to the VMM user " + USER + ": " + e.getMessage(), e);
        }
    }

    /**
     * A file the jailed VMM only reads (kernel, initrd, image, a template's RAM): readable by it
     * through its owner, or else through group {@code airlock-vmm} (never by everyone).
     */
    private void readable(Path file) {
        try {
            int owner = (Integer) Files.getAttribute(file, "unix:uid");
            int group = (Integer) Files.getAttribute(file, "unix:gid");
            int mode = (Integer) Files.getAttribute(file, "unix:mode");
            boolean ok =
                    (mode & 0004) != 0 || (owner == uid && (mode & 0400) != 0) || (group == gid && (mode & 0040) != 0);
            if (!ok) {
                Files.setAttribute(file, "unix:gid", gid);
                Files.setAttribute(file, "unix:mode", (mode & 07777) | 0040);
            }
        } catch (IOException e) {
            throw new VmmException("the VM file " + file + " cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * After the VMM wrote a saved state into its directory: the file becomes root's, 0600, at
     * {@code target} (same file system: a rename).
     */
    static void takeOver(Path written, Path target) {
        try {
            // The directory is the VMM's: what is there may be a link it made, not its output.
            if (!Files.isRegularFile(written, LinkOption.NOFOLLOW_LINKS)
                    || (Integer) Files.getAttribute(written, "unix:nlink", LinkOption.NOFOLLOW_LINKS) != 1) {
                throw new VmmException("the VMM left no plain file at " + written);
            }
            Files.setAttribute(written, "unix:uid", 0, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(written, "unix:gid", 0, LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(written, "unix:mode", 0600, LinkOption.NOFOLLOW_LINKS);
            try {
                Files.move(written, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (java.nio.file.AtomicMoveNotSupportedException e) {
                Files.move(written, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new VmmException(
                    "cannot move the saved state " + written + " to " + target + ": " + e.getMessage(), e);
        }
    }
}
