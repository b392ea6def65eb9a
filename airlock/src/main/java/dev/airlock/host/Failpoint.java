package dev.airlock.host;

/**
 * Named steps of multi-step operations where a crash must leave nothing wedged. When the
 * environment variable {@value #ENV} names a step, the process stops dead there, as {@code kill
 * -9} would: no finally blocks, no shutdown hooks. Tests use it for crash windows that are
 * milliseconds wide, which no outside signal can hit reliably; it does nothing otherwise.
 */
public final class Failpoint {
    public static final String ENV = "AIRLOCK_FAILPOINT";

    private Failpoint() {}

    public static void reached(String step) {
        if (step.equals(System.getenv(ENV))) {
            System.err.println("airlock: failpoint " + step + " reached; stopping as a crash would");
            System.err.flush();
            Runtime.getRuntime().halt(137);
        }
    }
}
