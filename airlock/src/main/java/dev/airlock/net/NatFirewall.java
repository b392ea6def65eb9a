package dev.airlock.net;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.NatCgroup;
import dev.airlock.sandbox.SandboxException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The host-side egress rules of {@code --network nat} sandboxes, in iptables (nf_tables or
 * legacy). A nat sandbox's outbound sockets are opened by one host process (its QEMU or its
 * container's slirp4netns) that runs in the sandbox's {@link NatCgroup}; the rules match that
 * group, so they apply to the sandbox's traffic and to nothing else on the host.
 *
 * <pre>
 * OUTPUT          -j AIRLOCK-EGRESS
 * AIRLOCK-EGRESS  -m cgroup --path airlock-nat/DATA/ID -j AIRLOCK-N-ID      (one per sandbox)
 *                 -m cgroup --path airlock-nat -j REJECT                    (catch-all, last)
 * AIRLOCK-N-ID    -d ADDRESS -j ACCEPT            (addresses named by the allowlist and pins)
 *                 -d NAMESERVER --dport 53 -j ACCEPT   (the host's resolvers, for slirp's DNS)
 *                 -d DENIED-RANGE -j REJECT       (DeniedRanges.IPV4, one rule each)
 *                 -j ACCEPT                       (only with --allow-host '*')
 * </pre>
 *
 * Anything a sandbox's chain does not accept falls through to the catch-all, so a nat sandbox
 * whose rules are missing (not installed yet, or half-removed) reaches nothing. The rules live
 * in the kernel, not in the daemon: they outlive a daemon crash just as the sandboxes do. A
 * sandbox's rules are replaced in one {@code iptables-restore} transaction; IPv6 from a nat
 * sandbox's process is refused outright (the guest's NAT is IPv4 only).
 */
public final class NatFirewall {
    static final String CHAIN = "AIRLOCK-EGRESS";
    private static final String CHAIN_PREFIX = "AIRLOCK-N-";
    /** The shared chain of the nat table, for the redirects to relays (an upstream proxy). */
    static final String REDIRECT_CHAIN = "AIRLOCK-RELAY";

    private static final String REDIRECT_PREFIX = "AIRLOCK-R-";
    /** Where root's Airlock processes keep host-wide locks: a directory only root may enter. */
    static final Path ROOT_LOCKS = Path.of("/run/airlock");

    /**
     * The lock that orders changes to the host's firewall among all Airlock processes of this
     * host (each edit reads rule numbers and then deletes by them). It lives in a directory only
     * its user can enter, checked as such, never in /tmp: there another local user could make
     * the file first, as a link that had root create a file wherever it pointed, or as a file of
     * theirs held locked forever, which stopped every nat sandbox. nat needs root, so root's
     * lock is host-wide in {@link #ROOT_LOCKS}; any other user's is in its own runtime directory.
     */
    static Path lockFile() {
        Path dir = isRoot() ? ROOT_LOCKS : AirlockDirs.fromEnvironment().runtime();
        return AirlockDirs.ensurePrivateDir(dir).resolve("nat-firewall.lock");
    }

    private static boolean isRoot() {
        try {
            return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid") == 0;
        } catch (IOException e) {
            return false;
        }
    }

    /**
     * One address a sandbox's chain accepts, the allowlist entry that named it (for NO_PROXY) and
     * why (for the log).
     */
    record Accept(InetAddress address, String rule, String why) {}

    /**
     * What the policy of a nat sandbox allows at the IP level.
     *
     * @param notes allowlist entries that yielded no address (a name the host could not resolve)
     */
    record Plan(List<Accept> accepts, List<InetAddress> nameservers, boolean anyPublic, List<String> notes) {}

    private NatFirewall() {}

    /** The chain of one sandbox (iptables chain names are at most 28 characters). */
    static String chainOf(String sandboxId) {
        return CHAIN_PREFIX + NatCgroup.shortId(sandboxId);
    }

    /**
     * Turns an allowlist into addresses: an IP literal is itself; a pinned name is its pin; any
     * other name is resolved on the host now (IPv4 answers), so a name whose addresses change
     * later needs the policy set again. An answer in a {@link DeniedRanges denied range}
     * (loopback, private, metadata, ...) is not accepted, as the proxy refuses it: only an IP
     * literal in the allowlist, or a pin, opens such an address. {@code *} allows every public address. A pin's address
     * is accepted, also inside a denied range, when the allowlist names its name exactly: the
     * rules cannot see which name a connection meant, so {@code *} does not open every pin.
     */
    static Plan plan(NetworkSpec spec, EgressPolicy.Resolver resolver, List<InetAddress> nameservers) {
        Map<InetAddress, Accept> accepts = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        boolean any = false;
        Map<String, InetAddress> pins = spec.pins();
        for (String rule : spec.allowHosts()) {
            if (rule.equals("*")) {
                any = true;
            } else if (NetworkSpec.isIpLiteral(rule)) {
                InetAddress literal = NetworkSpec.literal(rule);
                accepts.putIfAbsent(literal, new Accept(literal, rule, "--allow-host " + rule));
            } else if (!pins.containsKey(rule)) {
                try {
                    boolean any4 = false;
                    for (InetAddress a : resolver.resolve(rule)) {
                        if (!(a instanceof Inet4Address)) {
                            continue;
                        }
                        any4 = true;
                        // As in the proxy: a name never opens a denied range; only a rule
                        // naming the address itself (or a pin) does.
                        String range = DeniedRanges.classify(a);
                        if (range != null && !spec.allowHosts().contains(a.getHostAddress())) {
                            notes.add(rule + " resolves to " + a.getHostAddress() + ", a " + range
                                    + " address, which is denied unless named explicitly (--allow-host "
                                    + a.getHostAddress() + ")");
                            continue;
                        }
                        accepts.putIfAbsent(a, new Accept(a, rule, rule + ", resolved on the host"));
                    }
                    if (!any4) {
                        notes.add(rule + " has no IPv4 address");
                    }
                } catch (UnknownHostException e) {
                    notes.add(rule + " does not resolve on the host");
                }
            }
        }
        for (Map.Entry<String, InetAddress> pin : pins.entrySet()) {
            if (spec.allowHosts().contains(pin.getKey()) && pin.getValue() instanceof Inet4Address) {
                accepts.putIfAbsent(
                        pin.getValue(),
                        new Accept(pin.getValue(), pin.getKey(), pin.getKey() + ", pinned by --add-host"));
            }
        }
        List<InetAddress> dns = spec.allowHosts().isEmpty() ? List.of() : nameservers;
        return new Plan(List.copyOf(accepts.values()), dns, any, List.copyOf(notes));
    }

    /**
     * Why the plan accepts {@code address} (the allowlist entry that names it, or {@code *} for a
     * public address), or null when its rules refuse it: the relay's check, the same as the rules'.
     */
    static @Nullable Accept accepting(Plan plan, InetAddress address) {
        for (Accept a : plan.accepts()) {
            if (a.address().equals(address)) {
                return a;
            }
        }
        if (plan.anyPublic() && address instanceof Inet4Address && DeniedRanges.classify(address) == null) {
            return new Accept(address, "*", "--allow-host *");
        }
        return null;
    }

    /** The sandbox chain's rules, in iptables-restore syntax. */
    static List<String> chainRules(String chain, Plan plan) {
        return chainRules(chain, plan, 0);
    }

    /**
     * As above; with a relay port (not 0), the sandbox's TCP, redirected to the relay on the
     * host's loopback, is accepted there, ahead of the refused loopback range.
     */
    static List<String> chainRules(String chain, Plan plan, int relayPort) {
        List<String> r = new ArrayList<>();
        if (relayPort != 0) {
            r.add("-A " + chain + " -d 127.0.0.1/32 -p tcp --dport " + relayPort + " -j ACCEPT");
        }
        for (Accept a : plan.accepts()) {
            r.add("-A " + chain + " -d " + a.address().getHostAddress() + "/32 -j ACCEPT");
        }
        for (InetAddress ns : plan.nameservers()) {
            for (String proto : List.of("udp", "tcp")) {
                r.add("-A " + chain + " -d " + ns.getHostAddress() + "/32 -p " + proto + " --dport 53 -j ACCEPT");
            }
        }
        for (DeniedRanges.Range range : DeniedRanges.IPV4) {
            r.add("-A " + chain + " -d " + range.cidr() + " -p tcp -j REJECT --reject-with tcp-reset");
            r.add("-A " + chain + " -d " + range.cidr() + " -j REJECT --reject-with icmp-admin-prohibited");
        }
        if (plan.anyPublic()) {
            r.add("-A " + chain + " -j ACCEPT");
        }
        return r;
    }

    /**
     * Installs (or replaces) a sandbox's rules and logs the policy they enforce. The sandbox's
     * group must exist: its jump rule names it.
     */
    public static void install(NatCgroup group, String sandboxId, NetworkSpec spec, EgressLog log) {
        install(group, sandboxId, spec, log, null);
    }

    /**
     * As above; with a relay (the host has an upstream proxy), the sandbox's TCP is redirected
     * to it ({@code -t nat ... REDIRECT}, matched by the same group), except DNS to the host's
     * resolvers, and the relay learns the plan it checks each connection against. Without one,
     * a redirect left from an earlier start is removed.
     */
    public static void install(
            NatCgroup group, String sandboxId, NetworkSpec spec, EgressLog log, @Nullable NatRelay relay) {
        Plan plan = plan(spec, InetAddress::getAllByName, hostNameservers());
        String chain = chainOf(sandboxId);
        String redirect = redirectChainOf(sandboxId);
        group.procs();
        if (relay != null) {
            // before the redirect exists, so no connection meets an empty plan
            relay.plan(plan);
        }
        try (HostFiles.Lock ignored = HostFiles.lock(lockFile())) {
            ensureBase();
            if (relay != null) {
                ensureRedirectBase();
            }
            List<String> script = new ArrayList<>();
            script.add("*filter");
            // Declaring the chain creates it or empties it, inside the same transaction.
            script.add(":" + chain + " - [0:0]");
            for (int n : jumpsTo(chain)) {
                script.add("-D " + CHAIN + " " + n);
            }
            script.addAll(chainRules(chain, plan, relay == null ? 0 : relay.port()));
            script.add("-I " + CHAIN + " 1 -m cgroup --path " + group.path() + " -j " + chain);
            script.add("COMMIT");
            script.addAll(
                    relay == null ? removeRedirect(redirect) : redirectScript(redirect, group, plan, relay.port()));
            restore("iptables-restore", script);
        }
        log.record("POLICY", "nat", describe(plan) + (relay == null ? "" : "; " + relay.describe()));
    }

    /** The sandbox's chain in the nat table, redirecting its TCP to its relay. */
    static String redirectChainOf(String sandboxId) {
        return REDIRECT_PREFIX + NatCgroup.shortId(sandboxId);
    }

    /**
     * The nat table's part of the transaction: the sandbox's redirect chain (its TCP to the
     * relay's port on the host's loopback, DNS to the host's resolvers left alone, as slirp
     * forwards the guest's queries there) and the jump to it from the shared chain.
     */
    static List<String> redirectScript(String redirect, NatCgroup group, Plan plan, int relayPort) {
        List<String> script = new ArrayList<>();
        script.add("*nat");
        script.add(":" + redirect + " - [0:0]");
        for (int n : jumpsTo("nat", REDIRECT_CHAIN, redirect)) {
            script.add("-D " + REDIRECT_CHAIN + " " + n);
        }
        for (InetAddress ns : plan.nameservers()) {
            script.add("-A " + redirect + " -d " + ns.getHostAddress() + "/32 -p tcp --dport 53 -j RETURN");
        }
        script.add("-A " + redirect + " -p tcp -j REDIRECT --to-ports " + relayPort);
        script.add("-I " + REDIRECT_CHAIN + " 1 -m cgroup --path " + group.path() + " -j " + redirect);
        script.add("COMMIT");
        return script;
    }

    /** The nat table's part of a transaction that removes a sandbox's redirect, if it has one. */
    private static List<String> removeRedirect(String redirect) {
        List<Integer> jumps = jumpsTo("nat", REDIRECT_CHAIN, redirect);
        boolean exists = !list("iptables", "nat", redirect).isEmpty();
        if (jumps.isEmpty() && !exists) {
            return List.of();
        }
        List<String> script = new ArrayList<>();
        script.add("*nat");
        for (int n : jumps) {
            script.add("-D " + REDIRECT_CHAIN + " " + n);
        }
        if (exists) {
            script.add("-F " + redirect);
            script.add("-X " + redirect);
        }
        script.add("COMMIT");
        return script;
    }

    static String describe(Plan plan) {
        List<String> parts = new ArrayList<>();
        for (Accept a : plan.accepts()) {
            parts.add("accept " + a.address().getHostAddress() + " (" + a.why() + ")");
        }
        for (InetAddress ns : plan.nameservers()) {
            parts.add("accept DNS to " + ns.getHostAddress() + ":53 (the host's resolver)");
        }
        parts.add("refuse the denied ranges");
        parts.add(
                plan.anyPublic()
                        ? "accept any other public IPv4 address (--allow-host *)"
                        : "refuse every other address");
        for (String n : plan.notes()) {
            parts.add("note: " + n);
        }
        return String.join("; ", parts);
    }

    /** Removes a sandbox's rules and its group (once its NAT process has exited). */
    public static void remove(NatCgroup group, String sandboxId) {
        String chain = chainOf(sandboxId);
        try (HostFiles.Lock ignored = HostFiles.lock(lockFile())) {
            removeChain(chain);
            List<String> redirect = removeRedirect(redirectChainOf(sandboxId));
            if (!redirect.isEmpty()) {
                restore("iptables-restore", redirect);
            }
        }
        group.remove();
    }

    /**
     * Removes the rules and groups that sandboxes of this data directory no longer need: those
     * of sandboxes that are gone (a daemon stopped between removing one and cleaning up), and
     * chains no jump refers to. Sandboxes that still exist keep theirs, running or not.
     */
    public static void sweep(AirlockDirs dirs, Set<String> sandboxIds) {
        // No group left means no nat sandbox of this data directory has rules (they go first).
        if (NatCgroup.leftIds(dirs).isEmpty() || !available()) {
            return;
        }
        Set<String> live = new java.util.HashSet<>();
        sandboxIds.forEach(id -> live.add(NatCgroup.shortId(id)));
        String prefix = NatCgroup.of(dirs, "0").path();
        prefix = prefix.substring(0, prefix.lastIndexOf('/') + 1);
        try (HostFiles.Lock ignored = HostFiles.lock(lockFile())) {
            List<String> all = list("iptables", null);
            Set<String> referenced = new java.util.HashSet<>();
            for (String line : all) {
                int at = line.indexOf(" -j " + CHAIN_PREFIX);
                if (line.startsWith("-A " + CHAIN + " ") && at > 0) {
                    String chain = line.substring(at + 4).strip();
                    String id = chain.substring(CHAIN_PREFIX.length());
                    if (line.contains("--path " + prefix + id) && !live.contains(id)) {
                        removeChain(chain);
                    } else {
                        referenced.add(chain);
                    }
                }
            }
            for (String line : all) {
                if (line.startsWith("-N " + CHAIN_PREFIX)) {
                    String chain = line.substring(3).strip();
                    if (!referenced.contains(chain)) {
                        removeChain(chain);
                    }
                }
            }
            for (String line : list("iptables", "nat", null)) {
                int at = line.indexOf(" -j " + REDIRECT_PREFIX);
                if (line.startsWith("-A " + REDIRECT_CHAIN + " ") && at > 0) {
                    String id =
                            line.substring(at + 4 + REDIRECT_PREFIX.length()).strip();
                    if (line.contains("--path " + prefix + id) && !live.contains(id)) {
                        List<String> script = removeRedirect(REDIRECT_PREFIX + id);
                        if (!script.isEmpty()) {
                            restore("iptables-restore", script);
                        }
                    }
                }
            }
        }
        for (String id : NatCgroup.leftIds(dirs)) {
            if (!live.contains(id)) {
                NatCgroup.of(dirs, id).remove();
            }
        }
    }

    /** The rules of a sandbox as {@code iptables -S} prints them (tests, {@code network show}). */
    public static List<String> rulesOf(String sandboxId) {
        String chain = chainOf(sandboxId);
        List<String> out = new ArrayList<>();
        for (String line : list("iptables", null)) {
            if (line.contains(" " + chain + " ") || line.endsWith(" " + chain)) {
                out.add(line);
            }
        }
        String redirect = redirectChainOf(sandboxId);
        for (String line : list("iptables", "nat", null)) {
            if (line.contains(" " + redirect + " ") || line.endsWith(" " + redirect)) {
                out.add("-t nat " + line);
            }
        }
        return out;
    }

    /** Whether iptables can be run here (root, with the tool installed). */
    static boolean available() {
        return HostCommand.run(List.of("iptables", "-w", "-S", "OUTPUT"), null, null)
                .ok();
    }

    private static void removeChain(String chain) {
        List<String> script = new ArrayList<>();
        script.add("*filter");
        for (int n : jumpsTo(chain)) {
            script.add("-D " + CHAIN + " " + n);
        }
        boolean exists = !list("iptables", chain).isEmpty();
        if (exists) {
            script.add("-F " + chain);
            script.add("-X " + chain);
        }
        script.add("COMMIT");
        if (script.size() > 2) {
            restore("iptables-restore", script);
        }
    }

    /**
     * The positions of the rules in the shared chain that jump to {@code chain}, last first, so
     * deleting them in this order keeps the others' positions. By position, because deleting by
     * rule text would make iptables look up a group that may be gone already.
     */
    private static List<Integer> jumpsTo(String chain) {
        return jumpsTo("filter", CHAIN, chain);
    }

    private static List<Integer> jumpsTo(String table, String shared, String chain) {
        List<Integer> out = new ArrayList<>();
        int n = 0;
        for (String line : list("iptables", table, shared)) {
            if (line.startsWith("-A " + shared + " ")) {
                n++;
                if (line.endsWith(" -j " + chain)) {
                    out.addFirst(n);
                }
            }
        }
        return out;
    }

    /** The shared chain, its jump from OUTPUT and the catch-all refusal, for IPv4 and IPv6. */
    private static void ensureBase() {
        for (String tool : List.of("iptables", "ip6tables")) {
            boolean v6 = tool.equals("ip6tables");
            run(tool, List.of("-N", CHAIN), true);
            if (!run(tool, List.of("-C", "OUTPUT", "-j", CHAIN), true)) {
                run(tool, List.of("-I", "OUTPUT", "1", "-j", CHAIN), false);
            }
            List<List<String>> catchAll = List.of(
                    List.of(
                            "-m",
                            "cgroup",
                            "--path",
                            NatCgroup.TOP,
                            "-p",
                            "tcp",
                            "-j",
                            "REJECT",
                            "--reject-with",
                            "tcp-reset"),
                    List.of(
                            "-m",
                            "cgroup",
                            "--path",
                            NatCgroup.TOP,
                            "-j",
                            "REJECT",
                            "--reject-with",
                            v6 ? "icmp6-adm-prohibited" : "icmp-admin-prohibited"));
            for (List<String> rule : catchAll) {
                List<String> check = new ArrayList<>(List.of("-C", CHAIN));
                check.addAll(rule);
                if (!run(tool, check, true)) {
                    List<String> add = new ArrayList<>(List.of("-A", CHAIN));
                    add.addAll(rule);
                    run(tool, add, false);
                }
            }
        }
    }

    /** The nat table's shared chain and its jump from OUTPUT (IPv4 only: nat sandboxes have no IPv6). */
    private static void ensureRedirectBase() {
        run("iptables", List.of("-t", "nat", "-N", REDIRECT_CHAIN), true);
        if (!run("iptables", List.of("-t", "nat", "-C", "OUTPUT", "-j", REDIRECT_CHAIN), true)) {
            run("iptables", List.of("-t", "nat", "-I", "OUTPUT", "1", "-j", REDIRECT_CHAIN), false);
        }
    }

    private static boolean run(String tool, List<String> args, boolean mayFail) {
        List<String> argv = new ArrayList<>(List.of(tool, "-w"));
        argv.addAll(args);
        HostCommand.Result r = HostCommand.run(argv, null, null);
        if (!r.ok() && !mayFail) {
            throw new SandboxException(
                    SandboxException.Kind.FAILED,
                    "cannot set up the nat firewall: "
                            + String.join(" ", argv) + ": " + r.output().strip()
                            + " (--network nat needs root and iptables on the host)");
        }
        return r.ok();
    }

    private static List<String> list(String tool, @Nullable String chain) {
        return list(tool, "filter", chain);
    }

    private static List<String> list(String tool, String table, @Nullable String chain) {
        List<String> argv = new ArrayList<>(List.of(tool, "-w", "-t", table, "-S"));
        if (chain != null) {
            argv.add(chain);
        }
        HostCommand.Result r = HostCommand.run(argv, null, null);
        return r.ok() ? r.output().lines().toList() : List.of();
    }

    private static void restore(String tool, List<String> script) {
        Path file;
        try {
            file = Files.createTempFile("airlock-nat", ".rules");
            Files.writeString(file, String.join("\n", script) + "\n", StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the nat firewall rules", e);
        }
        try {
            HostCommand.Result r =
                    HostCommand.run(List.of("sh", "-c", tool + " -w --noflush < \"$0\"", file.toString()), null, null);
            if (!r.ok()) {
                throw new SandboxException(
                        SandboxException.Kind.FAILED,
                        "cannot install the nat firewall rules: " + r.output().strip()
                                + " (--network nat needs root and iptables on the host)");
            }
        } finally {
            HostFiles.deleteTree(file);
        }
    }

    /** The IPv4 nameservers in the host's resolv.conf: where slirp sends the guest's DNS queries. */
    static List<InetAddress> hostNameservers() {
        List<InetAddress> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/etc/resolv.conf"), StandardCharsets.UTF_8)) {
                String[] f = line.strip().split("\\s+");
                if (f.length >= 2 && f[0].equals("nameserver") && !f[1].contains(":")) {
                    out.add(NetworkSpec.literal(f[1]));
                }
            }
        } catch (IOException | RuntimeException e) {
            // no resolver configured: names do not resolve in the guest either
        }
        return out;
    }
}
