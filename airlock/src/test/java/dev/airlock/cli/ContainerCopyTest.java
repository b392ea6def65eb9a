package dev.airlock.cli;

/** airlock cp out of a container sandbox whose guest is hostile. */
class ContainerCopyTest extends CopyTest {
    @Override
    String runtime() {
        return "container";
    }
}
