package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.net.InterceptionCa;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Pulling from registries that need a login, with logins read from the files docker and podman
 * write: a token-auth registry (docker-registry's {@code auth.token}, whose realm is a token
 * service this test serves on loopback, signing ES256 JWTs with a key the registry trusts) and an
 * htpasswd registry (basic auth). Both serve the storage an open registry was pushed to first.
 */
class RegistryAuthTest {
    private static final String SERVICE = "airlock-test";
    private static final String ISSUER = "airlock-test-issuer";
    private static Path work;
    private static TestRegistry open;
    private static TestRegistry token;
    private static TestRegistry basic;
    private static HttpServer tokenService;
    private static final List<String> tokenRequests = new CopyOnWriteArrayList<>();
    private static Cli cli;
    private static AirlockDirs dirs;

    @BeforeAll
    static void setUp() throws Exception {
        work = Files.createTempDirectory("airlock-auth-test");
        Path storage = work.resolve("storage");
        open = TestRegistry.start(work, storage, "");
        Path layout = TestImages.buildLayout(work, "v1");
        TestImages.push(layout, "v1", open.host() + "/test/img:v1");
        open.close();

        InterceptionCa ca = InterceptionCa.generate("airlock test token issuer");
        Path bundle = work.resolve("token-ca.pem");
        Files.writeString(bundle, ca.certificatePem());
        PrivateKey key = KeyFactory.getInstance("EC")
                .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder()
                        .decode(ca.privateKeyPem()
                                .replaceAll("-----[A-Z ]+-----", "")
                                .replaceAll("\\s", ""))));
        String x5c = Base64.getEncoder().encodeToString(ca.certificate().getEncoded());
        tokenService = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        tokenService.createContext("/token", exchange -> {
            String auth = exchange.getRequestHeaders().getFirst("Authorization");
            tokenRequests.add(exchange.getRequestURI().getRawQuery() + " auth=" + (auth != null));
            String good =
                    "Basic " + Base64.getEncoder().encodeToString("alice:s3cret".getBytes(StandardCharsets.UTF_8));
            byte[] body;
            int status;
            if (good.equals(auth)) {
                String scope = java.net.URLDecoder.decode(
                        exchange.getRequestURI().getRawQuery().replaceAll(".*scope=([^&]*).*", "$1"),
                        StandardCharsets.UTF_8);
                String repo = scope.split(":")[1];
                body = ("{\"token\":\"" + jwt(key, x5c, repo) + "\",\"expires_in\":300}")
                        .getBytes(StandardCharsets.UTF_8);
                status = 200;
            } else {
                body = "{\"details\":\"bad credentials\"}".getBytes(StandardCharsets.UTF_8);
                status = 401;
            }
            exchange.sendResponseHeaders(status, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        tokenService.start();
        token = TestRegistry.start(
                work,
                storage,
                "auth:\n  token:\n    realm: http://127.0.0.1:"
                        + tokenService.getAddress().getPort() + "/token\n    service: " + SERVICE + "\n    issuer: "
                        + ISSUER
                        + "\n    rootcertbundle: " + bundle + "\n");
        Path htpasswd = work.resolve("htpasswd");
        Files.writeString(
                htpasswd,
                HostCommand.check(List.of("htpasswd", "-Bbn", "alice", "s3cret"))
                                .strip() + "\n");
        basic = TestRegistry.start(
                work, storage, "auth:\n  htpasswd:\n    realm: airlock-test\n    path: " + htpasswd + "\n");

        dirs = TestImages.privateStore(work);
        cli = new Cli(dirs);
    }

    @AfterAll
    static void tearDown() {
        token.close();
        basic.close();
        tokenService.stop(0);
        TestHost.cleanUp(dirs); // its daemon too, which the CLI started on demand
        HostFiles.deleteTree(work);
    }

    /** A JWT as the distribution registry verifies it: ES256, the signing certificate in x5c. */
    private static String jwt(PrivateKey key, String x5c, String repository) {
        long now = System.currentTimeMillis() / 1000;
        String header = "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"x5c\":[\"" + x5c + "\"]}";
        String claims = "{\"iss\":\"" + ISSUER + "\",\"sub\":\"alice\",\"aud\":\"" + SERVICE + "\",\"exp\":"
                + (now + 300)
                + ",\"nbf\":" + (now - 60) + ",\"iat\":" + now + ",\"jti\":\"" + UUID.randomUUID()
                + "\",\"access\":[{\"type\":\"repository\",\"name\":\"" + repository + "\",\"actions\":[\"pull\"]}]}";
        Base64.Encoder b64 = Base64.getUrlEncoder().withoutPadding();
        String input = b64.encodeToString(header.getBytes(StandardCharsets.UTF_8)) + "."
                + b64.encodeToString(claims.getBytes(StandardCharsets.UTF_8));
        try {
            Signature s = Signature.getInstance("SHA256withECDSAinP1363Format");
            s.initSign(key);
            s.update(input.getBytes(StandardCharsets.US_ASCII));
            return input + "." + b64.encodeToString(s.sign());
        } catch (java.security.GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, String> loginFile(String registry, String user, String password) throws Exception {
        Path file = Files.createTempFile(work, "auth-", ".json");
        String auth = Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        Files.writeString(file, "{\"auths\":{\"" + registry + "\":{\"auth\":\"" + auth + "\"}}}");
        return Map.of(
                "REGISTRY_AUTH_FILE",
                file.toString(),
                "DOCKER_CONFIG",
                work.resolve("no-docker").toString());
    }

    private static final Map<String, String> NO_LOGIN =
            Map.of("REGISTRY_AUTH_FILE", "/nonexistent/auth.json", "DOCKER_CONFIG", "/nonexistent/docker");

    @Test
    void aTokenRegistryGivesAPullTokenForTheLoginInAuthJson() throws Exception {
        Cli.Result anonymous = cli.run(NO_LOGIN, new byte[0], "image", "pull", token.host() + "/test/img:v1");
        assertThat(anonymous.exit()).isEqualTo(125);
        assertThat(anonymous.err())
                .contains("refused an anonymous pull")
                .contains("podman login " + token.host())
                .doesNotContain("Exception");

        Cli.Result wrong = cli.run(
                loginFile(token.host(), "alice", "nope"), new byte[0], "image", "pull", token.host() + "/test/img:v1");
        assertThat(wrong.exit()).isEqualTo(125);
        assertThat(wrong.err()).contains("refused the login for user 'alice'");

        tokenRequests.clear();
        Cli.Result ok = cli.run(
                loginFile(token.host(), "alice", "s3cret"),
                new byte[0],
                "image",
                "pull",
                token.host() + "/test/img:v1");
        assertThat(ok.exit()).as(ok.err()).isZero();
        assertThat(tokenRequests)
                .anyMatch(q -> q.contains("scope=repository%3Atest%2Fimg%3Apull")
                        && q.contains("service=" + SERVICE)
                        && q.endsWith("auth=true"));
        // one token serves the whole pull (manifest, config, layers)
        assertThat(tokenRequests).hasSize(1);
    }

    /**
     * A Dockerfile FROM an image in the token-auth registry: the build pulls it with the login,
     * as {@code image pull} does, and refuses in words without one. Its COPY steps' {@code
     * --chmod} and {@code --chown} are in the layer the build stored.
     */
    @Test
    void aBuildFromATokenRegistryImagePullsItWithTheLogin() throws Exception {
        Path context = Files.createDirectories(work.resolve("build-context"));
        Files.writeString(context.resolve("secret.txt"), "only the owner\n");
        Files.writeString(context.resolve("tool.sh"), "#!/bin/sh\necho tool\n");
        String from = token.host() + "/test/img:v1";
        Files.writeString(
                context.resolve("Dockerfile"),
                "FROM " + from + "\nCOPY --chmod=0600 secret.txt /secret.txt\n"
                        + "COPY --chown=12:34 --chmod=750 tool.sh /tool.sh\n");

        // a store of its own: the other tests' pulls must not leave the base image in it
        AirlockDirs buildDirs = TestImages.privateStore(work.resolve("build-store"));
        Cli cli = new Cli(buildDirs);
        try {
            buildFromTokenRegistry(cli, buildDirs, context, from);
        } finally {
            dev.airlock.testing.TestHost.cleanUp(buildDirs);
        }
    }

    private void buildFromTokenRegistry(Cli cli, AirlockDirs dirs, Path context, String from) throws Exception {
        Cli.Result anonymous =
                cli.run(NO_LOGIN, new byte[0], "image", "build", "-t", "built/from-token:1", context.toString());
        assertThat(anonymous.exit()).isNotZero();
        assertThat(anonymous.err())
                .contains("FROM " + from)
                .contains("refused an anonymous pull")
                .doesNotContain("Exception");

        tokenRequests.clear();
        Cli.Result ok = cli.run(
                loginFile(token.host(), "alice", "s3cret"),
                new byte[0],
                "image",
                "build",
                "-t",
                "built/from-token:1",
                context.toString());
        assertThat(ok.exit()).as(ok.err()).isZero();
        assertThat(ok.err()).contains("is not in the store: pulling it");
        assertThat(tokenRequests).anyMatch(q -> q.endsWith("auth=true"));

        tools.jackson.databind.JsonNode inspect = tools.jackson.databind.json.JsonMapper.builder()
                .build()
                .readTree(cli.run("image", "inspect", "built/from-token:1").out());
        tools.jackson.databind.JsonNode layers = inspect.path("source").path("layers");
        String listing = "";
        for (int i = layers.size() - 2; i < layers.size(); i++) {
            String digest = layers.get(i).path("digest").asString();
            Path layer = dirs.images().resolve("content/sha256/" + digest.substring("sha256:".length()));
            listing += HostCommand.check(List.of("tar", "--numeric-owner", "-tvf", layer.toString()));
        }
        assertThat(listing).containsPattern("-rw------- 0/0 .* secret.txt");
        assertThat(listing).containsPattern("-rwxr-x--- 12/34 .* tool.sh");

        Files.writeString(context.resolve("Dockerfile"), "FROM " + from + "\nCOPY --chmod=u+x tool.sh /tool.sh\n");
        Cli.Result symbolic = cli.run(
                loginFile(token.host(), "alice", "s3cret"),
                new byte[0],
                "image",
                "build",
                "-t",
                "built/from-token:2",
                context.toString());
        assertThat(symbolic.exit()).isNotZero();
        assertThat(symbolic.err()).contains("--chmod=u+x: give an octal mode");
    }

    @Test
    void dockerConfigJsonIsReadToo() throws Exception {
        Path docker = Files.createDirectories(work.resolve("docker-config"));
        String auth = Base64.getEncoder().encodeToString("alice:s3cret".getBytes(StandardCharsets.UTF_8));
        Files.writeString(
                docker.resolve("config.json"),
                "{\"auths\":{\"http://" + token.host() + "/v1/\":{\"auth\":\"" + auth + "\"}}}");
        Cli.Result ok = cli.run(
                Map.of("REGISTRY_AUTH_FILE", "/nonexistent/auth.json", "DOCKER_CONFIG", docker.toString()),
                new byte[0],
                "image",
                "pull",
                "-t",
                "from-docker-config",
                token.host() + "/test/img:v1");
        assertThat(ok.exit()).as(ok.err()).isZero();
    }

    @Test
    void anHtpasswdRegistryTakesBasicAuth() throws Exception {
        Cli.Result anonymous = cli.run(NO_LOGIN, new byte[0], "image", "pull", basic.host() + "/test/img:v1");
        assertThat(anonymous.exit()).isEqualTo(125);
        assertThat(anonymous.err()).contains("needs a login").contains("basic auth");
        Cli.Result ok = cli.run(
                loginFile(basic.host(), "alice", "s3cret"),
                new byte[0],
                "image",
                "pull",
                basic.host() + "/test/img:v1");
        assertThat(ok.exit()).as(ok.err()).isZero();
        assertThat(cli.run("image", "ls").out()).contains(basic.host() + "/test/img:v1");
    }
}
