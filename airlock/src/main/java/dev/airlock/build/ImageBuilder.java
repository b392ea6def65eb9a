package dev.airlock.build;

import dev.airlock.guest.CommandNotExecutableException;
import dev.airlock.guest.CommandNotFoundException;
import dev.airlock.guest.ExecSpec;
import dev.airlock.guest.ExitStatus;
import dev.airlock.host.Hashing;
import dev.airlock.host.Progress;
import dev.airlock.image.Image;
import dev.airlock.image.ImageConfig;
import dev.airlock.image.ImageException;
import dev.airlock.image.ImageSource;
import dev.airlock.image.ImageStore;
import dev.airlock.image.LayeredImages;
import dev.airlock.image.ProjectImage;
import dev.airlock.image.layer.TarEntry;
import dev.airlock.image.layer.TarReader;
import dev.airlock.image.layer.TarWriter;
import dev.airlock.image.oci.ImagePull;
import dev.airlock.image.oci.ImageReference;
import dev.airlock.image.oci.MediaTypes;
import dev.airlock.image.oci.Platform;
import dev.airlock.image.oci.RegistryClient;
import dev.airlock.image.oci.RegistryCredentials;
import dev.airlock.service.CreateSpec;
import dev.airlock.service.ImageBuildSpec;
import dev.airlock.service.SandboxService;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * {@code airlock image build}: a Dockerfile's instructions applied one by one. Instructions that
 * change the filesystem (RUN, COPY, ADD, WORKDIR) each make one layer; RUN executes inside a
 * sandbox of the stage's image (the host's default runtime unless asked otherwise, no network
 * unless {@code --allow-host}), and its changes are found by the agent's {@code walk} before and
 * after and packed by its {@code pack}; COPY and ADD layers are written on the host from the
 * build context and unpacked into the sandbox by the agent. Every layer is cached by the chain of
 * instructions before it and what it read (the context files' contents), so a second build runs
 * nothing and a changed file invalidates from its step on. The result is one erofs image, the
 * stage's base tree with its layers applied on the host by the same unpacker pulls use.
 */
public final class ImageBuilder {
    private static final JsonMapper JSON = JsonMapper.builder().build();
    /** Part of every step's cache key: bump it when what a step makes changes. */
    private static final String VERSION = "airlock-build 1";
    /** How much of a failing RUN's output the error repeats. */
    private static final int TAIL = 4096;

    /**
     * What to build.
     *
     * @param context the build context directory
     * @param dockerfile the Dockerfile (default: {@code context/Dockerfile})
     * @param tag the name of the result, or null for an unnamed image (found by its id)
     * @param buildArgs {@code --build-arg NAME=VALUE}
     * @param target the stage to build ({@code --target}), or null for the last
     * @param runtime the runtime of the build sandboxes, or null for the host's default
     * @param allowHosts hosts RUN steps may reach through the egress proxy; none: no network
     * @param noCache run every step again
     */
    public record Request(
            Path context,
            @Nullable Path dockerfile,
            @Nullable String tag,
            Map<String, String> buildArgs,
            @Nullable String target,
            @Nullable String runtime,
            List<String> allowHosts,
            boolean noCache) {
        public Request {
            buildArgs = Map.copyOf(buildArgs);
            allowHosts = List.copyOf(allowHosts);
        }
    }

    private final SandboxService service;
    private final ImageStore store;
    private final Progress progress;
    private final OutputStream output;

    /** {@code output} gets the RUN steps' output as it comes. */
    public ImageBuilder(SandboxService service, ImageStore store, Progress progress, OutputStream output) {
        this.service = service;
        this.store = store;
        this.progress = progress;
        this.output = output;
    }

    /** One stage's state: its base, the layers its steps made, its config, its cache key so far. */
    private final class Stage implements AutoCloseable {
        final @Nullable String alias;
        final @Nullable Image base;
        final List<ImageSource.Layer> layers = new ArrayList<>();
        final Map<String, String> env = new LinkedHashMap<>();
        final Map<String, String> labels = new TreeMap<>();
        final List<String> exposed = new ArrayList<>();
        final Map<String, String> args = new LinkedHashMap<>();
        String workdir = "";
        String user = "";
        List<String> entrypoint = List.of();
        List<String> cmd = List.of();
        List<String> shell = List.of("/bin/sh", "-c");

        @Nullable
        String stopSignal;

        String key;

        @Nullable
        BuildSandbox sandbox;

        boolean snapshotCurrent;

        Stage(@Nullable String alias, @Nullable Image base, String key) {
            this.alias = alias;
            this.base = base;
            this.key = key;
        }

        ImageConfig config() {
            List<String> envList = new ArrayList<>();
            env.forEach((k, v) -> envList.add(k + "=" + v));
            return new ImageConfig(envList, workdir, user, entrypoint, cmd, labels, exposed, stopSignal);
        }

        /** The variables an instruction's words see: the stage's ARGs, then its ENV. */
        Map<String, String> vars() {
            Map<String, String> v = new LinkedHashMap<>(args);
            v.putAll(env);
            return v;
        }

        /** The stage's sandbox with every layer so far applied and its snapshot current. */
        BuildSandbox current(Request request) throws IOException, InterruptedException {
            if (base == null) {
                throw new BuildException("a stage FROM scratch has no programs to run and no sandbox to build in;"
                        + " start it FROM an image with a shell, or only COPY into it");
            }
            if (sandbox == null) {
                progress.step("  starting a build sandbox of " + base.name());
                CreateSpec spec = CreateSpec.builder()
                        .image(base.name())
                        .runtime(request.runtime())
                        .network(request.allowHosts().isEmpty() ? null : "proxy")
                        .allowHosts(request.allowHosts().isEmpty() ? null : request.allowHosts())
                        .user("0")
                        .build();
                sandbox = BuildSandbox.start(service, spec);
                snapshotCurrent = false;
            }
            while (sandbox.layersApplied < layers.size()) {
                ImageSource.Layer l = layers.get(sandbox.layersApplied);
                Path file = store.contentFile(l.digest());
                sandbox.unpack(out -> {
                    try (InputStream in = Files.newInputStream(file)) {
                        in.transferTo(out);
                    }
                });
                sandbox.layersApplied++;
                snapshotCurrent = false;
            }
            if (!snapshotCurrent) {
                sandbox.walk();
                snapshotCurrent = true;
            }
            return sandbox;
        }

        @Override
        public void close() {
            if (sandbox != null) {
                sandbox.close();
                sandbox = null;
            }
        }
    }

    /** Builds the request's image. Nothing is stored under the tag unless the whole build succeeds. */
    public Image build(Request request) {
        Path file = request.dockerfile() != null
                ? request.dockerfile()
                : BuildContext.open(request.context()).root().resolve("Dockerfile");
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw new BuildException("cannot read the Dockerfile " + file + ": " + e.getMessage()
                    + "; name one with -f FILE or put a Dockerfile in the context directory");
        }
        return build(
                request,
                text,
                file.getFileName().toString(),
                "-f " + file.toAbsolutePath() + (request.tag() != null ? " -t " + request.tag() : "") + " "
                        + request.context().toAbsolutePath());
    }

    /**
     * What {@code airlock image build DIR} and {@code POST /v1/images/build} share: the
     * context's Dockerfile, or the airlock.toml recipe when {@code -f} names a {@code .toml}, or
     * when the context has an airlock.toml with an {@code [image]} table (or no Dockerfile).
     */
    public Image build(ImageBuildSpec spec) {
        Path context = Path.of(spec.context());
        if (!Files.isDirectory(context)) {
            throw new BuildException("the build context " + context + " does not exist or is not a directory");
        }
        Path file = spec.dockerfile() == null ? null : Path.of(spec.dockerfile());
        Path toml = context.resolve("airlock.toml");
        boolean recipe = file != null
                ? String.valueOf(file.getFileName()).endsWith(".toml")
                : Files.isRegularFile(toml)
                        && (!Files.isRegularFile(context.resolve("Dockerfile")) || ProjectImage.declaredIn(toml));
        if (!recipe) {
            if (file == null && !Files.isRegularFile(context.resolve("Dockerfile"))) {
                throw new BuildException("no Dockerfile and no airlock.toml in " + context
                        + "; give the build context directory, or the Dockerfile with -f");
            }
            return build(new Request(
                    context,
                    file,
                    spec.tag(),
                    java.util.Objects.requireNonNullElse(spec.buildArgs(), Map.of()),
                    spec.target(),
                    spec.runtime(),
                    java.util.Objects.requireNonNullElse(spec.allowHosts(), List.of()),
                    spec.noCache()));
        }
        ProjectImage project = ProjectImage.read(file != null ? file : toml);
        if (spec.tag() != null) {
            project = new ProjectImage(
                    spec.tag(), project.packages(), project.run(), project.dockerfile(), project.directory());
        }
        return build(
                project,
                spec.runtime(),
                java.util.Objects.requireNonNullElse(spec.allowHosts(), List.of()),
                spec.noCache());
    }

    /**
     * Builds an airlock.toml {@code [image]}: its Dockerfile, or its packages' image (mmdebstrap,
     * Debian's packages only) with its {@code run} commands as RUN steps in a sandbox, each step
     * cached like a Dockerfile's. Nothing of the recipe runs on the host.
     */
    public Image build(ProjectImage project, @Nullable String runtime, List<String> allowHosts, boolean noCache) {
        Path dockerfile = project.dockerfile();
        if (dockerfile != null) {
            return build(new Request(
                    project.directory(), dockerfile, project.name(), Map.of(), null, runtime, allowHosts, noCache));
        }
        if (project.run().isEmpty()) {
            return noCache ? store.rebuild(project.packages(), progress) : store.ensure(project.packages(), progress);
        }
        Image packages = store.ensureUnnamed(project.packages(), progress);
        Request request =
                new Request(project.directory(), null, project.name(), Map.of(), null, runtime, allowHosts, noCache);
        return build(
                request,
                project.dockerfile(packages.id()),
                "airlock.toml [image]",
                "airlock.toml [image] " + project.directory().toAbsolutePath());
    }

    /**
     * Builds a Dockerfile given as text ({@code name} in its errors; {@code reference} what the
     * image's source records): an airlock.toml recipe's steps go this way.
     */
    public Image build(Request request, String text, String name, String reference) {
        BuildContext context = BuildContext.open(request.context());
        Dockerfile df = Dockerfile.parse(text, name);
        List<Stage> stages = new ArrayList<>();
        Map<String, String> globalArgs = new LinkedHashMap<>();
        Stage stage = null;
        int count = df.instructions().size();
        int n = 0;
        long start = System.nanoTime();
        try {
            for (Dockerfile.Instruction in : df.instructions()) {
                n++;
                String where = df.file() + ":" + in.line();
                String step = "step " + n + "/" + count + ": " + in.text();
                if (in.keyword().equals("FROM")) {
                    progress.step(step);
                    if (stage != null
                            && request.target() != null
                            && request.target().equals(stage.alias)) {
                        break; // --target: the stages after it are not built
                    }
                    stage = from(in, df, globalArgs, stages, request, where);
                    stages.add(stage);
                    continue;
                }
                if (stage == null) {
                    if (in.keyword().equals("ARG")) {
                        progress.step(step);
                        arg(in.args(), df, globalArgs, globalArgs, request, where);
                        continue;
                    }
                    throw new BuildException(where + ": " + in.keyword() + " before FROM; a Dockerfile starts with"
                            + " FROM IMAGE (only ARG may come first)");
                }
                instruction(in, df, stage, stages, context, request, where, step);
            }
            if (stage == null) {
                throw new BuildException(df.file() + " has no FROM; a Dockerfile starts with FROM IMAGE");
            }
            Stage result = stage;
            if (request.target() != null) {
                result = stages.stream()
                        .filter(s -> request.target().equals(s.alias))
                        .findFirst()
                        .orElseThrow(() -> new BuildException("--target " + request.target() + ": no stage of "
                                + df.file() + " is named so (FROM" + " IMAGE AS " + request.target() + ")"));
            }
            Image image = finish(result, request, reference);
            progress.step("built " + (image.name()) + " " + image.shortId() + " in "
                    + (System.nanoTime() - start) / 1_000_000 + " ms");
            return image;
        } catch (IOException e) {
            throw new UncheckedIOException("image build failed: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new BuildException("image build interrupted");
        } finally {
            for (Stage s : stages) {
                s.close();
            }
        }
    }

    private Stage from(
            Dockerfile.Instruction in,
            Dockerfile df,
            Map<String, String> globalArgs,
            List<Stage> stages,
            Request request,
            String where) {
        ShellWords w = new ShellWords(df.escape(), globalArgs);
        List<String> words = w.words(in.args());
        if (!words.isEmpty() && words.getFirst().startsWith("--")) {
            if (words.getFirst().startsWith("--platform=")) {
                words = words.subList(1, words.size());
            } else {
                throw new BuildException(
                        where + ": FROM " + words.getFirst() + " is not supported; FROM IMAGE [AS" + " NAME]");
            }
        }
        if (words.isEmpty()
                || (words.size() != 1 && words.size() != 3)
                || (words.size() == 3 && !words.get(1).equalsIgnoreCase("AS"))) {
            throw new BuildException(where + ": FROM takes IMAGE or IMAGE AS NAME, not '" + in.args() + "'");
        }
        String ref = words.getFirst();
        String alias = words.size() == 3 ? words.get(2).toLowerCase(Locale.ROOT) : null;
        for (Stage s : stages) {
            if (ref.equalsIgnoreCase(s.alias == null ? "" : s.alias)) {
                Stage child = new Stage(alias, s.base, s.key);
                child.layers.addAll(s.layers);
                child.env.putAll(s.env);
                child.labels.putAll(s.labels);
                child.exposed.addAll(s.exposed);
                child.workdir = s.workdir;
                child.user = s.user;
                child.entrypoint = s.entrypoint;
                child.cmd = s.cmd;
                child.shell = s.shell;
                child.stopSignal = s.stopSignal;
                return child;
            }
        }
        if (ref.equals("scratch")) {
            return new Stage(alias, null, Hashing.sha256(VERSION + "\nFROM scratch"));
        }
        Image base = store.find(ref).orElseGet(() -> {
            if (dev.airlock.image.ImageSpec.builtin(ref).isPresent()) {
                return store.ensure(dev.airlock.image.ImageSpec.builtin(ref).orElseThrow(), progress);
            }
            return pull(ref, where);
        });
        Stage s = new Stage(alias, base, Hashing.sha256(VERSION + "\nFROM " + base.id()));
        ImageConfig c = base.config();
        s.env.putAll(c.envMap());
        s.labels.putAll(c.labels());
        s.exposed.addAll(c.exposedPorts());
        s.workdir = c.workingDir();
        s.user = c.user();
        s.entrypoint = c.entrypoint();
        s.cmd = c.cmd();
        s.stopSignal = c.stopSignal();
        return s;
    }

    /**
     * FROM an image the store does not hold: pulled as {@code airlock image pull} pulls it, with
     * the logins of {@code ~/.docker/config.json} / {@code auth.json} and the same plain-HTTP
     * rules (loopback, or {@code AIRLOCK_INSECURE_REGISTRIES}).
     */
    private Image pull(String ref, String where) {
        ImageReference reference = ImageReference.tryParse(ref)
                .orElseThrow(() -> new BuildException(where + ": no image '" + ref + "' in the store, and '" + ref
                        + "' is not a registry reference; name a pulled or built image, a built-in (base,"
                        + " python, node), an earlier stage or REGISTRY/REPOSITORY[:TAG]"));
        progress.step("  " + ref + " is not in the store: pulling it");
        try (RegistryClient client = new RegistryClient(
                RegistryCredentials.fromEnvironment(), false, RegistryClient.insecureFromEnvironment())) {
            return new ImagePull(store, client, progress).pull(reference, Platform.parse("linux/amd64"), null);
        } catch (ImageException e) {
            throw new BuildException(where + ": FROM " + ref + ": " + e.getMessage());
        }
    }

    private void instruction(
            Dockerfile.Instruction in,
            Dockerfile df,
            Stage stage,
            List<Stage> stages,
            BuildContext context,
            Request request,
            String where,
            String step)
            throws IOException, InterruptedException {
        ShellWords w = new ShellWords(df.escape(), stage.vars());
        String args = in.args();
        switch (in.keyword()) {
            case "RUN" -> run(stage, request, args, where, step);
            case "COPY", "ADD" -> copy(in.keyword(), stage, stages, context, request, w, args, where, step);
            case "WORKDIR" -> {
                progress.step(step);
                String dir = w.word(args.strip());
                if (dir.isEmpty()) {
                    throw new BuildException(where + ": WORKDIR needs a directory");
                }
                stage.workdir = dir.startsWith("/") ? clean(dir) : clean(stage.workdir + "/" + dir);
                chain(stage, "WORKDIR " + stage.workdir);
                workdir(stage, request);
            }
            case "ENV" -> {
                progress.step(step);
                stage.env.putAll(pairs(w, args, "ENV", where));
                chain(stage, "ENV " + stage.env);
            }
            case "ARG" -> {
                progress.step(step);
                arg(args, df, stage.args, stage.vars(), request, where);
                chain(stage, "ARG " + stage.args);
            }
            case "LABEL" -> {
                progress.step(step);
                stage.labels.putAll(pairs(w, args, "LABEL", where));
                chain(stage, "LABEL " + stage.labels);
            }
            case "MAINTAINER" -> {
                progress.step(step);
                stage.labels.put("maintainer", args.strip());
                chain(stage, "LABEL " + stage.labels);
            }
            case "USER" -> {
                progress.step(step);
                stage.user = w.word(args.strip());
                chain(stage, "USER " + stage.user);
            }
            case "ENTRYPOINT" -> {
                progress.step(step);
                stage.entrypoint = commandForm(stage, args);
                stage.cmd = List.of(); // Docker: a new entrypoint clears an inherited cmd
                chain(stage, "ENTRYPOINT " + stage.entrypoint);
            }
            case "CMD" -> {
                progress.step(step);
                stage.cmd = commandForm(stage, args);
                chain(stage, "CMD " + stage.cmd);
            }
            case "SHELL" -> {
                progress.step(step);
                List<String> sh = execForm(args);
                if (sh == null || sh.isEmpty()) {
                    throw new BuildException(where + ": SHELL takes a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]");
                }
                stage.shell = sh;
                chain(stage, "SHELL " + sh);
            }
            case "EXPOSE" -> {
                progress.step(step);
                for (String p : w.words(args)) {
                    String port = p.contains("/") ? p : p + "/tcp";
                    if (!stage.exposed.contains(port)) {
                        stage.exposed.add(port);
                    }
                }
                chain(stage, "EXPOSE " + stage.exposed);
            }
            case "STOPSIGNAL" -> {
                progress.step(step);
                stage.stopSignal = w.word(args.strip());
                chain(stage, "STOPSIGNAL " + stage.stopSignal);
            }
            case "VOLUME" -> progress.step(step + " (noted: sandboxes have no volumes; the path stays in the image)");
            default -> throw new BuildException(where + ": unknown instruction " + in.keyword());
        }
    }

    private static void chain(Stage stage, String what) {
        stage.key = Hashing.sha256(stage.key + "\n" + what);
    }

    /** An absolute path, lexically cleaned ({@code ..} stops at /). */
    private static String clean(String path) {
        return "/" + DockerIgnore.clean(path);
    }

    private static void arg(
            String args,
            Dockerfile df,
            Map<String, String> into,
            Map<String, String> vars,
            Request request,
            String where) {
        ShellWords w = new ShellWords(df.escape(), vars);
        for (String raw : w.rawWords(args)) {
            int eq = raw.indexOf('=');
            String name = eq < 0 ? raw : raw.substring(0, eq);
            if (!name.matches("[A-Za-z_][A-Za-z0-9_]*")) {
                throw new BuildException(where + ": ARG " + raw + ": '" + name + "' is not a variable name");
            }
            String value = request.buildArgs().get(name);
            if (value == null && eq >= 0) {
                value = w.word(raw.substring(eq + 1));
            }
            if (value == null) {
                value = vars.get(name); // ARG NAME after FROM brings a global ARG into the stage
            }
            if (value != null) {
                into.put(name, value);
            }
        }
    }

    /** {@code NAME=VALUE ...} or the old {@code NAME VALUE} form. */
    private static Map<String, String> pairs(ShellWords w, String args, String what, String where) {
        Map<String, String> out = new LinkedHashMap<>();
        List<String> raw = w.rawWords(args);
        if (raw.isEmpty()) {
            throw new BuildException(where + ": " + what + " needs NAME=VALUE");
        }
        if (!raw.getFirst().contains("=")) {
            String s = args.strip();
            int sp = s.indexOf(' ');
            if (sp < 0) {
                throw new BuildException(
                        where + ": " + what + " " + s + " has no value; write " + what + " " + s + "=VALUE");
            }
            out.put(s.substring(0, sp), w.word(s.substring(sp + 1).strip()));
            return out;
        }
        for (String r : raw) {
            int eq = r.indexOf('=');
            if (eq <= 0) {
                throw new BuildException(where + ": " + what + " " + r + ": expected NAME=VALUE");
            }
            out.put(w.word(r.substring(0, eq)), w.word(r.substring(eq + 1)));
        }
        return out;
    }

    /** A JSON array of strings (the exec form), or null when {@code args} is not one (the shell form). */
    static @Nullable List<String> execForm(String args) {
        String s = args.strip();
        if (!s.startsWith("[")) {
            return null;
        }
        try {
            JsonNode node = JSON.readTree(s);
            if (!node.isArray()) {
                return null;
            }
            List<String> out = new ArrayList<>();
            for (JsonNode e : node) {
                if (!e.isString()) {
                    return null;
                }
                out.add(e.asString());
            }
            return out;
        } catch (RuntimeException e) {
            return null; // Docker's rule: what does not parse as a JSON array is the shell form
        }
    }

    private static List<String> commandForm(Stage stage, String args) {
        List<String> exec = execForm(args);
        if (exec != null) {
            return List.copyOf(exec);
        }
        List<String> out = new ArrayList<>(stage.shell);
        out.add(args.strip());
        return List.copyOf(out);
    }

    // ---- RUN

    private void run(Stage stage, Request request, String args, String where, String step)
            throws IOException, InterruptedException {
        String a = args.strip();
        if (a.startsWith("--")) {
            String flag = a.split("[\\s=]", 2)[0];
            throw new BuildException(where + ": RUN " + flag + " is not supported (no cache or secret mounts, the"
                    + " network is the build's --allow-host policy); write the command without it");
        }
        List<String> argv = commandForm(stage, args);
        Map<String, String> env = new LinkedHashMap<>(stage.args);
        env.putAll(stage.env);
        String user = stage.user.isEmpty() ? "0" : stage.user;
        String cwd = stage.workdir.isEmpty() ? "/" : stage.workdir;
        chain(stage, "RUN " + JSON.writeValueAsString(List.of(argv, env, user, cwd)));
        if (cached(stage, request, step)) {
            return;
        }
        progress.step(step);
        BuildSandbox sb = stage.current(request);
        TailOutput tail = new TailOutput(output);
        ExitStatus st;
        long t0 = System.nanoTime();
        try {
            st = sb.run(ExecSpec.builder(argv).env(env).user(user).cwd(cwd).build(), tail, tail);
        } catch (CommandNotFoundException | CommandNotExecutableException e) {
            throw BuildException.stepFailed(where + ": RUN failed: " + e.getMessage());
        }
        if (st.shellStatus() != 0) {
            String out = tail.text().strip();
            throw BuildException.stepFailed(where + ": RUN failed with exit status " + st.shellStatus() + ": "
                    + args.strip() + (out.isEmpty() ? "" : "\n--- its last output ---\n" + out));
        }
        TreeSnapshot before = sb.snapshot;
        TreeSnapshot after = sb.walk();
        TreeSnapshot.Diff diff = before.diff(after);
        ImageSource.@Nullable Layer layer = diff.isEmpty() ? null : packLayer(sb, diff);
        store.cacheStep(stage.key, new ImageStore.CachedStep(layer));
        if (layer != null) {
            stage.layers.add(layer);
            sb.layersApplied = stage.layers.size(); // the sandbox has its own step's changes already
        }
        progress.step("  done in " + (System.nanoTime() - t0) / 1_000_000 + " ms, "
                + (layer == null
                        ? "no changes"
                        : diff.changed().size() + " paths changed, "
                                + diff.deleted().size() + " removed"));
    }

    /** A step's layer from the cache; true when it was there (and is added to the stage). */
    private boolean cached(Stage stage, Request request, String step) {
        if (request.noCache()) {
            return false;
        }
        var hit = store.cachedStep(stage.key);
        if (hit.isEmpty()) {
            return false;
        }
        if (hit.get().layer() != null) {
            stage.layers.add(hit.get().layer());
        }
        progress.step(step + " (cached)");
        return true;
    }

    /** Packs a step's changes from the sandbox into a layer: changed files, whiteouts for removed ones. */
    private ImageSource.Layer packLayer(BuildSandbox sb, TreeSnapshot.Diff diff)
            throws IOException, InterruptedException {
        Set<String> wanted = new HashSet<>(diff.changed());
        return writeLayer(tar -> {
            for (String gone : diff.deleted()) {
                int slash = gone.lastIndexOf('/');
                String name =
                        slash < 0 ? ".wh." + gone : gone.substring(0, slash + 1) + ".wh." + gone.substring(slash + 1);
                tar.write(whiteout(name), null);
            }
            Set<String> written = new HashSet<>();
            sb.pack(diff.changed(), reader -> copyEntries(reader, tar, wanted, written, p -> p, null, NO_CHMOD));
        });
    }

    /**
     * Copies a guest's tar into a layer, entry by entry, each checked: a path the host asked for,
     * a hard link only to an entry already written, a regular type. Names are mapped by
     * {@code rename} (COPY --from), files' and directories' modes replaced by {@code chmod}
     * unless it is {@link #NO_CHMOD}.
     */
    private static void copyEntries(
            TarReader reader,
            TarWriter tar,
            Set<String> wanted,
            Set<String> written,
            java.util.function.UnaryOperator<String> rename,
            long @Nullable [] owner,
            int chmod)
            throws IOException {
        TarEntry e;
        while ((e = reader.next()) != null) {
            String name = stripSlashes(e.name());
            if (!wanted.contains(name)) {
                throw new BuildException("the build sandbox's pack sent "
                        + dev.airlock.net.UntrustedText.forTerminal(name) + ", a path the host did not ask for");
            }
            String link = e.linkName();
            if (e.type() == TarEntry.Type.HARDLINK) {
                String target = stripSlashes(link);
                if (!written.contains(target)) {
                    throw new BuildException("the build sandbox's pack sent a hard link to "
                            + dev.airlock.net.UntrustedText.forTerminal(target) + ", which it had not sent before");
                }
                link = rename.apply(target);
            }
            String mapped = rename.apply(name);
            TarEntry out = new TarEntry(
                    mapped,
                    e.type(),
                    chmod != NO_CHMOD && (e.type() == TarEntry.Type.FILE || e.type() == TarEntry.Type.DIRECTORY)
                            ? chmod
                            : e.mode(),
                    owner == null ? e.uid() : owner[0],
                    owner == null ? e.gid() : owner[1],
                    e.size(),
                    e.mtimeSeconds(),
                    e.mtimeNanos(),
                    link,
                    e.devMajor(),
                    e.devMinor(),
                    e.xattrs());
            tar.write(out, e.type() == TarEntry.Type.FILE ? new EntryStream(reader) : null);
            written.add(name);
        }
    }

    private static String stripSlashes(String name) {
        String s = name;
        while (s.startsWith("./")) {
            s = s.substring(2);
        }
        while (s.startsWith("/")) {
            s = s.substring(1);
        }
        while (s.endsWith("/")) {
            s = s.substring(0, s.length() - 1);
        }
        return s;
    }

    /** No {@code --chmod}: modes as they are. */
    private static final int NO_CHMOD = -1;

    /** {@code --chmod=MODE}: octal only, as Docker's builder without BuildKit's symbolic modes. */
    private static int chmod(@Nullable String value, String what) {
        if (value == null) {
            return NO_CHMOD;
        }
        if (!value.matches("[0-7]{3,4}")) {
            throw new BuildException(what + " --chmod=" + value + ": give an octal mode such as 0644 or 755;"
                    + " symbolic modes (u+x) are not supported");
        }
        return Integer.parseInt(value, 8);
    }

    private static TarEntry whiteout(String name) {
        return new TarEntry(name, TarEntry.Type.FILE, 0644, 0, 0, 0, 0, 0, "", 0, 0, Map.of());
    }

    private static TarEntry directory(String name, int mode, long uid, long gid) {
        return new TarEntry(name, TarEntry.Type.DIRECTORY, mode, uid, gid, 0, 0, 0, "", 0, 0, Map.of());
    }

    /** Reads the current entry's content from a {@link TarReader}. */
    private static final class EntryStream extends InputStream {
        private final TarReader reader;

        EntryStream(TarReader reader) {
            this.reader = reader;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            return reader.read(b, off, len);
        }
    }

    @FunctionalInterface
    private interface LayerContent {
        void write(TarWriter tar) throws IOException, InterruptedException;
    }

    /** Writes a layer (an uncompressed tar) into the store's tmp, then moves it into the content store. */
    private ImageSource.Layer writeLayer(LayerContent content) throws IOException, InterruptedException {
        Path tmp = Files.createTempFile(store.tempDir(), "layer-", ".tar");
        try {
            MessageDigest sha = Hashing.newDigest();
            try (OutputStream file = Files.newOutputStream(tmp);
                    DigestOutputStream out = new DigestOutputStream(new BufferedOutputStream(file, 1 << 16), sha)) {
                TarWriter tar = new TarWriter(out);
                content.write(tar);
                tar.finish();
            }
            String digest = "sha256:" + HexFormat.of().formatHex(sha.digest());
            long size = Files.size(tmp);
            store.putContent(digest, tmp);
            return new ImageSource.Layer(digest, digest, size, MediaTypes.OCI_LAYER);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    // ---- WORKDIR

    private void workdir(Stage stage, Request request) throws IOException, InterruptedException {
        if (cached(stage, request, "  " + stage.workdir)) {
            return;
        }
        List<String> missing = missingDirs(stage, request, stage.workdir.substring(1));
        ImageSource.Layer layer = missing.isEmpty()
                ? null
                : writeLayer(tar -> {
                    for (String d : missing) {
                        tar.write(directory(d, 0755, 0, 0), null);
                    }
                });
        store.cacheStep(stage.key, new ImageStore.CachedStep(layer));
        if (layer != null) {
            stage.layers.add(layer);
        }
    }

    /** The directories of {@code rel} and its parents the stage's tree lacks, parents first. */
    private List<String> missingDirs(Stage stage, Request request, String rel)
            throws IOException, InterruptedException {
        List<String> out = new ArrayList<>();
        if (rel.isEmpty()) {
            return out; // the root: no sandbox needed to know it exists
        }
        TreeSnapshot known = stage.base == null ? TreeSnapshot.EMPTY : stage.current(request).snapshot;
        StringBuilder p = new StringBuilder();
        for (String seg : rel.split("/")) {
            if (!p.isEmpty()) {
                p.append('/');
            }
            p.append(seg);
            String path = p.toString();
            if (known.contains(path) && !known.isDirectory(path)) {
                throw new BuildException(path + " exists in the image and is not a directory");
            }
            if (!known.contains(path)) {
                out.add(path);
            }
        }
        return out;
    }

    // ---- COPY, ADD

    private void copy(
            String keyword,
            Stage stage,
            List<Stage> stages,
            BuildContext context,
            Request request,
            ShellWords w,
            String args,
            String where,
            String step)
            throws IOException, InterruptedException {
        List<String> words = new ArrayList<>(execFormOrWords(w, args));
        String chown = null;
        String chmodFlag = null;
        String from = null;
        while (!words.isEmpty() && words.getFirst().startsWith("--")) {
            String flag = words.removeFirst();
            if (flag.startsWith("--chown=")) {
                chown = flag.substring("--chown=".length());
            } else if (flag.startsWith("--chmod=")) {
                chmodFlag = flag.substring("--chmod=".length());
            } else if (flag.startsWith("--from=") && keyword.equals("COPY")) {
                from = flag.substring("--from=".length()).toLowerCase(Locale.ROOT);
            } else if (!flag.equals("--link") && !flag.equals("--link=true")) {
                // --link only changes how BuildKit stores the layer, not what is in it
                throw new BuildException(where + ": " + keyword + " " + flag + " is not supported; " + keyword
                        + " takes --chown=USER[:GROUP], --chmod=OCTAL"
                        + (keyword.equals("COPY") ? " and --from=STAGE" : ""));
            }
        }
        if (words.size() < 2) {
            throw new BuildException(
                    where + ": " + keyword + " needs a source and a destination: " + keyword + " SRC... DEST");
        }
        String dest = words.getLast();
        List<String> srcs = words.subList(0, words.size() - 1);
        boolean destIsDir = dest.endsWith("/") || srcs.size() > 1;
        String destAbs = dest.startsWith("/")
                ? clean(dest)
                : clean((stage.workdir.isEmpty() ? "/" : stage.workdir) + "/" + dest);
        String destRel = destAbs.substring(1);
        String what = where + ": " + keyword;
        int chmod = chmod(chmodFlag, what);
        if (from != null) {
            copyFromStage(stage, stages, request, from, srcs, destRel, destIsDir, chown, chmod, what, step);
            return;
        }
        List<BuildContext.Source> sources = new ArrayList<>();
        for (String s : srcs) {
            sources.addAll(context.sources(s, what));
        }
        if (sources.size() > 1) {
            destIsDir = true;
        }
        boolean extract = keyword.equals("ADD");
        chain(
                stage,
                keyword + " "
                        + JSON.writeValueAsString(
                                List.of(srcs, destAbs, chown == null ? "" : chown, chmodFlag == null ? "" : chmodFlag))
                        + " "
                        + BuildContext.hash(sources));
        if (cached(stage, request, step)) {
            return;
        }
        progress.step(step);
        long[] owner = owner(stage, request, chown, what);
        List<String> parents = missingDirs(stage, request, destIsDir ? destRel : parentOf(destRel));
        final boolean toDir = destIsDir;
        ImageSource.Layer layer = writeLayer(tar -> {
            for (String d : parents) {
                tar.write(directory(d, 0755, 0, 0), null);
            }
            for (BuildContext.Source src : sources) {
                if (src.directory()) {
                    for (BuildContext.File f : src.files()) {
                        String name = f.name().isEmpty() ? destRel : join(destRel, f.name());
                        if (name.isEmpty()) {
                            continue; // the root itself
                        }
                        contextEntry(tar, f, name, owner, chmod);
                    }
                    continue;
                }
                BuildContext.File f = src.files().getFirst();
                String base = src.rel().substring(src.rel().lastIndexOf('/') + 1);
                if (extract && isArchive(f)) {
                    if (chmod != NO_CHMOD) {
                        throw new BuildException(what + " --chmod of the archive " + f.name() + ": an unpacked"
                                + " archive keeps its members' modes; drop --chmod or COPY the archive as a file");
                    }
                    extract(tar, f, destRel, owner, what);
                    continue;
                }
                contextEntry(tar, f, toDir ? join(destRel, base) : destRel, owner, chmod);
            }
        });
        store.cacheStep(stage.key, new ImageStore.CachedStep(layer));
        stage.layers.add(layer);
    }

    private static List<String> execFormOrWords(ShellWords w, String args) {
        List<String> exec = execForm(args);
        if (exec != null) {
            List<String> out = new ArrayList<>();
            for (String e : exec) {
                out.add(w.word(e));
            }
            return out;
        }
        return w.words(args);
    }

    private static String parentOf(String rel) {
        int slash = rel.lastIndexOf('/');
        return slash < 0 ? "" : rel.substring(0, slash);
    }

    private static String join(String dir, String name) {
        return dir.isEmpty() ? name : dir + "/" + name;
    }

    private static void contextEntry(TarWriter tar, BuildContext.File f, String name, long[] owner, int chmod)
            throws IOException {
        int mode = chmod == NO_CHMOD ? f.mode() : chmod;
        switch (f.kind()) {
            case DIRECTORY -> tar.write(directory(name, mode, owner[0], owner[1]), null);
            case SYMLINK ->
                tar.write(
                        new TarEntry(
                                name,
                                TarEntry.Type.SYMLINK,
                                0777,
                                owner[0],
                                owner[1],
                                0,
                                f.mtimeSeconds(),
                                0,
                                f.linkTarget(),
                                0,
                                0,
                                Map.of()),
                        null);
            case FILE -> {
                try (InputStream in = BuildContext.open(f)) {
                    tar.write(
                            new TarEntry(
                                    name,
                                    TarEntry.Type.FILE,
                                    mode,
                                    owner[0],
                                    owner[1],
                                    f.size(),
                                    f.mtimeSeconds(),
                                    0,
                                    "",
                                    0,
                                    0,
                                    Map.of()),
                            in);
                }
            }
        }
    }

    private static boolean isArchive(BuildContext.File f) throws IOException {
        if (f.kind() != BuildContext.Kind.FILE) {
            return false;
        }
        try (InputStream raw = new BufferedInputStream(BuildContext.open(f))) {
            raw.mark(4);
            byte[] magic = raw.readNBytes(4);
            raw.reset();
            if (magic.length >= 2 && (magic[0] & 0xff) == 0x1f && (magic[1] & 0xff) == 0x8b) {
                return true;
            }
            byte[] header = new byte[512];
            if (raw.readNBytes(header, 0, 512) < 512) {
                return false;
            }
            return new String(header, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
        }
    }

    /**
     * ADD of a local archive: its entries under {@code destRel}, each name cleaned (a name that
     * climbs out with {@code ..} or is absolute is refused; links are checked again when the
     * layer is unpacked).
     */
    private static void extract(TarWriter tar, BuildContext.File f, String destRel, long[] owner, String what)
            throws IOException {
        try (InputStream raw = BuildContext.open(f);
                InputStream in = gunzipped(new BufferedInputStream(raw, 1 << 16))) {
            TarReader reader = new TarReader(in);
            TarEntry e;
            Set<String> written = new HashSet<>();
            while ((e = reader.next()) != null) {
                String name = stripSlashes(e.name());
                if (name.isEmpty() || name.equals(".")) {
                    continue;
                }
                for (String seg : name.split("/")) {
                    if (seg.equals("..")) {
                        throw new BuildException(what + ": the archive " + f.name() + " holds " + name
                                + ", which leads outside its directory");
                    }
                }
                String link = e.linkName();
                if (e.type() == TarEntry.Type.HARDLINK) {
                    String target = stripSlashes(link);
                    if (!written.contains(target)) {
                        throw new BuildException(
                                what + ": the archive holds a hard link to " + target + ", not an earlier member");
                    }
                    link = join(destRel, target);
                }
                tar.write(
                        new TarEntry(
                                join(destRel, name),
                                e.type(),
                                e.mode(),
                                e.uid(),
                                e.gid(),
                                e.size(),
                                e.mtimeSeconds(),
                                e.mtimeNanos(),
                                link,
                                e.devMajor(),
                                e.devMinor(),
                                e.xattrs()),
                        e.type() == TarEntry.Type.FILE ? new EntryStream(reader) : null);
                written.add(name);
            }
        }
    }

    private static InputStream gunzipped(BufferedInputStream in) throws IOException {
        in.mark(2);
        int a = in.read();
        int b = in.read();
        in.reset();
        return a == 0x1f && b == 0x8b ? new java.util.zip.GZIPInputStream(in, 1 << 16) : in;
    }

    /** {@code --chown=USER[:GROUP]} as ids: numbers as given, names from the stage's /etc/passwd and /etc/group. */
    private long[] owner(Stage stage, Request request, @Nullable String chown, String what)
            throws IOException, InterruptedException {
        if (chown == null || chown.isEmpty()) {
            return new long[] {0, 0};
        }
        int colon = chown.indexOf(':');
        String u = colon < 0 ? chown : chown.substring(0, colon);
        String g = colon < 0 ? null : chown.substring(colon + 1);
        long uid;
        long gid = -1;
        if (u.matches("[0-9]{1,10}")) {
            uid = Long.parseLong(u);
        } else {
            String[] entry = lookup(stage, request, "/etc/passwd", u, what);
            uid = Long.parseLong(entry[2]);
            gid = Long.parseLong(entry[3]);
        }
        if (g != null) {
            gid = g.matches("[0-9]{1,10}")
                    ? Long.parseLong(g)
                    : Long.parseLong(lookup(stage, request, "/etc/group", g, what)[2]);
        }
        return new long[] {uid, gid < 0 ? uid : gid};
    }

    private String[] lookup(Stage stage, Request request, String file, String name, String what)
            throws IOException, InterruptedException {
        byte[] db = stage.current(request).readSmall(file, 4 << 20);
        if (db != null) {
            for (String line : new String(db, StandardCharsets.UTF_8).split("\n")) {
                String[] f = line.split(":", -1);
                if (f.length >= 4
                        && f[0].equals(name)
                        && f[2].matches("[0-9]{1,10}")
                        && (file.endsWith("group") || f[3].matches("[0-9]{1,10}"))) {
                    return f;
                }
            }
        }
        throw new BuildException(what + " --chown: no " + (file.endsWith("group") ? "group" : "user") + " '" + name
                + "' in the image's " + file + "; give a number or create it in a RUN step first");
    }

    private void copyFromStage(
            Stage stage,
            List<Stage> stages,
            Request request,
            String from,
            List<String> srcs,
            String destRel,
            boolean destIsDir,
            @Nullable String chown,
            int chmod,
            String what,
            String step)
            throws IOException, InterruptedException {
        Stage source = null;
        for (Stage s : stages) {
            if (s != stage && from.equals(s.alias)) {
                source = s;
            }
        }
        if (source == null) {
            int index = from.matches("[0-9]{1,3}") ? Integer.parseInt(from) : -1;
            if (index >= 0 && index < stages.size() - 1) {
                source = stages.get(index);
            } else {
                throw new BuildException(what + " --from=" + from + ": no earlier stage is named so; name one with"
                        + " FROM IMAGE AS " + from);
            }
        }
        chain(
                stage,
                "COPY --from " + source.key + " "
                        + JSON.writeValueAsString(List.of(srcs, destRel, chown == null ? "" : chown))
                        + (chmod == NO_CHMOD ? "" : " --chmod=" + Integer.toOctalString(chmod)));
        if (cached(stage, request, step)) {
            return;
        }
        progress.step(step);
        BuildSandbox from0 = source.current(request);
        TreeSnapshot tree = from0.snapshot;
        long[] owner = chown == null ? null : owner(stage, request, chown, what);
        List<String> paths = new ArrayList<>();
        Map<String, String> renames = new LinkedHashMap<>();
        boolean toDir = destIsDir;
        for (String s : srcs) {
            String rel = clean("/" + s).substring(1);
            if (!tree.contains(rel)) {
                throw new BuildException(what + ": " + s + " does not exist in stage " + from);
            }
            boolean dir = tree.isDirectory(rel);
            String target = dir ? destRel : toDir ? join(destRel, rel.substring(rel.lastIndexOf('/') + 1)) : destRel;
            for (String p : tree.subtree(rel)) {
                String below = p.equals(rel) ? "" : p.substring(rel.isEmpty() ? 0 : rel.length() + 1);
                String name = below.isEmpty() ? target : join(target, below);
                if (name.isEmpty()) {
                    continue;
                }
                paths.add(p);
                renames.put(p, name);
            }
        }
        List<String> parents = missingDirs(stage, request, destIsDir ? destRel : parentOf(destRel));
        Set<String> wanted = new HashSet<>(paths);
        ImageSource.Layer layer = writeLayer(tar -> {
            for (String d : parents) {
                if (!renames.containsValue(d)) {
                    tar.write(directory(d, 0755, 0, 0), null);
                }
            }
            from0.pack(
                    paths,
                    reader -> copyEntries(
                            reader, tar, wanted, new HashSet<>(), p -> renames.getOrDefault(p, p), owner, chmod));
        });
        store.cacheStep(stage.key, new ImageStore.CachedStep(layer));
        stage.layers.add(layer);
    }

    // ---- the result

    private Image finish(Stage stage, Request request, String reference) {
        ImageConfig config = stage.config();
        // canonical (ImageConfig's maps have no stable order): the same build gives the same recipe
        String configJson = JSON.writeValueAsString(List.of(
                List.copyOf(stage.env.entrySet().stream()
                        .map(e -> e.getKey() + "=" + e.getValue())
                        .toList()),
                stage.workdir,
                stage.user,
                stage.entrypoint,
                stage.cmd,
                new TreeMap<>(stage.labels),
                stage.exposed,
                stage.stopSignal == null ? "" : stage.stopSignal));
        String recipe = ImageStore.layeredRecipe("sha256:" + Hashing.sha256("build\n" + stage.key + "\n" + configJson));
        String name = request.tag() == null ? null : ImageStore.storedName(request.tag());
        if (!request.noCache()) {
            var existing = store.findLayered(recipe);
            if (existing.isPresent()) {
                progress.step("the image is unchanged: " + existing.get().shortId());
                return name == null ? existing.get() : store.tag(name, existing.get());
            }
        }
        List<ImageSource.Layer> all = new ArrayList<>();
        if (stage.base != null && stage.base.source() != null) {
            all.addAll(stage.base.source().layers());
        }
        all.addAll(stage.layers);
        ImageSource source = new ImageSource(
                ImageSource.BUILD, reference, "", "sha256:" + Hashing.sha256(configJson), "linux/amd64", all);
        List<LayeredImages.LocalLayer> local = new ArrayList<>();
        for (ImageSource.Layer l : stage.layers) {
            local.add(new LayeredImages.LocalLayer(l, store.contentFile(l.digest())));
        }
        return new LayeredImages(store, progress)
                .assembleOnto(stage.base, name, config, source, local, Map.of(), recipe);
    }

    /** Passes output on and keeps its last {@link #TAIL} bytes for the error of a failed step. */
    private static final class TailOutput extends OutputStream {
        private final OutputStream out;
        private final byte[] ring = new byte[TAIL];
        private long written;

        TailOutput(OutputStream out) {
            this.out = out;
        }

        @Override
        public synchronized void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            out.flush();
            for (int i = 0; i < len; i++) {
                ring[(int) (written++ % TAIL)] = b[off + i];
            }
        }

        synchronized String text() {
            int n = (int) Math.min(written, TAIL);
            byte[] b = new byte[n];
            for (int i = 0; i < n; i++) {
                b[i] = ring[(int) ((written - n + i) % TAIL)];
            }
            return dev.airlock.net.UntrustedText.forTerminal(new String(b, StandardCharsets.UTF_8));
        }
    }
}
