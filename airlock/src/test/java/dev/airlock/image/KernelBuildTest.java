package dev.airlock.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.setup.Setup;
import dev.airlock.testing.TestHost;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
}
