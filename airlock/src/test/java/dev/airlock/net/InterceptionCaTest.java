package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.security.KeyStore;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;

/**
 * The interception CA's certificates as a strict TLS client judges them (the JDK's PKIX checks
 * with host name verification), and a TLS session over plain streams carrying both directions at
 * once. Loopback only.
 */
class InterceptionCaTest {
    /** Own threads: the common pool may have a single worker on a small machine. */
    private static final java.util.concurrent.Executor THREADS =
            java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();

    @Test
    void leafCertificatesChainToTheCaAndNameTheirHost() throws Exception {
        InterceptionCa generated = InterceptionCa.generate("test CA");
        InterceptionCa ca = InterceptionCa.fromPem(generated.certificatePem(), generated.privateKeyPem());
        assertThat(ca.certificate().getBasicConstraints()).isZero();
        SSLContext client = trusting(ca);
        try (SSLServerSocket server = (SSLServerSocket) ca.serverContext("api.test")
                .getServerSocketFactory()
                .createServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
            CompletableFuture<Void> serving = CompletableFuture.runAsync(
                    () -> {
                        for (int i = 0; i < 2; i++) {
                            try (SSLSocket s = (SSLSocket) server.accept()) {
                                s.startHandshake();
                                s.getOutputStream().write('k');
                            } catch (Exception e) {
                                // the second client refuses the certificate
                            }
                        }
                    },
                    THREADS);
            try (SSLSocket s = connect(client, server.getLocalPort(), "api.test")) {
                assertThat(s.getInputStream().read()).isEqualTo('k');
            }
            assertThatThrownBy(() ->
                            connect(client, server.getLocalPort(), "other.test").close())
                    .isInstanceOf(SSLHandshakeException.class)
                    .hasMessageContaining("other.test");
            serving.join();
        }
    }

    @Test
    void tlsOverStreamsCarriesBothDirectionsAtOnce() throws Exception {
        InterceptionCa ca = InterceptionCa.generate("test CA");
        byte[] data = new byte[3 << 20];
        new Random(7).nextBytes(data);
        try (ServerSocket server = new ServerSocket(0, 4, InetAddress.getLoopbackAddress())) {
            // The server side: StreamTls over a plain socket's streams, echoing what it reads.
            CompletableFuture<Void> echo = CompletableFuture.runAsync(
                    () -> {
                        try (Socket raw = server.accept()) {
                            SSLEngine engine = ca.serverContext("api.test").createSSLEngine();
                            engine.setUseClientMode(false);
                            StreamTls tls =
                                    new StreamTls(engine, new byte[0], raw.getInputStream(), raw.getOutputStream());
                            tls.handshake();
                            tls.input().transferTo(tls.output());
                            tls.output().close();
                        } catch (Exception e) {
                            throw new IllegalStateException(e);
                        }
                    },
                    THREADS);
            try (SSLSocket s = connect(trusting(ca), server.getLocalPort(), "api.test")) {
                CompletableFuture<byte[]> back = CompletableFuture.supplyAsync(
                        () -> {
                            try (InputStream in = s.getInputStream()) {
                                return in.readNBytes(data.length);
                            } catch (Exception e) {
                                throw new IllegalStateException(e);
                            }
                        },
                        THREADS);
                s.getOutputStream().write(data);
                s.getOutputStream().flush();
                assertThat(Arrays.equals(back.join(), data)).isTrue();
            }
            echo.join();
        }
    }

    static SSLContext trusting(InterceptionCa ca) throws Exception {
        KeyStore anchors = KeyStore.getInstance("PKCS12");
        anchors.load(null, null);
        anchors.setCertificateEntry("ca", ca.certificate());
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(anchors);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    private static SSLSocket connect(SSLContext ctx, int port, String host) throws Exception {
        Socket raw = new Socket(InetAddress.getLoopbackAddress(), port);
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, host, port, true);
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        p.setServerNames(List.of(new javax.net.ssl.SNIHostName(host)));
        s.setSSLParameters(p);
        s.startHandshake();
        return s;
    }
}
