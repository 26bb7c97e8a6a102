package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;
import org.kdbusbridge.compat.harness.Wire;

/**
 * What one matrix case works with: a fresh sandboxed client on its rule set's front, the shared
 * outside peers, peers of its own (closed when the case ends), and the normalisation that turns what
 * the client saw into an outcome string comparable across buses.
 *
 * <p>Outcomes: {@code ok:<values>} or {@code error:<name>} (the org.freedesktop.DBus.Error. prefix
 * dropped). Unique names print as the peer's label ({@code :T}, {@code :self}), any other unique
 * name as {@code :other}. Name lists keep only org.example.*, org.freedesktop.DBus and unique names,
 * sorted and without duplicates.
 */
final class CaseContext implements AutoCloseable {
    static final String NOC_MATCH = "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',member='NameOwnerChanged'";
    private static final Pattern UNIQUE = Pattern.compile(":\\d+\\.\\d+");
    private static final String ERR = "org.freedesktop.DBus.Error.";

    private final MatrixWorld world;
    private final String frontAddress;
    private final Map<String, String> labels;
    private final List<AutoCloseable> own = new ArrayList<>();
    private final Map<String, OutsidePeer> extra = new LinkedHashMap<>();
    private Insider app;

    CaseContext(MatrixWorld world, String frontAddress) {
        this.world = world;
        this.frontAddress = frontAddress;
        this.labels = world.labels();
    }

    /** The sandboxed client (connected, Hello done, on first use). */
    Insider app() throws IOException {
        if (app == null) {
            app = Insider.connect(frontAddress);
            labels.put(app.unique(), ":self");
        }
        return app;
    }

    /** A second sandboxed client on the same front. */
    Insider otherInsider(String label) throws IOException {
        Insider i = Insider.connect(frontAddress);
        labels.put(i.unique(), ":" + label);
        own.add(new OutsidePeerCloser(i));
        return i;
    }

    OutsidePeer peer(String label) {
        OutsidePeer p = extra.get(label);
        return p != null ? p : world.peer(label);
    }

    String unique(String label) {
        return peer(label).unique();
    }

    /** A new outside peer for this case only, owning {@code names}. */
    OutsidePeer newPeer(String label, String... names) throws IOException {
        OutsidePeer p = OutsidePeer.connect(world.busAddress(), label, true);
        labels.put(p.unique(), ":" + label);
        extra.put(label, p);
        own.add(p);
        for (String n : names) {
            p.own(n);
        }
        return p;
    }

    /** Closes a peer of this case and waits until the bus announced it gone. */
    void disconnect(OutsidePeer p) throws IOException {
        closeAndAwaitGone(p.unique(), p);
    }

    /**
     * Closes a connection and waits until peer P saw the bus announce its unique name gone: whatever
     * it owned is released before the next step (or case) looks at the bus.
     */
    private void closeAndAwaitGone(String u, AutoCloseable connection) throws IOException {
        OutsidePeer watcher = world.peer("P");
        String rule = NOC_MATCH + ",arg0='" + u + "'";
        mustPass(watcher.call(driver("AddMatch").body("s", rule)));
        try {
            connection.close();
        } catch (Exception e) {
            throw new IOException(e);
        }
        if (watcher.await(x -> isNoc(x) && u.equals(x.arg(0)) && "".equals(x.arg(2)), OutsidePeer.T) == null) {
            throw new IOException("the bus did not announce " + u + " gone within " + OutsidePeer.T);
        }
        mustPass(watcher.call(driver("RemoveMatch").body("s", rule)));
    }

    // ------------------------------------------------------------ actions from inside

    Message driver(String member) {
        return Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, member);
    }

    /** A driver method called from inside. */
    String bus(String member, String sig, Object... args) throws IOException {
        Message m = driver(member);
        if (sig != null) {
            m.body(sig, args);
        }
        return outcome(app().call(m));
    }

    /** A method call from inside to {@code dest}. */
    String call(String dest, String path, String iface, String member) throws IOException {
        return outcome(app().call(Message.call(dest, path, iface, member)));
    }

    String callFlags(int flags, String dest, String path, String iface, String member) throws IOException {
        return outcome(app().call(Message.call(dest, path, iface, member).flags(flags)));
    }

    String listNames() throws IOException {
        Message r = app().call(driver("ListNames"));
        if (r.type != Message.METHOD_RETURN) {
            return outcome(r);
        }
        return "ok:" + names(r.arg(0));
    }

    String names(Object list) {
        TreeSet<String> out = new TreeSet<>();
        for (Object o : (List<?>) list) {
            String n = (String) o;
            if (n.startsWith(":")) {
                out.add(label(n));
            } else if (n.startsWith("org.example.") || n.equals(RawClient.BUS)) {
                out.add(n);
            }
        }
        return String.join(",", out);
    }

    /**
     * Subscribes the sandboxed client to all signals, has the outside peer broadcast one, and reports
     * whether it arrived: the peer's barrier makes the bus route it before the client's barrier, so the
     * answer is final when the client's barrier returns.
     */
    String broadcastFrom(String label, String path, String iface, String member) throws IOException {
        Insider a = app();
        mustPass(a.callBus("AddMatch", "s", "type='signal'"));
        OutsidePeer p = peer(label);
        p.broadcast(path, iface, member);
        a.barrier();
        String sender = p.unique();
        boolean got = !a.received(m -> m.type == Message.SIGNAL && member.equals(m.member) && path.equals(m.path)
                && sender.equals(m.sender)).isEmpty();
        return got ? "received" : "not-received";
    }

    /** The NameOwnerChanged signals the sandboxed client got so far, in order, normalised. */
    String nocSeen() throws IOException {
        app().barrier();
        List<String> out = new ArrayList<>();
        for (Message m : app().received(CaseContext::isNoc)) {
            out.add(label((String) m.arg(0)) + "|" + label((String) m.arg(1)) + "|" + label((String) m.arg(2)));
        }
        return out.isEmpty() ? "none" : String.join(";", out);
    }

    static boolean isNoc(Message m) {
        return m.type == Message.SIGNAL && "NameOwnerChanged".equals(m.member) && RawClient.BUS.equals(m.sender);
    }

    static void mustPass(Message r) throws IOException {
        if (r.type != Message.METHOD_RETURN) {
            throw new IOException("expected a method return, got " + r);
        }
    }

    // ------------------------------------------------------------ normalisation

    String outcome(Message r) {
        if (r.type == Message.ERROR) {
            String e = r.errorName;
            return "error:" + (e.startsWith(ERR) ? e.substring(ERR.length()) : e);
        }
        if (r.type != Message.METHOD_RETURN) {
            return "unexpected:" + r.typeName();
        }
        List<String> vals = new ArrayList<>();
        for (Object o : r.args()) {
            vals.add(value(o));
        }
        return "ok:" + String.join(",", vals);
    }

    private String value(Object o) {
        if (o instanceof String s) {
            return label(s);
        }
        if (o instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            for (Object e : l) {
                parts.add(value(e));
            }
            return "[" + String.join(",", parts) + "]";
        }
        if (o instanceof Map<?, ?> || o instanceof Wire.Variant) {
            return "<" + Wire.format(o).length() + " chars>";
        }
        return String.valueOf(o);
    }

    /** Replaces unique names inside {@code s} by labels. */
    String label(String s) {
        Matcher m = UNIQUE.matcher(s);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(sb, Matcher.quoteReplacement(labels.getOrDefault(m.group(), ":other")));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    /** Ends the case: every connection it made is gone from the bus before the next case starts. */
    @Override
    public void close() throws IOException {
        List<AutoCloseable> all = new ArrayList<>(own);
        if (app != null) {
            all.add(0, new OutsidePeerCloser(app));
        }
        IOException first = null;
        for (AutoCloseable c : all) {
            String u = c instanceof OutsidePeer p ? p.unique() : ((OutsidePeerCloser) c).i().unique();
            try {
                closeAndAwaitGone(u, c);
            } catch (IOException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** Lets extra insiders be closed with the peers. */
    private record OutsidePeerCloser(Insider i) implements AutoCloseable {
        @Override
        public void close() {
            i.close();
        }
    }
}
