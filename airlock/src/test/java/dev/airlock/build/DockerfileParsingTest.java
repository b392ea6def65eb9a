package dev.airlock.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The host-side parsing of a build: Dockerfile lines as Docker splits them, word expansion,
 * .dockerignore patterns, and the agent's walk records read with bounds (what a hostile guest
 * sends is refused, not believed).
 */
class DockerfileParsingTest {

    @Test
    void splitsInstructionsAsDockerDoes() {
        Dockerfile df = Dockerfile.parse(
                String.join(
                        "\n",
                        "# escape=`",
                        "# a comment",
                        "from busybox AS b",
                        "RUN echo one `",
                        "  # a comment inside a continuation",
                        "",
                        "  two",
                        "copy a b"),
                "Dockerfile");
        assertThat(df.escape()).isEqualTo('`');
        assertThat(df.instructions())
                .extracting(Dockerfile.Instruction::keyword)
                .containsExactly("FROM", "RUN", "COPY");
        assertThat(df.instructions().get(1).args()).isEqualTo("echo one   two");
        assertThat(df.instructions().get(1).line()).isEqualTo(4);
    }

    @Test
    void refusesUnknownAndUnsupportedInstructionsWithTheirLine() {
        assertThatThrownBy(() -> Dockerfile.parse("FROM x\nFROBNICATE y\n", "Dockerfile"))
                .isInstanceOf(BuildException.class)
                .hasMessageStartingWith("Dockerfile:2: unknown instruction 'FROBNICATE'");
        assertThatThrownBy(() -> Dockerfile.parse("FROM x\nONBUILD RUN y\n", "Dockerfile"))
                .hasMessageContaining("Dockerfile:2: ONBUILD is not supported");
        assertThatThrownBy(() -> Dockerfile.parse("# just a comment\n", "Dockerfile"))
                .hasMessageContaining("has no instructions");
    }

    @Test
    void expandsWordsAsDockerDoes() {
        ShellWords w = new ShellWords('\\', Map.of("A", "x y", "EMPTY", ""));
        assertThat(w.words("$A '$A' \"$A\" \\$A ${A}z ${EMPTY:-dflt} ${UNSET-d2} ${A:+set}"))
                // split on the written blanks, then expanded: a value's blanks do not split it again
                .containsExactly("x y", "$A", "x y", "$A", "x yz", "dflt", "d2", "set");
        assertThat(w.word("pre${A}post")).isEqualTo("prex ypost");
        assertThatThrownBy(() -> w.words("'open")).hasMessageContaining("unterminated single quote");
        assertThatThrownBy(() -> w.word("${A")).hasMessageContaining("missing '}'");
    }

    @Test
    void execFormIsAJsonArrayOfStringsElseTheShellForm() {
        assertThat(ImageBuilder.execForm("[\"/bin/sh\", \"-c\", \"echo hi\"]"))
                .isEqualTo(List.of("/bin/sh", "-c", "echo hi"));
        assertThat(ImageBuilder.execForm("[not json")).isNull();
        assertThat(ImageBuilder.execForm("[1, 2]")).isNull();
        assertThat(ImageBuilder.execForm("echo [x]")).isNull();
    }

    @Test
    void dockerignoreExcludesWithExceptions() {
        DockerIgnore ignore = DockerIgnore.parse("# comment\n**/*.tmp\nbuild\n!build/keep.txt\n");
        assertThat(ignore.excluded("a/b/c.tmp")).isTrue();
        assertThat(ignore.excluded("c.tmp")).isTrue();
        assertThat(ignore.excluded("build/out.o")).isTrue();
        assertThat(ignore.excluded("build/keep.txt")).isFalse();
        assertThat(ignore.excluded("src/main.c")).isFalse();
    }

    /** One walk record as the agent writes it. */
    private static void record(DataOutputStream out, String path, char type) throws IOException {
        byte[] name = path.getBytes(StandardCharsets.UTF_8);
        out.writeShort(name.length);
        out.write(name);
        out.writeByte(type);
        out.writeInt(type == 'd' ? 040755 : 0100644);
        out.writeInt(0);
        out.writeInt(0);
        out.writeLong(3);
        out.writeLong(1_000_000_000L);
        out.writeLong(1_000_000_000L);
        out.writeLong(42);
        out.writeInt(1);
    }

    private static TreeSnapshot read(String... pathsAndTypes) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        for (int i = 0; i < pathsAndTypes.length; i += 2) {
            record(out, pathsAndTypes[i], pathsAndTypes[i + 1].charAt(0));
        }
        return TreeSnapshot.read(new ByteArrayInputStream(bytes.toByteArray()));
    }

    @Test
    void aWalkIsReadAndDiffed() throws IOException {
        TreeSnapshot before = read("etc", "d", "etc/passwd", "f", "gone", "d", "gone/file", "f");
        TreeSnapshot after = read("etc", "d", "etc/passwd", "f", "new", "f");
        TreeSnapshot.Diff diff = before.diff(after);
        // the directory's whiteout covers what was below it
        assertThat(diff.deleted()).containsExactly("gone");
        assertThat(diff.changed()).containsExactly("new");
    }

    @Test
    void aHostileWalkIsRefused() {
        assertThatThrownBy(() -> read("../escape", "f")).hasMessageContaining("malformed");
        assertThatThrownBy(() -> read("/abs", "f")).hasMessageContaining("malformed");
        assertThatThrownBy(() -> read("a/../../b", "f")).hasMessageContaining("malformed");
        assertThatThrownBy(() -> read("a", "f", "a", "f")).hasMessageContaining("twice");
        assertThatThrownBy(() -> read("a", "x")).hasMessageContaining("type");
        // a record cut short
        assertThatThrownBy(() -> TreeSnapshot.read(new ByteArrayInputStream(new byte[] {0, 5, 'a', 'b'})))
                .isInstanceOf(IOException.class);
        // a length beyond any path
        assertThatThrownBy(() -> TreeSnapshot.read(new ByteArrayInputStream(new byte[] {(byte) 0xff, (byte) 0xff})))
                .hasMessageContaining("65535 bytes");
    }
}
