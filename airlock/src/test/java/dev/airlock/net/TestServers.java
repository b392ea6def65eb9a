package dev.airlock.net;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.airlock.host.HostCommand;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

/**
 * HTTP and HTTPS servers on the host's loopback, the only destinations network tests reach. Each
 * answers {@code /hello} with a fixed body and records the headers of the requests it got.
 */
final class TestServers implements AutoCloseable {
    static final String BODY = "hello from the test upstream";
    /** A streamed chat completion as an OpenAI-compatible server sends it. */
    static final String SSE = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
            + "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
            + "data: [DONE]\n\n";

    final HttpServer http;
    /** HTTPS with a certificate for api.test and deep.wild.test issued by {@link #upstreamCa}. */
    final HttpsServer https;
    /** HTTPS with a self-signed certificate for untrusted.test that nothing trusts. */
    final HttpsServer untrusted;
    /** The test's own CA, which the daemon is told to trust for upstreams; the guest does not trust it. */
    final InterceptionCa upstreamCa = InterceptionCa.generate(UPSTREAM_CA_NAME);

    static final String UPSTREAM_CA_NAME = "Airlock network test upstream CA";
    /** Headers of the last request per path, lower-case names. */
    final Map<String, Map<String, List<String>>> seen = new ConcurrentHashMap<>();

    TestServers(Path dir) throws Exception {
        InetSocketAddress any = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);
        http = HttpServer.create(any, 64);
        https = HttpsServer.create(any, 64);
        https.setHttpsConfigurator(
                new HttpsConfigurator(upstreamCa.serverContext(List.of("api.test", "deep.wild.test"))));
        untrusted = HttpsServer.create(any, 64);
        untrusted.setHttpsConfigurator(new HttpsConfigurator(selfSigned(dir, "untrusted.test")));
        for (HttpServer s : List.of(http, https, untrusted)) {
            s.createContext("/", this::answer);
            s.createContext("/v1/chat/completions", this::stream);
            s.createContext("/echo", this::echo);
            s.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
            s.start();
        }
    }

    /** The values of a header of the last request for a path; empty if none came. */
    List<String> header(String path, String name) {
        Map<String, List<String>> headers = seen.getOrDefault(path, Map.of());
        return headers.getOrDefault(name, List.of());
    }

    int httpPort() {
        return http.getAddress().getPort();
    }

    int httpsPort() {
        return https.getAddress().getPort();
    }

    int untrustedPort() {
        return untrusted.getAddress().getPort();
    }

    /** The upstream CA as a PEM file, for the daemon's {@code AIRLOCK_UPSTREAM_CA}. */
    Path writeUpstreamCa(Path dir) throws IOException {
        Path f = dir.resolve("upstream-ca.pem");
        Files.writeString(f, upstreamCa.certificatePem(), StandardCharsets.US_ASCII);
        return f;
    }

    private void answer(HttpExchange x) throws IOException {
        try (InputStream in = x.getRequestBody()) {
            in.readAllBytes();
        }
        Map<String, List<String>> headers = new java.util.TreeMap<>();
        x.getRequestHeaders().forEach((k, v) -> headers.put(k.toLowerCase(java.util.Locale.ROOT), List.copyOf(v)));
        seen.put(x.getRequestURI().getPath(), headers);
        byte[] body = (BODY + " " + x.getRequestURI().getPath() + "\n").getBytes(StandardCharsets.UTF_8);
        x.sendResponseHeaders(200, body.length);
        x.getResponseBody().write(body);
        x.close();
    }

    /**
     * Reflects the request's Authorization header, as echo endpoints and error pages do: in a
     * response header and in a chunked body, the value cut in two writes (two chunks).
     */
    private void echo(HttpExchange x) throws IOException {
        try (InputStream in = x.getRequestBody()) {
            in.readAllBytes();
        }
        String auth = String.valueOf(x.getRequestHeaders().getFirst("Authorization"));
        Map<String, List<String>> headers = new java.util.TreeMap<>();
        x.getRequestHeaders().forEach((k, v) -> headers.put(k.toLowerCase(java.util.Locale.ROOT), List.copyOf(v)));
        seen.put(x.getRequestURI().getPath(), headers);
        x.getResponseHeaders().add("X-Echo-Authorization", auth);
        x.sendResponseHeaders(200, 0);
        byte[] body = ("you sent: " + auth + "\n").getBytes(StandardCharsets.UTF_8);
        int half = body.length / 2;
        x.getResponseBody().write(body, 0, half);
        x.getResponseBody().flush();
        x.getResponseBody().write(body, half, body.length - half);
        x.close();
    }

    /** Server-sent events, one write and flush per event, with the body length unknown up front. */
    private void stream(HttpExchange x) throws IOException {
        try (InputStream in = x.getRequestBody()) {
            in.readAllBytes();
        }
        Map<String, List<String>> headers = new java.util.TreeMap<>();
        x.getRequestHeaders().forEach((k, v) -> headers.put(k.toLowerCase(java.util.Locale.ROOT), List.copyOf(v)));
        seen.put(x.getRequestURI().getPath(), headers);
        x.getResponseHeaders().add("Content-Type", "text/event-stream");
        x.sendResponseHeaders(200, 0);
        for (String event : SSE.split("(?<=\n\n)")) {
            x.getResponseBody().write(event.getBytes(StandardCharsets.UTF_8));
            x.getResponseBody().flush();
        }
        x.close();
    }

    /** A throwaway self-signed certificate, made by the JDK's keytool. */
    private static SSLContext selfSigned(Path dir, String host) throws Exception {
        Path store = dir.resolve("server.p12");
        Files.deleteIfExists(store);
        String keytool =
                Path.of(System.getProperty("java.home"), "bin", "keytool").toString();
        HostCommand.check(List.of(
                keytool,
                "-genkeypair",
                "-alias",
                "server",
                "-keyalg",
                "EC",
                "-dname",
                "CN=" + host,
                "-ext",
                "SAN=dns:" + host,
                "-validity",
                "2",
                "-keystore",
                store.toString(),
                "-storetype",
                "PKCS12",
                "-storepass",
                "changeit"));
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(store)) {
            ks.load(in, "changeit".toCharArray());
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, "changeit".toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    @Override
    public void close() {
        http.stop(0);
        https.stop(0);
        untrusted.stop(0);
    }
}
