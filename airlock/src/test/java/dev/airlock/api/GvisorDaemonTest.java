package dev.airlock.api;

/** The daemon serving gVisor sandboxes: the same crash and leak checks. */
class GvisorDaemonTest extends DaemonTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
