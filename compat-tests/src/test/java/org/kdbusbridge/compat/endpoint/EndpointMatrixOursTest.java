package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

import org.kdbusbridge.compat.harness.BusKind;

/**
 * Issue 18's differential filter matrix, our half: the same cases and expected outcomes as
 * {@link EndpointMatrixTest}, through bin/kdbus-bridge-proxy (same command line, same --fd and
 * --args protocol) in front of our bus. A missing front fails every case (SandboxFront says so);
 * it never skips. Remove the one @Disabled line once the front exists.
 */
class EndpointMatrixOursTest extends MatrixTestBase {
    @Override
    BusKind bus() {
        return BusKind.KDBUS_BRIDGE;
    }

    @Override
    Path front() {
        return SandboxFront.ourFront();
    }

    /** The three differences docs/compatibility.md lists for endpoints (row "custom endpoints"). */
    @Override
    java.util.Map<String, String> deliberate() {
        return java.util.Map.of(
                // a unique name's level is that of the names it owns now: after the release, its
                // own departure is not shown (the proxy keeps every level a name ever gave it)
                "basic/noc-see-name", "org.example.Blink||:Y;org.example.Blink|:Y|",
                // the proxy's own NameOwnerChanged matches share the client's connection; an
                // endpoint's client gets only what it subscribed to
                "basic/noc-without-add-match", "none",
                // the front's own bus connection (the endpoint's creator) is one more unique name,
                // which an endpoint without --filter lists like any other
                "unfiltered/list-names", "ok::B,:C,:D,:H,:P,:S,:T,:W,:X,:Z,:other,:self,org.example.Bcast,org.example.Call,"
                        + "org.example.DualSee,org.example.DualTalk,org.example.Hidden,org.example.See,"
                        + "org.example.Talk,org.example.Wild.Sub,org.example.WildCard,org.freedesktop.DBus");
    }

    /**
     * Our front is the project's script, and the deliberate differences are exactly the three
     * docs/compatibility.md lists, each naming a case that exists.
     */
    @Test
    void ourFrontAndOnlyTheDocumentedDifferences() {
        assertTrue(Files.isExecutable(front()) && front().endsWith("bin/kdbus-bridge-proxy"), front() + "");
        org.junit.jupiter.api.Assertions.assertEquals(3, deliberate().size(), deliberate().toString());
        for (String key : deliberate().keySet()) {
            assertTrue(MatrixCases.all().stream().anyMatch(mc -> (mc.ruleSet() + "/" + mc.id()).equals(key)), key);
        }
    }
}
