package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestLimitException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * A sandbox's own certificate authority for terminating the guest's TLS to hosts a secret is
 * bound to. The guest trusts its certificate; its private key never leaves the host (the
 * daemon keeps it owner-only in the sandbox's directory). Leaf certificates are issued on
 * demand per host name and kept in memory until close to expiry.
 */
public final class InterceptionCa {
    private static final String EC_SHA256 = "1.2.840.10045.4.3.2";
    private static final Duration LEAF_LIFETIME = Duration.ofDays(30);
    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");
    private static final char[] NO_PASSWORD = new char[0];

    /** Where the guest gets the CA: Debian's place for local CAs, kept by a later update-ca-certificates. */
    public static final String GUEST_CA_FILE = "/usr/local/share/ca-certificates/airlock-sandbox-ca.crt";
    /** The bundle OpenSSL, curl, git and most tools read by default on Debian and Ubuntu. */
    public static final String GUEST_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

    private final X509Certificate certificate;
    private final PrivateKey key;
    private final Map<String, Leaf> leaves = new ConcurrentHashMap<>();

    private record Leaf(SSLContext context, Instant notAfter) {}

    private InterceptionCa(X509Certificate certificate, PrivateKey key) {
        this.certificate = certificate;
        this.key = key;
    }

    /** A new CA (EC P-256, ten years) whose certificate names it {@code commonName}. */
    public static InterceptionCa generate(String commonName) {
        try {
            KeyPair pair = newKeyPair();
            byte[] name = name(commonName);
            byte[] keyId = keyId(pair.getPublic());
            ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
            byte[] extensions = Der.sequence(
                    extension("2.5.29.19", true, Der.sequence(Der.bool(true), Der.integer(BigInteger.ZERO))),
                    // digitalSignature, keyCertSign, cRLSign
                    extension("2.5.29.15", true, Der.bits(1, new byte[] {(byte) 0x86})),
                    extension("2.5.29.14", false, Der.octets(keyId)));
            X509Certificate cert = sign(
                    name, name, pair.getPublic(), now.minusHours(1), now.plusYears(10), extensions, pair.getPrivate());
            return new InterceptionCa(cert, pair.getPrivate());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot generate an interception CA: " + e.getMessage(), e);
        }
    }

    /** The CA kept by {@link #certificatePem()} and {@link #privateKeyPem()}. */
    public static InterceptionCa fromPem(String certificatePem, String privateKeyPem) throws GeneralSecurityException {
        X509Certificate cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(certificatePem.getBytes(StandardCharsets.US_ASCII)));
        String base64 = privateKeyPem
                .replace("-----BEGIN PRIVATE KEY-----", "")
                .replace("-----END PRIVATE KEY-----", "")
                .replaceAll("\\s", "");
        PrivateKey key = KeyFactory.getInstance("EC")
                .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64)));
        return new InterceptionCa(cert, key);
    }

    public X509Certificate certificate() {
        return certificate;
    }

    public String certificatePem() {
        try {
            return pem("CERTIFICATE", certificate.getEncoded());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** PKCS#8; for the owner-only file on the host, never for the guest. */
    public String privateKeyPem() {
        return pem("PRIVATE KEY", key.getEncoded());
    }

    /**
     * Variables for tools that do not read the system bundle (Python's requests and certifi,
     * Node) or read it only when asked; every one names a file holding the sandbox CA.
     */
    public static Map<String, String> guestEnv() {
        return Map.of(
                "SSL_CERT_FILE", GUEST_BUNDLE,
                "REQUESTS_CA_BUNDLE", GUEST_BUNDLE,
                "CURL_CA_BUNDLE", GUEST_BUNDLE,
                "GIT_SSL_CAINFO", GUEST_BUNDLE,
                "NODE_EXTRA_CA_CERTS", GUEST_CA_FILE);
    }

    /** The largest CA bundle the host reads from a guest: Debian's is about 220 KB. */
    static final long MAX_GUEST_BUNDLE = 4L << 20;
    /** How long each agent call of the install may take. */
    static final Duration GUEST_CALL_TIMEOUT = Duration.ofSeconds(30);

    /**
     * Makes the guest trust this CA: its certificate in {@link #GUEST_CA_FILE} and appended to
     * {@link #GUEST_BUNDLE} (created if the image has none). Idempotent: a restarted, resumed or
     * forked sandbox has it already.
     *
     * <p>The guest serves the bundle and may be hostile: every agent call has a deadline and the
     * bundle a size cap ({@value #MAX_GUEST_BUNDLE} bytes), so a never-ending or huge file fails
     * the install with a {@link GuestLimitException} instead of hanging or exhausting the daemon.
     */
    public void installIn(GuestChannel guest) throws IOException, InterruptedException {
        installIn(guest, GUEST_CA_FILE, GUEST_BUNDLE, MAX_GUEST_BUNDLE, GUEST_CALL_TIMEOUT);
    }

    /** {@link #installIn(GuestChannel)} with other paths and bounds (tests run the agent on the host). */
    void installIn(GuestChannel guest, String caFile, String bundlePath, long maxBundle, Duration timeout)
            throws IOException, InterruptedException {
        GuestTrustStore.add(guest, Map.of(caFile, certificatePem()), bundlePath, maxBundle, timeout, "the sandbox CA");
    }

    /**
     * A TLS server context presenting a certificate for {@code host} issued by this CA, reused
     * for later connections to the same host until a day before it expires.
     */
    public SSLContext serverContext(String host) {
        String h = host.toLowerCase(Locale.ROOT);
        Leaf leaf = leaves.get(h);
        if (leaf == null || Instant.now().plus(Duration.ofDays(1)).isAfter(leaf.notAfter())) {
            leaf = newLeaf(List.of(h));
            leaves.put(h, leaf);
        }
        return leaf.context();
    }

    /** A TLS server context whose certificate covers every one of {@code names} (DNS names or IP literals). */
    public SSLContext serverContext(List<String> names) {
        return newLeaf(names).context();
    }

    private Leaf newLeaf(List<String> names) {
        try {
            KeyPair pair = newKeyPair();
            List<byte[]> altNames = new ArrayList<>();
            for (String n : names) {
                altNames.add(
                        isIpLiteral(n)
                                ? Der.tagged(
                                        7,
                                        false,
                                        java.net.InetAddress.ofLiteral(n).getAddress())
                                : Der.tagged(2, false, n.getBytes(StandardCharsets.US_ASCII)));
            }
            ZonedDateTime now = ZonedDateTime.now(ZoneOffset.UTC);
            ZonedDateTime notAfter = now.plus(LEAF_LIFETIME);
            byte[] extensions = Der.sequence(
                    extension("2.5.29.19", true, Der.sequence()),
                    // digitalSignature
                    extension("2.5.29.15", true, Der.bits(7, new byte[] {(byte) 0x80})),
                    extension("2.5.29.37", false, Der.sequence(Der.oid("1.3.6.1.5.5.7.3.1"))),
                    extension("2.5.29.17", false, Der.sequence(altNames.toArray(byte[][]::new))),
                    extension("2.5.29.14", false, Der.octets(keyId(pair.getPublic()))),
                    extension(
                            "2.5.29.35", false, Der.sequence(Der.tagged(0, false, keyId(certificate.getPublicKey())))));
            X509Certificate leaf = sign(
                    name(names.getFirst()),
                    certificate.getSubjectX500Principal().getEncoded(),
                    pair.getPublic(),
                    now.minusHours(1),
                    notAfter,
                    extensions,
                    key);
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(null, null);
            store.setKeyEntry("leaf", pair.getPrivate(), NO_PASSWORD, new X509Certificate[] {leaf, certificate});
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(store, NO_PASSWORD);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(kmf.getKeyManagers(), null, null);
            return new Leaf(context, notAfter.toInstant());
        } catch (GeneralSecurityException | java.io.IOException e) {
            throw new IllegalStateException("cannot issue a certificate for " + names + ": " + e.getMessage(), e);
        }
    }

    static boolean isIpLiteral(String host) {
        return host.contains(":") || IPV4.matcher(host).matches();
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private static byte[] name(String commonName) {
        return Der.sequence(Der.set(Der.sequence(Der.oid("2.5.4.3"), Der.utf8(commonName))));
    }

    /** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
    private static byte[] keyId(PublicKey publicKey) throws GeneralSecurityException {
        byte[] spki = publicKey.getEncoded();
        // SubjectPublicKeyInfo = SEQUENCE { AlgorithmIdentifier, BIT STRING }: skip to the bits' content.
        int i = headerLength(spki, 0);
        i += headerLength(spki, i) + contentLength(spki, i);
        int bitsStart = i + headerLength(spki, i) + 1;
        return MessageDigest.getInstance("SHA-1").digest(java.util.Arrays.copyOfRange(spki, bitsStart, spki.length));
    }

    private static int headerLength(byte[] der, int at) {
        int first = der[at + 1] & 0xff;
        return first < 0x80 ? 2 : 2 + (first & 0x7f);
    }

    private static int contentLength(byte[] der, int at) {
        int first = der[at + 1] & 0xff;
        if (first < 0x80) {
            return first;
        }
        int n = 0;
        for (int k = 0; k < (first & 0x7f); k++) {
            n = (n << 8) | (der[at + 2 + k] & 0xff);
        }
        return n;
    }

    private static byte[] extension(String oid, boolean critical, byte[] value) {
        return critical
                ? Der.sequence(Der.oid(oid), Der.bool(true), Der.octets(value))
                : Der.sequence(Der.oid(oid), Der.octets(value));
    }

    private static X509Certificate sign(
            byte[] subject,
            byte[] issuer,
            PublicKey publicKey,
            ZonedDateTime notBefore,
            ZonedDateTime notAfter,
            byte[] extensions,
            PrivateKey signer)
            throws GeneralSecurityException {
        byte[] serial = new byte[16];
        new SecureRandom().nextBytes(serial);
        serial[0] = (byte) ((serial[0] & 0x7f) | 0x01);
        byte[] algorithm = Der.sequence(Der.oid(EC_SHA256));
        byte[] tbs = Der.sequence(
                Der.tagged(0, true, Der.integer(BigInteger.TWO)),
                Der.integer(new BigInteger(serial)),
                algorithm,
                issuer,
                Der.sequence(Der.time(notBefore), Der.time(notAfter)),
                subject,
                publicKey.getEncoded(),
                Der.tagged(3, true, extensions));
        Signature s = Signature.getInstance("SHA256withECDSA");
        s.initSign(signer);
        s.update(tbs);
        byte[] cert = Der.sequence(tbs, algorithm, Der.bits(0, s.sign()));
        return (X509Certificate)
                CertificateFactory.getInstance("X.509").generateCertificate(new ByteArrayInputStream(cert));
    }

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
                        .encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
