package dev.airlock.oci;

import dev.airlock.host.LinuxSyscalls;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * The host ids a container's user namespace maps its ids 0..{@link #SIZE}-1 to: container root
 * is host uid {@link #uid()}, never host root. One fixed range, the subordinate ids of the {@value
 * #USER} user in /etc/subuid and /etc/subgid (setup reserves them), shared by every container:
 * the image's idmapped mount is then one per image as its plain mount is, and a layer keeps its
 * ownership when it is copied into another sandbox (a template, a fork). What it gives up against
 * a range per container (podman's auto userns) is that two containers' roots are the same host
 * uid; they still share no namespace, no mount and no directory (each sandbox's is 0700 root's).
 *
 * @param uid the host uid of container uid 0
 * @param gid the host gid of container gid 0
 */
public record ContainerIds(int uid, int gid) {
    public static final String USER = "airlock-containers";

    /** Container ids 0..65535: every id a Debian image uses (nobody is 65534). */
    public static final int SIZE = 65536;

    /** The sandbox-directory file that records a container's ids ("uid gid"). */
    static final String RECORD = "ids";

    /** The range setup reserved for {@value #USER}, if there is one of at least {@link #SIZE} ids. */
    public static Optional<ContainerIds> forHost() {
        Optional<Integer> uid = subordinate(Path.of("/etc/subuid"));
        Optional<Integer> gid = subordinate(Path.of("/etc/subgid"));
        return uid.isPresent() && gid.isPresent()
                ? Optional.of(new ContainerIds(uid.get(), gid.get()))
                : Optional.empty();
    }

    private static Optional<Integer> subordinate(Path file) {
        try {
            for (String line : Files.readAllLines(file)) {
                String[] f = line.strip().split(":");
                if (f.length == 3 && f[0].equals(USER)) {
                    long first = Long.parseLong(f[1]);
                    long count = Long.parseLong(f[2]);
                    if (count >= SIZE && first > 0 && first + SIZE <= Integer.MAX_VALUE) {
                        return Optional.of((int) first);
                    }
                }
            }
        } catch (IOException | NumberFormatException e) {
            // no readable or no valid entry: no range
        }
        return Optional.empty();
    }

    /** The ids a sandbox was created with, from its container directory; empty: no user namespace. */
    static Optional<ContainerIds> recorded(Path containerDir) {
        try {
            String[] f = Files.readString(containerDir.resolve(RECORD)).strip().split(" ");
            return Optional.of(new ContainerIds(Integer.parseInt(f[0]), Integer.parseInt(f[1])));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    void record(Path containerDir) {
        try {
            Files.createDirectories(containerDir);
            Files.writeString(containerDir.resolve(RECORD), uid + " " + gid + "\n");
        } catch (IOException e) {
            throw new ContainerException("cannot record the container ids in " + containerDir, e);
        }
    }

    /** The OCI runtime spec's {@code uidMappings} / {@code gidMappings} entry of this range. */
    static java.util.Map<String, Object> mapping(int hostId) {
        return java.util.Map.of("containerID", 0, "hostID", hostId, "size", SIZE);
    }

    /** Gives {@code path} (not what it links to) to container root. */
    void own(Path path) {
        try {
            Files.setAttribute(path, "unix:uid", uid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            Files.setAttribute(path, "unix:gid", gid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw new ContainerException("cannot give " + path + " to container root (uid " + uid + ")", e);
        }
    }

    /**
     * Mounts {@code source} at {@code target} idmapped to this range: a file the image has as uid
     * 0 shows there as {@link #uid()}, so root in the container owns the image's files as root
     * on the host owns them in the image, without copying or chowning the image.
     */
    void mountIdmapped(Path source, Path target) {
        // A user namespace holding the mapping, kept by a process only until the mount has it:
        // unshare execs the shell once it is inside the new namespace, which then says so.
        ProcessBuilder pb = new ProcessBuilder(List.of("unshare", "--user", "--", "sh", "-c", "echo in; exec cat"));
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process holder;
        try {
            holder = pb.start();
        } catch (IOException e) {
            throw new ContainerException("cannot run unshare for a user namespace", e);
        }
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            BufferedReader out =
                    new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.US_ASCII));
            if (!"in".equals(out.readLine())) {
                throw new ContainerException("unshare --user did not start (util-linux's unshare is needed)");
            }
            Path proc = Path.of("/proc", Long.toString(holder.pid()));
            Files.writeString(proc.resolve("uid_map"), "0 " + uid + " " + SIZE + "\n");
            Files.writeString(proc.resolve("setgroups"), "deny\n");
            Files.writeString(proc.resolve("gid_map"), "0 " + gid + " " + SIZE + "\n");
            int ns = sys.open(proc.resolve("ns/user").toString(), LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC);
            try {
                sys.idmappedMount(source.toString(), target.toString(), ns);
            } finally {
                sys.close(ns);
            }
        } catch (IOException | LinuxSyscalls.ErrnoException e) {
            throw new ContainerException(
                    "cannot mount " + source + " idmapped for container ids at " + target + ": " + e.getMessage(), e);
        } finally {
            holder.destroyForcibly();
        }
    }
}
