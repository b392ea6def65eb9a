package dev.airlock.sandbox;

import static org.assertj.core.api.Assertions.assertThat;

import dev.airlock.engine.SandboxEngine;
import dev.airlock.host.AirlockDirs;
import dev.airlock.host.Progress;
import dev.airlock.testing.Engines;
import dev.airlock.testing.PageCache;
import dev.airlock.testing.TestHost;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A VM template is on disk before any sandbox uses it. Its RAM file is checked only by its size
 * and its disk layer only for being there, so one a host crash left half-written (the size set,
 * the pages never written: zeros) would pass as whole, and every later sandbox of its
 * configuration would restore from it. The kernel must count no page of the template still to
 * write ({@code cachestat}) once the first sandbox has started from it.
 */
class TemplateCrashTest {
    /** What a template is made of (its VMM's pid file and logs are not). */
    private static final List<String> WHOLE = List.of("ram", "state", "layer.ext4", "manifest.json");

    private final AirlockDirs dirs = TestHost.isolated("template-crash");

    @AfterEach
    void cleanUp() {
        TestHost.cleanUp(dirs);
    }

    @Test
    void aTemplateIsOnDiskBeforeItIsUsed() throws Exception {
        TestHost.ready();
        SandboxEngine engine = Engines.engine(dirs, Progress.STDERR);
        Sandbox s = engine.start(
                engine.create(CreateOptions.builder().runtime("microvm").build())
                        .name());
        assertThat(engine.origin(s)).startsWith("template");
        List<Path> files;
        try (Stream<Path> walk = Files.walk(Engines.microvm(engine).templateDir())) {
            files = walk.filter(p -> Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS))
                    .filter(p -> WHOLE.contains(p.getFileName().toString()))
                    .toList();
        }
        assertThat(files).extracting(p -> p.getFileName().toString()).containsAll(WHOLE);
        List<String> unwritten = new java.util.ArrayList<>();
        for (Path f : files) {
            long pages = PageCache.unwritten(f);
            if (pages > 0) {
                unwritten.add(f.getFileName() + ": " + pages + " pages");
            }
        }
        assertThat(unwritten).as("pages of the template not on disk").isEmpty();
        engine.remove(s.name(), true);
    }
}
