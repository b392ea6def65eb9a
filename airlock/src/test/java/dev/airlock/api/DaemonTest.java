package dev.airlock.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.daemon.Daemon;
import dev.airlock.host.AirlockDirs;
import dev.airlock.testing.Cli;
import dev.airlock.testing.TestHost;
import dev.airlock.wire.Json;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.client.ContentResponse;
import org.eclipse.jetty.client.HttpClient;
import org.eclipse.jetty.client.StringRequestContent;
import org.eclipse.jetty.http.HttpMethod;
import org.eclipse.jetty.io.Transport;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import tools.jackson.databind.JsonNode;

/**
 * The daemon as users and programs meet it: started on demand by the CLI, serving many clients
 * of one sandbox at once, answering a plain HTTP client, surviving kill -9 with the VMs and their
 * disks intact, and leaking nothing over many create/remove cycles.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class DaemonTest {
    /** microvm or container: the suite runs once per runtime. */
    abstract String runtime();

    private AirlockDirs dirs;
    private Cli cli;
    private HttpClient http;

    @BeforeAll
    void setUp() throws Exception {
        TestHost.ready();
        dirs = TestHost.isolated("daemon-" + runtime());
        cli = new Cli(dirs).inRuntime(runtime());
        http = new HttpClient();
        http.start();
        Cli.Result r = cli.run("run", "-d", "--name", "d1", "--memory", "256m");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().strip()).isEqualTo("d1");
    }

    @AfterAll
    void tearDown() throws Exception {
        cli.run("rm", "-f", "d1");
        daemonPid().ifPresent(pid -> ProcessHandle.of(pid).ifPresent(ProcessHandle::destroy));
        http.stop();
        TestHost.cleanUp(dirs);
    }

    java.util.Optional<Long> daemonPid() {
        try {
            return java.util.Optional.of(Long.parseLong(
                    Files.readString(dirs.runtime().resolve("airlockd.pid")).strip()));
        } catch (Exception e) {
            return java.util.Optional.empty();
        }
    }

    private ContentResponse call(HttpMethod method, String path, String body) throws Exception {
        var req = http.newRequest("http://localhost" + path)
                .transport(new Transport.TCPUnix(Daemon.socket(dirs)))
                .method(method)
                .timeout(5, TimeUnit.MINUTES);
        if (!body.isEmpty()) {
            req.body(new StringRequestContent("application/json", body, StandardCharsets.UTF_8));
        }
        return req.send();
    }

    @Test
    @Order(1)
    void manyClientsShareOneSandboxAtOnce() {
        List<CompletableFuture<Cli.Result>> runs = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int n = i;
            runs.add(CompletableFuture.supplyAsync(
                    () -> cli.run("exec", "d1", "--", "sh", "-c", "sleep 1; echo client-" + n)));
        }
        for (int i = 0; i < runs.size(); i++) {
            Cli.Result r = runs.get(i).join();
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.out()).isEqualTo("client-" + i + "\n");
        }
    }

    @Test
    @Order(2)
    void aPlainHttpClientUsesTheApi() throws Exception {
        ContentResponse list = call(HttpMethod.GET, "/v1/sandboxes", "");
        assertThat(list.getStatus()).isEqualTo(200);
        JsonNode arr = Json.MAPPER.readTree(list.getContentAsString());
        assertThat(arr.isArray()).isTrue();
        assertThat(arr.get(0).get("name").asString()).isEqualTo("d1");
        assertThat(arr.get(0).get("state").asString()).isEqualTo("RUNNING");

        ContentResponse exec = call(
                HttpMethod.POST,
                "/v1/sandboxes/d1/exec",
                "{\"cmd\":[\"sh\",\"-c\",\"cat; echo err >&2; exit 3\"],\"stdin\":\"hello\"}");
        assertThat(exec.getStatus()).isEqualTo(200);
        JsonNode res = Json.MAPPER.readTree(exec.getContentAsString());
        assertThat(res.get("exitCode").asInt()).isEqualTo(3);
        assertThat(res.get("stdout").asString()).isEqualTo("hello");
        assertThat(res.get("stderr").asString()).isEqualTo("err\n");

        ContentResponse missing = call(HttpMethod.GET, "/v1/sandboxes/nope", "");
        assertThat(missing.getStatus()).isEqualTo(404);
        assertThat(missing.getContentAsString()).contains("no such sandbox 'nope'");
        ContentResponse bad = call(HttpMethod.POST, "/v1/sandboxes", "{\"cpus\": 999}");
        assertThat(bad.getStatus()).isEqualTo(400);
        assertThat(bad.getContentAsString()).contains("impossible --cpus 999");
        ContentResponse conflict = call(HttpMethod.DELETE, "/v1/sandboxes/d1", "");
        assertThat(conflict.getStatus()).isEqualTo(409);
    }

    @Test
    @Order(2)
    void anHttpExecGetsTheSandboxsOwnEnvironmentAndWorkdir() throws Exception {
        ContentResponse created = call(
                HttpMethod.POST,
                "/v1/sandboxes",
                "{\"name\":\"envs\",\"memoryMiB\":256,\"runtime\":\"" + runtime()
                        + "\",\"env\":{\"SANDBOX_WIDE\":\"yes\",\"SHADOWED\":\"sandbox\"},\"workdir\":\"/tmp\"}");
        assertThat(created.getStatus()).as(created.getContentAsString()).isEqualTo(201);
        try {
            assertThat(call(HttpMethod.POST, "/v1/sandboxes/envs/start", "").getStatus())
                    .isEqualTo(200);
            ContentResponse exec = call(
                    HttpMethod.POST,
                    "/v1/sandboxes/envs/exec",
                    "{\"cmd\":[\"sh\",\"-c\",\"echo $SANDBOX_WIDE $SHADOWED; pwd\"],\"env\":{\"SHADOWED\":\"command\"}}");
            assertThat(exec.getStatus()).as(exec.getContentAsString()).isEqualTo(200);
            JsonNode res = Json.MAPPER.readTree(exec.getContentAsString());
            // the sandbox's variables and working directory, the command's own variable winning
            assertThat(res.get("stdout").asString()).isEqualTo("yes command\n/tmp\n");
            // and the CLI's exec, through the same service, sees the same
            Cli.Result viaCli = cli.run("exec", "envs", "--", "sh", "-c", "echo $SANDBOX_WIDE; pwd");
            assertThat(viaCli.exit()).as(viaCli.err()).isZero();
            assertThat(viaCli.out()).isEqualTo("yes\n/tmp\n");
        } finally {
            call(HttpMethod.DELETE, "/v1/sandboxes/envs?force=true", "");
        }
    }

    @Test
    @Order(3)
    void killingTheDaemonDuringAnExecLosesNothing() throws Exception {
        assertThat(cli.run("exec", "d1", "--", "sh", "-c", "echo precious > /root/work.txt")
                        .exit())
                .isZero();
        long vmmPid = Json.MAPPER
                .readTree(call(HttpMethod.GET, "/v1/sandboxes/d1", "").getContentAsString())
                .get("pid")
                .asLong();
        long daemon = daemonPid().orElseThrow();

        // An exec in flight when the daemon dies: wait until it really runs, then kill -9 the daemon.
        List<String> argv = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-Dairlock.home=" + dirs.home(),
                "-cp",
                System.getProperty("java.class.path"),
                "dev.airlock.cli.Main",
                "exec",
                "d1",
                "--",
                "sh",
                "-c",
                "echo started; sleep 60"));
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().put("AIRLOCK_CACHE_DIR", dirs.cache().toString());
        pb.environment().put("AIRLOCK_DATA_DIR", dirs.data().toString());
        pb.environment().put("AIRLOCK_RUNTIME_DIR", dirs.runtime().toString());
        Process inFlight = pb.start();
        try (BufferedReader out =
                new BufferedReader(new InputStreamReader(inFlight.getInputStream(), StandardCharsets.UTF_8))) {
            assertThat(out.readLine()).isEqualTo("started");
            ProcessHandle d = ProcessHandle.of(daemon).orElseThrow();
            d.destroyForcibly();
            d.onExit().get();
            assertThat(inFlight.waitFor(60, TimeUnit.SECONDS)).isTrue();
        }
        assertThat(inFlight.exitValue()).isNotZero();

        // The next command starts a new daemon, which re-attaches to the VM that kept running.
        Cli.Result r = cli.run("exec", "d1", "--", "cat", "/root/work.txt");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isEqualTo("precious\n");
        assertThat(daemonPid().orElseThrow()).isNotEqualTo(daemon);
        JsonNode after = Json.MAPPER.readTree(
                call(HttpMethod.GET, "/v1/sandboxes/d1", "").getContentAsString());
        assertThat(after.get("pid").asLong()).isEqualTo(vmmPid);
        assertThat(after.get("state").asString()).isEqualTo("RUNNING");
    }

    @Test
    @Order(4)
    void twoHundredCreateRemoveCyclesLeakNothing() throws Exception {
        long daemon = daemonPid().orElseThrow();
        long fdsBefore = openFds(daemon);
        for (int i = 0; i < 200; i++) {
            ContentResponse c = call(
                    HttpMethod.POST,
                    "/v1/sandboxes",
                    "{\"name\":\"cycle\",\"diskMiB\":128,\"runtime\":\"" + runtime() + "\"}");
            assertThat(c.getStatus()).as(c.getContentAsString()).isEqualTo(201);
            ContentResponse d = call(HttpMethod.DELETE, "/v1/sandboxes/cycle", "");
            assertThat(d.getStatus()).as(d.getContentAsString()).isEqualTo(200);
        }
        for (int i = 0; i < 3; i++) {
            assertThat(call(
                                    HttpMethod.POST,
                                    "/v1/sandboxes",
                                    "{\"name\":\"booted\",\"memoryMiB\":256,\"runtime\":\"" + runtime() + "\"}")
                            .getStatus())
                    .isEqualTo(201);
            assertThat(call(HttpMethod.POST, "/v1/sandboxes/booted/start", "").getStatus())
                    .isEqualTo(200);
            assertThat(call(HttpMethod.DELETE, "/v1/sandboxes/booted?force=true", "")
                            .getStatus())
                    .isEqualTo(200);
        }
        try (var s = Files.list(dirs.sandboxes())) {
            List<Path> left = s.filter(Files::isDirectory).toList();
            StringBuilder what = new StringBuilder();
            for (Path d : left) {
                try (var in = Files.list(d)) {
                    what.append(d.getFileName())
                            .append(": ")
                            .append(in.map(Path::getFileName).toList())
                            .append('\n');
                }
            }
            assertThat(left).as("sandbox directories left:\n%s", what).hasSize(1); // d1 only
        }
        try (var s = Files.list(dirs.runtime())) {
            // d1's sockets only (and the OCI runtime's own state directory: oci, or runsc for gVisor)
            assertThat(s.filter(Files::isDirectory)
                            .filter(d -> !List.of("oci", "runsc", "mux")
                                    .contains(d.getFileName().toString()))
                            .count())
                    .isEqualTo(1);
        }
        assertThat(openFds(daemon)).isLessThanOrEqualTo(fdsBefore + 5);
        if (runtime().equals("microvm")) {
            long qemus = ProcessHandle.allProcesses()
                    .filter(p -> p.info()
                            .commandLine()
                            .orElse("")
                            .contains(dirs.data().toString()))
                    .filter(p -> p.info().command().orElse("").contains("qemu"))
                    .count();
            assertThat(qemus).isEqualTo(1); // d1's VMM
        } else {
            String d1 = Json.MAPPER
                    .readTree(call(HttpMethod.GET, "/v1/sandboxes/d1", "").getContentAsString())
                    .get("id")
                    .asString();
            List<String> leftover = Files.readAllLines(Path.of("/proc/self/mountinfo")).stream()
                    .filter(l -> l.contains(dirs.data().toString()) && !l.contains(d1))
                    .toList();
            assertThat(leftover).as("mounts of removed containers").isEmpty();
        }
    }

    private static long openFds(long pid) throws Exception {
        try (var s = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            return s.count();
        }
    }
}
