package dev.airlock.local;

import dev.airlock.service.ProgressListener;
import java.io.OutputStream;
import java.util.Arrays;

/** Output of commands the service runs for a client (setup, build steps), passed on as it comes. */
final class ProgressOutput extends OutputStream {
    private final ProgressListener progress;

    ProgressOutput(ProgressListener progress) {
        this.progress = progress;
    }

    @Override
    public void write(int b) {
        progress.output(new byte[] {(byte) b});
    }

    @Override
    public void write(byte[] b, int off, int len) {
        progress.output(Arrays.copyOfRange(b, off, off + len));
    }
}
