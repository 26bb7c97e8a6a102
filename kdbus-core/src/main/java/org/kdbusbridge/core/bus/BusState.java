package org.kdbusbridge.core.bus;

import java.util.Map;

import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.QueueLedger;
import org.kdbusbridge.core.match.MatchIndex;
import org.kdbusbridge.core.monitor.Monitors;
import org.kdbusbridge.core.name.NameRegistry;

/**
 * The state the bus's parts share, created once by {@link Bus}: each part reads and changes it
 * only through its own operations, on the bus's one thread.
 */
record BusState(BusLimits limits, Map<String, Connection> byUniqueName, NameRegistry names, MatchIndex matches,
        Monitors monitors, ReplySlots replySlots, QueueLedger queued, UserQuotas quotas) {
}
