package dev.airlock.ociruntime;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.airlock.host.HostCommand;
import dev.airlock.host.LinuxSyscalls;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * The terminal of a container created with {@code --console-socket}, as runc makes it: a new
 * pseudo-terminal whose master goes to the caller over the unix socket (SCM_RIGHTS, the
 * runtime-spec's console-socket protocol) and whose slave is the stand-in's stdio. The slave is
 * raw: the guest's own terminal does the line discipline, this one only carries bytes.
 */
final class ConsolePty {
    private static final long TIOCSPTLCK = 0x40045431L;
    private static final long TIOCGPTN = 0x80045430L;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int O_RDWR = 2;
    private static final int O_NOCTTY = 0x100;
    private static final int O_CLOEXEC = 0x80000;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle SOCKET =
            downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT =
            downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG =
            downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    private ConsolePty() {}

    private static MethodHandle downcall(String name, FunctionDescriptor d) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), d);
    }

    /** Opens a pty, hands its master to {@code consoleSocket} and returns the slave's path. */
    static Path open(Path consoleSocket) {
        try (LinuxSyscalls sys = new LinuxSyscalls();
                Arena arena = Arena.ofConfined()) {
            int master = sys.open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
            try {
                MemorySegment n = arena.allocate(JAVA_INT);
                sys.ioctl(master, TIOCSPTLCK, n, "TIOCSPTLCK");
                sys.ioctl(master, TIOCGPTN, n, "TIOCGPTN");
                Path slave = Path.of("/dev/pts/" + n.get(JAVA_INT, 0));
                HostCommand.check(List.of("stty", "-F", slave.toString(), "raw", "-echo"));
                send(consoleSocket, master, slave.toString(), arena);
                return slave;
            } finally {
                sys.close(master);
            }
        } catch (LinuxSyscalls.ErrnoException e) {
            throw new RuntimeError("cannot make the container's terminal: " + e.getMessage(), e);
        }
    }

    private static void send(Path socketPath, int fd, String name, Arena arena) {
        byte[] path = socketPath.toString().getBytes(StandardCharsets.UTF_8);
        if (path.length >= 108) {
            throw new RuntimeError("the console socket path is too long: " + socketPath);
        }
        try {
            int s = (int) SOCKET.invokeExact(AF_UNIX, SOCK_STREAM, 0);
            if (s < 0) {
                throw new RuntimeError("cannot make a socket for the console");
            }
            try {
                MemorySegment addr = arena.allocate(110);
                addr.set(JAVA_SHORT, 0, (short) AF_UNIX);
                MemorySegment.copy(path, 0, addr, JAVA_BYTE_LAYOUT, 2, path.length);
                if ((int) CONNECT.invokeExact(s, addr, 110) < 0) {
                    throw new RuntimeError("cannot connect to the console socket " + socketPath);
                }
                // The payload names the terminal, as runc sends it.
                byte[] payload = name.getBytes(StandardCharsets.UTF_8);
                MemorySegment data = arena.allocate(payload.length);
                MemorySegment.copy(payload, 0, data, JAVA_BYTE_LAYOUT, 0, payload.length);
                MemorySegment iov = arena.allocate(16);
                iov.set(ADDRESS, 0, data);
                iov.set(JAVA_LONG, 8, payload.length);
                // struct cmsghdr { size_t len; int level; int type; int fd; } padded to 24 bytes
                MemorySegment control = arena.allocate(24);
                control.set(JAVA_LONG, 0, 20);
                control.set(JAVA_INT, 8, SOL_SOCKET);
                control.set(JAVA_INT, 12, SCM_RIGHTS);
                control.set(JAVA_INT, 16, fd);
                // struct msghdr { name, namelen, iov, iovlen, control, controllen, flags }
                MemorySegment msg = arena.allocate(56);
                msg.set(ADDRESS, 0, MemorySegment.NULL);
                msg.set(JAVA_INT, 8, 0);
                msg.set(ADDRESS, 16, iov);
                msg.set(JAVA_LONG, 24, 1);
                msg.set(ADDRESS, 32, control);
                msg.set(JAVA_LONG, 40, 24);
                msg.set(JAVA_INT, 48, 0);
                if ((long) SENDMSG.invokeExact(s, msg, 0) < 0) {
                    throw new RuntimeError("cannot send the terminal to the console socket " + socketPath);
                }
            } finally {
                int ignored = (int) CLOSE.invokeExact(s);
            }
        } catch (RuntimeError e) {
            throw e;
        } catch (Throwable t) {
            throw new RuntimeError("cannot send the terminal to the console socket: " + t.getMessage(), t);
        }
    }

    private static final java.lang.foreign.ValueLayout.OfByte JAVA_BYTE_LAYOUT =
            java.lang.foreign.ValueLayout.JAVA_BYTE;
}
