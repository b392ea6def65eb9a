package dev.airlock.microvm;

import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalLong;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;

/**
 * The clock a TCG guest keeps time with. Under QEMU's TCG a guest's TSC is the host's (plus an
 * offset QEMU carries across stop, save and restore), but the guest kernel cannot measure its
 * rate: its PIT calibration fails under emulation and a microvm has neither HPET nor ACPI PM
 * timer. It then marks the TSC unstable and keeps time with 100 Hz jiffies: timers round up to
 * 10 ms, no tickless idle (every idle VM still takes 100 interrupts a second), and every
 * {@code clock_gettime} is a system call. Given the rate ({@code tsc_early_khz=}, measured on the
 * host by the agent binary's {@code --tsc-khz}) and told not to second-guess it
 * ({@code tsc=reliable}: with no reference clock its watchdog has nothing to compare with), the
 * guest uses the TSC: nanosecond timers, tickless idle, the vDSO.
 *
 * <p>The rate is measured once per host boot (100 ms) and kept in the cache, so template keys stay
 * the same across daemon restarts; the key names it in MHz ({@link #keyPart}).
 */
final class GuestClock {
    private static final String FILE = "tsc-khz";

    private final Path cacheDir;
    private final Supplier<Path> agentBinary;
    private volatile @Nullable OptionalLong khz;

    GuestClock(Path cacheDir, Supplier<Path> agentBinary) {
        this.cacheDir = cacheDir;
        this.agentBinary = agentBinary;
    }

    /** The kernel command line words for a TCG guest: empty when the rate is unknown (jiffies, as before). */
    String cmdline() {
        OptionalLong k = khz();
        return k.isPresent() ? " tsc_early_khz=" + k.getAsLong() + " tsc=reliable" : "";
    }

    /** What a template saved under this clock records in its key: the clock and its rate in MHz. */
    String keyPart() {
        OptionalLong k = khz();
        return k.isPresent() ? "tsc:" + Math.round(k.getAsLong() / 1000.0) : "jiffies";
    }

    private OptionalLong khz() {
        OptionalLong k = khz;
        if (k == null) {
            synchronized (this) {
                k = khz;
                if (k == null) {
                    k = cachedOrMeasured();
                    khz = k;
                }
            }
        }
        return k;
    }

    private OptionalLong cachedOrMeasured() {
        String boot = bootId();
        Path file = cacheDir.resolve(FILE);
        try {
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            if (lines.size() == 2 && lines.get(0).equals(boot)) {
                return plausible(Long.parseLong(lines.get(1).strip()));
            }
        } catch (IOException | NumberFormatException e) {
            // not measured on this boot yet
        }
        HostCommand.Result r = HostCommand.run(List.of(agentBinary.get().toString(), "--tsc-khz"), null, null);
        OptionalLong measured = OptionalLong.empty();
        if (r.ok()) {
            try {
                measured = plausible(Long.parseLong(r.output().strip()));
            } catch (NumberFormatException e) {
                // no number: keep jiffies
            }
        }
        if (measured.isPresent() && !boot.isEmpty()) {
            HostFiles.writeAtomically(
                    file, (boot + "\n" + measured.getAsLong() + "\n").getBytes(StandardCharsets.UTF_8));
        }
        return measured;
    }

    /** A TSC between 100 MHz and 20 GHz; anything else is a broken measurement. */
    private static OptionalLong plausible(long khz) {
        return khz >= 100_000 && khz <= 20_000_000 ? OptionalLong.of(khz) : OptionalLong.empty();
    }

    private static String bootId() {
        try {
            return Files.readString(Path.of("/proc/sys/kernel/random/boot_id")).strip();
        } catch (IOException e) {
            return "";
        }
    }
}
