package dev.airlock.oci;

import dev.airlock.guest.AgentEndpoint;
import dev.airlock.host.LinuxSyscalls;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;

/**
 * A container agent's socket. It lives in a host directory the container mounts read-write (at
 * {@link OciConfig#AGENT_DIR}), so whatever is at its path may have been put there by the
 * container's root: a symlink to another host socket (a container engine's, another daemon's)
 * would have the daemon, root, connect there and speak to it. So the entry is opened without
 * following links ({@code O_PATH | O_NOFOLLOW}), checked to be a socket, and connected to through
 * that very descriptor ({@code /proc/self/fd/N}): the socket checked is the socket connected to.
 * A socket inode there can only be one a process of the container bound, since no other host
 * socket is visible inside it to link to.
 */
public record ContainerAgentSocket(Path path) implements AgentEndpoint {

    @Override
    public SocketChannel open() throws IOException {
        try (LinuxSyscalls sys = new LinuxSyscalls()) {
            int fd;
            try {
                fd = sys.open(
                        path.toString(), LinuxSyscalls.O_PATH | LinuxSyscalls.O_NOFOLLOW | LinuxSyscalls.O_CLOEXEC);
            } catch (LinuxSyscalls.ErrnoException e) {
                throw new IOException("cannot open the agent socket " + path + ": " + e.getMessage(), e);
            }
            try {
                int type = sys.fstatMode(fd) & LinuxSyscalls.S_IFMT;
                if (type != LinuxSyscalls.S_IFSOCK) {
                    throw new IOException("the agent socket " + path + " is not a socket but "
                            + (type == LinuxSyscalls.S_IFLNK ? "a symlink" : "another kind of file")
                            + ": the sandbox replaced it; Airlock does not connect there");
                }
                SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                try {
                    ch.connect(UnixDomainSocketAddress.of("/proc/self/fd/" + fd));
                    return ch;
                } catch (IOException | RuntimeException e) {
                    ch.close();
                    throw e;
                }
            } catch (LinuxSyscalls.ErrnoException e) {
                throw new IOException("cannot check the agent socket " + path + ": " + e.getMessage(), e);
            } finally {
                try {
                    sys.close(fd);
                } catch (LinuxSyscalls.ErrnoException e) {
                    // A descriptor we just opened: closing it cannot fail in a way worth reporting.
                }
            }
        }
    }

    @Override
    public String describe() {
        return path.toString();
    }
}
