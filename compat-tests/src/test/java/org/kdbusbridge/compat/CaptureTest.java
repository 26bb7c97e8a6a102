package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;

/**
 * Our extension {@code --kdbus-capture=FILE}: every message, in the pcapng format busctl
 * capture writes, flushed and closed on SIGTERM, readable by tshark.
 */
class CaptureTest {
    @Test
    void captureFileIsReadableByTsharkAfterSigterm(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("bus.pcapng");
        MonitorTest.Traffic t;
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus"), "--kdbus-capture=" + file), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            t = MonitorTest.traffic(address);
            // SIGTERM through kill(1): Process.destroy() would also close our end of its stderr.
            Cmd.Result kill = Cmd.run(List.of("kill", "-TERM", String.valueOf(bus.process().pid())), Buses.T);
            assertTrue(kill.ok(), kill.describe());
            assertTrue(bus.process().waitFor(Buses.T.toSeconds(), TimeUnit.SECONDS), bus.describe());
            assertNotNull(bus.stderr().awaitLine(l -> l.contains("Capture to " + file + " closed") && l.contains(" 0 dropped"),
                    Buses.T), bus.describe());
        }

        byte[] bytes = Files.readAllBytes(file);
        PcapStream.Header h = PcapStream.header(bytes);
        assertNotNull(h, "pcapng header");
        assertEquals("pcapng", h.format());
        assertEquals(PcapStream.DLT_DBUS, h.linkType());
        List<Message> msgs = PcapStream.messages(bytes);
        String text = PcapStream.describe(msgs);
        assertTrue(PcapStream.hasMember(msgs, Message.METHOD_CALL, "Hello"), text);
        assertTrue(msgs.stream().anyMatch(m -> "Ping".equals(m.member) && t.client().equals(m.sender)), text);
        assertTrue(msgs.stream().anyMatch(m -> m.type == Message.METHOD_RETURN && m.replySerial == t.callSerial()
                && t.service().equals(m.sender)), text);
        assertTrue(PcapStream.hasError(msgs, "org.freedesktop.DBus.Error.ServiceUnknown"), text);
        assertTrue(PcapStream.hasMember(msgs, Message.SIGNAL, "NameOwnerChanged"), text);

        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/tshark")),
                "tshark is not installed (.ci/run installs it): the file was checked by our own reader only");
        Cmd.Result r = Cmd.run(List.of("tshark", "-r", file.toString(), "-T", "fields", "-e", "dbus.message_type",
                "-e", "dbus.member", "-e", "dbus.sender"), Buses.T);
        assertTrue(r.ok(), r.describe());
        List<String> lines = Arrays.asList(r.stdout().split("\n"));
        assertEquals(msgs.size(), lines.size(), "tshark read every record\n" + r.describe());
        assertTrue(lines.contains("1\tPing\t" + t.client()), r.describe());
        assertTrue(lines.contains("4\tTick\t" + t.client()), r.describe());
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("4\tNameOwnerChanged\torg.freedesktop.DBus")), r.describe());
    }
}
