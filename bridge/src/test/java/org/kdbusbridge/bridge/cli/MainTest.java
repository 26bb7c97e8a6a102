package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.parallel.ResourceLock;
import org.junit.jupiter.api.parallel.Resources;

@ResourceLock(Resources.SYSTEM_OUT)
@ResourceLock(Resources.SYSTEM_ERR)
class MainTest {
    private PrintStream savedOut;
    private PrintStream savedErr;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @TempDir
    Path dir;

    @BeforeEach
    void capture() {
        savedOut = System.out;
        savedErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(savedOut);
        System.setErr(savedErr);
    }

    private String stdout() {
        return out.toString(StandardCharsets.UTF_8);
    }

    private String stderr() {
        return err.toString(StandardCharsets.UTF_8);
    }

    // --- parse ----------------------------------------------------------------------------

    @Test
    void kdbusCaptureTakesOneFileInEitherForm() throws Exception {
        assertEquals("/tmp/a.pcapng", Main.parse(new String[] {"--kdbus-capture=/tmp/a.pcapng"}).captureFile);
        assertEquals("b.pcapng", Main.parse(new String[] {"--kdbus-capture", "b.pcapng", "--session"}).captureFile);
        assertNull(Main.parse(new String[] {"--session"}).captureFile);
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-capture"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-capture="}));
        assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--kdbus-capture=a", "--kdbus-capture=b"}));
    }

    @Test
    void kdbusMonitorMetadataTakesOneCheckedItemListInEitherForm() throws Exception {
        assertEquals("seq,creds", Main.parse(new String[] {"--kdbus-monitor-metadata=seq,creds"}).monitorMetadata);
        assertEquals("names", Main.parse(new String[] {"--kdbus-monitor-metadata", "names", "--session"}).monitorMetadata);
        assertNull(Main.parse(new String[] {"--session"}).monitorMetadata);
        for (String[] bad : new String[][] {{"--kdbus-monitor-metadata"}, {"--kdbus-monitor-metadata="},
                {"--kdbus-monitor-metadata=seq,bogus"}, {"--kdbus-monitor-metadata=drops"},
                {"--kdbus-monitor-metadata=pidfd"}, {"--kdbus-monitor-metadata=seq", "--kdbus-monitor-metadata=creds"}}) {
            assertThrows(Main.UsageException.class, () -> Main.parse(bad), String.join(" ", bad));
        }
        Main.UsageException e = assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--kdbus-monitor-metadata=bogus"}));
        assertTrue(e.getMessage().contains("'bogus'"), e.getMessage());
    }

    @Test
    void configFileAsSeparateArgument() throws Exception {
        Main.Options o = Main.parse(new String[] {"--config-file", "/etc/x.conf"});
        assertEquals("/etc/x.conf", o.configFile);
    }

    @Test
    void configFileWithEquals() throws Exception {
        Main.Options o = Main.parse(new String[] {"--config-file=/etc/y.conf"});
        assertEquals("/etc/y.conf", o.configFile);
    }

    @Test
    void sessionAndSystemSelectStockFiles() throws Exception {
        assertEquals(Main.SESSION_CONF, Main.parse(new String[] {"--session"}).configFile);
        assertEquals(Main.SYSTEM_CONF, Main.parse(new String[] {"--system"}).configFile);
    }

    @Test
    void printAddressWithSeparateFd() throws Exception {
        Main.Options o = Main.parse(new String[] {"--session", "--print-address", "4"});
        assertTrue(o.printAddress);
        assertEquals("4", o.printAddressFd);
        assertEquals(Main.SESSION_CONF, o.configFile);
    }

    @Test
    void printAddressWithEqualsFd() throws Exception {
        Main.Options o = Main.parse(new String[] {"--print-address=5"});
        assertTrue(o.printAddress);
        assertEquals("5", o.printAddressFd);
    }

    @Test
    void printAddressAlone() throws Exception {
        Main.Options o = Main.parse(new String[] {"--print-address"});
        assertTrue(o.printAddress);
        assertNull(o.printAddressFd);
    }

    @Test
    void printAddressFollowedByAnotherOption() throws Exception {
        Main.Options o = Main.parse(new String[] {"--print-address", "--session"});
        assertTrue(o.printAddress);
        assertNull(o.printAddressFd);
        assertEquals(Main.SESSION_CONF, o.configFile);
    }

    @Test
    void printPidWithSeparateFd() throws Exception {
        Main.Options o = Main.parse(new String[] {"--print-pid", "7", "--nofork"});
        assertTrue(o.printPid);
        assertEquals("7", o.printPidFd);
        assertTrue(o.nofork);
    }

    @Test
    void sessionAndSystemTogetherIsAUsageError() {
        Main.UsageException e = assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--session", "--system"}));
        assertEquals(1, e.exitCode);
    }

    @Test
    void twoConfigFilesIsAUsageError() {
        assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--session", "--config-file=/x.conf"}));
    }

    @Test
    void unknownOptionIsAUsageError() {
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--frobnicate"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"stray"}));
    }

    @Test
    void addressAsSeparateArgument() throws Exception {
        Main.Options o = Main.parse(new String[] {"--address", "unix:path=/tmp/a", "--session"});
        assertEquals("unix:path=/tmp/a", o.address);
        assertEquals(Main.SESSION_CONF, o.configFile);
    }

    @Test
    void addressWithEquals() throws Exception {
        Main.Options o = Main.parse(new String[] {"--address=unix:path=/tmp/b"});
        assertEquals("unix:path=/tmp/b", o.address);
    }

    @Test
    void twoAddressesIsAUsageError() {
        assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--address=unix:path=/a", "--address", "unix:path=/b"}));
    }

    @Test
    void flagsAreRecorded() throws Exception {
        Main.Options o = Main.parse(new String[] {"--nopidfile", "--systemd-activation", "--syslog-only", "--fork"});
        assertTrue(o.nopidfile);
        assertTrue(o.systemdActivation);
        assertEquals("only", o.syslog);
        assertTrue(o.fork);
        assertFalse(o.nofork);
    }

    // --- run ------------------------------------------------------------------------------

    @Test
    void runWithoutConfigFails() {
        assertEquals(1, Main.run(new String[0]));
        assertTrue(stderr().contains("No configuration file specified."), stderr());
    }

    @Test
    void runWithUsageErrorPrintsUsage() {
        assertEquals(1, Main.run(new String[] {"--bogus"}));
        assertTrue(stderr().contains("--config-file"), stderr());
    }

    @Test
    void runVersion() {
        assertEquals(0, Main.run(new String[] {"--version"}));
        assertTrue(stdout().contains(Main.VERSION), stdout());
    }

    @Test
    void runIntrospect() {
        assertEquals(0, Main.run(new String[] {"--introspect"}));
        assertTrue(stdout().contains("<interface name=\"org.freedesktop.DBus\">"), stdout());
    }

    @Test
    void runWithMissingConfigFileFails() {
        Path missing = dir.resolve("missing.conf");
        assertEquals(1, Main.run(new String[] {"--config-file=" + missing}));
        assertTrue(stderr().contains("Failed to start message bus"), stderr());
        assertTrue(stderr().contains(missing.toString()), stderr());
    }

    @Test
    void runWithoutListenAddressFails() throws Exception {
        Path conf = dir.resolve("nolisten.conf");
        Files.writeString(conf, "<busconfig><type>session</type></busconfig>\n");
        assertEquals(1, Main.run(new String[] {"--config-file", conf.toString()}));
        assertTrue(stderr().contains("No listen addresses"), stderr());
    }
}
