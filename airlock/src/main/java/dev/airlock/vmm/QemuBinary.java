package dev.airlock.vmm;

import dev.airlock.host.HostCommand;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * One QEMU system emulator binary and what its version allows. The version decides how Airlock
 * drives it: QEMU 9+ migrates to and from {@code file:} URIs (no {@code exec:} helper process,
 * so the seccomp sandbox can forbid spawning) and maps a RAM file read-only but private
 * ({@code readonly=on,rom=off}); older ones get the 7.2-era command line.
 *
 * @param binary the command or absolute path
 * @param versionLine the first line of {@code --version}, or why it could not be run
 * @param dataDir QEMU's data directory ({@code -L}) when the binary is an unpacked copy outside
 *     {@code /usr} (the 7.2 kept for benchmarks): its firmware, not the installed QEMU's
 */
public record QemuBinary(
        String binary,
        String versionLine,
        int major,
        int minor,
        @Nullable Path dataDir) {
    private static final Pattern VERSION = Pattern.compile("QEMU emulator version (\\d+)\\.(\\d+)");

    /** Runs {@code binary --version} (a few ms) and reads what it says. */
    public static QemuBinary probe(String binary) {
        HostCommand.Result r = HostCommand.run(List.of(binary, "--version"), null, null);
        String line = r.ok()
                ? r.output().lines().findFirst().orElse("unknown").strip()
                : "not runnable: " + r.output().strip();
        Matcher m = VERSION.matcher(line);
        int major = m.find() ? Integer.parseInt(m.group(1)) : 0;
        int minor = major > 0 ? Integer.parseInt(m.group(2)) : 0;
        return new QemuBinary(binary, line, major, minor, dataDirOf(binary));
    }

    private static @Nullable Path dataDirOf(String binary) {
        Path p = Path.of(binary);
        if (!p.isAbsolute() || p.startsWith("/usr/") || p.getParent() == null) {
            return null;
        }
        Path prefix = p.getParent().getParent();
        Path share = prefix == null ? null : prefix.resolve("share/qemu");
        return share != null && Files.isDirectory(share) ? share : null;
    }

    public boolean runnable() {
        return major > 0;
    }

    public boolean atLeast(int wantMajor, int wantMinor) {
        return major > wantMajor || (major == wantMajor && minor >= wantMinor);
    }

    /**
     * {@code file:} migration URIs (so a jailed QEMU under a seccomp filter that denies spawning
     * can still save and load) and {@code rom=off} on a read-only RAM file: QEMU 9.0 and later.
     */
    public boolean modern() {
        return atLeast(9, 0);
    }

    /** Where the binary's install lives when it is not the system's (bound into the jail read-only). */
    public @Nullable Path installRoot() {
        Path data = dataDir;
        Path share = data == null ? null : data.getParent();
        return share == null ? null : share.getParent();
    }

    /** What a template records as the VMM that saved it: the binary and its exact version. */
    public String identity() {
        return binary + " (" + versionLine + ")";
    }
}
