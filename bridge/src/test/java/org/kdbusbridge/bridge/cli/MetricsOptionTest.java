package org.kdbusbridge.bridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** --kdbus-metrics takes one unix:path= and one loopback http:// address, in either form; --kdbus-metrics-top a count. */
class MetricsOptionTest {
    @Test
    void metricsTakesOneUnixPathAddress() throws Exception {
        assertEquals("unix:path=/tmp/m", Main.parse(new String[] {"--kdbus-metrics=unix:path=/tmp/m"}).metrics);
        assertEquals("unix:path=/tmp/m", Main.parse(new String[] {"--kdbus-metrics", "unix:path=/tmp/m", "--session"}).metrics);
        assertNull(Main.parse(new String[] {"--session"}).metrics);
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics=unix:abstract=x"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics=tcp:host=localhost"}));
        assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--kdbus-metrics=unix:path=/a", "--kdbus-metrics=unix:path=/b"}));
    }

    @Test
    void metricsTakesOneLoopbackHttpAddressBesideTheSocket() throws Exception {
        Main.Options o = Main.parse(new String[] {"--kdbus-metrics=http://127.0.0.1:9100", "--kdbus-metrics",
            "unix:path=/tmp/m"});
        assertEquals("http://127.0.0.1:9100", o.metricsHttp);
        assertEquals("unix:path=/tmp/m", o.metrics);
        assertNull(Main.parse(new String[] {"--kdbus-metrics=unix:path=/tmp/m"}).metricsHttp);
        assertEquals("http://[::1]:0/metrics", Main.parse(new String[] {"--kdbus-metrics", "http://[::1]:0/metrics"}).metricsHttp);
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics=http://0.0.0.0:9100"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics=http://10.0.0.1:9100"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics=http://127.0.0.1"}));
        assertThrows(Main.UsageException.class,
                () -> Main.parse(new String[] {"--kdbus-metrics=http://127.0.0.1:1", "--kdbus-metrics=http://127.0.0.1:2"}));
    }

    @Test
    void metricsTopIsACount() throws Exception {
        assertEquals(Main.DEFAULT_METRICS_TOP, Main.parse(new String[] {"--session"}).metricsTop);
        assertEquals(7, Main.parse(new String[] {"--kdbus-metrics-top=7"}).metricsTop);
        assertEquals(0, Main.parse(new String[] {"--kdbus-metrics-top=0"}).metricsTop);
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics-top=-1"}));
        assertThrows(Main.UsageException.class, () -> Main.parse(new String[] {"--kdbus-metrics-top=many"}));
    }
}
