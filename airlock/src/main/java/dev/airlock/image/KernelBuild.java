package dev.airlock.image;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostCommand;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import tools.jackson.databind.json.JsonMapper;

/**
 * Builds the guest kernel from Debian's linux-source with the fragment kept in the repo, cached
 * under the XDG cache dir by a hash of (source version, fragment, build script): editing the
 * fragment or upgrading linux-source yields a new key and a rebuild, nothing else does.
 */
public final class KernelBuild {
    static final String FRAGMENT = "guest/kernel/airlock.config";
    static final String SCRIPT = "scripts/build-kernel.sh";
    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final AirlockDirs dirs;

    public KernelBuild(AirlockDirs dirs) {
        this.dirs = dirs;
    }

    /** Written after a successful build; a cache entry without a matching one is corrupt. */
    record Manifest(
            @JsonProperty("version") String version,
            @JsonProperty("vmlinuxSha256") String vmlinuxSha256,
            @JsonProperty("vmlinuxBytes") long vmlinuxBytes,
            @JsonProperty("bzImageBytes") long bzImageBytes,
            @JsonProperty("buildSeconds") long buildSeconds) {}

    /** The cache key for the kernel the current source tree and host would build. */
    public String key() {
        Path fragment = dirs.source(FRAGMENT);
        Path script = dirs.source(SCRIPT);
        if (!Files.isRegularFile(fragment) || !Files.isRegularFile(script)) {
            throw new ImageException("the Airlock source tree is incomplete: " + fragment + " or " + script
                    + " is missing; run airlock from its checkout (bin/airlock) or set AIRLOCK_HOME");
        }
        String material = "linux-source=" + sourceVersion() + "\n" + "fragment=" + Hashing.sha256(fragment) + "\n"
                + "script=" + Hashing.sha256(script) + "\n";
        return Hashing.sha256(material).substring(0, 16);
    }

    /** The built kernel for the current key, if its cache entry is present and intact. */
    public Optional<Kernel> cached() {
        return load(key(), false);
    }

    /** Returns the cached kernel, building it first (about 10 minutes on 2 cores) when missing. */
    public Kernel ensure(Progress progress) {
        String key = key();
        Optional<Kernel> ready = cachedQuietly(key);
        if (ready.isPresent()) {
            return ready.get();
        }
        AirlockDirs.ensureDir(dirs.kernels());
        // Two processes (a daemon, a CLI, parallel test JVMs) that both miss the cache would
        // otherwise each spend the whole build on the same key, on the same cores.
        Path lockFile = dirs.kernels().resolve(key + ".lock");
        Optional<HostFiles.Lock> first = HostFiles.tryLock(lockFile);
        if (first.isEmpty()) {
            progress.step("waiting for another process's build of the guest kernel " + key);
        }
        try (HostFiles.Lock ignored = first.orElseGet(() -> HostFiles.lock(lockFile))) {
            return ensureLocked(key, progress);
        }
    }

    private Optional<Kernel> cachedQuietly(String key) {
        try {
            return load(key, false);
        } catch (ImageException corrupt) {
            return Optional.empty(); // ensureLocked says so and rebuilds, under the lock
        }
    }

    private Kernel ensureLocked(String key, Progress progress) {
        Path entry = dirs.kernels().resolve(key);
        if (Files.exists(entry)) {
            try {
                Optional<Kernel> k = load(key, true);
                if (k.isPresent()) {
                    return k.get();
                }
            } catch (ImageException corrupt) {
                progress.step(corrupt.getMessage() + "; rebuilding it");
            }
            HostFiles.deleteTree(entry);
        }
        progress.step("building the guest kernel " + key + " (Debian linux-source " + sourceVersion() + " + " + FRAGMENT
                + ")");
        HostCommand.Result r = HostCommand.run(
                List.of(
                        "bash",
                        dirs.source(SCRIPT).toString(),
                        dirs.source(FRAGMENT).toString(),
                        entry.toString()),
                null,
                line -> {
                    if (line.startsWith("[kernel]")) {
                        progress.step(line);
                    }
                });
        if (!r.ok()) {
            throw new ImageException("the guest kernel build failed (exit " + r.exitCode() + "):\n" + tail(r.output()));
        }
        return load(key, true).orElseThrow(() -> new ImageException("kernel build left no image in " + entry));
    }

    private Optional<Kernel> load(String key, boolean writeManifest) {
        Path entry = dirs.kernels().resolve(key);
        Path vmlinux = entry.resolve("vmlinux");
        Path bzImage = entry.resolve("bzImage");
        Path manifestFile = entry.resolve("manifest.json");
        if (!Files.isDirectory(entry)) {
            return Optional.empty();
        }
        try {
            if (!Files.isRegularFile(vmlinux) || !Files.isRegularFile(bzImage)) {
                throw new ImageException("kernel cache entry " + entry + " is corrupt (vmlinux or bzImage missing)");
            }
            if (!isElf64(vmlinux)) {
                throw new ImageException("kernel cache entry " + entry + " is corrupt (vmlinux is not a 64-bit ELF)");
            }
            Manifest m;
            if (Files.isRegularFile(manifestFile)) {
                m = JSON.readValue(manifestFile.toFile(), Manifest.class);
                if (m.vmlinuxBytes() != Files.size(vmlinux) || m.bzImageBytes() != Files.size(bzImage)) {
                    throw new ImageException(
                            "kernel cache entry " + entry + " is corrupt (sizes differ from its manifest)");
                }
            } else if (writeManifest) {
                // The build script renames a complete directory into place, so an entry without a
                // manifest is a finished build whose manifest was never written.
                m = new Manifest(
                        readString(entry.resolve("version")),
                        Hashing.sha256(vmlinux),
                        Files.size(vmlinux),
                        Files.size(bzImage),
                        Long.parseLong(readString(entry.resolve("build-seconds"))));
                JSON.writeValue(manifestFile.toFile(), m);
            } else {
                return Optional.empty();
            }
            return Optional.of(new Kernel(key, m.version(), vmlinux, bzImage, m.buildSeconds()));
        } catch (IOException | RuntimeException e) {
            if (e instanceof ImageException ie) {
                throw ie;
            }
            throw new ImageException("kernel cache entry " + entry + " is corrupt (" + e.getMessage() + ")", e);
        }
    }

    /** Full check of the cached kernel's content against its manifest (used by setup and doctor). */
    public void verify(Kernel kernel) {
        Path manifestFile = kernel.vmlinux().resolveSibling("manifest.json");
        try {
            Manifest m = JSON.readValue(manifestFile.toFile(), Manifest.class);
            if (!m.vmlinuxSha256().equals(Hashing.sha256(kernel.vmlinux()))) {
                throw new ImageException("kernel cache entry " + manifestFile.getParent()
                        + " is corrupt (vmlinux content differs from its manifest)");
            }
        } catch (RuntimeException e) {
            if (e instanceof ImageException ie) {
                throw ie;
            }
            throw new ImageException("kernel manifest " + manifestFile + " is unreadable: " + e.getMessage(), e);
        }
    }

    static boolean isElf64(Path file) throws IOException {
        try (var in = Files.newInputStream(file)) {
            byte[] h = in.readNBytes(5);
            return h.length == 5 && h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F' && h[4] == 2;
        }
    }

    /** Debian's package version of the newest installed linux-source tarball. */
    static String sourceVersion() {
        Path tarball;
        try (Stream<Path> files = Files.list(Path.of("/usr/src"))) {
            tarball = files.filter(p -> p.getFileName().toString().matches("linux-source-[0-9.]+\\.tar\\.xz"))
                    .max(Comparator.comparing(p -> p.getFileName().toString()))
                    .orElse(null);
        } catch (IOException e) {
            tarball = null;
        }
        if (tarball == null) {
            throw new ImageException(
                    "Debian's kernel source is not installed (no /usr/src/linux-source-*.tar.xz); run: bin/airlock setup");
        }
        String pkg = tarball.getFileName().toString().replace(".tar.xz", "");
        HostCommand.Result r = HostCommand.run(List.of("dpkg-query", "-W", "-f=${Version}", pkg), null, null);
        return r.ok() ? pkg + "=" + r.output().strip() : pkg;
    }

    private static String readString(Path p) throws IOException {
        return Files.readString(p).strip();
    }

    static String tail(String s) {
        String t = s.strip();
        return t.length() > 3000 ? "..." + t.substring(t.length() - 3000) : t;
    }
}
