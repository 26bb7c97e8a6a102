// Invariants: messages keep capture order and are at most MAX_MESSAGES; a reply or error is
// joined to at most one call, the latest earlier call whose (sender, serial) equals the reply's
// (destination, reply serial), and that call to at most one reply; every message has a sender
// column, and a destination column unless it is a broadcast signal (to == BROADCAST); a
// well-known destination is drawn in the column of the unique name that owned it at the time
// (NameOwnerChanged, RequestName replies) or that answered the call, else in its own column.
package org.kdbusbridge.bridge.draw;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.kdbusbridge.bridge.protocol.BodyReader;
import org.kdbusbridge.bridge.protocol.MessageHeader;
import org.kdbusbridge.bridge.protocol.ProtocolException;
import org.kdbusbridge.bridge.protocol.WireFormat;

/** A capture as a sequence diagram: peers (columns) and messages (arrows), calls joined to replies. */
public final class SequenceModel {
    /** At most this many messages are drawn; a page with more would not stay usable in a browser. */
    public static final int MAX_MESSAGES = 20_000;
    /** Decoded body text kept per message. */
    static final int BODY_LIMIT = 2_000;
    public static final int BROADCAST = -1;
    static final String UNKNOWN = "(unknown sender)";

    /** One column: a unique name (or the bus driver, or a well-known name nobody was seen to own). */
    public static final class Peer {
        public final int column;
        public final String id;
        /** Well-known names this peer held at some point in the capture. */
        public final Set<String> names = new LinkedHashSet<>();

        Peer(int column, String id) {
            this.column = column;
            this.id = id;
        }
    }

    /** One captured message with its header fields, decoded body and diagram placement. */
    public static final class Msg {
        public int index;
        public long micros = -1;
        public int type;
        public int flags;
        public long serial;
        public long replySerial;
        public String sender;
        public String destination;
        public String path;
        public String iface;
        public String member;
        public String errorName;
        public String signature;
        public long unixFds;
        public int length;
        public String body = "";
        public int from;
        public int to;
        /** Index of the call this reply/error answers, or -1. */
        public int replyOf = -1;
        /** Index of the reply/error that answered this call, or -1. */
        public int reply = -1;
        /** The owner of a well-known destination when the message was captured, if known. */
        String ownerThen;
    }

    public final List<Peer> peers = new ArrayList<>();
    public final List<Msg> messages = new ArrayList<>();
    /** Packets in the capture, drawn or not. */
    public int packets;
    /** Packets that were not a valid D-Bus message. */
    public int undecodable;
    /** Valid messages left out because of MAX_MESSAGES. */
    public int notDrawn;
    /** Packets the capture cut short (captured length below the message's), skipped by the reader. */
    public int truncated;

    private final Map<String, Peer> byId = new LinkedHashMap<>();
    private final Map<String, String> owners = new HashMap<>();

    private SequenceModel() { }

    /** {@code micros}: capture times parallel to {@code packets}, or null when unknown. */
    public static SequenceModel build(List<byte[]> packets, long[] micros) {
        return build(packets, micros, MAX_MESSAGES);
    }

    static SequenceModel build(List<byte[]> packets, long[] micros, int max) {
        SequenceModel m = new SequenceModel();
        m.packets = packets.size();
        MessageHeader h = new MessageHeader();
        Map<String, Msg> pending = new HashMap<>();
        for (int i = 0; i < packets.size(); i++) {
            byte[] p = packets.get(i);
            try {
                h.wrap(ByteBuffer.wrap(p), 0, p.length);
            } catch (ProtocolException | RuntimeException e) {
                m.undecodable++;
                continue;
            }
            if (m.messages.size() >= max) {
                m.notDrawn++;
                continue;
            }
            Msg x = m.decode(h, p.length);
            x.index = m.messages.size();
            if (micros != null && i < micros.length) x.micros = micros[i];
            m.messages.add(x);
            m.learnNames(h, x);
            m.join(x, pending);
        }
        m.place();
        return m;
    }

    private Msg decode(MessageHeader h, int length) {
        Msg x = new Msg();
        x.type = h.type();
        x.flags = h.flags();
        x.serial = h.serial();
        x.replySerial = h.replySerial();
        x.sender = h.sender();
        x.destination = h.destination();
        x.path = h.path();
        x.iface = h.iface();
        x.member = h.member();
        x.errorName = h.errorName();
        x.signature = h.signature();
        x.unixFds = h.unixFds();
        x.length = length;
        x.body = BodyText.of(h, BODY_LIMIT);
        if (x.destination != null && !isUnique(x.destination) && !x.destination.equals(WireFormat.DRIVER_NAME)) {
            x.ownerThen = owners.get(x.destination);
        }
        return x;
    }

    /** NameOwnerChanged from the driver says who owns a well-known name from now on. */
    private void learnNames(MessageHeader h, Msg x) {
        if (x.type != WireFormat.SIGNAL || !"NameOwnerChanged".equals(x.member)
                || !WireFormat.DRIVER_NAME.equals(x.iface) || !"sss".equals(x.signature)
                || (x.sender != null && !WireFormat.DRIVER_NAME.equals(x.sender))) {
            return;
        }
        try {
            BodyReader r = BodyReader.of(h);
            String name = r.readString();
            r.readString();
            String now = r.readString();
            if (isUnique(name)) return;
            if (now.isEmpty()) {
                owners.remove(name);
            } else {
                owners.put(name, now);
                peer(now).names.add(name);
            }
        } catch (ProtocolException e) {
            // a malformed NameOwnerChanged teaches nothing
        }
    }

    private void join(Msg x, Map<String, Msg> pending) {
        if (x.type == WireFormat.METHOD_CALL) {
            if (x.sender != null) pending.put(x.sender + "/" + x.serial, x);
            else pending.put("?/" + x.serial, x); // Hello before the bus named its sender (some monitors)
            return;
        }
        if (x.type != WireFormat.METHOD_RETURN && x.type != WireFormat.ERROR) return;
        Msg call = x.destination != null ? pending.remove(x.destination + "/" + x.replySerial) : null;
        if (call == null) {
            call = pending.remove("?/" + x.replySerial);
            if (call != null && x.destination != null) call.sender = x.destination;
        }
        if (call == null) return;
        call.reply = x.index;
        x.replyOf = call.index;
        if (x.sender != null && isUnique(x.sender) && call.destination != null && !isUnique(call.destination)
                && !call.destination.equals(WireFormat.DRIVER_NAME)) {
            peer(x.sender).names.add(call.destination);
            if (call.ownerThen == null) call.ownerThen = x.sender;
        }
        // RequestName answered 1 (primary owner) or 4 (already owner): the caller holds the name.
        if (x.type == WireFormat.METHOD_RETURN && "RequestName".equals(call.member)
                && WireFormat.DRIVER_NAME.equals(call.destination) && call.sender != null
                && (x.body.equals("1") || x.body.equals("4")) && call.body.startsWith("'")) {
            String name = call.body.substring(1, call.body.indexOf('\'', 1) > 0 ? call.body.indexOf('\'', 1) : 1);
            if (!name.isEmpty() && !isUnique(name)) {
                owners.put(name, call.sender);
                peer(call.sender).names.add(name);
            }
        }
    }

    /** Columns: the driver first (when it appears), then peers in order of first appearance. */
    private void place() {
        Map<String, Peer> learned = new LinkedHashMap<>(byId);
        byId.clear();
        boolean driver = messages.stream().anyMatch(x -> WireFormat.DRIVER_NAME.equals(x.sender)
                || WireFormat.DRIVER_NAME.equals(x.destination));
        if (driver) column(WireFormat.DRIVER_NAME, learned);
        for (Msg x : messages) {
            x.from = column(x.sender != null ? x.sender : UNKNOWN, learned).column;
            if (x.destination == null) {
                x.to = x.type == WireFormat.SIGNAL ? BROADCAST : x.from;
            } else {
                String d = x.destination;
                if (!isUnique(d) && !d.equals(WireFormat.DRIVER_NAME)) {
                    String owner = x.ownerThen != null ? x.ownerThen : owners.get(d);
                    if (owner != null) d = owner;
                }
                x.to = column(d, learned).column;
            }
        }
        // peers that only appeared in NameOwnerChanged bodies get no column
    }

    private Peer column(String id, Map<String, Peer> learned) {
        Peer p = byId.get(id);
        if (p == null) {
            p = new Peer(peers.size(), id);
            Peer l = learned.get(id);
            if (l != null) p.names.addAll(l.names);
            byId.put(id, p);
            peers.add(p);
        }
        return p;
    }

    private Peer peer(String id) {
        return byId.computeIfAbsent(id, k -> new Peer(-1, k));
    }

    static boolean isUnique(String name) {
        return name.startsWith(":");
    }
}
