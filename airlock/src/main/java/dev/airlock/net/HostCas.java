package dev.airlock.net;

import dev.airlock.guest.GuestChannel;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The CAs this host trusts beyond the public ones every image has: a TLS-intercepting network's
 * CA, a company's, a developer's local one. Found where Debian and the usual tools look (the
 * local CA directory and the files and directories {@link #VARIABLES} name), minus the public
 * CAs of the host's distribution (Debian's Mozilla set), so a variable naming the whole system
 * bundle adds only what the host added to it. (Not minus the JDK's trust store: Debian's JDK
 * builds it from the system's, local CAs included.)
 *
 * <p>Every file is read with a size cap and parsed here; only certificates that parse as X.509
 * CAs are kept, and the guest gets them re-encoded from their DER, never the host's bytes.
 */
public final class HostCas {
    /** Debian's and Ubuntu's directory for CAs the administrator added. */
    public static final Path LOCAL_DIR = Path.of("/usr/local/share/ca-certificates");
    /** The distribution's public CAs (Debian's ca-certificates package). */
    static final Path PUBLIC_DIR = Path.of("/usr/share/ca-certificates/mozilla");
    /** Variables naming CA files or directories that OpenSSL, Node and Python's requests read. */
    public static final List<String> VARIABLES =
            List.of("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE");

    static final long MAX_FILE = 4L << 20;
    static final int MAX_FILES = 4096;
    static final int MAX_CAS = 256;
    private static final int MAX_DEPTH = 4;

    /** Where the guest keeps each host CA: the guest's own local CA directory. */
    static final String GUEST_PREFIX = "/usr/local/share/ca-certificates/airlock-host-";

    /**
     * One CA the host trusts.
     *
     * @param source the file it was found in
     */
    public record Ca(X509Certificate certificate, Path source) {
        public String subject() {
            return certificate.getSubjectX500Principal().getName();
        }

        /** SHA-256 of the DER, hex. */
        public String fingerprint() {
            return fingerprintOf(certificate);
        }

        public String pem() {
            try {
                return InterceptionCa.pem("CERTIFICATE", certificate.getEncoded());
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * What a search found.
     *
     * @param cas the extra CAs, each once
     * @param problems files that could not be used and why (for {@code airlock doctor})
     */
    public record Found(List<Ca> cas, List<String> problems) {
        public static Found none() {
            return new Found(List.of(), List.of());
        }

        /** Guest path to PEM text, one file per CA, named by its fingerprint. */
        Map<String, String> guestFiles() {
            Map<String, String> out = new LinkedHashMap<>();
            for (Ca ca : cas) {
                out.put(GUEST_PREFIX + ca.fingerprint().substring(0, 16) + ".crt", ca.pem());
            }
            return out;
        }

        /**
         * Adds these CAs, and the sandbox's interception CA when given, to the guest's trust store
         * (see {@link GuestTrustStore}) in one pass over its bundle; idempotent, so it runs on
         * every boot, restore, resume and fork.
         */
        public void installIn(GuestChannel guest, @Nullable InterceptionCa sandboxCa)
                throws IOException, InterruptedException {
            Map<String, String> files = new LinkedHashMap<>();
            if (sandboxCa != null) {
                files.put(InterceptionCa.GUEST_CA_FILE, sandboxCa.certificatePem());
            }
            files.putAll(guestFiles());
            if (!files.isEmpty()) {
                GuestTrustStore.add(
                        guest,
                        files,
                        InterceptionCa.GUEST_BUNDLE,
                        InterceptionCa.MAX_GUEST_BUNDLE,
                        InterceptionCa.GUEST_CALL_TIMEOUT,
                        sandboxCa == null ? "the host's CAs" : "the sandbox CA");
            }
        }

        /**
         * The variables that make tools read the bundle holding these CAs; Node takes one file of
         * extra CAs, which then is the whole bundle.
         */
        public Map<String, String> guestEnv() {
            if (cas.isEmpty()) {
                return Map.of();
            }
            Map<String, String> out = new LinkedHashMap<>(InterceptionCa.guestEnv());
            out.put("NODE_EXTRA_CA_CERTS", InterceptionCa.GUEST_BUNDLE);
            return Map.copyOf(out);
        }
    }

    private final Path localDir;
    private final Path publicDir;
    private final Function<String, @Nullable String> env;

    HostCas(Path localDir, Path publicDir, Function<String, @Nullable String> env) {
        this.localDir = localDir;
        this.publicDir = publicDir;
        this.env = env;
    }

    private record Cached(String key, Found found) {}

    private static volatile @Nullable Cached cached;

    /**
     * This host's extra CAs as the daemon's environment names them; searched again only when one
     * of the places changed (by size and modification time), since every sandbox start asks.
     */
    public static Found ofThisHost() {
        HostCas host = new HostCas(LOCAL_DIR, PUBLIC_DIR, System::getenv);
        String key = host.stamp();
        Cached c = cached;
        if (c != null && c.key().equals(key)) {
            return c.found();
        }
        Found found = host.find();
        cached = new Cached(key, found);
        return found;
    }

    /** The places searched, in order: the local directory, then each variable's file or directories. */
    List<Path> places() {
        List<Path> out = new ArrayList<>();
        out.add(localDir);
        for (String v : VARIABLES) {
            String value = env.apply(v);
            if (value == null || value.isBlank()) {
                continue;
            }
            // SSL_CERT_DIR is a list, as PATH is.
            for (String p : v.equals("SSL_CERT_DIR") ? value.split(":") : new String[] {value}) {
                if (!p.isBlank()) {
                    out.add(Path.of(p));
                }
            }
        }
        return out;
    }

    private String stamp() {
        StringBuilder b = new StringBuilder();
        for (Path p : places()) {
            b.append(p).append('|');
            try {
                BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                b.append(a.size()).append('|').append(a.lastModifiedTime().toMillis());
            } catch (IOException e) {
                b.append('-');
            }
            b.append('\n');
        }
        return b.toString();
    }

    Found find() {
        Set<String> known = new HashSet<>(publicFingerprints());
        List<Ca> cas = new ArrayList<>();
        List<String> problems = new ArrayList<>();
        Set<Path> read = new HashSet<>();
        for (Path place : places()) {
            boolean local = place.equals(localDir);
            if (!Files.exists(place)) {
                if (!local) {
                    problems.add(place + " (named by the environment) does not exist");
                }
                continue;
            }
            for (Path file : files(place, local ? MAX_DEPTH : 1, problems)) {
                Path real;
                try {
                    real = file.toRealPath();
                } catch (IOException e) {
                    continue;
                }
                if (!read.add(real)) {
                    continue;
                }
                for (X509Certificate c : certificates(file, problems)) {
                    // A public CA is no news, expired or not: only the host's own are checked.
                    if (!known.add(fingerprintOf(c))) {
                        continue;
                    }
                    String not = notAUsableCa(c);
                    if (not != null) {
                        problems.add(file + ": " + c.getSubjectX500Principal().getName() + " left out: " + not);
                        continue;
                    }
                    if (cas.size() == MAX_CAS) {
                        problems.add("more than " + MAX_CAS + " extra CAs: the rest are left out");
                        return new Found(List.copyOf(cas), List.copyOf(problems));
                    }
                    cas.add(new Ca(c, file));
                }
            }
        }
        return new Found(List.copyOf(cas), List.copyOf(problems));
    }

    /** The regular files of a place (itself if a file), at most {@value #MAX_FILES}, in name order. */
    private static List<Path> files(Path place, int depth, List<String> problems) {
        if (Files.isRegularFile(place)) {
            return List.of(place);
        }
        List<Path> out = new ArrayList<>();
        ArrayDeque<Map.Entry<Path, Integer>> dirs = new ArrayDeque<>();
        dirs.add(Map.entry(place, depth));
        while (!dirs.isEmpty()) {
            Map.Entry<Path, Integer> d = dirs.poll();
            List<Path> entries = new ArrayList<>();
            try (DirectoryStream<Path> s = Files.newDirectoryStream(d.getKey())) {
                for (Path p : s) {
                    entries.add(p);
                    if (entries.size() > MAX_FILES) {
                        break;
                    }
                }
            } catch (IOException e) {
                problems.add(d.getKey() + ": cannot list: " + e.getMessage());
                continue;
            }
            entries.sort(null);
            for (Path p : entries) {
                if (out.size() == MAX_FILES) {
                    problems.add(place + ": more than " + MAX_FILES + " files: the rest are left out");
                    return out;
                }
                if (Files.isRegularFile(p)) {
                    out.add(p);
                } else if (Files.isDirectory(p) && d.getValue() > 1) {
                    dirs.add(Map.entry(p, d.getValue() - 1));
                }
            }
        }
        return out;
    }

    /** The certificates in a PEM file; what does not parse is noted, not kept. */
    static List<X509Certificate> certificates(Path file, List<String> problems) {
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE) {
                problems.add(file + ": larger than " + (MAX_FILE >> 20) + " MiB, not read");
                return List.of();
            }
            try (InputStream in = Files.newInputStream(file)) {
                bytes = in.readNBytes((int) MAX_FILE);
            }
        } catch (IOException e) {
            problems.add(file + ": cannot read: " + e.getMessage());
            return List.of();
        }
        List<X509Certificate> out = new ArrayList<>();
        String text = new String(bytes, StandardCharsets.US_ASCII);
        String begin = "-----BEGIN CERTIFICATE-----";
        String end = "-----END CERTIFICATE-----";
        int at = text.indexOf(begin);
        boolean any = false;
        while (at >= 0) {
            int stop = text.indexOf(end, at);
            if (stop < 0) {
                problems.add(file + ": a certificate without its END line");
                break;
            }
            any = true;
            String base64 = text.substring(at + begin.length(), stop).replaceAll("\\s", "");
            try {
                X509Certificate c = (X509Certificate) CertificateFactory.getInstance("X.509")
                        .generateCertificate(
                                new ByteArrayInputStream(Base64.getDecoder().decode(base64)));
                out.add(c);
            } catch (IllegalArgumentException | GeneralSecurityException e) {
                problems.add(file + ": not a valid certificate: " + e.getMessage());
            }
            at = text.indexOf(begin, stop);
        }
        if (!any) {
            problems.add(file + ": holds no PEM certificate");
        }
        return out;
    }

    /** Why a certificate cannot be a trust anchor here, or null if it can. */
    private static @Nullable String notAUsableCa(X509Certificate c) {
        boolean selfSigned = c.getSubjectX500Principal().equals(c.getIssuerX500Principal());
        if (c.getBasicConstraints() < 0 && !(c.getVersion() == 1 && selfSigned)) {
            return "not a CA certificate";
        }
        if (c.getNotAfter().before(new Date())) {
            return "expired " + c.getNotAfter().toInstant();
        }
        return null;
    }

    private Set<String> publicFingerprints() {
        Set<String> out = new HashSet<>();
        List<String> ignored = new ArrayList<>();
        if (Files.isDirectory(publicDir)) {
            for (Path f : files(publicDir, MAX_DEPTH, ignored)) {
                for (X509Certificate c : certificates(f, ignored)) {
                    out.add(fingerprintOf(c));
                }
            }
        }
        return out;
    }

    static String fingerprintOf(X509Certificate c) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(c.getEncoded()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
