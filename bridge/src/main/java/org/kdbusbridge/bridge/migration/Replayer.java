// Invariants: only client-sent messages of the recording are re-sent, each from the connection
// standing in for its recorded sender, with its recorded serial, flags and body; recorded
// unique names in DESTINATION (and in the string arguments of bodies made only of basic
// types) are mapped to the stand-ins' names; a message is sent only after everything it
// causally needs has arrived (a reply after its call; the next step after a driver reply the
// recording shows); every connection opened here is closed before replay() returns; the
// replay transcript ends at a marker barrier taken before those closes.
package org.kdbusbridge.bridge.migration;

import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.client.BusConnection;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;
import org.kdbusbridge.bridge.protocol.WireFormat;

/**
 * Replays a recorded capture against a bus as a scripted client workload, then compares what
 * the bus did with what the recording shows (both normalised without connection set-up: a
 * capture may start after its clients connected).
 */
public final class Replayer {
    private static final Pattern UNIQUE = Pattern.compile(":\\d+\\.\\d+");

    /** The outcome: both normalised transcripts, their comparison and any notes on steps. */
    public record Result(NormalizedTranscript recorded, NormalizedTranscript replayed, DiffReport report,
                         List<String> notes, int sent) {
        public boolean matches() {
            return report.matches();
        }
    }

    private final AllowList allow;
    private final Duration timeout;

    public Replayer(AllowList allow, Duration timeout) {
        this.allow = allow;
        this.timeout = timeout;
    }

    public static List<BusMessage> decodeAll(List<byte[]> raw, List<String> notes) {
        List<BusMessage> out = new ArrayList<>();
        for (int i = 0; i < raw.size(); i++) {
            try {
                out.add(BusMessage.decode(raw.get(i)));
            } catch (Exception e) {
                notes.add("packet " + (i + 1) + " is not a valid D-Bus message, skipped: " + e.getMessage());
            }
        }
        return out;
    }

    public Result replay(List<BusMessage> recording, String address) throws IOException {
        List<String> notes = new ArrayList<>();
        Set<String> recMonitors = new HashSet<>();
        for (BusMessage m : recording) {
            if (m.isCall() && m.toDriver() && "BecomeMonitor".equals(m.member()) && m.sender() != null) {
                recMonitors.add(m.sender());
            }
        }
        // A name that only ever vanishes (never sends) is the recording's own monitor
        // (dbus-monitor --pcap: the monitor sees only its own NameLost at BecomeMonitor) or a
        // peer that connected before the capture and said nothing: nothing to replay, and its
        // traffic is left out of both sides.
        Set<String> spoke = new HashSet<>();
        for (BusMessage m : recording) {
            if (m.sender() != null) spoke.add(m.sender());
        }
        for (BusMessage m : recording) {
            String a0 = m.stringArg(0);
            boolean vanished = "NameOwnerChanged".equals(m.member()) && a0 != null && a0.equals(m.stringArg(1))
                    && "".equals(m.stringArg(2));
            boolean lostOwn = "NameLost".equals(m.member()) && a0 != null && a0.equals(m.destination());
            if (m.fromDriver() && m.isSignal() && (vanished || lostOwn) && UNIQUE.matcher(a0).matches() && !spoke.contains(a0)) {
                recMonitors.add(a0);
            }
        }
        Map<String, BusConnection> conns = new LinkedHashMap<>();
        Map<String, String> names = new HashMap<>();
        int sent = 0;
        List<BusMessage> transcript;
        Set<String> own = new HashSet<>();
        try (BusConnection monitor = BusConnection.open(address, "replay-monitor")) {
            monitor.becomeMonitor();
            own.add(monitor.uniqueName());
            try {
                for (int i = 0; i < recording.size(); i++) {
                    BusMessage m = recording.get(i);
                    if (m.fromDriver()) {
                        String a0 = m.stringArg(0);
                        if (m.isSignal() && "NameOwnerChanged".equals(m.member()) && a0 != null && UNIQUE.matcher(a0).matches()
                                && !recMonitors.contains(a0)) {
                            if ("".equals(m.stringArg(1))) {
                                connect(a0, address, conns, names, monitor);
                            } else if ("".equals(m.stringArg(2)) && conns.containsKey(a0)) {
                                String now = names.get(a0);
                                conns.remove(a0).close();
                                await(monitor, x -> x.fromDriver() && "NameOwnerChanged".equals(x.member())
                                        && now.equals(x.stringArg(0)) && "".equals(x.stringArg(2)), notes,
                                        "disconnect of " + a0);
                            }
                        }
                        continue;
                    }
                    String sender = m.sender();
                    if (sender == null || recMonitors.contains(sender)) continue;
                    if (m.isCall() && m.toDriver() && ("Hello".equals(m.member()) || "BecomeMonitor".equals(m.member()))) continue;
                    BusConnection c = connect(sender, address, conns, names, monitor);
                    if (m.isReply() && m.destination() != null) {
                        String caller = names.get(m.destination());
                        long rs = m.replySerial();
                        if (caller != null) {
                            await(c, x -> x.isCall() && caller.equals(x.sender()) && x.serial() == rs, notes,
                                    "the call " + m.destination() + "#" + rs + " that " + sender + " answers");
                        }
                    }
                    byte[] bytes = rewrite(m, names, notes);
                    String me = c.uniqueName();
                    int type = m.type();
                    long serial = m.serial();
                    c.send(bytes);
                    sent++;
                    await(monitor, x -> me.equals(x.sender()) && x.serial() == serial && x.type() == type, notes,
                            "recorded message " + (i + 1) + " (" + m.qualifiedMember() + ") to pass the bus");
                    if (m.isCall() && (m.flags() & WireFormat.NO_REPLY_EXPECTED) == 0 && driverAnswers(recording, i)) {
                        await(c, x -> x.isReply() && x.replySerial() == serial, notes,
                                "the driver's reply to recorded message " + (i + 1) + " (" + m.qualifiedMember() + ")");
                    }
                }
                try (BusConnection marker = BusConnection.open(address, "replay-marker")) {
                    own.add(marker.uniqueName());
                    String mk = marker.uniqueName();
                    await(monitor, x -> x.fromDriver() && "NameOwnerChanged".equals(x.member()) && mk.equals(x.stringArg(0)),
                            notes, "the end-of-replay marker");
                }
            } finally {
                conns.values().forEach(BusConnection::close);
            }
            List<BusMessage> all = monitor.received();
            int cut = all.size();
            for (int i = 0; i < all.size(); i++) {
                BusMessage x = all.get(i);
                if (x.fromDriver() && "NameOwnerChanged".equals(x.member()) && own.contains(x.stringArg(0))) {
                    cut = i;
                    break;
                }
            }
            transcript = all.subList(0, cut);
        }
        NormalizedTranscript rec = new Normalizer(allow, recMonitors).withoutConnectionSetup().normalize(recording);
        NormalizedTranscript rep = new Normalizer(allow, own).withoutConnectionSetup().normalize(transcript);
        return new Result(rec, rep, DiffReport.compare(rec, rep, null, null), notes, sent);
    }

    private BusConnection connect(String recorded, String address, Map<String, BusConnection> conns,
                                  Map<String, String> names, BusConnection monitor) throws IOException {
        BusConnection c = conns.get(recorded);
        if (c == null) {
            c = BusConnection.open(address, "replay-" + recorded);
            conns.put(recorded, c);
            names.put(recorded, c.uniqueName());
            String n = c.uniqueName();
            monitor.await(x -> x.fromDriver() && "NameOwnerChanged".equals(x.member()) && n.equals(x.stringArg(0)), timeout);
        }
        return c;
    }

    /** Does the recording show the driver replying to the call at {@code i}? */
    private static boolean driverAnswers(List<BusMessage> rec, int i) {
        BusMessage call = rec.get(i);
        for (int j = i + 1; j < rec.size(); j++) {
            BusMessage r = rec.get(j);
            if (r.isReply() && r.replySerial() == call.serial() && call.sender() != null && call.sender().equals(r.destination())) {
                return r.fromDriver();
            }
        }
        return false;
    }

    private void await(BusConnection c, java.util.function.Predicate<BusMessage> p, List<String> notes, String what) {
        if (c.await(p, timeout) == null) notes.add("timed out waiting for " + what);
    }

    /** The recorded message with recorded unique names replaced by the stand-ins' names. */
    static byte[] rewrite(BusMessage m, Map<String, String> names, List<String> notes) {
        String dest = m.destination() != null ? names.getOrDefault(m.destination(), m.destination()) : null;
        byte[] raw = m.raw();
        boolean bigEndian = raw[0] == WireFormat.BIG_ENDIAN;
        byte[] body = java.util.Arrays.copyOfRange(raw, raw.length - (int) bodyLength(m, raw), raw.length);
        if (mentionsName(m.body(), names)) {
            byte[] mapped = reencode(m.signature(), m.body(), names);
            if (mapped != null) {
                body = mapped;
                bigEndian = false;
            } else {
                notes.add("body of " + m.qualifiedMember() + " names a recorded peer inside a container: sent unchanged");
            }
        }
        if (bigEndian) {
            if (!java.util.Objects.equals(dest, m.destination())) {
                notes.add("big-endian message " + m.qualifiedMember() + ": destination not remapped");
            }
            return raw;
        }
        return MessageBuilder.build(m.type(), m.flags(), m.serial(), m.path(), m.iface(), m.member(), m.errorName(),
                m.replySerial() != 0 ? m.replySerial() : null, dest, null, m.signature().isEmpty() ? null : m.signature(),
                body);
    }

    private static long bodyLength(BusMessage m, byte[] raw) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(raw)
                .order(raw[0] == WireFormat.BIG_ENDIAN ? java.nio.ByteOrder.BIG_ENDIAN : java.nio.ByteOrder.LITTLE_ENDIAN);
        return b.getInt(4) & 0xffffffffL;
    }

    private static boolean mentionsName(Object v, Map<String, String> names) {
        if (v instanceof String s) {
            Matcher mt = UNIQUE.matcher(s);
            while (mt.find()) {
                if (names.containsKey(mt.group())) return true;
            }
            return false;
        }
        if (v instanceof List<?> l) {
            for (Object o : l) if (mentionsName(o, names)) return true;
        }
        if (v instanceof Map<?, ?> mp) {
            for (Map.Entry<?, ?> e : mp.entrySet()) {
                if (mentionsName(e.getKey(), names) || mentionsName(e.getValue(), names)) return true;
            }
        }
        if (v instanceof Object[] a) {
            for (Object o : a) if (mentionsName(o, names)) return true;
        }
        return false;
    }

    /** Re-encodes a body of top-level basic values with names mapped; null if it has containers. */
    static byte[] reencode(String sig, List<Object> body, Map<String, String> names) {
        if (!sig.matches("[ybnqiuxtdsogh]*") || body == null || body.size() != sig.length()) return null;
        BodyWriter w = new BodyWriter();
        for (int i = 0; i < sig.length(); i++) {
            Object v = body.get(i);
            switch (sig.charAt(i)) {
                case 'y' -> w.writeByte((Byte) v);
                case 'b' -> w.writeBoolean((Boolean) v);
                case 'n' -> w.writeInt16((Short) v);
                case 'q' -> w.writeUint16((Integer) v);
                case 'i' -> w.writeInt32((Integer) v);
                case 'h' -> w.writeUnixFd((Integer) v);
                case 'u' -> w.writeUint32((Long) v);
                case 'x' -> w.writeInt64((Long) v);
                case 't' -> w.writeUint64((Long) v);
                case 'd' -> w.writeDouble((Double) v);
                case 's' -> w.writeString(map((String) v, names));
                case 'o' -> w.writeObjectPath((String) v);
                case 'g' -> w.writeSignature((String) v);
                default -> { return null; }
            }
        }
        return w.toByteArray();
    }

    private static String map(String s, Map<String, String> names) {
        Matcher mt = UNIQUE.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (mt.find()) mt.appendReplacement(sb, Matcher.quoteReplacement(names.getOrDefault(mt.group(), mt.group())));
        mt.appendTail(sb);
        return sb.toString();
    }
}
