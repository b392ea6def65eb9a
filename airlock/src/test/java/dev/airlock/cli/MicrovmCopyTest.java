package dev.airlock.cli;

/** airlock cp out of a microVM sandbox whose guest is hostile. */
class MicrovmCopyTest extends CopyTest {
    @Override
    String runtime() {
        return "microvm";
    }
}
