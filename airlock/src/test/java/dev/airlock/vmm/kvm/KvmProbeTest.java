package dev.airlock.vmm.kvm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class KvmProbeTest {

    @Test
    void probeOnThisHostReturnsAWellFormedResult() throws IOException {
        KvmProbe.Result result = new KvmProbe(KvmProbe.DEFAULT_DEVICE, 2_000).run();
        System.out.println(result.summary());
        assertThat(openKvmDescriptors()).as("fds left open by the probe").isEmpty();

        assertThat(result.summary()).isNotBlank();
        switch (result) {
            case KvmProbe.Works works -> {
                assertThat(works.apiVersion()).isEqualTo(12);
                assertThat(works.portByte()).isEqualTo(0x42);
                assertThat(works.iterations()).isEqualTo(2_000);
                assertThat(works.roundTripNanosMedian()).isPositive();
                assertThat(works.roundTripNanosP95()).isGreaterThanOrEqualTo(works.roundTripNanosMedian());
                assertThat(works.roundTripNanosMean()).isPositive();
            }
            case KvmProbe.Failed failed -> {
                assertThat(failed.stage()).isNotBlank();
                assertThat(failed.detail()).isNotBlank();
            }
            case KvmProbe.Unavailable unavailable ->
                assertThat(unavailable.reason()).contains(KvmProbe.DEFAULT_DEVICE.toString());
        }
    }

    /** Targets of this process's descriptors that belong to KVM (the device, VM or vCPU fds). */
    private static List<String> openKvmDescriptors() throws IOException {
        List<String> kvm = new ArrayList<>();
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
            for (Path fd : fds) {
                try {
                    String target = Files.readSymbolicLink(fd).toString();
                    if (target.equals("/dev/kvm") || target.startsWith("anon_inode:kvm")) {
                        kvm.add(target);
                    }
                } catch (IOException e) {
                    // the directory stream's own fd, or one closed meanwhile
                }
            }
        }
        return kvm;
    }

    @Test
    void missingDeviceIsUnavailableAndNamesThePath() {
        Path missing = Path.of("/nonexistent/airlock-test/kvm");

        KvmProbe.Result result = KvmProbe.forDevice(missing).run();

        assertThat(result).isInstanceOf(KvmProbe.Unavailable.class);
        assertThat(((KvmProbe.Unavailable) result).reason())
                .contains(missing.toString())
                .contains("ENOENT");
    }

    @Test
    void deviceThatIsNotKvmFailsAtTheApiVersionIoctl() {
        // /dev/null opens fine but knows no KVM ioctls: the kernel answers ENOTTY.
        KvmProbe.Result result = KvmProbe.forDevice(Path.of("/dev/null")).run();

        assertThat(result).isInstanceOf(KvmProbe.Failed.class);
        KvmProbe.Failed failed = (KvmProbe.Failed) result;
        assertThat(failed.stage()).isEqualTo("KVM_GET_API_VERSION");
        assertThat(failed.detail()).contains("ENOTTY");
    }

    @Test
    void iterationsMustBePositive() {
        assertThatThrownBy(() -> new KvmProbe(KvmProbe.DEFAULT_DEVICE, 0)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void ioctlNumbersMatchTheKernelHeaders() {
        assertThat(KvmIoctls.KVM_GET_API_VERSION).isEqualTo(0xAE00L);
        assertThat(KvmIoctls.KVM_CREATE_VM).isEqualTo(0xAE01L);
        assertThat(KvmIoctls.KVM_GET_VCPU_MMAP_SIZE).isEqualTo(0xAE04L);
        assertThat(KvmIoctls.KVM_CREATE_VCPU).isEqualTo(0xAE41L);
        assertThat(KvmIoctls.KVM_SET_USER_MEMORY_REGION).isEqualTo(0x4020AE46L);
        assertThat(KvmIoctls.KVM_RUN).isEqualTo(0xAE80L);
        assertThat(KvmIoctls.KVM_GET_REGS).isEqualTo(0x8090AE81L);
        assertThat(KvmIoctls.KVM_SET_REGS).isEqualTo(0x4090AE82L);
        assertThat(KvmIoctls.KVM_GET_SREGS).isEqualTo(0x8138AE83L);
        assertThat(KvmIoctls.KVM_SET_SREGS).isEqualTo(0x4138AE84L);
    }

    @Test
    void ioctlEncodingFollowsTheGenericLayout() {
        assertThat(KvmIoctls.io(0xAE, 0x80)).isEqualTo(0xAE80L);
        assertThat(KvmIoctls.ior(0xAE, 0x81, 144)).isEqualTo(0x8090AE81L);
        assertThat(KvmIoctls.iow(0xAE, 0x46, 32)).isEqualTo(0x4020AE46L);
        // _IOWR(KVMIO, 0x05, struct kvm_cpuid2) from kvm.h: KVM_GET_SUPPORTED_CPUID, 8-byte header.
        assertThat(KvmIoctls.iowr(0xAE, 0x05, 8)).isEqualTo(0xC008AE05L);
        assertThatThrownBy(() -> KvmIoctls.ioc(0, 0xAE, 0, 1 << 14)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void exitReasonsAreNamedAsInTheHeader() {
        assertThat(KvmIoctls.exitName(2)).isEqualTo("KVM_EXIT_IO (2)");
        assertThat(KvmIoctls.exitName(5)).isEqualTo("KVM_EXIT_HLT (5)");
        assertThat(KvmIoctls.exitName(8)).isEqualTo("KVM_EXIT_SHUTDOWN (8)");
        assertThat(KvmIoctls.exitName(9)).isEqualTo("KVM_EXIT_FAIL_ENTRY (9)");
        assertThat(KvmIoctls.exitName(17)).isEqualTo("KVM_EXIT_INTERNAL_ERROR (17)");
        assertThat(KvmIoctls.exitName(999)).isEqualTo("KVM_EXIT_? (999)");
        assertThat(KvmIoctls.internalErrorName(1)).isEqualTo("KVM_INTERNAL_ERROR_EMULATION (1)");
    }

    @Test
    void percentileUsesNearestRank() {
        long[] sorted = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        assertThat(KvmProbe.percentile(sorted, 50)).isEqualTo(5);
        assertThat(KvmProbe.percentile(sorted, 95)).isEqualTo(10);
        assertThat(KvmProbe.percentile(new long[] {7}, 95)).isEqualTo(7);
    }
}
