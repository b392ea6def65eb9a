package dev.airlock.image.oci;

import dev.airlock.image.ImageConfig;
import dev.airlock.image.ImageException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Parses the JSON documents of an image (index, manifest, config) from untrusted bytes into
 * records, checking each field's type and form; whatever is malformed is one clear error.
 */
public final class OciDocuments {
    static final JsonMapper JSON = JsonMapper.builder().build();
    /** Manifests and indexes are small; a larger one is refused before it is parsed. */
    public static final int MAX_MANIFEST_BYTES = 4 << 20;

    public static final int MAX_CONFIG_BYTES = 8 << 20;

    private OciDocuments() {}

    /** An index (or Docker manifest list): the manifests per platform. */
    public record Index(List<Descriptor> manifests) {}

    /** An image manifest: its config and its layers, bottom first. */
    public record Manifest(String mediaType, Descriptor config, List<Descriptor> layers) {}

    /** The parts of the image config a sandbox needs. */
    public record Config(ImageConfig config, List<String> diffIds, Platform platform) {}

    /** The document's media type: its {@code mediaType} field, else the one the server declared. */
    public static String mediaType(byte[] body, String declared, String what) {
        JsonNode root = tree(body, what);
        String own = root.path("mediaType").asString("");
        if (!own.isEmpty()) {
            return own;
        }
        String d = declared.split(";", 2)[0].strip();
        if (!d.isEmpty() && !d.equals("application/json") && !d.equals("text/plain")) {
            return d;
        }
        // Neither says: an index has "manifests", a manifest has "config".
        if (root.has("manifests")) {
            return MediaTypes.OCI_INDEX;
        }
        if (root.has("config") && root.has("layers")) {
            return MediaTypes.OCI_MANIFEST;
        }
        if (root.path("schemaVersion").asInt(0) == 1) {
            return MediaTypes.DOCKER_SCHEMA1;
        }
        throw new ImageException(what + " is neither an image index nor an image manifest");
    }

    public static Index index(byte[] body, String what) {
        JsonNode root = tree(body, what);
        JsonNode list = root.path("manifests");
        if (!list.isArray()) {
            throw new ImageException(what + " is malformed: 'manifests' is not a list");
        }
        List<Descriptor> out = new ArrayList<>();
        for (JsonNode m : list) {
            out.add(descriptor(m, what));
        }
        return new Index(out);
    }

    public static Manifest manifest(byte[] body, String mediaType, String what) {
        JsonNode root = tree(body, what);
        if (root.path("schemaVersion").asInt(0) != 2) {
            throw new ImageException(what + " has schemaVersion " + root.path("schemaVersion")
                    + "; only schema 2 (Docker v2.2 / OCI) manifests are supported");
        }
        Descriptor config = descriptor(root.path("config"), what);
        JsonNode layers = root.path("layers");
        if (!layers.isArray()) {
            throw new ImageException(what + " is malformed: 'layers' is not a list");
        }
        List<Descriptor> out = new ArrayList<>();
        for (JsonNode l : layers) {
            Descriptor d = descriptor(l, what);
            if (!MediaTypes.LAYERS.contains(d.mediaType())) {
                throw new ImageException(what + " has a layer of media type '" + d.mediaType()
                        + "', which is not an image layer this Airlock can unpack (tar, tar+gzip, tar+zstd)");
            }
            out.add(d);
        }
        return new Manifest(mediaType, config, out);
    }

    public static Config config(byte[] body, String what) {
        JsonNode root = tree(body, what);
        JsonNode c = root.path("config");
        if (c.isMissingNode() || c.isNull()) {
            c = JSON.createObjectNode();
        }
        if (!c.isObject()) {
            throw new ImageException(what + " is malformed: 'config' is not an object");
        }
        Map<String, String> labels = new LinkedHashMap<>();
        JsonNode l = c.path("Labels");
        if (l.isObject()) {
            for (Map.Entry<String, JsonNode> e : l.properties()) {
                labels.put(e.getKey(), e.getValue().asString(""));
            }
        }
        List<String> ports = new ArrayList<>();
        JsonNode p = c.path("ExposedPorts");
        if (p.isObject()) {
            for (Map.Entry<String, JsonNode> e : p.properties()) {
                ports.add(e.getKey());
            }
        }
        JsonNode stop = c.path("StopSignal");
        ImageConfig config = new ImageConfig(
                strings(c.path("Env"), what, "Env"),
                text(c.path("WorkingDir"), what, "WorkingDir"),
                text(c.path("User"), what, "User"),
                strings(c.path("Entrypoint"), what, "Entrypoint"),
                strings(c.path("Cmd"), what, "Cmd"),
                labels,
                ports,
                stop.isString() ? stop.asString() : null);
        JsonNode rootfs = root.path("rootfs");
        List<String> diffIds = strings(rootfs.path("diff_ids"), what, "rootfs.diff_ids");
        for (String d : diffIds) {
            Digests.hex(d);
        }
        Platform platform = new Platform(
                root.path("os").asString("linux"),
                root.path("architecture").asString("amd64"),
                root.path("variant").asString(""));
        return new Config(config, diffIds, platform);
    }

    private static Descriptor descriptor(JsonNode d, String what) {
        if (!d.isObject() || !d.path("digest").isString() || !d.path("size").canConvertToLong()) {
            throw new ImageException(what + " is malformed: a descriptor lacks its digest or size");
        }
        String digest = d.path("digest").asString();
        Digests.hex(digest);
        long size = d.path("size").asLong();
        if (size < 0) {
            throw new ImageException(what + " is malformed: a descriptor has a negative size");
        }
        Platform platform = null;
        JsonNode p = d.path("platform");
        if (p.isObject()) {
            platform = new Platform(
                    p.path("os").asString(""),
                    p.path("architecture").asString(""),
                    p.path("variant").asString(""));
        }
        boolean attestation = d.path("annotations")
                .path("vnd.docker.reference.type")
                .asString("")
                .equals("attestation-manifest");
        return new Descriptor(d.path("mediaType").asString(""), digest, size, platform, attestation);
    }

    private static JsonNode tree(byte[] body, String what) {
        try {
            JsonNode n = JSON.readTree(body);
            if (n == null || !n.isObject()) {
                throw new ImageException(what + " is not a JSON object");
            }
            return n;
        } catch (JacksonException e) {
            throw new ImageException(what + " is not valid JSON: " + e.getOriginalMessage());
        }
    }

    private static String text(JsonNode n, String what, String field) {
        if (n.isMissingNode() || n.isNull()) {
            return "";
        }
        if (!n.isString()) {
            throw new ImageException(what + " is malformed: '" + field + "' is not a string");
        }
        return n.asString();
    }

    private static List<String> strings(JsonNode n, String what, String field) {
        if (n.isMissingNode() || n.isNull()) {
            return List.of();
        }
        if (!n.isArray()) {
            throw new ImageException(what + " is malformed: '" + field + "' is not a list of strings");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isString()) {
                throw new ImageException(what + " is malformed: '" + field + "' is not a list of strings");
            }
            out.add(e.asString());
        }
        return out;
    }

    /** The manifest in {@code index} for {@code platform}: no variant preferred when none is asked for. */
    public static Descriptor pick(Index index, Platform platform, String what) {
        Descriptor best = null;
        List<String> offered = new ArrayList<>();
        for (Descriptor d : index.manifests()) {
            if (d.attestation() || d.platform() == null) {
                continue;
            }
            Platform p = d.platform();
            offered.add(p.toString());
            if (platform.accepts(p)
                    && (best == null
                            || (p.variant().isEmpty()
                                    && best.platform() != null
                                    && !best.platform().variant().isEmpty()))) {
                best = d;
            }
        }
        if (best == null) {
            // An index whose entries say no platform (as some OCI layouts do): one manifest is the image.
            List<Descriptor> plain = index.manifests().stream()
                    .filter(d -> d.platform() == null && MediaTypes.isManifest(d.mediaType()))
                    .toList();
            if (plain.size() == 1) {
                return plain.get(0);
            }
            throw new ImageException(what + " has no image for " + platform
                    + (offered.isEmpty()
                            ? ""
                            : "; it offers "
                                    + String.join(
                                            ", ", offered.stream().distinct().toList()))
                    + "; choose one with --platform");
        }
        return best;
    }
}
