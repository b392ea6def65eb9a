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
        ProjectImage image = ProjectImage.read(toml);
        assertThat(image.name()).isEqualTo("myproj");
        assertThat(image.packages().packages()).contains("python3", "git", "jq");
        // the recipe's own commands are not part of the host-side package build
        assertThat(image.packages().commands()).doesNotContain("echo hi > /etc/motd");
        assertThat(image.run()).containsExactly("echo hi > /etc/motd");
        assertThat(image.dockerfile()).isNull();
    }

    @Test
    void theCommandsBecomeRunStepsOfADockerfile() throws Exception {
        Path toml = Files.writeString(dir.resolve("airlock.toml"), """
                [image]
                run = ["echo 'a \\\\' > /x", "printf 'two\\nlines' > /y"]
                """);
        String text = ProjectImage.read(toml).dockerfile("0123abcd");
        assertThat(text)
                .isEqualTo("FROM 0123abcd\n"
                        + "RUN [\"/bin/sh\",\"-ec\",\"echo 'a \\\\' > /x\"]\n"
                        + "RUN [\"/bin/sh\",\"-ec\",\"printf 'two\\nlines' > /y\"]\n");
        var parsed = dev.airlock.build.Dockerfile.parse(text, "airlock.toml");
        assertThat(parsed.instructions()).hasSize(3);
    }

    @Test
    void aDockerfileIsNamedRelativeToTheRepositoryAndStaysInside() throws Exception {
        Path repo = Files.createDirectories(dir.resolve("repo"));
        Files.createDirectories(repo.resolve("docker"));
        Files.writeString(repo.resolve("docker/dev.Dockerfile"), "FROM base\n");
        Files.writeString(dir.resolve("outside.Dockerfile"), "FROM base\n");
        Files.createSymbolicLink(repo.resolve("link.Dockerfile"), dir.resolve("outside.Dockerfile"));
        Path toml = repo.resolve("airlock.toml");

        Files.writeString(toml, "[image]\nname = \"dev\"\ndockerfile = \"docker/dev.Dockerfile\"\n");
        ProjectImage image = ProjectImage.read(toml);
        assertThat(image.dockerfile()).isEqualTo(repo.toRealPath().resolve("docker/dev.Dockerfile"));
        assertThat(image.directory()).isEqualTo(repo.toAbsolutePath());

        Files.writeString(toml, "[image]\ndockerfile = \"../outside.Dockerfile\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("leads outside the repository");
        Files.writeString(toml, "[image]\ndockerfile = \"" + dir.resolve("outside.Dockerfile") + "\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml))
                .hasMessageContaining("give a path relative to the repository");
        Files.writeString(toml, "[image]\ndockerfile = \"link.Dockerfile\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml))
                .hasMessageContaining("leads outside the repository")
                .hasMessageContaining("through a symlink");
        Files.writeString(toml, "[image]\ndockerfile = \"nope\"\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("no such file");
        Files.writeString(toml, "[image]\ndockerfile = \"docker/dev.Dockerfile\"\nrun = [\"true\"]\n");
        assertThatThrownBy(() -> ProjectImage.read(toml)).hasMessageContaining("both dockerfile and run");
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
