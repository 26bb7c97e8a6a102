package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import org.junit.jupiter.api.DynamicTest;

/** Turns the matrix into one dynamic test per case, against one world (bus + front). */
final class MatrixRunner {
    private MatrixRunner() {}

    /** {@code -Dendpoint.matrix.repeat=N} runs the whole matrix N times over (to shake out races). */
    static final int REPEAT = Integer.getInteger("endpoint.matrix.repeat", 1);

    /**
     * {@code deliberate}: "ruleSet/caseId" to the outcome this bus gives instead, for the differences
     * docs/compatibility.md lists (the proxy's outcome stays in the case; only this bus's differs).
     */
    static Stream<DynamicTest> tests(Supplier<MatrixWorld> world, java.util.Map<String, String> deliberate) {
        return IntStream.range(0, REPEAT).boxed().flatMap(round -> MatrixCases.all().stream()
                .map(mc -> DynamicTest.dynamicTest(mc + (REPEAT > 1 ? " #" + round : ""),
                        () -> run(world.get(), deliberate.containsKey(mc.ruleSet() + "/" + mc.id())
                                ? new MatrixCase(mc.id(), mc.ruleSet(), deliberate.get(mc.ruleSet() + "/" + mc.id()),
                                        "deliberate difference, docs/compatibility.md; the proxy gives " + mc.expected(),
                                        mc.action())
                                : mc))));
    }

    static void run(MatrixWorld w, MatrixCase mc) throws Exception {
        SandboxFront f = w.front(mc.ruleSet(), MatrixCases.RULE_SETS.get(mc.ruleSet()));
        String got;
        try (CaseContext x = new CaseContext(w, f.clientAddress())) {
            got = mc.action().run(x);
        } catch (Exception | AssertionError e) {
            throw new AssertionError(mc + " failed on " + w.kind + ": " + e + "\n" + w.describeFront(mc.ruleSet()), e);
        }
        assertEquals(mc.expected(), got, () -> mc + " on " + w.kind + " (" + mc.why() + ")\nrules: "
                + MatrixCases.RULE_SETS.get(mc.ruleSet()) + "\n" + w.describeFront(mc.ruleSet()));
    }

    /** flatpak run passes the whole command line through --args=FD: the rules must apply as if given inline. */
    static void checkArgsFd(MatrixWorld w) throws Exception {
        try (SandboxFront f = w.privateFront("argsfd", List.of("--filter", "--talk=org.example.Talk"), true);
             CaseContext x = new CaseContext(w, f.clientAddress())) {
            assertEquals("ok:T:org.example.Iface.Method@/x", x.call("org.example.Talk", "/x", MatrixCases.IFACE, "Method"), f::describe);
            assertEquals("error:ServiceUnknown", x.call("org.example.See", "/x", MatrixCases.IFACE, "Method"), f::describe);
        }
    }

    /** xdg-dbus-proxy's lifetime protocol: exit (status 0) and remove the socket when --fd closes. */
    static void checkLifetime(MatrixWorld w) throws Exception {
        SandboxFront f = w.privateFront("lifetime", List.of("--filter", "--talk=org.example.Talk"), false);
        try (Insider i = Insider.connect(f.clientAddress())) {
            assertTrue(i.unique().startsWith(":"), "a client gets a unique name through the front");
        }
        assertTrue(f.closeSyncFdAndAwaitExit(), () -> "the front did not exit when its --fd closed: " + f.describe());
        assertFalse(f.isAlive());
        assertEquals(0, f.exitValue(), f::describe);
        assertFalse(Files.exists(f.socket()), () -> "the front left its socket behind: " + f.socket());
    }
}
