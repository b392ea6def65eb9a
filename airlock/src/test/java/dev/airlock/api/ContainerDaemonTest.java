package dev.airlock.api;

/** The daemon serving container sandboxes: the same crash and leak checks. */
class ContainerDaemonTest extends DaemonTest {
    @Override
    String runtime() {
        return "container";
    }
}
