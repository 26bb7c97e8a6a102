package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * Refusals nobody is told of are shown to monitors, as dbus-daemon does: a broadcast the
 * policy keeps from a receiver is followed by an AccessDenied error from the bus to its
 * sender (the sender never gets it), and a bus message a receive rule forbids (NameAcquired
 * here) by an AccessDenied error from the bus to itself, in reply to that message.
 */
class MonitorRefusalTest {
    private static final String DENIED = "org.freedesktop.DBus.Error.AccessDenied";

    private static BusUnderTest start(BusKind kind, Path dir) throws Exception {
        Path conf = dir.resolve("forbidding.conf");
        Files.writeString(conf, "<busconfig><type>session</type><listen>unix:path=" + dir.resolve("bus") + "</listen>"
                + "<policy context=\"default\"><allow send_destination=\"*\"/><allow receive_sender=\"*\"/>"
                + "<allow own=\"*\"/>"
                + "<deny send_interface=\"com.example.CannotSend\"/>"
                + "<deny receive_interface=\"com.example.CannotReceive\"/>"
                + "<deny receive_interface=\"org.freedesktop.DBus\" receive_member=\"NameAcquired\"/>"
                + "</policy></busconfig>\n");
        return kind.start(conf);
    }

    private static Message signal(String iface, String member) {
        Message m = new Message();
        m.type = Message.SIGNAL;
        m.path = "/foo";
        m.iface = iface;
        m.member = member;
        return m;
    }

    /** The peer details in a denial text (the same process on both buses, but a pid is a pid). */
    private static String normalise(String text) {
        return text.replaceAll("\\(uid=\\d+ pid=\\d+ comm=\"[^\"]*\"\\)", "(PEER)");
    }

    private static String denial(String what, String sender, String iface, String member) {
        return what + ", 2 matched rules; type=\"signal\", sender=\"" + sender + "\" (PEER) interface=\"" + iface
                + "\" member=\"" + member + "\" error name=\"(unset)\" requested_reply=\"0\""
                + " destination=\"org.freedesktop.DBus\" (PEER)";
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void forbiddenBroadcastsShowAnErrorToTheSenderThatOnlyMonitorsGet(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient mon = RawClient.connectHello(bus.address(), Buses.T);
             RawClient receiver = RawClient.connectHello(bus.address(), Buses.T);
             RawClient sender = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(Message.METHOD_RETURN, receiver.callBus("AddMatch", Buses.T, "s", "type='signal'").type);
            assertEquals(Message.METHOD_RETURN, MonitorTest.becomeMonitor(mon, List.of(), 0).type);
            long cannotSend = sender.send(signal("com.example.CannotSend", "S1"));
            long cannotReceive = sender.send(signal("com.example.CannotReceive", "S2"));
            sender.send(signal("com.example.Fine", "Marker"));
            assertNotNull(mon.awaitSignal("Marker", Buses.SHORT), String.join("\n", mon.transcript()));
            assertNotNull(receiver.awaitSignal("Marker", Buses.SHORT), String.join("\n", receiver.transcript()));

            List<Message> seen = new ArrayList<>();
            for (Message m : mon.messages()) {
                if (sender.uniqueName().equals(m.sender) || sender.uniqueName().equals(m.destination)) {
                    seen.add(m);
                }
            }
            String log = String.join("\n", mon.transcript());
            assertEquals(5, seen.size(), log);
            assertEquals("S1", seen.get(0).member, log);
            assertRefusal(seen.get(1), sender.uniqueName(), cannotSend, log);
            assertEquals(denial("Rejected send message", sender.uniqueName(), "com.example.CannotSend", "S1"),
                    normalise((String) seen.get(1).arg(0)));
            assertEquals("S2", seen.get(2).member, log);
            assertRefusal(seen.get(3), sender.uniqueName(), cannotReceive, log);
            assertEquals(denial("Rejected receive message", sender.uniqueName(), "com.example.CannotReceive", "S2"),
                    normalise((String) seen.get(3).arg(0)));
            assertEquals("Marker", seen.get(4).member, log);

            sender.sync(Buses.SHORT);
            assertFalse(sender.messages().stream().anyMatch(m -> m.type == Message.ERROR),
                    "the sender is never told\n" + String.join("\n", sender.transcript()));
            assertFalse(receiver.messages().stream().anyMatch(m -> "S1".equals(m.member) || "S2".equals(m.member)),
                    String.join("\n", receiver.transcript()));
        }
    }

    private static void assertRefusal(Message m, String to, long replySerial, String log) {
        assertEquals(Message.ERROR, m.type, log);
        assertEquals(DENIED, m.errorName, log);
        assertEquals(RawClient.BUS, m.sender, log);
        assertEquals(to, m.destination, log);
        assertEquals(replySerial, m.replySerial, log);
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void aForbiddenNameAcquiredShowsTheBusRefusingItself(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir); RawClient mon = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(Message.METHOD_RETURN, MonitorTest.becomeMonitor(mon, List.of(), 0).type);
            try (RawClient late = RawClient.connectHello(bus.address(), Buses.T)) {
                String name = late.uniqueName();
                Message acquired = mon.await(m -> "NameAcquired".equals(m.member) && name.equals(m.destination),
                        Buses.SHORT, false);
                assertNotNull(acquired, String.join("\n", mon.transcript()));
                Message refusal = mon.await(m -> m.type == Message.ERROR && m.replySerial == acquired.serial
                        && RawClient.BUS.equals(m.destination), Buses.SHORT, false);
                assertNotNull(refusal, String.join("\n", mon.transcript()));
                assertRefusal(refusal, RawClient.BUS, acquired.serial, String.join("\n", mon.transcript()));
                List<Message> all = mon.messages();
                assertEquals(all.indexOf(acquired) + 1, all.indexOf(refusal), "right after it\n" + mon.transcript());
                assertTrue(((String) refusal.arg(0)).startsWith("Rejected receive message, "), refusal.arg(0).toString());

                late.sync(Buses.SHORT);
                assertFalse(late.messages().stream().anyMatch(m -> "NameAcquired".equals(m.member)),
                        "the receive rule holds\n" + String.join("\n", late.transcript()));
            }
        }
    }

    /** dbus-monitor prints the bus's refusal after the refused broadcast. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void dbusMonitorPrintsTheRefusal(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient receiver = RawClient.connectHello(bus.address(), Buses.T);
             Background mon = Background.start(List.of("dbus-monitor", "--address", bus.address()), Map.of())) {
            assertEquals(Message.METHOD_RETURN, receiver.callBus("AddMatch", Buses.T, "s", "type='signal'").type);
            // Its own NameLost: it is a monitor now.
            assertNotNull(mon.stdout().awaitLine(l -> l.contains("member=NameLost"), Buses.T), mon.describe());
            try (RawClient sender = RawClient.connectHello(bus.address(), Buses.T)) {
                long serial = sender.send(signal("com.example.CannotReceive", "S2"));
                String want = "sender=org.freedesktop.DBus -> destination=" + sender.uniqueName()
                        + " error_name=" + DENIED + " reply_serial=" + serial;
                assertNotNull(mon.stdout().awaitLine(l -> l.startsWith("error ") && l.contains(want), Buses.T),
                        mon.describe());
            }
        }
    }
}
