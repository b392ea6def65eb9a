package dev.airlock.cli;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.setup.Setup;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "setup", description = "Install packages, build the guest kernel and the base image (idempotent).")
final class SetupCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print the result as JSON.")
    boolean json;

    @Override
    public Integer call() {
        Setup.Report r = new Setup(AirlockDirs.fromEnvironment(), Progress.STDERR).ensure();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("kernel", r.kernel().vmlinux().toString());
        out.put("kernelVersion", r.kernel().version());
        out.put("kernelBuildSeconds", r.kernel().buildSeconds());
        out.put("image", r.image().name() + "@" + r.image().shortId());
        out.put("initrd", r.initrd().toString());
        out.put("accel", r.accelFlag());
        out.put("accelReason", r.accelReason());
        out.put("built", r.built());
        if (json) {
            Output.json(out);
        } else {
            System.err.println(
                    r.built().isEmpty()
                            ? "airlock: setup: everything is up to date; nothing was built"
                            : "airlock: setup: built " + String.join(", ", r.built()));
            System.out.println(
                    "kernel   " + r.kernel().version() + "  " + r.kernel().vmlinux());
            System.out.println(
                    "image    base  " + r.image().shortId() + "  " + (r.image().sizeBytes() >> 20) + " MiB");
            System.out.println("accel    " + r.accelFlag() + "  (" + r.accelReason() + ")");
        }
        return 0;
    }
}
