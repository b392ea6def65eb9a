package dev.airlock.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.sandbox.Resources;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.sandbox.SandboxState;
import dev.airlock.service.SandboxInfo;
import dev.airlock.wire.Json;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The client's lean reader reads exactly what the API's data-binding mapper writes. */
class SandboxInfoJsonTest {
    private static final SandboxInfo FULL = new SandboxInfo(
            "0123456789abcdef0123456789abcdef",
            "dev",
            "microvm",
            "a KVM or TCG virtual machine",
            "python",
            "03297a205ca0eee9c265a56b0aa85d321effa475a072c4ce15a3149f9c3e32a4",
            "tcg",
            new Resources(2, 1024, 8192, 512, Duration.ofMinutes(90).plusMillis(250)),
            Map.of("A", "1", "QUOTE", "\"x\" \\ \u00e9\u2028"),
            "/workspace",
            SandboxState.PAUSED,
            4242,
            Instant.parse("2026-12-03T08:17:32.553469111Z"),
            Instant.parse("2026-12-03T08:17:34Z"),
            "the VMM exited",
            "proxy",
            "template 0123abcd",
            "/home/me/src/project");

    private static final SandboxInfo SPARSE = new SandboxInfo(
            "fedcba9876543210fedcba9876543210",
            "box",
            "container",
            "namespaces",
            "base",
            "03",
            "none",
            Resources.DEFAULT,
            Map.of(),
            null,
            SandboxState.CREATED,
            0,
            Instant.parse("2026-01-01T00:00:00Z"),
            null,
            null,
            "none",
            "cold",
            null);

    @Test
    void readsWhatTheMapperWrites() {
        for (SandboxInfo s : List.of(FULL, SPARSE)) {
            assertThat(SandboxInfoJson.read(Json.MAPPER.writeValueAsBytes(s))).isEqualTo(s);
            assertThat(SandboxInfoJson.read(Json.MAPPER.writeValueAsString(s))).isEqualTo(s);
        }
        assertThat(SandboxInfoJson.readList(Json.MAPPER.writeValueAsBytes(List.of(FULL, SPARSE))))
                .containsExactly(FULL, SPARSE);
        assertThat(SandboxInfoJson.readList("[]".getBytes(StandardCharsets.UTF_8)))
                .isEmpty();
    }

    @Test
    void skipsFieldsOfANewerDaemon() {
        String json = Json.MAPPER.writeValueAsString(SPARSE);
        String newer = "{\"future\":{\"a\":[1,{\"b\":null}],\"c\":\"d\"},\"more\":[true,2.5],"
                + json.substring(1, json.length() - 1)
                + ",\"resources2\":{\"cpus\":9}}";
        assertThat(SandboxInfoJson.read(newer)).isEqualTo(SPARSE);
    }

    @Test
    void aBrokenAnswerIsAClearError() {
        String json = Json.MAPPER.writeValueAsString(SPARSE);
        assertThatThrownBy(() -> SandboxInfoJson.read(json.replace("\"name\":\"box\",", "")))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("lacks the sandbox's 'name'");
        assertThatThrownBy(() -> SandboxInfoJson.read(json.replace("CREATED", "EXPLODED")))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("unknown sandbox state 'EXPLODED'");
        assertThatThrownBy(() -> SandboxInfoJson.read(json.substring(0, json.length() / 2)))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("not a sandbox's JSON");
        assertThatThrownBy(() -> SandboxInfoJson.readList(json.getBytes(StandardCharsets.UTF_8)))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("a list of sandboxes");
    }
}
