package org.kdbusbridge.bridge.cli;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.kdbusbridge.bridge.client.BusConnection;
import org.kdbusbridge.bridge.client.BusMessage;
import org.kdbusbridge.bridge.protocol.BodyWriter;
import org.kdbusbridge.bridge.protocol.MessageBuilder;

/**
 * org.kdbusbridge.Endpoints1 from the client side, over one {@link BusConnection}: the proxy
 * front's and the endpoint command's calls. An endpoint added here lives as long as this
 * connection (the bus removes a creator's endpoints when it leaves).
 */
final class EndpointClient implements AutoCloseable {
    static final String IFACE = "org.kdbusbridge.Endpoints1";
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /** A refused call: the bus's error name and text. */
    static final class CallFailed extends IOException {
        private static final long serialVersionUID = 1L;
        final String errorName;
        /** The error's text, null if it carried none. */
        final String text;

        CallFailed(String errorName, String text) {
            super(text == null ? errorName : text);
            this.errorName = errorName;
            this.text = text;
        }
    }

    /** ListEndpoints' entry. */
    record Entry(String id, String address, String appId, String instanceId, List<String> options) { }

    private final BusConnection bus;

    private EndpointClient(BusConnection bus) {
        this.bus = bus;
    }

    /** Connects (an address list, as BusConnection.open) and says Hello. */
    static EndpointClient open(String address) throws IOException {
        return new EndpointClient(BusConnection.open(address, "endpoint-client"));
    }

    /** Whether the driver's Interfaces property lists Endpoints1 (false for dbus-daemon, dbus-broker). */
    boolean busHasEndpoints() throws IOException {
        BusMessage r = bus.callDriver("org.freedesktop.DBus.Properties", "Get", "ss",
                new Object[] {BusMessage.DRIVER, "Interfaces"}, TIMEOUT);
        if (r == null) {
            throw new IOException("no answer to Properties.Get(Interfaces)");
        }
        return r.isReturn() && r.body() != null && !r.body().isEmpty() && r.body().get(0) instanceof List<?> l
                && l.contains(IFACE);
    }

    /**
     * AddEndpoint; returns {id, address}. A metadata value that is a {@link Long} goes as {@code u}
     * (max-connections), anything else as its string ({@code s}).
     */
    String[] add(String where, List<String> options, Map<String, ?> metadata) throws IOException {
        BodyWriter w = new BodyWriter();
        w.writeString(where);
        w.beginArray('s');
        for (String o : options) {
            w.writeString(o);
        }
        w.endArray();
        w.beginArray('{');
        for (Map.Entry<String, ?> e : metadata.entrySet()) {
            w.beginDictEntry();
            w.writeString(e.getKey());
            if (e.getValue() instanceof Long n) {
                w.writeVariant("u");
                w.writeUint32(n);
            } else {
                w.writeVariant("s");
                w.writeString(String.valueOf(e.getValue()));
            }
            w.endDictEntry();
        }
        w.endArray();
        BusMessage r = call("AddEndpoint", "sasa{sv}", w.toByteArray());
        return new String[] {r.stringArg(0), r.stringArg(1)};
    }

    void remove(String id) throws IOException {
        call("RemoveEndpoint", "s", new BodyWriter().writeString(id).toByteArray());
    }

    List<Entry> list() throws IOException {
        BusMessage r = call("ListEndpoints", null, null);
        List<Entry> out = new ArrayList<>();
        if (r.body() != null && !r.body().isEmpty() && r.body().get(0) instanceof List<?> entries) {
            for (Object o : entries) {
                Object[] e = (Object[]) o;
                List<String> options = new ArrayList<>();
                for (Object s : (List<?>) e[4]) {
                    options.add((String) s);
                }
                out.add(new Entry((String) e[0], (String) e[1], (String) e[2], (String) e[3], options));
            }
        }
        return out;
    }

    /** Blocks until the bus closes this connection (or it is closed here). */
    void awaitEnd() {
        while (!bus.ended()) {
            // Nothing received is needed any more: let it go, so a peer sending to us cannot grow it.
            bus.discardBefore(Integer.MAX_VALUE);
            bus.await(m -> false, Duration.ofSeconds(1));
        }
    }

    boolean ended() {
        return bus.ended();
    }

    private BusMessage call(String member, String signature, byte[] body) throws IOException {
        long serial = bus.nextSerial();
        bus.send(MessageBuilder.methodCall(serial, 0, BusMessage.DRIVER, MessageBuilder.BUS_PATH, IFACE, member, null,
                signature, body));
        BusMessage r = bus.await(m -> m.isReply() && m.replySerial() == serial, TIMEOUT);
        if (r == null) {
            throw new IOException(member + ": no answer from the bus");
        }
        if (r.isError()) {
            throw new CallFailed(r.errorName(), r.stringArg(0));
        }
        return r;
    }

    @Override
    public void close() {
        bus.close();
    }
}
