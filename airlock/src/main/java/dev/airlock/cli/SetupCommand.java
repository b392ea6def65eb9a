package dev.airlock.cli;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.runtimes.HostRuntimes;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
        name = "setup",
        description = "Install packages, build the base image and ready the default runtime (idempotent); other"
                + " runtimes are readied on their first use.")
final class SetupCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print the result as JSON.")
    boolean json;

    @Option(
            names = "--runtime",
            description = "Ready this runtime (microvm, gvisor, container) instead of the default.")
    @Nullable
    String runtime;

    @Override
    public Integer call() {
        HostRuntimes runtimes = new HostRuntimes(AirlockDirs.fromEnvironment(), Progress.STDERR);
        HostRuntimes.Prepared r = runtimes.prepare(runtime);
        List<HostRuntimes.Line> lines = runtimes.examine();
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("runtime", r.runtime());
        out.put("runtimeReason", r.reason());
        out.put("image", r.image().name() + "@" + r.image().shortId());
        out.put("built", r.built());
        out.put("runtimes", lines);
        if (json) {
            Output.json(out);
        } else {
            System.err.println(
                    r.built().isEmpty()
                            ? "airlock: setup: everything is up to date; nothing was built"
                            : "airlock: setup: built " + String.join(", ", r.built()));
            System.out.println(
                    "image    base  " + r.image().shortId() + "  " + (r.image().sizeBytes() >> 20) + " MiB");
            for (HostRuntimes.Line l : lines) {
                System.out.println((l.runtime().equals(r.runtime()) ? "ready    " : "         ") + l.runtime() + "  "
                        + l.isolation() + ", "
                        + (l.works()
                                ? (l.startMillis() >= 0 ? "starts in " + l.startMillis() + " ms" : "not timed yet")
                                : "not available: " + l.whyNot()));
            }
            System.out.println("default  " + runtimes.defaultRuntime().name() + "  ("
                    + runtimes.defaultRuntime().reason() + ")");
        }
        return 0;
    }
}
