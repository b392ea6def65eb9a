package dev.airlock.sdk;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.airlock.sdk.http.DaemonHttp;
import java.net.URISyntaxException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The SDK stands alone: its classes use the JDK, Jackson and JSpecify's annotations, never the
 * product's classes (the product depends on the SDK, not the other way round). Its transport
 * uses the JDK alone, because the CLI's short commands load it: Jackson's data binding there
 * would cost every {@code airlock ps} its start-up.
 */
class SdkLayeringTest {
    /** Every class this module compiles: the directory (or jar) the SDK's classes are loaded from. */
    private static final JavaClasses SDK = new ClassFileImporter()
            .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPath(sdkClasses());

    private static Path sdkClasses() {
        try {
            return Path.of(Airlock.class
                    .getProtectionDomain()
                    .getCodeSource()
                    .getLocation()
                    .toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void theSdkUsesOnlyTheJdkJacksonAndJspecify() {
        assertThat(SDK.contain(Airlock.class)).isTrue();
        classes()
                .should()
                .resideInAnyPackage("dev.airlock.sdk", "dev.airlock.sdk.http")
                .because("the SDK module holds only the SDK's package and its transport")
                .check(SDK);
        classes()
                .that()
                .resideInAPackage("dev.airlock.sdk..")
                .should()
                .onlyDependOnClassesThat()
                .resideInAnyPackage(
                        "dev.airlock.sdk..",
                        "java..",
                        "tools.jackson..",
                        "com.fasterxml.jackson.annotation..",
                        "org.jspecify.annotations..")
                .because("programs use the SDK without the daemon's classes")
                .check(SDK);
    }

    @Test
    void theTransportUsesTheJdkAlone() {
        assertThat(SDK.contain(DaemonHttp.class)).isTrue();
        classes()
                .that()
                .resideInAPackage("dev.airlock.sdk.http")
                .should()
                .onlyDependOnClassesThat()
                .resideInAnyPackage("dev.airlock.sdk.http", "java..", "org.jspecify.annotations..")
                .because("the CLI talks to its daemon through it, and a short command must not load a JSON"
                        + " data binder or the SDK's model to do so")
                .check(SDK);
    }
}
