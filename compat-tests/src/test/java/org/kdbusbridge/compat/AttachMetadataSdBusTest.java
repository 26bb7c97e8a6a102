package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.Background;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * sd-bus (systemd 252) opted in with AttachMetadata's text form ({@code format=text}: field 107
 * as one string, which sd-bus's skipper for unknown fields steps over, unlike the a{sv}
 * dictionary: AttachMetadataCompatTest pins that). An sd-bus service (meta_sdbus.c, built here
 * against libsystemd) asks for every item, pidfd included, and answers calls and receives
 * signals as usual; a one-shot busctl reads its own fielded reply; busctl monitor works with
 * {@code --kdbus-monitor-metadata=format=text,...}.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AttachMetadataSdBusTest {
    @TempDir
    Path tmp;

    /** meta_sdbus.c compiled here (gcc and libsystemd's pkg-config file are in the image). */
    private Path service() throws Exception {
        Path src = tmp.resolve("meta_sdbus.c");
        try (InputStream in = AttachMetadataSdBusTest.class.getResourceAsStream("meta_sdbus.c")) {
            assertNotNull(in);
            Files.copy(in, src);
        }
        Cmd.Result flags = Cmd.run(List.of("pkg-config", "--cflags", "--libs", "libsystemd"), Buses.T);
        Assumptions.assumeTrue(flags.ok(), "libsystemd-dev: " + flags.describe());
        Path bin = tmp.resolve("meta_sdbus");
        List<String> cc = new ArrayList<>(List.of("cc", "-O1", "-o", bin.toString(), src.toString()));
        cc.addAll(List.of(flags.stdout().trim().split("\\s+")));
        Cmd.Result built = Cmd.run(cc, Duration.ofSeconds(60));
        assertTrue(built.ok(), built.describe());
        return bin;
    }

    @Test
    void anSdBusServiceOptedInWithTheTextFormAnswersAndReceivesSignals() throws Exception {
        Path bin = service();
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start();
             Background svc = Background.start(List.of(bin.toString(), bus.address()), Map.of())) {
            String ready = svc.stdout().awaitLine(l -> l.startsWith("ready "), Buses.T);
            assertNotNull(ready, "sd-bus parsed the fielded replies to AttachMetadata and GetAttachedMetadata\n"
                    + svc.describe());
            assertEquals("attached creds pidfd groups comm exe cmdline cgroup seclabel names seq timestamp format=text drops",
                    svc.stdout().all().stream().filter(l -> l.startsWith("attached")).findFirst().orElse(null),
                    svc.describe());
            String name = ready.substring(6).trim();
            // A plain busctl calls it: the call reaches sd-bus with the field (and a pidfd), the answer comes back.
            Cmd.Result call = Cmd.run(List.of("busctl", "--address=" + bus.address(), "call", name,
                    "/org/kdbusbridge/MetaCompat", "org.kdbusbridge.MetaCompat", "Echo", "s", "hello"), Buses.T);
            assertTrue(call.ok(), call.describe() + "\n" + svc.describe());
            assertEquals("s \"echo:hello\"", call.stdout().trim());
            assertNotNull(svc.stdout().awaitLine("CALL hello"::equals, Buses.T), svc.describe());
            // A broadcast from libdbus reaches it too.
            Cmd.Result sig = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--type=signal", "/t",
                    "org.kdbusbridge.MetaCompat.Tick"), Buses.T);
            assertTrue(sig.ok(), sig.describe());
            assertNotNull(svc.stdout().awaitLine(l -> l.startsWith("TICK :"), Buses.T), svc.describe());
            assertTrue(svc.process().isAlive(), svc.describe());
        }
    }

    @Test
    void oneShotBusctlReadsItsOwnFieldedReplyInTheTextForm() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Cmd.Result text = Cmd.run(List.of("busctl", "--address=" + bus.address(), "--timeout=10", "call",
                    "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.kdbusbridge.Extensions1", "AttachMetadata",
                    "as", "5", "format=text", "seq", "creds", "names", "timestamp"), Buses.T);
            assertTrue(text.ok(), "the reply carries the field as a string: sd-bus skips it\n" + text.describe());
        }
    }

    @Test
    void busctlMonitorWorksWithTheTextFormOption(@TempDir Path dir) throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start(Path.of("/usr/share/dbus-1/session.conf"),
                "--address=unix:path=" + dir.resolve("bus"), "--kdbus-monitor-metadata=format=text,seq,creds,names");
             Background mon = Background.start(List.of("busctl", "--address=" + bus.address(), "monitor"), Map.of())) {
            // Signals until one shows up (the monitor may become one only after the first is sent).
            String seen = null;
            long deadline = System.nanoTime() + Buses.T.toNanos();
            while (seen == null && System.nanoTime() < deadline) {
                Cmd.Result sig = Cmd.run(List.of("dbus-send", "--bus=" + bus.address(), "--type=signal", "/t",
                        "org.kdbusbridge.MetaCompat.Tick"), Buses.T);
                assertTrue(sig.ok(), sig.describe());
                seen = mon.stdout().awaitLine(l -> l.contains("Member=Tick"), Duration.ofSeconds(2));
            }
            assertNotNull(seen, "busctl monitor shows the messages that carry the text field\n" + mon.describe());
            assertTrue(mon.process().isAlive(), mon.describe());
        }
    }
}
