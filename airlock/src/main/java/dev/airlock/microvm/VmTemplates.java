package dev.airlock.microvm;

import dev.airlock.backend.SandboxPaths;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.guest.GuestChannel;
import dev.airlock.guest.GuestIdentity;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.DiskLayer;
import dev.airlock.host.Hashing;
import dev.airlock.host.HostFiles;
import dev.airlock.host.Progress;
import dev.airlock.sandbox.Sandbox;
import dev.airlock.sandbox.SandboxException;
import dev.airlock.vmm.Accel;
import dev.airlock.vmm.RunningVm;
import dev.airlock.vmm.VmSpec;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.json.JsonMapper;

/**
 * Saved microVMs that sandboxes start from instead of booting. A template is a VM booted once
 * (kernel, agent, image mounted, writable layer formatted) and saved at the moment its agent
 * answered: its RAM as a file ({@code ram}, the guest's memory backend, shared while it was
 * saved), QEMU's device state ({@code state}, a few KB thanks to {@code x-ignore-shared}), its
 * writable layer ({@code layer.ext4}) and a manifest. A sandbox restored from it maps {@code ram}
 * privately, so all sandboxes of one template share its unchanged pages in the host page cache.
 *
 * <p>Templates are keyed by everything the saved VM depends on: kernel, agent (initramfs), image,
 * vCPUs, memory, disk size, process limit, accelerator, QEMU binary and version, the disk it booted on
 * (empty, or a workspace's setup layer: a workspace sandbox starts from a VM that booted with
 * its dependencies installed) and (for {@code --network nat}) the NIC. A template whose files
 * do not match its manifest is reported, deleted and the sandbox boots cold.
 */
final class VmTemplates {
    /**
     * Bumped whenever the layout of a template or what a restore expects changes (2: the manifest
     * names its VMM; 3: the template's layer holds its own /etc/machine-id).
     */
    static final int FORMAT = 3;

    private static final JsonMapper JSON = JsonMapper.builder().build();

    /**
     * The manifest: what the template was built for, the VMM binary and version that saved it (a
     * stream is only ever loaded by that same VMM) and the checksum of its device state.
     */
    record Manifest(int format, String key, String vmm, String stateSha256, long ramBytes, Instant created) {}

    /** A template on disk whose files matched its manifest when it was found. */
    record Template(Path dir, Manifest manifest) {
        Path ram() {
            return dir.resolve("ram");
        }

        Path state() {
            return dir.resolve("state");
        }

        Path layer() {
            return dir.resolve("layer.ext4");
        }
    }

    private final Path root;
    private final AirlockDirs dirs;
    private final MicrovmBackend microvm;
    private final Progress progress;
    private final ConcurrentHashMap<Path, String> fileHashes = new ConcurrentHashMap<>();
    /** The VMM each key was computed for: what its manifest must name. */
    private final ConcurrentHashMap<String, String> vmmOfKey = new ConcurrentHashMap<>();

    VmTemplates(AirlockDirs dirs, MicrovmBackend microvm, Progress progress) {
        this.root = dirs.data().resolve("templates");
        this.dirs = dirs;
        this.microvm = microvm;
        this.progress = progress;
    }

    Path root() {
        return root;
    }

    /** The key of the template a sandbox can start from. */
    String key(Sandbox s, MicrovmBackend.BootAssets boot, @Nullable Path layerTemplate) {
        String vmm = microvm.vmm().binaryFor(s.nat()).identity();
        String initrd = fileHashes.computeIfAbsent(boot.initrd(), Hashing::sha256);
        String recipe = String.join(
                        "\n",
                        "format=" + FORMAT,
                        "kernel=" + boot.kernel().key(),
                        "initrd=" + initrd,
                        "image=" + s.imageId(),
                        "cpus=" + s.resources().cpus(),
                        "memory=" + s.resources().memoryMiB(),
                        "disk=" + s.resources().diskMiB(),
                        "pids=" + s.resources().pids(),
                        "accel=" + s.accel(),
                        // The kernel command line's clock (TSC rate or jiffies) is in the saved RAM.
                        "clock=" + microvm.clockKey(Accel.parse(s.accel())),
                        "qemu=" + vmm,
                        "layer=" + layerIdentity(layerTemplate))
                // The NIC is part of the saved device set: a VM saved with one restores only with one.
                + (s.nat() ? "\nnic=user" : "");
        String key = Hashing.sha256(recipe).substring(0, 24);
        vmmOfKey.put(key, vmm);
        // A template saved by another VMM is never restored: refused here, before the caller
        // looks for it, so this start builds it anew.
        Optional<String> saved = savedBy(key);
        if (saved.isPresent() && !saved.get().equals(vmm)) {
            discard(key, "it was saved by " + saved.get() + ", and this host now runs " + vmm);
        }
        return key;
    }

    /** The VMM named in a template's manifest (empty: no template, or no manifest to read). */
    private Optional<String> savedBy(String key) {
        Path manifest = root.resolve(key).resolve("manifest.json");
        if (!Files.isRegularFile(manifest)) {
            return Optional.empty();
        }
        try {
            return Optional.of(String.valueOf(
                    JSON.readTree(Files.readString(manifest)).path("vmm").asString("")));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /**
     * A workspace setup layer by path, size and time of last change: workspace templates are
     * keyed by their content and replaced whole, so a rebuilt one changes at least the time.
     */
    private static String layerIdentity(@Nullable Path layerTemplate) {
        if (layerTemplate == null) {
            return "empty";
        }
        try {
            return layerTemplate + ":" + Files.size(layerTemplate) + ":"
                    + Files.getLastModifiedTime(layerTemplate).toMillis();
        } catch (IOException e) {
            throw new SandboxException(
                    "the workspace layer " + layerTemplate + " cannot be read: " + e.getMessage(), e);
        }
    }

    /**
     * The template for {@code key} if one exists and is intact. A damaged or mismatched one is
     * reported through progress and deleted, so the caller boots cold and the next start
     * rebuilds it.
     */
    Optional<Template> find(String key, long ramBytes) {
        Path dir = root.resolve(key);
        Path manifestFile = dir.resolve("manifest.json");
        if (!Files.isRegularFile(manifestFile)) {
            return Optional.empty();
        }
        String problem;
        try {
            Manifest m = JSON.readValue(Files.readString(manifestFile), Manifest.class);
            Template t = new Template(dir, m);
            String vmm =
                    vmmOfKey.getOrDefault(key, microvm.vmm().binaryFor(false).identity());
            if (m.format() != FORMAT || !m.key().equals(key)) {
                problem = "it was built for another configuration (key " + m.key() + ", format " + m.format() + ")";
            } else if (!vmm.equals(m.vmm())) {
                problem = "it was saved by " + m.vmm() + ", and this host now runs " + vmm;
            } else if (!Files.isRegularFile(t.ram()) || Files.size(t.ram()) != ramBytes || m.ramBytes() != ramBytes) {
                problem = "its memory file is missing or not " + (ramBytes >> 20) + " MiB";
            } else if (!Files.isRegularFile(t.layer())) {
                problem = "its disk layer is missing";
            } else if (!Files.isRegularFile(t.state())
                    || !Hashing.sha256(t.state()).equals(m.stateSha256())) {
                problem = "its device state does not match its checksum";
            } else {
                return Optional.of(t);
            }
        } catch (IOException | RuntimeException e) {
            problem = "its manifest cannot be read (" + e.getMessage() + ")";
        }
        discard(key, problem);
        return Optional.empty();
    }

    /** Reports and deletes a template that cannot be used; sandboxes already started from it keep running. */
    void discard(String key, String why) {
        progress.step("warning: VM template " + key + " is unusable: " + why + "; deleting it and booting cold");
        HostFiles.deleteTree(root.resolve(key));
    }

    /**
     * Boots a VM for {@code s}'s configuration, waits for its agent and saves it as the template
     * {@code key}. Built in a private directory and renamed into place, so a concurrent start
     * never sees half a template.
     */
    Template build(
            String key, Sandbox s, MicrovmBackend.BootAssets boot, @Nullable Path layerTemplate, Duration bootTimeout) {
        progress.step("building VM template " + key + " for image " + s.image() + " (once per configuration)");
        Path work = AirlockDirs.ensureOwnerOnlyDir(root.resolve(".build-" + UUID.randomUUID()));
        Path runtime =
                dirs.runtime().resolve("tpl-" + work.getFileName().toString().substring(7, 19));
        long ramBytes = (long) s.resources().memoryMiB() << 20;
        Sandbox neutral = s.copyAs(s.id(), "airlock");
        RunningVm vm = null;
        try {
            DiskLayer.fresh(work.resolve("layer.ext4"), s.resources().diskMiB(), layerTemplate);
            VmSpec spec = microvm.spec(neutral, new SandboxPaths(work, runtime), boot)
                    .withMemory(new VmSpec.GuestMemory.File(work.resolve("ram"), true), null);
            vm = microvm.vmm().launch(spec);
            // The agent answering HELLO is the moment worth saving: booted, mounted, serving. One
            // warm-up command first puts the shell, libc and the agent's exec path (passwd, group,
            // cgroup) into the guest's page cache, which the template's RAM carries to every
            // sandbox: their first command then reads nothing from disk.
            try (GuestChannel ch = GuestChannel.connect(spec.agentSocket(), bootTimeout)) {
                ch.ping(Duration.ofSeconds(30));
                try {
                    ExitStatus warm = ch.execBounded(
                            ExecSpec.builder("/bin/sh", "-c", "true; env >/dev/null; ls / >/dev/null")
                                    .timeout(bootTimeout)
                                    .build(),
                            OutputStream.nullOutputStream(),
                            OutputStream.nullOutputStream(),
                            MicrovmBackend.WARM_UP_OUTPUT,
                            bootTimeout);
                    if (warm.shellStatus() != 0) {
                        throw new SandboxException(
                                "the template VM's warm-up command failed: status " + warm.shellStatus());
                    }
                } catch (dev.airlock.guest.CommandNotFoundException
                        | dev.airlock.guest.CommandNotExecutableException e) {
                    // an image without a shell (distroless, scratch + one binary): saved unwarmed
                }
                // Every restore writes a new /etc/machine-id. Written once here, the file and /etc
                // are in the template's own layer, so a restore replaces a file of its layer instead
                // of copying /etc up from the image first: under TCG that copy-up cost each restore
                // ~60 ms of emulation and ~3 MB of translated code of its own.
                ch.setIdentity(GuestIdentity.fresh(neutral.name()), bootTimeout);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new SandboxException("interrupted while building a VM template", e);
            } catch (IOException | TimeoutException e) {
                throw new SandboxException("the template VM did not boot: " + e.getMessage(), e);
            }
            vm.saveState(work.resolve("state"), true);
            vm.kill();
            vm = null;
            // Written out before the manifest makes it a template: its RAM file (written through
            // QEMU's shared mapping, tens of MB still in the page cache) is checked only by its
            // size, so after a host crash a half-written one would pass as whole.
            HostFiles.syncTree(work);
            Manifest m = new Manifest(
                    FORMAT,
                    key,
                    microvm.vmm().binaryFor(spec).identity(),
                    Hashing.sha256(work.resolve("state")),
                    ramBytes,
                    Instant.now());
            HostFiles.writeAtomically(
                    work.resolve("manifest.json"), JSON.writeValueAsString(m).getBytes(StandardCharsets.UTF_8));
            Path dir = root.resolve(key);
            try {
                Files.move(work, dir, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                // Another start built the same template first: use that one.
                HostFiles.deleteTree(work);
            }
            return find(key, ramBytes)
                    .orElseThrow(() -> SandboxException.failed("the VM template " + key + " vanished"));
        } finally {
            if (vm != null) {
                vm.kill();
            }
            HostFiles.deleteTree(runtime);
            if (Files.exists(work)) {
                HostFiles.deleteTree(work);
            }
        }
    }
}
