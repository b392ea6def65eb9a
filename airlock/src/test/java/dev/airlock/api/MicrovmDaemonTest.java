package dev.airlock.api;

/** The daemon serving microVM sandboxes. */
class MicrovmDaemonTest extends DaemonTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
