package dev.airlock.ociruntime;

import dev.airlock.guest.ProcessConfinement;
import dev.airlock.guest.Tlv;
import dev.airlock.host.HostCommand;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * One microVM per pod: the pod's sandbox container boots the VM on its rootfs; each app container
 * that joins its namespaces makes no VM. Its rootfs is bind-mounted on the host into the pod's
 * share, a directory inside the sandbox container's rootfs (so inside the VM's 9p tree) that is a
 * shared mount on the host, of which the VMM jail's copy is a slave: a mount made there after the
 * VM started reaches QEMU. Its process runs in the pod's VM with that directory as its root (the
 * guest protocol's EXEC tag ROOT: a mount namespace of its own, with its own /proc, /sys, /dev),
 * relayed by its own stand-in, so it shares the VM's network, IPC and kernel with the pod.
 *
 * <p>State files: the sandbox container's directory holds {@link #SHARE_FILE} (the share's host
 * path); an app container's holds {@link #ROOT_FILE} (where its rootfs is mounted on the host).
 */
final class VmPod {
    /** The pod's share in the sandbox container's rootfs; the guest sees it at {@code /.airlock-pod}. */
    static final String SHARE = ".airlock-pod";
    /** In a sandbox container's state directory: the host path of the pod's share. */
    static final String SHARE_FILE = "pod-share";
    /** In an app container's state directory: the host mount point of its rootfs in the pod's share. */
    static final String ROOT_FILE = "pod-root";
    /** EXEC's ROOT tag (guest/src/frame.h X_ROOT): the guest directory that is the process's root. */
    static final int ROOT_TAG = 16;

    private VmPod() {}

    /** Whether a config is a pod's sandbox container (CRI's annotation). */
    static boolean isSandbox(BundleConfig config) {
        return "sandbox".equals(config.annotations().get(PodNamespaces.CONTAINER_TYPE));
    }

    /**
     * Before a pod's VM boots: its share, made a mount of its own and shared, so the VMM jail's
     * copy of it is a slave that receives the app containers' roots mounted later.
     */
    static void prepareShare(Path rootfs, Path stateDir) {
        Path share = rootfs.resolve(SHARE);
        try {
            if (Files.isSymbolicLink(share) || (Files.exists(share) && !Files.isDirectory(share))) {
                throw new RuntimeError("the sandbox container's rootfs holds " + SHARE
                        + " that is no directory; a pod's VM needs that name for its app containers' roots");
            }
            Files.createDirectories(share);
            Files.writeString(stateDir.resolve(SHARE_FILE), share.toString());
        } catch (IOException e) {
            throw new RuntimeError("cannot make the pod's share " + share + ": " + e.getMessage(), e);
        }
        HostCommand.check(List.of("mount", "--bind", share.toString(), share.toString()));
        HostCommand.check(List.of("mount", "--make-shared", share.toString()));
    }

    /** After the pod's VM is gone: the share is unmounted and removed. */
    static void releaseShare(Path stateDir) {
        Path share = recorded(stateDir, SHARE_FILE);
        if (share == null) {
            return;
        }
        unmountTree(share);
        try {
            Files.deleteIfExists(share);
        } catch (IOException e) {
            // not empty: an app container's mount point its own delete removes
        }
    }

    /**
     * Mounts an app container's rootfs (with the binds already made in it) into its pod's share;
     * returns its root as the guest sees it.
     */
    static String join(Path ownerDir, String id, Path rootfs, Path stateDir) {
        Path share = recorded(ownerDir, SHARE_FILE);
        if (share == null || !Files.isDirectory(share, LinkOption.NOFOLLOW_LINKS)) {
            throw new RuntimeError("the pod's VM has no share for its app containers (its sandbox container"
                    + " was not created with the annotation " + PodNamespaces.CONTAINER_TYPE + "=sandbox)");
        }
        Path target = share.resolve(id);
        try {
            Files.createDirectory(target);
            Files.writeString(stateDir.resolve(ROOT_FILE), target.toString());
        } catch (IOException e) {
            throw new RuntimeError("cannot make the mount point " + target + ": " + e.getMessage(), e);
        }
        HostCommand.check(List.of("mount", "--rbind", rootfs.toString(), target.toString()));
        return "/" + SHARE + "/" + id;
    }

    /** Unmounts an app container's root from its pod's share (idempotent). */
    static void leave(Path stateDir) {
        Path target = recorded(stateDir, ROOT_FILE);
        if (target == null) {
            return;
        }
        unmountTree(target);
        try {
            Files.deleteIfExists(target);
        } catch (IOException e) {
            throw new RuntimeError("cannot remove the mount point " + target + ": " + e.getMessage(), e);
        }
    }

    /** The state directories of the app containers of the pod whose sandbox container is {@code ownerId}. */
    static List<Path> members(Path root, String ownerId) {
        List<Path> out = new ArrayList<>();
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(root)) {
            for (Path dir : dirs) {
                if (!Files.isRegularFile(dir.resolve(ContainerRecord.FILE))) {
                    continue;
                }
                try {
                    if (ownerId.equals(
                            ContainerRecord.read(dir, dir.getFileName().toString())
                                    .pod())) {
                        out.add(dir);
                    }
                } catch (RuntimeError unreadable) {
                    // one being written or removed
                }
            }
        } catch (IOException e) {
            throw new RuntimeError("cannot read the containers under " + root + ": " + e.getMessage(), e);
        }
        return out;
    }

    /**
     * The app container's process as it runs in the pod's VM: with the pod's hostname when it
     * joins the pod's UTS namespace (CRI gives it none: the sandbox container's, or the VM's own
     * when that has none), and without a mount namespace of the config's: its root comes with its
     * own /proc, /sys and /dev (the agent's ROOT), and the agent refuses ROOT beside the mount tags.
     */
    static ProcessSpec inPod(ProcessSpec p, BundleConfig config, Path ownerDir) {
        ProcessConfinement c = p.confinement();
        String hostname = c == null ? null : c.hostname();
        if (config.joins().containsKey("uts")) {
            try {
                ProcessConfinement owner = Json.MAPPER
                        .readValue(Files.readString(ownerDir.resolve(ContainerRecord.PROCESS)), ProcessSpec.class)
                        .confinement();
                hostname = owner == null ? null : owner.hostname();
            } catch (IOException e) {
                throw new RuntimeError("cannot read the pod's sandbox container's process: " + e.getMessage(), e);
            }
        }
        if (c == null && hostname == null) {
            return p;
        }
        ProcessConfinement withHost = c == null
                ? new ProcessConfinement(List.of(), null, false, null, null, null, hostname, null)
                : new ProcessConfinement(
                        c.rlimits(),
                        c.capabilities(),
                        c.noNewPrivileges(),
                        c.seccomp(),
                        c.umask(),
                        c.groups(),
                        hostname,
                        null);
        return new ProcessSpec(p.args(), p.env(), p.cwd(), p.user(), p.terminal(), withHost);
    }

    /** The ROOT entry the stand-in's request ends with. */
    static byte[] rootEntry(String guestRoot) {
        return new Tlv.Writer().string(ROOT_TAG, guestRoot).toPayload();
    }

    private static @Nullable Path recorded(Path stateDir, String file) {
        try {
            String p = Files.readString(stateDir.resolve(file)).strip();
            return p.isEmpty() ? null : Path.of(p);
        } catch (NoSuchFileException e) {
            return null;
        } catch (IOException e) {
            throw new RuntimeError("cannot read " + stateDir.resolve(file) + ": " + e.getMessage(), e);
        }
    }

    /** A mount and everything under it; lazily when busy (it goes once released). */
    private static void unmountTree(Path target) {
        if (!DirectoryBinds.mounted(target.toString())) {
            return;
        }
        HostCommand.Result r = HostCommand.run(List.of("umount", "-R", target.toString()), null, null);
        if (!r.ok() && DirectoryBinds.mounted(target.toString())) {
            HostCommand.check(List.of("umount", "-R", "-l", target.toString()));
        }
    }
}
