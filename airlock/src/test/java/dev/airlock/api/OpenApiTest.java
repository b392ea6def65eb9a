package dev.airlock.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.net.InferenceConfig;
import dev.airlock.net.NetworkSpec;
import dev.airlock.net.Secret;
import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxStats;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ExecRequest;
import dev.airlock.service.ExecResult;
import dev.airlock.service.ForkSpec;
import dev.airlock.service.InferenceUsage;
import dev.airlock.service.PolicyChange;
import dev.airlock.service.PullResult;
import dev.airlock.service.PullSpec;
import dev.airlock.service.RemovedImage;
import dev.airlock.service.SandboxEvent;
import dev.airlock.service.SandboxInfo;
import dev.airlock.service.WorkspaceSpec;
import dev.airlock.wire.ApiError;
import dev.airlock.wire.ExecEvent;
import dev.airlock.wire.ExecInput;
import dev.airlock.wire.ExecStart;
import dev.airlock.wire.FileInfo;
import dev.airlock.wire.Health;
import dev.airlock.wire.MakeDirRequest;
import dev.airlock.wire.MoveRequest;
import dev.airlock.wire.PortRequest;
import dev.airlock.wire.TtySize;
import dev.airlock.wire.WorkspaceEvent;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import tools.jackson.databind.JsonNode;
import tools.jackson.dataformat.yaml.YAMLMapper;

/** docs/openapi.yaml describes exactly the routes the daemon serves, and the fields its answers carry. */
class OpenApiTest {
    private static final JsonNode DOC = new YAMLMapper()
            .readTree(Path.of(System.getProperty("airlock.home"), "docs", "openapi.yaml")
                    .toFile());

    /** The API's types, by the schema name that describes them. */
    private static final Map<String, Class<? extends Record>> TYPES = Map.ofEntries(
            Map.entry("ApiError", ApiError.class),
            Map.entry("Health", Health.class),
            Map.entry("Resources", Resources.class),
            Map.entry("SandboxInfo", SandboxInfo.class),
            Map.entry("CreateSpec", CreateSpec.class),
            Map.entry("Secret", Secret.class),
            Map.entry("InferenceConfig", InferenceConfig.class),
            Map.entry("WorkspaceSpec", WorkspaceSpec.class),
            Map.entry("WorkspaceEvent", WorkspaceEvent.class),
            Map.entry("RemovedImage", RemovedImage.class),
            Map.entry("ImageBuildSpec", dev.airlock.service.ImageBuildSpec.class),
            Map.entry("ImagePullSpec", dev.airlock.service.ImagePullSpec.class),
            Map.entry("ImageInfo", dev.airlock.service.ImageInfo.class),
            Map.entry("ImageEvent", dev.airlock.wire.ImageEvent.class),
            Map.entry("ForkSpec", ForkSpec.class),
            Map.entry("SandboxStats", SandboxStats.class),
            Map.entry("ExecRequest", ExecRequest.class),
            Map.entry("ExecResult", ExecResult.class),
            Map.entry("NetworkSpec", NetworkSpec.class),
            Map.entry("PolicyChange", PolicyChange.class),
            Map.entry("PortRequest", PortRequest.class),
            Map.entry("InferenceUsage", InferenceUsage.class),
            Map.entry("PullSpec", PullSpec.class),
            Map.entry("PullResult", PullResult.class),
            Map.entry("FileInfo", FileInfo.class),
            Map.entry("MakeDirRequest", MakeDirRequest.class),
            Map.entry("MoveRequest", MoveRequest.class),
            Map.entry("TtySize", TtySize.class),
            Map.entry("ExecStart", ExecStart.class),
            Map.entry("ExecInput", ExecInput.class),
            Map.entry("ExecEvent", ExecEvent.class),
            Map.entry("SandboxEvent", SandboxEvent.class));

    @Test
    void everyRouteIsDescribedAndEveryDescribedRouteIsServed() {
        Set<String> served = new TreeSet<>();
        for (HttpApi.Route r : HttpApi.ROUTES) {
            served.add(r.method() + " " + r.template());
        }
        Set<String> described = new TreeSet<>();
        for (Map.Entry<String, JsonNode> path : DOC.path("paths").properties()) {
            for (String method : path.getValue().propertyNames()) {
                if (!method.equals("parameters")) {
                    described.add(method.toUpperCase(Locale.ROOT) + " " + path.getKey());
                }
            }
        }
        assertThat(described).isEqualTo(served);
    }

    @Test
    void everySchemaListsTheFieldsOfItsType() {
        JsonNode schemas = DOC.path("components").path("schemas");
        assertThat(new TreeSet<>(schemas.propertyNames())).isEqualTo(new TreeSet<>(TYPES.keySet()));
        TYPES.forEach((name, type) -> {
            Set<String> fields = new HashSet<>();
            Arrays.stream(type.getRecordComponents()).forEach(c -> fields.add(c.getName()));
            assertThat(new TreeSet<>(schemas.path(name).path("properties").propertyNames()))
                    .as("schema %s against %s", name, type.getName())
                    .isEqualTo(new TreeSet<>(fields));
        });
    }

    @Test
    void everyReferenceResolves() {
        Set<String> refs = new TreeSet<>();
        collectRefs(DOC, refs);
        for (String ref : refs) {
            assertThat(ref).startsWith("#/");
            JsonNode target = DOC;
            for (String part : ref.substring(2).split("/")) {
                target = target.path(part);
            }
            assertThat(target.isMissingNode()).as("%s resolves", ref).isFalse();
        }
    }

    private static void collectRefs(JsonNode node, Set<String> out) {
        if (node.isObject()) {
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                if (e.getKey().equals("$ref")) {
                    out.add(e.getValue().asString());
                } else {
                    collectRefs(e.getValue(), out);
                }
            }
        } else if (node.isArray()) {
            node.forEach(n -> collectRefs(n, out));
        }
    }
}
