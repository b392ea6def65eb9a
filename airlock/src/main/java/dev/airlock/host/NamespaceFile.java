package dev.airlock.host;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A namespace a container joins by path (runtime-spec {@code linux.namespaces[].path}, as CRI
 * gives its app containers the pod sandbox's {@code /proc/PID/ns/net}, or a CNI network
 * namespace bound under {@code /var/run/netns}). Before such a path reaches the container
 * runtime it is checked here: the file must be a namespace of the type asked for (the kernel
 * says so: {@code NS_GET_NSTYPE} on the open file), and not the host's own namespace, which a
 * sandbox never shares.
 */
public final class NamespaceFile {
    /** {@code _IO(0xb7, 0x3)}: which kind of namespace an nsfs file descriptor refers to. */
    private static final long NS_GET_NSTYPE = 0xb703;

    /** The runtime-spec types a sandbox may join, with their {@code CLONE_NEW*} flag and /proc name. */
    private static final Map<String, Kind> JOINABLE = Map.of(
            "network", new Kind(0x40000000, "net"),
            "ipc", new Kind(0x08000000, "ipc"),
            "uts", new Kind(0x04000000, "uts"),
            "pid", new Kind(0x20000000, "pid"));

    private record Kind(int cloneFlag, String procName) {}

    private NamespaceFile() {}

    /** Whether a sandbox may join a namespace of this runtime-spec type by path. */
    public static boolean joinable(String type) {
        return JOINABLE.containsKey(type);
    }

    /** The /proc/PID/ns name of a joinable type ({@code network} -> {@code net}). */
    public static String procName(String type) {
        Kind k = JOINABLE.get(type);
        if (k == null) {
            throw new IllegalArgumentException(type + " is not a namespace type a sandbox can join");
        }
        return k.procName();
    }

    /**
     * Checks that {@code path} is a namespace file of {@code type} other than the host's own;
     * throws {@link IllegalArgumentException} saying what is wrong.
     */
    public static void check(String type, String path) {
        Kind kind = JOINABLE.get(type);
        if (kind == null) {
            throw new IllegalArgumentException("a sandbox can join only the " + String.join(", ", JOINABLE.keySet())
                    + " namespaces by path, not " + type);
        }
        if (!path.startsWith("/")) {
            throw new IllegalArgumentException("the " + type + " namespace path '" + path + "' is not absolute");
        }
        int found;
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int fd = sys.open(path, LinuxSyscalls.O_RDONLY | LinuxSyscalls.O_CLOEXEC);
            try {
                found = sys.ioctl(fd, NS_GET_NSTYPE, 0, "NS_GET_NSTYPE " + path);
            } catch (LinuxSyscalls.ErrnoException e) {
                throw new IllegalArgumentException(path + " is not a namespace file (" + e.getMessage() + ")");
            } finally {
                sys.close(fd);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new IllegalArgumentException(
                    "cannot open the " + type + " namespace " + path + ": " + e.getMessage());
        }
        if (found != kind.cloneFlag()) {
            String what = JOINABLE.entrySet().stream()
                    .filter(e -> e.getValue().cloneFlag() == found)
                    .map(Map.Entry::getKey)
                    .findFirst()
                    .orElse("another kind of");
            throw new IllegalArgumentException(path + " is a " + what + " namespace, not a " + type + " namespace");
        }
        if (sameFile(Path.of(path), Path.of("/proc/self/ns", kind.procName()))) {
            throw new IllegalArgumentException(
                    path + " is the host's own " + type + " namespace: a sandbox does not share the host's namespaces");
        }
    }

    /** Whether two paths (links followed, as the kernel does) name the same namespace. */
    private static boolean sameFile(Path a, Path b) {
        try {
            Map<String, Object> x = Files.readAttributes(a, "unix:dev,ino");
            Map<String, Object> y = Files.readAttributes(b, "unix:dev,ino");
            return java.util.Objects.equals(x.get("dev"), y.get("dev"))
                    && java.util.Objects.equals(x.get("ino"), y.get("ino"));
        } catch (IOException | RuntimeException e) {
            throw new IllegalArgumentException("cannot stat the namespace " + a + ": " + e.getMessage());
        }
    }
}
