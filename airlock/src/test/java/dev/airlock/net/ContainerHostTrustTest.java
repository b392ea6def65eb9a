package dev.airlock.net;

/** Host trust and upstream proxies for container sandboxes: the same suite. */
class ContainerHostTrustTest extends HostTrustTest {
    @Override
    String runtime() {
        return "container";
    }
}
