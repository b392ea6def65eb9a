package dev.airlock.net;

/**
 * Networking of gVisor sandboxes: the same suite. {@code none} and {@code proxy} use the Sentry's
 * own network stack (loopback only); {@code nat} uses runsc's host network mode inside a private
 * namespace joined to slirp4netns, filtered by the same host firewall (docs/gvisor.md).
 */
class GvisorNetworkTest extends NetworkTest {
    @Override
    String runtime() {
        return "gvisor";
    }
}
