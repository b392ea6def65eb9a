package dev.airlock.sdk;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import java.net.URISyntaxException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The SDK stands alone: its classes use the JDK, Jackson and JSpecify's annotations, never the
 * product's classes (the daemon is in this module's test scope only, to run it in the tests).
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
                .resideInAPackage("dev.airlock.sdk")
                .because("the SDK module holds only the SDK's package")
                .check(SDK);
        classes()
                .that()
                .resideInAPackage("dev.airlock.sdk")
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
}
