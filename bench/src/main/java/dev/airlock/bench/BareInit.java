package dev.airlock.bench;

import dev.airlock.host.HostCommand;
import dev.airlock.image.Initramfs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The baseline guest: a static init that mounts devtmpfs and proc, prints its uptime on the
 * console exactly as airlock-init does, and reboots (QEMU runs with {@code -no-reboot}, so it
 * exits). Built with the host's gcc at benchmark time and packed with {@link Initramfs}.
 */
final class BareInit {
    static final String READY = "bare-init: ready";

    private static final String SOURCE = """
            #include <fcntl.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/mount.h>
            #include <sys/reboot.h>
            #include <sys/stat.h>
            #include <unistd.h>

            int main(void)
            {
                mkdir("/dev", 0755);
                mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755");
                int con = open("/dev/console", O_RDWR | O_NOCTTY);
                if (con >= 0) {
                    dup2(con, 1);
                    dup2(con, 2);
                }
                mkdir("/proc", 0555);
                mount("proc", "/proc", "proc", 0, NULL);
                char up[64] = "?";
                int fd = open("/proc/uptime", O_RDONLY);
                if (fd >= 0) {
                    ssize_t n = read(fd, up, sizeof up - 1);
                    up[n > 0 ? n : 0] = 0;
                    up[strcspn(up, " \\n")] = 0;
                }
                dprintf(2, "bare-init: ready %s\\n", up);
                sync();
                reboot(RB_AUTOBOOT);
                return 1;
            }
            """;

    private BareInit() {}

    /** Compiles the init into {@code dir} and returns the path of its initramfs there. */
    static Path build(Path dir) {
        try {
            Path src = dir.resolve("bare-init.c");
            Path bin = dir.resolve("bare-init");
            Path cpio = dir.resolve("bare-initramfs.cpio");
            Files.writeString(src, SOURCE);
            HostCommand.Result r = HostCommand.run(
                    List.of("gcc", "-static", "-O2", "-s", "-o", bin.toString(), src.toString()), dir, null);
            if (!r.ok()) {
                throw new IllegalStateException("cannot build the baseline init with gcc -static (install gcc and"
                        + " libc6-dev): " + r.output().strip());
            }
            Files.write(cpio, Initramfs.withInit(Files.readAllBytes(bin)));
            return cpio;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot build the baseline initramfs in " + dir, e);
        }
    }
}
