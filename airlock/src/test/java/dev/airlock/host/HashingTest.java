package dev.airlock.host;

import static org.assertj.core.api.Assertions.assertThat;

import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** libcrypto's SHA-256 (the one Hashing hands out here) agrees with the JDK's, across its chunk size. */
class HashingTest {
    @Test
    void theNativeDigestIsUsedAndAgreesWithTheJdk() throws Exception {
        MessageDigest fast = Hashing.newDigest();
        assertThat(fast).isInstanceOf(NativeSha256.class);
        Random random = new Random(42);
        for (int size : new int[] {0, 1, 55, 64, 65535, 65536, 65537, 200_000}) {
            byte[] data = new byte[size];
            random.nextBytes(data);
            MessageDigest jdk = MessageDigest.getInstance("SHA-256");
            // in uneven pieces, and a single byte, as streams feed it
            int split = size / 3;
            fast.update(data, 0, split);
            if (size > split) {
                fast.update(data[split]);
                fast.update(data, split + 1, size - split - 1);
            }
            jdk.update(data);
            assertThat(HexFormat.of().formatHex(fast.digest()))
                    .as("size " + size)
                    .isEqualTo(HexFormat.of().formatHex(jdk.digest()));
        }
        // digest() resets: the next use starts over
        assertThat(Hashing.sha256("abc")).isEqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
