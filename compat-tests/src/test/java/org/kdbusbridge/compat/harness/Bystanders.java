package org.kdbusbridge.compat.harness;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What the quota and memory-attack tests share: a busconfig that allows everything with the
 * given limits, and the python3-dbus bystander that counts {@code Tick(i)} signals in order.
 */
public final class Bystanders {
    private Bystanders() {
    }

    /** The files a bus and a bystander of another uid use, in a directory both can reach. */
    public record Setup(Path conf, Path script) { }

    /** Makes {@code dir} usable by other uids and writes {@code bus.conf} and {@code bystander.py} into it. */
    public static Setup prepare(Path dir, String config, String script) throws IOException {
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        Path conf = Files.writeString(dir.resolve("bus.conf"), config);
        Path py = Files.writeString(dir.resolve("bystander.py"), script);
        Files.setPosixFilePermissions(py, PosixFilePermissions.fromString("rw-r--r--"));
        return new Setup(conf, py);
    }

    /** A session busconfig on {@code socket}, EXTERNAL, a default policy allowing all, then {@code limits}. */
    public static String openConfig(Path socket, Map<String, Long> limits) {
        StringBuilder b = new StringBuilder("<busconfig><type>session</type><listen>unix:path=").append(socket)
                .append("</listen><auth>EXTERNAL</auth><policy context=\"default\"><allow user=\"*\"/>")
                .append("<allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/><allow own=\"*\"/>")
                .append("</policy>");
        for (Map.Entry<String, Long> e : limits.entrySet()) {
            b.append("<limit name=\"").append(e.getKey()).append("\">").append(e.getValue()).append("</limit>");
        }
        return b.append("</busconfig>\n").toString();
    }

    /**
     * The bystander script (argv: address, n). It counts {@code Tick(i)} signals of {@code iface}
     * and prints "got n in order" (or what it got) once it has n.
     * <ul>
     * <li>{@code selfEmit}: it sends the n signals itself, waits for them at most 20 s, and prints
     *     "got k ..." whatever k is; no "ready" line.</li>
     * <li>otherwise it owns org.example.Bystander, prints "ready REPLY" and waits; with
     *     {@code timeGetId} it then makes one GetId call and prints "answered in N ms".</li>
     * </ul>
     */
    public static String tickCounter(String iface, boolean selfEmit, boolean timeGetId) {
        List<String> l = new ArrayList<>(List.of(
                "import sys, time, dbus, dbus.lowlevel, dbus.mainloop.glib",
                "from gi.repository import GLib",
                "dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)",
                "bus = dbus.bus.BusConnection(sys.argv[1])",
                "n = int(sys.argv[2])",
                "got = []",
                "loop = GLib.MainLoop()",
                "def tick(i):",
                "    got.append(int(i))",
                "    if len(got) == n:"));
        if (!selfEmit) {
            l.add("        print('got', n, 'in order' if got == list(range(n)) else got, flush=True)");
        }
        if (timeGetId) {
            l.addAll(List.of(
                    "        t = time.monotonic()",
                    "        bus.call_blocking('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus',",
                    "                          'GetId', '', (), timeout=5)",
                    "        print('answered in %d ms' % ((time.monotonic() - t) * 1000), flush=True)"));
        }
        l.add("        loop.quit()");
        l.add("bus.add_signal_receiver(tick, signal_name='Tick', dbus_interface='" + iface + "')");
        if (selfEmit) {
            String path = "/" + iface.replace('.', '/');
            l.addAll(List.of(
                    "for i in range(n):",
                    "    m = dbus.lowlevel.SignalMessage('" + path + "', '" + iface + "', 'Tick')",
                    "    m.append(dbus.Int32(i))",
                    "    bus.send_message(m)",
                    "GLib.timeout_add(20000, loop.quit)",
                    "loop.run()",
                    "print('got', len(got), 'in order' if got == list(range(n)) else got, flush=True)"));
        } else {
            l.add("print('ready', bus.request_name('org.example.Bystander'), flush=True)");
            l.add("loop.run()");
        }
        l.add("");
        return String.join("\n", l);
    }
}
