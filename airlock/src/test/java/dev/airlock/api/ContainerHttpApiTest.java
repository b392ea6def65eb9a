package dev.airlock.api;

/** The HTTP API on container sandboxes. */
class ContainerHttpApiTest extends HttpApiTest {
    @Override
    String runtime() {
        return "container";
    }
}
