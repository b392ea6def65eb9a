package dev.airlock.net;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.guest.AgentProcess;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestLimitException;
import dev.airlock.guest.HostileAgent;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

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

    // ---- the install into a guest that may be hostile ----

    @Test
    void installGivesUpOnAGuestThatNeverAnswers(@TempDir Path dir) throws Exception {
        CountDownLatch release = new CountDownLatch(1);
        try (HostileAgent fake = new HostileAgent(dir)) {
            fake.serveOne(true, HostileAgent.stalls(release));
            GuestChannel guest = GuestChannel.open(fake.connect(), Duration.ofSeconds(5));
            try {
                assertThatThrownBy(() -> InterceptionCa.generate("test CA")
                                .installIn(guest, "/ca.crt", "/bundle.crt", 1 << 20, Duration.ofSeconds(1)))
                        .isInstanceOfSatisfying(
                                GuestLimitException.class,
                                e -> assertThat(e.limit()).isEqualTo(GuestLimitException.Limit.TIME))
                        .hasMessageContaining("within 1 s");
            } finally {
                release.countDown();
                guest.close();
            }
        }
    }

    @Test
    void installReadsAtMostItsCapOfAnEndlessBundle(@TempDir Path dir) throws Exception {
        // A stand-in for a hostile guest whose CA bundle never ends (64 MiB here, so a host
        // without a cap would finish the read: with all of it in memory, and write it all back).
        AtomicLong sent = new AtomicLong();
        try (HostileAgent fake = new HostileAgent(dir)) {
            fake.serveOne(true, HostileAgent.servesEndlessFiles(64L << 20, sent));
            try (GuestChannel guest = GuestChannel.open(fake.connect(), Duration.ofSeconds(5))) {
                assertThatThrownBy(() -> InterceptionCa.generate("test CA").installIn(guest))
                        .isInstanceOfSatisfying(
                                GuestLimitException.class,
                                e -> assertThat(e.limit()).isEqualTo(GuestLimitException.Limit.SIZE))
                        .hasMessageContaining("cannot add the sandbox CA to the guest's " + InterceptionCa.GUEST_BUNDLE)
                        .hasMessageContaining("more than " + InterceptionCa.MAX_GUEST_BUNDLE + " bytes");
            }
        }
        assertThat(sent.get()).isLessThan(InterceptionCa.MAX_GUEST_BUNDLE + (1 << 20));
    }

    @Test
    void installAgainstTheRealAgentAppendsOnceAndRefusesAHugeBundle(@TempDir Path dir) throws Exception {
        try (AgentProcess agent = AgentProcess.start(Files.createDirectories(dir.resolve("agent")));
                GuestChannel guest = agent.open()) {
            InterceptionCa ca = InterceptionCa.generate("test CA");
            Path bundle = dir.resolve("bundle.crt");
            Files.writeString(bundle, "-----BEGIN CERTIFICATE-----\nexisting\n-----END CERTIFICATE-----");
            String caFile = dir.resolve("ca/airlock.crt").toString();
            Duration t = Duration.ofSeconds(10);
            ca.installIn(guest, caFile, bundle.toString(), InterceptionCa.MAX_GUEST_BUNDLE, t);
            ca.installIn(guest, caFile, bundle.toString(), InterceptionCa.MAX_GUEST_BUNDLE, t);
            String text = Files.readString(bundle);
            assertThat(text).startsWith("-----BEGIN CERTIFICATE-----\nexisting\n-----END CERTIFICATE-----\n");
            assertThat(text.split("BEGIN CERTIFICATE", -1)).hasSize(3);
            assertThat(Files.readString(Path.of(caFile))).isEqualTo(ca.certificatePem());
            // A sparse 1 GiB bundle: the host reads up to its cap and leaves the file alone.
            try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(bundle.toFile(), "rw")) {
                f.setLength(1L << 30);
            }
            assertThatThrownBy(() -> ca.installIn(guest, caFile, bundle.toString(), InterceptionCa.MAX_GUEST_BUNDLE, t))
                    .isInstanceOf(GuestLimitException.class);
            assertThat(Files.size(bundle)).isEqualTo(1L << 30);
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
