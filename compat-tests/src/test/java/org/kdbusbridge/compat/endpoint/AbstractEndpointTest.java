package org.kdbusbridge.compat.endpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Cmd;
import org.kdbusbridge.compat.harness.Message;

/**
 * An endpoint on an abstract socket (issue 18: the vendor interface adds endpoints by "a socket
 * path or abstract name"), end to end with real processes: {@code kdbus-bridge endpoint add
 * unix:abstract=NAME --filter --talk=...} binds it and prints {@code unix:abstract=NAME,guid=...};
 * gdbus and dbus-send (--bus=, which says Hello; --address= does not) reach the bus through it, under the endpoint's filter (the TALK name is
 * callable, a name without a rule is invisible and uncallable); the same name again is refused
 * (InvalidArgs while it is ours, AddressInUse while another process holds it); after RemoveEndpoint
 * a connect is refused (ECONNREFUSED: no file to unlink, the name is simply unbound) and the name
 * can be bound again. Every wait is a process exit or a line with a deadline.
 */
@Timeout(value = 180, unit = TimeUnit.SECONDS)
class AbstractEndpointTest {
    private static final Path ROOT = Path.of(System.getProperty("kdbus.repo.root", "..")).toAbsolutePath().normalize();
    private static final String BRIDGE = ROOT.resolve("bin/kdbus-bridge").toString();
    private static final Map<String, String> NO_CDS = Map.of("KDBUS_BRIDGE_CDS", "0");
    private static final Duration T = Duration.ofSeconds(60);

    private static Cmd.Result dbusSend(String address, String dest, String path, String method, String... args) {
        List<String> argv = new java.util.ArrayList<>(List.of("dbus-send", "--bus=" + address, "--print-reply",
                "--dest=" + dest, path, method));
        argv.addAll(List.of(args));
        return Cmd.run(argv, T);
    }

    private static Cmd.Result nameHasOwner(String address, String name) {
        return dbusSend(address, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner",
                "string:" + name);
    }

    private static Cmd.Result gdbusCall(String address, String dest, String path, String method) {
        return Cmd.run(List.of("gdbus", "call", "--address", address, "--dest", dest, "--object-path", path, "--method",
                method), T);
    }

    /** {@code endpoint add} in the foreground; returns it once it printed "ID ADDRESS". */
    private static Background add(String busAddress, String where, String... options) {
        List<String> argv = new java.util.ArrayList<>(List.of(BRIDGE, "endpoint", "add", "--address=" + busAddress,
                "--app-id=org.example.App", where));
        argv.addAll(List.of(options));
        return Background.start(argv, NO_CDS);
    }

    @Test
    void anAbstractEndpointFiltersRealClientsRefusesItsNameTwiceAndFreesItOnRemove() throws Exception {
        String name = "kbb-compat-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        String abstractAddress = "unix:abstract=" + name;
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             OutsidePeer talk = OutsidePeer.service(bus.address(), "talk", "org.example.Talk");
             OutsidePeer hidden = OutsidePeer.service(bus.address(), "hidden", "org.example.Hidden");
             Background endpoint = add(bus.address(), abstractAddress, "--filter", "--talk=org.example.Talk")) {
            String line = endpoint.stdout().awaitLine(l -> l.contains(" unix:abstract="), T);
            assertNotNull(line, endpoint.describe());
            String id = line.substring(0, line.indexOf(' '));
            String address = line.substring(line.indexOf(' ') + 1);
            assertTrue(address.startsWith(abstractAddress + ",guid="), line);

            // The TALK name answers a call from gdbus through the abstract socket.
            Cmd.Result called = gdbusCall(abstractAddress, "org.example.Talk", "/org/example/Obj",
                    "org.example.Iface.Hello");
            assertTrue(called.ok() && called.stdout().contains("talk:org.example.Iface.Hello@/org/example/Obj"),
                    called.describe());
            // The name without a rule: there outside, invisible and uncallable inside.
            Cmd.Result outside = nameHasOwner(bus.address(), "org.example.Hidden");
            assertTrue(outside.ok() && outside.stdout().contains("boolean true"), outside.describe());
            Cmd.Result inside = nameHasOwner(abstractAddress, "org.example.Hidden");
            assertTrue(inside.ok() && inside.stdout().contains("boolean false"), inside.describe());
            Cmd.Result seesTalk = nameHasOwner(abstractAddress, "org.example.Talk");
            assertTrue(seesTalk.ok() && seesTalk.stdout().contains("boolean true"), seesTalk.describe());
            Cmd.Result refused = gdbusCall(abstractAddress, "org.example.Hidden", "/org/example/Obj",
                    "org.example.Iface.Hello");
            assertFalse(refused.ok(), refused.describe());
            // The refusal is the bus's answer, so the call was never routed: the hidden service got none.
            assertTrue(hidden.received(m -> m.type == Message.METHOD_CALL && "Hello".equals(m.member)).isEmpty());
            assertEquals(1, talk.received(m -> m.type == Message.METHOD_CALL && "Hello".equals(m.member)).size());

            // The same name again, while it is ours: InvalidArgs, nothing bound; the command says so and exits 1.
            Cmd.Result twice = Cmd.run(List.of(BRIDGE, "endpoint", "add", "--address=" + bus.address(), abstractAddress),
                    NO_CDS, T);
            assertEquals(1, twice.exitCode(), twice.describe());
            assertTrue(twice.stderr().contains("Abstract socket name '" + name + "' is in use by this bus"),
                    twice.describe());

            // A name another process holds: bind's EADDRINUSE, AddressInUse as libdbus names it.
            String foreign = name + "-foreign";
            try (Background holder = Background.start(List.of("python3", "-c", "import socket, sys, time\n"
                    + "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                    + "s.bind('\\0' + sys.argv[1]); s.listen(1)\n"
                    + "print('bound', flush=True)\n"
                    + "sys.stdin.read()\n", foreign), Map.of())) {
                assertNotNull(holder.stdout().awaitLine("bound"::equals, T), holder.describe());
                Cmd.Result taken = Cmd.run(List.of(BRIDGE, "endpoint", "add", "--address=" + bus.address(),
                        "unix:abstract=" + foreign), NO_CDS, T);
                assertEquals(1, taken.exitCode(), taken.describe());
                assertTrue(taken.stderr().contains("org.freedesktop.DBus.Error.AddressInUse")
                        && taken.stderr().contains("Address already in use"), taken.describe());
            }

            Cmd.Result removed = Cmd.run(List.of(BRIDGE, "endpoint", "remove", "--address=" + bus.address(), id), NO_CDS,
                    T);
            assertTrue(removed.ok(), removed.describe());
            // Gone by the time RemoveEndpoint answered: the kernel refuses the connect.
            Cmd.Result gone = nameHasOwner(abstractAddress, "org.example.Talk");
            assertFalse(gone.ok(), gone.describe());
            assertTrue(gone.stderr().contains("Connection refused"), gone.describe());
            Cmd.Result errno = Cmd.run(List.of("python3", "-c", "import errno, socket, sys\n"
                    + "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
                    + "try:\n    s.connect('\\0' + sys.argv[1]); print('connected')\n"
                    + "except OSError as e:\n    print(errno.errorcode[e.errno])\n", name), T);
            assertEquals("ECONNREFUSED", errno.stdout().trim(), errno.describe());

            // The name is free: it can be bound again (a new id), and serves again.
            try (Background again = add(bus.address(), abstractAddress)) {
                String second = again.stdout().awaitLine(l -> l.contains(" unix:abstract="), T);
                assertNotNull(second, again.describe());
                assertFalse(second.startsWith(id + " "), second);
                Cmd.Result getId = gdbusCall(abstractAddress, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                        "org.freedesktop.DBus.GetId");
                assertTrue(getId.ok(), getId.describe());
            }
        }
    }
}
