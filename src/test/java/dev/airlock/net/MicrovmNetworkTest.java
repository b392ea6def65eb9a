package dev.airlock.net;

/** Networking of microVM sandboxes. */
class MicrovmNetworkTest extends NetworkTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
