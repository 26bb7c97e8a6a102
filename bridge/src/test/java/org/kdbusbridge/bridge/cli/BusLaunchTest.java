package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.config.ConfigCache;

/** A bus launched with a given environment and directory (what the warm host runs), and what it refuses to host. */
class BusLaunchTest {
    private static final String POLICY = "<policy context=\"default\"><allow own=\"*\"/></policy>";

    private static BusLaunch launch(Path cwd, Map<String, String> env, ByteArrayOutputStream err, String... argv) {
        return BusLaunch.hosted(argv, env, cwd, new PrintStream(err, true, StandardCharsets.UTF_8), ConfigCache.NONE);
    }

    @Test
    void aRelativeConfigFileIsTheCallersAndTheSessionDirectoriesComeFromItsEnvironment(@TempDir Path dir)
            throws Exception {
        Files.writeString(dir.resolve("bus.conf"), "<busconfig><type>session</type><listen>unix:tmpdir=/tmp</listen>"
                + "<standard_session_servicedirs/>" + POLICY + "</busconfig>");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        BusLaunch l = launch(dir, Map.of("XDG_DATA_HOME", "/only/in/this/env", "XDG_DATA_DIRS", "/also/here",
                "HOME", "/home/nobody"), err, "--config-file=bus.conf", "--nofork");
        assertNotNull(l);
        assertEquals(0, l.loadHosted(), err.toString());
        assertTrue(l.config().serviceDirs().contains("/only/in/this/env/dbus-1/services"), l.config().serviceDirs().toString());
        assertTrue(l.config().serviceDirs().contains("/also/here/dbus-1/services"), l.config().serviceDirs().toString());
        assertNull(l.notHostable());
    }

    @Test
    void aConfigErrorIsPrintedToTheGivenStreamWithDbusDaemonsPrefix(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("bad.conf"), "<busconfig><bogus/></busconfig>");
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        BusLaunch l = launch(dir, Map.of(), err, "--config-file=bad.conf");
        assertEquals(1, l.loadHosted());
        assertTrue(err.toString().startsWith("Failed to start message bus: "), err.toString());
    }

    @Test
    void aUsageErrorGivesNoLaunchAndTheUsageText(@TempDir Path dir) {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        assertNull(launch(dir, Map.of(), err, "--session", "--session"));
        assertTrue(err.toString().contains(Main.USAGE), err.toString());
    }

    @Test
    void startsThatNeedAProcessOfTheirOwnAreNotHosted(@TempDir Path dir) throws Exception {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        assertNotNull(launch(dir, Map.of(), err, "--system").notHostable());
        assertNotNull(launch(dir, Map.of(), err, "--session", "--fork").notHostable());
        assertNotNull(launch(dir, Map.of(), err, "--session", "--kdbus-containers").notHostable());
        for (String extra : new String[] {"<user>nobody</user>", "<pidfile>" + dir.resolve("pid") + "</pidfile>",
                "<fork/>"}) {
            Files.writeString(dir.resolve("c.conf"), "<busconfig><listen>unix:tmpdir=/tmp</listen>" + extra + POLICY
                    + "</busconfig>");
            BusLaunch l = launch(dir, Map.of(), err, "--config-file=c.conf");
            assertEquals(0, l.loadHosted(), err.toString());
            assertNotNull(l.notHostable(), extra);
        }
        // <fork/> with --nofork and <pidfile> with --nopidfile are a plain bus again
        Files.writeString(dir.resolve("c.conf"), "<busconfig><listen>unix:tmpdir=/tmp</listen><fork/><pidfile>"
                + dir.resolve("pid") + "</pidfile>" + POLICY + "</busconfig>");
        BusLaunch l = launch(dir, Map.of(), err, "--config-file=c.conf", "--nofork", "--nopidfile");
        assertEquals(0, l.loadHosted(), err.toString());
        assertNull(l.notHostable());
    }

    @Test
    void onlyUnixSocketsAtAbsolutePathsAreHosted() {
        assertNull(BusLaunch.notHostableListen("unix:tmpdir=/tmp"));
        assertNull(BusLaunch.notHostableListen("unix:path=/run/x"));
        assertNull(BusLaunch.notHostableListen("unix:dir=/run"));
        assertNotNull(BusLaunch.notHostableListen("unix:path=relative"));
        assertNotNull(BusLaunch.notHostableListen("unix:abstract=x"));
        assertNotNull(BusLaunch.notHostableListen("tcp:host=localhost,port=0"));
        assertNotNull(BusLaunch.notHostableListen("systemd:"));
    }
}
