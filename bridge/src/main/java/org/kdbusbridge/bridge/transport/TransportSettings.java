package org.kdbusbridge.bridge.transport;

/**
 * The transport's tuning knobs for one bus, read from {@code -D} properties in one place
 * ({@link #fromSystemProperties()}) and carried by the server to its loop and sessions, so two
 * buses in one JVM may differ and a test passes a value instead of changing a static.
 *
 * @param zeroCopyThreshold messages at least this large are held in a direct buffer and written
 *        to every receiver from it, never copied per receiver ({@code -Dkdbus.zeroCopyThreshold};
 *        a huge value turns the path off)
 * @param largeSendBuffer SO_SNDBUF asked for a connection the first time a large message does not
 *        fit its socket ({@code -Dkdbus.largeSendBuffer}; 0 keeps the kernel's default)
 * @param spinNanos how long the loop polls before it sleeps while traffic is dense
 *        ({@code -Dkdbus.spinMicros}; 0: never)
 * @param relaySpinNanos the same right after a peer-to-peer call or reply was relayed
 *        ({@code -Dkdbus.relaySpinMicros}; 0: never)
 * @param spinYield sched_yield(2) between polls ({@code -Dkdbus.spinYield=false} turns it off)
 * @param ioBuffers how many 64 KiB output buffers may be lent at once to connections with
 *        pending output ({@code -Dkdbus.ioBuffers}; 0: every flush uses the shared one)
 * @param processFd accepted connections get their peer's pidfd, for GetConnectionCredentials'
 *        ProcessFD ({@code -Dkdbus.processFd=false} turns it off)
 */
public record TransportSettings(int zeroCopyThreshold, int largeSendBuffer, long spinNanos, long relaySpinNanos,
        boolean spinYield, int ioBuffers, boolean processFd) {
    /** The size from which the zero-copy path pays off (measured: docs/performance.md). */
    public static final int ZERO_COPY_SIZE = 64 * 1024;
    /** 1 MiB: a 1 MiB message in one send instead of five (docs/performance.md). */
    public static final int LARGE_SEND_BUFFER = 1 << 20;
    public static final long SPIN_NANOS = 5_000;
    public static final long RELAY_SPIN_NANOS = 30_000;
    /** 128 buffers, 8 MiB (docs/performance.md). */
    public static final int IO_BUFFERS = 128;

    /** The defaults, whatever the {@code -D} properties say. */
    public static final TransportSettings DEFAULTS =
            new TransportSettings(ZERO_COPY_SIZE, LARGE_SEND_BUFFER, SPIN_NANOS, RELAY_SPIN_NANOS, true, IO_BUFFERS, true);

    /** The defaults, each overridden by its {@code -D} property when set. */
    public static TransportSettings fromSystemProperties() {
        return new TransportSettings(
                Integer.getInteger("kdbus.zeroCopyThreshold", ZERO_COPY_SIZE),
                Integer.getInteger("kdbus.largeSendBuffer", LARGE_SEND_BUFFER),
                Long.getLong("kdbus.spinMicros", SPIN_NANOS / 1000) * 1000L,
                Long.getLong("kdbus.relaySpinMicros", RELAY_SPIN_NANOS / 1000) * 1000L,
                !"false".equals(System.getProperty("kdbus.spinYield")),
                Integer.getInteger("kdbus.ioBuffers", IO_BUFFERS),
                !"false".equals(System.getProperty("kdbus.processFd")));
    }

    /** These settings with another zero-copy threshold. */
    public TransportSettings withZeroCopyThreshold(int bytes) {
        return new TransportSettings(bytes, largeSendBuffer, spinNanos, relaySpinNanos, spinYield, ioBuffers, processFd);
    }

    /** These settings with another bound on lent I/O buffers. */
    public TransportSettings withIoBuffers(int buffers) {
        return new TransportSettings(zeroCopyThreshold, largeSendBuffer, spinNanos, relaySpinNanos, spinYield, buffers, processFd);
    }
}
