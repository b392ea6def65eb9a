package dev.airlock.cli;

import dev.airlock.doctor.Doctor;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "doctor", description = "Tell what this host can do and which runtime Airlock will use.")
final class DoctorCommand implements Callable<Integer> {
    @Option(names = "--json", description = "Print the report as JSON.")
    boolean json;

    @Override
    public Integer call() {
        Doctor.Report r = new Doctor(AirlockDirs.fromEnvironment()).examine(Progress.STDERR);
        if (json) {
            Output.json(r);
            return 0;
        }
        Output.table(
                System.out,
                List.of("CHECK", "STATUS", "DETAIL"),
                r.checks().stream()
                        .map(c -> List.of(c.name(), c.status().name().toLowerCase(Locale.ROOT), c.detail()))
                        .toList());
        System.out.println();
        Output.table(
                System.out,
                List.of("RUNTIME", "ISOLATION", "WORKS", "START", "DETAIL"),
                r.runtimes().stream()
                        .map(l -> List.of(
                                l.runtime(),
                                l.isolation(),
                                l.works() ? "yes" : "no",
                                l.startMillis() >= 0 ? l.startMillis() + " ms" : "-",
                                l.works()
                                        ? (l.startMillis() >= 0 ? "(" + l.startWhat() + ") " : "") + l.detail()
                                        : String.valueOf(l.whyNot())))
                        .toList());
        System.out.println();
        System.out.println("default runtime: " + r.mode());
        System.out.println("why:             " + r.modeReason());
        System.out.println(
                "override:        --runtime NAME, AIRLOCK_RUNTIME=NAME, or [sandbox] runtime in airlock.toml");
        return r.checks().stream().anyMatch(c -> c.status() == Doctor.Status.FAIL) ? 1 : 0;
    }
}
