package dev.airlock.architecture;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.assertj.core.api.Assertions.assertThat;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Keeps the arrows of the layering pointing one way, over the product's compiled classes:
 *
 * <pre>
 *   front ends (cli, api, mcp, e2b, ociruntime) --> service (SandboxService) <-- client (DaemonClient)
 *                                  ^
 *                       local (LocalSandboxService) --> engine --> backend (the SPI)
 *                                                                    ^
 *                            microvm (+ vmm), gvisor, container -----+
 *                                             \        /
 *                                              oci (OCI bundles and runtimes, shared)
 *   daemon: the composition root, the one place that names every part
 *   host tools run in the CLI before any daemon (setup, doctor, runtimes): they may reach below
 * </pre>
 *
 * <p>What it catches: had {@code cli.SandboxCommands} called {@code engine.SandboxEngine} or
 * {@code microvm.MicrovmBackend} directly, as the CLI once merged the create-time environment
 * itself, {@link #frontEndsSeeTheServiceAndTheClientOnly} fails with a line such as
 *
 * <pre>
 *   Architecture Violation [Priority: MEDIUM] - Rule 'no classes that reside in a package
 *   '..airlock.cli..' ... should depend on classes that reside in any package ['..airlock.engine..',
 *   ...]' was violated (1 times):
 *   Method &lt;dev.airlock.cli.SandboxCommands.client()&gt; calls constructor
 *   &lt;dev.airlock.engine.SandboxEngine.&lt;init&gt;(...)&gt; in (SandboxCommands.java:49)
 * </pre>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LayeringTest {
    /** Everything below the service: no front end reaches past the service to these. */
    private static final String[] BELOW_THE_SERVICE = {
        "dev.airlock.engine..",
        "dev.airlock.backend..",
        "dev.airlock.microvm..",
        "dev.airlock.container..",
        "dev.airlock.gvisor..",
        "dev.airlock.oci..",
        "dev.airlock.vmm..",
        "dev.airlock.local..",
    };

    private JavaClasses product;

    @BeforeAll
    void importProduct() {
        product = new ClassFileImporter()
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_JARS)
                .importPackages("dev.airlock");
    }

    @Test
    void frontEndsSeeTheServiceAndTheClientOnly() {
        noClasses()
                .that()
                .resideInAnyPackage(
                        "dev.airlock.cli..",
                        "dev.airlock.api..",
                        "dev.airlock.mcp..",
                        "dev.airlock.e2b..",
                        "dev.airlock.ociruntime..")
                .and()
                .doNotHaveSimpleName("DaemonCommand")
                .and()
                .doNotHaveSimpleName("ServeCommand")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(BELOW_THE_SERVICE)
                .orShould()
                .dependOnClassesThat()
                .resideInAnyPackage("dev.airlock.daemon..")
                .because("a front end parses, calls the SandboxService and maps the answer; only the daemon's"
                        + " composition root (and the two commands that run it: daemon, serve) names what is below"
                        + " the service")
                .check(product);
    }

    @Test
    void theServiceInterfaceKnowsNoImplementation() {
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.service..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(BELOW_THE_SERVICE)
                .orShould()
                .dependOnClassesThat()
                .resideInAnyPackage(
                        "dev.airlock.api..", "dev.airlock.client..", "dev.airlock.cli..", "dev.airlock.daemon..")
                .check(product);
    }

    @Test
    void theClientHasNoServerImports() {
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.client..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(BELOW_THE_SERVICE)
                .orShould()
                .dependOnClassesThat()
                .resideInAnyPackage("dev.airlock.api..", "dev.airlock.daemon..", "dev.airlock.cli..")
                .check(product);
    }

    /**
     * The product holds the Java SDK (its shaded jar does) for one thing: the SDK's HTTP transport,
     * the client's way to the daemon. The SDK's model (its {@code Airlock}, {@code Sandbox}, ...)
     * is for programs; the product has its own service types.
     */
    @Test
    void onlyTheClientUsesTheSdkAndOnlyItsTransport() {
        noClasses()
                .that()
                .resideOutsideOfPackage("dev.airlock.client..")
                .and()
                .resideOutsideOfPackage("dev.airlock.sdk..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("dev.airlock.sdk..")
                .because("front ends call the SandboxService; only the client talks HTTP to the daemon")
                .check(product);
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.client..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("dev.airlock.sdk")
                .because("the client uses the SDK's transport, not the SDK's model")
                .check(product);
    }

    @Test
    void theEngineSeesTheBackendInterfaceOnly() {
        noClasses()
                .that()
                .resideInAnyPackage("dev.airlock.engine..", "dev.airlock.backend..", "dev.airlock.local..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(
                        "dev.airlock.microvm..",
                        "dev.airlock.container..",
                        "dev.airlock.gvisor..",
                        "dev.airlock.oci..",
                        "dev.airlock.vmm..",
                        "dev.airlock.api..",
                        "dev.airlock.client..",
                        "dev.airlock.cli..",
                        "dev.airlock.daemon..")
                .because("backends are chosen by name through the Backends registry, never by type")
                .check(product);
    }

    @Test
    void onlyTheMicrovmBackendAndHostToolsDriveTheVmm() {
        noClasses()
                .that()
                .resideOutsideOfPackages(
                        "dev.airlock.vmm..", "dev.airlock.microvm..", "dev.airlock.setup..", "dev.airlock.doctor..")
                .should()
                .dependOnClassesThat()
                .resideInAPackage("dev.airlock.vmm..")
                .check(product);
    }

    @Test
    void backendsDoNotKnowEachOther() {
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.microvm..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage("dev.airlock.container..", "dev.airlock.gvisor..", "dev.airlock.oci..")
                .check(product);
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.container..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage("dev.airlock.microvm..", "dev.airlock.vmm..", "dev.airlock.gvisor..")
                .check(product);
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.gvisor..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage("dev.airlock.microvm..", "dev.airlock.vmm..", "dev.airlock.container..")
                .check(product);
    }

    @Test
    void theSharedOciCodeBelongsToNoBackend() {
        noClasses()
                .that()
                .resideInAPackage("dev.airlock.oci..")
                .should()
                .dependOnClassesThat()
                .resideInAnyPackage(
                        "dev.airlock.microvm..",
                        "dev.airlock.vmm..",
                        "dev.airlock.container..",
                        "dev.airlock.gvisor..",
                        "dev.airlock.engine..",
                        "dev.airlock.local..")
                .because("what the container and gVisor backends share must not pull either one, or the engine,"
                        + " into the other")
                .check(product);
    }

    @Test
    void packagesHaveNoCycles() {
        slices().matching("dev.airlock.(*)..").should().beFreeOfCycles().check(product);
    }

    @Test
    void theProductHoldsNoBenchmark() {
        assertThat(product.stream().filter(c -> c.getPackageName().startsWith("dev.airlock.bench")))
                .as("benchmarks live in the bench module, out of the product jar")
                .isEmpty();
    }
}
