package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Differential;
import org.kdbusbridge.compat.harness.RawClient;

/** Scenario 1: libdbus's dbus-send against the bus driver. */
class DbusSendTest {
    static final String DRIVER = "org.freedesktop.DBus";
    private static final Pattern ERROR = Pattern.compile("(?m)^Error ([A-Za-z0-9_.]+):");
    private static final Pattern DESTINATION = Pattern.compile("destination=(:\\d+\\.\\d+)");

    static Cmd.Result send(BusUnderTest bus, String dest, String path, String member, String... args) {
        return send(bus.address(), dest, path, member, args);
    }

    static Cmd.Result send(String address, String dest, String path, String member, String... args) {
        List<String> argv = new ArrayList<>(List.of("dbus-send", "--bus=" + address, "--print-reply",
                "--dest=" + dest, path, member));
        argv.addAll(List.of(args));
        return Cmd.run(argv, Buses.T);
    }

    static Cmd.Result driver(BusUnderTest bus, String member, String... args) {
        return send(bus, DRIVER, "/org/freedesktop/DBus", member.contains(".") ? member : DRIVER + "." + member, args);
    }

    /** The D-Bus error name dbus-send printed, or "OK" for a method return. */
    static String outcome(Cmd.Result r) {
        Matcher m = ERROR.matcher(r.stderr());
        if (m.find()) {
            assertEquals(1, r.exitCode(), r.describe());
            return m.group(1);
        }
        assertTrue(r.ok() && r.stdout().startsWith("method return"), r.describe());
        return "OK";
    }

    static String ok(Cmd.Result r) {
        assertEquals("OK", outcome(r), r.describe());
        return r.stdout();
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void listNamesContainsDriverAndCaller(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            Cmd.Result r = driver(bus, "ListNames");
            String out = ok(r);
            Matcher d = DESTINATION.matcher(out);
            assertTrue(d.find(), r.describe());
            String self = d.group(1);
            assertTrue(out.contains("string \"org.freedesktop.DBus\""), r.describe());
            assertTrue(out.contains("string \"" + self + "\""), "own unique name " + self + " listed\n" + r.describe());
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void getIdIs32Hex(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            String out = ok(driver(bus, "GetId"));
            assertTrue(Pattern.compile("(?m)^\\s+string \"[0-9a-f]{32}\"$").matcher(out).find(), out);
            // Note: dbus-daemon's GetId is NOT the guid of the listening address; not compared.
            String again = ok(driver(bus, "GetId"));
            assertEquals(out.replaceAll("(?s).*string ", ""), again.replaceAll("(?s).*string ", ""), "GetId is stable");
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void driverOwnsItsName(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            assertTrue(ok(driver(bus, "GetNameOwner", "string:org.freedesktop.DBus"))
                    .contains("string \"org.freedesktop.DBus\""));
            assertTrue(ok(driver(bus, "NameHasOwner", "string:org.freedesktop.DBus")).contains("boolean true"));
            assertTrue(ok(driver(bus, "NameHasOwner", "string:com.example.Nope")).contains("boolean false"));
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void credentialsOfTheDriver(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            String uid = Long.toString(RawClient.uid());
            assertTrue(ok(driver(bus, "GetConnectionUnixUser", "string:org.freedesktop.DBus"))
                    .contains("uint32 " + uid));
            assertTrue(ok(driver(bus, "GetConnectionUnixProcessID", "string:org.freedesktop.DBus"))
                    .contains("uint32 " + bus.pid()), "driver pid is the bus pid " + bus.pid());
            String creds = ok(driver(bus, "GetConnectionCredentials", "string:org.freedesktop.DBus"));
            assertTrue(Pattern.compile("string \"UnixUserID\"\\s+variant\\s+uint32 " + uid).matcher(creds).find(), creds);
            assertTrue(Pattern.compile("string \"ProcessID\"\\s+variant\\s+uint32 " + bus.pid()).matcher(creds).find(), creds);
        }
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void standardInterfacesOfTheDriver(BusKind kind) throws Exception {
        try (BusUnderTest bus = kind.start()) {
            ok(driver(bus, "org.freedesktop.DBus.Peer.Ping"));
            String features = ok(driver(bus, "org.freedesktop.DBus.Properties.Get", "string:org.freedesktop.DBus", "string:Features"));
            assertTrue(features.contains("variant") && features.contains("array ["), features);
            String xml = ok(driver(bus, "org.freedesktop.DBus.Introspectable.Introspect"));
            for (String s : List.of("<interface name=\"org.freedesktop.DBus\">", "<method name=\"Hello\">",
                    "<method name=\"RequestName\">", "<method name=\"GetNameOwner\">", "<signal name=\"NameOwnerChanged\">",
                    "<interface name=\"org.freedesktop.DBus.Introspectable\">")) {
                assertTrue(xml.contains(s), s + " in\n" + xml);
            }
            String act = ok(driver(bus, "ListActivatableNames"));
            assertTrue(act.contains("string \"org.freedesktop.DBus\""), act);
        }
    }

    /** Each error case with the error name dbus-daemon 1.14 returns ("OK" = method return). */
    static Map<String, List<String>> errorCases() {
        Map<String, List<String>> m = new LinkedHashMap<>();
        m.put("GetNameOwner of a missing name", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".GetNameOwner", "string:com.example.Nope"));
        m.put("call to a missing destination", List.of("com.example.Nope", "/com/example/Nope", "com.example.Nope.Foo"));
        m.put("unknown driver method", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".NoSuchMethod"));
        m.put("RequestName with a bad name", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".RequestName", "string:bad", "uint32:0"));
        m.put("RequestName of a unique name", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".RequestName", "string::1.999", "uint32:0"));
        m.put("AddMatch with a bad rule", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".AddMatch", "string:type='nope'"));
        m.put("RemoveMatch of an absent rule", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".RemoveMatch", "string:type='signal'"));
        m.put("StartServiceByName of a missing service", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".StartServiceByName", "string:com.example.Nope", "uint32:0"));
        m.put("GetConnectionUnixUser of a missing name", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".GetConnectionUnixUser", "string:com.example.Nope"));
        m.put("ReleaseName not owned", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".ReleaseName", "string:com.example.Nope"));
        m.put("Properties.Get unknown property", List.of(DRIVER, "/org/freedesktop/DBus", "org.freedesktop.DBus.Properties.Get", "string:org.freedesktop.DBus", "string:Nope"));
        m.put("Hello twice", List.of(DRIVER, "/org/freedesktop/DBus", DRIVER + ".Hello"));
        return m;
    }

    static final Map<String, String> EXPECTED_ON_DBUS_DAEMON = Map.ofEntries(
            Map.entry("GetNameOwner of a missing name", "org.freedesktop.DBus.Error.NameHasNoOwner"),
            Map.entry("call to a missing destination", "org.freedesktop.DBus.Error.ServiceUnknown"),
            Map.entry("unknown driver method", "org.freedesktop.DBus.Error.UnknownMethod"),
            Map.entry("RequestName with a bad name", "org.freedesktop.DBus.Error.InvalidArgs"),
            Map.entry("RequestName of a unique name", "org.freedesktop.DBus.Error.InvalidArgs"),
            Map.entry("AddMatch with a bad rule", "org.freedesktop.DBus.Error.MatchRuleInvalid"),
            Map.entry("RemoveMatch of an absent rule", "org.freedesktop.DBus.Error.MatchRuleNotFound"),
            Map.entry("StartServiceByName of a missing service", "org.freedesktop.DBus.Error.ServiceUnknown"),
            Map.entry("GetConnectionUnixUser of a missing name", "org.freedesktop.DBus.Error.NameHasNoOwner"),
            Map.entry("ReleaseName not owned", "OK"),
            Map.entry("Properties.Get unknown property", "org.freedesktop.DBus.Error.UnknownProperty"),
            Map.entry("Hello twice", "org.freedesktop.DBus.Error.Failed"));

    static Map<String, String> errorOutcomes(BusKind kind) throws Exception {
        Map<String, String> got = new LinkedHashMap<>();
        try (BusUnderTest bus = kind.start()) {
            for (Map.Entry<String, List<String>> e : errorCases().entrySet()) {
                List<String> a = e.getValue();
                got.put(e.getKey(), outcome(send(bus, a.get(0), a.get(1), a.get(2),
                        a.subList(3, a.size()).toArray(new String[0]))));
            }
        }
        return got;
    }

    @ParameterizedTest
    @MethodSource("org.kdbusbridge.compat.harness.Buses#buses")
    void errorNamesAreThoseOfDbusDaemon(BusKind kind) throws Exception {
        Map<String, String> got = errorOutcomes(kind);
        for (String k : errorCases().keySet()) {
            assertEquals(EXPECTED_ON_DBUS_DAEMON.get(k), got.get(k), kind + ": " + k);
        }
    }

    /** Every error case, as seen on the bus (error names, texts, order), is the same on both buses. */
    @Test
    void errorNamesEqualBetweenBuses() throws Exception {
        Differential.assertSameOnBothBuses(address -> {
            for (List<String> a : errorCases().values()) {
                send(address, a.get(0), a.get(1), a.get(2), a.subList(3, a.size()).toArray(new String[0]));
            }
        });
    }
}
