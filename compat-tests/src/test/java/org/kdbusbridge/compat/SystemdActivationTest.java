package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * --systemd-activation: a SystemdService= name is started by an ActivationRequest signal to
 * the owner of org.freedesktop.systemd1 (played here by a raw client), which answers by
 * starting the service or with ActivationFailure. Same scenario on both buses.
 */
class SystemdActivationTest {
    static final String NAME = "com.example.SdActivated";

    private static BusUnderTest start(BusKind kind, Path dir) throws Exception {
        Path conf = ActivationTest.config(dir, Map.of());
        Files.writeString(dir.resolve("services").resolve(NAME + ".service"),
                "[D-BUS Service]\nName=" + NAME + "\nExec=/bin/false\nSystemdService=sd-test.service\n");
        return kind.start(conf, "--systemd-activation");
    }

    private static Message awaitActivationRequest(RawClient systemd) throws Exception {
        Message req = systemd.await(m -> m.type == Message.SIGNAL && "ActivationRequest".equals(m.member), Buses.T, true);
        assertNotNull(req, "systemd got no ActivationRequest");
        assertEquals("org.freedesktop.systemd1.Activator", req.iface);
        assertEquals("/org/freedesktop/DBus", req.path);
        assertEquals("org.freedesktop.systemd1", req.destination);
        assertEquals("org.freedesktop.DBus", req.sender);
        assertEquals("sd-test.service", req.arg(0));
        return req;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void activationRequestThenTheServiceAppears(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            Message features = caller.call(Message.call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.Properties", "Get").body("ss", "org.freedesktop.DBus", "Features"), Buses.T);
            assertTrue(String.valueOf(features.arg(0)).contains("SystemdActivation"), features.toString());
            long serial = caller.send(Message.call(NAME, "/x", "com.example.I", "Ping"));
            awaitActivationRequest(systemd);
            try (RawClient service = RawClient.connectHello(bus.address(), Buses.T)) {
                assertEquals(1L, service.callBus("RequestName", Buses.T, "su", NAME, 4L).arg(0));
                Message call = service.await(m -> m.type == Message.METHOD_CALL && "Ping".equals(m.member), Buses.T, true);
                assertNotNull(call, "the queued call reached the service");
                Message ret = new Message();
                ret.type = Message.METHOD_RETURN;
                ret.flags = Message.FLAG_NO_REPLY_EXPECTED;
                ret.destination = call.sender;
                ret.replySerial = call.serial;
                service.send(ret);
                Message reply = caller.awaitReply(serial, Buses.T);
                assertEquals(Message.METHOD_RETURN, reply.type, reply.toString());
            }
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void activationFailureFromSystemdReachesTheCaller(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            long serial = caller.send(Message.call(NAME, "/x", "com.example.I", "Ping"));
            awaitActivationRequest(systemd);
            Message failure = new Message();
            failure.type = Message.SIGNAL;
            failure.flags = Message.FLAG_NO_REPLY_EXPECTED;
            failure.destination = "org.freedesktop.DBus";
            failure.path = "/org/freedesktop/DBus";
            failure.iface = "org.freedesktop.systemd1.Activator";
            failure.member = "ActivationFailure";
            failure.body("sss", "sd-test.service", "org.freedesktop.systemd1.NoSuchUnit", "Unit sd-test.service not found.");
            systemd.send(failure);
            Message reply = caller.awaitReply(serial, Buses.T);
            assertEquals("org.freedesktop.systemd1.NoSuchUnit", reply.errorName, reply.toString());
            assertEquals("Unit sd-test.service not found.", reply.arg(0));
        }
    }

    private static RawClient monitor(BusUnderTest bus) throws Exception {
        RawClient mon = RawClient.connectHello(bus.address(), Buses.T);
        Message r = MonitorTest.becomeMonitor(mon, java.util.List.of(), 0L);
        assertEquals(Message.METHOD_RETURN, r.type, r.toString());
        return mon;
    }

    /** The first message matching {@code p} not taken yet, then taken (removed from the log). */
    private static Message take(RawClient c, java.util.function.Predicate<Message> p) throws Exception {
        Message m = c.await(p, Buses.T, true);
        assertNotNull(m, "nothing matching arrived");
        c.forget(x -> x == m);
        return m;
    }

    private static Message nextWith(RawClient mon, java.util.function.Predicate<Message> p) throws Exception {
        return take(mon, p);
    }

    private static boolean isRequest(Message m) {
        return "ActivationRequest".equals(m.member);
    }

    /**
     * As upstream test-monitor /monitor/activation: the ActivationRequest is emitted at once and
     * monitors see it before the message that caused it, whether or not systemd is on the bus
     * yet; systemd gets the queued request once it owns org.freedesktop.systemd1.
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void monitorsSeeTheRequestBeforeItsCauseWithOrWithoutSystemd(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient mon = monitor(bus);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            Message sig = new Message();
            sig.type = Message.SIGNAL;
            sig.flags = Message.FLAG_NO_REPLY_EXPECTED;
            sig.destination = NAME;
            sig.path = "/foo";
            sig.iface = "com.example.bar";
            sig.member = "UnicastSignal1";
            caller.send(sig);
            java.util.function.Predicate<Message> relevant = m -> isRequest(m) || (m.member != null && m.member.startsWith("UnicastSignal"));
            Message first = nextWith(mon, relevant);
            assertTrue(isRequest(first), "request first, before systemd joined: " + first);
            assertEquals("org.freedesktop.systemd1", first.destination);
            assertEquals("UnicastSignal1", nextWith(mon, relevant).member);

            try (RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
                assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
                awaitActivationRequest(systemd);
                systemd.forget(SystemdActivationTest::isRequest);
                // systemd present: still the request first.
                try (RawClient other = RawClient.connectHello(bus.address(), Buses.T)) {
                    assertEquals(1L, other.callBus("RequestName", Buses.T, "su", NAME, 4L).arg(0));
                    assertNotNull(other.await(m -> "UnicastSignal1".equals(m.member), Buses.T, true), "handed over");
                    other.callBus("ReleaseName", Buses.T, "s", NAME);
                }
                sig.member = "UnicastSignal2";
                caller.send(sig);
                Message again = nextWith(mon, relevant);
                assertTrue(isRequest(again), "request first, systemd present: " + again);
                assertEquals("UnicastSignal2", nextWith(mon, relevant).member);
                awaitActivationRequest(systemd);
            }
        }
    }

    /**
     * UpdateActivationEnvironment is passed on to systemd as Manager.SetEnvironment(as), from the
     * bus, NO_REPLY_EXPECTED: to org.freedesktop.systemd1 while systemd is not on the bus (it
     * waits for it), to systemd's unique name once it is (upstream test-sd-activation /uae).
     */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void updateActivationEnvironmentIsForwardedToSystemd(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
            Message uae = caller.callBus("UpdateActivationEnvironment", Buses.T, "a{ss}", new java.util.LinkedHashMap<>());
            assertEquals(Message.METHOD_RETURN, uae.type, uae.toString());
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            Message first = take(systemd, m -> "SetEnvironment".equals(m.member));
            assertSetEnvironment(first, "org.freedesktop.systemd1", java.util.List.of());

            java.util.Map<String, String> env = new java.util.LinkedHashMap<>();
            env.put("Key1", "Value1");
            env.put("Key2", "Value2");
            uae = caller.callBus("UpdateActivationEnvironment", Buses.T, "a{ss}", env);
            assertEquals(Message.METHOD_RETURN, uae.type, uae.toString());
            Message second = take(systemd, m -> "SetEnvironment".equals(m.member));
            assertSetEnvironment(second, systemd.uniqueName(), java.util.List.of("Key1=Value1", "Key2=Value2"));
        }
    }

    private static void assertSetEnvironment(Message m, String destination, java.util.List<String> lines) {
        assertEquals(Message.METHOD_CALL, m.type, m.toString());
        assertEquals("org.freedesktop.DBus", m.sender);
        assertEquals(destination, m.destination);
        assertEquals("/org/freedesktop/systemd1", m.path);
        assertEquals("org.freedesktop.systemd1.Manager", m.iface);
        assertEquals("as", m.signature);
        assertTrue((m.flags & Message.FLAG_NO_REPLY_EXPECTED) != 0, "no reply expected");
        assertEquals(lines, m.arg(0));
    }

    /** Without --systemd-activation nothing is forwarded: systemd only sees its own traffic. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void withoutSystemdActivationTheEnvironmentStaysOnTheBus(BusKind kind, @TempDir Path dir) throws Exception {
        Path conf = ActivationTest.config(dir, Map.of());
        try (BusUnderTest bus = kind.start(conf);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            assertEquals(Message.METHOD_RETURN,
                    caller.callBus("UpdateActivationEnvironment", Buses.T, "a{ss}", Map.of("K", "V")).type);
            systemd.sync(Buses.T); // anything the bus queued for systemd before has been read now
            assertTrue(systemd.messages().stream().noneMatch(m -> "SetEnvironment".equals(m.member)),
                    systemd.messages().toString());
        }
    }

    /** With --systemd-activation a call to org.freedesktop.systemd1 (no file) waits for systemd. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void callsToSystemdWaitForItWithoutAServiceFile(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T)) {
            long serial = caller.send(Message.call("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                    "org.freedesktop.systemd1.Manager", "GetDefaultTarget"));
            caller.sync(Buses.T);
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            Message call = systemd.await(m -> "GetDefaultTarget".equals(m.member), Buses.T, true);
            assertNotNull(call, "the call waited for systemd");
            Message ret = new Message();
            ret.type = Message.METHOD_RETURN;
            ret.flags = Message.FLAG_NO_REPLY_EXPECTED;
            ret.destination = call.sender;
            ret.replySerial = call.serial;
            systemd.send(ret);
            assertEquals(Message.METHOD_RETURN, caller.awaitReply(serial, Buses.T).type);
            String listed = String.valueOf(caller.callBus("ListActivatableNames", Buses.T, "").arg(0));
            assertTrue(!listed.contains("org.freedesktop.systemd1"), "not listed without a file: " + listed);
        }
    }

    /** StartServiceByName too: the request it causes is shown before the call itself. */
    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void monitorsSeeTheRequestBeforeTheStartServiceByNameCall(BusKind kind, @TempDir Path dir) throws Exception {
        try (BusUnderTest bus = start(kind, dir);
             RawClient systemd = RawClient.connectHello(bus.address(), Buses.T);
             RawClient mon = monitor(bus);
             RawClient caller = RawClient.connectHello(bus.address(), Buses.T)) {
            assertEquals(1L, systemd.callBus("RequestName", Buses.T, "su", "org.freedesktop.systemd1", 4L).arg(0));
            caller.send(Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, "StartServiceByName")
                    .body("su", NAME, 0L));
            java.util.function.Predicate<Message> relevant = m -> isRequest(m) || "StartServiceByName".equals(m.member);
            assertTrue(isRequest(nextWith(mon, relevant)), "the request first");
            assertEquals("StartServiceByName", nextWith(mon, relevant).member);
            awaitActivationRequest(systemd);
        }
    }
}
