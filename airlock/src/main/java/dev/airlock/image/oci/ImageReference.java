package dev.airlock.image.oci;

import dev.airlock.image.ImageException;
import java.util.Optional;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * A registry image reference, {@code [REGISTRY/]REPOSITORY[:TAG][@DIGEST]}, with Docker's
 * defaults: no registry means Docker Hub, a one-part repository there means {@code library/},
 * no tag and no digest means {@code latest}. Grammar from the distribution project's reference
 * rules (lowercase path components separated by {@code .}, {@code _}, {@code __} or dashes).
 */
public record ImageReference(
        String registry,
        String repository,
        @Nullable String tag,
        @Nullable String digest) {
    public static final String DOCKER_HUB = "docker.io";
    private static final Pattern COMPONENT = Pattern.compile("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
    private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    private static final Pattern HOST = Pattern.compile(
            "(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                    + "|\\[[0-9A-Fa-f:.]+])(?::[0-9]{1,5})?");

    public static ImageReference parse(String text) {
        return tryParse(text)
                .orElseThrow(() -> new ImageException("'" + text + "' is not an image reference; use"
                        + " [REGISTRY[:PORT]/]REPOSITORY[:TAG][@sha256:DIGEST], e.g. debian:bookworm or"
                        + " 127.0.0.1:5000/team/tool:1.2"));
    }

    public static Optional<ImageReference> tryParse(String text) {
        if (text.isEmpty() || text.length() > 512) {
            return Optional.empty();
        }
        String rest = text;
        String digest = null;
        int at = rest.indexOf('@');
        if (at >= 0) {
            digest = rest.substring(at + 1);
            rest = rest.substring(0, at);
            if (!Digests.isValid(digest)) {
                return Optional.empty();
            }
        }
        String tag = null;
        int slash = rest.lastIndexOf('/');
        int colon = rest.lastIndexOf(':');
        if (colon > slash) {
            tag = rest.substring(colon + 1);
            rest = rest.substring(0, colon);
            if (!TAG.matcher(tag).matches()) {
                return Optional.empty();
            }
        }
        String registry = DOCKER_HUB;
        int first = rest.indexOf('/');
        if (first > 0) {
            String head = rest.substring(0, first);
            if (head.contains(".") || head.contains(":") || head.equals("localhost") || head.startsWith("[")) {
                if (!HOST.matcher(head).matches()) {
                    return Optional.empty();
                }
                registry = head;
                rest = rest.substring(first + 1);
            }
        }
        if (registry.equals("index.docker.io") || registry.equals("registry-1.docker.io")) {
            registry = DOCKER_HUB;
        }
        for (String part : rest.split("/", -1)) {
            if (!COMPONENT.matcher(part).matches()) {
                return Optional.empty();
            }
        }
        if (registry.equals(DOCKER_HUB) && !rest.contains("/")) {
            rest = "library/" + rest;
        }
        if (tag == null && digest == null) {
            tag = "latest";
        }
        return Optional.of(new ImageReference(registry, rest, tag, digest));
    }

    /** The host the registry API is served on (Docker Hub's differs from its name). */
    public String apiHost() {
        return registry.equals(DOCKER_HUB) ? "registry-1.docker.io" : registry;
    }

    /** What the manifest is fetched by: the digest when there is one, else the tag. */
    public String manifestReference() {
        return digest != null ? digest : java.util.Objects.requireNonNull(tag);
    }

    /**
     * The short form people type and {@code image ls} shows: Docker Hub's registry and
     * {@code library/} left out ({@code debian:bookworm}).
     */
    public String familiar() {
        String repo = repository;
        if (registry.equals(DOCKER_HUB)) {
            repo = repo.startsWith("library/") ? repo.substring("library/".length()) : repo;
        } else {
            repo = registry + "/" + repo;
        }
        StringBuilder sb = new StringBuilder(repo);
        if (tag != null) {
            sb.append(':').append(tag);
        }
        if (digest != null) {
            sb.append('@').append(digest);
        }
        return sb.toString();
    }

    @Override
    public String toString() {
        return registry + "/" + repository + (tag != null ? ":" + tag : "") + (digest != null ? "@" + digest : "");
    }
}
