package dev.airlock.ociruntime;

import dev.airlock.host.NamespaceFile;
import dev.airlock.service.SandboxService;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * The namespaces a container joins by path, as CRI asks of a pod's app containers: their
 * config.json names {@code /proc/PID/ns/net} (ipc, uts, pid) of the pod sandbox container's
 * pid, which is the pid this runtime reported for it: the host stand-in ({@link StandIn}), whose
 * namespaces are the host's. Such a path is turned into the same namespace of the container it
 * stands for (its sandbox's init). Any other path (a CNI network namespace under
 * {@code /var/run/netns}) goes to the daemon as written, which checks it is a namespace file of
 * that type and not the host's own ({@link NamespaceFile}). When CRI's annotations say the
 * container belongs to a pod ({@code io.kubernetes.cri.sandbox-id}), the namespaces of ours it
 * joins must be that pod's. A microVM-mode container joins its pod's VM instead ({@link #vmPod},
 * {@link VmPod}).
 */
final class PodNamespaces {
    private static final Pattern PROC_NS = Pattern.compile("/proc/(\\d{1,10})/ns/([a-z]{2,8})");

    /** CRI's annotations: {@code sandbox} or {@code container}, and the pod's sandbox container id. */
    static final String CONTAINER_TYPE = "io.kubernetes.cri.container-type";

    static final String SANDBOX_ID = "io.kubernetes.cri.sandbox-id";

    private PodNamespaces() {}

    /** The namespaces for the daemon: type -> path of a namespace file; empty when none is joined. */
    static Map<String, String> resolve(Path root, BundleConfig config, SandboxService service) {
        if (config.joins().isEmpty()) {
            return Map.of();
        }
        String mode = config.mode();
        String joined = String.join(", ", config.joins().keySet());
        if (!mode.equals("container")) {
            throw BundleConfig.refused(
                    "linux.namespaces " + joined + " (by path)",
                    "a " + mode + "-mode container has the namespaces of its own sandbox kernel (runsc's"
                            + " multi-container sandboxes are not used): run the pod in container mode (annotation "
                            + BundleConfig.MODE_ANNOTATION + "=container)");
        }
        String pod = podOf(config);
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : config.joins().entrySet()) {
            String type = e.getKey();
            String path = e.getValue();
            Matcher m = PROC_NS.matcher(path);
            ContainerRecord owner = m.matches() ? ownerOf(root, Long.parseLong(m.group(1))) : null;
            if (owner == null) {
                out.put(type, path);
                continue;
            }
            if (pod != null && !pod.equals(owner.id())) {
                throw new RuntimeError("linux.namespaces " + type + " " + path + " are container " + owner.id()
                        + "'s, but the annotation " + SANDBOX_ID + " says this container belongs to pod " + pod);
            }
            if (!m.group(2).equals(NamespaceFile.procName(type))) {
                throw new RuntimeError("linux.namespaces " + type + " " + path + ": the path names the " + m.group(2)
                        + " namespace, not " + NamespaceFile.procName(type));
            }
            String ownerMode = owner.annotations().getOrDefault(BundleConfig.MODE_ANNOTATION, "microvm");
            if (!ownerMode.equals("container")) {
                throw new RuntimeError("linux.namespaces " + type + " " + path + ": container " + owner.id()
                        + " runs in " + ownerMode + " mode; a container-mode container joins the namespaces of"
                        + " container-mode containers only");
            }
            long init = service.inspect(owner.sandbox()).pid();
            if (init <= 0) {
                throw new RuntimeError("linux.namespaces " + type + " " + path + ": container " + owner.id()
                        + " is not running, so it has no namespaces to join");
            }
            out.put(type, "/proc/" + init + "/ns/" + NamespaceFile.procName(type));
        }
        return out;
    }

    /**
     * For a microVM-mode container: the pod whose VM it joins, or null when it joins nothing.
     * Every path must be {@code /proc/PID/ns/TYPE} of the stand-in of one running microVM-mode
     * pod sandbox container of ours (the pid CRI knows for it), the same one for every type, and
     * the pod CRI's annotation names when it names one. A namespace file on the host (CNI's) is
     * refused: a VM cannot join it.
     */
    static @Nullable ContainerRecord vmPod(Path root, BundleConfig config) {
        if (config.joins().isEmpty()) {
            return null;
        }
        String pod = podOf(config);
        ContainerRecord found = null;
        for (Map.Entry<String, String> e : config.joins().entrySet()) {
            String type = e.getKey();
            String path = e.getValue();
            String where = "linux.namespaces " + type + " " + path;
            Matcher m = PROC_NS.matcher(path);
            ContainerRecord owner = m.matches() ? ownerOf(root, Long.parseLong(m.group(1))) : null;
            if (owner == null) {
                throw BundleConfig.refused(
                        where,
                        "a microVM-mode container cannot join a namespace on the host; it joins a pod's VM by the"
                                + " /proc/PID/ns path of the pod's sandbox container, a microVM-mode container of"
                                + " this runtime (CRI's path on a node without CNI)"
                                + (type.equals("network") ? "; with podman: --network none" : ""));
            }
            if (!m.group(2).equals(NamespaceFile.procName(type))) {
                throw new RuntimeError(where + ": the path names the " + m.group(2) + " namespace, not "
                        + NamespaceFile.procName(type));
            }
            if (pod != null && !pod.equals(owner.id())) {
                throw new RuntimeError(where + " are container " + owner.id() + "'s, but the annotation " + SANDBOX_ID
                        + " says this container belongs to pod " + pod);
            }
            if (found != null && !found.id().equals(owner.id())) {
                throw new RuntimeError(where + " are container " + owner.id() + "'s, but its other namespaces are "
                        + found.id() + "'s: a container joins one pod");
            }
            String ownerMode = owner.annotations().getOrDefault(BundleConfig.MODE_ANNOTATION, "microvm");
            if (!ownerMode.equals("microvm")) {
                throw new RuntimeError(where + ": container " + owner.id() + " runs in " + ownerMode + " mode; a"
                        + " microvm-mode container joins the VM of a microvm-mode pod only (give both the same "
                        + BundleConfig.MODE_ANNOTATION + ")");
            }
            if (owner.pod() != null) {
                throw new RuntimeError(where + ": container " + owner.id() + " is an app container of pod "
                        + owner.pod() + "; join the pod's sandbox container's namespaces");
            }
            if (!"sandbox".equals(owner.annotations().get(CONTAINER_TYPE))) {
                throw new RuntimeError(where + ": container " + owner.id() + " is no pod sandbox container (the"
                        + " annotation " + CONTAINER_TYPE + "=sandbox at its create): only a pod's VM takes other"
                        + " containers");
            }
            found = owner;
        }
        return found;
    }

    /** CRI's pod sandbox id of an app container ({@code container-type=container}), or null. */
    private static @Nullable String podOf(BundleConfig config) {
        return "container".equals(config.annotations().get(CONTAINER_TYPE))
                ? config.annotations().get(SANDBOX_ID)
                : null;
    }

    /** The container of ours whose stand-in has this pid, or null. */
    static @Nullable ContainerRecord ownerOf(Path root, long pid) {
        if (!Files.isDirectory(root)) {
            return null;
        }
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root)) {
            for (Path dir : dirs) {
                if (!Files.isRegularFile(dir.resolve(ContainerRecord.FILE))) {
                    continue;
                }
                ContainerRecord r;
                try {
                    r = ContainerRecord.read(dir, dir.getFileName().toString());
                } catch (RuntimeError unreadable) {
                    continue; // one being written or removed
                }
                if (r.pid() == pid && StandIn.owns(pid, dir)) {
                    return r;
                }
            }
        } catch (IOException e) {
            throw new RuntimeError("cannot read the containers under " + root + ": " + e.getMessage(), e);
        }
        return null;
    }
}
