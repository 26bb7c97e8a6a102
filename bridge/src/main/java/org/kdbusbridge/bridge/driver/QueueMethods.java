package org.kdbusbridge.bridge.driver;

import java.util.List;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.core.bus.Bus;
import org.kdbusbridge.core.bus.Denial;
import org.kdbusbridge.core.bus.DropNotice;
import org.kdbusbridge.core.bus.HandOverPeek;
import org.kdbusbridge.core.bus.QueuePeek;
import org.kdbusbridge.core.connection.Connection;
import org.kdbusbridge.core.connection.Credentials;
import org.kdbusbridge.core.message.QueuedMessage;

/**
 * org.kdbusbridge.Extensions1's queue methods (docs/extensions.md): WatchDrops and the
 * MessagesDropped notice it asks for, PeekQueued and PeekActivationQueue. Each decodes, calls
 * one core operation and renders its record; the bus decides.
 */
final class QueueMethods {
    /** The MessagesDropped signal: count (saturated at 2^32-1), first and last sequence number. */
    static final String MESSAGES_DROPPED = "MessagesDropped";
    static final String MESSAGES_DROPPED_SIGNATURE = "utt";
    /** One listed message: type, sender, interface, member, path, seq, pid, uid, gid. */
    static final String ENTRY = "(ysssstuuu)";
    /** PeekQueued lists at most this many (the oldest): a reply stays far below the message size limit. */
    static final int PEEK_MAX = 4096;

    private final Bus bus;
    private final DriverEmitter out;
    private final Driver.Host host;

    QueueMethods(Bus bus, DriverEmitter out, Driver.Host host) {
        this.bus = bus;
        this.out = out;
        this.host = host;
    }

    /** WatchDrops(b enable): from now on (or no longer) the caller gets MessagesDropped notices. */
    void watchDrops(DriverCall call) throws ProtocolException {
        boolean on = call.body().readBoolean();
        bus.watchDrops(call.caller(), on);
        out.replyEmpty(call.caller(), call.serial());
    }

    /**
     * After the transport wrote some of {@code c}'s pool (or a first drop was counted): the
     * MessagesDropped notice, if the bus decides one is due now.
     */
    void reportDrops(Connection c) {
        DropNotice n = bus.takeDropNotice(c);
        if (n == null) {
            return;
        }
        BodyWriter w = new BodyWriter(24);
        w.writeUint32(Math.min(n.count(), 0xFFFFFFFFL));
        w.writeUint64(n.firstSeq());
        w.writeUint64(n.lastSeq());
        out.unicastSignal(c, DriverTables.EXTENSIONS, MESSAGES_DROPPED, MESSAGES_DROPPED_SIGNATURE, w.toByteArray());
    }

    /** PeekQueued() -> (u queued, a(ysssstuuu) messages): the caller's own pool, nothing taken. */
    void peekQueued(DriverCall call) {
        QueuePeek p = bus.peekQueued(call.caller(), PEEK_MAX);
        if (p.denied()) {
            out.error(call, DBusErrors.of(p.denial().reason()), p.denial().text());
            return;
        }
        BodyWriter w = new BodyWriter();
        w.writeUint32(p.queued());
        entries(w, p.messages());
        out.reply(call.caller(), call.serial(), "u" + "a" + ENTRY, w.toByteArray());
    }

    /** PeekActivationQueue(s name) -> a(ysssstuuu): what the caller was handed when the start of {@code name} ended. */
    void peekActivationQueue(DriverCall call) throws ProtocolException {
        HandOverPeek p = bus.peekHandOver(call.caller(), call.body().readString());
        if (p.denied()) {
            Denial d = p.denial();
            out.error(call, DBusErrors.of(d.reason()), d.text());
            return;
        }
        BodyWriter w = new BodyWriter();
        List<QueuedMessage> listed = p.messages();
        entries(w, listed.size() > PEEK_MAX ? listed.subList(0, PEEK_MAX) : listed);
        out.reply(call.caller(), call.serial(), "a" + ENTRY, w.toByteArray());
    }

    private void entries(BodyWriter w, List<QueuedMessage> messages) {
        w.beginArray('(');
        for (QueuedMessage m : messages) {
            boolean fromBus = m.sender() == null;
            Credentials c = m.creds();
            w.beginStruct();
            w.writeByte(m.type());
            w.writeString(fromBus ? Bus.DRIVER_NAME : m.sender());
            w.writeString(orEmpty(m.iface()));
            w.writeString(orEmpty(m.member()));
            w.writeString(orEmpty(m.path()));
            w.writeUint64(m.seq());
            w.writeUint32(id(fromBus ? host.busPid() : c.pid()));
            w.writeUint32(id(fromBus ? host.busUid() : c.uid()));
            w.writeUint32(id(fromBus ? -1 : c.gid()));
            w.endStruct();
        }
        w.endArray();
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }

    /** An unknown id (-1) is 0xFFFFFFFF, as (uid_t) -1. */
    private static long id(long v) {
        return v < 0 ? 0xFFFFFFFFL : v & 0xFFFFFFFFL;
    }
}
