package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Finding the host's extra CAs in real files laid out as a Debian host has them. */
class HostCasTest {
    @TempDir
    Path dir;

    private final InterceptionCa publicCa = InterceptionCa.generate("a public CA every image has");
    private final InterceptionCa localCa = InterceptionCa.generate("the network's intercepting CA");
    private final InterceptionCa nodeCa = InterceptionCa.generate("a CA only NODE_EXTRA_CA_CERTS names");
    private final InterceptionCa dirCa = InterceptionCa.generate("a CA in an SSL_CERT_DIR");

    @Test
    void findsTheExtraCasOnceMinusThePublicOnesAndNotesWhatItCannotUse() throws Exception {
        Path publicDir = Files.createDirectories(dir.resolve("usr/share/ca-certificates/mozilla"));
        Files.writeString(publicDir.resolve("Public.crt"), publicCa.certificatePem());
        Path local = Files.createDirectories(dir.resolve("usr/local/share/ca-certificates/network"));
        Files.writeString(local.resolve("network.crt"), localCa.certificatePem());
        // The system bundle, as SSL_CERT_FILE names it on this kind of host: public CAs plus local ones.
        Path bundle = dir.resolve("ca-certificates.crt");
        Files.writeString(bundle, publicCa.certificatePem() + localCa.certificatePem());
        Path nodeFile = dir.resolve("node-extra.pem");
        Files.writeString(nodeFile, "garbage before\n" + nodeCa.certificatePem());
        Path certDir = Files.createDirectories(dir.resolve("certs"));
        Files.writeString(certDir.resolve("abcd1234.0"), dirCa.certificatePem());
        Files.writeString(certDir.resolve("README"), "not a certificate");
        Files.writeString(
                certDir.resolve("broken.pem"),
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                StandardCharsets.US_ASCII);
        Path huge = certDir.resolve("huge.pem");
        try (var out = Files.newOutputStream(huge)) {
            out.write(new byte[(int) HostCas.MAX_FILE + 1]);
        }
        Map<String, String> env = Map.of(
                "SSL_CERT_FILE", bundle.toString(),
                "NODE_EXTRA_CA_CERTS", nodeFile.toString(),
                "SSL_CERT_DIR", certDir + ":" + dir.resolve("missing"),
                "REQUESTS_CA_BUNDLE", bundle.toString());

        HostCas.Found found = new HostCas(dir.resolve("usr/local/share/ca-certificates"), publicDir, env::get).find();

        assertThat(found.cas())
                .extracting(HostCas.Ca::subject)
                .containsExactly(
                        "CN=the network's intercepting CA",
                        "CN=a CA in an SSL_CERT_DIR",
                        "CN=a CA only NODE_EXTRA_CA_CERTS names");
        assertThat(found.problems())
                .anyMatch(p -> p.contains("README") && p.contains("holds no PEM certificate"))
                .anyMatch(p -> p.contains("broken.pem") && p.contains("not a valid certificate"))
                .anyMatch(p -> p.contains("huge.pem") && p.contains("not read"))
                .anyMatch(p -> p.contains("missing") && p.contains("does not exist"));
        // What the guest gets: one file per CA, its PEM re-encoded here, and Node pointed at the bundle.
        assertThat(found.guestFiles()).hasSize(3).allSatisfy((path, pem) -> {
            assertThat(path)
                    .startsWith("/usr/local/share/ca-certificates/airlock-host-")
                    .endsWith(".crt");
            assertThat(pem).startsWith("-----BEGIN CERTIFICATE-----\n").endsWith("-----END CERTIFICATE-----\n");
        });
        assertThat(found.guestEnv()).containsEntry("NODE_EXTRA_CA_CERTS", InterceptionCa.GUEST_BUNDLE);
    }

    @Test
    void aHostWithNothingExtraGivesTheGuestNothing() {
        HostCas.Found found = new HostCas(dir.resolve("none"), dir.resolve("none2"), name -> null).find();
        assertThat(found.cas()).isEmpty();
        assertThat(found.problems()).isEmpty();
        assertThat(found.guestEnv()).isEmpty();
    }
}
