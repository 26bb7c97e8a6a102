package org.kdbusbridge.bridge.metrics;

import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.List;

/**
 * The JVM's collections and the time they took, per collector, from its GarbageCollectorMXBeans.
 * java.lang.management costs start-up time (the bus avoids it, see server.ProcessFacts), so it
 * is loaded here, on the first dump rendered, and never by a bus without metrics. The beans'
 * "time" is the collector's accumulated elapsed time: for the stop-the-world collectors
 * (Serial, Parallel, G1's young and old) that is pause time.
 */
final class GcTotals {
    /** The beans, looked up once (the JVM's collectors do not change). */
    private static List<GarbageCollectorMXBean> beans;

    private GcTotals() {
    }

    static void render(StringBuilder b) {
        List<GarbageCollectorMXBean> gcs = beans;
        if (gcs == null) {
            gcs = ManagementFactory.getGarbageCollectorMXBeans();
            beans = gcs;
        }
        family(b, "kdbus_gc_collections", "counter", null, "Garbage collections the bus's JVM ran, by collector");
        for (GarbageCollectorMXBean gc : gcs) {
            sample(b, "kdbus_gc_collections_total", gc, Math.max(0, gc.getCollectionCount()), false);
        }
        family(b, "kdbus_gc_seconds", "counter", "seconds",
                "Time the bus's JVM spent collecting, by collector (pauses for stop-the-world collectors)");
        for (GarbageCollectorMXBean gc : gcs) {
            sample(b, "kdbus_gc_seconds_total", gc, Math.max(0, gc.getCollectionTime()), true);
        }
    }

    private static void family(StringBuilder b, String name, String type, String unit, String help) {
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        if (unit != null) {
            b.append("# UNIT ").append(name).append(' ').append(unit).append('\n');
        }
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
    }

    private static void sample(StringBuilder b, String name, GarbageCollectorMXBean gc, long value, boolean millis) {
        b.append(name).append("{gc=\"");
        OpenMetricsWriter.escape(b, gc.getName());
        b.append("\"} ");
        if (millis) {
            OpenMetricsWriter.seconds(b, value * 1_000_000L);
        } else {
            b.append(value);
        }
        b.append('\n');
    }
}
