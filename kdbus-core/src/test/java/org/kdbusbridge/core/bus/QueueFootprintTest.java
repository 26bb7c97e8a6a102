// Measures what the bus really holds per queued message besides its wire bytes (heap after a full
// collection, before and after N messages queued on a receiver that never reads) and checks the
// ledger's charge (QueueLedger.messageBytes + ENTRY_BYTES) is not below it: the figure in
// docs/performance.md ("Per-uid quota") comes from this test's output. Worst case for the charge:
// a small message whose header strings are all fresh (the bridge's decoder shares a string with
// the previous message's when equal; an attacker can vary them).
package org.kdbusbridge.core.bus;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;

import org.junit.jupiter.api.Test;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.connection.QueueLedger;
import org.kdbusbridge.core.message.ArgSource;
import org.kdbusbridge.core.message.Message;
import org.kdbusbridge.core.message.SealedPayload;

class QueueFootprintTest {
    private static final int N = 50_000;
    private static final int WIRE = 160;

    private static long heapUsed() {
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 5; i++) {
            System.gc();
            best = Math.min(best, ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed());
        }
        return best;
    }

    /** An argument source as small as the bridge's (one object pointing at the payload). */
    private record OneArg(SealedPayload payload) implements ArgSource {
        @Override
        public String arg(int index) {
            return null;
        }

        @Override
        public boolean isObjectPath(int index) {
            return false;
        }
    }

    @Test
    void theChargeCoversWhatAQueuedMessageHolds() {
        BusLimits limits = new BusLimits();
        Bus bus = new Bus(limits, UserQuota.forHeap(Long.MAX_VALUE / 2));
        Connection a = bus.connect(new Credentials(1000, 1000, 1), x -> { });
        Connection b = bus.connect(new Credentials(1000, 1000, 2), x -> { });
        bus.hello(a);
        bus.hello(b);
        String dest = b.uniqueName();
        long before = heapUsed();
        for (int i = 0; i < N; i++) {
            SealedPayload p = new SealedPayload(new byte[WIRE]);
            // Fresh strings of typical lengths, as decoded from a header that differs each time.
            Message m = new Message(Message.METHOD_CALL, Message.FLAG_NO_REPLY_EXPECTED, i + 1,
                    Message.NO_REPLY_SERIAL, new String(dest), "/org/example/Object" + i, "org.example.Iface" + (i % 10),
                    "Method" + i, null, p, new OneArg(p));
            assertEquals(Delivery.OK, bus.send(a, m));
        }
        long after = heapUsed();
        assertEquals(N, b.pool().messages());
        long charged = bus.queued().bytes(1000);
        long chars = charged - (long) N * (WIRE + QueueLedger.MESSAGE_BYTES + QueueLedger.ENTRY_BYTES);
        double perMessage = (after - before - chars) / (double) N - WIRE;
        System.out.printf("queued message: %.0f bytes of heap besides its %d wire bytes and %.0f header characters"
                + " (charge %d)%n", perMessage, WIRE, chars / (double) N,
                QueueLedger.MESSAGE_BYTES + QueueLedger.ENTRY_BYTES);
        assertTrue(QueueLedger.MESSAGE_BYTES + QueueLedger.ENTRY_BYTES >= perMessage,
                "charge below the real cost: " + perMessage);
        assertTrue(QueueLedger.MESSAGE_BYTES + QueueLedger.ENTRY_BYTES < 2 * perMessage,
                "charge far above the real cost: " + perMessage);
        assertTrue(chars > 0, "the header strings are charged");
    }
}
