package org.kdbusbridge.bridge.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The transport's defaults are the documented ones (README, docs/performance.md), and the withers change one field. */
class TransportSettingsTest {
    @Test
    void defaultsAreTheDocumentedOnes() {
        TransportSettings d = TransportSettings.DEFAULTS;
        assertEquals(65536, d.zeroCopyThreshold());
        assertEquals(1048576, d.largeSendBuffer());
        assertEquals(5_000, d.spinNanos());
        assertEquals(30_000, d.relaySpinNanos());
        assertEquals(true, d.spinYield());
        assertEquals(128, d.ioBuffers());
        assertEquals(true, d.processFd());
    }

    @Test
    void withersChangeOneFieldOnly() {
        TransportSettings d = TransportSettings.DEFAULTS;
        assertEquals(new TransportSettings(7, d.largeSendBuffer(), d.spinNanos(), d.relaySpinNanos(), d.spinYield(),
                d.ioBuffers(), d.processFd()), d.withZeroCopyThreshold(7));
        assertEquals(new TransportSettings(d.zeroCopyThreshold(), d.largeSendBuffer(), d.spinNanos(), d.relaySpinNanos(),
                d.spinYield(), 1, d.processFd()), d.withIoBuffers(1));
    }
}
