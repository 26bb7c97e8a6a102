package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.bridge.draw.SequenceModel;
import org.kdbusbridge.bridge.migration.CaptureReader;
import org.kdbusbridge.bridge.protocol.WireFormat;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * {@code kdbus-bridge draw} on the capture of a real session: our bus with --kdbus-capture,
 * a dbus-python service owning a well-known name, gdbus calling it (answered, and failing with
 * the service's own error), a call to a name nobody owns, a dbus-send broadcast signal, and a
 * gdbus call that auto-starts ActivationTest's service. The
 * page is then loaded in headless Chromium: the DOM its script built must hold a column per
 * peer, the call joined to its reply, the errors and the signal; a screenshot must be written.
 * And the foreign formats (dbus-monitor --pcap, busctl capture) drawn from a session on our bus.
 */
class DrawTest {
    static final String CHROMIUM = "/usr/bin/chromium";
    static final String SVC = "com.example.DrawSvc";
    static final String IFACE = "com.example.Draw";
    static final String BROKEN = "com.example.Draw.Error.Broken";
    static final Duration BROWSER_T = Duration.ofSeconds(60);

    static final String SERVICE_PY = """
            import sys
            import dbus, dbus.service, dbus.mainloop.glib
            from gi.repository import GLib
            dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
            bus = dbus.bus.BusConnection(sys.argv[1])
            class Broken(dbus.DBusException):
                _dbus_error_name = '%s'
            class Svc(dbus.service.Object):
                @dbus.service.method('%s', in_signature='s', out_signature='s')
                def Ping(self, s):
                    return 'pong ' + s
                @dbus.service.method('%s', in_signature='', out_signature='')
                def Fail(self):
                    raise Broken('it broke')
            name = dbus.service.BusName('%s', bus)
            Svc(bus, '/draw')
            print('ready', bus.get_unique_name(), flush=True)
            GLib.MainLoop().run()
            """.formatted(BROKEN, IFACE, IFACE, SVC);

    @Test
    void drawsARealSessionAndChromiumRendersIt(@TempDir Path dir) throws Exception {
        assertTrue(Files.isExecutable(Path.of(CHROMIUM)), CHROMIUM + " is not installed: this test renders the page in"
                + " headless Chromium (.ci/run installs it: apt-get install chromium)");
        Path capture = dir.resolve("bus.pcapng");
        Path script = dir.resolve("draw_service.py");
        Files.writeString(script, SERVICE_PY);
        String service;
        long[] activated = {-1};
        Path conf = ActivationTest.config(dir, Map.of());
        ActivationTest.service(dir, ActivationTest.NAME, ActivationTest.idleService(dir, "byebye", 60_000));
        try {
            service = runSession(dir, conf, capture, script, activated);
        } finally {
            if (activated[0] > 0) ProcessHandle.of(activated[0]).ifPresent(ProcessHandle::destroy);
        }
        drawAndRender(dir, capture, service);
    }

    /** The session on our bus with the capture on; returns the dbus-python service's unique name. */
    private static String runSession(Path dir, Path conf, Path capture, Path script, long[] activated) throws Exception {
        String service;
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--config-file=" + conf,
                "--nofork", "--print-address", "--kdbus-capture=" + capture), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            try (Background py = Background.start(List.of(DbusPythonTest.PYTHON, script.toString(), address), null)) {
                String ready = py.stdout().awaitLine(l -> l.startsWith("ready :"), Buses.T);
                assertNotNull(ready, py.describe());
                service = ready.substring(6).trim();
                Cmd.Result ping = Cmd.run(gdbus(address, SVC, "Ping", "hello"), Buses.T);
                assertTrue(ping.ok() && ping.stdout().contains("pong hello"), ping.describe());
                Cmd.Result fail = Cmd.run(gdbus(address, SVC, "Fail"), Buses.T);
                assertTrue(!fail.ok() && fail.stderr().contains(BROKEN), fail.describe());
                Cmd.Result nobody = Cmd.run(gdbus(address, "com.example.Nobody", "Ping", "x"), Buses.T);
                assertTrue(!nobody.ok() && nobody.stderr().contains("ServiceUnknown"), nobody.describe());
                Cmd.Result sig = Cmd.run(List.of("dbus-send", "--bus=" + address, "--type=signal", "/draw",
                        IFACE + ".Tick", "string:tock"), Buses.T);
                assertTrue(sig.ok(), sig.describe());
                Cmd.Result echo = Cmd.run(List.of("gdbus", "call", "-a", address, "-d", ActivationTest.NAME, "-o",
                        "/com/example/IdleEcho", "-m", "com.example.IdleEcho.Echo", "42"), Buses.T);
                // The activated service outlives the bus: learn its pid first, to stop it at the end.
                Cmd.Result pid = Cmd.run(List.of("gdbus", "call", "-a", address, "-d", "org.freedesktop.DBus", "-o",
                        "/org/freedesktop/DBus", "-m", "org.freedesktop.DBus.GetConnectionUnixProcessID",
                        ActivationTest.NAME), Buses.T);
                Matcher n = Pattern.compile("uint32 (\\d+)").matcher(pid.stdout());
                assertTrue(n.find(), pid.describe() + "\n" + echo.describe());
                activated[0] = Long.parseLong(n.group(1));
                assertTrue(echo.ok() && echo.stdout().contains("42"), "gdbus auto-started the service\n" + echo.describe());
            }
            Cmd.Result kill = Cmd.run(List.of("kill", "-TERM", String.valueOf(bus.process().pid())), Buses.T);
            assertTrue(kill.ok(), kill.describe());
            assertTrue(bus.process().waitFor(Buses.T.toSeconds(), TimeUnit.SECONDS), bus.describe());
            assertNotNull(bus.stderr().awaitLine(l -> l.contains("Capture to " + capture + " closed"), Buses.T),
                    bus.describe());
        }
        return service;
    }

    private static void drawAndRender(Path dir, Path capture, String service) throws Exception {
        Path page = dir.resolve("page.html");
        Cmd.Result draw = Cmd.run(List.of(DropInTest.BIN + "/kdbus-bridge", "draw", capture.toString(), "-o",
                page.toString()), Buses.T);
        assertTrue(draw.ok() && Files.size(page) > 0, draw.describe());

        Cmd.Result dump = Cmd.run(chromium(dir, "--dump-dom", page), Map.of("HOME", dir.toString()), BROWSER_T);
        assertTrue(dump.ok(), dump.describe());
        String dom = dump.stdout();
        String why = "DOM after the page's script ran:\n" + dom;
        assertTrue(dom.contains("data-drawn=\"true\""), why);
        // a column per peer: the driver, the service (labelled with its well-known name), the callers
        assertTrue(dom.contains("<g class=\"peer\" data-peer=\"org.freedesktop.DBus\""), why);
        assertTrue(dom.contains("<g class=\"peer\" data-peer=\"" + service + "\""), why);
        Matcher label = Pattern.compile("<g class=\"peer\" data-peer=\"" + Pattern.quote(service)
                + "\".*?</g>", Pattern.DOTALL).matcher(dom);
        assertTrue(label.find() && label.group().contains(">" + SVC + "<"), "the service's column names " + SVC + "\n" + why);
        assertTrue(count(dom, "<g class=\"peer\"") >= 4, why);
        // the Ping call goes to the service's column and is joined to its reply
        Element ping = element(dom, "msg call", "data-member=\"Ping\"", "data-to=\"" + service + "\"");
        assertNotNull(ping, why);
        String reply = ping.attr("data-reply");
        assertNotNull(reply, "the call is joined to a reply\n" + why);
        Element ret = element(dom, "msg reply", "data-index=\"" + reply + "\"");
        assertNotNull(ret, why);
        assertEquals(ping.attr("data-index"), ret.attr("data-reply-of"), why);
        assertEquals(service, ret.attr("data-from"), why);
        // the service's error, marked, joined to the Fail call; the driver's ServiceUnknown
        Element fail = element(dom, "msg call", "data-member=\"Fail\"");
        assertNotNull(fail, why);
        Element err = element(dom, "msg error", "data-error-name=\"" + BROKEN + "\"");
        assertNotNull(err, why);
        assertEquals(fail.attr("data-index"), err.attr("data-reply-of"), why);
        assertTrue(err.text().contains(">" + BROKEN + "<"), "the error's name is drawn\n" + why);
        assertNotNull(element(dom, "msg error", "data-error-name=\"org.freedesktop.DBus.Error.ServiceUnknown\""), why);
        // activation: the call went out before the service existed; it is drawn to the column of
        // the unique name that answered, and that column is labelled with the activated name
        Element echo = element(dom, "msg call", "data-member=\"Echo\"");
        assertNotNull(echo, why);
        Element echoed = element(dom, "msg reply", "data-reply-of=\"" + echo.attr("data-index") + "\"");
        assertNotNull(echoed, why);
        assertEquals(echoed.attr("data-from"), echo.attr("data-to"), why);
        Matcher echoColumn = Pattern.compile("<g class=\"peer\" data-peer=\"" + Pattern.quote(echo.attr("data-to"))
                + "\".*?</g>", Pattern.DOTALL).matcher(dom);
        assertTrue(echoColumn.find() && echoColumn.group().contains(">" + ActivationTest.NAME + "<"), why);
        // the broadcast signal
        assertNotNull(element(dom, "msg signal", "data-member=\"Tick\"", "data-broadcast=\"true\""), why);
        assertTrue(dom.contains("class=\"bcast\""), why);

        // Filtered by interface, with the Ping call selected (what a click does): its header and body are shown,
        // the driver's signals are filtered out.
        String url = page.toUri() + "#iface=" + IFACE + "&msg=" + ping.attr("data-index");
        Cmd.Result selected = Cmd.run(chromium(dir, "--dump-dom", url), Map.of("HOME", dir.toString()), BROWSER_T);
        assertTrue(selected.ok(), selected.describe());
        String sdom = selected.stdout();
        String swhy = "DOM filtered and selected:\n" + sdom;
        Matcher fields = Pattern.compile("<table id=\"detail-fields\">.*?</table>", Pattern.DOTALL).matcher(sdom);
        assertTrue(fields.find(), swhy);
        for (String f : List.of("<td>Ping</td>", "<td>" + IFACE + "</td>", "<td>" + SVC + "</td>", "<td>/draw</td>",
                "<td>s</td>", "answered by")) {
            assertTrue(fields.group().contains(f), f + " in the header fields\n" + swhy);
        }
        assertTrue(sdom.contains("<pre id=\"detail-body\">'hello'</pre>"), swhy);
        assertTrue(sdom.contains("data-member=\"Ping\""), swhy);
        assertTrue(!sdom.contains("data-member=\"NameOwnerChanged\""), "the interface filter hides the driver's signals\n" + swhy);

        Path png = dir.resolve("page.png");
        Cmd.Result shot = Cmd.run(chromium(dir, "--screenshot=" + png, page), Map.of("HOME", dir.toString()), BROWSER_T);
        assertTrue(Files.isRegularFile(png), shot.describe());
        byte[] head = Files.readAllBytes(png);
        assertTrue(head.length > 10_000, "screenshot of " + head.length + " bytes\n" + shot.describe());
        assertEquals((byte) 0x89, head[0]);
        assertEquals("PNG", new String(head, 1, 3, java.nio.charset.StandardCharsets.US_ASCII));
    }

    /**
     * The two foreign formats: {@code dbus-monitor --pcap} (classic pcap) and {@code busctl capture}
     * (pcapng) recording the same session on our bus; both drawn by the command, and their model
     * joins the gdbus call to its reply and the failed call to its ServiceUnknown error.
     */
    @Test
    void drawsDbusMonitorPcapAndBusctlCaptureFiles(@TempDir Path dir) throws Exception {
        Path pcap = dir.resolve("monitor.pcap");
        Path pcapng = dir.resolve("busctl.pcapng");
        try (Background bus = Background.start(List.of(DropInTest.BIN + "/kdbus-bridge", "--session", "--nofork",
                "--print-address", "--address=unix:path=" + dir.resolve("bus")), null)) {
            String address = bus.stdout().awaitLine(l -> l.startsWith("unix:"), Buses.T);
            assertNotNull(address, bus.describe());
            Process monitor = startTo(List.of("dbus-monitor", "--address", address, "--pcap"), pcap);
            Process busctl = startTo(List.of("busctl", "--address=" + address, "capture"), pcapng);
            try {
                // both monitors attached: each has recorded a marker signal
                awaitInBoth(address, "Start", pcap, pcapng);
                Cmd.Result owner = Cmd.run(List.of("gdbus", "call", "-a", address, "-d", "org.freedesktop.DBus", "-o",
                        "/org/freedesktop/DBus", "-m", "org.freedesktop.DBus.GetNameOwner", "org.freedesktop.DBus"),
                        Buses.T);
                assertTrue(owner.ok(), owner.describe());
                Cmd.Result nobody = Cmd.run(gdbus(address, "com.example.Nobody", "Ping", "x"), Buses.T);
                assertTrue(!nobody.ok() && nobody.stderr().contains("ServiceUnknown"), nobody.describe());
                awaitInBoth(address, "End", pcap, pcapng);
            } finally {
                monitor.destroy();
                busctl.destroy();
                monitor.waitFor(10, TimeUnit.SECONDS);
                busctl.waitFor(10, TimeUnit.SECONDS);
            }
        }
        for (Path file : List.of(pcap, pcapng)) {
            Path page = dir.resolve(file.getFileName() + ".html");
            Cmd.Result draw = Cmd.run(List.of(DropInTest.BIN + "/kdbus-bridge", "draw", file.toString(), "-o",
                    page.toString()), Buses.T);
            String format = file == pcap ? " from pcap " : " from pcapng ";
            assertTrue(draw.ok() && draw.stdout().contains(format) && Files.size(page) > 0, draw.describe());
            String html = Files.readString(page);
            assertTrue(html.contains("\"member\":\"GetNameOwner\"") && html.contains("\"member\":\"MarkerEnd\""),
                    file + "\n" + draw.describe());

            CaptureReader.Capture cap = CaptureReader.read(file);
            SequenceModel m = SequenceModel.build(cap.messages(), null);
            String what = file + ": " + m.messages.stream().map(x -> x.index + " " + x.type + " " + x.sender + ">"
                    + x.destination + " " + x.member + " " + x.errorName + " replyOf=" + x.replyOf).toList();
            SequenceModel.Msg call = m.messages.stream().filter(x -> "GetNameOwner".equals(x.member)).findFirst()
                    .orElseThrow(() -> new AssertionError(what));
            assertTrue(call.reply >= 0, what);
            SequenceModel.Msg ret = m.messages.get(call.reply);
            assertEquals(WireFormat.METHOD_RETURN, ret.type, what);
            assertEquals("'org.freedesktop.DBus'", ret.body, what);
            assertEquals(call.from, ret.to, what);
            SequenceModel.Msg ping = m.messages.stream().filter(x -> "Ping".equals(x.member)).findFirst()
                    .orElseThrow(() -> new AssertionError(what));
            assertTrue(ping.reply >= 0, what);
            assertEquals("org.freedesktop.DBus.Error.ServiceUnknown", m.messages.get(ping.reply).errorName, what);
            assertEquals("com.example.Nobody", m.peers.get(ping.to).id, what);
            SequenceModel.Msg tick = m.messages.stream().filter(x -> "MarkerStart".equals(x.member)).findFirst()
                    .orElseThrow(() -> new AssertionError(what));
            assertEquals(SequenceModel.BROADCAST, tick.to, what);
        }
    }

    private static Process startTo(List<String> argv, Path out) throws java.io.IOException {
        ProcessBuilder pb = new ProcessBuilder(argv).redirectOutput(out.toFile())
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        Cmd.sanitize(pb.environment());
        return pb.start();
    }

    /** Sends signal Marker{name} until both files hold it (the monitors flush each message). */
    private static void awaitInBoth(String address, String name, Path a, Path b) throws Exception {
        byte[] member = ("Marker" + name).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        long deadline = System.nanoTime() + Buses.T.toNanos();
        while (System.nanoTime() < deadline) {
            Cmd.Result sig = Cmd.run(List.of("dbus-send", "--bus=" + address, "--type=signal", "/draw",
                    IFACE + ".Marker" + name), Buses.T);
            assertTrue(sig.ok(), sig.describe());
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
            while (System.nanoTime() < until) {
                if (contains(Files.readAllBytes(a), member) && contains(Files.readAllBytes(b), member)) return;
                TimeUnit.MILLISECONDS.sleep(20); // the monitors write as soon as the bus delivers
            }
        }
        throw new AssertionError("Marker" + name + " not recorded by both monitors: " + Files.size(a) + " and "
                + Files.size(b) + " bytes");
    }

    private static boolean contains(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) continue outer;
            }
            return true;
        }
        return false;
    }

    static List<String> gdbus(String address, String dest, String method, String... args) {
        List<String> argv = new ArrayList<>(List.of("gdbus", "call", "-a", address, "-d", dest, "-o", "/draw",
                "-m", IFACE + "." + method));
        argv.addAll(List.of(args));
        return argv;
    }

    static List<String> chromium(Path dir, String what, Path page) {
        return chromium(dir, what, page.toUri().toString());
    }

    static List<String> chromium(Path dir, String what, String url) {
        return List.of(CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--user-data-dir=" + dir.resolve("chromium-profile"), "--window-size=1400,1000", what, url);
    }

    /** A message group's opening tag and its content, up to its closing tag (groups do not nest). */
    record Element(String tag, String text) {
        String attr(String name) {
            Matcher m = Pattern.compile(" " + Pattern.quote(name) + "=\"([^\"]*)\"").matcher(tag);
            return m.find() ? m.group(1) : null;
        }
    }

    static Element element(String dom, String cls, String... attrs) {
        Matcher m = Pattern.compile("<g class=\"" + Pattern.quote(cls) + "\"[^>]*>(.*?)</g>", Pattern.DOTALL).matcher(dom);
        while (m.find()) {
            String tag = m.group().substring(0, m.group().indexOf('>') + 1);
            boolean all = true;
            for (String a : attrs) all &= tag.contains(" " + a);
            if (all) return new Element(tag, m.group());
        }
        return null;
    }

    static int count(String s, String what) {
        int n = 0;
        for (int i = s.indexOf(what); i >= 0; i = s.indexOf(what, i + 1)) n++;
        return n;
    }
}
