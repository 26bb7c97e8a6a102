package org.kdbusbridge.bridge.driver;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.match.MatchRule;

/** org.freedesktop.DBus.Debug.Stats: read-only views of the bus's counters. */
final class StatsMethods {
    private final Bus bus;
    private final DriverEmitter out;
    private final PeerQueries peers;

    StatsMethods(Bus bus, DriverEmitter out, PeerQueries peers) {
        this.bus = bus;
        this.out = out;
        this.peers = peers;
    }

    // --- org.freedesktop.DBus.Debug.Stats (dbus-daemon bus/stats.c keys, all uint32) ---------
    // As in dbus-daemon, anyone may call these (METHOD_FLAG_NO_CONTAINERS only; we have no
    // containers), at the canonical path only. Each method has its own Serial counter.

    private long getStatsSerial;
    private long getConnectionStatsSerial;

    private static void u32(BodyWriter w, String key, long value) {
        w.beginDictEntry();
        w.writeString(key);
        w.writeVariant("u");
        w.writeUint32(Math.max(0, Math.min(0xffffffffL, value)));
        w.endDictEntry();
    }

    void getStats(DriverCall call) {
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        u32(w, "Serial", getStatsSerial++);
        // libdbus's list allocator does not exist here; the keys stay for tools that expect them.
        u32(w, "ListMemPoolUsedBytes", 0);
        u32(w, "ListMemPoolCachedBytes", 0);
        u32(w, "ListMemPoolAllocatedBytes", 0);
        int active = bus.activeConnections().size();
        u32(w, "ActiveConnections", active);
        u32(w, "IncompleteConnections", Math.max(0, bus.connectionCount() - active));
        u32(w, "MatchRules", bus.matches().size());
        u32(w, "PeakMatchRules", bus.matches().peakSize());
        u32(w, "PeakMatchRulesPerConnection", bus.matches().peakPerConnection());
        u32(w, "BusNames", bus.busNameCount());
        u32(w, "PeakBusNames", bus.peakBusNames());
        u32(w, "PeakBusNamesPerConnection", bus.peakBusNamesPerConnection());
        // Ours (docs/compatibility.md): activation entries waiting (max_pending_service_starts).
        u32(w, "PendingServiceStarts", bus.pendingActivationEntries());
        w.endArray();
        out.reply(call.caller(), call.serial(), "a{sv}", w.toByteArray());
    }

    void getConnectionStats(DriverCall call) throws ProtocolException {
        Connection peer = peers.peer(call, call.body().readString(), "statistics");
        if (peer == null) {
            return;
        }
        if (peer == PeerQueries.DRIVER_SELF) {
            out.error(call, DBusErrors.INVALID_ARGS, "GetConnectionStats is not meaningful for the message bus \""
                    + Bus.DRIVER_NAME + "\" itself");
            return;
        }
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        u32(w, "Serial", getConnectionStatsSerial++);
        u32(w, "MatchRules", peer.matchRuleCount());
        u32(w, "PeakMatchRules", peer.peakMatchRules());
        u32(w, "BusNames", peer.busNameCount());
        u32(w, "PeakBusNames", peer.peakBusNames());
        w.beginDictEntry();
        w.writeString("UniqueName");
        w.writeVariant("s");
        w.writeString(peer.uniqueName());
        w.endDictEntry();
        // Incoming: messages read but not yet dispatched (always 0: we dispatch as we parse),
        // then dbus-daemon's live counter - bytes/fds of its messages still queued in the bus.
        u32(w, "IncomingMessages", 0);
        u32(w, "IncomingBytes", peer.incomingBytes());
        u32(w, "IncomingFDs", peer.incomingFds());
        u32(w, "PeakIncomingBytes", peer.peakIncomingBytes());
        u32(w, "PeakIncomingFDs", peer.peakIncomingFds());
        // Outgoing: its receive pool.
        u32(w, "OutgoingMessages", peer.pool().messages());
        u32(w, "OutgoingBytes", peer.pool().bytes());
        u32(w, "OutgoingFDs", peer.pool().fds());
        u32(w, "PeakOutgoingBytes", peer.pool().peakBytes());
        u32(w, "PeakOutgoingFDs", peer.pool().peakFds());
        // Ours: messages its full pool did not take (broadcasts skipped, unicasts refused with
        // LimitsExceeded) and the pool's byte budget.
        u32(w, "DroppedMessages", peer.pool().dropped());
        u32(w, "PoolBudgetBytes", peer.pool().maxBytes());
        w.endArray();
        out.reply(call.caller(), call.serial(), "a{sv}", w.toByteArray());
    }

    void getAllMatchRules(DriverCall call) {
        BodyWriter w = new BodyWriter();
        w.beginArray('{');
        for (Connection x : bus.activeConnections()) {
            w.beginDictEntry();
            w.writeString(x.uniqueName());
            w.beginArray('s');
            for (MatchRule r : bus.matches().rulesOf(x)) {
                w.writeString(r.toString());
            }
            w.endArray();
            w.endDictEntry();
        }
        w.endArray();
        out.reply(call.caller(), call.serial(), "a{sas}", w.toByteArray());
    }

}
