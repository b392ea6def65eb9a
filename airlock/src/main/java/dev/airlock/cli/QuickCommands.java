package dev.airlock.cli;

import dev.airlock.sandbox.SandboxException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import org.jspecify.annotations.Nullable;

/**
 * The commands a person types all day ({@code ps}, {@code exec}, {@code --version}) parsed
 * without picocli. Picocli builds its model of every command by reflection at each start, and
 * its classes are compiled for Java 5, so the JVM's ahead-of-time cache cannot hold them: that
 * alone is most of a short command's start-up. Only argument shapes whose meaning is plain are
 * taken here; anything else (help, an unknown or clustered flag, options after the sandbox's
 * name) goes to picocli, so both paths mean the same thing (a test parses every shape both
 * ways) and picocli keeps the usage messages.
 */
final class QuickCommands {
    private QuickCommands() {}

    /** What {@code ps} was asked for. */
    record PsArgs(boolean all, boolean quiet) {}

    /** What {@code exec} was asked for. */
    record ExecArgs(
            String name,
            List<String> command,
            boolean interactive,
            boolean tty,
            @Nullable String user,
            @Nullable String timeout,
            List<String> env,
            @Nullable String workdir) {}

    /** Runs the command if its shape is one taken here; empty when picocli must parse it. */
    static OptionalInt run(String[] args) {
        if (args.length == 1 && (args[0].equals("--version") || args[0].equals("-V"))) {
            System.out.println(Main.version());
            return OptionalInt.of(0);
        }
        Optional<PsArgs> ps = ps(args);
        if (ps.isPresent()) {
            return OptionalInt.of(guarded(() -> {
                boolean all = ps.get().all();
                SandboxCommands.Ps.print(
                        SandboxCommands.client().list().stream()
                                .filter(s -> all || s.running())
                                .toList(),
                        ps.get().quiet());
                return 0;
            }));
        }
        Optional<ExecArgs> exec = exec(args);
        if (exec.isPresent()) {
            ExecArgs e = exec.get();
            // One session, then the process ends: no JDK socket poller to wait for at exit.
            System.setProperty(dev.airlock.guest.GuestChannel.PLATFORM_THREADS_PROPERTY, "true");
            return OptionalInt.of(guarded(() -> {
                SandboxCommands.ExecFlags flags = new SandboxCommands.ExecFlags();
                flags.interactive = e.interactive();
                flags.tty = e.tty();
                flags.user = e.user();
                flags.timeout = e.timeout();
                return SandboxCommands.execute(
                        SandboxCommands.client(),
                        e.name(),
                        e.command(),
                        flags,
                        SandboxCommands.parseEnv(e.env()),
                        e.workdir());
            }));
        }
        return OptionalInt.empty();
    }

    private interface Body {
        int run() throws Exception;
    }

    /** Errors as picocli's handler in {@link Main} reports them; a bug propagates to its trace. */
    private static int guarded(Body body) {
        try {
            return body.run();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return report(e);
        } catch (Exception e) {
            return report(e);
        }
    }

    private static int report(Exception e) {
        String message = Main.userMessage(e);
        if (message == null) {
            throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
        }
        System.err.println("airlock: error: " + message);
        return e instanceof SandboxException se ? se.kind().exitCode() : Main.EXIT_AIRLOCK_ERROR;
    }

    /** {@code ps|ls} with {@code -a/--all} and {@code -q/--quiet} only. */
    static Optional<PsArgs> ps(String[] args) {
        if (args.length == 0 || !(args[0].equals("ps") || args[0].equals("ls"))) {
            return Optional.empty();
        }
        boolean all = false;
        boolean quiet = false;
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            boolean setsAll = a.equals("-a") || a.equals("--all") || a.equals("-aq") || a.equals("-qa");
            boolean setsQuiet = a.equals("-q") || a.equals("--quiet") || a.equals("-aq") || a.equals("-qa");
            // unknown words, and an option given twice (picocli refuses it), go to picocli
            if ((!setsAll && !setsQuiet) || (setsAll && all) || (setsQuiet && quiet)) {
                return Optional.empty();
            }
            all |= setsAll;
            quiet |= setsQuiet;
        }
        return Optional.of(new PsArgs(all, quiet));
    }

    /**
     * {@code exec [OPTIONS] NAME [--] COMMAND...}: options before the name, each as its own word
     * ({@code -u root}, {@code --user=root}); after the name either {@code --} or words none of
     * which looks like an option (picocli would read those as exec's own).
     */
    static Optional<ExecArgs> exec(String[] args) {
        if (args.length < 2 || !args[0].equals("exec")) {
            return Optional.empty();
        }
        boolean interactive = false;
        boolean tty = false;
        String user = null;
        String timeout = null;
        String workdir = null;
        List<String> env = new ArrayList<>();
        int i = 1;
        for (; i < args.length && args[i].startsWith("-"); i++) {
            String a = args[i];
            String option = a;
            String value = null;
            int eq = a.indexOf('=');
            if (a.startsWith("--") && eq > 2) {
                option = a.substring(0, eq);
                value = a.substring(eq + 1);
            }
            switch (option) {
                case "-i", "--interactive", "-t", "--tty", "-it", "-ti" -> {
                    boolean i2 = !option.equals("-t") && !option.equals("--tty");
                    boolean t2 = !option.equals("-i") && !option.equals("--interactive");
                    // picocli refuses an option given twice
                    if (value != null || (i2 && interactive) || (t2 && tty)) {
                        return Optional.empty();
                    }
                    interactive |= i2;
                    tty |= t2;
                }
                case "-u", "--user", "-e", "--env", "-w", "--workdir", "--timeout" -> {
                    if (value == null) {
                        if (i + 1 >= args.length || args[i + 1].startsWith("-")) {
                            return Optional.empty();
                        }
                        value = args[++i];
                    }
                    switch (option) {
                        case "-e", "--env" -> env.add(value);
                        case "-u", "--user" -> {
                            if (user != null) {
                                return Optional.empty();
                            }
                            user = value;
                        }
                        case "-w", "--workdir" -> {
                            if (workdir != null) {
                                return Optional.empty();
                            }
                            workdir = value;
                        }
                        default -> {
                            if (timeout != null) {
                                return Optional.empty();
                            }
                            timeout = value;
                        }
                    }
                }
                default -> {
                    return Optional.empty();
                }
            }
        }
        if (i >= args.length) {
            return Optional.empty();
        }
        String name = args[i++];
        if (i < args.length && args[i].equals("--")) {
            i++;
        } else {
            for (int j = i; j < args.length; j++) {
                if (args[j].startsWith("-")) {
                    return Optional.empty();
                }
            }
        }
        List<String> command = List.of(args).subList(i, args.length);
        return Optional.of(new ExecArgs(name, command, interactive, tty, user, timeout, env, workdir));
    }
}
