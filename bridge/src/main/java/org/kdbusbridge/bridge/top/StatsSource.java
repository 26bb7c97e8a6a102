package org.kdbusbridge.bridge.top;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;

/**
 * Any bus, dbus-daemon included, through its driver: ListNames and GetNameOwner for the names,
 * GetConnectionUnixProcessID and /proc for pid and comm, and Debug.Stats GetConnectionStats for
 * queue bytes and drops where the bus has it. Debug.Stats only has levels, no cumulative message
 * counts, so this source gives no rates. Also used beside {@link MetricsSource} for the pids.
 */
public final class StatsSource implements TopSource {

    private static final String STATS = "org.freedesktop.DBus.Debug.Stats";
    private static final Duration TIMEOUT = Duration.ofSeconds(2);

    private final BusConnection bus;
    private boolean hasStats = true;
    private final Map<String, long[]> pids = new HashMap<>(); // unique -> {pid}
    private final Map<String, String> comms = new HashMap<>();

    public StatsSource(String address) throws IOException {
        this.bus = BusConnection.open(address, "kdbus-bridge top");
        // dbus-daemon builds Debug.Stats only with --enable-stats: ask once, up front.
        BusMessage r = bus.callDriver(STATS, "GetStats", "", new Object[0], TIMEOUT);
        hasStats = r != null && r.isReturn();
    }

    @Override
    public Snapshot read() throws IOException {
        List<String> all = listNames();
        Map<String, List<String>> owned = new TreeMap<>();
        for (String n : all) {
            if (n.startsWith(":")) owned.putIfAbsent(n, new ArrayList<>());
        }
        for (String n : all) {
            if (n.startsWith(":") || n.equals(BusMessage.DRIVER)) continue;
            BusMessage r = bus.callDriver("GetNameOwner", "s", new Object[] {n}, TIMEOUT);
            if (r != null && r.isReturn()) owned.computeIfAbsent(r.stringArg(0), k -> new ArrayList<>()).add(n);
        }
        owned.remove(bus.uniqueName()); // not ourselves
        pids.keySet().retainAll(owned.keySet()); // departed connections
        List<Snapshot.Conn> conns = new ArrayList<>();
        for (Map.Entry<String, List<String>> e : owned.entrySet()) {
            String u = e.getKey();
            long queue = -1;
            long drops = -1;
            if (hasStats) {
                BusMessage r = bus.callDriver(STATS, "GetConnectionStats", "s", new Object[] {u}, TIMEOUT);
                if (r != null && r.isReturn() && r.body() != null && r.body().get(0) instanceof Map<?, ?> m) {
                    queue = num(m.get("IncomingBytes")) + num(m.get("OutgoingBytes"));
                    drops = m.containsKey("DroppedMessages") ? num(m.get("DroppedMessages")) : -1;
                }
            }
            long pid = pid(u);
            conns.add(new Snapshot.Conn(u, String.join(",", e.getValue()), "", pid, comm(pid), -1, -1, queue, drops,
                    -1));
        }
        bus.discardBefore(Integer.MAX_VALUE);
        return new Snapshot(System.nanoTime(), conns, -1, -1, hasStats ? "" : "no per-connection stats on this bus");
    }

    /** The pid of {@code unique}, cached; -1 if the bus does not know it. */
    long pid(String unique) throws IOException {
        long[] p = pids.get(unique);
        if (p == null) {
            BusMessage r = bus.callDriver("GetConnectionUnixProcessID", "s", new Object[] {unique}, TIMEOUT);
            p = new long[] {r != null && r.isReturn() && r.body() != null ? num(r.body().get(0)) : -1};
            pids.put(unique, p);
        }
        return p[0];
    }

    /** /proc/PID/comm, cached per pid; empty if gone or not ours to read. */
    String comm(long pid) {
        if (pid <= 0) return "";
        return comms.computeIfAbsent(Long.toString(pid), k -> {
            try {
                return Files.readString(Path.of("/proc", k, "comm"), StandardCharsets.UTF_8).strip();
            } catch (IOException | RuntimeException e) {
                return "";
            }
        });
    }

    /** Adds pids (and comm where the dump had none) to a metrics snapshot. */
    Snapshot withPids(Snapshot s) throws IOException {
        List<Snapshot.Conn> out = new ArrayList<>(s.conns().size());
        for (Snapshot.Conn c : s.conns()) {
            if (c.unique().equals(bus.uniqueName())) continue; // not ourselves
            long pid = pid(c.unique());
            out.add(c.withPid(pid, comm(pid)));
        }
        bus.discardBefore(Integer.MAX_VALUE);
        return new Snapshot(s.nanos(), out, s.busMessages(), s.busBytes(), s.note());
    }

    @SuppressWarnings("unchecked")
    private List<String> listNames() throws IOException {
        BusMessage r = bus.callDriver("ListNames", "", new Object[0], TIMEOUT);
        if (r == null || !r.isReturn() || r.body() == null) throw new IOException("ListNames failed: " + r);
        return (List<String>) r.body().get(0);
    }

    private static long num(Object o) {
        return o instanceof Number n ? n.longValue() : 0;
    }

    @Override
    public void close() {
        bus.close();
    }
}
