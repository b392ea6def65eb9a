package dev.airlock.vmm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.guest.GuestChannel;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.HostFiles;
import dev.airlock.setup.Setup;
import dev.airlock.testing.TestHost;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Boots the built kernel with the built base image under QEMU microvm, to init and back to power-off. */
class MicrovmBootTest {

    @Test
    void bootsBaseImageToTheAgentAndPowersOffCleanly() throws Exception {
        Setup.Report host = TestHost.ready();
        AirlockDirs dirs = TestHost.isolated("boot");
        Path state = Files.createDirectories(dirs.data().resolve("vm"));
        Path layer = state.resolve("layer.ext4");
        try (RandomAccessFile f = new RandomAccessFile(layer.toFile(), "rw")) {
            f.setLength(256L << 20);
        }
        assertThat(new ProcessBuilder("mkfs.ext4", "-q", "-F", layer.toString())
                        .start()
                        .waitFor())
                .isZero();
        VmSpec spec = new VmSpec(
                host.kernel().vmlinux(),
                host.initrd(),
                "console=ttyS0 reboot=t panic=-1 pci=off airlock.root=/dev/vda airlock.layer=/dev/vdb"
                        + " airlock.hostname=boot-test",
                List.of(new VmSpec.Disk(host.image().file(), true), new VmSpec.Disk(layer, false)),
                1,
                256,
                host.accel().accel(),
                state,
                dirs.runtime());
        QemuMicrovm qemu = new QemuMicrovm();
        RunningVm vm = qemu.launch(spec);
        try {
            SocketChannel socket = SocketChannel.open(StandardProtocolFamily.UNIX);
            socket.connect(UnixDomainSocketAddress.of(spec.agentSocket()));
            try (GuestChannel ch = GuestChannel.open(socket, Duration.ofSeconds(120))) {
                assertThat(ch.agentVersion()).isNotBlank();
                ch.shutdown();
            }
            // A clean power-off makes QEMU exit by itself (reboot=t with -no-reboot): no kill needed.
            assertThat(vm.awaitExit(Duration.ofSeconds(60)))
                    .as("QEMU exits after the guest powers off")
                    .isTrue();
            String console = Files.readString(spec.consoleLog());
            assertThat(console)
                    .contains("Linux version " + host.kernel().version())
                    .contains("Run /init as init process")
                    .contains("airlock-init: ready")
                    .contains("reboot: Restarting system");
            assertThat(console).doesNotContain("Kernel panic").doesNotContain("Attempted to kill init");
        } finally {
            if (vm.isAlive()) {
                vm.kill();
            }
            HostFiles.deleteTree(dirs.data());
            HostFiles.deleteTree(dirs.runtime());
        }
    }
}
