package dev.airlock.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProjectImageTest {
    @TempDir
    Path dir;

    @Test
    void readsAUserImageOnTopOfABuiltIn() throws Exception {
        Path toml = Files.writeString(dir.resolve("airlock.toml"), """
                [image]
                name = "myproj"
                from = "python"
                packages = ["jq"]
                run = ["echo hi > /etc/motd"]
                """);
        ImageSpec spec = ProjectImage.read(toml);
        assertThat(spec.name()).isEqualTo("myproj");
        assertThat(spec.packages()).contains("python3", "git", "jq");
        assertThat(spec.commands()).last().isEqualTo("echo hi > /etc/motd");
    }

    @Test
    void badFilesGetClearErrors() throws Exception {
        Path toml = dir.resolve("airlock.toml");
        Files.writeString(toml, "[image]\nfrom = \"alpine\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("unknown base image 'alpine'");
        Files.writeString(toml, "[image]\nfrm = \"base\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("unknown key 'frm'");
        Files.writeString(toml, "[image\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("is not valid TOML");
        Files.writeString(toml, "[image]\npackages = \"jq\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("must be a list of strings");
    }
}
