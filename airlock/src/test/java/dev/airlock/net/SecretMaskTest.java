package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Masking secret values in a byte stream that arrives in pieces of any size. */
class SecretMaskTest {
    private static final String VALUE = "s3cr3t-value-0123456789";
    private final SecretMask mask = new SecretMask(List.of(Secret.create("TOKEN", VALUE, "api.test")));

    @Test
    void aValueSplitAtAnyPointAcrossWritesIsMasked() throws Exception {
        String text = "header: Bearer " + VALUE + "\nbody " + VALUE + VALUE + " end";
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        String expected = text.replace(VALUE, "*".repeat(VALUE.length()));
        for (int cut = 0; cut <= bytes.length; cut++) {
            for (int cut2 = cut; cut2 <= bytes.length; cut2 += 5) {
                ByteArrayOutputStream out = new ByteArrayOutputStream();
                SecretMask.Filter f = mask.filter(out);
                f.write(bytes, 0, cut);
                f.write(bytes, cut, cut2 - cut);
                f.write(bytes, cut2, bytes.length - cut2);
                f.finish();
                assertThat(out.toString(StandardCharsets.UTF_8)).isEqualTo(expected);
            }
        }
    }

    @Test
    void onlyAPossibleStartOfAValueIsHeldBack() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        SecretMask.Filter f = mask.filter(out);
        byte[] event = "data: {\"x\":1}\n\n".getBytes(StandardCharsets.UTF_8);
        f.write(event, 0, event.length);
        f.flush();
        assertThat(out.toByteArray()).isEqualTo(event); // an event is not delayed
        byte[] prefix = "tail s3cr".getBytes(StandardCharsets.UTF_8);
        f.write(prefix, 0, prefix.length);
        assertThat(out.toString(StandardCharsets.UTF_8)).endsWith("tail "); // "s3cr" waits
        byte[] other = "ew".getBytes(StandardCharsets.UTF_8);
        f.write(other, 0, other.length);
        assertThat(out.toString(StandardCharsets.UTF_8)).endsWith("tail s3crew"); // it was not the value
        f.finish();
    }
}
