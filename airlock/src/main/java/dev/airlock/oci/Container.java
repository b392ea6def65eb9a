package dev.airlock.oci;

import dev.airlock.guest.GuestChannel;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * A sandbox container on this host, created by {@link OciContainers#create} or found again by
 * {@link OciContainers#attach}.
 *
 * @param id the runtime's container id
 * @param sandboxDir the sandbox's directory (bundle, overlay layers, log)
 * @param image the image it was created from (file or directory)
 * @param socket the host path of the agent's unix socket
 * @param cgroup its cgroup
 */
public record Container(String id, Path sandboxDir, Path image, Path socket, ContainerCgroup cgroup) {

    public Path bundle() {
        return sandboxDir.resolve("bundle");
    }

    public Path rootfs() {
        return bundle().resolve("rootfs");
    }

    /** The overlay's writable layer: every change the sandbox made to its filesystem. */
    public Path upper() {
        return LayerDisk.upper(sandboxDir);
    }

    public Path work() {
        return LayerDisk.work(sandboxDir);
    }

    /** The agent's and the runtime's output. */
    public Path log() {
        return sandboxDir.resolve("container.log");
    }

    /** A new session with the agent. */
    public GuestChannel connect(Duration helloTimeout) throws IOException {
        return GuestChannel.connect(new ContainerAgentSocket(socket), helloTimeout);
    }
}
