package dev.airlock.cli;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.BiConsumer;
import org.jspecify.annotations.Nullable;
import sun.misc.Signal;

/**
 * The user's terminal while a pty session runs: raw mode (so keys such as Ctrl-C reach the
 * guest's shell instead of killing the CLI), restored on close, and window-size changes
 * forwarded. Without a terminal (a pipe, a test) it only reports a default size.
 */
final class Terminal implements AutoCloseable {
    private static final File TTY = new File("/dev/tty");

    private final int rows;
    private final int cols;
    private final @Nullable String saved;

    private Terminal(int rows, int cols, @Nullable String saved) {
        this.rows = rows;
        this.cols = cols;
        this.saved = saved;
    }

    static Terminal open() {
        if (!interactive()) {
            return new Terminal(24, 80, null);
        }
        String saved = stty("-g");
        int[] size = size();
        stty("raw", "-echo");
        return new Terminal(size[0], size[1], saved);
    }

    /**
     * Whether the user is at a terminal. {@code System.console()} alone no longer says so: since
     * JDK 22 it answers for pipes too, and its {@code isTerminal()} does.
     */
    static boolean interactive() {
        java.io.Console c = System.console();
        return c != null && c.isTerminal() && TTY.canRead();
    }

    int rows() {
        return rows;
    }

    int cols() {
        return cols;
    }

    void onResize(BiConsumer<Integer, Integer> listener) {
        if (saved == null) {
            return;
        }
        Signal.handle(new Signal("WINCH"), sig -> {
            int[] s = size();
            listener.accept(s[0], s[1]);
        });
    }

    @Override
    public void close() {
        if (saved != null) {
            stty(saved);
        }
    }

    private static int[] size() {
        String[] f = stty("size").strip().split("\\s+");
        try {
            return new int[] {Integer.parseInt(f[0]), Integer.parseInt(f[1])};
        } catch (NumberFormatException | ArrayIndexOutOfBoundsException e) {
            return new int[] {24, 80};
        }
    }

    private static String stty(String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of("stty"));
        argv.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(argv)
                    .redirectInput(TTY)
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            return out;
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }
}
