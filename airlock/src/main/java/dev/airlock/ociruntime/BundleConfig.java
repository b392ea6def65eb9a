package dev.airlock.ociruntime;

import dev.airlock.guest.ContainerMounts;
import dev.airlock.host.NamespaceFile;
import dev.airlock.wire.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;

/**
 * A bundle's {@code config.json} (runtime-spec 1.x) read for a microVM. Every field is either
 * honoured, provided by the VM itself (its own kernel, /proc, /dev, namespaces, limits), or
 * refused with an error naming it: nothing is silently dropped. The tables below are that
 * decision, field by field; docs/oci-runtime.md explains them.
 *
 * @param rootfs the root filesystem directory, shared into the VM
 * @param files bind mounts of single files (podman's /etc/hosts, resolv.conf, hostname,
 *     .containerenv): destination in the guest -> host source, copied in at create
 * @param binds directory binds ({@code -v DIR:/path[:ro]}), microvm mode only ({@link DirectoryBinds})
 * @param memoryMiB {@code linux.resources.memory.limit}, or null for Airlock's default
 * @param cpus from {@code linux.resources.cpu} quota/period, or null
 * @param pids {@code linux.resources.pids.limit}, or null
 * @param replacedByVm the fields whose job (confining a process on the host's kernel) the VM
 *     boundary does instead, for the log
 * @param joins namespaces given by path ({@code linux.namespaces[].path}, as CRI gives an app
 *     container its pod's): type -> path, as written; {@link PodNamespaces} resolves them
 * @param hooks the config's hooks, run on the host by the runtime ({@link Hooks})
 */
record BundleConfig(
        Path bundle,
        Path rootfs,
        ProcessSpec process,
        @Nullable String hostname,
        Map<String, String> annotations,
        Map<String, Path> files,
        List<DirectoryBinds.Bind> binds,
        @Nullable Integer memoryMiB,
        @Nullable Integer cpus,
        @Nullable Integer pids,
        List<String> replacedByVm,
        Map<String, String> joins,
        Hooks hooks) {

    /** The annotation that picks the mode of one container. */
    static final String MODE_ANNOTATION = "run.airlock.runtime";

    /** The modes, each an Airlock runtime (backend) of the same name; microvm is the default. */
    static final List<String> MODES = List.of("microvm", "gvisor", "container");

    private static final long MAX_CONFIG_BYTES = 4L << 20;

    /** Namespaces a VM has of its own, so asking for a new one is met by booting it. */
    private static final Set<String> VM_NAMESPACES = Set.of("pid", "network", "ipc", "uts", "mount", "cgroup");

    /** Kernel file systems the guest mounts itself at these places; type -> destination. */
    private static final Map<String, String> VM_MOUNTS = Map.of(
            "proc", "/proc",
            "sysfs", "/sys",
            "devpts", "/dev/pts",
            "mqueue", "/dev/mqueue",
            "cgroup", "/sys/fs/cgroup",
            "cgroup2", "/sys/fs/cgroup");

    /** Where every sandbox's init mounts a tmpfs of its own (containerd asks for /run too). */
    private static final Set<String> GUEST_TMPFS = Set.of("/dev", "/dev/shm", "/run");

    /** Confinement on the host kernel that a VM replaces with its own kernel and limits. */
    private static final Set<String> PROCESS_REPLACED = Set.of("apparmorProfile", "selinuxLabel", "oomScoreAdj");

    /** What the guest agent applies to the process itself ({@link ConfinementConfig}). */
    private static final Set<String> PROCESS_APPLIED = Set.of("capabilities", "rlimits", "noNewPrivileges");

    private static final Set<String> LINUX_REPLACED =
            Set.of("maskedPaths", "readonlyPaths", "cgroupsPath", "devices", "mountLabel");

    /** Options of a mount that set a per-mount flag. */
    private static final Map<String, Long> MOUNT_FLAGS = Map.of(
            "ro", ContainerMounts.MS_RDONLY,
            "nosuid", ContainerMounts.MS_NOSUID,
            "nodev", ContainerMounts.MS_NODEV,
            "noexec", ContainerMounts.MS_NOEXEC,
            "sync", ContainerMounts.MS_SYNCHRONOUS,
            "dirsync", ContainerMounts.MS_DIRSYNC,
            "noatime", ContainerMounts.MS_NOATIME,
            "nodiratime", ContainerMounts.MS_NODIRATIME,
            "relatime", ContainerMounts.MS_RELATIME,
            "strictatime", ContainerMounts.MS_STRICTATIME);

    /**
     * Options that change nothing inside a VM: the defaults (rw, suid, dev, exec, atime), and
     * propagation, which has no peer to reach from a namespace of the VM's own.
     */
    private static final Set<String> MOUNT_NO_OPS = Set.of(
            "rw",
            "suid",
            "dev",
            "exec",
            "atime",
            "diratime",
            "norelatime",
            "nostrictatime",
            "async",
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
            "bind",
            "rbind");

    /** File-system options the agent passes to the kernel, by type (name, or name= for a value). */
    private static final Map<String, Set<String>> MOUNT_DATA = Map.of(
            "tmpfs", Set.of("size=", "mode=", "nr_inodes=", "nr_blocks=", "uid=", "gid=", "huge="),
            "proc", Set.of("hidepid=", "subset="),
            // the VM's own devpts instance is bound in (a terminal the agent opens is in it),
            // made with these very options
            "devpts", Set.of("newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
            "sysfs", Set.of(),
            "mqueue", Set.of(),
            "cgroup", Set.of(),
            "cgroup2", Set.of());

    static BundleConfig read(Path bundle) {
        Path dir = bundle.toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            throw new RuntimeError("the bundle " + dir + " does not exist or is not a directory");
        }
        Path file = dir.resolve("config.json");
        JsonNode c;
        try {
            if (Files.size(file) > MAX_CONFIG_BYTES) {
                throw new RuntimeError(file + " is larger than " + (MAX_CONFIG_BYTES >> 20) + " MiB");
            }
            c = Json.MAPPER.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new RuntimeError("the bundle " + dir + " has no config.json");
        } catch (IOException e) {
            throw new RuntimeError("cannot read " + file + ": " + e.getMessage(), e);
        } catch (JacksonException e) {
            // Jackson's own message ends in a note about its settings ("Source: REDACTED ..."): the
            // line and column say where to look
            var at = e.getLocation();
            String where = at == null || at.getLineNr() < 1
                    ? ""
                    : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
            throw new RuntimeError(file + " is not valid JSON" + where + ": " + e.getOriginalMessage(), e);
        }
        return parse(dir, c);
    }

    static BundleConfig parse(Path dir, JsonNode c) {
        if (!c.isObject()) {
            throw new RuntimeError("config.json must hold a JSON object");
        }
        List<String> replaced = new ArrayList<>();
        onlyKeys(c, "", Set.of("ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux", "hooks"));
        String version = text(c, "ociVersion");
        if (!version.startsWith("1.")) {
            throw new RuntimeError("ociVersion '" + version + "' is not a runtime-spec 1.x version");
        }
        Hooks hooks = Hooks.read(c.path("hooks"));
        JsonNode proc = c.path("process");
        if (!proc.isObject()) {
            throw new RuntimeError("config.json has no process object");
        }
        JsonNode root = c.path("root");
        onlyKeys(root, "root.", Set.of("path", "readonly"));
        boolean rootReadonly = root.path("readonly").asBoolean(false);
        Path rootfs = dir.resolve(text(root, "path")).normalize();
        if (!Files.isDirectory(rootfs, LinkOption.NOFOLLOW_LINKS)) {
            throw new RuntimeError("the root filesystem " + rootfs + " does not exist or is not a directory");
        }
        Map<String, String> annotations = new LinkedHashMap<>();
        c.path("annotations")
                .properties()
                .forEach(e -> annotations.put(e.getKey(), e.getValue().asString()));
        String mode = annotations.getOrDefault(MODE_ANNOTATION, MODES.getFirst());
        if (!MODES.contains(mode)) {
            throw new RuntimeError("annotation " + MODE_ANNOTATION + "=" + mode + " is not a mode of airlock-runtime:"
                    + " use one of " + String.join(", ", MODES));
        }
        Map<String, Path> files = new LinkedHashMap<>();
        List<DirectoryBinds.Bind> binds = new ArrayList<>();
        JsonNode linux = c.path("linux");
        ContainerMounts mounts = null;
        if (mode.equals("microvm")) {
            mounts = vmMounts(c.path("mounts"), linux, rootReadonly, files, binds);
        } else {
            if (rootReadonly) {
                throw refused("root.readonly", "a read-only root is given in microvm mode only (this is " + mode + ")");
            }
            sandboxMounts(c.path("mounts"), mode, files, binds);
        }
        Map<String, String> joins = new LinkedHashMap<>();
        Integer[] limits = linux(linux, mode, replaced, joins);
        String hostname = c.hasNonNull("hostname") ? c.get("hostname").asString() : null;
        JsonNode seccomp = linux.path("seccomp");
        ProcessSpec process = process(
                proc,
                "process.",
                replaced,
                seccomp.isMissingNode() || seccomp.isNull() ? null : SeccompFilter.compile(seccomp),
                // a VM's process gets the config's hostname in a UTS namespace of its own; the
                // other modes' sandboxes are containers whose hostname their backend sets. An
                // empty one is none, as under runc.
                mode.equals("microvm") && hostname != null && !hostname.isEmpty() ? hostname : null,
                mounts);
        return new BundleConfig(
                dir,
                rootfs,
                process,
                hostname,
                annotations,
                files,
                binds,
                limits[0],
                limits[1],
                limits[2],
                replaced,
                joins,
                hooks);
    }

    /**
     * The process of a container ({@code process.}) or of an exec's process file (""), with the
     * container's compiled seccomp filter and hostname (an exec's process gets them too, as under
     * runc).
     */
    static ProcessSpec process(
            JsonNode p,
            String where,
            List<String> replaced,
            byte @Nullable [] seccomp,
            @Nullable String hostname,
            @Nullable ContainerMounts mounts) {
        Set<String> keys = new java.util.HashSet<>(Set.of("terminal", "consoleSize", "user", "args", "env", "cwd"));
        keys.addAll(PROCESS_REPLACED);
        keys.addAll(PROCESS_APPLIED);
        onlyKeys(p, where, keys);
        for (String k : PROCESS_REPLACED) {
            if (p.has(k)) {
                replaced.add(where + k);
            }
        }
        List<String> args = new ArrayList<>();
        p.path("args").forEach(a -> args.add(a.asString()));
        if (args.isEmpty()) {
            throw new RuntimeError(where + "args is missing or empty: there is no program to run");
        }
        Map<String, String> env = new LinkedHashMap<>();
        for (JsonNode e : p.path("env")) {
            String s = e.asString();
            int eq = s.indexOf('=');
            if (eq <= 0) {
                throw new RuntimeError(where + "env entry '" + s + "' is not NAME=VALUE");
            }
            env.put(s.substring(0, eq), s.substring(eq + 1));
        }
        String cwd = p.hasNonNull("cwd") ? p.get("cwd").asString() : "/";
        if (!cwd.startsWith("/")) {
            throw new RuntimeError(where + "cwd '" + cwd + "' is not an absolute path");
        }
        JsonNode u = p.path("user");
        onlyKeys(u, where + "user.", Set.of("uid", "gid", "umask", "additionalGids"));
        long uid = u.path("uid").asLong(0);
        long gid = u.path("gid").asLong(0);
        return new ProcessSpec(
                args,
                env,
                cwd,
                uid + ":" + gid,
                p.path("terminal").asBoolean(false),
                ConfinementConfig.read(p, where, seccomp, hostname, mounts));
    }

    /**
     * microvm mode: the config's mounts, masked and read-only paths and read-only root as the
     * agent makes them in the container's mount namespace. Binds reach the VM the way they did
     * before (files copied in at create, directories bound under the shared root on the host)
     * and are bound onto themselves in the namespace, in their place in the order, with their
     * flags; a host {@code /dev/shm} cannot be shared with a VM's memory and is a tmpfs of the
     * VM's own instead.
     */
    private static ContainerMounts vmMounts(
            JsonNode mounts,
            JsonNode linux,
            boolean rootReadonly,
            Map<String, Path> files,
            List<DirectoryBinds.Bind> binds) {
        List<ContainerMounts.Mount> out = new ArrayList<>();
        for (JsonNode m : mounts) {
            onlyKeys(m, "mounts[].", Set.of("destination", "type", "source", "options", "uidMappings", "gidMappings"));
            if (m.has("uidMappings") || m.has("gidMappings")) {
                throw refused("mounts[].uidMappings", "idmapped mounts are not supported in a microVM");
            }
            String dest = text(m, "destination");
            String type = m.path("type").asString("");
            String source = m.path("source").asString("");
            List<String> options = new ArrayList<>();
            m.path("options").forEach(o -> options.add(o.asString()));
            String what = "mounts " + dest + " (" + (type.isEmpty() ? "bind" : type) + ")";
            if (!dest.startsWith("/")) {
                throw refused(what, "the destination is not an absolute path");
            }
            boolean bind = type.equals("bind") || options.contains("bind") || options.contains("rbind");
            long flags = 0;
            boolean copyUp = false;
            List<String> data = new ArrayList<>();
            for (String o : options) {
                Long f = MOUNT_FLAGS.get(o);
                if (f != null) {
                    flags |= f;
                } else if (o.equals("tmpcopyup") && !bind && type.equals("tmpfs")) {
                    copyUp = true;
                } else if (!MOUNT_NO_OPS.contains(o)) {
                    Set<String> allowed = bind ? Set.of() : MOUNT_DATA.getOrDefault(type, Set.of());
                    int eq = o.indexOf('=');
                    if (!allowed.contains(o) && (eq < 0 || !allowed.contains(o.substring(0, eq + 1)))) {
                        throw refused(
                                what + " option " + o,
                                "not an option Airlock applies to a " + (bind ? "bind" : type) + " mount in a microVM");
                    }
                    if (!type.equals("devpts")) {
                        data.add(o);
                    }
                }
            }
            if (bind) {
                if (dest.equals("/dev/shm")) {
                    out.add(new ContainerMounts.Mount("tmpfs", dest, flags, "mode=1777", false));
                } else if (Files.isRegularFile(Path.of(source), LinkOption.NOFOLLOW_LINKS)) {
                    files.put(dest, Path.of(source));
                    out.add(new ContainerMounts.Mount("bind", dest, flags, "", false));
                } else if (Files.isDirectory(Path.of(source))) {
                    binds.add(directoryBind(source, dest, options));
                    out.add(new ContainerMounts.Mount("bind", dest, flags, "", false));
                } else if (!Files.exists(Path.of(source), LinkOption.NOFOLLOW_LINKS)) {
                    throw refused(
                            what + " from " + source,
                            "the host path " + source + " does not exist: create it, or fix the volume's source");
                } else {
                    throw refused(
                            what + " from " + source,
                            "the source is not a regular file or directory on the host (a device or a socket)");
                }
                continue;
            }
            if (!MOUNT_DATA.containsKey(type)) {
                throw refused(
                        what,
                        "a microVM container gets tmpfs, proc, sysfs, devpts, mqueue, cgroup mounts and binds,"
                                + " not " + (type.isEmpty() ? "a mount without a type" : type));
            }
            out.add(new ContainerMounts.Mount(type, dest, flags, String.join(",", data), copyUp));
        }
        if (out.size() > ContainerMounts.MAX_MOUNTS) {
            throw refused("mounts", "more than " + ContainerMounts.MAX_MOUNTS + " mounts");
        }
        List<String> masked = paths(linux.path("maskedPaths"), "linux.maskedPaths");
        List<String> readonly = paths(linux.path("readonlyPaths"), "linux.readonlyPaths");
        return new ContainerMounts(out, masked, readonly, rootReadonly);
    }

    private static List<String> paths(JsonNode list, String where) {
        List<String> out = new ArrayList<>();
        for (JsonNode p : list) {
            String s = p.asString("");
            if (!s.startsWith("/") || s.indexOf('\0') >= 0) {
                throw new RuntimeError(where + " entry '" + s + "' is not an absolute path");
            }
            out.add(s);
        }
        if (out.size() > ContainerMounts.MAX_PATHS) {
            throw refused(where, "more than " + ContainerMounts.MAX_PATHS + " paths");
        }
        return out;
    }

    /**
     * gvisor and container modes: collects the file binds to copy in; refuses every mount the
     * sandbox cannot give.
     */
    private static void sandboxMounts(
            JsonNode mounts, String mode, Map<String, Path> files, List<DirectoryBinds.Bind> binds) {
        for (JsonNode m : mounts) {
            onlyKeys(m, "mounts[].", Set.of("destination", "type", "source", "options", "uidMappings", "gidMappings"));
            String dest = text(m, "destination");
            String type = m.path("type").asString("");
            String source = m.path("source").asString("");
            List<String> options = new ArrayList<>();
            m.path("options").forEach(o -> options.add(o.asString()));
            if (dest.equals(VM_MOUNTS.get(type)) || (type.equals("tmpfs") && GUEST_TMPFS.contains(dest))) {
                continue; // the guest mounts its own
            }
            boolean bind = type.equals("bind") || options.contains("bind") || options.contains("rbind");
            if (bind && dest.equals("/dev/shm")) {
                continue; // the guest has its own /dev/shm; a host one cannot be shared with a VM's memory
            }
            if (bind && Files.isRegularFile(Path.of(source), LinkOption.NOFOLLOW_LINKS)) {
                if (options.contains("ro")) {
                    throw refused("mounts " + dest, "read-only file binds are not supported yet");
                }
                files.put(dest, Path.of(source));
                continue;
            }
            if (bind && mode.equals("microvm") && !Files.isRegularFile(Path.of(source))) {
                // propagation means nothing to a guest, which sees the bind through 9p
                Set<String> known = Set.of(
                        "bind",
                        "rbind",
                        "ro",
                        "rw",
                        "nosuid",
                        "nodev",
                        "noexec",
                        "rprivate",
                        "private",
                        "rslave",
                        "slave");
                for (String o : options) {
                    if (!known.contains(o)) {
                        throw refused("mounts " + dest + " option " + o, "not supported for a directory bind");
                    }
                }
                binds.add(directoryBind(source, dest, options));
                continue;
            }
            throw refused(
                    "mounts " + dest + " (" + (type.isEmpty() ? "bind" : type) + " from " + source + ")",
                    bind
                            ? "directory binds reach microvm-mode containers only so far (this one is " + mode + ")"
                            : "only the kernel file systems and binds reach a sandbox");
        }
    }

    /** Reads linux.*: [memoryMiB, cpus, pids] (each may be null). */
    private static Integer[] linux(JsonNode linux, String mode, List<String> replaced, Map<String, String> joins) {
        Set<String> keys = new java.util.HashSet<>(Set.of("namespaces", "resources", "rootfsPropagation", "seccomp"));
        keys.addAll(LINUX_REPLACED);
        onlyKeys(linux, "linux.", keys);
        LINUX_REPLACED.stream()
                .filter(linux::has)
                // a microVM's agent applies the masked and read-only paths itself (vmMounts)
                .filter(k -> !mode.equals("microvm") || !(k.equals("maskedPaths") || k.equals("readonlyPaths")))
                .forEach(k -> replaced.add("linux." + k));
        for (JsonNode ns : linux.path("namespaces")) {
            String type = ns.path("type").asString("");
            if (ns.hasNonNull("path")) {
                String path = ns.get("path").asString();
                if (!NamespaceFile.joinable(type)) {
                    throw refused(
                            "linux.namespaces " + type + " " + path,
                            "a container joins only network, ipc, uts and pid namespaces by path");
                }
                joins.put(type, path);
                continue;
            }
            if (!VM_NAMESPACES.contains(type)) {
                throw refused("linux.namespaces " + type, "a microVM has no " + type + " namespace to give");
            }
        }
        JsonNode r = linux.path("resources");
        onlyKeys(r, "linux.resources.", Set.of("devices", "memory", "cpu", "pids"));
        if (r.has("devices")) {
            replaced.add("linux.resources.devices");
        }
        Integer memory = null;
        JsonNode mem = r.path("memory");
        onlyKeys(
                mem,
                "linux.resources.memory.",
                Set.of("limit", "swap", "reservation", "disableOOMKiller", "swappiness"));
        if (mem.has("limit") && mem.get("limit").asLong() > 0) {
            memory = (int) Math.max(128, mem.get("limit").asLong() >> 20);
        }
        Integer cpus = null;
        JsonNode cpu = r.path("cpu");
        onlyKeys(cpu, "linux.resources.cpu.", Set.of("quota", "period", "shares", "cpus", "mems"));
        if (cpu.path("quota").asLong(0) > 0 && cpu.path("period").asLong(0) > 0) {
            cpus = (int) Math.min(
                    16,
                    Math.max(
                            1,
                            Math.ceilDiv(
                                    cpu.get("quota").asLong(), cpu.get("period").asLong())));
        }
        Integer pids = null;
        if (r.path("pids").path("limit").asLong(0) > 0) {
            pids = (int)
                    Math.min(Integer.MAX_VALUE, r.path("pids").path("limit").asLong());
        }
        return new Integer[] {memory, cpus, pids};
    }

    private static void onlyKeys(JsonNode node, String where, Set<String> allowed) {
        if (node.isMissingNode() || node.isNull()) {
            return;
        }
        if (!node.isObject()) {
            throw new RuntimeError((where.isEmpty() ? "config.json" : where) + " must be an object");
        }
        for (String k : node.propertyNames()) {
            if (!allowed.contains(k)) {
                throw refused(where + k, "Airlock's microVM mode does not support it");
            }
        }
    }

    private static String text(JsonNode node, String key) {
        JsonNode v = node.path(key);
        if (!v.isString() || v.asString().isEmpty()) {
            throw new RuntimeError("config.json: " + key + " is missing or not a string");
        }
        return v.asString();
    }

    /** The container's mode: the Airlock runtime that runs it. */
    String mode() {
        return annotations.getOrDefault(MODE_ANNOTATION, MODES.getFirst());
    }

    /** A directory bind with the options the host's bind mount applies (the rest are the guest's). */
    private static DirectoryBinds.Bind directoryBind(String source, String dest, List<String> options) {
        return new DirectoryBinds.Bind(
                Path.of(source),
                dest,
                options.stream()
                        .filter(DirectoryBinds.FLAGS::contains)
                        .distinct()
                        .toList());
    }

    static RuntimeError refused(String field, String why) {
        return new RuntimeError("unsupported config.json field " + field + ": " + why);
    }
}
