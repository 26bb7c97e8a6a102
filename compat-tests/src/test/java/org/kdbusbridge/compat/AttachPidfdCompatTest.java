package org.kdbusbridge.compat;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.kdbusbridge.compat.harness.BusKind;
import org.kdbusbridge.compat.harness.BusUnderTest;
import org.kdbusbridge.compat.harness.Buses;
import org.kdbusbridge.compat.harness.Cmd;

/**
 * AttachMetadata's pidfd item with real processes (issue 17): raw python clients that negotiate
 * unix fds (meta_pidfd.py, meta_memfd.py; field 107 in its text form). The receiver that asked
 * gets a pidfd of the sending process behind the message's own fds, named by the field and
 * counted by UNIX_FDS; it refers to the sender (/proc/self/fdinfo "Pid:") and, once the sender
 * exited, says so (Pid: -1, pidfd_send_signal ESRCH) instead of naming whoever got the pid next
 * (as root the script makes a new process take that pid, through ns_last_pid): the race kdbus
 * fixed. A receiver that did not ask gets no fd. With a sealed memfd payload the memfd stays
 * index 0, intact and sealed, beside the field and the pidfd.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class AttachPidfdCompatTest {
    @TempDir
    Path tmp;

    private Path script(String name) throws Exception {
        for (String n : List.of(name, "rawconn.py", "rawwire.py")) {
            Path p = tmp.resolve(n);
            if (!Files.exists(p)) {
                try (InputStream in = AttachPidfdCompatTest.class.getResourceAsStream(n)) {
                    assertNotNull(in, n);
                    Files.copy(in, p);
                }
            }
        }
        return tmp.resolve(name);
    }

    private static String line(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).findFirst().orElse(null);
    }

    @Test
    void theReceiverGetsAPidfdOfTheSenderThatSaysGoneOnceItExited() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Cmd.Result r = Cmd.run(List.of(DbusPythonTest.PYTHON, script("meta_pidfd.py").toString(), bus.address()),
                    Map.of(), Buses.T);
            assertTrue(r.ok() && r.stdout().contains("done"), r.describe());
            String out = r.stdout();
            assertEquals("attach ok fds=0 field=True", line(out, "attach "), "the reply: field, no pidfd (the bus sent it)");
            String sender = line(out, "sender ").split(" ")[1];
            assertEquals("got Plain unix_fds=1 received=1 pidfd=0 pid=" + sender + " fdinfo=" + sender,
                    line(out, "got Plain"), "no fds of its own: UNIX_FDS added for the pidfd\n" + out);
            assertEquals("got WithFd unix_fds=2 received=2 pidfd=1 pid=" + sender + " fdinfo=" + sender
                    + " pipe=through-the-pipe", line(out, "got WithFd"), "its own fd first, the pidfd behind\n" + out);
            assertEquals("got Tick unix_fds=1 received=1 pidfd=0 pid=" + sender + " fdinfo=" + sender,
                    line(out, "got Tick"), "a broadcast too\n" + out);
            assertEquals("plain Tick unix_fds=0 received=0 field=False", line(out, "plain Tick"),
                    "a receiver that did not ask: no field, no fd\n" + out);
            List<String> after = out.lines().filter(l -> l.startsWith("after-exit")).toList();
            assertEquals(List.of("after-exit fdinfo=-1 gone", "after-exit fdinfo=-1 gone", "after-exit fdinfo=-1 gone"),
                    after, "every pidfd says the sender is gone, none names another process\n" + out);
            String reuse = line(out, "reuse ");
            if (reuse.startsWith("reuse pid=")) {
                // As root the script made a new process take the sender's pid (ns_last_pid).
                assertEquals("reuse pid=" + sender + " fdinfo=-1,-1,-1 gone,gone,gone", reuse,
                        "a new process under the sender's pid is not what the pidfds name\n" + out);
            } else {
                assertTrue(List.of("reuse not-root", "reuse unavailable").contains(reuse),
                        "as root with ns_last_pid the reuse must happen\n" + out);
            }
        }
    }

    @Test
    void aSealedMemfdPayloadArrivesIntactBesideTheFieldAndThePidfd() throws Exception {
        try (BusUnderTest bus = BusKind.KDBUS_BRIDGE.start()) {
            Cmd.Result r = Cmd.run(List.of(DbusPythonTest.PYTHON, script("meta_memfd.py").toString(), bus.address()),
                    Map.of(), Buses.T);
            assertTrue(r.ok() && r.stdout().contains("done"), r.describe());
            String out = r.stdout();
            assertEquals("setup ok ok", line(out, "setup "), out);
            String got = line(out, "got ");
            String me = got.substring(got.indexOf(" me=") + 4);
            assertTrue(got.startsWith("got field=True unix_fds=2 received=2 pidfd=1 pid=" + me + " seq="), out);
            assertTrue(Long.parseLong(AttachMetadataCompatTest.words(got).get("seq")) > 0, got);
            assertEquals("memfd intact=True size=1048576 sealed=True body_index=0", line(out, "memfd "),
                    "the memfd is index 0, whole and sealed\n" + out);
            assertEquals("pidfd fdinfo=" + me, line(out, "pidfd "), out);
        }
    }
}
