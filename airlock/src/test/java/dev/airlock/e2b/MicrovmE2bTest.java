package dev.airlock.e2b;

/** The e2b SDK scenario on microVM sandboxes. */
class MicrovmE2bTest extends E2bEndpointTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
