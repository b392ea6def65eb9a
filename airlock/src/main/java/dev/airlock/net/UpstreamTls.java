package dev.airlock.net;

import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;
import org.jspecify.annotations.Nullable;

/**
 * The proxy's own TLS client for intercepted connections: it verifies the destination's
 * certificate chain and host name as any HTTPS client does, against the JDK's trust store plus
 * the CAs of the PEM file named by {@value #EXTRA_CA_VARIABLE} in the daemon's environment (a
 * company CA, or a test's) and the host's own extra CAs ({@link HostCas}): behind a
 * TLS-intercepting network the proxy's own connections meet the network's CA too.
 */
public final class UpstreamTls {
    public static final String EXTRA_CA_VARIABLE = "AIRLOCK_UPSTREAM_CA";

    private final SSLContext context;

    private UpstreamTls(SSLContext context) {
        this.context = context;
    }

    /** The JDK's trust store, plus the CAs in {@code extraCaPem} when given. */
    public static UpstreamTls trusting(@Nullable Path extraCaPem) {
        return trusting(extraCaPem, List.of());
    }

    /** As {@link #trusting(Path)}, also trusting {@code hostCas}. */
    static UpstreamTls trusting(@Nullable Path extraCaPem, List<HostCas.Ca> hostCas) {
        try {
            TrustManagerFactory jdk = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            jdk.init((KeyStore) null);
            KeyStore anchors = KeyStore.getInstance("PKCS12");
            anchors.load(null, null);
            int n = 0;
            for (TrustManager tm : jdk.getTrustManagers()) {
                if (tm instanceof X509TrustManager x) {
                    for (X509Certificate c : x.getAcceptedIssuers()) {
                        anchors.setCertificateEntry("jdk-" + n++, c);
                    }
                }
            }
            if (extraCaPem != null) {
                for (Certificate c : readPem(extraCaPem)) {
                    anchors.setCertificateEntry("extra-" + n++, c);
                }
            }
            for (HostCas.Ca c : hostCas) {
                anchors.setCertificateEntry("host-" + n++, c.certificate());
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(anchors);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return new UpstreamTls(ctx);
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot set up the upstream trust store: " + e.getMessage(), e);
        }
    }

    private static volatile @Nullable UpstreamTls fromEnvironment;

    /** As configured for the daemon: {@value #EXTRA_CA_VARIABLE} when set, and the host's CAs; read once. */
    public static UpstreamTls fromEnvironment() {
        UpstreamTls t = fromEnvironment;
        if (t == null) {
            String file = System.getenv(EXTRA_CA_VARIABLE);
            t = trusting(
                    file == null || file.isBlank() ? null : Path.of(file),
                    HostCas.ofThisHost().cas());
            fromEnvironment = t;
        }
        return t;
    }

    private static Collection<? extends Certificate> readPem(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            Collection<? extends Certificate> certs =
                    CertificateFactory.getInstance("X.509").generateCertificates(in);
            if (certs.isEmpty()) {
                throw new SandboxException(EXTRA_CA_VARIABLE + "=" + file + " holds no PEM certificate");
            }
            return certs;
        } catch (IOException e) {
            throw new SandboxException(EXTRA_CA_VARIABLE + "=" + file + " cannot be read: " + e.getMessage());
        } catch (GeneralSecurityException e) {
            throw new SandboxException(
                    EXTRA_CA_VARIABLE + "=" + file + " is not a file of PEM certificates: " + e.getMessage());
        }
    }

    /**
     * A TLS client session to {@code host} over the given streams: SNI and host name
     * verification for that name, HTTP/1.1 only (the proxy reads requests as HTTP/1.1). Its
     * handshake throws when the certificate is not trusted or not for that host.
     */
    StreamTls client(String host, int port, InputStream in, OutputStream out) {
        SSLEngine engine = context.createSSLEngine(host, port);
        engine.setUseClientMode(true);
        SSLParameters p = engine.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        if (!InterceptionCa.isIpLiteral(host)) {
            p.setServerNames(List.of(new SNIHostName(host)));
        }
        p.setApplicationProtocols(new String[] {"http/1.1"});
        engine.setSSLParameters(p);
        return new StreamTls(engine, new byte[0], in, out);
    }
}
