package org.kdbusbridge.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.ExtendWith;
import org.kdbusbridge.bridge.embedded.BusAddress;
import org.kdbusbridge.bridge.embedded.KdbusBridgeExtension;

/**
 * DbusJavaCallerMetadataService (dbus-java through the bridge's metadata helper) on an embedded
 * bus, called by other processes (dbus-python owning a name, dbus-send owning none): each
 * answered call is logged with the caller process's own pid and uid at send time, its comm and
 * the names it owned; seq grows from call to call. The same checks as CallerMetadataServiceTest.
 */
@Timeout(120)
@ExtendWith(KdbusBridgeExtension.class)
class DbusJavaCallerMetadataServiceTest {
    private static final Pattern LINE = Pattern.compile(
            "CallerMetadata: Echo from (:\\S+) pid=(\\d+) uid=(\\d+) gid=(\\d+) at-send=(true|false) comm=(\\S+)"
                    + " names=\\[([^\\]]*)\\] seq=(\\d+) admitted=(\\S+)");

    /** Requests a name, calls Echo, prints its pid, and exits. */
    private static final String PYTHON_CALLER = String.join("\n",
            "import os, sys, dbus",
            "bus = dbus.bus.BusConnection(sys.argv[1])",
            "bus.request_name('org.kdbusbridge.examples.Caller', dbus.bus.NAME_FLAG_DO_NOT_QUEUE)",
            "svc = bus.get_object('" + DbusJavaCallerMetadataService.BUS_NAME + "', '" + DbusJavaCallerMetadataService.OBJECT_PATH + "',"
                    + " introspect=False)",
            "print(os.getpid(), bus.get_unique_name(), svc.Echo('from python', dbus_interface='"
                    + CallerMetadataService.INTERFACE + "'))",
            "");

    @Test
    void logsEachCallersSendTimeCredentialsAndNames(@BusAddress String address) throws Exception {
        long uid = ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
        LinkedBlockingQueue<String> log = new LinkedBlockingQueue<>();
        try (DbusJavaCallerMetadataService service = DbusJavaCallerMetadataService.start(address, log::add)) {
            // dbus-python: owns a name while it calls
            Process py = new ProcessBuilder("/usr/bin/python3", "-c", PYTHON_CALLER, address)
                    .redirectErrorStream(true).start();
            String pyOut = new String(py.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            assertTrue(py.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, py.exitValue(), pyOut);
            String[] said = pyOut.split(" ", 3);
            assertEquals(String.valueOf(py.pid()), said[0], pyOut);
            assertEquals("from python", said[2], "the service answered");

            Matcher first = awaitLine(log);
            assertEquals(said[1], first.group(1), "the caller's unique name");
            assertEquals(py.pid(), Long.parseLong(first.group(2)), "the calling process's pid: " + first.group());
            assertEquals(uid, Long.parseLong(first.group(3)), "its uid");
            assertEquals("true", first.group(5), "stamped at send time (SCM_CREDENTIALS)");
            assertTrue(first.group(6).startsWith("python3"), "comm " + first.group(6));
            assertEquals("org.kdbusbridge.examples.Caller", first.group(7), "the name it owned when it called");

            // dbus-send: owns no name
            Process send = new ProcessBuilder("dbus-send", "--bus=" + address, "--print-reply",
                    "--dest=" + DbusJavaCallerMetadataService.BUS_NAME, DbusJavaCallerMetadataService.OBJECT_PATH,
                    CallerMetadataService.INTERFACE + ".Echo", "string:from dbus-send").redirectErrorStream(true).start();
            String sendOut = new String(send.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(send.waitFor(60, TimeUnit.SECONDS));
            assertEquals(0, send.exitValue(), sendOut);
            assertTrue(sendOut.contains("\"from dbus-send\""), sendOut);

            Matcher second = awaitLine(log);
            assertEquals(send.pid(), Long.parseLong(second.group(2)), "dbus-send's pid: " + second.group());
            assertEquals(uid, Long.parseLong(second.group(3)));
            assertEquals("true", second.group(5));
            assertEquals("dbus-send", second.group(6));
            assertEquals("", second.group(7), "no names");
            assertTrue(Long.parseLong(second.group(8)) > Long.parseLong(first.group(8)), "seq grows");
            assertTrue(log.isEmpty(), "one line per answered call: " + log);
        }
    }

    private static Matcher awaitLine(LinkedBlockingQueue<String> log) throws InterruptedException {
        String line = log.poll(60, TimeUnit.SECONDS);
        assertNotNull(line, "the service logged the call");
        Matcher m = LINE.matcher(line);
        assertTrue(m.matches(), "log line: " + line);
        return m;
    }
}
