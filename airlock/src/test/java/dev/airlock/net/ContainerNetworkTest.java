package dev.airlock.net;

/** Networking of container sandboxes: the same suite. */
class ContainerNetworkTest extends NetworkTest {
    @Override
    String runtime() {
        return "container";
    }
}
