package dev.airlock.api;

/** The HTTP API on microVM sandboxes (slow under TCG: run it last, on its own). */
class MicrovmHttpApiTest extends HttpApiTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
