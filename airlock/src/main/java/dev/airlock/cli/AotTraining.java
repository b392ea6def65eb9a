package dev.airlock.cli;

import java.io.OutputStream;
import java.io.PrintStream;

/**
 * The training run of the CLI's ahead-of-time cache (JEP 483/514/515): {@code scripts/aot-train.sh}
 * runs this once per jar under {@code -XX:AOTCacheOutput}, and the JVM keeps the classes it
 * loaded and linked, and the profiles of the methods it ran, for every later command. It runs
 * the short commands a person types all day, in process, against this data directory's daemon:
 * {@code --version}, {@code ps} and, given a running sandbox's name, {@code exec NAME -- true};
 * then the parts of picocli's path the cache can hold. Output goes nowhere.
 */
public final class AotTraining {
    private AotTraining() {}

    public static void main(String[] args) {
        PrintStream out = System.out;
        System.setOut(new PrintStream(OutputStream.nullOutputStream()));
        try {
            QuickCommands.run(new String[] {"--version"});
            for (int i = 0; i < 3; i++) {
                QuickCommands.run(new String[] {"ps"});
                QuickCommands.run(new String[] {"ps", "-a", "-q"});
                if (args.length > 0) {
                    QuickCommands.run(new String[] {"exec", args[0], "--", "true"});
                    QuickCommands.run(new String[] {"exec", "-e", "A=1", "-w", "/", args[0], "true"});
                }
            }
            // Picocli's own classes are compiled for Java 5, which the cache skips; what they use
            // of the JDK, and the data-binding mapper of the other commands, it keeps.
            Main.execute("--help");
            if (args.length > 0) {
                Main.execute("inspect", args[0]);
            }
        } finally {
            System.setOut(out);
        }
    }
}
