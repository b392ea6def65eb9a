package dev.airlock.host;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.junit.jupiter.api.Test;

/** Bytes pass up to the limit, whichever way they are read; one more fails with the caller's words. */
class CappedInputStreamTest {
    private static InputStream capped(int size, long limit) {
        return new CappedInputStream(new ByteArrayInputStream(new byte[size]), limit, "too much");
    }

    @Test
    void aStreamOfExactlyTheLimitIsReadWhole() throws IOException {
        try (InputStream in = capped(10_000, 10_000)) {
            assertThat(in.readAllBytes()).hasSize(10_000);
        }
        try (InputStream in = capped(3, 3)) {
            assertThat(in.read()).isZero();
            assertThat(in.skip(2)).isEqualTo(2);
            assertThat(in.read()).isEqualTo(-1);
        }
    }

    @Test
    void oneByteMoreFailsHoweverItIsRead() throws IOException {
        assertThatThrownBy(() -> capped(10_001, 10_000).readAllBytes())
                .isInstanceOf(CappedInputStream.LimitExceededException.class)
                .hasMessage("too much");
        InputStream bytes = capped(4, 3);
        for (int i = 0; i < 3; i++) {
            assertThat(bytes.read()).isZero();
        }
        assertThatThrownBy(bytes::read).isInstanceOf(CappedInputStream.LimitExceededException.class);
        // a skip reads through, so skipped bytes count too
        assertThatThrownBy(() -> capped(4, 3).skip(4)).isInstanceOf(CappedInputStream.LimitExceededException.class);
    }

    @Test
    void aPassedLimitIsFoundAmongTheCausesOfWhatAReaderThrew() {
        IOException passed = new IOException(
                "the write was cancelled",
                new UncheckedIOException(new CappedInputStream.LimitExceededException("too much")));
        assertThat(CappedInputStream.limitPassed(passed)).isTrue();
        assertThat(CappedInputStream.limitPassed(new IOException("disk full"))).isFalse();
    }
}
