package dev.airlock.image.oci;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code airlock image build} of a Dockerfile that uses every instruction Airlock builds
 * (multi-stage with {@code COPY --from}, ARG with {@code --build-arg}, ENV, WORKDIR, USER,
 * LABEL, SHELL, RUN in both forms, COPY with {@code --chown} and a {@code .dockerignore}, ADD of
 * a local archive, ENTRYPOINT, CMD), FROM an image the test pushes to a loopback registry and
 * pulls. Its RUN steps execute in microVM sandboxes (the host's default); the result runs in a
 * microVM and in a container, where its files, owners, modes and config are checked. A second
 * build runs nothing; a changed context file runs again from its step on; bad Dockerfiles fail
 * with their line, a failing RUN with its output and status, and nothing is stored under the tag.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class DockerfileBuildTest {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    private static Path work;
    private static TestRegistry registry;
    private static AirlockDirs dirs;
    private static Cli cli;
    private static String base;
    private static Path context;
    private static String builtId = "";

    private static final String DOCKERFILE = String.join(
            "\n",
            "# syntax=docker/dockerfile:1",
            "ARG BASE",
            "FROM ${BASE} AS builder",
            "USER root",
            "ARG WHO=hi",
            "ENV STAGE=builder",
            "WORKDIR /src",
            "COPY gen.sh ./",
            "RUN sh gen.sh \"$WHO\" > /src/out.txt && rm -rf /data",
            "FROM ${BASE}",
            "USER 0",
            "SHELL [\"/bin/sh\", \"-ec\"]",
            "LABEL org.example.built=yes \"org.example.second\"=\"two words\"",
            "ENV APP_HOME=/app MODE=test",
            "WORKDIR $APP_HOME",
            "COPY --chown=1234:5678 app/ ./",
            "ADD files.tar.gz /opt/",
            "COPY --from=builder /src/out.txt /app/generated.txt",
            "RUN [\"/bin/sh\", \"-c\", \"echo exec-form > /app/exec.txt\"]",
            "RUN chmod 4755 /app/tool \\",
            "    && ln /app/tool /app/tool-link \\",
            "    && rm /tools/owned",
            "EXPOSE 8080",
            "USER airlock",
            "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
            "CMD [\"echo $MODE from $(pwd) as $(id -un)\"]",
            "");

    @BeforeAll
    static void setUp() throws Exception {
        TestHost.ready();
        work = Files.createTempDirectory("airlock-dockerfile-build");
        registry = TestRegistry.start(work, work.resolve("registry"), "");
        Path layout = TestImages.buildLayout(work, "v1");
        base = registry.host() + "/test/build-base:v1";
        TestImages.push(layout, "v1", base);
        dirs = TestHost.isolated("dockerfile-build");
        cli = new Cli(dirs);
        Cli.Result pull = cli.run("image", "pull", "--quiet", base);
        assertThat(pull.exit()).as(pull.err()).isZero();

        context = Files.createDirectories(work.resolve("context"));
        Files.writeString(context.resolve("Dockerfile"), DOCKERFILE);
        Files.writeString(context.resolve(".dockerignore"), "**/*.tmp\n");
        Files.writeString(context.resolve("gen.sh"), "echo \"generated $1\"\n");
        Path app = Files.createDirectories(context.resolve("app/sub"));
        Files.writeString(app.resolve("../hello.txt"), "hello v1\n");
        Files.writeString(app.resolve("deep.txt"), "deep\n");
        Files.writeString(context.resolve("app/secret.tmp"), "ignored\n");
        Files.writeString(context.resolve("app/tool"), "#!/bin/sh\necho tool\n");
        Path archived = Files.createDirectories(work.resolve("archived/inner"));
        Files.writeString(archived.resolve("from-archive.txt"), "unpacked by ADD\n");
        HostCommand.check(List.of(
                "tar",
                "-czf",
                context.resolve("files.tar.gz").toString(),
                "-C",
                work.resolve("archived").toString(),
                "inner"));
    }

    @AfterAll
    static void tearDown() {
        cli.run("image", "rm", "built/app:1");
        cli.run("image", "rm", base);
        TestHost.cleanUp(dirs);
        registry.close();
        HostFiles.deleteTree(work);
    }

    private static Cli.Result build(String... extra) {
        List<String> argv = new java.util.ArrayList<>(List.of(
                "image", "build", "-t", "built/app:1", "--build-arg", "BASE=" + base, "--build-arg", "WHO=hello"));
        argv.addAll(List.of(extra));
        argv.add(context.toString());
        return cli.run(argv.toArray(String[]::new));
    }

    @Test
    @Order(1)
    void buildsEveryInstructionWithRunStepsInSandboxes() throws Exception {
        Cli.Result r = build();
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("starting a build sandbox").contains("step 8/23: RUN sh gen.sh");
        builtId = r.out().strip().split(" ")[1];
        JsonNode inspect =
                JSON.readTree(cli.run("image", "inspect", "built/app:1").out());
        JsonNode config = inspect.path("config");
        assertThat(config.path("env").toString()).contains("APP_HOME=/app").contains("MODE=test");
        // the builder stage's ENV and the ARGs stay out of the image
        assertThat(config.path("env").toString()).doesNotContain("STAGE=").doesNotContain("WHO=");
        assertThat(config.path("workingDir").asString()).isEqualTo("/app");
        assertThat(config.path("user").asString()).isEqualTo("airlock");
        assertThat(config.path("entrypoint").toString()).isEqualTo("[\"/bin/sh\",\"-c\"]");
        assertThat(config.path("labels").path("org.example.built").asString()).isEqualTo("yes");
        assertThat(config.path("labels").path("org.example.second").asString()).isEqualTo("two words");
        assertThat(config.path("labels").path("org.example.purpose").asString()).isEqualTo("airlock-test");
        assertThat(config.path("exposedPorts").toString()).contains("8080/tcp");
        assertThat(inspect.path("source").path("kind").asString()).isEqualTo("build");
    }

    /** Files, owners and modes as a sandbox of the built image sees them, as root. */
    private static final String CHECK = "cat /app/hello.txt /app/sub/deep.txt /app/generated.txt /app/exec.txt"
            + " /opt/inner/from-archive.txt; stat -c '%a %u %g %h %n' /app/hello.txt /app/tool /app/tool-link;"
            + " test -e /app/secret.tmp || echo no-secret; test -e /tools/owned || echo no-owned; cat /data/keep";

    private static final String EXPECTED = String.join(
            "\n",
            "hello v1",
            "deep",
            "generated hello",
            "exec-form",
            "unpacked by ADD",
            "644 1234 5678 1 /app/hello.txt",
            "4755 1234 5678 2 /app/tool",
            "4755 1234 5678 2 /app/tool-link",
            "no-secret",
            "no-owned",
            "kept");

    @Test
    @Order(2)
    void theBuiltImageRunsInAMicrovm() {
        Cli.Result started = cli.run("run", "--rm", "built/app:1");
        assertThat(started.exit()).as(started.err()).isZero();
        assertThat(started.out()).isEqualTo("test from /app as airlock\n");
        Cli.Result files = cli.run("run", "--rm", "-u", "0", "--image", "built/app:1", "--", "sh", "-c", CHECK);
        assertThat(files.exit()).as(files.err()).isZero();
        assertThat(files.out().strip()).isEqualTo(EXPECTED);
    }

    @Test
    @Order(3)
    void theBuiltImageRunsInAContainer() {
        Cli.Result started = cli.run("run", "--rm", "--runtime", "container", "built/app:1");
        assertThat(started.exit()).as(started.err()).isZero();
        assertThat(started.out()).isEqualTo("test from /app as airlock\n");
        Cli.Result files = cli.run(
                "run", "--rm", "--runtime", "container", "-u", "0", "--image", "built/app:1", "--", "sh", "-c", CHECK);
        assertThat(files.exit()).as(files.err()).isZero();
        assertThat(files.out().strip()).isEqualTo(EXPECTED);
    }

    @Test
    @Order(4)
    void aSecondBuildRunsNothing() {
        Cli.Result r = build();
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).doesNotContain("starting a build sandbox").contains("RUN sh gen.sh \"$WHO\"");
        assertThat(r.err().lines().filter(l -> l.contains("(cached)"))).hasSize(9);
        assertThat(r.err()).contains("the image is unchanged");
        assertThat(r.out().strip().split(" ")[1]).isEqualTo(builtId);
    }

    @Test
    @Order(5)
    void aChangedContextFileRunsItsStepAndTheOnesAfterIt() throws Exception {
        Files.writeString(context.resolve("app/hello.txt"), "hello v2\n");
        Cli.Result r = build();
        assertThat(r.exit()).as(r.err()).isZero();
        List<String> cached =
                r.err().lines().filter(l -> l.contains("(cached)")).toList();
        // the builder stage's COPY and RUN and the WORKDIR before the changed COPY
        assertThat(cached).hasSize(4);
        assertThat(cached.getLast()).contains("/app (cached)");
        assertThat(r.err()).contains("step 19/23: RUN chmod 4755");
        assertThat(r.out().strip().split(" ")[1]).isNotEqualTo(builtId);
        Cli.Result cat =
                cli.run("run", "--rm", "--runtime", "container", "--image", "built/app:1", "--", "cat", "hello.txt");
        assertThat(cat.out()).isEqualTo("hello v2\n");
    }

    @Test
    @Order(6)
    void badDockerfilesFailWithTheirLineAndStoreNothing() throws Exception {
        Path bad = Files.createDirectories(work.resolve("bad"));
        Files.writeString(bad.resolve("present.txt"), "here\n");
        List<String> before = TestImages.storeFiles(dirs);

        Files.writeString(bad.resolve("Dockerfile"), "FROM " + base + "\nUSER root\nFROBNICATE now\n");
        Cli.Result unknown = cli.run("image", "build", "-t", "bad/one", bad.toString());
        assertThat(unknown.exit()).isNotZero();
        assertThat(unknown.err())
                .contains("Dockerfile:3: unknown instruction 'FROBNICATE'")
                .doesNotContain("Exception");

        Files.writeString(bad.resolve("Dockerfile"), "FROM " + base + "\nCOPY missing.txt /x\n");
        Cli.Result missing = cli.run("image", "build", "-t", "bad/one", bad.toString());
        assertThat(missing.exit()).isNotZero();
        assertThat(missing.err()).contains("Dockerfile:2: COPY: missing.txt does not exist in the build context");

        Files.writeString(bad.resolve("Dockerfile"), "FROM " + base + "\nCOPY ../../etc/passwd /x\n");
        Cli.Result escape = cli.run("image", "build", "-t", "bad/one", bad.toString());
        assertThat(escape.exit()).isNotZero();
        assertThat(escape.err()).contains("is outside the build context");

        // a base not in the store is pulled, as image pull would (the loopback registry: no other address)
        Files.writeString(bad.resolve("Dockerfile"), "FROM " + registry.host() + "/no/such/image:1\n");
        Cli.Result noImage = cli.run("image", "build", "-t", "bad/one", bad.toString());
        assertThat(noImage.exit()).isNotZero();
        assertThat(noImage.err())
                .contains("Dockerfile:1: FROM " + registry.host() + "/no/such/image:1")
                .contains("no image " + registry.host() + "/no/such/image:1")
                .doesNotContain("Exception");

        // a failing RUN, in a container sandbox this time: its output and exit status
        Files.writeString(
                bad.resolve("Dockerfile"),
                "FROM " + base + "\nUSER root\nRUN echo about to fail; echo to-stderr >&2; exit 3\n");
        Cli.Result fails = cli.run("image", "build", "--runtime", "container", "-t", "bad/one", bad.toString());
        assertThat(fails.exit()).isNotZero();
        assertThat(fails.err())
                .contains("Dockerfile:3: RUN failed with exit status 3")
                .contains("about to fail")
                .contains("to-stderr")
                .doesNotContain("Exception");

        assertThat(cli.run("image", "inspect", "bad/one").exit()).isNotZero();
        // the failed build's sandboxes are gone
        assertThat(cli.run("ps", "-a", "-q").out().strip()).isEmpty();
        assertThat(TestImages.storeFiles(dirs).stream()
                        .filter(f -> f.startsWith("refs") || f.startsWith("blobs"))
                        .toList())
                .isEqualTo(before.stream()
                        .filter(f -> f.startsWith("refs") || f.startsWith("blobs"))
                        .toList());
    }
}
