package dev.airlock.image.oci;

import dev.airlock.host.Hashing;
import dev.airlock.image.ImageException;
import dev.airlock.image.LayeredImages;
import dev.airlock.net.HostProxies;
import dev.airlock.net.UpstreamProxy;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;

/**
 * A client of the OCI distribution API (v2) for pulling: manifests and blobs, with the
 * registry's authentication (an anonymous or logged-in bearer token from the realm its
 * {@code WWW-Authenticate} challenge names, or basic auth), redirects followed without handing
 * credentials to another host, and downloads resumed where a partial file ends. Everything a
 * registry sends is untrusted: sizes are capped and every blob is checked against its digest
 * while it streams.
 *
 * <p>HTTPS by default, verified against the host's CA bundle. Plain HTTP only for registries on
 * loopback, those named in {@code AIRLOCK_INSECURE_REGISTRIES} (comma-separated host[:port]), or
 * all with {@code --insecure}; such a registry is still tried over HTTPS first.
 *
 * <p>Through the host's upstream proxy when {@code HTTPS_PROXY}/{@code HTTP_PROXY} name one
 * (and {@code NO_PROXY} does not exempt the registry), with its credentials: see {@link
 * HostProxies}.
 */
public final class RegistryClient implements AutoCloseable {
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration RESPONSE_TIMEOUT = Duration.ofSeconds(60);
    /** A download that receives nothing for this long is abandoned (and resumed by the next pull). */
    static final Duration STALL_TIMEOUT = Duration.ofSeconds(60);

    private static final int MAX_ERROR_BYTES = 64 * 1024;
    private static final int MAX_TOKEN_BYTES = 1 << 20;
    private static final int MAX_REDIRECTS = 5;

    private final HttpClient http;
    private final HostProxies proxies = HostProxies.fromEnvironment(System::getenv);
    private final RegistryCredentials credentials;
    private final boolean insecureAll;
    private final Set<String> insecureRegistries;
    private final Map<String, String> schemes = new ConcurrentHashMap<>();
    private final Map<String, String> authorization = new ConcurrentHashMap<>();
    private final ScheduledExecutorService watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "registry-stall-watchdog");
        t.setDaemon(true);
        return t;
    });

    public RegistryClient(RegistryCredentials credentials, boolean insecureAll, Set<String> insecureRegistries) {
        this.credentials = credentials;
        this.insecureAll = insecureAll;
        this.insecureRegistries = Set.copyOf(insecureRegistries);
        HttpClient.Builder b = HttpClient.newBuilder()
                .connectTimeout(CONNECT_TIMEOUT)
                .followRedirects(HttpClient.Redirect.NEVER)
                .version(HttpClient.Version.HTTP_1_1);
        hostTrust().ifPresent(b::sslContext);
        proxies.configure(b);
        this.http = b.build();
    }

    /** Registries named in {@code AIRLOCK_INSECURE_REGISTRIES}. */
    public static Set<String> insecureFromEnvironment() {
        String v = System.getenv("AIRLOCK_INSECURE_REGISTRIES");
        if (v == null || v.isBlank()) {
            return Set.of();
        }
        return Set.of(v.strip().split("\\s*,\\s*"));
    }

    /** A fetched document: its bytes, the media type the server declared, and its digest. */
    public record Document(byte[] body, String contentType, String digest) {}

    /**
     * The manifest or index {@code reference} (a tag or a digest) of {@code ref}'s repository. By
     * digest, the body must hash to it; by tag, the server's {@code Docker-Content-Digest}, when
     * given, must agree with the body.
     */
    public Document manifest(ImageReference ref, String reference) {
        String what = "manifest " + ref.registry() + "/" + ref.repository()
                + (reference.startsWith("sha256:") ? "@" : ":") + reference;
        HttpResponse<InputStream> r = send(ref, "/manifests/" + reference, MediaTypes.ACCEPT_MANIFESTS, null, what);
        try (InputStream in = r.body()) {
            if (r.statusCode() == 404) {
                throw new ImageException("no image " + ref.familiar()
                        + (ref.digest() == null || reference.equals(ref.digest()) ? "" : " (" + reference + ")")
                        + " in registry " + ref.registry() + " (" + errorText(in)
                        + "): check the repository name and tag");
            }
            if (r.statusCode() != 200) {
                throw unexpected(r, in, ref, what);
            }
            byte[] body = in.readNBytes(OciDocuments.MAX_MANIFEST_BYTES + 1);
            if (body.length > OciDocuments.MAX_MANIFEST_BYTES) {
                throw new ImageException(
                        what + " is larger than " + (OciDocuments.MAX_MANIFEST_BYTES >> 20) + " MiB; refusing it");
            }
            String digest = "sha256:" + Hashing.sha256(body);
            if (reference.startsWith("sha256:") && !digest.equals(reference)) {
                throw new ImageException(what + " does not match its digest: the registry sent content hashing to "
                        + Digests.shortForm(digest) + "; nothing was stored");
            }
            String header = r.headers().firstValue("Docker-Content-Digest").orElse("");
            if (header.startsWith("sha256:") && !header.equals(digest)) {
                throw new ImageException(what + ": the registry says its digest is " + Digests.shortForm(header)
                        + " but the content hashes to " + Digests.shortForm(digest) + "; nothing was stored");
            }
            return new Document(body, r.headers().firstValue("Content-Type").orElse(""), digest);
        } catch (IOException e) {
            throw new ImageException("reading " + what + " from " + ref.registry() + " failed: " + e.getMessage());
        }
    }

    /** A small blob (an image config) read whole and checked against its descriptor. */
    public byte[] smallBlob(ImageReference ref, Descriptor d, int maxBytes) {
        if (d.size() > maxBytes) {
            throw new ImageException("blob " + Digests.shortForm(d.digest()) + " of " + ref.familiar() + " is "
                    + d.size() + " bytes, more than the " + maxBytes + " allowed for it");
        }
        String what = "blob " + Digests.shortForm(d.digest()) + " of " + ref.familiar();
        HttpResponse<InputStream> r = send(ref, "/blobs/" + d.digest(), "*/*", null, what);
        try (InputStream in = r.body()) {
            if (r.statusCode() != 200) {
                throw blobError(r, in, ref, d);
            }
            byte[] body = in.readNBytes((int) d.size() + 1);
            verify(body, d, ref);
            return body;
        } catch (IOException e) {
            throw new ImageException("reading " + what + " failed: " + e.getMessage());
        }
    }

    private static void verify(byte[] body, Descriptor d, ImageReference ref) {
        String digest = "sha256:" + Hashing.sha256(body);
        if (body.length != d.size() || !digest.equals(d.digest())) {
            throw new ImageException("blob " + Digests.shortForm(d.digest()) + " of " + ref.familiar()
                    + " is corrupt: the registry sent " + body.length + " bytes hashing to " + Digests.shortForm(digest)
                    + "; nothing was stored");
        }
    }

    /**
     * Downloads a blob to {@code partial}, resuming after the bytes already there (checked again:
     * they are hashed before the rest is asked for). Returns when {@code partial} holds exactly
     * the blob; a blob that does not match its digest or size is deleted and reported.
     * {@code progress} receives the bytes held so far.
     */
    public void download(ImageReference ref, Descriptor d, Path partial, LongConsumer progress) {
        MessageDigest sha = Hashing.newDigest();
        long have = 0;
        try {
            if (Files.isRegularFile(partial)) {
                have = Files.size(partial);
                if (have > d.size()) {
                    Files.delete(partial);
                    have = 0;
                } else {
                    try (InputStream in = Files.newInputStream(partial)) {
                        byte[] buf = new byte[1 << 16];
                        for (int n; (n = in.read(buf)) > 0; ) {
                            sha.update(buf, 0, n);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new ImageException("cannot read the partial download " + partial + ": " + e.getMessage());
        }
        String what = "blob " + Digests.shortForm(d.digest()) + " of " + ref.familiar();
        if (have < d.size()) {
            HttpResponse<InputStream> r =
                    send(ref, "/blobs/" + d.digest(), "*/*", have > 0 ? "bytes=" + have + "-" : null, what);
            try (InputStream body = r.body()) {
                boolean append = false;
                if (r.statusCode() == 206 && have > 0 && contentRangeStartsAt(r, have)) {
                    append = true;
                } else if (r.statusCode() == 200 || r.statusCode() == 206) {
                    have = 0; // the server sent the whole blob (or a range we did not ask for): start over
                    sha.reset();
                    if (r.statusCode() == 206) {
                        throw new ImageException("registry " + ref.registry() + " answered a range request for " + what
                                + " with another range; try again");
                    }
                } else if (r.statusCode() == 416) {
                    Files.deleteIfExists(partial);
                    throw new ImageException("registry " + ref.registry() + " refused to resume " + what
                            + "; the partial download is discarded, pull again");
                } else {
                    throw blobError(r, body, ref, d);
                }
                have = copy(body, partial, append, have, d, sha, progress);
            } catch (IOException e) {
                throw new ImageException("downloading " + what + " from " + ref.registry() + " was interrupted after "
                        + LayeredImages.mib(sizeOrZero(partial)) + " of " + LayeredImages.mib(d.size()) + " ("
                        + e.getMessage()
                        + "); pull again to resume it");
            }
        }
        String digest = "sha256:" + HexFormat.of().formatHex(sha.digest());
        if (have != d.size() || !digest.equals(d.digest())) {
            try {
                Files.deleteIfExists(partial);
            } catch (IOException e) {
                // reported below either way
            }
            throw new ImageException(what + " is corrupt: the registry sent " + have + " bytes hashing to "
                    + Digests.shortForm(digest) + ", the manifest says " + d.size() + " bytes, "
                    + Digests.shortForm(d.digest()) + "; nothing was stored");
        }
        progress.accept(have);
    }

    private long copy(
            InputStream body,
            Path partial,
            boolean append,
            long start,
            Descriptor d,
            MessageDigest sha,
            LongConsumer progress)
            throws IOException {
        AtomicLong last = new AtomicLong(System.nanoTime());
        AtomicLong lastCount = new AtomicLong(start);
        long have = start;
        ScheduledFuture<?> stall = watchdog.scheduleAtFixedRate(
                () -> {
                    if (System.nanoTime() - last.get() > STALL_TIMEOUT.toNanos()) {
                        try {
                            body.close(); // the blocked read fails, the download is resumable
                        } catch (IOException e) {
                            // already closed
                        }
                    }
                },
                5,
                5,
                TimeUnit.SECONDS);
        try (OutputStream out = Files.newOutputStream(
                partial,
                StandardOpenOption.CREATE,
                StandardOpenOption.WRITE,
                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = body.read(buf)) > 0; ) {
                if (have + n > d.size()) {
                    throw new IOException("the registry sent more than the " + d.size() + " bytes the manifest says");
                }
                out.write(buf, 0, n);
                sha.update(buf, 0, n);
                have += n;
                last.set(System.nanoTime());
                if (have - lastCount.get() >= (1 << 20) || have == d.size()) {
                    lastCount.set(have);
                    progress.accept(have);
                }
            }
        } finally {
            stall.cancel(false);
        }
        return have;
    }

    private static boolean contentRangeStartsAt(HttpResponse<?> r, long offset) {
        String cr = r.headers().firstValue("Content-Range").orElse("");
        return cr.toLowerCase(Locale.ROOT).startsWith("bytes " + offset + "-");
    }

    // ---- requests, authentication, redirects

    private HttpResponse<InputStream> send(
            ImageReference ref, String path, String accept, @Nullable String range, String what) {
        String registry = ref.registry();
        String scope = "repository:" + ref.repository() + ":pull";
        String key = registry + " " + scope;
        URI uri = URI.create(base(registry) + "/v2/" + ref.repository() + path);
        HttpResponse<InputStream> r = exchange(uri, accept, range, authorization.get(key), registry, what);
        if (r.statusCode() != 401) {
            return r;
        }
        String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
        drain(r);
        String header = authenticate(ref, challenge, scope, what);
        authorization.put(key, header);
        r = exchange(uri, accept, range, header, registry, what);
        if (r.statusCode() == 401 || r.statusCode() == 403) {
            String text;
            try (InputStream in = r.body()) {
                text = errorText(in);
            } catch (IOException e) {
                text = "no details";
            }
            Optional<RegistryCredentials.Credential> c = credentials.find(registry, ref.repository());
            throw new ImageException("registry " + registry + " refused access to " + ref.familiar() + " (" + text + ")"
                    + (c.isPresent()
                            ? " with the login for user '" + c.get().username()
                                    + "'; log in again (docker login / podman" + " login " + registry + ")"
                            : "; it needs a login: docker login / podman login " + registry + " (read from "
                                    + credentials.files() + ")"));
        }
        return r;
    }

    /** Answers a challenge: a token from the realm (bearer) or the stored login (basic). */
    private String authenticate(ImageReference ref, String challenge, String scope, String what) {
        Challenge c = Challenge.parse(challenge);
        Optional<RegistryCredentials.Credential> login = credentials.find(ref.registry(), ref.repository());
        if (c.scheme().equals("basic")) {
            RegistryCredentials.Credential l = login.orElseThrow(() -> new ImageException("registry " + ref.registry()
                    + " needs a login for " + ref.familiar() + " (basic auth); log in with docker login / podman login "
                    + ref.registry() + " (read from " + credentials.files() + ")"));
            return basic(l);
        }
        if (!c.scheme().equals("bearer")) {
            throw new ImageException("registry " + ref.registry() + " asks for authentication '" + challenge
                    + "', which Airlock does not support (bearer and basic are)");
        }
        String realm = c.params().getOrDefault("realm", "");
        URI realmUri;
        try {
            realmUri = URI.create(realm);
        } catch (IllegalArgumentException e) {
            throw new ImageException("registry " + ref.registry() + " names an invalid token realm '" + realm + "'");
        }
        String host = realmUri.getHost() == null ? "" : realmUri.getHost();
        String hostPort = realmUri.getPort() > 0 ? host + ":" + realmUri.getPort() : host;
        boolean plainOk = "http".equals(realmUri.getScheme()) && plainHttpAllowed(hostPort);
        if (!"https".equals(realmUri.getScheme()) && !plainOk) {
            throw new ImageException("registry " + ref.registry() + " names the token realm '" + realm
                    + "', which is not HTTPS; Airlock sends no login over plain HTTP except to loopback or"
                    + " AIRLOCK_INSECURE_REGISTRIES");
        }
        StringBuilder q = new StringBuilder(realm).append(realm.contains("?") ? "&" : "?");
        q.append("scope=").append(URLEncoder.encode(c.params().getOrDefault("scope", scope), StandardCharsets.UTF_8));
        String service = c.params().get("service");
        if (service != null) {
            q.append("&service=").append(URLEncoder.encode(service, StandardCharsets.UTF_8));
        }
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(q.toString()))
                .timeout(RESPONSE_TIMEOUT)
                .header("Accept", "application/json")
                .GET();
        login.ifPresent(l -> b.header("Authorization", basic(l)));
        HttpResponse<InputStream> r = execute(b.build(), ref.registry(), "its token service " + realm);
        try (InputStream in = r.body()) {
            if (r.statusCode() == 401 || r.statusCode() == 403) {
                throw new ImageException("the token service of registry " + ref.registry() + " refused "
                        + (login.isPresent()
                                ? "the login for user '" + login.get().username() + "'"
                                : "an anonymous pull")
                        + " of " + ref.familiar() + " (" + errorText(in) + ")"
                        + (login.isPresent()
                                ? "; log in again"
                                : "; log in with docker login / podman login " + ref.registry()));
            }
            if (r.statusCode() != 200) {
                throw unexpected(r, in, ref, "a token for " + what);
            }
            byte[] body = in.readNBytes(MAX_TOKEN_BYTES);
            JsonNode json = OciDocuments.JSON.readTree(body);
            String token = json.path("token").asString("");
            if (token.isEmpty()) {
                token = json.path("access_token").asString("");
            }
            if (token.isEmpty() || !token.matches("[\\x21-\\x7e]+")) {
                throw new ImageException(
                        "the token service of registry " + ref.registry() + " answered without a token");
            }
            return "Bearer " + token;
        } catch (IOException | tools.jackson.core.JacksonException e) {
            throw new ImageException(
                    "the token service of registry " + ref.registry() + " answered badly: " + e.getMessage());
        }
    }

    private static String basic(RegistryCredentials.Credential l) {
        return "Basic "
                + Base64.getEncoder()
                        .encodeToString((l.username() + ":" + l.secret()).getBytes(StandardCharsets.UTF_8));
    }

    /** One request, following redirects; credentials go only to the registry's own origin. */
    private HttpResponse<InputStream> exchange(
            URI uri, String accept, @Nullable String range, @Nullable String auth, String registry, String what) {
        URI current = uri;
        for (int i = 0; i <= MAX_REDIRECTS; i++) {
            HttpRequest.Builder b = HttpRequest.newBuilder(current)
                    .timeout(RESPONSE_TIMEOUT)
                    .header("Accept", accept)
                    .GET();
            if (range != null) {
                b.header("Range", range);
            }
            if (auth != null && sameOrigin(current, uri)) {
                b.header("Authorization", auth);
            }
            HttpResponse<InputStream> r = execute(b.build(), registry, what);
            int s = r.statusCode();
            if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) {
                return r;
            }
            String location = r.headers().firstValue("Location").orElse("");
            drain(r);
            URI next;
            try {
                next = current.resolve(location);
            } catch (IllegalArgumentException e) {
                throw new ImageException("registry " + registry + " redirected " + what + " to an invalid address");
            }
            if ("https".equals(current.getScheme()) && !"https".equals(next.getScheme())) {
                throw new ImageException("registry " + registry + " redirected " + what + " from HTTPS to "
                        + next.getScheme() + "; refusing the downgrade");
            }
            if (!"https".equals(next.getScheme()) && !"http".equals(next.getScheme())) {
                throw new ImageException("registry " + registry + " redirected " + what + " to a non-HTTP address");
            }
            current = next;
        }
        throw new ImageException(
                "registry " + registry + " redirected " + what + " more than " + MAX_REDIRECTS + " times");
    }

    private static boolean sameOrigin(URI a, URI b) {
        return a.getScheme().equals(b.getScheme())
                && String.valueOf(a.getHost()).equalsIgnoreCase(String.valueOf(b.getHost()))
                && a.getPort() == b.getPort();
    }

    private HttpResponse<InputStream> execute(HttpRequest request, String registry, String what) {
        try {
            return http.send(request, HttpResponse.BodyHandlers.ofInputStream());
        } catch (HttpConnectTimeoutException e) {
            throw new ImageException(
                    "cannot reach registry " + registry + " (" + request.uri().getHost() + "): no connection"
                            + " within " + CONNECT_TIMEOUT.toSeconds() + " s; check the address and your network");
        } catch (HttpTimeoutException e) {
            throw new ImageException("registry " + registry + " did not answer for " + what + " within "
                    + RESPONSE_TIMEOUT.toSeconds() + " s; try again later");
        } catch (ConnectException e) {
            throw new ImageException(
                    "cannot reach registry " + registry + " at " + request.uri().getScheme() + "://"
                            + request.uri().getAuthority() + " ("
                            + (e.getMessage() == null ? "connection refused" : e.getMessage())
                            + "): is the address right and the registry running?");
        } catch (IOException e) {
            if (e instanceof SSLException || e.getCause() instanceof SSLException) {
                throw new ImageException("TLS with registry " + registry + " failed (" + e.getMessage() + "); if it is"
                        + " a plain-HTTP registry you trust, allow it with --insecure or AIRLOCK_INSECURE_REGISTRIES");
            }
            UpstreamProxy via = proxies.forUri(request.uri());
            if (via != null && String.valueOf(e.getMessage()).contains("authentication")) {
                throw new ImageException("the upstream proxy " + via.host() + ":" + via.port() + " (HTTPS_PROXY or"
                        + " HTTP_PROXY) refused its credentials on the way to registry " + registry
                        + ": check the user and password in the variable (http://USER:PASSWORD@HOST:PORT)");
            }
            throw new ImageException("talking to registry " + registry
                    + (via == null ? "" : " through the upstream proxy " + via) + " failed (" + e + "); try again");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageException("interrupted while talking to registry " + registry);
        }
    }

    /**
     * {@code https://host} or, for a registry allowed plain HTTP that does not speak TLS,
     * {@code http://host}; decided once per registry by a first request to {@code /v2/}.
     */
    private String base(String registry) {
        return schemes.computeIfAbsent(registry, r -> {
            String https = "https://" + apiHost(r);
            if (!plainHttpAllowed(r)) {
                return https;
            }
            HttpRequest probe = HttpRequest.newBuilder(URI.create(https + "/v2/"))
                    .timeout(RESPONSE_TIMEOUT)
                    .GET()
                    .build();
            try {
                drain(http.send(probe, HttpResponse.BodyHandlers.ofInputStream()));
                return https;
            } catch (IOException e) {
                if (e instanceof SSLException || e.getCause() instanceof SSLException) {
                    return "http://" + apiHost(r); // it does not speak TLS
                }
                return https; // unreachable either way: the request proper says why
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ImageException("interrupted while talking to registry " + r);
            }
        });
    }

    private static String apiHost(String registry) {
        return registry.equals(ImageReference.DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    /** Loopback always; anything else only when the user said so. */
    boolean plainHttpAllowed(String hostPort) {
        if (insecureAll || insecureRegistries.contains(hostPort)) {
            return true;
        }
        String host =
                hostPort.startsWith("[") ? hostPort.substring(0, hostPort.indexOf(']') + 1) : hostPort.split(":")[0];
        return host.equals("localhost") || host.equals("[::1]") || host.matches("127\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}");
    }

    private static ImageException blobError(HttpResponse<?> r, InputStream in, ImageReference ref, Descriptor d) {
        if (r.statusCode() == 404) {
            return new ImageException("registry " + ref.registry() + " has no blob " + Digests.shortForm(d.digest())
                    + ", which the manifest of " + ref.familiar() + " names (" + errorText(in) + "); the image in the"
                    + " registry is incomplete");
        }
        return unexpected(r, in, ref, "blob " + Digests.shortForm(d.digest()));
    }

    private static ImageException unexpected(HttpResponse<?> r, InputStream in, ImageReference ref, String what) {
        return new ImageException("registry " + ref.registry() + " answered HTTP " + r.statusCode() + " for " + what
                + " of " + ref.familiar() + " (" + errorText(in) + ")");
    }

    /** The registry's error, {"errors":[{"code","message"}]}, as one short line. */
    static String errorText(InputStream in) {
        try {
            byte[] b = in.readNBytes(MAX_ERROR_BYTES);
            try {
                JsonNode json = OciDocuments.JSON.readTree(b);
                JsonNode first = json.path("errors").path(0);
                if (first.isObject()) {
                    return first.path("code").asString("") + ": "
                            + first.path("message").asString("");
                }
            } catch (RuntimeException e) {
                // not JSON: show the text
            }
            String text = new String(b, StandardCharsets.UTF_8).strip().replaceAll("\\s+", " ");
            text = text.replaceAll("[^\\x20-\\x7e]", "?");
            return text.isEmpty() ? "no details" : text.length() > 200 ? text.substring(0, 200) + "..." : text;
        } catch (IOException e) {
            return "no details";
        }
    }

    private static void drain(HttpResponse<InputStream> r) {
        try (InputStream in = r.body()) {
            in.readNBytes(MAX_ERROR_BYTES);
        } catch (IOException e) {
            // the connection is discarded instead of reused
        }
    }

    /** The host's CA bundle (what curl and skopeo trust here), or the JDK's when there is none. */
    private static Optional<SSLContext> hostTrust() {
        String env = System.getenv("SSL_CERT_FILE");
        Path bundle = env != null && !env.isBlank() ? Path.of(env) : Path.of("/etc/ssl/certs/ca-certificates.crt");
        if (!Files.isRegularFile(bundle)) {
            return Optional.empty();
        }
        try (InputStream in = new ByteArrayInputStream(Files.readAllBytes(bundle))) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            for (var cert : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca-" + i++, (X509Certificate) cert);
            }
            if (i == 0) {
                return Optional.empty();
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return Optional.of(ctx);
        } catch (IOException | java.security.GeneralSecurityException e) {
            return Optional.empty();
        }
    }

    private static long sizeOrZero(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return 0;
        }
    }

    @Override
    public void close() {
        watchdog.shutdownNow();
        http.close();
    }

    /** A parsed {@code WWW-Authenticate} challenge: scheme (lowercase) and parameters. */
    record Challenge(String scheme, Map<String, String> params) {
        static Challenge parse(String header) {
            String h = header.strip();
            int sp = h.indexOf(' ');
            String scheme = (sp < 0 ? h : h.substring(0, sp)).toLowerCase(Locale.ROOT);
            Map<String, String> params = new LinkedHashMap<>();
            int i = sp < 0 ? h.length() : sp + 1;
            while (i < h.length()) {
                while (i < h.length() && (h.charAt(i) == ' ' || h.charAt(i) == ',')) {
                    i++;
                }
                int eq = h.indexOf('=', i);
                if (eq < 0) {
                    break;
                }
                String k = h.substring(i, eq).strip().toLowerCase(Locale.ROOT);
                i = eq + 1;
                StringBuilder v = new StringBuilder();
                if (i < h.length() && h.charAt(i) == '"') {
                    i++;
                    while (i < h.length() && h.charAt(i) != '"') {
                        if (h.charAt(i) == '\\' && i + 1 < h.length()) {
                            i++;
                        }
                        v.append(h.charAt(i++));
                    }
                    i++;
                } else {
                    while (i < h.length() && h.charAt(i) != ',') {
                        v.append(h.charAt(i++));
                    }
                }
                params.put(k, v.toString().strip());
            }
            return new Challenge(scheme, params);
        }
    }
}
