package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Issue 17, "who caused my start?": a real activated dbus-python service asks
 * PeekActivationQueue right after it got its name and learns the two messages that waited on
 * its activator (sender, member, order, the senders' pid/uid/gid), though both were already
 * handed to it; anyone but the owner is refused.
 */
class ActivationPeekTest {
    private static final String NAME = "com.example.WhoStarted";
    private static final String PATH = "/com/example/WhoStarted";

    @Test
    void theActivatedServiceLearnsWhoCausedItsStart(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(BusKind.selected().contains(BusKind.KDBUS_BRIDGE), "our bus not selected");
        Path py = dir.resolve("who_started_me.py");
        try (InputStream in = ActivationPeekTest.class.getResourceAsStream("queue/who_started_me.py")) {
            Files.copy(in, py);
        }
        Path log = dir.resolve("who.log");
        Path conf = ActivationTest.config(dir, Map.of());
        ActivationTest.service(dir, NAME, "/usr/bin/python3 " + py + " " + log);
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(conf);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T);
             RawClient hinter = RawClient.connectHello(bus.address(), Buses.T)) {
            long echo = caller.send(Message.call(NAME, PATH, NAME, "Echo").body("u", 7L));
            caller.sync(Buses.T); // the call waits on the activator before the hint is sent
            Message hint = Message.call(NAME, PATH, NAME, "Hint");
            hint.type = Message.SIGNAL;
            hint.flags = Message.FLAG_NO_REPLY_EXPECTED;
            hinter.send(hint);
            hinter.sync(Buses.T);
            Message reply = caller.awaitReply(echo, Buses.T);
            assertEquals(Message.METHOD_RETURN, reply.type, reply.toString());
            assertEquals(7L, reply.arg(0));

            // The service wrote its log before it served the call, so the log is complete now.
            List<String> lines = Files.readAllLines(log);
            long pid = ProcessHandle.current().pid();
            long uid = RawClient.uid();
            long gid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:gid")).longValue();
            assertEquals(3, lines.size(), String.join("\n", lines));
            String[] call = lines.get(0).split(" ");
            String[] signal = lines.get(1).split(" ");
            assertEquals(List.of("1", caller.uniqueName(), NAME, "Echo", PATH), List.of(call).subList(0, 5));
            assertEquals(List.of("4", hinter.uniqueName(), NAME, "Hint", PATH), List.of(signal).subList(0, 5));
            assertTrue(Long.parseLong(call[5]) < Long.parseLong(signal[5]), "in the order they waited");
            for (String[] l : List.of(call, signal)) {
                assertEquals(List.of(String.valueOf(pid), String.valueOf(uid), String.valueOf(gid)),
                        List.of(l).subList(6, 9), "the sender's pid, uid, gid");
            }
            assertEquals("done", lines.get(2));

            Message denied = caller.call(QueueInsightTest.ext("PeekActivationQueue").body("s", NAME), Buses.T);
            assertEquals("org.freedesktop.DBus.Error.AccessDenied", denied.errorName, denied.toString());
        }
    }
}
