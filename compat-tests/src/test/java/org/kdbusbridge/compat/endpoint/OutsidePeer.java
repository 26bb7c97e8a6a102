package org.kdbusbridge.compat.endpoint;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

import org.kdbusbridge.compat.harness.Message;
import org.kdbusbridge.compat.harness.RawClient;

/**
 * A connection outside the sandbox, straight to the bus: a service owning names, or a plain peer.
 *
 * <p>One reader thread owns all reading (RawClient's direct mode), so the test thread only sends and
 * waits on the inbox. A service answers every method call at once with
 * {@code "<label>:<interface>.<member>@<path>"}, so a sandboxed caller's outcome says which peer got
 * which call; a silent peer records calls and answers none.
 */
final class OutsidePeer implements AutoCloseable {
    static final Duration T = Duration.ofSeconds(10);

    final String label;
    private final RawClient c;
    private final boolean answers;
    private final List<Message> inbox = new ArrayList<>();
    private boolean eof;

    private OutsidePeer(String label, RawClient c, boolean answers) {
        this.label = label;
        this.c = c;
        this.answers = answers;
    }

    /** Connects (Hello) and starts the reader. */
    static OutsidePeer connect(String busAddress, String label, boolean answers) throws IOException {
        RawClient c = RawClient.connectDirect(busAddress);
        c.hello(T);
        OutsidePeer p = new OutsidePeer(label, c, answers);
        Thread t = new Thread(p::readLoop, "outside-" + label);
        t.setDaemon(true);
        t.start();
        return p;
    }

    /** A service owning {@code names} (each must become primary owner at once). */
    static OutsidePeer service(String busAddress, String label, String... names) throws IOException {
        OutsidePeer p = connect(busAddress, label, true);
        for (String n : names) {
            p.own(n);
        }
        return p;
    }

    String unique() {
        return c.uniqueName();
    }

    private void readLoop() {
        try {
            Message m;
            while ((m = c.next()) != null) {
                if (answers && m.type == Message.METHOD_CALL && (m.flags & Message.FLAG_NO_REPLY_EXPECTED) == 0) {
                    c.send(reply(m, label + ":" + m.iface + "." + m.member + "@" + m.path));
                }
                synchronized (inbox) {
                    inbox.add(m);
                    inbox.notifyAll();
                }
            }
        } catch (IOException ignored) {
            // closed
        } finally {
            synchronized (inbox) {
                eof = true;
                inbox.notifyAll();
            }
        }
    }

    static Message reply(Message call, String value) {
        Message r = new Message();
        r.type = Message.METHOD_RETURN;
        r.flags = Message.FLAG_NO_REPLY_EXPECTED;
        r.destination = call.sender;
        r.replySerial = call.serial;
        return r.body("s", value);
    }

    /** Waits for the first inbox message matching {@code p}; null at the deadline. */
    Message await(Predicate<Message> p, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (inbox) {
            while (true) {
                for (Message m : inbox) {
                    if (p.test(m)) {
                        return m;
                    }
                }
                long left = deadline - System.nanoTime();
                if (eof || left <= 0) {
                    return null;
                }
                try {
                    inbox.wait(Math.max(1, left / 1_000_000));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
    }

    /** Everything received so far that matches {@code p}. */
    List<Message> received(Predicate<Message> p) {
        synchronized (inbox) {
            return inbox.stream().filter(p).toList();
        }
    }

    long send(Message m) throws IOException {
        return c.send(m);
    }

    /** Sends a call and waits for its reply (return or error); throws at the deadline. */
    Message call(Message m) throws IOException {
        long serial = c.send(m);
        Message r = await(x -> (x.type == Message.METHOD_RETURN || x.type == Message.ERROR) && x.replySerial == serial, T);
        if (r == null) {
            throw new IOException(label + ": no reply to " + m + " within " + T);
        }
        return r;
    }

    Message callBus(String member, String sig, Object... args) throws IOException {
        Message m = Message.call(RawClient.BUS, RawClient.BUS_PATH, RawClient.BUS, member);
        if (sig != null) {
            m.body(sig, args);
        }
        return call(m);
    }

    /**
     * Barrier: a round trip to the bus driver. When it returns, the bus has routed everything this
     * peer sent before (a bus handles one connection's messages in order).
     */
    void barrier() throws IOException {
        callBus("GetId", null);
    }

    void own(String name) throws IOException {
        Message r = callBus("RequestName", "su", name, 4L);
        if (r.type != Message.METHOD_RETURN || ((Number) r.arg(0)).longValue() != 1) {
            throw new IOException(label + " could not own " + name + ": " + r);
        }
    }

    void release(String name) throws IOException {
        Message r = callBus("ReleaseName", "s", name);
        if (r.type != Message.METHOD_RETURN) {
            throw new IOException(label + " could not release " + name + ": " + r);
        }
    }

    /** Emits a broadcast signal, then waits until the bus routed it. */
    void broadcast(String path, String iface, String member) throws IOException {
        Message s = new Message();
        s.type = Message.SIGNAL;
        s.path = path;
        s.iface = iface;
        s.member = member;
        s.flags = Message.FLAG_NO_REPLY_EXPECTED;
        s.body("s", label);
        c.send(s);
        barrier();
    }

    @Override
    public void close() {
        c.close();
    }
}
