package dev.airlock.net;

/** Host trust and upstream proxies for gVisor sandboxes: the same suite. */
class GvisorHostTrustTest extends HostTrustTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
