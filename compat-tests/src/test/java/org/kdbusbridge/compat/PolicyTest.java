package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * The busconfig policy with real uids: a system-bus style config, clients run as three
 * throw-away system users ({@code runuser}), each rule kind shown denied and allowed, on
 * dbus-daemon and on us, with the same error names and (peer details normalised) texts.
 * Needs root (to create the users and switch to them); skipped otherwise.
 */
class PolicyTest {
    private static final String SERVICE_USER = "kdbustest1";
    private static final String CALLER = "kdbustest2";
    private static final String STRANGER = "kdbustest3";
    private static final String PYTHON = System.getProperty("compat.python", "/usr/bin/python3");

    /** dbus-python: tries to own com.example.B (not allowed) and com.example.A, then serves /a. */
    private static final String SERVICE = String.join("\n",
            "import sys, dbus, dbus.service, dbus.mainloop.glib",
            "from gi.repository import GLib",
            "dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)",
            "bus = dbus.bus.BusConnection(sys.argv[1])",
            "class O(dbus.service.Object):",
            "    @dbus.service.method('com.example.A', in_signature='', out_signature='s')",
            "    def Ping(self): return 'pong'",
            "    @dbus.service.method('com.example.A', in_signature='', out_signature='s')",
            "    def Forbidden(self): return 'reached'",
            "    @dbus.service.method('com.example.A', in_signature='', out_signature='s')",
            "    def NotForMe(self): return 'reached'",
            "O(bus, '/a')",
            "try:",
            "    print('own B', bus.request_name('com.example.B'), flush=True)",
            "except dbus.DBusException as e:",
            "    print('own B', e.get_dbus_name(), e.get_dbus_message(), flush=True)",
            "print('own A', bus.request_name('com.example.A'), flush=True)",
            "GLib.MainLoop().run()",
            "");

    @BeforeAll
    static void users() {
        Assumptions.assumeTrue(RawClient.uid() == 0, "needs root: creates users and runs clients as them (runuser)");
        Assumptions.assumeTrue(Files.isExecutable(Path.of(PYTHON)), "no " + PYTHON);
        for (String u : List.of(SERVICE_USER, CALLER, STRANGER)) {
            if (!Cmd.run(List.of("getent", "passwd", u), Buses.T).ok()) {
                Cmd.Result r = Cmd.run(List.of("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", u), Buses.T);
                Assumptions.assumeTrue(r.ok(), "cannot create user " + u + ":\n" + r.describe());
            }
        }
    }

    private static String config(Path dir) {
        String system = String.join("\n",
                "<allow user=\"*\"/>",
                "<deny own=\"*\"/>",
                "<deny send_type=\"method_call\"/>",
                "<allow send_type=\"signal\"/>",
                "<allow send_requested_reply=\"true\" send_type=\"method_return\"/>",
                "<allow send_requested_reply=\"true\" send_type=\"error\"/>",
                "<allow receive_type=\"method_call\"/>",
                "<allow receive_type=\"method_return\"/>",
                "<allow receive_type=\"error\"/>",
                "<allow receive_type=\"signal\"/>",
                "<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>",
                "<allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>",
                "<deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\""
                        + " send_member=\"UpdateActivationEnvironment\"/>");
        return "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                + " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                + "<busconfig>\n<type>system</type>\n"
                + "<listen>unix:path=" + dir.resolve("bus") + "</listen>\n"
                + "<auth>EXTERNAL</auth>\n"
                + "<servicedir>" + dir.resolve("services") + "</servicedir>\n"
                + "<policy context=\"default\">\n" + system + "\n</policy>\n"
                + "<policy user=\"" + SERVICE_USER + "\">\n"
                + "  <allow own=\"com.example.A\"/>\n"
                + "  <deny receive_interface=\"com.example.A\" receive_member=\"NotForMe\"/>\n"
                + "</policy>\n"
                + "<policy user=\"" + CALLER + "\">\n"
                + "  <allow send_destination=\"com.example.A\" send_interface=\"com.example.A\"/>\n"
                + "  <deny send_destination=\"com.example.A\" send_interface=\"com.example.A\" send_member=\"Forbidden\"/>\n"
                + "  <allow send_destination=\"com.example.Act\"/>\n"
                + "</policy>\n"
                + "<policy user=\"" + STRANGER + "\">\n"
                + "  <deny send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\""
                + " send_member=\"GetId\"/>\n"
                + "</policy>\n"
                + "</busconfig>\n";
    }

    /** dbus-send as {@code user}: "ok" or "ERROR.NAME: text" with the peer details normalised. */
    private static String send(String address, String user, String dest, String path, String method) {
        Cmd.Result r = Cmd.run(List.of("runuser", "-u", user, "--", "dbus-send", "--bus=" + address, "--print-reply",
                "--dest=" + dest, path, method), Buses.T);
        if (r.ok()) {
            return "ok";
        }
        String err = r.stderr().strip();
        assertTrue(err.startsWith("Error "), r.describe());
        return normalise(err.substring("Error ".length()));
    }

    static String normalise(String s) {
        return s.replaceAll("\\(uid=\\d+ pid=\\d+ comm=\"[^\"]*\"\\)", "(<peer>)").replaceAll(":1\\.\\d+", ":1.N");
    }

    private static Map<String, String> scenario(BusKind kind, Path base) throws Exception {
        Path dir = Files.createTempDirectory(base, kind.label() + "-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createDirectories(dir.resolve("services"));
        Path marker = dir.resolve("started");
        Files.writeString(dir.resolve("services/com.example.Act.service"), "[D-BUS Service]\nName=com.example.Act\n"
                + "Exec=/bin/sh -c 'echo started > " + marker + "; exit 3'\n");
        Path script = dir.resolve("service.py");
        Files.writeString(script, SERVICE);
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rw-r--r--"));
        Path config = dir.resolve("system.conf");
        Files.writeString(config, config(dir));
        Map<String, String> out = new LinkedHashMap<>();
        try (BusUnderTest bus = kind.start(config);
             Background service = Background.start(List.of("runuser", "-u", SERVICE_USER, "--", PYTHON,
                     script.toString(), bus.address()), Map.of())) {
            String ownB = service.stdout().awaitLine(l -> l.startsWith("own B"), Buses.T);
            String ownA = service.stdout().awaitLine(l -> l.startsWith("own A"), Buses.T);
            assertNotNull(ownA, service.describe());
            out.put("own not allowed", normalise(ownB));
            out.put("own allowed", ownA);
            String a = bus.address();
            out.put("allowed call", send(a, CALLER, "com.example.A", "/a", "com.example.A.Ping"));
            out.put("deny send_member", send(a, CALLER, "com.example.A", "/a", "com.example.A.Forbidden"));
            out.put("deny receive_member", send(a, CALLER, "com.example.A", "/a", "com.example.A.NotForMe"));
            out.put("no send rule", send(a, STRANGER, "com.example.A", "/a", "com.example.A.Ping"));
            out.put("driver allowed", send(a, CALLER, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.GetId").equals("ok") ? "ok" : "denied");
            out.put("driver denied", send(a, STRANGER, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.GetId"));
            out.put("activation denied", send(a, STRANGER, "com.example.Act", "/", "com.example.Act.Go"));
            out.put("not started", Files.exists(marker) ? "started" : "not started");
            String spawned = send(a, CALLER, "com.example.Act", "/", "com.example.Act.Go");
            out.put("activation allowed", spawned.substring(0, spawned.indexOf(':')));
            out.put("started", Files.exists(marker) ? "started" : "not started");
            assertTrue(service.process().isAlive(), service.describe());
        }
        return out;
    }

    @Test
    void everyRuleKindIsEnforcedLikeDbusDaemon(@TempDir Path base) throws Exception {
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwxr-xr-x"));
        Map<BusKind, Map<String, String>> results = new LinkedHashMap<>();
        for (BusKind kind : BusKind.selected()) {
            results.put(kind, scenario(kind, base));
        }
        String denied = "org.freedesktop.DBus.Error.AccessDenied: ";
        for (Map.Entry<BusKind, Map<String, String>> e : results.entrySet()) {
            Map<String, String> r = e.getValue();
            String where = e.getKey() + ": " + r;
            assertEquals("own B org.freedesktop.DBus.Error.AccessDenied Connection \":1.N\" is not allowed to own the"
                    + " service \"com.example.B\" due to security policies in the configuration file",
                    r.get("own not allowed"), where);
            assertEquals("own A 1", r.get("own allowed"), where);
            assertEquals("ok", r.get("allowed call"), where);
            assertEquals(denied + "Rejected send message, 3 matched rules; type=\"method_call\", sender=\":1.N\" (<peer>)"
                    + " interface=\"com.example.A\" member=\"Forbidden\" error name=\"(unset)\" requested_reply=\"0\""
                    + " destination=\"com.example.A\" (<peer>)", r.get("deny send_member"), where);
            assertTrue(r.get("deny receive_member").startsWith(denied + "Rejected receive message, "), where);
            assertTrue(r.get("no send rule").startsWith(denied + "Rejected send message, 1 matched rules; "), where);
            assertEquals("ok", r.get("driver allowed"), where);
            assertTrue(r.get("driver denied").startsWith(denied + "Rejected send message, "), where);
            assertTrue(r.get("driver denied").endsWith("destination=\"org.freedesktop.DBus\" (bus)"), where);
            assertTrue(r.get("activation denied").endsWith("destination=\"com.example.Act\" (bus)"), where);
            assertEquals("not started", r.get("not started"), where);
            assertEquals("org.freedesktop.DBus.Error.Spawn.ChildExited", r.get("activation allowed"), where);
            assertEquals("started", r.get("started"), where);
        }
        if (results.size() == 2) {
            List<Map<String, String>> both = new ArrayList<>(results.values());
            assertEquals(both.get(0), both.get(1), "dbus-daemon and kdbus-bridge differ");
        }
    }
}
