package dev.airlock.image.oci;

import dev.airlock.image.ImageException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * The registry logins {@code docker login} and {@code podman login} saved, read where those tools
 * keep them, first found wins: {@code $REGISTRY_AUTH_FILE}, else
 * {@code $XDG_RUNTIME_DIR/containers/auth.json}; then {@code ~/.config/containers/auth.json}; then
 * {@code $DOCKER_CONFIG/config.json} (default {@code ~/.docker}). An entry's key is a registry
 * ({@code host[:port]}, with or without a scheme) or, as podman allows, a registry and repository
 * prefix; the longest match wins. A credential helper ({@code credHelpers}, {@code credsStore}) is
 * asked when the file names one for the registry and holds no inline login.
 */
public final class RegistryCredentials {
    private static final int MAX_FILE_BYTES = 1 << 20;

    /** A login: user and password (or token). */
    public record Credential(String username, String secret) {
        @Override
        public String toString() {
            return "Credential[" + username + ", <secret>]";
        }
    }

    private final List<Path> files;

    public RegistryCredentials(List<Path> files) {
        this.files = List.copyOf(files);
    }

    public static RegistryCredentials fromEnvironment() {
        return from(System.getenv(), Path.of(System.getProperty("user.home")));
    }

    static RegistryCredentials from(Map<String, String> env, Path home) {
        List<Path> files = new ArrayList<>();
        String authFile = env.get("REGISTRY_AUTH_FILE");
        if (authFile != null && !authFile.isBlank()) {
            files.add(Path.of(authFile));
        } else {
            String xdg = env.get("XDG_RUNTIME_DIR");
            if (xdg != null && !xdg.isBlank()) {
                files.add(Path.of(xdg, "containers", "auth.json"));
            }
        }
        files.add(home.resolve(".config/containers/auth.json"));
        String docker = env.get("DOCKER_CONFIG");
        files.add((docker != null && !docker.isBlank() ? Path.of(docker) : home.resolve(".docker"))
                .resolve("config.json"));
        return new RegistryCredentials(files);
    }

    public List<Path> files() {
        return files;
    }

    /** The login for {@code registry} (and {@code repository}), if any file has one. */
    public Optional<Credential> find(String registry, String repository) {
        for (Path f : files) {
            Optional<Credential> c = fromFile(f, registry, repository);
            if (c.isPresent()) {
                return c;
            }
        }
        return Optional.empty();
    }

    private static Optional<Credential> fromFile(Path file, String registry, String repository) {
        if (!Files.isRegularFile(file)) {
            return Optional.empty();
        }
        JsonNode root;
        try {
            if (Files.size(file) > MAX_FILE_BYTES) {
                throw new ImageException(file + " is larger than 1 MiB; it is not a registry login file");
            }
            root = OciDocuments.JSON.readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new ImageException("cannot read registry logins from " + file + ": " + e.getMessage());
        } catch (JacksonException e) {
            throw new ImageException(file + " is not valid JSON (" + e.getOriginalMessage() + "); fix or remove it");
        }
        String full = registry + "/" + repository;
        JsonNode best = null;
        int bestLength = -1;
        for (Map.Entry<String, JsonNode> e : root.path("auths").properties()) {
            String key = normalizeKey(e.getKey());
            if ((key.equals(registry) || full.equals(key) || full.startsWith(key + "/")) && key.length() > bestLength) {
                best = e.getValue();
                bestLength = key.length();
            }
        }
        if (best != null) {
            Credential c = inline(best, file, registry);
            if (c != null) {
                return Optional.of(c);
            }
        }
        String helper = root.path("credHelpers").path(registry).asString("");
        if (helper.isEmpty()) {
            helper = root.path("credsStore").asString("");
        }
        if (!helper.isEmpty()) {
            return fromHelper(helper, registry);
        }
        return Optional.empty();
    }

    private static @Nullable Credential inline(JsonNode entry, Path file, String registry) {
        String auth = entry.path("auth").asString("");
        if (!auth.isEmpty()) {
            String decoded;
            try {
                decoded = new String(Base64.getDecoder().decode(auth.strip()), StandardCharsets.UTF_8);
            } catch (IllegalArgumentException e) {
                throw new ImageException("the login for " + registry + " in " + file + " is not valid base64");
            }
            int colon = decoded.indexOf(':');
            if (colon < 0) {
                throw new ImageException("the login for " + registry + " in " + file + " is not user:password");
            }
            return new Credential(decoded.substring(0, colon), decoded.substring(colon + 1));
        }
        String user = entry.path("username").asString("");
        String password = entry.path("password").asString("");
        if (!user.isEmpty()) {
            return new Credential(user, password);
        }
        return null;
    }

    /** Docker's keys may be URLs ({@code https://index.docker.io/v1/}); podman's are host[/path]. */
    static String normalizeKey(String key) {
        String k = key;
        int scheme = k.indexOf("://");
        if (scheme >= 0) {
            k = k.substring(scheme + 3);
            int slash = k.indexOf('/');
            if (slash >= 0) {
                k = k.substring(0, slash); // a URL names only a registry
            }
        }
        while (k.endsWith("/")) {
            k = k.substring(0, k.length() - 1);
        }
        if (k.equals("index.docker.io") || k.equals("registry-1.docker.io") || k.startsWith("index.docker.io/")) {
            k = ImageReference.DOCKER_HUB;
        }
        return k;
    }

    /** Asks {@code docker-credential-NAME get}, the credential-helper protocol Docker defines. */
    private static Optional<Credential> fromHelper(String helper, String registry) {
        if (!helper.matches("[A-Za-z0-9_.-]+")) {
            throw new ImageException("invalid credential helper name '" + helper + "'");
        }
        String server = registry.equals(ImageReference.DOCKER_HUB) ? "https://index.docker.io/v1/" : registry;
        try {
            Process p = new ProcessBuilder("docker-credential-" + helper, "get")
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            try (OutputStream in = p.getOutputStream()) {
                in.write(server.getBytes(StandardCharsets.UTF_8));
            }
            byte[] out;
            try (InputStream o = p.getInputStream()) {
                out = o.readNBytes(MAX_FILE_BYTES);
            }
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new ImageException("credential helper docker-credential-" + helper + " did not answer in 30 s");
            }
            if (p.exitValue() != 0) {
                return Optional.empty(); // "credentials not found in native keychain"
            }
            JsonNode r = OciDocuments.JSON.readTree(out);
            String user = r.path("Username").asString("");
            String secret = r.path("Secret").asString("");
            return secret.isEmpty() ? Optional.empty() : Optional.of(new Credential(user, secret));
        } catch (IOException e) {
            // the helper is not installed here: go on without a login, as an anonymous pull may work
            return Optional.empty();
        } catch (JacksonException e) {
            throw new ImageException("credential helper docker-credential-" + helper + " answered with invalid JSON");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ImageException("interrupted while asking a credential helper");
        }
    }
}
