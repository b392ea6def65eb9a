package dev.airlock.api;

import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.Execution;
import dev.airlock.host.SignalNumbers;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.wire.ExecInput;
import dev.airlock.wire.ExecStart;
import dev.airlock.wire.TtySize;
import java.io.IOException;
import java.time.Duration;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the streamed exec routes share: the spec from a request, and acting on a client's messages. */
final class ExecRelay {
    private ExecRelay() {}

    static ExecSpec spec(ExecStart start, boolean stdin) {
        List<String> cmd = start.cmd();
        if (cmd == null || cmd.isEmpty()) {
            throw new SandboxException("exec needs a non-empty command (cmd)");
        }
        ExecSpec.Builder b = ExecSpec.builder(cmd)
                .env(start.env() != null ? start.env() : Map.of())
                .cwd(start.cwd())
                .user(start.user())
                .stdin(stdin);
        if (start.timeoutMs() != null) {
            if (start.timeoutMs() <= 0) {
                throw new SandboxException("timeoutMs must be positive, not " + start.timeoutMs());
            }
            b.timeout(Duration.ofMillis(start.timeoutMs()));
        }
        if (start.tty() != null) {
            b.tty(start.tty().rows(), start.tty().cols());
        }
        return b.build();
    }

    /**
     * The command of a request that gives it in the query: {@code cmd} repeated,
     * {@code env=NAME=VALUE} repeated, {@code cwd}, {@code user}, {@code timeoutMs},
     * {@code stdin}, and a terminal as {@code tty=ROWSxCOLS} or {@code rows}/{@code cols}
     * (24x80 when {@code terminal} and none is given).
     */
    static ExecStart fromQuery(HttpApi.Call c, List<String> cmd, boolean terminal) {
        Map<String, String> env = new LinkedHashMap<>();
        for (String e : c.queryValues("env")) {
            int eq = e.indexOf('=');
            if (eq <= 0) {
                throw new SandboxException("env='" + e + "' is not NAME=VALUE");
            }
            env.put(e.substring(0, eq), e.substring(eq + 1));
        }
        TtySize tty = TtySize.parse(c.query("tty"));
        if (tty == null && (terminal || c.query("rows") != null)) {
            tty = new TtySize((int) c.number("rows", 24), (int) c.number("cols", 80));
        }
        long timeout = c.number("timeoutMs", 0);
        String stdin = c.query("stdin");
        return new ExecStart(
                cmd,
                env,
                c.query("cwd"),
                c.query("user"),
                timeout > 0 ? timeout : null,
                stdin == null ? null : Boolean.parseBoolean(stdin),
                tty);
    }

    /** A signal by name ({@code TERM}, {@code SIGTERM}) or number. */
    static int signal(String name) {
        return SignalNumbers.parse(name)
                .orElseThrow(() -> new SandboxException(
                        "unknown signal '" + name + "': use a number 1-64 or a name such as TERM, INT, KILL, HUP"));
    }

    /** Acts on one client message; returns false once the client closed stdin. */
    static boolean apply(ExecInput in, Execution ex, boolean stdinOpen) throws IOException {
        boolean open = stdinOpen;
        if (in.stdin() != null) {
            byte[] bytes;
            try {
                bytes = Base64.getDecoder().decode(in.stdin());
            } catch (IllegalArgumentException e) {
                throw new SandboxException("stdin is not base64: " + e.getMessage());
            }
            if (!open) {
                throw new SandboxException("stdin was closed (or not asked for): no more input is taken");
            }
            ex.stdin().write(bytes);
            ex.stdin().flush();
        }
        if (Boolean.TRUE.equals(in.eof()) && open) {
            ex.stdin().close();
            open = false;
        }
        if (in.signal() != null) {
            ex.signal(signal(in.signal()));
        }
        if (in.resize() != null) {
            try {
                ex.resize(in.resize().rows(), in.resize().cols());
            } catch (IllegalStateException e) {
                throw new SandboxException("resize needs a command started with a tty");
            }
        }
        return open;
    }
}
