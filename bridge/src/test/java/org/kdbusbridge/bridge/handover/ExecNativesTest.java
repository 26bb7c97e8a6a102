package org.kdbusbridge.bridge.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.bridge.memfd.SealedMemfd;
import org.kdbusbridge.bridge.transport.LibC;

/**
 * The hand-over natives of kdbus_native.c as the bus uses them (the successful exec is
 * HandOverExecTest's, with real processes): a failed execve returns minus errno and puts
 * everything back, waitid sees a child through its pidfd.
 */
class ExecNativesTest {
    private static final int SIGHUP = 1;

    @Test
    void theNativesAreBoundInTheBuiltLibrary() {
        assertNull(LibC.Native.handOverUnsupported());
    }

    @Test
    void aFailedExecveReturnsTheErrnoAndLeavesTheKeepSetCloseOnExec() throws Exception {
        int keep = SealedMemfd.create("exec-natives-test", new byte[] {1, 2, 3}, true);
        try {
            assertEquals(LibC.FD_CLOEXEC, LibC.INSTANCE.fcntl(keep, LibC.F_GETFD, 0));
            int r = LibC.Native.execveKeeping("/nonexistent/kdbus-bridge", List.of("kdbus-bridge", "--kdbus-resume=" + keep),
                    new int[] {keep});
            assertEquals(-LibC.ENOENT, r);
            assertEquals(LibC.FD_CLOEXEC, LibC.INSTANCE.fcntl(keep, LibC.F_GETFD, 0), "CLOEXEC back on the keep set");
            assertTrue(SealedMemfd.isSealed(keep), "the fd is still the same open memfd");
        } finally {
            LibC.INSTANCE.close(keep);
        }
        // SIGHUP was ignored only across the attempt: a JVM handler still gets it (the bus would reload).
        java.util.concurrent.CountDownLatch hup = new java.util.concurrent.CountDownLatch(1);
        sun.misc.Signal.handle(new sun.misc.Signal("HUP"), s -> hup.countDown());
        LibC.INSTANCE.raise(SIGHUP);
        assertTrue(hup.await(10, java.util.concurrent.TimeUnit.SECONDS), "SIGHUP reaches its handler after a failed exec");
    }

    @Test
    void waitidSeesAChildThroughItsPidfd() throws Exception {
        Process p = new ProcessBuilder("/bin/sh", "-c", "read x; exit 7").start();
        int pidfd = LibC.Native.pidfdOpen(p.pid());
        assertTrue(pidfd >= 0, "pidfd_open: " + pidfd);
        try {
            int[] out = new int[3];
            assertEquals(0, LibC.Native.waitidPidfd(pidfd, 1 /* WNOHANG */, out), "waitid on a live child");
            assertEquals(0, out[2], "no status while it runs");
            p.getOutputStream().close(); // the child reads EOF and exits 7
            assertEquals(7, p.waitFor());
            // The JDK's reaper took the status: ECHILD, the case docs/handover.md section 6 plans for.
            assertEquals(-10 /* ECHILD */, LibC.Native.waitidPidfd(pidfd, 1, out));
        } finally {
            LibC.INSTANCE.close(pidfd);
        }
    }
}
