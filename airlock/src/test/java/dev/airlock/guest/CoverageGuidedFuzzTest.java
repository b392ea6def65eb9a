package dev.airlock.guest;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The two coverage-guided fuzzers, each run for a bounded time over its corpus kept in the
 * repository: libFuzzer on the agent's frame decoding and request handling ({@code
 * guest/fuzz/agent_fuzz.c}, built with clang and ASan/UBSan) and Jazzer on the host's decoding of
 * agent bytes ({@link InboundFuzzTarget}). A finding fails the test with the path of its input.
 *
 * <p>Each runs {@code AIRLOCK_FUZZ_SECONDS} seconds (default 60), the two at the same time (one
 * core each); set it higher to fuzz longer by hand. New interesting inputs go to {@code
 * airlock/target/fuzz/}, not into the kept corpus.
 */
@Timeout(value = 30, unit = TimeUnit.MINUTES)
class CoverageGuidedFuzzTest {
    private static final Path HOME = Path.of(System.getProperty("airlock.home", ".."));
    private static final Path AGENT_CORPUS = HOME.resolve("guest/fuzz/corpus");
    private static final Path HOST_CORPUS = HOME.resolve("airlock/src/test/fuzz/inbound-corpus");
    private static final Path WORK = HOME.resolve("airlock/target/fuzz");

    // Jazzer's bug detectors for injection, deserialization and the like: the decoders run no
    // queries, commands or reflection, and loading these hooks costs 10-15 s of each run.
    private static final List<String> UNNEEDED_DETECTORS = List.of(
            "BigDecimal",
            "ClojureLangHooks",
            "Deserialization",
            "ExpressionLanguageInjection",
            "FilePathTraversal",
            "LdapInjection",
            "NamingContextLookup",
            "OsCommandInjection",
            "ReflectiveCall",
            "RegexInjection",
            "RegexRoadblocks",
            "ScriptEngineInjection",
            "ServerSideRequestForgery",
            "SqlInjection",
            "TemplateInjection",
            "UnsafeSanitizer",
            "XPathInjection",
            "XmlParserSsrfGuidance");

    private static int seconds() {
        String value = System.getenv("AIRLOCK_FUZZ_SECONDS");
        return value == null || value.isBlank() ? 60 : Integer.parseInt(value.trim());
    }

    /** The kept inputs, replayed without the fuzzer: fast, and the regression check for past findings. */
    @Test
    void keptHostCorpusPasses() throws IOException {
        List<Path> inputs = corpus(HOST_CORPUS);
        assertThat(inputs).as("inputs in %s", HOST_CORPUS).hasSizeGreaterThan(10);
        for (Path input : inputs) {
            try {
                InboundFuzzTarget.fuzzerTestOneInput(Files.readAllBytes(input));
            } catch (AssertionError e) {
                throw new AssertionError("kept input " + input + ": " + e.getMessage(), e);
            }
        }
    }

    /** The agent's fuzzer runs in the background while the host's runs in the foreground. */
    private static @Nullable Fuzzing agentFuzzing;

    private static @Nullable String agentBuildFailure;

    @BeforeAll
    static void startAgentFuzzer() throws Exception {
        Path build = WORK.resolve("agent-build");
        Path buildLog = Files.createDirectories(WORK).resolve("agent-build.log");
        Process make = new ProcessBuilder(
                        "make", "-s", "-C", HOME.resolve("guest").toString(), "FUZZOUT=" + build, "fuzz")
                .redirectErrorStream(true)
                .redirectOutput(buildLog.toFile())
                .start();
        if (!make.waitFor(5, TimeUnit.MINUTES) || make.exitValue() != 0) {
            make.destroyForcibly();
            agentBuildFailure = "building the agent fuzzer failed (it needs clang and libclang-rt-dev from"
                    + " scripts/install-packages.sh):\n" + Files.readString(buildLog);
            return;
        }
        Path crashes = fresh(WORK.resolve("agent-crashes"));
        Path generated = Files.createDirectories(WORK.resolve("agent-corpus"));
        agentFuzzing = Fuzzing.start(
                "libFuzzer (agent)",
                List.of(
                        build.resolve("agent-fuzz").toString(),
                        "-artifact_prefix=" + crashes + "/",
                        "-max_total_time=" + seconds(),
                        "-timeout=10",
                        "-print_final_stats=1",
                        generated.toString(),
                        AGENT_CORPUS.toString()),
                WORK.resolve("agent.log"),
                crashes,
                build.resolve("agent-fuzz") + " INPUT");
    }

    @AfterAll
    static void stopAgentFuzzer() {
        if (agentFuzzing != null) {
            agentFuzzing.process().destroyForcibly();
        }
    }

    @Test
    void agentSurvivesLibFuzzer() throws Exception {
        if (agentBuildFailure != null) {
            throw new AssertionError(agentBuildFailure);
        }
        Objects.requireNonNull(agentFuzzing).finish();
    }

    @Test
    void hostDecodingSurvivesJazzer() throws Exception {
        Path crashes = fresh(WORK.resolve("inbound-crashes"));
        Path generated = Files.createDirectories(WORK.resolve("inbound-corpus"));
        Fuzzing.start(
                        "Jazzer (host)",
                        List.of(
                                Path.of(System.getProperty("java.home"), "bin", "java")
                                        .toString(),
                                "-Xmx1g",
                                "-XX:+EnableDynamicAgentLoading",
                                "--enable-native-access=ALL-UNNAMED",
                                "-cp",
                                System.getProperty("java.class.path"),
                                "com.code_intelligence.jazzer.Jazzer",
                                "--target_class=" + InboundFuzzTarget.class.getName(),
                                "--instrumentation_includes=dev.airlock.guest.**",
                                "--disabled_hooks="
                                        + String.join(
                                                ":",
                                                UNNEEDED_DETECTORS.stream()
                                                        .map(name -> "com.code_intelligence.jazzer.sanitizers." + name)
                                                        .toList()),
                                "--reproducer_path=" + crashes,
                                "-artifact_prefix=" + crashes + "/",
                                "-max_total_time=" + seconds(),
                                "-timeout=120",
                                "-rss_limit_mb=4096",
                                "-print_final_stats=1",
                                generated.toString(),
                                HOST_CORPUS.toString()),
                        WORK.resolve("inbound.log"),
                        crashes,
                        "the input as " + InboundFuzzTarget.class.getSimpleName() + ".fuzzerTestOneInput(bytes), or the"
                                + " Crash_*.java Jazzer wrote next to it")
                .finish();
    }

    /** One fuzzer process, its log, and where it writes findings. */
    private record Fuzzing(String name, Process process, Path log, Path crashes, String reproduce, long started) {
        static Fuzzing start(String name, List<String> command, Path log, Path crashes, String reproduce)
                throws IOException {
            long started = System.nanoTime();
            Process process = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start();
            return new Fuzzing(name, process, log, crashes, reproduce, started);
        }

        /** Waits for the run to end; fails with the inputs it found, if any. */
        void finish() throws Exception {
            if (!process.waitFor(seconds() + 300L, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new AssertionError(name + " did not stop after " + seconds() + " s; log: " + log);
            }
            String output = Files.readString(log, StandardCharsets.ISO_8859_1);
            List<Path> findings = corpus(crashes);
            Duration took = Duration.ofNanos(System.nanoTime() - started);
            System.out.println(name + ": exit " + process.exitValue() + " after " + took.toSeconds() + " s; "
                    + lines(
                            output,
                            "stat::number_of_executed_units",
                            "stat::average_exec_per_sec",
                            "stat::new_units_added"));
            if (process.exitValue() != 0 || !findings.isEmpty()) {
                throw new AssertionError(name + " found a problem (exit " + process.exitValue() + ").\nInputs: "
                        + findings + "\nReproduce with: " + reproduce + ". Once fixed, keep the input in the"
                        + " corpus as crash-<what> so later runs replay it.\nLog " + log + ", last lines:\n"
                        + tail(output, 60));
            }
        }
    }

    private static String lines(String output, String... prefixes) {
        List<String> found = new ArrayList<>();
        for (String line : output.split("\n")) {
            for (String prefix : prefixes) {
                if (line.startsWith(prefix)) {
                    found.add(line.substring("stat::".length()).replaceAll("\\s+", " "));
                }
            }
        }
        return String.join(", ", found);
    }

    private static String tail(String output, int count) {
        String[] lines = output.split("\n");
        return String.join("\n", java.util.Arrays.copyOfRange(lines, Math.max(0, lines.length - count), lines.length));
    }

    private static Path fresh(Path dir) throws IOException {
        if (Files.isDirectory(dir)) {
            for (Path file : corpus(dir)) {
                Files.delete(file);
            }
        }
        return Files.createDirectories(dir);
    }

    private static List<Path> corpus(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(Files::isRegularFile).sorted().toList();
        }
    }
}
