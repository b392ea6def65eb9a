package dev.airlock.api;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.wire.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.io.Transport;
import org.eclipse.jetty.websocket.api.Callback;
import org.eclipse.jetty.websocket.api.Session;
import org.eclipse.jetty.websocket.client.ClientUpgradeRequest;
import org.eclipse.jetty.websocket.client.WebSocketClient;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import tools.jackson.databind.JsonNode;

/**
 * The HTTP API v1 with real clients: Debian's curl over the unix socket and over TCP with the
 * bearer token (streamed exec, large file transfers through a daemon whose heap is smaller than
 * the files, files operations, server-sent events), the JDK's WebSocket client over TCP and
 * Jetty's over the unix socket (exec and a terminal), and bad input on every new surface.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class HttpApiTest {
    abstract String runtime();

    private ApiHarness api;

    @BeforeAll
    void setUp() throws IOException {
        api = new ApiHarness("http-" + runtime());
        ApiHarness.Curl made = api.unix(
                "/v1/sandboxes",
                "-w",
                "\n%{http_code}",
                "-d",
                "{\"name\":\"box\",\"runtime\":\"" + runtime() + "\",\"memoryMiB\":256}");
        assertThat(made.status()).as(made.text()).isEqualTo(201);
        ApiHarness.Curl started = api.unix("/v1/sandboxes/box/start", "-w", "\n%{http_code}", "-X", "POST");
        assertThat(started.status()).as(started.text()).isEqualTo(200);
    }

    @AfterAll
    void tearDown() {
        if (api != null) {
            api.close();
        }
    }

    private static List<JsonNode> lines(String text) {
        List<JsonNode> out = new ArrayList<>();
        for (String l : text.split("\n")) {
            if (!l.isBlank()) {
                out.add(Json.MAPPER.readTree(l));
            }
        }
        return out;
    }

    private static String output(List<JsonNode> events, String stream) {
        StringBuilder b = new StringBuilder();
        for (JsonNode e : events) {
            if (e.get("type").asString().equals(stream)) {
                b.append(new String(Base64.getDecoder().decode(e.get("data").asString()), StandardCharsets.UTF_8));
            }
        }
        return b.toString();
    }

    // ---- streamed exec ---------------------------------------------------------------------

    @Test
    void curlStreamsAnExecOverTheUnixSocketAndOverTcp() {
        for (boolean tcp : new boolean[] {false, true}) {
            String path = "/v1/sandboxes/box/exec/stream?cmd=sh&cmd=-c&cmd="
                    + "echo%20out%3B%20echo%20err%20%3E%262%3B%20cat%3B%20exit%207";
            ApiHarness.Curl r =
                    tcp ? api.tcp(path, "--data-binary", "from stdin") : api.unix(path, "--data-binary", "from stdin");
            assertThat(r.exit()).as(r.err()).isZero();
            List<JsonNode> events = lines(r.text());
            assertThat(events.getFirst().get("type").asString()).isEqualTo("started");
            assertThat(events.getFirst().get("pid").asInt()).isPositive();
            assertThat(output(events, "stdout")).isEqualTo("out\nfrom stdin");
            assertThat(output(events, "stderr")).isEqualTo("err\n");
            JsonNode exit = events.getLast();
            assertThat(exit.get("type").asString()).isEqualTo("exit");
            assertThat(exit.get("exitCode").asInt()).isEqualTo(7);
        }
    }

    @Test
    void aJsonLinesClientSendsStdinEofAndSignals() {
        // curl sends the body as it reads it; the messages act in order on the running command
        String stdin = Base64.getEncoder().encodeToString("hello\n".getBytes(StandardCharsets.UTF_8));
        ApiHarness.Curl fed = api.unix(
                "/v1/sandboxes/box/exec/stream",
                "-H",
                "Content-Type: application/jsonl",
                "--data-binary",
                "{\"cmd\":[\"sh\",\"-c\",\"cat; exit 5\"]}\n{\"stdin\":\"" + stdin + "\"}\n{\"eof\":true}\n");
        List<JsonNode> events = lines(fed.text());
        assertThat(output(events, "stdout")).isEqualTo("hello\n");
        assertThat(events.getLast().get("exitCode").asInt()).isEqualTo(5);

        ApiHarness.Curl signalled = api.unix(
                "/v1/sandboxes/box/exec/stream",
                "-H",
                "Content-Type: application/jsonl",
                "--data-binary",
                "{\"cmd\":[\"sleep\",\"600\"]}\n{\"signal\":\"SIGTERM\"}\n");
        JsonNode exit = lines(signalled.text()).getLast();
        assertThat(exit.get("type").asString()).isEqualTo("exit");
        assertThat(exit.get("signal").asInt()).isEqualTo(15);

        // a malformed message ends the command with an error event, not a hang
        ApiHarness.Curl bad = api.unix(
                "/v1/sandboxes/box/exec/stream",
                "-H",
                "Content-Type: application/jsonl",
                "--data-binary",
                "{\"cmd\":[\"sleep\",\"600\"]}\n{\"signal\":\"NOPE\"}\n");
        JsonNode error = lines(bad.text()).getLast();
        assertThat(error.get("type").asString()).isEqualTo("error");
        assertThat(error.get("error").get("error").asString()).contains("unknown signal 'NOPE'");
    }

    @Test
    void aClientThatGoesAwayKillsItsCommand() throws Exception {
        Process p = new ProcessBuilder(
                        "curl",
                        "-sSN",
                        "--unix-socket",
                        api.socket().toString(),
                        "-X",
                        "POST",
                        "http://localhost/v1/sandboxes/box/exec/stream?cmd=sh&cmd=-c&cmd=echo%20up%3B%20exec%20sleep%20777")
                .start();
        try (BufferedReader out =
                new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            assertThat(out.readLine()).contains("started");
            assertThat(out.readLine()).contains("stdout");
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        // Within the guest, the sleep is gone once the daemon noticed the hang-up.
        for (int i = 0; i < 100; i++) {
            ApiHarness.Curl ps = api.unix(
                    "/v1/sandboxes/box/exec",
                    "-d",
                    "{\"cmd\":[\"sh\",\"-c\",\"ps -eo args | grep -c '^sleep 777' || true\"]}");
            if (Json.MAPPER.readTree(ps.text()).get("stdout").asString().strip().equals("0")) {
                return;
            }
            Thread.sleep(100); // polling the guest's process list: there is no event for a process's end
        }
        throw new AssertionError("the command of a client that went away kept running");
    }

    // ---- files -----------------------------------------------------------------------------

    @Test
    void curlMovesALargeFileBothWaysThroughADaemonWithASmallHeap(@TempDir Path tmp) throws Exception {
        Path big = tmp.resolve("big.bin");
        byte[] block = new byte[1 << 20];
        SecureRandom random = new SecureRandom();
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        try (OutputStream o = Files.newOutputStream(big)) {
            for (int i = 0; i < 160; i++) { // 160 MiB: more than the daemon's whole heap
                random.nextBytes(block);
                sha.update(block);
                o.write(block);
            }
        }
        String want = HexFormat.of().formatHex(sha.digest());
        for (boolean tcp : new boolean[] {false, true}) {
            String target = "/v1/sandboxes/box/files?path=/root/in/big-" + tcp + ".bin&mkdirs=true";
            ApiHarness.Curl up = tcp
                    ? api.tcp(target, "-w", "\n%{http_code}", "-T", big.toString())
                    : api.unix(target, "-w", "\n%{http_code}", "-T", big.toString());
            assertThat(up.status()).as(up.text() + up.err()).isEqualTo(201);
            assertThat(Json.MAPPER.readTree(up.body()).get("size").asLong()).isEqualTo(160L << 20);
            ApiHarness.Curl sum = api.unix(
                    "/v1/sandboxes/box/exec", "-d", "{\"cmd\":[\"sha256sum\",\"/root/in/big-" + tcp + ".bin\"]}");
            assertThat(Json.MAPPER.readTree(sum.text()).get("stdout").asString())
                    .startsWith(want);
            Path back = tmp.resolve("back-" + tcp);
            String source = "/v1/sandboxes/box/files?path=/root/in/big-" + tcp + ".bin";
            ApiHarness.Curl down = tcp
                    ? api.tcp(source, "-o", back.toString(), "-w", "%{http_code}")
                    : api.unix(source, "-o", back.toString(), "-w", "%{http_code}");
            assertThat(down.text()).as(down.err()).isEqualTo("200");
            MessageDigest again = MessageDigest.getInstance("SHA-256");
            try (var in = Files.newInputStream(back)) {
                byte[] b = new byte[1 << 20];
                for (int n; (n = in.read(b)) > 0; ) {
                    again.update(b, 0, n);
                }
            }
            assertThat(HexFormat.of().formatHex(again.digest())).isEqualTo(want);
        }
        assertThat(api.served.alive()).as("the daemon survived: %s", api.log()).isTrue();
    }

    @Test
    void filesAreListedStatedMadeMovedAndRemoved() {
        assertThat(api.unix(
                                "/v1/sandboxes/box/files/mkdir",
                                "-w",
                                "\n%{http_code}",
                                "-d",
                                "{\"path\":\"/srv/a/b\",\"parents\":true}")
                        .status())
                .isEqualTo(201);
        ApiHarness.Curl put =
                api.unix("/v1/sandboxes/box/files?path=/srv/a/b/f.txt&mode=600", "-w", "\n%{http_code}", "-T", "-");
        assertThat(put.status()).isEqualTo(201);
        JsonNode info = Json.MAPPER.readTree(put.body());
        assertThat(info.get("mode").asInt()).isEqualTo(0600);
        assertThat(info.get("type").asString()).isEqualTo("file");

        ApiHarness.Curl moved = api.unix(
                "/v1/sandboxes/box/files/move",
                "-w",
                "\n%{http_code}",
                "-d",
                "{\"from\":\"/srv/a/b/f.txt\",\"to\":\"/srv/a/g.txt\"}");
        assertThat(moved.status()).as(moved.text()).isEqualTo(200);
        List<String> names = new ArrayList<>();
        Json.MAPPER
                .readTree(api.unix("/v1/sandboxes/box/files/list?path=/srv/a").text())
                .forEach(n ->
                        names.add(n.get("name").asString() + ":" + n.get("type").asString()));
        assertThat(names).containsExactly("b:directory", "g.txt:file");
        assertThat(api.unix("/v1/sandboxes/box/files/stat?path=/srv/a/b/f.txt", "-w", "\n%{http_code}")
                        .status())
                .isEqualTo(404);

        ApiHarness.Curl notEmpty =
                api.unix("/v1/sandboxes/box/files?path=/srv/a", "-w", "\n%{http_code}", "-X", "DELETE");
        assertThat(notEmpty.status()).isEqualTo(409);
        assertThat(notEmpty.body()).contains("ENOTEMPTY");
        ApiHarness.Curl gone =
                api.unix("/v1/sandboxes/box/files?path=/srv/a&recursive=true", "-w", "\n%{http_code}", "-X", "DELETE");
        assertThat(gone.status()).isEqualTo(204);
        assertThat(api.unix("/v1/sandboxes/box/files/stat?path=/srv/a", "-w", "\n%{http_code}")
                        .status())
                .isEqualTo(404);
    }

    @Test
    void anOversizedUploadIsRefusedAndLeavesNothing(@TempDir Path tmp) throws IOException {
        ApiHarness.Curl made = api.unix(
                "/v1/sandboxes",
                "-w",
                "\n%{http_code}",
                "-d",
                "{\"name\":\"tiny\",\"runtime\":\"" + runtime() + "\",\"memoryMiB\":256,\"diskMiB\":64}");
        assertThat(made.status()).as(made.text()).isEqualTo(201);
        try {
            assertThat(api.unix("/v1/sandboxes/tiny/start", "-w", "\n%{http_code}", "-X", "POST")
                            .status())
                    .isEqualTo(200);
            Path file = tmp.resolve("70m");
            try (var ch = java.nio.channels.FileChannel.open(
                    file, java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(new byte[] {1}), (70L << 20) - 1);
            }
            // declared length: refused before a byte is read
            ApiHarness.Curl declared =
                    api.unix("/v1/sandboxes/tiny/files?path=/tmp/x", "-w", "\n%{http_code}", "-T", file.toString());
            assertThat(declared.status()).isEqualTo(413);
            assertThat(Json.MAPPER.readTree(declared.body()).get("kind").asString())
                    .isEqualTo("TOO_LARGE");
            assertThat(declared.body()).contains("64 MiB disk of sandbox 'tiny'");
            // chunked, length unknown: cut off at the disk's size
            List<String> argv = List.of(
                    "curl",
                    "-sS",
                    "--unix-socket",
                    api.socket().toString(),
                    "-w",
                    "\n%{http_code}",
                    "-T",
                    "-",
                    "http://localhost/v1/sandboxes/tiny/files?path=/tmp/x");
            ApiHarness.Curl chunked = ApiHarness.curl(argv, Files.readAllBytes(file));
            assertThat(chunked.status()).as(chunked.text() + chunked.err()).isEqualTo(413);
            // nothing half-done: no file, no temporary file beside it
            assertThat(Json.MAPPER
                            .readTree(api.unix("/v1/sandboxes/tiny/files/list?path=/tmp")
                                    .text())
                            .size())
                    .isZero();
        } finally {
            api.unix("/v1/sandboxes/tiny?force=true", "-X", "DELETE");
        }
    }

    // ---- refusals and bad input ------------------------------------------------------------

    @Test
    void tcpWithoutOrWithAWrongTokenIsRefused() {
        for (List<String> auth : List.of(
                List.<String>of(),
                List.of("-H", "Authorization: Bearer wrong-token-wrong-token-wrong-token"),
                List.of("-H", "Authorization: Basic " + api.token))) {
            List<String> argv = new ArrayList<>(List.of("curl", "-sS", "-w", "\n%{http_code}"));
            argv.addAll(auth);
            argv.add(api.base() + "/v1/sandboxes");
            ApiHarness.Curl r = ApiHarness.curl(argv, null);
            assertThat(r.status()).isEqualTo(401);
            assertThat(Json.MAPPER.readTree(r.body()).get("kind").asString()).isEqualTo("UNAUTHORIZED");
            assertThat(r.body()).doesNotContain("\"box\"");
        }
        // a refused write does nothing either
        List<String> argv = List.of(
                "curl", "-sS", "-w", "\n%{http_code}", "-X", "DELETE", api.base() + "/v1/sandboxes/box?force=true");
        assertThat(ApiHarness.curl(argv, null).status()).isEqualTo(401);
        assertThat(api.tcp("/v1/sandboxes/box", "-w", "\n%{http_code}").status())
                .isEqualTo(200);
        // the token file is its user's alone
        assertThat(java.nio.file.attribute.PosixFilePermissions.toString(
                        uncheckedPerms(dev.airlock.daemon.ApiToken.file(api.dirs.data()))))
                .isEqualTo("rw-------");
    }

    private static java.util.Set<java.nio.file.attribute.PosixFilePermission> uncheckedPerms(Path p) {
        try {
            return Files.getPosixFilePermissions(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void serveRefusesANonLoopbackAddressWithoutTheFlag() {
        var r = api.cli.run("serve", "--listen", "0.0.0.0:0");
        assertThat(r.exit()).isEqualTo(125);
        assertThat(r.err()).contains("not a loopback address").contains("--allow-non-loopback");
        var bad = api.cli.run("serve", "--listen", "localhost");
        assertThat(bad.exit()).isEqualTo(125);
        assertThat(bad.err()).contains("is not HOST:PORT");
        // the running daemon was not touched
        assertThat(api.served.alive()).isTrue();
    }

    @Test
    void badInputGetsAClearErrorWithTheRightStatus() {
        record Case(String what, int status, String contains, String path, String[] options) {}
        List<Case> cases = List.of(
                new Case(
                        "unknown sandbox, file",
                        404,
                        "no such sandbox 'nope'",
                        "/v1/sandboxes/nope/files?path=/etc/hostname",
                        new String[0]),
                new Case(
                        "unknown sandbox, exec",
                        404,
                        "no such sandbox",
                        "/v1/sandboxes/nope/exec/stream?cmd=ls",
                        new String[] {"-X", "POST"}),
                new Case("unknown sandbox, events", 404, "no such sandbox", "/v1/events?sandbox=nope", new String[0]),
                new Case(
                        "relative path",
                        400,
                        "must be absolute",
                        "/v1/sandboxes/box/files?path=etc/passwd",
                        new String[0]),
                new Case(
                        "climbing path",
                        400,
                        "climbs with '..'",
                        "/v1/sandboxes/box/files/stat?path=/tmp/../../etc",
                        new String[0]),
                new Case("no path", 400, "a sandbox path is needed", "/v1/sandboxes/box/files/list", new String[0]),
                new Case(
                        "malformed mkdir", 400, "", "/v1/sandboxes/box/files/mkdir", new String[] {"-d", "{\"path\":"}),
                new Case("malformed move", 400, "", "/v1/sandboxes/box/files/move", new String[] {"-d", "[1,2]"}),
                new Case("malformed exec line", 400, "", "/v1/sandboxes/box/exec/stream", new String[] {
                    "-H", "Content-Type: application/jsonl", "--data-binary", "not json\n"
                }),
                new Case("empty command", 400, "non-empty command", "/v1/sandboxes/box/exec/stream", new String[] {
                    "-X", "POST"
                }),
                new Case(
                        "missing program",
                        400,
                        "command not found",
                        "/v1/sandboxes/box/exec/stream?cmd=no-such-program",
                        new String[] {"-X", "POST"}),
                new Case(
                        "unknown user",
                        400,
                        "unknown user or group: nobody-here",
                        "/v1/sandboxes/box/exec/stream?cmd=true&user=nobody-here",
                        new String[] {"-X", "POST"}),
                new Case(
                        "port out of range",
                        400,
                        "99999999999 is not a port",
                        "/v1/sandboxes/box/ports/99999999999",
                        new String[] {"-X", "DELETE"}),
                new Case("bad tty", 400, "ROWSxCOLS", "/v1/sandboxes/box/exec/stream?cmd=ls&tty=big", new String[] {
                    "-X", "POST"
                }),
                new Case("bad mode", 400, "not octal", "/v1/sandboxes/box/files?path=/tmp/m&mode=999", new String[] {
                    "-T", "/dev/null"
                }),
                new Case(
                        "websocket without upgrade",
                        400,
                        "is a WebSocket",
                        "/v1/sandboxes/box/terminal",
                        new String[0]),
                new Case(
                        "directory download",
                        400,
                        "is a directory",
                        "/v1/sandboxes/box/files?path=/etc",
                        new String[0]),
                new Case("missing file", 404, "ENOENT", "/v1/sandboxes/box/files?path=/no/such/file", new String[0]),
                new Case("null body", 400, "needs a JSON object", "/v1/sandboxes", new String[] {"-d", "null"}),
                new Case(
                        "array body", 400, "needs a JSON object", "/v1/sandboxes/box/fork", new String[] {"-d", "[1]"}),
                new Case("not JSON", 400, "is not valid JSON", "/v1/sandboxes", new String[] {"-d", "{bad"}),
                new Case("mistyped field", 400, "field 'cpus' must be a number", "/v1/sandboxes", new String[] {
                    "-d", "{\"cpus\":\"two\"}"
                }),
                new Case(
                        "port without mapping",
                        400,
                        "needs the field \"publish\"",
                        "/v1/sandboxes/box/ports",
                        new String[] {"-d", "{}"}),
                new Case(
                        "pull without reference",
                        400,
                        "needs the field \"reference\"",
                        "/v1/images/pull",
                        new String[] {"-d", "{}"}),
                new Case(
                        "remove /",
                        400,
                        "refusing to remove /",
                        "/v1/sandboxes/box/files?path=/&recursive=true",
                        new String[] {"-X", "DELETE"}));
        for (Case c : cases) {
            List<String> opts = new ArrayList<>(List.of("-w", "\n%{http_code}"));
            opts.addAll(List.of(c.options()));
            ApiHarness.Curl r = api.unix(c.path(), opts.toArray(String[]::new));
            assertThat(r.status()).as(c.what() + ": " + r.text()).isEqualTo(c.status());
            JsonNode err = Json.MAPPER.readTree(r.body());
            assertThat(err.get("error").asString())
                    .as(c.what())
                    .contains(c.contains())
                    // words for the user, not the daemon's insides
                    .doesNotContain("dev.airlock")
                    .doesNotContain("java.")
                    .doesNotContain("Cannot invoke")
                    .doesNotContain("errno ");
        }
        // /etc is still there after the refused removal of /
        assertThat(api.unix("/v1/sandboxes/box/files/stat?path=/etc", "-w", "\n%{http_code}")
                        .status())
                .isEqualTo(200);
    }

    // ---- WebSocket -------------------------------------------------------------------------

    /** Collects what a JDK WebSocket receives. */
    private static final class Received implements WebSocket.Listener {
        final BlockingQueue<Object> messages = new LinkedBlockingQueue<>();
        final CompletableFuture<Integer> closed = new CompletableFuture<>();
        private final java.io.ByteArrayOutputStream partial = new java.io.ByteArrayOutputStream();
        private final StringBuilder text = new StringBuilder();

        @Override
        public @org.jspecify.annotations.Nullable CompletionStage<?> onBinary(
                WebSocket ws, ByteBuffer data, boolean last) {
            byte[] b = new byte[data.remaining()];
            data.get(b);
            partial.writeBytes(b);
            if (last) {
                messages.add(partial.toByteArray());
                partial.reset();
            }
            ws.request(1);
            return null;
        }

        @Override
        public @org.jspecify.annotations.Nullable CompletionStage<?> onText(
                WebSocket ws, CharSequence data, boolean last) {
            text.append(data);
            if (last) {
                messages.add(Json.MAPPER.readTree(text.toString()));
                text.setLength(0);
            }
            ws.request(1);
            return null;
        }

        @Override
        public @org.jspecify.annotations.Nullable CompletionStage<?> onClose(WebSocket ws, int status, String reason) {
            closed.complete(status);
            return null;
        }

        @Override
        public void onError(WebSocket ws, Throwable error) {
            closed.completeExceptionally(error);
        }

        Object next() throws InterruptedException {
            Object m = messages.poll(60, TimeUnit.SECONDS);
            if (m == null) {
                throw new AssertionError("no WebSocket message within 60 s");
            }
            return m;
        }
    }

    @Test
    void aWebSocketExecOverTcpKeepsStreamsApartAndTakesStdin() throws Exception {
        Received got = new Received();
        WebSocket ws = HttpClient.newHttpClient()
                .newWebSocketBuilder()
                .header("Authorization", "Bearer " + api.token)
                .buildAsync(
                        URI.create(
                                api.base().replace("http:", "ws:")
                                        + "/v1/sandboxes/box/exec/ws?cmd=sh&cmd=-c&cmd=read%20x%3B%20echo%20o$x%3B%20echo%20e$x%20%3E%262%3B%20exit%204"),
                        got)
                .get(60, TimeUnit.SECONDS);
        assertThat(((JsonNode) got.next()).get("type").asString()).isEqualTo("started");
        ws.sendBinary(ByteBuffer.wrap("1\n".getBytes(StandardCharsets.UTF_8)), true)
                .get(10, TimeUnit.SECONDS);
        StringBuilder out = new StringBuilder();
        StringBuilder err = new StringBuilder();
        JsonNode last;
        while (true) {
            Object m = got.next();
            if (m instanceof byte[] b) {
                (b[0] == 1 ? out : err).append(new String(b, 1, b.length - 1, StandardCharsets.UTF_8));
            } else {
                last = (JsonNode) m;
                break;
            }
        }
        assertThat(out).hasToString("o1\n");
        assertThat(err).hasToString("e1\n");
        assertThat(last.get("type").asString()).isEqualTo("exit");
        assertThat(last.get("exitCode").asInt()).isEqualTo(4);
        assertThat(got.closed.get(30, TimeUnit.SECONDS)).isEqualTo(1000);
    }

    @Test
    void aWebSocketWithoutTheTokenIsRefusedBeforeTheUpgrade() {
        var attempt = HttpClient.newHttpClient()
                .newWebSocketBuilder()
                .buildAsync(
                        URI.create(api.base().replace("http:", "ws:") + "/v1/sandboxes/box/terminal"), new Received());
        assertThat(attempt)
                .failsWithin(java.time.Duration.ofSeconds(30))
                .withThrowableThat()
                .havingRootCause()
                .withMessageContaining("401");
    }

    @Test
    void aTerminalOverTheUnixSocketRunsAShellAndResizes() throws Exception {
        Path socket = api.socket();
        // Every request of this client goes over the daemon's unix socket, as the CLI reaches it
        // (the upgrade request is made here; a handshake listener would see it only once sent).
        org.eclipse.jetty.client.HttpClient http = new org.eclipse.jetty.client.HttpClient() {
            @Override
            public org.eclipse.jetty.client.Request newRequest(URI uri) {
                return super.newRequest(uri).transport(new Transport.TCPUnix(socket));
            }
        };
        WebSocketClient client = new WebSocketClient(http);
        client.start();
        try {
            WebSocketScreen listener = new WebSocketScreen();
            BlockingQueue<String> screen = listener.messages;
            CompletableFuture<Integer> closed = listener.closed;
            Session s = client.connect(
                            listener,
                            URI.create("ws://localhost/v1/sandboxes/box/terminal?rows=33&cols=101&cmd=sh"),
                            new ClientUpgradeRequest())
                    .get(60, TimeUnit.SECONDS);
            s.sendText("{\"resize\":{\"rows\":40,\"cols\":120}}", Callback.NOOP);
            s.sendBinary(ByteBuffer.wrap("stty size; exit 3\n".getBytes(StandardCharsets.UTF_8)), Callback.NOOP);
            StringBuilder seen = new StringBuilder();
            String exit = null;
            while (exit == null) {
                String m = screen.poll(60, TimeUnit.SECONDS);
                assertThat(m).as("terminal output so far: %s", seen).isNotNull();
                if (m.startsWith("\u0000")) {
                    if (m.contains("\"exit\"")) {
                        exit = m.substring(1);
                    }
                } else {
                    seen.append(m);
                }
            }
            assertThat(seen.toString()).contains("40 120");
            assertThat(Json.MAPPER.readTree(exit).get("exitCode").asInt()).isEqualTo(3);
            assertThat(closed.get(30, TimeUnit.SECONDS)).isEqualTo(1000);
        } finally {
            client.stop();
        }
    }

    // ---- events ----------------------------------------------------------------------------

    @Test
    void serverSentEventsFollowASandboxsLife() throws Exception {
        Process p = new ProcessBuilder(
                        "curl", "-sSN", "--unix-socket", api.socket().toString(), "http://localhost/v1/events")
                .start();
        try (BufferedReader in =
                new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            // the stream is open once its first comment arrives
            assertThat(in.readLine()).startsWith(":");
            assertThat(api.unix(
                                    "/v1/sandboxes",
                                    "-w",
                                    "\n%{http_code}",
                                    "-d",
                                    "{\"name\":\"ev\",\"runtime\":\"" + runtime() + "\",\"memoryMiB\":256}")
                            .status())
                    .isEqualTo(201);
            api.unix("/v1/sandboxes/ev/start", "-X", "POST");
            api.unix("/v1/sandboxes/ev/stop", "-X", "POST");
            api.unix("/v1/sandboxes/ev", "-X", "DELETE");
            List<String> seen = new ArrayList<>();
            while (seen.size() < 4) {
                String line = in.readLine();
                assertThat(line).as("events so far: %s", seen).isNotNull();
                if (line.startsWith("data: ")) {
                    JsonNode e = Json.MAPPER.readTree(line.substring(6));
                    if (e.get("name").asString().equals("ev")) {
                        seen.add(e.get("type").asString() + " " + e.get("state").asString());
                    }
                }
            }
            assertThat(seen).containsExactly("created CREATED", "state RUNNING", "state STOPPED", "removed STOPPED");
        } finally {
            p.destroy();
        }
    }
}
