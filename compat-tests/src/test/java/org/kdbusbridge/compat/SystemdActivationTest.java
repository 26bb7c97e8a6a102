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
}
