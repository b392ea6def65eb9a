package dev.airlock.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.setup.Setup;
import dev.airlock.testing.TestHost;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The kernel cache: found by key, and a damaged entry is recognised as such, never booted. */
class KernelBuildTest {
    private Kernel built;
    private Path privateCache;
    private AirlockDirs dirs;

    @BeforeEach
    void copyTheBuiltKernelIntoAPrivateCache() throws Exception {
        Setup.Report host = TestHost.ready();
        built = host.kernel();
        AirlockDirs shared = AirlockDirs.fromEnvironment();
        privateCache = Files.createTempDirectory("airlock-kernel-cache");
        dirs = new AirlockDirs(shared.home(), privateCache, shared.data(), shared.runtime());
        Path entry = Files.createDirectories(dirs.kernels().resolve(built.key()));
        try (var files = Files.list(built.vmlinux().getParent())) {
            for (Path f : files.toList()) {
                Files.copy(f, entry.resolve(f.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
    }

    @AfterEach
    void cleanUp() {
        HostFiles.deleteTree(privateCache);
    }

    @Test
    void theKeyCoversSourceVersionFragmentAndScript() {
        KernelBuild kb = new KernelBuild(dirs);
        assertThat(kb.key()).isEqualTo(built.key()).hasSize(16);
        assertThat(kb.cached()).hasValueSatisfying(k -> assertThat(k.version()).isEqualTo(built.version()));
    }

    @Test
    void aTruncatedVmlinuxIsReportedAsCorrupt() throws Exception {
        Path vmlinux = dirs.kernels().resolve(built.key()).resolve("vmlinux");
        try (RandomAccessFile f = new RandomAccessFile(vmlinux.toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        assertThatThrownBy(() -> new KernelBuild(dirs).cached())
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("kernel cache entry")
                .hasMessageContaining("is corrupt");
    }

    @Test
    void aVmlinuxThatIsNotAnElfIsReportedAsCorrupt() throws Exception {
        Path vmlinux = dirs.kernels().resolve(built.key()).resolve("vmlinux");
        Files.write(vmlinux, new byte[] {'n', 'o', 't', ' ', 'e', 'l', 'f'});
        assertThatThrownBy(() -> new KernelBuild(dirs).cached())
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("not a 64-bit ELF");
    }

    @Test
    void changedContentOfTheSameSizeFailsVerification() throws Exception {
        Path vmlinux = dirs.kernels().resolve(built.key()).resolve("vmlinux");
        try (RandomAccessFile f = new RandomAccessFile(vmlinux.toFile(), "rw")) {
            f.seek(f.length() - 1);
            int last = f.read();
            f.seek(f.length() - 1);
            f.write(last ^ 0xff);
        }
        KernelBuild kb = new KernelBuild(dirs);
        Kernel k = kb.cached().orElseThrow();
        assertThatThrownBy(() -> kb.verify(k))
                .isInstanceOf(ImageException.class)
                .hasMessageContaining("vmlinux content differs from its manifest");
    }

    /**
     * A second process that misses the cache while another builds the same key waits for that
     * build instead of starting its own. The other builder is a real second JVM holding the key's
     * lock file (a POSIX record lock, as HostFiles takes it); its finished build is the entry
     * moved into place before it lets go. Were the lock not honoured, the progress callback stops
     * the build before the script starts.
     */
    @Test
    void aSecondProcessWaitsForTheBuildUnderWayInsteadOfStartingItsOwn() throws Exception {
        Path entry = dirs.kernels().resolve(built.key());
        Path finished = Files.move(entry, privateCache.resolve("finished-elsewhere"));
        Path holder = privateCache.resolve("HoldLock.java");
        Files.writeString(holder, """
                import java.nio.channels.FileChannel;
                import java.nio.file.Path;
                import java.nio.file.StandardOpenOption;
                class HoldLock {
                    public static void main(String[] a) throws Exception {
                        try (FileChannel ch = FileChannel.open(Path.of(a[0]),
                                StandardOpenOption.CREATE, StandardOpenOption.WRITE); var l = ch.lock()) {
                            System.out.println("held");
                            System.in.readAllBytes();
                        }
                    }
                }
                """);
        Process other = new ProcessBuilder(
                        Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                        holder.toString(),
                        dirs.kernels().resolve(built.key() + ".lock").toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        try (var fromOther = new BufferedReader(new InputStreamReader(other.getInputStream(), UTF_8))) {
            assertThat(fromOther.readLine()).isEqualTo("held");
            List<String> steps = new CopyOnWriteArrayList<>();
            CountDownLatch said = new CountDownLatch(1);
            CompletableFuture<Kernel> second = CompletableFuture.supplyAsync(() -> new KernelBuild(dirs).ensure(m -> {
                steps.add(m);
                said.countDown();
                if (m.startsWith("building the guest kernel")) {
                    throw new IllegalStateException("a second build started while the first held the lock");
                }
            }));
            assertThat(said.await(60, TimeUnit.SECONDS)).isTrue();
            assertThat(steps.getFirst()).startsWith("waiting for another process's build of the guest kernel");
            Files.move(finished, entry);
            other.getOutputStream().close(); // the other builder is done and lets go of the lock
            Kernel k = second.get(60, TimeUnit.SECONDS);
            assertThat(k.key()).isEqualTo(built.key());
            assertThat(k.vmlinux()).isEqualTo(entry.resolve("vmlinux"));
            assertThat(steps).hasSize(1);
        } finally {
            other.destroyForcibly().waitFor();
        }
    }
}
